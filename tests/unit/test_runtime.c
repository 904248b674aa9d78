/* tests/unit/test_runtime.c — config to component graph: the exact errors a user sees, and
 * how data flows through pipelines (fan-out, per-pipeline processors, forward connector). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/otlp_json.h"
#include "core/runtime.h"
#include "sink.h"

extern const char lg_default_config[];

static const char *fake_env(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "LG_SET") == 0 ? "4317" : NULL;
}

/* Builds a runtime from YAML text; returns the code and fills err. */
static int build(struct lg_runtime *rt, const char *yaml, struct lg_err *err)
{
    struct lg_conf_source src = {.text = yaml, .name = "t.yaml"};
    struct lg_conf_doc doc;
    memset(rt, 0, sizeof *rt);
    int rc = lg_conf_load(&src, 1, fake_env, NULL, &doc, err);
    if (rc != LG_OK)
        return rc;
    return lg_runtime_build(rt, &doc, err);
}

static void expect_error(const char *yaml, const char *msg)
{
    struct lg_runtime rt;
    struct lg_err err = {{0}};
    int rc = build(&rt, yaml, &err);
    lg_runtime_destroy(&rt);
    assert_int_equal(rc, LG_EINVAL);
    assert_string_equal(err.msg, msg);
}

#define PIPE "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n"
#define OTLP "receivers:\n  otlp:\n    protocols:\n      grpc:\n"

static void test_unknown_component_type_is_named_with_its_path(void **state)
{
    (void)state;
    /* the known list is every registered exporter type, in registry order */
    char want[1024];
    size_t n = (size_t)snprintf(want, sizeof want, "t.yaml:7:3: exporters.nosuch: unknown exporter type \"nosuch\" (known: ");
    bool first = true;
    for (const struct lg_component_type *const *t = lg_registry_all(); *t; t++) {
        if ((*t)->kind != LG_EXPORTER)
            continue;
        n += (size_t)snprintf(want + n, sizeof want - n, "%s%s", first ? "" : ", ", (*t)->type);
        first = false;
    }
    snprintf(want + n, sizeof want - n, ")");
    assert_non_null(strstr(want, "known: otlp, otlp_http, prometheus"));
    expect_error(OTLP "exporters:\n  debug:\n  nosuch: {}\n" PIPE, want);
}

static void test_unknown_key_lists_the_known_keys(void **state)
{
    (void)state;
    expect_error("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoitn: x\nexporters:\n  debug:\n" PIPE,
                 "t.yaml:5:9: receivers.otlp.protocols.grpc.endpoitn: unknown key \"endpoitn\" (known keys: "
                 "endpoint, max_recv_msg_size_mib, max_concurrent_streams, read_buffer_size, write_buffer_size, "
                 "include_metadata, transport, tls, keepalive, auth)");
}

static void test_bad_duration_says_what_a_duration_looks_like(void **state)
{
    (void)state;
    expect_error(OTLP "processors:\n  batch:\n    timeout: 5 seconds\nexporters:\n  debug:\n" PIPE,
                 "t.yaml:7:5: processors.batch.timeout: expected a duration such as 200ms, 5s or 1m30s, got \"5 seconds\"");
}

static void test_pipeline_naming_an_undefined_exporter(void **state)
{
    (void)state;
    expect_error(OTLP "exporters:\n  debug:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug, otlp/backend]\n",
                 "t.yaml:11:26: service.pipelines.traces.exporters[1]: references exporter \"otlp/backend\" which is not configured");
}

static void test_missing_env_var_without_default(void **state)
{
    (void)state;
    expect_error("receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: localhost:${env:LG_UNSET}\n",
                 "t.yaml:5:9: receivers.otlp.protocols.grpc.endpoint: environment variable \"LG_UNSET\" is not set (use ${env:LG_UNSET:-default} to give a default)");
}

static void test_receiver_without_protocols_is_refused(void **state)
{
    (void)state;
    expect_error("receivers:\n  otlp:\n    protocols: {}\nexporters:\n  debug:\n" PIPE,
                 "t.yaml:3:5: receivers.otlp.protocols: must enable at least one protocol (grpc or http)");
}

static void test_pipeline_without_exporters_is_refused(void **state)
{
    (void)state;
    expect_error(OTLP "exporters:\n  debug:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n",
                 "t.yaml:9:5: service.pipelines.traces: must have at least one exporter");
}

static void test_unknown_pipeline_signal(void **state)
{
    (void)state;
    expect_error(OTLP "exporters:\n  debug:\nservice:\n  pipelines:\n    profiles:\n      receivers: [otlp]\n      exporters: [debug]\n",
                 "t.yaml:9:5: service.pipelines.profiles: unknown pipeline type \"profiles\" (expected traces, metrics or logs, optionally /name)");
}

static void test_connector_used_on_one_side_only(void **state)
{
    (void)state;
    expect_error(OTLP "exporters:\n  debug:\nconnectors:\n  forward:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug, forward]\n",
                 "t.yaml:8:3: connectors.forward: connector \"forward\" must be used both as an exporter of one pipeline and as a receiver of another");
}

