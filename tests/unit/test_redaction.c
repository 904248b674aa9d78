/* tests/unit/test_redaction.c — the redaction processor end to end on batches: every
 * Collector option with a case it must act on and one it must leave alone, the summary
 * attributes, the llm_content preset over every convention's content keys and events, the
 * PII masks through the processor, logs and metrics, copy-on-write (the input batch is never
 * changed; an untouched batch is forwarded as it is), config errors naming the YAML path,
 * and a small throughput measurement (printed, never asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "core/otlp_json.h"
#include "core/runtime.h"
#include "llm_test_util.h"
#include "sink.h"

extern const struct lg_component_type lg_redaction_processor;

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
    struct lg_conf_source src = {.text = yaml, .name = "redaction.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->rt.telemetry = lg_telemetry_create();
    f->arena = lg_arena_create(0);
    f->proc.type = &lg_redaction_processor;
    f->proc.id = "redaction";
    f->proc.rt = &f->rt;
    f->proc.conf_node = lg_node_get(f->doc.root, "redaction");
    f->proc.conf = lg_arena_calloc(f->arena, 1, lg_redaction_processor.conf_size);
    test_sink_init(&f->sink, &f->sink_c);
    f->to[0] = &f->sink_c;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        f->proc.next[s] = (struct lg_fanout){.to = f->to, .n = 1};
    rc = lg_conf_apply(lg_redaction_processor.fields, f->proc.conf_node, f->doc.root, f->proc.conf,
                       f->arena, err);
    if (rc == LG_OK)
        rc = lg_redaction_processor.create(&f->proc, err);
    return rc;
}

static void setup_ok(struct fixture *f, const char *yaml)
{
    struct lg_err err = {{0}};
    int rc = make_processor(f, yaml, &err);
    if (rc != LG_OK)
        fprintf(stderr, "config error: %s\n", err.msg);
    assert_int_equal(rc, LG_OK);
}

static void free_processor(struct fixture *f)
{
    if (f->proc.state)
        lg_redaction_processor.destroy(&f->proc);
    test_sink_free(&f->sink);
    if (f->arena)
        lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

/* Config text -> error message (asserts the config is refused). */
static void expect_config_error(const char *yaml, const char *needle1, const char *needle2)
{
    struct fixture f;
    struct lg_err err = {{0}};
    int rc = make_processor(&f, yaml, &err);
    if (rc == LG_OK || strstr(err.msg, needle1) == NULL ||
        (needle2 && strstr(err.msg, needle2) == NULL))
        fprintf(stderr, "got rc=%d: %s\n", rc, err.msg);
    assert_int_not_equal(rc, LG_OK);
    assert_non_null(strstr(err.msg, needle1));
    if (needle2)
        assert_non_null(strstr(err.msg, needle2));
    free_processor(&f);
}

static uint64_t counter(struct fixture *f, const char *name, const char *labels)
{
    return lg_counter_value(lg_telemetry_counter(f->rt.telemetry, name, "", labels));
}

/* A traces batch with one span per attribute set. */
static struct lg_batch *spans_batch(const struct tattr *const *sets, const size_t *ns,
                                    size_t nspans)
{
    struct lg_batch *b = make_traces(1, 1, nspans);
    lg_scope_spans *ss = b->req.traces->resource_spans[0]->scope_spans[0];
    for (size_t i = 0; i < nspans; i++) {
        lg_span *s = tspan(b->arena, ss->spans[i]->name, sets[i], ns[i]);
        s->trace_id = ss->spans[i]->trace_id;
        s->span_id = ss->spans[i]->span_id;
        ss->spans[i] = s;
    }
    return b;
}

static struct lg_batch *one_span(const struct tattr *at, size_t n)
{
    return spans_batch(&at, &n, 1);
}

static const lg_span *out_span(struct fixture *f, size_t i)
{
    assert_true(f->sink.ngot > 0);
    const struct lg_batch *b = f->sink.got[f->sink.ngot - 1];
    return b->req.traces->resource_spans[0]->scope_spans[0]->spans[i];
}

static const lg_any_value *sattr(const lg_span *s, const char *key)
{
    return lg_attr_find(s->attributes, s->n_attributes, key);
}

static const char *sstr(const lg_span *s, const char *key)
{
    return lg_any_str(sattr(s, key));
}

static int64_t sint(const lg_span *s, const char *key)
{
    int64_t v = -1;
    if (!lg_any_int(sattr(s, key), &v))
        return -1;
    return v;
}

/* Runs `b` through the processor and drops the caller's reference. */
static void run(struct fixture *f, struct lg_batch *b)
{
    assert_int_equal(lg_redaction_processor.consume(&f->proc, b), LG_OK);
    lg_batch_unref(b);
}

/* The whole forwarded batch as OTLP/JSON, to search for text that must be gone. */
static char *last_json(struct fixture *f)
{
    size_t len;
    const struct lg_batch *b = f->sink.got[f->sink.ngot - 1];
    char *j = lg_otlp_json_encode(b->req.msg, &len);
    assert_non_null(j);
    return j;
}

