/* processors/redaction.c — the `redaction` processor: the OpenTelemetry Collector's
 * redactionprocessor (allow_all_keys, allowed_keys, ignored_keys, ignored_key_patterns,
 * blocked_key_patterns, blocked_values, allowed_values, redact_all_types, hash_function,
 * masking_string, summary) with the same defaults and order of rules, plus two presets of
 * ours: `llm_content: drop|hash|keep` for every prompt / completion / tool attribute and
 * content event listed in core/llm_content.h, and `pii` masks (processors/pii.h) that
 * replace e-mail addresses, card numbers, bearer tokens, API keys and IP addresses inside
 * values. Documented in docs/processors/redaction.md.
 *
 * What it looks at, as the Collector does: resource attributes, span attributes and span
 * event attributes (traces); resource attributes, log record attributes and the log body
 * (logs); resource attributes and data point attributes (metrics). Scope attributes, span
 * links and span names are not touched.
 *
 * Batches are read-only (core/batch.h): when anything changes, the processor forwards a
 * copy-on-write clone holding new wrappers and copies of only the changed spans / log
 * records / metrics, with the original as a dependency; a batch where nothing matches is
 * forwarded as it is. The matching path allocates nothing: rules are decided first, and
 * memory is taken from the clone's arena only once a value really changes.
 *
 * Regexes (users' and the PII masks) are compiled once at create() with PCRE2 (JIT when
 * available). consume() runs on many threads at once: each call borrows a pcre2_match_data
 * from a small mutex-guarded pool, so the lock is taken twice per batch, not per value. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <inttypes.h>
#include <openssl/evp.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/component.h"
#include "../core/llm.h"
#include "../core/llm_content.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "pii.h"

/* ---- configuration ---- */

struct pii_conf {
    bool email;
    bool credit_card;
    bool bearer_token;
    bool api_keys;
    bool ip;
};

struct redaction_conf {
    bool allow_all_keys;
    struct lg_strlist allowed_keys;
    struct lg_strlist ignored_keys;
    struct lg_strlist ignored_key_patterns;
    struct lg_strlist blocked_key_patterns;
    struct lg_strlist blocked_values;
    struct lg_strlist allowed_values;
    bool redact_all_types;
    const char *hash_function;
    const char *masking_string;
    const char *summary;
    const char *llm_content;
    struct pii_conf pii;
    bool url_sanitizer; /* only ever false: enabled sanitizers are refused at parse time */
    bool db_sanitizer;
};

/* The Collector's url_sanitizer / db_sanitizer are not implemented: a config that turns one
 * on is refused (naming the path) rather than silently forwarding unsanitised data. A block
 * with every `enabled: false` is accepted, so shared Collector configs still load. */
static int refuse_enabled(const struct lg_node *n, const char *what, struct lg_err *err)
{
    if (n->type == LG_NODE_NULL)
        return LG_OK;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map");
    for (size_t i = 0; i < n->npairs; i++) {
        const struct lg_node *v = n->pairs[i].value;
        if (strcmp(n->pairs[i].key, "enabled") == 0) {
            bool on = false;
            int rc = lg_conf_parse_bool(v, &on, err);
            if (rc)
                return rc;
            if (on)
                return lg_conf_error(err, v,
                                     "%s is not implemented by llmgate's redaction processor; "
                                     "remove it or set enabled: false",
                                     what);
        } else if (v->type == LG_NODE_MAP) {
            int rc = refuse_enabled(v, what, err);
            if (rc)
                return rc;
        }
    }
    return LG_OK;
}

static int parse_url_sanitizer(const struct lg_node *n, void *dst, struct lg_arena *a,
                               struct lg_err *err)
{
    LG_UNUSED(dst);
    LG_UNUSED(a);
    return refuse_enabled(n, "url_sanitizer (URL path sanitising)", err);
}

static int parse_db_sanitizer(const struct lg_node *n, void *dst, struct lg_arena *a,
                              struct lg_err *err)
{
    LG_UNUSED(dst);
    LG_UNUSED(a);
    return refuse_enabled(n, "db_sanitizer (database query sanitising)", err);
}

static const struct lg_conf_field pii_fields[] = {
    LG_CONF_BOOL("email", "false", struct pii_conf, email,
                 "mask e-mail addresses in values as [EMAIL]"),
    LG_CONF_BOOL("credit_card", "false", struct pii_conf, credit_card,
                 "mask Luhn-valid 13-19 digit card numbers (spaces/dashes allowed) as [CARD]"),
    LG_CONF_BOOL("bearer_token", "false", struct pii_conf, bearer_token,
                 "mask the credential after \"Bearer \" as [TOKEN]"),
    LG_CONF_BOOL("api_keys", "false", struct pii_conf, api_keys,
                 "mask OpenAI/Anthropic sk-, AWS AKIA/ASIA, Google AIza, GitHub, Slack, Stripe, "
                 "Hugging Face keys as [API_KEY]"),
    LG_CONF_BOOL("ip", "false", struct pii_conf, ip, "mask IPv4 and IPv6 addresses as [IP]"),
    LG_CONF_END,
};

static const struct lg_conf_field redaction_fields[] = {
    LG_CONF_BOOL("allow_all_keys", "false", struct redaction_conf, allow_all_keys,
                 "keep every attribute key; false (default): keys not in allowed_keys are REMOVED"),
    LG_CONF_STRLIST(
        "allowed_keys", struct redaction_conf, allowed_keys,
        "attribute keys kept (exact names); empty removes every attribute unless allow_all_keys"),
    LG_CONF_STRLIST("ignored_keys", struct redaction_conf, ignored_keys,
                    "attribute keys passed through untouched (never removed or masked)"),
    LG_CONF_STRLIST("ignored_key_patterns", struct redaction_conf, ignored_key_patterns,
                    "regexes: matching keys pass through untouched"),
    LG_CONF_STRLIST("blocked_key_patterns", struct redaction_conf, blocked_key_patterns,
                    "regexes: the whole value of a matching key is masked"),
    LG_CONF_STRLIST("blocked_values", struct redaction_conf, blocked_values,
                    "regexes: the matching parts of values are masked"),
    LG_CONF_STRLIST("allowed_values", struct redaction_conf, allowed_values,
                    "regexes: a value matching one is left as it is (wins over blocked_*)"),
    LG_CONF_BOOL("redact_all_types", "false", struct redaction_conf, redact_all_types,
                 "also check non-string values through their string form (ints, arrays, maps)"),
    LG_CONF_STRING(
        "hash_function", "", struct redaction_conf, hash_function,
        "md5, sha1, sha3 (SHA3-256) or sha256: hex hash instead of the mask; empty: mask"),
    LG_CONF_STRING("masking_string", "****", struct redaction_conf, masking_string,
                   "text written in place of a blocked match (not with hash_function)"),
    LG_CONF_STRING("summary", "", struct redaction_conf, summary,
                   "redaction.* attributes: debug (counts and key names), info (counts), silent or "
                   "empty (none)"),
    LG_CONF_STRING("llm_content", "keep", struct redaction_conf, llm_content,
                   "prompt/completion/tool attributes and content events: keep, drop or hash"),
    LG_CONF_SECTION("pii", struct redaction_conf, pii, pii_fields,
                    "masks for personal data and secrets inside values"),
    LG_CONF_CUSTOM("url_sanitizer", NULL, struct redaction_conf, url_sanitizer, parse_url_sanitizer,
                   "Collector URL sanitiser: not implemented, refused when enabled"),
    LG_CONF_CUSTOM("db_sanitizer", NULL, struct redaction_conf, db_sanitizer, parse_db_sanitizer,
                   "Collector database query sanitiser: not implemented, refused when enabled"),
    LG_CONF_END,
};

