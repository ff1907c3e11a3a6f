/* Descriptors of CLBlast's SGEMM parameters (tuned by clcore/clblast_tune.c,
 * applied with CLBlastOverrideParameters by clcore/tunedb.c). CLBlast's
 * kernels are CLBlast's: these descriptors have no file and no harness; they
 * declare the names, the legal values (those clsynth's search tries) and
 * CLBlast's own legality rules, so a database entry is checked like any
 * other when it loads.
 *
 * Defaults: CLBlast's generic entries (the kDeviceTypeAll "default" rows of
 * its database). They apply only in place of tuned parameters that failed at
 * run time (CLBlast cannot undo an override); otherwise CLBlast chooses its
 * own per-device parameters. */
#include <stdio.h>
#include <string.h>

#include "clcore/kdefs.h"

static int gemm_format(const void *shape, char *key, size_t len)
{
    (void)shape;
    return snprintf(key, len, "sgemm");
}

static bool gemm_parse(const char *key, void *shape)
{
    memset(shape, 0, sizeof(clsynth_gemm_key));
    return strcmp(key, "sgemm") == 0;
}

static const clsynth_gemm_key only_key[] = { { 0 } };

/* The rules of CLBlast's own Xgemm tuner (GEMMK = 0). */
static bool xgemm_valid(const int *v, const void *shape)
{
    (void)shape;
    for (int i = X_KWG; i <= X_VWN; i++)
        if (v[i] < 0 || (v[i] == 0 && i != X_SA && i != X_SB && i != X_STRM && i != X_STRN))
            return false;
    if (v[X_KWG] % v[X_KWI] || v[X_MWG] % (v[X_MDIMC] * v[X_VWM]) || v[X_NWG] % (v[X_NDIMC] * v[X_VWN]) ||
        v[X_MWG] % (v[X_MDIMA] * v[X_VWM]) || v[X_NWG] % (v[X_NDIMB] * v[X_VWN]))
        return false;
    int threads = v[X_MDIMC] * v[X_NDIMC];
    if (threads % v[X_MDIMA] || threads % v[X_NDIMB] || v[X_KWG] % (threads / v[X_MDIMA]) ||
        v[X_KWG] % (threads / v[X_NDIMB]))
        return false;
    return !((v[X_STRM] && !v[X_SA]) || (v[X_STRN] && !v[X_SB])); /* strides only matter with local memory */
}

static bool xgemm_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    (void)shape;
    (void)lim;
    local[0] = (size_t)v[X_MDIMC];
    local[1] = (size_t)v[X_NDIMC];
    local[2] = 1;
    return v[X_MDIMC] > 0 && v[X_NDIMC] > 0;
}

static size_t xgemm_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)shape;
    (void)local;
    return ((size_t)v[X_SA] * (size_t)v[X_KWG] * (size_t)v[X_MWG] +
            (size_t)v[X_SB] * (size_t)v[X_KWG] * (size_t)v[X_NWG]) * sizeof(float);
}

#define P(nm, ...) { .name = nm, .kind = CLSYNTH_K_DEFINE, __VA_ARGS__ }
#define V(...) .n = sizeof((int[]){ __VA_ARGS__ }) / sizeof(int), .values = { __VA_ARGS__ }

const clsynth_kdef clsynth_kdef_clblast_xgemm = {
    .key = "clblast.Xgemm", .op = "CLBlastSgemm (indirect kernel)", .n_params = 16,
    .params = {
        P("GEMMK", V(0), .def = 0), P("KREG", V(1), .def = 1), P("KWG", V(16, 32), .def = 32),
        P("KWI", V(2, 8), .def = 2), P("MDIMA", V(8, 16, 32), .def = 8), P("MDIMC", V(8, 16, 32), .def = 8),
        P("MWG", V(16, 32, 64, 128), .def = 32), P("NDIMB", V(8, 16, 32), .def = 16),
        P("NDIMC", V(8, 16, 32), .def = 16), P("NWG", V(16, 32, 64, 128), .def = 32), P("SA", V(0, 1), .def = 1),
        P("SB", V(0, 1), .def = 1), P("STRM", V(0, 1), .def = 0), P("STRN", V(0, 1), .def = 0),
        P("VWM", V(1, 2, 4, 8), .def = 4), P("VWN", V(1, 2, 4, 8), .def = 2),
    },
    .shape_size = sizeof(clsynth_gemm_key), .format = gemm_format, .parse = gemm_parse,
    .valid = xgemm_valid, .local_size = xgemm_local, .local_mem = xgemm_lmem,
    .test_shapes = only_key, .n_test_shapes = 1,
};