static void hex_digest(const char *alg, const char *s, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD *md = EVP_MD_fetch(NULL, alg, NULL);
    assert_non_null(md);
    assert_true(EVP_Digest(s, strlen(s), d, &n, md, NULL));
    EVP_MD_free(md);
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* ---- Collector options ---- */

static void test_allowed_keys_remove_the_rest(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allowed_keys: [http.route, id]\n");
    struct tattr at[] = {{"http.route", 's', "/x"},
                         {"user.birthdate", 's', "1990-01-01"},
                         {"id", 'i', "7"},
                         {"mothers_maiden_name", 's', "Smith"}};
    struct lg_batch *b = one_span(at, 4);
    lg_batch_ref(b);
    run(&f, b);
    const lg_span *s = out_span(&f, 0);
    assert_int_equal(s->n_attributes, 2);
    assert_string_equal(sstr(s, "http.route"), "/x");
    assert_int_equal(sint(s, "id"), 7);
    assert_null(sattr(s, "user.birthdate"));
    /* copy-on-write: a new batch went on, ours still has all four */
    assert_ptr_not_equal(f.sink.got[0], b);
    assert_int_equal(b->req.traces->resource_spans[0]->scope_spans[0]->spans[0]->n_attributes, 4);
    assert_int_equal(counter(&f, "llmgate_redaction_removed_attributes", "processor=\"redaction\""),
                     2);
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_empty_allowed_keys_fail_closed(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction: {}\n");
    struct tattr at[] = {{"a", 's', "1"}, {"b", 'i', "2"}};
    run(&f, one_span(at, 2));
    assert_int_equal(out_span(&f, 0)->n_attributes, 0);
    free_processor(&f);
}

static void test_allow_all_keys_untouched_batch_passes_as_is(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(
        &f,
        "redaction:\n  allow_all_keys: true\n  blocked_values: ['4[0-9]{15}']\n"
        "  pii: {email: true, credit_card: true, bearer_token: true, api_keys: true, ip: true}\n");
    struct tattr at[] = {
        {"a", 's', "nothing to see"}, {"b", 'i', "4111111111111111"}, {"c", 's', "v1.2.3"}};
    struct lg_batch *b = one_span(at, 3);
    lg_batch_ref(b);
    run(&f, b);
    assert_ptr_equal(f.sink.got[0], b);
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_ignored_keys_and_patterns(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allowed_keys: [note]\n  ignored_keys: [safe]\n  "
                 "ignored_key_patterns: ['^trusted\\.']\n"
                 "  blocked_values: ['secret']\n  summary: info\n");
    struct tattr at[] = {{"safe", 's', "a secret"},
                         {"trusted.x", 's', "secret too"},
                         {"note", 's', "my secret"},
                         {"untrusted.x", 's', "gone"}};
    run(&f, one_span(at, 4));
    const lg_span *s = out_span(&f, 0);
    assert_string_equal(sstr(s, "safe"), "a secret");
    assert_string_equal(sstr(s, "trusted.x"), "secret too");
    assert_string_equal(sstr(s, "note"), "my ****");
    assert_null(sattr(s, "untrusted.x"));
    assert_int_equal(sint(s, "redaction.ignored.count"), 2);
    assert_int_equal(sint(s, "redaction.masked.count"), 1);
    assert_int_equal(sint(s, "redaction.redacted.count"), 1);
    free_processor(&f);
}

static void test_blocked_key_patterns(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n  blocked_key_patterns: ['.*token.*', "
                 "'.*api_key.*']\n");
    struct tattr at[] = {{"auth.token", 's', "abc"},
                         {"my_api_key_id", 'i', "42"},
                         {"tokens_used", 's', "x"},
                         {"model", 's', "gpt-4o"}};
    run(&f, one_span(at, 4));
    const lg_span *s = out_span(&f, 0);
    assert_string_equal(sstr(s, "auth.token"), "****");
    assert_string_equal(sstr(s, "my_api_key_id"),
                        "****"); /* non-strings too: the whole value goes */
    assert_string_equal(sstr(s, "tokens_used"), "****");
    assert_string_equal(sstr(s, "model"), "gpt-4o");
    free_processor(&f);
}

static void test_blocked_and_allowed_values(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n  blocked_values: "
                 "['4[0-9]{12}(?:[0-9]{3})?', 'mycompany\\.com']\n"
                 "  allowed_values: ['^support@']\n");
    struct tattr at[] = {{"note", 's', "card 4111111111111111 end"},
                         {"two", 's', "4111111111111 and 4222222222222"},
                         {"mail", 's', "support@mycompany.com"},
                         {"other", 's', "bob@mycompany.com"},
                         {"clean", 's', "nothing here"}};
    run(&f, one_span(at, 5));
    const lg_span *s = out_span(&f, 0);
    assert_string_equal(sstr(s, "note"), "card **** end");
    assert_string_equal(sstr(s, "two"), "**** and ****");
    assert_string_equal(sstr(s, "mail"), "support@mycompany.com"); /* allowed wins */
    assert_string_equal(sstr(s, "other"), "bob@****");
    assert_string_equal(sstr(s, "clean"), "nothing here");
    free_processor(&f);
}

static void test_masking_string(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(
        &f, "redaction:\n  allow_all_keys: true\n  blocked_values: ['[0-9]{3}-[0-9]{2}-[0-9]{4}']\n"
            "  masking_string: '[REDACTED]'\n");
    struct tattr at[] = {{"ssn", 's', "ssn 123-45-6789"}};
    run(&f, one_span(at, 1));
    assert_string_equal(sstr(out_span(&f, 0), "ssn"), "ssn [REDACTED]");
    free_processor(&f);
}

static void test_hash_functions(void **state)
{
    (void)state;
    static const struct {
        const char *name, *alg;
    } fns[] = {{"md5", "MD5"}, {"sha1", "SHA1"}, {"sha3", "SHA3-256"}, {"sha256", "SHA256"}};
    for (size_t k = 0; k < LG_ARRAY_LEN(fns); k++) {
        char yaml[256], want[256], hex[200];
        snprintf(yaml, sizeof yaml,
                 "redaction:\n  allow_all_keys: true\n  blocked_values: ['secret']\n"
                 "  blocked_key_patterns: [password]\n  hash_function: %s\n",
                 fns[k].name);
        struct fixture f;
        setup_ok(&f, yaml);
        struct tattr at[] = {{"v", 's', "a secret b"}, {"password", 's', "hunter2"}};
        run(&f, one_span(at, 2));
        hex_digest(fns[k].alg, "secret", hex);
        snprintf(want, sizeof want, "a %s b", hex);
        assert_string_equal(sstr(out_span(&f, 0), "v"), want);
        hex_digest(fns[k].alg, "hunter2", hex);
        assert_string_equal(sstr(out_span(&f, 0), "password"), hex);
        free_processor(&f);
    }
    /* one fixed vector, so the test does not only agree with itself */
    char hex[200];
    hex_digest("MD5", "secret", hex);
    assert_string_equal(hex, "5ebe2294ecd0e0f08eab7690d2a6ee69");
}

static void test_redact_all_types(void **state)
{
    (void)state;
    const char *base = "redaction:\n  allow_all_keys: true\n  pii: {credit_card: true}\n  "
                       "blocked_values: ['^42$']\n";
    char yaml[256];
    for (int on = 0; on < 2; on++) {
        snprintf(yaml, sizeof yaml, "%s  redact_all_types: %s\n", base, on ? "true" : "false");
        struct fixture f;
        setup_ok(&f, yaml);
        struct tattr at[] = {{"card", 'i', "4111111111111111"},
                             {"answer", 'i', "42"},
                             {"bad", 'i', "4111111111111112"}};
        run(&f, one_span(at, 3));
        const lg_span *s = out_span(&f, 0);
        if (on) {
            assert_string_equal(sstr(s, "card"), "[CARD]");
            assert_string_equal(sstr(s, "answer"), "****");
        } else {
            assert_int_equal(sint(s, "card"), 4111111111111111LL);
            assert_int_equal(sint(s, "answer"), 42);
        }
        assert_int_equal(sint(s, "bad"), 4111111111111112LL); /* Luhn-invalid: never masked */
        free_processor(&f);
    }
}

static void test_summary_levels(void **state)
{
    (void)state;
    const char *levels[] = {"debug", "info", "silent"};
    for (int l = 0; l < 3; l++) {
        char yaml[300];
        snprintf(yaml, sizeof yaml,
                 "redaction:\n  allowed_keys: [note, name, mail]\n  ignored_keys: [safe]\n"
                 "  blocked_values: ['secret']\n  allowed_values: ['@ok\\.com$']\n  summary: %s\n",
                 levels[l]);
        struct fixture f;
        setup_ok(&f, yaml);
        struct tattr at[] = {{"zeta", 's', "x"},        {"alpha", 's', "y"},
                             {"note", 's', "secret"},   {"name", 's', "secret"},
                             {"mail", 's', "a@ok.com"}, {"safe", 's', "s"}};
        run(&f, one_span(at, 6));
        const lg_span *s = out_span(&f, 0);
        if (l == 0) {
            assert_string_equal(sstr(s, "redaction.redacted.keys"), "alpha,zeta");
            assert_string_equal(sstr(s, "redaction.masked.keys"), "name,note");
            assert_string_equal(sstr(s, "redaction.allowed.keys"), "mail");
        } else {
            assert_null(sattr(s, "redaction.redacted.keys"));
            assert_null(sattr(s, "redaction.masked.keys"));
        }
        if (l < 2) {
            assert_int_equal(sint(s, "redaction.redacted.count"), 2);
            assert_int_equal(sint(s, "redaction.masked.count"), 2);
            assert_int_equal(sint(s, "redaction.allowed.count"), 1);
            assert_int_equal(sint(s, "redaction.ignored.count"), 1);
        } else {
            assert_null(sattr(s, "redaction.redacted.count"));
            assert_null(sattr(s, "redaction.ignored.count"));
            assert_int_equal(s->n_attributes, 4);
        }
        free_processor(&f);
    }
}

static void test_summary_merges_with_earlier_pass(void **state)
{
    (void)state;
    struct fixture f;
    /* an earlier pass's summary survives only when allowed, like any key */
    setup_ok(&f, "redaction:\n  allowed_keys: [keep, redaction.redacted.keys, redaction.redacted.count]\n"
                 "  summary: debug\n");
    struct tattr at[] = {{"redaction.redacted.keys", 's', "b,x"},
                         {"redaction.redacted.count", 'i', "2"},
                         {"a", 's', "1"},
                         {"keep", 's', "k"}};
    run(&f, one_span(at, 4));
    const lg_span *s = out_span(&f, 0);
    assert_string_equal(sstr(s, "redaction.redacted.keys"), "a,b,x");
    assert_int_equal(sint(s, "redaction.redacted.count"), 3);
    assert_string_equal(sstr(s, "keep"), "k");
    free_processor(&f);
}

/* A client cannot pass values through the masks by naming them like a summary attribute. */
static void test_summary_named_keys_get_no_exemption(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n  blocked_values: ['secret']\n  pii: {email: true}\n");
    struct tattr at[] = {{"redaction.masked.keys", 's', "secret bob@example.com"}, {"other", 's', "secret"}};
    run(&f, one_span(at, 2));
    const lg_span *s = out_span(&f, 0);
    assert_string_equal(sstr(s, "redaction.masked.keys"), "**** [EMAIL]");
    assert_string_equal(sstr(s, "other"), "****");
    free_processor(&f);

    setup_ok(&f, "redaction:\n  allowed_keys: [keep]\n");
    struct tattr at2[] = {{"redaction.redacted.keys", 's', "smuggled"}, {"keep", 's', "k"}};
    run(&f, one_span(at2, 2));
    s = out_span(&f, 0);
    assert_null(lg_attr_find(s->attributes, s->n_attributes, "redaction.redacted.keys"));
    assert_string_equal(sstr(s, "keep"), "k");
    free_processor(&f);
}

static void test_resource_and_event_attributes(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n  pii: {email: true}\n");
    struct tattr at[] = {{"x", 's', "1"}};
    struct lg_batch *b = one_span(at, 1);
    struct tattr rat[] = {{"owner", 's', "ops@example.com"}};
    lg_span *tmp = tspan(b->arena, "r", rat, 1);
    lg_resource_spans *rs = b->req.traces->resource_spans[0];
    rs->resource->attributes = tmp->attributes;
    rs->resource->n_attributes = 1;
    lg_span *s = rs->scope_spans[0]->spans[0];
    struct tattr eat[] = {{"exception.message", 's', "no user bob@example.com"}};
    lg_span *evs = tspan(b->arena, "exception", eat, 1);
    lg_span_event *ev = lg_arena_alloc(b->arena, sizeof *ev);
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->name = evs->name;
    ev->attributes = evs->attributes;
    ev->n_attributes = 1;
    s->events = lg_arena_alloc(b->arena, sizeof(void *));
    s->events[0] = ev;
    s->n_events = 1;
    lg_batch_ref(b);
    run(&f, b);
    const struct lg_batch *o = f.sink.got[0];
    const lg_resource *res = o->req.traces->resource_spans[0]->resource;
    assert_string_equal(lg_any_str(lg_attr_find(res->attributes, res->n_attributes, "owner")),
                        "[EMAIL]");
    const lg_span *os = out_span(&f, 0);
    assert_string_equal(lg_any_str(os->events[0]->attributes[0]->value), "no user [EMAIL]");
    /* the input is untouched */
    assert_string_equal(lg_any_str(rs->resource->attributes[0]->value), "ops@example.com");
    assert_string_equal(lg_any_str(ev->attributes[0]->value), "no user bob@example.com");
    lg_batch_unref(b);
    free_processor(&f);
}

/* ---- PII through the processor ---- */

static void test_pii_masks_in_values(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(
        &f,
        "redaction:\n  allow_all_keys: true\n"
        "  pii: {email: true, credit_card: true, bearer_token: true, api_keys: true, ip: true}\n");
    struct tattr at[] = {
        {"m", 's', "mail bob@example.com now"},
        {"c", 's', "pay 4111 1111 1111 1111 today"},
        {"bad", 's', "order 4111111111111112"},
        {"h", 's', "Authorization: Bearer abcdefgh12345678"},
        {"k", 's', "OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"},
        {"ip", 's', "from 10.1.2.3 and 2001:db8::7"},
        {"ver", 's', "openai 1.54.3"},
    };
    run(&f, one_span(at, 7));
    const lg_span *s = out_span(&f, 0);
    assert_string_equal(sstr(s, "m"), "mail [EMAIL] now");
    assert_string_equal(sstr(s, "c"), "pay [CARD] today");
    assert_string_equal(sstr(s, "bad"), "order 4111111111111112");
    assert_string_equal(sstr(s, "h"), "Authorization: Bearer [TOKEN]");
    assert_string_equal(sstr(s, "k"), "OPENAI_API_KEY=[API_KEY]");
    assert_string_equal(sstr(s, "ip"), "from [IP] and [IP]");
    assert_string_equal(sstr(s, "ver"), "openai 1.54.3");
    assert_int_equal(
        counter(&f, "llmgate_redaction_pii_matches", "processor=\"redaction\",kind=\"email\""), 1);
    assert_int_equal(counter(&f, "llmgate_redaction_pii_matches",
                             "processor=\"redaction\",kind=\"credit_card\""),
                     1);
    assert_int_equal(
        counter(&f, "llmgate_redaction_pii_matches", "processor=\"redaction\",kind=\"ipv4\""), 1);
    assert_int_equal(
        counter(&f, "llmgate_redaction_pii_matches", "processor=\"redaction\",kind=\"ipv6\""), 1);
    assert_int_equal(counter(&f, "llmgate_redaction_masked_values", "processor=\"redaction\""), 5);
    free_processor(&f);
}

static void test_pii_hashed_with_hash_function(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f,
             "redaction:\n  allow_all_keys: true\n  hash_function: sha256\n  pii: {email: true}\n");
    struct tattr at[] = {{"m", 's', "to bob@example.com"}};
    run(&f, one_span(at, 1));
    char hex[200], want[256];
    hex_digest("SHA256", "bob@example.com", hex);
    snprintf(want, sizeof want, "to %s", hex);
    assert_string_equal(sstr(out_span(&f, 0), "m"), want);
    free_processor(&f);
}

