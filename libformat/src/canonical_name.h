/* The canonical name of a tensor: the one spelling that pairs a tensor across formats (used by
 * fingerprints and tensor diffs; docs/fingerprint.md, "Canonical names").
 * Not for: renaming tensors in written files (rosetta/names.h, rosetta/contract.h). */
#ifndef ROSETTA_CANONICAL_NAME_H
#define ROSETTA_CANONICAL_NAME_H

/* A malloc'd copy of the canonical name of name (NULL when memory runs out): its Hugging Face
 * spelling when it spells a role of the contracts (contracts/tensor-layout.json) in any naming,
 * else name unchanged (also when the contracts cannot be loaded). */
char *rfi_canonical_tensor_name(const char *name);

#endif
