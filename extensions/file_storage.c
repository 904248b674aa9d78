/* extensions/file_storage.c — the `file_storage` extension, with the Collector's keys: a
 * directory in which exporters named in `sending_queue.storage` keep their persistent
 * queues (one subdirectory per exporter ID + signal, each a segment log, core/segment_log.h).
 * Owns nothing but its checked configuration; the logs belong to the exporters that open
 * them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/component.h"
#include "../core/log.h"
#include "../core/segment_log.h"

struct file_storage_conf {
    const char *directory;
    bool create_directory;
    const char *directory_permissions;
    bool fsync;
    int64_t timeout_ns;
};

static const struct lg_conf_field file_storage_fields[] = {
    LG_CONF_STRING("directory", "/var/lib/otelcol/file_storage", struct file_storage_conf,
                   directory, "where the queues live (must exist unless create_directory)"),
    LG_CONF_BOOL("create_directory", "false", struct file_storage_conf, create_directory,
                 "create the directory (and its parents) at start when missing"),
    LG_CONF_STRING("directory_permissions", "0750", struct file_storage_conf, directory_permissions,
                   "octal mode for directories created by create_directory"),
    LG_CONF_BOOL("fsync", "false", struct file_storage_conf, fsync,
                 "fdatasync every record before the data is accepted (survives power loss)"),
    LG_CONF_DURATION("timeout", "1s", struct file_storage_conf, timeout_ns,
                     "accepted (the Collector's lock timeout); our files are never shared"),
    LG_CONF_ACCEPTED("compaction", "accepted; segment logs delete delivered segments instead"),
    LG_CONF_END,
};

struct file_storage_state {
    struct file_storage_conf *conf;
    unsigned mode;
};

const struct lg_component_type lg_file_storage_extension;

bool lg_file_storage_is(const struct lg_component *ext)
{
    return ext && ext->type == &lg_file_storage_extension;
}

static int fs_create(struct lg_component *c, struct lg_err *err)
{
    struct file_storage_conf *conf = c->conf;
    const struct lg_node *dn = lg_node_get(c->conf_node, "directory");
    if (conf->directory == NULL || conf->directory[0] == '\0')
        return dn ? lg_conf_error(err, dn, "must not be empty")
                  : lg_err_set(err, LG_EINVAL, "extensions.%s.directory: must not be empty", c->id);
    char *end;
    unsigned long mode = strtoul(conf->directory_permissions, &end, 8);
    if (*end != '\0' || end == conf->directory_permissions || mode > 07777) {
        const struct lg_node *pn = lg_node_get(c->conf_node, "directory_permissions");
        return lg_conf_error(err, pn ? pn : c->conf_node,
                             "expected an octal mode such as 0750, got \"%s\"",
                             conf->directory_permissions);
    }
    struct stat sb;
    if (stat(conf->directory, &sb) != 0) {
        if (errno != ENOENT || !conf->create_directory) {
            const char *why = errno == ENOENT
                                  ? "does not exist (create it, or set create_directory: true)"
                                  : strerror(errno);
            return dn ? lg_conf_error(err, dn, "directory \"%s\" %s", conf->directory, why)
                      : lg_err_set(err, LG_EINVAL,
                                   "extensions.%s.directory: directory \"%s\" (the default) %s",
                                   c->id, conf->directory, why);
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        return dn ? lg_conf_error(err, dn, "\"%s\" is not a directory", conf->directory)
                  : lg_err_set(err, LG_EINVAL, "extensions.%s.directory: \"%s\" is not a directory",
                               c->id, conf->directory);
    }
    struct file_storage_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->conf = conf;
    st->mode = (unsigned)mode;
    c->state = st;
    return LG_OK;
}

/* mkdir -p */
static int make_dirs(const char *dir, unsigned mode)
{
    char *p = strdup(dir);
    if (p == NULL)
        return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, mode) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static int fs_start(struct lg_component *c, struct lg_err *err)
{
    struct file_storage_state *st = c->state;
    if (st->conf->create_directory && make_dirs(st->conf->directory, st->mode) != 0)
        return lg_err_set(err, LG_EIO, "extensions.%s: cannot create directory \"%s\": %s", c->id,
                          st->conf->directory, strerror(errno));
    return LG_OK;
}

int lg_file_storage_open_queue(struct lg_component *ext, const char *owner_id,
                               enum lg_signal signal, struct lg_segment_log **out,
                               struct lg_err *err)
{
    if (!lg_file_storage_is(ext) || ext->state == NULL)
        return lg_err_set(err, LG_EINVAL, "not a file_storage extension");
    struct file_storage_state *st = ext->state;
    /* exporter_<id>_<signal>, with every byte outside [A-Za-z0-9._-] written ~XX so that
     * distinct IDs never share a directory */
    char name[512];
    size_t n = (size_t)snprintf(name, sizeof name, "exporter_");
    for (const char *p = owner_id; *p && n + 4 < sizeof name - 16; p++) {
        unsigned char ch = (unsigned char)*p;
        bool safe = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
        if (safe)
            name[n++] = (char)ch;
        else
            n += (size_t)snprintf(name + n, sizeof name - n, "~%02X", ch);
    }
    snprintf(name + n, sizeof name - n, "_%s", lg_signal_name(signal));
    size_t plen = strlen(st->conf->directory) + strlen(name) + 2;
    char *path = malloc(plen);
    if (path == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    snprintf(path, plen, "%s/%s", st->conf->directory, name);
    struct lg_segment_log_opts o = {.dir = path, .fsync = st->conf->fsync};
    int rc = lg_segment_log_open(&o, out, err);
    free(path);
    return rc;
}

static void fs_destroy(struct lg_component *c)
{
    free(c->state);
    c->state = NULL;
}

const struct lg_component_type lg_file_storage_extension = {
    .type = "file_storage",
    .kind = LG_EXTENSION,
    .description = "directory for persistent sending queues (sending_queue.storage)",
    .conf_size = sizeof(struct file_storage_conf),
    .fields = file_storage_fields,
    .create = fs_create,
    .start = fs_start,
    .destroy = fs_destroy,
};
