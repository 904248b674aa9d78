/* tests/fuzz/fuzz_otlp_proto.c — libFuzzer target: protobuf decoding into a batch arena, the
 * receiver-side item count, and re-encoding as protobuf and JSON. */
#include <stdint.h>
#include <stdlib.h>

#include "core/batch.h"
#include "core/otlp_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        struct lg_batch *b = NULL;
        struct lg_err err;
        if (lg_batch_decode((enum lg_signal)s, data, size, &b, &err) != LG_OK)
            continue;
        size_t len;
        free(lg_batch_encode(b, &len));
        free(lg_otlp_json_encode(b->req.msg, &len));
        lg_batch_unref(b);
    }
    return 0;
}
