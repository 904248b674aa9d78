/* tests/unit/test_llm_metrics.c — the llm_metrics connector: which spans count, the exact
 * sums, histogram buckets and attributes of every metric it emits (seed metrics and OTel
 * GenAI metrics), cumulative totals across flushes, the cardinality cap with its overflow
 * series, the flush timer and the final flush at shutdown, config errors, and the whole
 * path into the prometheus exporter's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "sink.h"

extern const struct lg_component_type lg_llm_metrics_connector;
extern const struct lg_component_type lg_prometheus_exporter;
int lg_llm_metrics_flush(struct lg_component *c);
char *lg_prometheus_render(struct lg_component *c, size_t *len);

/* ---- fixture: the connector with a recording sink as its metrics pipeline ---- */

struct fixture {
    struct lg_conf_doc doc;
    struct lg_component c;
    struct lg_component sink_c;
    struct test_sink sink;
    struct lg_component *to[1];
    struct lg_arena *arena;
    struct lg_runtime rt;
    bool created, started;
};

static int make_connector(struct fixture *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    f->rt.telemetry = lg_telemetry_create();
    struct lg_conf_source src = {.text = yaml, .name = "lm.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->arena = lg_arena_create(0);
    f->c.type = &lg_llm_metrics_connector;
    f->c.id = "llm_metrics";
    f->c.rt = &f->rt;
    f->c.conf_node = lg_node_get(f->doc.root, "llm_metrics");
    f->c.conf = lg_arena_calloc(f->arena, 1, lg_llm_metrics_connector.conf_size);
    rc = lg_conf_apply(lg_llm_metrics_connector.fields, f->c.conf_node, f->doc.root, f->c.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_llm_metrics_connector.create(&f->c, err);
    if (rc != LG_OK)
        return rc;
    f->created = true;
    test_sink_init(&f->sink, &f->sink_c);
    f->to[0] = &f->sink_c;
    f->c.next[LG_SIGNAL_METRICS] = (struct lg_fanout){.to = f->to, .n = 1, .owner = &f->c};
    rc = lg_llm_metrics_connector.start(&f->c, err);
    f->started = rc == LG_OK;
    return rc;
}

static void free_connector(struct fixture *f)
{
    if (f->started)
        lg_llm_metrics_connector.shutdown(&f->c, lg_now_mono_ns() + 2000000000LL);
    if (f->created) {
        lg_llm_metrics_connector.destroy(&f->c);
        test_sink_free(&f->sink);
    }
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

static uint64_t counter(struct fixture *f, const char *name)
{
    return lg_counter_value(lg_telemetry_counter(f->rt.telemetry, name, "", "connector=\"llm_metrics\""));
}

/* ---- building spans ---- */

struct tb {
    struct lg_batch *b;
    lg_scope_spans *ss;
};

static lg_kv *new_kv(struct lg_arena *a, const char *k)
{
    lg_kv *x = lg_arena_alloc(a, sizeof *x);
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    opentelemetry__proto__common__v1__key_value__init(x);
    opentelemetry__proto__common__v1__any_value__init(v);
    x->key = lg_arena_strdup(a, k);
    x->value = v;
    return x;
}

static void add_kv(lg_kv ***arr, size_t *n, lg_kv *kv)
{
    (*arr)[(*n)++] = kv;
}

static struct tb tb_new(const char *service)
{
    struct tb t;
    t.b = lg_batch_create(LG_SIGNAL_TRACES, 0);
    struct lg_arena *a = t.b->arena;
    lg_resource_spans *rs = lg_arena_alloc(a, sizeof *rs);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    rs->resource = lg_arena_alloc(a, sizeof *rs->resource);
    opentelemetry__proto__resource__v1__resource__init(rs->resource);
    if (service) {
        rs->resource->attributes = lg_arena_calloc(a, 1, sizeof(void *));
        lg_kv *kv = new_kv(a, "service.name");
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        kv->value->string_value = lg_arena_strdup(a, service);
        add_kv(&rs->resource->attributes, &rs->resource->n_attributes, kv);
    }
    t.ss = lg_arena_alloc(a, sizeof *t.ss);
    opentelemetry__proto__trace__v1__scope_spans__init(t.ss);
    t.ss->spans = lg_arena_calloc(a, 256, sizeof(void *));
    rs->n_scope_spans = 1;
    rs->scope_spans = lg_arena_alloc(a, sizeof(void *));
    rs->scope_spans[0] = t.ss;
    t.b->req.traces->n_resource_spans = 1;
    t.b->req.traces->resource_spans = lg_arena_alloc(a, sizeof(void *));
    t.b->req.traces->resource_spans[0] = rs;
    return t;
}

/* A span lasting `ms` milliseconds; attributes follow as (type, key, value) triples ended by
 * 0: 's' string, 'i' int64, 'd' double, 'a' one-element string array. */
static lg_span *tb_span(struct tb *t, const char *name, int64_t ms, bool error, ...)
{
    struct lg_arena *a = t->b->arena;
    lg_span *s = lg_arena_alloc(a, sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    s->name = lg_arena_strdup(a, name);
    uint8_t *tid = lg_arena_calloc(a, 1, 16), *sid = lg_arena_calloc(a, 1, 8);
    tid[0] = 1;
    sid[0] = (uint8_t)(t->ss->n_spans + 1);
    s->trace_id = (ProtobufCBinaryData){16, tid};
    s->span_id = (ProtobufCBinaryData){8, sid};
    s->start_time_unix_nano = 1700000000000000000ULL;
    s->end_time_unix_nano = s->start_time_unix_nano + (uint64_t)ms * 1000000ULL;
    s->attributes = lg_arena_calloc(a, 32, sizeof(void *));
    if (error) {
        s->status = lg_arena_alloc(a, sizeof *s->status);
        opentelemetry__proto__trace__v1__status__init(s->status);
        s->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    }
    va_list ap;
    va_start(ap, error);
    for (;;) {
        int type = va_arg(ap, int);
        if (type == 0)
            break;
        lg_kv *kv = new_kv(a, va_arg(ap, const char *));
        lg_any_value *v = kv->value;
        if (type == 's') {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = lg_arena_strdup(a, va_arg(ap, const char *));
        } else if (type == 'i') {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = va_arg(ap, int64_t);
        } else if (type == 'd') {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            v->double_value = va_arg(ap, double);
        } else {
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            v->array_value = lg_arena_alloc(a, sizeof *v->array_value);
            opentelemetry__proto__common__v1__array_value__init(v->array_value);
            v->array_value->values = lg_arena_alloc(a, sizeof(void *));
            lg_any_value *e = lg_arena_alloc(a, sizeof *e);
            opentelemetry__proto__common__v1__any_value__init(e);
            e->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            e->string_value = lg_arena_strdup(a, va_arg(ap, const char *));
            v->array_value->values[0] = e;
            v->array_value->n_values = 1;
        }
        add_kv(&s->attributes, &s->n_attributes, kv);
    }
    va_end(ap);
    t->ss->spans[t->ss->n_spans++] = s;
    return s;
}

/* A seed-decorator span: llm_completion with llm.* attributes. */
static void seed_span(struct tb *t, const char *model, int64_t prompt, int64_t completion, int64_t ms,
                      const char *finish, const char *error)
{
    if (error)
        tb_span(t, "llm_completion", ms, true, 's', "llm.model", model, 'i', "llm.prompt_tokens", prompt,
                'i', "llm.completion_tokens", completion, 'i', "llm.total_tokens", prompt + completion,
                's', "llm.error", error, 0);
    else
        tb_span(t, "llm_completion", ms, false, 's', "llm.model", model, 'i', "llm.prompt_tokens", prompt,
                'i', "llm.completion_tokens", completion, 'i', "llm.total_tokens", prompt + completion,
                's', "llm.finish_reason", finish, 0);
}

static void consume(struct fixture *f, struct tb *t)
{
    t->b->items = lg_batch_count_items(t->b);
    assert_int_equal(lg_llm_metrics_connector.consume(&f->c, t->b), LG_OK);
    lg_batch_unref(t->b);
}

/* ---- reading the emitted metrics ---- */

static struct lg_batch *last_batch(struct fixture *f)
{
    assert_true(f->sink.ngot > 0);
    struct lg_batch *b = f->sink.got[f->sink.ngot - 1];
    assert_int_equal(b->signal, LG_SIGNAL_METRICS);
    assert_int_equal(b->req.metrics->n_resource_metrics, 1);
    assert_int_equal(b->req.metrics->resource_metrics[0]->n_scope_metrics, 1);
    return b;
}

static const lg_metric *find_metric(struct lg_batch *b, const char *name)
{
    const lg_scope_metrics *sm = b->req.metrics->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++)
        if (strcmp(sm->metrics[i]->name, name) == 0)
            return sm->metrics[i];
    return NULL;
}

/* True when the attributes are exactly `want` (NULL-terminated key, value pairs). */
static bool attrs_equal(lg_kv *const *kv, size_t n, const char *const *want)
{
    size_t k = 0;
    while (want[2 * k])
        k++;
    if (k != n)
        return false;
    for (size_t i = 0; i < k; i++) {
        bool found = false;
        for (size_t j = 0; j < n; j++)
            if (strcmp(kv[j]->key, want[2 * i]) == 0 &&
                kv[j]->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
                strcmp(kv[j]->value->string_value, want[2 * i + 1]) == 0)
                found = true;
        if (!found)
            return false;
    }
    return true;
}

static const lg_number_dp *sum_point(struct lg_batch *b, const char *name, const char *const *attrs)
{
    const lg_metric *m = find_metric(b, name);
    assert_non_null(m);
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_true(m->sum->is_monotonic);
    assert_int_equal(m->sum->aggregation_temporality, OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    for (size_t i = 0; i < m->sum->n_data_points; i++)
        if (attrs_equal(m->sum->data_points[i]->attributes, m->sum->data_points[i]->n_attributes, attrs))
            return m->sum->data_points[i];
    return NULL;
}

static const lg_histogram_dp *hist_point(struct lg_batch *b, const char *name, const char *const *attrs)
{
    const lg_metric *m = find_metric(b, name);
    assert_non_null(m);
    assert_int_equal(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    assert_int_equal(m->histogram->aggregation_temporality, OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    for (size_t i = 0; i < m->histogram->n_data_points; i++)
        if (attrs_equal(m->histogram->data_points[i]->attributes, m->histogram->data_points[i]->n_attributes, attrs))
            return m->histogram->data_points[i];
    return NULL;
}

static size_t npoints(struct lg_batch *b, const char *name)
{
    const lg_metric *m = find_metric(b, name);
    return m ? lg_metric_point_count(m) : 0;
}

static void assert_buckets(const lg_histogram_dp *p, const uint64_t *want, size_t n)
{
    assert_int_equal(p->n_bucket_counts, n);
    for (size_t i = 0; i < n; i++)
        if (p->bucket_counts[i] != want[i]) {
            print_error("bucket %zu: got %llu, want %llu\n", i, (unsigned long long)p->bucket_counts[i], (unsigned long long)want[i]);
            fail();
        }
}

#define LONG_FLUSH "llm_metrics: {flush_interval: 1h}"

/* ---- tests ---- */

static void test_seed_spans_give_tokens_latency_errors_and_finish_reasons_by_model(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    struct tb t = tb_new("chatbot");
    seed_span(&t, "gpt-4o", 100, 20, 500, "stop", NULL);
    seed_span(&t, "gpt-4o", 1000, 300, 1500, "length", NULL);
    seed_span(&t, "gpt-4o", 50, 0, 3000, NULL, "RateLimitError");
    seed_span(&t, "claude-3-5-sonnet", 7, 5, 20, "stop", NULL);
    tb_span(&t, "GET /health", 3, false, 's', "http.route", "/health", 0); /* not an LLM span */
    consume(&f, &t);
    assert_int_equal(counter(&f, "llmgate_llm_metrics_llm_spans"), 4);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    struct lg_batch *b = last_batch(&f);

    /* the resource is the configured one, the app's service.name is a dimension */
    const lg_resource *res = b->req.metrics->resource_metrics[0]->resource;
    const char *want_res[] = {"service.name", "llmgate", NULL};
    assert_true(attrs_equal(res->attributes, res->n_attributes, want_res));
    assert_string_equal(b->req.metrics->resource_metrics[0]->scope_metrics[0]->scope->name, "llmgate/llm_metrics");

    const char *gpt[] = {"service.name", "chatbot", "model", "gpt-4o", NULL};
    const char *claude[] = {"service.name", "chatbot", "model", "claude-3-5-sonnet", NULL};
    const lg_number_dp *p = sum_point(b, "llm.tokens.total", gpt);
    assert_non_null(p);
    assert_int_equal(p->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    assert_int_equal(p->as_int, 120 + 1300 + 50);
    assert_true(p->start_time_unix_nano > 0 && p->start_time_unix_nano <= p->time_unix_nano);
    assert_int_equal(sum_point(b, "llm.tokens.total", claude)->as_int, 12);
    assert_int_equal(npoints(b, "llm.tokens.total"), 2);

    /* latency: 0.5 s -> (0.32, 0.64] (bucket 6), 1.5 s -> (1.28, 2.56] (8), 3 s -> (2.56, 5.12] (9) */
    const lg_histogram_dp *h = hist_point(b, "llm.latency.seconds", gpt);
    assert_non_null(h);
    assert_int_equal(h->count, 3);
    assert_true(h->sum == 5.0);
    assert_int_equal(h->n_explicit_bounds, 14);
    assert_true(h->explicit_bounds[0] == 0.01 && h->explicit_bounds[13] == 81.92);
    const uint64_t lat[15] = {0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 0};
    assert_buckets(h, lat, 15);
    /* 20 ms is exactly the bound 0.02: upper bounds are inclusive, so bucket 1, not 2 */
    const uint64_t lat_claude[15] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_buckets(hist_point(b, "llm.latency.seconds", claude), lat_claude, 15);

    const char *rate[] = {"service.name", "chatbot", "model", "gpt-4o", "error.type", "RateLimitError", NULL};
    assert_int_equal(sum_point(b, "llm.errors", rate)->as_int, 1);
    assert_int_equal(npoints(b, "llm.errors"), 1);
    const char *stop[] = {"service.name", "chatbot", "model", "gpt-4o", "finish_reason", "stop", NULL};
    const char *length[] = {"service.name", "chatbot", "model", "gpt-4o", "finish_reason", "length", NULL};
    const char *cstop[] = {"service.name", "chatbot", "model", "claude-3-5-sonnet", "finish_reason", "stop", NULL};
    assert_int_equal(sum_point(b, "llm.finish_reasons", stop)->as_int, 1);
    assert_int_equal(sum_point(b, "llm.finish_reasons", length)->as_int, 1);
    assert_int_equal(sum_point(b, "llm.finish_reasons", cstop)->as_int, 1);
    assert_int_equal(npoints(b, "llm.finish_reasons"), 3);
    /* no span carried a cost */
    assert_null(find_metric(b, "llm.cost.usd"));

    /* GenAI token usage: seed spans have a request model only, no operation or provider */
    const char *in[] = {"service.name", "chatbot", "gen_ai.request.model", "gpt-4o", "gen_ai.token.type", "input", NULL};
    const char *out[] = {"service.name", "chatbot", "gen_ai.request.model", "gpt-4o", "gen_ai.token.type", "output", NULL};
    h = hist_point(b, "gen_ai.client.token.usage", in);
    assert_non_null(h);
    assert_int_equal(h->count, 3);
    assert_true(h->sum == 1150.0);
    /* 100 -> (64,256], 1000 -> (256,1024], 50 -> (16,64] */
    const uint64_t tin[15] = {0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_buckets(h, tin, 15);
    h = hist_point(b, "gen_ai.client.token.usage", out);
    /* 20 -> (16,64], 300 -> (256,1024], 0 -> (-inf,1] */
    const uint64_t tout[15] = {1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_buckets(h, tout, 15);
    assert_true(h->sum == 320.0);
    const char *dur_err[] = {"service.name", "chatbot", "gen_ai.request.model", "gpt-4o", "error.type", "RateLimitError", NULL};
    const char *dur_ok[] = {"service.name", "chatbot", "gen_ai.request.model", "gpt-4o", NULL};
    assert_int_equal(hist_point(b, "gen_ai.client.operation.duration", dur_err)->count, 1);
    assert_int_equal(hist_point(b, "gen_ai.client.operation.duration", dur_ok)->count, 2);
    const lg_metric *m = find_metric(b, "gen_ai.client.operation.duration");
    assert_string_equal(m->unit, "s");
    assert_string_equal(find_metric(b, "gen_ai.client.token.usage")->unit, "{token}");
    free_connector(&f);
}

static void test_genai_spans_carry_semconv_attributes_and_error_type(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    struct tb t = tb_new("agent");
    tb_span(&t, "chat gpt-4o", 250, false, 's', "gen_ai.operation.name", "chat", 's', "gen_ai.provider.name", "openai",
            's', "gen_ai.request.model", "gpt-4o", 's', "gen_ai.response.model", "gpt-4o-2024-08-06",
            'i', "gen_ai.usage.input_tokens", (int64_t)4096, 'i', "gen_ai.usage.output_tokens", (int64_t)4097,
            'a', "gen_ai.response.finish_reasons", "stop", 'd', "gen_ai.usage.cost", 0.25, 0);
    tb_span(&t, "chat gpt-4o", 90000, true, 's', "gen_ai.operation.name", "chat", 's', "gen_ai.provider.name", "openai",
            's', "gen_ai.request.model", "gpt-4o", 's', "error.type", "timeout", 0);
    tb_span(&t, "chat gpt-4o", 100, true, 's', "gen_ai.operation.name", "chat", 's', "gen_ai.provider.name", "openai",
            's', "gen_ai.request.model", "gpt-4o", 'i', "gen_ai.usage.input_tokens", (int64_t)1, 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    struct lg_batch *b = last_batch(&f);
    const char *in[] = {"service.name", "agent", "gen_ai.operation.name", "chat", "gen_ai.provider.name", "openai",
                        "gen_ai.request.model", "gpt-4o", "gen_ai.response.model", "gpt-4o-2024-08-06",
                        "gen_ai.token.type", "input", NULL};
    const lg_histogram_dp *h = hist_point(b, "gen_ai.client.token.usage", in);
    assert_non_null(h);
    /* 4096 is the inclusive upper bound of (1024, 4096] */
    const uint64_t b4096[15] = {0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_buckets(h, b4096, 15);
    const char *out[] = {"service.name", "agent", "gen_ai.operation.name", "chat", "gen_ai.provider.name", "openai",
                         "gen_ai.request.model", "gpt-4o", "gen_ai.response.model", "gpt-4o-2024-08-06",
                         "gen_ai.token.type", "output", NULL};
    const uint64_t b4097[15] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_buckets(hist_point(b, "gen_ai.client.token.usage", out), b4097, 15);
    const char *in1[] = {"service.name", "agent", "gen_ai.operation.name", "chat", "gen_ai.provider.name", "openai",
                         "gen_ai.request.model", "gpt-4o", "gen_ai.token.type", "input", NULL};
    const uint64_t b1[15] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_buckets(hist_point(b, "gen_ai.client.token.usage", in1), b1, 15);

    const char *timeout[] = {"service.name", "agent", "gen_ai.operation.name", "chat", "gen_ai.provider.name", "openai",
                             "gen_ai.request.model", "gpt-4o", "error.type", "timeout", NULL};
    h = hist_point(b, "gen_ai.client.operation.duration", timeout);
    /* 90 s is past the last bound: the overflow bucket */
    const uint64_t b90[15] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_buckets(h, b90, 15);
    /* failed without a type: the semconv fallback */
    const char *other[] = {"service.name", "agent", "gen_ai.operation.name", "chat", "gen_ai.provider.name", "openai",
                           "gen_ai.request.model", "gpt-4o", "error.type", "_OTHER", NULL};
    assert_int_equal(hist_point(b, "gen_ai.client.operation.duration", other)->count, 1);
    const char *model_other[] = {"service.name", "agent", "model", "gpt-4o", "error.type", "_OTHER", NULL};
    assert_int_equal(sum_point(b, "llm.errors", model_other)->as_int, 1);

    /* seed metrics use the pricing model: the response model when there is one */
    const char *resp[] = {"service.name", "agent", "model", "gpt-4o-2024-08-06", NULL};
    const lg_number_dp *c = sum_point(b, "llm.cost.usd", resp);
    assert_non_null(c);
    assert_int_equal(c->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    assert_true(c->as_double == 0.25);
    assert_int_equal(npoints(b, "llm.cost.usd"), 1);
    assert_int_equal(sum_point(b, "llm.tokens.total", resp)->as_int, 8193);
    const char *fin[] = {"service.name", "agent", "model", "gpt-4o-2024-08-06", "finish_reason", "stop", NULL};
    assert_int_equal(sum_point(b, "llm.finish_reasons", fin)->as_int, 1);
    free_connector(&f);
}

static void test_totals_are_cumulative_across_flushes_with_a_fixed_start_time(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    struct tb t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "m1", 'i', "llm.total_tokens", (int64_t)10,
            'd', "gen_ai.usage.cost", 0.125, 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    const char *m1[] = {"model", "m1", NULL};
    const lg_number_dp *p1 = sum_point(last_batch(&f), "llm.tokens.total", m1);
    assert_non_null(p1);
    uint64_t start = p1->start_time_unix_nano;
    t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "m1", 'i', "llm.total_tokens", (int64_t)5,
            'd', "gen_ai.usage.cost", 0.5, 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    assert_int_equal(f.sink.ngot, 2);
    const lg_number_dp *p2 = sum_point(last_batch(&f), "llm.tokens.total", m1);
    assert_int_equal(p2->as_int, 15);
    assert_int_equal(p2->start_time_unix_nano, start);
    assert_true(sum_point(last_batch(&f), "llm.cost.usd", m1)->as_double == 0.625);
    /* a flush with nothing new still reports the totals */
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    assert_int_equal(sum_point(last_batch(&f), "llm.tokens.total", m1)->as_int, 15);
    free_connector(&f);
}

static void test_no_llm_spans_emit_nothing(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    struct tb t = tb_new("web");
    tb_span(&t, "GET /", 3, false, 's', "http.route", "/", 0);
    tb_span(&t, "execute_tool search", 3, false, 's', "gen_ai.operation.name", "execute_tool",
            's', "gen_ai.request.model", "gpt-4o", 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    assert_int_equal(f.sink.ngot, 0);
    assert_int_equal(counter(&f, "llmgate_llm_metrics_llm_spans"), 0);
    free_connector(&f);
}

static void test_series_past_max_series_go_to_one_overflow_series(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, "llm_metrics: {flush_interval: 1h, max_series: 2}", &err), LG_OK);
    struct tb t = tb_new(NULL);
    const char *models[] = {"a", "b", "c", "d", "c"};
    for (int i = 0; i < 5; i++)
        tb_span(&t, "llm_completion", 10, false, 's', "llm.model", models[i], 'i', "llm.total_tokens", (int64_t)(i + 1), 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    struct lg_batch *b = last_batch(&f);
    const char *a[] = {"model", "a", NULL}, *bb[] = {"model", "b", NULL}, *ov[] = {"otel.metric.overflow", "true", NULL};
    assert_int_equal(sum_point(b, "llm.tokens.total", a)->as_int, 1);
    assert_int_equal(sum_point(b, "llm.tokens.total", bb)->as_int, 2);
    assert_int_equal(sum_point(b, "llm.tokens.total", ov)->as_int, 3 + 4 + 5);
    assert_int_equal(npoints(b, "llm.tokens.total"), 3);
    assert_int_equal(hist_point(b, "llm.latency.seconds", ov)->count, 3);
    /* llm.tokens.total, llm.latency.seconds and gen_ai.client.operation.duration each
     * overflow for c, d, c: 9 recordings */
    assert_int_equal(counter(&f, "llmgate_llm_metrics_overflow_recordings"), 9);
    /* existing series keep counting after the cap is reached */
    t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "a", 'i', "llm.total_tokens", (int64_t)100, 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    assert_int_equal(sum_point(last_batch(&f), "llm.tokens.total", a)->as_int, 101);
    free_connector(&f);
}

static void test_flush_interval_emits_and_shutdown_flushes_once_more(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, "llm_metrics: {flush_interval: 20ms}", &err), LG_OK);
    struct tb t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "m", 'i', "llm.total_tokens", (int64_t)7, 0);
    consume(&f, &t);
    for (int i = 0; i < 500 && test_sink_items(&f.sink) == 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(test_sink_items(&f.sink) > 0);
    free_connector(&f);

    /* a long interval: only the shutdown flush delivers */
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "m", 'i', "llm.total_tokens", (int64_t)7, 0);
    consume(&f, &t);
    assert_int_equal(f.sink.ngot, 0);
    assert_int_equal(lg_llm_metrics_connector.shutdown(&f.c, lg_now_mono_ns() + 1000000000LL), LG_OK);
    f.started = false;
    assert_int_equal(f.sink.ngot, 1);
    const char *m[] = {"model", "m", NULL};
    assert_int_equal(sum_point(last_batch(&f), "llm.tokens.total", m)->as_int, 7);
    free_connector(&f);
}

static void test_a_refusing_metrics_pipeline_is_counted_and_the_next_flush_has_the_totals(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    struct tb t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "m", 'i', "llm.total_tokens", (int64_t)7, 0);
    consume(&f, &t);
    f.sink.refuse = LG_EAGAIN;
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_EAGAIN);
    assert_true(counter(&f, "llmgate_llm_metrics_refused_points") > 0);
    f.sink.refuse = 0;
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    const char *m[] = {"model", "m", NULL};
    assert_int_equal(sum_point(last_batch(&f), "llm.tokens.total", m)->as_int, 7);
    free_connector(&f);
}

static void test_resource_attributes_and_dimensions_cache_size_are_configurable(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f,
                                    "llm_metrics:\n"
                                    "  flush_interval: 1h\n"
                                    "  dimensions_cache_size: 1\n"
                                    "  resource_attributes: {service.name: gw, deployment.environment: prod}\n",
                                    &err),
                     LG_OK);
    struct tb t = tb_new(NULL);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "a", 'i', "llm.total_tokens", (int64_t)1, 0);
    tb_span(&t, "llm_completion", 10, false, 's', "llm.model", "b", 'i', "llm.total_tokens", (int64_t)2, 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    struct lg_batch *b = last_batch(&f);
    const lg_resource *res = b->req.metrics->resource_metrics[0]->resource;
    const char *want[] = {"service.name", "gw", "deployment.environment", "prod", NULL};
    assert_true(attrs_equal(res->attributes, res->n_attributes, want));
    const char *ov[] = {"otel.metric.overflow", "true", NULL};
    assert_int_equal(sum_point(b, "llm.tokens.total", ov)->as_int, 2);
    free_connector(&f);
}

static void test_config_errors_name_the_yaml_path(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, "llm_metrics: {flush_interval: 0s}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "lm.yaml:1:"));
    assert_non_null(strstr(err.msg, "llm_metrics.flush_interval: must be greater than 0"));
    free_connector(&f);
    assert_int_equal(make_connector(&f, "llm_metrics: {max_series: 0}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "llm_metrics.max_series"));
    free_connector(&f);
    assert_int_equal(make_connector(&f, "llm_metrics: {resource_attributes: [a, b]}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "llm_metrics.resource_attributes"));
    free_connector(&f);
    assert_int_equal(make_connector(&f, "llm_metrics: {histogram_buckets: 3}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "histogram_buckets"));
    free_connector(&f);
}

enum { THREADS = 4, BATCHES = 50, SPANS = 20 };

static void *consumer_thread(void *arg)
{
    struct fixture *f = arg;
    for (int i = 0; i < BATCHES; i++) {
        struct tb t = tb_new("svc");
        for (int k = 0; k < SPANS; k++)
            tb_span(&t, "llm_completion", 10, false, 's', "llm.model", k % 2 ? "odd" : "even",
                    'i', "llm.total_tokens", (int64_t)3, 0);
        t.b->items = lg_batch_count_items(t.b);
        if (lg_llm_metrics_connector.consume(&f->c, t.b) != LG_OK)
            fprintf(stderr, "consume refused\n");
        lg_batch_unref(t.b);
    }
    return NULL;
}

static void test_concurrent_consumers_lose_no_counts(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    /* a short interval so the flush thread snapshots while the consumers record */
    assert_int_equal(make_connector(&f, "llm_metrics: {flush_interval: 1ms}", &err), LG_OK);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, consumer_thread, &f), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(lg_llm_metrics_connector.shutdown(&f.c, lg_now_mono_ns() + 1000000000LL), LG_OK);
    f.started = false;
    struct lg_batch *b = last_batch(&f);
    const char *even[] = {"service.name", "svc", "model", "even", NULL};
    const char *odd[] = {"service.name", "svc", "model", "odd", NULL};
    const int64_t per_model = THREADS * BATCHES * SPANS / 2;
    assert_int_equal(sum_point(b, "llm.tokens.total", even)->as_int, 3 * per_model);
    assert_int_equal(sum_point(b, "llm.tokens.total", odd)->as_int, 3 * per_model);
    assert_int_equal(hist_point(b, "llm.latency.seconds", odd)->count, per_model);
    free_connector(&f);
}

/* The whole path: spans -> llm_metrics -> prometheus exporter -> exposition text. */
static void test_prometheus_exporter_renders_the_emitted_metrics(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_connector(&f, LONG_FLUSH, &err), LG_OK);
    struct lg_conf_doc pdoc;
    struct lg_conf_source src = {.text = "prometheus: {endpoint: \"127.0.0.1:0\"}", .name = "p.yaml"};
    assert_int_equal(lg_conf_load(&src, 1, NULL, NULL, &pdoc, &err), LG_OK);
    struct lg_component prom = {.type = &lg_prometheus_exporter, .id = "prometheus"};
    prom.conf_node = lg_node_get(pdoc.root, "prometheus");
    prom.conf = lg_arena_calloc(f.arena, 1, lg_prometheus_exporter.conf_size);
    assert_int_equal(lg_conf_apply(lg_prometheus_exporter.fields, prom.conf_node, pdoc.root, prom.conf, f.arena, &err), LG_OK);
    assert_int_equal(lg_prometheus_exporter.create(&prom, &err), LG_OK);
    f.to[0] = &prom;

    struct tb t = tb_new("chatbot");
    seed_span(&t, "gpt-4o", 100, 20, 500, "stop", NULL);
    tb_span(&t, "llm_completion", 30, false, 's', "llm.model", "gpt-4o", 'i', "llm.total_tokens", (int64_t)30,
            'd', "gen_ai.usage.cost", 0.0375, 0);
    consume(&f, &t);
    assert_int_equal(lg_llm_metrics_flush(&f.c), LG_OK);
    size_t len;
    char *text = lg_prometheus_render(&prom, &len);
    assert_non_null(text);
    const char *scope = "otel_scope_name=\"llmgate/llm_metrics\",otel_scope_version=\"" LLMGATE_VERSION "\"";
    char line[512];
    snprintf(line, sizeof line, "llm_tokens_total{job=\"llmgate\",model=\"gpt-4o\",%s,service_name=\"chatbot\"} 150\n", scope);
    if (strstr(text, line) == NULL)
        fail_msg("missing line %s in:\n%s", line, text);
    snprintf(line, sizeof line, "llm_cost_usd_total{job=\"llmgate\",model=\"gpt-4o\",%s,service_name=\"chatbot\"} 0.0375\n", scope);
    if (strstr(text, line) == NULL)
        fail_msg("missing line %s in:\n%s", line, text);
    snprintf(line, sizeof line, "llm_latency_seconds_bucket{job=\"llmgate\",model=\"gpt-4o\",%s,service_name=\"chatbot\",le=\"0.04\"} 1\n", scope);
    if (strstr(text, line) == NULL)
        fail_msg("missing line %s in:\n%s", line, text);
    snprintf(line, sizeof line, "llm_latency_seconds_bucket{job=\"llmgate\",model=\"gpt-4o\",%s,service_name=\"chatbot\",le=\"0.64\"} 2\n", scope);
    if (strstr(text, line) == NULL)
        fail_msg("missing line %s in:\n%s", line, text);
    assert_non_null(strstr(text, "# TYPE gen_ai_client_operation_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE gen_ai_client_token_usage histogram\n"));
    assert_non_null(strstr(text, "# TYPE llm_finish_reasons_total counter\n"));
    free(text);
    free_connector(&f);
    lg_prometheus_exporter.destroy(&prom);
    lg_conf_doc_free(&pdoc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_spans_give_tokens_latency_errors_and_finish_reasons_by_model),
        cmocka_unit_test(test_genai_spans_carry_semconv_attributes_and_error_type),
        cmocka_unit_test(test_totals_are_cumulative_across_flushes_with_a_fixed_start_time),
        cmocka_unit_test(test_no_llm_spans_emit_nothing),
        cmocka_unit_test(test_series_past_max_series_go_to_one_overflow_series),
        cmocka_unit_test(test_flush_interval_emits_and_shutdown_flushes_once_more),
        cmocka_unit_test(test_a_refusing_metrics_pipeline_is_counted_and_the_next_flush_has_the_totals),
        cmocka_unit_test(test_resource_attributes_and_dimensions_cache_size_are_configurable),
        cmocka_unit_test(test_config_errors_name_the_yaml_path),
        cmocka_unit_test(test_concurrent_consumers_lose_no_counts),
        cmocka_unit_test(test_prometheus_exporter_renders_the_emitted_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
