/* Basic tensor kernels.
 * tensor_fill: p[i] = v for i < n. Tunables: none (1-D, launch default).
 * Memory traffic: 4n bytes written. */
__kernel void tensor_fill(__global float *p, const int p_off, const int n, const float v)
{
    const int i = get_global_id(0);
    if (i < n)
        p[p_off + i] = v;
}

/* tensor_axpby: y[i] = a * x[i] + b * y[i] for i < n.
 * Memory traffic: 12n bytes. */
__kernel void tensor_axpby(const float a, __global const float *x, const int x_off, const float b,
                           __global float *y, const int y_off, const int n)
{
    const int i = get_global_id(0);
    if (i < n)
        y[y_off + i] = a * x[x_off + i] + b * y[y_off + i];
}
