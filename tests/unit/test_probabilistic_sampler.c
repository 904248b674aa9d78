/* tests/unit/test_probabilistic_sampler.c — the probabilistic_sampler processor.
 *
 * 1. Arithmetic against values computed here independently: FNV-1a against the published
 *    test vector and a reference loop, the hash_seed rate in float32, the bucket decision
 *    the Collector's legacy code makes (hash & 0x3fff < rate), OTel thresholds from the
 *    probability-sampling spec (1/3 -> aaab, 10% -> e666, 25% -> c), tracestate parsing
 *    and rewriting.
 * 2. The processor on batches: kept fraction within one percentage point over 100k trace
 *    IDs (hash_seed and proportional), whole traces and the same decisions in two
 *    instances, sampling.priority, fail_closed, tracestate thresholds in every mode, logs
 *    by trace ID, by record attribute and with a priority attribute, read-only input
 *    batches, the sampled counters, and config errors naming the YAML path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "llm_test_util.h"
#include "processors/probabilistic_sampler.h"
#include "proc_fixture.h"

extern const struct lg_component_type lg_probabilistic_sampler_processor;

/* ---------------------------------------------------------------- references ---- */

/* FNV-1a 32 written from the definition (offset basis 0x811c9dc5, prime 0x01000193). */
static uint32_t ref_fnv(const uint8_t *p, size_t n)
{
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x01000193u;
    return h;
}

