/* Tables of files embedded at build time (cmake/embed_kernels.cmake): the
 * kernels/ sources and the shipped class tuning databases (tuning/<class>.txt).
 * Each is terminated by an entry with name == NULL. */
#ifndef CLSYNTH_KERNELS_EMBEDDED_H
#define CLSYNTH_KERNELS_EMBEDDED_H

typedef struct clsynth_embedded_kernel {
    const char *name;   /* file name, e.g. "elementwise.cl" */
    const char *source; /* full OpenCL C source */
} clsynth_embedded_kernel;

extern const clsynth_embedded_kernel clsynth_embedded_kernels[];
/* The class-level tuning databases shipped with the tree (tuning/<class>.txt). */
extern const clsynth_embedded_kernel clsynth_embedded_tuning[];

#endif
