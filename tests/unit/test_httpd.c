/* tests/unit/test_httpd.c — core/httpd: binding (port 0, busy ports, endpoint syntax),
 * serving over plain HTTP and TLS (with and without client certificates), the wire body
 * limit, and graceful stop (in-flight requests finish, idle and stuck ones do not hold it
 * up), and certificate reload (a rotated certificate is served to new connections, a bad one
 * is not). Clients are libcurl, raw sockets or an OpenSSL client on 127.0.0.1; certificates
 * are generated at test time with the OpenSSL API into a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/httpd.h"

/* ---- a handler that echoes what it saw ---- */

struct echo_state {
    pthread_mutex_t mu;
    int requests;
};

static void echo_handler(struct evhttp_request *req, void *arg)
{
    struct echo_state *st = arg;
    pthread_mutex_lock(&st->mu);
    st->requests++;
    pthread_mutex_unlock(&st->mu);
    struct evbuffer *out = evbuffer_new();
    const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER";
    evbuffer_add_printf(out, "%s %s %zu", method, evhttp_request_get_uri(req),
                        evbuffer_get_length(evhttp_request_get_input_buffer(req)));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* ---- libcurl client ---- */

struct resp {
    long status;
    CURLcode rc;
    char body[4096];
    size_t body_len;
    char headers[4096];
    size_t headers_len;
};

static size_t collect(char *p, size_t size, size_t n, char *buf, size_t *len, size_t cap)
{
    size_t k = size * n;
    size_t room = cap - 1 - *len;
    size_t copy = k < room ? k : room;
    memcpy(buf + *len, p, copy);
    *len += copy;
    buf[*len] = '\0';
    return k;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    return collect(p, size, n, r->body, &r->body_len, sizeof r->body);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    return collect(p, size, n, r->headers, &r->headers_len, sizeof r->headers);
}

struct tls_client {
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    long max_tls; /* CURL_SSLVERSION_MAX_* or 0 */
};

static void http_request(const char *url, const char *method, const void *body, size_t len,
                         const struct tls_client *tls, struct resp *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (method != NULL)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (tls != NULL) {
        curl_easy_setopt(c, CURLOPT_CAINFO, tls->ca_file);
        if (tls->cert_file != NULL) {
            curl_easy_setopt(c, CURLOPT_SSLCERT, tls->cert_file);
            curl_easy_setopt(c, CURLOPT_SSLKEY, tls->key_file);
        }
        if (tls->max_tls != 0)
            curl_easy_setopt(c, CURLOPT_SSLVERSION, tls->max_tls);
    }
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

/* ---- raw socket client (for requests left half-sent on purpose) ---- */

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

/* Reads until the peer closes (or `cap` is full); returns the bytes read. */
static size_t read_until_close(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    return len;
}

/* Reads one response with a Content-Length body; returns its length in bytes. */
static size_t read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end != NULL) {
            const char *cl = strcasestr(buf, "Content-Length:");
            size_t body = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
            size_t want = (size_t)(end + 4 - buf) + body;
            if (len >= want)
                return len;
        }
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return len;
        len += (size_t)n;
    }
}

static struct lg_http_server *start_echo(struct echo_state *st, const char *endpoint,
                                         size_t max_body)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    struct lg_http_server_opts o = {.endpoint = endpoint, .max_body_size = max_body};
    struct lg_http_server *s = NULL;
    struct lg_err err = {{0}};
    int rc = lg_http_server_start(&o, echo_handler, st, &s, &err);
    if (rc != LG_OK)
        fail_msg("start %s: %s", endpoint, err.msg);
    return s;
}

/* ---- endpoints and binding ---- */

