/* A growable, always NUL-terminated byte buffer for building text in memory (JSON headers,
 * metadata, companion files). An allocation failure sets failed; later writes are ignored, so
 * a builder checks failed once at the end. Not for: file output (rf_writer in io.h). */
#ifndef ROSETTA_TEXT_BUF_H
#define ROSETTA_TEXT_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct text_buf {
    char *data; /* NULL until the first write */
    size_t len, cap;
    bool failed;
} text_buf;

void rfi_text_buf_put(text_buf *b, const void *data, size_t n);
void rfi_text_buf_puts(text_buf *b, const char *s);
void rfi_text_buf_putc(text_buf *b, char c);
void rfi_text_buf_printf(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Releases the memory and leaves b empty and not failed. */
void rfi_text_buf_free(text_buf *b);

#endif
