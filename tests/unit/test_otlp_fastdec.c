/* tests/unit/test_otlp_fastdec.c — the OTLP trace fast decoder against protobuf-c, its
 * reference: for the bench workload and hand-written wire input covering every field of
 * every trace message (odd field orders, split and interleaved repeated fields, empty and
 * large values), both decoders must build trees that pack to identical bytes; input the
 * fast path must not handle (unknown fields, merges, wrong wire types, truncation, deep
 * nesting) must give the fallback code, and lg_batch_decode must behave as before on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bench/workload.h"
#include "core/batch.h"
#include "core/otlp_fastdec.h"
#include "core/pb_depth.h"

/* ---- a tiny wire writer ---- */

#define WB_CAP (1 << 16)

struct wb {
    uint8_t b[WB_CAP];
    size_t n;
};

static struct wb *wb_new(void)
{
    struct wb *w = calloc(1, sizeof *w);
    assert_non_null(w);
    return w;
}

static void wb_raw(struct wb *w, const void *p, size_t n)
{
    assert_true(w->n + n <= WB_CAP);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void wb_varint(struct wb *w, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        if (v)
            c |= 0x80;
        wb_raw(w, &c, 1);
    } while (v);
}

static void wb_key(struct wb *w, unsigned field, unsigned wt)
{
    wb_varint(w, (uint64_t)field << 3 | wt);
}

static void wb_uint(struct wb *w, unsigned field, uint64_t v)
{
    wb_key(w, field, 0);
    wb_varint(w, v);
}

static void wb_f64(struct wb *w, unsigned field, uint64_t v)
{
    wb_key(w, field, 1);
    for (int i = 0; i < 8; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        wb_raw(w, &c, 1);
    }
}

static void wb_f32(struct wb *w, unsigned field, uint32_t v)
{
    wb_key(w, field, 5);
    for (int i = 0; i < 4; i++) {
        uint8_t c = (uint8_t)(v >> (8 * i));
        wb_raw(w, &c, 1);
    }
}

static void wb_bytes(struct wb *w, unsigned field, const void *p, size_t n)
{
    wb_key(w, field, 2);
    wb_varint(w, n);
    wb_raw(w, p, n);
}

static void wb_str(struct wb *w, unsigned field, const char *s)
{
    wb_bytes(w, field, s, strlen(s));
}

/* Appends `sub` as a message field and frees it. */
static void wb_msg(struct wb *w, unsigned field, struct wb *sub)
{
    wb_bytes(w, field, sub->b, sub->n);
    free(sub);
}

/* ---- helpers ---- */

