/* Adam step over a parameter group's flat buffers (clcore/ops_adam.c), as
 * torch.optim.Adam without weight decay:
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *   p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
 * with step_size = lr / (1 - b1^t) and bc2_sqrt = sqrt(1 - b2^t) computed on the
 * host in double. One work-item per element.
 * Tunables: none (-D); local size = launch default.
 * Memory traffic: 28 bytes per parameter (read p, g, m, v; write p, m, v). */
__kernel void adam_step(__global float *p, const int p_off, __global const float *g, const int g_off,
                        __global float *m, const int m_off, __global float *v, const int v_off, const int n,
                        const float beta1, const float beta2, const float step_size, const float bc2_sqrt,
                        const float eps)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float gi = g[g_off + i];
    const float mi = beta1 * m[m_off + i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[v_off + i] + (1.0f - beta2) * gi * gi;
    m[m_off + i] = mi;
    v[v_off + i] = vi;
    p[p_off + i] -= step_size * mi / (sqrt(vi) / bc2_sqrt + eps);
}
