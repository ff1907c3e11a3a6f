/* Bias of a convolution or fully connected layer, and its gradient.
 *
 *   channel_bias_add:  y(n,c,h,w) += b(c)                 (bias of the GEMM paths)
 *   channel_sum_acc:   db(c) += sum_{n,h,w} dy(n,c,h,w)   (every bias gradient)
 *
 * Tunables: none (channel_sum_acc's work-group is chosen by the host within
 * the kernel's limits). Memory traffic: channel_bias_add reads and writes y
 * once (8 bytes per element, plus the cached bias); channel_sum_acc reads dy
 * once (4 bytes per element).
 *
 * Additions only: there is no a*b+c for a compiler to contract, so no FP_CONTRACT
 * pragma is needed for results to agree across implementations. channel_sum_acc's
 * sum does depend on its work-group size (the strided split and the tree), which
 * the host derives from the shape and the kernel's limits: the same on one device
 * from run to run, not necessarily the same on two implementations. */

/* One work-group per channel: global (C * lsz), local (lsz), any lsz; scratch lsz floats.
 * Each item sums a strided subset of the channel's N*HW values in a fixed order, then
 * the group reduces its partial sums as a tree. db(c) += total. */
__kernel void channel_sum_acc(__global const float *dy, const int dy_off, __global float *db, const int db_off,
                              const int N, const int C, const int HW, __local float *scratch)
{
    const int c = get_group_id(0);
    const int lid = get_local_id(0), lsz = get_local_size(0);
    float s = 0.0f;
    if (c < C)
        for (int n = 0; n < N; n++) {
            __global const float *p = dy + dy_off + (n * C + c) * HW;
            for (int i = lid; i < HW; i += lsz)
                s += p[i];
        }
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int m = lsz; m > 1;) {
        const int hm = (m + 1) / 2;
        if (lid < m - hm)
            scratch[lid] += scratch[lid + hm];
        barrier(CLK_LOCAL_MEM_FENCE);
        m = hm;
    }
    if (lid == 0 && c < C)
        db[db_off + c] += scratch[0];
}

/* global (N * C * HW); any local size. */
__kernel void channel_bias_add(__global float *y, const int y_off, __global const float *b, const int b_off,
                               const int C, const int HW, const int total)
{
    const int i = get_global_id(0);
    if (i >= total)
        return;
    const int c = (i / HW) % C;
    y[y_off + i] += b[b_off + c];
}
