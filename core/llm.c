/* core/llm.c — recognition and normalisation of LLM call spans across conventions
 * (REFERENCE §7), and attribute helpers. See core/llm.h for the contract.
 *
 * One pass over the span's attributes: each key is looked up by binary search in a sorted
 * table of the names we know (keys that cannot be ours are rejected on their first byte),
 * so a span that is not an LLM call costs a few byte compares per attribute. */
#include "llm.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"

enum key_id {
    K_ERROR_TYPE,
    K_GENAI_COMPLETION_TOKENS_DEP,
    K_GENAI_OPERATION,
    K_GENAI_PROVIDER,
    K_GENAI_REQUEST_MODEL,
    K_GENAI_RESPONSE_FINISH_REASONS,
    K_GENAI_RESPONSE_MODEL,
    K_GENAI_SYSTEM,
    K_GENAI_USAGE_CACHE_CREATION,
    K_GENAI_USAGE_CACHE_CREATION_DEP,
    K_GENAI_USAGE_CACHE_READ,
    K_GENAI_USAGE_CACHE_READ_DEP,
    K_GENAI_USAGE_COST,
    K_GENAI_USAGE_INPUT,
    K_GENAI_USAGE_OUTPUT,
    K_GENAI_USAGE_PROMPT_DEP,
    K_GENAI_USAGE_REASONING,
    K_GENAI_USAGE_REASONING_DEP,
    K_GENAI_USAGE_TOTAL,
    K_LLM_COMPLETION_TOKENS,
    K_LLM_COST_TOTAL,
    K_LLM_ERROR,
    K_LLM_FINISH_REASON,
    K_LLM_MODEL,
    K_LLM_MODEL_NAME,
    K_LLM_PROMPT_TOKENS,
    K_LLM_PROVIDER,
    K_LLM_REQUEST_MODEL,
    K_LLM_REQUEST_TYPE,
    K_LLM_RESPONSE_FINISH_REASON,
    K_LLM_RESPONSE_MODEL,
    K_LLM_SYSTEM,
    K_LLM_TC_COMPLETION,
    K_LLM_TC_COMPLETION_REASONING,
    K_LLM_TC_PROMPT,
    K_LLM_TC_PROMPT_CACHE_READ,
    K_LLM_TC_PROMPT_CACHE_WRITE,
    K_LLM_TC_TOTAL,
    K_LLM_TOTAL_TOKENS,
    K_LLM_USAGE_REASONING,
    K_LLM_USAGE_TOTAL,
    K_LLM_VENDOR,
    K_OI_SPAN_KIND,
    K_COUNT
};

struct key_def {
    const char *name;
    enum key_id id;
};

