/* receiver/otlp_http.c — the OTLP/HTTP transport of the otlp receiver, on core/httpd.
 *
 * Answers exactly as the OpenTelemetry Collector's otlp receiver does (REFERENCE.md §1):
 * POST only on the three configured paths, protobuf or JSON bodies, gzip/deflate/zstd
 * request bodies limited to max_request_body_size on the wire and after decompression,
 * 200 with an Export*ServiceResponse (partial_success when items were dropped), and
 * google.rpc.Status bodies for errors, both in the request's own encoding. Back-pressure
 * from the pipeline becomes 503 or 429 with Retry-After. CORS follows the Collector's
 * confighttp (rs/cors) behaviour. With auth.authenticator, every request but a CORS
 * preflight needs credentials: 401 + WWW-Authenticate otherwise.
 *
 * Owns: struct otlp_http (hung on otlp_receiver.http) and the HTTP server inside it.
 *
 * Threads: on_request() reads the evhttp request into a struct http_call on the server's
 * loop thread and hands it to a pool of decode workers (one per CPU, up to
 * OTLP_HTTP_MAX_WORKERS); process_call() decompresses, decodes, delivers and fills the
 * reply there without touching libevent, and send_call_reply() writes it back on the loop
 * thread (lg_http_resume). So one loop thread does only the socket work and OTLP/HTTP
 * decoding uses every core, as gRPC's does. When the pool's queue is full (the pipeline is
 * slower than the clients), the loop thread decodes the request itself: it then reads no
 * new requests meanwhile, which pushes back on the clients instead of queueing without
 * bound. With one CPU there is no pool. */
#include "otlp_http.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <zlib.h>
#include <zstd.h>

#include "../core/auth.h"
#include "../core/httpd.h"
#include "../core/log.h"
#include "../core/otlp_json.h"

/* Seconds a client is told to wait (Retry-After) after a 503 or 429 refusal: the pipeline
 * refuses for short-lived reasons (memory limiter, full queue) that clear in about that. */
#define OTLP_HTTP_RETRY_AFTER_SECS 1

/* google.rpc.Code values used in Status bodies. */
enum rpc_code {
    RPC_INVALID_ARGUMENT = 3,
    RPC_RESOURCE_EXHAUSTED = 8,
    RPC_INTERNAL = 13,
    RPC_UNAVAILABLE = 14,
    RPC_UNAUTHENTICATED = 16,
};

/* HTTP statuses this transport sends (libevent names only some of them). */
enum {
    HTTP_STATUS_OK = 200,
    HTTP_STATUS_NO_CONTENT = 204,
    HTTP_STATUS_BAD_REQUEST = 400,
    HTTP_STATUS_UNAUTHORIZED = 401,
    HTTP_STATUS_NOT_FOUND = 404,
    HTTP_STATUS_METHOD_NOT_ALLOWED = 405,
    HTTP_STATUS_TOO_LARGE = 413,
    HTTP_STATUS_UNSUPPORTED_MEDIA = 415,
    HTTP_STATUS_TOO_MANY = 429,
    HTTP_STATUS_INTERNAL = 500,
    HTTP_STATUS_UNAVAILABLE = 503,
};

/* First output buffer for decompression: a few times the compressed size (OTLP compresses
 * about 5-10x), at least this much, never more than the limit; it doubles from there. */
#define INFLATE_MIN_BUF     (16 * 1024)
#define INFLATE_GUESS_RATIO 4
/* zstd window accepted regardless of a small body limit: 8 MiB is what common encoders
 * (zstd CLI, Go's klauspost/zstd streaming writer) use by default. */
#define ZSTD_MIN_WINDOW_LOG 23
/* ...and never more than libzstd's own default limit (128 MiB), however large the body
 * limit: a frame header alone must not make us allocate gigabytes. */
#define ZSTD_MAX_WINDOW_LOG 27
/* The Collector's default body limit, used when the configuration leaves it at 0. */
#define OTLP_HTTP_FALLBACK_MAX_BODY ((size_t)20 * 1024 * 1024)
/* Room for the message of an error reply. */
#define CALL_MESSAGE_MAX 512

static const char ct_protobuf[] = "application/x-protobuf";
static const char ct_json[] = "application/json";
static const char ct_text[] = "text/plain; charset=utf-8";

enum body_encoding { BODY_PROTOBUF, BODY_JSON };
enum content_coding { CODING_IDENTITY, CODING_GZIP, CODING_DEFLATE, CODING_ZSTD };

/* Decode workers: at most this many, and this many queued calls per worker. */
#define OTLP_HTTP_MAX_WORKERS 16
#define OTLP_HTTP_QUEUE_PER_WORKER 4

struct http_job;

