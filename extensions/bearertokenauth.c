/* extensions/bearertokenauth.c — the `bearertokenauth` extension (the Collector's keys:
 * scheme, token, filename, header) and the implementation of core/auth.h.
 *
 * Server side, a request is authenticated when its header value is exactly
 * "<scheme> <token>" (just "<token>" when scheme is ""), compared in constant time so the
 * time taken does not reveal how much of a guess was right. Client side, exporters get
 * the same header to send.
 *
 * With `filename` the token is read from a file at start (trailing whitespace and newlines
 * trimmed) and re-read when the file changes: its mtime/size/inode are looked at no more
 * than once per second, on the request path, so a rotated token takes effect within about
 * a second without a thread of our own. A file that cannot be read keeps the last good
 * token (logged), so a half-written rotation never locks every client out.
 *
 * Owns: struct lg_authenticator (c->state), the expected header value (malloc'd). */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/auth.h"
#include "../core/component.h"
#include "../core/log.h"
#include "../core/runtime.h"

/* The Collector re-reads on a file-system notification; we poll, at most this often. */
#define TOKEN_FILE_CHECK_NS 1000000000LL
/* A token file larger than this is a mistake (a certificate bundle, a log...). */
#define TOKEN_FILE_MAX (LG_AUTH_VALUE_MAX - 64)

struct bearer_conf {
    const char *scheme;
    const char *token;
    const char *filename;
    const char *header;
};

static const struct lg_conf_field bearer_fields[] = {
    LG_CONF_STRING("scheme", "Bearer", struct bearer_conf, scheme, "auth scheme written before the token (\"\" for none)"),
    LG_CONF_STRING("token", NULL, struct bearer_conf, token, "the token (exactly one of token and filename)"),
    LG_CONF_STRING("filename", NULL, struct bearer_conf, filename, "file holding the token, re-read when it changes"),
    LG_CONF_STRING("header", "Authorization", struct bearer_conf, header, "request header carrying the credentials"),
    LG_CONF_END,
};

struct lg_authenticator {
    struct lg_component *c;
    const struct bearer_conf *conf;
    char grpc_key[LG_AUTH_NAME_MAX]; /* header name lower-cased, for gRPC metadata */
    pthread_mutex_t lock;            /* guards everything below */
    char *expected;                  /* "<scheme> <token>", NULL until a token was read */
    size_t expected_len;
    struct stat file_st;             /* of the last read of conf->filename */
    int64_t checked_mono_ns;         /* last time the file's stat was looked at */
    struct lg_counter *failures;     /* requests refused for bad or missing credentials */
};

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* Builds "<scheme> <token>" into a->expected. Called with the lock held (or before start). */
static int set_token(struct lg_authenticator *a, const char *token, size_t len)
{
    const char *scheme = a->conf->scheme ? a->conf->scheme : "";
    size_t slen = strlen(scheme);
    size_t n = slen + (slen ? 1 : 0) + len;
    char *e = malloc(n + 1);
    if (e == NULL)
        return LG_ENOMEM;
    memcpy(e, scheme, slen);
    if (slen)
        e[slen] = ' ';
    memcpy(e + slen + (slen ? 1 : 0), token, len);
    e[n] = '\0';
    free(a->expected);
    a->expected = e;
    a->expected_len = n;
    return LG_OK;
}