/* Every attribute name read; looked up through key_slots. */
static const struct key_def keys[] = {
    {"error.type", K_ERROR_TYPE},
    {"gen_ai.operation.name", K_GENAI_OPERATION},
    {"gen_ai.provider.name", K_GENAI_PROVIDER},
    {"gen_ai.request.model", K_GENAI_REQUEST_MODEL},
    {"gen_ai.response.finish_reasons", K_GENAI_RESPONSE_FINISH_REASONS},
    {"gen_ai.response.model", K_GENAI_RESPONSE_MODEL},
    {"gen_ai.system", K_GENAI_SYSTEM},
    {"gen_ai.usage.cache_creation.input_tokens", K_GENAI_USAGE_CACHE_CREATION},
    {"gen_ai.usage.cache_creation_input_tokens", K_GENAI_USAGE_CACHE_CREATION_DEP},
    {"gen_ai.usage.cache_read.input_tokens", K_GENAI_USAGE_CACHE_READ},
    {"gen_ai.usage.cache_read_input_tokens", K_GENAI_USAGE_CACHE_READ_DEP},
    {"gen_ai.usage.completion_tokens", K_GENAI_COMPLETION_TOKENS_DEP},
    {"gen_ai.usage.cost", K_GENAI_USAGE_COST},
    {"gen_ai.usage.input_tokens", K_GENAI_USAGE_INPUT},
    {"gen_ai.usage.output_tokens", K_GENAI_USAGE_OUTPUT},
    {"gen_ai.usage.prompt_tokens", K_GENAI_USAGE_PROMPT_DEP},
    {"gen_ai.usage.reasoning.output_tokens", K_GENAI_USAGE_REASONING},
    {"gen_ai.usage.reasoning_tokens", K_GENAI_USAGE_REASONING_DEP},
    {"gen_ai.usage.total_tokens", K_GENAI_USAGE_TOTAL},
    {"llm.completion_tokens", K_LLM_COMPLETION_TOKENS},
    {"llm.cost.total", K_LLM_COST_TOTAL},
    {"llm.error", K_LLM_ERROR},
    {"llm.finish_reason", K_LLM_FINISH_REASON},
    {"llm.model", K_LLM_MODEL},
    {"llm.model_name", K_LLM_MODEL_NAME},
    {"llm.prompt_tokens", K_LLM_PROMPT_TOKENS},
    {"llm.provider", K_LLM_PROVIDER},
    {"llm.request.model", K_LLM_REQUEST_MODEL},
    {"llm.request.type", K_LLM_REQUEST_TYPE},
    {"llm.response.finish_reason", K_LLM_RESPONSE_FINISH_REASON},
    {"llm.response.model", K_LLM_RESPONSE_MODEL},
    {"llm.system", K_LLM_SYSTEM},
    {"llm.token_count.completion", K_LLM_TC_COMPLETION},
    {"llm.token_count.completion_details.reasoning", K_LLM_TC_COMPLETION_REASONING},
    {"llm.token_count.prompt", K_LLM_TC_PROMPT},
    {"llm.token_count.prompt_details.cache_read", K_LLM_TC_PROMPT_CACHE_READ},
    {"llm.token_count.prompt_details.cache_write", K_LLM_TC_PROMPT_CACHE_WRITE},
    {"llm.token_count.total", K_LLM_TC_TOTAL},
    {"llm.total_tokens", K_LLM_TOTAL_TOKENS},
    {"llm.usage.reasoning_tokens", K_LLM_USAGE_REASONING},
    {"llm.usage.total_tokens", K_LLM_USAGE_TOTAL},
    {"llm.vendor", K_LLM_VENDOR},
    {"openinference.span.kind", K_OI_SPAN_KIND},
};

/* Key lookup: an open-addressing table over the names above, built once. Most attribute
 * keys of ordinary spans are rejected on their first byte or an empty slot, without a
 * string compare. */
#define KEY_SLOTS 256
static int8_t key_slots[KEY_SLOTS]; /* index into keys[] + 1; 0 = empty */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static unsigned key_hash(const char *k, size_t len)
{
    unsigned h = (unsigned)len * 131u;
    h = h * 31u + (unsigned char)k[len - 1];
    h = h * 31u + (unsigned char)k[len / 2];
    h = h * 31u + (unsigned char)k[len > 8 ? 8 : len - 1];
    return h;
}

static void key_table_build(void)
{
    for (size_t i = 0; i < LG_ARRAY_LEN(keys); i++) {
        unsigned h = key_hash(keys[i].name, strlen(keys[i].name));
        while (key_slots[h % KEY_SLOTS])
            h++;
        key_slots[h % KEY_SLOTS] = (int8_t)(i + 1);
    }
}

static int key_lookup(const char *k)
{
    if (k == NULL)
        return -1;
    switch (k[0]) { /* the only first bytes of names we know */
    case 'e': case 'g': case 'l': case 'o':
        break;
    default:
        return -1;
    }
    size_t len = strlen(k);
    if (len < 9) /* shorter than the shortest name we know ("llm.error") */
        return -1;
    pthread_once(&key_once, key_table_build);
    for (unsigned h = key_hash(k, len);; h++) {
        int8_t slot = key_slots[h % KEY_SLOTS];
        if (slot == 0)
            return -1;
        if (strcmp(keys[slot - 1].name, k) == 0)
            return (int)keys[slot - 1].id;
    }
}

const char *lg_llm_convention_name(enum lg_llm_convention c)
{
    switch (c) {
    case LG_LLM_CONV_SEED: return "seed";
    case LG_LLM_CONV_GENAI: return "gen_ai";
    case LG_LLM_CONV_GENAI_DEPRECATED: return "gen_ai_deprecated";
    case LG_LLM_CONV_OPENLLMETRY: return "openllmetry";
    case LG_LLM_CONV_OPENINFERENCE: return "openinference";
    case LG_LLM_CONV_OPENLIT: return "openlit";
    case LG_LLM_CONV_NONE: break;
    }
    return "none";
}