struct otlp_http {
    struct otlp_receiver *r;
    /* the decode pool */
    pthread_t workers[OTLP_HTTP_MAX_WORKERS];
    size_t nworkers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct http_job *head, *tail;
    size_t queued, max_queued;
    bool pool_stop;
    const struct otlp_http_conf *conf;
    struct lg_http_server *srv;
    size_t max_body;
    const char *paths[LG_SIGNAL_COUNT];
    bool cors; /* a cors section with at least one allowed origin */
};

/* One request between reading it and answering it. The input fields point into the
 * evhttp request (valid until the reply is sent); the reply body is malloc'd. */
struct http_call {
    /* input */
    enum lg_signal signal;
    enum body_encoding enc;
    enum content_coding coding;
    const uint8_t *body;
    size_t body_len;
    /* reply */
    int status;
    const char *content_type;
    uint8_t *reply;
    size_t reply_len;
    bool retry_after;
};

/* ---- small text helpers ---- */

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Length of s without trailing spaces, looking at the first n bytes. */
static size_t trimmed_len(const char *s, size_t n)
{
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return n;
}

static bool token_equals(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case HTTP_STATUS_OK: return "OK";
    case HTTP_STATUS_NO_CONTENT: return "No Content";
    case HTTP_STATUS_BAD_REQUEST: return "Bad Request";
    case HTTP_STATUS_UNAUTHORIZED: return "Unauthorized";
    case HTTP_STATUS_NOT_FOUND: return "Not Found";
    case HTTP_STATUS_METHOD_NOT_ALLOWED: return "Method Not Allowed";
    case HTTP_STATUS_TOO_LARGE: return "Request Entity Too Large";
    case HTTP_STATUS_UNSUPPORTED_MEDIA: return "Unsupported Media Type";
    case HTTP_STATUS_TOO_MANY: return "Too Many Requests";
    case HTTP_STATUS_UNAVAILABLE: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* ---- replies ---- */

static void call_set_text(struct http_call *call, int status, const char *text)
{
    call->status = status;
    call->content_type = ct_text;
    call->reply_len = strlen(text);
    call->reply = (uint8_t *)strdup(text);
    if (call->reply == NULL)
        call->reply_len = 0;
}

/* An error reply: a google.rpc.Status in the request's encoding. */
static void call_set_status(struct http_call *call, int status, int rpc_code, const char *message)
{
    lg_rpc_status st = GOOGLE__RPC__STATUS__INIT;
    st.code = rpc_code;
    st.message = (char *)message; /* protobuf-c wants char *; nothing writes through it */
    call->status = status;
    call->reply = NULL;
    call->reply_len = 0;
    if (call->enc == BODY_JSON) {
        call->content_type = ct_json;
        call->reply = (uint8_t *)lg_otlp_json_encode(&st.base, &call->reply_len);
    } else {
        call->content_type = ct_protobuf;
        size_t n = protobuf_c_message_get_packed_size(&st.base);
        call->reply = malloc(n > 0 ? n : 1);
        if (call->reply != NULL)
            call->reply_len = protobuf_c_message_pack(&st.base, call->reply);
    }
    if (call->reply == NULL)
        call->reply_len = 0; /* out of memory: the status line alone still tells the story */
}

static void call_set_result(struct http_call *call, const struct otlp_result *res)
{
    switch (res->code) {
    case LG_OK: break;
    case LG_EAGAIN:
        call->retry_after = true;
        call_set_status(call, HTTP_STATUS_UNAVAILABLE, RPC_UNAVAILABLE, res->message);
        return;
    case LG_EFULL:
        call->retry_after = true;
        call_set_status(call, HTTP_STATUS_TOO_MANY, RPC_RESOURCE_EXHAUSTED, res->message);
        return;
    case LG_EINVAL:
        call_set_status(call, HTTP_STATUS_BAD_REQUEST, RPC_INVALID_ARGUMENT, res->message);
        return;
    default: call_set_status(call, HTTP_STATUS_INTERNAL, RPC_INTERNAL, res->message); return;
    }
    call->status = HTTP_STATUS_OK;
    if (call->enc == BODY_JSON) {
        struct otlp_response_storage storage;
        ProtobufCMessage *m = otlp_response_build(call->signal, res, &storage);
        call->content_type = ct_json;
        call->reply = (uint8_t *)lg_otlp_json_encode(m, &call->reply_len);
    } else {
        call->content_type = ct_protobuf;
        call->reply = otlp_response_pack(call->signal, res, &call->reply_len);
    }
    if (call->reply == NULL)
        call_set_status(call, HTTP_STATUS_INTERNAL, RPC_INTERNAL, "out of memory");
}

/* ---- decompression ---- */

static const char *coding_name(enum content_coding c)
{
    switch (c) {
    case CODING_GZIP: return "gzip";
    case CODING_DEFLATE: return "deflate";
    case CODING_ZSTD: return "zstd";
    default: return "identity";
    }
}

/* Grows a decompression buffer toward `limit` bytes. LG_ETOOBIG when it is already there. */
static int grow_buffer(uint8_t **buf, size_t *cap, size_t limit)
{
    if (*cap >= limit)
        return LG_ETOOBIG;
    size_t n = *cap > limit / 2 ? limit : *cap * 2;
    uint8_t *p = realloc(*buf, n);
    if (p == NULL)
        return LG_ENOMEM;
    *buf = p;
    *cap = n;
    return LG_OK;
}

/* zlib-wrapped deflate starts with a CMF/FLG pair: method 8, window <= 32K, and the pair
 * divisible by 31. Raw deflate (what some clients send as "deflate") does not. */
static bool has_zlib_header(const uint8_t *in, size_t len)
{
    return len >= 2 && (in[0] & 0x0f) == Z_DEFLATED && (in[0] >> 4) <= 7 &&
           (((unsigned)in[0] << 8) | in[1]) % 31 == 0;
}

static int inflate_zlib(enum content_coding coding, const uint8_t *in, size_t inlen, uint8_t **buf,
                        size_t *cap, size_t limit, size_t *outlen, char *msg, size_t msglen)
{
    /* windowBits: +16 = gzip wrapper, plain = zlib wrapper, negative = raw deflate. */
    int window_bits = coding == CODING_GZIP        ? MAX_WBITS + 16
                      : has_zlib_header(in, inlen) ? MAX_WBITS
                                                   : -MAX_WBITS;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, window_bits) != Z_OK)
        return LG_ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)in;
    int rc = LG_OK;
    size_t used = 0;
    size_t remaining = inlen;
    for (;;) {
        if (used == *cap) {
            rc = grow_buffer(buf, cap, limit);
            if (rc != LG_OK)
                break;
        }
        /* zlib counts in uInt; feed very large inputs in slices. */
        uInt in_slice = remaining > UINT32_MAX ? UINT32_MAX : (uInt)remaining;
        uInt out_room = *cap - used > UINT32_MAX ? UINT32_MAX : (uInt)(*cap - used);
        zs.avail_in = in_slice;
        zs.next_out = *buf + used;
        zs.avail_out = out_room;
        int zr = inflate(&zs, Z_NO_FLUSH);
        remaining -= in_slice - zs.avail_in;
        used += out_room - zs.avail_out;
        if (zr == Z_STREAM_END) {
            /* gzip allows several members back to back (Go's reader reads them all). */
            if (coding == CODING_GZIP && remaining > 0) {
                inflateReset(&zs);
                continue;
            }
            break;
        }
        if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR) {
            snprintf(msg, msglen, "corrupt %s body: %s", coding_name(coding),
                     zs.msg != NULL ? zs.msg : "invalid data");
            rc = LG_EINVAL;
            break;
        }
        if (zr == Z_MEM_ERROR) {
            rc = LG_ENOMEM;
            break;
        }
        /* Z_OK or Z_BUF_ERROR: out of input (truncated) or out of room (grow and go on). */
        if (remaining == 0 && zs.avail_out > 0) {
            snprintf(msg, msglen, "corrupt %s body: unexpected end of data", coding_name(coding));
            rc = LG_EINVAL;
            break;
        }
    }
    inflateEnd(&zs);
    *outlen = used;
    return rc;
}

