/* tests/unit/test_azure_monitor.c — the azure_monitor exporter's transport half: connection
 * string parsing, config errors naming YAML paths, and send() against a scripted fake
 * ingestion server on 127.0.0.1 (core/httpd.h): gzip'd JSON array on the wire, 200, 206
 * with per-item codes (only retriable items resent, "Telemetry sampled out." never),
 * retryable statuses with Retry-After, 400/401 permanent, 307 followed and remembered, and
 * Entra ID (client secret) with a token endpoint on the same fake: Bearer header, one
 * fetch for many requests, a new token after a 401.
 *
 * The exporter source is included (its component symbol renamed) so send() and the state
 * can be driven directly; the mapper is replaced by a fake that makes one envelope
 * {"seq":N} per span, so these tests do not depend on the mapping half. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <zlib.h> /* the fake server inflates request bodies */

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define lg_azure_monitor_exporter test_azure_monitor_exporter_copy
#include "exporters/azure_monitor.c"
#undef lg_azure_monitor_exporter

#include "core/httpd.h"
#include "tests/unit/sink.h"

#define SEC 1000000000LL
#define GUID "00000000-0000-4000-8000-000000000001"

/* ---- fake mapper: one envelope {"seq":N} per span, N counting up per call ---- */

static int fake_seq_base;
static bool fake_pad; /* add ~200 bytes of poorly compressible text per envelope */

static int fake_map(const struct lg_batch *b, const struct lg_azmon_map_opts *o, struct lg_azmon_items *out)
{
    (void)o;
    for (size_t i = 0; i < b->items; i++) {
        char buf[512];
        int n;
        if (fake_pad) {
            char pad[201];
            uint32_t x = (uint32_t)(i * 2654435761u + 12345u);
            for (int k = 0; k < 200; k++) {
                x = x * 1103515245u + 12345u;
                pad[k] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[(x >> 16) % 62];
            }
            pad[200] = '\0';
            n = snprintf(buf, sizeof buf, "{\"seq\":%d,\"pad\":\"%s\"}", fake_seq_base + (int)i, pad);
        } else {
            n = snprintf(buf, sizeof buf, "{\"seq\":%d}", fake_seq_base + (int)i);
        }
        if (lg_azmon_items_add(out, buf, (size_t)n) != LG_OK)
            return LG_ENOMEM;
    }
    return LG_OK;
}

/* ---- scripted fake ingestion ---- */

#define SCRIPT_MAX 16
#define SEQ_MAX 256

struct answer {
    int status;
    const char *item_codes; /* "200,500,400": a 206 (or 200) built from per-item codes */
    const char *retry_after;
    const char *location;   /* 307/308 */
    bool sampled_out;       /* items with code 400 say "Telemetry sampled out." */
};

