/* Kernel descriptors: everything about one tunable kernel in one place.
 *
 * A descriptor (clsynth_kdef) names the kernel ("dwconv_fwd": its key in the
 * tuning database), its kernels/ file and kernel functions, every tunable
 * with its kind, legal values and default per device class, the shape the op
 * runs at (a typed struct of the op's own, with one format/parse pair for the
 * database key), the constraints between values, the work-group and local
 * memory a configuration implies, a few test and bench shapes, and a harness
 * that runs the public op at a shape (for the tuner, `clsynth bench` and the
 * op sweep test). The .cl file documents its tunables and has no defaults of
 * its own (it fails to build with #error when one is missing): the values
 * live here and in the tuning database.
 *
 * Each op keeps its descriptor next to it (clcore/ops_conv_kdef.c, ...);
 * clcore/kregistry.c lists them. Ops get a configuration from the one
 * resolver, clsynth_kconfig (clcore/kconfig.h): values as name/value
 * integers (cfg.v[i] is the value of params[i]), the kernels built with the
 * -D options, the work-group and the local memory. */
#ifndef CLSYNTH_KDEF_H
#define CLSYNTH_KDEF_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"
#include "clcore/tensor.h"

#define CLSYNTH_K_MAX_PARAMS 16  /* CLBlast's Xgemm has 16 */
#define CLSYNTH_K_MAX_VALUES 12
#define CLSYNTH_K_MAX_CLASS 4
#define CLSYNTH_K_MAX_KERNELS 4
#define CLSYNTH_K_MAX_SHAPE 12   /* ints in any descriptor's shape struct */
#define CLSYNTH_K_KEY_MAX 96     /* formatted shape key, with its terminator */
#define CLSYNTH_K_MAX_BEFORE 8   /* descriptors tuned before another at its shape */

typedef enum clsynth_kkind {
    CLSYNTH_K_DEFINE = 0, /* "-DNAME=value" in the kernel's build options */
    CLSYNTH_K_HOST,       /* an integer the host uses (how it cuts the work); no rebuild */
    CLSYNTH_K_LOCAL0,     /* work-group size, dimension 0; 0 = the descriptor's automatic choice */
    CLSYNTH_K_LOCAL1,     /* dimension 1 (held at values[0] while LOCAL0 is 0) */
    CLSYNTH_K_LOCAL2,     /* dimension 2 (likewise) */
    CLSYNTH_K_ALGO,       /* algorithm of a multi-algorithm op; 0 = automatic (the descriptor's fit) */
} clsynth_kkind;

/* A default measured on a device class: the class string of
 * clsynth_device_class ("pocl-cpu", "nvidia", ...) or a device type ("cpu",
 * "gpu", "accelerator"); the first that matches the device wins. */
typedef struct clsynth_kclass_value {
    const char *cls;
    int value;
} clsynth_kclass_value;

typedef struct clsynth_ktunable {
    const char *name;
    clsynth_kkind kind;
    int n;                               /* legal values in values[]; 0: any integer in [lo, hi] */
    int values[CLSYNTH_K_MAX_VALUES];    /* in the tuner's candidate order */
    int lo, hi;                          /* the range when n == 0 */
    int def;                             /* default on any device */
    clsynth_kclass_value by_class[CLSYNTH_K_MAX_CLASS]; /* measured class defaults (cls NULL ends) */
    int only_algo;                       /* > 0: varies only while the ALGO parameter equals it */
} clsynth_ktunable;

/* Storage for any descriptor's shape struct (all ints). */
typedef struct clsynth_kshape {
    int v[CLSYNTH_K_MAX_SHAPE];
} clsynth_kshape;

/* The limits a configuration must fit: the context's (real or emulated), with
 * max_wg lowered to the built kernels' CL_KERNEL_WORK_GROUP_SIZE once known. */
typedef struct clsynth_klimits {
    size_t max_wg;
    size_t max_item[3];
    cl_ulong local_mem;
    const clsynth_device_info *dev; /* the device, for defaults that depend on more than limits (NULL: none) */
} clsynth_klimits;

struct clsynth_kdef;

