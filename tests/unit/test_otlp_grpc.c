/* tests/unit/test_otlp_grpc.c — the OTLP receiver's gRPC transport (receiver/otlp_grpc.c)
 * end to end on 127.0.0.1: a receiver built by hand feeds a fake downstream component that
 * records what it gets and can be told to refuse; requests go through the gRPC client
 * adapter, as an OTLP exporter would send them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grpc_client.h"
#include "core/otlp.h"
#include "core/telemetry.h"
#include "receiver/otlp_grpc.h"
#include "receiver/otlp_internal.h"

#define TRACES_EXPORT  "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define METRICS_EXPORT "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
#define LOGS_EXPORT    "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
#define TIMEOUT_NS     (10 * 1000000000LL)

/* ---------------------------------------------------------------- fake downstream */

struct sink {
    pthread_mutex_t mu;
    int refuse_with; /* LG_OK, or the code consume() returns */
    int calls;
    size_t items; /* of the last batch */
    enum lg_signal signal;
    uint8_t *packed; /* the last batch, re-encoded */
    size_t packed_len;
};

static int sink_consume(struct lg_component *c, struct lg_batch *b)
{
    struct sink *s = c->state;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    int rc = s->refuse_with;
    if (rc == LG_OK) {
        free(s->packed);
        s->items = b->items;
        s->signal = b->signal;
        s->packed = lg_batch_encode(b, &s->packed_len);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static const struct lg_component_type sink_type = {
    .type = "fake_sink",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .consume = sink_consume,
};

/* ---------------------------------------------------------------- fixture */

struct fixture {
    struct sink sink;
    struct lg_component sink_c;
    struct lg_component *targets[1];
    struct lg_component recv_c;
    struct otlp_conf conf;
    struct otlp_receiver r;
    struct lg_telemetry *tel;
    struct lg_grpc_channel *ch;
    char target[64];
};

/* A receiver on 127.0.0.1:0 feeding the sink for the signals in `signals`. */
static void fixture_start(struct fixture *f, unsigned signals, int64_t max_recv_mib)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->sink.mu, NULL);
    f->sink_c = (struct lg_component){.type = &sink_type, .id = "fake_sink", .state = &f->sink};
    f->targets[0] = &f->sink_c;
    f->conf.protocols.has_grpc = true;
    f->conf.protocols.grpc.endpoint = "127.0.0.1:0";
    f->conf.protocols.grpc.max_recv_msg_size_mib = max_recv_mib;
    f->recv_c = (struct lg_component){.id = "otlp", .conf = &f->conf};
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        if (signals & LG_SIG_BIT(s))
            f->recv_c.next[s] = (struct lg_fanout){.to = f->targets, .n = 1};
    f->r = (struct otlp_receiver){.c = &f->recv_c, .conf = &f->conf};
    f->recv_c.state = &f->r;
    f->tel = lg_telemetry_create();
    assert_non_null(f->tel);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        char labels[64];
        snprintf(labels, sizeof labels, "signal=\"%d\"", s);
        f->r.accepted[OTLP_GRPC][s] = lg_telemetry_counter(f->tel, "accepted", "", labels);
        f->r.refused[OTLP_GRPC][s] = lg_telemetry_counter(f->tel, "refused", "", labels);
    }

    struct lg_err err = {{0}};
    if (otlp_grpc_start(&f->r, &err) != LG_OK)
        fail_msg("otlp_grpc_start: %s", err.msg);
    int port = otlp_grpc_bound_port(&f->r);
    assert_true(port > 0);
    snprintf(f->target, sizeof f->target, "127.0.0.1:%d", port);
    struct lg_grpc_channel_opts co = {.insecure = true, .wait_for_ready = true};
    f->ch = lg_grpc_channel_create(f->target, &co, &err);
    assert_non_null(f->ch);
}

static void fixture_stop(struct fixture *f)
{
    lg_grpc_channel_destroy(f->ch);
    otlp_grpc_shutdown(&f->r, lg_now_mono_ns() + TIMEOUT_NS);
    otlp_grpc_destroy(&f->r);
    assert_int_equal(otlp_grpc_bound_port(&f->r), 0);
    free(f->sink.packed);
    pthread_mutex_destroy(&f->sink.mu);
    lg_telemetry_destroy(f->tel);
}

