/* processors/ottl.c — compiles OTTL conditions (processors/ottl.h) into a node tree once, and
 * evaluates the tree on spans, span events, log records, metrics and data points.
 *
 * The language and comparison rules follow opentelemetry-collector-contrib/pkg/ottl
 * (LANGUAGE.md) and the path names of its ottlspan, ottlspanevent, ottllog, ottlmetric and
 * ottldatapoint contexts; docs/processors/filter.md lists the subset and the differences.
 * Compilation resolves every path, enum and function to a number, so evaluation is a walk
 * over the tree with values that point into the telemetry (no allocation; text made for
 * trace_id.string and friends lives in a stack buffer per operand).
 *
 * Owns: each compiled condition's arena (nodes, literal strings) and its PCRE2 codes. */
#include "ottl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "../core/arena.h"
#include "../core/common.h"

/* Nesting the parser accepts: a condition is a config line, not a program, and the bound
 * keeps the recursive descent (and the recursive evaluation) off the end of the stack. */
#define MAX_DEPTH 64
/* Keys in one path (attributes["a"]["b"][0] has three). */
#define MAX_KEYS 8
/* Text made for one operand: 32 hex digits of a trace ID, a formatted number. */
#define OPERAND_BUF 64

const char *lg_ottl_ctx_name(enum lg_ottl_ctx ctx)
{
    static const char *const names[] = {"span", "spanevent", "log", "metric", "datapoint"};
    return (unsigned)ctx < LG_ARRAY_LEN(names) ? names[ctx] : "?";
}

/* ------------------------------------------------------------------ values ---- */

enum vt { T_NIL, T_BOOL, T_INT, T_DOUBLE, T_STR, T_BYTES, T_MAP, T_LIST };

static const char *const vt_names[] = {"nil", "bool", "int", "double", "string", "bytes", "map", "list"};

struct val {
    enum vt t;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *p;
            size_t n;
        } s; /* T_STR, T_BYTES */
        struct {
            lg_kv *const *kv;
            size_t n;
        } m;
        struct {
            lg_any_value *const *v;
            size_t n;
        } l;
    };
};

#define AV(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

static struct val from_any(const lg_any_value *v)
{
    struct val r = {.t = T_NIL};
    if (v == NULL)
        return r;
    switch (v->value_case) {
    case AV(STRING_VALUE):
        r.t = T_STR;
        r.s.p = v->string_value ? v->string_value : "";
        r.s.n = strlen(r.s.p);
        break;
    case AV(BOOL_VALUE):
        r.t = T_BOOL;
        r.b = v->bool_value;
        break;
    case AV(INT_VALUE):
        r.t = T_INT;
        r.i = v->int_value;
        break;
    case AV(DOUBLE_VALUE):
        r.t = T_DOUBLE;
        r.d = v->double_value;
        break;
    case AV(BYTES_VALUE):
        r.t = T_BYTES;
        r.s.p = (const char *)v->bytes_value.data;
        r.s.n = v->bytes_value.len;
        break;
    case AV(ARRAY_VALUE):
        r.t = T_LIST;
        r.l.v = v->array_value ? v->array_value->values : NULL;
        r.l.n = v->array_value ? v->array_value->n_values : 0;
        break;
    case AV(KVLIST_VALUE):
        r.t = T_MAP;
        r.m.kv = v->kvlist_value ? v->kvlist_value->values : NULL;
        r.m.n = v->kvlist_value ? v->kvlist_value->n_values : 0;
        break;
    default: /* an empty AnyValue is nil, as pcommon's ValueTypeEmpty */
        break;
    }
    return r;
}

static const lg_any_value *map_get(lg_kv *const *kv, size_t n, const char *key, size_t klen)
{
    /* key has no NUL byte (the parser refuses one), so equal first klen bytes mean the
     * attribute key has at least klen bytes and k[klen] can be read */
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i] ? kv[i]->key : NULL;
        if (k && k[0] == key[0] && strncmp(k, key, klen) == 0 && k[klen] == '\0')
            return kv[i]->value;
    }
    return NULL;
}

static bool any_equal(const lg_any_value *a, const lg_any_value *b, int depth);

static bool vals_deep_equal(const struct val *x, const struct val *y, int depth)
{
    if (x->t != y->t || depth > MAX_DEPTH)
        return false;
    switch (x->t) {
    case T_NIL:
        return true;
    case T_BOOL:
        return x->b == y->b;
    case T_INT:
        return x->i == y->i;
    case T_DOUBLE:
        return x->d == y->d;
    case T_STR:
    case T_BYTES:
        return x->s.n == y->s.n && (x->s.n == 0 || memcmp(x->s.p, y->s.p, x->s.n) == 0);
    case T_LIST:
        if (x->l.n != y->l.n)
            return false;
        for (size_t i = 0; i < x->l.n; i++)
            if (!any_equal(x->l.v[i], y->l.v[i], depth + 1))
                return false;
        return true;
    case T_MAP:
        /* pcommon.Map equality: the same keys with equal values, in any order */
        if (x->m.n != y->m.n)
            return false;
        for (size_t i = 0; i < x->m.n; i++) {
            const char *k = x->m.kv[i] && x->m.kv[i]->key ? x->m.kv[i]->key : "";
            const lg_any_value *other = map_get(y->m.kv, y->m.n, k, strlen(k));
            bool present = false;
            for (size_t j = 0; j < y->m.n && !present; j++)
                present = y->m.kv[j] && y->m.kv[j]->key && strcmp(y->m.kv[j]->key, k) == 0;
            if (!present || !any_equal(x->m.kv[i]->value, other, depth + 1))
                return false;
        }
        return true;
    }
    return false;
}

static bool any_equal(const lg_any_value *a, const lg_any_value *b, int depth)
{
    struct val x = from_any(a), y = from_any(b);
    return vals_deep_equal(&x, &y, depth);
}

/* ------------------------------------------------------------------ tree ---- */

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

enum nkind {
    N_OR,
    N_AND,
    N_NOT,
    N_CMP,     /* a op b */
    N_LIT,     /* literal value (also enums, as ints) */
    N_PATH,    /* path with keys */
    N_FN,      /* converter call */
};

/* Every path of every context; tables below map text to these. */
enum path {
    /* span */
    P_SPAN_NAME, P_SPAN_KIND, P_SPAN_KIND_STRING, P_SPAN_STATUS_CODE, P_SPAN_STATUS_MESSAGE,
    P_SPAN_TRACE_ID_STRING, P_SPAN_SPAN_ID_STRING, P_SPAN_PARENT_ID_STRING, P_SPAN_TRACE_STATE,
    P_SPAN_START, P_SPAN_END, P_SPAN_ATTRS, P_SPAN_DROPPED_ATTRS, P_SPAN_DROPPED_EVENTS,
    P_SPAN_DROPPED_LINKS,
    /* span event */
    P_EV_NAME, P_EV_TIME, P_EV_ATTRS, P_EV_DROPPED_ATTRS,
    /* log record */
    P_LOG_BODY, P_LOG_BODY_STRING, P_LOG_SEV_NUMBER, P_LOG_SEV_TEXT, P_LOG_ATTRS,
    P_LOG_TRACE_ID_STRING, P_LOG_SPAN_ID_STRING, P_LOG_TIME, P_LOG_OBSERVED_TIME, P_LOG_FLAGS,
    P_LOG_DROPPED_ATTRS, P_LOG_EVENT_NAME,
    /* metric */
    P_M_NAME, P_M_DESCRIPTION, P_M_UNIT, P_M_TYPE, P_M_TEMPORALITY, P_M_MONOTONIC,
    /* data point */
    P_DP_ATTRS, P_DP_START, P_DP_TIME, P_DP_VALUE_DOUBLE, P_DP_VALUE_INT, P_DP_FLAGS, P_DP_COUNT,
    P_DP_SUM,
    /* resource and scope, every context */
    P_RES_ATTRS, P_RES_DROPPED, P_SCOPE_NAME, P_SCOPE_VERSION, P_SCOPE_ATTRS, P_SCOPE_DROPPED,
};

