/* bench/tail_bench.c — load tests of the tail_sampling processor, in process (no network),
 * on the bench workload (bench/workload.h). Two modes:
 *
 *   --mode memory      feeds --traces N distinct traces (default 200,000; ~10 spans each)
 *                      into tail_sampling with decision_wait 1h and reports how many are
 *                      held, the bytes it accounts (bound: --max-memory-mib), early
 *                      decisions, and the process's RSS growth per buffered span against
 *                      the span's encoded (protobuf) size.
 *   --mode throughput  decodes requests as a receiver does (lg_batch_decode_indexed), gives every
 *                      pass over the request pool fresh trace IDs, and runs them through
 *                      llm_cost -> tail_sampling -> batch -> a counting sink for --seconds;
 *                      then the same without tail_sampling. Reports spans per process
 *                      CPU-second (all threads, decision thread included, after the last
 *                      decision and flush) for both.
 *
 * Prints human lines and `RESULT mode=...` lines for scripts. Owns its components, pool
 * and batches; talks to nothing. */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/component.h"
#include "core/conf.h"
#include "core/runtime.h"
#include "processors/tail_sampling.h"
#include "workload.h"

extern const struct lg_component_type lg_tail_sampling_processor;
extern const struct lg_component_type lg_llm_cost_processor;
extern const struct lg_component_type lg_batch_processor;

/* ---- a counting sink ---- */

static _Atomic size_t sink_spans;

static int count_consume(struct lg_component *c, struct lg_batch *b)
{
    (void)c;
    atomic_fetch_add(&sink_spans, b->items);
    return LG_OK;
}

static const struct lg_component_type count_type = {
    .type = "count",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES,
    .consume = count_consume,
};

/* ---- components from YAML ---- */

struct comp {
    struct lg_component c;
    struct lg_component *to[1];
};

static int make(struct comp *k, const struct lg_component_type *type, const char *id,
                const struct lg_node *node, struct lg_runtime *rt, struct lg_component *next,
                struct lg_err *err)
{
    memset(k, 0, sizeof *k);
    k->c.type = type;
    k->c.id = id;
    k->c.rt = rt;
    k->c.conf_node = node;
    k->c.arena = lg_arena_create(0);
    k->c.conf = lg_arena_calloc(k->c.arena, 1, type->conf_size ? type->conf_size : 1);
    k->to[0] = next;
    k->c.next[LG_SIGNAL_TRACES] = (struct lg_fanout){.to = k->to, .n = 1, .owner = &k->c};
    int rc = lg_conf_apply(type->fields, node, node, k->c.conf, k->c.arena, err);
    if (rc == 0 && type->create)
        rc = type->create(&k->c, err);
    if (rc == 0 && type->start)
        rc = type->start(&k->c, err);
    return rc;
}

static void unmake(struct comp *k)
{
    if (k->c.type->shutdown)
        k->c.type->shutdown(&k->c, lg_now_mono_ns() + 30LL * 1000000000LL);
    if (k->c.type->destroy)
        k->c.type->destroy(&k->c);
    lg_arena_destroy(k->c.arena);
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rss_mib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (double)rss * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

/* Where the trace IDs sit in one packed pool request (rewritten before each decode, as
 * loadgen --unique-trace-ids does, so that the receiver's raw-span index sees them). */
struct tid_offsets {
    uint32_t *off;
    size_t n;
};

/* Finds them through the raw-span index: trace_id (field 1, 16 bytes) is the first field
 * protobuf-c writes, so each span's bytes start with 0x0a 0x10. */
static int tid_offsets_build(const struct wl_pool *pool, struct tid_offsets *out)
{
    lg_batch_raw_index_want(true);
    for (size_t i = 0; i < pool->n; i++) {
        struct lg_batch *b = NULL;
        struct lg_err err;
        if (lg_batch_decode_indexed(LG_SIGNAL_TRACES, pool->reqs[i].data, pool->reqs[i].len, &b,
                                    &err) != 0 ||
            b->n_raw_spans != b->items || (out[i].off = malloc(b->items * sizeof(uint32_t))) == NULL)
            exit(1);
        for (size_t k = 0; k < b->n_raw_spans; k++) {
            const uint8_t *p = b->raw + b->raw_spans[k].off;
            if (b->raw_spans[k].len < 18 || p[0] != 0x0a || p[1] != 16)
                exit(1);
            out[i].off[out[i].n++] = b->raw_spans[k].off + 2;
        }
        lg_batch_unref(b);
    }
    lg_batch_raw_index_want(false);
    return 0;
}

/* Copies request bytes to dst with every trace ID changed by `pass` (the same change for
 * every span of a trace, so traces stay whole). */
static void retag(uint8_t *dst, const struct wl_request *r, const struct tid_offsets *t,
                  uint64_t pass)
{
    memcpy(dst, r->data, r->len);
    for (size_t i = 0; i < t->n; i++)
        for (int k = 0; k < 8; k++)
            dst[t->off[i] + 8 + k] ^= (uint8_t)(pass >> (8 * k));
}

static size_t encoded_span_bytes(const struct lg_batch *b)
{
    size_t n = 0;
    const lg_traces_req *req = b->req.traces;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
            const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++)
                n += protobuf_c_message_get_packed_size(&ss->spans[i]->base);
        }
    return n;
}

