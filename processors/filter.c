/* processors/filter.c — the Collector's `filter` processor: drops spans, span events, log
 * records, metrics and metric data points that match any of the configured OTTL conditions
 * (processors/ottl.h), before sampling or export.
 *
 * Config as opentelemetry-collector-contrib/processor/filterprocessor (docs/processors/filter.md):
 *   error_mode: propagate (default) | ignore | silent
 *   traces.span, traces.spanevent, logs.log_record, metrics.metric, metrics.datapoint:
 *     lists of conditions; an item matching ANY of them is dropped.
 * As in the Collector, a dropped span's events (a dropped metric's points) are not looked at;
 * a span whose events are all dropped stays; a metric whose points are all dropped goes.
 * Scopes and resources left empty are removed; a batch left empty is not forwarded (and is
 * accepted, as the Collector's ErrSkipProcessingData). The deprecated include/exclude
 * match_type form is refused with a pointer to the OTTL form.
 *
 * error_mode: an evaluation error (e.g. Len of an int) refuses the whole batch in propagate
 * mode (counted in otelcol_processor_refused_items); ignore logs it and treats the condition
 * as false; silent does the same without logging.
 *
 * Batches are read-only: when something is dropped the processor forwards a copy-on-write
 * clone (lg_batch_clone_shallow) with compacted arrays, and copies of the spans / metrics
 * whose events / points changed. Dropped items are counted per processor in
 * otelcol_processor_filter_{spans,logs,datapoints}_filtered{filter="<id>"} (the Collector's
 * processor_filter_*.filtered, in the Prometheus spelling used by every llmgate metric) and
 * span events in llmgate_processor_filter_span_events_filtered.
 *
 * Owns: struct filter_state (c->state) and the compiled conditions in it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "attr_actions.h"
#include "ottl.h"

/* ------------------------------------------------------------------ config ---- */

struct traces_conf {
    const struct lg_node *span, *spanevent;
};
struct metrics_conf {
    const struct lg_node *metric, *datapoint, *include, *exclude;
};
struct logs_conf {
    const struct lg_node *log_record, *include, *exclude;
};

struct filter_conf {
    const char *error_mode;
    struct traces_conf traces;
    struct metrics_conf metrics;
    struct logs_conf logs;
    const struct lg_node *spans; /* legacy */
};

static int parse_node_ref(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    (void)a;
    (void)err;
    *(const struct lg_node **)dst = n;
    return LG_OK;
}

static const struct lg_conf_field traces_fields[] = {
    LG_CONF_CUSTOM("span", NULL, struct traces_conf, span, parse_node_ref,
                   "OTTL conditions (span context); a span matching any is dropped"),
    LG_CONF_CUSTOM("spanevent", NULL, struct traces_conf, spanevent, parse_node_ref,
                   "OTTL conditions (spanevent context); a span event matching any is dropped"),
    LG_CONF_END,
};

static const struct lg_conf_field metrics_fields[] = {
    LG_CONF_CUSTOM("metric", NULL, struct metrics_conf, metric, parse_node_ref,
                   "OTTL conditions (metric context); a metric matching any is dropped"),
    LG_CONF_CUSTOM("datapoint", NULL, struct metrics_conf, datapoint, parse_node_ref,
                   "OTTL conditions (datapoint context); a data point matching any is dropped"),
    LG_CONF_CUSTOM("include", NULL, struct metrics_conf, include, parse_node_ref,
                   "deprecated: keep only metrics matching match_type strict|regexp, metric_names, resource_attributes"),
    LG_CONF_CUSTOM("exclude", NULL, struct metrics_conf, exclude, parse_node_ref,
                   "deprecated: drop metrics matching (same keys as include)"),
    LG_CONF_END,
};

static const struct lg_conf_field logs_fields[] = {
    LG_CONF_CUSTOM("log_record", NULL, struct logs_conf, log_record, parse_node_ref,
                   "OTTL conditions (log context); a log record matching any is dropped"),
    LG_CONF_CUSTOM("include", NULL, struct logs_conf, include, parse_node_ref,
                   "deprecated: keep only log records matching match_type strict|regexp, bodies, severity_texts, severity_number, record_attributes, resource_attributes"),
    LG_CONF_CUSTOM("exclude", NULL, struct logs_conf, exclude, parse_node_ref,
                   "deprecated: drop log records matching (same keys as include)"),
    LG_CONF_END,
};

static const struct lg_conf_field filter_fields[] = {
    LG_CONF_STRING("error_mode", "propagate", struct filter_conf, error_mode,
                   "what an evaluation error does: propagate (refuse the batch), ignore (log; condition is false) or silent"),
    LG_CONF_SECTION("traces", struct filter_conf, traces, traces_fields, "span and spanevent conditions"),
    LG_CONF_SECTION("metrics", struct filter_conf, metrics, metrics_fields, "metric and datapoint conditions"),
    LG_CONF_SECTION("logs", struct filter_conf, logs, logs_fields, "log_record conditions"),
    LG_CONF_CUSTOM("spans", NULL, struct filter_conf, spans, parse_node_ref,
                   "deprecated include / exclude (match_type strict|regexp, services, span_names, span_kinds, attributes, resources, libraries)"),
    LG_CONF_END,
};

/* ------------------------------------------------------------------ state ---- */

enum err_mode { EM_PROPAGATE, EM_IGNORE, EM_SILENT };

struct conds {
    struct lg_ottl_cond **v;
    const char **text;
    size_t n;
};

enum { C_SPAN, C_EVENT, C_LOG, C_METRIC, C_DP, C_N };

