/* tests/unit/sink.h — test doubles shared by unit tests (header-only: every
 * tests/unit/test_*.c is its own executable).
 *
 * A recording sink component: consume() keeps a reference to every batch it accepts, or
 * refuses with `refuse` while that is non-zero. Also helpers to build small trace batches
 * and components from YAML text. */
#ifndef LG_TEST_SINK_H
#define LG_TEST_SINK_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/component.h"
#include "core/conf.h"

struct test_sink {
    pthread_mutex_t lock;
    struct lg_batch *got[1024];
    size_t ngot;
    size_t items;
    int refuse; /* LG_E* to refuse with, 0 to accept */
    size_t refused_calls;
};

static inline int test_sink_consume(struct lg_component *c, struct lg_batch *b)
{
    struct test_sink *s = c->state;
    pthread_mutex_lock(&s->lock);
    if (s->refuse) {
        s->refused_calls++;
        pthread_mutex_unlock(&s->lock);
        return s->refuse;
    }
    if (s->ngot < 1024)
        s->got[s->ngot++] = lg_batch_ref(b);
    s->items += b->items;
    pthread_mutex_unlock(&s->lock);
    return LG_OK;
}

static const struct lg_component_type test_sink_type = {
    .type = "test_sink",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .consume = test_sink_consume,
};

static inline void test_sink_init(struct test_sink *s, struct lg_component *c)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    memset(c, 0, sizeof *c);
    c->type = &test_sink_type;
    c->id = "test_sink";
    c->state = s;
}

static inline size_t test_sink_items(struct test_sink *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->items;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static inline void test_sink_free(struct test_sink *s)
{
    for (size_t i = 0; i < s->ngot; i++)
        lg_batch_unref(s->got[i]);
    pthread_mutex_destroy(&s->lock);
}

/* A traces batch with `nres` resources of one scope each holding `nspans` spans; span names
 * are "s<batch_tag>-<r>-<i>" so tests can check order. */
static inline struct lg_batch *make_traces(int tag, size_t nres, size_t nspans)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_TRACES, 0);
    struct lg_arena *a = b->arena;
    lg_traces_req *req = b->req.traces;
    req->n_resource_spans = nres;
    req->resource_spans = lg_arena_calloc(a, nres, sizeof(void *));
    for (size_t r = 0; r < nres; r++) {
        lg_resource_spans *rs = lg_arena_alloc(a, sizeof *rs);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        rs->resource = lg_arena_alloc(a, sizeof *rs->resource);
        opentelemetry__proto__resource__v1__resource__init(rs->resource);
        lg_scope_spans *ss = lg_arena_alloc(a, sizeof *ss);
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        ss->n_spans = nspans;
        ss->spans = lg_arena_calloc(a, nspans ? nspans : 1, sizeof(void *));
        for (size_t i = 0; i < nspans; i++) {
            lg_span *s = lg_arena_alloc(a, sizeof *s);
            opentelemetry__proto__trace__v1__span__init(s);
            uint8_t *tid = lg_arena_calloc(a, 1, 16), *sid = lg_arena_calloc(a, 1, 8);
            tid[0] = (uint8_t)(tag + 1);
            tid[15] = (uint8_t)r;
            sid[0] = (uint8_t)(i + 1);
            s->trace_id = (ProtobufCBinaryData){16, tid};
            s->span_id = (ProtobufCBinaryData){8, sid};
            char name[64];
            snprintf(name, sizeof name, "s%d-%zu-%zu", tag, r, i);
            s->name = lg_arena_strdup(a, name);
            ss->spans[i] = s;
        }
        rs->n_scope_spans = 1;
        rs->scope_spans = lg_arena_alloc(a, sizeof(void *));
        rs->scope_spans[0] = ss;
        req->resource_spans[r] = rs;
    }
    b->items = lg_batch_count_items(b);
    return b;
}

/* Span names of a traces batch in order, joined by spaces (malloc'd). */
static inline char *span_names(const struct lg_batch *b)
{
    size_t cap = 4096, len = 0;
    char *out = calloc(1, cap);
    const lg_traces_req *r = b->req.traces;
    for (size_t i = 0; i < r->n_resource_spans; i++)
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
            const lg_scope_spans *ss = r->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++)
                len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "", ss->spans[k]->name);
        }
    return out;
}

#endif
