/* Private: the parts of output.c that the atomic writer (writer.c) and the directory output of
 * rf_convert (convert.c) use. */
#ifndef ROSETTA_OUTPUT_INTERNAL_H
#define ROSETTA_OUTPUT_INTERNAL_H

#include "rosetta/output.h"

/* RF_ERR_ARGUMENT when something other than a regular file (or a symbolic link to one) is at
 * path: the writer never renames over a device, FIFO, socket or directory. RF_OK when path is
 * absent or a regular file. */
rf_status rfi_output_refuse_special(const char *path, rf_error *err);

/* Records a temp file of a live writer so that a terminating signal removes it (see
 * rf_output_cleanup_on_signals). Returns a slot for rfi_output_temp_forget, or -1 when every slot
 * is taken (the file is then left to the next writer's stale clean-up). */
int rfi_output_temp_remember(const char *temp_path);
void rfi_output_temp_forget(int slot);

/* mkdtemp(template_path) for a staging directory, recorded like a temp file (in *slot, -1 when
 * not recorded) so that a terminating signal removes it and the plain files in it; the signals
 * wait while it is made. Returns template_path, or NULL with errno set. Forget the slot with
 * rfi_output_temp_forget once the directory is renamed away or removed. */
char *rfi_output_mkdtemp(char *template_path, int *slot);

#endif
