/* processors/llm_cost.c — the `llm_cost` processor: recognises LLM call spans in every
 * convention (core/llm.h), prices them with a price table (processors/pricing.h) and writes
 * the cost and the normalised token counts onto the span.
 *
 * Batches are never changed in place: a consumer cannot tell whether its caller will hand
 * the same batch to a sibling pipeline next (core/fanout.c does that with one reference), so
 * when a batch holds a span to change, the processor makes a copy-on-write clone — new
 * request/resource/scope wrappers and span pointer arrays in a new arena that depends on the
 * original, and a private copy of each span it changes. Untouched spans are shared.
 *
 * Unknown models are never a silent $0: the span gets llm.cost.unknown_model=true, the counter
 * llmgate_llm_cost_unknown_model_spans{model=...} counts it (the first MAX_MODEL_LABELS
 * names get their own label, the rest model="_other"), and a warning is logged once per name. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/component.h"
#include "../core/llm.h"
#include "../core/log.h"
#include "../core/runtime.h"
#include "pricing.h"

/* Distinct model names that get their own label on the unknown-model counter: enough for
 * every real model mix, small enough that a flood of random names cannot blow up /metrics. */
#define MAX_MODEL_LABELS 64
#define MODEL_LABEL_MAX 128

struct write_conf {
    bool gen_ai_usage_cost;
    bool openinference;
    bool normalized_tokens;
};

struct unknown_conf {
    bool attribute;
};

struct name_map {
    const char **from, **to;
    double *pct;
    size_t n;
};

struct discounts_conf {
    double percent;
    struct name_map providers;
};

struct llm_cost_conf {
    const char *pricing_file;
    const char *pricing_format;
    int64_t reload_interval_ns;
    struct write_conf write;
    struct discounts_conf discounts;
    struct name_map deployments;
    struct unknown_conf unknown_model;
    bool keep_existing_cost;
    bool anthropic_input_includes_cache;
};

static int parse_deployments(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    struct name_map *m = dst;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map of deployment name: model name");
    m->from = lg_arena_calloc(a, n->npairs + 1, sizeof(char *));
    m->to = lg_arena_calloc(a, n->npairs + 1, sizeof(char *));
    if (!m->from || !m->to)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->npairs; i++) {
        const struct lg_node *v = n->pairs[i].value;
        if (v->type != LG_NODE_SCALAR || !*v->scalar)
            return lg_conf_error(err, v, "must be a model name");
        m->from[i] = n->pairs[i].key;
        m->to[i] = v->scalar;
    }
    m->n = n->npairs;
    return LG_OK;
}

static int parse_provider_discounts(const struct lg_node *n, void *dst, struct lg_arena *a, struct lg_err *err)
{
    struct name_map *m = dst;
    if (n->type != LG_NODE_MAP)
        return lg_conf_error(err, n, "must be a map of provider: percent");
    m->from = lg_arena_calloc(a, n->npairs + 1, sizeof(char *));
    m->pct = lg_arena_calloc(a, n->npairs + 1, sizeof(double));
    if (!m->from || !m->pct)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->npairs; i++) {
        int rc = lg_conf_parse_double(n->pairs[i].value, &m->pct[i], err);
        if (rc)
            return rc;
        if (m->pct[i] < 0 || m->pct[i] > 100)
            return lg_conf_error(err, n->pairs[i].value, "must be between 0 and 100");
        m->from[i] = n->pairs[i].key;
    }
    m->n = n->npairs;
    return LG_OK;
}

static const struct lg_conf_field write_fields[] = {
    LG_CONF_BOOL("gen_ai_usage_cost", "true", struct write_conf, gen_ai_usage_cost,
                 "write gen_ai.usage.cost (USD), as OpenLIT and Langfuse read it"),
    LG_CONF_BOOL("openinference", "true", struct write_conf, openinference,
                 "write llm.cost.total, llm.cost.prompt, llm.cost.completion (USD)"),
    LG_CONF_BOOL("normalized_tokens", "true", struct write_conf, normalized_tokens,
                 "write gen_ai.usage.input_tokens / output_tokens where the span only had other names"),
    LG_CONF_END,
};

