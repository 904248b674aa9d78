/* connectors/llm_metrics.c — the `llm_metrics` connector (traces in, metrics out), in the
 * manner of the Collector's spanmetrics connector: from every LLM span it sees (recognised
 * by core/llm.h in any convention) it aggregates
 *
 *   llm.tokens.total                  counter   {token}  total tokens, by model
 *   llm.latency.seconds               histogram s        span duration, by model
 *   llm.cost.usd                      counter   {USD}    gen_ai.usage.cost, by model
 *   llm.errors                        counter   {call}   failed calls, by model and error.type
 *   llm.finish_reasons                counter   {call}   calls, by model and finish_reason
 *   gen_ai.client.token.usage         histogram {token}  input/output tokens (OTel GenAI semconv)
 *   gen_ai.client.operation.duration  histogram s        call duration (OTel GenAI semconv)
 *
 * and emits them every flush_interval, and once more at shutdown, as cumulative OTLP
 * metrics (start time = when the series was first seen) into the metrics pipelines that
 * list it as a receiver. It sits before sampling so counts are complete.
 *
 * What it owns: the series table (one hash map keyed by metric + attribute values, under
 * one mutex held only to bump numbers), the flush thread, and nothing of the batches it
 * consumes. Every metric holds at most max_series series; past it, new attribute sets are
 * recorded into one overflow series per metric with the single attribute
 * otel.metric.overflow="true", and each such recording is counted. consume() never
 * refuses: the spans are only read. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/component.h"
#include "../core/llm.h"
#include "../core/log.h"
#include "../core/runtime.h"

/* ---- configuration ---- */

struct lm_attr_map {
    const char **names;
    const char **values;
    size_t n;
};

struct lm_conf {
    int64_t flush_interval_ns;
    int64_t max_series;
    int64_t dimensions_cache_size;
    struct lm_attr_map resource_attributes;
};

static int parse_attr_map(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    struct lm_attr_map *m = dst;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "expected a map of attribute name to string value");
    m->n = 0;
    m->names = lg_arena_calloc(a, n->npairs ? n->npairs : 1, sizeof *m->names);
    m->values = lg_arena_calloc(a, n->npairs ? n->npairs : 1, sizeof *m->values);
    if (m->names == NULL || m->values == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->npairs; i++) {
        const struct lg_node *v = n->pairs[i].value;
        if (v->type != LG_NODE_SCALAR)
            return lg_conf_error(err, v, "expected a string value");
        m->names[m->n] = n->pairs[i].key;
        m->values[m->n] = v->scalar;
        m->n++;
    }
    return LG_OK;
}

static const struct lg_conf_field lm_fields[] = {
    LG_CONF_DURATION("flush_interval", "15s", struct lm_conf, flush_interval_ns,
                     "how often the cumulative metrics are emitted (spanmetrics' old default)"),
    LG_CONF_INT("max_series", "1000", struct lm_conf, max_series, 1, 1e7,
                "series per metric; further attribute sets go to the otel.metric.overflow series"),
    LG_CONF_INT("dimensions_cache_size", "0", struct lm_conf, dimensions_cache_size, 0, 1e7,
                "spanmetrics' name for the limit: used as max_series when max_series is not set"),
    LG_CONF_CUSTOM("resource_attributes", "{service.name: llmgate}", struct lm_conf, resource_attributes,
                   parse_attr_map, "attributes of the resource the metrics are emitted under"),
    LG_CONF_END,
};

/* ---- metric definitions ---- */

/* OTel GenAI semconv advisory bucket boundaries (REFERENCE §7). */
static const double token_buckets[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
                                       1048576, 4194304, 16777216, 67108864};
static const double duration_buckets[] = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64,
                                          1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};

enum lm_kind { LM_SUM_INT, LM_SUM_DOUBLE, LM_HISTOGRAM };

