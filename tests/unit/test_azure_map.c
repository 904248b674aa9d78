/* tests/unit/test_azure_map.c — the Azure Monitor mapping (exporters/azure_monitor_map.c):
 * OTLP/JSON requests in, envelopes out, checked field by field against what the official
 * exporter @azure/monitor-opentelemetry-exporter 1.0.0-beta.47 produces (its rules, and
 * envelopes it produced, kept with the project's reference material), plus limits, UTF-8-safe
 * truncation, number and duration text, sampleRate, metrics and logs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <yajl/yajl_tree.h>

#include "core/batch.h"
#include "core/otlp_json.h"
#include "exporters/azure_monitor.h"

/* internal helpers of azure_monitor_map.c, tested directly */
size_t lg_azmon_js_number(double v, char *buf);
size_t lg_azmon_duration(int64_t dur_ns, char *buf);
size_t lg_azmon_iso_time(uint64_t unix_ns, char *buf);
size_t lg_azmon_cut_bytes(const char *s, size_t n, size_t max);
size_t lg_azmon_cut_units(const char *s, size_t n, size_t max);
double lg_azmon_sample_rate(const lg_any_value *attr, const char *tracestate);

#define IKEY "00000000-0000-0000-0000-000000000000"
#define SDKV "llmgate:test"

/* ---- helpers ---- */

struct mapped {
    struct lg_azmon_items items;
    yajl_val env[64];
    size_t n;
};

static struct lg_batch *batch_json(enum lg_signal sig, const char *json)
{
    struct lg_batch *b = lg_batch_create(sig, 4096);
    assert_non_null(b);
    ProtobufCMessage *msg = NULL;
    struct lg_err err = {{0}};
    int rc =
        lg_otlp_json_decode(lg_request_descriptor(sig), json, strlen(json), b->arena, &msg, &err);
    if (rc != LG_OK)
        fprintf(stderr, "decode: %s\n", err.msg);
    assert_int_equal(rc, LG_OK);
    b->req.msg = msg;
    b->items = lg_batch_count_items(b);
    return b;
}

/* Envelope i as a NUL-terminated copy, after checking the buffer layout the transport
 * relies on (exporters/azure_monitor.h): back to back, a ',' before and after each. */
static char *item_json(const struct lg_azmon_items *it, size_t i)
{
    const struct lg_azmon_item *e = &it->v[i];
    assert_true(e->off >= 1 && e->off + e->len < it->len);
    assert_int_equal(it->buf[e->off - 1], ',');
    assert_int_equal(it->buf[e->off + e->len], ',');
    if (i + 1 < it->n)
        assert_int_equal(it->v[i + 1].off, e->off + e->len + 1);
    else
        assert_int_equal(it->len, e->off + e->len + 1);
    assert_null(memchr(it->buf + e->off, '\0', e->len));
    char *json = strndup(it->buf + e->off, e->len);
    assert_non_null(json);
    return json;
}

static void map_json_opts(enum lg_signal sig, const char *json, const struct lg_azmon_map_opts *o,
                          struct mapped *out)
{
    memset(out, 0, sizeof *out);
    struct lg_batch *b = batch_json(sig, json);
    assert_int_equal(lg_azmon_map_batch(b, o, &out->items), LG_OK);
    lg_batch_unref(b);
    assert_true(out->items.n <= 64);
    for (size_t i = 0; i < out->items.n; i++) {
        char eb[256];
        char *text = item_json(&out->items, i);
        out->env[i] = yajl_tree_parse(text, eb, sizeof eb);
        if (!out->env[i])
            fprintf(stderr, "bad JSON: %s\n%s\n", eb, text);
        assert_non_null(out->env[i]);
        free(text);
    }
    out->n = out->items.n;
}

static void map_json(enum lg_signal sig, const char *json, struct mapped *out)
{
    struct lg_azmon_map_opts o = {.ikey = IKEY, .sdk_version = SDKV, .no_resource_metric = true};
    map_json_opts(sig, json, &o, out);
}

static void mapped_free(struct mapped *m)
{
    for (size_t i = 0; i < m->n; i++)
        yajl_tree_free(m->env[i]);
    lg_azmon_items_free(&m->items);
}

/* value at a '/'-separated path (keys may hold dots) */
static yajl_val at(yajl_val v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const char *parts[16];
    size_t n = 0;
    for (char *s = strtok(buf, "/"); s && n < 15; s = strtok(NULL, "/"))
        parts[n++] = s;
    parts[n] = NULL;
    return yajl_tree_get(v, parts, yajl_t_any);
}

static const char *str_at(yajl_val v, const char *path)
{
    yajl_val x = at(v, path);
    return x && YAJL_IS_STRING(x) ? YAJL_GET_STRING(x) : NULL;
}

#define ASSERT_STR(env, path, want)                                                                \
    do {                                                                                           \
        const char *got_ = str_at(env, path);                                                      \
        if (!got_ || strcmp(got_, want) != 0)                                                      \
            fail_msg("%s: got %s, want %s", path, got_ ? got_ : "(absent)", want);                 \
    } while (0)
#define ASSERT_ABSENT(env, path) assert_null(at(env, path))
#define ASSERT_NUM(env, path, want)                                                                \
    do {                                                                                           \
        yajl_val x_ = at(env, path);                                                               \
        assert_non_null(x_);                                                                       \
        assert_true(YAJL_IS_NUMBER(x_));                                                           \
        if (YAJL_GET_DOUBLE(x_) != (want))                                                         \
            fail_msg("%s: got %.17g want %.17g", path, YAJL_GET_DOUBLE(x_), (double)(want));       \
    } while (0)
#define ASSERT_BOOL(env, path, want)                                                               \
    do {                                                                                           \
        yajl_val x_ = at(env, path);                                                               \
        assert_non_null(x_);                                                                       \
        assert_true((want) ? YAJL_IS_TRUE(x_) : YAJL_IS_FALSE(x_));                                \
    } while (0)

static size_t nkeys(yajl_val v)
{
    return v && YAJL_IS_OBJECT(v) ? v->u.object.len : 0;
}

#define RES                                                                                        \
    "{\"attributes\":["                                                                            \
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"otlp-gateway-test\"}},"                \
    "{\"key\":\"service.namespace\",\"value\":{\"stringValue\":\"contoso\"}},"                     \
    "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"gw-instance-1\"}},"             \
    "{\"key\":\"service.version\",\"value\":{\"stringValue\":\"1.2.3\"}},"                         \
    "{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"opentelemetry\"}},"              \
    "{\"key\":\"deployment.environment.name\",\"value\":{\"stringValue\":\"dev\"}}]}"

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define T0    "1736942400000000000" /* 2025-01-15T12:00:00Z */

static char *traces(const char *spans)
{
    static char buf[65536];
    snprintf(buf, sizeof buf,
             "{\"resourceSpans\":[{\"resource\":" RES
             ",\"scopeSpans\":[{\"scope\":{\"name\":\"t\"},\"spans\":[%s]}]}]}",
             spans);
    return buf;
}

/* ---- helpers' behaviour ---- */

