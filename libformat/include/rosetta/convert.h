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
#include "rosetta/contract.h"
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

/* Called as the work advances, at most every 64 MiB of data and at the start of each phase:
 * phase is "checking" (the source scan), "converting", "writing" (the output written and read
 * back) or "comparing"; done and total are bytes of that phase (total 0 when unknown). A tool
 * draws a progress bar here; it must not call back into the conversion. */
typedef void (*rf_convert_work_fn)(const char *phase, uint64_t done, uint64_t total, void *ctx);

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
    /* Source tensors of a type the output format cannot hold (a GGUF's Q5_0 / Q8_0 going to
     * APR, any quantized type going to SafeTensors, a quantize plan's fallback type for APR):
     * false (the default) refuses the conversion with RF_ERR_ARGUMENT; true converts them to
     * unheld_dtype, which must be a type the format holds: RF_DTYPE_F32 dequantizes them (no
     * value changes), another type requantizes them. report->n_unheld and
     * report->unheld_types say which tensors and types it concerned. */
    bool convert_unheld;
    rf_dtype unheld_dtype;
    /* The architecture to use instead of the model's (the tools' --arch): for a model whose
     * architecture is missing or unknown to the contracts. It replaces the model's in the
     * contract check and in the output's metadata. NULL: the model's. */
    const char *architecture;
    /* The stop-the-line checks (docs/convert.md), run before anything is written. Violations
     * fail the conversion with RF_ERR_CONTRACT, the message naming the rule ids and the first
     * violation (tensor, expected, found); report->contract lists them all. */
    bool check_contract;           /* the structural rules of the contracts (rf_contract_check) */
    bool check_values;             /* no NaN or infinity in a source tensor (quality.nan_inf) */
    const rf_contracts *contracts; /* NULL: rf_contracts_default() */
    /* Record where the output came from (docs/convert.md, "Provenance"): the source file name,
     * the XXH3-64 digest of its tensor data, the Rosetta version and the options, in the APR
     * key rosetta.provenance, the GGUF keys rosetta.provenance.*, the SafeTensors __metadata__
     * key rosetta.provenance; plus the fields the target's reference writer drops that Rosetta
     * carries so that a round trip loses nothing (the rosetta.hf.* companion files, token types,
     * padding id, BOS flag). No time unless SOURCE_DATE_EPOCH is set, so converting twice gives
     * the same bytes. false: exactly what the format's reference writer writes. */
    bool provenance;
    /* Compare every written tensor with its source before the output is renamed into place
     * (rf_convert_compare): bytes identical where the dtype was kept, values identical where
     * it was widened or dequantized, relative RMSE within rf_compare_bound where it was
     * quantized. A violation fails the conversion with RF_ERR_MISMATCH (nothing is written);
     * report->compare sums up what was compared. */
    bool compare;
    /* Hooks (each may be NULL), with their context pointer. */
    rf_convert_plan_fn on_plan;
    rf_convert_progress_fn on_progress;
    rf_convert_verify_fn verify;
    rf_convert_work_fn on_work;
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

/* The provenance record of a file rf_convert wrote (the APR key rosetta.provenance, the GGUF
 * keys rosetta.provenance.*, the SafeTensors __metadata__ key rosetta.provenance) as compact JSON
 * text {"source": ..., "source_format": ..., "source_digest": ..., "rosetta_version": ...,
 * "options": ..., "created": ...} (docs/convert.md); NULL when the model carries none or on
 * allocation failure. The caller free()s it. */
RF_API char *rf_model_provenance(const rf_model *m);

/* ---- comparing an output with its source ------------------------------------------------ */

/* How one output tensor compares with its source. */
typedef enum rf_compare_kind {
    RF_COMPARE_IDENTICAL = 0, /* same dtype, same bytes */
    RF_COMPARE_EXACT,         /* another dtype, every value equal (widened, dequantized) */
    RF_COMPARE_BOUNDED,       /* a lossy type: relative RMSE within the type's bound */
    RF_COMPARE_OMITTED,       /* a source tensor the output leaves out by design (a tied head) */
    RF_COMPARE_VIOLATION,     /* bytes or values differ beyond what the types allow, the shape
                                 differs, or a tensor is missing on one side */
} rf_compare_kind;

/* "identical", "exact", "bounded", "omitted", "violation". */
RF_API const char *rf_compare_kind_name(rf_compare_kind kind);

/* The documented bound (docs/convert.md) on the RMSE of a tensor stored as dtype, relative to
 * the RMS of the source values, for a tensor whose values are not kept exactly; 0 for types
 * that hold every value of the source exactly (F32, F64) and for types without a documented
 * bound (those always fail a comparison unless bit-identical). */
RF_API double rf_compare_bound(rf_dtype dtype);

