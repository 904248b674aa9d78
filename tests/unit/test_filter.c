/* tests/unit/test_filter.c — the filter processor (processors/filter.c) on batches: spans
 * dropped by attribute and name with empty scopes / resources pruned, the input batch left
 * untouched (copy-on-write), span events dropped from a copied span, logs, metrics and data
 * points (a metric whose points all go is removed), an unchanged batch forwarded as is, an
 * emptied batch not forwarded, error_mode propagate / ignore / silent, the filtered
 * counters, config errors naming the YAML path and the column, and the deprecated
 * include / exclude form (translated into OTTL conditions, or refused where it cannot be). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "llm_test_util.h"
#include "proc_fixture.h"

extern const struct lg_component_type lg_filter_processor;

static int make_proc(struct fixture *f, const char *yaml, struct lg_err *err)
{
    return fixture_make(f, &lg_filter_processor, "filter", yaml, err);
}

static void proc_ok(struct fixture *f, const char *yaml) { fixture_ok(f, &lg_filter_processor, "filter", yaml); }

static void free_proc(struct fixture *f) { fixture_free(f); }

static uint64_t metric(struct fixture *f, const char *name, const char *labels)
{
    char series[512];
    snprintf(series, sizeof series, "%s{%s}", name, labels);
    return fixture_series(f, series);
}

/* ------------------------------------------------------------------ builders ---- */

/* Replaces span i of resource r with a span named `name` carrying http.route = route
 * (when route is not NULL). */
static void set_span(struct lg_batch *b, size_t r, size_t i, const char *name, const char *route)
{
    struct tattr at[1] = {{"http.route", 's', route}};
    lg_span *s = tspan(b->arena, name, at, route ? 1 : 0);
    lg_span *old = b->req.traces->resource_spans[r]->scope_spans[0]->spans[i];
    s->trace_id = old->trace_id;
    s->span_id = old->span_id;
    b->req.traces->resource_spans[r]->scope_spans[0]->spans[i] = s;
}

static void add_event(struct lg_batch *b, lg_span *s, const char *name)
{
    lg_span_event *e = lg_arena_alloc(b->arena, sizeof *e);
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->name = lg_arena_strdup(b->arena, name);
    lg_span_event **arr = lg_arena_calloc(b->arena, s->n_events + 1, sizeof *arr);
    if (s->n_events)
        memcpy(arr, s->events, s->n_events * sizeof *arr);
    arr[s->n_events++] = e;
    s->events = arr;
}

static struct lg_batch *make_logs(void)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_LOGS, 0);
    struct lg_arena *a = b->arena;
    lg_resource_logs *rl = lg_arena_alloc(a, sizeof *rl);
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    lg_scope_logs *sl = lg_arena_alloc(a, sizeof *sl);
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    static const struct {
        int sev;
        const char *body;
    } recs[] = {{5, "debug stuff"}, {9, "hello"}, {13, "disk almost full"}, {9, "GET /health ok"}};
    sl->n_log_records = LG_ARRAY_LEN(recs);
    sl->log_records = lg_arena_calloc(a, sl->n_log_records, sizeof(void *));
    for (size_t i = 0; i < LG_ARRAY_LEN(recs); i++) {
        lg_log_record *l = lg_arena_alloc(a, sizeof *l);
        opentelemetry__proto__logs__v1__log_record__init(l);
        l->severity_number = recs[i].sev;
        lg_any_value *v = lg_arena_alloc(a, sizeof *v);
        opentelemetry__proto__common__v1__any_value__init(v);
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = lg_arena_strdup(a, recs[i].body);
        l->body = v;
        sl->log_records[i] = l;
    }
    rl->n_scope_logs = 1;
    rl->scope_logs = lg_arena_alloc(a, sizeof(void *));
    rl->scope_logs[0] = sl;
    b->req.logs->n_resource_logs = 1;
    b->req.logs->resource_logs = lg_arena_alloc(a, sizeof(void *));
    b->req.logs->resource_logs[0] = rl;
    b->items = lg_batch_count_items(b);
    return b;
}

