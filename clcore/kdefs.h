/* The registered kernel descriptors (clcore/kdef.h), their shape structs and
 * the index of each tunable in cfg.v[]. Each descriptor is defined next to
 * its op; clcore/kregistry.c lists them in the order of this enum. */
#ifndef CLSYNTH_KDEFS_H
#define CLSYNTH_KDEFS_H

#include "clcore/kdef.h"

typedef enum clsynth_kdef_id {
    CLSYNTH_KDEF_CONV2D = 0,
    CLSYNTH_KDEF_CONV_FWD_DIRECT,
    CLSYNTH_KDEF_CONV_BWD_DATA_DIRECT,
    CLSYNTH_KDEF_CONV_BWD_WEIGHT_DIRECT,
    CLSYNTH_KDEF_CONV_IGEMM_FWD,
    CLSYNTH_KDEF_CONV_IGEMM_BWD_DATA,
    CLSYNTH_KDEF_CONV_IGEMM_BWD_WEIGHT,
    CLSYNTH_KDEF_CONV_WINOGRAD,
    CLSYNTH_KDEF_DWCONV_FWD,
    CLSYNTH_KDEF_DWCONV_BWD,
    CLSYNTH_KDEF_NORM_PARTIAL_STATS,
    CLSYNTH_KDEF_NORM_PARTIAL_DSUMS,
    CLSYNTH_KDEF_REDUCE_GROUPS,
    CLSYNTH_KDEF_CLBLAST_XGEMM,
    CLSYNTH_KDEF_CLBLAST_XGEMM_DIRECT,
    CLSYNTH_KDEF_CLBLAST_GEMM_ROUTINE,
    CLSYNTH_KDEF_GEMM,
    CLSYNTH_KDEF_COUNT
} clsynth_kdef_id;

/* ---- conv2d (clcore/ops_conv_kdef.c) ---- */
/* x (n, cin, h, w) convolved with w (cout, cin, kh, kw), stride, zero pad.
 * Key "N<n>.C<cin>.H<h>.W<w>.O<cout>.K<kh>x<kw>.S<stride>.P<pad>". */
typedef struct clsynth_conv_shape {
    int n, cin, h, w, cout, kh, kw, stride, pad;
} clsynth_conv_shape;
enum { CONV2D_ALGO, CONV2D_GEMM_BATCH, CONV2D_COL_ROW_ITEMS, CONV2D_DNNL_LAYOUT };
/* CONV2D_GEMM_BATCH values: how the im2col + GEMM algorithm covers the samples */
enum {
    CONV2D_GEMM_MERGED = 1,  /* one GEMM for all samples side by side (N*P columns), layouts permuted */
    CONV2D_GEMM_STRIDED = 2, /* one product per sample (a batched GEMM call), no permutes */
};
/* CONV2D_DNNL_LAYOUT values (a build with oneDNN): the activations' layout oneDNN computes in */
enum {
    CONV2D_DNNL_BLOCKED = 1, /* the primitive's choice (channel-blocked), reordered from and to NCHW */
    CONV2D_DNNL_PLAIN = 2,   /* NCHW as stored: no reorders of x and y (a GEMM-based primitive) */
};
enum { CONV_FWD_COUT_PER_ITEM, CONV_FWD_CIN_CHUNK, CONV_FWD_TILE_W, CONV_FWD_TILE_H, CONV_FWD_USE_LOCAL };
enum { CONV_BWD_COUT_PER_ITEM, CONV_BWD_LOCAL_X, CONV_BWD_LOCAL_Y };
extern const clsynth_kdef clsynth_kdef_conv2d, clsynth_kdef_conv_fwd_direct, clsynth_kdef_conv_bwd_data_direct,
    clsynth_kdef_conv_bwd_weight_direct;
int clsynth_conv_out_size(int in, int k, int stride, int pad);
/* The conv shape key's format and parser (all conv descriptors share them). */
int clsynth_conv_shape_format(const void *shape, char *key, size_t len);
bool clsynth_conv_shape_parse(const char *key, void *shape);

/* ---- implicit GEMM and Winograd (clcore/ops_conv_igemm_kdef.c) ----
 * Shape: the conv's (clsynth_conv_shape). The same GEMM tunables for the
 * forward (with its fused epilogue), the backward data, the backward weight
 * (plus its K-split) and Winograd's 16 batched GEMMs. */
enum { IG_MWG, IG_NWG, IG_KWG, IG_MDIMC, IG_NDIMC, IG_VWM, IG_VWN, IG_USE_LOCAL, IG_KSPLIT };
/* Winograd's ALGO (after the GEMM tunables): who runs its 16 batched GEMMs,
 * our igemm_batched kernel (with those tunables) or clsynth_gemm (the "gemm"
 * descriptor's algorithm: the host BLAS on CPU devices, CLBlast). */
