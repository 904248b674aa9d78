/* core/conf.c — the configuration loader: YAML (libyaml document API) to an lg_node tree,
 * env expansion, merging of several sources, dumping back to YAML, and the typed field
 * tables (lg_conf_apply) with the scalar parsers they share with custom fields.
 *
 * Owns: every node and string of a loaded tree, in the doc's arena (freed by
 * lg_conf_doc_free). libyaml parsers, documents and emitters live only inside one call and
 * are deleted on every path. No globals: loading runs once, on one thread, at start. */
#include "conf.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Aliases copy their subtree at every use, so a small file can describe an exponentially
 * large tree ("billion laughs"). Real configs have a few thousand nodes; 100k nodes cost
 * about 15 MB, so the cap bounds memory well before it hurts. */
#define CONF_MAX_NODES 100000
/* The builder, merge, dump and apply recurse once per level; real configs nest < 15 deep. */
#define CONF_MAX_DEPTH 100
/* Config files are small; the cap only stops a mistaken `--config /dev/zero`. */
#define CONF_MAX_FILE_BYTES (64u * 1024u * 1024u)
#define CONF_READ_CHUNK 65536
#define CONF_TEXT_NAME "<text>"
#define NS_PER_US INT64_C(1000)
#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define NS_PER_MIN (60 * NS_PER_S)
#define NS_PER_HOUR (60 * NS_PER_MIN)

/* ------------------------------------------------------------------ small helpers ---- */

/** Growable malloc'd text; `oom` sticks so callers check once at the end. */
struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_free(struct strbuf *b)
{
    free(b->p);
    *b = (struct strbuf){0};
}

static const char *node_kind(const struct lg_node *n)
{
    if (n == NULL)
        return "nothing";
    switch (n->type) {
    case LG_NODE_NULL: return "null";
    case LG_NODE_SCALAR: return "a scalar";
    case LG_NODE_MAP: return "a mapping";
    case LG_NODE_SEQ: return "a sequence";
    }
    return "an unknown node";
}

/** "parent.key" (or "key" at the root), in the arena. */
static char *path_child(struct lg_arena *a, const char *parent, const char *key)
{
    size_t pl = strlen(parent), kl = strlen(key);
    char *p = lg_arena_alloc(a, pl + kl + 2);
    if (p == NULL)
        return NULL;
    if (pl == 0) {
        memcpy(p, key, kl + 1);
        return p;
    }
    memcpy(p, parent, pl);
    p[pl] = '.';
    memcpy(p + pl + 1, key, kl + 1);
    return p;
}

/** "parent[i]", in the arena. */
static char *path_item(struct lg_arena *a, const char *parent, size_t i)
{
    int n = snprintf(NULL, 0, "%s[%zu]", parent, i);
    char *p = lg_arena_alloc(a, (size_t)n + 1);
    if (p != NULL)
        snprintf(p, (size_t)n + 1, "%s[%zu]", parent, i);
    return p;
}

static bool is_null_text(const char *s, size_t len)
{
    static const char *const nulls[] = {"~", "null", "Null", "NULL"};
    if (len == 0)
        return true;
    for (size_t i = 0; i < LG_ARRAY_LEN(nulls); i++)
        if (strlen(nulls[i]) == len && memcmp(s, nulls[i], len) == 0)
            return true;
    return false;
}

int lg_conf_error(struct lg_err *err, const struct lg_node *n, const char *fmt, ...)
{
    if (err == NULL)
        return LG_EINVAL;
    int used = 0;
    if (n != NULL) {
        const char *path = n->path ? n->path : "";
        const char *file = n->file ? n->file : "?";
        if (path[0])
            used = snprintf(err->msg, sizeof err->msg, "%s:%d:%d: %s: ", file, n->line, n->col,
                            path);
        else
            used = snprintf(err->msg, sizeof err->msg, "%s:%d:%d: ", file, n->line, n->col);
    }
    if (used < 0 || (size_t)used >= sizeof err->msg)
        used = 0; /* a position longer than the buffer: keep the message instead */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + used, sizeof err->msg - (size_t)used, fmt, ap);
    va_end(ap);
    return LG_EINVAL;
}

const struct lg_node *lg_node_get(const struct lg_node *n, const char *key)
{
    if (n == NULL || n->type != LG_NODE_MAP || key == NULL)
        return NULL;
    for (size_t i = 0; i < n->npairs; i++)
        if (strcmp(n->pairs[i].key, key) == 0)
            return n->pairs[i].value;
    return NULL;
}

bool lg_node_is_null(const struct lg_node *n) { return n != NULL && n->type == LG_NODE_NULL; }

/* ------------------------------------------------------------------ env expansion ---- */

static bool valid_env_name(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_';
        if (!ok)
            return false;
    }
    return true;
}

/** Expands one `${...}` body (the text between the braces) into out. */
static int expand_ref(const char *body, size_t len, lg_getenv_fn getenv_fn, void *getenv_ctx,
                      const struct lg_node *at, struct strbuf *out, struct lg_err *err)
{
    const char *name = body;
    size_t name_len = len;
    const char *colon = memchr(body, ':', len);
    /* "scheme:rest", unless the colon starts ":-default" (then there is no scheme). */
    if (colon != NULL && !(colon + 1 < body + len && colon[1] == '-')) {
        size_t scheme_len = (size_t)(colon - body);
        if (scheme_len != strlen("env") || memcmp(body, "env", scheme_len) != 0)
            return lg_conf_error(err, at,
                                 "unsupported config provider \"%.*s\" in \"${%.*s}\" (only "
                                 "${env:VAR} is supported; write $$ for a literal $)",
                                 (int)scheme_len, body, (int)len, body);
        name = colon + 1;
        name_len = len - scheme_len - 1;
    }
    const char *def = NULL;
    size_t def_len = 0;
    const char *dash = NULL;
    for (size_t i = 0; i + 1 < name_len; i++) {
        if (name[i] == ':' && name[i + 1] == '-') {
            dash = name + i;
            break;
        }
    }
    if (dash != NULL) {
        def = dash + 2;
        def_len = name_len - (size_t)(def - name);
        name_len = (size_t)(dash - name);
    }
    if (!valid_env_name(name, name_len))
        return lg_conf_error(err, at,
                             "invalid environment variable name \"%.*s\" in \"${%.*s}\" (use "
                             "letters, digits and _, not starting with a digit)",
                             (int)name_len, name, (int)len, body);
    char var[256];
    if (name_len >= sizeof var)
        return lg_conf_error(err, at, "environment variable name \"%.*s...\" is too long", 32,
                             name);
    memcpy(var, name, name_len);
    var[name_len] = '\0';
    const char *val = getenv_fn(var, getenv_ctx);
    if (val != NULL && val[0] != '\0')
        sb_add(out, val, strlen(val));
    else if (def != NULL)
        sb_add(out, def, def_len);
    else if (val == NULL)
        return lg_conf_error(err, at,
                             "environment variable \"%s\" is not set (use ${env:%s:-default} "
                             "to give a default)",
                             var, var);
    return 0;
}

