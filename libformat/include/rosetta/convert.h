/* The conversion pipeline: one call takes an open model to a file of any format, keeping every
 * tensor's type or quantizing with llama-quantize's type mixes, in the spirit of llama.cpp's
 * llama_model_quantize(in, out, &params). It plans the tensor types (quant_plan.h), converts
 * the data (quant.h) into a spill file next to the output (memory bounded by the largest
 * tensor), assembles the output model (names, tied head, metadata) and writes it through the
 * format's writer (atomic: temp file, verify, rename). `apr quantize`, the converters and
 * bench/ all call rf_convert.
 * Not for: opening the source (model.h), or printing: the report says what was done. */
#ifndef ROSETTA_CONVERT_H
#define ROSETTA_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rosetta/api.h"
#include "rosetta/detect.h"
#include "rosetta/model.h"
#include "rosetta/quant_plan.h"
#include "rosetta/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rf_convert_report rf_convert_report;

/* Called once the plan is made and checked, before any tensor is converted or anything is
 * written (a tool prints the plan here; a contract check can stop the conversion by returning
 * an error, which rf_convert then returns unchanged). */
typedef rf_status (*rf_convert_plan_fn)(const rf_convert_report *report, void *ctx, rf_error *err);

/* Called before report->tensors[index] is converted (only for tensors whose data changes), and
 * once more with index == report->n_tensors when the conversion is done. */
typedef void (*rf_convert_progress_fn)(const rf_convert_report *report, size_t index, void *ctx);

/* Called for each finished data file before it is renamed into place, after the writer's own
 * read-back check (temp_path is complete and synced; final_path is where it will appear).
 * An error stops the write: nothing is left at the destination. */
typedef rf_status (*rf_convert_verify_fn)(const char *temp_path, const char *final_path, void *ctx,
                                          rf_error *err);

typedef struct rf_convert_params {
    /* Output format: RF_FORMAT_GGUF, RF_FORMAT_APR or RF_FORMAT_SAFETENSORS (a single
     * ".safetensors" file, or a checkpoint directory with the companion files for any other
     * path); RF_FORMAT_UNKNOWN takes it from out_path (rf_convert_format_for_path). */
    rf_format format;
    /* false: every tensor keeps its dtype (a change of format only; the GGUF writer still
     * widens F16/BF16 vectors of SafeTensors/APR sources to F32 as llama.cpp's converter does).
     * true: tensor types come from plan (the mix, --pure, overrides ...). */
    bool quantize;
    /* The type plan when quantize is true. rf_convert sets plan.has_imatrix and
     * plan.widen_kept_to_f32 (GGUF output of a SafeTensors/APR source) itself. */
    rf_quant_plan_options plan;
    /* Importance matrix file (llama-imatrix GGUF or legacy .dat), or NULL. Its path is
     * recorded in GGUF output as quantize.imatrix.file, as llama-quantize does. */
    const char *imatrix_path;
    /* Whether a quantized source tensor may be converted to another type (it is dequantized
     * to F32 first, so its error adds up). Default true; false refuses such a plan with
     * RF_ERR_ARGUMENT, as llama-quantize does without --allow-requantize. Either way
     * report->tensors[i].requantize marks those tensors. */
    bool allow_requantize;
    /* Worker threads of the quantizers (0 = one per CPU). The bytes never depend on it. */
    int n_threads;
    /* Plan and check only: nothing is converted or written; out_path may be NULL. */
    bool dry_run;
    /* Extra metadata written with the output (e.g. provenance): GGUF appends the pairs after
     * every other key; APR stores them as custom keys (rf_apr_write_options.extra); SafeTensors
     * takes a string "rosetta.provenance" only (into __metadata__). */
    const rf_kv *extra_metadata;
    size_t n_extra_metadata;
    /* Hooks (each may be NULL), with their context pointer. */
    rf_convert_plan_fn on_plan;
    rf_convert_progress_fn on_progress;
    rf_convert_verify_fn verify;
    void *ctx;
    /* Whether out_path may be one of src's own files (a tool's --force). Default false: such a
     * path is refused before any work (rf_output_check). When true the input is replaced only
     * by the complete, verified output (the atomic rename), and its mapping stays valid. */
    bool replace_input;
} rf_convert_params;

/* Defaults: format from the path, keep dtypes, plan defaults of Q8_0 (used only with
 * quantize), requantizing allowed, one thread per CPU, no hooks. Start from this and set fields, so
 * that fields added later keep their defaults. */
RF_API rf_convert_params rf_convert_params_default(void);

/* The format an output path asks for by its extension (.gguf, .apr, .safetensors, any case);
 * RF_FORMAT_UNKNOWN otherwise (the caller decides, e.g. a directory for SafeTensors). */
RF_API rf_format rf_convert_format_for_path(const char *path);

/* What happened to one planned tensor. */
typedef struct rf_convert_tensor {
    size_t source_index;     /* index in the source model (rf_model_tensor) */
    const char *source_name; /* its name in the source */
    const char *output_name; /* the name written (NULL in a dry run) */
    const char *head_copy;   /* name of a tied head written as a copy of this tensor, or NULL */
    int ndim;
    uint64_t shape[RF_MAX_DIMS];
    const rf_quant_plan_entry *entry; /* the type decision: dtypes, sizes, reason */
    bool requantize;                  /* a quantized source converted to another type */
} rf_convert_tensor;

struct rf_convert_report {
    rf_format format;                 /* the output format */
    const char *out_path;             /* as given (NULL in a dry run without one) */
    const rf_quant_plan *plan;        /* per-tensor types; entries in write order */
    size_t n_tensors;                 /* = plan->n_entries */
    const rf_convert_tensor *tensors; /* one per plan entry, same order */
    size_t n_requantized;             /* tensors with requantize set */
    size_t n_head_copies;             /* tied head copies written (APR keeps lm_head) */
    bool written;                     /* the output is in place */
};

/* Converts src to out_path as p says (p NULL: the defaults). Before anything else the output path
 * is checked (rf_output_check: not a device, FIFO, socket or a directory where a file goes, not
 * one of src's files unless p->replace_input, a writable directory; RF_ERR_ARGUMENT or
 * RF_ERR_WRITE naming out_path), and GGUF output needs an architecture (RF_ERR_CONTRACT, rule
 * gguf.architecture). Then: plan the types,
 * check that the output format holds them, that Rosetta can dequantize every source type and
 * produce every target type, and that the importance matrix fits; call p->on_plan; convert the
 * changed tensors one at a time into an unlinked spill file next to out_path; assemble the
 * output (GGUF: GGUF names, the tied head left out, the metadata llama-quantize writes; APR and
 * SafeTensors: the source's names, or the format's names for a GGUF source, and a tied head
 * kept as a copy where the format keeps one) and write it atomically.
 * *report (report may be NULL) is set whenever planning got as far as a plan, even on a later
 * failure; free it with rf_convert_report_free. Errors: RF_ERR_ARGUMENT for a request the
 * output cannot satisfy (a type the format cannot hold, a type Rosetta cannot produce, an
 * imatrix for a type whose llama.cpp quantizer would weigh rows differently), RF_ERR_FORMAT /
 * RF_ERR_UNSUPPORTED / RF_ERR_IO for source or imatrix problems, RF_ERR_WRITE for the output;
 * the message names the file and tensor. Nothing is left at out_path on failure. */
RF_API rf_status rf_convert(const rf_model *src, const rf_convert_params *p, const char *out_path,
                            rf_convert_report **report, rf_error *err);

RF_API void rf_convert_report_free(rf_convert_report *report);

#ifdef __cplusplus
}
#endif
#endif
