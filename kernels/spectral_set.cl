/* Spectral normalization of a set of weights at once (clcore/ops_spectral_set.c):
 * the math of kernels/spectral.cl, for every weight of a network in one launch
 * per step instead of one per weight.
 *
 * Weight i is W_i (Cout_i x K_i, row-major) in the weights' buffer; its u
 * (Cout_i) and v (K_i) live in the state buffers; the set's activations are
 * flat: out (sum of Cout_i K_i), v_used (sum K_i), wv / u_used / rows
 * (sum Cout_i), sigma / coef (one per weight). An int table (`tab`) holds a
 * descriptor of SN_DESC ints per weight at its start, then lists of work-group
 * assignments, (weight, first index) pairs, at the offsets given as *_at:
 *   columns  groups of L columns of one weight, an item per column (sn_set_wtu)
 *   rows     groups of L / R rows of one weight, R = d[SN_ITEMS] items per
 *            row (sn_set_wv, sn_set_rowdot)
 *   chunks   groups of `chunk` elements of one weight, a run of chunk / L
 *            consecutive elements per item (sn_set_scale, sn_set_dw)
 * and the kernels of one work-group per weight (sn_set_normalize,
 * sn_set_finish, sn_set_coef). Every sum is taken as spectral.cl's kernel
 * for one weight takes it with its local size of min(L, n rounded up to a
 * power of two) for n values (the lanes, d[SN_S] for a row, d[SN_SC] for a
 * column): lane j sums values j, j + lanes, ... in order, then a pairwise
 * tree over the lanes. So with the same L (256 wherever the kernels allow
 * it) the results are those of clsynth_spectral_norm bit for bit, while the
 * row kernels give an item up to SN_MAX_LANES lanes (sn_row_lanes), the rows
 * of small weights share a work-group and the element kernels run
 * contiguous loops.
 *
 *   sn_set_wtu       v_used = W^T u                       (Kahan sum over the rows per column)
 *   sn_set_normalize update: v_used /= max(||v_used||, eps), v = v_used; else v_used = v
 *   sn_set_wv        wv = W v_used                         (segmented tree per row)
 *   sn_set_finish    update: u = u_used = wv / max(||wv||, eps); else u_used = u;
 *                    sigma = u_used . wv
 *   sn_set_scale     out = W / sigma
 *   sn_set_rowdot    rows[o] = sum_k dWsn[o,k] W[o,k]       (segmented tree per row)
 *   sn_set_coef      coef = (sum_o rows[o]) / sigma^2
 *   sn_set_dw        dW += dWsn / sigma - (coef u_used) v_used^T
 *
 * Tunables: none compiled in. The local size L (the same for every kernel of
 * a set: the host's table is built for it) is a power of two within every
 * kernel's maximum work-group size; the kernels with a __local argument use
 * L * 4 bytes of it.
 *
 * Memory traffic as spectral.cl's (W of E floats in all): a training forward
 * reads W three times and writes out once, 16 E bytes (an eval forward 12 E);
 * backward reads dWsn twice and W once, read-modify-writes dW: 20 E bytes;
 * plus the table, 8 bytes per work-group. */

#define SN_W 0     /* W's offset in the weights' buffer */
#define SN_DW 1    /* its gradient's offset in the gradients' buffer */
#define SN_U 2     /* u's offset in the u buffer */
#define SN_V 3     /* v's offset in the v buffer */
#define SN_ROWS 4  /* Cout */
#define SN_COLS 5  /* K */
#define SN_E 6     /* W's first element in out, dWsn */
#define SN_R 7     /* its first row in wv, u_used, rows */
#define SN_C 8     /* its first column in v_used */
#define SN_S 9     /* lanes of a sum over a row (K values): min(L, K rounded up to a power of two) */
#define SN_SC 10   /* lanes of a sum over a column (Cout values): the same for Cout */
#define SN_ITEMS 11 /* items per row of the row kernels (a power of two dividing SN_S) */
#define SN_DESC 12

