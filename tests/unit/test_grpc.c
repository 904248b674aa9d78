/* tests/unit/test_grpc.c — the gRPC server and client adapters (core/grpc_server.c,
 * core/grpc_client.c) against each other on 127.0.0.1: round trips, statuses, gzip on the
 * wire, size limits, bind errors, deferred answers, shutdown with calls in flight, many
 * threads on one channel, TLS and mTLS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/grpc_client.h"
#include "core/grpc_server.h"

#define ECHO       "/test.Echo/Echo"
#define STATUS     "/test.Echo/Status"
#define META       "/test.Echo/Meta"
#define LATER      "/test.Echo/Later"
#define HOLD       "/test.Echo/Hold"
#define TIMEOUT_NS (10 * 1000000000LL)
#define MIB        (1024 * 1024)

/* ---------------------------------------------------------------- test server */

struct later_item {
    struct lg_grpc_call *call;
    uint8_t *data;
    size_t len;
    struct later_item *next;
};

struct fixture {
    struct lg_grpc_server *srv;
    int port;
    char target[64];
    struct lg_grpc_channel *ch;

    /* LATER: calls answered by a separate thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct later_item *later_head;
    bool later_stop;
    pthread_t later_thread;
    bool later_running;

    /* HOLD: one call parked until the test finishes it */
    struct lg_grpc_call *held;
};

static void echo(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    (void)arg;
    /* handlers run on server threads, where a cmocka assert cannot unwind: report instead */
    if (strcmp(lg_grpc_call_method(call), ECHO) != 0)
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "wrong method reported", NULL, 0);
    else
        lg_grpc_call_finish(call, LG_GRPC_OK, NULL, req, len);
}

/* The request is "<code>:<message>". */
static void status_of_request(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    (void)arg;
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)len, (const char *)req);
    char *colon = strchr(buf, ':');
    if (colon == NULL) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "test request without ':'", NULL, 0);
        return;
    }
    *colon = '\0';
    lg_grpc_call_finish(call, atoi(buf), colon + 1, NULL, 0);
}

/* Answers with the value of request metadata "x-test" (or "<none>"). */
static void meta(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    (void)arg;
    (void)req;
    (void)len;
    size_t vl = 0;
    const char *v = lg_grpc_call_metadata(call, "x-test", &vl);
    if (v == NULL) {
        v = "<none>";
        vl = strlen(v);
    }
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL, (const uint8_t *)v, vl);
}