/* The hash over seed (4 bytes, little endian) + data. */
static uint32_t ref_seeded(uint32_t seed, const uint8_t *data, size_t n)
{
    uint8_t buf[128];
    buf[0] = (uint8_t)seed;
    buf[1] = (uint8_t)(seed >> 8);
    buf[2] = (uint8_t)(seed >> 16);
    buf[3] = (uint8_t)(seed >> 24);
    memcpy(buf + 4, data, n);
    return ref_fnv(buf, n + 4);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rand_tid(uint8_t tid[16])
{
    uint64_t a = rng(), b = rng();
    memcpy(tid, &a, 8);
    memcpy(tid + 8, &b, 8);
}

/* ---------------------------------------------------------------- arithmetic ---- */

static void test_fnv(void **state)
{
    (void)state;
    /* published FNV-1a 32 vector: "foobar" -> 0xbf9cf968; the seed supplies "foob" */
    assert_int_equal(lg_ps_fnv1a32(0x626f6f66u, (const uint8_t *)"ar", 2), 0xbf9cf968u);
    assert_int_equal(ref_fnv((const uint8_t *)"foobar", 6), 0xbf9cf968u);
    for (int i = 0; i < 1000; i++) {
        uint8_t tid[16];
        rand_tid(tid);
        uint32_t seed = (uint32_t)rng();
        assert_int_equal(lg_ps_fnv1a32(seed, tid, 16), ref_seeded(seed, tid, 16));
    }
}

static void test_hash_rate_and_decision(void **state)
{
    (void)state;
    /* float32 arithmetic as the Collector: 100% -> 16384, 15.3% -> trunc(2506.75) */
    assert_int_equal(lg_ps_hash_scaled_rate(100.0f), 16384);
    assert_int_equal(lg_ps_hash_scaled_rate(25.0f), 4096);
    assert_int_equal(lg_ps_hash_scaled_rate(50.0f), 8192);
    assert_int_equal(lg_ps_hash_scaled_rate(15.3f), 2506);
    assert_int_equal(lg_ps_hash_scaled_rate(0.01f), 1);
    assert_int_equal(lg_ps_hash_scaled_rate(0.006f), 0);
    assert_int_equal(lg_ps_hash_scaled_rate(0.0f), 0);
    /* the 56-bit randomness decides exactly as the legacy bucket comparison */
    const uint32_t rates[] = {1, 2506, 4096, 8192, 16383, 16384};
    for (int i = 0; i < 20000; i++) {
        uint8_t tid[16];
        rand_tid(tid);
        uint32_t seed = (uint32_t)(i % 3) * 22u;
        uint32_t h = ref_seeded(seed, tid, 16);
        uint64_t r = lg_ps_hash_randomness(seed, tid, 16);
        assert_true(r < LG_PS_MAX_ADJUSTED_COUNT);
        assert_int_equal(r & 0x3fff, h & 0x3fff); /* low 14 bits: the bucket itself */
        for (size_t k = 0; k < LG_ARRAY_LEN(rates); k++) {
            uint64_t th = (uint64_t)(16384 - rates[k]) << 42;
            assert_int_equal(r >= th, (h & 0x3fff) < rates[k]);
        }
    }
}

static void test_thresholds(void **state)
{
    (void)state;
    uint64_t th;
    char buf[LG_PS_HEX_BUF];
    struct {
        double p;
        int prec;
        const char *tv;
    } cases[] = {
        {0.25, 4, "c"},       {0.5, 4, "8"},   {1.0, 4, "0"},
        {1.0 / 3, 4, "aaab"}, {0.1, 4, "e666"}, {0.1, 14, "e6666666666666"},
        {0.1, 1, "e"},        {0.999, 4, "004189"}, /* two leading zeros add two digits */
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        assert_int_equal(lg_ps_prob_to_threshold(cases[i].p, cases[i].prec, &th), 0);
        lg_ps_tvalue(th, buf);
        assert_string_equal(buf, cases[i].tv);
        uint64_t back;
        assert_int_equal(lg_ps_tvalue_parse(buf, strlen(buf), &back), 0);
        assert_true(back == th);
    }
    /* rounding up at low precision can reach 2^56: never */
    assert_int_equal(lg_ps_prob_to_threshold(0.001, 2, &th), 0);
    assert_true(th == LG_PS_MAX_ADJUSTED_COUNT);
    assert_int_equal(lg_ps_prob_to_threshold(0, 4, &th), -1);
    assert_int_equal(lg_ps_prob_to_threshold(1.5, 4, &th), -1);
    assert_int_equal(lg_ps_prob_to_threshold(1e-20, 4, &th), -1);
    assert_int_equal(lg_ps_prob_to_threshold(1.0 - 0x1p-52, 4, &th), -2);
    assert_true(lg_ps_threshold_prob(0xc0000000000000ull) == 0.25);
    assert_int_equal(lg_ps_tvalue_parse("", 0, &th), -1);
    assert_int_equal(lg_ps_tvalue_parse("123456789abcdef", 15, &th), -1);
    assert_int_equal(lg_ps_tvalue_parse("8g", 2, &th), -1);
    assert_int_equal(lg_ps_rvalue_parse("9b8233f7e3a151", 14, &th), 0);
    assert_true(th == 0x9b8233f7e3a151ull);
    assert_int_equal(lg_ps_rvalue_parse("9b8233f7e3a15", 13, &th), -1);
    uint8_t tid[16] = {0};
    tid[8] = 0xff; /* not part of the randomness */
    tid[9] = 0x9b, tid[10] = 0x82, tid[11] = 0x33, tid[12] = 0xf7, tid[13] = 0xe3, tid[14] = 0xa1, tid[15] = 0x51;
    assert_true(lg_ps_trace_id_randomness(tid) == 0x9b8233f7e3a151ull);
}

static void test_tracestate(void **state)
{
    (void)state;
    char out[1200];
    struct lg_ps_otvals ot;
    assert_int_equal(lg_ps_tracestate_parse(NULL, &ot), 0);
    assert_false(ot.has_rv || ot.has_th);
    ot = (struct lg_ps_otvals){.has_th = true, .th = 0xc0000000000000ull};
    assert_true(lg_ps_tracestate_rewrite("", &ot, out, sizeof out) > 0);
    assert_string_equal(out, "ot=th:c");

    const char *in = "congo=t61rcWkgMzE, ot=rv:9B8233F7E3A151;foo:bar ,rojo=00f067aa0ba902b7";
    assert_int_equal(lg_ps_tracestate_parse(in, &ot), 0);
    assert_true(ot.has_rv && !ot.has_th && ot.rv == 0x9b8233f7e3a151ull);
    ot.has_th = true;
    ot.th = 0x80000000000000ull;
    assert_true(lg_ps_tracestate_rewrite(in, &ot, out, sizeof out) > 0);
    /* ot first, th then the arriving rv as written, other sub-keys and vendors kept */
    assert_string_equal(out, "ot=th:8;rv:9B8233F7E3A151;foo:bar,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");

    const char *bad[] = {
        "ot=th:xyz",       "ot=rv:123",        "ot=th:",       "Bad=1",     "ot=th:8;",
        "ot=TH:8",         "a=1,=2",           "a=b=c\x01",    "ot=th:123456789abcdef",
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(bad); i++)
        if (lg_ps_tracestate_parse(bad[i], &ot) == 0)
            fail_msg("accepted invalid tracestate %s", bad[i]);
    /* 33 members is one too many */
    char many[512] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sk%d=v", i ? "," : "", i);
    assert_int_equal(lg_ps_tracestate_parse(many, &ot), -1);
    assert_int_equal(lg_ps_tracestate_parse(strrchr(many, ',') ? many + 5 : many, &ot), 0);
    assert_int_equal(lg_ps_tracestate_parse("a=1,,b=2, ", &ot), 0);
    assert_int_equal(lg_ps_tracestate_parse("tenant@sys=x", &ot), 0);
}

/* ----------------------------------------------------------- processor fixture ---- */

static int make_proc(struct fixture *f, const char *yaml, struct lg_err *err)
{
    return fixture_make(f, &lg_probabilistic_sampler_processor, "probabilistic_sampler", yaml, err);
}

static void proc_ok(struct fixture *f, const char *yaml) { fixture_ok(f, &lg_probabilistic_sampler_processor, "probabilistic_sampler", yaml); }

static void free_proc(struct fixture *f) { fixture_free(f); }

static uint64_t metric(struct fixture *f, const char *name, const char *labels)
{
    char series[512];
    snprintf(series, sizeof series, "%s{processor=\"probabilistic_sampler\",%s}", name, labels);
    return fixture_series(f, series);
}

/* A span description for the batch builder. */
struct sdesc {
    uint8_t tid[16];
    const char *tstate;
    const char *prio_type; /* NULL, "i", "d" or "s" */
    const char *prio;
};

/* One traces batch; span i goes under resource i % nres (one scope each); names
 * "s<base + i>". */
static struct lg_batch *traces_batch_at(const struct sdesc *d, size_t n, size_t nres, size_t base)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_TRACES, 0);
    struct lg_arena *a = b->arena;
    lg_traces_req *req = b->req.traces;
    req->n_resource_spans = nres;
    req->resource_spans = lg_arena_calloc(a, nres, sizeof(void *));
    for (size_t r = 0; r < nres; r++) {
        lg_resource_spans *rs = lg_arena_alloc(a, sizeof *rs);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        lg_scope_spans *ss = lg_arena_alloc(a, sizeof *ss);
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        ss->spans = lg_arena_calloc(a, n + 1, sizeof(void *));
        rs->n_scope_spans = 1;
        rs->scope_spans = lg_arena_alloc(a, sizeof(void *));
        rs->scope_spans[0] = ss;
        req->resource_spans[r] = rs;
    }
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "s%zu", base + i);
        struct tattr at = {"sampling.priority", d[i].prio_type ? d[i].prio_type[0] : 's', d[i].prio};
        lg_span *s = tspan(a, name, &at, d[i].prio_type ? 1 : 0);
        uint8_t *tid = lg_arena_memdup(a, d[i].tid, 16);
        s->trace_id = (ProtobufCBinaryData){16, tid};
        uint8_t *sid = lg_arena_calloc(a, 1, 8);
        sid[0] = (uint8_t)(i + 1);
        s->span_id = (ProtobufCBinaryData){8, sid};
        if (d[i].tstate)
            s->trace_state = lg_arena_strdup(a, d[i].tstate);
        lg_scope_spans *ss = req->resource_spans[i % nres]->scope_spans[0];
        ss->spans[ss->n_spans++] = s;
    }
    b->items = lg_batch_count_items(b);
    return b;
}

