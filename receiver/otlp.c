/* receiver/otlp.c — the `otlp` receiver component: config, life cycle, and the shared
 * delivery path of its two transports (otlp_grpc.c, otlp_http.c).
 *
 * Delivery drops items whose IDs are malformed (reported back through partial_success, as
 * the OTLP spec allows), counts accepted/refused items under the Collector's metric names,
 * and hands the batch to every pipeline the receiver feeds.
 *
 * Security settings are checked here for both transports: a `tls` section must name a
 * certificate and key (never a silent plaintext fallback), and `auth.authenticator` is
 * resolved to the extension's authenticator (core/auth.h), which the transports consult
 * before decoding anything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/auth.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "otlp_internal.h"

/* ---- config ---- */

/* The Collector's gRPC default is 4 MiB; a gateway receives batches from many SDKs. */
#define OTLP_GRPC_DEFAULT_MAX_RECV_MIB "16"
#define OTLP_HTTP_DEFAULT_MAX_BODY "20971520" /* 20 MiB, the Collector's default */

static const struct lg_conf_field tls_fields[] = {
    LG_CONF_STRING("cert_file", NULL, struct otlp_tls_conf, cert_file, "server certificate (PEM)"),
    LG_CONF_STRING("key_file", NULL, struct otlp_tls_conf, key_file, "server private key (PEM)"),
    LG_CONF_STRING("client_ca_file", NULL, struct otlp_tls_conf, client_ca_file,
                   "CA that client certificates must chain to (enables mTLS)"),
    LG_CONF_STRING("ca_file", NULL, struct otlp_tls_conf, ca_file, "CA bundle"),
    LG_CONF_STRING("min_version", "1.2", struct otlp_tls_conf, min_version, "1.2 or 1.3"),
    LG_CONF_STRING("max_version", NULL, struct otlp_tls_conf, max_version, "1.2 or 1.3"),
    LG_CONF_DURATION("reload_interval", "0", struct otlp_tls_conf, reload_interval_ns,
                     "re-read certificate files when this much time has passed (0: never)"),
    LG_CONF_ACCEPTED("include_system_ca_certs_pool", "accepted for Collector compatibility"),
    LG_CONF_ACCEPTED("cipher_suites", "accepted for Collector compatibility; OpenSSL defaults apply"),
    LG_CONF_END,
};

static const struct lg_conf_field auth_fields[] = {
    LG_CONF_STRING("authenticator", NULL, struct otlp_auth_conf, authenticator,
                   "ID of an authenticator extension (bearertokenauth) in service.extensions"),
    LG_CONF_ACCEPTED("request_params", "accepted; only headers carry credentials"),
    LG_CONF_END,
};

static const struct lg_conf_field keepalive_server_fields[] = {
    LG_CONF_DURATION("max_connection_idle", "0", struct otlp_keepalive_server_conf, max_connection_idle_ns, "close idle connections after (0: never)"),
    LG_CONF_DURATION("max_connection_age", "0", struct otlp_keepalive_server_conf, max_connection_age_ns, "close connections older than (0: never)"),
    LG_CONF_DURATION("max_connection_age_grace", "0", struct otlp_keepalive_server_conf, max_connection_age_grace_ns, "grace for in-flight RPCs after max_connection_age"),
    LG_CONF_DURATION("time", "0", struct otlp_keepalive_server_conf, time_ns, "ping an idle connection after (0: gRPC default, 2h)"),
    LG_CONF_DURATION("timeout", "0", struct otlp_keepalive_server_conf, timeout_ns, "wait this long for a ping ack (0: gRPC default, 20s)"),
    LG_CONF_END,
};

static const struct lg_conf_field keepalive_enforcement_fields[] = {
    LG_CONF_DURATION("min_time", "0", struct otlp_keepalive_enforcement_conf, min_time_ns, "minimum client ping interval (0: gRPC default, 5m)"),
    LG_CONF_BOOL("permit_without_stream", "false", struct otlp_keepalive_enforcement_conf, permit_without_stream, "allow pings without active streams"),
    LG_CONF_END,
};