enum lm_metric {
    M_TOKENS_TOTAL,
    M_LATENCY,
    M_COST,
    M_ERRORS,
    M_FINISH_REASONS,
    M_TOKEN_USAGE,
    M_OP_DURATION,
    M_COUNT,
};

#define MAX_ATTRS 6

/* Attribute positions: every metric lists its attribute names; a recording passes the
 * values in the same order (NULL = absent on this span). */
static const char *const seed_attrs[] = {"service.name", "model"};
static const char *const error_attrs[] = {"service.name", "model", "error.type"};
static const char *const finish_attrs[] = {"service.name", "model", "finish_reason"};
static const char *const usage_attrs[] = {"service.name", "gen_ai.operation.name", "gen_ai.provider.name",
                                          "gen_ai.request.model", "gen_ai.response.model", "gen_ai.token.type"};
static const char *const duration_attrs[] = {"service.name", "gen_ai.operation.name", "gen_ai.provider.name",
                                             "gen_ai.request.model", "gen_ai.response.model", "error.type"};

struct lm_def {
    const char *name, *unit, *description;
    enum lm_kind kind;
    const double *bounds;
    size_t nbounds;
    const char *const *attrs;
    size_t nattrs;
};

#define ATTRS(a) a, LG_ARRAY_LEN(a)
static const struct lm_def defs[M_COUNT] = {
    [M_TOKENS_TOTAL] = {"llm.tokens.total", "{token}", "Tokens used by LLM calls (input + output), by model.",
                        LM_SUM_INT, NULL, 0, ATTRS(seed_attrs)},
    [M_LATENCY] = {"llm.latency.seconds", "s", "Duration of LLM calls, by model.",
                   LM_HISTOGRAM, duration_buckets, LG_ARRAY_LEN(duration_buckets), ATTRS(seed_attrs)},
    [M_COST] = {"llm.cost.usd", "{USD}", "Cost of LLM calls in US dollars (gen_ai.usage.cost), by model.",
                LM_SUM_DOUBLE, NULL, 0, ATTRS(seed_attrs)},
    [M_ERRORS] = {"llm.errors", "{call}", "Failed LLM calls, by model and error.type.",
                  LM_SUM_INT, NULL, 0, ATTRS(error_attrs)},
    [M_FINISH_REASONS] = {"llm.finish_reasons", "{call}", "LLM calls by model and finish reason.",
                          LM_SUM_INT, NULL, 0, ATTRS(finish_attrs)},
    [M_TOKEN_USAGE] = {"gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.",
                       LM_HISTOGRAM, token_buckets, LG_ARRAY_LEN(token_buckets), ATTRS(usage_attrs)},
    [M_OP_DURATION] = {"gen_ai.client.operation.duration", "s", "GenAI operation duration.",
                       LM_HISTOGRAM, duration_buckets, LG_ARRAY_LEN(duration_buckets), ATTRS(duration_attrs)},
};

/* error.type when a call failed without saying how (the semconv fallback value). */
#define ERROR_TYPE_OTHER "_OTHER"
#define OVERFLOW_ATTR "otel.metric.overflow"

/* ---- series table ---- */

struct lm_series {
    struct lm_series *hnext;
    uint64_t hash;
    char *key;              /* metric byte + per attribute: presence byte, value, NUL */
    size_t keylen;
    enum lm_metric metric;
    bool overflow;
    const char *vals[MAX_ATTRS]; /* point into key; NULL = absent */
    uint64_t start_unix_nano;    /* first recording */
    int64_t ivalue;
    double dvalue;               /* LM_SUM_DOUBLE; histogram sum */
    uint64_t count;              /* histogram */
    uint64_t *buckets;           /* histogram: nbounds + 1 */
};

