/* processors/attributes.c — the Collector's `attributes` processor and `resource` processor:
 * the attribute actions of processors/attr_actions.h applied to span, log record and metric
 * data point attributes (`attributes`), or to resource attributes (`resource`).
 *
 * `attributes` also takes the Collector's include / exclude match properties: actions apply
 * to an item when `include` matches it (or is absent) and `exclude` does not. Within one
 * block every property given must match (services: service.name is one of the list;
 * span_names / log_bodies / log_severity_texts / metric_names: one of the list matches;
 * span_kinds: one of the list; attributes / resources: every listed {key, value} is present
 * and equal — or present, when value is left out; libraries: one {name, version} matches
 * the scope); `match_type: strict | regexp` decides how strings compare (regexp: PCRE2,
 * matched anywhere unless anchored, as Go's regexp.MatchString).
 *
 * Batches are shared and read-only: a batch that needs a change is forwarded as a
 * copy-on-write clone (lg_batch_clone_shallow) where only changed items are copied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/llm.h"
#include "../core/runtime.h"
#include "attr_actions.h"

/* ---- match properties ---- */

struct kv_match {
    const char *key;
    lg_any_value *value; /* NULL: key presence */
    pcre2_code *re;      /* regexp match type, string values */
};

struct lib_match {
    const char *name;
    const char *version; /* NULL: any */
    pcre2_code *re_name, *re_version;
};

struct str_list {
    const char **s;
    pcre2_code **re;
    size_t n;
};

struct match_props {
    bool present;
    bool regexp;
    struct str_list services, span_names, log_bodies, log_severity_texts, metric_names;
    int *span_kinds;
    size_t n_span_kinds;
    struct kv_match *attributes, *resources;
    size_t n_attributes, n_resources;
    struct lib_match *libraries;
    size_t n_libraries;
};

struct attributes_conf {
    const struct lg_node *actions;
    const struct lg_node *include, *exclude;
    const struct lg_node *attributes; /* resource processor's name for its actions */
};

struct attributes_state {
    struct lg_attr_actions acts;
    struct match_props include, exclude;
    enum lg_signal signal;
    struct lg_counter *changed_items;
};

static int parse_node_ref(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    (void)a;
    (void)err;
    *(const struct lg_node **)dst = n;
    return LG_OK;
}

static const struct lg_conf_field attributes_fields[] = {
    LG_CONF_CUSTOM("actions", NULL, struct attributes_conf, actions, parse_node_ref,
                   "list of {key, action: insert|update|upsert|delete|hash|extract|convert, value | from_attribute, pattern, converted_type}"),
    LG_CONF_CUSTOM("include", NULL, struct attributes_conf, include, parse_node_ref,
                   "act only on items matching: match_type strict|regexp, services, span_names, span_kinds, attributes, resources, libraries, log_bodies, log_severity_texts, metric_names"),
    LG_CONF_CUSTOM("exclude", NULL, struct attributes_conf, exclude, parse_node_ref, "do not act on items matching (same keys as include)"),
    LG_CONF_END,
};

static const struct lg_conf_field resource_fields[] = {
    LG_CONF_CUSTOM("attributes", NULL, struct attributes_conf, attributes, parse_node_ref,
                   "actions on resource attributes (same shape as the attributes processor's actions)"),
    LG_CONF_END,
};

