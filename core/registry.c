/* core/registry.c — the static table of every component type. Adding a component is one
 * file plus one line here. */
#include "component.h"

#include <string.h>

extern const struct lg_component_type lg_otlp_receiver;
extern const struct lg_component_type lg_batch_processor;
extern const struct lg_component_type lg_debug_exporter;
extern const struct lg_component_type lg_file_exporter;
extern const struct lg_component_type lg_forward_connector;
extern const struct lg_component_type lg_health_check_extension;

static const struct lg_component_type *const registry[] = {
    &lg_otlp_receiver,
    &lg_batch_processor,
    &lg_debug_exporter,
    &lg_file_exporter,
    &lg_forward_connector,
    &lg_health_check_extension,
    NULL,
};

static const char *const kind_names[] = {"receiver", "processor", "exporter", "connector",
                                         "extension"};

const char *lg_kind_name(enum lg_kind k) { return kind_names[k]; }

static int name_eq(const char *name, const char *s, size_t len)
{
    return strlen(name) == len && memcmp(name, s, len) == 0;
}

const struct lg_component_type *lg_registry_find(enum lg_kind kind, const char *type, size_t len)
{
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

const struct lg_component_type *const *lg_registry_all(void) { return registry; }