static void later(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    struct fixture *f = arg;
    struct later_item *it = calloc(1, sizeof *it);
    it->call = call;
    it->data = malloc(len + 1);
    memcpy(it->data, req, len); /* the request bytes die when the handler returns */
    it->len = len;
    pthread_mutex_lock(&f->mu);
    it->next = f->later_head;
    f->later_head = it;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void *later_main(void *arg)
{
    struct fixture *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->later_head == NULL && !f->later_stop)
            pthread_cond_wait(&f->cv, &f->mu);
        if (f->later_head == NULL)
            break;
        struct later_item *it = f->later_head;
        f->later_head = it->next;
        pthread_mutex_unlock(&f->mu);
        lg_grpc_call_finish(it->call, LG_GRPC_OK, NULL, it->data, it->len);
        free(it->data);
        free(it);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void hold(void *arg, struct lg_grpc_call *call, const uint8_t *req, size_t len)
{
    (void)req;
    (void)len;
    struct fixture *f = arg;
    pthread_mutex_lock(&f->mu);
    f->held = call;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static struct lg_grpc_call *wait_held(struct fixture *f)
{
    pthread_mutex_lock(&f->mu);
    while (f->held == NULL)
        pthread_cond_wait(&f->cv, &f->mu);
    struct lg_grpc_call *c = f->held;
    f->held = NULL;
    pthread_mutex_unlock(&f->mu);
    return c;
}

static struct lg_grpc_server *make_server(struct fixture *f, const struct lg_grpc_server_opts *o)
{
    struct lg_err err = {{0}};
    struct lg_grpc_server *srv = lg_grpc_server_create(o, &err);
    if (srv == NULL)
        fail_msg("create: %s", err.msg);
    assert_int_equal(lg_grpc_server_add_method(srv, ECHO, echo, f, &err), 0);
    assert_int_equal(lg_grpc_server_add_method(srv, STATUS, status_of_request, f, &err), 0);
    assert_int_equal(lg_grpc_server_add_method(srv, META, meta, f, &err), 0);
    assert_int_equal(lg_grpc_server_add_method(srv, LATER, later, f, &err), 0);
    assert_int_equal(lg_grpc_server_add_method(srv, HOLD, hold, f, &err), 0);
    return srv;
}

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
}

/* Starts a server with opts (endpoint defaults to 127.0.0.1:0) and an insecure channel. */
static void fixture_start(struct fixture *f, struct lg_grpc_server_opts *o,
                          const struct lg_grpc_channel_opts *co)
{
    if (o->endpoint == NULL)
        o->endpoint = "127.0.0.1:0";
    f->srv = make_server(f, o);
    struct lg_err err = {{0}};
    if (lg_grpc_server_start(f->srv, &err) != 0)
        fail_msg("start: %s", err.msg);
    f->port = lg_grpc_server_port(f->srv);
    assert_true(f->port > 0);
    snprintf(f->target, sizeof f->target, "127.0.0.1:%d", f->port);
    struct lg_grpc_channel_opts def = {.insecure = true, .wait_for_ready = true};
    f->ch = lg_grpc_channel_create(f->target, co != NULL ? co : &def, &err);
    if (f->ch == NULL)
        fail_msg("channel: %s", err.msg);
    assert_int_equal(pthread_create(&f->later_thread, NULL, later_main, f), 0);
    f->later_running = true;
}

static void fixture_stop(struct fixture *f)
{
    lg_grpc_channel_destroy(f->ch);
    f->ch = NULL;
    lg_grpc_server_shutdown(f->srv, lg_now_mono_ns() + TIMEOUT_NS);
    if (f->later_running) {
        pthread_mutex_lock(&f->mu);
        f->later_stop = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->later_thread, NULL);
        f->later_running = false;
    }
    lg_grpc_server_destroy(f->srv);
    f->srv = NULL;
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
}

struct reply {
    int rc;
    int status;
    char msg[256];
    uint8_t *data;
    size_t len;
};

static struct reply call_on(struct lg_grpc_channel *ch, const char *method, const char *const *md,
                            const void *req, size_t len, int64_t timeout_ns)
{
    struct reply r = {0};
    r.status = -1;
    r.rc = lg_grpc_unary(ch, method, md, req, len, timeout_ns, &r.data, &r.len, &r.status, r.msg,
                         sizeof r.msg);
    return r;
}

static struct reply call(struct fixture *f, const char *method, const void *req, size_t len)
{
    return call_on(f->ch, method, NULL, req, len, TIMEOUT_NS);
}

/* ---------------------------------------------------------------- tests */

