/* bench/decode_bench.c — decode-only microbenchmark: the floor under every pipeline.
 *
 * Builds the same pool of requests as bench/loadgen.c (bench/workload.h), then, on one
 * thread, measures spans per CPU-second (CLOCK_PROCESS_CPUTIME_ID) for:
 *   - lg_batch_decode + lg_batch_unref: what the receiver does (the fast decoder of
 *     core/otlp_fastdec.h, protobuf-c only as its fallback);
 *   - lg_batch_decode_indexed with the raw-span index wanted (receivers with tail sampling);
 *   - lg_otlp_fastdec_traces alone into an arena (no batch);
 *   - lg_pb_check_depth + protobuf_c_message_unpack into an arena: what lg_batch_decode did
 *     before the fast decoder, and still does for what it falls back on;
 *   - protobuf_c_message_unpack + free_unpacked with the default malloc allocator, for
 *     comparison;
 *   - lg_batch_encode of a decoded batch: the cost an OTLP exporter pays to re-encode.
 * Output: one human line per case plus machine-readable `RESULT case=...` lines.
 * Owns nothing beyond its pool and the batches it decodes. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/workload.h"
#include "core/batch.h"
#include "core/otlp_fastdec.h"
#include "core/pb_depth.h"

#define DEFAULT_SECONDS 3.0
#define NS_PER_SEC      1000000000.0
/* How many requests to process between two clock reads: clock_gettime is cheap but not
 * free next to a 0.4 ms decode. */
#define CLOCK_CHECK_EVERY 16

enum bench_case { CASE_ARENA, CASE_INDEXED, CASE_FASTDEC, CASE_PBC_ARENA, CASE_MALLOC, CASE_ENCODE, CASE_DEPTH };

static const char *const case_names[] = {"lg_batch_decode", "decode_indexed", "fastdec_only", "protobuf_c_arena",
                                         "protobuf_c_malloc", "lg_batch_encode", "pb_depth_walk"};

/* Arena size for the arena cases, as core/batch.c sizes it (3x the wire size). */
#define ARENA_FACTOR 3

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / NS_PER_SEC;
}

/* Processes request `r` once in the given way; returns the spans seen, or -1 on failure. */
static long run_one(enum bench_case c, const struct wl_request *r, struct lg_batch *decoded)
{
    struct lg_err err;
    switch (c) {
    case CASE_ARENA: {
        struct lg_batch *b = NULL;
        if (lg_batch_decode(LG_SIGNAL_TRACES, r->data, r->len, &b, &err) != LG_OK) {
            fprintf(stderr, "decode_bench: lg_batch_decode: %s\n", err.msg);
            return -1;
        }
        long n = (long)b->items;
        lg_batch_unref(b);
        return n;
    }
    case CASE_INDEXED: {
        struct lg_batch *b = NULL;
        if (lg_batch_decode_indexed(LG_SIGNAL_TRACES, r->data, r->len, &b, &err) != LG_OK) {
            fprintf(stderr, "decode_bench: lg_batch_decode_indexed: %s\n", err.msg);
            return -1;
        }
        long n = b->n_raw_spans == b->items ? (long)b->items : -1;
        lg_batch_unref(b);
        return n;
    }
    case CASE_FASTDEC: {
        struct lg_arena *a = lg_arena_create(r->len * ARENA_FACTOR + 1024);
        lg_traces_req *req = NULL;
        long n = -1;
        if (a != NULL && lg_otlp_fastdec_traces(r->data, r->len, a, &req, NULL, NULL) == LG_OK)
            n = (long)lg_request_count_items(LG_SIGNAL_TRACES, &req->base);
        else
            fprintf(stderr, "decode_bench: the fast decoder refused a workload request\n");
        lg_arena_destroy(a);
        return n;
    }
    case CASE_PBC_ARENA: {
        const ProtobufCMessageDescriptor *d = lg_request_descriptor(LG_SIGNAL_TRACES);
        struct lg_arena *a = lg_arena_create(r->len * ARENA_FACTOR + 1024);
        long n = -1;
        if (a != NULL && lg_pb_check_depth(d, r->data, r->len, LG_PB_MAX_DEPTH, &err) == LG_OK) {
            ProtobufCAllocator al = lg_arena_pb_allocator(a);
            ProtobufCMessage *m = protobuf_c_message_unpack(d, &al, r->len, r->data);
            if (m != NULL)
                n = (long)lg_request_count_items(LG_SIGNAL_TRACES, m);
        }
        if (n < 0)
            fprintf(stderr, "decode_bench: protobuf-c refused a workload request\n");
        lg_arena_destroy(a);
        return n;
    }
    case CASE_MALLOC: {
        ProtobufCMessage *m = protobuf_c_message_unpack(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            NULL, r->len, r->data);
        if (m == NULL) {
            fprintf(stderr, "decode_bench: protobuf_c_message_unpack failed\n");
            return -1;
        }
        long n = (long)lg_request_count_items(LG_SIGNAL_TRACES, m);
        protobuf_c_message_free_unpacked(m, NULL);
        return n;
    }
    case CASE_ENCODE: {
        size_t len = 0;
        uint8_t *buf = lg_batch_encode(decoded, &len);
        if (buf == NULL || len != r->len) {
            fprintf(stderr, "decode_bench: lg_batch_encode gave %zu bytes, want %zu\n", len,
                    r->len);
            free(buf);
            return -1;
        }
        free(buf);
        return (long)decoded->items;
    }
    case CASE_DEPTH:
        /* the nesting guard alone (it is part of lg_batch_decode) */
        if (lg_pb_check_depth(lg_request_descriptor(LG_SIGNAL_TRACES), r->data, r->len, LG_PB_MAX_DEPTH, &err) != LG_OK) {
            fprintf(stderr, "decode_bench: lg_pb_check_depth: %s\n", err.msg);
            return -1;
        }
        return (long)r->spans;
    }
    return -1;
}

