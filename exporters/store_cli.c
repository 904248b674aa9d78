/* exporters/store_cli.c — `llmgate store list|show|export|keygen`: reads the interaction
 * store (store_format.h) with one or more keys and prints records as a table, as full text
 * with prompt and completion, or as JSON lines. Exit codes: interaction_store.h. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/rand.h>

#include "../core/b64.h"
#include "../core/conf.h"
#include "interaction_store.h"
#include "store_format.h"

#define MAX_KEYS 16

enum { EXIT_OK = 0, EXIT_IO = 1, EXIT_USAGE = 2, EXIT_KEY = 3, EXIT_CORRUPT = 4 };
enum mode { MODE_LIST, MODE_SHOW, MODE_EXPORT };

struct cli {
    enum mode mode;
    bool json, failed_only;
    const char *dir, *model, *trace_id;
    int64_t since_ns; /* 0: no limit */
    struct lg_store_key keys[MAX_KEYS];
    size_t nkeys;
    uint64_t printed, bad_json;
};

static void cli_usage(FILE *f)
{
    fputs("usage: llmgate store list|show|export --dir DIR (--key-file FILE | --key-env VAR)... "
          "[filters]\n"
          "       llmgate store keygen            print a new random key (base64 of 32 bytes)\n"
          "\n"
          "  list     one line per record: time, trace id, span id, model, tokens, cost, status, "
          "finish reason\n"
          "  show     full records with prompt and completion\n"
          "  export   full records as JSON lines\n"
          "\n"
          "options:\n"
          "  --dir DIR          the interaction_store directory\n"
          "  --key-file FILE    key file (repeat for rotated keys: each record is opened with the "
          "key of its key id)\n"
          "  --key-env VAR      key in an environment variable (repeatable)\n"
          "  --since T          records that started at or after T: RFC3339 (2026-01-02T15:04:05Z) "
          "or a duration ago (1h, 30m)\n"
          "  --model M          records whose model, request model or response model is M\n"
          "  --trace-id X       records of one trace (hex)\n"
          "  --failed-only      only records stored because the call failed\n"
          "  --json             list/show: JSON lines instead of text\n"
          "\n"
          "exit codes: 0 ok, 1 store unreadable, 2 usage, 3 key missing or some records have a key "
          "id no\n"
          "            given key matches, 4 corrupted or truncated records were skipped\n",
          f);
}

/* RFC3339: 2026-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm). */
static int parse_rfc3339(const char *s, int64_t *ns)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10)
        return -1;
    const char *p = s + 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &m) != 3 || m != 8)
            return -1;
        p += 9;
    } else if (*p != '\0') {
        return -1;
    }
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 9)
                frac = frac * 10 + (*p - '0');
        for (; digits < 9; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &m) != 2 || m != 5)
            return -1;
        off = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p != '\0')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    int64_t sec = (int64_t)t - off;
    /* Nanoseconds since 1970 end in 2262: later times clamp (nothing is that new). */
    if (sec >= INT64_MAX / 1000000000LL)
        *ns = INT64_MAX;
    else if (sec < 0)
        *ns = 1; /* before 1970: everything is newer (0 would mean "no limit") */
    else
        *ns = sec * 1000000000LL + frac;
    return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jtime(const cJSON *o, const char *k)
{
    const char *s = jstr(o, k);
    return s ? strtoll(s, NULL, 10) : 0;
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", base, (int)((ns % 1000000000) / 1000000));
}

static bool matches(const struct cli *cl, const cJSON *rec)
{
    if (cl->failed_only) {
        const char *sel = jstr(rec, "selected");
        if (sel == NULL || strcmp(sel, "failed") != 0)
            return false;
    }
    if (cl->since_ns && jtime(rec, "start_time_unix_nano") < cl->since_ns)
        return false;
    if (cl->trace_id) {
        const char *t = jstr(rec, "trace_id");
        if (t == NULL || strcasecmp(t, cl->trace_id) != 0)
            return false;
    }
    if (cl->model) {
        const char *names[] = {"model", "request_model", "response_model"};
        bool any = false;
        for (size_t i = 0; i < LG_ARRAY_LEN(names) && !any; i++) {
            const char *m = jstr(rec, names[i]);
            any = m && strcmp(m, cl->model) == 0;
        }
        if (!any)
            return false;
    }
    return true;
}

