/* tests/unit/test_otlp_exporters.c — the `otlp` (gRPC) and `otlp_http` exporters against
 * fake backends on 127.0.0.1: a gRPC server built on core/grpc_server.h and an HTTP server
 * on core/httpd.h, both scripted (status per request, Retry-After, partial_success) and
 * recording what arrived (headers, encoding, body, spans).
 *
 * The send functions are tested directly, which is where the retry classification lives:
 * this file includes the two exporter sources (their component symbols renamed so they do
 * not clash with the library's), then a last group of tests runs the real components
 * through the runtime and the exporter helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* the exporter sources, with their public symbols renamed and their shared static names
 * kept apart */
#define lg_otlp_exporter test_otlp_exporter_copy
#include "exporters/otlp.c"
#undef lg_otlp_exporter
#define lg_otlp_http_exporter test_otlp_http_exporter_copy
#define parse_headers http_parse_headers
#define read_partial_success http_read_partial_success
#include "exporters/otlp_http.c"
#undef lg_otlp_http_exporter
#undef parse_headers
#undef read_partial_success

#include "core/grpc_server.h"
#include "core/httpd.h"
#include "core/runtime.h"
#include "tests/unit/sink.h"

#define SEC 1000000000LL
#define TRACE_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

/* ---- a scripted backend (shared by the gRPC and HTTP fakes) ---- */

#define SCRIPT_MAX 16
struct backend {
    pthread_mutex_t lock;
    /* answers for the next requests, in order; after the script: OK / 200 */
    int script[SCRIPT_MAX];
    const char *retry_after[SCRIPT_MAX]; /* HTTP only */
    size_t nscript, next;
    int64_t partial_rejected; /* > 0: answer OK with partial_success */
    bool respond_json;        /* HTTP: partial success body as JSON */
    size_t requests;
    size_t spans_ok;          /* spans in requests answered OK */
    char header[256];         /* value of x-tenant in the last request */
    char auth[256];           /* value of authorization in the last request */
    char content_type[128], content_encoding[64];
    bool body_was_gzip, body_was_zstd;
    struct lg_grpc_server *grpc;
    struct lg_http_server *http;
    int port;
};

static void backend_init(struct backend *be)
{
    memset(be, 0, sizeof *be);
    pthread_mutex_init(&be->lock, NULL);
}

static void backend_script(struct backend *be, const int *codes, const char *const *retry_after, size_t n)
{
    pthread_mutex_lock(&be->lock);
    for (size_t i = 0; i < n; i++) {
        be->script[i] = codes[i];
        be->retry_after[i] = retry_after ? retry_after[i] : NULL;
    }
    be->nscript = n;
    be->next = 0;
    pthread_mutex_unlock(&be->lock);
}

static size_t count_spans(const uint8_t *data, size_t len, bool json)
{
    struct lg_arena *a = lg_arena_create(4096);
    ProtobufCMessage *m = NULL;
    struct lg_err err;
    if (json) {
        if (lg_otlp_json_decode(lg_request_descriptor(LG_SIGNAL_TRACES), (const char *)data, len, a, &m, &err) != LG_OK)
            m = NULL;
    } else {
        m = protobuf_c_message_unpack(lg_request_descriptor(LG_SIGNAL_TRACES), NULL, len, data);
    }
    size_t n = m ? lg_request_count_items(LG_SIGNAL_TRACES, m) : (size_t)-1;
    if (m && !json)
        protobuf_c_message_free_unpacked(m, NULL);
    lg_arena_destroy(a);
    return n;
}

static uint8_t *partial_response(int64_t rejected, size_t *len)
{
    lg_traces_resp r = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    lg_traces_partial p = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    p.rejected_spans = rejected;
    p.error_message = "spans too old";
    r.partial_success = &p;
    *len = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *buf = malloc(*len ? *len : 1);
    protobuf_c_message_pack(&r.base, buf);
    return buf;
}

/* ---- fake gRPC backend ---- */

static void grpc_export(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    struct backend *be = arg;
    size_t mdlen = 0;
    const char *v;
    pthread_mutex_lock(&be->lock);
    be->requests++;
    be->header[0] = be->auth[0] = '\0';
    if ((v = lg_grpc_call_metadata(call, "x-tenant", &mdlen)) != NULL)
        snprintf(be->header, sizeof be->header, "%.*s", (int)mdlen, v);
    if ((v = lg_grpc_call_metadata(call, "authorization", &mdlen)) != NULL)
        snprintf(be->auth, sizeof be->auth, "%.*s", (int)mdlen, v);
    int code = be->next < be->nscript ? be->script[be->next++] : LG_GRPC_OK;
    int64_t rejected = be->partial_rejected;
    if (code == LG_GRPC_OK)
        be->spans_ok += count_spans(req, len, false);
    pthread_mutex_unlock(&be->lock);
    if (code != LG_GRPC_OK) {
        lg_grpc_call_finish(call, code, "scripted failure", NULL, 0);
    } else if (rejected > 0) {
        size_t rl;
        uint8_t *r = partial_response(rejected, &rl);
        lg_grpc_call_finish(call, LG_GRPC_OK, NULL, r, rl);
        free(r);
    } else {
        lg_grpc_call_finish(call, LG_GRPC_OK, NULL, NULL, 0);
    }
}

