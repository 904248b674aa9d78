/* tests/unit/test_interaction_store.c — the interaction store: record frames and keys (wrong
 * key refused, rotated keys both readable), damage (truncated tail, flipped bytes: detected,
 * counted, the rest still read, the writer resuming after a crash), retention (oldest first,
 * by age and by size), permissions (0700 / 0600, fixed or refused), the sampling hash (the
 * Collector's values, a deterministic share), and the exporter end to end on batches with the
 * prompt/completion content of every convention. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/runtime.h"
#include "exporters/store_format.h"
#include "llm_test_util.h"
#include "sink.h"

extern const struct lg_component_type lg_interaction_store_exporter;

/* Two fixed keys (base64 of 32 bytes). */
#define KEY_A "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY_B "H+Dh4uPk5ebn6Onq6+zt7u/w8fLz9PX29/j5+vv8/f4="

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmpdir_new(void)
{
    char *d = strdup("/tmp/lg-istore-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static struct lg_store_key key_of(const char *b64)
{
    struct lg_store_key k;
    struct lg_err err;
    assert_int_equal(lg_store_key_parse(b64, &k, &err), LG_OK);
    return k;
}

/* Writes a segment file holding `n` records "rec-<tag>-<i>" sealed with k. */
static void write_segment(const char *path, const struct lg_store_key *k, int tag, int n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, LG_STORE_FILE_MAGIC, LG_STORE_FILE_MAGIC_LEN),
                     LG_STORE_FILE_MAGIC_LEN);
    for (int i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"rec\":\"rec-%d-%d\"}", tag, i);
        uint8_t *f = NULL;
        size_t flen = 0;
        struct lg_err err;
        assert_int_equal(lg_store_seal(k, (const uint8_t *)text, strlen(text), &f, &flen, &err),
                         LG_OK);
        assert_int_equal(write(fd, f, flen), (ssize_t)flen);
        free(f);
    }
    close(fd);
}

/* Records read, joined by newlines (`all` grows; free it). */
struct collected {
    char *all;
    size_t len;
    int n;
};

static int collect(void *ctx, const char *seg, uint64_t off, const uint8_t *plain, size_t len)
{
    (void)seg, (void)off;
    struct collected *c = ctx;
    c->all = realloc(c->all, c->len + len + 2);
    assert_non_null(c->all);
    if (c->len)
        c->all[c->len++] = '\n';
    memcpy(c->all + c->len, plain, len);
    c->len += len;
    c->all[c->len] = '\0';
    c->n++;
    return 0;
}

static void collected_reset(struct collected *c)
{
    free(c->all);
    memset(c, 0, sizeof *c);
}

static int64_t file_size(const char *p)
{
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return sb.st_size;
}

/* ---- keys and frames ---- */

static void test_key_parse_and_id(void **state)
{
    (void)state;
    struct lg_store_key k;
    struct lg_err err;
    assert_int_equal(lg_store_key_parse("  " KEY_A "\n", &k, &err), LG_OK);
    assert_int_equal(strlen(k.id_hex), 16);
    struct lg_store_key k2 = key_of(KEY_B);
    assert_string_not_equal(k.id_hex, k2.id_hex);
    assert_int_equal(lg_store_key_parse("c2hvcnQ=", &k, &err), LG_EINVAL); /* "short" */
    assert_non_null(strstr(err.msg, "32 bytes"));
    assert_int_equal(lg_store_key_parse("not base64 !!", &k, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "base64"));
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char p[512];
    snprintf(p, sizeof p, "%s/seg-00000000000000000001-0000.lgs", d);
    struct lg_store_key a = key_of(KEY_A), b = key_of(KEY_B);
    write_segment(p, &a, 1, 3);
    struct collected got = {0};
    struct lg_store_read_stats st = {0};
    struct lg_err err;
    assert_int_equal(lg_store_read_dir(d, &b, 1, collect, &got, &st, &err), LG_OK);
    assert_int_equal(got.n, 0);
    assert_int_equal(st.unknown_key, 3);
    assert_int_equal(st.corrupt, 0);
    assert_int_equal(st.n_unknown_ids, 1);
    assert_string_equal(st.unknown_ids[0], a.id_hex);
    /* A key with the right ID but other bytes (cannot happen by chance): the tag refuses it. */
    struct lg_store_key forged = b;
    memcpy(forged.id, a.id, sizeof a.id);
    memset(&st, 0, sizeof st);
    assert_int_equal(lg_store_read_dir(d, &forged, 1, collect, &got, &st, &err), LG_OK);
    assert_int_equal(got.n, 0);
    assert_true(st.corrupt >= 1);
    memset(&st, 0, sizeof st);
    assert_int_equal(lg_store_read_dir(d, &a, 1, collect, &got, &st, &err), LG_OK);
    assert_int_equal(got.n, 3);
    assert_non_null(strstr(got.all, "rec-1-2"));
    collected_reset(&got);
    rm_rf(d);
    free(d);
}