struct filter_state {
    enum err_mode mode;
    struct conds c[C_N];
    char *legacy_text[C_N]; /* conditions translated from include/exclude (malloc'd) */
    const char *id;
    struct lg_counter *spans_filtered, *events_filtered, *logs_filtered, *dps_filtered;
    struct lg_counter *refused[LG_SIGNAL_COUNT];
};

/* One consume call's evaluation state. */
struct run {
    struct filter_state *st;
    struct lg_ottl_scratch scratch;
    int err;        /* propagate: the first evaluation error */
    bool logged;    /* ignore: one warning per batch is enough */
};

/* Whether any of the list's conditions is true for it. Errors per error_mode. */
static bool matches(struct run *r, const struct conds *cl, const struct lg_ottl_item *it)
{
    for (size_t i = 0; i < cl->n; i++) {
        int rc = lg_ottl_eval(cl->v[i], it, &r->scratch);
        if (rc == 1)
            return true;
        if (rc < 0) {
            if (r->st->mode == EM_PROPAGATE || rc == LG_ENOMEM) {
                if (r->err == 0) {
                    r->err = rc;
                    lg_error(r->st->id, "failed to evaluate condition \"%s\": %s", cl->text[i],
                             rc == LG_ENOMEM ? "out of memory" : r->scratch.err);
                }
                return false;
            }
            if (r->st->mode == EM_IGNORE && !r->logged) {
                r->logged = true;
                lg_warn(r->st->id, "failed evaluating condition \"%s\" (treated as false): %s", cl->text[i],
                        r->scratch.err);
            }
        }
    }
    return false;
}

/* ------------------------------------------------------------------ forwarding ---- */

/* The original when nothing changed, nothing when everything was dropped, else the
 * pruned clone (core/component.h). */
static int forward(struct lg_component *c, enum lg_signal sig, struct lg_batch *b, struct lg_batch *nb)
{
    return lg_fanout_consume_pruned(&c->next[sig], b, nb);
}

static int refuse(struct run *r, enum lg_signal sig, struct lg_batch *b, struct lg_batch *nb, int rc)
{
    lg_batch_unref(nb);
    lg_counter_add(r->st->refused[sig], b->items);
    if (rc == LG_ENOMEM && r->err == 0)
        lg_error(r->st->id, "out of memory filtering; refusing %zu items", b->items);
    lg_ottl_scratch_free(&r->scratch);
    return rc == LG_ENOMEM ? LG_ENOMEM : LG_EINVAL;
}

/* ------------------------------------------------------------------ traces ---- */

/* Index of the span's first event matching a spanevent condition; n_events when none. */
static size_t first_event_match(struct run *r, const lg_span *span, struct lg_ottl_item *it)
{
    for (size_t e = 0; e < span->n_events; e++) {
        it->event = span->events[e];
        if (matches(r, &r->st->c[C_EVENT], it) || r->err)
            return e;
    }
    return span->n_events;
}

/* A copy of span (in arena a) without event `first` and the later events that match. */
static lg_span *span_without_events(struct run *r, const lg_span *span, struct lg_ottl_item *it, size_t first,
                                    struct lg_arena *a, size_t *dropped)
{
    lg_span *copy = lg_arena_memdup(a, span, sizeof *copy);
    lg_span_event **evs = lg_arena_calloc(a, span->n_events, sizeof *evs);
    if (copy == NULL || evs == NULL)
        return NULL;
    size_t w = 0;
    for (size_t e = 0; e < first; e++)
        evs[w++] = span->events[e];
    *dropped = 1;
    for (size_t e = first + 1; e < span->n_events && !r->err; e++) {
        it->event = span->events[e];
        if (matches(r, &r->st->c[C_EVENT], it))
            (*dropped)++;
        else
            evs[w++] = span->events[e];
    }
    copy->events = evs;
    copy->n_events = w;
    return copy;
}

static int consume_traces(struct lg_component *c, struct run *r, struct lg_batch *b)
{
    const struct filter_state *st = r->st;
    const lg_traces_req *req = b->req.traces;
    struct lg_batch *nb = NULL;
    uint64_t spans_dropped = 0, events_dropped = 0;
    for (size_t ri = 0; ri < req->n_resource_spans; ri++) {
        const lg_resource_spans *rs = req->resource_spans[ri];
        for (size_t si = 0; si < rs->n_scope_spans; si++) {
            const lg_scope_spans *ss = rs->scope_spans[si];
            lg_scope_spans *nss = NULL;
            size_t w = 0;
            for (size_t i = 0; i < ss->n_spans; i++) {
                lg_span *span = ss->spans[i];
                struct lg_ottl_item it = {.resource = rs->resource, .scope = ss->scope, .span = span};
                bool drop = st->c[C_SPAN].n && matches(r, &st->c[C_SPAN], &it);
                if (r->err)
                    return refuse(r, LG_SIGNAL_TRACES, b, nb, r->err);
                lg_span *changed = NULL;
                if (!drop && st->c[C_EVENT].n && span->n_events) {
                    size_t first = first_event_match(r, span, &it);
                    if (r->err)
                        return refuse(r, LG_SIGNAL_TRACES, b, nb, r->err);
                    if (first < span->n_events) {
                        if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                            return refuse(r, LG_SIGNAL_TRACES, b, nb, LG_ENOMEM);
                        size_t nd = 0;
                        changed = span_without_events(r, span, &it, first, nb->arena, &nd);
                        if (r->err)
                            return refuse(r, LG_SIGNAL_TRACES, b, nb, r->err);
                        if (changed == NULL)
                            return refuse(r, LG_SIGNAL_TRACES, b, nb, LG_ENOMEM);
                        events_dropped += nd;
                    }
                }
                if (!drop && changed == NULL) {
                    if (nss)
                        nss->spans[w] = span;
                    w++;
                    continue;
                }
                if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                    return refuse(r, LG_SIGNAL_TRACES, b, nb, LG_ENOMEM);
                nss = nb->req.traces->resource_spans[ri]->scope_spans[si];
                if (drop) {
                    spans_dropped++;
                    continue;
                }
                nss->spans[w++] = changed;
            }
            if (nss)
                nss->n_spans = w;
        }
    }
    lg_counter_add(st->spans_filtered, spans_dropped);
    lg_counter_add(st->events_filtered, events_dropped);
    lg_ottl_scratch_free(&r->scratch);
    return forward(c, LG_SIGNAL_TRACES, b, nb);
}

