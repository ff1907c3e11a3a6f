/* Spectral evaluation: azimuthally averaged power spectra of image sets,
 * with the 2-D transforms done by clFFT on the context's device.
 *
 * Per image: grayscale (0.299 R + 0.587 G + 0.114 B for 3 channels), minus its
 * mean, real-to-Hermitian 2-D FFT (clFFT, single precision, no window), power
 * |F(ky, kx)|^2 / (H W). Azimuthal average: the radial frequency of a
 * coefficient in cycles per pixel is f = sqrt((kx/W)^2 + (ky/H)^2) (kx, ky
 * signed); it falls into bin b = round(f * S) with S = min(H, W), bins
 * 0 .. S/2 (the inscribed circle; corners beyond f = 1/2 are dropped). The
 * Hermitian half-plane stands for the full plane: each stored column kx with
 * a mirror counts twice. A set's profile is the mean over its images of the
 * per-image bin means; its log power is log10 of that.
 *
 * Spectral distance (documented choice): the mean over bins 1 .. S/2 (DC
 * excluded) of |log10 P_a(b) - log10 P_b(b)|, i.e. the mean absolute gap
 * between the curves in decades. The high-frequency distance is the same mean
 * over the upper half of the bins (b > S/4), where the detail the FPSE
 * discriminator is meant to improve lives.
 *
 * Transforms: clFFT by default. Where the device's compiler rejects clFFT's
 * generated program for a size (Intel's OpenCL CPU runtime does for lengths
 * 8, 32, 128, ...: clFFT casts float2 pointers to float4 pointers, which
 * stricter OpenCL C compilers refuse), that size runs on clsynth's direct DFT
 * kernels (kernels/dft.cl) instead, with a warning; CLSYNTH_FFT=dft uses
 * them for every size, CLSYNTH_FFT=clfft (the default) tries clFFT first.
 * Both compute the same unnormalized transform (tests/test_metrics.c checks
 * each against a double-precision DFT on the host).
 *
 * clFFT keeps process-wide state: clfftSetup runs when the first engine of
 * the process is created and clfftTeardown when the last is freed (a counter
 * under a mutex, the one piece of global state, because clFFT's is global). */
#ifndef CLSYNTH_NETS_SPECTRUM_H
#define CLSYNTH_NETS_SPECTRUM_H

#include <stddef.h>

#include "clcore/context.h"

typedef struct clsynth_spectrum clsynth_spectrum;

/* An FFT engine on ctx's device (plans are cached per size and batch). NULL
 * with ctx->err set on failure. */
clsynth_spectrum *clsynth_spectrum_create(clsynth_ctx *ctx);
void clsynth_spectrum_free(clsynth_spectrum *s);

/* Forward real-to-Hermitian 2-D FFT of n real images in (n, h, w): out gets
 * (n, h, w/2 + 1) complex values, interleaved (re, im). Unnormalized:
 * F(ky, kx) = sum_{y,x} in(y, x) exp(-2 pi i (ky y / h + kx x / w)).
 * h and w must factor into 2, 3, 5, 7, 11 and 13 (clFFT's radices; checked
 * for both transforms, so a size works on every device alike). */
int clsynth_spectrum_rfft2(clsynth_spectrum *s, const float *in, int n, int h, int w, float *out);

/* Which transform the last call ran on: "clFFT", "dft", or "none" before the
 * first. */
const char *clsynth_spectrum_backend(const clsynth_spectrum *s);

/* Accumulated radial power profile of a set of h x w images. */
typedef struct clsynth_radial_profile {
    int h, w;
    int nbins;      /* min(h, w) / 2 + 1 */
    long images;
    double *sum;    /* (nbins) sum over images of the per-image bin mean power */
} clsynth_radial_profile;

int clsynth_profile_init(clsynth_radial_profile *p, int h, int w, clsynth_err *err);
void clsynth_profile_free(clsynth_radial_profile *p);

/* Adds n images (n, c, h, w), c = 1 or 3, any range (eval feeds [-1, 1]). */
int clsynth_spectrum_accumulate(clsynth_spectrum *s, clsynth_radial_profile *p, const float *images,
                                int n, int c);

/* log10 of the mean power per bin into out (nbins); empty bins or zero power
 * give -30 (a floor, so distances stay finite). */
int clsynth_profile_log_power(const clsynth_radial_profile *p, double *out, clsynth_err *err);

/* Mean |log10 Pa - log10 Pb| over bins [lo, hi) (clamped to 1 .. nbins);
 * lo = hi = 0 means all bins but DC. The profiles must have the same size. */
int clsynth_spectral_distance(const clsynth_radial_profile *a, const clsynth_radial_profile *b,
                              int lo, int hi, double *out, clsynth_err *err);

/* Radial bin of coefficient (ky, kx) of an h x w transform (signed
 * frequencies folded), or -1 when outside the inscribed circle. */
int clsynth_spectrum_bin(int h, int w, int ky, int kx);

#endif
