/* processors/tail_sampling.c — the `tail_sampling` processor (traces): holds each trace's
 * spans until decision_wait after its first span (or decision_wait_after_root_received
 * after its root), decides with the policies (processors/tail_sampling_policy.c) and
 * forwards the kept traces whole from a decision thread of its own.
 *
 * Owns: the trace table (NSHARDS shards by trace ID, a mutex each), the per-shard decision
 * caches, the interned resources/scopes, the deadline lists and the ready list (traces
 * decided sampled, waiting to be forwarded), the decision thread.
 *
 * Storage per trace (ARCHITECTURE "Data model"): one malloc'd buffer of
 * [u32 length][u32 resource/scope index][span protobuf bytes] records, a small array of
 * references to interned Resource+Scope encodings (refcounted, one copy per distinct
 * pair), and a ts_summary the policies read. Nothing of the incoming batch is kept. A
 * span's bytes are copied from the receiver's raw-span index when the batch has one
 * (lg_batch_raw_index_want is registered for as long as the processor exists; see
 * raw_find), so only spans a processor changed, or that came without an index, are
 * encoded here.
 *
 * Lock order: shard -> timer (deadline lists + ready list) -> decision (policy state) -> intern
 * shard. No lock is held while calling the next component.
 *
 * Limits: num_traces and max_memory_mib bound what waits; past either the trace with the
 * earliest deadline (the oldest) is decided early on what it has — never dropped undecided
 * — and counted in llmgate_processor_tail_sampling_early_decisions{reason}. A trace
 * reaching max_spans_per_trace is decided early too; its later spans then follow the
 * decision like any late span. Kept traces the next component refuses stay on the ready
 * list (their bytes still count) and are retried with backoff; while the ready list alone
 * exceeds max_memory_mib new data is refused (retryable), so nothing is dropped silently. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "../core/otlp_fastdec.h"
#include "../core/runtime.h"
#include "tail_sampling.h"

#define NSHARDS  64
#define NINTERN  16
#define SPAN_HDR 8
/* the deadline lists: traces waiting decision_wait, and traces whose root arrived waiting
 * decision_wait_after_root_received */
enum { WAIT_DECISION = 0, WAIT_AFTER_ROOT = 1, WAIT_LISTS = 2, WAIT_NONE = 0xff };
/* decided traces forwarded per downstream call */
#define FORWARD_MAX_SPANS 8192
/* traces expired per pass of the decision thread before it forwards */
#define EXPIRE_MAX   512
#define RETRY_MIN_NS (100 * 1000 * 1000LL)
#define RETRY_MAX_NS (2 * 1000 * 1000 * 1000LL)
/* decision caches left at 0 remember this many decisions per num_traces (see docs) */
#define CACHE_DEFAULT_FACTOR 10

struct ts_cache_conf {
    int64_t sampled_cache_size;
    int64_t non_sampled_cache_size;
};

struct ts_conf {
    int64_t decision_wait_ns;
    int64_t num_traces;
    int64_t expected_new_traces_per_sec;
    int64_t decision_wait_after_root_ns;
    struct ts_cache_conf decision_cache;
    bool sample_on_first_match;
    struct ts_policies policies;
    int64_t max_memory_mib;
    int64_t max_spans_per_trace;
    const char *on_shutdown;
};

static const struct lg_conf_field cache_fields[] = {
    LG_CONF_INT("sampled_cache_size", "0", struct ts_cache_conf, sampled_cache_size, 0, 1e9,
                "trace IDs of sampled traces remembered so late spans follow (0: 10 x num_traces)"),
    LG_CONF_INT("non_sampled_cache_size", "0", struct ts_cache_conf, non_sampled_cache_size, 0, 1e9,
                "trace IDs of dropped traces remembered so late spans are dropped too (0: 10 x "
                "num_traces)"),
    LG_CONF_END,
};

static const struct lg_conf_field ts_fields[] = {
    LG_CONF_DURATION("decision_wait", "30s", struct ts_conf, decision_wait_ns,
                     "wait after a trace's first span before deciding"),
    LG_CONF_INT("num_traces", "50000", struct ts_conf, num_traces, 1, 1e9,
                "traces held at most; past it the oldest is decided early"),
    LG_CONF_INT("expected_new_traces_per_sec", "0", struct ts_conf, expected_new_traces_per_sec, 0,
                1e9, "sizes the trace table up front"),
    LG_CONF_DURATION("decision_wait_after_root_received", "0s", struct ts_conf,
                     decision_wait_after_root_ns,
                     "once the root span arrived, decide after this (0: off)"),
    LG_CONF_SECTION("decision_cache", struct ts_conf, decision_cache, cache_fields,
                    "late-span decision caches"),
    LG_CONF_BOOL("sample_on_first_match", "false", struct ts_conf, sample_on_first_match,
                 "stop evaluating at the first policy that samples"),
    LG_CONF_CUSTOM("policies", NULL, struct ts_conf, policies, ts_policies_parse,
                   "list of {name, type, <type>: {...}} (required)"),
    LG_CONF_INT("max_memory_mib", "512", struct ts_conf, max_memory_mib, 1, 1e7,
                "llmgate: MiB held at most (waiting traces and kept ones not yet forwarded); past "
                "it the oldest trace is decided early"),
    LG_CONF_INT("max_spans_per_trace", "10000", struct ts_conf, max_spans_per_trace, 0, 1e9,
                "llmgate: a trace reaching this many spans is decided early (0: no cap)"),
    LG_CONF_STRING("on_shutdown", "decide", struct ts_conf, on_shutdown,
                   "llmgate: decide (decide pending traces and flush them) or drop"),
    LG_CONF_END,
};

/* ---- storage ---- */

struct ts_intern {
    struct ts_intern *next;
    uint64_t hash;
    size_t refs; /* under the intern shard lock */
    uint32_t res_len, scope_len, rurl_len, surl_len;
    uint8_t data[]; /* resource pb, scope pb, resource schema_url, scope schema_url */
};

struct ts_trace {
    struct ts_trace *next; /* shard chain, or the ready / late lists */
    uint8_t tid[16];
    uint8_t wlist; /* WAIT_* list the trace waits in, WAIT_NONE once out */
    struct ts_trace *wprev, *wnext;
    uint16_t nrefs, caprefs;
    uint32_t len, cap;
    int64_t deadline_ns;
    int64_t arrived_ns; /* first span: trace-removal age */
    struct ts_intern **refs; /* &ref1 while there is one (most traces): no malloc */
    struct ts_intern *ref1;
    uint8_t *buf;
    size_t accounted;
    double prob_rate; /* after the decision: > 0 when kept by probabilistic policies only */
    struct ts_summary sum;
};

struct ts_cache_ent {
    uint8_t tid[16];
    int32_t next;
    uint32_t decided_ms; /* monotonic clock, ms, wrapping: late-span age (< 49 days) */
    double rate;
};

struct ts_cache {
    struct ts_cache_ent *ring;
    int32_t *buckets;
    uint32_t cap, alloc, n, head, nbuckets;
};

struct ts_shard {
    pthread_mutex_t lock;
    struct ts_trace **buckets;
    size_t nbuckets, count;
    struct ts_cache sampled, not_sampled;
} __attribute__((aligned(64)));

struct ts_intern_shard {
    pthread_mutex_t lock;
    struct ts_intern **buckets;
    size_t nbuckets, count;
};

enum early_reason {
    EARLY_NONE = -1,
    EARLY_NUM_TRACES,
    EARLY_MEMORY,
    EARLY_MAX_SPANS,
    EARLY_SHUTDOWN,
    EARLY_COUNT
};
static const char *const early_names[EARLY_COUNT] = {"num_traces", "max_memory",
                                                     "max_spans_per_trace", "shutdown"};