static unsigned zstd_window_log(size_t limit)
{
    unsigned log = 0;
    while (log < 63 && ((size_t)1 << log) < limit)
        log++;
    if (log < ZSTD_MIN_WINDOW_LOG)
        log = ZSTD_MIN_WINDOW_LOG;
    if (log > ZSTD_MAX_WINDOW_LOG)
        log = ZSTD_MAX_WINDOW_LOG;
    ZSTD_bounds b = ZSTD_dParam_getBounds(ZSTD_d_windowLogMax);
    if (!ZSTD_isError(b.error)) {
        if ((int)log > b.upperBound)
            log = (unsigned)b.upperBound;
        if ((int)log < b.lowerBound)
            log = (unsigned)b.lowerBound;
    }
    return log;
}

static int inflate_zstd(const uint8_t *in, size_t inlen, uint8_t **buf, size_t *cap, size_t limit,
                        size_t *outlen, char *msg, size_t msglen)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (d == NULL)
        return LG_ENOMEM;
    /* Bound the decoder's window (its memory) by the body limit, not by the frame header. */
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, (int)zstd_window_log(limit));
    ZSTD_inBuffer zin = {in, inlen, 0};
    size_t used = 0;
    size_t last = 1;
    int rc = LG_OK;
    for (;;) {
        if (used == *cap) {
            rc = grow_buffer(buf, cap, limit);
            if (rc != LG_OK)
                break;
        }
        ZSTD_outBuffer zout = {*buf, *cap, used};
        last = ZSTD_decompressStream(d, &zout, &zin);
        used = zout.pos;
        if (ZSTD_isError(last)) {
            snprintf(msg, msglen, "corrupt zstd body: %s", ZSTD_getErrorName(last));
            rc = LG_EINVAL;
            break;
        }
        /* Done when all input is consumed and the decoder had room left (nothing pending). */
        if (zin.pos == zin.size && zout.pos < zout.size) {
            if (last != 0) {
                snprintf(msg, msglen, "corrupt zstd body: unexpected end of data");
                rc = LG_EINVAL;
            }
            break;
        }
    }
    ZSTD_freeDCtx(d);
    *outlen = used;
    return rc;
}

