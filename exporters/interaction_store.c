/* exporters/interaction_store.c — the `interaction_store` exporter: keeps the full prompt and
 * completion of failed LLM calls (and a deterministic share of successful ones) in an
 * encrypted, append-only local store (format: store_format.h; record: interaction_store.h).
 *
 * Owns: the key, the open segment (fd, name, size), the retention thread and the exporter
 * helper that queues batches and calls store_send() on its consumer threads, so encryption
 * and fsync never run on the receiver's thread. A batch is written as a whole or not at all:
 * when a write fails the segment is cut back to where the batch started and the helper
 * retries (or counts the batch as failed), so a record is never reported written when it
 * was not, and a retry never duplicates records.
 *
 * On start: the directory is created 0700 (loose modes are fixed or refused), existing
 * segments are verified with the key (corrupt and truncated records are counted), and a new
 * segment is always opened — an older segment with a truncated tail (a crash mid-write) is
 * left as it is and never appended to, so writing resumes cleanly after it. */
#include "interaction_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../core/b64.h"
#include "../core/exporter_helper.h"
#include "../core/llm.h"
#include "../core/llm_content.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "store_format.h"

enum fsync_mode { FSYNC_NEVER, FSYNC_BATCH, FSYNC_ALWAYS };

struct failed_conf {
    bool enabled;
    struct lg_strlist finish_reasons;
};

struct successful_conf {
    double sampling_percentage;
    const char *hash_salt;
};

struct retention_conf {
    int64_t max_age_ns;
    int64_t max_size_mib;
    int64_t segment_size_mib;
    int64_t segment_max_age_ns;
    int64_t check_interval_ns;
};

struct store_conf {
    const char *directory;
    const char *key_file;
    const char *key_env;
    bool create_key;
    struct failed_conf failed;
    struct successful_conf successful;
    struct retention_conf retention;
    int fsync;
    bool fix_permissions;
    bool verify_on_start;
    struct lg_exporter_helper_conf helper;
};

static const struct lg_conf_field failed_fields[] = {
    LG_CONF_BOOL(
        "enabled", "true", struct failed_conf, enabled,
        "store every failed call: status ERROR, error.type, llm.error, or a finish reason below"),
    {.key = "finish_reasons",
     .type = LG_CT_STRLIST,
     .def = "[length, content_filter, max_tokens, refusal, safety, recitation]",
     .offset = offsetof(struct failed_conf, finish_reasons),
     .present_offset = -1,
     .help = "finish reasons that count as a failure (case-insensitive; any entry of "
             "gen_ai.response.finish_reasons)"},
    LG_CONF_END,
};

/* `failed:` takes `all` / `none` / a bool as a shorthand, or the map above. */
static int parse_failed(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    struct failed_conf *fc = dst;
    if (n->type == LG_NODE_MAP)
        return lg_conf_apply(failed_fields, n, n, fc, a, err);
    if (n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n,
                             "expected all, none, true, false or a map {enabled, finish_reasons}");
    int rc = lg_conf_apply(failed_fields, NULL, n, fc, a, err);
    if (rc != LG_OK)
        return rc;
    if (strcmp(n->scalar, "all") == 0 || strcmp(n->scalar, "true") == 0)
        fc->enabled = true;
    else if (strcmp(n->scalar, "none") == 0 || strcmp(n->scalar, "false") == 0)
        fc->enabled = false;
    else
        return lg_conf_error(
            err, n,
            "expected all, none, true, false or a map {enabled, finish_reasons}, got \"%s\"",
            n->scalar);
    return LG_OK;
}

static int parse_fsync(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    (void)a;
    int *m = dst;
    if (n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "expected never, batch, always, true or false");
    const char *s = n->scalar;
    if (strcmp(s, "never") == 0 || strcmp(s, "false") == 0)
        *m = FSYNC_NEVER;
    else if (strcmp(s, "batch") == 0 || strcmp(s, "true") == 0)
        *m = FSYNC_BATCH;
    else if (strcmp(s, "always") == 0)
        *m = FSYNC_ALWAYS;
    else
        return lg_conf_error(err, n, "expected never, batch, always, true or false, got \"%s\"", s);
    return LG_OK;
}

static const struct lg_conf_field successful_fields[] = {
    LG_CONF_DOUBLE("sampling_percentage", "0", struct successful_conf, sampling_percentage, 0, 100,
                   "share of successful calls stored, chosen on the trace ID as tail_sampling's "
                   "probabilistic policy does"),
    LG_CONF_STRING("hash_salt", "", struct successful_conf, hash_salt,
                   "salt of the trace ID hash; use the tail_sampling policy's hash_salt to keep "
                   "the same traces (empty: the Collector's default)"),
    LG_CONF_END,
};

static const struct lg_conf_field retention_fields[] = {
    LG_CONF_DURATION("max_age", "720h", struct retention_conf, max_age_ns,
                     "segments last written longer ago are deleted (0: no age limit)"),
    LG_CONF_INT("max_size_mib", "1024", struct retention_conf, max_size_mib, 0, 1 << 30,
                "size limit: oldest segments are deleted so the closed ones plus a full open "
                "segment fit (0: none; >= 2 x segment_size_mib)"),
    LG_CONF_INT("segment_size_mib", "16", struct retention_conf, segment_size_mib, 1, 4096,
                "a new segment file is started when the current one reaches this size"),
    LG_CONF_DURATION("segment_max_age", "1h", struct retention_conf, segment_max_age_ns,
                     "a new segment file is started when the current one is this old"),
    LG_CONF_DURATION("check_interval", "1m", struct retention_conf, check_interval_ns,
                     "how often retention runs besides at start and at each new segment"),
    LG_CONF_END,
};