static lg_number_dp *point(struct lg_arena *a, const char *route, int64_t v)
{
    lg_number_dp *p = lg_arena_alloc(a, sizeof *p);
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    lg_kv *kv = lg_arena_alloc(a, sizeof *kv);
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = lg_arena_strdup(a, "route");
    lg_any_value *val = lg_arena_alloc(a, sizeof *val);
    opentelemetry__proto__common__v1__any_value__init(val);
    val->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    val->string_value = lg_arena_strdup(a, route);
    kv->value = val;
    p->attributes = lg_arena_alloc(a, sizeof(void *));
    p->attributes[0] = kv;
    p->n_attributes = 1;
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    p->as_int = v;
    return p;
}

/* Metrics "requests" (gauge: /a, /health), "drop.me" (sum: /a), "health.only" (gauge:
 * /health, /health). 5 points. */
static struct lg_batch *make_metrics(void)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_METRICS, 0);
    struct lg_arena *a = b->arena;
    lg_resource_metrics *rm = lg_arena_alloc(a, sizeof *rm);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    lg_scope_metrics *sm = lg_arena_alloc(a, sizeof *sm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    static const struct {
        const char *name;
        bool sum;
        const char *routes[2];
    } ms[] = {{"requests", false, {"/a", "/health"}}, {"drop.me", true, {"/a", NULL}},
              {"health.only", false, {"/health", "/health"}}};
    sm->n_metrics = LG_ARRAY_LEN(ms);
    sm->metrics = lg_arena_calloc(a, sm->n_metrics, sizeof(void *));
    for (size_t i = 0; i < LG_ARRAY_LEN(ms); i++) {
        lg_metric *m = lg_arena_alloc(a, sizeof *m);
        opentelemetry__proto__metrics__v1__metric__init(m);
        m->name = lg_arena_strdup(a, ms[i].name);
        size_t n = ms[i].routes[1] ? 2 : 1;
        lg_number_dp **pts = lg_arena_calloc(a, n, sizeof *pts);
        for (size_t k = 0; k < n; k++)
            pts[k] = point(a, ms[i].routes[k], (int64_t)(i * 10 + k));
        if (ms[i].sum) {
            Opentelemetry__Proto__Metrics__V1__Sum *s = lg_arena_alloc(a, sizeof *s);
            opentelemetry__proto__metrics__v1__sum__init(s);
            s->data_points = pts;
            s->n_data_points = n;
            m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
            m->sum = s;
        } else {
            Opentelemetry__Proto__Metrics__V1__Gauge *g = lg_arena_alloc(a, sizeof *g);
            opentelemetry__proto__metrics__v1__gauge__init(g);
            g->data_points = pts;
            g->n_data_points = n;
            m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
            m->gauge = g;
        }
        sm->metrics[i] = m;
    }
    rm->n_scope_metrics = 1;
    rm->scope_metrics = lg_arena_alloc(a, sizeof(void *));
    rm->scope_metrics[0] = sm;
    b->req.metrics->n_resource_metrics = 1;
    b->req.metrics->resource_metrics = lg_arena_alloc(a, sizeof(void *));
    b->req.metrics->resource_metrics[0] = rm;
    b->items = lg_batch_count_items(b);
    return b;
}

static const char *const health_yaml =
    "filter:\n"
    "  traces:\n"
    "    span:\n"
    "      - 'attributes[\"http.route\"] == \"/health\"'\n"
    "      - 'IsMatch(name, \"^GET /ready\")'\n";

/* ------------------------------------------------------------------ tests ---- */

