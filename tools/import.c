/* apr-import: a model into APR, the front end of rf_convert that aprender's users know
 * (tools/common/convert_cli.c). */
#include "convert_cli.h"

static const cli_tool TOOL = {
    "import", "import a SafeTensors, GGUF or APR model into APR",
    "usage: apr import SRC -o OUT.apr [options]\n\n"
    "Writes SRC (a .safetensors file with its companion JSON files, a Hugging Face directory, a\n"
    "sharded index, a GGUF or an APR file) as APR: `apr convert SRC -o OUT.apr` with the same\n"
    "checks, provenance and options. APR holds F32, F16, BF16, Q4_K, Q6_K, APR_Q4 and APR_Q8: a\n"
    "GGUF's Q5_0 / Q8_0 tensors are dequantized to F32 (one warning), or requantized with\n"
    "--requantize TYPE.\n\n"
    "Options:\n"
    "  -o, --output OUT.apr    the output file (always APR)\n"
    "      --quantize MIX      quantize with llama-quantize's type mix (q4_k_m, q6_k, ...);\n"
    "                          types APR cannot hold become F32 (or --requantize TYPE)\n"
    "      --requantize TYPE   tensors APR cannot hold become TYPE (q4_k, q6_k, apr_q8 ...)\n"
    "      --enforce-provenance  refuse GGUF sources (exit 5): for pipelines that must start\n"
    "                          from the Hugging Face ground truth\n"
    "      --verify            compare every written tensor with the source (exit 1 on a\n"
    "                          violation; nothing is written)\n"
    "      --skip-contract     write even when the contract rules fail or values are NaN/Inf\n"
    "      --contracts DIR     read the contracts from DIR\n"
    "      --arch A            the architecture for a model whose own is missing or unknown\n"
    "      --no-provenance     the bytes of aprender's writer: no provenance, no round-trip keys\n"
    "  -t, --threads N         quantizer threads (0 = one per CPU)\n"
    "      --json              print the summary as JSON\n"
    "      --force             allow OUT.apr to be one of SRC's files: it is replaced once the\n"
    "                          new file is complete\n"
    "  -q, --quiet             no progress, no warnings and no success line on stderr\n\n"
    "OUT.apr is checked before any work: not a device, FIFO, socket or (for a file) a directory,\n"
    "not one of SRC's files (unless --force), in a directory that exists and is writable\n"
    "(exit 2 or 4). On success the last line on stderr is 'wrote OUT.apr: N tensors, SIZE, T "
    "s'.\n"};

int main(int argc, char **argv) { return convert_cli_main(&TOOL, CONVERT_IMPORT, argc, argv); }
