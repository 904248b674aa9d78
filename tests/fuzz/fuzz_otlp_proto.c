/* tests/fuzz/fuzz_otlp_proto.c — libFuzzer target: protobuf decoding into a batch arena (with
 * the raw-span index tail sampling uses: every indexed range must lie inside the copied
 * request), the receiver-side item count, and re-encoding as protobuf and JSON. */
#include <stdint.h>
#include <stdlib.h>

#include "core/batch.h"
#include "core/otlp_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        lg_batch_raw_index_want(true);
        once = 1;
    }
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        struct lg_batch *b = NULL;
        struct lg_err err;
        if (lg_batch_decode_indexed((enum lg_signal)s, data, size, &b, &err) != LG_OK)
            continue;
        for (size_t i = 0; i < b->n_raw_spans; i++)
            if ((size_t)b->raw_spans[i].off + b->raw_spans[i].len > b->raw_len)
                abort(); /* an index entry outside the request */
        size_t len;
        free(lg_batch_encode(b, &len));
        free(lg_otlp_json_encode(b->req.msg, &len));
        lg_batch_unref(b);
    }
    return 0;
}