/* ---- llm_content ---- */

#define MARK "ZQXMARKER"

/* Every content key of core/llm_content.h, as each convention writes it. */
static const char *const content_keys[] = {
    "gen_ai.input.messages",
    "gen_ai.system_instructions",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.prompt",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.1.role",
    "gen_ai.completion",
    "gen_ai.completion.0.content",
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
    "llm.prompts",
    "llm.prompts.0.content",
    "llm.completions",
    "llm.completions.0.content",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.content",
    "llm.prompt_template.template",
    "input.value",
    "output.value",
    "llm.prompt",
    "llm.completion",
    "llm.response",
};
/* Not content, although the names are close. */
static const char *const plain_keys[] = {
    "gen_ai.request.model",      "gen_ai.response.model",
    "llm.response.model",        "llm.model",
    "gen_ai.usage.input_tokens", "gen_ai.tool.definitions",
    "llm.request.type",          "gen_ai.operation.name",
};
static const char *const content_events[] = {
    "gen_ai.user.message",       "gen_ai.system.message", "gen_ai.assistant.message",
    "gen_ai.tool.message",       "gen_ai.content.prompt", "gen_ai.choice",
    "gen_ai.content.completion",
};

static struct lg_batch *content_batch(void)
{
    size_t nc = LG_ARRAY_LEN(content_keys), np = LG_ARRAY_LEN(plain_keys),
           ne = LG_ARRAY_LEN(content_events);
    struct tattr at[64];
    size_t n = 0;
    for (size_t i = 0; i < nc; i++)
        at[n++] = (struct tattr){content_keys[i], 's', MARK " secret prompt"};
    for (size_t i = 0; i < np; i++)
        at[n++] = (struct tattr){plain_keys[i], 's', "plain"};
    struct lg_batch *b = one_span(at, n);
    lg_span *s = b->req.traces->resource_spans[0]->scope_spans[0]->spans[0];
    s->events = lg_arena_alloc(b->arena, (ne + 1) * sizeof(void *));
    for (size_t i = 0; i <= ne; i++) {
        struct tattr eat[] = {{"content", 's', MARK " event text"},
                              {"gen_ai.system", 's', "openai"}};
        lg_span *tmp =
            tspan(b->arena,
                  i < ne ? content_events[i] : "gen_ai.client.inference.operation.details", eat, 2);
        lg_span_event *ev = lg_arena_alloc(b->arena, sizeof *ev);
        opentelemetry__proto__trace__v1__span__event__init(ev);
        ev->name = tmp->name;
        ev->attributes = tmp->attributes;
        ev->n_attributes = 2;
        s->events[i] = ev;
    }
    s->n_events = ne + 1;
    return b;
}

