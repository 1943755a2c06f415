/* The output checks (rosetta/output.h), the temp-file removal for signals, and the SIGBUS guard
 * inside the library's readers of mapped data (rf_dequantize, rf_quantize, rf_writer_write).
 * The end-to-end cases (devices, signals, pipes) are in tests/tools/hostile.sh. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rosetta/gguf.h"
#include "io.h"
#include "rosetta/model.h"
#include "rosetta/output.h"
#include "rosetta/quant.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/rosetta-output-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static const char *at(const char *name)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

static size_t count_files(void)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(output, check_refuses_what_is_not_a_regular_file, .init = make_dir, .fini = remove_dir)
{
    rf_error err;
    cr_assert_eq(rf_output_check(at("new.gguf"), NULL, &err), RF_OK, "%s", err.message);
    FILE *f = fopen(at("old.gguf"), "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(rf_output_check(at("old.gguf"), NULL, &err), RF_OK, "%s", err.message);

    cr_assert_eq(mkfifo(at("fifo"), 0644), 0);
    cr_assert_eq(rf_output_check(at("fifo"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "fifo: is a FIFO, not a regular file"), "%s", err.message);
    cr_assert_eq(symlink(at("fifo"), at("link")), 0);
    cr_assert_eq(rf_output_check(at("link"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "through a symbolic link"), "%s", err.message);

    cr_assert_eq(mkdir(at("sub.gguf"), 0755), 0);
    cr_assert_eq(rf_output_check(at("sub.gguf"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "is a directory"), "%s", err.message);
    cr_assert_eq(rf_output_check(at("x.gguf/"), NULL, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "ends in '/'"), "%s", err.message);

    cr_assert_eq(rf_output_check(at("missing/x.gguf"), NULL, &err), RF_ERR_WRITE);
    cr_assert(strstr(err.message, "missing/x.gguf: cannot write there"), "%s", err.message);

    /* directory outputs: a directory (new, or existing), never a file */
    const rf_output_check_options d = {RF_OUTPUT_DIRECTORY, NULL, false};
    cr_assert_eq(rf_output_check(at("hf/"), &d, &err), RF_OK, "%s", err.message);
    cr_assert_eq(rf_output_check(at("sub.gguf"), &d, &err), RF_OK, "%s", err.message);
    cr_assert_eq(rf_output_check(at("old.gguf"), &d, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_output_check(at("missing/hf"), &d, &err), RF_ERR_WRITE);
}

