/* processors/tail_sampling_policy.c — the `tail_sampling` policies: parsing the Collector's
 * `policies` list (plus our llm_* types), folding spans into per-trace summaries and the
 * decision combine. Owns nothing at run time but ottl_condition's compiled conditions
 * (ts_policies_compile / ts_policies_release): the policy tree and compiled regexes live in
 * the config arena (see processors/tail_sampling.h).
 *
 * Collector semantics reproduced here (processor/tailsamplingprocessor):
 *   - final decision: any Dropped -> not sampled; else any InvertNotSampled -> not sampled;
 *     else any Sampled / InvertSampled -> sampled; else not sampled. sample_on_first_match
 *     stops at the first policy that samples.
 *   - attribute policies (string, numeric, boolean) match resource or span attributes; with
 *     invert_match a match gives InvertNotSampled and no match InvertSampled.
 *   - probabilistic: FNV-1a 64 of hash_salt ("default-hash-seed" when empty) then the trace
 *     ID, sampled when <= MaxUint64 * ratio (computed at 64-bit precision like big.Float),
 *     so a trace gets the same decision here, in the Collector and in every other gateway.
 *   - rate_limiting: spans counted per wall second; a trace that would exceed it is not
 *     sampled. composite: sub-policies in policy_order, the first that samples is charged
 *     against its rate_allocation share (percent of max_total_spans_per_second; a
 *     sub-policy without a share gets none, as in the Collector).
 *   - and: sampled when every sub-policy samples; not: inverts; drop: when every
 *     sub-policy samples the trace is dropped whatever the other policies say.
 *   - ottl_condition: sampled when a span matches one of the `span` conditions or a span
 *     event one of the `spanevent` conditions, the conditions tried in order on each span
 *     and then on its events, spans in arrival order (the Collector's order over the
 *     trace's received batches). An evaluation error under error_mode propagate (the
 *     default) ends the policy for that trace as an error — unless an earlier span had
 *     already matched — exactly where the Collector's Evaluate returns it: the policy (and
 *     an and/not/drop/composite holding it) then does not sample and the top-level policy
 *     counts one sampling_policy_evaluation_error. ignore and silent treat the failing
 *     condition as false and go on (ignore logs it, at most once per batch). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "tail_sampling.h"

/* ---- per-type config tables (parsed with lg_conf_apply so unknown keys are refused) ---- */

struct pc {
    int64_t threshold_ms, upper_threshold_ms;
    const char *key;
    int64_t min_value, max_value;
    bool invert_match;
    const char *hash_salt;
    double sampling_percentage;
    struct lg_strlist status_codes;
    struct lg_strlist values;
    bool enabled_regex_matching;
    int64_t cache_max_size;
    bool value;
    int64_t spans_per_second;
    int64_t bytes_per_second, burst_capacity;
    int64_t min_spans, max_spans;
    const struct lg_node *sub_list, *sub_one, *rate_allocation;
    int64_t max_total_spans_per_second;
    struct lg_strlist policy_order;
    double threshold_usd;
    int64_t threshold;
    const char *error_mode;
    const struct lg_node *ottl_span, *ottl_event;
};

static int keep_node(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    LG_UNUSED(a);
    LG_UNUSED(err);
    *(const struct lg_node **)dst = n;
    return LG_OK;
}

#define NODE_FIELD(k, m, h) LG_CONF_CUSTOM(k, NULL, struct pc, m, keep_node, h)

static const struct lg_conf_field f_empty[] = {LG_CONF_END};
static const struct lg_conf_field f_latency[] = {
    LG_CONF_INT("threshold_ms", "0", struct pc, threshold_ms, 0, 9e15,
                "lower bound of the trace duration (ms)"),
    LG_CONF_INT("upper_threshold_ms", "0", struct pc, upper_threshold_ms, 0, 9e15,
                "upper bound (ms); 0: none"),
    LG_CONF_END,
};
static const struct lg_conf_field f_numeric[] = {
    LG_CONF_STRING("key", NULL, struct pc, key, "attribute key"),
    LG_CONF_INT("min_value", "0", struct pc, min_value, 0, 0, "smallest matching value"),
    LG_CONF_INT("max_value", "0", struct pc, max_value, 0, 0, "largest matching value"),
    LG_CONF_BOOL("invert_match", "false", struct pc, invert_match,
                 "sample traces that do NOT match"),
    LG_CONF_END,
};
static const struct lg_conf_field f_prob[] = {
    LG_CONF_STRING("hash_salt", "", struct pc, hash_salt,
                   "salt of the trace ID hash (same salt, same decisions)"),
    LG_CONF_DOUBLE("sampling_percentage", "0", struct pc, sampling_percentage, 0, 100,
                   "percentage of traces kept"),
    LG_CONF_END,
};
static const struct lg_conf_field f_status[] = {
    LG_CONF_STRLIST("status_codes", struct pc, status_codes, "OK, ERROR, UNSET"),
    LG_CONF_END,
};
static const struct lg_conf_field f_string[] = {
    LG_CONF_STRING("key", NULL, struct pc, key, "attribute key"),
    LG_CONF_STRLIST("values", struct pc, values, "values (or regular expressions)"),
    LG_CONF_BOOL("enabled_regex_matching", "false", struct pc, enabled_regex_matching,
                 "values are PCRE2 patterns"),
    LG_CONF_INT("cache_max_size", "0", struct pc, cache_max_size, 0, 1e9,
                "accepted (the Collector's regex result cache)"),
    LG_CONF_BOOL("invert_match", "false", struct pc, invert_match,
                 "sample traces that do NOT match"),
    LG_CONF_END,
};
static const struct lg_conf_field f_bool[] = {
    LG_CONF_STRING("key", NULL, struct pc, key, "attribute key"),
    LG_CONF_BOOL("value", "false", struct pc, value, "value to match"),
    LG_CONF_BOOL("invert_match", "false", struct pc, invert_match,
                 "sample traces that do NOT match"),
    LG_CONF_END,
};
static const struct lg_conf_field f_rate[] = {
    LG_CONF_INT("spans_per_second", "0", struct pc, spans_per_second, 0, 9e15,
                "spans kept per second"),
    LG_CONF_END,
};
static const struct lg_conf_field f_bytes[] = {
    LG_CONF_INT("bytes_per_second", "0", struct pc, bytes_per_second, 0, 9e15,
                "bytes kept per second"),
    LG_CONF_INT("burst_capacity", "0", struct pc, burst_capacity, 0, 9e15,
                "bucket size; 0: 2 x bytes_per_second"),
    LG_CONF_END,
};
static const struct lg_conf_field f_span_count[] = {
    LG_CONF_INT("min_spans", "0", struct pc, min_spans, 0, 9e15, "fewest spans"),
    LG_CONF_INT("max_spans", "0", struct pc, max_spans, 0, 9e15, "most spans; 0: no limit"),
    LG_CONF_END,
};
static const struct lg_conf_field f_trace_state[] = {
    LG_CONF_STRING("key", NULL, struct pc, key, "tracestate key"),
    LG_CONF_STRLIST("values", struct pc, values, "values to match"),
    LG_CONF_END,
};
static const struct lg_conf_field f_and[] = {
    NODE_FIELD("and_sub_policy", sub_list, "sub-policies, all must sample"), LG_CONF_END};
