/* Evaluation metrics on the host: confusion matrix, mIoU, pixel accuracy,
 * feature statistics and the Frechet distance (Jacobi eigen solver). */
#include "nets/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- confusion matrix ---- */

int clsynth_confusion_init(clsynth_confusion *c, int k, int ignore, clsynth_err *err)
{
    memset(c, 0, sizeof *c);
    if (k < 1 || k > 4096)
        return clsynth_fail(err, "confusion matrix: %d classes (need 1..4096)", k);
    c->m = calloc((size_t)k * (size_t)k, sizeof *c->m);
    if (!c->m)
        return clsynth_fail(err, "confusion matrix: out of memory for %d classes", k);
    c->k = k;
    c->ignore = ignore;
    return 0;
}

void clsynth_confusion_free(clsynth_confusion *c)
{
    if (!c)
        return;
    free(c->m);
    memset(c, 0, sizeof *c);
}

void clsynth_confusion_reset(clsynth_confusion *c)
{
    memset(c->m, 0, (size_t)c->k * (size_t)c->k * sizeof *c->m);
    c->counted = c->ignored = 0;
}

int clsynth_confusion_add(clsynth_confusion *c, const int32_t *gt, const int32_t *pred, size_t n,
                          clsynth_err *err)
{
    const int k = c->k;
    for (size_t i = 0; i < n; i++) {
        int32_t g = gt[i], p = pred[i];
        if (g == c->ignore) {
            c->ignored++;
            continue;
        }
        if (g < 0 || g >= k)
            return clsynth_fail(err, "confusion matrix: ground truth %d at pixel %zu is not a class "
                                "(0..%d) nor the ignore label %d", (int)g, i, k - 1, c->ignore);
        if (p < 0 || p >= k)
            return clsynth_fail(err, "confusion matrix: prediction %d at pixel %zu is not a class (0..%d)",
                                (int)p, i, k - 1);
        c->m[(size_t)g * (size_t)k + (size_t)p]++;
        c->counted++;
    }
    return 0;
}

int clsynth_confusion_add_logits(clsynth_confusion *c, const int32_t *gt, const float *logits,
                                 int h, int w, clsynth_err *err)
{
    const size_t hw = (size_t)h * (size_t)w;
    const int k = c->k;
    for (size_t i = 0; i < hw; i++) {
        int32_t g = gt[i];
        if (g == c->ignore) {
            c->ignored++;
            continue;
        }
        if (g < 0 || g >= k)
            return clsynth_fail(err, "confusion matrix: ground truth %d at pixel (%zu, %zu) is not a class "
                                "(0..%d) nor the ignore label %d", (int)g, i / (size_t)w, i % (size_t)w,
                                k - 1, c->ignore);
        int best = 0;
        float bv = logits[i];
        for (int j = 1; j < k; j++) {
            float v = logits[(size_t)j * hw + i];
            if (v > bv) {
                bv = v;
                best = j;
            }
        }
        if (isnan(bv))
            return clsynth_fail(err, "confusion matrix: NaN logit at pixel (%zu, %zu)", i / (size_t)w,
                                i % (size_t)w);
        c->m[(size_t)g * (size_t)k + (size_t)best]++;
        c->counted++;
    }
    return 0;
}

int clsynth_confusion_merge(clsynth_confusion *a, const clsynth_confusion *b, clsynth_err *err)
{
    if (a->k != b->k)
        return clsynth_fail(err, "confusion matrix: cannot merge %d classes into %d", b->k, a->k);
    for (size_t i = 0; i < (size_t)a->k * (size_t)a->k; i++)
        a->m[i] += b->m[i];
    a->counted += b->counted;
    a->ignored += b->ignored;
    return 0;
}

