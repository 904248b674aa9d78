/* core/otlp_fastdec.c — the OTLP trace fast decoder (see otlp_fastdec.h for why and for the
 * exact contract with protobuf-c).
 *
 * Every message is decoded by its own function. Spans (the bulk) gather their attributes,
 * events and links in local arrays and copy the pointers out once; other messages run a
 * counting pass over their own fields (skipping payloads) first, so one allocation holds
 * the struct, its pointer arrays and, for attributes, the KeyValue + AnyValue pairs. The
 * decode pass switches on the key byte. Field numbers and wire types are those of proto/
 * (key byte = field << 3 | wire type). Anything unexpected returns FD_FALLBACK at once:
 * the fast path only has to be right on what it accepts. Owns nothing: memory comes from
 * the caller's arena, through a bump allocator (structs from the front of a chunk, strings
 * and bytes from the back, so neither wastes alignment padding on the other). */
#include "otlp_fastdec.h"

#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pb_depth.h"

#define FD_FALLBACK LG_FASTDEC_FALLBACK

/* Decoded size of a request relative to its wire size: the bench workload's tree takes
 * 3.9x its wire size (structs are wider than their encoding); the first chunk covers that,
 * later chunks are a quarter of the previous one. */
#define FD_CHUNK_NUM 4
#define FD_CHUNK_MIN 4096
/* An object bigger than this share of a chunk gets its own arena allocation, so a large
 * string does not throw away the rest of the current chunk. */
#define FD_BIG_DIVISOR 4
/* protobuf-c refuses lengths above INT_MAX and length prefixes over 5 bytes. */
#define FD_LEN_MAX_BYTES    5
#define FD_VARINT_MAX_BYTES 10

typedef Opentelemetry__Proto__Common__V1__EntityRef lg_entity_ref;

struct fd {
    uint8_t *lo, *hi; /* free space of the current chunk */
    struct lg_arena *a;
    size_t chunk; /* size of the next chunk; 0 = every object straight from the arena */
    const uint8_t *base;
    bool want_raw;
    struct lg_span_raw *raw; /* malloc'd while decoding, moved to the arena at the end */
    size_t nraw, capraw;
};

static uint8_t no_chunk[1];

struct kvpair {
    lg_kv kv;
    lg_any_value av;
};

#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return FD_FALLBACK;                                                                    \
    } while (0)
#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != LG_OK)                                                                          \
            return rc_;                                                                            \
    } while (0)

/* ---- allocation ---- */

static void *fd_more(struct fd *f, size_t size, bool top)
{
    if (f->chunk == 0 || size > f->chunk / FD_BIG_DIVISOR)
        return lg_arena_alloc(f->a, size ? size : 1);
    uint8_t *c = lg_arena_alloc(f->a, f->chunk);
    if (c == NULL)
        return NULL;
    f->lo = c;
    f->hi = c + f->chunk;
    size_t next = f->chunk / FD_BIG_DIVISOR;
    f->chunk = next < FD_CHUNK_MIN ? FD_CHUNK_MIN : next;
    if (top) {
        f->hi -= size;
        return f->hi;
    }
    f->lo += size;
    return c;
}

/* 8-byte aligned memory for structs and pointer arrays (nothing in OTLP needs more). */
static inline void *fd_alloc(struct fd *f, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    if ((size_t)(f->hi - f->lo) < size)
        return fd_more(f, size, false);
    void *p = f->lo;
    f->lo += size;
    return p;
}

/* Unaligned memory for string and bytes contents. */
static inline uint8_t *fd_top(struct fd *f, size_t size)
{
    if ((size_t)(f->hi - f->lo) < size)
        return fd_more(f, size, true);
    f->hi -= size;
    return f->hi;
}

/* ---- wire primitives (false = not something the fast path reproduces) ---- */

static bool varint_slow(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (unsigned i = 0; i < FD_VARINT_MAX_BYTES; i++) {
        if (p >= end)
            return false;
        uint8_t c = *p++;
        /* The 10th byte carries bit 63 only; more bits are dropped by the 64-bit value but
         * still count for protobuf-c's bool parse, so leave such input to it. */
        if (i == FD_VARINT_MAX_BYTES - 1 && c > 1)
            return false;
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            *pp = p;
            return true;
        }
    }
    return false;
}

static inline bool rd_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    if (*pp < end && **pp < 0x80) {
        *v = *(*pp)++;
        return true;
    }
    return varint_slow(pp, end, v);
}

