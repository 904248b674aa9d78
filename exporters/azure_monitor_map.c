/* exporters/azure_monitor_map.c — OTLP traces / metrics / logs -> Application Insights
 * envelopes (see exporters/azure_monitor.h; the rules, and where we differ on purpose from
 * the official exporter @azure/monitor-opentelemetry-exporter 1.0.0-beta.47, are in
 * docs/exporters/azure_monitor_mapping.md).
 *
 * Owns: the envelope JSON text, written straight into the caller's item list (one buffer
 * per batch, see struct lg_azmon_items). Everything else is read from the batch and
 * never written.
 *
 * Speed: a small JSON writer (below) appends every envelope straight to the batch's items
 * buffer, a second one writes JSON placed inside strings (array attributes, `_MS.links`).
 * It replaced yajl_gen on measurement, not by default: with yajl_gen (a generator per
 * envelope, a copy out of its buffer, printf-based numbers) JSON writing was 17% of the
 * gateway's CPU in the exporter benchmark; writing in place halved the mapping's cost
 * (5.3 -> 3.0 us per envelope, bench/azure_map_bench.c). Then 3.2 -> 2.0-2.4 us: strings
 * that are plain printable ASCII (nearly all) are found by one word-at-a-time scan and
 * copied, without the UTF-8 check, the cut's count and the escape loop; the mapping's own
 * keys and names are copied without any scan; each attribute key's length is taken once
 * and hashed from its ends; the envelope head is written in one piece; the cold queued
 * spans are prefetched one pointer level per span ahead. Output is checked byte for byte
 * against the official exporter (tests/integration/azure_golden.test.mjs), every escape
 * and number form against a reference (tests/unit/test_azure_map.c), and the fast path at
 * every string position (tests/unit/test_azure_map_plain.c). Each span's attributes are
 * indexed in one pass through a hash of the keys the mapping looks at, so the rules below
 * cost a table read, not a key search. */
#include "azure_monitor.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "../core/common.h"
#include "../core/llm.h"

/* Field limits (REFERENCE §6; the official exporter's MaxPropertyLengths). Names, types,
 * targets and messages are counted as the official exporter counts them (String.substring,
 * UTF-16 code units); property values in UTF-8 bytes, cut at a character boundary. */
enum {
    LIM_ID = 512,
    LIM_NAME = 1024,
    LIM_EVENT_NAME = 512,
    LIM_RESULT = 1024,
    LIM_TYPE = 1024,
    LIM_TARGET = 1024,
    LIM_DATA = 8192,
    LIM_URL = 2048,
    LIM_MESSAGE = 32768,
    LIM_PROP_KEY = 150,
    LIM_PROP_VALUE = 8192,
    LIM_PROP_GENAI = 262144,
    LIM_TAG_ID = 128,
    LIM_TAG_OPNAME = 1024,
    LIM_TAG_ROLE = 256,
    LIM_TAG_IP = 45,
    LIM_TAG_SDK = 64,
    LIM_TAG_OTHER = 1024,
};

/* ------------------------------------------------------------------ attribute index -- */

/* Keys the mapping reads (slots) and keys that never become properties (flags). */
enum slot {
    S_NONE = 0,
    S_HTTP_REQUEST_METHOD,
    S_HTTP_METHOD,
    S_URL_FULL,
    S_HTTP_URL,
    S_HTTP_ROUTE,
    S_HTTP_RESPONSE_STATUS_CODE,
    S_HTTP_STATUS_CODE,
    S_URL_SCHEME,
    S_HTTP_SCHEME,
    S_URL_PATH,
    S_URL_QUERY,
    S_HTTP_TARGET,
    S_SERVER_ADDRESS,
    S_HTTP_HOST,
    S_CLIENT_ADDRESS,
    S_NET_PEER_NAME,
    S_CLIENT_PORT,
    S_SERVER_PORT,
    S_NET_PEER_PORT,
    S_NETWORK_PEER_ADDRESS,
    S_NET_PEER_IP,
    S_USER_AGENT_ORIGINAL,
    S_HTTP_USER_AGENT,
    S_HTTP_CLIENT_IP,
    S_PEER_SERVICE,
    S_DB_SYSTEM_NAME,
    S_DB_SYSTEM,
    S_DB_QUERY_TEXT,
    S_DB_STATEMENT,
    S_DB_OPERATION_NAME,
    S_DB_OPERATION,
    S_DB_NAMESPACE,
    S_DB_NAME,
    S_RPC_SYSTEM,
    S_RPC_GRPC_STATUS_CODE,
    S_ENDUSER_ID,
    S_ENDUSER_PSEUDO_ID,
    S_SESSION_ID,
    S_SYNTHETIC_TYPE,
    S_MS_CLIENT_IP,
    S_MS_SAMPLE_RATE,
    S_AI_OPERATION_NAME,
    S_AZ_NAMESPACE,
    S_MESSAGE_BUS_DESTINATION,
    S_PEER_ADDRESS,
    S_MS_CUSTOM_MEASUREMENTS,
    S_EXC_TYPE,
    S_EXC_MESSAGE,
    S_EXC_STACKTRACE,
    S_MS_CUSTOM_EVENT_NAME,
    S_COUNT
};

enum {
    X_ALWAYS = 1u << 0,  /* legacy semconv names, custom measurements, ai.operation.name */
    X_HTTPSEM = 1u << 1, /* current HTTP/network semconv names read into fields */
    X_DBADDR = 1u << 2,  /* server.address/port: X_HTTPSEM unless the span is a DB call */
    X_DBDEP = 1u << 3,   /* db.* names read into a DB dependency's fields */
    X_MS_OK = 1u << 4,   /* a _MS. / microsoft. name the official exporter keeps */
    X_OI_KIND = 1u << 5, /* openinference.span.kind (marks an LLM span; still a property) */
};

struct keyinfo {
    const char *key;
    unsigned char slot;
    unsigned char flags;
};

static const struct keyinfo keytab[] = {
    {"openinference.span.kind", S_NONE, X_OI_KIND},
    {"http.request.method", S_HTTP_REQUEST_METHOD, X_HTTPSEM},
    {"http.method", S_HTTP_METHOD, X_ALWAYS},
    {"url.full", S_URL_FULL, X_HTTPSEM},
    {"http.url", S_HTTP_URL, X_ALWAYS},
    {"http.route", S_HTTP_ROUTE, X_ALWAYS},
    {"http.response.status_code", S_HTTP_RESPONSE_STATUS_CODE, X_HTTPSEM},
    {"http.status_code", S_HTTP_STATUS_CODE, X_ALWAYS},
    {"url.scheme", S_URL_SCHEME, X_HTTPSEM},
    {"http.scheme", S_HTTP_SCHEME, X_ALWAYS},
    {"url.path", S_URL_PATH, X_HTTPSEM},
    {"url.query", S_URL_QUERY, X_HTTPSEM},
    {"http.target", S_HTTP_TARGET, X_ALWAYS},
    {"server.address", S_SERVER_ADDRESS, X_DBADDR},
    {"http.host", S_HTTP_HOST, X_ALWAYS},
    {"client.address", S_CLIENT_ADDRESS, X_HTTPSEM},
    {"net.peer.name", S_NET_PEER_NAME, X_ALWAYS},
    {"client.port", S_CLIENT_PORT, X_HTTPSEM},
    {"server.port", S_SERVER_PORT, X_DBADDR},
    {"net.peer.port", S_NET_PEER_PORT, X_ALWAYS},
    {"network.peer.address", S_NETWORK_PEER_ADDRESS, X_HTTPSEM},
    {"net.peer.ip", S_NET_PEER_IP, X_ALWAYS},
    {"user_agent.original", S_USER_AGENT_ORIGINAL, X_HTTPSEM},
    {"http.user_agent", S_HTTP_USER_AGENT, X_ALWAYS},
    {"http.client_ip", S_HTTP_CLIENT_IP, X_ALWAYS},
    {"peer.service", S_PEER_SERVICE, X_ALWAYS},
    {"db.system.name", S_DB_SYSTEM_NAME, X_DBDEP},
    {"db.system", S_DB_SYSTEM, X_ALWAYS},
    {"db.query.text", S_DB_QUERY_TEXT, X_DBDEP},
    {"db.statement", S_DB_STATEMENT, X_ALWAYS},
    {"db.operation.name", S_DB_OPERATION_NAME, X_DBDEP},
    {"db.operation", S_DB_OPERATION, X_ALWAYS},
    {"db.namespace", S_DB_NAMESPACE, X_DBDEP},
    {"db.name", S_DB_NAME, X_ALWAYS},
    {"rpc.system", S_RPC_SYSTEM, X_ALWAYS},
    {"rpc.grpc.status_code", S_RPC_GRPC_STATUS_CODE, X_ALWAYS},
    {"enduser.id", S_ENDUSER_ID, X_ALWAYS},
    {"enduser.pseudo.id", S_ENDUSER_PSEUDO_ID, X_HTTPSEM},
    {"session.id", S_SESSION_ID, X_HTTPSEM},
    {"user_agent.synthetic.type", S_SYNTHETIC_TYPE, X_HTTPSEM},
    {"microsoft.client.ip", S_MS_CLIENT_IP, 0},
    {"microsoft.sample_rate", S_MS_SAMPLE_RATE, 0},
    {"microsoft.custom_measurements", S_MS_CUSTOM_MEASUREMENTS, X_ALWAYS},
    {"microsoft.custom_event.name", S_MS_CUSTOM_EVENT_NAME, 0},
    {"ai.operation.name", S_AI_OPERATION_NAME, X_ALWAYS},
    {"az.namespace", S_AZ_NAMESPACE, 0},
    {"message_bus.destination", S_MESSAGE_BUS_DESTINATION, 0},
    {"peer.address", S_PEER_ADDRESS, 0},
    {"exception.type", S_EXC_TYPE, X_ALWAYS},
    {"exception.message", S_EXC_MESSAGE, X_ALWAYS},
    {"exception.stacktrace", S_EXC_STACKTRACE, X_ALWAYS},
    /* names only excluded from properties */
    {"net.host.ip", S_NONE, X_ALWAYS},
    {"http.flavor", S_NONE, X_ALWAYS},
    {"net.transport", S_NONE, X_ALWAYS},
    {"net.host.name", S_NONE, X_ALWAYS},
    {"net.host.port", S_NONE, X_ALWAYS},
    {"http.status_text", S_NONE, X_ALWAYS},
    {"error.type", S_NONE, X_HTTPSEM},
    {"network.local.address", S_NONE, X_HTTPSEM},
    {"network.local.port", S_NONE, X_HTTPSEM},
    {"network.protocol.name", S_NONE, X_HTTPSEM},
    {"network.peer.port", S_NONE, X_HTTPSEM},
    {"network.protocol.version", S_NONE, X_HTTPSEM},
    {"network.transport", S_NONE, X_HTTPSEM},
    /* _MS. / microsoft. names that stay properties */
    {"_MS.ProcessedByMetricExtractors", S_NONE, X_MS_OK},
    {"microsoft.gen_ai.main_agent.name", S_NONE, X_MS_OK},
    {"microsoft.gen_ai.main_agent.id", S_NONE, X_MS_OK},
    {"microsoft.gen_ai.main_agent.version", S_NONE, X_MS_OK},
    {"microsoft.gen_ai.main_agent.conversation_id", S_NONE, X_MS_OK},
};
#define NKEYTAB (sizeof keytab / sizeof keytab[0])

/* Property keys whose values may be up to 256 KiB (the official exporter's GenAI keys). */
static const char *const genai_big_keys[] = {
    "gen_ai.input.messages",         "gen_ai.output.messages",     "gen_ai.system_instructions",
    "gen_ai.tool.definitions",       "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.evaluation.explanation",
};

/* The key table as an open-addressing hash (built once): one hash and, for a hit, one
 * compare per attribute key. */
#define KEYHASH_SIZE 256                    /* power of two, > 2 x NKEYTAB */
static unsigned char keyhash[KEYHASH_SIZE]; /* index + 1 into keytab, 0 = empty */
static uint32_t keyfull[NKEYTAB];          /* each key's full hash */
static size_t keytab_len[NKEYTAB];
static pthread_once_t keytab_once = PTHREAD_ONCE_INIT;

/* A hash of a key of known length from its length and its first and last eight bytes
 * (two loads and multiplies instead of a loop over every byte: the keys are 10-30 bytes
 * and looked up once per attribute; a collision only costs a compare). */
static inline uint32_t key_hash(const char *k, size_t len)
{
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, k + len - 8, 8);
    } else {
        for (size_t i = 0; i < len; i++)
            a |= (uint64_t)(unsigned char)k[i] << (8 * i);
    }
    uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + len) * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 29;
    h *= 0x165667B19E3779F9ULL;
    return (uint32_t)(h >> 32);
}

static void keytab_build(void)
{
    for (size_t i = 0; i < NKEYTAB; i++) {
        size_t len = strlen(keytab[i].key);
        keyfull[i] = key_hash(keytab[i].key, len);
        keytab_len[i] = len;
        uint32_t h = keyfull[i] & (KEYHASH_SIZE - 1);
        while (keyhash[h])
            h = (h + 1) & (KEYHASH_SIZE - 1);
        keyhash[h] = (unsigned char)(i + 1);
    }
}