/* Decompresses `in` into a malloc'd buffer of at most `max` bytes. LG_ETOOBIG past max,
 * LG_EINVAL (message in msg) on corrupt data, LG_ENOMEM. */
static int decompress_body(enum content_coding coding, const uint8_t *in, size_t inlen, size_t max,
                           uint8_t **out, size_t *outlen, char *msg, size_t msglen)
{
    /* One byte past the limit is room enough to notice the body is too large. */
    size_t limit = max + 1;
    size_t cap = inlen > SIZE_MAX / INFLATE_GUESS_RATIO ? limit : inlen * INFLATE_GUESS_RATIO;
    if (cap < INFLATE_MIN_BUF)
        cap = INFLATE_MIN_BUF;
    if (cap > limit)
        cap = limit;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return LG_ENOMEM;
    int rc = coding == CODING_ZSTD
                 ? inflate_zstd(in, inlen, &buf, &cap, limit, outlen, msg, msglen)
                 : inflate_zlib(coding, in, inlen, &buf, &cap, limit, outlen, msg, msglen);
    if (rc == LG_OK && *outlen > max)
        rc = LG_ETOOBIG;
    if (rc != LG_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    return LG_OK;
}

/* ---- decoding and delivery (no libevent below this line until send_call_reply) ---- */

static int decode_body(enum lg_signal signal, enum body_encoding enc, const uint8_t *data,
                       size_t len, struct lg_batch **out, struct lg_err *err)
{
    if (len == 0) {
        /* An empty body is a valid, empty request in either encoding. */
        *out = lg_batch_create(signal, 0);
        return *out != NULL ? LG_OK : lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    if (enc == BODY_PROTOBUF)
        return lg_batch_decode_indexed(signal, data, len, out, err);
    struct lg_batch *b = lg_batch_create(signal, len);
    if (b == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    ProtobufCMessage *msg = NULL;
    int rc = lg_otlp_json_decode(lg_request_descriptor(signal), (const char *)data, len, b->arena,
                                 &msg, err);
    if (rc != LG_OK) {
        lg_batch_unref(b);
        return rc;
    }
    b->req.msg = msg;
    b->items = lg_batch_count_items(b);
    *out = b;
    return LG_OK;
}

static void process_call(struct otlp_http *h, struct http_call *call)
{
    char msg[CALL_MESSAGE_MAX];
    const uint8_t *data = call->body;
    size_t len = call->body_len;
    uint8_t *inflated = NULL;

    if (call->coding != CODING_IDENTITY && len > 0) {
        msg[0] = '\0';
        int rc =
            decompress_body(call->coding, data, len, h->max_body, &inflated, &len, msg, sizeof msg);
        if (rc == LG_ETOOBIG) {
            snprintf(msg, sizeof msg,
                     "request body is larger than max_request_body_size (%zu bytes) after %s "
                     "decompression",
                     h->max_body, coding_name(call->coding));
            lg_debug(h->r->c->id, "OTLP/HTTP %s: %s", lg_signal_name(call->signal), msg);
            call_set_status(call, HTTP_STATUS_TOO_LARGE, RPC_RESOURCE_EXHAUSTED, msg);
            return;
        }
        if (rc == LG_EINVAL) {
            lg_debug(h->r->c->id, "OTLP/HTTP %s: %s", lg_signal_name(call->signal), msg);
            call_set_status(call, HTTP_STATUS_BAD_REQUEST, RPC_INVALID_ARGUMENT, msg);
            return;
        }
        if (rc != LG_OK) {
            call_set_status(call, HTTP_STATUS_INTERNAL, RPC_INTERNAL,
                            "out of memory while decompressing the request");
            return;
        }
        data = inflated;
    }

    struct lg_err err;
    struct lg_batch *b = NULL;
    int rc = decode_body(call->signal, call->enc, data, len, &b, &err);
    free(inflated); /* a decoded batch never points into its input */
    if (rc != LG_OK) {
        /* Not counted as refused items: nothing was decoded, so there is no count. */
        lg_debug(h->r->c->id, "OTLP/HTTP %s: cannot decode %s body of %zu bytes: %s",
                 lg_signal_name(call->signal), call->enc == BODY_JSON ? "JSON" : "protobuf", len,
                 err.msg);
        if (rc == LG_ENOMEM)
            call_set_status(call, HTTP_STATUS_INTERNAL, RPC_INTERNAL, err.msg);
        else
            call_set_status(call, HTTP_STATUS_BAD_REQUEST, RPC_INVALID_ARGUMENT, err.msg);
        return;
    }

    struct otlp_result res;
    otlp_receiver_deliver(h->r, OTLP_HTTP, b, &res);
    lg_batch_unref(b);
    call_set_result(call, &res);
}

/* ---- CORS (the Collector's confighttp uses rs/cors; this follows its rules) ---- */

/* Origins compare case-insensitively; a pattern may hold one '*' standing for any run of
 * characters, typically a subdomain wildcard such as *.example.com after the scheme. */
static bool origin_matches(const char *pattern, const char *origin)
{
    const char *star = strchr(pattern, '*');
    if (star == NULL)
        return strcasecmp(pattern, origin) == 0;
    size_t prefix = (size_t)(star - pattern);
    size_t suffix = strlen(star + 1);
    size_t n = strlen(origin);
    return n >= prefix + suffix && strncasecmp(origin, pattern, prefix) == 0 &&
           strcasecmp(origin + n - suffix, star + 1) == 0;
}

/* *wildcard is set when the configuration allows every origin ("*"). */
static bool cors_origin_allowed(const struct otlp_cors_conf *c, const char *origin, bool *wildcard)
{
    *wildcard = false;
    for (size_t i = 0; i < c->allowed_origins.n; i++) {
        if (strcmp(c->allowed_origins.items[i], "*") == 0) {
            *wildcard = true;
            return true;
        }
    }
    for (size_t i = 0; i < c->allowed_origins.n; i++)
        if (origin_matches(c->allowed_origins.items[i], origin))
            return true;
    return false;
}

static bool cors_header_allowed(const struct otlp_cors_conf *c, const char *name, size_t n)
{
    /* Always allowed, as the Collector documents; X-Requested-With too when none are set. */
    static const char *const implicit[] = {"Accept", "Accept-Language", "Content-Type",
                                           "Content-Language"};
    for (size_t i = 0; i < LG_ARRAY_LEN(implicit); i++)
        if (token_equals(name, n, implicit[i]))
            return true;
    if (c->allowed_headers.n == 0)
        return token_equals(name, n, "X-Requested-With");
    for (size_t i = 0; i < c->allowed_headers.n; i++) {
        const char *h = c->allowed_headers.items[i];
        if (strcmp(h, "*") == 0 || token_equals(name, n, h))
            return true;
    }
    return false;
}

/* Access-Control-Request-Headers is a comma-separated list. */
static bool cors_headers_allowed(const struct otlp_cors_conf *c, const char *list)
{
    const char *p = list;
    while (*p != '\0') {
        p = skip_space(p);
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        n = trimmed_len(p, n);
        if (n > 0 && !cors_header_allowed(c, p, n))
            return false;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return true;
}

static bool cors_method_allowed(const char *method)
{
    /* rs/cors's default allowed methods (the Collector does not change them). */
    return strcasecmp(method, "POST") == 0 || strcasecmp(method, "GET") == 0 ||
           strcasecmp(method, "HEAD") == 0;
}

static void cors_allow_origin(struct otlp_http *h, struct evkeyvalq *out, const char *origin,
                              bool wildcard)
{
    evhttp_add_header(out, "Access-Control-Allow-Origin", wildcard ? "*" : origin);
    /* The Collector always sets AllowCredentials. */
    evhttp_add_header(out, "Access-Control-Allow-Credentials", "true");
}

/* A preflight: OPTIONS with Access-Control-Request-Method. Always 204; the CORS headers
 * are present only when origin, method and headers are all allowed. */
static void cors_preflight(struct otlp_http *h, struct evhttp_request *req, const char *method)
{
    const struct otlp_cors_conf *c = &h->conf->cors;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Vary",
                      "Origin, Access-Control-Request-Method, "
                      "Access-Control-Request-Headers");
    const char *origin = evhttp_find_header(in, "Origin");
    const char *req_headers = evhttp_find_header(in, "Access-Control-Request-Headers");
    bool wildcard;
    if (origin != NULL && origin[0] != '\0' && cors_origin_allowed(c, origin, &wildcard) &&
        cors_method_allowed(method) &&
        (req_headers == NULL || cors_headers_allowed(c, req_headers))) {
        cors_allow_origin(h, out, origin, wildcard);
        char upper[32];
        size_t i = 0;
        for (; method[i] != '\0' && i + 1 < sizeof upper; i++)
            upper[i] = (char)toupper((unsigned char)method[i]);
        upper[i] = '\0';
        evhttp_add_header(out, "Access-Control-Allow-Methods", upper);
        if (req_headers != NULL && req_headers[0] != '\0')
            evhttp_add_header(out, "Access-Control-Allow-Headers", req_headers);
        if (c->max_age > 0) {
            char age[32];
            snprintf(age, sizeof age, "%lld", (long long)c->max_age);
            evhttp_add_header(out, "Access-Control-Max-Age", age);
        }
    }
    evhttp_send_reply(req, HTTP_STATUS_NO_CONTENT, reason_phrase(HTTP_STATUS_NO_CONTENT), NULL);
}

/* CORS headers on an actual (non-preflight) request. */
static void cors_actual(struct otlp_http *h, struct evhttp_request *req)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Vary", "Origin");
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    bool wildcard;
    if (origin == NULL || origin[0] == '\0' ||
        !cors_origin_allowed(&h->conf->cors, origin, &wildcard))
        return;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST &&
        evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        return;
    cors_allow_origin(h, out, origin, wildcard);
}

/* ---- the evhttp side (loop thread) ---- */

static void free_reply(const void *data, size_t len, void *arg)
{
    free((void *)(uintptr_t)data);
}

static void send_call_reply(struct evhttp_request *req, struct http_call *call)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", call->content_type);
    if (call->retry_after) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", OTLP_HTTP_RETRY_AFTER_SECS);
        evhttp_add_header(out, "Retry-After", secs);
    }
    struct evbuffer *body = evbuffer_new();
    if (body != NULL && call->reply != NULL) {
        if (evbuffer_add_reference(body, call->reply, call->reply_len, free_reply, NULL) == 0)
            call->reply = NULL; /* the evbuffer frees it once sent */
    }
    free(call->reply);
    call->reply = NULL;
    evhttp_send_reply(req, call->status, reason_phrase(call->status), body);
    if (body != NULL)
        evbuffer_free(body);
}