struct ts_state {
    struct lg_component *c;
    struct ts_conf *conf;
    struct ts_policies *pol;
    size_t max_bytes;
    struct ts_shard shards[NSHARDS];
    struct ts_intern_shard intern[NINTERN];
    pthread_mutex_t tlock; /* deadline lists, ready list, stopping */
    pthread_cond_t cond;
    struct ts_wait {
        struct ts_trace *head, *tail;
    } waits[WAIT_LISTS];
    size_t nwait;
    struct ts_trace *ready_head, *ready_tail;
    size_t nready;
    int64_t retry_at_ns, backoff_ns;
    pthread_mutex_t dlock; /* policy state (rate limiters) */
    _Atomic size_t ntraces;
    _Atomic size_t bytes;
    _Atomic size_t ready_bytes;
    bool stopping;
    _Atomic bool shut;
    bool thread_started;
    pthread_t thread;
    struct lg_counter *new_traces, *too_early, *eval_errors, *global_sampled, *global_not_sampled;
    struct lg_counter *early[EARLY_COUNT];
    struct lg_counter *late_sampled, *late_dropped, *early_releases;
    struct lg_histogram *decision_latency, *timer_latency, *removal_age, *late_age;
    struct lg_counter *dropped_policy, *dropped_shutdown, *refused, *retries;
};

static inline uint64_t tid_hash(const uint8_t *tid)
{
    uint64_t a, b;
    memcpy(&a, tid, 8);
    memcpy(&b, tid + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull));
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return h;
}

static void account(struct ts_state *st, struct ts_trace *t)
{
    size_t now = sizeof *t + t->cap + (size_t)t->caprefs * sizeof(void *);
    if (now == t->accounted)
        return; /* most appends fit the reserved buffer: no shared-counter traffic */
    if (now > t->accounted)
        atomic_fetch_add(&st->bytes, now - t->accounted);
    else
        atomic_fetch_sub(&st->bytes, t->accounted - now);
    t->accounted = now;
}

/* ---- interned resource + scope ---- */

