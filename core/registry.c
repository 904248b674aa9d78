/* core/registry.c — the static table of every component type. Adding a component is one
 * file plus one line here. */
#include "component.h"

#include <pthread.h>
#include <string.h>

extern const struct lg_component_type lg_otlp_receiver;
extern const struct lg_component_type lg_batch_processor;
extern const struct lg_component_type lg_debug_exporter;
extern const struct lg_component_type lg_file_exporter;
extern const struct lg_component_type lg_forward_connector;
extern const struct lg_component_type lg_health_check_extension;
extern const struct lg_component_type lg_memory_limiter_processor;
extern const struct lg_component_type lg_llm_cost_processor;
extern const struct lg_component_type lg_otlp_exporter;
extern const struct lg_component_type lg_otlp_http_exporter;
extern const struct lg_component_type lg_prometheus_exporter;
extern const struct lg_component_type lg_llm_metrics_connector;
extern const struct lg_component_type lg_file_storage_extension;
extern const struct lg_component_type lg_bearertokenauth_extension;
extern const struct lg_component_type lg_loadbalancing_exporter;
extern const struct lg_component_type lg_attributes_processor;
extern const struct lg_component_type lg_resource_processor;
extern const struct lg_component_type lg_tail_sampling_processor;
extern const struct lg_component_type lg_probabilistic_sampler_processor;
extern const struct lg_component_type lg_filter_processor;
extern const struct lg_component_type lg_redaction_processor;
extern const struct lg_component_type lg_azure_monitor_exporter;
extern const struct lg_component_type lg_interaction_store_exporter;

static const struct lg_component_type *const all_types[] = {
    &lg_otlp_receiver,
    &lg_memory_limiter_processor,
    &lg_llm_cost_processor,
    &lg_tail_sampling_processor,
    &lg_probabilistic_sampler_processor,
    &lg_filter_processor,
    &lg_redaction_processor,
    &lg_attributes_processor,
    &lg_resource_processor,
    &lg_batch_processor,
    &lg_otlp_exporter,
    &lg_otlp_http_exporter,
    &lg_prometheus_exporter,
    &lg_loadbalancing_exporter,
    &lg_azure_monitor_exporter,
    &lg_interaction_store_exporter,
    &lg_debug_exporter,
    &lg_file_exporter,
    &lg_forward_connector,
    &lg_llm_metrics_connector,
    &lg_health_check_extension,
    &lg_file_storage_extension,
    &lg_bearertokenauth_extension,
};

/* all_types, NULL-terminated (kept as a separate table so entries can be filtered, e.g.
 * by build options, in one place). */
static const struct lg_component_type *registry[LG_ARRAY_LEN(all_types) + 1];
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static void registry_init(void)
{
    size_t n = 0;
    for (size_t i = 0; i < LG_ARRAY_LEN(all_types); i++)
        registry[n++] = all_types[i];
    registry[n] = NULL;
}

static const char *const kind_names[] = {"receiver", "processor", "exporter", "connector",
                                         "extension"};

const char *lg_kind_name(enum lg_kind k) { return kind_names[k]; }

static int name_eq(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && memcmp(name, s, len) == 0;
}

const struct lg_component_type *lg_registry_find(enum lg_kind kind, const char *type, size_t len)
{
    pthread_once(&registry_once, registry_init);
    for (const struct lg_component_type *const *t = registry; *t; t++) {
        if ((*t)->kind != kind)
            continue;
        if (name_eq((*t)->type, type, len))
            return *t;
        for (const char *const *a = (*t)->aliases; a && *a; a++)
            if (name_eq(*a, type, len))
                return *t;
    }
    return NULL;
}

const struct lg_component_type *const *lg_registry_all(void)
{
    pthread_once(&registry_once, registry_init);
    return registry;
}