static const struct lg_conf_field unknown_fields[] = {
    LG_CONF_BOOL("attribute", "true", struct unknown_conf, attribute,
                 "mark spans whose model has no price with llm.cost.unknown_model=true"),
    LG_CONF_END,
};

static const struct lg_conf_field discount_fields[] = {
    LG_CONF_DOUBLE("percent", "0", struct discounts_conf, percent, 0, 100,
                   "percentage off every price (negotiated discount)"),
    LG_CONF_CUSTOM("providers", NULL, struct discounts_conf, providers, parse_provider_discounts,
                   "percentage off per provider (openai, azure, anthropic, google, aws, ...); replaces percent"),
    LG_CONF_END,
};

static const struct lg_conf_field llm_cost_fields[] = {
    LG_CONF_STRING("pricing_file", NULL, struct llm_cost_conf, pricing_file,
                   "price table file; empty: the table embedded in the binary"),
    LG_CONF_STRING("pricing_format", "llmgate", struct llm_cost_conf, pricing_format,
                   "llmgate (our YAML) or litellm (model_prices_and_context_window.json)"),
    LG_CONF_DURATION("reload_interval", "5s", struct llm_cost_conf, reload_interval_ns,
                     "how often the pricing file's mtime is checked; a changed file is reloaded (0: never)"),
    LG_CONF_SECTION("write", struct llm_cost_conf, write, write_fields, "which attribute sets to write"),
    LG_CONF_SECTION("discounts", struct llm_cost_conf, discounts, discount_fields, "negotiated discounts"),
    LG_CONF_CUSTOM("deployments", NULL, struct llm_cost_conf, deployments, parse_deployments,
                   "deployment name -> model name (Azure OpenAI deployments)"),
    LG_CONF_SECTION("unknown_model", struct llm_cost_conf, unknown_model, unknown_fields,
                    "what to do with spans whose model has no price"),
    LG_CONF_BOOL("keep_existing_cost", "true", struct llm_cost_conf, keep_existing_cost,
                 "leave spans that already carry gen_ai.usage.cost / llm.cost.total unpriced"),
    LG_CONF_BOOL("anthropic_input_includes_cache", "false", struct llm_cost_conf, anthropic_input_includes_cache,
                 "trust gen_ai.usage.input_tokens of provider anthropic to include cache tokens"),
    LG_CONF_END,
};

struct model_label {
    char *name;
    struct lg_counter *counter;
};

struct llm_cost_state {
    struct lg_component *c;
    struct llm_cost_conf *conf;
    struct lg_pricer *pricer;
    unsigned read_flags;
    struct lg_counter *priced, *unknown_other, *no_usage, *failed;
    pthread_mutex_t lock; /* labels */
    struct model_label labels[MAX_MODEL_LABELS];
    size_t nlabels;
    bool warned_overflow;
};

/* Prometheus label value escaping: backslash, quote, newline. */
static void label_escape(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < cap && o < MODEL_LABEL_MAX; s++) {
        if (*s == '\\' || *s == '"') {
            dst[o++] = '\\';
            dst[o++] = *s;
        } else if (*s == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = *s;
        }
    }
    dst[o] = '\0';
}

static void count_unknown(struct llm_cost_state *st, const char *model)
{
    const char *name = model && *model ? model : "(none)";
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->nlabels; i++)
        if (strcmp(st->labels[i].name, name) == 0) {
            struct lg_counter *ctr = st->labels[i].counter;
            pthread_mutex_unlock(&st->lock);
            lg_counter_add(ctr, 1);
            return;
        }
    struct lg_counter *ctr = st->unknown_other;
    if (st->nlabels < MAX_MODEL_LABELS) {
        char esc[2 * MODEL_LABEL_MAX + 8], labels[2 * MODEL_LABEL_MAX + 300];
        label_escape(esc, sizeof esc, name);
        snprintf(labels, sizeof labels, "processor=\"%s\",model=\"%s\"", st->c->id, esc);
        struct lg_counter *nc = lg_telemetry_counter(st->c->rt ? st->c->rt->telemetry : NULL,
                                                     "llmgate_llm_cost_unknown_model_spans",
                                                     "LLM spans whose model has no price in the table.", labels);
        char *dup = strdup(name);
        if (dup) {
            st->labels[st->nlabels++] = (struct model_label){dup, nc};
            ctr = nc;
            lg_warn(st->c->id, "no price for model \"%s\": spans are marked llm.cost.unknown_model=true "
                    "(add it to the pricing file or map it under deployments)", name);
        }
    } else if (!st->warned_overflow) {
        st->warned_overflow = true;
        lg_warn(st->c->id, "more than %d distinct unpriced models; further ones are counted as model=\"_other\" "
                "without a warning each", MAX_MODEL_LABELS);
    }
    pthread_mutex_unlock(&st->lock);
    lg_counter_add(ctr, 1);
}

