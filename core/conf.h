/* core/conf.h — the configuration tree (YAML, Collector shape) and typed field tables.
 *
 * lg_conf_load() parses one or more YAML files with libyaml into a tree of lg_node,
 * expanding ${env:VAR}, ${VAR}, ${env:VAR:-default} and $$ in scalars, and merging the
 * files in order (maps merge key by key, later wins; scalars and sequences are replaced).
 * Every node remembers file:line:col and its YAML path ("receivers.otlp.protocols.grpc"),
 * so any error can name both. The tree owns all its memory and lives as long as the
 * runtime (component configs may point into it).
 *
 * YAML accepted: one document per source (block or flow style), anchors and aliases
 * (each use of an alias is a separate copy of the subtree, with its own paths) and merge
 * keys (`<<: *base` or `<<: [*a, *b]`; keys written in the map win, then earlier merged
 * maps win). Map keys must be scalars and unique within a map. The top level must be a
 * mapping; an empty source is an empty mapping.
 *
 * Env expansion (as the Collector does it, at load time, in scalar VALUES only, never keys):
 *   ${env:VAR} and ${VAR}   the variable; an error naming file:line:col and path when unset
 *   ${env:VAR:-default}     the default when VAR is unset OR empty
 *   $$                      a literal $; a bare $VAR (no braces) is left as it is
 * The result is not re-read as YAML and not expanded again; the node keeps the quoting of
 * the source. Whether a value is null is decided on the source text (plain `~`, `null`,
 * `Null`, `NULL` or nothing), plus one case the Collector also treats as null: a plain
 * scalar that is exactly one ${...} reference and expands to "" (`timeout: ${env:T:-}`).
 *
 * Components describe their config with a table of lg_conf_field (key, type, default,
 * offset into the component's config struct, description) in the manner of Fluent Bit's
 * config maps. lg_conf_apply() fills the struct from a map node, applies defaults, checks
 * bounds and refuses unknown keys with the path of the offending key. */
#ifndef LG_CONF_H
#define LG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "common.h"

enum lg_node_type { LG_NODE_NULL, LG_NODE_SCALAR, LG_NODE_MAP, LG_NODE_SEQ };

struct lg_node;

struct lg_node_pair {
    const char *key;
    struct lg_node *value;
};

struct lg_node {
    enum lg_node_type type;
    const char *scalar;   /* SCALAR: text after env expansion; NULL node: ""; MAP/SEQ: NULL */
    bool quoted;          /* SCALAR written '...', "..." or as a block (| >): never read as
                           * null, and re-emitted quoted by lg_conf_dump(). Typed fields
                           * (BOOL/INT/...) still accept quoted text, as users quote numbers. */
    struct lg_node_pair *pairs; /* MAP, in document order */
    size_t npairs;
    struct lg_node **items; /* SEQ */
    size_t nitems;
    const char *file;
    int line, col;        /* 1-based position of the node (or of its key, for map values) */
    const char *path;     /* YAML path, e.g. "service.pipelines.traces.receivers[0]"; "" for
                           * the root. Map children are `parent.key`, items `parent[i]`. */
};

struct lg_conf_doc {
    struct lg_arena *arena; /* owns every node and string */
    struct lg_node *root;   /* a MAP (possibly empty) */
};

/** Source of a config: a file path, or in-memory YAML text with a display name. */
struct lg_conf_source {
    const char *path;     /* file to read, or NULL */
    const char *text;     /* YAML text when path is NULL */
    const char *name;     /* shown in errors for text sources, e.g. "<embedded default>" */
};

/** Env lookup used for expansion (getenv by default; tests may override). */
typedef const char *(*lg_getenv_fn)(const char *name, void *ctx);

/** Loads and merges sources into *doc. On error *doc is untouched and err names file:line:col.
 *  getenv_fn NULL means getenv(3). Sources merge in order: map + map merges key by key, any
 *  other later value (scalar, sequence, null) replaces the earlier one. Each node keeps the
 *  file and position where its value was written. Call lg_conf_doc_free() when done.
 *  Errors: `cannot read config file "x.yaml": <strerror>`, `x.yaml:3:5: YAML syntax error:
 *  <problem> (<context>)`, and `file:line:col: path: <message>` for everything else. */
int lg_conf_load(const struct lg_conf_source *src, size_t nsrc, lg_getenv_fn getenv_fn,
                 void *getenv_ctx, struct lg_conf_doc *doc, struct lg_err *err);
/** Frees the arena (every node and string) and zeroes *doc. A zeroed doc is allowed. */
void lg_conf_doc_free(struct lg_conf_doc *doc);

/** Map lookup (NULL when absent or when n is not a map). */
const struct lg_node *lg_node_get(const struct lg_node *n, const char *key);
/** True for an explicit null (`key:`, `~`, `null`). */
bool lg_node_is_null(const struct lg_node *n);

/** Formats "file:line:col: path: message" into err and returns LG_EINVAL. The path part is
 *  left out for the root (path ""), the position too when n is NULL. */
