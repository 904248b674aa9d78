/* processors/batch.c — the `batch` processor: merges small requests into larger ones and
 * splits large ones, by size or after a timeout, with the Collector's keys and defaults.
 *
 * Merging copies no telemetry: the merged request's top-level array points at the resource
 * entries of the pending batches, which the merged batch keeps alive as dependencies.
 * Splitting makes shallow copies of resource/scope wrappers whose item arrays point into
 * sub-ranges of the originals.
 *
 * Nothing is dropped when the next component refuses a merged batch: it goes back to the
 * front of the pending list and is retried on the next tick, and while more than
 * PENDING_REFUSE_FACTOR x send_batch_size items wait, new data is refused with the same
 * retryable code so receivers push back on their clients. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/component.h"
#include "../core/log.h"
#include "../core/runtime.h"

/* How much undeliverable data the processor holds (in multiples of send_batch_size) before
 * it refuses new data: enough to ride out a short downstream hiccup without memory growth. */
#define PENDING_REFUSE_FACTOR 8
/* Retry delay for data a downstream component refused. */
#define RETRY_DELAY_NS (1000LL * 1000 * 1000)

struct batch_conf {
    int64_t send_batch_size;
    int64_t send_batch_max_size;
    int64_t timeout_ns;
};

static const struct lg_conf_field batch_fields[] = {
    LG_CONF_INT("send_batch_size", "8192", struct batch_conf, send_batch_size, 0, 1e9,
                "items that trigger sending a batch (0: only the timeout triggers)"),
    LG_CONF_INT("send_batch_max_size", "0", struct batch_conf, send_batch_max_size, 0, 1e9,
                "upper bound on a batch; larger batches are split (0: no bound)"),
    LG_CONF_DURATION("timeout", "200ms", struct batch_conf, timeout_ns,
                     "send a non-empty batch after this long regardless of size (0: only size triggers)"),
    LG_CONF_ACCEPTED("metadata_keys", "accepted; batching by client metadata is not implemented"),
    LG_CONF_ACCEPTED("metadata_cardinality_limit", "accepted; see metadata_keys"),
    LG_CONF_END,
};

struct pending {
    struct lg_batch **items;
    size_t n, cap;
    size_t total;          /* items (spans/points/records) waiting */
    int64_t first_mono_ns; /* when the oldest pending data arrived (0 = empty) */
    int64_t retry_at_ns;   /* >0: downstream refused; do not retry before this */
    int last_refusal;
};

struct batch_state {
    struct lg_component *c;
    struct batch_conf *conf;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool thread_started;
    bool stopping;
    struct pending pend[LG_SIGNAL_COUNT];
    struct lg_counter *size_trigger, *timeout_trigger, *dropped[LG_SIGNAL_COUNT];
};

/* ---- splitting and merging ---- */

/* The three OTLP request shapes are the same three-level tree (request -> resource entries
 * -> scope entries -> items); these offsets let one routine merge and split all of them. */
struct shape {
    size_t req_n, req_arr;                   /* request: n_resource_x, resource_x */
    size_t res_size, res_n, res_arr;         /* resource entry: n_scope_x, scope_x */
    size_t scope_size, scope_n, scope_arr;   /* scope entry: n_items, items */
};

#define OFF(T, m) offsetof(T, m)
static const struct shape shapes[LG_SIGNAL_COUNT] = {
    [LG_SIGNAL_TRACES] = {OFF(lg_traces_req, n_resource_spans), OFF(lg_traces_req, resource_spans),
                          sizeof(lg_resource_spans), OFF(lg_resource_spans, n_scope_spans), OFF(lg_resource_spans, scope_spans),
                          sizeof(lg_scope_spans), OFF(lg_scope_spans, n_spans), OFF(lg_scope_spans, spans)},
    [LG_SIGNAL_METRICS] = {OFF(lg_metrics_req, n_resource_metrics), OFF(lg_metrics_req, resource_metrics),
                           sizeof(lg_resource_metrics), OFF(lg_resource_metrics, n_scope_metrics), OFF(lg_resource_metrics, scope_metrics),
                           sizeof(lg_scope_metrics), OFF(lg_scope_metrics, n_metrics), OFF(lg_scope_metrics, metrics)},
    [LG_SIGNAL_LOGS] = {OFF(lg_logs_req, n_resource_logs), OFF(lg_logs_req, resource_logs),
                        sizeof(lg_resource_logs), OFF(lg_resource_logs, n_scope_logs), OFF(lg_resource_logs, scope_logs),
                        sizeof(lg_scope_logs), OFF(lg_scope_logs, n_log_records), OFF(lg_scope_logs, log_records)},
};

