/* exporters/azure_monitor.c — the `azure_monitor` exporter's transport half: config, the
 * Application Insights connection string (REFERENCE §6), Entra ID (exporters/azure_auth.c),
 * and delivery of the envelopes exporters/azure_monitor_map.c makes: POST {base}/v2.1/track
 * with a gzip'd JSON array, behind the shared exporter helper (queue, consumer threads,
 * retry with backoff, persistent queue).
 *
 * A batch is mapped once; its envelopes go out in requests of at most `maxbatchsize`, one
 * after the other. Outcome of a request (REFERENCE §6):
 *   200                 every envelope sent was accepted
 *   206                 per-item errors: items with a retriable statusCode (206, 401, 403,
 *                       408, 429, 439, 500, 502, 503, 504) are kept and resent — only
 *                       they — on the helper's next attempt; "Telemetry sampled out." and
 *                       every other code are permanent and counted; the rest was accepted
 *   408, 429, 439, 500, 502, 503, 504   retryable, honouring Retry-After (seconds or date)
 *   401, 403            with Entra ID: the token is dropped, a new one fetched, the request
 *                       sent again at once (then retryable); without: permanent, loud error
 *   307, 308            Location followed (up to MAX_REDIRECTS per attempt) and kept as the
 *                       track URL for later requests
 *   other status        permanent (400 included) and counted; the attempt goes on
 *   no response         retryable (connection refused/reset, timeout, TLS handshake)
 * A retryable answer (or none) ends the attempt: what was accepted leaves the batch, the
 * rest waits for the helper's next attempt.
 * A batch is reported delivered only when every one of its envelopes was accepted or
 * refused permanently (the latter counted as rejected items).
 *
 * Why not the curl multi interface: the exporter helper runs send() blocking on
 * num_consumers threads, each with its own attempt deadline. A multi handle would need its
 * own event thread plus a hand-off per request, for no gain in throughput: each consumer
 * keeps a warm easy handle (pool as in otlp_http.c), so connections and TLS sessions are
 * reused, and HTTP/2 is negotiated over TLS when the server offers it.
 *
 * Owns: the track URL (replaced after a redirect), the easy-handle pool, one pending slot
 * per consumer thread (the envelopes of the batch it is delivering that are not yet
 * accepted, so a retry after a 206 resends only those), the Entra ID token source, the
 * helper, and the envelope-level counters (llmgate_azure_monitor_*). */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <isa-l/igzip_lib.h>

#include "../core/component.h"
#include "../core/compress.h"
#include "../core/exporter_helper.h"
#include "../core/http_util.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "azure_auth.h"
#include "azure_monitor.h"
#include "otlp_common.h"

/* gzip level of request bodies: libdeflate's fastest. Envelopes are repetitive JSON that
 * level 1 already shrinks about tenfold (measured: 10.2x, 2.9 us per envelope, against
 * 10.9x and ~2.5x the time at level 6); the gateway's CPU is worth more than the last 7%
 * of upload bytes. */
#define AZMON_GZIP_LEVEL 1
/* Bodies are gzip'd at this level by ISA-L's igzip (Debian libisal-dev, a required
 * dependency), libdeflate (AZMON_GZIP_LEVEL) only when igzip cannot: real deflate (LZ77
 * matching and Huffman coding, standard gzip that any inflater reads), measured on the benchmark's
 * envelopes at 0.88 us per envelope and ratio 9.5, against libdeflate level 1's 2.8 us and
 * 10.2 (bench/azure_map_bench.c). gzip was the largest single cost of the exporter; 7%
 * more upload bytes buy a third of the compression CPU. */
#define AZMON_ISAL_LEVEL    1
#define AZMON_ISAL_LEVEL_BUF ISAL_DEF_LVL1_DEFAULT
/* A consumer keeps its batch's envelope buffer for the next batch up to this size (an
 * 8192-span batch is ~7 MiB of JSON): no fresh pages to fault in per batch. */
#define ITEMS_KEEP_MAX (16u * 1024 * 1024)
/* Redirects followed within one attempt before giving up on it (retryable). */
#define MAX_REDIRECTS 10
/* REFERENCE §6: a connection string is at most this long. */
#define CONNECTION_STRING_MAX 4096
/* Response bodies are read up to this size (a 206 lists one error per refused item). */
#define RESPONSE_BODY_MAX (4 * 1024 * 1024)
/* Retry-After values beyond this are capped (max_elapsed_time bounds retries anyway). */
#define RETRY_AFTER_MAX_S 3600
#define DEFAULT_INGESTION "https://dc.services.visualstudio.com"
#define DEFAULT_AAD_SCOPE "https://monitor.azure.com//.default"
#define TRACK_PATH "/v2.1/track"
#define SAMPLED_OUT_MESSAGE "Telemetry sampled out."
/* Bearer tokens are JWTs of a few KB. */
#define BEARER_MAX (16 * 1024)

struct azmon_conf {
    const char *connection_string;
    const char *instrumentation_key;
    const char *endpoint;
    struct lg_otlp_tls_conf tls;
    const char *compression;
    bool llm_measurements;
    int64_t maxbatchsize;
    struct lg_azure_auth_conf entra_id;
    bool entra_present;
    struct lg_exporter_helper_conf helper;
};

static const struct lg_conf_field azmon_tls_fields[] = {
    LG_CONF_BOOL("insecure_skip_verify", "false", struct lg_otlp_tls_conf, insecure_skip_verify,
                 "do not verify the server's certificate (testing only)"),
    LG_OTLP_TLS_FILE_FIELDS,
    LG_CONF_END,
};