static void test_js_number(void **state)
{
    (void)state;
    struct {
        double v;
        const char *want;
    } t[] = {
        {0.2, "0.2"},
        {1, "1"},
        {-3, "-3"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1e21, "1e+21"},
        {1e20, "100000000000000000000"},
        {123.456, "123.456"},
        {1e-7, "1e-7"},
        {0.000001, "0.000001"},
        {1.5e-7, "1.5e-7"},
        {2.5e30, "2.5e+30"},
        {-0.0, "0"},
        {25, "25"},
        {0.00025, "0.00025"},
        {12345678901234567890.0, "12345678901234567000"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char b[32];
        lg_azmon_js_number(t[i].v, b);
        if (strcmp(b, t[i].want) != 0)
            fail_msg("%.17g: got %s want %s", t[i].v, b, t[i].want);
    }
}

/* Shortest round trip, checked against printf/strtod for many doubles: short decimals
 * (the fast path's case: prices, ratios, latencies), random bit patterns and values near
 * the fast path's limits. The text must read back exactly, have as few significant digits
 * as the shortest %.*e that reads back, and use JavaScript's notation for its range. */
/* The significant digits of a number's text (no leading or trailing zeros) into d. */
static int sig_digits(const char *t, char *d)
{
    int n = 0;
    bool lead = true;
    for (const char *p = t; *p && *p != 'e'; p++) {
        if (*p < '0' || *p > '9')
            continue;
        if (lead && *p == '0')
            continue;
        lead = false;
        d[n++] = *p;
    }
    while (n > 1 && d[n - 1] == '0')
        n--;
    d[n] = 0;
    return n;
}

static void check_js_number(double v)
{
    char b[40], e[40];
    lg_azmon_js_number(v, b);
    if (strtod(b, NULL) != v)
        fail_msg("%.17g printed as %s does not read back", v, b);
    int want = 17;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) {
            want = prec;
            break;
        }
    }
    /* the digits: those of the shortest %.*e that reads back (the decimal of that length
     * nearest to v, which is also JavaScript's choice among those that read back) */
    char gd[40], wd[40];
    sig_digits(b, gd);
    sig_digits(e, wd);
    if (want == 17 && strtod(e, NULL) != v)
        fail_msg("%.17g: no %%.16e reads back", v);
    if (strcmp(gd, wd) != 0)
        fail_msg("%.17g printed as %s, shortest is %s", v, b, e);
    double a = fabs(v);
    bool expo = strchr(b, 'e') != NULL;
    if (a != 0 && (a >= 1e21 || a < 1e-6) != expo)
        fail_msg("%.17g printed as %s: wrong notation", v, b);
}

static void test_js_number_roundtrip(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        switch (i % 4) {
        case 0: /* up to 15 digits over a power of ten */
            v = (double)(x % 1000000000000000ULL) / pow(10, (double)((x >> 50) % 22));
            break;
        case 1: /* few digits */
            v = (double)(x % 100000) / pow(10, (double)((x >> 40) % 12));
            break;
        case 2: { /* any finite double */
            uint64_t bits = x;
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                continue;
            break;
        }
        default: /* near the fast path's limits */
            v = ((x >> 1) & 1 ? 1e15 : 1e-6) * (1 + ((double)(x % 2001) - 1000) * 1e-12);
        }
        if (x & 1)
            v = -v;
        check_js_number(v);
    }
    static const double edge[] = {1e-6, 1e15, 999999999999999.9, 0.1, 0.7, 1.0 / 3, 2.0 / 3, 5e-324,
                                  1.7976931348623157e308, 123456789012345.6, 0.000001234567890123};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        check_js_number(edge[i]);
}

