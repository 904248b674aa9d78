/* core/exporter_helper.c — the sending queue, consumer threads and retry loop every exporter
 * shares (contract in exporter_helper.h).
 *
 * Owns: the queue (batch references in memory, or the exporter's segment logs for a
 * persistent queue), the consumer threads, and the exporter's otelcol_exporter_* counters
 * and queue gauges. One queue per exporter instance, shared by the signals it serves;
 * queue_size bounds the total measured by the sizer. A persistent queue keeps one segment
 * log per signal (the file_storage extension gives each exporter ID + signal a directory);
 * the in-memory side then holds nothing but the logs' counters. */
#include "exporter_helper.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "runtime.h"
#include "segment_log.h"

/* ---- configuration ---- */

static int parse_sizer(const struct lg_node *n, void *dst, struct lg_arena *arena,
                       struct lg_err *err)
{
    (void)arena;
    enum lg_queue_sizer *out = dst;
    const char *s = n->scalar ? n->scalar : "";
    if (n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "expected requests, items or bytes");
    if (strcmp(s, "requests") == 0)
        *out = LG_SIZER_REQUESTS;
    else if (strcmp(s, "items") == 0)
        *out = LG_SIZER_ITEMS;
    else if (strcmp(s, "bytes") == 0)
        *out = LG_SIZER_BYTES;
    else
        return lg_conf_error(err, n, "expected requests, items or bytes, got \"%s\"", s);
    return LG_OK;
}

const struct lg_conf_field lg_exporter_helper_timeout_fields[] = {
    LG_CONF_DURATION("timeout", "5s", struct lg_exporter_helper_conf, timeout_ns,
                     "time limit for one send attempt (0: none)"),
    LG_CONF_END,
};

const struct lg_conf_field lg_retry_fields[] = {
    LG_CONF_BOOL("enabled", "true", struct lg_retry_conf, enabled, "retry retryable failures"),
    LG_CONF_DURATION("initial_interval", "5s", struct lg_retry_conf, initial_interval_ns,
                     "wait before the first retry"),
    LG_CONF_DURATION("max_interval", "30s", struct lg_retry_conf, max_interval_ns,
                     "upper bound of the wait between retries"),
    LG_CONF_DURATION("max_elapsed_time", "300s", struct lg_retry_conf, max_elapsed_time_ns,
                     "give up on a batch after this long (0: never)"),
    LG_CONF_DOUBLE("multiplier", "1.5", struct lg_retry_conf, multiplier, 0, 1e6,
                   "each wait is the previous one times this"),
    LG_CONF_DOUBLE("randomization_factor", "0.5", struct lg_retry_conf, randomization_factor, 0, 1,
                   "each wait is randomised by up to ± this fraction"),
    LG_CONF_END,
};

const struct lg_conf_field lg_queue_fields[] = {
    LG_CONF_BOOL("enabled", "true", struct lg_queue_conf, enabled,
                 "queue in front of the sender (false: send on the caller's thread)"),
    LG_CONF_INT("num_consumers", "10", struct lg_queue_conf, num_consumers, 1, 1024,
                "threads sending from the queue"),
    LG_CONF_INT("queue_size", "1000", struct lg_queue_conf, queue_size, 1, 1e15,
                "capacity, in units of the sizer"),
    LG_CONF_CUSTOM("sizer", "requests", struct lg_queue_conf, sizer, parse_sizer,
                   "requests | items (spans, points, records) | bytes (protobuf size)"),
    LG_CONF_BOOL("block_on_overflow", "false", struct lg_queue_conf, block_on_overflow,
                 "when full, wait for room (up to the timeout) instead of refusing at once"),
    LG_CONF_STRING("storage", NULL, struct lg_queue_conf, storage,
                   "ID of a file_storage extension: a persistent queue"),
    LG_CONF_END,
};

/* ---- state ---- */

struct qentry {
    struct qentry *next;
    struct lg_batch *b;
    int64_t size;
};

