/* exporters/otlp.c — the `otlp` exporter (alias `otlp_grpc`): sends traces, metrics and logs
 * to an OTLP/gRPC backend through the gRPC client adapter (core/grpc_client.h), behind the
 * shared exporter helper (queue, consumer threads, retry with backoff, persistent queue).
 *
 * Owns: one gRPC channel per exporter instance (created at start, shared by all consumer
 * threads; gRPC multiplexes the calls on one HTTP/2 connection), the metadata list built
 * from `headers`, and the helper. Every batch is encoded once per attempt into a malloc'd
 * buffer that the attempt frees. With `auth.authenticator`, the extension's header is asked
 * for on every call (a rotated token file takes effect) and sent first; header values are
 * never logged.
 *
 * Outcome of a call, as the Collector's OTLP exporter classifies it (REFERENCE §3):
 *   OK                                   delivered; partial_success.rejected_* counted as
 *                                        permanently failed and logged with error_message
 *   CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS   retryable
 *   RESOURCE_EXHAUSTED                   retryable only with google.rpc.RetryInfo
 *   anything else                        permanent, never retried
 * As in the Collector, RESOURCE_EXHAUSTED is retried only when the status carries
 * google.rpc.RetryInfo in the grpc-status-details-bin trailer (a quota that will recover),
 * and any retryable status with RetryInfo waits at least its retry_delay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/rpc/error_details.pb-c.h"

#include "../core/auth.h"
#include "../core/component.h"
#include "../core/exporter_helper.h"
#include "../core/grpc_client.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "otlp_common.h"

struct otlp_keepalive_conf {
    int64_t time_ns;
    int64_t timeout_ns;
    bool permit_without_stream;
};

struct otlp_conf {
    const char *endpoint;
    struct lg_otlp_tls_conf tls;
    bool tls_present;
    struct lg_otlp_headers headers;
    const char *compression;
    const char *authority;
    bool wait_for_ready;
    struct otlp_keepalive_conf keepalive;
    bool keepalive_present;
    struct lg_otlp_auth_conf auth;
    bool auth_present;
    struct lg_exporter_helper_conf helper;
};

static const struct lg_conf_field otlp_tls_fields[] = {
    LG_CONF_BOOL("insecure", "false", struct lg_otlp_tls_conf, insecure, "plaintext HTTP/2 (no TLS) for a host:port endpoint"),
    LG_CONF_BOOL("insecure_skip_verify", "false", struct lg_otlp_tls_conf, insecure_skip_verify, "not supported by the gRPC exporter (refused when true)"),
    LG_OTLP_TLS_FILE_FIELDS,
    LG_CONF_STRING("min_version", "1.2", struct lg_otlp_tls_conf, min_version, "lowest TLS version; gRPC core 1.51 offers only 1.2"),
    LG_CONF_STRING("server_name_override", NULL, struct lg_otlp_tls_conf, server_name_override, "name checked in the server's certificate (and :authority)"),
    LG_CONF_END,
};

static const struct lg_conf_field otlp_keepalive_fields[] = {
    LG_CONF_DURATION("time", "0", struct otlp_keepalive_conf, time_ns, "ping the server after this long without activity (0: gRPC default)"),
    LG_CONF_DURATION("timeout", "0", struct otlp_keepalive_conf, timeout_ns, "close the connection when a ping is not answered in time"),
    LG_CONF_BOOL("permit_without_stream", "false", struct otlp_keepalive_conf, permit_without_stream, "ping even when no call is open"),
    LG_CONF_END,
};

static const struct lg_conf_field otlp_fields[] = {
    LG_CONF_STRING("endpoint", NULL, struct otlp_conf, endpoint, "host:port, or http://host:port (plaintext) / https://host:port (TLS); required"),
    LG_CONF_SECTION_OPT("tls", struct otlp_conf, tls, tls_present, otlp_tls_fields, "TLS client settings"),
    LG_CONF_CUSTOM("headers", NULL, struct otlp_conf, headers, lg_otlp_parse_headers_lower, "metadata sent with every call"),
    LG_CONF_STRING("compression", "gzip", struct otlp_conf, compression, "gzip | none"),
    LG_CONF_STRING("authority", NULL, struct otlp_conf, authority, ":authority of every call (default: from the endpoint)"),
    LG_CONF_BOOL("wait_for_ready", "false", struct otlp_conf, wait_for_ready, "wait (within timeout) for the connection instead of failing at once"),
    LG_CONF_SECTION_OPT("keepalive", struct otlp_conf, keepalive, keepalive_present, otlp_keepalive_fields, "client keepalive pings"),
    LG_CONF_ACCEPTED("balancer_name", "accepted; one connection per exporter (pick_first)"),
    LG_CONF_ACCEPTED("read_buffer_size", "accepted; gRPC core sizes its buffers"),
    LG_CONF_ACCEPTED("write_buffer_size", "accepted; gRPC core sizes its buffers"),
    LG_CONF_SECTION_OPT("auth", struct otlp_conf, auth, auth_present, lg_otlp_auth_fields, "client authentication through an extension"),
    LG_EXPORTER_HELPER_FIELDS(struct otlp_conf, helper),
    LG_CONF_END,
};

static const char *const otlp_methods[LG_SIGNAL_COUNT] = {
    [LG_SIGNAL_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [LG_SIGNAL_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    [LG_SIGNAL_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

struct otlp_state {
    const char *id;
    struct otlp_conf *conf;
    char *target;        /* endpoint without scheme (malloc'd) */
    bool insecure;       /* plaintext */
    bool gzip;
    struct lg_grpc_channel *channel;
    struct lg_authenticator *auth; /* owned by the extension; NULL without `auth` */
    struct lg_exporter_helper *helper;
};

