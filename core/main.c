/* core/main.c — the llmgate command line: run, validate, components, print-config.
 * The only place that calls exit() or handles signals. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "runtime.h"
#include "../exporters/interaction_store.h"

extern const char lg_default_config[];

/* How long a graceful stop may take by default: under Kubernetes' default 30 s grace. */
#define DEFAULT_SHUTDOWN_TIMEOUT "20s"
#define MAX_CONFIGS 32
/* See the mallopt() call in main. */
#define MALLOC_MMAP_THRESHOLD_BYTES (8 * 1024 * 1024)
#define MALLOC_TRIM_THRESHOLD_BYTES (64 * 1024 * 1024)

static void usage(FILE *f)
{
    fputs("usage: llmgate [command] [--config FILE]... [options]\n"
          "\n"
          "commands:\n"
          "  (none)         run the gateway (with no --config: the embedded default config)\n"
          "  validate       check the configuration and exit (0 = valid)\n"
          "  print-config   print the merged configuration as YAML\n"
          "  components     list the available component types (--verbose: with their settings)\n"
          "  version        print the version\n"
          "  store          read the interaction store (llmgate store --help)\n"
          "\n"
          "options:\n"
          "  --config FILE          YAML config; repeat to merge (later wins). Also file:PATH,\n"
          "                         env:VAR (YAML in an environment variable), yaml:TEXT\n"
          "  --log-format text|json log line format (default text)\n"
          "  --log-level LEVEL      debug | info | warn | error\n"
          "  --shutdown-timeout D   how long a graceful stop may take (default " DEFAULT_SHUTDOWN_TIMEOUT ")\n",
          f);
}

static const char *const kind_titles[] = {"receivers", "processors", "exporters", "connectors", "extensions"};

static const char *const type_names[] = {
    [LG_CT_STRING] = "string", [LG_CT_BOOL] = "bool", [LG_CT_INT] = "int", [LG_CT_DOUBLE] = "number",
    [LG_CT_DURATION] = "duration", [LG_CT_STRLIST] = "list", [LG_CT_SECTION] = "section",
    [LG_CT_CUSTOM] = "value", [LG_CT_ACCEPTED] = "accepted",
};

/* Prints a field table as an indented YAML-ish listing (docs come from the same tables
 * that parse the config, so they cannot drift). */
static void print_fields(const struct lg_conf_field *f, int indent)
{
    for (; f && f->key; f++) {
        printf("%*s%s: # %s", indent, "", f->key, type_names[f->type]);
        if (f->def)
            printf(", default %s", f->def);
        printf(" — %s\n", f->help ? f->help : "");
        if (f->type == LG_CT_SECTION)
            print_fields(f->sub, indent + 2);
    }
}

static int print_components(bool verbose)
{
    for (int k = LG_RECEIVER; k <= LG_EXTENSION; k++) {
        printf("%s:\n", kind_titles[k]);
        for (const struct lg_component_type *const *t = lg_registry_all(); *t; t++) {
            if ((int)(*t)->kind != k)
                continue;
            printf("  - name: %s\n", (*t)->type);
            if ((*t)->aliases && (*t)->aliases[0]) {
                printf("    aliases: [");
                for (const char *const *a = (*t)->aliases; *a; a++)
                    printf("%s%s", a == (*t)->aliases ? "" : ", ", *a);
                printf("]\n");
            }
            if ((*t)->kind != LG_EXTENSION) {
                static const char *const sn[] = {"traces", "metrics", "logs"};
                printf("    signals: [");
                bool first = true;
                for (int s = 0; s < LG_SIGNAL_COUNT; s++)
                    if ((*t)->signals & LG_SIG_BIT(s)) {
                        printf("%s%s", first ? "" : ", ", sn[s]);
                        first = false;
                    }
                printf("]\n");
            }
            printf("    description: %s\n", (*t)->description ? (*t)->description : "");
            if (verbose && (*t)->fields && (*t)->fields->key) {
                printf("    config:\n");
                print_fields((*t)->fields, 6);
            }
        }
    }
    return 0;
}

/* Turns a --config argument into a source (file path, env:VAR, yaml:TEXT, file:PATH). */
static int config_source(const char *arg, struct lg_conf_source *src)
{
    memset(src, 0, sizeof *src);
    if (strncmp(arg, "env:", 4) == 0) {
        const char *v = getenv(arg + 4);
        if (v == NULL) {
            fprintf(stderr, "llmgate: --config %s: environment variable \"%s\" is not set\n", arg, arg + 4);
            return -1;
        }
        src->text = v;
        src->name = arg;
    } else if (strncmp(arg, "yaml:", 5) == 0) {
        src->text = arg + 5;
        src->name = "<--config yaml:>";
    } else if (strncmp(arg, "file:", 5) == 0) {
        src->path = arg + 5;
    } else {
        src->path = arg;
    }
    return 0;
}

/* `validate` and `print-config` talk to a person; a running gateway logs in its log format
 * (a JSON-lines log stays parseable even when the config is refused). */
static void report_config_error(const char *command, enum lg_log_format fmt, const char *msg)
{
    if (strcmp(command, "run") == 0 && fmt == LG_LOG_JSON)
        lg_error(NULL, "invalid configuration: %s", msg);
    else
        fprintf(stderr, "llmgate: invalid configuration: %s\n", msg);
}