#define FIELD(p, off, T) (*(T *)((char *)(p) + (off)))

/* Weight of one item: spans and log records count 1, a metric counts its data points. */
static size_t item_weight(enum lg_signal s, void *item)
{
    return s == LG_SIGNAL_METRICS ? lg_metric_point_count(item) : 1;
}

/* Builds output batches of at most `max` items (0 = unbounded) from `in`. Each output batch
 * depends on every input batch it points into. Returns the number of outputs or -1 on OOM. */
struct builder {
    enum lg_signal sig;
    const struct shape *sh;
    size_t max;
    struct lg_batch **out;
    size_t nout, capout;
    struct lg_batch *cur;        /* batch being filled */
    void *cur_res;               /* resource entry being filled in cur (a shallow copy) */
    const void *cur_res_src;     /* original resource entry cur_res copies */
    size_t cur_items;
    size_t res_cap;              /* capacity of cur request's resource array */
    size_t scope_cap;            /* capacity of cur_res's scope array */
};

static int builder_new_batch(struct builder *bd)
{
    if (bd->nout == bd->capout) {
        size_t nc = bd->capout ? bd->capout * 2 : 4;
        struct lg_batch **o = realloc(bd->out, nc * sizeof *o);
        if (o == NULL)
            return -1;
        bd->out = o;
        bd->capout = nc;
    }
    bd->cur = lg_batch_create(bd->sig, 4096);
    if (bd->cur == NULL)
        return -1;
    bd->out[bd->nout++] = bd->cur;
    bd->cur_res = NULL;
    bd->cur_res_src = NULL;
    bd->cur_items = 0;
    bd->res_cap = 0;
    return 0;
}

/* Grows an arena-allocated pointer array by doubling (old contents copied). */
static void **arena_grow(struct lg_arena *a, void **arr, size_t n, size_t *cap)
{
    if (n < *cap)
        return arr;
    size_t nc = *cap ? *cap * 2 : 8;
    void **na = lg_arena_alloc(a, nc * sizeof *na);
    if (na == NULL)
        return NULL;
    if (n)
        memcpy(na, arr, n * sizeof *na);
    *cap = nc;
    return na;
}

static int builder_add_dep(struct lg_batch *b, struct lg_batch *src)
{
    for (size_t i = 0; i < b->ndeps; i++)
        if (b->deps[i] == src)
            return 0;
    return lg_batch_add_dep(b, src) == LG_OK ? 0 : -1;
}

/* Appends items [from, to) of scope entry `scope` (under resource entry `res`) of batch src. */
static int builder_append(struct builder *bd, struct lg_batch *src, const void *res,
                          const void *scope, size_t from, size_t to, size_t weight)
{
    const struct shape *sh = bd->sh;
    struct lg_arena *a = bd->cur->arena;
    if (builder_add_dep(bd->cur, src) != 0)
        return -1;
    if (bd->cur_res_src != res) {
        void *nr = lg_arena_memdup(a, res, sh->res_size);
        if (nr == NULL)
            return -1;
        FIELD(nr, sh->res_n, size_t) = 0;
        FIELD(nr, sh->res_arr, void **) = NULL;
        ProtobufCMessage *req = bd->cur->req.msg;
        size_t n = FIELD(req, sh->req_n, size_t);
        void **arr = arena_grow(a, FIELD(req, sh->req_arr, void **), n, &bd->res_cap);
        if (arr == NULL)
            return -1;
        arr[n] = nr;
        FIELD(req, sh->req_arr, void **) = arr;
        FIELD(req, sh->req_n, size_t) = n + 1;
        bd->cur_res = nr;
        bd->cur_res_src = res;
        bd->scope_cap = 0;
    }
    void *ns = lg_arena_memdup(a, scope, sh->scope_size);
    if (ns == NULL)
        return -1;
    void **items = FIELD(scope, sh->scope_arr, void **);
    FIELD(ns, sh->scope_arr, void **) = items + from;
    FIELD(ns, sh->scope_n, size_t) = to - from;
    size_t n = FIELD(bd->cur_res, sh->res_n, size_t);
    void **arr = arena_grow(a, FIELD(bd->cur_res, sh->res_arr, void **), n, &bd->scope_cap);
    if (arr == NULL)
        return -1;
    arr[n] = ns;
    FIELD(bd->cur_res, sh->res_arr, void **) = arr;
    FIELD(bd->cur_res, sh->res_n, size_t) = n + 1;
    bd->cur_items += weight;
    bd->cur->items = bd->cur_items;
    return 0;
}

