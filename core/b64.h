/* core/b64.h — base64 (RFC 4648) on top of OpenSSL's EVP_EncodeBlock / EVP_DecodeBlock:
 * keys in the interaction store, JWT segments for Entra ID client assertions. */
#ifndef LG_B64_H
#define LG_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Encodes len bytes; `url`: the URL alphabet without padding (JWT), else the standard
 *  alphabet with padding. malloc'd NUL-terminated text, NULL on OOM. */
char *lg_base64_encode(const uint8_t *data, size_t len, bool url);
/** Decodes standard or URL-alphabet text, padding optional, whitespace at the ends ignored,
 *  into out (cap bytes). The decoded length, or -1 when the text is not base64 or does not
 *  fit. */
long lg_base64_decode(const char *text, uint8_t *out, size_t cap);

#endif