static const struct lg_conf_field azmon_fields[] = {
    LG_CONF_STRING("connection_string", NULL, struct azmon_conf, connection_string,
                   "Application Insights connection string (default: env APPLICATIONINSIGHTS_CONNECTION_STRING)"),
    LG_CONF_STRING("instrumentation_key", NULL, struct azmon_conf, instrumentation_key,
                   "legacy: instrumentation key (GUID), used when no connection string is set"),
    LG_CONF_STRING("endpoint", NULL, struct azmon_conf, endpoint,
                   "legacy: ingestion URL for instrumentation_key; a URL ending in /track is used as is, else /v2.1/track is appended "
                   "(default https://dc.services.visualstudio.com)"),
    LG_CONF_SECTION("tls", struct azmon_conf, tls, azmon_tls_fields, "TLS client settings"),
    LG_CONF_STRING("compression", "gzip", struct azmon_conf, compression, "gzip | none"),
    LG_CONF_BOOL("llm_measurements", "true", struct azmon_conf, llm_measurements,
                 "LLM spans also carry cost and token counts as measurements"),
    LG_CONF_SECTION_OPT("entra_id", struct azmon_conf, entra_id, entra_present, lg_azure_auth_fields,
                        "Microsoft Entra ID authentication (client secret, certificate or workload identity)"),
    LG_CONF_INT("maxbatchsize", "1024", struct azmon_conf, maxbatchsize, 1, 1000000,
                "most envelopes in one request (the Collector's key and default); a larger batch is sent as several requests"),
    LG_CONF_ACCEPTED("maxbatchinterval", "accepted (Collector key); put a batch processor in the pipeline"),
    LG_CONF_ACCEPTED("spaneventsenabled", "accepted (Collector key); span events are always exported"),
    LG_CONF_ACCEPTED("shutdown_timeout", "accepted (Collector key); the service's shutdown deadline applies"),
    LG_EXPORTER_HELPER_FIELDS(struct azmon_conf, helper),
    LG_CONF_END,
};

/* ---- connection string ---- */

struct azmon_cs {
    char ikey[64];
    char *ingestion;   /* base URL, malloc'd, no trailing '/' */
    char *aad_audience; /* malloc'd or NULL */
};

static void cs_free(struct azmon_cs *cs)
{
    free(cs->ingestion);
    free(cs->aad_audience);
    cs->ingestion = cs->aad_audience = NULL;
}

static bool is_guid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static bool is_http_url(const char *s, size_t n)
{
    return (n > 7 && strncasecmp(s, "http://", 7) == 0) || (n > 8 && strncasecmp(s, "https://", 8) == 0);
}

static char *dup_base(const char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '/')
        n--;
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/** Parses an Application Insights connection string (REFERENCE §6) into cs. Errors go to
 *  msg (without the location: the caller knows where the string came from). */
static int azmon_parse_connection_string(const char *s, struct azmon_cs *cs, char *msg, size_t msg_len)
{
    memset(cs, 0, sizeof *cs);
    size_t total = strlen(s);
    if (total > CONNECTION_STRING_MAX) {
        snprintf(msg, msg_len, "connection string is %zu characters long, the limit is %d", total, CONNECTION_STRING_MAX);
        return LG_EINVAL;
    }
    const char *ikey = NULL, *ing = NULL, *suffix = NULL, *loc = NULL, *aad = NULL;
    size_t ikey_n = 0, ing_n = 0, suffix_n = 0, loc_n = 0, aad_n = 0;
    const char *p = s;
    int seg = 0;
    while (*p) {
        const char *end = strchr(p, ';');
        if (end == NULL)
            end = p + strlen(p);
        seg++;
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        p = *end ? end + 1 : end;
        if (a == b)
            continue; /* empty segment */
        const char *eq = memchr(a, '=', (size_t)(b - a));
        if (eq == NULL) {
            snprintf(msg, msg_len, "segment %d (\"%.40s\") is not key=value", seg, a);
            return LG_EINVAL;
        }
        const char *k = a, *ke = eq, *v = eq + 1, *ve = b;
        while (ke > k && isspace((unsigned char)ke[-1]))
            ke--;
        while (v < ve && isspace((unsigned char)*v))
            v++;
        size_t kn = (size_t)(ke - k), vn = (size_t)(ve - v);
#define KEY_IS(lit) (kn == sizeof(lit) - 1 && strncasecmp(k, lit, kn) == 0)
        if (KEY_IS("InstrumentationKey")) {
            ikey = v, ikey_n = vn;
        } else if (KEY_IS("IngestionEndpoint")) {
            ing = v, ing_n = vn;
        } else if (KEY_IS("EndpointSuffix")) {
            suffix = v, suffix_n = vn;
        } else if (KEY_IS("Location")) {
            loc = v, loc_n = vn;
        } else if (KEY_IS("AADAudience")) {
            aad = v, aad_n = vn;
        } else if (KEY_IS("Authorization")) {
            if (!(vn == 4 && strncasecmp(v, "ikey", 4) == 0)) {
                snprintf(msg, msg_len, "Authorization=%.*s is not supported (only Authorization=ikey; use entra_id for Entra ID)",
                         (int)(vn > 40 ? 40 : vn), v);
                return LG_EINVAL;
            }
        }
        /* other keys (LiveEndpoint, ProfilerEndpoint, ...) do not concern ingestion */
#undef KEY_IS
    }
    if (ikey == NULL || ikey_n == 0) {
        snprintf(msg, msg_len, "InstrumentationKey is missing");
        return LG_EINVAL;
    }
    if (!is_guid(ikey, ikey_n)) {
        snprintf(msg, msg_len, "InstrumentationKey \"%.*s\" is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
                 (int)(ikey_n > 64 ? 64 : ikey_n), ikey);
        return LG_EINVAL;
    }
    memcpy(cs->ikey, ikey, ikey_n);
    cs->ikey[ikey_n] = '\0';
    if (ing != NULL && ing_n > 0) {
        if (!is_http_url(ing, ing_n)) {
            snprintf(msg, msg_len, "IngestionEndpoint \"%.*s\" is not an http:// or https:// URL", (int)(ing_n > 200 ? 200 : ing_n), ing);
            return LG_EINVAL;
        }
        cs->ingestion = dup_base(ing, ing_n);
    } else if (suffix != NULL && suffix_n > 0) {
        while (suffix_n > 0 && (*suffix == '.' || *suffix == '/'))
            suffix++, suffix_n--;
        while (suffix_n > 0 && suffix[suffix_n - 1] == '/')
            suffix_n--;
        size_t n = loc_n + suffix_n + 32;
        cs->ingestion = malloc(n);
        if (cs->ingestion) {
            if (loc != NULL && loc_n > 0)
                snprintf(cs->ingestion, n, "https://%.*s.dc.%.*s", (int)loc_n, loc, (int)suffix_n, suffix);
            else
                snprintf(cs->ingestion, n, "https://dc.%.*s", (int)suffix_n, suffix);
        }
    } else {
        cs->ingestion = strdup(DEFAULT_INGESTION);
    }
    if (aad != NULL && aad_n > 0)
        cs->aad_audience = strndup(aad, aad_n); /* as written: "https://monitor.azure.com/" + "/.default" */
    if (cs->ingestion == NULL || (aad != NULL && aad_n > 0 && cs->aad_audience == NULL)) {
        cs_free(cs);
        snprintf(msg, msg_len, "out of memory");
        return LG_ENOMEM;
    }
    return LG_OK;
}

