/* tests/unit/test_exporter_helper.c — the shared exporter helper: retries with backoff and
 * Retry-After, permanent errors, max_elapsed_time, the bounded queue with its sizers and
 * block_on_overflow, draining at shutdown, the synchronous mode, and the persistent queue
 * through a file_storage extension. A scripted fake send() stands in for the network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/exporter_helper.h"
#include "core/runtime.h"
#include "core/segment_log.h"
#include "sink.h"

extern const struct lg_component_type lg_file_storage_extension;

struct fake_conf {
    struct lg_exporter_helper_conf h;
};

static const struct lg_conf_field fake_fields[] = {
    LG_EXPORTER_HELPER_FIELDS(struct fake_conf, h),
    LG_CONF_END,
};

static const struct lg_component_type fake_type = {
    .type = "fake",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES,
    .conf_size = sizeof(struct fake_conf),
    .fields = fake_fields,
};

#define MAX_CALLS 256

/* Scripted backend: call i answers script[i] (then default_code); `gate` holds every call
 * until opened. */
struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int script[MAX_CALLS];
    int64_t retry_after[MAX_CALLS];
    int nscript;
    int default_code;
    bool gate_closed;
    int calls, in_send;
    int64_t call_ns[MAX_CALLS];
    pthread_t thread[MAX_CALLS];
    size_t delivered_items;
    char names[8192];
};