/** Expands `in` into a NUL-terminated arena string. *whole_ref tells whether `in` was exactly
 *  one ${...} reference. Errors name `at`. */
static int expand_env(struct lg_arena *arena, const char *in, size_t len, lg_getenv_fn getenv_fn,
                      void *getenv_ctx, const struct lg_node *at, char **result, bool *whole_ref,
                      struct lg_err *err)
{
    *whole_ref = false;
    if (memchr(in, '$', len) == NULL) {
        *result = lg_arena_strndup(arena, in, len);
        return *result ? 0 : lg_err_set(err, LG_ENOMEM, "out of memory loading the config");
    }
    struct strbuf out = {0};
    size_t i = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        const char *dollar = memchr(in + i, '$', len - i);
        if (dollar == NULL) {
            sb_add(&out, in + i, len - i);
            break;
        }
        size_t d = (size_t)(dollar - in);
        sb_add(&out, in + i, d - i);
        if (d + 1 < len && in[d + 1] == '$') {
            sb_add(&out, "$", 1);
            i = d + 2;
        } else if (d + 1 < len && in[d + 1] == '{') {
            const char *body = in + d + 2;
            const char *close = memchr(body, '}', len - d - 2);
            if (close == NULL) {
                rc = lg_conf_error(err, at,
                                   "unterminated \"${\" in \"%.*s\" (write $$ for a literal $)",
                                   (int)len, in);
                break;
            }
            size_t blen = (size_t)(close - body);
            for (size_t k = 0; k + 1 < blen; k++) {
                if (body[k] == '$' && body[k + 1] == '{') {
                    rc = lg_conf_error(err, at,
                                       "nested \"${\" inside \"${%.*s}\" is not supported",
                                       (int)blen, body);
                    break;
                }
            }
            if (rc == 0)
                rc = expand_ref(body, blen, getenv_fn, getenv_ctx, at, &out, err);
            if (d == 0 && close == in + len - 1)
                *whole_ref = true;
            i = (size_t)(close - in) + 1;
        } else {
            /* A bare $VAR or a lone $ stays as written, as in the Collector. */
            sb_add(&out, "$", 1);
            i = d + 1;
        }
    }
    if (rc == 0 && out.oom)
        rc = lg_err_set(err, LG_ENOMEM, "out of memory loading the config");
    if (rc == 0) {
        *result = lg_arena_strndup(arena, out.p ? out.p : "", out.len);
        if (*result == NULL)
            rc = lg_err_set(err, LG_ENOMEM, "out of memory loading the config");
    }
    sb_free(&out);
    return rc;
}

static const char *default_getenv(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

/* ------------------------------------------------------------------ YAML -> tree ---- */

struct loader {
    struct lg_arena *arena;
    const char *file;          /* display name, in the arena */
    yaml_document_t *ydoc;
    lg_getenv_fn getenv_fn;    /* NULL: no expansion (field defaults) */
    void *getenv_ctx;
    unsigned char *active;     /* per YAML node index: being built (alias cycle guard) */
    size_t nnodes;             /* YAML nodes in ydoc */
    size_t built;              /* lg_nodes made so far (billion-laughs guard) */
    const struct lg_node *fixed_pos; /* when set, every node takes this file:line:col */
    struct lg_err *err;
};

/** One key/value of a mapping after merge keys are resolved. */
struct eff_pair {
    const char *key;           /* NUL-terminated, owned by the YAML document */
    yaml_mark_t key_mark;
    int value;                 /* YAML node index */
};

struct pairvec {
    struct eff_pair *v;
    size_t n, cap;
};

static int pv_push(struct pairvec *pv, struct eff_pair p)
{
    if (pv->n == pv->cap) {
        size_t cap = pv->cap ? pv->cap * 2 : 8;
        struct eff_pair *v = realloc(pv->v, cap * sizeof *v);
        if (v == NULL)
            return LG_ENOMEM;
        pv->v = v;
        pv->cap = cap;
    }
    pv->v[pv->n++] = p;
    return 0;
}

static bool pv_has(const struct pairvec *pv, const char *key)
{
    for (size_t i = 0; i < pv->n; i++)
        if (strcmp(pv->v[i].key, key) == 0)
            return true;
    return false;
}

/** A node carrying only a position and path, for errors about YAML marks. */
static struct lg_node mark_node(const struct loader *L, yaml_mark_t m, const char *path)
{
    struct lg_node n = {.type = LG_NODE_NULL, .file = L->file, .path = path};
    if (L->fixed_pos != NULL) {
        n.file = L->fixed_pos->file;
        n.line = L->fixed_pos->line;
        n.col = L->fixed_pos->col;
    } else {
        n.line = (int)m.line + 1;
        n.col = (int)m.column + 1;
    }
    return n;
}

static struct lg_node *new_node(struct loader *L, enum lg_node_type type, yaml_mark_t m,
                                const char *path)
{
    if (++L->built > CONF_MAX_NODES) {
        struct lg_node at = mark_node(L, m, path);
        lg_conf_error(L->err, &at,
                      "the config expands to more than %d nodes (aliases used too often?)",
                      CONF_MAX_NODES);
        return NULL;
    }
    struct lg_node *n = lg_arena_calloc(L->arena, 1, sizeof *n);
    if (n == NULL) {
        lg_err_set(L->err, LG_ENOMEM, "out of memory loading the config");
        return NULL;
    }
    *n = mark_node(L, m, path);
    n->type = type;
    return n;
}

static int ymem_error(struct loader *L)
{
    return lg_err_set(L->err, LG_ENOMEM, "out of memory loading the config");
}

/* A failed new_node() already filled err; return its code. */
static int node_fail(struct loader *L)
{
    return L->built > CONF_MAX_NODES ? LG_EINVAL : LG_ENOMEM;
}

static bool is_merge_key(const yaml_node_t *k)
{
    return k->type == YAML_SCALAR_NODE && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           k->data.scalar.length == 2 && memcmp(k->data.scalar.value, "<<", 2) == 0;
}

static int collect_pairs(struct loader *L, int index, const char *path, int depth,
                         struct pairvec *out);

/** Adds the effective pairs of merge source `src` to out, skipping keys written in `map`
 *  itself or already present (an earlier merge source wins). */
static int merge_from(struct loader *L, yaml_node_t *map, int src, const char *path,
                      yaml_mark_t at, int depth, struct pairvec *out)
{
    yaml_node_t *s = yaml_document_get_node(L->ydoc, src);
    if (s == NULL || s->type != YAML_MAPPING_NODE) {
        struct lg_node n = mark_node(L, at, path);
        return lg_conf_error(L->err, &n,
                             "a merge key (<<) needs a mapping or a list of mappings, got %s",
                             s && s->type == YAML_SEQUENCE_NODE ? "a sequence" : "a scalar");
    }
    struct pairvec sp = {0};
    int rc = collect_pairs(L, src, path, depth + 1, &sp);
    for (size_t i = 0; rc == 0 && i < sp.n; i++) {
        bool explicit_key = false;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
             p < map->data.mapping.pairs.top && !explicit_key; p++) {
            yaml_node_t *k = yaml_document_get_node(L->ydoc, p->key);
            explicit_key = !is_merge_key(k) && strcmp((char *)k->data.scalar.value,
                                                      sp.v[i].key) == 0;
        }
        if (!explicit_key && !pv_has(out, sp.v[i].key))
            rc = pv_push(out, sp.v[i]) ? ymem_error(L) : 0;
    }
    free(sp.v);
    return rc;
}

