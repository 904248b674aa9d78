/* tests/unit/test_ottl.c — the OTTL condition subset (processors/ottl.h).
 *
 * A table of conditions × items (a span with attributes of every value type, a span event,
 * a log record, a sum metric and its data point) → expected true / false / evaluation
 * error, covering precedence (`a or b and c`), not, nil comparisons, int/double/string/bool
 * ordering, enums, IsMatch, Is*, Len, nested keys, escapes, ids and the metric-only
 * HasAttr* functions; then parse errors with the column they name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/arena.h"
#include "llm_test_util.h"
#include "processors/ottl.h"

struct world {
    struct lg_arena *a;
    lg_resource res;
    lg_scope scope;
    lg_span *span;
    lg_span_event ev;
    lg_log_record log;
    lg_metric metric;
    lg_number_dp dp;
};

static lg_kv *kv_of(struct lg_arena *a, const char *key, lg_any_value *v)
{
    lg_kv *kv = lg_arena_alloc(a, sizeof *kv);
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = lg_arena_strdup(a, key);
    kv->value = v;
    return kv;
}

static lg_any_value *sval(struct lg_arena *a, const char *s)
{
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = lg_arena_strdup(a, s);
    return v;
}

static lg_kv **append_kv(struct lg_arena *a, lg_kv **old, size_t n, lg_kv *add)
{
    lg_kv **arr = lg_arena_calloc(a, n + 1, sizeof *arr);
    if (n)
        memcpy(arr, old, n * sizeof *arr);
    arr[n] = add;
    return arr;
}

static struct world *world_new(void)
{
    struct world *w = calloc(1, sizeof *w);
    struct lg_arena *a = w->a = lg_arena_create(0);
    static const struct tattr at[] = {
        {"http.route", 's', "/health"}, {"http.status_code", 'i', "200"}, {"ratio", 'd', "0.5"},
        {"ok", 'b', "true"},            {"tags", 'a', "a"},               {"q", 's', "a\"b\\c\n"},
        {"u", 's', "\xc3\xa9"},
    };
    w->span = tspan(a, "GET /health", at, LG_ARRAY_LEN(at));
    lg_span *s = w->span;
    /* a map attribute {k: "v"} and a bytes attribute 0x0a0b */
    lg_kvlist *kl = lg_arena_alloc(a, sizeof *kl);
    opentelemetry__proto__common__v1__key_value_list__init(kl);
    kl->values = lg_arena_alloc(a, sizeof(void *));
    kl->values[0] = kv_of(a, "k", sval(a, "v"));
    kl->n_values = 1;
    lg_any_value *mv = lg_arena_alloc(a, sizeof *mv);
    opentelemetry__proto__common__v1__any_value__init(mv);
    mv->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    mv->kvlist_value = kl;
    s->attributes = append_kv(a, s->attributes, s->n_attributes, kv_of(a, "m", mv));
    s->n_attributes++;
    lg_any_value *bv = lg_arena_alloc(a, sizeof *bv);
    opentelemetry__proto__common__v1__any_value__init(bv);
    bv->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    bv->bytes_value.data = lg_arena_memdup(a, "\x0a\x0b", 2);
    bv->bytes_value.len = 2;
    s->attributes = append_kv(a, s->attributes, s->n_attributes, kv_of(a, "b", bv));
    s->n_attributes++;
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    lg_status *st = lg_arena_alloc(a, sizeof *st);
    opentelemetry__proto__trace__v1__status__init(st);
    st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
    st->message = lg_arena_strdup(a, "boom");
    s->status = st;
    uint8_t *tid = lg_arena_alloc(a, 16), *sid = lg_arena_alloc(a, 8);
    for (int i = 0; i < 16; i++)
        tid[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++)
        sid[i] = (uint8_t)(0xa1 + i);
    s->trace_id = (ProtobufCBinaryData){16, tid};
    s->span_id = (ProtobufCBinaryData){8, sid};
    s->start_time_unix_nano = 1000;
    s->end_time_unix_nano = 3000;

    opentelemetry__proto__resource__v1__resource__init(&w->res);
    w->res.attributes = append_kv(a, NULL, 0, kv_of(a, "service.name", sval(a, "api")));
    w->res.n_attributes = 1;
    opentelemetry__proto__common__v1__instrumentation_scope__init(&w->scope);
    w->scope.name = "io.otel.http";
    w->scope.version = "1.2";

    opentelemetry__proto__trace__v1__span__event__init(&w->ev);
    w->ev.name = "exception";
    w->ev.time_unix_nano = 5;
    w->ev.attributes = append_kv(a, NULL, 0, kv_of(a, "exception.type", sval(a, "E")));
    w->ev.n_attributes = 1;

    opentelemetry__proto__logs__v1__log_record__init(&w->log);
    w->log.body = sval(a, "hello debug world");
    w->log.severity_number = OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    w->log.severity_text = "INFO";
    w->log.time_unix_nano = 42;

    opentelemetry__proto__metrics__v1__number_data_point__init(&w->dp);
    w->dp.attributes = append_kv(a, NULL, 0, kv_of(a, "route", sval(a, "/health")));
    w->dp.n_attributes = 1;
    w->dp.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    w->dp.as_int = 7;
    opentelemetry__proto__metrics__v1__metric__init(&w->metric);
    w->metric.name = "http.server.requests";
    w->metric.unit = "1";
    w->metric.description = "requests";
    lg_number_dp **pts = lg_arena_alloc(a, sizeof *pts);
    pts[0] = &w->dp;
    Opentelemetry__Proto__Metrics__V1__Sum *sum = lg_arena_alloc(a, sizeof *sum);
    opentelemetry__proto__metrics__v1__sum__init(sum);
    sum->data_points = pts;
    sum->n_data_points = 1;
    sum->is_monotonic = true;
    sum->aggregation_temporality = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
    w->metric.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    w->metric.sum = sum;
    return w;
}