static void fake_send(void *ctx, struct lg_batch *b, int64_t deadline, struct lg_export_result *res)
{
    struct fake *f = ctx;
    (void)deadline; /* cmocka asserts must stay on the test's thread */
    pthread_mutex_lock(&f->mu);
    int i = f->calls++;
    f->in_send++;
    pthread_cond_broadcast(&f->cv);
    while (f->gate_closed)
        pthread_cond_wait(&f->cv, &f->mu);
    f->in_send--;
    if (i < MAX_CALLS) {
        f->call_ns[i] = lg_now_mono_ns();
        f->thread[i] = pthread_self();
    }
    res->code = i < f->nscript ? f->script[i] : f->default_code;
    res->retry_after_ns = i < f->nscript ? f->retry_after[i] : 0;
    if (res->code == LG_EINVAL)
        snprintf(res->message, sizeof res->message, "bad data");
    if (res->code == LG_OK) {
        f->delivered_items += b->items;
        char *n = span_names(b);
        size_t len = strlen(f->names);
        snprintf(f->names + len, sizeof f->names - len, "%s%s", len ? " " : "", n);
        free(n);
    }
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void fake_open_gate(struct fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->gate_closed = false;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Bounded waits on outcomes (never assertions on time). */
static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool fake_wait(struct fake *f, int calls, int in_send)
{
    for (int i = 0; i < 1000; i++) {
        pthread_mutex_lock(&f->mu);
        bool ok = f->calls >= calls && f->in_send >= in_send;
        pthread_mutex_unlock(&f->mu);
        if (ok)
            return true;
        sleep_ms(5);
    }
    return false;
}

struct fx {
    struct lg_runtime rt;
    struct lg_conf_doc doc;
    struct lg_arena *arena;
    struct lg_component c;
    struct lg_component ext;
    struct lg_component *comps[1];
    struct fake fake;
    struct lg_exporter_helper *h;
    char dir[64];
};

static void fx_init(struct fx *x)
{
    memset(x, 0, sizeof *x);
    x->rt.telemetry = lg_telemetry_create();
    x->arena = lg_arena_create(0);
    pthread_mutex_init(&x->fake.mu, NULL);
    pthread_cond_init(&x->fake.cv, NULL);
}

/* Adds a file_storage extension "file_storage" over a fresh temporary directory. */
static void fx_add_storage(struct fx *x, const char *dir_or_null)
{
    if (dir_or_null)
        snprintf(x->dir, sizeof x->dir, "%s", dir_or_null);
    else {
        snprintf(x->dir, sizeof x->dir, "/tmp/lg_eh_XXXXXX");
        assert_non_null(mkdtemp(x->dir));
    }
    char yaml[256];
    snprintf(yaml, sizeof yaml, "{directory: %s}", x->dir);
    struct lg_conf_doc d;
    struct lg_err err;
    struct lg_conf_source src = {.text = yaml, .name = "fs.yaml"};
    assert_int_equal(lg_conf_load(&src, 1, NULL, NULL, &d, &err), LG_OK);
    x->ext.type = &lg_file_storage_extension;
    x->ext.id = "file_storage";
    x->ext.rt = &x->rt;
    x->ext.conf = lg_arena_calloc(x->arena, 1, lg_file_storage_extension.conf_size);
    /* directory strings point into the tree: copy into the arena before freeing it */
    assert_int_equal(lg_conf_apply(lg_file_storage_extension.fields, d.root, d.root, x->ext.conf,
                                   x->arena, &err),
                     LG_OK);
    *(const char **)x->ext.conf = lg_arena_strdup(x->arena, x->dir);
    lg_conf_doc_free(&d);
    assert_int_equal(lg_file_storage_extension.create(&x->ext, &err), LG_OK);
    assert_int_equal(lg_file_storage_extension.start(&x->ext, &err), LG_OK);
    x->comps[0] = &x->ext;
    x->rt.components = x->comps;
    x->rt.ncomponents = 1;
}

static int fx_create(struct fx *x, const char *yaml, struct lg_err *err)
{
    struct lg_conf_source src = {.text = yaml, .name = "exp.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &x->doc, err);
    if (rc != LG_OK)
        return rc;
    x->c.type = &fake_type;
    x->c.id = "fake/x";
    x->c.rt = &x->rt;
    x->c.conf_node = lg_node_get(x->doc.root, "fake/x");
    x->c.conf = lg_arena_calloc(x->arena, 1, sizeof(struct fake_conf));
    rc = lg_conf_apply(fake_fields, x->c.conf_node, x->doc.root, x->c.conf, x->arena, err);
    if (rc != LG_OK)
        return rc;
    struct fake_conf *fc = x->c.conf;
    return lg_exporter_helper_create(&x->c, &fc->h, fake_send, &x->fake, &x->h, err);
}

static void fx_start(struct fx *x, const char *yaml)
{
    struct lg_err err;
    int rc = fx_create(x, yaml, &err);
    if (rc != LG_OK)
        fail_msg("create: %s", err.msg);
    rc = lg_exporter_helper_start(x->h, &err);
    if (rc != LG_OK)
        fail_msg("start: %s", err.msg);
}

static void fx_free(struct fx *x)
{
    fake_open_gate(&x->fake);
    lg_exporter_helper_shutdown(x->h, lg_now_mono_ns() + 5000000000LL);
    lg_exporter_helper_destroy(x->h);
    x->h = NULL;
    if (x->ext.type)
        lg_file_storage_extension.destroy(&x->ext);
    lg_conf_doc_free(&x->doc);
    lg_arena_destroy(x->arena);
    lg_telemetry_destroy(x->rt.telemetry);
    pthread_mutex_destroy(&x->fake.mu);
    pthread_cond_destroy(&x->fake.cv);
}

static uint64_t counter(struct fx *x, const char *name)
{
    return lg_counter_value(lg_telemetry_counter(x->rt.telemetry, name, "", "exporter=\"fake/x\""));
}

static bool wait_counter(struct fx *x, const char *name, uint64_t want)
{
    for (int i = 0; i < 1000 && counter(x, name) < want; i++)
        sleep_ms(5);
    return counter(x, name) >= want;
}

static int consume(struct fx *x, int tag, size_t nspans)
{
    struct lg_batch *b = make_traces(tag, 1, nspans);
    int rc = lg_exporter_helper_consume(x->h, b);
    lg_batch_unref(b);
    return rc;
}

#define FAST_RETRY                                                                                 \
    "retry_on_failure: {initial_interval: 10ms, max_interval: 20ms, randomization_factor: 0}"

static void test_retryable_failures_are_retried_until_success(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.nscript = 2;
    x.fake.script[0] = x.fake.script[1] = LG_EAGAIN;
    fx_start(&x, "fake/x: {" FAST_RETRY "}");
    assert_int_equal(consume(&x, 1, 3), LG_OK);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 3));
    assert_int_equal(x.fake.calls, 3);
    assert_int_equal(counter(&x, "otelcol_exporter_send_failed_spans"), 0);
    assert_string_equal(x.fake.names, "s1-0-0 s1-0-1 s1-0-2");
    fx_free(&x);
}

static void test_retry_after_from_the_server_overrides_a_shorter_backoff(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.nscript = 1;
    x.fake.script[0] = LG_EAGAIN;
    x.fake.retry_after[0] = 300 * 1000000LL;
    fx_start(&x, "fake/x: {retry_on_failure: {initial_interval: 1ms, randomization_factor: 0}}");
    assert_int_equal(consume(&x, 1, 1), LG_OK);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 1));
    assert_int_equal(x.fake.calls, 2);
    /* the second attempt came no earlier than the server asked (a lower bound, never flaky) */
    assert_true(x.fake.call_ns[1] - x.fake.call_ns[0] >= 300 * 1000000LL);
    fx_free(&x);
}

