/* core/segment_log.c — the persistent queue's on-disk log (format in segment_log.h).
 *
 * Owns the segment files and the state file of one directory, and an in-memory index of
 * every record from the committed position on (position, length, items, state), in
 * append order. The committed position is always the oldest record not yet acknowledged
 * (or the write position when there is none): everything before it is delivered, given up
 * or corrupt, so segments wholly before it are deleted. */
#include "segment_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define REC_MAGIC     0x3151474cu /* "LGQ1" little-endian */
#define STATE_MAGIC   0x5351474cu /* "LGQS" */
#define STATE_VERSION 1u
#define REC_HDR       16u
/* The state file lists at most this many out-of-order acknowledged (and in-flight) records;
 * past it a restart may send some again (counted), never lose any. */
#define STATE_MAX_LISTED 65536u

/* Journal entries between two snapshots of the state file; then a new snapshot (one
 * rename) empties the journal. Renaming per acknowledgement would cost a writeback each on
 * ext4 (auto_da_alloc), the journal costs one small write(). */
#define JOURNAL_COMPACT 4096u
#define JOURNAL_ENTRY   24u
#define J_ACK           0x41u /* 'A' */
#define J_INFLIGHT      0x46u /* 'F' */

enum rstate { R_PENDING, R_INFLIGHT, R_ACKED };

struct rentry {
    uint64_t seg, off;
    uint32_t len, items;
    uint8_t state;
    bool redelivery;
};

struct seginfo {
    uint64_t num;
};

struct lg_segment_log {
    pthread_mutex_t mu;
    char *dir;
    bool fsync;
    int64_t segment_size;

    struct seginfo *segs; /* on disk, ascending */
    size_t nsegs, capsegs;
    int wfd;
    uint64_t wseg;
    uint64_t woff;
    int rfd;
    uint64_t rseg;

    struct rentry *ring; /* entries from the committed position on */
    size_t cap, head, count;
    uint64_t front_id; /* id of ring[head] */
    size_t read_idx;   /* first entry (relative to head) that may be pending */

    struct lg_segment_log_stats st;
    uint64_t unacked; /* entries not acknowledged (pending or in flight) */
    int jfd;          /* the journal, appended to between snapshots */
    uint32_t jentries;
};

/* ---- little helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t record_crc(const uint8_t *len_items8, const uint8_t *payload, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, len_items8, 8);
    /* zlib's length argument is uInt; records are capped far below 4 GiB */
    c = crc32(c, payload, (uInt)len);
    return (uint32_t)c;
}

/* A valid record starts at pos: magic, sane length, whole, CRC matches. */
static bool valid_at(const uint8_t *buf, size_t size, size_t pos, uint32_t *len, uint32_t *items)
{
    if (pos > size || size - pos < REC_HDR)
        return false;
    const uint8_t *h = buf + pos;
    if (get32(h) != REC_MAGIC)
        return false;
    uint32_t l = get32(h + 4);
    if (l > LG_SEGMENT_LOG_MAX_RECORD || size - pos - REC_HDR < l)
        return false;
    if (record_crc(h + 4, h + REC_HDR, l) != get32(h + 12))
        return false;
    *len = l;
    *items = get32(h + 8);
    return true;
}

/* The next offset after pos where a valid record starts, or size. */
static size_t resync(const uint8_t *buf, size_t size, size_t pos)
{
    static const uint8_t magic[4] = {'L', 'G', 'Q', '1'};
    for (size_t p = pos + 1; p + REC_HDR <= size; p++) {
        const uint8_t *m = memchr(buf + p, 'L', size - p);
        if (m == NULL)
            break;
        p = (size_t)(m - buf);
        uint32_t l, it;
        if (size - p >= 4 && memcmp(m, magic, 4) == 0 && valid_at(buf, size, p, &l, &it))
            return p;
    }
    return size;
}