static void test_duration(void **state)
{
    (void)state;
    struct {
        int64_t ns;
        const char *want;
    } t[] = {
        {1500000000, "00:00:01.500"},     /* captured: Request 1.5 s */
        {1234567890, "00:00:01.2345679"}, /* captured: llm_completion */
        {50250000, "00:00:00.05025"},     /* captured: InProc */
        {500000, "00:00:00.0005"},        /* captured: DB */
        {0, "00:00:00.000"},
        {-5, "00:00:00.000"},
        {61000000000LL, "00:01:01.000"},
        {3723000000000LL, "01:02:03.000"},
        {90061001000000LL, "1.01:01:01.001"},
        {3906250, "00:00:00.0039063"}, /* 1/256 s: an exact tie, toFixed rounds up */
        {1, "00:00:00.000"},           /* 1 ns rounds away at 7 decimals */
        {100, "00:00:00.0000001"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char b[48];
        lg_azmon_duration(t[i].ns, b);
        if (strcmp(b, t[i].want) != 0)
            fail_msg("%lld ns: got %s want %s", (long long)t[i].ns, b, t[i].want);
    }
}

static void test_iso_time(void **state)
{
    (void)state;
    char b[32];
    lg_azmon_iso_time(1736942400000000000ULL, b);
    assert_string_equal(b, "2025-01-15T12:00:00.000Z");
    lg_azmon_iso_time(1736942401310999000ULL, b); /* truncated, not rounded */
    assert_string_equal(b, "2025-01-15T12:00:01.310Z");
    /* as JavaScript computes it: the nanoseconds as a double first (new Date(ns / 1e6)) */
    lg_azmon_iso_time(1736942401310999999ULL, b);
    assert_string_equal(b, "2025-01-15T12:00:01.311Z");
    lg_azmon_iso_time(1709164800123000000ULL, b);
    assert_string_equal(b, "2024-02-29T00:00:00.123Z");
    lg_azmon_iso_time(951868800000000000ULL, b);
    assert_string_equal(b, "2000-03-01T00:00:00.000Z");
    lg_azmon_iso_time(4102444799999000000ULL, b);
    assert_string_equal(b, "2099-12-31T23:59:59.999Z");
    lg_azmon_iso_time(0, b);
    assert_string_equal(b, "1970-01-01T00:00:00.000Z");
}

static void test_cut_utf8(void **state)
{
    (void)state;
    const char *s = "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a b é € 😀 (2+2+3+4 bytes) */
    size_t n = strlen(s);
    assert_int_equal(lg_azmon_cut_bytes(s, n, 100), n);
    assert_int_equal(lg_azmon_cut_bytes(s, n, 3), 2); /* inside é */
    assert_int_equal(lg_azmon_cut_bytes(s, n, 4), 4);
    assert_int_equal(lg_azmon_cut_bytes(s, n, 6), 4);  /* inside € */
    assert_int_equal(lg_azmon_cut_bytes(s, n, 10), 7); /* inside 😀 */
    /* UTF-16 units: a b é € = 4 units, 😀 = 2 */
    assert_int_equal(lg_azmon_cut_units(s, n, 4), 7);
    assert_int_equal(lg_azmon_cut_units(s, n, 5), 7); /* never half a surrogate pair */
    assert_int_equal(lg_azmon_cut_units(s, n, 6), n);
    assert_int_equal(lg_azmon_cut_units(s, n, 1), 1);
}

static void test_sample_rate(void **state)
{
    (void)state;
    lg_any_value v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = 25;
    assert_true(lg_azmon_sample_rate(&v, "ot=th:8") == 25);
    v.int_value = 0; /* falsy: ignored, as the official exporter does */
    assert_true(lg_azmon_sample_rate(&v, NULL) == 100);
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = "12.5";
    assert_true(lg_azmon_sample_rate(&v, NULL) == 12.5);
    assert_true(lg_azmon_sample_rate(NULL, NULL) == 100);
    assert_true(lg_azmon_sample_rate(NULL, "") == 100);
    assert_true(lg_azmon_sample_rate(NULL, "ot=th:8") == 50); /* keep 1/2 */
    assert_true(lg_azmon_sample_rate(NULL, "ot=th:c") == 25); /* keep 1/4 */
    assert_true(lg_azmon_sample_rate(NULL, "ot=th:0") == 100);
    assert_true(lg_azmon_sample_rate(NULL, "vendor=x,ot=rv:abc;th:e") == 12.5);
    assert_true(lg_azmon_sample_rate(NULL, "ot=th:zz") == 100); /* malformed */
    assert_true(lg_azmon_sample_rate(NULL, "xot=th:8") == 100);
}

/* ---- traces ---- */

static const char *SERVER_SPAN =
    "{\"traceId\":\"" TRACE "\",\"spanId\":\"0000000000000001\",\"name\":\"GET /api/chat\","
    "\"kind\":2,\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"1736942401500000000\","
    "\"attributes\":["
    "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
    "{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/api/chat\"}},"
    "{\"key\":\"url.full\",\"value\":{\"stringValue\":\"https://gateway.example.com/api/"
    "chat?session=42\"}},"
    "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}},"
    "{\"key\":\"client.address\",\"value\":{\"stringValue\":\"203.0.113.7\"}},"
    "{\"key\":\"user_agent.original\",\"value\":{\"stringValue\":\"curl/8.5.0\"}},"
    "{\"key\":\"enduser.id\",\"value\":{\"stringValue\":\"alice@example.com\"}},"
    "{\"key\":\"app.tenant\",\"value\":{\"stringValue\":\"contoso-prod\"}}],"
    "\"status\":{}}";

static void test_request_http(void **state)
{
    (void)state;
    struct mapped m;
    map_json(LG_SIGNAL_TRACES, traces(SERVER_SPAN), &m);
    assert_int_equal(m.n, 1);
    yajl_val e = m.env[0];
    ASSERT_NUM(e, "ver", 1);
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Request");
    ASSERT_STR(e, "time", "2025-01-15T12:00:00.000Z");
    ASSERT_NUM(e, "sampleRate", 100);
    ASSERT_STR(e, "iKey", IKEY);
    ASSERT_STR(e, "tags/ai.internal.sdkVersion", SDKV);
    ASSERT_STR(e, "tags/ai.cloud.role", "contoso.otlp-gateway-test");
    ASSERT_STR(e, "tags/ai.cloud.roleInstance", "gw-instance-1");
    ASSERT_STR(e, "tags/ai.application.ver", "1.2.3");
    ASSERT_STR(e, "tags/ai.operation.id", TRACE);
    ASSERT_ABSENT(e, "tags/ai.operation.parentId");
    ASSERT_STR(e, "tags/ai.user.authUserId", "alice@example.com");
    ASSERT_STR(e, "tags/ai.user.userAgent", "curl/8.5.0");
    ASSERT_STR(e, "tags/ai.location.ip", "203.0.113.7");
    ASSERT_STR(e, "tags/ai.operation.name", "GET /api/chat");
    assert_int_equal(nkeys(at(e, "tags")), 9);
    ASSERT_STR(e, "data/baseType", "RequestData");
    ASSERT_NUM(e, "data/baseData/ver", 2);
    ASSERT_STR(e, "data/baseData/id", "0000000000000001");
    ASSERT_STR(e, "data/baseData/name", "GET /api/chat");
    ASSERT_STR(e, "data/baseData/duration", "00:00:01.500");
    ASSERT_BOOL(e, "data/baseData/success", true);
    ASSERT_STR(e, "data/baseData/responseCode", "200");
    ASSERT_STR(e, "data/baseData/url", "https://gateway.example.com/api/chat?session=42");
    ASSERT_STR(e, "data/baseData/properties/app.tenant", "contoso-prod");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 1);
    assert_int_equal(nkeys(at(e, "data/baseData/measurements")), 0);
    assert_non_null(at(e, "data/baseData/measurements"));
    mapped_free(&m);
}

static void test_request_name_rules(void **state)
{
    (void)state;
    struct mapped m;
    /* no route: METHOD + URL path; 500 with status UNSET is a failure; non-HTTP server: name */
    map_json(
        LG_SIGNAL_TRACES,
        traces(
            "{\"traceId\":\"" TRACE "\",\"spanId\":\"0000000000000011\",\"name\":\"x\",\"kind\":2,"
            "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
            "{\"key\":\"http.method\",\"value\":{\"stringValue\":\"POST\"}},"
            "{\"key\":\"http.url\",\"value\":{\"stringValue\":\"http://h:8080/v1/items?q=1#f\"}},"
            "{\"key\":\"http.status_code\",\"value\":{\"intValue\":\"503\"}}]},"
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000012\",\"name\":\"rpc.Service/Do\",\"kind\":2,"
            "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
            "{\"key\":\"rpc.system\",\"value\":{\"stringValue\":\"grpc\"}},"
            "{\"key\":\"rpc.grpc.status_code\",\"value\":{\"intValue\":\"5\"}},"
            "{\"key\":\"network.peer.address\",\"value\":{\"stringValue\":\"10.0.0.9\"}}],"
            "\"status\":{\"code\":2}},"
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000013\",\"name\":\"queue receive\",\"kind\":5,"
            "\"parentSpanId\":\"0000000000000001\","
            "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0
            "\",\"status\":{\"code\":1}}"),
        &m);
    assert_int_equal(m.n, 3);
    ASSERT_STR(m.env[0], "data/baseData/name", "POST /v1/items");
    ASSERT_STR(m.env[0], "tags/ai.operation.name", "POST /v1/items");
    ASSERT_BOOL(m.env[0], "data/baseData/success", false);
    ASSERT_STR(m.env[0], "data/baseData/responseCode", "503");
    ASSERT_STR(m.env[0], "data/baseData/url", "http://h:8080/v1/items?q=1#f");
    assert_int_equal(nkeys(at(m.env[0], "data/baseData/properties")), 0);
    ASSERT_STR(m.env[1], "data/baseData/name", "rpc.Service/Do");
    ASSERT_STR(m.env[1], "data/baseData/responseCode", "5");
    ASSERT_BOOL(m.env[1], "data/baseData/success", false);
    ASSERT_STR(m.env[1], "tags/ai.location.ip", "10.0.0.9");
    ASSERT_ABSENT(m.env[1], "data/baseData/url");
    /* CONSUMER -> Request; the official exporter leaves name out, we keep the span name */
    ASSERT_STR(m.env[2], "name", "Microsoft.ApplicationInsights.Request");
    ASSERT_STR(m.env[2], "data/baseData/name", "queue receive");
    ASSERT_ABSENT(m.env[2], "tags/ai.operation.name");
    ASSERT_STR(m.env[2], "tags/ai.operation.parentId", "0000000000000001");
    ASSERT_BOOL(m.env[2], "data/baseData/success", true);
    ASSERT_STR(m.env[2], "data/baseData/responseCode", "0");
    mapped_free(&m);
}

