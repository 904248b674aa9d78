/* tests/unit/test_prometheus.c — the prometheus exporter: OTel -> Prometheus name and label
 * translation, how each metric type and temporality accumulates, expiry, the exact text
 * exposition lines, what it cannot represent (counted), config errors, and GET /metrics
 * over real HTTP on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include <curl/curl.h>

#include "core/runtime.h"
#include "sink.h"

extern const struct lg_component_type lg_prometheus_exporter;
char *lg_prometheus_render(struct lg_component *c, size_t *len);
int lg_prometheus_port(struct lg_component *c);

/* ---- fixture ---- */

struct fixture {
    struct lg_conf_doc doc;
    struct lg_component c;
    struct lg_arena *arena;
    struct lg_runtime rt;
    bool created, started;
};

static int make_exporter(struct fixture *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    f->rt.telemetry = lg_telemetry_create();
    struct lg_conf_source src = {.text = yaml, .name = "prom.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->arena = lg_arena_create(0);
    f->c.type = &lg_prometheus_exporter;
    f->c.id = "prometheus";
    f->c.rt = &f->rt;
    f->c.conf_node = lg_node_get(f->doc.root, "prometheus");
    f->c.conf = lg_arena_calloc(f->arena, 1, lg_prometheus_exporter.conf_size);
    rc = lg_conf_apply(lg_prometheus_exporter.fields, f->c.conf_node, f->doc.root, f->c.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_prometheus_exporter.create(&f->c, err);
    if (rc != LG_OK)
        return rc;
    f->created = true;
    rc = lg_prometheus_exporter.start(&f->c, err);
    f->started = rc == LG_OK;
    return rc;
}

static void free_exporter(struct fixture *f)
{
    if (f->started)
        lg_prometheus_exporter.shutdown(&f->c, lg_now_mono_ns() + 2000000000LL);
    if (f->created)
        lg_prometheus_exporter.destroy(&f->c);
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

static char *render(struct fixture *f)
{
    size_t len = 0;
    char *t = lg_prometheus_render(&f->c, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    return t;
}

static uint64_t counter(struct fixture *f, const char *name)
{
    return lg_counter_value(lg_telemetry_counter(f->rt.telemetry, name, "", "exporter=\"prometheus\""));
}

/* ---- building metrics batches ---- */

struct mb {
    struct lg_batch *b;
    lg_resource_metrics *rm;
    lg_scope_metrics *sm;
};

static lg_kv *kv(struct lg_arena *a, const char *k, const char *v)
{
    lg_kv *x = lg_arena_alloc(a, sizeof *x);
    lg_any_value *av = lg_arena_alloc(a, sizeof *av);
    opentelemetry__proto__common__v1__key_value__init(x);
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = lg_arena_strdup(a, v);
    x->key = lg_arena_strdup(a, k);
    x->value = av;
    return x;
}

/* attrs: NULL-terminated "key", "value", ... */
static lg_kv **kvs(struct lg_arena *a, const char *const *attrs, size_t *n)
{
    size_t k = 0;
    while (attrs && attrs[2 * k])
        k++;
    lg_kv **out = lg_arena_calloc(a, k + 1, sizeof *out);
    for (size_t i = 0; i < k; i++)
        out[i] = kv(a, attrs[2 * i], attrs[2 * i + 1]);
    *n = k;
    return out;
}

/* A batch with one resource (attributes `res`) and one scope (`scope_name`, may be ""). */
static struct mb mb_new(const char *const *res, const char *scope_name)
{
    struct mb m;
    m.b = lg_batch_create(LG_SIGNAL_METRICS, 0);
    struct lg_arena *a = m.b->arena;
    m.rm = lg_arena_alloc(a, sizeof *m.rm);
    opentelemetry__proto__metrics__v1__resource_metrics__init(m.rm);
    m.rm->resource = lg_arena_alloc(a, sizeof *m.rm->resource);
    opentelemetry__proto__resource__v1__resource__init(m.rm->resource);
    m.rm->resource->attributes = kvs(a, res, &m.rm->resource->n_attributes);
    m.sm = lg_arena_alloc(a, sizeof *m.sm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(m.sm);
    m.sm->scope = lg_arena_alloc(a, sizeof *m.sm->scope);
    opentelemetry__proto__common__v1__instrumentation_scope__init(m.sm->scope);
    m.sm->scope->name = lg_arena_strdup(a, scope_name);
    m.sm->metrics = lg_arena_calloc(a, 32, sizeof(void *));
    m.rm->n_scope_metrics = 1;
    m.rm->scope_metrics = lg_arena_alloc(a, sizeof(void *));
    m.rm->scope_metrics[0] = m.sm;
    m.b->req.metrics->n_resource_metrics = 1;
    m.b->req.metrics->resource_metrics = lg_arena_alloc(a, sizeof(void *));
    m.b->req.metrics->resource_metrics[0] = m.rm;
    return m;
}

static lg_metric *mb_metric(struct mb *m, const char *name, const char *unit, const char *desc)
{
    struct lg_arena *a = m->b->arena;
    lg_metric *mt = lg_arena_alloc(a, sizeof *mt);
    opentelemetry__proto__metrics__v1__metric__init(mt);
    mt->name = lg_arena_strdup(a, name);
    mt->unit = lg_arena_strdup(a, unit);
    mt->description = lg_arena_strdup(a, desc);
    m->sm->metrics[m->sm->n_metrics++] = mt;
    return mt;
}

static lg_number_dp *number_point(struct lg_arena *a, const char *const *attrs, double v, uint64_t t)
{
    lg_number_dp *p = lg_arena_alloc(a, sizeof *p);
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    p->attributes = kvs(a, attrs, &p->n_attributes);
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    p->as_double = v;
    p->time_unix_nano = t;
    return p;
}

#define CUMULATIVE OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define DELTA OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA

static void mb_sum(struct mb *m, const char *name, const char *unit, bool monotonic, int temporality,
                   const char *const *attrs, double v, uint64_t t)
{
    struct lg_arena *a = m->b->arena;
    lg_metric *mt = mb_metric(m, name, unit, "");
    Opentelemetry__Proto__Metrics__V1__Sum *s = lg_arena_alloc(a, sizeof *s);
    opentelemetry__proto__metrics__v1__sum__init(s);
    s->is_monotonic = monotonic;
    s->aggregation_temporality = temporality;
    s->n_data_points = 1;
    s->data_points = lg_arena_alloc(a, sizeof(void *));
    s->data_points[0] = number_point(a, attrs, v, t);
    mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    mt->sum = s;
}

static void mb_gauge(struct mb *m, const char *name, const char *unit, const char *const *attrs, double v)
{
    struct lg_arena *a = m->b->arena;
    lg_metric *mt = mb_metric(m, name, unit, "");
    Opentelemetry__Proto__Metrics__V1__Gauge *g = lg_arena_alloc(a, sizeof *g);
    opentelemetry__proto__metrics__v1__gauge__init(g);
    g->n_data_points = 1;
    g->data_points = lg_arena_alloc(a, sizeof(void *));
    g->data_points[0] = number_point(a, attrs, v, 0);
    mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    mt->gauge = g;
}

static void mb_histogram(struct mb *m, const char *name, const char *unit, const char *desc, int temporality,
                         const char *const *attrs, const double *bounds, size_t nb, const uint64_t *counts,
                         double sum)
{
    struct lg_arena *a = m->b->arena;
    lg_metric *mt = mb_metric(m, name, unit, desc);
    Opentelemetry__Proto__Metrics__V1__Histogram *h = lg_arena_alloc(a, sizeof *h);
    opentelemetry__proto__metrics__v1__histogram__init(h);
    h->aggregation_temporality = temporality;
    lg_histogram_dp *p = lg_arena_alloc(a, sizeof *p);
    opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
    p->attributes = kvs(a, attrs, &p->n_attributes);
    p->n_explicit_bounds = nb;
    p->explicit_bounds = lg_arena_memdup(a, bounds, nb * sizeof *bounds);
    p->n_bucket_counts = nb + 1;
    p->bucket_counts = lg_arena_memdup(a, counts, (nb + 1) * sizeof *counts);
    for (size_t i = 0; i <= nb; i++)
        p->count += counts[i];
    p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    p->sum = sum;
    h->n_data_points = 1;
    h->data_points = lg_arena_alloc(a, sizeof(void *));
    h->data_points[0] = p;
    mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    mt->histogram = h;
}

static void consume(struct fixture *f, struct mb *m)
{
    m->b->items = lg_batch_count_items(m->b);
    assert_int_equal(lg_prometheus_exporter.consume(&f->c, m->b), LG_OK);
    lg_batch_unref(m->b);
}

#define BASIC "prometheus: {endpoint: \"127.0.0.1:0\"}"
static const char *const NO_ATTRS[] = {NULL};

/* ---- tests ---- */

static void test_cumulative_counter_is_replaced_and_named_with_total(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    const char *attrs[] = {"http.route", "/chat", NULL};
    struct mb m = mb_new(NO_ATTRS, "");
    mb_sum(&m, "http.server.requests", "{request}", true, CUMULATIVE, attrs, 5, 100);
    consume(&f, &m);
    m = mb_new(NO_ATTRS, "");
    mb_sum(&m, "http.server.requests", "{request}", true, CUMULATIVE, attrs, 7, 200);
    consume(&f, &m);
    /* an older point does not roll the counter back */
    m = mb_new(NO_ATTRS, "");
    mb_sum(&m, "http.server.requests", "{request}", true, CUMULATIVE, attrs, 6, 150);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE http_server_requests_total counter\n"
                           "http_server_requests_total{http_route=\"/chat\"} 7\n");
    free(t);
    assert_int_equal(counter(&f, "otelcol_exporter_sent_metric_points"), 3);
    free_exporter(&f);
}

static void test_delta_counter_accumulates(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    for (int i = 1; i <= 3; i++) {
        struct mb m = mb_new(NO_ATTRS, "");
        mb_sum(&m, "network.io", "By", true, DELTA, NO_ATTRS, i * 1.5, (uint64_t)i);
        consume(&f, &m);
    }
    char *t = render(&f);
    assert_string_equal(t, "# TYPE network_io_bytes_total counter\n"
                           "network_io_bytes_total 9\n");
    free(t);
    /* a unit word already in the name is not repeated */
    struct mb m = mb_new(NO_ATTRS, "");
    mb_sum(&m, "bytes.sent", "By", true, DELTA, NO_ATTRS, 1, 1);
    consume(&f, &m);
    t = render(&f);
    assert_non_null(strstr(t, "# TYPE bytes_sent_total counter\nbytes_sent_total 1\n"));
    free(t);
    free_exporter(&f);
}

static void test_gauges_and_non_monotonic_sums_are_replaced(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    struct mb m = mb_new(NO_ATTRS, "");
    mb_gauge(&m, "cpu.utilization", "1", NO_ATTRS, 0.25);
    mb_sum(&m, "queue.size", "{item}", false, CUMULATIVE, NO_ATTRS, 12, 1);
    mb_gauge(&m, "temperature", "Cel", NO_ATTRS, -3.5);
    consume(&f, &m);
    m = mb_new(NO_ATTRS, "");
    mb_gauge(&m, "cpu.utilization", "1", NO_ATTRS, 0.125);
    mb_sum(&m, "queue.size", "{item}", false, CUMULATIVE, NO_ATTRS, 4, 2);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE cpu_utilization_ratio gauge\n"
                           "cpu_utilization_ratio 0.125\n"
                           "# TYPE queue_size gauge\n"
                           "queue_size 4\n"
                           "# TYPE temperature_celsius gauge\n"
                           "temperature_celsius -3.5\n");
    free(t);
    free_exporter(&f);
}

static void test_histogram_renders_cumulative_buckets_sum_count_and_help(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    const double bounds[] = {0.1, 1, 2.5};
    const uint64_t c1[] = {1, 2, 0, 1};
    const char *attrs[] = {"model", "gpt-4o", NULL};
    struct mb m = mb_new(NO_ATTRS, "");
    mb_histogram(&m, "llm.call.duration", "s", "Call duration.\nSecond line \\ here", CUMULATIVE, attrs, bounds, 3, c1, 4.75);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# HELP llm_call_duration_seconds Call duration.\\nSecond line \\\\ here\n"
                           "# TYPE llm_call_duration_seconds histogram\n"
                           "llm_call_duration_seconds_bucket{model=\"gpt-4o\",le=\"0.1\"} 1\n"
                           "llm_call_duration_seconds_bucket{model=\"gpt-4o\",le=\"1\"} 3\n"
                           "llm_call_duration_seconds_bucket{model=\"gpt-4o\",le=\"2.5\"} 3\n"
                           "llm_call_duration_seconds_bucket{model=\"gpt-4o\",le=\"+Inf\"} 4\n"
                           "llm_call_duration_seconds_sum{model=\"gpt-4o\"} 4.75\n"
                           "llm_call_duration_seconds_count{model=\"gpt-4o\"} 4\n");
    free(t);
    /* cumulative: the next point replaces */
    const uint64_t c2[] = {2, 2, 1, 1};
    m = mb_new(NO_ATTRS, "");
    mb_histogram(&m, "llm.call.duration", "s", "Call duration.", CUMULATIVE, attrs, bounds, 3, c2, 6);
    consume(&f, &m);
    t = render(&f);
    assert_non_null(strstr(t, "llm_call_duration_seconds_bucket{model=\"gpt-4o\",le=\"2.5\"} 5\n"));
    assert_non_null(strstr(t, "llm_call_duration_seconds_bucket{model=\"gpt-4o\",le=\"+Inf\"} 6\n"));
    assert_non_null(strstr(t, "llm_call_duration_seconds_sum{model=\"gpt-4o\"} 6\n"));
    free(t);
    free_exporter(&f);
}

static void test_delta_histogram_accumulates(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    const double bounds[] = {10, 100};
    const uint64_t c1[] = {1, 0, 2}, c2[] = {3, 1, 0};
    struct mb m = mb_new(NO_ATTRS, "");
    mb_histogram(&m, "payload", "By", "", DELTA, NO_ATTRS, bounds, 2, c1, 500);
    consume(&f, &m);
    m = mb_new(NO_ATTRS, "");
    mb_histogram(&m, "payload", "By", "", DELTA, NO_ATTRS, bounds, 2, c2, 60.5);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE payload_bytes histogram\n"
                           "payload_bytes_bucket{le=\"10\"} 4\n"
                           "payload_bytes_bucket{le=\"100\"} 5\n"
                           "payload_bytes_bucket{le=\"+Inf\"} 7\n"
                           "payload_bytes_sum 560.5\n"
                           "payload_bytes_count 7\n");
    free(t);
    free_exporter(&f);
}

static void test_labels_are_sanitised_sorted_escaped_and_joined_with_resource_and_const_labels(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f,
                                   "prometheus:\n"
                                   "  endpoint: 127.0.0.1:0\n"
                                   "  namespace: gw\n"
                                   "  const_labels: {region: eu-west, \"team.name\": llm}\n",
                                   &err),
                     LG_OK);
    const char *res[] = {"service.name", "chat", "service.namespace", "shop", "service.instance.id", "pod-1",
                         "host.name", "h1", NULL};
    const char *attrs[] = {"gen_ai.request.model", "gpt-4o", "2xx", "yes", "_private", "p",
                           "text", "say \"hi\"\\\nbye", "empty", "", NULL};
    struct mb m = mb_new(res, "my.lib");
    mb_sum(&m, "llm.calls", "{call}", true, CUMULATIVE, attrs, 3, 1);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE gw_llm_calls_total counter\n"
                           "gw_llm_calls_total{gen_ai_request_model=\"gpt-4o\",instance=\"pod-1\",job=\"shop/chat\","
                           "key_2xx=\"yes\",key_private=\"p\",otel_scope_name=\"my.lib\",region=\"eu-west\","
                           "team_name=\"llm\",text=\"say \\\"hi\\\"\\\\\\nbye\"} 3\n");
    free(t);
    free_exporter(&f);
}