/* ---- state ---- */

enum summary_level { SUMMARY_SILENT, SUMMARY_INFO, SUMMARY_DEBUG };
enum llm_mode { LLM_KEEP, LLM_DROP, LLM_HASH };
#define MASK_BLOCKED (-1) /* range kind of a blocked_values match (PII kinds are >= 0) */

struct regex_list {
    pcre2_code **re;
    size_t n;
};

struct redaction_state {
    struct lg_component *c;
    const struct redaction_conf *conf;
    const char **allowed; /* sorted, for bsearch */
    size_t nallowed;
    const char **ignored;
    size_t nignored;
    struct regex_list ignored_kp, blocked_kp, blocked_v, allowed_v;
    EVP_MD *hash_md;    /* hash_function, NULL: mask */
    EVP_MD *content_md; /* llm_content: hash (hash_function, else SHA-256) */
    size_t masklen;
    enum summary_level summary;
    enum llm_mode llm;
    struct lg_pii *pii;
    pthread_mutex_t pool_lock;
    pcre2_match_data **pool;
    size_t npool, cappool;
    struct lg_counter *removed, *masked, *content_dropped, *content_hashed, *events_dropped,
        *events_hashed, *refused[LG_SIGNAL_COUNT];
    struct lg_counter *pii_count[LG_PII_KIND_COUNT];
};

/* ---- summary names (the Collector's) ---- */

#define S_REDACTED_KEYS      "redaction.redacted.keys"
#define S_REDACTED_COUNT     "redaction.redacted.count"
#define S_MASKED_KEYS        "redaction.masked.keys"
#define S_MASKED_COUNT       "redaction.masked.count"
#define S_ALLOWED_KEYS       "redaction.allowed.keys"
#define S_ALLOWED_COUNT      "redaction.allowed.count"
#define S_IGNORED_COUNT      "redaction.ignored.count"
#define S_BODY_MASKED_KEYS   "redaction.body.masked.keys"
#define S_BODY_MASKED_COUNT  "redaction.body.masked.count"
#define S_BODY_ALLOWED_KEYS  "redaction.body.allowed.keys"
#define S_BODY_ALLOWED_COUNT "redaction.body.allowed.count"

/* ---- small growable buffers (malloc'd scratch, reused for a whole batch) ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

struct keyvec {
    const char **v;
    size_t n, cap;
    bool oom;
};

static void kv_push(struct keyvec *k, const char *s)
{
    if (k->n == k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 8;
        const char **nv = realloc(k->v, nc * sizeof *nv);
        if (nv == NULL) {
            k->oom = true;
            return;
        }
        k->v = nv;
        k->cap = nc;
    }
    k->v[k->n++] = s;
}

/* ---- per-consume context ---- */

/* lg_llm_content_attr() walks its whole table per call; the same few dozen keys repeat on
 * every span, so each consume() remembers answers in a small direct-mapped cache. */
#define CCACHE_SIZE 256
struct ccache_ent {
    const char *key; /* NULL: empty */
    size_t len;
    uint32_t h;
    enum lg_llm_content_kind kind;
};

struct ctx {
    struct redaction_state *st;
    struct ccache_ent *cc; /* CCACHE_SIZE entries (on consume()'s stack), when llm != keep */
    struct lg_batch *b;    /* the batch we were given (read-only) */
    struct lg_batch *nb;   /* our clone, created on the first change */
    pcre2_match_data *md;
    struct sbuf scratch, str;
    struct keyvec redacted, masked, allowed;
    int rc; /* first error (LG_ENOMEM) */
    /* counts, added to the counters once per batch */
    uint64_t n_removed, n_masked, n_cdropped, n_chashed, n_edropped, n_ehashed;
    uint64_t n_pii[LG_PII_KIND_COUNT];
};


/* The arena of our clone, cloning on first use; NULL (and x->rc set) on OOM. */
static struct lg_arena *ctx_arena(struct ctx *x)
{
    if (x->nb == NULL) {
        x->nb = lg_batch_clone_shallow(x->b);
        if (x->nb == NULL) {
            x->rc = LG_ENOMEM;
            return NULL;
        }
    }
    return x->nb->arena;
}

/* ---- rules ---- */