/* The gRPC client adapter takes at most this many metadata pairs per call; one is kept for
 * the authenticator's header. */
#define OTLP_MAX_HEADERS 31

/** Validates the config (errors name the YAML path under `node`) and fills st (channel not
 *  yet created). */
static int otlp_state_init(struct otlp_state *st, const char *id, struct otlp_conf *conf,
                           const struct lg_node *node, struct lg_err *err)
{
    memset(st, 0, sizeof *st);
    st->id = id;
    st->conf = conf;
    if (conf->endpoint == NULL || conf->endpoint[0] == '\0')
        return node ? lg_conf_error(err, node, "endpoint is required")
                    : lg_err_set(err, LG_EINVAL, "exporters.%s: endpoint is required", id);
    const struct lg_node *ep_node = lg_node_get(node, "endpoint");
    const char *ep = conf->endpoint;
    /* As the Collector: an http:// scheme means plaintext, https:// means TLS, no scheme
     * means TLS unless tls.insecure is set. */
    bool scheme_http = strncmp(ep, "http://", 7) == 0, scheme_https = strncmp(ep, "https://", 8) == 0;
    if (scheme_http)
        ep += 7;
    else if (scheme_https)
        ep += 8;
    else if (strstr(ep, "://") != NULL)
        return lg_conf_error(err, ep_node, "unsupported scheme in \"%s\" (expected host:port, http:// or https://)", conf->endpoint);
    size_t eplen = strlen(ep);
    while (eplen > 0 && ep[eplen - 1] == '/')
        eplen--; /* "https://host:4317/" is common in configs */
    if (eplen == 0)
        return lg_conf_error(err, ep_node, "endpoint has no host:port");
    st->insecure = scheme_http || (!scheme_https && conf->tls.insecure);
    const struct lg_otlp_tls_conf *tls = &conf->tls;
    const struct lg_node *tls_node = lg_node_get(node, "tls");
    if (tls->insecure_skip_verify && !st->insecure)
        return lg_conf_error(err, lg_node_get(tls_node, "insecure_skip_verify"),
                             "insecure_skip_verify is not supported by the gRPC exporter; trust the server's CA with ca_file instead");
    if (tls->min_version != NULL && tls->min_version[0] != '\0' && strcmp(tls->min_version, "1.2") != 0)
        return lg_conf_error(err, lg_node_get(tls_node, "min_version"),
                             "only \"1.2\" is supported by the gRPC exporter (gRPC core 1.51 cannot raise the TLS floor), got \"%s\"", tls->min_version);
    int rc = lg_otlp_tls_check_files(tls, tls_node, !st->insecure, err);
    if (rc != LG_OK)
        return rc;
    if (conf->headers.n > OTLP_MAX_HEADERS)
        return lg_conf_error(err, lg_node_get(node, "headers"), "at most %d headers are supported, got %zu",
                             OTLP_MAX_HEADERS, conf->headers.n);
    if (conf->compression == NULL || strcmp(conf->compression, "gzip") == 0)
        st->gzip = true;
    else if (strcmp(conf->compression, "none") == 0 || conf->compression[0] == '\0')
        st->gzip = false;
    else
        return lg_conf_error(err, lg_node_get(node, "compression"),
                             "the gRPC exporter supports gzip or none, got \"%s\"", conf->compression);
    st->target = strndup(ep, eplen);
    if (st->target == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    return LG_OK;
}

static int otlp_connect(struct otlp_state *st, struct lg_err *err)
{
    const struct otlp_conf *conf = st->conf;
    struct lg_grpc_channel_opts o = {
        .insecure = st->insecure,
        .ca_file = st->insecure ? NULL : conf->tls.ca_file,
        .cert_file = st->insecure ? NULL : conf->tls.cert_file,
        .key_file = st->insecure ? NULL : conf->tls.key_file,
        .gzip = st->gzip,
        .authority_override = conf->authority ? conf->authority : conf->tls.server_name_override,
        .wait_for_ready = conf->wait_for_ready,
        .keepalive_time_ns = conf->keepalive.time_ns,
        .keepalive_timeout_ns = conf->keepalive.timeout_ns,
        .keepalive_permit_without_calls = conf->keepalive.permit_without_stream,
        .user_agent = "llmgate/" LLMGATE_VERSION,
    };
    st->channel = lg_grpc_channel_create(st->target, &o, err);
    if (st->channel == NULL) {
        lg_err_prefix(err, "exporters.%s", st->id);
        return LG_EINVAL;
    }
    return LG_OK;
}

static bool grpc_code_retryable(int code)
{
    switch (code) {
    case LG_GRPC_CANCELLED:
    case LG_GRPC_DEADLINE_EXCEEDED:
    case LG_GRPC_ABORTED:
    case LG_GRPC_OUT_OF_RANGE:
    case LG_GRPC_UNAVAILABLE:
    case LG_GRPC_DATA_LOSS:
        return true;
    default:
        return false;
    }
}

/* The retry_delay of a google.rpc.RetryInfo inside a packed google.rpc.Status, in ns: -1
 * when there is none, 0 when it is there without a delay. */
static int64_t retry_info_delay(const uint8_t *details, size_t len)
{
    if (details == NULL || len == 0)
        return -1;
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, len, details);
    if (st == NULL)
        return -1;
    int64_t delay = -1;
    for (size_t i = 0; i < st->n_details && delay < 0; i++) {
        const Google__Rpc__Any *any = st->details[i];
        if (any->type_url == NULL || strcmp(any->type_url, "type.googleapis.com/google.rpc.RetryInfo") != 0)
            continue;
        Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
        if (ri == NULL)
            continue;
        delay = 0;
        if (ri->retry_delay != NULL && ri->retry_delay->seconds >= 0 && ri->retry_delay->seconds < INT64_MAX / 1000000000LL)
            delay = ri->retry_delay->seconds * 1000000000LL + (ri->retry_delay->nanos > 0 ? ri->retry_delay->nanos : 0);
        google__rpc__retry_info__free_unpacked(ri, NULL);
    }
    google__rpc__status__free_unpacked(st, NULL);
    return delay;
}

