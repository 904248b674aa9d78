/* tests/unit/test_tail_sampling.c — the tail_sampling policies and processor.
 *
 * 1. A policy table: every policy type (Collector's and our llm_* ones), invert_match,
 *    and/not/drop combinations, composite rate allocation and the rate limiters, each case
 *    a sequence of traces folded span by span into summaries and decided at a given time.
 * 2. The probabilistic hash and threshold as the Collector computes them, the OTel
 *    tracestate threshold, and config errors naming the YAML path.
 * 3. The processor on batches: error traces kept whole across batches, late spans follow
 *    the decision, limits decide early (counted) instead of dropping, refusals are kept and
 *    retried, shutdown decides or drops as configured, probabilistic-only keeps carry
 *    ot=th, and the decision thread decides at decision_wait.
 * 4. ottl_condition: span and spanevent conditions, inside and/not/drop, error_mode
 *    propagate / ignore / silent, config errors naming path and column, and in the
 *    processor the scope path and the evaluation-error count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "llm_test_util.h"
#include "processors/tail_sampling.h"
#include "sink.h"

extern const struct lg_component_type lg_tail_sampling_processor;

/* ---------------------------------------------------------------- policy table ---- */

struct sp {
    const char *svc; /* resource service.name (NULL: none) */
    int status;      /* 0 unset, 1 ok, 2 error */
    int dur_ms;
    const char *tstate; /* span trace_state */
    struct tattr a[6];
    size_t na;
    const char *finish2; /* second element of gen_ai.response.finish_reasons */
    const char *event;   /* name of one span event (NULL: none), with attribute k = "v" */
};

struct tcase_trace {
    struct sp spans[4];
    size_t nspans;
    int64_t now_ms;
    bool expect;
};

struct tcase {
    const char *name;
    const char *yaml; /* the policies list */
    bool first_match;
    struct tcase_trace t[5];
    size_t nt;
};

#define LLM_ATTRS(in, out)                                                                         \
    {"gen_ai.operation.name", 's', "chat"}, {"gen_ai.provider.name", 's', "openai"},               \
        {"gen_ai.request.model", 's', "gpt-4o"}, {"gen_ai.usage.input_tokens", 'i', in},           \
    {                                                                                              \
        "gen_ai.usage.output_tokens", 'i', out                                                     \
    }

