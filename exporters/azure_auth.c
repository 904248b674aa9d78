/* exporters/azure_auth.c — Entra ID access tokens for the azure_monitor exporter (see
 * azure_auth.h): config validation with environment fallbacks, the client-credentials
 * request (secret, certificate assertion or federated token), the token cache.
 *
 * Owns: the resolved settings (malloc'd copies), the certificate's private key, one curl
 * handle and the cached token, all behind one mutex. */
#include "azure_auth.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/b64.h"
#include "../core/common.h"
#include "../core/log.h"

/* Token responses are small JSON objects; anything longer is not one. */
#define TOKEN_RESPONSE_MAX (64 * 1024)
/* Access tokens are JWTs of a few KB; room for the largest Entra ID issues. */
#define TOKEN_MAX (16 * 1024)
/* Lifetime of a client-assertion JWT we sign (Entra ID accepts up to 10 minutes). */
#define ASSERTION_LIFETIME_S 600
/* expires_in when the response lacks it: one hour, Entra ID's usual lifetime. */
#define DEFAULT_EXPIRES_IN_S 3600

const struct lg_conf_field lg_azure_auth_fields[] = {
    LG_CONF_STRING("tenant_id", NULL, struct lg_azure_auth_conf, tenant_id, "directory (tenant) ID (default: env AZURE_TENANT_ID)"),
    LG_CONF_STRING("client_id", NULL, struct lg_azure_auth_conf, client_id, "application (client) ID (default: env AZURE_CLIENT_ID)"),
    LG_CONF_STRING("client_secret", NULL, struct lg_azure_auth_conf, client_secret, "client secret (use ${env:...}; never logged)"),
    LG_CONF_STRING("client_certificate_file", NULL, struct lg_azure_auth_conf, client_certificate_file,
                   "PEM certificate (may also hold the RSA key) registered for the application"),
    LG_CONF_STRING("client_certificate_key_file", NULL, struct lg_azure_auth_conf, client_certificate_key_file,
                   "PEM RSA private key of the certificate (default: client_certificate_file)"),
    LG_CONF_STRING("federated_token_file", NULL, struct lg_azure_auth_conf, federated_token_file,
                   "workload identity: file holding the federated token, re-read per fetch (default: env AZURE_FEDERATED_TOKEN_FILE)"),
    LG_CONF_STRING("authority_host", NULL, struct lg_azure_auth_conf, authority_host,
                   "Entra ID authority (default: env AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com/)"),
    LG_CONF_STRING("token_endpoint", NULL, struct lg_azure_auth_conf, token_endpoint,
                   "full token URL, overriding {authority_host}/{tenant_id}/oauth2/v2.0/token"),
    LG_CONF_STRING("scope", NULL, struct lg_azure_auth_conf, scope,
                   "token scope (default: the connection string's AADAudience + /.default, else https://monitor.azure.com//.default)"),
    LG_CONF_DURATION("refresh_before", "5m", struct lg_azure_auth_conf, refresh_before_ns,
                     "fetch a new token this long before the cached one expires (at most half its lifetime)"),
    LG_CONF_END,
};

enum cred_kind { CRED_SECRET, CRED_CERT, CRED_FEDERATED };

struct lg_azure_auth {
    const char *id;
    enum cred_kind kind;
    char *client_id, *secret, *token_file, *url, *scope, *x5t;
    EVP_PKEY *key;
    int64_t refresh_before_ns;
    struct lg_counter *fetches, *failures;
    pthread_mutex_t mu;
    CURL *curl;
    char *token;          /* cached access token, or NULL */
    int64_t refresh_at;   /* mono ns: fetch a new one from here on */
    int64_t expires_at;   /* mono ns: unusable from here on */
    uint64_t generation;  /* bumped per token fetched */
};

