/* processors/probabilistic_sampler.c — the Collector's `probabilistic_sampler` processor for
 * traces and logs: a stateless, per-item keep-or-drop decision from the trace ID (or a log
 * attribute), consistent across instances and across all spans of a trace.
 *
 * Behaviour follows opentelemetry-collector-contrib/processor/probabilisticsamplerprocessor
 * (docs/processors/probabilistic_sampler.md lists every option and the few differences):
 *   mode hash_seed (the default): FNV-1a over hash_seed + trace ID, 14-bit buckets;
 *   mode proportional: multiplies the arriving ot=th probability by sampling_percentage;
 *   mode equalizing: lowers the arriving probability to sampling_percentage;
 *   sampling.priority on a span forces 0% / 100%; logs read a configurable priority
 *   attribute as a percentage; items without randomness (zero trace ID, unparsable
 *   tracestate, ...) are dropped when fail_closed (default) or kept otherwise.
 * Kept spans carry the threshold in their W3C tracestate (ot=th:...; hash_seed also
 * records ot=rv:...), kept log records in the sampling.threshold / sampling.randomness
 * attributes, as the Collector writes them.
 *
 * Batches are read-only: when anything is dropped or rewritten the processor forwards a
 * copy-on-write clone (lg_batch_clone_shallow) with compacted item arrays and private copies
 * of the changed items only. Every decision is counted in
 * otelcol_processor_probabilistic_sampler_count_{traces,logs}_sampled{policy,sampled}
 * (the Collector's names), so every drop is visible.
 *
 * Owns: struct ps_state (c->state) and its counters' lazy slots. */
#include "probabilistic_sampler.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/llm.h"
#include "../core/log.h"
#include "../core/runtime.h"

/* hash_seed: 2^14 buckets, as the Collector (its percentageScaleFactor is 16384 / 100). */
#define HASH_BUCKETS_LG2 14
#define HASH_BUCKETS (1u << HASH_BUCKETS_LG2)
#define HASH_BUCKET_MASK (HASH_BUCKETS - 1)
/* The largest randomness: what an item without randomness is compared with, so only a
 * threshold of 0 (always) keeps it. */
#define MAX_RANDOMNESS (LG_PS_MAX_ADJUSTED_COUNT - 1)
#define NEVER_THRESHOLD LG_PS_MAX_ADJUSTED_COUNT
#define MIN_PROBABILITY (1.0 / 72057594037927936.0) /* 2^-56 */

/* W3C Trace Context limits the Collector enforces. */
#define TS_MAX_LEN 1024
#define TS_MAX_MEMBERS 32
#define TS_MAX_KEY 256
#define TS_MAX_TENANT 241
#define TS_MAX_SYSTEM 14
#define OT_MAX_LEN 256
/* An ot value of 256 bytes holds at most 85 "k:;" members. */
#define OT_MAX_MEMBERS 128
/* Rewritten tracestate: the input's limit plus th and rv. */
#define TS_OUT_MAX (TS_MAX_LEN + 64)

/* The span attribute OpenTracing defined for priority sampling. */
#define SPAN_PRIORITY_KEY "sampling.priority"
/* Log record attributes that carry the threshold and randomness (the Collector's names). */
#define LOG_THRESHOLD_KEY "sampling.threshold"
#define LOG_RANDOMNESS_KEY "sampling.randomness"

/* ------------------------------------------------------------------ arithmetic ---- */

uint32_t lg_ps_fnv1a32(uint32_t seed, const uint8_t *data, size_t len)
{
    uint32_t h = 2166136261u; /* FNV offset basis */
    for (int i = 0; i < 4; i++) {
        h ^= (seed >> (8 * i)) & 0xffu;
        h *= 16777619u; /* FNV prime */
    }
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 16777619u;
    }
    return h;
}

uint64_t lg_ps_hash_randomness(uint32_t seed, const uint8_t *data, size_t len)
{
    uint32_t h = lg_ps_fnv1a32(seed, data, len);
    uint64_t bucket = h & HASH_BUCKET_MASK;
    /* bucket < rate  <=>  (HASH_BUCKETS-1-bucket) >= HASH_BUCKETS-rate: the top 14 bits are
     * the inverted bucket so the OTel rule "randomness >= threshold" decides the same. */
    uint64_t top = HASH_BUCKETS - 1 - bucket;
    uint64_t unused18 = h >> HASH_BUCKETS_LG2;
    uint64_t mixed28 = unused18 ^ (unused18 << 10);
    return (top << 42) | (mixed28 << 14) | bucket;
}

uint32_t lg_ps_hash_scaled_rate(float percent)
{
    /* float32 multiply and truncation, exactly as the Collector's uint32(pct * factor) */
    float scaled = percent * (float)(HASH_BUCKETS / 100.0);
    if (!(scaled > 0))
        return 0;
    if (scaled >= (float)HASH_BUCKETS)
        return HASH_BUCKETS;
    return (uint32_t)scaled;
}

uint64_t lg_ps_trace_id_randomness(const uint8_t tid[16])
{
    uint64_t r = 0;
    for (int i = 9; i < 16; i++)
        r = (r << 8) | tid[i];
    return r;
}