/* What became of one batch handed to deliver(). */
enum delivery { DELIVERED, FAILED, ABANDONED };

struct lg_exporter_helper {
    struct lg_component *c;
    const char *id;
    struct lg_exporter_helper_conf conf;
    lg_export_send_fn send;
    void *ctx;
    struct lg_component *storage_ext; /* file_storage, or NULL */

    pthread_mutex_t mu;
    pthread_cond_t cv_work;  /* data queued, or stopping */
    pthread_cond_t cv_room;  /* room freed, or stopping */
    pthread_cond_t cv_sleep; /* retry sleepers: stopping */
    struct qentry *head, *tail;
    int64_t used;     /* memory queue, in sizer units */
    int64_t reserved; /* persistent queue: room taken by appends in progress */
    int appending;    /* appends in progress (shutdown waits for them) */
    struct lg_segment_log *plog[LG_SIGNAL_COUNT];
    unsigned next_signal; /* round robin over persistent logs */
    bool started, stopping;
    int64_t drain_deadline;
    pthread_t *threads;
    size_t nthreads;

    /* rate-limited log of permanent errors: a new message is logged at once, a repeat of
     * the last one at most every LOG_REPEAT_NS */
    pthread_mutex_t log_mu;
    char last_msg[256];
    int64_t last_msg_ns;
    uint64_t suppressed;

    struct lg_counter *sent[LG_SIGNAL_COUNT], *send_failed[LG_SIGNAL_COUNT],
        *enqueue_failed[LG_SIGNAL_COUNT], *redelivered[LG_SIGNAL_COUNT];
    struct lg_counter *corrupt;
    uint64_t corrupt_reported[LG_SIGNAL_COUNT];
};

#define LOG_REPEAT_NS (10LL * 1000000000LL)

/* ---- helpers ---- */

static struct lg_telemetry *telemetry_of(const struct lg_component *c)
{
    return c->rt ? c->rt->telemetry : NULL;
}

static int64_t batch_size(const struct lg_exporter_helper *h, const struct lg_batch *b)
{
    switch (h->conf.sending_queue.sizer) {
    case LG_SIZER_ITEMS: return (int64_t)b->items;
    case LG_SIZER_BYTES: return (int64_t)protobuf_c_message_get_packed_size(b->req.msg);
    case LG_SIZER_REQUESTS: break;
    }
    return 1;
}

static int64_t record_size(const struct lg_exporter_helper *h, uint64_t records, uint64_t items,
                           uint64_t bytes)
{
    switch (h->conf.sending_queue.sizer) {
    case LG_SIZER_ITEMS: return (int64_t)items;
    case LG_SIZER_BYTES: return (int64_t)(bytes - records); /* minus the signal byte each */
    case LG_SIZER_REQUESTS: break;
    }
    return (int64_t)records;
}

/* Caller holds mu. Everything waiting in the queue, in sizer units. */
static int64_t queue_used_locked(struct lg_exporter_helper *h)
{
    if (h->storage_ext == NULL)
        return h->used;
    int64_t used = h->reserved;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        if (h->plog[s]) {
            struct lg_segment_log_stats st;
            lg_segment_log_stats(h->plog[s], &st);
            used += record_size(h, st.pending_records, st.pending_items, st.pending_bytes);
        }
    return used;
}

static bool has_work_locked(struct lg_exporter_helper *h)
{
    if (h->storage_ext == NULL)
        return h->head != NULL;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        if (h->plog[s]) {
            struct lg_segment_log_stats st;
            lg_segment_log_stats(h->plog[s], &st);
            if (st.pending_records)
                return true;
        }
    return false;
}

static double gauge_queue_size(void *arg)
{
    struct lg_exporter_helper *h = arg;
    pthread_mutex_lock(&h->mu);
    int64_t u = queue_used_locked(h);
    pthread_mutex_unlock(&h->mu);
    return (double)u;
}