static const ProtobufCMessageDescriptor *req_desc(void)
{
    return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

/* Both decoders accept `data` (a request, or a standalone message of type t when d is not
 * the request's) and their trees pack to the same bytes. Returns the fast tree's packed
 * size. */
static size_t same_as_protobuf_c(const ProtobufCMessageDescriptor *d, int t, const uint8_t *data,
                                 size_t len)
{
    ProtobufCMessage *ref = protobuf_c_message_unpack(d, NULL, len, data);
    assert_non_null(ref);
    struct lg_arena *a = lg_arena_create(0);
    ProtobufCMessage *fast = NULL;
    if (d == req_desc()) {
        lg_traces_req *r = NULL;
        assert_int_equal(lg_otlp_fastdec_traces(data, len, a, &r, NULL, NULL), LG_OK);
        fast = &r->base;
    } else {
        assert_int_equal(lg_otlp_fastdec_message((enum lg_fastdec_type)t, data, len, a, &fast),
                         LG_OK);
    }
    assert_ptr_equal(fast->descriptor, d);
    assert_int_equal(fast->n_unknown_fields, 0);
    size_t l1, l2;
    uint8_t *p1 = pack(ref, &l1), *p2 = pack(fast, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(p1, p2, l1);
    free(p1);
    free(p2);
    protobuf_c_message_free_unpacked(ref, NULL);
    lg_arena_destroy(a);
    return l2;
}

static void same_request(const struct wb *w)
{
    same_as_protobuf_c(req_desc(), 0, w->b, w->n);
}

static int fast_rc(const uint8_t *data, size_t len)
{
    struct lg_arena *a = lg_arena_create(0);
    lg_traces_req *r = NULL;
    int rc = lg_otlp_fastdec_traces(data, len, a, &r, NULL, NULL);
    lg_arena_destroy(a);
    return rc;
}

/* Wraps a span's bytes into request{rs{ss{span}}}; consumes span. */
static struct wb *request_of_span(struct wb *span)
{
    struct wb *ss = wb_new(), *rs = wb_new(), *req = wb_new();
    wb_msg(ss, 2, span);
    wb_msg(rs, 2, ss);
    wb_msg(req, 1, rs);
    return req;
}

static struct wb *kv_str(const char *k, const char *v)
{
    struct wb *kv = wb_new(), *av = wb_new();
    wb_str(av, 1, v);
    wb_str(kv, 1, k);
    wb_msg(kv, 2, av);
    return kv;
}

/* An AnyValue of every kind in turn, by index 0..8 (incl. nested and empty ones). */
static struct wb *any_value(int kind)
{
    struct wb *v = wb_new();
    static const uint8_t bytes[] = {0, 1, 2, 0xff};
    switch (kind) {
    case 0: wb_str(v, 1, "hello"); break;
    case 1: wb_uint(v, 2, 1); break;
    case 2: wb_uint(v, 3, UINT64_MAX); break;           /* -1: a 10-byte varint */
    case 3: wb_f64(v, 4, 0x400921fb54442d18ull); break; /* pi */
    case 4: { /* array of a string, an int, an empty array and a nested array */
        struct wb *arr = wb_new(), *e = wb_new(), *inner = wb_new(), *inner_any = wb_new();
        wb_str(e, 1, "x");
        wb_msg(arr, 1, e);
        e = wb_new();
        wb_uint(e, 3, 42);
        wb_msg(arr, 1, e);
        e = wb_new();
        wb_msg(e, 5, wb_new());
        wb_msg(arr, 1, e);
        wb_uint(inner_any, 2, 0);
        wb_msg(inner, 1, inner_any);
        e = wb_new();
        wb_msg(e, 5, inner);
        wb_msg(arr, 1, e);
        wb_msg(v, 5, arr);
        break;
    }
    case 5: { /* kvlist with a string, a kv without value and a nested kvlist */
        struct wb *l = wb_new(), *kv = wb_new(), *inner = wb_new(), *iv = wb_new();
        wb_msg(l, 1, kv_str("a", "b"));
        wb_str(kv, 1, "novalue");
        wb_msg(l, 1, kv);
        wb_msg(inner, 1, kv_str("deep", ""));
        wb_msg(iv, 6, inner);
        kv = wb_new();
        wb_str(kv, 1, "nested");
        wb_msg(kv, 2, iv);
        wb_msg(l, 1, kv);
        wb_msg(v, 6, l);
        break;
    }
    case 6: wb_bytes(v, 7, bytes, sizeof bytes); break;
    case 7: wb_bytes(v, 7, "", 0); break; /* empty bytes: data NULL */
    case 8: break;                        /* no value at all */
    default: wb_str(v, 1, ""); break;     /* empty string */
    }
    return v;
}

static struct wb *kv_any(const char *k, int kind)
{
    struct wb *kv = wb_new();
    wb_str(kv, 1, k);
    wb_msg(kv, 2, any_value(kind));
    return kv;
}

/* A span using every field, attributes of every kind, two events, two links, a status. */
static struct wb *full_span(void)
{
    static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t sid[8] = {8, 7, 6, 5, 4, 3, 2, 1}, pid[8] = {1, 1, 1, 1, 2, 2, 2, 2};
    struct wb *s = wb_new();
    wb_bytes(s, 1, tid, sizeof tid);
    wb_bytes(s, 2, sid, sizeof sid);
    wb_str(s, 3, "ot=th:8");
    wb_bytes(s, 4, pid, sizeof pid);
    wb_f32(s, 16, 0x301);
    wb_str(s, 5, "chat gpt-4o");
    wb_uint(s, 6, 3);
    wb_f64(s, 7, 1700000000000000000ull);
    wb_f64(s, 8, 1700000000123456789ull);
    for (int k = 0; k <= 9; k++) {
        char key[16];
        snprintf(key, sizeof key, "attr.%d", k);
        wb_msg(s, 9, kv_any(key, k));
    }
    wb_uint(s, 10, 3);
    for (int e = 0; e < 2; e++) {
        struct wb *ev = wb_new();
        wb_f64(ev, 1, 1700000000000000100ull + (uint64_t)e);
        wb_str(ev, 2, e ? "exception" : "");
        if (e) {
            wb_msg(ev, 3, kv_str("exception.type", "ValueError"));
            wb_msg(ev, 3, kv_any("exception.stacktrace", 4));
        }
        wb_uint(ev, 4, (uint64_t)e * 300); /* 300: a two-byte varint */
        wb_msg(s, 11, ev);
    }
    wb_uint(s, 12, 1);
    for (int l = 0; l < 2; l++) {
        struct wb *lk = wb_new();
        wb_bytes(lk, 1, tid, l ? sizeof tid : 0);
        wb_bytes(lk, 2, sid, sizeof sid);
        wb_str(lk, 3, "k=v");
        wb_msg(lk, 4, kv_any("link.attr", l));
        wb_uint(lk, 5, 7);
        wb_f32(lk, 6, 0x100);
        wb_msg(s, 13, lk);
    }
    wb_uint(s, 14, 2);
    struct wb *st = wb_new();
    wb_str(st, 2, "boom");
    wb_uint(st, 3, 2);
    wb_msg(s, 15, st);
    return s;
}

/* ---- tests ---- */

static void workload_matches_protobuf_c(void **state)
{
    (void)state;
    struct wl_pool pool;
    struct wl_opts wo = {.spans_per_request = 64, .seed = 7};
    struct lg_err err;
    assert_int_equal(wl_pool_build(&pool, 8, &wo, &err), 0);
    for (size_t i = 0; i < pool.n; i++) {
        /* the workload is canonical protobuf: the fast tree re-encodes to the input itself */
        assert_int_equal(same_as_protobuf_c(req_desc(), 0, pool.reqs[i].data, pool.reqs[i].len),
                         pool.reqs[i].len);
    }
    wl_pool_free(&pool);
}

static void every_field_matches(void **state)
{
    (void)state;
    /* resource with attributes, dropped count and an entity ref; scope with everything */
    struct wb *res = wb_new(), *scope = wb_new(), *ss = wb_new(), *rs = wb_new(), *req = wb_new();
    wb_msg(res, 1, kv_str("service.name", "checkout"));
    wb_msg(res, 1, kv_any("k8s.labels", 5));
    wb_uint(res, 2, 4);
    struct wb *er = wb_new();
    wb_str(er, 1, "https://schema");
    wb_str(er, 2, "service");
    wb_str(er, 3, "service.name");
    wb_str(er, 3, "service.namespace");
    wb_str(er, 4, "service.version");
    wb_msg(res, 3, er);
    wb_msg(res, 3, wb_new()); /* an empty entity ref */
    wb_str(scope, 1, "openai-instrumentation");
    wb_str(scope, 2, "1.2.3");
    wb_msg(scope, 3, kv_any("scope.attr", 3));
    wb_uint(scope, 4, 1);
    wb_msg(ss, 1, scope);
    wb_msg(ss, 2, full_span());
    wb_msg(ss, 2, wb_new()); /* an empty span */
    wb_str(ss, 3, "https://opentelemetry.io/schemas/1.26.0");
    wb_msg(rs, 1, res);
    wb_msg(rs, 2, ss);
    wb_msg(rs, 2, wb_new()); /* an empty scope_spans */
    wb_str(rs, 3, "https://rs-schema");
    wb_msg(req, 1, rs);
    wb_msg(req, 1, wb_new()); /* an empty resource_spans */
    same_request(req);

    /* spot-check values of the fast tree */
    struct lg_arena *a = lg_arena_create(0);
    lg_traces_req *r = NULL;
    assert_int_equal(lg_otlp_fastdec_traces(req->b, req->n, a, &r, NULL, NULL), LG_OK);
    assert_int_equal(r->n_resource_spans, 2);
    const lg_resource_spans *rs0 = r->resource_spans[0];
    assert_string_equal(rs0->schema_url, "https://rs-schema");
    assert_int_equal(rs0->resource->dropped_attributes_count, 4);
    assert_int_equal(rs0->resource->n_entity_refs, 2);
    assert_int_equal(rs0->resource->entity_refs[0]->n_id_keys, 2);
    assert_string_equal(rs0->resource->entity_refs[0]->id_keys[1], "service.namespace");
    assert_null(rs0->resource->entity_refs[1]->id_keys);
    assert_int_equal(rs0->n_scope_spans, 2);
    assert_null(rs0->scope_spans[1]->spans);
    assert_null(rs0->scope_spans[1]->scope);
    const lg_scope_spans *ss0 = rs0->scope_spans[0];
    assert_string_equal(ss0->scope->version, "1.2.3");
    assert_int_equal(ss0->n_spans, 2);
    const lg_span *sp = ss0->spans[0];
    assert_int_equal(sp->trace_id.len, 16);
    assert_int_equal(sp->trace_id.data[15], 16);
    assert_int_equal(sp->flags, 0x301);
    assert_string_equal(sp->name, "chat gpt-4o");
    assert_int_equal(sp->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    assert_int_equal(sp->end_time_unix_nano, 1700000000123456789ull);
    assert_int_equal(sp->n_attributes, 10);
    assert_int_equal(sp->attributes[2]->value->int_value, -1);
    assert_int_equal(sp->attributes[3]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
    assert_true(sp->attributes[3]->value->double_value > 3.14159 &&
                sp->attributes[3]->value->double_value < 3.1416);
    assert_int_equal(sp->attributes[4]->value->array_value->n_values, 4);
    assert_int_equal(sp->attributes[4]->value->array_value->values[2]->array_value->n_values, 0);
    assert_null(sp->attributes[5]->value->kvlist_value->values[1]->value);
    assert_int_equal(sp->attributes[6]->value->bytes_value.len, 4);
    assert_int_equal(sp->attributes[6]->value->bytes_value.data[3], 0xff);
    assert_int_equal(sp->attributes[7]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    assert_null(sp->attributes[7]->value->bytes_value.data);
    assert_int_equal(sp->attributes[8]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
    assert_string_equal(sp->attributes[9]->value->string_value, "");
    assert_int_equal(sp->dropped_attributes_count, 3);
    assert_int_equal(sp->n_events, 2);
    assert_int_equal(sp->events[1]->dropped_attributes_count, 300);
    assert_string_equal(sp->events[1]->name, "exception");
    assert_int_equal(sp->n_links, 2);
    assert_null(sp->links[0]->trace_id.data);
    assert_int_equal(sp->links[1]->flags, 0x100);
    assert_string_equal(sp->status->message, "boom");
    assert_int_equal(sp->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    const lg_span *empty = ss0->spans[1];
    assert_string_equal(empty->name, "");
    assert_null(empty->status);
    assert_null(empty->attributes);
    assert_ptr_equal(empty->base.descriptor, &opentelemetry__proto__trace__v1__span__descriptor);
    lg_arena_destroy(a);
    free(req);
}

static void odd_encodings_match(void **state)
{
    (void)state;
    /* fields in reverse order, repeated fields split and interleaved with others,
     * scalars repeated (the last one wins), non-minimal varints and lengths, empty status */
    struct wb *s = wb_new();
    wb_msg(s, 15, wb_new()); /* empty status: present, all defaults */
    wb_f32(s, 16, 1);
    wb_msg(s, 13, wb_new());
    wb_msg(s, 9, kv_str("b", "2"));
    wb_str(s, 5, "first");
    wb_msg(s, 11, wb_new());
    wb_msg(s, 9, kv_str("a", "1"));
    wb_str(s, 5, "second"); /* replaces "first" */
    wb_f64(s, 8, 5);
    wb_f64(s, 7, 4);
    wb_msg(s, 13, wb_new());
    wb_uint(s, 6, 0xffffffffull); /* enum: low 32 bits, -1 */
    wb_msg(s, 9, kv_any("c", 4));
    wb_uint(s, 10, 0x1ffffffffull); /* uint32: truncated to the low 32 bits */
    wb_bytes(s, 1, "0123456789abcdef", 16);
    wb_bytes(s, 1, "fedcba9876543210", 16); /* replaces */
    /* dropped_events_count 5 as a non-minimal 3-byte varint */
    static const uint8_t nonmin[] = {0x60, 0x85, 0x80, 0x00};
    wb_raw(s, nonmin, sizeof nonmin);
    /* name with a non-minimal 2-byte length */
    static const uint8_t nonmin_len[] = {0x2a, 0x83, 0x00, 'x', 'y', 'z'};
    wb_raw(s, nonmin_len, sizeof nonmin_len);
    struct wb *span_copy = wb_new();
    wb_raw(span_copy, s->b, s->n);
    /* the standalone span decoder agrees too */
    same_as_protobuf_c(&opentelemetry__proto__trace__v1__span__descriptor, LG_FASTDEC_SPAN,
                       span_copy->b, span_copy->n);
    free(span_copy);

    /* scope_spans and resource_spans fields in odd order, the scope after the spans */
    struct wb *ss = wb_new(), *rs = wb_new(), *req = wb_new(), *scope = wb_new();
    wb_str(ss, 3, "schema");
    wb_msg(ss, 2, s);
    wb_str(scope, 1, "lib");
    wb_msg(ss, 1, scope);
    wb_msg(ss, 2, full_span());
    wb_str(rs, 3, "rs");
    wb_msg(rs, 2, ss);
    wb_msg(rs, 1, wb_new()); /* empty resource, after the scope spans */
    wb_msg(req, 1, rs);
    same_request(req);

    struct lg_arena *a = lg_arena_create(0);
    lg_traces_req *r = NULL;
    assert_int_equal(lg_otlp_fastdec_traces(req->b, req->n, a, &r, NULL, NULL), LG_OK);
    const lg_span *sp = r->resource_spans[0]->scope_spans[0]->spans[0];
    assert_string_equal(sp->name, "xyz");
    assert_int_equal((int32_t)sp->kind, -1);
    assert_int_equal(sp->dropped_attributes_count, 0xffffffffu);
    assert_int_equal(sp->dropped_events_count, 5);
    assert_memory_equal(sp->trace_id.data, "fedcba9876543210", 16);
    assert_int_equal(sp->n_attributes, 3);
    assert_string_equal(sp->attributes[0]->key, "b");
    assert_string_equal(sp->attributes[1]->key, "a");
    assert_int_equal(sp->n_events, 1);
    assert_int_equal(sp->n_links, 2);
    assert_non_null(sp->status);
    assert_string_equal(sp->status->message, "");
    assert_non_null(r->resource_spans[0]->resource);
    assert_string_equal(r->resource_spans[0]->scope_spans[0]->scope->name, "lib");
    lg_arena_destroy(a);
    free(req);

    /* an empty request, and an absent one */
    same_as_protobuf_c(req_desc(), 0, (const uint8_t *)"", 0);
    assert_int_equal(fast_rc(NULL, 0), LG_OK);
}

static void standalone_messages_match(void **state)
{
    (void)state;
    struct wb *s = full_span();
    same_as_protobuf_c(&opentelemetry__proto__trace__v1__span__descriptor, LG_FASTDEC_SPAN, s->b,
                       s->n);
    struct lg_arena *a = lg_arena_create(0);
    lg_span *sp = lg_otlp_fastdec_span(s->b, s->n, a);
    assert_non_null(sp);
    assert_int_equal(sp->n_attributes, 10);
    free(s);

    struct wb *res = wb_new();
    wb_msg(res, 1, kv_str("service.name", "x"));
    wb_uint(res, 2, 1);
    same_as_protobuf_c(&opentelemetry__proto__resource__v1__resource__descriptor,
                       LG_FASTDEC_RESOURCE, res->b, res->n);
    lg_resource *r = lg_otlp_fastdec_resource(res->b, res->n, a);
    assert_non_null(r);
    assert_string_equal(r->attributes[0]->value->string_value, "x");
    /* an unknown field: the wrapper falls back to protobuf-c, which keeps it */
    wb_uint(res, 9, 1);
    ProtobufCMessage *m = NULL;
    assert_int_equal(lg_otlp_fastdec_message(LG_FASTDEC_RESOURCE, res->b, res->n, a, &m),
                     LG_FASTDEC_FALLBACK);
    r = lg_otlp_fastdec_resource(res->b, res->n, a);
    assert_non_null(r);
    assert_int_equal(r->base.n_unknown_fields, 1);
    free(res);

    struct wb *sc = wb_new();
    wb_str(sc, 2, "v");
    wb_str(sc, 1, "n");
    wb_msg(sc, 3, kv_any("a", 5));
    same_as_protobuf_c(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor,
                       LG_FASTDEC_SCOPE, sc->b, sc->n);
    lg_scope *scp = lg_otlp_fastdec_scope(sc->b, sc->n, a);
    assert_non_null(scp);
    assert_string_equal(scp->name, "n");
    /* malformed: both refuse */
    assert_null(lg_otlp_fastdec_scope(sc->b, sc->n - 1, a));
    free(sc);
    lg_arena_destroy(a);
}

/* Spans with more attributes, events or links than the decoder gathers locally (64, 16,
 * 16) take its counting path; exactly at the limits they do not. */
static void many_children_match(void **state)
{
    (void)state;
    static const size_t shapes[][3] = {
        {64, 16, 16}, {65, 0, 0}, {1, 17, 0}, {0, 0, 17}, {200, 20, 18}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct wb *s = wb_new();
        size_t na = shapes[i][0], ne = shapes[i][1], nl = shapes[i][2];
        for (size_t k = 0; k < na || k < ne || k < nl; k++) { /* interleaved */
            char key[32];
            snprintf(key, sizeof key, "a%zu", k);
            if (k < na)
                wb_msg(s, 9, kv_any(key, (int)(k % 10)));
            if (k < ne) {
                struct wb *ev = wb_new();
                wb_str(ev, 2, key);
                wb_msg(s, 11, ev);
            }
            if (k < nl) {
                struct wb *lk = wb_new();
                wb_str(lk, 3, key);
                wb_msg(s, 13, lk);
            }
            if (k == 3)
                wb_str(s, 5, "mid");
        }
        same_as_protobuf_c(&opentelemetry__proto__trace__v1__span__descriptor, LG_FASTDEC_SPAN,
                           s->b, s->n);
        struct lg_arena *a = lg_arena_create(0);
        ProtobufCMessage *m = NULL;
        assert_int_equal(lg_otlp_fastdec_message(LG_FASTDEC_SPAN, s->b, s->n, a, &m), LG_OK);
        const lg_span *sp = (const lg_span *)m;
        assert_int_equal(sp->n_attributes, na);
        assert_int_equal(sp->n_events, ne);
        assert_int_equal(sp->n_links, nl);
        char want[32];
        if (na > 0) {
            snprintf(want, sizeof want, "a%zu", na - 1);
            assert_string_equal(sp->attributes[na - 1]->key, want);
        }
        if (nl > 0) {
            snprintf(want, sizeof want, "a%zu", nl - 1);
            assert_string_equal(sp->links[nl - 1]->trace_state, want);
        }
        assert_string_equal(sp->name, "mid");
        lg_arena_destroy(a);
        struct wb *req = request_of_span(s);
        same_request(req);
        free(req);
    }
}

/* A span with one extra field appended, wrapped into a request. */
static struct wb *span_plus(const void *extra, size_t n)
{
    struct wb *s = wb_new();
    wb_str(s, 5, "op");
    wb_raw(s, extra, n);
    return request_of_span(s);
}

static void fallback_cases(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t n;
    } span_extras[] = {
        {"unknown field 99 (varint)", {0x98, 0x06, 0x01}, 3},
        {"unknown field 17", {0x88, 0x01, 0x05}, 3},
        {"reserved-like field 1000 in a span", {0xc2, 0x3e, 0x00}, 3},
        {"status twice (merge)", {0x7a, 0x02, 0x18, 0x01, 0x7a, 0x02, 0x18, 0x02}, 8},
        {"name as varint", {0x28, 0x01}, 2},
        {"kind as fixed32", {0x35, 1, 0, 0, 0}, 5},
        {"start time as varint", {0x38, 0x01}, 2},
        {"flags as varint", {0x80, 0x01, 0x01}, 3},
        {"flags key non-minimal", {0x85, 0x81, 0x00, 1, 0, 0, 0}, 7},
        {"key with field number 0", {0x02, 0x00}, 2},
        {"group wire type", {0x5b, 0x5c}, 2},
        {"varint past 64 bits",
         {0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03},
         11},
        {"unterminated varint", {0x50, 0xff}, 2},
        {"length past the end", {0x2a, 0x05, 'a'}, 3},
        {"truncated fixed64", {0x39, 1, 2, 3}, 4},
        {"kv value twice", {0x4a, 0x06, 0x12, 0x00, 0x12, 0x02, 0x18, 0x01}, 8},
        {"oneof member twice", {0x4a, 0x06, 0x12, 0x04, 0x18, 0x01, 0x10, 0x01}, 8},
        {"unknown AnyValue field", {0x4a, 0x04, 0x12, 0x02, 0x40, 0x01}, 6},
        {"status field 1 (reserved)", {0x7a, 0x02, 0x08, 0x01}, 4},
    };
    for (size_t i = 0; i < sizeof span_extras / sizeof span_extras[0]; i++) {
        struct wb *req = span_plus(span_extras[i].bytes, span_extras[i].n);
        int rc = fast_rc(req->b, req->n);
        if (rc != LG_FASTDEC_FALLBACK)
            fail_msg("%s: fast path gave %d, want the fallback", span_extras[i].what, rc);
        /* lg_batch_decode agrees with protobuf-c: decodes what it can, refuses the rest */
        ProtobufCMessage *ref = protobuf_c_message_unpack(req_desc(), NULL, req->n, req->b);
        struct lg_batch *b = NULL;
        struct lg_err err;
        rc = lg_batch_decode(LG_SIGNAL_TRACES, req->b, req->n, &b, &err);
        if (ref == NULL) {
            assert_int_equal(rc, LG_EINVAL);
            assert_non_null(strstr(err.msg, "malformed protobuf"));
        } else {
            assert_int_equal(rc, LG_OK);
            size_t l1, l2;
            uint8_t *p1 = pack(ref, &l1), *p2 = pack(b->req.msg, &l2);
            assert_int_equal(l1, l2);
            assert_memory_equal(p1, p2, l1);
            free(p1);
            free(p2);
            protobuf_c_message_free_unpacked(ref, NULL);
            lg_batch_unref(b);
        }
        free(req);
    }

    /* an unknown field survives lg_batch_decode + lg_batch_encode byte for byte (protobuf-c
     * packs unknown fields after the known ones, so put it last) */
    static const uint8_t unknown[] = {0x98, 0x06, 0x2a};
    struct wb *req = span_plus(unknown, sizeof unknown);
    struct lg_batch *b = NULL;
    struct lg_err err;
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, req->b, req->n, &b, &err), LG_OK);
    assert_int_equal(b->items, 1);
    size_t len;
    uint8_t *enc = lg_batch_encode(b, &len);
    assert_int_equal(len, req->n);
    assert_memory_equal(enc, req->b, len);
    free(enc);
    lg_batch_unref(b);

    /* every truncation of a full request is refused by the fast path or decoded exactly */
    struct wb *ss = wb_new(), *rs = wb_new(), *full = wb_new();
    wb_msg(ss, 2, full_span());
    wb_msg(rs, 2, ss);
    wb_msg(full, 1, rs);
    for (size_t n = 0; n < full->n; n++) {
        int rc = fast_rc(full->b, n);
        ProtobufCMessage *ref = protobuf_c_message_unpack(req_desc(), NULL, n, full->b);
        if (rc == LG_OK) {
            assert_non_null(ref); /* e.g. n = 0: an empty request */
            same_as_protobuf_c(req_desc(), 0, full->b, n);
        } else {
            assert_int_equal(rc, LG_FASTDEC_FALLBACK);
        }
        if (ref)
            protobuf_c_message_free_unpacked(ref, NULL);
        if (rc != LG_OK && n > 0) { /* the outer length no longer matches: malformed */
            assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, full->b, n, &b, &err), LG_EINVAL);
        }
    }
    free(full);
    free(req);
}

/* request{1: rs{2: ss{2: span{9: kv{2: any{5: arr{1: any ... }}}}}}} with `levels` arrays:
 * the innermost AnyValue sits at depth 5 + 2 * levels. */
static struct wb *nested(size_t levels)
{
    struct wb *v = wb_new();
    wb_str(v, 1, "x");
    for (size_t i = 0; i < levels; i++) {
        struct wb *arr = wb_new(), *any = wb_new();
        wb_msg(arr, 1, v);
        wb_msg(any, 5, arr);
        v = any;
    }
    struct wb *kv = wb_new(), *s = wb_new();
    wb_str(kv, 1, "k");
    wb_msg(kv, 2, v);
    wb_msg(s, 9, kv);
    return request_of_span(s);
}

static void nesting_is_bounded(void **state)
{
    (void)state;
    /* deepest AnyValue at depth 99 (< LG_PB_MAX_DEPTH): fast, and the depth check agrees */
    struct wb *ok = nested((LG_PB_MAX_DEPTH - 1 - 5) / 2);
    assert_int_equal(fast_rc(ok->b, ok->n), LG_OK);
    struct lg_err err;
    assert_int_equal(lg_pb_check_depth(req_desc(), ok->b, ok->n, LG_PB_MAX_DEPTH, &err), LG_OK);
    same_request(ok);
    free(ok);
    /* one level more reaches depth 101: fallback, and lg_batch_decode refuses it as before */
    struct wb *deep = nested((LG_PB_MAX_DEPTH - 1 - 5) / 2 + 1);
    assert_int_equal(fast_rc(deep->b, deep->n), LG_FASTDEC_FALLBACK);
    struct lg_batch *b = NULL;
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, deep->b, deep->n, &b, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "nested deeper"));
    free(deep);
    /* far deeper (a few thousand levels): no stack trouble, same answers */
    struct wb *huge = nested(2000);
    assert_int_equal(fast_rc(huge->b, huge->n), LG_FASTDEC_FALLBACK);
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, huge->b, huge->n, &b, &err), LG_EINVAL);
    free(huge);
}