static inline bool rd_len(const uint8_t **pp, const uint8_t *end, size_t *n)
{
    const uint8_t *p = *pp;
    uint64_t x;
    if (p < end && *p < 0x80) {
        x = *p++;
    } else {
        x = 0;
        unsigned i;
        for (i = 0; i < FD_LEN_MAX_BYTES; i++) {
            if (p >= end)
                return false;
            uint8_t c = *p++;
            x |= (uint64_t)(c & 0x7f) << (7 * i);
            if (!(c & 0x80))
                break;
        }
        if (i == FD_LEN_MAX_BYTES || x > INT_MAX)
            return false;
    }
    if (x > (uint64_t)(end - p))
        return false;
    *n = (size_t)x;
    *pp = p;
    return true;
}

static inline bool rd_fixed64(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    if (end - p < 8)
        return false;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    *v = x;
    *pp = p + 8;
    return true;
}

static inline bool rd_fixed32(const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
    const uint8_t *p = *pp;
    if (end - p < 4)
        return false;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    *pp = p + 4;
    return true;
}

/* A string field: arena copy with a NUL (protobuf-c allocates even an empty one). */
static inline int rd_string(struct fd *f, const uint8_t **pp, const uint8_t *end, char **out)
{
    size_t n;
    NEED(rd_len(pp, end, &n));
    char *s = (char *)fd_top(f, n + 1);
    if (s == NULL)
        return LG_ENOMEM;
    memcpy(s, *pp, n);
    s[n] = '\0';
    *pp += n;
    *out = s;
    return LG_OK;
}

/* A bytes field: data NULL when empty, as protobuf-c leaves it. */
static inline int rd_bytes(struct fd *f, const uint8_t **pp, const uint8_t *end,
                           ProtobufCBinaryData *out)
{
    size_t n;
    NEED(rd_len(pp, end, &n));
    out->len = n;
    out->data = NULL;
    if (n > 0) {
        if ((out->data = fd_top(f, n)) == NULL)
            return LG_ENOMEM;
        memcpy(out->data, *pp, n);
        *pp += n;
    }
    return LG_OK;
}

/* Counts the length-delimited fields with key bytes k[0..2] while checking the message's
 * own framing. The only multi-byte key accepted is Span.flags (0x85 0x01); the decode pass
 * refuses it anywhere else. */
static bool count_keys(const uint8_t *p, const uint8_t *end, const uint8_t k[3], size_t c[3])
{
    while (p < end) {
        uint8_t key = *p++;
        if (key >= 0x80) {
            if (key != 0x85 || p >= end || *p != 0x01)
                return false;
            p++;
        }
        switch (key & 7) {
        case 0: {
            uint64_t v;
            if (!rd_varint(&p, end, &v))
                return false;
            break;
        }
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case 2: {
            size_t n;
            if (!rd_len(&p, end, &n))
                return false;
            p += n;
            c[0] += key == k[0];
            c[1] += key == k[1];
            c[2] += key == k[2];
            break;
        }
        default: return false;
        }
    }
    return true;
}

/* ---- common.proto ---- */

static int dec_any(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                   lg_any_value *v);

/* KeyValue at `depth`; its value goes into *av (allocated with it by the caller). */
static int dec_kv(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth, lg_kv *kv,
                  lg_any_value *av)
{
    static const lg_kv init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    NEED(depth < LG_PB_MAX_DEPTH);
    *kv = init;
    while (p < end) {
        uint8_t key = *p++;
        if (key == 0x0a) { /* key = 1, string */
            TRY(rd_string(f, &p, end, &kv->key));
        } else if (key == 0x12) { /* value = 2, AnyValue */
            size_t n;
            NEED(kv->value == NULL && rd_len(&p, end, &n));
            TRY(dec_any(f, p, p + n, depth + 1, av));
            kv->value = av;
            p += n;
        } else {
            return FD_FALLBACK;
        }
    }
    return LG_OK;
}

/* The pointer array and KeyValue + AnyValue storage of n attributes, carved from `mem`. */
static inline struct kvpair *kv_storage(uint8_t *mem)
{
    return (struct kvpair *)mem;
}

/* One repeated KeyValue element into slot *i of ptrs / pairs (both sized by count_keys). */
static inline int rd_kv_elem(struct fd *f, const uint8_t **pp, const uint8_t *end, unsigned depth,
                             lg_kv **ptrs, struct kvpair *pairs, size_t cap, size_t *i)
{
    size_t n;
    NEED(rd_len(pp, end, &n) && *i < cap);
    struct kvpair *kp = &pairs[*i];
    TRY(dec_kv(f, *pp, *pp + n, depth, &kp->kv, &kp->av));
    ptrs[(*i)++] = &kp->kv;
    *pp += n;
    return LG_OK;
}

