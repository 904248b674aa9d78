/* processors/tail_sampling.h — the policy engine of the `tail_sampling` processor
 * (processors/tail_sampling_policy.c) and the few entry points tests use
 * (processors/tail_sampling.c).
 *
 * A trace is never kept as decoded OTLP while it waits: the processor keeps its spans as
 * protobuf bytes plus a `struct ts_summary` that ts_span_observe() updates as each span
 * arrives. At decision time ts_decide() combines the summaries with the policies' state
 * (rate limiters, token buckets) — no span is looked at again.
 *
 * Policies are parsed from the Collector's YAML shape (`policies: [{name, type, <type>:
 * {...}}]`) into a tree allocated from the config arena; compiled regular expressions are
 * allocated from that arena too, so nothing needs freeing — except `ottl_condition`'s
 * compiled conditions (processors/ottl.h allocates them with malloc): ts_policies_parse
 * only checks them (compiles and frees), and ts_policies_compile() builds the ones the
 * processor evaluates, freed by ts_policies_release(). The split exists because the runtime
 * also parses every component's settings once just to validate them and then drops the
 * result with its arena. Policies that test individual spans (string/numeric/boolean
 * attribute, status_code, trace_state, llm_finish_reason, ottl_condition) each own one bit
 * of ts_summary.bits ("some span or its resource matched"); at most TS_MAX_MATCHERS of them
 * per processor. ottl_condition also owns the same bit of ts_summary.err_bits (an
 * evaluation error under error_mode: propagate).
 *
 * Thread safety: ts_span_observe() only reads the policies (any thread); ts_decide()
 * updates rate-limiter state and must be serialised by the caller. */
#ifndef LG_TAIL_SAMPLING_H
#define LG_TAIL_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/component.h"
#include "../core/conf.h"
#include "../core/llm.h"
#include "ottl.h"

#define TS_MAX_MATCHERS 64

enum ts_ptype {
    TS_ALWAYS_SAMPLE,
    TS_LATENCY,
    TS_NUMERIC_ATTRIBUTE,
    TS_PROBABILISTIC,
    TS_STATUS_CODE,
    TS_STRING_ATTRIBUTE,
    TS_BOOLEAN_ATTRIBUTE,
    TS_RATE_LIMITING,
    TS_BYTES_LIMITING,
    TS_SPAN_COUNT,
    TS_TRACE_STATE,
    TS_AND,
    TS_NOT,
    TS_DROP,
    TS_COMPOSITE,
    TS_LLM_COST,
    TS_LLM_TOKENS,
    TS_LLM_FINISH_REASON,
    TS_LLM_ERROR,
    TS_OTTL_CONDITION,
};

/* The Collector's per-policy decisions. */
enum ts_decision {
    TS_NOT_SAMPLED = 0,
    TS_SAMPLED,
    TS_INVERT_SAMPLED,
    TS_INVERT_NOT_SAMPLED,
    TS_DROPPED,
    /* the policy could not be evaluated (ottl_condition, error_mode: propagate): counted in
     * sampling_policy_evaluation_error, does not sample; and/not/drop/composite pass it up
     * as the Collector's combinators return the sub-policy's error */
    TS_EVAL_ERROR,
};

/* What the policies need to know about a trace, updated span by span. */
struct ts_summary {
    uint64_t bits;      /* matcher bits (see above) */
    uint64_t err_bits;  /* ottl_condition bits whose evaluation failed (propagate) first */
    uint64_t min_start; /* unix ns; UINT64_MAX before the first span */
    uint64_t max_end;
    uint64_t bytes; /* encoded span bytes */
    uint32_t spans;
    bool root_seen;  /* a span without parent_span_id */
    bool error;      /* a span with status ERROR */
    bool llm_error;  /* an LLM span failed (status ERROR, error.type, llm.error) */
    double cost_usd; /* sum of the LLM spans' cost */
    int64_t tokens;  /* sum of the LLM spans' total tokens */
};

struct ts_policy {
    const char *name;
    enum ts_ptype type;
    const char *path; /* YAML path, for messages */
    int bit;          /* matcher bit, -1 for policies that do not look at single spans */
    /* parameters (which ones depends on type) */
    const char *key;
    const char **values;
    size_t nvalues;
    void **regex; /* pcre2_code *, enabled_regex_matching */
    bool invert;
    bool bool_value;
    int64_t lo, hi; /* latency ms, numeric range, span_count, llm_tokens threshold */
    double threshold_usd;
    double percentage; /* probabilistic */
    uint64_t hash_threshold;
    const char *salt;
    unsigned status_mask; /* 1 << STATUS_CODE */
    int64_t rate;         /* spans_per_second, bytes_per_second, max_total_spans_per_second */
    int64_t burst;
    /* ottl_condition: condition texts (config arena), compiled ones (ts_policies_compile;
     * malloc'd, NULL before) and error_mode */
    const char **span_texts, **event_texts;
    size_t nspan, nevent;
    struct lg_ottl_cond **span_conds, **event_conds;
    enum { TS_OTTL_PROPAGATE, TS_OTTL_IGNORE, TS_OTTL_SILENT } error_mode;
    struct ts_policy **subs;
    size_t nsubs;
    double *alloc_sps; /* composite: per sub-policy spans per second */
    /* state, under the caller's decision lock */
    int64_t cur_second;
    int64_t in_second;
    double tokens;
    int64_t last_ns;
    int64_t *sub_in_second;
    /* top-level only: otelcol_processor_tail_sampling_count_traces_sampled and
     * count_spans_sampled */
    struct lg_counter *count_sampled, *count_not_sampled;
    struct lg_counter *spans_sampled, *spans_not_sampled;
};

