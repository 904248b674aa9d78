/* tests/unit/proc_fixture.h — a processor under test, configured from YAML text, with a
 * recording sink (sink.h) as its next component for every signal, a runtime with its own
 * telemetry, and a reader of one self-metric series. Header-only, for cmocka tests.
 * Owns: the config document, the arena holding the processor's config struct, the
 * telemetry registry; fixture_free releases them and destroys the processor. */
#ifndef LG_TEST_PROC_FIXTURE_H
#define LG_TEST_PROC_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/component.h"
#include "core/conf.h"
#include "core/runtime.h"
#include "core/telemetry.h"
#include "sink.h"

struct fixture {
    const struct lg_component_type *type;
    struct lg_conf_doc doc;
    struct lg_runtime rt;
    struct lg_component proc;
    struct lg_component sink_c;
    struct test_sink sink;
    struct lg_component *to[1];
    struct lg_arena *arena;
};

/* Loads `yaml`, whose top-level key `key` holds the processor's config (key is also its
 * component ID), applies the field table and creates the processor. */
static inline int fixture_make(struct fixture *f, const struct lg_component_type *type, const char *key,
                               const char *yaml, struct lg_err *err)
{
    memset(f, 0, sizeof *f);
    f->type = type;
    test_sink_init(&f->sink, &f->sink_c);
    f->rt.telemetry = lg_telemetry_create();
    f->arena = lg_arena_create(0);
    struct lg_conf_source src = {.text = yaml, .name = "test.yaml"};
    int rc = lg_conf_load(&src, 1, NULL, NULL, &f->doc, err);
    if (rc != LG_OK)
        return rc;
    f->proc.type = type;
    f->proc.id = key;
    f->proc.rt = &f->rt;
    f->proc.conf_node = lg_node_get(f->doc.root, key);
    f->proc.conf = lg_arena_calloc(f->arena, 1, type->conf_size);
    f->to[0] = &f->sink_c;
    for (int s = 0; s < LG_SIGNAL_COUNT; s++)
        f->proc.next[s] = (struct lg_fanout){.to = f->to, .n = 1};
    rc = lg_conf_apply(type->fields, f->proc.conf_node, f->doc.root, f->proc.conf, f->arena, err);
    if (rc == LG_OK)
        rc = type->create(&f->proc, err);
    return rc;
}

/* fixture_make that fails the test when the config is refused. */
static inline void fixture_ok(struct fixture *f, const struct lg_component_type *type, const char *key,
                              const char *yaml)
{
    struct lg_err err = {{0}};
    if (fixture_make(f, type, key, yaml, &err) != LG_OK)
        fail_msg("config rejected: %s", err.msg);
}

static inline void fixture_free(struct fixture *f)
{
    if (f->proc.state)
        f->type->destroy(&f->proc);
    test_sink_free(&f->sink);
    lg_arena_destroy(f->arena);
    lg_conf_doc_free(&f->doc);
    lg_telemetry_destroy(f->rt.telemetry);
}

/* The value of the series `series` ("name{labels}" exactly as rendered), 0 when absent. */
static inline uint64_t fixture_series(struct fixture *f, const char *series)
{
    size_t len;
    char *text = lg_telemetry_render(f->rt.telemetry, &len);
    char want[600];
    snprintf(want, sizeof want, "%s ", series);
    char *p = text ? strstr(text, want) : NULL;
    uint64_t v = p ? strtoull(p + strlen(want), NULL, 10) : 0;
    free(text);
    return v;
}

#endif
