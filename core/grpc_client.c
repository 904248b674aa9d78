/* core/grpc_client.c — blocking unary gRPC client on gRPC C core 1.51 (see grpc_client.h).
 *
 * Owns the grpc_channel and one grpc_init reference per channel. Each call gets its own
 * pluck completion queue, so calls on different threads never wait on each other's events. */
#include "grpc_client.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>

/* PEM files larger than this are certainly not certificates or keys. */
#define PEM_MAX_BYTES (1024 * 1024)
#define NS_PER_MS     1000000LL
/* Metadata pairs a caller may pass on one call; more is a caller bug, reported as EINVAL. */
#define MAX_METADATA 32
/* The pluck waits a little past the call deadline: gRPC itself ends the call at the deadline,
 * this margin only guards against waiting forever if it ever did not. */
#define PLUCK_MARGIN_NS (5 * 1000000000LL)

struct lg_grpc_channel {
    grpc_channel *channel;
    bool wait_for_ready;
};

static int read_pem(const char *field, const char *path, char **out, struct lg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lg_err_set(err, LG_EINVAL, "%s: cannot read %s: %s", field, path, strerror(errno));
    char *buf = malloc(PEM_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return lg_err_set(err, LG_ENOMEM, "%s: out of memory", field);
    }
    size_t n = fread(buf, 1, PEM_MAX_BYTES + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed || n > PEM_MAX_BYTES || n == 0) {
        free(buf);
        return lg_err_set(err, LG_EINVAL, "%s: %s is %s", field, path,
                          failed   ? "unreadable"
                          : n == 0 ? "empty"
                                   : "too large for a PEM file");
    }
    buf[n] = '\0';
    *out = buf;
    return LG_OK;
}

static int ns_to_ms_arg(int64_t ns)
{
    int64_t ms = ns / NS_PER_MS;
    if (ms > INT_MAX)
        return INT_MAX;
    return ms < 1 ? 1 : (int)ms;
}

/* Channel arguments; room for every option this adapter sets. */
struct chan_args {
    grpc_arg args[12];
    size_t n;
};

static void int_arg(struct chan_args *a, const char *key, int v)
{
    a->args[a->n++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = v};
}

static void str_arg(struct chan_args *a, const char *key, const char *v)
{
    a->args[a->n++] =
        (grpc_arg){.type = GRPC_ARG_STRING, .key = (char *)key, .value.string = (char *)v};
}

static int size_arg(size_t v)
{
    return v > INT_MAX ? INT_MAX : (int)v;
}