double clsynth_miou(const clsynth_confusion *c, clsynth_miou_mode mode, double *iou, int *n_classes)
{
    const int k = c->k;
    double sum = 0.0;
    int used = 0;
    for (int j = 0; j < k; j++) {
        uint64_t tp = c->m[(size_t)j * k + j], gt = 0, pr = 0;
        for (int i = 0; i < k; i++) {
            gt += c->m[(size_t)j * k + i]; /* row: ground truth j */
            pr += c->m[(size_t)i * k + j]; /* column: predicted j */
        }
        uint64_t uni = gt + pr - tp;
        double v = uni ? (double)tp / (double)uni : NAN;
        if (iou)
            iou[j] = v;
        int take = mode == CLSYNTH_MIOU_GT ? gt > 0 : uni > 0;
        if (take) {
            sum += v;
            used++;
        }
    }
    if (n_classes)
        *n_classes = used;
    return used ? sum / used : NAN;
}

double clsynth_pixel_accuracy(const clsynth_confusion *c)
{
    if (!c->counted)
        return NAN;
    uint64_t tp = 0;
    for (int j = 0; j < c->k; j++)
        tp += c->m[(size_t)j * c->k + j];
    return (double)tp / (double)c->counted;
}

double clsynth_mean_class_accuracy(const clsynth_confusion *c)
{
    const int k = c->k;
    double sum = 0.0;
    int used = 0;
    for (int j = 0; j < k; j++) {
        uint64_t gt = 0;
        for (int i = 0; i < k; i++)
            gt += c->m[(size_t)j * k + i];
        if (gt) {
            sum += (double)c->m[(size_t)j * k + j] / (double)gt;
            used++;
        }
    }
    return used ? sum / used : NAN;
}

/* ---- feature statistics ---- */

int clsynth_feature_stats_init(clsynth_feature_stats *s, int dim, clsynth_err *err)
{
    memset(s, 0, sizeof *s);
    if (dim < 1 || dim > 4096)
        return clsynth_fail(err, "feature statistics: dimension %d (need 1..4096)", dim);
    s->mean = calloc((size_t)dim, sizeof *s->mean);
    s->m2 = calloc((size_t)dim * (size_t)dim, sizeof *s->m2);
    s->delta = calloc((size_t)dim, sizeof *s->delta);
    if (!s->mean || !s->m2 || !s->delta) {
        clsynth_feature_stats_free(s);
        return clsynth_fail(err, "feature statistics: out of memory for dimension %d", dim);
    }
    s->dim = dim;
    return 0;
}

void clsynth_feature_stats_free(clsynth_feature_stats *s)
{
    if (!s)
        return;
    free(s->mean);
    free(s->m2);
    free(s->delta);
    memset(s, 0, sizeof *s);
}

void clsynth_feature_stats_add(clsynth_feature_stats *s, const float *x, int count)
{
    const int d = s->dim;
    double *delta = s->delta;
    for (int v = 0; v < count; v++) {
        const float *xv = x + (size_t)v * d;
        s->n++;
        /* Welford: delta before the mean update, (x - new mean) after. */
        for (int i = 0; i < d; i++) {
            delta[i] = (double)xv[i] - s->mean[i];
            s->mean[i] += delta[i] / (double)s->n;
        }
        for (int i = 0; i < d; i++) {
            double ai = delta[i];
            double *row = s->m2 + (size_t)i * d;
            for (int j = 0; j < d; j++)
                row[j] += ai * ((double)xv[j] - s->mean[j]);
        }
    }
}

int clsynth_feature_stats_cov(const clsynth_feature_stats *s, double *cov, clsynth_err *err)
{
    if (s->n < 2)
        return clsynth_fail(err, "feature statistics: %ld vector(s), a covariance needs at least 2", s->n);
    const int d = s->dim;
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) /* symmetrize away the rounding of the Welford update */
            cov[(size_t)i * d + j] = 0.5 * (s->m2[(size_t)i * d + j] + s->m2[(size_t)j * d + i]) /
                                     (double)(s->n - 1);
    return 0;
}

/* ---- Jacobi eigen solver ---- */

