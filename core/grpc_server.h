/* core/grpc_server.h — a unary-call gRPC server on gRPC C core (1.51), the one place (with
 * core/grpc_client.h) where the project touches grpc_* functions.
 *
 * Shape: one completion queue, `num_workers` threads blocked in grpc_completion_queue_next,
 * a fixed number of outstanding "request a call" tags re-armed as calls arrive. Each call is
 * a small state machine: requested -> message received -> handler -> one final batch
 * (initial metadata + response + status + close) -> freed.
 *
 * Handlers run on a worker thread, which also drives socket I/O inside gRPC core: a handler
 * must never block. It may answer at once (lg_grpc_call_finish from inside the handler) or
 * later from any other thread; either way every call handed to a handler must be finished
 * exactly once, or shutdown waits for it forever.
 *
 * Ownership: the server owns its calls; the request bytes passed to a handler are valid only
 * until the handler returns (copy them to keep them); lg_grpc_call_finish copies the response
 * bytes and message, then the call is freed by the server when gRPC is done with it.
 *
 * Life cycle: create -> add_method... -> start -> (serve) -> shutdown -> destroy.
 * create/destroy hold one grpc_init/grpc_shutdown reference each. */
#ifndef LG_GRPC_SERVER_H
#define LG_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/** gRPC status codes (the numbering is the gRPC protocol's, shared with the client). */
enum lg_grpc_status {
    LG_GRPC_OK = 0,
    LG_GRPC_CANCELLED = 1,
    LG_GRPC_UNKNOWN = 2,
    LG_GRPC_INVALID_ARGUMENT = 3,
    LG_GRPC_DEADLINE_EXCEEDED = 4,
    LG_GRPC_NOT_FOUND = 5,
    LG_GRPC_ALREADY_EXISTS = 6,
    LG_GRPC_PERMISSION_DENIED = 7,
    LG_GRPC_RESOURCE_EXHAUSTED = 8,
    LG_GRPC_FAILED_PRECONDITION = 9,
    LG_GRPC_ABORTED = 10,
    LG_GRPC_OUT_OF_RANGE = 11,
    LG_GRPC_UNIMPLEMENTED = 12,
    LG_GRPC_INTERNAL = 13,
    LG_GRPC_UNAVAILABLE = 14,
    LG_GRPC_DATA_LOSS = 15,
    LG_GRPC_UNAUTHENTICATED = 16,
};

/** Sends gRPC core's own log lines through lg_log (component "grpc"; gRPC errors become
 *  warnings) instead of gRPC's stderr format. Process-wide and idempotent; server and
 *  channel creation call it. GRPC_VERBOSITY still selects what gRPC emits. */
void lg_grpc_route_logs(void);

/** "OK", "INVALID_ARGUMENT", ... ("UNKNOWN_STATUS" for codes outside the table). */
const char *lg_grpc_status_name(int code);

struct lg_grpc_server_opts {
    /** "host:port". ":port" and "0.0.0.0:port" listen on every interface (IPv4 and IPv6),
     *  "localhost:port" on loopback only; port 0 picks a free port (see bound port). */
    const char *endpoint;
    /** Largest request message accepted, after decompression; 0 = gRPC default (4 MiB).
     *  Larger requests get RESOURCE_EXHAUSTED from gRPC core without reaching the handler. */
    size_t max_recv_msg_size;
    /** HTTP/2 streams per connection; 0 = gRPC default (unlimited). */
    int max_concurrent_streams;
    /** Completion-queue threads; 0 = 2. They decode and run handlers, so size for CPU. */
    int num_workers;
    /** Compress responses of 1 KiB or more with an algorithm the client lists in
     *  grpc-accept-encoding. Off by default: deflating costs more CPU than it saves on a
     *  LAN (measured: a 1 MiB echo spends most of its time in zlib), and OTLP responses are
     *  a few bytes anyway. Compressed requests are always accepted. */
    bool compress_responses;

