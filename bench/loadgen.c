/* bench/loadgen.c — OTLP load generator for OTLP/gRPC and OTLP/HTTP (protobuf).
 *
 * Builds a pool of distinct ExportTraceServiceRequests (bench/workload.h) before timing
 * starts, then `--concurrency` threads send them in a loop, each over its own connection
 * (a gRPC channel through core/grpc_client.h, or a keep-alive libcurl easy handle), one
 * request in flight per thread, until `--duration` seconds have passed or `--requests`
 * requests have been sent. With `--rate SPANS_PER_SEC` the sends are paced: request k
 * (counted over all threads) starts no earlier than k * spans-per-request / rate seconds
 * after the start, so the load offered is that rate (less when the threads, one request in
 * flight each, cannot keep up: a late request is sent at once, never skipped). Reports
 * requests ok/failed, spans accepted, elapsed time, spans/s and latency percentiles, then
 * one machine-readable line:
 *   RESULT protocol=grpc requests=... ok=... failed=... spans=... seconds=... spans_per_sec=...
 * Exit status: 0 when every request succeeded, 1 when some failed, 2 on bad usage.
 * Owns its pool, its threads and their connections; talks only to the endpoint given. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "bench/workload.h"
#include "core/grpc_client.h"

#define DEFAULT_CONCURRENCY     4
#define DEFAULT_DURATION_S      10.0
#define DEFAULT_TIMEOUT_S       10.0
#define MAX_CONCURRENCY         1024
#define ERRORS_SHOWN_PER_THREAD 3 /* the rest are only counted */
#define NS_PER_SEC              1000000000LL
#define NS_PER_US               1000LL
#define GRPC_TRACE_METHOD       "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define HTTP_TRACES_PATH        "/v1/traces"
#define GZIP_WINDOW_BITS        (15 + 16) /* 32 KiB window, gzip wrapper */
#define GZIP_MEM_LEVEL          8         /* zlib's default */

enum protocol { PROTO_GRPC, PROTO_HTTP };

struct config {
    enum protocol protocol;
    const char *endpoint;
    const char *url_path;
    size_t spans_per_request;
    int concurrency;
    double duration_s;
    uint64_t max_requests; /* 0 = run for duration_s */
    uint64_t seed;
    size_t pool_size;
    double timeout_s;
    bool gzip;
    bool quiet;
    bool unique_trace_ids;
    double rate; /* spans per second offered; 0 = as fast as answers come back */
};

/* Where the trace-ID bytes of each span sit inside one packed request (--unique-trace-ids). */
struct tid_offsets {
    uint32_t *off;
    size_t n;
};

struct shared {
    const struct config *cfg;
    const struct wl_pool *pool;
    const struct tid_offsets *tids; /* per pool request; NULL without --unique-trace-ids */
    size_t max_req_len;
    int64_t deadline_mono_ns; /* 0 when bounded by max_requests */
    _Atomic uint64_t claimed; /* requests handed out (for --requests) */
    int64_t start_mono_ns;
    double slot_ns;          /* --rate: nanoseconds between request starts; 0 = unpaced */
    _Atomic uint64_t slots;  /* --rate: send slots handed out, over all threads */
    char url[512];
};

/* Per-thread state and results; only the owning thread writes it until joined. */
struct worker {
    struct shared *sh;
    int index;
    uint64_t ok, failed, spans_ok, spans_rejected, bytes;
    uint32_t *lat_us; /* latency of every successful request, microseconds */
    size_t nlat, caplat;
    int errors_shown;
    /* gRPC */
    struct lg_grpc_channel *channel;
    /* HTTP */
    CURL *curl;
    struct curl_slist *headers;
    uint8_t *body; /* response body of the current request */
    size_t body_len, body_cap;
    bool body_oom;
    /* --unique-trace-ids: the request being sent, with its trace IDs rewritten */
    uint8_t *scratch;
    uint64_t sends;
};

static void worker_error(struct worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void worker_error(struct worker *w, const char *fmt, ...)
{
    if (w->errors_shown >= ERRORS_SHOWN_PER_THREAD)
        return;
    w->errors_shown++;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "loadgen: thread %d: %s%s\n", w->index, msg,
            w->errors_shown == ERRORS_SHOWN_PER_THREAD ? " (further errors only counted)" : "");
}

