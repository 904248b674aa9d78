/* core/grpc_server.c — unary-call gRPC server on gRPC C core 1.51 (see grpc_server.h).
 *
 * Owns: the grpc_server, its one completion queue, the worker threads, every call state
 * machine and the TLS material. Each completion-queue tag is either &srv->shutdown_tag or a
 * struct lg_grpc_call whose `state` says which operation just completed. */
#include "grpc_server.h"

#include "log.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>

/* Calls that may arrive at once without waiting for a worker to re-arm a request tag. gRPC
 * queues calls beyond this until a tag is re-armed, so it bounds latency, not capacity. */
#define REQUESTS_OUTSTANDING 32
#define DEFAULT_WORKERS      2
#define MAX_WORKERS          256
/* PEM files larger than this are certainly not a certificate chain or key. */
#define PEM_MAX_BYTES (1024 * 1024)
/* With compress_responses, responses at least this big are compressed (smaller ones would
 * only cost CPU); OTLP responses are a few bytes. */
#define RESPONSE_COMPRESS_MIN_BYTES 1024
#define NS_PER_MS                   1000000LL

enum call_state {
    CALL_REQUESTED, /* waiting in grpc_server_request_call */
    CALL_RECEIVING, /* RECV_MESSAGE in flight */
    CALL_HANDLING,  /* handed to the handler, not finished yet */
    CALL_FINISHING, /* final batch in flight */
};

struct method {
    char *name;
    size_t len;
    lg_grpc_unary_fn fn;
    void *arg;
};

struct lg_grpc_call {
    struct lg_grpc_server *srv;
    enum call_state state;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array request_md;
    grpc_byte_buffer *recv_message;
    const struct method *method;
    /* final batch storage, alive until the batch completes */
    grpc_byte_buffer *send_message;
    grpc_slice status_details;
    bool has_status_details;
    int cancelled;
};

/* TLS material, re-read by the certificate fetcher when a reload interval is set. */
struct tls_state {
    char *cert_file, *key_file, *ca_file; /* owned copies of the paths */
    char *cert_pem, *key_pem, *ca_pem;    /* last loaded contents */
    int64_t reload_interval_ns;
    int64_t last_load_ns;
    bool initial_config_given;
    pthread_mutex_t mu;
};

struct lg_grpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    char *endpoint;     /* as configured, for messages */
    char *bind_address; /* as handed to gRPC */
    struct method *methods;
    size_t nmethods;
    int nworkers;
    pthread_t *workers;
    int nworkers_running;
    int port;
    bool compress_responses;
    bool started;
    bool shut_down;
    struct tls_state *tls;

    atomic_bool shutting_down;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool shutdown_notified; /* the shutdown tag came back */
    size_t live_calls;      /* call structs alive (requested, handling or finishing) */
    int shutdown_tag;       /* its address is the tag */
};

static const char *const status_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *lg_grpc_status_name(int code)
{
    if (code < 0 || (size_t)code >= LG_ARRAY_LEN(status_names))
        return "UNKNOWN_STATUS";
    return status_names[code];
}

/* ---------------------------------------------------------------- gRPC core's own log */

/* gRPC core writes its own lines to stderr in its own format, which would break JSON-line
 * logs; route them through lg_log instead. gRPC "errors" are often routine (a client failing
 * its TLS handshake, a port we then report ourselves), so they are warnings here. */
static void route_grpc_log(gpr_log_func_args *a)
{
    const char *file = strrchr(a->file, '/');
    file = file != NULL ? file + 1 : a->file;
    enum lg_log_level level = a->severity == GPR_LOG_SEVERITY_ERROR  ? LG_LOG_WARN
                              : a->severity == GPR_LOG_SEVERITY_INFO ? LG_LOG_INFO
                                                                     : LG_LOG_DEBUG;
    lg_log(level, "grpc", "%s:%d: %s", file, a->line, a->message);
}

static pthread_once_t route_log_once = PTHREAD_ONCE_INIT;
static void route_log_install(void)
{
    gpr_set_log_function(route_grpc_log);
}

void lg_grpc_route_logs(void)
{
    pthread_once(&route_log_once, route_log_install);
}

/* ---------------------------------------------------------------- TLS material */