struct lm_state {
    struct lg_component *c;
    struct lm_conf *conf;
    size_t max_series;
    pthread_mutex_t lock;
    struct lm_series **tab;
    size_t nbuckets, nseries;
    size_t per_metric[M_COUNT];          /* series per metric, overflow excluded */
    struct lm_series *overflow[M_COUNT];
    /* flush thread */
    pthread_mutex_t flush_lock;          /* one flush at a time (timer vs shutdown vs tests) */
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_started, stopping;
    int last_refusal;
    struct lg_counter *llm_spans, *overflowed, *emitted, *refused;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int table_grow(struct lm_state *st)
{
    if (st->nseries < st->nbuckets)
        return 0;
    size_t nn = st->nbuckets ? st->nbuckets * 2 : 256;
    struct lm_series **nt = calloc(nn, sizeof *nt);
    if (nt == NULL)
        return -1;
    for (size_t i = 0; i < st->nbuckets; i++)
        for (struct lm_series *s = st->tab[i], *nx; s; s = nx) {
            nx = s->hnext;
            s->hnext = nt[s->hash & (nn - 1)];
            nt[s->hash & (nn - 1)] = s;
        }
    free(st->tab);
    st->tab = nt;
    st->nbuckets = nn;
    return 0;
}

static struct lm_series *series_new(enum lm_metric m, const char *key, size_t keylen, uint64_t now_unix_ns)
{
    struct lm_series *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->key = malloc(keylen);
    if (s->key == NULL)
        goto oom;
    memcpy(s->key, key, keylen);
    s->keylen = keylen;
    s->metric = m;
    s->start_unix_nano = now_unix_ns;
    if (defs[m].kind == LM_HISTOGRAM && (s->buckets = calloc(defs[m].nbounds + 1, sizeof *s->buckets)) == NULL)
        goto oom;
    /* Point vals[] into the key copy: after the metric byte, [presence][value]\0 per attr. */
    const char *p = s->key + 1;
    for (size_t i = 0; i < defs[m].nattrs; i++) {
        bool present = *p++ == 1;
        s->vals[i] = present ? p : NULL;
        p += strlen(p) + 1;
    }
    return s;
oom:
    free(s->key);
    free(s);
    return NULL;
}

static void series_free(struct lm_series *s)
{
    if (s == NULL)
        return;
    free(s->key);
    free(s->buckets);
    free(s);
}

/* Builds the key of (metric, values) into buf; returns its length, 0 when it does not fit
 * (then the recording goes to the overflow series: values that long are not dimensions). */
static size_t make_key(char *buf, size_t cap, enum lm_metric m, const char *const *vals)
{
    size_t o = 0;
    buf[o++] = (char)m;
    for (size_t i = 0; i < defs[m].nattrs; i++) {
        const char *v = vals[i] ? vals[i] : "";
        size_t l = strlen(v);
        if (o + l + 2 > cap)
            return 0;
        buf[o++] = vals[i] ? 1 : 2;
        memcpy(buf + o, v, l);
        o += l;
        buf[o++] = '\0';
    }
    return o;
}

#define KEY_CAP 4096

/* The series for (m, vals), created while under max_series; else the overflow series.
 * NULL only on OOM. Lock held. */
static struct lm_series *series_find(struct lm_state *st, enum lm_metric m, const char *const *vals, uint64_t now_unix_ns)
{
    char key[KEY_CAP];
    size_t keylen = make_key(key, sizeof key, m, vals);
    if (keylen) {
        uint64_t h = hash_bytes(key, keylen);
        if (st->nbuckets)
            for (struct lm_series *s = st->tab[h & (st->nbuckets - 1)]; s; s = s->hnext)
                if (s->hash == h && s->keylen == keylen && memcmp(s->key, key, keylen) == 0)
                    return s;
        if (st->per_metric[m] < st->max_series) {
            if (table_grow(st) != 0)
                return NULL;
            struct lm_series *s = series_new(m, key, keylen, now_unix_ns);
            if (s == NULL)
                return NULL;
            s->hash = h;
            s->hnext = st->tab[h & (st->nbuckets - 1)];
            st->tab[h & (st->nbuckets - 1)] = s;
            st->nseries++;
            st->per_metric[m]++;
            return s;
        }
    }
    lg_counter_add(st->overflowed, 1);
    if (st->overflow[m] == NULL) {
        char ok[1 + 2 * MAX_ATTRS];
        ok[0] = (char)m;
        for (size_t i = 0; i < defs[m].nattrs; i++) {
            ok[1 + 2 * i] = 2;
            ok[2 + 2 * i] = '\0';
        }
        st->overflow[m] = series_new(m, ok, 1 + 2 * defs[m].nattrs, now_unix_ns);
        if (st->overflow[m] == NULL)
            return NULL;
        st->overflow[m]->overflow = true;
    }
    return st->overflow[m];
}

static void record_sum_int(struct lm_state *st, enum lm_metric m, const char *const *vals, int64_t v, uint64_t now)
{
    struct lm_series *s = series_find(st, m, vals, now);
    if (s)
        s->ivalue += v;
}

static void record_sum_double(struct lm_state *st, enum lm_metric m, const char *const *vals, double v, uint64_t now)
{
    struct lm_series *s = series_find(st, m, vals, now);
    if (s)
        s->dvalue += v;
}

static void record_histogram(struct lm_state *st, enum lm_metric m, const char *const *vals, double v, uint64_t now)
{
    struct lm_series *s = series_find(st, m, vals, now);
    if (s == NULL)
        return;
    /* Explicit buckets are (previous bound, bound]: the first bound >= v takes it. */
    size_t i = 0;
    while (i < defs[m].nbounds && v > defs[m].bounds[i])
        i++;
    s->buckets[i]++;
    s->count++;
    s->dvalue += v;
}

static const char *resource_service(const lg_resource *res)
{
    if (res == NULL)
        return NULL;
    return lg_any_str(lg_attr_find(res->attributes, res->n_attributes, "service.name"));
}

/* All the recordings one LLM call makes. Lock held. */
static void record_call(struct lm_state *st, const char *service, const struct lg_llm_call *call, uint64_t now)
{
    const char *model = call->model ? call->model : call->request_model;
    const char *seed[] = {service, model};
    double seconds = call->end_time_unix_nano > call->start_time_unix_nano
                         ? (double)(call->end_time_unix_nano - call->start_time_unix_nano) / 1e9
                         : 0.0;
    if (call->total_tokens >= 0)
        record_sum_int(st, M_TOKENS_TOTAL, seed, call->total_tokens, now);
    record_histogram(st, M_LATENCY, seed, seconds, now);
    if (call->has_cost)
        record_sum_double(st, M_COST, seed, call->cost_usd, now);
    const char *error_type = call->failed ? (call->error_type && call->error_type[0] ? call->error_type : ERROR_TYPE_OTHER) : NULL;
    if (call->failed) {
        const char *ev[] = {service, model, error_type};
        record_sum_int(st, M_ERRORS, ev, 1, now);
    }
    if (call->finish_reason && call->finish_reason[0]) {
        const char *fv[] = {service, model, call->finish_reason};
        record_sum_int(st, M_FINISH_REASONS, fv, 1, now);
    }
    const char *uv[] = {service, call->operation, call->provider, call->request_model, call->response_model, "input"};
    if (call->input_tokens >= 0)
        record_histogram(st, M_TOKEN_USAGE, uv, (double)call->input_tokens, now);
    uv[5] = "output";
    if (call->output_tokens >= 0)
        record_histogram(st, M_TOKEN_USAGE, uv, (double)call->output_tokens, now);
    const char *dv[] = {service, call->operation, call->provider, call->request_model, call->response_model, error_type};
    record_histogram(st, M_OP_DURATION, dv, seconds, now);
}

/* Records the batch's LLM spans under one lock, taken at the first LLM span so batches
 * without any never touch it. */
struct lm_pass {
    struct lm_state *st;
    uint64_t now;
    size_t llm;
    bool locked;
    const lg_resource_spans *last_rs;
    const char *service;
};

/* `listed`: what llm_cost read from the span (with the cost it wrote), else NULL to read it */
static void lm_visit(struct lm_pass *p, const lg_resource_spans *rs, const lg_scope_spans *ss,
                     const lg_span *span, const struct lg_llm_call *listed)
{
    struct lg_llm_call call;
    if (listed != NULL)
        call = *listed;
    else if (lg_llm_read(rs->resource, ss->scope, span, &call) != 1)
        return;
    if (rs != p->last_rs) {
        p->last_rs = rs;
        p->service = resource_service(rs->resource);
    }
    if (!p->locked) {
        pthread_mutex_lock(&p->st->lock);
        p->locked = true;
    }
    record_call(p->st, p->service, &call, p->now);
    p->llm++;
}

static int lm_consume(struct lg_component *c, struct lg_batch *b)
{
    struct lm_state *st = c->state;
    if (b->signal != LG_SIGNAL_TRACES)
        return LG_OK;
    struct lm_pass p = {.st = st, .now = (uint64_t)lg_now_wall_ns()};
    if (b->llm_scanned) {
        /* llm_cost already found the LLM spans: visit only those */
        for (size_t k = 0; k < b->n_llm_spans; k++)
            lm_visit(&p, b->llm_spans[k].rs, b->llm_spans[k].ss, b->llm_spans[k].span,
                     b->llm_spans[k].call);
    } else {
        const lg_traces_req *req = b->req.traces;
        for (size_t r = 0; r < req->n_resource_spans; r++) {
            const lg_resource_spans *rs = req->resource_spans[r];
            for (size_t s = 0; s < rs->n_scope_spans; s++)
                for (size_t i = 0; i < rs->scope_spans[s]->n_spans; i++)
                    lm_visit(&p, rs, rs->scope_spans[s], rs->scope_spans[s]->spans[i], NULL);
        }
    }
    if (p.locked)
        pthread_mutex_unlock(&st->lock);
    lg_counter_add(st->llm_spans, p.llm);
    return LG_OK;
}

/* ---- emitting ---- */

static lg_kv *kv_string(struct lg_arena *a, const char *key, const char *value)
{
    lg_kv *kv = lg_arena_alloc(a, sizeof *kv);
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    if (kv == NULL || v == NULL)
        return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = lg_arena_strdup(a, value);
    kv->key = lg_arena_strdup(a, key);
    kv->value = v;
    return kv->key && v->string_value ? kv : NULL;
}

/* Data point attributes of a series (copied into the batch arena). */
static int point_attrs(struct lg_arena *a, const struct lm_series *s, lg_kv ***out, size_t *n)
{
    const struct lm_def *d = &defs[s->metric];
    lg_kv **kvs = lg_arena_calloc(a, d->nattrs + 1, sizeof *kvs);
    if (kvs == NULL)
        return LG_ENOMEM;
    size_t k = 0;
    if (s->overflow) {
        if ((kvs[k++] = kv_string(a, OVERFLOW_ATTR, "true")) == NULL)
            return LG_ENOMEM;
    } else {
        for (size_t i = 0; i < d->nattrs; i++)
            if (s->vals[i] && (kvs[k++] = kv_string(a, d->attrs[i], s->vals[i])) == NULL)
                return LG_ENOMEM;
    }
    *out = kvs;
    *n = k;
    return LG_OK;
}

static void *point_new(struct lg_arena *a, const struct lm_series *s, uint64_t now)
{
    const struct lm_def *d = &defs[s->metric];
    if (d->kind == LM_HISTOGRAM) {
        lg_histogram_dp *p = lg_arena_alloc(a, sizeof *p);
        if (p == NULL)
            return NULL;
        opentelemetry__proto__metrics__v1__histogram_data_point__init(p);
        if (point_attrs(a, s, &p->attributes, &p->n_attributes) != LG_OK)
            return NULL;
        p->start_time_unix_nano = s->start_unix_nano;
        p->time_unix_nano = now;
        p->count = s->count;
        p->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
        p->sum = s->dvalue;
        p->n_explicit_bounds = d->nbounds;
        p->explicit_bounds = lg_arena_memdup(a, d->bounds, d->nbounds * sizeof(double));
        p->n_bucket_counts = d->nbounds + 1;
        p->bucket_counts = lg_arena_memdup(a, s->buckets, (d->nbounds + 1) * sizeof(uint64_t));
        return p->explicit_bounds && p->bucket_counts ? p : NULL;
    }
    lg_number_dp *p = lg_arena_alloc(a, sizeof *p);
    if (p == NULL)
        return NULL;
    opentelemetry__proto__metrics__v1__number_data_point__init(p);
    if (point_attrs(a, s, &p->attributes, &p->n_attributes) != LG_OK)
        return NULL;
    p->start_time_unix_nano = s->start_unix_nano;
    p->time_unix_nano = now;
    if (d->kind == LM_SUM_INT) {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p->as_int = s->ivalue;
    } else {
        p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        p->as_double = s->dvalue;
    }
    return p;
}

/* Snapshot of every series as one metrics batch (NULL when there is nothing yet, or on
 * OOM with *oom set). Lock held: only copies numbers and strings into the arena. */
static struct lg_batch *build_batch(struct lm_state *st, bool *oom)
{
    *oom = false;
    if (st->nseries == 0) {
        bool any = false;
        for (int m = 0; m < M_COUNT; m++)
            any |= st->overflow[m] != NULL;
        if (!any)
            return NULL;
    }
    uint64_t now = (uint64_t)lg_now_wall_ns();
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_METRICS, 4096 + st->nseries * 512);
    if (b == NULL)
        goto oom;
    struct lg_arena *a = b->arena;
    /* Points per metric: count, then fill. */
    size_t npts[M_COUNT] = {0};
    for (size_t i = 0; i < st->nbuckets; i++)
        for (struct lm_series *s = st->tab[i]; s; s = s->hnext)
            npts[s->metric]++;
    void **pts[M_COUNT] = {0};
    size_t fill[M_COUNT] = {0};
    size_t nmetrics = 0;
    for (int m = 0; m < M_COUNT; m++) {
        if (st->overflow[m])
            npts[m]++;
        if (npts[m] == 0)
            continue;
        nmetrics++;
        if ((pts[m] = lg_arena_calloc(a, npts[m], sizeof(void *))) == NULL)
            goto oom;
    }
    for (size_t i = 0; i < st->nbuckets; i++)
        for (struct lm_series *s = st->tab[i]; s; s = s->hnext)
            if ((pts[s->metric][fill[s->metric]++] = point_new(a, s, now)) == NULL)
                goto oom;
    for (int m = 0; m < M_COUNT; m++)
        if (st->overflow[m] && (pts[m][fill[m]++] = point_new(a, st->overflow[m], now)) == NULL)
            goto oom;

