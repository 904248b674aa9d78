/* exporters/otlp_http.c — the `otlp_http` exporter (alias `otlphttp`): POSTs traces, metrics
 * and logs to an OTLP/HTTP backend with libcurl, protobuf or JSON, gzip/zstd/none, behind
 * the shared exporter helper (queue, consumer threads, retry with backoff, persistent
 * queue).
 *
 * Owns: the per-signal URLs, a pool of curl easy handles (a consumer thread takes one for
 * an attempt and puts it back, so each thread in practice keeps reusing a warm handle and
 * its connection; HTTP/2 is negotiated over TLS when the server offers it), and the helper.
 *
 * Outcome of a request, as the OTLP/HTTP spec and the Collector classify it (REFERENCE §3):
 *   2xx                 delivered; the body (protobuf or JSON, by its Content-Type) may
 *                       carry partial_success: rejected items are counted as permanently
 *                       failed and logged with error_message
 *   429, 502, 503, 504  retryable; Retry-After (seconds or an HTTP-date) is passed on to
 *                       the helper, which waits at least that long
 *   other status        permanent; the google.rpc.Status body's message is logged
 *   no response (connection refused/reset, timeout, TLS handshake) retryable
 * Header values (which may hold tokens) are never logged. */
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "../core/auth.h"
#include "../core/component.h"
#include "../core/compress.h"
#include "../core/exporter_helper.h"
#include "../core/http_util.h"
#include "../core/log.h"
#include "../core/otlp_json.h"
#include "../core/runtime.h"
#include "otlp_common.h"

/* Response bodies are read up to this size: enough for any partial_success or Status
 * message; the rest is discarded (the request is not failed for it). */
#define RESPONSE_BODY_MAX (64 * 1024)
/* Retry-After values beyond this are treated as this: a backend asking for an hour must
 * not park a consumer beyond what max_elapsed_time allows anyway. */
#define RETRY_AFTER_MAX_S (3600)
/* zstd level for request bodies: the library default, fast with a good ratio. */
#define ZSTD_LEVEL 3

struct http_conf {
    const char *endpoint;
    const char *signal_endpoint[LG_SIGNAL_COUNT];
    struct lg_otlp_tls_conf tls;
    struct lg_otlp_headers headers;
    const char *compression;
    const char *encoding;
    struct lg_otlp_auth_conf auth;
    bool auth_present;
    struct lg_exporter_helper_conf helper;
};

static const struct lg_conf_field http_tls_fields[] = {
    LG_CONF_BOOL("insecure", "false", struct lg_otlp_tls_conf, insecure, "accepted: the URL scheme (http/https) decides TLS"),
    LG_CONF_BOOL("insecure_skip_verify", "false", struct lg_otlp_tls_conf, insecure_skip_verify, "do not verify the server's certificate (testing only)"),
    LG_OTLP_TLS_FILE_FIELDS,
    LG_CONF_STRING("min_version", "1.2", struct lg_otlp_tls_conf, min_version, "lowest TLS version: 1.0, 1.1, 1.2, 1.3"),
    LG_CONF_STRING("max_version", NULL, struct lg_otlp_tls_conf, max_version, "highest TLS version (default: the newest)"),
    LG_CONF_END,
};