static enum lg_llm_content_kind content_kind(struct ctx *x, const char *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    struct ccache_ent *e = &x->cc[h & (CCACHE_SIZE - 1)];
    if (e->key && e->h == h && e->len == len && memcmp(e->key, key, len) == 0)
        return e->kind;
    *e = (struct ccache_ent){key, len, h, lg_llm_content_attr(key, len)};
    return e->kind;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool in_sorted(const char *const *v, size_t n, const char *k)
{
    return n && bsearch(&k, v, n, sizeof *v, cmp_str) != NULL;
}

static bool re_any(const struct regex_list *l, const char *s, size_t len, pcre2_match_data *md)
{
    for (size_t i = 0; i < l->n; i++)
        if (pcre2_match(l->re[i], (PCRE2_SPTR)s, len, 0, 0, md, NULL) >= 0)
            return true;
    return false;
}

/* The string form of a value, as the Collector's AsString: ints in decimal, doubles in the
 * shortest form that reads back, bools true/false, bytes in base64, arrays and maps as JSON. */
static void any_to_str(const lg_any_value *v, struct sbuf *b, bool quote_strings);

static void json_str(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            sb_put(b, esc, 2);
        } else if (ch < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", ch);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, s, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void any_to_str(const lg_any_value *v, struct sbuf *b, bool quote_strings)
{
    char num[64];
    if (v == NULL) {
        if (quote_strings)
            sb_puts(b, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        if (quote_strings)
            json_str(b, v->string_value ? v->string_value : "");
        else
            sb_puts(b, v->string_value ? v->string_value : "");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        sb_puts(b, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        snprintf(num, sizeof num, "%" PRId64, v->int_value);
        sb_puts(b, num);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE: {
        snprintf(num, sizeof num, "%.15g", v->double_value);
        if (strtod(num, NULL) != v->double_value)
            snprintf(num, sizeof num, "%.17g", v->double_value);
        sb_puts(b, num);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        size_t n = v->bytes_value.len;
        char *tmp = malloc(4 * ((n + 2) / 3) + 1);
        if (tmp == NULL) {
            b->oom = true;
            return;
        }
        int w = n ? EVP_EncodeBlock((unsigned char *)tmp, v->bytes_value.data, (int)n) : 0;
        if (quote_strings)
            sb_put(b, "\"", 1);
        sb_put(b, tmp, (size_t)(w > 0 ? w : 0));
        if (quote_strings)
            sb_put(b, "\"", 1);
        free(tmp);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const lg_array_value *a = v->array_value;
        sb_put(b, "[", 1);
        for (size_t i = 0; a && i < a->n_values; i++) {
            if (i)
                sb_put(b, ",", 1);
            any_to_str(a->values[i], b, true);
        }
        sb_put(b, "]", 1);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const lg_kvlist *l = v->kvlist_value;
        sb_put(b, "{", 1);
        for (size_t i = 0; l && i < l->n_values; i++) {
            if (i)
                sb_put(b, ",", 1);
            json_str(b, l->values[i]->key ? l->values[i]->key : "");
            sb_put(b, ":", 1);
            any_to_str(l->values[i]->value, b, true);
        }
        sb_put(b, "}", 1);
        break;
    }
    default:
        if (quote_strings)
            sb_puts(b, "null");
        break;
    }
}

/* Appends the lowercase hex digest of s[0..n) to out. */
static void hash_hex(const EVP_MD *md, const char *s, size_t n, struct sbuf *out)
{
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    if (!EVP_Digest(s, n, dig, &dl, md, NULL)) {
        out->oom = true;
        return;
    }
    static const char hx[] = "0123456789abcdef";
    char hex[2 * EVP_MAX_MD_SIZE];
    for (unsigned i = 0; i < dl; i++) {
        hex[2 * i] = hx[dig[i] >> 4];
        hex[2 * i + 1] = hx[dig[i] & 15];
    }
    sb_put(out, hex, 2 * (size_t)dl);
}

/* A new string value in the clone's arena; NULL on OOM. */
static lg_any_value *new_str_value(struct ctx *x, const char *s, size_t n)
{
    struct lg_arena *a = ctx_arena(x);
    if (a == NULL)
        return NULL;
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    char *copy = lg_arena_strndup(a, s, n);
    if (v == NULL || copy == NULL) {
        x->rc = LG_ENOMEM;
        return NULL;
    }
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = copy;
    return v;
}

/* The value hashed whole with `md` (string form for non-strings). */
static lg_any_value *hash_value(struct ctx *x, const lg_any_value *v, const EVP_MD *md)
{
    x->str.len = 0;
    any_to_str(v, &x->str, false);
    x->scratch.len = 0;
    hash_hex(md, x->str.p ? x->str.p : "", x->str.len, &x->scratch);
    if (x->str.oom || x->scratch.oom) {
        x->rc = LG_ENOMEM;
        return NULL;
    }
    return new_str_value(x, x->scratch.p, x->scratch.len);
}

/* The whole value masked: the hash of its string form, or masking_string. */
static lg_any_value *mask_whole(struct ctx *x, const lg_any_value *v)
{
    if (x->st->hash_md)
        return hash_value(x, v, x->st->hash_md);
    return new_str_value(x, x->st->conf->masking_string, x->st->masklen);
}

enum value_outcome { V_KEEP, V_ALLOWED, V_MASKED, V_ERROR };

/* allowed_values, blocked_key_patterns, blocked_values and the PII masks over one value.
 * `key` NULL for a log body. On V_MASKED, *out is the new value. */
static enum value_outcome check_value(struct ctx *x, const char *key, const lg_any_value *v,
                                      lg_any_value **out)
{
    struct redaction_state *st = x->st;
    const char *s;
    size_t len;
    bool is_str =
        v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    if (is_str) {
        s = v->string_value ? v->string_value : "";
        len = strlen(s);
    } else if (st->conf->redact_all_types && v) {
        x->str.len = 0;
        any_to_str(v, &x->str, false);
        if (x->str.oom) {
            x->rc = LG_ENOMEM;
            return V_ERROR;
        }
        s = x->str.p ? x->str.p : "";
        len = x->str.len;
    } else {
        /* the Collector reads a non-string as "": only a blocked key masks it */
        if (key && st->blocked_kp.n && re_any(&st->blocked_kp, key, strlen(key), x->md)) {
            *out = mask_whole(x, v);
            return *out ? V_MASKED : V_ERROR;
        }
        return V_KEEP;
    }
    if (st->allowed_v.n && re_any(&st->allowed_v, s, len, x->md))
        return V_ALLOWED;
    if (key && st->blocked_kp.n && re_any(&st->blocked_kp, key, strlen(key), x->md)) {
        *out = mask_whole(x, v);
        return *out ? V_MASKED : V_ERROR;
    }
    struct lg_pii_ranges r;
    lg_pii_ranges_init(&r);
    for (size_t i = 0; i < st->blocked_v.n; i++) {
        size_t off = 0;
        while (off <= len) {
            int rc = pcre2_match(st->blocked_v.re[i], (PCRE2_SPTR)s, len, off, 0, x->md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH)
                break;
            if (rc < 0) { /* a match limit: mask the rest rather than pass it unchecked */
                lg_pii_ranges_add(&r, off, len, MASK_BLOCKED);
                break;
            }
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(x->md);
            if (ov[1] <= ov[0]) { /* empty match: step on */
                off = (ov[1] > off ? ov[1] : off) + 1;
                continue;
            }
            lg_pii_ranges_add(&r, ov[0], ov[1], MASK_BLOCKED);
            off = ov[1];
        }
    }
    lg_pii_scan(st->pii, s, len, x->md, &r);
    if (r.n == 0) {
        lg_pii_ranges_free(&r);
        return V_KEEP;
    }
    if (r.oom) {
        lg_pii_ranges_free(&r);
        x->rc = LG_ENOMEM;
        return V_ERROR;
    }
    lg_pii_ranges_normalise(&r);
    /* splice: s may point into x->str, so build in x->scratch */
    x->scratch.len = 0;
    size_t pos = 0;
    for (size_t i = 0; i < r.n; i++) {
        const struct lg_pii_match *m = &r.v[i];
        sb_put(&x->scratch, s + pos, m->start - pos);
        if (st->hash_md)
            hash_hex(st->hash_md, s + m->start, m->end - m->start, &x->scratch);
        else if (m->kind == MASK_BLOCKED)
            sb_put(&x->scratch, st->conf->masking_string, st->masklen);
        else
            sb_puts(&x->scratch, lg_pii_kind_mask((enum lg_pii_kind)m->kind));
        if (m->kind >= 0)
            x->n_pii[m->kind]++;
        pos = m->end;
    }
    sb_put(&x->scratch, s + pos, len - pos);
    lg_pii_ranges_free(&r);
    if (x->scratch.oom) {
        x->rc = LG_ENOMEM;
        return V_ERROR;
    }
    *out = new_str_value(x, x->scratch.p ? x->scratch.p : "", x->scratch.len);
    return *out ? V_MASKED : V_ERROR;
}

/* How a map of attributes is treated. */
enum map_mode {
    MAP_NORMAL,       /* the rules, with llm_content per key */
    MAP_CONTENT_HASH, /* a content event's attributes: every value is content (hashed) */
    MAP_CONTENT_DROP, /* a content log record: every attribute but event.name is content */
};

static int add_summary(struct ctx *x, lg_kv ***attrs, size_t *n, struct keyvec *keys,
                       const char *keys_name, const char *count_name);

/* Runs the rules over one attribute map. Returns 1 with *out and *nout set to a new array in the
 * clone's arena when anything changed, 0 when nothing did, LG_ENOMEM on failure. */
static int process_map(struct ctx *x, lg_kv *const *attrs, size_t n, enum map_mode mode,
                       lg_kv ***out, size_t *nout)
{
    struct redaction_state *st = x->st;
    const struct redaction_conf *cf = st->conf;
    lg_kv **arr = NULL; /* the new array, once something changed */
    size_t len = 0;
    size_t nignored = 0;
    x->redacted.n = x->masked.n = x->allowed.n = 0;
    for (size_t i = 0; i < n; i++) {
        const lg_kv *kv = attrs[i];
        if (kv == NULL) { /* never from the decoder; kept as it is */
            if (arr)
                arr[len++] = NULL;
            continue;
        }
        const char *key = kv->key ? kv->key : "";
        size_t klen = strlen(key);
        enum { KEEP, REMOVE, REPLACE } act = KEEP;
        lg_any_value *nv = NULL;
        enum lg_llm_content_kind content = LG_LLM_CONTENT_NONE;
        if (mode != MAP_NORMAL)
            content = strcmp(key, "event.name") == 0 ? LG_LLM_CONTENT_NONE : LG_LLM_CONTENT_PROMPT;
        else if (st->llm != LLM_KEEP)
            content = content_kind(x, key, klen);
        /* Summary keys that arrive (an earlier redaction's, or a client's) go through the
         * same rules as any key, as in the Collector: a client must not smuggle values past
         * the masks under a redaction.* name. What survives is merged into below. */
        if (content != LG_LLM_CONTENT_NONE &&
                   (st->llm == LLM_DROP || mode == MAP_CONTENT_DROP)) {
            act = REMOVE;
            x->n_cdropped++;
            kv_push(&x->redacted, key);
        } else if (content == LG_LLM_CONTENT_NONE && (in_sorted(st->ignored, st->nignored, key) ||
                                                      re_any(&st->ignored_kp, key, klen, x->md))) {
            nignored++;
        } else if (!cf->allow_all_keys && !in_sorted(st->allowed, st->nallowed, key)) {
            act = REMOVE;
            x->n_removed++;
            kv_push(&x->redacted, key);
        } else if (content != LG_LLM_CONTENT_NONE) {
            nv = hash_value(x, kv->value, st->content_md);
            if (nv == NULL)
                return x->rc ? x->rc : LG_ENOMEM;
            act = REPLACE;
            x->n_chashed++;
            kv_push(&x->masked, key);
        } else {
            switch (check_value(x, key, kv->value, &nv)) {
            case V_ALLOWED: kv_push(&x->allowed, key); break;
            case V_MASKED:
                act = REPLACE;
                x->n_masked++;
                kv_push(&x->masked, key);
                break;
            case V_ERROR: return x->rc ? x->rc : LG_ENOMEM;
            case V_KEEP: break;
            }
        }
        if (act != KEEP && arr == NULL) {
            struct lg_arena *a = ctx_arena(x);
            arr = a ? lg_arena_alloc(a, (n + 1) * sizeof *arr) : NULL;
            if (arr == NULL)
                return LG_ENOMEM;
            memcpy(arr, attrs, i * sizeof *arr);
            len = i;
        }
        if (act == REPLACE) {
            lg_kv *nkv = lg_arena_alloc(x->nb->arena, sizeof *nkv);
            if (nkv == NULL)
                return LG_ENOMEM;
            opentelemetry__proto__common__v1__key_value__init(nkv);
            nkv->key = kv->key;
            nkv->value = nv;
            arr[len++] = nkv;
        } else if (act == KEEP && arr != NULL) {
            arr[len++] = (lg_kv *)kv;
        }
    }
    if (x->redacted.oom || x->masked.oom || x->allowed.oom)
        return LG_ENOMEM;
    bool summarise =
        st->summary != SUMMARY_SILENT && (x->redacted.n || x->masked.n || x->allowed.n || nignored);
    if (arr == NULL && !summarise)
        return 0;
    if (arr == NULL) {
        struct lg_arena *a = ctx_arena(x);
        arr = a ? lg_arena_alloc(a, (n + 1) * sizeof *arr) : NULL;
        if (arr == NULL)
            return LG_ENOMEM;
        memcpy(arr, attrs, n * sizeof *arr);
        len = n;
    }
    if (summarise) {
        int rc = add_summary(x, &arr, &len, &x->redacted, S_REDACTED_KEYS, S_REDACTED_COUNT);
        if (rc == LG_OK)
            rc = add_summary(x, &arr, &len, &x->masked, S_MASKED_KEYS, S_MASKED_COUNT);
        if (rc == LG_OK)
            rc = add_summary(x, &arr, &len, &x->allowed, S_ALLOWED_KEYS, S_ALLOWED_COUNT);
        if (rc == LG_OK && nignored) {
            int64_t prev = 0;
            (void)lg_any_int(lg_attr_find(arr, len, S_IGNORED_COUNT), &prev);
            struct lg_attr_set set = {
                .key = S_IGNORED_COUNT, .kind = LG_ATTR_INT, .i = prev + (int64_t)nignored};
            rc = lg_attrs_set(x->nb->arena, &arr, &len, &set, 1);
        }
        if (rc != LG_OK)
            return rc;
    }
    *out = arr;
    *nout = len;
    return 1;
}

/* Writes `<keys_name>` (debug: sorted, comma-joined, merged with an existing list) and
 * `<count_name>` (info and debug: added to an existing count), as the Collector does. */
static int add_summary(struct ctx *x, lg_kv ***attrs, size_t *n, struct keyvec *keys,
                       const char *keys_name, const char *count_name)
{
    if (keys->n == 0)
        return LG_OK;
    size_t count = keys->n; /* this pass's; keys may grow with an earlier list's names below */
    struct lg_attr_set set[2];
    size_t ns = 0;
    if (x->st->summary == SUMMARY_DEBUG && keys_name) {
        const char *prev = lg_any_str(lg_attr_find(*attrs, *n, keys_name));
        /* split the existing list into the same vector so one sort orders both */
        char *prev_copy = NULL;
        if (prev && *prev) {
            prev_copy = strdup(prev);
            if (prev_copy == NULL)
                return LG_ENOMEM;
            for (char *save = NULL, *t = strtok_r(prev_copy, ",", &save); t;
                 t = strtok_r(NULL, ",", &save))
                kv_push(keys, t);
        }
        qsort(keys->v, keys->n, sizeof *keys->v, cmp_str);
        x->scratch.len = 0;
        for (size_t i = 0; i < keys->n; i++) {
            if (i)
                sb_put(&x->scratch, ",", 1);
            sb_puts(&x->scratch, keys->v[i]);
        }
        free(prev_copy);
        if (x->scratch.oom || keys->oom)
            return LG_ENOMEM;
        set[ns++] =
            (struct lg_attr_set){.key = keys_name, .kind = LG_ATTR_STRING, .s = x->scratch.p};
    }
    int64_t prev_count = 0;
    (void)lg_any_int(lg_attr_find(*attrs, *n, count_name), &prev_count);
    set[ns++] = (struct lg_attr_set){
        .key = count_name, .kind = LG_ATTR_INT, .i = prev_count + (int64_t)count};
    return lg_attrs_set(x->nb->arena, attrs, n, set, ns);
}

/* A resource's attributes; returns the replacement resource (clone arena) or NULL. */
static const lg_resource *process_resource(struct ctx *x, const lg_resource *res)
{
    if (res == NULL)
        return NULL;
    lg_kv **na;
    size_t nn;
    int rc = process_map(x, res->attributes, res->n_attributes, MAP_NORMAL, &na, &nn);
    if (rc < 0) {
        x->rc = rc;
        return NULL;
    }
    if (rc == 0)
        return NULL;
    lg_resource *copy = lg_arena_memdup(x->nb->arena, res, sizeof *copy);
    if (copy == NULL) {
        x->rc = LG_ENOMEM;
        return NULL;
    }
    copy->attributes = na;
    copy->n_attributes = nn;
    return copy;
}

/* ---- traces ---- */

/* The span's events after the rules; returns 1 with a new array when changed. */
static int process_events(struct ctx *x, const lg_span *span, lg_span_event ***out, size_t *nout,
                          uint32_t *ndropped)
{
    lg_span_event **arr = NULL;
    size_t len = 0;
    for (size_t i = 0; i < span->n_events; i++) {
        const lg_span_event *ev = span->events[i];
        const char *name = ev->name ? ev->name : "";
        bool content = x->st->llm != LLM_KEEP &&
                       lg_llm_content_event(name, strlen(name)) != LG_LLM_CONTENT_NONE;
        bool drop = content && x->st->llm == LLM_DROP;
        lg_kv **na = NULL;
        size_t nn = 0;
        int rc = 0;
        if (!drop) {
            rc = process_map(x, ev->attributes, ev->n_attributes,
                             content ? MAP_CONTENT_HASH : MAP_NORMAL, &na, &nn);
            if (rc < 0)
                return rc;
        }
        if (content) {
            if (drop)
                x->n_edropped++;
            else
                x->n_ehashed++;
        }
        if ((drop || rc == 1) && arr == NULL) {
            struct lg_arena *a = ctx_arena(x);
            arr = a ? lg_arena_alloc(a, (span->n_events + 1) * sizeof *arr) : NULL;
            if (arr == NULL)
                return LG_ENOMEM;
            memcpy(arr, span->events, i * sizeof *arr);
            len = i;
        }
        if (drop) {
            (*ndropped)++;
            continue;
        }
        if (rc == 1) {
            lg_span_event *copy = lg_arena_memdup(x->nb->arena, ev, sizeof *copy);
            if (copy == NULL)
                return LG_ENOMEM;
            copy->attributes = na;
            copy->n_attributes = nn;
            arr[len++] = copy;
        } else if (arr) {
            arr[len++] = (lg_span_event *)ev;
        }
    }
    if (arr == NULL)
        return 0;
    *out = arr;
    *nout = len;
    return 1;
}

static void redact_traces(struct ctx *x)
{
    const lg_traces_req *req = x->b->req.traces;
    for (size_t r = 0; r < req->n_resource_spans && !x->rc; r++) {
        const lg_resource_spans *rs = req->resource_spans[r];
        const lg_resource *nres = process_resource(x, rs->resource);
        if (nres)
            x->nb->req.traces->resource_spans[r]->resource = (lg_resource *)nres;
        for (size_t s = 0; s < rs->n_scope_spans && !x->rc; s++) {
            const lg_scope_spans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans && !x->rc; i++) {
                const lg_span *span = ss->spans[i];
                lg_kv **na;
                size_t nn;
                int rc = process_map(x, span->attributes, span->n_attributes, MAP_NORMAL, &na, &nn);
                lg_span_event **ne;
                size_t nne;
                uint32_t ndropped = 0;
                int rce = rc < 0 ? 0 : process_events(x, span, &ne, &nne, &ndropped);
                if (rc < 0 || rce < 0) {
                    x->rc = rc < 0 ? rc : rce;
                    break;
                }
                if (rc == 0 && rce == 0)
                    continue;
                lg_span *copy = lg_arena_memdup(x->nb->arena, span, sizeof *copy);
                if (copy == NULL) {
                    x->rc = LG_ENOMEM;
                    break;
                }
                if (rc == 1) {
                    copy->attributes = na;
                    copy->n_attributes = nn;
                }
                if (rce == 1) {
                    copy->events = ne;
                    copy->n_events = nne;
                    copy->dropped_events_count += ndropped;
                }
                x->nb->req.traces->resource_spans[r]->scope_spans[s]->spans[i] = copy;
            }
        }
    }
}

/* ---- logs ---- */

static bool log_is_content(const struct redaction_state *st, const lg_log_record *lr)
{
    if (st->llm == LLM_KEEP)
        return false;
    const char *name =
        lr->event_name && *lr->event_name
            ? lr->event_name
            : lg_any_str(lg_attr_find(lr->attributes, lr->n_attributes, "event.name"));
    return name && lg_llm_content_event(name, strlen(name)) != LG_LLM_CONTENT_NONE;
}

/* Walks a log body as the Collector does: in maps, ignored keys pass, keys not allowed are
 * removed, blocked keys are masked whole and other values recurse; arrays recurse; scalars
 * go through check_value. Returns 1 with *out (clone arena) when anything changed. */
static int walk_body(struct ctx *x, const lg_any_value *v, int depth, lg_any_value **out,
                     unsigned *nmasked, unsigned *nallowed)
{
    struct redaction_state *st = x->st;
    if (v == NULL || depth > 100) /* decoded protobuf is already bounded at 100 levels */
        return 0;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE ||
        v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE) {
        bool is_map =
            v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        size_t n = is_map ? (v->kvlist_value ? v->kvlist_value->n_values : 0)
                          : (v->array_value ? v->array_value->n_values : 0);
        void **arr = NULL; /* lg_kv * or lg_any_value *, once something changed */
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
            const lg_kv *kv = is_map ? v->kvlist_value->values[i] : NULL;
            const lg_any_value *elem = is_map ? (kv ? kv->value : NULL) : v->array_value->values[i];
            enum { KEEP, REMOVE, REPLACE } act = KEEP;
            lg_any_value *nv = NULL;
            if (is_map) {
                const char *key = kv && kv->key ? kv->key : "";
                size_t klen = strlen(key);
                if (in_sorted(st->ignored, st->nignored, key) ||
                    re_any(&st->ignored_kp, key, klen, x->md)) {
                    /* untouched */
                } else if (!st->conf->allow_all_keys &&
                           !in_sorted(st->allowed, st->nallowed, key)) {
                    act = REMOVE;
                    x->n_removed++;
                } else if (st->blocked_kp.n && re_any(&st->blocked_kp, key, klen, x->md)) {
                    if ((nv = mask_whole(x, elem)) == NULL)
                        return x->rc ? x->rc : LG_ENOMEM;
                    act = REPLACE;
                    (*nmasked)++;
                } else {
                    int rc = walk_body(x, elem, depth + 1, &nv, nmasked, nallowed);
                    if (rc < 0)
                        return rc;
                    act = rc ? REPLACE : KEEP;
                }
            } else {
                int rc = walk_body(x, elem, depth + 1, &nv, nmasked, nallowed);
                if (rc < 0)
                    return rc;
                act = rc ? REPLACE : KEEP;
            }
            if (act != KEEP && arr == NULL) {
                struct lg_arena *a = ctx_arena(x);
                arr = a ? lg_arena_alloc(a, (n + 1) * sizeof *arr) : NULL;
                if (arr == NULL)
                    return LG_ENOMEM;
                for (size_t j = 0; j < i; j++)
                    arr[j] = is_map ? (void *)v->kvlist_value->values[j]
                                    : (void *)v->array_value->values[j];
                len = i;
            }
            if (act == REPLACE && is_map) {
                lg_kv *nkv = lg_arena_memdup(x->nb->arena, kv, sizeof *nkv);
                if (nkv == NULL)
                    return LG_ENOMEM;
                nkv->value = nv;
                arr[len++] = nkv;
            } else if (act == REPLACE) {
                arr[len++] = nv;
            } else if (act == KEEP && arr) {
                arr[len++] = is_map ? (void *)kv : (void *)elem;
            }
        }
        if (arr == NULL)
            return 0;
        struct lg_arena *a = x->nb->arena;
        lg_any_value *nval = lg_arena_memdup(a, v, sizeof *nval);
        if (nval == NULL)
            return LG_ENOMEM;
        if (is_map) {
            lg_kvlist *l = lg_arena_memdup(a, v->kvlist_value, sizeof *l);
            lg_kv **items = lg_arena_alloc(a, (len + 1) * sizeof *items);
            if (l == NULL || items == NULL)
                return LG_ENOMEM;
            for (size_t j = 0; j < len; j++)
                items[j] = arr[j];
            l->values = items;
            l->n_values = len;
            nval->kvlist_value = l;
        } else {
            lg_array_value *av = lg_arena_memdup(a, v->array_value, sizeof *av);
            lg_any_value **items = lg_arena_alloc(a, (len + 1) * sizeof *items);
            if (av == NULL || items == NULL)
                return LG_ENOMEM;
            for (size_t j = 0; j < len; j++)
                items[j] = arr[j];
            av->values = items;
            av->n_values = len;
            nval->array_value = av;
        }
        *out = nval;
        return 1;
    }
    switch (check_value(x, NULL, v, out)) {
    case V_MASKED: (*nmasked)++; return 1;
    case V_ALLOWED: (*nallowed)++; return 0;
    case V_ERROR: return x->rc ? x->rc : LG_ENOMEM;
    default: return 0;
    }
}

/* The body after the rules: 1 with *out set when it changed. `masked`/`allowed` say which
 * summary applies. */
static int process_body(struct ctx *x, const lg_log_record *lr, bool content, lg_any_value **out,
                        bool *masked, bool *allowed)
{
    *masked = *allowed = false;
    if (lr->body == NULL ||
        lr->body->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET)
        return 0;
    if (content) {
        if (x->st->llm == LLM_DROP) {
            *out = NULL;
            return 1;
        }
        *out = hash_value(x, lr->body, x->st->content_md);
        return *out ? 1 : LG_ENOMEM;
    }
    unsigned nmasked = 0, nallowed = 0;
    int rc = walk_body(x, lr->body, 0, out, &nmasked, &nallowed);
    *masked = nmasked > 0;
    *allowed = nallowed > 0 && !*masked;
    return rc;
}

static void redact_logs(struct ctx *x)
{
    const lg_logs_req *req = x->b->req.logs;
    for (size_t r = 0; r < req->n_resource_logs && !x->rc; r++) {
        const lg_resource_logs *rl = req->resource_logs[r];
        const lg_resource *nres = process_resource(x, rl->resource);
        if (nres)
            x->nb->req.logs->resource_logs[r]->resource = (lg_resource *)nres;
        for (size_t s = 0; s < rl->n_scope_logs && !x->rc; s++) {
            const lg_scope_logs *sl = rl->scope_logs[s];
            for (size_t i = 0; i < sl->n_log_records && !x->rc; i++) {
                const lg_log_record *lr = sl->log_records[i];
                bool content = log_is_content(x->st, lr);
                enum map_mode mode = !content                 ? MAP_NORMAL
                                     : x->st->llm == LLM_DROP ? MAP_CONTENT_DROP
                                                              : MAP_CONTENT_HASH;
                lg_kv **na;
                size_t nn;
                int rc = process_map(x, lr->attributes, lr->n_attributes, mode, &na, &nn);
                if (rc < 0) {
                    x->rc = rc;
                    break;
                }
                lg_any_value *nbody = NULL;
                bool bmasked, ballowed;
                int rcb = process_body(x, lr, content, &nbody, &bmasked, &ballowed);
                if (rcb < 0) {
                    x->rc = rcb;
                    break;
                }
                if (content) {
                    if (x->st->llm == LLM_DROP)
                        x->n_edropped++;
                    else
                        x->n_ehashed++;
                }
                bool body_summary = x->st->summary != SUMMARY_SILENT && (bmasked || ballowed);
                if (rc == 0 && rcb == 0 && !body_summary)
                    continue;
                if (ctx_arena(x) == NULL)
                    break;
                lg_log_record *copy = lg_arena_memdup(x->nb->arena, lr, sizeof *copy);
                if (copy == NULL) {
                    x->rc = LG_ENOMEM;
                    break;
                }
                if (rc == 1) {
                    copy->attributes = na;
                    copy->n_attributes = nn;
                }
                if (rcb == 1)
                    copy->body = nbody;
                if (body_summary) {
                    x->masked.n = x->allowed.n = 0;
                    kv_push(bmasked ? &x->masked : &x->allowed, "body");
                    int src =
                        bmasked
                            ? add_summary(x, &copy->attributes, &copy->n_attributes, &x->masked,
                                          S_BODY_MASKED_KEYS, S_BODY_MASKED_COUNT)
                            : add_summary(x, &copy->attributes, &copy->n_attributes, &x->allowed,
                                          S_BODY_ALLOWED_KEYS, S_BODY_ALLOWED_COUNT);
                    if (src != LG_OK) {
                        x->rc = src;
                        break;
                    }
                }
                if (bmasked)
                    x->n_masked++;
                x->nb->req.logs->resource_logs[r]->scope_logs[s]->log_records[i] = copy;
            }
        }
    }
}

/* ---- metrics ---- */

/* Data points of one metric, whatever its type: the array, its length, the element size and
 * where each point keeps its attributes. */
struct dp_view {
    void *points; /* address of the T **data_points field (read and written with memcpy, so a
                   * T ** is never accessed through a void ** lvalue) */
    size_t *n;
    size_t size;
    size_t attrs_off, nattrs_off;
};

static bool dp_view(lg_metric *m, struct dp_view *v)
{
#define DPV(field, T)                                                                              \
    do {                                                                                           \
        if (m->field == NULL)                                                                      \
            return false;                                                                          \
        *v = (struct dp_view){(void *)&m->field->data_points, &m->field->n_data_points, sizeof(T), \
                              offsetof(T, attributes), offsetof(T, n_attributes)};                 \
        return true;                                                                               \
    } while (0)
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: DPV(gauge, lg_number_dp);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: DPV(sum, lg_number_dp);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: DPV(histogram, lg_histogram_dp);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        DPV(exponential_histogram, lg_exp_histogram_dp);
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: DPV(summary, lg_summary_dp);
    default: return false;
    }
#undef DPV
}

