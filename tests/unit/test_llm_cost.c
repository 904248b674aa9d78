/* tests/unit/test_llm_cost.c — the llm_cost processor end to end on batches: it prices LLM
 * spans of any convention, writes the configured attribute sets on a copy-on-write clone
 * (the original batch is untouched), marks and counts unknown models, and passes batches
 * without LLM spans through as they are. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "llm_test_util.h"
#include "sink.h"

extern const struct lg_component_type lg_llm_cost_processor;

struct fixture {
    struct lg_conf_doc doc;
    struct lg_runtime rt;
    struct lg_component proc;
    struct lg_component sink_c;
    struct test_sink sink;
    struct lg_component *to[1];
    struct lg_arena *arena;
};

static int make_processor(struct fixture *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    struct lg_conf_source src = {.text = yaml, .name = "llm_cost.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->rt.telemetry = lg_telemetry_create();
    f->arena = lg_arena_create(0);
    f->proc.type = &lg_llm_cost_processor;
    f->proc.id = "llm_cost";
    f->proc.rt = &f->rt;
    f->proc.conf_node = lg_node_get(f->doc.root, "llm_cost");
    f->proc.conf = lg_arena_calloc(f->arena, 1, lg_llm_cost_processor.conf_size);
    test_sink_init(&f->sink, &f->sink_c);
    f->to[0] = &f->sink_c;
    f->proc.next[LG_SIGNAL_TRACES] = (struct lg_fanout){.to = f->to, .n = 1};
    rc = lg_conf_apply(lg_llm_cost_processor.fields, f->proc.conf_node, f->doc.root, f->proc.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_llm_cost_processor.create(&f->proc, err);
    return rc;
}

static void free_processor(struct fixture *f)
{
    if (f->proc.state)
        lg_llm_cost_processor.destroy(&f->proc);
    test_sink_free(&f->sink);
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

/* One resource, one scope: a seed span, a plain span and a GenAI span with an unknown model. */
static struct lg_batch *llm_batch(void)
{
    struct lg_batch *b = make_traces(1, 1, 3);
    struct lg_arena *a = b->arena;
    lg_scope_spans *ss = b->req.traces->resource_spans[0]->scope_spans[0];
    struct tattr seed[] = {{"llm.model", 's', "gpt-4o"}, {"llm.prompt_tokens", 'i', "1000"},
                           {"llm.completion_tokens", 'i', "100"}, {"llm.total_tokens", 'i', "1100"}};
    struct tattr plain[] = {{"http.route", 's', "/"}};
    struct tattr unk[] = {{"gen_ai.operation.name", 's', "chat"}, {"gen_ai.provider.name", 's', "openai"},
                          {"gen_ai.request.model", 's', "no-such-model-7"}, {"gen_ai.usage.input_tokens", 'i', "5"},
                          {"gen_ai.usage.output_tokens", 'i', "5"}};
    lg_span *s0 = tspan(a, "llm_completion", seed, 4), *s1 = tspan(a, "GET /", plain, 1), *s2 = tspan(a, "chat x", unk, 5);
    lg_span *spans[] = {s0, s1, s2};
    for (int i = 0; i < 3; i++) {
        spans[i]->trace_id = ss->spans[i]->trace_id;
        spans[i]->span_id = ss->spans[i]->span_id;
        spans[i]->start_time_unix_nano = 1767225600ULL * 1000000000ULL;
        ss->spans[i] = spans[i];
    }
    return b;
}

static lg_span *span_at(struct lg_batch *b, size_t i)
{
    return b->req.traces->resource_spans[0]->scope_spans[0]->spans[i];
}

static double dattr(const lg_span *s, const char *k)
{
    double d = NAN;
    const lg_any_value *v = lg_attr_find(s->attributes, s->n_attributes, k);
    if (v == NULL || !lg_any_double(v, &d))
        return NAN;
    return d;
}