struct ts_policies {
    struct ts_policy **top;
    size_t ntop;
    struct ts_policy *matchers[TS_MAX_MATCHERS]; /* by bit */
    size_t nmatchers;
    bool need_llm;  /* an llm_* policy exists: LLM spans must be read */
    bool need_cost; /* an llm_cost policy exists: gen_ai.usage.cost is read on every span */
    bool need_regex;
    bool need_ottl;     /* an ottl_condition policy exists (ts_policies_compile has work) */
    bool ottl_ready;    /* ts_policies_compile succeeded: conditions are evaluated */
    const char *log_id; /* component id for ignore-mode log lines (ts_policies_compile) */
    /* otelcol_processor_tail_sampling_sampling_policy_evaluation_error (set by the
     * processor; NULL: not counted) */
    struct lg_counter *eval_errors;
};

/** LG_CONF_CUSTOM parser for `policies` (dst is struct ts_policies). Errors name the path. */
int ts_policies_parse(const struct lg_node *n, void *dst, struct lg_arena *arena,
                      struct lg_err *err);

/** Compiles the ottl_condition policies' conditions (after a successful ts_policies_parse;
 *  `id` names the component in log lines). LG_OK (nothing to do without ottl_condition), or
 *  an error with everything compiled so far released. Until it succeeds ottl_condition
 *  policies match nothing. */
int ts_policies_compile(struct ts_policies *p, const char *id, struct lg_err *err);
/** Frees what ts_policies_compile built (safe to call twice, or without compile). */
void ts_policies_release(struct ts_policies *p);

/** Per-call scratch for span matching (regex and OTTL match data); zero-initialise, free
 *  with ts_scratch_free. One scratch per consumed batch: error_mode ignore logs at most
 *  once per scratch. */
struct ts_scratch {
    void *md; /* pcre2_match_data * */
    struct lg_ottl_scratch ottl;
    bool ottl_logged;
};
void ts_scratch_free(struct ts_scratch *s);

/** Folds one span (and its resource, scope and events) into the summary. `llm` is the
 *  span's LLM reading or NULL when it is not an LLM span. `encoded` is the span's protobuf
 *  size. res and scope may be NULL. */
void ts_span_observe(const struct ts_policies *p, const lg_resource *res, const lg_scope *scope,
                     const lg_span *span, const struct lg_llm_call *llm, size_t encoded,
                     struct ts_scratch *scratch, struct ts_summary *s);

void ts_summary_init(struct ts_summary *s);

struct ts_result {
    bool sampled;
    /* > 0 when the trace was kept only by probabilistic policies: the largest of their
     * rates, in (0, 1] — the forwarded spans carry it as tracestate ot=th:... */
    double prob_only_rate;
};

/** Evaluates every top-level policy on a summary (serialise calls: rate limiters), counts
 *  the per-policy decisions and returns the final one. now_ns is a monotonic clock. */
void ts_decide(const struct ts_policies *p, const struct ts_summary *s, const uint8_t trace_id[16],
               int64_t now_ns, bool sample_on_first_match, struct ts_result *out);

/** The Collector's probabilistic hash: FNV-1a 64 over salt then the 16 trace ID bytes. */
uint64_t ts_hash_trace_id(const char *salt, const uint8_t trace_id[16]);
/** The Collector's threshold for a ratio in [0, 1]: floor(round64(MaxUint64 * ratio)). */
uint64_t ts_prob_threshold(double ratio);

/** OTel probability-sampling threshold text for rate p (14 hex digits, trailing zeros
 *  trimmed; "0" for p = 1). buf holds at least 16 bytes. */
void ts_th_format(double p, char *buf, size_t len);
/** Merges ot=th:<th> into a W3C tracestate (the ot entry moved to the front, its other
 *  sub-keys kept). Returns a string from arena a, NULL on OOM. */
char *ts_tracestate_merge(struct lg_arena *a, const char *tracestate, const char *th);

/* ---- processor entry points for tests ---- */

/** Decides every pending trace now (as at its deadline) and forwards what is kept,
 *  synchronously. LG_OK, or the first refusal (the traces stay queued for retry). */
int lg_tail_sampling_flush(struct lg_component *c);
/** Traces waiting for a decision, and sampled traces waiting to be forwarded. */
size_t lg_tail_sampling_pending(struct lg_component *c, size_t *ready);

#endif
