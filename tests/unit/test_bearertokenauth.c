/* tests/unit/test_bearertokenauth.c — the bearertokenauth extension and core/auth.h: exact
 * header matching (scheme, token, lengths), client headers, token files re-read when they
 * change, config errors, and resolving an authenticator from a receiver's config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/auth.h"
#include "core/runtime.h"
#include "sink.h"

extern const struct lg_component_type lg_bearertokenauth_extension;

struct fixture {
    struct lg_conf_doc doc;
    struct lg_component c;
    struct lg_arena *arena;
};

/* Creates (and starts, when `start`) the extension from `bearertokenauth: {...}` YAML. */
static int make_ext(struct fixture *f, const char *yaml, bool start, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    struct lg_conf_source src = {.text = yaml, .name = "auth.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->arena = lg_arena_create(0);
    f->c.type = &lg_bearertokenauth_extension;
    f->c.id = "bearertokenauth";
    f->c.conf_node = lg_node_get(f->doc.root, "bearertokenauth");
    f->c.conf = lg_arena_calloc(f->arena, 1, lg_bearertokenauth_extension.conf_size);
    rc = lg_conf_apply(lg_bearertokenauth_extension.fields, f->c.conf_node, f->doc.root, f->c.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_bearertokenauth_extension.create(&f->c, err);
    if (rc == LG_OK && start)
        rc = lg_bearertokenauth_extension.start(&f->c, err);
    return rc;
}

static void free_ext(struct fixture *f)
{
    if (f->c.state)
        lg_bearertokenauth_extension.destroy(&f->c);
    if (f->arena)
        lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
}

static bool check(struct fixture *f, const char *v)
{
    return lg_auth_check(f->c.state, v, v ? strlen(v) : 0);
}

static void test_exact_header_value_is_accepted_and_everything_else_refused(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_ext(&f, "bearertokenauth: {token: s3cret}", true, &err), LG_OK);
    assert_true(check(&f, "Bearer s3cret"));
    /* Same length, differing in the last byte and in the first: both refused. */
    assert_false(check(&f, "Bearer s3creu"));
    assert_false(check(&f, "Xearer s3cret"));
    /* Wrong scheme, scheme case, no scheme, extra bytes, prefixes, missing header. */
    assert_false(check(&f, "Basic s3cret"));
    assert_false(check(&f, "bearer s3cret"));
    assert_false(check(&f, "s3cret"));
    assert_false(check(&f, "Bearer s3cret "));
    assert_false(check(&f, "Bearer s3cretX"));
    assert_false(check(&f, "Bearer s3cre"));
    assert_false(check(&f, "Bearer "));
    assert_false(check(&f, ""));
    assert_false(check(&f, NULL));
    /* A value with an embedded NUL is compared over its whole length. */
    assert_false(lg_auth_check(f.c.state, "Bearer s3cret\0x", 15));
    assert_string_equal(lg_auth_header_name(f.c.state), "Authorization");
    assert_string_equal(lg_auth_grpc_metadata_key(f.c.state), "authorization");
    free_ext(&f);
}

static void test_custom_scheme_and_header(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_ext(&f, "bearertokenauth: {token: abc, scheme: Token, header: X-Api-Key}", true, &err), LG_OK);
    assert_true(check(&f, "Token abc"));
    assert_false(check(&f, "Bearer abc"));
    assert_string_equal(lg_auth_header_name(f.c.state), "X-Api-Key");
    assert_string_equal(lg_auth_grpc_metadata_key(f.c.state), "x-api-key");
    free_ext(&f);
    /* An empty scheme: the header is the bare token. */
    assert_int_equal(make_ext(&f, "bearertokenauth: {token: abc, scheme: \"\"}", true, &err), LG_OK);
    assert_true(check(&f, "abc"));
    assert_false(check(&f, " abc"));
    free_ext(&f);
}

static void test_client_header_and_buffer_sizes(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_ext(&f, "bearertokenauth: {token: t0k}", true, &err), LG_OK);
    char name[LG_AUTH_NAME_MAX], value[LG_AUTH_VALUE_MAX];
    assert_int_equal(lg_auth_client_header(f.c.state, name, sizeof name, value, sizeof value), LG_OK);
    assert_string_equal(name, "Authorization");
    assert_string_equal(value, "Bearer t0k");
    char small[10]; /* "Bearer t0k" needs 11 with the NUL */
    assert_int_equal(lg_auth_client_header(f.c.state, name, sizeof name, small, sizeof small), LG_ETOOBIG);
    assert_int_equal(lg_auth_client_header(f.c.state, small, 5, value, sizeof value), LG_ETOOBIG);
    free_ext(&f);
}

