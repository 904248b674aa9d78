/* core/compress.c — whole-buffer gzip with libdeflate (see core/compress.h).
 * Owns: the per-thread compressors (one per level used), the pthread key that frees them
 * at thread exit, and the process-wide list that keeps live threads' sets reachable. */
#include "compress.h"

#include <libdeflate.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#define NLEVELS (LG_GZIP_LEVEL_MAX + 1)

/* One thread's compressors. */
struct cset {
    struct libdeflate_compressor *c[NLEVELS];
    struct cset *prev, *next; /* in the process-wide list */
};

static pthread_key_t cset_key;
static pthread_once_t cset_once = PTHREAD_ONCE_INIT;
static bool cset_key_ok;
static pthread_mutex_t cset_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cset *cset_head;
static _Thread_local struct cset *tls_set;

static void cset_free(void *arg)
{
    struct cset *s = arg;
    pthread_mutex_lock(&cset_lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        cset_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    pthread_mutex_unlock(&cset_lock);
    for (int i = 0; i < NLEVELS; i++)
        libdeflate_free_compressor(s->c[i]);
    free(s);
    tls_set = NULL;
}

static void cset_key_init(void)
{
    cset_key_ok = pthread_key_create(&cset_key, cset_free) == 0;
}

static struct libdeflate_compressor *compressor(int level)
{
    if (level == LG_GZIP_LEVEL_DEFAULT)
        level = 6;
    if (level < LG_GZIP_LEVEL_MIN || level > LG_GZIP_LEVEL_MAX)
        return NULL;
    struct cset *s = tls_set;
    if (s == NULL) {
        pthread_once(&cset_once, cset_key_init);
        if (!cset_key_ok)
            return NULL;
        s = calloc(1, sizeof *s);
        if (s == NULL)
            return NULL;
        if (pthread_setspecific(cset_key, s) != 0) {
            free(s);
            return NULL;
        }
        pthread_mutex_lock(&cset_lock);
        s->next = cset_head;
        if (cset_head)
            cset_head->prev = s;
        cset_head = s;
        pthread_mutex_unlock(&cset_lock);
        tls_set = s;
    }
    if (s->c[level] == NULL)
        s->c[level] = libdeflate_alloc_compressor(level);
    return s->c[level];
}

size_t lg_gzip_bound(size_t len)
{
    return libdeflate_gzip_compress_bound(NULL, len);
}

size_t lg_gzip(int level, const void *in, size_t len, void *out, size_t cap)
{
    struct libdeflate_compressor *c = compressor(level);
    if (c == NULL)
        return 0;
    return libdeflate_gzip_compress(c, in, len, out, cap);
}

uint8_t *lg_gzip_alloc(int level, const void *in, size_t len, size_t *out_len)
{
    size_t cap = lg_gzip_bound(len);
    uint8_t *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t n = lg_gzip(level, in, len, out, cap);
    if (n == 0) {
        free(out);
        return NULL;
    }
    *out_len = n;
    return out;
}
