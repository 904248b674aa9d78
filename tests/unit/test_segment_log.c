/* tests/unit/test_segment_log.c — the persistent queue's segment log: records survive a
 * reopen until acknowledged, out-of-order acknowledgements are remembered, records in flight
 * at a restart are flagged as possible duplicates, torn tails and flipped bytes are skipped
 * and counted while the rest stays readable, segments rotate and delivered ones are deleted. */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/segment_log.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/lg_seglog_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct lg_segment_log *open_log(int64_t segment_size)
{
    struct lg_segment_log_opts o = {.dir = dir, .segment_size = segment_size};
    struct lg_segment_log *l = NULL;
    struct lg_err err;
    if (lg_segment_log_open(&o, &l, &err) != LG_OK)
        fail_msg("open: %s", err.msg);
    return l;
}

static void append(struct lg_segment_log *l, const char *text, uint32_t items)
{
    struct lg_err err;
    if (lg_segment_log_append(l, text, strlen(text), items, &err) != LG_OK)
        fail_msg("append: %s", err.msg);
}

/* Reads the next record and checks its text; returns its id. */
static uint64_t read_expect(struct lg_segment_log *l, const char *want, bool redelivery)
{
    struct lg_segment_record r;
    assert_int_equal(lg_segment_log_read(l, &r), LG_OK);
    assert_int_equal(r.len, strlen(want));
    assert_memory_equal(r.data, want, r.len);
    assert_int_equal(r.redelivery, redelivery);
    free(r.data);
    return r.id;
}

static void assert_empty(struct lg_segment_log *l)
{
    struct lg_segment_record r;
    assert_int_equal(lg_segment_log_read(l, &r), LG_EAGAIN);
}

static struct lg_segment_log_stats stats(struct lg_segment_log *l)
{
    struct lg_segment_log_stats st;
    lg_segment_log_stats(l, &st);
    return st;
}

static char *only_segment_path(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    char *found = NULL;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "seg-", 4) == 0) {
            assert_null(found);
            found = malloc(strlen(dir) + strlen(de->d_name) + 2);
            sprintf(found, "%s/%s", dir, de->d_name);
        }
    closedir(d);
    assert_non_null(found);
    return found;
}

static size_t count_segments(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    while ((de = readdir(d)) != NULL)
        n += strncmp(de->d_name, "seg-", 4) == 0;
    closedir(d);
    return n;
}

static void test_unacknowledged_records_are_replayed_after_reopen(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(0);
    append(l, "one", 1);
    append(l, "two", 2);
    append(l, "three", 3);
    append(l, "four", 4);
    struct lg_segment_log_stats st = stats(l);
    assert_int_equal(st.pending_records, 4);
    assert_int_equal(st.pending_items, 10);
    assert_int_equal(st.pending_bytes, 15);
    uint64_t a = read_expect(l, "one", false);
    read_expect(l, "two", false); /* in flight, never acknowledged */
    assert_int_equal(lg_segment_log_ack(l, a), LG_OK);
    lg_segment_log_close(l);

    l = open_log(0);
    st = stats(l);
    assert_int_equal(st.replayed_records, 3);
    assert_int_equal(st.replayed_items, 9);
    assert_int_equal(st.redelivered_records, 1);
    assert_int_equal(st.redelivered_items, 2);
    assert_int_equal(st.corrupt_records, 0);
    uint64_t b = read_expect(l, "two", true);
    uint64_t c = read_expect(l, "three", false);
    append(l, "five", 5);
    uint64_t d = read_expect(l, "four", false);
    uint64_t e = read_expect(l, "five", false);
    assert_empty(l);
    assert_int_equal(lg_segment_log_ack(l, b), LG_OK);
    assert_int_equal(lg_segment_log_ack(l, c), LG_OK);
    assert_int_equal(lg_segment_log_ack(l, d), LG_OK);
    assert_int_equal(lg_segment_log_ack(l, e), LG_OK);
    assert_int_equal(stats(l).unacked_records, 0);
    lg_segment_log_close(l);

    l = open_log(0);
    assert_int_equal(stats(l).replayed_records, 0);
    assert_empty(l);
    lg_segment_log_close(l);
}

static void test_out_of_order_acknowledgements_survive_a_restart(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(0);
    append(l, "a", 1);
    append(l, "b", 1);
    append(l, "c", 1);
    append(l, "d", 1);
    uint64_t a = read_expect(l, "a", false);
    uint64_t b = read_expect(l, "b", false);
    uint64_t c = read_expect(l, "c", false);
    (void)a; /* still being retried by a slow consumer */
    assert_int_equal(lg_segment_log_ack(l, c), LG_OK);
    assert_int_equal(lg_segment_log_ack(l, b), LG_OK);
    assert_int_equal(stats(l).unacked_records, 2);
    lg_segment_log_close(l);

    l = open_log(0);
    read_expect(l, "a", true);
    read_expect(l, "d", false);
    assert_empty(l);
    assert_int_equal(stats(l).replayed_records, 2);
    lg_segment_log_close(l);
}

static void test_torn_tail_is_cut_counted_and_appends_continue(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(0);
    append(l, "first record", 1);
    append(l, "second record", 1);
    append(l, "third record, torn by a kill", 1);
    lg_segment_log_close(l);
    char *path = only_segment_path();
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(truncate(path, sb.st_size - 7), 0);

    l = open_log(0);
    struct lg_segment_log_stats st = stats(l);
    assert_int_equal(st.replayed_records, 2);
    assert_int_equal(st.corrupt_records, 1);
    append(l, "fourth", 1);
    lg_segment_log_close(l);

    l = open_log(0);
    st = stats(l);
    assert_int_equal(st.corrupt_records, 0); /* the tail was cut, the new record is clean */
    read_expect(l, "first record", false);
    read_expect(l, "second record", false);
    read_expect(l, "fourth", false);
    assert_empty(l);
    lg_segment_log_close(l);
    free(path);
}

