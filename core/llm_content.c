/* core/llm_content.c — the table of content-carrying attribute keys and event names
 * (see core/llm_content.h). */
#include "llm_content.h"

#include <stdbool.h>
#include <string.h>

#include "common.h"

struct content_name {
    const char *name;
    bool prefix; /* name is followed by "." and anything (indexed / nested keys) */
    enum lg_llm_content_kind kind;
};

static const struct content_name content_attrs[] = {
    /* OTel GenAI, current */
    {"gen_ai.input.messages", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.system_instructions", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.output.messages", false, LG_LLM_CONTENT_COMPLETION},
    {"gen_ai.tool.call.arguments", false, LG_LLM_CONTENT_TOOL},
    {"gen_ai.tool.call.result", false, LG_LLM_CONTENT_TOOL},
    /* GenAI deprecated, OpenLLMetry (indexed), OpenLIT */
    {"gen_ai.prompt", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.prompt", true, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.completion", false, LG_LLM_CONTENT_COMPLETION},
    {"gen_ai.completion", true, LG_LLM_CONTENT_COMPLETION},
    {"gen_ai.content.prompt", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.content.completion", false, LG_LLM_CONTENT_COMPLETION},
    {"llm.prompts", false, LG_LLM_CONTENT_PROMPT},
    {"llm.prompts", true, LG_LLM_CONTENT_PROMPT},
    {"llm.completions", false, LG_LLM_CONTENT_COMPLETION},
    {"llm.completions", true, LG_LLM_CONTENT_COMPLETION},
    {"traceloop.entity.input", false, LG_LLM_CONTENT_PROMPT},
    {"traceloop.entity.output", false, LG_LLM_CONTENT_COMPLETION},
    /* OpenInference */
    {"llm.input_messages", true, LG_LLM_CONTENT_PROMPT},
    {"llm.output_messages", true, LG_LLM_CONTENT_COMPLETION},
    {"llm.prompt_template", true, LG_LLM_CONTENT_PROMPT},
    {"input.value", false, LG_LLM_CONTENT_PROMPT},
    {"output.value", false, LG_LLM_CONTENT_COMPLETION},
    /* OpenInference retrieval and embedding text */
    {"retrieval.documents", true, LG_LLM_CONTENT_PROMPT},
    {"embedding.embeddings", true, LG_LLM_CONTENT_PROMPT},
    /* Vercel AI SDK */
    {"ai.prompt", false, LG_LLM_CONTENT_PROMPT},
    {"ai.prompt", true, LG_LLM_CONTENT_PROMPT},
    {"ai.response.text", false, LG_LLM_CONTENT_COMPLETION},
    {"ai.response.object", false, LG_LLM_CONTENT_COMPLETION},
    {"ai.response.toolCalls", false, LG_LLM_CONTENT_TOOL},
    {"ai.toolCall.args", false, LG_LLM_CONTENT_TOOL},
    {"ai.toolCall.result", false, LG_LLM_CONTENT_TOOL},
    /* Langfuse, MLflow */
    {"langfuse.observation.input", false, LG_LLM_CONTENT_PROMPT},
    {"langfuse.observation.output", false, LG_LLM_CONTENT_COMPLETION},
    {"mlflow.spanInputs", false, LG_LLM_CONTENT_PROMPT},
    {"mlflow.spanOutputs", false, LG_LLM_CONTENT_COMPLETION},
    /* seed-style free text */
    {"llm.prompt", false, LG_LLM_CONTENT_PROMPT},
    {"llm.completion", false, LG_LLM_CONTENT_COMPLETION},
    {"llm.response", false, LG_LLM_CONTENT_COMPLETION},
};

static const struct content_name content_events[] = {
    {"gen_ai.user.message", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.system.message", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.assistant.message", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.tool.message", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.content.prompt", false, LG_LLM_CONTENT_PROMPT},
    {"gen_ai.choice", false, LG_LLM_CONTENT_COMPLETION},
    {"gen_ai.content.completion", false, LG_LLM_CONTENT_COMPLETION},
};

static enum lg_llm_content_kind lookup(const struct content_name *t, size_t n, const char *s,
                                       size_t len)
{
    if (!s)
        return LG_LLM_CONTENT_NONE;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(t[i].name);
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