static int dec_array(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                     lg_array_value **out)
{
    static const lg_array_value init = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    static const uint8_t keys[3] = {0x0a, 0, 0}; /* values = 1 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t nv = c[0];
    uint8_t *mem =
        fd_alloc(f, sizeof(lg_array_value) + nv * (sizeof(void *) + sizeof(lg_any_value)));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_array_value *arr = (lg_array_value *)mem;
    *arr = init;
    lg_any_value **ptrs = (lg_any_value **)(arr + 1);
    lg_any_value *vals = (lg_any_value *)(ptrs + nv);
    size_t i = 0;
    while (p < end) {
        uint8_t key = *p++;
        size_t n;
        NEED(key == 0x0a && rd_len(&p, end, &n) && i < nv);
        TRY(dec_any(f, p, p + n, depth + 1, &vals[i]));
        ptrs[i] = &vals[i];
        i++;
        p += n;
    }
    NEED(i == nv);
    arr->n_values = nv;
    arr->values = nv ? ptrs : NULL;
    *out = arr;
    return LG_OK;
}

static int dec_kvlist(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                      lg_kvlist **out)
{
    static const lg_kvlist init = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    static const uint8_t keys[3] = {0x0a, 0, 0}; /* values = 1 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t nv = c[0];
    uint8_t *mem = fd_alloc(f, sizeof(lg_kvlist) + nv * (sizeof(void *) + sizeof(struct kvpair)));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_kvlist *l = (lg_kvlist *)mem;
    *l = init;
    lg_kv **ptrs = (lg_kv **)(l + 1);
    struct kvpair *pairs = kv_storage((uint8_t *)(ptrs + nv));
    size_t i = 0;
    while (p < end) {
        uint8_t key = *p++;
        NEED(key == 0x0a);
        TRY(rd_kv_elem(f, &p, end, depth + 1, ptrs, pairs, nv, &i));
    }
    NEED(i == nv);
    l->n_values = nv;
    l->values = nv ? ptrs : NULL;
    *out = l;
    return LG_OK;
}

static int dec_any(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                   lg_any_value *v)
{
    static const lg_any_value init = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    NEED(depth < LG_PB_MAX_DEPTH);
    *v = init;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        size_t n;
        /* a second oneof member: protobuf-c replaces the first; leave that to it */
        NEED(v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
        switch (key) {
        case 0x0a: /* string_value = 1 */
            TRY(rd_string(f, &p, end, &v->string_value));
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            break;
        case 0x10: /* bool_value = 2 */
            NEED(rd_varint(&p, end, &x));
            v->bool_value = x != 0;
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            break;
        case 0x18: /* int_value = 3 */
            NEED(rd_varint(&p, end, &x));
            v->int_value = (int64_t)x;
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            break;
        case 0x21: /* double_value = 4, fixed64 */
            NEED(rd_fixed64(&p, end, &x));
            memcpy(&v->double_value, &x, sizeof x);
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            break;
        case 0x2a: /* array_value = 5 */
            NEED(rd_len(&p, end, &n));
            TRY(dec_array(f, p, p + n, depth + 1, &v->array_value));
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            p += n;
            break;
        case 0x32: /* kvlist_value = 6 */
            NEED(rd_len(&p, end, &n));
            TRY(dec_kvlist(f, p, p + n, depth + 1, &v->kvlist_value));
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
            p += n;
            break;
        case 0x3a: /* bytes_value = 7 */
            TRY(rd_bytes(f, &p, end, &v->bytes_value));
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
            break;
        default: return FD_FALLBACK;
        }
    }
    return LG_OK;
}

static int dec_scope(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                     lg_scope **out)
{
    static const lg_scope init = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    static const uint8_t keys[3] = {0x1a, 0, 0}; /* attributes = 3 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t na = c[0];
    uint8_t *mem = fd_alloc(f, sizeof(lg_scope) + na * (sizeof(void *) + sizeof(struct kvpair)));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_scope *s = (lg_scope *)mem;
    *s = init;
    lg_kv **attrs = (lg_kv **)(s + 1);
    struct kvpair *pairs = kv_storage((uint8_t *)(attrs + na));
    size_t ia = 0;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        switch (key) {
        case 0x0a: /* name = 1 */ TRY(rd_string(f, &p, end, &s->name)); break;
        case 0x12: /* version = 2 */ TRY(rd_string(f, &p, end, &s->version)); break;
        case 0x1a: /* attributes = 3 */
            TRY(rd_kv_elem(f, &p, end, depth + 1, attrs, pairs, na, &ia));
            break;
        case 0x20: /* dropped_attributes_count = 4 */
            NEED(rd_varint(&p, end, &x));
            s->dropped_attributes_count = (uint32_t)x;
            break;
        default: return FD_FALLBACK;
        }
    }
    NEED(ia == na);
    s->n_attributes = na;
    s->attributes = na ? attrs : NULL;
    *out = s;
    return LG_OK;
}