static uint64_t fnv64(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Returns the entry for (rs, ss) with one reference for the caller; NULL on OOM. */
static struct ts_intern *intern_get(struct ts_state *st, const lg_resource_spans *rs,
                                    const lg_scope_spans *ss)
{
    size_t rl = rs->resource ? protobuf_c_message_get_packed_size(&rs->resource->base) : 0;
    size_t sl = ss->scope ? protobuf_c_message_get_packed_size(&ss->scope->base) : 0;
    const char *ru = rs->schema_url ? rs->schema_url : "",
               *su = ss->schema_url ? ss->schema_url : "";
    size_t rul = strlen(ru), sul = strlen(su);
    size_t total = rl + sl + rul + sul;
    struct ts_intern *e = malloc(sizeof *e + total + 1);
    if (e == NULL)
        return NULL;
    e->res_len = (uint32_t)rl;
    e->scope_len = (uint32_t)sl;
    e->rurl_len = (uint32_t)rul;
    e->surl_len = (uint32_t)sul;
    if (rl)
        protobuf_c_message_pack(&rs->resource->base, e->data);
    if (sl)
        protobuf_c_message_pack(&ss->scope->base, e->data + rl);
    memcpy(e->data + rl + sl, ru, rul);
    memcpy(e->data + rl + sl + rul, su, sul);
    e->hash =
        fnv64(fnv64(14695981039346656037ull, e->data, total), (const uint8_t *)&rl, sizeof rl);
    e->refs = 1;
    struct ts_intern_shard *is = &st->intern[e->hash % NINTERN];
    pthread_mutex_lock(&is->lock);
    if (is->count >= is->nbuckets) {
        size_t nb = is->nbuckets ? is->nbuckets * 2 : 64;
        struct ts_intern **b = calloc(nb, sizeof *b);
        if (b == NULL) {
            pthread_mutex_unlock(&is->lock);
            free(e);
            return NULL;
        }
        for (size_t i = 0; i < is->nbuckets; i++)
            for (struct ts_intern *x = is->buckets[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = b[(x->hash / NINTERN) & (nb - 1)];
                b[(x->hash / NINTERN) & (nb - 1)] = x;
            }
        free(is->buckets);
        is->buckets = b;
        is->nbuckets = nb;
    }
    struct ts_intern **slot = &is->buckets[(e->hash / NINTERN) & (is->nbuckets - 1)];
    for (struct ts_intern *x = *slot; x; x = x->next)
        if (x->hash == e->hash && x->res_len == e->res_len && x->scope_len == e->scope_len &&
            x->rurl_len == e->rurl_len && x->surl_len == e->surl_len &&
            memcmp(x->data, e->data, total) == 0) {
            x->refs++;
            pthread_mutex_unlock(&is->lock);
            free(e);
            return x;
        }
    e->next = *slot;
    *slot = e;
    is->count++;
    pthread_mutex_unlock(&is->lock);
    return e;
}

static void intern_acquire(struct ts_state *st, struct ts_intern *e)
{
    struct ts_intern_shard *is = &st->intern[e->hash % NINTERN];
    pthread_mutex_lock(&is->lock);
    e->refs++;
    pthread_mutex_unlock(&is->lock);
}

static void intern_release(struct ts_state *st, struct ts_intern *e)
{
    if (e == NULL)
        return;
    struct ts_intern_shard *is = &st->intern[e->hash % NINTERN];
    pthread_mutex_lock(&is->lock);
    if (--e->refs == 0) {
        struct ts_intern **pp = &is->buckets[(e->hash / NINTERN) & (is->nbuckets - 1)];
        while (*pp && *pp != e)
            pp = &(*pp)->next;
        if (*pp)
            *pp = e->next;
        is->count--;
        free(e);
    }
    pthread_mutex_unlock(&is->lock);
}

/* ---- traces ---- */

static struct ts_trace *trace_new(struct ts_state *st, const uint8_t *tid)
{
    struct ts_trace *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    memcpy(t->tid, tid, 16);
    t->wlist = WAIT_NONE;
    ts_summary_init(&t->sum);
    account(st, t);
    return t;
}

static void trace_free(struct ts_state *st, struct ts_trace *t)
{
    for (uint16_t i = 0; i < t->nrefs; i++)
        intern_release(st, t->refs[i]);
    atomic_fetch_sub(&st->bytes, t->accounted);
    if (t->refs != &t->ref1)
        free(t->refs);
    free(t->buf);
    free(t);
}

/* Makes room for `extra` more bytes of records, exactly: called with the size of the run of
 * spans of this trace that arrived together, so a trace whose spans come in one request
 * is stored with one allocation and no slack. */
static int trace_reserve(struct ts_state *st, struct ts_trace *t, size_t extra)
{
    size_t need = (size_t)t->len + extra;
    if (need <= t->cap)
        return LG_OK;
    if (need > UINT32_MAX)
        return LG_ETOOBIG;
    uint8_t *nb = realloc(t->buf, need);
    if (nb == NULL)
        return LG_ENOMEM;
    t->buf = nb;
    t->cap = (uint32_t)need;
    account(st, t);
    return LG_OK;
}

/* Appends one span (its protobuf encoding, `size` bytes) under resource/scope `ie`. */
static int trace_append(struct ts_state *st, struct ts_trace *t, const uint8_t *enc, size_t size,
                        struct ts_intern *ie)
{
    uint16_t ri;
    for (ri = 0; ri < t->nrefs; ri++)
        if (t->refs[ri] == ie)
            break;
    if (ri == t->nrefs) {
        if (t->nrefs == UINT16_MAX)
            return LG_ENOMEM;
        if (t->caprefs == 0) {
            t->refs = &t->ref1;
            t->caprefs = 1;
        } else if (t->nrefs == t->caprefs) {
            uint16_t nc = (uint16_t)(t->caprefs * 2 > UINT16_MAX ? UINT16_MAX : t->caprefs * 2);
            struct ts_intern **r = t->refs == &t->ref1 ? malloc(nc * sizeof *r)
                                                       : realloc(t->refs, nc * sizeof *r);
            if (r == NULL)
                return LG_ENOMEM;
            if (t->refs == &t->ref1)
                r[0] = t->ref1;
            t->refs = r;
            t->caprefs = nc;
        }
        intern_acquire(st, ie);
        t->refs[t->nrefs++] = ie;
    }
    if (size > UINT32_MAX - SPAN_HDR - (size_t)t->len)
        return LG_ETOOBIG;
    size_t need = (size_t)t->len + SPAN_HDR + size;
    if (need > t->cap) {
        /* exact for the first span (many traces are one span), then +50%: fewer copies */
        size_t nc = t->cap == 0 ? need : need + need / 2;
        if (nc > UINT32_MAX)
            nc = need;
        uint8_t *nb = realloc(t->buf, nc);
        if (nb == NULL)
            return LG_ENOMEM;
        t->buf = nb;
        t->cap = (uint32_t)nc;
    }
    uint32_t hdr[2] = {(uint32_t)size, ri};
    memcpy(t->buf + t->len, hdr, SPAN_HDR);
    memcpy(t->buf + t->len + SPAN_HDR, enc, size);
    t->len = (uint32_t)need;
    account(st, t);
    return LG_OK;
}

/* ---- deadlines (under tlock) ----
 * A trace's deadline is its arrival plus decision_wait, or its root span's arrival plus
 * decision_wait_after_root_received: the clock plus a constant, so each of the two lists is
 * in deadline order by construction and the earliest deadline is one of their heads. Push,
 * remove and pop are O(1). Consumers read the clock before taking the lock, so a push
 * never lets a deadline go below its list's tail: clamped up to it, a deadline is late by
 * at most the time between two concurrent consumers' clock reads. */

static struct ts_trace *wait_first(const struct ts_state *st)
{
    struct ts_trace *a = st->waits[WAIT_DECISION].head, *b = st->waits[WAIT_AFTER_ROOT].head;
    if (a == NULL)
        return b;
    if (b == NULL)
        return a;
    return b->deadline_ns < a->deadline_ns ? b : a;
}

/* Appends t to list `which`; returns whether it is now the earliest of all (then the
 * decision thread must wake to sleep less). */
static bool wait_push(struct ts_state *st, struct ts_trace *t, int which)
{
    struct ts_wait *w = &st->waits[which];
    if (w->tail != NULL && w->tail->deadline_ns > t->deadline_ns)
        t->deadline_ns = w->tail->deadline_ns;
    t->wlist = (uint8_t)which;
    t->wnext = NULL;
    t->wprev = w->tail;
    if (w->tail != NULL)
        w->tail->wnext = t;
    else
        w->head = t;
    w->tail = t;
    st->nwait++;
    return wait_first(st) == t;
}

static void wait_remove(struct ts_state *st, struct ts_trace *t)
{
    struct ts_wait *w = &st->waits[t->wlist];
    if (t->wprev != NULL)
        t->wprev->wnext = t->wnext;
    else
        w->head = t->wnext;
    if (t->wnext != NULL)
        t->wnext->wprev = t->wprev;
    else
        w->tail = t->wprev;
    t->wprev = t->wnext = NULL;
    t->wlist = WAIT_NONE;
    st->nwait--;
}

static struct ts_trace *wait_pop(struct ts_state *st)
{
    struct ts_trace *t = wait_first(st);
    if (t != NULL)
        wait_remove(st, t);
    return t;
}

/* ---- decision caches (under the shard lock) ---- */

static bool cache_grow(struct ts_cache *c)
{
    uint32_t na = c->alloc ? c->alloc * 2 : 64;
    if (na > c->cap)
        na = c->cap;
    struct ts_cache_ent *r = realloc(c->ring, (size_t)na * sizeof *r);
    if (r == NULL)
        return false;
    c->ring = r;
    c->alloc = na;
    uint32_t nb = 64;
    while (nb < na)
        nb *= 2;
    int32_t *b = malloc((size_t)nb * sizeof *b);
    if (b == NULL)
        return false;
    memset(b, 0xff, (size_t)nb * sizeof *b);
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t k = (uint32_t)(tid_hash(c->ring[i].tid) >> 7) & (nb - 1);
        c->ring[i].next = b[k];
        b[k] = (int32_t)i;
    }
    return true;
}

static struct ts_cache_ent *cache_find(struct ts_cache *c, const uint8_t *tid, uint64_t h)
{
    if (c->n == 0)
        return NULL;
    for (int32_t i = c->buckets[(uint32_t)(h >> 7) & (c->nbuckets - 1)]; i >= 0;
         i = c->ring[i].next)
        if (memcmp(c->ring[i].tid, tid, 16) == 0)
            return &c->ring[i];
    return NULL;
}

static void cache_put(struct ts_cache *c, const uint8_t *tid, uint64_t h, double rate, int64_t now_ns)
{
    if (c->cap == 0)
        return;
    uint32_t ms = (uint32_t)(now_ns / 1000000);
    struct ts_cache_ent *e = cache_find(c, tid, h);
    if (e) {
        e->rate = rate;
        e->decided_ms = ms;
        return;
    }
    uint32_t idx;
    if (c->n < c->cap) {
        if (c->n == c->alloc && !cache_grow(c))
            return; /* out of memory: this decision is simply not remembered */
        idx = c->n++;
    } else {
        idx = c->head;
        c->head = (c->head + 1) % c->cap;
        uint32_t ok = (uint32_t)(tid_hash(c->ring[idx].tid) >> 7) & (c->nbuckets - 1);
        int32_t *pp = &c->buckets[ok];
        while (*pp >= 0 && *pp != (int32_t)idx)
            pp = &c->ring[*pp].next;
        if (*pp >= 0)
            *pp = c->ring[idx].next;
    }
    memcpy(c->ring[idx].tid, tid, 16);
    c->ring[idx].rate = rate;
    c->ring[idx].decided_ms = ms;
    uint32_t k = (uint32_t)(h >> 7) & (c->nbuckets - 1);
    c->ring[idx].next = c->buckets[k];
    c->buckets[k] = (int32_t)idx;
}

static void cache_free(struct ts_cache *c)
{
    free(c->ring);
    free(c->buckets);
    memset(c, 0, sizeof *c);
}

/* ---- shard table (under the shard lock) ---- */

static struct ts_shard *shard_of(struct ts_state *st, uint64_t h)
{
    return &st->shards[h % NSHARDS];
}

static struct ts_trace *table_find(struct ts_shard *sh, const uint8_t *tid, uint64_t h)
{
    if (sh->nbuckets == 0)
        return NULL;
    for (struct ts_trace *t = sh->buckets[(h / NSHARDS) & (sh->nbuckets - 1)]; t; t = t->next)
        if (memcmp(t->tid, tid, 16) == 0)
            return t;
    return NULL;
}

static int table_insert(struct ts_shard *sh, struct ts_trace *t, uint64_t h)
{
    if (sh->count >= sh->nbuckets) {
        size_t nb = sh->nbuckets ? sh->nbuckets * 2 : 256;
        struct ts_trace **b = calloc(nb, sizeof *b);
        if (b == NULL)
            return LG_ENOMEM;
        for (size_t i = 0; i < sh->nbuckets; i++)
            for (struct ts_trace *x = sh->buckets[i], *nx; x; x = nx) {
                nx = x->next;
                size_t k = (tid_hash(x->tid) / NSHARDS) & (nb - 1);
                x->next = b[k];
                b[k] = x;
            }
        free(sh->buckets);
        sh->buckets = b;
        sh->nbuckets = nb;
    }
    struct ts_trace **slot = &sh->buckets[(h / NSHARDS) & (sh->nbuckets - 1)];
    t->next = *slot;
    *slot = t;
    sh->count++;
    return LG_OK;
}

static void table_remove(struct ts_shard *sh, struct ts_trace *t, uint64_t h)
{
    struct ts_trace **pp = &sh->buckets[(h / NSHARDS) & (sh->nbuckets - 1)];
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = t->next;
        sh->count--;
    }
    t->next = NULL;
}

/* ---- deciding ---- */

static void ready_push_locked(struct ts_state *st, struct ts_trace *t)
{
    t->next = NULL;
    if (st->ready_tail)
        st->ready_tail->next = t;
    else
        st->ready_head = t;
    st->ready_tail = t;
    st->nready++;
    atomic_fetch_add(&st->ready_bytes, t->accounted);
}

/* Decides a trace that is out of the deadline lists; the shard lock is held. Removes it from the
 * table, remembers the decision, queues it for forwarding or frees it. */