static const struct lg_conf_field keepalive_fields[] = {
    LG_CONF_SECTION("server_parameters", struct otlp_keepalive_conf, server_parameters, keepalive_server_fields, "server keepalive parameters"),
    LG_CONF_SECTION("enforcement_policy", struct otlp_keepalive_conf, enforcement_policy, keepalive_enforcement_fields, "client keepalive enforcement"),
    LG_CONF_END,
};

static const struct lg_conf_field grpc_fields[] = {
    LG_CONF_STRING("endpoint", "localhost:4317", struct otlp_grpc_conf, endpoint, "host:port to listen on"),
    LG_CONF_INT("max_recv_msg_size_mib", OTLP_GRPC_DEFAULT_MAX_RECV_MIB, struct otlp_grpc_conf, max_recv_msg_size_mib, 1, 2047, "largest request accepted, after decompression"),
    LG_CONF_INT("max_concurrent_streams", "0", struct otlp_grpc_conf, max_concurrent_streams, 0, 1e9, "per connection; 0 = gRPC default"),
    LG_CONF_INT("read_buffer_size", "524288", struct otlp_grpc_conf, read_buffer_size, 0, 1e9, "accepted; gRPC core sizes its own buffers"),
    LG_CONF_INT("write_buffer_size", "0", struct otlp_grpc_conf, write_buffer_size, 0, 1e9, "accepted; gRPC core sizes its own buffers"),
    LG_CONF_BOOL("include_metadata", "false", struct otlp_grpc_conf, include_metadata, "accepted; request metadata is not propagated yet"),
    LG_CONF_STRING("transport", "tcp", struct otlp_grpc_conf, transport, "tcp"),
    LG_CONF_SECTION_OPT("tls", struct otlp_grpc_conf, tls, has_tls, tls_fields, "TLS server settings"),
    LG_CONF_SECTION("keepalive", struct otlp_grpc_conf, keepalive, keepalive_fields, "keepalive settings"),
    LG_CONF_SECTION_OPT("auth", struct otlp_grpc_conf, auth, has_auth, auth_fields, "authentication of clients"),
    LG_CONF_END,
};

static const struct lg_conf_field cors_fields[] = {
    LG_CONF_STRLIST("allowed_origins", struct otlp_cors_conf, allowed_origins, "origins allowed to send (wildcards like https://*.example.com)"),
    LG_CONF_STRLIST("allowed_headers", struct otlp_cors_conf, allowed_headers, "extra request headers allowed"),
    LG_CONF_INT("max_age", "0", struct otlp_cors_conf, max_age, 0, 1e9, "seconds a preflight may be cached"),
    LG_CONF_END,
};

static const struct lg_conf_field http_fields[] = {
    LG_CONF_STRING("endpoint", "localhost:4318", struct otlp_http_conf, endpoint, "host:port to listen on"),
    LG_CONF_INT("max_request_body_size", OTLP_HTTP_DEFAULT_MAX_BODY, struct otlp_http_conf, max_request_body_size, 1, 4294967296.0, "bytes, on the wire and after decompression"),
    LG_CONF_BOOL("include_metadata", "false", struct otlp_http_conf, include_metadata, "accepted; request headers are not propagated yet"),
    LG_CONF_STRING("traces_url_path", "/v1/traces", struct otlp_http_conf, traces_url_path, "path for traces"),
    LG_CONF_STRING("metrics_url_path", "/v1/metrics", struct otlp_http_conf, metrics_url_path, "path for metrics"),
    LG_CONF_STRING("logs_url_path", "/v1/logs", struct otlp_http_conf, logs_url_path, "path for logs"),
    LG_CONF_SECTION_OPT("cors", struct otlp_http_conf, cors, has_cors, cors_fields, "CORS settings"),
    LG_CONF_SECTION_OPT("tls", struct otlp_http_conf, tls, has_tls, tls_fields, "TLS server settings"),
    LG_CONF_DURATION("read_timeout", "30s", struct otlp_http_conf, read_timeout_ns, "slow-client timeout for reading a request"),
    LG_CONF_DURATION("read_header_timeout", "30s", struct otlp_http_conf, read_header_timeout_ns, "timeout for request headers"),
    LG_CONF_DURATION("write_timeout", "30s", struct otlp_http_conf, write_timeout_ns, "timeout for writing a response"),
    LG_CONF_DURATION("idle_timeout", "60s", struct otlp_http_conf, idle_timeout_ns, "keep-alive idle timeout"),
    LG_CONF_ACCEPTED("compression_algorithms", "accepted; gzip, deflate and zstd are always accepted"),
    LG_CONF_SECTION_OPT("auth", struct otlp_http_conf, auth, has_auth, auth_fields, "authentication of clients"),
    LG_CONF_END,
};

