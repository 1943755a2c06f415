/* placeholder until the fast path exists */
#include "internal.h"
const ri_backend ri_backend_cpu = {"cpu-pending", NULL, NULL, NULL, NULL, NULL};