static const struct lg_conf_field store_fields[] = {
    LG_CONF_STRING("directory", NULL, struct store_conf, directory,
                   "store directory (required; created 0700)"),
    LG_CONF_STRING("key_file", NULL, struct store_conf, key_file,
                   "file holding the key: base64 of 32 random bytes (`llmgate store keygen`)"),
    LG_CONF_STRING("key_env", NULL, struct store_conf, key_env,
                   "environment variable holding the key instead (base64 of 32 bytes)"),
    LG_CONF_BOOL("create_key", "false", struct store_conf, create_key,
                 "generate key_file (0600) when it does not exist: for local use; a key beside the "
                 "data does not protect it from whoever can read both"),
    LG_CONF_CUSTOM("failed", "all", struct store_conf, failed, parse_failed,
                   "which failed calls are stored: all | none | {enabled, finish_reasons}"),
    LG_CONF_SECTION("successful", struct store_conf, successful, successful_fields,
                    "sampling of successful calls"),
    LG_CONF_SECTION("retention", struct store_conf, retention, retention_fields,
                    "segment rotation and deletion of old data"),
    LG_CONF_CUSTOM("fsync", "batch", struct store_conf, fsync, parse_fsync,
                   "never | batch (fdatasync after each batch; true) | always (after each record)"),
    LG_CONF_BOOL("fix_permissions", "true", struct store_conf, fix_permissions,
                 "chmod a directory (0700) or segment (0600) that group or others can access; "
                 "false: refuse to start"),
    LG_CONF_BOOL("verify_on_start", "true", struct store_conf, verify_on_start,
                 "check every record of the existing segments at start (counts corrupt and "
                 "truncated records)"),
    LG_EXPORTER_HELPER_FIELDS(struct store_conf, helper),
    LG_CONF_END,
};

struct store_state {
    struct lg_component *c;
    struct store_conf *conf;
    struct lg_store_key key;
    bool key_at_start; /* create_key and no key_file yet: made and loaded by start() */
    uint64_t threshold;
    const char *salt;
    struct lg_exporter_helper *helper;

    pthread_mutex_t lock; /* the segment below, and retention */
    int fd;
    char seg_name[64];
    int64_t seg_size;
    int64_t seg_created_mono;
    uint32_t seg_seq;

    pthread_t retention_thread;
    bool retention_running;
    bool stopping; /* under `lock` */
    pthread_cond_t wake;

    struct lg_counter *written_failed, *written_sampled, *skipped, *write_errors, *encode_errors;
    struct lg_counter *corrupt, *truncated, *deleted_age, *deleted_size, *perm_fixed, *oversized;
};

/* ---- record building ---- */

static void hex(char *out, const ProtobufCBinaryData *b)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = b->len > 32 ? 32 : b->len;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b->data[i] >> 4];
        out[2 * i + 1] = digits[b->data[i] & 15];
    }
    out[2 * n] = '\0';
}

static cJSON *any_to_json(const lg_any_value *v, int depth)
{
    if (v == NULL || depth > 64)
        return cJSON_CreateNull();
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return cJSON_CreateString(v->string_value ? v->string_value : "");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return cJSON_CreateBool(v->bool_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        /* Exact in a JSON number (a double) only up to 2^53: beyond, keep the digits. */
        if (v->int_value > (1LL << 53) || v->int_value < -(1LL << 53)) {
            char buf[32];
            snprintf(buf, sizeof buf, "%" PRId64, v->int_value);
            return cJSON_CreateString(buf);
        }
        return cJSON_CreateNumber((double)v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return cJSON_CreateNumber(v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        char *s = lg_base64_encode(v->bytes_value.data, v->bytes_value.len, false);
        cJSON *j = s ? cJSON_CreateString(s) : NULL;
        free(s);
        return j;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        cJSON *arr = cJSON_CreateArray();
        if (arr == NULL || v->array_value == NULL)
            return arr;
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            cJSON *e = any_to_json(v->array_value->values[i], depth + 1);
            if (e == NULL || !cJSON_AddItemToArray(arr, e)) {
                cJSON_Delete(e);
                cJSON_Delete(arr);
                return NULL;
            }
        }
        return arr;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        cJSON *obj = cJSON_CreateObject();
        if (obj == NULL || v->kvlist_value == NULL)
            return obj;
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            const lg_kv *kv = v->kvlist_value->values[i];
            cJSON *e = any_to_json(kv->value, depth + 1);
            if (e == NULL || !cJSON_AddItemToObject(obj, kv->key ? kv->key : "", e)) {
                cJSON_Delete(e);
                cJSON_Delete(obj);
                return NULL;
            }
        }
        return obj;
    }
    default: return cJSON_CreateNull();
    }
}