static const struct lg_conf_field protocols_fields[] = {
    LG_CONF_SECTION_OPT("grpc", struct otlp_protocols_conf, grpc, has_grpc, grpc_fields, "OTLP/gRPC"),
    LG_CONF_SECTION_OPT("http", struct otlp_protocols_conf, http, has_http, http_fields, "OTLP/HTTP"),
    LG_CONF_END,
};

static const struct lg_conf_field otlp_fields[] = {
    LG_CONF_SECTION("protocols", struct otlp_conf, protocols, protocols_fields, "grpc and/or http (at least one)"),
    LG_CONF_END,
};

/* ---- delivery ---- */

static bool id_ok(ProtobufCBinaryData id, size_t want, bool may_be_empty)
{
    if (id.len == 0)
        return may_be_empty;
    if (id.len != want)
        return false;
    for (size_t i = 0; i < id.len; i++)
        if (id.data[i] != 0)
            return true;
    return false; /* all zero: invalid per the W3C trace-context spec */
}

/* Removes spans with invalid IDs in place (the receiver owns the only reference). */
static int64_t prune_traces(lg_traces_req *r, char *why, size_t whylen)
{
    int64_t rejected = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        lg_resource_spans *rs = r->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            lg_scope_spans *ss = rs->scope_spans[j];
            size_t keep = 0;
            for (size_t k = 0; k < ss->n_spans; k++) {
                lg_span *s = ss->spans[k];
                const char *bad = NULL;
                if (!id_ok(s->trace_id, 16, false))
                    bad = "trace_id must be 16 bytes and not all zero";
                else if (!id_ok(s->span_id, 8, false))
                    bad = "span_id must be 8 bytes and not all zero";
                else if (s->parent_span_id.len != 0 && s->parent_span_id.len != 8)
                    bad = "parent_span_id must be empty or 8 bytes";
                if (bad) {
                    if (rejected == 0)
                        snprintf(why, whylen, "span %zu of scope %zu of resource %zu: %s", k, j, i, bad);
                    rejected++;
                } else {
                    ss->spans[keep++] = s;
                }
            }
            ss->n_spans = keep;
        }
    }
    return rejected;
}

static int64_t prune_logs(lg_logs_req *r, char *why, size_t whylen)
{
    int64_t rejected = 0;
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        lg_resource_logs *rl = r->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            lg_scope_logs *sl = rl->scope_logs[j];
            size_t keep = 0;
            for (size_t k = 0; k < sl->n_log_records; k++) {
                lg_log_record *lr = sl->log_records[k];
                /* Logs may have no trace context; if they do, it must be well formed. */
                const char *bad = NULL;
                if (lr->trace_id.len != 0 && lr->trace_id.len != 16)
                    bad = "trace_id must be empty or 16 bytes";
                else if (lr->span_id.len != 0 && lr->span_id.len != 8)
                    bad = "span_id must be empty or 8 bytes";
                if (bad) {
                    if (rejected == 0)
                        snprintf(why, whylen, "log record %zu of scope %zu of resource %zu: %s", k, j, i, bad);
                    rejected++;
                } else {
                    sl->log_records[keep++] = lr;
                }
            }
            sl->n_log_records = keep;
        }
    }
    return rejected;
}

