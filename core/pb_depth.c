/* core/pb_depth.c — iterative protobuf wire walk that bounds message nesting. */
#include "pb_depth.h"

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

struct frame {
    const ProtobufCMessageDescriptor *desc;
    const uint8_t *end;
};

int lg_pb_check_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      unsigned max_depth, struct lg_err *err)
{
    struct frame stack[LG_PB_MAX_DEPTH + 1];
    if (max_depth > LG_PB_MAX_DEPTH)
        max_depth = LG_PB_MAX_DEPTH;
    unsigned depth = 0;
    stack[0] = (struct frame){desc, data + len};
    const uint8_t *p = data;
    for (;;) {
        while (p == stack[depth].end) {
            if (depth == 0)
                return LG_OK;
            depth--;
        }
        uint64_t tag, n;
        if (read_varint(&p, stack[depth].end, &tag) != 0)
            goto malformed;
        switch (tag & 7) {
        case WIRE_VARINT:
            if (read_varint(&p, stack[depth].end, &n) != 0)
                goto malformed;
            break;
        case WIRE_I64:
            if (stack[depth].end - p < 8)
                goto malformed;
            p += 8;
            break;
        case WIRE_I32:
            if (stack[depth].end - p < 4)
                goto malformed;
            p += 4;
            break;
        case WIRE_LEN: {
            if (read_varint(&p, stack[depth].end, &n) != 0 || n > (uint64_t)(stack[depth].end - p))
                goto malformed;
            const ProtobufCFieldDescriptor *f =
                tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(stack[depth].desc, (unsigned)(tag >> 3)) : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE && n > 0) {
                if (depth + 1 >= max_depth)
                    return lg_err_set(err, LG_EINVAL, "protobuf message nested deeper than %u levels", max_depth);
                depth++;
                stack[depth] = (struct frame){f->descriptor, p + n};
            } else {
                p += n;
            }
            break;
        }
        default:
            goto malformed; /* groups (3, 4) and invalid wire types: protobuf-c refuses them too */
        }
    }
malformed:
    return lg_err_set(err, LG_EINVAL, "malformed protobuf: truncated or invalid field encoding");
}
