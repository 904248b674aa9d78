/* core/llm.h — recognises an LLM call span in any of the conventions SDKs emit (REFERENCE §7)
 * and reads it into one normalised record; plus small attribute helpers shared by the
 * llm_cost processor, the llm_metrics connector, tail sampling and the interaction store.
 *
 * Conventions recognised (a span may match several; `convention` names the strongest):
 *   seed            span name `llm_completion`, llm.model, llm.prompt_tokens,
 *                   llm.completion_tokens, llm.total_tokens, llm.finish_reason, llm.error
 *   gen_ai          OTel GenAI semconv: gen_ai.operation.name, gen_ai.provider.name,
 *                   gen_ai.request.model / gen_ai.response.model, gen_ai.usage.input_tokens /
 *                   output_tokens, gen_ai.usage.cache_read.input_tokens,
 *                   gen_ai.usage.cache_creation.input_tokens, gen_ai.usage.reasoning.output_tokens,
 *                   gen_ai.response.finish_reasons (string array), error.type
 *   gen_ai_deprecated  gen_ai.system, gen_ai.usage.prompt_tokens / completion_tokens /
 *                   total_tokens, gen_ai.usage.cache_read_input_tokens /
 *                   cache_creation_input_tokens, gen_ai.usage.reasoning_tokens
 *   openllmetry     llm.request.type, llm.usage.total_tokens, llm.usage.reasoning_tokens,
 *                   llm.vendor, llm.request.model / llm.response.model (+ gen_ai.* usage)
 *   openinference   openinference.span.kind = LLM, llm.model_name, llm.provider / llm.system,
 *                   llm.token_count.prompt / completion / total,
 *                   llm.token_count.prompt_details.cache_read / cache_write,
 *                   llm.token_count.completion_details.reasoning, llm.cost.total
 *   openlit         gen_ai.usage.cost already on the span (gen_ai.* otherwise)
 *
 * Token accounting after lg_llm_read() (never double counted):
 *   input_tokens   all prompt tokens INCLUDING cache reads and cache writes (OpenAI style).
 *                  Anthropic's native usage reports input without the cache: when the
 *                  provider is anthropic and the count came from gen_ai.* names, the cache
 *                  counts are added once (see LG_LLM_ANTHROPIC_INPUT_INCLUDES_CACHE); when any
 *                  provider reports input smaller than cache_read + cache_write, likewise.
 *   output_tokens  all completion tokens INCLUDING reasoning; when reasoning > output the
 *                  output evidently excluded it (Gemini style) and reasoning is added once.
 *   total_tokens   input + output when not on the span; a missing one of input/output/total
 *                  is derived from the other two.
 *   -1 means unknown everywhere.
 *
 * Integer attributes are accepted as intValue, doubleValue (integral) or stringValue (decimal).
 *
 * Ownership: lg_llm_read() allocates nothing; every string in struct lg_llm_call points into
 * the span / resource (valid as long as the batch is). */
#ifndef LG_LLM_H
#define LG_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "otlp.h"

enum lg_llm_convention {
    LG_LLM_CONV_NONE = 0,
    LG_LLM_CONV_SEED,              /* llm_completion + llm.* */
    LG_LLM_CONV_GENAI,             /* OTel GenAI, current */
    LG_LLM_CONV_GENAI_DEPRECATED,  /* gen_ai.system, gen_ai.usage.prompt_tokens, ... */
    LG_LLM_CONV_OPENLLMETRY,       /* llm.request.type, llm.usage.* */
    LG_LLM_CONV_OPENINFERENCE,     /* openinference.span.kind = LLM, llm.token_count.* */
    LG_LLM_CONV_OPENLIT,           /* gen_ai.* with gen_ai.usage.cost */
};

/** "seed", "gen_ai", "gen_ai_deprecated", "openllmetry", "openinference", "openlit", "none". */
const char *lg_llm_convention_name(enum lg_llm_convention c);

/* Which token names the span carried (bits of lg_llm_call.token_sources). llm_cost writes the
 * normalised gen_ai.usage.input_tokens / output_tokens only where the GENAI bits are absent. */
enum {
    LG_LLM_SRC_GENAI_INPUT = 1u << 0,  /* gen_ai.usage.input_tokens present */
    LG_LLM_SRC_GENAI_OUTPUT = 1u << 1, /* gen_ai.usage.output_tokens present */
    LG_LLM_SRC_GENAI_USAGE = 1u << 2,  /* input/prompt count came from a gen_ai.usage.* name */
};

