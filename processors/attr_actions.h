/* processors/attr_actions.h — the Collector's attribute actions (the `actions` list of the
 * `attributes` and `resource` processors): insert, update, upsert, delete, hash, extract,
 * convert, applied in order to one attribute list.
 *
 *   insert   key = value | from_attribute, when key is absent
 *   update   ... when key is present
 *   upsert   either
 *   delete   key, and/or every key matching `pattern`
 *   hash     SHA-256 hex of the value (strings: their bytes; ints/doubles: 8 bytes little
 *            endian; bools: one byte), for key and/or keys matching `pattern` — as the
 *            Collector does since it moved from SHA-1
 *   extract  `pattern` with named groups over key's string value: each group becomes an
 *            attribute (overwriting)
 *   convert  key's value to converted_type int | double | string (left as is when it
 *            cannot be converted)
 * `value` takes its type from YAML: true/false → bool, integers → int, other numbers →
 * double, anything quoted or else → string. `from_context` (request metadata) is refused:
 * the receivers do not carry metadata down the pipeline.
 *
 * Ownership: the parsed list lives in the component's arena (compiled regexes are freed by
 * lg_attr_actions_free). Applying never writes the input array or its KeyValues: changes
 * produce a new array and new KeyValues in the batch arena `a`. */
#ifndef LG_ATTR_ACTIONS_H
#define LG_ATTR_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "../core/arena.h"
#include "../core/common.h"
#include "../core/conf.h"
#include "../core/otlp.h"

struct lg_attr_action;

struct lg_attr_actions {
    struct lg_attr_action *v;
    size_t n;
    size_t max_growth; /* attributes one application can add at most */
};

/** Parses the `actions` sequence node (errors name actions[i].key paths). */
int lg_attr_actions_parse(const struct lg_node *seq, struct lg_arena *a, struct lg_attr_actions *out,
                          struct lg_err *err);
void lg_attr_actions_free(struct lg_attr_actions *acts);

/** Applies every action to *attrs / *n. When something changed, *attrs points to a new
 *  array allocated from `a` and *changed is set. LG_OK or LG_ENOMEM. */
int lg_attr_actions_apply(const struct lg_attr_actions *acts, struct lg_arena *a, lg_kv ***attrs, size_t *n,
                          bool *changed);

/** A YAML scalar as an attribute value, typed as described above (value allocated from a). */
int lg_attr_value_from_node(const struct lg_node *n, struct lg_arena *a, lg_any_value **out, struct lg_err *err);
/** Compiles a config regex (UTF, JIT when available); NULL with a config error naming n,
 *  e.g. "invalid regexp at offset 3: missing closing parenthesis". Free with pcre2_code_free. */
pcre2_code *lg_conf_regex(const struct lg_node *n, const char *pattern, struct lg_err *err);
/** Typed equality of two attribute values (strings by bytes; int and double by value). */
bool lg_any_value_equal(const lg_any_value *x, const lg_any_value *y);

#endif