static void test_resource_to_telemetry_conversion_adds_resource_attributes(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f,
                                   "prometheus: {endpoint: \"127.0.0.1:0\", resource_to_telemetry_conversion: {enabled: true}}",
                                   &err),
                     LG_OK);
    const char *res[] = {"service.name", "chat", "deployment.environment", "prod", NULL};
    struct mb m = mb_new(res, "");
    mb_gauge(&m, "up", "", NO_ATTRS, 1);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE up gauge\n"
                           "up{deployment_environment=\"prod\",job=\"chat\",service_name=\"chat\"} 1\n");
    free(t);
    free_exporter(&f);
}

static void test_without_suffixes_names_are_only_sanitised_and_timestamps_can_be_sent(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f,
                                   "prometheus: {endpoint: \"127.0.0.1:0\", add_metric_suffixes: false, send_timestamps: true}",
                                   &err),
                     LG_OK);
    struct mb m = mb_new(NO_ATTRS, "");
    mb_sum(&m, "llm.cost.usd", "{USD}", true, CUMULATIVE, NO_ATTRS, 0.0125, 1700000000123456789ULL);
    mb_sum(&m, "1st.metric", "s", true, CUMULATIVE, NO_ATTRS, 2, 1700000000999000000ULL);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE _1st_metric counter\n"
                           "_1st_metric 2 1700000000999\n"
                           "# TYPE llm_cost_usd counter\n"
                           "llm_cost_usd 0.0125 1700000000123\n");
    free(t);
    free_exporter(&f);
}