/* ------------------------------------------------------------------ logs ---- */

static int consume_logs(struct lg_component *c, struct run *r, struct lg_batch *b)
{
    const struct filter_state *st = r->st;
    const lg_logs_req *req = b->req.logs;
    struct lg_batch *nb = NULL;
    uint64_t dropped = 0;
    for (size_t ri = 0; ri < req->n_resource_logs; ri++) {
        const lg_resource_logs *rl = req->resource_logs[ri];
        for (size_t si = 0; si < rl->n_scope_logs; si++) {
            const lg_scope_logs *sl = rl->scope_logs[si];
            lg_scope_logs *nsl = NULL;
            size_t w = 0;
            for (size_t i = 0; i < sl->n_log_records; i++) {
                lg_log_record *l = sl->log_records[i];
                struct lg_ottl_item it = {.resource = rl->resource, .scope = sl->scope, .log = l};
                bool drop = matches(r, &st->c[C_LOG], &it);
                if (r->err)
                    return refuse(r, LG_SIGNAL_LOGS, b, nb, r->err);
                if (!drop) {
                    if (nsl)
                        nsl->log_records[w] = l;
                    w++;
                    continue;
                }
                if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                    return refuse(r, LG_SIGNAL_LOGS, b, nb, LG_ENOMEM);
                nsl = nb->req.logs->resource_logs[ri]->scope_logs[si];
                dropped++;
            }
            if (nsl)
                nsl->n_log_records = w;
        }
    }
    lg_counter_add(st->logs_filtered, dropped);
    lg_ottl_scratch_free(&r->scratch);
    return forward(c, LG_SIGNAL_LOGS, b, nb);
}

/* ------------------------------------------------------------------ metrics ---- */

#define MD(x) OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##x

/* The metric's point array, its length and kind (NULL when it has no data). */
static void **metric_points(const lg_metric *m, size_t *n, enum lg_ottl_dp_kind *kind)
{
    *n = 0;
    *kind = LG_OTTL_DP_NUMBER;
    switch (m->data_case) {
    case MD(GAUGE):
        if (!m->gauge)
            return NULL;
        *n = m->gauge->n_data_points;
        return (void **)m->gauge->data_points;
    case MD(SUM):
        if (!m->sum)
            return NULL;
        *n = m->sum->n_data_points;
        return (void **)m->sum->data_points;
    case MD(HISTOGRAM):
        if (!m->histogram)
            return NULL;
        *kind = LG_OTTL_DP_HISTOGRAM;
        *n = m->histogram->n_data_points;
        return (void **)m->histogram->data_points;
    case MD(EXPONENTIAL_HISTOGRAM):
        if (!m->exponential_histogram)
            return NULL;
        *kind = LG_OTTL_DP_EXP_HISTOGRAM;
        *n = m->exponential_histogram->n_data_points;
        return (void **)m->exponential_histogram->data_points;
    case MD(SUMMARY):
        if (!m->summary)
            return NULL;
        *kind = LG_OTTL_DP_SUMMARY;
        *n = m->summary->n_data_points;
        return (void **)m->summary->data_points;
    default:
        return NULL;
    }
}

/* A copy of metric m (and of its data struct) in arena a, with `pts` / n as its points. */
static lg_metric *metric_with_points(struct lg_arena *a, const lg_metric *m, void **pts, size_t n)
{
    lg_metric *copy = lg_arena_memdup(a, m, sizeof *copy);
    if (copy == NULL)
        return NULL;
    switch (m->data_case) {
    case MD(GAUGE):
        if ((copy->gauge = lg_arena_memdup(a, m->gauge, sizeof *m->gauge)) == NULL)
            return NULL;
        copy->gauge->data_points = (lg_number_dp **)pts;
        copy->gauge->n_data_points = n;
        break;
    case MD(SUM):
        if ((copy->sum = lg_arena_memdup(a, m->sum, sizeof *m->sum)) == NULL)
            return NULL;
        copy->sum->data_points = (lg_number_dp **)pts;
        copy->sum->n_data_points = n;
        break;
    case MD(HISTOGRAM):
        if ((copy->histogram = lg_arena_memdup(a, m->histogram, sizeof *m->histogram)) == NULL)
            return NULL;
        copy->histogram->data_points = (lg_histogram_dp **)pts;
        copy->histogram->n_data_points = n;
        break;
    case MD(EXPONENTIAL_HISTOGRAM):
        if ((copy->exponential_histogram =
                 lg_arena_memdup(a, m->exponential_histogram, sizeof *m->exponential_histogram)) == NULL)
            return NULL;
        copy->exponential_histogram->data_points = (lg_exp_histogram_dp **)pts;
        copy->exponential_histogram->n_data_points = n;
        break;
    case MD(SUMMARY):
        if ((copy->summary = lg_arena_memdup(a, m->summary, sizeof *m->summary)) == NULL)
            return NULL;
        copy->summary->data_points = (lg_summary_dp **)pts;
        copy->summary->n_data_points = n;
        break;
    default:
        break;
    }
    return copy;
}

