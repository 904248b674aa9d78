/* bench/workload.h — the synthetic OTLP trace workload shared by bench/loadgen.c and
 * bench/decode_bench.c, so both measure exactly the same bytes.
 *
 * Header-only on purpose: CMake turns every .c file in bench/ into an executable, so shared code
 * cannot live in a .c file there. Every function is `static inline`.
 *
 * What a request looks like (modelled on what an OTel SDK's batch span processor sends):
 *   - one ResourceSpans with one ScopeSpans; the resource carries service.name,
 *     service.version, service.namespace, deployment.environment.name, telemetry.sdk.*,
 *     k8s.* attributes; services rotate across the requests of a pool;
 *   - `spans_per_request` spans (default 512) grouped into traces of ~10 spans (between
 *     6 and 14): a SERVER root, then children whose parent is an earlier span of the same
 *     trace; 16-byte random trace IDs, 8-byte random span IDs, never all-zero;
 *   - 8 attributes per span, a mix of string, int, double and bool values with the keys
 *     real instrumentations use (http.*, db.*, code.*, net.*);
 *   - every 10th span (by position in the request) is an LLM span: name "chat gpt-4o",
 *     kind CLIENT, with the gen_ai.* attributes (operation, provider, request/response
 *     model, input/output tokens, finish reasons as a string array, temperature);
 *   - 1% of traces carry one ERROR span (status message plus an "exception" event).
 *
 * Ownership: wl_pool_build() fills a pool of malloc'd packed requests; wl_pool_free()
 * frees them. The message trees are built in a temporary lg_arena and freed right after
 * packing. */
#ifndef LG_BENCH_WORKLOAD_H
#define LG_BENCH_WORKLOAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/otlp.h"

/* Shape of the workload; the defaults are the ones docs/BENCHMARKS.md reports. */
#define WL_DEFAULT_SPANS_PER_REQUEST 512
#define WL_DEFAULT_POOL_SIZE         64
#define WL_TRACE_SPANS_MIN           6 /* trace sizes are uniform in [MIN, MAX]: mean 10 */
#define WL_TRACE_SPANS_MAX           14
#define WL_LLM_SPAN_EVERY            10 /* every 10th span is an LLM call */
#define WL_ERROR_TRACE_PERMILLE      10 /* 1% of traces carry an ERROR span */
#define WL_ATTRS_PER_SPAN            8
#define WL_TRACE_ID_LEN              16
#define WL_SPAN_ID_LEN               8
#define WL_NS_PER_MS                 1000000LL
#define WL_MIN_SPAN_NS               1000 /* 1 us: no span is instantaneous */

struct wl_opts {
    size_t spans_per_request; /* 0 = WL_DEFAULT_SPANS_PER_REQUEST */
    uint64_t seed;
    int64_t base_time_ns; /* wall-clock start of the first trace; 0 = now */
};

/** One packed ExportTraceServiceRequest. */
struct wl_request {
    uint8_t *data; /* malloc'd protobuf bytes */
    size_t len;
    size_t spans;
};

struct wl_pool {
    struct wl_request *reqs;
    size_t n;
    size_t total_bytes;
    size_t total_spans;
};

/* ---- deterministic random numbers (splitmix64: tiny, good enough, seedable) ---- */

struct wl_rng {
    uint64_t state;
};

static inline uint64_t wl_rand(struct wl_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/** Uniform in [lo, hi]. */
static inline int64_t wl_rand_range(struct wl_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(wl_rand(r) % (uint64_t)(hi - lo + 1));
}

static inline double wl_rand_unit(struct wl_rng *r)
{
    return (double)(wl_rand(r) >> 11) / (double)(1ULL << 53);
}

static inline const char *wl_pick(struct wl_rng *r, const char *const *list, size_t n)
{
    return list[wl_rand(r) % n];
}

#define WL_PICK(r, list) wl_pick((r), (list), LG_ARRAY_LEN(list))

/** Random bytes that are never all zero (the receiver drops spans with zero IDs). */
static inline void wl_rand_id(struct wl_rng *r, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i += sizeof(uint64_t)) {
        uint64_t v = wl_rand(r);
        size_t n = len - i < sizeof v ? len - i : sizeof v;
        memcpy(out + i, &v, n);
    }
    out[0] |= 1;
}