struct reply {
    int status;
    char msg[512];
    uint8_t *data;
    size_t len;
};

static struct reply export_on(struct lg_grpc_channel *ch, const char *method, const uint8_t *req,
                              size_t len)
{
    struct reply r = {.status = -1};
    assert_int_equal(lg_grpc_unary(ch, method, NULL, req, len, TIMEOUT_NS, &r.data, &r.len,
                                   &r.status, r.msg, sizeof r.msg),
                     0);
    return r;
}

static struct reply export(struct fixture *f, const char *method, const uint8_t *req, size_t len)
{
    return export_on(f->ch, method, req, len);
}

/* ---------------------------------------------------------------- requests */

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_int_equal(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

/* `nspans` spans of one trace; span `zero_trace_id` (or -1 for none) has an all-zero trace ID. */
static uint8_t *traces_request(int nspans, int zero_trace_id, size_t *len)
{
    static uint8_t trace_id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                   0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static uint8_t zero_id[16];
    uint8_t span_ids[8][8];
    lg_span spans[8];
    lg_span *span_ptrs[8];
    lg_kv attr = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    lg_any_value model = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    model.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    model.string_value = "gpt-4o";
    attr.key = "gen_ai.request.model";
    attr.value = &model;
    lg_kv *attrs[] = {&attr};
    assert_true(nspans <= 8);
    for (int i = 0; i < nspans; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        memset(span_ids[i], 0, 8);
        span_ids[i][7] = (uint8_t)(i + 1);
        spans[i].trace_id.data = i == zero_trace_id ? zero_id : trace_id;
        spans[i].trace_id.len = 16;
        spans[i].span_id.data = span_ids[i];
        spans[i].span_id.len = 8;
        spans[i].name = "chat gpt-4o";
        spans[i].start_time_unix_nano = 1700000000000000000ULL + (uint64_t)i;
        spans[i].end_time_unix_nano = 1700000000500000000ULL + (uint64_t)i;
        spans[i].n_attributes = 1;
        spans[i].attributes = attrs;
        span_ptrs[i] = &spans[i];
    }
    lg_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = (size_t)nspans;
    ss.spans = span_ptrs;
    lg_scope_spans *ssp[] = {&ss};
    lg_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = ssp;
    lg_resource_spans *rsp[] = {&rs};
    lg_traces_req req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = rsp;
    return pack(&req.base, len);
}

/* A gauge with two points and a monotonic sum with one: three data points. */
static uint8_t *metrics_request(size_t *len)
{
    lg_number_dp p[3];
    lg_number_dp *gauge_points[2] = {&p[0], &p[1]};
    lg_number_dp *sum_points[1] = {&p[2]};
    for (int i = 0; i < 3; i++) {
        opentelemetry__proto__metrics__v1__number_data_point__init(&p[i]);
        p[i].time_unix_nano = 1700000000000000000ULL;
        p[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        p[i].as_int = 10 * (i + 1);
    }
    Opentelemetry__Proto__Metrics__V1__Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    g.n_data_points = 2;
    g.data_points = gauge_points;
    Opentelemetry__Proto__Metrics__V1__Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    sum.n_data_points = 1;
    sum.data_points = sum_points;
    sum.is_monotonic = 1;
    sum.aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    lg_metric m[2];
    opentelemetry__proto__metrics__v1__metric__init(&m[0]);
    m[0].name = "gen_ai.client.operation.duration";
    m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m[0].gauge = &g;
    opentelemetry__proto__metrics__v1__metric__init(&m[1]);
    m[1].name = "gen_ai.client.token.usage";
    m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m[1].sum = &sum;
    lg_metric *mp[] = {&m[0], &m[1]};
    lg_scope_metrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    sm.n_metrics = 2;
    sm.metrics = mp;
    lg_scope_metrics *smp[] = {&sm};
    lg_resource_metrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    rm.n_scope_metrics = 1;
    rm.scope_metrics = smp;
    lg_resource_metrics *rmp[] = {&rm};
    lg_metrics_req req =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.n_resource_metrics = 1;
    req.resource_metrics = rmp;
    return pack(&req.base, len);
}

static uint8_t *logs_request(size_t *len)
{
    lg_any_value body[2];
    lg_log_record lr[2];
    lg_log_record *lrp[2] = {&lr[0], &lr[1]};
    const char *texts[2] = {"prompt redacted", "completion redacted"};
    for (int i = 0; i < 2; i++) {
        opentelemetry__proto__common__v1__any_value__init(&body[i]);
        body[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        body[i].string_value = (char *)texts[i];
        opentelemetry__proto__logs__v1__log_record__init(&lr[i]);
        lr[i].time_unix_nano = 1700000000000000000ULL;
        lr[i].severity_number =
            OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
        lr[i].severity_text = "INFO";
        lr[i].body = &body[i];
    }
    lg_scope_logs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.n_log_records = 2;
    sl.log_records = lrp;
    lg_scope_logs *slp[] = {&sl};
    lg_resource_logs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.n_scope_logs = 1;
    rl.scope_logs = slp;
    lg_resource_logs *rlp[] = {&rl};
    lg_logs_req req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.n_resource_logs = 1;
    req.resource_logs = rlp;
    return pack(&req.base, len);
}

static void assert_sink_got(struct fixture *f, enum lg_signal s, size_t items, const uint8_t *req,
                            size_t len)
{
    pthread_mutex_lock(&f->sink.mu);
    assert_int_equal(f->sink.signal, s);
    assert_int_equal(f->sink.items, items);
    /* decoded once, re-encoded by the sink: the same bytes as sent, so nothing was lost */
    assert_int_equal(f->sink.packed_len, len);
    assert_memory_equal(f->sink.packed, req, len);
    pthread_mutex_unlock(&f->sink.mu);
}

/* ---------------------------------------------------------------- tests */

static void test_traces_metrics_and_logs_arrive_intact(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES | LG_METRICS | LG_LOGS, 16);

    size_t len;
    uint8_t *req = traces_request(3, -1, &len);
    struct reply r = export(&f, TRACES_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    lg_traces_resp *tr =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, r.len, r.data);
    assert_non_null(tr);
    assert_null(tr->partial_success); /* nothing rejected: no partial_success at all */
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr,
                                                                                             NULL);
    free(r.data);
    assert_sink_got(&f, LG_SIGNAL_TRACES, 3, req, len);
    free(req);
    assert_int_equal(lg_counter_value(f.r.accepted[OTLP_GRPC][LG_SIGNAL_TRACES]), 3);

    req = metrics_request(&len);
    r = export(&f, METRICS_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    lg_metrics_resp *mr =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, r.len, r.data);
    assert_non_null(mr);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        mr, NULL);
    free(r.data);
    assert_sink_got(&f, LG_SIGNAL_METRICS, 3, req, len);
    free(req);

    req = logs_request(&len);
    r = export(&f, LOGS_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    assert_sink_got(&f, LG_SIGNAL_LOGS, 2, req, len);
    free(req);
    assert_int_equal(lg_counter_value(f.r.accepted[OTLP_GRPC][LG_SIGNAL_LOGS]), 2);
    assert_int_equal(f.sink.calls, 3);
    fixture_stop(&f);
}

static void test_gzip_compressed_export_is_accepted(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES, 16);
    struct lg_grpc_channel_opts co = {.insecure = true, .gzip = true, .wait_for_ready = true};
    struct lg_err err;
    struct lg_grpc_channel *gz = lg_grpc_channel_create(f.target, &co, &err);
    assert_non_null(gz);
    size_t len;
    uint8_t *req = traces_request(8, -1, &len);
    struct reply r = export_on(gz, TRACES_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    assert_sink_got(&f, LG_SIGNAL_TRACES, 8, req, len);
    free(req);
    lg_grpc_channel_destroy(gz);
    fixture_stop(&f);
}

static void test_empty_request_is_ok_and_reaches_no_pipeline(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES | LG_METRICS | LG_LOGS, 16);
    const char *methods[] = {TRACES_EXPORT, METRICS_EXPORT, LOGS_EXPORT};
    for (size_t i = 0; i < LG_ARRAY_LEN(methods); i++) {
        struct reply r = export(&f, methods[i], NULL, 0);
        assert_int_equal(r.status, LG_GRPC_OK);
        free(r.data);
    }
    assert_int_equal(f.sink.calls, 0);
    fixture_stop(&f);
}