static void record_latency(struct worker *w, int64_t ns)
{
    if (w->nlat == w->caplat) {
        size_t cap = w->caplat ? w->caplat * 2 : 4096;
        uint32_t *p = realloc(w->lat_us, cap * sizeof *p);
        if (p == NULL)
            return; /* percentiles lose a sample; counts stay exact */
        w->lat_us = p;
        w->caplat = cap;
    }
    int64_t us = ns / NS_PER_US;
    w->lat_us[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* Spans the server refused in an otherwise successful answer (partial_success). */
static int64_t rejected_spans(const uint8_t *resp, size_t len)
{
    if (resp == NULL || len == 0)
        return 0;
    lg_traces_resp *r = (lg_traces_resp *)protobuf_c_message_unpack(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor,
        NULL, len, resp);
    if (r == NULL)
        return 0;
    int64_t n = r->partial_success ? r->partial_success->rejected_spans : 0;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return n;
}

/* ---- gRPC ---- */

static int grpc_open(struct worker *w)
{
    struct lg_err err;
    /* wait_for_ready: a gateway that is still starting delays the first call instead of
     * failing it. */
    struct lg_grpc_channel_opts opts = {
        .insecure = true,
        .gzip = w->sh->cfg->gzip,
        .wait_for_ready = true,
        .user_agent = "llmgate-loadgen",
    };
    w->channel = lg_grpc_channel_create(w->sh->cfg->endpoint, &opts, &err);
    if (w->channel == NULL) {
        fprintf(stderr, "loadgen: cannot create gRPC channel to %s: %s\n", w->sh->cfg->endpoint,
                err.msg);
        return -1;
    }
    return 0;
}

/* Returns spans rejected (>= 0) on success, -1 on failure. */
static int64_t grpc_send(struct worker *w, const struct wl_request *r)
{
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int status = -1;
    char msg[256] = "";
    int64_t timeout_ns = (int64_t)(w->sh->cfg->timeout_s * (double)NS_PER_SEC);
    int rc = lg_grpc_unary(w->channel, GRPC_TRACE_METHOD, NULL, r->data, r->len, timeout_ns, &resp,
                           &resp_len, &status, msg, sizeof msg);
    if (rc != 0 || status != LG_GRPC_OK) {
        worker_error(w, "gRPC Export failed: status %d (%s) %s", status,
                     lg_grpc_status_name(status), msg);
        free(resp);
        return -1;
    }
    int64_t rejected = rejected_spans(resp, resp_len);
    free(resp);
    return rejected;
}

static void grpc_close(struct worker *w)
{
    lg_grpc_channel_destroy(w->channel);
    w->channel = NULL;
}

/* ---- HTTP (libcurl, one easy handle per thread: the connection is kept alive) ---- */

static size_t http_body_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    struct worker *w = arg;
    size_t n = size * nmemb;
    if (w->body_len + n > w->body_cap) {
        size_t cap = (w->body_len + n) * 2;
        uint8_t *p = realloc(w->body, cap);
        if (p == NULL) {
            w->body_oom = true;
            return n; /* keep the connection; the body is only read for partial_success */
        }
        w->body = p;
        w->body_cap = cap;
    }
    memcpy(w->body + w->body_len, data, n);
    w->body_len += n;
    return n;
}

static int http_open(struct worker *w)
{
    w->curl = curl_easy_init();
    if (w->curl == NULL) {
        fprintf(stderr, "loadgen: curl_easy_init failed\n");
        return -1;
    }
    /* An empty "Expect:" stops libcurl from waiting for 100-continue on large bodies. */
    const char *headers[] = {"Content-Type: application/x-protobuf",
                             "Expect:", w->sh->cfg->gzip ? "Content-Encoding: gzip" : NULL};
    for (size_t i = 0; i < LG_ARRAY_LEN(headers) && headers[i] != NULL; i++) {
        struct curl_slist *h = curl_slist_append(w->headers, headers[i]);
        if (h == NULL) {
            fprintf(stderr, "loadgen: out of memory\n");
            return -1;
        }
        w->headers = h;
    }
    long timeout_ms = (long)(w->sh->cfg->timeout_s * 1000.0);
    curl_easy_setopt(w->curl, CURLOPT_URL, w->sh->url);
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers);
    curl_easy_setopt(w->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, http_body_cb);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(w->curl, CURLOPT_NOPROXY, "*");
    return 0;
}

