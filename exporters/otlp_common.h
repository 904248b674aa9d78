/* exporters/otlp_common.h — what the `otlp` (gRPC, exporters/otlp.c) and `otlp_http`
 * (exporters/otlp_http.c) exporters share: the `headers` map parser, the TLS and `auth`
 * config sections, the authenticator lookup and per-attempt header, and reading
 * partial_success from an Export*ServiceResponse.
 *
 * Owns nothing at run time: parsed headers live in the config arena, the authenticator in
 * its extension, decoded responses in the caller. Messages and config keys are the ones
 * both exporters always had (tests assert them). */
#ifndef LG_OTLP_COMMON_H
#define LG_OTLP_COMMON_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/auth.h"
#include "../core/batch.h"
#include "../core/component.h"
#include "../core/conf.h"
#include "../core/exporter_helper.h"

/** `headers`: name, value, name, value, ..., NULL in the config arena. */
struct lg_otlp_headers {
    const char **kv;
    size_t n; /* pairs */
};

/** LG_CONF_CUSTOM parser for `headers` (dst: struct lg_otlp_headers): names kept as
 *  written (HTTP). Names must be HTTP tokens; values must not hold control characters. */
int lg_otlp_parse_headers(const struct lg_node *n, void *dst, struct lg_arena *arena, struct lg_err *err);

/** As lg_otlp_parse_headers, with names lowercased (gRPC metadata keys must be lowercase;
 *  HTTP/2 header names are case-insensitive, so the backend sees no difference). */
int lg_otlp_parse_headers_lower(const struct lg_node *n, void *dst, struct lg_arena *arena, struct lg_err *err);

/** The `tls` section of both exporters; each lists in its field table only the keys it
 *  supports (server_name_override: gRPC; max_version: HTTP). */
struct lg_otlp_tls_conf {
    bool insecure;
    bool insecure_skip_verify;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    const char *min_version;
    const char *max_version;
    const char *server_name_override;
};

/** The certificate file keys, identical in both exporters' `tls` tables. */
#define LG_OTLP_TLS_FILE_FIELDS                                                                                                                \
    LG_CONF_STRING("ca_file", NULL, struct lg_otlp_tls_conf, ca_file, "PEM roots to verify the server with (default: system roots)"),     \
    LG_CONF_STRING("cert_file", NULL, struct lg_otlp_tls_conf, cert_file, "client certificate (PEM) for mTLS"),                           \
    LG_CONF_STRING("key_file", NULL, struct lg_otlp_tls_conf, key_file, "client key (PEM) for mTLS")

/** cert_file and key_file go together; with check_readable, every file set must be
 *  readable now (errors name the key under tls_node). */
int lg_otlp_tls_check_files(const struct lg_otlp_tls_conf *tls, const struct lg_node *tls_node, bool check_readable,
                            struct lg_err *err);

/** The `auth` section: `authenticator` names an extension (bearertokenauth[/name]). */
struct lg_otlp_auth_conf {
    const char *authenticator;
};

extern const struct lg_conf_field lg_otlp_auth_fields[];

/** Resolves the `auth` section of component c (only call when it is present) into *out
 *  (owned by the extension). */
int lg_otlp_auth_resolve(struct lg_component *c, const struct lg_otlp_auth_conf *auth, struct lg_authenticator **out,
                         struct lg_err *err);

/** The authenticator's header for one attempt into name/value (LG_AUTH_*_MAX sized). When
 *  it has none yet, fills res as retryable (the token file is re-read) and returns
 *  LG_EAGAIN; the caller frees what it holds and returns. */
int lg_otlp_auth_header(struct lg_authenticator *a, char *name, char *value, struct lg_export_result *res);

/** "Trace", "Metrics" or "Logs": the middle of Export%sServiceResponse. */
const char *lg_otlp_response_name(enum lg_signal sig);

/** Reads partial_success from a decoded Export*ServiceResponse m (not freed) into res:
 *  rejected items (the helper counts and logs them with the message) or, with no
 *  rejections, the backend's warning, logged here under id. */
void lg_otlp_partial_success(const char *id, enum lg_signal sig, const ProtobufCMessage *m, struct lg_export_result *res);

#endif