static const char *nonempty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static const char *conf_or_env(const char *v, const char *env)
{
    return nonempty(v) ? v : nonempty(getenv(env));
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static const struct lg_node *key_node(const struct lg_node *section, const char *key)
{
    const struct lg_node *n = lg_node_get(section, key);
    return n ? n : section;
}

/* ---- client certificate ---- */

static int load_certificate(struct lg_azure_auth *a, const char *cert_file, const char *key_file,
                            const struct lg_node *section, struct lg_err *err)
{
    FILE *f = fopen(cert_file, "r");
    if (f == NULL)
        return lg_conf_error(err, key_node(section, "client_certificate_file"), "cannot read \"%s\"", cert_file);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL)
        return lg_conf_error(err, key_node(section, "client_certificate_file"), "\"%s\" holds no PEM certificate", cert_file);
    unsigned char *der = NULL;
    int dlen = i2d_X509(x, &der);
    X509_free(x);
    if (dlen <= 0)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    unsigned char sha1[SHA_DIGEST_LENGTH];
    SHA1(der, (size_t)dlen, sha1);
    OPENSSL_free(der);
    a->x5t = lg_base64_encode(sha1, sizeof sha1, true);
    if (a->x5t == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    const char *kf = nonempty(key_file) ? key_file : cert_file;
    const char *kkey = nonempty(key_file) ? "client_certificate_key_file" : "client_certificate_file";
    f = fopen(kf, "r");
    if (f == NULL)
        return lg_conf_error(err, key_node(section, kkey), "cannot read \"%s\"", kf);
    a->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (a->key == NULL)
        return lg_conf_error(err, key_node(section, kkey), "\"%s\" holds no unencrypted PEM private key", kf);
    if (EVP_PKEY_get_base_id(a->key) != EVP_PKEY_RSA)
        return lg_conf_error(err, key_node(section, kkey), "the certificate key must be RSA (the assertion is signed RS256)");
    return LG_OK;
}

/* A client-assertion JWT (RFC 7523) signed RS256 with the certificate's key. */
static char *signed_assertion(const struct lg_azure_auth *a)
{
    char header[256], payload[2048];
    snprintf(header, sizeof header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t\":\"%s\"}", a->x5t);
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return NULL;
    rnd[6] = (unsigned char)((rnd[6] & 0x0f) | 0x40);
    rnd[8] = (unsigned char)((rnd[8] & 0x3f) | 0x80);
    char jti[40];
    snprintf(jti, sizeof jti, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11], rnd[12], rnd[13],
             rnd[14], rnd[15]);
    long long now = (long long)(lg_now_wall_ns() / 1000000000LL);
    cJSON *p = cJSON_CreateObject();
    if (p == NULL)
        return NULL;
    cJSON_AddStringToObject(p, "aud", a->url);
    cJSON_AddStringToObject(p, "iss", a->client_id);
    cJSON_AddStringToObject(p, "sub", a->client_id);
    cJSON_AddStringToObject(p, "jti", jti);
    cJSON_AddNumberToObject(p, "nbf", (double)now);
    cJSON_AddNumberToObject(p, "iat", (double)now);
    cJSON_AddNumberToObject(p, "exp", (double)(now + ASSERTION_LIFETIME_S));
    char *pj = cJSON_PrintUnformatted(p);
    cJSON_Delete(p);
    if (pj == NULL)
        return NULL;
    snprintf(payload, sizeof payload, "%s", pj);
    free(pj);
    char *h64 = lg_base64_encode((const uint8_t *)header, strlen(header), true);
    char *p64 = lg_base64_encode((const uint8_t *)payload, strlen(payload), true);
    char *out = NULL, *signing = NULL, *s64 = NULL;
    unsigned char *sig = NULL;
    EVP_MD_CTX *md = NULL;
    if (h64 == NULL || p64 == NULL)
        goto done;
    size_t slen = strlen(h64) + 1 + strlen(p64);
    signing = malloc(slen + 1);
    if (signing == NULL)
        goto done;
    snprintf(signing, slen + 1, "%s.%s", h64, p64);
    md = EVP_MD_CTX_new();
    size_t siglen = 0;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, a->key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)signing, slen) != 1)
        goto done;
    sig = malloc(siglen);
    if (sig == NULL || EVP_DigestSign(md, sig, &siglen, (const unsigned char *)signing, slen) != 1)
        goto done;
    s64 = lg_base64_encode(sig, siglen, true);
    if (s64 == NULL)
        goto done;
    size_t olen = slen + 1 + strlen(s64) + 1;
    out = malloc(olen);
    if (out != NULL)
        snprintf(out, olen, "%s.%s", signing, s64);