static bool re_match(const pcre2_code *re, const char *s, size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return false;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static bool str_eq(const struct match_props *m, const char *pattern, const pcre2_code *re, const char *s)
{
    if (s == NULL)
        return false;
    return m->regexp ? re_match(re, s, strlen(s)) : strcmp(pattern, s) == 0;
}

static int parse_str_list(const struct lg_node *n, bool regexp, struct lg_arena *a, struct str_list *out,
                          struct lg_err *err)
{
    if (n == NULL || lg_node_is_null(n))
        return LG_OK;
    if (n->type != LG_NODE_SEQ)
        return lg_conf_error(err, n, "must be a list of strings");
    out->s = lg_arena_calloc(a, n->nitems + 1, sizeof *out->s);
    out->re = lg_arena_calloc(a, n->nitems + 1, sizeof *out->re);
    if (!out->s || !out->re)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->nitems; i++) {
        if (n->items[i]->type != LG_NODE_SCALAR)
            return lg_conf_error(err, n->items[i], "must be a string");
        out->s[i] = n->items[i]->scalar;
        out->n = i + 1;
        if (regexp && (out->re[i] = lg_conf_regex(n->items[i], out->s[i], err)) == NULL)
            return LG_EINVAL;
    }
    return LG_OK;
}

static int parse_kv_list(const struct lg_node *n, bool regexp, struct lg_arena *a, struct kv_match **out,
                         size_t *nout, struct lg_err *err)
{
    if (n == NULL || lg_node_is_null(n))
        return LG_OK;
    if (n->type != LG_NODE_SEQ)
        return lg_conf_error(err, n, "must be a list of {key, value}");
    *out = lg_arena_calloc(a, n->nitems + 1, sizeof **out);
    if (*out == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->nitems; i++) {
        const struct lg_node *it = n->items[i];
        const struct lg_node *k = lg_node_get(it, "key"), *v = lg_node_get(it, "value");
        if (k == NULL || k->type != LG_NODE_SCALAR || !k->scalar[0])
            return lg_conf_error(err, it, "key is required");
        struct kv_match *m = &(*out)[i];
        m->key = k->scalar;
        *nout = i + 1;
        if (v && !lg_node_is_null(v)) {
            int rc = lg_attr_value_from_node(v, a, &m->value, err);
            if (rc != LG_OK)
                return rc;
            if (regexp) {
                if (m->value->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
                    return lg_conf_error(err, v, "match_type regexp needs string values");
                if ((m->re = lg_conf_regex(v, m->value->string_value, err)) == NULL)
                    return LG_EINVAL;
            }
        }
    }
    return LG_OK;
}

static const char *const span_kind_names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                              "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};

static int parse_match(const struct lg_node *n, enum lg_signal sig, struct lg_arena *a, struct match_props *m,
                       struct lg_err *err)
{
    static const char *const known[] = {"match_type", "services", "span_names", "span_kinds", "attributes",
                                         "resources", "libraries", "log_bodies", "log_severity_texts",
                                         "log_severity_number", "metric_names", "regexp"};
    if (n == NULL || lg_node_is_null(n))
        return LG_OK;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map of match properties");
    for (size_t i = 0; i < n->npairs; i++) {
        bool ok = false;
        for (size_t k = 0; k < LG_ARRAY_LEN(known) && !ok; k++)
            ok = strcmp(n->pairs[i].key, known[k]) == 0;
        if (!ok)
            return lg_conf_error(err, n->pairs[i].value, "unknown match property \"%s\"", n->pairs[i].key);
    }
    m->present = true;
    const struct lg_node *mt = lg_node_get(n, "match_type");
    if (mt == NULL || mt->type != LG_NODE_SCALAR || (strcmp(mt->scalar, "strict") && strcmp(mt->scalar, "regexp")))
        return lg_conf_error(err, mt ? mt : n, "match_type must be strict or regexp");
    m->regexp = strcmp(mt->scalar, "regexp") == 0;
    if (lg_node_get(n, "log_severity_number"))
        return lg_conf_error(err, lg_node_get(n, "log_severity_number"), "log_severity_number is not supported");
    struct {
        const char *key;
        enum lg_signal only;
    } per_signal[] = {{"span_names", LG_SIGNAL_TRACES},   {"span_kinds", LG_SIGNAL_TRACES},
                      {"log_bodies", LG_SIGNAL_LOGS},     {"log_severity_texts", LG_SIGNAL_LOGS},
                      {"metric_names", LG_SIGNAL_METRICS}};
    for (size_t i = 0; i < LG_ARRAY_LEN(per_signal); i++)
        if (lg_node_get(n, per_signal[i].key) && sig != per_signal[i].only)
            return lg_conf_error(err, lg_node_get(n, per_signal[i].key), "%s does not apply to %s",
                                 per_signal[i].key, lg_signal_name(sig));
    int rc;
    if ((rc = parse_str_list(lg_node_get(n, "services"), m->regexp, a, &m->services, err)) ||
        (rc = parse_str_list(lg_node_get(n, "span_names"), m->regexp, a, &m->span_names, err)) ||
        (rc = parse_str_list(lg_node_get(n, "log_bodies"), m->regexp, a, &m->log_bodies, err)) ||
        (rc = parse_str_list(lg_node_get(n, "log_severity_texts"), m->regexp, a, &m->log_severity_texts, err)) ||
        (rc = parse_str_list(lg_node_get(n, "metric_names"), m->regexp, a, &m->metric_names, err)) ||
        (rc = parse_kv_list(lg_node_get(n, "attributes"), m->regexp, a, &m->attributes, &m->n_attributes, err)) ||
        (rc = parse_kv_list(lg_node_get(n, "resources"), m->regexp, a, &m->resources, &m->n_resources, err)))
        return rc;
    const struct lg_node *kinds = lg_node_get(n, "span_kinds");
    if (kinds && kinds->type == LG_NODE_SEQ) {
        m->span_kinds = lg_arena_calloc(a, kinds->nitems + 1, sizeof *m->span_kinds);
        if (m->span_kinds == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        for (size_t i = 0; i < kinds->nitems; i++) {
            int k = -1;
            for (size_t j = 0; j < LG_ARRAY_LEN(span_kind_names) && k < 0; j++)
                if (kinds->items[i]->type == LG_NODE_SCALAR && strcmp(kinds->items[i]->scalar, span_kind_names[j]) == 0)
                    k = (int)j;
            if (k < 0)
                return lg_conf_error(err, kinds->items[i], "unknown span kind (SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ...)");
            m->span_kinds[m->n_span_kinds++] = k;
        }
    }
    const struct lg_node *libs = lg_node_get(n, "libraries");
    if (libs && libs->type == LG_NODE_SEQ) {
        m->libraries = lg_arena_calloc(a, libs->nitems + 1, sizeof *m->libraries);
        if (m->libraries == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        for (size_t i = 0; i < libs->nitems; i++) {
            const struct lg_node *nm = lg_node_get(libs->items[i], "name"), *ver = lg_node_get(libs->items[i], "version");
            if (nm == NULL || nm->type != LG_NODE_SCALAR)
                return lg_conf_error(err, libs->items[i], "name is required");
            struct lib_match *l = &m->libraries[m->n_libraries++];
            l->name = nm->scalar;
            l->version = ver && ver->type == LG_NODE_SCALAR ? ver->scalar : NULL;
            if (m->regexp && (l->re_name = lg_conf_regex(nm, l->name, err)) == NULL)
                return LG_EINVAL;
            if (m->regexp && l->version && (l->re_version = lg_conf_regex(ver, l->version, err)) == NULL)
                return LG_EINVAL;
        }
    }
    return LG_OK;
}

static void free_str_list(struct str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pcre2_code_free(l->re ? l->re[i] : NULL);
}

static void free_match(struct match_props *m)
{
    free_str_list(&m->services);
    free_str_list(&m->span_names);
    free_str_list(&m->log_bodies);
    free_str_list(&m->log_severity_texts);
    free_str_list(&m->metric_names);
    for (size_t i = 0; i < m->n_attributes; i++)
        pcre2_code_free(m->attributes[i].re);
    for (size_t i = 0; i < m->n_resources; i++)
        pcre2_code_free(m->resources[i].re);
    for (size_t i = 0; i < m->n_libraries; i++) {
        pcre2_code_free(m->libraries[i].re_name);
        pcre2_code_free(m->libraries[i].re_version);
    }
}

static bool any_of(const struct match_props *m, const struct str_list *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (str_eq(m, l->s[i], l->re[i], s))
            return true;
    return false;
}

static bool kvs_match(const struct match_props *m, const struct kv_match *want, size_t nwant, lg_kv *const *kv,
                      size_t n)
{
    for (size_t i = 0; i < nwant; i++) {
        const lg_any_value *v = lg_attr_find(kv, n, want[i].key);
        if (v == NULL)
            return false;
        if (want[i].value == NULL)
            continue;
        if (m->regexp) {
            const char *s = lg_any_str(v);
            if (s == NULL || !re_match(want[i].re, s, strlen(s)))
                return false;
        } else if (!lg_any_value_equal(v, want[i].value)) {
            return false;
        }
    }
    return true;
}

/** Whether item properties match m. Item-specific fields may be NULL / -1 when the signal
 *  has none. */
struct item_view {
    const lg_resource *res;
    const lg_scope *scope;
    lg_kv *const *attrs;
    size_t nattrs;
    const char *span_name;
    int span_kind;
    const char *log_body;
    const char *severity_text;
    const char *metric_name;
};

static bool props_match(const struct match_props *m, const struct item_view *it)
{
    if (m->services.n) {
        const char *svc = it->res ? lg_any_str(lg_attr_find(it->res->attributes, it->res->n_attributes, "service.name"))
                                  : NULL;
        if (!any_of(m, &m->services, svc))
            return false;
    }
    if (m->span_names.n && !any_of(m, &m->span_names, it->span_name))
        return false;
    if (m->log_bodies.n && !any_of(m, &m->log_bodies, it->log_body))
        return false;
    if (m->log_severity_texts.n && !any_of(m, &m->log_severity_texts, it->severity_text))
        return false;
    if (m->metric_names.n && !any_of(m, &m->metric_names, it->metric_name))
        return false;
    if (m->n_span_kinds) {
        bool ok = false;
        for (size_t i = 0; i < m->n_span_kinds && !ok; i++)
            ok = m->span_kinds[i] == it->span_kind;
        if (!ok)
            return false;
    }
    if (m->n_attributes && !kvs_match(m, m->attributes, m->n_attributes, it->attrs, it->nattrs))
        return false;
    if (m->n_resources &&
        !kvs_match(m, m->resources, m->n_resources, it->res ? it->res->attributes : NULL, it->res ? it->res->n_attributes : 0))
        return false;
    if (m->n_libraries) {
        bool ok = false;
        const char *name = it->scope ? it->scope->name : NULL, *ver = it->scope ? it->scope->version : NULL;
        for (size_t i = 0; i < m->n_libraries && !ok; i++)
            ok = str_eq(m, m->libraries[i].name, m->libraries[i].re_name, name) &&
                 (m->libraries[i].version == NULL || str_eq(m, m->libraries[i].version, m->libraries[i].re_version, ver));
        if (!ok)
            return false;
    }
    return true;
}

static bool selected(const struct attributes_state *st, const struct item_view *it)
{
    if (st->include.present && !props_match(&st->include, it))
        return false;
    if (st->exclude.present && props_match(&st->exclude, it))
        return false;
    return true;
}

/* ---- applying ---- */

/* Applies the actions to one attribute list; on change copies the owning struct (of type T
 * at *slot) into the clone's arena and points the slot at the copy. */
#define APPLY_ITEM(ST, NB, T, SLOT, ATTRS, NATTRS, CHANGED_COUNT)                                  \
    do {                                                                                           \
        lg_kv **kv_ = (*(SLOT))->ATTRS;                                                            \
        size_t n_ = (*(SLOT))->NATTRS;                                                             \
        bool ch_ = false;                                                                          \
        if (lg_attr_actions_apply(&(ST)->acts, (NB)->arena, &kv_, &n_, &ch_) != LG_OK)             \
            return LG_ENOMEM;                                                                      \
        if (ch_) {                                                                                 \
            T *cp_ = lg_arena_memdup((NB)->arena, *(SLOT), sizeof(T));                             \
            if (cp_ == NULL)                                                                       \
                return LG_ENOMEM;                                                                  \
            cp_->ATTRS = kv_;                                                                      \
            cp_->NATTRS = n_;                                                                      \
            *(SLOT) = cp_;                                                                         \
            (CHANGED_COUNT)++;                                                                     \
        }                                                                                          \
    } while (0)

static int apply_traces(struct attributes_state *st, struct lg_batch *nb, uint64_t *changed)
{
    lg_traces_req *req = nb->req.traces;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        lg_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            lg_scope_spans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                lg_span *sp = ss->spans[i];
                struct item_view it = {.res = rs->resource, .scope = ss->scope, .attrs = sp->attributes,
                                       .nattrs = sp->n_attributes, .span_name = sp->name, .span_kind = (int)sp->kind};
                if (!selected(st, &it))
                    continue;
                APPLY_ITEM(st, nb, lg_span, &ss->spans[i], attributes, n_attributes, *changed);
            }
        }
    }
    return LG_OK;
}