static int read_pem_file(const char *field, const char *path, char **out, struct lg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lg_err_set(err, LG_EINVAL, "%s: cannot read %s: %s", field, path, strerror(errno));
    char *buf = malloc(PEM_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return lg_err_set(err, LG_ENOMEM, "%s: out of memory", field);
    }
    size_t n = fread(buf, 1, PEM_MAX_BYTES + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        return lg_err_set(err, LG_EINVAL, "%s: cannot read %s", field, path);
    }
    if (n > PEM_MAX_BYTES) {
        free(buf);
        return lg_err_set(err, LG_EINVAL, "%s: %s is larger than %d bytes; not a PEM file?", field,
                          path, PEM_MAX_BYTES);
    }
    buf[n] = '\0';
    char *shrunk = realloc(buf, n + 1);
    *out = shrunk != NULL ? shrunk : buf;
    return LG_OK;
}

/* Checks with OpenSSL that the PEM texts parse and that key and certificate match, so a bad
 * file is reported by name instead of as a failed listen deep inside gRPC core. */
static int check_pems(const struct tls_state *t, const char *cert, const char *key, const char *ca,
                      struct lg_err *err)
{
    int rc = LG_OK;
    BIO *bio = BIO_new_mem_buf(cert, -1);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    bio = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (x == NULL)
        rc = lg_err_set(err, LG_EINVAL, "tls.cert_file: %s holds no PEM certificate", t->cert_file);
    else if (pk == NULL)
        rc = lg_err_set(err, LG_EINVAL,
                        "tls.key_file: %s holds no PEM private key (or it is encrypted)",
                        t->key_file);
    else if (X509_check_private_key(x, pk) != 1)
        rc = lg_err_set(err, LG_EINVAL, "tls.key_file: %s does not match the certificate in %s",
                        t->key_file, t->cert_file);
    X509_free(x);
    EVP_PKEY_free(pk);
    if (rc == LG_OK && ca != NULL) {
        bio = BIO_new_mem_buf(ca, -1);
        X509 *cax = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (cax == NULL)
            rc = lg_err_set(err, LG_EINVAL, "tls.client_ca_file: %s holds no PEM certificate",
                            t->ca_file);
        X509_free(cax);
    }
    return rc;
}

/* Reads all three files; on success replaces the stored texts. Caller holds t->mu (or owns t
 * exclusively). *changed tells whether any content differs from what was stored. */
static int tls_load(struct tls_state *t, bool *changed, struct lg_err *err)
{
    char *cert = NULL, *key = NULL, *ca = NULL;
    int rc = read_pem_file("tls.cert_file", t->cert_file, &cert, err);
    if (rc == LG_OK)
        rc = read_pem_file("tls.key_file", t->key_file, &key, err);
    if (rc == LG_OK && t->ca_file != NULL)
        rc = read_pem_file("tls.client_ca_file", t->ca_file, &ca, err);
    if (rc == LG_OK)
        rc = check_pems(t, cert, key, ca, err);
    if (rc != LG_OK) {
        free(cert);
        free(key);
        free(ca);
        return rc;
    }
    bool same = t->cert_pem != NULL && strcmp(cert, t->cert_pem) == 0 &&
                strcmp(key, t->key_pem) == 0 &&
                (ca == NULL ? t->ca_pem == NULL : t->ca_pem != NULL && strcmp(ca, t->ca_pem) == 0);
    if (same) {
        free(cert);
        free(key);
        free(ca);
    } else {
        free(t->cert_pem);
        free(t->key_pem);
        free(t->ca_pem);
        t->cert_pem = cert;
        t->key_pem = key;
        t->ca_pem = ca;
    }
    *changed = !same;
    t->last_load_ns = lg_now_mono_ns();
    return LG_OK;
}