static void test_unary_round_trip_returns_the_same_bytes(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {0};
    fixture_start(&f, &o, NULL);

    struct reply r = call(&f, ECHO, "hello", 5);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "hello", 5);
    free(r.data);

    r = call(&f, ECHO, NULL, 0); /* an empty message is a valid request */
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_int_equal(r.len, 0);
    assert_null(r.data);

    /* big enough to arrive in many slices, so the server joins them */
    size_t big = 3 * MIB;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 7 + i / 251);
    struct lg_grpc_channel_opts co = {.insecure = true, .max_recv_msg_size = 8 * MIB};
    struct lg_err err;
    struct lg_grpc_channel *ch = lg_grpc_channel_create(f.target, &co, &err);
    assert_non_null(ch);
    r = call_on(ch, ECHO, NULL, buf, big, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_int_equal(r.len, big);
    assert_memory_equal(r.data, buf, big);
    free(r.data);
    free(buf);
    lg_grpc_channel_destroy(ch);

    const char *md[] = {"x-test", "value-1", "x-other", "2", NULL};
    r = call_on(f.ch, META, md, "", 0, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_int_equal(r.len, 7);
    assert_memory_equal(r.data, "value-1", 7);
    free(r.data);
    r = call(&f, META, "", 0);
    assert_int_equal(r.len, 6);
    assert_memory_equal(r.data, "<none>", 6);
    free(r.data);

    fixture_stop(&f);
}

static void test_status_and_message_reach_the_client(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {0};
    fixture_start(&f, &o, NULL);

    const struct {
        int code;
        const char *msg;
    } cases[] = {
        {LG_GRPC_INVALID_ARGUMENT, "malformed protobuf: field 1"},
        {LG_GRPC_UNAVAILABLE, "over the memory limit, retry later"},
        {LG_GRPC_RESOURCE_EXHAUSTED, "queue full: 100% (of 1000)"},
        {LG_GRPC_INTERNAL, "a message with\nnewline and \xc3\xa9"},
    };
    for (size_t i = 0; i < LG_ARRAY_LEN(cases); i++) {
        char req[256];
        int n = snprintf(req, sizeof req, "%d:%s", cases[i].code, cases[i].msg);
        struct reply r = call(&f, STATUS, req, (size_t)n);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.status, cases[i].code);
        assert_string_equal(r.msg, cases[i].msg);
        assert_null(r.data);
    }

    struct reply r = call(&f, "/test.Echo/Nope", "x", 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, LG_GRPC_UNIMPLEMENTED);
    assert_non_null(strstr(r.msg, "/test.Echo/Nope"));

    /* a tiny client buffer truncates the message but stays NUL-terminated */
    char small[8];
    int status = -1;
    assert_int_equal(lg_grpc_unary(f.ch, STATUS, NULL, (const uint8_t *)"3:abcdefghijkl", 14,
                                   TIMEOUT_NS, NULL, NULL, &status, small, sizeof small),
                     0);
    assert_int_equal(status, LG_GRPC_INVALID_ARGUMENT);
    assert_string_equal(small, "abcdefg");

    assert_string_equal(lg_grpc_status_name(LG_GRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    assert_string_equal(lg_grpc_status_name(99), "UNKNOWN_STATUS");
    fixture_stop(&f);
}

/* A TCP forwarder that counts the bytes going each way, to see what is on the wire. */
struct counting_proxy {
    int listen_fd;
    int port;
    int upstream_port;
    pthread_t thread;
    _Atomic size_t up_bytes, down_bytes;
};

static bool pump(int from, int to, _Atomic size_t *count)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return false;
    atomic_fetch_add(count, (size_t)n);
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

static void *proxy_main(void *arg)
{
    struct counting_proxy *p = arg;
    int client = accept(p->listen_fd, NULL, NULL);
    if (client < 0)
        return NULL;
    int up = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->upstream_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(up, (struct sockaddr *)&a, sizeof a) == 0) {
        struct pollfd fds[2] = {{.fd = client, .events = POLLIN}, {.fd = up, .events = POLLIN}};
        for (;;) {
            if (poll(fds, 2, -1) < 0)
                break;
            if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(client, up, &p->up_bytes))
                break;
            if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
                !pump(up, client, &p->down_bytes))
                break;
        }
    }
    close(up);
    close(client);
    return NULL;
}