static void test_parse_endpoint_forms(void **state)
{
    char host[64];
    int port = -1;
    struct lg_err err;
    assert_int_equal(lg_parse_endpoint("localhost:4318", host, sizeof host, &port, &err), LG_OK);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 4318);
    assert_int_equal(lg_parse_endpoint(":4318", host, sizeof host, &port, &err), LG_OK);
    assert_string_equal(host, "");
    assert_int_equal(lg_parse_endpoint("[::1]:0", host, sizeof host, &port, &err), LG_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(lg_parse_endpoint("0.0.0.0:65535", host, sizeof host, &port, &err), LG_OK);
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 65535);

    assert_int_equal(lg_parse_endpoint("localhost", host, sizeof host, &port, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "missing port"));
    assert_int_equal(lg_parse_endpoint("host:65536", host, sizeof host, &port, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(lg_parse_endpoint("host:http", host, sizeof host, &port, &err), LG_EINVAL);
    assert_int_equal(lg_parse_endpoint("::1:80", host, sizeof host, &port, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "[addr]:port"));
    assert_int_equal(lg_parse_endpoint("[::1]80", host, sizeof host, &port, &err), LG_EINVAL);
    assert_int_equal(lg_parse_endpoint("", host, sizeof host, &port, &err), LG_EINVAL);
    assert_int_equal(lg_parse_endpoint("host:", host, sizeof host, &port, &err), LG_EINVAL);
}

static void test_port_zero_binds_an_ephemeral_port_and_serves(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "127.0.0.1:0", 0);
    int port = lg_http_server_port(s);
    assert_true(port > 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/some/path?q=1", port);
    struct resp r;
    http_request(url, NULL, "hello", 5, NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /some/path?q=1 5");
    /* Every method reaches the handler (it decides what is allowed). */
    http_request(url, "DELETE", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "OTHER /some/path?q=1 0");
    lg_http_server_free(s);
    assert_int_equal(st.requests, 2);
}

static void test_localhost_binds_ipv4_loopback(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "localhost:0", 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", lg_http_server_port(s));
    struct resp r;
    http_request(url, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    lg_http_server_free(s);
}

static void test_all_interfaces_endpoint_accepts_ipv4_clients(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, ":0", 0);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/any", lg_http_server_port(s));
    struct resp r;
    http_request(url, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    lg_http_server_free(s);
}

static void test_busy_port_is_an_error_naming_the_endpoint(void **state)
{
    struct echo_state st;
    struct lg_http_server *first = start_echo(&st, "127.0.0.1:0", 0);
    int port = lg_http_server_port(first);
    char endpoint[64], want[128];
    struct lg_http_server *second = NULL;
    struct lg_err err = {{0}};

    snprintf(endpoint, sizeof endpoint, "localhost:%d", port);
    struct lg_http_server_opts o = {.endpoint = endpoint};
    assert_true(lg_http_server_start(&o, echo_handler, &st, &second, &err) < 0);
    assert_null(second);
    snprintf(want, sizeof want, "cannot listen on %s: Address already in use", endpoint);
    assert_string_equal(err.msg, want);

    /* All interfaces overlaps with the loopback listener too. */
    snprintf(endpoint, sizeof endpoint, ":%d", port);
    assert_true(lg_http_server_start(&o, echo_handler, &st, &second, &err) < 0);
    assert_non_null(strstr(err.msg, "Address already in use"));

    /* The first server is unaffected. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct resp r;
    http_request(url, NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    lg_http_server_free(first);

    /* Once stopped, the port can be bound again at once. */
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", port);
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &second, &err), LG_OK);
    lg_http_server_free(second);
}

static void test_bad_endpoint_is_an_error(void **state)
{
    struct echo_state st = {.requests = 0};
    struct lg_http_server *s = NULL;
    struct lg_err err = {{0}};
    struct lg_http_server_opts o = {.endpoint = "localhost"};
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "missing port"));
    o.endpoint = "no-such-host.invalid:0";
    assert_true(lg_http_server_start(&o, echo_handler, &st, &s, &err) < 0);
    assert_non_null(strstr(err.msg, "cannot listen on no-such-host.invalid:0"));
    assert_null(s);
}

/* ---- limits ---- */

static void test_body_over_the_wire_limit_gets_413(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "127.0.0.1:0", 100);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", lg_http_server_port(s));
    char body[4096];
    memset(body, 'x', sizeof body);
    struct resp r;
    http_request(url, NULL, body, 100, NULL, &r);
    assert_int_equal(r.status, 200); /* exactly the limit is fine */
    http_request(url, NULL, body, 101, NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 413);
    http_request(url, NULL, body, sizeof body, NULL, &r);
    assert_int_equal(r.status, 413);
    /* The handler never saw the oversized ones, and the server still serves. */
    http_request(url, NULL, "ok", 2, NULL, &r);
    assert_int_equal(r.status, 200);
    lg_http_server_free(s);
    assert_int_equal(st.requests, 2);
}

