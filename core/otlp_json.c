/* core/otlp_json.c — OTLP/JSON codec (see otlp_json.h), driven by protobuf-c descriptors.
 *
 * Decoding streams the document through yajl's callback parser straight into protobuf-c
 * message structs allocated from the caller's arena: no intermediate JSON tree, and 64-bit
 * integers are converted from their exact text (yajl_number), never through a double.
 * Encoding walks the message with the descriptors and writes through yajl_gen.
 *
 * Owns: a process-wide, append-only cache of per-descriptor JSON field names (built lazily,
 * read without locks, never freed: descriptors are static, so the cache is bounded by the
 * number of message types in the binary). Everything else lives per call. */
#include "otlp_json.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

/* Deepest container nesting accepted when decoding. It equals the deepest document
 * yajl_gen can write (it refuses YAJL_MAX_DEPTH), so whatever we decode we can encode again.
 * An AnyValue level costs 4 JSON levels (value object, arrayValue/kvlistValue object, values
 * array, element), so a span attribute can nest about 29 AnyValue levels. */
#define JSON_MAX_DEPTH (YAJL_MAX_DEPTH - 1)
/* Frames allocated up front for the decode stack; a typical OTLP document nests ~12 deep. */
#define DECODE_STACK_INITIAL 32
/* First allocation for a repeated field; it doubles from there. */
#define REPEATED_INITIAL_CAP 4
/* How much of an offending value an error message quotes. */
#define ERR_QUOTE_MAX 40
/* Longest number text accepted for a floating-point field (strtod needs a NUL-terminated copy). */
#define NUMBER_TEXT_MAX 512
/* Longest enum value name we look up (longer ones cannot exist in the OTLP protos). */
#define ENUM_NAME_MAX 128
/* Buckets of the descriptor cache (OTLP has ~40 message types). */
#define DESC_CACHE_BUCKETS 64
/* Initial size of the encoder's output buffer. */
#define ENCODE_INITIAL_BUF 1024
/* Significant digits tried, in order, for the shortest text that round-trips. */
#define DOUBLE_MIN_PRECISION 15
#define DOUBLE_MAX_PRECISION 17
#define FLOAT_MIN_PRECISION  6
#define FLOAT_MAX_PRECISION  9

/* ---------------------------------------------------------------------------------------- */
/* Per-descriptor field names                                                               */
/* ---------------------------------------------------------------------------------------- */

struct field_info {
    const char *json_name; /* lowerCamelCase, as protoc's json_name */
    size_t json_len;
    size_t proto_len; /* strlen of the descriptor's snake_case name */
    bool hex;         /* bytes written as hex: OTLP trace and span IDs */
};

struct desc_info {
    const ProtobufCMessageDescriptor *desc;
    struct desc_info *next; /* immutable once published */
    struct field_info fields[];
};

static _Atomic(struct desc_info *) desc_cache[DESC_CACHE_BUCKETS];
static pthread_mutex_t desc_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t desc_bucket(const ProtobufCMessageDescriptor *desc)
{
    uintptr_t p = (uintptr_t)desc;
    /* descriptors are aligned structs: the low bits carry no information */
    return (size_t)((p >> 4) ^ (p >> 12)) % DESC_CACHE_BUCKETS;
}

/* OTLP/JSON writes these bytes fields as hex instead of base64 (spec: "JSON Protobuf
 * Encoding"); the rule is by field name, whichever message holds it. */
static bool is_hex_id_field(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_BYTES &&
           (strcmp(f->name, "trace_id") == 0 || strcmp(f->name, "span_id") == 0 ||
            strcmp(f->name, "parent_span_id") == 0);
}

/* protoc's ToJsonName: drop each '_' and upper-case the letter after it. Returns the length;
 * writes nothing when out is NULL. */
static size_t camel_case(const char *name, char *out)
{
    size_t n = 0;
    bool upper_next = false;
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '_') {
            upper_next = true;
            continue;
        }
        char c = *p;
        if (upper_next && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper_next = false;
        if (out != NULL)
            out[n] = c;
        n++;
    }
    if (out != NULL)
        out[n] = '\0';
    return n;
}

static struct desc_info *desc_info_build(const ProtobufCMessageDescriptor *desc)
{
    size_t strings = 0;
    for (unsigned i = 0; i < desc->n_fields; i++)
        strings += camel_case(desc->fields[i].name, NULL) + 1;
    struct desc_info *info =
        malloc(sizeof *info + desc->n_fields * sizeof info->fields[0] + strings);
    if (info == NULL)
        return NULL;
    info->desc = desc;
    info->next = NULL;
    char *names = (char *)&info->fields[desc->n_fields];
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        struct field_info *fi = &info->fields[i];
        fi->json_name = names;
        fi->json_len = camel_case(f->name, names);
        fi->proto_len = strlen(f->name);
        fi->hex = is_hex_id_field(f);
        names += fi->json_len + 1;
    }
    return info;
}

/* Field names for `desc`, from the cache (lock-free) or built once under the lock.
 * NULL on OOM. */
