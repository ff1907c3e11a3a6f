#include "io/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/fsutil.h"
#include "io/jpeg.h"
#include "io/png.h"

static int check_dims(int w, int h, int c, clsynth_err *err)
{
    if (w <= 0 || h <= 0 || w > CLSYNTH_IMAGE_MAX_DIM || h > CLSYNTH_IMAGE_MAX_DIM)
        return clsynth_fail(err, "image size %dx%d outside 1..%d", w, h, CLSYNTH_IMAGE_MAX_DIM);
    if (c != 1 && c != 3)
        return clsynth_fail(err, "image channel count %d (expected 1 or 3)", c);
    return 0;
}

int clsynth_image_alloc(clsynth_image *img, int w, int h, int c, clsynth_err *err)
{
    img->data = NULL;
    if (check_dims(w, h, c, err))
        return -1;
    img->data = calloc((size_t)w * h * c, 1);
    if (!img->data)
        return clsynth_fail(err, "out of memory for a %dx%dx%d image", w, h, c);
    img->w = w;
    img->h = h;
    img->c = c;
    return 0;
}

int clsynth_idmap_alloc(clsynth_idmap *map, int w, int h, clsynth_err *err)
{
    map->data = NULL;
    if (check_dims(w, h, 1, err))
        return -1;
    map->data = calloc((size_t)w * h, sizeof *map->data);
    if (!map->data)
        return clsynth_fail(err, "out of memory for a %dx%d id map", w, h);
    map->w = w;
    map->h = h;
    return 0;
}

void clsynth_image_free(clsynth_image *img)
{
    if (!img)
        return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

void clsynth_idmap_free(clsynth_idmap *map)
{
    if (!map)
        return;
    free(map->data);
    memset(map, 0, sizeof *map);
}

int clsynth_image_to_rgb(clsynth_image *img, clsynth_err *err)
{
    if (img->c == 3)
        return 0;
    clsynth_image rgb;
    if (clsynth_image_alloc(&rgb, img->w, img->h, 3, err))
        return -1;
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++)
        rgb.data[3 * i] = rgb.data[3 * i + 1] = rgb.data[3 * i + 2] = img->data[i];
    clsynth_image_free(img);
    *img = rgb;
    return 0;
}

int clsynth_image_read(const char *path, clsynth_image *img, clsynth_err *err)
{
    unsigned char sig[8] = {0};
    FILE *f = clsynth_fopen_regular(path, NULL, err);
    if (!f)
        return -1;
    size_t got = fread(sig, 1, sizeof sig, f);
    fclose(f);
    if (got >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF)
        return clsynth_jpeg_read(path, img, err);
    if (got == 8 && memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0)
        return clsynth_png_read(path, img, err);
    return clsynth_fail(err, "%s: not a PNG or JPEG file", path);
}
