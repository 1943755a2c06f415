/* Export markers of Rosetta's public API. The libraries are built with -fvisibility=hidden, so
 * only functions declared with RF_API (librosetta-format) or RI_API (librosetta-infer) in a
 * public header are exported; everything else stays inside its library.
 * Not for: declarations of any kind (this header only defines the two markers). */
#ifndef ROSETTA_API_H
#define ROSETTA_API_H

#define RF_API __attribute__((visibility("default")))
#define RI_API __attribute__((visibility("default")))

#endif
