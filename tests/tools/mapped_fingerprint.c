/* Test helper: the fingerprint, statistics, raw-hash and diff calls on a model whose file another
 * process truncates while it is mapped. Opens PATH, prints "mapped", waits for a line on stdin
 * (the test truncates the file meanwhile), runs the call and reports what happened.
 *
 * usage: mapped_fingerprint fingerprint|stats|hashes|diff PATH
 * Exit: 0 the call succeeded, 3 it failed (its message on stderr), 2 usage or open failure. A
 * process killed by SIGBUS means a read escaped the guard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rosetta/fingerprint.h"
#include "rosetta/model.h"
#include "rosetta/tensor_diff.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mapped_fingerprint fingerprint|stats|hashes|diff PATH\n");
        return 2;
    }
    rf_error err;
    rf_model *m = rf_model_open(argv[2], NULL, &err);
    if (!m) {
        fprintf(stderr, "mapped_fingerprint: %s\n", err.message);
        return 2;
    }
    printf("mapped\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        line[0] = '\0';
    rf_status st = RF_OK;
    if (strcmp(argv[1], "fingerprint") == 0) {
        rf_fingerprint_options o = {2, false};
        rf_fingerprint *fp = rf_fingerprint_model(m, NULL, &o, &err);
        st = fp ? RF_OK : err.status;
        rf_fingerprint_free(fp);
    } else if (strcmp(argv[1], "stats") == 0) {
        rf_value_stats s;
        for (size_t i = 0; i < rf_model_n_tensors(m) && st == RF_OK; i++)
            st = rf_tensor_stats(m, rf_model_tensor(m, i), &s, &err);
    } else if (strcmp(argv[1], "hashes") == 0) {
        size_t n = rf_model_n_tensors(m);
        rf_raw_hash *per = calloc(n ? n : 1, sizeof *per), whole;
        st = per ? rf_model_raw_hashes(m, 2, per, &whole, &err) : RF_ERR_NOMEM;
        free(per);
    } else if (strcmp(argv[1], "diff") == 0) {
        rf_diff_report *r = NULL;
        st = rf_models_diff(m, m, NULL, &r, &err);
        rf_diff_report_free(r);
    } else {
        fprintf(stderr, "mapped_fingerprint: unknown call %s\n", argv[1]);
        rf_model_free(m);
        return 2;
    }
    rf_model_free(m);
    if (st != RF_OK) {
        fprintf(stderr, "mapped_fingerprint: %s\n", err.message);
        return 3;
    }
    printf("ok\n");
    return 0;
}
