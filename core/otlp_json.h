/* core/otlp_json.h — OTLP/JSON codec, driven by the protobuf-c descriptors, following the
 * OTLP spec's JSON mapping: lowerCamelCase field names (snake_case accepted too), trace
 * and span IDs as hex (not base64), other bytes as base64, 64-bit integers as decimal
 * strings or numbers, enums as integers or names, unknown fields ignored. */
#ifndef LG_OTLP_JSON_H
#define LG_OTLP_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "arena.h"
#include "common.h"

/** Decodes a JSON document into a new message of type `desc`, allocated from `arena`.
 *  LG_EINVAL with a message naming the offending field (e.g.
 *  "resourceSpans[0].scopeSpans[0].spans[3].traceId: not 32 hex digits") on bad input. */
int lg_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                        struct lg_arena *arena, ProtobufCMessage **out, struct lg_err *err);

/** Encodes a message as compact OTLP/JSON (malloc'd, NUL-terminated, *len set unless NULL).
 *  Fields holding default values are omitted, as protobuf's JSON mapping does. NULL on OOM. */
char *lg_otlp_json_encode(const ProtobufCMessage *msg, size_t *len);

#endif