/* ---- state ---- */

typedef int (*azmon_map_fn)(const struct lg_batch *b, const struct lg_azmon_map_opts *o, struct lg_azmon_items *out);

/* What one consumer thread still has to deliver of the batch it is working on. */
struct pending {
    bool used;
    pthread_t thread;
    /* identity of the batch (the helper calls send() again with the same batch object
     * until it gives up; a later batch at the same address differs in arena/time) */
    const struct lg_batch *b;
    const struct lg_arena *arena;
    int64_t received_ns;
    size_t batch_items;
    struct lg_azmon_items items; /* envelopes not yet accepted */
    size_t total;                /* envelopes the batch mapped to */
    int64_t rejected;            /* envelopes refused permanently so far */
    size_t accepted;             /* envelopes accepted so far */
    /* request body buffer, kept across batches (no allocation, no page faults per
     * request) */
    uint8_t *buf;
    size_t buf_cap;
    /* igzip's stream state and level tables (~0.4 MiB together), made on the slot's first
     * request and kept with it, like buf */
    struct isal_zstream *zs;
    uint8_t *zlevel_buf;
};

struct azmon_state {
    const char *id;
    struct azmon_conf *conf;
    char ikey[64];
    char *scope;             /* Entra ID scope from AADAudience (malloc'd) */
    bool gzip;
    struct lg_azmon_map_opts map_opts;
    azmon_map_fn map;        /* lg_azmon_map_batch; tests substitute their own */
    pthread_mutex_t lock;    /* url, pool, pending */
    char *url;               /* track URL (malloc'd), replaced by a redirect */
    CURL **pool;
    size_t npool, pool_cap;
    struct pending **pending; /* each malloc'd: a slot stays put while others are added */
    size_t npending;
    struct lg_azure_auth *auth;
    struct lg_exporter_helper *helper;
    struct lg_counter *c_sent, *c_rejected, *c_sampled_out, *c_retried, *c_redirects, *c_token_fetches,
        *c_token_failures, *c_auth_refused;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init_once(void)
{
    /* before any thread uses libcurl; never cleaned up (process lifetime, like OpenSSL) */
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Forgets the batch (the slot and its buffers stay for the next one). */
static void pending_clear(struct pending *p)
{
    lg_azmon_items_reset(&p->items, ITEMS_KEEP_MAX);
    p->used = false;
    p->b = NULL;
    p->arena = NULL;
    p->received_ns = 0;
    p->batch_items = p->total = p->accepted = 0;
    p->rejected = 0;
}

static void pending_free(struct pending *p)
{
    pending_clear(p);
    lg_azmon_items_free(&p->items);
    free(p->buf);
    free(p->zs);
    free(p->zlevel_buf);
    free(p);
}

static void azmon_state_fini(struct azmon_state *st)
{
    for (size_t i = 0; i < st->npool; i++)
        curl_easy_cleanup(st->pool[i]);
    free(st->pool);
    for (size_t i = 0; i < st->npending; i++)
        pending_free(st->pending[i]);
    free(st->pending);
    lg_azure_auth_destroy(st->auth);
    free(st->url);
    free(st->scope);
    pthread_mutex_destroy(&st->lock);
    memset(st, 0, sizeof *st);
}

static struct lg_counter *counter(struct lg_telemetry *t, const char *id, const char *name, const char *help)
{
    if (t == NULL)
        return NULL;
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", id);
    return lg_telemetry_counter(t, name, help, labels);
}

static int azmon_state_init(struct azmon_state *st, const char *id, struct azmon_conf *conf, const struct lg_node *node,
                            struct lg_telemetry *t, struct lg_err *err)
{
    memset(st, 0, sizeof *st);
    st->id = id;
    st->conf = conf;
    st->map = lg_azmon_map_batch;
    pthread_mutex_init(&st->lock, NULL);
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK)
        return lg_err_set(err, LG_EINTERNAL, "exporters.%s: libcurl initialisation failed: %s", id, curl_easy_strerror(curl_init_rc));

    /* where the key and endpoint come from: connection_string, else the legacy pair, else
     * the environment */
    const char *cs_text = conf->connection_string;
    bool from_yaml = cs_text != NULL && cs_text[0] != '\0';
    bool legacy = conf->instrumentation_key != NULL && conf->instrumentation_key[0] != '\0';
    if (from_yaml && legacy)
        lg_warn(id, "both connection_string and instrumentation_key are set; connection_string wins");
    if (!from_yaml && !legacy) {
        cs_text = getenv("APPLICATIONINSIGHTS_CONNECTION_STRING");
        if (cs_text == NULL || cs_text[0] == '\0')
            return node ? lg_conf_error(err, node,
                                        "connection_string is required (or instrumentation_key, or env "
                                        "APPLICATIONINSIGHTS_CONNECTION_STRING)")
                        : lg_err_set(err, LG_EINVAL, "exporters.%s: connection_string is required", id);
    }
    const char *aad = NULL;
    struct azmon_cs cs;
    memset(&cs, 0, sizeof cs);
    if (from_yaml || !legacy) {
        char msg[512];
        int rc = azmon_parse_connection_string(cs_text, &cs, msg, sizeof msg);
        if (rc != LG_OK) {
            if (from_yaml)
                return lg_conf_error(err, lg_node_get(node, "connection_string"), "%s", msg);
            return lg_err_set(err, rc, "exporters.%s: env APPLICATIONINSIGHTS_CONNECTION_STRING: %s", id, msg);
        }
        snprintf(st->ikey, sizeof st->ikey, "%s", cs.ikey);
        size_t n = strlen(cs.ingestion) + sizeof TRACK_PATH;
        st->url = malloc(n);
        if (st->url)
            snprintf(st->url, n, "%s%s", cs.ingestion, TRACK_PATH);
        aad = cs.aad_audience;
    } else {
        const char *k = conf->instrumentation_key;
        if (!is_guid(k, strlen(k))) {
            cs_free(&cs);
            return lg_conf_error(err, lg_node_get(node, "instrumentation_key"), "\"%.64s\" is not a GUID", k);
        }
        snprintf(st->ikey, sizeof st->ikey, "%s", k);
        const char *ep = conf->endpoint != NULL && conf->endpoint[0] != '\0' ? conf->endpoint : DEFAULT_INGESTION;
        size_t el = strlen(ep);
        if (!is_http_url(ep, el)) {
            cs_free(&cs);
            return lg_conf_error(err, lg_node_get(node, "endpoint"), "expected an http:// or https:// URL, got \"%s\"", ep);
        }
        /* the Collector's endpoint is the full track URL (…/v2/track); a bare base gets ours */
        if (el >= 6 && strcmp(ep + el - 6, "/track") == 0) {
            st->url = strdup(ep);
        } else {
            char *base = dup_base(ep, el);
            size_t n = base ? strlen(base) + sizeof TRACK_PATH : 0;
            st->url = base ? malloc(n) : NULL;
            if (st->url)
                snprintf(st->url, n, "%s%s", base, TRACK_PATH);
            free(base);
        }
    }
    if (aad != NULL) {
        size_t al = strlen(aad);
        bool has_default = al >= 8 && strcmp(aad + al - 8, "/.default") == 0;
        size_t n = al + 16;
        st->scope = malloc(n);
        if (st->scope)
            snprintf(st->scope, n, has_default ? "%s" : "%s/.default", aad);
    } else {
        st->scope = strdup(DEFAULT_AAD_SCOPE);
    }
    cs_free(&cs);
    if (st->url == NULL || st->scope == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");

    const char *comp = conf->compression ? conf->compression : "gzip";
    if (strcmp(comp, "gzip") == 0)
        st->gzip = true;
    else if (strcmp(comp, "none") != 0 && comp[0] != '\0')
        return lg_conf_error(err, lg_node_get(node, "compression"), "expected gzip or none, got \"%s\"", comp);
    int rc = lg_otlp_tls_check_files(&conf->tls, lg_node_get(node, "tls"), true, err);
    if (rc != LG_OK)
        return rc;

    st->map_opts.ikey = st->ikey;
    st->map_opts.sdk_version = "llmgate:" LLMGATE_VERSION;
    st->map_opts.llm_measurements = conf->llm_measurements;
    /* as the official exporters: the per-resource _OTELRESOURCE_ metric unless disabled */
    const char *no_rm = getenv("OTEL_RESOURCE_METRIC_DISABLED");
    st->map_opts.no_resource_metric = no_rm != NULL && strcasecmp(no_rm, "true") == 0;

    st->c_sent = counter(t, id, "llmgate_azure_monitor_envelopes_sent", "Envelopes the ingestion service accepted.");
    st->c_rejected = counter(t, id, "llmgate_azure_monitor_envelopes_rejected",
                             "Envelopes the ingestion service refused permanently (400 and other non-retriable codes).");
    st->c_sampled_out = counter(t, id, "llmgate_azure_monitor_envelopes_sampled_out",
                                "Envelopes refused as \"Telemetry sampled out.\" (never retried; also counted as rejected).");
    st->c_retried = counter(t, id, "llmgate_azure_monitor_envelopes_retried",
                            "Envelopes left for another attempt (retriable 206 items, and every envelope of a request answered "
                            "retryably or not at all, or not sent after it).");
    st->c_redirects = counter(t, id, "llmgate_azure_monitor_redirects", "307/308 redirects followed (the new URL is kept).");
    st->c_auth_refused = counter(t, id, "llmgate_azure_monitor_auth_refused",
                                 "Requests the service answered 401/403 (Entra ID token refused or missing).");
    if (conf->entra_present) {
        st->c_token_fetches = counter(t, id, "llmgate_azure_monitor_token_fetches", "Entra ID token requests made.");
        st->c_token_failures = counter(t, id, "llmgate_azure_monitor_token_failures", "Entra ID token requests that failed.");
        rc = lg_azure_auth_create(id, &conf->entra_id, lg_node_get(node, "entra_id"), st->scope, st->c_token_fetches,
                                  st->c_token_failures, &st->auth, err);
        if (rc != LG_OK)
            return rc;
    }
    return LG_OK;
}

/* ---- easy handle pool ---- */

static CURL *pool_take(struct azmon_state *st)
{
    CURL *h = NULL;
    pthread_mutex_lock(&st->lock);
    if (st->npool > 0)
        h = st->pool[--st->npool];
    pthread_mutex_unlock(&st->lock);
    if (h == NULL)
        h = curl_easy_init();
    else
        curl_easy_reset(h); /* options only: the connection and TLS session stay */
    return h;
}

static void pool_put(struct azmon_state *st, CURL *h)
{
    pthread_mutex_lock(&st->lock);
    if (st->npool == st->pool_cap) {
        size_t cap = st->pool_cap ? 2 * st->pool_cap : 8;
        CURL **p = realloc(st->pool, cap * sizeof *p);
        if (p == NULL) {
            pthread_mutex_unlock(&st->lock);
            curl_easy_cleanup(h);
            return;
        }
        st->pool = p;
        st->pool_cap = cap;
    }
    st->pool[st->npool++] = h;
    pthread_mutex_unlock(&st->lock);
}

/* ---- pending slots ---- */

/* The calling thread's slot (created on first use); NULL on OOM. */
static struct pending *pending_slot(struct azmon_state *st)
{
    pthread_t self = pthread_self();
    struct pending *out = NULL;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->npending && out == NULL; i++)
        if (st->pending[i]->used && pthread_equal(st->pending[i]->thread, self))
            out = st->pending[i];
    for (size_t i = 0; i < st->npending && out == NULL; i++)
        if (!st->pending[i]->used)
            out = st->pending[i];
    if (out == NULL) {
        struct pending **v = realloc(st->pending, (st->npending + 1) * sizeof *v);
        if (v != NULL) {
            st->pending = v;
            out = calloc(1, sizeof *out);
            if (out != NULL)
                v[st->npending++] = out;
        }
    }
    if (out != NULL && !out->used) {
        out->used = true;
        out->thread = self;
    }
    pthread_mutex_unlock(&st->lock);
    return out;
}

static bool pending_is(const struct pending *p, const struct lg_batch *b)
{
    return p->b == b && p->arena == b->arena && p->received_ns == b->received_mono_ns && p->batch_items == b->items;
}

/* ---- request ---- */

static bool buf_reserve(struct pending *p, size_t need)
{
    if (p->buf_cap >= need)
        return true;
    size_t cap = p->buf_cap ? p->buf_cap : 64 * 1024;
    while (cap < need)
        cap *= 2;
    uint8_t *b = realloc(p->buf, cap);
    if (b == NULL)
        return false;
    p->buf = b;
    p->buf_cap = cap;
    return true;
}

/* gzip of in[0, len) into p->buf by ISA-L's igzip (see AZMON_ISAL_LEVEL); the
 * compressed length, or 0 when out of memory or the output did not fit (the caller then
 * uses libdeflate). */
static size_t isal_gzip(struct pending *p, const char *in, size_t len)
{
    if (p->zs == NULL) {
        p->zs = malloc(sizeof *p->zs);
        p->zlevel_buf = malloc(AZMON_ISAL_LEVEL_BUF);
        if (p->zs == NULL || p->zlevel_buf == NULL) {
            free(p->zs);
            free(p->zlevel_buf);
            p->zs = NULL;
            p->zlevel_buf = NULL;
            return 0;
        }
    }
    if (len > UINT32_MAX || p->buf_cap > UINT32_MAX)
        return 0; /* (igzip counts in 32 bits; a request is far smaller) */
    struct isal_zstream *zs = p->zs;
    isal_deflate_stateless_init(zs);
    zs->level = AZMON_ISAL_LEVEL;
    zs->level_buf = p->zlevel_buf;
    zs->level_buf_size = AZMON_ISAL_LEVEL_BUF;
    zs->gzip_flag = IGZIP_GZIP;
    zs->next_in = (uint8_t *)(uintptr_t)in; /* (read only: igzip's API is not const) */
    zs->avail_in = (uint32_t)len;
    zs->next_out = p->buf;
    zs->avail_out = (uint32_t)p->buf_cap;
    zs->end_of_stream = 1;
    zs->flush = NO_FLUSH;
    if (isal_deflate_stateless(zs) != COMP_OK)
        return 0;
    return zs->total_out;
}

/* "[e0,e1,...]" of the pending envelopes [off, off + cnt) into p->buf, gzip'd when
 * configured. The envelopes lie back to back in the items buffer with a separator byte
 * around each (exporters/azure_monitor.h): the array is that run with '[' and ']' written
 * over its outer separators, compressed in place, then the separators are put back.
 * Returns the body length, 0 on OOM. */
static size_t build_body(const struct azmon_state *st, struct pending *p, size_t off, size_t cnt)
{
    struct lg_azmon_items *it = &p->items;
    const struct lg_azmon_item *first = &it->v[off], *last = &it->v[off + cnt - 1];
    char *start = it->buf + first->off - 1;
    char *end = it->buf + last->off + last->len; /* the separator after the last */
    size_t raw = (size_t)(end - start) + 1;
    size_t out = 0;
    if (!st->gzip) {
        if (!buf_reserve(p, raw))
            return 0;
        memcpy(p->buf, start, raw);
        p->buf[0] = '[';
        p->buf[raw - 1] = ']';
        return raw;
    }
    if (!buf_reserve(p, lg_gzip_bound(raw)))
        return 0;
    *start = '[';
    *end = ']';
    out = isal_gzip(p, start, raw);
    if (out == 0) /* (igzip could not: libdeflate) */
        out = lg_gzip(AZMON_GZIP_LEVEL, start, raw, p->buf, p->buf_cap);
    *start = ',';
    *end = ',';
    return out;
}

struct response {
    char *body;
    size_t len;
    bool truncated;
    char retry_after[128];
    char location[2048];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    if (r->truncated || r->len + n > RESPONSE_BODY_MAX) {
        r->truncated = true;
        return n;
    }
    char *p = realloc(r->body, r->len + n + 1);
    if (p == NULL) {
        r->truncated = true;
        return n;
    }
    memcpy(p + r->len, data, n);
    r->body = p;
    r->len += n;
    p[r->len] = '\0';
    return n;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct response *r = arg;
    size_t n = size * nmemb;
    if (n > 5 && strncmp(line, "HTTP/", 5) == 0)
        r->retry_after[0] = r->location[0] = '\0'; /* a new response (after 100 Continue) */
    else if (!lg_http_header_value(line, n, "retry-after:", r->retry_after, sizeof r->retry_after))
        lg_http_header_value(line, n, "location:", r->location, sizeof r->location);
    return n;
}


static bool curl_error_permanent(CURLcode c)
{
    /* the request can never work as configured; refused/reset/timeout/TLS handshake may */
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
        return true;
    default:
        return false;
    }
}