static void test_unrepresentable_points_are_counted_not_silently_dropped(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    struct mb m = mb_new(NO_ATTRS, "");
    /* non-monotonic delta sum: no Prometheus equivalent */
    mb_sum(&m, "queue.change", "", false, DELTA, NO_ATTRS, -2, 1);
    /* exponential histogram */
    lg_metric *e = mb_metric(&m, "latency.exp", "s", "");
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *eh = lg_arena_alloc(m.b->arena, sizeof *eh);
    opentelemetry__proto__metrics__v1__exponential_histogram__init(eh);
    lg_exp_histogram_dp *ep = lg_arena_alloc(m.b->arena, sizeof *ep);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(ep);
    eh->n_data_points = 1;
    eh->data_points = lg_arena_alloc(m.b->arena, sizeof(void *));
    eh->data_points[0] = ep;
    e->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    e->exponential_histogram = eh;
    /* a gauge and a counter that both map to "jobs_total": the second type clashes */
    mb_sum(&m, "jobs", "", true, CUMULATIVE, NO_ATTRS, 1, 1);
    mb_gauge(&m, "jobs.total", "", NO_ATTRS, 5);
    mb_gauge(&m, "ok", "", NO_ATTRS, 1);
    consume(&f, &m);
    char *t = render(&f);
    assert_string_equal(t, "# TYPE jobs_total counter\n"
                           "jobs_total 1\n"
                           "# TYPE ok gauge\n"
                           "ok 1\n");
    free(t);
    /* jobs.total as a gauge keeps its name: jobs_total — clash with the counter */
    assert_int_equal(counter(&f, "otelcol_exporter_send_failed_metric_points"), 3);
    assert_int_equal(counter(&f, "otelcol_exporter_sent_metric_points"), 2);
    free_exporter(&f);
}

