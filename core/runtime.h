/* core/runtime.h — owns everything that lives for the process: the config tree, the
 * component instances, the pipeline graph, self-telemetry and the shutdown signal.
 * No other module holds global mutable state. */
#ifndef LG_RUNTIME_H
#define LG_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>

#include "component.h"
#include "conf.h"
#include "telemetry.h"

struct lg_http_server;

struct lg_pipeline {
    const char *id;          /* "traces/llm" */
    enum lg_signal signal;
    struct lg_component **receivers;
    size_t nreceivers;
    struct lg_component **processors; /* instances owned by this pipeline */
    size_t nprocessors;
    struct lg_component **exporters;
    size_t nexporters;
    const struct lg_node *node;
};

struct lg_runtime {
    struct lg_conf_doc doc;
    struct lg_telemetry *telemetry;
    struct lg_component **components; /* every instance, in start order */
    size_t ncomponents;
    struct lg_pipeline *pipelines;
    size_t npipelines;
    const char *metrics_address;      /* service.telemetry.metrics.address ("" = off) */
    _Atomic bool healthy;              /* all started and not shutting down */
    int64_t start_wall_ns;
    struct lg_http_server *metrics_server;
    int log_level;                     /* from service.telemetry.logs */
    bool log_json;
    bool log_configured;
};

/** Builds every component and the pipeline graph from doc (the runtime takes the doc).
 *  Nothing is started; used alone by `llmgate validate`. */
int lg_runtime_build(struct lg_runtime *rt, struct lg_conf_doc *doc, struct lg_err *err);
/** Starts components (exporters first) and the telemetry endpoint. */
int lg_runtime_start(struct lg_runtime *rt, struct lg_err *err);
/** Graceful stop: receivers first, then processors flush, then exporters drain. */
void lg_runtime_shutdown(struct lg_runtime *rt, int64_t deadline_mono_ns);
void lg_runtime_destroy(struct lg_runtime *rt);

/** The started-or-not instance of an extension listed in service.extensions, by ID
 *  ("file_storage/queue"); NULL when it is not configured or not enabled. */
struct lg_component *lg_runtime_find_extension(struct lg_runtime *rt, const char *id);

/** A component owned by another component rather than by a pipeline (the loadbalancing
 *  exporter's per-backend OTLP exporters): created from `node` exactly as a configured one
 *  (defaults, validation with YAML paths, create()), but not started, wired or destroyed by
 *  the runtime — the owner calls type->start / shutdown and lg_runtime_child_free(). `id`
 *  must outlive the child. NULL with err set on failure. */
struct lg_component *lg_runtime_child_new(struct lg_runtime *rt, const struct lg_component_type *type,
                                          const char *id, const struct lg_node *node,
                                          struct lg_err *err);
/** destroy() then frees the child. NULL allowed. */
void lg_runtime_child_free(struct lg_component *c);

/** Per-component counters are named like the Collector's; this builds the label text. */
const char *lg_component_label_key(enum lg_kind k); /* "receiver", "processor", ... */

#endif
