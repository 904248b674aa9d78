/* extensions/health_check.c — the `health_check` extension: GET {path} answers 200 with a
 * small JSON status while the gateway is running and all components started, 503 while
 * starting or shutting down (what Kubernetes probes expect). */
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/httpd.h"
#include "../core/log.h"
#include "../core/runtime.h"

struct health_conf {
    const char *endpoint;
    const char *path;
};

static const struct lg_conf_field health_fields[] = {
    LG_CONF_STRING("endpoint", "localhost:13133", struct health_conf, endpoint, "host:port to listen on"),
    LG_CONF_STRING("path", "/", struct health_conf, path, "path of the health endpoint"),
    LG_CONF_ACCEPTED("check_collector_pipeline", "accepted; deprecated in the Collector"),
    LG_CONF_ACCEPTED("response_body", "accepted; the body is a fixed JSON status"),
    LG_CONF_END,
};

struct health_state {
    struct lg_component *c;
    struct health_conf *conf;
    struct lg_http_server *srv;
};

static void health_handle(struct evhttp_request *req, void *arg)
{
    struct health_state *st = arg;
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strlen(st->conf->path);
    bool match = uri && strncmp(uri, st->conf->path, plen) == 0 && (uri[plen] == '\0' || uri[plen] == '?');
    if (!match) {
        evhttp_send_error(req, HTTP_NOTFOUND, NULL);
        return;
    }
    bool up = atomic_load(&st->c->rt->healthy);
    int64_t uptime_s = (lg_now_wall_ns() - st->c->rt->start_wall_ns) / 1000000000LL;
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add_printf(body, "{\"status\":\"%s\",\"uptime_seconds\":%lld}\n",
                        up ? "Server available" : "Server not available", (long long)uptime_s);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, up ? HTTP_OK : 503, up ? "OK" : "Service Unavailable", body);
    evbuffer_free(body);
}

static int health_create(struct lg_component *c, struct lg_err *err)
{
    struct health_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = c->conf;
    c->state = st;
    return LG_OK;
}

static int health_start(struct lg_component *c, struct lg_err *err)
{
    struct health_state *st = c->state;
    struct lg_http_server_opts o = {.endpoint = st->conf->endpoint, .max_body_size = 4096};
    int rc = lg_http_server_start(&o, health_handle, st, &st->srv, err);
    if (rc != LG_OK) {
        lg_err_prefix(err, "extensions.%s", c->id);
        return rc;
    }
    lg_info(c->id, "health check on http://%s%s", st->conf->endpoint, st->conf->path);
    return LG_OK;
}

static int health_shutdown(struct lg_component *c, int64_t deadline)
{
    struct health_state *st = c->state;
    if (st->srv)
        lg_http_server_stop(st->srv, deadline);
    return LG_OK;
}

static void health_destroy(struct lg_component *c)
{
    struct health_state *st = c->state;
    if (st == NULL)
        return;
    if (st->srv)
        lg_http_server_free(st->srv);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_health_check_extension = {
    .type = "health_check",
    .kind = LG_EXTENSION,
    .description = "HTTP health endpoint for probes (default :13133)",
    .conf_size = sizeof(struct health_conf),
    .fields = health_fields,
    .create = health_create,
    .start = health_start,
    .shutdown = health_shutdown,
    .destroy = health_destroy,
};