static const struct lg_conf_field f_not[] = {
    NODE_FIELD("not_sub_policy", sub_one, "the policy to invert"), LG_CONF_END};
static const struct lg_conf_field f_drop[] = {
    NODE_FIELD("drop_sub_policy", sub_list, "sub-policies, all must match to drop"), LG_CONF_END};
static const struct lg_conf_field f_composite[] = {
    LG_CONF_INT("max_total_spans_per_second", "0", struct pc, max_total_spans_per_second, 0, 9e15,
                "total spans per second"),
    LG_CONF_STRLIST("policy_order", struct pc, policy_order,
                    "sub-policy names in evaluation order"),
    NODE_FIELD("composite_sub_policy", sub_list, "sub-policies"),
    NODE_FIELD("rate_allocation", rate_allocation, "[{policy, percent}]"),
    LG_CONF_END,
};
static const struct lg_conf_field f_llm_cost[] = {
    LG_CONF_DOUBLE("threshold_usd", "0", struct pc, threshold_usd, 0, 1e12,
                   "keep traces whose LLM cost sum is at least this (USD)"),
    LG_CONF_END,
};
static const struct lg_conf_field f_llm_tokens[] = {
    LG_CONF_INT("threshold", "0", struct pc, threshold, 0, 9e15,
                "keep traces whose LLM token sum is at least this"),
    LG_CONF_END,
};
static const struct lg_conf_field f_llm_finish[] = {
    LG_CONF_STRLIST("values", struct pc, values, "finish reasons, e.g. length, content_filter"),
    LG_CONF_END,
};

static const struct lg_conf_field f_ottl[] = {
    LG_CONF_STRING("error_mode", "propagate", struct pc, error_mode,
                   "propagate (an evaluation error: the policy does not sample, counted), "
                   "ignore (the condition is false, logged) or silent"),
    NODE_FIELD("span", ottl_span, "OTTL conditions on spans (any true: sample)"),
    NODE_FIELD("spanevent", ottl_event, "OTTL conditions on span events (any true: sample)"),
    LG_CONF_END,
};

static const struct ptype_info {
    const char *name;
    enum ts_ptype type;
    const struct lg_conf_field *fields;
} ptypes[] = {
    {"always_sample", TS_ALWAYS_SAMPLE, f_empty},
    {"latency", TS_LATENCY, f_latency},
    {"numeric_attribute", TS_NUMERIC_ATTRIBUTE, f_numeric},
    {"probabilistic", TS_PROBABILISTIC, f_prob},
    {"status_code", TS_STATUS_CODE, f_status},
    {"string_attribute", TS_STRING_ATTRIBUTE, f_string},
    {"boolean_attribute", TS_BOOLEAN_ATTRIBUTE, f_bool},
    {"rate_limiting", TS_RATE_LIMITING, f_rate},
    {"bytes_limiting", TS_BYTES_LIMITING, f_bytes},
    {"span_count", TS_SPAN_COUNT, f_span_count},
    {"trace_state", TS_TRACE_STATE, f_trace_state},
    {"and", TS_AND, f_and},
    {"not", TS_NOT, f_not},
    {"drop", TS_DROP, f_drop},
    {"composite", TS_COMPOSITE, f_composite},
    {"llm_cost", TS_LLM_COST, f_llm_cost},
    {"llm_tokens", TS_LLM_TOKENS, f_llm_tokens},
    {"llm_finish_reason", TS_LLM_FINISH_REASON, f_llm_finish},
    {"llm_error", TS_LLM_ERROR, f_empty},
    {"ottl_condition", TS_OTTL_CONDITION, f_ottl},
};

static const struct ptype_info *ptype_find(const char *name)
{
    for (size_t i = 0; i < LG_ARRAY_LEN(ptypes); i++)
        if (strcmp(ptypes[i].name, name) == 0)
            return &ptypes[i];
    return NULL;
}

/* pcre2 allocations come from the config arena: freed with it, nothing to track. */
static void *arena_malloc(PCRE2_SIZE n, void *a)
{
    return lg_arena_alloc(a, n ? n : 1);
}
static void arena_free(void *p, void *a)
{
    LG_UNUSED(p);
    LG_UNUSED(a);
}

struct parse_ctx {
    struct lg_arena *arena;
    struct ts_policies *out;
    pcre2_general_context *gctx;
    pcre2_compile_context *cctx;
};

static int parse_policy(struct parse_ctx *px, const struct lg_node *n, int depth,
                        struct ts_policy **out, struct lg_err *err);

static int parse_sub_list(struct parse_ctx *px, const struct lg_node *list,
                          const struct lg_node *ctx, const char *key, int depth,
                          struct ts_policy *p, struct lg_err *err)
{
    if (list == NULL || list->type != LG_NODE_SEQ || list->nitems == 0)
        return lg_conf_error(err, list ? list : ctx, "%s: needs a list of at least one policy",
                             key);
    p->subs = lg_arena_calloc(px->arena, list->nitems, sizeof *p->subs);
    if (p->subs == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->nitems; i++) {
        int rc = parse_policy(px, list->items[i], depth + 1, &p->subs[i], err);
        if (rc)
            return rc;
    }
    p->nsubs = list->nitems;
    return LG_OK;
}

