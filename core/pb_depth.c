/* core/pb_depth.c — iterative protobuf wire walk that bounds message nesting.
 *
 * The walk runs on every request, so it must cost a small fraction of the decode. A message
 * too small to reach the limit is skipped whole (each level needs two bytes). Otherwise the
 * message types reachable from the OTLP requests are numbered once, with a direct table
 * from field number to child type, so following a field is one array read instead of a
 * descriptor search. Types or field numbers outside the table take the descriptor path. */
#include "pb_depth.h"

#include <pthread.h>

#include "batch.h"

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

/* OTLP has ~35 message types and field numbers below 20; room to spare. */
#define TYPE_TABLE_MAX 96
#define FIELD_TABLE_MAX 32
#define NOT_MESSAGE (-1)
#define UNKNOWN_TYPE (-2)

struct type_info {
    const ProtobufCMessageDescriptor *desc;
    int16_t child[FIELD_TABLE_MAX]; /* type index, NOT_MESSAGE, or UNKNOWN_TYPE */
};

static struct type_info types[TYPE_TABLE_MAX];
static int ntypes;
static pthread_once_t types_once = PTHREAD_ONCE_INIT;

static int type_index(const ProtobufCMessageDescriptor *d)
{
    for (int i = 0; i < ntypes; i++)
        if (types[i].desc == d)
            return i;
    return UNKNOWN_TYPE;
}

/* Adds d and everything reachable from it (breadth first; the table is the queue). */
static void add_type(const ProtobufCMessageDescriptor *d)
{
    if (type_index(d) != UNKNOWN_TYPE || ntypes == TYPE_TABLE_MAX)
        return;
    types[ntypes++].desc = d;
}

static void build_types(void)
{
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        add_type(lg_request_descriptor((enum lg_signal)s));
    for (int i = 0; i < ntypes; i++) {
        const ProtobufCMessageDescriptor *d = types[i].desc;
        for (unsigned f = 0; f < d->n_fields; f++)
            if (d->fields[f].type == PROTOBUF_C_TYPE_MESSAGE)
                add_type(d->fields[f].descriptor);
    }
    for (int i = 0; i < ntypes; i++) {
        const ProtobufCMessageDescriptor *d = types[i].desc;
        for (int n = 0; n < FIELD_TABLE_MAX; n++)
            types[i].child[n] = NOT_MESSAGE;
        for (unsigned f = 0; f < d->n_fields; f++) {
            const ProtobufCFieldDescriptor *fd = &d->fields[f];
            if (fd->id < FIELD_TABLE_MAX && fd->type == PROTOBUF_C_TYPE_MESSAGE)
                types[i].child[fd->id] = (int16_t)type_index(fd->descriptor);
        }
    }
}

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
    int type; /* index in types[], or UNKNOWN_TYPE */
    const uint8_t *end;
};

/* The child message type of field `id` in frame f: its descriptor, or NULL if the field is
 * not a message (or unknown). */
static const ProtobufCMessageDescriptor *child_of(const struct frame *f, uint64_t id, int *type)
{
    if (f->type >= 0 && id < FIELD_TABLE_MAX) {
        int c = types[f->type].child[id];
        if (c == NOT_MESSAGE)
            return NULL;
        if (c >= 0) {
            *type = c;
            return types[c].desc;
        }
    }
    const ProtobufCFieldDescriptor *fd =
        id <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(f->desc, (unsigned)id) : NULL;
    if (fd == NULL || fd->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    *type = type_index(fd->descriptor);
    return fd->descriptor;
}

int lg_pb_check_depth(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                      unsigned max_depth, struct lg_err *err)
{
    pthread_once(&types_once, build_types);
    struct frame stack[LG_PB_MAX_DEPTH + 1];
    if (max_depth > LG_PB_MAX_DEPTH)
        max_depth = LG_PB_MAX_DEPTH;
    unsigned depth = 0;
    stack[0] = (struct frame){desc, type_index(desc), data + len};
    const uint8_t *p = data;
    for (;;) {
        while (p == stack[depth].end) {
            if (depth == 0)
                return LG_OK;
            depth--;
        }
        const uint8_t *end = stack[depth].end;
        uint64_t tag, n;
        if (*p < 0x80) /* one-byte tags are the norm */
            tag = *p++;
        else if (read_varint(&p, end, &tag) != 0)
            goto malformed;
        switch (tag & 7) {
        case WIRE_VARINT:
            if (read_varint(&p, end, &n) != 0)
                goto malformed;
            break;
        case WIRE_I64:
            if (end - p < 8)
                goto malformed;
            p += 8;
            break;
        case WIRE_I32:
            if (end - p < 4)
                goto malformed;
            p += 4;
            break;
        case WIRE_LEN: {
            if (read_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p))
                goto malformed;
            int type = UNKNOWN_TYPE;
            const ProtobufCMessageDescriptor *child = n > 0 ? child_of(&stack[depth], tag >> 3, &type) : NULL;
            /* Every nesting level costs at least two bytes (tag and length), so a message of
             * n bytes nests at most n/2 levels: small ones (most attributes) need no walk. */
            if (child != NULL && depth + 1 + n / 2 < max_depth) {
                p += n;
            } else if (child != NULL) {
                if (depth + 1 >= max_depth)
                    return lg_err_set(err, LG_EINVAL, "protobuf message nested deeper than %u levels", max_depth);
                depth++;
                stack[depth] = (struct frame){child, type, p + n};
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