static size_t new_traces(struct lg_runtime *rt)
{
    size_t len;
    char *m = lg_telemetry_render(rt->telemetry, &len);
    const char *k =
        "otelcol_processor_tail_sampling_new_trace_id_received{processor=\"tail_sampling\"} ";
    char *p = m ? strstr(m, k) : NULL;
    size_t n = p ? strtoul(p + strlen(k), NULL, 10) : 0;
    free(m);
    return n;
}

static const char *POLICIES =
    "    policies:\n"
    "      - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n"
    "      - {name: llm-errors, type: llm_error}\n"
    "      - {name: expensive, type: llm_cost, llm_cost: {threshold_usd: 0.05}}\n"
    "      - {name: long, type: llm_tokens, llm_tokens: {threshold: 8000}}\n"
    "      - {name: truncated, type: llm_finish_reason, llm_finish_reason: {values: [length, "
    "content_filter]}}\n"
    "      - {name: ten-percent, type: probabilistic, probabilistic: {sampling_percentage: 10}}\n";

static int mode_memory(size_t ntraces, long max_mib)
{
    mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    char yaml[4096];
    snprintf(
        yaml, sizeof yaml,
        "tail_sampling:\n    decision_wait: 1h\n    num_traces: %zu\n    max_memory_mib: %ld\n%s",
        ntraces + ntraces / 2, max_mib, POLICIES);
    struct lg_conf_doc doc = {0};
    struct lg_err err = {{0}};
    struct lg_conf_source src = {.text = yaml, .name = "tail_bench"};
    struct lg_runtime rt;
    memset(&rt, 0, sizeof rt);
    rt.telemetry = lg_telemetry_create();
    struct comp sink, ts;
    memset(&sink, 0, sizeof sink);
    sink.c.type = &count_type;
    sink.c.id = "count";
    if (lg_conf_load(&src, 1, NULL, NULL, &doc, &err) ||
        make(&ts, &lg_tail_sampling_processor, "tail_sampling",
             lg_node_get(doc.root, "tail_sampling"), &rt, &sink.c, &err)) {
        fprintf(stderr, "tail_bench: %s\n", err.msg);
        return 1;
    }
    /* requests are built, packed and decoded one at a time (as a receiver gets them) */
    double rss0 = rss_mib();
    size_t spans = 0, enc = 0, req_i = 0;
    int64_t base = lg_now_wall_ns();
    /* until ntraces distinct traces went in (all held when the bounds allow) */
    while (new_traces(&rt) < ntraces) {
        struct wl_builder wb = {.arena = lg_arena_create(0), .rng = {12345u * 1000003u + req_i}};
        lg_traces_req *req = wl_build_request(&wb, WL_DEFAULT_SPANS_PER_REQUEST, req_i,
                                              base + (int64_t)req_i * 1000 * WL_NS_PER_MS);
        size_t len = protobuf_c_message_get_packed_size(&req->base);
        uint8_t *buf = malloc(len);
        protobuf_c_message_pack(&req->base, buf);
        lg_arena_destroy(wb.arena);
        struct lg_batch *b = NULL;
        if (lg_batch_decode_indexed(LG_SIGNAL_TRACES, buf, len, &b, &err) != 0) {
            fprintf(stderr, "tail_bench: %s\n", err.msg);
            return 1;
        }
        free(buf);
        enc += encoded_span_bytes(b);
        spans += b->items;
        if (ts.c.type->consume(&ts.c, b) != LG_OK) {
            fprintf(stderr, "tail_bench: consume refused\n");
            return 1;
        }
        lg_batch_unref(b);
        req_i++;
    }
    double rss1 = rss_mib();
    size_t held = lg_tail_sampling_pending(&ts.c, NULL);
    size_t len;
    char *metrics = lg_telemetry_render(rt.telemetry, &len);
    double bytes = 0, early = 0;
    for (char *l = metrics; l && *l;) {
        char *e = strchr(l, '\n');
        if (e)
            *e = '\0';
        if (strncmp(l, "llmgate_processor_tail_sampling_bytes_on_memory{", 48) == 0)
            bytes = strtod(strrchr(l, ' ') + 1, NULL);
        if (strncmp(l, "llmgate_processor_tail_sampling_early_decisions{", 48) == 0)
            early += strtod(strrchr(l, ' ') + 1, NULL);
        l = e ? e + 1 : NULL;
    }
    free(metrics);
    double growth = (rss1 - rss0) * 1024 * 1024;
    printf("memory: %zu requests, %zu spans, %zu traces held (%0.f decided early), %.1f MiB "
           "accounted (bound %ld MiB)\n",
           req_i, spans, held, early, bytes / 1048576.0, max_mib);
    printf("memory: encoded span %.0f B, RSS growth %.1f MiB = %.0f B per buffered span (%.2fx the "
           "encoded size)\n",
           (double)enc / (double)spans, rss1 - rss0, growth / (double)spans, growth / (double)enc);
    printf("RESULT mode=memory traces=%zu spans=%zu held=%zu early=%.0f accounted_mib=%.1f "
           "max_memory_mib=%ld "
           "encoded_per_span=%.0f rss_growth_mib=%.1f rss_per_span=%.0f ratio=%.2f\n",
           ntraces, spans, held, early, bytes / 1048576.0, max_mib, (double)enc / (double)spans,
           rss1 - rss0, growth / (double)spans, growth / (double)enc);
    /* on_shutdown decide: the held traces are decided and forwarded to the counting sink */
    unmake(&ts);
    lg_conf_doc_free(&doc);
    lg_telemetry_destroy(rt.telemetry);
    return 0;
}