static bool status_retriable(long s)
{
    return s == 408 || s == 429 || s == 439 || s == 500 || s == 502 || s == 503 || s == 504;
}

static bool item_retriable(long s)
{
    return s == 206 || s == 401 || s == 403 || status_retriable(s);
}

/* One HTTP exchange. Returns the CURLcode; *status, r filled. */
static CURLcode post(struct azmon_state *st, const char *url, const uint8_t *body, size_t body_len, const char *bearer,
                     int64_t deadline, long *status, struct response *r, char *errbuf)
{
    *status = 0;
    int64_t timeout_ms = (deadline - lg_now_mono_ns()) / 1000000;
    if (timeout_ms <= 0)
        return CURLE_OPERATION_TIMEDOUT;
    struct curl_slist *hdrs = NULL, *tmp;
    char auth_line[BEARER_MAX + 32];
    const char *lines[5] = {"Content-Type: application/json", st->gzip ? "Content-Encoding: gzip" : NULL,
                            "Expect:" /* no 100-continue round trip */, NULL, NULL};
    if (bearer != NULL) {
        snprintf(auth_line, sizeof auth_line, "Authorization: Bearer %s", bearer);
        lines[3] = auth_line;
    }
    for (size_t i = 0; i < 5; i++) {
        if (lines[i] == NULL)
            continue;
        tmp = curl_slist_append(hdrs, lines[i]);
        if (tmp == NULL) {
            curl_slist_free_all(hdrs);
            return CURLE_OUT_OF_MEMORY;
        }
        hdrs = tmp;
    }
    CURL *h = pool_take(st);
    if (h == NULL) {
        curl_slist_free_all(hdrs);
        return CURLE_OUT_OF_MEMORY;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "llmgate/" LLMGATE_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    const struct lg_otlp_tls_conf *tls = &st->conf->tls;
    if (tls->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, tls->ca_file);
    if (tls->cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert_file);
        curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key_file);
    }
    if (tls->insecure_skip_verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* errbuf is the caller's stack */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    pool_put(st, h);
    curl_slist_free_all(hdrs);
    memset(auth_line, 0, sizeof auth_line);
    return cc;
}