/* A configuration forced on an op by its caller (the tuner, bench, tests),
 * passed explicitly to the op (e.g. clsynth_cond_dwconv_forced). It applies
 * to the descriptor `def` only; the op's other kernels resolve as usual,
 * unless `next` chains a force for one of them (a conv forced to im2col +
 * GEMM with its GEMMs forced onto one algorithm). */
typedef struct clsynth_kforce {
    const struct clsynth_kdef *def;
    struct clsynth_kforce *next;   /* forces of further descriptors, or NULL */
    bool defaults;                 /* the built-in defaults, ignoring every database */
    int v[CLSYNTH_K_MAX_PARAMS];   /* otherwise these values */
    unsigned long hits;            /* ops count here each time they resolve with it */
} clsynth_kforce;

/* An op instance the harness builds at a shape: persistent inputs (the
 * tuner sets requires-grad per the descriptor's backward/grad_mask). */
typedef struct clsynth_kbench {
    clsynth_kshape shape;    /* the parsed shape (the descriptor's struct) */
    clsynth_tensor *in[6];
    int n_in;
    double flops, bytes;     /* work of one forward run (0 = unknown) */
} clsynth_kbench;

typedef struct clsynth_kdef {
    const char *key;                          /* tuning-database key */
    const char *op;                           /* the public op it belongs to */
    const char *file;                         /* kernels/<file>; NULL: not an OpenCL kernel of ours */
    const char *revision;                     /* without a file: names what the algorithms are, so
                                                 entries tuned before they changed are stale (NULL: never) */
    const char *kernels[CLSYNTH_K_MAX_KERNELS]; /* built with the configuration's -D options */
    int kernels_algo;                         /* > 0: kernels[] run only when ALGO equals it */
    int dims;                                 /* launch dimensions of the work-group */
    bool backward;                            /* runs in the op's backward (harness runs include it) */
    unsigned grad_mask;                       /* with backward: bit i = in[i] requires grad (0: all) */
    const char *before[CLSYNTH_K_MAX_BEFORE]; /* keys tuned first at the same shape */
    bool tune_first;                          /* its jobs run before all others (the other ops run on it) */
    int n_params;
    clsynth_ktunable params[CLSYNTH_K_MAX_PARAMS];

    /* The shape: a struct of sizeof shape_size, one format/parse pair for its
     * database key. parse returns false for a key of another format. */
    size_t shape_size;
    int (*format)(const void *shape, char *key, size_t len);
    bool (*parse)(const char *key, void *shape);

    /* Constraints between values at a shape (NULL: none). */
    bool (*valid)(const int *v, const void *shape);
    /* Whether values v can run on this device at all (NULL: any), e.g. an
     * algorithm that needs the host CPU; checked with the limits (the
     * resolver, the tuner's enumeration). False with why. */
    bool (*device_ok)(const clsynth_device_info *dev, const int *v, char *why, size_t len);
    /* The work-group values v launch with under lim: explicit, implied by
     * the -D values, or automatic (LOCAL0 = 0); local[0] = 0 leaves it to the
     * launch helper (always legal). False when nothing fits. NULL: the launch
     * helper's default. */
    bool (*local_size)(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3]);
    /* Local memory in bytes values v need with that work-group (NULL: none). */
    size_t (*local_mem)(const int *v, const void *shape, const size_t local[3]);
    /* Adapts the default values to the shape and the limits (automatic
     * algorithm, tiles no larger than the image, tiles that fit). NULL: none. */
    void (*fit)(int *v, const void *shape, const clsynth_klimits *lim);

    /* Shapes (arrays of the shape struct): awkward ones for tests (the first
     * is the smallest, used under simulators) and representative ones for
     * `clsynth bench`. */
    const void *test_shapes;
    int n_test_shapes;
    const void *bench_shapes;
    int n_bench_shapes;

    /* Harness (NULL for kernels another library runs): builds the inputs at
     * b->shape and runs the public op under `force` (a forward; the caller
     * runs the backward). */
    int (*setup)(clsynth_ctx *ctx, clsynth_kbench *b);
    clsynth_tensor *(*run)(clsynth_ctx *ctx, clsynth_kbench *b, clsynth_kforce *force);
} clsynth_kdef;

/* ---- the registry (clcore/kregistry.c) ---- */
const clsynth_kdef *const *clsynth_kdefs(int *count);
const clsynth_kdef *clsynth_kdef_find(const char *key);