static struct lg_batch *traces_batch(const struct sdesc *d, size_t n, size_t nres)
{
    return traces_batch_at(d, n, nres, 0);
}

/* Calls fn on every span the sink received. */
static void each_sink_span(struct fixture *f, void (*fn)(const lg_span *, void *), void *arg)
{
    for (size_t g = 0; g < f->sink.ngot; g++) {
        const lg_traces_req *r = f->sink.got[g]->req.traces;
        for (size_t i = 0; i < r->n_resource_spans; i++) {
            assert_true(r->resource_spans[i]->n_scope_spans > 0); /* empty ones removed */
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
                const lg_scope_spans *ss = r->resource_spans[i]->scope_spans[j];
                assert_true(ss->n_spans > 0);
                for (size_t k = 0; k < ss->n_spans; k++)
                    fn(ss->spans[k], arg);
            }
        }
    }
}

static void find_span_cb(const lg_span *s, void *arg)
{
    const lg_span **want = arg;
    if (strcmp(s->name, want[0]->name) == 0)
        want[1] = s;
}

/* The span named `name` in the sink, or NULL. */
static const lg_span *sink_span(struct fixture *f, const char *name)
{
    lg_span probe;
    probe.name = (char *)name;
    const lg_span *w[2] = {&probe, NULL};
    each_sink_span(f, find_span_cb, w);
    return w[1];
}

/* ---------------------------------------------------------------- processor ---- */

