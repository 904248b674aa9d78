/* exporters/store_format.c — interaction store format: keys, sealed record frames, segment
 * reading with corruption recovery, directory permissions, retention and the trace-ID
 * sampling hash. See store_format.h for the layout. Owns nothing beyond each call. */
#include "store_format.h"

#include "../core/b64.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>


/* ---- keys ---- */

int lg_store_key_parse(const char *text, struct lg_store_key *out, struct lg_err *err)
{
    uint8_t buf[LG_STORE_KEY_LEN + 4];
    long n = lg_base64_decode(text, buf, sizeof buf);
    if (n != LG_STORE_KEY_LEN) {
        OPENSSL_cleanse(buf, sizeof buf);
        if (n < 0)
            return lg_err_set(err, LG_EINVAL,
                              "key is not valid base64 (expected 32 random bytes, e.g. from "
                              "`openssl rand -base64 32`)");
        return lg_err_set(err, LG_EINVAL,
                          "key must be 32 bytes (base64 of 32 random bytes), got %ld bytes", n);
    }
    memcpy(out->key, buf, LG_STORE_KEY_LEN);
    OPENSSL_cleanse(buf, sizeof buf);
    uint8_t digest[32];
    unsigned int dlen = 0;
    if (EVP_Digest(out->key, LG_STORE_KEY_LEN, digest, &dlen, EVP_sha256(), NULL) != 1)
        return lg_err_set(err, LG_EINTERNAL, "SHA-256 failed");
    memcpy(out->id, digest, LG_STORE_KEY_ID_LEN);
    for (int i = 0; i < LG_STORE_KEY_ID_LEN; i++)
        snprintf(out->id_hex + 2 * i, 3, "%02x", out->id[i]);
    return LG_OK;
}

int lg_store_key_load_file(const char *path, struct lg_store_key *out, bool *loose_mode,
                           struct lg_err *err)
{
    if (loose_mode)
        *loose_mode = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lg_err_set(err, LG_EIO, "cannot read key file \"%s\": %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077) && loose_mode)
        *loose_mode = true;
    char text[256];
    ssize_t n = read(fd, text, sizeof text - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return lg_err_set(err, LG_EIO, "cannot read key file \"%s\": %s", path, strerror(e));
    text[n] = '\0';
    int rc = lg_store_key_parse(text, out, err);
    OPENSSL_cleanse(text, sizeof text);
    if (rc != LG_OK) {
        lg_err_prefix(err, "key file \"%s\"", path);
        return rc;
    }
    snprintf(out->source, sizeof out->source, "file %s", path);
    return LG_OK;
}

int lg_store_key_load_env(const char *var, struct lg_store_key *out, struct lg_err *err)
{
    const char *v = getenv(var);
    if (v == NULL || *v == '\0')
        return lg_err_set(err, LG_EINVAL, "environment variable \"%s\" (the store key) is not set",
                          var);
    int rc = lg_store_key_parse(v, out, err);
    if (rc != LG_OK) {
        lg_err_prefix(err, "environment variable \"%s\"", var);
        return rc;
    }
    snprintf(out->source, sizeof out->source, "env %s", var);
    return LG_OK;
}

void lg_store_key_wipe(struct lg_store_key *k)
{
    OPENSSL_cleanse(k, sizeof *k);
}

/* ---- frames ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int lg_store_seal(const struct lg_store_key *key, const uint8_t *plain, size_t len, uint8_t **out,
                  size_t *outlen, struct lg_err *err)
{
    if (len > LG_STORE_MAX_RECORD)
        return lg_err_set(err, LG_ETOOBIG, "record of %zu bytes exceeds the %u-byte limit", len,
                          LG_STORE_MAX_RECORD);
    size_t total = LG_STORE_HDR_LEN + len + LG_STORE_TAG_LEN;
    uint8_t *f = malloc(total);
    if (f == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    memset(f, 0, LG_STORE_HDR_LEN);
    memcpy(f, LG_STORE_REC_MAGIC, 4);
    f[4] = LG_STORE_VERSION;
    memcpy(f + 8, key->id, LG_STORE_KEY_ID_LEN);
    put_be32(f + 28, (uint32_t)len);
    if (RAND_bytes(f + 16, LG_STORE_NONCE_LEN) != 1) {
        free(f);
        return lg_err_set(err, LG_EINTERNAL, "no random bytes for the nonce");
    }
    EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
    int ol = 0, ok = cx != NULL;
    ok = ok && EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, LG_STORE_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_EncryptInit_ex(cx, NULL, NULL, key->key, f + 16) == 1;
    ok = ok && EVP_EncryptUpdate(cx, NULL, &ol, f, LG_STORE_HDR_LEN) == 1;
    ok = ok && (len == 0 || EVP_EncryptUpdate(cx, f + LG_STORE_HDR_LEN, &ol, plain, (int)len) == 1);
    ok = ok && EVP_EncryptFinal_ex(cx, f + LG_STORE_HDR_LEN + len, &ol) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, LG_STORE_TAG_LEN,
                                   f + LG_STORE_HDR_LEN + len) == 1;
    EVP_CIPHER_CTX_free(cx);
    if (!ok) {
        free(f);
        return lg_err_set(err, LG_EINTERNAL, "AES-256-GCM encryption failed");
    }
    *out = f;
    *outlen = total;
    return LG_OK;
}

/* Decrypts the frame at f (whose length was checked) into a malloc'd NUL-terminated buffer;
 * NULL when the tag does not verify (or on OOM: *oom set). */
static uint8_t *open_frame(const struct lg_store_key *key, const uint8_t *f, uint32_t n, bool *oom)
{
    *oom = false;
    uint8_t *p = malloc((size_t)n + 1);
    if (p == NULL) {
        *oom = true;
        return NULL;
    }
    EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
    int ol = 0, ok = cx != NULL;
    ok = ok && EVP_DecryptInit_ex(cx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_IVLEN, LG_STORE_NONCE_LEN, NULL) == 1;
    ok = ok && EVP_DecryptInit_ex(cx, NULL, NULL, key->key, f + 16) == 1;
    ok = ok && EVP_DecryptUpdate(cx, NULL, &ol, f, LG_STORE_HDR_LEN) == 1;
    ok = ok && (n == 0 || EVP_DecryptUpdate(cx, p, &ol, f + LG_STORE_HDR_LEN, (int)n) == 1);
    ok = ok && EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, LG_STORE_TAG_LEN,
                                   (void *)(f + LG_STORE_HDR_LEN + n)) == 1;
    ok = ok && EVP_DecryptFinal_ex(cx, p + n, &ol) == 1;
    EVP_CIPHER_CTX_free(cx);
    if (!ok) {
        OPENSSL_cleanse(p, n);
        free(p);
        return NULL;
    }
    p[n] = '\0';
    return p;
}

/* Next offset >= from where the record magic starts, or len. */
static size_t find_magic(const uint8_t *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 4 <= len; i++)
        if (buf[i] == 'L' && memcmp(buf + i, LG_STORE_REC_MAGIC, 4) == 0)
            return i;
    return len;
}