static char *dp_array(const struct dp_view *v)
{
    char *arr;
    memcpy(&arr, v->points, sizeof arr);
    return arr;
}

static const char *dp_get(const struct dp_view *v, size_t i)
{
    const char *p;
    memcpy(&p, dp_array(v) + i * sizeof(void *), sizeof p);
    return p;
}

static void dp_set(const struct dp_view *v, size_t i, const char *p)
{
    memcpy(dp_array(v) + i * sizeof(void *), &p, sizeof p);
}

/* Copies the metric and its data container (gauge/sum/...) with a private points array. */
static lg_metric *copy_metric(struct ctx *x, const lg_metric *m)
{
    struct lg_arena *a = x->nb->arena;
    lg_metric *c = lg_arena_memdup(a, m, sizeof *c);
    if (c == NULL)
        return NULL;
    void *data = NULL;
    size_t dsz = 0;
    switch (c->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        dsz = sizeof *c->gauge;
        data = c->gauge = lg_arena_memdup(a, c->gauge, dsz);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        dsz = sizeof *c->sum;
        data = c->sum = lg_arena_memdup(a, c->sum, dsz);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        dsz = sizeof *c->histogram;
        data = c->histogram = lg_arena_memdup(a, c->histogram, dsz);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        dsz = sizeof *c->exponential_histogram;
        data = c->exponential_histogram = lg_arena_memdup(a, c->exponential_histogram, dsz);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        dsz = sizeof *c->summary;
        data = c->summary = lg_arena_memdup(a, c->summary, dsz);
        break;
    default: return c;
    }
    if (data == NULL)
        return NULL;
    struct dp_view v;
    if (!dp_view(c, &v))
        return NULL;
    char *pts = lg_arena_memdup(a, dp_array(&v), (*v.n + 1) * sizeof(void *));
    if (pts == NULL)
        return NULL;
    memcpy(v.points, &pts, sizeof pts);
    return c;
}

