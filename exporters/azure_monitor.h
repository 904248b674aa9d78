/* exporters/azure_monitor.h — the contract between the Azure Monitor exporter's two halves:
 *   exporters/azure_monitor_map.c   OTLP traces / metrics / logs -> Application Insights
 *                                   envelopes (REFERENCE §6), one JSON text per envelope;
 *   exporters/azure_monitor.c       config, connection string, Entra ID, libcurl transport,
 *                                   gzip, response handling (200 / 206 per-item / retry /
 *                                   redirect), the sending queue.
 * Envelopes are kept one per item so that a 206 answer can resend exactly the items whose
 * per-item statusCode is retriable.
 *
 * Sampling rate: an envelope's sampleRate is 100 unless the span carries the attribute
 * `microsoft.sample_rate` (what the official exporters read; removed from properties) or,
 * failing that, an OTel probability-sampling threshold in its trace_state (`ot=th:<hex>`,
 * written by tail_sampling for traces kept by a probabilistic decision): then
 * sampleRate = 100 * (1 - th / 2^56). */
#ifndef LG_AZURE_MONITOR_H
#define LG_AZURE_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"

struct lg_azmon_map_opts {
    const char *ikey;        /* instrumentation key (GUID), written to every envelope */
    const char *sdk_version; /* ai.internal.sdkVersion value */
    bool llm_measurements;   /* LLM spans also get cost and token counts as measurements */
    bool no_resource_metric; /* do not send the `_OTELRESOURCE_` metric envelope (one per
                              * resource of a traces batch; the official exporter sends it
                              * unless OTEL_RESOURCE_METRIC_DISABLED is set) */
};

/** One envelope as compact JSON (no newline). `json` is malloc'd, owned by the list. */
struct lg_azmon_item {
    char *json;
    size_t len;
};

struct lg_azmon_items {
    struct lg_azmon_item *v;
    size_t n, cap;
};

/** Appends the envelopes for every span (+ its events), metric data point group or log
 *  record of b to *out. LG_OK, or LG_ENOMEM (then *out holds what was appended so far and
 *  the caller frees it). Never fails on content: values that break a limit are truncated
 *  at a UTF-8 boundary. */
int lg_azmon_map_batch(const struct lg_batch *b, const struct lg_azmon_map_opts *o,
                       struct lg_azmon_items *out);
/** Frees every item and the array; the list is empty afterwards. */
void lg_azmon_items_free(struct lg_azmon_items *items);

#endif