enum fn { F_ISMATCH, F_ISSTRING, F_ISINT, F_ISDOUBLE, F_ISBOOL, F_ISMAP, F_ISLIST, F_LEN, F_HASKEY, F_HASATTR };

struct key {
    bool is_int;
    int64_t idx;
    const char *s;
    size_t n;
};

struct node {
    enum nkind kind;
    int col;
    struct node *a, *b; /* or/and/cmp operands, not's child */
    enum op op;
    struct val lit;     /* N_LIT */
    enum path path;     /* N_PATH */
    struct key keys[MAX_KEYS];
    size_t nkeys;
    enum fn fn;         /* N_FN: args in a, b; the regex for IsMatch; key/value for HasAttr* */
    pcre2_code *re;
    const char *s1, *s2;
};

struct lg_ottl_cond {
    enum lg_ottl_ctx ctx;
    struct lg_arena *arena;
    struct node *root;
    pcre2_code **res;
    size_t nres, capres;
};

/* ------------------------------------------------------------------ path tables ---- */

struct path_name {
    const char *text;
    enum path p;
    bool map; /* takes [keys] */
};

static const struct path_name span_paths[] = {
    {"name", P_SPAN_NAME, false},
    {"kind", P_SPAN_KIND, false},
    {"kind.string", P_SPAN_KIND_STRING, false},
    {"status.code", P_SPAN_STATUS_CODE, false},
    {"status.message", P_SPAN_STATUS_MESSAGE, false},
    {"trace_id.string", P_SPAN_TRACE_ID_STRING, false},
    {"span_id.string", P_SPAN_SPAN_ID_STRING, false},
    {"parent_span_id.string", P_SPAN_PARENT_ID_STRING, false},
    {"trace_state", P_SPAN_TRACE_STATE, false},
    {"start_time_unix_nano", P_SPAN_START, false},
    {"end_time_unix_nano", P_SPAN_END, false},
    {"attributes", P_SPAN_ATTRS, true},
    {"dropped_attributes_count", P_SPAN_DROPPED_ATTRS, false},
    {"dropped_events_count", P_SPAN_DROPPED_EVENTS, false},
    {"dropped_links_count", P_SPAN_DROPPED_LINKS, false},
    {NULL, 0, false},
};

static const struct path_name event_paths[] = {
    {"name", P_EV_NAME, false},
    {"time_unix_nano", P_EV_TIME, false},
    {"attributes", P_EV_ATTRS, true},
    {"dropped_attributes_count", P_EV_DROPPED_ATTRS, false},
    {NULL, 0, false},
};

static const struct path_name log_paths[] = {
    {"body", P_LOG_BODY, true},
    {"body.string", P_LOG_BODY_STRING, false},
    {"severity_number", P_LOG_SEV_NUMBER, false},
    {"severity_text", P_LOG_SEV_TEXT, false},
    {"attributes", P_LOG_ATTRS, true},
    {"trace_id.string", P_LOG_TRACE_ID_STRING, false},
    {"span_id.string", P_LOG_SPAN_ID_STRING, false},
    {"time_unix_nano", P_LOG_TIME, false},
    {"observed_time_unix_nano", P_LOG_OBSERVED_TIME, false},
    {"flags", P_LOG_FLAGS, false},
    {"dropped_attributes_count", P_LOG_DROPPED_ATTRS, false},
    {"event_name", P_LOG_EVENT_NAME, false},
    {NULL, 0, false},
};

static const struct path_name metric_paths[] = {
    {"name", P_M_NAME, false},
    {"description", P_M_DESCRIPTION, false},
    {"unit", P_M_UNIT, false},
    {"type", P_M_TYPE, false},
    {"aggregation_temporality", P_M_TEMPORALITY, false},
    {"is_monotonic", P_M_MONOTONIC, false},
    {NULL, 0, false},
};

static const struct path_name dp_paths[] = {
    {"attributes", P_DP_ATTRS, true},
    {"start_time_unix_nano", P_DP_START, false},
    {"time_unix_nano", P_DP_TIME, false},
    {"value_double", P_DP_VALUE_DOUBLE, false},
    {"value_int", P_DP_VALUE_INT, false},
    {"flags", P_DP_FLAGS, false},
    {"count", P_DP_COUNT, false},
    {"sum", P_DP_SUM, false},
    {NULL, 0, false},
};

static const struct path_name common_paths[] = {
    {"resource.attributes", P_RES_ATTRS, true},
    {"resource.dropped_attributes_count", P_RES_DROPPED, false},
    {"instrumentation_scope.name", P_SCOPE_NAME, false},
    {"instrumentation_scope.version", P_SCOPE_VERSION, false},
    {"instrumentation_scope.attributes", P_SCOPE_ATTRS, true},
    {"instrumentation_scope.dropped_attributes_count", P_SCOPE_DROPPED, false},
    {"scope.name", P_SCOPE_NAME, false},
    {"scope.version", P_SCOPE_VERSION, false},
    {"scope.attributes", P_SCOPE_ATTRS, true},
    {"scope.dropped_attributes_count", P_SCOPE_DROPPED, false},
    {NULL, 0, false},
};

static const struct path_name *find_in(const struct path_name *t, const char *text)
{
    for (; t->text; t++)
        if (strcmp(t->text, text) == 0)
            return t;
    return NULL;
}

/* The path named `text` in ctx: the context's own table, its parent's under a prefix
 * (spanevent: span.*; datapoint: metric.*), then resource / scope. */
static const struct path_name *find_path(enum lg_ottl_ctx ctx, const char *text)
{
    const struct path_name *own = NULL, *parent = NULL;
    const char *prefix = NULL;
    switch (ctx) {
    case LG_OTTL_SPAN: own = span_paths; break;
    case LG_OTTL_SPANEVENT: own = event_paths; parent = span_paths; prefix = "span."; break;
    case LG_OTTL_LOG: own = log_paths; break;
    case LG_OTTL_METRIC: own = metric_paths; break;
    case LG_OTTL_DATAPOINT: own = dp_paths; parent = metric_paths; prefix = "metric."; break;
    }
    const struct path_name *p = find_in(own, text);
    if (p == NULL && parent && strncmp(text, prefix, strlen(prefix)) == 0)
        p = find_in(parent, text + strlen(prefix));
    if (p == NULL)
        p = find_in(common_paths, text);
    return p;
}

/* ------------------------------------------------------------------ enums ---- */

struct enum_name {
    const char *name;
    int64_t v;
    unsigned ctxs; /* bit per lg_ottl_ctx */
};

#define CTX_SPANS ((1u << LG_OTTL_SPAN) | (1u << LG_OTTL_SPANEVENT))
#define CTX_LOGS (1u << LG_OTTL_LOG)
#define CTX_METRICS ((1u << LG_OTTL_METRIC) | (1u << LG_OTTL_DATAPOINT))

