/* processors/pricing.h — LLM price tables: loading (our YAML format, or a LiteLLM
 * model_prices_and_context_window.json), model-name matching, cost computation, and reload
 * of the table file when it changes. Used by the llm_cost processor.
 *
 * Table format (docs/processors/llm_cost.md has the full description):
 *   providers: {azure: {fallback: [openai, anthropic]}}      # optional
 *   models:                                                   # tried in file order
 *     - id: gpt-4o
 *       provider: openai
 *       match: {exact: [gpt-4o, gpt-4o-2024-08-06], prefix: [...], regex: [...]}
 *       prices: {input: 2.5, output: 10, cache_read: 1.25, cache_write: ..., reasoning: ...,
 *                long_context: {above: 200000, input: 5, output: 15, ...}}
 *       # or a list, the last entry in force wins:
 *       # prices: [{input: 1, output: 2}, {effective_from: 2025-12-02, input: 2, output: 4},
 *       #          {utc_hours: "00:30-16:30", input: 3, output: 6}]
 *   deployments: {my-gpt4o-prod: gpt-4o-2024-08-06}          # optional
 *   discounts: {percent: 10, providers: {openai: 20}}         # optional
 * Prices are USD per 1M tokens. cache_read and cache_write default to input, reasoning to
 * output, output to 0 (embeddings).
 *
 * Lookup of (span provider, model name): the name is tried as written (lower-cased), then
 * normalised step by step — `provider/` prefix, YYYYMMDD dates as YYYY-MM-DD, Vertex `@...`
 * suffix, Bedrock region (`us.`, `eu.`, `apac.`, `global.`, ...) and vendor (`anthropic.`)
 * prefixes and `-v1:0` suffixes, date suffixes (`-2024-08-06`, `-20241022`), and finally a
 * fine-tune `ft:base:org::id` falls back to its base model (flagged). At each step the
 * provider's own models are tried, then its fallback providers, then every model. Results
 * are cached per (provider, raw name), so the steady state is one hash lookup.
 *
 * Thread safety: lg_pricer_* may be called from any thread. The table is reference counted
 * and swapped atomically on reload; a price computed during a reload uses the old or the new
 * table, never a mix. */
#ifndef LG_PRICING_H
#define LG_PRICING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/common.h"
#include "../core/llm.h"

enum lg_price_format { LG_PRICE_FORMAT_LLMGATE = 0, LG_PRICE_FORMAT_LITELLM = 1 };

struct lg_price_table;

/** Loads a table: from `path`, or from `text` (named `name` in errors) when path is NULL.
 *  Errors name file:line:col and the YAML path (or the JSON key for LiteLLM files). */
int lg_price_table_load(const char *path, const char *text, const char *name,
                        enum lg_price_format fmt, struct lg_price_table **out, struct lg_err *err);
/** The table embedded in the binary (processors/prices/default.yaml). */
int lg_price_table_load_default(struct lg_price_table **out, struct lg_err *err);
struct lg_price_table *lg_price_table_ref(struct lg_price_table *t);
void lg_price_table_unref(struct lg_price_table *t);
/** Number of model entries. */
size_t lg_price_table_size(const struct lg_price_table *t);
/** Entry i's id and provider (for listings and tests). */
const char *lg_price_table_entry_id(const struct lg_price_table *t, size_t i);
const char *lg_price_table_entry_provider(const struct lg_price_table *t, size_t i);

/** Canonical provider id for a span's provider value: "openai", "azure", "anthropic",
 *  "google", "aws", "mistral", "cohere", "deepseek", "x-ai"; other values lower-cased into
 *  buf; NULL for NULL/empty. */
const char *lg_pricing_provider_id(const char *span_provider, char *buf, size_t len);

/** Writes the normalisation steps of `name` into out[] (each NUL-terminated in buf), the
 *  lower-cased name first, duplicates dropped; returns how many. *fine_tune_from is set to the
 *  index of the first step that is a fine-tune's base model (or -1). For tests and docs. */
size_t lg_pricing_name_variants(const char *name, char *buf, size_t buflen, const char **out,
                                size_t max, int *fine_tune_from);

struct lg_pricing_opts {
    const char *file;                 /* NULL: the embedded default table */
    enum lg_price_format format;
    const char *const *deploy_from;   /* deployment name -> model (both copied) */
    const char *const *deploy_to;
    size_t ndeployments;
    double discount_percent;          /* applied to every price (0..100) */
    const char *const *discount_providers; /* per provider (canonical id): replaces the global */
    const double *discount_provider_percent;
    size_t ndiscount_providers;
    int64_t reload_check_ns;          /* how often consume may stat() the file (0 = never) */
    const char *log_id;               /* component id for log lines */
};

struct lg_pricer;

int lg_pricer_create(const struct lg_pricing_opts *opts, struct lg_pricer **out, struct lg_err *err);
void lg_pricer_destroy(struct lg_pricer *p);

struct lg_price_result {
    const char *entry_id;      /* the matched table entry; valid until the table is reloaded */
    const char *entry_provider;
    double prompt_usd;         /* uncached input + cache reads + cache writes */
    double completion_usd;     /* output incl. reasoning */
    double total_usd;
    double discount_percent;   /* applied */
    bool fine_tune_base;       /* a fine-tune priced at its base model's rate */
    bool long_context;         /* the long-context tier applied */
};

/** Prices a call. Returns 1 when priced, 0 when the model is not in the table (or the call
 *  has no model), LG_EINVAL when it has no token counts at all. */
int lg_pricer_price(struct lg_pricer *p, const struct lg_llm_call *call, struct lg_price_result *out);

/** Checks the table file's mtime at most every reload_check_ns and reloads it when it
 *  changed; a bad new file is logged and the old table kept. Returns 1 when reloaded. */
int lg_pricer_maybe_reload(struct lg_pricer *p, int64_t now_mono_ns);

/** Generation counter: incremented on every successful reload (tests). */
uint64_t lg_pricer_generation(struct lg_pricer *p);

#endif