static void tls_free(struct tls_state *t)
{
    if (t == NULL)
        return;
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    free(t->cert_pem);
    free(t->key_pem);
    free(t->ca_pem);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* A certificate config from the stored texts (caller holds t->mu or owns t). */
static grpc_ssl_server_certificate_config *tls_config(const struct tls_state *t)
{
    grpc_ssl_pem_key_cert_pair pair = {.private_key = t->key_pem, .cert_chain = t->cert_pem};
    /* gRPC 1.51 asserts that a fetched config has root certificates even when client
     * certificates are not requested; they are only used to verify client certificates, so
     * without a client CA the server's own chain stands in, unused. */
    const char *roots = t->ca_pem;
    if (roots == NULL && t->reload_interval_ns > 0)
        roots = t->cert_pem;
    return grpc_ssl_server_certificate_config_create(roots, &pair, 1);
}

/* gRPC core calls this when the listener is created and then on every new TLS handshake. */
static grpc_ssl_certificate_config_reload_status tls_fetch(void *user_data,
                                                           grpc_ssl_server_certificate_config **out)
{
    struct tls_state *t = user_data;
    grpc_ssl_certificate_config_reload_status status = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&t->mu);
    bool give = !t->initial_config_given;
    if (!give && t->reload_interval_ns > 0 &&
        lg_now_mono_ns() - t->last_load_ns >= t->reload_interval_ns) {
        bool changed = false;
        struct lg_err err;
        if (tls_load(t, &changed, &err) != LG_OK) {
            /* keep serving with the previous certificate; try again next interval */
            t->last_load_ns = lg_now_mono_ns();
            lg_warn("grpc", "TLS certificate reload failed, keeping the current one: %s", err.msg);
        } else {
            give = changed;
        }
    }
    if (give) {
        *out = tls_config(t);
        status = *out != NULL ? GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW
                              : GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        if (*out != NULL)
            t->initial_config_given = true;
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

static int tls_create(const struct lg_grpc_server_opts *o, struct tls_state **out,
                      struct lg_err *err)
{
    bool has_cert = o->tls_cert_file != NULL && o->tls_cert_file[0] != '\0';
    bool has_key = o->tls_key_file != NULL && o->tls_key_file[0] != '\0';
    bool has_ca = o->tls_client_ca_file != NULL && o->tls_client_ca_file[0] != '\0';
    *out = NULL;
    if (!has_cert && !has_key && !has_ca)
        return LG_OK;
    if (!has_cert || !has_key)
        return lg_err_set(err, LG_EINVAL, "tls: cert_file and key_file must both be set%s",
                          has_ca ? " (client_ca_file alone cannot serve TLS)" : "");
    if (o->tls_min_version != NULL && o->tls_min_version[0] != '\0' &&
        strcmp(o->tls_min_version, "1.2") != 0)
        return lg_err_set(err, LG_EINVAL,
                          "tls.min_version: \"%s\" is not supported by the gRPC transport "
                          "(it always allows TLS 1.2 and 1.3); use \"1.2\"",
                          o->tls_min_version);
    struct tls_state *t = calloc(1, sizeof *t);
    if (t == NULL)
        return lg_err_set(err, LG_ENOMEM, "tls: out of memory");
    pthread_mutex_init(&t->mu, NULL);
    t->cert_file = strdup(o->tls_cert_file);
    t->key_file = strdup(o->tls_key_file);
    t->ca_file = has_ca ? strdup(o->tls_client_ca_file) : NULL;
    t->reload_interval_ns = o->tls_reload_interval_ns;
    if (t->cert_file == NULL || t->key_file == NULL || (has_ca && t->ca_file == NULL)) {
        tls_free(t);
        return lg_err_set(err, LG_ENOMEM, "tls: out of memory");
    }
    bool changed;
    int rc = tls_load(t, &changed, err);
    if (rc != LG_OK) {
        tls_free(t);
        return rc;
    }
    *out = t;
    return LG_OK;
}

/* ---------------------------------------------------------------- calls */

static void call_free(struct lg_grpc_call *c)
{
    struct lg_grpc_server *srv = c->srv;
    if (c->call != NULL)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->request_md);
    if (c->recv_message != NULL)
        grpc_byte_buffer_destroy(c->recv_message);
    if (c->send_message != NULL)
        grpc_byte_buffer_destroy(c->send_message);
    if (c->has_status_details)
        grpc_slice_unref(c->status_details);
    free(c);
    pthread_mutex_lock(&srv->mu);
    srv->live_calls--;
    if (srv->live_calls == 0)
        pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* Arms one more "request a call" tag. False when gRPC refused (shutting down) or OOM. */
static bool request_call(struct lg_grpc_server *srv)
{
    struct lg_grpc_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return false;
    c->srv = srv;
    c->state = CALL_REQUESTED;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->request_md);
    pthread_mutex_lock(&srv->mu);
    srv->live_calls++;
    pthread_mutex_unlock(&srv->mu);
    grpc_call_error e = grpc_server_request_call(srv->server, &c->call, &c->details, &c->request_md,
                                                 srv->cq, srv->cq, c);
    if (e != GRPC_CALL_OK) {
        call_free(c);
        return false;
    }
    return true;
}

void lg_grpc_call_finish(struct lg_grpc_call *c, int status, const char *message,
                         const uint8_t *resp, size_t resp_len)
{
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;

    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (status == LG_GRPC_OK && c->srv->compress_responses &&
        resp_len >= RESPONSE_COMPRESS_MIN_BYTES) {
        /* gRPC core picks an algorithm the client listed in grpc-accept-encoding, or none */
        ops[n].data.send_initial_metadata.maybe_compression_level.is_set = 1;
        ops[n].data.send_initial_metadata.maybe_compression_level.level = GRPC_COMPRESS_LEVEL_LOW;
    }
    n++;

    if (status == LG_GRPC_OK) {
        grpc_slice s = resp_len > 0 ? grpc_slice_from_copied_buffer((const char *)resp, resp_len)
                                    : grpc_empty_slice();
        c->send_message = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->send_message;
        n++;
    }

    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)status;
    if (message != NULL && message[0] != '\0') {
        c->status_details = grpc_slice_from_copied_string(message);
        c->has_status_details = true;
        ops[n].data.send_status_from_server.status_details = &c->status_details;
    }
    n++;

    ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
    n++;

    c->state = CALL_FINISHING;
    if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
        call_free(c); /* gRPC will not report this tag; nothing is pending on it */
}