/* Location (absolute, or an absolute path on the current origin) into a new URL. */
static char *resolve_location(const char *current, const char *loc)
{
    if (is_http_url(loc, strlen(loc)))
        return strdup(loc);
    if (loc[0] != '/')
        return NULL;
    const char *scheme_end = strstr(current, "://");
    if (scheme_end == NULL)
        return NULL;
    const char *path = strchr(scheme_end + 3, '/');
    size_t origin = path ? (size_t)(path - current) : strlen(current);
    size_t n = origin + strlen(loc) + 1;
    char *u = malloc(n);
    if (u)
        snprintf(u, n, "%.*s%s", (int)origin, current, loc);
    return u;
}

/* A printable prefix of an error body for messages. */
static void body_excerpt(const struct response *r, char *out, size_t out_len)
{
    size_t j = 0;
    for (size_t i = 0; r->body && i < r->len && j + 1 < out_len && j < 160; i++) {
        unsigned char ch = (unsigned char)r->body[i];
        out[j++] = (ch >= ' ' && ch < 0x7f) ? (char)ch : ' ';
    }
    out[j] = '\0';
}

/* What happened to each pending envelope in this attempt. */
enum fate { FATE_KEEP = 0, FATE_ACCEPTED = 1, FATE_REFUSED = 2 };