static const struct enum_name enums[] = {
    {"SPAN_KIND_UNSPECIFIED", 0, CTX_SPANS}, {"SPAN_KIND_INTERNAL", 1, CTX_SPANS},
    {"SPAN_KIND_SERVER", 2, CTX_SPANS},      {"SPAN_KIND_CLIENT", 3, CTX_SPANS},
    {"SPAN_KIND_PRODUCER", 4, CTX_SPANS},    {"SPAN_KIND_CONSUMER", 5, CTX_SPANS},
    {"STATUS_CODE_UNSET", 0, CTX_SPANS},     {"STATUS_CODE_OK", 1, CTX_SPANS},
    {"STATUS_CODE_ERROR", 2, CTX_SPANS},
    {"SEVERITY_NUMBER_UNSPECIFIED", 0, CTX_LOGS},
    {"SEVERITY_NUMBER_TRACE", 1, CTX_LOGS},  {"SEVERITY_NUMBER_TRACE2", 2, CTX_LOGS},
    {"SEVERITY_NUMBER_TRACE3", 3, CTX_LOGS}, {"SEVERITY_NUMBER_TRACE4", 4, CTX_LOGS},
    {"SEVERITY_NUMBER_DEBUG", 5, CTX_LOGS},  {"SEVERITY_NUMBER_DEBUG2", 6, CTX_LOGS},
    {"SEVERITY_NUMBER_DEBUG3", 7, CTX_LOGS}, {"SEVERITY_NUMBER_DEBUG4", 8, CTX_LOGS},
    {"SEVERITY_NUMBER_INFO", 9, CTX_LOGS},   {"SEVERITY_NUMBER_INFO2", 10, CTX_LOGS},
    {"SEVERITY_NUMBER_INFO3", 11, CTX_LOGS}, {"SEVERITY_NUMBER_INFO4", 12, CTX_LOGS},
    {"SEVERITY_NUMBER_WARN", 13, CTX_LOGS},  {"SEVERITY_NUMBER_WARN2", 14, CTX_LOGS},
    {"SEVERITY_NUMBER_WARN3", 15, CTX_LOGS}, {"SEVERITY_NUMBER_WARN4", 16, CTX_LOGS},
    {"SEVERITY_NUMBER_ERROR", 17, CTX_LOGS}, {"SEVERITY_NUMBER_ERROR2", 18, CTX_LOGS},
    {"SEVERITY_NUMBER_ERROR3", 19, CTX_LOGS}, {"SEVERITY_NUMBER_ERROR4", 20, CTX_LOGS},
    {"SEVERITY_NUMBER_FATAL", 21, CTX_LOGS}, {"SEVERITY_NUMBER_FATAL2", 22, CTX_LOGS},
    {"SEVERITY_NUMBER_FATAL3", 23, CTX_LOGS}, {"SEVERITY_NUMBER_FATAL4", 24, CTX_LOGS},
    {"METRIC_DATA_TYPE_NONE", 0, CTX_METRICS}, {"METRIC_DATA_TYPE_GAUGE", 1, CTX_METRICS},
    {"METRIC_DATA_TYPE_SUM", 2, CTX_METRICS}, {"METRIC_DATA_TYPE_HISTOGRAM", 3, CTX_METRICS},
    {"METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4, CTX_METRICS},
    {"METRIC_DATA_TYPE_SUMMARY", 5, CTX_METRICS},
    {"AGGREGATION_TEMPORALITY_UNSPECIFIED", 0, CTX_METRICS},
    {"AGGREGATION_TEMPORALITY_DELTA", 1, CTX_METRICS},
    {"AGGREGATION_TEMPORALITY_CUMULATIVE", 2, CTX_METRICS},
    {"FLAG_NONE", 0, CTX_METRICS | CTX_LOGS}, {"FLAG_NO_RECORDED_VALUE", 1, CTX_METRICS},
};

/* ------------------------------------------------------------------ lexer ---- */

enum tok {
    TK_EOF, TK_IDENT, TK_STRING, TK_INT, TK_FLOAT, TK_BYTES, TK_LPAREN, TK_RPAREN,
    TK_LBRACK, TK_RBRACK, TK_COMMA, TK_DOT, TK_OP, TK_BAD,
};

struct parser {
    const char *src;
    size_t pos;
    enum lg_ottl_ctx ctx;
    struct lg_ottl_cond *cond;
    struct lg_ottl_error *e;
    int depth;
    /* the current token */
    enum tok t;
    size_t tstart, tlen;
    enum op top;
    char *sval; /* decoded TK_STRING / TK_BYTES (arena) */
    size_t slen;
};

static int perr(struct parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(struct parser *p, size_t at, const char *fmt, ...)
{
    if (p->e->msg[0] == '\0') {
        p->e->col = (int)at + 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->e->msg, sizeof p->e->msg, fmt, ap);
        va_end(ap);
    }
    return LG_EINVAL;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A double-quoted string with Go's escapes (OTTL unquotes with strconv.Unquote). */
static int lex_string(struct parser *p)
{
    const char *s = p->src;
    size_t i = p->pos + 1;
    size_t cap = strlen(s + i) + 1;
    char *out = lg_arena_alloc(p->cond->arena, cap);
    if (out == NULL)
        return LG_ENOMEM;
    size_t o = 0;
    for (;;) {
        char c = s[i];
        if (c == '\0')
            return perr(p, p->pos, "unterminated string");
        if (c == '"') {
            i++;
            break;
        }
        if (c != '\\') {
            out[o++] = c;
            i++;
            continue;
        }
        size_t esc = i;
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'v': out[o++] = '\v'; break;
        case 'x': {
            int h1 = hexv(s[i]), h2 = h1 < 0 ? -1 : hexv(s[i + 1]);
            if (h1 < 0 || h2 < 0)
                return perr(p, esc, "invalid \\x escape in string");
            out[o++] = (char)(h1 * 16 + h2);
            i += 2;
            break;
        }
        case 'u':
        case 'U': {
            int nd = e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < nd; k++) {
                int h = hexv(s[i]);
                if (h < 0)
                    return perr(p, esc, "invalid \\%c escape in string", e);
                cp = cp * 16 + (uint32_t)h;
                i++;
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return perr(p, esc, "invalid code point in \\%c escape", e);
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                int v = 0;
                i--;
                for (int k = 0; k < 3; k++, i++) {
                    if (s[i] < '0' || s[i] > '7')
                        return perr(p, esc, "invalid octal escape in string");
                    v = v * 8 + (s[i] - '0');
                }
                if (v > 255)
                    return perr(p, esc, "invalid octal escape in string");
                out[o++] = (char)v;
                break;
            }
            return perr(p, esc, "unknown escape \\%c in string", e ? e : ' ');
        }
    }
    out[o] = '\0';
    p->t = TK_STRING;
    p->sval = out;
    p->slen = o;
    p->tlen = i - p->pos;
    p->pos = i;
    return LG_OK;
}

static bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static int next(struct parser *p)
{
    const char *s = p->src;
    while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
        p->pos++;
    p->tstart = p->pos;
    char c = s[p->pos];
    if (c == '\0') {
        p->t = TK_EOF;
        p->tlen = 0;
        return LG_OK;
    }
    if (c == '"')
        return lex_string(p);
    if (ident_start(c)) {
        size_t i = p->pos;
        while (ident_char(s[i]))
            i++;
        p->t = TK_IDENT;
        p->tlen = i - p->pos;
        p->pos = i;
        return LG_OK;
    }
    if (c == '0' && (s[p->pos + 1] == 'x' || s[p->pos + 1] == 'X')) {
        size_t i = p->pos + 2, nd = 0;
        while (hexv(s[i + nd]) >= 0)
            nd++;
        if (nd == 0 || nd % 2)
            return perr(p, p->pos, "a bytes literal needs an even, non-zero number of hex digits");
        char *out = lg_arena_alloc(p->cond->arena, nd / 2 + 1);
        if (out == NULL)
            return LG_ENOMEM;
        for (size_t k = 0; k < nd / 2; k++)
            out[k] = (char)(hexv(s[i + 2 * k]) * 16 + hexv(s[i + 2 * k + 1]));
        p->t = TK_BYTES;
        p->sval = out;
        p->slen = nd / 2;
        p->tlen = nd + 2;
        p->pos = i + nd;
        return LG_OK;
    }
    if (isdigit((unsigned char)c) || ((c == '-' || c == '+') && (isdigit((unsigned char)s[p->pos + 1]) || s[p->pos + 1] == '.')) ||
        (c == '.' && isdigit((unsigned char)s[p->pos + 1]))) {
        size_t i = p->pos;
        if (s[i] == '-' || s[i] == '+')
            i++;
        bool fl = false;
        while (isdigit((unsigned char)s[i]))
            i++;
        if (s[i] == '.') {
            fl = true;
            i++;
            while (isdigit((unsigned char)s[i]))
                i++;
        }
        if (s[i] == 'e' || s[i] == 'E') {
            size_t j = i + 1;
            if (s[j] == '+' || s[j] == '-')
                j++;
            if (isdigit((unsigned char)s[j])) {
                fl = true;
                i = j;
                while (isdigit((unsigned char)s[i]))
                    i++;
            }
        }
        bool digits = false;
        for (size_t k = p->pos; k < i && !digits; k++)
            digits = isdigit((unsigned char)s[k]) != 0;
        if (ident_char(s[i]) || !digits)
            return perr(p, p->pos, "invalid number");
        p->t = fl ? TK_FLOAT : TK_INT;
        p->tlen = i - p->pos;
        p->pos = i;
        return LG_OK;
    }
    p->tlen = 1;
    switch (c) {
    case '(': p->t = TK_LPAREN; break;
    case ')': p->t = TK_RPAREN; break;
    case '[': p->t = TK_LBRACK; break;
    case ']': p->t = TK_RBRACK; break;
    case ',': p->t = TK_COMMA; break;
    case '.': p->t = TK_DOT; break;
    case '=':
    case '!':
        if (s[p->pos + 1] != '=')
            return perr(p, p->pos, "unexpected '%c' (did you mean '%c='?)", c, c);
        p->t = TK_OP;
        p->top = c == '=' ? OP_EQ : OP_NE;
        p->tlen = 2;
        break;
    case '<':
    case '>': {
        bool eq = s[p->pos + 1] == '=';
        p->t = TK_OP;
        p->top = c == '<' ? (eq ? OP_LE : OP_LT) : (eq ? OP_GE : OP_GT);
        p->tlen = eq ? 2 : 1;
        break;
    }
    default:
        if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
            return perr(p, p->pos, "unexpected character 0x%02x", (unsigned char)c);
        return perr(p, p->pos, "unexpected character '%c'", c);
    }
    p->pos += p->tlen;
    return LG_OK;
}

static bool tok_is(const struct parser *p, const char *word)
{
    return p->t == TK_IDENT && p->tlen == strlen(word) && memcmp(p->src + p->tstart, word, p->tlen) == 0;
}

static const char *tok_desc(const struct parser *p, char *buf, size_t cap)
{
    if (p->t == TK_EOF)
        return "end of condition";
    snprintf(buf, cap, "'%.*s'", (int)(p->tlen > 40 ? 40 : p->tlen), p->src + p->tstart);
    return buf;
}

/* ------------------------------------------------------------------ parser ---- */

static struct node *new_node(struct parser *p, enum nkind k, size_t at)
{
    struct node *n = lg_arena_calloc(p->cond->arena, 1, sizeof *n);
    if (n) {
        n->kind = k;
        n->col = (int)at + 1;
    }
    return n;
}

static int parse_or(struct parser *p, struct node **out);

/* The static type a value node produces, when known at compile time (-1: depends on data). */
static int static_type(const struct node *n)
{
    if (n->kind == N_LIT)
        return (int)n->lit.t;
    if (n->kind == N_FN)
        return n->fn == F_LEN ? T_INT : T_BOOL;
    if (n->kind == N_CMP || n->kind == N_AND || n->kind == N_OR || n->kind == N_NOT)
        return T_BOOL;
    return -1;
}

static int expect(struct parser *p, enum tok t, const char *what)
{
    char b[64];
    if (p->t != t)
        return perr(p, p->tstart, "expected %s, found %s", what, tok_desc(p, b, sizeof b));
    return next(p);
}

static int add_regex(struct parser *p, struct node *fnode, const char *pattern, size_t at)
{
    int ec;
    PCRE2_SIZE eo;
    /* UTF with MATCH_INVALID_UTF: telemetry text is not validated on the way in, and a
     * pattern must still match around invalid bytes, as Go's regexp does */
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                                   &ec, &eo, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return perr(p, at, "invalid regex at offset %zu: %s", (size_t)eo, (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    struct lg_ottl_cond *c = p->cond;
    if (c->nres == c->capres) {
        size_t ncap = c->capres ? c->capres * 2 : 4;
        pcre2_code **nr = realloc(c->res, ncap * sizeof *nr);
        if (nr == NULL) {
            pcre2_code_free(re);
            return LG_ENOMEM;
        }
        c->res = nr;
        c->capres = ncap;
    }
    c->res[c->nres++] = re;
    fnode->re = re;
    return LG_OK;
}

static int parse_value(struct parser *p, struct node **out);

static const struct {
    const char *name;
    enum fn fn;
    int nargs;
} fns[] = {
    {"IsMatch", F_ISMATCH, 2},  {"IsString", F_ISSTRING, 1}, {"IsInt", F_ISINT, 1},
    {"IsDouble", F_ISDOUBLE, 1}, {"IsBool", F_ISBOOL, 1},    {"IsMap", F_ISMAP, 1},
    {"IsList", F_ISLIST, 1},    {"Len", F_LEN, 1},
    {"HasAttrKeyOnDatapoint", F_HASKEY, 1}, {"HasAttrOnDatapoint", F_HASATTR, 2},
};

static int parse_call(struct parser *p, size_t at, struct node **out)
{
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)p->tlen, p->src + p->tstart);
    int k = -1;
    for (size_t i = 0; i < LG_ARRAY_LEN(fns) && k < 0; i++)
        if (strcmp(fns[i].name, name) == 0)
            k = (int)i;
    if (k < 0)
        return perr(p, at, "unknown function \"%s\" (supported in conditions: IsMatch, IsString, IsInt, "
                           "IsDouble, IsBool, IsMap, IsList, Len, HasAttrKeyOnDatapoint, HasAttrOnDatapoint)",
                    name);
    struct node *n = new_node(p, N_FN, at);
    if (n == NULL)
        return LG_ENOMEM;
    n->fn = fns[k].fn;
    if ((n->fn == F_HASKEY || n->fn == F_HASATTR) && p->ctx != LG_OTTL_METRIC)
        return perr(p, at, "%s is only available in the metric context (metrics.metric)", name);
    int rc = next(p);
    if (rc == LG_OK)
        rc = expect(p, TK_LPAREN, "'('");
    if (rc != LG_OK)
        return rc;
    for (int i = 0; i < fns[k].nargs; i++) {
        if (i > 0 && (rc = expect(p, TK_COMMA, "','")) != LG_OK)
            return rc;
        size_t argat = p->tstart;
        bool literal_string_arg = (n->fn == F_ISMATCH && i == 1) || n->fn == F_HASKEY || n->fn == F_HASATTR;
        if (literal_string_arg) {
            if (p->t != TK_STRING)
                return perr(p, argat, "%s: argument %d must be a string literal", name, i + 1);
            if (n->fn == F_ISMATCH) {
                if ((rc = add_regex(p, n, p->sval, argat)) != LG_OK)
                    return rc;
            } else if (i == 0) {
                n->s1 = p->sval;
            } else {
                n->s2 = p->sval;
            }
            if ((rc = next(p)) != LG_OK)
                return rc;
            continue;
        }
        struct node *arg;
        if ((rc = parse_value(p, &arg)) != LG_OK)
            return rc;
        n->a = arg;
    }
    if (p->t == TK_COMMA)
        return perr(p, p->tstart, "%s takes %d argument%s", name, fns[k].nargs, fns[k].nargs == 1 ? "" : "s");
    if ((rc = expect(p, TK_RPAREN, "')'")) != LG_OK)
        return rc;
    *out = n;
    return LG_OK;
}

static int parse_keys(struct parser *p, struct node *n)
{
    while (p->t == TK_LBRACK) {
        size_t at = p->tstart;
        int rc = next(p);
        if (rc != LG_OK)
            return rc;
        if (n->nkeys == MAX_KEYS)
            return perr(p, at, "too many keys (at most %d)", MAX_KEYS);
        struct key *k = &n->keys[n->nkeys++];
        if (p->t == TK_STRING) {
            if (memchr(p->sval, 0, p->slen))
                return perr(p, p->tstart, "a key cannot contain a NUL byte");
            k->s = p->sval;
            k->n = p->slen;
        } else if (p->t == TK_INT) {
            char *end;
            errno = 0;
            long long v = strtoll(p->src + p->tstart, &end, 10);
            if (errno || v < 0)
                return perr(p, p->tstart, "a list index must be a non-negative int");
            k->is_int = true;
            k->idx = v;
        } else {
            return perr(p, p->tstart, "a key must be a string literal or an int index");
        }
        if ((rc = next(p)) != LG_OK || (rc = expect(p, TK_RBRACK, "']'")) != LG_OK)
            return rc;
    }
    return LG_OK;
}

static int parse_path(struct parser *p, size_t at, struct node **out)
{
    char text[160];
    size_t len = 0;
    for (;;) {
        if (len + p->tlen + 2 >= sizeof text)
            return perr(p, at, "path too long");
        memcpy(text + len, p->src + p->tstart, p->tlen);
        len += p->tlen;
        text[len] = '\0';
        int rc = next(p);
        if (rc != LG_OK)
            return rc;
        if (p->t != TK_DOT)
            break;
        if ((rc = next(p)) != LG_OK)
            return rc;
        if (p->t != TK_IDENT)
            return perr(p, p->tstart, "expected a path segment after '.'");
        text[len++] = '.';
    }
    const struct path_name *pn = find_path(p->ctx, text);
    if (pn == NULL)
        return perr(p, at, "unknown path \"%s\" in the %s context", text, lg_ottl_ctx_name(p->ctx));
    struct node *n = new_node(p, N_PATH, at);
    if (n == NULL)
        return LG_ENOMEM;
    n->path = pn->p;
    if (p->t == TK_LBRACK) {
        if (!pn->map)
            return perr(p, p->tstart, "path \"%s\" does not take keys", text);
        int rc = parse_keys(p, n);
        if (rc != LG_OK)
            return rc;
    }
    *out = n;
    return LG_OK;
}

static int parse_value(struct parser *p, struct node **out)
{
    size_t at = p->tstart;
    char b[64];
    struct node *n;
    int rc;
    switch (p->t) {
    case TK_STRING:
    case TK_BYTES:
        if ((n = new_node(p, N_LIT, at)) == NULL)
            return LG_ENOMEM;
        n->lit.t = p->t == TK_STRING ? T_STR : T_BYTES;
        n->lit.s.p = p->sval;
        n->lit.s.n = p->slen;
        break;
    case TK_INT: {
        if ((n = new_node(p, N_LIT, at)) == NULL)
            return LG_ENOMEM;
        char *end;
        errno = 0;
        long long v = strtoll(p->src + p->tstart, &end, 10);
        if (errno)
            return perr(p, at, "int literal out of range");
        n->lit.t = T_INT;
        n->lit.i = v;
        break;
    }
    case TK_FLOAT:
        if ((n = new_node(p, N_LIT, at)) == NULL)
            return LG_ENOMEM;
        n->lit.t = T_DOUBLE;
        n->lit.d = strtod(p->src + p->tstart, NULL);
        break;
    case TK_IDENT: {
        if (tok_is(p, "true") || tok_is(p, "false")) {
            if ((n = new_node(p, N_LIT, at)) == NULL)
                return LG_ENOMEM;
            n->lit.t = T_BOOL;
            n->lit.b = tok_is(p, "true");
            break;
        }
        if (tok_is(p, "nil")) {
            if ((n = new_node(p, N_LIT, at)) == NULL)
                return LG_ENOMEM;
            n->lit.t = T_NIL;
            break;
        }
        if (tok_is(p, "and") || tok_is(p, "or") || tok_is(p, "not"))
            return perr(p, at, "expected a value, found %s", tok_desc(p, b, sizeof b));
        /* Converters start with an upper-case letter and are called; enums are upper case
         * words; paths are lower case (the OTTL grammar's distinction). */
        if (isupper((unsigned char)p->src[at])) {
            size_t save_pos = p->pos;
            while (p->src[save_pos] == ' ' || p->src[save_pos] == '\t')
                save_pos++;
            if (p->src[save_pos] == '(')
                return parse_call(p, at, out);
            char name[80];
            snprintf(name, sizeof name, "%.*s", (int)p->tlen, p->src + at);
            for (size_t i = 0; i < LG_ARRAY_LEN(enums); i++)
                if (strcmp(enums[i].name, name) == 0) {
                    if (!(enums[i].ctxs & (1u << p->ctx)))
                        return perr(p, at, "enum %s is not available in the %s context", name,
                                    lg_ottl_ctx_name(p->ctx));
                    if ((n = new_node(p, N_LIT, at)) == NULL)
                        return LG_ENOMEM;
                    n->lit.t = T_INT;
                    n->lit.i = enums[i].v;
                    if ((rc = next(p)) != LG_OK)
                        return rc;
                    *out = n;
                    return LG_OK;
                }
            return perr(p, at, "unknown enum \"%s\"", name);
        }
        return parse_path(p, at, out);
    }
    default:
        return perr(p, at, "expected a value, found %s", tok_desc(p, b, sizeof b));
    }
    if ((rc = next(p)) != LG_OK)
        return rc;
    *out = n;
    return LG_OK;
}

/* term: ( condition ) | value [op value] */
static int parse_term(struct parser *p, struct node **out)
{
    if (p->t == TK_LPAREN) {
        size_t at = p->tstart;
        if (++p->depth > MAX_DEPTH)
            return perr(p, at, "condition nested too deeply");
        int rc = next(p);
        if (rc == LG_OK)
            rc = parse_or(p, out);
        if (rc == LG_OK && p->t != TK_RPAREN)
            return perr(p, p->tstart, "missing ')' for the '(' at column %zu", at + 1);
        p->depth--;
        return rc == LG_OK ? next(p) : rc;
    }
    size_t at = p->tstart;
    struct node *left;
    int rc = parse_value(p, &left);
    if (rc != LG_OK)
        return rc;
    if (p->t != TK_OP) {
        if (static_type(left) != T_BOOL)
            return perr(p, at, "expected a comparison (==, !=, <, <=, >, >=) or a boolean value here");
        *out = left;
        return LG_OK;
    }
    struct node *n = new_node(p, N_CMP, p->tstart);
    if (n == NULL)
        return LG_ENOMEM;
    n->op = p->top;
    n->a = left;
    if ((rc = next(p)) != LG_OK || (rc = parse_value(p, &n->b)) != LG_OK)
        return rc;
    if (p->t == TK_OP)
        return perr(p, p->tstart, "comparisons do not chain; use and");
    *out = n;
    return LG_OK;
}

static int parse_not(struct parser *p, struct node **out)
{
    if (tok_is(p, "not")) {
        size_t at = p->tstart;
        if (++p->depth > MAX_DEPTH)
            return perr(p, at, "condition nested too deeply");
        struct node *n = new_node(p, N_NOT, at);
        if (n == NULL)
            return LG_ENOMEM;
        int rc = next(p);
        if (rc == LG_OK)
            rc = parse_not(p, &n->a);
        p->depth--;
        *out = n;
        return rc;
    }
    return parse_term(p, out);
}

static int parse_and(struct parser *p, struct node **out)
{
    int rc = parse_not(p, out);
    while (rc == LG_OK && tok_is(p, "and")) {
        struct node *n = new_node(p, N_AND, p->tstart);
        if (n == NULL)
            return LG_ENOMEM;
        n->a = *out;
        if ((rc = next(p)) == LG_OK)
            rc = parse_not(p, &n->b);
        *out = n;
    }
    return rc;
}

static int parse_or(struct parser *p, struct node **out)
{
    int rc = parse_and(p, out);
    while (rc == LG_OK && tok_is(p, "or")) {
        struct node *n = new_node(p, N_OR, p->tstart);
        if (n == NULL)
            return LG_ENOMEM;
        n->a = *out;
        if ((rc = next(p)) == LG_OK)
            rc = parse_and(p, &n->b);
        *out = n;
    }
    return rc;
}

void lg_ottl_free(struct lg_ottl_cond *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nres; i++)
        pcre2_code_free(c->res[i]);
    free(c->res);
    lg_arena_destroy(c->arena);
    free(c);
}

