/* bench/sink.c — a minimal OTLP trace sink for exporter benchmarks: accepts
 * ExportTraceServiceRequests over OTLP/gRPC (core/grpc_server.h) and/or OTLP/HTTP protobuf
 * (core/httpd.h; gzip and deflate bodies are inflated), decodes each one, counts requests
 * and spans, and answers success.
 * Prints a progress line every --interval seconds and a final
 *   RESULT requests=... spans=... bytes=... seconds=... spans_per_sec=... bad=...
 * when stopped by SIGINT/SIGTERM or after --duration seconds (it always stops by itself
 * when --duration is given). Owns its two servers and nothing else. */
#include <event2/buffer.h>
#include <event2/http.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "core/batch.h"
#include "core/grpc_server.h"
#include "core/httpd.h"

#define GRPC_TRACE_METHOD       "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define HTTP_TRACES_PATH        "/v1/traces"
#define MAX_MSG_BYTES           (64u << 20) /* far above any real export request */
#define DEFAULT_INTERVAL_S      1.0
#define SHUTDOWN_GRACE_NS       2000000000LL
#define NS_PER_SEC              1000000000LL
#define HTTP_STATUS_OK          200
#define HTTP_STATUS_BAD_REQUEST 400
#define HTTP_STATUS_NOT_FOUND   404
#define GZIP_AUTO_WINDOW_BITS   (15 + 32) /* inflate accepts gzip and zlib wrappers */
#define INFLATE_FIRST_GUESS     8         /* protobuf spans compress about 5-8x */

struct sink {
    _Atomic uint64_t requests, spans, bytes, bad;
};

/* Decodes and counts one request; false when it is not a valid request. */
static bool sink_count(struct sink *s, const uint8_t *data, size_t len, char *why, size_t whylen)
{
    struct lg_batch *b = NULL;
    struct lg_err err;
    if (lg_batch_decode(LG_SIGNAL_TRACES, data, len, &b, &err) != LG_OK) {
        atomic_fetch_add(&s->bad, 1);
        snprintf(why, whylen, "%s", err.msg);
        return false;
    }
    atomic_fetch_add(&s->requests, 1);
    atomic_fetch_add(&s->spans, b->items);
    atomic_fetch_add(&s->bytes, len);
    lg_batch_unref(b);
    return true;
}

static void on_grpc_export(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    char why[LG_ERR_MAX];
    if (!sink_count(arg, req, len, why, sizeof why)) {
        lg_grpc_call_finish(call, LG_GRPC_INVALID_ARGUMENT, why, NULL, 0);
        return;
    }
    /* An empty ExportTraceServiceResponse is zero bytes on the wire. */
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL, NULL, 0);
}

/* Inflates a gzip (or zlib) body into malloc'd memory; NULL when corrupt or too large. */
static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, GZIP_AUTO_WINDOW_BITS) != Z_OK)
        return NULL;
    size_t cap = len * INFLATE_FIRST_GUESS + 1024, used = 0;
    uint8_t *out = NULL;
    int zrc = Z_OK;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    while (zrc != Z_STREAM_END) {
        if (out == NULL || used == cap) {
            if (out != NULL)
                cap *= 2;
            uint8_t *p = cap <= MAX_MSG_BYTES ? realloc(out, cap) : NULL;
            if (p == NULL)
                break;
            out = p;
        }
        zs.next_out = out + used;
        zs.avail_out = (uInt)(cap - used);
        zrc = inflate(&zs, Z_NO_FLUSH);
        used = cap - zs.avail_out;
        if (zrc != Z_OK && zrc != Z_STREAM_END)
            break;
    }
    inflateEnd(&zs);
    if (zrc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    *out_len = used;
    return out;
}