static void test_slow_client_is_disconnected_after_the_timeout(void **state)
{
    struct echo_state st;
    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    struct lg_http_server_opts o = {.endpoint = "127.0.0.1:0", .timeout_secs = 1};
    struct lg_http_server *s = NULL;
    struct lg_err err;
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_OK);
    /* Headers that never finish: the server must hang up on its own. */
    int fd = connect_port(lg_http_server_port(s));
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nContent-Le");
    char buf[512];
    read_until_close(fd, buf, sizeof buf);
    close(fd);
    assert_null(strstr(buf, "HTTP/1.1 200"));
    lg_http_server_free(s);
    assert_int_equal(st.requests, 0);
}

static void test_chunked_body_over_the_limit_gets_413(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "127.0.0.1:0", 100);
    int fd = connect_port(lg_http_server_port(s));
    assert_true(fd >= 0);
    send_all(fd, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "40\r\n"
                 "0123456789012345678901234567890123456789012345678901234567890123\r\n"
                 "40\r\n"
                 "0123456789012345678901234567890123456789012345678901234567890123\r\n"
                 "0\r\n\r\n");
    char buf[2048];
    read_until_close(fd, buf, sizeof buf);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    /* A chunked body within the limit is served. */
    fd = connect_port(lg_http_server_port(s));
    send_all(fd, "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 "Connection: close\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n");
    read_until_close(fd, buf, sizeof buf);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "POST /c 8"));
    lg_http_server_free(s);
}

/* ---- graceful stop ---- */

struct stopper {
    struct lg_http_server *s;
    int64_t deadline;
    pthread_t thread;
};

static void *stop_thread(void *arg)
{
    struct stopper *st = arg;
    lg_http_server_stop(st->s, st->deadline);
    return NULL;
}

/* Waits until connecting to the port is refused: the server has stopped accepting. */
static void wait_until_not_accepting(int port)
{
    for (;;) {
        int fd = connect_port(port);
        if (fd < 0)
            return;
        close(fd);
        poll(NULL, 0, 5);
    }
}

/* Sends the headers of a 10-byte POST with Expect: 100-continue, waits for the server's
 * "100 Continue" (proof that it has read the headers), then sends half of the body. */
static int start_half_sent_request(int port, const char *path)
{
    int fd = connect_port(port);
    assert_true(fd >= 0);
    char head[256];
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
             "Expect: 100-continue\r\n\r\n",
             path);
    send_all(fd, head);
    char buf[256] = "";
    size_t len = 0;
    while (strstr(buf, "\r\n\r\n") == NULL) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        assert_true(n > 0);
        len += (size_t)n;
        buf[len] = '\0';
    }
    assert_non_null(strstr(buf, "HTTP/1.1 100"));
    send_all(fd, "01234");
    return fd;
}

static void test_stop_lets_an_in_flight_request_finish(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "127.0.0.1:0", 0);
    int port = lg_http_server_port(s);

    /* An idle keep-alive connection that has completed one request. */
    int idle = connect_port(port);
    send_all(idle, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[2048];
    read_response(idle, buf, sizeof buf);
    assert_non_null(strstr(buf, "OTHER /first 0"));

    /* A request whose body is half sent. */
    int busy = start_half_sent_request(port, "/slow");

    struct stopper stop = {.s = s, .deadline = lg_now_mono_ns() + 60LL * 1000000000LL};
    pthread_create(&stop.thread, NULL, stop_thread, &stop);
    wait_until_not_accepting(port);

    /* The idle connection is closed by the stop... */
    size_t n = read_until_close(idle, buf, sizeof buf);
    assert_int_equal(n, 0);
    close(idle);
    /* ...while the busy one is answered once its body is complete, then closed. */
    send_all(busy, "56789");
    read_until_close(busy, buf, sizeof buf);
    close(busy);
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(strstr(buf, "POST /slow 10"));
    assert_non_null(strcasestr(buf, "Connection: close"));

    pthread_join(stop.thread, NULL);
    /* Nothing was left busy, so stop returned well before its deadline. */
    assert_true(lg_now_mono_ns() < stop.deadline);
    lg_http_server_free(s);
    assert_int_equal(st.requests, 2);
}