static int apply_logs(struct attributes_state *st, struct lg_batch *nb, uint64_t *changed)
{
    lg_logs_req *req = nb->req.logs;
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        lg_resource_logs *rl = req->resource_logs[r];
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            lg_scope_logs *sl = rl->scope_logs[s];
            for (size_t i = 0; i < sl->n_log_records; i++) {
                lg_log_record *lr = sl->log_records[i];
                struct item_view it = {.res = rl->resource, .scope = sl->scope, .attrs = lr->attributes,
                                       .nattrs = lr->n_attributes, .span_kind = -1,
                                       .log_body = lg_any_str(lr->body), .severity_text = lr->severity_text};
                if (!selected(st, &it))
                    continue;
                APPLY_ITEM(st, nb, lg_log_record, &sl->log_records[i], attributes, n_attributes, *changed);
            }
        }
    }
    return LG_OK;
}

/* Data points of one metric: copies the metric, its data message and its point array once
 * something changes, then points at changed copies of the points. */
#define APPLY_POINTS(ST, NB, M, FIELD, DT, PT, CHANGED_COUNT)                                      \
    do {                                                                                           \
        DT *d_ = (M)->FIELD;                                                                       \
        bool copied_ = false;                                                                      \
        for (size_t p_ = 0; d_ && p_ < d_->n_data_points; p_++) {                                 \
            lg_kv **kv_ = d_->data_points[p_]->attributes;                                        \
            size_t n_ = d_->data_points[p_]->n_attributes;                                        \
            bool ch_ = false;                                                                      \
            if (lg_attr_actions_apply(&(ST)->acts, (NB)->arena, &kv_, &n_, &ch_) != LG_OK)         \
                return LG_ENOMEM;                                                                  \
            if (!ch_)                                                                              \
                continue;                                                                          \
            if (!copied_) {                                                                        \
                lg_metric *mc_ = lg_arena_memdup((NB)->arena, (M), sizeof *mc_);                   \
                DT *dc_ = lg_arena_memdup((NB)->arena, d_, sizeof *dc_);                           \
                PT **pa_ = dc_ ? lg_arena_memdup((NB)->arena, d_->data_points,                      \
                                                 (d_->n_data_points + 1) * sizeof *pa_)            \
                               : NULL;                                                             \
                if (!mc_ || !pa_)                                                                  \
                    return LG_ENOMEM;                                                              \
                dc_->data_points = pa_;                                                            \
                mc_->FIELD = dc_;                                                                  \
                (M) = mc_;                                                                         \
                d_ = dc_;                                                                          \
                copied_ = true;                                                                    \
            }                                                                                      \
            PT *pc_ = lg_arena_memdup((NB)->arena, d_->data_points[p_], sizeof *pc_);              \
            if (pc_ == NULL)                                                                       \
                return LG_ENOMEM;                                                                  \
            pc_->attributes = kv_;                                                                 \
            pc_->n_attributes = n_;                                                                \
            d_->data_points[p_] = pc_;                                                             \
            (CHANGED_COUNT)++;                                                                     \
        }                                                                                          \
    } while (0)

