/* The tuning database of a context: this device's file and its device
 * class's file, loaded once; lookups for the resolver (clcore/kconfig.h);
 * editing, saving, export/import; the recorder the tuner uses to learn which
 * (kernel, shape) a model runs.
 *
 * Device file: <cache_dir>/tuning/<vendor>--<device>.txt (CLSYNTH_TUNE_FILE
 * or clsynth_tunedb_set_path name another; CLSYNTH_TUNE=0 turns tuned
 * lookups off). It applies only when its vendor, device and driver lines
 * match the running device.
 * Class file: <cache_dir>/tuning/class/<class>.txt, else the one shipped in
 * the tree's tuning/ folder (embedded at build time), for the device class
 * of clsynth_device_class ("pocl-cpu", "nvidia", ...): entries tuned on
 * another device of the class, used where this device has no entry.
 *
 * Every entry of a registered descriptor (clcore/kdefs.h) is checked when
 * its file loads: its shape key must parse, its opts name only the
 * descriptor's tunables with legal values, local and algo likewise, the
 * values must meet the descriptor's constraints, and its kernel source must
 * be the one it was tuned with (src hash). A failing entry is dropped with a
 * warning naming the file, line and reason; a corrupt or stale file is
 * ignored with a warning. Nothing in the database makes an op fail: what the
 * context's limits or the driver refuse at run time, the resolver replaces
 * with the defaults (warning once).
 *
 * Format (clcore/tunedb_file.c writes a comment block explaining it):
 *   clsynth-tunedb 1
 *   vendor: ... / device: ... / driver: ... / platform: ... / class: ...
 *   [scope: class]      (class files)
 *   <kernel> <shape-key> algo=N local=AxBxC lmem=BYTES src=HEX opts="-DX=1 -DY=2" ms=T default_ms=T
 */
#ifndef CLSYNTH_TUNEDB_H
#define CLSYNTH_TUNEDB_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/kdef.h"

#define CLSYNTH_TUNE_KEY_MAX 48
#define CLSYNTH_TUNE_SHAPE_MAX 96

/* One entry as the file holds it. */
typedef struct clsynth_tune_record {
    char kernel[CLSYNTH_TUNE_KEY_MAX];
    char shape[CLSYNTH_TUNE_SHAPE_MAX];
    char opts[256];    /* the -D (and host) tunables, "" for none */
    size_t local[3];   /* work-group (0x0x0: automatic) */
    int algo;          /* algorithm of a multi-algorithm op (0: automatic) */
    size_t lmem;       /* local memory the setting needs (informative) */
    unsigned src;      /* hash of the kernel source it was tuned with (0 = unknown) */
    double ms;         /* tuned time (informative) */
    double default_ms; /* default configuration's time (informative) */
} clsynth_tune_record;

/* A record with no setting: the tuner kept the default (stored so a resumed
 * run skips it; lookups answer "use the defaults"). */
bool clsynth_tune_record_is_default(const clsynth_tune_record *r);
/* The record of values v of descriptor d at shape key (timings zero). */
void clsynth_tune_record_of(const clsynth_kdef *d, const int *v, const char *shape, clsynth_tune_record *r);

typedef enum clsynth_tunedb_answer {
    CLSYNTH_TUNEDB_NONE = 0,  /* no entry: the defaults */
    CLSYNTH_TUNEDB_DEFAULT,   /* an entry that keeps the defaults, or one that was rejected */
    CLSYNTH_TUNEDB_DEVICE,    /* this device's entry: values in v */
    CLSYNTH_TUNEDB_CLASS,     /* the device class's entry: values in v */
} clsynth_tunedb_answer;

/* What the database holds for def at shape key on this device; v has room
 * for CLSYNTH_K_MAX_PARAMS values. With an entry, *entry (may be NULL)
 * receives a handle for clsynth_tunedb_reject. */
clsynth_tunedb_answer clsynth_tunedb_lookup(clsynth_ctx *ctx, const clsynth_kdef *def, const char *key, int *v,
                                            const void **entry);
/* The same, answered also while lookups are switched off
 * (clsynth_tunedb_set_enabled): what a default-vs-tuned benchmark measures
 * as "tuned" after its default runs. */
clsynth_tunedb_answer clsynth_tunedb_lookup_stored(clsynth_ctx *ctx, const clsynth_kdef *def, const char *key, int *v);
/* The resolver refuses an entry at run time (limits, build): warns once,
 * naming the entry and why, and answers DEFAULT for it from now on. */
void clsynth_tunedb_reject(clsynth_ctx *ctx, const void *entry, const char *why);