/** The key/value list of YAML mapping `index` with merge keys resolved, in document order
 *  (merged keys take the place of their `<<`). Checks keys are unique scalars. */
static int collect_pairs(struct loader *L, int index, const char *path, int depth,
                         struct pairvec *out)
{
    yaml_node_t *map = yaml_document_get_node(L->ydoc, index);
    if (depth > CONF_MAX_DEPTH) {
        struct lg_node n = mark_node(L, map->start_mark, path);
        return lg_conf_error(L->err, &n, "the config nests more than %d levels deep",
                             CONF_MAX_DEPTH);
    }
    if (L->active[index - 1]) {
        struct lg_node n = mark_node(L, map->start_mark, path);
        return lg_conf_error(L->err, &n, "an alias refers to a mapping that contains it");
    }
    /* Pass 1: keys are scalars and written once (merge keys may repeat). */
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(L->ydoc, p->key);
        if (k->type != YAML_SCALAR_NODE) {
            struct lg_node n = mark_node(L, k->start_mark, path);
            return lg_conf_error(L->err, &n, "mapping keys must be scalars, got %s",
                                 k->type == YAML_MAPPING_NODE ? "a mapping" : "a sequence");
        }
        if (strlen((char *)k->data.scalar.value) != k->data.scalar.length) {
            struct lg_node n = mark_node(L, k->start_mark, path);
            return lg_conf_error(L->err, &n, "a mapping key contains a NUL character");
        }
        if (is_merge_key(k))
            continue;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(L->ydoc, q->key);
            if (!is_merge_key(qk) &&
                strcmp((char *)qk->data.scalar.value, (char *)k->data.scalar.value) == 0) {
                const char *kp = path_child(L->arena, path, (char *)k->data.scalar.value);
                if (kp == NULL)
                    return ymem_error(L);
                struct lg_node n = mark_node(L, k->start_mark, kp);
                return lg_conf_error(L->err, &n,
                                     "duplicate key \"%s\" (first defined at line %zu, again "
                                     "at line %zu)",
                                     (char *)k->data.scalar.value, qk->start_mark.line + 1,
                                     k->start_mark.line + 1);
            }
        }
    }
    /* Pass 2: document order, merged keys where their << stands. */
    L->active[index - 1] = 1;
    int rc = 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         rc == 0 && p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(L->ydoc, p->key);
        if (!is_merge_key(k)) {
            /* merge_from() leaves out keys written here, so this one is the only copy. */
            struct eff_pair e = {(char *)k->data.scalar.value, k->start_mark, p->value};
            if (pv_push(out, e))
                rc = ymem_error(L);
            continue;
        }
        yaml_node_t *v = yaml_document_get_node(L->ydoc, p->value);
        if (v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 rc == 0 && it < v->data.sequence.items.top; it++)
                rc = merge_from(L, map, *it, path, k->start_mark, depth, out);
        } else {
            rc = merge_from(L, map, p->value, path, k->start_mark, depth, out);
        }
    }
    L->active[index - 1] = 0;
    return rc;
}

/** Builds the subtree of YAML node `index` at `path`; `pos` is where it is written (its key,
 *  for map values). */