static int apply_metrics(struct attributes_state *st, struct lg_batch *nb, uint64_t *changed)
{
    lg_metrics_req *req = nb->req.metrics;
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
        lg_resource_metrics *rm = req->resource_metrics[r];
        for (size_t s = 0; s < rm->n_scope_metrics; s++) {
            lg_scope_metrics *sm = rm->scope_metrics[s];
            for (size_t i = 0; i < sm->n_metrics; i++) {
                lg_metric *m = sm->metrics[i];
                struct item_view it = {.res = rm->resource, .scope = sm->scope, .span_kind = -1, .metric_name = m->name};
                if (!selected(st, &it))
                    continue;
                switch (m->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                    APPLY_POINTS(st, nb, m, gauge, Opentelemetry__Proto__Metrics__V1__Gauge, lg_number_dp, *changed);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
                    APPLY_POINTS(st, nb, m, sum, Opentelemetry__Proto__Metrics__V1__Sum, lg_number_dp, *changed);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    APPLY_POINTS(st, nb, m, histogram, Opentelemetry__Proto__Metrics__V1__Histogram, lg_histogram_dp,
                                 *changed);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    APPLY_POINTS(st, nb, m, exponential_histogram,
                                 Opentelemetry__Proto__Metrics__V1__ExponentialHistogram, lg_exp_histogram_dp, *changed);
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    APPLY_POINTS(st, nb, m, summary, Opentelemetry__Proto__Metrics__V1__Summary, lg_summary_dp, *changed);
                    break;
                default:
                    break;
                }
                sm->metrics[i] = m;
            }
        }
    }
    return LG_OK;
}