static void world_free(struct world *w)
{
    lg_arena_destroy(w->a);
    free(w);
}

#define S LG_OTTL_SPAN
#define E LG_OTTL_SPANEVENT
#define L LG_OTTL_LOG
#define M LG_OTTL_METRIC
#define D LG_OTTL_DATAPOINT
#define ERR (-1)

static const struct {
    enum lg_ottl_ctx ctx;
    const char *cond;
    int want; /* 1, 0 or ERR (evaluation error) */
} cases[] = {
    /* names, precedence, not */
    {S, "name == \"GET /health\"", 1},
    {S, "name != \"GET /health\"", 0},
    {S, "name == \"x\" or name == \"GET /health\" and kind == SPAN_KIND_CLIENT", 0},
    {S, "name == \"GET /health\" or name == \"x\" and kind == SPAN_KIND_CLIENT", 1},
    {S, "(name == \"GET /health\" or name == \"x\") and kind == SPAN_KIND_CLIENT", 0},
    {S, "not name == \"x\"", 1},
    {S, "not (name == \"GET /health\")", 0},
    {S, "not not true", 1},
    {S, "true and not false", 1},
    {S, "false or false", 0},
    /* enums */
    {S, "kind == SPAN_KIND_SERVER", 1},
    {S, "kind == 2", 1},
    {S, "kind.string == \"Server\"", 1},
    {S, "status.code == STATUS_CODE_ERROR", 1},
    {S, "status.code != STATUS_CODE_OK", 1},
    {S, "status.message == \"boom\"", 1},
    /* nil */
    {S, "attributes[\"missing\"] == nil", 1},
    {S, "attributes[\"missing\"] != nil", 0},
    {S, "attributes[\"http.route\"] == nil", 0},
    {S, "attributes[\"http.route\"] != nil", 1},
    {S, "nil == nil", 1},
    {S, "nil <= nil", 0},
    {S, "attributes[\"missing\"] > 1", 0},
    {S, "attributes[\"missing\"] < 1", 0},
    {S, "attributes[\"missing\"] != 1", 1},
    {S, "attributes[\"missing\"][\"x\"] == nil", 1},
    {S, "attributes[\"http\"] == nil and attributes[\"http.route.x\"] == nil", 1},
    {S, "attributes[\"\"] == nil", 1},
    /* numbers: int/double compare as numbers */
    {S, "attributes[\"http.status_code\"] == 200", 1},
    {S, "attributes[\"http.status_code\"] == 200.0", 1},
    {S, "attributes[\"http.status_code\"] >= 200.5", 0},
    {S, "attributes[\"http.status_code\"] > -1", 1},
    {S, "attributes[\"ratio\"] < 1", 1},
    {S, "attributes[\"ratio\"] == 0.5", 1},
    {S, "attributes[\"ratio\"] == 5e-1", 1},
    /* different types: "not equal" */
    {S, "attributes[\"http.status_code\"] == \"200\"", 0},
    {S, "attributes[\"http.status_code\"] != \"200\"", 1},
    {S, "attributes[\"http.status_code\"] < \"300\"", 0},
    {S, "attributes[\"ok\"] == 1", 0},
    /* strings and bools order */
    {S, "name > \"GET\"", 1},
    {S, "name < \"GET /health\"", 0},
    {S, "name <= \"GET /health\"", 1},
    {S, "\"a\" < \"b\"", 1},
    {S, "attributes[\"ok\"] == true", 1},
    {S, "attributes[\"ok\"] > false", 1},
    {S, "true", 1},
    {S, "false", 0},
    /* lists, maps, bytes */
    {S, "attributes[\"tags\"][0] == \"a\"", 1},
    {S, "attributes[\"tags\"][5] == \"a\"", ERR},
    {S, "attributes[\"http.route\"][\"x\"] == nil", ERR},
    {S, "Len(attributes[\"tags\"]) == 1", 1},
    {S, "IsList(attributes[\"tags\"])", 1},
    {S, "attributes[\"m\"][\"k\"] == \"v\"", 1},
    {S, "IsMap(attributes[\"m\"])", 1},
    {S, "IsMap(attributes)", 1},
    {S, "Len(attributes[\"m\"]) == 1", 1},
    {S, "Len(attributes) == 9", 1},
    {S, "attributes[\"m\"] == attributes[\"m\"]", 1},
    {S, "attributes[\"m\"] < attributes[\"m\"]", 0},
    {S, "attributes[\"b\"] == 0x0a0b", 1},
    {S, "attributes[\"b\"] == 0x0a0c", 0},
    {S, "Len(attributes[\"b\"]) == 2", 1},
    /* IsMatch and Is* */
    {S, "IsMatch(name, \"^GET /he\")", 1},
    {S, "IsMatch(name, \"^POST\")", 0},
    {S, "IsMatch(name, \"health$\") and IsMatch(attributes[\"http.route\"], \"^/\")", 1},
    {S, "IsMatch(attributes[\"missing\"], \".*\")", 0},
    {S, "IsMatch(attributes[\"http.status_code\"], \"^2\\\\d\\\\d$\")", 1},
    {S, "IsMatch(attributes[\"ok\"], \"^true$\")", 1},
    {S, "IsMatch(attributes[\"ratio\"], \"^0\\\\.5$\")", 1},
    {S, "IsMatch(attributes[\"m\"], \"x\")", ERR},
    {S, "not IsMatch(name, \"x\")", 1},
    {S, "IsString(name)", 1},
    {S, "IsInt(attributes[\"http.status_code\"])", 1},
    {S, "IsDouble(attributes[\"ratio\"])", 1},
    {S, "IsDouble(attributes[\"http.status_code\"])", 0},
    {S, "IsBool(attributes[\"ok\"])", 1},
    {S, "IsString(attributes[\"missing\"])", 0},
    /* Len */
    {S, "Len(name) == 11", 1},
    {S, "Len(attributes[\"http.status_code\"]) > 0", ERR},
    {S, "Len(attributes[\"missing\"]) == 0", ERR},
    /* errors short-circuit like the Collector's and/or */
    {S, "true or Len(attributes[\"missing\"]) == 0", 1},
    {S, "false and Len(attributes[\"missing\"]) == 0", 0},
    /* ids, times, escapes, resource and scope */
    {S, "trace_id.string == \"0102030405060708090a0b0c0d0e0f10\"", 1},
    {S, "span_id.string == \"a1a2a3a4a5a6a7a8\"", 1},
    {S, "parent_span_id.string == \"\"", 1},
    {S, "trace_id.string == span_id.string", 0},
    {S, "start_time_unix_nano == 1000 and end_time_unix_nano > start_time_unix_nano", 1},
    {S, "attributes[\"q\"] == \"a\\\"b\\\\c\\n\"", 1},
    {S, "attributes[\"u\"] == \"\\u00e9\"", 1},
    {S, "attributes[\"u\"] == \"\\xc3\\xa9\"", 1},
    {S, "resource.attributes[\"service.name\"] == \"api\"", 1},
    {S, "resource.attributes[\"nope\"] == nil", 1},
    {S, "instrumentation_scope.name == \"io.otel.http\"", 1},
    {S, "instrumentation_scope.version == \"1.2\"", 1},
    {S, "scope.name == \"io.otel.http\"", 1},
    {S, "dropped_attributes_count == 0", 1},
    {S, "trace_state == \"\"", 1},
    /* span events */
    {E, "name == \"exception\"", 1},
    {E, "span.name == \"GET /health\" and attributes[\"exception.type\"] == \"E\"", 1},
    {E, "time_unix_nano == 5", 1},
    {E, "span.kind == SPAN_KIND_SERVER", 1},
    {E, "span.attributes[\"http.route\"] == \"/health\"", 1},
    {E, "resource.attributes[\"service.name\"] == \"api\"", 1},
    /* logs */
    {L, "body == \"hello debug world\"", 1},
    {L, "IsMatch(body, \"debug\")", 1},
    {L, "severity_number < SEVERITY_NUMBER_WARN", 1},
    {L, "severity_number >= SEVERITY_NUMBER_WARN", 0},
    {L, "severity_number == SEVERITY_NUMBER_INFO", 1},
    {L, "severity_text == \"INFO\"", 1},
    {L, "trace_id.string == \"\"", 1},
    {L, "attributes[\"k\"] == nil", 1},
    {L, "time_unix_nano == 42", 1},
    {L, "body.string == \"hello debug world\"", 1},
    /* metrics and data points */
    {M, "name == \"http.server.requests\"", 1},
    {M, "type == METRIC_DATA_TYPE_SUM", 1},
    {M, "type == METRIC_DATA_TYPE_GAUGE", 0},
    {M, "unit == \"1\" and description == \"requests\"", 1},
    {M, "aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE", 1},
    {M, "is_monotonic == true", 1},
    {M, "HasAttrKeyOnDatapoint(\"route\")", 1},
    {M, "HasAttrKeyOnDatapoint(\"nope\")", 0},
    {M, "HasAttrOnDatapoint(\"route\", \"/health\")", 1},
    {M, "HasAttrOnDatapoint(\"route\", \"/x\")", 0},
    {D, "attributes[\"route\"] == \"/health\"", 1},
    {D, "metric.name == \"http.server.requests\"", 1},
    {D, "metric.type == METRIC_DATA_TYPE_SUM", 1},
    {D, "value_int == 7", 1},
    {D, "value_double == 0", 1},
    {D, "count == nil", 1},
};