Test(output, check_protects_the_input_files, .init = make_dir, .fini = remove_dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r '%s/fixtures/tiny-qwen2' '%s/in'", ROSETTA_ROOT, dir);
    cr_assert_eq(system(cmd), 0);
    rf_error err;
    rf_model *m = rf_model_open(at("in"), NULL, &err);
    cr_assert_not_null(m, "%s", err.message);
    rf_output_check_options o = {RF_OUTPUT_FILE, m, false};
    cr_assert_eq(rf_output_check(at("in/model.safetensors"), &o, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "is a file of the input model"), "%s", err.message);
    cr_assert_eq(rf_output_check(at("in/config.json"), &o, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_output_check(at("in/tokenizer.json"), &o, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(link(at("in/model.safetensors"), at("hard.safetensors")), 0);
    cr_assert_eq(rf_output_check(at("hard.safetensors"), &o, &err), RF_ERR_ARGUMENT);
    cr_assert_eq(rf_output_check(at("in/other.gguf"), &o, &err), RF_OK, "%s", err.message);
    o.kind = RF_OUTPUT_DIRECTORY;
    cr_assert_eq(rf_output_check(at("in"), &o, &err), RF_ERR_ARGUMENT);
    cr_assert(strstr(err.message, "is the directory of the input model"), "%s", err.message);
    cr_assert_eq(rf_output_check(at("out"), &o, &err), RF_OK, "%s", err.message);
    /* --force */
    o.replace_input = true;
    cr_assert_eq(rf_output_check(at("in"), &o, &err), RF_OK, "%s", err.message);
    o.kind = RF_OUTPUT_FILE;
    cr_assert_eq(rf_output_check(at("in/model.safetensors"), &o, &err), RF_OK, "%s", err.message);
    rf_model_free(m);
}

Test(output, writer_never_replaces_a_fifo, .init = make_dir, .fini = remove_dir)
{
    cr_assert_eq(mkfifo(at("out.gguf"), 0644), 0);
    rf_error err;
    cr_assert_null(rf_writer_open(at("out.gguf"), &err));
    cr_assert_eq(err.status, RF_ERR_ARGUMENT);
    struct stat st;
    cr_assert_eq(lstat(at("out.gguf"), &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    cr_assert_eq(count_files(), 1, "no temp file");
}

Test(output, remove_temps_unlinks_live_temp_files, .init = make_dir, .fini = remove_dir)
{
    rf_error err;
    rf_writer *w = rf_writer_open(at("out.bin"), &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(rf_writer_write(w, "abc", 3, &err), RF_OK);
    cr_assert_eq(count_files(), 1, "the temp file exists");
    rf_output_remove_temps(); /* what the SIGINT/SIGTERM handler does */
    cr_assert_eq(count_files(), 0);
    rf_writer_abort(w);
    /* a committed write is not touched by a later removal */
    w = rf_writer_open(at("out.bin"), &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(rf_writer_commit(w, NULL, NULL, &err), RF_OK, "%s", err.message);
    rf_output_remove_temps();
    cr_assert_eq(access(at("out.bin"), F_OK), 0);
}

/* A mapped file of n floats whose file is then cut to keep bytes (another process truncating
 * it): reads past keep fault with SIGBUS. */
static rf_file *truncated_mapping(const char *path, size_t n, off_t keep)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++) {
        float v = (float)i;
        fwrite(&v, sizeof v, 1, f);
    }
    fclose(f);
    rf_error err;
    rf_file *file = rf_file_open(path, &err);
    cr_assert_not_null(file, "%s", err.message);
    cr_assert_eq(truncate(path, keep), 0);
    return file;
}

Test(output, mapped_reads_are_guarded, .init = make_dir, .fini = remove_dir)
{
    const size_t n = 4 * 4096; /* 64 KiB of F32 */
    rf_file *f = truncated_mapping(at("weights.bin"), n, 4096);
    float *out = malloc(n * sizeof *out);
    uint8_t *q = malloc(n);
    cr_assert(out && q);
    rf_error err;
    cr_assert_eq(rf_dequantize(RF_DTYPE_F32, rf_file_data(f), out, n, &err), RF_ERR_IO);
    cr_assert(strstr(err.message, "weights.bin: file changed while in use: read at offset 4096"),
              "%s", err.message);
    /* quantizer worker threads reading the mapping */
    rf_quant_options qo = {.n_threads = 2};
    cr_assert_eq(rf_quantize(RF_DTYPE_Q8_0, (const float *)(const void *)rf_file_data(f), q,
                             n / 256, 256, NULL, &qo, &err),
                 RF_ERR_IO);
    cr_assert(strstr(err.message, "file changed while in use"), "%s", err.message);
    /* the atomic writer copying from the mapping: the write fails for good, nothing is left */
    rf_writer *w = rf_writer_open(at("copy.bin"), &err);
    cr_assert_not_null(w, "%s", err.message);
    cr_assert_eq(rf_writer_write(w, rf_file_data(f), n * sizeof(float), &err), RF_ERR_IO);
    cr_assert(strstr(err.message, "weights.bin: file changed while in use"), "%s", err.message);
    cr_assert_eq(rf_writer_write(w, "x", 1, &err), RF_ERR_IO, "sticky");
    rf_writer_abort(w);
    cr_assert_eq(access(at("copy.bin"), F_OK), -1);
    /* reads inside what is left still work, and the guard stays usable */
    cr_assert_eq(rf_dequantize(RF_DTYPE_F32, rf_file_data(f), out, 1024, &err), RF_OK);
    cr_assert_eq(out[1023], 1023.0f);
    rf_file_close(f);
    free(out);
    free(q);
}

Test(output, gguf_file_type_names_are_llama_cpp_s)
{
    cr_assert_str_eq(rf_gguf_file_type_name(15), "Q4_K - Medium");
    cr_assert_str_eq(rf_gguf_file_type_name(0), "all F32");
    cr_assert_str_eq(rf_gguf_file_type_name(7), "Q8_0");
    cr_assert_str_eq(rf_gguf_file_type_name(27), "IQ3_S mix - 3.66 bpw");
    cr_assert_null(rf_gguf_file_type_name(4)); /* removed from llama.cpp */
    cr_assert_null(rf_gguf_file_type_name(1024));
}