static void grpc_backend_start(struct backend *be)
{
    struct lg_err err = {{0}};
    struct lg_grpc_server_opts o = {.endpoint = "127.0.0.1:0"};
    be->grpc = lg_grpc_server_create(&o, &err);
    assert_non_null(be->grpc);
    assert_int_equal(lg_grpc_server_add_method(be->grpc, TRACE_METHOD, grpc_export, be, &err), 0);
    assert_int_equal(lg_grpc_server_start(be->grpc, &err), 0);
    be->port = lg_grpc_server_port(be->grpc);
}

static void backend_stop(struct backend *be)
{
    if (be->grpc) {
        lg_grpc_server_shutdown(be->grpc, lg_now_mono_ns() + SEC);
        lg_grpc_server_destroy(be->grpc);
    }
    if (be->http) {
        lg_http_server_stop(be->http, lg_now_mono_ns() + SEC);
        lg_http_server_free(be->http);
    }
    pthread_mutex_destroy(&be->lock);
}

/* ---- fake HTTP backend ---- */

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t cap = 1 << 20;
    uint8_t *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 15 + 16);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = inflate(&z, Z_FINISH);
    *out_len = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void http_export(struct evhttp_request *req, void *arg)
{
    struct backend *be = arg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    uint8_t *raw = malloc(len + 1);
    evbuffer_remove(buf, raw, len);
    const char *ct = evhttp_find_header(in, "Content-Type"), *ce = evhttp_find_header(in, "Content-Encoding");
    const char *tenant = evhttp_find_header(in, "X-Tenant"), *auth = evhttp_find_header(in, "Authorization");
    uint8_t *body = raw;
    size_t body_len = len;
    bool gz = ce && strcmp(ce, "gzip") == 0, zs = ce && strcmp(ce, "zstd") == 0;
    if (gz) {
        body = gunzip(raw, len, &body_len);
    } else if (zs) {
        unsigned long long n = ZSTD_getFrameContentSize(raw, len);
        body = malloc(n + 1);
        body_len = ZSTD_decompress(body, n + 1, raw, len);
    }
    bool json = ct && strncmp(ct, "application/json", 16) == 0;

    pthread_mutex_lock(&be->lock);
    be->requests++;
    snprintf(be->content_type, sizeof be->content_type, "%s", ct ? ct : "");
    snprintf(be->content_encoding, sizeof be->content_encoding, "%s", ce ? ce : "");
    snprintf(be->header, sizeof be->header, "%s", tenant ? tenant : "");
    snprintf(be->auth, sizeof be->auth, "%s", auth ? auth : "");
    be->body_was_gzip = gz && len >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
    be->body_was_zstd = zs && len >= 4 && raw[0] == 0x28 && raw[1] == 0xb5 && raw[2] == 0x2f && raw[3] == 0xfd;
    int code = 200;
    const char *retry_after = NULL;
    if (be->next < be->nscript) {
        retry_after = be->retry_after[be->next];
        code = be->script[be->next++];
    }
    int64_t rejected = be->partial_rejected;
    bool rjson = be->respond_json;
    if (code == 200 && body != NULL)
        be->spans_ok += count_spans(body, body_len, json);
    pthread_mutex_unlock(&be->lock);

    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    struct evbuffer *ob = evbuffer_new();
    if (retry_after)
        evhttp_add_header(out, "Retry-After", retry_after);
    if (code == 200 && rejected > 0) {
        if (rjson) {
            evhttp_add_header(out, "Content-Type", "application/json");
            evbuffer_add_printf(ob, "{\"partialSuccess\":{\"rejectedSpans\":\"%lld\",\"errorMessage\":\"spans too old\"}}",
                                (long long)rejected);
        } else {
            size_t rl;
            uint8_t *r = partial_response(rejected, &rl);
            evhttp_add_header(out, "Content-Type", "application/x-protobuf");
            evbuffer_add(ob, r, rl);
            free(r);
        }
    } else if (code != 200) {
        evhttp_add_header(out, "Content-Type", "application/json");
        evbuffer_add_printf(ob, "{\"code\":3,\"message\":\"scripted %d\"}", code);
    }
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Scripted", ob);
    evbuffer_free(ob);
    if (body != raw)
        free(body);
    free(raw);
}

