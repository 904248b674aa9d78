/* core/arena.c — bump allocator: a chain of blocks, each at least double the previous. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16
#define ARENA_DEFAULT_BLOCK (16 * 1024)
#define ARENA_MAX_GROWTH_BLOCK (4 * 1024 * 1024)

struct block {
    struct block *prev;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct lg_arena {
    struct block *head;
    size_t footprint;
    size_t next_block;
};

static struct block *block_new(size_t size)
{
    struct block *b = malloc(sizeof *b + size);
    if (b == NULL)
        return NULL;
    b->prev = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct lg_arena *lg_arena_create(size_t first_block)
{
    struct lg_arena *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->next_block = first_block ? first_block : ARENA_DEFAULT_BLOCK;
    return a;
}

void lg_arena_destroy(struct lg_arena *a)
{
    if (a == NULL)
        return;
    struct block *b = a->head;
    while (b != NULL) {
        struct block *prev = b->prev;
        free(b);
        b = prev;
    }
    free(a);
}

void *lg_arena_alloc(struct lg_arena *a, size_t size)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size)
        return NULL; /* overflow */
    struct block *b = a->head;
    if (b == NULL || b->size - b->used < need) {
        size_t bs = a->next_block;
        if (bs < need)
            bs = need;
        struct block *nb = block_new(bs);
        if (nb == NULL)
            return NULL;
        nb->prev = b;
        a->head = nb;
        a->footprint += sizeof *nb + bs;
        if (a->next_block < ARENA_MAX_GROWTH_BLOCK)
            a->next_block *= 2;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void *lg_arena_calloc(struct lg_arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = lg_arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *lg_arena_strndup(struct lg_arena *a, const char *s, size_t len)
{
    char *p = lg_arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *lg_arena_strdup(struct lg_arena *a, const char *s) { return lg_arena_strndup(a, s, strlen(s)); }

void *lg_arena_memdup(struct lg_arena *a, const void *p, size_t len)
{
    void *q = lg_arena_alloc(a, len ? len : 1);
    if (q != NULL && len)
        memcpy(q, p, len);
    return q;
}

size_t lg_arena_footprint(const struct lg_arena *a) { return a->footprint; }

static void *pb_alloc(void *ctx, size_t size) { return lg_arena_alloc(ctx, size); }
static void pb_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p;
}

ProtobufCAllocator lg_arena_pb_allocator(struct lg_arena *a)
{
    ProtobufCAllocator al = {.alloc = pb_alloc, .free = pb_free, .allocator_data = a};
    return al;
}