static int add_matcher(struct parse_ctx *px, struct ts_policy *p, const struct lg_node *n,
                       struct lg_err *err)
{
    if (px->out->nmatchers >= TS_MAX_MATCHERS)
        return lg_conf_error(
            err, n,
            "more than %d attribute/status/trace_state/finish-reason/ottl_condition policies in "
            "one processor",
            TS_MAX_MATCHERS);
    p->bit = (int)px->out->nmatchers;
    px->out->matchers[px->out->nmatchers++] = p;
    return LG_OK;
}

/* An ottl_condition list (`span` or `spanevent`): every condition is compiled here only
 * to report errors at parse time (item position, column in the condition) and freed — see
 * processors/tail_sampling.h for why the kept ones are built by ts_policies_compile. */
static int parse_ottl_list(struct parse_ctx *px, const struct lg_node *list, enum lg_ottl_ctx ctx,
                           const char ***texts, size_t *n, struct lg_err *err)
{
    *texts = NULL;
    *n = 0;
    if (list == NULL || lg_node_is_null(list))
        return LG_OK;
    if (list->type != LG_NODE_SEQ)
        return lg_conf_error(err, list, "expected a list of OTTL conditions (strings)");
    *texts = lg_arena_calloc(px->arena, list->nitems ? list->nitems : 1, sizeof **texts);
    if (*texts == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->nitems; i++) {
        const struct lg_node *item = list->items[i];
        if (item->type != LG_NODE_SCALAR)
            return lg_conf_error(err, item, "expected an OTTL condition (a string)");
        struct lg_ottl_cond *c = NULL;
        struct lg_ottl_error e;
        int rc = lg_ottl_compile(ctx, item->scalar, &c, &e);
        lg_ottl_free(c);
        if (rc == LG_ENOMEM)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        if (rc)
            return lg_conf_error(err, item, "invalid %s condition at column %d: %s (in \"%s\")",
                                 lg_ottl_ctx_name(ctx), e.col, e.msg, item->scalar);
        (*texts)[i] = item->scalar;
    }
    *n = list->nitems;
    return LG_OK;
}