static int consume_metrics(struct lg_component *c, struct run *r, struct lg_batch *b)
{
    const struct filter_state *st = r->st;
    const lg_metrics_req *req = b->req.metrics;
    struct lg_batch *nb = NULL;
    uint64_t dropped = 0;
    for (size_t ri = 0; ri < req->n_resource_metrics; ri++) {
        const lg_resource_metrics *rm = req->resource_metrics[ri];
        for (size_t si = 0; si < rm->n_scope_metrics; si++) {
            const lg_scope_metrics *sm = rm->scope_metrics[si];
            lg_scope_metrics *nsm = NULL;
            size_t w = 0;
            for (size_t i = 0; i < sm->n_metrics; i++) {
                lg_metric *m = sm->metrics[i];
                struct lg_ottl_item it = {.resource = rm->resource, .scope = sm->scope, .metric = m};
                size_t npts;
                enum lg_ottl_dp_kind kind;
                void **pts = metric_points(m, &npts, &kind);
                bool drop = st->c[C_METRIC].n && matches(r, &st->c[C_METRIC], &it);
                if (r->err)
                    return refuse(r, LG_SIGNAL_METRICS, b, nb, r->err);
                size_t pts_dropped = drop ? npts : 0;
                void **kept = NULL;
                size_t nkept = npts;
                if (!drop && st->c[C_DP].n && npts) {
                    /* the points' fate first, then an array only when one goes */
                    it.dp_kind = kind;
                    size_t first = npts;
                    for (size_t p = 0; p < npts && first == npts; p++) {
                        it.dp = pts[p];
                        if (matches(r, &st->c[C_DP], &it))
                            first = p;
                        if (r->err)
                            return refuse(r, LG_SIGNAL_METRICS, b, nb, r->err);
                    }
                    if (first < npts) {
                        if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                            return refuse(r, LG_SIGNAL_METRICS, b, nb, LG_ENOMEM);
                        if ((kept = lg_arena_calloc(nb->arena, npts, sizeof *kept)) == NULL)
                            return refuse(r, LG_SIGNAL_METRICS, b, nb, LG_ENOMEM);
                        nkept = 0;
                        for (size_t p = 0; p < first; p++)
                            kept[nkept++] = pts[p];
                        for (size_t p = first + 1; p < npts; p++) {
                            it.dp = pts[p];
                            if (!matches(r, &st->c[C_DP], &it))
                                kept[nkept++] = pts[p];
                            if (r->err)
                                return refuse(r, LG_SIGNAL_METRICS, b, nb, r->err);
                        }
                        pts_dropped = npts - nkept;
                        /* every point gone: the metric goes too, as in the Collector */
                        if (nkept == 0)
                            drop = true;
                    }
                }
                if (!drop && kept == NULL) {
                    if (nsm)
                        nsm->metrics[w] = m;
                    w++;
                    continue;
                }
                if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                    return refuse(r, LG_SIGNAL_METRICS, b, nb, LG_ENOMEM);
                nsm = nb->req.metrics->resource_metrics[ri]->scope_metrics[si];
                dropped += pts_dropped;
                if (drop)
                    continue;
                lg_metric *copy = metric_with_points(nb->arena, m, kept, nkept);
                if (copy == NULL)
                    return refuse(r, LG_SIGNAL_METRICS, b, nb, LG_ENOMEM);
                nsm->metrics[w++] = copy;
            }
            if (nsm)
                nsm->n_metrics = w;
        }
    }
    lg_counter_add(st->dps_filtered, dropped);
    lg_ottl_scratch_free(&r->scratch);
    return forward(c, LG_SIGNAL_METRICS, b, nb);
}

static int filter_consume(struct lg_component *c, struct lg_batch *b)
{
    struct filter_state *st = c->state;
    struct run r = {.st = st};
    switch (b->signal) {
    case LG_SIGNAL_TRACES:
        if (st->c[C_SPAN].n || st->c[C_EVENT].n)
            return consume_traces(c, &r, b);
        break;
    case LG_SIGNAL_LOGS:
        if (st->c[C_LOG].n)
            return consume_logs(c, &r, b);
        break;
    case LG_SIGNAL_METRICS:
        if (st->c[C_METRIC].n || st->c[C_DP].n)
            return consume_metrics(c, &r, b);
        break;
    default:
        break;
    }
    return lg_fanout_consume(&c->next[b->signal], b);
}

/* ------------------------------------------------------------------ lifecycle ---- */

static void filter_free_state(struct filter_state *st)
{
    if (st == NULL)
        return;
    for (int k = 0; k < C_N; k++) {
        for (size_t i = 0; i < st->c[k].n; i++)
            lg_ottl_free(st->c[k].v[i]);
        free(st->c[k].v);
        free(st->c[k].text);
        free(st->legacy_text[k]);
    }
    free(st);
}