static void test_stop_gives_up_on_a_stuck_request_at_the_deadline(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "127.0.0.1:0", 0);
    int busy = start_half_sent_request(lg_http_server_port(s), "/stuck");
    lg_http_server_stop(s, lg_now_mono_ns() + 200LL * 1000000LL);
    char buf[256];
    assert_int_equal(read_until_close(busy, buf, sizeof buf), 0); /* closed, unanswered */
    close(busy);
    lg_http_server_free(s);
    assert_int_equal(st.requests, 0);
}

static void test_stop_and_free_are_idempotent(void **state)
{
    struct echo_state st;
    struct lg_http_server *s = start_echo(&st, "127.0.0.1:0", 0);
    lg_http_server_stop(s, lg_now_mono_ns());
    lg_http_server_stop(s, lg_now_mono_ns());
    lg_http_server_free(s);
    lg_http_server_free(NULL);
}

/* ---- TLS ---- */

struct pki {
    char dir[64];
    char ca[128], server_cert[128], server_key[128], client_cert[128], client_key[128];
};

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (cert != NULL)
        assert_int_equal(PEM_write_X509(f, cert), 1);
    else
        assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, bool is_ca, const char *san)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
    add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
            is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (is_ca)
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != NULL)
        add_ext(x, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

/* A throw-away CA, a server certificate for 127.0.0.1/localhost (subject CN `server_cn`)
 * and a client certificate. */
static void make_pki_cn(struct pki *p, const char *server_cn)
{
    snprintf(p->dir, sizeof p->dir, "/tmp/lg-httpd-test-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->ca, sizeof p->ca, "%s/ca.pem", p->dir);
    snprintf(p->server_cert, sizeof p->server_cert, "%s/server.pem", p->dir);
    snprintf(p->server_key, sizeof p->server_key, "%s/server.key", p->dir);
    snprintf(p->client_cert, sizeof p->client_cert, "%s/client.pem", p->dir);
    snprintf(p->client_key, sizeof p->client_key, "%s/client.key", p->dir);

    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    EVP_PKEY *srv_key = EVP_EC_gen("P-256");
    EVP_PKEY *cli_key = EVP_EC_gen("P-256");
    assert_non_null(ca_key);
    X509 *ca = make_cert(ca_key, "llmgate test CA", NULL, NULL, 1, true, NULL);
    X509 *srv = make_cert(srv_key, server_cn, ca, ca_key, 2, false, "DNS:localhost,IP:127.0.0.1");
    X509 *cli = make_cert(cli_key, "test client", ca, ca_key, 3, false, NULL);
    write_pem(p->ca, ca, NULL);
    write_pem(p->server_cert, srv, NULL);
    write_pem(p->server_key, NULL, srv_key);
    write_pem(p->client_cert, cli, NULL);
    write_pem(p->client_key, NULL, cli_key);
    X509_free(ca);
    X509_free(srv);
    X509_free(cli);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    EVP_PKEY_free(cli_key);
}

static void make_pki(struct pki *p)
{
    make_pki_cn(p, "localhost");
}

static void remove_pki(struct pki *p)
{
    unlink(p->ca);
    unlink(p->server_cert);
    unlink(p->server_key);
    unlink(p->client_cert);
    unlink(p->client_key);
    rmdir(p->dir);
}

static struct lg_http_server *start_tls(struct echo_state *st, const struct pki *p,
                                        const char *client_ca, const char *min_version)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    struct lg_http_server_opts o = {
        .endpoint = "127.0.0.1:0",
        .tls_cert_file = p->server_cert,
        .tls_key_file = p->server_key,
        .tls_client_ca_file = client_ca,
        .tls_min_version = min_version,
    };
    struct lg_http_server *s = NULL;
    struct lg_err err = {{0}};
    if (lg_http_server_start(&o, echo_handler, st, &s, &err) != LG_OK)
        fail_msg("start TLS: %s", err.msg);
    return s;
}

static void test_tls_serves_https_and_refuses_plaintext(void **state)
{
    struct pki p;
    make_pki(&p);
    struct echo_state st;
    struct lg_http_server *s = start_tls(&st, &p, NULL, NULL);
    int port = lg_http_server_port(s);
    char url[128];
    struct resp r;
    struct tls_client tc = {.ca_file = p.ca};

    snprintf(url, sizeof url, "https://127.0.0.1:%d/secure", port);
    http_request(url, NULL, "abc", 3, &tc, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "POST /secure 3");
    snprintf(url, sizeof url, "https://localhost:%d/named", port);
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_equal(r.status, 200);

    /* Plain HTTP on the TLS port is never served. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/plain", port);
    http_request(url, NULL, NULL, 0, NULL, &r);
    assert_int_not_equal(r.status, 200);

    /* TLS 1.2 is the default minimum: a TLS 1.1 client is refused. */
    snprintf(url, sizeof url, "https://127.0.0.1:%d/old", port);
    tc.max_tls = CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_1;
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    lg_http_server_free(s);
    assert_int_equal(st.requests, 2);

    /* min_version 1.3 refuses a TLS 1.2 client. */
    s = start_tls(&st, &p, NULL, "1.3");
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", lg_http_server_port(s));
    tc.max_tls = CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2;
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    tc.max_tls = 0;
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_equal(r.status, 200);
    lg_http_server_free(s);
    remove_pki(&p);
}

static void test_mtls_requires_a_client_certificate(void **state)
{
    struct pki p;
    make_pki(&p);
    struct echo_state st;
    struct lg_http_server *s = start_tls(&st, &p, p.ca, "1.2");
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/m", lg_http_server_port(s));
    struct resp r;
    struct tls_client tc = {.ca_file = p.ca};
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    assert_int_not_equal(r.status, 200);

    tc.cert_file = p.client_cert;
    tc.key_file = p.client_key;
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);

    /* A certificate the CA did not sign is refused (the server's own key pair). */
    tc.cert_file = p.ca;
    tc.key_file = p.server_key;
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_not_equal(r.status, 200);
    lg_http_server_free(s);
    assert_int_equal(st.requests, 1);
    remove_pki(&p);
}

