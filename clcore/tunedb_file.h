/* The text format of tuning-database files (internal to clcore/tunedb.c):
 * one header, one entry per line, sorted so files diff well. */
#ifndef CLSYNTH_TUNEDB_FILE_H
#define CLSYNTH_TUNEDB_FILE_H

#include "clcore/tunedb.h"

#define CLSYNTH_TUNEDB_MAGIC "clsynth-tunedb"
#define CLSYNTH_TUNEDB_VERSION 1

typedef struct clsynth_tunedb_header {
    char vendor[128], device[128], driver[64], platform[128];
    char cls[64];   /* "class:" line */
    bool class_scope; /* "scope: class": a class file */
    int version;
} clsynth_tunedb_header;

/* Reads a file (or, with text, that text, named path in messages): the
 * header into *h and every entry through add(user, record, line) (a
 * non-zero return stops with "out of host memory"). Returns 0, 1 when the
 * file does not exist, -1 when it is corrupt (why names line and reason). */
int clsynth_tunedb_read(const char *path, const char *text, clsynth_tunedb_header *h,
                        int (*add)(void *user, const clsynth_tune_record *r, int line), void *user, char *why,
                        size_t why_len);

/* Writes header and records (sorted by the caller) to path atomically
 * (temporary file, then rename). */
int clsynth_tunedb_write(clsynth_ctx *ctx, const char *path, const clsynth_tunedb_header *h,
                         const clsynth_tune_record *const *recs, size_t n);

#endif