/* Structural frame check at pos: 1 complete and plausible, 0 cut short, -1 implausible. */
static int frame_at(const uint8_t *buf, size_t len, size_t pos, uint32_t *n)
{
    if (len - pos < LG_STORE_HDR_LEN)
        return memcmp(buf + pos, LG_STORE_REC_MAGIC, len - pos < 4 ? len - pos : 4) == 0 ? 0 : -1;
    if (memcmp(buf + pos, LG_STORE_REC_MAGIC, 4) != 0 || buf[4 + pos] != LG_STORE_VERSION)
        return -1;
    *n = get_be32(buf + pos + 28);
    if (*n > LG_STORE_MAX_RECORD)
        return -1;
    if ((uint64_t)len - pos < (uint64_t)LG_STORE_HDR_LEN + *n + LG_STORE_TAG_LEN)
        return 0;
    return 1;
}

static void note_unknown(struct lg_store_read_stats *st, const uint8_t *id)
{
    char hex[2 * LG_STORE_KEY_ID_LEN + 1];
    for (int i = 0; i < LG_STORE_KEY_ID_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    for (size_t i = 0; i < st->n_unknown_ids; i++)
        if (strcmp(st->unknown_ids[i], hex) == 0)
            return;
    if (st->n_unknown_ids < LG_ARRAY_LEN(st->unknown_ids))
        memcpy(st->unknown_ids[st->n_unknown_ids++], hex, sizeof hex);
}

int lg_store_read_buffer(const uint8_t *buf, size_t len, const char *segment,
                         const struct lg_store_key *keys, size_t nkeys, lg_store_record_fn fn,
                         void *ctx, struct lg_store_read_stats *st)
{
    st->segments++;
    if (len < LG_STORE_FILE_MAGIC_LEN ||
        memcmp(buf, LG_STORE_FILE_MAGIC, LG_STORE_FILE_MAGIC_LEN) != 0) {
        /* A segment is created with its magic in one write: anything else is not ours or
         * was damaged. An empty file is a segment whose creation was interrupted. */
        if (len > 0)
            st->corrupt++;
        return LG_OK;
    }
    size_t pos = LG_STORE_FILE_MAGIC_LEN;
    while (pos < len) {
        uint32_t n = 0;
        int fr = frame_at(buf, len, pos, &n);
        if (fr <= 0) {
            size_t next = find_magic(buf, len, pos + 1);
            if (fr == 0 && next == len) {
                st->truncated++; /* the last frame was cut short: a crash mid-write */
                break;
            }
            st->corrupt++;
            pos = next;
            continue;
        }
        const struct lg_store_key *k = NULL;
        for (size_t i = 0; i < nkeys && k == NULL; i++)
            if (memcmp(keys[i].id, buf + pos + 8, LG_STORE_KEY_ID_LEN) == 0)
                k = &keys[i];
        size_t flen = LG_STORE_HDR_LEN + (size_t)n + LG_STORE_TAG_LEN;
        if (k == NULL) {
            st->unknown_key++;
            note_unknown(st, buf + pos + 8);
            pos += flen;
            continue;
        }
        bool oom = false;
        uint8_t *plain = open_frame(k, buf + pos, n, &oom);
        if (plain == NULL) {
            if (oom)
                return LG_ENOMEM;
            /* The length may be the damaged byte: resynchronise on the next magic rather
             * than trusting it. */
            st->corrupt++;
            pos = find_magic(buf, len, pos + 1);
            continue;
        }
        st->records++;
        int rc = fn ? fn(ctx, segment, pos, plain, n) : 0;
        OPENSSL_cleanse(plain, n);
        free(plain);
        if (rc != 0)
            return rc;
        pos += flen;
    }
    return LG_OK;
}

size_t lg_store_valid_prefix(const uint8_t *buf, size_t len)
{
    if (len < LG_STORE_FILE_MAGIC_LEN ||
        memcmp(buf, LG_STORE_FILE_MAGIC, LG_STORE_FILE_MAGIC_LEN) != 0)
        return 0;
    size_t pos = LG_STORE_FILE_MAGIC_LEN;
    uint32_t n = 0;
    while (pos < len && frame_at(buf, len, pos, &n) == 1)
        pos += LG_STORE_HDR_LEN + (size_t)n + LG_STORE_TAG_LEN;
    return pos;
}

static int read_file(const char *path, uint8_t **out, size_t *len, struct lg_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lg_err_set(err, LG_EIO, "cannot open \"%s\": %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return lg_err_set(err, LG_EIO, "cannot stat \"%s\": %s", path, strerror(e));
    }
    size_t cap = (size_t)sb.st_size, n = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (buf == NULL) {
        close(fd);
        return lg_err_set(err, LG_ENOMEM, "out of memory reading \"%s\"", path);
    }
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return lg_err_set(err, LG_EIO, "cannot read \"%s\": %s", path, strerror(e));
        }
        if (r == 0)
            break; /* shrank meanwhile (retention or a writer truncating its own tail) */
        n += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = n;
    return LG_OK;
}

