/* core/batch.c — batch life cycle: decode into an arena, reference counting, item counts,
 * and the optional raw-span index built at decode time. Traces go through the fast decoder
 * (core/otlp_fastdec.h), which records span ranges itself; what it leaves to protobuf-c,
 * and metrics and logs, take the depth check, protobuf-c and a wire walk for the index. */
#include "batch.h"

#include "otlp_fastdec.h"
#include "pb_depth.h"

#include <stdlib.h>
#include <string.h>

static const char *const signal_names[LG_SIGNAL_COUNT] = {"traces", "metrics", "logs"};
static const char *const item_nouns[LG_SIGNAL_COUNT] = {"spans", "metric_points", "log_records"};

const char *lg_signal_name(enum lg_signal s) { return s < LG_SIGNAL_COUNT ? signal_names[s] : "?"; }

const char *lg_signal_item_noun(enum lg_signal s) { return s < LG_SIGNAL_COUNT ? item_nouns[s] : "?"; }

int lg_signal_parse(const char *name, size_t len)
{
    for (int i = 0; i < LG_SIGNAL_COUNT; i++)
        if (strlen(signal_names[i]) == len && memcmp(signal_names[i], name, len) == 0)
            return i;
    return -1;
}

const ProtobufCMessageDescriptor *lg_request_descriptor(enum lg_signal s)
{
    switch (s) {
    case LG_SIGNAL_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
    case LG_SIGNAL_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    case LG_SIGNAL_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    default:
        return NULL;
    }
}

const ProtobufCMessageDescriptor *lg_response_descriptor(enum lg_signal s)
{
    switch (s) {
    case LG_SIGNAL_TRACES:
        return &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor;
    case LG_SIGNAL_METRICS:
        return &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor;
    case LG_SIGNAL_LOGS:
        return &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor;
    default:
        return NULL;
    }
}

static struct lg_batch *batch_alloc(enum lg_signal signal, struct lg_arena *arena)
{
    struct lg_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->signal = signal;
    b->arena = arena;
    b->received_mono_ns = lg_now_mono_ns();
    return b;
}

struct lg_batch *lg_batch_create(enum lg_signal signal, size_t arena_hint)
{
    const ProtobufCMessageDescriptor *d = lg_request_descriptor(signal);
    if (d == NULL)
        return NULL;
    struct lg_arena *a = lg_arena_create(arena_hint);
    if (a == NULL)
        return NULL;
    ProtobufCMessage *msg = lg_arena_alloc(a, d->sizeof_message);
    struct lg_batch *b = msg ? batch_alloc(signal, a) : NULL;
    if (b == NULL) {
        lg_arena_destroy(a);
        return NULL;
    }
    d->message_init(msg);
    b->req.msg = msg;
    return b;
}

struct lg_batch *lg_batch_ref(struct lg_batch *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void lg_batch_unref(struct lg_batch *b)
{
    if (b == NULL)
        return;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < b->ndeps; i++)
        lg_batch_unref(b->deps[i]);
    free(b->deps);
    lg_arena_destroy(b->arena);
    free(b);
}

int lg_batch_add_dep(struct lg_batch *b, struct lg_batch *dep)
{
    struct lg_batch **d = realloc(b->deps, (b->ndeps + 1) * sizeof *d);
    if (d == NULL)
        return LG_ENOMEM;
    b->deps = d;
    b->deps[b->ndeps++] = lg_batch_ref(dep);
    return LG_OK;
}

/* Clones the two wrapper levels of one signal: RT resource entries holding ST scope entries
 * holding an array of item pointers. */
#define CLONE_LEVELS(A, SRC, DST, RFIELD, NRFIELD, RT, SFIELD, NSFIELD, ST, IFIELD, NIFIELD)          \
    do {                                                                                           \
        (DST)->RFIELD = lg_arena_alloc(A, ((SRC)->NRFIELD + 1) * sizeof(void *));                  \
        if ((DST)->RFIELD == NULL)                                                                 \
            return LG_ENOMEM;                                                                      \
        for (size_t r_ = 0; r_ < (SRC)->NRFIELD; r_++) {                                           \
            RT *rr_ = lg_arena_memdup(A, (SRC)->RFIELD[r_], sizeof *rr_);                          \
            if (rr_ == NULL)                                                                       \
                return LG_ENOMEM;                                                                  \
            rr_->SFIELD = lg_arena_alloc(A, (rr_->NSFIELD + 1) * sizeof(void *));                  \
            if (rr_->SFIELD == NULL)                                                               \
                return LG_ENOMEM;                                                                  \
            for (size_t s_ = 0; s_ < rr_->NSFIELD; s_++) {                                         \
                ST *ss_ = lg_arena_memdup(A, (SRC)->RFIELD[r_]->SFIELD[s_], sizeof *ss_);          \
                if (ss_ == NULL)                                                                   \
                    return LG_ENOMEM;                                                              \
                ss_->IFIELD = lg_arena_memdup(A, ss_->IFIELD, (ss_->NIFIELD + 1) * sizeof(void *)); \
                if (ss_->IFIELD == NULL)                                                           \
                    return LG_ENOMEM;                                                              \
                rr_->SFIELD[s_] = ss_;                                                             \
            }                                                                                      \
            (DST)->RFIELD[r_] = rr_;                                                               \
        }                                                                                          \
    } while (0)

