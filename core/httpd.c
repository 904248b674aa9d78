/* core/httpd.c — HTTP/1.1 server on libevent's evhttp, one event-loop thread per server.
 *
 * Owns: the listening socket (bound here, without SO_REUSEPORT, so a busy port is an
 * error instead of a silently shared port), the event base and its thread, the evhttp
 * object, the optional OpenSSL SSL_CTX (replaced when its files change, if a reload
 * interval is set), and a small table of the live connections.
 *
 * Why the connection table: libevent 2.1 has no way to ask evhttp which connections are
 * in the middle of a request, and graceful stop needs exactly that (close the idle
 * keep-alive connections at once, let the busy ones finish until the deadline). Each
 * connection gets a record when its bufferevent is created (evhttp_set_bevcb); the record
 * learns its evhttp_connection right after evhttp wires it up, marks itself busy when
 * request bytes arrive on the input buffer and idle again when a reply has been sent,
 * and is removed by the connection's close callback.
 *
 * Threads: everything below runs on the loop thread except lg_http_server_start (before
 * the thread exists), lg_http_server_stop (signals the loop with event_active, which is
 * thread-safe once evthread_use_pthreads() has run, then joins) and lg_http_server_free. */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"

/* Defaults for the options left at 0. */
#define HTTPD_DEFAULT_MAX_HEADERS_SIZE (64 * 1024)
#define HTTPD_DEFAULT_TIMEOUT_SECS     30
/* How often the loop re-checks, while stopping, whether busy connections have finished. */
#define HTTPD_DRAIN_POLL_USEC 10000
/* Initial size of the connection hash (a power of two); it doubles past one per bucket. */
#define HTTPD_CONN_BUCKETS_MIN 64

static const int all_methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                               EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                               EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH;

struct conn_rec {
    struct lg_http_server *srv;
    struct bufferevent *bev;
    struct evhttp_connection *evcon; /* NULL until registered */
    struct evbuffer_cb_entry *input_cb;
    bool busy;                    /* request bytes arrived; reply not yet complete */
    struct conn_rec *prev, *next; /* list of all records */
    struct conn_rec *hnext;       /* hash chain by evcon */
};

/* What identifies one version of a TLS file: a rotation that renames a new file into
 * place changes the inode, one that rewrites it in place changes size or mtime. */
struct file_id {
    bool exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

/* The TLS settings kept for reloads (copies of the caller's strings). */
struct tls_conf {
    char *cert_file, *key_file, *client_ca_file, *min_version;
    int64_t reload_interval_ns; /* 0 = never reload */
    /* Loop thread only: */
    int64_t last_check_ns;
    struct file_id ids[3]; /* cert, key, client CA: the versions last loaded or tried */
};

struct lg_http_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    SSL_CTX *ssl_ctx; /* replaced only on the loop thread (or before it starts) */
    struct tls_conf tls;
    int port;
    lg_http_handler handler;
    void *arg;

    pthread_t thread;
    bool thread_running;
    struct event *stop_ev;
    struct event *drain_ev;
    _Atomic int64_t deadline_mono_ns;
    atomic_bool stop_requested;
    bool stopping; /* loop thread only */

    /* deferred requests (lg_http_defer / lg_http_resume) */
    _Atomic int deferred;         /* deferred and not yet resumed */
    pthread_mutex_t resume_mu;    /* guards resumed_* and loop_done */
    struct resume_item *resumed_head, *resumed_tail;
    bool loop_done;               /* finish_loop ran: nothing may be resumed any more */
    struct event *resume_ev;

    struct conn_rec *conns; /* all records */
    size_t nconns;
    struct conn_rec **buckets; /* registered records by evcon */
    size_t nbuckets;
    size_t nregistered;
};

/* ---- process-wide setup ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_init_rc;

static void global_init(void)
{
    global_init_rc = evthread_use_pthreads();
    /* A peer that closes early would otherwise kill the process with SIGPIPE on the next
     * write (libevent and OpenSSL write with plain send/writev). Respect a handler the
     * application installed; only replace the default action. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* ---- endpoint parsing and binding ---- */

