/* Evaluation metrics on the host: segmentation scores from a confusion
 * matrix, and the Frechet distance between two sets of feature vectors.
 *
 * Segmentation. The confusion matrix counts pixels by (ground truth, predicted
 * class); ground-truth pixels equal to the ignore label are skipped (counted in
 * `ignored`). IoU of class k = TP / (TP + FP + FN).
 *   mIoU, CLSYNTH_MIOU_PRESENT (the default, as the DRN / mmsegmentation
 *   evaluation code SPADE and CC-FPSE report with): mean over the classes whose
 *   union is not empty, i.e. present in the ground truth or in the prediction;
 *   a class predicted but absent from the ground truth counts with IoU 0.
 *   CLSYNTH_MIOU_GT: mean over the classes present in the ground truth only.
 *   Pixel accuracy = correctly classified / counted (non-ignored) pixels.
 *
 * Frechet distance between Gaussians fitted to two feature sets:
 *   d^2 = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1^1/2 C2 C1^1/2)^1/2)
 * in double, with the symmetric square roots from a cyclic Jacobi eigen solver
 * (eigenvalues clamped at 0). Covariances are unbiased (divide by n - 1). */
#ifndef CLSYNTH_NETS_METRICS_H
#define CLSYNTH_NETS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "clcore/error.h"

/* ---- confusion matrix, mIoU, pixel accuracy ---- */
typedef struct clsynth_confusion {
    int k;           /* classes */
    int ignore;      /* ground-truth value that is skipped (e.g. 255); any int */
    uint64_t *m;     /* (k, k): m[gt * k + pred] */
    uint64_t counted;
    uint64_t ignored;
} clsynth_confusion;

typedef enum clsynth_miou_mode {
    CLSYNTH_MIOU_PRESENT = 0, /* classes in ground truth or prediction (default) */
    CLSYNTH_MIOU_GT,          /* classes in ground truth */
} clsynth_miou_mode;

int clsynth_confusion_init(clsynth_confusion *c, int k, int ignore, clsynth_err *err);
void clsynth_confusion_free(clsynth_confusion *c);
void clsynth_confusion_reset(clsynth_confusion *c);
/* Adds n pixels. A ground-truth value outside [0, k) that is not the ignore
 * label, or a prediction outside [0, k), is an error naming the pixel. */
int clsynth_confusion_add(clsynth_confusion *c, const int32_t *gt, const int32_t *pred, size_t n,
                          clsynth_err *err);
/* Adds one image from logits (k, h, w) (argmax over k; ties go to the lower
 * class) and its ground truth (h, w). */
int clsynth_confusion_add_logits(clsynth_confusion *c, const int32_t *gt, const float *logits,
                                 int h, int w, clsynth_err *err);
/* Merges b into a (same k). */
int clsynth_confusion_merge(clsynth_confusion *a, const clsynth_confusion *b, clsynth_err *err);

/* Mean IoU in [0, 1] (NaN when no class qualifies). iou, when not NULL, gets
 * k per-class values (NaN for classes with an empty union); n_classes, when
 * not NULL, the number of classes averaged. */
double clsynth_miou(const clsynth_confusion *c, clsynth_miou_mode mode, double *iou, int *n_classes);
/* Pixel accuracy in [0, 1] (NaN when nothing was counted). */
double clsynth_pixel_accuracy(const clsynth_confusion *c);
/* Mean over classes present in the ground truth of the per-class recall. */
double clsynth_mean_class_accuracy(const clsynth_confusion *c);

/* ---- feature statistics and Frechet distance ---- */
/* Streaming mean and co-moment (Welford) in double. */
typedef struct clsynth_feature_stats {
    int dim;
    long n;
    double *mean;  /* (dim) */
    double *m2;    /* (dim, dim) sum of (x - mean)(x - mean)^T */
    double *delta; /* (dim) scratch */
} clsynth_feature_stats;

int clsynth_feature_stats_init(clsynth_feature_stats *s, int dim, clsynth_err *err);
void clsynth_feature_stats_free(clsynth_feature_stats *s);
/* Adds count vectors of dim floats, stored one after another. */
void clsynth_feature_stats_add(clsynth_feature_stats *s, const float *x, int count);
/* Unbiased covariance (dim, dim) into cov; needs n >= 2. */
int clsynth_feature_stats_cov(const clsynth_feature_stats *s, double *cov, clsynth_err *err);

/* Frechet distance (squared form, as FID reports it) between N(mu1, c1) and
 * N(mu2, c2) of dimension d (1..1024). Returns 0 and *out, or -1. */
int clsynth_frechet_distance(int d, const double *mu1, const double *c1, const double *mu2,
                             const double *c2, double *out, clsynth_err *err);
/* The same from two accumulated feature sets (each n >= 2). */
int clsynth_frechet_from_stats(const clsynth_feature_stats *a, const clsynth_feature_stats *b,
                               double *out, clsynth_err *err);

/* Symmetric eigen-decomposition by cyclic Jacobi rotations: a (n, n) is
 * destroyed; evals (n) ascending; evecs (n, n) row-major with eigenvector j in
 * column j (may be NULL). Returns the number of sweeps, or -1 when it did not
 * converge (off-diagonal norm above 1e-12 of the total after 100 sweeps). */
int clsynth_sym_eigen(int n, double *a, double *evals, double *evecs);

/* Symmetric positive semi-definite square root: out = V diag(sqrt(max(l, 0))) V^T. */
int clsynth_sym_sqrt(int n, const double *a, double *out, clsynth_err *err);

#endif