static int clone_levels(struct lg_batch *nb, const struct lg_batch *b)
{
    struct lg_arena *a = nb->arena;
    switch (b->signal) {
    case LG_SIGNAL_TRACES:
        *nb->req.traces = *b->req.traces;
        CLONE_LEVELS(a, b->req.traces, nb->req.traces, resource_spans, n_resource_spans, lg_resource_spans,
                     scope_spans, n_scope_spans, lg_scope_spans, spans, n_spans);
        break;
    case LG_SIGNAL_METRICS:
        *nb->req.metrics = *b->req.metrics;
        CLONE_LEVELS(a, b->req.metrics, nb->req.metrics, resource_metrics, n_resource_metrics,
                     lg_resource_metrics, scope_metrics, n_scope_metrics, lg_scope_metrics, metrics, n_metrics);
        break;
    case LG_SIGNAL_LOGS:
        *nb->req.logs = *b->req.logs;
        CLONE_LEVELS(a, b->req.logs, nb->req.logs, resource_logs, n_resource_logs, lg_resource_logs, scope_logs,
                     n_scope_logs, lg_scope_logs, log_records, n_log_records);
        break;
    default:
        return LG_EINVAL;
    }
    return LG_OK;
}

struct lg_batch *lg_batch_clone_shallow(struct lg_batch *b)
{
    struct lg_batch *nb = lg_batch_create(b->signal, 4096);
    if (nb == NULL)
        return NULL;
    if (lg_batch_add_dep(nb, b) != LG_OK || clone_levels(nb, b) != LG_OK) {
        lg_batch_unref(nb);
        return NULL;
    }
    nb->items = b->items;
    nb->received_mono_ns = b->received_mono_ns;
    return nb;
}

size_t lg_metric_point_count(const lg_metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

size_t lg_request_count_items(enum lg_signal s, const ProtobufCMessage *msg)
{
    size_t n = 0;
    if (msg == NULL)
        return 0;
    if (s == LG_SIGNAL_TRACES) {
        const lg_traces_req *r = (const lg_traces_req *)msg;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                n += r->resource_spans[i]->scope_spans[j]->n_spans;
    } else if (s == LG_SIGNAL_METRICS) {
        const lg_metrics_req *r = (const lg_metrics_req *)msg;
        for (size_t i = 0; i < r->n_resource_metrics; i++)
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const lg_scope_metrics *sm = r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++)
                    n += lg_metric_point_count(sm->metrics[k]);
            }
    } else if (s == LG_SIGNAL_LOGS) {
        const lg_logs_req *r = (const lg_logs_req *)msg;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                n += r->resource_logs[i]->scope_logs[j]->n_log_records;
    }
    return n;
}

size_t lg_batch_count_items(const struct lg_batch *b) { return lg_request_count_items(b->signal, b->req.msg); }

/* One level of pruning: keeps the entries of arr[0..*n) for which keep() holds. */
#define PRUNE(arr, n, keep)                                                                        \
    do {                                                                                           \
        size_t w_ = 0;                                                                             \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            if (keep((arr)[i_]))                                                                   \
                (arr)[w_++] = (arr)[i_];                                                           \
        (n) = w_;                                                                                  \
    } while (0)
#define HAS_SPANS(ss)   ((ss)->n_spans > 0)
#define HAS_LOGS(sl)    ((sl)->n_log_records > 0)
#define HAS_METRICS(sm) ((sm)->n_metrics > 0)
#define HAS_SCOPE_SPANS(rs)   ((rs)->n_scope_spans > 0)
#define HAS_SCOPE_LOGS(rl)    ((rl)->n_scope_logs > 0)
#define HAS_SCOPE_METRICS(rm) ((rm)->n_scope_metrics > 0)

