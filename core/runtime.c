/* core/runtime.c — builds the component graph from the config tree, starts it, stops it.
 *
 * Instances: one per receiver, exporter, connector and extension ID; one processor instance
 * per (pipeline, processor ID), as in the Collector. Wiring: each pipeline's receivers (and
 * connectors acting as receivers) send to the pipeline's first processor, or straight to
 * its exporters; each processor sends to the next one, the last to the exporters. */
#include "runtime.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "log.h"

static const char *const section_names[] = {"receivers", "processors", "exporters", "connectors", "extensions"};

/* ---- small helpers ---- */

static int ptr_push(void ***arr, size_t *n, void *p)
{
    void **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (na == NULL)
        return LG_ENOMEM;
    na[*n] = p;
    *arr = na;
    (*n)++;
    return LG_OK;
}

static int fanout_add(struct lg_fanout *f, struct lg_component *to)
{
    return ptr_push((void ***)&f->to, &f->n, to);
}

/* Splits "type/name" and finds the type; error names the node. */
static int resolve_type(enum lg_kind kind, const char *id, const struct lg_node *where,
                        const struct lg_component_type **out, struct lg_err *err)
{
    const char *slash = strchr(id, '/');
    size_t tlen = slash ? (size_t)(slash - id) : strlen(id);
    if (tlen == 0 || (slash && slash[1] == '\0'))
        return lg_conf_error(err, where, "invalid component ID \"%s\" (expected type or type/name)", id);
    *out = lg_registry_find(kind, id, tlen);
    if (*out == NULL) {
        char known[512] = "";
        size_t k = 0;
        for (const struct lg_component_type *const *t = lg_registry_all(); *t; t++)
            if ((*t)->kind == kind)
                k += (size_t)snprintf(known + k, k < sizeof known ? sizeof known - k : 0, "%s%s", k ? ", " : "", (*t)->type);
        return lg_conf_error(err, where, "unknown %s type \"%.*s\" (known: %s)", lg_kind_name(kind), (int)tlen, id, known);
    }
    return LG_OK;
}

static struct lg_component *component_new(struct lg_runtime *rt, const struct lg_component_type *type,
                                          const char *id, const char *pipeline_id,
                                          const struct lg_node *node, struct lg_err *err, int *rc)
{
    struct lg_component *c = calloc(1, sizeof *c);
    struct lg_arena *a = lg_arena_create(1024);
    if (c == NULL || a == NULL) {
        free(c);
        lg_arena_destroy(a);
        *rc = lg_err_set(err, LG_ENOMEM, "out of memory");
        return NULL;
    }
    c->type = type;
    c->id = id;
    c->pipeline_id = pipeline_id;
    c->rt = rt;
    c->conf_node = node && !lg_node_is_null(node) ? node : NULL;
    c->arena = a;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        c->next[s].owner = c;
    c->conf = lg_arena_calloc(a, 1, type->conf_size ? type->conf_size : 1);
    if (c->conf == NULL) {
        *rc = lg_err_set(err, LG_ENOMEM, "out of memory");
        goto fail;
    }
    *rc = lg_conf_apply(type->fields, c->conf_node, node, c->conf, a, err);
    if (*rc != LG_OK)
        goto fail;
    if (type->kind == LG_PROCESSOR) {
        char labels[512];
        for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
            snprintf(labels, sizeof labels, "processor=\"%s\",pipeline=\"%s\",otel_signal=\"%s\"", id,
                     pipeline_id ? pipeline_id : "", lg_signal_name((enum lg_signal)s));
            c->incoming[s] = lg_telemetry_counter(rt->telemetry, "otelcol_processor_incoming_items",
                                                  "Number of items passed to the processor.", labels);
            c->outgoing[s] = lg_telemetry_counter(rt->telemetry, "otelcol_processor_outgoing_items",
                                                  "Number of items emitted from the processor.", labels);
        }
    }
    if (type->create) {
        *rc = type->create(c, err);
        if (*rc != LG_OK)
            goto fail;
    }
    return c;
fail:
    lg_arena_destroy(a);
    free(c);
    return NULL;
}

static void component_free(struct lg_component *c)
{
    if (c == NULL)
        return;
    if (c->type->destroy)
        c->type->destroy(c);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        free(c->next[s].to);
    lg_arena_destroy(c->arena);
    free(c);
}

/* ---- building ---- */