/* Applies a 206 body to the slice [off, off + cnt): listed items with a retriable
 * statusCode stay (FATE_KEEP), other listed items are refused, the rest was accepted.
 * Returns false when the body cannot be read (then the whole slice stays: resending
 * accepted items duplicates them, dropping would lose). */
static bool apply_partial(const struct response *r, unsigned char *fate, size_t off, size_t cnt, size_t *sampled,
                          char *first_error, size_t fe_len)
{
    cJSON *j = r->body && !r->truncated ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
    if (!cJSON_IsArray(errors)) {
        cJSON_Delete(j);
        return false;
    }
    for (size_t i = 0; i < cnt; i++)
        fate[off + i] = FATE_ACCEPTED;
    const cJSON *e;
    cJSON_ArrayForEach(e, errors)
    {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(e, "index");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "statusCode");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 || idx->valuedouble >= (double)cnt)
            continue;
        size_t i = off + (size_t)idx->valuedouble;
        long c = cJSON_IsNumber(code) ? (long)code->valuedouble : 0;
        bool sampled_out = cJSON_IsString(msg) && strcmp(msg->valuestring, SAMPLED_OUT_MESSAGE) == 0;
        if (fate[i] == FATE_REFUSED)
            continue; /* listed twice: refused wins */
        if (item_retriable(c) && !sampled_out) {
            fate[i] = FATE_KEEP;
        } else {
            if (sampled_out)
                (*sampled)++;
            if (first_error[0] == '\0')
                snprintf(first_error, fe_len, "item %zu: %ld %.150s", i, c, cJSON_IsString(msg) ? msg->valuestring : "");
            fate[i] = FATE_REFUSED;
        }
    }
    cJSON_Delete(j);
    return true;
}

/* One request for a slice, following redirects and renewing a refused Entra ID token.
 * Returns the CURLcode (*status and r filled); *bearer and *gen carry the token across
 * the slices of one attempt, *refreshed limits renewals to one per attempt. */