/* Appends {"key":k,"value":v} to arr; false on OOM. */
static bool add_kv(cJSON *arr, const lg_kv *kv)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *v = any_to_json(kv->value, 0);
    if (o == NULL || v == NULL || !cJSON_AddStringToObject(o, "key", kv->key ? kv->key : "") ||
        !cJSON_AddItemToObject(o, "value", v)) {
        cJSON_Delete(o);
        cJSON_Delete(v);
        return false;
    }
    return cJSON_AddItemToArray(arr, o);
}

static bool add_str(cJSON *o, const char *k, const char *v)
{
    return v == NULL || cJSON_AddStringToObject(o, k, v) != NULL;
}

static bool add_u64s(cJSON *o, const char *k, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_AddStringToObject(o, k, buf) != NULL;
}

static bool add_tokens(cJSON *o, const char *k, int64_t v)
{
    return v < 0 || cJSON_AddNumberToObject(o, k, (double)v) != NULL;
}

/* Collects every content attribute and content event of the span. */
static bool add_content(cJSON *rec, const lg_span *s)
{
    cJSON *content = cJSON_AddObjectToObject(rec, "content");
    cJSON *prompt = cJSON_AddArrayToObject(content, "prompt");
    cJSON *completion = cJSON_AddArrayToObject(content, "completion");
    cJSON *tool = cJSON_AddArrayToObject(content, "tool");
    cJSON *events = cJSON_AddArrayToObject(content, "events");
    if (!content || !prompt || !completion || !tool || !events)
        return false;
    for (size_t i = 0; i < s->n_attributes; i++) {
        const lg_kv *kv = s->attributes[i];
        if (kv->key == NULL)
            continue;
        enum lg_llm_content_kind k = lg_llm_content_attr(kv->key, strlen(kv->key));
        cJSON *dst = k == LG_LLM_CONTENT_PROMPT       ? prompt
                     : k == LG_LLM_CONTENT_COMPLETION ? completion
                     : k == LG_LLM_CONTENT_TOOL       ? tool
                                                      : NULL;
        if (dst && !add_kv(dst, kv))
            return false;
    }
    for (size_t i = 0; i < s->n_events; i++) {
        const lg_span_event *ev = s->events[i];
        const char *name = ev->name ? ev->name : "";
        enum lg_llm_content_kind ek = lg_llm_content_event(name, strlen(name));
        cJSON *attrs = NULL, *e = NULL;
        enum lg_llm_content_kind first = LG_LLM_CONTENT_NONE;
        for (size_t j = 0; j < ev->n_attributes; j++) {
            const lg_kv *kv = ev->attributes[j];
            if (kv->key == NULL)
                continue;
            enum lg_llm_content_kind ak =
                ek != LG_LLM_CONTENT_NONE ? ek : lg_llm_content_attr(kv->key, strlen(kv->key));
            if (ak == LG_LLM_CONTENT_NONE)
                continue;
            if (e == NULL) {
                first = ak;
                e = cJSON_CreateObject();
                if (e == NULL || !cJSON_AddItemToArray(events, e))
                    return cJSON_Delete(e), false;
                if (!add_str(e, "name", name) ||
                    !add_u64s(e, "time_unix_nano", ev->time_unix_nano) ||
                    !add_str(e, "kind",
                             lg_llm_content_kind_name(ek != LG_LLM_CONTENT_NONE ? ek : first)) ||
                    (attrs = cJSON_AddArrayToObject(e, "attributes")) == NULL)
                    return false;
            }
            if (!add_kv(attrs, kv))
                return false;
        }
        if (e == NULL && ek != LG_LLM_CONTENT_NONE) {
            /* A content event without attributes still shows that the message happened. */
            e = cJSON_CreateObject();
            if (e == NULL || !cJSON_AddItemToArray(events, e))
                return cJSON_Delete(e), false;
            if (!add_str(e, "name", name) || !add_u64s(e, "time_unix_nano", ev->time_unix_nano) ||
                !add_str(e, "kind", lg_llm_content_kind_name(ek)) ||
                !cJSON_AddArrayToObject(e, "attributes"))
                return false;
        }
    }
    return true;
}

static const char *status_name(const lg_span *s)
{
    if (s->status == NULL)
        return "UNSET";
    switch (s->status->code) {
    case OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK: return "OK";
    case OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR: return "ERROR";
    default: return "UNSET";
    }
}

/* Every finish reason of the span: gen_ai.response.finish_reasons entries, else the one
 * lg_llm_read found. Returns a cJSON array (may be empty) or NULL on OOM. */
static cJSON *finish_reasons(const lg_span *s, const struct lg_llm_call *call)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL)
        return NULL;
    const lg_any_value *v =
        lg_attr_find(s->attributes, s->n_attributes, "gen_ai.response.finish_reasons");
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE &&
        v->array_value) {
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            const char *r = lg_any_str(v->array_value->values[i]);
            if (r && !cJSON_AddItemToArray(arr, cJSON_CreateString(r)))
                return cJSON_Delete(arr), NULL;
        }
    }
    if (cJSON_GetArraySize(arr) == 0 && call->finish_reason &&
        !cJSON_AddItemToArray(arr, cJSON_CreateString(call->finish_reason)))
        return cJSON_Delete(arr), NULL;
    return arr;
}

static bool reason_listed(const struct lg_strlist *l, const cJSON *reasons)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, reasons)
    {
        if (!cJSON_IsString(r))
            continue;
        for (size_t i = 0; i < l->n; i++)
            if (strcasecmp(l->items[i], r->valuestring) == 0)
                return true;
    }
    return false;
}