const char *lg_grpc_call_method(const struct lg_grpc_call *c)
{
    return c->method != NULL ? c->method->name : "";
}

const char *lg_grpc_call_metadata(const struct lg_grpc_call *c, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < c->request_md.count; i++) {
        const grpc_metadata *m = &c->request_md.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) == klen &&
            memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) == 0) {
            if (len != NULL)
                *len = GRPC_SLICE_LENGTH(m->value);
            return (const char *)GRPC_SLICE_START_PTR(m->value);
        }
    }
    return NULL;
}

static const struct method *find_method(const struct lg_grpc_server *srv, grpc_slice name)
{
    size_t len = GRPC_SLICE_LENGTH(name);
    const uint8_t *p = GRPC_SLICE_START_PTR(name);
    for (size_t i = 0; i < srv->nmethods; i++)
        if (srv->methods[i].len == len && memcmp(srv->methods[i].name, p, len) == 0)
            return &srv->methods[i];
    return NULL;
}

static void on_call_arrived(struct lg_grpc_call *c, bool ok)
{
    struct lg_grpc_server *srv = c->srv;
    if (!ok) {
        /* the server is shutting down: this request tag will never carry a call */
        call_free(c);
        return;
    }
    if (!atomic_load(&srv->shutting_down))
        request_call(srv); /* keep the number of armed tags constant */

    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &c->recv_message;
    c->state = CALL_RECEIVING;
    if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK)
        call_free(c);
}

