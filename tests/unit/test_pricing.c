/* tests/unit/test_pricing.c — price tables: normalisation, matching, each token kind at its
 * own rate, OpenAI vs Anthropic accounting, dated/prefixed/Azure/fine-tune names,
 * effective_from by span time, long-context tier, discounts, LiteLLM JSON, reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "llm_test_util.h"
#include "processors/pricing.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) <= 1e-12 * (fabs(b) > 1 ? fabs(b) : 1))
#include <math.h>

static struct lg_llm_call call(const char *model, const char *provider, int64_t in, int64_t out, int64_t cr,
                               int64_t cw, int64_t rs)
{
    struct lg_llm_call c;
    memset(&c, 0, sizeof c);
    c.is_llm = true;
    c.model = model;
    c.provider = provider;
    c.input_tokens = in;
    c.output_tokens = out;
    c.cache_read_tokens = cr;
    c.cache_write_tokens = cw;
    c.reasoning_tokens = rs;
    c.start_time_unix_nano = 1767225600ULL * 1000000000ULL; /* 2026-01-01T00:00:00Z */
    return c;
}

static struct lg_pricer *default_pricer(void)
{
    struct lg_pricing_opts o = {0};
    static const char *from[] = {"my-gpt4o-prod"}, *to[] = {"gpt-4o-2024-08-06"};
    o.deploy_from = from;
    o.deploy_to = to;
    o.ndeployments = 1;
    struct lg_pricer *p = NULL;
    struct lg_err err;
    int rc = lg_pricer_create(&o, &p, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, LG_OK);
    return p;
}

static void test_default_table_loads(void **state)
{
    (void)state;
    struct lg_price_table *t = NULL;
    struct lg_err err;
    assert_int_equal(lg_price_table_load_default(&t, &err), LG_OK);
    assert_true(lg_price_table_size(t) > 300);
    lg_price_table_unref(t);
}

static void test_name_variants(void **state)
{
    (void)state;
    char buf[4096];
    const char *v[12];
    int ft;
    size_t n = lg_pricing_name_variants("OpenAI/GPT-4o-2024-08-06", buf, sizeof buf, v, 12, &ft);
    assert_string_equal(v[0], "openai/gpt-4o-2024-08-06");
    assert_string_equal(v[1], "gpt-4o-2024-08-06");
    assert_string_equal(v[n - 1], "gpt-4o");
    assert_int_equal(ft, -1);
    n = lg_pricing_name_variants("us.anthropic.claude-3-5-sonnet-20240620-v1:0", buf, sizeof buf, v, 12, &ft);
    assert_string_equal(v[n - 1], "claude-3-5-sonnet");
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        seen |= strcmp(v[i], "claude-3-5-sonnet-20240620") == 0;
    assert_true(seen);
    n = lg_pricing_name_variants("gemini-1.0-pro@001", buf, sizeof buf, v, 12, &ft);
    assert_string_equal(v[n - 1], "gemini-1.0-pro");
    n = lg_pricing_name_variants("ft:gpt-4.1-mini-2025-04-14:acme::A1b2", buf, sizeof buf, v, 12, &ft);
    assert_true(ft > 0);
    assert_string_equal(v[ft], "gpt-4.1-mini-2025-04-14");
    assert_string_equal(v[n - 1], "gpt-4.1-mini");
}

static void test_openai_cached_and_reasoning_at_own_rates(void **state)
{
    (void)state;
    struct lg_pricer *p = default_pricer();
    /* gpt-4o: input 2.5, cache_read 1.25, output 10 per 1M; reasoning at the output rate */
    struct lg_llm_call c = call("gpt-4o", "openai", 1000, 200, 600, -1, 50);
    struct lg_price_result r;
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.prompt_usd, (400 * 2.5 + 600 * 1.25) / 1e6);
    NEAR(r.completion_usd, 200 * 10 / 1e6);
    NEAR(r.total_usd, r.prompt_usd + r.completion_usd);
    lg_pricer_destroy(p);
}

static void test_anthropic_native_accounting(void **state)
{
    (void)state;
    struct lg_pricer *p = default_pricer();
    struct lg_arena *a = lg_arena_create(0);
    /* Anthropic reports input WITHOUT the cache; priced once each: 100 x 3 + 3000 x 0.3 + 500 x 3.75 */
    struct tattr at[] = {{"gen_ai.provider.name", 's', "anthropic"}, {"gen_ai.request.model", 's', "claude-sonnet-4-5-20250929"},
                         {"gen_ai.usage.input_tokens", 'i', "100"}, {"gen_ai.usage.output_tokens", 'i', "20"},
                         {"gen_ai.usage.cache_read.input_tokens", 'i', "3000"},
                         {"gen_ai.usage.cache_creation.input_tokens", 'i', "500"}};
    lg_span *s = tspan(a, "chat", at, 6);
    s->start_time_unix_nano = 1767225600ULL * 1000000000ULL;
    struct lg_llm_call c;
    assert_int_equal(lg_llm_read(NULL, NULL, s, &c), 1);
    struct lg_price_result r;
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.prompt_usd, (100 * 3 + 3000 * 0.3 + 500 * 3.75) / 1e6);
    NEAR(r.completion_usd, 20 * 15 / 1e6);
    /* the same call as OpenAI-style accounting (cache inside input) costs the same */
    struct lg_llm_call c2 = call("claude-sonnet-4-5-20250929", "anthropic", 3600, 20, 3000, 500, -1);
    struct lg_price_result r2;
    assert_int_equal(lg_pricer_price(p, &c2, &r2), 1);
    NEAR(r2.total_usd, r.total_usd);
    lg_arena_destroy(a);
    lg_pricer_destroy(p);
}