void lg_segment_scan_buffer(const uint8_t *buf, size_t len, size_t *valid, size_t *corrupt)
{
    size_t pos = 0, v = 0, c = 0;
    while (pos < len) {
        uint32_t l, it;
        if (valid_at(buf, len, pos, &l, &it)) {
            v++;
            pos += REC_HDR + l;
        } else {
            c++;
            pos = resync(buf, len, pos);
        }
    }
    *valid = v;
    *corrupt = c;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *seg_path(const struct lg_segment_log *l, uint64_t num)
{
    char name[40];
    snprintf(name, sizeof name, "seg-%016" PRIx64 ".log", num);
    return path_join(l->dir, name);
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static struct rentry *entry(struct lg_segment_log *l, size_t i)
{
    return &l->ring[(l->head + i) % l->cap];
}

static int push_entry(struct lg_segment_log *l, const struct rentry *e)
{
    if (l->count == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        struct rentry *n = malloc(ncap * sizeof *n);
        if (n == NULL)
            return LG_ENOMEM;
        for (size_t i = 0; i < l->count; i++)
            n[i] = *entry(l, i);
        free(l->ring);
        l->ring = n;
        l->cap = ncap;
        l->head = 0;
    }
    *entry(l, l->count++) = *e;
    return LG_OK;
}

static int push_seg(struct lg_segment_log *l, uint64_t num)
{
    if (l->nsegs == l->capsegs) {
        size_t ncap = l->capsegs ? l->capsegs * 2 : 8;
        struct seginfo *n = realloc(l->segs, ncap * sizeof *n);
        if (n == NULL)
            return LG_ENOMEM;
        l->segs = n;
        l->capsegs = ncap;
    }
    l->segs[l->nsegs++].num = num;
    return LG_OK;
}

/* ---- state file ---- */

struct pos {
    uint64_t seg, off;
};

static int pos_cmp(const void *a, const void *b)
{
    const struct pos *x = a, *y = b;
    if (x->seg != y->seg)
        return x->seg < y->seg ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static bool pos_in(const struct pos *set, size_t n, uint64_t seg, uint64_t off)
{
    struct pos k = {seg, off};
    return n && bsearch(&k, set, n, sizeof k, pos_cmp) != NULL;
}

/* Rewrites the state file (tmp + rename) and empties the journal. Caller holds mu. Never
 * fsynced: losing either (power cut) only means replaying from an older position, i.e.
 * duplicates, not loss. */
static void write_state(struct lg_segment_log *l)
{
    uint64_t cseg = l->wseg, coff = l->woff;
    if (l->count) {
        cseg = entry(l, 0)->seg;
        coff = entry(l, 0)->off;
    }
    size_t nacked = 0, ninfl = 0;
    for (size_t i = 0; i < l->count; i++) {
        uint8_t s = entry(l, i)->state;
        if (s == R_ACKED && nacked < STATE_MAX_LISTED)
            nacked++;
        else if (s == R_INFLIGHT && ninfl < STATE_MAX_LISTED)
            ninfl++;
    }
    size_t size = 4 + 4 + 16 + 8 + (nacked + ninfl) * 16 + 4;
    uint8_t *buf = malloc(size);
    if (buf == NULL)
        return;
    uint8_t *p = buf;
    put32(p, STATE_MAGIC), p += 4;
    put32(p, STATE_VERSION), p += 4;
    put64(p, cseg), p += 8;
    put64(p, coff), p += 8;
    put32(p, (uint32_t)nacked), p += 4;
    put32(p, (uint32_t)ninfl), p += 4;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t want = pass == 0 ? R_ACKED : R_INFLIGHT;
        size_t limit = pass == 0 ? nacked : ninfl, done = 0;
        for (size_t i = 0; i < l->count && done < limit; i++) {
            struct rentry *e = entry(l, i);
            if (e->state != want)
                continue;
            put64(p, e->seg), p += 8;
            put64(p, e->off), p += 8;
            done++;
        }
    }
    put32(p, (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(p - buf)));
    char *tmp = path_join(l->dir, "state.tmp"), *fin = path_join(l->dir, "state");
    if (tmp && fin) {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            bool ok = write(fd, buf, size) == (ssize_t)size;
            close(fd);
            /* the journal is emptied only once the snapshot holding its entries is in place */
            if (ok && rename(tmp, fin) == 0 && l->jfd >= 0 && ftruncate(l->jfd, 0) == 0)
                l->jentries = 0;
        }
    }
    free(tmp);
    free(fin);
    free(buf);
}

/* Records one event (a record read for sending, or acknowledged) in the journal. */
static void journal(struct lg_segment_log *l, uint32_t type, const struct rentry *e)
{
    if (l->jfd < 0 || l->jentries >= JOURNAL_COMPACT) {
        write_state(l);
        return;
    }
    uint8_t b[JOURNAL_ENTRY];
    put32(b, type);
    put64(b + 8, e->seg);
    put64(b + 16, e->off);
    uLong c = crc32(crc32(0L, Z_NULL, 0), b, 4);
    c = crc32(c, b + 8, 16);
    put32(b + 4, (uint32_t)c);
    if (write(l->jfd, b, sizeof b) == (ssize_t)sizeof b)
        l->jentries++;
    else
        write_state(l);
}

/* Adds the journal's events to the snapshot's sets (both malloc'd, grown here). Stops at
 * the first torn or damaged entry: later events are lost, which means duplicates only. */
static void read_journal(const char *dir, struct pos **acked, size_t *nacked, struct pos **infl,
                         size_t *ninfl)
{
    char *path = path_join(dir, "journal");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "rb");
    free(path);
    if (f == NULL)
        return;
    uint8_t b[JOURNAL_ENTRY];
    while (fread(b, 1, sizeof b, f) == sizeof b) {
        uLong c = crc32(crc32(0L, Z_NULL, 0), b, 4);
        c = crc32(c, b + 8, 16);
        uint32_t type = get32(b);
        if ((uint32_t)c != get32(b + 4) || (type != J_ACK && type != J_INFLIGHT))
            break;
        struct pos **set = type == J_ACK ? acked : infl;
        size_t *n = type == J_ACK ? nacked : ninfl;
        struct pos *g = realloc(*set, (*n + 1) * sizeof **set);
        if (g == NULL)
            break;
        *set = g;
        g[(*n)++] = (struct pos){get64(b + 8), get64(b + 16)};
    }
    fclose(f);
}