static void test_prices_seed_span_and_marks_unknown_model(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "llm_cost: {}\n", &err), LG_OK);
    struct lg_batch *b = llm_batch();
    size_t orig_n0 = span_at(b, 0)->n_attributes;
    assert_int_equal(lg_llm_cost_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    struct lg_batch *out = f.sink.got[0];
    assert_ptr_not_equal(out, b);
    assert_int_equal(out->items, 3);
    /* the original is untouched */
    assert_int_equal(span_at(b, 0)->n_attributes, orig_n0);
    assert_null(lg_attr_find(span_at(b, 0)->attributes, span_at(b, 0)->n_attributes, "gen_ai.usage.cost"));
    /* gpt-4o: 1000 x 2.5 + 100 x 10 per 1M */
    const lg_span *s0 = span_at(out, 0);
    double want = (1000 * 2.5 + 100 * 10) / 1e6;
    assert_true(fabs(dattr(s0, "gen_ai.usage.cost") - want) < 1e-15);
    assert_true(fabs(dattr(s0, "llm.cost.total") - want) < 1e-15);
    assert_true(fabs(dattr(s0, "llm.cost.prompt") - 1000 * 2.5 / 1e6) < 1e-15);
    assert_true(fabs(dattr(s0, "llm.cost.completion") - 100 * 10 / 1e6) < 1e-15);
    int64_t v;
    assert_true(lg_any_int(lg_attr_find(s0->attributes, s0->n_attributes, "gen_ai.usage.input_tokens"), &v));
    assert_int_equal(v, 1000);
    assert_true(lg_any_int(lg_attr_find(s0->attributes, s0->n_attributes, "gen_ai.usage.output_tokens"), &v));
    assert_int_equal(v, 100);
    /* the plain span is shared, not copied */
    assert_ptr_equal(span_at(out, 1), span_at(b, 1));
    /* the LLM spans are listed for later components, with the call as forwarded: the
     * cost just written, the tokens read */
    assert_true(out->llm_scanned);
    assert_int_equal(out->n_llm_spans, 2);
    assert_ptr_equal(out->llm_spans[0].span, s0);
    assert_non_null(out->llm_spans[0].call);
    assert_true(out->llm_spans[0].call->has_cost);
    assert_true(fabs(out->llm_spans[0].call->cost_usd - want) < 1e-15);
    assert_int_equal(out->llm_spans[0].call->total_tokens, 1100);
    assert_ptr_equal(out->llm_spans[1].span, span_at(out, 2));
    assert_false(out->llm_spans[1].call->has_cost);
    /* unknown model: marked, counted, no cost */
    const lg_span *s2 = span_at(out, 2);
    bool bv = false;
    assert_true(lg_any_bool(lg_attr_find(s2->attributes, s2->n_attributes, "llm.cost.unknown_model"), &bv));
    assert_true(bv);
    assert_null(lg_attr_find(s2->attributes, s2->n_attributes, "gen_ai.usage.cost"));
    size_t len;
    char *text = lg_telemetry_render(f.rt.telemetry, &len);
    assert_non_null(strstr(text, "llmgate_llm_cost_unknown_model_spans{processor=\"llm_cost\",model=\"no-such-model-7\"} 1"));
    assert_non_null(strstr(text, "llmgate_llm_cost_priced_spans{processor=\"llm_cost\"} 1"));
    free(text);
    /* the clone encodes (valid protobuf tree) and decodes back with the cost */
    size_t n;
    uint8_t *bytes = lg_batch_encode(out, &n);
    assert_non_null(bytes);
    struct lg_batch *back = NULL;
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, bytes, n, &back, &err), LG_OK);
    assert_true(fabs(dattr(span_at(back, 0), "gen_ai.usage.cost") - want) < 1e-15);
    lg_batch_unref(back);
    free(bytes);
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_batch_without_llm_spans_passes_through(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "llm_cost: {}\n", &err), LG_OK);
    struct lg_batch *b = make_traces(2, 2, 5);
    assert_int_equal(lg_llm_cost_processor.consume(&f.proc, b), LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    assert_ptr_equal(f.sink.got[0], b);
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_write_options_and_unknown_attribute_off(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f,
                                    "llm_cost:\n"
                                    "  write: {gen_ai_usage_cost: true, openinference: false, normalized_tokens: false}\n"
                                    "  unknown_model: {attribute: false}\n",
                                    &err),
                     LG_OK);
    struct lg_batch *b = llm_batch();
    assert_int_equal(lg_llm_cost_processor.consume(&f.proc, b), LG_OK);
    struct lg_batch *out = f.sink.got[0];
    const lg_span *s0 = span_at(out, 0);
    assert_false(isnan(dattr(s0, "gen_ai.usage.cost")));
    assert_true(isnan(dattr(s0, "llm.cost.total")));
    assert_null(lg_attr_find(s0->attributes, s0->n_attributes, "gen_ai.usage.input_tokens"));
    assert_ptr_equal(span_at(out, 2), span_at(b, 2)); /* unknown: nothing to write */
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_deployments_and_discounts_from_config(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f,
                                    "llm_cost:\n"
                                    "  deployments: {no-such-model-7: gpt-4o-mini}\n"
                                    "  discounts: {percent: 10, providers: {openai: 25}}\n",
                                    &err),
                     LG_OK);
    struct lg_batch *b = llm_batch();
    /* a Cohere model gets the global 10% */
    struct tattr co[] = {{"gen_ai.provider.name", 's', "cohere"}, {"gen_ai.request.model", 's', "command-r"},
                         {"gen_ai.usage.input_tokens", 'i', "1000"}, {"gen_ai.usage.output_tokens", 'i', "0"}};
    span_at(b, 1)->attributes = tspan(b->arena, "x", co, 4)->attributes;
    span_at(b, 1)->n_attributes = 4;
    assert_int_equal(lg_llm_cost_processor.consume(&f.proc, b), LG_OK);
    struct lg_batch *out = f.sink.got[0];
    assert_true(fabs(dattr(span_at(out, 1), "gen_ai.usage.cost") - 1000 * 0.15 / 1e6 * 0.9) < 1e-15);
    /* span 2 is provider openai: gpt-4o-mini 5 x 0.15 + 5 x 0.6, 25% off */
    double want = (5 * 0.15 + 5 * 0.6) / 1e6 * 0.75;
    assert_true(fabs(dattr(span_at(out, 2), "gen_ai.usage.cost") - want) < 1e-15);
    /* span 0 names no provider: the matched model's provider (openai) decides */
    want = (1000 * 2.5 + 100 * 10) / 1e6 * 0.75;
    assert_true(fabs(dattr(span_at(out, 0), "gen_ai.usage.cost") - want) < 1e-15);
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_config_errors_name_the_path(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "llm_cost: {pricing_format: csv}\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "llm_cost.pricing_format"));
    free_processor(&f);
    assert_int_equal(make_processor(&f, "llm_cost: {pricing_format: litellm}\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "needs pricing_file"));
    free_processor(&f);
    assert_int_equal(make_processor(&f, "llm_cost: {pricing_file: /nonexistent/prices.yaml}\n", &err), LG_EIO);
    assert_non_null(strstr(err.msg, "llm_cost.pricing_file"));
    free_processor(&f);
    assert_int_equal(make_processor(&f, "llm_cost: {discounts: {percent: 120}}\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "llm_cost.discounts.percent"));
    free_processor(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prices_seed_span_and_marks_unknown_model),
        cmocka_unit_test(test_batch_without_llm_spans_passes_through),
        cmocka_unit_test(test_write_options_and_unknown_attribute_off),
        cmocka_unit_test(test_deployments_and_discounts_from_config),
        cmocka_unit_test(test_config_errors_name_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