static void test_names_resolve(void **state)
{
    (void)state;
    struct lg_pricer *p = default_pricer();
    struct {
        const char *model, *provider, *entry;
        bool ft;
    } cases[] = {
        {"gpt-4o-2024-08-06", "openai", "gpt-4o", false},
        {"openai/gpt-4.1", NULL, "gpt-4.1", false},
        {"GPT-4.1-MINI", NULL, "gpt-4.1-mini", false},
        {"my-gpt4o-prod", "azure.ai.openai", "gpt-4o", false},             /* Azure deployment */
        {"gpt-4o", "az.ai.openai", "gpt-4o", false},                        /* azure falls back to openai */
        {"claude-3-5-sonnet-20241022", "anthropic", "claude-3-5-sonnet", false},
        {"claude-3-5-sonnet-v2@20241022", "gcp.vertex_ai", "claude-3-5-sonnet", false},
        {"us.anthropic.claude-3-5-sonnet-20240620-v1:0", "aws.bedrock", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0", false},
        {"models/gemini-2.5-flash", "gcp.gemini", "gemini-2.5-flash", false},
        {"ft:gpt-4.1-mini-2025-04-14:acme::A1b2", "openai", "gpt-4.1-mini", true},
        {"ft:gpt-4o-2024-08-06:acme::x", "openai", "ft:gpt-4o", false},     /* has its own price */
        {"mistral-large-latest", "mistral_ai", "mistral-large", false},
        {"grok-3", "x_ai", "grok-3", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct lg_llm_call c = call(cases[i].model, cases[i].provider, 10, 10, -1, -1, -1);
        struct lg_price_result r;
        print_message("%s\n", cases[i].model);
        assert_int_equal(lg_pricer_price(p, &c, &r), 1);
        assert_string_equal(r.entry_id, cases[i].entry);
        assert_int_equal(r.fine_tune_base, cases[i].ft);
        assert_true(r.total_usd > 0);
    }
    struct lg_llm_call u = call("totally-unknown-model", "openai", 10, 10, -1, -1, -1);
    struct lg_price_result r;
    assert_int_equal(lg_pricer_price(p, &u, &r), 0);
    struct lg_llm_call none = call("gpt-4o", "openai", -1, -1, -1, -1, -1);
    assert_int_equal(lg_pricer_price(p, &none, &r), LG_EINVAL);
    lg_pricer_destroy(p);
}

static const char *custom_table =
    "providers: {azure: {fallback: [acme]}}\n"
    "models:\n"
    "  - id: m1\n"
    "    provider: acme\n"
    "    match: {exact: [m1], regex: ['^m1-v\\d+$']}\n"
    "    prices:\n"
    "      - {input: 1, output: 2}\n"
    "      - {effective_from: 2026-01-01, input: 10, output: 20, long_context: {above: 1000, input: 100}}\n"
    "  - id: night\n"
    "    provider: acme\n"
    "    prices:\n"
    "      - {input: 1, output: 1}\n"
    "      - {utc_hours: '08:00-20:00', input: 2, output: 2}\n"
    "discounts: {percent: 10, providers: {azure: 50}}\n";

static struct lg_pricer *file_pricer(const char *path, enum lg_price_format fmt, int64_t reload_ns)
{
    struct lg_pricing_opts o = {.file = path, .format = fmt, .reload_check_ns = reload_ns};
    struct lg_pricer *p = NULL;
    struct lg_err err;
    int rc = lg_pricer_create(&o, &p, &err);
    if (rc)
        print_error("%s\n", err.msg);
    assert_int_equal(rc, LG_OK);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_effective_from_tier_discount_hours(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_prices_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, custom_table);
    struct lg_pricer *p = file_pricer(path, LG_PRICE_FORMAT_LLMGATE, 0);
    struct lg_price_result r;
    struct lg_llm_call c = call("m1", "acme", 100, 100, -1, -1, -1);
    c.start_time_unix_nano = 1735689600ULL * 1000000000ULL; /* 2025-01-01: old price */
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.total_usd, (100 * 1 + 100 * 2) / 1e6 * 0.9);
    c.start_time_unix_nano = 1767225600ULL * 1000000000ULL; /* 2026-01-01: new price */
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.total_usd, (100 * 10 + 100 * 20) / 1e6 * 0.9);
    assert_false(r.long_context);
    c.input_tokens = 2000; /* above the tier: input 100, output keeps 20 */
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    assert_true(r.long_context);
    NEAR(r.total_usd, (2000 * 100.0 + 100 * 20) / 1e6 * 0.9);
    /* regex matcher; azure discount replaces the global one */
    struct lg_llm_call z = call("M1-v2", "azure", 100, 0, -1, -1, -1);
    assert_int_equal(lg_pricer_price(p, &z, &r), 1);
    NEAR(r.total_usd, 100 * 10 / 1e6 * 0.5);
    /* utc_hours window */
    struct lg_llm_call n = call("night", "acme", 1000000, 0, -1, -1, -1);
    n.start_time_unix_nano = (1767225600ULL + 3 * 3600) * 1000000000ULL; /* 03:00 UTC */
    assert_int_equal(lg_pricer_price(p, &n, &r), 1);
    NEAR(r.total_usd, 1.0 * 0.9);
    n.start_time_unix_nano = (1767225600ULL + 9 * 3600) * 1000000000ULL; /* 09:00 UTC */
    assert_int_equal(lg_pricer_price(p, &n, &r), 1);
    NEAR(r.total_usd, 2.0 * 0.9);
    lg_pricer_destroy(p);
    unlink(path);
}