int lg_parse_endpoint(const char *endpoint, char *host, size_t hostlen, int *port,
                      struct lg_err *err)
{
    if (endpoint == NULL || endpoint[0] == '\0')
        return lg_err_set(err, LG_EINVAL, "endpoint is empty (want host:port)");
    const char *host_start = endpoint;
    size_t host_len;
    const char *port_str;
    if (endpoint[0] == '[') {
        const char *close = strchr(endpoint, ']');
        if (close == NULL)
            return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": missing ']'", endpoint);
        if (close[1] != ':')
            return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": missing port after ']'", endpoint);
        host_start = endpoint + 1;
        host_len = (size_t)(close - host_start);
        port_str = close + 2;
    } else {
        const char *colon = strrchr(endpoint, ':');
        if (colon == NULL)
            return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": missing port (want host:port)",
                              endpoint);
        if (memchr(endpoint, ':', (size_t)(colon - endpoint)) != NULL)
            return lg_err_set(err, LG_EINVAL,
                              "endpoint \"%s\": too many colons (write IPv6 as [addr]:port)",
                              endpoint);
        host_len = (size_t)(colon - endpoint);
        port_str = colon + 1;
    }
    if (port_str[0] == '\0')
        return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": missing port", endpoint);
    long value = 0;
    for (const char *p = port_str; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": port \"%s\" is not a number",
                              endpoint, port_str);
        value = value * 10 + (*p - '0');
        if (value > 65535)
            return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": port %s is out of range 0-65535",
                              endpoint, port_str);
    }
    if (host_len + 1 > hostlen)
        return lg_err_set(err, LG_EINVAL, "endpoint \"%s\": host is too long", endpoint);
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    *port = (int)value;
    return LG_OK;
}

/* Resolves `host` to one address to bind, the way Go's net.Listen does for the Collector:
 * "" = every interface (dual-stack when IPv6 exists), "localhost" = 127.0.0.1, literal
 * addresses as written, other names to their first (IPv4-preferred) address. */
static int resolve_bind_addr(const char *host, int port, const char *endpoint,
                             struct sockaddr_storage *ss, socklen_t *sslen, bool *dual_stack,
                             struct lg_err *err)
{
    memset(ss, 0, sizeof *ss);
    *dual_stack = false;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (host[0] == '\0' || strcmp(host, "::") == 0) {
        v6->sin6_family = AF_INET6;
        v6->sin6_addr = in6addr_any;
        v6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *v6;
        *dual_stack = true;
        return LG_OK;
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *sslen = sizeof *v4;
        return LG_OK;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof *v6;
        return LG_OK;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0)
        return lg_err_set(err, LG_EINVAL, "cannot listen on %s: cannot resolve \"%s\": %s",
                          endpoint, host, gai_strerror(rc));
    const struct addrinfo *pick = res;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sslen = pick->ai_addrlen;
    if (ss->ss_family == AF_INET)
        v4->sin_port = htons((uint16_t)port);
    else
        v6->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return LG_OK;
}

static int open_listener(const char *endpoint, evutil_socket_t *out, int *bound_port,
                         struct lg_err *err)
{
    char host[256];
    int port;
    int rc = lg_parse_endpoint(endpoint, host, sizeof host, &port, err);
    if (rc != LG_OK)
        return rc;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    bool dual_stack;
    rc = resolve_bind_addr(host, port, endpoint, &ss, &sslen, &dual_stack, err);
    if (rc != LG_OK)
        return rc;

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 && dual_stack && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
        /* No IPv6 on this host: all interfaces means all IPv4 interfaces. */
        struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
        memset(&ss, 0, sizeof ss);
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons((uint16_t)port);
        sslen = sizeof *v4;
        dual_stack = false;
        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    }
    if (fd < 0)
        return lg_err_set(err, LG_EIO, "cannot listen on %s: %s", endpoint, strerror(errno));
    /* SO_REUSEADDR only lets us rebind over TIME_WAIT leftovers; on Linux it never lets
     * two listeners share a port. SO_REUSEPORT (which would) is deliberately not set. */
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual_stack)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return lg_err_set(err, LG_EIO, "cannot listen on %s: %s", endpoint, strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t gotlen = sizeof got;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&got, &gotlen) == 0) {
        if (got.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&got)->sin_port);
        else if (got.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
    }
    *out = fd;
    return LG_OK;
}