static void test_tls_config_errors_name_the_setting(void **state)
{
    struct pki p;
    make_pki(&p);
    struct echo_state st = {.requests = 0};
    struct lg_http_server *s = NULL;
    struct lg_err err = {{0}};
    struct lg_http_server_opts o = {.endpoint = "127.0.0.1:0",
                                    .tls_cert_file = "/nonexistent.pem",
                                    .tls_key_file = p.server_key};
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "tls.cert_file"));
    assert_non_null(strstr(err.msg, "/nonexistent.pem"));

    o.tls_cert_file = p.server_cert;
    o.tls_key_file = NULL;
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "tls.key_file"));

    o.tls_key_file = p.client_key; /* not the server certificate's key */
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "does not match"));

    o.tls_key_file = p.server_key;
    o.tls_min_version = "1.4";
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "tls.min_version"));

    o.tls_min_version = NULL;
    o.tls_client_ca_file = "/nonexistent-ca.pem";
    assert_int_equal(lg_http_server_start(&o, echo_handler, &st, &s, &err), LG_EINVAL);
    assert_non_null(strstr(err.msg, "tls.client_ca_file"));
    assert_null(s);
    remove_pki(&p);
}

/* ---- certificate reload ---- */

/* Replaces `to` with a copy of `from` the way rotation tools do: write aside, rename over. */
static void install_file(const char *from, const char *to)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", to);
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(tmp, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(rename(tmp, to), 0);
}

/* Handshakes with the server (no verification: the test only asks which certificate it
 * serves) and returns the subject CN of the leaf, or "" when the handshake failed. */
static void served_cn(int port, char *cn, size_t cap)
{
    cn[0] = '\0';
    int fd = connect_port(port);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
        X509 *peer = SSL_get1_peer_certificate(ssl);
        if (peer != NULL) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, (int)cap);
            X509_free(peer);
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    close(fd);
}

/* Connects until the served certificate's CN is `want`, for at most ~10 s. */
static void wait_for_served_cn(int port, const char *want)
{
    char cn[128] = "";
    for (int i = 0; i < 1000; i++) {
        served_cn(port, cn, sizeof cn);
        if (strcmp(cn, want) == 0)
            return;
        poll(NULL, 0, 10);
    }
    fail_msg("server still serves \"%s\", want \"%s\"", cn, want);
}

struct live_files {
    char cert[160], key[160];
};