static void test_series_expire_after_metric_expiration(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, "prometheus: {endpoint: \"127.0.0.1:0\", metric_expiration: 100ms}", &err), LG_OK);
    struct mb m = mb_new(NO_ATTRS, "");
    mb_gauge(&m, "old", "", NO_ATTRS, 1);
    consume(&f, &m);
    char *t = render(&f);
    assert_non_null(strstr(t, "old 1\n"));
    free(t);
    /* bounded wait for the outcome; the series must go and the text must become empty */
    bool gone = false;
    for (int i = 0; i < 500 && !gone; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        t = render(&f);
        gone = t[0] == '\0';
        free(t);
    }
    assert_true(gone);
    /* it comes back when it is reported again */
    m = mb_new(NO_ATTRS, "");
    mb_gauge(&m, "old", "", NO_ATTRS, 2);
    consume(&f, &m);
    t = render(&f);
    assert_string_equal(t, "# TYPE old gauge\nold 2\n");
    free(t);
    free_exporter(&f);
}

static void test_config_errors_name_the_yaml_path(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, "prometheus: {namespace: x}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "prom.yaml:1:"));
    assert_non_null(strstr(err.msg, "prometheus: endpoint is required"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, "prometheus: {endpoint: \"127.0.0.1:0\", const_labels: [a]}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "prometheus.const_labels"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, "prometheus: {endpoint: \"nope\"}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "prometheus.endpoint"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, "prometheus: {endpoint: \"127.0.0.1:0\", metric_expiration: soon}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "prometheus.metric_expiration"));
    free_exporter(&f);
    /* Collector keys it accepts */
    assert_int_equal(make_exporter(&f, "prometheus: {endpoint: \"127.0.0.1:0\", enable_open_metrics: true}", &err), LG_OK);
    free_exporter(&f);
}

/* ---- over HTTP ---- */

struct body {
    char buf[8192];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t k = size * n, room = sizeof b->buf - 1 - b->len, c = k < room ? k : room;
    memcpy(b->buf + b->len, p, c);
    b->len += c;
    b->buf[b->len] = '\0';
    return k;
}

static long http_request(const char *method, int port, const char *path, struct body *b, char *ctype, size_t ctlen)
{
    memset(b, 0, sizeof *b);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        char *ct = NULL;
        curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
        if (ctype)
            snprintf(ctype, ctlen, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(h);
    return status;
}

static long http_get(int port, const char *path, struct body *b, char *ctype, size_t ctlen)
{
    return http_request("GET", port, path, b, ctype, ctlen);
}

static void test_get_metrics_serves_the_text_format_over_http(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, BASIC, &err), LG_OK);
    int port = lg_prometheus_port(&f.c);
    assert_true(port > 0);
    struct mb m = mb_new(NO_ATTRS, "");
    mb_sum(&m, "llm.tokens.total", "{token}", true, CUMULATIVE, NO_ATTRS, 1234, 1);
    consume(&f, &m);
    struct body b;
    char ct[128];
    assert_int_equal(http_get(port, "/metrics", &b, ct, sizeof ct), 200);
    assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
    assert_string_equal(b.buf, "# TYPE llm_tokens_total counter\nllm_tokens_total 1234\n");
    assert_int_equal(http_get(port, "/metrics?x=1", &b, NULL, 0), 200);
    assert_int_equal(http_get(port, "/other", &b, NULL, 0), 404);
    assert_int_equal(http_get(port, "/metricsx", &b, NULL, 0), 404);
    assert_int_equal(http_request("POST", port, "/metrics", &b, NULL, 0), 405);
    free_exporter(&f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cumulative_counter_is_replaced_and_named_with_total),
        cmocka_unit_test(test_delta_counter_accumulates),
        cmocka_unit_test(test_gauges_and_non_monotonic_sums_are_replaced),
        cmocka_unit_test(test_histogram_renders_cumulative_buckets_sum_count_and_help),
        cmocka_unit_test(test_delta_histogram_accumulates),
        cmocka_unit_test(test_labels_are_sanitised_sorted_escaped_and_joined_with_resource_and_const_labels),
        cmocka_unit_test(test_resource_to_telemetry_conversion_adds_resource_attributes),
        cmocka_unit_test(test_without_suffixes_names_are_only_sanitised_and_timestamps_can_be_sent),
        cmocka_unit_test(test_unrepresentable_points_are_counted_not_silently_dropped),
        cmocka_unit_test(test_series_expire_after_metric_expiration),
        cmocka_unit_test(test_config_errors_name_the_yaml_path),
        cmocka_unit_test(test_get_metrics_serves_the_text_format_over_http),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
