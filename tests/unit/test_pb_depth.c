/* tests/unit/test_pb_depth.c — deeply nested protobuf input is refused before protobuf-c
 * recurses into it; ordinary and moderately nested requests pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/batch.h"
#include "core/pb_depth.h"

/* Writes a request whose single span has an attribute whose value is `levels` nested
 * array values: request{1: rs{2: ss{2: span{9: kv{2: any{5: arr{1: any{5: ...}}}}}}}}.
 * Built inside-out; returns malloc'd bytes. */
static uint8_t *nested_request(size_t levels, size_t *len)
{
    size_t cap = 64 + levels * 16, n = 0;
    uint8_t *buf = malloc(cap), *tmp = malloc(cap);
    /* innermost AnyValue: string_value "x" (field 1, wire 2) */
    buf[n++] = 0x0a;
    buf[n++] = 1;
    buf[n++] = 'x';
    /* wrap: ArrayValue{1: any} then AnyValue{5: array} per level */
    for (size_t i = 0; i < levels * 2 + 5; i++) {
        uint8_t tag;
        if (i < levels * 2)
            tag = (i % 2 == 0) ? 0x0a /* ArrayValue.values = 1 */ : 0x2a /* AnyValue.array_value = 5 */;
        else {
            static const uint8_t outer[] = {0x12 /* KeyValue.value */, 0x4a /* Span.attributes */,
                                            0x12 /* ScopeSpans.spans */, 0x12 /* ResourceSpans.scope_spans */,
                                            0x0a /* Request.resource_spans */};
            tag = outer[i - levels * 2];
        }
        size_t m = 0;
        tmp[m++] = tag;
        size_t v = n;
        do {
            tmp[m++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
            v >>= 7;
        } while (v);
        memcpy(tmp + m, buf, n);
        n += m;
        uint8_t *t = buf;
        buf = tmp;
        tmp = t;
        if (n + 16 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            tmp = realloc(tmp, cap);
        }
    }
    free(tmp);
    *len = n;
    return buf;
}

static void test_moderate_nesting_decodes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *req = nested_request(20, &len);
    struct lg_batch *b = NULL;
    struct lg_err err;
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, req, len, &b, &err), LG_OK);
    assert_int_equal(b->items, 1);
    lg_batch_unref(b);
    free(req);
}

static void test_hostile_nesting_is_refused_without_recursing(void **state)
{
    (void)state;
    size_t len;
    uint8_t *req = nested_request(200000, &len); /* ~1.5 MB, 400k message levels */
    struct lg_batch *b = NULL;
    struct lg_err err;
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, req, len, &b, &err), LG_EINVAL);
    assert_null(b);
    assert_string_equal(err.msg, "protobuf message nested deeper than 100 levels");
    free(req);
}

static void test_truncated_input_is_malformed(void **state)
{
    (void)state;
    static const uint8_t bad[] = {0x0a, 0x05, 0x12, 0x01};
    struct lg_err err;
    assert_int_equal(lg_pb_check_depth(lg_request_descriptor(LG_SIGNAL_TRACES), bad, sizeof bad, LG_PB_MAX_DEPTH, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "malformed protobuf"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moderate_nesting_decodes),
        cmocka_unit_test(test_hostile_nesting_is_refused_without_recursing),
        cmocka_unit_test(test_truncated_input_is_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