static int build_node(struct loader *L, int index, const char *path, yaml_mark_t pos, int depth,
                      struct lg_node **out)
{
    yaml_node_t *y = yaml_document_get_node(L->ydoc, index);
    if (depth > CONF_MAX_DEPTH) {
        struct lg_node n = mark_node(L, pos, path);
        return lg_conf_error(L->err, &n, "the config nests more than %d levels deep",
                             CONF_MAX_DEPTH);
    }
    if (L->active[index - 1]) {
        struct lg_node n = mark_node(L, pos, path);
        return lg_conf_error(L->err, &n, "an alias refers to a node that contains it");
    }
    int rc = 0;
    struct lg_node *n = NULL;
    switch (y->type) {
    case YAML_SCALAR_NODE: {
        const char *text = (const char *)y->data.scalar.value;
        size_t len = y->data.scalar.length;
        bool quoted = y->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        bool null = !quoted && is_null_text(text, len);
        n = new_node(L, null ? LG_NODE_NULL : LG_NODE_SCALAR, pos, path);
        if (n == NULL)
            return node_fail(L);
        if (null) {
            n->scalar = "";
            break;
        }
        if (strlen(text) != len)
            return lg_conf_error(L->err, n, "NUL characters in values are not supported");
        n->quoted = quoted;
        if (L->getenv_fn == NULL) {
            n->scalar = lg_arena_strndup(L->arena, text, len);
            if (n->scalar == NULL)
                return ymem_error(L);
            break;
        }
        char *expanded = NULL;
        bool whole_ref = false;
        rc = expand_env(L->arena, text, len, L->getenv_fn, L->getenv_ctx, n, &expanded,
                        &whole_ref, L->err);
        if (rc)
            return rc;
        n->scalar = expanded;
        /* `key: ${env:X:-}` is null in the Collector too: keeps the field's default. */
        if (!quoted && whole_ref && expanded[0] == '\0')
            n->type = LG_NODE_NULL;
        break;
    }
    case YAML_SEQUENCE_NODE: {
        n = new_node(L, LG_NODE_SEQ, pos, path);
        if (n == NULL)
            return node_fail(L);
        size_t cnt = (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
        if (cnt) {
            n->items = lg_arena_calloc(L->arena, cnt, sizeof *n->items);
            if (n->items == NULL)
                return ymem_error(L);
        }
        L->active[index - 1] = 1;
        for (size_t i = 0; rc == 0 && i < cnt; i++) {
            int item = y->data.sequence.items.start[i];
            const char *ip = path_item(L->arena, path, i);
            if (ip == NULL) {
                rc = ymem_error(L);
                break;
            }
            rc = build_node(L, item, ip, yaml_document_get_node(L->ydoc, item)->start_mark,
                            depth + 1, &n->items[i]);
            if (rc == 0)
                n->nitems = i + 1;
        }
        L->active[index - 1] = 0;
        break;
    }
    case YAML_MAPPING_NODE: {
        n = new_node(L, LG_NODE_MAP, pos, path);
        if (n == NULL)
            return node_fail(L);
        struct pairvec pv = {0};
        rc = collect_pairs(L, index, path, depth, &pv);
        if (rc == 0 && pv.n) {
            n->pairs = lg_arena_calloc(L->arena, pv.n, sizeof *n->pairs);
            if (n->pairs == NULL)
                rc = ymem_error(L);
        }
        L->active[index - 1] = 1;
        for (size_t i = 0; rc == 0 && i < pv.n; i++) {
            struct lg_node_pair *pair = &n->pairs[i];
            pair->key = lg_arena_strdup(L->arena, pv.v[i].key);
            const char *cp = path_child(L->arena, path, pv.v[i].key);
            if (pair->key == NULL || cp == NULL) {
                rc = ymem_error(L);
                break;
            }
            rc = build_node(L, pv.v[i].value, cp, pv.v[i].key_mark, depth + 1, &pair->value);
            if (rc == 0)
                n->npairs = i + 1;
        }
        L->active[index - 1] = 0;
        free(pv.v);
        break;
    }
    default:
        return lg_err_set(L->err, LG_EINTERNAL, "%s: empty YAML node", L->file);
    }
    if (rc == 0)
        *out = n;
    return rc;
}

static int yaml_parser_failed(const yaml_parser_t *p, const char *file, struct lg_err *err)
{
    if (p->error == YAML_MEMORY_ERROR)
        return lg_err_set(err, LG_ENOMEM, "%s: out of memory parsing YAML", file);
    if (p->error == YAML_READER_ERROR)
        return lg_err_set(err, LG_EINVAL, "%s:%zu:%zu: YAML syntax error: %s (at byte %zu)", file,
                          p->mark.line + 1, p->mark.column + 1,
                          p->problem ? p->problem : "unreadable text", p->problem_offset);
    char ctx[LG_ERR_MAX / 2] = "";
    if (p->context != NULL)
        snprintf(ctx, sizeof ctx, " (%s)", p->context);
    return lg_err_set(err, LG_EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s", file,
                      p->problem_mark.line + 1, p->problem_mark.column + 1,
                      p->problem ? p->problem : "invalid YAML", ctx);
}

/** Parses one YAML document from text into *root (NULL for an empty stream). */
static int parse_yaml(struct loader *L, const char *text, size_t len, const char *root_path,
                      struct lg_node **root)
{
    yaml_parser_t parser;
    yaml_document_t ydoc;
    *root = NULL;
    if (!yaml_parser_initialize(&parser))
        return ymem_error(L);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ydoc)) {
        int rc = yaml_parser_failed(&parser, L->file, L->err);
        yaml_parser_delete(&parser);
        return rc;
    }
    int rc = 0;
    yaml_node_t *yroot = yaml_document_get_root_node(&ydoc);
    if (yroot != NULL) {
        /* A second document is refused rather than silently ignored. */
        yaml_document_t next;
        if (!yaml_parser_load(&parser, &next)) {
            rc = yaml_parser_failed(&parser, L->file, L->err);
        } else {
            yaml_node_t *nroot = yaml_document_get_root_node(&next);
            if (nroot != NULL) {
                struct lg_node at = mark_node(L, nroot->start_mark, "");
                rc = lg_conf_error(L->err, &at,
                                   "only one YAML document is allowed in a config source");
            }
            yaml_document_delete(&next);
        }
    }
    if (rc == 0 && yroot != NULL) {
        L->ydoc = &ydoc;
        L->nnodes = (size_t)(ydoc.nodes.top - ydoc.nodes.start);
        L->active = calloc(L->nnodes, 1);
        if (L->active == NULL)
            rc = ymem_error(L);
        else
            rc = build_node(L, 1, root_path, yroot->start_mark, 0, root);
        free(L->active);
        L->active = NULL;
        L->ydoc = NULL;
    }
    yaml_document_delete(&ydoc);
    yaml_parser_delete(&parser);
    return rc;
}

static int read_file(const char *path, char **text, size_t *len, struct lg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return lg_err_set(err, LG_EIO, "cannot read config file \"%s\": %s", path,
                          strerror(errno));
    struct strbuf b = {0};
    char chunk[CONF_READ_CHUNK];
    int rc = 0;
    for (;;) {
        size_t got = fread(chunk, 1, sizeof chunk, f);
        sb_add(&b, chunk, got);
        if (got < sizeof chunk) {
            if (ferror(f))
                rc = lg_err_set(err, LG_EIO, "cannot read config file \"%s\": %s", path,
                                strerror(errno ? errno : EIO));
            break;
        }
        if (b.len > CONF_MAX_FILE_BYTES) {
            rc = lg_err_set(err, LG_EINVAL, "cannot read config file \"%s\": larger than %u bytes",
                            path, CONF_MAX_FILE_BYTES);
            break;
        }
    }
    fclose(f);
    if (rc == 0 && b.oom)
        rc = lg_err_set(err, LG_ENOMEM, "cannot read config file \"%s\": out of memory", path);
    if (rc == 0 && b.p == NULL)
        sb_add(&b, "", 0);
    if (rc == 0 && b.oom)
        rc = lg_err_set(err, LG_ENOMEM, "cannot read config file \"%s\": out of memory", path);
    if (rc) {
        sb_free(&b);
        return rc;
    }
    *text = b.p;
    *len = b.len;
    return 0;
}

