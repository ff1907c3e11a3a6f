/* Platform and device discovery, and device selection by SPEC. */
#ifndef CLSYNTH_DEVICE_H
#define CLSYNTH_DEVICE_H

#include <stdbool.h>

#include "clcore/cl.h"
#include "clcore/error.h"

typedef struct clsynth_device_info {
    int index; /* position in the list of all devices of all platforms */
    cl_platform_id platform;
    cl_device_id id;
    char platform_name[128];
    char vendor[128];
    char name[128];
    char driver[64];
    char version[64];   /* CL_DEVICE_VERSION */
    char c_version[64]; /* CL_DEVICE_OPENCL_C_VERSION */
    cl_device_type type;
    cl_uint compute_units;
    size_t max_wg;         /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    cl_uint item_dims;
    size_t max_item[3];    /* CL_DEVICE_MAX_WORK_ITEM_SIZES */
    cl_ulong local_mem;
    cl_device_local_mem_type local_type;
    cl_ulong global_mem;
    cl_ulong max_alloc;
    cl_uint mem_base_align_bits;
    int fp16, fp64;
    cl_uint pref_vec_float;
} clsynth_device_info;

/* All devices of all platforms, in platform order. *out is malloc'ed. */
int clsynth_devices_list(clsynth_device_info **out, int *count, clsynth_err *err);

/* Picks a device: spec is an index ("1"), or a case-insensitive substring of the
 * vendor or device name ("nvidia", "pthread"); NULL or "" picks the first GPU,
 * else the first accelerator, else the first CPU. No match: an error listing
 * every device. */
int clsynth_device_select(const clsynth_device_info *devs, int count, const char *spec,
                          int *chosen, clsynth_err *err);

/* "GPU", "CPU", "ACCELERATOR", ... */
const char *clsynth_device_type_name(cl_device_type type);

/* A short device class for defaults and the class-level tuning database:
 * GPUs by vendor ("nvidia", "amd", "intel", "other"), CPUs by OpenCL
 * implementation ("pocl-cpu", "rusticl-cpu", "intel-cpu", else "cpu").
 * Never decided by vendor id alone (PoCL reports Intel's id on AMD CPUs). */
const char *clsynth_device_class(const clsynth_device_info *d);

/* Whether the device is the host CPU with its buffers in host memory (PoCL's
 * CPU device, Intel's CPU runtime, rusticl on llvmpipe, and the Oclgrind
 * simulator), so that a host library can compute on them mapped in place
 * (clcore/hostmap.h). */
bool clsynth_device_host_memory(const clsynth_device_info *d);

#endif
