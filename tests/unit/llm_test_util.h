/* tests/unit/llm_test_util.h — builds spans with typed attributes for the LLM tests. */
#ifndef LG_LLM_TEST_UTIL_H
#define LG_LLM_TEST_UTIL_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/common.h"
#include "core/llm.h"

/* attribute spec: key, type char ('s' string, 'i' int, 'd' double, 'b' bool, 'a' string array
 * of one), value text */
struct tattr {
    const char *key;
    char type;
    const char *val;
};

static inline lg_span *tspan(struct lg_arena *a, const char *name, const struct tattr *at, size_t n)
{
    lg_span *s = lg_arena_alloc(a, sizeof *s);
    opentelemetry__proto__trace__v1__span__init(s);
    s->name = lg_arena_strdup(a, name);
    s->attributes = lg_arena_calloc(a, n + 1, sizeof(void *));
    s->n_attributes = n;
    for (size_t i = 0; i < n; i++) {
        lg_kv *kv = lg_arena_alloc(a, sizeof *kv);
        opentelemetry__proto__common__v1__key_value__init(kv);
        kv->key = lg_arena_strdup(a, at[i].key);
        lg_any_value *v = lg_arena_alloc(a, sizeof *v);
        opentelemetry__proto__common__v1__any_value__init(v);
        switch (at[i].type) {
        case 's':
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            v->string_value = lg_arena_strdup(a, at[i].val);
            break;
        case 'i':
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            v->int_value = strtoll(at[i].val, NULL, 10);
            break;
        case 'd':
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            v->double_value = strtod(at[i].val, NULL);
            break;
        case 'b':
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            v->bool_value = strcmp(at[i].val, "true") == 0;
            break;
        case 'a': {
            lg_array_value *arr = lg_arena_alloc(a, sizeof *arr);
            opentelemetry__proto__common__v1__array_value__init(arr);
            arr->values = lg_arena_alloc(a, sizeof(void *));
            lg_any_value *e = lg_arena_alloc(a, sizeof *e);
            opentelemetry__proto__common__v1__any_value__init(e);
            e->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            e->string_value = lg_arena_strdup(a, at[i].val);
            arr->values[0] = e;
            arr->n_values = 1;
            v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            v->array_value = arr;
            break;
        }
        }
        kv->value = v;
        s->attributes[i] = kv;
    }
    return s;
}

#endif
