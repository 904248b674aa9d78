/* tests/fuzz/fuzz_config.c — libFuzzer target: the YAML config loader and the whole
 * config-to-graph build (nothing is started, so no sockets are opened). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/runtime.h"

static const char *no_env(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "FUZZ") == 0 ? "1" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        lg_log_configure(LG_LOG_ERROR + 1, LG_LOG_TEXT);
        quiet = 1;
    }
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct lg_conf_source src = {.text = text, .name = "fuzz.yaml"};
    struct lg_conf_doc doc;
    struct lg_err err;
    if (lg_conf_load(&src, 1, no_env, NULL, &doc, &err) == LG_OK) {
        free(lg_conf_dump(doc.root));
        struct lg_runtime rt;
        lg_runtime_build(&rt, &doc, &err);
        lg_runtime_destroy(&rt);
    }
    free(text);
    return 0;
}