int lg_conf_error(struct lg_err *err, const struct lg_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Writes the tree back as YAML (block style) to a malloc'd string (print-config); the caller
 *  frees it. NULL on OOM (or when a value taken from the environment is not valid UTF-8,
 *  which libyaml cannot emit). Quoted scalars stay quoted, plain ones that would read back as null
 *  are quoted, and every $ in a value is written $$ so that loading the output again gives
 *  the same tree (the values are already expanded). */
char *lg_conf_dump(const struct lg_node *root);

/* ---- typed field tables ---- */

enum lg_conf_type {
    LG_CT_END = 0,
    LG_CT_STRING,   /* const char * (points into the tree or the arena) */
    LG_CT_BOOL,     /* bool */
    LG_CT_INT,      /* int64_t */
    LG_CT_DOUBLE,   /* double */
    LG_CT_DURATION, /* int64_t nanoseconds; Go syntax: 200ms, 1m30s, 1h */
    LG_CT_STRLIST,  /* struct lg_strlist */
    LG_CT_SECTION,  /* nested struct described by .sub, at .offset */
    LG_CT_CUSTOM,   /* .parse(node, dst) */
    LG_CT_ACCEPTED, /* known Collector key we accept and do not act on; logged once at start */
};

struct lg_strlist {
    const char **items;
    size_t n;
};

struct lg_conf_field;
typedef int (*lg_conf_parse_fn)(const struct lg_node *n, void *dst, struct lg_arena *arena,
                                struct lg_err *err);

struct lg_conf_field {
    const char *key;
    enum lg_conf_type type;
    const char *def;          /* default, as text run through the same parser as a YAML value
                               * (NULL: zero / not set). Scalar types take the text literally
                               * ("" is an empty string); STRLIST and CUSTOM read it as a YAML
                               * flow collection when it starts with [ or {, e.g. "[a, b]".
                               * SECTION ignores it (defaults come from .sub). Bounds are not
                               * checked on defaults. */
    size_t offset;            /* of the value in the config struct */
    const char *help;         /* one line for docs and `components` */
    const struct lg_conf_field *sub; /* LG_CT_SECTION */
    lg_conf_parse_fn parse;   /* LG_CT_CUSTOM */
    double min, max;          /* bounds for INT/DOUBLE/DURATION when min < max */
    ptrdiff_t present_offset; /* >= 0: bool set true when the key is present (SECTION) */
};

#define LG_CONF_STRING(k, d, T, m, h) {.key = k, .type = LG_CT_STRING, .def = d, .offset = offsetof(T, m), .help = h, .present_offset = -1}
#define LG_CONF_BOOL(k, d, T, m, h) {.key = k, .type = LG_CT_BOOL, .def = d, .offset = offsetof(T, m), .help = h, .present_offset = -1}
#define LG_CONF_INT(k, d, T, m, lo, hi, h) {.key = k, .type = LG_CT_INT, .def = d, .offset = offsetof(T, m), .help = h, .min = lo, .max = hi, .present_offset = -1}
#define LG_CONF_DOUBLE(k, d, T, m, lo, hi, h) {.key = k, .type = LG_CT_DOUBLE, .def = d, .offset = offsetof(T, m), .help = h, .min = lo, .max = hi, .present_offset = -1}
#define LG_CONF_DURATION(k, d, T, m, h) {.key = k, .type = LG_CT_DURATION, .def = d, .offset = offsetof(T, m), .help = h, .present_offset = -1}
#define LG_CONF_STRLIST(k, T, m, h) {.key = k, .type = LG_CT_STRLIST, .offset = offsetof(T, m), .help = h, .present_offset = -1}
#define LG_CONF_SECTION(k, T, m, fields, h) {.key = k, .type = LG_CT_SECTION, .offset = offsetof(T, m), .help = h, .sub = fields, .present_offset = -1}
#define LG_CONF_SECTION_OPT(k, T, m, pm, fields, h) {.key = k, .type = LG_CT_SECTION, .offset = offsetof(T, m), .help = h, .sub = fields, .present_offset = (ptrdiff_t)offsetof(T, pm)}
#define LG_CONF_CUSTOM(k, d, T, m, fn, h) {.key = k, .type = LG_CT_CUSTOM, .def = d, .offset = offsetof(T, m), .help = h, .parse = fn, .present_offset = -1}
#define LG_CONF_ACCEPTED(k, h) {.key = k, .type = LG_CT_ACCEPTED, .help = h, .present_offset = -1}
#define LG_CONF_END {.key = NULL, .type = LG_CT_END}

/** Fills `out` from map node `n` (NULL or null node = all defaults). Unknown keys are errors
 *  that list the known keys. For each field the default is set first (or zero when def is
 *  NULL), then the value from the map. A null value (`key:`) keeps the default; a present
 *  key sets the bool at present_offset even when null. CUSTOM parsers are called with the
 *  node when present and not null, else with a node built from def (when def != NULL).
 *  `ctx_node` is used for error positions and paths when n is NULL. Strings point into the
 *  tree; list arrays, default strings and default nodes come from `arena`. */
int lg_conf_apply(const struct lg_conf_field *fields, const struct lg_node *n,
                  const struct lg_node *ctx_node, void *out, struct lg_arena *arena,
                  struct lg_err *err);

/** Scalar parsers, shared with custom fields. Each names the node on error. */
int lg_conf_parse_duration(const struct lg_node *n, int64_t *ns, struct lg_err *err);
int lg_conf_parse_int(const struct lg_node *n, int64_t *v, struct lg_err *err);
int lg_conf_parse_double(const struct lg_node *n, double *v, struct lg_err *err);
int lg_conf_parse_bool(const struct lg_node *n, bool *v, struct lg_err *err);
/** Parses a Go time.ParseDuration string ("200ms", "1m30s", "1.5h", "-2s", "0"; units ns us
 *  µs ms s m h); 0 on success, LG_EINVAL on bad syntax or int64 overflow. */
int lg_parse_duration_str(const char *s, int64_t *ns);

/** Longest text lg_format_duration() writes, NUL included ("-2562047h47m16.854775808s"). */
#define LG_DURATION_STR_MAX 32
/** Formats ns as Go's Duration.String() does: "0s", "200ms", "1.5µs", "1m30s", "1h0m0s".
 *  Truncates to len (NUL-terminated when len > 0). */
void lg_format_duration(int64_t ns, char *buf, size_t len);

#endif
