/* core/http_util.h — what the HTTP-speaking exporters (otlp_http, azure_monitor) share when
 * reading a response with libcurl: one header's value from a header line, and the
 * Retry-After header (RFC 9110 §10.2.3) as a delay. */
#ifndef LG_HTTP_UTIL_H
#define LG_HTTP_UTIL_H

#include <stddef.h>
#include <stdint.h>

/** When line[0..n) is the header `name` (given with its colon, e.g. "retry-after:", matched
 *  case-insensitively), copies its value without surrounding blanks and the line end into
 *  dst (cut to dst_len - 1 bytes) and returns 1; else 0. */
int lg_http_header_value(const char *line, size_t n, const char *name, char *dst, size_t dst_len);
/** A Retry-After value — delay-seconds or an HTTP-date — as nanoseconds from now, capped at
 *  max_s seconds; 0 when absent, invalid or in the past. */
int64_t lg_http_retry_after_ns(const char *v, int64_t max_s);

#endif
