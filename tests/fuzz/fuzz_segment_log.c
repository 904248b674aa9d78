/* tests/fuzz/fuzz_segment_log.c — libFuzzer target: arbitrary bytes as the persistent
 * queue's on-disk files. The first input byte picks a layout (one segment; two segments;
 * a segment plus a state file); the log is opened over them, every record read, decoded as
 * the exporter helper would, acknowledged out of order, appended to, and reopened. Nothing
 * may crash, leak or loop; the buffer scanner runs on the raw bytes too. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/segment_log.h"

static char dir[64];

static void clean_dir(void)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    char path[384];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static void remove_dir(void)
{
    clean_dir();
    rmdir(dir);
}

static void write_file(const char *name, const uint8_t *data, size_t len)
{
    char path[384];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    if (len)
        fwrite(data, 1, len, f);
    fclose(f);
}

static void drain(struct lg_segment_log *l)
{
    uint64_t ids[64];
    size_t n = 0;
    struct lg_segment_record r;
    while (lg_segment_log_read(l, &r) == LG_OK) {
        if (r.len >= 1 && r.data[0] < LG_SIGNAL_COUNT) {
            struct lg_batch *b = NULL;
            struct lg_err err;
            if (lg_batch_decode((enum lg_signal)r.data[0], r.data + 1, r.len - 1, &b, &err) ==
                LG_OK)
                lg_batch_unref(b);
        }
        free(r.data);
        if (n < 64)
            ids[n++] = r.id;
        else
            lg_segment_log_ack(l, r.id);
    }
    /* acknowledge the odd ones first, then the rest: the out-of-order path */
    for (size_t i = 1; i < n; i += 2)
        lg_segment_log_ack(l, ids[i]);
    for (size_t i = 0; i < n; i += 2)
        lg_segment_log_ack(l, ids[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (dir[0] == '\0') {
        /* tmpfs when there is one: a run is file I/O bound */
        snprintf(dir, sizeof dir, "%s/lg_fuzz_seglog_XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (mkdtemp(dir) == NULL)
            abort();
        atexit(remove_dir);
    }
    size_t valid, corrupt;
    lg_segment_scan_buffer(data, size, &valid, &corrupt);
    if (size < 1)
        return 0;
    clean_dir();
    uint8_t mode = data[0] % 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1, half = n / 2;
    if (mode == 0) {
        write_file("seg-0000000000000001.log", p, n);
    } else if (mode == 1) {
        write_file("seg-0000000000000001.log", p, half);
        write_file("seg-0000000000000002.log", p + half, n - half);
    } else {
        write_file("seg-0000000000000001.log", p, half);
        write_file("state", p + half, n - half);
    }
    struct lg_segment_log_opts o = {.dir = dir, .segment_size = 4096};
    struct lg_segment_log *l = NULL;
    struct lg_err err;
    if (lg_segment_log_open(&o, &l, &err) != LG_OK)
        return 0;
    struct lg_segment_record r;
    if (lg_segment_log_read(l, &r) == LG_OK)
        free(r.data); /* left in flight across the reopen */
    static const uint8_t rec[] = {0, 0x0a, 0x00};
    lg_segment_log_append(l, rec, sizeof rec, 0, &err);
    lg_segment_log_close(l);
    if (lg_segment_log_open(&o, &l, &err) != LG_OK)
        return 0;
    drain(l);
    lg_segment_log_close(l);
    return 0;
}