/* The resolver reports every (kernel, key) it resolves: the recorder notes
 * it when it is on. */
void clsynth_tunedb_seen(clsynth_ctx *ctx, const char *kernel, const char *key);

/* Loads the files once (lookups call it lazily). Never fails on a missing,
 * corrupt or stale file: warns and starts empty. -1 only when out of memory. */
int clsynth_tunedb_load(clsynth_ctx *ctx);
/* Path of the device's file (CLSYNTH_TUNE_FILE honoured) / of its class file. */
void clsynth_tunedb_path(clsynth_ctx *ctx, char *out, size_t len);
void clsynth_tunedb_class_path(clsynth_ctx *ctx, char *out, size_t len);
/* Uses `path` instead of the default device file; drops what was loaded
 * (the next lookup loads `path`). NULL returns to the default. */
int clsynth_tunedb_set_path(clsynth_ctx *ctx, const char *path);
/* Uses `path` as the class file (NULL: the default search); "" for none. */
int clsynth_tunedb_set_class_path(clsynth_ctx *ctx, const char *path);
/* Writes the device's entries to path (NULL: its own file), sorted, atomically. */
int clsynth_tunedb_save(clsynth_ctx *ctx, const char *path);

/* Adds or replaces a device entry; an entry of a registered descriptor must
 * pass the load-time checks. */
int clsynth_tunedb_put(clsynth_ctx *ctx, const clsynth_tune_record *r);
/* The stored device record of (kernel, shape). */
bool clsynth_tunedb_get(clsynth_ctx *ctx, const char *kernel, const char *shape, clsynth_tune_record *out);
/* Removes every device record (in memory). */
void clsynth_tunedb_clear(clsynth_ctx *ctx);
size_t clsynth_tunedb_count(clsynth_ctx *ctx);
/* Device record i in sorted order (kernel, shape); NULL when out of range. */
const clsynth_tune_record *clsynth_tunedb_at(clsynth_ctx *ctx, size_t i);
/* Number of class records loaded. */
size_t clsynth_tunedb_class_count(clsynth_ctx *ctx);
/* Entries of the class file shipped in the tree that were tuned for an older
 * version of their kernels: skipped without a warning (the tree re-tunes
 * them, not the user), reported by 'clsynth tune --list'. */
size_t clsynth_tunedb_shipped_stale(clsynth_ctx *ctx);

/* false: every lookup answers NONE (defaults), e.g. for default-vs-tuned
 * benchmarks. */
void clsynth_tunedb_set_enabled(clsynth_ctx *ctx, bool on);

/* Shape recorder: while on, every (kernel, shape) the resolver resolves is
 * remembered once, in first-seen order, with the number of resolutions. */
void clsynth_tunedb_record(clsynth_ctx *ctx, bool on);
size_t clsynth_tunedb_recorded_count(clsynth_ctx *ctx);
bool clsynth_tunedb_recorded(clsynth_ctx *ctx, size_t i, const char **kernel, const char **shape,
                             unsigned long *lookups);
void clsynth_tunedb_recorded_clear(clsynth_ctx *ctx);

/* Export: the device's entries to path. Export-class: the same entries as a
 * class file for this device's class (other devices of the class use them
 * where they have no entry of their own).
 * Import: a file exported on the same device model (vendor and device must
 * match; another driver is refused unless force, then taken over with a
 * warning), merged into the device's file; or a class file of this device's
 * class, installed as the class file. */
int clsynth_tunedb_export(clsynth_ctx *ctx, const char *path);
int clsynth_tunedb_export_class(clsynth_ctx *ctx, const char *path);
int clsynth_tunedb_import(clsynth_ctx *ctx, const char *path, bool force);

/* Number of warnings the loader and the resolver issued (tests). */
unsigned clsynth_tunedb_warnings(clsynth_ctx *ctx);

/* Stored CLBlast parameters (kernels "clblast.*", shape "sgemm") are applied
 * with CLBlastOverrideParameters when the database loads (clcore/clblast_apply.c). */
int clsynth_tunedb_apply_clblast(clsynth_ctx *ctx);
/* After a CLBlast failure: when tuned parameters are applied, warns naming
 * them, replaces them with CLBlast's generic defaults and returns 1 (the
 * caller retries once); 0 when nothing was tuned. */
int clsynth_tunedb_clblast_fallback(clsynth_ctx *ctx, const char *failure);

/* internal: called by clsynth_ctx_free */
void clsynth_tunedb_free(clsynth_ctx *ctx);

#endif