static int build_batches(enum lg_signal sig, struct lg_batch **in, size_t nin, size_t max,
                         struct lg_batch ***out, size_t *nout)
{
    struct builder bd = {.sig = sig, .sh = &shapes[sig], .max = max};
    const struct shape *sh = bd.sh;
    if (builder_new_batch(&bd) != 0)
        goto oom;
    for (size_t b = 0; b < nin; b++) {
        ProtobufCMessage *req = in[b]->req.msg;
        size_t nres = FIELD(req, sh->req_n, size_t);
        void **res = FIELD(req, sh->req_arr, void **);
        for (size_t r = 0; r < nres; r++) {
            size_t nsc = FIELD(res[r], sh->res_n, size_t);
            void **scopes = FIELD(res[r], sh->res_arr, void **);
            for (size_t s = 0; s < nsc; s++) {
                size_t nit = FIELD(scopes[s], sh->scope_n, size_t);
                void **items = FIELD(scopes[s], sh->scope_arr, void **);
                size_t start = 0, weight = 0;
                for (size_t i = 0; i < nit; i++) {
                    size_t w = item_weight(sig, items[i]);
                    if (max && bd.cur_items + weight + w > max && bd.cur_items + weight > 0) {
                        if (i > start && builder_append(&bd, in[b], res[r], scopes[s], start, i, weight) != 0)
                            goto oom;
                        if (builder_new_batch(&bd) != 0)
                            goto oom;
                        start = i;
                        weight = 0;
                    }
                    weight += w;
                }
                /* Empty scopes are kept too: they carry no items but are valid data. */
                if (nit > start || nit == 0)
                    if (builder_append(&bd, in[b], res[r], scopes[s], start, nit, weight) != 0)
                        goto oom;
            }
            if (nsc == 0 && FIELD(res[r], sh->res_n, size_t) == 0) {
                /* a resource with no scopes: keep it as is */
                if (builder_add_dep(bd.cur, in[b]) != 0)
                    goto oom;
                ProtobufCMessage *oreq = bd.cur->req.msg;
                size_t n = FIELD(oreq, sh->req_n, size_t);
                void **arr = arena_grow(bd.cur->arena, FIELD(oreq, sh->req_arr, void **), n, &bd.res_cap);
                if (arr == NULL)
                    goto oom;
                arr[n] = res[r];
                FIELD(oreq, sh->req_arr, void **) = arr;
                FIELD(oreq, sh->req_n, size_t) = n + 1;
                bd.cur_res = NULL;
                bd.cur_res_src = NULL;
            }
        }
    }
    *out = bd.out;
    *nout = bd.nout;
    return 0;
oom:
    for (size_t i = 0; i < bd.nout; i++)
        lg_batch_unref(bd.out[i]);
    free(bd.out);
    return -1;
}

/* ---- pending lists ---- */

static int pending_push(struct pending *p, struct lg_batch *b, bool front)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        struct lg_batch **ni = realloc(p->items, nc * sizeof *ni);
        if (ni == NULL)
            return LG_ENOMEM;
        p->items = ni;
        p->cap = nc;
    }
    if (front) {
        memmove(p->items + 1, p->items, p->n * sizeof *p->items);
        p->items[0] = b;
    } else {
        p->items[p->n] = b;
    }
    p->n++;
    p->total += b->items;
    if (p->first_mono_ns == 0)
        p->first_mono_ns = lg_now_mono_ns();
    return LG_OK;
}

/* Takes everything pending (caller owns the references). */
static struct lg_batch **pending_take(struct pending *p, size_t *n)
{
    struct lg_batch **items = p->items;
    *n = p->n;
    p->items = NULL;
    p->n = p->cap = 0;
    p->total = 0;
    p->first_mono_ns = 0;
    return items;
}

