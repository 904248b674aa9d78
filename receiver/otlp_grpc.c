/* receiver/otlp_grpc.c — the OTLP receiver's gRPC transport: serves
 * TraceService/Export, MetricsService/Export and LogsService/Export over the gRPC server
 * adapter (core/grpc_server.h), decoding each request into a batch and answering from what
 * otlp_receiver_deliver() says.
 *
 * Owns: the struct otlp_grpc hanging off the receiver (the server and the per-method
 * contexts). Handlers run on the adapter's worker threads and answer synchronously. */
#include "otlp_grpc.h"

#include <stdlib.h>
#include <unistd.h>

#include "../core/auth.h"
#include "../core/grpc_server.h"
#include "../core/log.h"
#include "otlp_internal.h"

#define BYTES_PER_MIB (1024 * 1024)
/* Worker threads decode requests and run the pipeline, so one per CPU; at least two so a
 * slow handler never stalls socket I/O, and a cap so a huge host does not get hundreds. */
#define MIN_WORKERS 2
#define MAX_WORKERS 64

static const char *const export_methods[LG_SIGNAL_COUNT] = {
    [LG_SIGNAL_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [LG_SIGNAL_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    [LG_SIGNAL_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

struct otlp_grpc_method {
    struct otlp_receiver *r;
    enum lg_signal signal;
};

struct otlp_grpc {
    struct lg_grpc_server *srv;
    struct otlp_grpc_method methods[LG_SIGNAL_COUNT];
};

/* The mapping written in core/common.h: permanent errors are INVALID_ARGUMENT, back-pressure
 * is UNAVAILABLE or RESOURCE_EXHAUSTED (both retried by OTLP clients), the rest INTERNAL. */
static int status_for(int code)
{
    switch (code) {
    case LG_OK: return LG_GRPC_OK;
    case LG_EINVAL:
    case LG_ETOOBIG: return LG_GRPC_INVALID_ARGUMENT;
    case LG_EAGAIN: return LG_GRPC_UNAVAILABLE;
    case LG_EFULL: return LG_GRPC_RESOURCE_EXHAUSTED;
    default: return LG_GRPC_INTERNAL;
    }
}

static void on_export(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    const struct otlp_grpc_method *m = arg;
    struct lg_authenticator *auth = m->r->auth[OTLP_GRPC];
    if (auth != NULL) {
        /* Before decoding: an unauthenticated client costs us no more than this lookup. */
        size_t vlen = 0;
        const char *v = lg_grpc_call_metadata(call, lg_auth_grpc_metadata_key(auth), &vlen);
        if (!lg_auth_check(auth, v, vlen)) {
            lg_debug(m->r->c->id, "OTLP/gRPC %s: %s credentials, refused", lg_signal_name(m->signal),
                     v == NULL ? "missing" : "invalid");
            lg_grpc_call_finish(call, LG_GRPC_UNAUTHENTICATED, "missing or invalid credentials", NULL, 0);
            return;
        }
    }
    struct lg_batch *b = NULL;
    struct lg_err err;
    int rc = lg_batch_decode_indexed(m->signal, req, len, &b, &err);
    if (rc != LG_OK) {
        lg_grpc_call_finish(call, status_for(rc), err.msg, NULL, 0);
        return;
    }
    struct otlp_result res;
    otlp_receiver_deliver(m->r, OTLP_GRPC, b, &res);
    lg_batch_unref(b);
    if (res.code != LG_OK) {
        lg_grpc_call_finish(call, status_for(res.code), res.message, NULL, 0);
        return;
    }
    size_t out_len = 0;
    uint8_t *out = otlp_response_pack(m->signal, &res, &out_len);
    if (out == NULL) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "out of memory building the response", NULL, 0);
        return;
    }
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL, out, out_len);
    free(out);
}

static int worker_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < MIN_WORKERS)
        return MIN_WORKERS;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

int otlp_grpc_start(struct otlp_receiver *r, struct lg_err *err)
{
    const struct otlp_grpc_conf *g = &r->conf->protocols.grpc;
    struct otlp_grpc *og = calloc(1, sizeof *og);
    if (og == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    struct lg_grpc_server_opts o = {
        .endpoint = g->endpoint,
        .max_recv_msg_size = (size_t)g->max_recv_msg_size_mib * BYTES_PER_MIB,
        .max_concurrent_streams = (int)g->max_concurrent_streams,
        .num_workers = worker_count(),
        .keepalive_time_ns = g->keepalive_time_ns,
        .keepalive_timeout_ns = g->keepalive_timeout_ns,
        .max_connection_idle_ns = g->max_connection_idle_ns,
        .max_connection_age_ns = g->max_connection_age_ns,
        .max_connection_age_grace_ns = g->max_connection_age_grace_ns,
        .min_ping_interval_ns = g->min_ping_time_ns,
        .permit_without_stream = g->permit_without_stream,
    };
    if (g->has_tls) {
        o.tls_cert_file = g->tls.cert_file;
        o.tls_key_file = g->tls.key_file;
        o.tls_client_ca_file = g->tls.client_ca_file;
        o.tls_min_version = g->tls.min_version;
        o.tls_reload_interval_ns = g->tls.reload_interval_ns;
    }
    og->srv = lg_grpc_server_create(&o, err);
    if (og->srv == NULL) {
        free(og);
        return LG_EINVAL;
    }
    int rc = LG_OK;
    /* As the Collector does, a service is offered only for signals some pipeline takes from
     * this receiver; the others answer UNIMPLEMENTED instead of silently dropping data. */
    for (int s = 0; s < LG_SIGNAL_COUNT && rc == LG_OK; s++) {
        if (r->c->next[s].n == 0)
            continue;
        og->methods[s] = (struct otlp_grpc_method){.r = r, .signal = (enum lg_signal)s};
        rc = lg_grpc_server_add_method(og->srv, export_methods[s], on_export, &og->methods[s], err);
    }
    if (rc == LG_OK)
        rc = lg_grpc_server_start(og->srv, err);
    if (rc != LG_OK) {
        lg_grpc_server_destroy(og->srv);
        free(og);
        return rc;
    }
    r->grpc = og;
    return LG_OK;
}

void otlp_grpc_shutdown(struct otlp_receiver *r, int64_t deadline_mono_ns)
{
    if (r->grpc != NULL)
        lg_grpc_server_shutdown(r->grpc->srv, deadline_mono_ns);
}

void otlp_grpc_destroy(struct otlp_receiver *r)
{
    if (r->grpc == NULL)
        return;
    lg_grpc_server_destroy(r->grpc->srv);
    free(r->grpc);
    r->grpc = NULL;
}

int otlp_grpc_bound_port(const struct otlp_receiver *r)
{
    return r->grpc != NULL ? lg_grpc_server_port(r->grpc->srv) : 0;
}
