/* Table of the kernels/ sources (*.cl), generated at build time
 * (cmake/embed_kernels.cmake). Terminated by an entry with name == NULL. */
#ifndef CLSYNTH_KERNELS_EMBEDDED_H
#define CLSYNTH_KERNELS_EMBEDDED_H

typedef struct clsynth_embedded_kernel {
    const char *name;   /* file name, e.g. "elementwise.cl" */
    const char *source; /* full OpenCL C source */
} clsynth_embedded_kernel;

extern const clsynth_embedded_kernel clsynth_embedded_kernels[];

#endif
