/* The one place that includes the OpenCL headers: clsynth targets OpenCL 1.2. */
#ifndef CLSYNTH_CL_H
#define CLSYNTH_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR(<n>)"
 * formatted into a static per-thread buffer for codes outside the table. */
const char *clsynth_cl_error_name(cl_int code);

#endif
