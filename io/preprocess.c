#include "io/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int round_pos(float x)
{
    int r = (int)(x + 0.5f);
    return r < 1 ? 1 : r;
}

static int crop_height(const clsynth_data_opts *o)
{
    return round_pos((float)o->crop_size / o->aspect_ratio);
}

/* Size after the resize step. */
static void resized_size(const clsynth_data_opts *o, int sw, int sh, int *rw, int *rh)
{
    switch (o->preprocess_mode) {
    case CLSYNTH_PRE_RESIZE_AND_CROP:
        *rw = o->load_size;
        *rh = round_pos((float)o->load_size / o->aspect_ratio);
        return;
    case CLSYNTH_PRE_SCALE_WIDTH_AND_CROP:
    case CLSYNTH_PRE_SCALE_WIDTH:
        *rw = o->load_size;
        *rh = (int)((int64_t)o->load_size * sh / sw);
        if (*rh < 1)
            *rh = 1;
        return;
    case CLSYNTH_PRE_FIXED:
        *rw = o->crop_size;
        *rh = crop_height(o);
        return;
    case CLSYNTH_PRE_NONE:
    default:
        *rw = sw >= 16 ? (sw + 16) / 32 * 32 : 32;
        *rh = sh >= 16 ? (sh + 16) / 32 * 32 : 32;
        return;
    }
}

static int has_crop(const clsynth_data_opts *o)
{
    return o->preprocess_mode == CLSYNTH_PRE_RESIZE_AND_CROP ||
           o->preprocess_mode == CLSYNTH_PRE_SCALE_WIDTH_AND_CROP;
}

void clsynth_preprocess_size(const clsynth_data_opts *o, int src_w, int src_h, int *out_w,
                             int *out_h)
{
    resized_size(o, src_w, src_h, out_w, out_h);
    if (has_crop(o)) {
        *out_w = o->crop_size;
        *out_h = crop_height(o);
    }
}

void clsynth_preprocess_params(const clsynth_data_opts *o, int src_w, int src_h,
                               clsynth_rng *rng, clsynth_prep_params *p)
{
    memset(p, 0, sizeof *p);
    resized_size(o, src_w, src_h, &p->resize_w, &p->resize_h);
    clsynth_preprocess_size(o, src_w, src_h, &p->out_w, &p->out_h);
    int slack_x = p->resize_w - p->out_w, slack_y = p->resize_h - p->out_h;
    if (slack_x < 0)
        slack_x = 0;
    if (slack_y < 0)
        slack_y = 0;
    if (rng) {
        p->crop_x = clsynth_rng_int(rng, 0, slack_x);
        p->crop_y = clsynth_rng_int(rng, 0, slack_y);
        int coin = clsynth_rng_int(rng, 0, 1);
        p->flip = !o->no_flip && coin;
    } else {
        p->crop_x = slack_x / 2;
        p->crop_y = slack_y / 2;
    }
}

/* ---- separable resampling --------------------------------------------- */

/* Output index o takes sum_k w[k] * in[first + k], k < count. */
typedef struct taps {
    int *first, *count;
    float *w;   /* (out, max_taps) */
    int max_taps;
} taps;

static void taps_free(taps *t)
{
    free(t->first);
    free(t->count);
    free(t->w);
}

static int taps_make(int in, int out, taps *t)
{
    double scale = (double)in / out;
    t->max_taps = scale > 1.0 ? (int)ceil(scale) + 2 : 2;
    t->first = malloc(sizeof(int) * out);
    t->count = malloc(sizeof(int) * out);
    t->w = calloc((size_t)out * t->max_taps, sizeof(float));
    if (!t->first || !t->count || !t->w) {
        taps_free(t);
        return -1;
    }
    for (int o = 0; o < out; o++) {
        float *w = t->w + (size_t)o * t->max_taps;
        if (scale > 1.0) { /* area: coverage of [o*scale, (o+1)*scale) */
            double x0 = o * scale, x1 = x0 + scale;
            int a = (int)floor(x0), b = (int)ceil(x1);
            if (b > in)
                b = in;
            t->first[o] = a;
            t->count[o] = b - a;
            for (int k = 0; k < b - a; k++) {
                double lo = a + k > x0 ? a + k : x0, hi = a + k + 1 < x1 ? a + k + 1 : x1;
                w[k] = (float)((hi - lo) / scale);
            }
        } else { /* bilinear on pixel centres, clamped at the borders */
            double x = (o + 0.5) * scale - 0.5;
            if (x < 0)
                x = 0;
            if (x > in - 1)
                x = in - 1;
            int a = (int)floor(x);
            double f = x - a;
            if (a + 1 >= in) {
                t->first[o] = a;
                t->count[o] = 1;
                w[0] = 1.0f;
            } else {
                t->first[o] = a;
                t->count[o] = 2;
                w[0] = (float)(1.0 - f);
                w[1] = (float)f;
            }
        }
    }
    return 0;
}