static double gauge_queue_capacity(void *arg)
{
    struct lg_exporter_helper *h = arg;
    return (double)h->conf.sending_queue.queue_size;
}

static void timespec_at(int64_t mono_ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(mono_ns / 1000000000LL);
    ts->tv_nsec = (long)(mono_ns % 1000000000LL);
}

/* Waits on cv (monotonic clock) until deadline; caller holds mu. */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_mono_ns)
{
    struct timespec ts;
    timespec_at(deadline_mono_ns, &ts);
    pthread_cond_timedwait(cv, mu, &ts);
}

static void log_permanent(struct lg_exporter_helper *h, const struct lg_batch *b, const char *what,
                          const char *msg)
{
    int64_t now = lg_now_mono_ns();
    pthread_mutex_lock(&h->log_mu);
    bool same = strncmp(h->last_msg, msg, sizeof h->last_msg - 1) == 0;
    if (!same || now - h->last_msg_ns >= LOG_REPEAT_NS) {
        uint64_t sup = h->suppressed;
        h->suppressed = 0;
        snprintf(h->last_msg, sizeof h->last_msg, "%s", msg);
        h->last_msg_ns = now;
        pthread_mutex_unlock(&h->log_mu);
        if (sup)
            lg_error(h->id, "dropping %zu %s: %s: %s (%" PRIu64 " similar failures not logged)",
                     b->items, lg_signal_item_noun(b->signal), what, msg, sup);
        else
            lg_error(h->id, "dropping %zu %s: %s: %s", b->items, lg_signal_item_noun(b->signal),
                     what, msg);
        return;
    }
    h->suppressed++;
    pthread_mutex_unlock(&h->log_mu);
}