static void test_rotated_keys_both_readable(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/seg-00000000000000000001-0000.lgs", d);
    snprintf(p2, sizeof p2, "%s/seg-00000000000000000002-0000.lgs", d);
    struct lg_store_key keys[2] = {key_of(KEY_B), key_of(KEY_A)};
    write_segment(p1, &keys[1], 1, 2); /* old key A */
    write_segment(p2, &keys[0], 2, 2); /* new key B */
    struct collected got = {0};
    struct lg_store_read_stats st = {0};
    struct lg_err err;
    assert_int_equal(lg_store_read_dir(d, keys, 2, collect, &got, &st, &err), LG_OK);
    assert_int_equal(got.n, 4);
    assert_int_equal(st.unknown_key, 0);
    /* Creation order is kept: the old segment first. */
    assert_true(strstr(got.all, "rec-1-0") < strstr(got.all, "rec-2-0"));
    collected_reset(&got);
    memset(&st, 0, sizeof st);
    assert_int_equal(lg_store_read_dir(d, keys, 1, collect, &got, &st, &err), LG_OK);
    assert_int_equal(got.n, 2);
    assert_int_equal(st.unknown_key, 2);
    collected_reset(&got);
    rm_rf(d);
    free(d);
}

static void test_truncated_tail_detected(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char p[512];
    snprintf(p, sizeof p, "%s/seg-00000000000000000001-0000.lgs", d);
    struct lg_store_key k = key_of(KEY_A);
    const int cuts[] = {1, 8, 16, 17, 33, 48, 60};
    for (size_t c = 0; c < LG_ARRAY_LEN(cuts); c++) {
        write_segment(p, &k, 1, 5);
        int64_t size = file_size(p);
        int cut = cuts[c];
        assert_int_equal(truncate(p, size - cut), 0);
        struct collected got = {0};
        struct lg_store_read_stats st = {0};
        struct lg_err err;
        assert_int_equal(lg_store_read_dir(d, &k, 1, collect, &got, &st, &err), LG_OK);
        assert_int_equal(got.n, 4);
        assert_int_equal(st.truncated, 1);
        assert_int_equal(st.corrupt, 0);
        assert_null(strstr(got.all, "rec-1-4"));
        assert_non_null(strstr(got.all, "rec-1-3"));
        collected_reset(&got);
    }
    rm_rf(d);
    free(d);
}

/* A live store: the reader sees the newest segment while a frame is being appended. The
 * callback for the last complete record finishes that append (deterministically "during
 * the read"), so the cut tail is recognised as an append in progress, not damage. */
struct appender {
    struct collected *got;
    const char *path;
    const uint8_t *rest;
    size_t nrest;
};

static int collect_then_append(void *ctx, const char *segment, uint64_t offset, const uint8_t *plain,
                               size_t len)
{
    struct appender *ap = ctx;
    int rc = collect(ap->got, segment, offset, plain, len);
    if (strstr((const char *)plain, "rec-1-3") != NULL) {
        int fd = open(ap->path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, ap->rest, ap->nrest), (ssize_t)ap->nrest);
        close(fd);
    }
    return rc;
}

static void test_tail_being_written_is_not_damage(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char p[512];
    snprintf(p, sizeof p, "%s/seg-00000000000000000001-0000.lgs", d);
    struct lg_store_key k = key_of(KEY_A);
    write_segment(p, &k, 1, 5);
    int64_t size = file_size(p);
    uint8_t rest[40];
    int fd = open(p, O_RDONLY);
    assert_int_equal(pread(fd, rest, sizeof rest, size - (off_t)sizeof rest), (ssize_t)sizeof rest);
    close(fd);
    assert_int_equal(truncate(p, size - (off_t)sizeof rest), 0);
    /* nothing appends: a crash tail, counted as truncated */
    assert_false(lg_store_file_grew(p, (size_t)(size - (off_t)sizeof rest)));
    assert_true(lg_store_file_grew(p, 10));
    struct collected got = {0};
    struct lg_store_read_stats st = {0};
    struct lg_err err;
    assert_int_equal(lg_store_read_dir(d, &k, 1, collect, &got, &st, &err), LG_OK);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.being_written, 0);
    collected_reset(&got);
    /* the append completes while the reader is walking the segment */
    struct appender ap = {&got, p, rest, sizeof rest};
    memset(&st, 0, sizeof st);
    assert_int_equal(lg_store_read_dir(d, &k, 1, collect_then_append, &ap, &st, &err), LG_OK);
    assert_int_equal(got.n, 4);
    assert_int_equal(st.truncated, 0);
    assert_int_equal(st.being_written, 1);
    assert_int_equal(st.corrupt, 0);
    collected_reset(&got);
    /* and the next read has the whole record */
    memset(&st, 0, sizeof st);
    assert_int_equal(lg_store_read_dir(d, &k, 1, collect, &got, &st, &err), LG_OK);
    assert_int_equal(got.n, 5);
    assert_int_equal(st.truncated + st.being_written + st.corrupt, 0);
    collected_reset(&got);
    rm_rf(d);
    free(d);
}

static void test_flipped_bytes_detected(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char p[512];
    snprintf(p, sizeof p, "%s/seg-00000000000000000001-0000.lgs", d);
    struct lg_store_key k = key_of(KEY_A);
    write_segment(p, &k, 1, 5);
    int64_t size = file_size(p);
    int64_t frame = (size - LG_STORE_FILE_MAGIC_LEN) / 5; /* equal-length records */
    /* A byte in the ciphertext, the nonce (authenticated header), the length and the tag of
     * the second record: each time exactly that record is lost and counted. */
    const int64_t where[] = {LG_STORE_HDR_LEN + 3, 20, 30, frame - 1, 1};
    for (size_t w = 0; w < LG_ARRAY_LEN(where); w++) {
        write_segment(p, &k, 1, 5);
        int fd = open(p, O_RDWR);
        uint8_t byte;
        off_t off = LG_STORE_FILE_MAGIC_LEN + frame + where[w];
        assert_int_equal(pread(fd, &byte, 1, off), 1);
        byte ^= 0x20;
        assert_int_equal(pwrite(fd, &byte, 1, off), 1);
        close(fd);
        struct collected got = {0};
        struct lg_store_read_stats st = {0};
        struct lg_err err;
        assert_int_equal(lg_store_read_dir(d, &k, 1, collect, &got, &st, &err), LG_OK);
        assert_int_equal(got.n, 4);
        assert_int_equal(st.corrupt, 1);
        assert_int_equal(st.truncated, 0);
        assert_null(strstr(got.all, "rec-1-1"));
        assert_non_null(strstr(got.all, "rec-1-0"));
        assert_non_null(strstr(got.all, "rec-1-4"));
        collected_reset(&got);
    }
    rm_rf(d);
    free(d);
}