static const struct lg_conf_field http_fields[] = {
    LG_CONF_STRING("endpoint", NULL, struct http_conf, endpoint, "base URL; /v1/traces, /v1/metrics, /v1/logs are appended"),
    LG_CONF_STRING("traces_endpoint", NULL, struct http_conf, signal_endpoint[LG_SIGNAL_TRACES], "full URL for traces (overrides endpoint)"),
    LG_CONF_STRING("metrics_endpoint", NULL, struct http_conf, signal_endpoint[LG_SIGNAL_METRICS], "full URL for metrics (overrides endpoint)"),
    LG_CONF_STRING("logs_endpoint", NULL, struct http_conf, signal_endpoint[LG_SIGNAL_LOGS], "full URL for logs (overrides endpoint)"),
    LG_CONF_SECTION("tls", struct http_conf, tls, http_tls_fields, "TLS client settings (https URLs)"),
    LG_CONF_CUSTOM("headers", NULL, struct http_conf, headers, lg_otlp_parse_headers, "headers sent with every request"),
    LG_CONF_STRING("compression", "gzip", struct http_conf, compression, "gzip | zstd | none"),
    LG_CONF_STRING("encoding", "proto", struct http_conf, encoding, "proto | json"),
    LG_CONF_SECTION_OPT("auth", struct http_conf, auth, auth_present, lg_otlp_auth_fields, "client authentication through an extension"),
    LG_CONF_ACCEPTED("read_buffer_size", "accepted; libcurl sizes its buffers"),
    LG_CONF_ACCEPTED("write_buffer_size", "accepted; libcurl sizes its buffers"),
    LG_CONF_ACCEPTED("max_idle_conns", "accepted; connections are kept per consumer"),
    LG_CONF_ACCEPTED("max_idle_conns_per_host", "accepted; connections are kept per consumer"),
    LG_CONF_ACCEPTED("max_conns_per_host", "accepted; at most one connection per consumer"),
    LG_CONF_ACCEPTED("idle_conn_timeout", "accepted; libcurl's connection cache decides"),
    LG_CONF_ACCEPTED("disable_keep_alives", "accepted; connections are always reused"),
    LG_CONF_ACCEPTED("http2_read_idle_timeout", "accepted"),
    LG_CONF_ACCEPTED("http2_ping_timeout", "accepted"),
    LG_EXPORTER_HELPER_FIELDS(struct http_conf, helper),
    LG_CONF_END,
};

enum http_compression { COMP_NONE, COMP_GZIP, COMP_ZSTD };

