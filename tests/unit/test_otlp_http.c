/* tests/unit/test_otlp_http.c — the OTLP/HTTP transport of the otlp receiver, driven with
 * libcurl over 127.0.0.1: every answer the Collector's receiver gives (200 in the request's
 * encoding, 404, 405, 415, 400 with a google.rpc.Status, 413 on the wire and after
 * decompression, 429/503 with Retry-After, partial_success), compressed bodies, CORS, and
 * that a bad request never spoils the next one. The receiver is built by hand around a
 * fake downstream component that records what it got and can be told to refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <zlib.h>
#include <zstd.h>

#include "core/otlp.h"
#include "receiver/otlp_http.h"

/* ---- a downstream component that records what it consumed ---- */

struct sink {
    struct lg_component c;
    pthread_mutex_t mu;
    int answer; /* what consume() returns */
    int calls;
    enum lg_signal signal;
    size_t items;
    uint8_t *packed; /* the consumed request, re-encoded */
    size_t packed_len;
    char first_span_name[64];
};

static int sink_consume(struct lg_component *c, struct lg_batch *b)
{
    struct sink *s = (struct sink *)c;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    s->signal = b->signal;
    s->items = b->items;
    free(s->packed);
    s->packed = lg_batch_encode(b, &s->packed_len);
    s->first_span_name[0] = '\0';
    if (b->signal == LG_SIGNAL_TRACES && b->req.traces->n_resource_spans > 0 &&
        b->req.traces->resource_spans[0]->n_scope_spans > 0 &&
        b->req.traces->resource_spans[0]->scope_spans[0]->n_spans > 0)
        snprintf(s->first_span_name, sizeof s->first_span_name, "%s",
                 b->req.traces->resource_spans[0]->scope_spans[0]->spans[0]->name);
    int rc = s->answer;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static const struct lg_component_type sink_type = {
    .type = "test_sink",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .consume = sink_consume,
};

/* ---- the receiver under test ---- */

struct fixture {
    struct sink sink;
    struct lg_component *sink_list[1];
    struct lg_component recv;
    struct otlp_conf conf;
    struct otlp_receiver r;
    int port;
    char base[64];
    const char *origins[2];
    const char *headers[1];
};

static void fixture_configure(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->sink.mu, NULL);
    f->sink.c.type = &sink_type;
    f->sink.c.id = "test_sink";
    f->sink.answer = LG_OK;
    f->sink_list[0] = &f->sink.c;
    f->recv.id = "otlp/test";
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        f->recv.next[s].to = f->sink_list;
        f->recv.next[s].n = 1;
    }
    struct otlp_http_conf *h = &f->conf.protocols.http;
    f->conf.protocols.has_http = true;
    h->endpoint = "127.0.0.1:0";
    h->max_request_body_size = 20 * 1024 * 1024;
    h->traces_url_path = "/v1/traces";
    h->metrics_url_path = "/v1/metrics";
    h->logs_url_path = "/v1/logs";
    h->read_timeout_ns = 30LL * 1000000000LL;
    f->r.c = &f->recv;
    f->r.conf = &f->conf;
}

static void fixture_start(struct fixture *f)
{
    struct lg_err err = {{0}};
    if (otlp_http_start(&f->r, &err) != LG_OK)
        fail_msg("otlp_http_start: %s", err.msg);
    f->port = otlp_http_bound_port(&f->r);
    assert_true(f->port > 0);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
}

static int setup(void **state)
{
    struct fixture *f = malloc(sizeof *f);
    fixture_configure(f);
    fixture_start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    otlp_http_shutdown(&f->r, lg_now_mono_ns() + 5LL * 1000000000LL);
    otlp_http_destroy(&f->r);
    assert_null(f->r.http);
    free(f->sink.packed);
    pthread_mutex_destroy(&f->sink.mu);
    free(f);
    return 0;
}

/* A second fixture flavour with a 1 KiB body limit. */
static int setup_small_limit(void **state)
{
    struct fixture *f = malloc(sizeof *f);
    fixture_configure(f);
    f->conf.protocols.http.max_request_body_size = 1024;
    fixture_start(f);
    *state = f;
    return 0;
}