struct fake {
    pthread_mutex_t lock;
    struct answer script[SCRIPT_MAX];
    size_t nscript, next;
    size_t requests;
    int seqs[SCRIPT_MAX][SEQ_MAX]; /* seq values per request */
    size_t nseqs[SCRIPT_MAX];
    size_t last_n;                 /* envelopes in the last track request */
    bool gzip_ok;                  /* every track request was gzip'd JSON */
    char auth[SCRIPT_MAX][256];
    /* token endpoint */
    size_t token_fetches;
    int expires_in;
    char token_form[1024];
    int reject_token;              /* answer 401 to requests bearing this token number (0: none) */
    struct lg_http_server *http;
    int port;
};

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return NULL;
    size_t cap = len * 20 + 1024;
    uint8_t *out = malloc(cap + 1);
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
    out[*out_len] = '\0';
    return out;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fake *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(buf);
    uint8_t *raw = malloc(len + 1);
    evbuffer_remove(buf, raw, len);
    raw[len] = '\0';
    struct evkeyvalq *outh = evhttp_request_get_output_headers(req);
    struct evbuffer *ob = evbuffer_new();
    evhttp_add_header(outh, "Content-Type", "application/json");
    pthread_mutex_lock(&f->lock);
    if (strstr(uri, "/oauth2/v2.0/token") != NULL) {
        f->token_fetches++;
        snprintf(f->token_form, sizeof f->token_form, "%s", (const char *)raw);
        evbuffer_add_printf(ob, "{\"token_type\":\"Bearer\",\"expires_in\":%d,\"access_token\":\"tok-%zu\"}", f->expires_in,
                            f->token_fetches);
        pthread_mutex_unlock(&f->lock);
        evhttp_send_reply(req, 200, "OK", ob);
        evbuffer_free(ob);
        free(raw);
        return;
    }
    size_t r = f->requests++;
    const char *ce = evhttp_find_header(in, "Content-Encoding");
    const char *auth = evhttp_find_header(in, "Authorization");
    size_t blen = 0;
    uint8_t *body = ce && strcmp(ce, "gzip") == 0 ? gunzip(raw, len, &blen) : NULL;
    if (body == NULL)
        f->gzip_ok = false;
    cJSON *arr = body ? cJSON_Parse((const char *)body) : NULL;
    size_t n = (size_t)cJSON_GetArraySize(arr);
    f->last_n = n;
    if (r < SCRIPT_MAX) {
        snprintf(f->auth[r], sizeof f->auth[r], "%s", auth ? auth : "");
        for (size_t i = 0; i < n && i < SEQ_MAX; i++)
            f->seqs[r][i] = cJSON_GetObjectItem(cJSON_GetArrayItem(arr, (int)i), "seq")->valueint;
        f->nseqs[r] = n < SEQ_MAX ? n : SEQ_MAX;
    }
    cJSON_Delete(arr);
    free(body);
    struct answer a = {.status = 200};
    if (f->next < f->nscript)
        a = f->script[f->next++];
    if (f->reject_token > 0 && auth != NULL) {
        char bad[32];
        snprintf(bad, sizeof bad, "Bearer tok-%d", f->reject_token);
        if (strcmp(auth, bad) == 0)
            a = (struct answer){.status = 401};
    }
    pthread_mutex_unlock(&f->lock);
    if (a.retry_after)
        evhttp_add_header(outh, "Retry-After", a.retry_after);
    if (a.location)
        evhttp_add_header(outh, "Location", a.location);
    if (a.item_codes) {
        /* per-item codes, in order, over the envelopes received */
        int accepted = 0, errors = 0;
        evbuffer_add_printf(ob, "{\"itemsReceived\":%zu,\"errors\":[", n);
        const char *p = a.item_codes;
        for (size_t i = 0; i < n && *p; i++) {
            int c = atoi(p);
            if (c == 200) {
                accepted++;
            } else {
                evbuffer_add_printf(ob, "%s{\"index\":%zu,\"statusCode\":%d,\"message\":\"%s\"}", errors ? "," : "", i, c,
                                    a.sampled_out && c == 400 ? "Telemetry sampled out." : "scripted");
                errors++;
            }
            p = strchr(p, ',');
            if (p == NULL)
                break;
            p++;
        }
        evbuffer_add_printf(ob, "],\"itemsAccepted\":%d}", accepted);
        evhttp_send_reply(req, errors ? 206 : 200, "Scripted", ob);
    } else {
        if (a.status == 200)
            evbuffer_add_printf(ob, "{\"itemsReceived\":%zu,\"itemsAccepted\":%zu,\"errors\":[]}", n, n);
        else
            evbuffer_add_printf(ob, "{\"error\":\"scripted %d\"}", a.status);
        evhttp_send_reply(req, a.status, "Scripted", ob);
    }
    evbuffer_free(ob);
    free(raw);
}

static void fake_start(struct fake *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->gzip_ok = true;
    f->expires_in = 3600;
    struct lg_err err = {{0}};
    struct lg_http_server_opts o = {.endpoint = "127.0.0.1:0"};
    assert_int_equal(lg_http_server_start(&o, on_request, f, &f->http, &err), 0);
    f->port = lg_http_server_port(f->http);
}

static void fake_stop(struct fake *f)
{
    lg_http_server_stop(f->http, lg_now_mono_ns() + SEC);
    lg_http_server_free(f->http);
    pthread_mutex_destroy(&f->lock);
}

