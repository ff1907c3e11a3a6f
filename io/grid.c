#include "io/grid.h"

#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "io/png.h"

void clsynth_label_color(int32_t id, uint8_t rgb[3])
{
    rgb[0] = rgb[1] = rgb[2] = 0;
    if (id < 0 || id == 255)
        return;
    uint32_t k = (uint32_t)id + 1;
    for (int shift = 7; k; shift--, k >>= 3) {
        rgb[0] |= (uint8_t)((k & 1) << shift);
        rgb[1] |= (uint8_t)(((k >> 1) & 1) << shift);
        rgb[2] |= (uint8_t)(((k >> 2) & 1) << shift);
    }
}

void clsynth_label_colorize(const int32_t *label, int w, int h, uint8_t *rgb)
{
    for (size_t i = 0; i < (size_t)w * h; i++)
        clsynth_label_color(label[i], rgb + 3 * i);
}

void clsynth_chw_to_hwc_u8(const float *chw, int c, int h, int w, uint8_t *hwc)
{
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < c; k++) {
            float v = (chw[k * plane + i] + 1.0f) * 127.5f + 0.5f;
            hwc[i * c + k] = (uint8_t)(v < 0.0f ? 0 : v > 255.0f ? 255 : (int)v);
        }
}

void clsynth_hwc_u8_to_chw(const uint8_t *hwc, int c, int h, int w, float *chw)
{
    size_t plane = (size_t)h * w;
    for (size_t i = 0; i < plane; i++)
        for (int k = 0; k < c; k++)
            chw[k * plane + i] = hwc[i * c + k] * (2.0f / 255.0f) - 1.0f;
}

static void blit(clsynth_image *dst, int x0, int y0, const uint8_t *src, int w, int h)
{
    for (int y = 0; y < h; y++)
        memcpy(dst->data + ((size_t)(y0 + y) * dst->w + x0) * 3, src + (size_t)y * w * 3,
               (size_t)w * 3);
}

int clsynth_grid_write(const char *path, int n, int h, int w, const int32_t *label,
                       const float *synth, const float *real, clsynth_err *err)
{
    const int gap = 2, cols = real ? 3 : 2;
    if (n < 1 || h < 1 || w < 1)
        return clsynth_fail(err, "%s: grid of %d samples of %dx%d", path, n, w, h);
    clsynth_image g;
    if (clsynth_image_alloc(&g, cols * w + (cols - 1) * gap, n * h + (n - 1) * gap, 3, err))
        return clsynth_wrap(err, "%s", path);
    memset(g.data, 128, (size_t)g.w * g.h * 3);
    uint8_t *tile = malloc((size_t)w * h * 3);
    if (!tile) {
        clsynth_image_free(&g);
        return clsynth_fail(err, "%s: out of memory", path);
    }
    size_t plane = (size_t)w * h;
    for (int i = 0; i < n; i++) {
        int y0 = i * (h + gap);
        clsynth_label_colorize(label + i * plane, w, h, tile);
        blit(&g, 0, y0, tile, w, h);
        clsynth_chw_to_hwc_u8(synth + i * 3 * plane, 3, h, w, tile);
        blit(&g, w + gap, y0, tile, w, h);
        if (real) {
            clsynth_chw_to_hwc_u8(real + i * 3 * plane, 3, h, w, tile);
            blit(&g, 2 * (w + gap), y0, tile, w, h);
        }
    }
    free(tile);
    int rc = clsynth_png_write(path, &g, err);
    clsynth_image_free(&g);
    return rc;
}
