/* exporters/prometheus.c — the `prometheus` exporter (as in the Collector's contrib): a pull
 * endpoint. It keeps the latest state of every series it receives and renders it on
 * GET /metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * What it owns: the HTTP server on `endpoint`, and the series table (families by
 * Prometheus name, each with its series keyed by the rendered label set). consume()
 * translates each data point (OTel name -> Prometheus name, attributes -> labels) and
 * updates the table under one mutex; a scrape renders under the same mutex, which costs
 * a pass over the series (no I/O), so neither side holds it for long.
 *
 * Accumulation, as the Collector's exporter does it:
 *   cumulative monotonic sum -> counter, replaced by the newest point
 *   delta monotonic sum      -> counter, added up
 *   non-monotonic cumulative sum, gauge -> gauge, replaced
 *   cumulative histogram     -> histogram, replaced; delta histogram -> added up (same bounds)
 *   summary                  -> summary, replaced
 *   non-monotonic delta sums, exponential histograms, points whose name clashes with a
 *   family of another type, and malformed histograms are not representable: they are
 *   counted in otelcol_exporter_send_failed_metric_points and logged once per metric.
 * A series not updated for metric_expiration is removed (0 = never). */
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/httpd.h"
#include "../core/log.h"
#include "../core/runtime.h"

/* ---- configuration ---- */

struct prom_const_labels {
    const char **names; /* sanitised label names */
    const char **values;
    size_t n;
};

struct prom_rtt_conf {
    bool enabled;
};

struct prom_conf {
    const char *endpoint;
    const char *namespace_;
    struct prom_const_labels const_labels;
    bool send_timestamps;
    int64_t metric_expiration_ns;
    struct prom_rtt_conf resource_to_telemetry_conversion;
    bool add_metric_suffixes;
};

static char *sanitize_label_name(struct lg_arena *a, const char *s, size_t len);

static int parse_const_labels(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    struct prom_const_labels *cl = dst;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "expected a map of label name to value");
    cl->n = 0;
    cl->names = lg_arena_calloc(a, n->npairs ? n->npairs : 1, sizeof *cl->names);
    cl->values = lg_arena_calloc(a, n->npairs ? n->npairs : 1, sizeof *cl->values);
    if (cl->names == NULL || cl->values == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->npairs; i++) {
        const struct lg_node *v = n->pairs[i].value;
        if (v->type != LG_NODE_SCALAR && v->type != LG_NODE_NULL)
            return lg_conf_error(err, v, "expected a scalar label value");
        if (n->pairs[i].key[0] == '\0')
            return lg_conf_error(err, v, "label name must not be empty");
        cl->names[cl->n] = sanitize_label_name(a, n->pairs[i].key, strlen(n->pairs[i].key));
        cl->values[cl->n] = v->scalar ? v->scalar : "";
        if (cl->names[cl->n] == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        cl->n++;
    }
    return LG_OK;
}

static const struct lg_conf_field prom_rtt_fields[] = {
    LG_CONF_BOOL("enabled", "false", struct prom_rtt_conf, enabled, "add every resource attribute as a label"),
    LG_CONF_END,
};

static const struct lg_conf_field prom_fields[] = {
    LG_CONF_STRING("endpoint", NULL, struct prom_conf, endpoint, "host:port the /metrics endpoint listens on (required)"),
    LG_CONF_STRING("namespace", "", struct prom_conf, namespace_, "prefix of every metric name (namespace_name)"),
    LG_CONF_CUSTOM("const_labels", NULL, struct prom_conf, const_labels, parse_const_labels,
                   "labels added to every series ({name: value})"),
    LG_CONF_BOOL("send_timestamps", "false", struct prom_conf, send_timestamps,
                 "write each sample's timestamp (ms) from the data point"),
    LG_CONF_DURATION("metric_expiration", "5m", struct prom_conf, metric_expiration_ns,
                     "drop series not updated for this long (0: never)"),
    LG_CONF_SECTION("resource_to_telemetry_conversion", struct prom_conf, resource_to_telemetry_conversion,
                    prom_rtt_fields, "resource attributes as labels"),
    LG_CONF_ACCEPTED("enable_open_metrics", "accepted; the text format 0.0.4 is always served"),
    LG_CONF_BOOL("add_metric_suffixes", "true", struct prom_conf, add_metric_suffixes,
                 "append unit suffixes (_seconds, _bytes, ...) and _total to monotonic counters"),
    LG_CONF_END,
};

/* ---- growable text buffer ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + more + 1)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (np == NULL) {
        b->oom = true;
        return;
    }
    b->p = np;
    b->cap = nc;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Prometheus sample value: integers (the common case for counts) as integers, other
 * values in the shortest form that reads back to the same double, and +Inf/-Inf/NaN. */
static void format_value(char *out, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(out, len, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, len, "%.*g", prec, v);
            if (strtod(out, NULL) == v)
                break;
        }
    }
}

/* ---- name translation ---- */

static bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* Label names: [a-zA-Z_][a-zA-Z0-9_]*; other characters become '_'; a leading digit gets
 * "key_" and a single leading '_' gets "key" in front (names starting "__" are reserved
 * by Prometheus), as the Collector's translator does. */