static void finalize_locked(struct ts_state *st, struct ts_shard *sh, struct ts_trace *t,
                            uint64_t h, enum early_reason why)
{
    table_remove(sh, t, h);
    atomic_fetch_sub(&st->ntraces, 1);
    struct ts_result r;
    int64_t now = lg_now_mono_ns();
    pthread_mutex_lock(&st->dlock);
    ts_decide(st->pol, &t->sum, t->tid, now, st->conf->sample_on_first_match, &r);
    pthread_mutex_unlock(&st->dlock);
    int64_t done = lg_now_mono_ns();
    lg_histogram_observe(st->decision_latency, (uint64_t)(done - now) / 1000);
    lg_histogram_observe(st->removal_age, (uint64_t)(done - t->arrived_ns) / 1000000000u);
    if (why != EARLY_NONE)
        lg_counter_add(st->early[why], 1);
    if (r.sampled) {
        lg_counter_add(st->global_sampled, 1);
        cache_put(&sh->sampled, t->tid, h, r.prob_only_rate, done);
        t->prob_rate = r.prob_only_rate;
        pthread_mutex_lock(&st->tlock);
        ready_push_locked(st, t);
        pthread_cond_signal(&st->cond);
        pthread_mutex_unlock(&st->tlock);
    } else {
        lg_counter_add(st->global_not_sampled, 1);
        cache_put(&sh->not_sampled, t->tid, h, 0, done);
        lg_counter_add(st->dropped_policy, t->sum.spans);
        trace_free(st, t);
    }
}

static void finalize(struct ts_state *st, struct ts_trace *t, enum early_reason why)
{
    uint64_t h = tid_hash(t->tid);
    struct ts_shard *sh = shard_of(st, h);
    pthread_mutex_lock(&sh->lock);
    finalize_locked(st, sh, t, h, why);
    pthread_mutex_unlock(&sh->lock);
}

/* ---- building the batches we forward ---- */

struct group {
    struct ts_intern *e;
    size_t n;
    lg_scope_spans *ss;
};

static lg_resource_spans *group_rs(struct lg_arena *a, struct ts_intern *e, size_t nspans,
                                   lg_scope_spans **ssout)
{
    lg_resource_spans *rs = lg_arena_alloc(a, sizeof *rs);
    lg_scope_spans *ss = lg_arena_alloc(a, sizeof *ss);
    if (rs == NULL || ss == NULL)
        return NULL;
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    rs->resource = lg_otlp_fastdec_resource(e->data, e->res_len, a);
    ss->scope = lg_otlp_fastdec_scope(e->data + e->res_len, e->scope_len, a);
    rs->schema_url =
        lg_arena_strndup(a, (const char *)e->data + e->res_len + e->scope_len, e->rurl_len);
    ss->schema_url = lg_arena_strndup(
        a, (const char *)e->data + e->res_len + e->scope_len + e->rurl_len, e->surl_len);
    ss->spans = lg_arena_alloc(a, (nspans ? nspans : 1) * sizeof(void *));
    rs->scope_spans = lg_arena_alloc(a, sizeof(void *));
    if (rs->resource == NULL || ss->scope == NULL || rs->schema_url == NULL ||
        ss->schema_url == NULL || ss->spans == NULL || rs->scope_spans == NULL)
        return NULL;
    rs->scope_spans[0] = ss;
    rs->n_scope_spans = 1;
    *ssout = ss;
    return rs;
}

/* One batch holding every span of the listed traces, grouped by resource/scope. */
static struct lg_batch *build_batch(struct ts_trace *list)
{
    size_t total = 0, nref = 0;
    for (struct ts_trace *t = list; t; t = t->next) {
        total += t->sum.spans;
        nref += t->nrefs;
    }
    size_t cap = 16;
    while (cap < 2 * nref)
        cap *= 2;
    struct group *g = calloc(cap, sizeof *g);
    struct lg_batch *b = NULL;
    if (g == NULL)
        goto fail;
    size_t ng = 0;
    /* groups: open addressing on the entry pointer */
    for (struct ts_trace *t = list; t; t = t->next) {
        for (uint32_t off = 0; off < t->len;) {
            uint32_t hdr[2];
            memcpy(hdr, t->buf + off, SPAN_HDR);
            struct ts_intern *e = t->refs[hdr[1]];
            size_t k = ((uintptr_t)e >> 4) & (cap - 1);
            while (g[k].e && g[k].e != e)
                k = (k + 1) & (cap - 1);
            if (g[k].e == NULL) {
                g[k].e = e;
                ng++;
            }
            g[k].n++;
            off += SPAN_HDR + hdr[0];
        }
    }
    b = lg_batch_create(LG_SIGNAL_TRACES, 4096 + total * 512);
    if (b == NULL)
        goto fail;
    struct lg_arena *a = b->arena;
    lg_traces_req *req = b->req.traces;
    req->resource_spans = lg_arena_alloc(a, (ng ? ng : 1) * sizeof(void *));
    if (req->resource_spans == NULL)
        goto fail;
    for (size_t k = 0; k < cap; k++) {
        if (g[k].e == NULL)
            continue;
        lg_resource_spans *rs = group_rs(a, g[k].e, g[k].n, &g[k].ss);
        if (rs == NULL)
            goto fail;
        req->resource_spans[req->n_resource_spans++] = rs;
    }
    for (struct ts_trace *t = list; t; t = t->next) {
        char th[32] = "";
        if (t->prob_rate > 0)
            ts_th_format(t->prob_rate, th, sizeof th);
        for (uint32_t off = 0; off < t->len;) {
            uint32_t hdr[2];
            memcpy(hdr, t->buf + off, SPAN_HDR);
            struct ts_intern *e = t->refs[hdr[1]];
            size_t k = ((uintptr_t)e >> 4) & (cap - 1);
            while (g[k].e != e)
                k = (k + 1) & (cap - 1);
            lg_span *sp = lg_otlp_fastdec_span(t->buf + off + SPAN_HDR, hdr[0], a);
            if (sp == NULL)
                goto fail;
            if (th[0] && (sp->trace_state = ts_tracestate_merge(a, sp->trace_state, th)) == NULL)
                goto fail;
            g[k].ss->spans[g[k].ss->n_spans++] = sp;
            off += SPAN_HDR + hdr[0];
        }
    }
    b->items = total;
    b->received_mono_ns = lg_now_mono_ns();
    free(g);
    return b;
fail:
    free(g);
    lg_batch_unref(b);
    return NULL;
}

/* Forwards part of the ready list; refused traces go back to its head. Returns the
 * downstream result (LG_OK when nothing was ready). */
static int forward_ready(struct ts_state *st)
{
    pthread_mutex_lock(&st->tlock);
    struct ts_trace *list = st->ready_head, *last = NULL;
    size_t spans = 0, n = 0;
    for (struct ts_trace *t = list; t && (spans == 0 || spans + t->sum.spans <= FORWARD_MAX_SPANS);
         t = t->next) {
        spans += t->sum.spans;
        last = t;
        n++;
    }
    if (last == NULL) {
        pthread_mutex_unlock(&st->tlock);
        return LG_OK;
    }
    st->ready_head = last->next;
    if (st->ready_head == NULL)
        st->ready_tail = NULL;
    st->nready -= n;
    last->next = NULL;
    pthread_mutex_unlock(&st->tlock);

    struct lg_batch *b = build_batch(list);
    int rc = b ? lg_fanout_consume(&st->c->next[LG_SIGNAL_TRACES], b) : LG_ENOMEM;
    lg_batch_unref(b);
    if (rc == LG_OK) {
        for (struct ts_trace *t = list, *nx; t; t = nx) {
            nx = t->next;
            atomic_fetch_sub(&st->ready_bytes, t->accounted);
            trace_free(st, t);
        }
        pthread_mutex_lock(&st->tlock);
        st->backoff_ns = 0;
        pthread_mutex_unlock(&st->tlock);
        return LG_OK;
    }
    lg_counter_add(st->retries, 1);
    pthread_mutex_lock(&st->tlock);
    last->next = st->ready_head;
    st->ready_head = list;
    if (st->ready_tail == NULL)
        st->ready_tail = last;
    st->nready += n;
    st->backoff_ns = st->backoff_ns ? st->backoff_ns * 2 : RETRY_MIN_NS;
    if (st->backoff_ns > RETRY_MAX_NS)
        st->backoff_ns = RETRY_MAX_NS;
    st->retry_at_ns = lg_now_mono_ns() + st->backoff_ns;
    pthread_mutex_unlock(&st->tlock);
    return rc;
}