static const struct tcase cases[] = {
    {"always_sample", "[{name: a, type: always_sample}]", false, {{{{0}}, 1, 0, true}}, 1},
    {"latency",
     "[{name: l, type: latency, latency: {threshold_ms: 100}}]",
     false,
     {{{{.dur_ms = 50}}, 1, 0, false}, {{{.dur_ms = 150}}, 1, 0, true}},
     2},
    {"latency upper",
     "[{name: l, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 120}}]",
     false,
     {{{{.dur_ms = 150}}, 1, 0, false}, {{{.dur_ms = 110}}, 1, 0, true}},
     2},
    {"numeric_attribute",
     "[{name: n, type: numeric_attribute, numeric_attribute: {key: http.status_code, min_value: "
     "400, max_value: 499}}]",
     false,
     {{{{.a = {{"http.status_code", 'i', "404"}}, .na = 1}}, 1, 0, true},
      {{{.a = {{"http.status_code", 'i', "200"}}, .na = 1}}, 1, 0, false},
      {{{.a = {{"other", 'i', "404"}}, .na = 1}}, 1, 0, false}},
     3},
    {"numeric_attribute invert",
     "[{name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 400, "
     "invert_match: true}}]",
     false,
     {{{{.a = {{"code", 'i', "404"}}, .na = 1}}, 1, 0, false},
      {{{.a = {{"code", 'i', "200"}}, .na = 1}}, 1, 0, true}},
     2},
    {"probabilistic 100",
     "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 100}}]",
     false,
     {{{{0}}, 1, 0, true}},
     1},
    {"probabilistic 0",
     "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 0}}]",
     false,
     {{{{0}}, 1, 0, false}},
     1},
    {"status_code",
     "[{name: s, type: status_code, status_code: {status_codes: [ERROR]}}]",
     false,
     {{{{.status = 1}, {.status = 2}}, 2, 0, true}, {{{.status = 1}, {.status = 0}}, 2, 0, false}},
     2},
    {"status_code OK UNSET",
     "[{name: s, type: status_code, status_code: {status_codes: [OK, UNSET]}}]",
     false,
     {{{{.status = 2}}, 1, 0, false}, {{{.status = 0}}, 1, 0, true}},
     2},
    {"string_attribute exact",
     "[{name: s, type: string_attribute, string_attribute: {key: service.name, values: [checkout, "
     "cart]}}]",
     false,
     {{{{.svc = "cart"}}, 1, 0, true},
      {{{.a = {{"service.name", 's', "checkout"}}, .na = 1}}, 1, 0, true},
      {{{.svc = "carts"}}, 1, 0, false}},
     3},
    {"string_attribute regex",
     "[{name: s, type: string_attribute, string_attribute: {key: gen_ai.request.model, values: "
     "['^gpt-4.*mini$'], enabled_regex_matching: true}}]",
     false,
     {{{{.a = {{"gen_ai.request.model", 's', "gpt-4o-mini"}}, .na = 1}}, 1, 0, true},
      {{{.a = {{"gen_ai.request.model", 's', "gpt-4o"}}, .na = 1}}, 1, 0, false}},
     2},
    {"string_attribute invert wins over always_sample",
     "[{name: a, type: always_sample}, {name: s, type: string_attribute, string_attribute: {key: "
     "http.route, values: [/health], invert_match: true}}]",
     false,
     {{{{.a = {{"http.route", 's', "/health"}}, .na = 1}}, 1, 0, false},
      {{{.a = {{"http.route", 's', "/chat"}}, .na = 1}}, 1, 0, true},
      {{{0}}, 1, 0, true}},
     3},
    {"boolean_attribute",
     "[{name: b, type: boolean_attribute, boolean_attribute: {key: app.vip, value: true}}]",
     false,
     {{{{.a = {{"app.vip", 'b', "true"}}, .na = 1}}, 1, 0, true},
      {{{.a = {{"app.vip", 'b', "false"}}, .na = 1}}, 1, 0, false}},
     2},
    {"rate_limiting",
     "[{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 3}}]",
     false,
     {{{{0}, {0}}, 2, 1000, true},
      {{{0}, {0}}, 2, 1100, false},
      {{{0}}, 1, 1200, true},
      {{{0}, {0}}, 2, 2000, true}},
     4},
    {"bytes_limiting",
     "[{name: b, type: bytes_limiting, bytes_limiting: {bytes_per_second: 100, burst_capacity: "
     "100}}]",
     false,
     {{{{.a = {{"pad", 's', "0123456789012345678901234567890123456789"}}, .na = 1}}, 1, 1000, true},
      {{{.a = {{"pad", 's', "0123456789012345678901234567890123456789"}}, .na = 1}},
       1,
       1000,
       false},
      {{{.a = {{"pad", 's', "0123456789012345678901234567890123456789"}}, .na = 1}},
       1,
       3000,
       true}},
     3},
    {"span_count",
     "[{name: c, type: span_count, span_count: {min_spans: 2, max_spans: 3}}]",
     false,
     {{{{0}}, 1, 0, false}, {{{0}, {0}}, 2, 0, true}, {{{0}, {0}, {0}, {0}}, 4, 0, false}},
     3},
    {"trace_state",
     "[{name: t, type: trace_state, trace_state: {key: vendor, values: [x, y]}}]",
     false,
     {{{{.tstate = "a=b,vendor=y"}}, 1, 0, true},
      {{{.tstate = "vendor=z"}}, 1, 0, false},
      {{{0}}, 1, 0, false}},
     3},
    {"and",
     "[{name: a, type: and, and: {and_sub_policy: [{name: e, type: status_code, status_code: "
     "{status_codes: [ERROR]}}, {name: s, type: string_attribute, string_attribute: {key: "
     "service.name, values: [checkout]}}]}}]",
     false,
     {{{{.svc = "checkout", .status = 2}}, 1, 0, true},
      {{{.svc = "checkout"}}, 1, 0, false},
      {{{.svc = "cart", .status = 2}}, 1, 0, false}},
     3},
    {"not",
     "[{name: n, type: not, not: {not_sub_policy: {name: e, type: status_code, status_code: "
     "{status_codes: [ERROR]}}}}]",
     false,
     {{{{.status = 2}}, 1, 0, false}, {{{.status = 1}}, 1, 0, true}},
     2},
    {"drop beats always_sample",
     "[{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: h, "
     "type: string_attribute, string_attribute: {key: http.route, values: [/health]}}]}}]",
     false,
     {{{{.a = {{"http.route", 's', "/health"}}, .na = 1}}, 1, 0, false},
      {{{.a = {{"http.route", 's', "/chat"}}, .na = 1}}, 1, 0, true}},
     2},
    {"drop with and: all must match",
     "[{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: h, "
     "type: string_attribute, string_attribute: {key: http.route, values: [/health]}}, {name: ok, "
     "type: status_code, status_code: {status_codes: [OK, UNSET]}}]}}]",
     false,
     {{{{.a = {{"http.route", 's', "/health"}}, .na = 1, .status = 2}}, 1, 0, true},
      {{{.a = {{"http.route", 's', "/health"}}, .na = 1}}, 1, 0, false}},
     2},
    {"sample_on_first_match skips a later drop",
     "[{name: a, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: x, "
     "type: always_sample}]}}]",
     true,
     {{{{0}}, 1, 0, true}},
     1},
    {"composite rate allocation",
     "[{name: c, type: composite, composite: {max_total_spans_per_second: 10, policy_order: "
     "[errors, rest], "
     "composite_sub_policy: [{name: rest, type: always_sample}, {name: errors, type: status_code, "
     "status_code: {status_codes: [ERROR]}}], "
     "rate_allocation: [{policy: errors, percent: 60}, {policy: rest, percent: 40}]}}]",
     false,
     {{{{0}, {0}, {0}}, 3, 5000, true},                /* rest: 3 <= 4 */
      {{{0}, {0}}, 2, 5100, false},                    /* rest: 5 > 4 */
      {{{.status = 2}, {0}, {0}, {0}}, 4, 5200, true}, /* errors: 4 <= 6 */
      {{{.status = 2}, {0}, {0}}, 3, 5300, false},     /* errors: 7 > 6 */
      {{{.status = 2}, {0}, {0}}, 3, 6000, true}},
     5}, /* next second */
    {"composite without allocation gives that policy nothing",
     "[{name: c, type: composite, composite: {max_total_spans_per_second: 10, policy_order: [a], "
     "composite_sub_policy: [{name: a, type: always_sample}]}}]",
     false,
     {{{{0}}, 1, 0, false}},
     1},
    {"llm_cost",
     "[{name: c, type: llm_cost, llm_cost: {threshold_usd: 0.05}}]",
     false,
     {{{{.a = {LLM_ATTRS("10", "10"), {"gen_ai.usage.cost", 'd', "0.03"}}, .na = 6},
        {.a = {LLM_ATTRS("10", "10"), {"gen_ai.usage.cost", 'd', "0.03"}}, .na = 6}},
       2,
       0,
       true},
      {{{.a = {LLM_ATTRS("10", "10"), {"gen_ai.usage.cost", 'd', "0.03"}}, .na = 6}}, 1, 0, false},
      {{{.a = {{"gen_ai.usage.cost", 'd', "0.5"}}, .na = 1}}, 1, 0, true}},
     3},
    {"llm_tokens",
     "[{name: t, type: llm_tokens, llm_tokens: {threshold: 8000}}]",
     false,
     {{{{.a = {LLM_ATTRS("4000", "1000")}, .na = 5}, {.a = {LLM_ATTRS("2000", "1000")}, .na = 5}},
       2,
       0,
       true},
      {{{.a = {LLM_ATTRS("4000", "1000")}, .na = 5}}, 1, 0, false}},
     2},
    {"llm_finish_reason",
     "[{name: f, type: llm_finish_reason, llm_finish_reason: {values: [length, content_filter]}}]",
     false,
     {{{{.a = {LLM_ATTRS("1", "1")}, .na = 5, .finish2 = "length"}}, 1, 0, true},
      {{{.a = {LLM_ATTRS("1", "1"), {"llm.finish_reason", 's', "content_filter"}}, .na = 6}},
       1,
       0,
       true},
      {{{.a = {LLM_ATTRS("1", "1")}, .na = 5, .finish2 = "tool_calls"}}, 1, 0, false}},
     3},
    /* ottl_condition: any span condition on any span, or any spanevent condition on any
     * span event; conditions see the span's resource */
    {"ottl_condition span",
     "[{name: o, type: ottl_condition, ottl_condition: {span: ['attributes[\"http.status_code\"] "
     ">= 500', 'IsMatch(resource.attributes[\"service.name\"], \"^pay\")']}}]",
     false,
     {{{{.a = {{"http.status_code", 'i', "503"}}, .na = 1}}, 1, 0, true},
      {{{.svc = "payments"}}, 1, 0, true},
      {{{.svc = "cart", .a = {{"http.status_code", 'i', "200"}}, .na = 1}}, 1, 0, false},
      {{{.svc = "cart"}, {.a = {{"http.status_code", 'i', "500"}}, .na = 1}}, 2, 0, true},
      {{{.svc = "cart", .a = {{"http.status_code", 's', "503"}}, .na = 1}}, 1, 0, false}},
     5},
    {"ottl_condition spanevent",
     "[{name: o, type: ottl_condition, ottl_condition: {spanevent: ['name == \"exception\"', "
     "'attributes[\"k\"] == \"w\"']}}]",
     false,
     {{{{.event = "log"}, {.event = "exception"}}, 2, 0, true},
      {{{.event = "log"}}, 1, 0, false},
      {{{.a = {{"name", 's', "exception"}}, .na = 1}}, 1, 0, false}},
     3},
    {"ottl_condition span and spanevent",
     "[{name: o, type: ottl_condition, ottl_condition: {span: ['status.code == "
     "STATUS_CODE_ERROR'], "
     "spanevent: ['attributes[\"k\"] == \"v\" and name == \"retry\"']}}]",
     false,
     {{{{.status = 2}}, 1, 0, true},
      {{{.event = "retry"}}, 1, 0, true},
      {{{.status = 1, .event = "done"}}, 1, 0, false}},
     3},
    {"ottl_condition inside and",
     "[{name: a, type: and, and: {and_sub_policy: [{name: o, type: ottl_condition, "
     "ottl_condition: {span: ['attributes[\"gen_ai.request.model\"] == \"gpt-4o\"']}}, {name: "
     "s, type: status_code, status_code: {status_codes: [ERROR]}}]}}]",
     false,
     {{{{.a = {{"gen_ai.request.model", 's', "gpt-4o"}}, .na = 1}, {.status = 2}}, 2, 0, true},
      {{{.a = {{"gen_ai.request.model", 's', "gpt-4o"}}, .na = 1}}, 1, 0, false},
      {{{.a = {{"gen_ai.request.model", 's', "o1"}}, .na = 1, .status = 2}}, 1, 0, false}},
     3},
    {"ottl_condition inside not",
     "[{name: n, type: not, not: {not_sub_policy: {name: o, type: ottl_condition, "
     "ottl_condition: {spanevent: ['name == \"cache_hit\"']}}}}]",
     false,
     {{{{.event = "cache_hit"}}, 1, 0, false}, {{{.event = "cache_miss"}}, 1, 0, true}},
     2},
    {"ottl_condition inside drop",
     "[{name: all, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: [{name: o, "
     "type: ottl_condition, ottl_condition: {span: ['attributes[\"health\"] == true']}}]}}]",
     false,
     {{{{.a = {{"health", 'b', "true"}}, .na = 1}}, 1, 0, false}, {{{0}}, 1, 0, true}},
     2},
    /* error_mode: Len of an int is an evaluation error. propagate: the first error ends the
     * policy as an error (no sample) unless an earlier span had matched; ignore / silent:
     * the condition is false and the next condition or span may still match. */
    {"ottl_condition propagate",
     "[{name: o, type: ottl_condition, ottl_condition: {span: ['Len(attributes[\"n\"]) > 3', "
     "'attributes[\"hit\"] == true']}}]",
     false,
     {{{{.a = {{"n", 'i', "5"}, {"hit", 'b', "true"}}, .na = 2}}, 1, 0, false},
      {{{.a = {{"n", 'i', "5"}}, .na = 1}, {.a = {{"hit", 'b', "true"}}, .na = 1}}, 2, 0, false},
      {{{.a = {{"n", 's', "ab"}, {"hit", 'b', "true"}}, .na = 2},
        {.a = {{"n", 'i', "5"}}, .na = 1}},
       2,
       0,
       true},
      {{{.a = {{"n", 's', "long"}}, .na = 1}}, 1, 0, true}},
     4},
    {"ottl_condition propagate inside not: an error, not inverted",
     "[{name: n, type: not, not: {not_sub_policy: {name: o, type: ottl_condition, "
     "ottl_condition: {span: ['Len(attributes[\"n\"]) > 3']}}}}]",
     false,
     {{{{.a = {{"n", 'i', "5"}}, .na = 1}}, 1, 0, false},
      {{{.a = {{"n", 's', "ab"}}, .na = 1}}, 1, 0, true}},
     2},
    {"ottl_condition ignore",
     "[{name: o, type: ottl_condition, ottl_condition: {error_mode: ignore, span: "
     "['Len(attributes[\"n\"]) > 3', 'attributes[\"hit\"] == true']}}]",
     false,
     {{{{.a = {{"n", 'i', "5"}, {"hit", 'b', "true"}}, .na = 2}}, 1, 0, true},
      {{{.a = {{"n", 'i', "5"}}, .na = 1}, {.a = {{"hit", 'b', "true"}}, .na = 1}}, 2, 0, true},
      {{{.a = {{"n", 'i', "5"}}, .na = 1}}, 1, 0, false}},
     3},
    {"ottl_condition silent",
     "[{name: o, type: ottl_condition, ottl_condition: {error_mode: silent, spanevent: "
     "['Len(attributes[\"nope\"]) > 0', 'name == \"x\"']}}]",
     false,
     {{{{.event = "x"}}, 1, 0, true}, {{{.event = "y"}}, 1, 0, false}},
     2},
    {"llm_error",
     "[{name: e, type: llm_error}]",
     false,
     {{{{.a = {LLM_ATTRS("1", "1"), {"error.type", 's', "rate_limited"}}, .na = 6}}, 1, 0, true},
      {{{.a = {LLM_ATTRS("1", "1")}, .na = 5}, {.status = 2}}, 2, 0, false}},
     2},
};