    lg_metric **metrics = lg_arena_calloc(a, nmetrics, sizeof *metrics);
    if (metrics == NULL)
        goto oom;
    size_t k = 0;
    for (int m = 0; m < M_COUNT; m++) {
        if (npts[m] == 0)
            continue;
        const struct lm_def *d = &defs[m];
        lg_metric *mt = lg_arena_alloc(a, sizeof *mt);
        if (mt == NULL)
            goto oom;
        opentelemetry__proto__metrics__v1__metric__init(mt);
        mt->name = (char *)d->name;
        mt->unit = (char *)d->unit;
        mt->description = (char *)d->description;
        if (d->kind == LM_HISTOGRAM) {
            Opentelemetry__Proto__Metrics__V1__Histogram *h = lg_arena_alloc(a, sizeof *h);
            if (h == NULL)
                goto oom;
            opentelemetry__proto__metrics__v1__histogram__init(h);
            h->aggregation_temporality = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
            h->n_data_points = npts[m];
            h->data_points = (lg_histogram_dp **)pts[m];
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
            mt->histogram = h;
        } else {
            Opentelemetry__Proto__Metrics__V1__Sum *sm = lg_arena_alloc(a, sizeof *sm);
            if (sm == NULL)
                goto oom;
            opentelemetry__proto__metrics__v1__sum__init(sm);
            sm->aggregation_temporality = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
            sm->is_monotonic = 1;
            sm->n_data_points = npts[m];
            sm->data_points = (lg_number_dp **)pts[m];
            mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
            mt->sum = sm;
        }
        metrics[k++] = mt;
    }
    lg_scope_metrics *sm = lg_arena_alloc(a, sizeof *sm);
    lg_scope *scope = lg_arena_alloc(a, sizeof *scope);
    lg_resource_metrics *rm = lg_arena_alloc(a, sizeof *rm);
    lg_resource *res = lg_arena_alloc(a, sizeof *res);
    lg_resource_metrics **rms = lg_arena_alloc(a, sizeof *rms);
    lg_scope_metrics **sms = lg_arena_alloc(a, sizeof *sms);
    const struct lm_attr_map *ra = &st->conf->resource_attributes;
    lg_kv **rattrs = lg_arena_calloc(a, ra->n ? ra->n : 1, sizeof *rattrs);
    if (!sm || !scope || !rm || !res || !rms || !sms || !rattrs)
        goto oom;
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    opentelemetry__proto__resource__v1__resource__init(res);
    scope->name = (char *)"llmgate/llm_metrics";
    scope->version = (char *)LLMGATE_VERSION;
    sm->scope = scope;
    sm->n_metrics = nmetrics;
    sm->metrics = metrics;
    for (size_t i = 0; i < ra->n; i++)
        if ((rattrs[i] = kv_string(a, ra->names[i], ra->values[i])) == NULL)
            goto oom;
    res->n_attributes = ra->n;
    res->attributes = rattrs;
    rm->resource = res;
    sms[0] = sm;
    rm->n_scope_metrics = 1;
    rm->scope_metrics = sms;
    rms[0] = rm;
    b->req.metrics->n_resource_metrics = 1;
    b->req.metrics->resource_metrics = rms;
    b->items = lg_batch_count_items(b);
    return b;
oom:
    *oom = true;
    lg_batch_unref(b);
    return NULL;
}