static void test_eval_table(void **state)
{
    (void)state;
    struct world *w = world_new();
    struct lg_ottl_scratch scratch;
    memset(&scratch, 0, sizeof scratch);
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        struct lg_ottl_cond *c = NULL;
        struct lg_ottl_error e;
        int rc = lg_ottl_compile(cases[i].ctx, cases[i].cond, &c, &e);
        if (rc != LG_OK)
            fail_msg("case %zu `%s`: compile error at column %d: %s", i, cases[i].cond, e.col, e.msg);
        struct lg_ottl_item it = {.resource = &w->res, .scope = &w->scope};
        switch (cases[i].ctx) {
        case LG_OTTL_SPAN: it.span = w->span; break;
        case LG_OTTL_SPANEVENT: it.span = w->span; it.event = &w->ev; break;
        case LG_OTTL_LOG: it.log = &w->log; break;
        case LG_OTTL_METRIC: it.metric = &w->metric; break;
        case LG_OTTL_DATAPOINT: it.metric = &w->metric; it.dp = &w->dp; it.dp_kind = LG_OTTL_DP_NUMBER; break;
        }
        int got = lg_ottl_eval(c, &it, &scratch);
        int want = cases[i].want;
        if (want == ERR) {
            if (got != LG_EINVAL)
                fail_msg("case %zu `%s`: want an evaluation error, got %d", i, cases[i].cond, got);
            assert_true(strncmp(scratch.err, "column ", 7) == 0);
        } else if (got != want) {
            fail_msg("case %zu `%s`: want %d, got %d (%s)", i, cases[i].cond, want, got, got < 0 ? scratch.err : "");
        }
        lg_ottl_free(c);
    }
    lg_ottl_scratch_free(&scratch);
    world_free(w);
}