void otlp_receiver_deliver(struct otlp_receiver *r, enum otlp_transport t, struct lg_batch *b,
                           struct otlp_result *res)
{
    memset(res, 0, sizeof *res);
    enum lg_signal s = b->signal;
    if (s == LG_SIGNAL_TRACES)
        res->rejected = prune_traces(b->req.traces, res->message, sizeof res->message);
    else if (s == LG_SIGNAL_LOGS)
        res->rejected = prune_logs(b->req.logs, res->message, sizeof res->message);
    if (res->rejected > 0) {
        b->items = lg_batch_count_items(b);
        lg_counter_add(r->refused[t][s], (uint64_t)res->rejected);
    }
    if (b->items == 0) {
        res->code = LG_OK; /* an empty request is valid; nothing to forward */
        return;
    }
    const struct lg_fanout *next = &r->c->next[s];
    int rc = lg_fanout_consume(next, b);
    res->code = rc;
    if (rc == LG_OK) {
        lg_counter_add(r->accepted[t][s], b->items);
    } else {
        lg_counter_add(r->refused[t][s], b->items);
        switch (rc) {
        case LG_EAGAIN:
            snprintf(res->message, sizeof res->message, "data refused: the gateway is over its memory or queue limits, retry later");
            break;
        case LG_EFULL:
            snprintf(res->message, sizeof res->message, "data refused: an exporter queue is full, retry later");
            break;
        default:
            snprintf(res->message, sizeof res->message, "data refused by the pipeline (code %d)", rc);
        }
    }
}

ProtobufCMessage *otlp_response_build(enum lg_signal s, const struct otlp_result *res,
                                      struct otlp_response_storage *st)
{
    bool partial = res->rejected > 0;
    /* error_message is a const view of res->message; protobuf-c wants char *. */
    char *msg = (char *)res->message;
    switch (s) {
    case LG_SIGNAL_TRACES:
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__init(&st->resp.traces);
        if (partial) {
            opentelemetry__proto__collector__trace__v1__export_trace_partial_success__init(&st->partial.traces);
            st->partial.traces.rejected_spans = res->rejected;
            st->partial.traces.error_message = msg;
            st->resp.traces.partial_success = &st->partial.traces;
        }
        return &st->resp.traces.base;
    case LG_SIGNAL_METRICS:
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__init(&st->resp.metrics);
        if (partial) {
            opentelemetry__proto__collector__metrics__v1__export_metrics_partial_success__init(&st->partial.metrics);
            st->partial.metrics.rejected_data_points = res->rejected;
            st->partial.metrics.error_message = msg;
            st->resp.metrics.partial_success = &st->partial.metrics;
        }
        return &st->resp.metrics.base;
    case LG_SIGNAL_LOGS:
    default:
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__init(&st->resp.logs);
        if (partial) {
            opentelemetry__proto__collector__logs__v1__export_logs_partial_success__init(&st->partial.logs);
            st->partial.logs.rejected_log_records = res->rejected;
            st->partial.logs.error_message = msg;
            st->resp.logs.partial_success = &st->partial.logs;
        }
        return &st->resp.logs.base;
    }
}

uint8_t *otlp_response_pack(enum lg_signal s, const struct otlp_result *res, size_t *len)
{
    struct otlp_response_storage st;
    ProtobufCMessage *m = otlp_response_build(s, res, &st);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return NULL;
    *len = protobuf_c_message_pack(m, buf);
    return buf;
}

/* ---- life cycle ---- */

static const char *const transport_names[2] = {"grpc", "http"};

/* A `tls` section must make the listener serve TLS: without cert_file and key_file the
 * transports would fall back to plaintext, which is never what `tls:` asked for. */
