/* exporters/debug.c — the `debug` exporter: writes what it receives to the log (stderr),
 * with the Collector's verbosity levels:
 *   basic    one summary line per batch;
 *   normal   one line per span / data point / log record;
 *   detailed every field, in the Collector's "-> key: Type(value)" layout.
 * Output is rate limited like the Collector's (sampling_initial lines per second, then
 * every sampling_thereafter-th; 0/0 prints nothing, which benchmarks use). */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/component.h"
#include "../core/log.h"
#include "../core/runtime.h"

enum verbosity { V_BASIC, V_NORMAL, V_DETAILED };

struct debug_conf {
    enum verbosity verbosity;
    int64_t sampling_initial;
    int64_t sampling_thereafter;
};

static int parse_verbosity(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    (void)a;
    enum verbosity *v = dst;
    if (n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "expected basic, normal or detailed");
    if (strcmp(n->scalar, "basic") == 0)
        *v = V_BASIC;
    else if (strcmp(n->scalar, "normal") == 0)
        *v = V_NORMAL;
    else if (strcmp(n->scalar, "detailed") == 0)
        *v = V_DETAILED;
    else
        return lg_conf_error(err, n, "expected basic, normal or detailed, got \"%s\"", n->scalar);
    return LG_OK;
}

static const struct lg_conf_field debug_fields[] = {
    LG_CONF_CUSTOM("verbosity", "basic", struct debug_conf, verbosity, parse_verbosity,
                   "basic | normal | detailed"),
    LG_CONF_INT("sampling_initial", "2", struct debug_conf, sampling_initial, 0, 1e9,
                "batches printed per second before sampling starts"),
    LG_CONF_INT("sampling_thereafter", "1", struct debug_conf, sampling_thereafter, 0, 1e9,
                "after that, print every Nth batch (0: none)"),
    LG_CONF_ACCEPTED("use_internal_logger", "accepted; output always goes to the gateway's log"),
    LG_CONF_END,
};

struct debug_state {
    struct debug_conf *conf;
    pthread_mutex_t lock;
    int64_t window_start_ns;
    int64_t window_count;
    struct lg_counter *sent[LG_SIGNAL_COUNT];
};

/* ---- a growable text buffer ---- */

struct text {
    char *p;
    size_t len, cap;
    bool oom;
};

static void tx(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx(struct text *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if (t->p && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t nc = (t->cap + (size_t)n + 1) * 2;
        char *np = realloc(t->p, nc);
        if (np == NULL) {
            t->oom = true;
            return;
        }
        t->p = np;
        t->cap = nc;
    }
}

static void tx_hex(struct text *t, ProtobufCBinaryData b)
{
    for (size_t i = 0; i < b.len; i++)
        tx(t, "%02x", b.data[i]);
}

static void tx_time(struct text *t, uint64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000ULL);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    tx(t, "%s.%09" PRIu64 " +0000 UTC", buf, (uint64_t)(ns % 1000000000ULL));
}

static void tx_value(struct text *t, const lg_any_value *v);