/* ---- retention and permissions ---- */

static void make_seg(const char *d, int idx, size_t bytes, int64_t age_s)
{
    char p[512];
    snprintf(p, sizeof p, "%s/seg-%020d-0000.lgs", d, idx);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', f);
    fclose(f);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    assert_int_equal(utimes(p, tv), 0);
}

static bool seg_exists(const char *d, int idx)
{
    char p[512];
    snprintf(p, sizeof p, "%s/seg-%020d-0000.lgs", d, idx);
    return access(p, F_OK) == 0;
}

static void test_retention_oldest_first(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    /* By age: segments 1 and 2 are past 1h, 3 is not. */
    make_seg(d, 1, 100, 7200);
    make_seg(d, 2, 100, 3700);
    make_seg(d, 3, 100, 60);
    uint64_t by_age = 0, by_size = 0;
    struct lg_err err;
    assert_int_equal(lg_store_retention(d, 3600LL * 1000000000, 0, NULL, lg_now_wall_ns(), &by_age,
                                        &by_size, &err),
                     LG_OK);
    assert_int_equal(by_age, 2);
    assert_int_equal(by_size, 0);
    assert_false(seg_exists(d, 1));
    assert_false(seg_exists(d, 2));
    assert_true(seg_exists(d, 3));
    /* By size: 5 segments of 1000 bytes, limit 2500: the two... three oldest go, by name
     * (creation) order even when their mtimes say otherwise. */
    make_seg(d, 4, 1000, 10);
    make_seg(d, 5, 1000, 50); /* touched earlier than 4, but created later */
    make_seg(d, 6, 1000, 5);
    make_seg(d, 7, 1000, 1);
    by_age = by_size = 0;
    assert_int_equal(
        lg_store_retention(d, 0, 2500, NULL, lg_now_wall_ns(), &by_age, &by_size, &err), LG_OK);
    assert_int_equal(by_size, 3); /* 4100 -> 3 (100) + 4 gone -> 3100, 5 gone -> 2100 */
    assert_false(seg_exists(d, 3));
    assert_false(seg_exists(d, 4));
    assert_false(seg_exists(d, 5));
    assert_true(seg_exists(d, 6));
    assert_true(seg_exists(d, 7));
    /* The segment being written is never deleted, even when it alone is too big / old. */
    make_seg(d, 8, 5000, 99999);
    by_age = by_size = 0;
    char keep[64];
    snprintf(keep, sizeof keep, "seg-%020d-0000.lgs", 8);
    assert_int_equal(lg_store_retention(d, 3600LL * 1000000000, 100, keep, lg_now_wall_ns(),
                                        &by_age, &by_size, &err),
                     LG_OK);
    assert_true(seg_exists(d, 8));
    assert_false(seg_exists(d, 6));
    assert_false(seg_exists(d, 7));
    rm_rf(d);
    free(d);
}