static int check_tls(struct lg_component *c, enum otlp_transport t, const struct otlp_tls_conf *tls,
                     struct lg_err *err)
{
    const struct lg_node *proto = lg_node_get(lg_node_get(c->conf_node, "protocols"), transport_names[t]);
    const struct lg_node *tn = lg_node_get(proto, "tls");
    bool cert = tls->cert_file != NULL && tls->cert_file[0] != '\0';
    bool key = tls->key_file != NULL && tls->key_file[0] != '\0';
    if (cert && key)
        return LG_OK;
    const char *what = !cert && !key ? "cert_file and key_file are required" : !cert ? "cert_file is required with key_file" : "key_file is required with cert_file";
    return tn ? lg_conf_error(err, tn, "%s (remove the tls section to serve plaintext)", what)
              : lg_err_set(err, LG_EINVAL, "receivers.%s.protocols.%s.tls: %s", c->id, transport_names[t], what);
}

/* Resolves protocols.<transport>.auth.authenticator into r->auth[t]. */
static int resolve_auth(struct lg_component *c, struct otlp_receiver *r, enum otlp_transport t,
                        const struct otlp_auth_conf *a, struct lg_err *err)
{
    const struct lg_node *proto = lg_node_get(lg_node_get(c->conf_node, "protocols"), transport_names[t]);
    const struct lg_node *auth = lg_node_get(proto, "auth");
    const struct lg_node *id = lg_node_get(auth, "authenticator");
    if (a->authenticator == NULL || a->authenticator[0] == '\0')
        return auth ? lg_conf_error(err, id ? id : auth, "%s", id ? "must name an authenticator extension" : "authenticator: required (the ID of an authenticator extension)")
                    : lg_err_set(err, LG_EINVAL, "receivers.%s.protocols.%s.auth.authenticator: required", c->id, transport_names[t]);
    int rc = lg_auth_resolve(c->rt, id, a->authenticator, &r->auth[t], err);
    if (rc != LG_OK && id == NULL)
        lg_err_prefix(err, "receivers.%s.protocols.%s.auth.authenticator", c->id, transport_names[t]);
    return rc;
}

static int otlp_create(struct lg_component *c, struct lg_err *err)
{
    struct otlp_conf *conf = c->conf;
    struct otlp_receiver *r = calloc(1, sizeof *r);
    if (r == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    r->c = c;
    r->conf = conf;
    struct otlp_grpc_conf *g = &conf->protocols.grpc;
    g->keepalive_time_ns = g->keepalive.server_parameters.time_ns;
    g->keepalive_timeout_ns = g->keepalive.server_parameters.timeout_ns;
    g->max_connection_idle_ns = g->keepalive.server_parameters.max_connection_idle_ns;
    g->max_connection_age_ns = g->keepalive.server_parameters.max_connection_age_ns;
    g->max_connection_age_grace_ns = g->keepalive.server_parameters.max_connection_age_grace_ns;
    g->min_ping_time_ns = g->keepalive.enforcement_policy.min_time_ns;
    g->permit_without_stream = g->keepalive.enforcement_policy.permit_without_stream;
    if (!conf->protocols.has_grpc && !conf->protocols.has_http) {
        free(r);
        const struct lg_node *p = lg_node_get(c->conf_node, "protocols");
        if (p != NULL)
            return lg_conf_error(err, p, "must enable at least one protocol (grpc or http)");
        return c->conf_node ? lg_conf_error(err, c->conf_node, "protocols: must enable at least one protocol (grpc or http)")
                            : lg_err_set(err, LG_EINVAL, "receivers.%s.protocols: must enable at least one protocol (grpc or http)", c->id);
    }
    if (conf->protocols.has_grpc && g->tls.min_version && strcmp(g->tls.min_version, "1.2") != 0) {
        free(r);
        /* gRPC core 1.51's C API has no way to raise the TLS floor for a server. */
        return lg_conf_error(err, lg_node_get(lg_node_get(lg_node_get(lg_node_get(c->conf_node, "protocols"), "grpc"), "tls"), "min_version"),
                             "only \"1.2\" is supported for gRPC (TLS 1.3 is still negotiated when the client offers it), got \"%s\"", g->tls.min_version);
    }
    if (conf->protocols.has_grpc && g->transport && strcmp(g->transport, "tcp") != 0) {
        free(r);
        return lg_conf_error(err, lg_node_get(lg_node_get(lg_node_get(c->conf_node, "protocols"), "grpc"), "transport"),
                             "only \"tcp\" is supported, got \"%s\"", g->transport);
    }
    int arc = LG_OK;
    if (conf->protocols.has_grpc && g->has_tls)
        arc = check_tls(c, OTLP_GRPC, &g->tls, err);
    if (arc == LG_OK && conf->protocols.has_http && conf->protocols.http.has_tls)
        arc = check_tls(c, OTLP_HTTP, &conf->protocols.http.tls, err);
    if (arc == LG_OK && conf->protocols.has_grpc && g->has_auth)
        arc = resolve_auth(c, r, OTLP_GRPC, &g->auth, err);
    if (arc == LG_OK && conf->protocols.has_http && conf->protocols.http.has_auth)
        arc = resolve_auth(c, r, OTLP_HTTP, &conf->protocols.http.auth, err);
    if (arc != LG_OK) {
        free(r);
        return arc;
    }
    for (int t = 0; t < 2; t++)
        for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
            char labels[256];
            snprintf(labels, sizeof labels, "receiver=\"%s\",transport=\"%s\"", c->id, transport_names[t]);
            char name[128];
            snprintf(name, sizeof name, "otelcol_receiver_accepted_%s", lg_signal_item_noun((enum lg_signal)s));
            r->accepted[t][s] = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, name,
                "Number of items successfully pushed into the pipeline.", labels);
            snprintf(name, sizeof name, "otelcol_receiver_refused_%s", lg_signal_item_noun((enum lg_signal)s));
            r->refused[t][s] = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, name,
                "Number of items that could not be pushed into the pipeline.", labels);
        }
    c->state = r;
    return LG_OK;
}

