/* Atomic file replacement: write to a temporary file in the target's
 * directory, flush and fsync it, rename it over the target, fsync the
 * directory. A reader sees the old file or the complete new one, never a
 * partial one. */
#ifndef CLSYNTH_IO_ATOMIC_H
#define CLSYNTH_IO_ATOMIC_H

#include <stdio.h>

#include "clcore/error.h"

typedef struct clsynth_atomic_file {
    FILE *f;          /* write here */
    char *path;       /* final name */
    char *tmp;        /* temporary name in the same directory */
} clsynth_atomic_file;

/* Creates the temporary file. */
int clsynth_atomic_open(clsynth_atomic_file *af, const char *path, clsynth_err *err);

/* Flushes, fsyncs, closes and renames onto the final path; removes the
 * temporary file on failure. Always releases af. */
int clsynth_atomic_commit(clsynth_atomic_file *af, clsynth_err *err);

/* Closes and deletes the temporary file; the target stays untouched. */
void clsynth_atomic_abort(clsynth_atomic_file *af);

#endif