static double rand_unit(unsigned *seed)
{
    return (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
}

/* One batch through the retry loop. `queued`: running on a consumer thread (shutdown
 * bounds the retries by the drain deadline) rather than on the caller's thread. Counts
 * sent / send_failed itself, except for ABANDONED (left to the caller: a persistent queue
 * keeps it, a memory queue counts it). *last_code gets the final send() code. */
static enum delivery deliver(struct lg_exporter_helper *h, struct lg_batch *b, unsigned *seed,
                             int *last_code)
{
    const struct lg_retry_conf *rc = &h->conf.retry_on_failure;
    int64_t start = lg_now_mono_ns();
    double interval = (double)rc->initial_interval_ns;
    for (int attempt = 0;; attempt++) {
        int64_t now = lg_now_mono_ns();
        int64_t deadline = h->conf.timeout_ns > 0 ? now + h->conf.timeout_ns : INT64_MAX;
        pthread_mutex_lock(&h->mu);
        bool stopping = h->stopping;
        int64_t drain = h->drain_deadline;
        pthread_mutex_unlock(&h->mu);
        if (stopping && attempt > 0 && now >= drain)
            return *last_code = LG_EAGAIN, ABANDONED;
        if (stopping && drain < deadline)
            deadline = drain;
        struct lg_export_result res;
        memset(&res, 0, sizeof res);
        res.code = LG_EINTERNAL;
        h->send(h->ctx, b, deadline, &res);
        *last_code = res.code;
        if (res.code == LG_OK) {
            int64_t rejected = res.rejected < 0 ? 0 : res.rejected;
            if ((size_t)rejected > b->items)
                rejected = (int64_t)b->items;
            lg_counter_add(h->sent[b->signal], b->items - (size_t)rejected);
            if (rejected > 0) {
                lg_counter_add(h->send_failed[b->signal], (uint64_t)rejected);
                lg_warn(h->id, "partial success: the backend rejected %" PRId64 " of %zu %s%s%s",
                        rejected, b->items, lg_signal_item_noun(b->signal),
                        res.message[0] ? ": " : "", res.message);
            }
            return DELIVERED;
        }
        bool permanent = res.code == LG_EINVAL || res.code == LG_ETOOBIG;
        if (permanent || !rc->enabled) {
            lg_counter_add(h->send_failed[b->signal], b->items);
            log_permanent(h, b,
                          permanent ? "permanent error"
                                    : "send failed and retry_on_failure is disabled",
                          res.message[0] ? res.message : "(no message)");
            return FAILED;
        }
        double jitter = 1.0 + rc->randomization_factor * (2.0 * rand_unit(seed) - 1.0);
        int64_t wait = (int64_t)(interval * jitter);
        if (res.retry_after_ns > wait)
            wait = res.retry_after_ns;
        if (wait < 0)
            wait = 0;
        interval *= rc->multiplier;
        if (interval > (double)rc->max_interval_ns)
            interval = (double)rc->max_interval_ns;
        now = lg_now_mono_ns();
        if (rc->max_elapsed_time_ns > 0 && now + wait - start > rc->max_elapsed_time_ns) {
            lg_counter_add(h->send_failed[b->signal], b->items);
            char msg[400];
            snprintf(msg, sizeof msg,
                     "no more retries left after %d attempts (max_elapsed_time): %s", attempt + 1,
                     res.message[0] ? res.message : "(no message)");
            log_permanent(h, b, "giving up", msg);
            return FAILED;
        }
        lg_debug(h->id, "attempt %d failed (%s); retrying in %" PRId64 " ms", attempt + 1,
                 res.message[0] ? res.message : "retryable", wait / 1000000);
        /* Sleep, woken early by shutdown; during shutdown keep retrying until the drain
         * deadline, then give the batch back (abandoned). */
        int64_t wake = now + wait;
        pthread_mutex_lock(&h->mu);
        for (;;) {
            int64_t t = lg_now_mono_ns();
            if (t >= wake)
                break;
            if (h->stopping && t >= h->drain_deadline)
                break;
            int64_t until = wake;
            if (h->stopping && h->drain_deadline < until)
                until = h->drain_deadline;
            cond_wait_until(&h->cv_sleep, &h->mu, until);
        }
        bool give_back = h->stopping && lg_now_mono_ns() >= h->drain_deadline;
        pthread_mutex_unlock(&h->mu);
        if (give_back)
            return *last_code = LG_EAGAIN, ABANDONED;
    }
}

/* ---- consumers ---- */

/* Takes the next persistent record (round robin over signals); caller holds mu. */
static int take_record_locked(struct lg_exporter_helper *h, int *sig, struct lg_segment_record *rec)
{
    for (int i = 0; i < LG_SIGNAL_COUNT; i++) {
        int s = (int)((h->next_signal + (unsigned)i) % LG_SIGNAL_COUNT);
        if (h->plog[s] == NULL)
            continue;
        if (lg_segment_log_read(h->plog[s], rec) == LG_OK) {
            h->next_signal = (unsigned)s + 1;
            *sig = s;
            return LG_OK;
        }
    }
    return LG_EAGAIN;
}

static void report_corrupt(struct lg_exporter_helper *h, int s)
{
    struct lg_segment_log_stats st;
    lg_segment_log_stats(h->plog[s], &st);
    if (st.corrupt_records > h->corrupt_reported[s]) {
        uint64_t n = st.corrupt_records - h->corrupt_reported[s];
        h->corrupt_reported[s] = st.corrupt_records;
        lg_counter_add(h->corrupt, n);
        lg_error(h->id, "persistent queue (%s): skipped %" PRIu64 " corrupt record(s)",
                 lg_signal_name((enum lg_signal)s), n);
    }
}

static void persistent_one(struct lg_exporter_helper *h, int s, struct lg_segment_record *rec,
                           unsigned *seed)
{
    struct lg_batch *b = NULL;
    struct lg_err err;
    if (rec->len < 1 || rec->data[0] != (uint8_t)s ||
        lg_batch_decode((enum lg_signal)s, rec->data + 1, rec->len - 1, &b, &err) != LG_OK) {
        /* The CRC matched, so the bytes are what was written: count it as corrupt anyway
         * (it cannot be sent) and move on. */
        lg_counter_add(h->corrupt, 1);
        lg_error(h->id, "persistent queue (%s): a record does not decode; skipped",
                 lg_signal_name((enum lg_signal)s));
        lg_segment_log_ack(h->plog[s], rec->id);
        return;
    }
    if (rec->redelivery)
        lg_counter_add(h->redelivered[s], b->items);
    int code = LG_OK;
    enum delivery d = deliver(h, b, seed, &code);
    if (d != ABANDONED)
        lg_segment_log_ack(h->plog[s], rec->id);
    lg_batch_unref(b);
}

static void *consumer_main(void *arg)
{
    struct lg_exporter_helper *h = arg;
    unsigned seed = (unsigned)lg_now_mono_ns() ^ (unsigned)(uintptr_t)&seed;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->stopping && !has_work_locked(h))
            pthread_cond_wait(&h->cv_work, &h->mu);
        if (h->stopping && (!has_work_locked(h) || lg_now_mono_ns() >= h->drain_deadline))
            break;
        if (h->storage_ext == NULL) {
            struct qentry *e = h->head;
            h->head = e->next;
            if (h->head == NULL)
                h->tail = NULL;
            h->used -= e->size;
            pthread_cond_broadcast(&h->cv_room);
            pthread_mutex_unlock(&h->mu);
            int code = LG_OK;
            if (deliver(h, e->b, &seed, &code) == ABANDONED) {
                lg_counter_add(h->send_failed[e->b->signal], e->b->items);
                lg_error(h->id, "dropping %zu %s at shutdown: not delivered before the deadline",
                         e->b->items, lg_signal_item_noun(e->b->signal));
            }
            lg_batch_unref(e->b);
            free(e);
        } else {
            int s = 0;
            struct lg_segment_record rec;
            int rc = take_record_locked(h, &s, &rec);
            for (int i = 0; i < LG_SIGNAL_COUNT; i++)
                if (h->plog[i])
                    report_corrupt(h, i);
            pthread_cond_broadcast(&h->cv_room);
            pthread_mutex_unlock(&h->mu);
            if (rc == LG_OK) {
                persistent_one(h, s, &rec, &seed);
                free(rec.data);
            }
        }
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- life cycle ---- */

static int conf_err(struct lg_component *c, const char *section, const char *key,
                    struct lg_err *err, const char *msg)
{
    const struct lg_node *sec = section ? lg_node_get(c->conf_node, section) : c->conf_node;
    const struct lg_node *n = lg_node_get(sec, key);
    if (n)
        return lg_conf_error(err, n, "%s", msg);
    return lg_err_set(err, LG_EINVAL, "exporters.%s.%s%s%s: %s", c->id, section ? section : "",
                      section ? "." : "", key, msg);
}

int lg_exporter_helper_create(struct lg_component *c, const struct lg_exporter_helper_conf *conf,
                              lg_export_send_fn send, void *ctx, struct lg_exporter_helper **out,
                              struct lg_err *err)
{
    *out = NULL;
    if (conf->timeout_ns < 0)
        return conf_err(c, NULL, "timeout", err, "must not be negative");
    const struct lg_retry_conf *r = &conf->retry_on_failure;
    if (r->enabled) {
        if (r->initial_interval_ns <= 0)
            return conf_err(c, "retry_on_failure", "initial_interval", err, "must be positive");
        if (r->max_interval_ns <= 0)
            return conf_err(c, "retry_on_failure", "max_interval", err, "must be positive");
        if (r->max_elapsed_time_ns < 0)
            return conf_err(c, "retry_on_failure", "max_elapsed_time", err,
                            "must not be negative (0 = retry forever)");
        if (!(r->multiplier > 0))
            return conf_err(c, "retry_on_failure", "multiplier", err, "must be positive");
    }
    const struct lg_queue_conf *q = &conf->sending_queue;
    struct lg_component *ext = NULL;
    if (q->enabled && q->storage && q->storage[0]) {
        ext = lg_runtime_find_extension(c->rt, q->storage);
        if (ext == NULL) {
            char msg[512];
            snprintf(msg, sizeof msg,
                     "names extension \"%s\", which is not configured under extensions and listed "
                     "in service.extensions",
                     q->storage);
            return conf_err(c, "sending_queue", "storage", err, msg);
        }
        if (!lg_file_storage_is(ext)) {
            char msg[512];
            snprintf(msg, sizeof msg, "extension \"%s\" is not a file_storage extension",
                     q->storage);
            return conf_err(c, "sending_queue", "storage", err, msg);
        }
    }
    struct lg_exporter_helper *h = calloc(1, sizeof *h);
    if (h == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    h->c = c;
    h->id = c->id;
    h->conf = *conf;
    h->send = send;
    h->ctx = ctx;
    h->storage_ext = ext;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->log_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv_work, &ca);
    pthread_cond_init(&h->cv_room, &ca);
    pthread_cond_init(&h->cv_sleep, &ca);
    pthread_condattr_destroy(&ca);

    struct lg_telemetry *t = telemetry_of(c);
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", c->id);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        const char *noun = lg_signal_item_noun((enum lg_signal)s);
        char name[128];
        snprintf(name, sizeof name, "otelcol_exporter_sent_%s", noun);
        h->sent[s] = lg_telemetry_counter(
            t, name, "Number of items successfully sent to destination.", labels);
        snprintf(name, sizeof name, "otelcol_exporter_send_failed_%s", noun);
        h->send_failed[s] =
            lg_telemetry_counter(t, name, "Number of items that failed to be sent.", labels);
        snprintf(name, sizeof name, "otelcol_exporter_enqueue_failed_%s", noun);
        h->enqueue_failed[s] = lg_telemetry_counter(
            t, name, "Number of items that failed to be added to the sending queue.", labels);
        if (ext) {
            snprintf(name, sizeof name, "otelcol_exporter_persistent_queue_redelivered_%s", noun);
            h->redelivered[s] =
                lg_telemetry_counter(t, name,
                                     "Items sent again after a restart because their delivery was "
                                     "not confirmed before it (the backend may hold them twice).",
                                     labels);
        }
    }
    if (ext)
        h->corrupt = lg_telemetry_counter(
            t, "otelcol_exporter_persistent_queue_corrupt_records",
            "Corrupt regions (torn or damaged records) skipped in the persistent queue.", labels);
    if (q->enabled && t) {
        lg_telemetry_gauge_fn(t, "otelcol_exporter_queue_size",
                              "Current size of the retry queue (in the sizer's units).", labels,
                              gauge_queue_size, h);
        lg_telemetry_gauge_fn(t, "otelcol_exporter_queue_capacity",
                              "Fixed capacity of the retry queue (in the sizer's units).", labels,
                              gauge_queue_capacity, h);
    }
    *out = h;
    return LG_OK;
}