static void redact_metrics(struct ctx *x)
{
    const lg_metrics_req *req = x->b->req.metrics;
    for (size_t r = 0; r < req->n_resource_metrics && !x->rc; r++) {
        const lg_resource_metrics *rm = req->resource_metrics[r];
        const lg_resource *nres = process_resource(x, rm->resource);
        if (nres)
            x->nb->req.metrics->resource_metrics[r]->resource = (lg_resource *)nres;
        for (size_t s = 0; s < rm->n_scope_metrics && !x->rc; s++) {
            const lg_scope_metrics *sm = rm->scope_metrics[s];
            for (size_t mi = 0; mi < sm->n_metrics && !x->rc; mi++) {
                lg_metric *m = sm->metrics[mi];
                struct dp_view v;
                if (!dp_view(m, &v))
                    continue;
                lg_metric *mc = NULL;
                for (size_t i = 0; i < *v.n; i++) {
                    const char *pt = dp_get(&v, i);
                    lg_kv **attrs = *(lg_kv ***)(pt + v.attrs_off);
                    size_t nattrs = *(const size_t *)(pt + v.nattrs_off);
                    lg_kv **na;
                    size_t nn;
                    int rc = process_map(x, attrs, nattrs, MAP_NORMAL, &na, &nn);
                    if (rc < 0) {
                        x->rc = rc;
                        break;
                    }
                    if (rc == 0)
                        continue;
                    struct dp_view cv;
                    if (mc == NULL) {
                        mc = copy_metric(x, m);
                        if (mc == NULL) {
                            x->rc = LG_ENOMEM;
                            break;
                        }
                        x->nb->req.metrics->resource_metrics[r]->scope_metrics[s]->metrics[mi] = mc;
                    }
                    if (!dp_view(mc, &cv)) {
                        x->rc = LG_EINTERNAL;
                        break;
                    }
                    char *pc = lg_arena_memdup(x->nb->arena, pt, v.size);
                    if (pc == NULL) {
                        x->rc = LG_ENOMEM;
                        break;
                    }
                    *(lg_kv ***)(pc + v.attrs_off) = na;
                    *(size_t *)(pc + v.nattrs_off) = nn;
                    dp_set(&cv, i, pc);
                }
            }
        }
    }
}