struct http_state {
    const char *id;
    struct http_conf *conf;
    char *url[LG_SIGNAL_COUNT]; /* malloc'd */
    enum http_compression compression;
    bool json;
    long ssl_version;           /* CURLOPT_SSLVERSION */
    struct lg_authenticator *auth;
    /* pool of idle easy handles */
    pthread_mutex_t pool_lock;
    CURL **pool;
    size_t npool, pool_cap;
    struct lg_exporter_helper *helper;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init_once(void)
{
    /* before any thread uses libcurl; never cleaned up (process lifetime, like OpenSSL) */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *join_url(const char *base, const char *path)
{
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    size_t n = bl + strlen(path) + 1;
    char *u = malloc(n);
    if (u != NULL)
        snprintf(u, n, "%.*s%s", (int)bl, base, path);
    return u;
}

static bool http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

static int tls_version(const char *v, long *out)
{
    if (v == NULL || v[0] == '\0')
        *out = CURL_SSLVERSION_TLSv1_2;
    else if (strcmp(v, "1.0") == 0)
        *out = CURL_SSLVERSION_TLSv1_0;
    else if (strcmp(v, "1.1") == 0)
        *out = CURL_SSLVERSION_TLSv1_1;
    else if (strcmp(v, "1.2") == 0)
        *out = CURL_SSLVERSION_TLSv1_2;
    else if (strcmp(v, "1.3") == 0)
        *out = CURL_SSLVERSION_TLSv1_3;
    else
        return LG_EINVAL;
    return LG_OK;
}

static void http_state_fini(struct http_state *st)
{
    for (size_t i = 0; i < st->npool; i++)
        curl_easy_cleanup(st->pool[i]);
    free(st->pool);
    st->pool = NULL;
    st->npool = 0;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        free(st->url[s]);
        st->url[s] = NULL;
    }
    pthread_mutex_destroy(&st->pool_lock);
}

static int http_state_init(struct http_state *st, const char *id, struct http_conf *conf,
                           const struct lg_node *node, struct lg_err *err)
{
    memset(st, 0, sizeof *st);
    st->id = id;
    st->conf = conf;
    pthread_mutex_init(&st->pool_lock, NULL);
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return lg_err_set(err, LG_EINTERNAL, "exporters.%s: libcurl initialisation failed: %s", id, curl_easy_strerror(curl_init_rc));
    static const char *const paths[LG_SIGNAL_COUNT] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
    static const char *const keys[LG_SIGNAL_COUNT] = {"traces_endpoint", "metrics_endpoint", "logs_endpoint"};
    bool have_base = conf->endpoint != NULL && conf->endpoint[0] != '\0';
    if (have_base && !http_url(conf->endpoint))
        return lg_conf_error(err, lg_node_get(node, "endpoint"), "expected an http:// or https:// URL, got \"%s\"", conf->endpoint);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        const char *se = conf->signal_endpoint[s];
        if (se != NULL && se[0] != '\0') {
            if (!http_url(se))
                return lg_conf_error(err, lg_node_get(node, keys[s]), "expected an http:// or https:// URL, got \"%s\"", se);
            st->url[s] = strdup(se);
        } else if (have_base) {
            st->url[s] = join_url(conf->endpoint, paths[s]);
        } else {
            continue; /* checked below: only an error when no signal has a URL */
        }
        if (st->url[s] == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    if (!have_base && st->url[0] == NULL && st->url[1] == NULL && st->url[2] == NULL)
        return node ? lg_conf_error(err, node, "endpoint (or traces_endpoint / metrics_endpoint / logs_endpoint) is required")
                    : lg_err_set(err, LG_EINVAL, "exporters.%s: endpoint is required", id);
    const char *comp = conf->compression ? conf->compression : "gzip";
    if (strcmp(comp, "gzip") == 0)
        st->compression = COMP_GZIP;
    else if (strcmp(comp, "zstd") == 0)
        st->compression = COMP_ZSTD;
    else if (strcmp(comp, "none") == 0 || comp[0] == '\0')
        st->compression = COMP_NONE;
    else
        return lg_conf_error(err, lg_node_get(node, "compression"), "expected gzip, zstd or none, got \"%s\"", comp);
    const char *enc = conf->encoding ? conf->encoding : "proto";
    if (strcmp(enc, "json") == 0)
        st->json = true;
    else if (strcmp(enc, "proto") != 0)
        return lg_conf_error(err, lg_node_get(node, "encoding"), "expected proto or json, got \"%s\"", enc);
    const struct lg_node *tls_node = lg_node_get(node, "tls");
    long minv = 0, maxv = 0;
    if (tls_version(conf->tls.min_version, &minv) != LG_OK)
        return lg_conf_error(err, lg_node_get(tls_node, "min_version"), "expected 1.0, 1.1, 1.2 or 1.3, got \"%s\"", conf->tls.min_version);
    if (conf->tls.max_version != NULL && conf->tls.max_version[0] != '\0') {
        if (tls_version(conf->tls.max_version, &maxv) != LG_OK)
            return lg_conf_error(err, lg_node_get(tls_node, "max_version"), "expected 1.0, 1.1, 1.2 or 1.3, got \"%s\"", conf->tls.max_version);
        if (maxv < minv)
            return lg_conf_error(err, lg_node_get(tls_node, "max_version"), "max_version is below min_version");
        maxv <<= 16; /* CURL_SSLVERSION_MAX_TLSv1_x are the min values shifted by 16 */
    }
    st->ssl_version = minv | maxv;
    return lg_otlp_tls_check_files(&conf->tls, tls_node, true, err);
}

/* ---- request body ---- */

/* gzip at the Collector's confighttp default level (zlib's default, 6), through
 * libdeflate: one call over the encoded request, a compressor kept per consumer thread */
static uint8_t *gzip_bytes(const uint8_t *in, size_t len, size_t *out_len)
{
    return lg_gzip_alloc(LG_GZIP_LEVEL_DEFAULT, in, len, out_len);
}

static uint8_t *zstd_bytes(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    uint8_t *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t n = ZSTD_compress(out, cap, in, len, ZSTD_LEVEL);
    if (ZSTD_isError(n)) {
        free(out);
        return NULL;
    }
    *out_len = n;
    return out;
}

/* ---- response ---- */

struct http_response {
    char body[RESPONSE_BODY_MAX];
    size_t len;
    char content_type[128];
    char retry_after[128];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct http_response *r = arg;
    size_t n = size * nmemb, room = sizeof r->body - r->len;
    memcpy(r->body + r->len, data, n < room ? n : room);
    r->len += n < room ? n : room;
    return n; /* the rest is dropped, the transfer goes on */
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct http_response *r = arg;
    size_t n = size * nmemb;
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue or a redirect): forget earlier headers */
        r->content_type[0] = r->retry_after[0] = '\0';
    } else if (!lg_http_header_value(line, n, "content-type:", r->content_type, sizeof r->content_type)) {
        lg_http_header_value(line, n, "retry-after:", r->retry_after, sizeof r->retry_after);
    }
    return n;
}

