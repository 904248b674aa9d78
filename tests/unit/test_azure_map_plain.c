/* tests/unit/test_azure_map_plain.c — the Azure Monitor mapping's string fast path
 * (exporters/azure_monitor_map.c: jw_is_plain / jw_plain): a string that is printable
 * ASCII without '"' or '\\' is copied as it is, anything else goes through UTF-8 repair and
 * escaping. The scan reads eight bytes at a time with an overlapping last word, so this
 * test puts each kind of byte that must leave the fast path (quote, backslash, control
 * characters, DEL, a two-byte UTF-8 character, an invalid byte) at every position of
 * strings of every length from 0 to 40, as a span name (cut in UTF-16 units) and as a
 * property key and value (cut in bytes), and checks the text against a byte-at-a-time
 * reference of the escaping rules (test_azure_map.c checks the rules themselves against
 * the official exporter). Also the limits on plain strings, where the fast path cuts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/batch.h"
#include "exporters/azure_monitor.h"

#define MAXLEN 40

/* The escaped JSON text of s (valid UTF-8 but for 0xFF bytes, which become U+FFFD), as
 * the mapping writes it: \" \\ \b \f \n \r \t, other control bytes as \u00xx, the rest
 * (DEL and non-ASCII included) as is. */
static size_t ref_escape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': o += (size_t)sprintf(out + o, "\\\""); break;
        case '\\': o += (size_t)sprintf(out + o, "\\\\"); break;
        case '\b': o += (size_t)sprintf(out + o, "\\b"); break;
        case '\f': o += (size_t)sprintf(out + o, "\\f"); break;
        case '\n': o += (size_t)sprintf(out + o, "\\n"); break;
        case '\r': o += (size_t)sprintf(out + o, "\\r"); break;
        case '\t': o += (size_t)sprintf(out + o, "\\t"); break;
        case 0xFF: o += (size_t)sprintf(out + o, "\xEF\xBF\xBD"); break;
        default:
            if (c < 0x20)
                o += (size_t)sprintf(out + o, "\\u%04x", c);
            else
                out[o++] = (char)c;
        }
    }
    out[o] = 0;
    return o;
}

/* The bytes put into the strings: each one (or pair) takes a string off the fast path,
 * except "a" (the all-plain case). */
static const char *const specials[] = {"a", "\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9",
                                       "\xff"};
#define NSPECIALS (sizeof specials / sizeof specials[0])

struct strcase {
    char s[MAXLEN + 1];
    size_t n;
};

/* Every test string: 'x' * len with specials[k] at pos (cut to fit). */
static size_t make_cases(struct strcase **out)
{
    size_t cap = (MAXLEN + 1) * (MAXLEN + 1) * NSPECIALS, n = 0;
    struct strcase *v = calloc(cap, sizeof *v);
    assert_non_null(v);
    for (size_t len = 0; len <= MAXLEN; len++) {
        memset(v[n].s, 'x', len);
        v[n++].n = len; /* plain */
        for (size_t pos = 0; pos < len; pos++)
            for (size_t k = 1; k < NSPECIALS; k++) {
                size_t sl = strlen(specials[k]);
                if (pos + sl > len)
                    continue;
                memset(v[n].s, 'x', len);
                memcpy(v[n].s + pos, specials[k], sl);
                v[n++].n = len;
            }
    }
    *out = v;
    return n;
}

/* A traces batch of one span per string (INTERNAL, no parent: a RemoteDependency whose
 * name is the string, with one property "p.<string>": "<string>"). The protobuf structs
 * live in one calloc'd block freed by free_batch. */
struct built {
    struct lg_batch *b;
    lg_span *spans;
    lg_span **span_ptrs;
    lg_kv *kvs;
    lg_kv **kv_ptrs;
    lg_any_value *vals;
    char (*keys)[MAXLEN + 3];
    char (*names)[MAXLEN + 1];
    lg_scope_spans ss;
    lg_scope_spans *ss_ptr;
    lg_resource_spans rs;
    lg_resource_spans *rs_ptr;
    lg_resource res;
    lg_traces_req req;
};

static uint8_t trace_id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static uint8_t span_id[8] = {1, 1, 2, 2, 3, 3, 4, 4};

