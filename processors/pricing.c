/* processors/pricing.c — LLM price tables: our YAML format and LiteLLM JSON, model-name
 * normalisation and matching (PCRE2 for regex matchers, compiled once at load), cost
 * computation, a per-table lookup cache, and reload on file change. Contract in pricing.h.
 *
 * A table owns one arena (entries, strings) plus its compiled regexes and its cache. The
 * pricer owns the current table through a reference; readers take a reference under a short
 * lock, so a reload swaps tables without stopping or dropping anything. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pricing.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/arena.h"
#include "../core/conf.h"
#include "../core/log.h"

/* The default table, embedded at build time from processors/prices/default.yaml. */
extern const char lg_default_prices[];

/* Lookup cache: entries kept per table; cleared when half full, which bounds memory when
 * spans carry endless distinct model names (fine-tune ids, deployment names). */
#define CACHE_SLOTS 4096
/* Longest model name we normalise; longer names are matched as written only. */
#define NAME_MAX_LEN 256
#define MAX_VARIANTS 12

enum match_kind { M_EXACT, M_PREFIX, M_REGEX };

struct matcher {
    enum match_kind kind;
    const char *s;
    size_t len;
    pcre2_code *re;
};

struct rates {
    double input, output, cache_read, cache_write, reasoning; /* USD per 1M tokens */
};

struct period {
    int64_t from_ns;        /* 0: always */
    int32_t utc_from_s;     /* -1: any time of day */
    int32_t utc_to_s;
    struct rates base;
    bool has_long;
    int64_t long_above;     /* tier applies when input tokens > long_above */
    struct rates lng;
};

struct entry {
    const char *id;
    const char *provider;
    struct matcher *m;
    size_t nm;
    struct period *p;
    size_t np;
};

struct prov {
    const char *id;
    const char **fallback;
    size_t nfallback;
};

struct cache_slot {
    char *key;     /* malloc'd "provider\x1fname" */
    int entry;     /* -1: unknown model */
    bool fine_tune;
};

struct lg_price_table {
    _Atomic int refs;
    struct lg_arena *arena;
    struct entry *e;
    size_t ne;
    struct prov *pv;
    size_t npv;
    const char **dep_from, **dep_to;
    size_t ndep;
    double discount;
    const char **disc_prov;
    double *disc_pct;
    size_t ndisc;
    pthread_mutex_t lock; /* cache */
    struct cache_slot cache[CACHE_SLOTS];
    size_t cache_n;
};

/* ---- small helpers ---- */

static void lower_copy(char *dst, size_t cap, const char *src)
{
    while (*src && isspace((unsigned char)*src))
        src++;
    size_t n = 0;
    for (; src[n] && n + 1 < cap; n++)
        dst[n] = (char)tolower((unsigned char)src[n]);
    while (n > 0 && isspace((unsigned char)dst[n - 1]))
        n--;
    dst[n] = '\0';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool valid_ymd(int y, int m, int d)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 2000 || y > 2099 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return false;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    return true;
}

/* "2025-12-02" or "2025-12-02T10:00:00Z" -> unix ns; false on bad text. */
static bool parse_date_ns(const char *s, int64_t *ns)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || !valid_ymd(y, mo, d))
        return false;
    const char *rest = s + n;
    if (*rest == 'T' || *rest == ' ') {
        int n2 = 0;
        if (sscanf(rest + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n2) != 3 || h > 23 || mi > 59 || sec > 60)
            return false;
        rest += 1 + n2;
        if (*rest == 'Z')
            rest++;
    }
    if (*rest != '\0')
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    *ns = (int64_t)timegm(&tm) * 1000000000LL;
    return true;
}

/* "HH:MM" or "HH:MM:SS" -> seconds of the day; -1 on bad text. */
static int32_t parse_hms(const char *s, size_t len)
{
    char buf[16];
    if (len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int h, m, sec = 0, n = 0;
    if (sscanf(buf, "%2d:%2d%n", &h, &m, &n) != 2)
        return -1;
    if (buf[n] == ':' && sscanf(buf + n + 1, "%2d%n", &sec, &n) != 1)
        return -1;
    if (h > 23 || m > 59 || sec > 59)
        return -1;
    return h * 3600 + m * 60 + sec;
}

/* ---- provider names ---- */

const char *lg_pricing_provider_id(const char *p, char *buf, size_t len)
{
    if (p == NULL || *p == '\0')
        return NULL;
    char l[64];
    lower_copy(l, sizeof l, p);
    /* gen_ai.provider.name / gen_ai.system / llm.provider / llm.system / llm.vendor values */
    if (strncmp(l, "azure", 5) == 0 || strncmp(l, "az.", 3) == 0)
        return "azure";
    if (strstr(l, "bedrock") || strcmp(l, "aws") == 0 || strncmp(l, "amazon", 6) == 0)
        return "aws";
    if (strncmp(l, "gcp", 3) == 0 || strstr(l, "vertex") || strstr(l, "gemini") || strstr(l, "google"))
        return "google";
    if (strstr(l, "openai"))
        return "openai";
    if (strstr(l, "anthropic"))
        return "anthropic";
    if (strncmp(l, "mistral", 7) == 0)
        return "mistral";
    if (strstr(l, "cohere"))
        return "cohere";
    if (strncmp(l, "deepseek", 8) == 0)
        return "deepseek";
    if (strcmp(l, "xai") == 0 || strcmp(l, "x_ai") == 0 || strcmp(l, "x-ai") == 0 || strcmp(l, "x.ai") == 0)
        return "x-ai";
    snprintf(buf, len, "%s", l);
    return buf;
}

/* ---- name normalisation ---- */

struct variants {
    char *buf;
    size_t cap, used;
    const char **v;
    size_t n, max;
};

static void variant_add(struct variants *vs, const char *s, size_t len)
{
    for (size_t i = 0; i < vs->n; i++)
        if (strlen(vs->v[i]) == len && memcmp(vs->v[i], s, len) == 0)
            return;
    if (vs->n >= vs->max || vs->used + len + 1 > vs->cap || len == 0)
        return;
    char *d = vs->buf + vs->used;
    memcpy(d, s, len);
    d[len] = '\0';
    vs->used += len + 1;
    vs->v[vs->n++] = d;
}

/* "-YYYYMMDD" (followed by '-', ':' or the end) -> "-YYYY-MM-DD", as genai-prices does. */
static size_t date_dashes(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 3 < cap;) {
        if (in[i] == '-' && in[i + 1] == '2' && in[i + 2] == '0' && strlen(in + i + 1) >= 8 && all_digits(in + i + 1, 8) &&
            (in[i + 9] == '\0' || in[i + 9] == '-' || in[i + 9] == ':')) {
            int y = (in[i + 1] - '0') * 1000 + (in[i + 2] - '0') * 100 + (in[i + 3] - '0') * 10 + (in[i + 4] - '0');
            int m = (in[i + 5] - '0') * 10 + (in[i + 6] - '0');
            int d = (in[i + 7] - '0') * 10 + (in[i + 8] - '0');
            if (valid_ymd(y, m, d) && o + 12 < cap) {
                o += (size_t)snprintf(out + o, cap - o, "-%04d-%02d-%02d", y, m, d);
                i += 9;
                continue;
            }
        }
        out[o++] = in[i++];
    }
    out[o] = '\0';
    return o;
}