static void print_value(const cJSON *v, int indent)
{
    if (cJSON_IsString(v)) {
        /* Multi-line text keeps its lines, each indented under the key. */
        for (const char *p = v->valuestring; *p; p++) {
            putchar(*p);
            if (*p == '\n' && p[1])
                printf("%*s", indent, "");
        }
        putchar('\n');
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    printf("%s\n", s ? s : "?");
    free(s);
}

static void print_kvs(const char *title, const cJSON *arr, int indent)
{
    if (cJSON_GetArraySize(arr) == 0)
        return;
    if (title)
        printf("%*s%s:\n", indent - 2, "", title);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, arr)
    {
        const char *k = jstr(kv, "key");
        printf("%*s%s: ", indent, "", k ? k : "?");
        print_value(cJSON_GetObjectItemCaseSensitive(kv, "value"), indent + 4);
    }
}

static void show_text(const cJSON *rec, const char *segment, uint64_t offset)
{
    char when[48];
    fmt_time(jtime(rec, "start_time_unix_nano"), when, sizeof when);
    int64_t dur = jtime(rec, "end_time_unix_nano") - jtime(rec, "start_time_unix_nano");
    printf("=== %s  trace %s  span %s  (%s @%" PRIu64 ")\n", when,
           jstr(rec, "trace_id") ? jstr(rec, "trace_id") : "",
           jstr(rec, "span_id") ? jstr(rec, "span_id") : "", segment, offset);
    const char *fields[] = {"name",       "service",       "convention",    "provider",
                            "operation",  "model",         "request_model", "response_model",
                            "error_type", "finish_reason", "selected"};
    for (size_t i = 0; i < LG_ARRAY_LEN(fields); i++)
        if (jstr(rec, fields[i]))
            printf("%-15s %s\n", fields[i], jstr(rec, fields[i]));
    printf("%-15s %.3f s\n", "duration", (double)dur / 1e9);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(rec, "status");
    printf("%-15s %s%s%s\n", "status", jstr(status, "code") ? jstr(status, "code") : "UNSET",
           jstr(status, "message") ? ": " : "",
           jstr(status, "message") ? jstr(status, "message") : "");
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(rec, "tokens"), *t;
    if (cJSON_GetArraySize(tok) > 0) {
        printf("%-15s", "tokens");
        cJSON_ArrayForEach(t, tok) printf(" %s=%.0f", t->string, t->valuedouble);
        putchar('\n');
    }
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(rec, "cost_usd");
    if (cJSON_IsNumber(cost))
        printf("%-15s $%.6f\n", "cost", cost->valuedouble);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(rec, "content");
    print_kvs("prompt", cJSON_GetObjectItemCaseSensitive(content, "prompt"), 2);
    print_kvs("completion", cJSON_GetObjectItemCaseSensitive(content, "completion"), 2);
    print_kvs("tool", cJSON_GetObjectItemCaseSensitive(content, "tool"), 2);
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(content, "events"), *ev;
    if (cJSON_GetArraySize(events) > 0)
        printf("events:\n");
    cJSON_ArrayForEach(ev, events)
    {
        fmt_time(jtime(ev, "time_unix_nano"), when, sizeof when);
        printf("  %s (%s) %s\n", jstr(ev, "name") ? jstr(ev, "name") : "",
               jstr(ev, "kind") ? jstr(ev, "kind") : "", when);
        print_kvs(NULL, cJSON_GetObjectItemCaseSensitive(ev, "attributes"), 4);
    }
    putchar('\n');
}

static void list_line(const struct cli *cl, const cJSON *rec)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(rec, "tokens");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(tok, "input"),
                *out = cJSON_GetObjectItemCaseSensitive(tok, "output");
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(rec, "cost_usd");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(rec, "status");
    char when[48];
    fmt_time(jtime(rec, "start_time_unix_nano"), when, sizeof when);
    if (cl->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "time", when);
        const char *keys[] = {"trace_id",      "span_id",    "model",   "provider",
                              "finish_reason", "error_type", "selected"};
        for (size_t i = 0; i < LG_ARRAY_LEN(keys); i++)
            if (jstr(rec, keys[i]))
                cJSON_AddStringToObject(o, keys[i], jstr(rec, keys[i]));
        if (tok)
            cJSON_AddItemToObject(o, "tokens", cJSON_Duplicate(tok, true));
        if (cJSON_IsNumber(cost))
            cJSON_AddNumberToObject(o, "cost_usd", cost->valuedouble);
        if (jstr(status, "code"))
            cJSON_AddStringToObject(o, "status", jstr(status, "code"));
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
        return;
    }
    char tokens[48] = "-", costs[32] = "-";
    if (cJSON_IsNumber(in) || cJSON_IsNumber(out))
        snprintf(tokens, sizeof tokens, "%.0f/%.0f", cJSON_IsNumber(in) ? in->valuedouble : 0,
                 cJSON_IsNumber(out) ? out->valuedouble : 0);
    if (cJSON_IsNumber(cost))
        snprintf(costs, sizeof costs, "%.6f", cost->valuedouble);
    const char *model = jstr(rec, "model");
    const char *finish =
        jstr(rec, "finish_reason") ? jstr(rec, "finish_reason") : jstr(rec, "error_type");
    printf("%-24s  %-32s  %-16s  %-24s  %-13s  %-10s  %-6s  %s\n", when,
           jstr(rec, "trace_id") ? jstr(rec, "trace_id") : "-",
           jstr(rec, "span_id") ? jstr(rec, "span_id") : "-", model ? model : "-", tokens, costs,
           jstr(status, "code") ? jstr(status, "code") : "-", finish ? finish : "-");
}

