/* tests/unit/test_memory_limiter.c — the memory_limiter processor: limits computed from the
 * config (Collector defaults), config errors with YAML paths, refusing retryably above the
 * soft limit and passing data through below it (with a fake RSS source), the inline check
 * that catches a burst between two checker ticks, counters and the state gauge, and reading
 * total memory from cgroup v2 / meminfo files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/runtime.h"
#include "processors/memory_limiter.h"
#include "sink.h"

extern const struct lg_component_type lg_memory_limiter_processor;

#define MIB ((uint64_t)1024 * 1024)

struct fake_rss {
    _Atomic uint64_t bytes;
    _Atomic int reads;
};

static int fake_read(void *arg, uint64_t *bytes)
{
    struct fake_rss *f = arg;
    atomic_fetch_add(&f->reads, 1);
    *bytes = atomic_load(&f->bytes);
    return LG_OK;
}

struct fixture {
    struct lg_conf_doc doc;
    struct lg_runtime rt;
    struct lg_component proc;
    struct lg_component sink_c;
    struct test_sink sink;
    struct lg_component *to[1];
    struct lg_arena *arena;
    struct fake_rss rss;
};

static int make_limiter(struct fixture *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    struct lg_conf_source src = {.text = yaml, .name = "ml.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->arena = lg_arena_create(0);
    f->rt.telemetry = lg_telemetry_create();
    f->proc.rt = &f->rt;
    f->proc.type = &lg_memory_limiter_processor;
    f->proc.id = "memory_limiter";
    f->proc.conf_node = lg_node_get(f->doc.root, "memory_limiter");
    f->proc.conf = lg_arena_calloc(f->arena, 1, lg_memory_limiter_processor.conf_size);
    rc = lg_conf_apply(lg_memory_limiter_processor.fields, f->proc.conf_node, f->doc.root, f->proc.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_memory_limiter_processor.create(&f->proc, err);
    if (rc != LG_OK)
        return rc;
    test_sink_init(&f->sink, &f->sink_c);
    f->to[0] = &f->sink_c;
    f->proc.next[LG_SIGNAL_TRACES] = (struct lg_fanout){.to = f->to, .n = 1};
    lg_ml_set_rss_source(&f->proc, fake_read, &f->rss);
    return LG_OK;
}

static void free_limiter(struct fixture *f)
{
    if (f->proc.state) {
        lg_memory_limiter_processor.shutdown(&f->proc, lg_now_mono_ns());
        lg_memory_limiter_processor.destroy(&f->proc);
        test_sink_free(&f->sink);
    }
    if (f->arena)
        lg_arena_destroy(f->arena);
    lg_telemetry_destroy(f->rt.telemetry);
    lg_conf_doc_free(&f->doc);
}

static int send(struct fixture *f, size_t nspans)
{
    struct lg_batch *b = make_traces(1, 1, nspans);
    int rc = lg_memory_limiter_processor.consume(&f->proc, b);
    lg_batch_unref(b);
    return rc;
}

static uint64_t counter(struct fixture *f, const char *name)
{
    return lg_counter_value(lg_telemetry_counter(f->rt.telemetry, name, "", "processor=\"memory_limiter\""));
}

static void expect_error(const char *yaml, const char *msg)
{
    struct fixture f;
    struct lg_err err = {{0}};
    assert_int_equal(make_limiter(&f, yaml, &err), LG_EINVAL);
    if (strstr(err.msg, msg) == NULL)
        fail_msg("got \"%s\", want \"%s\"", err.msg, msg);
    free_limiter(&f);
}

static void test_limits_follow_the_collector_defaults(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    uint64_t limit, spike;
    assert_int_equal(make_limiter(&f, "memory_limiter: {check_interval: 1s, limit_mib: 100}", &err), LG_OK);
    lg_ml_limits(&f.proc, &limit, &spike);
    assert_int_equal(limit, 100 * MIB);
    assert_int_equal(spike, 20 * MIB); /* 20% of the limit */
    free_limiter(&f);
    assert_int_equal(make_limiter(&f, "memory_limiter: {check_interval: 1s, limit_mib: 96, spike_limit_mib: 24}", &err), LG_OK);
    lg_ml_limits(&f.proc, &limit, &spike);
    assert_int_equal(limit, 96 * MIB);
    assert_int_equal(spike, 24 * MIB);
    free_limiter(&f);
    uint64_t total;
    assert_int_equal(lg_ml_total_memory("/sys/fs/cgroup", "/proc/self/cgroup", "/proc/meminfo", &total), LG_OK);
    assert_int_equal(make_limiter(&f, "memory_limiter: {check_interval: 1s, limit_percentage: 50, spike_limit_percentage: 10}", &err), LG_OK);
    lg_ml_limits(&f.proc, &limit, &spike);
    assert_int_equal(limit, total / 100 * 50);
    assert_int_equal(spike, total / 100 * 10);
    free_limiter(&f);
}