/* CORS as a browser app would configure it. */
static int setup_cors(void **state)
{
    struct fixture *f = malloc(sizeof *f);
    fixture_configure(f);
    struct otlp_http_conf *h = &f->conf.protocols.http;
    f->origins[0] = "https://*.example.com";
    f->origins[1] = "http://localhost:3000";
    f->headers[0] = "X-Custom";
    h->has_cors = true;
    h->cors.allowed_origins.items = f->origins;
    h->cors.allowed_origins.n = 2;
    h->cors.allowed_headers.items = f->headers;
    h->cors.allowed_headers.n = 1;
    h->cors.max_age = 600;
    fixture_start(f);
    *state = f;
    return 0;
}

static int setup_custom_paths(void **state)
{
    struct fixture *f = malloc(sizeof *f);
    fixture_configure(f);
    f->conf.protocols.http.traces_url_path = "/otlp/traces";
    fixture_start(f);
    *state = f;
    return 0;
}

/* ---- libcurl client ---- */

struct resp {
    long status;
    char body[8192];
    size_t body_len;
    char headers[4096];
    size_t headers_len;
};

static size_t collect(char *p, size_t size, size_t n, char *buf, size_t *len, size_t cap)
{
    size_t k = size * n;
    size_t room = cap - 1 - *len;
    size_t copy = k < room ? k : room;
    memcpy(buf + *len, p, copy);
    *len += copy;
    buf[*len] = '\0';
    return k;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    return collect(p, size, n, r->body, &r->body_len, sizeof r->body);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    return collect(p, size, n, r->headers, &r->headers_len, sizeof r->headers);
}

/* One reusable connection per test, so keep-alive behaviour is exercised too. */
static CURL *client;