static void set_status(struct lg_arena *a, lg_span *s, int code)
{
    if (code == 0)
        return;
    s->status = lg_arena_alloc(a, sizeof *s->status);
    opentelemetry__proto__trace__v1__status__init(s->status);
    s->status->code = code;
}

static lg_resource *make_resource(struct lg_arena *a, const char *svc)
{
    lg_resource *r = lg_arena_alloc(a, sizeof *r);
    opentelemetry__proto__resource__v1__resource__init(r);
    if (svc) {
        struct tattr at = {"service.name", 's', svc};
        lg_span *tmp = tspan(a, "x", &at, 1);
        r->attributes = tmp->attributes;
        r->n_attributes = 1;
    }
    return r;
}

static lg_span *make_span(struct lg_arena *a, const struct sp *d, size_t i)
{
    lg_span *s = tspan(a, "op", d->a, d->na);
    set_status(a, s, d->status);
    s->start_time_unix_nano = 1767225600000000000ULL + i * 1000000ULL;
    s->end_time_unix_nano = s->start_time_unix_nano + (uint64_t)d->dur_ms * 1000000ULL;
    if (d->tstate)
        s->trace_state = lg_arena_strdup(a, d->tstate);
    if (d->event) {
        struct tattr ea = {"k", 's', "v"};
        lg_span *tmp = tspan(a, d->event, &ea, 1);
        lg_span_event *ev = lg_arena_alloc(a, sizeof *ev);
        opentelemetry__proto__trace__v1__span__event__init(ev);
        ev->name = tmp->name;
        ev->attributes = tmp->attributes;
        ev->n_attributes = 1;
        s->events = lg_arena_alloc(a, sizeof *s->events);
        s->events[0] = ev;
        s->n_events = 1;
    }
    if (d->finish2) {
        /* gen_ai.response.finish_reasons = ["stop", finish2] */
        struct tattr fr = {"gen_ai.response.finish_reasons", 'a', "stop"};
        lg_span *tmp = tspan(a, "x", &fr, 1);
        lg_array_value *arr = tmp->attributes[0]->value->array_value;
        lg_any_value **vals = lg_arena_alloc(a, 2 * sizeof *vals);
        vals[0] = arr->values[0];
        vals[1] = lg_arena_alloc(a, sizeof **vals);
        opentelemetry__proto__common__v1__any_value__init(vals[1]);
        vals[1]->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        vals[1]->string_value = lg_arena_strdup(a, d->finish2);
        arr->values = vals;
        arr->n_values = 2;
        lg_kv **attrs = lg_arena_alloc(a, (s->n_attributes + 1) * sizeof *attrs);
        memcpy(attrs, s->attributes, s->n_attributes * sizeof *attrs);
        attrs[s->n_attributes++] = tmp->attributes[0];
        s->attributes = attrs;
    }
    return s;
}

static int parse_policies(const char *list_yaml, struct lg_conf_doc *doc, struct lg_arena *arena,
                          struct ts_policies *out, struct lg_err *err)
{
    char text[4096];
    snprintf(text, sizeof text, "policies: %s\n", list_yaml);
    struct lg_conf_source src = {.text = text, .name = "policies.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, doc, err);
    if (rc)
        return rc;
    return ts_policies_parse(lg_node_get(doc->root, "policies"), out, arena, err);
}

static void test_policy_table(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < LG_ARRAY_LEN(cases); ci++) {
        const struct tcase *tc = &cases[ci];
        struct lg_conf_doc doc = {0};
        struct lg_arena *arena = lg_arena_create(0);
        struct ts_policies pol;
        struct lg_err err = {{0}};
        int rc = parse_policies(tc->yaml, &doc, arena, &pol, &err);
        if (rc)
            fail_msg("case %s: %s", tc->name, err.msg);
        assert_int_equal(ts_policies_compile(&pol, "tail_sampling", &err), 0);
        for (size_t ti = 0; ti < tc->nt; ti++) {
            const struct tcase_trace *tt = &tc->t[ti];
            struct ts_summary sum;
            ts_summary_init(&sum);
            struct ts_scratch scratch = {0};
            for (size_t si = 0; si < tt->nspans; si++) {
                const struct sp *d = &tt->spans[si];
                lg_resource *res = make_resource(arena, d->svc);
                lg_span *s = make_span(arena, d, si);
                struct lg_llm_call call;
                bool is_llm = lg_llm_read(res, NULL, s, &call);
                ts_span_observe(&pol, res, NULL, s, is_llm ? &call : NULL,
                                protobuf_c_message_get_packed_size(&s->base), &scratch, &sum);
            }
            ts_scratch_free(&scratch);
            uint8_t tid[16] = {(uint8_t)ci, (uint8_t)ti, 7};
            struct ts_result r;
            ts_decide(&pol, &sum, tid, 1000000000000LL + tt->now_ms * 1000000LL, tc->first_match,
                      &r);
            if (r.sampled != tt->expect)
                fail_msg("case \"%s\", trace %zu: expected %s, got %s", tc->name, ti,
                         tt->expect ? "sampled" : "not sampled",
                         r.sampled ? "sampled" : "not sampled");
        }
        ts_policies_release(&pol);
        lg_conf_doc_free(&doc);
        lg_arena_destroy(arena);
    }
}

/* ------------------------------------------------- hash, thresholds, tracestate ---- */

static void test_probabilistic_math(void **state)
{
    (void)state;
    /* FNV-1a 64 of "" then 16 zero bytes, and of the default salt, computed independently */
    uint8_t zero[16] = {0};
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < 16; i++)
        h *= 1099511628211ull; /* xor with 0 is a no-op */
    assert_true(ts_hash_trace_id("", zero) == h);
    /* Go: big.Float(MaxUint64) * 0.5 = 2^63 - 0.5, truncated */
    assert_true(ts_prob_threshold(0.5) == 9223372036854775807ull);
    assert_true(ts_prob_threshold(1.0) == UINT64_MAX);
    assert_true(ts_prob_threshold(0.0) == 0);
    /* 0.1 (the double) * (2^64 - 1), rounded to 64 significant bits, truncated */
    assert_true(ts_prob_threshold(0.1) == 1844674407370955263ull);
    char th[32];
    ts_th_format(0.5, th, sizeof th);
    assert_string_equal(th, "8");
    ts_th_format(0.25, th, sizeof th);
    assert_string_equal(th, "c");
    ts_th_format(0.1, th, sizeof th);
    assert_string_equal(th, "e6666666666666");
    ts_th_format(1.0, th, sizeof th);
    assert_string_equal(th, "0");
    struct lg_arena *a = lg_arena_create(0);
    assert_string_equal(ts_tracestate_merge(a, NULL, "8"), "ot=th:8");
    assert_string_equal(ts_tracestate_merge(a, "vendor=x", "8"), "ot=th:8,vendor=x");
    assert_string_equal(ts_tracestate_merge(a, "a=1,ot=rv:abcdef01234567;th:1,b=2", "c"),
                        "ot=th:c;rv:abcdef01234567,a=1,b=2");
    lg_arena_destroy(a);
}

static void test_probabilistic_rate_and_determinism(void **state)
{
    (void)state;
    struct lg_conf_doc d1 = {0}, d2 = {0};
    struct lg_arena *a1 = lg_arena_create(0), *a2 = lg_arena_create(0);
    struct ts_policies p1, p2;
    struct lg_err err;
    const char *y = "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 10, "
                    "hash_salt: tier}}]";
    assert_int_equal(parse_policies(y, &d1, a1, &p1, &err), 0);
    assert_int_equal(parse_policies(y, &d2, a2, &p2, &err), 0);
    struct ts_summary sum;
    ts_summary_init(&sum);
    sum.spans = 1;
    uint64_t rng = 42;
    size_t kept = 0, n = 100000;
    for (size_t i = 0; i < n; i++) {
        uint8_t tid[16];
        for (int k = 0; k < 16; k += 8) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            memcpy(tid + k, &rng, 8);
        }
        struct ts_result r1, r2;
        ts_decide(&p1, &sum, tid, 0, false, &r1);
        ts_decide(&p2, &sum, tid, 0, false, &r2);
        assert_int_equal(r1.sampled, r2.sampled);
        if (r1.sampled) {
            kept++;
            assert_true(r1.prob_only_rate == 0.1);
        }
    }
    double pct = 100.0 * (double)kept / (double)n;
    if (pct < 9.0 || pct > 11.0)
        fail_msg("kept %.2f%% of traces at sampling_percentage 10", pct);
    lg_conf_doc_free(&d1);
    lg_conf_doc_free(&d2);
    lg_arena_destroy(a1);
    lg_arena_destroy(a2);
}

