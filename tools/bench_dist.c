/* `mpirun -np K clsynth bench train [model flags]`: the data-parallel training
 * step of a configuration on synthetic inputs (tools/bench_workload.h).
 *
 * Each measured step with communication is followed by the same step with the
 * communicator detached (every rank steps alone, no averaging, batch norm per
 * rank), interleaved, so both see the same machine load. Reported per step:
 * the step time (rank 0 and the slowest rank), the time and payload bytes of
 * each kind of collective (gradient averaging with its device staging split
 * out, synchronized batch norm, model state / losses / stop votes), and the
 * fraction of the step spent communicating (time inside collectives, waiting
 * for the slowest rank included), and the gradient bytes all-reduced again
 * after a barrier (the transport alone). --json FILE writes the figures. */
#include "tools/bench_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/comm.h"
#include "nets/model_dist.h"
#include "tools/bench_workload.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int barrier(clsynth_ctx *ctx)
{
    int64_t one = 1;
    return clsynth_comm_allreduce_sum(ctx, &one, 1, CLSYNTH_COMM_I64, CLSYNTH_COMM_STATE);
}

static void load_average(char *out, size_t cap)
{
    FILE *f = fopen("/proc/loadavg", "r");
    double a = 0, b = 0, c = 0;
    if (f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
    else
        snprintf(out, cap, "unknown");
    if (f)
        fclose(f);
}

static void json_text(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++)
        if ((unsigned char)*s >= 32 && *s != '"' && *s != '\\')
            fputc(*s, f);
    fputc('"', f);
}