static void tx_value_inner(struct text *t, const lg_any_value *v)
{
    if (v == NULL) {
        tx(t, "Empty()");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        tx(t, "%s", v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        tx(t, "%s", v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        tx(t, "%" PRId64, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        tx(t, "%.17g", v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        tx_hex(t, v->bytes_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        tx(t, "[");
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            tx(t, "%s", i ? ", " : "");
            tx_value(t, v->array_value->values[i]);
        }
        tx(t, "]");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        tx(t, "{");
        for (size_t i = 0; v->kvlist_value && i < v->kvlist_value->n_values; i++) {
            tx(t, "%s%s: ", i ? ", " : "", v->kvlist_value->values[i]->key);
            tx_value(t, v->kvlist_value->values[i]->value);
        }
        tx(t, "}");
        break;
    default:
        break;
    }
}

static const char *value_type(const lg_any_value *v)
{
    if (v == NULL)
        return "Empty";
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: return "Str";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: return "Bool";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: return "Int";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE: return "Double";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: return "Bytes";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: return "Slice";
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: return "Map";
    default: return "Empty";
    }
}

static void tx_value(struct text *t, const lg_any_value *v)
{
    tx(t, "%s(", value_type(v));
    tx_value_inner(t, v);
    tx(t, ")");
}

static void tx_attrs(struct text *t, const char *indent, const char *title, lg_kv **kv, size_t n)
{
    if (n == 0)
        return;
    tx(t, "%s%s:\n", indent, title);
    for (size_t i = 0; i < n; i++) {
        tx(t, "%s     -> %s: ", indent, kv[i]->key);
        tx_value(t, kv[i]->value);
        tx(t, "\n");
    }
}

static void tx_resource(struct text *t, size_t i, const char *kind, const lg_resource *r, const char *schema)
{
    tx(t, "%s #%zu\n", kind, i);
    tx(t, "Resource SchemaURL: %s\n", schema ? schema : "");
    if (r)
        tx_attrs(t, "", "Resource attributes", r->attributes, r->n_attributes);
}

static void tx_scope(struct text *t, size_t j, const char *kind, const lg_scope *s, const char *schema)
{
    tx(t, "%s #%zu\n", kind, j);
    tx(t, "ScopeSpans SchemaURL: %s\n", schema ? schema : "");
    tx(t, "InstrumentationScope %s %s\n", s && s->name ? s->name : "", s && s->version ? s->version : "");
    if (s)
        tx_attrs(t, "", "InstrumentationScope attributes", s->attributes, s->n_attributes);
}

static const char *const span_kinds[] = {"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"};
static const char *const status_codes[] = {"Unset", "Ok", "Error"};

static void dump_traces(struct text *t, const lg_traces_req *r, enum verbosity v)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        const lg_resource_spans *rs = r->resource_spans[i];
        if (v == V_DETAILED)
            tx_resource(t, i, "ResourceSpans", rs->resource, rs->schema_url);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const lg_scope_spans *ss = rs->scope_spans[j];
            if (v == V_DETAILED)
                tx_scope(t, j, "ScopeSpans", ss->scope, ss->schema_url);
            for (size_t k = 0; k < ss->n_spans; k++) {
                const lg_span *s = ss->spans[k];
                if (v == V_NORMAL) {
                    tx(t, "%s ", s->name);
                    tx_hex(t, s->trace_id);
                    tx(t, " ");
                    tx_hex(t, s->span_id);
                    tx(t, "\n");
                    continue;
                }
                unsigned kind = (unsigned)s->kind < 6 ? (unsigned)s->kind : 0;
                tx(t, "Span #%zu\n    Trace ID       : ", k);
                tx_hex(t, s->trace_id);
                tx(t, "\n    Parent ID      : ");
                tx_hex(t, s->parent_span_id);
                tx(t, "\n    ID             : ");
                tx_hex(t, s->span_id);
                tx(t, "\n    Name           : %s\n    Kind           : %s\n    Start time     : ", s->name, span_kinds[kind]);
                tx_time(t, s->start_time_unix_nano);
                tx(t, "\n    End time       : ");
                tx_time(t, s->end_time_unix_nano);
                unsigned code = s->status && (unsigned)s->status->code < 3 ? (unsigned)s->status->code : 0;
                tx(t, "\n    Status code    : %s\n    Status message : %s\n", status_codes[code],
                   s->status && s->status->message ? s->status->message : "");
                if (s->trace_state && s->trace_state[0])
                    tx(t, "    TraceState     : %s\n", s->trace_state);
                tx_attrs(t, "", "Attributes", s->attributes, s->n_attributes);
                if (s->n_events)
                    tx(t, "Events:\n");
                for (size_t e = 0; e < s->n_events; e++) {
                    const lg_span_event *ev = s->events[e];
                    tx(t, "SpanEvent #%zu\n     -> Name: %s\n     -> Timestamp: ", e, ev->name);
                    tx_time(t, ev->time_unix_nano);
                    tx(t, "\n     -> DroppedAttributesCount: %u\n", ev->dropped_attributes_count);
                    tx_attrs(t, "    ", "-> Attributes", ev->attributes, ev->n_attributes);
                }
                if (s->n_links)
                    tx(t, "Links:\n");
                for (size_t l = 0; l < s->n_links; l++) {
                    const lg_span_link *ln = s->links[l];
                    tx(t, "SpanLink #%zu\n     -> Trace ID: ", l);
                    tx_hex(t, ln->trace_id);
                    tx(t, "\n     -> ID: ");
                    tx_hex(t, ln->span_id);
                    tx(t, "\n     -> TraceState: %s\n", ln->trace_state ? ln->trace_state : "");
                    tx_attrs(t, "    ", "-> Attributes", ln->attributes, ln->n_attributes);
                }
            }
        }
    }
}