static const struct {
    enum lg_ottl_ctx ctx;
    const char *cond;
    int col;
    const char *msg; /* a substring of the message */
} bad[] = {
    {S, "foo == 1", 1, "unknown path \"foo\" in the span context"},
    {S, "name == \"x\" and", 16, "expected a value"},
    {S, "name == ", 9, "expected a value"},
    {S, "Nope(name)", 1, "unknown function \"Nope\""},
    {S, "name = \"x\"", 6, "unexpected '='"},
    {S, "(name == \"x\"", 13, "missing ')'"},
    {S, "attributes[\"a\" == 1", 16, "expected ']'"},
    {S, "name == \"unterminated", 9, "unterminated string"},
    {S, "SEVERITY_NUMBER_WARN == 1", 1, "not available in the span context"},
    {S, "SPAN_KIND_NOPE == 1", 1, "unknown enum"},
    {S, "name", 1, "expected a comparison"},
    {S, "Len(name)", 1, "expected a comparison"},
    {S, "IsMatch(name, \"(\")", 15, "invalid regex"},
    {S, "IsMatch(name, name)", 15, "must be a string literal"},
    {S, "IsString(name, name)", 14, "takes 1 argument"},
    {S, "name == \"x\" name", 13, "unexpected 'name'"},
    {S, "name.string == \"x\"", 1, "unknown path \"name.string\""},
    {S, "\"a\\q\" == \"a\"", 3, "unknown escape"},
    {S, "name == 1 == 2", 11, "do not chain"},
    {S, "kind[\"a\"] == 1", 5, "does not take keys"},
    {S, "HasAttrKeyOnDatapoint(\"a\")", 1, "only available in the metric context"},
    {S, "", 1, "empty condition"},
    {S, "name == 0x0", 9, "even"},
    {S, "name == -.", 9, "invalid number"},
    {S, "name == 12ab", 9, "invalid number"},
    {S, "attributes[\"a\\x00b\"] == 1", 12, "NUL"},
    {S, "name == \"x\" && kind == 1", 13, "unexpected character '&'"},
    {E, "span.nope == 1", 1, "unknown path \"span.nope\" in the spanevent context"},
    {L, "severity == 1", 1, "unknown path"},
    {L, "SPAN_KIND_SERVER == 1", 1, "not available in the log context"},
    {M, "attributes[\"a\"] == 1", 1, "unknown path \"attributes\" in the metric context"},
    {D, "metric.attributes == 1", 1, "unknown path"},
};

