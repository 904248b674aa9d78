/* tests/unit/test_llm.c — LLM span recognition and token normalisation, one row per
 * convention as its SDK emits it (attribute names and value types from REFERENCE §7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "llm_test_util.h"

#define MAXA 16
struct row {
    const char *what;
    const char *name;
    struct tattr attrs[MAXA];
    int is_llm;
    enum lg_llm_convention conv;
    const char *model, *provider;
    int64_t in, out, total, cr, cw, rs;
    const char *finish;
    bool failed;
};

static const struct row rows[] = {
    {"seed decorator", "llm_completion",
     {{"llm.model", 's', "gpt-4o"}, {"llm.prompt_tokens", 'i', "120"}, {"llm.completion_tokens", 'i', "30"},
      {"llm.total_tokens", 'i', "150"}, {"llm.finish_reason", 's', "stop"}, {"llm.temperature", 'd', "0.2"}},
     1, LG_LLM_CONV_SEED, "gpt-4o", NULL, 120, 30, 150, -1, -1, -1, "stop", false},
    {"seed with error", "llm_completion",
     {{"llm.model", 's', "gpt-4o"}, {"llm.error", 's', "RateLimitError"}},
     1, LG_LLM_CONV_SEED, "gpt-4o", NULL, -1, -1, -1, -1, -1, -1, NULL, true},
    {"gen_ai current, openai with cache and reasoning", "chat gpt-4o",
     {{"gen_ai.operation.name", 's', "chat"}, {"gen_ai.provider.name", 's', "openai"},
      {"gen_ai.request.model", 's', "gpt-4o"}, {"gen_ai.response.model", 's', "gpt-4o-2024-08-06"},
      {"gen_ai.usage.input_tokens", 'i', "1000"}, {"gen_ai.usage.output_tokens", 'i', "200"},
      {"gen_ai.usage.cache_read.input_tokens", 'i', "600"}, {"gen_ai.usage.reasoning.output_tokens", 'i', "50"},
      {"gen_ai.response.finish_reasons", 'a', "length"}},
     1, LG_LLM_CONV_GENAI, "gpt-4o-2024-08-06", "openai", 1000, 200, 1200, 600, -1, 50, "length", false},
    {"gen_ai current, anthropic native (cache outside input)", "chat claude",
     {{"gen_ai.operation.name", 's', "chat"}, {"gen_ai.provider.name", 's', "anthropic"},
      {"gen_ai.request.model", 's', "claude-sonnet-4-5"}, {"gen_ai.usage.input_tokens", 'i', "100"},
      {"gen_ai.usage.output_tokens", 'i', "20"}, {"gen_ai.usage.cache_read.input_tokens", 'i', "3000"},
      {"gen_ai.usage.cache_creation.input_tokens", 'i', "500"}},
     1, LG_LLM_CONV_GENAI, "claude-sonnet-4-5", "anthropic", 3600, 20, 3620, 3000, 500, -1, NULL, false},
    {"gen_ai current, error.type", "chat x",
     {{"gen_ai.operation.name", 's', "chat"}, {"gen_ai.request.model", 's', "gpt-4o"}, {"error.type", 's', "timeout"}},
     1, LG_LLM_CONV_GENAI, "gpt-4o", NULL, -1, -1, -1, -1, -1, -1, NULL, true},
    {"gen_ai deprecated names, tokens as strings", "ChatCompletion",
     {{"gen_ai.system", 's', "az.ai.openai"}, {"gen_ai.request.model", 's', "my-deploy"},
      {"gen_ai.usage.prompt_tokens", 's', "40"}, {"gen_ai.usage.completion_tokens", 'd', "10"},
      {"gen_ai.usage.cache_read_input_tokens", 'i', "8"}},
     1, LG_LLM_CONV_GENAI_DEPRECATED, "my-deploy", "az.ai.openai", 40, 10, 50, 8, -1, -1, NULL, false},
    {"openllmetry", "openai.chat",
     {{"llm.request.type", 's', "chat"}, {"gen_ai.system", 's', "OpenAI"}, {"gen_ai.request.model", 's', "gpt-4o-mini"},
      {"gen_ai.response.model", 's', "gpt-4o-mini-2024-07-18"}, {"gen_ai.usage.prompt_tokens", 'i', "11"},
      {"gen_ai.usage.completion_tokens", 'i', "7"}, {"llm.usage.total_tokens", 'i', "18"}},
     1, LG_LLM_CONV_OPENLLMETRY, "gpt-4o-mini-2024-07-18", "OpenAI", 11, 7, 18, -1, -1, -1, NULL, false},
    {"openinference", "ChatCompletion",
     {{"openinference.span.kind", 's', "LLM"}, {"llm.model_name", 's', "gpt-4.1"}, {"llm.provider", 's', "openai"},
      {"llm.token_count.prompt", 'i', "500"}, {"llm.token_count.completion", 'i', "80"}, {"llm.token_count.total", 'i', "580"},
      {"llm.token_count.prompt_details.cache_read", 'i', "100"}, {"llm.token_count.completion_details.reasoning", 'i', "30"}},
     1, LG_LLM_CONV_OPENINFERENCE, "gpt-4.1", "openai", 500, 80, 580, 100, -1, 30, NULL, false},
    {"openinference chain is not an LLM call", "chain",
     {{"openinference.span.kind", 's', "CHAIN"}, {"llm.model_name", 's', "gpt-4.1"}},
     0, LG_LLM_CONV_NONE, "gpt-4.1", NULL, -1, -1, -1, -1, -1, -1, NULL, false},
    {"openlit, already priced", "chat gpt-4o",
     {{"gen_ai.system", 's', "openai"}, {"gen_ai.request.model", 's', "gpt-4o"}, {"gen_ai.usage.input_tokens", 'i', "10"},
      {"gen_ai.usage.output_tokens", 'i', "5"}, {"gen_ai.usage.cost", 'd', "0.0001"}},
     1, LG_LLM_CONV_OPENLIT, "gpt-4o", "openai", 10, 5, 15, -1, -1, -1, NULL, false},
    {"total and output only: input derived", "chat",
     {{"gen_ai.operation.name", 's', "chat"}, {"gen_ai.request.model", 's', "m"}, {"gen_ai.usage.output_tokens", 'i', "5"},
      {"gen_ai.usage.total_tokens", 'i', "25"}},
     1, LG_LLM_CONV_GENAI, "m", NULL, 20, 5, 25, -1, -1, -1, NULL, false},
    {"gemini style: reasoning reported outside output", "generate_content",
     {{"gen_ai.operation.name", 's', "generate_content"}, {"gen_ai.provider.name", 's', "gcp.gemini"},
      {"gen_ai.request.model", 's', "gemini-2.5-pro"}, {"gen_ai.usage.input_tokens", 'i', "10"},
      {"gen_ai.usage.output_tokens", 'i', "5"}, {"gen_ai.usage.reasoning.output_tokens", 'i', "40"}},
     1, LG_LLM_CONV_GENAI, "gemini-2.5-pro", "gcp.gemini", 10, 45, 55, -1, -1, 40, NULL, false},
    {"tool execution is not a model call", "execute_tool x",
     {{"gen_ai.operation.name", 's', "execute_tool"}, {"gen_ai.request.model", 's', "gpt-4o"}},
     0, LG_LLM_CONV_GENAI, "gpt-4o", NULL, -1, -1, -1, -1, -1, -1, NULL, false},
    {"plain http span", "GET /",
     {{"http.method", 's', "GET"}, {"llm", 's', "x"}},
     0, LG_LLM_CONV_NONE, NULL, NULL, -1, -1, -1, -1, -1, -1, NULL, false},
};

static size_t nattrs(const struct row *r)
{
    size_t n = 0;
    while (n < MAXA && r->attrs[n].key)
        n++;
    return n;
}

static void test_conventions(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        struct lg_arena *a = lg_arena_create(0);
        lg_span *s = tspan(a, r->name, r->attrs, nattrs(r));
        struct lg_llm_call c;
        int got = lg_llm_read(NULL, NULL, s, &c);
        print_message("row %zu: %s\n", i, r->what);
        assert_int_equal(got, r->is_llm);
        assert_int_equal(c.convention, r->conv);
        if (r->model)
            assert_string_equal(c.model, r->model);
        else
            assert_null(c.model);
        if (r->provider)
            assert_string_equal(c.provider, r->provider);
        assert_int_equal(c.input_tokens, r->in);
        assert_int_equal(c.output_tokens, r->out);
        assert_int_equal(c.total_tokens, r->total);
        assert_int_equal(c.cache_read_tokens, r->cr);
        assert_int_equal(c.cache_write_tokens, r->cw);
        assert_int_equal(c.reasoning_tokens, r->rs);
        if (r->finish)
            assert_string_equal(c.finish_reason, r->finish);
        assert_int_equal(c.failed, r->failed);
        lg_arena_destroy(a);
    }
}

static void test_anthropic_flag_trusts_input(void **state)
{
    (void)state;
    struct lg_arena *a = lg_arena_create(0);
    struct tattr at[] = {{"gen_ai.provider.name", 's', "anthropic"}, {"gen_ai.request.model", 's', "claude-3-haiku"},
                         {"gen_ai.usage.input_tokens", 'i', "4000"}, {"gen_ai.usage.output_tokens", 'i', "1"},
                         {"gen_ai.usage.cache_read.input_tokens", 'i', "3000"}};
    lg_span *s = tspan(a, "chat", at, 5);
    struct lg_llm_call c;
    assert_int_equal(lg_llm_read_ex(NULL, NULL, s, LG_LLM_ANTHROPIC_INPUT_INCLUDES_CACHE, &c), 1);
    assert_int_equal(c.input_tokens, 4000);
    assert_false(c.input_cache_added);
    assert_int_equal(lg_llm_read(NULL, NULL, s, &c), 1);
    assert_int_equal(c.input_tokens, 7000); /* native accounting: cache added exactly once */
    assert_true(c.input_cache_added);
    lg_arena_destroy(a);
}