static void on_message_received(struct lg_grpc_call *c, bool ok)
{
    struct lg_grpc_server *srv = c->srv;
    if (!ok) {
        /* cancelled by the client, by a deadline, or by gRPC core itself (for example a
         * message over the size limit, already answered RESOURCE_EXHAUSTED) */
        call_free(c);
        return;
    }
    if (c->recv_message == NULL) {
        lg_grpc_call_finish(c, LG_GRPC_INTERNAL, "unary call without a request message", NULL, 0);
        return;
    }
    c->method = find_method(srv, c->details.method);
    if (c->method == NULL) {
        char msg[256];
        int mlen = (int)GRPC_SLICE_LENGTH(c->details.method);
        snprintf(msg, sizeof msg, "unknown method %.*s", mlen > 200 ? 200 : mlen,
                 (const char *)GRPC_SLICE_START_PTR(c->details.method));
        lg_grpc_call_finish(c, LG_GRPC_UNIMPLEMENTED, msg, NULL, 0);
        return;
    }

    /* The handler may finish the call (and another worker may free it) before it returns,
     * so the request bytes are moved out of the call first and released here afterwards. */
    grpc_byte_buffer *bb = c->recv_message;
    c->recv_message = NULL;
    const struct method *m = c->method;
    c->state = CALL_HANDLING;

    const grpc_slice_buffer *sb = &bb->data.raw.slice_buffer;
    if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
        sb->count <= 1) {
        /* the common case: one slice, already contiguous */
        if (sb->count == 0)
            m->fn(m->arg, c, (const uint8_t *)"", 0);
        else
            m->fn(m->arg, c, GRPC_SLICE_START_PTR(sb->slices[0]), GRPC_SLICE_LENGTH(sb->slices[0]));
        grpc_byte_buffer_destroy(bb);
        return;
    }

    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        grpc_byte_buffer_destroy(bb);
        lg_grpc_call_finish(c, LG_GRPC_INTERNAL, "cannot read the request message", NULL, 0);
        return;
    }
    size_t total = grpc_byte_buffer_length(bb);
    uint8_t *buf = malloc(total > 0 ? total : 1);
    if (buf == NULL) {
        grpc_byte_buffer_reader_destroy(&reader);
        grpc_byte_buffer_destroy(bb);
        lg_grpc_call_finish(c, LG_GRPC_RESOURCE_EXHAUSTED, "out of memory reading the request",
                            NULL, 0);
        return;
    }
    size_t off = 0;
    grpc_slice s;
    while (grpc_byte_buffer_reader_next(&reader, &s)) {
        size_t sl = GRPC_SLICE_LENGTH(s);
        if (sl > total - off) /* cannot happen; never overrun the buffer if it does */
            sl = total - off;
        memcpy(buf + off, GRPC_SLICE_START_PTR(s), sl);
        off += sl;
        grpc_slice_unref(s);
    }
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(bb);
    m->fn(m->arg, c, buf, off);
    free(buf);
}