static const struct keyinfo *key_lookup(const char *key, size_t len)
{
    uint32_t full = key_hash(key, len), h = full & (KEYHASH_SIZE - 1);
    while (keyhash[h]) {
        size_t i = keyhash[h] - 1;
        /* the full hash and length first: most attribute keys are not in the table */
        if (keyfull[i] == full && keytab_len[i] == len && memcmp(keytab[i].key, key, len) == 0)
            return &keytab[i];
        h = (h + 1) & (KEYHASH_SIZE - 1);
    }
    return NULL;
}

/* The attributes of one span / event / record, indexed. */
struct aidx {
    lg_kv *const *kv;
    size_t n;
    const lg_any_value *slot[S_COUNT];
    unsigned char *flags; /* per attribute: X_* of its key (points into mapper scratch) */
    uint32_t *klen;       /* per attribute: its key's length (mapper scratch too) */
    bool genai_like;      /* some key starts with gen_ai. or llm. */
    bool oi_kind;         /* has openinference.span.kind */
};

/* ---------------------------------------------------------------- JSON writer ------- */

/* A compact JSON writer in place of yajl_gen: the mapping writes ~60 tokens per envelope
 * and yajl's per-token state checks, print callbacks and byte-at-a-time string escaping
 * were a sixth of the exporter's CPU. This one appends straight to a growable buffer (for
 * envelopes: the batch's items buffer), keeps one state byte per nesting level for the
 * ',' and ':' separators, and escapes strings eight bytes at a time. The output is what
 * yajl printed: the same separators, the same escapes (\" \\ \b \f \n \r \t, other
 * control characters as \u00xx; '/' and non-ASCII as is). Callers write well-formed
 * sequences (keys are strings, opens and closes pair up); nesting stops at JW_MAX_DEPTH
 * (json_any writes null below that). Out of memory sets *err and drops further output. */
#define JW_MAX_DEPTH 128

enum jw_state { JW_TOP, JW_MAP_FIRST, JW_MAP_KEY, JW_MAP_VAL, JW_ARR_FIRST, JW_ARR };

struct jw {
    char *buf;
    size_t len, cap;
    int *err; /* the mapper's error, set on out of memory */
    unsigned depth;
    unsigned char st[JW_MAX_DEPTH + 1];
};

static void jw_reset(struct jw *g)
{
    g->depth = 0;
    g->st[0] = JW_TOP;
}

static bool jw_grow(struct jw *g, size_t need)
{
    if (*g->err)
        return false;
    size_t cap = g->cap ? g->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *b = realloc(g->buf, cap);
    if (!b) {
        *g->err = LG_ENOMEM;
        return false;
    }
    g->buf = b;
    g->cap = cap;
    return true;
}

/* Room for n more bytes. */
static inline bool jw_room(struct jw *g, size_t n)
{
    return g->len + n <= g->cap || jw_grow(g, g->len + n);
}

/* The separator before a key or value (room for one byte must be reserved). */
static inline void jw_sep(struct jw *g)
{
    unsigned char *st = &g->st[g->depth];
    switch (*st) {
    case JW_MAP_FIRST: *st = JW_MAP_VAL; break;
    case JW_MAP_KEY: g->buf[g->len++] = ','; *st = JW_MAP_VAL; break;
    case JW_MAP_VAL: g->buf[g->len++] = ':'; *st = JW_MAP_KEY; break;
    case JW_ARR_FIRST: *st = JW_ARR; break;
    case JW_ARR: g->buf[g->len++] = ','; break;
    default: break;
    }
}

/* A value written as given (number text, true, false, null). */
static inline void jw_raw(struct jw *g, const char *t, size_t n)
{
    if (!jw_room(g, n + 1))
        return;
    jw_sep(g);
    memcpy(g->buf + g->len, t, n);
    g->len += n;
}

static inline void jw_open(struct jw *g, char c, unsigned char st)
{
    if (g->depth >= JW_MAX_DEPTH || !jw_room(g, 2))
        return;
    jw_sep(g);
    g->buf[g->len++] = c;
    g->st[++g->depth] = st;
}

static inline void jw_close(struct jw *g, char c)
{
    if (g->depth == 0 || !jw_room(g, 1))
        return;
    g->depth--;
    g->buf[g->len++] = c;
}

#define jw_map_open(g) jw_open((g), '{', JW_MAP_FIRST)
#define jw_map_close(g) jw_close((g), '}')
#define jw_array_open(g) jw_open((g), '[', JW_ARR_FIRST)
#define jw_array_close(g) jw_close((g), ']')
#define jw_number(g, t, n) jw_raw((g), (t), (n))
#define jw_null(g) jw_raw((g), "null", 4)
#define jw_bool(g, b) ((b) ? jw_raw((g), "true", 4) : jw_raw((g), "false", 5))

/* Does the 8-byte word hold a byte that JSON escapes ('"', '\\' or below 0x20)? Exact as a
 * yes/no (the classic has-zero-byte tests; false hits only sit above a true one). */
static inline bool jw_word_special(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w);
    return (hit & high) != 0;
}

static void jw_string(struct jw *g, const char *s, size_t n)
{
    if (!jw_room(g, n + 3))
        return;
    jw_sep(g);
    char *o = g->buf + g->len;
    *o++ = '"';
    size_t i = 0, run = 0; /* s[run, i) is plain text not yet copied */
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!jw_word_special(w)) {
                i += 8;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        /* an escape: copy the run, then up to six bytes; re-reserve for the worst case */
        memcpy(o, s + run, i - run);
        o += i - run;
        g->len = (size_t)(o - g->buf);
        if (!jw_room(g, 6 + (n - i) + 1))
            return;
        o = g->buf + g->len;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        }
        run = ++i;
    }
    memcpy(o, s + run, n - run);
    o += n - run;
    *o++ = '"';
    g->len = (size_t)(o - g->buf);
}

/* Is s[0, n) plain text: printable ASCII with no '"' or '\\'? Most attribute keys and
 * values are, and such a string is valid UTF-8 as it is, needs no escaping and is as many
 * UTF-16 units as bytes: one scan here replaces the UTF-8 check, the cut's count and the
 * escape scan (measured: the three were a quarter of the mapping's CPU). Eight bytes at a
 * time; the last word overlaps the one before when n is not a multiple of 8. */
static inline bool jw_is_plain(const char *s, size_t n)
{
    const uint64_t high = 0x8080808080808080ULL;
    uint64_t w;
    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
                return false;
        }
        return true;
    }
    size_t i = 0;
    for (; i + 8 < n; i += 8) {
        memcpy(&w, s + i, 8);
        if ((w & high) || jw_word_special(w))
            return false;
    }
    memcpy(&w, s + n - 8, 8);
    return !((w & high) || jw_word_special(w));
}

/* A string known to need no escaping (jw_is_plain, or text the mapping makes itself:
 * literal keys and names, hex IDs, times and durations), copied as it is. */
static inline void jw_plain(struct jw *g, const char *s, size_t n)
{
    if (!jw_room(g, n + 3))
        return;
    jw_sep(g);
    char *o = g->buf + g->len;
    *o++ = '"';
    memcpy(o, s, n);
    o += n;
    *o++ = '"';
    g->len = (size_t)(o - g->buf);
}

/* ----------------------------------------------------------------------- mapper ----- */

struct mapper {
    const struct lg_azmon_map_opts *o;
    struct lg_azmon_items *out;
    struct jw *g;  /* the envelope: writes into out->buf (moved in for the call) */
    struct jw *g2; /* JSON text placed inside a string */
    struct jw rtags;   /* the current resource's tags, rendered (see tags_resource) */
    unsigned rtags_gen, rt_gen;
    char *tmp;   /* UTF-8 repair buffer */
    size_t tmpcap;
    unsigned char *flags; /* aidx flags buffer */
    uint32_t *klens;      /* aidx key length buffer (flagscap entries too) */
    size_t flagscap;
    char *ikey_frag; /* `,"iKey":"..."` (ikey_frag_make) */
    size_t ikey_frag_len;
    size_t env_off; /* where the current envelope starts in out->buf */
    bool env_open;  /* env_begin without env_end yet */
    int err;
    int64_t now_ms;
};

/* A string slice. */
struct sv {
    const char *p;
    size_t n;
};

static struct sv sv_c(const char *s)
{
    return (struct sv){s, s ? strlen(s) : 0};
}

/* ------------------------------------------------------------- text helpers ---------- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0;
        if (c == 0xED && s[1] >= 0xA0) /* surrogates */
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

static bool utf8_valid(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    /* ASCII runs eight bytes at a time */
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL)
            break;
        i += 8;
    }
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq(s + i, n - i);
        if (!l)
            return false;
        i += l;
    }
    return true;
}

/* Valid UTF-8 for v: v itself, or a copy in m->tmp with each invalid byte replaced by
 * U+FFFD (what a JavaScript exporter would have had after decoding). */
