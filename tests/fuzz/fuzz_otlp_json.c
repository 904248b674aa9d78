/* tests/fuzz/fuzz_otlp_json.c — libFuzzer target: OTLP/JSON decoding of all three request
 * types, and re-encoding whatever decoded (must not crash, leak or trip UBSan). */
#include <stdint.h>
#include <stdlib.h>

#include "core/batch.h"
#include "core/otlp_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        struct lg_arena *a = lg_arena_create(0);
        ProtobufCMessage *m = NULL;
        struct lg_err err;
        if (lg_otlp_json_decode(lg_request_descriptor((enum lg_signal)s), (const char *)data, size, a, &m, &err) == LG_OK) {
            size_t len;
            char *out = lg_otlp_json_encode(m, &len);
            free(out);
        }
        lg_arena_destroy(a);
    }
    return 0;
}