/* ---- decision thread ---- */

static void *decider(void *arg)
{
    struct ts_state *st = arg;
    struct ts_trace *due[EXPIRE_MAX];
    pthread_mutex_lock(&st->tlock);
    while (!st->stopping) {
        int64_t now = lg_now_mono_ns();
        struct ts_trace *first = wait_first(st);
        if (first != NULL && first->deadline_ns <= now) {
            size_t n = 0;
            while (n < EXPIRE_MAX && (first = wait_first(st)) != NULL && first->deadline_ns <= now)
                due[n++] = wait_pop(st);
            pthread_mutex_unlock(&st->tlock);
            for (size_t i = 0; i < n; i++)
                finalize(st, due[i], EARLY_NONE);
            lg_histogram_observe(st->timer_latency, (uint64_t)(lg_now_mono_ns() - now) / 1000);
            pthread_mutex_lock(&st->tlock);
            continue;
        }
        if (st->ready_head && st->retry_at_ns <= now) {
            pthread_mutex_unlock(&st->tlock);
            forward_ready(st);
            pthread_mutex_lock(&st->tlock);
            continue;
        }
        int64_t wake = 0;
        if (first != NULL)
            wake = first->deadline_ns;
        if (st->ready_head && (wake == 0 || st->retry_at_ns < wake))
            wake = st->retry_at_ns;
        if (wake == 0) {
            pthread_cond_wait(&st->cond, &st->tlock);
        } else {
            struct timespec ts = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL};
            pthread_cond_timedwait(&st->cond, &st->tlock, &ts);
        }
    }
    pthread_mutex_unlock(&st->tlock);
    return NULL;
}

/* Decides the oldest waiting traces until the limits hold again. */
static void enforce_limits(struct ts_state *st)
{
    for (;;) {
        enum early_reason why;
        if (atomic_load(&st->ntraces) > (size_t)st->conf->num_traces)
            why = EARLY_NUM_TRACES;
        else if (atomic_load(&st->bytes) > st->max_bytes)
            why = EARLY_MEMORY;
        else
            return;
        pthread_mutex_lock(&st->tlock);
        struct ts_trace *t = wait_pop(st);
        pthread_mutex_unlock(&st->tlock);
        if (t == NULL)
            return; /* everything left is already decided (ready list) */
        finalize(st, t, why);
    }
}

/* ---- consume ---- */

static int cmp_ref(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct lg_llm_span_ref *)a)->span,
              y = (uintptr_t)((const struct lg_llm_span_ref *)b)->span;
    return x < y ? -1 : x > y;
}

/* Finds a span's original bytes in the raw-span index of the batch (core/batch.h), which
 * lists the spans in the order of the tree as decoded. The batch's tree is walked in the
 * same order, so a cursor finds each span at or just after the previous hit: spans the
 * receiver pruned or a processor dropped are skipped within RAW_LOOKAHEAD entries, and a
 * span a processor replaced (llm_cost's changed copies) is simply not found — the caller
 * encodes those, and everything else when the batch has no index (JSON, merged batches). */
#define RAW_LOOKAHEAD 16

struct raw_cursor {
    const uint8_t *raw;
    const struct lg_span_raw *idx;
    size_t n, pos;
};

static void raw_cursor_init(struct raw_cursor *rc, const struct lg_batch *b)
{
    const struct lg_batch *src = lg_batch_raw_source(b);
    *rc = (struct raw_cursor){0};
    if (src != NULL) {
        rc->raw = src->raw;
        rc->idx = src->raw_spans;
        rc->n = src->n_raw_spans;
    }
}

static const struct lg_span_raw *raw_find(struct raw_cursor *rc, const lg_span *span)
{
    size_t end = rc->n - rc->pos > RAW_LOOKAHEAD ? rc->pos + RAW_LOOKAHEAD : rc->n;
    for (size_t i = rc->pos; i < end; i++)
        if (rc->idx[i].span == span) {
            rc->pos = i + 1;
            return &rc->idx[i];
        }
    return NULL;
}

/* A span that a processor copied only to append attributes (llm_cost adds its cost that
 * way: lg_attrs_set on a copy of the struct) replaces the original in the index entry at the
 * cursor. Its encoding is the original's bytes followed by the new KeyValues as further
 * `attributes` entries — protobuf concatenates repeated fields — so only those are
 * encoded. Returns the original's entry (cursor advanced), or NULL when the span differs in
 * any other way (then it is encoded whole). */
#define PB_SPAN_ATTRIBUTES_TAG 0x4a /* Span.attributes: field 9, length-delimited */
/* more appended attributes than this: the span is encoded whole (llm_cost adds at most 10) */
#define APPENDED_MAX 16

static const struct lg_span_raw *raw_find_appended(struct raw_cursor *rc, const lg_span *span)
{
    if (rc->pos >= rc->n)
        return NULL;
    const struct lg_span_raw *e = &rc->idx[rc->pos];
    const lg_span *o = e->span;
    if (span->n_attributes <= o->n_attributes || span->n_attributes - o->n_attributes > APPENDED_MAX)
        return NULL;
    lg_span tmp;
    memcpy(&tmp, span, sizeof tmp); /* a byte copy: padding compares as copied */
    tmp.attributes = o->attributes;
    tmp.n_attributes = o->n_attributes;
    if (memcmp(&tmp, o, sizeof tmp) != 0)
        return NULL;
    for (size_t i = 0; i < o->n_attributes; i++)
        if (span->attributes[i] != o->attributes[i])
            return NULL;
    for (size_t i = o->n_attributes; i < span->n_attributes; i++)
        if (span->attributes[i] == NULL)
            return NULL;
    rc->pos++;
    return e;
}