static void test_parse_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < LG_ARRAY_LEN(bad); i++) {
        struct lg_ottl_cond *c = NULL;
        struct lg_ottl_error e;
        int rc = lg_ottl_compile(bad[i].ctx, bad[i].cond, &c, &e);
        if (rc != LG_EINVAL) {
            lg_ottl_free(c);
            fail_msg("case %zu `%s`: compiled", i, bad[i].cond);
        }
        assert_null(c);
        if (e.col != bad[i].col || strstr(e.msg, bad[i].msg) == NULL)
            fail_msg("case %zu `%s`: got column %d \"%s\", want column %d \"%s\"", i, bad[i].cond, e.col, e.msg,
                     bad[i].col, bad[i].msg);
    }
}

/* Deep nesting is refused at compile time instead of recursing without bound. */
static void test_depth_limit(void **state)
{
    (void)state;
    char buf[4096];
    size_t o = 0;
    for (int i = 0; i < 200; i++)
        buf[o++] = '(';
    o += (size_t)snprintf(buf + o, sizeof buf - o, "true");
    for (int i = 0; i < 200; i++)
        buf[o++] = ')';
    buf[o] = '\0';
    struct lg_ottl_cond *c = NULL;
    struct lg_ottl_error e;
    assert_int_equal(lg_ottl_compile(LG_OTTL_SPAN, buf, &c, &e), LG_EINVAL);
    assert_non_null(strstr(e.msg, "nested too deeply"));
    /* 30 levels of not ( ... ) are fine (each counts twice) */
    o = 0;
    for (int i = 0; i < 30; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "not (");
    o += (size_t)snprintf(buf + o, sizeof buf - o, "true");
    for (int i = 0; i < 30; i++)
        buf[o++] = ')';
    buf[o] = '\0';
    assert_int_equal(lg_ottl_compile(LG_OTTL_SPAN, buf, &c, &e), LG_OK);
    struct world *w = world_new();
    struct lg_ottl_item it = {.span = w->span};
    struct lg_ottl_scratch s;
    memset(&s, 0, sizeof s);
    assert_int_equal(lg_ottl_eval(c, &it, &s), 1); /* 30 nots of true */
    lg_ottl_free(c);
    lg_ottl_scratch_free(&s);
    world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
