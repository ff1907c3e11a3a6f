/* Implicit-GEMM 2-D convolution (NCHW, zero padding, groups = 1): the im2col
 * matrix is never stored, its elements are gathered straight into the GEMM's
 * tiles. Every kernel is one register-blocked GEMM C (M x N) = A (M x K) B (K x N)
 * over the whole batch:
 *
 *   igemm_fwd:         y = epilogue(conv(x, w))  M = Cout, N = batch*OH*OW, K = Cin*KH*KW
 *                      A(m, k) = w(m, k), B(k, n) = x(nb, ci, oy*s+ky-p, ox*s+kx-p),
 *                      epilogue: u = acc + bias(co); z = u * gate; y = act(z) + residual
 *                      (each part optional; u stored when asked, for the backward).
 *   igemm_bwd_data:    dx += conv_transpose(dy, w), one GEMM per stride phase (iy % s,
 *                      ix % s) = get_group_id(2): only the taps of that phase,
 *                      ky = ky0 + s*t, so a stride-2 conv does no zero products.
 *                      M = Cin, N = batch * pixels of the phase, K = Cout * taps of the phase.
 *   igemm_bwd_weight:  dw += dy x^T (im2col of x), M = Cout, N = Cin*KH*KW, K = batch*OH*OW;
 *                      get_group_id(2) is the K-split index: split sp sums k in
 *                      [sp*kc, (sp+1)*kc) into part[sp] (no atomics), then
 *                      igemm_ksplit_reduce adds the splits to dw in order 0, 1, 2, ...
 *                      (split count 1: straight into dw).
 *   igemm_batched:     C[z] = A[z] B[z], plain row-major matrices (Winograd's 16 products,
 *                      kernels/conv_winograd.cl), z = get_group_id(2).
 *   Every output sums its k in increasing order (one mad per product), so it does not
 *   depend on the tiling; the K-split changes only where partial sums are cut.
 *
 * Tunables (-D, all required; values from the descriptors in clcore/ops_conv_igemm_kdef.c
 * and the tuning database):
 *   MWG, NWG     the work-group's tile of C (rows, columns): 16, 32, 64, 128.
 *   KWG          depth of the K slice held in local memory per step: 8, 16, 32 (USE_LOCAL 1).
 *   MDIMC, NDIMC work-group (NDIMC, MDIMC) = local size (dims 0, 1); each item computes
 *                MWI = MWG/MDIMC rows x NWI = NWG/NDIMC columns in registers.
 *   VWM, VWN     vector width of the local-memory reads of A and B (1, 2, 4); the
 *                accumulators are float<VWN> vectors along N. An item's rows are
 *                (ty + i*MDIMC)*VWM + v, its columns (tx + j*NDIMC)*VWN + v.
 *   USE_LOCAL    1: A and B slices staged in local memory (GPUs); 0: every item reads its
 *                A rows and B columns from global memory, no barriers (CPU devices, where
 *                barriers spill the accumulators).
 *
 * Memory traffic, USE_LOCAL 1: per work-group and K step, MWG*KWG weights and KWG*NWG
 * gathered inputs once into local memory; in total A is read N/NWG times and B M/MWG
 * times; C written once (bwd_data: read and written; K-split: S*M*N partials written
 * and read once more). USE_LOCAL 0: each item reads MWI + NWI floats per k (through the
 * cache). Local memory: (MWG + NWG) * KWG floats.
 *
 * FP_CONTRACT is off: the epilogue computes exactly what the unfused ops compute
 * (kernels/elementwise.cl: (acc + b) * g, then the activation, then + r, each rounded);
 * the products use mad() explicitly. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef MWG
#error "MWG is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef NWG
#error "NWG is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef KWG
#error "KWG is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef MDIMC
#error "MDIMC is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef NDIMC
#error "NDIMC is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef VWM
#error "VWM is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef VWN
#error "VWN is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif
#ifndef USE_LOCAL
#error "USE_LOCAL is not set: build through the kernel descriptor (clcore/ops_conv_igemm_kdef.c)"
#endif

#define WGS (MDIMC * NDIMC)
#define MWI (MWG / MDIMC)
#define NWI (NWG / NDIMC)
#define MVI (MWI / VWM)
#define NVI (NWI / VWN)

#if MWI * MDIMC != MWG || NWI * NDIMC != NWG || MVI * VWM != MWI || NVI * VWN != NWI
#error "MWG must be a multiple of MDIMC*VWM and NWG of NDIMC*VWN"
#endif

#if VWN == 1
typedef float realn;
#define LOADN(p) (*(p))
#define STOREN(v, p) (*(p) = (v))
#elif VWN == 2
typedef float2 realn;
#define LOADN(p) vload2(0, p)
#define STOREN(v, p) vstore2(v, 0, p)
#elif VWN == 4
typedef float4 realn;
#define LOADN(p) vload4(0, p)
#define STOREN(v, p) vstore4(v, 0, p)
#else
#error "VWN must be 1, 2 or 4"
#endif

#if VWM == 1
#define LOADM_TO(src, dst) (*(dst) = *(src))
#elif VWM == 2
#define LOADM_TO(src, dst) vstore2(vload2(0, src), 0, dst)
#elif VWM == 4
#define LOADM_TO(src, dst) vstore4(vload4(0, src), 0, dst)
#else
#error "VWM must be 1, 2 or 4"
#endif

/* tile row of the item's row r (0..MWI-1) and tile column of its column c (0..NWI-1) */
#define ROW_OF(ty, r) (((ty) + ((r) / VWM) * MDIMC) * VWM + (r) % VWM)
#define COL_OF(tx, c) (((tx) + ((c) / VWN) * NDIMC) * VWN + (c) % VWN)