static int64_t http_send(struct worker *w, const struct wl_request *r)
{
    w->body_len = 0;
    w->body_oom = false;
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, (const char *)r->data);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
    CURLcode cc = curl_easy_perform(w->curl);
    if (cc != CURLE_OK) {
        worker_error(w, "POST %s: %s", w->sh->url, curl_easy_strerror(cc));
        return -1;
    }
    long code = 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        worker_error(w, "POST %s: HTTP %ld", w->sh->url, code);
        return -1;
    }
    return w->body_oom ? 0 : rejected_spans(w->body, w->body_len);
}

static void http_close(struct worker *w)
{
    if (w->curl != NULL)
        curl_easy_cleanup(w->curl);
    curl_slist_free_all(w->headers);
    free(w->body);
    w->curl = NULL;
    w->headers = NULL;
    w->body = NULL;
}

/* Replaces every request body of the pool by its gzip encoding (HTTP --gzip: the bodies
 * are compressed once, before timing, as the spans would be by an SDK). */
static int gzip_pool(struct wl_pool *pool)
{
    for (size_t i = 0; i < pool->n; i++) {
        struct wl_request *r = &pool->reqs[i];
        z_stream zs = {0};
        if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
                         Z_DEFAULT_STRATEGY) != Z_OK)
            return -1;
        uLong cap = deflateBound(&zs, (uLong)r->len);
        uint8_t *out = malloc(cap);
        if (out == NULL) {
            deflateEnd(&zs);
            return -1;
        }
        zs.next_in = r->data;
        zs.avail_in = (uInt)r->len;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        int zrc = deflate(&zs, Z_FINISH);
        size_t out_len = zs.total_out;
        deflateEnd(&zs);
        if (zrc != Z_STREAM_END) {
            free(out);
            return -1;
        }
        pool->total_bytes -= r->len;
        pool->total_bytes += out_len;
        free(r->data);
        r->data = out;
        r->len = out_len;
    }
    return 0;
}

/* ---- fresh trace IDs (--unique-trace-ids) ---- */

/* Reads a protobuf varint at *p (< end); false when truncated. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* Calls back for every length-delimited field `field` of the message in [p, end), with its
 * payload range; skips other fields. -1 on malformed input. */