static struct sv utf8_fix(struct mapper *m, struct sv v)
{
    if (utf8_valid(v.p, v.n))
        return v;
    size_t need = v.n * 3 + 1;
    if (need > m->tmpcap) {
        char *t = realloc(m->tmp, need);
        if (!t) {
            m->err = LG_ENOMEM;
            return (struct sv){"", 0};
        }
        m->tmp = t;
        m->tmpcap = need;
    }
    const unsigned char *s = (const unsigned char *)v.p;
    size_t i = 0, o = 0;
    while (i < v.n) {
        size_t l = utf8_seq(s + i, v.n - i);
        if (l) {
            memcpy(m->tmp + o, s + i, l);
            o += l;
            i += l;
        } else {
            memcpy(m->tmp + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    return (struct sv){m->tmp, o};
}

/* At most max UTF-8 bytes, cut at a character boundary (s valid UTF-8). */
size_t lg_azmon_cut_bytes(const char *s, size_t n, size_t max);
size_t lg_azmon_cut_bytes(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t end = max;
    while (end > 0 && ((unsigned char)s[end] & 0xC0) == 0x80)
        end--;
    return end;
}

/* At most max UTF-16 code units (JavaScript string length), never splitting a character. */
size_t lg_azmon_cut_units(const char *s, size_t n, size_t max);
size_t lg_azmon_cut_units(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n; /* a UTF-8 string never has fewer bytes than UTF-16 units */
    size_t units = 0, i = 0;
    while (i < n) {
        unsigned c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        size_t u = l == 4 ? 2 : 1;
        if (units + u > max || i + l > n)
            break;
        units += u;
        i += l;
    }
    return i;
}

/* Decimal text of v into buf (>= 21 bytes, NUL-terminated); its length. */
static size_t itoa_ll(long long v, char *buf)
{
    char t[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    size_t o = 0;
    if (v < 0)
        buf[o++] = '-';
    while (n)
        buf[o++] = t[--n];
    buf[o] = 0;
    return o;
}

/* The common case of lg_azmon_js_number without printf/strtod, in exact integer arithmetic:
 * a non-integer v with 1e-6 <= |v| < 2^52, which JavaScript prints in plain decimal.
 * |v| = m * 2^-s exactly (2^52 <= m < 2^53, 1 <= s <= 72), so |v| * 10^k = fl + rem / 2^s
 * with fl = (m * 10^k) >> s and rem its low s bits (m * 10^k < 2^127 for k <= 22). With k
 * decimals only fl and fl + 1 can read back as |v|: a decimal does when it is within half
 * the gap to the neighbouring double (2^-s-1; below a power of two the gap is half as
 * wide), which in these units is 2 * rem <= 10^k for fl and 2 * (2^s - rem) <= 10^k for
 * fl + 1 (4 * rem below a power of two), an exact tie reading back as the even m. The
 * first k with a candidate has the fewest digits; with two candidates the nearer wins
 * (then the even one), as ECMAScript's Number::toString says. Returns 0 (not handled)
 * outside that range. */
static size_t js_number_short(double v, char *buf)
{
    double a = fabs(v);
    if (!(a >= 1e-6 && a < 4503599627370496.0))
        return 0;
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    int s = 1075 - (int)(bits >> 52);
    if (s < 1 || s > 72)
        return 0;
    bool even = (m & 1) == 0, pow2 = m == (1ULL << 52);
    typedef unsigned __int128 u128;
    u128 one = 1, mask = (one << s) - 1, p10 = 1;
    for (int k = 1; k <= 22; k++) {
        p10 *= 10;
        u128 prod = (u128)m * p10;
        u128 fl = prod >> s, rem = prod & mask, up = (one << s) - rem;
        if (fl >= 100000000000000000ULL)
            return 0; /* beyond 17 digits (cannot happen: 17 always suffice) */
        u128 lo2 = pow2 ? 4 * rem : 2 * rem, hi2 = 2 * up;
        bool lo_ok = fl > 0 && (lo2 < p10 || (lo2 == p10 && even));
        bool hi_ok = hi2 < p10 || (hi2 == p10 && even);
        if (!lo_ok && !hi_ok)
            continue;
        uint64_t c;
        if (lo_ok && hi_ok)
            c = (uint64_t)(rem < up ? fl : rem > up ? fl + 1 : (fl & 1) == 0 ? fl : fl + 1);
        else
            c = (uint64_t)(lo_ok ? fl : fl + 1);
        int kk = k;
        while (kk > 0 && c % 10 == 0) { /* (never with the first k found; kept for safety) */
            c /= 10;
            kk--;
        }
        size_t o = 0;
        if (v < 0)
            buf[o++] = '-';
        uint64_t ip = 0, fr = c;
        if (kk < 19) {
            uint64_t p = 1;
            for (int i = 0; i < kk; i++)
                p *= 10;
            ip = c / p;
            fr = c % p;
        }
        o += itoa_ll((long long)ip, buf + o);
        if (kk > 0) {
            buf[o++] = '.';
            for (int i = kk - 1; i >= 0; i--) {
                buf[o + (size_t)i] = (char)('0' + fr % 10);
                fr /= 10;
            }
            o += (size_t)kk;
        }
        buf[o] = 0;
        return o;
    }
    return 0;
}

/* A double as JavaScript's Number.prototype.toString prints it (shortest text that reads
 * back exactly; exponent form below 1e-6 and from 1e21). buf >= 32 bytes. */
size_t lg_azmon_js_number(double v, char *buf);
size_t lg_azmon_js_number(double v, char *buf)
{
    if (isnan(v))
        return (size_t)snprintf(buf, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(buf, 32, v < 0 ? "-Infinity" : "Infinity");
    if (v == 0)
        return (size_t)snprintf(buf, 32, "0");
    if (v == floor(v) && fabs(v) < 9007199254740992.0) /* integers below 2^53: exact */
        return itoa_ll((long long)v, buf);
    size_t fast = js_number_short(v, buf);
    if (fast)
        return fast;
    /* The shortest round-tripping digits: if some k <= 15 digits read back exactly, the
     * 15-digit rounding is those digits padded with zeros (a double is within 1.2e-16
     * relative of them, less than half a 15-digit step), so trying 15, 16, 17 and dropping
     * trailing zeros finds them with at most three conversions. */
    char e[40];
    /* (subnormals carry fewer digits than that: search them from one digit) */
    for (int prec = fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e = [-]d[.ddd]e[+-]xx : collect digits and the exponent */
    char digits[24];
    size_t k = 0;
    const char *p = e;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[k++] = *p;
    int exp10 = atoi(p + 1);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = exp10 + 1; /* v = 0.digits * 10^n */
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if ((int)k <= n && n <= 21) {
        memcpy(buf + o, digits, k);
        o += k;
        for (int i = 0; i < n - (int)k; i++)
            buf[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, digits, (size_t)n);
        o += (size_t)n;
        buf[o++] = '.';
        memcpy(buf + o, digits + n, k - (size_t)n);
        o += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -n; i++)
            buf[o++] = '0';
        memcpy(buf + o, digits, k);
        o += k;
    } else {
        buf[o++] = digits[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, k - 1);
            o += k - 1;
        }
        o += (size_t)snprintf(buf + o, 12, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    buf[o] = 0;
    return o;
}

/* Unix nanoseconds -> ISO-8601 UTC with milliseconds, as the official exporter computes it
 * (nanoseconds as a double, divided to ms, truncated: new Date(ns / 1e6)). buf >= 32. */
size_t lg_azmon_iso_time(uint64_t unix_ns, char *buf);
static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Milliseconds since the epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (Date.prototype.toISOString for
 * years 1970..9999, which is all an unsigned OTLP time can reach in practice). */
static size_t iso_ms(int64_t ms, char *buf)
{
    if (ms < 0)
        ms = 0;
    if (ms > 253402300799999LL) /* 9999-12-31T23:59:59.999Z */
        ms = 253402300799999LL;
    int64_t days = ms / 86400000, rem = ms % 86400000;
    /* civil date from a day count (proleptic Gregorian, eras of 400 years) */
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned mon = mp < 10 ? mp + 3 : mp - 9;
    unsigned year = (unsigned)((int64_t)yoe + era * 400 + (mon <= 2));
    put_digits(buf, year, 4);
    buf[4] = '-';
    put_digits(buf + 5, mon, 2);
    buf[7] = '-';
    put_digits(buf + 8, day, 2);
    buf[10] = 'T';
    put_digits(buf + 11, (unsigned)(rem / 3600000), 2);
    buf[13] = ':';
    put_digits(buf + 14, (unsigned)(rem / 60000 % 60), 2);
    buf[16] = ':';
    put_digits(buf + 17, (unsigned)(rem / 1000 % 60), 2);
    buf[19] = '.';
    put_digits(buf + 20, (unsigned)(rem % 1000), 3);
    buf[23] = 'Z';
    buf[24] = 0;
    return 24;
}

size_t lg_azmon_iso_time(uint64_t unix_ns, char *buf)
{
    double ns = (double)(unix_ns / 1000000000u) * 1e9 + (double)(unix_ns % 1000000000u);
    return iso_ms((int64_t)trunc(ns / 1e6), buf);
}

/* Duration in nanoseconds -> the official exporter's msToTimeSpan text:
 * [d.]hh:mm:ss.fffffff with the seconds printed by toFixed(7) and up to four trailing
 * zeros dropped ("00:00:01.500", "00:00:01.2345679"). buf >= 48 bytes. */
size_t lg_azmon_duration(int64_t dur_ns, char *buf);
size_t lg_azmon_duration(int64_t dur_ns, char *buf)
{
    double ms = 0;
    if (dur_ns > 0) /* [seconds, nanos] -> ms, as hrTimeToMilliseconds */
        ms = (double)(dur_ns / 1000000000) * 1e3 + (double)(dur_ns % 1000000000) / 1e6;
    double secv = fmod(ms / 1e3, 60);
    char sec[32];
    int sl;
    /* toFixed(7): the integer n nearest to secv * 1e7 (the larger on an exact tie). The
     * product in long double is within ~1e-10 of the exact one, so only a fraction within
     * 1e-9 of one half needs the exact (printf) path. */
    long double y = (long double)secv * 1e7L;
    long double fl = floorl(y), frac = y - fl;
    if (fabsl(frac - 0.5L) > 1e-9L) {
        unsigned long long n7 = (unsigned long long)fl + (frac > 0.5L ? 1 : 0);
        sl = (int)itoa_ll((long long)(n7 / 10000000ULL), sec);
        sec[sl++] = '.';
        put_digits(sec + sl, (unsigned)(n7 % 10000000ULL), 7);
        sl += 7;
        sec[sl] = 0;
    } else {
        /* printf rounds an exact tie to even; an exact tie at the 8th decimal is a
         * multiple of 1/256 with an odd numerator: nudge it up as toFixed does */
        double scaled = secv * 256;
        if (scaled == floor(scaled) && fmod(scaled, 2) == 1)
            secv += 1e-9;
        sl = snprintf(sec, sizeof sec, "%.7f", secv);
    }
    for (int i = 0; i < 4 && sl > 0 && sec[sl - 1] == '0'; i++)
        sec[--sl] = 0;
    int64_t mins = (int64_t)floor(ms / 60000.0) % 60;
    int64_t hours = (int64_t)floor(ms / 3600000.0) % 24;
    int64_t days = (int64_t)floor(ms / 86400000.0);
    const char *dot = strchr(sec, '.');
    bool pad = dot && dot - sec < 2;
    /* [d.]hh:mm:[0]sec (hours < 24, minutes < 60) */
    size_t o = 0;
    if (days > 0) {
        o = itoa_ll((long long)days, buf);
        buf[o++] = '.';
    }
    put_digits(buf + o, (unsigned)hours, 2);
    buf[o + 2] = ':';
    put_digits(buf + o + 3, (unsigned)mins, 2);
    buf[o + 5] = ':';
    o += 6;
    if (pad)
        buf[o++] = '0';
    size_t room = 47 - o; /* buf >= 48 */
    size_t n = (size_t)sl < room ? (size_t)sl : room;
    memcpy(buf + o, sec, n);
    o += n;
    buf[o] = 0;
    return o;
}

/* Two lowercase hex digits per byte value: IDs are 24 bytes per span, one table read per
 * byte instead of two shifts and reads. */
#define HX4(a) #a "0", #a "1", #a "2", #a "3", #a "4", #a "5", #a "6", #a "7", #a "8", #a "9", \
               #a "a", #a "b", #a "c", #a "d", #a "e", #a "f"
static const char hex2[256][3] = {HX4(0), HX4(1), HX4(2), HX4(3), HX4(4), HX4(5), HX4(6), HX4(7),
                                  HX4(8), HX4(9), HX4(a), HX4(b), HX4(c), HX4(d), HX4(e), HX4(f)};
#undef HX4

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hex2[p[i]], 2);
    out[2 * n] = 0;
}

/* --------------------------------------------------------------- JSON helpers ------- */

/* a key or value that is a string literal (length known at compile time) of the mapping's
 * own: plain text, never escaped */
#define GK(g, lit) jw_plain((g), (lit), sizeof(lit) - 1)

/* a NUL-terminated key or value the mapping makes itself (names, hex IDs, times,
 * durations: plain text); a macro, so for a literal the compiler folds the strlen */
#define gk(g, str) jw_plain((g), (str), strlen(str))

/* A string value (any bytes; repaired to UTF-8). */
static void gsv(struct mapper *m, struct jw *g, struct sv v)
{
    if (jw_is_plain(v.p, v.n)) {
        jw_plain(g, v.p, v.n);
        return;
    }
    v = utf8_fix(m, v);
    jw_string(g, v.p, v.n);
}

/* A string value cut to max UTF-16 units. */
static void gsv_units(struct mapper *m, struct jw *g, struct sv v, size_t max)
{
    if (jw_is_plain(v.p, v.n)) { /* ASCII: one unit per byte */
        jw_plain(g, v.p, v.n < max ? v.n : max);
        return;
    }
    v = utf8_fix(m, v);
    jw_string(g, v.p, lg_azmon_cut_units(v.p, v.n, max));
}

static void gnum(struct jw *g, double v)
{
    char b[32];
    if (!isfinite(v)) { /* JSON.stringify writes null for NaN and infinities */
        jw_null(g);
        return;
    }
    size_t n = lg_azmon_js_number(v, b);
    jw_number(g, b, n);
}

static void gint(struct jw *g, long long v)
{
    char b[24];
    size_t n = itoa_ll(v, b);
    jw_number(g, b, n);
}

/* ----------------------------------------------------------- attribute values ------- */

static bool any_set(const lg_any_value *v)
{
    return v && v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET;
}

/* JavaScript truthiness of an attribute value. */
static bool truthy(const lg_any_value *v)
{
    if (!any_set(v))
        return false;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return v->string_value && v->string_value[0];
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE: return v->bool_value;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE: return v->int_value != 0;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return v->double_value != 0 && !isnan(v->double_value);
    default: return true;
    }
}

static const lg_any_value *either(const lg_any_value *a, const lg_any_value *b)
{
    return truthy(a) ? a : truthy(b) ? b : NULL;
}

static void json_any(struct mapper *m, struct jw *g, const lg_any_value *v);

/* String(value) / serializeAttribute(value): scalars as JavaScript prints them, arrays and
 * maps as JSON text. The result lives in sbuf (>= 32 bytes) or in m->g2's buffer until the
 * next call. */
static struct sv any_text(struct mapper *m, const lg_any_value *v, char *sbuf)
{
    if (!any_set(v))
        return (struct sv){"", 0};
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return sv_c(v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return v->bool_value ? (struct sv){"true", 4} : (struct sv){"false", 5};
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return (struct sv){sbuf, itoa_ll((long long)v->int_value, sbuf)};
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return (struct sv){sbuf, lg_azmon_js_number(v->double_value, sbuf)};
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        /* String(Uint8Array): the bytes in decimal, comma-separated; the text is kept in
         * g2's buffer (appended raw) so the caller does not own it */
        m->g2->len = 0;
        jw_reset(m->g2);
        char *t = malloc(v->bytes_value.len * 4 + 1);
        if (!t) {
            m->err = LG_ENOMEM;
            return (struct sv){"", 0};
        }
        size_t o = 0;
        for (size_t i = 0; i < v->bytes_value.len; i++)
            o += (size_t)snprintf(t + o, 5, "%s%u", i ? "," : "", v->bytes_value.data[i]);
        jw_number(m->g2, t, o);
        free(t);
        return (struct sv){m->g2->buf ? m->g2->buf : "", m->g2->len};
    }
    default: {
        m->g2->len = 0;
        jw_reset(m->g2);
        json_any(m, m->g2, v);
        return (struct sv){m->g2->buf ? m->g2->buf : "", m->g2->len};
    }
    }
}

/* JSON.stringify of an attribute value. */
static void json_any(struct mapper *m, struct jw *g, const lg_any_value *v)
{
    if (!any_set(v) || g->depth >= JW_MAX_DEPTH) { /* (deeper than the writer nests: null) */
        jw_null(g);
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        gsv(m, g, sv_c(v->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        jw_bool(g, v->bool_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        gint(g, (long long)v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        gnum(g, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        jw_array_open(g);
        if (v->array_value)
            for (size_t i = 0; i < v->array_value->n_values; i++)
                json_any(m, g, v->array_value->values[i]);
        jw_array_close(g);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        jw_map_open(g);
        if (v->kvlist_value)
            for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
                const lg_kv *kv = v->kvlist_value->values[i];
                gsv(m, g, sv_c(kv->key));
                json_any(m, g, kv->value);
            }
        jw_map_close(g);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        /* a Uint8Array stringifies as {"0":b0,"1":b1,...} */
        jw_map_open(g);
        for (size_t i = 0; i < v->bytes_value.len; i++) {
            char k[24];
            int l = snprintf(k, sizeof k, "%zu", i);
            jw_string(g, k, (size_t)l);
            gint(g, v->bytes_value.data[i]);
        }
        jw_map_close(g);
        break;
    }
    default: jw_null(g);
    }
}

/* Writes one property "key": "value" with the key and value limits. */
static void gprop(struct mapper *m, struct sv key, struct sv val)
{
    if (jw_is_plain(key.p, key.n)) { /* ASCII: any byte is a character boundary */
        jw_plain(m->g, key.p, key.n < LIM_PROP_KEY ? key.n : LIM_PROP_KEY);
    } else {
        struct sv k = utf8_fix(m, key);
        jw_string(m->g, k.p, lg_azmon_cut_bytes(k.p, k.n, LIM_PROP_KEY));
    }
    size_t max = LIM_PROP_VALUE;
    if (key.n > 7 && memcmp(key.p, "gen_ai.", 7) == 0)
        for (size_t i = 0; i < sizeof genai_big_keys / sizeof genai_big_keys[0]; i++)
            if (strlen(genai_big_keys[i]) == key.n && memcmp(genai_big_keys[i], key.p, key.n) == 0)
                max = LIM_PROP_GENAI;
    if (jw_is_plain(val.p, val.n)) {
        jw_plain(m->g, val.p, val.n < max ? val.n : max);
        return;
    }
    struct sv v = utf8_fix(m, val);
    jw_string(m->g, v.p, lg_azmon_cut_bytes(v.p, v.n, max));
}

/* A property from an attribute whose key length is known (struct aidx). */
static void gprop_anyn(struct mapper *m, struct sv key, const lg_any_value *v)
{
    char sbuf[32];
    struct sv t = any_text(m, v, sbuf);
    gprop(m, key, t);
}

static void gprop_any(struct mapper *m, const char *key, const lg_any_value *v)
{
    gprop_anyn(m, sv_c(key), v);
}

/* ------------------------------------------------------------ attribute index ------- */

static int aidx_build(struct mapper *m, struct aidx *x, lg_kv *const *kv, size_t n)
{
    memset(x, 0, sizeof *x);
    x->kv = kv;
    x->n = n;
    if (n > m->flagscap) {
        size_t cap = n < 64 ? 64 : n;
        unsigned char *f = realloc(m->flags, cap);
        if (!f)
            return m->err = LG_ENOMEM;
        m->flags = f;
        uint32_t *kl = realloc(m->klens, cap * sizeof *kl);
        if (!kl)
            return m->err = LG_ENOMEM;
        m->klens = kl;
        m->flagscap = cap;
    }
    x->flags = m->flags;
    x->klen = m->klens;
    /* The batch was decoded long ago (it waited in the queue) and is no longer in cache:
     * walking kv[i] -> key -> bytes one attribute after the other is three dependent
     * cache misses each. Ask for every level of all of them first, so the misses overlap. */
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(kv[i]);
    for (size_t i = 0; i < n; i++)
        if (kv[i]) {
            __builtin_prefetch(kv[i]->key);
            __builtin_prefetch(kv[i]->value);
        }
    /* and the string values' bytes (the property writer reads them after the rules) */
    for (size_t i = 0; i < n; i++) {
        const lg_any_value *v = kv[i] ? kv[i]->value : NULL;
        if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
            __builtin_prefetch(v->string_value);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = kv[i] && kv[i]->key ? kv[i]->key : "";
        unsigned char fl = 0;
        size_t len = strlen(k);
        x->klen[i] = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        if ((k[0] == 'g' && len >= 7 && memcmp(k, "gen_ai.", 7) == 0) ||
            (k[0] == 'l' && len >= 4 && memcmp(k, "llm.", 4) == 0))
            x->genai_like = true;
        const struct keyinfo *ki = key_lookup(k, len);
        if (ki) {
            fl = ki->flags;
            if (fl & X_OI_KIND)
                x->oi_kind = true;
            if (ki->slot && !x->slot[ki->slot] && any_set(kv[i]->value))
                x->slot[ki->slot] = kv[i]->value;
        }
        x->flags[i] = fl;
    }
    return LG_OK;
}

static const lg_any_value *aget(const struct aidx *x, enum slot s)
{
    return x->slot[s];
}

/* Is attribute i a property? (kind < 0: not a span, e.g. an event.) */
static bool is_prop(const struct aidx *x, size_t i, bool is_db, bool is_db_dep)
{
    const char *k = x->kv[i]->key ? x->kv[i]->key : "";
    unsigned fl = x->flags[i];
    if (fl & X_ALWAYS)
        return false;
    if (!(fl & X_MS_OK)) {
        if ((k[0] == '_' && strncmp(k, "_MS.", 4) == 0) || (k[0] == 'm' && strncmp(k, "microsoft.", 10) == 0))
            return false;
    }
    if ((fl & X_DBDEP) && is_db_dep)
        return false;
    if (fl & X_HTTPSEM)
        return false;
    if ((fl & X_DBADDR) && !is_db)
        return false;
    return true;
}

/* ---------------------------------------------------------------- envelopes --------- */

static void env_begin(struct mapper *m, const char *name, const char *time_iso, double sample_rate)
{
    struct jw *g = m->g;
    jw_reset(g);
    if (m->env_open)
        g->len = m->env_off; /* an envelope begun and never ended: drop its bytes */
    if (g->len == 0 && jw_room(g, 1))
        g->buf[g->len++] = ','; /* the separator before the first envelope */
    m->env_off = g->len;
    m->env_open = true;
    /* The envelope's head, the same for every envelope but for the name, time and rate,
     * written in one go (what jw_map_open and five key/value pairs would write; the iKey
     * pair is rendered once per batch, see ikey_frag) instead of token by token. */
    char num[32];
    size_t numlen = isfinite(sample_rate) ? lg_azmon_js_number(sample_rate, num) : 0;
    if (!numlen) { /* JSON.stringify writes null for NaN and infinities */
        memcpy(num, "null", 4);
        numlen = 4;
    }
    static const char h1[] = "{\"ver\":1,\"name\":\"", h2[] = "\",\"time\":\"",
                      h3[] = "\",\"sampleRate\":";
    size_t nl = strlen(name), tl = strlen(time_iso);
    size_t need = sizeof h1 + nl + sizeof h2 + tl + sizeof h3 + numlen + m->ikey_frag_len;
    if (!jw_room(g, need))
        return;
    char *o = g->buf + g->len;
#define PUT(p, n) (memcpy(o, (p), (n)), o += (n))
    PUT(h1, sizeof h1 - 1);
    PUT(name, nl);
    PUT(h2, sizeof h2 - 1);
    PUT(time_iso, tl);
    PUT(h3, sizeof h3 - 1);
    PUT(num, numlen);
    PUT(m->ikey_frag, m->ikey_frag_len);
#undef PUT
    g->len = (size_t)(o - g->buf);
    g->depth = 1;
    g->st[1] = JW_MAP_KEY; /* inside the envelope's map, after a value */
}

/* `,"iKey":"<key>"` as the writer renders that pair inside a map (escaped, UTF-8
 * repaired), for env_begin; into m->ikey_frag. */
static int ikey_frag_make(struct mapper *m)
{
    struct jw f = {.err = &m->err};
    jw_reset(&f);
    f.depth = 1;
    f.st[1] = JW_MAP_KEY;
    GK(&f, "iKey");
    gsv(m, &f, sv_c(m->o->ikey ? m->o->ikey : ""));
    m->ikey_frag = f.buf;
    m->ikey_frag_len = f.len;
    return m->err;
}

static int env_end(struct mapper *m)
{
    struct jw *g = m->g;
    jw_map_close(g);
    m->env_open = false;
    struct lg_azmon_items *out = m->out;
    if (!m->err && out->n == out->vcap) {
        size_t cap = out->vcap ? out->vcap * 2 : 64;
        struct lg_azmon_item *v = realloc(out->v, cap * sizeof *v);
        if (!v)
            m->err = LG_ENOMEM;
        else {
            out->v = v;
            out->vcap = cap;
        }
    }
    if (!m->err && jw_room(g, 1)) {
        out->v[out->n].off = m->env_off;
        out->v[out->n].len = g->len - m->env_off;
        out->n++;
        g->buf[g->len++] = ','; /* the separator after it */
        return LG_OK;
    }
    g->len = m->env_off; /* drop the partial envelope */
    return m->err;
}

/* Resource-derived tags (createTagsFromResource), written into an open tags map. */
struct restags {
    struct sv role;
    bool role_set;
    struct sv instance;
    const lg_any_value *device_id, *device_model, *version;
    char rolebuf[LIM_TAG_ROLE * 2 + 2];
    unsigned gen; /* which resource (the mapper's count), for the rendered-tags cache */
};

static const lg_any_value *rattr(const lg_resource *r, const char *key)
{
    return r ? lg_attr_find(r->attributes, r->n_attributes, key) : NULL;
}

static void restags_read(struct mapper *m, const lg_resource *r, struct restags *t)
{
    memset(t, 0, sizeof *t);
    t->gen = ++m->rt_gen;
    char sb[32];
    const lg_any_value *name = rattr(r, "service.name"), *ns = rattr(r, "service.namespace");
    struct sv role = {"", 0};
    bool done = false;
    if (truthy(name)) {
        struct sv nm = any_text(m, name, sb);
        if (truthy(ns)) {
            const char *nss = lg_any_str(ns);
            struct sv nsv = nss ? sv_c(nss) : (struct sv){"", 0};
            size_t a = nsv.n < LIM_TAG_ROLE ? nsv.n : LIM_TAG_ROLE;
            size_t bl = nm.n < LIM_TAG_ROLE ? nm.n : LIM_TAG_ROLE;
            memcpy(t->rolebuf, nsv.p, a);
            t->rolebuf[a] = '.';
            memcpy(t->rolebuf + a + 1, nm.p, bl);
            role = (struct sv){t->rolebuf, a + 1 + bl};
        } else {
            size_t bl = nm.n < sizeof t->rolebuf ? nm.n : sizeof t->rolebuf;
            memcpy(t->rolebuf, nm.p, bl);
            role = (struct sv){t->rolebuf, bl};
        }
        if (!(nm.n >= 15 && memcmp(nm.p, "unknown_service", 15) == 0))
            done = true;
    }
    if (!done) {
        static const char *const k8s[] = {"k8s.deployment.name",  "k8s.replicaset.name",
                                          "k8s.statefulset.name", "k8s.job.name",
                                          "k8s.cronjob.name",     "k8s.daemonset.name"};
        for (size_t i = 0; i < sizeof k8s / sizeof k8s[0]; i++) {
            const lg_any_value *v = rattr(r, k8s[i]);
            if (truthy(v) && lg_any_str(v)) {
                role = sv_c(lg_any_str(v));
                break;
            }
        }
    }
    t->role = role;
    t->role_set = true;
    /* role instance: k8s.pod.name, service.instance.id, else (the official exporter uses
     * its own host name, which a gateway does not share) the resource's host.name */
    static const char *const inst[] = {"k8s.pod.name", "service.instance.id", "host.name"};
    for (size_t i = 0; i < 3; i++) {
        const lg_any_value *v = rattr(r, inst[i]);
        if (truthy(v) && lg_any_str(v)) {
            t->instance = sv_c(lg_any_str(v));
            break;
        }
    }
    const lg_any_value *v;
    if (truthy(v = rattr(r, "device.id")))
        t->device_id = v;
    if (truthy(v = rattr(r, "device.model.name")))
        t->device_model = v;
    if (truthy(v = rattr(r, "service.version")))
        t->version = v;
}

/* tag writers take the key's length (the macros below pass strlen of a literal, folded) */
static void gtag_svn(struct mapper *m, const char *key, size_t keylen, struct sv v, size_t max)
{
    jw_plain(m->g, key, keylen); /* tag keys are the mapping's own literals */
    gsv_units(m, m->g, v, max);
}

static void gtag_anyn(struct mapper *m, const char *key, size_t keylen, const lg_any_value *v, size_t max)
{
    char sb[32];
    struct sv t = any_text(m, v, sb);
    gtag_svn(m, key, keylen, t, max);
}

#define gtag_sv(m, key, ...) gtag_svn((m), (key), strlen(key), __VA_ARGS__)
#define gtag_any(m, key, ...) gtag_anyn((m), (key), strlen(key), __VA_ARGS__)

/* The resource's tags, first in an open tags map (every envelope of a resource has the
 * same ones): written once per resource into m->rtags and copied from there. */
static void tags_resource_write(struct mapper *m, const struct restags *t)
{
    if (m->o->sdk_version)
        gtag_sv(m, "ai.internal.sdkVersion", sv_c(m->o->sdk_version), LIM_TAG_SDK);
    if (t->role_set)
        gtag_sv(m, "ai.cloud.role", t->role, LIM_TAG_ROLE);
    if (t->instance.p)
        gtag_sv(m, "ai.cloud.roleInstance", t->instance, LIM_TAG_ROLE);
    if (t->device_id)
        gtag_any(m, "ai.device.id", t->device_id, LIM_TAG_OTHER);
    if (t->device_model)
        gtag_any(m, "ai.device.model", t->device_model, LIM_TAG_OTHER);
    if (t->version)
        gtag_any(m, "ai.application.ver", t->version, LIM_TAG_OTHER);
}

static void tags_resource(struct mapper *m, const struct restags *t)
{
    struct jw *g = m->g, *r = &m->rtags;
    if (m->rtags_gen != t->gen) {
        r->len = 0;
        jw_reset(r);
        r->depth = 1;
        r->st[1] = JW_MAP_FIRST;
        m->g = r;
        tags_resource_write(m, t);
        m->g = g;
        m->rtags_gen = t->gen;
    }
    if (r->len == 0 || !jw_room(g, r->len + 1))
        return;
    if (g->st[g->depth] == JW_MAP_KEY)
        g->buf[g->len++] = ',';
    memcpy(g->buf + g->len, r->buf, r->len);
    g->len += r->len;
    g->st[g->depth] = JW_MAP_KEY;
}

/* sampleRate: microsoft.sample_rate, else the OTel threshold in tracestate, else 100. */
double lg_azmon_sample_rate(const lg_any_value *attr, const char *tracestate);
double lg_azmon_sample_rate(const lg_any_value *attr, const char *tracestate)
{
    double d;
    if (truthy(attr) && lg_any_double(attr, &d) && isfinite(d))
        return d;
    if (!tracestate || !*tracestate)
        return 100;
    /* tracestate: list-member *( "," list-member ), member = key "=" value; the `ot`
     * value is sub-keys "k:v" separated by ';' */
    const char *p = tracestate;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        if (e - p > 3 && p[0] == 'o' && p[1] == 't' && p[2] == '=') {
            const char *q = p + 3;
            while (q < e) {
                const char *qe = q;
                while (qe < e && *qe != ';')
                    qe++;
                if (qe - q > 3 && q[0] == 't' && q[1] == 'h' && q[2] == ':') {
                    const char *h = q + 3;
                    size_t hn = (size_t)(qe - h);
                    if (hn == 0 || hn > 14)
                        return 100;
                    uint64_t th = 0;
                    for (size_t i = 0; i < 14; i++) {
                        unsigned dgt = 0;
                        if (i < hn) {
                            char c = h[i];
                            if (c >= '0' && c <= '9')
                                dgt = (unsigned)(c - '0');
                            else if (c >= 'a' && c <= 'f')
                                dgt = (unsigned)(c - 'a' + 10);
                            else
                                return 100;
                        }
                        th = th << 4 | dgt;
                    }
                    return 100.0 * (1.0 - (double)th / 72057594037927936.0 /* 2^56 */);
                }
                q = qe < e ? qe + 1 : e;
            }
        }
        p = e;
    }
    return 100;
}

/* Custom measurements from microsoft.custom_measurements (JSON text or a map): the finite
 * numbers under non-empty keys. With `lazy`, the "measurements" key and its map are written
 * only when there is at least one (span events leave the field out when empty); otherwise
 * the caller has opened the map. */
static void gmeasure_custom(struct mapper *m, const lg_any_value *v, bool lazy)
{
    bool opened = !lazy;
    if (!v)
        return;
#define MEASURE_OPEN()                                                                             \
    do {                                                                                           \
        if (!opened) {                                                                             \
            gk(m->g, "measurements");                                                              \
            jw_map_open(m->g);                                                               \
            opened = true;                                                                         \
        }                                                                                          \
    } while (0)
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
        char eb[8];
        yajl_val root = yajl_tree_parse(v->string_value, eb, sizeof eb);
        if (!root)
            return;
        if (YAJL_IS_OBJECT(root))
            for (size_t i = 0; i < root->u.object.len; i++) {
                yajl_val x = root->u.object.values[i];
                const char *k = root->u.object.keys[i];
                if (k[0] && YAJL_IS_NUMBER(x) && isfinite(YAJL_GET_DOUBLE(x))) {
                    MEASURE_OPEN();
                    struct sv kk = utf8_fix(m, sv_c(k));
                    jw_string(m->g, kk.p,
                                    lg_azmon_cut_units(kk.p, kk.n, LIM_PROP_KEY));
                    gnum(m->g, YAJL_GET_DOUBLE(x));
                }
            }
        yajl_tree_free(root);
    } else if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE &&
               v->kvlist_value) {
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            const lg_kv *kv = v->kvlist_value->values[i];
            double d;
            const lg_any_value *x = kv->value;
            if (!kv->key || !kv->key[0] || !x)
                continue;
            if (x->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
                d = (double)x->int_value;
            else if (x->value_case ==
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
                d = x->double_value;
            else
                continue;
            if (!isfinite(d))
                continue;
            MEASURE_OPEN();
            struct sv kk = utf8_fix(m, sv_c(kv->key));
            jw_string(m->g, kk.p,
                            lg_azmon_cut_units(kk.p, kk.n, LIM_PROP_KEY));
            gnum(m->g, d);
        }
    }
#undef MEASURE_OPEN
    if (lazy && opened)
        jw_map_close(m->g);
}

/* --------------------------------------------------------------- URL pieces -------- */

/* new URL(s).pathname for the common cases; false when s is not an absolute URL. */
static bool url_pathname(struct sv s, struct sv *path)
{
    size_t i = 0;
    if (s.n == 0 || !((s.p[0] | 32) >= 'a' && (s.p[0] | 32) <= 'z'))
        return false;
    while (i < s.n &&
           (((s.p[i] | 32) >= 'a' && (s.p[i] | 32) <= 'z') || (s.p[i] >= '0' && s.p[i] <= '9') ||
            s.p[i] == '+' || s.p[i] == '-' || s.p[i] == '.'))
        i++;
    if (i >= s.n || s.p[i] != ':')
        return false;
    size_t sl = i;
    bool special = (sl == 4 && strncasecmp(s.p, "http", 4) == 0) ||
                   (sl == 5 && strncasecmp(s.p, "https", 5) == 0) ||
                   (sl == 2 && strncasecmp(s.p, "ws", 2) == 0) ||
                   (sl == 3 && strncasecmp(s.p, "wss", 3) == 0) ||
                   (sl == 3 && strncasecmp(s.p, "ftp", 3) == 0);
    i++;
    size_t ps;
    if (special) {
        while (i < s.n && (s.p[i] == '/' || s.p[i] == '\\'))
            i++;
        size_t hs = i;
        while (i < s.n && s.p[i] != '/' && s.p[i] != '\\' && s.p[i] != '?' && s.p[i] != '#')
            i++;
        if (i == hs)
            return false;
        ps = i;
    } else if (i + 1 < s.n && s.p[i] == '/' && s.p[i + 1] == '/') {
        i += 2;
        while (i < s.n && s.p[i] != '/' && s.p[i] != '?' && s.p[i] != '#')
            i++;
        ps = i;
    } else {
        ps = i;
    }
    size_t pe = ps;
    while (pe < s.n && s.p[pe] != '?' && s.p[pe] != '#')
        pe++;
    if (pe == ps && special)
        *path = (struct sv){"/", 1};
    else
        *path = (struct sv){s.p + ps, pe - ps};
    return true;
}

/* getUrl(): the full URL of an HTTP span, or "" */
static struct sv http_url(struct mapper *m, const struct aidx *x, char *buf, size_t cap)
{
    char sb[32];
    const lg_any_value *u = either(aget(x, S_URL_FULL), aget(x, S_HTTP_URL));
    if (u)
        return any_text(m, u, sb);
    const lg_any_value *scheme = either(aget(x, S_URL_SCHEME), aget(x, S_HTTP_SCHEME));
    const lg_any_value *target = truthy(aget(x, S_URL_PATH))    ? aget(x, S_URL_PATH)
                                 : truthy(aget(x, S_URL_QUERY)) ? aget(x, S_URL_QUERY)
                                                                : aget(x, S_HTTP_TARGET);
    if (!scheme || !truthy(target))
        return (struct sv){"", 0};
    char s1[32], s2[32], s3[32], s4[32];
    struct sv sc = any_text(m, scheme, s1);
    struct sv tg = any_text(m, target, s2);
    size_t o = 0;
    const lg_any_value *host = either(aget(x, S_SERVER_ADDRESS), aget(x, S_HTTP_HOST));
    struct sv parts[6];
    size_t np = 0;
    parts[np++] = sc;
    parts[np++] = (struct sv){"://", 3};
    if (host) {
        parts[np++] = any_text(m, host, s3);
    } else {
        const lg_any_value *port =
            truthy(aget(x, S_CLIENT_PORT)) ? aget(x, S_CLIENT_PORT)
            : truthy(aget(x, S_SERVER_PORT))
                ? aget(x, S_SERVER_PORT)
                : (truthy(aget(x, S_NET_PEER_PORT)) ? aget(x, S_NET_PEER_PORT) : NULL);
        if (!port)
            return (struct sv){"", 0};
        const lg_any_value *peer = either(aget(x, S_CLIENT_ADDRESS), aget(x, S_NET_PEER_NAME));
        if (!peer)
            peer = either(aget(x, S_NETWORK_PEER_ADDRESS), aget(x, S_NET_PEER_IP));
        if (!peer)
            return (struct sv){"", 0};
        parts[np++] = any_text(m, peer, s3);
        parts[np++] = (struct sv){":", 1};
        parts[np++] = any_text(m, port, s4);
    }
    parts[np++] = tg;
    for (size_t i = 0; i < np; i++) {
        size_t c = parts[i].n < cap - 1 - o ? parts[i].n : cap - 1 - o;
        memcpy(buf + o, parts[i].p, c);
        o += c;
    }
    buf[o] = 0;
    return (struct sv){buf, o};
}

/* getDependencyTarget() */
static const lg_any_value *dep_target(const struct aidx *x)
{
    const lg_any_value *v;
    if (truthy(v = aget(x, S_PEER_SERVICE)))
        return v;
    if ((v = either(aget(x, S_SERVER_ADDRESS), aget(x, S_HTTP_HOST))))
        return v;
    if ((v = either(aget(x, S_URL_FULL), aget(x, S_HTTP_URL))))
        return v;
    if ((v = either(aget(x, S_CLIENT_ADDRESS), aget(x, S_NET_PEER_NAME))))
        return v;
    return either(aget(x, S_NETWORK_PEER_ADDRESS), aget(x, S_NET_PEER_IP));
}

/* The official exporter drops a default port from a URL-shaped HTTP target
 * (/(https?)(:\/\/.*)(:\d+)(\S*)/): https…:443 and http…:80. */
static struct sv strip_default_port(struct sv t, char *buf, size_t cap)
{
    for (size_t i = 0; i + 7 <= t.n; i++) {
        if (strncmp(t.p + i, "http", 4) != 0)
            continue;
        bool https = i + 8 <= t.n && t.p[i + 4] == 's' && memcmp(t.p + i + 5, "://", 3) == 0;
        bool http = memcmp(t.p + i + 4, "://", 3) == 0;
        if (!https && !http)
            continue;
        size_t after = i + (https ? 8 : 7);
        /* rightmost ':' followed by a digit, at or after `after` (greedy .*), no newline */
        size_t p = 0;
        bool found = false;
        for (size_t j = after; j + 1 < t.n; j++) {
            if (t.p[j] == '\n')
                break;
            if (t.p[j] == ':' && t.p[j + 1] >= '0' && t.p[j + 1] <= '9') {
                p = j;
                found = true;
            }
        }
        if (!found)
            continue;
        size_t de = p + 1;
        while (de < t.n && t.p[de] >= '0' && t.p[de] <= '9')
            de++;
        size_t re = de;
        while (re < t.n && t.p[re] != ' ' && t.p[re] != '\t' && t.p[re] != '\n' &&
               t.p[re] != '\r' && t.p[re] != '\f' && t.p[re] != '\v')
            re++;
        size_t portlen = de - p;
        bool drop = (https && portlen == 4 && memcmp(t.p + p, ":443", 4) == 0) ||
                    (!https && portlen == 3 && memcmp(t.p + p, ":80", 3) == 0);
        if (!drop)
            return t;
        size_t a = p - i, bl = re - de;
        if (a + bl >= cap)
            return t;
        memcpy(buf, t.p + i, a);
        memcpy(buf + a, t.p + de, bl);
        buf[a + bl] = 0;
        return (struct sv){buf, a + bl};
    }
    return t;
}

static bool sv_eq(struct sv a, const char *lit)
{
    size_t n = strlen(lit);
    return a.n == n && memcmp(a.p, lit, n) == 0;
}

/* ------------------------------------------------------------------ spans ----------- */

struct spanctx {
    const lg_resource *res;
    const lg_scope *scope;
    const struct restags *rt;
};

static bool is_llm_span(struct mapper *m, const struct spanctx *c, const lg_span *s,
                        const struct aidx *x, struct lg_llm_call *call)
{
    memset(call, 0, sizeof *call);
    if (!x->genai_like && !x->oi_kind && !(s->name && strcmp(s->name, "llm_completion") == 0))
        return false;
    (void)m;
    return lg_llm_read(c->res, c->scope, s, call) == 1;
}

static void gmeasure_llm(struct mapper *m, const struct lg_llm_call *call)
{
    if (call->has_cost) {
        gk(m->g, "gen_ai.usage.cost");
        gnum(m->g, call->cost_usd);
    }
    struct {
        const char *k;
        int64_t v;
    } t[] = {
        {"gen_ai.usage.input_tokens", call->input_tokens},
        {"gen_ai.usage.output_tokens", call->output_tokens},
        {"gen_ai.usage.total_tokens", call->total_tokens},
        {"gen_ai.usage.cache_read.input_tokens", call->cache_read_tokens},
        {"gen_ai.usage.cache_creation.input_tokens", call->cache_write_tokens},
        {"gen_ai.usage.reasoning.output_tokens", call->reasoning_tokens},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].v >= 0 && (i < 3 || t[i].v > 0)) {
            gk(m->g, t[i].k);
            gint(m->g, (long long)t[i].v);
        }
}

static int map_span(struct mapper *m, const struct spanctx *c, const lg_span *s)
{
    struct aidx x;
    if (aidx_build(m, &x, s->attributes, s->n_attributes))
        return m->err;
    struct jw *g = m->g;
    char sb[32], sb2[32];
    int kind = s->kind;
    bool request = kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER ||
                   kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER;
    bool server = kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    /* OTLP's UNSPECIFIED is mapped as INTERNAL (the JS SDK has no such kind) */
    bool internal = kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL ||
                    kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_UNSPECIFIED;
    bool producer = kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER;
    bool has_parent = s->parent_span_id.len > 0;

    char trace_id[40], span_id[24], parent_id[24];
    hex(s->trace_id.data, s->trace_id.len > 16 ? 16 : s->trace_id.len, trace_id);
    hex(s->span_id.data, s->span_id.len > 8 ? 8 : s->span_id.len, span_id);
    hex(s->parent_span_id.data, s->parent_span_id.len > 8 ? 8 : s->parent_span_id.len, parent_id);

    const lg_any_value *method = either(aget(&x, S_HTTP_REQUEST_METHOD), aget(&x, S_HTTP_METHOD));
    const lg_any_value *dbsys = either(aget(&x, S_DB_SYSTEM_NAME), aget(&x, S_DB_SYSTEM));
    const lg_any_value *rpcsys = aget(&x, S_RPC_SYSTEM);
    const lg_any_value *status_attr =
        either(aget(&x, S_HTTP_RESPONSE_STATUS_CODE), aget(&x, S_HTTP_STATUS_CODE));
    bool is_db = !method && dbsys;
    bool is_db_dep = is_db && !request;
    int status = s->status ? (int)s->status->code : 0;

    double sample_rate = lg_azmon_sample_rate(aget(&x, S_MS_SAMPLE_RATE), s->trace_state);

    struct lg_llm_call call;
    bool llm = false;
    if (m->o->llm_measurements || !request)
        llm = is_llm_span(m, c, s, &x, &call);

    char timebuf[32];
    lg_azmon_iso_time(s->start_time_unix_nano, timebuf);

    /* ---- operation name (tags) ---- */
    struct sv opname = {NULL, 0};
    char opbuf[LIM_TAG_OPNAME + 16];
    if (server) {
        opname = sv_c(s->name ? s->name : "");
        if (method) {
            const lg_any_value *route = aget(&x, S_HTTP_ROUTE);
            struct sv ms = any_text(m, method, sb);
            char mcopy[64];
            size_t mn = ms.n < sizeof mcopy ? ms.n : sizeof mcopy;
            memcpy(mcopy, ms.p, mn);
            struct sv rest = {NULL, 0};
            if (truthy(route)) {
                rest = any_text(m, route, sb2);
            } else {
                const lg_any_value *u = either(aget(&x, S_URL_FULL), aget(&x, S_HTTP_URL));
                struct sv path;
                if (u && url_pathname(any_text(m, u, sb2), &path))
                    rest = path;
            }
            if (rest.p) {
                size_t o = 0;
                memcpy(opbuf, mcopy, mn);
                o = mn;
                opbuf[o++] = ' ';
                size_t rn = rest.n < sizeof opbuf - o ? rest.n : sizeof opbuf - o;
                memcpy(opbuf + o, rest.p, rn);
                o += rn;
                opname = (struct sv){opbuf, o};
            }
        }
    } else if (truthy(aget(&x, S_AI_OPERATION_NAME))) {
        opname = any_text(m, aget(&x, S_AI_OPERATION_NAME), sb);
        size_t on = opname.n < LIM_TAG_OPNAME + 15 ? opname.n : LIM_TAG_OPNAME + 15;
        memcpy(opbuf, opname.p, on);
        opname = (struct sv){opbuf, on};
    }

    env_begin(m,
              request ? "Microsoft.ApplicationInsights.Request"
                      : "Microsoft.ApplicationInsights.RemoteDependency",
              timebuf, sample_rate);
    GK(g, "tags");
    jw_map_open(g);
    tags_resource(m, c->rt);
    gtag_sv(m, "ai.operation.id", (struct sv){trace_id, strlen(trace_id)}, LIM_TAG_ID);
    if (has_parent)
        gtag_sv(m, "ai.operation.parentId", (struct sv){parent_id, strlen(parent_id)}, LIM_TAG_ID);
    if (truthy(aget(&x, S_ENDUSER_ID)))
        gtag_any(m, "ai.user.authUserId", aget(&x, S_ENDUSER_ID), LIM_TAG_OTHER);
    if (truthy(aget(&x, S_ENDUSER_PSEUDO_ID)))
        gtag_any(m, "ai.user.id", aget(&x, S_ENDUSER_PSEUDO_ID), LIM_TAG_ID);
    if (lg_any_str(aget(&x, S_SESSION_ID)))
        gtag_any(m, "ai.session.id", aget(&x, S_SESSION_ID), LIM_TAG_OTHER);
    const lg_any_value *ua = either(aget(&x, S_USER_AGENT_ORIGINAL), aget(&x, S_HTTP_USER_AGENT));
    if (ua)
        gtag_any(m, "ai.user.userAgent", ua, LIM_TAG_OTHER);
    if (truthy(aget(&x, S_SYNTHETIC_TYPE)))
        gtag_sv(m, "ai.operation.syntheticSource", sv_c("True"), LIM_TAG_OTHER);
    const lg_any_value *msip = aget(&x, S_MS_CLIENT_IP);
    if (truthy(msip))
        gtag_any(m, "ai.location.ip", msip, LIM_TAG_IP);
    else if (server) {
        const lg_any_value *ip = either(aget(&x, S_CLIENT_ADDRESS), aget(&x, S_HTTP_CLIENT_IP));
        if (!ip)
            ip = either(aget(&x, S_NETWORK_PEER_ADDRESS), aget(&x, S_NET_PEER_IP));
        if (ip)
            gtag_any(m, "ai.location.ip", ip, LIM_TAG_IP);
    }
    if (opname.p)
        gtag_sv(m, "ai.operation.name", opname, LIM_TAG_OPNAME);
    jw_map_close(g);

    GK(g, "data");
    jw_map_open(g);
    GK(g, "baseType");
    gk(g, request ? "RequestData" : "RemoteDependencyData");
    GK(g, "baseData");
    jw_map_open(g);
    GK(g, "ver");
    gint(g, 2);
    GK(g, "id");
    gsv_units(m, g, (struct sv){span_id, strlen(span_id)}, LIM_ID);

    char durbuf[48];
    lg_azmon_duration(s->end_time_unix_nano >= s->start_time_unix_nano
                          ? (int64_t)(s->end_time_unix_nano - s->start_time_unix_nano)
                          : 0,
                      durbuf);
    char urlbuf[LIM_URL * 4 + 64];
    const lg_any_value *az_ns = aget(&x, S_AZ_NAMESPACE);
    const char *az_ns_s = lg_any_str(az_ns);
    bool eventhub = az_ns_s && strcmp(az_ns_s, "Microsoft.EventHub") == 0;
    char ehbuf[1200];
    struct sv eh_peer = {NULL, 0};
    if (eventhub) {
        const lg_any_value *pa = truthy(aget(&x, S_NET_PEER_NAME)) ? aget(&x, S_NET_PEER_NAME)
                                                                   : aget(&x, S_PEER_ADDRESS);
        const char *pas = truthy(pa) ? lg_any_str(pa) : NULL;
        const lg_any_value *dst = aget(&x, S_MESSAGE_BUS_DESTINATION);
        const char *ds = truthy(dst) ? lg_any_str(dst) : NULL;
        if (!pas)
            pas = "unknown";
        size_t pl = strlen(pas);
        while (pl > 0 && pas[pl - 1] == '/')
            pl--;
        int l = snprintf(ehbuf, sizeof ehbuf, "%.*s/%s", (int)pl, pas, ds ? ds : "unknown");
        eh_peer = (struct sv){ehbuf, l < 0                      ? 0
                                     : (size_t)l < sizeof ehbuf ? (size_t)l
                                                                : sizeof ehbuf - 1};
    }

    if (request) {
        GK(g, "name");
        if (opname.p)
            gsv_units(m, g, opname, LIM_NAME);
        else /* CONSUMER: the official exporter leaves the name out; we keep the span name */
            gsv_units(m, g, sv_c(s->name ? s->name : ""), LIM_NAME);
        GK(g, "duration");
        gk(g, durbuf);
        GK(g, "success");
        if (status != 0)
            jw_bool(g, status == 1);
        else {
            double code = 0;
            if (status_attr && !lg_any_double(status_attr, &code))
                code = 0;
            jw_bool(g, !(code >= 400));
        }
        GK(g, "responseCode");
        const lg_any_value *grpc = aget(&x, S_RPC_GRPC_STATUS_CODE);
        if (method && status_attr)
            gsv_units(m, g, any_text(m, status_attr, sb), LIM_RESULT);
        else if (!method && truthy(grpc))
            gsv_units(m, g, any_text(m, grpc, sb), LIM_RESULT);
        else
            GK(g, "0");
        if (eventhub &&
            kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER) {
            GK(g, "source");
            gsv(m, g, eh_peer);
        }
        if (method) {
            GK(g, "url");
            gsv_units(m, g, http_url(m, &x, urlbuf, sizeof urlbuf), LIM_URL);
        }
    } else {
        struct sv name = sv_c(s->name ? s->name : "");
        char namebuf[LIM_NAME + 80];
        struct sv type = sv_c(producer                   ? "Queue Message"
                              : (internal && has_parent) ? "InProc"
                                                         : "Dependency");
        char typebuf[LIM_TYPE + 32];
        struct sv result = {"0", 1};
        struct sv data = {NULL, 0};
        struct sv target = {NULL, 0};
        char tgtbuf[LIM_TARGET * 4 + 64];
        char resbuf[64];
        if (method) {
            const lg_any_value *u = either(aget(&x, S_URL_FULL), aget(&x, S_HTTP_URL));
            struct sv path;
            if (u && url_pathname(any_text(m, u, sb), &path)) {
                struct sv ms = any_text(m, method, sb2);
                int l = snprintf(namebuf, sizeof namebuf, "%.*s %.*s", (int)(ms.n > 64 ? 64 : ms.n),
                                 ms.p, (int)(path.n > LIM_NAME ? LIM_NAME : path.n), path.p);
                name = (struct sv){namebuf, l < 0                        ? 0
                                            : (size_t)l < sizeof namebuf ? (size_t)l
                                                                         : sizeof namebuf - 1};
            }
            type = sv_c("Http");
            data = http_url(m, &x, urlbuf, sizeof urlbuf);
            if (truthy(status_attr)) {
                struct sv r = any_text(m, status_attr, sb);
                size_t rn = r.n < sizeof resbuf ? r.n : sizeof resbuf;
                memcpy(resbuf, r.p, rn);
                result = (struct sv){resbuf, rn};
            }
            const lg_any_value *t = dep_target(&x);
            if (t) {
                struct sv tv = any_text(m, t, sb);
                size_t tn = tv.n < sizeof tgtbuf / 2 ? tv.n : sizeof tgtbuf / 2;
                memcpy(tgtbuf + sizeof tgtbuf / 2, tv.p, tn);
                target = strip_default_port((struct sv){tgtbuf + sizeof tgtbuf / 2, tn}, tgtbuf,
                                            sizeof tgtbuf / 2);
            }
        } else if (dbsys) {
            char dbuf[256];
            struct sv d0 = any_text(m, dbsys, sb);
            size_t dn = d0.n < sizeof dbuf ? d0.n : sizeof dbuf;
            memcpy(dbuf, d0.p, dn);
            struct sv d = {dbuf, dn};
            static const char *const sqldb[] = {"db2",    "derby",     "mariadb", "mssql", "oracle",
                                                "sqlite", "other_sql", "hsqldb",  "h2"};
            size_t tn = d.n < LIM_TYPE ? d.n : LIM_TYPE;
            memcpy(typebuf, d.p, tn);
            type = (struct sv){typebuf, tn};
            for (size_t i = 0; i < sizeof sqldb / sizeof sqldb[0]; i++)
                if (sv_eq(d, sqldb[i]))
                    type = sv_c("SQL");
            const lg_any_value *stmt = either(aget(&x, S_DB_QUERY_TEXT), aget(&x, S_DB_STATEMENT));
            const lg_any_value *op =
                either(aget(&x, S_DB_OPERATION_NAME), aget(&x, S_DB_OPERATION));
            const lg_any_value *dv = stmt ? stmt : op;
            if (dv && lg_any_str(dv)) {
                data = sv_c(lg_any_str(dv));
            } else if (dv) { /* not a string: copy the text before g2 / sb2 are reused */
                struct sv t = any_text(m, dv, sb2);
                size_t cn = lg_azmon_cut_bytes(t.p, t.n, sizeof urlbuf - 1);
                memcpy(urlbuf, t.p, cn);
                data = (struct sv){urlbuf, cn};
            }
            const lg_any_value *t = dep_target(&x);
            const lg_any_value *dbn = either(aget(&x, S_DB_NAMESPACE), aget(&x, S_DB_NAME));
            char s3[32], s4[32];
            size_t o = 0, cap = sizeof tgtbuf - 1;
            if (t) {
                struct sv tv = any_text(m, t, s3);
                size_t c1 = tv.n < cap / 2 ? tv.n : cap / 2;
                memcpy(tgtbuf, tv.p, c1);
                o = c1;
                if (dbn) {
                    tgtbuf[o++] = '|';
                    struct sv nv = any_text(m, dbn, s4);
                    size_t nn = nv.n < cap - o ? nv.n : cap - o;
                    memcpy(tgtbuf + o, nv.p, nn);
                    o += nn;
                }
            } else {
                struct sv nv = dbn ? any_text(m, dbn, s4) : d;
                size_t nn = nv.n < cap ? nv.n : cap;
                memcpy(tgtbuf, nv.p, nn);
                o = nn;
            }
            target = (struct sv){tgtbuf, o};
        } else if (rpcsys) {
            char s3[32];
            struct sv r = any_text(m, rpcsys, s3);
            type = sv_eq(r, "WCF Service") ? sv_c("WCF Service") : sv_c("GRPC");
            const lg_any_value *grpc = aget(&x, S_RPC_GRPC_STATUS_CODE);
            if (truthy(grpc)) {
                struct sv rv = any_text(m, grpc, sb);
                size_t rn = rv.n < sizeof resbuf ? rv.n : sizeof resbuf;
                memcpy(resbuf, rv.p, rn);
                result = (struct sv){resbuf, rn};
            }
            const lg_any_value *t = dep_target(&x);
            struct sv tv = t ? any_text(m, t, sb2) : r;
            size_t tn = tv.n < sizeof tgtbuf - 1 ? tv.n : sizeof tgtbuf - 1;
            memcpy(tgtbuf, tv.p, tn);
            target = (struct sv){tgtbuf, tn};
        } else if (llm && !producer && call.provider && call.provider[0]) {
            /* GenAI call: the provider is the dependency type (as the .NET exporter and
             * REFERENCE §6 do; the JS exporter leaves "Dependency" / "InProc") */
            type = sv_c(call.provider);
        }
        if (az_ns_s) {
            if (internal) {
                int l = snprintf(typebuf, sizeof typebuf, "InProc | %s", az_ns_s);
                type = (struct sv){typebuf, l < 0                        ? 0
                                            : (size_t)l < sizeof typebuf ? (size_t)l
                                                                         : sizeof typebuf - 1};
            }
            if (eventhub &&
                kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT) {
                type = sv_c(az_ns_s);
                target = eh_peer;
            } else if (eventhub && producer) {
                int l = snprintf(typebuf, sizeof typebuf, "Queue Message | %s", az_ns_s);
                type = (struct sv){typebuf, l < 0                        ? 0
                                            : (size_t)l < sizeof typebuf ? (size_t)l
                                                                         : sizeof typebuf - 1};
                target = eh_peer;
            }
        }
        GK(g, "name");
        gsv_units(m, g, name, LIM_NAME);
        GK(g, "resultCode");
        gsv_units(m, g, result, LIM_RESULT);
        if (data.p) {
            GK(g, "data");
            gsv_units(m, g, data, LIM_DATA);
        }
        GK(g, "type");
        gsv_units(m, g, type, LIM_TYPE);
        if (target.p) {
            GK(g, "target");
            gsv_units(m, g, target, LIM_TARGET);
        }
        GK(g, "duration");
        gk(g, durbuf);
        GK(g, "success");
        jw_bool(g, status != 2);
    }

    /* ---- properties ---- */
    GK(g, "properties");
    jw_map_open(g);
    for (size_t i = 0; i < x.n; i++) {
        if (!x.kv[i] || !is_prop(&x, i, is_db, is_db_dep))
            continue;
        gprop_anyn(m, (struct sv){x.kv[i]->key ? x.kv[i]->key : "", x.klen[i]}, x.kv[i]->value);
    }
    if (s->n_links > 0) {
        struct jw *g2 = m->g2;
        g2->len = 0;
        jw_reset(g2);
        jw_array_open(g2);
        for (size_t i = 0; i < s->n_links; i++) {
            const lg_span_link *l = s->links[i];
            char t[40], sp[24];
            hex(l->trace_id.data, l->trace_id.len > 16 ? 16 : l->trace_id.len, t);
            hex(l->span_id.data, l->span_id.len > 8 ? 8 : l->span_id.len, sp);
            jw_map_open(g2);
            GK(g2, "operation_Id");
            gk(g2, t);
            GK(g2, "id");
            gk(g2, sp);
            jw_map_close(g2);
        }
        jw_array_close(g2);
        gprop(m, sv_c("_MS.links"), (struct sv){g2->buf ? g2->buf : "", g2->len});
    }
    jw_map_close(g);
    GK(g, "measurements");
    jw_map_open(g);
    gmeasure_custom(m, aget(&x, S_MS_CUSTOM_MEASUREMENTS), false);
    if (eventhub && kind == OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER) {
        /* timeSinceEnqueued: mean of start - link attribute enqueuedTime (ms) */
        double sum = 0;
        int cnt = 0;
        double start_ms = (double)(s->start_time_unix_nano / 1000000000u) * 1e3 +
                          (double)(s->start_time_unix_nano % 1000000000u) / 1e6;
        for (size_t i = 0; i < s->n_links; i++) {
            const lg_any_value *et =
                lg_attr_find(s->links[i]->attributes, s->links[i]->n_attributes, "enqueuedTime");
            double d = 0;
            if (truthy(et)) {
                cnt++;
                if (!lg_any_double(et, &d))
                    d = 0;
                sum += start_ms - d;
            }
        }
        double v = sum / (cnt ? cnt : 1);
        GK(g, "timeSinceEnqueued");
        gnum(g, v > 0 ? v : 0);
    }
    if (llm && m->o->llm_measurements)
        gmeasure_llm(m, &call);
    jw_map_close(g);
    jw_map_close(g); /* baseData */
    jw_map_close(g); /* data */
    if (env_end(m))
        return m->err;

    /* ---- events ---- */
    for (size_t ei = 0; ei < s->n_events; ei++) {
        const lg_span_event *ev = s->events[ei];
        struct aidx ex;
        if (aidx_build(m, &ex, ev->attributes, ev->n_attributes))
            return m->err;
        bool exc = ev->name && strcmp(ev->name, "exception") == 0;
        lg_azmon_iso_time(ev->time_unix_nano, timebuf);
        env_begin(m,
                  exc ? "Microsoft.ApplicationInsights.Exception"
                      : "Microsoft.ApplicationInsights.Message",
                  timebuf, sample_rate);
        GK(g, "tags");
        jw_map_open(g);
        tags_resource(m, c->rt);
        gtag_sv(m, "ai.operation.id", (struct sv){trace_id, strlen(trace_id)}, LIM_TAG_ID);
        if (s->span_id.len)
            gtag_sv(m, "ai.operation.parentId", (struct sv){span_id, strlen(span_id)}, LIM_TAG_ID);
        const lg_any_value *sess =
            lg_any_str(aget(&ex, S_SESSION_ID)) ? aget(&ex, S_SESSION_ID) : aget(&x, S_SESSION_ID);
        if (lg_any_str(sess))
            gtag_any(m, "ai.session.id", sess, LIM_TAG_OTHER);
        jw_map_close(g);
        GK(g, "data");
        jw_map_open(g);
        GK(g, "baseType");
        gk(g, exc ? "ExceptionData" : "MessageData");
        GK(g, "baseData");
        jw_map_open(g);
        GK(g, "ver");
        gint(g, 2);
        if (exc) {
            GK(g, "exceptions");
            jw_array_open(g);
            jw_map_open(g);
            const lg_any_value *et = aget(&ex, S_EXC_TYPE), *em = aget(&ex, S_EXC_MESSAGE),
                               *es = aget(&ex, S_EXC_STACKTRACE);
            GK(g, "typeName");
            gsv_units(m, g, et ? any_text(m, et, sb) : (struct sv){"", 0}, LIM_MESSAGE);
            GK(g, "message");
            gsv_units(m, g, truthy(em) ? any_text(m, em, sb) : sv_c("Exception"), LIM_MESSAGE);
            struct sv st = es ? any_text(m, es, sb) : (struct sv){"", 0};
            GK(g, "hasFullStack");
            jw_bool(g, st.n > 0);
            GK(g, "stack");
            gsv_units(m, g, st, LIM_MESSAGE);
            jw_map_close(g);
            jw_array_close(g);
        } else {
            GK(g, "message");
            gsv_units(m, g, sv_c(ev->name ? ev->name : ""), LIM_MESSAGE);
        }
        GK(g, "properties");
        jw_map_open(g);
        for (size_t i = 0; i < ex.n; i++)
            if (ex.kv[i] && is_prop(&ex, i, false, false))
                gprop_anyn(m, (struct sv){ex.kv[i]->key ? ex.kv[i]->key : "", ex.klen[i]},
                           ex.kv[i]->value);
        jw_map_close(g);
        gmeasure_custom(m, aget(&ex, S_MS_CUSTOM_MEASUREMENTS), true);
        jw_map_close(g);
        jw_map_close(g);
        if (env_end(m))
            return m->err;
    }
    return LG_OK;
}

/* The `_OTELRESOURCE_` metric: the resource's attributes as properties (what Application
 * Insights shows as the OpenTelemetry resource), once per resource in the batch. */
static int map_resource_metric(struct mapper *m, const lg_resource *r, const struct restags *rt)
{
    if (!r || r->n_attributes == 0 || m->o->no_resource_metric)
        return LG_OK;
    size_t kept = 0;
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key ? r->attributes[i]->key : "";
        if (strncmp(k, "_MS.", 4) == 0 || strcmp(k, "telemetry.sdk.version") == 0 ||
            strcmp(k, "telemetry.sdk.language") == 0 || strcmp(k, "telemetry.sdk.name") == 0)
            continue;
        kept++;
    }
    if (!kept)
        return LG_OK;
    char timebuf[32];
    iso_ms(m->now_ms, timebuf);
    struct jw *g = m->g;
    env_begin(m, "Microsoft.ApplicationInsights.Metric", timebuf, 100);
    GK(g, "tags");
    jw_map_open(g);
    tags_resource(m, rt);
    jw_map_close(g);
    GK(g, "data");
    jw_map_open(g);
    GK(g, "baseType");
    GK(g, "MetricData");
    GK(g, "baseData");
    jw_map_open(g);
    GK(g, "ver");
    gint(g, 2);
    GK(g, "metrics");
    jw_array_open(g);
    jw_map_open(g);
    GK(g, "name");
    GK(g, "_OTELRESOURCE_");
    GK(g, "value");
    gint(g, 1);
    jw_map_close(g);
    jw_array_close(g);
    GK(g, "properties");
    jw_map_open(g);
    for (size_t i = 0; i < r->n_attributes; i++) {
        const char *k = r->attributes[i]->key ? r->attributes[i]->key : "";
        if (strncmp(k, "_MS.", 4) == 0 || strcmp(k, "telemetry.sdk.version") == 0 ||
            strcmp(k, "telemetry.sdk.language") == 0 || strcmp(k, "telemetry.sdk.name") == 0)
            continue;
        gprop_any(m, k, r->attributes[i]->value);
    }
    jw_map_close(g);
    jw_map_close(g);
    jw_map_close(g);
    return env_end(m);
}

static int map_traces(struct mapper *m, const lg_traces_req *req)
{
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const lg_resource_spans *rs = req->resource_spans[i];
        struct restags rt;
        restags_read(m, rs->resource, &rt);
        size_t nspans = 0;
        for (size_t j = 0; j < rs->n_scope_spans; j++)
            nspans += rs->scope_spans[j]->n_spans;
        if (nspans && map_resource_metric(m, rs->resource, &rt))
            return m->err;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const lg_scope_spans *ss = rs->scope_spans[j];
            struct spanctx c = {rs->resource, ss->scope, &rt};
            for (size_t k = 0; k < ss->n_spans; k++) {
                /* The queued batch is cold and each level of a span (span -> attribute
                 * array -> key/value structs -> bytes) is a dependent miss: fetch one
                 * level per span ahead, so that by the time span k is mapped its
                 * attributes are on their way and the misses of several spans overlap. */
                if (k + 4 < ss->n_spans) {
                    const char *sp = (const char *)ss->spans[k + 4];
                    __builtin_prefetch(sp);
                    __builtin_prefetch(sp + 64);
                    __builtin_prefetch(sp + 128);
                }
                if (k + 3 < ss->n_spans)
                    __builtin_prefetch(ss->spans[k + 3]->attributes);
                if (k + 2 < ss->n_spans) {
                    const lg_span *s2 = ss->spans[k + 2];
                    for (size_t a = 0; a < s2->n_attributes; a++)
                        __builtin_prefetch(s2->attributes[a]);
                }
                if (k + 1 < ss->n_spans) {
                    const lg_span *s1 = ss->spans[k + 1];
                    for (size_t a = 0; a < s1->n_attributes; a++) {
                        const lg_kv *kv = s1->attributes[a];
                        if (kv) {
                            __builtin_prefetch(kv->key);
                            __builtin_prefetch(kv->value);
                        }
                    }
                }
                if (map_span(m, &c, ss->spans[k]))
                    return m->err;
            }
        }
    }
    return LG_OK;
}