static void http_backend_start(struct backend *be)
{
    struct lg_err err = {{0}};
    struct lg_http_server_opts o = {.endpoint = "127.0.0.1:0"};
    assert_int_equal(lg_http_server_start(&o, http_export, be, &be->http, &err), 0);
    be->port = lg_http_server_port(be->http);
}

/* ---- building exporter state from YAML ---- */

struct conf_holder {
    struct lg_conf_doc doc;
    struct lg_arena *arena;
};

static int apply(struct conf_holder *h, const struct lg_conf_field *fields, const char *yaml, void *out, struct lg_err *err)
{
    struct lg_conf_source src = {.text = yaml, .name = "t.yaml"};
    memset(h, 0, sizeof *h);
    int rc = lg_conf_load(&src, 1, NULL, NULL, &h->doc, err);
    if (rc != LG_OK)
        return rc;
    h->arena = lg_arena_create(4096);
    return lg_conf_apply(fields, h->doc.root, h->doc.root, out, h->arena, err);
}

static void holder_free(struct conf_holder *h)
{
    lg_arena_destroy(h->arena);
    lg_conf_doc_free(&h->doc);
}

struct grpc_fx {
    struct conf_holder h;
    struct otlp_conf conf;
    struct otlp_state st;
};

static int grpc_fx_open(struct grpc_fx *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    int rc = apply(&f->h, otlp_fields, yaml, &f->conf, err);
    if (rc == LG_OK)
        rc = otlp_state_init(&f->st, "otlp", &f->conf, f->h.doc.root, err);
    if (rc == LG_OK)
        rc = otlp_connect(&f->st, err);
    return rc;
}

static void grpc_fx_close(struct grpc_fx *f)
{
    lg_grpc_channel_destroy(f->st.channel);
    free(f->st.target);
    holder_free(&f->h);
}

struct http_fx {
    struct conf_holder h;
    struct http_conf conf;
    struct http_state st;
};

static int http_fx_open(struct http_fx *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    int rc = apply(&f->h, http_fields, yaml, &f->conf, err);
    if (rc == LG_OK)
        rc = http_state_init(&f->st, "otlp_http", &f->conf, f->h.doc.root, err);
    return rc;
}

static void http_fx_close(struct http_fx *f)
{
    http_state_fini(&f->st);
    holder_free(&f->h);
}

static struct lg_export_result send_grpc(struct grpc_fx *f, struct lg_batch *b)
{
    struct lg_export_result res;
    otlp_send(&f->st, b, lg_now_mono_ns() + 5 * SEC, &res);
    return res;
}

static struct lg_export_result send_http(struct http_fx *f, struct lg_batch *b)
{
    struct lg_export_result res;
    http_send(&f->st, b, lg_now_mono_ns() + 5 * SEC, &res);
    return res;
}

/* ---- gRPC tests ---- */