static const struct desc_info *desc_info_get(const ProtobufCMessageDescriptor *desc)
{
    _Atomic(struct desc_info *) *bucket = &desc_cache[desc_bucket(desc)];
    for (struct desc_info *p = atomic_load_explicit(bucket, memory_order_acquire); p != NULL;
         p = p->next)
        if (p->desc == desc)
            return p;

    pthread_mutex_lock(&desc_cache_lock);
    struct desc_info *head = atomic_load_explicit(bucket, memory_order_relaxed);
    struct desc_info *found = NULL;
    for (struct desc_info *p = head; p != NULL; p = p->next)
        if (p->desc == desc)
            found = p;
    if (found == NULL) {
        found = desc_info_build(desc);
        if (found != NULL) {
            found->next = head;
            atomic_store_explicit(bucket, found, memory_order_release);
        }
    }
    pthread_mutex_unlock(&desc_cache_lock);
    return found;
}

/* ---------------------------------------------------------------------------------------- */
/* Field storage helpers shared by both directions                                          */
/* ---------------------------------------------------------------------------------------- */

static size_t field_value_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static bool field_is_repeated(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_REPEATED;
}

static bool field_is_oneof(const ProtobufCFieldDescriptor *f)
{
    return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
}

/* proto2 `optional` scalars carry a has_ flag; strings and messages use NULL instead. */
static bool field_has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && !field_is_oneof(f) &&
           f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static void *member(const void *msg, unsigned offset)
{
    return (char *)(uintptr_t)msg + offset;
}

/* ---------------------------------------------------------------------------------------- */
/* Number, hex and base64 text                                                              */
/* ---------------------------------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses decimal text in JSON number syntax (sign, digits, optional fraction and exponent)
 * that denotes an integer, as proto3 JSON allows ("1e3", "5.0"). Leading zeros are tolerated
 * because the text may come from a string. False if not integral or beyond 64 bits. */
static bool parse_integer_text(const char *s, size_t len, bool *negative, uint64_t *magnitude)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    size_t int_start = i;
    while (i < len && is_digit(s[i]))
        i++;
    size_t int_end = i;
    if (int_end == int_start)
        return false;
    size_t frac_start = i, frac_end = i;
    if (i < len && s[i] == '.') {
        frac_start = ++i;
        while (i < len && is_digit(s[i]))
            i++;
        frac_end = i;
        if (frac_end == frac_start)
            return false;
    }
    long exponent = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool exp_neg = false;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            exp_neg = s[i++] == '-';
        if (i >= len || !is_digit(s[i]))
            return false;
        /* past this a non-zero value overflows and a zero stays zero: stop counting */
        const long exponent_cap = 100000;
        for (; i < len && is_digit(s[i]); i++)
            if (exponent < exponent_cap)
                exponent = exponent * 10 + (s[i] - '0');
        if (exp_neg)
            exponent = -exponent;
    }
    if (i != len)
        return false;

    /* value = digits(int part ++ frac part) * 10^shift */
    size_t n_int = int_end - int_start, n_frac = frac_end - frac_start;
    long shift = exponent - (long)n_frac;
    long n_digits = (long)(n_int + n_frac);
    long integral_digits = shift < 0 ? n_digits + shift : n_digits;
    uint64_t v = 0;
    for (long k = 0; k < n_digits; k++) {
        size_t pos = (size_t)k < n_int ? int_start + (size_t)k : frac_start + (size_t)k - n_int;
        unsigned d = (unsigned)(s[pos] - '0');
        if (k < integral_digits) {
            if (v > (UINT64_MAX - d) / 10)
                return false;
            v = v * 10 + d;
        } else if (d != 0) {
            return false; /* a non-zero fractional digit */
        }
    }
    for (long k = 0; k < shift && v != 0; k++) {
        if (v > UINT64_MAX / 10)
            return false;
        v *= 10;
    }
    *negative = neg;
    *magnitude = v;
    return true;
}

/* True if s[0..len) is a JSON number (RFC 8259 grammar). */
static bool is_json_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || !is_digit(s[i]))
        return false;
    if (s[i] == '0')
        i++;
    else
        while (i < len && is_digit(s[i]))
            i++;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return false;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return false;
        while (i < len && is_digit(s[i]))
            i++;
    }
    return i == len;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Both alphabets: standard (+/) and URL-safe (-_). */
static int base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static const char hex_digits[] = "0123456789abcdef";
static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---------------------------------------------------------------------------------------- */
/* Decoder                                                                                  */
/* ---------------------------------------------------------------------------------------- */

enum frame_kind { FRAME_MESSAGE, FRAME_ARRAY };

struct frame {
    enum frame_kind kind;
    ProtobufCMessage *msg;                 /* message being filled, or the array's owner */
    const struct desc_info *info;          /* msg's field names */
    const ProtobufCFieldDescriptor *field; /* MESSAGE: field named by the last key, NULL
                                              between members; ARRAY: the repeated field */
    const char *name;                      /* JSON name of `field`, for error paths */
    size_t index;                          /* ARRAY: index of the element being parsed */
    size_t cap;                            /* ARRAY: elements allocated */
};

struct decoder {
    struct lg_arena *arena;
    const ProtobufCMessageDescriptor *root_desc;
    ProtobufCMessage *root;
    struct frame *stack;
    size_t depth; /* frames in use */
    size_t stack_cap;
    unsigned skip_depth; /* > 0 while inside a container that belongs to an unknown field */
    bool skip_next;      /* the last key was unknown: ignore its value */
    int rc;
    struct lg_err *err;
};