static void dump_number_point(struct text *t, size_t p, const lg_number_dp *dp)
{
    tx(t, "NumberDataPoints #%zu\n", p);
    tx_attrs(t, "", "Data point attributes", dp->attributes, dp->n_attributes);
    tx(t, "StartTimestamp: ");
    tx_time(t, dp->start_time_unix_nano);
    tx(t, "\nTimestamp: ");
    tx_time(t, dp->time_unix_nano);
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        tx(t, "\nValue: %" PRId64 "\n", dp->as_int);
    else
        tx(t, "\nValue: %.17g\n", dp->as_double);
}

static void dump_metrics(struct text *t, const lg_metrics_req *r, enum verbosity v)
{
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const lg_resource_metrics *rm = r->resource_metrics[i];
        if (v == V_DETAILED)
            tx_resource(t, i, "ResourceMetrics", rm->resource, rm->schema_url);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const lg_scope_metrics *sm = rm->scope_metrics[j];
            if (v == V_DETAILED)
                tx_scope(t, j, "ScopeMetrics", sm->scope, sm->schema_url);
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const lg_metric *m = sm->metrics[k];
                if (v == V_NORMAL) {
                    tx(t, "%s %zu data points\n", m->name, lg_metric_point_count(m));
                    continue;
                }
                tx(t, "Metric #%zu\nDescriptor:\n     -> Name: %s\n     -> Description: %s\n     -> Unit: %s\n",
                   k, m->name, m->description ? m->description : "", m->unit ? m->unit : "");
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    tx(t, "     -> DataType: Gauge\n");
                    for (size_t p = 0; p < m->gauge->n_data_points; p++)
                        dump_number_point(t, p, m->gauge->data_points[p]);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    tx(t, "     -> DataType: Sum\n     -> IsMonotonic: %s\n     -> AggregationTemporality: %d\n",
                       m->sum->is_monotonic ? "true" : "false", (int)m->sum->aggregation_temporality);
                    for (size_t p = 0; p < m->sum->n_data_points; p++)
                        dump_number_point(t, p, m->sum->data_points[p]);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    tx(t, "     -> DataType: Histogram\n     -> AggregationTemporality: %d\n",
                       (int)m->histogram->aggregation_temporality);
                    for (size_t p = 0; p < m->histogram->n_data_points; p++) {
                        const lg_histogram_dp *dp = m->histogram->data_points[p];
                        tx(t, "HistogramDataPoints #%zu\n", p);
                        tx_attrs(t, "", "Data point attributes", dp->attributes, dp->n_attributes);
                        tx(t, "Count: %" PRIu64 "\nSum: %.17g\n", dp->count, dp->sum);
                        for (size_t b = 0; b < dp->n_explicit_bounds; b++)
                            tx(t, "ExplicitBounds #%zu: %.17g\n", b, dp->explicit_bounds[b]);
                        for (size_t b = 0; b < dp->n_bucket_counts; b++)
                            tx(t, "Buckets #%zu, Count: %" PRIu64 "\n", b, dp->bucket_counts[b]);
                    }
                    break;
                default:
                    tx(t, "     -> DataType: other (%zu data points)\n", lg_metric_point_count(m));
                }
            }
        }
    }
}