/* lg_store_read_segment, telling how many bytes it read (*lenp) */
static int read_segment_len(const char *path, const struct lg_store_key *keys, size_t nkeys,
                            lg_store_record_fn fn, void *ctx, struct lg_store_read_stats *st,
                            size_t *lenp, struct lg_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_file(path, &buf, &len, err);
    *lenp = len;
    if (rc != LG_OK)
        return rc;
    const char *base = strrchr(path, '/');
    rc = lg_store_read_buffer(buf, len, base ? base + 1 : path, keys, nkeys, fn, ctx, st);
    free(buf);
    if (rc == LG_ENOMEM)
        return lg_err_set(err, LG_ENOMEM, "out of memory reading \"%s\"", path);
    return rc;
}

int lg_store_read_segment(const char *path, const struct lg_store_key *keys, size_t nkeys,
                          lg_store_record_fn fn, void *ctx, struct lg_store_read_stats *st,
                          struct lg_err *err)
{
    size_t len;
    return read_segment_len(path, keys, nkeys, fn, ctx, st, &len, err);
}

/* A frame is appended with one write(), but a reader can see the file mid-write; a tail
 * that is still being written shows up as growth within a few milliseconds. */
#define GREW_CHECKS   5
#define GREW_PAUSE_NS (20 * 1000 * 1000L)