/* ------------------------------------------------------------- config errors ---- */

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"[{name: a, type: nope}]", "policies[0].type: unknown policy type \"nope\""},
        /* ottl_condition: the YAML path of the condition, its line:column in the file and
         * the column inside the condition */
        {"[{name: a, type: ottl_condition, ottl_condition: {span: ['name == \"a\"', 'name =='"
         "]}}]",
         "policies.yaml:1:83: policies[0].ottl_condition.span[1]: invalid span condition at "
         "column 8"},
        {"[{name: a, type: ottl_condition, ottl_condition: {spanevent: ['resource.nope == 1']}}]",
         "policies[0].ottl_condition.spanevent[0]: invalid spanevent condition at column 1"},
        {"[{name: a, type: and, and: {and_sub_policy: [{name: o, type: ottl_condition, "
         "ottl_condition: {span: ['IsMatch(name, \"((\")']}}]}}]",
         "policies[0].and.and_sub_policy[0].ottl_condition.span[0]: invalid span condition"},
        {"[{name: a, type: ottl_condition, ottl_condition: {error_mode: loud, span: ['true']}}]",
         "policies[0].ottl_condition.error_mode: unknown error_mode \"loud\""},
        {"[{name: a, type: ottl_condition, ottl_condition: {span: []}}]",
         "needs at least one condition in span or spanevent"},
        {"[{name: a, type: ottl_condition}]", "needs at least one condition"},
        {"[{name: a, type: ottl_condition, ottl_condition: {span: 'true'}}]",
         "policies[0].ottl_condition.span: expected a list of OTTL conditions"},
        {"[{name: a, type: ottl_condition, ottl_condition: {span: [{x: 1}]}}]",
         "span[0]: expected an OTTL condition"},
        {"[{name: a, type: ottl_condition, ottl_condition: {log: ['true']}}]",
         "policies[0].ottl_condition.log: unknown key"},
        {"[{type: always_sample}]", "policies[0]: missing key \"name\""},
        {"[{name: a}]", "missing key \"type\""},
        {"[{name: a, type: latency, latency: {threshold: 5}}]",
         "policies[0].latency.threshold: unknown key"},
        {"[{name: a, type: string_attribute, string_attribute: {values: [x]}}]",
         "policies[0].string_attribute: string_attribute: missing key \"key\""},
        {"[{name: a, type: string_attribute, string_attribute: {key: k, values: ['a(('], "
         "enabled_regex_matching: true}}]",
         "string_attribute.values[0]: bad regular expression"},
        {"[{name: a, type: status_code, status_code: {status_codes: [FAILED]}}]",
         "status_codes[0]: unknown status code \"FAILED\""},
        {"[{name: a, type: and, and: {and_sub_policy: [{name: b, type: wrong}]}}]",
         "and.and_sub_policy[0].type: unknown policy type"},
        {"[{name: c, type: composite, composite: {max_total_spans_per_second: 5, policy_order: "
         "[zz], composite_sub_policy: [{name: a, type: always_sample}]}}]",
         "policy_order[0]: \"zz\" is not the name"},
        {"[{name: c, type: composite, composite: {max_total_spans_per_second: 5, "
         "composite_sub_policy: [{name: a, type: always_sample}], rate_allocation: [{policy: a, "
         "percent: 120}]}}]",
         "percent: must be between 0 and 100"},
        {"[{name: a, type: always_sample}, {name: a, type: always_sample}]",
         "duplicate policy name"},
        {"[{name: a, type: probabilistic, probabilistic: {sampling_percentage: 101}}]",
         "sampling_percentage"},
        {"[{name: a, type: llm_cost, llm_cost: {}}]", "missing key \"threshold_usd\""},
        {"{name: a}", "policies: must be a list"},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(bad); i++) {
        struct lg_conf_doc doc = {0};
        struct lg_arena *a = lg_arena_create(0);
        struct ts_policies p;
        struct lg_err err = {{0}};
        int rc = parse_policies(bad[i].yaml, &doc, a, &p, &err);
        if (rc == 0 || strstr(err.msg, bad[i].want) == NULL)
            fail_msg("case %zu: want error containing '%s', got rc=%d '%s'", i, bad[i].want, rc,
                     err.msg);
        lg_conf_doc_free(&doc);
        lg_arena_destroy(a);
    }
}

/* ----------------------------------------------------------- processor fixture ---- */

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
    struct lg_conf_source src = {.text = yaml, .name = "tail_sampling.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->rt.telemetry = lg_telemetry_create();
    f->arena = lg_arena_create(0);
    f->proc.type = &lg_tail_sampling_processor;
    f->proc.id = "tail_sampling";
    f->proc.rt = &f->rt;
    f->proc.conf_node = lg_node_get(f->doc.root, "tail_sampling");
    f->proc.conf = lg_arena_calloc(f->arena, 1, lg_tail_sampling_processor.conf_size);
    test_sink_init(&f->sink, &f->sink_c);
    f->to[0] = &f->sink_c;
    f->proc.next[LG_SIGNAL_TRACES] = (struct lg_fanout){.to = f->to, .n = 1};
    rc = lg_conf_apply(lg_tail_sampling_processor.fields, f->proc.conf_node, f->doc.root,
                       f->proc.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_tail_sampling_processor.create(&f->proc, err);
    return rc;
}

static void free_processor(struct fixture *f)
{
    if (f->proc.state)
        lg_tail_sampling_processor.destroy(&f->proc);
    test_sink_free(&f->sink);
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

static uint64_t metric(struct fixture *f, const char *name, const char *labels)
{
    size_t len;
    char *text = lg_telemetry_render(f->rt.telemetry, &len);
    char want[512];
    snprintf(want, sizeof want, "%s{processor=\"tail_sampling\"%s%s} ", name, *labels ? "," : "",
             labels);
    char *p = strstr(text, want);
    uint64_t v = p ? strtoull(p + strlen(want), NULL, 10) : UINT64_MAX;
    free(text);
    return v;
}

/* A span of trace `trace` (ID derived from it), span number `idx`. */
struct gspan {
    uint32_t trace;
    uint32_t idx;
    int res; /* which of a few resources */
    bool error;
    const char *tstate;
};

static lg_span *gen_span(struct lg_arena *a, const struct gspan *g)
{
    lg_span *s = lg_arena_alloc(a, sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    uint8_t *tid = lg_arena_calloc(a, 1, 16), *sid = lg_arena_calloc(a, 1, 8), *pid = NULL;
    memcpy(tid, &g->trace, 4);
    tid[8] = 0xab;
    tid[15] = (uint8_t)(g->trace * 31u);
    memcpy(sid, &g->idx, 4);
    sid[7] = 1;
    s->trace_id = (ProtobufCBinaryData){16, tid};
    s->span_id = (ProtobufCBinaryData){8, sid};
    if (g->idx > 0) {
        pid = lg_arena_calloc(a, 1, 8);
        pid[7] = 1;
        s->parent_span_id = (ProtobufCBinaryData){8, pid};
    }
    char name[64];
    snprintf(name, sizeof name, "t%u-s%u", g->trace, g->idx);
    s->name = lg_arena_strdup(a, name);
    s->start_time_unix_nano = 1767225600000000000ULL + g->idx * 1000ULL;
    s->end_time_unix_nano = s->start_time_unix_nano + 5000;
    if (g->error)
        set_status(a, s, 2);
    if (g->tstate)
        s->trace_state = lg_arena_strdup(a, g->tstate);
    return s;
}

#define NRES 3

/* One batch of the given spans, grouped under NRES resources (one scope each). */
static struct lg_batch *gen_batch(const struct gspan *g, size_t n)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_TRACES, 0);
    struct lg_arena *a = b->arena;
    lg_traces_req *req = b->req.traces;
    req->resource_spans = lg_arena_calloc(a, NRES, sizeof(void *));
    for (int r = 0; r < NRES; r++) {
        lg_resource_spans *rs = lg_arena_alloc(a, sizeof *rs);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        char svc[16];
        snprintf(svc, sizeof svc, "svc-%d", r);
        rs->resource = make_resource(a, svc);
        lg_scope_spans *ss = lg_arena_alloc(a, sizeof *ss);
        opentelemetry__proto__trace__v1__scope_spans__init(ss);
        ss->scope = lg_arena_alloc(a, sizeof *ss->scope);
        opentelemetry__proto__common__v1__instrumentation_scope__init(ss->scope);
        ss->scope->name = lg_arena_strdup(a, "test-scope");
        ss->spans = lg_arena_calloc(a, n ? n : 1, sizeof(void *));
        for (size_t i = 0; i < n; i++)
            if (g[i].res == r)
                ss->spans[ss->n_spans++] = gen_span(a, &g[i]);
        rs->scope_spans = lg_arena_alloc(a, sizeof(void *));
        rs->scope_spans[0] = ss;
        rs->n_scope_spans = 1;
        req->resource_spans[req->n_resource_spans++] = rs;
    }
    b->items = lg_batch_count_items(b);
    return b;
}

static int feed(struct fixture *f, const struct gspan *g, size_t n)
{
    struct lg_batch *b = gen_batch(g, n);
    int rc = lg_tail_sampling_processor.consume(&f->proc, b);
    lg_batch_unref(b);
    return rc;
}

/* Per trace: how many of its spans reached the sink, and in how many batches. */
struct seen {
    uint32_t spans;
    uint32_t batches;
    uint32_t last_batch;
    bool bad_resource;
};

static void collect(struct fixture *f, struct seen *seen, size_t ntraces)
{
    memset(seen, 0, ntraces * sizeof *seen);
    for (size_t bi = 0; bi < f->sink.ngot; bi++) {
        const lg_traces_req *req = f->sink.got[bi]->req.traces;
        for (size_t r = 0; r < req->n_resource_spans; r++) {
            const lg_resource_spans *rs = req->resource_spans[r];
            const char *svc = rs->resource && rs->resource->n_attributes
                                  ? lg_any_str(rs->resource->attributes[0]->value)
                                  : NULL;
            for (size_t s = 0; s < rs->n_scope_spans; s++) {
                const lg_scope_spans *ss = rs->scope_spans[s];
                assert_non_null(ss->scope);
                assert_string_equal(ss->scope->name, "test-scope");
                for (size_t i = 0; i < ss->n_spans; i++) {
                    uint32_t tr;
                    memcpy(&tr, ss->spans[i]->trace_id.data, 4);
                    assert_true(tr < ntraces);
                    struct seen *e = &seen[tr];
                    e->spans++;
                    if (e->batches == 0 || e->last_batch != bi + 1) {
                        e->batches++;
                        e->last_batch = (uint32_t)bi + 1;
                    }
                    /* the span came back under the resource it was sent with */
                    uint32_t idx;
                    memcpy(&idx, ss->spans[i]->span_id.data, 4);
                    char want[16];
                    snprintf(want, sizeof want, "svc-%u", (tr + idx) % NRES);
                    if (svc == NULL || strcmp(svc, want) != 0)
                        e->bad_resource = true;
                }
            }
        }
    }
}

static const char *errors_yaml =
    "tail_sampling:\n"
    "  decision_wait: 1h\n"
    "  policies:\n"
    "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n";

/* ----------------------------------------------------------- processor tests ---- */

/* Property test: thousands of traces, out of order, over several batches and resources.
 * Every error trace is forwarded whole in one batch, nothing else is forwarded, late spans
 * follow the decision. */
static void test_property_error_traces_whole(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, errors_yaml, &err), 0);
    enum { NT = 3000, MAXS = 12, NB = 6 };
    static struct gspan all[NT * MAXS];
    static uint8_t nspans[NT];
    static bool is_err[NT];
    size_t n = 0;
    uint64_t rng = 7;
