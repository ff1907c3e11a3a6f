/* Plain-C references of the reductions and losses (double accumulation). */
#ifndef CLSYNTH_REF_LOSS_H
#define CLSYNTH_REF_LOSS_H

#include <stddef.h>

double ref_loss_sum(const float *x, size_t n);
double ref_loss_mean(const float *x, size_t n);
/* mean(relu(1 - x)) for real, mean(relu(1 + x)) for fake. */
double ref_loss_hinge_d(const float *x, size_t n, int real);
double ref_loss_hinge_g(const float *x, size_t n);
double ref_loss_l1(const float *a, const float *b, size_t n);
double ref_loss_mse(const float *a, const float *b, size_t n);
/* -0.5 * sum(1 + lv - mu^2 - exp(lv)). */
double ref_loss_kl(const float *mu, const float *lv, size_t n);
/* y (N,1,H,W) = sum_c a * b for a, b (N,C,H,W). */
void ref_loss_channel_dot(const float *a, const float *b, int N, int C, int HW, float *y);
/* Softmax cross-entropy, logits (N,K,H,W), labels (N,1,H,W); mean over pixels whose
 * label != ignore (0 if none). grad (may be NULL): d loss / d logits. */
double ref_loss_cross_entropy(const float *z, const float *lab, int N, int K, int HW, int ignore, float *grad);

#endif