/* The B loader of USE_LOCAL 1: each item loads columns lid % NWG + c*WGS (c < BL_COLS)
 * of rows lid / NWG + t*BL_RSTEP of the slice, so its columns are fixed and their
 * addressing is computed once per work-group. */
#if NWG >= WGS
#define BL_COLS (NWG / WGS)
#define BL_RSTEP 1
#else
#define BL_COLS 1
#define BL_RSTEP (WGS / NWG)
#endif

/* far outside any image: a tap at iy = NOWHERE + ky is never inside */
#define NOWHERE (-(1 << 28))

void acc_zero(realn acc[MWI][NVI])
{
    for (int r = 0; r < MWI; r++)
        for (int j = 0; j < NVI; j++)
            acc[r][j] = (realn)(0.0f);
}

/* acc[r][j] += a[r] * b[j] (one product per element, in k order) */
void mac(realn acc[MWI][NVI], const float a[MWI], const realn b[NVI])
{
    for (int r = 0; r < MWI; r++)
        for (int j = 0; j < NVI; j++)
            acc[r][j] = mad((realn)(a[r]), b[j], acc[r][j]);
}

#if USE_LOCAL
/* One K slice from local memory: As (KWG, MWG), Bs (KWG, NWG), k-major. */
void mac_slice(realn acc[MWI][NVI], __local const float *As, __local const float *Bs, const int tx,
                      const int ty)
{
    for (int kk = 0; kk < KWG; kk++) {
        float a[MWI];
        realn b[NVI];
        for (int i = 0; i < MVI; i++)
            LOADM_TO(As + kk * MWG + (ty + i * MDIMC) * VWM, a + i * VWM);
        for (int j = 0; j < NVI; j++)
            b[j] = LOADN(Bs + kk * NWG + (tx + j * NDIMC) * VWN);
        mac(acc, a, b);
    }
}

/* As(kk, mm) = A(m0 + mm, k0 + kk) of a row-major A (lda = K), 0 outside M x K */
void load_a_rows(__local float *As, __global const float *A, const int lda, const int M, const int K,
                        const int m0, const int k0, const int lid)
{
    for (int e = lid; e < MWG * KWG; e += WGS) {
        const int mm = e / KWG, kk = e - mm * KWG;
        const int m = m0 + mm, k = k0 + kk;
        As[kk * MWG + mm] = (m < M && k < K) ? A[m * lda + k] : 0.0f;
    }
}
#endif

/* The column of the output an item's column c is, or -1 past N. */
int col_n(const int n0, const int tx, const int c, const int N)
{
    const int n = n0 + COL_OF(tx, c);
    return n < N ? n : -1;
}

/* Same formulas as kernels/elementwise.cl (unary_f): 0 none, 1 relu, 2 leaky relu,
 * 3 sigmoid, 4 tanh. */