static void test_permissions_checked(void **state)
{
    (void)state;
    char *d = tmpdir_new();
    char sub[512], seg[600];
    snprintf(sub, sizeof sub, "%s/a/store", d);
    struct lg_err err;
    int fixed = 0;
    /* Created 0700 with its parents. */
    assert_int_equal(lg_store_check_dir(sub, true, false, &fixed, &err), LG_OK);
    struct stat sb;
    assert_int_equal(stat(sub, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    /* Loose directory: refused without fix (the message says what to do), fixed with it. */
    assert_int_equal(chmod(sub, 0755), 0);
    assert_int_equal(lg_store_check_dir(sub, true, false, &fixed, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "0755"));
    assert_non_null(strstr(err.msg, "chmod 700"));
    assert_int_equal(lg_store_check_dir(sub, true, true, &fixed, &err), LG_OK);
    assert_int_equal(fixed, 1);
    assert_int_equal(stat(sub, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    /* Loose segment. */
    snprintf(seg, sizeof seg, "%s/seg-00000000000000000001-0000.lgs", sub);
    FILE *f = fopen(seg, "wb");
    fclose(f);
    assert_int_equal(chmod(seg, 0644), 0);
    assert_int_equal(lg_store_check_dir(sub, true, false, &fixed, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "0644"));
    assert_int_equal(lg_store_check_dir(sub, true, true, &fixed, &err), LG_OK);
    assert_int_equal(stat(seg, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* Not a directory; a symlink is not followed. */
    char link[600];
    snprintf(link, sizeof link, "%s/link", d);
    assert_int_equal(symlink(sub, link), 0);
    assert_int_equal(lg_store_check_dir(link, true, true, &fixed, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "not a directory"));
    rm_rf(d);
    free(d);
}

/* ---- sampling ---- */

static void test_sampling_hash_matches_collector(void **state)
{
    (void)state;
    /* FNV-1a 64 reference values. */
    assert_true(lg_store_trace_hash("", NULL, 0) == 0xcbf29ce484222325ULL);
    assert_true(lg_store_trace_hash("a", NULL, 0) == 0xaf63dc4c8601ec8cULL);
    uint8_t tid[16];
    for (int i = 0; i < 16; i++)
        tid[i] = (uint8_t)(i + 1);
    assert_true(lg_store_trace_hash(LG_STORE_DEFAULT_HASH_SALT, tid, 16) ==
                15838989281584434349ULL);
    /* Thresholds as Go's big.Float computes MaxUint64 * ratio (computed independently with
     * exact fractions). */
    assert_true(lg_store_sampling_threshold(0) == 0);
    assert_true(lg_store_sampling_threshold(0.1) == 18446744073709551ULL);
    assert_true(lg_store_sampling_threshold(1) == 184467440737095519ULL);
    assert_true(lg_store_sampling_threshold(10) == 1844674407370955263ULL);
    assert_true(lg_store_sampling_threshold(25) == 4611686018427387903ULL);
    assert_true(lg_store_sampling_threshold(33.3) == 6142765776545279999ULL);
    assert_true(lg_store_sampling_threshold(50) == 9223372036854775807ULL);
    assert_true(lg_store_sampling_threshold(99.9) == 18428297329635844095ULL);
    assert_true(lg_store_sampling_threshold(100) == UINT64_MAX);
}

static void test_sampling_share_deterministic(void **state)
{
    (void)state;
    uint64_t th = lg_store_sampling_threshold(25);
    int kept = 0, kept_salted = 0;
    for (uint32_t i = 0; i < 20000; i++) {
        uint8_t tid[16] = {0};
        memcpy(tid, &i, sizeof i);
        tid[8] = 0x5a;
        bool k1 = lg_store_trace_hash(LG_STORE_DEFAULT_HASH_SALT, tid, 16) <= th;
        assert_int_equal(k1, lg_store_trace_hash(LG_STORE_DEFAULT_HASH_SALT, tid, 16) <= th);
        kept += k1;
        kept_salted += lg_store_trace_hash("other-salt", tid, 16) <= th;
    }
    assert_in_range(kept, 4600, 5400);
    assert_in_range(kept_salted, 4600, 5400);
    assert_int_not_equal(kept, kept_salted); /* the salt changes which traces are kept */
}

/* ---- the exporter ---- */

struct fixture {
    struct lg_conf_doc doc;
    struct lg_runtime rt;
    struct lg_component c;
    struct lg_arena *arena;
    char *dir;
    char keypath[600];
};

static int make_exporter(struct fixture *f, const char *dir, const char *extra_yaml,
                         struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    char yaml[4096];
    /* Synchronous writes (queue disabled) unless the test configures the queue itself. */
    bool own_queue = extra_yaml && strstr(extra_yaml, "sending_queue");
    snprintf(yaml, sizeof yaml,
             "interaction_store:\n  directory: %s/store\n  key_file: %s/key\n%s%s", dir, dir,
             own_queue ? "" : "  sending_queue: {enabled: false}\n", extra_yaml ? extra_yaml : "");
    struct lg_conf_source src = {.text = yaml, .name = "store.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->rt.telemetry = lg_telemetry_create();
    f->arena = lg_arena_create(0);
    f->c.type = &lg_interaction_store_exporter;
    f->c.id = "interaction_store";
    f->c.rt = &f->rt;
    f->c.conf_node = lg_node_get(f->doc.root, "interaction_store");
    f->c.conf = lg_arena_calloc(f->arena, 1, lg_interaction_store_exporter.conf_size);
    rc = lg_conf_apply(lg_interaction_store_exporter.fields, f->c.conf_node, f->doc.root, f->c.conf,
                       f->arena, err);
    if (rc == LG_OK)
        rc = lg_interaction_store_exporter.create(&f->c, err);
    if (rc == LG_OK)
        rc = lg_interaction_store_exporter.start(&f->c, err);
    return rc;
}

static void free_exporter(struct fixture *f)
{
    if (f->c.state) {
        lg_interaction_store_exporter.shutdown(&f->c, lg_now_mono_ns() + 5000000000LL);
        lg_interaction_store_exporter.destroy(&f->c);
    }
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

static uint64_t metric(struct fixture *f, const char *name, const char *labels)
{
    size_t len = 0;
    char *text = lg_telemetry_render(f->rt.telemetry, &len);
    uint64_t v = 0;
    char want[512];
    snprintf(want, sizeof want, "%s{exporter=\"interaction_store\"%s%s}", name, labels ? "," : "",
             labels ? labels : "");
    const char *p = strstr(text, want);
    if (p)
        v = strtoull(p + strlen(want), NULL, 10);
    free(text);
    return v;
}

static char *new_store_dir(void)
{
    char *d = tmpdir_new();
    char p[600];
    snprintf(p, sizeof p, "%s/key", d);
    FILE *f = fopen(p, "w");
    fputs(KEY_A "\n", f);
    fclose(f);
    chmod(p, 0600);
    return d;
}

static void set_status(struct lg_arena *a, lg_span *s, int code, const char *msg)
{
    s->status = lg_arena_alloc(a, sizeof *s->status);
    opentelemetry__proto__trace__v1__status__init(s->status);
    s->status->code = code;
    s->status->message = lg_arena_strdup(a, msg);
}

static void add_event(struct lg_arena *a, lg_span *s, const char *name, const char *key,
                      const char *val)
{
    lg_span_event *ev = lg_arena_alloc(a, sizeof *ev);
    opentelemetry__proto__trace__v1__span__event__init(ev);
    ev->name = lg_arena_strdup(a, name);
    ev->time_unix_nano = s->start_time_unix_nano + 1000;
    struct tattr at[] = {{key, 's', val}};
    lg_span *tmp = tspan(a, "x", at, 1);
    ev->attributes = tmp->attributes;
    ev->n_attributes = 1;
    lg_span_event **evs = lg_arena_calloc(a, s->n_events + 1, sizeof *evs);
    for (size_t i = 0; i < s->n_events; i++)
        evs[i] = s->events[i];
    evs[s->n_events++] = ev;
    s->events = evs;
}

/* Puts `span` at position i of the batch, keeping the builder's IDs and a service name. */
static void place(struct lg_batch *b, size_t i, lg_span *span)
{
    lg_resource_spans *rs = b->req.traces->resource_spans[0];
    lg_scope_spans *ss = rs->scope_spans[0];
    span->trace_id = ss->spans[i]->trace_id;
    span->span_id = ss->spans[i]->span_id;
    span->start_time_unix_nano = 1767225600000000000ULL + i;
    span->end_time_unix_nano = span->start_time_unix_nano + 2000000000ULL;
    ss->spans[i] = span;
    if (rs->resource->n_attributes == 0) {
        struct tattr svc[] = {{"service.name", 's', "unit-svc"}};
        lg_span *tmp = tspan(b->arena, "x", svc, 1);
        rs->resource->attributes = tmp->attributes;
        rs->resource->n_attributes = 1;
    }
}

static cJSON *read_records(const char *dir, const struct lg_store_key *k,
                           struct lg_store_read_stats *st)
{
    char sd[600];
    snprintf(sd, sizeof sd, "%s/store", dir);
    struct collected got = {0};
    struct lg_err err;
    assert_int_equal(lg_store_read_dir(sd, k, 1, collect, &got, st, &err), LG_OK);
    /* got.all is one JSON object per line: make it an array. */
    size_t cap = got.len + 3;
    char *arr = malloc(cap);
    arr[0] = '[';
    size_t o = 1;
    for (size_t i = 0; i < got.len; i++)
        arr[o++] = got.all[i] == '\n' ? ',' : got.all[i];
    collected_reset(&got);
    arr[o++] = ']';
    arr[o] = '\0';
    cJSON *j = cJSON_Parse(arr);
    free(arr);
    assert_non_null(j);
    return j;
}

static const cJSON *record_named(const cJSON *recs, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, recs)
    {
        const cJSON *n = cJSON_GetObjectItem(r, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return r;
    }
    return NULL;
}

/* The value of content[kind] entry `key` (attributes) as text, or NULL. */
static const char *content_value(const cJSON *rec, const char *kind, const char *key)
{
    const cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "content"), kind), *kv;
    cJSON_ArrayForEach(kv, arr)
    {
        if (strcmp(cJSON_GetObjectItem(kv, "key")->valuestring, key) == 0)
            return cJSON_GetStringValue(cJSON_GetObjectItem(kv, "value"));
    }
    return NULL;
}

static void test_exporter_content_every_convention(void **state)
{
    (void)state;
    char *d = new_store_dir();
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, d, NULL, &err), LG_OK);
    struct lg_batch *b = make_traces(1, 1, 7);
    struct lg_arena *a = b->arena;
    struct tattr genai[] = {{"gen_ai.operation.name", 's', "chat"},
                            {"gen_ai.provider.name", 's', "openai"},
                            {"gen_ai.request.model", 's', "gpt-4o"},
                            {"gen_ai.usage.input_tokens", 'i', "11"},
                            {"gen_ai.usage.output_tokens", 'i', "7"},
                            {"gen_ai.usage.cost", 'd', "0.125"},
                            {"gen_ai.input.messages", 's',
                             "[{\"role\":\"user\",\"parts\":[{\"content\":\"P-GENAI\"}]}]"},
                            {"gen_ai.output.messages", 's',
                             "[{\"role\":\"assistant\",\"parts\":[{\"content\":\"C-GENAI\"}]}]"},
                            {"error.type", 's', "timeout"}};
    struct tattr deprecated[] = {{"gen_ai.system", 's', "openai"},
                                 {"gen_ai.request.model", 's', "gpt-4o"},
                                 {"gen_ai.usage.prompt_tokens", 'i', "3"},
                                 {"gen_ai.prompt.0.role", 's', "user"},
                                 {"gen_ai.prompt.0.content", 's', "P-INDEXED"},
                                 {"gen_ai.completion.0.content", 's', "C-INDEXED"}};
    struct tattr oi[] = {{"openinference.span.kind", 's', "LLM"},
                         {"llm.model_name", 's', "gpt-4o"},
                         {"llm.token_count.prompt", 'i', "5"},
                         {"llm.input_messages.0.message.content", 's', "P-OI"},
                         {"llm.output_messages.0.message.content", 's', "C-OI"},
                         {"input.value", 's', "P-OI-VALUE"}};
    struct tattr seed[] = {{"llm.model", 's', "gpt-4o"},        {"llm.prompt_tokens", 'i', "5"},
                           {"llm.completion_tokens", 'i', "2"}, {"llm.prompt", 's', "P-SEED"},
                           {"llm.completion", 's', "C-SEED"},   {"llm.error", 's', "RateLimit"}};
    struct tattr events[] = {{"gen_ai.operation.name", 's', "chat"},
                             {"gen_ai.provider.name", 's', "anthropic"},
                             {"gen_ai.request.model", 's', "claude"},
                             {"gen_ai.usage.input_tokens", 'i', "4"}};
    struct tattr ok[] = {
        {"gen_ai.operation.name", 's', "chat"},          {"gen_ai.provider.name", 's', "openai"},
        {"gen_ai.request.model", 's', "gpt-4o"},         {"gen_ai.usage.input_tokens", 'i', "4"},
        {"gen_ai.response.finish_reasons", 'a', "stop"}, {"gen_ai.input.messages", 's', "P-OK"}};
    struct tattr length[] = {{"gen_ai.operation.name", 's', "chat"},
                             {"gen_ai.provider.name", 's', "openai"},
                             {"gen_ai.request.model", 's', "gpt-4o"},
                             {"gen_ai.usage.input_tokens", 'i', "4"},
                             {"gen_ai.response.finish_reasons", 'a', "length"},
                             {"gen_ai.input.messages", 's', "P-LEN"}};
    lg_span *s_genai = tspan(a, "chat gpt-4o", genai, LG_ARRAY_LEN(genai));
    lg_span *s_dep = tspan(a, "openai.chat", deprecated, LG_ARRAY_LEN(deprecated));
    lg_span *s_oi = tspan(a, "ChatCompletion", oi, LG_ARRAY_LEN(oi));
    lg_span *s_seed = tspan(a, "llm_completion", seed, LG_ARRAY_LEN(seed));
    lg_span *s_ev = tspan(a, "chat claude", events, LG_ARRAY_LEN(events));
    lg_span *s_ok = tspan(a, "chat ok", ok, LG_ARRAY_LEN(ok));
    lg_span *s_len = tspan(a, "chat length", length, LG_ARRAY_LEN(length));
    set_status(a, s_dep, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR,
               "upstream 500");
    set_status(a, s_oi, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR,
               "bad");
    set_status(a, s_ev, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR,
               "bad");
    add_event(a, s_ev, "gen_ai.user.message", "content", "P-EVENT");
    add_event(a, s_ev, "gen_ai.choice", "message", "C-EVENT");
    add_event(a, s_ev, "exception", "exception.message", "not content");
    lg_span *spans[] = {s_genai, s_dep, s_oi, s_seed, s_ev, s_ok, s_len};
    for (size_t i = 0; i < LG_ARRAY_LEN(spans); i++)
        place(b, i, spans[i]);
    assert_int_equal(lg_interaction_store_exporter.consume(&f.c, b), LG_OK);
    lg_batch_unref(b);

    struct lg_store_key k = key_of(KEY_A);
    struct lg_store_read_stats st = {0};
    cJSON *recs = read_records(d, &k, &st);
    assert_int_equal(cJSON_GetArraySize(recs), 6); /* every failure; "stop" with 0% is not kept */
    assert_null(record_named(recs, "chat ok"));
    const cJSON *r = record_named(recs, "chat gpt-4o");
    assert_non_null(r);
    assert_non_null(strstr(content_value(r, "prompt", "gen_ai.input.messages"), "P-GENAI"));
    assert_non_null(strstr(content_value(r, "completion", "gen_ai.output.messages"), "C-GENAI"));
    assert_string_equal(cJSON_GetObjectItem(r, "error_type")->valuestring, "timeout");
    assert_string_equal(cJSON_GetObjectItem(r, "service")->valuestring, "unit-svc");
    assert_string_equal(cJSON_GetObjectItem(r, "provider")->valuestring, "openai");
    assert_true(cJSON_GetObjectItem(r, "cost_usd")->valuedouble == 0.125);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "tokens"), "input")->valueint, 11);
    assert_string_equal(cJSON_GetObjectItem(r, "start_time_unix_nano")->valuestring,
                        "1767225600000000000");
    r = record_named(recs, "openai.chat");
    assert_string_equal(content_value(r, "prompt", "gen_ai.prompt.0.content"), "P-INDEXED");
    assert_string_equal(content_value(r, "prompt", "gen_ai.prompt.0.role"), "user");
    assert_string_equal(content_value(r, "completion", "gen_ai.completion.0.content"), "C-INDEXED");
    const cJSON *status = cJSON_GetObjectItem(r, "status");
    assert_string_equal(cJSON_GetObjectItem(status, "code")->valuestring, "ERROR");
    assert_string_equal(cJSON_GetObjectItem(status, "message")->valuestring, "upstream 500");
    r = record_named(recs, "ChatCompletion");
    assert_string_equal(content_value(r, "prompt", "llm.input_messages.0.message.content"), "P-OI");
    assert_string_equal(content_value(r, "prompt", "input.value"), "P-OI-VALUE");
    assert_string_equal(content_value(r, "completion", "llm.output_messages.0.message.content"),
                        "C-OI");
    r = record_named(recs, "llm_completion");
    assert_string_equal(content_value(r, "prompt", "llm.prompt"), "P-SEED");
    assert_string_equal(content_value(r, "completion", "llm.completion"), "C-SEED");
    assert_string_equal(cJSON_GetObjectItem(r, "error_type")->valuestring, "RateLimit");
    r = record_named(recs, "chat claude");
    const cJSON *evs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "content"), "events");
    assert_int_equal(cJSON_GetArraySize(evs), 2); /* the exception event is not content */
    const cJSON *e0 = cJSON_GetArrayItem(evs, 0), *e1 = cJSON_GetArrayItem(evs, 1);
    assert_string_equal(cJSON_GetObjectItem(e0, "name")->valuestring, "gen_ai.user.message");
    assert_string_equal(cJSON_GetObjectItem(e0, "kind")->valuestring, "prompt");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(e0, "attributes"), 0), "value")),
                        "P-EVENT");
    assert_string_equal(cJSON_GetObjectItem(e1, "kind")->valuestring, "completion");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetArrayItem(cJSON_GetObjectItem(e1, "attributes"), 0), "value")),
                        "C-EVENT");
    r = record_named(recs, "chat length");
    assert_non_null(r); /* finish reason "length" counts as a failure by default */
    assert_string_equal(cJSON_GetObjectItem(r, "selected")->valuestring, "failed");
    assert_string_equal(cJSON_GetObjectItem(r, "finish_reason")->valuestring, "length");
    cJSON_Delete(recs);
    assert_int_equal(metric(&f, "llmgate_interaction_store_records", "selected=\"failed\""), 6);
    assert_int_equal(metric(&f, "llmgate_interaction_store_skipped_spans", NULL), 1);
    free_exporter(&f);

    /* The segment on disk is 0600 in a 0700 directory, whatever the umask. */
    char sd[600];
    snprintf(sd, sizeof sd, "%s/store", d);
    struct stat sb;
    assert_int_equal(stat(sd, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    struct lg_store_segment *segs = NULL;
    size_t n = 0;
    assert_int_equal(lg_store_list_segments(sd, &segs, &n, &err), LG_OK);
    assert_int_equal(n, 1);
    char sp[700];
    snprintf(sp, sizeof sp, "%s/%s", sd, segs[0].name);
    assert_int_equal(stat(sp, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    free(segs);
    rm_rf(d);
    free(d);
}

/* 400 successful spans over 400 traces at 50%: exactly those whose hash is under the
 * threshold are stored; failures are all stored; failed: none stores only the sampled. */
static void test_exporter_sampling_share(void **state)
{
    (void)state;
    char *d = new_store_dir();
    struct fixture f;
    struct lg_err err;
    assert_int_equal(
        make_exporter(&f, d,
                      "  successful: {sampling_percentage: 50, hash_salt: s1}\n  failed: none\n",
                      &err),
        LG_OK);
    const size_t n = 400;
    struct lg_batch *b = make_traces(2, 1, n);
    struct tattr ok[] = {
        {"llm.model", 's', "gpt-4o"}, {"llm.prompt_tokens", 'i', "5"}, {"llm.prompt", 's', "hi"}};
    uint64_t th = lg_store_sampling_threshold(50);
    size_t want = 0;
    for (size_t i = 0; i < n; i++) {
        lg_span *s = tspan(b->arena, "llm_completion", ok, 3);
        if (i % 10 == 0)
            set_status(b->arena, s,
                       OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR,
                       "x");
        place(b, i, s);
        uint8_t *tid = (uint8_t *)s->trace_id.data;
        tid[1] = (uint8_t)i;
        tid[2] = (uint8_t)(i >> 8);
        want += lg_store_trace_hash("s1", tid, 16) <= th;
    }
    assert_int_equal(lg_interaction_store_exporter.consume(&f.c, b), LG_OK);
    lg_batch_unref(b);
    assert_in_range(want, 150, 250);
    struct lg_store_key k = key_of(KEY_A);
    struct lg_store_read_stats st = {0};
    cJSON *recs = read_records(d, &k, &st);
    assert_int_equal((size_t)cJSON_GetArraySize(recs), want);
    const cJSON *r;
    cJSON_ArrayForEach(r, recs)
        assert_string_equal(cJSON_GetObjectItem(r, "selected")->valuestring, "sampled");
    cJSON_Delete(recs);
    assert_int_equal(metric(&f, "llmgate_interaction_store_records", "selected=\"sampled\""), want);
    assert_int_equal(metric(&f, "llmgate_interaction_store_skipped_spans", NULL), n - want);
    free_exporter(&f);
    rm_rf(d);
    free(d);
}

static struct lg_batch *one_failed_batch(int tag)
{
    struct lg_batch *b = make_traces(tag, 1, 2);
    struct tattr seed[] = {
        {"llm.model", 's', "gpt-4o"}, {"llm.prompt", 's', "P"}, {"llm.error", 's', "E"}};
    for (size_t i = 0; i < 2; i++)
        place(b, i, tspan(b->arena, "llm_completion", seed, 3));
    return b;
}

/* A crash mid-write leaves a truncated tail: the next start counts it, writes a new
 * segment, and everything but the cut record stays readable. Also: rotation by size. */
static void test_exporter_resumes_after_truncated_tail(void **state)
{
    (void)state;
    char *d = new_store_dir();
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, d, NULL, &err), LG_OK);
    struct lg_batch *b = one_failed_batch(1);
    assert_int_equal(lg_interaction_store_exporter.consume(&f.c, b), LG_OK);
    lg_batch_unref(b);
    free_exporter(&f);
    char sd[600];
    snprintf(sd, sizeof sd, "%s/store", d);
    struct lg_store_segment *segs = NULL;
    size_t n = 0;
    assert_int_equal(lg_store_list_segments(sd, &segs, &n, &err), LG_OK);
    assert_int_equal(n, 1);
    char sp[700];
    snprintf(sp, sizeof sp, "%s/%s", sd, segs[0].name);
    assert_int_equal(truncate(sp, segs[0].size - 5), 0);
    free(segs);

    assert_int_equal(make_exporter(&f, d, NULL, &err), LG_OK);
    assert_int_equal(metric(&f, "llmgate_interaction_store_truncated_records", NULL), 1);
    b = one_failed_batch(2);
    assert_int_equal(lg_interaction_store_exporter.consume(&f.c, b), LG_OK);
    lg_batch_unref(b);
    free_exporter(&f);
    struct lg_store_key k = key_of(KEY_A);
    struct lg_store_read_stats st = {0};
    cJSON *recs = read_records(d, &k, &st);
    assert_int_equal(cJSON_GetArraySize(recs), 3);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.segments, 2);
    cJSON_Delete(recs);
    rm_rf(d);
    free(d);
}

