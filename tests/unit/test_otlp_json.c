/* tests/unit/test_otlp_json.c — behaviour of the OTLP/JSON codec (core/otlp_json.c): what
 * OTel SDKs send decodes to the same message as the protobuf encoding would, what we write
 * reads back identically, and bad input is refused with a message naming the JSON path. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/otlp.h"
#include "core/otlp_json.h"

typedef Opentelemetry__Proto__Metrics__V1__Gauge lg_gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum lg_sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram lg_histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram lg_exp_histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets lg_buckets;
typedef Opentelemetry__Proto__Metrics__V1__Summary lg_summary;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile lg_quantile;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar lg_exemplar;

#define CUMULATIVE                                                                                 \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

#define TRACES_DESC                                                                                \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define METRICS_DESC                                                                               \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define LOGS_DESC                                                                                  \
    (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)
#define ANY_DESC (&opentelemetry__proto__common__v1__any_value__descriptor)

#define TRACE_ID_HEX  "5b8efff798038103d269b633813fc60c"
#define SPAN_ID_HEX   "eee19b7ec3c1b174"
#define PARENT_ID_HEX "eee19b7ec3c1b173"

/* Every test gets a fresh arena (setup/teardown): decoded and expected messages live in it. */
static struct lg_arena *arena;

static int setup(void **state)
{
    (void)state;
    arena = lg_arena_create(0);
    return arena == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    lg_arena_destroy(arena);
    arena = NULL;
    return 0;
}

/* ---- building expected messages ---- */

static void *msg_new(const ProtobufCMessageDescriptor *desc)
{
    void *m = lg_arena_alloc(arena, desc->sizeof_message);
    assert_non_null(m);
    protobuf_c_message_init(desc, m);
    return m;
}

/* An arena array of n pointers taken from the arguments. */
static void *ptrs(size_t n, ...)
{
    void **a = lg_arena_calloc(arena, n ? n : 1, sizeof *a);
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        a[i] = va_arg(ap, void *);
    va_end(ap);
    return a;
}

static ProtobufCBinaryData hex_bytes(const char *hex)
{
    size_t n = strlen(hex) / 2;
    uint8_t *p = lg_arena_alloc(arena, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        p[i] = (uint8_t)v;
    }
    return (ProtobufCBinaryData){.len = n, .data = n ? p : NULL};
}

static char *str(const char *s)
{
    return lg_arena_strdup(arena, s);
}

static lg_any_value *any_str(const char *s)
{
    lg_any_value *v = msg_new(ANY_DESC);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = str(s);
    return v;
}

static lg_any_value *any_int(int64_t i)
{
    lg_any_value *v = msg_new(ANY_DESC);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}

static lg_any_value *any_double(double d)
{
    lg_any_value *v = msg_new(ANY_DESC);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}

static lg_any_value *any_bool(int b)
{
    lg_any_value *v = msg_new(ANY_DESC);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}

static lg_any_value *any_bytes(const char *hex)
{
    lg_any_value *v = msg_new(ANY_DESC);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value = hex_bytes(hex);
    return v;
}

static lg_any_value *any_array(size_t n, lg_any_value **values)
{
    lg_any_value *v = msg_new(ANY_DESC);
    lg_array_value *a = msg_new(&opentelemetry__proto__common__v1__array_value__descriptor);
    a->n_values = n;
    a->values = values;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value = a;
    return v;
}

static lg_any_value *any_kvlist(size_t n, lg_kv **values)
{
    lg_any_value *v = msg_new(ANY_DESC);
    lg_kvlist *l = msg_new(&opentelemetry__proto__common__v1__key_value_list__descriptor);
    l->n_values = n;
    l->values = values;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    return v;
}

static lg_kv *kv(const char *key, lg_any_value *value)
{
    lg_kv *k = msg_new(&opentelemetry__proto__common__v1__key_value__descriptor);
    k->key = str(key);
    k->value = value;
    return k;
}

/* A traces request holding one resource with one scope with `n` spans. */
static lg_traces_req *traces_with(lg_resource *res, lg_scope *scope, size_t n, lg_span **spans)
{
    lg_traces_req *req = msg_new(TRACES_DESC);
    lg_resource_spans *rs = msg_new(&opentelemetry__proto__trace__v1__resource_spans__descriptor);
    lg_scope_spans *ss = msg_new(&opentelemetry__proto__trace__v1__scope_spans__descriptor);
    ss->scope = scope;
    ss->n_spans = n;
    ss->spans = spans;
    rs->resource = res;
    rs->n_scope_spans = 1;
    rs->scope_spans = ptrs(1, ss);
    req->n_resource_spans = 1;
    req->resource_spans = ptrs(1, rs);
    return req;
}

static lg_span *span_new(const char *trace_hex, const char *span_hex, const char *name)
{
    lg_span *s = msg_new(&opentelemetry__proto__trace__v1__span__descriptor);
    s->trace_id = hex_bytes(trace_hex);
    s->span_id = hex_bytes(span_hex);
    s->name = str(name);
    return s;
}

/* ---- assertions ---- */

static ProtobufCMessage *decode_ok(const ProtobufCMessageDescriptor *desc, const char *json)
{
    struct lg_err err = {{0}};
    ProtobufCMessage *out = NULL;
    int rc = lg_otlp_json_decode(desc, json, strlen(json), arena, &out, &err);
    if (rc != LG_OK)
        fail_msg("decode failed (%d): %s\ninput: %s", rc, err.msg, json);
    assert_non_null(out);
    assert_ptr_equal(out->descriptor, desc);
    return out;
}

/* Decoding must fail with LG_EINVAL and a message containing every given substring. */
static void decode_fails(const ProtobufCMessageDescriptor *desc, const char *json,
                         const char *expect1, const char *expect2)
{
    struct lg_err err = {{0}};
    ProtobufCMessage *out = (ProtobufCMessage *)&err; /* must be reset to NULL */
    int rc = lg_otlp_json_decode(desc, json, strlen(json), arena, &out, &err);
    if (rc != LG_EINVAL)
        fail_msg("expected LG_EINVAL, got %d for input: %s", rc, json);
    assert_null(out);
    if (expect1 != NULL && strstr(err.msg, expect1) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, expect1);
    if (expect2 != NULL && strstr(err.msg, expect2) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err.msg, expect2);
}

/* Two messages are the same if protobuf-c packs them to the same bytes. */
static void assert_same_message(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a);
    size_t lb = protobuf_c_message_get_packed_size(b);
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    assert_non_null(pa);
    assert_non_null(pb);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    assert_int_equal(la, lb);
    assert_memory_equal(pa, pb, la);
    free(pa);
    free(pb);
}

static char *encode_ok(const ProtobufCMessage *msg)
{
    size_t len = 0;
    char *json = lg_otlp_json_encode(msg, &len);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    return json;
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" not found in %s", needle, haystack);
}

/* encode -> decode gives the same message, and encoding that again gives the same text. */
static char *assert_round_trip(const ProtobufCMessage *msg)
{
    char *json = encode_ok(msg);
    ProtobufCMessage *back = decode_ok(msg->descriptor, json);
    assert_same_message(msg, back);
    char *again = encode_ok(back);
    assert_string_equal(json, again);
    free(again);
    return json; /* caller frees */
}

/* ---- tests ---- */

static void test_empty_object_is_an_empty_request(void **state)
{
    (void)state;
    lg_traces_req *req = (lg_traces_req *)decode_ok(TRACES_DESC, "{}");
    assert_int_equal(req->n_resource_spans, 0);
    lg_logs_req *logs = (lg_logs_req *)decode_ok(LOGS_DESC, " \n{ }\t");
    assert_int_equal(logs->n_resource_logs, 0);

    char *json = encode_ok(&req->base);
    assert_string_equal(json, "{}");
    free(json);
    lg_traces_resp resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    json = encode_ok(&resp.base);
    assert_string_equal(json, "{}");
    free(json);
}

