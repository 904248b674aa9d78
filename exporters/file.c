/* exporters/file.c — the `file` exporter (as in the Collector's contrib): appends every
 * batch to a file, as one OTLP/JSON Export*ServiceRequest per line (`format: json`) or as
 * 4-byte big-endian length + protobuf bytes (`format: proto`). Each batch is flushed to the
 * OS before consume returns, so a reader (or a test) sees it at once. Owns the FILE. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/log.h"
#include "../core/otlp_json.h"
#include "../core/runtime.h"

struct file_conf {
    const char *path;
    const char *format;
    bool append;
};

static const struct lg_conf_field file_fields[] = {
    LG_CONF_STRING("path", NULL, struct file_conf, path, "file to write (required)"),
    LG_CONF_STRING("format", "json", struct file_conf, format, "json (one request per line) | proto (length-prefixed)"),
    LG_CONF_BOOL("append", "false", struct file_conf, append, "keep existing content (false: truncate at start)"),
    LG_CONF_ACCEPTED("rotation", "accepted; rotation is not implemented"),
    LG_CONF_ACCEPTED("flush_interval", "accepted; every batch is flushed"),
    LG_CONF_END,
};

struct file_state {
    struct file_conf *conf;
    bool proto;
    FILE *f;
    pthread_mutex_t lock;
    struct lg_counter *sent[LG_SIGNAL_COUNT], *failed[LG_SIGNAL_COUNT];
};

static int file_create(struct lg_component *c, struct lg_err *err)
{
    struct file_conf *conf = c->conf;
    if (conf->path == NULL || conf->path[0] == '\0')
        return c->conf_node ? lg_conf_error(err, c->conf_node, "path is required")
                            : lg_err_set(err, LG_EINVAL, "exporters.%s: path is required", c->id);
    bool proto = false;
    if (strcmp(conf->format, "proto") == 0)
        proto = true;
    else if (strcmp(conf->format, "json") != 0)
        return lg_conf_error(err, lg_node_get(c->conf_node, "format"), "expected json or proto, got \"%s\"", conf->format);
    struct file_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->conf = conf;
    st->proto = proto;
    pthread_mutex_init(&st->lock, NULL);
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"", c->id);
    for (int s = 0; s < LG_SIGNAL_COUNT; s++) {
        char name[96];
        snprintf(name, sizeof name, "otelcol_exporter_sent_%s", lg_signal_item_noun((enum lg_signal)s));
        st->sent[s] = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, name, "Number of items successfully sent to destination.", labels);
        snprintf(name, sizeof name, "otelcol_exporter_send_failed_%s", lg_signal_item_noun((enum lg_signal)s));
        st->failed[s] = lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, name, "Number of items that failed to be sent.", labels);
    }
    c->state = st;
    return LG_OK;
}

static int file_start(struct lg_component *c, struct lg_err *err)
{
    struct file_state *st = c->state;
    st->f = fopen(st->conf->path, st->conf->append ? "ab" : "wb");
    if (st->f == NULL)
        return lg_err_set(err, LG_EIO, "exporters.%s: cannot open \"%s\": %s", c->id, st->conf->path, strerror(errno));
    return LG_OK;
}

static int file_consume(struct lg_component *c, struct lg_batch *b)
{
    struct file_state *st = c->state;
    size_t len = 0;
    void *buf = st->proto ? (void *)lg_batch_encode(b, &len) : (void *)lg_otlp_json_encode(b->req.msg, &len);
    if (buf == NULL) {
        /* JSON encoding also fails for data nested deeper than JSON output allows: a
         * permanent error for this batch, not a reason to retry. */
        lg_counter_add(st->failed[b->signal], b->items);
        lg_error(c->id, "cannot encode a batch of %zu %s as %s", b->items, lg_signal_item_noun(b->signal), st->proto ? "protobuf" : "JSON");
        return st->proto ? LG_ENOMEM : LG_EINVAL;
    }
    pthread_mutex_lock(&st->lock);
    bool ok = st->f != NULL;
    if (ok && st->proto) {
        unsigned char hdr[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
        ok = fwrite(hdr, 1, 4, st->f) == 4;
    }
    ok = ok && fwrite(buf, 1, len, st->f) == len;
    if (ok && !st->proto)
        ok = fputc('\n', st->f) != EOF;
    ok = ok && fflush(st->f) == 0;
    pthread_mutex_unlock(&st->lock);
    free(buf);
    if (!ok) {
        lg_counter_add(st->failed[b->signal], b->items);
        lg_error(c->id, "cannot write \"%s\": %s", st->conf->path, strerror(errno));
        return LG_EIO;
    }
    lg_counter_add(st->sent[b->signal], b->items);
    return LG_OK;
}

static int file_shutdown(struct lg_component *c, int64_t deadline)
{
    (void)deadline;
    struct file_state *st = c->state;
    pthread_mutex_lock(&st->lock);
    if (st->f)
        fclose(st->f);
    st->f = NULL;
    pthread_mutex_unlock(&st->lock);
    return LG_OK;
}

static void file_destroy(struct lg_component *c)
{
    struct file_state *st = c->state;
    if (st == NULL)
        return;
    if (st->f)
        fclose(st->f);
    pthread_mutex_destroy(&st->lock);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_file_exporter = {
    .type = "file",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "writes OTLP/JSON lines or length-prefixed protobuf to a file",
    .conf_size = sizeof(struct file_conf),
    .fields = file_fields,
    .create = file_create,
    .start = file_start,
    .consume = file_consume,
    .shutdown = file_shutdown,
    .destroy = file_destroy,
};