static void test_dependencies(void **state)
{
    (void)state;
    struct mapped m;
    map_json(
        LG_SIGNAL_TRACES,
        traces(
            /* HTTP client */
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000021\",\"parentSpanId\":\"0000000000000001\","
            "\"name\":\"GET\",\"kind\":3,\"startTimeUnixNano\":\"" T0
            "\",\"endTimeUnixNano\":\"1736942400120000000\","
            "\"attributes\":["
            "{\"key\":\"http.request.method\",\"value\":{\"stringValue\":\"GET\"}},"
            "{\"key\":\"url.full\",\"value\":{\"stringValue\":\"https://api.example.com:443/v1/"
            "models?x=1\"}},"
            "{\"key\":\"server.address\",\"value\":{\"stringValue\":\"api.example.com\"}},"
            "{\"key\":\"server.port\",\"value\":{\"intValue\":\"443\"}},"
            "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"404\"}},"
            "{\"key\":\"retry\",\"value\":{\"boolValue\":true}}]},"
            /* DB */
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000022\",\"parentSpanId\":\"0000000000000001\","
            "\"name\":\"SELECT orders\",\"kind\":3,\"startTimeUnixNano\":\"" T0
            "\",\"endTimeUnixNano\":\"1736942400000500000\","
            "\"attributes\":["
            "{\"key\":\"db.system.name\",\"value\":{\"stringValue\":\"postgresql\"}},"
            "{\"key\":\"db.namespace\",\"value\":{\"stringValue\":\"shop\"}},"
            "{\"key\":\"db.query.text\",\"value\":{\"stringValue\":\"SELECT * FROM orders WHERE id "
            "= $1\"}},"
            "{\"key\":\"server.address\",\"value\":{\"stringValue\":\"pg.internal\"}},"
            "{\"key\":\"server.port\",\"value\":{\"intValue\":\"5432\"}}],\"status\":{\"code\":1}},"
            /* SQL family, no target: db name */
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000023\",\"parentSpanId\":\"0000000000000001\","
            "\"name\":\"q\",\"kind\":3,\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0
            "\","
            "\"attributes\":["
            "{\"key\":\"db.system\",\"value\":{\"stringValue\":\"mssql\"}},"
            "{\"key\":\"db.name\",\"value\":{\"stringValue\":\"crm\"}},"
            "{\"key\":\"db.operation\",\"value\":{\"stringValue\":\"SELECT\"}}]},"
            /* gRPC client */
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000024\",\"parentSpanId\":\"0000000000000001\","
            "\"name\":\"svc/Get\",\"kind\":3,\"startTimeUnixNano\":\"" T0
            "\",\"endTimeUnixNano\":\"" T0 "\","
            "\"attributes\":["
            "{\"key\":\"rpc.system\",\"value\":{\"stringValue\":\"grpc\"}},"
            "{\"key\":\"rpc.grpc.status_code\",\"value\":{\"intValue\":\"14\"}},"
            "{\"key\":\"server.address\",\"value\":{\"stringValue\":\"inventory\"}}],\"status\":{"
            "\"code\":2}},"
            /* producer */
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000025\",\"parentSpanId\":\"0000000000000001\","
            "\"name\":\"orders publish\",\"kind\":4,\"startTimeUnixNano\":\"" T0
            "\",\"endTimeUnixNano\":\"" T0 "\","
            "\"attributes\":[{\"key\":\"messaging.system\",\"value\":{\"stringValue\":\"kafka\"}}]}"
            ","
            /* internal with and without a parent */
            "{\"traceId\":\"" TRACE
            "\",\"spanId\":\"0000000000000026\",\"parentSpanId\":\"0000000000000001\","
            "\"name\":\"step\",\"kind\":1,\"startTimeUnixNano\":\"" T0
            "\",\"endTimeUnixNano\":\"" T0 "\"},"
            "{\"traceId\":\"" TRACE "\",\"spanId\":\"0000000000000027\","
            "\"name\":\"root\",\"kind\":1,\"startTimeUnixNano\":\"" T0
            "\",\"endTimeUnixNano\":\"" T0 "\"}"),
        &m);
    assert_int_equal(m.n, 7);
    yajl_val e = m.env[0];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.RemoteDependency");
    ASSERT_STR(e, "tags/ai.operation.parentId", "0000000000000001");
    ASSERT_ABSENT(e, "tags/ai.operation.name");
    ASSERT_STR(e, "data/baseType", "RemoteDependencyData");
    ASSERT_STR(e, "data/baseData/name", "GET /v1/models");
    ASSERT_STR(e, "data/baseData/type", "Http");
    ASSERT_STR(e, "data/baseData/data", "https://api.example.com:443/v1/models?x=1");
    ASSERT_STR(e, "data/baseData/target", "api.example.com");
    ASSERT_STR(e, "data/baseData/resultCode", "404");
    ASSERT_BOOL(e, "data/baseData/success", true); /* only status ERROR fails a dependency */
    ASSERT_STR(e, "data/baseData/duration", "00:00:00.120");
    ASSERT_STR(e, "data/baseData/properties/retry", "true");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 1);

    e = m.env[1];
    ASSERT_STR(e, "data/baseData/type", "postgresql");
    ASSERT_STR(e, "data/baseData/target", "pg.internal|shop");
    ASSERT_STR(e, "data/baseData/data", "SELECT * FROM orders WHERE id = $1");
    ASSERT_STR(e, "data/baseData/resultCode", "0");
    ASSERT_STR(e, "data/baseData/duration", "00:00:00.0005");
    /* DB spans keep server.address/port as properties, drop the db.* fields they used */
    ASSERT_STR(e, "data/baseData/properties/server.address", "pg.internal");
    ASSERT_STR(e, "data/baseData/properties/server.port", "5432");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 2);

    e = m.env[2];
    ASSERT_STR(e, "data/baseData/type", "SQL");
    ASSERT_STR(e, "data/baseData/target", "crm");
    ASSERT_STR(e, "data/baseData/data", "SELECT");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 0);

    e = m.env[3];
    ASSERT_STR(e, "data/baseData/type", "GRPC");
    ASSERT_STR(e, "data/baseData/target", "inventory");
    ASSERT_STR(e, "data/baseData/resultCode", "14");
    ASSERT_BOOL(e, "data/baseData/success", false);

    e = m.env[4];
    ASSERT_STR(e, "data/baseData/type", "Queue Message");
    ASSERT_ABSENT(e, "data/baseData/target");
    ASSERT_STR(e, "data/baseData/properties/messaging.system", "kafka");

    ASSERT_STR(m.env[5], "data/baseData/type", "InProc");
    ASSERT_STR(m.env[6], "data/baseData/type", "Dependency");
    ASSERT_ABSENT(m.env[6], "tags/ai.operation.parentId");
    mapped_free(&m);
}