static int compile_list(const struct lg_node *seq, enum lg_ottl_ctx ctx, struct conds *out, struct lg_err *err)
{
    if (seq == NULL || lg_node_is_null(seq))
        return LG_OK;
    if (seq->type != LG_NODE_SEQ)
        return lg_conf_error(err, seq, "expected a list of OTTL conditions (strings)");
    if (seq->nitems == 0)
        return LG_OK;
    out->v = calloc(seq->nitems, sizeof *out->v);
    out->text = calloc(seq->nitems, sizeof *out->text);
    if (out->v == NULL || out->text == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < seq->nitems; i++) {
        const struct lg_node *item = seq->items[i];
        if (item->type != LG_NODE_SCALAR)
            return lg_conf_error(err, item, "expected an OTTL condition (a string)");
        struct lg_ottl_error e;
        int rc = lg_ottl_compile(ctx, item->scalar, &out->v[out->n], &e);
        if (rc == LG_ENOMEM)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        if (rc != LG_OK)
            return lg_conf_error(err, item, "invalid %s condition at column %d: %s (in \"%s\")",
                                 lg_ottl_ctx_name(ctx), e.col, e.msg, item->scalar);
        out->text[out->n++] = item->scalar;
    }
    return LG_OK;
}

/* ------------------------------------------------------------------ legacy form ---- */

/* The deprecated include / exclude match properties are translated into one OTTL condition
 * per signal: drop when (include is given and does not match) or (exclude matches). Within
 * one block every property given must match; within a list one entry is enough; attributes
 * / resources need every {key, value} (a key alone: present); match_type strict compares
 * for equality, regexp matches anywhere (IsMatch) and only strings. */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *t, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, t, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *t) { sb_put(b, t, strlen(t)); }

/* An OTTL string literal of s. */
static void sb_lit(struct sbuf *b, const char *s)
{
    sb_str(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            sb_put(b, esc, 2);
        } else if (*c < 0x20 || *c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *c);
            sb_str(b, esc);
        } else {
            sb_put(b, (const char *)c, 1);
        }
    }
    sb_str(b, "\"");
}

static bool plain_number(const char *s, bool *is_int)
{
    char *end;
    if (*s == '\0')
        return false;
    (void)strtoll(s, &end, 10);
    if (*end == '\0') {
        *is_int = true;
        return true;
    }
    (void)strtod(s, &end);
    *is_int = false;
    return *end == '\0' && strspn(s, "0123456789+-.eE") == strlen(s);
}

/* A YAML scalar as an OTTL literal typed as the attributes processor types values: plain
 * true/false are bools, plain numbers ints / doubles, everything else a string. */
static void sb_value(struct sbuf *b, const struct lg_node *v)
{
    bool is_int;
    if (!v->quoted && (strcmp(v->scalar, "true") == 0 || strcmp(v->scalar, "false") == 0))
        sb_str(b, v->scalar);
    else if (!v->quoted && plain_number(v->scalar, &is_int))
        sb_str(b, v->scalar);
    else
        sb_lit(b, v->scalar);
}

static int string_item(const struct lg_node *n, bool regexp, struct lg_err *err)
{
    if (n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "expected a string");
    if (regexp) {
        pcre2_code *re = lg_conf_regex(n, n->scalar, err);
        if (re == NULL)
            return LG_EINVAL;
        pcre2_code_free(re);
    }
    return LG_OK;
}

/* " or "-joined test of `target` against each string of the list node. */
static int sb_any_of(struct sbuf *b, const struct lg_node *list, const char *target, bool regexp, struct lg_err *err)
{
    if (list->type != LG_NODE_SEQ || list->nitems == 0)
        return lg_conf_error(err, list, "expected a non-empty list of strings");
    sb_str(b, "(");
    for (size_t i = 0; i < list->nitems; i++) {
        int rc = string_item(list->items[i], regexp, err);
        if (rc != LG_OK)
            return rc;
        if (i)
            sb_str(b, " or ");
        if (regexp) {
            sb_str(b, "IsMatch(");
            sb_str(b, target);
            sb_str(b, ", ");
            sb_lit(b, list->items[i]->scalar);
            sb_str(b, ")");
        } else {
            sb_str(b, target);
            sb_str(b, " == ");
            sb_lit(b, list->items[i]->scalar);
        }
    }
    sb_str(b, ")");
    return LG_OK;
}

/* Every {key, value} of the list holds on the map path `map` (attributes / resource.attributes). */
static int sb_all_kv(struct sbuf *b, const struct lg_node *list, const char *map, bool regexp, struct lg_err *err)
{
    if (list->type != LG_NODE_SEQ || list->nitems == 0)
        return lg_conf_error(err, list, "expected a non-empty list of {key, value}");
    sb_str(b, "(");
    for (size_t i = 0; i < list->nitems; i++) {
        const struct lg_node *it = list->items[i];
        const struct lg_node *k = lg_node_get(it, "key"), *v = lg_node_get(it, "value");
        if (it->type != LG_NODE_MAP || k == NULL || k->type != LG_NODE_SCALAR || k->scalar[0] == '\0')
            return lg_conf_error(err, it, "expected {key, value} with a non-empty key");
        for (size_t j = 0; j < it->npairs; j++)
            if (strcmp(it->pairs[j].key, "key") != 0 && strcmp(it->pairs[j].key, "value") != 0)
                return lg_conf_error(err, it->pairs[j].value, "unknown key \"%s\" (key, value)", it->pairs[j].key);
        if (i)
            sb_str(b, " and ");
        struct sbuf path = {0};
        sb_str(&path, map);
        sb_str(&path, "[");
        sb_lit(&path, k->scalar);
        sb_str(&path, "]");
        if (path.oom) {
            free(path.p);
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        }
        if (v == NULL || lg_node_is_null(v)) {
            sb_str(b, path.p);
            sb_str(b, " != nil");
        } else if (v->type != LG_NODE_SCALAR) {
            free(path.p);
            return lg_conf_error(err, v, "expected a scalar value");
        } else if (regexp) {
            int rc = string_item(v, true, err);
            if (rc != LG_OK) {
                free(path.p);
                return rc;
            }
            sb_str(b, "(IsString(");
            sb_str(b, path.p);
            sb_str(b, ") and IsMatch(");
            sb_str(b, path.p);
            sb_str(b, ", ");
            sb_lit(b, v->scalar);
            sb_str(b, "))");
        } else {
            sb_str(b, path.p);
            sb_str(b, " == ");
            sb_value(b, v);
        }
        free(path.p);
    }
    sb_str(b, ")");
    return LG_OK;
}