/* ---- resource.proto ---- */

static int dec_entity_ref(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                          lg_entity_ref **out)
{
    static const lg_entity_ref init = OPENTELEMETRY__PROTO__COMMON__V1__ENTITY_REF__INIT;
    static const uint8_t keys[3] = {0x1a, 0x22, 0}; /* id_keys = 3, description_keys = 4 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    uint8_t *mem = fd_alloc(f, sizeof(lg_entity_ref) + (c[0] + c[1]) * sizeof(char *));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_entity_ref *e = (lg_entity_ref *)mem;
    *e = init;
    char **ids = (char **)(e + 1);
    char **descs = ids + c[0];
    size_t ni = 0, nd = 0;
    while (p < end) {
        uint8_t key = *p++;
        switch (key) {
        case 0x0a: /* schema_url = 1 */ TRY(rd_string(f, &p, end, &e->schema_url)); break;
        case 0x12: /* type = 2 */ TRY(rd_string(f, &p, end, &e->type)); break;
        case 0x1a: /* id_keys = 3 */
            NEED(ni < c[0]);
            TRY(rd_string(f, &p, end, &ids[ni++]));
            break;
        case 0x22: /* description_keys = 4 */
            NEED(nd < c[1]);
            TRY(rd_string(f, &p, end, &descs[nd++]));
            break;
        default: return FD_FALLBACK;
        }
    }
    NEED(ni == c[0] && nd == c[1]);
    e->n_id_keys = ni;
    e->id_keys = ni ? ids : NULL;
    e->n_description_keys = nd;
    e->description_keys = nd ? descs : NULL;
    *out = e;
    return LG_OK;
}

static int dec_resource(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                        lg_resource **out)
{
    static const lg_resource init = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    static const uint8_t keys[3] = {0x0a, 0x1a, 0}; /* attributes = 1, entity_refs = 3 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t na = c[0], ne = c[1];
    uint8_t *mem =
        fd_alloc(f, sizeof(lg_resource) + (na + ne) * sizeof(void *) + na * sizeof(struct kvpair));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_resource *r = (lg_resource *)mem;
    *r = init;
    lg_kv **attrs = (lg_kv **)(r + 1);
    lg_entity_ref **refs = (lg_entity_ref **)(attrs + na);
    struct kvpair *pairs = kv_storage((uint8_t *)(refs + ne));
    size_t ia = 0, ie = 0;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        size_t n;
        switch (key) {
        case 0x0a: /* attributes = 1 */
            TRY(rd_kv_elem(f, &p, end, depth + 1, attrs, pairs, na, &ia));
            break;
        case 0x10: /* dropped_attributes_count = 2 */
            NEED(rd_varint(&p, end, &x));
            r->dropped_attributes_count = (uint32_t)x;
            break;
        case 0x1a: /* entity_refs = 3 */
            NEED(rd_len(&p, end, &n) && ie < ne);
            TRY(dec_entity_ref(f, p, p + n, depth + 1, &refs[ie]));
            ie++;
            p += n;
            break;
        default: return FD_FALLBACK;
        }
    }
    NEED(ia == na && ie == ne);
    r->n_attributes = na;
    r->attributes = na ? attrs : NULL;
    r->n_entity_refs = ne;
    r->entity_refs = ne ? refs : NULL;
    *out = r;
    return LG_OK;
}

/* ---- trace.proto ---- */