/* Decides whether the span is stored and builds its record. Returns 1 with *out (malloc'd
 * JSON text), 2 for an LLM span not selected, 0 for a span that is not an LLM call,
 * LG_ENOMEM. *failed tells which rule selected it. */
static int build_record(const struct store_state *st, const lg_resource *res, const lg_scope *scope,
                        const lg_span *s, char **out, bool *failed)
{
    struct lg_llm_call call;
    if (!lg_llm_read(res, scope, s, &call))
        return 0;
    cJSON *reasons = finish_reasons(s, &call);
    if (reasons == NULL)
        return LG_ENOMEM;
    const struct failed_conf *fc = &st->conf->failed;
    bool is_failed = call.failed || reason_listed(&fc->finish_reasons, reasons);
    bool selected = false;
    if (is_failed && fc->enabled) {
        selected = true;
    } else if (st->threshold > 0 && s->trace_id.len > 0) {
        selected =
            lg_store_trace_hash(st->salt, s->trace_id.data, s->trace_id.len) <= st->threshold;
    }
    if (!selected) {
        cJSON_Delete(reasons);
        return 2;
    }
    *failed = is_failed && fc->enabled;

    cJSON *rec = cJSON_CreateObject();
    char idbuf[65];
    bool ok = rec != NULL && cJSON_AddNumberToObject(rec, "v", 1);
    hex(idbuf, &s->trace_id);
    ok = ok && add_str(rec, "trace_id", idbuf);
    hex(idbuf, &s->span_id);
    ok = ok && add_str(rec, "span_id", idbuf);
    if (s->parent_span_id.len) {
        hex(idbuf, &s->parent_span_id);
        ok = ok && add_str(rec, "parent_span_id", idbuf);
    }
    ok = ok && add_str(rec, "name", s->name);
    ok = ok && add_u64s(rec, "start_time_unix_nano", s->start_time_unix_nano);
    ok = ok && add_u64s(rec, "end_time_unix_nano", s->end_time_unix_nano);
    const char *service =
        res ? lg_any_str(lg_attr_find(res->attributes, res->n_attributes, "service.name")) : NULL;
    ok = ok && add_str(rec, "service", service);
    ok = ok && add_str(rec, "convention", lg_llm_convention_name(call.convention));
    ok = ok && add_str(rec, "model", call.model);
    ok = ok && add_str(rec, "request_model", call.request_model);
    ok = ok && add_str(rec, "response_model", call.response_model);
    ok = ok && add_str(rec, "provider", call.provider);
    ok = ok && add_str(rec, "operation", call.operation);
    cJSON *tok = ok ? cJSON_AddObjectToObject(rec, "tokens") : NULL;
    ok = tok != NULL && add_tokens(tok, "input", call.input_tokens) &&
         add_tokens(tok, "output", call.output_tokens) &&
         add_tokens(tok, "total", call.total_tokens) &&
         add_tokens(tok, "cache_read", call.cache_read_tokens) &&
         add_tokens(tok, "cache_write", call.cache_write_tokens) &&
         add_tokens(tok, "reasoning", call.reasoning_tokens);
    /* gen_ai.usage.cost as llm_cost wrote it (lg_llm_read reads that first, then
     * llm.cost.total). */
    if (ok && call.has_cost)
        ok = cJSON_AddNumberToObject(rec, "cost_usd", call.cost_usd) != NULL;
    bool unknown = false;
    if (ok &&
        lg_any_bool(lg_attr_find(s->attributes, s->n_attributes, "llm.cost.unknown_model"),
                    &unknown) &&
        unknown)
        ok = cJSON_AddTrueToObject(rec, "cost_unknown_model") != NULL;
    cJSON *status = ok ? cJSON_AddObjectToObject(rec, "status") : NULL;
    ok =
        status != NULL && add_str(status, "code", status_name(s)) &&
        add_str(status, "message",
                s->status && s->status->message && *s->status->message ? s->status->message : NULL);
    ok = ok && add_str(rec, "error_type", call.error_type);
    const cJSON *first = cJSON_GetArrayItem(reasons, 0);
    ok = ok && add_str(rec, "finish_reason", first ? first->valuestring : NULL);
    if (ok && cJSON_GetArraySize(reasons) > 0) {
        ok = cJSON_AddItemToObject(rec, "finish_reasons", reasons);
        if (ok)
            reasons = NULL;
    }
    ok = ok && cJSON_AddBoolToObject(rec, "failed", is_failed);
    ok = ok && add_str(rec, "selected", *failed ? "failed" : "sampled");
    ok = ok && add_content(rec, s);
    cJSON_Delete(reasons);
    char *text = ok ? cJSON_PrintUnformatted(rec) : NULL;
    cJSON_Delete(rec);
    if (text == NULL)
        return LG_ENOMEM;
    *out = text;
    return 1;
}