static int pb_each_len(const uint8_t *p, const uint8_t *end, uint32_t field,
                       int (*fn)(void *, const uint8_t *, const uint8_t *), void *arg)
{
    while (p < end) {
        uint64_t key, n;
        if (!pb_varint(&p, end, &key))
            return -1;
        switch (key & 7) {
        case 0:
            if (!pb_varint(&p, end, &n))
                return -1;
            break;
        case 1: p += 8; break;
        case 5: p += 4; break;
        case 2:
            if (!pb_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return -1;
            if ((key >> 3) == field && fn(arg, p, p + n) != 0)
                return -1;
            p += n;
            break;
        default: return -1;
        }
        if (p > end)
            return -1;
    }
    return 0;
}

struct tid_walk {
    const uint8_t *base;
    struct tid_offsets *out;
    size_t cap;
};

/* Span.trace_id = 1 */
static int tid_of_span_field(void *arg, const uint8_t *p, const uint8_t *end)
{
    struct tid_walk *w = arg;
    if (end - p != WL_TRACE_ID_LEN)
        return 0;
    if (w->out->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 512;
        uint32_t *o = realloc(w->out->off, nc * sizeof *o);
        if (o == NULL)
            return -1;
        w->out->off = o;
        w->cap = nc;
    }
    w->out->off[w->out->n++] = (uint32_t)(p - w->base);
    return 0;
}
static int tid_of_span(void *arg, const uint8_t *p, const uint8_t *end)
{
    return pb_each_len(p, end, 1, tid_of_span_field, arg);
}
/* ScopeSpans.spans = 2 */
static int tid_of_scope(void *arg, const uint8_t *p, const uint8_t *end)
{
    return pb_each_len(p, end, 2, tid_of_span, arg);
}
/* ResourceSpans.scope_spans = 2 */
static int tid_of_resource(void *arg, const uint8_t *p, const uint8_t *end)
{
    return pb_each_len(p, end, 2, tid_of_scope, arg);
}

/* Finds, once, the offsets of every span's trace ID in each packed request
 * (ExportTraceServiceRequest.resource_spans = 1). */
static struct tid_offsets *tid_index_build(const struct wl_pool *pool, size_t *max_len)
{
    struct tid_offsets *t = calloc(pool->n, sizeof *t);
    if (t == NULL)
        return NULL;
    *max_len = 0;
    for (size_t i = 0; i < pool->n; i++) {
        struct tid_walk w = {.base = pool->reqs[i].data, .out = &t[i]};
        const uint8_t *d = pool->reqs[i].data;
        if (pb_each_len(d, d + pool->reqs[i].len, 1, tid_of_resource, &w) != 0 ||
            t[i].n != pool->reqs[i].spans) {
            for (size_t k = 0; k <= i; k++)
                free(t[k].off);
            free(t);
            return NULL;
        }
        if (pool->reqs[i].len > *max_len)
            *max_len = pool->reqs[i].len;
    }
    return t;
}

static void tid_index_free(struct tid_offsets *t, size_t n)
{
    for (size_t i = 0; t != NULL && i < n; i++)
        free(t[i].off);
    free(t);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A copy of request i whose trace IDs are XORed with a key unique to this send (seed,
 * thread, send number): every send carries new traces, while the spans of one trace in
 * the request still share one ID. Costs a memcpy and 8 bytes per span. */
static struct wl_request fresh_ids(struct worker *w, size_t i)
{
    const struct wl_request *r = &w->sh->pool->reqs[i];
    const struct tid_offsets *t = &w->sh->tids[i];
    uint64_t key = mix64(w->sh->cfg->seed * 0x9e3779b97f4a7c15ULL ^
                         mix64(((uint64_t)w->index << 40) ^ ++w->sends));
    memcpy(w->scratch, r->data, r->len);
    for (size_t k = 0; k < t->n; k++) {
        uint8_t *id = w->scratch + t->off[k] + WL_TRACE_ID_LEN / 2;
        uint64_t v;
        memcpy(&v, id, sizeof v);
        v ^= key;
        memcpy(id, &v, sizeof v);
    }
    return (struct wl_request){.data = w->scratch, .len = r->len, .spans = r->spans};
}

/* ---- the send loop ---- */

/* Sleeps until the monotonic clock reads at least at_ns (returns at once when it has). */
static void sleep_until_mono(int64_t at_ns)
{
    if (lg_now_mono_ns() >= at_ns)
        return;
    struct timespec ts = {.tv_sec = (time_t)(at_ns / NS_PER_SEC),
                          .tv_nsec = (long)(at_ns % NS_PER_SEC)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct config *cfg = w->sh->cfg;
    const struct wl_pool *pool = w->sh->pool;
    bool grpc = cfg->protocol == PROTO_GRPC;
    if ((grpc ? grpc_open(w) : http_open(w)) != 0) {
        w->failed++;
        goto done;
    }
    if (w->sh->tids != NULL && (w->scratch = malloc(w->sh->max_req_len)) == NULL) {
        worker_error(w, "out of memory");
        w->failed++;
        goto done;
    }
    /* Threads start at different places in the pool so that they do not send the same
     * request at the same moment. */
    size_t next = (size_t)w->index * pool->n / (size_t)cfg->concurrency;
    for (;;) {
        if (cfg->max_requests > 0) {
            if (atomic_fetch_add(&w->sh->claimed, 1) >= cfg->max_requests)
                break;
        } else if (lg_now_mono_ns() >= w->sh->deadline_mono_ns) {
            break;
        }
        if (w->sh->slot_ns > 0) {
            /* Paced: wait for this request's slot. A slot already past is sent at once. */
            uint64_t slot = atomic_fetch_add(&w->sh->slots, 1);
            int64_t at = w->sh->start_mono_ns + (int64_t)((double)slot * w->sh->slot_ns);
            if (w->sh->deadline_mono_ns > 0 && at >= w->sh->deadline_mono_ns)
                break;
            sleep_until_mono(at);
        }
        struct wl_request fresh;
        const struct wl_request *r = &pool->reqs[next];
        if (w->sh->tids != NULL) {
            fresh = fresh_ids(w, next);
            r = &fresh;
        }
        next = (next + 1) % pool->n;
        int64_t t0 = lg_now_mono_ns();
        int64_t rejected = grpc ? grpc_send(w, r) : http_send(w, r);
        int64_t t1 = lg_now_mono_ns();
        if (rejected < 0) {
            w->failed++;
            continue;
        }
        w->ok++;
        w->bytes += r->len;
        w->spans_rejected += (uint64_t)rejected;
        w->spans_ok += r->spans - (size_t)rejected;
        record_latency(w, t1 - t0);
    }
done:
    if (grpc)
        grpc_close(w);
    else
        http_close(w);
    free(w->scratch);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Milliseconds at quantile q of sorted samples (0 when there are none). */
static double quantile_ms(const uint32_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i] / 1000.0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen --protocol grpc|http --endpoint HOST:PORT [options]\n"
            "  Sends OTLP trace export requests (protobuf) and reports spans per second.\n"
            "  --protocol grpc|http     OTLP/gRPC or OTLP/HTTP (application/x-protobuf)\n"
            "  --endpoint HOST:PORT     where the receiver listens (default 127.0.0.1:4317 for\n"
            "                           grpc, 127.0.0.1:4318 for http)\n"
            "  --url-path PATH          HTTP path (default %s)\n"
            "  --spans-per-request N    spans in each request (default %d)\n"
            "  --concurrency N          sending threads, one connection each (default %d)\n"
            "  --duration SECONDS       how long to send (default %.0f)\n"
            "  --requests N             send exactly N requests instead of running for a time\n"
            "  --seed N                 workload seed (default 1)\n"
            "  --pool N                 distinct pre-built requests (default %d)\n"
            "  --timeout SECONDS        per-request deadline (default %.0f)\n"
            "  --gzip                   compress requests (gRPC: per call; HTTP: bodies are\n"
            "                           compressed once before timing, Content-Encoding: gzip)\n"
            "  --unique-trace-ids       every request sent carries new trace IDs (the spans of\n"
            "                           one trace keep sharing theirs), as real traffic does;\n"
            "                           without it the pool's traces repeat every pass\n"
            "  --rate SPANS_PER_SEC     pace the sends to offer this many spans per second\n"
            "                           over all threads (requests start every\n"
            "                           spans-per-request / rate seconds; one that is late is\n"
            "                           sent at once); default: unpaced, each thread sends\n"
            "                           its next request when the previous one is answered\n"
            "  --quiet                  print only the RESULT line\n",
            HTTP_TRACES_PATH, WL_DEFAULT_SPANS_PER_REQUEST, DEFAULT_CONCURRENCY, DEFAULT_DURATION_S,
            WL_DEFAULT_POOL_SIZE, DEFAULT_TIMEOUT_S);
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    static const struct option longopts[] = {
        {"protocol", required_argument, NULL, 'P'},
        {"endpoint", required_argument, NULL, 'e'},
        {"url-path", required_argument, NULL, 'u'},
        {"spans-per-request", required_argument, NULL, 'n'},
        {"concurrency", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},
        {"pool", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'},
        {"gzip", no_argument, NULL, 'z'},
        {"quiet", no_argument, NULL, 'q'},
        {"unique-trace-ids", no_argument, NULL, 'U'},
        {"rate", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool have_protocol = false;
    int opt, li = 0;
    while ((opt = getopt_long(argc, argv, "hq", longopts, &li)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'P':
            if (strcmp(optarg, "grpc") == 0) {
                cfg->protocol = PROTO_GRPC;
            } else if (strcmp(optarg, "http") == 0) {
                cfg->protocol = PROTO_HTTP;
            } else {
                fprintf(stderr, "loadgen: --protocol: expected grpc or http, got \"%s\"\n", optarg);
                return -1;
            }
            have_protocol = true;
            break;
        case 'e': cfg->endpoint = optarg; break;
        case 'u': cfg->url_path = optarg; break;
        case 'n': cfg->spans_per_request = strtoul(optarg, &end, 10); break;
        case 'c': cfg->concurrency = (int)strtol(optarg, &end, 10); break;
        case 'd': cfg->duration_s = strtod(optarg, &end); break;
        case 'r': cfg->max_requests = strtoull(optarg, &end, 10); break;
        case 's': cfg->seed = strtoull(optarg, &end, 10); break;
        case 'p': cfg->pool_size = strtoul(optarg, &end, 10); break;
        case 't': cfg->timeout_s = strtod(optarg, &end); break;
        case 'z': cfg->gzip = true; break;
        case 'q': cfg->quiet = true; break;
        case 'U': cfg->unique_trace_ids = true; break;
        case 'R': cfg->rate = strtod(optarg, &end); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
        if (end != NULL && (*end != '\0' || end == optarg)) {
            fprintf(stderr, "loadgen: --%s: \"%s\" is not a number\n", longopts[li].name, optarg);
            return -1;
        }
    }
    if (!have_protocol) {
        fprintf(stderr, "loadgen: --protocol grpc|http is required\n");
        usage(stderr);
        return -1;
    }
    if (cfg->endpoint == NULL)
        cfg->endpoint = cfg->protocol == PROTO_GRPC ? "127.0.0.1:4317" : "127.0.0.1:4318";
    if (cfg->concurrency < 1 || cfg->concurrency > MAX_CONCURRENCY) {
        fprintf(stderr, "loadgen: --concurrency must be between 1 and %d\n", MAX_CONCURRENCY);
        return -1;
    }
    if (cfg->spans_per_request == 0 || cfg->pool_size == 0) {
        fprintf(stderr, "loadgen: --spans-per-request and --pool must be > 0\n");
        return -1;
    }
    if (cfg->max_requests == 0 && !(cfg->duration_s > 0)) {
        fprintf(stderr, "loadgen: --duration must be > 0 (or give --requests)\n");
        return -1;
    }
    if (cfg->unique_trace_ids && cfg->gzip && cfg->protocol == PROTO_HTTP) {
        /* the bodies are compressed once, before timing: their IDs cannot be rewritten */
        fprintf(stderr, "loadgen: --unique-trace-ids does not work with --gzip over http\n");
        return -1;
    }
    if (cfg->rate < 0 || cfg->rate != cfg->rate) {
        fprintf(stderr, "loadgen: --rate must be a number of spans per second (0: unpaced)\n");
        return -1;
    }
    if (!(cfg->timeout_s > 0)) {
        fprintf(stderr, "loadgen: --timeout must be > 0\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg = {
        .url_path = HTTP_TRACES_PATH,
        .spans_per_request = WL_DEFAULT_SPANS_PER_REQUEST,
        .concurrency = DEFAULT_CONCURRENCY,
        .duration_s = DEFAULT_DURATION_S,
        .seed = 1,
        .pool_size = WL_DEFAULT_POOL_SIZE,
        .timeout_s = DEFAULT_TIMEOUT_S,
    };
    if (parse_args(argc, argv, &cfg) != 0)
        return 2;

    struct wl_pool pool;
    struct lg_err err;
    struct wl_opts wo = {.spans_per_request = cfg.spans_per_request, .seed = cfg.seed};
    if (wl_pool_build(&pool, cfg.pool_size, &wo, &err) != 0) {
        fprintf(stderr, "loadgen: %s\n", err.msg);
        return 1;
    }
    if (cfg.gzip && cfg.protocol == PROTO_HTTP && gzip_pool(&pool) != 0) {
        fprintf(stderr, "loadgen: gzip compression of the request pool failed\n");
        wl_pool_free(&pool);
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "loadgen: curl_global_init failed\n");
        wl_pool_free(&pool);
        return 1;
    }

    struct shared sh = {.cfg = &cfg, .pool = &pool};
    struct tid_offsets *tids = NULL;
    if (cfg.unique_trace_ids) {
        tids = tid_index_build(&pool, &sh.max_req_len);
        if (tids == NULL) {
            fprintf(stderr, "loadgen: cannot index the trace IDs of the request pool\n");
            curl_global_cleanup();
            wl_pool_free(&pool);
            return 1;
        }
        sh.tids = tids;
    }
    snprintf(sh.url, sizeof sh.url, "http://%s%s", cfg.endpoint, cfg.url_path);
    const char *proto_name = cfg.protocol == PROTO_GRPC ? "grpc" : "http";
    if (!cfg.quiet)
        printf("loadgen: %s -> %s, %d threads, %zu spans/request, %zu distinct requests "
               "(%.1f KiB average%s), %s%s\n",
               proto_name, cfg.endpoint, cfg.concurrency, cfg.spans_per_request, pool.n,
               (double)pool.total_bytes / (double)pool.n / 1024.0,
               cfg.gzip ? (cfg.protocol == PROTO_HTTP ? ", gzip" : ", before gzip") : "",
               cfg.max_requests ? "bounded by --requests" : "bounded by --duration",
               cfg.unique_trace_ids ? ", fresh trace IDs every request" : "");

    struct worker *workers = calloc((size_t)cfg.concurrency, sizeof *workers);
    pthread_t *threads = calloc((size_t)cfg.concurrency, sizeof *threads);
    if (workers == NULL || threads == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        free(workers);
        free(threads);
        tid_index_free(tids, pool.n);
        wl_pool_free(&pool);
        return 1;
    }
    int64_t start = lg_now_mono_ns();
    if (cfg.max_requests == 0)
        sh.deadline_mono_ns = start + (int64_t)(cfg.duration_s * (double)NS_PER_SEC);
    sh.start_mono_ns = start;
    if (cfg.rate > 0)
        sh.slot_ns = (double)cfg.spans_per_request / cfg.rate * (double)NS_PER_SEC;
    int started = 0;
    for (int i = 0; i < cfg.concurrency; i++) {
        workers[i].sh = &sh;
        workers[i].index = i;
        if (pthread_create(&threads[i], NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", i);
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    double elapsed = (double)(lg_now_mono_ns() - start) / (double)NS_PER_SEC;

    uint64_t ok = 0, failed = 0, spans = 0, rejected = 0, bytes = 0;
    size_t nlat = 0;
    for (int i = 0; i < started; i++) {
        ok += workers[i].ok;
        failed += workers[i].failed;
        spans += workers[i].spans_ok;
        rejected += workers[i].spans_rejected;
        bytes += workers[i].bytes;
        nlat += workers[i].nlat;
    }
    uint32_t *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    size_t at = 0;
    for (int i = 0; i < started; i++) {
        if (lat != NULL && workers[i].nlat > 0)
            memcpy(lat + at, workers[i].lat_us, workers[i].nlat * sizeof *lat);
        at += workers[i].nlat;
        free(workers[i].lat_us);
    }
    if (lat == NULL)
        nlat = 0;
    else
        qsort(lat, nlat, sizeof *lat, cmp_u32);
    double p50 = quantile_ms(lat, nlat, 0.50), p99 = quantile_ms(lat, nlat, 0.99);
    double sps = elapsed > 0 ? (double)spans / elapsed : 0;

    if (!cfg.quiet) {
        printf("requests: %" PRIu64 " ok, %" PRIu64 " failed\n", ok, failed);
        printf("spans:    %" PRIu64 " accepted, %" PRIu64 " rejected (partial success)\n", spans,
               rejected);
        printf("elapsed:  %.3f s\n", elapsed);
        printf("rate:     %.0f spans/s, %.1f requests/s, %.1f MB/s\n", sps,
               elapsed > 0 ? (double)ok / elapsed : 0, elapsed > 0 ? bytes / elapsed / 1e6 : 0);
        printf("latency:  p50 %.2f ms, p99 %.2f ms\n", p50, p99);
    }
    printf("RESULT protocol=%s requests=%" PRIu64 " ok=%" PRIu64 " failed=%" PRIu64
           " spans=%" PRIu64 " rejected=%" PRIu64 " seconds=%.3f spans_per_sec=%.0f"
           " p50_ms=%.2f p99_ms=%.2f errors=%" PRIu64 "\n",
           proto_name, ok + failed, ok, failed, spans, rejected, elapsed, sps, p50, p99, failed);

    free(lat);
    free(workers);
    free(threads);
    curl_global_cleanup();
    tid_index_free(tids, pool.n);
    wl_pool_free(&pool);
    return failed == 0 && ok > 0 ? 0 : 1;
}