static int parse_policy(struct parse_ctx *px, const struct lg_node *n, int depth,
                        struct ts_policy **out, struct lg_err *err)
{
    if (depth > 8)
        return lg_conf_error(err, n, "policies nested more than 8 levels deep");
    if (n == NULL || n->type != LG_NODE_MAP)
        return lg_conf_error(err, n,
                             "a policy must be a map with name, type and the type's settings");
    const struct lg_node *name = lg_node_get(n, "name"), *type = lg_node_get(n, "type");
    if (name == NULL || name->type != LG_NODE_SCALAR || !*name->scalar)
        return lg_conf_error(err, name ? name : n, "%s",
                             name ? "name must be a non-empty string" : "missing key \"name\"");
    if (type == NULL || type->type != LG_NODE_SCALAR || !*type->scalar)
        return lg_conf_error(err, type ? type : n, "%s",
                             type ? "type must be a policy type" : "missing key \"type\"");
    const struct ptype_info *ti = ptype_find(type->scalar);
    if (ti == NULL) {
        char known[600];
        size_t o = 0;
        for (size_t i = 0; i < LG_ARRAY_LEN(ptypes) && o < sizeof known; i++)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "",
                                  ptypes[i].name);
        return lg_conf_error(err, type, "unknown policy type \"%s\" (known: %s)", type->scalar,
                             known);
    }
    /* other keys: the Collector's struct has one block per type; blocks of other types are
     * accepted (and ignored) as it does, anything else is an error */
    for (size_t i = 0; i < n->npairs; i++) {
        const char *k = n->pairs[i].key;
        if (strcmp(k, "name") && strcmp(k, "type") && !ptype_find(k))
            return lg_conf_error(
                err, n->pairs[i].value,
                "unknown key \"%s\" (a policy has name, type and a block named after its type)", k);
    }
    struct ts_policy *p = lg_arena_calloc(px->arena, 1, sizeof *p);
    if (p == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    p->name = name->scalar;
    p->type = ti->type;
    p->path = n->path;
    p->bit = -1;
    struct pc c;
    memset(&c, 0, sizeof c);
    const struct lg_node *block = lg_node_get(n, ti->name);
    if (block != NULL && lg_node_is_null(block))
        block = NULL;
    int rc = lg_conf_apply(ti->fields, block, block ? block : n, &c, px->arena, err);
    if (rc)
        return rc;
    const struct lg_node *bn = block ? block : n;
#define NEED(cond, key)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return lg_conf_error(err, bn, "%s: missing key \"%s\"", ti->name, key);                \
    } while (0)
    switch (ti->type) {
    case TS_ALWAYS_SAMPLE:
    case TS_LLM_ERROR: break;
    case TS_LATENCY:
        p->lo = c.threshold_ms;
        p->hi = c.upper_threshold_ms;
        if (p->hi && p->hi < p->lo)
            return lg_conf_error(err, lg_node_get(bn, "upper_threshold_ms"),
                                 "must be 0 or at least threshold_ms");
        break;
    case TS_NUMERIC_ATTRIBUTE: {
        NEED(c.key && *c.key, "key");
        bool has_min = lg_node_get(bn, "min_value") != NULL,
             has_max = lg_node_get(bn, "max_value") != NULL;
        if (!has_min && !has_max)
            return lg_conf_error(err, bn, "numeric_attribute: needs min_value, max_value or both");
        p->key = c.key;
        p->lo = has_min ? c.min_value : INT64_MIN;
        p->hi = has_max ? c.max_value : INT64_MAX;
        if (p->hi < p->lo)
            return lg_conf_error(err, lg_node_get(bn, "max_value"), "must be at least min_value");
        p->invert = c.invert_match;
        rc = add_matcher(px, p, n, err);
        break;
    }
    case TS_PROBABILISTIC:
        p->percentage = c.sampling_percentage;
        p->salt = c.hash_salt && *c.hash_salt ? c.hash_salt : "default-hash-seed";
        p->hash_threshold = ts_prob_threshold(c.sampling_percentage / 100);
        break;
    case TS_STATUS_CODE:
        NEED(c.status_codes.n > 0, "status_codes");
        for (size_t i = 0; i < c.status_codes.n; i++) {
            const char *s = c.status_codes.items[i];
            if (strcmp(s, "UNSET") == 0)
                p->status_mask |=
                    1u << OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
            else if (strcmp(s, "OK") == 0)
                p->status_mask |=
                    1u << OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
            else if (strcmp(s, "ERROR") == 0)
                p->status_mask |=
                    1u << OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            else {
                const struct lg_node *sl = lg_node_get(bn, "status_codes");
                return lg_conf_error(
                    err, sl && sl->type == LG_NODE_SEQ && i < sl->nitems ? sl->items[i] : sl,
                    "unknown status code \"%s\" (OK, ERROR or UNSET)", s);
            }
        }
        rc = add_matcher(px, p, n, err);
        break;
    case TS_STRING_ATTRIBUTE:
    case TS_TRACE_STATE:
    case TS_LLM_FINISH_REASON:
        if (ti->type != TS_LLM_FINISH_REASON)
            NEED(c.key && *c.key, "key");
        NEED(c.values.n > 0, "values");
        p->key = c.key;
        p->values = c.values.items;
        p->nvalues = c.values.n;
        p->invert = c.invert_match;
        if (c.enabled_regex_matching) {
            p->regex = lg_arena_calloc(px->arena, c.values.n, sizeof(void *));
            if (p->regex == NULL)
                return lg_err_set(err, LG_ENOMEM, "out of memory");
            if (px->gctx == NULL) {
                px->gctx = pcre2_general_context_create(arena_malloc, arena_free, px->arena);
                px->cctx = px->gctx ? pcre2_compile_context_create(px->gctx) : NULL;
                if (px->cctx == NULL)
                    return lg_err_set(err, LG_ENOMEM, "out of memory");
            }
            const struct lg_node *vl = lg_node_get(bn, "values");
            for (size_t i = 0; i < c.values.n; i++) {
                int ec;
                PCRE2_SIZE eo;
                p->regex[i] = pcre2_compile((PCRE2_SPTR)c.values.items[i], PCRE2_ZERO_TERMINATED,
                                            PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, px->cctx);
                if (p->regex[i] == NULL) {
                    PCRE2_UCHAR msg[256];
                    pcre2_get_error_message(ec, msg, sizeof msg);
                    return lg_conf_error(
                        err, vl && vl->type == LG_NODE_SEQ && i < vl->nitems ? vl->items[i] : vl,
                        "bad regular expression \"%s\" at offset %zu: %s", c.values.items[i],
                        (size_t)eo, (const char *)msg);
                }
            }
            px->out->need_regex = true;
        }
        if (ti->type == TS_LLM_FINISH_REASON)
            px->out->need_llm = true;
        rc = add_matcher(px, p, n, err);
        break;
    case TS_BOOLEAN_ATTRIBUTE:
        NEED(c.key && *c.key, "key");
        p->key = c.key;
        p->bool_value = c.value;
        p->invert = c.invert_match;
        rc = add_matcher(px, p, n, err);
        break;
    case TS_RATE_LIMITING:
        NEED(c.spans_per_second > 0, "spans_per_second");
        p->rate = c.spans_per_second;
        break;
    case TS_BYTES_LIMITING:
        NEED(c.bytes_per_second > 0, "bytes_per_second");
        p->rate = c.bytes_per_second;
        p->burst = c.burst_capacity ? c.burst_capacity : 2 * c.bytes_per_second;
        p->tokens = (double)p->burst;
        break;
    case TS_SPAN_COUNT:
        p->lo = c.min_spans;
        p->hi = c.max_spans;
        if (p->hi && p->hi < p->lo)
            return lg_conf_error(err, lg_node_get(bn, "max_spans"),
                                 "must be 0 or at least min_spans");
        break;
    case TS_AND:
    case TS_DROP:
        rc = parse_sub_list(px, c.sub_list, bn,
                            ti->type == TS_AND ? "and_sub_policy" : "drop_sub_policy", depth, p,
                            err);
        break;
    case TS_NOT:
        NEED(c.sub_one != NULL, "not_sub_policy");
        p->subs = lg_arena_calloc(px->arena, 1, sizeof *p->subs);
        if (p->subs == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        p->nsubs = 1;
        rc = parse_policy(px, c.sub_one, depth + 1, &p->subs[0], err);
        break;
    case TS_COMPOSITE: {
        NEED(c.max_total_spans_per_second > 0, "max_total_spans_per_second");
        rc = parse_sub_list(px, c.sub_list, bn, "composite_sub_policy", depth, p, err);
        if (rc)
            return rc;
        p->rate = c.max_total_spans_per_second;
        /* reorder the sub-policies by policy_order (names not listed keep their order after) */
        struct ts_policy **ordered = lg_arena_calloc(px->arena, p->nsubs, sizeof *ordered);
        p->alloc_sps = lg_arena_calloc(px->arena, p->nsubs, sizeof(double));
        p->sub_in_second = lg_arena_calloc(px->arena, p->nsubs, sizeof(int64_t));
        if (ordered == NULL || p->alloc_sps == NULL || p->sub_in_second == NULL)
            return lg_err_set(err, LG_ENOMEM, "out of memory");
        size_t no = 0;
        const struct lg_node *pol = lg_node_get(bn, "policy_order");
        for (size_t i = 0; i < c.policy_order.n; i++) {
            size_t j;
            for (j = 0; j < p->nsubs; j++)
                if (p->subs[j] && strcmp(p->subs[j]->name, c.policy_order.items[i]) == 0)
                    break;
            if (j == p->nsubs)
                return lg_conf_error(
                    err, pol && pol->type == LG_NODE_SEQ && i < pol->nitems ? pol->items[i] : pol,
                    "\"%s\" is not the name of a composite_sub_policy", c.policy_order.items[i]);
            ordered[no++] = p->subs[j];
            p->subs[j] = NULL;
        }
        for (size_t j = 0; j < p->nsubs; j++)
            if (p->subs[j])
                ordered[no++] = p->subs[j];
        p->subs = ordered;
        const struct lg_node *ra = c.rate_allocation;
        if (ra != NULL && ra->type != LG_NODE_SEQ)
            return lg_conf_error(err, ra, "must be a list of {policy, percent}");
        double default_sps = (double)p->rate / (double)p->nsubs, total_pct = 0;
        for (size_t i = 0; ra && i < ra->nitems; i++) {
            const struct lg_node *it = ra->items[i];
            const struct lg_node *pn = lg_node_get(it, "policy"), *pc = lg_node_get(it, "percent");
            if (it->type != LG_NODE_MAP || pn == NULL || pn->type != LG_NODE_SCALAR)
                return lg_conf_error(err, it, "needs policy (a sub-policy name) and percent");
            for (size_t k = 0; k < it->npairs; k++)
                if (strcmp(it->pairs[k].key, "policy") && strcmp(it->pairs[k].key, "percent"))
                    return lg_conf_error(err, it->pairs[k].value,
                                         "unknown key \"%s\" (known keys: policy, percent)",
                                         it->pairs[k].key);
            int64_t pct = 0;
            if (pc && (rc = lg_conf_parse_int(pc, &pct, err)) != 0)
                return rc;
            if (pct < 0 || pct > 100)
                return lg_conf_error(err, pc, "must be between 0 and 100");
            size_t j;
            for (j = 0; j < p->nsubs; j++)
                if (strcmp(p->subs[j]->name, pn->scalar) == 0)
                    break;
            if (j == p->nsubs)
                return lg_conf_error(err, pn, "\"%s\" is not the name of a composite_sub_policy",
                                     pn->scalar);
            p->alloc_sps[j] = pct > 0 ? (double)pct / 100.0 * (double)p->rate : default_sps;
            total_pct += (double)pct;
        }
        if (total_pct > 100)
            return lg_conf_error(err, ra, "percentages add up to more than 100");
        break;
    }
    case TS_LLM_COST:
        p->threshold_usd = c.threshold_usd;
        if (lg_node_get(bn, "threshold_usd") == NULL)
            return lg_conf_error(err, bn, "llm_cost: missing key \"threshold_usd\"");
        px->out->need_llm = true;
        px->out->need_cost = true;
        break;
    case TS_OTTL_CONDITION: {
        const char *m = c.error_mode ? c.error_mode : "propagate";
        if (strcmp(m, "propagate") == 0)
            p->error_mode = TS_OTTL_PROPAGATE;
        else if (strcmp(m, "ignore") == 0)
            p->error_mode = TS_OTTL_IGNORE;
        else if (strcmp(m, "silent") == 0)
            p->error_mode = TS_OTTL_SILENT;
        else
            return lg_conf_error(err, lg_node_get(bn, "error_mode"),
                                 "unknown error_mode \"%s\" (propagate, ignore or silent)", m);
        rc = parse_ottl_list(px, c.ottl_span, LG_OTTL_SPAN, &p->span_texts, &p->nspan, err);
        if (rc == LG_OK)
            rc = parse_ottl_list(px, c.ottl_event, LG_OTTL_SPANEVENT, &p->event_texts, &p->nevent,
                                 err);
        if (rc)
            return rc;
        if (p->nspan + p->nevent == 0)
            return lg_conf_error(
                err, bn, "ottl_condition: needs at least one condition in span or spanevent");
        px->out->need_ottl = true;
        rc = add_matcher(px, p, n, err);
        break;
    }
    case TS_LLM_TOKENS:
        NEED(lg_node_get(bn, "threshold") != NULL, "threshold");
        p->lo = c.threshold;
        px->out->need_llm = true;
        break;
    }
#undef NEED
    if (ti->type == TS_LLM_ERROR)
        px->out->need_llm = true;
    if (rc)
        return rc;
    *out = p;
    return LG_OK;
}