/** Merges `src` over `dst` (both in the same arena) and returns the result. */
static struct lg_node *merge_nodes(struct lg_arena *a, struct lg_node *dst, struct lg_node *src,
                                   bool *oom)
{
    if (dst == NULL)
        return src;
    if (dst->type != LG_NODE_MAP || src->type != LG_NODE_MAP)
        return src; /* the Collector: a later value replaces, unless both are maps */
    size_t cap = dst->npairs + src->npairs;
    struct lg_node_pair *pairs = cap ? lg_arena_calloc(a, cap, sizeof *pairs) : NULL;
    if (cap && pairs == NULL) {
        *oom = true;
        return dst;
    }
    if (dst->npairs)
        memcpy(pairs, dst->pairs, dst->npairs * sizeof *pairs);
    size_t n = dst->npairs;
    for (size_t i = 0; i < src->npairs; i++) {
        size_t j = 0;
        while (j < n && strcmp(pairs[j].key, src->pairs[i].key) != 0)
            j++;
        if (j < n) {
            pairs[j].value = merge_nodes(a, pairs[j].value, src->pairs[i].value, oom);
        } else {
            pairs[n++] = src->pairs[i];
        }
    }
    dst->pairs = pairs;
    dst->npairs = n;
    return dst;
}

static int load_source(struct lg_arena *arena, const struct lg_conf_source *s,
                       lg_getenv_fn getenv_fn, void *getenv_ctx, struct lg_node **root,
                       struct lg_err *err)
{
    char *owned = NULL;
    const char *text;
    size_t len;
    const char *name;
    if (s->path != NULL) {
        int rc = read_file(s->path, &owned, &len, err);
        if (rc)
            return rc;
        text = owned;
        name = s->path;
    } else if (s->text != NULL) {
        text = s->text;
        len = strlen(s->text);
        name = s->name ? s->name : CONF_TEXT_NAME;
    } else {
        return lg_err_set(err, LG_EINVAL, "a config source needs a file path or text");
    }
    struct loader L = {.arena = arena, .getenv_fn = getenv_fn, .getenv_ctx = getenv_ctx,
                       .err = err};
    L.file = lg_arena_strdup(arena, name);
    int rc = L.file ? parse_yaml(&L, text, len, "", root) : ymem_error(&L);
    free(owned);
    if (rc)
        return rc;
    struct lg_node *r = *root;
    if (r == NULL || r->type == LG_NODE_NULL) {
        /* An empty file (or a lone `---`) is an empty config. */
        yaml_mark_t start = {0};
        r = new_node(&L, LG_NODE_MAP, start, "");
        if (r == NULL)
            return node_fail(&L);
        *root = r;
    }
    if (r->type != LG_NODE_MAP)
        return lg_conf_error(err, r, "the top level of a config must be a mapping, got %s",
                             node_kind(r));
    return 0;
}

int lg_conf_load(const struct lg_conf_source *src, size_t nsrc, lg_getenv_fn getenv_fn,
                 void *getenv_ctx, struct lg_conf_doc *doc, struct lg_err *err)
{
    struct lg_arena *arena = lg_arena_create(0);
    if (arena == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory loading the config");
    if (getenv_fn == NULL)
        getenv_fn = default_getenv;
    struct lg_node *merged = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nsrc; i++) {
        struct lg_node *root = NULL;
        rc = load_source(arena, &src[i], getenv_fn, getenv_ctx, &root, err);
        bool oom = false;
        if (rc == 0)
            merged = merge_nodes(arena, merged, root, &oom);
        if (rc == 0 && oom)
            rc = lg_err_set(err, LG_ENOMEM, "out of memory merging config sources");
    }
    if (rc == 0 && merged == NULL) {
        merged = lg_arena_calloc(arena, 1, sizeof *merged);
        if (merged == NULL) {
            rc = lg_err_set(err, LG_ENOMEM, "out of memory loading the config");
        } else {
            merged->type = LG_NODE_MAP;
            merged->file = CONF_TEXT_NAME;
            merged->line = merged->col = 1;
            merged->path = "";
        }
    }
    if (rc) {
        lg_arena_destroy(arena);
        return rc;
    }
    doc->arena = arena;
    doc->root = merged;
    return 0;
}

void lg_conf_doc_free(struct lg_conf_doc *doc)
{
    if (doc == NULL)
        return;
    lg_arena_destroy(doc->arena);
    doc->arena = NULL;
    doc->root = NULL;
}

/* ------------------------------------------------------------------ tree -> YAML ---- */

static int dump_write(void *data, unsigned char *buffer, size_t size)
{
    struct strbuf *b = data;
    sb_add(b, (const char *)buffer, size);
    return !b->oom;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1,
                                      1, style))
        return -1;
    return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int emit_node(yaml_emitter_t *em, const struct lg_node *n, int depth)
{
    yaml_event_t ev;
    if (depth > CONF_MAX_DEPTH)
        return -1;
    switch (n->type) {
    case LG_NODE_NULL:
        return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
    case LG_NODE_SCALAR: {
        /* Values are expanded already: write $ as $$ so reloading does not expand again. */
        struct strbuf esc = {0};
        const char *s = n->scalar;
        for (const char *d; (d = strchr(s, '$')) != NULL; s = d + 1) {
            sb_add(&esc, s, (size_t)(d - s));
            sb_add(&esc, "$$", 2);
        }
        sb_add(&esc, s, strlen(s));
        if (esc.oom) {
            sb_free(&esc);
            return -1;
        }
        yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;
        if (n->quoted && strchr(esc.p, '\n') != NULL)
            style = YAML_LITERAL_SCALAR_STYLE;
        else if (n->quoted)
            style = YAML_SINGLE_QUOTED_SCALAR_STYLE;
        else if (is_null_text(esc.p, esc.len))
            style = YAML_SINGLE_QUOTED_SCALAR_STYLE; /* keep it a string on reload */
        int rc = emit_scalar(em, esc.p, style);
        sb_free(&esc);
        return rc;
    }
    case LG_NODE_MAP:
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        for (size_t i = 0; i < n->npairs; i++) {
            /* A plain << would read back as a merge key. */
            yaml_scalar_style_t key_style = strcmp(n->pairs[i].key, "<<") == 0
                                                ? YAML_SINGLE_QUOTED_SCALAR_STYLE
                                                : YAML_PLAIN_SCALAR_STYLE;
            if (emit_scalar(em, n->pairs[i].key, key_style) ||
                emit_node(em, n->pairs[i].value, depth + 1))
                return -1;
        }
        if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -1;
        return 0;
    case LG_NODE_SEQ:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return -1;
        for (size_t i = 0; i < n->nitems; i++)
            if (emit_node(em, n->items[i], depth + 1))
                return -1;
        if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return -1;
        return 0;
    }
    return -1;
}

