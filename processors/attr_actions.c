/* processors/attr_actions.c — the Collector's attribute actions over one KeyValue list
 * (see processors/attr_actions.h). Regexes through PCRE2, compiled once at config time;
 * hashes through OpenSSL. */
#include "attr_actions.h"

#include <errno.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/llm.h"

enum action_kind { A_INSERT, A_UPDATE, A_UPSERT, A_DELETE, A_HASH, A_EXTRACT, A_CONVERT };
enum conv_kind { CONV_NONE, CONV_INT, CONV_DOUBLE, CONV_STRING };

struct lg_attr_action {
    enum action_kind kind;
    const char *key;            /* may be NULL for delete/hash with only a pattern */
    lg_any_value *value;        /* insert/update/upsert with `value` */
    const char *from_attribute; /* ... or with from_attribute */
    pcre2_code *re;             /* delete/hash key pattern, extract value pattern */
    const char **group_names;   /* extract: name of capture group i (1-based) */
    uint32_t ngroups;
    enum conv_kind conv;
};

static const struct {
    const char *name;
    enum action_kind kind;
} action_names[] = {
    {"insert", A_INSERT}, {"update", A_UPDATE},   {"upsert", A_UPSERT},   {"delete", A_DELETE},
    {"hash", A_HASH},     {"extract", A_EXTRACT}, {"convert", A_CONVERT},
};

#define AV_CASE(x) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##x

/* ---- values ---- */