enum scalar_kind { SCALAR_BOOL, SCALAR_NUMBER, SCALAR_STRING };

static struct frame *top(struct decoder *d)
{
    return d->depth ? &d->stack[d->depth - 1] : NULL;
}

/* Writes the JSON path of the value being parsed, e.g. "resourceSpans[0].scopeSpans[0]". */
static void format_path(const struct decoder *d, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < d->depth && used < size; i++) {
        const struct frame *fr = &d->stack[i];
        int n = 0;
        if (fr->kind == FRAME_ARRAY)
            n = snprintf(buf + used, size - used, "[%zu]", fr->index);
        else if (fr->field != NULL)
            n = snprintf(buf + used, size - used, "%s%s", used ? "." : "", fr->name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/* Records a bad-input error at the current path and returns 0 so yajl stops. */
static int fail(struct decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct decoder *d, const char *fmt, ...)
{
    char path[LG_ERR_MAX / 2];
    char what[LG_ERR_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    format_path(d, path, sizeof path);
    d->rc = lg_err_set(d->err, LG_EINVAL, "%s: %s", path[0] ? path : "top level", what);
    return 0;
}

static int fail_oom(struct decoder *d)
{
    d->rc = lg_err_set(d->err, LG_ENOMEM, "out of memory decoding OTLP/JSON");
    return 0;
}

static const char *expected_kind(const ProtobufCFieldDescriptor *f)
{
    if (field_is_repeated(f))
        return "an array";
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE: return "an object";
    case PROTOBUF_C_TYPE_STRING: return "a string";
    case PROTOBUF_C_TYPE_BYTES: return "a hex or base64 string";
    case PROTOBUF_C_TYPE_BOOL: return "true or false";
    case PROTOBUF_C_TYPE_ENUM: return "an enum name or integer";
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: return "a number";
    default: return "an integer";
    }
}

/* Element kind for a value found inside a repeated field's array. */
static const char *expected_element_kind(const ProtobufCFieldDescriptor *f)
{
    ProtobufCFieldDescriptor scalar = *f;
    scalar.label = PROTOBUF_C_LABEL_NONE;
    return expected_kind(&scalar);
}

static int push(struct decoder *d, enum frame_kind kind, ProtobufCMessage *msg,
                const ProtobufCFieldDescriptor *field, const char *name)
{
    if (d->depth + d->skip_depth >= JSON_MAX_DEPTH)
        return fail(d, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
    if (d->depth == d->stack_cap) {
        size_t cap = d->stack_cap * 2;
        struct frame *s = realloc(d->stack, cap * sizeof *s);
        if (s == NULL)
            return fail_oom(d);
        d->stack = s;
        d->stack_cap = cap;
    }
    struct frame *fr = &d->stack[d->depth++];
    *fr = (struct frame){.kind = kind, .msg = msg, .field = field, .name = name};
    if (kind == FRAME_MESSAGE) {
        fr->info = desc_info_get(msg->descriptor);
        if (fr->info == NULL)
            return fail_oom(d);
        fr->field = NULL;
    }
    return 1;
}

static ProtobufCMessage *new_message(struct decoder *d, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = lg_arena_alloc(d->arena, desc->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(desc, m);
    return m;
}

/* Appends a zeroed element to the repeated field of array frame `fr`; NULL on OOM. */
static void *array_append(struct decoder *d, struct frame *fr)
{
    const ProtobufCFieldDescriptor *f = fr->field;
    size_t *count = member(fr->msg, f->quantifier_offset);
    void **items = member(fr->msg, f->offset);
    size_t size = field_value_size(f->type);
    if (*count == fr->cap) {
        size_t cap = fr->cap ? fr->cap * 2 : REPEATED_INITIAL_CAP;
        if (cap > SIZE_MAX / size)
            return NULL;
        void *grown = lg_arena_alloc(d->arena, cap * size);
        if (grown == NULL)
            return NULL;
        if (*count)
            memcpy(grown, *items, *count * size);
        *items = grown;
        fr->cap = cap;
    }
    void *slot = (char *)*items + *count * size;
    memset(slot, 0, size);
    (*count)++;
    return slot;
}

/* Marks a singular field present after its value was stored. */
static void mark_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (field_is_oneof(f))
        *(uint32_t *)member(msg, f->quantifier_offset) = f->id;
    else if (field_has_flag(f))
        *(protobuf_c_boolean *)member(msg, f->quantifier_offset) = 1;
}

static int store_integer(struct decoder *d, const ProtobufCFieldDescriptor *f, void *dst,
                         const char *text, size_t len)
{
    bool neg;
    uint64_t mag;
    const char *what;
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM: what = "an enum value name or 32-bit integer"; break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: what = "a 32-bit signed integer"; break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: what = "a 32-bit unsigned integer"; break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: what = "a 64-bit unsigned integer"; break;
    default: what = "a 64-bit signed integer"; break;
    }
    if (!parse_integer_text(text, len, &neg, &mag))
        goto bad;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: {
        if (mag > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX))
            goto bad;
        int32_t v = neg ? (int32_t)(-(int64_t)mag) : (int32_t)mag;
        memcpy(dst, &v, sizeof v);
        return 1;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        if ((neg && mag != 0) || mag > UINT32_MAX)
            goto bad;
        uint32_t v = (uint32_t)mag;
        memcpy(dst, &v, sizeof v);
        return 1;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (neg && mag != 0)
            goto bad;
        memcpy(dst, &mag, sizeof mag);
        return 1;
    default: {
        if (mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
            goto bad;
        /* -(mag - 1) - 1 reaches INT64_MIN without overflowing */
        int64_t v = neg ? (mag ? -(int64_t)(mag - 1) - 1 : 0) : (int64_t)mag;
        memcpy(dst, &v, sizeof v);
        return 1;
    }
    }
bad:
    return fail(d, "expected %s, got \"%.*s\"%s", what,
                (int)(len < ERR_QUOTE_MAX ? len : ERR_QUOTE_MAX), text,
                len > ERR_QUOTE_MAX ? "..." : "");
}

static int store_floating(struct decoder *d, const ProtobufCFieldDescriptor *f, void *dst,
                          enum scalar_kind kind, const char *text, size_t len)
{
    double v;
    if (kind == SCALAR_STRING && len == 3 && memcmp(text, "NaN", 3) == 0) {
        v = NAN;
    } else if (kind == SCALAR_STRING && len == 8 && memcmp(text, "Infinity", 8) == 0) {
        v = INFINITY;
    } else if (kind == SCALAR_STRING && len == 9 && memcmp(text, "-Infinity", 9) == 0) {
        v = -INFINITY;
    } else {
        /* yajl already checked a number token; a string must hold one too */
        if (!is_json_number(text, len) || len >= NUMBER_TEXT_MAX)
            return fail(d,
                        "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\", got \"%.*s\"%s",
                        (int)(len < ERR_QUOTE_MAX ? len : ERR_QUOTE_MAX), text,
                        len > ERR_QUOTE_MAX ? "..." : "");
        char buf[NUMBER_TEXT_MAX];
        memcpy(buf, text, len);
        buf[len] = '\0';
        v = strtod(buf, NULL);
        if (isinf(v))
            return fail(d, "number %s is out of range for a double", buf);
    }
    if (f->type == PROTOBUF_C_TYPE_FLOAT) {
        float fv = (float)v;
        if (isinf(fv) && !isinf(v))
            return fail(d, "number is out of range for a float");
        memcpy(dst, &fv, sizeof fv);
    } else {
        memcpy(dst, &v, sizeof v);
    }
    return 1;
}

static int store_hex(struct decoder *d, ProtobufCBinaryData *dst, const char *text, size_t len)
{
    if (len % 2 != 0)
        return fail(d, "expected an even number of hex digits, got %zu", len);
    dst->len = len / 2;
    dst->data = NULL;
    if (len == 0)
        return 1;
    uint8_t *out = lg_arena_alloc(d->arena, len / 2);
    if (out == NULL)
        return fail_oom(d);
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_value((unsigned char)text[i]);
        int lo = hex_value((unsigned char)text[i + 1]);
        if (hi < 0 || lo < 0)
            return fail(d, "expected hex digits, got '%c' at offset %zu",
                        hi < 0 ? text[i] : text[i + 1], hi < 0 ? i : i + 1);
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    dst->data = out;
    return 1;
}

static int store_base64(struct decoder *d, ProtobufCBinaryData *dst, const char *text, size_t len)
{
    size_t data_len = len;
    if (data_len > 0 && text[data_len - 1] == '=')
        data_len--;
    if (data_len > 0 && text[data_len - 1] == '=')
        data_len--;
    if ((data_len != len && len % 4 != 0) || data_len % 4 == 1)
        return fail(d, "invalid base64: bad length %zu", len);
    size_t out_len = data_len / 4 * 3 + (data_len % 4 ? data_len % 4 - 1 : 0);
    dst->len = out_len;
    dst->data = NULL;
    if (out_len == 0)
        return 1;
    uint8_t *out = lg_arena_alloc(d->arena, out_len);
    if (out == NULL)
        return fail_oom(d);
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < data_len; i++) {
        int v = base64_value((unsigned char)text[i]);
        if (v < 0)
            return fail(d, "invalid base64: unexpected '%c' at offset %zu", text[i], i);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    dst->data = out;
    return 1;
}

static int store_enum_name(struct decoder *d, const ProtobufCFieldDescriptor *f, void *dst,
                           const char *text, size_t len)
{
    const ProtobufCEnumDescriptor *ed = f->descriptor;
    if (len < ENUM_NAME_MAX) {
        char name[ENUM_NAME_MAX];
        memcpy(name, text, len);
        name[len] = '\0';
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
        if (ev != NULL) {
            int32_t v = ev->value;
            memcpy(dst, &v, sizeof v);
            return 1;
        }
    }
    return fail(d, "unknown %s value \"%.*s\"%s", ed->short_name,
                (int)(len < ERR_QUOTE_MAX ? len : ERR_QUOTE_MAX), text,
                len > ERR_QUOTE_MAX ? "..." : "");
}

/* Converts one JSON scalar into the C representation of field `f` at `dst`. */
static int store_scalar(struct decoder *d, const ProtobufCFieldDescriptor *f, bool hex, void *dst,
                        enum scalar_kind kind, const char *text, size_t len)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (kind != SCALAR_STRING)
            break;
        if (memchr(text, '\0', len) != NULL)
            return fail(d, "string contains a NUL character (\\u0000), which cannot be stored");
        char *s = lg_arena_strndup(d->arena, text, len);
        if (s == NULL)
            return fail_oom(d);
        *(char **)dst = s;
        return 1;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (kind != SCALAR_STRING)
            break;
        return hex ? store_hex(d, dst, text, len) : store_base64(d, dst, text, len);
    case PROTOBUF_C_TYPE_BOOL:
        if (kind != SCALAR_BOOL)
            break;
        *(protobuf_c_boolean *)dst = text != NULL;
        return 1;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if (kind == SCALAR_BOOL)
            break;
        return store_floating(d, f, dst, kind, text, len);
    case PROTOBUF_C_TYPE_ENUM:
        if (kind == SCALAR_BOOL)
            break;
        if (kind == SCALAR_STRING) {
            bool neg;
            uint64_t mag;
            if (!parse_integer_text(text, len, &neg, &mag))
                return store_enum_name(d, f, dst, text, len);
        }
        return store_integer(d, f, dst, text, len);
    case PROTOBUF_C_TYPE_MESSAGE: break;
    default: /* the integer types */
        if (kind == SCALAR_BOOL)
            break;
        return store_integer(d, f, dst, text, len);
    }
    return fail(d, "expected %s, got %s", expected_element_kind(f),
                kind == SCALAR_BOOL     ? "a boolean"
                : kind == SCALAR_NUMBER ? "a number"
                                        : "a string");
}