static double run_pipeline(bool with_tail, double seconds, size_t *out_spans)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "llm_cost: {}\nbatch: {}\ntail_sampling:\n    decision_wait: 1s\n    num_traces: "
             "200000\n%s",
             POLICIES);
    struct lg_conf_doc doc = {0};
    struct lg_err err = {{0}};
    struct lg_conf_source src = {.text = yaml, .name = "tail_bench"};
    struct lg_runtime rt;
    memset(&rt, 0, sizeof rt);
    rt.telemetry = lg_telemetry_create();
    struct comp sink, batch, ts, cost;
    memset(&sink, 0, sizeof sink);
    sink.c.type = &count_type;
    sink.c.id = "count";
    atomic_store(&sink_spans, 0);
    if (lg_conf_load(&src, 1, NULL, NULL, &doc, &err) ||
        make(&batch, &lg_batch_processor, "batch", NULL, &rt, &sink.c, &err) ||
        (with_tail && make(&ts, &lg_tail_sampling_processor, "tail_sampling",
                           lg_node_get(doc.root, "tail_sampling"), &rt, &batch.c, &err)) ||
        make(&cost, &lg_llm_cost_processor, "llm_cost", NULL, &rt, with_tail ? &ts.c : &batch.c,
             &err)) {
        fprintf(stderr, "tail_bench: %s\n", err.msg);
        exit(1);
    }
    struct wl_pool pool;
    struct wl_opts wo = {.seed = 7};
    if (wl_pool_build(&pool, WL_DEFAULT_POOL_SIZE, &wo, &err) != 0) {
        fprintf(stderr, "tail_bench: %s\n", err.msg);
        exit(1);
    }
    struct tid_offsets toff[WL_DEFAULT_POOL_SIZE] = {{0}};
    tid_offsets_build(&pool, toff);
    size_t maxlen = 0;
    for (size_t i = 0; i < pool.n; i++)
        maxlen = pool.reqs[i].len > maxlen ? pool.reqs[i].len : maxlen;
    uint8_t *wire = malloc(maxlen);
    if (wire == NULL)
        exit(1);
    double c0 = cpu_seconds();
    int64_t end = lg_now_mono_ns() + (int64_t)(seconds * 1e9);
    size_t spans = 0;
    uint64_t pass = 0;
    for (size_t i = 0; lg_now_mono_ns() < end; i++) {
        if (i % pool.n == 0)
            pass++;
        struct lg_batch *b = NULL;
        const struct wl_request *r = &pool.reqs[i % pool.n];
        retag(wire, r, &toff[i % pool.n], pass);
        /* as the receivers decode (with the raw-span index while tail_sampling exists) */
        if (lg_batch_decode_indexed(LG_SIGNAL_TRACES, wire, r->len, &b, &err) != 0)
            exit(1);
        spans += b->items;
        cost.c.type->consume(&cost.c, b);
        lg_batch_unref(b);
    }
    /* every decision made and flushed before reading the CPU time */
    unmake(&cost);
    if (with_tail)
        unmake(&ts);
    unmake(&batch);
    double cpu = cpu_seconds() - c0;
    free(wire);
    for (size_t i = 0; i < pool.n; i++)
        free(toff[i].off);
    wl_pool_free(&pool);
    lg_conf_doc_free(&doc);
    lg_telemetry_destroy(rt.telemetry);
    *out_spans = spans;
    printf("throughput: %s: %zu spans in %.2f CPU-s: %.0f spans per CPU-second; %zu spans reached "
           "the sink\n",
           with_tail ? "llm_cost -> tail_sampling -> batch" : "llm_cost -> batch", spans, cpu,
           (double)spans / cpu, atomic_load(&sink_spans));
    return (double)spans / cpu;
}