struct defined {
    const char *id;
    const struct lg_component_type *type;
    const struct lg_node *node;  /* its config */
    const struct lg_node *key;   /* where it is defined (for messages) */
    struct lg_component *inst;   /* shared instance (not processors) */
    enum lg_kind kind;
    bool used_as_exporter, used_as_receiver;
};

struct builder {
    struct lg_runtime *rt;
    struct defined *defs;
    size_t ndefs;
};

static struct defined *find_def(struct builder *b, enum lg_kind kind, const char *id)
{
    for (size_t i = 0; i < b->ndefs; i++)
        if (b->defs[i].kind == kind && strcmp(b->defs[i].id, id) == 0)
            return &b->defs[i];
    return NULL;
}

static int collect_section(struct builder *b, enum lg_kind kind, const struct lg_node *sec, struct lg_err *err)
{
    if (sec == NULL || lg_node_is_null(sec))
        return LG_OK;
    if (sec->type != LG_NODE_MAP)
        return lg_conf_error(err, sec, "expected a mapping of component IDs to their settings");
    for (size_t i = 0; i < sec->npairs; i++) {
        const struct lg_node_pair *p = &sec->pairs[i];
        const struct lg_component_type *type;
        int rc = resolve_type(kind, p->key, p->value, &type, err);
        if (rc != LG_OK)
            return rc;
        if (p->value->type != LG_NODE_MAP && !lg_node_is_null(p->value))
            return lg_conf_error(err, p->value, "expected a mapping of settings (or nothing)");
        struct defined *nd = realloc(b->defs, (b->ndefs + 1) * sizeof *nd);
        if (nd == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        b->defs = nd;
        b->defs[b->ndefs++] = (struct defined){.id = p->key, .type = type, .node = p->value, .key = p->value, .kind = kind};
    }
    return LG_OK;
}

static int add_component(struct lg_runtime *rt, struct lg_component *c, struct lg_err *err)
{
    if (ptr_push((void ***)&rt->components, &rt->ncomponents, c) != LG_OK) {
        component_free(c);
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    return LG_OK;
}

/* Creates (once) the shared instance of a defined receiver/exporter/connector/extension. */
static int instance_of(struct builder *b, struct defined *d, struct lg_component **out, struct lg_err *err)
{
    if (d->inst == NULL) {
        int rc;
        struct lg_component *c = component_new(b->rt, d->type, d->id, NULL, d->node, err, &rc);
        if (c == NULL)
            return rc;
        rc = add_component(b->rt, c, err);
        if (rc != LG_OK)
            return rc;
        d->inst = c;
    }
    *out = d->inst;
    return LG_OK;
}

static int string_list(const struct lg_node *n, const char *what, struct lg_err *err)
{
    if (n == NULL)
        return LG_OK;
    if (n->type != LG_NODE_SEQ)
        return lg_conf_error(err, n, "expected a list of %s IDs", what);
    for (size_t i = 0; i < n->nitems; i++)
        if (n->items[i]->type != LG_NODE_SCALAR)
            return lg_conf_error(err, n->items[i], "expected a %s ID", what);
    return LG_OK;
}

static int build_pipeline(struct builder *b, const struct lg_node_pair *pp, struct lg_pipeline *pl, struct lg_err *err)
{
    const struct lg_node *pn = pp->value;
    const char *slash = strchr(pp->key, '/');
    size_t tlen = slash ? (size_t)(slash - pp->key) : strlen(pp->key);
    int sig = lg_signal_parse(pp->key, tlen);
    if (sig < 0)
        return lg_conf_error(err, pn, "unknown pipeline type \"%.*s\" (expected traces, metrics or logs, optionally /name)", (int)tlen, pp->key);
    if (pn == NULL || pn->type != LG_NODE_MAP)
        return lg_conf_error(err, pn, "expected a mapping with receivers, processors and exporters");
    pl->id = pp->key;
    pl->signal = (enum lg_signal)sig;
    pl->node = pn;
    static const char *const keys[] = {"receivers", "processors", "exporters"};
    for (size_t i = 0; i < pn->npairs; i++) {
        bool known = false;
        for (size_t k = 0; k < 3; k++)
            known |= strcmp(pn->pairs[i].key, keys[k]) == 0;
        if (!known)
            return lg_conf_error(err, pn->pairs[i].value, "unknown key \"%s\" (known keys: receivers, processors, exporters)", pn->pairs[i].key);
    }
    const struct lg_node *recv = lg_node_get(pn, "receivers");
    const struct lg_node *proc = lg_node_get(pn, "processors");
    const struct lg_node *expo = lg_node_get(pn, "exporters");
    int rc;
    if ((rc = string_list(recv, "receiver", err)) || (rc = string_list(proc, "processor", err)) ||
        (rc = string_list(expo, "exporter", err)))
        return rc;
    if (recv == NULL || recv->nitems == 0)
        return lg_conf_error(err, pn, "must have at least one receiver");
    if (expo == NULL || expo->nitems == 0)
        return lg_conf_error(err, pn, "must have at least one exporter");
    unsigned bit = LG_SIG_BIT(sig);

    for (size_t i = 0; i < recv->nitems; i++) {
        const struct lg_node *item = recv->items[i];
        struct defined *d = find_def(b, LG_RECEIVER, item->scalar);
        bool conn = false;
        if (d == NULL && (d = find_def(b, LG_CONNECTOR, item->scalar)) != NULL)
            conn = true;
        if (d == NULL)
            return lg_conf_error(err, item, "references receiver \"%s\" which is not configured", item->scalar);
        unsigned supported = conn ? d->type->out_signals : d->type->signals;
        if (!(supported & bit))
            return lg_conf_error(err, item, "%s \"%s\" does not support %s", conn ? "connector" : "receiver", item->scalar, lg_signal_name(pl->signal));
        d->used_as_receiver = true;
        struct lg_component *c;
        if ((rc = instance_of(b, d, &c, err)) != LG_OK)
            return rc;
        if ((rc = ptr_push((void ***)&pl->receivers, &pl->nreceivers, c)) != LG_OK)
            return lg_err_set(err, rc, "out of memory");
    }
    for (size_t i = 0; proc && i < proc->nitems; i++) {
        const struct lg_node *item = proc->items[i];
        struct defined *d = find_def(b, LG_PROCESSOR, item->scalar);
        if (d == NULL)
            return lg_conf_error(err, item, "references processor \"%s\" which is not configured", item->scalar);
        if (!(d->type->signals & bit))
            return lg_conf_error(err, item, "processor \"%s\" does not support %s", item->scalar, lg_signal_name(pl->signal));
        for (size_t j = 0; j < i; j++)
            if (strcmp(proc->items[j]->scalar, item->scalar) == 0)
                return lg_conf_error(err, item, "processor \"%s\" is listed twice in this pipeline", item->scalar);
        struct lg_component *c = component_new(b->rt, d->type, d->id, pl->id, d->node, err, &rc);
        if (c == NULL)
            return rc;
        if ((rc = add_component(b->rt, c, err)) != LG_OK)
            return rc;
        if ((rc = ptr_push((void ***)&pl->processors, &pl->nprocessors, c)) != LG_OK)
            return lg_err_set(err, rc, "out of memory");
    }
    for (size_t i = 0; i < expo->nitems; i++) {
        const struct lg_node *item = expo->items[i];
        struct defined *d = find_def(b, LG_EXPORTER, item->scalar);
        if (d == NULL)
            d = find_def(b, LG_CONNECTOR, item->scalar);
        if (d == NULL)
            return lg_conf_error(err, item, "references exporter \"%s\" which is not configured", item->scalar);
        if (!(d->type->signals & bit))
            return lg_conf_error(err, item, "%s \"%s\" does not support %s", lg_kind_name(d->kind), item->scalar, lg_signal_name(pl->signal));
        d->used_as_exporter = true;
        struct lg_component *c;
        if ((rc = instance_of(b, d, &c, err)) != LG_OK)
            return rc;
        if ((rc = ptr_push((void ***)&pl->exporters, &pl->nexporters, c)) != LG_OK)
            return lg_err_set(err, rc, "out of memory");
    }
    return LG_OK;
}

/* Connects receivers -> processors -> exporters for one pipeline. */
static int wire_pipeline(struct lg_pipeline *pl)
{
    enum lg_signal s = pl->signal;
    for (size_t i = 0; i < pl->nprocessors; i++) {
        struct lg_fanout *f = &pl->processors[i]->next[s];
        if (i + 1 < pl->nprocessors) {
            if (fanout_add(f, pl->processors[i + 1]))
                return LG_ENOMEM;
        } else {
            for (size_t e = 0; e < pl->nexporters; e++)
                if (fanout_add(f, pl->exporters[e]))
                    return LG_ENOMEM;
        }
    }
    for (size_t r = 0; r < pl->nreceivers; r++) {
        struct lg_fanout *f = &pl->receivers[r]->next[s];
        if (pl->nprocessors) {
            if (fanout_add(f, pl->processors[0]))
                return LG_ENOMEM;
        } else {
            for (size_t e = 0; e < pl->nexporters; e++)
                if (fanout_add(f, pl->exporters[e]))
                    return LG_ENOMEM;
        }
    }
    return LG_OK;
}

/* ---- service.telemetry ---- */

struct telemetry_conf {
    struct {
        const char *level;
        const char *encoding;
    } logs;
    bool has_logs;
    struct {
        const char *address;
        const char *level;
    } metrics;
};

static const struct lg_conf_field tel_logs_fields[] = {
    LG_CONF_STRING("level", "info", struct telemetry_conf, logs.level, "debug | info | warn | error"),
    LG_CONF_STRING("encoding", "console", struct telemetry_conf, logs.encoding, "console | json"),
    LG_CONF_ACCEPTED("development", "accepted"),
    LG_CONF_ACCEPTED("sampling", "accepted"),
    LG_CONF_ACCEPTED("output_paths", "accepted; logs go to stderr"),
    LG_CONF_ACCEPTED("error_output_paths", "accepted; logs go to stderr"),
    LG_CONF_ACCEPTED("initial_fields", "accepted"),
    LG_CONF_ACCEPTED("disable_caller", "accepted"),
    LG_CONF_ACCEPTED("disable_stacktrace", "accepted"),
    LG_CONF_ACCEPTED("processors", "accepted"),
    LG_CONF_END,
};

static const struct lg_conf_field tel_metrics_fields[] = {
    LG_CONF_STRING("address", "localhost:8888", struct telemetry_conf, metrics.address, "Prometheus /metrics endpoint"),
    LG_CONF_STRING("level", "normal", struct telemetry_conf, metrics.level, "none | basic | normal | detailed"),
    LG_CONF_ACCEPTED("readers", "accepted; use address"),
    LG_CONF_END,
};

static int parse_tel_section(const struct lg_node *n, void *dst, struct lg_arena *a, const struct lg_conf_field *f,
                             size_t off, struct lg_err *err)
{
    return lg_conf_apply(f, n, n, (char *)dst - off, a, err);
}
static int parse_tel_logs(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    return parse_tel_section(n, dst, a, tel_logs_fields, offsetof(struct telemetry_conf, logs), err);
}
static int parse_tel_metrics(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    return parse_tel_section(n, dst, a, tel_metrics_fields, offsetof(struct telemetry_conf, metrics), err);
}

static const struct lg_conf_field telemetry_fields[] = {
    LG_CONF_CUSTOM("logs", "{}", struct telemetry_conf, logs, parse_tel_logs, "the gateway's own logs"),
    LG_CONF_CUSTOM("metrics", "{}", struct telemetry_conf, metrics, parse_tel_metrics, "the gateway's own metrics"),
    LG_CONF_ACCEPTED("resource", "accepted"),
    LG_CONF_ACCEPTED("traces", "accepted; the gateway does not trace itself"),
    LG_CONF_END,
};

static double uptime_seconds(void *arg)
{
    struct lg_runtime *rt = arg;
    return (double)(lg_now_wall_ns() - rt->start_wall_ns) / 1e9;
}

static double rss_bytes(void *arg)
{
    (void)arg;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : 0;
}

static int apply_telemetry(struct lg_runtime *rt, const struct lg_node *service, struct lg_err *err)
{
    const struct lg_node *tn = lg_node_get(service, "telemetry");
    struct telemetry_conf *tc = lg_arena_calloc(rt->doc.arena, 1, sizeof *tc);
    if (tc == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    int rc = lg_conf_apply(telemetry_fields, tn, tn ? tn : service, tc, rt->doc.arena, err);
    if (rc != LG_OK)
        return rc;
    const struct lg_node *logs = lg_node_get(tn, "logs");
    int lvl = lg_log_level_parse(tc->logs.level);
    if (lvl < 0)
        return lg_conf_error(err, lg_node_get(logs, "level"), "expected debug, info, warn or error, got \"%s\"", tc->logs.level);
    bool json = strcmp(tc->logs.encoding, "json") == 0;
    if (!json && strcmp(tc->logs.encoding, "console") != 0)
        return lg_conf_error(err, lg_node_get(logs, "encoding"), "expected console or json, got \"%s\"", tc->logs.encoding);
    rt->log_level = lvl;
    rt->log_json = json;
    rt->log_configured = logs != NULL;
    const char *ml = tc->metrics.level;
    if (strcmp(ml, "none") && strcmp(ml, "basic") && strcmp(ml, "normal") && strcmp(ml, "detailed"))
        return lg_conf_error(err, lg_node_get(lg_node_get(tn, "metrics"), "level"), "expected none, basic, normal or detailed, got \"%s\"", ml);
    rt->metrics_address = strcmp(ml, "none") == 0 ? "" : tc->metrics.address;
    return LG_OK;
}

/* ---- public ---- */

int lg_runtime_build(struct lg_runtime *rt, struct lg_conf_doc *doc, struct lg_err *err)
{
    memset(rt, 0, sizeof *rt);
    rt->doc = *doc;
    memset(doc, 0, sizeof *doc);
    rt->start_wall_ns = lg_now_wall_ns();
    rt->telemetry = lg_telemetry_create();
    if (rt->telemetry == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    const struct lg_node *root = rt->doc.root;
    for (size_t i = 0; i < root->npairs; i++) {
        bool known = strcmp(root->pairs[i].key, "service") == 0;
        for (size_t k = 0; k < LG_ARRAY_LEN(section_names); k++)
            known |= strcmp(root->pairs[i].key, section_names[k]) == 0;
        if (!known)
            return lg_conf_error(err, root->pairs[i].value, "unknown top-level key \"%s\" (known: receivers, processors, exporters, connectors, extensions, service)", root->pairs[i].key);
    }
    struct builder b = {.rt = rt};
    int rc = LG_OK;
    static const enum lg_kind kinds[] = {LG_RECEIVER, LG_PROCESSOR, LG_EXPORTER, LG_CONNECTOR, LG_EXTENSION};
    for (size_t k = 0; k < LG_ARRAY_LEN(kinds) && rc == LG_OK; k++)
        rc = collect_section(&b, kinds[k], lg_node_get(root, section_names[k]), err);
    const struct lg_node *service = lg_node_get(root, "service");
    if (rc == LG_OK && (service == NULL || service->type != LG_NODE_MAP))
        rc = service ? lg_conf_error(err, service, "expected a mapping with pipelines")
                     : lg_err_set(err, LG_EINVAL, "service: missing (a config needs service.pipelines)");
    if (rc == LG_OK) {
        for (size_t i = 0; i < service->npairs && rc == LG_OK; i++) {
            const char *k = service->pairs[i].key;
            if (strcmp(k, "extensions") && strcmp(k, "pipelines") && strcmp(k, "telemetry"))
                rc = lg_conf_error(err, service->pairs[i].value, "unknown key \"%s\" (known keys: extensions, pipelines, telemetry)", k);
        }
    }
    if (rc == LG_OK)
        rc = apply_telemetry(rt, service, err);
    /* Every defined component's settings are checked, used or not, as the Collector does. */
    for (size_t i = 0; i < b.ndefs && rc == LG_OK; i++) {
        struct defined *d = &b.defs[i];
        void *scratch = lg_arena_calloc(rt->doc.arena, 1, d->type->conf_size ? d->type->conf_size : 1);
        if (scratch == NULL)
            rc = lg_err_set(err, LG_ENOMEM, "out of memory");
        else
            rc = lg_conf_apply(d->type->fields, lg_node_is_null(d->node) ? NULL : d->node, d->node, scratch, rt->doc.arena, err);
    }
    const struct lg_node *exts = rc == LG_OK ? lg_node_get(service, "extensions") : NULL;
    if (rc == LG_OK)
        rc = string_list(exts, "extension", err);
    for (size_t i = 0; exts && i < exts->nitems && rc == LG_OK; i++) {
        struct defined *d = find_def(&b, LG_EXTENSION, exts->items[i]->scalar);
        struct lg_component *c;
        if (d == NULL)
            rc = lg_conf_error(err, exts->items[i], "references extension \"%s\" which is not configured", exts->items[i]->scalar);
        else
            rc = instance_of(&b, d, &c, err);
    }
    const struct lg_node *pls = rc == LG_OK ? lg_node_get(service, "pipelines") : NULL;
    if (rc == LG_OK && (pls == NULL || pls->type != LG_NODE_MAP || pls->npairs == 0))
        rc = lg_conf_error(err, pls ? pls : service, "at least one pipeline is required (service.pipelines.traces, metrics or logs)");
    if (rc == LG_OK) {
        rt->pipelines = calloc(pls->npairs, sizeof *rt->pipelines);
        if (rt->pipelines == NULL)
            rc = lg_err_set(err, LG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == LG_OK && i < pls->npairs; i++) {
        rt->npipelines++;
        rc = build_pipeline(&b, &pls->pairs[i], &rt->pipelines[i], err);
    }
    for (size_t i = 0; rc == LG_OK && i < b.ndefs; i++) {
        struct defined *d = &b.defs[i];
        if (d->kind == LG_CONNECTOR && d->inst && d->used_as_exporter != d->used_as_receiver)
            rc = lg_conf_error(err, d->key, "connector \"%s\" must be used both as an exporter of one pipeline and as a receiver of another", d->id);
        else if (d->inst == NULL && d->kind != LG_PROCESSOR)
            lg_warn(NULL, "%ss.%s is configured but not used in any pipeline", lg_kind_name(d->kind), d->id);
    }
    for (size_t i = 0; rc == LG_OK && i < rt->npipelines; i++)
        if (wire_pipeline(&rt->pipelines[i]) != LG_OK)
            rc = lg_err_set(err, LG_ENOMEM, "out of memory");
    free(b.defs);
    if (rc == LG_OK) {
        lg_telemetry_gauge_fn(rt->telemetry, "otelcol_process_uptime", "Uptime of the process (seconds).", "", uptime_seconds, rt);
        lg_telemetry_gauge_fn(rt->telemetry, "otelcol_process_memory_rss", "Total physical memory (resident set size) in bytes.", "", rss_bytes, NULL);
    }
    return rc;
}

/* Start order: extensions, exporters, connectors, processors, receivers. */
static int start_rank(const struct lg_component *c)
{
    switch (c->type->kind) {
    case LG_EXTENSION: return 0;
    case LG_EXPORTER: return 1;
    case LG_CONNECTOR: return 2;
    case LG_PROCESSOR: return 3;
    case LG_RECEIVER: return 4;
    }
    return 5;
}

static void metrics_handle(struct evhttp_request *req, void *arg)
{
    struct lg_runtime *rt = arg;
    const char *uri = evhttp_request_get_uri(req);
    if (uri == NULL || (strncmp(uri, "/metrics", 8) != 0 || (uri[8] != '\0' && uri[8] != '?'))) {
        evhttp_send_error(req, HTTP_NOTFOUND, NULL);
        return;
    }
    size_t len;
    char *text = lg_telemetry_render(rt->telemetry, &len);
    struct evbuffer *body = evbuffer_new();
    if (text == NULL || body == NULL) {
        free(text);
        if (body)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, NULL);
        return;
    }
    evbuffer_add(body, text, len);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, HTTP_OK, "OK", body);
    evbuffer_free(body);
}

int lg_runtime_start(struct lg_runtime *rt, struct lg_err *err)
{
    for (int rank = 0; rank <= 4; rank++)
        for (size_t i = 0; i < rt->ncomponents; i++) {
            struct lg_component *c = rt->components[i];
            if (start_rank(c) != rank || c->type->start == NULL)
                continue;
            int rc = c->type->start(c, err);
            if (rc != LG_OK) {
                lg_runtime_shutdown(rt, lg_now_mono_ns());
                return rc;
            }
            c->started = true;
        }
    if (rt->metrics_address && rt->metrics_address[0]) {
        struct lg_http_server_opts o = {.endpoint = rt->metrics_address, .max_body_size = 4096};
        int rc = lg_http_server_start(&o, metrics_handle, rt, &rt->metrics_server, err);
        if (rc != LG_OK) {
            lg_err_prefix(err, "service.telemetry.metrics.address");
            lg_runtime_shutdown(rt, lg_now_mono_ns());
            return rc;
        }
        lg_info(NULL, "self-metrics on http://%s/metrics", rt->metrics_address);
    }
    atomic_store(&rt->healthy, true);
    return LG_OK;
}

static void shutdown_one(struct lg_component *c, int64_t deadline)
{
    if (c->started && c->type->shutdown)
        c->type->shutdown(c, deadline);
    c->started = false;
}

void lg_runtime_shutdown(struct lg_runtime *rt, int64_t deadline)
{
    atomic_store(&rt->healthy, false);
    /* Receivers stop taking data first. Then pipelines flush in dependency order: a
     * pipeline fed by a connector waits until every pipeline exporting to that connector
     * has flushed its processors; then the connector flushes, then the pipeline's own
     * processors. Exporters drain last, extensions stop after them. */
    for (size_t i = 0; i < rt->ncomponents; i++)
        if (rt->components[i]->type->kind == LG_RECEIVER)
            shutdown_one(rt->components[i], deadline);
    for (size_t depth = 0; depth < rt->npipelines; depth++) {
        bool any = false;
        for (size_t p = 0; p < rt->npipelines; p++) {
            struct lg_pipeline *pl = &rt->pipelines[p];
            bool upstream_done = true;
            for (size_t r = 0; r < pl->nreceivers; r++)
                if (pl->receivers[r]->type->kind == LG_CONNECTOR) {
                    /* wait until every pipeline exporting to this connector has flushed */
                    for (size_t q = 0; q < rt->npipelines; q++)
                        for (size_t e = 0; e < rt->pipelines[q].nexporters; e++)
                            if (rt->pipelines[q].exporters[e] == pl->receivers[r])
                                for (size_t k = 0; k < rt->pipelines[q].nprocessors; k++)
                                    upstream_done &= !rt->pipelines[q].processors[k]->started;
                }
            if (!upstream_done)
                continue;
            /* A connector feeding this pipeline flushes what it holds (llm_metrics' last
             * interval) before this pipeline's processors stop. */
            for (size_t r = 0; r < pl->nreceivers; r++)
                if (pl->receivers[r]->type->kind == LG_CONNECTOR && pl->receivers[r]->started) {
                    shutdown_one(pl->receivers[r], deadline);
                    any = true;
                }
            for (size_t k = 0; k < pl->nprocessors; k++)
                if (pl->processors[k]->started) {
                    shutdown_one(pl->processors[k], deadline);
                    any = true;
                }
        }
        if (!any)
            break;
    }
    for (size_t i = 0; i < rt->ncomponents; i++)
        if (rt->components[i]->type->kind == LG_PROCESSOR || rt->components[i]->type->kind == LG_CONNECTOR)
            shutdown_one(rt->components[i], deadline);
    for (size_t i = 0; i < rt->ncomponents; i++)
        if (rt->components[i]->type->kind == LG_EXPORTER)
            shutdown_one(rt->components[i], deadline);
    if (rt->metrics_server) {
        lg_http_server_stop(rt->metrics_server, deadline);
        lg_http_server_free(rt->metrics_server);
        rt->metrics_server = NULL;
    }
    for (size_t i = 0; i < rt->ncomponents; i++)
        if (rt->components[i]->type->kind == LG_EXTENSION)
            shutdown_one(rt->components[i], deadline);
}

void lg_runtime_destroy(struct lg_runtime *rt)
{
    for (size_t i = rt->ncomponents; i > 0; i--)
        component_free(rt->components[i - 1]);
    free(rt->components);
    for (size_t i = 0; i < rt->npipelines; i++) {
        free(rt->pipelines[i].receivers);
        free(rt->pipelines[i].processors);
        free(rt->pipelines[i].exporters);
    }
    free(rt->pipelines);
    lg_telemetry_destroy(rt->telemetry);
    lg_conf_doc_free(&rt->doc);
    memset(rt, 0, sizeof *rt);
}

const char *lg_component_label_key(enum lg_kind k) { return lg_kind_name(k); }

struct lg_component *lg_runtime_child_new(struct lg_runtime *rt, const struct lg_component_type *type,
                                          const char *id, const struct lg_node *node,
                                          struct lg_err *err)
{
    int rc;
    return component_new(rt, type, id, NULL, node, err, &rc);
}

void lg_runtime_child_free(struct lg_component *c) { component_free(c); }

struct lg_component *lg_runtime_find_extension(struct lg_runtime *rt, const char *id)
{
    for (size_t i = 0; rt && i < rt->ncomponents; i++)
        if (rt->components[i]->type->kind == LG_EXTENSION && strcmp(rt->components[i]->id, id) == 0)
            return rt->components[i];
    return NULL;
}