/* True when the value about to start belongs to an unknown field (or lies inside one) and
 * must be ignored; a container value then opens (or deepens) the skipped region. */
static bool value_is_skipped(struct decoder *d, bool opens_container)
{
    if (d->skip_depth > 0) {
        if (opens_container)
            d->skip_depth++;
        return true;
    }
    if (d->skip_next) {
        d->skip_next = false;
        if (opens_container)
            d->skip_depth = 1;
        return true;
    }
    return false;
}

static const char *value_kind_name(enum scalar_kind kind)
{
    return kind == SCALAR_BOOL ? "a boolean" : kind == SCALAR_NUMBER ? "a number" : "a string";
}

static int on_scalar(struct decoder *d, enum scalar_kind kind, const char *text, size_t len)
{
    if (value_is_skipped(d, false))
        return 1;
    struct frame *fr = top(d);
    if (fr == NULL)
        return fail(d, "expected a JSON object, got %s", value_kind_name(kind));
    const ProtobufCFieldDescriptor *f = fr->field;
    if (fr->kind == FRAME_ARRAY) {
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            return fail(d, "expected an object, got %s", value_kind_name(kind));
        const struct frame *owner = &d->stack[d->depth - 2];
        bool hex = owner->info->fields[f - owner->msg->descriptor->fields].hex;
        void *slot = array_append(d, fr);
        if (slot == NULL)
            return fail_oom(d);
        if (!store_scalar(d, f, hex, slot, kind, text, len))
            return 0;
        fr->index++;
        return 1;
    }
    if (field_is_repeated(f) || f->type == PROTOBUF_C_TYPE_MESSAGE)
        return fail(d, "expected %s, got %s", expected_kind(f), value_kind_name(kind));
    bool hex = fr->info->fields[f - fr->msg->descriptor->fields].hex;
    if (!store_scalar(d, f, hex, member(fr->msg, f->offset), kind, text, len))
        return 0;
    mark_present(fr->msg, f);
    fr->field = NULL;
    return 1;
}