/* What to write on one span; n == 0 means nothing. */
struct span_plan {
    struct lg_attr_set set[10];
    size_t n;
};

/* Returns whether the span is an LLM call; pl says what to write on it (maybe nothing). */
static bool plan_span(struct llm_cost_state *st, const lg_resource *res, const lg_scope *scope, const lg_span *span,
                      struct span_plan *pl, struct lg_llm_call *out)
{
    pl->n = 0;
    struct lg_llm_call call;
    if (!lg_llm_read_ex(res, scope, span, st->read_flags, &call))
        return false;
    *out = call;
    const struct llm_cost_conf *cf = st->conf;
    if (cf->write.normalized_tokens) {
        if (!(call.token_sources & LG_LLM_SRC_GENAI_INPUT) && call.input_tokens >= 0)
            pl->set[pl->n++] = (struct lg_attr_set){.key = "gen_ai.usage.input_tokens", .kind = LG_ATTR_INT, .i = call.input_tokens};
        if (!(call.token_sources & LG_LLM_SRC_GENAI_OUTPUT) && call.output_tokens >= 0)
            pl->set[pl->n++] = (struct lg_attr_set){.key = "gen_ai.usage.output_tokens", .kind = LG_ATTR_INT, .i = call.output_tokens};
    }
    if (call.has_cost && cf->keep_existing_cost)
        return true;
    struct lg_price_result r;
    int rc = lg_pricer_price(st->pricer, &call, &r);
    if (rc == LG_EINVAL) {
        lg_counter_add(st->no_usage, 1);
        return true;
    }
    if (rc == 0) {
        count_unknown(st, call.model);
        if (cf->unknown_model.attribute)
            pl->set[pl->n++] = (struct lg_attr_set){.key = "llm.cost.unknown_model", .kind = LG_ATTR_BOOL, .b = true};
        return true;
    }
    lg_counter_add(st->priced, 1);
    if (cf->write.gen_ai_usage_cost || cf->write.openinference) {
        /* the forwarded span carries this cost: say so in the call we list on the batch */
        out->has_cost = true;
        out->cost_usd = r.total_usd;
    }
    if (cf->write.gen_ai_usage_cost)
        pl->set[pl->n++] = (struct lg_attr_set){.key = "gen_ai.usage.cost", .kind = LG_ATTR_DOUBLE, .d = r.total_usd};
    if (cf->write.openinference) {
        pl->set[pl->n++] = (struct lg_attr_set){.key = "llm.cost.total", .kind = LG_ATTR_DOUBLE, .d = r.total_usd};
        pl->set[pl->n++] = (struct lg_attr_set){.key = "llm.cost.prompt", .kind = LG_ATTR_DOUBLE, .d = r.prompt_usd};
        pl->set[pl->n++] = (struct lg_attr_set){.key = "llm.cost.completion", .kind = LG_ATTR_DOUBLE, .d = r.completion_usd};
    }
    if (r.fine_tune_base)
        pl->set[pl->n++] = (struct lg_attr_set){.key = "llm.cost.fine_tune_base_price", .kind = LG_ATTR_BOOL, .b = true};
    return true;
}