static bool direct_valid(const int *v, const void *shape)
{
    (void)shape;
    for (int i = 0; i <= D_WGD; i++)
        if (v[i] < 0 || (v[i] == 0 && i != D_PADA && i != D_PADB))
            return false;
    int w = v[D_WGD];
    if (w % v[D_KWID] || w % (v[D_MDIMCD] * v[D_VWMD]) || w % (v[D_NDIMCD] * v[D_VWND]) ||
        w % (v[D_MDIMAD] * v[D_VWMD]) || w % (v[D_NDIMBD] * v[D_VWND]))
        return false;
    int threads = v[D_MDIMCD] * v[D_NDIMCD];
    return !(threads % v[D_MDIMAD] || threads % v[D_NDIMBD] || w % (threads / v[D_MDIMAD]) ||
             w % (threads / v[D_NDIMBD]));
}

static bool direct_local(const int *v, const void *shape, const clsynth_klimits *lim, size_t local[3])
{
    (void)shape;
    (void)lim;
    local[0] = (size_t)v[D_MDIMCD];
    local[1] = (size_t)v[D_NDIMCD];
    local[2] = 1;
    return v[D_MDIMCD] > 0 && v[D_NDIMCD] > 0;
}

static size_t direct_lmem(const int *v, const void *shape, const size_t local[3])
{
    (void)shape;
    (void)local;
    size_t w = (size_t)v[D_WGD];
    return (w * (w + (size_t)v[D_PADA]) + w * (w + (size_t)v[D_PADB])) * sizeof(float);
}

const clsynth_kdef clsynth_kdef_clblast_xgemm_direct = {
    .key = "clblast.XgemmDirect", .op = "CLBlastSgemm (direct kernel)", .n_params = 10,
    .params = {
        P("KWID", V(2, 8, 16), .def = 2), P("MDIMAD", V(8, 16, 32), .def = 8), P("MDIMCD", V(8, 16, 32), .def = 8),
        P("NDIMBD", V(8, 16, 32), .def = 8), P("NDIMCD", V(8, 16, 32), .def = 8), P("PADA", V(0, 1), .def = 1),
        P("PADB", V(0, 1), .def = 1), P("VWMD", V(1, 2, 4, 8), .def = 1), P("VWND", V(1, 2, 4, 8), .def = 2),
        P("WGD", V(8, 16, 32, 64), .def = 16),
    },
    .shape_size = sizeof(clsynth_gemm_key), .format = gemm_format, .parse = gemm_parse,
    .valid = direct_valid, .local_size = direct_local, .local_mem = direct_lmem,
    .test_shapes = only_key, .n_test_shapes = 1,
};

/* GEMMs with m*n*k below XGEMM_MIN_INDIRECT_SIZE^3 run the direct kernel */
const clsynth_kdef clsynth_kdef_clblast_gemm_routine = {
    .key = "clblast.GemmRoutine", .op = "CLBlastSgemm (kernel choice)", .n_params = 1,
    .params = { P("XGEMM_MIN_INDIRECT_SIZE", .n = 0, .lo = 0, .hi = 1 << 30, .def = 704) },
    .shape_size = sizeof(clsynth_gemm_key), .format = gemm_format, .parse = gemm_parse,
    .test_shapes = only_key, .n_test_shapes = 1,
};