int lg_exporter_helper_start(struct lg_exporter_helper *h, struct lg_err *err)
{
    if (!h->conf.sending_queue.enabled) {
        h->started = true;
        return LG_OK;
    }
    if (h->storage_ext) {
        unsigned sigs = h->c->type ? h->c->type->signals : (LG_TRACES | LG_METRICS | LG_LOGS);
        for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
            if (!(sigs & LG_SIG_BIT(s)))
                continue;
            int rc = lg_file_storage_open_queue(h->storage_ext, h->id, (enum lg_signal)s,
                                                &h->plog[s], err);
            if (rc != LG_OK) {
                lg_err_prefix(err, "exporters.%s.sending_queue.storage", h->id);
                for (int k = 0; k < s; k++) {
                    lg_segment_log_close(h->plog[k]);
                    h->plog[k] = NULL;
                }
                return rc;
            }
            struct lg_segment_log_stats st;
            lg_segment_log_stats(h->plog[s], &st);
            report_corrupt(h, s);
            if (st.replayed_records)
                lg_info(h->id,
                        "persistent queue (%s): replaying %" PRIu64 " request(s), %" PRIu64
                        " %s (%" PRIu64 " of them possibly delivered before the restart)",
                        lg_signal_name((enum lg_signal)s), st.replayed_records, st.replayed_items,
                        lg_signal_item_noun((enum lg_signal)s), st.redelivered_items);
        }
    }
    size_t n = (size_t)h->conf.sending_queue.num_consumers;
    h->threads = calloc(n, sizeof *h->threads);
    if (h->threads == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (pthread_create(&h->threads[i], NULL, consumer_main, h) != 0) {
            lg_exporter_helper_shutdown(h, lg_now_mono_ns());
            return lg_err_set(err, LG_EINTERNAL, "exporters.%s: cannot start consumer threads",
                              h->id);
        }
        h->nthreads++;
    }
    h->started = true;
    return LG_OK;
}

