/* Platform/device enumeration and selection. */
#include "clcore/device.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void info_str(cl_device_id d, cl_device_info what, char *out, size_t len)
{
    out[0] = 0;
    if (clGetDeviceInfo(d, what, len, out, NULL) != CL_SUCCESS)
        snprintf(out, len, "?");
    out[len - 1] = 0;
    /* trim trailing spaces (some drivers pad names) */
    for (size_t n = strlen(out); n > 0 && isspace((unsigned char)out[n - 1]); n--)
        out[n - 1] = 0;
}

static int fill_info(clsynth_device_info *d, cl_platform_id p, cl_device_id id, clsynth_err *err)
{
    memset(d, 0, sizeof *d);
    d->platform = p;
    d->id = id;
    cl_int rc = clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof d->platform_name, d->platform_name, NULL);
    if (rc != CL_SUCCESS)
        return clsynth_fail(err, "clGetPlatformInfo failed: %s", clsynth_cl_error_name(rc));
    info_str(id, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    info_str(id, CL_DEVICE_NAME, d->name, sizeof d->name);
    info_str(id, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    info_str(id, CL_DEVICE_VERSION, d->version, sizeof d->version);
    info_str(id, CL_DEVICE_OPENCL_C_VERSION, d->c_version, sizeof d->c_version);
    struct { cl_device_info what; void *dst; size_t size; } q[] = {
        { CL_DEVICE_TYPE, &d->type, sizeof d->type },
        { CL_DEVICE_MAX_COMPUTE_UNITS, &d->compute_units, sizeof d->compute_units },
        { CL_DEVICE_MAX_WORK_GROUP_SIZE, &d->max_wg, sizeof d->max_wg },
        { CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, &d->item_dims, sizeof d->item_dims },
        { CL_DEVICE_LOCAL_MEM_SIZE, &d->local_mem, sizeof d->local_mem },
        { CL_DEVICE_LOCAL_MEM_TYPE, &d->local_type, sizeof d->local_type },
        { CL_DEVICE_GLOBAL_MEM_SIZE, &d->global_mem, sizeof d->global_mem },
        { CL_DEVICE_MAX_MEM_ALLOC_SIZE, &d->max_alloc, sizeof d->max_alloc },
        { CL_DEVICE_MEM_BASE_ADDR_ALIGN, &d->mem_base_align_bits, sizeof d->mem_base_align_bits },
        { CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, &d->pref_vec_float, sizeof d->pref_vec_float },
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        rc = clGetDeviceInfo(id, q[i].what, q[i].size, q[i].dst, NULL);
        if (rc != CL_SUCCESS)
            return clsynth_fail(err, "clGetDeviceInfo(%u) failed on '%s': %s", (unsigned)q[i].what,
                                d->name, clsynth_cl_error_name(rc));
    }
    size_t items[16] = {0};
    rc = clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL);
    if (rc != CL_SUCCESS)
        return clsynth_fail(err, "clGetDeviceInfo(CL_DEVICE_MAX_WORK_ITEM_SIZES) failed: %s",
                            clsynth_cl_error_name(rc));
    for (int i = 0; i < 3; i++)
        d->max_item[i] = (cl_uint)i < d->item_dims ? items[i] : 1;
    char ext[8192];
    info_str(id, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
    d->fp16 = strstr(ext, "cl_khr_fp16") != NULL;
    d->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
    return 0;
}

int clsynth_devices_list(clsynth_device_info **out, int *count, clsynth_err *err)
{
    *out = NULL;
    *count = 0;
    cl_uint np = 0;
    cl_int rc = clGetPlatformIDs(0, NULL, &np);
    if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || np == 0)
        return clsynth_fail(err, "no OpenCL platform found: install an OpenCL driver "
                                 "(for the CPU: the Debian package 'pocl-opencl-icd')");
    if (rc != CL_SUCCESS)
        return clsynth_fail(err, "clGetPlatformIDs failed: %s", clsynth_cl_error_name(rc));
    cl_platform_id plats[32];
    if (np > 32)
        np = 32;
    rc = clGetPlatformIDs(np, plats, NULL);
    if (rc != CL_SUCCESS)
        return clsynth_fail(err, "clGetPlatformIDs failed: %s", clsynth_cl_error_name(rc));
    clsynth_device_info *list = NULL;
    int n = 0;
    for (cl_uint p = 0; p < np; p++) {
        cl_uint nd = 0;
        rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd);
        if (rc == CL_DEVICE_NOT_FOUND || nd == 0)
            continue;
        if (rc != CL_SUCCESS) {
            free(list);
            return clsynth_fail(err, "clGetDeviceIDs failed: %s", clsynth_cl_error_name(rc));
        }
        cl_device_id ids[64];
        if (nd > 64)
            nd = 64;
        rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, ids, NULL);
        if (rc != CL_SUCCESS) {
            free(list);
            return clsynth_fail(err, "clGetDeviceIDs failed: %s", clsynth_cl_error_name(rc));
        }
        clsynth_device_info *grown = realloc(list, sizeof *list * (size_t)(n + (int)nd));
        if (!grown) {
            free(list);
            return clsynth_fail(err, "out of host memory listing devices");
        }
        list = grown;
        for (cl_uint i = 0; i < nd; i++) {
            if (fill_info(&list[n], plats[p], ids[i], err)) {
                free(list);
                return -1;
            }
            list[n].index = n;
            n++;
        }
    }
    if (n == 0) {
        free(list);
        return clsynth_fail(err, "OpenCL platforms found, but no device");
    }
    *out = list;
    *count = n;
    return 0;
}