static int cb_null(void *ctx)
{
    struct decoder *d = ctx;
    if (value_is_skipped(d, false))
        return 1;
    struct frame *fr = top(d);
    if (fr == NULL)
        return fail(d, "expected a JSON object, got null");
    if (fr->kind == FRAME_ARRAY)
        return fail(d, "null is not allowed as an array element");
    fr->field = NULL; /* null means the field is absent */
    return 1;
}

static int cb_boolean(void *ctx, int value)
{
    /* text is only tested for NULL by store_scalar: non-NULL means true */
    return on_scalar(ctx, SCALAR_BOOL, value ? "true" : NULL, 0);
}

static int cb_number(void *ctx, const char *text, size_t len)
{
    return on_scalar(ctx, SCALAR_NUMBER, text, len);
}

static int cb_string(void *ctx, const unsigned char *text, size_t len)
{
    return on_scalar(ctx, SCALAR_STRING, (const char *)text, len);
}

static int cb_start_map(void *ctx)
{
    struct decoder *d = ctx;
    if (value_is_skipped(d, true)) {
        if (d->depth + d->skip_depth > JSON_MAX_DEPTH)
            return fail(d, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
        return 1;
    }
    struct frame *fr = top(d);
    if (fr == NULL) {
        d->root = new_message(d, d->root_desc);
        if (d->root == NULL)
            return fail_oom(d);
        return push(d, FRAME_MESSAGE, d->root, NULL, NULL);
    }
    const ProtobufCFieldDescriptor *f = fr->field;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE)
        return fail(d, "expected %s, got an object",
                    fr->kind == FRAME_ARRAY ? expected_element_kind(f) : expected_kind(f));
    if (fr->kind == FRAME_MESSAGE && field_is_repeated(f))
        return fail(d, "expected an array, got an object");
    ProtobufCMessage *sub = new_message(d, f->descriptor);
    if (sub == NULL)
        return fail_oom(d);
    if (fr->kind == FRAME_ARRAY) {
        ProtobufCMessage **slot = array_append(d, fr);
        if (slot == NULL)
            return fail_oom(d);
        *slot = sub;
    } else {
        *(ProtobufCMessage **)member(fr->msg, f->offset) = sub;
        mark_present(fr->msg, f);
    }
    return push(d, FRAME_MESSAGE, sub, NULL, NULL);
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    struct decoder *d = ctx;
    if (d->skip_depth > 0)
        return 1;
    struct frame *fr = top(d); /* yajl only reports keys inside an object */
    const ProtobufCMessageDescriptor *desc = fr->msg->descriptor;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const struct field_info *fi = &fr->info->fields[i];
        if ((len == fi->json_len && memcmp(key, fi->json_name, len) == 0) ||
            (len == fi->proto_len && memcmp(key, desc->fields[i].name, len) == 0)) {
            fr->field = &desc->fields[i];
            fr->name = fi->json_name;
            return 1;
        }
    }
    fr->field = NULL;
    d->skip_next = true; /* unknown fields are ignored, whatever their value */
    return 1;
}