static void dump_logs(struct text *t, const lg_logs_req *r, enum verbosity v)
{
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        const lg_resource_logs *rl = r->resource_logs[i];
        if (v == V_DETAILED)
            tx_resource(t, i, "ResourceLog", rl->resource, rl->schema_url);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const lg_scope_logs *sl = rl->scope_logs[j];
            if (v == V_DETAILED)
                tx_scope(t, j, "ScopeLogs", sl->scope, sl->schema_url);
            for (size_t k = 0; k < sl->n_log_records; k++) {
                const lg_log_record *lr = sl->log_records[k];
                if (v == V_NORMAL) {
                    tx_value_inner(t, lr->body);
                    tx(t, "\n");
                    continue;
                }
                tx(t, "LogRecord #%zu\nObservedTimestamp: ", k);
                tx_time(t, lr->observed_time_unix_nano);
                tx(t, "\nTimestamp: ");
                tx_time(t, lr->time_unix_nano);
                tx(t, "\nSeverityText: %s\nSeverityNumber: %d\nBody: ", lr->severity_text ? lr->severity_text : "",
                   (int)lr->severity_number);
                tx_value(t, lr->body);
                tx(t, "\n");
                tx_attrs(t, "", "Attributes", lr->attributes, lr->n_attributes);
                tx(t, "Trace ID: ");
                tx_hex(t, lr->trace_id);
                tx(t, "\nSpan ID: ");
                tx_hex(t, lr->span_id);
                tx(t, "\nFlags: %u\n", lr->flags);
            }
        }
    }
}

/* zap-style sampling: the first `initial` batches each second, then every `thereafter`-th. */
static bool sample(struct debug_state *st)
{
    int64_t now = lg_now_mono_ns();
    pthread_mutex_lock(&st->lock);
    if (now - st->window_start_ns >= 1000000000LL) {
        st->window_start_ns = now;
        st->window_count = 0;
    }
    int64_t n = ++st->window_count;
    pthread_mutex_unlock(&st->lock);
    if (n <= st->conf->sampling_initial)
        return true;
    return st->conf->sampling_thereafter > 0 && (n - st->conf->sampling_initial) % st->conf->sampling_thereafter == 0;
}

static int debug_consume(struct lg_component *c, struct lg_batch *b)
{
    struct debug_state *st = c->state;
    lg_counter_add(st->sent[b->signal], b->items);
    if (!sample(st))
        return LG_OK;
    static const char *const kinds[] = {"TracesExporter", "MetricsExporter", "LogsExporter"};
    static const char *const res_noun[] = {"resource spans", "resource metrics", "resource logs"};
    size_t nres = b->signal == LG_SIGNAL_TRACES    ? b->req.traces->n_resource_spans
                  : b->signal == LG_SIGNAL_METRICS ? b->req.metrics->n_resource_metrics
                                                   : b->req.logs->n_resource_logs;
    lg_info(c->id, "%s {\"%s\": %zu, \"%s\": %zu}", kinds[b->signal], res_noun[b->signal], nres,
            lg_signal_item_noun(b->signal), b->items);
    if (st->conf->verbosity == V_BASIC)
        return LG_OK;
    struct text t = {0};
    if (b->signal == LG_SIGNAL_TRACES)
        dump_traces(&t, b->req.traces, st->conf->verbosity);
    else if (b->signal == LG_SIGNAL_METRICS)
        dump_metrics(&t, b->req.metrics, st->conf->verbosity);
    else
        dump_logs(&t, b->req.logs, st->conf->verbosity);
    if (!t.oom && t.p)
        lg_log_write_raw(t.p, t.len);
    free(t.p);
    return LG_OK;
}

static int debug_create(struct lg_component *c, struct lg_err *err)
{
    struct debug_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->conf = c->conf;
    pthread_mutex_init(&st->lock, NULL);
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", c->id);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        char name[96];
        snprintf(name, sizeof name, "otelcol_exporter_sent_%s", lg_signal_item_noun((enum lg_signal)s));
        st->sent[s] = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, name,
                                           "Number of items successfully sent to destination.", labels);
    }
    c->state = st;
    return LG_OK;
}

static void debug_destroy(struct lg_component *c)
{
    struct debug_state *st = c->state;
    if (st == NULL)
        return;
    pthread_mutex_destroy(&st->lock);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_debug_exporter = {
    .type = "debug",
    .aliases = (const char *const[]){"logging", NULL},
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "writes received telemetry to the log (basic | normal | detailed)",
    .conf_size = sizeof(struct debug_conf),
    .fields = debug_fields,
    .create = debug_create,
    .consume = debug_consume,
    .destroy = debug_destroy,
};
