/* exporters/interaction_store.h — the `interaction_store` exporter (traces) and the
 * `llmgate store` command that reads what it wrote.
 *
 * The exporter writes one encrypted record (exporters/store_format.h) per selected LLM span:
 * every failed call (status ERROR, error.type, llm.error, or a finish reason in
 * failed.finish_reasons) and the share successful.sampling_percentage of the others, chosen
 * on the trace ID with the hash of the Collector's tail_sampling probabilistic policy (so a
 * trace kept by both agrees). Each record is one JSON object:
 *
 *   {"v":1, "trace_id":hex, "span_id":hex, "parent_span_id":hex, "name":span name,
 *    "start_time_unix_nano":"…", "end_time_unix_nano":"…", "service":…, "convention":…,
 *    "model":…, "request_model":…, "response_model":…, "provider":…, "operation":…,
 *    "tokens":{"input":n,"output":n,"total":n,"cache_read":n,"cache_write":n,"reasoning":n},
 *    "cost_usd":x, "status":{"code":"ERROR"|"OK"|"UNSET","message":…}, "error_type":…,
 *    "finish_reason":…, "finish_reasons":[…], "failed":bool, "selected":"failed"|"sampled",
 *    "content":{"prompt":[{"key":…,"value":…}], "completion":[…], "tool":[…],
 *               "events":[{"name":…,"time_unix_nano":"…","kind":"prompt"|…,
 *                          "attributes":[{"key":…,"value":…}]}]}}
 *
 * Unknown values are left out (tokens: -1 is never written); attribute values keep their OTLP
 * type (strings, numbers, bools, arrays, maps; bytes as base64; int64 beyond 2^53 as text).
 * Content keys and events are those of core/llm_content.h, the list the redaction processor
 * drops, so what the backend loses is exactly what the store keeps. */
#ifndef LG_INTERACTION_STORE_H
#define LG_INTERACTION_STORE_H

#include "../core/component.h"

extern const struct lg_component_type lg_interaction_store_exporter;

/** `llmgate store ...`: argv[0] is "store". Returns the process exit code:
 *    0  success
 *    1  the store could not be read (missing directory, I/O error)
 *    2  usage error (unknown subcommand or option, missing --dir or key)
 *    3  key problem: a key could not be loaded, or some records have a key ID that no given
 *       key matches ("no key can decrypt records with key id …"); readable records are
 *       still printed
 *    4  corrupted or truncated records were skipped (the rest was printed)
 *  Output goes to stdout, diagnostics to stderr. */
int lg_store_cli_main(int argc, char **argv);

#endif
