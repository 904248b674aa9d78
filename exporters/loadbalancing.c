/* exporters/loadbalancing.c — the `loadbalancing` exporter: the first tier of a two-tier
 * gateway. It routes every span (or log record) by trace ID — or every resource by
 * service.name — to one of several second-tier gateways, so that all spans of a trace meet
 * in the same tail sampler. Config as the Collector's (REFERENCE §4):
 *
 *   loadbalancing:
 *     routing_key: traceID | service
 *     protocol: {otlp: <an `otlp` exporter config without endpoint>}
 *     resolver: {static: {hostnames: [a:4317, b:4317]}}
 *            or {dns: {hostname: gw-headless, port: 4317, interval: 5s, timeout: 1s}}
 *
 * The ring is the Collector's: 36000 positions, 100 points per backend at
 * crc32(endpoint + byte(i)) % 36000 (backends in sorted order, a taken position stays with
 * the first), a key at crc32(trace ID bytes or service name) % 36000 goes to the first
 * point at or after it. So a Collector tier and an llmgate tier with the same backend list
 * send each trace to the same place, and a backend change moves about 1/N of the keys.
 *
 * Owns: one child `otlp` exporter per backend (created from the protocol.otlp node with
 * `endpoint` set; each has its own sending queue and retry, so a slow backend does not
 * hold the others), the ring, and for the dns resolver a thread that re-resolves every
 * `interval` and adds / drains / removes children. A child's refusal (its queue full) is
 * the whole call's refusal: the sender retries, and the parts other children accepted may
 * then arrive twice (at-least-once, as everywhere in the pipeline). */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../core/component.h"
#include "../core/log.h"
#include "../core/runtime.h"

#define RING_POSITIONS 36000u
#define POINTS_PER_BACKEND 100
#define DEFAULT_OTLP_PORT "4317"
/* How long a backend that DNS no longer returns may drain its queue. */
#define REMOVED_DRAIN_NS (30 * 1000000000LL)

extern const struct lg_component_type lg_otlp_exporter;

struct lb_static_conf {
    struct lg_strlist hostnames;
};

struct lb_dns_conf {
    const char *hostname;
    const char *port;
    int64_t interval_ns;
    int64_t timeout_ns;
};

struct lb_resolver_conf {
    struct lb_static_conf static_;
    bool static_present;
    struct lb_dns_conf dns;
    bool dns_present;
    const struct lg_node *k8s;
    const struct lg_node *aws_cloud_map;
};

struct lb_protocol_conf {
    const struct lg_node *otlp;
};

struct lb_conf {
    const char *routing_key;
    struct lb_protocol_conf protocol;
    struct lb_resolver_conf resolver;
};

static int parse_node_ref(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    (void)a;
    (void)err;
    *(const struct lg_node **)dst = n;
    return LG_OK;
}

static const struct lg_conf_field lb_static_fields[] = {
    LG_CONF_STRLIST("hostnames", struct lb_static_conf, hostnames, "backends as host:port (port 4317 when left out)"),
    LG_CONF_END,
};

static const struct lg_conf_field lb_dns_fields[] = {
    LG_CONF_STRING("hostname", NULL, struct lb_dns_conf, hostname, "name whose A/AAAA records are the backends (a headless Service)"),
    LG_CONF_STRING("port", DEFAULT_OTLP_PORT, struct lb_dns_conf, port, "port of every resolved address"),
    LG_CONF_DURATION("interval", "5s", struct lb_dns_conf, interval_ns, "how often the name is resolved again"),
    LG_CONF_DURATION("timeout", "1s", struct lb_dns_conf, timeout_ns, "accepted; getaddrinfo uses the system resolver's own timeout"),
    LG_CONF_END,
};

static const struct lg_conf_field lb_resolver_fields[] = {
    LG_CONF_SECTION_OPT("static", struct lb_resolver_conf, static_, static_present, lb_static_fields, "a fixed list of backends"),
    LG_CONF_SECTION_OPT("dns", struct lb_resolver_conf, dns, dns_present, lb_dns_fields, "backends from DNS, re-resolved periodically"),
    LG_CONF_CUSTOM("k8s", NULL, struct lb_resolver_conf, k8s, parse_node_ref, "not supported: use dns with a headless Service"),
    LG_CONF_CUSTOM("aws_cloud_map", NULL, struct lb_resolver_conf, aws_cloud_map, parse_node_ref, "not supported"),
    LG_CONF_END,
};

static const struct lg_conf_field lb_protocol_fields[] = {
    LG_CONF_CUSTOM("otlp", NULL, struct lb_protocol_conf, otlp, parse_node_ref, "an `otlp` exporter config (endpoint is set per backend)"),
    LG_CONF_END,
};