/* ---- value tables: what real instrumentations put there ---- */

static const char *const wl_services[] = {
    "checkout", "cart", "payments", "catalog", "recommendation", "chat-assistant", "search", "auth",
};
static const char *const wl_routes[] = {
    "/api/v1/orders/{id}",      "/api/v1/cart",   "/api/v1/products", "/api/v1/products/{id}",
    "/api/v1/chat/completions", "/api/v1/search", "/healthz",         "/api/v1/users/{id}/profile",
};
static const char *const wl_methods[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
static const char *const wl_user_agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "axios/1.7.2",
};
static const char *const wl_db_systems[] = {"postgresql", "postgresql", "redis", "mysql"};
static const char *const wl_db_statements[] = {
    "SELECT id, status, total FROM orders WHERE customer_id = $1 ORDER BY created_at DESC",
    "SELECT * FROM products WHERE id = $1",
    "UPDATE carts SET updated_at = now() WHERE id = $1",
    "INSERT INTO events (kind, payload) VALUES ($1, $2)",
    "GET session:{id}",
    "SELECT count(*) FROM inventory WHERE sku = $1 AND warehouse = $2",
};
static const char *const wl_db_operations[] = {"SELECT", "SELECT", "UPDATE", "INSERT", "GET"};
static const char *const wl_functions[] = {
    "handle_request", "load_cart",    "price_items",  "render_response",
    "validate_token", "build_prompt", "rank_results", "serialize",
};
static const char *const wl_namespaces[] = {
    "app.handlers.orders", "app.services.cart",  "app.services.pricing",
    "app.llm.prompting",   "app.search.ranking",
};
static const char *const wl_peers[] = {
    "inventory.internal",
    "pricing.internal",
    "users.internal",
    "api.stripe.com",
};
static const char *const wl_finish_reasons[] = {"stop", "stop", "stop", "length", "tool_calls"};
static const char *const wl_error_types[] = {
    "TimeoutError",
    "ConnectionResetError",
    "ValueError",
    "openai.RateLimitError",
};

/* ---- building messages in an arena ---- */

struct wl_builder {
    struct lg_arena *arena;
    struct wl_rng rng;
    bool oom;
};

static inline void *wl_alloc(struct wl_builder *b, size_t size)
{
    void *p = lg_arena_calloc(b->arena, 1, size);
    if (p == NULL)
        b->oom = true;
    return p;
}

static inline char *wl_strdup(struct wl_builder *b, const char *s)
{
    char *p = lg_arena_strdup(b->arena, s);
    if (p == NULL)
        b->oom = true;
    return p != NULL ? p : (char *)"";
}

static inline lg_any_value *wl_value(struct wl_builder *b)
{
    lg_any_value *v = wl_alloc(b, sizeof *v);
    if (v != NULL)
        opentelemetry__proto__common__v1__any_value__init(v);
    return v;
}

static inline lg_kv *wl_kv(struct wl_builder *b, const char *key, lg_any_value *v)
{
    lg_kv *kv = wl_alloc(b, sizeof *kv);
    if (kv == NULL || v == NULL)
        return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = (char *)key; /* keys are string literals: they outlive the packing */
    kv->value = v;
    return kv;
}

static inline lg_kv *wl_kv_str(struct wl_builder *b, const char *key, const char *s)
{
    lg_any_value *v = wl_value(b);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = (char *)s;
    }
    return wl_kv(b, key, v);
}

static inline lg_kv *wl_kv_int(struct wl_builder *b, const char *key, int64_t i)
{
    lg_any_value *v = wl_value(b);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = i;
    }
    return wl_kv(b, key, v);
}

static inline lg_kv *wl_kv_double(struct wl_builder *b, const char *key, double d)
{
    lg_any_value *v = wl_value(b);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = d;
    }
    return wl_kv(b, key, v);
}

static inline lg_kv *wl_kv_bool(struct wl_builder *b, const char *key, bool x)
{
    lg_any_value *v = wl_value(b);
    if (v != NULL) {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = x;
    }
    return wl_kv(b, key, v);
}