static bool is_json_type(const char *ct)
{
    return strncasecmp(ct, "application/json", 16) == 0;
}

static void read_partial_success(const struct http_state *st, enum lg_signal sig, const struct http_response *r,
                                 struct lg_export_result *res)
{
    if (r->len == 0 || r->len >= sizeof r->body)
        return; /* empty, or cut short: not worth guessing */
    struct lg_arena *arena = lg_arena_create(4096);
    if (arena == NULL)
        return;
    ProtobufCMessage *m = NULL;
    bool json = r->content_type[0] ? is_json_type(r->content_type) : st->json;
    if (json) {
        struct lg_err err;
        if (lg_otlp_json_decode(lg_response_descriptor(sig), r->body, r->len, arena, &m, &err) != LG_OK)
            m = NULL;
    } else {
        m = protobuf_c_message_unpack(lg_response_descriptor(sig), NULL, r->len, (const uint8_t *)r->body);
    }
    if (m == NULL) {
        lg_warn(st->id, "the backend answered 2xx with a body that is not an Export%sServiceResponse (%zu bytes, %s); ignored",
                lg_otlp_response_name(sig), r->len,
                r->content_type[0] ? r->content_type : "no Content-Type");
        lg_arena_destroy(arena);
        return;
    }
    lg_otlp_partial_success(st->id, sig, m, res);
    if (!json)
        protobuf_c_message_free_unpacked(m, NULL);
    lg_arena_destroy(arena);
}

/* The message of a google.rpc.Status error body, or a printable prefix of the body. */
static void status_message(const struct http_state *st, const struct http_response *r, char *out, size_t out_len)
{
    out[0] = '\0';
    if (r->len == 0 || r->len >= sizeof r->body)
        return;
    bool json = r->content_type[0] ? is_json_type(r->content_type) : st->json;
    bool proto = strncasecmp(r->content_type, "application/x-protobuf", 22) == 0;
    if (json || proto) {
        struct lg_arena *arena = lg_arena_create(1024);
        ProtobufCMessage *m = NULL;
        if (arena != NULL && json) {
            struct lg_err err;
            if (lg_otlp_json_decode(&google__rpc__status__descriptor, r->body, r->len, arena, &m, &err) != LG_OK)
                m = NULL;
        } else if (arena != NULL) {
            m = protobuf_c_message_unpack(&google__rpc__status__descriptor, NULL, r->len, (const uint8_t *)r->body);
        }
        if (m != NULL) {
            const lg_rpc_status *s = (const lg_rpc_status *)m;
            snprintf(out, out_len, "%s", s->message ? s->message : "");
            if (!json)
                protobuf_c_message_free_unpacked(m, NULL);
        }
        lg_arena_destroy(arena);
        if (m != NULL)
            return;
    }
    /* plain text (a proxy's error page): printable characters only, bounded */
    size_t j = 0;
    for (size_t i = 0; i < r->len && j + 1 < out_len && j < 160; i++) {
        unsigned char ch = (unsigned char)r->body[i];
        out[j++] = (ch >= ' ' && ch < 0x7f) ? (char)ch : ' ';
    }
    out[j] = '\0';
}

/* ---- easy handle pool ---- */

static CURL *pool_take(struct http_state *st)
{
    CURL *h = NULL;
    pthread_mutex_lock(&st->pool_lock);
    if (st->npool > 0)
        h = st->pool[--st->npool];
    pthread_mutex_unlock(&st->pool_lock);
    if (h == NULL)
        h = curl_easy_init();
    else
        curl_easy_reset(h); /* options only: the connection and TLS session stay */
    return h;
}