/* Reads the state file; false when missing or invalid (then everything on disk is replayed). */
static bool read_state(const char *dir, struct pos *commit, struct pos **acked, size_t *nacked,
                       struct pos **infl, size_t *ninfl)
{
    *acked = *infl = NULL;
    *nacked = *ninfl = 0;
    char *path = path_join(dir, "state");
    if (path == NULL)
        return false;
    FILE *f = fopen(path, "rb");
    free(path);
    if (f == NULL)
        return false;
    uint8_t hdr[32];
    bool ok = fread(hdr, 1, sizeof hdr, f) == sizeof hdr && get32(hdr) == STATE_MAGIC &&
              get32(hdr + 4) == STATE_VERSION;
    uint32_t na = ok ? get32(hdr + 24) : 0, ni = ok ? get32(hdr + 28) : 0;
    ok = ok && na <= STATE_MAX_LISTED && ni <= STATE_MAX_LISTED;
    uint8_t *body = NULL;
    size_t blen = ((size_t)na + ni) * 16 + 4;
    if (ok) {
        body = malloc(blen);
        ok = body && fread(body, 1, blen, f) == blen;
    }
    fclose(f);
    if (ok) {
        uLong c = crc32(crc32(0L, Z_NULL, 0), hdr, sizeof hdr);
        c = crc32(c, body, (uInt)(blen - 4));
        ok = (uint32_t)c == get32(body + blen - 4);
    }
    if (ok) {
        commit->seg = get64(hdr + 8);
        commit->off = get64(hdr + 16);
        *acked = malloc((na ? na : 1) * sizeof **acked);
        *infl = malloc((ni ? ni : 1) * sizeof **infl);
        ok = *acked && *infl;
    }
    if (ok) {
        for (uint32_t i = 0; i < na; i++)
            (*acked)[i] = (struct pos){get64(body + i * 16), get64(body + i * 16 + 8)};
        for (uint32_t i = 0; i < ni; i++)
            (*infl)[i] = (struct pos){get64(body + (na + i) * 16), get64(body + (na + i) * 16 + 8)};
        *nacked = na;
        *ninfl = ni;
        read_journal(dir, acked, nacked, infl, ninfl);
        qsort(*acked, *nacked, sizeof **acked, pos_cmp);
        qsort(*infl, *ninfl, sizeof **infl, pos_cmp);
    } else {
        free(*acked);
        free(*infl);
        *acked = *infl = NULL;
    }
    free(body);
    return ok;
}