static void test_embedded_default_config_is_valid(void **state)
{
    (void)state;
    struct lg_runtime rt;
    struct lg_err err = {{0}};
    int rc = build(&rt, lg_default_config, &err);
    if (rc != LG_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(rt.npipelines, 4);
    /* shared: otlp, llm_metrics, forward/export, interaction_store, debug, prometheus,
     * health_check; per pipeline: memory_limiter + llm_cost (traces), tail_sampling +
     * redaction + batch (traces/export), memory_limiter + batch (metrics), memory_limiter +
     * redaction + batch (logs) */
    assert_int_equal(rt.ncomponents, 17);
    lg_runtime_destroy(&rt);
}

/* ---- data flow ---- */

static char tmpdir[64];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lgrt.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Counts the spans in a file exporter's JSON-lines output. */
static size_t spans_in_file(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t total = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        struct lg_arena *a = lg_arena_create(0);
        ProtobufCMessage *m;
        struct lg_err err;
        assert_int_equal(lg_otlp_json_decode(lg_request_descriptor(LG_SIGNAL_TRACES), line, (size_t)n, a, &m, &err), LG_OK);
        total += lg_request_count_items(LG_SIGNAL_TRACES, m);
        lg_arena_destroy(a);
    }
    free(line);
    fclose(f);
    return total;
}

/* Starts everything but receivers (no sockets needed to push data in by hand). */
static void start_without_receivers(struct lg_runtime *rt)
{
    struct lg_err err;
    for (size_t i = 0; i < rt->ncomponents; i++) {
        struct lg_component *c = rt->components[i];
        if (c->type->kind == LG_RECEIVER || c->type->kind == LG_EXTENSION || c->type->start == NULL)
            continue;
        if (c->type->start(c, &err) != LG_OK)
            fail_msg("%s", err.msg);
        c->started = true;
    }
}

static struct lg_component *component(struct lg_runtime *rt, const char *id)
{
    for (size_t i = 0; i < rt->ncomponents; i++)
        if (strcmp(rt->components[i]->id, id) == 0)
            return rt->components[i];
    return NULL;
}

static void test_data_flows_through_fanout_processors_and_forward_connector(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "receivers:\n  otlp/internal:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:${env:LG_SET}\n"
             "processors:\n  batch: {send_batch_size: 1000, timeout: 1h}\n"
             "exporters:\n"
             "  file/a: {path: %s/a.jsonl}\n  file/b: {path: %s/b.jsonl}\n  file/c: {path: %s/c.jsonl}\n"
             "connectors:\n  forward/llm:\n"
             "service:\n  pipelines:\n"
             "    traces/in:   {receivers: [otlp/internal], processors: [batch], exporters: [file/a, forward/llm]}\n"
             "    traces/also: {receivers: [otlp/internal], exporters: [file/b]}\n"
             "    traces/out:  {receivers: [forward/llm], processors: [batch], exporters: [file/c]}\n",
             tmpdir, tmpdir, tmpdir);
    struct lg_runtime rt;
    struct lg_err err = {{0}};
    if (build(&rt, yaml, &err) != LG_OK)
        fail_msg("%s", err.msg);
    /* otlp, batch x2, file x3, forward */
    assert_int_equal(rt.ncomponents, 7);
    start_without_receivers(&rt);
    struct lg_component *recv = component(&rt, "otlp/internal");
    assert_non_null(recv);
    /* the receiver feeds the first pipeline's batch and the second pipeline's exporter */
    assert_int_equal(recv->next[LG_SIGNAL_TRACES].n, 2);
    for (int i = 0; i < 3; i++) {
        struct lg_batch *b = make_traces(i, 1, 4);
        assert_int_equal(lg_fanout_consume(&recv->next[LG_SIGNAL_TRACES], b), LG_OK);
        lg_batch_unref(b);
    }
    /* straight to file/b; file/a and file/c wait in the batch processors until shutdown */
    assert_int_equal(spans_in_file("b.jsonl"), 12);
    assert_int_equal(spans_in_file("a.jsonl"), 0);
    lg_runtime_shutdown(&rt, lg_now_mono_ns() + 5000000000LL);
    assert_int_equal(spans_in_file("a.jsonl"), 12);
    assert_int_equal(spans_in_file("c.jsonl"), 12);
    /* processor counters: each pipeline's own instance counted 12 in and 12 out */
    char *text = lg_telemetry_render(rt.telemetry, NULL);
    assert_non_null(strstr(text, "otelcol_processor_incoming_items{processor=\"batch\",pipeline=\"traces/in\",otel_signal=\"traces\"} 12"));
    assert_non_null(strstr(text, "otelcol_processor_outgoing_items{processor=\"batch\",pipeline=\"traces/out\",otel_signal=\"traces\"} 12"));
    assert_non_null(strstr(text, "otelcol_exporter_sent_spans{exporter=\"file/c\"} 12"));
    free(text);
    lg_runtime_destroy(&rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_component_type_is_named_with_its_path),
        cmocka_unit_test(test_unknown_key_lists_the_known_keys),
        cmocka_unit_test(test_bad_duration_says_what_a_duration_looks_like),
        cmocka_unit_test(test_pipeline_naming_an_undefined_exporter),
        cmocka_unit_test(test_missing_env_var_without_default),
        cmocka_unit_test(test_receiver_without_protocols_is_refused),
        cmocka_unit_test(test_pipeline_without_exporters_is_refused),
        cmocka_unit_test(test_unknown_pipeline_signal),
        cmocka_unit_test(test_connector_used_on_one_side_only),
        cmocka_unit_test(test_embedded_default_config_is_valid),
        cmocka_unit_test_setup_teardown(test_data_flows_through_fanout_processors_and_forward_connector, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