/* What @opentelemetry/exporter-trace-otlp-http (JsonTraceSerializer) posts for an LLM call
 * under an HTTP server span: hex ids, timestamps as strings, kind as integer, intValue as a
 * JSON number, empty arrays and zero counts written out, parentSpanId absent on the root. */
static const char js_sdk_traces[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
    "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"chat-api\"}},"
    "{\"key\":\"telemetry.sdk.language\",\"value\":{\"stringValue\":\"nodejs\"}},"
    "{\"key\":\"telemetry.sdk.name\",\"value\":{\"stringValue\":\"opentelemetry\"}},"
    "{\"key\":\"telemetry.sdk.version\",\"value\":{\"stringValue\":\"1.25.1\"}},"
    "{\"key\":\"process.pid\",\"value\":{\"intValue\":4242}}],"
    "\"droppedAttributesCount\":0},"
    "\"scopeSpans\":[{\"scope\":{\"name\":\"@traceloop/"
    "instrumentation-openai\",\"version\":\"0.11.2\"},"
    "\"spans\":["
    "{\"traceId\":\"" TRACE_ID_HEX "\",\"spanId\":\"" SPAN_ID_HEX "\","
    "\"parentSpanId\":\"" PARENT_ID_HEX "\",\"name\":\"openai.chat\",\"kind\":3,"
    "\"startTimeUnixNano\":\"1718000000000000000\",\"endTimeUnixNano\":\"1718000001500000000\","
    "\"attributes\":["
    "{\"key\":\"gen_ai.system\",\"value\":{\"stringValue\":\"openai\"}},"
    "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":42}},"
    "{\"key\":\"gen_ai.request.temperature\",\"value\":{\"doubleValue\":0.7}},"
    "{\"key\":\"llm.is_streaming\",\"value\":{\"boolValue\":false}},"
    "{\"key\":\"gen_ai.response.finish_reasons\",\"value\":{\"arrayValue\":{\"values\":"
    "[{\"stringValue\":\"stop\"}]}}}],"
    "\"droppedAttributesCount\":0,"
    "\"events\":[{\"attributes\":[{\"key\":\"gen_ai.prompt\",\"value\":{\"stringValue\":\"hi\"}}],"
    "\"name\":\"gen_ai.content.prompt\",\"timeUnixNano\":\"1718000000100000000\","
    "\"droppedAttributesCount\":0}],"
    "\"droppedEventsCount\":0,\"status\":{\"code\":0},\"links\":[],\"droppedLinksCount\":0},"
    "{\"traceId\":\"" TRACE_ID_HEX "\",\"spanId\":\"" PARENT_ID_HEX "\","
    "\"name\":\"POST /chat\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1717999999900000000\",\"endTimeUnixNano\":\"1718000001600000000\","
    "\"attributes\":[],\"droppedAttributesCount\":0,\"events\":[],\"droppedEventsCount\":0,"
    "\"status\":{\"code\":2,\"message\":\"upstream failed\"},\"links\":[],\"droppedLinksCount\":0}"
    "]}]}]}";