int lg_ps_prob_to_threshold(double p, int precision, uint64_t *th)
{
    *th = 0;
    if (!(p >= MIN_PROBABILITY && p <= 1))
        return -1;
    if (p == 1)
        return 0;
    /* each leading zero hex digit of the rejection probability costs one digit more */
    for (double reject = 1 - p; reject * 16 < 1; reject *= 16)
        precision++;
    if (precision > LG_PS_HEX_DIGITS)
        return -2;
    uint64_t scaled = (uint64_t)round(p * (double)LG_PS_MAX_ADJUSTED_COUNT);
    uint64_t r = LG_PS_MAX_ADJUSTED_COUNT - scaled;
    unsigned shift = 4u * (unsigned)(LG_PS_HEX_DIGITS - precision);
    if (shift > 0) {
        r += (uint64_t)1 << (shift - 1);
        r = (r >> shift) << shift;
    }
    *th = r;
    return 0;
}

double lg_ps_threshold_prob(uint64_t th)
{
    if (th >= LG_PS_MAX_ADJUSTED_COUNT)
        return 0;
    return (double)(LG_PS_MAX_ADJUSTED_COUNT - th) / (double)LG_PS_MAX_ADJUSTED_COUNT;
}

static const char hexdig[] = "0123456789abcdef";

static void hex14(uint64_t v, char *buf)
{
    for (int i = LG_PS_HEX_DIGITS - 1; i >= 0; i--) {
        buf[i] = hexdig[v & 0xf];
        v >>= 4;
    }
    buf[LG_PS_HEX_DIGITS] = '\0';
}