/* Bedrock model ids: [region.]vendor.model[-vN[:M]|:M] -> model */
static size_t strip_bedrock(const char *in, char *out, size_t cap)
{
    static const char *const regions[] = {"us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.", "in.", "ap."};
    static const char *const vendors[] = {"anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.",
                                          "openai.", "writer.", "qwen.", "google.", "nvidia.", "moonshot.", "minimax."};
    const char *s = in;
    bool had_vendor = false;
    for (size_t i = 0; i < LG_ARRAY_LEN(regions); i++)
        if (strncmp(s, regions[i], strlen(regions[i])) == 0) {
            s += strlen(regions[i]);
            break;
        }
    for (size_t i = 0; i < LG_ARRAY_LEN(vendors); i++)
        if (strncmp(s, vendors[i], strlen(vendors[i])) == 0) {
            s += strlen(vendors[i]);
            had_vendor = true;
            break;
        }
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    if (!had_vendor)
        return n;
    /* ":0" revision, then "-v1" / "-v2" version */
    char *colon = strrchr(out, ':');
    if (colon && all_digits(colon + 1, strlen(colon + 1)) && colon[1]) {
        *colon = '\0';
        n = (size_t)(colon - out);
    }
    char *v = strrchr(out, '-');
    if (v && v[1] == 'v' && v[2] && all_digits(v + 2, strlen(v + 2))) {
        *v = '\0';
        n = (size_t)(v - out);
    }
    return n;
}

/* "-2024-08-06" or "-20241022" at the end -> removed. */
static size_t strip_date_suffix(char *s, size_t n)
{
    if (n > 11 && s[n - 11] == '-' && s[n - 6] == '-' && s[n - 3] == '-' && all_digits(s + n - 10, 4) &&
        all_digits(s + n - 5, 2) && all_digits(s + n - 2, 2)) {
        s[n - 11] = '\0';
        return n - 11;
    }
    if (n > 9 && s[n - 9] == '-' && s[n - 8] == '2' && s[n - 7] == '0' && all_digits(s + n - 8, 8)) {
        s[n - 9] = '\0';
        return n - 9;
    }
    return n;
}

static void add_steps(struct variants *vs, const char *start)
{
    char a[NAME_MAX_LEN], b[NAME_MAX_LEN];
    snprintf(a, sizeof a, "%s", start);
    variant_add(vs, a, strlen(a));
    /* provider/ prefixes: "openai/gpt-4o", "models/gemini-1.5-pro", "publishers/google/models/x" */
    const char *slash = strrchr(a, '/');
    if (slash && slash[1]) {
        memmove(a, slash + 1, strlen(slash + 1) + 1);
        variant_add(vs, a, strlen(a));
    }
    size_t n = date_dashes(a, b, sizeof b);
    variant_add(vs, b, n);
    /* Vertex "@001" / "@20240620" versions */
    char *at = strchr(a, '@');
    if (at) {
        *at = '\0';
        variant_add(vs, a, strlen(a));
    }
    n = strip_bedrock(a, b, sizeof b);
    variant_add(vs, b, n);
    n = strip_date_suffix(b, n);
    variant_add(vs, b, n);
}

size_t lg_pricing_name_variants(const char *name, char *buf, size_t buflen, const char **out,
                                size_t max, int *fine_tune_from)
{
    struct variants vs = {.buf = buf, .cap = buflen, .v = out, .max = max};
    *fine_tune_from = -1;
    if (name == NULL)
        return 0;
    char l[NAME_MAX_LEN];
    lower_copy(l, sizeof l, name);
    if (strlen(name) >= NAME_MAX_LEN) {
        variant_add(&vs, l, strlen(l));
        return vs.n;
    }
    add_steps(&vs, l);
    /* fine-tunes: "ft:gpt-4o-mini-2024-07-18:org:suffix:id" -> base model */
    if (strncmp(l, "ft:", 3) == 0) {
        char base[NAME_MAX_LEN];
        snprintf(base, sizeof base, "%s", l + 3);
        char *c = strchr(base, ':');
        if (c)
            *c = '\0';
        size_t before = vs.n;
        add_steps(&vs, base);
        if (vs.n > before)
            *fine_tune_from = (int)before;
    } else {
        /* Azure fine-tunes: "gpt-4o-mini-2024-07-18.ft-<id>" */
        char *ft = strstr(l, ".ft-");
        if (ft) {
            *ft = '\0';
            size_t before = vs.n;
            add_steps(&vs, l);
            if (vs.n > before)
                *fine_tune_from = (int)before;
        }
    }
    return vs.n;
}

/* ---- table building ---- */

static struct lg_price_table *table_new(void)
{
    struct lg_price_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->arena = lg_arena_create(64 * 1024);
    if (t->arena == NULL) {
        free(t);
        return NULL;
    }
    atomic_init(&t->refs, 1);
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

static void table_free(struct lg_price_table *t)
{
    for (size_t i = 0; i < t->ne; i++)
        for (size_t j = 0; j < t->e[i].nm; j++)
            if (t->e[i].m[j].re)
                pcre2_code_free(t->e[i].m[j].re);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        free(t->cache[i].key);
    pthread_mutex_destroy(&t->lock);
    lg_arena_destroy(t->arena);
    free(t);
}

struct lg_price_table *lg_price_table_ref(struct lg_price_table *t)
{
    if (t)
        atomic_fetch_add(&t->refs, 1);
    return t;
}

void lg_price_table_unref(struct lg_price_table *t)
{
    if (t && atomic_fetch_sub(&t->refs, 1) == 1)
        table_free(t);
}

size_t lg_price_table_size(const struct lg_price_table *t) { return t->ne; }
const char *lg_price_table_entry_id(const struct lg_price_table *t, size_t i) { return i < t->ne ? t->e[i].id : NULL; }
const char *lg_price_table_entry_provider(const struct lg_price_table *t, size_t i) { return i < t->ne ? t->e[i].provider : NULL; }

static int compile_regex(struct matcher *m, const char *pattern, const struct lg_node *n, struct lg_err *err)
{
    int ec;
    PCRE2_SIZE off;
    m->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
    if (m->re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return lg_conf_error(err, n, "invalid regex at offset %zu: %s", (size_t)off, (const char *)msg);
    }
    /* JIT makes first-time matching of ~hundreds of patterns cheap; absence is fine */
    (void)pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);
    return LG_OK;
}

