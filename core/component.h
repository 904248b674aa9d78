/* core/component.h — the one contract every receiver, processor, connector, exporter and
 * extension implements, in the manner of Fluent Bit's plugin structs and nginx modules.
 *
 * Life cycle (driven by core/runtime.c):
 *   1. the runtime allocates `struct lg_component`, parses its YAML map into `conf`
 *      (a zeroed block of type->conf_size bytes) with type->fields, then calls create();
 *   2. the pipeline builder wires `next[signal]` (where a receiver, processor or connector
 *      sends its output);
 *   3. start() in order exporters -> connectors -> processors -> receivers;
 *   4. consume() from any thread while running;
 *   5. shutdown(deadline) in the reverse order (receivers first: stop accepting, then
 *      processors flush, then exporters drain) and finally destroy().
 *
 * consume() borrows the batch: the caller keeps its reference. A component that keeps the
 * batch after returning takes lg_batch_ref(). consume() returns LG_OK when the data was
 * accepted (handed on or queued), or a negative LG_E* code when it was refused; the
 * receiver turns that into the protocol's status so nothing is silently dropped. */
#ifndef LG_COMPONENT_H
#define LG_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "common.h"
#include "conf.h"
#include "telemetry.h"

struct lg_runtime;
struct lg_component;

enum lg_kind { LG_RECEIVER, LG_PROCESSOR, LG_EXPORTER, LG_CONNECTOR, LG_EXTENSION };

const char *lg_kind_name(enum lg_kind k); /* "receiver", ... */

/** Where output goes: the components that follow, each called in turn. */
struct lg_fanout {
    struct lg_component **to;
    size_t n;
    struct lg_component *owner; /* whose output this is (for outgoing-item counts) */
};

/** Hands b to every target; returns LG_OK if all accepted, else the first refusal. */
int lg_fanout_consume(const struct lg_fanout *f, struct lg_batch *b);
/** For a processor that may drop items: forwards `b` when `clone` is NULL (nothing
 *  dropped); else prunes the clone (lg_batch_prune_empty) and forwards it unless nothing is
 *  left (then the data is accepted without a call, as the Collector's
 *  ErrSkipProcessingData). Always drops the reference to `clone`. */
int lg_fanout_consume_pruned(const struct lg_fanout *f, struct lg_batch *b, struct lg_batch *clone);

struct lg_component_type {
    const char *type;                 /* as written in YAML: "batch" */
    const char *const *aliases;       /* other accepted names (NULL-terminated) or NULL */
    enum lg_kind kind;
    unsigned signals;                 /* LG_TRACES|...: signals accepted (consumed / produced by receivers) */
    unsigned out_signals;             /* connectors: signals produced */
    const char *description;          /* one line for `llmgate components` */
    size_t conf_size;                 /* bytes of the config struct */
    const struct lg_conf_field *fields;
    /** Validates cross-field rules and builds private state in c->state. */
    int (*create)(struct lg_component *c, struct lg_err *err);
    int (*start)(struct lg_component *c, struct lg_err *err);
    /** Processors, connectors, exporters. */
    int (*consume)(struct lg_component *c, struct lg_batch *b);
    /** Stop accepting / flush / drain until deadline (monotonic ns). */
    int (*shutdown)(struct lg_component *c, int64_t deadline_mono_ns);
    void (*destroy)(struct lg_component *c);
};

struct lg_component {
    const struct lg_component_type *type;
    const char *id;           /* "otlp/internal", as written in YAML */
    const char *pipeline_id;  /* processors: the pipeline owning this instance, else NULL */
    struct lg_runtime *rt;
    const struct lg_node *conf_node; /* the YAML map (may be NULL) */
    void *conf;               /* parsed config (type->conf_size bytes, owned by runtime) */
    void *state;              /* private, owned by the component */
    struct lg_fanout next[LG_SIGNAL_COUNT];
    struct lg_arena *arena;   /* component-lifetime allocations (config lists, ids) */
    /* processors: otelcol_processor_incoming_items / outgoing_items, per signal */
    struct lg_counter *incoming[LG_SIGNAL_COUNT];
    struct lg_counter *outgoing[LG_SIGNAL_COUNT];
    bool started;             /* set by the runtime after start() succeeded */
};

/* ---- registry (core/registry.c) ---- */

/** Looks up a type by name or alias for a kind; NULL when unknown. */
const struct lg_component_type *lg_registry_find(enum lg_kind kind, const char *type, size_t len);
/** All registered types, NULL-terminated. */
const struct lg_component_type *const *lg_registry_all(void);

#endif