static void test_grpc_ok_delivers_spans_with_headers(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    grpc_backend_start(&be);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\nheaders: {X-Tenant: acme}\n", be.port);
    struct grpc_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(grpc_fx_open(&f, yaml, &err), 0);
    assert_true(f.st.insecure);
    assert_true(f.st.gzip);
    struct lg_batch *b = make_traces(1, 2, 3);
    struct lg_export_result res = send_grpc(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(res.rejected, 0);
    assert_int_equal(be.spans_ok, 6);
    assert_string_equal(be.header, "acme");
    lg_batch_unref(b);
    grpc_fx_close(&f);
    backend_stop(&be);
}

static void test_grpc_status_classification_follows_the_collector(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    grpc_backend_start(&be);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls: {insecure: true}\ncompression: none\n", be.port);
    struct grpc_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(grpc_fx_open(&f, yaml, &err), 0);
    assert_false(f.st.gzip);
    struct lg_batch *b = make_traces(1, 1, 1);
    static const struct {
        int code, want;
    } cases[] = {
        {LG_GRPC_CANCELLED, LG_EAGAIN},         {LG_GRPC_UNKNOWN, LG_EINVAL},
        {LG_GRPC_INVALID_ARGUMENT, LG_EINVAL},  {LG_GRPC_DEADLINE_EXCEEDED, LG_EAGAIN},
        {LG_GRPC_NOT_FOUND, LG_EINVAL},         {LG_GRPC_ALREADY_EXISTS, LG_EINVAL},
        {LG_GRPC_PERMISSION_DENIED, LG_EINVAL}, {LG_GRPC_RESOURCE_EXHAUSTED, LG_EINVAL} /* no RetryInfo */,
        {LG_GRPC_FAILED_PRECONDITION, LG_EINVAL}, {LG_GRPC_ABORTED, LG_EAGAIN},
        {LG_GRPC_OUT_OF_RANGE, LG_EAGAIN},      {LG_GRPC_UNIMPLEMENTED, LG_EINVAL},
        {LG_GRPC_INTERNAL, LG_EINVAL},          {LG_GRPC_UNAVAILABLE, LG_EAGAIN},
        {LG_GRPC_DATA_LOSS, LG_EAGAIN},         {LG_GRPC_UNAUTHENTICATED, LG_EINVAL},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        backend_script(&be, &cases[i].code, NULL, 1);
        struct lg_export_result res = send_grpc(&f, b);
        if (res.code != cases[i].want)
            fail_msg("status %s: got %d, want %d (%s)", lg_grpc_status_name(cases[i].code), res.code, cases[i].want, res.message);
        assert_non_null(strstr(res.message, lg_grpc_status_name(cases[i].code)));
    }
    assert_int_equal(be.spans_ok, 0);
    lg_batch_unref(b);
    grpc_fx_close(&f);
    backend_stop(&be);
}

static void test_grpc_partial_success_is_reported_as_rejected(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    be.partial_rejected = 2;
    grpc_backend_start(&be);
    char yaml[128];
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n", be.port);
    struct grpc_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(grpc_fx_open(&f, yaml, &err), 0);
    struct lg_batch *b = make_traces(1, 1, 5);
    struct lg_export_result res = send_grpc(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(res.rejected, 2);
    assert_non_null(strstr(res.message, "spans too old"));
    lg_batch_unref(b);
    grpc_fx_close(&f);
    backend_stop(&be);
}

static void test_grpc_backend_down_is_retryable(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    grpc_backend_start(&be);
    int port = be.port;
    backend_stop(&be); /* nothing listens on the port now */
    char yaml[128];
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n", port);
    struct grpc_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(grpc_fx_open(&f, yaml, &err), 0);
    struct lg_batch *b = make_traces(1, 1, 1);
    struct lg_export_result res;
    otlp_send(&f.st, b, lg_now_mono_ns() + SEC, &res);
    assert_int_equal(res.code, LG_EAGAIN);
    lg_batch_unref(b);
    grpc_fx_close(&f);
}

static void expect_grpc_conf_error(const char *yaml, const char *want)
{
    struct grpc_fx f;
    struct lg_err err = {{0}};
    int rc = grpc_fx_open(&f, yaml, &err);
    if (rc == LG_OK)
        fail_msg("accepted: %s", yaml);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
    free(f.st.target);
    holder_free(&f.h);
}

static void test_grpc_config_errors_name_the_key(void **state)
{
    (void)state;
    expect_grpc_conf_error("compression: gzip\n", "endpoint is required");
    expect_grpc_conf_error("endpoint: localhost:4317\ncompression: zstd\n", "compression: the gRPC exporter supports gzip or none");
    expect_grpc_conf_error("endpoint: ftp://x:1\n", "unsupported scheme");
    expect_grpc_conf_error("endpoint: localhost:4317\ntls: {insecure_skip_verify: true}\n", "tls.insecure_skip_verify");
    expect_grpc_conf_error("endpoint: localhost:4317\ntls: {ca_file: /nonexistent/ca.pem}\n", "tls.ca_file: cannot read");
    expect_grpc_conf_error("endpoint: localhost:4317\ntls: {cert_file: /etc/hostname}\n", "cert_file and key_file");
    expect_grpc_conf_error("endpoint: localhost:4317\nheaders: {\"bad name\": x}\n", "not a valid HTTP token");
    expect_grpc_conf_error("endpoint: localhost:4317\ntls: {min_version: \"1.3\"}\n", "tls.min_version");
}

static void test_grpc_endpoint_scheme_decides_tls(void **state)
{
    (void)state;
    struct grpc_fx f;
    struct lg_err err = {{0}};
    memset(&f, 0, sizeof f);
    assert_int_equal(apply(&f.h, otlp_fields, "endpoint: https://backend.example:4317/\n", &f.conf, &err), 0);
    assert_int_equal(otlp_state_init(&f.st, "otlp", &f.conf, f.h.doc.root, &err), 0);
    assert_string_equal(f.st.target, "backend.example:4317");
    assert_false(f.st.insecure);
    free(f.st.target);
    holder_free(&f.h);
    memset(&f, 0, sizeof f);
    assert_int_equal(apply(&f.h, otlp_fields, "endpoint: backend.example:4317\n", &f.conf, &err), 0);
    assert_int_equal(otlp_state_init(&f.st, "otlp", &f.conf, f.h.doc.root, &err), 0);
    assert_false(f.st.insecure); /* no scheme: TLS unless tls.insecure */
    free(f.st.target);
    holder_free(&f.h);
}

/* ---- HTTP tests ---- */

static void test_http_proto_gzip_on_the_wire_with_headers(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    http_backend_start(&be);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d/\nheaders: {X-Tenant: acme}\n", be.port);
    struct http_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    char want[64];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/v1/traces", be.port);
    assert_string_equal(f.st.url[LG_SIGNAL_TRACES], want);
    struct lg_batch *b = make_traces(1, 3, 4);
    struct lg_export_result res = send_http(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(be.spans_ok, 12);
    assert_string_equal(be.content_type, "application/x-protobuf");
    assert_string_equal(be.content_encoding, "gzip");
    assert_true(be.body_was_gzip);
    assert_string_equal(be.header, "acme");
    /* a second request reuses the pooled handle */
    res = send_http(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(f.st.npool, 1);
    assert_int_equal(be.spans_ok, 24);
    lg_batch_unref(b);
    http_fx_close(&f);
    backend_stop(&be);
}

static void test_http_json_encoding_with_zstd(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    http_backend_start(&be);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\nencoding: json\ncompression: zstd\n", be.port);
    struct http_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    struct lg_batch *b = make_traces(2, 1, 7);
    struct lg_export_result res = send_http(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_string_equal(be.content_type, "application/json");
    assert_true(be.body_was_zstd);
    assert_int_equal(be.spans_ok, 7);
    lg_batch_unref(b);
    http_fx_close(&f);
    backend_stop(&be);
}

static void test_http_status_classification_and_retry_after(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    http_backend_start(&be);
    char yaml[256];
    snprintf(yaml, sizeof yaml, "traces_endpoint: http://127.0.0.1:%d/custom/path\ncompression: none\n", be.port);
    struct http_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    assert_null(f.st.url[LG_SIGNAL_METRICS]);
    /* an HTTP-date 120 s ahead */
    char date[64];
    time_t later = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&later, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    static const struct {
        int status, want;
        const char *retry_after;
        int64_t min_ns, max_ns;
    } base[] = {
        {429, LG_EAGAIN, "7", 7 * SEC, 7 * SEC},
        {503, LG_EAGAIN, NULL, 100 * SEC, 121 * SEC}, /* date filled in below */
        {502, LG_EAGAIN, NULL, 0, 0},
        {504, LG_EAGAIN, "junk", 0, 0},
        {500, LG_EINVAL, NULL, 0, 0},
        {400, LG_EINVAL, NULL, 0, 0},
        {401, LG_EINVAL, NULL, 0, 0},
        {404, LG_EINVAL, NULL, 0, 0},
        {413, LG_EINVAL, NULL, 0, 0},
    };
    struct lg_batch *b = make_traces(1, 1, 2);
    for (size_t i = 0; i < LG_ARRAY_LEN(base); i++) {
        const char *ra = i == 1 ? date : base[i].retry_after;
        backend_script(&be, &base[i].status, &ra, 1);
        struct lg_export_result res = send_http(&f, b);
        if (res.code != base[i].want)
            fail_msg("HTTP %d: got %d, want %d (%s)", base[i].status, res.code, base[i].want, res.message);
        if (res.retry_after_ns < base[i].min_ns || res.retry_after_ns > base[i].max_ns)
            fail_msg("HTTP %d: retry_after %lld ns out of [%lld, %lld]", base[i].status, (long long)res.retry_after_ns,
                     (long long)base[i].min_ns, (long long)base[i].max_ns);
        char want[32];
        snprintf(want, sizeof want, "scripted %d", base[i].status); /* the Status body's message */
        assert_non_null(strstr(res.message, want));
    }
    assert_int_equal(be.spans_ok, 0);
    assert_int_equal(send_http(&f, b).code, LG_OK);
    assert_int_equal(be.spans_ok, 2);
    /* a signal without a URL is a permanent error, not a hang */
    struct lg_batch *m = lg_batch_create(LG_SIGNAL_METRICS, 0);
    struct lg_export_result res;
    http_send(&f.st, m, lg_now_mono_ns() + SEC, &res);
    assert_int_equal(res.code, LG_EINVAL);
    lg_batch_unref(m);
    lg_batch_unref(b);
    http_fx_close(&f);
    backend_stop(&be);
}

static void test_http_partial_success_in_proto_and_json(void **state)
{
    (void)state;
    for (int json = 0; json <= 1; json++) {
        struct backend be;
        backend_init(&be);
        be.partial_rejected = 3;
        be.respond_json = json;
        http_backend_start(&be);
        char yaml[256];
        snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\nencoding: %s\n", be.port, json ? "json" : "proto");
        struct http_fx f;
        struct lg_err err = {{0}};
        assert_int_equal(http_fx_open(&f, yaml, &err), 0);
        struct lg_batch *b = make_traces(1, 1, 5);
        struct lg_export_result res = send_http(&f, b);
        assert_int_equal(res.code, LG_OK);
        assert_int_equal(res.rejected, 3);
        assert_non_null(strstr(res.message, "spans too old"));
        lg_batch_unref(b);
        http_fx_close(&f);
        backend_stop(&be);
    }
}

static void test_http_connection_refused_is_retryable(void **state)
{
    (void)state;
    struct backend be;
    backend_init(&be);
    http_backend_start(&be);
    int port = be.port;
    backend_stop(&be);
    char yaml[128];
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n", port);
    struct http_fx f;
    struct lg_err err = {{0}};
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    struct lg_batch *b = make_traces(1, 1, 1);
    struct lg_export_result res = send_http(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    lg_batch_unref(b);
    http_fx_close(&f);
}

static void expect_http_conf_error(const char *yaml, const char *want)
{
    struct http_fx f;
    struct lg_err err = {{0}};
    int rc = http_fx_open(&f, yaml, &err);
    if (rc == LG_OK)
        fail_msg("accepted: %s", yaml);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
    http_fx_close(&f);
}

static void test_http_config_errors_name_the_key(void **state)
{
    (void)state;
    expect_http_conf_error("compression: gzip\n", "endpoint (or traces_endpoint");
    expect_http_conf_error("endpoint: localhost:4318\n", "endpoint: expected an http:// or https:// URL");
    expect_http_conf_error("endpoint: http://x\ncompression: snappy\n", "compression: expected gzip, zstd or none");
    expect_http_conf_error("endpoint: http://x\nencoding: xml\n", "encoding: expected proto or json");
    expect_http_conf_error("endpoint: http://x\ntls: {min_version: \"2.0\"}\n", "tls.min_version");
    expect_http_conf_error("endpoint: http://x\nlogs_endpoint: x\n", "logs_endpoint: expected an http");
}


/* ---- TLS and mTLS, with certificates made here by the openssl CLI ---- */

struct certs {
    char dir[64];
    char ca[128], srv_cert[128], srv_key[128], cli_cert[128], cli_key[128];
};

static void make_certs(struct certs *c)
{
    snprintf(c->dir, sizeof c->dir, "/tmp/lg-otlp-tls-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile san.ext && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout cli.key -out cli.csr -subj /CN=client && "
             "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2",
             c->dir);
    char quiet[2200];
    snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
    assert_int_equal(system(quiet), 0);
    snprintf(c->ca, sizeof c->ca, "%s/ca.pem", c->dir);
    snprintf(c->srv_cert, sizeof c->srv_cert, "%s/srv.pem", c->dir);
    snprintf(c->srv_key, sizeof c->srv_key, "%s/srv.key", c->dir);
    snprintf(c->cli_cert, sizeof c->cli_cert, "%s/cli.pem", c->dir);
    snprintf(c->cli_key, sizeof c->cli_key, "%s/cli.key", c->dir);
}

static void remove_certs(struct certs *c)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", c->dir);
    assert_int_equal(system(cmd), 0);
}

static void test_http_mtls_verifies_the_server_and_presents_the_client_cert(void **state)
{
    (void)state;
    struct certs c;
    make_certs(&c);
    struct backend be;
    backend_init(&be);
    struct lg_err err = {{0}};
    struct lg_http_server_opts o = {.endpoint = "127.0.0.1:0", .tls_cert_file = c.srv_cert,
                                    .tls_key_file = c.srv_key, .tls_client_ca_file = c.ca};
    assert_int_equal(lg_http_server_start(&o, http_export, &be, &be.http, &err), 0);
    be.port = lg_http_server_port(be.http);
    struct lg_batch *b = make_traces(1, 1, 3);
    char yaml[1024];
    struct http_fx f;

    snprintf(yaml, sizeof yaml, "endpoint: https://127.0.0.1:%d\ntls: {ca_file: %s, cert_file: %s, key_file: %s}\n",
             be.port, c.ca, c.cli_cert, c.cli_key);
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    struct lg_export_result res = send_http(&f, b);
    if (res.code != LG_OK)
        fail_msg("mTLS send failed: %s", res.message);
    assert_int_equal(be.spans_ok, 3);
    http_fx_close(&f);

    /* no client certificate: the server refuses the handshake */
    snprintf(yaml, sizeof yaml, "endpoint: https://127.0.0.1:%d\ntls: {ca_file: %s}\n", be.port, c.ca);
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    assert_int_not_equal(send_http(&f, b).code, LG_OK);
    http_fx_close(&f);

    /* the server's CA not trusted (system roots): verification fails */
    snprintf(yaml, sizeof yaml, "endpoint: https://127.0.0.1:%d\ntls: {cert_file: %s, key_file: %s}\n", be.port,
             c.cli_cert, c.cli_key);
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    assert_int_not_equal(send_http(&f, b).code, LG_OK);
    http_fx_close(&f);

    /* ... unless verification is switched off */
    snprintf(yaml, sizeof yaml, "endpoint: https://127.0.0.1:%d\ntls: {insecure_skip_verify: true, cert_file: %s, key_file: %s}\n",
             be.port, c.cli_cert, c.cli_key);
    assert_int_equal(http_fx_open(&f, yaml, &err), 0);
    assert_int_equal(send_http(&f, b).code, LG_OK);
    http_fx_close(&f);
    assert_int_equal(be.spans_ok, 6);

    lg_batch_unref(b);
    backend_stop(&be);
    remove_certs(&c);
}

static void test_grpc_mtls_verifies_the_server_and_presents_the_client_cert(void **state)
{
    (void)state;
    struct certs c;
    make_certs(&c);
    struct backend be;
    backend_init(&be);
    struct lg_err err = {{0}};
    struct lg_grpc_server_opts o = {.endpoint = "127.0.0.1:0", .tls_cert_file = c.srv_cert,
                                    .tls_key_file = c.srv_key, .tls_client_ca_file = c.ca};
    be.grpc = lg_grpc_server_create(&o, &err);
    assert_non_null(be.grpc);
    assert_int_equal(lg_grpc_server_add_method(be.grpc, TRACE_METHOD, grpc_export, &be, &err), 0);
    assert_int_equal(lg_grpc_server_start(be.grpc, &err), 0);
    be.port = lg_grpc_server_port(be.grpc);
    struct lg_batch *b = make_traces(1, 1, 4);
    char yaml[1024];
    struct grpc_fx f;

    snprintf(yaml, sizeof yaml, "endpoint: 127.0.0.1:%d\ntls: {ca_file: %s, cert_file: %s, key_file: %s}\n",
             be.port, c.ca, c.cli_cert, c.cli_key);
    if (grpc_fx_open(&f, yaml, &err) != LG_OK)
        fail_msg("%s", err.msg);
    assert_false(f.st.insecure);
    struct lg_export_result res = send_grpc(&f, b);
    if (res.code != LG_OK)
        fail_msg("mTLS send failed: %s", res.message);
    assert_int_equal(be.spans_ok, 4);
    grpc_fx_close(&f);

    /* plaintext to a TLS server fails, retryably (it is a connection failure) */
    snprintf(yaml, sizeof yaml, "endpoint: http://127.0.0.1:%d\n", be.port);
    assert_int_equal(grpc_fx_open(&f, yaml, &err), 0);
    res = send_grpc(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    grpc_fx_close(&f);

    /* no client certificate: refused */
    snprintf(yaml, sizeof yaml, "endpoint: https://127.0.0.1:%d\ntls: {ca_file: %s}\n", be.port, c.ca);
    assert_int_equal(grpc_fx_open(&f, yaml, &err), 0);
    assert_int_not_equal(send_grpc(&f, b).code, LG_OK);
    grpc_fx_close(&f);
    assert_int_equal(be.spans_ok, 4);

    lg_batch_unref(b);
    backend_stop(&be);
    remove_certs(&c);
}

/* ---- through the runtime and the exporter helper ---- */

static int build_rt(struct lg_runtime *rt, const char *yaml, struct lg_err *err)
{
    struct lg_conf_source src = {.text = yaml, .name = "t.yaml"};
    struct lg_conf_doc doc;
    memset(rt, 0, sizeof *rt);
    int rc = lg_conf_load(&src, 1, NULL, NULL, &doc, err);
    if (rc != LG_OK)
        return rc;
    return lg_runtime_build(rt, &doc, err);
}

static struct lg_component *find_component(struct lg_runtime *rt, const char *id)
{
    for (size_t i = 0; i < rt->ncomponents; i++)
        if (strcmp(rt->components[i]->id, id) == 0 && rt->components[i]->type->kind == LG_EXPORTER)
            return rt->components[i];
    return NULL;
}

static bool wait_spans(struct backend *be, size_t want)
{
    for (int i = 0; i < 1000; i++) { /* bounded: 10 s */
        pthread_mutex_lock(&be->lock);
        size_t n = be->spans_ok;
        pthread_mutex_unlock(&be->lock);
        if (n >= want)
            return n == want;
        usleep(10000);
    }
    return false;
}

static void run_helper_retry(bool grpc)
{
    struct backend be;
    backend_init(&be);
    if (grpc)
        grpc_backend_start(&be);
    else
        http_backend_start(&be);
    int codes_grpc[] = {LG_GRPC_UNAVAILABLE, LG_GRPC_ABORTED};
    int codes_http[] = {503, 429};
    const char *ra[] = {NULL, "1"};
    backend_script(&be, grpc ? codes_grpc : codes_http, grpc ? NULL : ra, 2);
    be.partial_rejected = 4; /* the final OK rejects 4 of the 10 spans */
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}}\n"
             "exporters:\n"
             "  %s:\n"
             "    endpoint: http://127.0.0.1:%d\n"
             "    headers: {x-tenant: acme}\n"
             "    auth: {authenticator: bearertokenauth/backend}\n"
             "    retry_on_failure: {initial_interval: 10ms, max_interval: 50ms, randomization_factor: 0}\n"
             "    sending_queue: {num_consumers: 2}\n"
             "extensions: {bearertokenauth/backend: {token: s3cret}}\n"
             "service: {extensions: [bearertokenauth/backend], pipelines: {traces: {receivers: [otlp], exporters: [%s]}}}\n",
             grpc ? "otlp_grpc" : "otlphttp", be.port, grpc ? "otlp_grpc" : "otlphttp");
    struct lg_runtime rt;
    struct lg_err err = {{0}};
    if (build_rt(&rt, yaml, &err) != LG_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(lg_runtime_start(&rt, &err), 0);
    struct lg_component *c = find_component(&rt, grpc ? "otlp_grpc" : "otlphttp");
    assert_non_null(c);
    struct lg_batch *b = make_traces(3, 2, 5);
    assert_int_equal(c->type->consume(c, b), LG_OK);
    lg_batch_unref(b);
    assert_true(wait_spans(&be, 10)); /* exactly once, after two retryable refusals */
    assert_int_equal(be.requests, 3);
    assert_string_equal(be.header, "acme");
    assert_string_equal(be.auth, "Bearer s3cret"); /* from the authenticator extension */
    const char *id = grpc ? "exporter=\"otlp_grpc\"" : "exporter=\"otlphttp\"";
    struct lg_counter *sent = lg_telemetry_counter(rt.telemetry, "otelcol_exporter_sent_spans", "", id);
    struct lg_counter *failed = lg_telemetry_counter(rt.telemetry, "otelcol_exporter_send_failed_spans", "", id);
    for (int i = 0; i < 500 && lg_counter_value(sent) + lg_counter_value(failed) < 10; i++)
        usleep(10000);
    assert_int_equal(lg_counter_value(sent), 6);
    assert_int_equal(lg_counter_value(failed), 4); /* partial success counted as failed */
    lg_runtime_shutdown(&rt, lg_now_mono_ns() + 5 * SEC);
    lg_runtime_destroy(&rt);
    backend_stop(&be);
}

static void test_auth_names_an_unknown_extension(void **state)
{
    (void)state;
    struct lg_runtime rt;
    struct lg_err err = {{0}};
    int rc = build_rt(&rt,
                      "receivers: {otlp: {protocols: {http: {endpoint: \"127.0.0.1:0\"}}}}\n"
                      "exporters: {otlp_http: {endpoint: \"http://127.0.0.1:1\", auth: {authenticator: bearertokenauth}}}\n"
                      "service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp_http]}}}\n",
                      &err);
    assert_int_not_equal(rc, LG_OK);
    if (strstr(err.msg, "exporters.otlp_http.auth.authenticator") == NULL)
        fail_msg("error does not name the key: %s", err.msg);
    lg_runtime_destroy(&rt);
}

static void test_grpc_exporter_retries_through_the_helper(void **state)
{
    (void)state;
    run_helper_retry(true);
}

static void test_http_exporter_retries_through_the_helper(void **state)
{
    (void)state;
    run_helper_retry(false);
}

int main(void)
{
    lg_log_configure(LG_LOG_ERROR, LG_LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_ok_delivers_spans_with_headers),
        cmocka_unit_test(test_grpc_status_classification_follows_the_collector),
        cmocka_unit_test(test_grpc_partial_success_is_reported_as_rejected),
        cmocka_unit_test(test_grpc_backend_down_is_retryable),
        cmocka_unit_test(test_grpc_config_errors_name_the_key),
        cmocka_unit_test(test_grpc_endpoint_scheme_decides_tls),
        cmocka_unit_test(test_http_proto_gzip_on_the_wire_with_headers),
        cmocka_unit_test(test_http_json_encoding_with_zstd),
        cmocka_unit_test(test_http_status_classification_and_retry_after),
        cmocka_unit_test(test_http_partial_success_in_proto_and_json),
        cmocka_unit_test(test_http_connection_refused_is_retryable),
        cmocka_unit_test(test_http_config_errors_name_the_key),
        cmocka_unit_test(test_http_mtls_verifies_the_server_and_presents_the_client_cert),
        cmocka_unit_test(test_grpc_mtls_verifies_the_server_and_presents_the_client_cert),
        cmocka_unit_test(test_auth_names_an_unknown_extension),
        cmocka_unit_test(test_grpc_exporter_retries_through_the_helper),
        cmocka_unit_test(test_http_exporter_retries_through_the_helper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
