/* tests/unit/test_b64.c — base64 over OpenSSL: the RFC 4648 vectors both ways, the URL
 * alphabet without padding, optional padding and whitespace on input, bad input refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/b64.h"

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < 7; i++) {
        char *e = lg_base64_encode((const uint8_t *)plain[i], strlen(plain[i]), false);
        assert_string_equal(e, coded[i]);
        free(e);
        uint8_t out[16];
        long n = lg_base64_decode(coded[i], out, sizeof out);
        assert_int_equal(n, (long)strlen(plain[i]));
        assert_memory_equal(out, plain[i], (size_t)n);
    }
}

static void test_url_alphabet_and_lenient_input(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0xfb, 0xff, 0xbf, 0x01};
    char *e = lg_base64_encode(bytes, sizeof bytes, true);
    assert_string_equal(e, "-_-_AQ");
    free(e);
    uint8_t out[8];
    assert_int_equal(lg_base64_decode("-_-_AQ", out, sizeof out), 4);
    assert_memory_equal(out, bytes, 4);
    assert_int_equal(lg_base64_decode("  +/+/AQ==\n", out, sizeof out), 4);
    assert_memory_equal(out, bytes, 4);
    assert_int_equal(lg_base64_decode("Zm9v YmFy", out, sizeof out), -1);
    assert_int_equal(lg_base64_decode("Zm9v*", out, sizeof out), -1);
    assert_int_equal(lg_base64_decode("Z", out, sizeof out), -1);
    assert_int_equal(lg_base64_decode("Zm9vYmFy", out, 5), -1); /* does not fit */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_url_alphabet_and_lenient_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