static void fake_script(struct fake *f, const struct answer *a, size_t n)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < n; i++)
        f->script[f->nscript++] = a[i];
    pthread_mutex_unlock(&f->lock);
}

/* ---- exporter state from YAML ---- */

struct fx {
    struct lg_conf_doc doc;
    struct lg_arena *arena;
    struct azmon_conf conf;
    struct azmon_state st;
    struct lg_telemetry *t;
};

static int fx_open(struct fx *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    struct lg_conf_source src = {.text = yaml, .name = "t.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->arena = lg_arena_create(4096);
    f->t = lg_telemetry_create();
    rc = lg_conf_apply(azmon_fields, f->doc.root, f->doc.root, &f->conf, f->arena, err);
    if (rc == LG_OK)
        rc = azmon_state_init(&f->st, "azure_monitor", &f->conf, f->doc.root, f->t, err);
    f->st.map = fake_map;
    return rc;
}

static void fx_close(struct fx *f)
{
    azmon_state_fini(&f->st);
    lg_telemetry_destroy(f->t);
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
}

static struct lg_export_result send_once(struct fx *f, struct lg_batch *b)
{
    struct lg_export_result res;
    azmon_send(&f->st, b, lg_now_mono_ns() + 5 * SEC, &res);
    return res;
}

static char *yaml_for(const struct fake *f, const char *extra)
{
    static char y[2048];
    snprintf(y, sizeof y, "connection_string: \"InstrumentationKey=%s;IngestionEndpoint=http://127.0.0.1:%d/\"\n%s", GUID,
             f ? f->port : 1, extra ? extra : "");
    return y;
}

/* ---- connection string ---- */

static void test_connection_string_parsing(void **state)
{
    (void)state;
    struct azmon_cs cs;
    char msg[512];
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID, &cs, msg, sizeof msg), 0);
    assert_string_equal(cs.ikey, GUID);
    assert_string_equal(cs.ingestion, "https://dc.services.visualstudio.com");
    assert_null(cs.aad_audience);
    cs_free(&cs);

    /* keys case-insensitive, trimmed, empty segments ignored, explicit endpoint wins, its
     * trailing '/' dropped, http:// kept */
    assert_int_equal(azmon_parse_connection_string(" ;instrumentationkey = " GUID " ;; INGESTIONENDPOINT=http://proxy:8080/ ;"
                                                   "EndpointSuffix=ai.example;AADAudience=https://monitor.azure.com/;"
                                                   "LiveEndpoint=https://live/",
                                                   &cs, msg, sizeof msg),
                     0);
    assert_string_equal(cs.ingestion, "http://proxy:8080");
    assert_string_equal(cs.aad_audience, "https://monitor.azure.com/");
    cs_free(&cs);

    /* EndpointSuffix with and without Location */
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";EndpointSuffix=applicationinsights.azure.cn;"
                                                   "Location=chinaeast2",
                                                   &cs, msg, sizeof msg),
                     0);
    assert_string_equal(cs.ingestion, "https://chinaeast2.dc.applicationinsights.azure.cn");
    cs_free(&cs);
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";EndpointSuffix=.example.com", &cs, msg, sizeof msg), 0);
    assert_string_equal(cs.ingestion, "https://dc.example.com");
    cs_free(&cs);

    /* the value is split on the first '=' only */
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";IngestionEndpoint=https://h/?a=b", &cs, msg, sizeof msg), 0);
    assert_string_equal(cs.ingestion, "https://h/?a=b");
    cs_free(&cs);

    assert_int_equal(azmon_parse_connection_string("IngestionEndpoint=https://x", &cs, msg, sizeof msg), LG_EINVAL);
    assert_non_null(strstr(msg, "InstrumentationKey is missing"));
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=not-a-guid", &cs, msg, sizeof msg), LG_EINVAL);
    assert_non_null(strstr(msg, "not a GUID"));
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";Authorization=aad", &cs, msg, sizeof msg), LG_EINVAL);
    assert_non_null(strstr(msg, "Authorization=aad"));
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";Authorization=ikey", &cs, msg, sizeof msg), 0);
    cs_free(&cs);
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";junk", &cs, msg, sizeof msg), LG_EINVAL);
    assert_non_null(strstr(msg, "segment 2"));
    assert_int_equal(azmon_parse_connection_string("InstrumentationKey=" GUID ";IngestionEndpoint=ftp://x", &cs, msg, sizeof msg), LG_EINVAL);
    assert_non_null(strstr(msg, "IngestionEndpoint"));
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    memcpy(big, "InstrumentationKey=" GUID ";x=", 57);
    assert_int_equal(azmon_parse_connection_string(big, &cs, msg, sizeof msg), LG_EINVAL);
    assert_non_null(strstr(msg, "4096"));
    free(big);
}

