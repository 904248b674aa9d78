/* core/otlp_json.h — OTLP/JSON codec, driven by the protobuf-c descriptors, following the
 * OTLP spec's JSON mapping ("JSON Protobuf Encoding"): lowerCamelCase field names (snake_case
 * accepted too), trace and span IDs as hex (not base64), other bytes as base64, 64-bit
 * integers as decimal strings or numbers, enums as integers or names, unknown fields ignored.
 * Works for any protobuf-c message type (requests, responses, google.rpc.Status); map fields
 * and google.protobuf well-known types get no special treatment (OTLP has none).
 * Thread-safe: calls share only an internal, lazily built cache of field names. */
#ifndef LG_OTLP_JSON_H
#define LG_OTLP_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "arena.h"
#include "common.h"

/** Decodes a JSON document (`len` bytes, no NUL needed) into a new message of type `desc`.
 *
 *  The message and everything it points to are allocated from `arena` and live until the
 *  arena is destroyed; never free them with protobuf_c_message_free_unpacked(). On success
 *  *out is set and LG_OK returned. On failure *out is NULL, whatever was allocated stays in
 *  the arena, and the code is:
 *    LG_EINVAL  bad input; err names the JSON path of the offending value, e.g.
 *               "resourceSpans[0].scopeSpans[0].spans[3].traceId: expected hex digits, got 'z'
 *               at offset 31", or "invalid JSON at byte 120: ..." for a syntax error;
 *    LG_ENOMEM  out of memory.
 *  Accepted: the top level must be an object (`{}` is a valid empty request); `null` means
 *  the field is absent; IDs (bytes fields named trace_id, span_id, parent_span_id) are hex
 *  of any even length, so a wrong-length ID decodes and is left for the receiver to judge;
 *  other bytes are standard or URL-safe base64, padded or not; integers are JSON numbers or
 *  decimal strings (exact to 64 bits); doubles are numbers, numeric strings or "NaN",
 *  "Infinity", "-Infinity". Refused: nesting deeper than 127 JSON levels (the deepest
 *  document the encoder can write) and strings containing U+0000 (C strings cannot hold it). */
int lg_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        struct lg_arena *arena, ProtobufCMessage **out, struct lg_err *err);

/** Encodes a message as compact OTLP/JSON (malloc'd, NUL-terminated, *len set unless NULL;
 *  the caller frees it). Fields holding default values are omitted, as protobuf's JSON
 *  mapping does, except set oneof members (an AnyValue {intValue: 0} is written). IDs are
 *  lowercase hex, other bytes padded base64, 64-bit integers decimal strings, enums integers
 *  (the OTLP spec requires it), doubles the shortest text that reads back exactly; invalid
 *  UTF-8 in strings (possible after protobuf decoding) is written as U+FFFD.
 *  NULL on OOM or when the message nests deeper than 127 JSON levels. */
char *lg_otlp_json_encode(const ProtobufCMessage *msg, size_t *len);

#endif