int ts_policies_parse(const struct lg_node *n, void *dst, struct lg_arena *arena,
                      struct lg_err *err)
{
    struct ts_policies *out = dst;
    memset(out, 0, sizeof *out);
    if (n->type != LG_NODE_SEQ)
        return lg_conf_error(err, n, "must be a list of policies ({name, type, <type>: {...}})");
    struct parse_ctx px = {.arena = arena, .out = out};
    out->top = lg_arena_calloc(arena, n->nitems + 1, sizeof *out->top);
    if (out->top == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->nitems; i++) {
        int rc = parse_policy(&px, n->items[i], 0, &out->top[i], err);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->top[j]->name, out->top[i]->name) == 0)
                return lg_conf_error(err, lg_node_get(n->items[i], "name"),
                                     "duplicate policy name \"%s\"", out->top[i]->name);
    }
    out->ntop = n->nitems;
    return LG_OK;
}

void ts_scratch_free(struct ts_scratch *s)
{
    if (s->md)
        pcre2_match_data_free(s->md);
    s->md = NULL;
    lg_ottl_scratch_free(&s->ottl);
}

void ts_policies_release(struct ts_policies *ps)
{
    for (size_t m = 0; m < ps->nmatchers; m++) {
        struct ts_policy *p = ps->matchers[m];
        if (p->type != TS_OTTL_CONDITION)
            continue;
        for (size_t i = 0; p->span_conds && i < p->nspan; i++)
            lg_ottl_free(p->span_conds[i]);
        for (size_t i = 0; p->event_conds && i < p->nevent; i++)
            lg_ottl_free(p->event_conds[i]);
        free(p->span_conds);
        free(p->event_conds);
        p->span_conds = p->event_conds = NULL;
    }
    ps->ottl_ready = false;
}

static int compile_list(const struct ts_policy *p, enum lg_ottl_ctx ctx, const char **texts,
                        size_t n, struct lg_ottl_cond ***out, struct lg_err *err)
{
    *out = calloc(n ? n : 1, sizeof **out);
    if (*out == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        struct lg_ottl_error e;
        int rc = lg_ottl_compile(ctx, texts[i], &(*out)[i], &e);
        if (rc) /* parse time compiled the same text: only memory can fail here */
            return lg_err_set(err, rc, "%s: %s condition %zu: %s", p->path, lg_ottl_ctx_name(ctx),
                              i, e.msg);
    }
    return LG_OK;
}

