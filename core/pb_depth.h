/* core/pb_depth.h — bounds message nesting in protobuf input before protobuf-c unpacks it.
 *
 * protobuf-c's unpacker recurses once per nested message, and OTLP's AnyValue can nest
 * without limit (ArrayValue / KeyValueList), so a 4 MB request of nested arrays would
 * overflow a worker thread's stack. This walks the wire format iteratively, following the
 * descriptors only into message-typed fields, and refuses input nested deeper than a limit
 * far above anything a real SDK sends. */
#ifndef LG_PB_DEPTH_H
#define LG_PB_DEPTH_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* OTLP's fixed structure is 7 levels deep (request > resource > scope > span > event >
 * key-value > value); 100 leaves room for ~45 levels of nested AnyValue arrays/maps. */
#define LG_PB_MAX_DEPTH 100

/** LG_OK when no message in `data` (of type `desc`) nests deeper than max_depth; LG_EINVAL
 *  with a message otherwise, or when the wire format is malformed. Uses no recursion. */
int lg_pb_check_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      unsigned max_depth, struct lg_err *err);

#endif