static void test_config_errors_name_the_yaml_path(void **state)
{
    (void)state;
    struct fx f;
    struct lg_err err = {{0}};
    unsetenv("APPLICATIONINSIGHTS_CONNECTION_STRING");
    unsetenv("AZURE_CLIENT_ID");
    unsetenv("AZURE_TENANT_ID");
    unsetenv("AZURE_FEDERATED_TOKEN_FILE");
    assert_int_equal(fx_open(&f, "connection_string: \"InstrumentationKey=nope\"\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "connection_string"));
    assert_non_null(strstr(err.msg, "not a GUID"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, "compression: none\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "APPLICATIONINSIGHTS_CONNECTION_STRING"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, yaml_for(NULL, "compression: zstd\n"), &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "compression"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, yaml_for(NULL, "entra_id: {tenant_id: t}\n"), &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "entra_id"));
    assert_non_null(strstr(err.msg, "client_id is required"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, yaml_for(NULL, "entra_id: {client_id: c, tenant_id: t, client_secret: s, federated_token_file: /x}\n"), &err),
                     LG_EINVAL);
    assert_non_null(strstr(err.msg, "only one of"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, yaml_for(NULL, "entra_id: {client_id: c, client_secret: s}\n"), &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "entra_id"));
    assert_non_null(strstr(err.msg, "tenant_id is required"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, yaml_for(NULL, "entra_id: {client_id: c, tenant_id: t, client_certificate_file: /nonexistent.pem}\n"), &err),
                     LG_EINVAL);
    assert_non_null(strstr(err.msg, "entra_id.client_certificate_file"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, "instrumentation_key: xyz\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "instrumentation_key"));
    fx_close(&f);

    assert_int_equal(fx_open(&f, yaml_for(NULL, "tls: {ca_file: /nonexistent/ca.pem}\n"), &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "tls.ca_file"));
    fx_close(&f);
}

static void test_config_sources_and_urls(void **state)
{
    (void)state;
    struct fx f;
    struct lg_err err = {{0}};
    /* env fallback, with the error naming the variable */
    setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=bad", 1);
    assert_int_equal(fx_open(&f, "compression: none\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "env APPLICATIONINSIGHTS_CONNECTION_STRING"));
    fx_close(&f);
    setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=" GUID ";IngestionEndpoint=https://env.example/", 1);
    assert_int_equal(fx_open(&f, "compression: none\n", &err), 0);
    assert_string_equal(f.st.url, "https://env.example/v2.1/track");
    assert_string_equal(f.st.ikey, GUID);
    assert_string_equal(f.st.scope, "https://monitor.azure.com//.default");
    assert_false(f.st.gzip);
    fx_close(&f);
    unsetenv("APPLICATIONINSIGHTS_CONNECTION_STRING");

    /* legacy pair: the Collector's full track URL kept, a bare base completed */
    assert_int_equal(fx_open(&f, "instrumentation_key: " GUID "\nendpoint: https://dc.example/v2/track\n", &err), 0);
    assert_string_equal(f.st.url, "https://dc.example/v2/track");
    assert_true(f.st.gzip);
    fx_close(&f);
    assert_int_equal(fx_open(&f, "instrumentation_key: " GUID "\n", &err), 0);
    assert_string_equal(f.st.url, "https://dc.services.visualstudio.com/v2.1/track");
    fx_close(&f);

    /* AADAudience sets the Entra ID scope */
    assert_int_equal(fx_open(&f, "connection_string: \"InstrumentationKey=" GUID ";AADAudience=https://monitor.azure.us/\"\n", &err), 0);
    assert_string_equal(f.st.scope, "https://monitor.azure.us//.default");
    fx_close(&f);
}

/* ---- transport ---- */

static void assert_seqs(struct fake *f, size_t req, const int *want, size_t n)
{
    assert_int_equal(f->nseqs[req], n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(f->seqs[req][i], want[i]);
}

static uint64_t cval(struct lg_counter *c)
{
    return lg_counter_value(c);
}

static void test_200_gzip_array(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&fk, NULL), &err), 0);
    fake_seq_base = 100;
    struct lg_batch *b = make_traces(1, 1, 3);
    struct lg_export_result res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(res.rejected, 0);
    assert_int_equal(fk.requests, 1);
    assert_true(fk.gzip_ok);
    assert_seqs(&fk, 0, (int[]){100, 101, 102}, 3);
    assert_string_equal(fk.auth[0], "");
    assert_int_equal(cval(f.st.c_sent), 3);
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

static void test_large_body_grows_the_buffer(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&fk, "maxbatchsize: 5000\n"), &err), 0);
    fake_pad = true;
    fake_seq_base = 0;
    struct lg_batch *b = make_traces(11, 1, 3000);
    for (int i = 0; i < 2; i++) { /* the second reuses the buffers of the first */
        struct lg_export_result res = send_once(&f, b);
        assert_int_equal(res.code, LG_OK);
        assert_true(fk.gzip_ok);
        assert_int_equal(fk.last_n, 3000);
    }
    assert_int_equal(fk.seqs[0][255], 255);
    assert_int_equal(cval(f.st.c_sent), 6000);
    fake_pad = false;
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

static void test_maxbatchsize_splits_and_a_retryable_answer_ends_the_attempt(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct answer a[] = {
        {.status = 200},                  /* envelopes 0-3 */
        {.item_codes = "200,500,400,200"}, /* 4-7: 5 kept, 6 refused */
        {.status = 503, .retry_after = "2"}, /* 8-9: the attempt ends here */
        {.status = 200},                  /* retry: 5, 8, 9 in one request */
    };
    fake_script(&fk, a, 4);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&fk, "maxbatchsize: 4\n"), &err), 0);
    fake_seq_base = 0;
    struct lg_batch *b = make_traces(12, 1, 10);
    struct lg_export_result res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    assert_int_equal(res.retry_after_ns, 2 * SEC);
    assert_non_null(strstr(res.message, "HTTP 503"));
    assert_non_null(strstr(res.message, "6 accepted, 1 refused, 3 to resend"));
    assert_int_equal(fk.requests, 3);
    assert_seqs(&fk, 0, (int[]){0, 1, 2, 3}, 4);
    assert_seqs(&fk, 1, (int[]){4, 5, 6, 7}, 4);
    assert_seqs(&fk, 2, (int[]){8, 9}, 2);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(res.rejected, 1);
    assert_seqs(&fk, 3, (int[]){5, 8, 9}, 3);
    assert_int_equal(cval(f.st.c_sent), 9);
    assert_int_equal(cval(f.st.c_rejected), 1);
    lg_batch_unref(b);

    /* every request of a batch refused: a permanent failure of the batch */
    struct answer refuse[] = {{.status = 400}, {.status = 400}, {.status = 400}};
    fake_script(&fk, refuse, 3);
    b = make_traces(13, 1, 9);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_EINVAL);
    assert_non_null(strstr(res.message, "HTTP 400"));
    assert_int_equal(fk.requests, 7);
    assert_int_equal(cval(f.st.c_rejected), 10);
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

static void test_206_resends_only_retriable_items(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct answer a[] = {
        {.item_codes = "200,500,400,429,200,439,503"},
        {.item_codes = "200,503,200,200"}, /* of the 4 resent: only the 2nd again */
    };
    fake_script(&fk, a, 2);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&fk, NULL), &err), 0);
    fake_seq_base = 0;
    struct lg_batch *b = make_traces(2, 1, 7);
    struct lg_export_result res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    assert_non_null(strstr(res.message, "2 accepted, 1 refused, 4 to resend"));
    fake_seq_base = 1000; /* a re-map would show up as 1000+ */
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(res.rejected, 1);
    assert_int_equal(fk.requests, 3);
    assert_seqs(&fk, 0, (int[]){0, 1, 2, 3, 4, 5, 6}, 7);
    assert_seqs(&fk, 1, (int[]){1, 3, 5, 6}, 4);
    assert_seqs(&fk, 2, (int[]){3}, 1);
    assert_int_equal(cval(f.st.c_sent), 6);
    assert_int_equal(cval(f.st.c_rejected), 1);
    assert_int_equal(cval(f.st.c_retried), 5);

    /* the next batch on this thread starts afresh */
    fake_seq_base = 50;
    lg_batch_unref(b);
    b = make_traces(3, 1, 2);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_seqs(&fk, 3, (int[]){50, 51}, 2);
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