int ts_policies_compile(struct ts_policies *ps, const char *id, struct lg_err *err)
{
    ps->log_id = id;
    for (size_t m = 0; m < ps->nmatchers; m++) {
        struct ts_policy *p = ps->matchers[m];
        if (p->type != TS_OTTL_CONDITION)
            continue;
        int rc = compile_list(p, LG_OTTL_SPAN, p->span_texts, p->nspan, &p->span_conds, err);
        if (rc == LG_OK)
            rc =
                compile_list(p, LG_OTTL_SPANEVENT, p->event_texts, p->nevent, &p->event_conds, err);
        if (rc) {
            ts_policies_release(ps);
            return rc;
        }
    }
    ps->ottl_ready = true;
    return LG_OK;
}

void ts_summary_init(struct ts_summary *s)
{
    memset(s, 0, sizeof *s);
    s->min_start = UINT64_MAX;
}

/* ---- span matching ---- */

static bool str_matches(const struct ts_policy *p, const char *v, size_t len, struct ts_scratch *sc)
{
    for (size_t i = 0; i < p->nvalues; i++) {
        if (p->regex) {
            if (sc->md == NULL && (sc->md = pcre2_match_data_create(8, NULL)) == NULL)
                return false;
            if (pcre2_match(p->regex[i], (PCRE2_SPTR)v, len, 0, 0, sc->md, NULL) >= 0)
                return true;
        } else if (strlen(p->values[i]) == len && memcmp(p->values[i], v, len) == 0) {
            return true;
        }
    }
    return false;
}

static bool value_matches(const struct ts_policy *p, const lg_any_value *v, struct ts_scratch *sc)
{
    if (v == NULL)
        return false;
    switch (p->type) {
    case TS_STRING_ATTRIBUTE: {
        const char *s = lg_any_str(v);
        return s && str_matches(p, s, strlen(s), sc);
    }
    case TS_NUMERIC_ATTRIBUTE: {
        int64_t i;
        if (v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE &&
            v->value_case != OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE)
            return false;
        if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE)
            i = v->int_value;
        else if (isfinite(v->double_value) && v->double_value >= -9.2e18 &&
                 v->double_value <= 9.2e18)
            i = (int64_t)v->double_value;
        else
            return false;
        return i >= p->lo && i <= p->hi;
    }
    case TS_BOOLEAN_ATTRIBUTE:
        return v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE &&
               (bool)v->bool_value == p->bool_value;
    default: return false;
    }
}

/* Does a W3C tracestate ("k1=v1,k2=v2") hold key=one of values? */
static bool tracestate_matches(const struct ts_policy *p, const char *ts)
{
    size_t klen = strlen(p->key);
    const char *s = ts;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (eq && (size_t)(eq - s) == klen && memcmp(s, p->key, klen) == 0) {
            const char *v = eq + 1;
            size_t vlen = (size_t)(e - v);
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            for (size_t i = 0; i < p->nvalues; i++)
                if (strlen(p->values[i]) == vlen && memcmp(p->values[i], v, vlen) == 0)
                    return true;
        }
        s = e;
    }
    return false;
}

static bool finish_matches(const struct ts_policy *p, const lg_span *span,
                           const struct lg_llm_call *llm, struct ts_scratch *sc)
{
    if (llm == NULL)
        return false;
    if (llm->finish_reason && str_matches(p, llm->finish_reason, strlen(llm->finish_reason), sc))
        return true;
    /* every element of gen_ai.response.finish_reasons, not only the first lg_llm_read reports */
    const lg_any_value *v =
        lg_attr_find(span->attributes, span->n_attributes, "gen_ai.response.finish_reasons");
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE &&
        v->array_value)
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            const char *s = lg_any_str(v->array_value->values[i]);
            if (s && str_matches(p, s, strlen(s), sc))
                return true;
        }
    return false;
}

/* One list of conditions on one item: 1 one is true, 0 none, -1 an evaluation error that
 * error_mode propagate turns into the policy's error. */
static int ottl_any(const struct ts_policies *ps, const struct ts_policy *pol,
                    struct lg_ottl_cond *const *conds, const char *const *texts, size_t n,
                    const struct lg_ottl_item *it, struct ts_scratch *sc)
{
    for (size_t i = 0; i < n; i++) {
        int rc = lg_ottl_eval(conds[i], it, &sc->ottl);
        if (rc == 1)
            return 1;
        if (rc == 0)
            continue;
        if (pol->error_mode == TS_OTTL_PROPAGATE)
            return -1;
        if (pol->error_mode == TS_OTTL_IGNORE && !sc->ottl_logged) {
            sc->ottl_logged = true; /* once per batch: a bad condition fails on every span */
            lg_warn(ps->log_id,
                    "tail_sampling policy \"%s\": condition \"%s\" failed (%s); treated as "
                    "false (error_mode: ignore)",
                    pol->name, texts[i], rc == LG_ENOMEM ? "out of memory" : sc->ottl.err);
        }
    }
    return 0;
}

/* ottl_condition on one span: its span conditions, then each event's (the Collector's
 * order). */
static int ottl_span(const struct ts_policies *ps, const struct ts_policy *pol,
                     const lg_resource *res, const lg_scope *scope, const lg_span *span,
                     struct ts_scratch *sc)
{
    struct lg_ottl_item it = {.resource = res, .scope = scope, .span = span};
    int r = ottl_any(ps, pol, pol->span_conds, pol->span_texts, pol->nspan, &it, sc);
    for (size_t e = 0; r == 0 && pol->nevent && e < span->n_events; e++) {
        it.event = span->events[e];
        r = ottl_any(ps, pol, pol->event_conds, pol->event_texts, pol->nevent, &it, sc);
    }
    return r;
}