/* ---- consume ---- */

static pcre2_match_data *pool_get(struct redaction_state *st)
{
    pcre2_match_data *md = NULL;
    pthread_mutex_lock(&st->pool_lock);
    if (st->npool)
        md = st->pool[--st->npool];
    pthread_mutex_unlock(&st->pool_lock);
    return md ? md : lg_pii_match_data();
}

static void pool_put(struct redaction_state *st, pcre2_match_data *md)
{
    pthread_mutex_lock(&st->pool_lock);
    if (st->npool == st->cappool) {
        size_t nc = st->cappool ? st->cappool * 2 : 8;
        pcre2_match_data **np = realloc(st->pool, nc * sizeof *np);
        if (np) {
            st->pool = np;
            st->cappool = nc;
        }
    }
    if (st->npool < st->cappool) {
        st->pool[st->npool++] = md;
        md = NULL;
    }
    pthread_mutex_unlock(&st->pool_lock);
    pcre2_match_data_free(md);
}

static int redaction_consume(struct lg_component *c, struct lg_batch *b)
{
    struct redaction_state *st = c->state;
    struct ccache_ent cc[CCACHE_SIZE];
    struct ctx x = {.st = st, .b = b, .cc = cc};
    if (st->llm != LLM_KEEP)
        memset(cc, 0, sizeof cc);
    x.md = pool_get(st);
    if (x.md == NULL)
        x.rc = LG_ENOMEM;
    else if (b->signal == LG_SIGNAL_TRACES)
        redact_traces(&x);
    else if (b->signal == LG_SIGNAL_LOGS)
        redact_logs(&x);
    else if (b->signal == LG_SIGNAL_METRICS)
        redact_metrics(&x);
    if (x.md)
        pool_put(st, x.md);
    free(x.scratch.p);
    free(x.str.p);
    free(x.redacted.v);
    free(x.masked.v);
    free(x.allowed.v);
    if (x.rc != LG_OK) {
        /* refuse (retryable for the client) rather than forward data we could not redact */
        lg_counter_add(st->refused[b->signal], b->items);
        lg_error(c->id, "out of memory redacting; refusing %zu %s", b->items,
                 lg_signal_item_noun(b->signal));
        lg_batch_unref(x.nb);
        return x.rc;
    }
    if (x.n_removed)
        lg_counter_add(st->removed, x.n_removed);
    if (x.n_masked)
        lg_counter_add(st->masked, x.n_masked);
    if (x.n_cdropped)
        lg_counter_add(st->content_dropped, x.n_cdropped);
    if (x.n_chashed)
        lg_counter_add(st->content_hashed, x.n_chashed);
    if (x.n_edropped)
        lg_counter_add(st->events_dropped, x.n_edropped);
    if (x.n_ehashed)
        lg_counter_add(st->events_hashed, x.n_ehashed);
    for (int k = 0; k < LG_PII_KIND_COUNT; k++)
        if (x.n_pii[k])
            lg_counter_add(st->pii_count[k], x.n_pii[k]);
    if (x.nb == NULL)
        return lg_fanout_consume(&c->next[b->signal], b);
    int rc = lg_fanout_consume(&c->next[b->signal], x.nb);
    lg_batch_unref(x.nb);
    return rc;
}