static void test_malformed_protobuf_is_invalid_argument_and_server_keeps_serving(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES, 16);
    /* field 1 (resource_spans), length-delimited, claiming 100 bytes that are not there */
    const uint8_t truncated[] = {0x0a, 0x64, 0x01, 0x02};
    struct reply r = export(&f, TRACES_EXPORT, truncated, sizeof truncated);
    assert_int_equal(r.status, LG_GRPC_INVALID_ARGUMENT);
    assert_non_null(strstr(r.msg, "malformed"));
    assert_null(r.data);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    r = export(&f, TRACES_EXPORT, garbage, sizeof garbage);
    assert_int_equal(r.status, LG_GRPC_INVALID_ARGUMENT);
    assert_int_equal(f.sink.calls, 0);

    size_t len;
    uint8_t *req = traces_request(2, -1, &len);
    r = export(&f, TRACES_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    assert_sink_got(&f, LG_SIGNAL_TRACES, 2, req, len);
    free(req);
    fixture_stop(&f);
}

static void test_pipeline_refusals_map_to_retryable_statuses(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES, 16);
    const struct {
        int refuse_with;
        int status;
    } cases[] = {
        {LG_EAGAIN, LG_GRPC_UNAVAILABLE},      {LG_EFULL, LG_GRPC_RESOURCE_EXHAUSTED},
        {LG_EINVAL, LG_GRPC_INVALID_ARGUMENT}, {LG_EINTERNAL, LG_GRPC_INTERNAL},
        {LG_ENOMEM, LG_GRPC_INTERNAL},
    };
    size_t len;
    uint8_t *req = traces_request(4, -1, &len);
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        f.sink.refuse_with = cases[i].refuse_with;
        struct reply r = export(&f, TRACES_EXPORT, req, len);
        assert_int_equal(r.status, cases[i].status);
        assert_true(strlen(r.msg) > 0); /* the client learns why */
        assert_null(r.data);
    }
    assert_int_equal(lg_counter_value(f.r.refused[OTLP_GRPC][LG_SIGNAL_TRACES]),
                     4 * LG_ARRAY_LEN(cases));
    assert_int_equal(lg_counter_value(f.r.accepted[OTLP_GRPC][LG_SIGNAL_TRACES]), 0);
    f.sink.refuse_with = LG_OK;
    struct reply r = export(&f, TRACES_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    free(req);
    fixture_stop(&f);
}

