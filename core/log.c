/* core/log.c — stderr logger. The only state is the level and format, set once at start. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum lg_log_level min_level = LG_LOG_INFO;
static enum lg_log_format log_format = LG_LOG_TEXT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void lg_log_configure(enum lg_log_level lvl, enum lg_log_format fmt)
{
    min_level = lvl;
    log_format = fmt;
}

int lg_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LG_LOG_WARN;
    return -1;
}

/* Writes s as the inside of a JSON string. */
static void json_escape(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
}

void lg_log(enum lg_log_level level, const char *component, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);

    pthread_mutex_lock(&log_lock);
    if (log_format == LG_LOG_JSON) {
        fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\"", when, level_names[level]);
        if (component) {
            fputs(",\"component\":\"", stderr);
            json_escape(stderr, component);
            fputc('"', stderr);
        }
        fputs(",\"msg\":\"", stderr);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else if (component) {
        fprintf(stderr, "%s\t%s\t%s\t%s\n", when, level_names[level], component, msg);
    } else {
        fprintf(stderr, "%s\t%s\t%s\n", when, level_names[level], msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void lg_log_write_raw(const char *text, unsigned long len)
{
    pthread_mutex_lock(&log_lock);
    fwrite(text, 1, len, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