void ts_span_observe(const struct ts_policies *p, const lg_resource *res, const lg_scope *scope,
                     const lg_span *span, const struct lg_llm_call *llm, size_t encoded,
                     struct ts_scratch *sc, struct ts_summary *s)
{
    s->spans++;
    s->bytes += encoded;
    if (span->start_time_unix_nano && span->start_time_unix_nano < s->min_start)
        s->min_start = span->start_time_unix_nano;
    if (span->end_time_unix_nano > s->max_end)
        s->max_end = span->end_time_unix_nano;
    if (span->parent_span_id.len == 0)
        s->root_seen = true;
    unsigned code = span->status ? (unsigned)span->status->code : 0;
    if (code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR)
        s->error = true;
    if (p->need_cost) {
        /* gen_ai.usage.cost as llm_cost (or OpenLIT) wrote it, on any span; else the cost
         * lg_llm_read found (llm.cost.total) */
        double cost = 0;
        if (llm != NULL) {
            /* lg_llm_read (or llm_cost's listing) took it from these very attributes */
            if (llm->has_cost)
                cost = llm->cost_usd;
        } else {
            const lg_any_value *cv =
                lg_attr_find(span->attributes, span->n_attributes, "gen_ai.usage.cost");
            if (!(cv && lg_any_double(cv, &cost)))
                cost = 0;
        }
        if (isfinite(cost) && cost > 0)
            s->cost_usd += cost;
    }
    if (llm) {
        if (llm->failed)
            s->llm_error = true;
        if (llm->total_tokens > 0)
            s->tokens += llm->total_tokens;
    }
    for (size_t m = 0; m < p->nmatchers; m++) {
        uint64_t bit = 1ull << m;
        if ((s->bits | s->err_bits) & bit)
            continue; /* already matched (or failed, ottl_condition) on an earlier span */
        const struct ts_policy *pol = p->matchers[m];
        bool hit = false;
        switch (pol->type) {
        case TS_STATUS_CODE: hit = code < 8 && (pol->status_mask >> code) & 1u; break;
        case TS_TRACE_STATE:
            hit = span->trace_state && *span->trace_state &&
                  tracestate_matches(pol, span->trace_state);
            break;
        case TS_LLM_FINISH_REASON: hit = finish_matches(pol, span, llm, sc); break;
        case TS_OTTL_CONDITION: {
            if (!p->ottl_ready)
                break;
            int r = ottl_span(p, pol, res, scope, span, sc);
            if (r < 0)
                s->err_bits |= bit;
            hit = r > 0;
            break;
        }
        default:
            hit =
                (res && value_matches(
                            pol, lg_attr_find(res->attributes, res->n_attributes, pol->key), sc)) ||
                value_matches(pol, lg_attr_find(span->attributes, span->n_attributes, pol->key),
                              sc);
            break;
        }
        if (hit)
            s->bits |= bit;
    }
}

/* ---- decisions ---- */