/* ------------------------------------------------------------------ metrics --------- */

static int map_metric_point(struct mapper *m, const struct restags *rt, const lg_metric *mt,
                            lg_kv *const *attrs, size_t nattrs, uint64_t t_ns, double value,
                            bool has_count, uint64_t count, bool has_min, double min, bool has_max,
                            double max)
{
    struct jw *g = m->g;
    char timebuf[32];
    if (t_ns)
        lg_azmon_iso_time(t_ns, timebuf);
    else
        iso_ms(m->now_ms, timebuf);
    env_begin(m, "Microsoft.ApplicationInsights.Metric", timebuf, 100);
    GK(g, "tags");
    jw_map_open(g);
    tags_resource(m, rt);
    jw_map_close(g);
    GK(g, "data");
    jw_map_open(g);
    GK(g, "baseType");
    GK(g, "MetricData");
    GK(g, "baseData");
    jw_map_open(g);
    GK(g, "ver");
    gint(g, 2);
    GK(g, "metrics");
    jw_array_open(g);
    jw_map_open(g);
    GK(g, "name");
    gsv_units(m, g, sv_c(mt->name ? mt->name : ""), LIM_NAME);
    GK(g, "kind");
    GK(g, "Aggregation");
    GK(g, "value");
    gnum(g, value);
    if (has_count) {
        GK(g, "count");
        gint(g, (long long)count);
    }
    if (has_min) {
        GK(g, "min");
        gnum(g, min);
    }
    if (has_max) {
        GK(g, "max");
        gnum(g, max);
    }
    jw_map_close(g);
    jw_array_close(g);
    GK(g, "properties");
    jw_map_open(g);
    for (size_t i = 0; i < nattrs; i++)
        if (attrs[i])
            gprop_any(m, attrs[i]->key ? attrs[i]->key : "", attrs[i]->value);
    jw_map_close(g);
    jw_map_close(g);
    jw_map_close(g);
    return env_end(m);
}

