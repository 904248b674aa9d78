/* processors/memory_limiter.h — what the memory_limiter processor exposes beyond the
 * component contract: the memory-reading helpers it is built on and hooks for unit tests
 * (a fake RSS source, a synchronous check). Nothing else in the gateway needs this header. */
#ifndef LG_PROCESSORS_MEMORY_LIMITER_H
#define LG_PROCESSORS_MEMORY_LIMITER_H

#include <stdint.h>

#include "../core/component.h"

/** Where the limiter reads the process's memory use: 0 and *bytes on success, LG_EIO when
 *  it cannot be read (the limiter then keeps its previous verdict). Thread-safe. */
typedef int (*lg_ml_rss_fn)(void *arg, uint64_t *bytes);

/** Limit states, also the value of the llmgate_memory_limiter_state gauge. */
enum lg_ml_level { LG_ML_OK = 0, LG_ML_SOFT = 1, LG_ML_HARD = 2 };

/** Resident set size of this process from /proc/self/statm. */
int lg_ml_read_rss(void *arg, uint64_t *bytes);

/** Memory available to the process: the cgroup v2 memory.max of its cgroup (below
 *  `cgroup_root`, normally "/sys/fs/cgroup", found through `self_cgroup`, normally
 *  "/proc/self/cgroup") when it is set, else MemTotal from `meminfo` ("/proc/meminfo");
 *  the smaller of the two when both are known. LG_EIO when neither can be read. */
int lg_ml_total_memory(const char *cgroup_root, const char *self_cgroup, const char *meminfo,
                       uint64_t *bytes);

/* ---- test hooks (a created, not necessarily started, memory_limiter component) ---- */

/** Replaces the RSS source (default lg_ml_read_rss). */
void lg_ml_set_rss_source(struct lg_component *c, lg_ml_rss_fn fn, void *arg);
/** Reads memory now as the checker thread does (malloc_trim included) and returns the
 *  resulting level. */
enum lg_ml_level lg_ml_check_now(struct lg_component *c);
/** The current level. */
enum lg_ml_level lg_ml_level(struct lg_component *c);
/** The hard limit and the spike allowance in bytes, as computed from the config. */
void lg_ml_limits(struct lg_component *c, uint64_t *limit, uint64_t *spike);

#endif