/* ---- YAML format ---- */

static int yaml_str(const struct lg_node *n, const char **out, struct lg_err *err)
{
    if (n == NULL || n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "must be a string");
    *out = n->scalar;
    return LG_OK;
}

static int yaml_price(const struct lg_node *n, double *out, struct lg_err *err)
{
    int rc = lg_conf_parse_double(n, out, err);
    if (rc == LG_OK && (!isfinite(*out) || *out < 0))
        return lg_conf_error(err, n, "must be a price >= 0 (USD per 1M tokens)");
    return rc;
}

/* input/output/cache_read/cache_write/reasoning of a map; `set` says which were given. */
static int yaml_rates(const struct lg_node *n, struct rates *r, unsigned *set, const char *const *extra,
                      struct lg_err *err)
{
    static const char *const names[] = {"input", "output", "cache_read", "cache_write", "reasoning"};
    double *dst[] = {&r->input, &r->output, &r->cache_read, &r->cache_write, &r->reasoning};
    *set = 0;
    for (size_t i = 0; i < n->npairs; i++) {
        const char *k = n->pairs[i].key;
        bool known = false;
        for (size_t j = 0; j < LG_ARRAY_LEN(names); j++)
            if (strcmp(k, names[j]) == 0) {
                int rc = yaml_price(n->pairs[i].value, dst[j], err);
                if (rc)
                    return rc;
                *set |= 1u << j;
                known = true;
            }
        for (size_t j = 0; extra && extra[j] && !known; j++)
            known = strcmp(k, extra[j]) == 0;
        if (!known)
            return lg_conf_error(err, n->pairs[i].value, "unknown key \"%s\" (known: input, output, cache_read, "
                                 "cache_write, reasoning%s)", k, extra ? ", effective_from, utc_hours, long_context" : "");
    }
    return LG_OK;
}

/* Missing rates take their defaults: cache rates = input, reasoning = output. */
static void rates_defaults(struct rates *r, unsigned set)
{
    if (!(set & 4))
        r->cache_read = r->input;
    if (!(set & 8))
        r->cache_write = r->input;
    if (!(set & 16))
        r->reasoning = r->output;
}

