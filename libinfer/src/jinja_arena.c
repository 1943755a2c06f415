/* The memory arena of chat templates (parse trees and values live in it, bounded by
 * JINJA_MAX_MEMORY) and the "line L, column C" locator of error messages. Its own file so that
 * the parser and the values both build on it without depending on each other both ways.
 * Not for: parsing (jinja_parse.c) or values (jinja_value.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

/* ---- arena -------------------------------------------------------------------------------- */

struct jinja_chunk {
    jinja_chunk *next;
    max_align_t data[];
};

void *jinja_alloc(jinja_arena *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (size == 0)
        size = sizeof(max_align_t);
    if (!a->head || a->size - a->used < size) {
        size_t chunk = size > 65536 ? size : 65536;
        if (chunk > JINJA_MAX_MEMORY || a->total > JINJA_MAX_MEMORY - chunk) {
            a->over_limit = true;
            return NULL;
        }
        jinja_chunk *c = malloc(sizeof *c + chunk);
        if (!c)
            return NULL;
        c->next = a->head;
        a->head = c;
        a->size = chunk;
        a->used = 0;
        a->total += chunk;
    }
    void *p = (char *)a->head->data + a->used;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *jinja_strndup(jinja_arena *a, const char *s, size_t len)
{
    char *p = jinja_alloc(a, len + 1);
    if (p && len)
        memcpy(p, s, len);
    return p;
}

void jinja_arena_free(jinja_arena *a)
{
    for (jinja_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    memset(a, 0, sizeof *a);
}

void jinja_where(const char *src, size_t len, size_t offset, char *buf, size_t size)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (src[i] == '\n') {
            line++;
            col = 1;
        } else if (((uint8_t)src[i] & 0xC0) != 0x80)
            col++;
    }
    snprintf(buf, size, "line %zu, column %zu, offset %zu", line, col, offset);
}