bool lg_store_file_grew(const char *path, size_t len)
{
    for (int i = 0; i < GREW_CHECKS; i++) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return false;
        if ((uint64_t)sb.st_size > (uint64_t)len)
            return true;
        struct timespec ts = {0, GREW_PAUSE_NS};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool is_segment_name(const char *n)
{
    size_t l = strlen(n), pl = strlen(LG_STORE_SEG_PREFIX), sl = strlen(LG_STORE_SEG_SUFFIX);
    return l > pl + sl && l < sizeof(((struct lg_store_segment *)0)->name) &&
           strncmp(n, LG_STORE_SEG_PREFIX, pl) == 0 && strcmp(n + l - sl, LG_STORE_SEG_SUFFIX) == 0;
}

static int seg_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lg_store_segment *)a)->name,
                  ((const struct lg_store_segment *)b)->name);
}

int lg_store_list_segments(const char *dir, struct lg_store_segment **out, size_t *n,
                           struct lg_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return lg_err_set(err, LG_EIO, "cannot open store directory \"%s\": %s", dir,
                          strerror(errno));
    struct lg_store_segment *v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    int rc = LG_OK;
    while ((de = readdir(d)) != NULL) {
        if (!is_segment_name(de->d_name))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue; /* deleted meanwhile, or not a plain file: never follow links */
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            struct lg_store_segment *nv = realloc(v, cap * sizeof *v);
            if (nv == NULL) {
                rc = lg_err_set(err, LG_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        memcpy(v[cnt].name, de->d_name,
               strlen(de->d_name) + 1); /* is_segment_name checked the length */
        v[cnt].size = (int64_t)sb.st_size;
        v[cnt].mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
        cnt++;
    }
    closedir(d);
    if (rc != LG_OK) {
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, seg_cmp);
    *out = v;
    *n = cnt;
    return LG_OK;
}

int lg_store_read_dir(const char *dir, const struct lg_store_key *keys, size_t nkeys,
                      lg_store_record_fn fn, void *ctx, struct lg_store_read_stats *st,
                      struct lg_err *err)
{
    struct lg_store_segment *segs = NULL;
    size_t n = 0;
    int rc = lg_store_list_segments(dir, &segs, &n, err);
    if (rc != LG_OK)
        return rc;
    for (size_t i = 0; i < n && rc == LG_OK; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        uint64_t cut = st->truncated;
        size_t len = 0;
        rc = read_segment_len(path, keys, nkeys, fn, ctx, st, &len, err);
        if (rc == LG_EIO && errno == ENOENT)
            rc = LG_OK; /* removed by retention since the listing */
        /* the newest segment of a live store: its last frame may be an append in progress */
        if (rc == LG_OK && i == n - 1 && st->truncated == cut + 1 && lg_store_file_grew(path, len)) {
            st->truncated--;
            st->being_written++;
        }
    }
    free(segs);
    return rc;
}

/* ---- permissions ---- */

static int mkdir_parents(const char *dir, struct lg_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return lg_err_set(err, LG_EINVAL, "store directory path is too long");
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return lg_err_set(err, LG_EIO, "cannot create \"%s\": %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return lg_err_set(err, LG_EIO, "cannot create store directory \"%s\": %s", path,
                          strerror(errno));
    return LG_OK;
}

int lg_store_check_dir(const char *dir, bool create, bool fix, int *fixed, struct lg_err *err)
{
    if (fixed)
        *fixed = 0;
    struct stat sb;
    if (lstat(dir, &sb) != 0) {
        if (errno != ENOENT || !create)
            return lg_err_set(err, LG_EIO, "store directory \"%s\": %s", dir, strerror(errno));
        int rc = mkdir_parents(dir, err);
        if (rc != LG_OK)
            return rc;
        if (lstat(dir, &sb) != 0)
            return lg_err_set(err, LG_EIO, "store directory \"%s\": %s", dir, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode))
        return lg_err_set(
            err, LG_EINVAL,
            "store directory \"%s\" is not a directory (symbolic links are not followed)", dir);
    if (sb.st_uid != geteuid())
        return lg_err_set(err, LG_EINVAL,
                          "store directory \"%s\" is owned by uid %u, not by this user (uid %u): "
                          "refusing to write prompts there",
                          dir, (unsigned)sb.st_uid, (unsigned)geteuid());
    if (sb.st_mode & 077) {
        if (!fix)
            return lg_err_set(err, LG_EINVAL,
                              "store directory \"%s\" has mode %04o: group and others must have no "
                              "access (chmod 700 \"%s\")",
                              dir, (unsigned)(sb.st_mode & 07777), dir);
        if (chmod(dir, 0700) != 0)
            return lg_err_set(err, LG_EIO,
                              "store directory \"%s\" has mode %04o and chmod 700 failed: %s", dir,
                              (unsigned)(sb.st_mode & 07777), strerror(errno));
        if (fixed)
            (*fixed)++;
    }
    struct lg_store_segment *segs = NULL;
    size_t n = 0;
    int rc = lg_store_list_segments(dir, &segs, &n, err);
    if (rc != LG_OK)
        return rc;
    for (size_t i = 0; i < n && rc == LG_OK; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        if (lstat(path, &sb) != 0 || !(sb.st_mode & 077))
            continue;
        if (!fix)
            rc = lg_err_set(err, LG_EINVAL,
                            "store segment \"%s\" has mode %04o: group and others must have no "
                            "access (chmod 600)",
                            path, (unsigned)(sb.st_mode & 07777));
        else if (chmod(path, 0600) != 0)
            rc = lg_err_set(err, LG_EIO,
                            "store segment \"%s\" has mode %04o and chmod 600 failed: %s", path,
                            (unsigned)(sb.st_mode & 07777), strerror(errno));
        else if (fixed)
            (*fixed)++;
    }
    free(segs);
    return rc;
}

/* ---- retention ---- */

int lg_store_retention(const char *dir, int64_t max_age_ns, int64_t max_bytes, const char *keep,
                       int64_t now_wall_ns, uint64_t *deleted_age, uint64_t *deleted_size,
                       struct lg_err *err)
{
    struct lg_store_segment *segs = NULL;
    size_t n = 0;
    int rc = lg_store_list_segments(dir, &segs, &n, err);
    if (rc != LG_OK)
        return rc;
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += segs[i].size;
    /* Oldest first (name order = creation order); a segment's mtime is its last write. */
    for (size_t i = 0; i < n; i++) {
        if (keep && strcmp(segs[i].name, keep) == 0)
            continue;
        bool too_old = max_age_ns > 0 && now_wall_ns - segs[i].mtime_ns > max_age_ns;
        bool too_big = max_bytes > 0 && total > max_bytes;
        if (!too_old && !too_big)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, segs[i].name);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = lg_err_set(err, LG_EIO, "cannot delete expired segment \"%s\": %s", path,
                            strerror(errno));
            break;
        }
        total -= segs[i].size;
        if (too_old) {
            if (deleted_age)
                (*deleted_age)++;
        } else if (deleted_size) {
            (*deleted_size)++;
        }
    }
    free(segs);
    return rc;
}

