/* tests/unit/test_batch_processor.c — the batch processor merges, splits, flushes on its
 * timeout and at shutdown, and holds (never drops) data its downstream refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "sink.h"

extern const struct lg_component_type lg_batch_processor;

struct fixture {
    struct lg_conf_doc doc;
    struct lg_component proc;
    struct lg_component sink_c;
    struct test_sink sink;
    struct lg_component *to[1];
    struct lg_arena *arena;
};

static int make_processor(struct fixture *f, const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    struct lg_conf_source src = {.text = yaml, .name = "batch.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->arena = lg_arena_create(0);
    f->proc.type = &lg_batch_processor;
    f->proc.id = "batch";
    f->proc.conf_node = lg_node_get(f->doc.root, "batch");
    f->proc.conf = lg_arena_calloc(f->arena, 1, lg_batch_processor.conf_size);
    rc = lg_conf_apply(lg_batch_processor.fields, f->proc.conf_node, f->doc.root, f->proc.conf, f->arena, err);
    if (rc == LG_OK)
        rc = lg_batch_processor.create(&f->proc, err);
    if (rc != LG_OK)
        return rc;
    test_sink_init(&f->sink, &f->sink_c);
    f->to[0] = &f->sink_c;
    f->proc.next[LG_SIGNAL_TRACES] = (struct lg_fanout){.to = f->to, .n = 1};
    return lg_batch_processor.start(&f->proc, err);
}

static void free_processor(struct fixture *f)
{
    lg_batch_processor.shutdown(&f->proc, lg_now_mono_ns() + 2000000000LL);
    lg_batch_processor.destroy(&f->proc);
    test_sink_free(&f->sink);
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
}

static void send(struct fixture *f, int tag, size_t nres, size_t nspans, int want)
{
    struct lg_batch *b = make_traces(tag, nres, nspans);
    assert_int_equal(lg_batch_processor.consume(&f->proc, b), want);
    lg_batch_unref(b);
}

static void wait_items(struct test_sink *s, size_t want)
{
    /* Bounded wait for the timer thread; the assertion is on content, not on time. */
    for (int i = 0; i < 500 && test_sink_items(s) < want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void test_small_batches_merge_into_one_when_size_is_reached(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "batch: {send_batch_size: 6, timeout: 1h}", &err), LG_OK);
    send(&f, 1, 1, 2, LG_OK);
    send(&f, 2, 1, 2, LG_OK);
    assert_int_equal(f.sink.ngot, 0);
    send(&f, 3, 2, 1, LG_OK);
    assert_int_equal(f.sink.ngot, 1);
    assert_int_equal(f.sink.got[0]->items, 6);
    assert_int_equal(f.sink.got[0]->req.traces->n_resource_spans, 4);
    char *names = span_names(f.sink.got[0]);
    assert_string_equal(names, "s1-0-0 s1-0-1 s2-0-0 s2-0-1 s3-0-0 s3-1-0");
    free(names);
    /* the merged batch encodes to a valid request with every span */
    size_t len;
    uint8_t *bytes = lg_batch_encode(f.sink.got[0], &len);
    struct lg_batch *back;
    assert_int_equal(lg_batch_decode(LG_SIGNAL_TRACES, bytes, len, &back, &err), LG_OK);
    assert_int_equal(back->items, 6);
    lg_batch_unref(back);
    free(bytes);
    free_processor(&f);
}