static void test_permanent_error_is_not_retried_and_is_counted(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.nscript = 1;
    x.fake.script[0] = LG_EINVAL;
    fx_start(&x, "fake/x: {" FAST_RETRY "}");
    assert_int_equal(consume(&x, 1, 4), LG_OK);
    assert_true(wait_counter(&x, "otelcol_exporter_send_failed_spans", 4));
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 1000000000LL);
    assert_int_equal(x.fake.calls, 1);
    assert_int_equal(counter(&x, "otelcol_exporter_sent_spans"), 0);
    fx_free(&x);
}

static void test_max_elapsed_time_gives_up_and_counts_the_failure(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.default_code = LG_EAGAIN;
    fx_start(&x, "fake/x: {retry_on_failure: {initial_interval: 5ms, max_interval: 10ms, "
                 "max_elapsed_time: 60ms}}");
    assert_int_equal(consume(&x, 1, 2), LG_OK);
    assert_true(wait_counter(&x, "otelcol_exporter_send_failed_spans", 2));
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 1000000000LL);
    assert_true(x.fake.calls > 1);
    assert_int_equal(counter(&x, "otelcol_exporter_sent_spans"), 0);
    fx_free(&x);
}

static void test_retry_disabled_makes_a_single_attempt(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.default_code = LG_EAGAIN;
    fx_start(&x, "fake/x: {retry_on_failure: {enabled: false}}");
    assert_int_equal(consume(&x, 1, 2), LG_OK);
    assert_true(wait_counter(&x, "otelcol_exporter_send_failed_spans", 2));
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 1000000000LL);
    assert_int_equal(x.fake.calls, 1);
    fx_free(&x);
}

static void test_full_queue_refuses_and_counts_enqueue_failed(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.gate_closed = true;
    fx_start(&x, "fake/x: {sending_queue: {num_consumers: 1, queue_size: 2}}");
    assert_int_equal(consume(&x, 1, 1), LG_OK);
    assert_true(fake_wait(&x.fake, 1, 1)); /* the consumer holds batch 1 */
    assert_int_equal(consume(&x, 2, 1), LG_OK);
    assert_int_equal(consume(&x, 3, 1), LG_OK);
    assert_int_equal(lg_exporter_helper_queue_size(x.h), 2);
    assert_int_equal(consume(&x, 4, 5), LG_EFULL);
    assert_int_equal(counter(&x, "otelcol_exporter_enqueue_failed_spans"), 5);
    fake_open_gate(&x.fake);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 3));
    assert_string_equal(x.fake.names, "s1-0-0 s2-0-0 s3-0-0");
    fx_free(&x);
}