static void test_llm_content_drop_every_convention(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n  llm_content: drop\n");
    struct lg_batch *b = content_batch();
    lg_batch_ref(b);
    run(&f, b);
    const lg_span *s = out_span(&f, 0);
    for (size_t i = 0; i < LG_ARRAY_LEN(content_keys); i++) {
        if (sattr(s, content_keys[i]))
            fprintf(stderr, "not dropped: %s\n", content_keys[i]);
        assert_null(sattr(s, content_keys[i]));
    }
    for (size_t i = 0; i < LG_ARRAY_LEN(plain_keys); i++)
        assert_string_equal(sstr(s, plain_keys[i]), "plain");
    /* content events are gone (and counted as dropped); the other event is kept — its
     * `content` attribute is not a content key, so its text stays (documented) */
    assert_int_equal(s->n_events, 1);
    assert_string_equal(s->events[0]->name, "gen_ai.client.inference.operation.details");
    assert_int_equal(s->dropped_events_count, LG_ARRAY_LEN(content_events));
    assert_int_equal(
        counter(&f, "llmgate_redaction_llm_content_dropped_attributes", "processor=\"redaction\""),
        LG_ARRAY_LEN(content_keys));
    assert_int_equal(
        counter(&f, "llmgate_redaction_llm_content_dropped_events", "processor=\"redaction\""),
        LG_ARRAY_LEN(content_events));
    /* the input batch still has everything */
    const lg_span *in = b->req.traces->resource_spans[0]->scope_spans[0]->spans[0];
    assert_int_equal(in->n_events, LG_ARRAY_LEN(content_events) + 1);
    assert_string_equal(lg_any_str(lg_attr_find(in->attributes, in->n_attributes, "gen_ai.prompt")),
                        MARK " secret prompt");
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_llm_content_drop_overrides_ignored_keys(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allowed_keys: [gen_ai.prompt]\n  ignored_keys: "
                 "[gen_ai.completion]\n  llm_content: drop\n");
    struct tattr at[] = {{"gen_ai.prompt", 's', MARK}, {"gen_ai.completion", 's', MARK}};
    run(&f, one_span(at, 2));
    char *j = last_json(&f);
    assert_null(strstr(j, MARK));
    free(j);
    free_processor(&f);
}