    /* Keepalive, as the Collector's keepalive.server_parameters / enforcement_policy.
     * Durations in nanoseconds; 0 = gRPC core's default. */
    int64_t keepalive_time_ns;           /* ping an idle client after this long */
    int64_t keepalive_timeout_ns;        /* close if the ping is not answered in time */
    int64_t max_connection_idle_ns;      /* close connections idle this long */
    int64_t max_connection_age_ns;       /* close connections older than this (GOAWAY) */
    int64_t max_connection_age_grace_ns; /* then let in-flight calls finish this long */
    int64_t min_ping_interval_ns;        /* enforcement: clients pinging more often are cut */
    bool permit_without_stream;          /* enforcement: allow pings with no call open */

    /* TLS: cert_file + key_file enable TLS; client_ca_file adds mTLS (client certificates
     * required and verified against it). PEM files, read at start. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
    /** "1.2" (or NULL) only: gRPC core 1.51's C API offers TLS 1.2 and 1.3 and no way to
     *  raise the floor; other values are refused at create time rather than ignored. */
    const char *tls_min_version;
    /** > 0: on a new connection, re-read the PEM files if this long has passed since the
     *  last read (certificate rotation without restart). 0 = read once. */
    int64_t tls_reload_interval_ns;
};

struct lg_grpc_server;
struct lg_grpc_call;

/** Handles one unary call. `req` / `len` are the request message (decompressed, contiguous,
 *  valid until return; len may be 0). Must not block; must eventually finish `call`. */
typedef void (*lg_grpc_unary_fn)(void *arg, struct lg_grpc_call *call, const uint8_t *req,
                                 size_t len);

/** Validates options, reads TLS files and creates the server (nothing listens yet).
 *  The options' strings are copied. NULL with err filled on failure. */
struct lg_grpc_server *lg_grpc_server_create(const struct lg_grpc_server_opts *opts,
                                             struct lg_err *err);

/** Routes a full method path ("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
 *  to fn(arg, ...). Before start only. Unknown methods get UNIMPLEMENTED. */
int lg_grpc_server_add_method(struct lg_grpc_server *srv, const char *method, lg_grpc_unary_fn fn,
                              void *arg, struct lg_err *err);

/** Binds the endpoint and starts the workers. A busy port is an error:
 *  "cannot listen on localhost:4317: address in use". */
int lg_grpc_server_start(struct lg_grpc_server *srv, struct lg_err *err);

/** The port actually bound (useful with port 0); 0 before start. */
int lg_grpc_server_port(const struct lg_grpc_server *srv);

/** Stops accepting calls, lets in-flight calls finish until `deadline_mono_ns`
 *  (lg_now_mono_ns clock), then cancels the rest, waits for every handed-out call to be
 *  finished and joins the workers. Idempotent; a no-op before start. */
void lg_grpc_server_shutdown(struct lg_grpc_server *srv, int64_t deadline_mono_ns);

/** Shuts down (immediately) if still running, frees everything. NULL allowed. */
void lg_grpc_server_destroy(struct lg_grpc_server *srv);

/** Answers a call: status code (enum lg_grpc_status), optional message (NULL = none), and
 *  for OK the response message bytes (copied; NULL/0 = empty message). Any thread; exactly
 *  once per call. After it returns the call must not be used again. */
void lg_grpc_call_finish(struct lg_grpc_call *call, int status, const char *message,
                         const uint8_t *resp, size_t resp_len);

/** The full method path of the call ("/pkg.Service/Method"), NUL-terminated. */
const char *lg_grpc_call_method(const struct lg_grpc_call *call);

/** The value of request metadata `key` (lowercase), or NULL; *len set to its length. The
 *  pointer is valid until the call is finished. The first value wins when repeated. */
const char *lg_grpc_call_metadata(const struct lg_grpc_call *call, const char *key, size_t *len);

#endif