static int dec_event(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                     lg_span_event **out)
{
    static const lg_span_event init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
    static const uint8_t keys[3] = {0x1a, 0, 0}; /* attributes = 3 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t na = c[0];
    uint8_t *mem =
        fd_alloc(f, sizeof(lg_span_event) + na * (sizeof(void *) + sizeof(struct kvpair)));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_span_event *e = (lg_span_event *)mem;
    *e = init;
    lg_kv **attrs = (lg_kv **)(e + 1);
    struct kvpair *pairs = kv_storage((uint8_t *)(attrs + na));
    size_t ia = 0;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        switch (key) {
        case 0x09: /* time_unix_nano = 1, fixed64 */
            NEED(rd_fixed64(&p, end, &x));
            e->time_unix_nano = x;
            break;
        case 0x12: /* name = 2 */ TRY(rd_string(f, &p, end, &e->name)); break;
        case 0x1a: /* attributes = 3 */
            TRY(rd_kv_elem(f, &p, end, depth + 1, attrs, pairs, na, &ia));
            break;
        case 0x20: /* dropped_attributes_count = 4 */
            NEED(rd_varint(&p, end, &x));
            e->dropped_attributes_count = (uint32_t)x;
            break;
        default: return FD_FALLBACK;
        }
    }
    NEED(ia == na);
    e->n_attributes = na;
    e->attributes = na ? attrs : NULL;
    *out = e;
    return LG_OK;
}

static int dec_link(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                    lg_span_link **out)
{
    static const lg_span_link init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
    static const uint8_t keys[3] = {0x22, 0, 0}; /* attributes = 4 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t na = c[0];
    uint8_t *mem =
        fd_alloc(f, sizeof(lg_span_link) + na * (sizeof(void *) + sizeof(struct kvpair)));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_span_link *l = (lg_span_link *)mem;
    *l = init;
    lg_kv **attrs = (lg_kv **)(l + 1);
    struct kvpair *pairs = kv_storage((uint8_t *)(attrs + na));
    size_t ia = 0;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        uint32_t x32;
        switch (key) {
        case 0x0a: /* trace_id = 1 */ TRY(rd_bytes(f, &p, end, &l->trace_id)); break;
        case 0x12: /* span_id = 2 */ TRY(rd_bytes(f, &p, end, &l->span_id)); break;
        case 0x1a: /* trace_state = 3 */ TRY(rd_string(f, &p, end, &l->trace_state)); break;
        case 0x22: /* attributes = 4 */
            TRY(rd_kv_elem(f, &p, end, depth + 1, attrs, pairs, na, &ia));
            break;
        case 0x28: /* dropped_attributes_count = 5 */
            NEED(rd_varint(&p, end, &x));
            l->dropped_attributes_count = (uint32_t)x;
            break;
        case 0x35: /* flags = 6, fixed32 */
            NEED(rd_fixed32(&p, end, &x32));
            l->flags = x32;
            break;
        default: return FD_FALLBACK;
        }
    }
    NEED(ia == na);
    l->n_attributes = na;
    l->attributes = na ? attrs : NULL;
    *out = l;
    return LG_OK;
}

static int dec_status(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                      lg_status **out)
{
    static const lg_status init = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    NEED(depth < LG_PB_MAX_DEPTH);
    lg_status *s = fd_alloc(f, sizeof *s);
    if (s == NULL)
        return LG_ENOMEM;
    *s = init;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        if (key == 0x12) { /* message = 2 (1 is reserved) */
            TRY(rd_string(f, &p, end, &s->message));
        } else if (key == 0x18) { /* code = 3, enum: protobuf-c keeps the low 32 bits */
            NEED(rd_varint(&p, end, &x));
            s->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(int32_t)(uint32_t)x;
        } else {
            return FD_FALLBACK;
        }
    }
    *out = s;
    return LG_OK;
}

/* A span's attributes, events and links are gathered in local arrays first, so the common
 * span needs no counting pass; a span with more falls back to counting and decodes again. */
#define FD_SPAN_LOCAL_ATTRS  64
#define FD_SPAN_LOCAL_EVENTS 16
#define FD_SPAN_LOCAL_LINKS  16