/* Serialises b into a persistent record: signal byte + protobuf. */
static int persist(struct lg_exporter_helper *h, struct lg_batch *b)
{
    size_t len = protobuf_c_message_get_packed_size(b->req.msg);
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL)
        return LG_ENOMEM;
    buf[0] = (uint8_t)b->signal;
    protobuf_c_message_pack(b->req.msg, buf + 1);
    struct lg_err err;
    uint32_t items = b->items > UINT32_MAX ? UINT32_MAX : (uint32_t)b->items;
    int rc = lg_segment_log_append(h->plog[b->signal], buf, len + 1, items, &err);
    free(buf);
    if (rc != LG_OK)
        lg_error(h->id, "persistent queue: %s", err.msg);
    return rc;
}

int lg_exporter_helper_consume(struct lg_exporter_helper *h, struct lg_batch *b)
{
    if (!h->conf.sending_queue.enabled) {
        pthread_mutex_lock(&h->mu);
        bool stopping = h->stopping;
        pthread_mutex_unlock(&h->mu);
        if (stopping) {
            lg_counter_add(h->enqueue_failed[b->signal], b->items);
            return LG_EAGAIN;
        }
        unsigned seed = (unsigned)lg_now_mono_ns();
        int code = LG_OK;
        enum delivery d = deliver(h, b, &seed, &code);
        if (d == DELIVERED)
            return LG_OK;
        if (d == ABANDONED)
            lg_counter_add(h->send_failed[b->signal], b->items);
        /* permanent: the client must not retry (400); anything else it may (503) */
        return code == LG_EINVAL || code == LG_ETOOBIG ? LG_EINVAL : LG_EAGAIN;
    }
    int64_t size = batch_size(h, b);
    int64_t cap = h->conf.sending_queue.queue_size;
    pthread_mutex_lock(&h->mu);
    int64_t give_up = h->conf.timeout_ns > 0 ? lg_now_mono_ns() + h->conf.timeout_ns : INT64_MAX;
    for (;;) {
        if (h->stopping || !h->started) {
            pthread_mutex_unlock(&h->mu);
            lg_counter_add(h->enqueue_failed[b->signal], b->items);
            return LG_EAGAIN;
        }
        if (h->storage_ext && h->plog[b->signal] == NULL) {
            /* a signal this exporter type does not declare */
            pthread_mutex_unlock(&h->mu);
            lg_counter_add(h->enqueue_failed[b->signal], b->items);
            return LG_EINTERNAL;
        }
        if (queue_used_locked(h) + size <= cap)
            break;
        if (!h->conf.sending_queue.block_on_overflow || size > cap || lg_now_mono_ns() >= give_up) {
            pthread_mutex_unlock(&h->mu);
            lg_counter_add(h->enqueue_failed[b->signal], b->items);
            return LG_EFULL;
        }
        cond_wait_until(&h->cv_room, &h->mu, give_up);
    }
    int rc = LG_OK;
    if (h->storage_ext) {
        /* Room is reserved under mu, the write (and fdatasync) happens outside it so that
         * consumers keep taking records meanwhile. */
        h->reserved += size;
        h->appending++;
        pthread_mutex_unlock(&h->mu);
        rc = persist(h, b);
        pthread_mutex_lock(&h->mu);
        h->reserved -= size;
        h->appending--;
        pthread_cond_broadcast(&h->cv_room);
    } else {
        struct qentry *e = malloc(sizeof *e);
        if (e == NULL) {
            rc = LG_ENOMEM;
        } else {
            e->next = NULL;
            e->b = lg_batch_ref(b);
            e->size = size;
            if (h->tail)
                h->tail->next = e;
            else
                h->head = e;
            h->tail = e;
            h->used += size;
        }
    }
    if (rc == LG_OK)
        pthread_cond_signal(&h->cv_work);
    pthread_mutex_unlock(&h->mu);
    if (rc != LG_OK)
        lg_counter_add(h->enqueue_failed[b->signal], b->items);
    return rc;
}