void lg_batch_prune_empty(struct lg_batch *b)
{
    if (b->signal == LG_SIGNAL_TRACES) {
        lg_traces_req *req = b->req.traces;
        for (size_t r = 0; r < req->n_resource_spans; r++)
            PRUNE(req->resource_spans[r]->scope_spans, req->resource_spans[r]->n_scope_spans, HAS_SPANS);
        PRUNE(req->resource_spans, req->n_resource_spans, HAS_SCOPE_SPANS);
    } else if (b->signal == LG_SIGNAL_LOGS) {
        lg_logs_req *req = b->req.logs;
        for (size_t r = 0; r < req->n_resource_logs; r++)
            PRUNE(req->resource_logs[r]->scope_logs, req->resource_logs[r]->n_scope_logs, HAS_LOGS);
        PRUNE(req->resource_logs, req->n_resource_logs, HAS_SCOPE_LOGS);
    } else if (b->signal == LG_SIGNAL_METRICS) {
        lg_metrics_req *req = b->req.metrics;
        for (size_t r = 0; r < req->n_resource_metrics; r++)
            PRUNE(req->resource_metrics[r]->scope_metrics, req->resource_metrics[r]->n_scope_metrics,
                  HAS_METRICS);
        PRUNE(req->resource_metrics, req->n_resource_metrics, HAS_SCOPE_METRICS);
    }
    b->items = lg_batch_count_items(b);
}

/* A request's decoded tree is typically 2-3x its wire size; start the arena near that so
 * most requests fit in one or two blocks. */
#define DECODE_ARENA_FACTOR 3

static void raw_index_build(struct lg_batch *b, const uint8_t *data, size_t len);

/* Traces through the fast decoder (core/otlp_fastdec.h). LG_OK with *out set (and, when
 * `index`, the raw-span index built from the ranges the decoder saw), LG_FASTDEC_FALLBACK
 * when protobuf-c must decode it, or LG_ENOMEM. A fast success implies the input nests less
 * than LG_PB_MAX_DEPTH, so lg_pb_check_depth is not needed. */
static int traces_fast(const uint8_t *data, size_t len, size_t extra, bool index, struct lg_batch **out)
{
    /* the decoder's piece, the raw copy and index, and a margin for the block header */
    struct lg_arena *a = lg_arena_create(lg_otlp_fastdec_arena_hint(len) + extra + 1024);
    struct lg_batch *b = a ? batch_alloc(LG_SIGNAL_TRACES, a) : NULL;
    if (b == NULL) {
        lg_arena_destroy(a);
        return LG_ENOMEM;
    }
    lg_traces_req *req = NULL;
    struct lg_span_raw *raw = NULL;
    size_t nraw = 0;
    int rc = lg_otlp_fastdec_traces(data, len, a, &req, index ? &raw : NULL, &nraw);
    if (rc != LG_OK) {
        lg_batch_unref(b); /* a fallback starts over in a fresh arena */
        return rc;
    }
    b->req.traces = req;
    b->items = lg_batch_count_items(b);
    if (raw != NULL && nraw == b->items) {
        uint8_t *copy = lg_arena_memdup(a, data, len);
        if (copy != NULL) { /* the ranges are offsets, so they hold in the copy */
            b->raw = copy;
            b->raw_len = len;
            b->raw_spans = raw;
            b->n_raw_spans = nraw;
        }
    }
    *out = b;
    return LG_OK;
}

/* extra: arena bytes to reserve beyond the decoded tree (the raw-span index's copy).
 * index: build the raw-span index (traces only). */