static const char *LLM_SPAN =
    "{\"traceId\":\"" TRACE
    "\",\"spanId\":\"0000000000000002\",\"parentSpanId\":\"0000000000000001\","
    "\"name\":\"llm_completion\",\"kind\":3,\"startTimeUnixNano\":\"1736942400005000000\","
    "\"endTimeUnixNano\":\"1736942401239567890\",\"attributes\":["
    "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
    "{\"key\":\"gen_ai.operation.name\",\"value\":{\"stringValue\":\"chat\"}},"
    "{\"key\":\"gen_ai.request.model\",\"value\":{\"stringValue\":\"gpt-4o\"}},"
    "{\"key\":\"gen_ai.request.temperature\",\"value\":{\"doubleValue\":0.2}},"
    "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"12\"}},"
    "{\"key\":\"gen_ai.usage.output_tokens\",\"value\":{\"intValue\":\"30\"}},"
    "{\"key\":\"gen_ai.usage.cost\",\"value\":{\"doubleValue\":0.000345}},"
    "{\"key\":\"microsoft.sample_rate\",\"value\":{\"intValue\":\"25\"}},"
    "{\"key\":\"error.type\",\"value\":{\"stringValue\":\"timeout\"}}],"
    "\"links\":[{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\",\"spanId\":\"b7ad6b7169203331\"}]"
    ","
    "\"status\":{\"code\":2}}";

static void test_genai_and_links(void **state)
{
    (void)state;
    struct mapped m;
    struct lg_azmon_map_opts o = {
        .ikey = IKEY, .sdk_version = SDKV, .no_resource_metric = true, .llm_measurements = true};
    map_json_opts(LG_SIGNAL_TRACES, traces(LLM_SPAN), &o, &m);
    assert_int_equal(m.n, 1);
    yajl_val e = m.env[0];
    ASSERT_NUM(e, "sampleRate", 25);
    ASSERT_STR(e, "time", "2025-01-15T12:00:00.005Z");
    ASSERT_STR(e, "data/baseData/name", "llm_completion");
    ASSERT_STR(e, "data/baseData/type", "openai"); /* documented: the provider */
    ASSERT_STR(e, "data/baseData/duration", "00:00:01.2345679");
    ASSERT_BOOL(e, "data/baseData/success", false);
    ASSERT_STR(e, "data/baseData/properties/gen_ai.request.temperature", "0.2");
    ASSERT_STR(e, "data/baseData/properties/gen_ai.usage.input_tokens", "12");
    ASSERT_STR(e, "data/baseData/properties/gen_ai.usage.cost", "0.000345");
    ASSERT_STR(
        e, "data/baseData/properties/_MS.links",
        "[{\"operation_Id\":\"0af7651916cd43dd8448eb211c80319c\",\"id\":\"b7ad6b7169203331\"}]");
    ASSERT_ABSENT(e, "data/baseData/properties/microsoft.sample_rate");
    ASSERT_ABSENT(e, "data/baseData/properties/error.type");
    ASSERT_NUM(e, "data/baseData/measurements/gen_ai.usage.cost", 0.000345);
    ASSERT_NUM(e, "data/baseData/measurements/gen_ai.usage.input_tokens", 12);
    ASSERT_NUM(e, "data/baseData/measurements/gen_ai.usage.output_tokens", 30);
    ASSERT_NUM(e, "data/baseData/measurements/gen_ai.usage.total_tokens", 42);
    mapped_free(&m);

    /* without the option: no measurements */
    o.llm_measurements = false;
    map_json_opts(LG_SIGNAL_TRACES, traces(LLM_SPAN), &o, &m);
    assert_int_equal(nkeys(at(m.env[0], "data/baseData/measurements")), 0);
    mapped_free(&m);
}

static void test_events(void **state)
{
    (void)state;
    struct mapped m;
    map_json(
        LG_SIGNAL_TRACES,
        traces("{\"traceId\":\"" TRACE
               "\",\"spanId\":\"0000000000000003\",\"parentSpanId\":\"0000000000000001\","
               "\"name\":\"process_request\",\"kind\":1,\"traceState\":\"ot=th:c\","
               "\"startTimeUnixNano\":\"1736942401300000000\",\"endTimeUnixNano\":"
               "\"1736942401350250000\","
               "\"attributes\":[{\"key\":\"session.id\",\"value\":{\"stringValue\":\"s-1\"}}],"
               "\"events\":["
               "{\"timeUnixNano\":\"1736942401310000000\",\"name\":\"exception\",\"attributes\":["
               "{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"TypeError\"}},"
               "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"boom\"}},"
               "{\"key\":\"exception.stacktrace\",\"value\":{\"stringValue\":\"TypeError: boom\\n  "
               "  at f\"}},"
               "{\"key\":\"exception.escaped\",\"value\":{\"boolValue\":false}}]},"
               "{\"timeUnixNano\":\"1736942401320000000\",\"name\":\"cache_miss\",\"attributes\":["
               "{\"key\":\"cache.key\",\"value\":{\"stringValue\":\"user:42\"}},"
               "{\"key\":\"cache.tier\",\"value\":{\"intValue\":\"2\"}},"
               "{\"key\":\"tags\",\"value\":{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},{"
               "\"intValue\":\"1\"},{\"doubleValue\":1.5}]}}}]},"
               "{\"timeUnixNano\":\"1736942401330000000\",\"name\":\"exception\"}]}"),
        &m);
    assert_int_equal(m.n, 4);
    ASSERT_NUM(m.env[0], "sampleRate", 25); /* from the tracestate threshold */
    yajl_val e = m.env[1];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Exception");
    ASSERT_STR(e, "time", "2025-01-15T12:00:01.310Z");
    ASSERT_NUM(e, "sampleRate", 25);
    ASSERT_STR(e, "tags/ai.operation.id", TRACE);
    ASSERT_STR(e, "tags/ai.operation.parentId", "0000000000000003");
    ASSERT_STR(e, "tags/ai.session.id", "s-1");
    ASSERT_STR(e, "data/baseType", "ExceptionData");
    yajl_val ex = at(e, "data/baseData/exceptions");
    assert_true(YAJL_IS_ARRAY(ex) && ex->u.array.len == 1);
    ASSERT_STR(ex->u.array.values[0], "typeName", "TypeError");
    ASSERT_STR(ex->u.array.values[0], "message", "boom");
    ASSERT_BOOL(ex->u.array.values[0], "hasFullStack", true);
    ASSERT_STR(ex->u.array.values[0], "stack", "TypeError: boom\n    at f");
    ASSERT_STR(e, "data/baseData/properties/exception.escaped", "false");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 1);
    ASSERT_ABSENT(e, "data/baseData/measurements");

    e = m.env[2];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Message");
    ASSERT_STR(e, "data/baseData/message", "cache_miss");
    ASSERT_STR(e, "data/baseData/properties/cache.key", "user:42");
    ASSERT_STR(e, "data/baseData/properties/cache.tier", "2");
    ASSERT_STR(e, "data/baseData/properties/tags", "[\"a\",1,1.5]");

    e = m.env[3]; /* an exception event without attributes */
    ex = at(e, "data/baseData/exceptions");
    ASSERT_STR(ex->u.array.values[0], "typeName", "");
    ASSERT_STR(ex->u.array.values[0], "message", "Exception");
    ASSERT_BOOL(ex->u.array.values[0], "hasFullStack", false);
    mapped_free(&m);
}