static void pool_put(struct http_state *st, CURL *h)
{
    pthread_mutex_lock(&st->pool_lock);
    if (st->npool == st->pool_cap) {
        size_t cap = st->pool_cap ? 2 * st->pool_cap : 8;
        CURL **p = realloc(st->pool, cap * sizeof *p);
        if (p == NULL) {
            pthread_mutex_unlock(&st->pool_lock);
            curl_easy_cleanup(h);
            return;
        }
        st->pool = p;
        st->pool_cap = cap;
    }
    st->pool[st->npool++] = h;
    pthread_mutex_unlock(&st->pool_lock);
}

static bool curl_error_permanent(CURLcode c)
{
    /* errors that say the request can never work as configured; everything else (refused,
     * reset, timeout, DNS, TLS handshake) may pass on a later attempt */
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
        return true;
    default:
        return false;
    }
}

/** One attempt: the helper's send function (see core/exporter_helper.h). */
static void http_send(void *ctx, struct lg_batch *b, int64_t deadline, struct lg_export_result *res)
{
    struct http_state *st = ctx;
    memset(res, 0, sizeof *res);
    const char *url = st->url[b->signal];
    if (url == NULL) {
        res->code = LG_EINVAL;
        snprintf(res->message, sizeof res->message, "no endpoint configured for %s", lg_signal_name(b->signal));
        return;
    }
    int64_t timeout_ms = (deadline - lg_now_mono_ns()) / 1000000;
    if (timeout_ms <= 0) {
        res->code = LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "deadline passed before sending");
        return;
    }
    size_t len = 0;
    uint8_t *raw = st->json ? (uint8_t *)lg_otlp_json_encode(b->req.msg, &len) : lg_batch_encode(b, &len);
    if (raw == NULL) {
        /* protobuf encoding fails only for lack of memory; JSON also for data nested deeper
         * than JSON output allows, which no retry can fix */
        res->code = st->json ? LG_EINVAL : LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "cannot encode %zu %s as %s", b->items,
                 lg_signal_item_noun(b->signal), st->json ? "JSON" : "protobuf");
        return;
    }
    uint8_t *body = raw;
    size_t body_len = len;
    if (st->compression != COMP_NONE) {
        body = st->compression == COMP_GZIP ? gzip_bytes(raw, len, &body_len) : zstd_bytes(raw, len, &body_len);
        free(raw);
        if (body == NULL) {
            res->code = LG_EAGAIN;
            snprintf(res->message, sizeof res->message, "out of memory compressing the request");
            return;
        }
    }

    struct curl_slist *hdrs = NULL, *tmp = NULL;
    bool ok = true;
#define ADD_HEADER(text)                                                                           \
    do {                                                                                           \
        tmp = curl_slist_append(hdrs, (text));                                                     \
        if (tmp == NULL)                                                                           \
            ok = false;                                                                            \
        else                                                                                       \
            hdrs = tmp;                                                                            \
    } while (0)
    ADD_HEADER(st->json ? "Content-Type: application/json" : "Content-Type: application/x-protobuf");
    if (st->compression == COMP_GZIP)
        ADD_HEADER("Content-Encoding: gzip");
    else if (st->compression == COMP_ZSTD)
        ADD_HEADER("Content-Encoding: zstd");
    ADD_HEADER("Expect:"); /* no 100-continue round trip before the body */
    char line[LG_AUTH_NAME_MAX + LG_AUTH_VALUE_MAX + 4];
    if (st->auth != NULL) {
        char name[LG_AUTH_NAME_MAX], value[LG_AUTH_VALUE_MAX];
        if (lg_otlp_auth_header(st->auth, name, value, res) != LG_OK) {
            curl_slist_free_all(hdrs);
            free(body);
            return;
        }
        snprintf(line, sizeof line, "%s: %s", name, value);
        ADD_HEADER(line);
    }
    for (size_t i = 0; i < st->conf->headers.n; i++) {
        const char *k = st->conf->headers.kv[2 * i], *v = st->conf->headers.kv[2 * i + 1];
        /* "Name;" is curl's way to send a header with an empty value */
        snprintf(line, sizeof line, v[0] ? "%s: %s" : "%s;", k, v);
        ADD_HEADER(line);
    }
