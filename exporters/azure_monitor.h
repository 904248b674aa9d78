/* exporters/azure_monitor.h — the contract between the Azure Monitor exporter's two halves:
 *   exporters/azure_monitor_map.c   OTLP traces / metrics / logs -> Application Insights
 *                                   envelopes (REFERENCE §6), one JSON text per envelope,
 *                                   all of a batch in one buffer (struct lg_azmon_items);
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

/** The envelopes of a batch, each one compact JSON text (no newline), all in one buffer:
 *  envelope i is buf[v[i].off, v[i].off + v[i].len). The buffer starts with a separator
 *  byte (',') and each envelope is followed by one, so envelopes are back to back
 *  (v[i + 1].off == v[i].off + v[i].len + 1) and a run of them becomes a JSON array by
 *  writing '[' over the byte before the first and ']' over the byte after the last
 *  (the transport does, and puts ',' back). One buffer per batch instead of a string per
 *  envelope: no allocation per envelope, and gzip reads the request in place.
 *  Owned by the list: buf and v are malloc'd. */
struct lg_azmon_item {
    size_t off, len;
};

struct lg_azmon_items {
    char *buf;
    size_t len, cap; /* bytes used / allocated in buf */
    struct lg_azmon_item *v;
    size_t n, vcap;
};

/** Appends one complete envelope (len bytes of JSON). LG_OK or LG_ENOMEM (list unchanged). */
int lg_azmon_items_add(struct lg_azmon_items *items, const char *json, size_t len);
/** Keeps only the envelopes i with keep[i] != 0, in order, back to back (memmove). */
void lg_azmon_items_keep(struct lg_azmon_items *items, const unsigned char *keep);
/** Empties the list, keeping its buffers (for the next batch) unless they are larger than
 *  keep_max bytes together. */
void lg_azmon_items_reset(struct lg_azmon_items *items, size_t keep_max);

/** Appends the envelopes for every span (+ its events), metric data point group or log
 *  record of b to *out. LG_OK, or LG_ENOMEM (then *out holds what was appended so far and
 *  the caller frees it). Never fails on content: values that break a limit are truncated
 *  at a UTF-8 boundary. */
int lg_azmon_map_batch(const struct lg_batch *b, const struct lg_azmon_map_opts *o,
                       struct lg_azmon_items *out);
/** Frees every item and the array; the list is empty afterwards. */
void lg_azmon_items_free(struct lg_azmon_items *items);

#endif
