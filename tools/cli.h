/* Small helpers for parsing sub-command options. */
#ifndef CLSYNTH_CLI_H
#define CLSYNTH_CLI_H

#include <stdbool.h>

/* If argv[*i] is `--name` takes the next argument (or `--name=value`) into *value
 * and advances *i; returns 1 when matched, 0 when not, -1 when the value is missing
 * (no next argument, or the next one is an option: it starts with --). */
int clsynth_cli_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Parses an int/float option value; prints "<cmd>: --name: 'v' is not ..." on error. */
int clsynth_cli_int(const char *cmd, const char *name, const char *v, int lo, int hi, int *out);
int clsynth_cli_float(const char *cmd, const char *name, const char *v, float *out);

#endif