void lg_ps_tvalue(uint64_t th, char *buf)
{
    if (th == 0) {
        strcpy(buf, "0");
        return;
    }
    hex14(th, buf);
    size_t n = LG_PS_HEX_DIGITS;
    while (n > 1 && buf[n - 1] == '0')
        n--;
    buf[n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_hex(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        int d = hexval(s[i]);
        if (d < 0)
            return -1;
        v = (v << 4) | (uint64_t)d;
    }
    *out = v;
    return 0;
}

int lg_ps_tvalue_parse(const char *s, size_t len, uint64_t *th)
{
    uint64_t v;
    if (len == 0 || len > LG_PS_HEX_DIGITS || parse_hex(s, len, &v) != 0)
        return -1;
    *th = v << (4 * (LG_PS_HEX_DIGITS - len));
    return 0;
}

int lg_ps_rvalue_parse(const char *s, size_t len, uint64_t *rv)
{
    if (len != LG_PS_HEX_DIGITS)
        return -1;
    return parse_hex(s, len, rv);
}

/* ------------------------------------------------------------------ tracestate ---- */

struct slice {
    const char *p;
    size_t n;
};

struct ts_parsed {
    struct lg_ps_otvals ot;
    struct slice rv_text; /* the arriving rv as written (kept when rv is unchanged) */
    struct slice ot_extra[OT_MAX_MEMBERS]; /* "k:v" sub-keys of ot other than rv / th */
    size_t n_ot_extra;
    struct slice vendors[TS_MAX_MEMBERS]; /* "k=v" members other than ot */
    size_t nvendors;
};

static bool lc_alpha(char c) { return c >= 'a' && c <= 'z'; }
static bool lc_alnum(char c) { return lc_alpha(c) || (c >= '0' && c <= '9'); }
static bool key_char(char c) { return lc_alnum(c) || c == '_' || c == '-' || c == '*' || c == '/'; }
static bool nblk_char(unsigned char c)
{
    return (c >= 0x21 && c <= 0x2b) || (c >= 0x2d && c <= 0x3c) || (c >= 0x3e && c <= 0x7e);
}

static bool w3c_key_ok(const char *k, size_t n)
{
    if (n == 0 || n > TS_MAX_KEY)
        return false;
    const char *at = memchr(k, '@', n);
    if (at) {
        size_t tn = (size_t)(at - k), sn = n - tn - 1;
        if (tn == 0 || sn == 0 || tn > TS_MAX_TENANT || sn > TS_MAX_SYSTEM)
            return false;
        if (!lc_alnum(k[0]) || !lc_alpha(at[1]))
            return false;
        for (size_t i = 1; i < tn; i++)
            if (!key_char(k[i]))
                return false;
        for (size_t i = 2; i <= sn; i++)
            if (!key_char(at[i]))
                return false;
        return true;
    }
    if (!lc_alpha(k[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!key_char(k[i]))
            return false;
    return true;
}

static bool w3c_value_ok(const char *v, size_t n)
{
    if (n == 0 || n > 256 || !nblk_char((unsigned char)v[n - 1]))
        return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (v[i] != ' ' && !nblk_char((unsigned char)v[i]))
            return false;
    return true;
}

static bool ot_value_char(char c)
{
    return lc_alnum(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-';
}

/* The ot entry's value: key:value members separated by ';' (key [a-z][a-z0-9]*). */
static int parse_ot(const char *v, size_t n, struct ts_parsed *out)
{
    out->ot = (struct lg_ps_otvals){0};
    out->n_ot_extra = 0;
    if (n > OT_MAX_LEN)
        return -1;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        if (i >= n || !lc_alpha(v[i]))
            return -1;
        while (i < n && lc_alnum(v[i]))
            i++;
        size_t klen = i - start;
        if (i >= n || v[i] != ':')
            return -1;
        i++;
        size_t vstart = i;
        while (i < n && ot_value_char(v[i]))
            i++;
        size_t vlen = i - vstart;
        if (klen == 2 && memcmp(v + start, "rv", 2) == 0) {
            if (lg_ps_rvalue_parse(v + vstart, vlen, &out->ot.rv) != 0)
                return -1;
            out->ot.has_rv = true;
            out->rv_text = (struct slice){v + vstart, vlen};
        } else if (klen == 2 && memcmp(v + start, "th", 2) == 0) {
            if (lg_ps_tvalue_parse(v + vstart, vlen, &out->ot.th) != 0)
                return -1;
            out->ot.has_th = true;
        } else {
            if (out->n_ot_extra == OT_MAX_MEMBERS)
                return -1;
            out->ot_extra[out->n_ot_extra++] = (struct slice){v + start, i - start};
        }
        if (i == n)
            return 0;
        if (v[i] != ';')
            return -1;
        i++;
    }
}

static int ts_parse_full(const char *in, struct ts_parsed *out)
{
    out->ot = (struct lg_ps_otvals){0};
    out->n_ot_extra = 0;
    out->nvendors = 0;
    if (in == NULL || *in == '\0')
        return 0;
    size_t len = strlen(in);
    if (len > TS_MAX_LEN)
        return -1;
    size_t members = 0;
    const char *p = in, *end = in + len;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *mend = comma ? comma : end;
        const char *a = p, *b = mend;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a < b) {
            if (++members > TS_MAX_MEMBERS)
                return -1;
            const char *eq = memchr(a, '=', (size_t)(b - a));
            if (eq == NULL || eq == a)
                return -1;
            size_t kn = (size_t)(eq - a), vn = (size_t)(b - eq - 1);
            if (!w3c_key_ok(a, kn) || !w3c_value_ok(eq + 1, vn))
                return -1;
            if (kn == 2 && memcmp(a, "ot", 2) == 0) {
                if (parse_ot(eq + 1, vn, out) != 0)
                    return -1;
            } else {
                out->vendors[out->nvendors++] = (struct slice){a, (size_t)(b - a)};
            }
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

int lg_ps_tracestate_parse(const char *in, struct lg_ps_otvals *ot)
{
    if (in == NULL || *in == '\0') {
        *ot = (struct lg_ps_otvals){0};
        return 0;
    }
    struct ts_parsed tp; /* ~2.6 KiB of slices: no allocation per span */
    int rc = ts_parse_full(in, &tp);
    if (rc == 0)
        *ot = tp.ot;
    return rc;
}

struct sbuf {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void sb_put(struct sbuf *s, const char *t, size_t n)
{
    if (s->overflow || s->len + n + 1 > s->cap) {
        s->overflow = true;
        return;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void sb_str(struct sbuf *s, const char *t) { sb_put(s, t, strlen(t)); }

static int ts_serialize(const struct ts_parsed *tp, const struct lg_ps_otvals *ot, char *out,
                        size_t cap)
{
    struct sbuf s = {out, 0, cap, cap == 0};
    if (cap)
        out[0] = '\0';
    size_t nsub = 0;
    if (ot->has_th || ot->has_rv || tp->n_ot_extra) {
        sb_str(&s, "ot=");
        char hx[LG_PS_HEX_BUF];
        if (ot->has_th) {
            lg_ps_tvalue(ot->th, hx);
            sb_str(&s, "th:");
            sb_str(&s, hx);
            nsub++;
        }
        if (ot->has_rv) {
            sb_str(&s, nsub++ ? ";rv:" : "rv:");
            if (tp->ot.has_rv && tp->ot.rv == ot->rv) {
                sb_put(&s, tp->rv_text.p, tp->rv_text.n);
            } else {
                hex14(ot->rv, hx);
                sb_str(&s, hx);
            }
        }
        for (size_t i = 0; i < tp->n_ot_extra; i++) {
            if (nsub++)
                sb_str(&s, ";");
            sb_put(&s, tp->ot_extra[i].p, tp->ot_extra[i].n);
        }
    }
    for (size_t i = 0; i < tp->nvendors; i++) {
        if (s.len)
            sb_str(&s, ",");
        sb_put(&s, tp->vendors[i].p, tp->vendors[i].n);
    }
    return s.overflow ? -2 : (int)s.len;
}

int lg_ps_tracestate_rewrite(const char *in, const struct lg_ps_otvals *ot, char *out, size_t cap)
{
    struct ts_parsed tp;
    int rc = ts_parse_full(in, &tp);
    if (rc == 0)
        rc = ts_serialize(&tp, ot, out, cap);
    return rc;
}

/* ------------------------------------------------------------------ config ---- */

struct ps_conf {
    double sampling_percentage;
    int64_t hash_seed;
    const char *mode;
    bool fail_closed;
    int64_t sampling_precision;
    const char *attribute_source;
    const char *from_attribute;
    const char *sampling_priority;
};

static const struct lg_conf_field ps_fields[] = {
    LG_CONF_DOUBLE("sampling_percentage", "0", struct ps_conf, sampling_percentage, 0, 0,
                   "percentage of items kept (float32; >= 100 keeps all, 0 drops all)"),
    LG_CONF_INT("hash_seed", "0", struct ps_conf, hash_seed, 0, 4294967295.0,
                "uint32 seed of the hash_seed mode's FNV hash; same value on every gateway of a tier"),
    LG_CONF_STRING("mode", "hash_seed", struct ps_conf, mode,
                   "hash_seed, proportional or equalizing"),
    LG_CONF_BOOL("fail_closed", "true", struct ps_conf, fail_closed,
                 "drop items whose randomness cannot be read (zero trace ID, invalid tracestate); false keeps them"),
    LG_CONF_INT("sampling_precision", "4", struct ps_conf, sampling_precision, 1, 14,
                "hex digits of the threshold written as ot=th / sampling.threshold (1..14)"),
    LG_CONF_STRING("attribute_source", "traceID", struct ps_conf, attribute_source,
                   "logs: traceID (the record's trace ID, else from_attribute) or record (from_attribute only)"),
    LG_CONF_STRING("from_attribute", "", struct ps_conf, from_attribute,
                   "logs, hash_seed mode: record attribute hashed when the trace ID is not used"),
    LG_CONF_STRING("sampling_priority", "", struct ps_conf, sampling_priority,
                   "logs: record attribute holding a percentage that replaces sampling_percentage (0 drops)"),
    LG_CONF_END,
};

/* ------------------------------------------------------------------ state ---- */

enum ps_mode { MODE_NEVER, MODE_HASH_SEED, MODE_PROPORTIONAL, MODE_EQUALIZING };

/* The Collector's `policy` label values (which randomness decided). */
enum ps_policy {
    POL_TRACE_ID_HASH,
    POL_TRACE_ID_W3C,
    POL_SAMPLING_RANDOMNESS,
    POL_SAMPLING_PRIORITY,
    POL_MISSING_RANDOMNESS,
    POL_ATTRIBUTE, /* logs: named after from_attribute */
    POL_COUNT,
};

static const char *const policy_names[POL_COUNT] = {
    "trace_id_hash", "trace_id_w3c", "sampling_randomness", "sampling_priority",
    "missing_randomness", NULL,
};

enum { SIG_T, SIG_L, SIG_N };

struct ps_state {
    enum ps_mode mode;
    bool fail_closed;
    int precision;
    uint32_t seed;
    uint64_t threshold; /* hash_seed and equalizing: the configured threshold */
    double ratio;       /* proportional */
    bool logs_trace_id; /* attribute_source: traceID */
    const char *from_attribute;    /* NULL when not set */
    const char *sampling_priority; /* NULL when not set */
    const char *id;
    struct lg_telemetry *telemetry;
    /* count_{traces,logs}_sampled{policy,sampled}, created on first use so /metrics shows
     * only the series that happen */
    _Atomic(struct lg_counter *) counts[SIG_N][POL_COUNT][2];
    struct lg_counter *refused[SIG_N];
};

static struct lg_counter *policy_counter(struct ps_state *st, int sig, int pol, int sampled)
{
    struct lg_counter *c = atomic_load_explicit(&st->counts[sig][pol][sampled], memory_order_acquire);
    if (c)
        return c;
    /* label values escaped for the exposition format (from_attribute is user text) */
    char pname[256];
    const char *src = pol == POL_ATTRIBUTE ? st->from_attribute : policy_names[pol];
    size_t o = 0;
    for (const char *p = src ? src : ""; *p && o + 3 < sizeof pname; p++) {
        if (*p == '"' || *p == '\\')
            pname[o++] = '\\', pname[o++] = *p;
        else if (*p == '\n')
            pname[o++] = '\\', pname[o++] = 'n';
        else
            pname[o++] = *p;
    }
    pname[o] = '\0';
    char labels[512];
    snprintf(labels, sizeof labels, "processor=\"%s\",policy=\"%s\",sampled=\"%s\"", st->id, pname,
             sampled ? "true" : "false");
    c = lg_telemetry_counter(st->telemetry,
                             sig == SIG_T ? "otelcol_processor_probabilistic_sampler_count_traces_sampled"
                                          : "otelcol_processor_probabilistic_sampler_count_logs_sampled",
                             sig == SIG_T ? "Count of spans that were sampled or not"
                                          : "Count of logs that were sampled or not",
                             labels);
    atomic_store_explicit(&st->counts[sig][pol][sampled], c, memory_order_release);
    return c;
}

/* ------------------------------------------------------------------ decision ---- */

/* The per-item outcome of the common logic (the Collector's commonShouldSampleLogic). */
struct item {
    /* carrier: the item's sampling values (tracestate ot entry, or log attributes) */
    bool carrier;   /* parsed and usable (false: invalid, or in use by another scheme) */
    struct lg_ps_otvals ot;
    bool changed;   /* ot differs from what arrived (rv added, th cleared or set) */
    bool rv_added;  /* hash_seed: rv is this mode's randomness, not an arriving one */
    /* randomness */
    bool missing;
    uint64_t rnd;
    int policy;
    bool err;
};

static bool tid_valid(const ProtobufCBinaryData *t)
{
    if (t->len != 16 || t->data == NULL)
        return false;
    for (size_t i = 0; i < 16; i++)
        if (t->data[i])
            return true;
    return false;
}

static uint64_t decide_threshold(const struct ps_state *st, const struct item *it)
{
    switch (st->mode) {
    case MODE_NEVER:
        return NEVER_THRESHOLD;
    case MODE_HASH_SEED:
        return st->threshold;
    case MODE_EQUALIZING:
        /* an arriving lower probability (larger threshold) stays */
        if (it->ot.has_th && it->ot.th > st->threshold)
            return it->ot.th;
        return st->threshold;
    case MODE_PROPORTIONAL: {
        double incoming = it->ot.has_th ? lg_ps_threshold_prob(it->ot.th) : 1.0;
        uint64_t th;
        int rc = lg_ps_prob_to_threshold(incoming * st->ratio, st->precision, &th);
        if (rc == -1)
            return NEVER_THRESHOLD; /* fell below 2^-56: unsampled, as the Collector */
        return th;
    }
    }
    return NEVER_THRESHOLD;
}

/* Runs after randomness and carrier are known; `prio` is -1 (none), or a threshold that
 * replaces the decision (priority). Returns whether the item is kept and updates the
 * carrier's threshold when it is. */
static bool common_decide(const struct ps_state *st, struct item *it, bool have_prio, uint64_t prio)
{
    if (!it->err) {
        if (it->missing) {
            it->err = true;
        } else if (it->carrier && it->ot.has_th && it->rnd < it->ot.th) {
            /* the arriving threshold could not have sampled this randomness: clear it, as
             * the OTel spec recommends, and treat the item as erroneous */
            it->ot.has_th = false;
            it->changed = true;
            it->err = true;
        }
    }
    uint64_t th;
    if (it->err)
        th = st->fail_closed ? NEVER_THRESHOLD : 0;
    else
        th = decide_threshold(st, it);
    if (have_prio) {
        th = prio;
        it->policy = POL_SAMPLING_PRIORITY;
    }
    uint64_t r = it->missing ? MAX_RANDOMNESS : it->rnd;
    bool sampled = th < NEVER_THRESHOLD && r >= th;
    if (sampled && it->carrier) {
        /* a threshold is only ever raised (probability lowered), never lowered */
        if (!(it->ot.has_th && it->ot.th > th)) {
            if (!it->ot.has_th || it->ot.th != th)
                it->changed = true;
            it->ot.has_th = true;
            it->ot.th = th;
        }
    }
    return sampled;
}

/* sampling.priority on a span: 0 never, > 0 always (int, double or numeric string). */
static bool span_priority(const lg_span *s, uint64_t *prio)
{
    const lg_any_value *v = lg_attr_find(s->attributes, s->n_attributes, SPAN_PRIORITY_KEY);
    if (v == NULL)
        return false;
    double d;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        d = (double)v->int_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        d = v->double_value;
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        const char *t = v->string_value;
        char *end;
        if (t == NULL || *t == '\0')
            return false;
        d = strtod(t, &end);
        if (*end != '\0')
            return false;
        break;
    }
    default:
        return false;
    }
    if (d == 0) {
        *prio = NEVER_THRESHOLD;
        return true;
    }
    if (d > 0) {
        *prio = 0;
        return true;
    }
    return false; /* negative or NaN: the configured probability decides */
}

/* Decides one span. *it ends with the carrier to write back when it->changed. */
/* hash_seed mode, after the randomness was computed: record it as `rv` in the item's
 * tracestate; values of another consistent sampler there are left alone and are an error
 * for this mode (proportional or equalizing should be used). */
static void hash_seed_carrier(struct item *it)
{
    if (!it->carrier)
        return;
    if (it->ot.has_rv || it->ot.has_th) {
        it->err = true;
        it->carrier = false;
    } else if (!it->missing) {
        it->ot.has_rv = true;
        it->ot.rv = it->rnd;
        it->changed = true;
        it->rv_added = true;
    }
}

/* proportional / equalizing: the randomness is the tracestate's `rv`, else the trace ID's
 * (tid NULL when the item has none). */
static void consistent_randomness(struct item *it, const uint8_t *tid)
{
    if (it->carrier && it->ot.has_rv) {
        it->rnd = it->ot.rv;
        it->policy = POL_SAMPLING_RANDOMNESS;
    } else if (it->carrier && tid != NULL) {
        it->rnd = lg_ps_trace_id_randomness(tid);
        it->policy = POL_TRACE_ID_W3C;
    } else {
        it->missing = true;
        it->policy = POL_MISSING_RANDOMNESS;
    }
}

static bool decide_span(const struct ps_state *st, const lg_span *s, struct item *it)
{
    memset(it, 0, sizeof *it);
    it->carrier = lg_ps_tracestate_parse(s->trace_state, &it->ot) == 0;
    it->err = !it->carrier;
    bool have_tid = tid_valid(&s->trace_id);
    switch (st->mode) {
    case MODE_NEVER:
        /* randomness is not used; the Collector names these decisions sampling_priority */
        it->rnd = MAX_RANDOMNESS;
        it->policy = POL_SAMPLING_PRIORITY;
        break;
    case MODE_HASH_SEED:
        if (have_tid) {
            it->rnd = lg_ps_hash_randomness(st->seed, s->trace_id.data, 16);
            it->policy = POL_TRACE_ID_HASH;
        } else {
            it->missing = true;
            it->policy = POL_MISSING_RANDOMNESS;
        }
        hash_seed_carrier(it);
        break;
    case MODE_PROPORTIONAL:
    case MODE_EQUALIZING:
        consistent_randomness(it, have_tid ? s->trace_id.data : NULL);
        break;
    }
    uint64_t prio = 0;
    bool have_prio = span_priority(s, &prio);
    return common_decide(st, it, have_prio, prio);
}

/* Attribute bytes the logs hash_seed mode hashes: bytes as they are, strings, ints and
 * bools as the Collector's AsString text. Other types have no randomness here. */
static bool attr_bytes(const lg_any_value *v, const uint8_t **p, size_t *n, char *tmp, size_t tmpcap)
{
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        *p = (const uint8_t *)(v->string_value ? v->string_value : "");
        *n = strlen((const char *)*p);
        return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        *p = v->bytes_value.data;
        *n = v->bytes_value.len;
        return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        *n = (size_t)snprintf(tmp, tmpcap, "%lld", (long long)v->int_value);
        *p = (const uint8_t *)tmp;
        return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        *n = (size_t)snprintf(tmp, tmpcap, "%s", v->bool_value ? "true" : "false");
        *p = (const uint8_t *)tmp;
        return true;
    default:
        return false;
    }
}

/* The logs priority attribute: a percentage; 0 never, >= 100 always, between them the
 * threshold at sampling_precision. Absent, negative or unusable: no override. */
static bool log_priority(const struct ps_state *st, const lg_log_record *l, uint64_t *prio)
{
    if (st->sampling_priority == NULL)
        return false;
    const lg_any_value *v = lg_attr_find(l->attributes, l->n_attributes, st->sampling_priority);
    if (v == NULL)
        return false;
    double pct;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
        pct = v->double_value;
    else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
        pct = (double)v->int_value;
    else
        return false;
    if (pct == 0) {
        *prio = NEVER_THRESHOLD;
        return true;
    }
    if (!(pct > 0))
        return false;
    if (pct >= 100) {
        *prio = 0;
        return true;
    }
    return lg_ps_prob_to_threshold(pct / 100.0, st->precision, prio) == 0;
}

/* A string attribute's value, or NULL (absent or not a string: the Collector ignores
 * other types here). */
static const char *log_str_attr(const lg_log_record *l, const char *key)
{
    const lg_any_value *v = lg_attr_find(l->attributes, l->n_attributes, key);
    return lg_any_str(v);
}

static bool decide_log(const struct ps_state *st, const lg_log_record *l, struct item *it)
{
    memset(it, 0, sizeof *it);
    it->carrier = true;
    const char *tv = log_str_attr(l, LOG_THRESHOLD_KEY), *rv = log_str_attr(l, LOG_RANDOMNESS_KEY);
    if (tv && *tv) {
        if (lg_ps_tvalue_parse(tv, strlen(tv), &it->ot.th) == 0)
            it->ot.has_th = true;
        else
            it->carrier = false;
    }
    if (rv && *rv) {
        if (lg_ps_rvalue_parse(rv, strlen(rv), &it->ot.rv) == 0)
            it->ot.has_rv = true;
        else
            it->carrier = false;
    }
    it->err = !it->carrier;
    bool have_tid = tid_valid(&l->trace_id);
    switch (st->mode) {
    case MODE_NEVER:
        it->rnd = MAX_RANDOMNESS;
        it->policy = POL_SAMPLING_PRIORITY;
        break;
    case MODE_HASH_SEED:
        it->missing = true;
        it->policy = POL_MISSING_RANDOMNESS;
        if (st->logs_trace_id && have_tid) {
            it->rnd = lg_ps_hash_randomness(st->seed, l->trace_id.data, 16);
            it->policy = POL_TRACE_ID_HASH;
            it->missing = false;
        }
        if (it->missing && st->from_attribute) {
            const lg_any_value *v = lg_attr_find(l->attributes, l->n_attributes, st->from_attribute);
            const uint8_t *p;
            size_t n;
            char tmp[32];
            if (v && attr_bytes(v, &p, &n, tmp, sizeof tmp) && n > 0) {
                it->rnd = lg_ps_hash_randomness(st->seed, p, n);
                it->policy = POL_ATTRIBUTE;
                it->missing = false;
            }
        }
        hash_seed_carrier(it);
        break;
    case MODE_PROPORTIONAL:
    case MODE_EQUALIZING:
        consistent_randomness(it, have_tid ? l->trace_id.data : NULL);
        break;
    }
    uint64_t prio = 0;
    bool have_prio = log_priority(st, l, &prio);
    return common_decide(st, it, have_prio, prio);
}

/* ------------------------------------------------------------------ batches ---- */

struct tally {
    uint64_t n[POL_COUNT][2];
};

static void tally_flush(struct ps_state *st, int sig, const struct tally *t)
{
    for (int p = 0; p < POL_COUNT; p++)
        for (int s = 0; s < 2; s++)
            if (t->n[p][s])
                lg_counter_add(policy_counter(st, sig, p, s), t->n[p][s]);
}

/* The span's tracestate re-encoded from it->ot into buf; false when it comes out the same
 * (or, which cannot happen for a tracestate that parsed, cannot be encoded). */
static bool span_ts_differs(const lg_span *s, const struct item *it, char *buf, size_t cap)
{
    if (lg_ps_tracestate_rewrite(s->trace_state, &it->ot, buf, cap) < 0)
        return false;
    return s->trace_state == NULL || strcmp(buf, s->trace_state) != 0;
}

/* The original when nothing changed, nothing when everything was dropped, else the
 * pruned clone (core/component.h). */
static int forward(struct lg_component *c, enum lg_signal sig, struct lg_batch *b, struct lg_batch *nb)
{
    return lg_fanout_consume_pruned(&c->next[sig], b, nb);
}

static int refuse_oom(struct lg_component *c, struct ps_state *st, int sig, struct lg_batch *b,
                      struct lg_batch *nb)
{
    lg_batch_unref(nb);
    lg_counter_add(st->refused[sig], b->items);
    lg_error(c->id, "out of memory sampling; refusing %zu items", b->items);
    return LG_ENOMEM;
}

static int consume_traces(struct lg_component *c, struct ps_state *st, struct lg_batch *b)
{
    const lg_traces_req *req = b->req.traces;
    struct lg_batch *nb = NULL;
    struct tally t;
    memset(&t, 0, sizeof t);
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const lg_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans; s++) {
            const lg_scope_spans *ss = rs->scope_spans[s];
            lg_scope_spans *nss = NULL;
            size_t w = 0;
            for (size_t i = 0; i < ss->n_spans; i++) {
                lg_span *span = ss->spans[i];
                struct item it;
                bool keep = decide_span(st, span, &it);
                t.n[it.policy][keep]++;
                char buf[TS_OUT_MAX];
                bool rewrite = keep && it.changed && it.carrier && span_ts_differs(span, &it, buf, sizeof buf);
                if (keep && !rewrite) {
                    if (nss)
                        nss->spans[w] = span;
                    w++;
                    continue;
                }
                /* a drop or a changed span: from here on the clone's arrays are written */
                if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                    return refuse_oom(c, st, SIG_T, b, nb);
                nss = nb->req.traces->resource_spans[r]->scope_spans[s];
                if (!keep)
                    continue;
                lg_span *copy = lg_arena_memdup(nb->arena, span, sizeof *copy);
                char *ts = lg_arena_strdup(nb->arena, buf);
                if (copy == NULL || ts == NULL)
                    return refuse_oom(c, st, SIG_T, b, nb);
                copy->trace_state = ts;
                nss->spans[w++] = copy;
            }
            if (nss)
                nss->n_spans = w;
        }
    }
    tally_flush(st, SIG_T, &t);
    return forward(c, LG_SIGNAL_TRACES, b, nb);
}

/* A copy of a log record carrying it->ot as sampling.* attributes, in arena a. A kept
 * record with a carrier always has a threshold (an inconsistent arriving one was cleared,
 * then replaced), so the attribute is only ever set, never removed. */
static lg_log_record *log_rewritten(struct lg_arena *a, const lg_log_record *l, const struct item *it)
{
    lg_log_record *copy = lg_arena_memdup(a, l, sizeof *copy);
    if (copy == NULL)
        return NULL;
    struct lg_attr_set set[2];
    size_t ns = 0;
    char thb[LG_PS_HEX_BUF], rvb[LG_PS_HEX_BUF];
    if (it->ot.has_th) {
        lg_ps_tvalue(it->ot.th, thb);
        set[ns++] = (struct lg_attr_set){.key = LOG_THRESHOLD_KEY, .kind = LG_ATTR_STRING, .s = thb};
    }
    if (it->rv_added) {
        hex14(it->ot.rv, rvb);
        set[ns++] = (struct lg_attr_set){.key = LOG_RANDOMNESS_KEY, .kind = LG_ATTR_STRING, .s = rvb};
    }
    if (ns && lg_attrs_set(a, &copy->attributes, &copy->n_attributes, set, ns) != LG_OK)
        return NULL;
    return copy;
}

static int consume_logs(struct lg_component *c, struct ps_state *st, struct lg_batch *b)
{
    const lg_logs_req *req = b->req.logs;
    struct lg_batch *nb = NULL;
    struct tally t;
    memset(&t, 0, sizeof t);
    for (size_t r = 0; r < req->n_resource_logs; r++) {
        const lg_resource_logs *rl = req->resource_logs[r];
        for (size_t s = 0; s < rl->n_scope_logs; s++) {
            const lg_scope_logs *sl = rl->scope_logs[s];
            lg_scope_logs *nsl = NULL;
            size_t w = 0;
            for (size_t i = 0; i < sl->n_log_records; i++) {
                const lg_log_record *l = sl->log_records[i];
                struct item it;
                bool keep = decide_log(st, l, &it);
                t.n[it.policy][keep]++;
                if (keep && !(it.changed && it.carrier)) {
                    if (nsl)
                        nsl->log_records[w] = (lg_log_record *)l;
                    w++;
                    continue;
                }
                if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL)
                    return refuse_oom(c, st, SIG_L, b, nb);
                nsl = nb->req.logs->resource_logs[r]->scope_logs[s];
                if (!keep)
                    continue;
                lg_log_record *copy = log_rewritten(nb->arena, l, &it);
                if (copy == NULL)
                    return refuse_oom(c, st, SIG_L, b, nb);
                nsl->log_records[w++] = copy;
            }
            if (nsl)
                nsl->n_log_records = w;
        }
    }
    tally_flush(st, SIG_L, &t);
    return forward(c, LG_SIGNAL_LOGS, b, nb);
}

static int ps_consume(struct lg_component *c, struct lg_batch *b)
{
    struct ps_state *st = c->state;
    if (b->signal == LG_SIGNAL_TRACES)
        return consume_traces(c, st, b);
    if (b->signal == LG_SIGNAL_LOGS)
        return consume_logs(c, st, b);
    return lg_fanout_consume(&c->next[b->signal], b);
}

/* ------------------------------------------------------------------ lifecycle ---- */

static const struct lg_node *conf_node(const struct lg_component *c, const char *key)
{
    const struct lg_node *n = lg_node_get(c->conf_node, key);
    return n ? n : c->conf_node;
}

static int ps_create(struct lg_component *c, struct lg_err *err)
{
    const struct ps_conf *cf = c->conf;
    /* the Collector reads the percentage as float32 */
    float pct = (float)cf->sampling_percentage;
    if (isnan(pct) || isinf(pct))
        return lg_conf_error(err, conf_node(c, "sampling_percentage"), "sampling rate is invalid: %g%%",
                             cf->sampling_percentage);
    if (pct < 0)
        return lg_conf_error(err, conf_node(c, "sampling_percentage"), "sampling rate is negative: %g%%",
                             cf->sampling_percentage);
    if (pct > 0 && (double)pct / 100.0 < MIN_PROBABILITY)
        return lg_conf_error(err, conf_node(c, "sampling_percentage"),
                             "sampling rate is too small: %g%% (the least is 2^-56)", cf->sampling_percentage);
    enum ps_mode mode;
    const char *m = cf->mode ? cf->mode : "";
    if (*m == '\0' || strcmp(m, "hash_seed") == 0)
        mode = MODE_HASH_SEED;
    else if (strcmp(m, "proportional") == 0)
        mode = MODE_PROPORTIONAL;
    else if (strcmp(m, "equalizing") == 0)
        mode = MODE_EQUALIZING;
    else
        return lg_conf_error(err, conf_node(c, "mode"),
                             "unsupported sampler mode \"%s\" (hash_seed, proportional or equalizing)", m);
    const char *as = cf->attribute_source ? cf->attribute_source : "traceID";
    bool logs_trace_id;
    if (strcmp(as, "traceID") == 0)
        logs_trace_id = true;
    else if (strcmp(as, "record") == 0)
        logs_trace_id = false;
    else
        return lg_conf_error(err, conf_node(c, "attribute_source"),
                             "invalid attribute source: %s. Expected: traceID or record", as);
    bool have_from = cf->from_attribute && *cf->from_attribute;
    if (!logs_trace_id && !have_from)
        return lg_conf_error(err, conf_node(c, "attribute_source"),
                             "attribute_source: record needs from_attribute (the record attribute to hash)");
    if (!logs_trace_id && mode != MODE_HASH_SEED)
        return lg_conf_error(err, conf_node(c, "attribute_source"),
                             "attribute_source: record works only in mode hash_seed (%s uses the trace ID "
                             "or sampling.randomness)", m);
    if (have_from && mode != MODE_HASH_SEED)
        return lg_conf_error(err, conf_node(c, "from_attribute"),
                             "from_attribute works only in mode hash_seed (%s uses the trace ID or "
                             "sampling.randomness)", m);
    if (cf->hash_seed != 0 && mode != MODE_HASH_SEED)
        return lg_conf_error(err, conf_node(c, "hash_seed"),
                             "hash_seed works only in mode hash_seed (%s uses the trace ID's randomness)", m);

    struct ps_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->fail_closed = cf->fail_closed;
    st->precision = (int)cf->sampling_precision;
    st->seed = (uint32_t)cf->hash_seed;
    st->logs_trace_id = logs_trace_id;
    st->from_attribute = have_from ? cf->from_attribute : NULL;
    st->sampling_priority = cf->sampling_priority && *cf->sampling_priority ? cf->sampling_priority : NULL;
    st->id = c->id;
    st->telemetry = c->rt ? c->rt->telemetry : NULL;
    if (pct > 100)
        pct = 100;
    double ratio = (double)pct / 100.0;
    st->mode = mode;
    if (pct == 0) {
        st->mode = MODE_NEVER;
    } else if (mode == MODE_HASH_SEED) {
        uint32_t scaled = lg_ps_hash_scaled_rate(pct);
        if (scaled == 0) {
            lg_warn(c->id, "sampling_percentage %g rounds to zero in mode hash_seed (the least is "
                           "%g%%): nothing will be kept", (double)pct, 100.0 / HASH_BUCKETS);
            st->mode = MODE_NEVER;
        }
        st->threshold = (uint64_t)(HASH_BUCKETS - scaled) << 42;
    } else if (mode == MODE_EQUALIZING) {
        if (lg_ps_prob_to_threshold(ratio, st->precision, &st->threshold) != 0)
            st->threshold = 0; /* precision underflow: the Collector falls back to always */
    } else {
        st->ratio = ratio;
    }
    char labels[300];
    snprintf(labels, sizeof labels, "processor=\"%s\",otel_signal=\"traces\"", c->id);
    st->refused[SIG_T] = lg_telemetry_counter(st->telemetry, "otelcol_processor_refused_items",
                                              "Items a processor refused (out of memory).", labels);
    snprintf(labels, sizeof labels, "processor=\"%s\",otel_signal=\"logs\"", c->id);
    st->refused[SIG_L] = lg_telemetry_counter(st->telemetry, "otelcol_processor_refused_items",
                                              "Items a processor refused (out of memory).", labels);
    c->state = st;
    return LG_OK;
}

static void ps_destroy(struct lg_component *c)
{
    free(c->state);
    c->state = NULL;
}

const struct lg_component_type lg_probabilistic_sampler_processor = {
    .type = "probabilistic_sampler",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_LOGS,
    .description = "keeps a percentage of spans / log records by trace ID hash or OTel threshold (stateless)",
    .conf_size = sizeof(struct ps_conf),
    .fields = ps_fields,
    .create = ps_create,
    .consume = ps_consume,
    .destroy = ps_destroy,
};
