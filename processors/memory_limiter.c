/* processors/memory_limiter.c — the `memory_limiter` processor (Collector semantics,
 * REFERENCE.md §3): refuses data retryably while the process uses more memory than its
 * soft limit (limit − spike), so an overloaded gateway pushes back on its senders instead
 * of growing until the kernel kills it.
 *
 * Memory use is the process's resident set size (the Collector looks at the Go heap; RSS
 * is what a container limit and the OOM killer count). A checker thread reads it every
 * check_interval; consume() also reads it when the last reading is stale or every few calls,
 * so a burst that arrives between two ticks is caught (a read is an open+read of
 * /proc/self/statm, a few microseconds, throttled to at most one per millisecond).
 * At or above the hard limit the checker calls malloc_trim(0) — the Collector forces a GC
 * there — and while soft-limited it does so at most every min_gc_interval_when_soft_limited,
 * so memory freed after a spike actually leaves the process and the limiter lets data in
 * again.
 *
 * Refusals return LG_EAGAIN (the receiver answers 503 + Retry-After / UNAVAILABLE) and are
 * counted in otelcol_processor_refused_{spans,metric_points,log_records}{processor=...};
 * the current level is the llmgate_memory_limiter_state gauge (0 ok, 1 soft, 2 hard).
 *
 * Owns: struct ml_state (c->state), its checker thread and the statm descriptor. */
#include "memory_limiter.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/runtime.h"

#define BYTES_PER_MIB ((uint64_t)1024 * 1024)
/* Spike allowance when spike_limit_mib is not set: 20% of the limit, as the Collector. */
#define DEFAULT_SPIKE_DIVISOR 5
/* consume() re-reads memory itself when the last reading is older than this (or than
 * check_interval, if shorter)... */
#define INLINE_STALE_NS (20 * 1000000LL)
/* ...or every this many calls, provided the last reading is at least INLINE_MIN_GAP_NS old:
 * many calls in a short time are exactly the burst the checker thread would miss. */
#define INLINE_EVERY_CALLS 32
#define INLINE_MIN_GAP_NS (1000000LL)

struct ml_conf {
    int64_t check_interval_ns;
    int64_t limit_mib;
    int64_t spike_limit_mib;
    int64_t limit_percentage;
    int64_t spike_limit_percentage;
    int64_t min_gc_soft_ns;
    int64_t min_gc_hard_ns;
};

static const struct lg_conf_field ml_fields[] = {
    LG_CONF_DURATION("check_interval", "0", struct ml_conf, check_interval_ns, "how often memory is measured (required; 1s advised)"),
    LG_CONF_INT("limit_mib", "0", struct ml_conf, limit_mib, 0, 1 << 30, "hard limit in MiB (exactly one of limit_mib and limit_percentage)"),
    LG_CONF_INT("spike_limit_mib", "0", struct ml_conf, spike_limit_mib, 0, 1 << 30, "headroom below the limit; soft limit = limit - spike (default 20% of limit_mib)"),
    LG_CONF_INT("limit_percentage", "0", struct ml_conf, limit_percentage, 0, 100, "hard limit as a percentage of total memory (cgroup memory.max or MemTotal)"),
    LG_CONF_INT("spike_limit_percentage", "0", struct ml_conf, spike_limit_percentage, 0, 100, "headroom as a percentage of total memory"),
    LG_CONF_DURATION("min_gc_interval_when_soft_limited", "10s", struct ml_conf, min_gc_soft_ns, "least time between malloc_trim calls while above the soft limit"),
    LG_CONF_DURATION("min_gc_interval_when_hard_limited", "0s", struct ml_conf, min_gc_hard_ns, "least time between malloc_trim calls while above the hard limit"),
    LG_CONF_END,
};

struct ml_state {
    struct lg_component *c;
    const struct ml_conf *conf;
    uint64_t limit, spike, soft; /* bytes */
    lg_ml_rss_fn rss_fn;
    void *rss_arg;
    _Atomic int level;                 /* enum lg_ml_level */
    _Atomic uint64_t rss;              /* last reading */
    _Atomic int64_t last_read_ns;      /* monotonic time of the last reading */
    _Atomic uint64_t calls;
    int64_t last_trim_ns;              /* checker thread only */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    bool thread_started;
    pthread_t thread;
    struct lg_counter *refused[LG_SIGNAL_COUNT];
};

/* ---- reading memory ---- */