static size_t run_fraction(const char *yaml, size_t total)
{
    struct fixture f;
    proc_ok(&f, yaml);
    struct sdesc d[1000];
    memset(d, 0, sizeof d);
    for (size_t done = 0; done < total; done += 1000) {
        for (size_t i = 0; i < 1000; i++)
            rand_tid(d[i].tid);
        struct lg_batch *b = traces_batch(d, 1000, 1);
        assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
        lg_batch_unref(b);
    }
    size_t kept = f.sink.items;
    /* every decision counted, kept and dropped */
    uint64_t yes = metric(&f, "otelcol_processor_probabilistic_sampler_count_traces_sampled",
                          "policy=\"trace_id_hash\",sampled=\"true\"") +
                   metric(&f, "otelcol_processor_probabilistic_sampler_count_traces_sampled",
                          "policy=\"trace_id_w3c\",sampled=\"true\"");
    uint64_t no = metric(&f, "otelcol_processor_probabilistic_sampler_count_traces_sampled",
                         "policy=\"trace_id_hash\",sampled=\"false\"") +
                  metric(&f, "otelcol_processor_probabilistic_sampler_count_traces_sampled",
                         "policy=\"trace_id_w3c\",sampled=\"false\"");
    assert_int_equal(yes, kept);
    assert_int_equal(yes + no, total);
    free_proc(&f);
    return kept;
}

static void test_fraction(void **state)
{
    (void)state;
    const size_t n = 100000;
    const char *cfgs[] = {
        "probabilistic_sampler: {sampling_percentage: 25}\n",
        "probabilistic_sampler: {sampling_percentage: 25, hash_seed: 22}\n",
        "probabilistic_sampler: {sampling_percentage: 25, mode: proportional}\n",
        "probabilistic_sampler: {sampling_percentage: 10, mode: equalizing}\n",
        "probabilistic_sampler: {sampling_percentage: 60.5}\n",
    };
    const double want[] = {25, 25, 25, 10, 60.5};
    for (size_t i = 0; i < LG_ARRAY_LEN(cfgs); i++) {
        double pct = 100.0 * (double)run_fraction(cfgs[i], n) / (double)n;
        if (pct < want[i] - 1 || pct > want[i] + 1)
            fail_msg("%s kept %.2f%%, want %.1f +- 1", cfgs[i], pct, want[i]);
    }
}

struct trace_keep {
    struct sdesc *d;
    size_t n;
    int *kept; /* per span: seen in the sink */
};

static void mark_cb(const lg_span *s, void *arg)
{
    struct trace_keep *tk = arg;
    size_t i = strtoul(s->name + 1, NULL, 10);
    assert_true(i < tk->n);
    tk->kept[i]++;
}

/* Whole traces, the same decisions in two instances, and exactly the spans the reference
 * hash keeps. */
static void test_whole_traces_two_instances(void **state)
{
    (void)state;
    enum { NT = 300, PER = 5, N = NT * PER };
    static struct sdesc d[N];
    memset(d, 0, sizeof d);
    for (int t = 0; t < NT; t++) {
        uint8_t tid[16];
        rand_tid(tid);
        for (int k = 0; k < PER; k++)
            memcpy(d[k * NT + t].tid, tid, 16); /* a trace's spans spread over the batch */
    }
    static int kept_a[N], kept_b[N];
    int *kept[2] = {kept_a, kept_b};
    for (int inst = 0; inst < 2; inst++) {
        struct fixture f;
        proc_ok(&f, "probabilistic_sampler:\n  sampling_percentage: 30\n  hash_seed: 7\n");
        /* two batches (as from two services) */
        struct lg_batch *b1 = traces_batch(d, N / 2, 3), *b2 = traces_batch_at(d + N / 2, N / 2, 2, N / 2);
        assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b1), LG_OK);
        assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b2), LG_OK);
        lg_batch_unref(b1);
        lg_batch_unref(b2);
        memset(kept[inst], 0, sizeof kept_a);
        struct trace_keep tk = {d, N, kept[inst]};
        each_sink_span(&f, mark_cb, &tk);
        free_proc(&f);
    }
    size_t nkept = 0;
    for (int i = 0; i < N; i++) {
        uint32_t h = ref_seeded(7, d[i].tid, 16);
        int want = (h & 0x3fff) < lg_ps_hash_scaled_rate(30.0f);
        assert_int_equal(kept_a[i], want);
        assert_int_equal(kept_b[i], want);
        nkept += (size_t)want;
        /* every span of the trace got the same decision */
        int t = i % NT;
        assert_int_equal(kept_a[i], kept_a[t]);
    }
    assert_true(nkept > 0 && nkept < N);
}

