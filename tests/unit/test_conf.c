/* tests/unit/test_conf.c — specification of the config loader (core/conf.c): YAML to tree,
 * env expansion, merging of sources, error messages with file:line:col and path, typed
 * field tables, Go durations and print-config round trips. The environment is a fake
 * (fake_getenv) so results never depend on the machine running the tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/conf.h"

/* ------------------------------------------------------------------ helpers ---- */

struct env_var {
    const char *name, *value;
};

struct fake_env {
    const struct env_var *vars;
    size_t n;
};

static const char *fake_getenv(const char *name, void *ctx)
{
    const struct fake_env *env = ctx;
    for (size_t i = 0; env != NULL && i < env->n; i++)
        if (strcmp(env->vars[i].name, name) == 0)
            return env->vars[i].value;
    return NULL;
}

static const struct env_var test_vars[] = {
    {"HOST", "collector"},
    {"PORT", "4317"},
    {"EMPTY", ""},
    {"DOLLAR_VALUE", "${env:HOST}"},
    {"BOOL", "true"},
    {"NULL_WORD", "null"},
    {"COLON_SPACE", "a: b"},
};
static struct fake_env test_env = {test_vars, LG_ARRAY_LEN(test_vars)};
static struct fake_env no_env = {NULL, 0};

static int load_named(const char *name, const char *text, struct fake_env *env,
                      struct lg_conf_doc *doc, struct lg_err *err)
{
    struct lg_conf_source src = {.text = text, .name = name};
    return lg_conf_load(&src, 1, fake_getenv, env, doc, err);
}

static int load(const char *text, struct lg_conf_doc *doc, struct lg_err *err)
{
    return load_named("t.yaml", text, &test_env, doc, err);
}

/** Loads text that must be valid. */
static struct lg_conf_doc must_load(const char *text)
{
    struct lg_conf_doc doc = {0};
    struct lg_err err = {{0}};
    int rc = load(text, &doc, &err);
    if (rc != 0)
        fail_msg("load failed: %s", err.msg);
    return doc;
}

/** Loads text that must fail with exactly `msg`. */
static void expect_load_error(const char *text, const char *msg)
{
    struct lg_conf_doc doc = {0};
    struct lg_err err = {{0}};
    assert_int_equal(load(text, &doc, &err), LG_EINVAL);
    assert_string_equal(err.msg, msg);
    assert_null(doc.arena);
    assert_null(doc.root);
}

/** Follows a YAML path written like node paths ("a.b[1].c") and checks the node's path. */
static const struct lg_node *find(const struct lg_node *root, const char *path)
{
    const struct lg_node *n = root;
    const char *p = path;
    while (n != NULL && *p) {
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            n = n->type == LG_NODE_SEQ && i < n->nitems ? n->items[i] : NULL;
            p = end + 1;
        } else {
            if (*p == '.')
                p++;
            size_t len = strcspn(p, ".[");
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)len, p);
            n = lg_node_get(n, key);
            p += len;
        }
    }
    if (n == NULL)
        fail_msg("no node at %s", path);
    assert_string_equal(n->path, path);
    return n;
}

static void assert_scalar(const struct lg_node *n, const char *text, bool quoted)
{
    assert_int_equal(n->type, LG_NODE_SCALAR);
    assert_string_equal(n->scalar, text);
    assert_int_equal(n->quoted, quoted);
}