/* ---- TLS ---- */

static void openssl_error_text(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, len, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

static int parse_tls_version(const char *v, int *out, struct lg_err *err)
{
    static const struct {
        const char *name;
        int version;
    } versions[] = {
        {"1.0", TLS1_VERSION},
        {"1.1", TLS1_1_VERSION},
        {"1.2", TLS1_2_VERSION},
        {"1.3", TLS1_3_VERSION},
    };
    if (v == NULL || v[0] == '\0') {
        *out = TLS1_2_VERSION;
        return LG_OK;
    }
    for (size_t i = 0; i < LG_ARRAY_LEN(versions); i++) {
        if (strcmp(v, versions[i].name) == 0) {
            *out = versions[i].version;
            return LG_OK;
        }
    }
    return lg_err_set(err, LG_EINVAL,
                      "tls.min_version: unknown TLS version \"%s\" (use 1.0, 1.1, 1.2 or 1.3)", v);
}

/* We speak HTTP/1.1 only: pick it when the client offers ALPN, so a client that prefers
 * h2 falls back instead of failing. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, http11, sizeof http11 - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int tls_setup(const struct tls_conf *o, SSL_CTX **out, struct lg_err *err)
{
    char detail[256];
    int min_version;
    int rc = parse_tls_version(o->min_version, &min_version, err);
    if (rc != LG_OK)
        return rc;
    if (o->key_file == NULL || o->key_file[0] == '\0')
        return lg_err_set(err, LG_EINVAL, "tls.key_file: required when tls.cert_file is set");
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return lg_err_set(err, LG_ENOMEM, "tls: cannot create an OpenSSL context");
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
        openssl_error_text(detail, sizeof detail);
        rc = lg_err_set(err, LG_EINVAL, "tls.cert_file: cannot load \"%s\": %s", o->cert_file,
                        detail);
        goto failed;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            rc = lg_err_set(err, LG_EINVAL,
                            "tls.key_file: \"%s\" does not match tls.cert_file \"%s\"",
                            o->key_file, o->cert_file);
            goto failed;
        }
        openssl_error_text(detail, sizeof detail);
        rc = lg_err_set(err, LG_EINVAL, "tls.key_file: cannot load \"%s\": %s", o->key_file,
                        detail);
        goto failed;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        rc = lg_err_set(err, LG_EINVAL, "tls.key_file: \"%s\" does not match tls.cert_file \"%s\"",
                        o->key_file, o->cert_file);
        goto failed;
    }
    if (o->client_ca_file != NULL && o->client_ca_file[0] != '\0') {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_file);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
            if (names != NULL)
                sk_X509_NAME_pop_free(names, X509_NAME_free);
            openssl_error_text(detail, sizeof detail);
            rc = lg_err_set(err, LG_EINVAL, "tls.client_ca_file: cannot load \"%s\": %s",
                            o->client_ca_file, detail);
            goto failed;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = ctx;
    return LG_OK;
failed:
    SSL_CTX_free(ctx);
    return rc;
}

static void file_id_get(const char *path, struct file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (path == NULL || path[0] == '\0' || stat(path, &st) != 0)
        return;
    id->exists = true;
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
}

static bool file_id_equal(const struct file_id *a, const struct file_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void tls_files_id(const struct tls_conf *t, struct file_id ids[3])
{
    file_id_get(t->cert_file, &ids[0]);
    file_id_get(t->key_file, &ids[1]);
    file_id_get(t->client_ca_file, &ids[2]);
}

/* Called for each new connection (loop thread): when the interval has passed and a file
 * changed, load the files into a new context and use it from this connection on.
 * Connections already open keep the old context through their SSL's own reference.
 * The versions tried are remembered even when loading fails, so a bad file is reported
 * once, and the next change (say the key that completes a rotation) is tried again. */
static void tls_maybe_reload(struct lg_http_server *s)
{
    struct tls_conf *t = &s->tls;
    int64_t now = lg_now_mono_ns();
    if (now - t->last_check_ns < t->reload_interval_ns)
        return;
    t->last_check_ns = now;
    struct file_id ids[3];
    tls_files_id(t, ids);
    bool changed = false;
    for (size_t i = 0; i < LG_ARRAY_LEN(ids); i++)
        changed = changed || !file_id_equal(&ids[i], &t->ids[i]);
    if (!changed)
        return;
    memcpy(t->ids, ids, sizeof ids);
    SSL_CTX *ctx = NULL;
    struct lg_err err = {{0}};
    if (tls_setup(t, &ctx, &err) != LG_OK) {
        lg_warn("httpd", "TLS certificate reload failed, keeping the current one: %s", err.msg);
        return;
    }
    SSL_CTX_free(s->ssl_ctx);
    s->ssl_ctx = ctx;
    lg_info("httpd", "TLS certificate reloaded from %s", t->cert_file);
}

static void tls_conf_free(struct tls_conf *t)
{
    free(t->cert_file);
    free(t->key_file);
    free(t->client_ca_file);
    free(t->min_version);
}

/* Copies a possibly NULL string; false when out of memory. */
static bool dup_opt(const char *src, char **dst)
{
    *dst = NULL;
    if (src == NULL)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

/* ---- connection records ---- */

static size_t conn_hash(const struct lg_http_server *s, const struct evhttp_connection *evcon)
{
    uintptr_t p = (uintptr_t)evcon;
    p ^= p >> 17;
    p *= (uintptr_t)0x9E3779B97F4A7C15ULL;
    return (size_t)(p >> 7) & (s->nbuckets - 1);
}

static struct conn_rec *conn_lookup(const struct lg_http_server *s,
                                    const struct evhttp_connection *evcon)
{
    if (s->nbuckets == 0 || evcon == NULL)
        return NULL;
    for (struct conn_rec *c = s->buckets[conn_hash(s, evcon)]; c != NULL; c = c->hnext)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static int conn_hash_insert(struct lg_http_server *s, struct conn_rec *c)
{
    if (s->nregistered + 1 > s->nbuckets) {
        size_t n = s->nbuckets == 0 ? HTTPD_CONN_BUCKETS_MIN : s->nbuckets * 2;
        struct conn_rec **nb = calloc(n, sizeof *nb);
        if (nb == NULL)
            return LG_ENOMEM;
        struct conn_rec **old = s->buckets;
        size_t oldn = s->nbuckets;
        s->buckets = nb;
        s->nbuckets = n;
        for (size_t i = 0; i < oldn; i++) {
            struct conn_rec *e = old[i];
            while (e != NULL) {
                struct conn_rec *next = e->hnext;
                size_t h = conn_hash(s, e->evcon);
                e->hnext = nb[h];
                nb[h] = e;
                e = next;
            }
        }
        free(old);
    }
    size_t h = conn_hash(s, c->evcon);
    c->hnext = s->buckets[h];
    s->buckets[h] = c;
    s->nregistered++;
    return LG_OK;
}

static void conn_hash_remove(struct lg_http_server *s, struct conn_rec *c)
{
    if (c->evcon == NULL || s->nbuckets == 0)
        return;
    for (struct conn_rec **pp = &s->buckets[conn_hash(s, c->evcon)]; *pp != NULL;
         pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            s->nregistered--;
            return;
        }
    }
}

/* Unlinks and frees a record; `bev_alive` says whether its bufferevent still exists. */
static void conn_release(struct conn_rec *c, bool bev_alive)
{
    struct lg_http_server *s = c->srv;
    if (bev_alive && c->input_cb != NULL)
        evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->input_cb);
    conn_hash_remove(s, c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn_rec *c = arg;
    if (info->n_added > 0)
        c->busy = true;
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    conn_release(arg, true);
}

/* Runs right after evhttp has wrapped the new bufferevent in its connection (it is
 * activated from the bevcb, so it runs before any read on the new socket). The
 * connection is the argument evhttp set on the bufferevent's callbacks. */
static void conn_register(evutil_socket_t fd, short what, void *arg)
{
    struct conn_rec *c = arg;
    struct bufferevent *bev = c->bev;
    bufferevent_data_cb readcb = NULL, writecb = NULL;
    bufferevent_event_cb eventcb = NULL;
    void *cbarg = NULL;
    bufferevent_getcb(bev, &readcb, &writecb, &eventcb, &cbarg);
    struct evhttp_connection *evcon = cbarg;
    if (eventcb == NULL || evcon == NULL || evhttp_connection_get_bufferevent(evcon) != bev) {
        /* evhttp gave up on this connection before wiring it (or already freed it). */
        conn_release(c, true);
        bufferevent_decref(bev);
        return;
    }
    c->evcon = evcon;
    if (conn_hash_insert(c->srv, c) != LG_OK) {
        c->evcon = NULL;
        conn_release(c, true);
        evhttp_connection_free(evcon);
        bufferevent_decref(bev);
        return;
    }
    evhttp_connection_set_closecb(evcon, on_conn_close, c);
    bufferevent_decref(bev);
}

/* Returning NULL makes evhttp fall back to a plain socket bufferevent; on_request refuses
 * requests on such a connection when the server is TLS-only. */
static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    struct lg_http_server *s = arg;
    struct bufferevent *bev;
    if (s->ssl_ctx != NULL) {
        if (s->tls.reload_interval_ns > 0)
            tls_maybe_reload(s);
        SSL *ssl = SSL_new(s->ssl_ctx);
        if (ssl == NULL)
            return NULL;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
            SSL_free(ssl);
            return NULL;
        }
        /* Clients commonly close without close_notify; that is not an error for HTTP
         * with explicit lengths. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL)
            return NULL;
    }
    struct conn_rec *c = calloc(1, sizeof *c);
    if (c == NULL)
        return bev; /* served, just not tracked: stop does not wait for it */
    c->srv = s;
    c->bev = bev;
    c->input_cb = evbuffer_add_cb(bufferevent_get_input(bev), on_input, c);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    /* Hold the bufferevent until conn_register has looked at it. */
    bufferevent_incref(bev);
    if (event_base_once(base, -1, EV_TIMEOUT, conn_register, c, NULL) != 0) {
        bufferevent_decref(bev);
        conn_release(c, true);
    }
    return bev;
}

/* ---- requests ---- */

static void on_reply_done(struct evhttp_request *req, void *arg)
{
    struct conn_rec *c = arg;
    /* A pipelined next request may already be waiting in the input buffer. */
    c->busy = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct lg_http_server *s = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (s->ssl_ctx != NULL &&
        bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon)) == NULL) {
        /* make_bev failed (out of memory) and evhttp fell back to a plain socket: never
         * serve plaintext on a TLS endpoint. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        evhttp_send_error(req, HTTP_BADREQUEST, "TLS required");
        return;
    }
    struct conn_rec *c = conn_lookup(s, evcon);
    if (c != NULL)
        evhttp_request_set_on_complete_cb(req, on_reply_done, c);
    if (s->stopping) {
        /* Draining: finish this request, then let the client reconnect elsewhere. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    }
    s->handler(req, s->arg);
}

/* ---- deferred replies ---- */

struct resume_item {
    struct resume_item *next;
    struct evhttp_request *req;
    lg_http_resume_fn fn;
    void *arg;
};

void lg_http_defer(struct lg_http_server *s) { atomic_fetch_add(&s->deferred, 1); }

int lg_http_resume(struct lg_http_server *s, struct evhttp_request *req, lg_http_resume_fn fn, void *arg)
{
    struct resume_item *it = malloc(sizeof *it);
    pthread_mutex_lock(&s->resume_mu);
    if (s->loop_done || it == NULL) {
        pthread_mutex_unlock(&s->resume_mu);
        int rc = it == NULL ? LG_ENOMEM : LG_ECLOSED;
        free(it);
        atomic_fetch_sub(&s->deferred, 1);
        return rc;
    }
    *it = (struct resume_item){.req = req, .fn = fn, .arg = arg};
    if (s->resumed_tail)
        s->resumed_tail->next = it;
    else
        s->resumed_head = it;
    s->resumed_tail = it;
    /* under the lock: finish_loop (which sets loop_done) cannot run between the check and
     * this, so the event and the server still exist. Thread-safe: evthread_use_pthreads ran. */
    event_active(s->resume_ev, EV_READ, 0);
    pthread_mutex_unlock(&s->resume_mu);
    return LG_OK;
}

/* Loop thread: sends the replies workers have finished. With `close`, no later resume is
 * accepted (finish_loop, before the connections are freed). */
static void run_resumed(struct lg_http_server *s, bool close)
{
    pthread_mutex_lock(&s->resume_mu);
    struct resume_item *it = s->resumed_head;
    s->resumed_head = s->resumed_tail = NULL;
    if (close)
        s->loop_done = true;
    pthread_mutex_unlock(&s->resume_mu);
    while (it != NULL) {
        struct resume_item *next = it->next;
        atomic_fetch_sub(&s->deferred, 1);
        it->fn(it->req, it->arg);
        free(it);
        it = next;
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg) { run_resumed(arg, false); }

/* ---- stop ---- */

/* Records left after evhttp_free are the ones accepted so recently that conn_register has
 * not run (and now never will): drop the reference they hold so the socket closes. */
static void release_unregistered(struct lg_http_server *s)
{
    while (s->conns != NULL) {
        struct conn_rec *c = s->conns;
        struct bufferevent *bev = c->bev;
        bool holds_ref = c->evcon == NULL;
        conn_release(c, holds_ref);
        if (holds_ref)
            bufferevent_decref(bev);
    }
}

static void finish_loop(struct lg_http_server *s)
{
    if (s->drain_ev != NULL)
        event_del(s->drain_ev);
    /* Replies already computed go out while their connections still exist; work still
     * running past the deadline is dropped by its worker (lg_http_resume refuses). */
    run_resumed(s, true);
    if (s->http != NULL) {
        /* Frees every remaining connection; their close callbacks release the records. */
        evhttp_free(s->http);
        s->http = NULL;
    }
    release_unregistered(s);
    event_base_loopbreak(s->base);
}

static void drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct lg_http_server *s = arg;
    bool any_busy = atomic_load(&s->deferred) > 0;
    for (struct conn_rec *c = s->conns; c != NULL && !any_busy; c = c->next) {
        if (c->busy || c->evcon == NULL) {
            any_busy = true;
            break;
        }
    }
    if (!any_busy || lg_now_mono_ns() >= atomic_load(&s->deadline_mono_ns)) {
        finish_loop(s);
        return;
    }
    /* Idle connections left over (their reply just finished) are closed now. */
    struct conn_rec *c = s->conns;
    while (c != NULL) {
        struct conn_rec *next = c->next;
        if (!c->busy && c->evcon != NULL)
            evhttp_connection_free(c->evcon);
        c = next;
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct lg_http_server *s = arg;
    if (s->stopping)
        return;
    s->stopping = true;
    if (s->bound != NULL) {
        evhttp_del_accept_socket(s->http, s->bound); /* closes the listening socket */
        s->bound = NULL;
    }
    struct conn_rec *c = s->conns;
    while (c != NULL) {
        struct conn_rec *next = c->next;
        if (!c->busy && c->evcon != NULL)
            evhttp_connection_free(c->evcon);
        c = next;
    }
    drain_check(-1, 0, s);
    if (s->http != NULL) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = HTTPD_DRAIN_POLL_USEC};
        event_add(s->drain_ev, &tv);
    }
}