static void request_full(const struct fixture *f, const char *method, const char *path,
                         const char *const *headers, const void *body, size_t len, struct resp *r)
{
    memset(r, 0, sizeof *r);
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_reset(client);
    curl_easy_setopt(client, CURLOPT_URL, url);
    curl_easy_setopt(client, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(client, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(client, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(client, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(client, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(client, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(client, CURLOPT_NOPROXY, "*");
    if (body != NULL) {
        curl_easy_setopt(client, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(client, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (method != NULL)
        curl_easy_setopt(client, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(client);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method != NULL ? method : "POST", path, curl_easy_strerror(rc));
    curl_easy_getinfo(client, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
}

/* POST with a Content-Type (NULL = none) and an optional Content-Encoding. */
static void post(const struct fixture *f, const char *path, const char *content_type,
                 const char *encoding, const void *body, size_t len, struct resp *r)
{
    char ct[128], ce[128];
    const char *headers[3] = {NULL, NULL, NULL};
    size_t n = 0;
    if (content_type != NULL) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        headers[n++] = ct;
    } else {
        headers[n++] = "Content-Type:"; /* curl would add a form type otherwise */
    }
    if (encoding != NULL) {
        snprintf(ce, sizeof ce, "Content-Encoding: %s", encoding);
        headers[n++] = ce;
    }
    request_full(f, NULL, path, headers, body != NULL ? body : "", len, r);
}

/* The value of a response header (case-insensitive name), or NULL. */
static const char *header_value(const struct resp *r, const char *name, char *buf, size_t cap)
{
    size_t nlen = strlen(name);
    const char *line = r->headers;
    while (line != NULL && *line != '\0') {
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t k = strcspn(v, "\r\n");
            if (k >= cap)
                k = cap - 1;
            memcpy(buf, v, k);
            buf[k] = '\0';
            return buf;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return NULL;
}

static void assert_header(const struct resp *r, const char *name, const char *want)
{
    char buf[256];
    const char *v = header_value(r, name, buf, sizeof buf);
    if (v == NULL)
        fail_msg("missing header %s in:\n%s", name, r->headers);
    assert_string_equal(v, want);
}

static void assert_no_header(const struct resp *r, const char *name)
{
    char buf[256];
    if (header_value(r, name, buf, sizeof buf) != NULL)
        fail_msg("unexpected header %s: %s", name, buf);
}

/* ---- building requests ---- */

static void fill_id(uint8_t *id, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        id[i] = (uint8_t)(seed + i + 1);
}

/* A traces request with `n` spans (n <= 4); span `zero_trace` (or -1) gets an all-zero
 * trace ID. `name_len` pads the first span's name. Returns malloc'd protobuf bytes. */
static uint8_t *make_traces(size_t n, int zero_trace, size_t name_len, size_t *len)
{
    static uint8_t trace_ids[4][16], span_ids[4][8];
    lg_span spans[4], *span_ptrs[4];
    char names[4][32];
    char *long_name = NULL;
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        fill_id(trace_ids[i], 16, 7);
        fill_id(span_ids[i], 8, (uint8_t)(i * 16));
        if ((int)i == zero_trace)
            memset(trace_ids[i], 0, 16);
        spans[i].trace_id = (ProtobufCBinaryData){16, trace_ids[i]};
        spans[i].span_id = (ProtobufCBinaryData){8, span_ids[i]};
        snprintf(names[i], sizeof names[i], "span-%zu", i);
        spans[i].name = names[i];
        spans[i].start_time_unix_nano = 1700000000000000000ULL + i;
        spans[i].end_time_unix_nano = 1700000000000000100ULL + i;
        span_ptrs[i] = &spans[i];
    }
    if (name_len > 0) {
        long_name = malloc(name_len + 1);
        memset(long_name, 'n', name_len);
        long_name[name_len] = '\0';
        spans[0].name = long_name;
    }
    lg_scope_spans ss;
    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.n_spans = n;
    ss.spans = span_ptrs;
    lg_scope_spans *ss_ptr = &ss;
    lg_resource_spans rs;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.n_scope_spans = 1;
    rs.scope_spans = &ss_ptr;
    lg_resource_spans *rs_ptr = &rs;
    lg_traces_req req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = 1;
    req.resource_spans = &rs_ptr;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(*len);
    protobuf_c_message_pack(&req.base, buf);
    free(long_name);
    return buf;
}

/* A one-span traces request of exactly `size` bytes (the name pads it). */
static uint8_t *make_traces_of_size(size_t size, size_t *len)
{
    for (size_t name_len = 1; name_len < size; name_len++) {
        uint8_t *b = make_traces(1, -1, name_len, len);
        if (*len == size)
            return b;
        free(b);
        if (*len > size)
            break;
    }
    fail_msg("cannot build a request of %zu bytes", size);
    return NULL;
}

static uint8_t *make_logs(size_t *len)
{
    lg_log_record lr, *lr_ptr = &lr;
    opentelemetry__proto__logs__v1__log_record__init(&lr);
    lr.time_unix_nano = 1700000000000000000ULL;
    lg_scope_logs sl, *sl_ptr = &sl;
    opentelemetry__proto__logs__v1__scope_logs__init(&sl);
    sl.n_log_records = 1;
    sl.log_records = &lr_ptr;
    lg_resource_logs rl, *rl_ptr = &rl;
    opentelemetry__proto__logs__v1__resource_logs__init(&rl);
    rl.n_scope_logs = 1;
    rl.scope_logs = &sl_ptr;
    lg_logs_req req;
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(&req);
    req.n_resource_logs = 1;
    req.resource_logs = &rl_ptr;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = malloc(*len);
    protobuf_c_message_pack(&req.base, buf);
    return buf;
}

static const char traces_json[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"checkout\"}}]},\"scopeSpans\":[{\"spans\":[{"
    "\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"name\":\"chat gpt-4o\",\"kind\":3,\"startTimeUnixNano\":\"1700000000000000000\","
    "\"endTimeUnixNano\":\"1700000001000000000\"}]}]}]}";

static const char traces_json_zero_trace_id[] =
    "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
    "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"eee19b7ec3c1b174\","
    "\"name\":\"bad\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"name\":\"good\"}]}]}]}";

/* ---- compression helpers ---- */

static uint8_t *zlib_compress(const void *in, size_t len, int window_bits, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(
        deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY),
        Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 64;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static uint8_t *gzip(const void *in, size_t len, size_t *out_len)
{
    return zlib_compress(in, len, MAX_WBITS + 16, out_len);
}

static uint8_t *zstd(const void *in, size_t len, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(len);
    uint8_t *out = malloc(cap);
    *out_len = ZSTD_compress(out, cap, in, len, 3);
    assert_false(ZSTD_isError(*out_len));
    return out;
}

/* ---- checking replies ---- */

static void assert_rpc_status_protobuf(const struct resp *r, int code, const char *fragment)
{
    assert_header(r, "Content-Type", "application/x-protobuf");
    Google__Rpc__Status *st =
        google__rpc__status__unpack(NULL, r->body_len, (const uint8_t *)r->body);
    assert_non_null(st);
    assert_int_equal(st->code, code);
    if (fragment != NULL && strstr(st->message, fragment) == NULL)
        fail_msg("status message \"%s\" lacks \"%s\"", st->message, fragment);
    google__rpc__status__free_unpacked(st, NULL);
}

static void assert_rpc_status_json(const struct resp *r, int code, const char *fragment)
{
    assert_header(r, "Content-Type", "application/json");
    cJSON *doc = cJSON_ParseWithLength(r->body, r->body_len);
    if (doc == NULL)
        fail_msg("not JSON: %s", r->body);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "message");
    assert_true(cJSON_IsNumber(c));
    assert_int_equal(c->valueint, code);
    assert_true(cJSON_IsString(m));
    if (fragment != NULL && strstr(m->valuestring, fragment) == NULL)
        fail_msg("status message \"%s\" lacks \"%s\"", m->valuestring, fragment);
    cJSON_Delete(doc);
}

/* An ExportTraceServiceResponse without partial_success. */
static void assert_empty_traces_response(const struct resp *r)
{
    assert_header(r, "Content-Type", "application/x-protobuf");
    lg_traces_resp *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, r->body_len, (const uint8_t *)r->body);
    assert_non_null(resp);
    assert_null(resp->partial_success);
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);
}

static int sink_calls(struct fixture *f)
{
    pthread_mutex_lock(&f->sink.mu);
    int n = f->sink.calls;
    pthread_mutex_unlock(&f->sink.mu);
    return n;
}

static void assert_sink_got(struct fixture *f, const uint8_t *packed, size_t len)
{
    pthread_mutex_lock(&f->sink.mu);
    assert_int_equal(f->sink.packed_len, len);
    assert_memory_equal(f->sink.packed, packed, len);
    pthread_mutex_unlock(&f->sink.mu);
}

/* ---- success ---- */

static void test_protobuf_traces_are_delivered_and_answered_in_protobuf(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *body = make_traces(3, -1, 0, &len);
    struct resp r;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 200);
    assert_empty_traces_response(&r);
    assert_int_equal(sink_calls(f), 1);
    assert_int_equal(f->sink.signal, LG_SIGNAL_TRACES);
    assert_int_equal(f->sink.items, 3);
    assert_sink_got(f, body, len);
    free(body);
}

static void test_json_traces_are_delivered_and_answered_in_json(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    post(f, "/v1/traces", "application/json", NULL, traces_json, strlen(traces_json), &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    assert_string_equal(r.body, "{}");
    assert_int_equal(sink_calls(f), 1);
    assert_int_equal(f->sink.items, 1);
    assert_string_equal(f->sink.first_span_name, "chat gpt-4o");
}

static void test_content_type_parameters_and_case_are_accepted(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    post(f, "/v1/traces", "application/json; charset=utf-8", NULL, traces_json, strlen(traces_json),
         &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    size_t len;
    uint8_t *body = make_traces(1, -1, 0, &len);
    post(f, "/v1/traces", "Application/X-Protobuf ; foo=bar", NULL, body, len, &r);
    assert_int_equal(r.status, 200);
    assert_empty_traces_response(&r);
    assert_int_equal(sink_calls(f), 2);
    free(body);
}

static void test_each_path_routes_its_signal(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *logs = make_logs(&len);
    struct resp r;
    post(f, "/v1/logs", "application/x-protobuf", NULL, logs, len, &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/x-protobuf");
    assert_int_equal(f->sink.signal, LG_SIGNAL_LOGS);
    assert_int_equal(f->sink.items, 1);
    free(logs);

    static const char metrics_json[] =
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"gauge\":"
        "{\"dataPoints\":[{\"asInt\":\"5\"},{\"asDouble\":1.5}]}}]}]}]}";
    post(f, "/v1/metrics", "application/json", NULL, metrics_json, strlen(metrics_json), &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    assert_int_equal(f->sink.signal, LG_SIGNAL_METRICS);
    assert_int_equal(f->sink.items, 2);
    assert_int_equal(sink_calls(f), 2);
}

static void test_empty_body_is_a_valid_empty_request(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    post(f, "/v1/traces", "application/x-protobuf", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_empty_traces_response(&r);
    post(f, "/v1/logs", "application/json", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    post(f, "/v1/metrics", "application/json", NULL, "{}", 2, &r);
    assert_int_equal(r.status, 200);
    /* Nothing to forward. */
    assert_int_equal(sink_calls(f), 0);
}

/* ---- routing and protocol errors ---- */

static void test_unknown_path_is_404(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    post(f, "/v1/trace", "application/x-protobuf", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    post(f, "/v1/traces/", "application/x-protobuf", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    request_full(f, "GET", "/", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    /* The query string is not part of the path. */
    post(f, "/v1/traces?x=1", "application/x-protobuf", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
}

static void test_custom_url_path_replaces_the_default(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    size_t len;
    uint8_t *body = make_traces(1, -1, 0, &len);
    post(f, "/otlp/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 200);
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 404);
    post(f, "/v1/logs", "application/x-protobuf", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(sink_calls(f), 1);
    free(body);
}

static void test_non_post_is_405_with_allow_header(void **state)
{
    struct fixture *f = *state;
    static const char *const methods[] = {"GET", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        struct resp r;
        request_full(f, methods[i], "/v1/traces", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 405);
        assert_header(&r, "Allow", "POST");
        assert_string_equal(r.body, "405 method not allowed, supported: [POST]");
    }
    /* CORS is not configured: no CORS headers on anything. */
    const char *origin[] = {"Origin: https://app.example.com",
                            "Access-Control-Request-Method: POST", NULL};
    struct resp r;
    request_full(f, "OPTIONS", "/v1/traces", origin, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    assert_no_header(&r, "Access-Control-Allow-Origin");
    assert_int_equal(sink_calls(f), 0);
}

static void test_unsupported_content_type_is_415(void **state)
{
    struct fixture *f = *state;
    static const char *const types[] = {"text/plain", "application/protobuf", "application/jsonx",
                                        NULL};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct resp r;
        post(f, "/v1/traces", types[i], NULL, "{}", 2, &r);
        assert_int_equal(r.status, 415);
        assert_non_null(strstr(r.body, "application/json"));
        assert_non_null(strstr(r.body, "application/x-protobuf"));
    }
    assert_int_equal(sink_calls(f), 0);
}

static void test_malformed_protobuf_is_400_with_protobuf_status(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    post(f, "/v1/traces", "application/x-protobuf", NULL, "\xff\xff\xff\xff", 4, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_protobuf(&r, 3, "protobuf");
    assert_int_equal(sink_calls(f), 0);
}

static void test_malformed_json_is_400_with_json_status(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    post(f, "/v1/traces", "application/json", NULL, "{\"resourceSpans\":[{", 19, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_json(&r, 3, NULL);
    /* A wrongly shaped ID is named in the message. */
    static const char bad_id[] =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"xyz\"}]}]}]}";
    post(f, "/v1/traces", "application/json", NULL, bad_id, strlen(bad_id), &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_json(&r, 3, "traceId");
    assert_int_equal(sink_calls(f), 0);
}

/* ---- size limits ---- */

static void test_body_over_the_limit_on_the_wire_is_413(void **state)
{
    struct fixture *f = *state;
    size_t len;
    /* Exactly at the limit is accepted, one byte more is not. */
    uint8_t *body = make_traces_of_size(1024, &len);
    struct resp r;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 200);
    free(body);

    body = make_traces_of_size(1025, &len);
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 413);
    free(body);
    body = make_traces(1, -1, 100000, &len);
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 413);
    /* A client that waits for 100-continue gets the 413 as well. */
    const char *expect[] = {"Content-Type: application/x-protobuf", "Expect: 100-continue", NULL};
    request_full(f, NULL, "/v1/traces", expect, body, len, &r);
    assert_int_equal(r.status, 413);
    free(body);
    assert_int_equal(sink_calls(f), 1);
    /* And the server is still fine. */
    post(f, "/v1/traces", "application/json", NULL, traces_json, strlen(traces_json), &r);
    assert_int_equal(r.status, 200);
}

static void test_body_over_the_limit_after_decompression_is_413(void **state)
{
    struct fixture *f = *state;
    size_t len, zlen;
    uint8_t *body = make_traces(1, -1, 4000, &len);
    uint8_t *gz = gzip(body, len, &zlen);
    assert_true(zlen < 1024);
    struct resp r;
    post(f, "/v1/traces", "application/x-protobuf", "gzip", gz, zlen, &r);
    assert_int_equal(r.status, 413);
    assert_rpc_status_protobuf(&r, 8, "max_request_body_size");
    free(gz);
    gz = zstd(body, len, &zlen);
    post(f, "/v1/traces", "application/json", "zstd", gz, zlen, &r);
    assert_int_equal(r.status, 413);
    assert_rpc_status_json(&r, 8, "max_request_body_size");
    free(gz);
    gz = zlib_compress(body, len, MAX_WBITS, &zlen);
    post(f, "/v1/traces", "application/x-protobuf", "deflate", gz, zlen, &r);
    assert_int_equal(r.status, 413);
    free(gz);
    free(body);

    /* Within the limit once decompressed: accepted. */
    body = make_traces(2, -1, 500, &len);
    gz = gzip(body, len, &zlen);
    post(f, "/v1/traces", "application/x-protobuf", "gzip", gz, zlen, &r);
    assert_int_equal(r.status, 200);
    assert_sink_got(f, body, len);
    assert_int_equal(sink_calls(f), 1);
    free(gz);
    free(body);
}

/* ---- compression ---- */

static void test_compressed_bodies_are_decoded(void **state)
{
    struct fixture *f = *state;
    size_t len, zlen;
    uint8_t *body = make_traces(4, -1, 3000, &len);
    struct resp r;
    struct {
        const char *encoding;
        uint8_t *data;
    } cases[] = {
        {"gzip", NULL}, {"deflate", NULL}, {"deflate", NULL},  {"zlib", NULL},
        {"zstd", NULL}, {"GZIP", NULL},    {"identity", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        switch (i) {
        case 0:
        case 5: cases[i].data = gzip(body, len, &zlen); break;
        case 1:
        case 3: cases[i].data = zlib_compress(body, len, MAX_WBITS, &zlen); break;
        case 2: cases[i].data = zlib_compress(body, len, -MAX_WBITS, &zlen); break; /* raw */
        case 4: cases[i].data = zstd(body, len, &zlen); break;
        default:
            cases[i].data = malloc(len);
            memcpy(cases[i].data, body, len);
            zlen = len;
        }
        post(f, "/v1/traces", "application/x-protobuf", cases[i].encoding, cases[i].data, zlen, &r);
        if (r.status != 200)
            fail_msg("case %zu (%s): status %ld", i, cases[i].encoding, r.status);
        assert_sink_got(f, body, len);
        free(cases[i].data);
    }
    assert_int_equal(sink_calls(f), (int)(sizeof cases / sizeof cases[0]));

    /* Two gzip members back to back are one body, as Go's reader sees it. */
    size_t len1, len2;
    uint8_t *part1 = gzip(body, len / 2, &len1);
    uint8_t *part2 = gzip(body + len / 2, len - len / 2, &len2);
    uint8_t *both = malloc(len1 + len2);
    memcpy(both, part1, len1);
    memcpy(both + len1, part2, len2);
    post(f, "/v1/traces", "application/x-protobuf", "gzip", both, len1 + len2, &r);
    assert_int_equal(r.status, 200);
    assert_sink_got(f, body, len);
    free(part1);
    free(part2);
    free(both);

    /* JSON compresses too. */
    uint8_t *gz = gzip(traces_json, strlen(traces_json), &zlen);
    post(f, "/v1/traces", "application/json", "gzip", gz, zlen, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    free(gz);
    free(body);
}

static void test_corrupt_or_unknown_encoding_is_400(void **state)
{
    struct fixture *f = *state;
    size_t len, zlen;
    uint8_t *body = make_traces(2, -1, 200, &len);
    struct resp r;

    post(f, "/v1/traces", "application/x-protobuf", "br", body, len, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_protobuf(&r, 3, "Content-Encoding");
    post(f, "/v1/traces", "application/json", "snappy", body, len, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_json(&r, 3, "unsupported Content-Encoding");

    /* Not gzip at all. */
    post(f, "/v1/traces", "application/x-protobuf", "gzip", body, len, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_protobuf(&r, 3, "gzip");
    /* Truncated gzip and zstd. */
    uint8_t *gz = gzip(body, len, &zlen);
    post(f, "/v1/traces", "application/x-protobuf", "gzip", gz, zlen - 10, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_protobuf(&r, 3, "gzip");
    /* Flipped bits inside the deflate stream (the CRC catches what inflate does not). */
    gz[zlen / 2] ^= 0xff;
    post(f, "/v1/traces", "application/x-protobuf", "gzip", gz, zlen, &r);
    assert_int_equal(r.status, 400);
    free(gz);
    uint8_t *zs = zstd(body, len, &zlen);
    post(f, "/v1/traces", "application/x-protobuf", "zstd", zs, zlen - 3, &r);
    assert_int_equal(r.status, 400);
    assert_rpc_status_protobuf(&r, 3, "zstd");
    post(f, "/v1/traces", "application/x-protobuf", "zstd", "garbage!", 8, &r);
    assert_int_equal(r.status, 400);
    free(zs);
    free(body);
    assert_int_equal(sink_calls(f), 0);
}

/* ---- pipeline answers ---- */

static void test_backpressure_is_503_or_429_with_retry_after(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *body = make_traces(2, -1, 0, &len);
    struct resp r;

    f->sink.answer = LG_EAGAIN;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 503);
    assert_header(&r, "Retry-After", "1");
    assert_rpc_status_protobuf(&r, 14, NULL);
    post(f, "/v1/traces", "application/json", NULL, traces_json, strlen(traces_json), &r);
    assert_int_equal(r.status, 503);
    assert_header(&r, "Retry-After", "1");
    assert_rpc_status_json(&r, 14, NULL);

    f->sink.answer = LG_EFULL;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 429);
    assert_header(&r, "Retry-After", "1");
    assert_rpc_status_protobuf(&r, 8, NULL);

    f->sink.answer = LG_EINVAL;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 400);
    assert_no_header(&r, "Retry-After");
    assert_rpc_status_protobuf(&r, 3, NULL);

    f->sink.answer = LG_EIO;
    post(f, "/v1/traces", "application/json", NULL, traces_json, strlen(traces_json), &r);
    assert_int_equal(r.status, 500);
    assert_no_header(&r, "Retry-After");
    assert_rpc_status_json(&r, 13, NULL);

    f->sink.answer = LG_OK;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(sink_calls(f), 6);
    free(body);
}

static void test_invalid_span_ids_give_partial_success(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *body = make_traces(3, 1, 0, &len);
    struct resp r;
    post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/x-protobuf");
    lg_traces_resp *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, r.body_len, (const uint8_t *)r.body);
    assert_non_null(resp);
    assert_non_null(resp->partial_success);
    assert_int_equal(resp->partial_success->rejected_spans, 1);
    assert_non_null(strstr(resp->partial_success->error_message, "trace_id"));
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);
    assert_int_equal(f->sink.items, 2);
    free(body);

    post(f, "/v1/traces", "application/json", NULL, traces_json_zero_trace_id,
         strlen(traces_json_zero_trace_id), &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    cJSON *doc = cJSON_ParseWithLength(r.body, r.body_len);
    assert_non_null(doc);
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(doc, "partialSuccess");
    assert_non_null(ps);
    const cJSON *rejected = cJSON_GetObjectItemCaseSensitive(ps, "rejectedSpans");
    assert_non_null(rejected);
    /* int64 is a decimal string in protobuf's JSON mapping; a number is tolerated. */
    if (cJSON_IsString(rejected))
        assert_string_equal(rejected->valuestring, "1");
    else
        assert_int_equal(rejected->valueint, 1);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(ps, "errorMessage")));
    cJSON_Delete(doc);
    assert_int_equal(f->sink.items, 1);
    assert_string_equal(f->sink.first_span_name, "good");
    assert_int_equal(sink_calls(f), 2);
}

static void test_bad_requests_do_not_spoil_the_next_ones(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *body = make_traces(1, -1, 0, &len);
    struct resp r;
    for (int round = 0; round < 3; round++) {
        post(f, "/v1/traces", "application/x-protobuf", NULL, "\x0a\xff", 2, &r);
        assert_int_equal(r.status, 400);
        post(f, "/v1/traces", "application/json", NULL, "[1,2", 4, &r);
        assert_int_equal(r.status, 400);
        post(f, "/v1/traces", "text/html", NULL, "<p>", 3, &r);
        assert_int_equal(r.status, 415);
        post(f, "/v1/traces", "application/x-protobuf", "gzip", "nope", 4, &r);
        assert_int_equal(r.status, 400);
        request_full(f, "GET", "/v1/traces", NULL, NULL, 0, &r);
        assert_int_equal(r.status, 405);
        post(f, "/v1/traces", "application/x-protobuf", NULL, body, len, &r);
        assert_int_equal(r.status, 200);
    }
    long connects = 0;
    curl_easy_getinfo(client, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0); /* the last request reused the keep-alive connection */
    assert_int_equal(sink_calls(f), 3);
    free(body);
}

/* ---- CORS ---- */

static void test_cors_preflight_follows_the_collector(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    const char *ok[] = {"Origin: https://app.example.com", "Access-Control-Request-Method: POST",
                        "Access-Control-Request-Headers: content-type, x-custom", NULL};
    request_full(f, "OPTIONS", "/v1/traces", ok, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
    assert_header(&r, "Access-Control-Allow-Methods", "POST");
    assert_header(&r, "Access-Control-Allow-Headers", "content-type, x-custom");
    assert_header(&r, "Access-Control-Allow-Credentials", "true");
    assert_header(&r, "Access-Control-Max-Age", "600");

    const char *exact[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: post",
                           NULL};
    request_full(f, "OPTIONS", "/v1/logs", exact, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:3000");
    assert_header(&r, "Access-Control-Allow-Methods", "POST");

    /* Refused preflights still answer 204, without the CORS headers. */
    const char *bad_origin[] = {"Origin: https://example.com.evil.net",
                                "Access-Control-Request-Method: POST", NULL};
    const char *bad_header[] = {"Origin: https://app.example.com",
                                "Access-Control-Request-Method: POST",
                                "Access-Control-Request-Headers: x-other", NULL};
    const char *bad_method[] = {"Origin: https://app.example.com",
                                "Access-Control-Request-Method: DELETE", NULL};
    const char *const *refused[] = {bad_origin, bad_header, bad_method};
    for (size_t i = 0; i < 3; i++) {
        request_full(f, "OPTIONS", "/v1/traces", refused[i], NULL, 0, &r);
        assert_int_equal(r.status, 204);
        assert_no_header(&r, "Access-Control-Allow-Origin");
    }
    /* OPTIONS that is not a preflight is just a method the path does not allow. */
    request_full(f, "OPTIONS", "/v1/traces", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    assert_int_equal(sink_calls(f), 0);
}

static void test_cors_headers_on_actual_requests(void **state)
{
    struct fixture *f = *state;
    struct resp r;
    const char *allowed[] = {"Origin: https://shop.example.com", "Content-Type: application/json",
                             NULL};
    request_full(f, NULL, "/v1/traces", allowed, traces_json, strlen(traces_json), &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Access-Control-Allow-Origin", "https://shop.example.com");
    assert_header(&r, "Access-Control-Allow-Credentials", "true");
    assert_header(&r, "Vary", "Origin");

    const char *denied[] = {"Origin: https://other.org", "Content-Type: application/json", NULL};
    request_full(f, NULL, "/v1/traces", denied, traces_json, strlen(traces_json), &r);
    assert_int_equal(r.status, 200); /* the browser enforces CORS, not the server */
    assert_no_header(&r, "Access-Control-Allow-Origin");
    assert_int_equal(sink_calls(f), 2);
}

/* ---- life cycle ---- */

static void test_busy_port_fails_start_with_a_clear_message(void **state)
{
    struct fixture *f = *state;
    struct fixture *g = malloc(sizeof *g);
    fixture_configure(g);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", f->port);
    g->conf.protocols.http.endpoint = endpoint;
    struct lg_err err = {{0}};
    assert_true(otlp_http_start(&g->r, &err) < 0);
    assert_null(g->r.http);
    assert_int_equal(otlp_http_bound_port(&g->r), -1);
    char want[128];
    snprintf(want, sizeof want, "cannot listen on %s: Address already in use", endpoint);
    assert_string_equal(err.msg, want);
    otlp_http_shutdown(&g->r, lg_now_mono_ns());
    otlp_http_destroy(&g->r);
    free(g);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    client = curl_easy_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protobuf_traces_are_delivered_and_answered_in_protobuf,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_traces_are_delivered_and_answered_in_json, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_content_type_parameters_and_case_are_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_each_path_routes_its_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_body_is_a_valid_empty_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_url_path_replaces_the_default,
                                        setup_custom_paths, teardown),
        cmocka_unit_test_setup_teardown(test_non_post_is_405_with_allow_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_content_type_is_415, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_protobuf_is_400_with_protobuf_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_json_is_400_with_json_status, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_body_over_the_limit_on_the_wire_is_413,
                                        setup_small_limit, teardown),
        cmocka_unit_test_setup_teardown(test_body_over_the_limit_after_decompression_is_413,
                                        setup_small_limit, teardown),
        cmocka_unit_test_setup_teardown(test_compressed_bodies_are_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_or_unknown_encoding_is_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_is_503_or_429_with_retry_after, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_span_ids_give_partial_success, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_do_not_spoil_the_next_ones, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cors_preflight_follows_the_collector, setup_cors,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cors_headers_on_actual_requests, setup_cors, teardown),
        cmocka_unit_test_setup_teardown(test_busy_port_fails_start_with_a_clear_message, setup,
                                        teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_easy_cleanup(client);
    curl_global_cleanup();
    return failed;
}