enum { WINO_GEMM = IG_USE_LOCAL + 1 };
enum { WINO_GEMM_IGEMM = 1, WINO_GEMM_DISPATCH = 2 };
extern const clsynth_kdef clsynth_kdef_conv_igemm_fwd, clsynth_kdef_conv_igemm_bwd_data,
    clsynth_kdef_conv_igemm_bwd_weight, clsynth_kdef_conv_winograd;
/* The GEMM (M, N, K) that descriptor d runs at conv shape s. */
void clsynth_igemm_dims(const clsynth_kdef *d, const clsynth_conv_shape *s, int *M, int *N, int *K);

/* ---- conditional depthwise conv (clcore/ops_dwconv_kdef.c) ---- */
/* x (n, c, h, w), kernels (n, 9c, h, w). Key "<n*c>x<h>x<w>" (n and c enter
 * only as their product: the kernels treat every (sample, channel) alike). */
typedef struct clsynth_dwconv_shape {
    int nc, h, w;
} clsynth_dwconv_shape;
enum { DW_VW, DW_TILE_W, DW_TILE_H };
extern const clsynth_kdef clsynth_kdef_dwconv_fwd, clsynth_kdef_dwconv_bwd;

/* ---- batch / instance norm statistics (clcore/ops_norm_kdef.c) ---- */
/* G groups of M values each. Key "G=<groups>,M=<values per group>". */
typedef struct clsynth_norm_shape {
    int groups, m;
} clsynth_norm_shape;
enum { NORM_VPT, NORM_LOCAL };
extern const clsynth_kdef clsynth_kdef_norm_partial_stats, clsynth_kdef_norm_partial_dsums;
/* The automatic work-group of the norm reductions (partials and merges). */
size_t clsynth_norm_auto_local(const clsynth_klimits *lim, size_t bytes_per_item, size_t want);

/* ---- reductions (clcore/reduce_kdef.c) ---- */
/* K outputs of R reduced values, as classes of powers of two: key
 * "k<ceil log2 K>r<ceil log2 R>". */
typedef struct clsynth_reduce_shape {
    int log2_k, log2_r;
} clsynth_reduce_shape;
enum { REDUCE_LOCAL };
extern const clsynth_kdef clsynth_kdef_reduce_groups;

/* ---- CLBlast SGEMM parameters (clcore/clblast_kdef.c) ---- */
/* Per device, not per shape: the key is "sgemm". */
typedef struct clsynth_gemm_key {
    int unused;
} clsynth_gemm_key;
enum { X_GEMMK, X_KREG, X_KWG, X_KWI, X_MDIMA, X_MDIMC, X_MWG, X_NDIMB, X_NDIMC, X_NWG, X_SA, X_SB, X_STRM, X_STRN,
       X_VWM, X_VWN };
enum { D_KWID, D_MDIMAD, D_MDIMCD, D_NDIMBD, D_NDIMCD, D_PADA, D_PADB, D_VWMD, D_VWND, D_WGD };
enum { R_XGEMM_MIN_INDIRECT_SIZE };
extern const clsynth_kdef clsynth_kdef_clblast_xgemm, clsynth_kdef_clblast_xgemm_direct,
    clsynth_kdef_clblast_gemm_routine;

/* ---- the GEMM of every op (clcore/gemm.h, clcore/gemm_kdef.c) ---- */
/* C (m, n) = op(A) (m, k) op(B) (k, n), batch products (sum: summed into one
 * C). Key "M<m>.N<n>.K<k>.<NN|NT|TN|TT>.<B|S><batch>" (T: that operand
 * transposed; S: a summed batch). */
typedef struct clsynth_matmul_shape {
    int m, n, k, ta, tb, batch, sum;
} clsynth_matmul_shape;
enum { GEMM_ALGO };
extern const clsynth_kdef clsynth_kdef_gemm;

/* The GEMM products of one forward + backward of conv2d's im2col + GEMM path
 * at shape s with GEMM_BATCH layout (CONV2D_GEMM_*), chunked as the op
 * chunks under ctx's column budget (ctx NULL: the default budget): the 3
 * shapes (forward, dW, dx) into out and how often each runs into count.
 * Returns 3 (clcore/ops_conv_gemm.c). */
int clsynth_conv_gemm_products(const clsynth_ctx *ctx, const clsynth_conv_shape *s, int layout,
                               clsynth_matmul_shape out[3], int count[3]);

#endif
