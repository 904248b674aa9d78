/* receiver/otlp_internal.h — shared between the otlp receiver's component (otlp.c) and its
 * two transports (otlp_grpc.c over the gRPC core adapter, otlp_http.c over libevent).
 *
 * A transport decodes a request into a batch and calls otlp_receiver_deliver(), which
 * drops invalid items (counted into partial_success), counts accepted/refused items with
 * the Collector's metric names, and hands the batch to the pipelines. The transport then
 * answers the client from the returned code and the partial-success fields. */
#ifndef LG_RECEIVER_OTLP_INTERNAL_H
#define LG_RECEIVER_OTLP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/component.h"
#include "../core/telemetry.h"

struct otlp_tls_conf {
    const char *cert_file;
    const char *key_file;
    const char *client_ca_file;
    const char *ca_file;
    const char *min_version;
    const char *max_version;
    int64_t reload_interval_ns;
};

/* `auth:` on a protocol, as the Collector's configauth: the ID of an authenticator
 * extension (bearertokenauth) listed in service.extensions. */
struct otlp_auth_conf {
    const char *authenticator;
};

struct otlp_keepalive_server_conf {
    int64_t max_connection_idle_ns, max_connection_age_ns, max_connection_age_grace_ns;
    int64_t time_ns, timeout_ns;
};

struct otlp_keepalive_enforcement_conf {
    int64_t min_time_ns;
    bool permit_without_stream;
};

struct otlp_keepalive_conf {
    struct otlp_keepalive_server_conf server_parameters;
    struct otlp_keepalive_enforcement_conf enforcement_policy;
};

struct otlp_grpc_conf {
    const char *endpoint;            /* host:port */
    int64_t max_recv_msg_size_mib;   /* default 16 */
    int64_t max_concurrent_streams;  /* 0 = gRPC default */
    int64_t read_buffer_size, write_buffer_size;
    bool include_metadata;
    const char *transport;           /* "tcp" */
    struct otlp_tls_conf tls;
    bool has_tls;
    struct otlp_auth_conf auth;
    bool has_auth;
    struct otlp_keepalive_conf keepalive; /* as in YAML; the flat copies below are filled from it */
    int64_t keepalive_time_ns, keepalive_timeout_ns;
    int64_t max_connection_idle_ns, max_connection_age_ns, max_connection_age_grace_ns;
    int64_t min_ping_time_ns;
    bool permit_without_stream;
};

struct otlp_cors_conf {
    struct lg_strlist allowed_origins;
    struct lg_strlist allowed_headers;
    int64_t max_age;
};

struct otlp_http_conf {
    const char *endpoint;            /* host:port */
    int64_t max_request_body_size;   /* bytes, default 20 MiB, applied after decompression too */
    bool include_metadata;
    const char *traces_url_path, *metrics_url_path, *logs_url_path;
    struct otlp_cors_conf cors;
    bool has_cors;
    struct otlp_tls_conf tls;
    bool has_tls;
    struct otlp_auth_conf auth;
    bool has_auth;
    int64_t read_timeout_ns, read_header_timeout_ns, write_timeout_ns, idle_timeout_ns;
};

struct otlp_protocols_conf {
    struct otlp_grpc_conf grpc;
    bool has_grpc;
    struct otlp_http_conf http;
    bool has_http;
};

struct otlp_conf {
    struct otlp_protocols_conf protocols;
};

enum otlp_transport { OTLP_GRPC = 0, OTLP_HTTP = 1 };

struct otlp_grpc;  /* otlp_grpc.c */
struct lg_authenticator; /* core/auth.h */
struct otlp_http;  /* otlp_http.c */

struct otlp_receiver {
    struct lg_component *c;
    struct otlp_conf *conf;
    /* [transport][signal] */
    struct lg_counter *accepted[2][LG_SIGNAL_COUNT];
    struct lg_counter *refused[2][LG_SIGNAL_COUNT];
    struct otlp_grpc *grpc;
    struct otlp_http *http;
    /* [transport]: the protocol's authenticator (owned by its extension), NULL = open */
    struct lg_authenticator *auth[2];
};

/** Result of delivering one request. */
struct otlp_result {
    int code;                 /* LG_OK or LG_E* from the pipeline */
    int64_t rejected;         /* items dropped as invalid (partial_success) */
    char message[256];        /* partial_success.error_message or refusal reason */
};

/** Validates (drops spans/records with malformed IDs, counting them), counts and hands the
 *  batch to the pipelines. Borrows b. Thread-safe. */
void otlp_receiver_deliver(struct otlp_receiver *r, enum otlp_transport t, struct lg_batch *b,
                           struct otlp_result *res);

/** Builds the Export*ServiceResponse for a result into `arena`-free stack storage and packs
 *  it: protobuf bytes (malloc'd). JSON encoding is done by the HTTP transport with lg_otlp_json. */
uint8_t *otlp_response_pack(enum lg_signal s, const struct otlp_result *res, size_t *len);
/** Fills a response message for a result (for JSON encoding); `storage` must be a
 *  struct otlp_response_storage that outlives the returned message. */
struct otlp_response_storage {
    union {
        lg_traces_resp traces;
        lg_metrics_resp metrics;
        lg_logs_resp logs;
    } resp;
    union {
        lg_traces_partial traces;
        lg_metrics_partial metrics;
        lg_logs_partial logs;
    } partial;
};
ProtobufCMessage *otlp_response_build(enum lg_signal s, const struct otlp_result *res,
                                      struct otlp_response_storage *storage);

/* Transports: start returns 0 or LG_E* with err naming the config path on bind failure. */
int otlp_grpc_start(struct otlp_receiver *r, struct lg_err *err);
void otlp_grpc_shutdown(struct otlp_receiver *r, int64_t deadline_mono_ns);
void otlp_grpc_destroy(struct otlp_receiver *r);
int otlp_http_start(struct otlp_receiver *r, struct lg_err *err);
void otlp_http_shutdown(struct otlp_receiver *r, int64_t deadline_mono_ns);
void otlp_http_destroy(struct otlp_receiver *r);

#endif