int lg_ottl_compile(enum lg_ottl_ctx ctx, const char *text, struct lg_ottl_cond **out, struct lg_ottl_error *e)
{
    memset(e, 0, sizeof *e);
    *out = NULL;
    struct lg_ottl_cond *c = calloc(1, sizeof *c);
    if (c == NULL || (c->arena = lg_arena_create(1024)) == NULL) {
        free(c);
        snprintf(e->msg, sizeof e->msg, "out of memory");
        return LG_ENOMEM;
    }
    c->ctx = ctx;
    struct parser p = {.src = text ? text : "", .ctx = ctx, .cond = c, .e = e};
    int rc = next(&p);
    if (rc == LG_OK && p.t == TK_EOF)
        rc = perr(&p, 0, "empty condition");
    if (rc == LG_OK)
        rc = parse_or(&p, &c->root);
    if (rc == LG_OK && p.t != TK_EOF) {
        char b[64];
        rc = perr(&p, p.tstart, "unexpected %s (expected and, or, or the end)", tok_desc(&p, b, sizeof b));
    }
    if (rc != LG_OK) {
        if (rc == LG_ENOMEM && e->msg[0] == '\0')
            snprintf(e->msg, sizeof e->msg, "out of memory");
        lg_ottl_free(c);
        return rc;
    }
    *out = c;
    return LG_OK;
}