static char *sanitize_label_name(struct lg_arena *a, const char *s, size_t len)
{
    char *out = lg_arena_alloc(a, len + 5);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    if (len > 0 && s[0] >= '0' && s[0] <= '9') {
        memcpy(out, "key_", 4);
        o = 4;
    } else if (len > 0 && s[0] == '_' && (len < 2 || s[1] != '_')) {
        memcpy(out, "key", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++)
        out[o++] = is_alnum(s[i]) ? s[i] : '_';
    out[o] = '\0';
    return out;
}

struct unit_word {
    const char *otel, *prom;
};

/* UCUM units the Collector's translator spells out; others are used as written. */
static const struct unit_word main_units[] = {
    {"d", "days"}, {"h", "hours"}, {"min", "minutes"}, {"s", "seconds"}, {"ms", "milliseconds"},
    {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"}, {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"}, {"GiBy", "gibibytes"}, {"TiBy", "tibibytes"}, {"KBy", "kilobytes"},
    {"MBy", "megabytes"}, {"GBy", "gigabytes"}, {"TBy", "terabytes"}, {"m", "meters"},
    {"V", "volts"}, {"A", "amperes"}, {"J", "joules"}, {"W", "watts"}, {"g", "grams"},
    {"Cel", "celsius"}, {"Hz", "hertz"}, {"1", ""}, {"%", "percent"},
};
static const struct unit_word per_units[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"}, {"w", "week"}, {"mo", "month"}, {"y", "year"},
};

static const char *unit_lookup(const struct unit_word *t, size_t n, const char *u, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].otel) == len && memcmp(t[i].otel, u, len) == 0)
            return t[i].prom;
    return NULL;
}

/* Words kept of a metric name (plus unit and suffix words); real names have a handful. */
#define MAX_TOKENS 128

struct tokens {
    const char *p[MAX_TOKENS];
    size_t len[MAX_TOKENS];
    size_t n;
};

static void tokens_add(struct tokens *t, const char *p, size_t len)
{
    if (t->n < MAX_TOKENS && len > 0) {
        t->p[t->n] = p;
        t->len[t->n] = len;
        t->n++;
    }
}

static bool tokens_has(const struct tokens *t, const char *p, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->len[i] == len && memcmp(t->p[i], p, len) == 0)
            return true;
    return false;
}

/* Splits on every character that is not [A-Za-z0-9] (so runs of separators collapse). */
static void tokenize(struct tokens *t, const char *s)
{
    size_t i = 0, n = strlen(s);
    while (i < n) {
        while (i < n && !is_alnum(s[i]))
            i++;
        size_t st = i;
        while (i < n && is_alnum(s[i]))
            i++;
        tokens_add(t, s + st, i - st);
    }
}

/* A unit word made of Prometheus-safe characters (others become '_', edges trimmed). */
static char *clean_word(struct lg_arena *a, const char *s, size_t len)
{
    char *w = lg_arena_strndup(a, s, len);
    if (w == NULL)
        return NULL;
    for (char *p = w; *p; p++)
        if (!is_alnum(*p))
            *p = '_';
    char *st = w;
    while (*st == '_')
        st++;
    size_t l = strlen(st);
    while (l > 0 && st[l - 1] == '_')
        st[--l] = '\0';
    return st;
}

enum prom_type { PT_COUNTER, PT_GAUGE, PT_HISTOGRAM, PT_SUMMARY };
static const char *const prom_type_names[] = {"counter", "gauge", "histogram", "summary"};

/* The Prometheus family name of an OTel metric, as the Collector's translator builds it:
 * with add_metric_suffixes, the name's words joined by '_', then the unit word (`s` ->
 * seconds; `{...}` annotations add nothing), `per_<unit>` for `x/y` units, `total` at the
 * end of monotonic counters and `ratio` for gauges of unit 1; without it, invalid
 * characters just become '_'. The namespace goes in front; a leading digit gets '_'. */
static char *prom_family_name(struct lg_arena *a, const struct prom_conf *conf, const lg_metric *m,
                              enum prom_type type)
{
    struct sbuf b = {0};
    if (conf->namespace_ && conf->namespace_[0]) {
        for (const char *p = conf->namespace_; *p; p++)
            sb_add(&b, is_alnum(*p) ? p : "_", 1);
        sb_add(&b, "_", 1);
    }
    const char *name = m->name ? m->name : "";
    if (!conf->add_metric_suffixes) {
        for (const char *p = name; *p; p++)
            sb_add(&b, (is_alnum(*p) || *p == ':' || *p == '_') ? p : "_", 1);
    } else {
        struct tokens t = {0};
        tokenize(&t, name);
        const char *unit = m->unit ? m->unit : "";
        const char *slash = strchr(unit, '/');
        size_t main_len = slash ? (size_t)(slash - unit) : strlen(unit);
        while (main_len > 0 && unit[main_len - 1] == ' ')
            main_len--;
        const char *main_u = unit;
        while (main_len > 0 && *main_u == ' ') {
            main_u++;
            main_len--;
        }
        if (main_len > 0 && memchr(main_u, '{', main_len) == NULL && memchr(main_u, '}', main_len) == NULL) {
            const char *w = unit_lookup(main_units, LG_ARRAY_LEN(main_units), main_u, main_len);
            char *cw = w ? clean_word(a, w, strlen(w)) : clean_word(a, main_u, main_len);
            if (cw && cw[0] && !tokens_has(&t, cw, strlen(cw)))
                tokens_add(&t, cw, strlen(cw));
        }
        if (slash && slash[1] && strchr(slash + 1, '{') == NULL && strchr(slash + 1, '}') == NULL) {
            const char *pu = slash + 1;
            size_t pl = strlen(pu);
            while (pl > 0 && pu[pl - 1] == ' ')
                pl--;
            const char *w = unit_lookup(per_units, LG_ARRAY_LEN(per_units), pu, pl);
            char *cw = w ? clean_word(a, w, strlen(w)) : clean_word(a, pu, pl);
            if (cw && cw[0]) {
                tokens_add(&t, "per", 3);
                tokens_add(&t, cw, strlen(cw));
            }
        }
        if (type == PT_COUNTER) {
            struct tokens kept = {0};
            for (size_t i = 0; i < t.n; i++)
                if (!(t.len[i] == 5 && memcmp(t.p[i], "total", 5) == 0))
                    tokens_add(&kept, t.p[i], t.len[i]);
            t = kept;
            tokens_add(&t, "total", 5);
        }
        if (type == PT_GAUGE && strcmp(unit, "1") == 0 && !tokens_has(&t, "ratio", 5))
            tokens_add(&t, "ratio", 5);
        for (size_t i = 0; i < t.n; i++) {
            if (i)
                sb_add(&b, "_", 1);
            sb_add(&b, t.p[i], t.len[i]);
        }
    }
    if (b.oom || b.len == 0) {
        free(b.p);
        return NULL;
    }
    char *out;
    if (b.p[0] >= '0' && b.p[0] <= '9') {
        out = lg_arena_alloc(a, b.len + 2);
        if (out) {
            out[0] = '_';
            memcpy(out + 1, b.p, b.len + 1);
        }
    } else {
        out = lg_arena_strndup(a, b.p, b.len);
    }
    free(b.p);
    return out;
}

