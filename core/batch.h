/* core/batch.h — one unit of telemetry moving through the pipeline.
 *
 * A batch owns an arena and the decoded OTLP Export*ServiceRequest tree allocated from it
 * (or pointing into the arenas of the batches listed in `deps`, which it keeps alive).
 * Batches are reference counted: whoever hands a batch to a consumer keeps its own
 * reference; a consumer that retains the batch past the call takes lg_batch_ref().
 * A batch is read-only once it leaves its receiver: a fan-out hands the same batch to
 * several pipelines without taking extra references, so refs == 1 does not mean a
 * processor owns it. A processor that changes data forwards a copy-on-write clone instead
 * (new wrappers, copies of only the changed spans, the original kept as a dependency; see
 * processors/llm_cost.c). */
#ifndef LG_BATCH_H
#define LG_BATCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "common.h"
#include "otlp.h"

enum lg_signal {
    LG_SIGNAL_TRACES = 0,
    LG_SIGNAL_METRICS = 1,
    LG_SIGNAL_LOGS = 2,
    LG_SIGNAL_COUNT = 3,
};

#define LG_SIG_BIT(s) (1u << (s))
#define LG_TRACES LG_SIG_BIT(LG_SIGNAL_TRACES)
#define LG_METRICS LG_SIG_BIT(LG_SIGNAL_METRICS)
#define LG_LOGS LG_SIG_BIT(LG_SIGNAL_LOGS)

/** "traces", "metrics", "logs". */
const char *lg_signal_name(enum lg_signal s);
/** Parses "traces" etc.; -1 when unknown. */
int lg_signal_parse(const char *name, size_t len);
/** The Collector's item noun per signal: "spans", "metric_points", "log_records". */
const char *lg_signal_item_noun(enum lg_signal s);

struct lg_llm_call;

/** One span recognised as an LLM call, with the entries it hangs under, and what the
 *  component that listed it read from it (core/llm.h; strings point into the span; the
 *  cost is the one the forwarded span carries), so later components need not read it
 *  again. */
struct lg_llm_span_ref {
    const lg_resource_spans *rs;
    const lg_scope_spans *ss;
    const lg_span *span;
    const struct lg_llm_call *call;
};

/** Where one span's protobuf encoding sits in the request bytes a batch was decoded from. */
struct lg_span_raw {
    const lg_span *span;
    uint32_t off, len;
};

struct lg_batch {
    _Atomic int refs;
    enum lg_signal signal;
    struct lg_arena *arena; /* owns `req` (may be NULL when req lives in deps) */
    union {
        ProtobufCMessage *msg;
        lg_traces_req *traces;
        lg_metrics_req *metrics;
        lg_logs_req *logs;
    } req;
    size_t items;            /* spans, metric data points, or log records */
    struct lg_batch **deps;  /* batches whose memory req points into (each holds a ref) */
    size_t ndeps;
    int64_t received_mono_ns;
    /* LLM recognition, done once: a component that classified every span of req (llm_cost
     * does, on the batch it creates) sets llm_scanned and lists the LLM spans here (arena
     * memory, pointing into req), so later components (llm_metrics) visit only those. */
    bool llm_scanned;
    const struct lg_llm_span_ref *llm_spans;
    size_t n_llm_spans;
    /* Raw-span index (traces decoded by lg_batch_decode_indexed while some component wants
     * it, see lg_batch_raw_index_want): an arena copy of the request's bytes and every
     * span's byte range in them, in decode order (resource, scope, span). Lets a component
     * that stores spans (tail_sampling) copy their bytes instead of re-encoding them. A span
     * changed later is a different struct, so a lookup by pointer never returns stale
     * bytes. Clones have none of their own: their deps[0] (the original) has it. */
    const uint8_t *raw;
    size_t raw_len;
    const struct lg_span_raw *raw_spans;
    size_t n_raw_spans;
};

/** A new batch with its own arena and an empty request of the signal's type. NULL on OOM. */
struct lg_batch *lg_batch_create(enum lg_signal signal, size_t arena_hint);
struct lg_batch *lg_batch_ref(struct lg_batch *b);
/** Drops a reference; the last one frees the arena, the deps and the batch. NULL allowed. */
void lg_batch_unref(struct lg_batch *b);
/** A copy-on-write clone for a processor about to change a shared batch: the request and
 *  the resource / scope wrapper structs and the item pointer arrays (spans, log records,
 *  metrics) are new, in the clone's arena; resources, scopes and items themselves are
 *  shared with `b`, which the clone keeps as a dependency. Replace an item by pointing its
 *  array slot at a changed copy, never by writing the shared struct. NULL on OOM. */
struct lg_batch *lg_batch_clone_shallow(struct lg_batch *b);
/** For a clone that dropped items (its wrapper arrays are its own, lg_batch_clone_shallow):
 *  removes the scopes left without items and the resources left without scopes, and
 *  recounts `items`. */
void lg_batch_prune_empty(struct lg_batch *b);
/** Adds a dependency (takes a new reference to dep). */
int lg_batch_add_dep(struct lg_batch *b, struct lg_batch *dep);
/** Recounts `items` from the request tree. */
size_t lg_batch_count_items(const struct lg_batch *b);
/** Items in a request of the given signal. */
size_t lg_request_count_items(enum lg_signal s, const ProtobufCMessage *msg);
/** Data points in one metric. */
size_t lg_metric_point_count(const lg_metric *m);
/** Decodes protobuf bytes into a new batch. LG_EINVAL with a message on bad input. */
int lg_batch_decode(enum lg_signal s, const uint8_t *data, size_t len, struct lg_batch **out,
                    struct lg_err *err);
/** Registers (on = true, at create) or drops (false, at destroy) a component that reads the
 *  raw-span index; receivers build the index only while at least one is registered. */
void lg_batch_raw_index_want(bool on);
bool lg_batch_raw_index_wanted(void);
/** lg_batch_decode plus, for traces while lg_batch_raw_index_wanted(), the raw-span index
 *  (the bytes are copied: `data` need not outlive the call). What receivers call for
 *  protobuf bodies. An index that cannot be built (odd encoding, OOM) is simply left out. */
int lg_batch_decode_indexed(enum lg_signal s, const uint8_t *data, size_t len, struct lg_batch **out,
                            struct lg_err *err);
/** The batch whose raw-span index covers b's spans: b itself, or the first one with an
 *  index along the deps[0] chain of clones; NULL when there is none. */
const struct lg_batch *lg_batch_raw_source(const struct lg_batch *b);
/** Serialises the request into malloc'd bytes (*len set). NULL on OOM. */
uint8_t *lg_batch_encode(const struct lg_batch *b, size_t *len);
/** Protobuf descriptor of the Export*ServiceRequest / Response for a signal. */
const ProtobufCMessageDescriptor *lg_request_descriptor(enum lg_signal s);
const ProtobufCMessageDescriptor *lg_response_descriptor(enum lg_signal s);

#endif