static double num_dp_value(const lg_number_dp *dp)
{
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        return (double)dp->as_int;
    return dp->as_double;
}

static int map_metrics(struct mapper *m, const lg_metrics_req *req)
{
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        const lg_resource_metrics *rm = req->resource_metrics[i];
        struct restags rt;
        restags_read(m, rm->resource, &rt);
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const lg_scope_metrics *sm = rm->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                const lg_metric *mt = sm->metrics[k];
                switch (mt->data_case) {
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
                    lg_number_dp **dps;
                    size_t n;
                    if (mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE) {
                        dps = mt->gauge ? mt->gauge->data_points : NULL;
                        n = mt->gauge ? mt->gauge->n_data_points : 0;
                    } else {
                        dps = mt->sum ? mt->sum->data_points : NULL;
                        n = mt->sum ? mt->sum->n_data_points : 0;
                    }
                    for (size_t d = 0; d < n; d++)
                        if (map_metric_point(m, &rt, mt, dps[d]->attributes, dps[d]->n_attributes,
                                             dps[d]->time_unix_nano, num_dp_value(dps[d]), true, 1,
                                             false, 0, false, 0))
                            return m->err;
                    break;
                }
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
                    for (size_t d = 0; mt->histogram && d < mt->histogram->n_data_points; d++) {
                        const lg_histogram_dp *dp = mt->histogram->data_points[d];
                        if (map_metric_point(m, &rt, mt, dp->attributes, dp->n_attributes,
                                             dp->time_unix_nano, dp->_sum_case ? dp->sum : 0, true,
                                             dp->count, dp->_min_case != 0, dp->min,
                                             dp->_max_case != 0, dp->max))
                            return m->err;
                    }
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
                    for (size_t d = 0;
                         mt->exponential_histogram && d < mt->exponential_histogram->n_data_points;
                         d++) {
                        const lg_exp_histogram_dp *dp = mt->exponential_histogram->data_points[d];
                        if (map_metric_point(m, &rt, mt, dp->attributes, dp->n_attributes,
                                             dp->time_unix_nano, dp->_sum_case ? dp->sum : 0, true,
                                             dp->count, dp->_min_case != 0, dp->min,
                                             dp->_max_case != 0, dp->max))
                            return m->err;
                    }
                    break;
                case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
                    for (size_t d = 0; mt->summary && d < mt->summary->n_data_points; d++) {
                        const lg_summary_dp *dp = mt->summary->data_points[d];
                        if (map_metric_point(m, &rt, mt, dp->attributes, dp->n_attributes,
                                             dp->time_unix_nano, dp->sum, true, dp->count, false, 0,
                                             false, 0))
                            return m->err;
                    }
                    break;
                default: break;
                }
            }
        }
    }
    return LG_OK;
}