int clsynth_sym_eigen(int n, double *a, double *evals, double *evecs)
{
    double *v = evecs;
    if (v) {
        memset(v, 0, (size_t)n * n * sizeof *v);
        for (int i = 0; i < n; i++)
            v[(size_t)i * n + i] = 1.0;
    }
    double total = 0.0;
    for (size_t i = 0; i < (size_t)n * n; i++)
        total += a[i] * a[i];
    int sweep, converged = 0;
    for (sweep = 0; sweep < 100; sweep++) {
        double off = 0.0;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                off += 2.0 * a[(size_t)p * n + q] * a[(size_t)p * n + q];
        if (off <= 1e-24 * total || off == 0.0) {
            converged = 1;
            break;
        }
        for (int p = 0; p < n; p++) {
            for (int q = p + 1; q < n; q++) {
                double apq = a[(size_t)p * n + q];
                if (apq == 0.0)
                    continue;
                double app = a[(size_t)p * n + p], aqq = a[(size_t)q * n + q];
                /* Rotation P (P_pp = P_qq = c, P_pq = s, P_qp = -s) with
                 * (P^T A P)_pq = 0: t = tan of the angle, the smaller root. */
                double theta = (aqq - app) / (2.0 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < n; k++) { /* A <- A P (columns p, q) */
                    double akp = a[(size_t)k * n + p], akq = a[(size_t)k * n + q];
                    a[(size_t)k * n + p] = c * akp - s * akq;
                    a[(size_t)k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) { /* A <- P^T A (rows p, q) */
                    double apk = a[(size_t)p * n + k], aqk = a[(size_t)q * n + k];
                    a[(size_t)p * n + k] = c * apk - s * aqk;
                    a[(size_t)q * n + k] = s * apk + c * aqk;
                }
                a[(size_t)p * n + q] = a[(size_t)q * n + p] = 0.0;
                if (v)
                    for (int k = 0; k < n; k++) {
                        double vkp = v[(size_t)k * n + p], vkq = v[(size_t)k * n + q];
                        v[(size_t)k * n + p] = c * vkp - s * vkq;
                        v[(size_t)k * n + q] = s * vkp + c * vkq;
                    }
            }
        }
    }
    for (int i = 0; i < n; i++)
        evals[i] = a[(size_t)i * n + i];
    /* Selection sort ascending, columns of V along (n <= a few hundred). */
    for (int i = 0; i < n; i++) {
        int m = i;
        for (int j = i + 1; j < n; j++)
            if (evals[j] < evals[m])
                m = j;
        if (m != i) {
            double t = evals[i];
            evals[i] = evals[m];
            evals[m] = t;
            if (v)
                for (int k = 0; k < n; k++) {
                    double x = v[(size_t)k * n + i];
                    v[(size_t)k * n + i] = v[(size_t)k * n + m];
                    v[(size_t)k * n + m] = x;
                }
        }
    }
    return converged ? sweep : -1;
}

int clsynth_sym_sqrt(int n, const double *a, double *out, clsynth_err *err)
{
    size_t nn = (size_t)n * n;
    double *w = malloc(nn * sizeof *w), *v = malloc(nn * sizeof *v), *l = malloc((size_t)n * sizeof *l);
    int rc = -1;
    if (!w || !v || !l) {
        clsynth_fail(err, "matrix square root: out of memory (n = %d)", n);
        goto done;
    }
    memcpy(w, a, nn * sizeof *w);
    if (clsynth_sym_eigen(n, w, l, v) < 0) {
        clsynth_fail(err, "matrix square root: the Jacobi eigen solver did not converge (n = %d)", n);
        goto done;
    }
    for (int j = 0; j < n; j++)
        l[j] = l[j] > 0.0 ? sqrt(l[j]) : 0.0;
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += v[(size_t)i * n + k] * l[k] * v[(size_t)j * n + k];
            out[(size_t)i * n + j] = out[(size_t)j * n + i] = s;
        }
    rc = 0;
done:
    free(w);
    free(v);
    free(l);
    return rc;
}