static void test_drop_spans_and_prune(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, health_yaml);
    /* resource 0: health, work, ready; resource 1: health only (pruned) */
    struct lg_batch *b = make_traces(0, 2, 3);
    set_span(b, 0, 0, "GET /health", "/health");
    set_span(b, 0, 1, "work", "/api");
    set_span(b, 0, 2, "GET /ready", NULL);
    b->req.traces->resource_spans[1]->scope_spans[0]->n_spans = 1;
    set_span(b, 1, 0, "GET /health", "/health");
    b->items = lg_batch_count_items(b);
    char *before = span_names(b);
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    struct lg_batch *out = f.sink.got[0];
    assert_ptr_not_equal(out, b);
    char *names = span_names(out);
    assert_string_equal(names, "work");
    assert_int_equal(out->items, 1);
    assert_int_equal(out->req.traces->n_resource_spans, 1);
    /* the input is untouched */
    char *after = span_names(b);
    assert_string_equal(before, after);
    assert_string_equal(after, "GET /health work GET /ready GET /health");
    assert_int_equal(metric(&f, "otelcol_processor_filter_spans_filtered", "filter=\"filter\""), 3);
    free(names);
    free(before);
    free(after);
    lg_batch_unref(b);
    free_proc(&f);
}

static void test_unchanged_forwarded_as_is_and_all_dropped(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, health_yaml);
    struct lg_batch *b = make_traces(1, 1, 2);
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    assert_ptr_equal(f.sink.got[0], b);
    /* every span matches: nothing is forwarded, and the batch is accepted */
    struct lg_batch *h = make_traces(2, 1, 2);
    set_span(h, 0, 0, "GET /health", "/health");
    set_span(h, 0, 1, "GET /ready/x", NULL);
    assert_int_equal(lg_filter_processor.consume(&f.proc, h), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    assert_int_equal(metric(&f, "otelcol_processor_filter_spans_filtered", "filter=\"filter\""), 2);
    /* metrics and logs pass through a traces-only filter */
    struct lg_batch *l = make_logs();
    assert_int_equal(lg_filter_processor.consume(&f.proc, l), LG_OK);
    assert_ptr_equal(f.sink.got[1], l);
    lg_batch_unref(b);
    lg_batch_unref(h);
    lg_batch_unref(l);
    free_proc(&f);
}

static void test_span_events(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "filter:\n"
                "  traces:\n"
                "    span: ['name == \"drop\"']\n"
                "    spanevent:\n"
                "      - 'name == \"debug\" and span.name != \"keep-all\"'\n");
    struct lg_batch *b = make_traces(3, 1, 4);
    set_span(b, 0, 0, "a", NULL);
    set_span(b, 0, 1, "drop", NULL);
    set_span(b, 0, 2, "keep-all", NULL);
    set_span(b, 0, 3, "only-debug", NULL);
    lg_span **sp = b->req.traces->resource_spans[0]->scope_spans[0]->spans;
    add_event(b, sp[0], "debug");
    add_event(b, sp[0], "exception");
    add_event(b, sp[0], "debug");
    add_event(b, sp[1], "debug"); /* its span goes: not counted as an event drop */
    add_event(b, sp[2], "debug");
    add_event(b, sp[3], "debug");
    lg_span *orig0 = sp[0];
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    struct lg_batch *out = f.sink.got[0];
    char *names = span_names(out);
    assert_string_equal(names, "a keep-all only-debug");
    free(names);
    lg_span **osp = out->req.traces->resource_spans[0]->scope_spans[0]->spans;
    assert_ptr_not_equal(osp[0], orig0); /* a copy */
    assert_int_equal(osp[0]->n_events, 1);
    assert_string_equal(osp[0]->events[0]->name, "exception");
    assert_int_equal(orig0->n_events, 3); /* the input span is untouched */
    assert_ptr_equal(osp[1], sp[2]);     /* unchanged spans are shared */
    assert_int_equal(osp[2]->n_events, 0); /* a span whose events all go stays */
    assert_int_equal(metric(&f, "llmgate_processor_filter_span_events_filtered", "filter=\"filter\""), 3);
    assert_int_equal(metric(&f, "otelcol_processor_filter_spans_filtered", "filter=\"filter\""), 1);
    lg_batch_unref(b);
    free_proc(&f);
}

