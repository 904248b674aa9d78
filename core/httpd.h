/* core/httpd.h — a small HTTP/1.1 server on libevent (evhttp), one event-loop thread per
 * server. Used by the OTLP/HTTP receiver and by the health_check and self-metrics endpoints.
 * Handlers run on the server's loop thread and must not block. */
#ifndef LG_HTTPD_H
#define LG_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

struct evhttp_request;
struct lg_http_server;

/** Handler for requests the server did not route elsewhere. `arg` is the caller's.
 *  The server owns the request's on-complete callback (evhttp_request_set_on_complete_cb):
 *  handlers must not set it. While the server is stopping, replies carry
 *  "Connection: close". */
typedef void (*lg_http_handler)(struct evhttp_request *req, void *arg);

struct lg_http_server_opts {
    const char *endpoint;       /* "host:port", ":port", "[::1]:port" */
    size_t max_body_size;       /* bytes on the wire; 0 = unlimited */
    size_t max_headers_size;    /* 0 = 64 KiB */
    int timeout_secs;           /* per-connection read/write timeout; 0 = 30 */
    const char *tls_cert_file;  /* NULL = plain HTTP */
    const char *tls_key_file;
    const char *tls_client_ca_file;
    const char *tls_min_version; /* "1.2" (default) or "1.3" */
    /* > 0: on a new connection, at most once per interval, the three TLS files are
     * stat()ed and, if any changed (inode, size or mtime), loaded into a new context that
     * later connections use. A failed load logs one warning and keeps the current
     * certificate. 0 = read once at start. */
    int64_t tls_reload_interval_ns;
};

/** Binds and starts the loop thread. A busy port is an error naming the endpoint.
 *  The server copies what it keeps from `opts`; the caller may free it afterwards. */
int lg_http_server_start(const struct lg_http_server_opts *opts, lg_http_handler handler,
                         void *arg, struct lg_http_server **out, struct lg_err *err);
/** Stops accepting, closes idle keep-alive connections, lets in-flight requests finish
 *  until the deadline (monotonic ns), then closes the rest and joins the thread.
 *  Idempotent; call from one thread, never from a handler (the loop thread). */
void lg_http_server_stop(struct lg_http_server *s, int64_t deadline_mono_ns);
/** Stops at once if still running (in-flight requests are cut), then frees. NULL allowed. */
void lg_http_server_free(struct lg_http_server *s);
/* Answering on another thread: a handler that hands the work to a worker calls
 * lg_http_defer() before returning (loop thread); the worker, when done, calls
 * lg_http_resume() exactly once, which runs fn(req, arg) on the loop thread, where fn sends
 * the reply. If the client went away meanwhile, sending frees the request as usual. A
 * stopping server waits for deferred requests like for any busy connection; once it has
 * finished (deadline passed), lg_http_resume returns LG_ECLOSED without calling fn and
 * without touching req: the worker then frees only its own state. */
typedef void (*lg_http_resume_fn)(struct evhttp_request *req, void *arg);
void lg_http_defer(struct lg_http_server *s);
int lg_http_resume(struct lg_http_server *s, struct evhttp_request *req, lg_http_resume_fn fn, void *arg);

/** The port actually bound (useful with port 0). */
int lg_http_server_port(const struct lg_http_server *s);

/** Splits "host:port" / ":port" / "[v6]:port" into host (empty = all interfaces) and port. */
int lg_parse_endpoint(const char *endpoint, char *host, size_t hostlen, int *port,
                      struct lg_err *err);

#endif