int lg_ml_read_rss(void *arg, uint64_t *bytes)
{
    (void)arg;
    /* statm is "size resident shared text lib data dt" in pages. */
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return LG_EIO;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return LG_EIO;
    buf[n] = '\0';
    unsigned long long size_pages, resident_pages;
    if (sscanf(buf, "%llu %llu", &size_pages, &resident_pages) != 2)
        return LG_EIO;
    long page = sysconf(_SC_PAGESIZE);
    *bytes = (uint64_t)resident_pages * (uint64_t)(page > 0 ? page : 4096);
    return LG_OK;
}

/* Reads one unsigned number from a small file ("max" → *unlimited). */
static int read_u64_file(const char *path, uint64_t *v, bool *unlimited)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return LG_EIO;
    char buf[64] = {0};
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!ok)
        return LG_EIO;
    *unlimited = strncmp(buf, "max", 3) == 0;
    if (*unlimited)
        return LG_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno != 0 || end == buf)
        return LG_EIO;
    *v = x;
    return LG_OK;
}

static int cgroup_limit(const char *cgroup_root, const char *self_cgroup, uint64_t *bytes)
{
    /* cgroup v2: the line "0::/some/path" in /proc/self/cgroup; in a container whose
     * cgroup namespace hides the path it is "0::/" and the root file is the one. */
    char rel[600] = "";
    FILE *f = fopen(self_cgroup, "re");
    if (f != NULL) {
        char line[sizeof rel];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "0::", 3) == 0) {
                size_t n = strcspn(line + 3, "\n");
                memcpy(rel, line + 3, n);
                rel[n] = '\0';
                break;
            }
        }
        fclose(f);
    }
    char path[1100];
    uint64_t v = 0;
    bool unlimited = true;
    snprintf(path, sizeof path, "%s%s%s/memory.max", cgroup_root, rel[0] == '/' ? "" : "/", strcmp(rel, "/") == 0 ? "" : rel);
    if (read_u64_file(path, &v, &unlimited) != LG_OK) {
        snprintf(path, sizeof path, "%s/memory.max", cgroup_root);
        if (read_u64_file(path, &v, &unlimited) != LG_OK)
            return LG_EIO;
    }
    if (unlimited)
        return LG_EIO;
    *bytes = v;
    return LG_OK;
}

static int meminfo_total(const char *meminfo, uint64_t *bytes)
{
    FILE *f = fopen(meminfo, "re");
    if (f == NULL)
        return LG_EIO;
    char line[256];
    int rc = LG_EIO;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long kib;
        if (sscanf(line, "MemTotal: %llu kB", &kib) == 1) {
            *bytes = (uint64_t)kib * 1024;
            rc = LG_OK;
            break;
        }
    }
    fclose(f);
    return rc;
}

int lg_ml_total_memory(const char *cgroup_root, const char *self_cgroup, const char *meminfo,
                       uint64_t *bytes)
{
    uint64_t cg = 0, mem = 0;
    bool has_cg = cgroup_limit(cgroup_root, self_cgroup, &cg) == LG_OK && cg > 0;
    bool has_mem = meminfo_total(meminfo, &mem) == LG_OK && mem > 0;
    if (!has_cg && !has_mem)
        return LG_EIO;
    *bytes = has_cg && (!has_mem || cg < mem) ? cg : mem;
    return LG_OK;
}

/* ---- the check ---- */

static enum lg_ml_level level_for(const struct ml_state *st, uint64_t rss)
{
    return rss >= st->limit ? LG_ML_HARD : rss >= st->soft ? LG_ML_SOFT : LG_ML_OK;
}

static void set_level(struct ml_state *st, enum lg_ml_level lv, uint64_t rss)
{
    int old = atomic_exchange(&st->level, (int)lv);
    if (old == (int)lv)
        return;
    if (lv != LG_ML_OK && old == LG_ML_OK)
        lg_warn(st->c->id, "memory usage %" PRIu64 " MiB is above the soft limit (%" PRIu64 " MiB): refusing data",
                rss / BYTES_PER_MIB, st->soft / BYTES_PER_MIB);
    else if (lv == LG_ML_OK)
        lg_info(st->c->id, "memory usage %" PRIu64 " MiB is back under the soft limit (%" PRIu64 " MiB): accepting data",
                rss / BYTES_PER_MIB, st->soft / BYTES_PER_MIB);
}

/* Takes a reading and updates the level. `trim` (the checker thread only): give freed heap
 * back to the kernel when over the limits, then measure again. */