static void test_priority(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 0}\n");
    struct sdesc d[6];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 6; i++)
        rand_tid(d[i].tid);
    d[0].prio_type = "i", d[0].prio = "1";    /* kept */
    d[1].prio_type = "d", d[1].prio = "0.5";  /* kept */
    d[2].prio_type = "s", d[2].prio = "2";    /* kept */
    d[3].prio_type = "i", d[3].prio = "-1";   /* defers: dropped at 0% */
    d[4].prio_type = "s", d[4].prio = "high"; /* not a number: dropped */
    struct lg_batch *b = traces_batch(d, 6, 1);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    assert_int_equal(f.sink.items, 3);
    assert_non_null(sink_span(&f, "s0"));
    assert_non_null(sink_span(&f, "s2"));
    assert_null(sink_span(&f, "s3"));
    /* forced keeps are recorded as 100% */
    assert_string_equal(sink_span(&f, "s0")->trace_state, "ot=th:0");
    assert_int_equal(metric(&f, "otelcol_processor_probabilistic_sampler_count_traces_sampled",
                            "policy=\"sampling_priority\",sampled=\"true\""), 3);
    free_proc(&f);

    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 100}\n");
    memset(d, 0, sizeof d);
    for (int i = 0; i < 3; i++)
        rand_tid(d[i].tid);
    d[0].prio_type = "i", d[0].prio = "0";
    d[1].prio_type = "d", d[1].prio = "0";
    b = traces_batch(d, 3, 1);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    assert_int_equal(f.sink.items, 1);
    assert_non_null(sink_span(&f, "s2"));
    free_proc(&f);
}

static void test_fail_closed(void **state)
{
    (void)state;
    struct sdesc d[3];
    memset(d, 0, sizeof d);        /* d[0]: zero trace ID */
    rand_tid(d[1].tid);
    d[1].tstate = "ot=th:zz";      /* invalid */
    rand_tid(d[2].tid);
    d[2].tstate = "ot=rv:00000000000001;th:8"; /* rv below the 50% threshold: inconsistent */
    const char *modes[] = {"hash_seed", "proportional"};
    for (size_t m = 0; m < 2; m++) {
        char yaml[256];
        struct fixture f;
        snprintf(yaml, sizeof yaml, "probabilistic_sampler: {sampling_percentage: 100, mode: %s}\n", modes[m]);
        proc_ok(&f, yaml);
        struct lg_batch *b = traces_batch(d, 3, 1);
        assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
        lg_batch_unref(b);
        assert_int_equal(f.sink.items, 0); /* all dropped (and the batch not forwarded) */
        assert_int_equal(f.sink.ngot, 0);
        free_proc(&f);

        snprintf(yaml, sizeof yaml,
                 "probabilistic_sampler: {sampling_percentage: 100, mode: %s, fail_closed: false}\n", modes[m]);
        proc_ok(&f, yaml);
        b = traces_batch(d, 3, 1);
        assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
        lg_batch_unref(b);
        assert_int_equal(f.sink.items, 3);
        assert_string_equal(sink_span(&f, "s1")->trace_state, "ot=th:zz"); /* left alone */
        if (m == 1) /* the inconsistent threshold is cleared, then 100% recorded */
            assert_string_equal(sink_span(&f, "s2")->trace_state, "ot=th:0;rv:00000000000001");
        else /* hash_seed leaves another scheme's values alone */
            assert_string_equal(sink_span(&f, "s2")->trace_state, "ot=rv:00000000000001;th:8");
        free_proc(&f);
    }
}