char *lg_conf_dump(const struct lg_node *root)
{
    if (root == NULL)
        return NULL;
    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        return NULL;
    struct strbuf out = {0};
    yaml_emitter_set_output(&em, dump_write, &out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1); /* never fold long values */
    yaml_emitter_set_indent(&em, 2);
    yaml_event_t ev;
    bool ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
              yaml_emitter_emit(&em, &ev) &&
              yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
              yaml_emitter_emit(&em, &ev) && emit_node(&em, root, 0) == 0 &&
              yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
              yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev) &&
              yaml_emitter_flush(&em);
    yaml_emitter_delete(&em);
    if (!ok || out.oom) {
        sb_free(&out);
        return NULL;
    }
    return out.p;
}

/* ------------------------------------------------------------------ scalar parsers ---- */

/** The text of a scalar node, or an error "expected <what>, got <kind>". */
static int scalar_text(const struct lg_node *n, const char *what, const char **s,
                       struct lg_err *err)
{
    if (n == NULL || n->type != LG_NODE_SCALAR)
        return lg_conf_error(err, n, "expected %s, got %s", what, node_kind(n));
    *s = n->scalar;
    return 0;
}

int lg_conf_parse_bool(const struct lg_node *n, bool *v, struct lg_err *err)
{
    static const char *const truths[] = {"true", "True", "TRUE"};
    static const char *const lies[] = {"false", "False", "FALSE"};
    const char *s = NULL;
    int rc = scalar_text(n, "true or false", &s, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < LG_ARRAY_LEN(truths); i++) {
        if (strcmp(s, truths[i]) == 0) {
            *v = true;
            return 0;
        }
        if (strcmp(s, lies[i]) == 0) {
            *v = false;
            return 0;
        }
    }
    return lg_conf_error(err, n, "expected true or false, got \"%s\"", s);
}

int lg_conf_parse_int(const struct lg_node *n, int64_t *v, struct lg_err *err)
{
    const char *s = NULL;
    int rc = scalar_text(n, "a whole number", &s, err);
    if (rc)
        return rc;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '\0')
        return lg_conf_error(err, n, "expected a whole number, got \"%s\"", s);
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return lg_conf_error(err, n, "expected a whole number, got \"%s\"", s);
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return lg_conf_error(err, n, "whole number out of range (%" PRId64 " to %" PRId64
                             "), got \"%s\"", INT64_MIN, INT64_MAX, s);
    *v = (int64_t)x;
    return 0;
}

int lg_conf_parse_double(const struct lg_node *n, double *v, struct lg_err *err)
{
    const char *s = NULL;
    int rc = scalar_text(n, "a number", &s, err);
    if (rc)
        return rc;
    /* Only decimal notation: strtod alone would also take "inf", "nan" and hex floats. */
    bool digit = false;
    for (const char *q = s; *q; q++) {
        if (*q >= '0' && *q <= '9')
            digit = true;
        else if (!strchr("+-.eE", *q))
            return lg_conf_error(err, n, "expected a number, got \"%s\"", s);
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (!digit || end == s || *end != '\0')
        return lg_conf_error(err, n, "expected a number, got \"%s\"", s);
    if (errno == ERANGE && !isfinite(x))
        return lg_conf_error(err, n, "number out of range, got \"%s\"", s);
    *v = x;
    return 0;
}

int lg_parse_duration_str(const char *s, int64_t *ns)
{
    /* Same grammar and overflow rules as Go's time.ParseDuration. */
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1}, {"us", NS_PER_US}, {"\xc2\xb5s", NS_PER_US}, /* µ U+00B5 */
        {"\xce\xbcs", NS_PER_US},                                /* μ U+03BC */
        {"ms", NS_PER_MS}, {"s", NS_PER_S}, {"m", NS_PER_MIN}, {"h", NS_PER_HOUR},
    };
    const uint64_t limit = UINT64_C(1) << 63; /* |INT64_MIN| */
    if (s == NULL)
        return LG_EINVAL;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        return LG_EINVAL;
    uint64_t total = 0;
    while (*s) {
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return LG_EINVAL;
        uint64_t whole = 0;
        bool pre = false, post = false;
        while (*s >= '0' && *s <= '9') {
            if (whole > (limit - (uint64_t)(*s - '0')) / 10)
                return LG_EINVAL;
            whole = whole * 10 + (uint64_t)(*s - '0');
            pre = true;
            s++;
        }
        uint64_t frac = 0;
        double scale = 1;
        if (*s == '.') {
            s++;
            bool overflowed = false;
            while (*s >= '0' && *s <= '9') {
                post = true;
                /* Digits past what fits in 63 bits are below 1ns; skip them as Go does. */
                if (!overflowed && frac <= (limit - 1 - (uint64_t)(*s - '0')) / 10) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    scale *= 10;
                } else {
                    overflowed = true;
                }
                s++;
            }
        }
        if (!pre && !post)
            return LG_EINVAL;
        const char *u = s;
        while (*s && *s != '.' && !(*s >= '0' && *s <= '9'))
            s++;
        size_t ulen = (size_t)(s - u);
        uint64_t unit = 0;
        for (size_t i = 0; i < LG_ARRAY_LEN(units); i++)
            if (strlen(units[i].name) == ulen && memcmp(u, units[i].name, ulen) == 0)
                unit = units[i].ns;
        if (unit == 0)
            return LG_EINVAL; /* missing or unknown unit */
        if (whole > limit / unit)
            return LG_EINVAL;
        whole *= unit;
        if (frac > 0) {
            whole += (uint64_t)((double)frac * ((double)unit / scale));
            if (whole > limit)
                return LG_EINVAL;
        }
        total += whole;
        if (total > limit)
            return LG_EINVAL;
    }
    if (neg) {
        *ns = total == limit ? INT64_MIN : -(int64_t)total;
        return 0;
    }
    if (total > (uint64_t)INT64_MAX)
        return LG_EINVAL;
    *ns = (int64_t)total;
    return 0;
}

int lg_conf_parse_duration(const struct lg_node *n, int64_t *ns, struct lg_err *err)
{
    const char *s = NULL;
    int rc = scalar_text(n, "a duration such as 200ms, 5s or 1m30s", &s, err);
    if (rc)
        return rc;
    if (lg_parse_duration_str(s, ns) != 0)
        return lg_conf_error(err, n, "expected a duration such as 200ms, 5s or 1m30s, got \"%s\"",
                             s);
    return 0;
}