uint64_t ts_hash_trace_id(const char *salt, const uint8_t tid[16])
{
    uint64_t h = 14695981039346656037ull;
    for (const unsigned char *c = (const unsigned char *)salt; *c; c++) {
        h ^= *c;
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 16; i++) {
        h ^= tid[i];
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t ts_prob_threshold(double ratio)
{
    if (!(ratio > 0))
        return 0;
    if (ratio >= 1)
        return UINT64_MAX;
    /* Go: big.Float(MaxUint64, 64-bit precision) * ratio, rounded to nearest even at 64
     * bits, then truncated. x86-64 long double has exactly a 64-bit significand. */
    long double v = (long double)UINT64_MAX * (long double)ratio;
    return (uint64_t)v;
}

static bool is_sampled(enum ts_decision d)
{
    return d == TS_SAMPLED || d == TS_INVERT_SAMPLED;
}

static enum ts_decision eval(struct ts_policy *p, const struct ts_summary *s, const uint8_t *tid,
                             int64_t now_ns)
{
    switch (p->type) {
    case TS_ALWAYS_SAMPLE: return TS_SAMPLED;
    case TS_LATENCY: {
        if (s->min_start == UINT64_MAX || s->max_end < s->min_start)
            return TS_NOT_SAMPLED;
        uint64_t ms = (s->max_end - s->min_start) / 1000000u;
        if ((int64_t)ms < p->lo)
            return TS_NOT_SAMPLED;
        return p->hi == 0 || (int64_t)ms <= p->hi ? TS_SAMPLED : TS_NOT_SAMPLED;
    }
    case TS_NUMERIC_ATTRIBUTE:
    case TS_STRING_ATTRIBUTE:
    case TS_BOOLEAN_ATTRIBUTE: {
        bool hit = (s->bits >> p->bit) & 1u;
        if (p->invert)
            return hit ? TS_INVERT_NOT_SAMPLED : TS_INVERT_SAMPLED;
        return hit ? TS_SAMPLED : TS_NOT_SAMPLED;
    }
    case TS_STATUS_CODE:
    case TS_TRACE_STATE:
    case TS_LLM_FINISH_REASON: return (s->bits >> p->bit) & 1u ? TS_SAMPLED : TS_NOT_SAMPLED;
    case TS_OTTL_CONDITION:
        if ((s->err_bits >> p->bit) & 1u)
            return TS_EVAL_ERROR;
        return (s->bits >> p->bit) & 1u ? TS_SAMPLED : TS_NOT_SAMPLED;
    case TS_PROBABILISTIC:
        return p->hash_threshold > 0 && ts_hash_trace_id(p->salt, tid) <= p->hash_threshold
                   ? TS_SAMPLED
                   : TS_NOT_SAMPLED;
    case TS_RATE_LIMITING: {
        int64_t sec = now_ns / 1000000000LL;
        if (sec != p->cur_second) {
            p->cur_second = sec;
            p->in_second = 0;
        }
        if (p->in_second + (int64_t)s->spans > p->rate)
            return TS_NOT_SAMPLED;
        p->in_second += s->spans;
        return TS_SAMPLED;
    }
    case TS_BYTES_LIMITING: {
        if (p->last_ns != 0 && now_ns > p->last_ns) {
            p->tokens += (double)(now_ns - p->last_ns) / 1e9 * (double)p->rate;
            if (p->tokens > (double)p->burst)
                p->tokens = (double)p->burst;
        }
        p->last_ns = now_ns;
        if (p->tokens >= (double)s->bytes) {
            p->tokens -= (double)s->bytes;
            return TS_SAMPLED;
        }
        return TS_NOT_SAMPLED;
    }
    case TS_SPAN_COUNT:
        return (int64_t)s->spans >= p->lo && (p->hi == 0 || (int64_t)s->spans <= p->hi)
                   ? TS_SAMPLED
                   : TS_NOT_SAMPLED;
    case TS_AND:
        for (size_t i = 0; i < p->nsubs; i++) {
            enum ts_decision d = eval(p->subs[i], s, tid, now_ns);
            if (d == TS_EVAL_ERROR)
                return d;
            if (d == TS_NOT_SAMPLED || d == TS_INVERT_NOT_SAMPLED || d == TS_DROPPED)
                return TS_NOT_SAMPLED;
        }
        return TS_SAMPLED;
    case TS_NOT: {
        enum ts_decision d = eval(p->subs[0], s, tid, now_ns);
        if (d == TS_EVAL_ERROR)
            return d;
        return is_sampled(d) ? TS_NOT_SAMPLED : TS_SAMPLED;
    }
    case TS_DROP:
        for (size_t i = 0; i < p->nsubs; i++) {
            enum ts_decision d = eval(p->subs[i], s, tid, now_ns);
            if (d == TS_EVAL_ERROR)
                return d;
            if (!is_sampled(d))
                return TS_NOT_SAMPLED;
        }
        return TS_DROPPED;
    case TS_COMPOSITE: {
        int64_t sec = now_ns / 1000000000LL;
        if (sec != p->cur_second) {
            p->cur_second = sec;
            memset(p->sub_in_second, 0, p->nsubs * sizeof *p->sub_in_second);
        }
        for (size_t i = 0; i < p->nsubs; i++) {
            enum ts_decision d = eval(p->subs[i], s, tid, now_ns);
            if (d == TS_EVAL_ERROR)
                return d;
            if (!is_sampled(d))
                continue;
            int64_t if_sampled = p->sub_in_second[i] + (int64_t)s->spans;
            if ((double)if_sampled <= p->alloc_sps[i] && if_sampled <= p->rate) {
                p->sub_in_second[i] = if_sampled;
                return TS_SAMPLED;
            }
            return TS_NOT_SAMPLED;
        }
        return TS_NOT_SAMPLED;
    }
    case TS_LLM_COST:
        return s->cost_usd >= p->threshold_usd && s->cost_usd > 0 ? TS_SAMPLED : TS_NOT_SAMPLED;
    case TS_LLM_TOKENS: return s->tokens >= p->lo && s->tokens > 0 ? TS_SAMPLED : TS_NOT_SAMPLED;
    case TS_LLM_ERROR: return s->llm_error ? TS_SAMPLED : TS_NOT_SAMPLED;
    }
    return TS_NOT_SAMPLED;
}

void ts_decide(const struct ts_policies *ps, const struct ts_summary *s, const uint8_t tid[16],
               int64_t now_ns, bool sample_on_first_match, struct ts_result *out)
{
    bool any_dropped = false, any_inv_not = false, any_sampled = false, only_prob = true;
    double prob_rate = 0;
    for (size_t i = 0; i < ps->ntop; i++) {
        struct ts_policy *p = ps->top[i];
        enum ts_decision d = eval(p, s, tid, now_ns);
        if (d == TS_EVAL_ERROR)
            lg_counter_add(ps->eval_errors, 1);
        lg_counter_add(is_sampled(d) ? p->count_sampled : p->count_not_sampled, 1);
        lg_counter_add(is_sampled(d) ? p->spans_sampled : p->spans_not_sampled, s->spans);
        if (d == TS_DROPPED)
            any_dropped = true;
        else if (d == TS_INVERT_NOT_SAMPLED)
            any_inv_not = true;
        else if (is_sampled(d)) {
            any_sampled = true;
            if (p->type == TS_PROBABILISTIC) {
                if (p->percentage / 100 > prob_rate)
                    prob_rate = p->percentage / 100;
            } else {
                only_prob = false;
            }
            if (sample_on_first_match)
                break;
        }
    }
    out->sampled = !any_dropped && !any_inv_not && any_sampled;
    out->prob_only_rate =
        out->sampled && only_prob && prob_rate > 0 && prob_rate < 1 ? prob_rate : 0;
}

/* ---- tracestate threshold (OTel probability sampling) ---- */

void ts_th_format(double p, char *buf, size_t len)
{
    if (p >= 1 || !(p > 0)) {
        snprintf(buf, len, "0");
        return;
    }
    long double t = (1.0L - (long double)p) * 72057594037927936.0L; /* 2^56 */
    uint64_t th = (uint64_t)llroundl(t);
    if (th >= (1ull << 56))
        th = (1ull << 56) - 1;
    char hex[16];
    snprintf(hex, sizeof hex, "%014llx", (unsigned long long)th);
    size_t n = 14;
    while (n > 1 && hex[n - 1] == '0')
        n--;
    hex[n] = '\0';
    snprintf(buf, len, "%s", hex);
}

char *ts_tracestate_merge(struct lg_arena *a, const char *ts, const char *th)
{
    size_t tslen = ts ? strlen(ts) : 0;
    size_t cap = tslen + strlen(th) + 16;
    char *out = lg_arena_alloc(a, cap);
    if (out == NULL)
        return NULL;
    /* the ot entry first: th, then the old entry's other sub-keys */
    size_t o = (size_t)snprintf(out, cap, "ot=th:%s", th);
    const char *s = ts ? ts : "";
    const char *rest_start = NULL;
    size_t rest_len = 0;
    /* find the ot entry's value */
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        if (e - p >= 3 && memcmp(p, "ot=", 3) == 0) {
            rest_start = p;
            rest_len = (size_t)(e - p);
            const char *v = p + 3, *ve = e;
            while (v < ve) {
                const char *se = v;
                while (se < ve && *se != ';')
                    se++;
                if (!(se - v >= 3 && memcmp(v, "th:", 3) == 0) && se > v) {
                    out[o++] = ';';
                    memcpy(out + o, v, (size_t)(se - v));
                    o += (size_t)(se - v);
                }
                v = se < ve ? se + 1 : se;
            }
            break;
        }
        p = e;
    }
    /* the other entries, in order */
    p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        if (e > p && !(rest_start == p && (size_t)(e - p) == rest_len)) {
            out[o++] = ',';
            memcpy(out + o, p, (size_t)(e - p));
            o += (size_t)(e - p);
        }
        p = e;
    }
    out[o] = '\0';
    return out;
}