static void assert_pos(const struct lg_node *n, const char *file, int line, int col)
{
    assert_string_equal(n->file, file);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

/** Same shape and text (and quoting when check_quoted); positions are not compared. */
static bool tree_equal(const struct lg_node *a, const struct lg_node *b, bool check_quoted)
{
    if (a->type != b->type || strcmp(a->path, b->path) != 0)
        return false;
    switch (a->type) {
    case LG_NODE_NULL:
        return true;
    case LG_NODE_SCALAR:
        return strcmp(a->scalar, b->scalar) == 0 && (!check_quoted || a->quoted == b->quoted);
    case LG_NODE_MAP:
        if (a->npairs != b->npairs)
            return false;
        for (size_t i = 0; i < a->npairs; i++)
            if (strcmp(a->pairs[i].key, b->pairs[i].key) != 0 ||
                !tree_equal(a->pairs[i].value, b->pairs[i].value, check_quoted))
                return false;
        return true;
    case LG_NODE_SEQ:
        if (a->nitems != b->nitems)
            return false;
        for (size_t i = 0; i < a->nitems; i++)
            if (!tree_equal(a->items[i], b->items[i], check_quoted))
                return false;
        return true;
    }
    return false;
}

static char tmpdir[] = "/tmp/llmgate-test-conf-XXXXXX";

static char *write_file(const char *name, const char *text)
{
    static char paths[4][256];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

/* ------------------------------------------------------------------ YAML -> tree ---- */

static const char block_doc[] = "receivers:\n"
                                "  otlp:\n"
                                "    protocols:\n"
                                "      grpc:\n"
                                "        endpoint: 0.0.0.0:4317\n"
                                "      http: {}\n"
                                "service:\n"
                                "  pipelines:\n"
                                "    traces:\n"
                                "      receivers: [otlp]\n"
                                "      exporters:\n"
                                "        - debug\n"
                                "        - otlp/backend\n";

static const char flow_doc[] =
    "{receivers: {otlp: {protocols: {grpc: {endpoint: 0.0.0.0:4317}, http: {}}}},\n"
    " service: {pipelines: {traces: {receivers: [otlp], exporters: [debug, otlp/backend]}}}}\n";

static void test_block_and_flow_style_give_the_same_tree(void **state)
{
    struct lg_conf_doc block = must_load(block_doc);
    struct lg_conf_doc flow = must_load(flow_doc);
    assert_true(tree_equal(block.root, flow.root, true));

    assert_int_equal(block.root->type, LG_NODE_MAP);
    assert_string_equal(block.root->path, "");
    const struct lg_node *ep = find(block.root, "receivers.otlp.protocols.grpc.endpoint");
    assert_scalar(ep, "0.0.0.0:4317", false);
    assert_pos(ep, "t.yaml", 5, 9); /* map values are placed at their key */
    const struct lg_node *http = find(block.root, "receivers.otlp.protocols.http");
    assert_int_equal(http->type, LG_NODE_MAP);
    assert_int_equal(http->npairs, 0);
    const struct lg_node *exp1 = find(block.root, "service.pipelines.traces.exporters[1]");
    assert_scalar(exp1, "otlp/backend", false);
    assert_pos(exp1, "t.yaml", 13, 11); /* sequence items at the item */
    find(block.root, "service.pipelines.traces.receivers[0]");
    assert_null(lg_node_get(block.root, "exporters"));
    assert_null(lg_node_get(ep, "endpoint")); /* not a map */

    const struct lg_node *flow_ep = find(flow.root, "receivers.otlp.protocols.grpc.endpoint");
    assert_pos(flow_ep, "t.yaml", 1, 40);
    lg_conf_doc_free(&block);
    lg_conf_doc_free(&flow);
}

static void test_alias_is_a_copy_with_the_paths_of_each_use(void **state)
{
    struct lg_conf_doc doc = must_load("x-defaults: &defaults\n"
                                       "  timeout: 5s\n"
                                       "  retry_on_failure: {enabled: true}\n"
                                       "exporters:\n"
                                       "  otlp/a: *defaults\n"
                                       "  otlp/b: *defaults\n"
                                       "name: &n gateway\n"
                                       "copy: *n\n");
    const struct lg_node *a = find(doc.root, "exporters.otlp/a.timeout");
    const struct lg_node *b = find(doc.root, "exporters.otlp/b.timeout");
    assert_ptr_not_equal(a, b);
    assert_scalar(a, "5s", false);
    assert_scalar(b, "5s", false);
    assert_pos(b, "t.yaml", 2, 3); /* where the value was written */
    assert_pos(find(doc.root, "exporters.otlp/b"), "t.yaml", 6, 3);
    find(doc.root, "exporters.otlp/b.retry_on_failure.enabled");
    assert_scalar(find(doc.root, "copy"), "gateway", false);
    lg_conf_doc_free(&doc);
}

static void test_merge_keys_written_keys_win_then_earlier_merged_maps(void **state)
{
    struct lg_conf_doc doc = must_load("base: &base\n"
                                       "  endpoint: backend:4317\n"
                                       "  timeout: 5s\n"
                                       "  tls: {insecure: true}\n"
                                       "extra: &extra\n"
                                       "  timeout: 9s\n"
                                       "  compression: gzip\n"
                                       "one:\n"
                                       "  <<: *base\n"
                                       "  timeout: 10s\n"
                                       "two:\n"
                                       "  <<: [*extra, *base]\n"
                                       "three:\n"
                                       "  <<: {inline: yes}\n");
    const struct lg_node *one = find(doc.root, "one");
    assert_int_equal(one->npairs, 3);
    assert_null(lg_node_get(one, "<<"));
    assert_scalar(find(doc.root, "one.timeout"), "10s", false);
    const struct lg_node *ep = find(doc.root, "one.endpoint");
    assert_scalar(ep, "backend:4317", false);
    assert_pos(ep, "t.yaml", 2, 3);
    assert_scalar(find(doc.root, "one.tls.insecure"), "true", false);

    const struct lg_node *two = find(doc.root, "two");
    assert_int_equal(two->npairs, 4);
    assert_scalar(find(doc.root, "two.timeout"), "9s", false);
    assert_scalar(find(doc.root, "two.compression"), "gzip", false);
    assert_scalar(find(doc.root, "two.endpoint"), "backend:4317", false);
    assert_scalar(find(doc.root, "three.inline"), "yes", false);
    lg_conf_doc_free(&doc);

    /* A quoted "<<" is an ordinary key. */
    doc = must_load("m:\n  \"<<\": literal\n");
    assert_scalar(find(doc.root, "m.<<"), "literal", false);
    lg_conf_doc_free(&doc);

    expect_load_error("a:\n  <<: 5\n",
                      "t.yaml:2:3: a: a merge key (<<) needs a mapping or a list of mappings, got "
                      "a scalar");
}

static void test_nulls_and_quoting(void **state)
{
    struct lg_conf_doc doc = must_load("a: ~\n"
                                       "b: null\n"
                                       "c: Null\n"
                                       "d: NULL\n"
                                       "e:\n"
                                       "f: \"null\"\n"
                                       "g: ''\n"
                                       "h: |\n"
                                       "  line one\n"
                                       "  line two\n"
                                       "i: nil\n"
                                       "j: [~, x]\n");
    const char *nulls[] = {"a", "b", "c", "d", "e", "j[0]"};
    for (size_t i = 0; i < LG_ARRAY_LEN(nulls); i++) {
        const struct lg_node *n = find(doc.root, nulls[i]);
        assert_true(lg_node_is_null(n));
        assert_int_equal(n->type, LG_NODE_NULL);
    }
    assert_scalar(find(doc.root, "f"), "null", true);
    assert_false(lg_node_is_null(find(doc.root, "f")));
    assert_scalar(find(doc.root, "g"), "", true);
    assert_scalar(find(doc.root, "h"), "line one\nline two\n", true);
    assert_scalar(find(doc.root, "i"), "nil", false);
    assert_false(lg_node_is_null(NULL));
    lg_conf_doc_free(&doc);
}

static void test_structural_errors(void **state)
{
    expect_load_error("receivers:\n  otlp: {}\n  batch: {}\n  otlp: {}\n",
                      "t.yaml:4:3: receivers.otlp: duplicate key \"otlp\" (first defined at line "
                      "2, again at line 4)");
    expect_load_error("? [a, b]\n: 1\n",
                      "t.yaml:1:3: mapping keys must be scalars, got a sequence");
    expect_load_error("- a\n- b\n",
                      "t.yaml:1:1: the top level of a config must be a mapping, got a sequence");
    expect_load_error("just text\n",
                      "t.yaml:1:1: the top level of a config must be a mapping, got a scalar");
    expect_load_error("a: 1\n---\nb: 2\n",
                      "t.yaml:3:1: only one YAML document is allowed in a config source");
    expect_load_error("a: &a [1, *a]\n",
                      "t.yaml:1:4: a[1]: an alias refers to a node that contains it");
    expect_load_error("a: *nowhere\n", "t.yaml:1:4: YAML syntax error: found undefined alias");
}

static void test_yaml_syntax_error_has_line_and_col(void **state)
{
    expect_load_error("a:\n  b: 1\n   c: 2\n",
                      "t.yaml:3:5: YAML syntax error: mapping values are not allowed in this "
                      "context");
    expect_load_error("receivers:\n  otlp:\n    grpc: 1\n   http: 2\n",
                      "t.yaml:4:4: YAML syntax error: did not find expected key (while parsing a "
                      "block mapping)");
    expect_load_error("a:\n  b: [1, 2\nc: d\n",
                      "t.yaml:3:2: YAML syntax error: did not find expected ',' or ']' (while "
                      "parsing a flow sequence)");
}

static void test_empty_source_is_an_empty_map(void **state)
{
    const char *texts[] = {"", "# only a comment\n", "---\n"};
    for (size_t i = 0; i < LG_ARRAY_LEN(texts); i++) {
        struct lg_conf_doc doc = must_load(texts[i]);
        assert_int_equal(doc.root->type, LG_NODE_MAP);
        assert_int_equal(doc.root->npairs, 0);
        lg_conf_doc_free(&doc);
    }
}

static void test_billion_laughs_is_refused(void **state)
{
    char text[2048];
    int len = snprintf(text, sizeof text, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 9; i++) {
        len += snprintf(text + len, sizeof text - (size_t)len, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            len += snprintf(text + len, sizeof text - (size_t)len, "%s*a%d", j ? ", " : "", i - 1);
        len += snprintf(text + len, sizeof text - (size_t)len, "]\n");
    }
    struct lg_conf_doc doc = {0};
    struct lg_err err;
    assert_int_equal(load(text, &doc, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "the config expands to more than"));
    assert_null(doc.root);
}

/* ------------------------------------------------------------------ env ---- */

static void test_env_expansion_forms(void **state)
{
    struct lg_conf_doc doc = must_load("a: ${env:HOST}:${PORT}\n"
                                       "b: ${env:UNSET_VAR:-fallback}\n"
                                       "c: ${env:EMPTY:-used when empty}\n"
                                       "d: $$HOME and $${env:HOST}\n"
                                       "e: $HOME stays\n"
                                       "f: ${env:DOLLAR_VALUE}\n"
                                       "g: \"${env:BOOL}\"\n"
                                       "h: ${env:BOOL}\n"
                                       "i: ${env:EMPTY}\n"
                                       "j: ${env:UNSET_VAR:-}\n"
                                       "k: \"${env:UNSET_VAR:-}\"\n"
                                       "l:\n  - ${env:HOST}\n  - x\n"
                                       "fl: [\"${env:HOST}\", x]\n"
                                       "${env:HOST}: keys are not expanded\n"
                                       "m: costs 5$\n"
                                       "n: ${env:COLON_SPACE}\n"
                                       "o: ${UNSET_VAR:-a:b}\n");
    assert_scalar(find(doc.root, "a"), "collector:4317", false);
    assert_scalar(find(doc.root, "b"), "fallback", false);
    assert_scalar(find(doc.root, "c"), "used when empty", false);
    assert_scalar(find(doc.root, "d"), "$HOME and ${env:HOST}", false);
    assert_scalar(find(doc.root, "e"), "$HOME stays", false);
    assert_scalar(find(doc.root, "f"), "${env:HOST}", false); /* not expanded twice */
    assert_scalar(find(doc.root, "g"), "true", true);         /* keeps its quotes */
    assert_scalar(find(doc.root, "h"), "true", false);
    assert_true(lg_node_is_null(find(doc.root, "i"))); /* plain, whole, empty: null */
    assert_true(lg_node_is_null(find(doc.root, "j")));
    assert_scalar(find(doc.root, "k"), "", true);
    assert_scalar(find(doc.root, "l[0]"), "collector", false);
    assert_scalar(find(doc.root, "fl[0]"), "collector", true);
    assert_scalar(lg_node_get(doc.root, "${env:HOST}"), "keys are not expanded", false);
    assert_scalar(find(doc.root, "m"), "costs 5$", false);
    assert_scalar(find(doc.root, "n"), "a: b", false); /* not re-read as YAML */
    assert_scalar(find(doc.root, "o"), "a:b", false);
    lg_conf_doc_free(&doc);
}

static void test_missing_env_var_names_file_line_col_and_path(void **state)
{
    struct lg_conf_doc doc = {.arena = (struct lg_arena *)&doc, .root = (struct lg_node *)&doc};
    struct lg_conf_doc before = doc;
    struct lg_err err;
    int rc = load_named("gateway.yaml",
                        "receivers:\n"
                        "  otlp:\n"
                        "    protocols:\n"
                        "      grpc:\n"
                        "        endpoint: ${env:OTLP_ENDPOINT}\n",
                        &test_env, &doc, &err);
    assert_int_equal(rc, LG_EINVAL);
    assert_string_equal(err.msg,
                        "gateway.yaml:5:9: receivers.otlp.protocols.grpc.endpoint: environment "
                        "variable \"OTLP_ENDPOINT\" is not set (use ${env:OTLP_ENDPOINT:-default} "
                        "to give a default)");
    assert_memory_equal(&doc, &before, sizeof doc); /* untouched on error */

    expect_load_error("list:\n  - ok\n  - ${NOPE}\n",
                      "t.yaml:3:5: list[1]: environment variable \"NOPE\" is not set (use "
                      "${env:NOPE:-default} to give a default)");
}

static void test_env_syntax_errors(void **state)
{
    expect_load_error("a: x${env:HOST\n",
                      "t.yaml:1:1: a: unterminated \"${\" in \"x${env:HOST\" (write $$ for a "
                      "literal $)");
    expect_load_error("a: ${env:1X}\n",
                      "t.yaml:1:1: a: invalid environment variable name \"1X\" in \"${env:1X}\" "
                      "(use letters, digits and _, not starting with a digit)");
    expect_load_error("a: ${}\n",
                      "t.yaml:1:1: a: invalid environment variable name \"\" in \"${}\" (use "
                      "letters, digits and _, not starting with a digit)");
    expect_load_error("a: ${env:MY-VAR}\n",
                      "t.yaml:1:1: a: invalid environment variable name \"MY-VAR\" in "
                      "\"${env:MY-VAR}\" (use letters, digits and _, not starting with a digit)");
    expect_load_error("a: ${file:/etc/secret}\n",
                      "t.yaml:1:1: a: unsupported config provider \"file\" in "
                      "\"${file:/etc/secret}\" (only ${env:VAR} is supported; write $$ for a "
                      "literal $)");
    expect_load_error("a: ${env:A:-${env:B}}\n",
                      "t.yaml:1:1: a: nested \"${\" inside \"${env:A:-${env:B}\" is not "
                      "supported");
}

static void test_default_getenv_reads_the_process_environment(void **state)
{
    setenv("LLMGATE_TEST_CONF_VAR", "from-process", 1);
    struct lg_conf_source src = {.text = "a: ${env:LLMGATE_TEST_CONF_VAR}\n", .name = "p.yaml"};
    struct lg_conf_doc doc;
    struct lg_err err;
    assert_int_equal(lg_conf_load(&src, 1, NULL, NULL, &doc, &err), 0);
    assert_scalar(find(doc.root, "a"), "from-process", false);
    lg_conf_doc_free(&doc);
    unsetenv("LLMGATE_TEST_CONF_VAR");
}

/* ------------------------------------------------------------------ sources ---- */

static void test_sources_merge_in_order(void **state)
{
    char *base = write_file("base.yaml", "receivers:\n"
                                         "  otlp:\n"
                                         "    protocols:\n"
                                         "      grpc:\n"
                                         "        endpoint: 0.0.0.0:4317\n"
                                         "      http:\n"
                                         "        endpoint: 0.0.0.0:4318\n"
                                         "exporters:\n"
                                         "  debug:\n"
                                         "    verbosity: basic\n"
                                         "service:\n"
                                         "  pipelines:\n"
                                         "    traces:\n"
                                         "      receivers: [otlp]\n"
                                         "      exporters: [debug]\n");
    struct lg_conf_source src[] = {
        {.path = base},
        {.text = "receivers:\n"
                 "  otlp:\n"
                 "    protocols:\n"
                 "      grpc:\n"
                 "        endpoint: 127.0.0.1:5317\n"
                 "exporters:\n"
                 "  debug: ~\n"
                 "  otlp: {endpoint: backend:4317}\n"
                 "service:\n"
                 "  pipelines:\n"
                 "    traces:\n"
                 "      exporters: [otlp, debug]\n",
         .name = "overlay.yaml"},
    };
    struct lg_conf_doc doc;
    struct lg_err err;
    int rc = lg_conf_load(src, LG_ARRAY_LEN(src), fake_getenv, &test_env, &doc, &err);
    if (rc)
        fail_msg("%s", err.msg);
    const struct lg_node *grpc = find(doc.root, "receivers.otlp.protocols.grpc.endpoint");
    assert_scalar(grpc, "127.0.0.1:5317", false);
    assert_pos(grpc, "overlay.yaml", 5, 9);
    const struct lg_node *http = find(doc.root, "receivers.otlp.protocols.http.endpoint");
    assert_scalar(http, "0.0.0.0:4318", false);
    assert_pos(http, base, 7, 9);
    assert_true(lg_node_is_null(find(doc.root, "exporters.debug"))); /* later value replaces */
    assert_scalar(find(doc.root, "exporters.otlp.endpoint"), "backend:4317", false);
    const struct lg_node *exps = find(doc.root, "service.pipelines.traces.exporters");
    assert_int_equal(exps->nitems, 2); /* sequences are replaced, not appended */
    assert_scalar(find(doc.root, "service.pipelines.traces.exporters[0]"), "otlp", false);
    assert_scalar(find(doc.root, "service.pipelines.traces.receivers[0]"), "otlp", false);
    /* Keys keep their first order; new ones come after. */
    const struct lg_node *exporters = find(doc.root, "exporters");
    assert_string_equal(exporters->pairs[0].key, "debug");
    assert_string_equal(exporters->pairs[1].key, "otlp");
    lg_conf_doc_free(&doc);
}

static void test_unreadable_file_is_named(void **state)
{
    struct lg_conf_source src[] = {
        {.text = "a: 1\n", .name = "ok.yaml"},
        {.path = "/nonexistent/llmgate.yaml"},
    };
    struct lg_conf_doc doc = {0};
    struct lg_err err;
    assert_int_equal(lg_conf_load(src, 2, fake_getenv, &test_env, &doc, &err), LG_EIO);
    assert_string_equal(err.msg,
                        "cannot read config file \"/nonexistent/llmgate.yaml\": No such file or "
                        "directory");
    assert_null(doc.root);

    struct lg_conf_source dir = {.path = tmpdir};
    assert_int_equal(lg_conf_load(&dir, 1, fake_getenv, &test_env, &doc, &err), LG_EIO);
    char want_dir[512];
    snprintf(want_dir, sizeof want_dir, "cannot read config file \"%s\": Is a directory", tmpdir);
    assert_string_equal(err.msg, want_dir);

    /* Errors inside a file name the file. */
    char *bad = write_file("bad.yaml", "a:\n  b: ${env:NOT_SET_ANYWHERE}\n");
    struct lg_conf_source one = {.path = bad};
    assert_int_equal(lg_conf_load(&one, 1, fake_getenv, &test_env, &doc, &err), LG_EINVAL);
    char want[512];
    snprintf(want, sizeof want,
             "%s:2:3: a.b: environment variable \"NOT_SET_ANYWHERE\" is not set (use "
             "${env:NOT_SET_ANYWHERE:-default} to give a default)",
             bad);
    assert_string_equal(err.msg, want);
}

static void test_no_sources_is_an_empty_map(void **state)
{
    struct lg_conf_doc doc;
    struct lg_err err;
    assert_int_equal(lg_conf_load(NULL, 0, NULL, NULL, &doc, &err), 0);
    assert_int_equal(doc.root->type, LG_NODE_MAP);
    assert_int_equal(doc.root->npairs, 0);
    lg_conf_doc_free(&doc);
    lg_conf_doc_free(&doc); /* a freed doc is zeroed, freeing again is harmless */
}

static void test_conf_error_format(void **state)
{
    struct lg_conf_doc doc = must_load("a:\n  b: 1\n");
    struct lg_err err;
    assert_int_equal(lg_conf_error(&err, find(doc.root, "a.b"), "bad %s", "thing"), LG_EINVAL);
    assert_string_equal(err.msg, "t.yaml:2:3: a.b: bad thing");
    lg_conf_error(&err, doc.root, "at the root");
    assert_string_equal(err.msg, "t.yaml:1:1: at the root");
    lg_conf_error(&err, NULL, "no position %d", 7);
    assert_string_equal(err.msg, "no position 7");
    assert_int_equal(lg_conf_error(NULL, doc.root, "x"), LG_EINVAL);
    lg_conf_doc_free(&doc);
}

/* ------------------------------------------------------------------ dump ---- */

static void test_dump_round_trips(void **state)
{
    const char *text = "receivers:\n"
                       "  otlp: &otlp\n"
                       "    protocols: {grpc: {endpoint: \"${env:HOST}:4317\"}, http: {}}\n"
                       "copy: *otlp\n"
                       "merged: {<<: *otlp, extra: 1}\n"
                       "quoted: '007'\n"
                       "plain: 007\n"
                       "literal: |\n"
                       "  line one\n"
                       "  line two\n"
                       "nothing: ~\n"
                       "empty_seq: []\n"
                       "list: [a, 'b', ~, {k: v}]\n"
                       "dollars: $$HOME ${env:DOLLAR_VALUE} $PATH\n"
                       "\"<<\": not a merge\n"
                       "\"\": empty key\n"
                       "tricky: \"a: b # not a comment\"\n"
                       "unicode: \"caf\xc3\xa9 \xe2\x86\x92 ok\"\n"
                       "long: \"" /* longer than any folding width */
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       " bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                       "\"\n";
    struct lg_conf_doc doc = must_load(text);
    char *out = lg_conf_dump(doc.root);
    assert_non_null(out);
    /* Reloaded with an empty environment: values are already expanded, $ is written $$. */
    struct lg_conf_doc again;
    struct lg_err err;
    if (load_named("dump.yaml", out, &no_env, &again, &err) != 0)
        fail_msg("reloading the dump failed: %s\n%s", err.msg, out);
    assert_true(tree_equal(doc.root, again.root, true));
    assert_scalar(find(again.root, "dollars"), "$HOME ${env:HOST} $PATH", false);
    assert_scalar(find(again.root, "receivers.otlp.protocols.grpc.endpoint"), "collector:4317",
                  true);
    assert_non_null(strstr(out, "quoted: '007'\n"));
    assert_non_null(strstr(out, "plain: 007\n"));
    assert_non_null(strstr(out, "nothing: null\n"));
    assert_non_null(strstr(out, "'<<': not a merge\n"));
    assert_null(strstr(out, "{grpc")); /* block style */
    free(out);
    lg_conf_doc_free(&again);
    lg_conf_doc_free(&doc);

    /* Plain values that would not read back the same are quoted; they stay strings. */
    doc = must_load("n: ${env:NULL_WORD}\nc: ${env:COLON_SPACE}\n");
    out = lg_conf_dump(doc.root);
    assert_non_null(out);
    assert_int_equal(load_named("dump.yaml", out, &no_env, &again, &err), 0);
    assert_true(tree_equal(doc.root, again.root, false));
    assert_scalar(find(again.root, "n"), "null", true);
    assert_scalar(find(again.root, "c"), "a: b", true);
    free(out);
    lg_conf_doc_free(&again);
    lg_conf_doc_free(&doc);

    out = lg_conf_dump(NULL);
    assert_null(out);
}

/* ------------------------------------------------------------------ durations ---- */

static void test_go_durations_parse(void **state)
{
    static const struct {
        const char *text;
        int64_t ns;
    } good[] = {
        {"0", 0},
        {"-0", 0},
        {"200ms", 200000000},
        {"5s", 5000000000},
        {"1m30s", 90000000000},
        {"1.5s", 1500000000},
        {".5s", 500000000},
        {"1.s", 1000000000},
        {"1h", 3600000000000},
        {"-2s", -2000000000},
        {"+5ms", 5000000},
        {"100ns", 100},
        {"1us", 1000},
        {"1\xc2\xb5s", 1000},
        {"1\xce\xbcs", 1000},
        {"1h2m3s4ms5us6ns", 3723004005006},
        {"0.000000001s", 1},
        {"2562047h47m16.854775807s", INT64_MAX},
        {"-2562047h47m16.854775808s", INT64_MIN},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(good); i++) {
        int64_t ns = -42;
        if (lg_parse_duration_str(good[i].text, &ns) != 0)
            fail_msg("\"%s\" should parse", good[i].text);
        if (ns != good[i].ns)
            fail_msg("\"%s\": got %lld, want %lld", good[i].text, (long long)ns,
                     (long long)good[i].ns);
    }
    static const char *const bad[] = {
        "", "5", "5 seconds", "s", "1x", ".s", "-", "1.2.3s", " 5s", "5s ", "1d",
        "9223372036854775808ns", "2562048h", "2562047h47m16.854775808s", "1e3s",
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(bad); i++) {
        int64_t ns = 0;
        if (lg_parse_duration_str(bad[i], &ns) == 0)
            fail_msg("\"%s\" should not parse (got %lld)", bad[i], (long long)ns);
    }
    int64_t ns;
    assert_int_equal(lg_parse_duration_str(NULL, &ns), LG_EINVAL);
}

static void test_go_durations_format(void **state)
{
    static const struct {
        int64_t ns;
        const char *text;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1500, "1.5\xc2\xb5s"},
        {200000000, "200ms"},
        {1500000000, "1.5s"},
        {90000000000, "1m30s"},
        {3600000000000, "1h0m0s"},
        {-2000000000, "-2s"},
        {INT64_MAX, "2562047h47m16.854775807s"},
        {INT64_MIN, "-2562047h47m16.854775808s"},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        char buf[LG_DURATION_STR_MAX];
        lg_format_duration(cases[i].ns, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
        int64_t back;
        assert_int_equal(lg_parse_duration_str(buf, &back), 0);
        assert_true(back == cases[i].ns);
    }
    char small[4];
    lg_format_duration(90000000000, small, sizeof small);
    assert_string_equal(small, "1m3"); /* truncated, still terminated */
}

/* ------------------------------------------------------------------ field tables ---- */

struct grpc_conf {
    const char *endpoint;
    int64_t max_recv_msg_size_mib;
    int64_t keepalive_ns;
    bool include_metadata;
    double ratio;
    struct lg_strlist cors;
};

struct tls_conf {
    const char *cert_file;
    bool insecure;
};

struct mode_value {
    const char *mode;
    const char *seen_path;
    int calls;
};

struct recv_conf {
    struct grpc_conf grpc;
    bool has_tls;
    struct tls_conf tls;
    struct mode_value mode;
    struct lg_strlist tags;
};

static int parse_mode(const struct lg_node *n, void *dst, struct lg_arena *arena,
                      struct lg_err *err)
{
    struct mode_value *m = dst;
    m->calls++;
    m->seen_path = n->path;
    if (n->type != LG_NODE_SCALAR ||
        (strcmp(n->scalar, "fast") != 0 && strcmp(n->scalar, "safe") != 0))
        return lg_conf_error(err, n, "mode must be fast or safe");
    m->mode = n->scalar;
    return 0;
}

#define SEC (1000.0 * 1000 * 1000)

static const struct lg_conf_field grpc_fields[] = {
    LG_CONF_STRING("endpoint", "0.0.0.0:4317", struct grpc_conf, endpoint, "listen address"),
    LG_CONF_INT("max_recv_msg_size_mib", "4", struct grpc_conf, max_recv_msg_size_mib, 1, 128,
                "largest request"),
    {.key = "keepalive", .type = LG_CT_DURATION, .def = "2h",
     .offset = offsetof(struct grpc_conf, keepalive_ns), .help = "ping interval", .min = SEC,
     .max = 3 * 3600 * SEC, .present_offset = -1},
    LG_CONF_BOOL("include_metadata", "false", struct grpc_conf, include_metadata, "metadata"),
    LG_CONF_DOUBLE("ratio", "0.5", struct grpc_conf, ratio, 0, 1, "a fraction"),
    LG_CONF_STRLIST("cors_allowed_origins", struct grpc_conf, cors, "origins"),
    LG_CONF_ACCEPTED("auth", "accepted, not acted on"),
    LG_CONF_END,
};

static const struct lg_conf_field tls_fields[] = {
    LG_CONF_STRING("cert_file", NULL, struct tls_conf, cert_file, "certificate"),
    LG_CONF_BOOL("insecure", "true", struct tls_conf, insecure, "no TLS"),
    LG_CONF_END,
};

static const struct lg_conf_field recv_fields[] = {
    LG_CONF_SECTION("grpc", struct recv_conf, grpc, grpc_fields, "gRPC server"),
    LG_CONF_SECTION_OPT("tls", struct recv_conf, tls, has_tls, tls_fields, "TLS"),
    LG_CONF_CUSTOM("mode", "fast", struct recv_conf, mode, parse_mode, "fast or safe"),
    {.key = "tags", .type = LG_CT_STRLIST, .def = "[a, b]",
     .offset = offsetof(struct recv_conf, tags), .help = "tags", .present_offset = -1},
    LG_CONF_END,
};

/** What apply_text() leaves alive for the test to read (strings point into both). */
struct applied {
    struct lg_conf_doc doc;
    struct lg_arena *arena;
};

static void applied_free(struct applied *a)
{
    lg_arena_destroy(a->arena);
    lg_conf_doc_free(&a->doc);
    *a = (struct applied){0};
}

/** Applies recv_fields to the node at `path` in text (or to nothing when path is NULL, with
 *  receivers.otlp as context). Returns the rc; err and out are filled. */
static int apply_text(struct applied *a, const char *text, const char *path,
                      struct recv_conf *out, struct lg_err *err)
{
    a->doc = must_load(text);
    a->arena = lg_arena_create(0);
    assert_non_null(a->arena);
    memset(out, 0x5a, sizeof *out); /* apply must not rely on a zeroed struct */
    out->mode.calls = 0;
    const struct lg_node *n = path ? find(a->doc.root, path) : NULL;
    const struct lg_node *ctx = path ? n : find(a->doc.root, "receivers.otlp");
    return lg_conf_apply(recv_fields, n, ctx, out, a->arena, err);
}

static void expect_apply_error(const char *text, const char *path, const char *msg)
{
    struct applied a;
    struct recv_conf c;
    struct lg_err err;
    assert_int_equal(apply_text(&a, text, path, &c, &err), LG_EINVAL);
    assert_string_equal(err.msg, msg);
    applied_free(&a);
}

static void test_defaults_applied_when_keys_are_absent(void **state)
{
    struct applied a;
    struct recv_conf c;
    struct lg_err err;
    int rc = apply_text(&a, "receivers:\n  otlp:\n", NULL, &c, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(c.grpc.endpoint, "0.0.0.0:4317");
    assert_int_equal(c.grpc.max_recv_msg_size_mib, 4);
    assert_true(c.grpc.keepalive_ns == 2 * 3600 * INT64_C(1000000000));
    assert_false(c.grpc.include_metadata);
    assert_true(c.grpc.ratio == 0.5);
    assert_int_equal(c.grpc.cors.n, 0);
    assert_null(c.grpc.cors.items);
    assert_false(c.has_tls);
    assert_null(c.tls.cert_file);
    assert_true(c.tls.insecure);
    assert_int_equal(c.mode.calls, 1);
    assert_string_equal(c.mode.mode, "fast");
    /* An absent map takes its path from the context node. */
    assert_string_equal(c.mode.seen_path, "receivers.otlp.mode");
    assert_int_equal(c.tags.n, 2);
    assert_string_equal(c.tags.items[0], "a");
    assert_string_equal(c.tags.items[1], "b");

    applied_free(&a);

    /* A null map (`otlp:`) means the same as an absent one. */
    rc = apply_text(&a, "receivers:\n  otlp:\n", "receivers.otlp", &c, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.grpc.endpoint, "0.0.0.0:4317");
    assert_false(c.has_tls);
    assert_string_equal(c.mode.seen_path, "receivers.otlp.mode");
    applied_free(&a);
}

static void test_values_override_defaults(void **state)
{
    struct applied a;
    struct recv_conf c;
    struct lg_err err;
    int rc = apply_text(&a, "otlp:\n"
                        "  grpc:\n"
                        "    endpoint: 127.0.0.1:9999\n"
                        "    max_recv_msg_size_mib: \"16\"\n"
                        "    keepalive: 1m30s\n"
                        "    include_metadata: True\n"
                        "    ratio: 0.25\n"
                        "    cors_allowed_origins: [https://a.example, https://b.example]\n"
                        "    auth: {authenticator: bearertokenauth}\n"
                        "  tls:\n"
                        "  mode: safe\n"
                        "  tags: []\n",
                        "otlp", &c, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(c.grpc.endpoint, "127.0.0.1:9999");
    assert_int_equal(c.grpc.max_recv_msg_size_mib, 16); /* quoted numbers are accepted */
    assert_true(c.grpc.keepalive_ns == 90 * INT64_C(1000000000));
    assert_true(c.grpc.include_metadata);
    assert_true(c.grpc.ratio == 0.25);
    assert_int_equal(c.grpc.cors.n, 2);
    assert_string_equal(c.grpc.cors.items[1], "https://b.example");
    assert_true(c.has_tls); /* present even though null */
    assert_true(c.tls.insecure);
    assert_string_equal(c.mode.mode, "safe");
    assert_string_equal(c.mode.seen_path, "otlp.mode");
    assert_int_equal(c.mode.calls, 1);
    assert_int_equal(c.tags.n, 0);
    applied_free(&a);

    /* Null values keep the default. */
    rc = apply_text(&a, "otlp:\n  grpc:\n    endpoint:\n    max_recv_msg_size_mib: ~\n"
                    "  tls: {cert_file: /etc/cert.pem, insecure: FALSE}\n  mode: ~\n",
                    "otlp", &c, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(c.grpc.endpoint, "0.0.0.0:4317");
    assert_int_equal(c.grpc.max_recv_msg_size_mib, 4);
    assert_true(c.has_tls);
    assert_string_equal(c.tls.cert_file, "/etc/cert.pem");
    assert_false(c.tls.insecure);
    assert_string_equal(c.mode.mode, "fast");
    applied_free(&a);
}

static const char otlp_prefix[] = "receivers:\n"
                                  "  otlp:\n"
                                  "    protocols:\n";

static void expect_grpc_error(const char *grpc_body, const char *msg)
{
    char text[1024];
    snprintf(text, sizeof text, "%s      grpc:\n%s", otlp_prefix, grpc_body);
    struct lg_conf_doc doc = must_load(text);
    struct lg_arena *arena = lg_arena_create(0);
    struct grpc_conf g;
    struct lg_err err;
    const struct lg_node *n = find(doc.root, "receivers.otlp.protocols.grpc");
    assert_int_equal(lg_conf_apply(grpc_fields, n, n, &g, arena, &err), LG_EINVAL);
    assert_string_equal(err.msg, msg);
    lg_arena_destroy(arena);
    lg_conf_doc_free(&doc);
}

static void test_unknown_key_lists_the_known_keys(void **state)
{
    expect_grpc_error("        endpoitn: 0.0.0.0:4317\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.endpoitn: unknown key "
                      "\"endpoitn\" (known keys: endpoint, max_recv_msg_size_mib, keepalive, "
                      "include_metadata, ratio, cors_allowed_origins, auth)");
}

static void test_bad_values_are_named(void **state)
{
    expect_grpc_error("        keepalive: 5 seconds\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.keepalive: expected a duration "
                      "such as 200ms, 5s or 1m30s, got \"5 seconds\"");
    expect_grpc_error("        keepalive: 30\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.keepalive: expected a duration "
                      "such as 200ms, 5s or 1m30s, got \"30\"");
    expect_grpc_error("        include_metadata: yes\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.include_metadata: expected true "
                      "or false, got \"yes\"");
    expect_grpc_error("        max_recv_msg_size_mib: abc\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.max_recv_msg_size_mib: expected "
                      "a whole number, got \"abc\"");
    expect_grpc_error("        max_recv_msg_size_mib: 4.5\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.max_recv_msg_size_mib: expected "
                      "a whole number, got \"4.5\"");
    expect_grpc_error("        max_recv_msg_size_mib: [4]\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.max_recv_msg_size_mib: expected "
                      "a whole number, got a sequence");
    expect_grpc_error("        max_recv_msg_size_mib: 99999999999999999999\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.max_recv_msg_size_mib: whole "
                      "number out of range (-9223372036854775808 to 9223372036854775807), got "
                      "\"99999999999999999999\"");
    expect_grpc_error("        ratio: nan\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.ratio: expected a number, got "
                      "\"nan\"");
    expect_grpc_error("        endpoint: {host: x}\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.endpoint: expected a string, got "
                      "a mapping");
    expect_grpc_error("        cors_allowed_origins: https://a.example\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.cors_allowed_origins: expected a "
                      "list, got a scalar");
    expect_grpc_error("        cors_allowed_origins: [ok, [nested]]\n",
                      "t.yaml:5:36: receivers.otlp.protocols.grpc.cors_allowed_origins[1]: "
                      "expected a string, got a sequence");
}

static void test_out_of_bounds(void **state)
{
    expect_grpc_error("        max_recv_msg_size_mib: 500\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.max_recv_msg_size_mib: must be "
                      "between 1 and 128, got 500");
    expect_grpc_error("        keepalive: 5h\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.keepalive: must be between 1s "
                      "and 3h0m0s, got 5h0m0s");
    expect_grpc_error("        keepalive: 500ms\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.keepalive: must be between 1s "
                      "and 3h0m0s, got 500ms");
    expect_grpc_error("        ratio: 1.5\n",
                      "t.yaml:5:9: receivers.otlp.protocols.grpc.ratio: must be between 0 and 1, "
                      "got 1.5");
}

static void test_sections_and_custom_fields(void **state)
{
    expect_apply_error("otlp:\n  grpc: 5\n", "otlp",
                       "t.yaml:2:3: otlp.grpc: expected a mapping, got a scalar");
    expect_apply_error("otlp: [1]\n", "otlp",
                       "t.yaml:1:1: otlp: expected a mapping, got a sequence");
    expect_apply_error("otlp:\n  tls:\n    insecure: maybe\n", "otlp",
                       "t.yaml:3:5: otlp.tls.insecure: expected true or false, got \"maybe\"");
    expect_apply_error("otlp:\n  mode: slow\n", "otlp",
                       "t.yaml:2:3: otlp.mode: mode must be fast or safe");
    expect_apply_error("otlp:\n  tags: a\n", "otlp",
                       "t.yaml:2:3: otlp.tags: expected a list, got a scalar");
    expect_apply_error("otlp:\n  grpc:\n    nope: 1\n", "otlp",
                       "t.yaml:3:5: otlp.grpc.nope: unknown key \"nope\" (known keys: endpoint, "
                       "max_recv_msg_size_mib, keepalive, include_metadata, ratio, "
                       "cors_allowed_origins, auth)");
}

static void test_merged_and_aliased_values_apply_like_written_ones(void **state)
{
    struct applied a;
    struct recv_conf c;
    struct lg_err err;
    int rc = apply_text(&a, "x-grpc: &g {endpoint: \"${env:HOST}:${env:PORT}\", keepalive: 10s}\n"
                        "otlp:\n"
                        "  grpc: {<<: *g, keepalive: 20s}\n",
                        "otlp", &c, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_string_equal(c.grpc.endpoint, "collector:4317");
    assert_true(c.grpc.keepalive_ns == 20 * INT64_C(1000000000));
    applied_free(&a);
    /* An error in a merged value names where it was written and the path where it is used. */
    expect_apply_error("x-grpc: &g\n  keepalive: soon\notlp:\n  grpc:\n    <<: *g\n", "otlp",
                       "t.yaml:2:3: otlp.grpc.keepalive: expected a duration such as 200ms, 5s or "
                       "1m30s, got \"soon\"");
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_and_flow_style_give_the_same_tree),
        cmocka_unit_test(test_alias_is_a_copy_with_the_paths_of_each_use),
        cmocka_unit_test(test_merge_keys_written_keys_win_then_earlier_merged_maps),
        cmocka_unit_test(test_nulls_and_quoting),
        cmocka_unit_test(test_structural_errors),
        cmocka_unit_test(test_yaml_syntax_error_has_line_and_col),
        cmocka_unit_test(test_empty_source_is_an_empty_map),
        cmocka_unit_test(test_billion_laughs_is_refused),
        cmocka_unit_test(test_env_expansion_forms),
        cmocka_unit_test(test_missing_env_var_names_file_line_col_and_path),
        cmocka_unit_test(test_env_syntax_errors),
        cmocka_unit_test(test_default_getenv_reads_the_process_environment),
        cmocka_unit_test(test_sources_merge_in_order),
        cmocka_unit_test(test_unreadable_file_is_named),
        cmocka_unit_test(test_no_sources_is_an_empty_map),
        cmocka_unit_test(test_conf_error_format),
        cmocka_unit_test(test_dump_round_trips),
        cmocka_unit_test(test_go_durations_parse),
        cmocka_unit_test(test_go_durations_format),
        cmocka_unit_test(test_defaults_applied_when_keys_are_absent),
        cmocka_unit_test(test_values_override_defaults),
        cmocka_unit_test(test_unknown_key_lists_the_known_keys),
        cmocka_unit_test(test_bad_values_are_named),
        cmocka_unit_test(test_out_of_bounds),
        cmocka_unit_test(test_sections_and_custom_fields),
        cmocka_unit_test(test_merged_and_aliased_values_apply_like_written_ones),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[sizeof tmpdir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed;
}
