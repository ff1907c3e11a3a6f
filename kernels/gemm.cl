/* The bias epilogue of clsynth_gemm's OpenCL-side algorithms (clcore/gemm_clblast.c):
 *
 *   gemm_row_bias:  C_i(r, j) += bias(r) for every row r < m, column j < n of each of
 *                   `batch` outputs C_i = C + i * c_stride (leading dimension ldc)
 *                   (a conv layer's per-channel bias on its GEMM output).
 *
 * Tunables: none (the launch helper's local size). Memory traffic: reads and writes
 * each C element once, reads the cached bias. */

/* global (n, m, batch) */
__kernel void gemm_row_bias(__global float *c, const int c_off, const int ldc, const int c_stride,
                            __global const float *bias, const int bias_off, const int m, const int n,
                            const int batch)
{
    const int j = get_global_id(0), r = get_global_id(1), i = get_global_id(2);
    if (j >= n || r >= m || i >= batch)
        return;
    c[c_off + i * c_stride + r * ldc + j] += bias[bias_off + r];
}