/* Tree sum within every aligned segment of S items (S a power of two that
 * divides the group size; uniform over the group): segment j's sum ends in
 * ls[j * S]. The caller reads it, then passes a barrier before reusing ls. */
static void sn_segment_tree(__local float *ls, float x, int lid, int S)
{
    ls[lid] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = S >> 1; s > 0; s >>= 1) {
        if ((lid & (S - 1)) < s)
            ls[lid] += ls[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* The sum of x over items 0 .. S-1 (the others pass 0), for every item. */
static float sn_first_segment_sum(__local float *ls, float x, int lid, int S)
{
    sn_segment_tree(ls, x, lid, S);
    const float r = ls[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* Global (L * column groups), local (L). */
__kernel void sn_set_wtu(__global const float *restrict w, __global const float *restrict u,
                         __global float *restrict vu, const int vu_off, __global const int *restrict tab,
                         const int col_at)
{
    const int g = get_group_id(0);
    const int i = tab[col_at + 2 * g], k = tab[col_at + 2 * g + 1] + (int)get_local_id(0);
    __global const int *d = tab + i * SN_DESC;
    const int Cout = d[SN_ROWS], K = d[SN_COLS];
    if (k >= K)
        return;
    __global const float *wi = w + d[SN_W];
    __global const float *ui = u + d[SN_U];
    float s = 0.0f, comp = 0.0f;
    for (int o = 0; o < Cout; o++) {
        const float y = wi[o * K + k] * ui[o] - comp;
        const float t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    vu[vu_off + d[SN_C] + k] = s;
}

/* Global (L * weights), local (L): work-group i handles weight i's v. */
__kernel void sn_set_normalize(__global float *restrict v, __global float *restrict vu, const int vu_off,
                               __global const int *restrict tab, const int update, const float eps,
                               __local float *ls)
{
    const int lid = get_local_id(0), L = get_local_size(0);
    __global const int *d = tab + get_group_id(0) * SN_DESC;
    const int K = d[SN_COLS];
    __global float *x = vu + vu_off + d[SN_C];
    __global float *st = v + d[SN_V];
    if (!update) {
        for (int k = lid; k < K; k += L)
            x[k] = st[k];
        return;
    }
    const int S = d[SN_S];
    float s = 0.0f;
    if (lid < S)
        for (int k = lid; k < K; k += S)
            s += x[k] * x[k];
    const float nrm = fmax(sqrt(sn_first_segment_sum(ls, s, lid, S)), eps);
    /* every item has read its x before the barrier in the sum: rewriting is safe */
    for (int k = lid; k < K; k += L) {
        const float a = x[k] / nrm;
        x[k] = a;
        st[k] = a;
    }
}

/* The sum over k < K of a[k] b[k] as the per-weight kernels take it with a
 * local size of S (S = d[SN_S]): S lanes, lane j summing k = j, j + S, ...
 * in order, then a pairwise tree over the lanes.
 * Here R = d[SN_ITEMS] items share a row: item r holds the P = S / R lanes
 * j = r, r + R, ..., r + (P - 1) R (P <= SN_MAX_LANES) in registers, runs the
 * tree levels that pair its own lanes, and leaves lane r's value for the
 * levels across items (sn_segment_tree with segment R): the same additions in
 * the same order, for any R. */
#define SN_MAX_LANES 16
static float sn_row_lanes(__global const float *a, __global const float *b, int K, int S, int R, int r)
{
    const int P = S / R;
    float part[SN_MAX_LANES];
    for (int l = 0; l < SN_MAX_LANES; l++)
        part[l] = 0.0f;
    int base = r; /* lane l's next value is base + l R */
    if (P == SN_MAX_LANES) /* every row of 9 values or more: loops of constant length, in registers */
        for (; base + (SN_MAX_LANES - 1) * R < K; base += S)
            for (int l = 0; l < SN_MAX_LANES; l++)
                part[l] += a[base + l * R] * b[base + l * R];
    for (; base < K; base += S) /* the rest: the last values of long rows, short rows */
        for (int l = 0; l < SN_MAX_LANES; l++) {
            const int k = base + l * R;
            if (l < P && k < K)
                part[l] += a[k] * b[k];
        }
    for (int h = SN_MAX_LANES >> 1; h > 0; h >>= 1) /* the levels h < P: lanes l and l + h */
        for (int l = 0; l < SN_MAX_LANES / 2; l++)
            if (l < h && l + h < P)
                part[l] += part[l + h];
    return part[0];
}

/* The row dots of a row group (work-group g: rows o0 .. o0 + L / R - 1 of
 * weight i, R items per row): out[d[SN_R] + o] = a row o . b, a's rows at
 * descriptor field a_at, b at field b_at, a row of its own per o when b_rows
 * (else one vector for every row). */
void sn_row_dots(__global const float *a, const int a_at, __global const float *b, const int b_at, const int b_rows,
                 __global float *out, __global const int *tab, const int row_at, __local float *ls)
{
    const int lid = get_local_id(0), g = get_group_id(0);
    const int i = tab[row_at + 2 * g];
    __global const int *d = tab + i * SN_DESC;
    const int Cout = d[SN_ROWS], K = d[SN_COLS], R = d[SN_ITEMS];
    const int o = tab[row_at + 2 * g + 1] + lid / R, r = lid & (R - 1);
    const float s =
        o < Cout ? sn_row_lanes(a + d[a_at] + o * K, b + d[b_at] + (b_rows ? o * K : 0), K, d[SN_S], R, r) : 0.0f;
    sn_segment_tree(ls, s, lid, R);
    if (r == 0 && o < Cout)
        out[d[SN_R] + o] = ls[lid];
}

/* Global (L * row groups), local (L): wv = W v, one row dot per row. */
__kernel void sn_set_wv(__global const float *restrict w, __global const float *restrict vu, const int vu_off,
                        __global float *restrict wv, const int wv_off, __global const int *restrict tab,
                        const int row_at, __local float *ls)
{
    sn_row_dots(w, SN_W, vu + vu_off, SN_C, 0, wv + wv_off, tab, row_at, ls);
}

/* Global (L * weights), local (L): work-group i handles weight i's u and sigma.
 * update = 0 uses u as stored (PyTorch's eval takes weight_u as it is). */
__kernel void sn_set_finish(__global const float *restrict wv, const int wv_off, __global float *restrict u,
                            __global float *restrict uu, const int uu_off, __global float *restrict sigma,
                            const int sigma_off, __global const int *restrict tab, const int update, const float eps,
                            __local float *ls)
{
    const int lid = get_local_id(0), i = get_group_id(0);
    __global const int *d = tab + i * SN_DESC;
    const int Cout = d[SN_ROWS], S = d[SN_SC];
    __global const float *y = wv + wv_off + d[SN_R];
    __global float *ui = u + d[SN_U];
    __global float *used = uu + uu_off + d[SN_R];
    float dn = 1.0f;
    if (update) {
        float s = 0.0f;
        if (lid < S)
            for (int o = lid; o < Cout; o += S)
                s += y[o] * y[o];
        dn = fmax(sqrt(sn_first_segment_sum(ls, s, lid, S)), eps);
    }
    float dot = 0.0f;
    if (lid < S)
        for (int o = lid; o < Cout; o += S) {
            const float a = update ? y[o] / dn : ui[o];
            used[o] = a;
            if (update)
                ui[o] = a;
            dot += a * y[o];
        }
    const float sg = sn_first_segment_sum(ls, dot, lid, S);
    if (lid == 0)
        sigma[sigma_off + i] = sg;
}

/* Global (L * chunks), local (L): item lid of chunk g scales a run of
 * chunk / L consecutive elements (a contiguous inner loop, which CPU
 * compilers vectorize; one element per item, with the table lookups per
 * item, ran 5x slower on PoCL than the per-weight kernel). */
__kernel void sn_set_scale(__global const float *restrict w, __global const float *restrict sigma, const int sigma_off,
                           __global float *restrict out, const int out_off, __global const int *restrict tab,
                           const int chunk_at, const int chunk)
{
    const int lid = get_local_id(0), L = get_local_size(0), g = get_group_id(0);
    const int i = tab[chunk_at + 2 * g], run = chunk / L, b = tab[chunk_at + 2 * g + 1] + lid * run;
    __global const int *d = tab + i * SN_DESC;
    const int E = d[SN_ROWS] * d[SN_COLS], n = b + run < E ? run : E - b;
    const float sg = sigma[sigma_off + i];
    __global const float *x = w + d[SN_W] + b;
    __global float *y = out + out_off + d[SN_E] + b;
    for (int t = 0; t < n; t++)
        y[t] = x[t] / sg;
}

/* Global (L * row groups), local (L): rows(o) = dWsn row o . W row o. */
__kernel void sn_set_rowdot(__global const float *restrict dwsn, const int dwsn_off, __global const float *restrict w,
                            __global float *restrict rows, const int rows_off, __global const int *restrict tab,
                            const int row_at, __local float *ls)
{
    sn_row_dots(dwsn + dwsn_off, SN_E, w, SN_W, 1, rows + rows_off, tab, row_at, ls);
}

/* Global (L * weights), local (L): work-group i handles weight i. */
__kernel void sn_set_coef(__global const float *restrict rows, const int rows_off, __global const float *restrict sigma,
                          const int sigma_off, __global float *restrict coef, const int coef_off,
                          __global const int *restrict tab, __local float *ls)
{
    const int lid = get_local_id(0), i = get_group_id(0);
    __global const int *d = tab + i * SN_DESC;
    const int Cout = d[SN_ROWS], S = d[SN_SC];
    __global const float *r = rows + rows_off + d[SN_R];
    float s = 0.0f;
    if (lid < S)
        for (int o = lid; o < Cout; o += S)
            s += r[o];
    const float t = sn_first_segment_sum(ls, s, lid, S);
    if (lid == 0) {
        const float sg = sigma[sigma_off + i];
        coef[coef_off + i] = t / (sg * sg);
    }
}

/* Global (L * chunks), local (L): item lid of chunk g updates a run of
 * chunk / L consecutive elements, row piece by row piece (contiguous inner
 * loops, as sn_set_scale). */
__kernel void sn_set_dw(__global const float *restrict dwsn, const int dwsn_off, __global const float *restrict uu,
                        const int uu_off, __global const float *restrict vu, const int vu_off,
                        __global const float *restrict sigma, const int sigma_off, __global const float *restrict coef,
                        const int coef_off, __global float *restrict dw, __global const int *restrict tab,
                        const int chunk_at, const int chunk)
{
    const int lid = get_local_id(0), L = get_local_size(0), g = get_group_id(0);
    const int i = tab[chunk_at + 2 * g], run = chunk / L, b = tab[chunk_at + 2 * g + 1] + lid * run;
    __global const int *d = tab + i * SN_DESC;
    const int K = d[SN_COLS], E = d[SN_ROWS] * K, stop = b + run < E ? b + run : E;
    const float sg = sigma[sigma_off + i], cf = coef[coef_off + i];
    __global const float *a = dwsn + dwsn_off + d[SN_E];
    __global const float *ui = uu + uu_off + d[SN_R];
    __global const float *vi = vu + vu_off + d[SN_C];
    __global float *gi = dw + d[SN_DW];
    for (int e = b; e < stop;) {
        const int o = e / K, k0 = e - o * K, n = (stop - e < K - k0 ? stop - e : K - k0);
        const float cu = cf * ui[o]; /* (coef u[o]) v[k], the per-weight kernel's order */
        __global const float *ar = a + e;
        __global const float *vr = vi + k0;
        __global float *gr = gi + e;
        for (int t = 0; t < n; t++)
            gr[t] += ar[t] / sg - cu * vr[t];
        e += n;
    }
}