static int yaml_period(const struct lg_node *n, struct period *p, struct lg_err *err)
{
    static const char *const extra[] = {"effective_from", "utc_hours", "long_context", NULL};
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map of prices (input, output, ...)");
    memset(p, 0, sizeof *p);
    p->utc_from_s = p->utc_to_s = -1;
    unsigned set;
    int rc = yaml_rates(n, &p->base, &set, extra, err);
    if (rc)
        return rc;
    if (!(set & 1))
        return lg_conf_error(err, n, "input price is required");
    rates_defaults(&p->base, set);
    const struct lg_node *ef = lg_node_get(n, "effective_from");
    if (ef && !lg_node_is_null(ef)) {
        if (ef->type != LG_NODE_SCALAR || !parse_date_ns(ef->scalar, &p->from_ns))
            return lg_conf_error(err, ef, "must be a date YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
    }
    const struct lg_node *uh = lg_node_get(n, "utc_hours");
    if (uh && !lg_node_is_null(uh)) {
        const char *dash = uh->type == LG_NODE_SCALAR ? strchr(uh->scalar, '-') : NULL;
        if (dash) {
            p->utc_from_s = parse_hms(uh->scalar, (size_t)(dash - uh->scalar));
            p->utc_to_s = parse_hms(dash + 1, strlen(dash + 1));
        }
        if (!dash || p->utc_from_s < 0 || p->utc_to_s < 0)
            return lg_conf_error(err, uh, "must be \"HH:MM-HH:MM\" (UTC, end exclusive; may wrap midnight)");
    }
    const struct lg_node *lc = lg_node_get(n, "long_context");
    if (lc && !lg_node_is_null(lc)) {
        static const char *const lextra[] = {"above", NULL};
        if (lc->type != LG_NODE_MAP)
            return lg_conf_error(err, lc, "must be a map: {above: TOKENS, input: ..., output: ...}");
        const struct lg_node *above = lg_node_get(lc, "above");
        if (above == NULL)
            return lg_conf_error(err, lc, "\"above\" (input tokens) is required");
        rc = lg_conf_parse_int(above, &p->long_above, err);
        if (rc)
            return rc;
        if (p->long_above <= 0)
            return lg_conf_error(err, above, "must be > 0");
        /* unset tier rates keep the base rates */
        p->lng = p->base;
        struct rates lr = p->base;
        unsigned lset;
        rc = yaml_rates(lc, &lr, &lset, lextra, err);
        if (rc)
            return rc;
        if (!(lset & 1))
            lr.input = p->base.input;
        if (!(lset & 2))
            lr.output = p->base.output;
        if (!(lset & 4))
            lr.cache_read = (set & 4) ? p->base.cache_read : lr.input;
        if (!(lset & 8))
            lr.cache_write = (set & 8) ? p->base.cache_write : lr.input;
        if (!(lset & 16))
            lr.reasoning = (set & 16) ? p->base.reasoning : lr.output;
        p->lng = lr;
        p->has_long = true;
    }
    return LG_OK;
}

static int yaml_strings(const struct lg_node *n, const char ***out, size_t *nout, struct lg_arena *a,
                        struct lg_err *err)
{
    if (n->type == LG_NODE_SCALAR) {
        *out = lg_arena_alloc(a, sizeof **out);
        if (*out == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        (*out)[0] = n->scalar;
        *nout = 1;
        return LG_OK;
    }
    if (n->type != LG_NODE_SEQ)
        return lg_conf_error(err, n, "must be a string or a list of strings");
    *out = lg_arena_calloc(a, n->nitems ? n->nitems : 1, sizeof **out);
    if (*out == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->nitems; i++) {
        int rc = yaml_str(n->items[i], &(*out)[i], err);
        if (rc)
            return rc;
    }
    *nout = n->nitems;
    return LG_OK;
}

static int yaml_entry(struct lg_price_table *t, const struct lg_node *n, struct entry *e, struct lg_err *err)
{
    struct lg_arena *a = t->arena;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map with id, provider, match and prices");
    for (size_t i = 0; i < n->npairs; i++) {
        const char *k = n->pairs[i].key;
        if (strcmp(k, "id") && strcmp(k, "provider") && strcmp(k, "match") && strcmp(k, "prices") && strcmp(k, "comment"))
            return lg_conf_error(err, n->pairs[i].value, "unknown key \"%s\" (known: id, provider, match, prices, comment)", k);
    }
    const struct lg_node *id = lg_node_get(n, "id"), *prov = lg_node_get(n, "provider");
    const struct lg_node *match = lg_node_get(n, "match"), *prices = lg_node_get(n, "prices");
    int rc;
    if (id == NULL)
        return lg_conf_error(err, n, "\"id\" is required");
    if ((rc = yaml_str(id, &e->id, err)))
        return rc;
    e->provider = "";
    if (prov && (rc = yaml_str(prov, &e->provider, err)))
        return rc;
    char *lp = lg_arena_strdup(a, e->provider);
    if (lp == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    lower_copy(lp, strlen(lp) + 1, e->provider);
    e->provider = lp;
    /* match: default is the id itself, exactly */
    size_t cap = 1;
    if (match && match->type == LG_NODE_MAP)
        for (size_t i = 0; i < match->npairs; i++) {
            const struct lg_node *v = match->pairs[i].value;
            cap += v->type == LG_NODE_SEQ ? v->nitems : 1;
        }
    e->m = lg_arena_calloc(a, cap, sizeof *e->m);
    if (e->m == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    if (match == NULL || lg_node_is_null(match)) {
        char *s = lg_arena_strdup(a, e->id);
        if (s == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        lower_copy(s, strlen(s) + 1, e->id);
        e->m[0] = (struct matcher){.kind = M_EXACT, .s = s, .len = strlen(s)};
        e->nm = 1;
    } else {
        if (match->type != LG_NODE_MAP)
            return lg_conf_error(err, match, "must be a map: {exact: [...], prefix: [...], regex: [...]}");
        for (size_t i = 0; i < match->npairs; i++) {
            const char *k = match->pairs[i].key;
            enum match_kind kind;
            if (strcmp(k, "exact") == 0)
                kind = M_EXACT;
            else if (strcmp(k, "prefix") == 0)
                kind = M_PREFIX;
            else if (strcmp(k, "regex") == 0)
                kind = M_REGEX;
            else
                return lg_conf_error(err, match->pairs[i].value, "unknown matcher \"%s\" (known: exact, prefix, regex)", k);
            const char **items;
            size_t ni;
            if ((rc = yaml_strings(match->pairs[i].value, &items, &ni, a, err)))
                return rc;
            const struct lg_node *v = match->pairs[i].value;
            for (size_t j = 0; j < ni; j++) {
                struct matcher *m = &e->m[e->nm++];
                m->kind = kind;
                if (kind == M_REGEX) {
                    m->s = items[j];
                    rc = compile_regex(m, items[j], v->type == LG_NODE_SEQ ? v->items[j] : v, err);
                    if (rc)
                        return rc;
                } else {
                    /* names are compared lower-cased */
                    char *s = lg_arena_strdup(a, items[j]);
                    if (s == NULL)
                        return lg_err_set(err, LG_ENOMEM, "out of memory");
                    lower_copy(s, strlen(s) + 1, items[j]);
                    m->s = s;
                    m->len = strlen(s);
                }
            }
        }
    }
    if (prices == NULL)
        return lg_conf_error(err, n, "\"prices\" is required");
    if (prices->type == LG_NODE_SEQ) {
        if (prices->nitems == 0)
            return lg_conf_error(err, prices, "must not be empty");
        e->p = lg_arena_calloc(a, prices->nitems, sizeof *e->p);
        if (e->p == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        for (size_t i = 0; i < prices->nitems; i++)
            if ((rc = yaml_period(prices->items[i], &e->p[i], err)))
                return rc;
        e->np = prices->nitems;
    } else {
        e->p = lg_arena_calloc(a, 1, sizeof *e->p);
        if (e->p == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        if ((rc = yaml_period(prices, &e->p[0], err)))
            return rc;
        e->np = 1;
    }
    return LG_OK;
}

static int yaml_discounts(struct lg_price_table *t, const struct lg_node *n, struct lg_err *err)
{
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map: {percent: N, providers: {openai: N}}");
    for (size_t i = 0; i < n->npairs; i++) {
        const char *k = n->pairs[i].key;
        const struct lg_node *v = n->pairs[i].value;
        int rc;
        if (strcmp(k, "percent") == 0) {
            if ((rc = lg_conf_parse_double(v, &t->discount, err)))
                return rc;
            if (t->discount < 0 || t->discount > 100)
                return lg_conf_error(err, v, "must be between 0 and 100");
        } else if (strcmp(k, "providers") == 0) {
            if (v->type != LG_NODE_MAP)
                return lg_conf_error(err, v, "must be a map of provider: percent");
            t->disc_prov = lg_arena_calloc(t->arena, v->npairs + 1, sizeof *t->disc_prov);
            t->disc_pct = lg_arena_calloc(t->arena, v->npairs + 1, sizeof *t->disc_pct);
            if (!t->disc_prov || !t->disc_pct)
                return lg_err_set(err, LG_ENOMEM, "out of memory");
            for (size_t j = 0; j < v->npairs; j++) {
                double pct;
                if ((rc = lg_conf_parse_double(v->pairs[j].value, &pct, err)))
                    return rc;
                if (pct < 0 || pct > 100)
                    return lg_conf_error(err, v->pairs[j].value, "must be between 0 and 100");
                t->disc_prov[j] = v->pairs[j].key;
                t->disc_pct[j] = pct;
            }
            t->ndisc = v->npairs;
        } else {
            return lg_conf_error(err, v, "unknown key \"%s\" (known: percent, providers)", k);
        }
    }
    return LG_OK;
}

static int load_yaml(struct lg_price_table *t, const struct lg_conf_source *src, struct lg_conf_doc *doc,
                     struct lg_err *err)
{
    int rc = lg_conf_load(src, 1, NULL, NULL, doc, err);
    if (rc)
        return rc;
    const struct lg_node *root = doc->root;
    for (size_t i = 0; i < root->npairs; i++) {
        const char *k = root->pairs[i].key;
        if (strcmp(k, "models") && strcmp(k, "providers") && strcmp(k, "deployments") && strcmp(k, "discounts") &&
            strcmp(k, "version") && strcmp(k, "source"))
            return lg_conf_error(err, root->pairs[i].value,
                                 "unknown key \"%s\" (known: version, source, providers, models, deployments, discounts)", k);
    }
    const struct lg_node *models = lg_node_get(root, "models");
    if (models == NULL || models->type != LG_NODE_SEQ)
        return lg_conf_error(err, models ? models : root, "\"models\" must be a list of model entries");
    t->e = lg_arena_calloc(t->arena, models->nitems ? models->nitems : 1, sizeof *t->e);
    if (t->e == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < models->nitems; i++) {
        rc = yaml_entry(t, models->items[i], &t->e[t->ne], err);
        t->ne++; /* counted even on error so its regexes are freed */
        if (rc)
            return rc;
    }
    const struct lg_node *provs = lg_node_get(root, "providers");
    if (provs && !lg_node_is_null(provs)) {
        if (provs->type != LG_NODE_MAP)
            return lg_conf_error(err, provs, "must be a map: {azure: {fallback: [openai]}}");
        t->pv = lg_arena_calloc(t->arena, provs->npairs + 1, sizeof *t->pv);
        if (t->pv == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        for (size_t i = 0; i < provs->npairs; i++) {
            const struct lg_node *pn = provs->pairs[i].value;
            struct prov *p = &t->pv[t->npv++];
            p->id = provs->pairs[i].key;
            if (pn->type != LG_NODE_MAP)
                return lg_conf_error(err, pn, "must be a map: {fallback: [providers]}");
            for (size_t j = 0; j < pn->npairs; j++)
                if (strcmp(pn->pairs[j].key, "fallback"))
                    return lg_conf_error(err, pn->pairs[j].value, "unknown key \"%s\" (known: fallback)", pn->pairs[j].key);
            const struct lg_node *fb = lg_node_get(pn, "fallback");
            if (fb && (rc = yaml_strings(fb, &p->fallback, &p->nfallback, t->arena, err)))
                return rc;
        }
    }
    const struct lg_node *dep = lg_node_get(root, "deployments");
    if (dep && !lg_node_is_null(dep)) {
        if (dep->type != LG_NODE_MAP)
            return lg_conf_error(err, dep, "must be a map: {deployment-name: model}");
        t->dep_from = lg_arena_calloc(t->arena, dep->npairs + 1, sizeof(char *));
        t->dep_to = lg_arena_calloc(t->arena, dep->npairs + 1, sizeof(char *));
        if (!t->dep_from || !t->dep_to)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        for (size_t i = 0; i < dep->npairs; i++) {
            t->dep_from[i] = dep->pairs[i].key;
            if ((rc = yaml_str(dep->pairs[i].value, &t->dep_to[i], err)))
                return rc;
        }
        t->ndep = dep->npairs;
    }
    const struct lg_node *disc = lg_node_get(root, "discounts");
    if (disc && !lg_node_is_null(disc) && (rc = yaml_discounts(t, disc, err)))
        return rc;
    return LG_OK;
}

/* ---- LiteLLM JSON ---- */

static const char *litellm_provider(const char *p, char *buf, size_t len)
{
    if (p == NULL)
        return "";
    if (strncmp(p, "vertex_ai", 9) == 0 || strcmp(p, "gemini") == 0)
        return "google";
    if (strcmp(p, "bedrock") == 0 || strcmp(p, "bedrock_converse") == 0)
        return "aws";
    if (strcmp(p, "cohere_chat") == 0)
        return "cohere";
    if (strcmp(p, "xai") == 0)
        return "x-ai";
    if (strncmp(p, "azure", 5) == 0)
        return "azure";
    const char *id = lg_pricing_provider_id(p, buf, len);
    return id ? id : "";
}

static bool json_num(const cJSON *o, const char *k, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
        return false;
    *out = v->valuedouble;
    return true;
}

static int load_litellm(struct lg_price_table *t, const char *text, size_t len, const char *name, struct lg_err *err)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return lg_err_set(err, LG_EINVAL, "%s: not a JSON object (expected LiteLLM model_prices_and_context_window.json)", name);
    }
    size_t n = (size_t)cJSON_GetArraySize(root);
    t->e = lg_arena_calloc(t->arena, n ? n : 1, sizeof *t->e);
    if (t->e == NULL) {
        cJSON_Delete(root);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        if (!cJSON_IsObject(it) || it->string == NULL || strcmp(it->string, "sample_spec") == 0)
            continue;
        double in, out = 0;
        if (!json_num(it, "input_cost_per_token", &in))
            continue; /* image, audio-second, per-request ... models: not token priced */
        json_num(it, "output_cost_per_token", &out);
        struct entry *e = &t->e[t->ne];
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(it, "litellm_provider");
        char *id = lg_arena_strdup(t->arena, it->string);
        char pbuf[64];
        char *prov = lg_arena_strdup(t->arena, litellm_provider(cJSON_IsString(pv) ? pv->valuestring : NULL, pbuf, sizeof pbuf));
        e->m = lg_arena_calloc(t->arena, 2, sizeof *e->m);
        e->p = lg_arena_calloc(t->arena, 1, sizeof *e->p);
        if (!id || !prov || !e->m || !e->p) {
            cJSON_Delete(root);
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        }
        lower_copy(id, strlen(id) + 1, it->string);
        e->id = id;
        e->provider = prov;
        e->m[0] = (struct matcher){.kind = M_EXACT, .s = id, .len = strlen(id)};
        e->nm = 1;
        /* "azure/gpt-4o": also the bare name, which lookups for that provider try */
        const char *slash = strrchr(id, '/');
        if (slash && slash[1]) {
            e->m[1] = (struct matcher){.kind = M_EXACT, .s = slash + 1, .len = strlen(slash + 1)};
            e->nm = 2;
        }
        struct period *p = e->p;
        p->utc_from_s = p->utc_to_s = -1;
        unsigned set = 1 | 2;
        p->base.input = in * 1e6;
        p->base.output = out * 1e6;
        double v;
        if (json_num(it, "cache_read_input_token_cost", &v)) {
            p->base.cache_read = v * 1e6;
            set |= 4;
        }
        if (json_num(it, "cache_creation_input_token_cost", &v)) {
            p->base.cache_write = v * 1e6;
            set |= 8;
        }
        if (json_num(it, "output_cost_per_reasoning_token", &v)) {
            p->base.reasoning = v * 1e6;
            set |= 16;
        }
        rates_defaults(&p->base, set);
        static const struct {
            const char *suffix;
            int64_t above;
        } tiers[] = {{"above_128k_tokens", 128000}, {"above_200k_tokens", 200000}, {"above_272k_tokens", 272000}};
        for (size_t k = 0; k < LG_ARRAY_LEN(tiers) && !p->has_long; k++) {
            char key[96];
            snprintf(key, sizeof key, "input_cost_per_token_%s", tiers[k].suffix);
            if (!json_num(it, key, &v))
                continue;
            p->has_long = true;
            p->long_above = tiers[k].above;
            p->lng = p->base;
            p->lng.input = v * 1e6;
            snprintf(key, sizeof key, "output_cost_per_token_%s", tiers[k].suffix);
            if (json_num(it, key, &v))
                p->lng.output = v * 1e6;
            snprintf(key, sizeof key, "cache_read_input_token_cost_%s", tiers[k].suffix);
            p->lng.cache_read = json_num(it, key, &v) ? v * 1e6 : ((set & 4) ? p->base.cache_read : p->lng.input);
            snprintf(key, sizeof key, "cache_creation_input_token_cost_%s", tiers[k].suffix);
            p->lng.cache_write = json_num(it, key, &v) ? v * 1e6 : ((set & 8) ? p->base.cache_write : p->lng.input);
            p->lng.reasoning = (set & 16) ? p->base.reasoning : p->lng.output;
        }
        e->np = 1;
        t->ne++;
    }
    cJSON_Delete(root);
    if (t->ne == 0)
        return lg_err_set(err, LG_EINVAL, "%s: no token-priced models (input_cost_per_token) found", name);
    return LG_OK;
}

static char *read_file(const char *path, size_t *len, struct lg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        lg_err_set(err, LG_EIO, "cannot read pricing file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (buf == NULL || bad) {
        free(buf);
        lg_err_set(err, LG_EIO, "cannot read pricing file \"%s\"", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int lg_price_table_load(const char *path, const char *text, const char *name, enum lg_price_format fmt,
                        struct lg_price_table **out, struct lg_err *err)
{
    struct lg_price_table *t = table_new();
    if (t == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    int rc;
    if (fmt == LG_PRICE_FORMAT_LITELLM) {
        size_t len = 0;
        char *owned = NULL;
        if (path) {
            owned = read_file(path, &len, err);
            if (owned == NULL) {
                table_free(t);
                return LG_EIO;
            }
            text = owned;
        } else {
            len = strlen(text);
        }
        rc = load_litellm(t, text, len, path ? path : name, err);
        free(owned);
    } else {
        struct lg_conf_source src = {.path = path, .text = path ? NULL : text, .name = name};
        struct lg_conf_doc doc = {0};
        rc = load_yaml(t, &src, &doc, err);
        /* the table keeps strings that point into the doc: move them into the table arena */
        if (rc == LG_OK) {
            for (size_t i = 0; i < t->ne && rc == LG_OK; i++) {
                struct entry *e = &t->e[i];
                e->id = lg_arena_strdup(t->arena, e->id);
                for (size_t j = 0; j < e->nm; j++)
                    if (e->m[j].kind == M_REGEX)
                        e->m[j].s = lg_arena_strdup(t->arena, e->m[j].s);
                if (e->id == NULL)
                    rc = lg_err_set(err, LG_ENOMEM, "out of memory");
            }
            for (size_t i = 0; i < t->npv && rc == LG_OK; i++) {
                t->pv[i].id = lg_arena_strdup(t->arena, t->pv[i].id);
                for (size_t j = 0; j < t->pv[i].nfallback; j++)
                    t->pv[i].fallback[j] = lg_arena_strdup(t->arena, t->pv[i].fallback[j]);
            }
            for (size_t i = 0; i < t->ndep; i++) {
                t->dep_from[i] = lg_arena_strdup(t->arena, t->dep_from[i]);
                t->dep_to[i] = lg_arena_strdup(t->arena, t->dep_to[i]);
            }
            for (size_t i = 0; i < t->ndisc; i++)
                t->disc_prov[i] = lg_arena_strdup(t->arena, t->disc_prov[i]);
        }
        lg_conf_doc_free(&doc);
    }
    if (rc != LG_OK) {
        table_free(t);
        return rc;
    }
    *out = t;
    return LG_OK;
}

int lg_price_table_load_default(struct lg_price_table **out, struct lg_err *err)
{
    return lg_price_table_load(NULL, lg_default_prices, "<embedded default price table>", LG_PRICE_FORMAT_LLMGATE, out, err);
}

/* ---- lookup ---- */

static bool matcher_hit(const struct matcher *m, const char *name, size_t len)
{
    switch (m->kind) {
    case M_EXACT:
        return m->len == len && memcmp(m->s, name, len) == 0;
    case M_PREFIX:
        return len >= m->len && memcmp(m->s, name, m->len) == 0;
    case M_REGEX: {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(m->re, NULL);
        if (md == NULL)
            return false;
        int rc = pcre2_match(m->re, (PCRE2_SPTR)name, len, 0, 0, md, NULL);
        pcre2_match_data_free(md);
        return rc >= 0;
    }
    }
    return false;
}

static bool entry_hit(const struct entry *e, const char *name, size_t len)
{
    for (size_t i = 0; i < e->nm; i++)
        if (matcher_hit(&e->m[i], name, len))
            return true;
    return false;
}

/* First entry (file order) of provider group `g` ("" = any provider) matching name. */
static int find_in_group(const struct lg_price_table *t, const char *g, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < t->ne; i++) {
        if (*g && strcmp(t->e[i].provider, g) != 0)
            continue;
        if (entry_hit(&t->e[i], name, len))
            return (int)i;
    }
    return -1;
}

static const struct prov *find_prov(const struct lg_price_table *t, const char *id)
{
    for (size_t i = 0; i < t->npv; i++)
        if (strcmp(t->pv[i].id, id) == 0)
            return &t->pv[i];
    return NULL;
}

static int lookup_uncached(const struct lg_price_table *t, const char *provider, const char *name, bool *fine_tune)
{
    char buf[NAME_MAX_LEN * (MAX_VARIANTS + 1)];
    const char *v[MAX_VARIANTS];
    int ft_from;
    size_t nv = lg_pricing_name_variants(name, buf, sizeof buf, v, MAX_VARIANTS, &ft_from);
    const char *groups[16];
    size_t ng = 0;
    if (provider) {
        groups[ng++] = provider;
        const struct prov *p = find_prov(t, provider);
        for (size_t i = 0; p && i < p->nfallback && ng < LG_ARRAY_LEN(groups) - 1; i++)
            groups[ng++] = p->fallback[i];
    }
    groups[ng++] = "";
    for (size_t i = 0; i < nv; i++)
        for (size_t g = 0; g < ng; g++) {
            int e = find_in_group(t, groups[g], v[i]);
            if (e >= 0) {
                *fine_tune = ft_from >= 0 && (int)i >= ft_from;
                return e;
            }
        }
    return -1;
}

static uint64_t fnv1a(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *a; a++)
        h = (h ^ (uint8_t)*a) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (; *b; b++)
        h = (h ^ (uint8_t)*b) * 1099511628211ULL;
    return h;
}

/* Entry index for (provider, name) or -1; cached. */
static int lookup(struct lg_price_table *t, const char *provider, const char *name, bool *fine_tune)
{
    const char *pk = provider ? provider : "";
    uint64_t h = fnv1a(pk, name);
    size_t plen = strlen(pk), nlen = strlen(name);
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_slot *s = &t->cache[(h + i) % CACHE_SLOTS];
        if (s->key == NULL)
            break;
        if (memcmp(s->key, pk, plen) == 0 && s->key[plen] == 0x1f && strcmp(s->key + plen + 1, name) == 0) {
            int e = s->entry;
            *fine_tune = s->fine_tune;
            pthread_mutex_unlock(&t->lock);
            return e;
        }
    }
    pthread_mutex_unlock(&t->lock);
    /* the slow path runs unlocked: two threads may both compute the same answer */
    bool ft = false;
    int e = lookup_uncached(t, provider, name, &ft);
    *fine_tune = ft;
    char *key = malloc(plen + nlen + 2);
    if (key == NULL)
        return e;
    memcpy(key, pk, plen);
    key[plen] = 0x1f;
    memcpy(key + plen + 1, name, nlen + 1);
    pthread_mutex_lock(&t->lock);
    if (t->cache_n >= CACHE_SLOTS / 2) {
        for (size_t i = 0; i < CACHE_SLOTS; i++) {
            free(t->cache[i].key);
            t->cache[i].key = NULL;
        }
        t->cache_n = 0;
    }
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        struct cache_slot *s = &t->cache[(h + i) % CACHE_SLOTS];
        if (s->key == NULL) {
            s->key = key;
            s->entry = e;
            s->fine_tune = ft;
            t->cache_n++;
            key = NULL;
            break;
        }
        if (strcmp(s->key, key) == 0)
            break; /* another thread got there first */
    }
    pthread_mutex_unlock(&t->lock);
    free(key);
    return e;
}

/* ---- pricer ---- */

struct lg_pricer {
    pthread_mutex_t lock; /* guards `table` */
    struct lg_price_table *table;
    struct lg_arena *arena;
    const char *file;
    enum lg_price_format format;
    const char **dep_from, **dep_to;
    size_t ndep;
    double discount;
    bool has_discount;
    const char **disc_prov;
    double *disc_pct;
    size_t ndisc;
    int64_t reload_check_ns;
    const char *log_id;
    pthread_mutex_t reload_lock;
    int64_t next_check_ns;
    struct timespec mtime;
    off_t size;
    ino_t ino;
    struct timespec failed_mtime; /* a bad file is reported once per version */
    _Atomic uint64_t generation;
};

static void stat_file(const char *path, struct timespec *mt, off_t *size, ino_t *ino)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        *mt = st.st_mtim;
        *size = st.st_size;
        *ino = st.st_ino;
    } else {
        memset(mt, 0, sizeof *mt);
        *size = -1;
        *ino = 0;
    }
}

static int pricer_load(struct lg_pricer *p, struct lg_price_table **out, struct lg_err *err)
{
    if (p->file)
        return lg_price_table_load(p->file, NULL, NULL, p->format, out, err);
    return lg_price_table_load_default(out, err);
}

int lg_pricer_create(const struct lg_pricing_opts *o, struct lg_pricer **out, struct lg_err *err)
{
    struct lg_pricer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    p->arena = lg_arena_create(0);
    if (p->arena == NULL) {
        free(p);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->reload_lock, NULL);
    struct lg_arena *a = p->arena;
    p->file = o->file ? lg_arena_strdup(a, o->file) : NULL;
    p->format = o->format;
    p->log_id = lg_arena_strdup(a, o->log_id ? o->log_id : "llm_cost");
    p->reload_check_ns = o->reload_check_ns;
    p->discount = o->discount_percent;
    p->has_discount = o->discount_percent > 0;
    p->dep_from = lg_arena_calloc(a, o->ndeployments + 1, sizeof(char *));
    p->dep_to = lg_arena_calloc(a, o->ndeployments + 1, sizeof(char *));
    p->disc_prov = lg_arena_calloc(a, o->ndiscount_providers + 1, sizeof(char *));
    p->disc_pct = lg_arena_calloc(a, o->ndiscount_providers + 1, sizeof(double));
    bool oom = !p->file && o->file;
    for (size_t i = 0; i < o->ndeployments && p->dep_from && p->dep_to; i++) {
        p->dep_from[i] = lg_arena_strdup(a, o->deploy_from[i]);
        p->dep_to[i] = lg_arena_strdup(a, o->deploy_to[i]);
        oom |= !p->dep_from[i] || !p->dep_to[i];
    }
    p->ndep = o->ndeployments;
    for (size_t i = 0; i < o->ndiscount_providers && p->disc_prov && p->disc_pct; i++) {
        char b[64];
        const char *id = lg_pricing_provider_id(o->discount_providers[i], b, sizeof b);
        p->disc_prov[i] = lg_arena_strdup(a, id ? id : "");
        p->disc_pct[i] = o->discount_provider_percent[i];
        oom |= !p->disc_prov[i];
    }
    p->ndisc = o->ndiscount_providers;
    if (oom || !p->dep_from || !p->dep_to || !p->disc_prov || !p->disc_pct || !p->log_id) {
        lg_pricer_destroy(p);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    if (p->file)
        stat_file(p->file, &p->mtime, &p->size, &p->ino);
    int rc = pricer_load(p, &p->table, err);
    if (rc) {
        lg_pricer_destroy(p);
        return rc;
    }
    p->next_check_ns = lg_now_mono_ns() + p->reload_check_ns;
    *out = p;
    return LG_OK;
}

void lg_pricer_destroy(struct lg_pricer *p)
{
    if (p == NULL)
        return;
    lg_price_table_unref(p->table);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->reload_lock);
    lg_arena_destroy(p->arena);
    free(p);
}

uint64_t lg_pricer_generation(struct lg_pricer *p) { return atomic_load(&p->generation); }

int lg_pricer_maybe_reload(struct lg_pricer *p, int64_t now)
{
    if (p->file == NULL || p->reload_check_ns <= 0)
        return 0;
    if (now < __atomic_load_n(&p->next_check_ns, __ATOMIC_RELAXED))
        return 0;
    if (pthread_mutex_trylock(&p->reload_lock) != 0)
        return 0; /* another thread is checking */
    int reloaded = 0;
    if (now >= p->next_check_ns) {
        __atomic_store_n(&p->next_check_ns, now + p->reload_check_ns, __ATOMIC_RELAXED);
        struct timespec mt;
        off_t size;
        ino_t ino;
        stat_file(p->file, &mt, &size, &ino);
        bool changed = size >= 0 && (mt.tv_sec != p->mtime.tv_sec || mt.tv_nsec != p->mtime.tv_nsec ||
                                     size != p->size || ino != p->ino);
        bool already_failed = mt.tv_sec == p->failed_mtime.tv_sec && mt.tv_nsec == p->failed_mtime.tv_nsec;
        if (changed && !already_failed) {
            struct lg_price_table *nt = NULL;
            struct lg_err err;
            if (pricer_load(p, &nt, &err) == LG_OK) {
                pthread_mutex_lock(&p->lock);
                struct lg_price_table *old = p->table;
                p->table = nt;
                pthread_mutex_unlock(&p->lock);
                lg_price_table_unref(old);
                p->mtime = mt;
                p->size = size;
                p->ino = ino;
                atomic_fetch_add(&p->generation, 1);
                lg_info(p->log_id, "reloaded pricing file %s: %zu models", p->file, nt->ne);
                reloaded = 1;
            } else {
                p->failed_mtime = mt;
                lg_error(p->log_id, "pricing file changed but cannot be loaded; keeping the previous table: %s", err.msg);
            }
        }
    }
    pthread_mutex_unlock(&p->reload_lock);
    return reloaded;
}

static const char *deployment_target(const char **from, const char **to, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(from[i], name) == 0)
            return to[i];
    return NULL;
}

static bool in_utc_window(const struct period *pd, int64_t t_ns)
{
    if (pd->utc_from_s < 0)
        return true;
    int64_t sec = t_ns / 1000000000LL;
    int32_t day_s = (int32_t)(((sec % 86400) + 86400) % 86400);
    if (pd->utc_to_s < pd->utc_from_s) /* wraps midnight */
        return day_s >= pd->utc_from_s || day_s < pd->utc_to_s;
    return day_s >= pd->utc_from_s && day_s < pd->utc_to_s;
}

static const struct period *period_at(const struct entry *e, int64_t t_ns)
{
    for (size_t i = e->np; i-- > 0;) {
        const struct period *pd = &e->p[i];
        if ((pd->from_ns == 0 || t_ns >= pd->from_ns) && in_utc_window(pd, t_ns))
            return pd;
    }
    return &e->p[0];
}

int lg_pricer_price(struct lg_pricer *p, const struct lg_llm_call *call, struct lg_price_result *out)
{
    memset(out, 0, sizeof *out);
    if (call->input_tokens < 0 && call->output_tokens < 0)
        return LG_EINVAL;
    if (call->model == NULL || *call->model == '\0')
        return 0;
    pthread_mutex_lock(&p->lock);
    struct lg_price_table *t = lg_price_table_ref(p->table);
    pthread_mutex_unlock(&p->lock);

    const char *name = call->model;
    const char *dep = deployment_target(p->dep_from, p->dep_to, p->ndep, name);
    if (!dep)
        dep = deployment_target(t->dep_from, t->dep_to, t->ndep, name);
    if (dep)
        name = dep;
    char pbuf[64];
    const char *prov = lg_pricing_provider_id(call->provider, pbuf, sizeof pbuf);
    bool ft = false;
    int ei = lookup(t, prov, name, &ft);
    if (ei < 0) {
        lg_price_table_unref(t);
        return 0;
    }
    const struct entry *e = &t->e[ei];
    int64_t t_ns = call->start_time_unix_nano ? (int64_t)call->start_time_unix_nano : lg_now_wall_ns();
    const struct period *pd = period_at(e, t_ns);
    double in = call->input_tokens > 0 ? (double)call->input_tokens : 0;
    double outp = call->output_tokens > 0 ? (double)call->output_tokens : 0;
    double cr = call->cache_read_tokens > 0 ? (double)call->cache_read_tokens : 0;
    double cw = call->cache_write_tokens > 0 ? (double)call->cache_write_tokens : 0;
    double rs = call->reasoning_tokens > 0 ? (double)call->reasoning_tokens : 0;
    const struct rates *r = &pd->base;
    if (pd->has_long && in > (double)pd->long_above) {
        r = &pd->lng;
        out->long_context = true;
    }
    /* input includes the cache and output the reasoning (lg_llm_read normalised them); each
     * part is priced once, at its own rate */
    double uncached = in - cr - cw;
    if (uncached < 0)
        uncached = 0;
    double plain_out = outp - rs;
    if (plain_out < 0)
        plain_out = 0;
    double prompt = (uncached * r->input + cr * r->cache_read + cw * r->cache_write) / 1e6;
    double completion = (plain_out * r->output + rs * r->reasoning) / 1e6;

    double pct = p->has_discount ? p->discount : t->discount;
    const char *dprov = prov ? prov : e->provider;
    bool found = false;
    for (size_t i = 0; i < p->ndisc && !found; i++)
        if (strcmp(p->disc_prov[i], dprov) == 0 || strcmp(p->disc_prov[i], e->provider) == 0) {
            pct = p->disc_pct[i];
            found = true;
        }
    for (size_t i = 0; i < t->ndisc && !found; i++)
        if (strcmp(t->disc_prov[i], dprov) == 0 || strcmp(t->disc_prov[i], e->provider) == 0) {
            pct = t->disc_pct[i];
            found = true;
        }
    double factor = 1.0 - pct / 100.0;
    out->prompt_usd = prompt * factor;
    out->completion_usd = completion * factor;
    out->total_usd = out->prompt_usd + out->completion_usd;
    out->discount_percent = pct;
    out->fine_tune_base = ft;
    /* entry strings live in the table arena; the pricer keeps the table alive unless a reload
     * swapped it, so copy nothing and hand out the ids of the table we still reference */
    out->entry_id = e->id;
    out->entry_provider = e->provider;
    lg_price_table_unref(t);
    return 1;
}