static int batch_decode(enum lg_signal s, const uint8_t *data, size_t len, size_t extra, bool index,
                        struct lg_batch **out, struct lg_err *err)
{
    const ProtobufCMessageDescriptor *d = lg_request_descriptor(s);
    if (d == NULL)
        return lg_err_set(err, LG_EINVAL, "unknown signal");
    if (s == LG_SIGNAL_TRACES) {
        int frc = traces_fast(data, len, extra, index, out);
        if (frc == LG_OK)
            return LG_OK;
        if (frc != LG_FASTDEC_FALLBACK)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    int rc = lg_pb_check_depth(d, data, len, LG_PB_MAX_DEPTH, err);
    if (rc != LG_OK)
        return rc;
    struct lg_arena *a = lg_arena_create(len * DECODE_ARENA_FACTOR + extra + 1024);
    if (a == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    struct lg_batch *b = batch_alloc(s, a);
    if (b == NULL) {
        lg_arena_destroy(a);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    ProtobufCAllocator al = lg_arena_pb_allocator(a);
    b->req.msg = protobuf_c_message_unpack(d, &al, len, data);
    if (b->req.msg == NULL) {
        lg_batch_unref(b);
        return lg_err_set(err, LG_EINVAL, "malformed protobuf: cannot decode %s of %zu bytes",
                          d->short_name, len);
    }
    b->items = lg_batch_count_items(b);
    if (index)
        raw_index_build(b, data, len);
    *out = b;
    return LG_OK;
}

/* ---- raw-span index ---- */

static _Atomic int raw_index_users;

void lg_batch_raw_index_want(bool on) { atomic_fetch_add(&raw_index_users, on ? 1 : -1); }

bool lg_batch_raw_index_wanted(void) { return atomic_load_explicit(&raw_index_users, memory_order_relaxed) > 0; }

/* Field numbers from proto/: ExportTraceServiceRequest.resource_spans = 1,
 * ResourceSpans.scope_spans = 2, ScopeSpans.spans = 2. */
#define PB_REQ_RESOURCE_SPANS 1
#define PB_RS_SCOPE_SPANS     2
#define PB_SS_SPANS           2
#define PB_WIRE_VARINT        0
#define PB_WIRE_I64           1
#define PB_WIRE_LEN           2
#define PB_WIRE_I32           5

static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t c = *(*p)++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

struct raw_walk {
    const uint8_t *base;
    struct lg_span_raw *out;
    size_t n, cap;
};

/* Visits the length-delimited fields numbered `field` of the message in [p, end), in wire
 * order (the order protobuf-c appends repeated elements), descending with `depth` levels
 * left; at depth 0 records the payload as a span. false on anything unexpected. */
static bool raw_walk_level(struct raw_walk *w, const uint8_t *p, const uint8_t *end, int depth)
{
    static const uint32_t fields[] = {PB_SS_SPANS, PB_RS_SCOPE_SPANS, PB_REQ_RESOURCE_SPANS};
    uint32_t field = fields[depth - 1];
    while (p < end) {
        uint64_t key, n;
        if (!pb_varint(&p, end, &key))
            return false;
        switch (key & 7) {
        case PB_WIRE_VARINT:
            if (!pb_varint(&p, end, &n))
                return false;
            break;
        case PB_WIRE_I64:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case PB_WIRE_I32:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        case PB_WIRE_LEN:
            if (!pb_varint(&p, end, &n) || n > (uint64_t)(end - p))
                return false;
            if ((key >> 3) == field) {
                if (depth > 1) {
                    if (!raw_walk_level(w, p, p + n, depth - 1))
                        return false;
                } else {
                    if (w->n == w->cap)
                        return false; /* more spans on the wire than decoded */
                    w->out[w->n++] = (struct lg_span_raw){.off = (uint32_t)(p - w->base), .len = (uint32_t)n};
                }
            }
            p += n;
            break;
        default:
            return false; /* groups: not in OTLP */
        }
    }
    return true;
}

/* Builds b's raw-span index over a copy of data; leaves b without one on any mismatch. */
static void raw_index_build(struct lg_batch *b, const uint8_t *data, size_t len)
{
    const lg_traces_req *req = b->req.traces;
    size_t nspans = lg_batch_count_items(b);
    if (nspans == 0 || len > UINT32_MAX)
        return;
    struct lg_span_raw *idx = lg_arena_alloc(b->arena, nspans * sizeof *idx);
    uint8_t *copy = lg_arena_alloc(b->arena, len);
    if (idx == NULL || copy == NULL)
        return;
    memcpy(copy, data, len);
    struct raw_walk w = {.base = copy, .out = idx, .cap = nspans};
    if (!raw_walk_level(&w, copy, copy + len, 3) || w.n != nspans)
        return;
    size_t k = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            const lg_scope_spans *ss = req->resource_spans[i]->scope_spans[j];
            for (size_t m = 0; m < ss->n_spans; m++)
                idx[k++].span = ss->spans[m];
        }
    b->raw = copy;
    b->raw_len = len;
    b->raw_spans = idx;
    b->n_raw_spans = nspans;
}

int lg_batch_decode_indexed(enum lg_signal s, const uint8_t *data, size_t len, struct lg_batch **out,
                            struct lg_err *err)
{
    bool index = s == LG_SIGNAL_TRACES && lg_batch_raw_index_wanted();
    /* the copy plus ~1 index entry per 256 bytes (spans are rarely smaller) */
    size_t extra = index ? len + len / 256 * sizeof(struct lg_span_raw) : 0;
    return batch_decode(s, data, len, extra, index, out, err);
}

const struct lg_batch *lg_batch_raw_source(const struct lg_batch *b)
{
    while (b != NULL && b->raw_spans == NULL)
        b = b->ndeps > 0 ? b->deps[0] : NULL;
    return b;
}

int lg_batch_decode(enum lg_signal s, const uint8_t *data, size_t len, struct lg_batch **out,
                    struct lg_err *err)
{
    return batch_decode(s, data, len, 0, false, out, err);
}

uint8_t *lg_batch_encode(const struct lg_batch *b, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(b->req.msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return NULL;
    *len = protobuf_c_message_pack(b->req.msg, buf);
    return buf;
}