/* c = a * b, all (n, n). */
static void matmul(int n, const double *a, const double *b, double *c)
{
    for (int i = 0; i < n; i++) {
        double *ci = c + (size_t)i * n;
        for (int j = 0; j < n; j++)
            ci[j] = 0.0;
        for (int k = 0; k < n; k++) {
            double aik = a[(size_t)i * n + k];
            const double *bk = b + (size_t)k * n;
            for (int j = 0; j < n; j++)
                ci[j] += aik * bk[j];
        }
    }
}

int clsynth_frechet_distance(int d, const double *mu1, const double *c1, const double *mu2,
                             const double *c2, double *out, clsynth_err *err)
{
    if (d < 1 || d > 1024)
        return clsynth_fail(err, "Frechet distance: dimension %d (need 1..1024)", d);
    size_t nn = (size_t)d * d;
    double *s = malloc(nn * sizeof *s), *t = malloc(nn * sizeof *t), *m = malloc(nn * sizeof *m);
    double *l = malloc((size_t)d * sizeof *l);
    int rc = -1;
    if (!s || !t || !m || !l) {
        clsynth_fail(err, "Frechet distance: out of memory (dimension %d)", d);
        goto done;
    }
    if (clsynth_sym_sqrt(d, c1, s, err)) {
        clsynth_wrap(err, "Frechet distance");
        goto done;
    }
    /* M = sqrt(C1) C2 sqrt(C1) is symmetric PSD with the eigenvalues of C1 C2:
     * Tr sqrt(C1 C2) = sum sqrt(eig(M)). */
    matmul(d, s, c2, t);
    matmul(d, t, s, m);
    for (int i = 0; i < d; i++)
        for (int j = i + 1; j < d; j++) {
            double x = 0.5 * (m[(size_t)i * d + j] + m[(size_t)j * d + i]);
            m[(size_t)i * d + j] = m[(size_t)j * d + i] = x;
        }
    if (clsynth_sym_eigen(d, m, l, NULL) < 0) {
        clsynth_fail(err, "Frechet distance: the Jacobi eigen solver did not converge (dimension %d)", d);
        goto done;
    }
    double diff = 0.0, tr = 0.0, trs = 0.0;
    for (int i = 0; i < d; i++) {
        double dm = mu1[i] - mu2[i];
        diff += dm * dm;
        tr += c1[(size_t)i * d + i] + c2[(size_t)i * d + i];
        trs += l[i] > 0.0 ? sqrt(l[i]) : 0.0;
    }
    double fd = diff + tr - 2.0 * trs;
    /* Rounding can leave a tiny negative value for (nearly) identical sets. */
    *out = fd > 0.0 ? fd : 0.0;
    rc = 0;
done:
    free(s);
    free(t);
    free(m);
    free(l);
    return rc;
}

int clsynth_frechet_from_stats(const clsynth_feature_stats *a, const clsynth_feature_stats *b,
                               double *out, clsynth_err *err)
{
    if (a->dim != b->dim)
        return clsynth_fail(err, "Frechet distance: feature dimensions differ (%d vs %d)", a->dim, b->dim);
    size_t nn = (size_t)a->dim * a->dim;
    double *ca = malloc(nn * sizeof *ca), *cb = malloc(nn * sizeof *cb);
    int rc = -1;
    if (!ca || !cb)
        clsynth_fail(err, "Frechet distance: out of memory (dimension %d)", a->dim);
    else if (clsynth_feature_stats_cov(a, ca, err) || clsynth_feature_stats_cov(b, cb, err))
        clsynth_wrap(err, "Frechet distance");
    else
        rc = clsynth_frechet_distance(a->dim, a->mean, ca, b->mean, cb, out, err);
    free(ca);
    free(cb);
    return rc;
}