static lg_traces_req *js_sdk_traces_expected(void)
{
    lg_resource *res = msg_new(&opentelemetry__proto__resource__v1__resource__descriptor);
    res->n_attributes = 5;
    res->attributes = ptrs(
        5, kv("service.name", any_str("chat-api")), kv("telemetry.sdk.language", any_str("nodejs")),
        kv("telemetry.sdk.name", any_str("opentelemetry")),
        kv("telemetry.sdk.version", any_str("1.25.1")), kv("process.pid", any_int(4242)));
    lg_scope *scope = msg_new(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
    scope->name = str("@traceloop/instrumentation-openai");
    scope->version = str("0.11.2");

    lg_span *llm = span_new(TRACE_ID_HEX, SPAN_ID_HEX, "openai.chat");
    llm->parent_span_id = hex_bytes(PARENT_ID_HEX);
    llm->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    llm->start_time_unix_nano = 1718000000000000000ULL;
    llm->end_time_unix_nano = 1718000001500000000ULL;
    llm->n_attributes = 5;
    llm->attributes = ptrs(
        5, kv("gen_ai.system", any_str("openai")), kv("gen_ai.usage.input_tokens", any_int(42)),
        kv("gen_ai.request.temperature", any_double(0.7)), kv("llm.is_streaming", any_bool(0)),
        kv("gen_ai.response.finish_reasons", any_array(1, ptrs(1, any_str("stop")))));
    lg_span_event *ev = msg_new(&opentelemetry__proto__trace__v1__span__event__descriptor);
    ev->name = str("gen_ai.content.prompt");
    ev->time_unix_nano = 1718000000100000000ULL;
    ev->n_attributes = 1;
    ev->attributes = ptrs(1, kv("gen_ai.prompt", any_str("hi")));
    llm->n_events = 1;
    llm->events = ptrs(1, ev);
    llm->status = msg_new(&opentelemetry__proto__trace__v1__status__descriptor);

    lg_span *server = span_new(TRACE_ID_HEX, PARENT_ID_HEX, "POST /chat");
    server->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    server->start_time_unix_nano = 1717999999900000000ULL;
    server->end_time_unix_nano = 1718000001600000000ULL;
    server->status = msg_new(&opentelemetry__proto__trace__v1__status__descriptor);
    server->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    server->status->message = str("upstream failed");

    return traces_with(res, scope, 2, ptrs(2, llm, server));
}

static void test_js_sdk_span_json_decodes_to_the_expected_spans(void **state)
{
    (void)state;
    lg_traces_req *got = (lg_traces_req *)decode_ok(TRACES_DESC, js_sdk_traces);
    assert_same_message(&js_sdk_traces_expected()->base, &got->base);

    lg_span *s = got->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(s->trace_id.len, 16);
    assert_int_equal(s->trace_id.data[0], 0x5b);
    assert_int_equal(s->span_id.len, 8);
    assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
    assert_true(s->start_time_unix_nano == 1718000000000000000ULL);
    assert_int_equal(s->attributes[3]->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    assert_int_equal(got->resource_spans[0]->scope_spans[0]->spans[1]->parent_span_id.len, 0);
}

static void test_traces_round_trip_through_json(void **state)
{
    (void)state;
    lg_resource *res = msg_new(&opentelemetry__proto__resource__v1__resource__descriptor);
    res->n_attributes = 2;
    res->attributes = ptrs(2, kv("service.name", any_str("rag \"svc\"\n\xc3\xa9\xf0\x9f\x98\x80")),
                           kv("host.cpus", any_int(-16)));
    res->dropped_attributes_count = 3;
    lg_scope *scope = msg_new(&opentelemetry__proto__common__v1__instrumentation_scope__descriptor);
    scope->name = str("openinference");
    scope->version = str("1.0");
    scope->n_attributes = 1;
    scope->attributes = ptrs(1, kv("scope.attr", any_bool(1)));

    lg_span *full = span_new("0102030405060708090a0b0c0d0e0f10", "a1a2a3a4a5a6a7a8", "chat gpt-4o");
    full->parent_span_id = hex_bytes("b1b2b3b4b5b6b7b8");
    full->trace_state = str("vendor=abc,other=1");
    full->flags = 0x301;
    full->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    full->start_time_unix_nano = 1718000000123456789ULL;
    full->end_time_unix_nano = 1718000002987654321ULL;
    full->n_attributes = 4;
    full->attributes = ptrs(
        4, kv("llm.token_count.total", any_int(1234567890123LL)),
        kv("gen_ai.request.top_p", any_double(0.95)),
        kv("messages", any_array(2, ptrs(2, any_kvlist(1, ptrs(1, kv("role", any_str("user")))),
                                         any_bytes("00ff10")))),
        kv("empty", msg_new(ANY_DESC)));
    full->dropped_attributes_count = 1;
    lg_span_event *ev = msg_new(&opentelemetry__proto__trace__v1__span__event__descriptor);
    ev->name = str("exception");
    ev->time_unix_nano = 1718000000500000000ULL;
    ev->n_attributes = 1;
    ev->attributes = ptrs(1, kv("exception.message", any_str("timeout")));
    ev->dropped_attributes_count = 2;
    full->n_events = 1;
    full->events = ptrs(1, ev);
    full->dropped_events_count = 4;
    lg_span_link *link = msg_new(&opentelemetry__proto__trace__v1__span__link__descriptor);
    link->trace_id = hex_bytes("ffeeddccbbaa99887766554433221100");
    link->span_id = hex_bytes("0011223344556677");
    link->trace_state = str("x=y");
    link->flags = 1;
    link->n_attributes = 1;
    link->attributes = ptrs(1, kv("link.kind", any_str("retry")));
    full->n_links = 1;
    full->links = ptrs(1, link);
    full->dropped_links_count = 5;
    full->status = msg_new(&opentelemetry__proto__trace__v1__status__descriptor);
    full->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    full->status->message = str("boom");

    lg_span *bare = span_new("0102030405060708090a0b0c0d0e0f10", "c1c2c3c4c5c6c7c8", "bare");

    lg_traces_req *req = traces_with(res, scope, 2, ptrs(2, full, bare));
    req->resource_spans[0]->schema_url = str("https://opentelemetry.io/schemas/1.26.0");
    char *json = assert_round_trip(&req->base);
    assert_contains(json, "\"traceId\":\"0102030405060708090a0b0c0d0e0f10\"");
    assert_contains(json, "\"parentSpanId\":\"b1b2b3b4b5b6b7b8\"");
    assert_contains(json, "\"startTimeUnixNano\":\"1718000000123456789\"");
    assert_contains(json, "\"kind\":3");
    assert_contains(json, "\"flags\":769");
    assert_contains(json, "\"status\":{\"message\":\"boom\",\"code\":2}");
    assert_contains(json, "\"intValue\":\"1234567890123\"");
    assert_contains(json, "\"bytesValue\":\"AP8Q\"");
    assert_contains(json, "{\"key\":\"empty\",\"value\":{}}");
    assert_contains(json, "\"droppedAttributesCount\":3");
    assert_contains(json, "rag \\\"svc\\\"\\n\xc3\xa9\xf0\x9f\x98\x80");
    free(json);
}

static void test_encoded_span_is_exactly_the_otlp_json_shape(void **state)
{
    (void)state;
    lg_span *s = span_new(TRACE_ID_HEX, SPAN_ID_HEX, "x");
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s->start_time_unix_nano = 1;
    s->end_time_unix_nano = UINT64_MAX;
    s->dropped_attributes_count = 7;
    s->status = msg_new(&opentelemetry__proto__trace__v1__status__descriptor);
    s->status->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    lg_span *empty = msg_new(&opentelemetry__proto__trace__v1__span__descriptor);
    empty->status = msg_new(&opentelemetry__proto__trace__v1__status__descriptor);
    lg_traces_req *req = traces_with(NULL, NULL, 2, ptrs(2, s, empty));
    char *json = encode_ok(&req->base);
    assert_string_equal(
        json, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TRACE_ID_HEX
              "\",\"spanId\":\"" SPAN_ID_HEX "\",\"name\":\"x\",\"kind\":2,"
              "\"startTimeUnixNano\":\"1\",\"endTimeUnixNano\":\"18446744073709551615\","
              "\"droppedAttributesCount\":7,\"status\":{\"code\":1}},"
              "{\"status\":{}}]}]}]}");
    free(json);
}

static lg_number_dp *number_dp_new(void)
{
    return msg_new(&opentelemetry__proto__metrics__v1__number_data_point__descriptor);
}

static lg_metric *metric_new(const char *name)
{
    lg_metric *m = msg_new(&opentelemetry__proto__metrics__v1__metric__descriptor);
    m->name = str(name);
    return m;
}

static lg_metrics_req *all_metric_kinds(void)
{
    /* gauge: a double point with an exemplar, an int point */
    lg_exemplar *ex = msg_new(&opentelemetry__proto__metrics__v1__exemplar__descriptor);
    ex->time_unix_nano = 1718000000000000001ULL;
    ex->value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT;
    ex->as_int = 5;
    ex->span_id = hex_bytes(SPAN_ID_HEX);
    ex->trace_id = hex_bytes(TRACE_ID_HEX);
    ex->n_filtered_attributes = 1;
    ex->filtered_attributes = ptrs(1, kv("user", any_str("u1")));
    lg_number_dp *g1 = number_dp_new();
    g1->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    g1->as_double = 3.25;
    g1->time_unix_nano = 1718000000000000000ULL;
    g1->n_exemplars = 1;
    g1->exemplars = ptrs(1, ex);
    lg_number_dp *g2 = number_dp_new();
    g2->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    g2->as_int = -7;
    g2->n_attributes = 1;
    g2->attributes = ptrs(1, kv("gen_ai.request.model", any_str("gpt-4o")));
    lg_gauge *gauge = msg_new(&opentelemetry__proto__metrics__v1__gauge__descriptor);
    gauge->n_data_points = 2;
    gauge->data_points = ptrs(2, g1, g2);
    lg_metric *m_gauge = metric_new("queue.depth");
    m_gauge->unit = str("{item}");
    m_gauge->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m_gauge->gauge = gauge;
    m_gauge->n_metadata = 1;
    m_gauge->metadata = ptrs(1, kv("meta", any_str("m")));

    /* sum: a point whose int value is zero, which still has to be written */
    lg_number_dp *s1 = number_dp_new();
    s1->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    s1->as_int = 0;
    s1->start_time_unix_nano = 1;
    s1->flags = 1;
    lg_sum *sum = msg_new(&opentelemetry__proto__metrics__v1__sum__descriptor);
    sum->aggregation_temporality = CUMULATIVE;
    sum->is_monotonic = 1;
    sum->n_data_points = 1;
    sum->data_points = ptrs(1, s1);
    lg_metric *m_sum = metric_new("gen_ai.client.token.usage.total");
    m_sum->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m_sum->sum = sum;

    /* histogram: sum and min set to zero, max set */
    lg_histogram_dp *h1 =
        msg_new(&opentelemetry__proto__metrics__v1__histogram_data_point__descriptor);
    h1->count = 3;
    h1->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    h1->sum = 0;
    h1->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
    h1->min = 0;
    h1->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX_MAX;
    h1->max = 10.5;
    static uint64_t bucket_counts[] = {1, 0, 2};
    static double bounds[] = {0, 5.5};
    h1->n_bucket_counts = 3;
    h1->bucket_counts = bucket_counts;
    h1->n_explicit_bounds = 2;
    h1->explicit_bounds = bounds;
    lg_histogram_dp *h2 =
        msg_new(&opentelemetry__proto__metrics__v1__histogram_data_point__descriptor);
    h2->count = 0; /* no sum/min/max: must stay unset */
    lg_histogram *hist = msg_new(&opentelemetry__proto__metrics__v1__histogram__descriptor);
    hist->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    hist->n_data_points = 2;
    hist->data_points = ptrs(2, h1, h2);
    lg_metric *m_hist = metric_new("gen_ai.client.operation.duration");
    m_hist->unit = str("s");
    m_hist->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m_hist->histogram = hist;

    /* exponential histogram: negative scale and offset (sint32), both bucket sides */
    lg_exp_histogram_dp *e1 =
        msg_new(&opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor);
    e1->count = 12;
    e1->scale = -3;
    e1->zero_count = 2;
    e1->zero_threshold = 1e-9;
    e1->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    e1->sum = 12.5;
    e1->_min_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MIN_MIN;
    e1->min = -1;
    e1->_max_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___MAX_MAX;
    e1->max = 9;
    static uint64_t pos_counts[] = {1, 2, 3};
    static uint64_t neg_counts[] = {4};
    e1->positive = msg_new(
        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    e1->positive->offset = -2;
    e1->positive->n_bucket_counts = 3;
    e1->positive->bucket_counts = pos_counts;
    e1->negative = msg_new(
        &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__descriptor);
    e1->negative->n_bucket_counts = 1;
    e1->negative->bucket_counts = neg_counts;
    lg_exp_histogram *eh =
        msg_new(&opentelemetry__proto__metrics__v1__exponential_histogram__descriptor);
    eh->aggregation_temporality = CUMULATIVE;
    eh->n_data_points = 1;
    eh->data_points = ptrs(1, e1);
    lg_metric *m_exp = metric_new("latency.exp");
    m_exp->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m_exp->exponential_histogram = eh;

    /* summary: quantile 0 (omitted as a default) and 0.99 */
    lg_quantile *q0 = msg_new(
        &opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__descriptor);
    q0->quantile = 0;
    q0->value = 1;
    lg_quantile *q99 = msg_new(
        &opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__descriptor);
    q99->quantile = 0.99;
    q99->value = 9.9;
    lg_summary_dp *sd = msg_new(&opentelemetry__proto__metrics__v1__summary_data_point__descriptor);
    sd->count = 4;
    sd->sum = 10;
    sd->n_quantile_values = 2;
    sd->quantile_values = ptrs(2, q0, q99);
    lg_summary *summary = msg_new(&opentelemetry__proto__metrics__v1__summary__descriptor);
    summary->n_data_points = 1;
    summary->data_points = ptrs(1, sd);
    lg_metric *m_summary = metric_new("rpc.latency.summary");
    m_summary->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m_summary->summary = summary;

    lg_scope_metrics *sm = msg_new(&opentelemetry__proto__metrics__v1__scope_metrics__descriptor);
    sm->n_metrics = 5;
    sm->metrics = ptrs(5, m_gauge, m_sum, m_hist, m_exp, m_summary);
    lg_resource_metrics *rm =
        msg_new(&opentelemetry__proto__metrics__v1__resource_metrics__descriptor);
    rm->n_scope_metrics = 1;
    rm->scope_metrics = ptrs(1, sm);
    lg_metrics_req *req = msg_new(METRICS_DESC);
    req->n_resource_metrics = 1;
    req->resource_metrics = ptrs(1, rm);
    return req;
}

static void test_metrics_round_trip_all_point_kinds(void **state)
{
    (void)state;
    lg_metrics_req *req = all_metric_kinds();
    char *json = assert_round_trip(&req->base);
    assert_contains(json, "\"asDouble\":3.25");
    assert_contains(json, "\"asInt\":\"-7\"");
    assert_contains(json, "\"asInt\":\"0\"");
    assert_contains(json, "\"aggregationTemporality\":2,\"isMonotonic\":true");
    assert_contains(json, "\"bucketCounts\":[\"1\",\"0\",\"2\"],\"explicitBounds\":[0,5.5]");
    assert_contains(json, "\"scale\":-3");
    assert_contains(json, "\"positive\":{\"offset\":-2,\"bucketCounts\":[\"1\",\"2\",\"3\"]}");
    assert_contains(json, "\"negative\":{\"bucketCounts\":[\"4\"]}");
    assert_contains(json, "\"zeroThreshold\":1e-09");
    assert_contains(json, "\"quantileValues\":[{\"value\":1},{\"quantile\":0.99,\"value\":9.9}]");
    assert_contains(json, "\"spanId\":\"" SPAN_ID_HEX "\",\"traceId\":\"" TRACE_ID_HEX "\"");
    free(json);
}

static void test_histogram_sum_min_max_of_zero_are_written_and_read_back(void **state)
{
    (void)state;
    lg_metrics_req *req = all_metric_kinds();
    char *json = encode_ok(&req->base);
    /* the first point has sum=0 and min=0 set; the second has none of them */
    assert_contains(json, "{\"count\":\"3\",\"sum\":0,\"bucketCounts\"");
    assert_contains(json, "\"min\":0,\"max\":10.5}");
    assert_contains(json, "{\"dataPoints\":[{\"count\":\"3\"");
    assert_contains(json, "},{}],\"aggregationTemporality\":1}");

    lg_metrics_req *back = (lg_metrics_req *)decode_ok(METRICS_DESC, json);
    lg_histogram *h = back->resource_metrics[0]->scope_metrics[0]->metrics[2]->histogram;
    assert_int_equal(h->data_points[0]->_sum_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    assert_int_equal(h->data_points[0]->_min_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN);
    assert_true(h->data_points[0]->sum == 0 && h->data_points[0]->max == 10.5);
    assert_int_equal(h->data_points[1]->_sum_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM__NOT_SET);
    assert_int_equal(h->data_points[1]->_max_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MAX__NOT_SET);
    free(json);

    /* a histogram "sum" field and the metric's "sum" oneof member are told apart by message */
    lg_metrics_req *m = (lg_metrics_req *)decode_ok(
        METRICS_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\","
                      "\"histogram\":{\"dataPoints\":[{\"sum\":0,\"min\":-0.5}]}},"
                      "{\"name\":\"s\",\"sum\":{\"dataPoints\":[{\"asDouble\":0}]}}]}]}]}");
    lg_metric **metrics = m->resource_metrics[0]->scope_metrics[0]->metrics;
    assert_int_equal(metrics[0]->data_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    assert_int_equal(metrics[0]->histogram->data_points[0]->_sum_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
    assert_true(metrics[0]->histogram->data_points[0]->min == -0.5);
    assert_int_equal(metrics[1]->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    assert_int_equal(metrics[1]->sum->data_points[0]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
}

static void test_logs_round_trip_kvlist_bytes_and_array_bodies(void **state)
{
    (void)state;
    lg_log_record *r1 = msg_new(&opentelemetry__proto__logs__v1__log_record__descriptor);
    r1->time_unix_nano = 1718000000000000000ULL;
    r1->observed_time_unix_nano = 1718000000000000005ULL;
    r1->severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    r1->severity_text = str("INFO");
    r1->body = any_kvlist(
        2, ptrs(2, kv("event", any_str("gen_ai.choice")),
                kv("tokens", any_array(3, ptrs(3, any_int(1), any_bool(1), any_double(-2.5))))));
    r1->n_attributes = 1;
    r1->attributes = ptrs(1, kv("gen_ai.system", any_str("anthropic")));
    r1->flags = 1;
    r1->trace_id = hex_bytes(TRACE_ID_HEX);
    r1->span_id = hex_bytes(SPAN_ID_HEX);
    r1->event_name = str("gen_ai.choice");
    lg_log_record *r2 = msg_new(&opentelemetry__proto__logs__v1__log_record__descriptor);
    r2->body = any_bytes("000102fffe");
    lg_log_record *r3 = msg_new(&opentelemetry__proto__logs__v1__log_record__descriptor);
    r3->body =
        any_array(2, ptrs(2, any_kvlist(1, ptrs(1, kv("a", any_str("")))), any_array(0, NULL)));

    lg_scope_logs *sl = msg_new(&opentelemetry__proto__logs__v1__scope_logs__descriptor);
    sl->n_log_records = 3;
    sl->log_records = ptrs(3, r1, r2, r3);
    lg_resource_logs *rl = msg_new(&opentelemetry__proto__logs__v1__resource_logs__descriptor);
    rl->n_scope_logs = 1;
    rl->scope_logs = ptrs(1, sl);
    lg_logs_req *req = msg_new(LOGS_DESC);
    req->n_resource_logs = 1;
    req->resource_logs = ptrs(1, rl);

    char *json = assert_round_trip(&req->base);
    assert_contains(json, "\"severityNumber\":9,\"severityText\":\"INFO\"");
    assert_contains(json, "\"body\":{\"bytesValue\":\"AAEC//4=\"}");
    assert_contains(json, "{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},{\"boolValue\":true},"
                          "{\"doubleValue\":-2.5}]}}");
    assert_contains(json, "{\"key\":\"a\",\"value\":{\"stringValue\":\"\"}}");
    assert_contains(json, "{\"arrayValue\":{}}");
    assert_contains(json, "\"traceId\":\"" TRACE_ID_HEX "\",\"spanId\":\"" SPAN_ID_HEX "\"");
    assert_contains(json, "\"eventName\":\"gen_ai.choice\"");
    free(json);
}

static const char *number_points_json =
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":["
    "{\"timeUnixNano\":18446744073709551615,\"asInt\":-9223372036854775808},"
    "{\"timeUnixNano\":\"18446744073709551615\",\"asInt\":\"-9223372036854775808\"},"
    "{\"startTimeUnixNano\":\"1e3\",\"timeUnixNano\":2.0E1,\"asInt\":9223372036854775807,"
    "\"flags\":\"7\"},"
    "{\"asInt\":\"-0\",\"flags\":4294967295}"
    "]}}]}]}]}";

static void test_64bit_values_accept_numbers_and_strings_exactly(void **state)
{
    (void)state;
    lg_metrics_req *req = (lg_metrics_req *)decode_ok(METRICS_DESC, number_points_json);
    lg_number_dp **dp = req->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points;
    assert_true(dp[0]->time_unix_nano == UINT64_MAX);
    assert_true(dp[0]->as_int == INT64_MIN);
    assert_int_equal(dp[0]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    assert_true(dp[1]->time_unix_nano == UINT64_MAX);
    assert_true(dp[1]->as_int == INT64_MIN);
    assert_true(dp[2]->start_time_unix_nano == 1000);
    assert_true(dp[2]->time_unix_nano == 20);
    assert_true(dp[2]->as_int == INT64_MAX);
    assert_int_equal(dp[2]->flags, 7);
    assert_true(dp[3]->as_int == 0);
    assert_int_equal(dp[3]->value_case,
                     OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    assert_true(dp[3]->flags == UINT32_MAX);

    lg_any_value *v = (lg_any_value *)decode_ok(ANY_DESC, "{\"intValue\":\"9007199254740993\"}");
    assert_true(v->int_value == 9007199254740993LL); /* 2^53 + 1: a double would lose it */
}

static void test_integers_out_of_range_or_fractional_are_refused(void **state)
{
    (void)state;
    const char *prefix = "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":"
                         "{\"dataPoints\":[{}, {";
    const char *suffix = "}]}}]}]}]}";
    static const struct {
        const char *member;
        const char *error;
    } cases[] = {
        {"\"timeUnixNano\":18446744073709551616",
         "timeUnixNano: expected a 64-bit unsigned integer"},
        {"\"timeUnixNano\":-1", "timeUnixNano: expected a 64-bit unsigned integer, got \"-1\""},
        {"\"timeUnixNano\":\"12x\"", "timeUnixNano: expected a 64-bit unsigned integer"},
        {"\"timeUnixNano\":\" 12\"", "timeUnixNano: expected a 64-bit unsigned integer"},
        {"\"timeUnixNano\":\"\"", "timeUnixNano: expected a 64-bit unsigned integer"},
        {"\"asInt\":9223372036854775808", "asInt: expected a 64-bit signed integer"},
        {"\"asInt\":\"-9223372036854775809\"", "asInt: expected a 64-bit signed integer"},
        {"\"asInt\":1.5", "asInt: expected a 64-bit signed integer, got \"1.5\""},
        {"\"asInt\":1e-1", "asInt: expected a 64-bit signed integer"},
        {"\"flags\":4294967296", "flags: expected a 32-bit unsigned integer"},
        {"\"flags\":true", "flags: expected an integer, got a boolean"},
        {"\"asDouble\":\"fast\"", "asDouble: expected a number, \"NaN\""},
        {"\"asDouble\":1e999", "asDouble: number 1e999 is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "%s%s%s", prefix, cases[i].member, suffix);
        decode_fails(METRICS_DESC, json,
                     "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[1].",
                     cases[i].error);
    }
    decode_fails(
        TRACES_DESC,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"droppedAttributesCount\":-1}]}]}]}",
        "spans[0].droppedAttributesCount: expected a 32-bit unsigned integer", NULL);
}

static void test_64bit_values_are_written_as_strings_and_32bit_as_numbers(void **state)
{
    (void)state;
    char *json = encode_ok(&any_int(INT64_MIN)->base);
    assert_string_equal(json, "{\"intValue\":\"-9223372036854775808\"}");
    free(json);
    json = encode_ok(&any_int(INT64_MAX)->base);
    assert_string_equal(json, "{\"intValue\":\"9223372036854775807\"}");
    free(json);

    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = -2147483647 - 1;
    json = encode_ok(&st.base);
    assert_string_equal(json, "{\"code\":-2147483648}");
    free(json);
}

static void test_enums_accept_names_and_integers(void **state)
{
    (void)state;
    lg_traces_req *t = (lg_traces_req *)decode_ok(
        TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                     "{\"kind\":\"SPAN_KIND_SERVER\",\"status\":{\"code\":\"STATUS_CODE_ERROR\"}},"
                     "{\"kind\":4,\"status\":{\"code\":1}},"
                     "{\"kind\":\"5\"},"
                     "{\"kind\":42}]}]}]}");
    lg_span **spans = t->resource_spans[0]->scope_spans[0]->spans;
    assert_int_equal(spans[0]->kind,
                     OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    assert_int_equal(spans[0]->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
    assert_int_equal(spans[1]->kind,
                     OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_PRODUCER);
    assert_int_equal(spans[1]->status->code,
                     OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK);
    assert_int_equal(spans[2]->kind,
                     OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CONSUMER);
    assert_int_equal(spans[3]->kind, 42); /* proto3 enums are open: unknown numbers are kept */

    lg_logs_req *l =
        (lg_logs_req *)decode_ok(LOGS_DESC, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["
                                            "{\"severityNumber\":\"SEVERITY_NUMBER_INFO\"}]}]}]}");
    assert_int_equal(l->resource_logs[0]->scope_logs[0]->log_records[0]->severity_number,
                     OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO);

    lg_metrics_req *m = (lg_metrics_req *)decode_ok(
        METRICS_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":"
                      "{\"aggregationTemporality\":\"AGGREGATION_TEMPORALITY_CUMULATIVE\"}}]}]}]}");
    assert_int_equal(
        m->resource_metrics[0]->scope_metrics[0]->metrics[0]->sum->aggregation_temporality,
        CUMULATIVE);

    decode_fails(
        TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"SERVER\"}]}]}]}",
        "resourceSpans[0].scopeSpans[0].spans[0].kind: unknown SpanKind value \"SERVER\"", NULL);
    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":2147483648}]}]}]}",
                 "spans[0].kind: expected an enum value name or 32-bit integer", NULL);
}

static void test_unknown_fields_are_ignored_at_any_depth(void **state)
{
    (void)state;
    const char *with_unknown =
        "{\"futureTopLevel\":{\"a\":[1,{\"b\":[[],{}]}],\"c\":null},"
        "\"resourceSpans\":[{\"extra\":[{\"x\":{\"y\":{\"z\":[true,false,null,1.5e3,\"s\"]}}}],"
        "\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{\"stringValue\":\"v\","
        "\"futureValue\":{\"deep\":[[[[\"ignored\"]]]]}},\"note\":\"n\"}],\"entityHints\":[{}]},"
        "\"scopeSpans\":[{\"spans\":[{\"name\":\"s\",\"unknownNumber\":12345678901234567890123,"
        "\"unknownArray\":[[[]]],\"status\":{\"code\":2,\"reason\":{\"why\":\"x\"}}}],"
        "\"scope\":{\"name\":\"lib\",\"newField\":[]}}]}],\"trailing\":\"x\"}";
    const char *without =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{"
        "\"stringValue\":"
        "\"v\"}}]},\"scopeSpans\":[{\"spans\":[{\"name\":\"s\",\"status\":{\"code\":2}}],"
        "\"scope\":{\"name\":\"lib\"}}]}]}";
    ProtobufCMessage *a = decode_ok(TRACES_DESC, with_unknown);
    ProtobufCMessage *b = decode_ok(TRACES_DESC, without);
    assert_same_message(a, b);
    lg_traces_req *t = (lg_traces_req *)a;
    assert_string_equal(t->resource_spans[0]->resource->attributes[0]->value->string_value, "v");
}

static void test_snake_case_field_names_are_accepted(void **state)
{
    (void)state;
    ProtobufCMessage *snake = decode_ok(
        TRACES_DESC, "{\"resource_spans\":[{\"schema_url\":\"u\",\"scope_spans\":[{\"spans\":[{"
                     "\"trace_id\":\"" TRACE_ID_HEX "\",\"span_id\":\"" SPAN_ID_HEX "\","
                     "\"parent_span_id\":\"" PARENT_ID_HEX "\",\"start_time_unix_nano\":\"5\","
                     "\"dropped_attributes_count\":2,\"attributes\":[{\"key\":\"k\",\"value\":"
                     "{\"int_value\":\"3\"}}]}]}]}]}");
    ProtobufCMessage *camel = decode_ok(
        TRACES_DESC, "{\"resourceSpans\":[{\"schemaUrl\":\"u\",\"scopeSpans\":[{\"spans\":[{"
                     "\"traceId\":\"" TRACE_ID_HEX "\",\"spanId\":\"" SPAN_ID_HEX "\","
                     "\"parentSpanId\":\"" PARENT_ID_HEX "\",\"startTimeUnixNano\":5,"
                     "\"droppedAttributesCount\":2,\"attributes\":[{\"key\":\"k\",\"value\":"
                     "{\"intValue\":3}}]}]}]}]}");
    assert_same_message(snake, camel);
    assert_int_equal(
        ((lg_traces_req *)snake)->resource_spans[0]->scope_spans[0]->spans[0]->trace_id.len, 16);
    /* names are case-sensitive: a mis-cased key is an unknown field */
    lg_traces_req *odd = (lg_traces_req *)decode_ok(TRACES_DESC, "{\"ResourceSpans\":[{}]}");
    assert_int_equal(odd->n_resource_spans, 0);
}

static void test_null_means_the_field_is_absent(void **state)
{
    (void)state;
    ProtobufCMessage *with_nulls =
        decode_ok(TRACES_DESC,
                  "{\"resourceSpans\":[{\"resource\":null,\"schemaUrl\":null,\"scopeSpans\":[{"
                  "\"spans\":[{\"traceId\":null,\"name\":\"n\",\"status\":null,\"attributes\":null,"
                  "\"kind\":null,\"startTimeUnixNano\":null}]}]}]}");
    ProtobufCMessage *plain = decode_ok(
        TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"n\"}]}]}]}");
    assert_same_message(with_nulls, plain);
    lg_traces_req *t = (lg_traces_req *)decode_ok(TRACES_DESC, "{\"resourceSpans\":null}");
    assert_int_equal(t->n_resource_spans, 0);
    lg_any_value *v = (lg_any_value *)decode_ok(ANY_DESC, "{\"stringValue\":null}");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET);
}

static void test_malformed_json_reports_the_byte_offset(void **state)
{
    (void)state;
    decode_fails(TRACES_DESC, "{\"resourceSpans\":[}", "invalid JSON at byte 19",
                 "(in resourceSpans[0])");
    decode_fails(TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[",
                 "invalid JSON at byte 33:", "premature EOF");
    decode_fails(TRACES_DESC, "{} {}", "invalid JSON at byte 4", "trailing garbage");
    decode_fails(TRACES_DESC, "{\"a\":[1,2,3]]", "invalid JSON at byte 12", NULL);
    decode_fails(TRACES_DESC, "{\"a\":1,}", "invalid JSON at byte", NULL);
    decode_fails(TRACES_DESC, "{/* c */}", "invalid JSON at byte", NULL);
    decode_fails(TRACES_DESC, "{'a':1}", "invalid JSON at byte", NULL);
    decode_fails(TRACES_DESC, "{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}",
                 "invalid JSON at byte", NULL);
    decode_fails(TRACES_DESC, "{\"a\":01}", "invalid JSON at byte", NULL);
    decode_fails(TRACES_DESC, "", "invalid JSON at byte 0", NULL);
    /* err may be NULL */
    ProtobufCMessage *out = NULL;
    assert_int_equal(lg_otlp_json_decode(TRACES_DESC, "{", 1, arena, &out, NULL), LG_EINVAL);
    assert_null(out);
    /* the length is honoured: text after `len` is not read */
    const char doc[] = "{}garbage";
    assert_int_equal(lg_otlp_json_decode(TRACES_DESC, doc, 2, arena, &out, NULL), LG_OK);
    assert_non_null(out);
}

static void test_top_level_must_be_an_object(void **state)
{
    (void)state;
    decode_fails(TRACES_DESC, "[]", "top level: expected a JSON object, got an array", NULL);
    decode_fails(TRACES_DESC, "1", "top level: expected a JSON object, got a number", NULL);
    decode_fails(TRACES_DESC, "\"x\"", "top level: expected a JSON object, got a string", NULL);
    decode_fails(TRACES_DESC, "null", "top level: expected a JSON object, got null", NULL);
    decode_fails(TRACES_DESC, "true", "top level: expected a JSON object, got a boolean", NULL);
}

static void test_wrong_value_types_name_the_json_path(void **state)
{
    (void)state;
    decode_fails(TRACES_DESC, "{\"resourceSpans\":{}}",
                 "resourceSpans: expected an array, got an object", NULL);
    decode_fails(TRACES_DESC, "{\"resourceSpans\":[{\"resource\":[]}]}",
                 "resourceSpans[0].resource: expected an object, got an array", NULL);
    decode_fails(
        TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{},{},{\"name\":7}]}]}]}",
        "resourceSpans[0].scopeSpans[0].spans[3].name: expected a string, got a number", NULL);
    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":true}]}]}]}",
                 "spans[0].kind: expected an enum name or integer, got a boolean", NULL);
    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{\"attributes\":[1]}]}]}]}",
                 "spans[1].attributes[0]: expected an object, got a number", NULL);
    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[{\"key\":\"k\","
                 "\"value\":{\"boolValue\":\"true\"}}]}]}]}]}",
                 "spans[0].attributes[0].value.boolValue: expected true or false, got a string",
                 NULL);
    decode_fails(TRACES_DESC, "{\"resourceSpans\":[[]]}",
                 "resourceSpans[0]: expected an object, got an array", NULL);
    decode_fails(TRACES_DESC, "{\"resourceSpans\":[null]}",
                 "resourceSpans[0]: null is not allowed as an array element", NULL);
    decode_fails(TRACES_DESC, "{\"resourceSpans\":\"x\"}",
                 "resourceSpans: expected an array, got a string", NULL);
    decode_fails(
        METRICS_DESC,
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{\"dataPoints\":"
        "[{\"bucketCounts\":[\"1\",{}]}]}}]}]}]}",
        "histogram.dataPoints[0].bucketCounts[1]: expected an integer, got an object", NULL);
    decode_fails(
        METRICS_DESC,
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{\"dataPoints\":"
        "[{\"explicitBounds\":[1,\"x\"]}]}}]}]}]}",
        "dataPoints[0].explicitBounds[1]: expected a number", NULL);
    decode_fails(LOGS_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":"
                 "\"a\\u0000b\"}}]}]}]}",
                 "logRecords[0].body.stringValue: string contains a NUL character", NULL);
}

static void test_ids_are_hex_and_bad_hex_is_refused(void **state)
{
    (void)state;
    lg_traces_req *upper = (lg_traces_req *)decode_ok(
        TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                     "\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\"}]}]}]}");
    lg_traces_req *lower = (lg_traces_req *)decode_ok(
        TRACES_DESC, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                     "\"" TRACE_ID_HEX "\",\"spanId\":\"" SPAN_ID_HEX "\"}]}]}]}");
    assert_same_message(&upper->base, &lower->base);

    /* a wrong length is not a decoding error: the receiver reports it per span */
    lg_traces_req *short_id = (lg_traces_req *)decode_ok(
        TRACES_DESC,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
        "\"5b8efff798038103d269b633813fc6\",\"spanId\":\"\",\"parentSpanId\":\"\"}]}]}]}");
    lg_span *s = short_id->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(s->trace_id.len, 15);
    assert_int_equal(s->span_id.len, 0);
    assert_int_equal(s->parent_span_id.len, 0);

    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{},{},{},{\"traceId\":"
                 "\"5b8efff798038103d269b633813fc60z\"}]}]}]}",
                 "resourceSpans[0].scopeSpans[0].spans[3].traceId: expected hex digits, got 'z' at "
                 "offset 31",
                 NULL);
    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"spanId\":\"abc\"}]}]}]}",
                 "spans[0].spanId: expected an even number of hex digits, got 3", NULL);
    /* base64 is not accepted for ids: it is how a protobuf-JSON (non-OTLP) encoder writes them */
    decode_fails(TRACES_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"W47/"
                 "95gDgQPSabYzgT/GDA==\"}]}]}]}",
                 "spans[0].traceId: expected", "hex");
    decode_fails(
        TRACES_DESC,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"links\":[{\"spanId\":\"xx\"}]}]}]}]}",
        "spans[0].links[0].spanId: expected hex digits", NULL);
    decode_fails(LOGS_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"traceId\":12}]}]}]}",
                 "logRecords[0].traceId: expected a hex or base64 string, got a number", NULL);
}

static void test_base64_accepts_standard_and_url_safe_with_or_without_padding(void **state)
{
    (void)state;
    static const char *forms[] = {"AAEC//4=", "AAEC//4", "AAEC__4=", "AAEC__4"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"bytesValue\":\"%s\"}", forms[i]);
        lg_any_value *v = (lg_any_value *)decode_ok(ANY_DESC, json);
        assert_int_equal(v->value_case,
                         OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
        assert_int_equal(v->bytes_value.len, 5);
        assert_memory_equal(v->bytes_value.data, "\x00\x01\x02\xff\xfe", 5);
    }
    lg_any_value *v = (lg_any_value *)decode_ok(ANY_DESC, "{\"bytesValue\":\"\"}");
    assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    assert_int_equal(v->bytes_value.len, 0);
    v = (lg_any_value *)decode_ok(ANY_DESC, "{\"bytesValue\":\"aGk=\"}");
    assert_int_equal(v->bytes_value.len, 2);
    assert_memory_equal(v->bytes_value.data, "hi", 2);

    decode_fails(LOGS_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":"
                 "\"AAE*\"}}]}]}]}",
                 "resourceLogs[0].scopeLogs[0].logRecords[0].body.bytesValue: invalid base64",
                 "'*'");
    decode_fails(ANY_DESC, "{\"bytesValue\":\"A\"}", "bytesValue: invalid base64: bad length",
                 NULL);
    decode_fails(ANY_DESC, "{\"bytesValue\":\"AAEC//4==\"}", "bytesValue: invalid base64", NULL);
    decode_fails(ANY_DESC, "{\"bytesValue\":\"AA=A\"}", "bytesValue: invalid base64", NULL);
    decode_fails(ANY_DESC, "{\"bytesValue\":\"AA E\"}", "bytesValue: invalid base64", NULL);
}

/* A logs request whose first record's body nests `levels` arrayValues around a string. */
static char *nested_body(int levels)
{
    const char *head = "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":";
    const char *open = "{\"arrayValue\":{\"values\":[";
    const char *leaf = "{\"stringValue\":\"x\"}";
    const char *close = "]}}";
    const char *tail = "}]}]}]}";
    size_t size = strlen(head) + (size_t)levels * (strlen(open) + strlen(close)) + strlen(leaf) +
                  strlen(tail) + 1;
    char *s = malloc(size);
    assert_non_null(s);
    char *p = stpcpy(s, head);
    for (int i = 0; i < levels; i++)
        p = stpcpy(p, open);
    p = stpcpy(p, leaf);
    for (int i = 0; i < levels; i++)
        p = stpcpy(p, close);
    stpcpy(p, tail);
    return s;
}

static void test_deep_nesting_is_refused(void **state)
{
    (void)state;
    /* 8 levels to reach the body, 3 more per arrayValue: 8 + 3 * 39 = 125 levels is fine... */
    char *ok = nested_body(39);
    ProtobufCMessage *deep = decode_ok(LOGS_DESC, ok);
    char *again = encode_ok(deep); /* ...and what was accepted can be written back */
    assert_same_message(deep, decode_ok(LOGS_DESC, again));
    free(again);
    free(ok);
    /* ...8 + 3 * 40 = 128 is not */
    char *too_deep = nested_body(40);
    decode_fails(LOGS_DESC, too_deep, "JSON nested deeper than 127 levels",
                 "logRecords[0].body.arrayValue");
    free(too_deep);

    /* skipped (unknown) values count too; 126 nested arrays + the root object is the limit */
    char buf[400];
    for (int n = 126; n <= 127; n++) {
        char *p = stpcpy(buf, "{\"unknown\":");
        for (int i = 0; i < n; i++)
            *p++ = '[';
        for (int i = 0; i < n; i++)
            *p++ = ']';
        stpcpy(p, "}");
        if (n == 126)
            decode_ok(TRACES_DESC, buf);
        else
            decode_fails(TRACES_DESC, buf, "JSON nested deeper than 127 levels", NULL);
    }

    /* a pathological document is refused early, without exhausting anything */
    size_t huge = 1000000;
    char *bomb = malloc(huge + 16);
    assert_non_null(bomb);
    memcpy(bomb, "{\"x\":", 5);
    memset(bomb + 5, '[', huge);
    bomb[huge + 5] = '\0';
    decode_fails(TRACES_DESC, bomb, "nested deeper", NULL);
    free(bomb);

    /* a message nested too deep to write (e.g. decoded from protobuf) is not written */
    lg_any_value *v = any_str("leaf");
    for (int i = 0; i < 60; i++)
        v = any_array(1, ptrs(1, v));
    assert_null(lg_otlp_json_encode(&v->base, NULL));
}

static void test_doubles_special_values_and_shortest_text(void **state)
{
    (void)state;
    lg_any_value *v = (lg_any_value *)decode_ok(ANY_DESC, "{\"doubleValue\":\"NaN\"}");
    assert_true(isnan(v->double_value));
    v = (lg_any_value *)decode_ok(ANY_DESC, "{\"doubleValue\":\"Infinity\"}");
    assert_true(isinf(v->double_value) && v->double_value > 0);
    v = (lg_any_value *)decode_ok(ANY_DESC, "{\"doubleValue\":\"-Infinity\"}");
    assert_true(isinf(v->double_value) && v->double_value < 0);
    v = (lg_any_value *)decode_ok(ANY_DESC, "{\"doubleValue\":\"2.5e-3\"}");
    assert_true(v->double_value == 2.5e-3);
    v = (lg_any_value *)decode_ok(ANY_DESC, "{\"doubleValue\":-0.0}");
    assert_true(v->double_value == 0 && signbit(v->double_value));
    decode_fails(ANY_DESC, "{\"doubleValue\":\"nan\"}", "doubleValue: expected a number", NULL);
    decode_fails(ANY_DESC, "{\"doubleValue\":\"0x10\"}", "doubleValue: expected a number", NULL);

    static const struct {
        double value;
        const char *json;
    } cases[] = {
        {0.1, "{\"doubleValue\":0.1}"},
        {1.0 / 3, "{\"doubleValue\":0.3333333333333333}"},
        {0.7, "{\"doubleValue\":0.7}"},
        {1e300, "{\"doubleValue\":1e+300}"},
        {-2, "{\"doubleValue\":-2}"},
        {5e-324, "{\"doubleValue\":4.94065645841247e-324}"},
        {NAN, "{\"doubleValue\":\"NaN\"}"},
        {INFINITY, "{\"doubleValue\":\"Infinity\"}"},
        {-INFINITY, "{\"doubleValue\":\"-Infinity\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lg_any_value *d = any_double(cases[i].value);
        char *json = encode_ok(&d->base);
        assert_string_equal(json, cases[i].json);
        lg_any_value *back = (lg_any_value *)decode_ok(ANY_DESC, json);
        assert_memory_equal(&back->double_value, &d->double_value, sizeof(double));
        free(json);
    }
}

static void test_set_oneof_members_are_written_even_when_default(void **state)
{
    (void)state;
    lg_any_value *values[] = {any_int(0),    any_bool(0),   any_str(""),
                              any_double(0), any_bytes(""), msg_new(ANY_DESC)};
    const char *expected[] = {"{\"intValue\":\"0\"}",   "{\"boolValue\":false}",
                              "{\"stringValue\":\"\"}", "{\"doubleValue\":0}",
                              "{\"bytesValue\":\"\"}",  "{}"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char *json = assert_round_trip(&values[i]->base);
        assert_string_equal(json, expected[i]);
        free(json);
    }
    /* a non-oneof proto3 field holding -0.0 is not a default (its bits differ) */
    lg_summary_dp *sd = msg_new(&opentelemetry__proto__metrics__v1__summary_data_point__descriptor);
    sd->sum = -0.0;
    char *json = encode_ok(&sd->base);
    assert_string_equal(json, "{\"sum\":-0}");
    free(json);
}

static void test_strings_are_escaped_and_invalid_utf8_is_repaired_on_encode(void **state)
{
    (void)state;
    lg_any_value *v = (lg_any_value *)decode_ok(
        ANY_DESC, "{\"stringValue\":\"tab\\there \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\/\"}");
    assert_string_equal(v->string_value, "tab\there \"q\" \xc3\xa9 \xf0\x9f\x98\x80 /");
    char *json = assert_round_trip(&v->base);
    assert_string_equal(json,
                        "{\"stringValue\":\"tab\\there \\\"q\\\" \xc3\xa9 \xf0\x9f\x98\x80 /\"}");
    free(json);

    /* protobuf input is not UTF-8 checked; JSON output must be valid anyway */
    lg_any_value *bad = any_str("ok\xff\xc3(\xed\xa0\x80!");
    json = encode_ok(&bad->base);
    assert_string_equal(json,
                        "{\"stringValue\":\"ok\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd"
                        "\xef\xbf\xbd!\"}");
    free(json);
    lg_any_value *ctl = any_str("\x01\x1f");
    json = encode_ok(&ctl->base);
    assert_string_equal(json, "{\"stringValue\":\"\\u0001\\u001F\"}");
    free(json);
}

static void test_rpc_status_and_partial_success_responses(void **state)
{
    (void)state;
    Google__Rpc__Any detail = GOOGLE__RPC__ANY__INIT;
    detail.type_url = "type.googleapis.com/google.rpc.BadRequest";
    uint8_t payload[] = {1, 2};
    detail.value = (ProtobufCBinaryData){.len = sizeof payload, .data = payload};
    Google__Rpc__Any *details[] = {&detail};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 3;
    st.message = "resourceSpans[0]: bad";
    st.n_details = 1;
    st.details = details;
    char *json = assert_round_trip(&st.base);
    assert_string_equal(json, "{\"code\":3,\"message\":\"resourceSpans[0]: bad\",\"details\":"
                              "[{\"typeUrl\":\"type.googleapis.com/google.rpc.BadRequest\","
                              "\"value\":\"AQI=\"}]}");
    free(json);

    lg_traces_partial partial =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    partial.rejected_spans = 2;
    partial.error_message = "2 spans have invalid trace ids";
    lg_traces_resp resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    resp.partial_success = &partial;
    json = assert_round_trip(&resp.base);
    assert_string_equal(json, "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":"
                              "\"2 spans have invalid trace ids\"}}");
    free(json);
}

static void test_repeated_fields_grow_and_a_repeated_key_appends(void **state)
{
    (void)state;
    /* 1000 attributes: the arena arrays grow by doubling */
    size_t n = 1000;
    char *json = malloc(n * 64 + 256);
    assert_non_null(json);
    char *p = stpcpy(json, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"attributes\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s{\"key\":\"k%zu\",\"value\":{\"intValue\":%zu}}", i ? "," : "", i, i);
    stpcpy(p, "]}]}]}]}");
    lg_traces_req *t = (lg_traces_req *)decode_ok(TRACES_DESC, json);
    lg_span *s = t->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(s->n_attributes, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(s->attributes[i]->value->int_value, (int64_t)i);
    assert_string_equal(s->attributes[n - 1]->key, "k999");
    free(json);

    lg_metrics_req *m = (lg_metrics_req *)decode_ok(
        METRICS_DESC, "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"histogram\":{"
                      "\"dataPoints\":[{\"bucketCounts\":[1,2,3,4,5],\"explicitBounds\":[1],"
                      "\"bucketCounts\":[6]}]}}]}]}]}");
    lg_histogram_dp *dp =
        m->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
    assert_int_equal(dp->n_bucket_counts, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(dp->bucket_counts[i], i + 1);
}

/* The field-name cache is filled lazily; first use from many threads at once must agree. */
struct thread_result {
    char *json;
};

static void *encode_decode_in_thread(void *arg)
{
    struct thread_result *r = arg;
    struct lg_arena *a = lg_arena_create(0);
    r->json = NULL;
    for (int i = 0; i < 20 && a != NULL; i++) {
        ProtobufCMessage *m = NULL;
        if (lg_otlp_json_decode(TRACES_DESC, js_sdk_traces, strlen(js_sdk_traces), a, &m, NULL) !=
            0)
            break;
        free(r->json);
        r->json = lg_otlp_json_encode(m, NULL);
    }
    lg_arena_destroy(a);
    return NULL;
}

static void test_concurrent_use_from_threads_agrees(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    struct thread_result res[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, encode_decode_in_thread, &res[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ProtobufCMessage *expected = &js_sdk_traces_expected()->base;
    for (int i = 0; i < THREADS; i++) {
        assert_non_null(res[i].json);
        assert_same_message(expected, decode_ok(TRACES_DESC, res[i].json));
        assert_string_equal(res[0].json, res[i].json);
    }
    for (int i = 0; i < THREADS; i++)
        free(res[i].json);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_object_is_an_empty_request),
        T(test_js_sdk_span_json_decodes_to_the_expected_spans),
        T(test_traces_round_trip_through_json),
        T(test_encoded_span_is_exactly_the_otlp_json_shape),
        T(test_metrics_round_trip_all_point_kinds),
        T(test_histogram_sum_min_max_of_zero_are_written_and_read_back),
        T(test_logs_round_trip_kvlist_bytes_and_array_bodies),
        T(test_64bit_values_accept_numbers_and_strings_exactly),
        T(test_integers_out_of_range_or_fractional_are_refused),
        T(test_64bit_values_are_written_as_strings_and_32bit_as_numbers),
        T(test_enums_accept_names_and_integers),
        T(test_unknown_fields_are_ignored_at_any_depth),
        T(test_snake_case_field_names_are_accepted),
        T(test_null_means_the_field_is_absent),
        T(test_malformed_json_reports_the_byte_offset),
        T(test_top_level_must_be_an_object),
        T(test_wrong_value_types_name_the_json_path),
        T(test_ids_are_hex_and_bad_hex_is_refused),
        T(test_base64_accepts_standard_and_url_safe_with_or_without_padding),
        T(test_deep_nesting_is_refused),
        T(test_doubles_special_values_and_shortest_text),
        T(test_set_oneof_members_are_written_even_when_default),
        T(test_strings_are_escaped_and_invalid_utf8_is_repaired_on_encode),
        T(test_rpc_status_and_partial_success_responses),
        T(test_repeated_fields_grow_and_a_repeated_key_appends),
        T(test_concurrent_use_from_threads_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