static int dec_span(struct fd *f, const uint8_t *p0, const uint8_t *end, unsigned depth,
                    lg_span **out)
{
    static const lg_span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    static const uint8_t keys[3] = {0x4a, 0x5a, 0x6a}; /* attributes = 9, events = 11, links = 13 */
    lg_kv *la[FD_SPAN_LOCAL_ATTRS];
    lg_span_event *le[FD_SPAN_LOCAL_EVENTS];
    lg_span_link *ll[FD_SPAN_LOCAL_LINKS];
    lg_kv **attrs = la;
    lg_span_event **evs = le;
    lg_span_link **lks = ll;
    size_t ca = FD_SPAN_LOCAL_ATTRS, ce = FD_SPAN_LOCAL_EVENTS, cl = FD_SPAN_LOCAL_LINKS;
    bool counted = false;
    NEED(depth < LG_PB_MAX_DEPTH);
    lg_span *s = fd_alloc(f, sizeof *s);
    if (s == NULL)
        return LG_ENOMEM;
again:
    *s = init;
    const uint8_t *p = p0;
    size_t ia = 0, ie = 0, il = 0;
    while (p < end) {
        uint8_t key = *p++;
        uint64_t x;
        uint32_t x32;
        size_t n;
        switch (key) {
        case 0x0a: /* trace_id = 1 */ TRY(rd_bytes(f, &p, end, &s->trace_id)); break;
        case 0x12: /* span_id = 2 */ TRY(rd_bytes(f, &p, end, &s->span_id)); break;
        case 0x1a: /* trace_state = 3 */ TRY(rd_string(f, &p, end, &s->trace_state)); break;
        case 0x22: /* parent_span_id = 4 */ TRY(rd_bytes(f, &p, end, &s->parent_span_id)); break;
        case 0x2a: /* name = 5 */ TRY(rd_string(f, &p, end, &s->name)); break;
        case 0x30: /* kind = 6, enum: protobuf-c keeps the low 32 bits */
            NEED(rd_varint(&p, end, &x));
            s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(int32_t)(uint32_t)x;
            break;
        case 0x39: /* start_time_unix_nano = 7, fixed64 */
            NEED(rd_fixed64(&p, end, &s->start_time_unix_nano));
            break;
        case 0x41: /* end_time_unix_nano = 8, fixed64 */
            NEED(rd_fixed64(&p, end, &s->end_time_unix_nano));
            break;
        case 0x4a: { /* attributes = 9 */
            NEED(rd_len(&p, end, &n));
            if (ia == ca)
                goto recount;
            struct kvpair *kp = fd_alloc(f, sizeof *kp);
            if (kp == NULL)
                return LG_ENOMEM;
            TRY(dec_kv(f, p, p + n, depth + 1, &kp->kv, &kp->av));
            attrs[ia++] = &kp->kv;
            p += n;
            break;
        }
        case 0x50: /* dropped_attributes_count = 10 */
            NEED(rd_varint(&p, end, &x));
            s->dropped_attributes_count = (uint32_t)x;
            break;
        case 0x5a: /* events = 11 */
            NEED(rd_len(&p, end, &n));
            if (ie == ce)
                goto recount;
            TRY(dec_event(f, p, p + n, depth + 1, &evs[ie]));
            ie++;
            p += n;
            break;
        case 0x60: /* dropped_events_count = 12 */
            NEED(rd_varint(&p, end, &x));
            s->dropped_events_count = (uint32_t)x;
            break;
        case 0x6a: /* links = 13 */
            NEED(rd_len(&p, end, &n));
            if (il == cl)
                goto recount;
            TRY(dec_link(f, p, p + n, depth + 1, &lks[il]));
            il++;
            p += n;
            break;
        case 0x70: /* dropped_links_count = 14 */
            NEED(rd_varint(&p, end, &x));
            s->dropped_links_count = (uint32_t)x;
            break;
        case 0x7a: /* status = 15: a second one would be merged by protobuf-c */
            NEED(s->status == NULL && rd_len(&p, end, &n));
            TRY(dec_status(f, p, p + n, depth + 1, &s->status));
            p += n;
            break;
        case 0x85: /* flags = 16, fixed32: the two-byte key 0x85 0x01 */
            NEED(p < end && *p == 0x01);
            p++;
            NEED(rd_fixed32(&p, end, &x32));
            s->flags = x32;
            break;
        default: return FD_FALLBACK;
        }
    }
    if (!counted && ia + ie + il > 0) { /* move the pointers from the local arrays */
        void **mem = fd_alloc(f, (ia + ie + il) * sizeof(void *));
        if (mem == NULL)
            return LG_ENOMEM;
        memcpy(mem, la, ia * sizeof(void *));
        memcpy(mem + ia, le, ie * sizeof(void *));
        memcpy(mem + ia + ie, ll, il * sizeof(void *));
        attrs = (lg_kv **)mem;
        evs = (lg_span_event **)(mem + ia);
        lks = (lg_span_link **)(mem + ia + ie);
    }
    s->n_attributes = ia;
    s->attributes = ia ? attrs : NULL;
    s->n_events = ie;
    s->events = ie ? evs : NULL;
    s->n_links = il;
    s->links = il ? lks : NULL;
    *out = s;
    return LG_OK;

recount : { /* more children than the local arrays hold: size them exactly and start over */
    size_t c[3] = {0, 0, 0};
    NEED(!counted && count_keys(p0, end, keys, c));
    void **mem = fd_alloc(f, (c[0] + c[1] + c[2]) * sizeof(void *));
    if (mem == NULL)
        return LG_ENOMEM;
    attrs = (lg_kv **)mem;
    evs = (lg_span_event **)(mem + c[0]);
    lks = (lg_span_link **)(mem + c[0] + c[1]);
    ca = c[0];
    ce = c[1];
    cl = c[2];
    counted = true;
    goto again;
}
}