/* whole seconds since a decision; unsigned arithmetic keeps it right across the wrap */
static uint64_t late_age_s(int64_t now_ns, uint32_t decided_ms)
{
    uint32_t age_ms = (uint32_t)(now_ns / 1000000) - decided_ms;
    return age_ms > UINT32_MAX / 2 ? 0 : age_ms / 1000; /* a decision after `now` was read */
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int ts_consume(struct lg_component *c, struct lg_batch *b)
{
    struct ts_state *st = c->state;
    if (b->signal != LG_SIGNAL_TRACES)
        return lg_fanout_consume(&c->next[b->signal], b);
    if (atomic_load(&st->shut) || atomic_load(&st->ready_bytes) > st->max_bytes) {
        /* shutting down, or kept traces the next component does not take fill the memory:
         * refuse (retryable) rather than take data we could not keep */
        lg_counter_add(st->refused, b->items);
        return LG_EAGAIN;
    }
    const struct ts_policies *pol = st->pol;
    /* the LLM spans llm_cost listed, with what it read from them, sorted by address */
    struct lg_llm_span_ref *llm_sorted = NULL;
    size_t nllm = 0;
    if (pol->need_llm && b->llm_scanned && b->n_llm_spans) {
        llm_sorted = malloc(b->n_llm_spans * sizeof *llm_sorted);
        if (llm_sorted) {
            memcpy(llm_sorted, b->llm_spans, b->n_llm_spans * sizeof *llm_sorted);
            nllm = b->n_llm_spans;
            qsort(llm_sorted, nllm, sizeof *llm_sorted, cmp_ref);
        }
    }
    struct ts_scratch scratch = {0};
    struct raw_cursor cur;
    raw_cursor_init(&cur, b);
    size_t run_left = 0; /* spans left in the current run of one trace */
    uint8_t enc_init[4096], *enc = enc_init, *enc_heap = NULL;
    size_t enc_cap = sizeof enc_init;
    struct ts_trace *late = NULL; /* records of spans whose trace was already kept */
    int rc = LG_OK;
    int64_t now = lg_now_mono_ns();
    const lg_traces_req *req = b->req.traces;
    for (size_t r = 0; r < req->n_resource_spans && rc == LG_OK; r++) {
        const lg_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans && rc == LG_OK; s++) {
            const lg_scope_spans *ss = rs->scope_spans[s];
            if (ss->n_spans == 0)
                continue;
            struct ts_intern *ie = intern_get(st, rs, ss);
            if (ie == NULL) {
                rc = LG_ENOMEM;
                break;
            }
            for (size_t i = 0; i < ss->n_spans && rc == LG_OK; i++) {
                const lg_span *span = ss->spans[i];
                uint8_t tid[16] = {0};
                if (span->trace_id.len == 16)
                    memcpy(tid, span->trace_id.data, 16);
                /* the bytes it arrived as when the receiver indexed them; else encoded once,
                 * outside the shard lock, into a reused buffer */
                const uint8_t *bytes;
                size_t size;
                const struct lg_span_raw *rw = raw_find(&cur, span), *orig = NULL;
                if (rw != NULL) {
                    bytes = cur.raw + rw->off;
                    size = rw->len;
                } else if ((orig = raw_find_appended(&cur, span)) != NULL) {
                    /* the appended KeyValues' sizes, computed once (llm_cost appends a few;
                     * raw_find_appended refuses more than APPENDED_MAX) */
                    size_t kvlen[APPENDED_MAX], nadd = span->n_attributes - orig->span->n_attributes;
                    size = orig->len;
                    for (size_t k = 0; k < nadd; k++) {
                        const ProtobufCMessage *kv = &span->attributes[orig->span->n_attributes + k]->base;
                        kvlen[k] = protobuf_c_message_get_packed_size(kv);
                        size += 1 + 10 + kvlen[k]; /* tag, length (at most 10 bytes), KeyValue */
                    }
                    if (size > enc_cap) {
                        uint8_t *nb = realloc(enc_heap, size);
                        if (nb == NULL) {
                            rc = LG_ENOMEM;
                            break;
                        }
                        enc_heap = nb;
                        enc_cap = size;
                        enc = enc_heap;
                    }
                    memcpy(enc, cur.raw + orig->off, orig->len);
                    size = orig->len;
                    for (size_t k = 0; k < nadd; k++) {
                        const ProtobufCMessage *kv = &span->attributes[orig->span->n_attributes + k]->base;
                        enc[size++] = PB_SPAN_ATTRIBUTES_TAG;
                        size += varint_put(enc + size, kvlen[k]);
                        size += protobuf_c_message_pack(kv, enc + size);
                    }
                    bytes = enc;
                } else {
                    size = protobuf_c_message_get_packed_size(&span->base);
                    if (size > enc_cap) {
                        uint8_t *nb = realloc(enc_heap, size);
                        if (nb == NULL) {
                            rc = LG_ENOMEM;
                            break;
                        }
                        enc_heap = nb;
                        enc_cap = size;
                        enc = enc_heap;
                    }
                    protobuf_c_message_pack(&span->base, enc);
                    bytes = enc;
                }
                /* First span of a run of one trace's spans (SDKs send a trace's spans
                 * together): the run's size, reserved at once below. */
                size_t reserve = 0;
                if (run_left == 0) {
                    size_t k = 1, p = cur.pos;
                    reserve = SPAN_HDR + size;
                    for (size_t j = i + 1; j < ss->n_spans; j++, k++) {
                        const lg_span *nx = ss->spans[j];
                        if (nx->trace_id.len != 16 || memcmp(nx->trace_id.data, tid, 16) != 0)
                            break;
                        if (p < cur.n && cur.idx[p].span == nx)
                            reserve += SPAN_HDR + cur.idx[p++].len;
                        else
                            reserve += SPAN_HDR + size; /* to be encoded: about as large */
                    }
                    run_left = k;
                }
                run_left--;
                struct lg_llm_call call;
                const struct lg_llm_call *llm = NULL;
                if (pol->need_llm) {
                    if (b->llm_scanned) {
                        const struct lg_llm_span_ref key = {.span = span}, *ref =
                            nllm ? bsearch(&key, llm_sorted, nllm, sizeof *llm_sorted, cmp_ref) : NULL;
                        if (ref != NULL)
                            llm = ref->call != NULL ? ref->call
                                  : lg_llm_read(rs->resource, ss->scope, span, &call) ? &call : NULL;
                    } else if (lg_llm_read(rs->resource, ss->scope, span, &call)) {
                        llm = &call;
                    }
                }
                uint64_t h = tid_hash(tid);
                struct ts_shard *sh = shard_of(st, h);
                pthread_mutex_lock(&sh->lock);
                struct ts_trace *t = table_find(sh, tid, h);
                if (t == NULL) {
                    struct ts_cache_ent *ce = cache_find(&sh->sampled, tid, h);
                    if (ce) {
                        double rate = ce->rate;
                        uint32_t decided_ms = ce->decided_ms;
                        pthread_mutex_unlock(&sh->lock);
                        lg_histogram_observe(st->late_age, late_age_s(now, decided_ms));
                        /* late span of a kept trace: forwarded at the end of this call */
                        struct ts_trace *lt;
                        for (lt = late; lt && memcmp(lt->tid, tid, 16) != 0; lt = lt->next)
                            ;
                        if (lt == NULL && (lt = trace_new(st, tid)) != NULL) {
                            lt->prob_rate = rate;
                            lt->next = late;
                            late = lt;
                        }
                        if (lt == NULL || trace_append(st, lt, bytes, size, ie) != LG_OK) {
                            rc = LG_ENOMEM;
                            break;
                        }
                        lt->sum.spans++;
                        lg_counter_add(st->late_sampled, 1);
                        lg_counter_add(st->early_releases, 1);
                        continue;
                    }
                    if ((ce = cache_find(&sh->not_sampled, tid, h)) != NULL) {
                        uint32_t decided_ms = ce->decided_ms;
                        pthread_mutex_unlock(&sh->lock);
                        lg_histogram_observe(st->late_age, late_age_s(now, decided_ms));
                        lg_counter_add(st->late_dropped, 1);
                        lg_counter_add(st->dropped_policy, 1);
                        continue;
                    }
                    t = trace_new(st, tid);
                    if (t == NULL || table_insert(sh, t, h) != LG_OK) {
                        pthread_mutex_unlock(&sh->lock);
                        if (t)
                            trace_free(st, t);
                        rc = LG_ENOMEM;
                        break;
                    }
                    atomic_fetch_add(&st->ntraces, 1);
                    lg_counter_add(st->new_traces, 1);
                    t->arrived_ns = now;
                    t->deadline_ns = now + st->conf->decision_wait_ns;
                    pthread_mutex_lock(&st->tlock);
                    if (wait_push(st, t, WAIT_DECISION))
                        pthread_cond_signal(&st->cond);
                    pthread_mutex_unlock(&st->tlock);
                }
                if (reserve > 0)
                    (void)trace_reserve(st, t, reserve); /* else trace_append grows it */
                if (trace_append(st, t, bytes, size, ie) != LG_OK) {
                    pthread_mutex_unlock(&sh->lock);
                    rc = LG_ENOMEM;
                    break;
                }
                bool was_root = t->sum.root_seen;
                ts_span_observe(pol, rs->resource, ss->scope, span, llm, size, &scratch, &t->sum);
                bool early = st->conf->max_spans_per_trace > 0 &&
                             t->sum.spans >= (uint64_t)st->conf->max_spans_per_trace;
                bool root_now =
                    !was_root && t->sum.root_seen && st->conf->decision_wait_after_root_ns > 0;
                if (early || root_now) {
                    pthread_mutex_lock(&st->tlock);
                    bool waiting = t->wlist != WAIT_NONE;
                    if (waiting && early) {
                        wait_remove(st, t);
                    } else if (waiting) {
                        int64_t d = now + st->conf->decision_wait_after_root_ns;
                        if (d < t->deadline_ns) {
                            wait_remove(st, t);
                            t->deadline_ns = d;
                            if (wait_push(st, t, WAIT_AFTER_ROOT))
                                pthread_cond_signal(&st->cond);
                        }
                    }
                    pthread_mutex_unlock(&st->tlock);
                    if (waiting && early)
                        finalize_locked(st, sh, t, h, EARLY_MAX_SPANS);
                }
                pthread_mutex_unlock(&sh->lock);
            }
            intern_release(st, ie);
        }
    }
    ts_scratch_free(&scratch);
    free(enc_heap);
    free(llm_sorted);
    if (late != NULL) {
        struct lg_batch *lb = build_batch(late);
        int frc = lb ? lg_fanout_consume(&c->next[LG_SIGNAL_TRACES], lb) : LG_ENOMEM;
        lg_batch_unref(lb);
        if (frc == LG_OK) {
            for (struct ts_trace *t = late, *nx; t; t = nx) {
                nx = t->next;
                trace_free(st, t);
            }
        } else {
            /* keep them: the decision thread retries like any kept trace */
            pthread_mutex_lock(&st->tlock);
            for (struct ts_trace *t = late, *nx; t; t = nx) {
                nx = t->next;
                ready_push_locked(st, t);
            }
            if (st->retry_at_ns == 0 || st->backoff_ns == 0)
                st->retry_at_ns = lg_now_mono_ns() + RETRY_MIN_NS;
            pthread_cond_signal(&st->cond);
            pthread_mutex_unlock(&st->tlock);
        }
    }
    enforce_limits(st);
    if (rc != LG_OK) {
        /* the spans before the failure are held; the client's retry may duplicate them,
         * which beats losing the rest */
        lg_counter_add(st->refused, b->items);
        lg_error(c->id, "out of memory buffering spans; refusing the request (retryable)");
    }
    return rc;
}