static void test_config_errors_name_the_path(void **state)
{
    (void)state;
    expect_error("memory_limiter: {limit_mib: 100}",
                 "ml.yaml:1:1: memory_limiter: check_interval must be greater than zero (1s is advised)");
    expect_error("memory_limiter: {check_interval: 0s, limit_mib: 100}",
                 "ml.yaml:1:18: memory_limiter.check_interval: check_interval must be greater than zero");
    expect_error("memory_limiter: {check_interval: 1s}",
                 "memory_limiter: one of limit_mib or limit_percentage must be greater than zero");
    expect_error("memory_limiter: {check_interval: 1s, limit_mib: 100, limit_percentage: 50}",
                 "memory_limiter.limit_percentage: set only one of limit_mib and limit_percentage");
    expect_error("memory_limiter: {check_interval: 1s, limit_mib: 100, spike_limit_mib: 100}",
                 "memory_limiter.spike_limit_mib: must be less than limit_mib (100)");
    expect_error("memory_limiter: {check_interval: 1s, limit_percentage: 50, spike_limit_percentage: 60}",
                 "memory_limiter.spike_limit_percentage: must be less than limit_percentage (50)");
    expect_error("memory_limiter: {check_interval: 1s, limit_mib: 100, spike_limit_percentage: 10}",
                 "memory_limiter.spike_limit_percentage: goes with limit_percentage");
    expect_error("memory_limiter: {check_interval: 1s, limit_percentage: 101}", "memory_limiter.limit_percentage");
}

static void test_refuses_above_soft_limit_and_passes_below(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_limiter(&f, "memory_limiter: {check_interval: 1s, limit_mib: 100, spike_limit_mib: 20}", &err), LG_OK);
    atomic_store(&f.rss.bytes, 50 * MIB);
    assert_int_equal(lg_ml_check_now(&f.proc), LG_ML_OK);
    assert_int_equal(send(&f, 3), LG_OK);
    assert_int_equal(test_sink_items(&f.sink), 3);

    atomic_store(&f.rss.bytes, 80 * MIB); /* exactly the soft limit */
    assert_int_equal(lg_ml_check_now(&f.proc), LG_ML_SOFT);
    assert_int_equal(send(&f, 4), LG_EAGAIN);
    assert_int_equal(send(&f, 5), LG_EAGAIN);
    assert_int_equal(test_sink_items(&f.sink), 3);
    assert_int_equal(counter(&f, "otelcol_processor_refused_spans"), 9);

    atomic_store(&f.rss.bytes, 120 * MIB);
    assert_int_equal(lg_ml_check_now(&f.proc), LG_ML_HARD);
    assert_int_equal(send(&f, 1), LG_EAGAIN);
    size_t len;
    char *text = lg_telemetry_render(f.rt.telemetry, &len);
    assert_non_null(strstr(text, "llmgate_memory_limiter_state{processor=\"memory_limiter\"} 2"));
    free(text);

    atomic_store(&f.rss.bytes, 79 * MIB);
    assert_int_equal(lg_ml_check_now(&f.proc), LG_ML_OK);
    assert_int_equal(send(&f, 2), LG_OK);
    assert_int_equal(test_sink_items(&f.sink), 5);
    assert_int_equal(counter(&f, "otelcol_processor_refused_spans"), 10);
    text = lg_telemetry_render(f.rt.telemetry, &len);
    assert_non_null(strstr(text, "llmgate_memory_limiter_state{processor=\"memory_limiter\"} 0"));
    free(text);
    free_limiter(&f);
}

static void test_downstream_refusal_is_passed_back(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_limiter(&f, "memory_limiter: {check_interval: 1s, limit_mib: 100}", &err), LG_OK);
    atomic_store(&f.rss.bytes, 10 * MIB);
    lg_ml_check_now(&f.proc);
    f.sink.refuse = LG_EFULL;
    assert_int_equal(send(&f, 2), LG_EFULL);
    assert_int_equal(counter(&f, "otelcol_processor_refused_spans"), 0);
    free_limiter(&f);
}