/* ---- open / scan ---- */

static int seg_num_cmp(const void *a, const void *b)
{
    const struct seginfo *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

static int list_segments(struct lg_segment_log *l, struct lg_err *err)
{
    DIR *d = opendir(l->dir);
    if (d == NULL)
        return lg_err_set(err, LG_EIO, "cannot open directory \"%s\": %s", l->dir, strerror(errno));
    struct dirent *de;
    int rc = LG_OK;
    while ((de = readdir(d)) != NULL && rc == LG_OK) {
        const char *n = de->d_name;
        if (strncmp(n, "seg-", 4) != 0 || strlen(n) != 4 + 16 + 4 || strcmp(n + 20, ".log") != 0)
            continue;
        char *end;
        uint64_t num = strtoull(n + 4, &end, 16);
        if (end != n + 20)
            continue;
        rc = push_seg(l, num);
    }
    closedir(d);
    if (rc != LG_OK)
        return lg_err_set(err, rc, "out of memory");
    if (l->nsegs > 1)
        qsort(l->segs, l->nsegs, sizeof *l->segs, seg_num_cmp);
    return LG_OK;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return LG_EIO;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return LG_EIO;
    }
    size_t size = (size_t)sb.st_size;
    uint8_t *b = malloc(size ? size : 1);
    if (b == NULL) {
        close(fd);
        return LG_ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, b + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *buf = b;
    *len = got;
    return LG_OK;
}

/* Deletes segments wholly before the oldest unacknowledged record. Caller holds mu. */
static void drop_old_segments(struct lg_segment_log *l)
{
    uint64_t keep = l->count ? entry(l, 0)->seg : l->wseg;
    size_t k = 0;
    for (size_t i = 0; i < l->nsegs; i++) {
        if (l->segs[i].num < keep && l->segs[i].num != l->wseg) {
            char *p = seg_path(l, l->segs[i].num);
            if (p)
                unlink(p);
            free(p);
            if (l->rfd >= 0 && l->rseg == l->segs[i].num) {
                close(l->rfd);
                l->rfd = -1;
            }
        } else {
            l->segs[k++] = l->segs[i];
        }
    }
    l->nsegs = k;
    l->st.segments = k;
}

static int open_write_segment(struct lg_segment_log *l, uint64_t num, struct lg_err *err)
{
    char *p = seg_path(l, num);
    if (p == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int e = errno;
    free(p);
    if (fd < 0)
        return lg_err_set(err, LG_EIO, "cannot create a segment in \"%s\": %s", l->dir,
                          strerror(e));
    if (l->wfd >= 0)
        close(l->wfd);
    l->wfd = fd;
    l->wseg = num;
    l->woff = 0;
    if (l->fsync)
        fsync_dir(l->dir);
    return LG_OK;
}

static int scan_segment(struct lg_segment_log *l, uint64_t num, uint64_t start, bool last,
                        const struct pos *acked, size_t nacked, const struct pos *infl,
                        size_t ninfl, struct lg_err *err)
{
    char *path = seg_path(l, num);
    if (path == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    uint8_t *buf;
    size_t size;
    int rc = read_file(path, &buf, &size);
    if (rc != LG_OK) {
        lg_err_set(err, rc, "cannot read \"%s\": %s", path, strerror(errno));
        free(path);
        return rc;
    }
    size_t pos = start <= size ? (size_t)start : size, valid_end = pos;
    if (start > size) {
        /* The state says more was committed than the file holds (it was cut): nothing here. */
        valid_end = size;
    }
    while (pos < size && rc == LG_OK) {
        uint32_t len, items;
        if (valid_at(buf, size, pos, &len, &items)) {
            bool ack = pos_in(acked, nacked, num, pos);
            struct rentry e = {.seg = num,
                               .off = pos,
                               .len = len,
                               .items = items,
                               .state = ack ? R_ACKED : R_PENDING,
                               .redelivery = !ack && pos_in(infl, ninfl, num, pos)};
            rc = push_entry(l, &e);
            if (rc != LG_OK)
                lg_err_set(err, rc, "out of memory");
            if (!ack) {
                l->st.pending_records++;
                l->st.pending_items += items;
                l->st.pending_bytes += len;
                l->unacked++;
                l->st.replayed_records++;
                l->st.replayed_items += items;
                if (e.redelivery) {
                    l->st.redelivered_records++;
                    l->st.redelivered_items += items;
                }
            }
            pos += REC_HDR + len;
            valid_end = pos;
        } else {
            size_t next = resync(buf, size, pos);
            l->st.corrupt_records++;
            l->st.corrupt_bytes += next - pos;
            pos = next;
        }
    }
    free(buf);
    if (rc == LG_OK && last) {
        /* Cut a torn tail so new records follow the last good one. */
        if (valid_end < size && truncate(path, (off_t)valid_end) != 0)
            rc = lg_err_set(err, LG_EIO, "cannot truncate \"%s\": %s", path, strerror(errno));
        l->woff = valid_end;
    }
    free(path);
    return rc;
}

int lg_segment_log_open(const struct lg_segment_log_opts *o, struct lg_segment_log **out,
                        struct lg_err *err)
{
    *out = NULL;
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST)
        return lg_err_set(err, LG_EIO, "cannot create directory \"%s\": %s", o->dir,
                          strerror(errno));
    struct lg_segment_log *l = calloc(1, sizeof *l);
    if (l == NULL || (l->dir = strdup(o->dir)) == NULL) {
        free(l);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&l->mu, NULL);
    l->fsync = o->fsync;
    l->segment_size = o->segment_size > 0 ? o->segment_size : LG_SEGMENT_LOG_DEFAULT_SEGMENT_SIZE;
    l->wfd = l->rfd = l->jfd = -1;
    struct pos commit = {0, 0}, *acked = NULL, *infl = NULL;
    size_t nacked = 0, ninfl = 0;
    bool have_state = read_state(l->dir, &commit, &acked, &nacked, &infl, &ninfl);
    int rc = list_segments(l, err);
    for (size_t i = 0; i < l->nsegs && rc == LG_OK; i++) {
        uint64_t num = l->segs[i].num;
        if (have_state && num < commit.seg)
            continue; /* delivered; dropped below */
        uint64_t start = have_state && num == commit.seg ? commit.off : 0;
        rc = scan_segment(l, num, start, i + 1 == l->nsegs, acked, nacked, infl, ninfl, err);
        if (rc == LG_OK && i + 1 == l->nsegs)
            l->wseg = num;
    }
    free(acked);
    free(infl);
    if (rc == LG_OK) {
        if (l->nsegs == 0 || l->woff >= (uint64_t)l->segment_size ||
            (have_state && l->segs[l->nsegs - 1].num < commit.seg)) {
            uint64_t num = l->nsegs ? l->segs[l->nsegs - 1].num + 1 : 1;
            if (have_state && num <= commit.seg)
                num = commit.seg + 1;
            rc = open_write_segment(l, num, err);
            if (rc == LG_OK && (rc = push_seg(l, num)) != LG_OK)
                lg_err_set(err, rc, "out of memory");
        } else {
            uint64_t keep = l->woff;
            rc = open_write_segment(l, l->segs[l->nsegs - 1].num, err);
            l->woff = keep;
        }
    }
    if (rc != LG_OK) {
        lg_err_prefix(err, "persistent queue");
        lg_segment_log_close(l);
        return rc;
    }
    /* Drop leading acknowledged entries and delivered segments, then record the state. */
    while (l->count && entry(l, 0)->state == R_ACKED) {
        l->head = (l->head + 1) % l->cap;
        l->count--;
        l->front_id++;
    }
    drop_old_segments(l);
    l->st.segments = l->nsegs;
    char *jpath = path_join(l->dir, "journal");
    if (jpath)
        l->jfd = open(jpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    free(jpath);
    write_state(l); /* folds the old journal into a fresh snapshot */
    *out = l;
    return LG_OK;
}

/* ---- append / read / ack ---- */

int lg_segment_log_append(struct lg_segment_log *l, const void *data, size_t len, uint32_t items,
                          struct lg_err *err)
{
    if (len > LG_SEGMENT_LOG_MAX_RECORD)
        return lg_err_set(err, LG_ETOOBIG, "a record of %zu bytes exceeds the %u-byte limit", len,
                          LG_SEGMENT_LOG_MAX_RECORD);
    uint8_t hdr[REC_HDR];
    put32(hdr, REC_MAGIC);
    put32(hdr + 4, (uint32_t)len);
    put32(hdr + 8, items);
    put32(hdr + 12, record_crc(hdr + 4, data, len));
    pthread_mutex_lock(&l->mu);
    int rc = LG_OK;
    if (l->woff > 0 && l->woff + REC_HDR + len > (uint64_t)l->segment_size) {
        uint64_t num = l->wseg + 1;
        rc = open_write_segment(l, num, err);
        if (rc == LG_OK && (rc = push_seg(l, num)) != LG_OK)
            lg_err_set(err, rc, "out of memory");
        l->st.segments = l->nsegs;
    }
    if (rc == LG_OK) {
        struct iovec iov[2] = {{hdr, REC_HDR}, {(void *)(uintptr_t)data, len}};
        size_t want = REC_HDR + len, done = 0;
        while (done < want) {
            ssize_t w;
            if (done < REC_HDR) {
                struct iovec v[2] = {{hdr + done, REC_HDR - done}, iov[1]};
                w = writev(l->wfd, v, 2);
            } else {
                w = write(l->wfd, (const uint8_t *)data + (done - REC_HDR), want - done);
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                int e = w < 0 ? errno : ENOSPC;
                /* Take back a partial record so the file stays a clean sequence. */
                if (ftruncate(l->wfd, (off_t)l->woff) != 0) {
                    /* left torn: the reader skips it as corrupt; later records follow it */
                    struct stat sb;
                    if (fstat(l->wfd, &sb) == 0)
                        l->woff = (uint64_t)sb.st_size;
                }
                rc = lg_err_set(err, LG_EIO, "cannot write to \"%s\": %s", l->dir, strerror(e));
                break;
            }
            done += (size_t)w;
        }
        if (rc == LG_OK && l->fsync && fdatasync(l->wfd) != 0)
            rc = lg_err_set(err, LG_EIO, "cannot sync \"%s\": %s", l->dir, strerror(errno));
    }
    if (rc == LG_OK) {
        struct rentry e = {.seg = l->wseg,
                           .off = l->woff,
                           .len = (uint32_t)len,
                           .items = items,
                           .state = R_PENDING};
        rc = push_entry(l, &e);
        if (rc != LG_OK)
            lg_err_set(err, rc, "out of memory");
        /* written either way: it would be replayed at the next start */
        l->woff += REC_HDR + len;
        if (rc == LG_OK) {
            l->unacked++;
            l->st.pending_records++;
            l->st.pending_items += items;
            l->st.pending_bytes += len;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return LG_EIO;
        got += (size_t)r;
    }
    return LG_OK;
}

int lg_segment_log_read(struct lg_segment_log *l, struct lg_segment_record *rec)
{
    memset(rec, 0, sizeof *rec);
    pthread_mutex_lock(&l->mu);
    int rc = LG_EAGAIN;
    while (l->read_idx < l->count) {
        size_t idx = l->read_idx++;
        struct rentry *e = entry(l, idx);
        if (e->state != R_PENDING)
            continue;
        l->st.pending_records--;
        l->st.pending_items -= e->items;
        l->st.pending_bytes -= e->len;
        if (l->rfd < 0 || l->rseg != e->seg) {
            if (l->rfd >= 0)
                close(l->rfd);
            char *p = seg_path(l, e->seg);
            l->rfd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
            l->rseg = e->seg;
            free(p);
        }
        uint8_t *buf = malloc(REC_HDR + (size_t)e->len);
        uint32_t len = 0, items = 0;
        bool ok = buf && l->rfd >= 0 &&
                  pread_full(l->rfd, buf, REC_HDR + (size_t)e->len, e->off) == LG_OK &&
                  valid_at(buf, REC_HDR + (size_t)e->len, 0, &len, &items) && len == e->len;
        if (!ok) {
            /* Changed or gone since open: skip it like any corrupt record. */
            free(buf);
            e->state = R_ACKED;
            l->unacked--;
            l->st.corrupt_records++;
            l->st.corrupt_bytes += REC_HDR + e->len;
            continue;
        }
        memmove(buf, buf + REC_HDR, len);
        rec->id = l->front_id + idx;
        rec->data = buf;
        rec->len = len;
        rec->items = items;
        rec->redelivery = e->redelivery;
        e->state = R_INFLIGHT;
        journal(l, J_INFLIGHT, e);
        rc = LG_OK;
        break;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int lg_segment_log_ack(struct lg_segment_log *l, uint64_t id)
{
    pthread_mutex_lock(&l->mu);
    if (id < l->front_id || id - l->front_id >= l->count) {
        pthread_mutex_unlock(&l->mu);
        return LG_EINVAL;
    }
    struct rentry *e = entry(l, (size_t)(id - l->front_id));
    if (e->state != R_ACKED)
        l->unacked--;
    e->state = R_ACKED;
    journal(l, J_ACK, e);
    while (l->count && entry(l, 0)->state == R_ACKED) {
        l->head = (l->head + 1) % l->cap;
        l->count--;
        l->front_id++;
        if (l->read_idx > 0)
            l->read_idx--;
    }
    drop_old_segments(l);
    pthread_mutex_unlock(&l->mu);
    return LG_OK;
}

void lg_segment_log_stats(struct lg_segment_log *l, struct lg_segment_log_stats *st)
{
    pthread_mutex_lock(&l->mu);
    *st = l->st;
    st->unacked_records = l->unacked;
    pthread_mutex_unlock(&l->mu);
}

void lg_segment_log_close(struct lg_segment_log *l)
{
    if (l == NULL)
        return;
    if (l->wfd >= 0)
        close(l->wfd);
    if (l->rfd >= 0)
        close(l->rfd);
    if (l->jfd >= 0)
        close(l->jfd);
    free(l->ring);
    free(l->segs);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