/* Resource attributes: the wrappers are already the clone's; the Resource is copied. */
static int apply_resources(struct attributes_state *st, struct lg_batch *nb, uint64_t *changed)
{
    size_t n;
    lg_resource **slots[1];
    for (size_t r = 0;; r++) {
        switch (nb->signal) {
        case LG_SIGNAL_TRACES:
            n = nb->req.traces->n_resource_spans;
            if (r < n)
                slots[0] = &nb->req.traces->resource_spans[r]->resource;
            break;
        case LG_SIGNAL_METRICS:
            n = nb->req.metrics->n_resource_metrics;
            if (r < n)
                slots[0] = &nb->req.metrics->resource_metrics[r]->resource;
            break;
        default:
            n = nb->req.logs->n_resource_logs;
            if (r < n)
                slots[0] = &nb->req.logs->resource_logs[r]->resource;
            break;
        }
        if (r >= n)
            break;
        if (*slots[0] == NULL) {
            /* a request without a resource gets an empty one to add to */
            lg_resource *res = lg_arena_alloc(nb->arena, sizeof *res);
            if (res == NULL)
                return LG_ENOMEM;
            opentelemetry__proto__resource__v1__resource__init(res);
            lg_kv **kv = NULL;
            size_t nkv = 0;
            bool ch = false;
            if (lg_attr_actions_apply(&st->acts, nb->arena, &kv, &nkv, &ch) != LG_OK)
                return LG_ENOMEM;
            if (ch) {
                res->attributes = kv;
                res->n_attributes = nkv;
                *slots[0] = res;
                (*changed)++;
            }
            continue;
        }
        APPLY_ITEM(st, nb, lg_resource, slots[0], attributes, n_attributes, *changed);
    }
    return LG_OK;
}

