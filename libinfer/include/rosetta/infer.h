/* librosetta-infer: Qwen2 inference engine (tokenizer, forward pass, sampling, KV cache).
 * This wave only provides the library target and its version; the engine comes with its issue. */
#ifndef ROSETTA_INFER_H
#define ROSETTA_INFER_H

#include "rosetta/api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version string of the inference library (equals the project version). */
RI_API const char *ri_version(void);

#ifdef __cplusplus
}
#endif
#endif