static void test_logs(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "filter:\n"
                "  error_mode: ignore\n"
                "  logs:\n"
                "    log_record:\n"
                "      - 'severity_number < SEVERITY_NUMBER_INFO'\n"
                "      - 'IsMatch(body, \"/health\")'\n");
    struct lg_batch *b = make_logs();
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    const lg_logs_req *r = f.sink.got[0]->req.logs;
    assert_int_equal(r->resource_logs[0]->scope_logs[0]->n_log_records, 2);
    assert_string_equal(r->resource_logs[0]->scope_logs[0]->log_records[0]->body->string_value, "hello");
    assert_string_equal(r->resource_logs[0]->scope_logs[0]->log_records[1]->body->string_value, "disk almost full");
    assert_int_equal(f.sink.got[0]->items, 2);
    assert_int_equal(b->req.logs->resource_logs[0]->scope_logs[0]->n_log_records, 4);
    assert_int_equal(metric(&f, "otelcol_processor_filter_logs_filtered", "filter=\"filter\""), 2);
    lg_batch_unref(b);
    free_proc(&f);
}

static void test_metrics_and_datapoints(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "filter:\n"
                "  metrics:\n"
                "    metric: ['name == \"drop.me\"']\n"
                "    datapoint: ['attributes[\"route\"] == \"/health\"']\n");
    struct lg_batch *b = make_metrics();
    assert_int_equal(b->items, 5);
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    struct lg_batch *out = f.sink.got[0];
    const lg_scope_metrics *sm = out->req.metrics->resource_metrics[0]->scope_metrics[0];
    assert_int_equal(sm->n_metrics, 1); /* drop.me by name, health.only lost all points */
    assert_string_equal(sm->metrics[0]->name, "requests");
    assert_int_equal(sm->metrics[0]->gauge->n_data_points, 1);
    assert_int_equal(sm->metrics[0]->gauge->data_points[0]->as_int, 0);
    assert_int_equal(out->items, 1);
    /* the input keeps its 3 metrics and 5 points */
    const lg_scope_metrics *in = b->req.metrics->resource_metrics[0]->scope_metrics[0];
    assert_int_equal(in->n_metrics, 3);
    assert_int_equal(in->metrics[0]->gauge->n_data_points, 2);
    assert_int_equal(b->items, 5);
    assert_int_equal(metric(&f, "otelcol_processor_filter_datapoints_filtered", "filter=\"filter\""), 4);
    lg_batch_unref(b);
    free_proc(&f);
}

static void test_metric_functions(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "filter:\n"
                "  metrics:\n"
                "    metric: ['HasAttrOnDatapoint(\"route\", \"/a\") and type == METRIC_DATA_TYPE_GAUGE']\n");
    struct lg_batch *b = make_metrics();
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    const lg_scope_metrics *sm = f.sink.got[0]->req.metrics->resource_metrics[0]->scope_metrics[0];
    assert_int_equal(sm->n_metrics, 2);
    assert_string_equal(sm->metrics[0]->name, "drop.me");
    assert_string_equal(sm->metrics[1]->name, "health.only");
    assert_int_equal(metric(&f, "otelcol_processor_filter_datapoints_filtered", "filter=\"filter\""), 2);
    lg_batch_unref(b);
    free_proc(&f);
}

/* Len of an int attribute is an evaluation error. */
static const char *err_yaml(const char *mode)
{
    static char buf[512];
    snprintf(buf, sizeof buf,
             "filter:\n"
             "  error_mode: %s\n"
             "  traces:\n"
             "    span:\n"
             "      - 'Len(attributes[\"n\"]) > 1'\n"
             "      - 'name == \"drop\"'\n",
             mode);
    return buf;
}