static void test_items_sizer_measures_spans(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.gate_closed = true;
    fx_start(&x, "fake/x: {sending_queue: {num_consumers: 1, queue_size: 10, sizer: items}}");
    assert_int_equal(consume(&x, 1, 3), LG_OK);
    assert_true(fake_wait(&x.fake, 1, 1));
    assert_int_equal(consume(&x, 2, 6), LG_OK);
    assert_int_equal(consume(&x, 3, 5), LG_EFULL); /* 6 + 5 > 10 */
    assert_int_equal(consume(&x, 4, 4), LG_OK);    /* 6 + 4 = 10 */
    assert_int_equal(lg_exporter_helper_queue_size(x.h), 10);
    assert_int_equal(counter(&x, "otelcol_exporter_enqueue_failed_spans"), 5);
    fake_open_gate(&x.fake);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 13));
    fx_free(&x);
}

static void test_bytes_sizer_measures_protobuf_size(void **state)
{
    (void)state;
    struct lg_batch *probe = make_traces(2, 1, 2);
    size_t one = protobuf_c_message_get_packed_size(probe->req.msg);
    lg_batch_unref(probe);
    struct fx x;
    fx_init(&x);
    x.fake.gate_closed = true;
    char yaml[256];
    snprintf(yaml, sizeof yaml,
             "fake/x: {sending_queue: {num_consumers: 1, queue_size: %zu, sizer: bytes}}",
             2 * one + 1);
    fx_start(&x, yaml);
    assert_int_equal(consume(&x, 1, 2), LG_OK);
    assert_true(fake_wait(&x.fake, 1, 1));
    assert_int_equal(consume(&x, 2, 2), LG_OK);
    assert_int_equal(consume(&x, 3, 2), LG_OK);
    assert_int_equal(lg_exporter_helper_queue_size(x.h), (int64_t)(2 * one));
    assert_int_equal(consume(&x, 4, 2), LG_EFULL);
    fake_open_gate(&x.fake);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 6));
    fx_free(&x);
}

struct bg {
    struct fx *x;
    int rc;
    _Atomic bool done;
};

static void *bg_consume(void *arg)
{
    struct bg *g = arg;
    g->rc = consume(g->x, 9, 1);
    atomic_store(&g->done, true);
    return NULL;
}

static void test_block_on_overflow_waits_for_room_instead_of_refusing(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.gate_closed = true;
    fx_start(&x, "fake/x: {timeout: 10s, sending_queue: {num_consumers: 1, queue_size: 1, "
                 "block_on_overflow: true}}");
    assert_int_equal(consume(&x, 1, 1), LG_OK);
    assert_true(fake_wait(&x.fake, 1, 1));
    assert_int_equal(consume(&x, 2, 1), LG_OK);
    struct bg g = {.x = &x};
    pthread_t t;
    pthread_create(&t, NULL, bg_consume, &g);
    sleep_ms(50);
    assert_false(atomic_load(&g.done)); /* still waiting: nothing was refused */
    fake_open_gate(&x.fake);
    pthread_join(t, NULL);
    assert_int_equal(g.rc, LG_OK);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 3));
    assert_int_equal(counter(&x, "otelcol_exporter_enqueue_failed_spans"), 0);
    fx_free(&x);
}

static void test_block_on_overflow_refuses_after_the_timeout(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.gate_closed = true;
    fx_start(&x, "fake/x: {timeout: 30ms, sending_queue: {num_consumers: 1, queue_size: 1, "
                 "block_on_overflow: true}}");
    assert_int_equal(consume(&x, 1, 1), LG_OK);
    assert_true(fake_wait(&x.fake, 1, 1));
    assert_int_equal(consume(&x, 2, 1), LG_OK);
    assert_int_equal(consume(&x, 3, 1), LG_EFULL);
    assert_int_equal(counter(&x, "otelcol_exporter_enqueue_failed_spans"), 1);
    fx_free(&x);
}

