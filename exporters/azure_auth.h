/* exporters/azure_auth.h — Microsoft Entra ID (Azure AD) access tokens for the
 * azure_monitor exporter: the OAuth 2.0 client-credentials grant with
 *   - a client secret,
 *   - a client certificate (a client-assertion JWT signed RS256 with the certificate's
 *     private key, x5t = SHA-1 thumbprint of the certificate), or
 *   - a federated token file (workload identity: the Kubernetes service-account token AKS
 *     projects, re-read on every fetch because the kubelet rotates it).
 * The `entra_id` config section; keys left empty fall back to the environment AKS workload
 * identity injects (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE,
 * AZURE_AUTHORITY_HOST).
 *
 * Owns: one cached token (refreshed `refresh_before` its expiry, or at half its lifetime
 * when that is shorter, and on demand after a 401/403), the curl handle used to fetch it,
 * and the private key of a client certificate. Thread-safe: concurrent callers wait for
 * one fetch instead of each fetching. Secrets and tokens are never logged. */
#ifndef LG_AZURE_AUTH_H
#define LG_AZURE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/conf.h"
#include "../core/telemetry.h"

struct lg_azure_auth_conf {
    const char *tenant_id;
    const char *client_id;
    const char *client_secret;
    const char *client_certificate_file;
    const char *client_certificate_key_file;
    const char *federated_token_file;
    const char *authority_host;
    const char *token_endpoint;
    const char *scope;
    int64_t refresh_before_ns;
};

extern const struct lg_conf_field lg_azure_auth_fields[];

struct lg_azure_auth;

/** Validates conf (errors name keys under `node`, the entra_id section), resolves the
 *  environment fallbacks and loads a client certificate. `default_scope` is used when
 *  conf->scope is empty (the connection string's AADAudience + "/.default", or
 *  https://monitor.azure.com//.default). Counters (may be NULL) count fetches/failures. */
int lg_azure_auth_create(const char *id, const struct lg_azure_auth_conf *conf, const struct lg_node *node,
                         const char *default_scope, struct lg_counter *fetches, struct lg_counter *failures,
                         struct lg_azure_auth **out, struct lg_err *err);
void lg_azure_auth_destroy(struct lg_azure_auth *a);

/** A valid access token into out (NUL-terminated), fetching one when none is cached or it
 *  is due for refresh; the fetch is bounded by deadline_mono_ns. *generation identifies the
 *  token (for lg_azure_auth_invalidate). LG_OK; LG_EAGAIN (token endpoint unreachable or
 *  5xx/429: worth retrying); LG_EINVAL (refused: bad credentials or configuration);
 *  LG_ETOOBIG when out is too small. msg gets a description on failure. */
int lg_azure_auth_token(struct lg_azure_auth *a, int64_t deadline_mono_ns, char *out, size_t out_len,
                        uint64_t *generation, char *msg, size_t msg_len);

/** The service refused the token of this generation (401/403): forget it so the next call
 *  fetches a new one. A newer token (another thread already refreshed) is kept. */
void lg_azure_auth_invalidate(struct lg_azure_auth *a, uint64_t generation);

/** The token URL in use (malloc'd copy not needed: owned by a). */
const char *lg_azure_auth_token_url(const struct lg_azure_auth *a);

#endif
