/* core/log.h — process logging: human-readable lines by default, JSON lines with
 * --log-format json. Thread-safe; writes to stderr. */
#ifndef LG_LOG_H
#define LG_LOG_H

enum lg_log_level { LG_LOG_DEBUG = 0, LG_LOG_INFO = 1, LG_LOG_WARN = 2, LG_LOG_ERROR = 3 };
enum lg_log_format { LG_LOG_TEXT = 0, LG_LOG_JSON = 1 };

void lg_log_configure(enum lg_log_level min_level, enum lg_log_format format);
/** Parses "debug|info|warn|error"; -1 when unknown. */
int lg_log_level_parse(const char *s);

/** `component` is a component ID ("otlp/internal") or NULL for the process itself. */
void lg_log(enum lg_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define lg_debug(c, ...) lg_log(LG_LOG_DEBUG, c, __VA_ARGS__)
#define lg_info(c, ...) lg_log(LG_LOG_INFO, c, __VA_ARGS__)
#define lg_warn(c, ...) lg_log(LG_LOG_WARN, c, __VA_ARGS__)
#define lg_error(c, ...) lg_log(LG_LOG_ERROR, c, __VA_ARGS__)

/** Writes raw text (already formatted, e.g. debug exporter output) under the log lock. */
void lg_log_write_raw(const char *text, unsigned long len);

#endif