static void test_bad_table_names_the_path(void **state)
{
    (void)state;
    struct lg_price_table *t = NULL;
    struct lg_err err;
    int rc = lg_price_table_load(NULL, "models:\n  - id: x\n    prices: {input: -1}\n", "t.yaml",
                                 LG_PRICE_FORMAT_LLMGATE, &t, &err);
    assert_int_equal(rc, LG_EINVAL);
    assert_non_null(strstr(err.msg, "t.yaml:3"));
    assert_non_null(strstr(err.msg, "models[0].prices.input"));
    rc = lg_price_table_load(NULL, "models:\n  - id: x\n    match: {regex: ['(']}\n    prices: {input: 1}\n", "t.yaml",
                             LG_PRICE_FORMAT_LLMGATE, &t, &err);
    assert_int_equal(rc, LG_EINVAL);
    assert_non_null(strstr(err.msg, "invalid regex"));
}

static void test_litellm_json(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_litellm_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path,
               "{\"sample_spec\": {\"input_cost_per_token\": 0},"
               " \"gpt-4o\": {\"input_cost_per_token\": 2.5e-06, \"output_cost_per_token\": 1e-05,"
               "   \"cache_read_input_token_cost\": 1.25e-06, \"litellm_provider\": \"openai\"},"
               " \"azure/my-model\": {\"input_cost_per_token\": 1e-06, \"output_cost_per_token\": 2e-06,"
               "   \"input_cost_per_token_above_128k_tokens\": 2e-06, \"litellm_provider\": \"azure\"},"
               " \"dall-e-3\": {\"output_cost_per_image\": 0.04}}");
    struct lg_pricer *p = file_pricer(path, LG_PRICE_FORMAT_LITELLM, 0);
    struct lg_price_result r;
    struct lg_llm_call c = call("gpt-4o-2024-08-06", "openai", 1000, 100, 400, -1, -1);
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.total_usd, (600 * 2.5 + 400 * 1.25 + 100 * 10) / 1e6);
    struct lg_llm_call z = call("my-model", "azure.ai.openai", 200000, 0, -1, -1, -1);
    assert_int_equal(lg_pricer_price(p, &z, &r), 1);
    assert_true(r.long_context);
    NEAR(r.total_usd, 200000 * 2 / 1e6);
    lg_pricer_destroy(p);
    unlink(path);
}

static void test_reload_on_change_keeps_old_table_on_error(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_reload_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, "models: [{id: m, prices: {input: 1, output: 1}}]\n");
    struct lg_pricer *p = file_pricer(path, LG_PRICE_FORMAT_LLMGATE, 1);
    struct lg_price_result r;
    struct lg_llm_call c = call("m", NULL, 1000000, 0, -1, -1, -1);
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.total_usd, 1.0);
    write_file(path, "models: [{id: m, prices: {input: 3.5, output: 1}}]\n");
    assert_int_equal(lg_pricer_maybe_reload(p, lg_now_mono_ns() + 10), 1);
    assert_int_equal(lg_pricer_generation(p), 1);
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.total_usd, 3.5);
    write_file(path, "models: [{id: m, prices: {input: oops}}]\n"); /* broken: old table stays */
    assert_int_equal(lg_pricer_maybe_reload(p, lg_now_mono_ns() + 20), 0);
    assert_int_equal(lg_pricer_price(p, &c, &r), 1);
    NEAR(r.total_usd, 3.5);
    lg_pricer_destroy(p);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_table_loads),
        cmocka_unit_test(test_name_variants),
        cmocka_unit_test(test_openai_cached_and_reasoning_at_own_rates),
        cmocka_unit_test(test_anthropic_native_accounting),
        cmocka_unit_test(test_names_resolve),
        cmocka_unit_test(test_effective_from_tier_discount_hours),
        cmocka_unit_test(test_bad_table_names_the_path),
        cmocka_unit_test(test_litellm_json),
        cmocka_unit_test(test_reload_on_change_keeps_old_table_on_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
