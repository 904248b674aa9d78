/* exporters/azure_monitor_map.c — OTLP -> Application Insights envelopes (see
 * exporters/azure_monitor.h). Placeholder that maps nothing, so the transport half links
 * while the mapping is being written. */
#include "azure_monitor.h"

#include <stdlib.h>

#include "../core/common.h"

int lg_azmon_map_batch(const struct lg_batch *b, const struct lg_azmon_map_opts *o,
                       struct lg_azmon_items *out)
{
    (void)b;
    (void)o;
    (void)out;
    return LG_OK;
}

void lg_azmon_items_free(struct lg_azmon_items *items)
{
    for (size_t i = 0; i < items->n; i++)
        free(items->v[i].json);
    free(items->v);
    items->v = NULL;
    items->n = items->cap = 0;
}
