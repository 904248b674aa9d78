/* core/common.h — error type, result codes and small helpers shared by every module.
 *
 * Functions return 0 on success or a negative LG_E* code and, where they take a
 * `struct lg_err *`, fill it with a message a user can act on. */
#ifndef LG_COMMON_H
#define LG_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes. Receivers map them onto protocol statuses:
 *   LG_EINVAL   -> HTTP 400 / gRPC INVALID_ARGUMENT (permanent, bad input)
 *   LG_EAGAIN   -> HTTP 503 / gRPC UNAVAILABLE      (retryable, back-pressure)
 *   LG_EFULL    -> HTTP 429 / gRPC RESOURCE_EXHAUSTED (retryable, queue full)
 *   LG_ENOMEM, LG_EIO, LG_EINTERNAL -> HTTP 500 / gRPC INTERNAL */
enum {
    LG_OK = 0,
    LG_EINVAL = -1,
    LG_EAGAIN = -2,
    LG_EFULL = -3,
    LG_ENOMEM = -4,
    LG_EIO = -5,
    LG_EINTERNAL = -6,
    LG_ETOOBIG = -7,
    LG_ECLOSED = -8, /* the other side has gone (a stopped server) */
};

#define LG_ERR_MAX 1024

/** A human-readable error; `msg` is always NUL-terminated. */
struct lg_err {
    char msg[LG_ERR_MAX];
};

/** Formats into err (if not NULL) and returns `code` so callers can `return lg_err_set(...)`. */
int lg_err_set(struct lg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Prepends "prefix: " to an existing message. */
void lg_err_prefix(struct lg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Monotonic and wall clocks in nanoseconds. */
int64_t lg_now_mono_ns(void);
int64_t lg_now_wall_ns(void);

#define LG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LG_UNUSED(x) ((void)(x))

/** malloc/calloc/strdup that abort on OOM are deliberately not provided: callers handle NULL. */

#endif
