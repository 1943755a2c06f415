/* write_formats: a helper for the end-to-end tests and scripts/gen-tool-docs (built into
 * build/tests/, never installed). It reads any model with rf_model_open and writes it through the
 * library writers, so the tools can be shown and tested on GGUF and APR copies of the SafeTensors
 * fixtures before the converters exist. Not a converter: no options, no name policy of its own.
 *
 *   write_formats SRC [--gguf OUT.gguf] [--apr OUT.apr]
 *
 * Exit codes as the tools: 0 ok, 2 usage, 3 SRC unreadable, 4 a write failed. */
#include <stdio.h>
#include <string.h>

#include "rosetta/apr.h"
#include "rosetta/gguf.h"
#include "rosetta/model.h"

int main(int argc, char **argv)
{
    const char *src = NULL, *gguf = NULL, *apr = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--gguf") == 0 && i + 1 < argc)
            gguf = argv[++i];
        else if (strcmp(argv[i], "--apr") == 0 && i + 1 < argc)
            apr = argv[++i];
        else if (argv[i][0] != '-' && !src)
            src = argv[i];
        else {
            fprintf(stderr, "usage: write_formats SRC [--gguf OUT.gguf] [--apr OUT.apr]\n");
            return 2;
        }
    }
    if (!src || (!gguf && !apr)) {
        fprintf(stderr, "usage: write_formats SRC [--gguf OUT.gguf] [--apr OUT.apr]\n");
        return 2;
    }
    rf_error err = {0};
    rf_model *model = rf_model_open(src, NULL, &err);
    if (!model) {
        fprintf(stderr, "write_formats: %s\n", err.message);
        return 3;
    }
    int code = 0;
    if (gguf && rf_gguf_write(model, gguf, NULL, &err) != RF_OK) {
        fprintf(stderr, "write_formats: %s\n", err.message);
        code = 4;
    }
    if (apr && rf_apr_write(model, apr, NULL, &err) != RF_OK) {
        fprintf(stderr, "write_formats: %s\n", err.message);
        code = 4;
    }
    rf_model_free(model);
    return code;
}