static struct lg_batch *err_batch(void)
{
    struct lg_batch *b = make_traces(4, 1, 2);
    struct tattr at[1] = {{"n", 'i', "5"}};
    lg_span **sp = b->req.traces->resource_spans[0]->scope_spans[0]->spans;
    sp[0] = tspan(b->arena, "drop", at, 1);
    sp[1] = tspan(b->arena, "keep", at, 1);
    return b;
}

static void test_error_modes(void **state)
{
    (void)state;
    struct fixture f;
    /* propagate: the batch is refused, nothing forwarded, the refusal counted */
    proc_ok(&f, err_yaml("propagate"));
    struct lg_batch *b = err_batch();
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_EINVAL);
    assert_int_equal(f.sink.ngot, 0);
    assert_int_equal(metric(&f, "otelcol_processor_refused_items", "processor=\"filter\",otel_signal=\"traces\""), 2);
    lg_batch_unref(b);
    free_proc(&f);
    /* ignore and silent: the failing condition is false, the others still apply */
    const char *modes[] = {"ignore", "silent"};
    for (size_t i = 0; i < 2; i++) {
        proc_ok(&f, err_yaml(modes[i]));
        b = err_batch();
        assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
        assert_int_equal(f.sink.ngot, 1);
        char *names = span_names(f.sink.got[0]);
        assert_string_equal(names, "keep");
        free(names);
        assert_int_equal(metric(&f, "otelcol_processor_filter_spans_filtered", "filter=\"filter\""), 1);
        lg_batch_unref(b);
        free_proc(&f);
    }
}

static void expect_conf_error(const char *yaml, const char *want1, const char *want2)
{
    struct fixture f;
    struct lg_err err = {{0}};
    int rc = make_proc(&f, yaml, &err);
    if (rc == LG_OK || strstr(err.msg, want1) == NULL || (want2 && strstr(err.msg, want2) == NULL))
        fail_msg("rc %d, message \"%s\"; want \"%s\" and \"%s\"", rc, err.msg, want1, want2 ? want2 : "");
    free_proc(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_conf_error("filter:\n  traces:\n    span:\n      - 'name == \"a\"'\n      - 'nam == \"b\"'\n",
                      "filter.traces.span[1]", "column 1: unknown path \"nam\"");
    expect_conf_error("filter:\n  logs:\n    log_record: ['body == \"a\" and']\n", "filter.logs.log_record[0]",
                      "column 16");
    expect_conf_error("filter:\n  metrics:\n    datapoint: ['value_int = 1']\n", "filter.metrics.datapoint[0]",
                      "column 11");
    expect_conf_error("filter:\n  error_mode: loud\n", "filter.error_mode", "propagate, ignore or silent");
    /* the deprecated include / exclude form: what cannot be translated is refused */
    expect_conf_error("filter:\n  metrics:\n    exclude:\n      match_type: expr\n      expressions: ['x > 1']\n",
                      "filter.metrics.exclude.match_type", "metrics.metric / metrics.datapoint OTTL");
    expect_conf_error("filter:\n  logs:\n    include:\n      match_type: regexp\n", "filter.logs.include",
                      "at least one property");
    expect_conf_error("filter:\n  logs:\n    include:\n      match_type: fuzzy\n      bodies: [a]\n",
                      "filter.logs.include.match_type", "strict or regexp");
    expect_conf_error("filter:\n  spans:\n    exclude:\n      match_type: regexp\n      span_names: ['a', '(']\n",
                      "filter.spans.exclude.span_names[1]", "invalid pattern");
    expect_conf_error("filter:\n  spans:\n    exclude:\n      match_type: strict\n      span_kinds: [SERVER]\n",
                      "filter.spans.exclude.span_kinds[0]", "unknown span kind");
    expect_conf_error("filter:\n  spans:\n    exclude:\n      match_type: strict\n      bodies: [a]\n",
                      "filter.spans.exclude.bodies", "unknown key \"bodies\"");
    expect_conf_error("filter:\n  traces:\n    span: ['name == \"a\"']\n  spans:\n    exclude:\n"
                      "      match_type: strict\n      span_names: [a]\n",
                      "filter.spans", "at the same time");
    expect_conf_error("filter:\n  traces:\n    span: 'name == \"a\"'\n", "filter.traces.span", "list");
    expect_conf_error("filter:\n  traces:\n    spam: []\n", "spam", NULL);
    /* an empty filter is valid and passes everything */
    struct fixture f;
    proc_ok(&f, "filter:\n  error_mode: silent\n");
    struct lg_batch *b = make_traces(5, 1, 1);
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    assert_ptr_equal(f.sink.got[0], b);
    lg_batch_unref(b);
    free_proc(&f);
}


/* The deprecated include / exclude form, translated into OTTL conditions. */
static void test_legacy_spans(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "filter:\n"
                "  spans:\n"
                "    include:\n"
                "      match_type: regexp\n"
                "      span_names: ['^GET ', '^work$']\n"
                "    exclude:\n"
                "      match_type: strict\n"
                "      attributes:\n"
                "        - key: http.route\n"
                "          value: /health\n");
    struct lg_batch *b = make_traces(6, 1, 4);
    set_span(b, 0, 0, "GET /health", "/health"); /* included, then excluded */
    set_span(b, 0, 1, "GET /api", "/api");       /* kept */
    set_span(b, 0, 2, "work", NULL);             /* kept */
    set_span(b, 0, 3, "other", "/api");          /* not included */
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    char *names = span_names(f.sink.got[0]);
    assert_string_equal(names, "GET /api work");
    free(names);
    assert_int_equal(metric(&f, "otelcol_processor_filter_spans_filtered", "filter=\"filter\""), 2);
    lg_batch_unref(b);
    free_proc(&f);
}

