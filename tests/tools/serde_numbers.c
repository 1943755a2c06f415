/* serde_numbers: a helper of tests/interop/test_apr_interop.py (built into build/tests/, never
 * installed). The APR writer's serde_json number formatting is internal to the library, so the
 * Python check cannot call it through the exported API: this program links the internal library
 * and formats the numbers it is given.
 *
 *   stdin:  one number per line, "d HHHHHHHHHHHHHHHH" (f64 bits) or "f HHHHHHHH" (f32 bits)
 *   stdout: the JSON text of each number, one per line
 * Exit 2 on a line it cannot parse. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "apr_internal.h"

int main(void)
{
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        char kind;
        uint64_t bits;
        if (sscanf(line, "%c %" SCNx64, &kind, &bits) != 2 || (kind != 'd' && kind != 'f')) {
            fprintf(stderr, "serde_numbers: cannot parse: %s", line);
            return 2;
        }
        apr_buf b = {0};
        if (kind == 'd') {
            double v;
            memcpy(&v, &bits, sizeof v);
            rfi_apr_json_f64(&b, v);
        } else {
            float v;
            uint32_t b32 = (uint32_t)bits;
            memcpy(&v, &b32, sizeof v);
            rfi_apr_json_f32(&b, v);
        }
        printf("%.*s\n", (int)b.len, b.data ? b.data : "");
        rfi_apr_buf_free(&b);
    }
    return ferror(stdout) ? 4 : 0;
}