static int consume_common(struct lg_component *c, struct lg_batch *b, bool resource)
{
    struct attributes_state *st = c->state;
    struct lg_batch *nb = lg_batch_clone_shallow(b);
    if (nb == NULL)
        return LG_ENOMEM;
    uint64_t changed = 0;
    int rc;
    if (resource)
        rc = apply_resources(st, nb, &changed);
    else if (b->signal == LG_SIGNAL_TRACES)
        rc = apply_traces(st, nb, &changed);
    else if (b->signal == LG_SIGNAL_LOGS)
        rc = apply_logs(st, nb, &changed);
    else
        rc = apply_metrics(st, nb, &changed);
    if (rc != LG_OK) {
        lg_batch_unref(nb);
        return rc;
    }
    lg_counter_add(st->changed_items, changed);
    /* unchanged: forward the original (the clone cost only its wrappers) */
    rc = lg_fanout_consume(&c->next[b->signal], changed ? nb : b);
    lg_batch_unref(nb);
    return rc;
}

static int attributes_consume(struct lg_component *c, struct lg_batch *b) { return consume_common(c, b, false); }
static int resource_consume(struct lg_component *c, struct lg_batch *b) { return consume_common(c, b, true); }

static enum lg_signal pipeline_signal(const struct lg_component *c)
{
    const char *p = c->pipeline_id ? c->pipeline_id : "traces";
    const char *slash = strchr(p, '/');
    int s = lg_signal_parse(p, slash ? (size_t)(slash - p) : strlen(p));
    return s < 0 ? LG_SIGNAL_TRACES : (enum lg_signal)s;
}