#define RND() (rng = rng * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(rng >> 33))
    for (uint32_t t = 0; t < NT; t++) {
        nspans[t] = (uint8_t)(1 + RND() % MAXS);
        is_err[t] = RND() % 50 == 0;
        uint32_t err_at = RND() % nspans[t];
        for (uint32_t i = 0; i < nspans[t]; i++)
            all[n++] = (struct gspan){t, i, (int)((t + i) % NRES), is_err[t] && i == err_at, NULL};
    }
    /* shuffle (Fisher-Yates), then split into NB batches */
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = RND() % (i + 1);
        struct gspan tmp = all[i];
        all[i] = all[j];
        all[j] = tmp;
    }
    /* hold back one span of each of the first 40 traces: sent after the decision */
    static struct gspan late[64];
    size_t nlate = 0;
    for (size_t i = 0; i < n && nlate < 40;) {
        if (all[i].trace < 40 && nspans[all[i].trace] > 1) {
            bool dup = false;
            for (size_t k = 0; k < nlate; k++)
                dup |= late[k].trace == all[i].trace;
            if (!dup && !all[i].error) {
                late[nlate++] = all[i];
                all[i] = all[--n];
                continue;
            }
        }
        i++;
    }
    size_t per = (n + NB - 1) / NB;
    for (size_t bi = 0; bi * per < n; bi++) {
        size_t cnt = n - bi * per < per ? n - bi * per : per;
        assert_int_equal(feed(&f, all + bi * per, cnt), LG_OK);
    }
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    size_t ready;
    assert_int_equal(lg_tail_sampling_pending(&f.proc, &ready), 0);
    assert_int_equal(ready, 0);
    static struct seen seen[NT];
    collect(&f, seen, NT);
    size_t kept = 0, nerr = 0, kept_spans = 0, all_spans = 0;
    for (uint32_t t = 0; t < NT; t++) {
        kept_spans += seen[t].spans;
        uint32_t held = 0;
        for (size_t k = 0; k < nlate; k++)
            held += late[k].trace == t;
        all_spans += nspans[t] - held;
        if (is_err[t]) {
            nerr++;
            if (seen[t].spans != nspans[t] - held || seen[t].batches != 1)
                fail_msg("error trace %u: %u of %u spans in %u batches", t, seen[t].spans,
                         nspans[t] - held, seen[t].batches);
            kept++;
        } else if (seen[t].spans != 0) {
            fail_msg("trace %u without error forwarded (%u spans)", t, seen[t].spans);
        }
        assert_false(seen[t].bad_resource);
    }
    assert_true(nerr > 20);
    /* the late spans: those of kept traces are forwarded right away, the others dropped */
    size_t before = f.sink.ngot;
    assert_int_equal(feed(&f, late, nlate), LG_OK);
    assert_int_equal(lg_tail_sampling_pending(&f.proc, NULL), 0); /* no new trace started */
    collect(&f, seen, NT);
    size_t late_kept = 0;
    for (size_t k = 0; k < nlate; k++) {
        uint32_t t = late[k].trace;
        assert_int_equal(seen[t].spans, is_err[t] ? nspans[t] : 0);
        late_kept += is_err[t];
    }
    assert_int_equal(f.sink.ngot, before + (late_kept ? 1 : 0));
    assert_int_equal(
        metric(&f, "llmgate_processor_tail_sampling_late_spans", "decision=\"sampled\""),
        late_kept);
    assert_int_equal(
        metric(&f, "llmgate_processor_tail_sampling_late_spans", "decision=\"not_sampled\""),
        nlate - late_kept);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_count_traces_sampled",
                            "policy=\"errors\",sampled=\"true\""),
                     kept);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_count_traces_sampled",
                            "policy=\"errors\",sampled=\"false\""),
                     NT - kept);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_new_trace_id_received", ""), NT);
    assert_int_equal(
        metric(&f, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early", ""), 0);
    /* the Collector's other self-metrics: spans per policy decision, the histograms */
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_count_spans_sampled",
                            "policy=\"errors\",sampled=\"true\""),
                     kept_spans);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_count_spans_sampled",
                            "policy=\"errors\",sampled=\"false\""),
                     all_spans - kept_spans);
    assert_int_equal(
        metric(&f, "otelcol_processor_tail_sampling_early_releases_from_cache_decision", ""),
        late_kept);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_sampling_decision_latency_count", ""),
                     NT);
    assert_int_equal(
        metric(&f, "otelcol_processor_tail_sampling_sampling_decision_latency_bucket", "le=\"+Inf\""),
        NT);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_sampling_trace_removal_age_count", ""),
                     NT);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_sampling_late_span_age_count", ""),
                     nlate);
    assert_int_equal(
        metric(&f, "otelcol_processor_tail_sampling_sampling_late_span_age_bucket", "le=\"+Inf\""),
        nlate);
    free_processor(&f);
#undef RND
}

/* Two processors with the same probabilistic policy keep the same traces, about 10% */
static void test_property_probabilistic_two_instances(void **state)
{
    (void)state;
    const char *y =
        "tail_sampling:\n  decision_wait: 1h\n  num_traces: 200000\n  policies:\n"
        "    - {name: ten, type: probabilistic, probabilistic: {sampling_percentage: 10}}\n";
    struct fixture f1, f2;
    struct lg_err err;
    assert_int_equal(make_processor(&f1, y, &err), 0);
    assert_int_equal(make_processor(&f2, y, &err), 0);
    enum { NT = 100000, PER = 5000 };
    static struct gspan g[PER];
    for (uint32_t base = 0; base < NT; base += PER) {
        for (uint32_t i = 0; i < PER; i++)
            g[i] = (struct gspan){base + i, 0, (int)((base + i) % NRES), false, NULL};
        assert_int_equal(feed(&f1, g, PER), LG_OK);
        assert_int_equal(feed(&f2, g, PER), LG_OK);
        assert_int_equal(lg_tail_sampling_flush(&f1.proc), LG_OK);
        assert_int_equal(lg_tail_sampling_flush(&f2.proc), LG_OK);
        if (f1.sink.ngot > 900 || f2.sink.ngot > 900)
            break;
    }
    uint8_t *k1 = calloc(NT, 1), *k2 = calloc(NT, 1);
    size_t kept = 0;
    for (int which = 0; which < 2; which++) {
        struct fixture *f = which ? &f2 : &f1;
        uint8_t *k = which ? k2 : k1;
        for (size_t bi = 0; bi < f->sink.ngot; bi++) {
            const lg_traces_req *req = f->sink.got[bi]->req.traces;
            for (size_t r = 0; r < req->n_resource_spans; r++)
                for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
                    const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[s];
                    for (size_t i = 0; i < ss->n_spans; i++) {
                        uint32_t t;
                        memcpy(&t, ss->spans[i]->trace_id.data, 4);
                        k[t] = 1;
                        kept += which == 0;
                        /* kept by the probabilistic policy alone: the effective rate rides along */
                        assert_string_equal(ss->spans[i]->trace_state, "ot=th:e6666666666666");
                    }
                }
        }
    }
    assert_memory_equal(k1, k2, NT);
    double pct = 100.0 * (double)kept / NT;
    if (pct < 9.0 || pct > 11.0)
        fail_msg("kept %.2f%%", pct);
    free(k1);
    free(k2);
    free_processor(&f1);
    free_processor(&f2);
}

