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

/* Gives the complete file `from` a second name `to` (replacing `to`
 * atomically): a hard link where the file system has them, else a copy
 * through a temporary file. Both names then share the data, which is safe
 * because clsynth never rewrites a file in place. The directory is fsynced.
 * *linked (when not NULL) tells whether it was a link (1) or a copy (0). */
int clsynth_atomic_link(const char *from, const char *to, int *linked, clsynth_err *err);

/* Copies from to to, atomically (temporary file, fsync, rename). */
int clsynth_atomic_copy(const char *from, const char *to, clsynth_err *err);

/* Temporary files are named "<final name>.tmp.XXXXXX" (six characters from
 * mkstemp). 1 when name (a base name) has that form, with its final name's
 * length in *final_len. */
int clsynth_atomic_is_temp_name(const char *name, size_t *final_len);

#endif