static void test_shutdown_drains_the_queue_retrying(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.nscript = 3;
    x.fake.script[0] = x.fake.script[1] = x.fake.script[2] = LG_EAGAIN;
    fx_start(&x, "fake/x: {sending_queue: {num_consumers: 2}, " FAST_RETRY "}");
    for (int i = 0; i < 8; i++)
        assert_int_equal(consume(&x, i, 2), LG_OK);
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 10000000000LL);
    assert_int_equal(counter(&x, "otelcol_exporter_sent_spans"), 16);
    assert_int_equal(counter(&x, "otelcol_exporter_send_failed_spans"), 0);
    /* after shutdown nothing more is taken */
    assert_int_equal(consume(&x, 9, 1), LG_EAGAIN);
    fx_free(&x);
}

static void test_shutdown_deadline_counts_what_a_memory_queue_could_not_send(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.default_code = LG_EAGAIN;
    fx_start(&x, "fake/x: {sending_queue: {num_consumers: 1}, retry_on_failure: {initial_interval: "
                 "10ms, max_elapsed_time: 0}}");
    for (int i = 0; i < 4; i++)
        assert_int_equal(consume(&x, i, 3), LG_OK);
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 100000000LL);
    assert_int_equal(counter(&x, "otelcol_exporter_send_failed_spans"), 12);
    assert_int_equal(counter(&x, "otelcol_exporter_sent_spans"), 0);
    fx_free(&x);
}

static void test_disabled_queue_sends_on_the_callers_thread(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.nscript = 3;
    x.fake.script[0] = LG_EAGAIN;
    x.fake.script[1] = LG_OK;
    x.fake.script[2] = LG_EINVAL;
    fx_start(&x, "fake/x: {sending_queue: {enabled: false}, " FAST_RETRY "}");
    assert_int_equal(consume(&x, 1, 2), LG_OK); /* returns only once delivered */
    assert_int_equal(x.fake.calls, 2);
    assert_true(pthread_equal(x.fake.thread[1], pthread_self()));
    assert_int_equal(counter(&x, "otelcol_exporter_sent_spans"), 2);
    assert_int_equal(consume(&x, 2, 3), LG_EINVAL);
    assert_int_equal(counter(&x, "otelcol_exporter_send_failed_spans"), 3);
    fx_free(&x);
}

static void test_disabled_queue_returns_retryable_error_when_retries_run_out(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    x.fake.default_code = LG_EAGAIN;
    fx_start(&x, "fake/x: {sending_queue: {enabled: false}, retry_on_failure: {enabled: false}}");
    assert_int_equal(consume(&x, 1, 2), LG_EAGAIN);
    assert_int_equal(counter(&x, "otelcol_exporter_send_failed_spans"), 2);
    fx_free(&x);
}

static void test_defaults_are_the_collectors(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    struct lg_err err;
    assert_int_equal(fx_create(&x, "fake/x: {}", &err), LG_OK);
    struct fake_conf *fc = x.c.conf;
    assert_int_equal(fc->h.timeout_ns, 5000000000LL);
    assert_true(fc->h.retry_on_failure.enabled);
    assert_int_equal(fc->h.retry_on_failure.initial_interval_ns, 5000000000LL);
    assert_int_equal(fc->h.retry_on_failure.max_interval_ns, 30000000000LL);
    assert_int_equal(fc->h.retry_on_failure.max_elapsed_time_ns, 300000000000LL);
    assert_true(fc->h.retry_on_failure.multiplier == 1.5);
    assert_true(fc->h.retry_on_failure.randomization_factor == 0.5);
    assert_true(fc->h.sending_queue.enabled);
    assert_int_equal(fc->h.sending_queue.num_consumers, 10);
    assert_int_equal(fc->h.sending_queue.queue_size, 1000);
    assert_int_equal(fc->h.sending_queue.sizer, LG_SIZER_REQUESTS);
    assert_false(fc->h.sending_queue.block_on_overflow);
    assert_null(fc->h.sending_queue.storage);
    fx_free(&x);
}