/* lg_llm_read_ex() flags. */
enum {
    /* Trust gen_ai.usage.input_tokens to include the cache even for provider anthropic (the
     * current semconv asks instrumentations to sum them; older ones pass the native value). */
    LG_LLM_ANTHROPIC_INPUT_INCLUDES_CACHE = 1u << 0,
};

struct lg_llm_call {
    bool is_llm;
    enum lg_llm_convention convention;
    const char *request_model;  /* gen_ai.request.model, llm.request.model, llm.model (seed) */
    const char *response_model; /* gen_ai.response.model, llm.response.model */
    const char *model;          /* for pricing: response, else request, else llm.model_name */
    const char *provider;       /* gen_ai.provider.name, else gen_ai.system, llm.provider,
                                 * llm.system, llm.vendor — raw value as written */
    const char *operation;      /* gen_ai.operation.name, else llm.request.type; NULL if none */
    int64_t input_tokens;       /* incl. cache read + write */
    int64_t output_tokens;      /* incl. reasoning */
    int64_t total_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
    int64_t reasoning_tokens;
    int64_t input_tokens_raw;   /* the input count exactly as the span had it (-1 none) */
    bool input_cache_added;     /* input_tokens = raw + cache (Anthropic-native accounting) */
    bool output_reasoning_added;/* output_tokens = raw + reasoning (reasoning reported apart) */
    unsigned token_sources;     /* LG_LLM_SRC_* */
    const char *finish_reason;  /* first of gen_ai.response.finish_reasons, else
                                 * llm.finish_reason / llm.response.finish_reason */
    bool failed;                /* status ERROR, error.type or llm.error set */
    const char *error_type;     /* error.type, else llm.error (string), else NULL */
    bool has_cost;              /* a cost was already on the span */
    double cost_usd;            /* gen_ai.usage.cost, else llm.cost.total (USD) */
    uint64_t start_time_unix_nano;
    uint64_t end_time_unix_nano;
};

/** Reads `span` (resource and scope may be NULL) into *out. Returns 1 when it is an LLM span,
 *  0 when not (out->is_llm false, the other fields as far as found). Never fails. */
int lg_llm_read(const lg_resource *res, const lg_scope *scope, const lg_span *span,
                struct lg_llm_call *out);
/** As lg_llm_read with LG_LLM_* flags. */
int lg_llm_read_ex(const lg_resource *res, const lg_scope *scope, const lg_span *span,
                   unsigned flags, struct lg_llm_call *out);

/* ---- attribute helpers ---- */

/** The value of the first attribute named `key`, NULL when absent (or value unset). */
const lg_any_value *lg_attr_find(lg_kv *const *attrs, size_t n, const char *key);
/** String value, or NULL when v is NULL or not a string. */
const char *lg_any_str(const lg_any_value *v);
/** Integer from intValue, integral doubleValue or a decimal stringValue; false otherwise. */
bool lg_any_int(const lg_any_value *v, int64_t *out);
/** Double from doubleValue, intValue or a numeric stringValue; false otherwise. */
bool lg_any_double(const lg_any_value *v, double *out);
/** Bool from boolValue or the strings "true"/"false"; false when neither. */
bool lg_any_bool(const lg_any_value *v, bool *out);

/** One attribute to write: key (copied into the arena only if new) and a value. */
enum lg_attr_kind { LG_ATTR_STRING, LG_ATTR_INT, LG_ATTR_DOUBLE, LG_ATTR_BOOL };
struct lg_attr_set {
    const char *key;          /* must stay valid as long as the arena (use literals or arena strings) */
    enum lg_attr_kind kind;
    const char *s;            /* LG_ATTR_STRING: copied into the arena */
    int64_t i;
    double d;
    bool b;
};

/** Sets `n` attributes on *attrs / *nattrs (a span's, resource's, ...): an existing key gets
 *  a new KeyValue with the new value, new keys are appended. The result is a new array
 *  allocated from `a` (the arena of the batch that owns the span); the old array and the old
 *  KeyValue structs are never written, so a span struct copied into a copy-on-write clone of
 *  a shared batch can be changed without touching the original. Keys are not copied (use
 *  literals or arena strings). LG_OK or LG_ENOMEM (then *attrs is unchanged). */
int lg_attrs_set(struct lg_arena *a, lg_kv ***attrs, size_t *nattrs,
                 const struct lg_attr_set *set, size_t n);

#endif
