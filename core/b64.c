/* core/b64.c — base64 through OpenSSL (see core/b64.h). */
#include "b64.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

char *lg_base64_encode(const uint8_t *data, size_t len, bool url)
{
    if (len > (size_t)1 << 30)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    out[n] = '\0';
    if (url) {
        for (int i = 0; i < n; i++)
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
        while (n > 0 && out[n - 1] == '=')
            out[--n] = '\0';
    }
    return out;
}

long lg_base64_decode(const char *text, uint8_t *out, size_t cap)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    while (n > 0 && text[n - 1] == '=')
        n--; /* padding is put back below */
    if (n % 4 == 1 || n > (size_t)1 << 30)
        return -1;
    size_t padded = (n + 3) / 4 * 4;
    char *buf = malloc(padded + 1);
    unsigned char *dec = malloc(padded / 4 * 3 + 1);
    if (buf == NULL || dec == NULL) {
        free(buf);
        free(dec);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        buf[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    memset(buf + n, '=', padded - n);
    buf[padded] = '\0';
    /* EVP_DecodeBlock checks the alphabet; it counts padding as zero bytes */
    int m = padded ? EVP_DecodeBlock(dec, (const unsigned char *)buf, (int)padded) : 0;
    /* n characters without padding carry floor(6n / 8) bytes */
    long len = m < 0 ? -1 : (long)(n * 3 / 4);
    if (len >= 0 && (size_t)len <= cap)
        memcpy(out, dec, (size_t)len);
    else
        len = -1;
    free(buf);
    free(dec);
    return len;
}