/* num_traces and max_spans_per_trace decide early (counted), they never drop undecided */
static void test_limits_decide_early(void **state)
{
    (void)state;
    const char *y = "tail_sampling:\n  decision_wait: 1h\n  num_traces: 10\n  max_spans_per_trace: "
                    "5\n  policies:\n"
                    "    - {name: all, type: always_sample}\n";
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, y, &err), 0);
    struct gspan g[30];
    for (uint32_t t = 0; t < 25; t++)
        g[t] = (struct gspan){t, 0, (int)(t % NRES), false, NULL};
    assert_int_equal(feed(&f, g, 25), LG_OK);
    assert_int_equal(lg_tail_sampling_pending(&f.proc, NULL), 10);
    assert_int_equal(
        metric(&f, "llmgate_processor_tail_sampling_early_decisions", "reason=\"num_traces\""), 15);
    /* a trace of 8 spans: decided at its 5th, the other 3 follow as late spans */
    for (uint32_t i = 0; i < 8; i++)
        g[i] = (struct gspan){100, i, (int)((100 + i) % NRES), false, NULL};
    assert_int_equal(feed(&f, g, 8), LG_OK);
    assert_int_equal(metric(&f, "llmgate_processor_tail_sampling_early_decisions",
                            "reason=\"max_spans_per_trace\""),
                     1);
    assert_int_equal(
        metric(&f, "llmgate_processor_tail_sampling_late_spans", "decision=\"sampled\""), 3);
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    static struct seen seen[101];
    collect(&f, seen, 101);
    for (uint32_t t = 0; t < 25; t++)
        assert_int_equal(seen[t].spans, 1);
    assert_int_equal(seen[100].spans, 8);
    assert_int_equal(
        metric(&f, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early", ""), 0);
    free_processor(&f);
}

/* max_memory_mib: the oldest traces are decided early to stay under the bytes bound */
static void test_memory_bound(void **state)
{
    (void)state;
    const char *y =
        "tail_sampling:\n  decision_wait: 1h\n  max_memory_mib: 1\n  policies:\n"
        "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n";
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, y, &err), 0);
    static struct gspan g[2000];
    for (uint32_t round = 0; round < 10; round++) {
        for (uint32_t i = 0; i < 2000; i++)
            g[i] = (struct gspan){round * 2000 + i, 0, (int)(i % NRES), i % 100 == 0, NULL};
        assert_int_equal(feed(&f, g, 2000), LG_OK);
        uint64_t bytes = metric(&f, "llmgate_processor_tail_sampling_bytes_on_memory", "");
        assert_true(bytes <= 1024 * 1024);
    }
    uint64_t early =
        metric(&f, "llmgate_processor_tail_sampling_early_decisions", "reason=\"max_memory\"");
    assert_true(early > 0);
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    assert_int_equal(test_sink_items(&f.sink), 200); /* every error trace, none lost */
    free_processor(&f);
}

/* The next component refuses: kept traces stay queued and go out once it accepts. */
static void test_refusal_kept_and_retried(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, errors_yaml, &err), 0);
    struct gspan g[6] = {{1, 0, 0, true, NULL}, {1, 1, 1, false, NULL}, {2, 0, 2, false, NULL}};
    assert_int_equal(feed(&f, g, 3), LG_OK);
    f.sink.refuse = LG_EAGAIN;
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_EAGAIN);
    size_t ready;
    assert_int_equal(lg_tail_sampling_pending(&f.proc, &ready), 0);
    assert_int_equal(ready, 1);
    /* a late span of the kept trace while refused: accepted and queued too */
    g[0] = (struct gspan){1, 2, 0, false, NULL};
    assert_int_equal(feed(&f, g, 1), LG_OK);
    lg_tail_sampling_pending(&f.proc, &ready);
    assert_int_equal(ready, 2);
    f.sink.refuse = 0;
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    assert_int_equal(test_sink_items(&f.sink), 3);
    assert_true(metric(&f, "llmgate_processor_tail_sampling_forward_retries", "") >= 1);
    free_processor(&f);
}

/* Shutdown decides pending traces and flushes them; on_shutdown: drop drops and counts. */
static void test_shutdown(void **state)
{
    (void)state;
    for (int drop = 0; drop < 2; drop++) {
        char y[512];
        snprintf(y, sizeof y,
                 "tail_sampling:\n  decision_wait: 1h\n  on_shutdown: %s\n  policies:\n"
                 "    - {name: all, type: always_sample}\n",
                 drop ? "drop" : "decide");
        struct fixture f;
        struct lg_err err;
        assert_int_equal(make_processor(&f, y, &err), 0);
        assert_int_equal(lg_tail_sampling_processor.start(&f.proc, &err), 0);
        struct gspan g[4] = {
            {1, 0, 0, false, NULL}, {1, 1, 1, false, NULL}, {2, 0, 2, false, NULL}};
        assert_int_equal(feed(&f, g, 3), LG_OK);
        assert_int_equal(
            lg_tail_sampling_processor.shutdown(&f.proc, lg_now_mono_ns() + 5000000000LL), 0);
        assert_int_equal(test_sink_items(&f.sink), drop ? 0 : 3);
        assert_int_equal(
            metric(&f, "llmgate_processor_tail_sampling_dropped_spans", "reason=\"shutdown\""),
            drop ? 3 : 0);
        if (!drop)
            assert_int_equal(metric(&f, "llmgate_processor_tail_sampling_early_decisions",
                                    "reason=\"shutdown\""),
                             2);
        /* after shutdown new data is refused (retryable), never taken and lost */
        assert_int_equal(feed(&f, g, 1), LG_EAGAIN);
        free_processor(&f);
    }
}

/* The decision thread decides at decision_wait (bounded wait for the outcome). */
static void test_decision_thread(void **state)
{
    (void)state;
    const char *y =
        "tail_sampling:\n  decision_wait: 100ms\n  policies:\n"
        "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n"
        "    - {name: half, type: probabilistic, probabilistic: {sampling_percentage: 50}}\n";
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, y, &err), 0);
    assert_int_equal(lg_tail_sampling_processor.start(&f.proc, &err), 0);
    struct gspan g[200];
    for (uint32_t t = 0; t < 200; t++)
        g[t] = (struct gspan){t, 0, (int)(t % NRES), t % 10 == 0, t % 3 == 0 ? "vendor=x" : NULL};
    assert_int_equal(feed(&f, g, 200), LG_OK);
    for (int i = 0; i < 1000 && lg_tail_sampling_pending(&f.proc, NULL) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    size_t ready = 1;
    for (int i = 0; i < 1000 && (lg_tail_sampling_pending(&f.proc, &ready) > 0 || ready > 0); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(ready, 0);
    /* every error trace kept; probabilistic-only keeps carry the threshold, error keeps do not */
    size_t errors = 0, prob = 0;
    for (size_t bi = 0; bi < f.sink.ngot; bi++) {
        const lg_traces_req *req = f.sink.got[bi]->req.traces;
        for (size_t r = 0; r < req->n_resource_spans; r++) {
            const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[0];
            for (size_t i = 0; i < ss->n_spans; i++) {
                const lg_span *s = ss->spans[i];
                uint32_t t;
                memcpy(&t, s->trace_id.data, 4);
                const char *ts = s->trace_state && *s->trace_state ? s->trace_state : NULL;
                if (t % 10 == 0) {
                    errors++;
                    if (t % 3 == 0)
                        assert_string_equal(ts, "vendor=x");
                    else
                        assert_null(ts);
                } else {
                    prob++;
                    assert_string_equal(ts, t % 3 == 0 ? "ot=th:8,vendor=x" : "ot=th:8");
                }
            }
        }
    }
    assert_int_equal(errors, 20);
    assert_true(prob > 40 && prob < 140);
    assert_int_equal(lg_tail_sampling_processor.shutdown(&f.proc, lg_now_mono_ns() + 1000000000LL),
                     0);
    free_processor(&f);
}

/* decision_wait_after_root_received: a trace whose root arrived is decided early; one
 * without root waits for decision_wait */
static void test_decision_after_root(void **state)
{
    (void)state;
    const char *y = "tail_sampling:\n  decision_wait: 1h\n  decision_wait_after_root_received: "
                    "50ms\n  policies:\n"
                    "    - {name: all, type: always_sample}\n";
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, y, &err), 0);
    assert_int_equal(lg_tail_sampling_processor.start(&f.proc, &err), 0);
    struct gspan g[3] = {{1, 1, 1, false, NULL}, {2, 1, 0, false, NULL}};
    assert_int_equal(feed(&f, g, 2), LG_OK);     /* children only */
    g[0] = (struct gspan){1, 0, 1, false, NULL}; /* trace 1's root */
    assert_int_equal(feed(&f, g, 1), LG_OK);
    for (int i = 0; i < 1000 && test_sink_items(&f.sink) < 2; i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(test_sink_items(&f.sink), 2);                /* trace 1, whole */
    assert_int_equal(lg_tail_sampling_pending(&f.proc, NULL), 1); /* trace 2 still waits */
    assert_int_equal(lg_tail_sampling_processor.shutdown(&f.proc, lg_now_mono_ns() + 1000000000LL),
                     0);
    assert_int_equal(test_sink_items(&f.sink), 3);
    free_processor(&f);
}