static void write_file(const char *path, const char *text)
{
    /* Written beside and renamed into place, as a secret rotation does. */
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_token_file_is_trimmed_and_reread_when_it_changes(void **state)
{
    (void)state;
    char dir[] = "/tmp/lg-bearer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], yaml[400];
    snprintf(path, sizeof path, "%s/token", dir);
    write_file(path, "first-token\n");
    snprintf(yaml, sizeof yaml, "bearertokenauth: {filename: \"%s\"}", path);
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_ext(&f, yaml, true, &err), LG_OK);
    assert_true(check(&f, "Bearer first-token"));
    assert_false(check(&f, "Bearer first-token\n"));

    write_file(path, "  second-token\r\n");
    /* Re-read within about a second (the file is looked at once per second at most). */
    bool seen = false;
    for (int i = 0; i < 60 && !seen; i++) {
        seen = check(&f, "Bearer second-token");
        if (!seen) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_true(seen);
    assert_false(check(&f, "Bearer first-token"));
    char name[LG_AUTH_NAME_MAX], value[LG_AUTH_VALUE_MAX];
    assert_int_equal(lg_auth_client_header(f.c.state, name, sizeof name, value, sizeof value), LG_OK);
    assert_string_equal(value, "Bearer second-token");

    /* A vanished or empty file keeps the last good token. */
    write_file(path, "\n");
    unlink(path);
    struct timespec ts = {1, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    assert_true(check(&f, "Bearer second-token"));
    free_ext(&f);
    rmdir(dir);
}

static void test_config_errors_name_the_path(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err = {{0}};
    assert_int_equal(make_ext(&f, "bearertokenauth: {token: a, filename: /x}", false, &err), LG_EINVAL);
    assert_string_equal(err.msg, "auth.yaml:1:1: bearertokenauth: exactly one of token and filename must be set");
    free_ext(&f);
    assert_int_equal(make_ext(&f, "bearertokenauth: {scheme: Bearer}", false, &err), LG_EINVAL);
    assert_string_equal(err.msg, "auth.yaml:1:1: bearertokenauth: exactly one of token and filename must be set");
    free_ext(&f);
    assert_int_equal(make_ext(&f, "bearertokenauth: {token: a, header: \"X Y\"}", false, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "bearertokenauth.header: must be an HTTP header name"));
    free_ext(&f);
    assert_int_equal(make_ext(&f, "bearertokenauth: {filename: /nonexistent/llmgate-token}", true, &err), LG_EIO);
    assert_non_null(strstr(err.msg, "extensions.bearertokenauth.filename: cannot open token file \"/nonexistent/llmgate-token\""));
    free_ext(&f);
}

/* ---- resolving from a receiver's config ---- */

static int build(struct lg_runtime *rt, const char *yaml, struct lg_err *err)
{
    struct lg_conf_source src = {.text = yaml, .name = "t.yaml"};
    struct lg_conf_doc doc;
    memset(rt, 0, sizeof *rt);
    int rc = lg_conf_load(&src, 1, NULL, NULL, &doc, err);
    if (rc != LG_OK)
        return rc;
    return lg_runtime_build(rt, &doc, err);
}

#define RECV_AUTH(id) "receivers:\n  otlp:\n    protocols:\n      grpc:\n        auth:\n          authenticator: " id "\n"
#define EXT "extensions:\n  bearertokenauth:\n    token: x\n"
#define PIPE "exporters:\n  debug:\nservice:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [debug]\n"

static void test_receiver_resolves_its_authenticator(void **state)
{
    (void)state;
    struct lg_runtime rt;
    struct lg_err err = {{0}};
    /* Listed in service.extensions: fine. */
    int rc = build(&rt, RECV_AUTH("bearertokenauth") EXT PIPE "  extensions: [bearertokenauth]\n", &err);
    lg_runtime_destroy(&rt);
    assert_int_equal(rc, LG_OK);
    /* Defined but not enabled. */
    rc = build(&rt, RECV_AUTH("bearertokenauth") EXT PIPE, &err);
    lg_runtime_destroy(&rt);
    assert_int_equal(rc, LG_EINVAL);
    if (strstr(err.msg, "t.yaml:6:11: receivers.otlp.protocols.grpc.auth.authenticator: authenticator \"bearertokenauth\" is not listed in service.extensions") == NULL)
        fail_msg("%s", err.msg);
    assert_non_null(strstr(err.msg, "t.yaml:6:11: receivers.otlp.protocols.grpc.auth.authenticator: authenticator \"bearertokenauth\" is not listed in service.extensions"));
    /* Not an authenticator. */
    rc = build(&rt, RECV_AUTH("health_check") "extensions:\n  health_check:\n" PIPE "  extensions: [health_check]\n", &err);
    lg_runtime_destroy(&rt);
    assert_int_equal(rc, LG_EINVAL);
    assert_non_null(strstr(err.msg, "receivers.otlp.protocols.grpc.auth.authenticator: extension \"health_check\" (type health_check) is not an authenticator"));
    /* auth without authenticator. */
    rc = build(&rt, "receivers:\n  otlp:\n    protocols:\n      http:\n        auth: {}\n" EXT PIPE "  extensions: [bearertokenauth]\n", &err);
    lg_runtime_destroy(&rt);
    assert_int_equal(rc, LG_EINVAL);
    assert_non_null(strstr(err.msg, "receivers.otlp.protocols.http.auth: authenticator: required"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_header_value_is_accepted_and_everything_else_refused),
        cmocka_unit_test(test_custom_scheme_and_header),
        cmocka_unit_test(test_client_header_and_buffer_sizes),
        cmocka_unit_test(test_token_file_is_trimmed_and_reread_when_it_changes),
        cmocka_unit_test(test_config_errors_name_the_path),
        cmocka_unit_test(test_receiver_resolves_its_authenticator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