/* ---- AnyValue accessors ---- */

const lg_any_value *lg_attr_find(lg_kv *const *attrs, size_t n, const char *key)
{
    /* the first byte inline: most keys differ there, and a call to strcmp per attribute
     * was 2% of the tail-sampling benchmark */
    for (size_t i = 0; i < n; i++)
        if (attrs[i] && attrs[i]->key && attrs[i]->key[0] == key[0] && strcmp(attrs[i]->key, key) == 0)
            return attrs[i]->value;
    return NULL;
}

const char *lg_any_str(const lg_any_value *v)
{
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        return v->string_value;
    return NULL;
}

bool lg_any_int(const lg_any_value *v, int64_t *out)
{
    if (v == NULL)
        return false;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        *out = v->int_value;
        return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE: {
        double d = v->double_value;
        /* token counts are integers; a JSON encoder may have written 12.0 */
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9.0e15)
            return false;
        *out = (int64_t)d;
        return true;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        const char *s = v->string_value;
        if (s == NULL || *s == '\0')
            return false;
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0')
            return false;
        *out = x;
        return true;
    }
    default:
        return false;
    }
}

bool lg_any_double(const lg_any_value *v, double *out)
{
    if (v == NULL)
        return false;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        *out = v->double_value;
        return isfinite(*out);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        *out = (double)v->int_value;
        return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE: {
        const char *s = v->string_value;
        if (s == NULL || *s == '\0')
            return false;
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (errno != 0 || *end != '\0' || !isfinite(d))
            return false;
        *out = d;
        return true;
    }
    default:
        return false;
    }
}