static void test_llm_content_hash(void **state)
{
    (void)state;
    for (int md5 = 0; md5 < 2; md5++) {
        struct fixture f;
        setup_ok(
            &f,
            md5 ? "redaction:\n  allow_all_keys: true\n  llm_content: hash\n  hash_function: md5\n"
                : "redaction:\n  allow_all_keys: true\n  llm_content: hash\n");
        run(&f, content_batch());
        const lg_span *s = out_span(&f, 0);
        char hex[200];
        hex_digest(md5 ? "MD5" : "SHA256", MARK " secret prompt", hex);
        for (size_t i = 0; i < LG_ARRAY_LEN(content_keys); i++)
            assert_string_equal(sstr(s, content_keys[i]), hex);
        for (size_t i = 0; i < LG_ARRAY_LEN(plain_keys); i++)
            assert_string_equal(sstr(s, plain_keys[i]), "plain");
        /* content events kept, every attribute hashed */
        assert_int_equal(s->n_events, LG_ARRAY_LEN(content_events) + 1);
        hex_digest(md5 ? "MD5" : "SHA256", MARK " event text", hex);
        assert_string_equal(lg_any_str(s->events[0]->attributes[0]->value), hex);
        assert_int_equal(counter(&f, "llmgate_redaction_llm_content_hashed_attributes",
                                 "processor=\"redaction\""),
                         LG_ARRAY_LEN(content_keys) + 2 * LG_ARRAY_LEN(content_events));
        assert_int_equal(
            counter(&f, "llmgate_redaction_llm_content_hashed_events", "processor=\"redaction\""),
            LG_ARRAY_LEN(content_events));
        free_processor(&f);
    }
}

static void test_llm_content_hash_still_obeys_allowed_keys(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allowed_keys: [gen_ai.prompt]\n  llm_content: hash\n");
    struct tattr at[] = {{"gen_ai.prompt", 's', "p"}, {"gen_ai.completion", 's', "c"}};
    run(&f, one_span(at, 2));
    const lg_span *s = out_span(&f, 0);
    char hex[200];
    hex_digest("SHA256", "p", hex);
    assert_string_equal(sstr(s, "gen_ai.prompt"), hex);
    assert_null(sattr(s, "gen_ai.completion"));
    free_processor(&f);
}

static void test_llm_content_keep_is_collector_behaviour(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n");
    struct lg_batch *b = content_batch();
    lg_batch_ref(b);
    run(&f, b);
    assert_ptr_equal(f.sink.got[0], b);
    lg_batch_unref(b);
    free_processor(&f);
}

/* ---- logs ---- */

static lg_log_record *add_log(struct lg_batch *b, lg_scope_logs *sl, const char *event_name,
                              const char *body, const struct tattr *at, size_t n)
{
    struct lg_arena *a = b->arena;
    lg_log_record *lr = lg_arena_alloc(a, sizeof *lr);
    opentelemetry__proto__logs__v1__log_record__init(lr);
    if (event_name)
        lr->event_name = lg_arena_strdup(a, event_name);
    if (body) {
        lr->body = lg_arena_alloc(a, sizeof *lr->body);
        opentelemetry__proto__common__v1__any_value__init(lr->body);
        lr->body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        lr->body->string_value = lg_arena_strdup(a, body);
    }
    lg_span *tmp = tspan(a, "x", at, n);
    lr->attributes = tmp->attributes;
    lr->n_attributes = n;
    sl->log_records[sl->n_log_records++] = lr;
    return lr;
}

static struct lg_batch *logs_batch(lg_scope_logs **slp)
{
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_LOGS, 0);
    struct lg_arena *a = b->arena;
    lg_logs_req *req = b->req.logs;
    lg_resource_logs *rl = lg_arena_alloc(a, sizeof *rl);
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    lg_scope_logs *sl = lg_arena_alloc(a, sizeof *sl);
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    sl->log_records = lg_arena_calloc(a, 8, sizeof(void *));
    rl->scope_logs = lg_arena_alloc(a, sizeof(void *));
    rl->scope_logs[0] = sl;
    rl->n_scope_logs = 1;
    req->resource_logs = lg_arena_alloc(a, sizeof(void *));
    req->resource_logs[0] = rl;
    req->n_resource_logs = 1;
    *slp = sl;
    return b;
}