/* ---- segments ---- */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Opens a new segment; the caller holds the lock. */
static int open_segment(struct store_state *st, struct lg_err *err)
{
    if (st->fd >= 0) {
        if (st->conf->fsync != FSYNC_NEVER)
            (void)fdatasync(st->fd);
        close(st->fd);
        st->fd = -1;
    }
    const char *dir = st->conf->directory;
    for (int attempt = 0; attempt < 1000; attempt++) {
        char name[64], path[4096];
        snprintf(name, sizeof name, LG_STORE_SEG_PREFIX "%020" PRId64 "-%04u" LG_STORE_SEG_SUFFIX,
                 lg_now_wall_ns(), (unsigned)(st->seg_seq++ % 10000));
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return lg_err_set(err, LG_EIO, "cannot create segment \"%s\": %s", path,
                              strerror(errno));
        /* The umask can only narrow 0600; make it exactly 0600 all the same. */
        if (fchmod(fd, 0600) != 0 ||
            write(fd, LG_STORE_FILE_MAGIC, LG_STORE_FILE_MAGIC_LEN) != LG_STORE_FILE_MAGIC_LEN) {
            int e = errno;
            close(fd);
            unlink(path);
            return lg_err_set(err, LG_EIO, "cannot write segment \"%s\": %s", path, strerror(e));
        }
        if (st->conf->fsync != FSYNC_NEVER && (fdatasync(fd) != 0 || fsync_dir(dir) != 0))
            lg_warn(st->c->id, "cannot sync new segment \"%s\": %s", path, strerror(errno));
        st->fd = fd;
        snprintf(st->seg_name, sizeof st->seg_name, "%s", name);
        st->seg_size = LG_STORE_FILE_MAGIC_LEN;
        st->seg_created_mono = lg_now_mono_ns();
        return LG_OK;
    }
    return lg_err_set(err, LG_EIO, "cannot find a free segment name in \"%s\"", dir);
}

/* Retention with the lock held (never deletes the open segment). */
static void run_retention(struct store_state *st)
{
    const struct retention_conf *r = &st->conf->retention;
    uint64_t by_age = 0, by_size = 0;
    struct lg_err err;
    /* Leave room for the open segment to fill up: the store then never grows past
     * max_size_mib between two runs (create() checks max >= 2 x segment). */
    int64_t max_bytes =
        r->max_size_mib > 0 ? (r->max_size_mib - r->segment_size_mib) * 1024 * 1024 : 0;
    if (r->max_size_mib > 0 && max_bytes <= 0)
        max_bytes = 1;
    if (lg_store_retention(st->conf->directory, r->max_age_ns, max_bytes,
                           st->seg_name[0] ? st->seg_name : NULL, lg_now_wall_ns(), &by_age,
                           &by_size, &err) != LG_OK)
        lg_warn(st->c->id, "retention: %s", err.msg);
    lg_counter_add(st->deleted_age, by_age);
    lg_counter_add(st->deleted_size, by_size);
    if (by_age || by_size)
        lg_info(st->c->id,
                "retention deleted %" PRIu64 " segment(s) past max_age and %" PRIu64
                " over max_size_mib",
                by_age, by_size);
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

struct frames {
    uint8_t *buf;
    size_t len, cap;
    size_t *ends; /* end offset of each frame in buf */
    size_t n, ncap;
    uint64_t nllm, nfailed, nsampled; /* LLM spans seen, records by selection */
};

static int frames_add(struct frames *f, const uint8_t *p, size_t len)
{
    if (f->len + len > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + len)
            cap *= 2;
        uint8_t *nb = realloc(f->buf, cap);
        if (nb == NULL)
            return LG_ENOMEM;
        f->buf = nb;
        f->cap = cap;
    }
    if (f->n == f->ncap) {
        size_t nc = f->ncap ? 2 * f->ncap : 16;
        size_t *ne = realloc(f->ends, nc * sizeof *ne);
        if (ne == NULL)
            return LG_ENOMEM;
        f->ends = ne;
        f->ncap = nc;
    }
    memcpy(f->buf + f->len, p, len);
    f->len += len;
    f->ends[f->n++] = f->len;
    return LG_OK;
}

static int seal_span(struct store_state *st, struct frames *f, const lg_resource *res,
                     const lg_scope *scope, const lg_span *s, struct lg_err *err)
{
    char *text = NULL;
    bool failed = false;
    int sel = build_record(st, res, scope, s, &text, &failed);
    if (sel < 0)
        return lg_err_set(err, sel, "out of memory building a record");
    if (sel == 0)
        return LG_OK;
    f->nllm++;
    if (sel == 2)
        return LG_OK;
    size_t tlen = strlen(text);
    if (tlen > LG_STORE_MAX_RECORD) {
        /* one record too large to seal (a huge prompt, JSON-escaped) must not cost the
         * other calls of the batch their records: it is skipped, counted and logged */
        memset(text, 0, tlen);
        free(text);
        lg_counter_add(st->oversized, 1);
        lg_warn(st->c->id, "an LLM call record of %zu bytes is larger than the store's limit (%u): not stored",
                tlen, LG_STORE_MAX_RECORD);
        return LG_OK;
    }
    uint8_t *frame = NULL;
    size_t flen = 0;
    int rc = lg_store_seal(&st->key, (const uint8_t *)text, tlen, &frame, &flen, err);
    memset(text, 0, tlen); /* plaintext prompt: do not leave it in freed heap */
    free(text);
    if (rc != LG_OK)
        return rc;
    rc = frames_add(f, frame, flen);
    free(frame);
    if (rc != LG_OK)
        return lg_err_set(err, rc, "out of memory");
    if (failed)
        f->nfailed++;
    else
        f->nsampled++;
    return LG_OK;
}