static int raw_push(struct fd *f, const lg_span *span, const uint8_t *p, size_t n)
{
    if (f->nraw == f->capraw) {
        size_t cap = f->capraw ? f->capraw * 2 : 256;
        struct lg_span_raw *r = realloc(f->raw, cap * sizeof *r);
        if (r == NULL)
            return LG_ENOMEM;
        f->raw = r;
        f->capraw = cap;
    }
    f->raw[f->nraw++] =
        (struct lg_span_raw){.span = span, .off = (uint32_t)(p - f->base), .len = (uint32_t)n};
    return LG_OK;
}

static int dec_scope_spans(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                           lg_scope_spans **out)
{
    static const lg_scope_spans init = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    static const uint8_t keys[3] = {0x12, 0, 0}; /* spans = 2 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t ns = c[0];
    uint8_t *mem = fd_alloc(f, sizeof(lg_scope_spans) + ns * sizeof(void *));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_scope_spans *ss = (lg_scope_spans *)mem;
    *ss = init;
    lg_span **spans = (lg_span **)(ss + 1);
    size_t is = 0;
    while (p < end) {
        uint8_t key = *p++;
        size_t n;
        switch (key) {
        case 0x0a: /* scope = 1 */
            NEED(ss->scope == NULL && rd_len(&p, end, &n));
            TRY(dec_scope(f, p, p + n, depth + 1, &ss->scope));
            p += n;
            break;
        case 0x12: /* spans = 2 */
            NEED(rd_len(&p, end, &n) && is < ns);
            TRY(dec_span(f, p, p + n, depth + 1, &spans[is]));
            if (f->want_raw)
                TRY(raw_push(f, spans[is], p, n));
            is++;
            p += n;
            break;
        case 0x1a: /* schema_url = 3 */ TRY(rd_string(f, &p, end, &ss->schema_url)); break;
        default: return FD_FALLBACK;
        }
    }
    NEED(is == ns);
    ss->n_spans = ns;
    ss->spans = ns ? spans : NULL;
    *out = ss;
    return LG_OK;
}

static int dec_resource_spans(struct fd *f, const uint8_t *p, const uint8_t *end, unsigned depth,
                              lg_resource_spans **out)
{
    static const lg_resource_spans init = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    static const uint8_t keys[3] = {0x12, 0, 0}; /* scope_spans = 2 */
    size_t c[3] = {0, 0, 0};
    NEED(depth < LG_PB_MAX_DEPTH && count_keys(p, end, keys, c));
    size_t ns = c[0];
    uint8_t *mem = fd_alloc(f, sizeof(lg_resource_spans) + ns * sizeof(void *));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_resource_spans *rs = (lg_resource_spans *)mem;
    *rs = init;
    lg_scope_spans **sss = (lg_scope_spans **)(rs + 1);
    size_t is = 0;
    while (p < end) {
        uint8_t key = *p++;
        size_t n;
        switch (key) {
        case 0x0a: /* resource = 1 */
            NEED(rs->resource == NULL && rd_len(&p, end, &n));
            TRY(dec_resource(f, p, p + n, depth + 1, &rs->resource));
            p += n;
            break;
        case 0x12: /* scope_spans = 2 */
            NEED(rd_len(&p, end, &n) && is < ns);
            TRY(dec_scope_spans(f, p, p + n, depth + 1, &sss[is]));
            is++;
            p += n;
            break;
        case 0x1a: /* schema_url = 3 */ TRY(rd_string(f, &p, end, &rs->schema_url)); break;
        default: return FD_FALLBACK;
        }
    }
    NEED(is == ns);
    rs->n_scope_spans = ns;
    rs->scope_spans = ns ? sss : NULL;
    *out = rs;
    return LG_OK;
}