static void test_tracestate_written(void **state)
{
    (void)state;
    /* trace IDs with chosen W3C randomness (last 7 bytes) */
    struct sdesc d[5];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 5; i++)
        d[i].tid[0] = 1;
    d[0].tid[9] = 0xf0;                       /* R = 0xf0..: kept at 25% */
    d[1].tid[9] = 0x10;                       /* R = 0x10..: dropped at 25% */
    d[2].tid[9] = 0xd0, d[2].tstate = "ot=th:8,vendor=x"; /* arrived at 50% */
    d[3].tid[9] = 0xf8, d[3].tstate = "ot=th:f";          /* arrived at 1/16 */
    d[4].tid[9] = 0xe0, d[4].tstate = "ot=rv:fc000000000000"; /* explicit randomness wins */

    struct fixture f;
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 25, mode: proportional}\n");
    struct lg_batch *b = traces_batch(d, 5, 1);
    char *before = span_names(b);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    /* the input batch is read-only: same spans, same tracestates */
    char *after = span_names(b);
    assert_string_equal(before, after);
    assert_string_equal(b->req.traces->resource_spans[0]->scope_spans[0]->spans[2]->trace_state,
                        "ot=th:8,vendor=x");
    assert_string_equal(sink_span(&f, "s0")->trace_state, "ot=th:c");
    assert_null(sink_span(&f, "s1"));
    /* 50% * 25% = 12.5% -> th:e; R=0xd0.. < 0xe0..: dropped */
    assert_null(sink_span(&f, "s2"));
    /* 1/16 * 25% = 1/64 -> th:fc; R=0xf8.. < 0xfc..: dropped */
    assert_null(sink_span(&f, "s3"));
    assert_string_equal(sink_span(&f, "s4")->trace_state, "ot=th:c;rv:fc000000000000");
    lg_batch_unref(b);
    free(before);
    free(after);
    free_proc(&f);

    d[2].tid[9] = 0xe8; /* now above 12.5% */
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 25, mode: proportional}\n");
    b = traces_batch(d, 5, 1);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    assert_string_equal(sink_span(&f, "s2")->trace_state, "ot=th:e,vendor=x");
    free_proc(&f);

    /* equalizing: a larger arriving threshold (1/16) stays, a smaller one is raised */
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 25, mode: equalizing}\n");
    b = traces_batch(d, 5, 1);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    assert_string_equal(sink_span(&f, "s2")->trace_state, "ot=th:c,vendor=x");
    assert_string_equal(sink_span(&f, "s3")->trace_state, "ot=th:f");
    free_proc(&f);

    /* hash_seed: th of the configured rate and rv from the hash */
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 100}\n");
    b = traces_batch(d, 2, 1);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    char want[64];
    uint32_t h = ref_seeded(0, d[0].tid, 16);
    uint64_t top = 16383 - (h & 0x3fff), u = h >> 14, mixed = u ^ (u << 10);
    snprintf(want, sizeof want, "ot=th:0;rv:%014llx",
             (unsigned long long)((top << 42) | (mixed << 14) | (h & 0x3fff)));
    assert_string_equal(sink_span(&f, "s0")->trace_state, want);
    free_proc(&f);
}

/* ---------------------------------------------------------------- logs ---- */

struct ldesc {
    uint8_t tid[16];
    const char *id_attr; /* "logID" string value */
    const char *prio;    /* "priority" int value */
    const char *th_attr; /* sampling.threshold */
};

static struct lg_batch *logs_batch(const struct ldesc *d, size_t n)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_LOGS, 0);
    struct lg_arena *a = b->arena;
    lg_logs_req *req = b->req.logs;
    lg_resource_logs *rl = lg_arena_alloc(a, sizeof *rl);
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    lg_scope_logs *sl = lg_arena_alloc(a, sizeof *sl);
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    sl->log_records = lg_arena_calloc(a, n + 1, sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        struct tattr at[4];
        size_t na = 0;
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        at[na++] = (struct tattr){"idx", 'i', idx};
        if (d[i].id_attr)
            at[na++] = (struct tattr){"logID", 's', d[i].id_attr};
        if (d[i].prio)
            at[na++] = (struct tattr){"priority", 'i', d[i].prio};
        if (d[i].th_attr)
            at[na++] = (struct tattr){"sampling.threshold", 's', d[i].th_attr};
        /* borrow the span builder for the attribute array */
        lg_span *tmp = tspan(a, "x", at, na);
        lg_log_record *l = lg_arena_alloc(a, sizeof *l);
        opentelemetry__proto__logs__v1__log_record__init(l);
        l->attributes = tmp->attributes;
        l->n_attributes = tmp->n_attributes;
        l->trace_id = (ProtobufCBinaryData){16, lg_arena_memdup(a, d[i].tid, 16)};
        sl->log_records[sl->n_log_records++] = l;
    }
    rl->n_scope_logs = 1;
    rl->scope_logs = lg_arena_alloc(a, sizeof(void *));
    rl->scope_logs[0] = sl;
    req->n_resource_logs = 1;
    req->resource_logs = lg_arena_alloc(a, sizeof(void *));
    req->resource_logs[0] = rl;
    b->items = lg_batch_count_items(b);
    return b;
}

/* Which records (by idx attribute) reached the sink; returns their count. */
static size_t sink_logs(struct fixture *f, int *kept, size_t n, const lg_log_record **recs)
{
    size_t c = 0;
    memset(kept, 0, n * sizeof *kept);
    for (size_t g = 0; g < f->sink.ngot; g++) {
        const lg_logs_req *r = f->sink.got[g]->req.logs;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
                const lg_scope_logs *sl = r->resource_logs[i]->scope_logs[j];
                for (size_t k = 0; k < sl->n_log_records; k++) {
                    int64_t idx = -1;
                    const lg_log_record *l = sl->log_records[k];
                    assert_true(lg_any_int(lg_attr_find(l->attributes, l->n_attributes, "idx"), &idx));
                    assert_true(idx >= 0 && (size_t)idx < n);
                    kept[idx]++;
                    if (recs)
                        recs[idx] = l;
                    c++;
                }
            }
    }
    return c;
}