/* ---- attribute values as label text ---- */

static void any_to_text(struct sbuf *b, const lg_any_value *v, bool nested);

static void json_string(struct sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_add(b, e, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_add(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static void base64(struct sbuf *b, const uint8_t *d, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        char q[4] = {tbl[v >> 18 & 63], tbl[v >> 12 & 63], i + 1 < n ? tbl[v >> 6 & 63] : '=', i + 2 < n ? tbl[v & 63] : '='};
        sb_add(b, q, 4);
    }
}

/* Strings as they are, numbers and booleans as text, arrays and maps as JSON (what the
 * Collector's AsString() gives). */
static void any_to_text(struct sbuf *b, const lg_any_value *v, bool nested)
{
    char num[64];
    if (v == NULL)
        return;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        if (nested)
            json_string(b, v->string_value ? v->string_value : "");
        else
            sb_str(b, v->string_value ? v->string_value : "");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        sb_str(b, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        sb_printf(b, "%" PRId64, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        format_value(num, sizeof num, v->double_value);
        sb_str(b, num);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        sb_add(b, "[", 1);
        for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++) {
            if (i)
                sb_add(b, ",", 1);
            any_to_text(b, v->array_value->values[i], true);
        }
        sb_add(b, "]", 1);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        sb_add(b, "{", 1);
        for (size_t i = 0; v->kvlist_value && i < v->kvlist_value->n_values; i++) {
            if (i)
                sb_add(b, ",", 1);
            json_string(b, v->kvlist_value->values[i]->key ? v->kvlist_value->values[i]->key : "");
            sb_add(b, ":", 1);
            any_to_text(b, v->kvlist_value->values[i]->value, true);
        }
        sb_add(b, "}", 1);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        if (nested)
            sb_add(b, "\"", 1);
        base64(b, v->bytes_value.data, v->bytes_value.len);
        if (nested)
            sb_add(b, "\"", 1);
        break;
    default:
        if (nested)
            sb_str(b, "null");
        break;
    }
}

/* ---- label sets ---- */

struct label {
    const char *name; /* sanitised */
    char *value;
    int source;       /* lower wins on a clash between sources */
    size_t order;     /* position, to keep the merge of duplicates stable */
};

struct labelset {
    struct label *items;
    size_t n, cap;
    struct lg_arena *a;
    bool oom;
};

static void ls_add(struct labelset *ls, const char *name, size_t name_len, bool sanitize, const char *value, int source)
{
    if (ls->n == ls->cap) {
        size_t nc = ls->cap ? ls->cap * 2 : 16;
        struct label *ni = lg_arena_alloc(ls->a, nc * sizeof *ni);
        if (ni == NULL) {
            ls->oom = true;
            return;
        }
        if (ls->n)
            memcpy(ni, ls->items, ls->n * sizeof *ni);
        ls->items = ni;
        ls->cap = nc;
    }
    const char *nm = sanitize ? sanitize_label_name(ls->a, name, name_len) : lg_arena_strndup(ls->a, name, name_len);
    char *v = lg_arena_strdup(ls->a, value);
    if (nm == NULL || v == NULL) {
        ls->oom = true;
        return;
    }
    ls->items[ls->n] = (struct label){.name = nm, .value = v, .source = source, .order = ls->n};
    ls->n++;
}

static void ls_add_attrs(struct labelset *ls, lg_kv *const *kv, size_t n, int source)
{
    for (size_t i = 0; i < n; i++) {
        if (kv[i]->key == NULL || kv[i]->key[0] == '\0')
            continue;
        struct sbuf v = {0};
        sb_add(&v, "", 0);
        any_to_text(&v, kv[i]->value, false);
        if (!v.oom)
            ls_add(ls, kv[i]->key, strlen(kv[i]->key), true, v.p ? v.p : "", source);
        else
            ls->oom = true;
        free(v.p);
    }
}

static int label_cmp(const void *x, const void *y)
{
    const struct label *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c)
        return c;
    if (a->source != b->source)
        return a->source < b->source ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static void escape_label_value(struct sbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            sb_add(b, "\\\\", 2);
        else if (*s == '"')
            sb_add(b, "\\\"", 2);
        else if (*s == '\n')
            sb_add(b, "\\n", 2);
        else
            sb_add(b, s, 1);
    }
}

/* Sorted `name="value",...` text. Names that collide after sanitising: values of the same
 * source are joined with ';' (as the Collector does), otherwise the earlier source wins.
 * Empty values are left out (Prometheus treats an empty label as absent). */
static char *ls_render(struct labelset *ls)
{
    if (ls->n > 1)
        qsort(ls->items, ls->n, sizeof *ls->items, label_cmp);
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    bool first = true;
    for (size_t i = 0; i < ls->n;) {
        size_t j = i + 1;
        while (j < ls->n && strcmp(ls->items[j].name, ls->items[i].name) == 0)
            j++;
        struct sbuf v = {0};
        sb_add(&v, "", 0);
        for (size_t k = i; k < j && ls->items[k].source == ls->items[i].source; k++) {
            if (k > i)
                sb_add(&v, ";", 1);
            sb_str(&v, ls->items[k].value);
        }
        if (!v.oom && v.len > 0) {
            if (!first)
                sb_add(&b, ",", 1);
            first = false;
            sb_str(&b, ls->items[i].name);
            sb_add(&b, "=\"", 2);
            escape_label_value(&b, v.p);
            sb_add(&b, "\"", 1);
        }
        b.oom |= v.oom;
        free(v.p);
        i = j;
    }
    if (b.oom || ls->oom) {
        free(b.p);
        return NULL;
    }
    char *out = lg_arena_strdup(ls->a, b.p);
    free(b.p);
    return out;
}

/* ---- the series table ---- */

struct series {
    struct family *fam;
    char *labels;          /* rendered label text, "" for none; owned */
    char *key;             /* family name + '\n' + labels; owned (hash key) */
    uint64_t hash;
    struct series *hnext;  /* hash chain */
    size_t index;          /* position in fam->series */
    int64_t updated_mono_ns;
    uint64_t time_unix_nano;
    double value;          /* counter, gauge */
    /* histogram */
    size_t nbounds;
    double *bounds;
    uint64_t *counts;      /* nbounds + 1 (not cumulative) */
    double sum;
    uint64_t count;
    /* summary */
    size_t nq;
    double *quantiles, *qvalues;
};

struct family {
    char *name;
    char *help;
    enum prom_type type;
    struct series **series;
    size_t n, cap;
    struct family *hnext;
    uint64_t hash;
};

struct prom_state {
    struct lg_component *c;
    struct prom_conf *conf;
    struct lg_http_server *srv;
    pthread_mutex_t lock;
    struct family **fam_tab; /* hash buckets */
    size_t fam_buckets, nfam;
    struct series **ser_tab;
    size_t ser_buckets, nser;
    int64_t last_sweep_mono_ns;
    char **warned; /* metric names already warned about */
    size_t nwarned;
    struct lg_counter *sent, *failed;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Doubles a chained hash table when it is as full as it has buckets. */
#define DEFINE_REHASH(fn, T)                                                                       \
    static int fn(T ***tab, size_t *nb, size_t count)                                              \
    {                                                                                              \
        if (count < *nb)                                                                           \
            return 0;                                                                              \
        size_t nn = *nb ? *nb * 2 : 64;                                                            \
        T **nt = calloc(nn, sizeof *nt);                                                           \
        if (nt == NULL)                                                                            \
            return -1;                                                                             \
        for (size_t i = 0; i < *nb; i++) {                                                         \
            T *e = (*tab)[i];                                                                      \
            while (e) {                                                                            \
                T *nx = e->hnext;                                                                  \
                e->hnext = nt[e->hash & (nn - 1)];                                                 \
                nt[e->hash & (nn - 1)] = e;                                                        \
                e = nx;                                                                            \
            }                                                                                      \
        }                                                                                          \
        free(*tab);                                                                                \
        *tab = nt;                                                                                 \
        *nb = nn;                                                                                  \
        return 0;                                                                                  \
    }
DEFINE_REHASH(rehash_families, struct family)
DEFINE_REHASH(rehash_series, struct series)

static struct family *family_get(struct prom_state *st, const char *name, enum prom_type type,
                                 const char *help, bool *type_clash)
{
    *type_clash = false;
    uint64_t h = hash_str(name);
    if (st->fam_buckets) {
        for (struct family *f = st->fam_tab[h & (st->fam_buckets - 1)]; f; f = f->hnext)
            if (f->hash == h && strcmp(f->name, name) == 0) {
                if (f->type != type) {
                    *type_clash = true;
                    return NULL;
                }
                if (help && help[0] && strcmp(help, f->help) != 0) {
                    char *nh = strdup(help);
                    if (nh) {
                        free(f->help);
                        f->help = nh;
                    }
                }
                return f;
            }
    }
    if (rehash_families(&st->fam_tab, &st->fam_buckets, st->nfam) != 0)
        return NULL;
    struct family *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    f->hash = h;
    f->hnext = st->fam_tab[h & (st->fam_buckets - 1)];
    st->fam_tab[h & (st->fam_buckets - 1)] = f;
    st->nfam++;
    return f;
}

static void family_unlink(struct prom_state *st, struct family *f)
{
    struct family **pp = &st->fam_tab[f->hash & (st->fam_buckets - 1)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    st->nfam--;
    free(f->series);
    free(f->name);
    free(f->help);
    free(f);
}

static void series_free(struct series *s)
{
    free(s->labels);
    free(s->key);
    free(s->bounds);
    free(s->counts);
    free(s->quantiles);
    free(s->qvalues);
    free(s);
}

/* Finds or creates the series; *created tells which. NULL on OOM. */
static struct series *series_get(struct prom_state *st, struct family *f, const char *labels, bool *created)
{
    *created = false;
    size_t nl = strlen(f->name), ll = strlen(labels);
    char *key = malloc(nl + ll + 2);
    if (key == NULL)
        return NULL;
    memcpy(key, f->name, nl);
    key[nl] = '\n';
    memcpy(key + nl + 1, labels, ll + 1);
    uint64_t h = hash_str(key);
    if (st->ser_buckets)
        for (struct series *s = st->ser_tab[h & (st->ser_buckets - 1)]; s; s = s->hnext)
            if (s->hash == h && strcmp(s->key, key) == 0) {
                free(key);
                return s;
            }
    if (rehash_series(&st->ser_tab, &st->ser_buckets, st->nser) != 0) {
        free(key);
        return NULL;
    }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        struct series **ns = realloc(f->series, nc * sizeof *ns);
        if (ns == NULL) {
            free(key);
            return NULL;
        }
        f->series = ns;
        f->cap = nc;
    }
    struct series *s = calloc(1, sizeof *s);
    if (s == NULL || (s->labels = strdup(labels)) == NULL) {
        free(s);
        free(key);
        return NULL;
    }
    s->fam = f;
    s->key = key;
    s->hash = h;
    s->hnext = st->ser_tab[h & (st->ser_buckets - 1)];
    st->ser_tab[h & (st->ser_buckets - 1)] = s;
    st->nser++;
    s->index = f->n;
    f->series[f->n++] = s;
    *created = true;
    return s;
}

static void series_remove(struct prom_state *st, struct series *s)
{
    struct series **pp = &st->ser_tab[s->hash & (st->ser_buckets - 1)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    st->nser--;
    struct family *f = s->fam;
    f->series[s->index] = f->series[f->n - 1];
    f->series[s->index]->index = s->index;
    f->n--;
    series_free(s);
}

/* Removes series older than metric_expiration (and families left empty). Lock held. */
static void sweep(struct prom_state *st, int64_t now)
{
    st->last_sweep_mono_ns = now;
    int64_t exp = st->conf->metric_expiration_ns;
    if (exp <= 0)
        return;
    for (size_t b = 0; b < st->fam_buckets; b++) {
        struct family *f = st->fam_tab[b];
        while (f) {
            struct family *next = f->hnext;
            for (size_t i = f->n; i > 0; i--)
                if (now - f->series[i - 1]->updated_mono_ns >= exp)
                    series_remove(st, f->series[i - 1]);
            if (f->n == 0)
                family_unlink(st, f);
            f = next;
        }
    }
}

/* ---- consume ---- */

struct point_ctx {
    struct prom_state *st;
    struct lg_arena *a;
    const lg_resource *res;
    const lg_scope *scope;
    const lg_metric *m;
    const char *fam_name;
    enum prom_type type;
    size_t failed;
    int64_t now;
};

static void warn_once(struct prom_state *st, const char *metric, const char *why)
{
    for (size_t i = 0; i < st->nwarned; i++)
        if (strcmp(st->warned[i], metric) == 0)
            return;
    char **nw = realloc(st->warned, (st->nwarned + 1) * sizeof *nw);
    if (nw) {
        st->warned = nw;
        if ((nw[st->nwarned] = strdup(metric)) != NULL)
            st->nwarned++;
    }
    lg_warn(st->c->id, "metric \"%s\": %s; its points are dropped (counted in otelcol_exporter_send_failed_metric_points)", metric, why);
}

static const char *resource_str(const lg_resource *r, const char *key)
{
    for (size_t i = 0; r && i < r->n_attributes; i++)
        if (r->attributes[i]->key && strcmp(r->attributes[i]->key, key) == 0 && r->attributes[i]->value &&
            r->attributes[i]->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            return r->attributes[i]->value->string_value;
    return NULL;
}

/* Point attributes (source 0), then job/instance from the resource (1), the other
 * resource attributes when resource_to_telemetry_conversion is on (2), the scope (3) and
 * const_labels (4). */
static char *point_labels(struct point_ctx *pc, lg_kv *const *attrs, size_t nattrs)
{
    struct prom_conf *conf = pc->st->conf;
    struct labelset ls = {.a = pc->a};
    ls_add_attrs(&ls, attrs, nattrs, 0);
    const char *svc = resource_str(pc->res, "service.name");
    const char *svc_ns = resource_str(pc->res, "service.namespace");
    const char *inst = resource_str(pc->res, "service.instance.id");
    if (svc && svc[0]) {
        if (svc_ns && svc_ns[0]) {
            char *job = lg_arena_alloc(pc->a, strlen(svc_ns) + strlen(svc) + 2);
            if (job) {
                sprintf(job, "%s/%s", svc_ns, svc);
                ls_add(&ls, "job", 3, false, job, 1);
            }
        } else {
            ls_add(&ls, "job", 3, false, svc, 1);
        }
    }
    if (inst && inst[0])
        ls_add(&ls, "instance", 8, false, inst, 1);
    if (conf->resource_to_telemetry_conversion.enabled && pc->res)
        ls_add_attrs(&ls, pc->res->attributes, pc->res->n_attributes, 2);
    if (pc->scope && pc->scope->name && pc->scope->name[0]) {
        ls_add(&ls, "otel_scope_name", 15, false, pc->scope->name, 3);
        if (pc->scope->version && pc->scope->version[0])
            ls_add(&ls, "otel_scope_version", 18, false, pc->scope->version, 3);
    }
    for (size_t i = 0; i < conf->const_labels.n; i++)
        ls_add(&ls, conf->const_labels.names[i], strlen(conf->const_labels.names[i]), false, conf->const_labels.values[i], 4);
    return ls_render(&ls);
}

static struct series *point_series(struct point_ctx *pc, lg_kv *const *attrs, size_t nattrs, bool *created)
{
    *created = false;
    char *labels = point_labels(pc, attrs, nattrs);
    if (labels == NULL)
        return NULL;
    bool clash = false;
    struct family *f = family_get(pc->st, pc->fam_name, pc->type, pc->m->description, &clash);
    if (f == NULL) {
        if (clash)
            warn_once(pc->st, pc->m->name, "its Prometheus name is already used by a metric of another type");
        return NULL;
    }
    return series_get(pc->st, f, labels, created);
}

static double number_value(const lg_number_dp *p)
{
    return p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT ? (double)p->as_int : p->as_double;
}

#define NO_RECORDED_VALUE OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

static void ingest_numbers(struct point_ctx *pc, lg_number_dp *const *pts, size_t n, bool accumulate)
{
    for (size_t i = 0; i < n; i++) {
        const lg_number_dp *p = pts[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        bool created;
        struct series *s = point_series(pc, p->attributes, p->n_attributes, &created);
        if (s == NULL) {
            pc->failed++;
            continue;
        }
        if (accumulate && !created) {
            s->value += number_value(p);
        } else if (created || p->time_unix_nano >= s->time_unix_nano) {
            s->value = number_value(p);
        } else {
            continue; /* older than what we hold: superseded, not a loss */
        }
        if (p->time_unix_nano > s->time_unix_nano || created)
            s->time_unix_nano = p->time_unix_nano;
        s->updated_mono_ns = pc->now;
    }
}

static bool bounds_equal(const struct series *s, const lg_histogram_dp *p)
{
    if (s->nbounds != p->n_explicit_bounds || s->counts == NULL)
        return false;
    for (size_t i = 0; i < s->nbounds; i++)
        if (s->bounds[i] != p->explicit_bounds[i])
            return false;
    return true;
}

static void ingest_histograms(struct point_ctx *pc, lg_histogram_dp *const *pts, size_t n, bool accumulate)
{
    for (size_t i = 0; i < n; i++) {
        const lg_histogram_dp *p = pts[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        if (p->n_bucket_counts != 0 && p->n_bucket_counts != p->n_explicit_bounds + 1) {
            warn_once(pc->st, pc->m->name, "a histogram point has bucket counts that do not match its bounds");
            pc->failed++;
            continue;
        }
        bool created;
        struct series *s = point_series(pc, p->attributes, p->n_attributes, &created);
        if (s == NULL) {
            pc->failed++;
            continue;
        }
        double sum = p->_sum_case == OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM ? p->sum : 0;
        size_t nb = p->n_bucket_counts ? p->n_explicit_bounds : 0;
        if (accumulate && !created && bounds_equal(s, p) && p->n_bucket_counts) {
            for (size_t k = 0; k <= nb; k++)
                s->counts[k] += p->bucket_counts[k];
            s->sum += sum;
            s->count += p->count;
        } else {
            if (!created && !accumulate && p->time_unix_nano < s->time_unix_nano)
                continue;
            double *bounds = nb ? malloc(nb * sizeof *bounds) : NULL;
            uint64_t *counts = malloc((nb + 1) * sizeof *counts);
            if ((nb && bounds == NULL) || counts == NULL) {
                free(bounds);
                free(counts);
                pc->failed++;
                continue;
            }
            if (nb)
                memcpy(bounds, p->explicit_bounds, nb * sizeof *bounds);
            if (p->n_bucket_counts)
                memcpy(counts, p->bucket_counts, (nb + 1) * sizeof *counts);
            else
                counts[0] = p->count;
            free(s->bounds);
            free(s->counts);
            s->bounds = bounds;
            s->counts = counts;
            s->nbounds = nb;
            s->sum = sum;
            s->count = p->count;
        }
        if (p->time_unix_nano > s->time_unix_nano || created)
            s->time_unix_nano = p->time_unix_nano;
        s->updated_mono_ns = pc->now;
    }
}

static void ingest_summaries(struct point_ctx *pc, lg_summary_dp *const *pts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const lg_summary_dp *p = pts[i];
        if (p->flags & NO_RECORDED_VALUE)
            continue;
        bool created;
        struct series *s = point_series(pc, p->attributes, p->n_attributes, &created);
        if (s == NULL) {
            pc->failed++;
            continue;
        }
        if (!created && p->time_unix_nano < s->time_unix_nano)
            continue;
        size_t nq = p->n_quantile_values;
        double *q = nq ? malloc(nq * sizeof *q) : NULL, *v = nq ? malloc(nq * sizeof *v) : NULL;
        if (nq && (q == NULL || v == NULL)) {
            free(q);
            free(v);
            pc->failed++;
            continue;
        }
        for (size_t k = 0; k < nq; k++) {
            q[k] = p->quantile_values[k]->quantile;
            v[k] = p->quantile_values[k]->value;
        }
        free(s->quantiles);
        free(s->qvalues);
        s->quantiles = q;
        s->qvalues = v;
        s->nq = nq;
        s->sum = p->sum;
        s->count = p->count;
        s->time_unix_nano = p->time_unix_nano;
        s->updated_mono_ns = pc->now;
    }
}

static void ingest_metric(struct point_ctx *pc)
{
    const lg_metric *m = pc->m;
    size_t npts = lg_metric_point_count(m);
    bool accumulate = false;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        pc->type = PT_GAUGE;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (m->sum->is_monotonic) {
            pc->type = PT_COUNTER;
            accumulate = m->sum->aggregation_temporality == OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
        } else if (m->sum->aggregation_temporality == OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA) {
            warn_once(pc->st, m->name, "a non-monotonic delta sum cannot be exposed to Prometheus");
            pc->failed += npts;
            return;
        } else {
            pc->type = PT_GAUGE;
        }
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        pc->type = PT_HISTOGRAM;
        accumulate = m->histogram->aggregation_temporality == OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        pc->type = PT_SUMMARY;
        break;
    default:
        if (npts)
            warn_once(pc->st, m->name ? m->name : "", "exponential histograms are not exposed in the text format");
        pc->failed += npts;
        return;
    }
    pc->fam_name = prom_family_name(pc->a, pc->st->conf, m, pc->type);
    if (pc->fam_name == NULL) {
        if (npts)
            warn_once(pc->st, m->name ? m->name : "", "the metric has no usable name");
        pc->failed += npts;
        return;
    }
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        ingest_numbers(pc, m->gauge->data_points, m->gauge->n_data_points, false);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        ingest_numbers(pc, m->sum->data_points, m->sum->n_data_points, accumulate);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        ingest_histograms(pc, m->histogram->data_points, m->histogram->n_data_points, accumulate);
        break;
    default:
        ingest_summaries(pc, m->summary->data_points, m->summary->n_data_points);
        break;
    }
}

static int prom_consume(struct lg_component *c, struct lg_batch *b)
{
    struct prom_state *st = c->state;
    if (b->signal != LG_SIGNAL_METRICS)
        return LG_OK;
    struct lg_arena *a = lg_arena_create(0);
    if (a == NULL)
        return LG_ENOMEM;
    const lg_metrics_req *req = b->req.metrics;
    struct point_ctx pc = {.st = st, .a = a};
    pthread_mutex_lock(&st->lock);
    pc.now = lg_now_mono_ns();
    for (size_t r = 0; r < req->n_resource_metrics; r++) {
        const lg_resource_metrics *rm = req->resource_metrics[r];
        pc.res = rm->resource;
        for (size_t s = 0; s < rm->n_scope_metrics; s++) {
            const lg_scope_metrics *sm = rm->scope_metrics[s];
            pc.scope = sm->scope;
            for (size_t m = 0; m < sm->n_metrics; m++) {
                pc.m = sm->metrics[m];
                ingest_metric(&pc);
            }
        }
    }
    int64_t exp = st->conf->metric_expiration_ns;
    if (exp > 0 && pc.now - st->last_sweep_mono_ns >= exp / 4)
        sweep(st, pc.now);
    pthread_mutex_unlock(&st->lock);
    lg_arena_destroy(a);
    size_t total = b->items;
    lg_counter_add(st->failed, pc.failed);
    lg_counter_add(st->sent, total > pc.failed ? total - pc.failed : 0);
    return LG_OK;
}

/* ---- rendering ---- */

static int fam_cmp(const void *x, const void *y)
{
    return strcmp((*(struct family *const *)x)->name, (*(struct family *const *)y)->name);
}

static int ser_cmp(const void *x, const void *y)
{
    return strcmp((*(struct series *const *)x)->labels, (*(struct series *const *)y)->labels);
}

static void render_sample(struct sbuf *b, const struct prom_conf *conf, const char *name, const char *suffix,
                          const char *labels, const char *extra, double v, uint64_t ts)
{
    char num[64];
    sb_str(b, name);
    sb_str(b, suffix);
    if (labels[0] || extra) {
        sb_add(b, "{", 1);
        sb_str(b, labels);
        if (extra) {
            if (labels[0])
                sb_add(b, ",", 1);
            sb_str(b, extra);
        }
        sb_add(b, "}", 1);
    }
    format_value(num, sizeof num, v);
    sb_add(b, " ", 1);
    sb_str(b, num);
    if (conf->send_timestamps && ts)
        sb_printf(b, " %" PRIu64, ts / 1000000u);
    sb_add(b, "\n", 1);
}

static void render_help(struct sbuf *b, const char *help)
{
    for (; *help; help++) {
        if (*help == '\\')
            sb_add(b, "\\\\", 2);
        else if (*help == '\n')
            sb_add(b, "\\n", 2);
        else
            sb_add(b, help, 1);
    }
}

/* Renders every live series (after expiring old ones). Caller frees; NULL on OOM. */
static char *prom_render(struct prom_state *st, size_t *len)
{
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    pthread_mutex_lock(&st->lock);
    sweep(st, lg_now_mono_ns());
    struct family **fams = st->nfam ? malloc(st->nfam * sizeof *fams) : NULL;
    size_t nf = 0;
    if (st->nfam && fams == NULL)
        b.oom = true;
    for (size_t i = 0; fams && i < st->fam_buckets; i++)
        for (struct family *f = st->fam_tab[i]; f; f = f->hnext)
            fams[nf++] = f;
    if (nf)
        qsort(fams, nf, sizeof *fams, fam_cmp);
    const struct prom_conf *conf = st->conf;
    for (size_t i = 0; i < nf && !b.oom; i++) {
        struct family *f = fams[i];
        if (f->n > 1)
            qsort(f->series, f->n, sizeof *f->series, ser_cmp);
        for (size_t k = 0; k < f->n; k++)
            f->series[k]->index = k;
        if (f->help[0]) {
            sb_printf(&b, "# HELP %s ", f->name);
            render_help(&b, f->help);
            sb_add(&b, "\n", 1);
        }
        sb_printf(&b, "# TYPE %s %s\n", f->name, prom_type_names[f->type]);
        for (size_t k = 0; k < f->n; k++) {
            const struct series *s = f->series[k];
            uint64_t ts = s->time_unix_nano;
            if (f->type == PT_COUNTER || f->type == PT_GAUGE) {
                render_sample(&b, conf, f->name, "", s->labels, NULL, s->value, ts);
            } else if (f->type == PT_HISTOGRAM) {
                uint64_t cum = 0;
                char le[80], num[64];
                for (size_t j = 0; j < s->nbounds; j++) {
                    cum += s->counts[j];
                    format_value(num, sizeof num, s->bounds[j]);
                    snprintf(le, sizeof le, "le=\"%s\"", num);
                    render_sample(&b, conf, f->name, "_bucket", s->labels, le, (double)cum, ts);
                }
                render_sample(&b, conf, f->name, "_bucket", s->labels, "le=\"+Inf\"", (double)s->count, ts);
                render_sample(&b, conf, f->name, "_sum", s->labels, NULL, s->sum, ts);
                render_sample(&b, conf, f->name, "_count", s->labels, NULL, (double)s->count, ts);
            } else {
                char q[80], num[64];
                for (size_t j = 0; j < s->nq; j++) {
                    format_value(num, sizeof num, s->quantiles[j]);
                    snprintf(q, sizeof q, "quantile=\"%s\"", num);
                    render_sample(&b, conf, f->name, "", s->labels, q, s->qvalues[j], ts);
                }
                render_sample(&b, conf, f->name, "_sum", s->labels, NULL, s->sum, ts);
                render_sample(&b, conf, f->name, "_count", s->labels, NULL, (double)s->count, ts);
            }
        }
    }
    pthread_mutex_unlock(&st->lock);
    free(fams);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

static void prom_handle(struct evhttp_request *req, void *arg)
{
    struct prom_state *st = arg;
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL || strncmp(uri, "/metrics", 8) != 0 || (uri[8] != '\0' && uri[8] != '?')) {
        evhttp_send_error(req, HTTP_NOTFOUND, NULL);
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    size_t len = 0;
    char *text = prom_render(st, &len);
    struct evbuffer *body = evbuffer_new();
    if (text == NULL || body == NULL) {
        free(text);
        if (body)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(body, text, len);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
}

/* ---- life cycle ---- */

static int prom_create(struct lg_component *c, struct lg_err *err)
{
    struct prom_conf *conf = c->conf;
    if (conf->endpoint == NULL || conf->endpoint[0] == '\0')
        return c->conf_node ? lg_conf_error(err, c->conf_node, "endpoint is required (host:port)")
                            : lg_err_set(err, LG_EINVAL, "exporters.%s: endpoint is required (host:port)", c->id);
    char host[256];
    int port;
    struct lg_err perr;
    if (lg_parse_endpoint(conf->endpoint, host, sizeof host, &port, &perr) != LG_OK)
        return lg_conf_error(err, lg_node_get(c->conf_node, "endpoint"), "%s", perr.msg);
    if (conf->metric_expiration_ns < 0)
        return lg_conf_error(err, lg_node_get(c->conf_node, "metric_expiration"), "must not be negative");
    struct prom_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = conf;
    pthread_mutex_init(&st->lock, NULL);
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", c->id);
    st->sent = lg_telemetry_counter(t, "otelcol_exporter_sent_metric_points", "Number of items successfully sent to destination.", labels);
    st->failed = lg_telemetry_counter(t, "otelcol_exporter_send_failed_metric_points", "Number of items that failed to be sent.", labels);
    c->state = st;
    return LG_OK;
}

static int prom_start(struct lg_component *c, struct lg_err *err)
{
    struct prom_state *st = c->state;
    struct lg_http_server_opts o = {.endpoint = st->conf->endpoint, .max_body_size = 4096};
    int rc = lg_http_server_start(&o, prom_handle, st, &st->srv, err);
    if (rc != LG_OK) {
        lg_err_prefix(err, "exporters.%s", c->id);
        return rc;
    }
    lg_info(c->id, "Prometheus metrics on http://%s/metrics", st->conf->endpoint);
    return LG_OK;
}

static int prom_shutdown(struct lg_component *c, int64_t deadline)
{
    struct prom_state *st = c->state;
    if (st->srv)
        lg_http_server_stop(st->srv, deadline);
    return LG_OK;
}

static void prom_destroy(struct lg_component *c)
{
    struct prom_state *st = c->state;
    if (st == NULL)
        return;
    if (st->srv)
        lg_http_server_free(st->srv);
    for (size_t b = 0; b < st->fam_buckets; b++) {
        struct family *f = st->fam_tab[b];
        while (f) {
            struct family *next = f->hnext;
            for (size_t i = 0; i < f->n; i++)
                series_free(f->series[i]);
            free(f->series);
            free(f->name);
            free(f->help);
            free(f);
            f = next;
        }
    }
    free(st->fam_tab);
    free(st->ser_tab);
    for (size_t i = 0; i < st->nwarned; i++)
        free(st->warned[i]);
    free(st->warned);
    pthread_mutex_destroy(&st->lock);
    free(st);
    c->state = NULL;
}

/* For tests: the text a scrape would get, without HTTP (malloc'd; NULL on OOM). */
char *lg_prometheus_render(struct lg_component *c, size_t *len);
char *lg_prometheus_render(struct lg_component *c, size_t *len) { return prom_render(c->state, len); }

/* The port actually bound (endpoint with port 0 in tests); -1 before start. */
int lg_prometheus_port(struct lg_component *c);
int lg_prometheus_port(struct lg_component *c)
{
    struct prom_state *st = c->state;
    return st && st->srv ? lg_http_server_port(st->srv) : -1;
}

const struct lg_component_type lg_prometheus_exporter = {
    .type = "prometheus",
    .kind = LG_EXPORTER,
    .signals = LG_METRICS,
    .description = "serves received metrics on GET /metrics in the Prometheus text format",
    .conf_size = sizeof(struct prom_conf),
    .fields = prom_fields,
    .create = prom_create,
    .start = prom_start,
    .consume = prom_consume,
    .shutdown = prom_shutdown,
    .destroy = prom_destroy,
};