static void test_limits_and_utf8(void **state)
{
    (void)state;
    /* a 9000-byte value of 3-byte characters is cut to 8190 bytes (8192 would split one);
     * a 200-char key to 150; a name of 1100 'n' to 1024; invalid UTF-8 becomes U+FFFD */
    size_t cap = 400000;
    char *spans = malloc(cap);
    char *val = malloc(9100), *key = malloc(210), *name = malloc(1200), *big = malloc(300010);
    size_t o = 0;
    for (int i = 0; i < 3000; i++) {
        memcpy(val + o, "\xE2\x82\xAC", 3);
        o += 3;
    }
    val[o] = 0;
    memset(key, 'k', 200);
    key[200] = 0;
    memset(name, 'n', 1100);
    name[1100] = 0;
    memset(big, 'm', 300000);
    big[300000] = 0;
    snprintf(spans, cap,
             "{\"traceId\":\"" TRACE
             "\",\"spanId\":\"0000000000000031\",\"name\":\"%s\",\"kind\":3,"
             "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
             "{\"key\":\"v\",\"value\":{\"stringValue\":\"%s\"}},"
             "{\"key\":\"%s\",\"value\":{\"stringValue\":\"x\"}},"
             "{\"key\":\"gen_ai.input.messages\",\"value\":{\"stringValue\":\"%s\"}},"
             "{\"key\":\"other.big\",\"value\":{\"stringValue\":\"%.9000s\"}}]}",
             name, val, key, big, big);
    char *doc = malloc(cap + 1000);
    snprintf(doc, cap + 1000,
             "{\"resourceSpans\":[{\"resource\":" RES ",\"scopeSpans\":[{\"spans\":[%s]}]}]}",
             spans);
    struct mapped m;
    map_json(LG_SIGNAL_TRACES, doc, &m);
    assert_int_equal(m.n, 1);
    yajl_val e = m.env[0];
    assert_int_equal(strlen(str_at(e, "data/baseData/name")), 1024);
    assert_int_equal(strlen(str_at(e, "data/baseData/properties/v")), 8190);
    char k150[151];
    memset(k150, 'k', 150);
    k150[150] = 0;
    char path[200];
    snprintf(path, sizeof path, "data/baseData/properties/%s", k150);
    ASSERT_STR(e, path, "x");
    assert_int_equal(strlen(str_at(e, "data/baseData/properties/gen_ai.input.messages")), 262144);
    assert_int_equal(strlen(str_at(e, "data/baseData/properties/other.big")), 8192);
    mapped_free(&m);
    free(spans);
    free(val);
    free(key);
    free(name);
    free(big);
    free(doc);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    /* protobuf strings are not checked for UTF-8: build the span by hand */
    struct lg_batch *b = batch_json(
        LG_SIGNAL_TRACES,
        traces("{\"traceId\":\"" TRACE
               "\",\"spanId\":\"0000000000000041\",\"name\":\"n\",\"kind\":1,"
               "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
               "{\"key\":\"bad\",\"value\":{\"stringValue\":\"ab\"}}]}"));
    lg_span *s = b->req.traces->resource_spans[0]->scope_spans[0]->spans[0];
    s->attributes[0]->value->string_value = "a\xFF"
                                            "b\xC3";
    s->name = "x\xE2\x82";
    struct lg_azmon_items items = {0};
    struct lg_azmon_map_opts o = {.ikey = IKEY, .no_resource_metric = true};
    assert_int_equal(lg_azmon_map_batch(b, &o, &items), LG_OK);
    assert_int_equal(items.n, 1);
    char eb[128];
    char *json = item_json(&items, 0);
    yajl_val e = yajl_tree_parse(json, eb, sizeof eb);
    free(json);
    assert_non_null(e);
    ASSERT_STR(e, "data/baseData/properties/bad",
               "a\xEF\xBF\xBD"
               "b\xEF\xBF\xBD");
    ASSERT_STR(e, "data/baseData/name", "x\xEF\xBF\xBD\xEF\xBF\xBD");
    yajl_tree_free(e);
    lg_azmon_items_free(&items);
    lg_batch_unref(b);
}

/* The JSON writer's string escaping: every control character, quotes and backslashes at
 * every position of the 8-byte words it scans, read back exactly by a JSON parser; and an
 * attribute nested deeper than the writer's depth limit still makes valid JSON. */