static int cb_end_map(void *ctx)
{
    struct decoder *d = ctx;
    if (d->skip_depth > 0) {
        d->skip_depth--;
        return 1;
    }
    d->depth--;
    struct frame *fr = top(d);
    if (fr == NULL)
        return 1; /* the root object is complete */
    if (fr->kind == FRAME_ARRAY)
        fr->index++;
    else
        fr->field = NULL;
    return 1;
}

static int cb_start_array(void *ctx)
{
    struct decoder *d = ctx;
    if (value_is_skipped(d, true)) {
        if (d->depth + d->skip_depth > JSON_MAX_DEPTH)
            return fail(d, "JSON nested deeper than %d levels", JSON_MAX_DEPTH);
        return 1;
    }
    struct frame *fr = top(d);
    if (fr == NULL)
        return fail(d, "expected a JSON object, got an array");
    const ProtobufCFieldDescriptor *f = fr->field;
    if (fr->kind == FRAME_ARRAY)
        return fail(d, "expected %s, got an array", expected_element_kind(f));
    if (!field_is_repeated(f))
        return fail(d, "expected %s, got an array", expected_kind(f));
    /* a repeated field given twice appends, as protobuf merging does */
    size_t count = *(size_t *)member(fr->msg, f->quantifier_offset);
    if (!push(d, FRAME_ARRAY, fr->msg, f, fr->name))
        return 0;
    top(d)->cap = count;
    return 1;
}

static int cb_end_array(void *ctx)
{
    struct decoder *d = ctx;
    if (d->skip_depth > 0) {
        d->skip_depth--;
        return 1;
    }
    d->depth--;
    top(d)->field = NULL; /* an array frame always sits on its message's frame */
    return 1;
}

static const yajl_callbacks decode_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* Turns a yajl syntax error into "invalid JSON at byte N: ...". */
static int syntax_error(struct decoder *d, yajl_handle h, size_t offset)
{
    unsigned char *text = yajl_get_error(h, 0, NULL, 0);
    const char *msg = text ? (const char *)text : "syntax error";
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ' || msg[n - 1] == '.'))
        n--;
    char path[LG_ERR_MAX / 2];
    format_path(d, path, sizeof path);
    d->rc = lg_err_set(d->err, LG_EINVAL, "invalid JSON at byte %zu: %.*s%s%s%s", offset, (int)n,
                       msg, path[0] ? " (in " : "", path, path[0] ? ")" : "");
    if (text != NULL)
        yajl_free_error(h, text);
    return d->rc;
}

