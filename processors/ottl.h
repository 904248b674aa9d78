/* processors/ottl.h — a subset of the OpenTelemetry Transformation Language (OTTL): boolean
 * *conditions* only (no statements, no editors), as the `filter` processor uses them.
 *
 * Grammar (precedence from loose to tight): `or`, `and`, `not`, then a boolean term:
 *   ( condition ) | true | false | Converter(...) returning a bool | value OP value
 * with OP one of == != < <= > >=, and a value one of: a literal ("string" with Go escapes,
 * 42, -1.5, 1e3, true, false, nil, 0xBYTES), an enum name (SPAN_KIND_SERVER,
 * STATUS_CODE_ERROR, SEVERITY_NUMBER_WARN, METRIC_DATA_TYPE_SUM, ...; an int), a path of the
 * condition's context (name, attributes["k"], resource.attributes["k"]["sub"][0], ...), or a
 * converter (Len(x)). Comparisons follow the OTTL comparison rules: int and double compare
 * as numbers, strings as bytes, false < true, nil equals only nil, values of different
 * types are "not equal" (!= true, every other operator false); maps and lists only support
 * == and !=.
 *
 * Converters: IsMatch(target, "regex") (PCRE2, unanchored, like Go's MatchString; a nil
 * target is false, ints / doubles / bools are matched as text), IsString, IsInt, IsDouble,
 * IsBool, IsMap, IsList (type tests, never errors), Len(target) (bytes of a string or a byte
 * array, items of a map or list; any other type is an evaluation error), and in the metric
 * context HasAttrKeyOnDatapoint("k") / HasAttrOnDatapoint("k", "v").
 *
 * Ownership: a compiled condition owns its nodes, strings and compiled regexes (freed by
 * lg_ottl_free). Evaluation does not allocate except the scratch's PCRE2 match data, made
 * once on first IsMatch and kept until lg_ottl_scratch_free; a scratch belongs to one thread
 * at a time. Compiled conditions are immutable and may be evaluated from many threads. */
#ifndef LG_OTTL_H
#define LG_OTTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/otlp.h"

/** The OTTL context a condition is compiled for: which paths exist. */
enum lg_ottl_ctx {
    LG_OTTL_SPAN,
    LG_OTTL_SPANEVENT,
    LG_OTTL_LOG,
    LG_OTTL_METRIC,
    LG_OTTL_DATAPOINT,
};

/** "span", "spanevent", "log", "metric", "datapoint". */
const char *lg_ottl_ctx_name(enum lg_ottl_ctx ctx);

struct lg_ottl_cond;

/** A compile error: 1-based column in the condition text, and what is wrong. */
struct lg_ottl_error {
    int col;
    char msg[256];
};

/** Compiles `text` for context ctx. LG_OK with *out set (free with lg_ottl_free), or
 *  LG_EINVAL with *e filled (LG_ENOMEM on OOM). */
int lg_ottl_compile(enum lg_ottl_ctx ctx, const char *text, struct lg_ottl_cond **out,
                    struct lg_ottl_error *e);
void lg_ottl_free(struct lg_ottl_cond *c);

/** Kinds of metric data point, for the datapoint context. */
enum lg_ottl_dp_kind {
    LG_OTTL_DP_NUMBER,
    LG_OTTL_DP_HISTOGRAM,
    LG_OTTL_DP_EXP_HISTOGRAM,
    LG_OTTL_DP_SUMMARY,
};

/** The item a condition is evaluated on, with what it hangs under. Fields not used by the
 *  context may be NULL (a NULL resource or scope reads as empty). */
struct lg_ottl_item {
    const lg_resource *resource;
    const lg_scope *scope;
    const lg_span *span;        /* span, spanevent (the event's span) */
    const lg_span_event *event; /* spanevent */
    const lg_log_record *log;   /* log */
    const lg_metric *metric;    /* metric, datapoint (the point's metric) */
    const void *dp;             /* datapoint: lg_number_dp, lg_histogram_dp, ... per dp_kind */
    enum lg_ottl_dp_kind dp_kind;
};

/** Per-thread evaluation scratch: zero-initialise, free with lg_ottl_scratch_free. */
struct lg_ottl_scratch {
    void *md;       /* pcre2_match_data, made on first use */
    char err[192];  /* the last evaluation error */
};
void lg_ottl_scratch_free(struct lg_ottl_scratch *s);

/** Evaluates c on it: 1 true, 0 false, or LG_EINVAL on an evaluation error (message in
 *  s->err; e.g. Len of an int) or LG_ENOMEM (no match data). */
int lg_ottl_eval(const struct lg_ottl_cond *c, const struct lg_ottl_item *it, struct lg_ottl_scratch *s);

#endif