static const struct lg_conf_field lb_fields[] = {
    LG_CONF_STRING("routing_key", "traceID", struct lb_conf, routing_key, "traceID (spans, logs) or service (all signals)"),
    LG_CONF_SECTION("protocol", struct lb_conf, protocol, lb_protocol_fields, "how backends are reached"),
    LG_CONF_SECTION("resolver", struct lb_conf, resolver, lb_resolver_fields, "where the backend list comes from (static or dns)"),
    LG_CONF_ACCEPTED("timeout", "each backend's protocol.otlp.timeout applies"),
    LG_CONF_ACCEPTED("retry_on_failure", "each backend's protocol.otlp.retry_on_failure applies"),
    LG_CONF_ACCEPTED("sending_queue", "each backend's protocol.otlp.sending_queue applies"),
    LG_CONF_END,
};

struct backend {
    char *key;                  /* as the resolver gave it; what the ring hashes */
    char *id;                   /* child component ID: "<lb id>/<key>" */
    struct lg_arena *arena;     /* the child's config nodes */
    struct lg_component *child;
    bool started;
};

/* One immutable routing table; replaced whole when the backend list changes. */
struct table {
    struct backend **backends; /* sorted by key */
    size_t n;
    uint32_t *ring_pos;        /* sorted positions */
    uint32_t *ring_backend;    /* index into backends for each position */
    size_t nring;
};

struct lb_state {
    struct lg_component *c;
    struct lb_conf *conf;
    bool by_service;
    pthread_rwlock_t lock; /* guards `table` (readers: consume; writer: resolver) */
    struct table *table;
    pthread_t resolver;
    bool resolver_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
    char **last_keys;      /* the last resolved list applied (resolver thread only) */
    size_t nlast;
    bool last_incomplete;  /* some backend of it could not be started: apply again */
    struct lg_counter *resolutions_ok, *resolutions_failed, *backend_updates, *no_backend;
};

/* ---- ring ---- */

static uint32_t ring_hash(const void *p, size_t n)
{
    return (uint32_t)(crc32(0L, p, (uInt)n) % RING_POSITIONS);
}

static int table_build_ring(struct table *t)
{
    size_t max = t->n * POINTS_PER_BACKEND;
    t->ring_pos = malloc((max ? max : 1) * sizeof *t->ring_pos);
    t->ring_backend = malloc((max ? max : 1) * sizeof *t->ring_backend);
    uint8_t *taken = calloc(RING_POSITIONS, 1);
    if (!t->ring_pos || !t->ring_backend || !taken) {
        free(taken);
        return LG_ENOMEM;
    }
    /* position -> backend index + 1, then read back in position order (a counting sort). */
    uint32_t *owner = calloc(RING_POSITIONS, sizeof *owner);
    if (owner == NULL) {
        free(taken);
        return LG_ENOMEM;
    }
    for (size_t b = 0; b < t->n; b++) {
        size_t kl = strlen(t->backends[b]->key);
        char buf[512];
        if (kl + 1 > sizeof buf)
            kl = sizeof buf - 1;
        memcpy(buf, t->backends[b]->key, kl);
        for (int i = 0; i < POINTS_PER_BACKEND; i++) {
            buf[kl] = (char)(uint8_t)i;
            uint32_t pos = ring_hash(buf, kl + 1);
            if (taken[pos])
                continue;
            taken[pos] = 1;
            owner[pos] = (uint32_t)b + 1;
        }
    }
    t->nring = 0;
    for (uint32_t p = 0; p < RING_POSITIONS; p++)
        if (owner[p]) {
            t->ring_pos[t->nring] = p;
            t->ring_backend[t->nring] = owner[p] - 1;
            t->nring++;
        }
    free(owner);
    free(taken);
    return LG_OK;
}

