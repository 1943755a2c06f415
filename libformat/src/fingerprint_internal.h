/* The fingerprint object shared by fingerprint.c (computing), fingerprint_json.c (JSON) and
 * fingerprint_check.c (comparing). Not for: use outside libformat. */
#ifndef ROSETTA_FINGERPRINT_INTERNAL_H
#define ROSETTA_FINGERPRINT_INTERNAL_H

#include "rosetta/fingerprint.h"

struct rf_fingerprint {
    char *file;
    char *format;
    uint32_t format_version;
    uint64_t file_size;
    rf_model_config config; /* strings owned below; chat_template is never kept */
    char *config_architecture, *config_name;
    bool has_chat_template;
    uint64_t chat_template_digest; /* XXH3-64 of the template text */
    size_t n_tensors;
    rf_tensor_fingerprint *tensors; /* strings malloc'd, freed by rf_fingerprint_free */
    size_t *by_canonical;           /* tensor indices sorted by canonical name, then name */
};

/* An empty fingerprint (calloc'd), NULL when memory runs out. */
rf_fingerprint *rfi_fp_new(void);

/* Sorts by_canonical (allocating it); false when memory runs out. */
bool rfi_fp_index(rf_fingerprint *fp);

/* Lower-case 16-digit hex of a 64-bit digest, most significant digit first (as xxhsum prints
 * XXH3 and XXH64 values), into out[17]. */
void rfi_fp_hex64(uint64_t v, char out[17]);

#endif
