/* bench/azure_map_bench.c — the azure_monitor exporter's two CPU costs per envelope,
 * without the rest of the gateway: lg_azmon_map_batch (OTLP spans -> Application Insights
 * envelope JSON) and gzip of the request bodies (core/compress.h, the transport's level and
 * request size), on one thread, in CPU time (CLOCK_PROCESS_CPUTIME_ID).
 *
 * Input: 16 requests of the bench workload (bench/workload.h, 512 spans each, seed 99),
 * decoded as the receiver does; they are mapped round-robin so the batches are not all in
 * cache (in the gateway a batch waits in the queue before it is mapped).
 *
 * Usage: azure_map_bench [seconds=3] [gzip level=1] [mode: 0 map+gzip, 1 map only, 2 dump]
 * A gzip level of `isal` compresses with ISA-L's igzip at the exporter's level instead of
 * libdeflate, as exporters/azure_monitor.c does.
 * Mode 2 prints every envelope of the 16 batches, one per line, and nothing else: two
 * builds of the mapping must print the same (but for the `_OTELRESOURCE_` metric's time,
 * the clock's), which checks a speed change against the whole workload. Otherwise prints
 * one line: envelopes, µs per envelope for each half, compression ratio, JSON bytes
 * per envelope, and envelopes per CPU-second for both halves together.
 * Owns its pool, batches and buffers only. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <isa-l/igzip_lib.h>

#include "bench/workload.h"
#include "core/batch.h"
#include "core/compress.h"
#include "exporters/azure_monitor.h"

#define NREQ        16
#define PER_REQUEST 1024 /* envelopes per request: the exporter's default maxbatchsize */

/* igzip level 1 into out, as exporters/azure_monitor.c's isal_gzip; 0 on failure */
static size_t isal_gzip(const char *in, size_t len, uint8_t *out, size_t cap)
{
    static struct isal_zstream zs;
    static uint8_t level_buf[ISAL_DEF_LVL1_DEFAULT];
    isal_deflate_stateless_init(&zs);
    zs.level = 1;
    zs.level_buf = level_buf;
    zs.level_buf_size = sizeof level_buf;
    zs.gzip_flag = IGZIP_GZIP;
    zs.next_in = (uint8_t *)(uintptr_t)in;
    zs.avail_in = (uint32_t)len;
    zs.next_out = out;
    zs.avail_out = (uint32_t)cap;
    zs.end_of_stream = 1;
    zs.flush = NO_FLUSH;
    return isal_deflate_stateless(&zs) == COMP_OK ? zs.total_out : 0;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3;
    bool isal = argc > 2 && strcmp(argv[2], "isal") == 0;
    int level = argc > 2 && !isal ? atoi(argv[2]) : 1;
    int mode = argc > 3 ? atoi(argv[3]) : 0;
    struct wl_pool pool;
    struct lg_err err = {{0}};
    struct wl_opts wo = {.seed = 99};
    if (wl_pool_build(&pool, NREQ, &wo, &err) != 0) {
        fprintf(stderr, "azure_map_bench: %s\n", err.msg);
        return 1;
    }
    struct lg_batch *bs[NREQ];
    for (size_t i = 0; i < pool.n; i++)
        if (lg_batch_decode(LG_SIGNAL_TRACES, pool.reqs[i].data, pool.reqs[i].len, &bs[i], &err) !=
            0) {
            fprintf(stderr, "azure_map_bench: decode: %s\n", err.msg);
            return 1;
        }
    struct lg_azmon_map_opts mo = {.ikey = "11111111-2222-4333-8444-555555555555",
                                   .sdk_version = "llmgate:bench",
                                   .llm_measurements = true};
    struct lg_azmon_items it = {0};
    size_t cap = 0;
    uint8_t *out = NULL;
    double t0 = cpu_now(), tmap = 0, tgz = 0;
    size_t env = 0, raw = 0, comp = 0;
    long iter = 0;
    if (mode == 2) {
        for (size_t i = 0; i < NREQ; i++) {
            lg_azmon_items_reset(&it, SIZE_MAX);
            if (lg_azmon_map_batch(bs[i], &mo, &it) != 0) {
                fprintf(stderr, "azure_map_bench: out of memory\n");
                return 1;
            }
            for (size_t k = 0; k < it.n; k++)
                printf("%.*s\n", (int)it.v[k].len, it.buf + it.v[k].off);
        }
        secs = 0; /* no timed loop; the summary line below is not printed */
    }
    while (cpu_now() - t0 < secs) {
        struct lg_batch *b = bs[iter++ % NREQ];
        double a = cpu_now();
        lg_azmon_items_reset(&it, SIZE_MAX);
        if (lg_azmon_map_batch(b, &mo, &it) != 0) {
            fprintf(stderr, "azure_map_bench: out of memory\n");
            return 1;
        }
        double c = cpu_now();
        tmap += c - a;
        env += it.n;
        if (mode != 0)
            continue;
        /* the requests as the transport builds them: a run of envelopes with '[' and ']'
         * over its outer separators (exporters/azure_monitor.h) */
        for (size_t off = 0; off < it.n; off += PER_REQUEST) {
            size_t cnt = it.n - off < PER_REQUEST ? it.n - off : PER_REQUEST;
            const struct lg_azmon_item *last = &it.v[off + cnt - 1];
            char *s = it.buf + it.v[off].off - 1, *e = it.buf + last->off + last->len;
            size_t n = (size_t)(e - s) + 1;
            if (cap < lg_gzip_bound(n)) {
                free(out);
                cap = lg_gzip_bound(n);
                out = malloc(cap);
                if (out == NULL)
                    return 1;
            }
            *s = '[';
            *e = ']';
            size_t z = 0;
            if (isal)
                z = isal_gzip(s, n, out, cap);
            else
                z = lg_gzip(level, s, n, out, cap);
            *s = *e = ',';
            if (z == 0) {
                fprintf(stderr, "azure_map_bench: gzip failed\n");
                return 1;
            }
            raw += n;
            comp += z;
        }
        tgz += cpu_now() - c;
    }
    if (mode != 2)
        printf("envelopes=%zu map_us=%.3f gzip_level=%s%d gzip_us=%.3f ratio=%.2f json_bytes=%.0f "
               "envelopes_per_cpu_s=%.0f\n",
               env, tmap * 1e6 / (double)env, isal ? "isal" : "", level, tgz * 1e6 / (double)env,
               comp ? (double)raw / (double)comp : 0, raw ? (double)raw / (double)env : 0,
               (double)env / (tmap + tgz));
    lg_azmon_items_free(&it);
    free(out);
    for (size_t i = 0; i < NREQ; i++)
        lg_batch_unref(bs[i]);
    wl_pool_free(&pool);
    return 0;
}