float act_f(const int act, const float z, const float slope)
{
    switch (act) {
    case 1:
        return z > 0.0f ? z : 0.0f;
    case 2:
        return z > 0.0f ? z : z * slope;
    case 3:
        return 1.0f / (1.0f + exp(-z));
    case 4:
        return tanh(z);
    default:
        return z;
    }
}

/* epi bits: 1 bias, 2 gate, 4 residual, 8 store u (= acc + bias) */
#define EPI_BIAS 1
#define EPI_GATE 2
#define EPI_RES 4
#define EPI_SAVE_U 8

/* ------------------------------------------------------------------ forward */

/* global (ceil(N*OH*OW / NWG) * NDIMC, ceil(Cout / MWG) * MDIMC), local (NDIMC, MDIMC).
 * gate, res, u: (N, Cout, OH, OW) like y (any buffer when their bit is off). */
__kernel void igemm_fwd(__global const float *x, const int x_off, __global const float *w, const int w_off,
                        __global const float *bias, const int b_off, __global const float *gate, const int g_off,
                        __global const float *res, const int r_off, __global float *y, const int y_off,
                        __global float *u, const int u_off, const int Nb, const int Cin, const int H, const int W,
                        const int Cout, const int OH, const int OW, const int KH, const int KW, const int stride,
                        const int pad, const int epi, const int act, const float slope)
{
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * NDIMC + tx;
    const int n0 = get_group_id(0) * NWG, m0 = get_group_id(1) * MWG;
    const int OHW = OH * OW, HW = H * W, KK = KH * KW;
    const int M = Cout, N = Nb * OHW, K = Cin * KK;
    __global const float *wa = w + w_off;
    realn acc[MWI][NVI];
    acc_zero(acc);
#if USE_LOCAL
    __local float As[KWG * MWG], Bs[KWG * NWG];
    int cb[BL_COLS], cy[BL_COLS], cx[BL_COLS];
    const int bc0 = lid % NWG, br0 = lid / NWG;
    for (int c = 0; c < BL_COLS; c++) {
        const int n = n0 + bc0 + c * WGS;
        const int nb = n / OHW, p = n - nb * OHW, oy = p / OW, ox = p - oy * OW;
        cb[c] = x_off + nb * Cin * HW;
        cy[c] = n < N ? oy * stride - pad : NOWHERE;
        cx[c] = ox * stride - pad;
    }
    for (int k0 = 0; k0 < K; k0 += KWG) {
        load_a_rows(As, wa, K, M, K, m0, k0, lid);
        for (int kk = br0; kk < KWG; kk += BL_RSTEP) {
            const int k = k0 + kk;
            const int ci = k / KK, t = k - ci * KK, ky = t / KW, kx = t - ky * KW;
            for (int c = 0; c < BL_COLS; c++) {
                const int iy = cy[c] + ky, ix = cx[c] + kx;
                Bs[kk * NWG + bc0 + c * WGS] = (k < K && iy >= 0 && iy < H && ix >= 0 && ix < W)
                                                   ? x[cb[c] + ci * HW + iy * W + ix]
                                                   : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        mac_slice(acc, As, Bs, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#else
    if (m0 + ROW_OF(ty, 0) >= M || n0 + COL_OF(tx, 0) >= N)
        return;
    int wr[MWI], cb[NWI], cy[NWI], cx[NWI];
    for (int r = 0; r < MWI; r++)
        wr[r] = min(m0 + ROW_OF(ty, r), M - 1) * K;
    for (int c = 0; c < NWI; c++) {
        const int n = n0 + COL_OF(tx, c);
        const int nb = n / OHW, p = n - nb * OHW, oy = p / OW, ox = p - oy * OW;
        cb[c] = x_off + nb * Cin * HW;
        cy[c] = n < N ? oy * stride - pad : NOWHERE;
        cx[c] = ox * stride - pad;
    }
    int ky = 0, kx = 0, coff = 0;
    for (int k = 0; k < K; k++) {
        float a[MWI], bs[NWI];
        realn b[NVI];
        for (int r = 0; r < MWI; r++)
            a[r] = wa[wr[r] + k];
        for (int c = 0; c < NWI; c++) {
            const int iy = cy[c] + ky, ix = cx[c] + kx;
            bs[c] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[cb[c] + coff + iy * W + ix] : 0.0f;
        }
        for (int j = 0; j < NVI; j++)
            b[j] = LOADN(bs + j * VWN);
        mac(acc, a, b);
        if (++kx == KW) {
            kx = 0;
            if (++ky == KH) {
                ky = 0;
                coff += HW;
            }
        }
    }
#endif
    int co[NWI]; /* output offset of each column without the channel: nb*Cout*OHW + p */
    for (int c = 0; c < NWI; c++) {
        const int n = col_n(n0, tx, c, N);
        const int nb = n / OHW;
        co[c] = n < 0 ? -1 : nb * Cout * OHW + (n - nb * OHW);
    }
    for (int r = 0; r < MWI; r++) {
        const int m = m0 + ROW_OF(ty, r);
        if (m >= M)
            continue;
        const float bv = (epi & EPI_BIAS) ? bias[b_off + m] : 0.0f;
        for (int j = 0; j < NVI; j++) {
            float o[VWN];
            STOREN(acc[r][j], o);
            for (int v = 0; v < VWN; v++) {
                const int c = j * VWN + v;
                if (co[c] < 0)
                    continue;
                const int i = co[c] + m * OHW;
                float z = (epi & EPI_BIAS) ? o[v] + bv : o[v];
                if (epi & EPI_SAVE_U)
                    u[u_off + i] = z;
                if (epi & EPI_GATE)
                    z = z * gate[g_off + i];
                z = act_f(act, z, slope);
                if (epi & EPI_RES)
                    z = z + res[r_off + i];
                y[y_off + i] = z;
            }
        }
    }
}

/* ------------------------------------------------------------------ backward data */

/* global (ceil(Nmax / NWG) * NDIMC, ceil(Cin / MWG) * MDIMC, s*s), local (NDIMC, MDIMC, 1);
 * Nmax = batch * ceil(H/s) * ceil(W/s), the largest phase. dx += result. */
__kernel void igemm_bwd_data(__global const float *dy, const int dy_off, __global const float *w, const int w_off,
                             __global float *dx, const int dx_off, const int Nb, const int Cin, const int H,
                             const int W, const int Cout, const int OH, const int OW, const int KH, const int KW,
                             const int stride, const int pad)
{
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * NDIMC + tx;
    const int n0 = get_group_id(0) * NWG, m0 = get_group_id(1) * MWG;
    const int ph = get_group_id(2), py = ph / stride, px = ph - py * stride;
    /* the phase: pixels iy = py + s*qy; taps ky = ky0 + s*t, then oy = qy + dyq - t */
    const int HP = py < H ? (H - py + stride - 1) / stride : 0, WP = px < W ? (W - px + stride - 1) / stride : 0;
    const int ky0 = (py + pad) % stride, kx0 = (px + pad) % stride;
    const int TY = ky0 < KH ? (KH - ky0 + stride - 1) / stride : 0;
    const int TX = kx0 < KW ? (KW - kx0 + stride - 1) / stride : 0;
    const int dyq = (py + pad - ky0) / stride, dxq = (px + pad - kx0) / stride;
    const int TT = TY * TX, PHW = HP * WP, OHW = OH * OW, HW = H * W;
    const int M = Cin, N = Nb * PHW, K = Cout * TT;
    if (K == 0 || N == 0)
        return; /* the whole group: no tap reaches this phase (dx += 0) */
    realn acc[MWI][NVI];
    acc_zero(acc);
#if USE_LOCAL
    __local float As[KWG * MWG], Bs[KWG * NWG];
    int cb[BL_COLS], cy[BL_COLS], cx[BL_COLS];
    const int bc0 = lid % NWG, br0 = lid / NWG;
    for (int c = 0; c < BL_COLS; c++) {
        const int n = n0 + bc0 + c * WGS;
        const int nb = n / PHW, q = n - nb * PHW, qy = q / WP, qx = q - qy * WP;
        cb[c] = dy_off + nb * Cout * OHW;
        cy[c] = n < N ? qy + dyq : NOWHERE;
        cx[c] = qx + dxq;
    }
    for (int k0 = 0; k0 < K; k0 += KWG) {
        /* As(kk, mm) = w(co, ci = m0 + mm, ky, kx) of k = k0 + kk = (co, t) */
        for (int e = lid; e < MWG * KWG; e += WGS) {
            const int mm = e / KWG, kk = e - mm * KWG;
            const int m = m0 + mm, k = k0 + kk;
            const int o = k / TT, t = k - o * TT, tyk = t / TX, txk = t - tyk * TX;
            As[kk * MWG + mm] = (m < M && k < K)
                                    ? w[w_off + ((o * Cin + m) * KH + ky0 + stride * tyk) * KW + kx0 + stride * txk]
                                    : 0.0f;
        }
        for (int kk = br0; kk < KWG; kk += BL_RSTEP) {
            const int k = k0 + kk;
            const int o = k / TT, t = k - o * TT, tyk = t / TX, txk = t - tyk * TX;
            for (int c = 0; c < BL_COLS; c++) {
                const int oy = cy[c] - tyk, ox = cx[c] - txk;
                Bs[kk * NWG + bc0 + c * WGS] = (k < K && oy >= 0 && oy < OH && ox >= 0 && ox < OW)
                                                   ? dy[cb[c] + o * OHW + oy * OW + ox]
                                                   : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        mac_slice(acc, As, Bs, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#else
    if (m0 + ROW_OF(ty, 0) >= M || n0 + COL_OF(tx, 0) >= N)
        return;
    int wr[MWI], cb[NWI], cy[NWI], cx[NWI];
    for (int r = 0; r < MWI; r++)
        wr[r] = w_off + min(m0 + ROW_OF(ty, r), M - 1) * KH * KW;
    for (int c = 0; c < NWI; c++) {
        const int n = n0 + COL_OF(tx, c);
        const int nb = n / PHW, q = n - nb * PHW, qy = q / WP, qx = q - qy * WP;
        cb[c] = dy_off + nb * Cout * OHW;
        cy[c] = n < N ? qy + dyq : NOWHERE;
        cx[c] = qx + dxq;
    }
    int o = 0, tyk = 0, txk = 0;
    for (int k = 0; k < K; k++) {
        float a[MWI], bs[NWI];
        realn b[NVI];
        const int wk = o * Cin * KH * KW + (ky0 + stride * tyk) * KW + kx0 + stride * txk;
        for (int r = 0; r < MWI; r++)
            a[r] = w[wr[r] + wk];
        for (int c = 0; c < NWI; c++) {
            const int oy = cy[c] - tyk, ox = cx[c] - txk;
            bs[c] = (oy >= 0 && oy < OH && ox >= 0 && ox < OW) ? dy[cb[c] + o * OHW + oy * OW + ox] : 0.0f;
        }
        for (int j = 0; j < NVI; j++)
            b[j] = LOADN(bs + j * VWN);
        mac(acc, a, b);
        if (++txk == TX) {
            txk = 0;
            if (++tyk == TY) {
                tyk = 0;
                o++;
            }
        }
    }
#endif
    int co[NWI]; /* dx offset of each column without the channel */
    for (int c = 0; c < NWI; c++) {
        const int n = col_n(n0, tx, c, N);
        const int nb = n / PHW, q = n - nb * PHW, qy = q / WP, qx = q - qy * WP;
        co[c] = n < 0 ? -1 : dx_off + nb * Cin * HW + (py + stride * qy) * W + px + stride * qx;
    }
    for (int r = 0; r < MWI; r++) {
        const int m = m0 + ROW_OF(ty, r);
        if (m >= M)
            continue;
        for (int j = 0; j < NVI; j++) {
            float o[VWN];
            STOREN(acc[r][j], o);
            for (int v = 0; v < VWN; v++) {
                const int c = j * VWN + v;
                if (co[c] >= 0)
                    dx[co[c] + m * HW] += o[v];
            }
        }
    }
}

/* ------------------------------------------------------------------ backward weight */

/* global (ceil(Cin*KH*KW / NWG) * NDIMC, ceil(Cout / MWG) * MDIMC, splits), local
 * (NDIMC, MDIMC, 1). Split sp sums k in [sp*kc, min(K, (sp+1)*kc)) of K = N*OH*OW;
 * kc is a multiple of KWG. direct: dw += result, else part[sp] (Cout, Cin*KH*KW) = result. */
__kernel void igemm_bwd_weight(__global const float *dy, const int dy_off, __global const float *x,
                               const int x_off, __global float *dw, const int dw_off, __global float *part,
                               const int Nb, const int Cin, const int H, const int W, const int Cout, const int OH,
                               const int OW, const int KH, const int KW, const int stride, const int pad,
                               const int kc, const int direct)
{
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * NDIMC + tx;
    const int n0 = get_group_id(0) * NWG, m0 = get_group_id(1) * MWG, sp = get_group_id(2);
    const int OHW = OH * OW, HW = H * W, KK = KH * KW;
    const int M = Cout, N = Cin * KK, Kall = Nb * OHW;
    const int kb = sp * kc, ke = min(Kall, kb + kc);
    realn acc[MWI][NVI];
    acc_zero(acc);
#if USE_LOCAL
    __local float As[KWG * MWG], Bs[KWG * NWG];
    int cb[BL_COLS], cy[BL_COLS], cx[BL_COLS];
    const int bc0 = lid % NWG, br0 = lid / NWG;
    for (int c = 0; c < BL_COLS; c++) {
        const int n = n0 + bc0 + c * WGS;
        const int ci = n / KK, t = n - ci * KK, ky = t / KW, kx = t - ky * KW;
        cb[c] = x_off + ci * HW;
        cy[c] = n < N ? ky - pad : NOWHERE;
        cx[c] = kx - pad;
    }
    for (int k0 = kb; k0 < ke; k0 += KWG) {
        /* As(kk, mm) = dy(nb, co = m0 + mm, q) of k = k0 + kk = nb*OHW + q */
        for (int e = lid; e < MWG * KWG; e += WGS) {
            const int mm = e / KWG, kk = e - mm * KWG;
            const int m = m0 + mm, k = k0 + kk;
            const int nb = k / OHW, q = k - nb * OHW;
            As[kk * MWG + mm] = (m < M && k < ke) ? dy[dy_off + (nb * Cout + m) * OHW + q] : 0.0f;
        }
        for (int kk = br0; kk < KWG; kk += BL_RSTEP) {
            const int k = k0 + kk;
            const int nb = k / OHW, q = k - nb * OHW, oy = q / OW, ox = q - oy * OW;
            const int rb = nb * Cin * HW, ry = oy * stride, rx = ox * stride;
            for (int c = 0; c < BL_COLS; c++) {
                const int iy = cy[c] + ry, ix = cx[c] + rx;
                Bs[kk * NWG + bc0 + c * WGS] = (k < ke && iy >= 0 && iy < H && ix >= 0 && ix < W)
                                                   ? x[cb[c] + rb + iy * W + ix]
                                                   : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        mac_slice(acc, As, Bs, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#else
    if (m0 + ROW_OF(ty, 0) >= M || n0 + COL_OF(tx, 0) >= N)
        return;
    int dr[MWI], cb[NWI], cy[NWI], cx[NWI];
    for (int r = 0; r < MWI; r++)
        dr[r] = dy_off + min(m0 + ROW_OF(ty, r), M - 1) * OHW;
    for (int c = 0; c < NWI; c++) {
        const int n = n0 + COL_OF(tx, c);
        const int ci = n / KK, t = n - ci * KK, ky = t / KW, kx = t - ky * KW;
        cb[c] = x_off + ci * HW;
        cy[c] = n < N ? ky - pad : NOWHERE;
        cx[c] = kx - pad;
    }
    int nb = kb / OHW, q = kb - nb * OHW, oy = q / OW, ox = q - oy * OW;
    for (int k = kb; k < ke; k++) {
        float a[MWI], bs[NWI];
        realn b[NVI];
        const int ab = nb * Cout * OHW + q, rb = nb * Cin * HW, ry = oy * stride, rx = ox * stride;
        for (int r = 0; r < MWI; r++)
            a[r] = dy[dr[r] + ab];
        for (int c = 0; c < NWI; c++) {
            const int iy = cy[c] + ry, ix = cx[c] + rx;
            bs[c] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? x[cb[c] + rb + iy * W + ix] : 0.0f;
        }
        for (int j = 0; j < NVI; j++)
            b[j] = LOADN(bs + j * VWN);
        mac(acc, a, b);
        q++;
        if (++ox == OW) {
            ox = 0;
            if (++oy == OH) {
                oy = 0;
                q = 0;
                nb++;
            }
        }
    }
#endif
    for (int r = 0; r < MWI; r++) {
        const int m = m0 + ROW_OF(ty, r);
        if (m >= M)
            continue;
        for (int j = 0; j < NVI; j++) {
            float o[VWN];
            STOREN(acc[r][j], o);
            for (int v = 0; v < VWN; v++) {
                const int n = col_n(n0, tx, j * VWN + v, N);
                if (n < 0)
                    continue;
                if (direct)
                    dw[dw_off + m * N + n] += o[v];
                else
                    part[(sp * M + m) * N + n] = o[v];
            }
        }
    }
}

/* global (count): dw[i] += part[0][i] + part[1][i] + ... in split order. */
__kernel void igemm_ksplit_reduce(__global const float *part, __global float *dw, const int dw_off,
                                  const int count, const int splits)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    float s = part[i];
    for (int sp = 1; sp < splits; sp++)
        s = s + part[sp * count + i];
    dw[dw_off + i] += s;
}

/* ------------------------------------------------------------------ batched plain GEMM */

/* global (ceil(N / NWG) * NDIMC, ceil(M / MWG) * MDIMC, batches), local (NDIMC, MDIMC, 1).
 * C[z] (M, N) = A[z] (M, K) B[z] (K, N), row-major, element strides sa, sb, sc between z. */
__kernel void igemm_batched(__global const float *A, const int a_off, const int sa, __global const float *B,
                            const int b_off, const int sb, __global float *C, const int c_off, const int sc,
                            const int M, const int N, const int K)
{
    const int tx = get_local_id(0), ty = get_local_id(1), lid = ty * NDIMC + tx;
    const int n0 = get_group_id(0) * NWG, m0 = get_group_id(1) * MWG, z = get_group_id(2);
    __global const float *Az = A + a_off + z * sa;
    __global const float *Bz = B + b_off + z * sb;
    realn acc[MWI][NVI];
    acc_zero(acc);
#if USE_LOCAL
    __local float As[KWG * MWG], Bs[KWG * NWG];
    const int bc0 = lid % NWG, br0 = lid / NWG;
    for (int k0 = 0; k0 < K; k0 += KWG) {
        load_a_rows(As, Az, K, M, K, m0, k0, lid);
        for (int kk = br0; kk < KWG; kk += BL_RSTEP) {
            const int k = k0 + kk;
            for (int c = 0; c < BL_COLS; c++) {
                const int n = n0 + bc0 + c * WGS;
                Bs[kk * NWG + bc0 + c * WGS] = (k < K && n < N) ? Bz[k * N + n] : 0.0f;
            }
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        mac_slice(acc, As, Bs, tx, ty);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#else
    if (m0 + ROW_OF(ty, 0) >= M || n0 + COL_OF(tx, 0) >= N)
        return;
    int ar[MWI], bcol[NWI];
    for (int r = 0; r < MWI; r++)
        ar[r] = min(m0 + ROW_OF(ty, r), M - 1) * K;
    for (int c = 0; c < NWI; c++)
        bcol[c] = min(n0 + COL_OF(tx, c), N - 1);
    for (int k = 0; k < K; k++) {
        float a[MWI], bs[NWI];
        realn b[NVI];
        for (int r = 0; r < MWI; r++)
            a[r] = Az[ar[r] + k];
        for (int c = 0; c < NWI; c++)
            bs[c] = Bz[k * N + bcol[c]];
        for (int j = 0; j < NVI; j++)
            b[j] = LOADN(bs + j * VWN);
        mac(acc, a, b);
    }
#endif
    for (int r = 0; r < MWI; r++) {
        const int m = m0 + ROW_OF(ty, r);
        if (m >= M)
            continue;
        for (int j = 0; j < NVI; j++) {
            float o[VWN];
            STOREN(acc[r][j], o);
            for (int v = 0; v < VWN; v++) {
                const int n = col_n(n0, tx, j * VWN + v, N);
                if (n >= 0)
                    C[c_off + z * sc + m * N + n] = o[v];
            }
        }
    }
}
