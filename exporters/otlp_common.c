/* exporters/otlp_common.c — the parts of the `otlp` (gRPC) and `otlp_http` exporters that
 * are the same logic in both: `headers` parsing, TLS file checks, the `auth` section and
 * its per-attempt header, and partial_success. See otlp_common.h; owns no state. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"
#include "otlp_common.h"

/* Names are HTTP tokens; values must not contain control characters (tab aside). With
 * lower, names are copied into the arena lowercased; otherwise they point into the
 * config document, as written. */
static int parse_headers(const struct lg_node *n, struct lg_otlp_headers *h, bool lower, struct lg_arena *arena,
                         struct lg_err *err)
{
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "expected a map of header name to value");
    h->kv = lg_arena_calloc(arena, 2 * n->npairs + 1, sizeof(char *));
    if (h->kv == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    h->n = 0;
    for (size_t i = 0; i < n->npairs; i++) {
        const char *k = n->pairs[i].key;
        const struct lg_node *v = n->pairs[i].value;
        if (k[0] == '\0')
            return lg_conf_error(err, v, "empty header name");
        for (const char *p = k; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch <= ' ' || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch) != NULL)
                return lg_conf_error(err, v, "header name \"%s\" is not a valid HTTP token", k);
        }
        const char *name = k;
        if (lower) {
            char *lk = lg_arena_strdup(arena, k);
            if (lk == NULL)
                return lg_err_set(err, LG_ENOMEM, "out of memory");
            for (char *p = lk; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            name = lk;
        }
        if (v->type != LG_NODE_SCALAR && v->type != LG_NODE_NULL)
            return lg_conf_error(err, v, "expected a string value");
        const char *val = v->scalar ? v->scalar : "";
        for (const char *p = val; *p; p++)
            if ((unsigned char)*p < ' ' && *p != '\t')
                return lg_conf_error(err, v, "header value contains a control character");
        h->kv[2 * h->n] = name;
        h->kv[2 * h->n + 1] = val;
        h->n++;
    }
    h->kv[2 * h->n] = NULL;
    return LG_OK;
}

int lg_otlp_parse_headers(const struct lg_node *n, void *dst, struct lg_arena *arena, struct lg_err *err)
{
    return parse_headers(n, dst, false, arena, err);
}

int lg_otlp_parse_headers_lower(const struct lg_node *n, void *dst, struct lg_arena *arena, struct lg_err *err)
{
    return parse_headers(n, dst, true, arena, err);
}

int lg_otlp_tls_check_files(const struct lg_otlp_tls_conf *tls, const struct lg_node *tls_node, bool check_readable,
                            struct lg_err *err)
{
    if ((tls->cert_file == NULL) != (tls->key_file == NULL))
        return lg_conf_error(err, tls_node, "cert_file and key_file must be set together");
    const char *files[] = {tls->ca_file, tls->cert_file, tls->key_file};
    const char *keys[] = {"ca_file", "cert_file", "key_file"};
    for (size_t i = 0; i < 3; i++)
        if (check_readable && files[i] != NULL && access(files[i], R_OK) != 0)
            return lg_conf_error(err, lg_node_get(tls_node, keys[i]), "cannot read \"%s\"", files[i]);
    return LG_OK;
}

const struct lg_conf_field lg_otlp_auth_fields[] = {
    LG_CONF_STRING("authenticator", NULL, struct lg_otlp_auth_conf, authenticator, "ID of an authenticator extension (bearertokenauth[/name])"),
    LG_CONF_END,
};

int lg_otlp_auth_resolve(struct lg_component *c, const struct lg_otlp_auth_conf *auth, struct lg_authenticator **out,
                         struct lg_err *err)
{
    const struct lg_node *an = lg_node_get(lg_node_get(c->conf_node, "auth"), "authenticator");
    if (auth->authenticator == NULL)
        return lg_conf_error(err, an ? an : lg_node_get(c->conf_node, "auth"), "auth.authenticator is required");
    return lg_auth_resolve(c->rt, an, auth->authenticator, out, err);
}

int lg_otlp_auth_header(struct lg_authenticator *a, char *name, char *value, struct lg_export_result *res)
{
    if (lg_auth_client_header(a, name, LG_AUTH_NAME_MAX, value, LG_AUTH_VALUE_MAX) == LG_OK)
        return LG_OK;
    res->code = LG_EAGAIN; /* the token file may appear (it is re-read) */
    snprintf(res->message, sizeof res->message, "the authenticator has no credentials to send yet");
    return LG_EAGAIN;
}

const char *lg_otlp_response_name(enum lg_signal sig)
{
    return sig == LG_SIGNAL_TRACES ? "Trace" : sig == LG_SIGNAL_METRICS ? "Metrics" : "Logs";
}

void lg_otlp_partial_success(const char *id, enum lg_signal sig, const ProtobufCMessage *m, struct lg_export_result *res)
{
    int64_t rejected = 0;
    const char *msg = NULL;
    switch (sig) {
    case LG_SIGNAL_TRACES: {
        const lg_traces_resp *r = (const lg_traces_resp *)m;
        if (r->partial_success) {
            rejected = r->partial_success->rejected_spans;
            msg = r->partial_success->error_message;
        }
        break;
    }
    case LG_SIGNAL_METRICS: {
        const lg_metrics_resp *r = (const lg_metrics_resp *)m;
        if (r->partial_success) {
            rejected = r->partial_success->rejected_data_points;
            msg = r->partial_success->error_message;
        }
        break;
    }
    default: {
        const lg_logs_resp *r = (const lg_logs_resp *)m;
        if (r->partial_success) {
            rejected = r->partial_success->rejected_log_records;
            msg = r->partial_success->error_message;
        }
        break;
    }
    }
    if (rejected < 0)
        rejected = 0;
    res->rejected = rejected;
    /* the helper counts `rejected` and logs it with this message; a message without
     * rejections is a warning from the backend (OTLP spec), logged here */
    if (msg != NULL && msg[0] != '\0')
        snprintf(res->message, sizeof res->message, "%s", msg);
    if (rejected == 0 && msg != NULL && msg[0] != '\0')
        lg_warn(id, "the backend accepted every %s with a warning: %s", lg_signal_item_noun(sig), msg);
}
