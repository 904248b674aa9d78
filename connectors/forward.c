/* connectors/forward.c — the `forward` connector: the exporter of one pipeline and the
 * receiver of others of the same signal; passes batches through unchanged. */
#include "../core/component.h"

static const struct lg_conf_field forward_fields[] = {LG_CONF_END};

static int forward_consume(struct lg_component *c, struct lg_batch *b)
{
    return lg_fanout_consume(&c->next[b->signal], b);
}

const struct lg_component_type lg_forward_connector = {
    .type = "forward",
    .kind = LG_CONNECTOR,
    .signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .out_signals = LG_TRACES | LG_METRICS | LG_LOGS,
    .description = "passes data from one pipeline to others of the same signal",
    .conf_size = 0,
    .fields = forward_fields,
    .consume = forward_consume,
};