static const char *log_attr(const lg_log_record *l, const char *key)
{
    return lg_any_str(lg_attr_find(l->attributes, l->n_attributes, key));
}

static void test_logs(void **state)
{
    (void)state;
    enum { N = 2000 };
    static struct ldesc d[N];
    static char ids[N][24];
    static int kept[N];
    static const lg_log_record *recs[N];
    memset(d, 0, sizeof d);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            rand_tid(d[i].tid); /* half without a trace ID */
        snprintf(ids[i], sizeof ids[i], "log-%08llx", (unsigned long long)(rng() & 0xffffffff));
        d[i].id_attr = ids[i];
    }
    uint32_t rate = lg_ps_hash_scaled_rate(40.0f);

    /* by trace ID, falling back to logID when there is none */
    struct fixture f;
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 40, hash_seed: 3, from_attribute: logID}\n");
    struct lg_batch *b = logs_batch(d, N);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    size_t nk = sink_logs(&f, kept, N, recs);
    assert_true(nk > N / 4 && nk < N / 2);
    for (int i = 0; i < N; i++) {
        uint32_t h = i % 2 ? ref_seeded(3, d[i].tid, 16)
                           : ref_seeded(3, (const uint8_t *)ids[i], strlen(ids[i]));
        assert_int_equal(kept[i], (h & 0x3fff) < rate);
        if (kept[i]) {
            assert_string_equal(log_attr(recs[i], "sampling.threshold"), "999c");
            const char *rv = log_attr(recs[i], "sampling.randomness");
            assert_non_null(rv);
            assert_int_equal(strlen(rv), 14);
        }
    }
    assert_true(metric(&f, "otelcol_processor_probabilistic_sampler_count_logs_sampled",
                       "policy=\"logID\",sampled=\"false\"") > 0);
    free_proc(&f);

    /* attribute_source: record ignores the trace ID */
    proc_ok(&f, "probabilistic_sampler:\n  sampling_percentage: 40\n  attribute_source: record\n"
                "  from_attribute: logID\n");
    b = logs_batch(d, N);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    sink_logs(&f, kept, N, NULL);
    for (int i = 0; i < N; i++) {
        uint32_t h = ref_seeded(0, (const uint8_t *)ids[i], strlen(ids[i]));
        assert_int_equal(kept[i], (h & 0x3fff) < rate);
    }
    free_proc(&f);

    /* proportional by trace ID; records without one are dropped (fail_closed) */
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 50, mode: proportional}\n");
    b = logs_batch(d, N);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    sink_logs(&f, kept, N, recs);
    for (int i = 0; i < N; i++) {
        int want = (i % 2) && lg_ps_trace_id_randomness(d[i].tid) >= 0x80000000000000ull;
        assert_int_equal(kept[i], want);
        if (want) {
            assert_string_equal(log_attr(recs[i], "sampling.threshold"), "8");
            assert_null(log_attr(recs[i], "sampling.randomness"));
        }
    }
    free_proc(&f);
}

static void test_logs_priority(void **state)
{
    (void)state;
    struct ldesc d[4];
    memset(d, 0, sizeof d);
    for (int i = 0; i < 4; i++) {
        rand_tid(d[i].tid);
        d[i].tid[9] = 0x20; /* W3C randomness 0x20..: below 50% */
    }
    d[0].prio = "100"; /* always */
    d[1].prio = "0";   /* never, even at 100% */
    d[2].prio = "90";  /* threshold 0x1999..: 0x20.. passes */
    struct fixture f;
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 50, mode: proportional, sampling_priority: priority}\n");
    struct lg_batch *b = logs_batch(d, 4);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    lg_batch_unref(b);
    int kept[4];
    const lg_log_record *recs[4] = {0};
    sink_logs(&f, kept, 4, recs);
    assert_int_equal(kept[0], 1);
    assert_int_equal(kept[1], 0);
    assert_int_equal(kept[2], 1);
    assert_int_equal(kept[3], 0); /* no priority: 50% decides, 0x20.. < 0x80.. */
    assert_string_equal(log_attr(recs[0], "sampling.threshold"), "0");
    assert_string_equal(log_attr(recs[2], "sampling.threshold"), "199a");
    assert_int_equal(metric(&f, "otelcol_processor_probabilistic_sampler_count_logs_sampled",
                            "policy=\"sampling_priority\",sampled=\"true\""), 2);
    free_proc(&f);

    /* an arriving inconsistent sampling.threshold is removed when kept (fail open) */
    memset(d, 0, sizeof d);
    rand_tid(d[0].tid);
    d[0].tid[9] = 0x10;
    d[0].th_attr = "8";
    proc_ok(&f, "probabilistic_sampler: {sampling_percentage: 100, mode: equalizing, fail_closed: false}\n");
    b = logs_batch(d, 1);
    assert_int_equal(lg_probabilistic_sampler_processor.consume(&f.proc, b), LG_OK);
    /* input unchanged */
    const lg_log_record *orig = b->req.logs->resource_logs[0]->scope_logs[0]->log_records[0];
    assert_string_equal(log_attr(orig, "sampling.threshold"), "8");
    lg_batch_unref(b);
    sink_logs(&f, kept, 1, recs);
    assert_int_equal(kept[0], 1);
    assert_string_equal(log_attr(recs[0], "sampling.threshold"), "0");
    size_t nth = 0;
    for (size_t i = 0; i < recs[0]->n_attributes; i++)
        nth += strcmp(recs[0]->attributes[i]->key, "sampling.threshold") == 0;
    assert_int_equal(nth, 1);
    free_proc(&f);
}