/* -------------------------------------------------------------------- logs ---------- */

static const char *severity_level(int sev)
{
    if (sev > 0 && sev < 9)
        return "Verbose";
    if (sev >= 9 && sev < 13)
        return "Information";
    if (sev >= 13 && sev < 17)
        return "Warning";
    if (sev >= 17 && sev < 21)
        return "Error";
    if (sev >= 21 && sev < 25)
        return "Critical";
    return NULL;
}

static bool is_log_prop(const struct aidx *x, size_t i)
{
    const char *k = x->kv[i]->key ? x->kv[i]->key : "";
    unsigned fl = x->flags[i];
    if (fl & (X_ALWAYS | X_HTTPSEM | X_DBADDR))
        return false;
    if (strncmp(k, "_MS.", 4) == 0 || strncmp(k, "microsoft", 9) == 0)
        return false;
    return true;
}

static int map_log(struct mapper *m, const struct restags *rt, const lg_log_record *lr)
{
    struct aidx x;
    if (aidx_build(m, &x, lr->attributes, lr->n_attributes))
        return m->err;
    struct jw *g = m->g;
    char sb[32];
    char timebuf[32];
    uint64_t t = lr->time_unix_nano ? lr->time_unix_nano : lr->observed_time_unix_nano;
    if (t)
        lg_azmon_iso_time(t, timebuf);
    else
        iso_ms(m->now_ms, timebuf);
    const lg_any_value *et = aget(&x, S_EXC_TYPE), *es = aget(&x, S_EXC_STACKTRACE);
    bool exc = truthy(et) && truthy(es);
    const lg_any_value *evname = aget(&x, S_MS_CUSTOM_EVENT_NAME);
    bool event = !exc && truthy(evname);
    const char *sev = severity_level((int)lr->severity_number);

    env_begin(m,
              exc     ? "Microsoft.ApplicationInsights.Exception"
              : event ? "Microsoft.ApplicationInsights.Event"
                      : "Microsoft.ApplicationInsights.Message",
              timebuf, 100);
    GK(g, "tags");
    jw_map_open(g);
    tags_resource(m, rt);
    char id[40];
    if (lr->trace_id.len) {
        hex(lr->trace_id.data, lr->trace_id.len > 16 ? 16 : lr->trace_id.len, id);
        gtag_sv(m, "ai.operation.id", sv_c(id), LIM_TAG_ID);
    }
    if (lr->span_id.len) {
        hex(lr->span_id.data, lr->span_id.len > 8 ? 8 : lr->span_id.len, id);
        gtag_sv(m, "ai.operation.parentId", sv_c(id), LIM_TAG_ID);
    }
    if (truthy(aget(&x, S_AI_OPERATION_NAME)))
        gtag_any(m, "ai.operation.name", aget(&x, S_AI_OPERATION_NAME), LIM_TAG_OPNAME);
    if (truthy(aget(&x, S_SYNTHETIC_TYPE)))
        gtag_sv(m, "ai.operation.syntheticSource", sv_c("True"), LIM_TAG_OTHER);
    if (truthy(aget(&x, S_MS_CLIENT_IP)))
        gtag_any(m, "ai.location.ip", aget(&x, S_MS_CLIENT_IP), LIM_TAG_IP);
    if (truthy(aget(&x, S_ENDUSER_ID)))
        gtag_any(m, "ai.user.authUserId", aget(&x, S_ENDUSER_ID), LIM_TAG_OTHER);
    if (truthy(aget(&x, S_ENDUSER_PSEUDO_ID)))
        gtag_any(m, "ai.user.id", aget(&x, S_ENDUSER_PSEUDO_ID), LIM_TAG_ID);
    if (lg_any_str(aget(&x, S_SESSION_ID)))
        gtag_any(m, "ai.session.id", aget(&x, S_SESSION_ID), LIM_TAG_OTHER);
    jw_map_close(g);

    GK(g, "data");
    jw_map_open(g);
    GK(g, "baseType");
    gk(g, exc ? "ExceptionData" : event ? "EventData" : "MessageData");
    GK(g, "baseData");
    jw_map_open(g);
    GK(g, "ver");
    gint(g, 2);
    if (exc) {
        const lg_any_value *em = aget(&x, S_EXC_MESSAGE);
        GK(g, "exceptions");
        jw_array_open(g);
        jw_map_open(g);
        GK(g, "typeName");
        gsv_units(m, g, any_text(m, et, sb), LIM_MESSAGE);
        GK(g, "message");
        gsv_units(m, g, em ? any_text(m, em, sb) : sv_c("Exception"), LIM_MESSAGE);
        GK(g, "hasFullStack");
        jw_bool(g, 1);
        GK(g, "stack");
        gsv_units(m, g, any_text(m, es, sb), LIM_MESSAGE);
        jw_map_close(g);
        jw_array_close(g);
        if (sev) {
            GK(g, "severityLevel");
            gk(g, sev);
        }
    } else if (event) {
        GK(g, "name");
        gsv_units(m, g, any_text(m, evname, sb), LIM_EVENT_NAME);
    } else {
        struct sv msg = {NULL, 0};
        if (any_set(lr->body))
            msg = any_text(m, lr->body, sb);
        GK(g, "message");
        gsv_units(m, g, msg.n ? msg : sv_c("n/a"), LIM_MESSAGE);
        if (sev) {
            GK(g, "severityLevel");
            gk(g, sev);
        }
    }
    GK(g, "properties");
    jw_map_open(g);
    for (size_t i = 0; i < x.n; i++)
        if (x.kv[i] && is_log_prop(&x, i))
            gprop_any(m, x.kv[i]->key ? x.kv[i]->key : "", x.kv[i]->value);
    jw_map_close(g);
    GK(g, "measurements");
    jw_map_open(g);
    gmeasure_custom(m, aget(&x, S_MS_CUSTOM_MEASUREMENTS), false);
    jw_map_close(g);
    jw_map_close(g);
    jw_map_close(g);
    return env_end(m);
}

