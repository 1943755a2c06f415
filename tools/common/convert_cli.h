/* The command line shared by apr convert (also installed as rosetta-convert), apr import and
 * apr export: flags, the output format from the path, the --chain loop, warnings, the summary
 * and its JSON. Every conversion is one rf_convert call (rosetta/convert.h); nothing here
 * touches a file's bytes. */
#ifndef APR_CONVERT_CLI_H
#define APR_CONVERT_CLI_H

#include "cli.h"

typedef enum convert_mode {
    CONVERT_ANY,    /* apr convert: any source, any output format */
    CONVERT_IMPORT, /* apr import: any source, APR output */
    CONVERT_EXPORT, /* apr export: an APR source, GGUF or SafeTensors output */
} convert_mode;

/* The whole tool: parses argv, runs the conversion(s), prints; returns the exit code. */
int convert_cli_main(const cli_tool *tool, convert_mode mode, int argc, char **argv);

#endif