int clsynth_resize_u8(const uint8_t *src, int sw, int sh, int c, uint8_t *dst, int dw, int dh,
                      clsynth_err *err)
{
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * c);
        return 0;
    }
    taps tx = {0}, ty = {0};
    float *mid = malloc(sizeof(float) * (size_t)sh * dw * c); /* (sh, dw, c) */
    if (!mid || taps_make(sw, dw, &tx) || taps_make(sh, dh, &ty)) {
        free(mid);
        taps_free(&tx);
        taps_free(&ty);
        return clsynth_fail(err, "out of memory resizing %dx%d to %dx%d", sw, sh, dw, dh);
    }
    for (int y = 0; y < sh; y++) {
        const uint8_t *row = src + (size_t)y * sw * c;
        float *m = mid + (size_t)y * dw * c;
        for (int x = 0; x < dw; x++) {
            const float *w = tx.w + (size_t)x * tx.max_taps;
            for (int ch = 0; ch < c; ch++) {
                float acc = 0.0f;
                for (int k = 0; k < tx.count[x]; k++)
                    acc += w[k] * row[(size_t)(tx.first[x] + k) * c + ch];
                m[x * c + ch] = acc;
            }
        }
    }
    for (int y = 0; y < dh; y++) {
        const float *w = ty.w + (size_t)y * ty.max_taps;
        uint8_t *out = dst + (size_t)y * dw * c;
        for (int i = 0; i < dw * c; i++) {
            float acc = 0.0f;
            for (int k = 0; k < ty.count[y]; k++)
                acc += w[k] * mid[(size_t)(ty.first[y] + k) * dw * c + i];
            int v = (int)(acc + 0.5f);
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(mid);
    taps_free(&tx);
    taps_free(&ty);
    return 0;
}

/* Nearest source index for resized coordinate r (pixel centres). */
static int nearest(int r, int in, int out)
{
    int s = (int)(((int64_t)2 * r + 1) * in / (2 * (int64_t)out));
    return s < in ? s : in - 1;
}

void clsynth_instance_edges(const int32_t *ids, int w, int h, float *edge)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int32_t v = ids[(size_t)y * w + x];
            int e = (x > 0 && ids[(size_t)y * w + x - 1] != v) ||
                    (x + 1 < w && ids[(size_t)y * w + x + 1] != v) ||
                    (y > 0 && ids[(size_t)(y - 1) * w + x] != v) ||
                    (y + 1 < h && ids[(size_t)(y + 1) * w + x] != v);
            edge[(size_t)y * w + x] = e ? 1.0f : 0.0f;
        }
}

int clsynth_preprocess_apply(const clsynth_data_opts *o, const clsynth_prep_params *p,
                             const clsynth_raw_sample *s, float *image, int32_t *label,
                             float *edge, clsynth_err *err)
{
    const int sw = s->image.w, sh = s->image.h, rw = p->resize_w, rh = p->resize_h;
    const int ow = p->out_w, oh = p->out_h;
    if (s->image.c != 3)
        return clsynth_fail(err, "preprocess: expected an RGB image, got %d channels",
                            s->image.c);
    uint8_t *rs = malloc((size_t)rw * rh * 3);
    int32_t *inst = s->instance.data && edge ? malloc(sizeof(int32_t) * (size_t)ow * oh) : NULL;
    if (!rs || (s->instance.data && edge && !inst)) {
        free(rs);
        free(inst);
        return clsynth_fail(err, "preprocess: out of memory");
    }
    if (clsynth_resize_u8(s->image.data, sw, sh, 3, rs, rw, rh, err)) {
        free(rs);
        free(inst);
        return -1;
    }
    const size_t plane = (size_t)ow * oh;
    for (int y = 0; y < oh; y++) {
        int ry = p->crop_y + y;
        for (int x = 0; x < ow; x++) {
            int rx = p->crop_x + (p->flip ? ow - 1 - x : x);
            size_t o_i = (size_t)y * ow + x;
            if (rx < 0 || rx >= rw || ry < 0 || ry >= rh) { /* padding */
                for (int c = 0; c < 3; c++)
                    image[c * plane + o_i] = -1.0f;
                label[o_i] = o->dontcare_value;
                if (inst)
                    inst[o_i] = 0;
                continue;
            }
            const uint8_t *px = rs + ((size_t)ry * rw + rx) * 3;
            for (int c = 0; c < 3; c++)
                image[c * plane + o_i] = px[c] * (2.0f / 255.0f) - 1.0f;
            size_t s_i = (size_t)nearest(ry, sh, rh) * sw + nearest(rx, sw, rw);
            int32_t v = s->label.data[s_i];
            label[o_i] = v == CLSYNTH_DONTCARE ? o->dontcare_value : v;
            if (inst)
                inst[o_i] = s->instance.data[s_i];
        }
    }
    if (edge) {
        if (inst)
            clsynth_instance_edges(inst, ow, oh, edge);
        else
            memset(edge, 0, sizeof(float) * plane);
    }
    free(rs);
    free(inst);
    return 0;
}