static int run_case(enum bench_case c, const struct wl_pool *pool, double seconds)
{
    /* The encode case needs decoded batches to start from. */
    struct lg_batch **decoded = NULL;
    if (c == CASE_ENCODE) {
        decoded = calloc(pool->n, sizeof *decoded);
        if (decoded == NULL)
            return -1;
        for (size_t i = 0; i < pool->n; i++) {
            struct lg_err err;
            if (lg_batch_decode(LG_SIGNAL_TRACES, pool->reqs[i].data, pool->reqs[i].len,
                                &decoded[i], &err) != LG_OK) {
                fprintf(stderr, "decode_bench: %s\n", err.msg);
                for (size_t k = 0; k < i; k++)
                    lg_batch_unref(decoded[k]);
                free(decoded);
                return -1;
            }
        }
    }

    int rc = 0;
    uint64_t requests = 0, spans = 0, bytes = 0;
    double start = cpu_now(), elapsed = 0;
    while (elapsed < seconds) {
        for (int k = 0; k < CLOCK_CHECK_EVERY; k++) {
            size_t idx = requests % pool->n;
            long n = run_one(c, &pool->reqs[idx], decoded ? decoded[idx] : NULL);
            if (n != (long)pool->reqs[idx].spans) {
                if (n >= 0)
                    fprintf(stderr, "decode_bench: %s saw %ld spans, want %zu\n", case_names[c], n,
                            pool->reqs[idx].spans);
                rc = -1;
                goto out;
            }
            requests++;
            spans += (uint64_t)n;
            bytes += pool->reqs[idx].len;
        }
        elapsed = cpu_now() - start;
    }
    printf("%-18s %9" PRIu64 " requests  %12.0f spans/cpu-s  %8.1f MB/cpu-s  %7.1f us/request\n",
           case_names[c], requests, (double)spans / elapsed, (double)bytes / elapsed / 1e6,
           elapsed * 1e6 / (double)requests);
    printf("RESULT case=%s requests=%" PRIu64 " spans=%" PRIu64 " cpu_seconds=%.3f "
           "spans_per_cpu_sec=%.0f us_per_request=%.1f\n",
           case_names[c], requests, spans, elapsed, (double)spans / elapsed,
           elapsed * 1e6 / (double)requests);
out:
    if (decoded != NULL) {
        for (size_t i = 0; i < pool->n; i++)
            lg_batch_unref(decoded[i]);
        free(decoded);
    }
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: decode_bench [--seconds S] [--spans-per-request N] [--pool N] [--seed N]\n"
            "  Decodes the loadgen workload in a loop and prints spans per CPU-second for\n"
            "  lg_batch_decode (fast decoder), the indexed decode, the fast decoder alone,\n"
            "  protobuf-c in an arena (the old lg_batch_decode), plain protobuf-c (malloc),\n"
            "  lg_batch_encode and the nesting guard.\n"
            "  --seconds S            CPU seconds per case (default %.0f)\n"
            "  --spans-per-request N  spans in each request (default %d)\n"
            "  --pool N               distinct requests (default %d)\n"
            "  --seed N               workload seed (default 1)\n",
            DEFAULT_SECONDS, WL_DEFAULT_SPANS_PER_REQUEST, WL_DEFAULT_POOL_SIZE);
}

int main(int argc, char **argv)
{
    double seconds = DEFAULT_SECONDS;
    size_t pool_size = WL_DEFAULT_POOL_SIZE;
    struct wl_opts wo = {.spans_per_request = WL_DEFAULT_SPANS_PER_REQUEST, .seed = 1};
    static const struct option longopts[] = {
        {"seconds", required_argument, NULL, 's'},
        {"spans-per-request", required_argument, NULL, 'n'},
        {"pool", required_argument, NULL, 'p'},
        {"seed", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's': seconds = strtod(optarg, NULL); break;
        case 'n': wo.spans_per_request = strtoul(optarg, NULL, 10); break;
        case 'p': pool_size = strtoul(optarg, NULL, 10); break;
        case 'S': wo.seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (seconds <= 0 || pool_size == 0 || wo.spans_per_request == 0) {
        fprintf(stderr, "decode_bench: --seconds, --pool and --spans-per-request must be > 0\n");
        return 2;
    }

    struct wl_pool pool;
    struct lg_err err;
    if (wl_pool_build(&pool, pool_size, &wo, &err) != 0) {
        fprintf(stderr, "decode_bench: %s\n", err.msg);
        return 1;
    }
    printf("workload: %zu requests x %zu spans, %.1f KiB per request on average\n", pool.n,
           wo.spans_per_request, (double)pool.total_bytes / (double)pool.n / 1024.0);

    lg_batch_raw_index_want(true); /* read only by lg_batch_decode_indexed */
    int rc = 0;
    for (int c = CASE_ARENA; c <= CASE_DEPTH && rc == 0; c++)
        rc = run_case((enum bench_case)c, &pool, seconds);
    wl_pool_free(&pool);
    return rc == 0 ? 0 : 1;
}