/* Text output goes to an operator's terminal, and every string in a record came from a
 * client: control characters (ESC starts terminal escape sequences) and the C1 range
 * (U+0080..U+009F, which some terminals also act on) are replaced by '?'. Newlines and tabs
 * stay, for multi-line prompts. JSON output needs none of this: cJSON escapes them. */
static void defang_strings(cJSON *v)
{
    for (; v != NULL; v = v->next) {
        if (cJSON_IsString(v) && v->valuestring) {
            unsigned char *p = (unsigned char *)v->valuestring;
            for (; *p; p++) {
                if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
                    *p = '?';
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                    p[0] = p[1] = '?';
            }
        }
        if (v->string) /* object keys, too */
            for (unsigned char *k = (unsigned char *)v->string; *k; k++)
                if (*k < 0x20 || *k == 0x7f)
                    *k = '?';
        defang_strings(v->child);
    }
}

static int on_record(void *ctx, const char *segment, uint64_t offset, const uint8_t *plain,
                     size_t len)
{
    struct cli *cl = ctx;
    cJSON *rec = cJSON_ParseWithLength((const char *)plain, len);
    if (rec == NULL) {
        cl->bad_json++; /* authentic (the tag verified) but not a record we understand */
        return 0;
    }
    if (matches(cl, rec)) {
        cl->printed++;
        if (!cl->json && cl->mode != MODE_EXPORT)
            defang_strings(rec);
        if (cl->mode == MODE_LIST) {
            list_line(cl, rec);
        } else if (cl->mode == MODE_SHOW && !cl->json) {
            show_text(rec, segment, offset);
        } else {
            char *s = cJSON_PrintUnformatted(rec);
            printf("%s\n", s ? s : "{}");
            free(s);
        }
    }
    cJSON_Delete(rec);
    return 0;
}

static int keygen(void)
{
    uint8_t k[LG_STORE_KEY_LEN];
    if (RAND_bytes(k, sizeof k) != 1) {
        fprintf(stderr, "llmgate store: no random bytes available\n");
        return EXIT_IO;
    }
    char *s = lg_base64_encode(k, sizeof k, false);
    memset(k, 0, sizeof k);
    if (s == NULL)
        return EXIT_IO;
    printf("%s\n", s);
    free(s);
    return EXIT_OK;
}