static void test_storage_naming_an_unlisted_extension_is_a_config_error(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    struct lg_err err;
    assert_int_equal(
        fx_create(&x, "fake/x:\n  sending_queue:\n    storage: file_storage/missing\n", &err),
        LG_EINVAL);
    assert_non_null(strstr(err.msg, "fake/x.sending_queue.storage"));
    assert_non_null(strstr(err.msg, "file_storage/missing"));
    assert_non_null(strstr(err.msg, "exp.yaml:3:"));
    fx_free(&x);
}

static void test_bad_sizer_names_the_key(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    struct lg_err err;
    assert_int_equal(fx_create(&x, "fake/x: {sending_queue: {sizer: spans}}", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "sending_queue.sizer"));
    fx_free(&x);
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_persistent_queue_keeps_undelivered_data_for_the_next_start(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    fx_add_storage(&x, NULL);
    char dir[64];
    snprintf(dir, sizeof dir, "%s", x.dir);
    x.fake.default_code = LG_EAGAIN; /* backend down */
    fx_start(&x,
             "fake/x: {sending_queue: {storage: file_storage, num_consumers: 2}, " FAST_RETRY "}");
    for (int i = 0; i < 5; i++)
        assert_int_equal(consume(&x, i, 2), LG_OK);
    assert_true(fake_wait(&x.fake, 4, 0));
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 50000000LL);
    assert_int_equal(counter(&x, "otelcol_exporter_send_failed_spans"), 0); /* kept, not failed */
    fx_free(&x);

    /* the backend is back: a new helper over the same directory sends everything */
    struct fx y;
    fx_init(&y);
    fx_add_storage(&y, dir);
    fx_start(&y,
             "fake/x: {sending_queue: {storage: file_storage, num_consumers: 1}, " FAST_RETRY "}");
    assert_true(wait_counter(&y, "otelcol_exporter_sent_spans", 10));
    lg_exporter_helper_shutdown(y.h, lg_now_mono_ns() + 1000000000LL);
    assert_int_equal(y.fake.delivered_items, 10);
    /* the two batches in flight when the first helper stopped are counted as possible duplicates */
    assert_int_equal(counter(&y, "otelcol_exporter_persistent_queue_redelivered_spans"), 4);
    for (int i = 0; i < 5; i++) {
        char want[32];
        snprintf(want, sizeof want, "s%d-0-1", i);
        assert_non_null(strstr(y.fake.names, want));
    }
    fx_free(&y);

    /* and nothing is replayed a third time */
    struct fx z;
    fx_init(&z);
    fx_add_storage(&z, dir);
    fx_start(&z,
             "fake/x: {sending_queue: {storage: file_storage, num_consumers: 1}, " FAST_RETRY "}");
    lg_exporter_helper_shutdown(z.h, lg_now_mono_ns() + 1000000000LL);
    assert_int_equal(z.fake.calls, 0);
    fx_free(&z);
    rm_rf(dir);
}

