/* core/common.c — error formatting and clocks. */
#include "common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int lg_err_set(struct lg_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void lg_err_prefix(struct lg_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[LG_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[LG_ERR_MAX];
    memcpy(old, err->msg, sizeof old);
    /* The result may be cut at LG_ERR_MAX; keep the prefix (the path) and as much as fits. */
    size_t pl = strnlen(prefix, sizeof err->msg - 3);
    memcpy(err->msg, prefix, pl);
    memcpy(err->msg + pl, ": ", 2);
    size_t room = sizeof err->msg - pl - 3;
    size_t ol = strnlen(old, room);
    memcpy(err->msg + pl + 2, old, ol);
    err->msg[pl + 2 + ol] = '\0';
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t lg_now_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t lg_now_wall_ns(void) { return clock_ns(CLOCK_REALTIME); }