static struct lg_http_server *start_reloading(struct echo_state *st, const struct pki *first,
                                              struct live_files *live, int64_t interval_ns)
{
    snprintf(live->cert, sizeof live->cert, "%s/live.pem", first->dir);
    snprintf(live->key, sizeof live->key, "%s/live.key", first->dir);
    install_file(first->server_cert, live->cert);
    install_file(first->server_key, live->key);
    memset(st, 0, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    struct lg_http_server_opts o = {
        .endpoint = "127.0.0.1:0",
        .tls_cert_file = live->cert,
        .tls_key_file = live->key,
        .tls_reload_interval_ns = interval_ns,
    };
    struct lg_http_server *s = NULL;
    struct lg_err err = {{0}};
    if (lg_http_server_start(&o, echo_handler, st, &s, &err) != LG_OK)
        fail_msg("start TLS: %s", err.msg);
    return s;
}

static void test_tls_reload_serves_a_rotated_certificate(void **state)
{
    struct pki a, b;
    make_pki_cn(&a, "server A");
    make_pki_cn(&b, "server B");
    struct echo_state st;
    struct live_files live;
    struct lg_http_server *s = start_reloading(&st, &a, &live, 10LL * 1000000LL);
    int port = lg_http_server_port(s);
    char cn[128];
    served_cn(port, cn, sizeof cn);
    assert_string_equal(cn, "server A");

    /* Rotate to B: new connections get B, and B's chain verifies end to end. */
    install_file(b.server_cert, live.cert);
    install_file(b.server_key, live.key);
    wait_for_served_cn(port, "server B");
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/after", port);
    struct resp r;
    struct tls_client tc = {.ca_file = b.ca};
    http_request(url, NULL, NULL, 0, &tc, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);

    /* A half-done rotation (A's certificate with B's key) fails to load: the server keeps
     * serving B. Each connection comes more than an interval after the previous check,
     * so both run the check. */
    install_file(a.server_cert, live.cert);
    for (int i = 0; i < 2; i++) {
        poll(NULL, 0, 30);
        served_cn(port, cn, sizeof cn);
        assert_string_equal(cn, "server B");
    }
    /* Completing it (the matching key arrives) is picked up. */
    install_file(a.server_key, live.key);
    wait_for_served_cn(port, "server A");

    lg_http_server_free(s);
    unlink(live.cert);
    unlink(live.key);
    remove_pki(&a);
    remove_pki(&b);
}

static void test_tls_without_reload_interval_keeps_the_first_certificate(void **state)
{
    struct pki a, b;
    make_pki_cn(&a, "server A");
    make_pki_cn(&b, "server B");
    struct echo_state st;
    struct live_files live;
    struct lg_http_server *s = start_reloading(&st, &a, &live, 0);
    int port = lg_http_server_port(s);
    install_file(b.server_cert, live.cert);
    install_file(b.server_key, live.key);
    char cn[128];
    for (int i = 0; i < 2; i++) {
        poll(NULL, 0, 30);
        served_cn(port, cn, sizeof cn);
        assert_string_equal(cn, "server A");
    }
    lg_http_server_free(s);
    unlink(live.cert);
    unlink(live.key);
    remove_pki(&a);
    remove_pki(&b);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_endpoint_forms),
        cmocka_unit_test(test_port_zero_binds_an_ephemeral_port_and_serves),
        cmocka_unit_test(test_localhost_binds_ipv4_loopback),
        cmocka_unit_test(test_all_interfaces_endpoint_accepts_ipv4_clients),
        cmocka_unit_test(test_busy_port_is_an_error_naming_the_endpoint),
        cmocka_unit_test(test_bad_endpoint_is_an_error),
        cmocka_unit_test(test_body_over_the_wire_limit_gets_413),
        cmocka_unit_test(test_slow_client_is_disconnected_after_the_timeout),
        cmocka_unit_test(test_chunked_body_over_the_limit_gets_413),
        cmocka_unit_test(test_stop_lets_an_in_flight_request_finish),
        cmocka_unit_test(test_stop_gives_up_on_a_stuck_request_at_the_deadline),
        cmocka_unit_test(test_stop_and_free_are_idempotent),
        cmocka_unit_test(test_tls_serves_https_and_refuses_plaintext),
        cmocka_unit_test(test_mtls_requires_a_client_certificate),
        cmocka_unit_test(test_tls_config_errors_name_the_setting),
        cmocka_unit_test(test_tls_reload_serves_a_rotated_certificate),
        cmocka_unit_test(test_tls_without_reload_interval_keeps_the_first_certificate),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}