const char *clsynth_device_type_name(cl_device_type t)
{
    if (t & CL_DEVICE_TYPE_GPU) return "GPU";
    if (t & CL_DEVICE_TYPE_ACCELERATOR) return "ACCELERATOR";
    if (t & CL_DEVICE_TYPE_CPU) return "CPU";
    return "OTHER";
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return 0;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

const char *clsynth_device_class(const clsynth_device_info *d)
{
    int cpu = (d->type & CL_DEVICE_TYPE_CPU) != 0;
    /* CPUs: the implementation decides (each compiles differently) */
    if (cpu && contains_nocase(d->platform_name, "Portable Computing Language"))
        return "pocl-cpu";
    if (cpu && contains_nocase(d->platform_name, "rusticl"))
        return "rusticl-cpu";
    if (cpu && contains_nocase(d->platform_name, "Intel(R) OpenCL"))
        return "intel-cpu";
    if (cpu)
        return "cpu";
    if (contains_nocase(d->vendor, "nvidia")) return "nvidia";
    if (contains_nocase(d->vendor, "advanced micro") || contains_nocase(d->vendor, "amd")) return "amd";
    if (contains_nocase(d->vendor, "intel")) return "intel";
    return "other";
}

static void list_devices(const clsynth_device_info *devs, int count, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < count && used < len; i++) {
        int w = snprintf(buf + used, len - used, "\n  [%d] %s | %s | %s (%s)", devs[i].index,
                         devs[i].platform_name, devs[i].vendor, devs[i].name,
                         clsynth_device_type_name(devs[i].type));
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int clsynth_device_select(const clsynth_device_info *devs, int count, const char *spec, int *chosen,
                          clsynth_err *err)
{
    if (spec && *spec) {
        char *end = NULL;
        long idx = strtol(spec, &end, 10);
        if (end && *end == 0) {
            if (idx >= 0 && idx < count) {
                *chosen = (int)idx;
                return 0;
            }
        } else {
            for (int i = 0; i < count; i++) {
                if (contains_nocase(devs[i].vendor, spec) || contains_nocase(devs[i].name, spec) ||
                    contains_nocase(devs[i].platform_name, spec)) {
                    *chosen = i;
                    return 0;
                }
            }
        }
        char listing[4096];
        list_devices(devs, count, listing, sizeof listing);
        return clsynth_fail(err, "no OpenCL device matches '%s' (an index or a part of the vendor "
                                 "or device name); devices:%s", spec, listing);
    }
    const cl_device_type order[] = { CL_DEVICE_TYPE_GPU, CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_CPU };
    for (size_t o = 0; o < 3; o++)
        for (int i = 0; i < count; i++)
            if (devs[i].type & order[o]) {
                *chosen = i;
                return 0;
            }
    *chosen = 0;
    return count > 0 ? 0 : clsynth_fail(err, "no OpenCL device");
}

bool clsynth_device_host_memory(const clsynth_device_info *d)
{
    const char *cls = clsynth_device_class(d); /* CPU type and platform, never the vendor id */
    if (strcmp(cls, "pocl-cpu") == 0 || strcmp(cls, "intel-cpu") == 0 || strcmp(cls, "rusticl-cpu") == 0)
        return true;
    /* the Oclgrind simulator keeps its buffers in host memory too (it calls
     * its device a GPU): the tests run the host algorithms there, so that
     * Oclgrind checks the kernels around them and the map protocol (CLBlast
     * takes minutes to simulate) */
    return strcmp(d->platform_name, "Oclgrind") == 0;
}
