/* core/arena.h — bump allocator that owns a decoded request.
 *
 * Everything allocated from an arena is freed at once by lg_arena_destroy(); individual
 * frees are no-ops. Not thread-safe: one arena is filled by one thread, then only read
 * (possibly by many threads) until destroyed. */
#ifndef LG_ARENA_H
#define LG_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

struct lg_arena;

/** Creates an arena whose first block holds at least `first_block` bytes (0 = default). NULL on OOM. */
struct lg_arena *lg_arena_create(size_t first_block);
/** Frees every block. NULL is allowed. */
void lg_arena_destroy(struct lg_arena *a);
/** 16-byte aligned allocation; NULL on OOM. Memory is not zeroed. */
void *lg_arena_alloc(struct lg_arena *a, size_t size);
/** Zeroed allocation. */
void *lg_arena_calloc(struct lg_arena *a, size_t n, size_t size);
/** Copies `len` bytes and appends a NUL. */
char *lg_arena_strndup(struct lg_arena *a, const char *s, size_t len);
char *lg_arena_strdup(struct lg_arena *a, const char *s);
void *lg_arena_memdup(struct lg_arena *a, const void *p, size_t len);
/** Bytes handed out plus block overhead: what this arena costs in memory. */
size_t lg_arena_footprint(const struct lg_arena *a);
/** A ProtobufCAllocator that allocates from `a` (free is a no-op). */
ProtobufCAllocator lg_arena_pb_allocator(struct lg_arena *a);

#endif
