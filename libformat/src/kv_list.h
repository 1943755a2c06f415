/* Building an rf_kv_list (private; the accessors are in rosetta/model.h). */
#ifndef ROSETTA_KV_LIST_H
#define ROSETTA_KV_LIST_H

#include "rosetta/model.h"

/* An empty list; NULL with err set on allocation failure. */
rf_kv_list *rfi_kv_list_new(rf_error *err);
/* Appends a deep copy of key and value. */
rf_status rfi_kv_list_add(rf_kv_list *list, const char *key, const rf_value *value, rf_error *err);

#endif