static int llm_cost_consume(struct lg_component *c, struct lg_batch *b)
{
    struct llm_cost_state *st = c->state;
    if (b->signal != LG_SIGNAL_TRACES)
        return lg_fanout_consume(&c->next[b->signal], b);
    lg_pricer_maybe_reload(st->pricer, lg_now_mono_ns());
    struct lg_batch *nb = NULL;
    const lg_traces_req *req = b->req.traces;
    int rc = LG_OK;
    /* where the LLM spans are (r, s, i), so the batch we forward can list them */
    struct llm_pos {
        size_t r, s, i;
        struct lg_llm_call call;
    } *pos = NULL;
    size_t npos = 0, cappos = 0;
    for (size_t r = 0; r < req->n_resource_spans && rc == LG_OK; r++) {
        const lg_resource_spans *rs = req->resource_spans[r];
        for (size_t s = 0; s < rs->n_scope_spans && rc == LG_OK; s++) {
            const lg_scope_spans *ss = rs->scope_spans[s];
            for (size_t i = 0; i < ss->n_spans; i++) {
                /* the next spans' structs and attribute arrays, ahead of lg_llm_read */
                if (i + 2 < ss->n_spans)
                    __builtin_prefetch(ss->spans[i + 2]);
                if (i + 1 < ss->n_spans)
                    __builtin_prefetch(ss->spans[i + 1]->attributes);
                struct span_plan pl;
                struct lg_llm_call call;
                if (!plan_span(st, rs->resource, ss->scope, ss->spans[i], &pl, &call))
                    continue;
                if (npos == cappos) {
                    size_t nc = cappos ? cappos * 2 : 64;
                    struct llm_pos *np = realloc(pos, nc * sizeof *np);
                    if (np == NULL) {
                        rc = LG_ENOMEM;
                        break;
                    }
                    pos = np;
                    cappos = nc;
                }
                pos[npos++] = (struct llm_pos){r, s, i, call};
                if (pl.n == 0)
                    continue;
                if (nb == NULL && (nb = lg_batch_clone_shallow(b)) == NULL) {
                    rc = LG_ENOMEM;
                    break;
                }
                lg_scope_spans *nss = nb->req.traces->resource_spans[r]->scope_spans[s];
                lg_span *copy = lg_arena_memdup(nb->arena, ss->spans[i], sizeof *copy);
                if (copy == NULL || lg_attrs_set(nb->arena, &copy->attributes, &copy->n_attributes, pl.set, pl.n) != LG_OK) {
                    rc = LG_ENOMEM;
                    break;
                }
                nss->spans[i] = copy;
            }
        }
    }
    if (rc == LG_OK && nb != NULL) {
        /* the clone is ours: record which spans are LLM calls for the components after us */
        struct lg_llm_span_ref *refs = lg_arena_alloc(nb->arena, (npos ? npos : 1) * sizeof *refs);
        struct lg_llm_call *calls = lg_arena_alloc(nb->arena, (npos ? npos : 1) * sizeof *calls);
        if (refs != NULL && calls != NULL) {
            const lg_traces_req *nreq = nb->req.traces;
            for (size_t k = 0; k < npos; k++) {
                const lg_resource_spans *nrs = nreq->resource_spans[pos[k].r];
                const lg_scope_spans *nss = nrs->scope_spans[pos[k].s];
                calls[k] = pos[k].call;
                refs[k] = (struct lg_llm_span_ref){nrs, nss, nss->spans[pos[k].i], &calls[k]};
            }
            nb->llm_spans = refs;
            nb->n_llm_spans = npos;
            nb->llm_scanned = true;
        }
    }
    free(pos);
    if (rc != LG_OK) {
        /* refuse (retryable for the client) rather than forward spans without their cost */
        lg_counter_add(st->failed, b->items);
        lg_error(c->id, "out of memory adding cost attributes; refusing %zu spans", b->items);
        lg_batch_unref(nb);
        return rc;
    }
    if (nb == NULL)
        return lg_fanout_consume(&c->next[LG_SIGNAL_TRACES], b);
    rc = lg_fanout_consume(&c->next[LG_SIGNAL_TRACES], nb);
    lg_batch_unref(nb);
    return rc;
}