/* Reads the token file into a->expected. Lock held. */
static int read_token_file(struct lg_authenticator *a, struct lg_err *err)
{
    const char *path = a->conf->filename;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lg_err_set(err, LG_EIO, "cannot open token file \"%s\": %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return lg_err_set(err, LG_EIO, "cannot stat token file \"%s\": %s", path, strerror(errno));
    }
    char buf[TOKEN_FILE_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed)
        return lg_err_set(err, LG_EIO, "cannot read token file \"%s\"", path);
    if (n > TOKEN_FILE_MAX)
        return lg_err_set(err, LG_EIO, "token file \"%s\" is larger than %d bytes", path, TOKEN_FILE_MAX);
    /* Editors and `echo` leave a newline; tokens never contain whitespace at either end. */
    size_t start = 0;
    while (start < n && is_space(buf[start]))
        start++;
    while (n > start && is_space(buf[n - 1]))
        n--;
    if (n == start)
        return lg_err_set(err, LG_EIO, "token file \"%s\" is empty", path);
    int rc = set_token(a, buf + start, n - start);
    explicit_bzero(buf, sizeof buf);
    if (rc != LG_OK)
        return lg_err_set(err, rc, "out of memory");
    a->file_st = st;
    return LG_OK;
}

/* With a token file: re-reads it when its identity or mtime changed, at most once per
 * TOKEN_FILE_CHECK_NS. Lock held. */
static void maybe_reload(struct lg_authenticator *a)
{
    if (a->conf->filename == NULL)
        return;
    int64_t now = lg_now_mono_ns();
    if (a->expected != NULL && now - a->checked_mono_ns < TOKEN_FILE_CHECK_NS)
        return;
    a->checked_mono_ns = now;
    struct stat st;
    if (stat(a->conf->filename, &st) != 0)
        return; /* keep the last good token: a rotation may be replacing the file right now */
    if (a->expected != NULL && st.st_ino == a->file_st.st_ino && st.st_dev == a->file_st.st_dev &&
        st.st_size == a->file_st.st_size && st.st_mtim.tv_sec == a->file_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == a->file_st.st_mtim.tv_nsec)
        return;
    struct lg_err err;
    if (read_token_file(a, &err) != LG_OK)
        lg_warn(a->c->id, "%s; keeping the previous token", err.msg);
    else
        lg_info(a->c->id, "token file \"%s\" re-read", a->conf->filename);
}

/* ---- core/auth.h ---- */

extern const struct lg_component_type lg_bearertokenauth_extension;

int lg_auth_resolve(struct lg_runtime *rt, const struct lg_node *where, const char *id,
                    struct lg_authenticator **out, struct lg_err *err)
{
    *out = NULL;
    struct lg_component *c = id ? lg_runtime_find_extension(rt, id) : NULL;
    if (c == NULL) {
        const char *why = "is not listed in service.extensions (define it under extensions: and add it to service.extensions)";
        return where ? lg_conf_error(err, where, "authenticator \"%s\" %s", id ? id : "", why)
                     : lg_err_set(err, LG_EINVAL, "authenticator \"%s\" %s", id ? id : "", why);
    }
    if (c->type != &lg_bearertokenauth_extension || c->state == NULL) {
        return where ? lg_conf_error(err, where, "extension \"%s\" (type %s) is not an authenticator", id, c->type->type)
                     : lg_err_set(err, LG_EINVAL, "extension \"%s\" (type %s) is not an authenticator", id, c->type->type);
    }
    *out = c->state;
    return LG_OK;
}

const char *lg_auth_header_name(const struct lg_authenticator *a)
{
    return a->conf->header;
}

const char *lg_auth_grpc_metadata_key(const struct lg_authenticator *a)
{
    return a->grpc_key;
}

bool lg_auth_check(struct lg_authenticator *a, const char *value, size_t len)
{
    pthread_mutex_lock(&a->lock);
    maybe_reload(a);
    bool ok = false;
    if (a->expected != NULL && value != NULL) {
        /* Length mismatch fails at once: only the length is revealed, never the content.
         * Equal lengths compare every byte whatever the first difference. */
        if (len == a->expected_len)
            ok = CRYPTO_memcmp(value, a->expected, len) == 0;
    }
    pthread_mutex_unlock(&a->lock);
    if (!ok)
        lg_counter_add(a->failures, 1);
    return ok;
}