struct lg_grpc_channel *
lg_grpc_channel_create(const char *target, const struct lg_grpc_channel_opts *o, struct lg_err *err)
{
    static const struct lg_grpc_channel_opts defaults = {.insecure = true};
    if (o == NULL)
        o = &defaults;
    if (target == NULL || target[0] == '\0') {
        lg_err_set(err, LG_EINVAL, "endpoint: must be set (host:port)");
        return NULL;
    }
    if ((o->cert_file != NULL) != (o->key_file != NULL)) {
        lg_err_set(err, LG_EINVAL, "tls: cert_file and key_file must be set together");
        return NULL;
    }
    if (o->insecure && (o->ca_file != NULL || o->cert_file != NULL)) {
        lg_err_set(err, LG_EINVAL,
                   "tls: insecure (plaintext) cannot be combined with "
                   "ca_file/cert_file");
        return NULL;
    }

    char *ca = NULL, *cert = NULL, *key = NULL;
    if (o->ca_file != NULL && read_pem("tls.ca_file", o->ca_file, &ca, err) != LG_OK)
        return NULL;
    if (o->cert_file != NULL && (read_pem("tls.cert_file", o->cert_file, &cert, err) != LG_OK ||
                                 read_pem("tls.key_file", o->key_file, &key, err) != LG_OK)) {
        free(ca);
        free(cert);
        return NULL;
    }

    struct lg_grpc_channel *ch = calloc(1, sizeof *ch);
    if (ch == NULL) {
        free(ca);
        free(cert);
        free(key);
        lg_err_set(err, LG_ENOMEM, "out of memory");
        return NULL;
    }
    ch->wait_for_ready = o->wait_for_ready;

    struct chan_args a = {.n = 0};
    if (o->gzip)
        int_arg(&a, GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM, GRPC_COMPRESS_GZIP);
    /* gRPC's "unlimited" is -1 */
    int_arg(&a, GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
            o->max_send_msg_size == 0 ? -1 : size_arg(o->max_send_msg_size));
    if (o->max_recv_msg_size > 0)
        int_arg(&a, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, size_arg(o->max_recv_msg_size));
    if (o->authority_override != NULL) {
        str_arg(&a, GRPC_ARG_DEFAULT_AUTHORITY, o->authority_override);
        if (!o->insecure)
            str_arg(&a, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, o->authority_override);
    }
    if (o->keepalive_time_ns > 0)
        int_arg(&a, GRPC_ARG_KEEPALIVE_TIME_MS, ns_to_ms_arg(o->keepalive_time_ns));
    if (o->keepalive_timeout_ns > 0)
        int_arg(&a, GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ns_to_ms_arg(o->keepalive_timeout_ns));
    if (o->keepalive_permit_without_calls)
        int_arg(&a, GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    if (o->user_agent != NULL)
        str_arg(&a, GRPC_ARG_PRIMARY_USER_AGENT_STRING, o->user_agent);
    grpc_channel_args cargs = {.num_args = a.n, .args = a.args};

    lg_grpc_route_logs();
    grpc_init();
    grpc_channel_credentials *creds;
    if (o->insecure) {
        creds = grpc_insecure_credentials_create();
    } else {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
        creds = grpc_ssl_credentials_create_ex(ca, cert != NULL ? &pair : NULL, NULL, NULL);
    }
    free(ca);
    free(cert);
    free(key);
    if (creds == NULL) {
        grpc_shutdown();
        free(ch);
        lg_err_set(err, LG_EINVAL, "tls: gRPC refused the credentials");
        return NULL;
    }
    /* grpc_channel_create never returns NULL: a bad target yields a "lame" channel whose
     * calls fail with a status, which callers see like any other failure */
    ch->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    return ch;
}

/* Copies a byte buffer into one malloc'd block (NULL with *len 0 when empty). */
static int buffer_to_bytes(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    size_t total = grpc_byte_buffer_length(bb);
    if (total == 0)
        return LG_OK;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return LG_EINTERNAL;
    uint8_t *buf = malloc(total);
    if (buf == NULL) {
        grpc_byte_buffer_reader_destroy(&reader);
        return LG_ENOMEM;
    }
    size_t off = 0;
    grpc_slice s;
    while (grpc_byte_buffer_reader_next(&reader, &s)) {
        size_t sl = GRPC_SLICE_LENGTH(s);
        if (sl > total - off)
            sl = total - off;
        memcpy(buf + off, GRPC_SLICE_START_PTR(s), sl);
        off += sl;
        grpc_slice_unref(s);
    }
    grpc_byte_buffer_reader_destroy(&reader);
    *out = buf;
    *len = off;
    return LG_OK;
}

int lg_grpc_unary(struct lg_grpc_channel *ch, const char *method, const char *const *metadata,
                  const uint8_t *req, size_t len, int64_t timeout_ns, uint8_t **resp,
                  size_t *resp_len, int *status_code, char *status_msg, size_t status_msg_len)
{
    return lg_grpc_unary_ex(ch, method, metadata, req, len, timeout_ns, resp, resp_len, status_code,
                            status_msg, status_msg_len, NULL, NULL);
}

/* Copies the value of the binary trailer `key` (gRPC core has already base64-decoded it). */
static void copy_trailer(const grpc_metadata_array *md, const char *key, uint8_t **out, size_t *out_len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) != klen || memcmp(GRPC_SLICE_START_PTR(*k), key, klen) != 0)
            continue;
        size_t n = GRPC_SLICE_LENGTH(md->metadata[i].value);
        uint8_t *p = malloc(n ? n : 1);
        if (p == NULL)
            return;
        memcpy(p, GRPC_SLICE_START_PTR(md->metadata[i].value), n);
        *out = p;
        *out_len = n;
        return;
    }
}