static int map_logs(struct mapper *m, const lg_logs_req *req)
{
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const lg_resource_logs *rl = req->resource_logs[i];
        struct restags rt;
        restags_read(m, rl->resource, &rt);
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const lg_scope_logs *sl = rl->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++)
                if (map_log(m, &rt, sl->log_records[k]))
                    return m->err;
        }
    }
    return LG_OK;
}

/* ------------------------------------------------------------------- entry ---------- */

int lg_azmon_map_batch(const struct lg_batch *b, const struct lg_azmon_map_opts *o,
                       struct lg_azmon_items *out)
{
    if (!b || !b->req.msg)
        return LG_OK;
    pthread_once(&keytab_once, keytab_build);
    struct mapper m = {.o = o, .out = out};
    /* the envelope writer appends to the items buffer, handed back at the end */
    struct jw ge = {.buf = out->buf, .len = out->len, .cap = out->cap, .err = &m.err};
    struct jw g2 = {.err = &m.err};
    m.g = &ge;
    m.g2 = &g2;
    m.rtags.err = &m.err;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int rc = ikey_frag_make(&m);
    switch (rc ? -1 : (int)b->signal) {
    case LG_SIGNAL_TRACES: rc = map_traces(&m, b->req.traces); break;
    case LG_SIGNAL_METRICS: rc = map_metrics(&m, b->req.metrics); break;
    case LG_SIGNAL_LOGS: rc = map_logs(&m, b->req.logs); break;
    default: break; /* rc: LG_OK, or ikey_frag_make's error */
    }
    if (!rc && m.err)
        rc = m.err;
    if (m.env_open)
        ge.len = m.env_off; /* an envelope left unfinished by an error */
    out->buf = ge.buf;
    out->len = ge.len;
    out->cap = ge.cap;
    free(g2.buf);
    free(m.rtags.buf);
    free(m.tmp);
    free(m.flags);
    free(m.klens);
    free(m.ikey_frag);
    return rc;
}