static void test_span_with_all_zero_trace_id_is_reported_in_partial_success(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES, 16);
    size_t len;
    uint8_t *req = traces_request(3, 1, &len);
    struct reply r = export(&f, TRACES_EXPORT, req, len);
    free(req);
    assert_int_equal(r.status, LG_GRPC_OK);
    lg_traces_resp *tr =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, r.len, r.data);
    assert_non_null(tr);
    assert_non_null(tr->partial_success);
    assert_int_equal(tr->partial_success->rejected_spans, 1);
    assert_non_null(strstr(tr->partial_success->error_message, "trace_id"));
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr,
                                                                                             NULL);
    free(r.data);
    pthread_mutex_lock(&f.sink.mu);
    assert_int_equal(f.sink.items, 2); /* the valid spans went on */
    pthread_mutex_unlock(&f.sink.mu);
    assert_int_equal(lg_counter_value(f.r.accepted[OTLP_GRPC][LG_SIGNAL_TRACES]), 2);
    assert_int_equal(lg_counter_value(f.r.refused[OTLP_GRPC][LG_SIGNAL_TRACES]), 1);
    fixture_stop(&f);
}

static void test_unknown_method_and_unwired_signal_are_unimplemented(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES, 16); /* no metrics or logs pipeline */
    struct reply r =
        export(&f, "/opentelemetry.proto.collector.trace.v1.TraceService/Nope", NULL, 0);
    assert_int_equal(r.status, LG_GRPC_UNIMPLEMENTED);
    size_t len;
    uint8_t *req = metrics_request(&len);
    r = export(&f, METRICS_EXPORT, req, len);
    free(req);
    assert_int_equal(r.status, LG_GRPC_UNIMPLEMENTED);
    assert_int_equal(f.sink.calls, 0);
    fixture_stop(&f);
}