/* Writes the fraction digits of v (prec of them, trailing zeros left out) before buf[w]. */
static size_t fmt_frac(char *buf, size_t w, uint64_t *v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(*v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        *v /= 10;
    }
    if (print)
        buf[--w] = '.';
    return w;
}

static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
    if (v == 0) {
        buf[--w] = '0';
        return w;
    }
    while (v > 0) {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    }
    return w;
}

void lg_format_duration(int64_t ns, char *buf, size_t len)
{
    char tmp[LG_DURATION_STR_MAX];
    size_t w = sizeof tmp - 1;
    tmp[w] = '\0';
    bool neg = ns < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (u < (uint64_t)NS_PER_S) {
        if (u == 0) {
            snprintf(buf, len, "0s");
            return;
        }
        int prec;
        tmp[--w] = 's';
        if (u < (uint64_t)NS_PER_US) {
            prec = 0;
            tmp[--w] = 'n';
        } else if (u < (uint64_t)NS_PER_MS) {
            prec = 3;
            tmp[--w] = '\xb5'; /* µ, U+00B5, as Go writes it */
            tmp[--w] = '\xc2';
        } else {
            prec = 6;
            tmp[--w] = 'm';
        }
        w = fmt_frac(tmp, w, &u, prec);
        w = fmt_int(tmp, w, u);
    } else {
        tmp[--w] = 's';
        w = fmt_frac(tmp, w, &u, 9);
        w = fmt_int(tmp, w, u % 60);
        u /= 60;
        if (u > 0) {
            tmp[--w] = 'm';
            w = fmt_int(tmp, w, u % 60);
            u /= 60;
            if (u > 0) {
                tmp[--w] = 'h';
                w = fmt_int(tmp, w, u);
            }
        }
    }
    if (neg)
        tmp[--w] = '-';
    snprintf(buf, len, "%s", tmp + w);
}

/* ------------------------------------------------------------------ field tables ---- */

static bool has_bounds(const struct lg_conf_field *f) { return f->min < f->max; }

static int out_of_bounds(const struct lg_conf_field *f, const struct lg_node *n, double v,
                         struct lg_err *err)
{
    char lo[LG_DURATION_STR_MAX], hi[LG_DURATION_STR_MAX], got[LG_DURATION_STR_MAX];
    switch (f->type) {
    case LG_CT_DURATION:
        lg_format_duration((int64_t)f->min, lo, sizeof lo);
        lg_format_duration((int64_t)f->max, hi, sizeof hi);
        lg_format_duration((int64_t)v, got, sizeof got);
        break;
    case LG_CT_INT:
        snprintf(lo, sizeof lo, "%.0f", f->min);
        snprintf(hi, sizeof hi, "%.0f", f->max);
        snprintf(got, sizeof got, "%.0f", v);
        break;
    default:
        snprintf(lo, sizeof lo, "%g", f->min);
        snprintf(hi, sizeof hi, "%g", f->max);
        snprintf(got, sizeof got, "%g", v);
        break;
    }
    return lg_conf_error(err, n, "must be between %s and %s, got %s", lo, hi, got);
}

/** Sets a STRING/BOOL/INT/DOUBLE/DURATION field from scalar node n. */
static int set_scalar(const struct lg_conf_field *f, const struct lg_node *n, void *dst,
                      bool check_bounds, struct lg_err *err)
{
    int rc = 0;
    switch (f->type) {
    case LG_CT_STRING: {
        const char *s = NULL;
        rc = scalar_text(n, "a string", &s, err);
        if (rc == 0)
            *(const char **)dst = s;
        return rc;
    }
    case LG_CT_BOOL:
        return lg_conf_parse_bool(n, dst, err);
    case LG_CT_INT: {
        int64_t v = 0;
        rc = lg_conf_parse_int(n, &v, err);
        if (rc == 0 && check_bounds && has_bounds(f) &&
            ((double)v < f->min || (double)v > f->max))
            return out_of_bounds(f, n, (double)v, err);
        if (rc == 0)
            *(int64_t *)dst = v;
        return rc;
    }
    case LG_CT_DOUBLE: {
        double v = 0;
        rc = lg_conf_parse_double(n, &v, err);
        if (rc == 0 && check_bounds && has_bounds(f) && (v < f->min || v > f->max))
            return out_of_bounds(f, n, v, err);
        if (rc == 0)
            *(double *)dst = v;
        return rc;
    }
    case LG_CT_DURATION: {
        int64_t v = 0;
        rc = lg_conf_parse_duration(n, &v, err);
        if (rc == 0 && check_bounds && has_bounds(f) &&
            ((double)v < f->min || (double)v > f->max))
            return out_of_bounds(f, n, (double)v, err);
        if (rc == 0)
            *(int64_t *)dst = v;
        return rc;
    }
    default:
        return lg_err_set(err, LG_EINTERNAL, "field \"%s\" is not a scalar type", f->key);
    }
}