static CURLcode exchange(struct azmon_state *st, char *url, size_t url_len, const uint8_t *body, size_t body_len,
                         char **bearer, uint64_t *gen, bool *refreshed, int64_t deadline, long *status, struct response *r,
                         struct lg_export_result *res)
{
    int redirects = 0;
    for (;;) {
        if (st->auth != NULL && *bearer == NULL) {
            *bearer = malloc(BEARER_MAX);
            char why[256] = "";
            int rc = *bearer ? lg_azure_auth_token(st->auth, deadline, *bearer, BEARER_MAX, gen, why, sizeof why) : LG_ENOMEM;
            if (rc != LG_OK) {
                free(*bearer);
                *bearer = NULL;
                snprintf(res->message, sizeof res->message, "no Entra ID token: %.200s", why[0] ? why : "out of memory");
                return CURLE_LOGIN_DENIED; /* reported by the caller as retryable */
            }
        }
        free(r->body);
        memset(r, 0, sizeof *r);
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode cc = post(st, url, body, body_len, *bearer, deadline, status, r, errbuf);
        if (cc != CURLE_OK) {
            snprintf(res->message, sizeof res->message, "%s: %.160s", curl_easy_strerror(cc), errbuf[0] ? errbuf : url);
            return cc;
        }
        if ((*status == 307 || *status == 308) && r->location[0] != '\0') {
            if (++redirects > MAX_REDIRECTS) {
                snprintf(res->message, sizeof res->message, "more than %d redirects (last to %.150s)", MAX_REDIRECTS, r->location);
                return CURLE_TOO_MANY_REDIRECTS;
            }
            char *next = resolve_location(url, r->location);
            if (next == NULL || strlen(next) >= url_len) {
                free(next);
                snprintf(res->message, sizeof res->message, "HTTP %ld with an unusable Location %.150s", *status, r->location);
                return CURLE_TOO_MANY_REDIRECTS;
            }
            lg_counter_add(st->c_redirects, 1);
            if (strcmp(next, url) != 0)
                lg_info(st->id, "HTTP %ld: ingestion moved to %s; using it from now on", *status, next);
            snprintf(url, url_len, "%s", next);
            pthread_mutex_lock(&st->lock);
            free(st->url);
            st->url = next;
            pthread_mutex_unlock(&st->lock);
            continue;
        }
        if ((*status == 401 || *status == 403) && st->auth != NULL) {
            lg_counter_add(st->c_auth_refused, 1);
            lg_azure_auth_invalidate(st->auth, *gen);
            free(*bearer);
            *bearer = NULL;
            if (!*refreshed) {
                *refreshed = true; /* once per attempt: a new token, sent again at once */
                lg_info(st->id, "HTTP %ld: the Entra ID token was refused; fetching a new one", *status);
                continue;
            }
            lg_error(st->id,
                     "HTTP %ld with a fresh Entra ID token (does the identity have the Monitoring Metrics Publisher role?)",
                     *status);
        }
        return CURLE_OK;
    }
}

static void finish(struct pending *p, const struct lg_batch *b, struct lg_export_result *res)
{
    int64_t rej = p->rejected;
    if (rej > (int64_t)b->items)
        rej = (int64_t)b->items; /* helper counts OTLP items; an item may make several envelopes */
    res->rejected = rej;
    pending_clear(p);
}

/** One attempt: the helper's send function (see core/exporter_helper.h). Sends the
 *  pending envelopes in requests of at most maxbatchsize, one after the other; an answer
 *  that asks to retry the whole request ends the attempt (the rest stays pending). */