static inline lg_kv *wl_kv_str_array1(struct wl_builder *b, const char *key, const char *s)
{
    lg_any_value *v = wl_value(b);
    lg_array_value *arr = wl_alloc(b, sizeof *arr);
    lg_any_value **items = wl_alloc(b, sizeof *items);
    lg_any_value *item = wl_value(b);
    if (v == NULL || arr == NULL || items == NULL || item == NULL)
        return NULL;
    opentelemetry__proto__common__v1__array_value__init(arr);
    item->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    item->string_value = (char *)s;
    items[0] = item;
    arr->n_values = 1;
    arr->values = items;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = arr;
    return wl_kv(b, key, v);
}

/** A string made with printf into the arena (ids in URLs and pod names vary per span). */
static inline char *wl_fmt(struct wl_builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline char *wl_fmt(struct wl_builder *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    return wl_strdup(b, tmp);
}

enum wl_span_role { WL_ROOT, WL_DB, WL_INTERNAL, WL_HTTP_CLIENT, WL_LLM };

/** Fills the 8 attributes of a span for its role. */
static inline void wl_span_attrs(struct wl_builder *b, lg_span *s, enum wl_span_role role,
                                 const char *route, const char *method)
{
    struct wl_rng *r = &b->rng;
    lg_kv **a = wl_alloc(b, WL_ATTRS_PER_SPAN * sizeof *a);
    if (a == NULL)
        return;
    switch (role) {
    case WL_ROOT: {
        int64_t status = wl_rand_range(r, 0, 99) < 95 ? 200 : 404;
        a[0] = wl_kv_str(b, "http.method", method);
        a[1] = wl_kv_str(b, "http.route", route);
        a[2] = wl_kv_str(b, "http.scheme", "https");
        a[3] = wl_kv_int(b, "http.status_code", status);
        a[4] = wl_kv_int(b, "net.host.port", 8080);
        a[5] = wl_kv_str(b, "http.user_agent", WL_PICK(r, wl_user_agents));
        a[6] = wl_kv_bool(b, "app.feature_flag.new_checkout", wl_rand(r) & 1);
        a[7] = wl_kv_double(b, "app.request.queue_ms", wl_rand_unit(r) * 20.0);
        break;
    }
    case WL_DB:
        a[0] = wl_kv_str(b, "db.system", WL_PICK(r, wl_db_systems));
        a[1] = wl_kv_str(b, "db.name", "shop");
        a[2] = wl_kv_str(b, "db.operation", WL_PICK(r, wl_db_operations));
        a[3] = wl_kv_str(b, "db.statement", WL_PICK(r, wl_db_statements));
        a[4] = wl_kv_int(b, "net.peer.port", 5432);
        a[5] = wl_kv_int(b, "db.rows_returned", wl_rand_range(r, 0, 500));
        a[6] = wl_kv_bool(b, "db.cache_hit", wl_rand_range(r, 0, 3) == 0);
        a[7] = wl_kv_double(b, "db.pool.wait_ms", wl_rand_unit(r) * 5.0);
        break;
    case WL_INTERNAL:
        a[0] = wl_kv_str(b, "code.function", WL_PICK(r, wl_functions));
        a[1] = wl_kv_str(b, "code.namespace", WL_PICK(r, wl_namespaces));
        a[2] = wl_kv_int(b, "code.lineno", wl_rand_range(r, 10, 2000));
        a[3] = wl_kv_int(b, "thread.id", wl_rand_range(r, 1, 64));
        a[4] = wl_kv_int(b, "app.items.count", wl_rand_range(r, 0, 40));
        a[5] = wl_kv_bool(b, "app.retry", wl_rand_range(r, 0, 19) == 0);
        a[6] = wl_kv_double(b, "app.discount.ratio", wl_rand_unit(r));
        a[7] =
            wl_kv_str(b, "app.tenant.id", wl_fmt(b, "tenant-%04d", (int)wl_rand_range(r, 1, 500)));
        break;
    case WL_HTTP_CLIENT: {
        const char *peer = WL_PICK(r, wl_peers);
        a[0] = wl_kv_str(b, "http.method", "GET");
        a[1] = wl_kv_str(
            b, "http.url",
            wl_fmt(b, "https://%s/v2/items/%u", peer, (unsigned)wl_rand_range(r, 1, 999999)));
        a[2] = wl_kv_int(b, "http.status_code", 200);
        a[3] = wl_kv_str(b, "net.peer.name", peer);
        a[4] = wl_kv_int(b, "net.peer.port", 443);
        a[5] = wl_kv_int(b, "http.resend_count", wl_rand_range(r, 0, 9) == 0 ? 1 : 0);
        a[6] = wl_kv_bool(b, "http.keep_alive", true);
        a[7] = wl_kv_double(b, "http.client.connect_ms", wl_rand_unit(r) * 3.0);
        break;
    }
    case WL_LLM: {
        int64_t input = wl_rand_range(r, 50, 4000);
        a[0] = wl_kv_str(b, "gen_ai.operation.name", "chat");
        a[1] = wl_kv_str(b, "gen_ai.provider.name", "openai");
        a[2] = wl_kv_str(b, "gen_ai.request.model", "gpt-4o");
        a[3] = wl_kv_str(b, "gen_ai.response.model", "gpt-4o-2024-08-06");
        a[4] = wl_kv_int(b, "gen_ai.usage.input_tokens", input);
        a[5] = wl_kv_int(b, "gen_ai.usage.output_tokens", wl_rand_range(r, 5, 800));
        a[6] = wl_kv_str_array1(b, "gen_ai.response.finish_reasons", WL_PICK(r, wl_finish_reasons));
        a[7] = wl_kv_double(b, "gen_ai.request.temperature", 0.7);
        break;
    }
    }
    for (size_t i = 0; i < WL_ATTRS_PER_SPAN; i++)
        if (a[i] == NULL)
            b->oom = true;
    s->attributes = a;
    s->n_attributes = WL_ATTRS_PER_SPAN;
}

/** Marks a span as failed: ERROR status plus the "exception" event SDKs record. */
static inline void wl_span_fail(struct wl_builder *b, lg_span *s)
{
    lg_status *st = wl_alloc(b, sizeof *st);
    lg_span_event *ev = wl_alloc(b, sizeof *ev);
    lg_span_event **evs = wl_alloc(b, sizeof *evs);
    lg_kv **ea = wl_alloc(b, 2 * sizeof *ea);
    if (st == NULL || ev == NULL || evs == NULL || ea == NULL)
        return;
    const char *type = WL_PICK(&b->rng, wl_error_types);
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st->message = wl_fmt(b, "%s: upstream call failed", type);
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->name = (char *)"exception";
    ev->time_unix_nano = s->end_time_unix_nano;
    ea[0] = wl_kv_str(b, "exception.type", type);
    ea[1] = wl_kv_str(b, "exception.message", st->message);
    ev->attributes = ea;
    ev->n_attributes = 2;
    evs[0] = ev;
    s->status = st;
    s->events = evs;
    s->n_events = 1;
}

/** Builds one request of `nspans` spans; NULL on OOM. Tree lives in b->arena. */
static inline lg_traces_req *wl_build_request(struct wl_builder *b, size_t nspans,
                                              size_t service_index, int64_t base_time_ns)
{
    struct wl_rng *r = &b->rng;
    lg_traces_req *req = wl_alloc(b, sizeof *req);
    lg_resource_spans **rss = wl_alloc(b, sizeof *rss);
    lg_resource_spans *rs = wl_alloc(b, sizeof *rs);
    lg_resource *res = wl_alloc(b, sizeof *res);
    lg_scope_spans **sss = wl_alloc(b, sizeof *sss);
    lg_scope_spans *ss = wl_alloc(b, sizeof *ss);
    lg_scope *scope = wl_alloc(b, sizeof *scope);
    lg_span **spans = wl_alloc(b, (nspans ? nspans : 1) * sizeof *spans);
    lg_span *span_store = wl_alloc(b, (nspans ? nspans : 1) * sizeof *span_store);
    uint8_t *ids = wl_alloc(b, (nspans ? nspans : 1) * (WL_TRACE_ID_LEN + WL_SPAN_ID_LEN));
    lg_kv **rattrs = wl_alloc(b, 9 * sizeof *rattrs);
    /* An UNSET status on every span, as the SDKs send it. */
    lg_status *unset = wl_alloc(b, sizeof *unset);
    if (b->oom)
        return NULL;

    const char *service = wl_services[service_index % LG_ARRAY_LEN(wl_services)];
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__resource__v1__resource__init(res);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
    opentelemetry__proto__trace__v1__status__init(unset);

    size_t nr = 0;
    rattrs[nr++] = wl_kv_str(b, "service.name", service);
    rattrs[nr++] = wl_kv_str(b, "service.version", "2.14.1");
    rattrs[nr++] = wl_kv_str(b, "service.namespace", "shop");
    rattrs[nr++] = wl_kv_str(b, "deployment.environment.name", "production");
    rattrs[nr++] = wl_kv_str(b, "telemetry.sdk.name", "opentelemetry");
    rattrs[nr++] = wl_kv_str(b, "telemetry.sdk.language", "python");
    rattrs[nr++] = wl_kv_str(b, "telemetry.sdk.version", "1.27.0");
    rattrs[nr++] = wl_kv_str(b, "k8s.namespace.name", "shop-prod");
    rattrs[nr++] =
        wl_kv_str(b, "k8s.pod.name",
                  wl_fmt(b, "%s-7d9f8c6b5-%05x", service, (unsigned)wl_rand_range(r, 0, 0xfffff)));
    res->attributes = rattrs;
    res->n_attributes = nr;

    scope->name = (char *)"opentelemetry.instrumentation.asgi";
    scope->version = (char *)"0.48b0";
    ss->scope = scope;
    ss->schema_url = (char *)"https://opentelemetry.io/schemas/1.26.0";

    int64_t trace_start = base_time_ns;
    size_t i = 0;
    while (i < nspans) {
        size_t tlen = (size_t)wl_rand_range(r, WL_TRACE_SPANS_MIN, WL_TRACE_SPANS_MAX);
        if (tlen > nspans - i)
            tlen = nspans - i;
        bool error_trace = wl_rand_range(r, 0, 999) < WL_ERROR_TRACE_PERMILLE;
        size_t error_at = i + (size_t)wl_rand_range(r, 0, (int64_t)tlen - 1);
        uint8_t *trace_id = ids + i * (WL_TRACE_ID_LEN + WL_SPAN_ID_LEN);
        wl_rand_id(r, trace_id, WL_TRACE_ID_LEN);
        const char *route = WL_PICK(r, wl_routes);
        const char *method = WL_PICK(r, wl_methods);
        /* A trace that holds an LLM slot lasts seconds, like a chat request; others
         * last milliseconds. */
        bool has_llm = (i % WL_LLM_SPAN_EVERY) + tlen >= WL_LLM_SPAN_EVERY;
        int64_t root_dur = has_llm ? wl_rand_range(r, 500, 6000) * WL_NS_PER_MS
                                   : wl_rand_range(r, 5, 800) * WL_NS_PER_MS;
        trace_start += wl_rand_range(r, 1, 50) * WL_NS_PER_MS;

        for (size_t k = 0; k < tlen; k++, i++) {
            lg_span *s = &span_store[i];
            uint8_t *span_id = ids + i * (WL_TRACE_ID_LEN + WL_SPAN_ID_LEN) + WL_TRACE_ID_LEN;
            opentelemetry__proto__trace__v1__span__init(s);
            wl_rand_id(r, span_id, WL_SPAN_ID_LEN);
            s->trace_id.data = trace_id;
            s->trace_id.len = WL_TRACE_ID_LEN;
            s->span_id.data = span_id;
            s->span_id.len = WL_SPAN_ID_LEN;
            s->flags = 0x101; /* sampled, and the parent's remoteness is known */
            s->status = unset;

            enum wl_span_role role =
                k == 0 ? WL_ROOT : (enum wl_span_role)wl_rand_range(r, WL_DB, WL_HTTP_CLIENT);
            /* The LLM share is exact by position: a root on an LLM slot becomes the LLM
             * call itself (a batch job calling the model directly). */
            if (i % WL_LLM_SPAN_EVERY == WL_LLM_SPAN_EVERY - 1)
                role = WL_LLM;

            int64_t start, dur;
            if (k == 0) {
                start = trace_start;
                dur = root_dur;
            } else {
                /* LLM calls hang off the root and dominate its duration, as in real LLM
                 * apps; other spans nest under any earlier span of the trace. */
                size_t parent =
                    role == WL_LLM ? i - k : i - 1 - (size_t)wl_rand_range(r, 0, (int64_t)k - 1);
                lg_span *p = &span_store[parent];
                s->parent_span_id = p->span_id;
                int64_t pstart = (int64_t)p->start_time_unix_nano;
                int64_t pdur = (int64_t)(p->end_time_unix_nano - p->start_time_unix_nano);
                if (role == WL_LLM) {
                    start = pstart + pdur / 20;
                    dur = pdur * wl_rand_range(r, 40, 90) / 100;
                } else {
                    start = pstart + (int64_t)(wl_rand_unit(r) * (double)pdur / 2);
                    dur = (int64_t)(wl_rand_unit(r) * (double)(pstart + pdur - start));
                }
                if (dur < WL_MIN_SPAN_NS)
                    dur = WL_MIN_SPAN_NS;
            }
            s->start_time_unix_nano = (uint64_t)start;
            s->end_time_unix_nano = (uint64_t)(start + dur);

            switch (role) {
            case WL_ROOT:
                s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
                s->name = wl_fmt(b, "%s %s", method, route);
                break;
            case WL_LLM:
                s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
                s->name = (char *)"chat gpt-4o";
                break;
            case WL_DB:
                s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
                s->name = (char *)WL_PICK(r, wl_db_operations);
                break;
            case WL_HTTP_CLIENT:
                s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
                s->name = (char *)"GET";
                break;
            case WL_INTERNAL:
                s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
                s->name = (char *)WL_PICK(r, wl_functions);
                break;
            }
            wl_span_attrs(b, s, role, route, method);
            if (error_trace && i == error_at)
                wl_span_fail(b, s);
            spans[i] = s;
        }
    }
    ss->spans = spans;
    ss->n_spans = nspans;
    sss[0] = ss;
    rs->resource = res;
    rs->scope_spans = sss;
    rs->n_scope_spans = 1;
    rs->schema_url = (char *)"https://opentelemetry.io/schemas/1.26.0";
    rss[0] = rs;
    req->resource_spans = rss;
    req->n_resource_spans = 1;
    return b->oom ? NULL : req;
}

static inline void wl_pool_free(struct wl_pool *p)
{
    if (p->reqs != NULL)
        for (size_t i = 0; i < p->n; i++)
            free(p->reqs[i].data);
    free(p->reqs);
    memset(p, 0, sizeof *p);
}

/** Builds `n` distinct packed requests. Returns 0 or LG_ENOMEM (err filled). */
static inline int wl_pool_build(struct wl_pool *p, size_t n, const struct wl_opts *o,
                                struct lg_err *err)
{
    size_t nspans = o->spans_per_request ? o->spans_per_request : WL_DEFAULT_SPANS_PER_REQUEST;
    int64_t base = o->base_time_ns ? o->base_time_ns : lg_now_wall_ns();
    memset(p, 0, sizeof *p);
    p->reqs = calloc(n ? n : 1, sizeof *p->reqs);
    if (p->reqs == NULL)
        return lg_err_set(err, LG_ENOMEM, "workload: out of memory for %zu requests", n);
    p->n = n;
    for (size_t i = 0; i < n; i++) {
        struct wl_builder b = {.arena = lg_arena_create(0), .rng = {o->seed * 1000003u + i}};
        if (b.arena == NULL) {
            wl_pool_free(p);
            return lg_err_set(err, LG_ENOMEM, "workload: out of memory (arena)");
        }
        /* Each request covers a later stretch of time, as successive SDK batches do. */
        lg_traces_req *req =
            wl_build_request(&b, nspans, i, base + (int64_t)i * 1000 * WL_NS_PER_MS);
        if (req == NULL) {
            lg_arena_destroy(b.arena);
            wl_pool_free(p);
            return lg_err_set(err, LG_ENOMEM, "workload: out of memory building request %zu", i);
        }
        size_t len = protobuf_c_message_get_packed_size(&req->base);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL) {
            lg_arena_destroy(b.arena);
            wl_pool_free(p);
            return lg_err_set(err, LG_ENOMEM, "workload: out of memory packing request %zu", i);
        }
        protobuf_c_message_pack(&req->base, buf);
        lg_arena_destroy(b.arena);
        p->reqs[i] = (struct wl_request){.data = buf, .len = len, .spans = nspans};
        p->total_bytes += len;
        p->total_spans += nspans;
    }
    return 0;
}

#endif