/* Segments rotate at segment_size_mib and retention (max_size_mib) deletes the oldest while
 * the gateway runs; the newest records stay readable. fsync: always and never work too. */
static void test_exporter_rotation_and_retention(void **state)
{
    (void)state;
    const char *modes[] = {"always", "never"};
    for (size_t m = 0; m < LG_ARRAY_LEN(modes); m++) {
        char *d = new_store_dir();
        struct fixture f;
        struct lg_err err;
        char extra[256];
        snprintf(extra, sizeof extra,
                 "  fsync: %s\n  retention: {segment_size_mib: 1, max_size_mib: 2}\n", modes[m]);
        assert_int_equal(make_exporter(&f, d, extra, &err), LG_OK);
        size_t big = 700 * 1024;
        char *prompt = malloc(big + 1);
        memset(prompt, 'p', big);
        prompt[big] = '\0';
        for (int i = 0; i < 6; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "BATCH-%d-", i);
            memcpy(prompt, tag, strlen(tag));
            struct lg_batch *b = make_traces(10 + i, 1, 1);
            struct tattr seed[] = {
                {"llm.model", 's', "gpt-4o"}, {"llm.prompt", 's', prompt}, {"llm.error", 's', "E"}};
            place(b, 0, tspan(b->arena, "llm_completion", seed, 3));
            assert_int_equal(lg_interaction_store_exporter.consume(&f.c, b), LG_OK);
            lg_batch_unref(b);
        }
        free(prompt);
        assert_true(
            metric(&f, "llmgate_interaction_store_segments_deleted", "reason=\"max_size\"") >= 2);
        free_exporter(&f);
        char sd[600];
        snprintf(sd, sizeof sd, "%s/store", d);
        struct lg_store_segment *segs = NULL;
        size_t n = 0;
        assert_int_equal(lg_store_list_segments(sd, &segs, &n, &err), LG_OK);
        int64_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += segs[i].size;
        free(segs);
        assert_true(total <= 2 * 1024 * 1024);
        struct lg_store_key k = key_of(KEY_A);
        struct lg_store_read_stats st = {0};
        cJSON *recs = read_records(d, &k, &st);
        int nrec = cJSON_GetArraySize(recs);
        assert_in_range(nrec, 1, 3);
        /* What is left is the newest, in order. */
        for (int i = 0; i < nrec; i++) {
            char tag[32];
            snprintf(tag, sizeof tag, "BATCH-%d-", 6 - nrec + i);
            const char *v = content_value(cJSON_GetArrayItem(recs, i), "prompt", "llm.prompt");
            assert_non_null(v);
            assert_memory_equal(v, tag, strlen(tag));
        }
        assert_int_equal(st.corrupt + st.truncated + st.unknown_key, 0);
        cJSON_Delete(recs);
        rm_rf(d);
        free(d);
    }
}