static void proxy_start(struct counting_proxy *p, int upstream_port)
{
    memset(p, 0, sizeof *p);
    p->upstream_port = upstream_port;
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(p->listen_fd, 4), 0);
    socklen_t al = sizeof a;
    getsockname(p->listen_fd, (struct sockaddr *)&a, &al);
    p->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static void test_gzip_request_is_compressed_on_the_wire_and_decompressed_by_the_server(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {.max_recv_msg_size = 4 * MIB, .compress_responses = true};
    fixture_start(&f, &o, NULL);

    struct counting_proxy p;
    proxy_start(&p, f.port);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", p.port);
    struct lg_grpc_channel_opts co = {.insecure = true, .gzip = true, .wait_for_ready = true};
    struct lg_err err;
    struct lg_grpc_channel *ch = lg_grpc_channel_create(target, &co, &err);
    assert_non_null(ch);

    size_t n = 2 * MIB;
    uint8_t *buf = malloc(n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)("llmgate "[i % 8]);
    struct reply r = call_on(ch, ECHO, NULL, buf, n, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.data, buf, n); /* the handler saw the decompressed bytes */
    free(r.data);
    lg_grpc_channel_destroy(ch);
    pthread_join(p.thread, NULL);
    close(p.listen_fd);

    /* 2 MiB of a repeating pattern gzips to a few KiB: far below the raw size each way
     * (the response too: compress_responses is on and the client accepts gzip) */
    assert_true(atomic_load(&p.up_bytes) < n / 20);
    assert_true(atomic_load(&p.down_bytes) < n / 20);

    /* the same payload without gzip really is big on the wire (the check above can fail) */
    proxy_start(&p, f.port);
    snprintf(target, sizeof target, "127.0.0.1:%d", p.port);
    co.gzip = false;
    ch = lg_grpc_channel_create(target, &co, &err);
    r = call_on(ch, ECHO, NULL, buf, n, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    lg_grpc_channel_destroy(ch);
    pthread_join(p.thread, NULL);
    close(p.listen_fd);
    assert_true(atomic_load(&p.up_bytes) > n);
    free(buf);
    fixture_stop(&f);
}

static void test_oversize_message_is_resource_exhausted_and_server_keeps_serving(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {.max_recv_msg_size = 64 * 1024};
    fixture_start(&f, &o, NULL);

    size_t n = 100 * 1024;
    uint8_t *buf = calloc(1, n);
    struct reply r = call(&f, ECHO, buf, n);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, LG_GRPC_RESOURCE_EXHAUSTED);
    assert_null(r.data);

    /* the limit applies to the decompressed size: 100 KiB of zeros gzips to ~100 bytes */
    struct lg_grpc_channel_opts co = {.insecure = true, .gzip = true};
    struct lg_err err;
    struct lg_grpc_channel *ch = lg_grpc_channel_create(f.target, &co, &err);
    r = call_on(ch, ECHO, NULL, buf, n, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_RESOURCE_EXHAUSTED);
    lg_grpc_channel_destroy(ch);

    r = call(&f, ECHO, buf, 60 * 1024); /* under the limit: fine */
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_int_equal(r.len, 60 * 1024);
    free(r.data);
    free(buf);
    fixture_stop(&f);
}

static void test_busy_port_is_an_error_naming_the_endpoint(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {.endpoint = "localhost:0"};
    fixture_start(&f, &o, NULL); /* localhost: loopback only, reachable on 127.0.0.1 */
    struct reply r = call(&f, ECHO, "x", 1);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);

    const char *hosts[] = {"localhost", "127.0.0.1"};
    for (size_t i = 0; i < LG_ARRAY_LEN(hosts); i++) {
        char ep[64], want[128];
        snprintf(ep, sizeof ep, "%s:%d", hosts[i], f.port);
        snprintf(want, sizeof want, "cannot listen on %s: address in use", ep);
        struct lg_grpc_server_opts o2 = {.endpoint = ep};
        struct lg_err err = {{0}};
        struct lg_grpc_server *second = lg_grpc_server_create(&o2, &err);
        assert_non_null(second);
        assert_int_not_equal(lg_grpc_server_start(second, &err), 0);
        assert_string_equal(err.msg, want);
        assert_int_equal(lg_grpc_server_port(second), 0);
        lg_grpc_server_destroy(second);
    }

    /* the first server is unaffected */
    r = call(&f, ECHO, "y", 1);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    fixture_stop(&f);
}

static void test_handler_may_finish_later_from_another_thread(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {0};
    fixture_start(&f, &o, NULL);
    for (int i = 0; i < 20; i++) {
        char req[32];
        int n = snprintf(req, sizeof req, "later-%d", i);
        struct reply r = call(&f, LATER, req, (size_t)n);
        assert_int_equal(r.status, LG_GRPC_OK);
        assert_int_equal(r.len, (size_t)n);
        assert_memory_equal(r.data, req, (size_t)n);
        free(r.data);
    }
    fixture_stop(&f);
}