int clsynth_bench_train_distributed(clsynth_dist *d, const char *device, int model_argc, char **model_argv,
                                    int steps, const char *json)
{
    clsynth_err err;
    char spec[256];
    if (clsynth_dist_device_spec(device, d->local_rank, d->local_size, spec, sizeof spec, &err))
        return clsynth_dist_abort(d, "bench", 2, err.msg);
    clsynth_ctx *ctx = clsynth_ctx_create(spec[0] ? spec : NULL, &err);
    if (!ctx)
        return clsynth_dist_abort(d, "bench", 1, err.msg);
    ctx->quiet = true;
    clsynth_dist_attach(d, ctx);
    clsynth_comm *c = ctx->comm;
    const bool root = d->rank == 0;
    char *tiny[] = { "--preset", "tiny" };
    clsynth_workload wl;
    if (clsynth_workload_init(ctx, model_argc ? model_argc : 2, model_argc ? model_argv : tiny, &wl, &err))
        return clsynth_dist_abort(d, "bench", 1, err.msg);
    size_t pg, pd, pe;
    clsynth_model_param_counts(wl.m, &pg, &pd, &pe);
    if (root) {
        printf("distributed training step: %d ranks x batch %d (global %d), preset '%s' %dx%d, G %.2fM + D %.2fM "
               "parameters, %d steps, each followed by the same step without communication\n",
               d->size, wl.n, wl.n * d->size, wl.opt.preset, wl.h, wl.w, (double)(pg + pe) / 1e6, (double)pd / 1e6,
               steps);
        printf("device of rank 0: %s (%s)\n", ctx->dev.name, ctx->dev.platform_name);
        fflush(stdout);
    }
    /* as training does: every rank starts from rank 0's model; one warm-up step each way */
    if (clsynth_model_broadcast(ctx, wl.m, 0) || clsynth_workload_train_step(ctx, &wl))
        return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
    ctx->comm = NULL;
    if (clsynth_workload_train_step(ctx, &wl))
        return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
    ctx->comm = c;
    double with = 0, without = 0;
    clsynth_comm_stats total;
    memset(&total, 0, sizeof total);
    for (int i = 0; i < steps; i++) {
        if (barrier(ctx))
            return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
        clsynth_comm_reset_stats(c);
        double t0 = now_s();
        if (clsynth_workload_train_step(ctx, &wl))
            return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
        with += now_s() - t0;
        for (int k = 0; k < CLSYNTH_COMM_KINDS; k++) {
            total.calls[k] += c->stats.calls[k];
            total.bytes[k] += c->stats.bytes[k];
            total.seconds[k] += c->stats.seconds[k];
            total.wire_seconds[k] += c->stats.wire_seconds[k];
        }
        if (barrier(ctx))
            return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
        ctx->comm = NULL;
        t0 = now_s();
        int rc = clsynth_workload_train_step(ctx, &wl);
        without += now_s() - t0;
        ctx->comm = c;
        if (rc)
            return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
    }
        /* the same gradient bytes all-reduced host to host when every rank is ready
     * (after a barrier): the transport alone, without waiting for a slower rank */
    const size_t grad_floats = (size_t)(total.bytes[CLSYNTH_COMM_GRADS] / (uint64_t)steps / sizeof(float));
    const size_t bucket = c->bucket_elems ? c->bucket_elems : CLSYNTH_COMM_BUCKET_DEFAULT;
    float *host = calloc(bucket, sizeof *host);
    double pure = 1e30;
    for (int rep = 0; host && rep < 3; rep++) {
        if (barrier(ctx))
            return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
        double t0 = now_s();
        for (size_t off = 0; off < grad_floats; off += bucket)
            if (clsynth_comm_allreduce_sum(ctx, host, grad_floats - off < bucket ? grad_floats - off : bucket,
                                           CLSYNTH_COMM_F32, CLSYNTH_COMM_GRADS))
                return clsynth_dist_abort(d, "bench", 1, ctx->err.msg);
        double dt = now_s() - t0;
        pure = dt < pure ? dt : pure;
    }
    free(host);
    /* per step; the slowest rank's step times */
    double mine[2] = { with / steps, without / steps }, *all = malloc(sizeof mine * (size_t)d->size);
    if (!all || clsynth_comm_allgather(ctx, mine, all, sizeof mine, CLSYNTH_COMM_STATE))
        return clsynth_dist_abort(d, "bench", 1, all ? ctx->err.msg : "out of host memory");
    double slow[2] = { 0, 0 };
    for (int r = 0; r < d->size; r++)
        for (int j = 0; j < 2; j++)
            slow[j] = all[2 * r + j] > slow[j] ? all[2 * r + j] : slow[j];
    free(all);
    if (root) {
        char load[64];
        load_average(load, sizeof load);
        const double ms = 1e3 / steps, mb = 1e-6 / steps;
        double comm_s = 0;
        for (int k = 0; k < CLSYNTH_COMM_KINDS; k++)
            comm_s += total.seconds[k];
        const double grad_ms = total.seconds[CLSYNTH_COMM_GRADS] * ms,
                     grad_wire = total.wire_seconds[CLSYNTH_COMM_GRADS] * ms;
        printf("                                 rank 0        slowest rank\n");
        printf("  step with communication    %9.1f ms    %9.1f ms   (%.3f images/s over all ranks)\n", mine[0] * 1e3,
               slow[0] * 1e3, wl.n * d->size / slow[0]);
        printf("  step without communication %9.1f ms    %9.1f ms\n", mine[1] * 1e3, slow[1] * 1e3);
        printf("  communication              %9.1f ms per step = %.1f %% of the step (rank 0)\n", comm_s * ms,
               100.0 * comm_s / with);
        printf("    gradient averaging       %9.1f ms (MPI %.1f ms + device staging %.1f ms), %.2f MB in %.1f "
               "all-reduce buckets\n",
               grad_ms, grad_wire, grad_ms - grad_wire, (double)total.bytes[CLSYNTH_COMM_GRADS] * mb,
               (double)total.calls[CLSYNTH_COMM_GRADS] / steps);
        printf("    the same gradient bytes, ranks ready (best of 3): %.1f ms = %.2f GB/s of payload\n", pure * 1e3,
               (double)grad_floats * sizeof(float) / pure * 1e-9);
        printf("    synchronized batch norm  %9.1f ms, %.3f MB in %.0f collectives\n",
               total.seconds[CLSYNTH_COMM_NORM] * ms, (double)total.bytes[CLSYNTH_COMM_NORM] * mb,
               (double)total.calls[CLSYNTH_COMM_NORM] / steps);
        printf("    buffers, losses, votes   %9.1f ms, %.3f MB in %.0f collectives\n",
               total.seconds[CLSYNTH_COMM_STATE] * ms, (double)total.bytes[CLSYNTH_COMM_STATE] * mb,
               (double)total.calls[CLSYNTH_COMM_STATE] / steps);
        printf("  load average %s (%ld online CPUs)\n", load, sysconf(_SC_NPROCESSORS_ONLN));
        if (json) {
            FILE *f = fopen(json, "w");
            if (!f) {
                fprintf(stderr, "clsynth bench: cannot write %s\n", json);
            } else {
                fprintf(f, "{\n\"clsynth_bench_distributed\": 1,\n\"device\": ");
                json_text(f, ctx->dev.name);
                fprintf(f, ",\n\"ranks\": %d, \"batch_per_rank\": %d, \"preset\": ", d->size, wl.n);
                json_text(f, wl.opt.preset);
                fprintf(f, ", \"h\": %d, \"w\": %d, \"params_G\": %zu, \"params_D\": %zu, \"steps\": %d,\n", wl.h, wl.w,
                        pg + pe, pd, steps);
                fprintf(f, "\"step_ms\": %.6g, \"step_ms_slowest\": %.6g, \"step_ms_without_comm\": %.6g,\n",
                        mine[0] * 1e3, slow[0] * 1e3, mine[1] * 1e3);
                fprintf(f, "\"comm_ms\": %.6g, \"comm_fraction\": %.6g,\n", comm_s * ms, comm_s / with);
                fprintf(f, "\"grad_ms\": %.6g, \"grad_mpi_ms\": %.6g, \"grad_bytes\": %.6g,\n", grad_ms, grad_wire,
                        (double)total.bytes[CLSYNTH_COMM_GRADS] / steps);
                fprintf(f, "\"grad_allreduce_ready_ms\": %.6g,\n", pure * 1e3);
                fprintf(f, "\"syncbn_ms\": %.6g, \"syncbn_bytes\": %.6g, \"state_ms\": %.6g, \"state_bytes\": %.6g,\n",
                        total.seconds[CLSYNTH_COMM_NORM] * ms, (double)total.bytes[CLSYNTH_COMM_NORM] / steps,
                        total.seconds[CLSYNTH_COMM_STATE] * ms, (double)total.bytes[CLSYNTH_COMM_STATE] / steps);
                fprintf(f, "\"load_average\": ");
                json_text(f, load);
                fprintf(f, "\n}\n");
                fclose(f);
                printf("wrote %s\n", json);
            }
        }
    }
    clsynth_workload_free(ctx, &wl);
    clsynth_dist_finalize(d, ctx);
    clsynth_ctx_free(ctx);
    return 0;
}