static void test_logs_body_and_content_events(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        struct fixture f;
        setup_ok(&f, mode == 0 ? "redaction:\n  allow_all_keys: true\n  llm_content: drop\n  pii: "
                                 "{email: true}\n  summary: debug\n"
                               : "redaction:\n  allow_all_keys: true\n  llm_content: hash\n  pii: "
                                 "{email: true}\n");
        lg_scope_logs *sl;
        struct lg_batch *b = logs_batch(&sl);
        struct tattr a1[] = {{"gen_ai.system", 's', "openai"}, {"content", 's', MARK}};
        add_log(b, sl, "gen_ai.user.message", MARK " the prompt", a1, 2);
        struct tattr a2[] = {{"event.name", 's', "gen_ai.choice"}, {"message", 's', MARK}};
        add_log(b, sl, NULL, MARK " the answer", a2, 2);
        struct tattr a3[] = {{"http.method", 's', "GET"}};
        add_log(b, sl, NULL, "login by bob@example.com", a3, 1);
        b->items = lg_batch_count_items(b);
        run(&f, b);
        const lg_scope_logs *osl = f.sink.got[0]->req.logs->resource_logs[0]->scope_logs[0];
        assert_int_equal(osl->n_log_records, 3); /* records are never dropped: counts stay right */
        const lg_log_record *l0 = osl->log_records[0], *l1 = osl->log_records[1],
                            *l2 = osl->log_records[2];
        if (mode == 0) {
            /* content records keep only event.name (and, with summary: debug, the summary) */
            assert_null(l0->body);
            assert_null(lg_attr_find(l0->attributes, l0->n_attributes, "gen_ai.system"));
            assert_null(lg_attr_find(l0->attributes, l0->n_attributes, "content"));
            assert_string_equal(lg_any_str(lg_attr_find(l0->attributes, l0->n_attributes,
                                                        "redaction.redacted.keys")),
                                "content,gen_ai.system");
            assert_null(l1->body);
            assert_string_equal(
                lg_any_str(lg_attr_find(l1->attributes, l1->n_attributes, "event.name")),
                "gen_ai.choice");
            assert_null(lg_attr_find(l1->attributes, l1->n_attributes, "message"));
            char *j = last_json(&f);
            assert_null(strstr(j, MARK));
            free(j);
            assert_int_equal(counter(&f, "llmgate_redaction_llm_content_dropped_events",
                                     "processor=\"redaction\""),
                             2);
            assert_string_equal(lg_any_str(lg_attr_find(l2->attributes, l2->n_attributes,
                                                        "redaction.body.masked.keys")),
                                "body");
        } else {
            char hex[200];
            hex_digest("SHA256", MARK " the prompt", hex);
            assert_string_equal(lg_any_str(l0->body), hex);
            hex_digest("SHA256", "openai", hex);
            assert_string_equal(
                lg_any_str(lg_attr_find(l0->attributes, l0->n_attributes, "gen_ai.system")), hex);
            assert_string_equal(
                lg_any_str(lg_attr_find(l1->attributes, l1->n_attributes, "event.name")),
                "gen_ai.choice");
        }
        assert_string_equal(lg_any_str(l2->body), "login by [EMAIL]");
        assert_string_equal(
            lg_any_str(lg_attr_find(l2->attributes, l2->n_attributes, "http.method")), "GET");
        free_processor(&f);
    }
}

static lg_any_value *sval(struct lg_arena *a, const char *str)
{
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = lg_arena_strdup(a, str);
    return v;
}

/* A map value from alternating key, value pointers. */
static lg_any_value *mval(struct lg_arena *a, size_t n, const char *const *keys,
                          lg_any_value *const *vals)
{
    lg_any_value *v = lg_arena_alloc(a, sizeof *v);
    opentelemetry__proto__common__v1__any_value__init(v);
    lg_kvlist *l = lg_arena_alloc(a, sizeof *l);
    opentelemetry__proto__common__v1__key_value_list__init(l);
    l->values = lg_arena_alloc(a, n * sizeof(void *));
    for (size_t i = 0; i < n; i++) {
        lg_kv *kv = lg_arena_alloc(a, sizeof *kv);
        opentelemetry__proto__common__v1__key_value__init(kv);
        kv->key = lg_arena_strdup(a, keys[i]);
        kv->value = vals[i];
        l->values[i] = kv;
    }
    l->n_values = n;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v->kvlist_value = l;
    return v;
}

static const lg_any_value *mget(const lg_any_value *m, const char *key)
{
    return lg_attr_find(m->kvlist_value->values, m->kvlist_value->n_values, key);
}

static void test_logs_map_body_walked(void **state)
{
    (void)state;
    for (int allow_all = 0; allow_all < 2; allow_all++) {
        struct fixture f;
        setup_ok(&f, allow_all
                         ? "redaction:\n  allow_all_keys: true\n  blocked_key_patterns: [token]\n"
                           "  pii: {email: true, ip: true}\n  summary: info\n"
                         : "redaction:\n  allowed_keys: [message, nested, ip]\n  pii: {email: "
                           "true, ip: true}\n");
        lg_scope_logs *sl;
        struct lg_batch *b = logs_batch(&sl);
        struct lg_arena *a = b->arena;
        lg_any_value *arr = lg_arena_alloc(a, sizeof *arr);
        opentelemetry__proto__common__v1__any_value__init(arr);
        arr->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        arr->array_value = lg_arena_alloc(a, sizeof *arr->array_value);
        opentelemetry__proto__common__v1__array_value__init(arr->array_value);
        arr->array_value->values = lg_arena_alloc(a, 2 * sizeof(void *));
        arr->array_value->values[0] = sval(a, "cc a@b.co");
        arr->array_value->values[1] = sval(a, "plain");
        arr->array_value->n_values = 2;
        const char *nk[] = {"ip"};
        lg_any_value *nv[] = {sval(a, "10.0.0.1")};
        const char *keys[] = {"message", "nested", "secret_token", "list"};
        lg_any_value *vals[] = {sval(a, "mail bob@example.com"), mval(a, 1, nk, nv), sval(a, "abc"),
                                arr};
        lg_any_value *body = mval(a, 4, keys, vals);
        struct tattr at[] = {{"x", 's', "y"}};
        lg_log_record *lr = add_log(b, sl, NULL, NULL, at, allow_all ? 1 : 0);
        lr->body = body;
        b->items = lg_batch_count_items(b);
        lg_batch_ref(b);
        run(&f, b);
        const lg_log_record *o =
            f.sink.got[0]->req.logs->resource_logs[0]->scope_logs[0]->log_records[0];
        assert_string_equal(lg_any_str(mget(o->body, "message")), "mail [EMAIL]");
        assert_string_equal(lg_any_str(mget(mget(o->body, "nested"), "ip")), "[IP]");
        if (allow_all) {
            assert_string_equal(lg_any_str(mget(o->body, "secret_token")), "****");
            const lg_array_value *oa = mget(o->body, "list")->array_value;
            assert_string_equal(lg_any_str(oa->values[0]), "cc [EMAIL]");
            assert_ptr_equal(oa->values[1],
                             arr->array_value->values[1]); /* unchanged leaves are shared */
            assert_int_equal(lg_any_int(lg_attr_find(o->attributes, o->n_attributes,
                                                     "redaction.body.masked.count"),
                                        &(int64_t){0}),
                             true);
        } else {
            assert_int_equal(o->body->kvlist_value->n_values,
                             2); /* secret_token and list not allowed */
            assert_null(mget(o->body, "list"));
        }
        /* the input body is untouched */
        assert_int_equal(body->kvlist_value->n_values, 4);
        assert_string_equal(lg_any_str(mget(body, "message")), "mail bob@example.com");
        lg_batch_unref(b);
        free_processor(&f);
    }
}