bool lg_any_bool(const lg_any_value *v, bool *out)
{
    if (v == NULL)
        return false;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE) {
        *out = v->bool_value;
        return true;
    }
    const char *s = lg_any_str(v);
    if (s && strcmp(s, "true") == 0) {
        *out = true;
        return true;
    }
    if (s && strcmp(s, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* ---- recognition ---- */

static bool str_ieq(const char *a, const char *b)
{
    return a && strcasecmp(a, b) == 0;
}

/* Anthropic's own API, not a proxy that reshapes its usage (e.g. Bedrock, Vertex). */
static bool provider_is_anthropic_native(const char *p)
{
    return str_ieq(p, "anthropic");
}

static const char *first_string_of(const lg_any_value *v)
{
    if (v == NULL)
        return NULL;
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        return v->string_value; /* some SDKs write a single string */
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE && v->array_value &&
        v->array_value->n_values > 0)
        return lg_any_str(v->array_value->values[0]);
    return NULL;
}

int lg_llm_read(const lg_resource *res, const lg_scope *scope, const lg_span *span,
                struct lg_llm_call *out)
{
    return lg_llm_read_ex(res, scope, span, 0, out);
}

int lg_llm_read_ex(const lg_resource *res, const lg_scope *scope, const lg_span *span,
                   unsigned flags, struct lg_llm_call *out)
{
    LG_UNUSED(res);
    LG_UNUSED(scope);
    memset(out, 0, sizeof *out);
    out->input_tokens = out->output_tokens = out->total_tokens = -1;
    out->cache_read_tokens = out->cache_write_tokens = out->reasoning_tokens = -1;
    out->input_tokens_raw = -1;
    if (span == NULL)
        return 0;
    out->start_time_unix_nano = span->start_time_unix_nano;
    out->end_time_unix_nano = span->end_time_unix_nano;

    /* Freshly decoded attributes are usually out of cache by the time a processor walks
     * them; issuing the loads of every KeyValue, then of every key, up front lets them
     * overlap instead of missing one after another (this loop dominates the cost of a
     * non-LLM span). */
    for (size_t i = 0; i < span->n_attributes; i++)
        __builtin_prefetch(span->attributes[i]);
    if (span->name)
        __builtin_prefetch(span->name);
    for (size_t i = 0; i < span->n_attributes; i++)
        if (span->attributes[i])
            __builtin_prefetch(span->attributes[i]->key);

    const lg_any_value *val[K_COUNT];
    memset(val, 0, sizeof val);
    bool any = false;
    for (size_t i = 0; i < span->n_attributes; i++) {
        const lg_kv *kv = span->attributes[i];
        if (kv == NULL || kv->value == NULL)
            continue;
        int id = key_lookup(kv->key);
        if (id >= 0 && val[id] == NULL) {
            val[id] = kv->value;
            any = true;
        }
    }
    bool seed_name = span->name && strcmp(span->name, "llm_completion") == 0;
    if (!any && !seed_name)
        return 0;

    /* which convention: the most specific marker wins */
    const char *oi_kind = lg_any_str(val[K_OI_SPAN_KIND]);
    enum lg_llm_convention conv = LG_LLM_CONV_NONE;
    if (seed_name)
        conv = LG_LLM_CONV_SEED;
    else if (oi_kind && strcasecmp(oi_kind, "LLM") == 0)
        conv = LG_LLM_CONV_OPENINFERENCE;
    else if (val[K_GENAI_USAGE_COST])
        conv = LG_LLM_CONV_OPENLIT;
    else if (val[K_LLM_REQUEST_TYPE] || val[K_LLM_USAGE_TOTAL])
        conv = LG_LLM_CONV_OPENLLMETRY;
    else if (val[K_GENAI_OPERATION] || val[K_GENAI_PROVIDER] || val[K_GENAI_USAGE_INPUT] || val[K_GENAI_USAGE_OUTPUT])
        conv = LG_LLM_CONV_GENAI;
    else if (val[K_GENAI_SYSTEM] || val[K_GENAI_USAGE_PROMPT_DEP] || val[K_GENAI_COMPLETION_TOKENS_DEP])
        conv = LG_LLM_CONV_GENAI_DEPRECATED;
    else if (val[K_GENAI_REQUEST_MODEL] || val[K_GENAI_RESPONSE_MODEL])
        conv = LG_LLM_CONV_GENAI;
    /* An OpenInference span of another kind (CHAIN, TOOL, ...) is not an LLM call, even when
     * it carries llm.* attributes copied from a child. */
    if (oi_kind && strcasecmp(oi_kind, "LLM") != 0 && conv != LG_LLM_CONV_SEED)
        conv = LG_LLM_CONV_NONE;
    out->convention = conv;

    /* model and provider */
    out->request_model = lg_any_str(val[K_GENAI_REQUEST_MODEL]);
    if (!out->request_model)
        out->request_model = lg_any_str(val[K_LLM_REQUEST_MODEL]);
    if (!out->request_model)
        out->request_model = lg_any_str(val[K_LLM_MODEL]);
    out->response_model = lg_any_str(val[K_GENAI_RESPONSE_MODEL]);
    if (!out->response_model)
        out->response_model = lg_any_str(val[K_LLM_RESPONSE_MODEL]);
    const char *model_name = lg_any_str(val[K_LLM_MODEL_NAME]);
    if (out->response_model && *out->response_model)
        out->model = out->response_model;
    else if (out->request_model && *out->request_model)
        out->model = out->request_model;
    else if (model_name && *model_name)
        out->model = model_name;
    if (!out->request_model && model_name)
        out->request_model = model_name;

    static const enum key_id provider_keys[] = {K_GENAI_PROVIDER, K_GENAI_SYSTEM, K_LLM_PROVIDER, K_LLM_SYSTEM, K_LLM_VENDOR};
    for (size_t i = 0; i < LG_ARRAY_LEN(provider_keys) && out->provider == NULL; i++) {
        const char *p = lg_any_str(val[provider_keys[i]]);
        if (p && *p)
            out->provider = p;
    }
    out->operation = lg_any_str(val[K_GENAI_OPERATION]);
    if (!out->operation)
        out->operation = lg_any_str(val[K_LLM_REQUEST_TYPE]);

    /* tokens: first name present wins, in order of how current the convention is */
    int64_t in = -1, outp = -1, total = -1, cr = -1, cw = -1, rs = -1, x;
    bool in_from_genai = false;
    if (lg_any_int(val[K_GENAI_USAGE_INPUT], &x)) {
        in = x;
        in_from_genai = true;
        out->token_sources |= LG_LLM_SRC_GENAI_INPUT;
    } else if (lg_any_int(val[K_GENAI_USAGE_PROMPT_DEP], &x)) {
        in = x;
        in_from_genai = true;
    } else if (lg_any_int(val[K_LLM_TC_PROMPT], &x)) {
        in = x;
    } else if (lg_any_int(val[K_LLM_PROMPT_TOKENS], &x)) {
        in = x;
    }
    if (in_from_genai)
        out->token_sources |= LG_LLM_SRC_GENAI_USAGE;
    if (lg_any_int(val[K_GENAI_USAGE_OUTPUT], &x)) {
        outp = x;
        out->token_sources |= LG_LLM_SRC_GENAI_OUTPUT;
    } else if (lg_any_int(val[K_GENAI_COMPLETION_TOKENS_DEP], &x)) {
        outp = x;
    } else if (lg_any_int(val[K_LLM_TC_COMPLETION], &x)) {
        outp = x;
    } else if (lg_any_int(val[K_LLM_COMPLETION_TOKENS], &x)) {
        outp = x;
    }
    static const enum key_id total_keys[] = {K_GENAI_USAGE_TOTAL, K_LLM_USAGE_TOTAL, K_LLM_TC_TOTAL, K_LLM_TOTAL_TOKENS};
    for (size_t i = 0; i < LG_ARRAY_LEN(total_keys) && total < 0; i++)
        if (lg_any_int(val[total_keys[i]], &x))
            total = x;
    static const enum key_id cr_keys[] = {K_GENAI_USAGE_CACHE_READ, K_GENAI_USAGE_CACHE_READ_DEP, K_LLM_TC_PROMPT_CACHE_READ};
    for (size_t i = 0; i < LG_ARRAY_LEN(cr_keys) && cr < 0; i++)
        if (lg_any_int(val[cr_keys[i]], &x))
            cr = x;
    static const enum key_id cw_keys[] = {K_GENAI_USAGE_CACHE_CREATION, K_GENAI_USAGE_CACHE_CREATION_DEP, K_LLM_TC_PROMPT_CACHE_WRITE};
    for (size_t i = 0; i < LG_ARRAY_LEN(cw_keys) && cw < 0; i++)
        if (lg_any_int(val[cw_keys[i]], &x))
            cw = x;
    static const enum key_id rs_keys[] = {K_GENAI_USAGE_REASONING, K_GENAI_USAGE_REASONING_DEP, K_LLM_USAGE_REASONING, K_LLM_TC_COMPLETION_REASONING};
    for (size_t i = 0; i < LG_ARRAY_LEN(rs_keys) && rs < 0; i++)
        if (lg_any_int(val[rs_keys[i]], &x))
            rs = x;
    /* negative counts are garbage, not data */
    if (in < 0) in = -1;
    if (outp < 0) outp = -1;
    if (total < 0) total = -1;
    if (cr < 0) cr = -1;
    if (cw < 0) cw = -1;
    if (rs < 0) rs = -1;

    /* derive the missing one of input / output / total before any cache adjustment: a span's
     * total is written by the same SDK as its input, on the same accounting */
    if (in < 0 && outp >= 0 && total >= outp)
        in = total - outp;
    else if (outp < 0 && in >= 0 && total >= in)
        outp = total - in;
    out->input_tokens_raw = in;

    int64_t cache = (cr > 0 ? cr : 0) + (cw > 0 ? cw : 0);
    if (in >= 0 && cache > 0) {
        bool add = in < cache; /* cannot include what is larger than itself */
        if (!add && in_from_genai && provider_is_anthropic_native(out->provider) &&
            !(flags & LG_LLM_ANTHROPIC_INPUT_INCLUDES_CACHE))
            add = true;
        if (add) {
            in += cache;
            out->input_cache_added = true;
        }
    }
    if (outp >= 0 && rs > outp) {
        outp += rs;
        out->output_reasoning_added = true;
    }
    if (total < 0 && in >= 0 && outp >= 0)
        total = in + outp;
    else if (total >= 0 && in >= 0 && outp >= 0 && (out->input_cache_added || out->output_reasoning_added))
        total = in + outp; /* the span's total was on the unadjusted accounting */
    out->input_tokens = in;
    out->output_tokens = outp;
    out->total_tokens = total;
    out->cache_read_tokens = cr;
    out->cache_write_tokens = cw;
    out->reasoning_tokens = rs;

    /* outcome */
    const char *fr = first_string_of(val[K_GENAI_RESPONSE_FINISH_REASONS]);
    if (!fr)
        fr = lg_any_str(val[K_LLM_FINISH_REASON]);
    if (!fr)
        fr = lg_any_str(val[K_LLM_RESPONSE_FINISH_REASON]);
    out->finish_reason = fr;
    const char *et = lg_any_str(val[K_ERROR_TYPE]);
    if (et && *et) {
        out->error_type = et;
        out->failed = true;
    }
    if (val[K_LLM_ERROR]) {
        bool b;
        const char *s = lg_any_str(val[K_LLM_ERROR]);
        if (s && *s && strcmp(s, "false") != 0) {
            if (!out->error_type && strcmp(s, "true") != 0)
                out->error_type = s;
            out->failed = true;
        } else if (!s && lg_any_bool(val[K_LLM_ERROR], &b) && b) {
            out->failed = true;
        }
    }
    if (span->status && span->status->code == OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR)
        out->failed = true;

    double cost;
    if (lg_any_double(val[K_GENAI_USAGE_COST], &cost) || lg_any_double(val[K_LLM_COST_TOTAL], &cost)) {
        out->has_cost = true;
        out->cost_usd = cost;
    }

    /* An LLM call needs a convention marker and something to say about the call. */
    bool has_usage = in >= 0 || outp >= 0 || total >= 0;
    out->is_llm = conv != LG_LLM_CONV_NONE && (out->model != NULL || has_usage || seed_name || conv == LG_LLM_CONV_OPENINFERENCE);
    /* gen_ai.operation.name values that are not model calls (tool execution, agents) */
    if (out->is_llm && out->operation && conv != LG_LLM_CONV_SEED &&
        (strcmp(out->operation, "execute_tool") == 0 || strcmp(out->operation, "invoke_agent") == 0 ||
         strcmp(out->operation, "create_agent") == 0))
        out->is_llm = false;
    return out->is_llm ? 1 : 0;
}

/* ---- writing attributes ---- */

static int fill_value(struct lg_arena *a, lg_any_value *v, const struct lg_attr_set *s)
{
    opentelemetry__proto__common__v1__any_value__init(v);
    switch (s->kind) {
    case LG_ATTR_STRING:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = lg_arena_strdup(a, s->s ? s->s : "");
        return v->string_value ? LG_OK : LG_ENOMEM;
    case LG_ATTR_INT:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        v->int_value = s->i;
        return LG_OK;
    case LG_ATTR_DOUBLE:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = s->d;
        return LG_OK;
    case LG_ATTR_BOOL:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = s->b;
        return LG_OK;
    }
    return LG_EINVAL;
}

int lg_attrs_set(struct lg_arena *a, lg_kv ***attrs, size_t *nattrs,
                 const struct lg_attr_set *set, size_t n)
{
    /* Existing KeyValue structs and the old array are never written: they may be shared with
     * another batch (copy-on-write clones point at the original's spans' attributes). */
    size_t old_n = *nattrs;
    lg_kv **arr = lg_arena_alloc(a, (old_n + n + 1) * sizeof *arr);
    lg_kv *kvs = lg_arena_alloc(a, (n ? n : 1) * sizeof *kvs);
    lg_any_value *vals = lg_arena_alloc(a, (n ? n : 1) * sizeof *vals);
    if (arr == NULL || kvs == NULL || vals == NULL)
        return LG_ENOMEM;
    if (old_n)
        memcpy(arr, *attrs, old_n * sizeof *arr);
    size_t len = old_n;
    for (size_t i = 0; i < n; i++) {
        if (fill_value(a, &vals[i], &set[i]) != LG_OK)
            return LG_ENOMEM;
        lg_kv *kv = &kvs[i];
        opentelemetry__proto__common__v1__key_value__init(kv);
        kv->key = (char *)set[i].key;
        kv->value = &vals[i];
        size_t j = 0;
        while (j < len && !(arr[j] && arr[j]->key && strcmp(arr[j]->key, set[i].key) == 0))
            j++;
        arr[j] = kv; /* replaces the same key (also one set earlier in this call) or appends */
        if (j == len)
            len++;
    }
    *attrs = arr;
    *nattrs = len;
    return LG_OK;
}