/* Reads partial_success from an Export*ServiceResponse into res (rejected, message). An
 * unparseable response is not a reason to resend data the backend answered OK for. */
static void read_partial_success(const char *id, enum lg_signal sig, const uint8_t *resp,
                                 size_t len, struct lg_export_result *res)
{
    if (resp == NULL || len == 0)
        return;
    ProtobufCMessage *m = protobuf_c_message_unpack(lg_response_descriptor(sig), NULL, len, resp);
    if (m == NULL) {
        lg_warn(id, "the backend answered OK with a response that is not a valid Export%sServiceResponse (%zu bytes); ignored",
                lg_otlp_response_name(sig), len);
        return;
    }
    lg_otlp_partial_success(id, sig, m, res);
    protobuf_c_message_free_unpacked(m, NULL);
}

/** One attempt: the helper's send function (see core/exporter_helper.h). */
static void otlp_send(void *ctx, struct lg_batch *b, int64_t deadline, struct lg_export_result *res)
{
    struct otlp_state *st = ctx;
    memset(res, 0, sizeof *res);
    int64_t timeout = deadline - lg_now_mono_ns();
    if (timeout <= 0) {
        res->code = LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "deadline passed before sending");
        return;
    }
    size_t len = 0;
    uint8_t *buf = lg_batch_encode(b, &len);
    if (buf == NULL) {
        res->code = LG_EAGAIN; /* out of memory now is not a property of the data */
        snprintf(res->message, sizeof res->message, "out of memory encoding %zu %s", b->items, lg_signal_item_noun(b->signal));
        return;
    }
    /* metadata: the authenticator's header first (a server reads the first value), then
     * the configured headers */
    const char *md[2 * (OTLP_MAX_HEADERS + 1) + 1];
    size_t nmd = 0;
    char auth_name[LG_AUTH_NAME_MAX], auth_value[LG_AUTH_VALUE_MAX];
    if (st->auth != NULL) {
        if (lg_otlp_auth_header(st->auth, auth_name, auth_value, res) != LG_OK) {
            free(buf);
            return;
        }
        md[nmd++] = lg_auth_grpc_metadata_key(st->auth);
        md[nmd++] = auth_value;
    }
    for (size_t i = 0; i < 2 * st->conf->headers.n; i++)
        md[nmd++] = st->conf->headers.kv[i];
    md[nmd] = NULL;
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int code = LG_GRPC_UNKNOWN;
    char msg[200];
    uint8_t *details = NULL;
    size_t details_len = 0;
    int rc = lg_grpc_unary_ex(st->channel, otlp_methods[b->signal], md, buf, len, timeout, &resp, &resp_len,
                              &code, msg, sizeof msg, &details, &details_len);
    free(buf);
    if (rc != LG_OK) {
        free(resp);
        res->code = rc == LG_EINVAL ? LG_EINVAL : LG_EAGAIN;
        snprintf(res->message, sizeof res->message, "cannot start the gRPC call (%d)", rc);
        return;
    }
    if (code == LG_GRPC_OK) {
        res->code = LG_OK;
        read_partial_success(st->id, b->signal, resp, resp_len, res);
        free(resp);
        return;
    }
    free(resp);
    int64_t retry_delay = retry_info_delay(details, details_len);
    free(details);
    bool retryable = grpc_code_retryable(code) || (code == LG_GRPC_RESOURCE_EXHAUSTED && retry_delay >= 0);
    res->code = retryable ? LG_EAGAIN : LG_EINVAL;
    if (retryable && retry_delay > 0)
        res->retry_after_ns = retry_delay;
    snprintf(res->message, sizeof res->message, "%s: %s%s", lg_grpc_status_name(code), msg[0] ? msg : "(no message)",
             code == LG_GRPC_RESOURCE_EXHAUSTED && !retryable ? " (no RetryInfo: not retried)" : "");
}