/* ---- metrics ---- */

static void test_metrics_data_point_attributes(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(&f, "redaction:\n  allowed_keys: [route, client]\n  pii: {ip: true}\n");
    struct lg_batch *b = lg_batch_create(LG_SIGNAL_METRICS, 0);
    struct lg_arena *a = b->arena;
    lg_resource_metrics *rm = lg_arena_alloc(a, sizeof *rm);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    lg_scope_metrics *sm = lg_arena_alloc(a, sizeof *sm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    lg_metric *m = lg_arena_alloc(a, sizeof *m);
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = "requests";
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = lg_arena_alloc(a, sizeof *m->sum);
    opentelemetry__proto__metrics__v1__sum__init(m->sum);
    m->sum->data_points = lg_arena_alloc(a, 2 * sizeof(void *));
    for (int i = 0; i < 2; i++) {
        lg_number_dp *dp = lg_arena_alloc(a, sizeof *dp);
        opentelemetry__proto__metrics__v1__number_data_point__init(dp);
        struct tattr at[] = {
            {"route", 's', "/a"}, {"client", 's', i ? "10.0.0.9" : "web"}, {"user", 's', "bob"}};
        lg_span *tmp = tspan(a, "x", at, 3);
        dp->attributes = tmp->attributes;
        dp->n_attributes = 3;
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        dp->as_int = i + 1;
        m->sum->data_points[i] = dp;
    }
    m->sum->n_data_points = 2;
    sm->metrics = lg_arena_alloc(a, sizeof(void *));
    sm->metrics[0] = m;
    sm->n_metrics = 1;
    rm->scope_metrics = lg_arena_alloc(a, sizeof(void *));
    rm->scope_metrics[0] = sm;
    rm->n_scope_metrics = 1;
    b->req.metrics->resource_metrics = lg_arena_alloc(a, sizeof(void *));
    b->req.metrics->resource_metrics[0] = rm;
    b->req.metrics->n_resource_metrics = 1;
    b->items = lg_batch_count_items(b);
    lg_batch_ref(b);
    run(&f, b);
    const lg_metric *om =
        f.sink.got[0]->req.metrics->resource_metrics[0]->scope_metrics[0]->metrics[0];
    assert_ptr_not_equal(om, m);
    const lg_number_dp *d0 = om->sum->data_points[0], *d1 = om->sum->data_points[1];
    assert_int_equal(d0->n_attributes, 2);
    assert_null(lg_attr_find(d0->attributes, d0->n_attributes, "user"));
    assert_string_equal(lg_any_str(lg_attr_find(d1->attributes, d1->n_attributes, "client")),
                        "[IP]");
    assert_int_equal(d1->as_int, 2);
    /* the original metric is untouched */
    assert_int_equal(m->sum->data_points[0]->n_attributes, 3);
    assert_string_equal(lg_any_str(m->sum->data_points[1]->attributes[1]->value), "10.0.0.9");
    lg_batch_unref(b);
    free_processor(&f);
}

/* ---- concurrency ---- */

struct thread_arg {
    struct fixture *f;
    struct lg_batch *b;
    int failures;
};

static void *consume_loop(void *p)
{
    struct thread_arg *ta = p;
    for (int i = 0; i < 50; i++)
        if (lg_redaction_processor.consume(&ta->f->proc, ta->b) != LG_OK)
            ta->failures++;
    return NULL;
}

static void test_concurrent_consume_shares_one_batch(void **state)
{
    (void)state;
    struct fixture f;
    setup_ok(
        &f,
        "redaction:\n  allow_all_keys: true\n  llm_content: drop\n  blocked_values: ['s3cr3t']\n"
        "  pii: {email: true, credit_card: true, ip: true}\n");
    struct tattr at[] = {{"m", 's', "to bob@example.com via 10.0.0.1"},
                         {"gen_ai.prompt", 's', MARK},
                         {"n", 's', "the s3cr3t word"},
                         {"k", 's', "plain"}};
    struct lg_batch *b = one_span(at, 4);
    pthread_t th[4];
    struct thread_arg ta[4];
    for (int i = 0; i < 4; i++) {
        ta[i] = (struct thread_arg){&f, b, 0};
        assert_int_equal(pthread_create(&th[i], NULL, consume_loop, &ta[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ta[i].failures, 0);
    }
    assert_int_equal(f.sink.ngot, 200);
    for (size_t i = 0; i < f.sink.ngot; i++) {
        const lg_span *s = f.sink.got[i]->req.traces->resource_spans[0]->scope_spans[0]->spans[0];
        assert_string_equal(sstr(s, "m"), "to [EMAIL] via [IP]");
        assert_string_equal(sstr(s, "n"), "the **** word");
        assert_null(sattr(s, "gen_ai.prompt"));
    }
    /* the shared input was never written */
    const lg_span *in = b->req.traces->resource_spans[0]->scope_spans[0]->spans[0];
    assert_string_equal(lg_any_str(lg_attr_find(in->attributes, in->n_attributes, "m")),
                        "to bob@example.com via 10.0.0.1");
    assert_int_equal(
        counter(&f, "llmgate_redaction_pii_matches", "processor=\"redaction\",kind=\"email\""),
        200);
    lg_batch_unref(b);
    free_processor(&f);
}

/* ---- config errors ---- */

static void test_config_errors_name_the_path(void **state)
{
    (void)state;
    expect_config_error("redaction:\n  blocked_values: ['ok', '(unclosed']\n",
                        "redaction.blocked_values[1]", "redaction.yaml:2:");
    expect_config_error("redaction:\n  blocked_key_patterns: ['[z-a]']\n",
                        "redaction.blocked_key_patterns[0]", "invalid regular expression");
    expect_config_error("redaction:\n  allowed_values: ['*']\n", "redaction.allowed_values[0]",
                        NULL);
    expect_config_error("redaction:\n  ignored_key_patterns: ['(?<bad']\n",
                        "redaction.ignored_key_patterns[0]", NULL);
    expect_config_error("redaction:\n  hash_function: crc32\n", "redaction.hash_function",
                        "unknown hash_function");
    expect_config_error("redaction:\n  bogus_key: 1\n", "redaction.bogus_key", NULL);
    expect_config_error("redaction:\n  pii: {phone: true}\n", "redaction.pii.phone", NULL);
    expect_config_error("redaction:\n  summary: verbose\n", "redaction.summary", NULL);
    expect_config_error("redaction:\n  llm_content: encrypt\n", "redaction.llm_content", NULL);
    expect_config_error("redaction:\n  hash_function: md5\n  masking_string: X\n",
                        "redaction.masking_string", NULL);
    expect_config_error("redaction:\n  url_sanitizer: {enabled: true, attributes: [url]}\n",
                        "redaction.url_sanitizer.enabled", "not implemented");
    expect_config_error("redaction:\n  db_sanitizer:\n    sql: {enabled: true}\n",
                        "redaction.db_sanitizer.sql.enabled", "not implemented");
    /* disabled sanitizers load, as a shared Collector config would */
    struct fixture f;
    setup_ok(&f, "redaction:\n  allow_all_keys: true\n  url_sanitizer: {enabled: false}\n"
                 "  db_sanitizer: {sql: {enabled: false}}\n  hash_function: SHA3\n");
    free_processor(&f);
}

/* ---- throughput (printed) ---- */

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_one(const char *label, const char *yaml, bool matching)
{
    struct fixture f;
    setup_ok(&f, yaml);
    enum { SPANS = 1000, ROUNDS = 10 };
    const char *msg =
        matching ? "contact bob@example.com from 10.0.0.1" : "GET /api/v1/chat/completions";
    struct tattr at[] = {{"http.method", 's', "POST"},
                         {"http.route", 's', msg},
                         {"gen_ai.request.model", 's', "gpt-4o"},
                         {"gen_ai.usage.input_tokens", 'i', "1200"},
                         {"gen_ai.usage.output_tokens", 'i', "300"},
                         {"service.version", 's', "1.54.3"},
                         {"server.address", 's', "api.openai.com"},
                         {"user.id", 's', "u-1234567"},
                         {"llm.finish_reason", 's', "stop"},
                         {"net.peer.port", 'i', "443"}};
    const struct tattr *sets[SPANS];
    size_t ns[SPANS];
    for (size_t i = 0; i < SPANS; i++) {
        sets[i] = at;
        ns[i] = LG_ARRAY_LEN(at);
    }
    struct lg_batch *b = spans_batch(sets, ns, SPANS);
    double t0 = cpu_seconds();
    for (int r = 0; r < ROUNDS; r++) {
        assert_int_equal(lg_redaction_processor.consume(&f.proc, b), LG_OK);
        test_sink_free(&f.sink); /* drop what the sink kept so memory stays flat */
        test_sink_init(&f.sink, &f.sink_c);
    }
    double dt = cpu_seconds() - t0;
    printf("# bench %-38s %9.0f spans/CPU-second (%d spans x 10 attributes)\n", label,
           SPANS * ROUNDS / (dt > 0 ? dt : 1e-9), SPANS * ROUNDS);
    lg_batch_unref(b);
    free_processor(&f);
}

static void test_bench_prints_throughput(void **state)
{
    (void)state;
    const char *full =
        "redaction:\n  allow_all_keys: true\n  llm_content: drop\n  blocked_values: "
        "['4[0-9]{15}']\n"
        "  blocked_key_patterns: ['.*password.*']\n"
        "  pii: {email: true, credit_card: true, bearer_token: true, api_keys: true, ip: true}\n";
    bench_one("all masks, nothing matches", full, false);
    bench_one("all masks, 2 matches per span", full, true);
    bench_one("allowed_keys (10 keys, 3 allowed)",
              "redaction:\n  allowed_keys: [http.method, http.route, user.id]\n", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_keys_remove_the_rest),
        cmocka_unit_test(test_empty_allowed_keys_fail_closed),
        cmocka_unit_test(test_allow_all_keys_untouched_batch_passes_as_is),
        cmocka_unit_test(test_ignored_keys_and_patterns),
        cmocka_unit_test(test_blocked_key_patterns),
        cmocka_unit_test(test_blocked_and_allowed_values),
        cmocka_unit_test(test_masking_string),
        cmocka_unit_test(test_hash_functions),
        cmocka_unit_test(test_redact_all_types),
        cmocka_unit_test(test_summary_levels),
        cmocka_unit_test(test_summary_merges_with_earlier_pass),
        cmocka_unit_test(test_summary_named_keys_get_no_exemption),
        cmocka_unit_test(test_resource_and_event_attributes),
        cmocka_unit_test(test_pii_masks_in_values),
        cmocka_unit_test(test_pii_hashed_with_hash_function),
        cmocka_unit_test(test_llm_content_drop_every_convention),
        cmocka_unit_test(test_llm_content_drop_overrides_ignored_keys),
        cmocka_unit_test(test_llm_content_hash),
        cmocka_unit_test(test_llm_content_hash_still_obeys_allowed_keys),
        cmocka_unit_test(test_llm_content_keep_is_collector_behaviour),
        cmocka_unit_test(test_logs_body_and_content_events),
        cmocka_unit_test(test_logs_map_body_walked),
        cmocka_unit_test(test_metrics_data_point_attributes),
        cmocka_unit_test(test_concurrent_consume_shares_one_batch),
        cmocka_unit_test(test_config_errors_name_the_path),
        cmocka_unit_test(test_bench_prints_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