/** Emits the current cumulative state downstream now. Returns the downstream's answer
 *  (LG_OK also when there was nothing to emit). Exposed for tests. */
int lg_llm_metrics_flush(struct lg_component *c);
int lg_llm_metrics_flush(struct lg_component *c)
{
    struct lm_state *st = c->state;
    pthread_mutex_lock(&st->flush_lock);
    pthread_mutex_lock(&st->lock);
    bool oom;
    struct lg_batch *b = build_batch(st, &oom);
    pthread_mutex_unlock(&st->lock);
    int rc = LG_OK;
    if (b != NULL) {
        size_t items = b->items;
        rc = lg_fanout_consume(&c->next[LG_SIGNAL_METRICS], b);
        lg_batch_unref(b);
        if (rc == LG_OK) {
            lg_counter_add(st->emitted, items);
            st->last_refusal = LG_OK;
        } else {
            /* Cumulative: the next flush carries the same totals, so a refusal delays
             * the numbers rather than losing them. Counted and logged once per streak. */
            lg_counter_add(st->refused, items);
            if (st->last_refusal != rc)
                lg_warn(c->id, "the metrics pipeline refused %zu points (code %d); the next flush carries the same totals", items, rc);
            st->last_refusal = rc;
        }
    } else if (oom) {
        lg_error(c->id, "out of memory building the metrics batch; the next flush retries");
        rc = LG_ENOMEM;
    }
    pthread_mutex_unlock(&st->flush_lock);
    return rc;
}