static void test_206_sampled_out_is_never_retried(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct answer a[] = {{.item_codes = "200,400,200", .sampled_out = true}};
    fake_script(&fk, a, 1);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&fk, NULL), &err), 0);
    struct lg_batch *b = make_traces(4, 1, 3);
    struct lg_export_result res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(res.rejected, 1);
    assert_int_equal(cval(f.st.c_sampled_out), 1);
    assert_int_equal(cval(f.st.c_rejected), 1);
    assert_int_equal(cval(f.st.c_sent), 2);
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

static void test_status_classification(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct answer a[] = {
        {.status = 429, .retry_after = "7"}, {.status = 503, .retry_after = "Fri, 31 Dec 2100 23:59:59 GMT"},
        {.status = 439}, {.status = 500}, {.status = 408}, {.status = 502}, {.status = 504},
        {.status = 400}, {.status = 401}, {.status = 404},
    };
    fake_script(&fk, a, 10);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&fk, NULL), &err), 0);
    struct lg_batch *b = make_traces(5, 1, 2);
    struct lg_export_result res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    assert_int_equal(res.retry_after_ns, 7 * SEC);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    assert_int_equal(res.retry_after_ns, RETRY_AFTER_MAX_S * SEC); /* a far date, capped */
    for (int i = 0; i < 5; i++) {
        res = send_once(&f, b);
        assert_int_equal(res.code, LG_EAGAIN);
        assert_int_equal(res.retry_after_ns, 0);
    }
    for (int i = 0; i < 3; i++) {
        res = send_once(&f, b);
        assert_int_equal(res.code, LG_EINVAL);
    }
    assert_int_equal(cval(f.st.c_auth_refused), 1);
    assert_int_equal(cval(f.st.c_rejected), 6);
    assert_int_equal(fk.requests, 10);
    lg_batch_unref(b);
    fx_close(&f);

    /* nobody listening: retryable */
    assert_int_equal(fx_open(&f, "connection_string: \"InstrumentationKey=" GUID ";IngestionEndpoint=http://127.0.0.1:1\"\n", &err), 0);
    b = make_traces(6, 1, 1);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