/* ------------------------------------------------------------------ evaluation ---- */

static int eerr(struct lg_ottl_scratch *s, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int eerr(struct lg_ottl_scratch *s, int col, const char *fmt, ...)
{
    int o = snprintf(s->err, sizeof s->err, "column %d: ", col);
    va_list ap;
    va_start(ap, fmt);
    if (o > 0 && (size_t)o < sizeof s->err)
        vsnprintf(s->err + o, sizeof s->err - (size_t)o, fmt, ap);
    va_end(ap);
    return LG_EINVAL;
}

static struct val vstr(const char *p)
{
    struct val v = {.t = T_STR};
    v.s.p = p ? p : "";
    v.s.n = strlen(v.s.p);
    return v;
}

static struct val vint(int64_t i)
{
    struct val v = {.t = T_INT};
    v.i = i;
    return v;
}

static struct val vmap(lg_kv *const *kv, size_t n)
{
    struct val v = {.t = T_MAP};
    v.m.kv = kv;
    v.m.n = n;
    return v;
}

/* pdata's TraceID/SpanID String(): lower-case hex, "" for an empty (all-zero) ID. */
static struct val vhexid(const ProtobufCBinaryData *id, char *buf)
{
    static const char hx[] = "0123456789abcdef";
    bool zero = true;
    size_t n = id->len > 16 ? 16 : id->len;
    for (size_t i = 0; i < n; i++)
        zero = zero && id->data[i] == 0;
    size_t o = 0;
    if (!zero)
        for (size_t i = 0; i < n; i++) {
            buf[o++] = hx[id->data[i] >> 4];
            buf[o++] = hx[id->data[i] & 15];
        }
    buf[o] = '\0';
    struct val v = {.t = T_STR};
    v.s.p = buf;
    v.s.n = o;
    return v;
}

#define DP_FIELD(it, field)                                                                         \
    ((it)->dp_kind == LG_OTTL_DP_NUMBER      ? ((const lg_number_dp *)(it)->dp)->field              \
     : (it)->dp_kind == LG_OTTL_DP_HISTOGRAM ? ((const lg_histogram_dp *)(it)->dp)->field           \
     : (it)->dp_kind == LG_OTTL_DP_EXP_HISTOGRAM ? ((const lg_exp_histogram_dp *)(it)->dp)->field   \
                                                 : ((const lg_summary_dp *)(it)->dp)->field)

#define MD(x) OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_##x

static int64_t metric_type(const lg_metric *m)
{
    switch (m->data_case) {
    case MD(GAUGE): return 1;
    case MD(SUM): return 2;
    case MD(HISTOGRAM): return 3;
    case MD(EXPONENTIAL_HISTOGRAM): return 4;
    case MD(SUMMARY): return 5;
    default: return 0;
    }
}

static const char *const kind_strings[] = {"Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"};

/* The value of a path (before keys). */
static struct val path_value(enum path path, const struct lg_ottl_item *it, char *buf)
{
    const lg_span *sp = it->span;
    const lg_span_event *ev = it->event;
    const lg_log_record *l = it->log;
    const lg_metric *m = it->metric;
    struct val nil = {.t = T_NIL};
    switch (path) {
    case P_SPAN_NAME: return sp ? vstr(sp->name) : nil;
    case P_SPAN_KIND: return sp ? vint(sp->kind) : nil;
    case P_SPAN_KIND_STRING:
        if (sp == NULL)
            return nil;
        return vstr((unsigned)sp->kind < LG_ARRAY_LEN(kind_strings) ? kind_strings[sp->kind] : "");
    case P_SPAN_STATUS_CODE: return sp ? vint(sp->status ? sp->status->code : 0) : nil;
    case P_SPAN_STATUS_MESSAGE: return sp ? vstr(sp->status ? sp->status->message : "") : nil;
    case P_SPAN_TRACE_ID_STRING: return sp ? vhexid(&sp->trace_id, buf) : nil;
    case P_SPAN_SPAN_ID_STRING: return sp ? vhexid(&sp->span_id, buf) : nil;
    case P_SPAN_PARENT_ID_STRING: return sp ? vhexid(&sp->parent_span_id, buf) : nil;
    case P_SPAN_TRACE_STATE: return sp ? vstr(sp->trace_state) : nil;
    case P_SPAN_START: return sp ? vint((int64_t)sp->start_time_unix_nano) : nil;
    case P_SPAN_END: return sp ? vint((int64_t)sp->end_time_unix_nano) : nil;
    case P_SPAN_ATTRS: return sp ? vmap(sp->attributes, sp->n_attributes) : vmap(NULL, 0);
    case P_SPAN_DROPPED_ATTRS: return sp ? vint(sp->dropped_attributes_count) : nil;
    case P_SPAN_DROPPED_EVENTS: return sp ? vint(sp->dropped_events_count) : nil;
    case P_SPAN_DROPPED_LINKS: return sp ? vint(sp->dropped_links_count) : nil;
    case P_EV_NAME: return ev ? vstr(ev->name) : nil;
    case P_EV_TIME: return ev ? vint((int64_t)ev->time_unix_nano) : nil;
    case P_EV_ATTRS: return ev ? vmap(ev->attributes, ev->n_attributes) : vmap(NULL, 0);
    case P_EV_DROPPED_ATTRS: return ev ? vint(ev->dropped_attributes_count) : nil;
    case P_LOG_BODY: return l ? from_any(l->body) : nil;
    case P_LOG_BODY_STRING: {
        if (l == NULL)
            return nil;
        struct val b = from_any(l->body);
        return b.t == T_STR ? b : vstr(""); /* non-string bodies: see the docs */
    }
    case P_LOG_SEV_NUMBER: return l ? vint(l->severity_number) : nil;
    case P_LOG_SEV_TEXT: return l ? vstr(l->severity_text) : nil;
    case P_LOG_ATTRS: return l ? vmap(l->attributes, l->n_attributes) : vmap(NULL, 0);
    case P_LOG_TRACE_ID_STRING: return l ? vhexid(&l->trace_id, buf) : nil;
    case P_LOG_SPAN_ID_STRING: return l ? vhexid(&l->span_id, buf) : nil;
    case P_LOG_TIME: return l ? vint((int64_t)l->time_unix_nano) : nil;
    case P_LOG_OBSERVED_TIME: return l ? vint((int64_t)l->observed_time_unix_nano) : nil;
    case P_LOG_FLAGS: return l ? vint(l->flags) : nil;
    case P_LOG_DROPPED_ATTRS: return l ? vint(l->dropped_attributes_count) : nil;
    case P_LOG_EVENT_NAME: return l ? vstr(l->event_name) : nil;
    case P_M_NAME: return m ? vstr(m->name) : nil;
    case P_M_DESCRIPTION: return m ? vstr(m->description) : nil;
    case P_M_UNIT: return m ? vstr(m->unit) : nil;
    case P_M_TYPE: return m ? vint(metric_type(m)) : nil;
    case P_M_TEMPORALITY:
        if (m == NULL)
            return nil;
        if (m->data_case == MD(SUM) && m->sum)
            return vint(m->sum->aggregation_temporality);
        if (m->data_case == MD(HISTOGRAM) && m->histogram)
            return vint(m->histogram->aggregation_temporality);
        if (m->data_case == MD(EXPONENTIAL_HISTOGRAM) && m->exponential_histogram)
            return vint(m->exponential_histogram->aggregation_temporality);
        return vint(0);
    case P_M_MONOTONIC: {
        struct val v = {.t = T_BOOL};
        v.b = m && m->data_case == MD(SUM) && m->sum && m->sum->is_monotonic;
        return m ? v : nil;
    }
    case P_DP_ATTRS: return it->dp ? vmap(DP_FIELD(it, attributes), DP_FIELD(it, n_attributes)) : vmap(NULL, 0);
    case P_DP_START: return it->dp ? vint((int64_t)DP_FIELD(it, start_time_unix_nano)) : nil;
    case P_DP_TIME: return it->dp ? vint((int64_t)DP_FIELD(it, time_unix_nano)) : nil;
    case P_DP_FLAGS: return it->dp ? vint(DP_FIELD(it, flags)) : nil;
    case P_DP_VALUE_DOUBLE:
    case P_DP_VALUE_INT: {
        /* number points only; the other field of the oneof reads as 0, as pdata does */
        if (it->dp == NULL || it->dp_kind != LG_OTTL_DP_NUMBER)
            return nil;
        const lg_number_dp *d = it->dp;
        if (path == P_DP_VALUE_INT)
            return vint(d->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT ? d->as_int : 0);
        struct val v = {.t = T_DOUBLE};
        v.d = d->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE ? d->as_double : 0;
        return v;
    }
    case P_DP_COUNT:
    case P_DP_SUM: {
        /* histogram, exponential histogram and summary points (number points have neither) */
        uint64_t count = 0;
        double sum = 0;
        if (it->dp == NULL || it->dp_kind == LG_OTTL_DP_NUMBER)
            return nil;
        if (it->dp_kind == LG_OTTL_DP_HISTOGRAM) {
            count = ((const lg_histogram_dp *)it->dp)->count;
            sum = ((const lg_histogram_dp *)it->dp)->sum;
        } else if (it->dp_kind == LG_OTTL_DP_EXP_HISTOGRAM) {
            count = ((const lg_exp_histogram_dp *)it->dp)->count;
            sum = ((const lg_exp_histogram_dp *)it->dp)->sum;
        } else {
            count = ((const lg_summary_dp *)it->dp)->count;
            sum = ((const lg_summary_dp *)it->dp)->sum;
        }
        if (path == P_DP_COUNT)
            return vint((int64_t)count);
        struct val v = {.t = T_DOUBLE};
        v.d = sum;
        return v;
    }
    case P_RES_ATTRS:
        return it->resource ? vmap(it->resource->attributes, it->resource->n_attributes) : vmap(NULL, 0);
    case P_RES_DROPPED: return vint(it->resource ? it->resource->dropped_attributes_count : 0);
    case P_SCOPE_NAME: return vstr(it->scope ? it->scope->name : "");
    case P_SCOPE_VERSION: return vstr(it->scope ? it->scope->version : "");
    case P_SCOPE_ATTRS: return it->scope ? vmap(it->scope->attributes, it->scope->n_attributes) : vmap(NULL, 0);
    case P_SCOPE_DROPPED: return vint(it->scope ? it->scope->dropped_attributes_count : 0);
    }
    return nil;
}

static int eval_value(const struct node *n, const struct lg_ottl_item *it, struct lg_ottl_scratch *s,
                      struct val *out, char *buf);
static int eval_bool(const struct node *n, const struct lg_ottl_item *it, struct lg_ottl_scratch *s, int depth);

static int apply_keys(const struct node *n, struct val *v, struct lg_ottl_scratch *s)
{
    for (size_t i = 0; i < n->nkeys; i++) {
        const struct key *k = &n->keys[i];
        if (v->t == T_NIL)
            return LG_OK; /* a missing attribute's sub-key is missing too */
        if (!k->is_int && v->t == T_MAP) {
            *v = from_any(map_get(v->m.kv, v->m.n, k->s, k->n));
        } else if (k->is_int && v->t == T_LIST) {
            if ((uint64_t)k->idx >= v->l.n)
                return eerr(s, n->col, "index %lld out of range (list of %zu)", (long long)k->idx, v->l.n);
            *v = from_any(v->l.v[k->idx]);
        } else {
            return eerr(s, n->col, "a %s cannot be indexed by %s", vt_names[v->t], k->is_int ? "an int" : "a string key");
        }
    }
    return LG_OK;
}

static bool pcre_match(const pcre2_code *re, const char *p, size_t n, struct lg_ottl_scratch *s, int *err)
{
    if (s->md == NULL && (s->md = pcre2_match_data_create(1, NULL)) == NULL) {
        *err = LG_ENOMEM;
        return false;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)p, n, 0, 0, s->md, NULL);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        *err = LG_EINVAL;
        return false;
    }
    return rc >= 0;
}

