/* clsynth devices: one row per OpenCL device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/device.h"
#include "tools/commands.h"

static void mib(cl_ulong b, char *out, size_t len)
{
    if (b >= (1ULL << 30))
        snprintf(out, len, "%.1fG", b / (double)(1ULL << 30));
    else if (b >= (1ULL << 20))
        snprintf(out, len, "%.0fM", b / (double)(1ULL << 20));
    else
        snprintf(out, len, "%.0fK", b / 1024.0);
}

int clsynth_cmd_devices(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    clsynth_err err;
    clsynth_device_info *devs = NULL;
    int count = 0;
    if (clsynth_devices_list(&devs, &count, &err)) {
        fprintf(stderr, "clsynth devices: %s\n", err.msg);
        return 1;
    }
    int chosen = -1;
    clsynth_err serr;
    if (clsynth_device_select(devs, count, getenv("CLSYNTH_DEVICE"), &chosen, &serr))
        chosen = -1;
    printf("%-3s %-28s %-22s %-34s %-5s %-18s %-16s %4s %6s %-16s %-12s %7s %8s %5s %-9s %3s\n", "idx",
           "platform", "vendor", "device", "type", "driver", "opencl_c", "CUs", "max_wg", "max_items",
           "local_mem", "global", "max_alloc", "fp16", "fp64", "vec");
    for (int i = 0; i < count; i++) {
        const clsynth_device_info *d = &devs[i];
        char items[48], local[32], g[16], a[16];
        snprintf(items, sizeof items, "%zux%zux%zu", d->max_item[0], d->max_item[1], d->max_item[2]);
        mib(d->local_mem, local, sizeof local);
        snprintf(local + strlen(local), sizeof local - strlen(local), " %s",
                 d->local_type == CL_LOCAL ? "local" : "global");
        mib(d->global_mem, g, sizeof g);
        mib(d->max_alloc, a, sizeof a);
        printf("%-3d %-28.28s %-22.22s %-34.34s %-5s %-18.18s %-16.16s %4u %6zu %-16s %-12s %7s %8s %5s %-9s %3u%s\n",
               d->index, d->platform_name, d->vendor, d->name, clsynth_device_type_name(d->type), d->driver,
               d->c_version, d->compute_units, d->max_wg, items, local, g, a, d->fp16 ? "yes" : "no",
               d->fp64 ? "yes" : "no", d->pref_vec_float, i == chosen ? "  <- default" : "");
    }
    free(devs);
    return 0;
}