static void test_redirect_followed_and_remembered(void **state)
{
    (void)state;
    struct fake one, two;
    fake_start(&one);
    fake_start(&two);
    char loc[128];
    snprintf(loc, sizeof loc, "http://127.0.0.1:%d/v2.1/track", two.port);
    struct answer a[] = {{.status = 307, .location = loc}};
    fake_script(&one, a, 1);
    struct answer rel[] = {{.status = 308, .location = "/v2.1/track?moved=1"}};
    fake_script(&two, rel, 1);
    struct fx f;
    struct lg_err err = {{0}};
    assert_int_equal(fx_open(&f, yaml_for(&one, NULL), &err), 0);
    struct lg_batch *b = make_traces(7, 1, 2);
    struct lg_export_result res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(one.requests, 1);
    assert_int_equal(two.requests, 2); /* the 308 to a path on the same host, then 200 */
    char want[160];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/v2.1/track?moved=1", two.port);
    assert_string_equal(f.st.url, want);
    assert_int_equal(cval(f.st.c_redirects), 2);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_OK);
    assert_int_equal(one.requests, 1); /* remembered */
    assert_int_equal(two.requests, 3);

    /* a redirect loop ends the attempt (retryable) */
    struct answer loop[MAX_REDIRECTS + 1];
    for (int i = 0; i <= MAX_REDIRECTS; i++)
        loop[i] = (struct answer){.status = 307, .location = "/v2.1/track?moved=1"};
    fake_script(&two, loop, MAX_REDIRECTS + 1);
    res = send_once(&f, b);
    assert_int_equal(res.code, LG_EAGAIN);
    assert_non_null(strstr(res.message, "redirects"));
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&one);
    fake_stop(&two);
}