/* Go's strconv.FormatFloat(f, 'f', -1, 64)-like text: shortest digits that read back. */
static size_t fmt_double(double d, char *buf, size_t cap)
{
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n > 0 ? (size_t)n : 0;
}

static int eval_fn(const struct node *n, const struct lg_ottl_item *it, struct lg_ottl_scratch *s, struct val *out)
{
    char buf[OPERAND_BUF];
    struct val a = {.t = T_NIL};
    int rc;
    if (n->a && (rc = eval_value(n->a, it, s, &a, buf)) != LG_OK)
        return rc;
    out->t = T_BOOL;
    switch (n->fn) {
    case F_ISSTRING: out->b = a.t == T_STR; return LG_OK;
    case F_ISINT: out->b = a.t == T_INT; return LG_OK;
    case F_ISDOUBLE: out->b = a.t == T_DOUBLE; return LG_OK;
    case F_ISBOOL: out->b = a.t == T_BOOL; return LG_OK;
    case F_ISMAP: out->b = a.t == T_MAP; return LG_OK;
    case F_ISLIST: out->b = a.t == T_LIST; return LG_OK;
    case F_LEN:
        out->t = T_INT;
        switch (a.t) {
        case T_STR:
        case T_BYTES: out->i = (int64_t)a.s.n; return LG_OK;
        case T_MAP: out->i = (int64_t)a.m.n; return LG_OK;
        case T_LIST: out->i = (int64_t)a.l.n; return LG_OK;
        default: return eerr(s, n->col, "Len: unsupported type %s", vt_names[a.t]);
        }
    case F_ISMATCH: {
        char tb[OPERAND_BUF];
        const char *p;
        size_t len;
        static const char hx[] = "0123456789abcdef";
        switch (a.t) {
        case T_NIL: out->b = false; return LG_OK;
        case T_STR: p = a.s.p; len = a.s.n; break;
        case T_INT: len = (size_t)snprintf(tb, sizeof tb, "%lld", (long long)a.i); p = tb; break;
        case T_DOUBLE: len = fmt_double(a.d, tb, sizeof tb); p = tb; break;
        case T_BOOL: p = a.b ? "true" : "false"; len = strlen(p); break;
        case T_BYTES:
            if (a.s.n * 2 >= sizeof tb)
                return eerr(s, n->col, "IsMatch: byte array too long to match as text");
            for (size_t i = 0; i < a.s.n; i++) {
                tb[2 * i] = hx[(unsigned char)a.s.p[i] >> 4];
                tb[2 * i + 1] = hx[(unsigned char)a.s.p[i] & 15];
            }
            len = a.s.n * 2;
            p = tb;
            break;
        default: return eerr(s, n->col, "IsMatch: unsupported type %s", vt_names[a.t]);
        }
        int err = 0;
        out->b = pcre_match(n->re, p, len, s, &err);
        if (err == LG_ENOMEM)
            return LG_ENOMEM;
        if (err)
            return eerr(s, n->col, "IsMatch: the regex engine failed (match limit)");
        return LG_OK;
    }
    case F_HASKEY:
    case F_HASATTR: {
        out->b = false;
        const lg_metric *m = it->metric;
        if (m == NULL)
            return LG_OK;
        struct lg_ottl_item dpi = *it;
        size_t np = 0;
        void *const *pts = NULL;
        switch (m->data_case) {
        case MD(GAUGE): if (m->gauge) { np = m->gauge->n_data_points; pts = (void *const *)m->gauge->data_points; } dpi.dp_kind = LG_OTTL_DP_NUMBER; break;
        case MD(SUM): if (m->sum) { np = m->sum->n_data_points; pts = (void *const *)m->sum->data_points; } dpi.dp_kind = LG_OTTL_DP_NUMBER; break;
        case MD(HISTOGRAM): if (m->histogram) { np = m->histogram->n_data_points; pts = (void *const *)m->histogram->data_points; } dpi.dp_kind = LG_OTTL_DP_HISTOGRAM; break;
        case MD(EXPONENTIAL_HISTOGRAM): if (m->exponential_histogram) { np = m->exponential_histogram->n_data_points; pts = (void *const *)m->exponential_histogram->data_points; } dpi.dp_kind = LG_OTTL_DP_EXP_HISTOGRAM; break;
        case MD(SUMMARY): if (m->summary) { np = m->summary->n_data_points; pts = (void *const *)m->summary->data_points; } dpi.dp_kind = LG_OTTL_DP_SUMMARY; break;
        default: break;
        }
        for (size_t i = 0; i < np && !out->b; i++) {
            dpi.dp = pts[i];
            const lg_any_value *v = map_get(DP_FIELD(&dpi, attributes), DP_FIELD(&dpi, n_attributes), n->s1, strlen(n->s1));
            bool present = false;
            lg_kv *const *kv = DP_FIELD(&dpi, attributes);
            for (size_t k = 0; k < DP_FIELD(&dpi, n_attributes) && !present; k++)
                present = kv[k] && kv[k]->key && strcmp(kv[k]->key, n->s1) == 0;
            if (n->fn == F_HASKEY)
                out->b = present;
            else
                out->b = v && v->value_case == AV(STRING_VALUE) && v->string_value && strcmp(v->string_value, n->s2) == 0;
        }
        return LG_OK;
    }
    }
    return LG_OK;
}