static void store_send(void *ctx, struct lg_batch *b, int64_t deadline,
                       struct lg_export_result *res)
{
    (void)deadline;
    struct store_state *st = ctx;
    struct frames f = {0};
    struct lg_err err = {{0}};
    int rc = LG_OK;
    if (b->signal != LG_SIGNAL_TRACES) {
        res->code = LG_OK;
        return;
    }
    if (b->llm_scanned) {
        for (size_t i = 0; i < b->n_llm_spans && rc == LG_OK; i++) {
            const struct lg_llm_span_ref *r = &b->llm_spans[i];
            rc = seal_span(st, &f, r->rs->resource, r->ss->scope, r->span, &err);
        }
    } else {
        const lg_traces_req *req = b->req.traces;
        for (size_t i = 0; i < req->n_resource_spans && rc == LG_OK; i++) {
            const lg_resource_spans *rs = req->resource_spans[i];
            for (size_t j = 0; j < rs->n_scope_spans && rc == LG_OK; j++) {
                const lg_scope_spans *ss = rs->scope_spans[j];
                for (size_t k = 0; k < ss->n_spans && rc == LG_OK; k++)
                    rc = seal_span(st, &f, rs->resource, ss->scope, ss->spans[k], &err);
            }
        }
    }
    if (rc != LG_OK) {
        /* Nothing of this batch was written; building or sealing cannot succeed on retry
         * unless memory was short. */
        lg_counter_add(st->encode_errors, 1);
        res->code = rc == LG_ENOMEM ? LG_EAGAIN : LG_EINVAL;
        snprintf(res->message, sizeof res->message, "%.255s", err.msg);
        goto out;
    }
    uint64_t nrec = f.nfailed + f.nsampled;
    if (nrec == 0) {
        lg_counter_add(st->skipped, f.nllm);
        res->code = LG_OK;
        goto out;
    }
    pthread_mutex_lock(&st->lock);
    const struct retention_conf *rc_conf = &st->conf->retention;
    bool rotate =
        st->fd < 0 || (st->seg_size > LG_STORE_FILE_MAGIC_LEN &&
                       (st->seg_size + (int64_t)f.len > rc_conf->segment_size_mib * 1024 * 1024 ||
                        lg_now_mono_ns() - st->seg_created_mono > rc_conf->segment_max_age_ns));
    if (rotate) {
        if (open_segment(st, &err) != LG_OK) {
            pthread_mutex_unlock(&st->lock);
            lg_counter_add(st->write_errors, 1);
            res->code = LG_EAGAIN;
            snprintf(res->message, sizeof res->message, "%.255s", err.msg);
            goto out;
        }
        run_retention(st);
    }
    bool ok = true;
    int64_t start = st->seg_size;
    if (st->conf->fsync == FSYNC_ALWAYS) {
        size_t from = 0;
        for (size_t i = 0; i < f.n && ok; i++) {
            ok = write_all(st->fd, f.buf + from, f.ends[i] - from) && fdatasync(st->fd) == 0;
            from = f.ends[i];
        }
    } else {
        ok = write_all(st->fd, f.buf, f.len) &&
             (st->conf->fsync == FSYNC_NEVER || fdatasync(st->fd) == 0);
    }
    if (ok) {
        st->seg_size += (int64_t)f.len;
    } else {
        int e = errno;
        /* Cut the segment back so a retry does not duplicate records and a reader sees no
         * half batch; if even that fails, start a new segment for the retry. */
        if (ftruncate(st->fd, start) != 0) {
            close(st->fd);
            st->fd = -1;
        }
        snprintf(res->message, sizeof res->message, "cannot write segment \"%s/%s\": %s",
                 st->conf->directory, st->seg_name, strerror(e));
    }
    pthread_mutex_unlock(&st->lock);
    if (!ok) {
        lg_counter_add(st->write_errors, 1);
        res->code = LG_EAGAIN;
        goto out;
    }
    lg_counter_add(st->written_failed, f.nfailed);
    lg_counter_add(st->written_sampled, f.nsampled);
    lg_counter_add(st->skipped, f.nllm - nrec); /* once, on the attempt that succeeded */
    res->code = LG_OK;
out:
    free(f.buf);
    free(f.ends);
}

/* ---- life cycle ---- */