/* LLM policies on batches llm_cost has already scanned (only listed spans are read) */
static void test_llm_policies_on_batches(void **state)
{
    (void)state;
    const char *y = "tail_sampling:\n  decision_wait: 1h\n  policies:\n"
                    "    - {name: cost, type: llm_cost, llm_cost: {threshold_usd: 0.05}}\n";
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, y, &err), 0);
    struct gspan g[3] = {{1, 0, 0, false, NULL}, {1, 1, 0, false, NULL}, {2, 0, 0, false, NULL}};
    /* scanned 0: not listed; 1: listed without the call; 2: listed with llm_cost's call */
    static struct lg_llm_call calls[3];
    for (int scanned = 0; scanned < 3; scanned++) {
        g[0].trace = g[1].trace = 1 + 10 * (uint32_t)scanned;
        g[2].trace = 2 + 10 * (uint32_t)scanned;
        struct lg_batch *b = gen_batch(g, 3);
        lg_scope_spans *ss = b->req.traces->resource_spans[0]->scope_spans[0];
        struct tattr at[] = {LLM_ATTRS("10", "10"), {"gen_ai.usage.cost", 'd', "0.03"}};
        struct lg_llm_span_ref *refs = lg_arena_alloc(b->arena, 3 * sizeof *refs);
        for (size_t i = 0; i < 3; i++) {
            lg_span *s = tspan(b->arena, "chat", at, 6);
            s->trace_id = ss->spans[i]->trace_id;
            s->span_id = ss->spans[i]->span_id;
            ss->spans[i] = s;
            refs[i] = (struct lg_llm_span_ref){b->req.traces->resource_spans[0], ss, s, NULL};
            if (scanned == 2) {
                assert_true(lg_llm_read(NULL, NULL, s, &calls[i]));
                refs[i].call = &calls[i];
            }
        }
        if (scanned) {
            b->llm_spans = refs;
            b->n_llm_spans = 3;
            b->llm_scanned = true;
        }
        assert_int_equal(lg_tail_sampling_processor.consume(&f.proc, b), LG_OK);
        lg_batch_unref(b);
    }
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    /* trace 1 and 11 cost 0.06 (kept), traces 2 and 12 cost 0.03 */
    static struct seen seen[23];
    memset(seen, 0, sizeof seen);
    for (size_t bi = 0; bi < f.sink.ngot; bi++) {
        const lg_traces_req *req = f.sink.got[bi]->req.traces;
        for (size_t r = 0; r < req->n_resource_spans; r++) {
            const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[0];
            for (size_t i = 0; i < ss->n_spans; i++) {
                uint32_t t;
                memcpy(&t, ss->spans[i]->trace_id.data, 4);
                seen[t].spans++;
            }
        }
    }
    assert_int_equal(seen[1].spans, 2);
    assert_int_equal(seen[11].spans, 2);
    assert_int_equal(seen[2].spans, 0);
    assert_int_equal(seen[12].spans, 0);
    assert_int_equal(seen[21].spans, 2);
    assert_int_equal(seen[22].spans, 0);
    free_processor(&f);
}

/* ottl_condition in the processor: conditions compiled at create (and freed at destroy),
 * seeing the span's scope and events; an evaluation error under propagate counts one
 * sampling_policy_evaluation_error per trace and policy and does not sample, under ignore
 * it only makes the condition false. */
static void test_ottl_condition_on_batches(void **state)
{
    (void)state;
    const char *y =
        "tail_sampling:\n  decision_wait: 1h\n  policies:\n"
        "    - {name: scoped, type: ottl_condition, ottl_condition: {span: "
        "['instrumentation_scope.name == \"test-scope\" and attributes[\"keep\"] == true']}}\n"
        "    - {name: strict, type: ottl_condition, ottl_condition: {span: "
        "['Len(attributes[\"n\"]) > 3']}}\n"
        "    - {name: lenient, type: ottl_condition, ottl_condition: {error_mode: ignore, span: "
        "['Len(attributes[\"n\"]) > 3']}}\n"
        "    - {name: evented, type: and, and: {and_sub_policy: [{name: ev, type: ottl_condition, "
        "ottl_condition: {spanevent: ['name == \"exception\"']}}]}}\n";
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, y, &err), 0);
    /* trace 1 keep=true; 2 n is an int (error in strict, false in lenient) twice, on two
     * spans; 3 n = "abcd"; 4 nothing; 5 an exception event; 6 n an int, in a second batch */
    static const struct tattr a_keep[] = {{"keep", 'b', "true"}}, a_nint[] = {{"n", 'i', "5"}},
                              a_nstr[] = {{"n", 's', "abcd"}}, a_none[] = {{"x", 's', "y"}};
    static const struct {
        uint32_t trace;
        const struct tattr *at;
        bool event;
    } sp[] = {{1, a_keep, false}, {2, a_nint, false}, {2, a_nint, false},
              {3, a_nstr, false}, {4, a_none, false}, {5, a_none, true}};
    for (int round = 0; round < 2; round++) {
        struct gspan g[LG_ARRAY_LEN(sp)];
        size_t n = round == 0 ? LG_ARRAY_LEN(sp) : 1;
        for (size_t i = 0; i < n; i++)
            g[i] = (struct gspan){round == 0 ? sp[i].trace : 6, (uint32_t)i, 0, false, NULL};
        struct lg_batch *b = gen_batch(g, n);
        lg_scope_spans *ss = b->req.traces->resource_spans[0]->scope_spans[0];
        assert_int_equal(ss->n_spans, n);
        for (size_t i = 0; i < n; i++) {
            const struct tattr *at = round == 0 ? sp[i].at : a_nint;
            lg_span *tmp = tspan(b->arena, "x", at, 1);
            ss->spans[i]->attributes = tmp->attributes;
            ss->spans[i]->n_attributes = 1;
            if (round == 0 && sp[i].event) {
                lg_span_event *ev = lg_arena_alloc(b->arena, sizeof *ev);
                opentelemetry__proto__trace__v1__span__event__init(ev);
                ev->name = lg_arena_strdup(b->arena, "exception");
                ss->spans[i]->events = lg_arena_alloc(b->arena, sizeof(void *));
                ss->spans[i]->events[0] = ev;
                ss->spans[i]->n_events = 1;
            }
        }
        assert_int_equal(lg_tail_sampling_processor.consume(&f.proc, b), LG_OK);
        lg_batch_unref(b);
    }
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    uint32_t seen[8] = {0};
    for (size_t bi = 0; bi < f.sink.ngot; bi++) {
        const lg_traces_req *req = f.sink.got[bi]->req.traces;
        for (size_t r = 0; r < req->n_resource_spans; r++)
            for (size_t s = 0; s < req->resource_spans[r]->n_scope_spans; s++) {
                const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[s];
                for (size_t i = 0; i < ss->n_spans; i++) {
                    uint32_t t;
                    memcpy(&t, ss->spans[i]->trace_id.data, 4);
                    assert_true(t < 8);
                    seen[t]++;
                }
            }
    }
    assert_int_equal(seen[1], 1); /* scoped */
    assert_int_equal(seen[2], 0); /* strict: error; lenient: false */
    assert_int_equal(seen[3], 1); /* strict and lenient */
    assert_int_equal(seen[4], 0);
    assert_int_equal(seen[5], 1); /* the event, inside and */
    assert_int_equal(seen[6], 0);
    /* once per trace for strict, the only propagate policy that fails: Len of an int, and
     * Len of a missing attribute (nil) as in the Collector — every trace but 3 */
    assert_int_equal(
        metric(&f, "otelcol_processor_tail_sampling_sampling_policy_evaluation_error", ""), 5);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_count_traces_sampled",
                            "policy=\"strict\",sampled=\"true\""),
                     1);
    assert_int_equal(metric(&f, "otelcol_processor_tail_sampling_count_traces_sampled",
                            "policy=\"lenient\",sampled=\"true\""),
                     1);
    free_processor(&f);
}