/* ---- values (clcore/kdef.c) ---- */
/* The built-in default values for this device (class defaults, not yet fit). */
void clsynth_kdef_defaults(const clsynth_kdef *d, const clsynth_device_info *dev, int *v);
/* Whether parameter i takes part in the configuration given the others. */
bool clsynth_kdef_param_active(const clsynth_kdef *d, const int *v, int i);
/* x is among parameter p's legal values. */
bool clsynth_ktunable_legal(const clsynth_ktunable *p, int x);
/* Values, constraints: a configuration the tuner may enumerate (no limits). */
bool clsynth_kdef_values_ok(const clsynth_kdef *d, const int *v, const void *shape, char *why, size_t len);

/* Candidates: size of the full space and decoding of number idx (false for a
 * duplicate encoding of an inactive parameter). */
size_t clsynth_kdef_space(const clsynth_kdef *d);
bool clsynth_kdef_decode(const clsynth_kdef *d, size_t idx, int *v);

/* The build options of values v: "-DA=1 -DB=2" of the DEFINE parameters. */
void clsynth_kdef_options(const clsynth_kdef *d, const int *v, char *out, size_t len);
/* The database fields of values v: opts (DEFINE and HOST values as -D),
 * local[3], algo. */
void clsynth_kdef_to_fields(const clsynth_kdef *d, const int *v, char *opts, size_t len, size_t local[3],
                            int *algo);
/* Inverse, the one parser of "-DNAME=value" strings: every name must be a
 * DEFINE or HOST tunable of d with a legal value, local and algo legal too;
 * an absent parameter takes its generic default. False with why. */
bool clsynth_kdef_from_fields(const clsynth_kdef *d, const char *opts, const size_t local[3], int algo, int *v,
                              char *why, size_t len);
/* "A=1 B=2 local=8x8x1" for messages. */
void clsynth_kdef_describe(const clsynth_kdef *d, const int *v, char *out, size_t len);

/* Limits of the context (ctx->max_wg, max_item, local_mem). */
clsynth_klimits clsynth_klimits_of(const clsynth_ctx *ctx);
/* The work-group and local memory of values v at shape under lim; false
 * with why when they do not fit. */
bool clsynth_kdef_fits(const clsynth_kdef *d, const int *v, const void *shape, const clsynth_klimits *lim,
                       size_t local[3], size_t *local_mem, char *why, size_t len);

/* ---- source hashes (clcore/kdef_src.c) ---- */

/* The hash that dates d's tuning entries: FNV-1a of the part of its kernel
 * file its kernels depend on (the file without comments, whitespace runs
 * folded, without other descriptors' __kernel functions), or of the revision
 * string of a descriptor without a file (0 for neither). Entries tuned under
 * another are stale. */
unsigned clsynth_kdef_src_hash(const clsynth_kdef *d);

/* The former hash, of the whole file as it is (0 without a file): entries
 * written under it are current while the file is unchanged. */
unsigned clsynth_kdef_src_legacy(const clsynth_kdef *d);

/* The text clsynth_kdef_src_hash hashes, of kernel source src (malloc'd;
 * NULL when out of memory). */
char *clsynth_kdef_own_source(const clsynth_kdef *d, const char *src);

/* Smallest power of two >= x (x >= 1), for the descriptors' shape rules. */
static inline int clsynth_pow2_ceil(int x)
{
    int p = 1;
    while (p < x)
        p *= 2;
    return p;
}

/* Harness helper: appends a persistent input (n, c, h, w) of deterministic
 * values in [-scale, scale) from seed to b->in. Returns 0 or -1. */
int clsynth_kbench_input(clsynth_ctx *ctx, clsynth_kbench *b, const char *name, int n, int c, int h, int w,
                         unsigned seed, float scale);

/* Test shape i of d (a pointer to its shape struct). */
const void *clsynth_kdef_test_shape(const clsynth_kdef *d, int i);
/* The shape key of test shape i / bench shape i into key. */
void clsynth_kdef_test_key(const clsynth_kdef *d, int i, char *key, size_t len);
void clsynth_kdef_bench_key(const clsynth_kdef *d, int i, char *key, size_t len);

#endif