static const char *const span_kind_enums[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                              "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};

static const char *const severity_names[] = {
    "UNSPECIFIED", "TRACE", "TRACE2", "TRACE3", "TRACE4", "DEBUG", "DEBUG2", "DEBUG3", "DEBUG4",
    "INFO", "INFO2", "INFO3", "INFO4", "WARN", "WARN2", "WARN3", "WARN4", "ERROR", "ERROR2",
    "ERROR3", "ERROR4", "FATAL", "FATAL2", "FATAL3", "FATAL4"};

static int sb_severity(struct sbuf *b, const struct lg_node *n, struct lg_err *err)
{
    const struct lg_node *min = lg_node_get(n, "min"), *mu = lg_node_get(n, "match_undefined");
    if (n->type != LG_NODE_MAP || min == NULL || min->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "severity_number needs min (a severity such as INFO or WARN, or 1..24)");
    for (size_t j = 0; j < n->npairs; j++)
        if (strcmp(n->pairs[j].key, "min") != 0 && strcmp(n->pairs[j].key, "match_undefined") != 0)
            return lg_conf_error(err, n->pairs[j].value, "unknown key \"%s\" (min, match_undefined)", n->pairs[j].key);
    int level = -1;
    for (size_t i = 0; i < LG_ARRAY_LEN(severity_names) && level < 0; i++)
        if (strcasecmp(min->scalar, severity_names[i]) == 0)
            level = (int)i;
    if (level < 0) {
        char *end;
        long v = strtol(min->scalar, &end, 10);
        if (*min->scalar && *end == '\0' && v >= 0 && v <= 24)
            level = (int)v;
    }
    if (level < 0)
        return lg_conf_error(err, min, "unknown severity \"%s\" (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, with 2..4, or 0..24)",
                             min->scalar);
    bool undef = false;
    if (mu && !lg_node_is_null(mu) && lg_conf_parse_bool(mu, &undef, err) != LG_OK)
        return LG_EINVAL;
    char t[96];
    snprintf(t, sizeof t, undef ? "(severity_number >= %d or severity_number == 0)" : "severity_number >= %d", level);
    sb_str(b, t);
    return LG_OK;
}

/* The match properties of one include / exclude block as an OTTL expression. */
static int sb_props(struct sbuf *b, const struct lg_node *n, enum lg_signal sig, struct lg_err *err)
{
    static const char *const span_keys[] = {"match_type", "regexp", "services", "span_names", "span_kinds",
                                            "attributes", "resources", "libraries", NULL};
    static const char *const log_keys[] = {"match_type", "regexp", "resource_attributes", "record_attributes",
                                           "severity_texts", "severity_number", "bodies", NULL};
    static const char *const metric_keys[] = {"match_type", "regexp", "metric_names", "resource_attributes",
                                              "expressions", NULL};
    const char *const *known = sig == LG_SIGNAL_TRACES ? span_keys : sig == LG_SIGNAL_LOGS ? log_keys : metric_keys;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "expected match properties (match_type and what to match)");
    for (size_t i = 0; i < n->npairs; i++) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, n->pairs[i].key) == 0;
        if (!ok) {
            char list[256] = "";
            for (const char *const *k = known; *k; k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k == known ? "" : ", ", *k);
            return lg_conf_error(err, n->pairs[i].value, "unknown key \"%s\" (known: %s)", n->pairs[i].key, list);
        }
    }
    const struct lg_node *mt = lg_node_get(n, "match_type");
    const char *mts = mt && mt->type == LG_NODE_SCALAR ? mt->scalar : "";
    if (strcmp(mts, "expr") == 0 || lg_node_get(n, "expressions"))
        return lg_conf_error(err, mt && strcmp(mts, "expr") == 0 ? mt : lg_node_get(n, "expressions"),
                             "match_type expr is not supported; write metrics.metric / metrics.datapoint OTTL "
                             "conditions instead");
    if (strcmp(mts, "strict") != 0 && strcmp(mts, "regexp") != 0)
        return lg_conf_error(err, mt ? mt : n, "match_type must be strict or regexp");
    bool re = strcmp(mts, "regexp") == 0;
    size_t terms = 0;
    int rc = LG_OK;
    for (size_t i = 0; i < n->npairs && rc == LG_OK; i++) {
        const char *k = n->pairs[i].key;
        const struct lg_node *v = n->pairs[i].value;
        if (strcmp(k, "match_type") == 0 || strcmp(k, "regexp") == 0 || lg_node_is_null(v))
            continue;
        if (terms++)
            sb_str(b, " and ");
        if (strcmp(k, "services") == 0)
            rc = sb_any_of(b, v, "resource.attributes[\"service.name\"]", re, err);
        else if (strcmp(k, "span_names") == 0)
            rc = sb_any_of(b, v, "name", re, err);
        else if (strcmp(k, "bodies") == 0)
            rc = sb_any_of(b, v, "body", re, err);
        else if (strcmp(k, "severity_texts") == 0)
            rc = sb_any_of(b, v, "severity_text", re, err);
        else if (strcmp(k, "metric_names") == 0)
            rc = sb_any_of(b, v, "name", re, err);
        else if (strcmp(k, "attributes") == 0 || strcmp(k, "record_attributes") == 0)
            rc = sb_all_kv(b, v, "attributes", re, err);
        else if (strcmp(k, "resources") == 0 || strcmp(k, "resource_attributes") == 0)
            rc = sb_all_kv(b, v, "resource.attributes", re, err);
        else if (strcmp(k, "severity_number") == 0)
            rc = sb_severity(b, v, err);
        else if (strcmp(k, "span_kinds") == 0) {
            if (v->type != LG_NODE_SEQ || v->nitems == 0)
                return lg_conf_error(err, v, "expected a non-empty list of span kinds");
            sb_str(b, "(");
            for (size_t j = 0; j < v->nitems; j++) {
                int kind = -1;
                for (size_t e = 0; e < LG_ARRAY_LEN(span_kind_enums) && kind < 0; e++)
                    if (v->items[j]->type == LG_NODE_SCALAR && strcmp(v->items[j]->scalar, span_kind_enums[e]) == 0)
                        kind = (int)e;
                if (kind < 0)
                    return lg_conf_error(err, v->items[j], "unknown span kind (SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ...)");
                sb_str(b, j ? " or kind == " : "kind == ");
                sb_str(b, span_kind_enums[kind]);
            }
            sb_str(b, ")");
        } else if (strcmp(k, "libraries") == 0) {
            if (v->type != LG_NODE_SEQ || v->nitems == 0)
                return lg_conf_error(err, v, "expected a non-empty list of {name, version}");
            sb_str(b, "(");
            for (size_t j = 0; j < v->nitems && rc == LG_OK; j++) {
                const struct lg_node *lib = v->items[j];
                const struct lg_node *nm = lg_node_get(lib, "name"), *ver = lg_node_get(lib, "version");
                if (lib->type != LG_NODE_MAP || nm == NULL || nm->type != LG_NODE_SCALAR)
                    return lg_conf_error(err, lib, "expected {name, version}");
                if (j)
                    sb_str(b, " or ");
                sb_str(b, "(");
                struct lg_node one = *nm;
                const struct lg_node *seq_items[1] = {nm};
                one.type = LG_NODE_SEQ;
                one.items = (struct lg_node **)seq_items;
                one.nitems = 1;
                rc = sb_any_of(b, &one, "instrumentation_scope.name", re, err);
                if (rc == LG_OK && ver && ver->type == LG_NODE_SCALAR) {
                    seq_items[0] = ver;
                    sb_str(b, " and ");
                    rc = sb_any_of(b, &one, "instrumentation_scope.version", re, err);
                }
                sb_str(b, ")");
            }
            sb_str(b, ")");
        }
    }
    if (rc != LG_OK)
        return rc;
    if (terms == 0)
        return lg_conf_error(err, n, "match properties need at least one property besides match_type");
    return b->oom ? lg_err_set(err, LG_ENOMEM, "out of memory") : LG_OK;
}