static int eval_value(const struct node *n, const struct lg_ottl_item *it, struct lg_ottl_scratch *s,
                      struct val *out, char *buf)
{
    switch (n->kind) {
    case N_LIT:
        *out = n->lit;
        return LG_OK;
    case N_PATH:
        *out = path_value(n->path, it, buf);
        return apply_keys(n, out, s);
    case N_FN:
        return eval_fn(n, it, s, out);
    default: {
        int r = eval_bool(n, it, s, 0);
        if (r < 0)
            return r;
        out->t = T_BOOL;
        out->b = r == 1;
        return LG_OK;
    }
    }
}

static int cmp3(double x, double y) { return x < y ? -1 : x > y ? 1 : 0; }

static bool ordered(enum op op, int c)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    }
    return false;
}

/* The OTTL comparison rules (pkg/ottl LANGUAGE.md, "Comparison Rules"). */
static bool compare(enum op op, const struct val *x, const struct val *y)
{
    bool xnum = x->t == T_INT || x->t == T_DOUBLE, ynum = y->t == T_INT || y->t == T_DOUBLE;
    if (xnum && ynum) {
        if (x->t == T_INT && y->t == T_INT)
            return ordered(op, x->i < y->i ? -1 : x->i > y->i ? 1 : 0);
        double a = x->t == T_INT ? (double)x->i : x->d, b = y->t == T_INT ? (double)y->i : y->d;
        if (isnan(a) || isnan(b)) /* Go: every comparison with NaN is false except != */
            return op == OP_NE;
        return ordered(op, cmp3(a, b));
    }
    if (x->t != y->t)
        return op == OP_NE; /* "not equal" */
    switch (x->t) {
    case T_NIL:
        return op == OP_EQ; /* true for equality only */
    case T_BOOL:
        return ordered(op, (int)x->b - (int)y->b);
    case T_STR:
    case T_BYTES: {
        size_t n = x->s.n < y->s.n ? x->s.n : y->s.n;
        int c = n ? memcmp(x->s.p, y->s.p, n) : 0;
        if (c == 0)
            c = x->s.n < y->s.n ? -1 : x->s.n > y->s.n ? 1 : 0;
        return ordered(op, c);
    }
    case T_MAP:
    case T_LIST:
        if (op == OP_EQ)
            return vals_deep_equal(x, y, 0);
        if (op == OP_NE)
            return !vals_deep_equal(x, y, 0);
        return false;
    default:
        return false;
    }
}