static void send_text(struct evhttp_request *req, int status, const char *text)
{
    struct http_call call = {.status = status};
    call_set_text(&call, status, text);
    send_call_reply(req, &call);
}

static bool parse_content_type(const char *value, enum body_encoding *enc)
{
    if (value == NULL)
        return false;
    const char *p = skip_space(value);
    const char *semi = strchr(p, ';');
    size_t n = trimmed_len(p, semi != NULL ? (size_t)(semi - p) : strlen(p));
    if (token_equals(p, n, ct_protobuf)) {
        *enc = BODY_PROTOBUF;
        return true;
    }
    if (token_equals(p, n, ct_json)) {
        *enc = BODY_JSON;
        return true;
    }
    return false;
}

/* 401 with a google.rpc.Status (UNAUTHENTICATED) in the request's encoding, plain text
 * when the request has neither OTLP content type. */
static void refuse_unauthenticated(struct evhttp_request *req)
{
    static const char msg[] = "missing or invalid credentials";
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    struct http_call call = {.status = HTTP_STATUS_UNAUTHORIZED};
    if (parse_content_type(evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"), &call.enc))
        call_set_status(&call, HTTP_STATUS_UNAUTHORIZED, RPC_UNAUTHENTICATED, msg);
    else
        call_set_text(&call, HTTP_STATUS_UNAUTHORIZED, msg);
    send_call_reply(req, &call);
}

static bool parse_content_encoding(const char *value, enum content_coding *coding)
{
    if (value == NULL) {
        *coding = CODING_IDENTITY;
        return true;
    }
    const char *p = skip_space(value);
    size_t n = trimmed_len(p, strlen(p));
    static const struct {
        const char *name;
        enum content_coding coding;
    } codings[] = {
        {"", CODING_IDENTITY},       {"identity", CODING_IDENTITY}, {"gzip", CODING_GZIP},
        {"deflate", CODING_DEFLATE}, {"zlib", CODING_DEFLATE},      {"zstd", CODING_ZSTD},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(codings); i++) {
        if (token_equals(p, n, codings[i].name)) {
            *coding = codings[i].coding;
            return true;
        }
    }
    return false;
}

static int signal_for_path(const struct otlp_http *h, const char *path)
{
    if (path == NULL)
        return -1;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        if (h->paths[s] != NULL && strcmp(h->paths[s], path) == 0)
            return s;
    return -1;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "?";
    }
}

/* ---- the decode pool ---- */

struct http_job {
    struct http_job *next;
    struct otlp_http *h;
    struct evhttp_request *req;
    struct evbuffer *body; /* the request body, moved out of the request: the job owns it, so
                            * a server that frees its requests (stop past the deadline) does
                            * not pull the body from under a worker */
    struct http_call call;
};

static void job_free(struct http_job *job)
{
    free(job->call.reply);
    if (job->body)
        evbuffer_free(job->body);
    free(job);
}

static void job_reply(struct evhttp_request *req, void *arg)
{
    struct http_job *job = arg;
    send_call_reply(req, &job->call);
    job_free(job);
}

static void *worker_main(void *arg)
{
    struct otlp_http *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->head == NULL && !h->pool_stop)
            pthread_cond_wait(&h->cv, &h->mu);
        struct http_job *job = h->head;
        if (job == NULL)
            break; /* stopping and nothing left */
        h->head = job->next;
        if (h->head == NULL)
            h->tail = NULL;
        h->queued--;
        pthread_mutex_unlock(&h->mu);
        process_call(h, &job->call);
        if (lg_http_resume(h->srv, job->req, job_reply, job) != LG_OK)
            job_free(job); /* the server finished past its deadline: the connection is gone */
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/** Queues the call for a worker; false when there is no pool or its queue is full (the
 *  caller then processes the call itself). */
static bool pool_submit(struct otlp_http *h, struct evhttp_request *req, const struct http_call *call)
{
    if (h->nworkers == 0)
        return false;
    pthread_mutex_lock(&h->mu);
    bool room = h->queued < h->max_queued && !h->pool_stop;
    pthread_mutex_unlock(&h->mu);
    struct http_job *job = room ? calloc(1, sizeof *job) : NULL;
    struct evbuffer *body = job ? evbuffer_new() : NULL;
    if (body == NULL || evbuffer_add_buffer(body, evhttp_request_get_input_buffer(req)) != 0) {
        if (body)
            evbuffer_free(body);
        free(job);
        return false; /* the caller decodes on the loop thread (call->body is still valid:
                       * a failed move leaves the request's buffer as it was) */
    }
    *job = (struct http_job){.h = h, .req = req, .body = body, .call = *call};
    /* the request's buffer was already pulled up into one chain and moving keeps the chain,
     * so this pullup allocates nothing and cannot fail */
    job->call.body = call->body_len > 0 ? evbuffer_pullup(body, -1) : NULL;
    lg_http_defer(h->srv);
    pthread_mutex_lock(&h->mu);
    if (h->tail)
        h->tail->next = job;
    else
        h->head = job;
    h->tail = job;
    h->queued++;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return true;
}

static void pool_start(struct otlp_http *h)
{
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = cpus > 1 ? (size_t)cpus : 0;
    if (n > OTLP_HTTP_MAX_WORKERS)
        n = OTLP_HTTP_MAX_WORKERS;
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&h->workers[i], NULL, worker_main, h) != 0)
            break; /* fewer workers; with none, the loop thread decodes */
        h->nworkers++;
    }
    h->max_queued = h->nworkers * OTLP_HTTP_QUEUE_PER_WORKER;
}

