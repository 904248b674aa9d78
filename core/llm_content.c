/* core/llm_content.c — the table of content-carrying attribute keys and event names
 * (see core/llm_content.h). */
#include "llm_content.h"

#include <stdbool.h>
#include <string.h>

#include "common.h"

struct content_name {
    const char *name;
    size_t len;
    bool prefix; /* name is followed by "." and anything (indexed / nested keys) */
    enum lg_llm_content_kind kind;
};

/* Lengths are computed at compile time: lookups run for every attribute of every span. */
#define E(n, prefix, kind) {n, sizeof(n) - 1, prefix, kind}

static const struct content_name content_attrs[] = {
    /* OTel GenAI, current */
    E("gen_ai.input.messages", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.system_instructions", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.output.messages", false, LG_LLM_CONTENT_COMPLETION),
    E("gen_ai.tool.call.arguments", false, LG_LLM_CONTENT_TOOL),
    E("gen_ai.tool.call.result", false, LG_LLM_CONTENT_TOOL),
    /* GenAI deprecated, OpenLLMetry (indexed), OpenLIT */
    E("gen_ai.prompt", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.prompt", true, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.completion", false, LG_LLM_CONTENT_COMPLETION),
    E("gen_ai.completion", true, LG_LLM_CONTENT_COMPLETION),
    E("gen_ai.content.prompt", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.content.completion", false, LG_LLM_CONTENT_COMPLETION),
    E("llm.prompts", false, LG_LLM_CONTENT_PROMPT),
    E("llm.prompts", true, LG_LLM_CONTENT_PROMPT),
    E("llm.completions", false, LG_LLM_CONTENT_COMPLETION),
    E("llm.completions", true, LG_LLM_CONTENT_COMPLETION),
    E("traceloop.entity.input", false, LG_LLM_CONTENT_PROMPT),
    E("traceloop.entity.output", false, LG_LLM_CONTENT_COMPLETION),
    /* OpenInference */
    E("llm.input_messages", true, LG_LLM_CONTENT_PROMPT),
    E("llm.output_messages", true, LG_LLM_CONTENT_COMPLETION),
    E("llm.prompt_template", true, LG_LLM_CONTENT_PROMPT),
    E("input.value", false, LG_LLM_CONTENT_PROMPT),
    E("output.value", false, LG_LLM_CONTENT_COMPLETION),
    /* OpenInference retrieval and embedding text */
    E("retrieval.documents", true, LG_LLM_CONTENT_PROMPT),
    E("embedding.embeddings", true, LG_LLM_CONTENT_PROMPT),
    /* Vercel AI SDK */
    E("ai.prompt", false, LG_LLM_CONTENT_PROMPT),
    E("ai.prompt", true, LG_LLM_CONTENT_PROMPT),
    E("ai.response.text", false, LG_LLM_CONTENT_COMPLETION),
    E("ai.response.object", false, LG_LLM_CONTENT_COMPLETION),
    E("ai.response.toolCalls", false, LG_LLM_CONTENT_TOOL),
    E("ai.toolCall.args", false, LG_LLM_CONTENT_TOOL),
    E("ai.toolCall.result", false, LG_LLM_CONTENT_TOOL),
    /* Langfuse, MLflow */
    E("langfuse.observation.input", false, LG_LLM_CONTENT_PROMPT),
    E("langfuse.observation.output", false, LG_LLM_CONTENT_COMPLETION),
    E("mlflow.spanInputs", false, LG_LLM_CONTENT_PROMPT),
    E("mlflow.spanOutputs", false, LG_LLM_CONTENT_COMPLETION),
    /* seed-style free text */
    E("llm.prompt", false, LG_LLM_CONTENT_PROMPT),
    E("llm.completion", false, LG_LLM_CONTENT_COMPLETION),
    E("llm.response", false, LG_LLM_CONTENT_COMPLETION),
};

static const struct content_name content_events[] = {
    E("gen_ai.user.message", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.system.message", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.assistant.message", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.tool.message", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.content.prompt", false, LG_LLM_CONTENT_PROMPT),
    E("gen_ai.choice", false, LG_LLM_CONTENT_COMPLETION),
    E("gen_ai.content.completion", false, LG_LLM_CONTENT_COMPLETION),
};

static enum lg_llm_content_kind lookup(const struct content_name *t, size_t n, const char *s,
                                       size_t len)
{
    if (!s)
        return LG_LLM_CONTENT_NONE;
    for (size_t i = 0; i < n; i++) {
        size_t nl = t[i].len;
        if (!t[i].prefix) {
            if (len == nl && memcmp(s, t[i].name, nl) == 0)
                return t[i].kind;
        } else if (len > nl + 1 && memcmp(s, t[i].name, nl) == 0 && s[nl] == '.') {
            return t[i].kind;
        }
    }
    return LG_LLM_CONTENT_NONE;
}

enum lg_llm_content_kind lg_llm_content_attr(const char *key, size_t len)
{
    return lookup(content_attrs, LG_ARRAY_LEN(content_attrs), key, len);
}

enum lg_llm_content_kind lg_llm_content_event(const char *name, size_t len)
{
    return lookup(content_events, LG_ARRAY_LEN(content_events), name, len);
}

const char *lg_llm_content_kind_name(enum lg_llm_content_kind k)
{
    switch (k) {
    case LG_LLM_CONTENT_PROMPT:
        return "prompt";
    case LG_LLM_CONTENT_COMPLETION:
        return "completion";
    case LG_LLM_CONTENT_TOOL:
        return "tool";
    default:
        return "none";
    }
}