int64_t lg_exporter_helper_queue_size(struct lg_exporter_helper *h)
{
    return (int64_t)gauge_queue_size(h);
}

int lg_exporter_helper_shutdown(struct lg_exporter_helper *h, int64_t deadline_mono_ns)
{
    if (h == NULL)
        return LG_OK;
    pthread_mutex_lock(&h->mu);
    if (!h->stopping) {
        h->stopping = true;
        h->drain_deadline = deadline_mono_ns;
    }
    pthread_cond_broadcast(&h->cv_work);
    pthread_cond_broadcast(&h->cv_room);
    pthread_cond_broadcast(&h->cv_sleep);
    while (h->appending > 0)
        pthread_cond_wait(&h->cv_room, &h->mu);
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < h->nthreads; i++)
        pthread_join(h->threads[i], NULL);
    free(h->threads);
    h->threads = NULL;
    h->nthreads = 0;

    uint64_t left[LG_SIGNAL_COUNT] = {0}, left_req = 0;
    while (h->head) {
        struct qentry *e = h->head;
        h->head = e->next;
        left[e->b->signal] += e->b->items;
        left_req++;
        lg_counter_add(h->send_failed[e->b->signal], e->b->items);
        lg_batch_unref(e->b);
        free(e);
    }
    h->tail = NULL;
    h->used = 0;
    if (left_req)
        lg_error(h->id,
                 "shutdown deadline reached with %" PRIu64
                 " request(s) still queued: dropped %" PRIu64 " spans, %" PRIu64
                 " metric points, %" PRIu64 " log records",
                 left_req, left[LG_SIGNAL_TRACES], left[LG_SIGNAL_METRICS], left[LG_SIGNAL_LOGS]);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        if (h->plog[s] == NULL)
            continue;
        struct lg_segment_log_stats st;
        lg_segment_log_stats(h->plog[s], &st);
        report_corrupt(h, s);
        if (st.unacked_records)
            lg_info(h->id,
                    "persistent queue (%s): %" PRIu64 " request(s) kept on disk for the next start",
                    lg_signal_name((enum lg_signal)s), st.unacked_records);
        lg_segment_log_close(h->plog[s]);
        h->plog[s] = NULL;
    }
    return LG_OK;
}

void lg_exporter_helper_destroy(struct lg_exporter_helper *h)
{
    if (h == NULL)
        return;
    lg_exporter_helper_shutdown(h, lg_now_mono_ns());
    lg_telemetry_gauge_forget(telemetry_of(h->c), h);
    pthread_cond_destroy(&h->cv_work);
    pthread_cond_destroy(&h->cv_room);
    pthread_cond_destroy(&h->cv_sleep);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->log_mu);
    free(h);
}