/* ---------------------------------------------------------------- config ---- */

static void test_config_errors(void **state)
{
    (void)state;
    struct {
        const char *yaml;
        const char *want; /* in the message */
    } cases[] = {
        {"probabilistic_sampler:\n  mode: fast\n", "probabilistic_sampler.mode: unsupported sampler mode \"fast\""},
        {"probabilistic_sampler:\n  sampling_percentage: -1\n", "probabilistic_sampler.sampling_percentage: sampling rate is negative"},
        {"probabilistic_sampler:\n  sampling_percentage: .nan\n", "probabilistic_sampler.sampling_percentage"},
        {"probabilistic_sampler:\n  sampling_percentage: 1e-20\n", "probabilistic_sampler.sampling_percentage: sampling rate is too small"},
        {"probabilistic_sampler:\n  sampling_percentage: 1e39\n", "probabilistic_sampler.sampling_percentage: sampling rate is invalid"},
        {"probabilistic_sampler:\n  sampling_precision: 15\n", "probabilistic_sampler.sampling_precision"},
        {"probabilistic_sampler:\n  sampling_precision: 0\n", "probabilistic_sampler.sampling_precision"},
        {"probabilistic_sampler:\n  attribute_source: span\n", "probabilistic_sampler.attribute_source: invalid attribute source"},
        {"probabilistic_sampler:\n  attribute_source: record\n", "probabilistic_sampler.attribute_source: attribute_source: record needs from_attribute"},
        {"probabilistic_sampler:\n  mode: proportional\n  attribute_source: record\n  from_attribute: id\n",
         "probabilistic_sampler.attribute_source: attribute_source: record works only in mode hash_seed"},
        {"probabilistic_sampler:\n  mode: equalizing\n  hash_seed: 5\n", "probabilistic_sampler.hash_seed: hash_seed works only"},
        {"probabilistic_sampler:\n  hash_seed: -1\n", "probabilistic_sampler.hash_seed"},
        {"probabilistic_sampler:\n  sampling_percentge: 5\n", "sampling_percentge"},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        struct fixture f;
        struct lg_err err = {{0}};
        int rc = make_proc(&f, cases[i].yaml, &err);
        if (rc == LG_OK)
            fail_msg("accepted: %s", cases[i].yaml);
        if (strstr(err.msg, cases[i].want) == NULL)
            fail_msg("for %s got \"%s\", want \"%s\"", cases[i].yaml, err.msg, cases[i].want);
        if (strstr(err.msg, "test.yaml:") != err.msg)
            fail_msg("no file position: %s", err.msg);
        free_proc(&f);
    }
    /* the Collector's accepted forms */
    const char *ok[] = {
        "probabilistic_sampler:\n",
        "probabilistic_sampler: {sampling_percentage: 150}\n",
        "probabilistic_sampler: {sampling_percentage: 0.001, mode: proportional, sampling_precision: 14}\n",
        "probabilistic_sampler: {mode: \"\", hash_seed: 4294967295, fail_closed: false}\n",
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(ok); i++) {
        struct fixture f;
        proc_ok(&f, ok[i]);
        free_proc(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv),
        cmocka_unit_test(test_hash_rate_and_decision),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_fraction),
        cmocka_unit_test(test_whole_traces_two_instances),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_fail_closed),
        cmocka_unit_test(test_tracestate_written),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_logs_priority),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