#undef ADD_HEADER
    CURL *h = ok ? pool_take(st) : NULL;
    if (h == NULL) {
        curl_slist_free_all(hdrs);
        free(body);
        res->code = LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "out of memory preparing the request");
        return;
    }
    struct http_response *r = malloc(sizeof *r);
    if (r == NULL) {
        pool_put(st, h);
        curl_slist_free_all(hdrs);
        free(body);
        res->code = LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "out of memory preparing the request");
        return;
    }
    r->len = 0;
    r->content_type[0] = r->retry_after[0] = '\0';
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "llmgate/" LLMGATE_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, st->ssl_version);
    if (st->conf->tls.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, st->conf->tls.ca_file);
    if (st->conf->tls.cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, st->conf->tls.cert_file);
        curl_easy_setopt(h, CURLOPT_SSLKEY, st->conf->tls.key_file);
    }
    if (st->conf->tls.insecure_skip_verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* errbuf is on this stack */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    pool_put(st, h);
    curl_slist_free_all(hdrs);
    free(body);

    if (cc != CURLE_OK) {
        res->code = curl_error_permanent(cc) ? LG_EINVAL : LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "%s%s: %.160s", res->code == LG_EINVAL ? "permanent error: " : "",
                 curl_easy_strerror(cc), errbuf[0] ? errbuf : url);
    } else if (status >= 200 && status < 300) {
        res->code = LG_OK;
        read_partial_success(st, b->signal, r, res);
    } else if (status == 429 || status == 502 || status == 503 || status == 504) {
        res->code = LG_EAGAIN;
        res->retry_after_ns = lg_http_retry_after_ns(r->retry_after, RETRY_AFTER_MAX_S);
        char msg[200];
        status_message(st, r, msg, sizeof msg);
        snprintf(res->message, sizeof res->message, "HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
    } else {
        res->code = LG_EINVAL;
        char msg[200];
        status_message(st, r, msg, sizeof msg);
        snprintf(res->message, sizeof res->message, "permanent error: HTTP %ld%s%s", status, msg[0] ? ": " : "", msg);
    }
    free(r);
}

static int http_create(struct lg_component *c, struct lg_err *err)
{
    struct http_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    int rc = http_state_init(st, c->id, c->conf, c->conf_node, err);
    if (rc == LG_OK && st->conf->auth_present)
        rc = lg_otlp_auth_resolve(c, &st->conf->auth, &st->auth, err);
    if (rc == LG_OK)
        rc = lg_exporter_helper_create(c, &st->conf->helper, http_send, st, &st->helper, err);
    if (rc != LG_OK) {
        http_state_fini(st);
        free(st);
        return rc;
    }
    c->state = st;
    return LG_OK;
}

static int http_start(struct lg_component *c, struct lg_err *err)
{
    struct http_state *st = c->state;
    return lg_exporter_helper_start(st->helper, err);
}

static int http_consume(struct lg_component *c, struct lg_batch *b)
{
    struct http_state *st = c->state;
    return lg_exporter_helper_consume(st->helper, b);
}

static int http_shutdown(struct lg_component *c, int64_t deadline)
{
    struct http_state *st = c->state;
    return lg_exporter_helper_shutdown(st->helper, deadline);
}

static void http_destroy(struct lg_component *c)
{
    struct http_state *st = c->state;
    if (st == NULL)
        return;
    lg_exporter_helper_destroy(st->helper); /* joins the consumers: every handle is idle */
    http_state_fini(st);
    free(st);
    c->state = NULL;
}

static const char *const http_aliases[] = {"otlphttp", NULL};

const struct lg_component_type lg_otlp_http_exporter = {
    .type = "otlp_http",
    .aliases = http_aliases,
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "sends OTLP over HTTP (protobuf or JSON), with a sending queue (memory or persistent) and retries",
    .conf_size = sizeof(struct http_conf),
    .fields = http_fields,
    .create = http_create,
    .start = http_start,
    .consume = http_consume,
    .shutdown = http_shutdown,
    .destroy = http_destroy,
};