/* Sends everything in `in` (references consumed). Refused data goes back to the front of
 * the pending list. Called without the lock. */
static void send_all(struct batch_state *st, enum lg_signal sig, struct lg_batch **in, size_t nin)
{
    if (nin == 0) {
        free(in);
        return;
    }
    struct lg_batch **out = NULL;
    size_t nout = 0;
    int rc = LG_OK;
    size_t sent = 0;
    if (build_batches(sig, in, nin, (size_t)st->conf->send_batch_max_size, &out, &nout) != 0) {
        rc = LG_ENOMEM;
    } else {
        for (; sent < nout; sent++) {
            rc = lg_fanout_consume(&st->c->next[sig], out[sent]);
            if (rc != LG_OK)
                break;
        }
    }
    for (size_t i = 0; i < nin; i++)
        lg_batch_unref(in[i]);
    free(in);
    if (rc == LG_OK) {
        for (size_t i = 0; i < nout; i++)
            lg_batch_unref(out[i]);
        free(out);
        return;
    }
    /* Keep what was not delivered, in order, at the front. */
    pthread_mutex_lock(&st->lock);
    struct pending *p = &st->pend[sig];
    for (size_t i = nout; i > sent; i--) {
        struct lg_batch *b = out[i - 1];
        if (pending_push(p, b, true) != LG_OK) {
            lg_counter_add(st->dropped[sig], b->items);
            lg_error(st->c->id, "out of memory holding %zu refused %s: dropped", b->items, lg_signal_item_noun(sig));
            lg_batch_unref(b);
        }
    }
    for (size_t i = 0; i < sent; i++)
        lg_batch_unref(out[i]);
    free(out);
    p->retry_at_ns = lg_now_mono_ns() + RETRY_DELAY_NS;
    if (p->last_refusal != rc)
        lg_warn(st->c->id, "next component refused %s (code %d); holding them and retrying", lg_signal_name(sig), rc);
    p->last_refusal = rc;
    pthread_mutex_unlock(&st->lock);
}

static int batch_consume(struct lg_component *c, struct lg_batch *b)
{
    struct batch_state *st = c->state;
    enum lg_signal sig = b->signal;
    size_t trigger = (size_t)st->conf->send_batch_size;
    pthread_mutex_lock(&st->lock);
    struct pending *p = &st->pend[sig];
    size_t refuse_at = (trigger ? trigger : 8192) * PENDING_REFUSE_FACTOR;
    if (p->retry_at_ns != 0 && p->total >= refuse_at) {
        int rc = p->last_refusal;
        pthread_mutex_unlock(&st->lock);
        return rc;
    }
    int rc = pending_push(p, lg_batch_ref(b), false);
    if (rc != LG_OK) {
        pthread_mutex_unlock(&st->lock);
        lg_batch_unref(b);
        return rc;
    }
    struct lg_batch **take = NULL;
    size_t ntake = 0;
    if (trigger && p->total >= trigger && p->retry_at_ns == 0) {
        take = pending_take(p, &ntake);
        lg_counter_add(st->size_trigger, 1);
    } else {
        pthread_cond_signal(&st->cond); /* let the timer see the new deadline */
    }
    pthread_mutex_unlock(&st->lock);
    /* Size-triggered sends run on the caller's thread, so several receivers' threads send
     * in parallel and a slow downstream slows its producers down. */
    if (take)
        send_all(st, sig, take, ntake);
    return LG_OK;
}