static void test_string_escapes(void **state)
{
    (void)state;
    struct lg_batch *b = batch_json(
        LG_SIGNAL_TRACES,
        traces("{\"traceId\":\"" TRACE
               "\",\"spanId\":\"0000000000000042\",\"name\":\"n\",\"kind\":1,"
               "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
               "{\"key\":\"s\",\"value\":{\"stringValue\":\"x\"}},"
               "{\"key\":\"deep\",\"value\":{\"stringValue\":\"x\"}}]}"));
    lg_span *s = b->req.traces->resource_spans[0]->scope_spans[0]->spans[0];
    /* text: for each special byte c, c at offsets 0..9 within a run of plain bytes, then
     * UTF-8 and DEL (not escaped) */
    static char text[4096];
    size_t o = 0;
    const char specials[] = "\"\\\b\f\n\r\t\x01\x1f\x7f";
    for (size_t k = 0; k < sizeof specials - 1; k++)
        for (size_t pos = 0; pos < 10; pos++) {
            for (size_t i = 0; i < pos; i++)
                text[o++] = (char)('a' + i);
            text[o++] = specials[k];
            memcpy(text + o, "\xC3\xA9z", 3);
            o += 3;
        }
    text[o] = 0;
    s->attributes[0]->value->string_value = text;
    /* deep: arrays nested 200 levels (the writer stops at 128) */
    enum { DEEP = 200 };
    static lg_any_value vals[DEEP + 1];
    static Opentelemetry__Proto__Common__V1__ArrayValue arrs[DEEP];
    static lg_any_value *slots[DEEP];
    for (size_t i = 0; i <= DEEP; i++) {
        opentelemetry__proto__common__v1__any_value__init(&vals[i]);
        if (i < DEEP) {
            opentelemetry__proto__common__v1__array_value__init(&arrs[i]);
            slots[i] = &vals[i + 1];
            arrs[i].n_values = 1;
            arrs[i].values = &slots[i];
            vals[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            vals[i].array_value = &arrs[i];
        } else {
            vals[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            vals[i].int_value = 7;
        }
    }
    s->attributes[1]->value = &vals[0];
    struct lg_azmon_items items = {0};
    struct lg_azmon_map_opts opts = {.ikey = IKEY, .no_resource_metric = true};
    assert_int_equal(lg_azmon_map_batch(b, &opts, &items), LG_OK);
    assert_int_equal(items.n, 1);
    char *json = item_json(&items, 0);
    /* escapes as yajl wrote them: short forms, \u00xx lowercase for the rest */
    assert_non_null(strstr(json, "\\u0001"));
    assert_non_null(strstr(json, "\\u001f"));
    assert_non_null(strstr(json, "\\b"));
    assert_non_null(strstr(json, "\\\""));
    assert_non_null(strstr(json, "\x7f"));
    char eb[256];
    yajl_val e = yajl_tree_parse(json, eb, sizeof eb);
    if (!e)
        fprintf(stderr, "bad JSON: %s\n", eb);
    assert_non_null(e);
    ASSERT_STR(e, "data/baseData/properties/s", text);
    yajl_val deep = at(e, "data/baseData/properties/deep");
    assert_true(deep && YAJL_IS_STRING(deep));
    /* the text is itself JSON: 128 levels of arrays (the innermost value null) */
    yajl_val d = yajl_tree_parse(YAJL_GET_STRING(deep), eb, sizeof eb);
    assert_non_null(d);
    int levels = 0;
    yajl_val cur = d;
    while (YAJL_IS_ARRAY(cur) && cur->u.array.len == 1) {
        levels++;
        cur = cur->u.array.values[0];
    }
    assert_int_equal(levels, 128);
    assert_true(YAJL_IS_NULL(cur));
    yajl_tree_free(d);
    yajl_tree_free(e);
    free(json);
    lg_azmon_items_free(&items);
    lg_batch_unref(b);
}

static void test_resource_metric(void **state)
{
    (void)state;
    struct mapped m;
    struct lg_azmon_map_opts o = {.ikey = IKEY, .sdk_version = SDKV};
    map_json_opts(LG_SIGNAL_TRACES, traces(SERVER_SPAN), &o, &m);
    assert_int_equal(m.n, 2);
    yajl_val e = m.env[0];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Metric");
    ASSERT_STR(e, "data/baseType", "MetricData");
    yajl_val mt = at(e, "data/baseData/metrics");
    assert_true(YAJL_IS_ARRAY(mt) && mt->u.array.len == 1);
    ASSERT_STR(mt->u.array.values[0], "name", "_OTELRESOURCE_");
    ASSERT_NUM(mt->u.array.values[0], "value", 1);
    ASSERT_STR(e, "data/baseData/properties/service.name", "otlp-gateway-test");
    ASSERT_STR(e, "data/baseData/properties/deployment.environment.name", "dev");
    ASSERT_ABSENT(e, "data/baseData/properties/telemetry.sdk.name");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 5);
    ASSERT_STR(e, "tags/ai.cloud.role", "contoso.otlp-gateway-test");
    ASSERT_ABSENT(e, "tags/ai.operation.id");
    mapped_free(&m);
}

static void test_role_fallbacks(void **state)
{
    (void)state;
    struct mapped m;
    map_json(
        LG_SIGNAL_TRACES,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"unknown_service:node\"}},"
        "{\"key\":\"k8s.deployment.name\",\"value\":{\"stringValue\":\"web\"}},"
        "{\"key\":\"k8s.pod.name\",\"value\":{\"stringValue\":\"web-1\"}}]},"
        "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TRACE "\",\"spanId\":\"0000000000000051\","
        "\"name\":\"s\",\"kind\":1,\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0
        "\"}]}]},"
        "{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"api\"}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"node-7\"}}]},"
        "\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TRACE "\",\"spanId\":\"0000000000000052\","
        "\"name\":\"s\",\"kind\":1,\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0
        "\"}]}]}]}",
        &m);
    assert_int_equal(m.n, 2);
    ASSERT_STR(m.env[0], "tags/ai.cloud.role", "web");
    ASSERT_STR(m.env[0], "tags/ai.cloud.roleInstance", "web-1");
    ASSERT_STR(m.env[1], "tags/ai.cloud.role", "api");
    ASSERT_STR(m.env[1], "tags/ai.cloud.roleInstance", "node-7");
    ASSERT_ABSENT(m.env[1], "tags/ai.application.ver");
    mapped_free(&m);
}

/* ---- metrics ---- */

static void test_metrics(void **state)
{
    (void)state;
    struct mapped m;
    map_json(
        LG_SIGNAL_METRICS,
        "{\"resourceMetrics\":[{\"resource\":" RES ",\"scopeMetrics\":[{\"metrics\":["
        "{\"name\":\"llm.requests\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,"
        "\"dataPoints\":[{\"timeUnixNano\":\"" T0 "\",\"asInt\":\"7\",\"attributes\":["
        "{\"key\":\"model\",\"value\":{\"stringValue\":\"gpt-4o\"}}]}]}},"
        "{\"name\":\"queue.depth\",\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"" T0
        "\",\"asDouble\":0.5}]}},"
        "{\"name\":\"llm.latency\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":["
        "{\"timeUnixNano\":\"" T0 "\",\"count\":\"4\",\"sum\":10.5,\"min\":0.5,\"max\":6,"
        "\"bucketCounts\":[\"1\",\"3\"],\"explicitBounds\":[1]},"
        "{\"timeUnixNano\":\"" T0 "\",\"count\":\"0\"}]}}]}]}]}",
        &m);
    assert_int_equal(m.n, 4);
    yajl_val e = m.env[0];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Metric");
    ASSERT_STR(e, "time", "2025-01-15T12:00:00.000Z");
    ASSERT_NUM(e, "sampleRate", 100);
    ASSERT_STR(e, "tags/ai.cloud.role", "contoso.otlp-gateway-test");
    ASSERT_STR(e, "data/baseType", "MetricData");
    yajl_val mt = at(e, "data/baseData/metrics")->u.array.values[0];
    ASSERT_STR(mt, "name", "llm.requests");
    ASSERT_STR(mt, "kind", "Aggregation");
    ASSERT_NUM(mt, "value", 7);
    ASSERT_NUM(mt, "count", 1);
    ASSERT_ABSENT(mt, "min");
    ASSERT_STR(e, "data/baseData/properties/model", "gpt-4o");
    mt = at(m.env[1], "data/baseData/metrics")->u.array.values[0];
    ASSERT_NUM(mt, "value", 0.5);
    mt = at(m.env[2], "data/baseData/metrics")->u.array.values[0];
    ASSERT_NUM(mt, "value", 10.5);
    ASSERT_NUM(mt, "count", 4);
    ASSERT_NUM(mt, "min", 0.5);
    ASSERT_NUM(mt, "max", 6);
    mt = at(m.env[3], "data/baseData/metrics")->u.array.values[0];
    ASSERT_NUM(mt, "value", 0);
    ASSERT_NUM(mt, "count", 0);
    ASSERT_ABSENT(mt, "max");
    mapped_free(&m);
}

/* ---- logs ---- */

static void test_logs(void **state)
{
    (void)state;
    struct mapped m;
    map_json(
        LG_SIGNAL_LOGS,
        "{\"resourceLogs\":[{\"resource\":" RES ",\"scopeLogs\":[{\"logRecords\":["
        "{\"timeUnixNano\":\"" T0 "\",\"severityNumber\":9,\"body\":{\"stringValue\":\"hello\"},"
        "\"traceId\":\"" TRACE "\",\"spanId\":\"0000000000000001\",\"attributes\":["
        "{\"key\":\"user\",\"value\":{\"stringValue\":\"bob\"}},"
        "{\"key\":\"microsoft.foo\",\"value\":{\"stringValue\":\"x\"}},"
        "{\"key\":\"enduser.id\",\"value\":{\"stringValue\":\"bob@x\"}}]},"
        "{\"observedTimeUnixNano\":\"" T0 "\",\"severityNumber\":17,\"attributes\":["
        "{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"ValueError\"}},"
        "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"bad\"}},"
        "{\"key\":\"exception.stacktrace\",\"value\":{\"stringValue\":\"Traceback\"}}]},"
        "{\"timeUnixNano\":\"" T0 "\",\"severityNumber\":14,"
        "\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}}]}}},"
        "{\"timeUnixNano\":\"" T0 "\",\"severityNumber\":0},"
        "{\"timeUnixNano\":\"" T0 "\",\"attributes\":["
        "{\"key\":\"microsoft.custom_event.name\",\"value\":{\"stringValue\":\"signup\"}},"
        "{\"key\":\"microsoft.custom_measurements\",\"value\":{\"stringValue\":\"{\\\"n\\\":3,"
        "\\\"s\\\":\\\"x\\\"}\"}}]}"
        "]}]}]}",
        &m);
    assert_int_equal(m.n, 5);
    yajl_val e = m.env[0];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Message");
    ASSERT_STR(e, "data/baseType", "MessageData");
    ASSERT_STR(e, "data/baseData/message", "hello");
    ASSERT_STR(e, "data/baseData/severityLevel", "Information");
    ASSERT_STR(e, "tags/ai.operation.id", TRACE);
    ASSERT_STR(e, "tags/ai.operation.parentId", "0000000000000001");
    ASSERT_STR(e, "tags/ai.user.authUserId", "bob@x");
    ASSERT_STR(e, "data/baseData/properties/user", "bob");
    assert_int_equal(nkeys(at(e, "data/baseData/properties")), 1);
    e = m.env[1];
    ASSERT_STR(e, "name", "Microsoft.ApplicationInsights.Exception");
    ASSERT_STR(e, "data/baseData/severityLevel", "Error");
    yajl_val ex = at(e, "data/baseData/exceptions")->u.array.values[0];
    ASSERT_STR(ex, "typeName", "ValueError");
    ASSERT_STR(ex, "message", "bad");
    ASSERT_STR(ex, "stack", "Traceback");
    ASSERT_BOOL(ex, "hasFullStack", true);
    ASSERT_STR(m.env[2], "data/baseData/message", "{\"a\":1}");
    ASSERT_STR(m.env[2], "data/baseData/severityLevel", "Warning");
    ASSERT_STR(m.env[3], "data/baseData/message", "n/a");
    ASSERT_ABSENT(m.env[3], "data/baseData/severityLevel");
    ASSERT_STR(m.env[4], "name", "Microsoft.ApplicationInsights.Event");
    ASSERT_STR(m.env[4], "data/baseData/name", "signup");
    ASSERT_NUM(m.env[4], "data/baseData/measurements/n", 3);
    ASSERT_ABSENT(m.env[4], "data/baseData/measurements/s");
    mapped_free(&m);
}

static void test_custom_measurements_and_az(void **state)
{
    (void)state;
    struct mapped m;
    map_json(
        LG_SIGNAL_TRACES,
        traces("{\"traceId\":\"" TRACE
               "\",\"spanId\":\"0000000000000061\",\"name\":\"EventHubs.send\",\"kind\":3,"
               "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
               "{\"key\":\"az.namespace\",\"value\":{\"stringValue\":\"Microsoft.EventHub\"}},"
               "{\"key\":\"net.peer.name\",\"value\":{\"stringValue\":\"sb://"
               "ns.servicebus.windows.net/\"}},"
               "{\"key\":\"message_bus.destination\",\"value\":{\"stringValue\":\"hub1\"}},"
               "{\"key\":\"microsoft.custom_measurements\",\"value\":{\"stringValue\":\"{"
               "\\\"score\\\":0.5,\\\"bad\\\":\\\"x\\\"}\"}}],"
               "\"events\":[{\"timeUnixNano\":\"" T0 "\",\"name\":\"e1\",\"attributes\":["
               "{\"key\":\"microsoft.custom_measurements\",\"value\":{\"stringValue\":\"{\\\"n\\\":"
               "2}\"}}]},"
               "{\"timeUnixNano\":\"" T0 "\",\"name\":\"e2\",\"attributes\":["
               "{\"key\":\"microsoft.custom_measurements\",\"value\":{\"stringValue\":\"not "
               "json\"}}]}]},"
               "{\"traceId\":\"" TRACE
               "\",\"spanId\":\"0000000000000062\",\"parentSpanId\":\"0000000000000061\","
               "\"name\":\"work\",\"kind\":1,"
               "\"startTimeUnixNano\":\"" T0 "\",\"endTimeUnixNano\":\"" T0 "\",\"attributes\":["
               "{\"key\":\"az.namespace\",\"value\":{\"stringValue\":\"Microsoft.Storage\"}}]}"),
        &m);
    assert_int_equal(m.n, 4);
    yajl_val e = m.env[0];
    ASSERT_STR(e, "data/baseData/type", "Microsoft.EventHub");
    ASSERT_STR(e, "data/baseData/target", "sb://ns.servicebus.windows.net/hub1");
    ASSERT_NUM(e, "data/baseData/measurements/score", 0.5);
    ASSERT_ABSENT(e, "data/baseData/measurements/bad");
    ASSERT_ABSENT(e, "data/baseData/properties/microsoft.custom_measurements");
    ASSERT_STR(e, "data/baseData/properties/az.namespace", "Microsoft.EventHub");
    ASSERT_NUM(m.env[1], "data/baseData/measurements/n", 2);
    ASSERT_ABSENT(m.env[2], "data/baseData/measurements"); /* nothing usable: field left out */
    ASSERT_STR(m.env[3], "data/baseData/type", "InProc | Microsoft.Storage");
    mapped_free(&m);
}

static void test_empty_batch(void **state)
{
    (void)state;
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_TRACES, 0);
    struct lg_azmon_items items = {0};
    struct lg_azmon_map_opts o = {.ikey = IKEY};
    assert_int_equal(lg_azmon_map_batch(b, &o, &items), LG_OK);
    assert_int_equal(items.n, 0);
    lg_azmon_items_free(&items);
    lg_batch_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_js_number),
        cmocka_unit_test(test_js_number_roundtrip),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_iso_time),
        cmocka_unit_test(test_cut_utf8),
        cmocka_unit_test(test_sample_rate),
        cmocka_unit_test(test_request_http),
        cmocka_unit_test(test_request_name_rules),
        cmocka_unit_test(test_dependencies),
        cmocka_unit_test(test_genai_and_links),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_limits_and_utf8),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_resource_metric),
        cmocka_unit_test(test_role_fallbacks),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_custom_measurements_and_az),
        cmocka_unit_test(test_empty_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