static void *lm_timer(void *arg)
{
    struct lm_state *st = arg;
    int64_t next = lg_now_mono_ns() + st->conf->flush_interval_ns;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        struct timespec ts = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL};
        pthread_cond_timedwait(&st->cond, &st->lock, &ts);
        if (st->stopping)
            break;
        if (lg_now_mono_ns() < next)
            continue;
        pthread_mutex_unlock(&st->lock);
        lg_llm_metrics_flush(st->c);
        next += st->conf->flush_interval_ns;
        int64_t now = lg_now_mono_ns();
        if (next <= now) /* a slow downstream: do not try to catch up in a burst */
            next = now + st->conf->flush_interval_ns;
        pthread_mutex_lock(&st->lock);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

/* ---- life cycle ---- */

static int lm_create(struct lg_component *c, struct lg_err *err)
{
    struct lm_conf *conf = c->conf;
    if (conf->flush_interval_ns <= 0)
        return lg_conf_error(err, lg_node_get(c->conf_node, "flush_interval"), "must be greater than 0");
    struct lm_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = conf;
    st->max_series = (size_t)conf->max_series;
    if (conf->dimensions_cache_size > 0 && lg_node_get(c->conf_node, "max_series") == NULL)
        st->max_series = (size_t)conf->dimensions_cache_size;
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->flush_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[256];
    snprintf(labels, sizeof labels, "connector=\"%s\"", c->id);
    st->llm_spans = lg_telemetry_counter(t, "llmgate_llm_metrics_llm_spans", "LLM spans aggregated by the llm_metrics connector.", labels);
    st->overflowed = lg_telemetry_counter(t, "llmgate_llm_metrics_overflow_recordings",
                                          "Recordings that went to the otel.metric.overflow series because max_series was reached.", labels);
    st->emitted = lg_telemetry_counter(t, "llmgate_llm_metrics_emitted_points", "Metric points the llm_metrics connector emitted.", labels);
    st->refused = lg_telemetry_counter(t, "llmgate_llm_metrics_refused_points",
                                       "Metric points the metrics pipeline refused (the next flush carries the same totals).", labels);
    c->state = st;
    return LG_OK;
}