static void state_free(struct attributes_state *st)
{
    if (st == NULL)
        return;
    lg_attr_actions_free(&st->acts);
    free_match(&st->include);
    free_match(&st->exclude);
    free(st);
}

static int create_common(struct lg_component *c, const struct lg_node *actions, const char *actions_key,
                         bool with_match, struct lg_err *err)
{
    struct attributes_conf *conf = c->conf;
    struct attributes_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->signal = pipeline_signal(c);
    int rc = lg_attr_actions_parse(actions, c->arena, &st->acts, err);
    if (rc == LG_OK && st->acts.n == 0)
        rc = lg_conf_error(err, actions ? actions : c->conf_node, "%s: at least one action is required", actions_key);
    if (rc == LG_OK && with_match)
        rc = parse_match(conf->include, st->signal, c->arena, &st->include, err);
    if (rc == LG_OK && with_match)
        rc = parse_match(conf->exclude, st->signal, c->arena, &st->exclude, err);
    if (rc != LG_OK) {
        state_free(st);
        return rc;
    }
    char labels[300];
    snprintf(labels, sizeof labels, "processor=\"%s\",pipeline=\"%s\"", c->id, c->pipeline_id ? c->pipeline_id : "");
    st->changed_items = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, "llmgate_processor_attributes_changed_items",
                                             "Items (or resources) whose attributes the processor changed.", labels);
    c->state = st;
    return LG_OK;
}

static int attributes_create(struct lg_component *c, struct lg_err *err)
{
    struct attributes_conf *conf = c->conf;
    return create_common(c, conf->actions, "actions", true, err);
}

static int resource_create(struct lg_component *c, struct lg_err *err)
{
    struct attributes_conf *conf = c->conf;
    return create_common(c, conf->attributes, "attributes", false, err);
}

static void attributes_destroy(struct lg_component *c)
{
    state_free(c->state);
    c->state = NULL;
}

const struct lg_component_type lg_attributes_processor = {
    .type = "attributes",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "the Collector's attribute actions on span, log record and data point attributes, with include/exclude",
    .conf_size = sizeof(struct attributes_conf),
    .fields = attributes_fields,
    .create = attributes_create,
    .consume = attributes_consume,
    .destroy = attributes_destroy,
};

const struct lg_component_type lg_resource_processor = {
    .type = "resource",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "the Collector's attribute actions on resource attributes",
    .conf_size = sizeof(struct attributes_conf),
    .fields = resource_fields,
    .create = resource_create,
    .consume = resource_consume,
    .destroy = attributes_destroy,
};