/* Translates include / exclude for one signal into *out (malloc'd; NULL when neither). */
static int legacy_condition(const struct lg_node *inc, const struct lg_node *exc, enum lg_signal sig, char **out,
                            struct lg_err *err)
{
    *out = NULL;
    if ((inc == NULL || lg_node_is_null(inc)) && (exc == NULL || lg_node_is_null(exc)))
        return LG_OK;
    struct sbuf b = {0};
    int rc = LG_OK;
    if (inc && !lg_node_is_null(inc)) {
        sb_str(&b, "not (");
        rc = sb_props(&b, inc, sig, err);
        sb_str(&b, ")");
    }
    if (rc == LG_OK && exc && !lg_node_is_null(exc)) {
        if (b.len)
            sb_str(&b, " or ");
        sb_str(&b, "(");
        rc = sb_props(&b, exc, sig, err);
        sb_str(&b, ")");
    }
    if (rc == LG_OK && b.oom)
        rc = lg_err_set(err, LG_ENOMEM, "out of memory");
    if (rc != LG_OK) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return LG_OK;
}

/* Compiles a translated condition as the only entry of list k. */
static int add_legacy(struct filter_state *st, int k, enum lg_ottl_ctx ctx, const struct lg_node *at, char *text,
                      struct lg_err *err)
{
    st->legacy_text[k] = text;
    struct conds *cl = &st->c[k];
    cl->v = calloc(1, sizeof *cl->v);
    cl->text = calloc(1, sizeof *cl->text);
    if (cl->v == NULL || cl->text == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    struct lg_ottl_error e;
    int rc = lg_ottl_compile(ctx, text, &cl->v[0], &e);
    if (rc != LG_OK)
        return rc == LG_ENOMEM ? lg_err_set(err, LG_ENOMEM, "out of memory")
                               : lg_conf_error(err, at, "cannot translate include/exclude (%s at column %d of %s)",
                                               e.msg, e.col, text);
    cl->text[0] = text;
    cl->n = 1;
    return LG_OK;
}

static int setup_legacy(struct filter_state *st, const struct filter_conf *cf, const struct lg_node *root,
                        struct lg_err *err)
{
    static const struct {
        const char *section;
        enum lg_signal sig;
        int list;
        enum lg_ottl_ctx ctx;
        const char *ottl_key;
    } sigs[] = {
        {"spans", LG_SIGNAL_TRACES, C_SPAN, LG_OTTL_SPAN, "traces"},
        {"logs", LG_SIGNAL_LOGS, C_LOG, LG_OTTL_LOG, "logs.log_record"},
        {"metrics", LG_SIGNAL_METRICS, C_METRIC, LG_OTTL_METRIC, "metrics.metric / metrics.datapoint"},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(sigs); i++) {
        const struct lg_node *sec = lg_node_get(root, sigs[i].section);
        const struct lg_node *inc = NULL, *exc = NULL;
        bool ottl_used = false;
        if (sigs[i].sig == LG_SIGNAL_TRACES) {
            if (cf->spans == NULL || lg_node_is_null(cf->spans))
                continue;
            if (cf->spans->type != LG_NODE_MAP)
                return lg_conf_error(err, cf->spans, "expected include and/or exclude");
            for (size_t j = 0; j < cf->spans->npairs; j++)
                if (strcmp(cf->spans->pairs[j].key, "include") != 0 && strcmp(cf->spans->pairs[j].key, "exclude") != 0)
                    return lg_conf_error(err, cf->spans->pairs[j].value, "unknown key \"%s\" (include, exclude)",
                                         cf->spans->pairs[j].key);
            inc = lg_node_get(cf->spans, "include");
            exc = lg_node_get(cf->spans, "exclude");
            ottl_used = cf->traces.span || cf->traces.spanevent;
        } else if (sigs[i].sig == LG_SIGNAL_LOGS) {
            inc = cf->logs.include;
            exc = cf->logs.exclude;
            ottl_used = cf->logs.log_record != NULL;
        } else {
            inc = cf->metrics.include;
            exc = cf->metrics.exclude;
            ottl_used = cf->metrics.metric || cf->metrics.datapoint;
        }
        if (inc == NULL && exc == NULL)
            continue;
        if (ottl_used)
            return lg_conf_error(err, sec, "cannot use OTTL conditions (%s) and include/exclude for %s at the same time",
                                 sigs[i].ottl_key, sigs[i].section);
        char *text = NULL;
        int rc = legacy_condition(inc, exc, sigs[i].sig, &text, err);
        if (rc == LG_OK && text)
            rc = add_legacy(st, sigs[i].list, sigs[i].ctx, sec, text, err);
        if (rc != LG_OK)
            return rc;
        lg_warn(st->id, "%s include/exclude is deprecated; translated to the OTTL condition: %s", sigs[i].section,
                text);
    }
    return LG_OK;
}

static int filter_create(struct lg_component *c, struct lg_err *err)
{
    const struct filter_conf *cf = c->conf;
    const struct lg_node *root = c->conf_node;
    enum err_mode mode;
    const char *m = cf->error_mode ? cf->error_mode : "propagate";
    if (strcmp(m, "propagate") == 0)
        mode = EM_PROPAGATE;
    else if (strcmp(m, "ignore") == 0)
        mode = EM_IGNORE;
    else if (strcmp(m, "silent") == 0)
        mode = EM_SILENT;
    else {
        const struct lg_node *n = lg_node_get(root, "error_mode");
        return lg_conf_error(err, n ? n : root, "unknown error_mode \"%s\" (propagate, ignore or silent)", m);
    }
    struct filter_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->mode = mode;
    st->id = c->id;
    int rc = compile_list(cf->traces.span, LG_OTTL_SPAN, &st->c[C_SPAN], err);
    if (rc == LG_OK)
        rc = compile_list(cf->traces.spanevent, LG_OTTL_SPANEVENT, &st->c[C_EVENT], err);
    if (rc == LG_OK)
        rc = compile_list(cf->logs.log_record, LG_OTTL_LOG, &st->c[C_LOG], err);
    if (rc == LG_OK)
        rc = compile_list(cf->metrics.metric, LG_OTTL_METRIC, &st->c[C_METRIC], err);
    if (rc == LG_OK)
        rc = compile_list(cf->metrics.datapoint, LG_OTTL_DATAPOINT, &st->c[C_DP], err);
    if (rc == LG_OK)
        rc = setup_legacy(st, cf, root, err);
    if (rc != LG_OK) {
        filter_free_state(st);
        return rc;
    }
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[300];
    snprintf(labels, sizeof labels, "filter=\"%s\"", c->id);
    st->spans_filtered = lg_telemetry_counter(t, "otelcol_processor_filter_spans_filtered",
                                              "Number of spans dropped by the filter processor", labels);
    st->logs_filtered = lg_telemetry_counter(t, "otelcol_processor_filter_logs_filtered",
                                             "Number of logs dropped by the filter processor", labels);
    st->dps_filtered = lg_telemetry_counter(t, "otelcol_processor_filter_datapoints_filtered",
                                            "Number of metric data points dropped by the filter processor", labels);
    st->events_filtered = lg_telemetry_counter(t, "llmgate_processor_filter_span_events_filtered",
                                               "Number of span events dropped by the filter processor", labels);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        snprintf(labels, sizeof labels, "processor=\"%s\",otel_signal=\"%s\"", c->id, lg_signal_name((enum lg_signal)s));
        st->refused[s] = lg_telemetry_counter(t, "otelcol_processor_refused_items",
                                              "Items a processor refused (out of memory).", labels);
    }
    c->state = st;
    return LG_OK;
}

static void filter_destroy(struct lg_component *c)
{
    filter_free_state(c->state);
    c->state = NULL;
}

const struct lg_component_type lg_filter_processor = {
    .type = "filter",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "drops spans, span events, log records, metrics and data points matching OTTL conditions",
    .conf_size = sizeof(struct filter_conf),
    .fields = filter_fields,
    .create = filter_create,
    .consume = filter_consume,
    .destroy = filter_destroy,
};