static void test_corrupt_record_on_disk_is_skipped_and_counted_the_rest_is_sent(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    fx_add_storage(&x, NULL);
    char dir[64];
    snprintf(dir, sizeof dir, "%s", x.dir);
    x.fake.default_code = LG_EAGAIN; /* backend down: everything stays on disk */
    fx_start(&x,
             "fake/x: {sending_queue: {storage: file_storage, num_consumers: 1}, " FAST_RETRY "}");
    for (int i = 0; i < 3; i++)
        assert_int_equal(consume(&x, i, 2), LG_OK);
    lg_exporter_helper_shutdown(x.h, lg_now_mono_ns() + 30000000LL);
    fx_free(&x);

    /* flip a byte inside the last record's payload (the directory name escapes the '/') */
    char path[256];
    snprintf(path, sizeof path, "%s/exporter_fake~2Fx_traces/seg-0000000000000001.log", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -3, SEEK_END), 0);
    int ch = fgetc(f);
    assert_int_equal(fseek(f, -3, SEEK_END), 0);
    fputc(ch ^ 0x5a, f);
    fclose(f);

    struct fx y;
    fx_init(&y);
    fx_add_storage(&y, dir);
    fx_start(&y,
             "fake/x: {sending_queue: {storage: file_storage, num_consumers: 1}, " FAST_RETRY "}");
    assert_int_equal(counter(&y, "otelcol_exporter_persistent_queue_corrupt_records"), 1);
    lg_exporter_helper_shutdown(y.h, lg_now_mono_ns() + 2000000000LL);
    assert_string_equal(y.fake.names, "s0-0-0 s0-0-1 s1-0-0 s1-0-1"); /* not the damaged s2 */
    fx_free(&y);
    rm_rf(dir);
}

static void test_persistent_queue_is_bounded_by_queue_size(void **state)
{
    (void)state;
    struct fx x;
    fx_init(&x);
    fx_add_storage(&x, NULL);
    x.fake.gate_closed = true;
    fx_start(&x, "fake/x: {sending_queue: {storage: file_storage, num_consumers: 1, queue_size: 4, "
                 "sizer: items}}");
    assert_int_equal(consume(&x, 1, 2), LG_OK);
    assert_true(fake_wait(&x.fake, 1, 1));
    assert_int_equal(consume(&x, 2, 3), LG_OK);
    assert_int_equal(consume(&x, 3, 2), LG_EFULL);
    assert_int_equal(lg_exporter_helper_queue_size(x.h), 3);
    assert_int_equal(counter(&x, "otelcol_exporter_enqueue_failed_spans"), 2);
    fake_open_gate(&x.fake);
    assert_true(wait_counter(&x, "otelcol_exporter_sent_spans", 5));
    char dir[64];
    snprintf(dir, sizeof dir, "%s", x.dir);
    fx_free(&x);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable_failures_are_retried_until_success),
        cmocka_unit_test(test_retry_after_from_the_server_overrides_a_shorter_backoff),
        cmocka_unit_test(test_permanent_error_is_not_retried_and_is_counted),
        cmocka_unit_test(test_max_elapsed_time_gives_up_and_counts_the_failure),
        cmocka_unit_test(test_retry_disabled_makes_a_single_attempt),
        cmocka_unit_test(test_full_queue_refuses_and_counts_enqueue_failed),
        cmocka_unit_test(test_items_sizer_measures_spans),
        cmocka_unit_test(test_bytes_sizer_measures_protobuf_size),
        cmocka_unit_test(test_block_on_overflow_waits_for_room_instead_of_refusing),
        cmocka_unit_test(test_block_on_overflow_refuses_after_the_timeout),
        cmocka_unit_test(test_shutdown_drains_the_queue_retrying),
        cmocka_unit_test(test_shutdown_deadline_counts_what_a_memory_queue_could_not_send),
        cmocka_unit_test(test_disabled_queue_sends_on_the_callers_thread),
        cmocka_unit_test(test_disabled_queue_returns_retryable_error_when_retries_run_out),
        cmocka_unit_test(test_defaults_are_the_collectors),
        cmocka_unit_test(test_storage_naming_an_unlisted_extension_is_a_config_error),
        cmocka_unit_test(test_bad_sizer_names_the_key),
        cmocka_unit_test(test_persistent_queue_keeps_undelivered_data_for_the_next_start),
        cmocka_unit_test(test_corrupt_record_on_disk_is_skipped_and_counted_the_rest_is_sent),
        cmocka_unit_test(test_persistent_queue_is_bounded_by_queue_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