static void test_entra_secret_bearer_cached_and_refreshed_on_401(void **state)
{
    (void)state;
    struct fake fk;
    fake_start(&fk);
    struct fx f;
    struct lg_err err = {{0}};
    char extra[512];
    snprintf(extra, sizeof extra,
             "entra_id: {tenant_id: tenant, client_id: my-app, client_secret: s3cr=t, authority_host: \"http://127.0.0.1:%d/\"}\n",
             fk.port);
    assert_int_equal(fx_open(&f, yaml_for(&fk, extra), &err), 0);
    struct lg_batch *b = make_traces(8, 1, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_once(&f, b).code, LG_OK);
    assert_int_equal(fk.token_fetches, 1);
    assert_string_equal(fk.auth[0], "Bearer tok-1");
    assert_string_equal(fk.auth[2], "Bearer tok-1");
    assert_non_null(strstr(fk.token_form, "grant_type=client_credentials"));
    assert_non_null(strstr(fk.token_form, "client_id=my-app"));
    assert_non_null(strstr(fk.token_form, "client_secret=s3cr%3Dt"));
    assert_non_null(strstr(fk.token_form, "scope=https%3A%2F%2Fmonitor.azure.com%2F%2F.default"));

    /* the service refuses tok-1: a new token, the request sent again in the same attempt */
    pthread_mutex_lock(&fk.lock);
    fk.reject_token = 1;
    pthread_mutex_unlock(&fk.lock);
    assert_int_equal(send_once(&f, b).code, LG_OK);
    assert_int_equal(fk.token_fetches, 2);
    assert_string_equal(fk.auth[3], "Bearer tok-1");
    assert_string_equal(fk.auth[4], "Bearer tok-2");
    assert_int_equal(cval(f.st.c_auth_refused), 1);
    assert_int_equal(cval(f.st.c_token_fetches), 2);
    lg_batch_unref(b);
    fx_close(&f);

    /* a short lifetime: refreshed at half of it */
    fk.expires_in = 1;
    assert_int_equal(fx_open(&f, yaml_for(&fk, extra), &err), 0);
    b = make_traces(9, 1, 1);
    assert_int_equal(send_once(&f, b).code, LG_OK);
    size_t before = fk.token_fetches;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 600 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(send_once(&f, b).code, LG_OK);
    assert_int_equal(fk.token_fetches, before + 1);
    lg_batch_unref(b);
    fx_close(&f);
    fake_stop(&fk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_string_parsing),
        cmocka_unit_test(test_config_errors_name_the_yaml_path),
        cmocka_unit_test(test_config_sources_and_urls),
        cmocka_unit_test(test_200_gzip_array),
        cmocka_unit_test(test_large_body_grows_the_buffer),
        cmocka_unit_test(test_maxbatchsize_splits_and_a_retryable_answer_ends_the_attempt),
        cmocka_unit_test(test_206_resends_only_retriable_items),
        cmocka_unit_test(test_206_sampled_out_is_never_retried),
        cmocka_unit_test(test_status_classification),
        cmocka_unit_test(test_redirect_followed_and_remembered),
        cmocka_unit_test(test_entra_secret_bearer_cached_and_refreshed_on_401),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