int main(int argc, char **argv)
{
    const char *command = "run";
    struct lg_conf_source sources[MAX_CONFIGS];
    size_t nsources = 0;
    bool verbose = false;
    const char *log_format = NULL, *log_level = NULL, *shutdown_timeout = DEFAULT_SHUTDOWN_TIMEOUT;

    if (argc > 1 && strcmp(argv[1], "store") == 0)
        return lg_store_cli_main(argc - 1, argv + 1);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t nlen = eq && a[0] == '-' ? (size_t)(eq - a) : strlen(a);
#define OPT(name) (strlen(name) == nlen && strncmp(a, name, nlen) == 0)
        if (a[0] == '-' && (OPT("--config") || OPT("-c") || OPT("--log-format") || OPT("--log-level") || OPT("--shutdown-timeout"))) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                fprintf(stderr, "llmgate: %s needs a value\n", a);
                return 2;
            }
            if (OPT("--config") || OPT("-c")) {
                if (nsources == MAX_CONFIGS) {
                    fprintf(stderr, "llmgate: at most %d --config options\n", MAX_CONFIGS);
                    return 2;
                }
                if (config_source(val, &sources[nsources]) != 0)
                    return 1;
                nsources++;
            } else if (OPT("--log-format")) {
                log_format = val;
            } else if (OPT("--log-level")) {
                log_level = val;
            } else {
                shutdown_timeout = val;
            }
        } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            verbose = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
            printf("llmgate %s\n", LLMGATE_VERSION);
            return 0;
        } else if (a[0] != '-' && strcmp(command, "run") == 0 &&
                   (strcmp(a, "validate") == 0 || strcmp(a, "components") == 0 || strcmp(a, "print-config") == 0)) {
            command = a;
        } else {
            fprintf(stderr, "llmgate: unknown argument \"%s\"\n\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }

    enum lg_log_format fmt = LG_LOG_TEXT;
    if (log_format) {
        if (strcmp(log_format, "json") == 0)
            fmt = LG_LOG_JSON;
        else if (strcmp(log_format, "text") != 0 && strcmp(log_format, "console") != 0) {
            fprintf(stderr, "llmgate: --log-format must be text or json, got \"%s\"\n", log_format);
            return 2;
        }
    }
    int lvl = LG_LOG_INFO;
    if (log_level && (lvl = lg_log_level_parse(log_level)) < 0) {
        fprintf(stderr, "llmgate: --log-level must be debug, info, warn or error, got \"%s\"\n", log_level);
        return 2;
    }
    lg_log_configure((enum lg_log_level)lvl, fmt);
    int64_t shutdown_ns;
    if (lg_parse_duration_str(shutdown_timeout, &shutdown_ns) != 0 || shutdown_ns <= 0) {
        fprintf(stderr, "llmgate: --shutdown-timeout must be a duration such as 20s, got \"%s\"\n", shutdown_timeout);
        return 2;
    }

    if (strcmp(command, "components") == 0)
        return print_components(verbose);

    if (nsources == 0) {
        if (strcmp(command, "run") != 0) {
            fprintf(stderr, "llmgate %s: needs --config FILE\n", command);
            return 2;
        }
        sources[0] = (struct lg_conf_source){.text = lg_default_config, .name = "<embedded default config>"};
        nsources = 1;
    }

    struct lg_err err = {{0}};
    struct lg_conf_doc doc;
    if (lg_conf_load(sources, nsources, NULL, NULL, &doc, &err) != LG_OK) {
        report_config_error(command, fmt, err.msg);
        return 1;
    }
    if (strcmp(command, "print-config") == 0) {
        char *text = lg_conf_dump(doc.root);
        if (text)
            fputs(text, stdout);
        free(text);
        lg_conf_doc_free(&doc);
        return text ? 0 : 1;
    }

    /* Each request's arena is ~3x its wire size (hundreds of KiB). glibc would serve such
     * blocks with mmap and hand them back on free, so every request paid for fresh zeroed
     * pages (half the CPU of OTLP/HTTP in bench/); keep them in the heap instead. */
    mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES);
    mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES);

    /* Signals are handled by sigwait() here; every thread created from now on has them blocked. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct lg_runtime rt;
    if (lg_runtime_build(&rt, &doc, &err) != LG_OK) {
        report_config_error(command, fmt, err.msg);
        lg_runtime_destroy(&rt);
        return 1;
    }
    if (rt.log_configured && !log_format)
        fmt = rt.log_json ? LG_LOG_JSON : LG_LOG_TEXT;
    if (rt.log_configured && !log_level)
        lvl = rt.log_level;
    lg_log_configure((enum lg_log_level)lvl, fmt);
    if (strcmp(command, "validate") == 0) {
        printf("configuration is valid: %zu pipelines, %zu component instances\n", rt.npipelines, rt.ncomponents);
        lg_runtime_destroy(&rt);
        return 0;
    }

    if (lg_runtime_start(&rt, &err) != LG_OK) {
        lg_error(NULL, "cannot start: %s", err.msg);
        lg_runtime_destroy(&rt);
        return 1;
    }
    lg_info(NULL, "llmgate %s started: %zu pipelines", LLMGATE_VERSION, rt.npipelines);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            lg_info(NULL, "SIGHUP: configuration reload is not supported yet; restart to apply changes");
            continue;
        }
        lg_info(NULL, "%s received: shutting down (deadline %s)", sig == SIGTERM ? "SIGTERM" : "SIGINT", shutdown_timeout);
        break;
    }
    lg_runtime_shutdown(&rt, lg_now_mono_ns() + shutdown_ns);
    lg_runtime_destroy(&rt);
    lg_info(NULL, "stopped");
    return 0;
}