static void on_http(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST || path == NULL ||
        strcmp(path, HTTP_TRACES_PATH) != 0) {
        evhttp_send_reply(req, HTTP_STATUS_NOT_FOUND, "Not Found", NULL);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const uint8_t *data = len ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    const char *enc = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Encoding");
    uint8_t *inflated = NULL;
    if (data != NULL && enc != NULL && (strcmp(enc, "gzip") == 0 || strcmp(enc, "deflate") == 0)) {
        inflated = gunzip(data, len, &len);
        data = inflated;
    }
    char why[LG_ERR_MAX];
    bool ok = data != NULL && sink_count(arg, data, len, why, sizeof why);
    free(inflated);
    if (!ok) {
        evhttp_send_reply(req, HTTP_STATUS_BAD_REQUEST, "Bad Request", NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/x-protobuf");
    evhttp_send_reply(req, HTTP_STATUS_OK, "OK", NULL);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sink [--grpc HOST:PORT] [--http HOST:PORT] [--duration S] [--interval S]\n"
            "  Counts OTLP trace requests and spans; at least one of --grpc / --http.\n"
            "  --grpc HOST:PORT   OTLP/gRPC listen address (e.g. 127.0.0.1:24317)\n"
            "  --http HOST:PORT   OTLP/HTTP listen address (POST %s, protobuf)\n"
            "  --duration S       stop after S seconds (default: until SIGINT/SIGTERM)\n"
            "  --interval S       progress line every S seconds; 0 = none (default %.0f)\n",
            HTTP_TRACES_PATH, DEFAULT_INTERVAL_S);
}

static void print_totals(const char *prefix, struct sink *s, double seconds)
{
    uint64_t spans = atomic_load(&s->spans);
    printf("%srequests=%" PRIu64 " spans=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f "
           "spans_per_sec=%.0f bad=%" PRIu64 "\n",
           prefix, atomic_load(&s->requests), spans, atomic_load(&s->bytes), seconds,
           seconds > 0 ? (double)spans / seconds : 0, atomic_load(&s->bad));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    const char *grpc_ep = NULL, *http_ep = NULL;
    double duration = 0, interval = DEFAULT_INTERVAL_S;
    static const struct option longopts[] = {
        {"grpc", required_argument, NULL, 'g'},     {"http", required_argument, NULL, 'H'},
        {"duration", required_argument, NULL, 'd'}, {"interval", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'g': grpc_ep = optarg; break;
        case 'H': http_ep = optarg; break;
        case 'd': duration = strtod(optarg, NULL); break;
        case 'i': interval = strtod(optarg, NULL); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (grpc_ep == NULL && http_ep == NULL) {
        fprintf(stderr, "sink: give --grpc and/or --http\n");
        usage(stderr);
        return 2;
    }

    /* Block the stop signals before any server thread exists, so that every thread
     * inherits the mask and only sigtimedwait below receives them. */
    sigset_t stop_sigs;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sink s = {0};
    struct lg_err err;
    struct lg_grpc_server *gs = NULL;
    struct lg_http_server *hs = NULL;
    int rc = 1;
    if (grpc_ep != NULL) {
        struct lg_grpc_server_opts go = {.endpoint = grpc_ep, .max_recv_msg_size = MAX_MSG_BYTES};
        gs = lg_grpc_server_create(&go, &err);
        if (gs == NULL ||
            lg_grpc_server_add_method(gs, GRPC_TRACE_METHOD, on_grpc_export, &s, &err) != 0 ||
            lg_grpc_server_start(gs, &err) != 0) {
            fprintf(stderr, "sink: gRPC on %s: %s\n", grpc_ep, err.msg);
            goto out;
        }
        printf("sink: OTLP/gRPC on port %d\n", lg_grpc_server_port(gs));
    }
    if (http_ep != NULL) {
        struct lg_http_server_opts ho = {.endpoint = http_ep, .max_body_size = MAX_MSG_BYTES};
        if (lg_http_server_start(&ho, on_http, &s, &hs, &err) != 0) {
            hs = NULL;
            fprintf(stderr, "sink: HTTP on %s: %s\n", http_ep, err.msg);
            goto out;
        }
        printf("sink: OTLP/HTTP on port %d\n", lg_http_server_port(hs));
    }
    fflush(stdout);

    int64_t start = lg_now_mono_ns();
    int64_t end = duration > 0 ? start + (int64_t)(duration * (double)NS_PER_SEC) : INT64_MAX;
    for (;;) {
        int64_t now = lg_now_mono_ns();
        if (now >= end)
            break;
        int64_t wait_ns = interval > 0 ? (int64_t)(interval * (double)NS_PER_SEC) : NS_PER_SEC;
        if (end - now < wait_ns)
            wait_ns = end - now;
        struct timespec ts = {.tv_sec = wait_ns / NS_PER_SEC, .tv_nsec = wait_ns % NS_PER_SEC};
        if (sigtimedwait(&stop_sigs, NULL, &ts) > 0)
            break;
        if (interval > 0)
            print_totals("sink: ", &s, (double)(lg_now_mono_ns() - start) / (double)NS_PER_SEC);
    }
    rc = 0;
    double seconds = (double)(lg_now_mono_ns() - start) / (double)NS_PER_SEC;
    if (hs != NULL)
        lg_http_server_stop(hs, lg_now_mono_ns() + SHUTDOWN_GRACE_NS);
    if (gs != NULL)
        lg_grpc_server_shutdown(gs, lg_now_mono_ns() + SHUTDOWN_GRACE_NS);
    print_totals("RESULT ", &s, seconds);
out:
    lg_http_server_free(hs);
    lg_grpc_server_destroy(gs);
    return rc;
}