/* ---- life cycle ---- */

static double gauge_traces(void *arg)
{
    struct ts_state *st = arg;
    return (double)atomic_load(&st->ntraces);
}

static double gauge_bytes(void *arg)
{
    struct ts_state *st = arg;
    return (double)atomic_load(&st->bytes);
}

static void state_free(struct ts_state *st)
{
    for (int i = 0; i < NSHARDS; i++) {
        struct ts_shard *sh = &st->shards[i];
        for (size_t k = 0; k < sh->nbuckets; k++)
            for (struct ts_trace *t = sh->buckets[k], *nx; t; t = nx) {
                nx = t->next;
                trace_free(st, t);
            }
        free(sh->buckets);
        cache_free(&sh->sampled);
        cache_free(&sh->not_sampled);
        pthread_mutex_destroy(&sh->lock);
    }
    for (struct ts_trace *t = st->ready_head, *nx; t; t = nx) {
        nx = t->next;
        trace_free(st, t);
    }
    for (int i = 0; i < NINTERN; i++) {
        struct ts_intern_shard *is = &st->intern[i];
        for (size_t k = 0; k < is->nbuckets; k++)
            for (struct ts_intern *e = is->buckets[k], *nx; e; e = nx) {
                nx = e->next;
                free(e);
            }
        free(is->buckets);
        pthread_mutex_destroy(&is->lock);
    }
    pthread_mutex_destroy(&st->tlock);
    pthread_mutex_destroy(&st->dlock);
    pthread_cond_destroy(&st->cond);
    free(st);
}

static int ts_create(struct lg_component *c, struct lg_err *err)
{
    struct ts_conf *cf = c->conf;
    if (cf->policies.ntop == 0)
        return lg_conf_error(err,
                             lg_node_get(c->conf_node, "policies")
                                 ? lg_node_get(c->conf_node, "policies")
                                 : c->conf_node,
                             "policies: at least one policy is required");
    if (cf->decision_wait_ns <= 0)
        return lg_conf_error(err, lg_node_get(c->conf_node, "decision_wait"),
                             "must be greater than 0");
    if (cf->decision_wait_after_root_ns < 0)
        return lg_conf_error(err, lg_node_get(c->conf_node, "decision_wait_after_root_received"),
                             "must not be negative");
    if (cf->on_shutdown == NULL ||
        (strcmp(cf->on_shutdown, "decide") && strcmp(cf->on_shutdown, "drop")))
        return lg_conf_error(err, lg_node_get(c->conf_node, "on_shutdown"),
                             "must be decide or drop");
    int crc = ts_policies_compile(&cf->policies, c->id, err); /* released in ts_destroy */
    if (crc != LG_OK)
        return crc;
    struct ts_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        ts_policies_release(&cf->policies);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    st->c = c;
    st->conf = cf;
    st->pol = &cf->policies;
    st->max_bytes = (size_t)cf->max_memory_mib << 20;
    int64_t sc = cf->decision_cache.sampled_cache_size ? cf->decision_cache.sampled_cache_size
                                                       : cf->num_traces * CACHE_DEFAULT_FACTOR;
    int64_t nc = cf->decision_cache.non_sampled_cache_size
                     ? cf->decision_cache.non_sampled_cache_size
                     : cf->num_traces * CACHE_DEFAULT_FACTOR;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_init(&st->shards[i].lock, NULL);
        st->shards[i].sampled.cap = (uint32_t)((sc + NSHARDS - 1) / NSHARDS);
        st->shards[i].not_sampled.cap = (uint32_t)((nc + NSHARDS - 1) / NSHARDS);
    }
    for (int i = 0; i < NINTERN; i++)
        pthread_mutex_init(&st->intern[i].lock, NULL);
    pthread_mutex_init(&st->tlock, NULL);
    pthread_mutex_init(&st->dlock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (cf->expected_new_traces_per_sec > 0) {
        /* room for decision_wait's worth of new traces without rehashing */
        double expect =
            (double)cf->expected_new_traces_per_sec * ((double)cf->decision_wait_ns / 1e9);
        if (expect > (double)cf->num_traces)
            expect = (double)cf->num_traces;
        size_t per = 256;
        while ((double)per * NSHARDS < expect && per < (1u << 24))
            per *= 2;
        for (int i = 0; i < NSHARDS; i++) {
            st->shards[i].buckets = calloc(per, sizeof(void *));
            st->shards[i].nbuckets = st->shards[i].buckets ? per : 0;
        }
    }
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char lb[256], l2[512];
    snprintf(lb, sizeof lb, "processor=\"%s\"", c->id);
#define TSM "otelcol_processor_tail_sampling_"
    for (size_t i = 0; i < cf->policies.ntop; i++) {
        struct ts_policy *p = cf->policies.top[i];
        snprintf(l2, sizeof l2, "%s,policy=\"%s\",sampled=\"true\"", lb, p->name);
        p->count_sampled = lg_telemetry_counter(
            t, TSM "count_traces_sampled",
            "Count of traces that were sampled or not per sampling policy.", l2);
        p->spans_sampled = lg_telemetry_counter(
            t, TSM "count_spans_sampled",
            "Count of spans that were sampled or not per sampling policy.", l2);
        snprintf(l2, sizeof l2, "%s,policy=\"%s\",sampled=\"false\"", lb, p->name);
        p->count_not_sampled = lg_telemetry_counter(
            t, TSM "count_traces_sampled",
            "Count of traces that were sampled or not per sampling policy.", l2);
        p->spans_not_sampled = lg_telemetry_counter(
            t, TSM "count_spans_sampled",
            "Count of spans that were sampled or not per sampling policy.", l2);
    }
    snprintf(l2, sizeof l2, "%s,sampled=\"true\"", lb);
    st->global_sampled =
        lg_telemetry_counter(t, TSM "global_count_traces_sampled",
                             "Global count of traces sampled by at least one policy.", l2);
    snprintf(l2, sizeof l2, "%s,sampled=\"false\"", lb);
    st->global_not_sampled =
        lg_telemetry_counter(t, TSM "global_count_traces_sampled",
                             "Global count of traces sampled by at least one policy.", l2);
    st->new_traces = lg_telemetry_counter(t, TSM "new_trace_id_received",
                                          "Counts the arrival of new traces.", lb);
    st->too_early = lg_telemetry_counter(
        t, TSM "sampling_trace_dropped_too_early",
        "Traces dropped before a decision (always 0 in llmgate: see early_decisions).", lb);
    st->eval_errors = lg_telemetry_counter(t, TSM "sampling_policy_evaluation_error",
                                           "Count of sampling policy evaluation errors.", lb);
    cf->policies.eval_errors = st->eval_errors;
    for (int i = 0; i < EARLY_COUNT; i++) {
        snprintf(l2, sizeof l2, "%s,reason=\"%s\"", lb, early_names[i]);
        st->early[i] = lg_telemetry_counter(
            t, "llmgate_processor_tail_sampling_early_decisions",
            "Traces decided before decision_wait on the spans they had (limits, shutdown).", l2);
    }
    snprintf(l2, sizeof l2, "%s,decision=\"sampled\"", lb);
    st->late_sampled = lg_telemetry_counter(t, "llmgate_processor_tail_sampling_late_spans",
                                            "Spans arriving after their trace was decided.", l2);
    snprintf(l2, sizeof l2, "%s,decision=\"not_sampled\"", lb);
    st->late_dropped = lg_telemetry_counter(t, "llmgate_processor_tail_sampling_late_spans",
                                            "Spans arriving after their trace was decided.", l2);
    snprintf(l2, sizeof l2, "%s,reason=\"not_sampled\"", lb);
    st->dropped_policy = lg_telemetry_counter(t, "llmgate_processor_tail_sampling_dropped_spans",
                                              "Spans not forwarded, by reason.", l2);
    snprintf(l2, sizeof l2, "%s,reason=\"shutdown\"", lb);
    st->dropped_shutdown = lg_telemetry_counter(t, "llmgate_processor_tail_sampling_dropped_spans",
                                                "Spans not forwarded, by reason.", l2);
    st->early_releases = lg_telemetry_counter(
        t, TSM "early_releases_from_cache_decision",
        "Number of spans that were able to be immediately released due to a decision cache hit.",
        lb);
    /* the Collector's bucket bounds for the two latencies (microseconds) */
    static const double us_bounds[] = {1,    2,    5,    10,   25,    50,    75,    100,
                                       150,  200,  300,  400,  500,   750,   1000,  2000,
                                       3000, 4000, 5000, 10000, 20000, 30000, 50000};
    st->decision_latency = lg_telemetry_histogram(
        t, TSM "sampling_decision_latency",
        "Latency (in microseconds) of deciding one trace (all policies together in llmgate).", lb,
        us_bounds, LG_ARRAY_LEN(us_bounds));
    st->timer_latency = lg_telemetry_histogram(
        t, TSM "sampling_decision_timer_latency",
        "Latency (in microseconds) of each run of the decision thread over due traces.", lb,
        us_bounds, LG_ARRAY_LEN(us_bounds));
    st->removal_age = lg_telemetry_histogram(
        t, TSM "sampling_trace_removal_age",
        "Time (in seconds) from arrival of a new trace until its removal from memory.", lb,
        lg_histogram_default_bounds, lg_histogram_default_nbounds);
    st->late_age = lg_telemetry_histogram(
        t, TSM "sampling_late_span_age",
        "Time (in seconds) from the sampling decision was taken and the arrival of a late span.",
        lb, lg_histogram_default_bounds, lg_histogram_default_nbounds);
    st->retries = lg_telemetry_counter(
        t, "llmgate_processor_tail_sampling_forward_retries",
        "Times the next component refused kept traces (kept and retried).", lb);
    snprintf(l2, sizeof l2, "%s,otel_signal=\"traces\"", lb);
    st->refused = lg_telemetry_counter(t, "otelcol_processor_refused_items",
                                       "Items a processor refused (retryable).", l2);
    if (t != NULL) {
        lg_telemetry_gauge_fn(t, TSM "sampling_traces_on_memory",
                              "Tracks the number of traces currently on the in memory storage.", lb,
                              gauge_traces, st);
        lg_telemetry_gauge_fn(t, "llmgate_processor_tail_sampling_bytes_on_memory",
                              "Bytes held for traces waiting for a decision or to be forwarded.",
                              lb, gauge_bytes, st);
    }
#undef TSM
    c->state = st;
    lg_batch_raw_index_want(true); /* dropped in ts_destroy */
    return LG_OK;
}