int lg_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        struct lg_arena *arena, ProtobufCMessage **out, struct lg_err *err)
{
    *out = NULL;
    struct decoder d = {
        .arena = arena, .root_desc = desc, .err = err, .stack_cap = DECODE_STACK_INITIAL};
    d.stack = malloc(d.stack_cap * sizeof *d.stack);
    if (d.stack == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory decoding OTLP/JSON");
    yajl_handle h = yajl_alloc(&decode_callbacks, NULL, &d);
    if (h == NULL) {
        free(d.stack);
        return lg_err_set(err, LG_ENOMEM, "out of memory decoding OTLP/JSON");
    }

    yajl_status st = yajl_parse(h, (const unsigned char *)json, len);
    /* yajl's error position: the start or the end of the offending token, depending on
     * the error; precise enough to find the spot */
    size_t offset = yajl_get_bytes_consumed(h);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
        offset = len;
    }
    int rc = LG_OK;
    if (st == yajl_status_client_canceled)
        rc = d.rc;
    else if (st != yajl_status_ok)
        rc = syntax_error(&d, h, offset);
    else if (d.root == NULL) /* cannot happen: yajl reports an empty document as an error */
        rc = lg_err_set(err, LG_EINVAL, "top level: expected a JSON object");

    yajl_free(h);
    free(d.stack);
    if (rc == LG_OK)
        *out = d.root;
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Encoder                                                                                  */
/* ---------------------------------------------------------------------------------------- */

struct encoder {
    yajl_gen gen;
    char *out; /* the result, grown by the print callback */
    size_t len, cap;
    bool oom;
    unsigned char *scratch; /* hex/base64 text and repaired UTF-8 */
    size_t scratch_cap;
};

static void on_print(void *ctx, const char *text, size_t len)
{
    struct encoder *e = ctx;
    if (e->oom)
        return;
    if (e->len + len + 1 > e->cap) { /* +1 keeps room for the final NUL */
        size_t cap = e->cap ? e->cap : ENCODE_INITIAL_BUF;
        while (cap < e->len + len + 1)
            cap *= 2;
        char *p = realloc(e->out, cap);
        if (p == NULL) {
            e->oom = true;
            return;
        }
        e->out = p;
        e->cap = cap;
    }
    memcpy(e->out + e->len, text, len);
    e->len += len;
}

static unsigned char *scratch(struct encoder *e, size_t size)
{
    if (size > e->scratch_cap) {
        size_t cap = e->scratch_cap ? e->scratch_cap : ENCODE_INITIAL_BUF;
        while (cap < size)
            cap *= 2;
        unsigned char *p = realloc(e->scratch, cap);
        if (p == NULL)
            return NULL;
        e->scratch = p;
        e->scratch_cap = cap;
    }
    return e->scratch;
}

/* Length of the valid UTF-8 sequence at s (at most `avail` bytes), 0 if invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static int gen_string(struct encoder *e, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, step;
    while (i < len && (step = utf8_sequence(u + i, len - i)) != 0)
        i += step;
    if (i < len) {
        /* protobuf input is not checked for UTF-8; JSON must be valid, so each bad byte
         * becomes U+FFFD (3 bytes) */
        static const unsigned char replacement[] = {0xEF, 0xBF, 0xBD};
        if (len > SIZE_MAX / sizeof replacement)
            return -1;
        unsigned char *buf = scratch(e, len * sizeof replacement);
        if (buf == NULL)
            return -1;
        size_t o = 0;
        memcpy(buf, u, i);
        o = i;
        while (i < len) {
            step = utf8_sequence(u + i, len - i);
            if (step == 0) {
                memcpy(buf + o, replacement, sizeof replacement);
                o += sizeof replacement;
                i++;
            } else {
                memcpy(buf + o, u + i, step);
                o += step;
                i += step;
            }
        }
        u = buf;
        len = o;
    }
    return yajl_gen_string(e->gen, u, len) == yajl_gen_status_ok ? 0 : -1;
}

static int gen_bytes(struct encoder *e, const ProtobufCBinaryData *b, bool hex)
{
    if (b->len == 0)
        return yajl_gen_string(e->gen, (const unsigned char *)"", 0) == yajl_gen_status_ok ? 0 : -1;
    if (b->len > SIZE_MAX / 2)
        return -1;
    size_t out_len = hex ? b->len * 2 : (b->len + 2) / 3 * 4;
    unsigned char *buf = scratch(e, out_len);
    if (buf == NULL)
        return -1;
    size_t o = 0;
    if (hex) {
        for (size_t i = 0; i < b->len; i++) {
            buf[o++] = (unsigned char)hex_digits[b->data[i] >> 4];
            buf[o++] = (unsigned char)hex_digits[b->data[i] & 0x0F];
        }
    } else {
        size_t i = 0;
        for (; i + 3 <= b->len; i += 3) {
            uint32_t v =
                (uint32_t)b->data[i] << 16 | (uint32_t)b->data[i + 1] << 8 | b->data[i + 2];
            buf[o++] = (unsigned char)base64_alphabet[v >> 18 & 0x3F];
            buf[o++] = (unsigned char)base64_alphabet[v >> 12 & 0x3F];
            buf[o++] = (unsigned char)base64_alphabet[v >> 6 & 0x3F];
            buf[o++] = (unsigned char)base64_alphabet[v & 0x3F];
        }
        if (i < b->len) {
            uint32_t v = (uint32_t)b->data[i] << 16;
            if (i + 1 < b->len)
                v |= (uint32_t)b->data[i + 1] << 8;
            buf[o++] = (unsigned char)base64_alphabet[v >> 18 & 0x3F];
            buf[o++] = (unsigned char)base64_alphabet[v >> 12 & 0x3F];
            buf[o++] = i + 1 < b->len ? (unsigned char)base64_alphabet[v >> 6 & 0x3F] : '=';
            buf[o++] = '=';
        }
    }
    return yajl_gen_string(e->gen, buf, o) == yajl_gen_status_ok ? 0 : -1;
}

/* Shortest of the tried precisions that reads back as the same value. */
static int gen_floating(struct encoder *e, double v, bool single)
{
    const char *special = isnan(v) ? "NaN" : isinf(v) ? (v > 0 ? "Infinity" : "-Infinity") : NULL;
    if (special != NULL)
        return yajl_gen_string(e->gen, (const unsigned char *)special, strlen(special)) ==
                       yajl_gen_status_ok
                   ? 0
                   : -1;
    char buf[64];
    int n = 0;
    int lo = single ? FLOAT_MIN_PRECISION : DOUBLE_MIN_PRECISION;
    int hi = single ? FLOAT_MAX_PRECISION : DOUBLE_MAX_PRECISION;
    for (int prec = lo; prec <= hi; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        bool same = single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v;
        if (same)
            break;
    }
    return yajl_gen_number(e->gen, buf, (size_t)n) == yajl_gen_status_ok ? 0 : -1;
}