static int otlp_create(struct lg_component *c, struct lg_err *err)
{
    struct otlp_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    int rc = otlp_state_init(st, c->id, c->conf, c->conf_node, err);
    if (rc == LG_OK && st->conf->auth_present)
        rc = lg_otlp_auth_resolve(c, &st->conf->auth, &st->auth, err);
    if (rc == LG_OK)
        rc = lg_exporter_helper_create(c, &st->conf->helper, otlp_send, st, &st->helper, err);
    if (rc != LG_OK) {
        free(st->target);
        free(st);
        return rc;
    }
    c->state = st;
    return LG_OK;
}

static int otlp_start(struct lg_component *c, struct lg_err *err)
{
    struct otlp_state *st = c->state;
    int rc = otlp_connect(st, err);
    if (rc != LG_OK)
        return rc;
    return lg_exporter_helper_start(st->helper, err);
}

static int otlp_consume(struct lg_component *c, struct lg_batch *b)
{
    struct otlp_state *st = c->state;
    return lg_exporter_helper_consume(st->helper, b);
}

static int otlp_shutdown(struct lg_component *c, int64_t deadline)
{
    struct otlp_state *st = c->state;
    return lg_exporter_helper_shutdown(st->helper, deadline);
}

static void otlp_destroy(struct lg_component *c)
{
    struct otlp_state *st = c->state;
    if (st == NULL)
        return;
    lg_exporter_helper_destroy(st->helper); /* joins the consumers: no call is in flight */
    lg_grpc_channel_destroy(st->channel);
    free(st->target);
    free(st);
    c->state = NULL;
}

static const char *const otlp_aliases[] = {"otlp_grpc", NULL};

const struct lg_component_type lg_otlp_exporter = {
    .type = "otlp",
    .aliases = otlp_aliases,
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "sends OTLP over gRPC, with a sending queue (memory or persistent) and retries",
    .conf_size = sizeof(struct otlp_conf),
    .fields = otlp_fields,
    .create = otlp_create,
    .start = otlp_start,
    .consume = otlp_consume,
    .shutdown = otlp_shutdown,
    .destroy = otlp_destroy,
};
