/* core/grpc_client.h — a blocking unary gRPC client on gRPC C core (1.51): one channel
 * (connection, reconnects, TLS) shared by any number of threads, each call blocking its
 * caller until the status arrives or the timeout passes. Used by the load generator and the
 * OTLP exporter; with core/grpc_server.c it is the only code that calls grpc_* functions.
 *
 * Ownership: the caller owns the channel (lg_grpc_channel_destroy) and the response bytes
 * returned by lg_grpc_unary (free()). Option strings are copied at create time.
 * Status codes are enum lg_grpc_status (core/grpc_server.h). */
#ifndef LG_GRPC_CLIENT_H
#define LG_GRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "grpc_server.h"

struct lg_grpc_channel_opts {
    /** Plaintext HTTP/2 (no TLS). When false, TLS verifying the server against ca_file
     *  (or the system roots when ca_file is NULL). */
    bool insecure;
    const char *ca_file;   /* PEM roots to trust; NULL = system roots */
    const char *cert_file; /* client certificate for mTLS (with key_file); NULL = none */
    const char *key_file;
    /** Compress every request with gzip. */
    bool gzip;
    /** Largest request accepted for sending; 0 = unlimited. Larger ones fail locally with
     *  RESOURCE_EXHAUSTED. */
    size_t max_send_msg_size;
    /** Largest response accepted; 0 = gRPC default (4 MiB). */
    size_t max_recv_msg_size;
    /** :authority (and, with TLS, the name checked in the server's certificate) when it
     *  differs from the target's host. NULL = from the target. */
    const char *authority_override;
    /** Wait for the connection to become ready (within the call's timeout) instead of
     *  failing at once with UNAVAILABLE while it is down. */
    bool wait_for_ready;
    /** Client keepalive pings; 0 = off / gRPC default. */
    int64_t keepalive_time_ns;
    int64_t keepalive_timeout_ns;
    bool keepalive_permit_without_calls;
    /** Prepended to gRPC's user-agent, e.g. "llmgate/0.1.0"; NULL = none. */
    const char *user_agent;
};

struct lg_grpc_channel;

/** Creates a channel to `target` ("host:port", "dns:///host:port", "unix:/path"). Does not
 *  connect yet (the first call does). NULL with err filled on bad options/unreadable files. */
struct lg_grpc_channel *lg_grpc_channel_create(const char *target,
                                               const struct lg_grpc_channel_opts *o,
                                               struct lg_err *err);

/** Performs one unary call, blocking until it completes or `timeout_ns` (> 0) passes.
 *  `metadata` is NULL or a NULL-terminated list of lowercase key, value, key, value, ...
 *  Returns 0 when the call completed with any status: *status_code (required) and status_msg
 *  (the message, NUL-terminated, truncated to status_msg_len; may be NULL/0) say how; on OK,
 *  *resp (malloc'd, caller frees; NULL when empty) and *resp_len hold the response message
 *  (resp/resp_len may be NULL to discard it).
 *  Returns LG_EINVAL / LG_ENOMEM / LG_EINTERNAL when the call could not be started.
 *  Thread-safe. Connection failures and timeouts are statuses (UNAVAILABLE,
 *  DEADLINE_EXCEEDED), not return codes. */
int lg_grpc_unary(struct lg_grpc_channel *ch, const char *method, const char *const *metadata,
                  const uint8_t *req, size_t len, int64_t timeout_ns, uint8_t **resp,
                  size_t *resp_len, int *status_code, char *status_msg, size_t status_msg_len);

/** lg_grpc_unary, plus the binary `grpc-status-details-bin` trailer (a packed
 *  google.rpc.Status with details such as RetryInfo) when the server sent one:
 *  *details (malloc'd, caller frees) and *details_len; NULL / 0 otherwise. */
int lg_grpc_unary_ex(struct lg_grpc_channel *ch, const char *method, const char *const *metadata,
                     const uint8_t *req, size_t len, int64_t timeout_ns, uint8_t **resp,
                     size_t *resp_len, int *status_code, char *status_msg, size_t status_msg_len,
                     uint8_t **details, size_t *details_len);

/** Closes the channel. Calls in progress must have returned. NULL allowed. */
void lg_grpc_channel_destroy(struct lg_grpc_channel *ch);

#endif