static void test_status_error_marks_failed(void **state)
{
    (void)state;
    struct lg_arena *a = lg_arena_create(0);
    struct tattr at[] = {{"llm.model", 's', "gpt-4o"}};
    lg_span *s = tspan(a, "llm_completion", at, 1);
    lg_status st;
    opentelemetry__proto__trace__v1__status__init(&st);
    st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    s->status = &st;
    struct lg_llm_call c;
    assert_int_equal(lg_llm_read(NULL, NULL, s, &c), 1);
    assert_true(c.failed);
    lg_arena_destroy(a);
}

static void test_attrs_set_replaces_without_touching_original(void **state)
{
    (void)state;
    struct lg_arena *a = lg_arena_create(0);
    struct tattr at[] = {{"a", 'i', "1"}, {"b", 's', "x"}};
    lg_span *s = tspan(a, "n", at, 2);
    lg_kv **old = s->attributes;
    lg_any_value *old_b = old[1]->value;
    struct lg_attr_set set[] = {{.key = "b", .kind = LG_ATTR_DOUBLE, .d = 2.5},
                                {.key = "c", .kind = LG_ATTR_BOOL, .b = true},
                                {.key = "c", .kind = LG_ATTR_STRING, .s = "last"}};
    assert_int_equal(lg_attrs_set(a, &s->attributes, &s->n_attributes, set, 3), LG_OK);
    assert_int_equal(s->n_attributes, 3);
    double d;
    assert_true(lg_any_double(lg_attr_find(s->attributes, s->n_attributes, "b"), &d));
    assert_true(d == 2.5);
    assert_string_equal(lg_any_str(lg_attr_find(s->attributes, s->n_attributes, "c")), "last");
    assert_ptr_equal(old[1]->value, old_b); /* original KeyValue untouched */
    assert_string_equal(lg_any_str(old_b), "x");
    lg_arena_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conventions),
        cmocka_unit_test(test_anthropic_flag_trusts_input),
        cmocka_unit_test(test_status_error_marks_failed),
        cmocka_unit_test(test_attrs_set_replaces_without_touching_original),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
