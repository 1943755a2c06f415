/* apr-export: an APR model out to GGUF or the Hugging Face layout, the front end of rf_convert
 * that aprender's users know (tools/common/convert_cli.c). */
#include "convert_cli.h"

static const cli_tool TOOL = {
    "export", "export an APR model to GGUF or SafeTensors",
    "usage: apr export IN.apr -o OUT.gguf|OUT.safetensors|DIR [options]\n\n"
    "Writes the APR file IN.apr as GGUF (llama.cpp's layout and metadata: the tied head left\n"
    "out, norms and biases widened to F32 as convert_hf_to_gguf.py writes them) or as\n"
    "SafeTensors (a directory: model.safetensors, config.json, tokenizer.json,\n"
    "tokenizer_config.json, generation_config.json). The format comes from the output name\n"
    "unless --format says; the same checks, provenance and options as apr convert.\n\n"
    "Options:\n"
    "  -o, --output DST        the output file or directory\n"
    "      --format FORMAT     gguf, safetensors (one file) or hf (a directory)\n"
    "      --quantize MIX      quantize with llama-quantize's type mix (q4_k_m, q8_0, ...);\n"
    "                          Q4_K / Q6_K tensors the mix gives the same type are copied\n"
    "      --verify            compare every written tensor with the source (exit 1 on a\n"
    "                          violation; nothing is written)\n"
    "      --skip-contract     write even when the contract rules fail or values are NaN/Inf\n"
    "      --contracts DIR     read the contracts from DIR\n"
    "      --arch A            the architecture for a model whose own is missing or unknown\n"
    "      --no-provenance     the bytes of the format's reference writer\n"
    "  -t, --threads N         quantizer threads (0 = one per CPU)\n"
    "      --json              print the summary as JSON\n"
    "      --force             allow DST to be IN.apr itself: it is replaced once the new\n"
    "                          file is complete\n"
    "  -q, --quiet             no progress, no warnings and no success line on stderr\n\n"
    "DST is checked before any work: not a device, FIFO, socket or (for a file) a directory,\n"
    "not IN.apr itself (unless --force), in a directory that exists and is writable\n"
    "(exit 2 or 4). On success the last line on stderr is 'wrote DST: N tensors, SIZE, T s'.\n"};

int main(int argc, char **argv) { return convert_cli_main(&TOOL, CONVERT_EXPORT, argc, argv); }