static void azmon_send(void *ctx, struct lg_batch *b, int64_t deadline, struct lg_export_result *res)
{
    struct azmon_state *st = ctx;
    memset(res, 0, sizeof *res);
    struct pending *p = pending_slot(st);
    if (p == NULL) {
        res->code = LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "out of memory");
        return;
    }
    if (!pending_is(p, b)) {
        /* a new batch (the previous one on this thread was delivered or given up) */
        pthread_t self = p->thread;
        pending_clear(p);
        p->used = true;
        p->thread = self;
        int rc = st->map(b, &st->map_opts, &p->items);
        if (rc != LG_OK) {
            lg_azmon_items_reset(&p->items, 0);
            res->code = LG_EAGAIN;
            snprintf(res->message, sizeof res->message, "out of memory mapping %zu %s to envelopes", b->items,
                     lg_signal_item_noun(b->signal));
            return;
        }
        p->b = b;
        p->arena = b->arena;
        p->received_ns = b->received_mono_ns;
        p->batch_items = b->items;
        p->total = p->items.n;
    }
    size_t n = p->items.n;
    if (n == 0) {
        res->code = LG_OK;
        finish(p, b, res);
        return;
    }
    unsigned char *fate = calloc(n, 1);
    if (fate == NULL) {
        res->code = LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "out of memory");
        return;
    }
    char url[2048];
    pthread_mutex_lock(&st->lock);
    snprintf(url, sizeof url, "%s", st->url);
    pthread_mutex_unlock(&st->lock);
    size_t per_request = st->conf->maxbatchsize > 0 ? (size_t)st->conf->maxbatchsize : n;
    char *bearer = NULL;
    uint64_t gen = 0;
    bool refreshed = false, stopped = false, permanent = false, any_206 = false;
    size_t sampled = 0;
    char first_refusal[200] = "", last_refusal[256] = "";
    struct response r;
    memset(&r, 0, sizeof r);
    for (size_t off = 0; off < n && !stopped; off += per_request) {
        size_t cnt = n - off < per_request ? n - off : per_request;
        size_t body_len = build_body(st, p, off, cnt);
        if (body_len == 0) {
            stopped = true;
            snprintf(res->message, sizeof res->message, "out of memory building the request");
            break;
        }
        long status = 0;
        CURLcode cc = exchange(st, url, sizeof url, p->buf, body_len, &bearer, &gen, &refreshed, deadline, &status, &r, res);
        if (cc != CURLE_OK) {
            stopped = true;
            if (curl_error_permanent(cc)) {
                permanent = true;
                char m[sizeof res->message];
                snprintf(m, sizeof m, "permanent error: %.200s", res->message);
                snprintf(res->message, sizeof res->message, "%s", m);
            }
            break;
        }
        if (status == 200) {
            memset(fate + off, FATE_ACCEPTED, cnt);
            continue;
        }
        if (status == 206) {
            any_206 = true;
            if (!apply_partial(&r, fate, off, cnt, &sampled, first_refusal, sizeof first_refusal))
                lg_warn(st->id, "HTTP 206 with an unreadable body: resending all %zu envelopes of the request", cnt);
            res->retry_after_ns = lg_http_retry_after_ns(r.retry_after, RETRY_AFTER_MAX_S);
            continue;
        }
        char excerpt[200];
        body_excerpt(&r, excerpt, sizeof excerpt);
        if (status_retriable(status) || ((status == 401 || status == 403) && st->auth != NULL)) {
            stopped = true;
            res->retry_after_ns = lg_http_retry_after_ns(r.retry_after, RETRY_AFTER_MAX_S);
            snprintf(res->message, sizeof res->message, "HTTP %ld%s%s", status, excerpt[0] ? ": " : "", excerpt);
            break;
        }
        if (status == 401 || status == 403) {
            lg_counter_add(st->c_auth_refused, 1);
            lg_error(st->id,
                     "HTTP %ld from %s: the resource refuses instrumentation-key ingestion (local authentication "
                     "disabled?): configure entra_id. Dropping %zu envelopes",
                     status, url, cnt);
        }
        memset(fate + off, FATE_REFUSED, cnt);
        snprintf(last_refusal, sizeof last_refusal, "HTTP %ld%s%s", status, excerpt[0] ? ": " : "", excerpt);
    }
    free(r.body);
    if (bearer) {
        memset(bearer, 0, BEARER_MAX);
        free(bearer);
    }
    if (permanent) {
        /* the request can never work as configured: the helper fails the whole batch */
        free(fate);
        res->code = LG_EINVAL;
        pending_clear(p);
        return;
    }
    /* settle: accepted and refused envelopes leave, the rest stays for the next attempt */
    size_t acc = 0, ref = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (fate[i] == FATE_KEEP)
            kept++;
        else if (fate[i] == FATE_ACCEPTED)
            acc++;
        else
            ref++;
    }
    if (kept == 0) {
        p->items.n = 0;
        p->items.len = 0;
    } else if (kept < n) {
        for (size_t i = 0; i < n; i++)
            fate[i] = fate[i] == FATE_KEEP; /* fate becomes the keep mask */
        lg_azmon_items_keep(&p->items, fate);
    }
    free(fate);
    lg_counter_add(st->c_sent, acc);
    lg_counter_add(st->c_rejected, ref);
    lg_counter_add(st->c_sampled_out, sampled);
    lg_counter_add(st->c_retried, kept);
    p->rejected += (int64_t)ref;
    p->accepted += acc;
    if (ref > 0)
        lg_warn(st->id, "the service refused %zu envelope(s) permanently (%s)", ref,
                first_refusal[0] ? first_refusal : last_refusal);
    if (kept > 0) {
        res->code = LG_EAGAIN;
        if (!stopped || res->message[0] == '\0')
            snprintf(res->message, sizeof res->message, "HTTP 206: %zu accepted, %zu refused, %zu to resend", acc, ref, kept);
        else if (any_206 || acc > 0 || ref > 0) {
            char m[sizeof res->message];
            snprintf(m, sizeof m, "%.160s (%zu accepted, %zu refused, %zu to resend)", res->message, acc, ref, kept);
            snprintf(res->message, sizeof res->message, "%s", m);
        }
        return;
    }
    if (p->accepted == 0 && p->rejected > 0) {
        /* nothing of the batch was accepted: a permanent failure as far as the helper goes */
        res->code = LG_EINVAL;
        snprintf(res->message, sizeof res->message, "permanent error: %.200s",
                 last_refusal[0] ? last_refusal : (first_refusal[0] ? first_refusal : "every envelope refused"));
        pending_clear(p);
        return;
    }
    res->code = LG_OK;
    finish(p, b, res);
}

/* ---- component ---- */

static int azmon_create(struct lg_component *c, struct lg_err *err)
{
    struct azmon_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    int rc = azmon_state_init(st, c->id, c->conf, c->conf_node, c->rt ? c->rt->telemetry : NULL, err);
    if (rc == LG_OK)
        rc = lg_exporter_helper_create(c, &st->conf->helper, azmon_send, st, &st->helper, err);
    if (rc != LG_OK) {
        azmon_state_fini(st);
        free(st);
        return rc;
    }
    c->state = st;
    return LG_OK;
}

static int azmon_start(struct lg_component *c, struct lg_err *err)
{
    struct azmon_state *st = c->state;
    return lg_exporter_helper_start(st->helper, err);
}

static int azmon_consume(struct lg_component *c, struct lg_batch *b)
{
    struct azmon_state *st = c->state;
    return lg_exporter_helper_consume(st->helper, b);
}

static int azmon_shutdown(struct lg_component *c, int64_t deadline)
{
    struct azmon_state *st = c->state;
    return lg_exporter_helper_shutdown(st->helper, deadline);
}

static void azmon_destroy(struct lg_component *c)
{
    struct azmon_state *st = c->state;
    if (st == NULL)
        return;
    lg_exporter_helper_destroy(st->helper); /* joins the consumers: handles and slots idle */
    azmon_state_fini(st);
    free(st);
    c->state = NULL;
}

static const char *const azmon_aliases[] = {"azuremonitor", NULL};

const struct lg_component_type lg_azure_monitor_exporter = {
    .type = "azure_monitor",
    .aliases = azmon_aliases,
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "sends traces, metrics and logs to Azure Monitor Application Insights (gzip, 206 partial retries, "
                   "Entra ID, sending queue with persistent option)",
    .conf_size = sizeof(struct azmon_conf),
    .fields = azmon_fields,
    .create = azmon_create,
    .start = azmon_start,
    .consume = azmon_consume,
    .shutdown = azmon_shutdown,
    .destroy = azmon_destroy,
};