/** The backend for a key: the first ring point at or after its position (wrapping). */
static size_t table_pick(const struct table *t, const void *key, size_t len)
{
    uint32_t pos = ring_hash(key, len);
    size_t lo = 0, hi = t->nring;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->ring_pos[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t->ring_backend[lo == t->nring ? 0 : lo];
}

/* ---- backends ---- */

static struct lg_node *node_scalar(struct lg_arena *a, const struct lg_node *at, const char *path,
                                   const char *text)
{
    struct lg_node *n = lg_arena_calloc(a, 1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->type = LG_NODE_SCALAR;
    n->scalar = lg_arena_strdup(a, text);
    n->quoted = true;
    n->file = at ? at->file : "";
    n->line = at ? at->line : 0;
    n->col = at ? at->col : 0;
    n->path = path;
    return n->scalar ? n : NULL;
}

/** The child's config: protocol.otlp with `endpoint` replaced (the template's pairs are
 *  shared, not copied). */
static const struct lg_node *child_conf(struct lg_arena *a, const struct lg_node *tmpl,
                                        const struct lg_node *ctx, const char *endpoint)
{
    const struct lg_node *at = tmpl ? tmpl : ctx;
    size_t np = tmpl && tmpl->type == LG_NODE_MAP ? tmpl->npairs : 0;
    struct lg_node *m = lg_arena_calloc(a, 1, sizeof *m);
    struct lg_node_pair *pairs = lg_arena_calloc(a, np + 1, sizeof *pairs);
    char *path = lg_arena_alloc(a, strlen(at->path) + 32);
    if (!m || !pairs || !path)
        return NULL;
    sprintf(path, "%s%sendpoint", at->path, at->path[0] ? "." : "");
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        if (strcmp(tmpl->pairs[i].key, "endpoint") != 0)
            pairs[k++] = tmpl->pairs[i];
    pairs[k].key = "endpoint";
    pairs[k].value = node_scalar(a, at, path, endpoint);
    if (pairs[k].value == NULL)
        return NULL;
    *m = *at;
    m->type = LG_NODE_MAP;
    m->scalar = NULL;
    m->pairs = pairs;
    m->npairs = k + 1;
    m->items = NULL;
    m->nitems = 0;
    return m;
}

static void backend_free(struct backend *b)
{
    if (b == NULL)
        return;
    lg_runtime_child_free(b->child);
    lg_arena_destroy(b->arena);
    free(b->key);
    free(b->id);
    free(b);
}

/** A backend for resolver output `key` (host:port or a bare host, which gets :4317). */
static struct backend *backend_new(struct lb_state *st, const char *key, struct lg_err *err)
{
    struct lg_component *c = st->c;
    struct backend *b = calloc(1, sizeof *b);
    char endpoint[600];
    if (b == NULL || strlen(key) > 500)
        goto oom;
    /* host:port, [v6]:port, or a bare host / v6 address that gets the default port. */
    const char *colon = strrchr(key, ':');
    bool has_port = colon && (key[0] != '[' ? strchr(key, ':') == colon : colon > strchr(key, ']'));
    if (has_port)
        snprintf(endpoint, sizeof endpoint, "%s", key);
    else if (strchr(key, ':') && key[0] != '[')
        snprintf(endpoint, sizeof endpoint, "[%s]:%s", key, DEFAULT_OTLP_PORT);
    else
        snprintf(endpoint, sizeof endpoint, "%s:%s", key, DEFAULT_OTLP_PORT);
    b->key = strdup(key);
    b->arena = lg_arena_create(1024);
    if (!b->key || !b->arena || asprintf(&b->id, "%s/%s", c->id, key) < 0) {
        b->id = NULL;
        goto oom;
    }
    const struct lg_node *n = child_conf(b->arena, st->conf->protocol.otlp, c->conf_node, endpoint);
    if (n == NULL)
        goto oom;
    b->child = lg_runtime_child_new(c->rt, &lg_otlp_exporter, b->id, n, err);
    if (b->child == NULL) {
        backend_free(b);
        return NULL;
    }
    return b;
oom:
    backend_free(b);
    lg_err_set(err, LG_ENOMEM, "out of memory");
    return NULL;
}

static void table_free(struct table *t, bool with_backends)
{
    if (t == NULL)
        return;
    if (with_backends)
        for (size_t i = 0; i < t->n; i++)
            backend_free(t->backends[i]);
    free(t->backends);
    free(t->ring_pos);
    free(t->ring_backend);
    free(t);
}

/** A table over the keys (sorted) that have a backend in `pool` (matched by key; used[j]
 *  set for the ones taken). Keys without one are left out. NULL on OOM. */
static struct table *table_from(char **keys, size_t n, struct backend **pool, size_t npool, bool *used)
{
    struct table *t = calloc(1, sizeof *t);
    if (t == NULL || (t->backends = calloc(n ? n : 1, sizeof *t->backends)) == NULL) {
        free(t);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < npool; j++)
            if (!used[j] && pool[j] && strcmp(pool[j]->key, keys[i]) == 0) {
                used[j] = true;
                t->backends[t->n++] = pool[j];
                break;
            }
    /* keys are sorted, so backends are in key order: the ring depends on that order */
    if (table_build_ring(t) != LG_OK) {
        for (size_t j = 0; j < npool; j++)
            used[j] = false;
        t->n = 0;
        table_free(t, false);
        return NULL;
    }
    return t;
}

/** The static resolver's table: a backend per key, created (not started) now. */
static struct table *table_new(struct lb_state *st, char **keys, size_t n, struct lg_err *err)
{
    struct backend **pool = calloc(n ? n : 1, sizeof *pool);
    bool *used = calloc(n ? n : 1, sizeof *used);
    struct table *t = NULL;
    size_t made = 0;
    if (pool && used) {
        for (; made < n; made++)
            if ((pool[made] = backend_new(st, keys[made], err)) == NULL)
                break;
        if (made == n && (t = table_from(keys, n, pool, n, used)) == NULL)
            lg_err_set(err, LG_ENOMEM, "out of memory");
    } else {
        lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    if (t == NULL)
        for (size_t j = 0; pool && j < made; j++)
            backend_free(pool[j]);
    free(pool);
    free(used);
    return t;
}

static int table_start(struct table *t, struct lg_err *err)
{
    for (size_t i = 0; i < t->n; i++) {
        struct backend *b = t->backends[i];
        if (b->started)
            continue;
        int rc = b->child->type->start ? b->child->type->start(b->child, err) : LG_OK;
        if (rc != LG_OK)
            return rc;
        b->started = b->child->started = true;
    }
    return LG_OK;
}

static void backend_drain(struct backend *b, int64_t deadline)
{
    if (b->started && b->child->type->shutdown)
        b->child->type->shutdown(b->child, deadline);
    b->started = b->child->started = false;
}

/* ---- routing ---- */

static const char *service_of(const lg_resource *r, size_t *len)
{
    for (size_t i = 0; r && i < r->n_attributes; i++) {
        const lg_kv *kv = r->attributes[i];
        if (kv->key && strcmp(kv->key, "service.name") == 0 && kv->value &&
            kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            *len = strlen(kv->value->string_value);
            return kv->value->string_value;
        }
    }
    *len = 0;
    return "";
}

/* Per-backend output under construction: new wrapper messages in the output batch's arena
 * that point at the input's spans / records / metrics (the input is kept as a dependency). */
struct route_out {
    struct lg_batch *b;
    ProtobufCMessage **res;   /* resource entries of the output request (ResourceSpans, ...) */
    size_t nres;
    const void *last_in_res;  /* the input resource entry the last output entry copies */
    const void *last_in_scope;
};

/** Pointer arrays in the output grow by doubling from 4, so their capacity follows from
 *  their length: a new array is needed at n == 0 and whenever n reaches a power of two >= 4. */
static void **push_ptr(struct lg_arena *a, void **arr, size_t n, void *p)
{
    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        void **na = lg_arena_alloc(a, (n ? n * 2 : 4) * sizeof *na);
        if (na == NULL)
            return NULL;
        if (n)
            memcpy(na, arr, n * sizeof *na);
        arr = na;
    }
    arr[n] = p;
    return arr;
}

/* Spans and log records share a shape: resource -> scope -> items. These macros append one
 * item under copies of its resource and scope entries, creating them when the input moved
 * on to another entry. */
#define ROUTE_APPEND(OUT, RT, ST, RIN, SIN, ITEM, SCOPES, NSCOPES, ITEMS, NITEMS)                   \
    do {                                                                                           \
        struct lg_arena *a_ = (OUT)->b->arena;                                                     \
        if ((OUT)->last_in_res != (RIN)) {                                                         \
            RT *nr_ = lg_arena_alloc(a_, sizeof *nr_);                                             \
            if (nr_ == NULL)                                                                       \
                return LG_ENOMEM;                                                                  \
            *nr_ = *(RIN);                                                                         \
            nr_->NSCOPES = 0;                                                                      \
            nr_->SCOPES = NULL;                                                                    \
            if ((OUT)->res = (ProtobufCMessage **)push_ptr(a_, (void **)(OUT)->res, (OUT)->nres,   \
                                                            &nr_->base),                           \
                !(OUT)->res)                                                                       \
                return LG_ENOMEM;                                                                  \
            (OUT)->nres++;                                                                         \
            (OUT)->last_in_res = (RIN);                                                            \
            (OUT)->last_in_scope = NULL;                                                           \
        }                                                                                          \
        RT *r_ = (RT *)(OUT)->res[(OUT)->nres - 1];                                                \
        if ((OUT)->last_in_scope != (SIN)) {                                                       \
            ST *ns_ = lg_arena_alloc(a_, sizeof *ns_);                                             \
            if (ns_ == NULL)                                                                       \
                return LG_ENOMEM;                                                                  \
            *ns_ = *(SIN);                                                                         \
            ns_->NITEMS = 0;                                                                       \
            ns_->ITEMS = NULL;                                                                     \
            if (!(r_->SCOPES = (ST **)push_ptr(a_, (void **)r_->SCOPES, r_->NSCOPES, ns_)))        \
                return LG_ENOMEM;                                                                  \
            r_->NSCOPES++;                                                                         \
            (OUT)->last_in_scope = (SIN);                                                          \
        }                                                                                          \
        ST *s_ = r_->SCOPES[r_->NSCOPES - 1];                                                      \
        if (!(s_->ITEMS = (void *)push_ptr(a_, (void **)s_->ITEMS, s_->NITEMS, (void *)(ITEM))))   \
            return LG_ENOMEM;                                                                      \
        s_->NITEMS++;                                                                              \
        (OUT)->b->items++;                                                                         \
    } while (0)

static int route_out_init(struct route_out *o, struct lg_batch *in)
{
    o->b = lg_batch_create(in->signal, 4096);
    if (o->b == NULL || lg_batch_add_dep(o->b, in) != LG_OK)
        return LG_ENOMEM;
    return LG_OK;
}

static void route_out_finish(struct route_out *o)
{
    switch (o->b->signal) {
    case LG_SIGNAL_TRACES:
        o->b->req.traces->resource_spans = (lg_resource_spans **)o->res;
        o->b->req.traces->n_resource_spans = o->nres;
        break;
    case LG_SIGNAL_METRICS:
        o->b->req.metrics->resource_metrics = (lg_resource_metrics **)o->res;
        o->b->req.metrics->n_resource_metrics = o->nres;
        break;
    case LG_SIGNAL_LOGS:
        o->b->req.logs->resource_logs = (lg_resource_logs **)o->res;
        o->b->req.logs->n_resource_logs = o->nres;
        break;
    default:
        break;
    }
}

static int add_resource(struct route_out *o, ProtobufCMessage *r)
{
    o->res = (ProtobufCMessage **)push_ptr(o->b->arena, (void **)o->res, o->nres, r);
    if (o->res == NULL)
        return LG_ENOMEM;
    o->nres++;
    return LG_OK;
}

/** Splits `in` over the backends of t into outs[] (one per backend, b == NULL when that
 *  backend gets nothing). */
static int route(struct lb_state *st, const struct table *t, struct lg_batch *in, struct route_out *outs)
{
#define OUT_FOR(idx)                                                                               \
    ({                                                                                             \
        struct route_out *o_ = &outs[idx];                                                         \
        if (o_->b == NULL && route_out_init(o_, in) != LG_OK)                                      \
            return LG_ENOMEM;                                                                      \
        o_;                                                                                        \
    })
    size_t slen;
    switch (in->signal) {
    case LG_SIGNAL_TRACES:
        for (size_t r = 0; r < in->req.traces->n_resource_spans; r++) {
            lg_resource_spans *rs = in->req.traces->resource_spans[r];
            if (st->by_service) {
                const char *svc = service_of(rs->resource, &slen);
                struct route_out *o = OUT_FOR(table_pick(t, svc, slen));
                if (add_resource(o, &rs->base) != LG_OK)
                    return LG_ENOMEM;
                for (size_t s = 0; s < rs->n_scope_spans; s++)
                    o->b->items += rs->scope_spans[s]->n_spans;
                continue;
            }
            for (size_t s = 0; s < rs->n_scope_spans; s++) {
                lg_scope_spans *ss = rs->scope_spans[s];
                for (size_t i = 0; i < ss->n_spans; i++) {
                    const lg_span *sp = ss->spans[i];
                    struct route_out *o = OUT_FOR(table_pick(t, sp->trace_id.data, sp->trace_id.len));
                    ROUTE_APPEND(o, lg_resource_spans, lg_scope_spans, rs, ss, sp, scope_spans, n_scope_spans,
                                 spans, n_spans);
                }
            }
        }
        break;
    case LG_SIGNAL_LOGS:
        for (size_t r = 0; r < in->req.logs->n_resource_logs; r++) {
            lg_resource_logs *rl = in->req.logs->resource_logs[r];
            const char *svc = service_of(rl->resource, &slen);
            if (st->by_service) {
                struct route_out *o = OUT_FOR(table_pick(t, svc, slen));
                if (add_resource(o, &rl->base) != LG_OK)
                    return LG_ENOMEM;
                for (size_t s = 0; s < rl->n_scope_logs; s++)
                    o->b->items += rl->scope_logs[s]->n_log_records;
                continue;
            }
            for (size_t s = 0; s < rl->n_scope_logs; s++) {
                lg_scope_logs *sl = rl->scope_logs[s];
                for (size_t i = 0; i < sl->n_log_records; i++) {
                    const lg_log_record *lr = sl->log_records[i];
                    /* a record outside any trace goes where its service goes */
                    size_t idx = lr->trace_id.len ? table_pick(t, lr->trace_id.data, lr->trace_id.len)
                                                  : table_pick(t, svc, slen);
                    struct route_out *o = OUT_FOR(idx);
                    ROUTE_APPEND(o, lg_resource_logs, lg_scope_logs, rl, sl, lr, scope_logs, n_scope_logs,
                                 log_records, n_log_records);
                }
            }
        }
        break;
    case LG_SIGNAL_METRICS:
        /* Metrics go by service whatever routing_key says (a trace ID means nothing here). */
        for (size_t r = 0; r < in->req.metrics->n_resource_metrics; r++) {
            lg_resource_metrics *rm = in->req.metrics->resource_metrics[r];
            const char *svc = service_of(rm->resource, &slen);
            struct route_out *o = OUT_FOR(table_pick(t, svc, slen));
            if (add_resource(o, &rm->base) != LG_OK)
                return LG_ENOMEM;
            for (size_t s = 0; s < rm->n_scope_metrics; s++)
                for (size_t m = 0; m < rm->scope_metrics[s]->n_metrics; m++)
                    o->b->items += lg_metric_point_count(rm->scope_metrics[s]->metrics[m]);
        }
        break;
    default:
        return LG_EINVAL;
    }
#undef OUT_FOR
    return LG_OK;
}

static int lb_consume(struct lg_component *c, struct lg_batch *in)
{
    struct lb_state *st = c->state;
    pthread_rwlock_rdlock(&st->lock);
    const struct table *t = st->table;
    if (t == NULL || t->n == 0) {
        pthread_rwlock_unlock(&st->lock);
        lg_counter_add(st->no_backend, in->items);
        return LG_EAGAIN; /* no backend known yet: the sender retries */
    }
    if (t->n == 1) {
        struct lg_component *child = t->backends[0]->child;
        int rc = child->type->consume(child, in);
        pthread_rwlock_unlock(&st->lock);
        return rc;
    }
    struct route_out *outs = calloc(t->n, sizeof *outs);
    int rc = outs ? route(st, t, in, outs) : LG_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        if (outs == NULL || outs[i].b == NULL)
            continue;
        if (rc == LG_OK) {
            route_out_finish(&outs[i]);
            struct lg_component *child = t->backends[i]->child;
            int crc = child->type->consume(child, outs[i].b);
            if (crc != LG_OK)
                rc = crc;
        }
        lg_batch_unref(outs[i].b);
    }
    pthread_rwlock_unlock(&st->lock);
    free(outs);
    return rc;
}

/* ---- resolvers ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/** Resolves dns.hostname into sorted unique "ip:port" keys. */
static int dns_resolve(struct lb_state *st, char ***out, size_t *n)
{
    const struct lb_dns_conf *d = &st->conf->resolver.dns;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int grc = getaddrinfo(d->hostname, NULL, &hints, &res);
    if (grc != 0) {
        lg_log(LG_LOG_WARN, st->c->id, "cannot resolve \"%s\": %s", d->hostname, gai_strerror(grc));
        return LG_EIO;
    }
    size_t cap = 0, cnt = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        cap++;
    char **keys = calloc(cap ? cap : 1, sizeof *keys);
    if (keys == NULL) {
        freeaddrinfo(res);
        return LG_ENOMEM;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        const void *src = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                    : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (inet_ntop(ai->ai_family, src, ip, sizeof ip) == NULL)
            continue;
        char *k = NULL;
        if (asprintf(&k, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", ip, d->port) < 0)
            continue;
        bool dup = false;
        for (size_t i = 0; i < cnt && !dup; i++)
            dup = strcmp(keys[i], k) == 0;
        if (dup)
            free(k);
        else
            keys[cnt++] = k;
    }
    freeaddrinfo(res);
    qsort(keys, cnt, sizeof *keys, cmp_str);
    *out = keys;
    *n = cnt;
    return LG_OK;
}

static void keys_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

static bool same_keys(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/** Applies a resolved list (sorted, owned by the caller). New backends are created and
 *  started BEFORE the table that routes to them is published; one that cannot be created
 *  or started is left out of the ring (the rest still get traffic) and the list is tried
 *  again on the next round. Backends no longer listed drain and go. */
static void apply_keys(struct lb_state *st, char **keys, size_t n)
{
    if (!st->last_incomplete && same_keys(keys, n, st->last_keys, st->nlast))
        return;
    struct table *old = st->table; /* only the resolver (or start) replaces it */
    size_t nold = old ? old->n : 0;
    struct backend **pool = calloc(nold + n + 1, sizeof *pool);
    bool *used = calloc(nold + n + 1, sizeof *used);
    char **copy = calloc(n + 1, sizeof *copy);
    if (!pool || !used || !copy) {
        free(pool);
        free(used);
        free(copy);
        lg_log(LG_LOG_ERROR, st->c->id, "out of memory applying a new backend list");
        return;
    }
    size_t np = 0;
    for (size_t j = 0; j < nold; j++)
        pool[np++] = old->backends[j];
    bool incomplete = false;
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        for (size_t j = 0; j < nold && !have; j++)
            have = strcmp(old->backends[j]->key, keys[i]) == 0;
        if (have)
            continue;
        struct lg_err err = {0};
        struct backend *b = backend_new(st, keys[i], &err);
        int rc = b == NULL ? LG_EINVAL : b->child->type->start ? b->child->type->start(b->child, &err) : LG_OK;
        if (rc != LG_OK) {
            lg_log(LG_LOG_ERROR, st->c->id, "backend %s left out until the next resolution: %s", keys[i], err.msg);
            if (b)
                backend_drain(b, lg_now_mono_ns());
            backend_free(b);
            incomplete = true;
            continue;
        }
        b->started = b->child->started = true;
        pool[np++] = b;
    }
    struct table *t = table_from(keys, n, pool, np, used);
    if (t == NULL) {
        for (size_t j = nold; j < np; j++) {
            backend_drain(pool[j], lg_now_mono_ns());
            backend_free(pool[j]);
        }
        free(pool);
        free(used);
        free(copy);
        lg_log(LG_LOG_ERROR, st->c->id, "out of memory applying a new backend list");
        return;
    }
    pthread_rwlock_wrlock(&st->lock);
    st->table = t;
    pthread_rwlock_unlock(&st->lock);
    lg_counter_add(st->backend_updates, 1);
    lg_log(LG_LOG_INFO, st->c->id, "%zu backend(s) in use (%zu resolved)", t->n, n);
    for (size_t j = 0; j < nold; j++)
        if (!used[j]) {
            backend_drain(pool[j], lg_now_mono_ns() + REMOVED_DRAIN_NS);
            backend_free(pool[j]);
        }
    table_free(old, false);
    free(pool);
    free(used);
    /* remember exactly what was applied */
    for (size_t i = 0; i < n; i++)
        if ((copy[i] = strdup(keys[i])) == NULL)
            incomplete = true;
    keys_free(st->last_keys, st->nlast);
    st->last_keys = copy;
    st->nlast = n;
    st->last_incomplete = incomplete;
}

static void *resolver_main(void *arg)
{
    struct lb_state *st = arg;
    pthread_mutex_lock(&st->stop_mu);
    while (!st->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + st->conf->resolver.dns.interval_ns;
        ts.tv_sec += ns / 1000000000LL;
        ts.tv_nsec = ns % 1000000000LL;
        pthread_cond_timedwait(&st->stop_cv, &st->stop_mu, &ts);
        if (st->stopping)
            break;
        pthread_mutex_unlock(&st->stop_mu);
        char **keys = NULL;
        size_t n = 0;
        if (dns_resolve(st, &keys, &n) == LG_OK) {
            lg_counter_add(st->resolutions_ok, 1);
            if (n > 0)
                apply_keys(st, keys, n);
            keys_free(keys, n);
        } else {
            lg_counter_add(st->resolutions_failed, 1); /* keep the backends we have */
        }
        pthread_mutex_lock(&st->stop_mu);
    }
    pthread_mutex_unlock(&st->stop_mu);
    return NULL;
}

/* ---- life cycle ---- */

static int lb_create(struct lg_component *c, struct lg_err *err)
{
    struct lb_conf *conf = c->conf;
    const struct lg_node *res_node = lg_node_get(c->conf_node, "resolver");
    const struct lg_node *proto_node = lg_node_get(c->conf_node, "protocol");
    bool by_service;
    if (strcmp(conf->routing_key, "traceID") == 0)
        by_service = false;
    else if (strcmp(conf->routing_key, "service") == 0)
        by_service = true;
    else
        return lg_conf_error(err, lg_node_get(c->conf_node, "routing_key"),
                             "routing_key \"%s\" is not supported (use traceID or service)", conf->routing_key);
    if (conf->resolver.k8s)
        return lg_conf_error(err, conf->resolver.k8s,
                             "the k8s resolver is not supported; use dns with a headless Service "
                             "(deploy/kubernetes shows one)");
    if (conf->resolver.aws_cloud_map)
        return lg_conf_error(err, conf->resolver.aws_cloud_map, "the aws_cloud_map resolver is not supported");
    if (conf->resolver.static_present == conf->resolver.dns_present)
        return lg_conf_error(err, res_node ? res_node : c->conf_node,
                             "exactly one of resolver.static and resolver.dns is required");
    if (conf->resolver.static_present && conf->resolver.static_.hostnames.n == 0)
        return lg_conf_error(err, lg_node_get(res_node, "static"), "static.hostnames is empty");
    if (conf->resolver.dns_present && (!conf->resolver.dns.hostname || !conf->resolver.dns.hostname[0]))
        return lg_conf_error(err, lg_node_get(res_node, "dns"), "dns.hostname is required");
    if (conf->resolver.dns_present && conf->resolver.dns.interval_ns <= 0)
        return lg_conf_error(err, lg_node_get(lg_node_get(res_node, "dns"), "interval"), "interval must be positive");
    if (proto_node == NULL || conf->protocol.otlp == NULL)
        return lg_conf_error(err, proto_node ? proto_node : c->conf_node, "protocol.otlp is required");

    struct lb_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = conf;
    st->by_service = by_service;
    /* writers first: a resolver update must not wait behind a steady stream of consumers */
    pthread_rwlockattr_t rwa;
    pthread_rwlockattr_init(&rwa);
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&st->lock, &rwa);
    pthread_rwlockattr_destroy(&rwa);
    pthread_mutex_init(&st->stop_mu, NULL);
    pthread_cond_init(&st->stop_cv, NULL);
    c->state = st;

    int rc = LG_OK;
    if (conf->resolver.static_present) {
        /* the backends are built now: that validates protocol.otlp (errors name its paths) */
        const struct lg_strlist *h = &conf->resolver.static_.hostnames;
        char **keys = calloc(h->n, sizeof *keys);
        size_t n = 0;
        for (size_t i = 0; keys && i < h->n; i++) {
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = strcmp(keys[j], h->items[i]) == 0;
            if (!dup)
                keys[n++] = (char *)h->items[i];
        }
        if (keys) {
            qsort(keys, n, sizeof *keys, cmp_str);
            st->table = table_new(st, keys, n, err);
        }
        rc = st->table ? LG_OK : keys ? LG_EINVAL : lg_err_set(err, LG_ENOMEM, "out of memory");
        free(keys);
    } else {
        /* dns: validate protocol.otlp with a throw-away backend of the same config */
        struct backend *probe = backend_new(st, "validate.invalid", err);
        rc = probe ? LG_OK : LG_EINVAL;
        backend_free(probe);
    }
    if (rc != LG_OK) {
        c->state = NULL; /* the runtime does not call destroy() after a failed create() */
        table_free(st->table, true);
        pthread_rwlock_destroy(&st->lock);
        pthread_mutex_destroy(&st->stop_mu);
        pthread_cond_destroy(&st->stop_cv);
        free(st);
        return rc;
    }
    const char *resolver = conf->resolver.dns_present ? "dns" : "static";
    struct lg_telemetry *tel = c->rt ? c->rt->telemetry : NULL;
    char labels[300];
    snprintf(labels, sizeof labels, "exporter=\"%s\",resolver=\"%s\",success=\"true\"", c->id, resolver);
    st->resolutions_ok = lg_telemetry_counter(tel, "otelcol_loadbalancer_num_resolutions",
                                              "Resolutions performed by the resolver.", labels);
    snprintf(labels, sizeof labels, "exporter=\"%s\",resolver=\"%s\",success=\"false\"", c->id, resolver);
    st->resolutions_failed = lg_telemetry_counter(tel, "otelcol_loadbalancer_num_resolutions",
                                                  "Resolutions performed by the resolver.", labels);
    snprintf(labels, sizeof labels, "exporter=\"%s\"", c->id);
    st->backend_updates = lg_telemetry_counter(tel, "otelcol_loadbalancer_num_backend_updates",
                                               "Resolutions that changed the backend list.", labels);
    st->no_backend = lg_telemetry_counter(tel, "llmgate_loadbalancer_refused_no_backend_items",
                                          "Items refused (retryably) while no backend was known.", labels);
    if (conf->resolver.static_present) {
        lg_counter_add(st->resolutions_ok, 1);
        lg_counter_add(st->backend_updates, 1);
    }
    return LG_OK;
}

static double num_backends(void *arg)
{
    struct lb_state *st = arg;
    pthread_rwlock_rdlock(&st->lock);
    double n = st->table ? (double)st->table->n : 0;
    pthread_rwlock_unlock(&st->lock);
    return n;
}

static int lb_start(struct lg_component *c, struct lg_err *err)
{
    struct lb_state *st = c->state;
    char labels[300];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", c->id);
    if (c->rt)
        lg_telemetry_gauge_fn(c->rt->telemetry, "otelcol_loadbalancer_num_backends",
                              "Backends currently in use.", labels, num_backends, st);
    if (st->conf->resolver.static_present)
        return table_start(st->table, err);
    /* dns: a first resolution now; a failure is not fatal (the name may appear later). */
    char **keys = NULL;
    size_t n = 0;
    if (dns_resolve(st, &keys, &n) == LG_OK) {
        lg_counter_add(st->resolutions_ok, 1);
        if (n > 0)
            apply_keys(st, keys, n);
        keys_free(keys, n);
    } else {
        lg_counter_add(st->resolutions_failed, 1);
    }
    if (pthread_create(&st->resolver, NULL, resolver_main, st) != 0)
        return lg_err_set(err, LG_ENOMEM, "%s: cannot start the resolver thread", c->id);
    st->resolver_running = true;
    return LG_OK;
}

static int lb_shutdown(struct lg_component *c, int64_t deadline)
{
    struct lb_state *st = c->state;
    if (st->resolver_running) {
        pthread_mutex_lock(&st->stop_mu);
        st->stopping = true;
        pthread_cond_broadcast(&st->stop_cv);
        pthread_mutex_unlock(&st->stop_mu);
        pthread_join(st->resolver, NULL);
        st->resolver_running = false;
    }
    if (st->table)
        for (size_t i = 0; i < st->table->n; i++)
            backend_drain(st->table->backends[i], deadline);
    return LG_OK;
}

static void lb_destroy(struct lg_component *c)
{
    struct lb_state *st = c->state;
    if (st == NULL)
        return;
    if (c->rt)
        lg_telemetry_gauge_forget(c->rt->telemetry, st);
    lb_shutdown(c, lg_now_mono_ns());
    table_free(st->table, true);
    keys_free(st->last_keys, st->nlast);
    pthread_rwlock_destroy(&st->lock);
    pthread_mutex_destroy(&st->stop_mu);
    pthread_cond_destroy(&st->stop_cv);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_loadbalancing_exporter = {
    .type = "loadbalancing",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "routes by trace ID (or service) over a consistent-hash ring of OTLP backends (static or DNS)",
    .conf_size = sizeof(struct lb_conf),
    .fields = lb_fields,
    .create = lb_create,
    .start = lb_start,
    .consume = lb_consume,
    .shutdown = lb_shutdown,
    .destroy = lb_destroy,
};