static void *worker_main(void *arg)
{
    struct lg_grpc_server *srv = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        if (ev.tag == &srv->shutdown_tag) {
            pthread_mutex_lock(&srv->mu);
            srv->shutdown_notified = true;
            pthread_cond_broadcast(&srv->cv);
            pthread_mutex_unlock(&srv->mu);
            continue;
        }
        struct lg_grpc_call *c = ev.tag;
        switch (c->state) {
        case CALL_REQUESTED: on_call_arrived(c, ev.success != 0); break;
        case CALL_RECEIVING: on_message_received(c, ev.success != 0); break;
        case CALL_FINISHING: call_free(c); break;
        case CALL_HANDLING: break; /* no operation is in flight in this state */
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- server */

static char *xstrdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* gRPC reads an empty host as nothing useful; ":port" means every interface, which gRPC
 * binds as dual-stack [::] (falling back to 0.0.0.0 without IPv6). */
static char *make_bind_address(const char *endpoint)
{
    if (endpoint[0] == ':') {
        size_t n = strlen(endpoint) + 3;
        char *s = malloc(n);
        if (s != NULL)
            snprintf(s, n, "[::]%s", endpoint);
        return s;
    }
    return strdup(endpoint);
}

/* "host:port", ":port", "[v6]:port" with a decimal port 0-65535 (gRPC itself would
 * silently wrap 99999 to another port), or a "unix:" path. */
static int check_endpoint(const char *ep, struct lg_err *err)
{
    if (strncmp(ep, "unix:", 5) == 0)
        return LG_OK;
    const char *colon = strrchr(ep, ':');
    if (colon == NULL)
        return lg_err_set(err, LG_EINVAL, "endpoint: \"%s\" needs a port (host:port)", ep);
    if (ep[0] == '[' && (colon == ep || colon[-1] != ']'))
        return lg_err_set(err, LG_EINVAL, "endpoint: \"%s\": write IPv6 as [addr]:port", ep);
    const char *p = colon + 1;
    long port = 0;
    size_t digits = 0;
    for (; p[digits] >= '0' && p[digits] <= '9' && port <= 65535; digits++)
        port = port * 10 + (p[digits] - '0');
    if (digits == 0 || p[digits] != '\0' || port > 65535)
        return lg_err_set(err, LG_EINVAL, "endpoint: \"%s\": port must be a number from 0 to 65535",
                          ep);
    return LG_OK;
}

/* Channel arguments; room for every option this adapter sets. */
struct server_args {
    grpc_arg args[16];
    size_t n;
};

static void int_arg(struct server_args *a, const char *key, int v)
{
    a->args[a->n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = v};
}

/* A duration argument in milliseconds, set only when configured (ns > 0). */
static void ms_arg(struct server_args *a, const char *key, int64_t ns)
{
    if (ns <= 0)
        return;
    int64_t ms = ns / NS_PER_MS;
    int_arg(a, key, ms > INT_MAX ? INT_MAX : ms < 1 ? 1 : (int)ms);
}

struct lg_grpc_server *lg_grpc_server_create(const struct lg_grpc_server_opts *o,
                                             struct lg_err *err)
{
    if (o->endpoint == NULL || o->endpoint[0] == '\0') {
        lg_err_set(err, LG_EINVAL, "endpoint: must be set (host:port)");
        return NULL;
    }
    if (check_endpoint(o->endpoint, err) != LG_OK)
        return NULL;
    if (o->num_workers < 0 || o->num_workers > MAX_WORKERS) {
        lg_err_set(err, LG_EINVAL, "num_workers: must be between 0 and %d", MAX_WORKERS);
        return NULL;
    }
    if (o->max_concurrent_streams < 0) {
        lg_err_set(err, LG_EINVAL, "max_concurrent_streams: must be >= 0");
        return NULL;
    }
    if (o->keepalive_time_ns < 0 || o->keepalive_timeout_ns < 0 || o->max_connection_idle_ns < 0 ||
        o->max_connection_age_ns < 0 || o->max_connection_age_grace_ns < 0 ||
        o->min_ping_interval_ns < 0) {
        lg_err_set(err, LG_EINVAL, "keepalive: durations must not be negative");
        return NULL;
    }
    struct tls_state *tls = NULL;
    if (tls_create(o, &tls, err) != LG_OK)
        return NULL;

    struct lg_grpc_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        tls_free(tls);
        lg_err_set(err, LG_ENOMEM, "out of memory");
        return NULL;
    }
    srv->tls = tls;
    srv->compress_responses = o->compress_responses;
    srv->nworkers = o->num_workers > 0 ? o->num_workers : DEFAULT_WORKERS;
    srv->endpoint = xstrdup(o->endpoint);
    srv->bind_address = make_bind_address(o->endpoint);
    srv->workers = calloc((size_t)srv->nworkers, sizeof *srv->workers);
    pthread_mutex_init(&srv->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (srv->endpoint == NULL || srv->bind_address == NULL || srv->workers == NULL) {
        lg_grpc_server_destroy(srv);
        lg_err_set(err, LG_ENOMEM, "out of memory");
        return NULL;
    }

    struct server_args a = {.n = 0};
    /* without this a second gateway on the same port silently shares it */
    int_arg(&a, GRPC_ARG_ALLOW_REUSEPORT, 0);
    if (o->max_recv_msg_size > 0)
        int_arg(&a, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                o->max_recv_msg_size > INT_MAX ? INT_MAX : (int)o->max_recv_msg_size);
    if (o->max_concurrent_streams > 0)
        int_arg(&a, GRPC_ARG_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams);
    ms_arg(&a, GRPC_ARG_KEEPALIVE_TIME_MS, o->keepalive_time_ns);
    ms_arg(&a, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, o->keepalive_timeout_ns);
    ms_arg(&a, GRPC_ARG_MAX_CONNECTION_IDLE_MS, o->max_connection_idle_ns);
    ms_arg(&a, GRPC_ARG_MAX_CONNECTION_AGE_MS, o->max_connection_age_ns);
    ms_arg(&a, GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, o->max_connection_age_grace_ns);
    ms_arg(&a, GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, o->min_ping_interval_ns);
    /* in gRPC core one argument both permits client pings with no call open and lets the
     * server's own keepalive pings go out on idle connections */
    if (o->permit_without_stream)
        int_arg(&a, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    grpc_channel_args cargs = {.num_args = a.n, .args = a.args};

    lg_grpc_route_logs();
    grpc_init();
    srv->server = grpc_server_create(&cargs, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    return srv;
}

int lg_grpc_server_add_method(struct lg_grpc_server *srv, const char *method, lg_grpc_unary_fn fn,
                              void *arg, struct lg_err *err)
{
    if (srv->started)
        return lg_err_set(err, LG_EINVAL, "grpc: methods must be added before start");
    if (method == NULL || method[0] != '/' || fn == NULL)
        return lg_err_set(err, LG_EINVAL, "grpc: method must be a path like /pkg.Service/Method");
    for (size_t i = 0; i < srv->nmethods; i++)
        if (strcmp(srv->methods[i].name, method) == 0)
            return lg_err_set(err, LG_EINVAL, "grpc: method %s added twice", method);
    struct method *m = realloc(srv->methods, (srv->nmethods + 1) * sizeof *m);
    if (m == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    srv->methods = m;
    char *name = strdup(method);
    if (name == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    m[srv->nmethods++] = (struct method){.name = name, .len = strlen(name), .fn = fn, .arg = arg};
    return LG_OK;
}

/* gRPC core only says "failed" (and logs); binding a probe socket tells the user why. */
static int explain_bind_failure(const struct lg_grpc_server *srv, struct lg_err *err)
{
    const char *reason = "gRPC core could not listen on it (see the gRPC log lines above)";
    char host[256], port[16];
    const char *a = srv->bind_address;
    const char *colon = strrchr(a, ':');
    if (strncmp(a, "unix:", 5) == 0 || colon == NULL)
        return lg_err_set(err, LG_EIO, "cannot listen on %s: %s", srv->endpoint, reason);
    size_t hl = (size_t)(colon - a);
    if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
        a++;
        hl -= 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(hl < sizeof host ? hl : sizeof host - 1), a);
    snprintf(port, sizeof port, "%s", colon + 1);

    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0)
        return lg_err_set(err, LG_EINVAL, "cannot listen on %s: cannot resolve \"%s\": %s",
                          srv->endpoint, host, gai_strerror(gai));
    int bind_errno = 0;
    for (struct addrinfo *ai = res; ai != NULL && bind_errno == 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
            bind_errno = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (bind_errno == EADDRINUSE)
        reason = "address in use";
    else if (bind_errno == EACCES)
        reason = "permission denied (ports below 1024 need privileges)";
    else if (bind_errno == EADDRNOTAVAIL)
        reason = "address not available on this host";
    else if (bind_errno != 0)
        reason = strerror(bind_errno);
    return lg_err_set(err, bind_errno == EADDRINUSE ? LG_EIO : LG_EINVAL, "cannot listen on %s: %s",
                      srv->endpoint, reason);
}

/* Stops a server whose workers never ran: drains the queue on this thread. */
static void drain_inline(struct lg_grpc_server *srv)
{
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    grpc_server_cancel_all_calls(srv->server);
    grpc_completion_queue_shutdown(srv->cq);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE && ev.tag != &srv->shutdown_tag)
            call_free(ev.tag);
    }
    srv->shutdown_notified = true;
    srv->shut_down = true;
}

int lg_grpc_server_start(struct lg_grpc_server *srv, struct lg_err *err)
{
    if (srv->started)
        return lg_err_set(err, LG_EINVAL, "grpc: server already started");
    grpc_server_credentials *creds;
    if (srv->tls != NULL) {
        grpc_ssl_client_certificate_request_type req =
            srv->tls->ca_file != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                      : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
        grpc_ssl_server_credentials_options *so;
        if (srv->tls->reload_interval_ns > 0) {
            so = grpc_ssl_server_credentials_create_options_using_config_fetcher(req, tls_fetch,
                                                                                 srv->tls);
        } else {
            grpc_ssl_server_certificate_config *cfg = tls_config(srv->tls);
            so = cfg != NULL ? grpc_ssl_server_credentials_create_options_using_config(req, cfg)
                             : NULL;
        }
        creds = so != NULL ? grpc_ssl_server_credentials_create_with_options(so) : NULL;
    } else {
        creds = grpc_insecure_server_credentials_create();
    }
    if (creds == NULL)
        return lg_err_set(err, LG_EINTERNAL, "cannot listen on %s: TLS setup failed",
                          srv->endpoint);
    srv->port = grpc_server_add_http2_port(srv->server, srv->bind_address, creds);
    grpc_server_credentials_release(creds);
    if (srv->port <= 0) {
        srv->port = 0;
        return explain_bind_failure(srv, err);
    }
    grpc_server_start(srv->server);
    srv->started = true;

    for (int i = 0; i < srv->nworkers; i++) {
        if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0)
            break;
        srv->nworkers_running++;
    }
    if (srv->nworkers_running == 0) {
        drain_inline(srv);
        return lg_err_set(err, LG_EINTERNAL, "grpc: cannot start worker threads");
    }
    int armed = 0;
    for (int i = 0; i < REQUESTS_OUTSTANDING; i++)
        armed += request_call(srv) ? 1 : 0;
    if (armed == 0) {
        lg_grpc_server_shutdown(srv, lg_now_mono_ns());
        return lg_err_set(err, LG_ENOMEM, "grpc: out of memory arming request tags");
    }
    return LG_OK;
}

int lg_grpc_server_port(const struct lg_grpc_server *srv)
{
    return srv->port;
}

/* Waits on srv->cv until pred holds or the deadline (INT64_MAX = none). Caller holds mu. */
static bool wait_until(struct lg_grpc_server *srv, bool (*pred)(struct lg_grpc_server *),
                       int64_t deadline_mono_ns)
{
    while (!pred(srv)) {
        if (deadline_mono_ns == INT64_MAX) {
            pthread_cond_wait(&srv->cv, &srv->mu);
            continue;
        }
        if (lg_now_mono_ns() >= deadline_mono_ns)
            return false;
        struct timespec ts = {.tv_sec = deadline_mono_ns / 1000000000LL,
                              .tv_nsec = deadline_mono_ns % 1000000000LL};
        pthread_cond_timedwait(&srv->cv, &srv->mu, &ts);
    }
    return true;
}

static bool is_notified(struct lg_grpc_server *srv)
{
    return srv->shutdown_notified;
}
static bool no_live_calls(struct lg_grpc_server *srv)
{
    return srv->live_calls == 0;
}

void lg_grpc_server_shutdown(struct lg_grpc_server *srv, int64_t deadline_mono_ns)
{
    if (srv == NULL || !srv->started || srv->shut_down)
        return;
    atomic_store(&srv->shutting_down, true);
    /* refuse new calls; armed request tags come back with success=0 and are freed */
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    pthread_mutex_lock(&srv->mu);
    bool graceful = wait_until(srv, is_notified, deadline_mono_ns);
    pthread_mutex_unlock(&srv->mu);
    if (!graceful)
        grpc_server_cancel_all_calls(srv->server);
    pthread_mutex_lock(&srv->mu);
    wait_until(srv, is_notified, INT64_MAX);
    /* a handler may still hold a call it will finish from another thread; the queue must
     * stay alive (and polled) until that final batch completes */
    wait_until(srv, no_live_calls, INT64_MAX);
    pthread_mutex_unlock(&srv->mu);
    grpc_completion_queue_shutdown(srv->cq);
    for (int i = 0; i < srv->nworkers_running; i++)
        pthread_join(srv->workers[i], NULL);
    srv->nworkers_running = 0;
    srv->shut_down = true;
}

void lg_grpc_server_destroy(struct lg_grpc_server *srv)
{
    if (srv == NULL)
        return;
    if (srv->server != NULL) {
        if (srv->started)
            lg_grpc_server_shutdown(srv, lg_now_mono_ns());
        /* never started: nothing listens and nothing was queued, so no shutdown dance */
        grpc_server_destroy(srv->server);
        if (!srv->started) {
            grpc_completion_queue_shutdown(srv->cq);
            while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                       .type != GRPC_QUEUE_SHUTDOWN) {
            }
        }
        grpc_completion_queue_destroy(srv->cq);
        grpc_shutdown();
    }
    for (size_t i = 0; i < srv->nmethods; i++)
        free(srv->methods[i].name);
    free(srv->methods);
    free(srv->workers);
    free(srv->endpoint);
    free(srv->bind_address);
    tls_free(srv->tls);
    pthread_cond_destroy(&srv->cv);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