static void test_exporter_config_errors(void **state)
{
    (void)state;
    char *d = new_store_dir();
    struct fixture f;
    struct lg_err err;
    assert_int_equal(make_exporter(&f, d, "  key_env: LG_NO_SUCH_VAR_X\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "exactly one of key_file and key_env"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, d, "  fsync: sometimes\n", &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "interaction_store.fsync"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, d, "  failed: {finish_reasons: [length], bogus: 1}\n", &err),
                     LG_EINVAL);
    assert_non_null(strstr(err.msg, "bogus"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, d, "  successful: {sampling_percentage: 101}\n", &err),
                     LG_EINVAL);
    free_exporter(&f);
    assert_int_equal(
        make_exporter(&f, d, "  retention: {max_size_mib: 20, segment_size_mib: 16}\n", &err),
        LG_EINVAL);
    assert_non_null(strstr(err.msg, "at least twice"));
    free_exporter(&f);
    assert_int_equal(make_exporter(&f, d, "  sending_queue: {storage: file_storage}\n", &err),
                     LG_EINVAL);
    assert_non_null(strstr(err.msg, "unencrypted"));
    free_exporter(&f);
    /* A wrong-length key names the file. */
    char p[600];
    snprintf(p, sizeof p, "%s/key", d);
    FILE *kf = fopen(p, "w");
    fputs("c2hvcnQ=\n", kf);
    fclose(kf);
    assert_int_equal(make_exporter(&f, d, NULL, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "key file"));
    assert_non_null(strstr(err.msg, "32 bytes"));
    free_exporter(&f);
    rm_rf(d);
    free(d);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parse_and_id),
        cmocka_unit_test(test_wrong_key_refused),
        cmocka_unit_test(test_rotated_keys_both_readable),
        cmocka_unit_test(test_truncated_tail_detected),
        cmocka_unit_test(test_tail_being_written_is_not_damage),
        cmocka_unit_test(test_flipped_bytes_detected),
        cmocka_unit_test(test_retention_oldest_first),
        cmocka_unit_test(test_permissions_checked),
        cmocka_unit_test(test_sampling_hash_matches_collector),
        cmocka_unit_test(test_sampling_share_deterministic),
        cmocka_unit_test(test_exporter_content_every_convention),
        cmocka_unit_test(test_exporter_sampling_share),
        cmocka_unit_test(test_exporter_resumes_after_truncated_tail),
        cmocka_unit_test(test_exporter_rotation_and_retention),
        cmocka_unit_test(test_exporter_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