static int set_strlist(const struct lg_node *n, struct lg_strlist *dst, struct lg_arena *arena,
                       struct lg_err *err)
{
    if (n->type != LG_NODE_SEQ)
        return lg_conf_error(err, n, "expected a list, got %s", node_kind(n));
    const char **items = NULL;
    if (n->nitems) {
        if (arena == NULL)
            return lg_err_set(err, LG_EINTERNAL, "lg_conf_apply: a list needs an arena");
        items = lg_arena_calloc(arena, n->nitems, sizeof *items);
        if (items == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory reading the config");
    }
    for (size_t i = 0; i < n->nitems; i++) {
        int rc = scalar_text(n->items[i], "a string", &items[i], err);
        if (rc)
            return rc;
    }
    dst->items = items;
    dst->n = n->nitems;
    return 0;
}

/** A node standing for something not written in the config: a default or an absent map. */
static struct lg_node *synthetic_node(struct lg_arena *arena, const struct lg_node *at,
                                      const char *path)
{
    struct lg_node *n = lg_arena_calloc(arena, 1, sizeof *n);
    if (n == NULL)
        return NULL;
    n->type = LG_NODE_NULL;
    n->scalar = "";
    n->path = path;
    if (at != NULL) {
        n->file = at->file;
        n->line = at->line;
        n->col = at->col;
    }
    return n;
}

static bool starts_flow_collection(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '[' || *s == '{';
}

/** The node for default text `def` of field f (see conf.h for the rules). */
static int default_node(const struct lg_conf_field *f, const struct lg_node *at,
                        const char *path, struct lg_arena *arena, struct lg_node **out,
                        struct lg_err *err)
{
    struct lg_node *n = synthetic_node(arena, at, path);
    if (n == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory reading the config");
    bool collection = (f->type == LG_CT_STRLIST || f->type == LG_CT_CUSTOM) &&
                      starts_flow_collection(f->def);
    if (!collection) {
        n->type = LG_NODE_SCALAR;
        n->scalar = lg_arena_strdup(arena, f->def);
        if (n->scalar == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory reading the config");
        *out = n;
        return 0;
    }
    struct loader L = {.arena = arena, .file = n->file ? n->file : "default", .fixed_pos = n,
                       .err = err};
    struct lg_node *root = NULL;
    int rc = parse_yaml(&L, f->def, strlen(f->def), path, &root);
    if (rc) {
        lg_err_prefix(err, "%s: default of \"%s\"", path, f->key);
        return rc;
    }
    *out = root ? root : n;
    return 0;
}

static void zero_field(const struct lg_conf_field *f, void *dst)
{
    switch (f->type) {
    case LG_CT_STRING: *(const char **)dst = NULL; break;
    case LG_CT_BOOL: *(bool *)dst = false; break;
    case LG_CT_INT:
    case LG_CT_DURATION: *(int64_t *)dst = 0; break;
    case LG_CT_DOUBLE: *(double *)dst = 0; break;
    case LG_CT_STRLIST: *(struct lg_strlist *)dst = (struct lg_strlist){0}; break;
    default: break;
    }
}

static int apply_level(const struct lg_conf_field *fields, const struct lg_node *n,
                       const struct lg_node *ctx, void *out, struct lg_arena *arena, int depth,
                       struct lg_err *err);

static int apply_field(const struct lg_conf_field *f, const struct lg_node *v,
                       const struct lg_node *at, const char *parent_path, void *out,
                       struct lg_arena *arena, int depth, struct lg_err *err)
{
    void *dst = (char *)out + f->offset;
    if (f->present_offset >= 0)
        *(bool *)((char *)out + f->present_offset) = v != NULL;
    if (f->type == LG_CT_ACCEPTED)
        return 0;

    /* Paths for things not written come from the enclosing map (or ctx_node). */
    const char *path = v ? v->path : NULL;
    if (path == NULL && (f->type == LG_CT_SECTION || f->def != NULL)) {
        if (arena == NULL)
            return lg_err_set(err, LG_EINTERNAL, "lg_conf_apply: defaults need an arena");
        path = path_child(arena, parent_path, f->key);
        if (path == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory reading the config");
    }

    if (f->type == LG_CT_SECTION) {
        if (v != NULL && v->type != LG_NODE_MAP && v->type != LG_NODE_NULL)
            return lg_conf_error(err, v, "expected a mapping, got %s", node_kind(v));
        const struct lg_node *ctx = v;
        if (ctx == NULL) {
            struct lg_node *syn = synthetic_node(arena, at, path);
            if (syn == NULL)
                return lg_err_set(err, LG_ENOMEM, "out of memory reading the config");
            ctx = syn;
        }
        return apply_level(f->sub, v, ctx, dst, arena, depth + 1, err);
    }

    struct lg_node *def = NULL;
    if (f->def != NULL) {
        int rc = default_node(f, at, path, arena, &def, err);
        if (rc)
            return rc;
    }
    bool use_value = v != NULL && v->type != LG_NODE_NULL;
    switch (f->type) {
    case LG_CT_CUSTOM: {
        const struct lg_node *src = use_value ? v : def;
        if (src == NULL)
            return 0;
        if (f->parse == NULL)
            return lg_err_set(err, LG_EINTERNAL, "field \"%s\" has no parse function", f->key);
        return f->parse(src, dst, arena, err);
    }
    case LG_CT_STRLIST: {
        zero_field(f, dst);
        int rc = def ? set_strlist(def, dst, arena, err) : 0;
        if (rc == 0 && use_value)
            rc = set_strlist(v, dst, arena, err);
        return rc;
    }
    case LG_CT_STRING:
    case LG_CT_BOOL:
    case LG_CT_INT:
    case LG_CT_DOUBLE:
    case LG_CT_DURATION: {
        zero_field(f, dst);
        int rc = def ? set_scalar(f, def, dst, false, err) : 0;
        if (rc == 0 && use_value)
            rc = set_scalar(f, v, dst, true, err);
        return rc;
    }
    default:
        return lg_err_set(err, LG_EINTERNAL, "field \"%s\" has an unknown type %d", f->key,
                          (int)f->type);
    }
}

static int apply_level(const struct lg_conf_field *fields, const struct lg_node *n,
                       const struct lg_node *ctx, void *out, struct lg_arena *arena, int depth,
                       struct lg_err *err)
{
    if (depth > CONF_MAX_DEPTH)
        return lg_conf_error(err, n ? n : ctx, "config sections nest more than %d levels deep",
                             CONF_MAX_DEPTH);
    if (n != NULL && n->type != LG_NODE_MAP && n->type != LG_NODE_NULL)
        return lg_conf_error(err, n, "expected a mapping, got %s", node_kind(n));
    const struct lg_node *map = n && n->type == LG_NODE_MAP ? n : NULL;
    const struct lg_node *at = n ? n : ctx;

    for (size_t i = 0; map && i < map->npairs; i++) {
        const struct lg_conf_field *f = fields;
        while (f->key != NULL && strcmp(f->key, map->pairs[i].key) != 0)
            f++;
        if (f->key != NULL)
            continue;
        char known[LG_ERR_MAX] = "";
        size_t used = 0;
        for (f = fields; f->key != NULL && used < sizeof known; f++) {
            int w = snprintf(known + used, sizeof known - used, "%s%s",
                             f == fields ? "" : ", ", f->key);
            used += w > 0 ? (size_t)w : 0;
        }
        return lg_conf_error(err, map->pairs[i].value, "unknown key \"%s\" (known keys: %s)",
                             map->pairs[i].key, fields->key ? known : "none");
    }
    const char *parent_path = at && at->path ? at->path : "";
    for (const struct lg_conf_field *f = fields; f->key != NULL; f++) {
        int rc = apply_field(f, lg_node_get(map, f->key), at, parent_path, out, arena, depth,
                             err);
        if (rc)
            return rc;
    }
    return 0;
}

int lg_conf_apply(const struct lg_conf_field *fields, const struct lg_node *n,
                  const struct lg_node *ctx_node, void *out, struct lg_arena *arena,
                  struct lg_err *err)
{
    return apply_level(fields, n, ctx_node, out, arena, 0, err);
}