static enum lg_ml_level measure(struct ml_state *st, bool trim)
{
    uint64_t rss;
    if (st->rss_fn(st->rss_arg, &rss) != LG_OK)
        return (enum lg_ml_level)atomic_load(&st->level); /* keep the last verdict */
    int64_t now = lg_now_mono_ns();
    enum lg_ml_level lv = level_for(st, rss);
    if (trim && lv != LG_ML_OK) {
        int64_t gap = lv == LG_ML_HARD ? st->conf->min_gc_hard_ns : st->conf->min_gc_soft_ns;
        if (st->last_trim_ns == 0 || now - st->last_trim_ns >= gap) {
            malloc_trim(0);
            st->last_trim_ns = lg_now_mono_ns();
            uint64_t after;
            if (st->rss_fn(st->rss_arg, &after) == LG_OK) {
                lg_debug(st->c->id, "malloc_trim: RSS %" PRIu64 " -> %" PRIu64 " MiB", rss / BYTES_PER_MIB, after / BYTES_PER_MIB);
                rss = after;
                lv = level_for(st, rss);
            }
        }
    }
    atomic_store(&st->rss, rss);
    atomic_store(&st->last_read_ns, now);
    set_level(st, lv, rss);
    return lv;
}

static void *checker(void *arg)
{
    struct ml_state *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        pthread_mutex_unlock(&st->lock);
        measure(st, true);
        pthread_mutex_lock(&st->lock);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t at = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + st->conf->check_interval_ns;
        ts.tv_sec = (time_t)(at / 1000000000LL);
        ts.tv_nsec = (long)(at % 1000000000LL);
        while (!st->stopping && pthread_cond_timedwait(&st->cond, &st->lock, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

static int ml_consume(struct lg_component *c, struct lg_batch *b)
{
    struct ml_state *st = c->state;
    uint64_t calls = atomic_fetch_add_explicit(&st->calls, 1, memory_order_relaxed) + 1;
    int64_t now = lg_now_mono_ns();
    int64_t last = atomic_load_explicit(&st->last_read_ns, memory_order_relaxed);
    int64_t stale = st->conf->check_interval_ns < INLINE_STALE_NS ? st->conf->check_interval_ns : INLINE_STALE_NS;
    if (now - last >= stale || (calls % INLINE_EVERY_CALLS == 0 && now - last >= INLINE_MIN_GAP_NS)) {
        /* One thread reads; the others use the verdict it is about to publish. */
        if (atomic_compare_exchange_strong(&st->last_read_ns, &last, now))
            measure(st, false);
    }
    if (atomic_load_explicit(&st->level, memory_order_relaxed) != LG_ML_OK) {
        lg_counter_add(st->refused[b->signal], b->items);
        return LG_EAGAIN;
    }
    return lg_fanout_consume(&c->next[b->signal], b);
}

/* ---- life cycle ---- */

static double state_gauge(void *arg)
{
    struct ml_state *st = arg;
    return (double)atomic_load(&st->level);
}

static int ml_create(struct lg_component *c, struct lg_err *err)
{
    const struct ml_conf *conf = c->conf;
    const struct lg_node *n = c->conf_node;
    if (conf->check_interval_ns <= 0)
        return lg_conf_error(err, lg_node_get(n, "check_interval") ? lg_node_get(n, "check_interval") : n,
                             "check_interval must be greater than zero (1s is advised)");
    if (conf->limit_mib > 0 && conf->limit_percentage > 0)
        return lg_conf_error(err, lg_node_get(n, "limit_percentage"), "set only one of limit_mib and limit_percentage");
    if (conf->limit_mib == 0 && conf->limit_percentage == 0)
        return lg_conf_error(err, n, "one of limit_mib or limit_percentage must be greater than zero");
    if (conf->limit_mib > 0 && conf->spike_limit_percentage > 0)
        return lg_conf_error(err, lg_node_get(n, "spike_limit_percentage"), "goes with limit_percentage; with limit_mib use spike_limit_mib");
    if (conf->limit_percentage > 0 && conf->spike_limit_mib > 0)
        return lg_conf_error(err, lg_node_get(n, "spike_limit_mib"), "goes with limit_mib; with limit_percentage use spike_limit_percentage");
    if (conf->limit_mib > 0 && conf->spike_limit_mib >= conf->limit_mib)
        return lg_conf_error(err, lg_node_get(n, "spike_limit_mib"), "must be less than limit_mib (%lld)", (long long)conf->limit_mib);
    if (conf->limit_percentage > 0 && conf->spike_limit_percentage >= conf->limit_percentage)
        return lg_conf_error(err, lg_node_get(n, "spike_limit_percentage"), "must be less than limit_percentage (%lld)", (long long)conf->limit_percentage);
    uint64_t limit, spike;
    if (conf->limit_mib > 0) {
        limit = (uint64_t)conf->limit_mib * BYTES_PER_MIB;
        spike = conf->spike_limit_mib > 0 ? (uint64_t)conf->spike_limit_mib * BYTES_PER_MIB : limit / DEFAULT_SPIKE_DIVISOR;
    } else {
        uint64_t total;
        if (lg_ml_total_memory("/sys/fs/cgroup", "/proc/self/cgroup", "/proc/meminfo", &total) != LG_OK)
            return lg_conf_error(err, lg_node_get(n, "limit_percentage"), "cannot read the total memory (cgroup memory.max or /proc/meminfo); use limit_mib");
        limit = total / 100 * (uint64_t)conf->limit_percentage;
        /* As the Collector: the percentage spike applies as written (0 means none). */
        spike = total / 100 * (uint64_t)conf->spike_limit_percentage;
    }
    struct ml_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = conf;
    st->limit = limit;
    st->spike = spike;
    st->soft = limit - spike;
    st->rss_fn = lg_ml_read_rss;
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cond, &ca);
    pthread_condattr_destroy(&ca);
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[256];
    snprintf(labels, sizeof labels, "processor=\"%s\"", c->id);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        char name[96];
        snprintf(name, sizeof name, "otelcol_processor_refused_%s", lg_signal_item_noun((enum lg_signal)s));
        st->refused[s] = lg_telemetry_counter(t, name, "Number of items refused by the memory limiter.", labels);
    }
    if (t != NULL)
        lg_telemetry_gauge_fn(t, "llmgate_memory_limiter_state", "Memory limiter level: 0 accepting, 1 above the soft limit, 2 above the hard limit.",
                              labels, state_gauge, st);
    c->state = st;
    return LG_OK;
}

static int ml_start(struct lg_component *c, struct lg_err *err)
{
    struct ml_state *st = c->state;
    measure(st, false);
    if (pthread_create(&st->thread, NULL, checker, st) != 0)
        return lg_err_set(err, LG_EINTERNAL, "cannot start the memory check thread");
    st->thread_started = true;
    lg_info(c->id, "limit %" PRIu64 " MiB, soft limit %" PRIu64 " MiB (RSS now %" PRIu64 " MiB)",
            st->limit / BYTES_PER_MIB, st->soft / BYTES_PER_MIB, atomic_load(&st->rss) / BYTES_PER_MIB);
    return LG_OK;
}

static int ml_shutdown(struct lg_component *c, int64_t deadline)
{
    (void)deadline;
    struct ml_state *st = c->state;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (st->thread_started) {
        pthread_join(st->thread, NULL);
        st->thread_started = false;
    }
    return LG_OK;
}

static void ml_destroy(struct lg_component *c)
{
    struct ml_state *st = c->state;
    if (st == NULL)
        return;
    ml_shutdown(c, 0);
    pthread_cond_destroy(&st->cond);
    pthread_mutex_destroy(&st->lock);
    free(st);
    c->state = NULL;
}

/* ---- test hooks ---- */

void lg_ml_set_rss_source(struct lg_component *c, lg_ml_rss_fn fn, void *arg)
{
    struct ml_state *st = c->state;
    st->rss_fn = fn ? fn : lg_ml_read_rss;
    st->rss_arg = arg;
}

enum lg_ml_level lg_ml_check_now(struct lg_component *c)
{
    return measure(c->state, true);
}

enum lg_ml_level lg_ml_level(struct lg_component *c)
{
    struct ml_state *st = c->state;
    return (enum lg_ml_level)atomic_load(&st->level);
}

void lg_ml_limits(struct lg_component *c, uint64_t *limit, uint64_t *spike)
{
    struct ml_state *st = c->state;
    *limit = st->limit;
    *spike = st->spike;
}

const struct lg_component_type lg_memory_limiter_processor = {
    .type = "memory_limiter",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "refuses data retryably while the process is above its memory soft limit",
    .conf_size = sizeof(struct ml_conf),
    .fields = ml_fields,
    .create = ml_create,
    .start = ml_start,
    .consume = ml_consume,
    .shutdown = ml_shutdown,
    .destroy = ml_destroy,
};