static int otlp_start(struct lg_component *c, struct lg_err *err)
{
    struct otlp_receiver *r = c->state;
    int rc;
    if (r->conf->protocols.has_grpc) {
        rc = otlp_grpc_start(r, err);
        if (rc != LG_OK) {
            lg_err_prefix(err, "receivers.%s.protocols.grpc", c->id);
            return rc;
        }
        lg_info(c->id, "OTLP/gRPC listening on %s", r->conf->protocols.grpc.endpoint);
    }
    if (r->conf->protocols.has_http) {
        rc = otlp_http_start(r, err);
        if (rc != LG_OK) {
            lg_err_prefix(err, "receivers.%s.protocols.http", c->id);
            if (r->conf->protocols.has_grpc)
                otlp_grpc_shutdown(r, lg_now_mono_ns());
            return rc;
        }
        lg_info(c->id, "OTLP/HTTP listening on %s", r->conf->protocols.http.endpoint);
    }
    return LG_OK;
}

static int otlp_shutdown(struct lg_component *c, int64_t deadline)
{
    struct otlp_receiver *r = c->state;
    if (r->conf->protocols.has_http)
        otlp_http_shutdown(r, deadline);
    if (r->conf->protocols.has_grpc)
        otlp_grpc_shutdown(r, deadline);
    return LG_OK;
}

static void otlp_destroy(struct lg_component *c)
{
    struct otlp_receiver *r = c->state;
    if (r == NULL)
        return;
    if (r->conf->protocols.has_http)
        otlp_http_destroy(r);
    if (r->conf->protocols.has_grpc)
        otlp_grpc_destroy(r);
    free(r);
    c->state = NULL;
}

const struct lg_component_type lg_otlp_receiver = {
    .type = "otlp",
    .kind = LG_RECEIVER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "OTLP over gRPC (4317) and HTTP protobuf/JSON (4318)",
    .conf_size = sizeof(struct otlp_conf),
    .fields = otlp_fields,
    .create = otlp_create,
    .start = otlp_start,
    .shutdown = otlp_shutdown,
    .destroy = otlp_destroy,
};