static void raw_index_from_fast_path(void **state)
{
    (void)state;
    struct wl_pool pool;
    struct wl_opts wo = {.spans_per_request = 40, .seed = 3};
    struct lg_err err;
    assert_int_equal(wl_pool_build(&pool, 2, &wo, &err), 0);
    lg_batch_raw_index_want(true);
    for (size_t i = 0; i < pool.n; i++) {
        struct lg_batch *b = NULL;
        assert_int_equal(lg_batch_decode_indexed(LG_SIGNAL_TRACES, pool.reqs[i].data,
                                                 pool.reqs[i].len, &b, &err),
                         LG_OK);
        assert_int_equal(b->n_raw_spans, b->items);
        assert_int_equal(b->raw_len, pool.reqs[i].len);
        assert_ptr_not_equal(b->raw, pool.reqs[i].data); /* a copy */
        assert_memory_equal(b->raw, pool.reqs[i].data, b->raw_len);
        size_t k = 0;
        const lg_traces_req *r = b->req.traces;
        for (size_t x = 0; x < r->n_resource_spans; x++)
            for (size_t y = 0; y < r->resource_spans[x]->n_scope_spans; y++) {
                const lg_scope_spans *ss = r->resource_spans[x]->scope_spans[y];
                for (size_t z = 0; z < ss->n_spans; z++, k++) {
                    const struct lg_span_raw *e = &b->raw_spans[k];
                    assert_ptr_equal(e->span, ss->spans[z]);
                    assert_true((size_t)e->off + e->len <= b->raw_len);
                    /* the range holds exactly this span's encoding */
                    size_t l;
                    uint8_t *p = pack(&ss->spans[z]->base, &l);
                    assert_int_equal(l, e->len);
                    assert_memory_equal(p, b->raw + e->off, l);
                    free(p);
                }
            }
        lg_batch_unref(b);
    }
    /* a request the fast path leaves to protobuf-c still gets its index (the wire walk) */
    static const uint8_t unknown[] = {0x98, 0x06, 0x2a};
    struct wb *req = span_plus(unknown, sizeof unknown);
    struct lg_batch *b = NULL;
    assert_int_equal(lg_batch_decode_indexed(LG_SIGNAL_TRACES, req->b, req->n, &b, &err), LG_OK);
    assert_int_equal(b->n_raw_spans, 1);
    assert_int_equal(b->raw_spans[0].off, 6);
    lg_batch_unref(b);
    free(req);
    /* the fast decoder's own index output */
    struct lg_arena *a = lg_arena_create(0);
    lg_traces_req *r = NULL;
    struct lg_span_raw *raw = NULL;
    size_t nraw = 9;
    assert_int_equal(lg_otlp_fastdec_traces((const uint8_t *)"", 0, a, &r, &raw, &nraw), LG_OK);
    assert_null(raw);
    assert_int_equal(nraw, 0);
    lg_arena_destroy(a);
    lg_batch_raw_index_want(false);
    wl_pool_free(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(workload_matches_protobuf_c), cmocka_unit_test(every_field_matches),
        cmocka_unit_test(odd_encodings_match),         cmocka_unit_test(standalone_messages_match),
        cmocka_unit_test(many_children_match),         cmocka_unit_test(fallback_cases),
        cmocka_unit_test(nesting_is_bounded),          cmocka_unit_test(raw_index_from_fast_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
