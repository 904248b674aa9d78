/* core/fanout.c — hands a batch to each downstream component in turn, counting processor
 * incoming/outgoing items on the way (otelcol_processor_incoming_items / outgoing_items). */
#include "component.h"

int lg_fanout_consume(const struct lg_fanout *f, struct lg_batch *b)
{
    int first_err = LG_OK;
    for (size_t i = 0; i < f->n; i++) {
        struct lg_component *c = f->to[i];
        if (c->type->kind == LG_PROCESSOR)
            lg_counter_add(c->incoming[b->signal], b->items);
        int rc = c->type->consume ? c->type->consume(c, b) : LG_EINTERNAL;
        /* Every consumer gets the data even if an earlier one refused it: a refusal is
         * reported to the client (which retries), the others must not lose it meanwhile. */
        if (rc != LG_OK && first_err == LG_OK)
            first_err = rc;
    }
    if (first_err == LG_OK && f->owner != NULL && f->owner->type->kind == LG_PROCESSOR)
        lg_counter_add(f->owner->outgoing[b->signal], b->items);
    return first_err;
}

int lg_fanout_consume_pruned(const struct lg_fanout *f, struct lg_batch *b, struct lg_batch *clone)
{
    if (clone == NULL)
        return lg_fanout_consume(f, b);
    lg_batch_prune_empty(clone);
    int rc = LG_OK;
    if (clone->items > 0)
        rc = lg_fanout_consume(f, clone);
    lg_batch_unref(clone);
    return rc;
}