static void *loop_main(void *arg)
{
    struct lg_http_server *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- public API ---- */

int lg_http_server_start(const struct lg_http_server_opts *opts, lg_http_handler handler, void *arg,
                         struct lg_http_server **out, struct lg_err *err)
{
    pthread_once(&global_once, global_init);
    if (global_init_rc != 0)
        return lg_err_set(err, LG_EINTERNAL, "libevent: cannot enable thread support");
    struct lg_http_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    pthread_mutex_init(&s->resume_mu, NULL);
    s->handler = handler;
    s->arg = arg;
    evutil_socket_t fd = -1;
    int rc;

    if (opts->tls_cert_file != NULL && opts->tls_cert_file[0] != '\0') {
        struct tls_conf *t = &s->tls;
        if (!dup_opt(opts->tls_cert_file, &t->cert_file) ||
            !dup_opt(opts->tls_key_file, &t->key_file) ||
            !dup_opt(opts->tls_client_ca_file, &t->client_ca_file) ||
            !dup_opt(opts->tls_min_version, &t->min_version)) {
            rc = lg_err_set(err, LG_ENOMEM, "out of memory");
            goto failed;
        }
        t->reload_interval_ns = opts->tls_reload_interval_ns > 0 ? opts->tls_reload_interval_ns : 0;
        /* Identify the files before reading them: a change racing with this start is
         * then seen (and loaded) by the first reload check. */
        tls_files_id(t, t->ids);
        t->last_check_ns = lg_now_mono_ns();
        rc = tls_setup(t, &s->ssl_ctx, err);
        if (rc != LG_OK)
            goto failed;
    }
    rc = open_listener(opts->endpoint, &fd, &s->port, err);
    if (rc != LG_OK)
        goto failed;

    rc = lg_err_set(err, LG_ENOMEM, "cannot create the HTTP server for %s", opts->endpoint);
    s->base = event_base_new();
    if (s->base == NULL)
        goto failed;
    s->http = evhttp_new(s->base);
    s->stop_ev = event_new(s->base, -1, 0, on_stop, s);
    s->drain_ev = event_new(s->base, -1, EV_PERSIST, drain_check, s);
    s->resume_ev = event_new(s->base, -1, 0, on_resume, s);
    if (s->http == NULL || s->stop_ev == NULL || s->drain_ev == NULL || s->resume_ev == NULL)
        goto failed;
    evhttp_set_max_body_size(s->http, opts->max_body_size > 0 ? (ev_ssize_t)opts->max_body_size
                                                              : (ev_ssize_t)-1);
    evhttp_set_max_headers_size(s->http, opts->max_headers_size > 0
                                             ? (ev_ssize_t)opts->max_headers_size
                                             : (ev_ssize_t)HTTPD_DEFAULT_MAX_HEADERS_SIZE);
    evhttp_set_timeout(s->http,
                       opts->timeout_secs > 0 ? opts->timeout_secs : HTTPD_DEFAULT_TIMEOUT_SECS);
    /* Every method reaches the handler, which answers 405 itself with an Allow header. */
    evhttp_set_allowed_methods(s->http, (ev_uint16_t)all_methods);
    /* Handlers always say what they send; no surprise text/html on bodiless replies. */
    evhttp_set_default_content_type(s->http, NULL);
    /* Read (and discard) an oversized body before answering 413, so the client is still
     * listening when the answer comes instead of seeing a reset. */
    evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_bevcb(s->http, make_bev, s);
    evhttp_set_gencb(s->http, on_request, s);
    s->bound = evhttp_accept_socket_with_handle(s->http, fd);
    if (s->bound == NULL)
        goto failed;
    fd = -1; /* owned by the bound socket now */
    atomic_store(&s->deadline_mono_ns, INT64_MAX);
    if (pthread_create(&s->thread, NULL, loop_main, s) != 0) {
        rc = lg_err_set(err, LG_EINTERNAL, "cannot start the HTTP thread for %s", opts->endpoint);
        goto failed;
    }
    s->thread_running = true;
    *out = s;
    return LG_OK;

failed:
    if (fd >= 0)
        close(fd);
    lg_http_server_free(s);
    return rc;
}

void lg_http_server_stop(struct lg_http_server *s, int64_t deadline_mono_ns)
{
    if (s == NULL || !s->thread_running)
        return;
    if (!atomic_exchange(&s->stop_requested, true)) {
        atomic_store(&s->deadline_mono_ns, deadline_mono_ns);
        event_active(s->stop_ev, EV_READ, 0);
    }
    pthread_join(s->thread, NULL);
    s->thread_running = false;
}

void lg_http_server_free(struct lg_http_server *s)
{
    if (s == NULL)
        return;
    lg_http_server_stop(s, lg_now_mono_ns());
    if (s->http != NULL)
        evhttp_free(s->http); /* never started, or the loop ended without finish_loop */
    release_unregistered(s);
    free(s->buckets);
    if (s->stop_ev != NULL)
        event_free(s->stop_ev);
    if (s->drain_ev != NULL)
        event_free(s->drain_ev);
    if (s->resume_ev != NULL)
        event_free(s->resume_ev);
    pthread_mutex_destroy(&s->resume_mu);
    if (s->base != NULL)
        event_base_free(s->base);
    if (s->ssl_ctx != NULL)
        SSL_CTX_free(s->ssl_ctx);
    tls_conf_free(&s->tls);
    free(s);
}

int lg_http_server_port(const struct lg_http_server *s)
{
    return s != NULL ? s->port : -1;
}