int lg_auth_client_header(struct lg_authenticator *a, char *name, size_t name_len, char *value,
                          size_t value_len)
{
    size_t hlen = strlen(a->conf->header);
    if (hlen + 1 > name_len)
        return LG_ETOOBIG;
    pthread_mutex_lock(&a->lock);
    maybe_reload(a);
    int rc = LG_OK;
    if (a->expected == NULL)
        rc = LG_EIO;
    else if (a->expected_len + 1 > value_len)
        rc = LG_ETOOBIG;
    else
        memcpy(value, a->expected, a->expected_len + 1);
    pthread_mutex_unlock(&a->lock);
    if (rc == LG_OK)
        memcpy(name, a->conf->header, hlen + 1);
    return rc;
}

/* ---- life cycle ---- */

static int bearer_create(struct lg_component *c, struct lg_err *err)
{
    const struct bearer_conf *conf = c->conf;
    bool has_token = conf->token != NULL, has_file = conf->filename != NULL && conf->filename[0];
    if (has_token == has_file)
        return c->conf_node ? lg_conf_error(err, c->conf_node, "exactly one of token and filename must be set")
                            : lg_err_set(err, LG_EINVAL, "extensions.%s: exactly one of token and filename must be set", c->id);
    if (has_token && conf->token[0] == '\0')
        return lg_conf_error(err, lg_node_get(c->conf_node, "token"), "must not be empty");
    size_t hlen = conf->header ? strlen(conf->header) : 0;
    if (hlen == 0 || hlen >= LG_AUTH_NAME_MAX || strpbrk(conf->header, " \t\r\n:") != NULL)
        return lg_conf_error(err, lg_node_get(c->conf_node, "header"), "must be an HTTP header name (no spaces or colons, under %d bytes)", LG_AUTH_NAME_MAX);
    if (conf->scheme && strpbrk(conf->scheme, " \t\r\n") != NULL)
        return lg_conf_error(err, lg_node_get(c->conf_node, "scheme"), "must not contain whitespace");
    struct lg_authenticator *a = calloc(1, sizeof *a);
    if (a == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    a->c = c;
    a->conf = conf;
    pthread_mutex_init(&a->lock, NULL);
    for (size_t i = 0; i <= hlen; i++)
        a->grpc_key[i] = (char)((conf->header[i] >= 'A' && conf->header[i] <= 'Z') ? conf->header[i] + 32 : conf->header[i]);
    if (has_token && set_token(a, conf->token, strlen(conf->token)) != LG_OK) {
        pthread_mutex_destroy(&a->lock);
        free(a);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    char labels[256];
    snprintf(labels, sizeof labels, "extension=\"%s\"", c->id);
    a->failures = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, "llmgate_auth_failures",
                                       "Requests refused by an authenticator (missing or wrong credentials).", labels);
    c->state = a;
    return LG_OK;
}

static int bearer_start(struct lg_component *c, struct lg_err *err)
{
    struct lg_authenticator *a = c->state;
    if (a->conf->filename == NULL || a->conf->filename[0] == '\0')
        return LG_OK;
    pthread_mutex_lock(&a->lock);
    int rc = read_token_file(a, err);
    a->checked_mono_ns = lg_now_mono_ns();
    pthread_mutex_unlock(&a->lock);
    if (rc != LG_OK)
        lg_err_prefix(err, "extensions.%s.filename", c->id);
    return rc;
}

static void bearer_destroy(struct lg_component *c)
{
    struct lg_authenticator *a = c->state;
    if (a == NULL)
        return;
    if (a->expected != NULL) {
        explicit_bzero(a->expected, a->expected_len);
        free(a->expected);
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
    c->state = NULL;
}

const struct lg_component_type lg_bearertokenauth_extension = {
    .type = "bearertokenauth",
    .kind = LG_EXTENSION,
    .description = "bearer-token authenticator for receivers (auth.authenticator) and exporters",
    .conf_size = sizeof(struct bearer_conf),
    .fields = bearer_fields,
    .create = bearer_create,
    .start = bearer_start,
    .destroy = bearer_destroy,
};