static void test_large_batch_is_split_at_send_batch_max_size(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "batch: {send_batch_size: 4, send_batch_max_size: 4, timeout: 1h}", &err), LG_OK);
    send(&f, 7, 2, 5, LG_OK); /* 10 spans -> 4 + 4 + 2 */
    assert_int_equal(f.sink.ngot, 3);
    assert_int_equal(f.sink.got[0]->items, 4);
    assert_int_equal(f.sink.got[1]->items, 4);
    assert_int_equal(f.sink.got[2]->items, 2);
    char *a = span_names(f.sink.got[0]), *b = span_names(f.sink.got[1]), *c = span_names(f.sink.got[2]);
    assert_string_equal(a, "s7-0-0 s7-0-1 s7-0-2 s7-0-3");
    assert_string_equal(b, "s7-0-4 s7-1-0 s7-1-1 s7-1-2");
    assert_string_equal(c, "s7-1-3 s7-1-4");
    free(a);
    free(b);
    free(c);
    /* the second piece carries both resources, each with only its own spans */
    assert_int_equal(f.sink.got[1]->req.traces->n_resource_spans, 2);
    free_processor(&f);
}

static void test_timeout_sends_a_partial_batch(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "batch: {send_batch_size: 1000, timeout: 20ms}", &err), LG_OK);
    send(&f, 1, 1, 3, LG_OK);
    wait_items(&f.sink, 3);
    assert_int_equal(test_sink_items(&f.sink), 3);
    assert_int_equal(f.sink.ngot, 1);
    free_processor(&f);
}

static void test_shutdown_flushes_pending_data(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "batch: {send_batch_size: 1000, timeout: 1h}", &err), LG_OK);
    send(&f, 1, 1, 3, LG_OK);
    send(&f, 2, 1, 2, LG_OK);
    assert_int_equal(f.sink.ngot, 0);
    lg_batch_processor.shutdown(&f.proc, lg_now_mono_ns() + 2000000000LL);
    assert_int_equal(test_sink_items(&f.sink), 5);
    free_processor(&f);
}

static void test_refused_data_is_held_and_retried_not_dropped(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "batch: {send_batch_size: 2, timeout: 10ms}", &err), LG_OK);
    f.sink.refuse = LG_EFULL;
    send(&f, 1, 1, 2, LG_OK); /* accepted by the processor, refused downstream, held */
    assert_int_equal(f.sink.refused_calls, 1);
    /* while much more is held than the refusal threshold allows, new data is pushed back */
    int refused = 0;
    for (int i = 0; i < 20; i++) {
        struct lg_batch *b = make_traces(10 + i, 1, 2);
        int rc = lg_batch_processor.consume(&f.proc, b);
        lg_batch_unref(b);
        if (rc != LG_OK) {
            assert_int_equal(rc, LG_EFULL);
            refused++;
        }
    }
    assert_true(refused > 0);
    pthread_mutex_lock(&f.sink.lock);
    f.sink.refuse = 0;
    pthread_mutex_unlock(&f.sink.lock);
    size_t accepted_spans = (size_t)(1 + 20 - refused) * 2;
    wait_items(&f.sink, accepted_spans);
    assert_int_equal(test_sink_items(&f.sink), accepted_spans);
    free_processor(&f);
}

static void test_config_errors_name_the_key(void **state)
{
    (void)state;
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_processor(&f, "batch:\n  send_batch_size: 10\n  send_batch_max_size: 5\n", &err), LG_EINVAL);
    assert_string_equal(err.msg, "batch.yaml:3:3: batch.send_batch_max_size: must be 0 or at least send_batch_size (10)");
    lg_arena_destroy(f.arena);
    lg_conf_doc_free(&f.doc);
    assert_int_equal(make_processor(&f, "batch:\n  timeout: 5 seconds\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "batch.yaml:2:3: batch.timeout: expected a duration"));
    lg_arena_destroy(f.arena);
    lg_conf_doc_free(&f.doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_batches_merge_into_one_when_size_is_reached),
        cmocka_unit_test(test_large_batch_is_split_at_send_batch_max_size),
        cmocka_unit_test(test_timeout_sends_a_partial_batch),
        cmocka_unit_test(test_shutdown_flushes_pending_data),
        cmocka_unit_test(test_refused_data_is_held_and_retried_not_dropped),
        cmocka_unit_test(test_config_errors_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