/* ---- sampling ---- */

uint64_t lg_store_trace_hash(const char *salt, const uint8_t *trace_id, size_t len)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    const uint64_t prime = 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)salt; p && *p; p++)
        h = (h ^ *p) * prime;
    for (size_t i = 0; i < len; i++)
        h = (h ^ trace_id[i]) * prime;
    return h;
}

uint64_t lg_store_sampling_threshold(double percentage)
{
    double ratio = percentage / 100;
    if (!(ratio > 0))
        return 0;
    if (ratio >= 1)
        return UINT64_MAX;
    /* ratio = m * 2^(e-53) exactly; P = (2^64-1) * m needs at most 117 bits. Go computes
     * MaxUint64 * ratio in a big.Float of 64-bit precision (round to nearest even), then
     * truncates: reproduce both steps exactly. */
    int e = 0;
    double f = frexp(ratio, &e);
    uint64_t m = (uint64_t)ldexp(f, 53);
    unsigned __int128 p = (unsigned __int128)UINT64_MAX * m;
    int shift = 0;
    while ((p >> shift) >> 64 != 0)
        shift++;
    uint64_t q = (uint64_t)(p >> shift);
    if (shift > 0) {
        unsigned __int128 rem = p & (((unsigned __int128)1 << shift) - 1);
        unsigned __int128 half = (unsigned __int128)1 << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) {
            q++;
            if (q == 0) { /* carried to 2^64 */
                q = 1ULL << 63;
                shift++;
            }
        }
    }
    int exp2 = shift + e - 53;
    if (exp2 >= 0)
        return exp2 >= 64 ? UINT64_MAX : q << exp2;
    return -exp2 >= 64 ? 0 : q >> -exp2;
}
