/* `clsynth bench conv` (tools/bench_conv.h). */
#include "tools/bench_conv.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/ops.h"

/* The table's columns: each algorithm, and oneDNN once per layout. */
typedef struct column {
    int algo;
    int layout; /* CONV2D_DNNL_LAYOUT's value, 0: any */
    const char *name;
} column;

static const column columns[] = {
    { CLSYNTH_CONV_DIRECT, 0, "direct" },     { CLSYNTH_CONV_IM2COL_GEMM, 0, "im2col_gemm" },
    { CLSYNTH_CONV_IGEMM, 0, "igemm" },       { CLSYNTH_CONV_WINOGRAD, 0, "winograd" },
#ifdef CLSYNTH_HAVE_DNNL
    { CLSYNTH_CONV_DNNL, CONV2D_DNNL_BLOCKED, "dnnl" }, { CLSYNTH_CONV_DNNL, CONV2D_DNNL_PLAIN, "dnnl_plain" },
#endif
};
#define NA ((int)(sizeof columns / sizeof columns[0]))

typedef struct conv_row {
    const char *key;
    unsigned long uses;
    int def_col;                     /* the resolver's choice (-1: none of the columns) */
    int def_v[CLSYNTH_K_MAX_PARAMS]; /* its values */
    double ms[NA];                   /* [k]: column k; NAN: not legal here */
} conv_row;

static bool is_layout(int p)
{
#ifdef CLSYNTH_HAVE_DNNL
    return p == CONV2D_DNNL_LAYOUT;
#else
    (void)p;
    return false;
#endif
}

/* The first legal candidate of the conv2d descriptor at key of column col
 * (the tuner's enumeration: its other tunables at their first legal values),
 * timed; NAN when the algorithm has none there (Winograd off 3x3 stride 1). */
static int measure_algo(clsynth_ctx *ctx, const char *key, const int *def, const column *col, int repeats,
                        double *ms)
{
    int *v = NULL;
    size_t count = 0;
    if (clsynth_tune_enumerate(ctx, &clsynth_kdef_conv2d, key, false, &v, &count))
        return -1;
    const int np = clsynth_kdef_conv2d.n_params;
    /* the candidate with the resolved defaults' other values (im2col + GEMM:
     * the default batch layout), else the first one of the algorithm */
    size_t c = count;
    for (size_t i = 0; i < count; i++) {
        const int *cv = v + i * (size_t)np;
        if (cv[CONV2D_ALGO] != col->algo)
            continue;
        bool lay = false;
        for (int p = 0; p < np; p++)
            lay = lay || (is_layout(p) && col->layout && cv[p] != col->layout);
        if (lay)
            continue;
        bool same = true;
        for (int p = 0; p < np; p++)
            same = same && (p == CONV2D_ALGO || (is_layout(p) && col->layout) || cv[p] == def[p]);
        if (same || c == count)
            c = i;
        if (same)
            break;
    }
    *ms = NAN;
    int rc = 0;
    if (c < count) {
        clsynth_kforce f = { .def = &clsynth_kdef_conv2d };
        memcpy(f.v, v + c * (size_t)np, sizeof(int) * (size_t)np);
        rc = clsynth_tune_measure(ctx, &clsynth_kdef_conv2d, key, &f, repeats, NULL, NULL, ms, NULL, NULL);
    }
    free(v);
    return rc;
}

int clsynth_bench_conv(clsynth_ctx *ctx, const clsynth_tune_job *jobs, size_t n_jobs, int repeats, int rounds)
{
    conv_row *rows = calloc(n_jobs ? n_jobs : 1, sizeof *rows);
    if (!rows)
        return clsynth_ctx_fail(ctx, "out of host memory");
    size_t n = 0;
    for (size_t i = 0; i < n_jobs; i++) {
        if (jobs[i].def != &clsynth_kdef_conv2d)
            continue;
        conv_row *r = &rows[n++];
        r->key = jobs[i].shape;
        r->uses = jobs[i].uses;
        clsynth_kshape s;
        clsynth_kcfg cfg;
        if (!clsynth_kdef_conv2d.parse(r->key, &s) || clsynth_kconfig(ctx, &clsynth_kdef_conv2d, &s, NULL, &cfg)) {
            char msg[sizeof ctx->err.msg];
            snprintf(msg, sizeof msg, "%s", ctx->err.msg);
            clsynth_ctx_fail(ctx, "bench conv: conv2d at '%s' does not resolve: %s", jobs[i].shape, msg);
            free(rows);
            return -1;
        }
        memcpy(r->def_v, cfg.v, sizeof r->def_v);
        r->def_col = -1;
        for (int k = 0; k < NA; k++) {
            r->ms[k] = INFINITY;
            if (r->def_col < 0 && columns[k].algo == cfg.v[CONV2D_ALGO] &&
                (!columns[k].layout || cfg.v[CONV2D_DNNL_LAYOUT] == columns[k].layout))
                r->def_col = k;
        }
    }
    /* interleaved: every row and algorithm once per round */
    for (int round = 0; round < rounds; round++)
        for (size_t i = 0; i < n; i++)
            for (int a = 0; a < NA; a++) {
                double ms;
                if (isnan(rows[i].ms[a]))
                    continue;
                if (measure_algo(ctx, rows[i].key, rows[i].def_v, &columns[a], repeats, &ms)) {
                    free(rows);
                    return -1;
                }
                if (isnan(ms) || ms < rows[i].ms[a])
                    rows[i].ms[a] = ms;
            }
    printf("\nconv2d forward + backward at the step's shapes, ms (fastest of %d interleaved rounds of the median "
           "of %d); lookups: per training step + inference (about 2 per forward + backward)\n",
           rounds, repeats);
    printf("%-34s %7s", "shape N.Cin.HxW.Cout.KxK.s.p", "lookups");
    for (int a = 0; a < NA; a++)
        printf(" %11s", columns[a].name);
    printf("  %-11s %s\n", "default", "best");
    double tot[NA] = { 0 }, tot_def = 0, tot_best = 0;
    for (size_t i = 0; i < n; i++) {
        const conv_row *r = &rows[i];
        const double w = (double)r->uses / 2.0;
        printf("%-34s %7lu", r->key, r->uses);
        int best = -1;
        for (int a = 0; a < NA; a++) {
            if (isnan(r->ms[a])) {
                printf(" %11s", "-");
                continue;
            }
            printf(" %11.3f", r->ms[a]);
            tot[a] += w * r->ms[a];
            if (best < 0 || r->ms[a] < r->ms[best])
                best = a;
        }
        for (int a = 0; a < NA; a++)
            if (isnan(r->ms[a]))
                tot[a] += w * (best >= 0 ? r->ms[best] : 0); /* n/a: counted at the best, so the totals compare */
        const int d = r->def_col;
        tot_def += d >= 0 && !isnan(r->ms[d]) ? w * r->ms[d] : 0;
        tot_best += best >= 0 ? w * r->ms[best] : 0;
        printf("  %-11s %s\n", d >= 0 ? columns[d].name : "?", best >= 0 ? columns[best].name : "-");
    }
    printf("%-34s %7s", "total (ms per step, lookups/2 each)", "");
    for (int a = 0; a < NA; a++)
        printf(" %11.1f", tot[a]);
    printf("  default %.1f, best per shape %.1f (n/a cells counted at the row's best)\n", tot_def, tot_best);
    free(rows);
    return 0;
}
