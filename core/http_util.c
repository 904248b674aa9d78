/* core/http_util.c — response header helpers for the HTTP exporters (see http_util.h). */
#include "http_util.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"

int lg_http_header_value(const char *line, size_t n, const char *name, char *dst, size_t dst_len)
{
    size_t name_len = strlen(name);
    if (n <= name_len || strncasecmp(line, name, name_len) != 0)
        return 0;
    const char *v = line + name_len, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t l = (size_t)(end - v);
    if (l >= dst_len)
        l = dst_len - 1;
    memcpy(dst, v, l);
    dst[l] = '\0';
    return 1;
}

int64_t lg_http_retry_after_ns(const char *v, int64_t max_s)
{
    if (v == NULL || v[0] == '\0')
        return 0;
    int64_t secs = 0;
    if (isdigit((unsigned char)v[0])) {
        char *end = NULL;
        long long s = strtoll(v, &end, 10);
        if (end != NULL && *end == '\0')
            secs = s;
    } else {
        time_t t = curl_getdate(v, NULL);
        if (t != (time_t)-1) {
            int64_t now_s = lg_now_wall_ns() / 1000000000LL;
            secs = (int64_t)t > now_s ? (int64_t)t - now_s : 0;
        }
    }
    if (secs <= 0)
        return 0;
    if (secs > max_s)
        secs = max_s;
    return secs * 1000000000LL;
}