int lg_grpc_unary_ex(struct lg_grpc_channel *ch, const char *method, const char *const *metadata,
                     const uint8_t *req, size_t len, int64_t timeout_ns, uint8_t **resp,
                     size_t *resp_len, int *status_code, char *status_msg, size_t status_msg_len,
                     uint8_t **status_details, size_t *status_details_len)
{
    if (status_details != NULL)
        *status_details = NULL;
    if (status_details_len != NULL)
        *status_details_len = 0;
    if (resp != NULL)
        *resp = NULL;
    if (resp_len != NULL)
        *resp_len = 0;
    if (status_msg != NULL && status_msg_len > 0)
        status_msg[0] = '\0';
    if (ch == NULL || method == NULL || status_code == NULL || timeout_ns <= 0 ||
        (req == NULL && len > 0))
        return LG_EINVAL;

    grpc_metadata md[MAX_METADATA];
    size_t nmd = 0;
    if (metadata != NULL) {
        for (; metadata[2 * nmd] != NULL; nmd++) {
            if (nmd == MAX_METADATA || metadata[2 * nmd + 1] == NULL)
                return LG_EINVAL;
            memset(&md[nmd], 0, sizeof md[nmd]);
            md[nmd].key = grpc_slice_from_static_string(metadata[2 * nmd]);
            md[nmd].value = grpc_slice_from_static_string(metadata[2 * nmd + 1]);
        }
    }

    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(timeout_ns, GPR_TIMESPAN));
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               method_slice, NULL, deadline, NULL);
    if (call == NULL) {
        grpc_completion_queue_shutdown(cq);
        grpc_completion_queue_destroy(cq);
        return LG_EINTERNAL;
    }

    /* copied: after a deadline or cancel, gRPC core may still hold the slice in a socket
     * write after this function returned, so it must not point into the caller's buffer */
    grpc_slice req_slice =
        len > 0 ? grpc_slice_from_copied_buffer((const char *)req, len) : grpc_empty_slice();
    grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_byte_buffer *recv = NULL;
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = nmd;
    ops[0].data.send_initial_metadata.metadata = nmd > 0 ? md : NULL;
    if (ch->wait_for_ready)
        ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
                       GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;

    int rc = LG_OK;
    int tag; /* its address identifies the one batch on this queue */
    if (grpc_call_start_batch(call, ops, LG_ARRAY_LEN(ops), &tag, NULL) != GRPC_CALL_OK) {
        rc = LG_EINTERNAL;
    } else {
        gpr_timespec pluck_until =
            gpr_time_add(deadline, gpr_time_from_nanos(PLUCK_MARGIN_NS, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, pluck_until, NULL);
        if (ev.type != GRPC_OP_COMPLETE) {
            /* never seen: gRPC always completes the batch by the deadline. Cancel and wait
             * for the batch so nothing refers to our stack afterwards. */
            grpc_call_cancel(call, NULL);
            grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            status = GRPC_STATUS_DEADLINE_EXCEEDED;
        }
    }

    if (rc == LG_OK) {
        *status_code = (int)status;
        if (status_msg != NULL && status_msg_len > 0) {
            size_t dl = GRPC_SLICE_LENGTH(details);
            if (dl >= status_msg_len)
                dl = status_msg_len - 1;
            memcpy(status_msg, GRPC_SLICE_START_PTR(details), dl);
            status_msg[dl] = '\0';
        }
        if (status != GRPC_STATUS_OK && status_details != NULL && status_details_len != NULL)
            copy_trailer(&trailing_md, "grpc-status-details-bin", status_details, status_details_len);
        if (status == GRPC_STATUS_OK && recv != NULL && resp != NULL) {
            size_t rl = 0;
            rc = buffer_to_bytes(recv, resp, &rl);
            if (resp_len != NULL)
                *resp_len = rl;
        }
    }

    if (recv != NULL)
        grpc_byte_buffer_destroy(recv);
    grpc_byte_buffer_destroy(send);
    grpc_slice_unref(req_slice);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    return rc;
}

void lg_grpc_channel_destroy(struct lg_grpc_channel *ch)
{
    if (ch == NULL)
        return;
    grpc_channel_destroy(ch->channel);
    grpc_shutdown();
    free(ch);
}