static void test_request_over_max_recv_msg_size_is_resource_exhausted(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_LOGS, 1);
    /* a syntactically valid request just over 1 MiB: one log record with a big body */
    size_t body_len = 1024 * 1024 + 16;
    char *text = malloc(body_len + 1);
    memset(text, 'x', body_len);
    text[body_len] = '\0';
    lg_any_value body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body.string_value = text;
    lg_log_record lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
    lr.body = &body;
    lg_log_record *lrp[] = {&lr};
    lg_scope_logs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.n_log_records = 1;
    sl.log_records = lrp;
    lg_scope_logs *slp[] = {&sl};
    lg_resource_logs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.n_scope_logs = 1;
    rl.scope_logs = slp;
    lg_resource_logs *rlp[] = {&rl};
    lg_logs_req lreq = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    lreq.n_resource_logs = 1;
    lreq.resource_logs = rlp;
    size_t len;
    uint8_t *req = pack(&lreq.base, &len);
    struct reply r = export(&f, LOGS_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(f.sink.calls, 0);

    /* under the limit it goes through */
    body_len = 1000 * 1000;
    text[body_len] = '\0';
    free(req);
    req = pack(&lreq.base, &len);
    r = export(&f, LOGS_EXPORT, req, len);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    assert_sink_got(&f, LG_SIGNAL_LOGS, 1, req, len);
    free(req);
    free(text);
    fixture_stop(&f);
}

static void test_second_receiver_on_a_busy_port_fails_with_a_clear_error(void **state)
{
    (void)state;
    struct fixture f;
    fixture_start(&f, LG_TRACES, 16);
    struct otlp_conf conf2 = f.conf;
    conf2.protocols.grpc.endpoint = f.target;
    struct lg_component c2 = f.recv_c;
    c2.conf = &conf2;
    struct otlp_receiver r2 = {.c = &c2, .conf = &conf2};
    struct lg_err err = {{0}};
    assert_int_not_equal(otlp_grpc_start(&r2, &err), LG_OK);
    char want[128];
    snprintf(want, sizeof want, "cannot listen on %s: address in use", f.target);
    assert_string_equal(err.msg, want);
    assert_null(r2.grpc);
    otlp_grpc_destroy(&r2); /* harmless after a failed start */

    /* bad TLS config is named too */
    conf2.protocols.grpc.endpoint = "127.0.0.1:0";
    conf2.protocols.grpc.has_tls = true;
    conf2.protocols.grpc.tls.cert_file = "/nonexistent/cert.pem";
    conf2.protocols.grpc.tls.key_file = "/nonexistent/key.pem";
    assert_int_not_equal(otlp_grpc_start(&r2, &err), LG_OK);
    assert_non_null(strstr(err.msg, "tls.cert_file"));
    fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traces_metrics_and_logs_arrive_intact),
        cmocka_unit_test(test_gzip_compressed_export_is_accepted),
        cmocka_unit_test(test_empty_request_is_ok_and_reaches_no_pipeline),
        cmocka_unit_test(test_malformed_protobuf_is_invalid_argument_and_server_keeps_serving),
        cmocka_unit_test(test_pipeline_refusals_map_to_retryable_statuses),
        cmocka_unit_test(test_span_with_all_zero_trace_id_is_reported_in_partial_success),
        cmocka_unit_test(test_unknown_method_and_unwired_signal_are_unimplemented),
        cmocka_unit_test(test_request_over_max_recv_msg_size_is_resource_exhausted),
        cmocka_unit_test(test_second_receiver_on_a_busy_port_fails_with_a_clear_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
