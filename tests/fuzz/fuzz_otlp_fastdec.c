/* tests/fuzz/fuzz_otlp_fastdec.c — libFuzzer target: the OTLP trace fast decoder against
 * protobuf-c, its reference. Whenever the fast path accepts an input (as a whole request,
 * or as a standalone Span / Resource / InstrumentationScope), protobuf-c must accept it too
 * and both trees must pack to identical bytes; every raw-span range must lie inside the
 * input and hold a span that packs like the decoded one. A result code other than LG_OK
 * and LG_FASTDEC_FALLBACK is a finding too. protobuf-c only runs where its recursion is
 * known to be bounded (the fast path succeeded, or lg_pb_check_depth passed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"
#include "core/otlp_fastdec.h"
#include "core/pb_depth.h"

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len + 1);
    if (buf == NULL || protobuf_c_message_pack(m, buf) != *len)
        abort();
    return buf;
}

/* Aborts unless a and b pack to the same bytes. */
static void same_packing(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la, lb;
    uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
    if (la != lb || memcmp(pa, pb, la) != 0)
        abort();
    free(pa);
    free(pb);
}

static void check_request(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor *d = lg_request_descriptor(LG_SIGNAL_TRACES);
    struct lg_arena *a = lg_arena_create(size * 3 + 1024);
    lg_traces_req *r = NULL;
    struct lg_span_raw *raw = NULL;
    size_t nraw = 0;
    int rc = lg_otlp_fastdec_traces(data, size, a, &r, &raw, &nraw);
    if (rc != LG_OK && rc != LG_FASTDEC_FALLBACK)
        abort();
    struct lg_err err;
    if (rc == LG_OK) {
        /* a fast success promises the nesting guard would pass */
        if (lg_pb_check_depth(d, data, size, LG_PB_MAX_DEPTH, &err) != LG_OK)
            abort();
        ProtobufCMessage *ref = protobuf_c_message_unpack(d, NULL, size, data);
        if (ref == NULL)
            abort();
        same_packing(ref, &r->base);
        protobuf_c_message_free_unpacked(ref, NULL);
        size_t items = lg_request_count_items(LG_SIGNAL_TRACES, &r->base);
        if (nraw != items || (items > 0) != (raw != NULL))
            abort();
        for (size_t i = 0; i < nraw; i++) {
            if ((size_t)raw[i].off + raw[i].len > size)
                abort();
            ProtobufCMessage *sp =
                protobuf_c_message_unpack(&opentelemetry__proto__trace__v1__span__descriptor, NULL,
                                          raw[i].len, data + raw[i].off);
            if (sp == NULL)
                abort();
            same_packing(sp, &raw[i].span->base);
            protobuf_c_message_free_unpacked(sp, NULL);
        }
    }
    lg_arena_destroy(a);
    /* the batch path as receivers call it: fast, or the guarded fallback */
    struct lg_batch *b = NULL;
    if (lg_batch_decode_indexed(LG_SIGNAL_TRACES, data, size, &b, &err) == LG_OK) {
        for (size_t i = 0; i < b->n_raw_spans; i++)
            if ((size_t)b->raw_spans[i].off + b->raw_spans[i].len > b->raw_len)
                abort();
        lg_batch_unref(b);
    } else if (rc == LG_OK) {
        abort(); /* the fast path accepted what the batch decode refused */
    }
}

static void check_message(enum lg_fastdec_type t, const ProtobufCMessageDescriptor *d,
                          const uint8_t *data, size_t size)
{
    struct lg_arena *a = lg_arena_create(0);
    ProtobufCMessage *m = NULL;
    int rc = lg_otlp_fastdec_message(t, data, size, a, &m);
    if (rc != LG_OK && rc != LG_FASTDEC_FALLBACK)
        abort();
    if (rc == LG_OK) {
        ProtobufCMessage *ref = protobuf_c_message_unpack(d, NULL, size, data);
        if (ref == NULL)
            abort();
        same_packing(ref, m);
        protobuf_c_message_free_unpacked(ref, NULL);
    }
    lg_arena_destroy(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        lg_batch_raw_index_want(true);
        once = 1;
    }
    check_request(data, size);
    check_message(LG_FASTDEC_SPAN, &opentelemetry__proto__trace__v1__span__descriptor, data, size);
    check_message(LG_FASTDEC_RESOURCE, &opentelemetry__proto__resource__v1__resource__descriptor,
                  data, size);
    check_message(LG_FASTDEC_SCOPE,
                  &opentelemetry__proto__common__v1__instrumentation_scope__descriptor, data, size);
    return 0;
}
