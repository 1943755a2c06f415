/* rf_kv_list: key/value pairs with their own storage (see rosetta/model.h). The pairs live in
 * a model of their own, whose arena owns the deep copies. */
#include "model_internal.h"
#include "kv_list.h"

#include <stdlib.h>

struct rf_kv_list {
    rf_model *store;
};

rf_kv_list *rfi_kv_list_new(rf_error *err)
{
    rf_kv_list *l = calloc(1, sizeof *l);
    if (l)
        l->store = rf_model_new(RF_FORMAT_UNKNOWN, err);
    if (!l || !l->store) {
        free(l);
        rf_error_set(err, RF_ERR_NOMEM, "out of memory for a key/value list");
        return NULL;
    }
    return l;
}

rf_status rfi_kv_list_add(rf_kv_list *l, const char *key, const rf_value *value, rf_error *err)
{
    return rf_model_add_kv(l->store, key, value, err);
}

size_t rf_kv_list_count(const rf_kv_list *l) { return l ? rf_model_n_kv(l->store) : 0; }

const rf_kv *rf_kv_list_get(const rf_kv_list *l, size_t i)
{
    return l ? rf_model_kv(l->store, i) : NULL;
}

const rf_kv *rf_kv_list_find(const rf_kv_list *l, const char *key)
{
    return l ? rf_model_find_kv(l->store, key) : NULL;
}

void rf_kv_list_free(rf_kv_list *l)
{
    if (!l)
        return;
    rf_model_free(l->store);
    free(l);
}