/* ---- create / destroy ---- */

static void free_regexes(struct regex_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        pcre2_code_free(l->re[i]);
    free(l->re);
    l->re = NULL;
    l->n = 0;
}

static int compile_list(struct lg_component *c, const char *key, const struct lg_strlist *src,
                        struct regex_list *out, struct lg_err *err)
{
    out->n = 0;
    out->re = NULL;
    if (src->n == 0)
        return LG_OK;
    out->re = calloc(src->n, sizeof *out->re);
    if (out->re == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    const struct lg_node *list = lg_node_get(c->conf_node, key);
    for (size_t i = 0; i < src->n; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)src->items[i], PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
        if (re == NULL) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            const struct lg_node *item =
                list && list->type == LG_NODE_SEQ && i < list->nitems ? list->items[i] : list;
            return lg_conf_error(err, item, "invalid regular expression \"%s\": %s at offset %zu",
                                 src->items[i], (const char *)msg, (size_t)eo);
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        out->re[out->n++] = re;
    }
    return LG_OK;
}

static void redaction_destroy(struct lg_component *c)
{
    struct redaction_state *st = c->state;
    if (st == NULL)
        return;
    free_regexes(&st->ignored_kp);
    free_regexes(&st->blocked_kp);
    free_regexes(&st->blocked_v);
    free_regexes(&st->allowed_v);
    free(st->allowed);
    free(st->ignored);
    EVP_MD_free(st->hash_md);
    EVP_MD_free(st->content_md);
    lg_pii_destroy(st->pii);
    for (size_t i = 0; i < st->npool; i++)
        pcre2_match_data_free(st->pool[i]);
    free(st->pool);
    pthread_mutex_destroy(&st->pool_lock);
    free(st);
    c->state = NULL;
}

