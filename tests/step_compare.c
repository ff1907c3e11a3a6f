/* Step equivalence of two training runs (see step_compare.h). */
#include "step_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAM_ATOL 1e-5
#define GRAD_FLOOR_REL 1e-6
#define GRAD_RTOL 1e-4

int clsynth_test_net_state_get(clsynth_ctx *ctx, const clsynth_param_group *g, clsynth_test_net_state *s)
{
    memset(s, 0, sizeof *s);
    s->g = g;
    s->n = g->total;
    s->p = malloc(s->n * sizeof(float));
    s->m = malloc(s->n * sizeof(float));
    s->v = malloc(s->n * sizeof(float));
    if (!s->p || !s->m || !s->v)
        return clsynth_ctx_fail(ctx, "out of host memory");
    if (clsynth_tensor_download(ctx, g->flat_data, s->p) || clsynth_tensor_download(ctx, g->adam_m, s->m) ||
        clsynth_tensor_download(ctx, g->adam_v, s->v))
        return -1;
    return 0;
}

void clsynth_test_net_state_free(clsynth_test_net_state *s)
{
    free(s->p);
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Name of the parameter holding flat element i, and i's index inside it. */
static const char *param_at(const clsynth_param_group *g, size_t i, size_t *within)
{
    for (int k = 0; k < g->n_params; k++) {
        const clsynth_tensor *t = g->params[k];
        if (i >= t->off && i < t->off + t->numel) {
            *within = i - t->off;
            return t->name;
        }
    }
    *within = i;
    return "?";
}

int clsynth_test_same_step(const char *what, const clsynth_test_net_state *a, const clsynth_test_net_state *ref,
                           size_t *exempt, char *msg, size_t cap)
{
    size_t ex = 0, within;
    if (exempt)
        *exempt = 0;
    if (a->n != ref->n) {
        snprintf(msg, cap, "%s: %zu and %zu parameters", what, a->n, ref->n);
        return -1;
    }
    double mmax = 0;
    for (size_t i = 0; i < ref->n; i++)
        mmax = fmax(mmax, fabs((double)ref->m[i]));
    const double floor = GRAD_FLOOR_REL * mmax;
    double tmax = 0; /* largest |m_ref| of the parameter tensor element i belongs to */
    size_t tend = 0;
    for (size_t i = 0; i < ref->n; i++) {
        if (i >= tend) {
            const clsynth_tensor *t = NULL;
            for (int k = 0; k < ref->g->n_params && !t; k++)
                if (i >= ref->g->params[k]->off && i < ref->g->params[k]->off + ref->g->params[k]->numel)
                    t = ref->g->params[k];
            size_t t0 = t ? t->off : i;
            tend = t ? t->off + t->numel : i + 1;
            tmax = 0;
            for (size_t j = t0; j < tend; j++)
                tmax = fmax(tmax, fabs((double)ref->m[j]));
        }
        const double ma = a->m[i], mr = ref->m[i], va = a->v[i], vr = ref->v[i];
        const double tol_g = floor + GRAD_RTOL * tmax;
        /* v = beta2 v' + (1 - beta2) g^2 from the same v': the gradient's tolerance carried over */
        const double tol_v = (1.0 - ref->g->beta2) * (2.0 * fabs(mr) + tol_g) * tol_g + 1e-6 * fabs(vr);
        const char *name;
        if (!(fabs(ma - mr) <= tol_g)) {
            name = param_at(ref->g, i, &within);
            snprintf(msg, cap, "%s: gradient of %s[%zu] is %.7g, reference %.7g (tolerance %.3g: floor %.3g + %g x "
                               "the tensor's largest %.3g)",
                     what, name, within, ma, mr, tol_g, floor, GRAD_RTOL, tmax);
            return -1;
        }
        if (!(fabs(va - vr) <= tol_v)) {
            name = param_at(ref->g, i, &within);
            snprintf(msg, cap, "%s: Adam v of %s[%zu] is %.7g, reference %.7g", what, name, within, va, vr);
            return -1;
        }
        if (fabs((double)a->p[i] - ref->p[i]) <= PARAM_ATOL)
            continue;
        if (fabs(ma) <= floor && fabs(mr) <= floor) {
            ex++;
            continue;
        }
        name = param_at(ref->g, i, &within);
        snprintf(msg, cap, "%s: %s[%zu] is %.7g, reference %.7g (gradients %.7g and %.7g)", what, name, within,
                 a->p[i], ref->p[i], ma, mr);
        return -1;
    }
    if (exempt)
        *exempt = ex;
    return 0;
}