static void test_burst_between_ticks_is_caught_inline(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    /* The checker thread ticks once an hour: only consume()'s own reads can notice. */
    assert_int_equal(make_limiter(&f, "memory_limiter: {check_interval: 1h, limit_mib: 100}", &err), LG_OK);
    atomic_store(&f.rss.bytes, 10 * MIB);
    assert_int_equal(lg_memory_limiter_processor.start(&f.proc, &err), LG_OK);
    assert_int_equal(send(&f, 1), LG_OK);
    atomic_store(&f.rss.bytes, 90 * MIB);
    int rc = LG_OK;
    for (int i = 0; i < 500 && rc == LG_OK; i++) {
        rc = send(&f, 1);
        if (rc == LG_OK) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(rc, LG_EAGAIN);
    assert_int_equal(lg_ml_level(&f.proc), LG_ML_SOFT);
    /* ...and back under the soft limit, data flows again without waiting for a tick. */
    atomic_store(&f.rss.bytes, 10 * MIB);
    for (int i = 0; i < 500 && rc != LG_OK; i++) {
        rc = send(&f, 1);
        if (rc != LG_OK) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(rc, LG_OK);
    /* Reads are throttled: far fewer than one per call when calls come back to back. */
    int before = atomic_load(&f.rss.reads);
    for (int i = 0; i < 1000; i++)
        send(&f, 1);
    assert_true(atomic_load(&f.rss.reads) - before < 200);
    free_limiter(&f);
}

static void test_real_rss_is_read(void **state)
{
    (void)state;
    uint64_t rss = 0;
    assert_int_equal(lg_ml_read_rss(NULL, &rss), LG_OK);
    assert_true(rss > MIB);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_total_memory_from_cgroup_or_meminfo(void **state)
{
    (void)state;
    char dir[] = "/tmp/lg-ml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char root[300], self[300], meminfo[300], sub[300], p[400];
    snprintf(root, sizeof root, "%s/cg", dir);
    snprintf(self, sizeof self, "%s/self", dir);
    snprintf(meminfo, sizeof meminfo, "%s/meminfo", dir);
    snprintf(sub, sizeof sub, "%s/cg/app", dir);
    mkdir(root, 0700);
    mkdir(sub, 0700);
    write_text(meminfo, "MemFree:  100 kB\nMemTotal:  2097152 kB\n");
    uint64_t total = 0;
    /* No cgroup files: MemTotal. */
    write_text(self, "0::/\n");
    assert_int_equal(lg_ml_total_memory(root, self, meminfo, &total), LG_OK);
    assert_int_equal(total, 2048 * MIB);
    /* Root cgroup with "max": still MemTotal. */
    snprintf(p, sizeof p, "%s/memory.max", root);
    write_text(p, "max\n");
    assert_int_equal(lg_ml_total_memory(root, self, meminfo, &total), LG_OK);
    assert_int_equal(total, 2048 * MIB);
    /* The process's own cgroup below the root, with a limit: the limit. */
    write_text(self, "0::/app\n");
    snprintf(p, sizeof p, "%s/memory.max", sub);
    write_text(p, "536870912\n");
    assert_int_equal(lg_ml_total_memory(root, self, meminfo, &total), LG_OK);
    assert_int_equal(total, 512 * MIB);
    /* A cgroup limit above physical memory: physical memory. */
    write_text(p, "8589934592\n");
    assert_int_equal(lg_ml_total_memory(root, self, meminfo, &total), LG_OK);
    assert_int_equal(total, 2048 * MIB);
    /* Nothing readable. */
    assert_int_equal(lg_ml_total_memory("/nonexistent", "/nonexistent", "/nonexistent", &total), LG_EIO);
    unlink(p);
    rmdir(sub);
    snprintf(p, sizeof p, "%s/memory.max", root);
    unlink(p);
    rmdir(root);
    unlink(self);
    unlink(meminfo);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_follow_the_collector_defaults),
        cmocka_unit_test(test_config_errors_name_the_path),
        cmocka_unit_test(test_refuses_above_soft_limit_and_passes_below),
        cmocka_unit_test(test_downstream_refusal_is_passed_back),
        cmocka_unit_test(test_burst_between_ticks_is_caught_inline),
        cmocka_unit_test(test_real_rss_is_read),
        cmocka_unit_test(test_total_memory_from_cgroup_or_meminfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
