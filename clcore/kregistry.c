/* The registry of kernel descriptors, in the order of clsynth_kdef_id
 * (clcore/kdefs.h). A descriptor missing here is caught twice: the count
 * below stops the build when the enum grows without this table being looked
 * at (ggml's op-count pattern), and tests/test_kernel_sweep.c fails for an
 * empty slot, for a kernels/ file whose tunables no descriptor declares, and
 * for a descriptor the sweep has no reference for. */
#include <string.h>

#include "clcore/kdefs.h"

_Static_assert(CLSYNTH_KDEF_COUNT == 12, "a kernel descriptor was added or removed: update the registry below, "
                                         "then this count");

static const clsynth_kdef *const registry[CLSYNTH_KDEF_COUNT] = {
    [CLSYNTH_KDEF_CONV2D] = &clsynth_kdef_conv2d,
    [CLSYNTH_KDEF_CONV_FWD_DIRECT] = &clsynth_kdef_conv_fwd_direct,
    [CLSYNTH_KDEF_CONV_BWD_DATA_DIRECT] = &clsynth_kdef_conv_bwd_data_direct,
    [CLSYNTH_KDEF_CONV_BWD_WEIGHT_DIRECT] = &clsynth_kdef_conv_bwd_weight_direct,
    [CLSYNTH_KDEF_DWCONV_FWD] = &clsynth_kdef_dwconv_fwd,
    [CLSYNTH_KDEF_DWCONV_BWD] = &clsynth_kdef_dwconv_bwd,
    [CLSYNTH_KDEF_NORM_PARTIAL_STATS] = &clsynth_kdef_norm_partial_stats,
    [CLSYNTH_KDEF_NORM_PARTIAL_DSUMS] = &clsynth_kdef_norm_partial_dsums,
    [CLSYNTH_KDEF_REDUCE_GROUPS] = &clsynth_kdef_reduce_groups,
    [CLSYNTH_KDEF_CLBLAST_XGEMM] = &clsynth_kdef_clblast_xgemm,
    [CLSYNTH_KDEF_CLBLAST_XGEMM_DIRECT] = &clsynth_kdef_clblast_xgemm_direct,
    [CLSYNTH_KDEF_CLBLAST_GEMM_ROUTINE] = &clsynth_kdef_clblast_gemm_routine,
};

const clsynth_kdef *const *clsynth_kdefs(int *count)
{
    *count = CLSYNTH_KDEF_COUNT;
    return registry;
}

const clsynth_kdef *clsynth_kdef_find(const char *key)
{
    for (int i = 0; i < CLSYNTH_KDEF_COUNT; i++)
        if (registry[i] && strcmp(registry[i]->key, key) == 0)
            return registry[i];
    return NULL;
}
