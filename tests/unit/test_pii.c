/* tests/unit/test_pii.c — the PII / secret matchers of processors/pii.h on their own: for
 * each kind, text that must be found (exactly the secret part) and look-alikes that must not
 * (a Luhn-invalid 16-digit number, version strings, times, C++ scopes, ...). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "processors/pii.h"

static struct lg_pii *all_kinds;
static pcre2_match_data *md;

/* The matches of `text` as "kind=matched text" joined by '|' (static buffer). */
static const char *scan(const char *text)
{
    static char out[2048];
    struct lg_pii_ranges r;
    lg_pii_ranges_init(&r);
    lg_pii_scan(all_kinds, text, strlen(text), md, &r);
    lg_pii_ranges_normalise(&r);
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r.n; i++)
        o += (size_t)snprintf(out + o, sizeof out - o, "%s%s=%.*s", i ? "|" : "",
                              lg_pii_kind_name(r.v[i].kind), (int)(r.v[i].end - r.v[i].start),
                              text + r.v[i].start);
    lg_pii_ranges_free(&r);
    return out;
}

static int setup(void **state)
{
    (void)state;
    struct lg_err err;
    if (lg_pii_create(LG_PII_ALL, &all_kinds, &err) != LG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    md = lg_pii_match_data();
    return md ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lg_pii_destroy(all_kinds);
    pcre2_match_data_free(md);
    return 0;
}

static void test_email(void **state)
{
    (void)state;
    assert_string_equal(scan("mail bob@example.com now"), "email=bob@example.com");
    assert_string_equal(scan("<a.b+tag@mail.example.co.uk>"), "email=a.b+tag@mail.example.co.uk");
    assert_string_equal(scan("end of sentence: x_y@corp.io."), "email=x_y@corp.io");
    /* look-alikes */
    assert_string_equal(scan("user@localhost"), "");
    assert_string_equal(scan("ping @handle on chat"), "");
    assert_string_equal(scan("foo@bar"), "");
    assert_string_equal(scan("git@github"), "");
}

static void test_card_luhn(void **state)
{
    (void)state;
    assert_true(lg_luhn_valid("4111111111111111", 16));
    assert_false(lg_luhn_valid("4111111111111112", 16));
    assert_string_equal(scan("card 4111111111111111 ok"), "credit_card=4111111111111111");
    assert_string_equal(scan("card 4111 1111 1111 1111."), "credit_card=4111 1111 1111 1111");
    assert_string_equal(scan("card 4111-1111-1111-1111"), "credit_card=4111-1111-1111-1111");
    assert_string_equal(scan("amex 378282246310005"), "credit_card=378282246310005");
    assert_string_equal(scan("mc 5500 0000 0000 0004"), "credit_card=5500 0000 0000 0004");
    /* a card followed by more digit groups (CVV, amount) is still found */
    assert_string_equal(scan("card 4111 1111 1111 1111 123"), "credit_card=4111 1111 1111 1111");
    assert_string_equal(scan("4111111111111111 12"), "credit_card=4111111111111111");
    /* a Luhn-invalid 16-digit number is not a card */
    assert_string_equal(scan("order 4111111111111112"), "");
    assert_string_equal(scan("order 1234 5678 9012 3456"), "");
    /* too short, too long (a 20-digit id), phone numbers, dates */
    assert_string_equal(scan("id 411111111111"), "");
    assert_string_equal(scan("id 41111111111111110000"), "");
    assert_string_equal(scan("call +1 555-123-4567 on 2024-01-15"), "");
}

static void test_bearer(void **state)
{
    (void)state;
    assert_string_equal(scan("Authorization: Bearer abcDEF123456.xyz-_~+/=="),
                        "bearer_token=abcDEF123456.xyz-_~+/==");
    assert_string_equal(scan("header bearer   eyJhbGciOiJIUzI1NiJ9.e30.sig"),
                        "bearer_token=eyJhbGciOiJIUzI1NiJ9.e30.sig");
    assert_string_equal(scan("the bearer of bad news"), "");
    assert_string_equal(scan("Bearer short"), "");
}

static void test_api_keys(void **state)
{
    (void)state;
    assert_string_equal(scan("key=sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234 end"),
                        "api_key=sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234");
    assert_string_equal(scan("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_-0123"),
                        "api_key=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz_-0123");
    assert_string_equal(scan("sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
                        "api_key=sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789");
    assert_string_equal(scan("aws AKIAIOSFODNN7EXAMPLE."), "api_key=AKIAIOSFODNN7EXAMPLE");
    assert_string_equal(scan("g AIzaSyA-1234567890abcdefghijklmnopqrstu"),
                        "api_key=AIzaSyA-1234567890abcdefghijklmnopqrstu");
    assert_string_equal(scan("ghp_0123456789abcdefghijABCDEFGHIJ012345"),
                        "api_key=ghp_0123456789abcdefghijABCDEFGHIJ012345");
    assert_string_equal(scan("github_pat_11ABCDEFG0123456789_abcdefghij"),
                        "api_key=github_pat_11ABCDEFG0123456789_abcdefghij");
    assert_string_equal(scan("slack xoxb-1234567890-abcdefghij"),
                        "api_key=xoxb-1234567890-abcdefghij");
    assert_string_equal(scan("stripe sk_live_0123456789abcdefGHIJ"),
                        "api_key=sk_live_0123456789abcdefGHIJ");
    /* look-alikes: inside a word, too short, lower-case AWS-like */
    assert_string_equal(scan("task-AbCdEfGhIjKlMnOpQrStUvWxYz0123"), "");
    assert_string_equal(scan("sk-short"), "");
    assert_string_equal(scan("AKIA1234"), "");
    assert_string_equal(scan("akiaiosfodnn7example"), "");
    assert_string_equal(scan("the ghp_ prefix alone"), "");
}

static void test_ipv4(void **state)
{
    (void)state;
    assert_string_equal(scan("from 10.0.0.1 today"), "ipv4=10.0.0.1");
    assert_string_equal(scan("peer 192.168.1.254."), "ipv4=192.168.1.254");
    assert_string_equal(scan("x=255.255.255.0:8080"), "ipv4=255.255.255.0");
    /* versions and other dotted numbers */
    assert_string_equal(scan("version 1.2.3"), "");
    assert_string_equal(scan("openai-python 1.54.3 on 3.12.1"), "");
    assert_string_equal(scan("256.1.1.1"), "");
    assert_string_equal(scan("1.2.3.4.5"), "");
    assert_string_equal(scan("v1.2.3.4"), "");
    assert_string_equal(scan("01.02.03.04"), "");
}

static void test_ipv6(void **state)
{
    (void)state;
    assert_string_equal(scan("client 2001:db8::1 said"), "ipv6=2001:db8::1");
    assert_string_equal(scan("fe80::1ff:fe23:4567:890a"), "ipv6=fe80::1ff:fe23:4567:890a");
    assert_string_equal(scan("2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
                        "ipv6=2001:0db8:85a3:0000:0000:8a2e:0370:7334");
    assert_string_equal(scan("loopback ::1 ok"), "ipv6=::1");
    assert_string_equal(scan("mapped ::ffff:192.0.2.128"), "ipv6=::ffff:192.0.2.128");
    /* times, C++ scopes, MAC addresses, a bare :: */
    assert_string_equal(scan("at 12:30:45"), "");
    assert_string_equal(scan("std::vector<int>"), "");
    assert_string_equal(scan("mac 00:1a:2b:3c:4d:5e"), "");
    assert_string_equal(scan("a :: b"), "");
}

static void test_mixed_and_overlap(void **state)
{
    (void)state;
    /* a bearer token that is also an API key is one masked range */
    assert_string_equal(scan("Bearer sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"),
                        "bearer_token=sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234");
    assert_string_equal(scan("bob@example.com paid with 4111111111111111 from 10.1.2.3"),
                        "email=bob@example.com|credit_card=4111111111111111|ipv4=10.1.2.3");
    /* many matches: past the inline storage of the range list */
    char big[4096] = "";
    for (int i = 0; i < 40; i++)
        strcat(big, "u@ex.com ");
    struct lg_pii_ranges r;
    lg_pii_ranges_init(&r);
    assert_int_equal(lg_pii_scan(all_kinds, big, strlen(big), md, &r), 40);
    assert_false(r.oom);
    lg_pii_ranges_free(&r);
}

static void test_only_enabled_kinds(void **state)
{
    (void)state;
    struct lg_pii *p;
    struct lg_err err;
    assert_int_equal(lg_pii_create(LG_PII_BIT(LG_PII_EMAIL), &p, &err), LG_OK);
    struct lg_pii_ranges r;
    lg_pii_ranges_init(&r);
    const char *t = "bob@example.com 10.0.0.1 4111111111111111";
    assert_int_equal(lg_pii_scan(p, t, strlen(t), md, &r), 1);
    assert_int_equal(r.v[0].kind, LG_PII_EMAIL);
    lg_pii_ranges_free(&r);
    lg_pii_destroy(p);
    assert_int_equal(lg_pii_create(0, &p, &err), LG_OK);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_card_luhn),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_api_keys),
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_mixed_and_overlap),
        cmocka_unit_test(test_only_enabled_kinds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
