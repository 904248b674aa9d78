/* core/auth.h — the authenticator API receivers and exporters use for `auth.authenticator`.
 *
 * An authenticator is an extension instance (today: `bearertokenauth`) listed in
 * service.extensions. A component resolves it by ID once, in its create() (extensions are
 * created before every receiver and exporter, started before them and destroyed after
 * them, so the pointer stays valid for the component's whole life). The authenticator is
 * owned by the extension; callers never free it.
 *
 * Server side (receivers): lg_auth_check() with the value of lg_auth_header_name()'s
 * header ("Authorization" by default; gRPC metadata keys are lower-case). Client side
 * (exporters): lg_auth_client_header() before each request gives the header to add; the
 * value can change over time (a token file that was rewritten), so call it per request
 * (or per connection attempt) rather than caching it.
 *
 * Every function is thread-safe. The implementation lives with the extension
 * (extensions/bearertokenauth.c). */
#ifndef LG_AUTH_H
#define LG_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"
#include "conf.h"

struct lg_runtime;
struct lg_authenticator;

/** Longest header value lg_auth_client_header() writes (scheme, space, token, NUL). */
#define LG_AUTH_VALUE_MAX 8192
/** Longest header name, NUL included. */
#define LG_AUTH_NAME_MAX 256

/** Finds the authenticator extension `id` (e.g. "bearertokenauth" or "bearertokenauth/x").
 *  `where` is the YAML node of the `authenticator:` value (for file:line:col and the path
 *  in errors, e.g. receivers.otlp.protocols.grpc.auth.authenticator); may be NULL.
 *  Errors (LG_EINVAL): the extension is not listed in service.extensions, or it is not an
 *  authenticator. */
int lg_auth_resolve(struct lg_runtime *rt, const struct lg_node *where, const char *id,
                    struct lg_authenticator **out, struct lg_err *err);

/** The request header carrying the credentials, as configured ("Authorization" default). */
const char *lg_auth_header_name(const struct lg_authenticator *a);

/** The same, lower-cased: the gRPC metadata key ("authorization"). */
const char *lg_auth_grpc_metadata_key(const struct lg_authenticator *a);

/** Server side: true when `value` (the whole header value, `len` bytes, need not be
 *  NUL-terminated) is exactly "<scheme> <token>". Constant time in the token's content.
 *  value NULL (header missing) is false. */
bool lg_auth_check(struct lg_authenticator *a, const char *value, size_t len);

/** Client side: writes the header name and value ("Bearer <token>") to add to an outgoing
 *  request. Returns LG_OK, or LG_EIO when the token file cannot be read (the last good
 *  token is used when there was one, so this only fails before the first read), or
 *  LG_ETOOBIG when a buffer is too small (use LG_AUTH_NAME_MAX / LG_AUTH_VALUE_MAX). */
int lg_auth_client_header(struct lg_authenticator *a, char *name, size_t name_len, char *value,
                          size_t value_len);

#endif