struct client_job {
    struct lg_grpc_channel *ch;
    const char *method;
    int64_t timeout_ns;
    struct reply r;
};

static void *client_job_main(void *arg)
{
    struct client_job *j = arg;
    j->r = call_on(j->ch, j->method, NULL, "held", 4, j->timeout_ns);
    return NULL;
}

struct shutdown_job {
    struct lg_grpc_server *srv;
    int64_t deadline;
};

static void *shutdown_main(void *arg)
{
    struct shutdown_job *s = arg;
    lg_grpc_server_shutdown(s->srv, s->deadline);
    return NULL;
}

static void test_shutdown_lets_an_in_flight_call_finish_before_the_deadline(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {0};
    fixture_start(&f, &o, NULL);

    struct client_job j = {.ch = f.ch, .method = HOLD, .timeout_ns = TIMEOUT_NS};
    pthread_t ct, st;
    pthread_create(&ct, NULL, client_job_main, &j);
    struct lg_grpc_call *held = wait_held(&f);

    struct shutdown_job s = {.srv = f.srv, .deadline = lg_now_mono_ns() + TIMEOUT_NS};
    pthread_create(&st, NULL, shutdown_main, &s);
    /* whether shutdown has begun yet or not, the held call completes normally */
    lg_grpc_call_finish(held, LG_GRPC_OK, NULL, (const uint8_t *)"done", 4);
    pthread_join(ct, NULL);
    pthread_join(st, NULL);
    assert_int_equal(j.r.status, LG_GRPC_OK);
    assert_int_equal(j.r.len, 4);
    assert_memory_equal(j.r.data, "done", 4);
    free(j.r.data);

    /* once shut down, no new call is accepted */
    struct reply r = call_on(f.ch, ECHO, NULL, "x", 1, 2 * 1000000000LL);
    assert_int_not_equal(r.status, LG_GRPC_OK);
    fixture_stop(&f);
}

static void test_shutdown_past_deadline_cancels_in_flight_calls_and_waits_for_them(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {0};
    fixture_start(&f, &o, NULL);

    struct client_job j = {.ch = f.ch, .method = HOLD, .timeout_ns = TIMEOUT_NS};
    pthread_t ct, st;
    pthread_create(&ct, NULL, client_job_main, &j);
    struct lg_grpc_call *held = wait_held(&f);

    struct shutdown_job s = {.srv = f.srv, .deadline = lg_now_mono_ns()}; /* already due */
    pthread_create(&st, NULL, shutdown_main, &s);
    /* the client returns only because shutdown cancelled its call ... */
    pthread_join(ct, NULL);
    assert_int_equal(j.r.rc, 0);
    assert_int_not_equal(j.r.status, LG_GRPC_OK);
    assert_null(j.r.data);
    /* ... and shutdown cannot complete until the handler's call is finished */
    lg_grpc_call_finish(held, LG_GRPC_OK, NULL, (const uint8_t *)"late", 4);
    pthread_join(st, NULL);
    fixture_stop(&f);
}

static void test_client_timeout_is_deadline_exceeded(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {0};
    fixture_start(&f, &o, NULL);
    struct reply r = call_on(f.ch, HOLD, NULL, "x", 1, 200 * 1000000LL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, LG_GRPC_DEADLINE_EXCEEDED);
    lg_grpc_call_finish(wait_held(&f), LG_GRPC_OK, NULL, NULL, 0); /* too late; harmless */
    fixture_stop(&f);
}

static void test_connection_refused_is_unavailable_not_a_local_error(void **state)
{
    (void)state;
    /* find a free port by binding and closing it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(a.sin_port));
    struct lg_err err;
    struct lg_grpc_channel_opts co = {.insecure = true};
    struct lg_grpc_channel *ch = lg_grpc_channel_create(target, &co, &err);
    assert_non_null(ch);
    struct reply r = call_on(ch, ECHO, NULL, "x", 1, TIMEOUT_NS);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, LG_GRPC_UNAVAILABLE);
    assert_int_equal(lg_grpc_unary(ch, ECHO, NULL, NULL, 0, 0, NULL, NULL, &r.status, NULL, 0),
                     LG_EINVAL); /* a timeout is required */
    lg_grpc_channel_destroy(ch);
}