static int ts_start(struct lg_component *c, struct lg_err *err)
{
    struct ts_state *st = c->state;
    if (pthread_create(&st->thread, NULL, decider, st) != 0)
        return lg_err_set(err, LG_EINTERNAL, "cannot start the tail sampling decision thread");
    st->thread_started = true;
    return LG_OK;
}

int lg_tail_sampling_flush(struct lg_component *c)
{
    struct ts_state *st = c->state;
    for (;;) {
        pthread_mutex_lock(&st->tlock);
        struct ts_trace *t = wait_pop(st);
        pthread_mutex_unlock(&st->tlock);
        if (t == NULL)
            break;
        finalize(st, t, EARLY_NONE);
    }
    for (;;) {
        pthread_mutex_lock(&st->tlock);
        bool any = st->ready_head != NULL;
        pthread_mutex_unlock(&st->tlock);
        if (!any)
            return LG_OK;
        int rc = forward_ready(st);
        if (rc != LG_OK)
            return rc;
    }
}

size_t lg_tail_sampling_pending(struct lg_component *c, size_t *ready)
{
    struct ts_state *st = c->state;
    pthread_mutex_lock(&st->tlock);
    size_t n = st->nwait;
    if (ready)
        *ready = st->nready;
    pthread_mutex_unlock(&st->tlock);
    return n;
}

static int ts_shutdown(struct lg_component *c, int64_t deadline)
{
    struct ts_state *st = c->state;
    atomic_store(&st->shut, true);
    pthread_mutex_lock(&st->tlock);
    st->stopping = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->tlock);
    if (st->thread_started) {
        pthread_join(st->thread, NULL);
        st->thread_started = false;
    }
    bool drop = strcmp(st->conf->on_shutdown, "drop") == 0;
    size_t lost = 0;
    for (;;) {
        pthread_mutex_lock(&st->tlock);
        struct ts_trace *t = wait_pop(st);
        pthread_mutex_unlock(&st->tlock);
        if (t == NULL)
            break;
        if (drop) {
            uint64_t h = tid_hash(t->tid);
            struct ts_shard *sh = shard_of(st, h);
            pthread_mutex_lock(&sh->lock);
            table_remove(sh, t, h);
            pthread_mutex_unlock(&sh->lock);
            atomic_fetch_sub(&st->ntraces, 1);
            lost += t->sum.spans;
            trace_free(st, t);
        } else {
            finalize(st, t, EARLY_SHUTDOWN);
        }
    }
    /* forward what is kept; retry refusals until the deadline */
    for (;;) {
        pthread_mutex_lock(&st->tlock);
        bool any = st->ready_head != NULL;
        pthread_mutex_unlock(&st->tlock);
        if (!any)
            break;
        if (forward_ready(st) == LG_OK)
            continue;
        if (lg_now_mono_ns() >= deadline) {
            pthread_mutex_lock(&st->tlock);
            struct ts_trace *list = st->ready_head;
            st->ready_head = st->ready_tail = NULL;
            st->nready = 0;
            pthread_mutex_unlock(&st->tlock);
            for (struct ts_trace *t = list, *nx; t; t = nx) {
                nx = t->next;
                lost += t->sum.spans;
                atomic_fetch_sub(&st->ready_bytes, t->accounted);
                trace_free(st, t);
            }
            lg_error(
                c->id,
                "shutdown deadline passed: dropped kept spans the next component kept refusing");
            break;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (lost) {
        lg_counter_add(st->dropped_shutdown, lost);
        if (drop)
            lg_warn(c->id, "on_shutdown: drop — %zu spans of undecided traces dropped", lost);
    }
    return LG_OK;
}

static void ts_destroy(struct lg_component *c)
{
    struct ts_state *st = c->state;
    if (st == NULL)
        return;
    if (st->thread_started)
        ts_shutdown(c, lg_now_mono_ns());
    state_free(st);
    ts_policies_release(&((struct ts_conf *)c->conf)->policies);
    c->state = NULL;
    lg_batch_raw_index_want(false);
}

const struct lg_component_type lg_tail_sampling_processor = {
    .type = "tail_sampling",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES,
    .description = "keeps or drops whole traces by policy after decision_wait (Collector policies "
                   "+ llm_* policies)",
    .conf_size = sizeof(struct ts_conf),
    .fields = ts_fields,
    .create = ts_create,
    .start = ts_start,
    .consume = ts_consume,
    .shutdown = ts_shutdown,
    .destroy = ts_destroy,
};