static void *batch_timer(void *arg)
{
    struct batch_state *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        int64_t now = lg_now_mono_ns();
        int64_t next = 0;
        for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
            struct pending *p = &st->pend[s];
            if (p->n == 0)
                continue;
            int64_t due = p->retry_at_ns ? p->retry_at_ns : p->first_mono_ns + st->conf->timeout_ns;
            if (st->conf->timeout_ns == 0 && p->retry_at_ns == 0)
                continue; /* only the size triggers */
            if (due <= now) {
                size_t n;
                struct lg_batch **take = pending_take(p, &n);
                p->retry_at_ns = 0;
                lg_counter_add(st->timeout_trigger, 1);
                pthread_mutex_unlock(&st->lock);
                send_all(st, (enum lg_signal)s, take, n);
                pthread_mutex_lock(&st->lock);
                now = lg_now_mono_ns();
                s = -1; /* rescan: the lists may have changed meanwhile */
                next = 0;
                continue;
            }
            if (next == 0 || due < next)
                next = due;
        }
        if (st->stopping)
            break;
        if (next == 0) {
            pthread_cond_wait(&st->cond, &st->lock);
        } else {
            struct timespec ts = {.tv_sec = next / 1000000000LL, .tv_nsec = next % 1000000000LL};
            pthread_cond_timedwait(&st->cond, &st->lock, &ts);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

static int batch_create(struct lg_component *c, struct lg_err *err)
{
    struct batch_conf *conf = c->conf;
    if (conf->send_batch_max_size > 0 && conf->send_batch_max_size < conf->send_batch_size)
        return lg_conf_error(err, lg_node_get(c->conf_node, "send_batch_max_size"),
                             "must be 0 or at least send_batch_size (%lld)", (long long)conf->send_batch_size);
    if (conf->send_batch_size == 0 && conf->timeout_ns == 0)
        return lg_conf_error(err, c->conf_node, "send_batch_size and timeout cannot both be 0");
    struct batch_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = conf;
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[256];
    snprintf(labels, sizeof labels, "processor=\"%s\"", c->id);
    st->size_trigger = lg_telemetry_counter(t, "otelcol_processor_batch_batch_size_trigger_send",
                                            "Number of times the batch was sent due to a size trigger.", labels);
    st->timeout_trigger = lg_telemetry_counter(t, "otelcol_processor_batch_timeout_trigger_send",
                                               "Number of times the batch was sent due to a timeout trigger.", labels);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        char l2[300];
        snprintf(l2, sizeof l2, "%s,otel_signal=\"%s\"", labels, lg_signal_name((enum lg_signal)s));
        st->dropped[s] = lg_telemetry_counter(t, "otelcol_processor_dropped_items",
                                              "Items dropped by a processor (out of memory or shutdown deadline).", l2);
    }
    c->state = st;
    return LG_OK;
}

static int batch_start(struct lg_component *c, struct lg_err *err)
{
    struct batch_state *st = c->state;
    if (pthread_create(&st->thread, NULL, batch_timer, st) != 0)
        return lg_err_set(err, LG_EINTERNAL, "cannot start the batch timer thread");
    st->thread_started = true;
    return LG_OK;
}

static int batch_shutdown(struct lg_component *c, int64_t deadline)
{
    struct batch_state *st = c->state;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (st->thread_started) {
        pthread_join(st->thread, NULL);
        st->thread_started = false;
    }
    /* Flush what is left; retry refusals until the deadline, then count what is lost. */
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        for (;;) {
            pthread_mutex_lock(&st->lock);
            size_t n;
            struct lg_batch **take = pending_take(&st->pend[s], &n);
            st->pend[s].retry_at_ns = 0;
            pthread_mutex_unlock(&st->lock);
            if (n == 0) {
                free(take);
                break;
            }
            send_all(st, (enum lg_signal)s, take, n);
            if (st->pend[s].n == 0)
                break;
            if (lg_now_mono_ns() >= deadline) {
                pthread_mutex_lock(&st->lock);
                take = pending_take(&st->pend[s], &n);
                pthread_mutex_unlock(&st->lock);
                size_t lost = 0;
                for (size_t i = 0; i < n; i++) {
                    lost += take[i]->items;
                    lg_batch_unref(take[i]);
                }
                free(take);
                lg_counter_add(st->dropped[s], lost);
                lg_error(c->id, "shutdown deadline passed: dropped %zu %s the next component kept refusing",
                         lost, lg_signal_item_noun((enum lg_signal)s));
                break;
            }
            struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    return LG_OK;
}

static void batch_destroy(struct lg_component *c)
{
    struct batch_state *st = c->state;
    if (st == NULL)
        return;
    if (st->thread_started)
        batch_shutdown(c, lg_now_mono_ns());
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        for (size_t i = 0; i < st->pend[s].n; i++)
            lg_batch_unref(st->pend[s].items[i]);
        free(st->pend[s].items);
    }
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_batch_processor = {
    .type = "batch",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "merges and splits batches by size and timeout (Collector defaults)",
    .conf_size = sizeof(struct batch_conf),
    .fields = batch_fields,
    .create = batch_create,
    .start = batch_start,
    .consume = batch_consume,
    .shutdown = batch_shutdown,
    .destroy = batch_destroy,
};