typedef struct rf_compare_entry {
    const char *name;        /* in the output (NULL for a source tensor missing from it) */
    const char *source_name; /* in the source (NULL for an output tensor without source) */
    rf_dtype src_dtype, dtype;
    rf_compare_kind kind;
    uint64_t n_values;
    double rel_rmse; /* RMSE(output - source) / RMS(source); 0 when compared by bytes */
    double max_abs;  /* max |output - source| */
    double bound;    /* the relative RMSE allowed (rf_compare_bound), 0 when exactness is due */
    char detail[192];
} rf_compare_entry;

typedef struct rf_compare_report {
    size_t n_entries;
    const rf_compare_entry *entries;         /* output tensors in output order, then missing ones */
    size_t counts[RF_COMPARE_VIOLATION + 1]; /* entries of each kind */
    size_t worst;                            /* entry with the largest rel_rmse / bound */
} rf_compare_report;

typedef struct rf_compare_options {
    /* The output holds part of the tensors only (one shard of a sharded checkpoint): source
     * tensors without output counterpart are not reported. */
    bool subset;
} rf_compare_options;

/* Compares every tensor of out with its source tensor in src (paired by role through the
 * contracts' name map, else by name; a head that only one side stores is paired with the token
 * embedding when the model is tied). One tensor pair in memory at a time, as F32. opts may be
 * NULL. Returns RF_OK with *report set whatever it finds (count violations with
 * report->counts[RF_COMPARE_VIOLATION]); an error only when values cannot be read (RF_ERR_IO for
 * a truncated file, RF_ERR_NOMEM). Free with rf_compare_report_free. */
RF_API rf_status rf_convert_compare(const rf_model *src, const rf_model *out,
                                    const rf_compare_options *opts, rf_compare_report **report,
                                    rf_error *err);
RF_API void rf_compare_report_free(rf_compare_report *report);

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
    bool unheld;                      /* its source type is one the output format cannot hold */
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
    size_t n_unheld;                  /* tensors converted because the format cannot hold them */
    char unheld_types[96];            /* their source types, "Q5_0, Q8_0" ("" when none) */
    /* The contract check (check_contract), or NULL when it did not run. */
    const rf_contract_report *contract;
    /* "xxh3-64:<16 hex digits>": the digest of the source's tensor data (every tensor's bytes
     * in the source's order), computed when provenance is on; "" otherwise. */
    char source_digest[32];
    /* The provenance record written (compact JSON), or NULL. */
    const char *provenance;
    /* compare: totals over every data file written (n_entries 0 when it did not run). */
    size_t compare_counts[RF_COMPARE_VIOLATION + 1];
    size_t n_compared;
    double worst_rel_rmse;     /* the largest relative RMSE met, */
    double worst_bound;        /* the bound it was held to, */
    char worst_tensor[128];    /* and the output tensor ("" when every tensor kept its values) */
    char first_violation[512]; /* the first violation's detail, "" when none */
    size_t n_values_checked;   /* check_values: source tensors scanned for NaN / Inf */
    /* compare: the configuration and tokenizer fields of contracts/metadata-map.json that the
     * output holds otherwise than the source (a single .safetensors file, which holds no config
     * or tokenizer, is not checked). With provenance a difference fails the conversion
     * (RF_ERR_MISMATCH); without, it is what the reference writer drops, reported here. */
    size_t n_fields_checked;
    size_t n_fields_differ;
    char fields_differ[256];    /* their names, comma-separated */
    char first_field_diff[512]; /* "pad_token_id: 997 in the source, none in the output" */
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
 * With the checks of p (check_contract, check_values) the structural rules run before the plan
 * and the value scan before the first tensor is converted; with compare, each data file is
 * compared with the source before it is renamed into place.
 * *report (report may be NULL) is set whenever the work got as far as the contract check or a
 * plan, even on a later failure (report->plan is NULL when it stopped before planning); free it
 * with rf_convert_report_free. Errors: RF_ERR_ARGUMENT for a request the
 * output cannot satisfy (a type the format cannot hold, a type Rosetta cannot produce, an
 * imatrix for a type whose llama.cpp quantizer would weigh rows differently), RF_ERR_CONTRACT
 * (a stop-the-line check), RF_ERR_MISMATCH (compare found a difference), RF_ERR_FORMAT /
 * RF_ERR_UNSUPPORTED / RF_ERR_IO for source or imatrix problems, RF_ERR_WRITE for the output;
 * the message names the file and tensor. Nothing is left at out_path on failure. */
RF_API rf_status rf_convert(const rf_model *src, const rf_convert_params *p, const char *out_path,
                            rf_convert_report **report, rf_error *err);

RF_API void rf_convert_report_free(rf_convert_report *report);

#ifdef __cplusplus
}
#endif
#endif