static void test_flipped_byte_skips_one_record_and_keeps_the_rest(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(0);
    append(l, "alpha", 1);
    append(l, "bravo", 1);
    append(l, "charlie", 1);
    lg_segment_log_close(l);
    char *path = only_segment_path();
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    /* records: 16-byte header + payload; flip a byte in bravo's payload */
    off_t at = 16 + 5 + 16 + 2;
    char ch;
    assert_int_equal(pread(fd, &ch, 1, at), 1);
    ch ^= 0x20;
    assert_int_equal(pwrite(fd, &ch, 1, at), 1);
    close(fd);

    l = open_log(0);
    assert_int_equal(stats(l).corrupt_records, 1);
    read_expect(l, "alpha", false);
    read_expect(l, "charlie", false);
    assert_empty(l);
    lg_segment_log_close(l);
    free(path);
}

static void test_garbage_segment_never_crashes_and_counts(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/seg-0000000000000001.log", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f);
    fputs("LGQ1", f); /* a magic with nothing valid after it */
    fclose(f);
    struct lg_segment_log *l = open_log(0);
    struct lg_segment_log_stats st = stats(l);
    assert_int_equal(st.replayed_records, 0);
    assert_true(st.corrupt_records >= 1);
    assert_empty(l);
    append(l, "after garbage", 1);
    read_expect(l, "after garbage", false);
    lg_segment_log_close(l);
}

static void test_segments_rotate_and_delivered_ones_are_deleted(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(1024);
    char rec[201];
    memset(rec, 'x', 200);
    rec[200] = '\0';
    for (int i = 0; i < 20; i++) {
        rec[0] = (char)('a' + i);
        append(l, rec, 1);
    }
    assert_true(count_segments() >= 4);
    uint64_t ids[20];
    for (int i = 0; i < 20; i++) {
        rec[0] = (char)('a' + i);
        ids[i] = read_expect(l, rec, false);
    }
    for (int i = 0; i < 10; i++)
        lg_segment_log_ack(l, ids[i]);
    size_t mid = count_segments();
    for (int i = 10; i < 20; i++)
        lg_segment_log_ack(l, ids[i]);
    assert_true(count_segments() < mid);
    assert_int_equal(count_segments(), 1); /* only the segment being written */
    lg_segment_log_close(l);

    l = open_log(1024);
    assert_int_equal(stats(l).replayed_records, 0);
    lg_segment_log_close(l);
}

static void test_a_damaged_state_file_replays_everything_rather_than_losing_any(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(0);
    append(l, "kept", 1);
    append(l, "also kept", 1);
    uint64_t a = read_expect(l, "kept", false);
    lg_segment_log_ack(l, a);
    lg_segment_log_close(l);
    char path[128];
    snprintf(path, sizeof path, "%s/state", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 10, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    l = open_log(0);
    /* "kept" was in a segment that is still on disk: it comes again (a duplicate) */
    read_expect(l, "kept", false);
    read_expect(l, "also kept", false);
    assert_empty(l);
    lg_segment_log_close(l);
}

static void test_thousands_of_acknowledgements_compact_the_journal(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(64 * 1024);
    for (int i = 0; i < 3000; i++)
        append(l, "r", 1);
    struct lg_segment_record r;
    uint64_t last = 0;
    for (int i = 0; i < 2999; i++) {
        assert_int_equal(lg_segment_log_read(l, &r), LG_OK);
        free(r.data);
        assert_int_equal(lg_segment_log_ack(l, r.id), LG_OK);
        last = r.id;
    }
    (void)last;
    lg_segment_log_close(l);
    char path[128];
    snprintf(path, sizeof path, "%s/journal", dir);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size < 4096 * 24 + 24); /* compacted at least once */
    l = open_log(64 * 1024);
    assert_int_equal(stats(l).replayed_records, 1);
    read_expect(l, "r", false);
    assert_empty(l);
    lg_segment_log_close(l);
}

static void test_scan_buffer_counts_valid_and_corrupt(void **state)
{
    (void)state;
    struct lg_segment_log *l = open_log(0);
    append(l, "x1", 1);
    append(l, "x2", 1);
    lg_segment_log_close(l);
    char *path = only_segment_path();
    FILE *f = fopen(path, "rb");
    uint8_t buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t valid, corrupt;
    lg_segment_scan_buffer(buf, n, &valid, &corrupt);
    assert_int_equal(valid, 2);
    assert_int_equal(corrupt, 0);
    buf[3] ^= 1;
    lg_segment_scan_buffer(buf, n, &valid, &corrupt);
    assert_int_equal(valid, 1);
    assert_int_equal(corrupt, 1);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unacknowledged_records_are_replayed_after_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_order_acknowledgements_survive_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_is_cut_counted_and_appends_continue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte_skips_one_record_and_keeps_the_rest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_segment_never_crashes_and_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_segments_rotate_and_delivered_ones_are_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_damaged_state_file_replays_everything_rather_than_losing_any, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thousands_of_acknowledgements_compact_the_journal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_buffer_counts_valid_and_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