static int dec_request(struct fd *f, const uint8_t *p, const uint8_t *end, lg_traces_req **out)
{
    static const lg_traces_req init =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    static const uint8_t keys[3] = {0x0a, 0, 0}; /* resource_spans = 1 */
    size_t c[3] = {0, 0, 0};
    NEED(count_keys(p, end, keys, c));
    size_t nr = c[0];
    uint8_t *mem = fd_alloc(f, sizeof(lg_traces_req) + nr * sizeof(void *));
    if (mem == NULL)
        return LG_ENOMEM;
    lg_traces_req *req = (lg_traces_req *)mem;
    *req = init;
    lg_resource_spans **rss = (lg_resource_spans **)(req + 1);
    size_t ir = 0;
    while (p < end) {
        uint8_t key = *p++;
        size_t n;
        NEED(key == 0x0a && rd_len(&p, end, &n) && ir < nr);
        TRY(dec_resource_spans(f, p, p + n, 1, &rss[ir]));
        ir++;
        p += n;
    }
    NEED(ir == nr);
    req->n_resource_spans = nr;
    req->resource_spans = nr ? rss : NULL;
    *out = req;
    return LG_OK;
}

/* ---- API ---- */

static void fd_init(struct fd *f, struct lg_arena *a, const uint8_t *data, size_t chunk)
{
    *f = (struct fd){.lo = no_chunk, .hi = no_chunk, .a = a, .chunk = chunk, .base = data};
}

size_t lg_otlp_fastdec_arena_hint(size_t len)
{
    return len > (SIZE_MAX - FD_CHUNK_MIN) / FD_CHUNK_NUM ? SIZE_MAX / 2
                                                          : len * FD_CHUNK_NUM + FD_CHUNK_MIN;
}

int lg_otlp_fastdec_traces(const uint8_t *data, size_t len, struct lg_arena *a, lg_traces_req **out,
                           struct lg_span_raw **raw, size_t *n_raw)
{
    struct fd f;
    fd_init(&f, a, data, lg_otlp_fastdec_arena_hint(len));
    f.want_raw = raw != NULL && len <= UINT32_MAX;
    static const uint8_t empty[1];
    if (data == NULL) /* only valid with len == 0; keeps pointer arithmetic defined */
        data = f.base = empty;
    int rc = dec_request(&f, data, data + len, out);
    if (raw != NULL) {
        *raw = NULL;
        *n_raw = 0;
        if (rc == LG_OK && f.want_raw && f.nraw > 0) {
            struct lg_span_raw *r = lg_arena_memdup(a, f.raw, f.nraw * sizeof *r);
            if (r == NULL)
                rc = LG_ENOMEM;
            *raw = r;
            *n_raw = r ? f.nraw : 0;
        }
    }
    free(f.raw);
    return rc;
}

int lg_otlp_fastdec_message(enum lg_fastdec_type t, const uint8_t *data, size_t len,
                            struct lg_arena *a, ProtobufCMessage **out)
{
    struct fd f;
    /* standalone messages usually share the arena with many others: no chunk tails */
    fd_init(&f, a, data, 0);
    static const uint8_t empty[1];
    if (data == NULL)
        data = empty;
    const uint8_t *end = data + len;
    switch (t) {
    case LG_FASTDEC_SPAN: return dec_span(&f, data, end, 3, (lg_span **)out);
    case LG_FASTDEC_RESOURCE: return dec_resource(&f, data, end, 2, (lg_resource **)out);
    case LG_FASTDEC_SCOPE: return dec_scope(&f, data, end, 3, (lg_scope **)out);
    }
    return LG_EINVAL;
}

static ProtobufCMessage *fast_or_generic(enum lg_fastdec_type t,
                                         const ProtobufCMessageDescriptor *d, const uint8_t *data,
                                         size_t len, struct lg_arena *a)
{
    ProtobufCMessage *m = NULL;
    int rc = lg_otlp_fastdec_message(t, data, len, a, &m);
    if (rc == LG_OK)
        return m;
    if (rc != LG_FASTDEC_FALLBACK)
        return NULL;
    ProtobufCAllocator al = lg_arena_pb_allocator(a);
    return protobuf_c_message_unpack(d, &al, len, data);
}

lg_span *lg_otlp_fastdec_span(const uint8_t *data, size_t len, struct lg_arena *a)
{
    return (lg_span *)fast_or_generic(
        LG_FASTDEC_SPAN, &opentelemetry__proto__trace__v1__span__descriptor, data, len, a);
}

lg_resource *lg_otlp_fastdec_resource(const uint8_t *data, size_t len, struct lg_arena *a)
{
    return (lg_resource *)fast_or_generic(LG_FASTDEC_RESOURCE,
                                          &opentelemetry__proto__resource__v1__resource__descriptor,
                                          data, len, a);
}

lg_scope *lg_otlp_fastdec_scope(const uint8_t *data, size_t len, struct lg_arena *a)
{
    return (lg_scope *)fast_or_generic(
        LG_FASTDEC_SCOPE, &opentelemetry__proto__common__v1__instrumentation_scope__descriptor,
        data, len, a);
}
