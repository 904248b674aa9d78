/* core/otlp_fastdec.h — a specialised decoder for OTLP trace requests (and the Span,
 * Resource and InstrumentationScope messages the tail sampler re-decodes).
 *
 * Why it exists: decoding requests is the largest CPU cost of every gRPC benchmark (in the
 * tail-sampling profile protobuf_c_message_unpack was 33.6% of the gateway's CPU, its
 * allocator 4.8% and the nesting guard lg_pb_check_depth 2.5%). protobuf-c is generic: it
 * scans every message twice through descriptor tables, allocates every struct, string and
 * array separately, and needs the separate depth walk. Debian 12 has no faster C runtime.
 * This decoder knows the OTLP trace schema (field numbers and wire types from proto/):
 * arrays of exact size without a second allocation, a switch on the key byte, inline
 * varints, and a bump allocator carved from the arena. Measured with bench/decode_bench
 * (Release, one thread, spans per CPU-second, median of 3 runs on a busy 2-core machine,
 * the bench/workload.h requests of 512 spans, ~321 wire bytes per span):
 *   lg_batch_decode before (depth walk + protobuf-c in an arena)   597,000
 *   lg_batch_decode now (this decoder)                           2,030,000  (3.4x)
 *   lg_batch_decode_indexed (plus the raw-span index and copy)   2,020,000
 *   lg_otlp_fastdec_traces alone                                 2,520,000
 * The decoded tree takes ~1,250 bytes per span (3.9x the wire size), less than
 * protobuf-c's, which rounds every allocation to 16 bytes.
 *
 * protobuf-c remains the reference and the fallback. The output is exactly the tree
 * protobuf_c_message_unpack would build (same values and defaults, base.descriptor from
 * the generated *__INIT initialisers, NUL-terminated strings, arrays of exact length, the
 * AnyValue oneof case, ProtobufCBinaryData with data NULL for empty bytes), so everything
 * downstream (packing, lg_batch_encode, the JSON codec) cannot tell the difference. Any
 * input the fast path does not reproduce exactly returns LG_FASTDEC_FALLBACK and the caller
 * runs protobuf-c (with lg_pb_check_depth first), which then also produces the
 * authoritative error for malformed input: unknown field numbers (protobuf-c keeps them as
 * unknown_fields), a singular message field or an AnyValue oneof member seen twice
 * (protobuf-c merges or replaces), wire-type mismatches, multi-byte or non-minimal tags
 * other than Span.flags, varints past 64 bits, anything truncated or malformed, and
 * messages nested LG_PB_MAX_DEPTH levels or deeper (counted from the request, so a fast
 * success implies lg_pb_check_depth would pass and that walk can be skipped).
 *
 * Ownership: everything decoded is allocated from the caller's arena. A fallback or an
 * error leaves some unused arena memory behind (the caller may destroy the arena). */
#ifndef LG_OTLP_FASTDEC_H
#define LG_OTLP_FASTDEC_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "batch.h"
#include "common.h"
#include "otlp.h"

/* "Use the generic decoder": positive so it can never be mistaken for an LG_E* error. */
#define LG_FASTDEC_FALLBACK 1

/** Decodes an ExportTraceServiceRequest. LG_OK with *out set; LG_FASTDEC_FALLBACK when the
 *  input must go to protobuf-c; LG_ENOMEM. When raw != NULL, also fills *raw / *n_raw with
 *  every span's byte range (offsets relative to `data`, in decode order, the span pointers
 *  set; arena memory); *raw is NULL when the request has no spans or is over 4 GiB. */
int lg_otlp_fastdec_traces(const uint8_t *data, size_t len, struct lg_arena *a, lg_traces_req **out,
                           struct lg_span_raw **raw, size_t *n_raw);

/** Bytes of arena lg_otlp_fastdec_traces takes in its first piece for a request of `len`
 *  bytes (about what the decoded tree needs): size the arena's first block with it. */
size_t lg_otlp_fastdec_arena_hint(size_t len);

/** Which standalone message lg_otlp_fastdec_message decodes. */
enum lg_fastdec_type {
    LG_FASTDEC_SPAN = 0,
    LG_FASTDEC_RESOURCE = 1,
    LG_FASTDEC_SCOPE = 2,
};

/** Decodes one Span / Resource / InstrumentationScope (the fast path only): LG_OK,
 *  LG_FASTDEC_FALLBACK or LG_ENOMEM, as above. Nesting is counted from the depth the
 *  message has inside a request (Span 3, Resource 2, InstrumentationScope 3). */
int lg_otlp_fastdec_message(enum lg_fastdec_type t, const uint8_t *data, size_t len,
                            struct lg_arena *a, ProtobufCMessage **out);

/** Drop-in replacements for protobuf_c_message_unpack with the arena allocator: the fast
 *  path, falling back to protobuf-c itself. NULL when protobuf-c refuses the input too (or
 *  on OOM). */
lg_span *lg_otlp_fastdec_span(const uint8_t *data, size_t len, struct lg_arena *a);
lg_resource *lg_otlp_fastdec_resource(const uint8_t *data, size_t len, struct lg_arena *a);
lg_scope *lg_otlp_fastdec_scope(const uint8_t *data, size_t len, struct lg_arena *a);

#endif