/* A bad condition refuses the processor's config, naming the condition. */
static void test_ottl_condition_processor_config(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err = {{0}};
    assert_int_not_equal(
        make_processor(
            &f,
            "tail_sampling:\n  policies:\n    - name: o\n      type: ottl_condition\n"
            "      ottl_condition:\n        span:\n          - 'attributes[\"a\"] == \"x\"'\n"
            "          - 'attributes[\"a\"] === 1'\n",
            &err),
        0);
    if (strstr(err.msg,
               "tail_sampling.yaml:8:13: tail_sampling.policies[0].ottl_condition.span[1]: "
               "invalid span condition at column 19") == NULL)
        fail_msg("got '%s'", err.msg);
    free_processor(&f);
}

/* Packs a span into malloc'd bytes (the canonical encoding, for comparisons). */
static uint8_t *pack_span(const lg_span *s, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&s->base);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(protobuf_c_message_pack(&s->base, buf), *len);
    return buf;
}

static const lg_span *find_span(const struct lg_batch *b, const lg_span *like)
{
    const lg_traces_req *req = b->req.traces;
    for (size_t r = 0; r < req->n_resource_spans; r++)
        for (size_t j = 0; j < req->resource_spans[r]->n_scope_spans; j++) {
            const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[j];
            for (size_t i = 0; i < ss->n_spans; i++)
                if (memcmp(ss->spans[i]->trace_id.data, like->trace_id.data, 16) == 0 &&
                    memcmp(ss->spans[i]->span_id.data, like->span_id.data, 8) == 0)
                    return ss->spans[i];
        }
    return NULL;
}

/* The receivers' raw-span index (core/batch.h) and how tail_sampling stores spans from it:
 * the bytes it forwards must decode to exactly the spans it was given — unchanged spans
 * (copied from the request bytes), spans a clone replaced by a copy with appended
 * attributes (original bytes + the new KeyValues), spans replaced otherwise (encoded), with
 * a span pruned from the tree before (the cursor skips it). */
static void test_raw_index_forwarding(void **state)
{
    (void)state;
    const char *y = "tail_sampling:\n  decision_wait: 1h\n  policies:\n"
                    "    - {name: all, type: always_sample}\n";
    struct fixture f;
    struct lg_err err;
    assert_false(lg_batch_raw_index_wanted());
    assert_int_equal(make_processor(&f, y, &err), 0);
    assert_true(lg_batch_raw_index_wanted());

    struct gspan g[12];
    for (uint32_t i = 0; i < 12; i++)
        g[i] = (struct gspan){.trace = 100 + i / 4, .idx = i % 4, .res = (int)(i / 4) % NRES};
    struct lg_batch *built = gen_batch(g, 12);
    size_t wire_len;
    uint8_t *wire = lg_batch_encode(built, &wire_len);
    assert_non_null(wire);
    lg_batch_unref(built);

    struct lg_batch *orig = NULL;
    assert_int_equal(lg_batch_decode_indexed(LG_SIGNAL_TRACES, wire, wire_len, &orig, &err), LG_OK);
    free(wire); /* the index holds its own copy */
    assert_int_equal(orig->n_raw_spans, 12);
    assert_ptr_equal(lg_batch_raw_source(orig), orig);
    size_t k = 0;
    const lg_traces_req *req = orig->req.traces;
    for (size_t r = 0; r < req->n_resource_spans; r++) {
        const lg_scope_spans *ss = req->resource_spans[r]->scope_spans[0];
        for (size_t i = 0; i < ss->n_spans; i++, k++) {
            const struct lg_span_raw *e = &orig->raw_spans[k];
            assert_ptr_equal(e->span, ss->spans[i]);
            size_t n;
            uint8_t *want = pack_span(ss->spans[i], &n);
            assert_int_equal(e->len, n);
            assert_memory_equal(orig->raw + e->off, want, n);
            free(want);
        }
    }

    /* the receiver prunes the first span of resource 1 (as for a bad ID) */
    lg_scope_spans *ss1 = req->resource_spans[1]->scope_spans[0];
    memmove(ss1->spans, ss1->spans + 1, (ss1->n_spans - 1) * sizeof *ss1->spans);
    ss1->n_spans--;
    orig->items--;

    /* a processor clones: one span gets an appended attribute, one a new name */
    struct lg_batch *clone = lg_batch_clone_shallow(orig);
    assert_non_null(clone);
    assert_ptr_equal(lg_batch_raw_source(clone), orig);
    lg_scope_spans *c0 = clone->req.traces->resource_spans[0]->scope_spans[0];
    lg_span *appended = lg_arena_memdup(clone->arena, c0->spans[1], sizeof *appended);
    struct lg_attr_set set[] = {{.key = "gen_ai.usage.cost", .kind = LG_ATTR_DOUBLE, .d = 0.125},
                                {.key = "llm.note", .kind = LG_ATTR_STRING, .s = "x"}};
    assert_int_equal(lg_attrs_set(clone->arena, &appended->attributes, &appended->n_attributes, set, 2),
                     LG_OK);
    c0->spans[1] = appended;
    lg_span *renamed = lg_arena_memdup(clone->arena, c0->spans[2], sizeof *renamed);
    renamed->name = lg_arena_strdup(clone->arena, "renamed");
    c0->spans[2] = renamed;

    assert_int_equal(lg_tail_sampling_processor.consume(&f.proc, clone), LG_OK);
    assert_int_equal(lg_tail_sampling_flush(&f.proc), LG_OK);
    assert_int_equal(test_sink_items(&f.sink), 11);
    size_t checked = 0;
    for (size_t bi = 0; bi < f.sink.ngot; bi++) {
        const lg_traces_req *out = f.sink.got[bi]->req.traces;
        for (size_t r = 0; r < out->n_resource_spans; r++)
            for (size_t j = 0; j < out->resource_spans[r]->n_scope_spans; j++) {
                const lg_scope_spans *ss = out->resource_spans[r]->scope_spans[j];
                for (size_t i = 0; i < ss->n_spans; i++, checked++) {
                    const lg_span *sent = find_span(clone, ss->spans[i]);
                    assert_non_null(sent);
                    size_t n1, n2;
                    uint8_t *a = pack_span(sent, &n1), *b2 = pack_span(ss->spans[i], &n2);
                    assert_int_equal(n1, n2);
                    assert_memory_equal(a, b2, n1);
                    free(a);
                    free(b2);
                }
            }
    }
    assert_int_equal(checked, 11);
    const lg_span *got = NULL;
    for (size_t bi = 0; bi < f.sink.ngot && got == NULL; bi++)
        got = find_span(f.sink.got[bi], appended);
    assert_non_null(got);
    assert_int_equal(got->n_attributes, appended->n_attributes);
    assert_string_equal(got->attributes[got->n_attributes - 2]->key, "gen_ai.usage.cost");
    lg_batch_unref(clone);
    lg_batch_unref(orig);
    free_processor(&f);

    /* nobody wants the index any more: receivers stop building it */
    assert_false(lg_batch_raw_index_wanted());
    struct lg_batch *again = gen_batch(g, 4);
    wire = lg_batch_encode(again, &wire_len);
    lg_batch_unref(again);
    assert_int_equal(lg_batch_decode_indexed(LG_SIGNAL_TRACES, wire, wire_len, &again, &err), LG_OK);
    free(wire);
    assert_null(again->raw_spans);
    assert_null(lg_batch_raw_source(again));
    lg_batch_unref(again);
}

static void test_processor_config_errors(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err = {{0}};
    assert_int_not_equal(make_processor(&f, "tail_sampling:\n  decision_wait: 1s\n", &err), 0);
    assert_non_null(strstr(err.msg, "policies"));
    free_processor(&f);
    assert_int_not_equal(
        make_processor(
            &f,
            "tail_sampling:\n  on_shutdown: later\n  policies: [{name: a, type: always_sample}]\n",
            &err),
        0);
    assert_non_null(strstr(err.msg, "tail_sampling.on_shutdown: must be decide or drop"));
    free_processor(&f);
    assert_int_not_equal(make_processor(&f,
                                        "tail_sampling:\n  decision_cache: {sampled: 5}\n  "
                                        "policies: [{name: a, type: always_sample}]\n",
                                        &err),
                         0);
    assert_non_null(strstr(err.msg, "tail_sampling.decision_cache.sampled"));
    free_processor(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_table),
        cmocka_unit_test(test_probabilistic_math),
        cmocka_unit_test(test_probabilistic_rate_and_determinism),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_property_error_traces_whole),
        cmocka_unit_test(test_property_probabilistic_two_instances),
        cmocka_unit_test(test_limits_decide_early),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_refusal_kept_and_retried),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_decision_thread),
        cmocka_unit_test(test_decision_after_root),
        cmocka_unit_test(test_llm_policies_on_batches),
        cmocka_unit_test(test_ottl_condition_on_batches),
        cmocka_unit_test(test_ottl_condition_processor_config),
        cmocka_unit_test(test_processor_config_errors),
        cmocka_unit_test(test_raw_index_forwarding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