/** Lets the workers finish what is queued, then joins them. */
static void pool_stop(struct otlp_http *h)
{
    pthread_mutex_lock(&h->mu);
    h->pool_stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    h->nworkers = 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct otlp_http *h = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    if (h->cors) {
        const char *preflight_method = evhttp_find_header(in, "Access-Control-Request-Method");
        if (cmd == EVHTTP_REQ_OPTIONS && preflight_method != NULL) {
            cors_preflight(h, req, preflight_method);
            return;
        }
        cors_actual(h, req);
    }

    /* As the Collector's confighttp: CORS preflights (above) need no credentials, every
     * other request does, whatever its path or method. */
    struct lg_authenticator *auth = h->r->auth[OTLP_HTTP];
    if (auth != NULL) {
        const char *v = evhttp_find_header(in, lg_auth_header_name(auth));
        if (!lg_auth_check(auth, v, v != NULL ? strlen(v) : 0)) {
            lg_debug(h->r->c->id, "OTLP/HTTP: %s credentials, refused", v == NULL ? "missing" : "invalid");
            refuse_unauthenticated(req);
            return;
        }
    }

    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    int signal = signal_for_path(h, uri != NULL ? evhttp_uri_get_path(uri) : NULL);
    if (signal < 0) {
        send_text(req, HTTP_STATUS_NOT_FOUND, "404 page not found\n");
        return;
    }
    if (cmd != EVHTTP_REQ_POST) {
        lg_debug(h->r->c->id, "OTLP/HTTP %s: method %s not allowed",
                 lg_signal_name((enum lg_signal)signal), method_name(cmd));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        send_text(req, HTTP_STATUS_METHOD_NOT_ALLOWED, "405 method not allowed, supported: [POST]");
        return;
    }
    struct http_call call = {.signal = (enum lg_signal)signal};
    if (!parse_content_type(evhttp_find_header(in, "Content-Type"), &call.enc)) {
        char text[CALL_MESSAGE_MAX];
        snprintf(text, sizeof text, "415 unsupported media type, supported: [%s, %s]", ct_json,
                 ct_protobuf);
        send_text(req, HTTP_STATUS_UNSUPPORTED_MEDIA, text);
        return;
    }
    const char *encoding = evhttp_find_header(in, "Content-Encoding");
    if (!parse_content_encoding(encoding, &call.coding)) {
        char text[CALL_MESSAGE_MAX];
        snprintf(text, sizeof text,
                 "unsupported Content-Encoding \"%.64s\"; supported: gzip, deflate, zstd",
                 encoding);
        call_set_status(&call, HTTP_STATUS_BAD_REQUEST, RPC_INVALID_ARGUMENT, text);
        send_call_reply(req, &call);
        return;
    }
    struct evbuffer *input = evhttp_request_get_input_buffer(req);
    call.body_len = evbuffer_get_length(input);
    call.body = call.body_len > 0 ? evbuffer_pullup(input, -1) : NULL;
    if (call.body_len > 0 && call.body == NULL) {
        call_set_status(&call, HTTP_STATUS_INTERNAL, RPC_INTERNAL,
                        "out of memory while reading the request");
        send_call_reply(req, &call);
        return;
    }
    if (pool_submit(h, req, &call))
        return; /* a worker answers through lg_http_resume */
    process_call(h, &call);
    send_call_reply(req, &call);
}