static int sorted_copy(const struct lg_strlist *l, const char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (l->n == 0)
        return LG_OK;
    *out = malloc(l->n * sizeof **out);
    if (*out == NULL)
        return LG_ENOMEM;
    memcpy(*out, l->items, l->n * sizeof **out);
    qsort(*out, l->n, sizeof **out, cmp_str);
    *n = l->n;
    return LG_OK;
}

static int redaction_create(struct lg_component *c, struct lg_err *err)
{
    struct redaction_conf *cf = c->conf;
    const struct lg_node *cn = c->conf_node;
    enum summary_level summary;
    const char *sm = cf->summary ? cf->summary : "";
    if (!*sm || strcmp(sm, "silent") == 0)
        summary = SUMMARY_SILENT;
    else if (strcmp(sm, "info") == 0)
        summary = SUMMARY_INFO;
    else if (strcmp(sm, "debug") == 0)
        summary = SUMMARY_DEBUG;
    else
        return lg_conf_error(err, lg_node_get(cn, "summary"),
                             "unknown summary \"%s\": use debug, info or silent", sm);
    enum llm_mode llm;
    const char *lm = cf->llm_content ? cf->llm_content : "keep";
    if (strcmp(lm, "keep") == 0)
        llm = LLM_KEEP;
    else if (strcmp(lm, "drop") == 0)
        llm = LLM_DROP;
    else if (strcmp(lm, "hash") == 0)
        llm = LLM_HASH;
    else
        return lg_conf_error(err, lg_node_get(cn, "llm_content"),
                             "unknown llm_content \"%s\": use keep, drop or hash", lm);
    const char *hf = cf->hash_function ? cf->hash_function : "";
    const char *md_name = NULL;
    if (!*hf)
        md_name = NULL;
    else if (strcasecmp(hf, "md5") == 0)
        md_name = "MD5";
    else if (strcasecmp(hf, "sha1") == 0)
        md_name = "SHA1";
    else if (strcasecmp(hf, "sha3") == 0)
        md_name = "SHA3-256";
    else if (strcasecmp(hf, "sha256") == 0)
        md_name = "SHA256";
    else
        return lg_conf_error(
            err, lg_node_get(cn, "hash_function"),
            "unknown hash_function \"%s\": use md5, sha1, sha3 (SHA3-256) or sha256", hf);
    if (md_name && lg_node_get(cn, "masking_string"))
        return lg_conf_error(err, lg_node_get(cn, "masking_string"),
                             "must not be set together with hash_function");
    if (cf->masking_string == NULL)
        cf->masking_string = "****";

    struct redaction_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = cf;
    st->summary = summary;
    st->llm = llm;
    st->masklen = strlen(cf->masking_string);
    pthread_mutex_init(&st->pool_lock, NULL);
    c->state = st;
    int rc = LG_OK;
    if (sorted_copy(&cf->allowed_keys, &st->allowed, &st->nallowed) ||
        sorted_copy(&cf->ignored_keys, &st->ignored, &st->nignored)) {
        rc = lg_err_set(err, LG_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = compile_list(c, "ignored_key_patterns", &cf->ignored_key_patterns, &st->ignored_kp,
                           err)) ||
        (rc = compile_list(c, "blocked_key_patterns", &cf->blocked_key_patterns, &st->blocked_kp,
                           err)) ||
        (rc = compile_list(c, "blocked_values", &cf->blocked_values, &st->blocked_v, err)) ||
        (rc = compile_list(c, "allowed_values", &cf->allowed_values, &st->allowed_v, err)))
        goto fail;
    if (md_name && (st->hash_md = EVP_MD_fetch(NULL, md_name, NULL)) == NULL) {
        rc = lg_conf_error(err, lg_node_get(cn, "hash_function"),
                           "hash %s is not available in this OpenSSL", md_name);
        goto fail;
    }
    if (llm == LLM_HASH &&
        (st->content_md = EVP_MD_fetch(NULL, md_name ? md_name : "SHA256", NULL)) == NULL) {
        rc = lg_err_set(err, LG_EINTERNAL, "OpenSSL has no %s", md_name ? md_name : "SHA256");
        goto fail;
    }
    unsigned kinds = (cf->pii.email ? LG_PII_BIT(LG_PII_EMAIL) : 0) |
                     (cf->pii.credit_card ? LG_PII_BIT(LG_PII_CARD) : 0) |
                     (cf->pii.bearer_token ? LG_PII_BIT(LG_PII_BEARER) : 0) |
                     (cf->pii.api_keys ? LG_PII_BIT(LG_PII_API_KEY) : 0) |
                     (cf->pii.ip ? LG_PII_BIT(LG_PII_IPV4) | LG_PII_BIT(LG_PII_IPV6) : 0);
    if ((rc = lg_pii_create(kinds, &st->pii, err)) != LG_OK)
        goto fail;

    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[300], l2[400];
    snprintf(labels, sizeof labels, "processor=\"%s\"", c->id);
    st->removed = lg_telemetry_counter(
        t, "llmgate_redaction_removed_attributes",
        "Attributes removed because their key is not in allowed_keys.", labels);
    st->masked = lg_telemetry_counter(
        t, "llmgate_redaction_masked_values",
        "Attribute values and log bodies masked or hashed (blocked keys/values, PII).", labels);
    st->content_dropped = lg_telemetry_counter(
        t, "llmgate_redaction_llm_content_dropped_attributes",
        "Prompt/completion/tool attributes removed by llm_content: drop.", labels);
    st->content_hashed = lg_telemetry_counter(
        t, "llmgate_redaction_llm_content_hashed_attributes",
        "Prompt/completion/tool attributes hashed by llm_content: hash.", labels);
    st->events_dropped = lg_telemetry_counter(
        t, "llmgate_redaction_llm_content_dropped_events",
        "Content span events removed, and content log records emptied, by llm_content: drop.",
        labels);
    st->events_hashed = lg_telemetry_counter(
        t, "llmgate_redaction_llm_content_hashed_events",
        "Content span events and log records hashed by llm_content: hash.", labels);
    for (int k = 0; k < LG_PII_KIND_COUNT; k++) {
        snprintf(l2, sizeof l2, "%s,kind=\"%s\"", labels, lg_pii_kind_name((enum lg_pii_kind)k));
        st->pii_count[k] = lg_telemetry_counter(t, "llmgate_redaction_pii_matches",
                                                "PII matches masked, by kind.", l2);
    }
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        snprintf(l2, sizeof l2, "%s,otel_signal=\"%s\"", labels, lg_signal_name((enum lg_signal)s));
        st->refused[s] = lg_telemetry_counter(t, "otelcol_processor_refused_items",
                                              "Items a processor refused (out of memory).", l2);
    }
    if (!cf->allow_all_keys && cf->allowed_keys.n == 0)
        lg_warn(
            c->id,
            "allow_all_keys is false and allowed_keys is empty: every attribute is removed "
            "(the Collector's fail-closed default); set allow_all_keys: true to only mask values");
    return LG_OK;
fail:
    redaction_destroy(c);
    return rc ? rc : LG_EINVAL;
}

const struct lg_component_type lg_redaction_processor = {
    .type = "redaction",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "removes attributes not allowed, masks blocked keys/values and PII, drops or "
                   "hashes LLM prompt content",
    .conf_size = sizeof(struct redaction_conf),
    .fields = redaction_fields,
    .create = redaction_create,
    .consume = redaction_consume,
    .destroy = redaction_destroy,
};