static void test_legacy_logs_and_metrics(void **state)
{
    (void)state;
    struct fixture f;
    proc_ok(&f, "filter:\n"
                "  logs:\n"
                "    include:\n"
                "      match_type: strict\n"
                "      severity_number: {min: INFO}\n"
                "    exclude:\n"
                "      match_type: regexp\n"
                "      bodies: ['/health']\n"
                "  metrics:\n"
                "    exclude:\n"
                "      match_type: strict\n"
                "      metric_names: [drop.me, health.only]\n");
    struct lg_batch *b = make_logs();
    assert_int_equal(lg_filter_processor.consume(&f.proc, b), LG_OK);
    const lg_scope_logs *sl = f.sink.got[0]->req.logs->resource_logs[0]->scope_logs[0];
    assert_int_equal(sl->n_log_records, 2);
    assert_string_equal(sl->log_records[0]->body->string_value, "hello");
    assert_string_equal(sl->log_records[1]->body->string_value, "disk almost full");
    struct lg_batch *m = make_metrics();
    assert_int_equal(lg_filter_processor.consume(&f.proc, m), LG_OK);
    const lg_scope_metrics *sm = f.sink.got[1]->req.metrics->resource_metrics[0]->scope_metrics[0];
    assert_int_equal(sm->n_metrics, 1);
    assert_string_equal(sm->metrics[0]->name, "requests");
    assert_int_equal(metric(&f, "otelcol_processor_filter_datapoints_filtered", "filter=\"filter\""), 3);
    lg_batch_unref(b);
    lg_batch_unref(m);
    free_proc(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drop_spans_and_prune),
        cmocka_unit_test(test_unchanged_forwarded_as_is_and_all_dropped),
        cmocka_unit_test(test_span_events),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_metrics_and_datapoints),
        cmocka_unit_test(test_metric_functions),
        cmocka_unit_test(test_error_modes),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_legacy_spans),
        cmocka_unit_test(test_legacy_logs_and_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
