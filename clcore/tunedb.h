/* The tuning database of a context: loading, saving, export/import of the
 * per-device text file, and the hooks the tuner uses (a candidate override
 * and a recorder of every (kernel, shape key) the ops look up).
 *
 * File: <cache_dir>/tuning/<vendor>--<device>.txt (CLSYNTH_TUNE_FILE
 * overrides the path; CLSYNTH_TUNE=0 turns tuned lookups off). It applies
 * only when its vendor, device and driver lines match the running device;
 * a corrupt or stale file is ignored with a warning (ops then use their
 * defaults). Format (see clsynth_tunedb_save for the header comment it writes):
 *
 *   clsynth-tunedb 1
 *   vendor: NVIDIA Corporation
 *   device: NVIDIA GeForce RTX 3080
 *   driver: 535.104.05
 *   platform: NVIDIA CUDA
 *   class: nvidia
 *   <kernel> <shape-key> algo=N local=AxBxC lmem=BYTES src=HEX opts="-DX=1 -DY=2" ms=T default_ms=T
 */
#ifndef CLSYNTH_TUNEDB_H
#define CLSYNTH_TUNEDB_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/tune.h"

#define CLSYNTH_TUNE_KEY_MAX 48
#define CLSYNTH_TUNE_SHAPE_MAX 96

typedef struct clsynth_tune_record {
    char kernel[CLSYNTH_TUNE_KEY_MAX];
    char shape[CLSYNTH_TUNE_SHAPE_MAX];
    clsynth_tune_entry e;
    size_t lmem;       /* local memory the configuration needs (0 = none/unknown) */
    unsigned src;      /* hash of the kernel source it was tuned with (0 = unknown) */
    double ms;         /* tuned time (informative) */
    double default_ms; /* default configuration's time (informative) */
} clsynth_tune_record;

/* Loads the device's file once (lookups call it lazily). Never fails on a
 * missing, corrupt or stale file: warns and starts empty. Returns -1 only when
 * out of host memory. */
int clsynth_tunedb_load(clsynth_ctx *ctx);
/* Default path of the device's file (CLSYNTH_TUNE_FILE honoured). */
void clsynth_tunedb_path(clsynth_ctx *ctx, char *out, size_t len);
/* Uses `path` instead of the default file; drops what was loaded (the next
 * lookup loads `path`). NULL returns to the default. */
int clsynth_tunedb_set_path(clsynth_ctx *ctx, const char *path);
/* Writes the database to path (NULL: its own file), sorted, atomically. */
int clsynth_tunedb_save(clsynth_ctx *ctx, const char *path);

/* Adds or replaces a record. */
int clsynth_tunedb_put(clsynth_ctx *ctx, const clsynth_tune_record *r);
/* The stored record of (kernel, shape), ignoring overrides and limits. */
bool clsynth_tunedb_get(clsynth_ctx *ctx, const char *kernel, const char *shape, clsynth_tune_record *out);
/* Removes every record (in memory). */
void clsynth_tunedb_clear(clsynth_ctx *ctx);
size_t clsynth_tunedb_count(clsynth_ctx *ctx);
/* Record i in sorted order (kernel, shape); NULL when out of range. */
const clsynth_tune_record *clsynth_tunedb_at(clsynth_ctx *ctx, size_t i);

/* false: every lookup answers "not tuned" (defaults), e.g. for default-vs-tuned
 * benchmarks. */
void clsynth_tunedb_set_enabled(clsynth_ctx *ctx, bool on);

/* Tuner hook: lookups of (kernel, shape) answer *e (e NULL: answer "not
 * tuned", forcing the op's defaults) until clsynth_tunedb_clear_override. */
void clsynth_tunedb_set_override(clsynth_ctx *ctx, const char *kernel, const char *shape,
                                 const clsynth_tune_entry *e);
void clsynth_tunedb_clear_override(clsynth_ctx *ctx);

/* Shape recorder: while on, every lookup's (kernel, shape) is remembered once,
 * in first-seen order, with the number of lookups. */
void clsynth_tunedb_record(clsynth_ctx *ctx, bool on);
size_t clsynth_tunedb_recorded_count(clsynth_ctx *ctx);
bool clsynth_tunedb_recorded(clsynth_ctx *ctx, size_t i, const char **kernel, const char **shape,
                             unsigned long *lookups);
void clsynth_tunedb_recorded_clear(clsynth_ctx *ctx);

/* Export: writes the device's database (loaded state) to path.
 * Import: reads a file exported on the same device model; vendor and device
 * must match; a different driver is refused unless force (then its entries
 * are taken over for this driver, with a warning). The merged database is
 * saved to the device's file. */
int clsynth_tunedb_export(clsynth_ctx *ctx, const char *path);
int clsynth_tunedb_import(clsynth_ctx *ctx, const char *path, bool force);

/* Number of warnings the loader issued (tests). */
unsigned clsynth_tunedb_warnings(clsynth_ctx *ctx);

/* Stored CLBlast parameters (kernel "clblast.<Kernel>", shape "sgemm") are
 * applied to CLBlast with CLBlastOverrideParameters when the database loads. */
int clsynth_tunedb_apply_clblast(clsynth_ctx *ctx);

/* internal: called by clsynth_ctx_free */
void clsynth_tunedb_free(clsynth_ctx *ctx);

#endif
