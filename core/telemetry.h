/* core/telemetry.h — the gateway's own metrics, exposed in Prometheus text format.
 *
 * Counters are created once (at component create/start) and then updated lock-free from
 * any thread. Names and labels follow the Collector (otelcol_receiver_accepted_spans with
 * receiver="otlp",transport="grpc") so existing dashboards and alerts work. */
#ifndef LG_TELEMETRY_H
#define LG_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

struct lg_telemetry;
struct lg_counter;

struct lg_telemetry *lg_telemetry_create(void);
void lg_telemetry_destroy(struct lg_telemetry *t);

/** Returns the counter with this name and label set, creating it (thread-safe). `labels` is
 *  Prometheus label text without braces, e.g. `receiver="otlp",transport="grpc"` (may be "").
 *  NULL only on OOM; lg_counter_add(NULL, ...) is a no-op. */
struct lg_counter *lg_telemetry_counter(struct lg_telemetry *t, const char *name,
                                        const char *help, const char *labels);
void lg_counter_add(struct lg_counter *c, uint64_t n);
uint64_t lg_counter_value(const struct lg_counter *c);

/** A histogram with fixed upper bounds (ascending, at most LG_HISTOGRAM_MAX_BOUNDS; the
 *  +Inf bucket is implicit) of integer observations, rendered as Prometheus _bucket /
 *  _sum / _count. Same creation rules as counters; the bounds of the first creation win.
 *  lg_histogram_observe(NULL, ...) is a no-op; observing is lock-free. */
#define LG_HISTOGRAM_MAX_BOUNDS 32
struct lg_histogram;
struct lg_histogram *lg_telemetry_histogram(struct lg_telemetry *t, const char *name,
                                            const char *help, const char *labels,
                                            const double *bounds, size_t nbounds);
void lg_histogram_observe(struct lg_histogram *h, uint64_t v);
/** Observations so far (for tests). */
uint64_t lg_histogram_count(const struct lg_histogram *h);
/** The OTel SDK's default explicit bucket bounds (0, 5, 10, 25, ... 10000). */
extern const double lg_histogram_default_bounds[];
extern const size_t lg_histogram_default_nbounds;
/** A gauge read at scrape time through fn(arg). */
int lg_telemetry_gauge_fn(struct lg_telemetry *t, const char *name, const char *help,
                          const char *labels, double (*fn)(void *arg), void *arg);

/** Detaches every gauge whose fn argument is `arg` (it reads 0 from now on): for owners
 *  that go away while the process runs (a load-balancing backend removed by DNS). A later
 *  lg_telemetry_gauge_fn with the same name and labels attaches it again. */
void lg_telemetry_gauge_forget(struct lg_telemetry *t, void *arg);

/** Renders every metric as Prometheus text exposition (malloc'd, *len set). */
char *lg_telemetry_render(struct lg_telemetry *t, size_t *len);

#endif