done:
    EVP_MD_CTX_free(md);
    free(h64);
    free(p64);
    free(signing);
    free(sig);
    free(s64);
    return out;
}

/* ---- create / destroy ---- */

void lg_azure_auth_destroy(struct lg_azure_auth *a)
{
    if (a == NULL)
        return;
    if (a->curl)
        curl_easy_cleanup(a->curl);
    EVP_PKEY_free(a->key);
    if (a->token) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
    }
    free(a->client_id);
    free(a->secret);
    free(a->token_file);
    free(a->url);
    free(a->scope);
    free(a->x5t);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int lg_azure_auth_create(const char *id, const struct lg_azure_auth_conf *conf, const struct lg_node *node,
                         const char *default_scope, struct lg_counter *fetches, struct lg_counter *failures,
                         struct lg_azure_auth **out, struct lg_err *err)
{
    *out = NULL;
    struct lg_azure_auth *a = calloc(1, sizeof *a);
    if (a == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    a->id = id;
    a->fetches = fetches;
    a->failures = failures;
    a->refresh_before_ns = conf->refresh_before_ns;
    int rc = LG_OK;
    const char *client_id = conf_or_env(conf->client_id, "AZURE_CLIENT_ID");
    const char *tenant = conf_or_env(conf->tenant_id, "AZURE_TENANT_ID");
    const char *secret = nonempty(conf->client_secret);
    const char *cert = nonempty(conf->client_certificate_file);
    const char *token_file = nonempty(conf->federated_token_file);
    if (client_id == NULL) {
        rc = lg_conf_error(err, key_node(node, "client_id"), "client_id is required (or env AZURE_CLIENT_ID)");
        goto fail;
    }
    if ((secret != NULL) + (cert != NULL) + (token_file != NULL) > 1) {
        rc = lg_conf_error(err, node, "set only one of client_secret, client_certificate_file, federated_token_file");
        goto fail;
    }
    if (secret == NULL && cert == NULL && token_file == NULL)
        token_file = nonempty(getenv("AZURE_FEDERATED_TOKEN_FILE"));
    if (secret == NULL && cert == NULL && token_file == NULL) {
        rc = lg_conf_error(err, node,
                           "one of client_secret, client_certificate_file or federated_token_file (or env "
                           "AZURE_FEDERATED_TOKEN_FILE) is required");
        goto fail;
    }
    if (nonempty(conf->token_endpoint)) {
        const char *te = conf->token_endpoint;
        if (strncmp(te, "https://", 8) != 0 && strncmp(te, "http://", 7) != 0) {
            rc = lg_conf_error(err, key_node(node, "token_endpoint"), "expected an http:// or https:// URL, got \"%s\"", te);
            goto fail;
        }
        a->url = strdup(te);
    } else {
        if (tenant == NULL) {
            rc = lg_conf_error(err, key_node(node, "tenant_id"), "tenant_id is required (or env AZURE_TENANT_ID)");
            goto fail;
        }
        const char *host = conf_or_env(conf->authority_host, "AZURE_AUTHORITY_HOST");
        if (host == NULL)
            host = "https://login.microsoftonline.com/";
        if (strncmp(host, "https://", 8) != 0 && strncmp(host, "http://", 7) != 0) {
            rc = lg_conf_error(err, key_node(node, "authority_host"), "expected an http:// or https:// URL, got \"%s\"", host);
            goto fail;
        }
        size_t hl = strlen(host);
        while (hl > 0 && host[hl - 1] == '/')
            hl--;
        size_t n = hl + strlen(tenant) + 32;
        a->url = malloc(n);
        if (a->url)
            snprintf(a->url, n, "%.*s/%s/oauth2/v2.0/token", (int)hl, host, tenant);
    }
    a->client_id = strdup(client_id);
    a->scope = strdup(nonempty(conf->scope) ? conf->scope : default_scope);
    a->curl = curl_easy_init();
    if (a->url == NULL || a->client_id == NULL || a->scope == NULL || a->curl == NULL) {
        rc = lg_err_set(err, LG_ENOMEM, "out of memory");
        goto fail;
    }
    if (secret) {
        a->kind = CRED_SECRET;
        a->secret = dup_or_null(secret);
        if (a->secret == NULL) {
            rc = lg_err_set(err, LG_ENOMEM, "out of memory");
            goto fail;
        }
    } else if (cert) {
        a->kind = CRED_CERT;
        rc = load_certificate(a, cert, conf->client_certificate_key_file, node, err);
        if (rc != LG_OK)
            goto fail;
    } else {
        a->kind = CRED_FEDERATED;
        a->token_file = dup_or_null(token_file);
        if (a->token_file == NULL) {
            rc = lg_err_set(err, LG_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = a;
    return LG_OK;
fail:
    lg_azure_auth_destroy(a);
    return rc;
}

const char *lg_azure_auth_token_url(const struct lg_azure_auth *a)
{
    return a->url;
}

/* ---- fetching ---- */

struct buf {
    char *p;
    size_t len;
    bool truncated;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct buf *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > TOKEN_RESPONSE_MAX) {
        b->truncated = true;
        return n;
    }
    char *p = realloc(b->p, b->len + n + 1);
    if (p == NULL) {
        b->truncated = true;
        return n;
    }
    b->p = p;
    memcpy(p + b->len, data, n);
    b->len += n;
    p[b->len] = '\0';
    return n;
}

static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *p = malloc(TOKEN_MAX + 1);
    size_t n = p ? fread(p, 1, TOKEN_MAX, f) : 0;
    fclose(f);
    if (p == NULL)
        return NULL;
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    p[n] = '\0';
    if (n == 0) {
        free(p);
        return NULL;
    }
    return p;
}

/* Appends "&name=value" (form-encoded) to the growing form. */
static int form_add(CURL *c, char **form, const char *name, const char *value)
{
    char *esc = curl_easy_escape(c, value, 0);
    if (esc == NULL)
        return LG_ENOMEM;
    size_t old = *form ? strlen(*form) : 0;
    size_t n = old + strlen(name) + strlen(esc) + 3;
    char *p = realloc(*form, n);
    if (p == NULL) {
        curl_free(esc);
        return LG_ENOMEM;
    }
    snprintf(p + old, n - old, "%s%s=%s", old ? "&" : "", name, esc);
    curl_free(esc);
    *form = p;
    return LG_OK;
}

static void form_free(char *form)
{
    if (form) {
        memset(form, 0, strlen(form)); /* held a secret or an assertion */
        free(form);
    }
}

/* One token request; caller holds a->mu. */
static int fetch_locked(struct lg_azure_auth *a, int64_t deadline, char *msg, size_t msg_len)
{
    int64_t timeout_ms = (deadline - lg_now_mono_ns()) / 1000000;
    if (timeout_ms <= 0) {
        snprintf(msg, msg_len, "no time left to fetch an Entra ID token");
        return LG_EAGAIN;
    }
    char *assertion = NULL;
    if (a->kind == CRED_CERT) {
        assertion = signed_assertion(a);
        if (assertion == NULL) {
            snprintf(msg, msg_len, "cannot sign the client assertion");
            return LG_EAGAIN;
        }
    } else if (a->kind == CRED_FEDERATED) {
        assertion = read_token_file(a->token_file);
        if (assertion == NULL) {
            snprintf(msg, msg_len, "cannot read the federated token file %s", a->token_file);
            return LG_EAGAIN;
        }
    }
    char *form = NULL;
    int rc = form_add(a->curl, &form, "grant_type", "client_credentials");
    if (rc == LG_OK)
        rc = form_add(a->curl, &form, "client_id", a->client_id);
    if (rc == LG_OK)
        rc = form_add(a->curl, &form, "scope", a->scope);
    if (rc == LG_OK && a->kind == CRED_SECRET)
        rc = form_add(a->curl, &form, "client_secret", a->secret);
    if (rc == LG_OK && assertion != NULL) {
        rc = form_add(a->curl, &form, "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        if (rc == LG_OK)
            rc = form_add(a->curl, &form, "client_assertion", assertion);
    }
    form_free(assertion);
    if (rc != LG_OK) {
        form_free(form);
        snprintf(msg, msg_len, "out of memory building the token request");
        return LG_EAGAIN;
    }
    struct buf body = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = a->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, a->url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "llmgate/" LLMGATE_VERSION);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    lg_counter_add(a->fetches, 1);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    form_free(form);
    rc = LG_EAGAIN;
    if (cc != CURLE_OK) {
        snprintf(msg, msg_len, "Entra ID token endpoint %s: %s", a->url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    cJSON *j = body.p && !body.truncated ? cJSON_Parse(body.p) : NULL;
    if (status != 200) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
        snprintf(msg, msg_len, "Entra ID token endpoint answered HTTP %ld%s%.60s%s%.120s", status, cJSON_IsString(e) ? ": " : "",
                 cJSON_IsString(e) ? e->valuestring : "", cJSON_IsString(d) ? ": " : "",
                 cJSON_IsString(d) ? d->valuestring : "");
        cJSON_Delete(j);
        goto out;
    }
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
    if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0' || strlen(tok->valuestring) >= TOKEN_MAX) {
        snprintf(msg, msg_len, "Entra ID token response has no usable access_token");
        cJSON_Delete(j);
        goto out;
    }
    double secs = DEFAULT_EXPIRES_IN_S;
    if (cJSON_IsNumber(exp))
        secs = exp->valuedouble;
    else if (cJSON_IsString(exp))
        secs = strtod(exp->valuestring, NULL);
    if (!(secs > 0))
        secs = 0;
    if (secs > 7 * 86400.0)
        secs = 7 * 86400.0;
    char *t = strdup(tok->valuestring);
    cJSON_Delete(j);
    if (t == NULL) {
        snprintf(msg, msg_len, "out of memory");
        goto out;
    }
    if (a->token) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
    }
    a->token = t;
    int64_t now = lg_now_mono_ns();
    int64_t life = (int64_t)(secs * 1e9);
    int64_t margin = a->refresh_before_ns;
    if (margin > life / 2)
        margin = life / 2;
    a->expires_at = now + life;
    a->refresh_at = now + life - margin;
    a->generation++;
    lg_debug(a->id, "Entra ID token fetched (expires in %.0f s)", secs);
    rc = LG_OK;
out:
    free(body.p);
    if (rc != LG_OK)
        lg_counter_add(a->failures, 1);
    return rc;
}

int lg_azure_auth_token(struct lg_azure_auth *a, int64_t deadline, char *out, size_t out_len, uint64_t *generation,
                        char *msg, size_t msg_len)
{
    pthread_mutex_lock(&a->mu);
    int64_t now = lg_now_mono_ns();
    int rc = LG_OK;
    if (a->token == NULL || now >= a->refresh_at) {
        char why[256] = "";
        rc = fetch_locked(a, deadline, why, sizeof why);
        if (rc != LG_OK) {
            if (a->token != NULL && now < a->expires_at) {
                /* the refresh failed but the cached token is still valid: use it */
                lg_warn(a->id, "Entra ID token refresh failed (%s); using the cached token until it expires", why);
                rc = LG_OK;
            } else {
                lg_error(a->id, "%s", why);
                snprintf(msg, msg_len, "%s", why);
            }
        }
    }
    if (rc == LG_OK) {
        size_t n = strlen(a->token);
        if (n >= out_len) {
            rc = LG_ETOOBIG;
            snprintf(msg, msg_len, "access token too long (%zu bytes)", n);
        } else {
            memcpy(out, a->token, n + 1);
            *generation = a->generation;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void lg_azure_auth_invalidate(struct lg_azure_auth *a, uint64_t generation)
{
    pthread_mutex_lock(&a->mu);
    if (a->generation == generation && a->token != NULL) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
        a->token = NULL;
    }
    pthread_mutex_unlock(&a->mu);
}