static bool parse_full_int(const char *s, long long *v)
{
    if (*s == '\0')
        return false;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static bool parse_full_double(const char *s, double *v)
{
    if (*s == '\0')
        return false;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return errno == 0 && *end == '\0' && isfinite(*v);
}

int lg_attr_value_from_node(const struct lg_node *n, struct lg_arena *a, lg_any_value **out, struct lg_err *err)
{
    if (n == NULL || n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "value must be a scalar (string, number or bool)");
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    if (v == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    opentelemetry__proto__common__v1__any_value__init(v);
    const char *s = n->scalar;
    long long i;
    double d;
    if (!n->quoted && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        v->value_case = AV_CASE(BOOL_VALUE);
        v->bool_value = s[0] == 't';
    } else if (!n->quoted && parse_full_int(s, &i)) {
        v->value_case = AV_CASE(INT_VALUE);
        v->int_value = i;
    } else if (!n->quoted && parse_full_double(s, &d)) {
        v->value_case = AV_CASE(DOUBLE_VALUE);
        v->double_value = d;
    } else {
        v->value_case = AV_CASE(STRING_VALUE);
        v->string_value = (char *)s;
    }
    *out = v;
    return LG_OK;
}

bool lg_any_value_equal(const lg_any_value *x, const lg_any_value *y)
{
    if (x == NULL || y == NULL)
        return x == y;
    if (x->value_case == AV_CASE(INT_VALUE) && y->value_case == AV_CASE(DOUBLE_VALUE))
        return (double)x->int_value == y->double_value;
    if (x->value_case == AV_CASE(DOUBLE_VALUE) && y->value_case == AV_CASE(INT_VALUE))
        return x->double_value == (double)y->int_value;
    if (x->value_case != y->value_case)
        return false;
    switch (x->value_case) {
    case AV_CASE(STRING_VALUE):
        return strcmp(x->string_value, y->string_value) == 0;
    case AV_CASE(BOOL_VALUE):
        return x->bool_value == y->bool_value;
    case AV_CASE(INT_VALUE):
        return x->int_value == y->int_value;
    case AV_CASE(DOUBLE_VALUE):
        return x->double_value == y->double_value;
    case AV_CASE(BYTES_VALUE):
        return x->bytes_value.len == y->bytes_value.len &&
               (x->bytes_value.len == 0 || memcmp(x->bytes_value.data, y->bytes_value.data, x->bytes_value.len) == 0);
    default:
        return false;
    }
}

/* ---- parsing ---- */

/* PCRE2_MATCH_INVALID_UTF: attribute text is not checked for UTF-8 on the way in, and a
 * UTF pattern must still match (or not) bytes that are not valid UTF-8 instead of failing,
 * as Go's regexp does: a key with a stray byte must not escape a delete pattern. */
pcre2_code *lg_conf_regex(const struct lg_node *n, const char *pattern, struct lg_err *err)
{
    int ecode;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ecode, &eoff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        lg_conf_error(err, n, "invalid pattern at offset %zu: %s", (size_t)eoff, (const char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* an interpreter fallback is fine */
    return re;
}

static const char *scalar_of(const struct lg_node *item, const char *key)
{
    const struct lg_node *n = lg_node_get(item, key);
    return n && n->type == LG_NODE_SCALAR && n->scalar[0] ? n->scalar : NULL;
}

static int parse_one(const struct lg_node *item, struct lg_arena *a, struct lg_attr_action *act, size_t *growth,
                     struct lg_err *err)
{
    static const char *const known[] = {"key", "value", "from_attribute", "from_context", "pattern",
                                         "converted_type", "action"};
    if (item->type != LG_NODE_MAP)
        return lg_conf_error(err, item, "an action must be a map with key and action");
    for (size_t i = 0; i < item->npairs; i++) {
        bool ok = false;
        for (size_t k = 0; k < LG_ARRAY_LEN(known) && !ok; k++)
            ok = strcmp(item->pairs[i].key, known[k]) == 0;
        if (!ok)
            return lg_conf_error(err, item->pairs[i].value,
                                 "unknown key \"%s\" (known: key, action, value, from_attribute, from_context, "
                                 "pattern, converted_type)",
                                 item->pairs[i].key);
    }
    const struct lg_node *action_node = lg_node_get(item, "action");
    const char *action = scalar_of(item, "action");
    if (action == NULL)
        return lg_conf_error(err, action_node ? action_node : item, "action is required");
    bool found = false;
    for (size_t i = 0; i < LG_ARRAY_LEN(action_names) && !found; i++)
        if (strcasecmp(action, action_names[i].name) == 0) {
            act->kind = action_names[i].kind;
            found = true;
        }
    if (!found)
        return lg_conf_error(err, action_node,
                             "unsupported action \"%s\" (insert, update, upsert, delete, hash, extract, convert)",
                             action);
    act->key = scalar_of(item, "key");
    const char *pattern = scalar_of(item, "pattern");
    const struct lg_node *value = lg_node_get(item, "value");
    bool has_value = value && !lg_node_is_null(value);
    act->from_attribute = scalar_of(item, "from_attribute");
    const char *from_context = scalar_of(item, "from_context");
    const char *conv = scalar_of(item, "converted_type");
    int sources = has_value + (act->from_attribute != NULL) + (from_context != NULL);
    if (from_context)
        return lg_conf_error(err, lg_node_get(item, "from_context"),
                             "from_context is not supported: request metadata is not carried down the pipeline");
    if ((act->kind == A_DELETE || act->kind == A_HASH) ? (!act->key && !pattern) : !act->key)
        return lg_conf_error(err, item, act->kind == A_DELETE || act->kind == A_HASH
                                            ? "at least one of key and pattern is required"
                                            : "key is required");
    if (conv && act->kind != A_CONVERT)
        return lg_conf_error(err, lg_node_get(item, "converted_type"), "converted_type is only for action convert");
    switch (act->kind) {
    case A_INSERT:
    case A_UPDATE:
    case A_UPSERT:
        if (sources != 1)
            return lg_conf_error(err, item, "exactly one of value and from_attribute is required for %s", action);
        if (pattern)
            return lg_conf_error(err, lg_node_get(item, "pattern"), "pattern is not used by %s", action);
        if (has_value) {
            int rc = lg_attr_value_from_node(value, a, &act->value, err);
            if (rc != LG_OK)
                return rc;
        }
        if (act->kind != A_UPDATE)
            (*growth)++;
        break;
    case A_DELETE:
    case A_HASH:
        if (sources)
            return lg_conf_error(err, item, "%s takes no value or from_attribute", action);
        if (pattern && (act->re = lg_conf_regex(lg_node_get(item, "pattern"), pattern, err)) == NULL)
            return LG_EINVAL;
        break;
    case A_EXTRACT: {
        if (sources)
            return lg_conf_error(err, item, "extract takes no value or from_attribute");
        if (!pattern)
            return lg_conf_error(err, item, "pattern is required for extract");
        const struct lg_node *pn = lg_node_get(item, "pattern");
        if ((act->re = lg_conf_regex(pn, pattern, err)) == NULL)
            return LG_EINVAL;
        uint32_t groups = 0, names = 0, entry = 0;
        PCRE2_SPTR table = NULL;
        pcre2_pattern_info(act->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        pcre2_pattern_info(act->re, PCRE2_INFO_NAMECOUNT, &names);
        pcre2_pattern_info(act->re, PCRE2_INFO_NAMEENTRYSIZE, &entry);
        pcre2_pattern_info(act->re, PCRE2_INFO_NAMETABLE, &table);
        if (groups == 0)
            return lg_conf_error(err, pn, "pattern contains no named groups");
        if (groups > 31)
            return lg_conf_error(err, pn, "pattern has more than 31 groups");
        if (names != groups)
            return lg_conf_error(err, pn, "pattern contains an unnamed group: every group needs a name");
        act->group_names = lg_arena_calloc(a, groups + 1, sizeof *act->group_names);
        if (act->group_names == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < names; i++) {
            PCRE2_SPTR e = table + (size_t)i * entry;
            uint32_t idx = ((uint32_t)e[0] << 8) | e[1];
            act->group_names[idx] = (const char *)(e + 2);
        }
        act->ngroups = groups;
        *growth += groups;
        break;
    }
    case A_CONVERT:
        if (sources || pattern)
            return lg_conf_error(err, item, "convert takes no value, from_attribute or pattern");
        if (!conv)
            return lg_conf_error(err, item, "converted_type is required for convert");
        if (strcmp(conv, "int") == 0)
            act->conv = CONV_INT;
        else if (strcmp(conv, "double") == 0)
            act->conv = CONV_DOUBLE;
        else if (strcmp(conv, "string") == 0)
            act->conv = CONV_STRING;
        else
            return lg_conf_error(err, lg_node_get(item, "converted_type"),
                                 "converted_type \"%s\" is not int, double or string", conv);
        break;
    }
    return LG_OK;
}

int lg_attr_actions_parse(const struct lg_node *seq, struct lg_arena *a, struct lg_attr_actions *out,
                          struct lg_err *err)
{
    memset(out, 0, sizeof *out);
    if (seq == NULL || lg_node_is_null(seq))
        return LG_OK;
    if (seq->type != LG_NODE_SEQ)
        return lg_conf_error(err, seq, "actions must be a list");
    out->v = lg_arena_calloc(a, seq->nitems ? seq->nitems : 1, sizeof *out->v);
    if (out->v == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < seq->nitems; i++) {
        int rc = parse_one(seq->items[i], a, &out->v[i], &out->max_growth, err);
        out->n = i + 1; /* so free() sees a compiled regex of this item too */
        if (rc != LG_OK) {
            lg_attr_actions_free(out);
            return rc;
        }
    }
    return LG_OK;
}

void lg_attr_actions_free(struct lg_attr_actions *acts)
{
    for (size_t i = 0; acts && i < acts->n; i++) {
        pcre2_code_free(acts->v[i].re);
        acts->v[i].re = NULL;
    }
}

/* ---- applying ---- */

struct work {
    struct lg_arena *a;
    lg_kv **kv;
    size_t n;
    bool owned; /* kv is our copy (else it is the caller's array) */
    size_t cap;
};

static int own(struct work *w, size_t growth)
{
    if (w->owned)
        return LG_OK;
    lg_kv **nk = lg_arena_alloc(w->a, (w->n + growth + 1) * sizeof *nk);
    if (nk == NULL)
        return LG_ENOMEM;
    if (w->n)
        memcpy(nk, w->kv, w->n * sizeof *nk);
    w->kv = nk;
    w->cap = w->n + growth;
    w->owned = true;
    return LG_OK;
}

static ssize_t find(const struct work *w, const char *key)
{
    for (size_t i = 0; i < w->n; i++)
        if (w->kv[i]->key && strcmp(w->kv[i]->key, key) == 0)
            return (ssize_t)i;
    return -1;
}

static lg_kv *new_kv(struct lg_arena *a, const char *key, lg_any_value *v)
{
    lg_kv *kv = lg_arena_alloc(a, sizeof *kv);
    if (kv == NULL)
        return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = lg_arena_strdup(a, key);
    kv->value = v;
    return kv->key ? kv : NULL;
}

/** A copy of v in the batch arena (the config's value must not outlive its component). */
static lg_any_value *copy_value(struct lg_arena *a, const lg_any_value *v)
{
    lg_any_value *c = lg_arena_memdup(a, v, sizeof *v);
    if (c && v->value_case == AV_CASE(STRING_VALUE) && (c->string_value = lg_arena_strdup(a, v->string_value)) == NULL)
        return NULL;
    return c;
}

static lg_any_value *str_value(struct lg_arena *a, const char *s, size_t len)
{
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    if (v == NULL)
        return NULL;
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = AV_CASE(STRING_VALUE);
    v->string_value = lg_arena_strndup(a, s, len);
    return v->string_value ? v : NULL;
}

/** Sets key to v (copied): replaces the KeyValue at `at`, or appends when at < 0. */
static int put(struct work *w, ssize_t at, const char *key, const lg_any_value *v, size_t growth)
{
    if (own(w, growth) != LG_OK)
        return LG_ENOMEM;
    lg_any_value *cv = copy_value(w->a, v);
    lg_kv *kv = cv ? new_kv(w->a, key, cv) : NULL;
    if (kv == NULL)
        return LG_ENOMEM;
    if (at >= 0) {
        w->kv[at] = kv;
    } else {
        if (w->n >= w->cap)
            return LG_ENOMEM; /* growth was sized at parse time; cannot happen */
        w->kv[w->n++] = kv;
    }
    return LG_OK;
}

static void hash_value(const lg_any_value *v, char hex[65], bool *ok)
{
    uint8_t buf[8];
    const uint8_t *p = buf;
    size_t len = 0;
    *ok = true;
    switch (v ? v->value_case : 0) {
    case AV_CASE(STRING_VALUE):
        p = (const uint8_t *)v->string_value;
        len = strlen(v->string_value);
        break;
    case AV_CASE(BOOL_VALUE):
        buf[0] = v->bool_value ? 1 : 0;
        len = 1;
        break;
    case AV_CASE(INT_VALUE):
    case AV_CASE(DOUBLE_VALUE): {
        uint64_t u;
        if (v->value_case == AV_CASE(INT_VALUE))
            u = (uint64_t)v->int_value;
        else
            memcpy(&u, &v->double_value, 8);
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(u >> (8 * i)); /* little endian, as the Collector */
        len = 8;
        break;
    }
    default:
        *ok = false; /* arrays, maps, bytes: the Collector leaves an empty string */
        hex[0] = '\0';
        return;
    }
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(p, len, md);
    for (size_t i = 0; i < sizeof md; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int hash_at(struct work *w, size_t i, size_t growth)
{
    char hex[65];
    bool ok;
    hash_value(w->kv[i]->value, hex, &ok);
    lg_any_value *v = str_value(w->a, hex, strlen(hex));
    if (v == NULL || own(w, growth) != LG_OK)
        return LG_ENOMEM;
    lg_kv *kv = new_kv(w->a, w->kv[i]->key, v);
    if (kv == NULL)
        return LG_ENOMEM;
    w->kv[i] = kv;
    return LG_OK;
}

static bool key_matches(const pcre2_code *re, pcre2_match_data *md, const char *key)
{
    return re && key && pcre2_match(re, (PCRE2_SPTR)key, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0;
}

static int do_convert(struct work *w, size_t i, enum conv_kind conv, size_t growth)
{
    const lg_any_value *v = w->kv[i]->value;
    if (v == NULL)
        return LG_OK;
    lg_any_value nv;
    opentelemetry__proto__common__v1__any_value__init(&nv);
    char text[64];
    switch (conv) {
    case CONV_INT: {
        long long ll;
        double d;
        if (v->value_case == AV_CASE(INT_VALUE))
            return LG_OK;
        nv.value_case = AV_CASE(INT_VALUE);
        if (v->value_case == AV_CASE(DOUBLE_VALUE) && isfinite(v->double_value) && fabs(v->double_value) < 9.2e18)
            nv.int_value = (int64_t)v->double_value;
        else if (v->value_case == AV_CASE(BOOL_VALUE))
            nv.int_value = v->bool_value;
        else if (v->value_case == AV_CASE(STRING_VALUE) && parse_full_int(v->string_value, &ll))
            nv.int_value = ll;
        else if (v->value_case == AV_CASE(STRING_VALUE) && parse_full_double(v->string_value, &d) && fabs(d) < 9.2e18)
            nv.int_value = (int64_t)d;
        else
            return LG_OK; /* not convertible: left as is */
        break;
    }
    case CONV_DOUBLE: {
        double d;
        if (v->value_case == AV_CASE(DOUBLE_VALUE))
            return LG_OK;
        nv.value_case = AV_CASE(DOUBLE_VALUE);
        if (v->value_case == AV_CASE(INT_VALUE))
            nv.double_value = (double)v->int_value;
        else if (v->value_case == AV_CASE(BOOL_VALUE))
            nv.double_value = v->bool_value;
        else if (v->value_case == AV_CASE(STRING_VALUE) && parse_full_double(v->string_value, &d))
            nv.double_value = d;
        else
            return LG_OK;
        break;
    }
    case CONV_STRING:
        if (v->value_case == AV_CASE(STRING_VALUE))
            return LG_OK;
        if (v->value_case == AV_CASE(INT_VALUE))
            snprintf(text, sizeof text, "%lld", (long long)v->int_value);
        else if (v->value_case == AV_CASE(BOOL_VALUE))
            snprintf(text, sizeof text, "%s", v->bool_value ? "true" : "false");
        else if (v->value_case == AV_CASE(DOUBLE_VALUE)) {
            /* the shortest text that reads back to the same double, as Go prints it */
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(text, sizeof text, "%.*g", prec, v->double_value);
                if (strtod(text, NULL) == v->double_value)
                    break;
            }
        } else
            return LG_OK;
        nv.value_case = AV_CASE(STRING_VALUE);
        nv.string_value = text;
        break;
    default:
        return LG_OK;
    }
    return put(w, (ssize_t)i, w->kv[i]->key, &nv, growth);
}

int lg_attr_actions_apply(const struct lg_attr_actions *acts, struct lg_arena *a, lg_kv ***attrs, size_t *n,
                          bool *changed)
{
    struct work w = {.a = a, .kv = *attrs, .n = *n};
    pcre2_match_data *md = NULL;
    int rc = LG_OK;
    for (size_t ai = 0; ai < acts->n && rc == LG_OK; ai++) {
        const struct lg_attr_action *act = &acts->v[ai];
        if (act->re && md == NULL && (md = pcre2_match_data_create(32, NULL)) == NULL) {
            rc = LG_ENOMEM;
            break;
        }
        ssize_t at = act->key ? find(&w, act->key) : -1;
        switch (act->kind) {
        case A_INSERT:
        case A_UPDATE:
        case A_UPSERT: {
            if ((act->kind == A_INSERT && at >= 0) || (act->kind == A_UPDATE && at < 0))
                break;
            const lg_any_value *v = act->value;
            if (act->from_attribute) {
                ssize_t src = find(&w, act->from_attribute);
                if (src < 0 || w.kv[src]->value == NULL)
                    break;
                v = w.kv[src]->value;
            }
            rc = put(&w, at, act->key, v, acts->max_growth);
            break;
        }
        case A_DELETE:
            for (size_t i = 0; i < w.n;) {
                const char *k = w.kv[i]->key;
                bool del = (act->key && k && strcmp(k, act->key) == 0) || key_matches(act->re, md, k);
                if (!del) {
                    i++;
                    continue;
                }
                if ((rc = own(&w, acts->max_growth)) != LG_OK)
                    break;
                memmove(&w.kv[i], &w.kv[i + 1], (w.n - i - 1) * sizeof *w.kv);
                w.n--;
            }
            break;
        case A_HASH:
            for (size_t i = 0; i < w.n && rc == LG_OK; i++) {
                const char *k = w.kv[i]->key;
                if ((act->key && k && strcmp(k, act->key) == 0) || key_matches(act->re, md, k))
                    rc = hash_at(&w, i, acts->max_growth);
            }
            break;
        case A_EXTRACT: {
            const char *s = at >= 0 ? lg_any_str(w.kv[at]->value) : NULL;
            if (s == NULL)
                break;
            int m = pcre2_match(act->re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
            if (m < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            for (uint32_t g = 1; g <= act->ngroups && rc == LG_OK; g++) {
                size_t b = ov[2 * g], e = ov[2 * g + 1];
                lg_any_value sv;
                opentelemetry__proto__common__v1__any_value__init(&sv);
                sv.value_case = AV_CASE(STRING_VALUE);
                /* an unset group extracts "", as Go's FindStringSubmatch gives */
                char *piece = b == PCRE2_UNSET ? lg_arena_strdup(a, "") : lg_arena_strndup(a, s + b, e - b);
                if (piece == NULL) {
                    rc = LG_ENOMEM;
                    break;
                }
                sv.string_value = piece;
                rc = put(&w, find(&w, act->group_names[g]), act->group_names[g], &sv, acts->max_growth);
            }
            break;
        }
        case A_CONVERT:
            if (at >= 0)
                rc = do_convert(&w, (size_t)at, act->conv, acts->max_growth);
            break;
        }
    }
    pcre2_match_data_free(md);
    if (rc == LG_OK && w.owned) {
        *attrs = w.kv;
        *n = w.n;
        *changed = true;
    }
    return rc;
}