static int encode_message(struct encoder *e, const ProtobufCMessage *msg);

/* Writes one value of field `f` stored at `p` (an element, for repeated fields). */
static int encode_value(struct encoder *e, const ProtobufCFieldDescriptor *f, bool hex,
                        const void *p)
{
    char buf[32];
    int n;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: /* OTLP/JSON: enums MUST be integers */
        return yajl_gen_integer(e->gen, *(const int32_t *)p) == yajl_gen_status_ok ? 0 : -1;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return yajl_gen_integer(e->gen, *(const uint32_t *)p) == yajl_gen_status_ok ? 0 : -1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: /* proto3 JSON: 64-bit integers are decimal strings */
        n = snprintf(buf, sizeof buf, "%" PRId64, *(const int64_t *)p);
        return yajl_gen_string(e->gen, (const unsigned char *)buf, (size_t)n) == yajl_gen_status_ok
                   ? 0
                   : -1;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        n = snprintf(buf, sizeof buf, "%" PRIu64, *(const uint64_t *)p);
        return yajl_gen_string(e->gen, (const unsigned char *)buf, (size_t)n) == yajl_gen_status_ok
                   ? 0
                   : -1;
    case PROTOBUF_C_TYPE_BOOL:
        return yajl_gen_bool(e->gen, *(const protobuf_c_boolean *)p != 0) == yajl_gen_status_ok
                   ? 0
                   : -1;
    case PROTOBUF_C_TYPE_FLOAT: return gen_floating(e, *(const float *)p, true);
    case PROTOBUF_C_TYPE_DOUBLE: return gen_floating(e, *(const double *)p, false);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return gen_string(e, s ? s : "", s ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES: return gen_bytes(e, p, hex);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        if (m == NULL) /* only reachable for a set oneof or a repeated element */
            return yajl_gen_map_open(e->gen) == yajl_gen_status_ok &&
                           yajl_gen_map_close(e->gen) == yajl_gen_status_ok
                       ? 0
                       : -1;
        return encode_message(e, m);
    }
    }
    return -1;
}

/* proto3 JSON omits fields that hold their type's default. */
static bool holds_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p == 0;
    default: {
        /* all bits zero: 0 for integers and enums, +0.0 (not -0.0) for floats */
        static const unsigned char zero[8];
        return memcmp(p, zero, field_value_size(f->type)) == 0;
    }
    }
}

static bool field_is_written(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
    if (field_is_repeated(f))
        return *(const size_t *)member(msg, f->quantifier_offset) > 0;
    if (field_is_oneof(f)) /* a set member is written even when it holds a default value */
        return *(const uint32_t *)member(msg, f->quantifier_offset) == f->id;
    if (field_has_flag(f))
        return *(const protobuf_c_boolean *)member(msg, f->quantifier_offset) != 0;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) /* proto2 string or message: NULL = absent */
        return *(void *const *)member(msg, f->offset) != NULL;
    return !holds_default(f, member(msg, f->offset));
}

static int encode_message(struct encoder *e, const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const struct desc_info *info = desc_info_get(desc);
    if (info == NULL)
        return -1;
    /* yajl_gen refuses to nest deeper than YAJL_MAX_DEPTH, which bounds this recursion */
    if (yajl_gen_map_open(e->gen) != yajl_gen_status_ok)
        return -1;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        const struct field_info *fi = &info->fields[i];
        if (!field_is_written(f, msg))
            continue;
        if (yajl_gen_string(e->gen, (const unsigned char *)fi->json_name, fi->json_len) !=
            yajl_gen_status_ok)
            return -1;
        if (!field_is_repeated(f)) {
            if (encode_value(e, f, fi->hex, member(msg, f->offset)) != 0)
                return -1;
            continue;
        }
        size_t count = *(const size_t *)member(msg, f->quantifier_offset);
        const char *items = *(char *const *)member(msg, f->offset);
        size_t size = field_value_size(f->type);
        if (yajl_gen_array_open(e->gen) != yajl_gen_status_ok)
            return -1;
        for (size_t j = 0; j < count; j++)
            if (encode_value(e, f, fi->hex, items + j * size) != 0)
                return -1;
        if (yajl_gen_array_close(e->gen) != yajl_gen_status_ok)
            return -1;
    }
    return yajl_gen_map_close(e->gen) == yajl_gen_status_ok ? 0 : -1;
}

char *lg_otlp_json_encode(const ProtobufCMessage *msg, size_t *len)
{
    struct encoder e = {0};
    e.gen = yajl_gen_alloc(NULL);
    if (e.gen == NULL)
        return NULL;
    yajl_gen_config(e.gen, yajl_gen_print_callback, on_print, &e);
    int rc = encode_message(&e, msg);
    yajl_gen_free(e.gen);
    free(e.scratch);
    if (rc == 0 && !e.oom && e.out == NULL) /* cannot happen: "{}" is always written */
        rc = -1;
    if (rc != 0 || e.oom) {
        free(e.out);
        return NULL;
    }
    e.out[e.len] = '\0';
    if (len != NULL)
        *len = e.len;
    return e.out;
}