static void *retention_main(void *arg)
{
    struct store_state *st = arg;
    pthread_mutex_lock(&st->lock);
    while (!st->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + st->conf->retention.check_interval_ns;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&st->wake, &st->lock, &ts);
        if (!st->stopping)
            run_retention(st);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

static int conf_err(struct lg_component *c, const char *key, struct lg_err *err, const char *msg)
{
    const struct lg_node *n = c->conf_node ? lg_node_get(c->conf_node, key) : NULL;
    if (n == NULL)
        n = c->conf_node;
    if (n)
        return lg_conf_error(err, n, "%s", msg);
    return lg_err_set(err, LG_EINVAL, "exporters.%s: %s", c->id, msg);
}

static struct lg_counter *counter(struct lg_component *c, const char *name, const char *help,
                                  const char *extra)
{
    char labels[256];
    snprintf(labels, sizeof labels, "exporter=\"%s\"%s%s", c->id, extra ? "," : "",
             extra ? extra : "");
    return lg_telemetry_counter(c->rt ? c->rt->telemetry : NULL, name, help, labels);
}

static void store_destroy(struct lg_component *c);

/** create_key: writes a new random key to `path` (0600, never over an existing file),
 *  creating its parent directory (0700) when that is missing. */
static int create_key_file(struct lg_component *c, const char *path, struct lg_err *err)
{
    uint8_t key[32];
    if (RAND_bytes(key, sizeof key) != 1)
        return lg_err_set(err, LG_EINTERNAL, "cannot get random bytes for a new store key");
    char *text = lg_base64_encode(key, sizeof key, false);
    OPENSSL_cleanse(key, sizeof key);
    if (text == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            free(dir);
            OPENSSL_cleanse(text, strlen(text));
            free(text);
            return lg_err_set(err, LG_EIO, "cannot create directory for key_file \"%s\": %s", path, strerror(e));
        }
    }
    free(dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = LG_OK;
    if (fd < 0) {
        rc = lg_err_set(err, LG_EIO, "cannot create key_file \"%s\": %s", path, strerror(errno));
    } else {
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0)
            rc = lg_err_set(err, LG_EIO, "cannot write key_file \"%s\": %s", path, strerror(errno));
        close(fd);
        if (rc != LG_OK)
            unlink(path);
    }
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (rc == LG_OK)
        lg_warn(c->id, "created a new store key in \"%s\": records cannot be read without it; for "
                       "production keep the key apart from the data (key_env from a secret)", path);
    return rc;
}

static int store_create(struct lg_component *c, struct lg_err *err)
{
    struct store_conf *conf = c->conf;
    if (conf->directory == NULL || conf->directory[0] == '\0')
        return conf_err(c, "directory", err, "directory is required");
    bool has_file = conf->key_file && *conf->key_file, has_env = conf->key_env && *conf->key_env;
    if (has_file == has_env)
        return conf_err(c, has_file ? "key_env" : "key_file", err,
                        "exactly one of key_file and key_env is required");
    if (conf->create_key && !has_file)
        return conf_err(c, "create_key", err, "create_key needs key_file");
    if (conf->helper.sending_queue.storage)
        return lg_conf_error(err,
                             lg_node_get(lg_node_get(c->conf_node, "sending_queue"), "storage"),
                             "a persistent queue would write prompts to disk unencrypted: not "
                             "allowed for interaction_store");
    if (conf->retention.max_size_mib > 0 &&
        conf->retention.max_size_mib < 2 * conf->retention.segment_size_mib)
        return conf_err(c, "retention", err,
                        "retention.max_size_mib must be 0 (no limit) or at least twice "
                        "retention.segment_size_mib");
    if (conf->retention.check_interval_ns <= 0)
        return conf_err(c, "retention", err, "retention.check_interval must be positive");
    struct store_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = conf;
    st->fd = -1;
    st->threshold = lg_store_sampling_threshold(conf->successful.sampling_percentage);
    st->salt = conf->successful.hash_salt && *conf->successful.hash_salt
                   ? conf->successful.hash_salt
                   : LG_STORE_DEFAULT_HASH_SALT;
    pthread_mutex_init(&st->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->wake, &ca);
    pthread_condattr_destroy(&ca);
    c->state = st;
    int rc = LG_OK;
    /* `llmgate validate` runs create() too: the key file is made at start, not here */
    if (has_file && conf->create_key && access(conf->key_file, F_OK) != 0 && errno == ENOENT)
        st->key_at_start = true;
    else if (has_file) {
        bool loose = false;
        rc = lg_store_key_load_file(conf->key_file, &st->key, &loose, err);
        if (rc == LG_OK && loose)
            lg_warn(c->id, "key file \"%s\" can be read by group or others (chmod 600 it)",
                    conf->key_file);
    } else {
        rc = lg_store_key_load_env(conf->key_env, &st->key, err);
    }
    if (rc != LG_OK) {
        lg_err_prefix(err, "exporters.%s", c->id);
        store_destroy(c); /* the runtime does not call destroy() after a failed create() */
        return rc;
    }
    st->written_failed = counter(c, "llmgate_interaction_store_records",
                                 "LLM call records written to the store.", "selected=\"failed\"");
    st->written_sampled = counter(c, "llmgate_interaction_store_records",
                                  "LLM call records written to the store.", "selected=\"sampled\"");
    st->skipped = counter(c, "llmgate_interaction_store_skipped_spans",
                          "LLM spans not stored: successful outside successful.sampling_percentage "
                          "(or failed with failed: none).",
                          NULL);
    st->oversized = counter(c, "llmgate_interaction_store_oversized_records",
                            "LLM call records not stored because they exceed the 64 MiB record limit.", NULL);
    st->write_errors =
        counter(c, "llmgate_interaction_store_write_errors",
                "Failed writes to the store (the batch is retried or counted as failed).", NULL);
    st->encode_errors = counter(c, "llmgate_interaction_store_encode_errors",
                                "Batches whose records could not be built or encrypted.", NULL);
    st->corrupt =
        counter(c, "llmgate_interaction_store_corrupt_records",
                "Records found corrupted (bad framing or GCM tag) when verifying the store.", NULL);
    st->truncated = counter(
        c, "llmgate_interaction_store_truncated_records",
        "Records cut short at a segment's end (a crash mid-write) when verifying the store.", NULL);
    st->deleted_age = counter(c, "llmgate_interaction_store_segments_deleted",
                              "Segments deleted by retention.", "reason=\"max_age\"");
    st->deleted_size = counter(c, "llmgate_interaction_store_segments_deleted",
                               "Segments deleted by retention.", "reason=\"max_size\"");
    st->perm_fixed =
        counter(c, "llmgate_interaction_store_permissions_fixed",
                "Store directory or segments whose loose mode was fixed at start.", NULL);
    rc = lg_exporter_helper_create(c, &conf->helper, store_send, st, &st->helper, err);
    if (rc != LG_OK)
        store_destroy(c);
    return rc;
}