static void build(struct built *x, const struct strcase *c, size_t n)
{
    memset(x, 0, sizeof *x);
    x->spans = calloc(n, sizeof *x->spans);
    x->span_ptrs = calloc(n, sizeof *x->span_ptrs);
    x->kvs = calloc(n, sizeof *x->kvs);
    x->kv_ptrs = calloc(n, sizeof *x->kv_ptrs);
    x->vals = calloc(n, sizeof *x->vals);
    x->keys = calloc(n, sizeof *x->keys);
    x->names = calloc(n, sizeof *x->names);
    assert_true(x->spans && x->span_ptrs && x->kvs && x->kv_ptrs && x->vals && x->keys &&
                x->names);
    for (size_t i = 0; i < n; i++) {
        lg_span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        lg_kv kvinit = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        lg_any_value vinit = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        memcpy(x->names[i], c[i].s, c[i].n); /* (strings hold no NUL) */
        x->keys[i][0] = 'p';
        x->keys[i][1] = '.';
        memcpy(x->keys[i] + 2, c[i].s, c[i].n);
        x->vals[i] = vinit;
        x->vals[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        x->vals[i].string_value = x->names[i];
        x->kvs[i] = kvinit;
        x->kvs[i].key = x->keys[i];
        x->kvs[i].value = &x->vals[i];
        x->kv_ptrs[i] = &x->kvs[i];
        x->spans[i] = init;
        x->spans[i].name = x->names[i];
        x->spans[i].kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
        x->spans[i].trace_id = (ProtobufCBinaryData){sizeof trace_id, trace_id};
        x->spans[i].span_id = (ProtobufCBinaryData){sizeof span_id, span_id};
        x->spans[i].start_time_unix_nano = 1736942400000000000ULL;
        x->spans[i].end_time_unix_nano = 1736942400500000000ULL;
        x->spans[i].n_attributes = 1;
        x->spans[i].attributes = &x->kv_ptrs[i];
        x->span_ptrs[i] = &x->spans[i];
    }
    lg_scope_spans ssinit = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    lg_resource_spans rsinit = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    lg_resource rinit = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    lg_traces_req qinit = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    x->ss = ssinit;
    x->ss.n_spans = n;
    x->ss.spans = x->span_ptrs;
    x->ss_ptr = &x->ss;
    x->res = rinit; /* no attributes: no _OTELRESOURCE_ envelope */
    x->rs = rsinit;
    x->rs.resource = &x->res;
    x->rs.n_scope_spans = 1;
    x->rs.scope_spans = &x->ss_ptr;
    x->rs_ptr = &x->rs;
    x->req = qinit;
    x->req.n_resource_spans = 1;
    x->req.resource_spans = &x->rs_ptr;
    x->b = lg_batch_create(LG_SIGNAL_TRACES, 4096);
    assert_non_null(x->b);
    x->b->req.traces = &x->req;
    x->b->items = n;
}

static void free_built(struct built *x)
{
    x->b->req.msg = NULL; /* the structs are ours, not the arena's */
    lg_batch_unref(x->b);
    free(x->spans);
    free(x->span_ptrs);
    free(x->kvs);
    free(x->kv_ptrs);
    free(x->vals);
    free(x->keys);
    free(x->names);
}

/* Is needle (len bytes) inside envelope i's text? */
static bool env_has(const struct lg_azmon_items *it, size_t i, const char *needle)
{
    return memmem(it->buf + it->v[i].off, it->v[i].len, needle, strlen(needle)) != NULL;
}

static void test_every_position(void **state)
{
    (void)state;
    struct strcase *c;
    size_t n = make_cases(&c);
    struct built x;
    build(&x, c, n);
    struct lg_azmon_map_opts o = {.ikey = "00000000-0000-0000-0000-000000000000",
                                  .sdk_version = "llmgate:test"};
    struct lg_azmon_items it = {0};
    assert_int_equal(lg_azmon_map_batch(x.b, &o, &it), LG_OK);
    assert_int_equal(it.n, n);
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
        char esc[MAXLEN * 6 + 1], want[MAXLEN * 12 + 64];
        ref_escape(c[i].s, c[i].n, esc);
        snprintf(want, sizeof want, "\"name\":\"%s\",\"resultCode\"", esc);
        bool ok = env_has(&it, i, want);
        snprintf(want, sizeof want, "\"properties\":{\"p.%s\":\"%s\"}", esc, esc);
        ok = ok && env_has(&it, i, want);
        if (!ok && failures++ < 5)
            fprintf(stderr, "case %zu (length %zu): expected %s in %.*s\n", i, c[i].n, want,
                    (int)it.v[i].len, it.buf + it.v[i].off);
    }
    assert_int_equal(failures, 0);
    lg_azmon_items_free(&it);
    free_built(&x);
    free(c);
}

/* Plain strings at and around the limits: a name is cut to 1024 units, a property key to
 * 150 bytes, a value to 8192 bytes (the fast path cuts them itself). */
static void test_plain_limits(void **state)
{
    (void)state;
    static const size_t lens[] = {149, 150, 151, 1023, 1024, 1025, 8191, 8192, 8193, 9000};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t len = lens[li];
        size_t wcap = 2 * len + 64;
        char *s = malloc(len + 1), *want = malloc(wcap);
        assert_true(s && want);
        for (size_t i = 0; i < len; i++)
            s[i] = (char)('a' + i % 26);
        s[len] = 0;
        lg_span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        lg_kv kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, *kvp = &kv;
        lg_any_value v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v.string_value = s;
        kv.key = s;
        kv.value = &v;
        sp.name = s;
        sp.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
        sp.trace_id = (ProtobufCBinaryData){sizeof trace_id, trace_id};
        sp.span_id = (ProtobufCBinaryData){sizeof span_id, span_id};
        sp.n_attributes = 1;
        sp.attributes = &kvp;
        lg_span *spp = &sp;
        lg_scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT, *ssp = &ss;
        ss.n_spans = 1;
        ss.spans = &spp;
        lg_resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT, *rsp = &rs;
        rs.n_scope_spans = 1;
        rs.scope_spans = &ssp;
        lg_traces_req req =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
        req.n_resource_spans = 1;
        req.resource_spans = &rsp;
        struct lg_batch *b = lg_batch_create(LG_SIGNAL_TRACES, 4096);
        assert_non_null(b);
        b->req.traces = &req;
        b->items = 1;
        struct lg_azmon_map_opts o = {.ikey = "k"};
        struct lg_azmon_items it = {0};
        assert_int_equal(lg_azmon_map_batch(b, &o, &it), LG_OK);
        assert_int_equal(it.n, 1);
        size_t nn = len < 1024 ? len : 1024, kn = len < 150 ? len : 150,
               vn = len < 8192 ? len : 8192;
        snprintf(want, wcap, "\"name\":\"%.*s\",", (int)nn, s);
        assert_true(env_has(&it, 0, want));
        snprintf(want, wcap, "{\"%.*s\":\"%.*s\"}", (int)kn, s, (int)vn, s);
        assert_true(env_has(&it, 0, want));
        b->req.msg = NULL;
        lg_batch_unref(b);
        lg_azmon_items_free(&it);
        free(s);
        free(want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_position),
        cmocka_unit_test(test_plain_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