static int lm_start(struct lg_component *c, struct lg_err *err)
{
    struct lm_state *st = c->state;
    if (pthread_create(&st->thread, NULL, lm_timer, st) != 0)
        return lg_err_set(err, LG_EINTERNAL, "connectors.%s: cannot start the flush thread", c->id);
    st->thread_started = true;
    return LG_OK;
}

static int lm_shutdown(struct lg_component *c, int64_t deadline)
{
    (void)deadline;
    struct lm_state *st = c->state;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (st->thread_started) {
        pthread_join(st->thread, NULL);
        st->thread_started = false;
        /* The last totals, so a short-lived gateway still reports what it saw. */
        lg_llm_metrics_flush(c);
    }
    return LG_OK;
}

static void lm_destroy(struct lg_component *c)
{
    struct lm_state *st = c->state;
    if (st == NULL)
        return;
    if (st->thread_started)
        lm_shutdown(c, lg_now_mono_ns());
    for (size_t i = 0; i < st->nbuckets; i++)
        for (struct lm_series *s = st->tab[i], *nx; s; s = nx) {
            nx = s->hnext;
            series_free(s);
        }
    free(st->tab);
    for (int m = 0; m < M_COUNT; m++)
        series_free(st->overflow[m]);
    pthread_mutex_destroy(&st->lock);
    pthread_mutex_destroy(&st->flush_lock);
    pthread_cond_destroy(&st->cond);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_llm_metrics_connector = {
    .type = "llm_metrics",
    .kind = LG_CONNECTOR,
    .signals = LG_TRACES,
    .out_signals = LG_METRICS,
    .description = "aggregates token, cost, latency and error metrics (seed + OTel GenAI) from LLM spans",
    .conf_size = sizeof(struct lm_conf),
    .fields = lm_fields,
    .create = lm_create,
    .start = lm_start,
    .consume = lm_consume,
    .shutdown = lm_shutdown,
    .destroy = lm_destroy,
};