static int store_start(struct lg_component *c, struct lg_err *err)
{
    struct store_state *st = c->state;
    int fixed = 0;
    int rc;
    if (st->key_at_start) {
        rc = create_key_file(c, st->conf->key_file, err);
        bool loose = false;
        if (rc == LG_OK)
            rc = lg_store_key_load_file(st->conf->key_file, &st->key, &loose, err);
        if (rc != LG_OK) {
            lg_err_prefix(err, "exporters.%s", c->id);
            return rc;
        }
        st->key_at_start = false;
    }
    rc = lg_store_check_dir(st->conf->directory, true, st->conf->fix_permissions, &fixed, err);
    if (rc != LG_OK) {
        lg_err_prefix(err, "exporters.%s", c->id);
        return rc;
    }
    if (fixed) {
        lg_warn(c->id,
                "store \"%s\": made %d loose permission(s) private (directory 0700, segments 0600)",
                st->conf->directory, fixed);
        lg_counter_add(st->perm_fixed, (uint64_t)fixed);
    }
    if (st->conf->verify_on_start) {
        struct lg_store_read_stats rs = {0};
        rc = lg_store_read_dir(st->conf->directory, &st->key, 1, NULL, NULL, &rs, err);
        if (rc != LG_OK) {
            lg_err_prefix(err, "exporters.%s", c->id);
            return rc;
        }
        lg_counter_add(st->corrupt, rs.corrupt);
        lg_counter_add(st->truncated, rs.truncated);
        if (rs.corrupt || rs.truncated)
            lg_warn(c->id,
                    "store \"%s\": %" PRIu64 " corrupted and %" PRIu64
                    " truncated record(s) found; they are skipped when read",
                    st->conf->directory, rs.corrupt, rs.truncated);
        lg_info(c->id,
                "store \"%s\": %" PRIu64 " readable record(s) in %" PRIu64 " segment(s); key id %s",
                st->conf->directory, rs.records, rs.segments, st->key.id_hex);
    }
    pthread_mutex_lock(&st->lock);
    rc = open_segment(st, err);
    if (rc == LG_OK)
        run_retention(st);
    pthread_mutex_unlock(&st->lock);
    if (rc != LG_OK) {
        lg_err_prefix(err, "exporters.%s", c->id);
        return rc;
    }
    if (pthread_create(&st->retention_thread, NULL, retention_main, st) != 0)
        return lg_err_set(err, LG_EINTERNAL, "exporters.%s: cannot start the retention thread",
                          c->id);
    st->retention_running = true;
    return lg_exporter_helper_start(st->helper, err);
}

static int store_consume(struct lg_component *c, struct lg_batch *b)
{
    struct store_state *st = c->state;
    return lg_exporter_helper_consume(st->helper, b);
}

static int store_shutdown(struct lg_component *c, int64_t deadline)
{
    struct store_state *st = c->state;
    int rc = lg_exporter_helper_shutdown(st->helper, deadline);
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->wake);
    pthread_mutex_unlock(&st->lock);
    if (st->retention_running) {
        pthread_join(st->retention_thread, NULL);
        st->retention_running = false;
    }
    pthread_mutex_lock(&st->lock);
    if (st->fd >= 0) {
        if (st->conf->fsync != FSYNC_NEVER && fdatasync(st->fd) != 0)
            lg_warn(c->id, "cannot sync \"%s\": %s", st->seg_name, strerror(errno));
        close(st->fd);
        st->fd = -1;
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

static void store_destroy(struct lg_component *c)
{
    struct store_state *st = c->state;
    if (st == NULL)
        return;
    if (st->helper)
        lg_exporter_helper_destroy(st->helper);
    if (st->retention_running) {
        pthread_mutex_lock(&st->lock);
        st->stopping = true;
        pthread_cond_broadcast(&st->wake);
        pthread_mutex_unlock(&st->lock);
        pthread_join(st->retention_thread, NULL);
    }
    if (st->fd >= 0)
        close(st->fd);
    lg_store_key_wipe(&st->key);
    pthread_cond_destroy(&st->wake);
    pthread_mutex_destroy(&st->lock);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_interaction_store_exporter = {
    .type = "interaction_store",
    .kind = LG_EXPORTER,
    .signals = LG_TRACES,
    .description = "keeps prompts and completions of failed (and sampled successful) LLM calls in "
                   "an encrypted local store",
    .conf_size = sizeof(struct store_conf),
    .fields = store_fields,
    .create = store_create,
    .start = store_start,
    .consume = store_consume,
    .shutdown = store_shutdown,
    .destroy = store_destroy,
};
