/* core/llm_content.h — which span attributes and span events carry prompt or completion
 * text, in every convention of REFERENCE §7. One list, used by the redaction processor's
 * `llm_content` preset (to drop or hash them) and by the interaction_store exporter (to
 * collect them), so the two can never disagree about what counts as content.
 *
 * Attribute keys recognised (exact names, or the prefix followed by anything):
 *   prompt      gen_ai.input.messages, gen_ai.system_instructions, gen_ai.prompt,
 *               gen_ai.prompt.* (OpenLLMetry indexed: gen_ai.prompt.0.content, ...),
 *               llm.input_messages.* (OpenInference), input.value (OpenInference),
 *               llm.prompts(.*) (OpenLLMetry legacy), llm.prompt_template.* (OpenInference),
 *               llm.prompt (seed style), traceloop.entity.input, gen_ai.content.prompt
 *   completion  gen_ai.output.messages, gen_ai.completion, gen_ai.completion.*,
 *               llm.output_messages.*, output.value, llm.completions(.*), llm.completion,
 *               llm.response (exact: llm.response.model etc. are not content),
 *               traceloop.entity.output, gen_ai.content.completion
 *   (gen_ai.tool.definitions is not listed: tool schemas are not user content)
 *   tool        gen_ai.tool.call.arguments, gen_ai.tool.call.result (what a tool was given and
 *               returned: as sensitive as the prompt)
 *   other SDKs  OpenInference retrieval.documents.* and embedding.embeddings.* (document and
 *               embedded text, as prompt); Vercel AI SDK ai.prompt(.*), ai.response.text,
 *               ai.response.object, ai.response.toolCalls, ai.toolCall.args / .result;
 *               Langfuse langfuse.observation.input / output; MLflow mlflow.spanInputs /
 *               spanOutputs
 * Event names whose every attribute (and log body) is content:
 *   prompt      gen_ai.user.message, gen_ai.system.message, gen_ai.assistant.message,
 *               gen_ai.tool.message, gen_ai.content.prompt
 *   completion  gen_ai.choice, gen_ai.content.completion
 * Events with other names (e.g. gen_ai.client.inference.operation.details) are content only
 * through the attribute keys above. Matching is case-sensitive, as attribute names are. */
#ifndef LG_LLM_CONTENT_H
#define LG_LLM_CONTENT_H

#include <stddef.h>

enum lg_llm_content_kind {
    LG_LLM_CONTENT_NONE = 0,
    LG_LLM_CONTENT_PROMPT,
    LG_LLM_CONTENT_COMPLETION,
    LG_LLM_CONTENT_TOOL,
};

/** What the attribute named key[0..len) carries. */
enum lg_llm_content_kind lg_llm_content_attr(const char *key, size_t len);
/** What an event named name[0..len) carries (its attributes and body, all of them). */
enum lg_llm_content_kind lg_llm_content_event(const char *name, size_t len);
/** "prompt", "completion", "tool", "none". */
const char *lg_llm_content_kind_name(enum lg_llm_content_kind k);

#endif