static int llm_cost_create(struct lg_component *c, struct lg_err *err)
{
    struct llm_cost_conf *cf = c->conf;
    enum lg_price_format fmt;
    if (cf->pricing_format == NULL || strcmp(cf->pricing_format, "llmgate") == 0)
        fmt = LG_PRICE_FORMAT_LLMGATE;
    else if (strcmp(cf->pricing_format, "litellm") == 0)
        fmt = LG_PRICE_FORMAT_LITELLM;
    else
        return lg_conf_error(err, lg_node_get(c->conf_node, "pricing_format"), "must be llmgate or litellm");
    if (fmt == LG_PRICE_FORMAT_LITELLM && (cf->pricing_file == NULL || !*cf->pricing_file))
        return lg_conf_error(err, lg_node_get(c->conf_node, "pricing_format"),
                             "litellm needs pricing_file (the embedded table is in llmgate format)");
    struct llm_cost_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return lg_err_set(err, LG_ENOMEM, "out of memory");
    st->c = c;
    st->conf = cf;
    pthread_mutex_init(&st->lock, NULL);
    struct lg_pricing_opts o = {
        .file = cf->pricing_file && *cf->pricing_file ? cf->pricing_file : NULL,
        .format = fmt,
        .deploy_from = cf->deployments.from,
        .deploy_to = cf->deployments.to,
        .ndeployments = cf->deployments.n,
        .discount_percent = cf->discounts.percent,
        .discount_providers = cf->discounts.providers.from,
        .discount_provider_percent = cf->discounts.providers.pct,
        .ndiscount_providers = cf->discounts.providers.n,
        .reload_check_ns = cf->reload_interval_ns,
        .log_id = c->id,
    };
    int rc = lg_pricer_create(&o, &st->pricer, err);
    if (rc) {
        const struct lg_node *fn = lg_node_get(c->conf_node, "pricing_file");
        if (fn) {
            char msg[LG_ERR_MAX];
            snprintf(msg, sizeof msg, "%s", err->msg);
            lg_conf_error(err, fn, "%s", msg);
        }
        pthread_mutex_destroy(&st->lock);
        free(st);
        return rc;
    }
    st->read_flags = cf->anthropic_input_includes_cache ? LG_LLM_ANTHROPIC_INPUT_INCLUDES_CACHE : 0;
    struct lg_telemetry *t = c->rt ? c->rt->telemetry : NULL;
    char labels[300];
    snprintf(labels, sizeof labels, "processor=\"%s\"", c->id);
    st->priced = lg_telemetry_counter(t, "llmgate_llm_cost_priced_spans", "LLM spans priced by llm_cost.", labels);
    st->no_usage = lg_telemetry_counter(t, "llmgate_llm_cost_no_usage_spans",
                                        "LLM spans without token counts (nothing to price).", labels);
    char l2[400];
    snprintf(l2, sizeof l2, "%s,model=\"_other\"", labels);
    st->unknown_other = lg_telemetry_counter(t, "llmgate_llm_cost_unknown_model_spans",
                                             "LLM spans whose model has no price in the table.", l2);
    snprintf(l2, sizeof l2, "%s,otel_signal=\"traces\"", labels);
    st->failed = lg_telemetry_counter(t, "otelcol_processor_refused_items",
                                      "Items a processor refused (out of memory).", l2);
    c->state = st;
    return LG_OK;
}

static void llm_cost_destroy(struct lg_component *c)
{
    struct llm_cost_state *st = c->state;
    if (st == NULL)
        return;
    lg_pricer_destroy(st->pricer);
    for (size_t i = 0; i < st->nlabels; i++)
        free(st->labels[i].name);
    pthread_mutex_destroy(&st->lock);
    free(st);
    c->state = NULL;
}

const struct lg_component_type lg_llm_cost_processor = {
    .type = "llm_cost",
    .kind = LG_PROCESSOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "prices LLM spans (every convention) and writes gen_ai.usage.cost / llm.cost.*",
    .conf_size = sizeof(struct llm_cost_conf),
    .fields = llm_cost_fields,
    .create = llm_cost_create,
    .consume = llm_cost_consume,
    .destroy = llm_cost_destroy,
};