/* ---- life cycle ---- */

static int ns_to_secs_ceil(int64_t ns)
{
    const int64_t ns_per_sec = 1000000000LL;
    return ns <= 0 ? 0 : (int)((ns + ns_per_sec - 1) / ns_per_sec);
}

int otlp_http_start(struct otlp_receiver *r, struct lg_err *err)
{
    const struct otlp_http_conf *conf = &r->conf->protocols.http;
    struct otlp_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    h->r = r;
    h->conf = conf;
    h->max_body = conf->max_request_body_size > 0 ? (size_t)conf->max_request_body_size
                                                  : OTLP_HTTP_FALLBACK_MAX_BODY;
    /* As the Collector does, a path is served only for signals some pipeline takes from
     * this receiver; the others answer 404 instead of accepting data nobody forwards. */
    const char *paths[LG_SIGNAL_COUNT] = {conf->traces_url_path, conf->metrics_url_path, conf->logs_url_path};
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        h->paths[s] = r->c->next[s].n > 0 ? paths[s] : NULL;
    h->cors = conf->has_cors && conf->cors.allowed_origins.n > 0;
    if (conf->has_cors && !h->cors && conf->cors.allowed_headers.n > 0)
        lg_warn(r->c->id, "cors.allowed_headers is set without cors.allowed_origins; CORS "
                          "stays off");

    /* libevent has one inactivity timeout per connection for reading headers and body,
     * writing, and waiting between keep-alive requests: use the longest configured one so
     * none of them cuts a connection earlier than the configuration allows. */
    int timeout = ns_to_secs_ceil(conf->read_timeout_ns);
    int t;
    if ((t = ns_to_secs_ceil(conf->read_header_timeout_ns)) > timeout)
        timeout = t;
    if ((t = ns_to_secs_ceil(conf->write_timeout_ns)) > timeout)
        timeout = t;
    if ((t = ns_to_secs_ceil(conf->idle_timeout_ns)) > timeout)
        timeout = t;

    struct lg_http_server_opts opts = {
        .endpoint = conf->endpoint,
        .max_body_size = h->max_body,
        .timeout_secs = timeout,
    };
    if (conf->has_tls) {
        opts.tls_cert_file = conf->tls.cert_file;
        opts.tls_key_file = conf->tls.key_file;
        opts.tls_client_ca_file = conf->tls.client_ca_file;
        opts.tls_min_version = conf->tls.min_version;
        opts.tls_reload_interval_ns = conf->tls.reload_interval_ns;
    }
    pool_start(h);
    int rc = lg_http_server_start(&opts, on_request, h, &h->srv, err);
    if (rc != LG_OK) {
        pool_stop(h);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return rc;
    }
    r->http = h;
    return LG_OK;
}

void otlp_http_shutdown(struct otlp_receiver *r, int64_t deadline_mono_ns)
{
    if (r->http == NULL)
        return;
    /* The server waits for deferred requests (the workers keep running meanwhile). */
    lg_http_server_stop(r->http->srv, deadline_mono_ns);
    pool_stop(r->http);
}

void otlp_http_destroy(struct otlp_receiver *r)
{
    if (r->http == NULL)
        return;
    /* stop the loop (deferred replies are sent or refused), then the workers, then free the
     * server: a worker may still be inside lg_http_resume until pool_stop returns */
    lg_http_server_stop(r->http->srv, lg_now_mono_ns());
    pool_stop(r->http);
    lg_http_server_free(r->http->srv);
    pthread_mutex_destroy(&r->http->mu);
    pthread_cond_destroy(&r->http->cv);
    free(r->http);
    r->http = NULL;
}

int otlp_http_bound_port(const struct otlp_receiver *r)
{
    return r->http != NULL ? lg_http_server_port(r->http->srv) : -1;
}