void lg_azmon_items_free(struct lg_azmon_items *items)
{
    free(items->buf);
    free(items->v);
    memset(items, 0, sizeof *items);
}

void lg_azmon_items_reset(struct lg_azmon_items *items, size_t keep_max)
{
    if (items->cap + items->vcap * sizeof *items->v > keep_max) {
        lg_azmon_items_free(items);
        return;
    }
    items->len = items->n = 0;
}

int lg_azmon_items_add(struct lg_azmon_items *items, const char *json, size_t len)
{
    size_t need = items->len + len + (items->len == 0 ? 2 : 1);
    if (need > items->cap) {
        size_t cap = items->cap ? items->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *b = realloc(items->buf, cap);
        if (!b)
            return LG_ENOMEM;
        items->buf = b;
        items->cap = cap;
    }
    if (items->n == items->vcap) {
        size_t cap = items->vcap ? items->vcap * 2 : 64;
        struct lg_azmon_item *v = realloc(items->v, cap * sizeof *v);
        if (!v)
            return LG_ENOMEM;
        items->v = v;
        items->vcap = cap;
    }
    if (items->len == 0)
        items->buf[items->len++] = ',';
    memcpy(items->buf + items->len, json, len);
    items->v[items->n].off = items->len;
    items->v[items->n].len = len;
    items->n++;
    items->len += len;
    items->buf[items->len++] = ',';
    return LG_OK;
}

void lg_azmon_items_keep(struct lg_azmon_items *items, const unsigned char *keep)
{
    size_t kept = 0, o = 1; /* after the leading separator */
    for (size_t i = 0; i < items->n; i++) {
        if (!keep[i])
            continue;
        struct lg_azmon_item e = items->v[i];
        if (e.off != o)
            memmove(items->buf + o, items->buf + e.off, e.len + 1); /* with its separator */
        items->v[kept].off = o;
        items->v[kept].len = e.len;
        kept++;
        o += e.len + 1;
    }
    items->n = kept;
    items->len = kept ? o : 0;
}