static int eval_bool(const struct node *n, const struct lg_ottl_item *it, struct lg_ottl_scratch *s, int depth)
{
    int r;
    switch (n->kind) {
    case N_OR:
        r = eval_bool(n->a, it, s, depth + 1);
        if (r != 0) /* true, or an error */
            return r;
        return eval_bool(n->b, it, s, depth + 1);
    case N_AND:
        r = eval_bool(n->a, it, s, depth + 1);
        if (r != 1)
            return r;
        return eval_bool(n->b, it, s, depth + 1);
    case N_NOT:
        r = eval_bool(n->a, it, s, depth + 1);
        return r < 0 ? r : !r;
    case N_CMP: {
        char b1[OPERAND_BUF], b2[OPERAND_BUF];
        struct val x, y;
        if ((r = eval_value(n->a, it, s, &x, b1)) != LG_OK || (r = eval_value(n->b, it, s, &y, b2)) != LG_OK)
            return r;
        return compare(n->op, &x, &y) ? 1 : 0;
    }
    case N_LIT:
        return n->lit.t == T_BOOL && n->lit.b;
    case N_FN: {
        struct val v;
        if ((r = eval_fn(n, it, s, &v)) != LG_OK)
            return r;
        return v.t == T_BOOL && v.b;
    }
    case N_PATH:
        break;
    }
    return eerr(s, n->col, "not a boolean");
}

int lg_ottl_eval(const struct lg_ottl_cond *c, const struct lg_ottl_item *it, struct lg_ottl_scratch *s)
{
    return eval_bool(c->root, it, s, 0);
}

void lg_ottl_scratch_free(struct lg_ottl_scratch *s)
{
    if (s->md)
        pcre2_match_data_free(s->md);
    s->md = NULL;
}