int lg_store_cli_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (strcmp(argv[1], "keygen") == 0)
        return argc == 2 ? keygen() : (cli_usage(stderr), EXIT_USAGE);
    static struct cli cl; /* keys: kept off the stack frame of callers, wiped below */
    memset(&cl, 0, sizeof cl);
    if (strcmp(argv[1], "list") == 0)
        cl.mode = MODE_LIST;
    else if (strcmp(argv[1], "show") == 0)
        cl.mode = MODE_SHOW;
    else if (strcmp(argv[1], "export") == 0)
        cl.mode = MODE_EXPORT;
    else {
        fprintf(stderr, "llmgate store: unknown subcommand \"%s\"\n\n", argv[1]);
        cli_usage(stderr);
        return EXIT_USAGE;
    }
    int code = EXIT_OK;
    struct lg_err err;
    for (int i = 2; i < argc && code == EXIT_OK; i++) {
        const char *a = argv[i], *val = NULL;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
#define IS(name) (strlen(name) == nlen && strncmp(a, name, nlen) == 0)
        bool takes = IS("--dir") || IS("--key-file") || IS("--key-env") || IS("--since") ||
                     IS("--model") || IS("--trace-id");
        if (takes) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                fprintf(stderr, "llmgate store: %s needs a value\n", a);
                code = EXIT_USAGE;
                break;
            }
        }
        if (IS("--dir")) {
            cl.dir = val;
        } else if (IS("--key-file") || IS("--key-env")) {
            if (cl.nkeys == MAX_KEYS) {
                fprintf(stderr, "llmgate store: at most %d keys\n", MAX_KEYS);
                code = EXIT_USAGE;
                break;
            }
            bool loose = false;
            int rc = IS("--key-file")
                         ? lg_store_key_load_file(val, &cl.keys[cl.nkeys], &loose, &err)
                         : lg_store_key_load_env(val, &cl.keys[cl.nkeys], &err);
            if (rc != LG_OK) {
                fprintf(stderr, "llmgate store: %s\n", err.msg);
                code = EXIT_KEY;
                break;
            }
            if (loose)
                fprintf(stderr,
                        "llmgate store: warning: key file \"%s\" can be read by group or others\n",
                        val);
            cl.nkeys++;
        } else if (IS("--since")) {
            int64_t d = 0;
            if (lg_parse_duration_str(val, &d) == LG_OK && d >= 0)
                cl.since_ns = lg_now_wall_ns() - d;
            else if (parse_rfc3339(val, &cl.since_ns) != 0) {
                fprintf(stderr,
                        "llmgate store: --since \"%s\": expected RFC3339 (2026-01-02T15:04:05Z) or "
                        "a duration (1h)\n",
                        val);
                code = EXIT_USAGE;
            }
        } else if (IS("--model")) {
            cl.model = val;
        } else if (IS("--trace-id")) {
            cl.trace_id = val;
        } else if (IS("--failed-only") && !eq) {
            cl.failed_only = true;
        } else if (IS("--json") && !eq) {
            cl.json = true;
        } else {
            fprintf(stderr, "llmgate store: unknown option \"%s\"\n\n", a);
            cli_usage(stderr);
            code = EXIT_USAGE;
        }
#undef IS
    }
    if (code == EXIT_OK && (cl.dir == NULL || *cl.dir == '\0')) {
        fprintf(stderr, "llmgate store: --dir is required\n");
        code = EXIT_USAGE;
    }
    if (code == EXIT_OK && cl.nkeys == 0) {
        fprintf(stderr, "llmgate store: a key is required (--key-file FILE or --key-env VAR)\n");
        code = EXIT_USAGE;
    }
    if (code != EXIT_OK)
        goto out;
    if (cl.mode == MODE_LIST && !cl.json)
        printf("%-24s  %-32s  %-16s  %-24s  %-13s  %-10s  %-6s  %s\n", "TIME", "TRACE ID",
               "SPAN ID", "MODEL", "TOKENS IN/OUT", "COST USD", "STATUS", "FINISH/ERROR");
    struct lg_store_read_stats st = {0};
    int rc = lg_store_read_dir(cl.dir, cl.keys, cl.nkeys, on_record, &cl, &st, &err);
    fflush(stdout);
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate store: %s\n", err.msg);
        code = EXIT_IO;
        goto out;
    }
    if (st.unknown_key) {
        fprintf(stderr, "llmgate store: no key can decrypt records with key id ");
        for (size_t i = 0; i < st.n_unknown_ids; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", st.unknown_ids[i]);
        fprintf(stderr, " (%" PRIu64 " record(s)); keys given:", st.unknown_key);
        for (size_t i = 0; i < cl.nkeys; i++)
            fprintf(stderr, "%s %s (key id %s)", i ? "," : "", cl.keys[i].source,
                    cl.keys[i].id_hex);
        fprintf(stderr, "\n");
        code = EXIT_KEY;
    }
    if (st.being_written)
        fprintf(stderr,
                "llmgate store: the newest segment was being appended to; its last record is "
                "left for the next read\n");
    if (st.corrupt || st.truncated || cl.bad_json) {
        fprintf(stderr,
                "llmgate store: skipped %" PRIu64 " corrupted record(s) and %" PRIu64
                " truncated record(s)%s\n",
                st.corrupt + cl.bad_json, st.truncated,
                st.truncated ? " (a segment's tail was cut short: a crash while writing)" : "");
        if (code == EXIT_OK)
            code = EXIT_CORRUPT;
    }
    if (cl.mode == MODE_LIST && !cl.json)
        fprintf(stderr,
                "%" PRIu64 " record(s) shown of %" PRIu64 " read in %" PRIu64 " segment(s)\n",
                cl.printed, st.records, st.segments);
out:
    for (size_t i = 0; i < cl.nkeys; i++)
        lg_store_key_wipe(&cl.keys[i]);
    return code;
}