int main(int argc, char **argv)
{
    const char *mode = "memory";
    size_t traces = 200000;
    long max_mib = 2048;
    double seconds = 10;
    static const struct option opts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"traces", required_argument, NULL, 't'},
        {"max-memory-mib", required_argument, NULL, 'x'},
        {"seconds", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "m:t:x:s:", opts, NULL)) != -1) {
        switch (o) {
        case 'm': mode = optarg; break;
        case 't': traces = strtoul(optarg, NULL, 10); break;
        case 'x': max_mib = strtol(optarg, NULL, 10); break;
        case 's': seconds = strtod(optarg, NULL); break;
        default:
            fprintf(stderr, "usage: tail_bench [--mode memory|throughput] [--traces N] "
                            "[--max-memory-mib M] [--seconds S]\n");
            return 2;
        }
    }
    if (strcmp(mode, "memory") == 0)
        return mode_memory(traces, max_mib);
    if (strcmp(mode, "throughput") == 0) {
        mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
        mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
        size_t s1, s2;
        double with = run_pipeline(true, seconds, &s1);
        /* TAIL_BENCH_ONLY_TAIL=1: skip the baseline (for profiling) */
        double without = getenv("TAIL_BENCH_ONLY_TAIL") ? 1 : run_pipeline(false, seconds, &s2);
        printf("RESULT mode=throughput with_tail=%.0f without_tail=%.0f ratio=%.2f\n", with,
               without, with / without);
        return 0;
    }
    fprintf(stderr, "tail_bench: --mode must be memory or throughput\n");
    return 2;
}