#define CLIENT_THREADS   50
#define CALLS_PER_THREAD 20

struct hammer {
    struct lg_grpc_channel *ch;
    int id;
    int ok;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < CALLS_PER_THREAD; i++) {
        char req[64];
        int n = snprintf(req, sizeof req, "thread %d call %d", h->id, i);
        /* every fifth call goes through a deferred answer, the rest are answered inline */
        struct reply r =
            call_on(h->ch, i % 5 == 0 ? LATER : ECHO, NULL, req, (size_t)n, TIMEOUT_NS);
        if (r.rc == 0 && r.status == LG_GRPC_OK && r.len == (size_t)n &&
            memcmp(r.data, req, (size_t)n) == 0)
            h->ok++;
        free(r.data);
    }
    return NULL;
}

static void test_fifty_threads_share_one_channel(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {.num_workers = 4};
    fixture_start(&f, &o, NULL);
    pthread_t t[CLIENT_THREADS];
    struct hammer h[CLIENT_THREADS];
    for (int i = 0; i < CLIENT_THREADS; i++) {
        h[i] = (struct hammer){.ch = f.ch, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < CLIENT_THREADS; i++) {
        pthread_join(t[i], NULL);
        total += h[i].ok;
    }
    assert_int_equal(total, CLIENT_THREADS * CALLS_PER_THREAD);
    fixture_stop(&f);
}

static void test_bad_options_are_refused_with_the_field_named(void **state)
{
    (void)state;
    struct lg_err err = {{0}};
    struct lg_grpc_server_opts o = {.endpoint = NULL};
    assert_null(lg_grpc_server_create(&o, &err));
    assert_non_null(strstr(err.msg, "endpoint"));

    o = (struct lg_grpc_server_opts){.endpoint = "127.0.0.1:0", .tls_cert_file = "/x.pem"};
    assert_null(lg_grpc_server_create(&o, &err));
    assert_non_null(strstr(err.msg, "key_file"));

    o.tls_key_file = "/nonexistent/key.pem";
    o.tls_cert_file = "/nonexistent/cert.pem";
    assert_null(lg_grpc_server_create(&o, &err));
    assert_non_null(strstr(err.msg, "tls.cert_file: cannot read /nonexistent/cert.pem"));

    o = (struct lg_grpc_server_opts){.endpoint = "127.0.0.1:0", .keepalive_time_ns = -1};
    assert_null(lg_grpc_server_create(&o, &err));
    assert_non_null(strstr(err.msg, "keepalive"));

    o = (struct lg_grpc_server_opts){.endpoint = "127.0.0.1:0"};
    struct lg_grpc_server *srv = lg_grpc_server_create(&o, &err);
    assert_non_null(srv);
    assert_int_equal(lg_grpc_server_add_method(srv, "no-slash", echo, NULL, &err), LG_EINVAL);
    assert_int_equal(lg_grpc_server_add_method(srv, ECHO, echo, NULL, &err), 0);
    assert_int_equal(lg_grpc_server_add_method(srv, ECHO, echo, NULL, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    lg_grpc_server_destroy(srv); /* never started: must still clean up */

    const char *bad_endpoints[] = {"127.0.0.1:99999", "127.0.0.1", "localhost:43x", "[::1:4317"};
    for (size_t i = 0; i < LG_ARRAY_LEN(bad_endpoints); i++) {
        o = (struct lg_grpc_server_opts){.endpoint = bad_endpoints[i]};
        assert_null(lg_grpc_server_create(&o, &err));
        assert_non_null(strstr(err.msg, "endpoint: "));
        assert_non_null(strstr(err.msg, bad_endpoints[i]));
    }

    /* a documentation-range address that no interface here has */
    o = (struct lg_grpc_server_opts){.endpoint = "203.0.113.7:0"};
    srv = lg_grpc_server_create(&o, &err);
    assert_non_null(srv);
    assert_int_not_equal(lg_grpc_server_start(srv, &err), 0);
    assert_string_equal(err.msg,
                        "cannot listen on 203.0.113.7:0: address not available on this host");
    lg_grpc_server_destroy(srv);

    struct lg_grpc_channel_opts co = {.insecure = true, .ca_file = "/x"};
    assert_null(lg_grpc_channel_create("127.0.0.1:1", &co, &err));
    assert_non_null(strstr(err.msg, "insecure"));
}

/* ---------------------------------------------------------------- TLS */

struct pki {
    char dir[64];
    char ca[128], srv_cert[128], srv_key[128], cli_cert[128], cli_key[128], other_key[128];
    EVP_PKEY *ca_key;
    X509 *ca_cert;
};

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    assert_non_null(ex);
    X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       bool is_ca, const char *san, long serial)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != NULL)
        add_ext(x, &ctx, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x != NULL)
        PEM_write_X509(f, x);
    if (k != NULL)
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static void pki_create(struct pki *p)
{
    snprintf(p->dir, sizeof p->dir, "/tmp/lg-grpc-tls-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->ca, sizeof p->ca, "%s/ca.pem", p->dir);
    snprintf(p->srv_cert, sizeof p->srv_cert, "%s/server.pem", p->dir);
    snprintf(p->srv_key, sizeof p->srv_key, "%s/server-key.pem", p->dir);
    snprintf(p->cli_cert, sizeof p->cli_cert, "%s/client.pem", p->dir);
    snprintf(p->cli_key, sizeof p->cli_key, "%s/client-key.pem", p->dir);
    snprintf(p->other_key, sizeof p->other_key, "%s/other-key.pem", p->dir);
    EVP_PKEY *cak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *sk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ck = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ok = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *ca = make_cert(cak, "llmgate test CA", NULL, NULL, true, NULL, 1);
    X509 *sc = make_cert(sk, "localhost", ca, cak, false, "DNS:localhost,IP:127.0.0.1", 2);
    X509 *cc = make_cert(ck, "test client", ca, cak, false, NULL, 3);
    write_pem(p->ca, ca, NULL);
    write_pem(p->srv_cert, sc, NULL);
    write_pem(p->srv_key, NULL, sk);
    write_pem(p->cli_cert, cc, NULL);
    write_pem(p->cli_key, NULL, ck);
    write_pem(p->other_key, NULL, ok);
    p->ca_key = cak;
    p->ca_cert = ca;
    X509_free(sc);
    X509_free(cc);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(ok);
}

/* Replaces the server certificate and key with a new pair for `san`, signed by the CA. */
static void pki_rotate_server(struct pki *p, const char *san, long serial)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *c = make_cert(k, "rotated", p->ca_cert, p->ca_key, false, san, serial);
    write_pem(p->srv_key, NULL, k);
    write_pem(p->srv_cert, c, NULL);
    X509_free(c);
    EVP_PKEY_free(k);
}

static void pki_remove(struct pki *p)
{
    X509_free(p->ca_cert);
    EVP_PKEY_free(p->ca_key);
    const char *files[] = {p->ca, p->srv_cert, p->srv_key, p->cli_cert, p->cli_key, p->other_key};
    for (size_t i = 0; i < LG_ARRAY_LEN(files); i++)
        unlink(files[i]);
    rmdir(p->dir);
}

static void test_tls_and_mtls(void **state)
{
    (void)state;
    struct pki p;
    pki_create(&p);
    struct lg_err err = {{0}};

    /* a key that does not belong to the certificate is caught at create, by name */
    struct lg_grpc_server_opts bad = {
        .endpoint = "127.0.0.1:0", .tls_cert_file = p.srv_cert, .tls_key_file = p.other_key};
    assert_null(lg_grpc_server_create(&bad, &err));
    assert_non_null(strstr(err.msg, "tls.key_file"));
    assert_non_null(strstr(err.msg, "does not match"));
    bad.tls_key_file = p.srv_key;
    bad.tls_min_version = "1.3";
    assert_null(lg_grpc_server_create(&bad, &err));
    assert_non_null(strstr(err.msg, "tls.min_version"));

    /* TLS: a client trusting the CA gets through; a plaintext client does not */
    struct fixture f;
    fixture_init(&f);
    struct lg_grpc_server_opts o = {
        .tls_cert_file = p.srv_cert, .tls_key_file = p.srv_key, .tls_reload_interval_ns = 1};
    struct lg_grpc_channel_opts co = {.ca_file = p.ca, .authority_override = "localhost"};
    fixture_start(&f, &o, &co);
    struct reply r = call(&f, ECHO, "secret", 6);
    assert_int_equal(r.status, LG_GRPC_OK);
    assert_memory_equal(r.data, "secret", 6);
    free(r.data);
    struct lg_grpc_channel_opts plain = {.insecure = true};
    struct lg_grpc_channel *pc = lg_grpc_channel_create(f.target, &plain, &err);
    r = call_on(pc, ECHO, NULL, "x", 1, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_UNAVAILABLE);
    lg_grpc_channel_destroy(pc);
    /* with a reload interval, new connections see rotated files: first a certificate for
     * another name (so the client refuses it: proof the files were re-read), then a good one */
    pki_rotate_server(&p, "DNS:elsewhere.example", 10);
    struct lg_grpc_channel *c2 = lg_grpc_channel_create(f.target, &co, &err);
    r = call_on(c2, ECHO, NULL, "again", 5, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_UNAVAILABLE);
    lg_grpc_channel_destroy(c2);
    pki_rotate_server(&p, "DNS:localhost", 11);
    c2 = lg_grpc_channel_create(f.target, &co, &err);
    r = call_on(c2, ECHO, NULL, "again", 5, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    lg_grpc_channel_destroy(c2);
    fixture_stop(&f);

    /* mTLS: the client certificate is required and must chain to client_ca_file */
    fixture_init(&f);
    struct lg_grpc_server_opts mo = {
        .tls_cert_file = p.srv_cert, .tls_key_file = p.srv_key, .tls_client_ca_file = p.ca};
    struct lg_grpc_channel_opts mco = {.ca_file = p.ca,
                                       .cert_file = p.cli_cert,
                                       .key_file = p.cli_key,
                                       .authority_override = "localhost"};
    fixture_start(&f, &mo, &mco);
    r = call(&f, ECHO, "mutual", 6);
    assert_int_equal(r.status, LG_GRPC_OK);
    free(r.data);
    struct lg_grpc_channel *nocert = lg_grpc_channel_create(f.target, &co, &err);
    r = call_on(nocert, ECHO, NULL, "x", 1, TIMEOUT_NS);
    assert_int_equal(r.status, LG_GRPC_UNAVAILABLE);
    lg_grpc_channel_destroy(nocert);
    fixture_stop(&f);

    pki_remove(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_round_trip_returns_the_same_bytes),
        cmocka_unit_test(test_status_and_message_reach_the_client),
        cmocka_unit_test(
            test_gzip_request_is_compressed_on_the_wire_and_decompressed_by_the_server),
        cmocka_unit_test(test_oversize_message_is_resource_exhausted_and_server_keeps_serving),
        cmocka_unit_test(test_busy_port_is_an_error_naming_the_endpoint),
        cmocka_unit_test(test_handler_may_finish_later_from_another_thread),
        cmocka_unit_test(test_shutdown_lets_an_in_flight_call_finish_before_the_deadline),
        cmocka_unit_test(test_shutdown_past_deadline_cancels_in_flight_calls_and_waits_for_them),
        cmocka_unit_test(test_client_timeout_is_deadline_exceeded),
        cmocka_unit_test(test_connection_refused_is_unavailable_not_a_local_error),
        cmocka_unit_test(test_fifty_threads_share_one_channel),
        cmocka_unit_test(test_bad_options_are_refused_with_the_field_named),
        cmocka_unit_test(test_tls_and_mtls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
