/* core/exporter_helper.h — what every exporter shares: a bounded sending queue (in memory,
 * or persistent through a file_storage extension), consumer threads, per-attempt timeout
 * and retry with backoff, with the Collector's keys and defaults (REFERENCE §3):
 *
 *   timeout: 5s
 *   retry_on_failure: {enabled: true, initial_interval: 5s, max_interval: 30s,
 *                      max_elapsed_time: 300s (0 = forever), multiplier: 1.5,
 *                      randomization_factor: 0.5}
 *   sending_queue: {enabled: true, num_consumers: 10, queue_size: 1000,
 *                   sizer: requests|items|bytes, block_on_overflow: false,
 *                   storage: file_storage[/name]}
 *
 * An exporter embeds LG_EXPORTER_HELPER_FIELDS(struct, member) in its field table, creates
 * the helper in create() with its send function, and uses lg_exporter_helper_consume() as
 * (the body of) its consume(). The helper owns everything queued.
 *
 * Contract for send(): it runs on a consumer thread, may block up to `deadline` on network
 * I/O, and must fill `res`: LG_OK (delivered; `rejected` may count items the backend
 * refused permanently in a partial success), LG_EAGAIN (retryable; `retry_after_ns` > 0
 * when the server asked for a delay via Retry-After / RetryInfo) or LG_EINVAL (permanent:
 * never retried). The helper never reports success for data that was not accepted:
 * permanent failures and retries that ran out of max_elapsed_time are counted in
 * otelcol_exporter_send_failed_<items> and logged; a full queue refuses new data (the
 * receiver answers 429/RESOURCE_EXHAUSTED) and counts otelcol_exporter_enqueue_failed_<items>.
 */
#ifndef LG_EXPORTER_HELPER_H
#define LG_EXPORTER_HELPER_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "component.h"
#include "conf.h"

struct lg_retry_conf {
    bool enabled;
    int64_t initial_interval_ns;
    int64_t max_interval_ns;
    int64_t max_elapsed_time_ns; /* 0 = retry forever */
    double multiplier;
    double randomization_factor;
};

enum lg_queue_sizer { LG_SIZER_REQUESTS, LG_SIZER_ITEMS, LG_SIZER_BYTES };

struct lg_queue_conf {
    bool enabled;
    int64_t num_consumers;
    int64_t queue_size;
    enum lg_queue_sizer sizer;
    bool block_on_overflow;
    const char *storage; /* ID of a file_storage extension, or NULL for memory */
};

struct lg_exporter_helper_conf {
    int64_t timeout_ns;
    struct lg_retry_conf retry_on_failure;
    struct lg_queue_conf sending_queue;
};

/** Field-table entries for an exporter config struct T with a member M of type
 *  struct lg_exporter_helper_conf (defined in exporter_helper.c). */
extern const struct lg_conf_field lg_exporter_helper_timeout_fields[];
extern const struct lg_conf_field lg_retry_fields[];
extern const struct lg_conf_field lg_queue_fields[];
#define LG_EXPORTER_HELPER_FIELDS(T, M)                                                            \
    LG_CONF_DURATION("timeout", "5s", T, M.timeout_ns, "time limit for one send attempt"),        \
        LG_CONF_SECTION("retry_on_failure", T, M.retry_on_failure, lg_retry_fields,                \
                        "retry with exponential backoff"),                                         \
        LG_CONF_SECTION("sending_queue", T, M.sending_queue, lg_queue_fields,                      \
                        "bounded queue in front of the sender (memory or persistent)")

struct lg_export_result {
    int code;               /* LG_OK, LG_EAGAIN, LG_EINVAL */
    int64_t retry_after_ns; /* > 0: the server asked to wait this long */
    int64_t rejected;       /* items refused permanently inside a success (partial success) */
    char message[256];
};

/** Sends one batch; see the contract above. `ctx` is the exporter's. */
typedef void (*lg_export_send_fn)(void *ctx, struct lg_batch *b, int64_t deadline_mono_ns,
                                  struct lg_export_result *res);

struct lg_exporter_helper;

/** Validates conf (naming YAML paths via c->conf_node), sets up counters named after c->id.
 *  Nothing runs until start. */
int lg_exporter_helper_create(struct lg_component *c, const struct lg_exporter_helper_conf *conf,
                              lg_export_send_fn send, void *ctx, struct lg_exporter_helper **out,
                              struct lg_err *err);
/** Opens the persistent queue (replaying what it holds) and starts the consumer threads. */
int lg_exporter_helper_start(struct lg_exporter_helper *h, struct lg_err *err);
/** Enqueues (takes a reference, or serialises for the persistent queue). LG_OK, or LG_EFULL
 *  when the queue is full, or whatever send() said when the queue is disabled. In detail:
 *  queued: LG_OK; full: LG_EFULL; before start / after shutdown began: LG_EAGAIN; the
 *  persistent queue's write failed: LG_EIO / LG_ENOMEM. Queue disabled: LG_OK once
 *  delivered, LG_EINVAL after a permanent failure, LG_EAGAIN when retries ran out. Every
 *  refusal is counted (enqueue_failed or send_failed). */
int lg_exporter_helper_consume(struct lg_exporter_helper *h, struct lg_batch *b);
/** Stops taking data, drains the queue until the deadline (a persistent queue keeps what
 *  is left for the next start; a memory queue counts it as failed), joins the threads. */
int lg_exporter_helper_shutdown(struct lg_exporter_helper *h, int64_t deadline_mono_ns);
void lg_exporter_helper_destroy(struct lg_exporter_helper *h);
/** What the queue holds now, in the sizer's units (the otelcol_exporter_queue_size gauge). */
int64_t lg_exporter_helper_queue_size(struct lg_exporter_helper *h);

#endif
