#include "io/png.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/fsutil.h"
#include "io/atomic.h"

/* Read/write context handed to libpng's callbacks: error text for the
 * longjmp path and the stream. */
typedef struct png_ctx {
    FILE *f;
    char msg[256];
} png_ctx;

static void on_error(png_structp png, png_const_charp msg)
{
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void on_read(png_structp png, png_bytep out, size_t len)
{
    png_ctx *ctx = png_get_io_ptr(png);
    if (fread(out, 1, len, ctx->f) != len)
        png_error(png, "unexpected end of file (truncated PNG)");
}

enum read_mode { READ_PIXELS, READ_IDS };

/* One reader for both modes. On success exactly one of img / map is filled. */
static int read_png(const char *path, enum read_mode mode, clsynth_image *img,
                    clsynth_idmap *map, clsynth_err *err)
{
    png_ctx ctx = {0};
    ctx.f = clsynth_fopen_regular(path, NULL, err);
    if (!ctx.f)
        return -1;
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, ctx.f);
    if (got != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(ctx.f);
        return clsynth_fail(err, "%s: not a PNG file (bad signature)", path);
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        fclose(ctx.f);
        return clsynth_fail(err, "%s: out of memory creating the PNG reader", path);
    }
    /* Written after setjmp and read on the longjmp path: must be volatile. */
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(rows);
        free(pixels);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(ctx.f);
        return clsynth_fail(err, "%s: %s", path, ctx.msg);
    }
    png_set_read_fn(png, &ctx, on_read);
    png_set_sig_bytes(png, sizeof sig);
    png_set_user_limits(png, CLSYNTH_IMAGE_MAX_DIM, CLSYNTH_IMAGE_MAX_DIM);
    png_read_info(png, info);

    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info);
    int type = png_get_color_type(png, info);
    int channels;
    if (mode == READ_PIXELS) {
        if (type == PNG_COLOR_TYPE_PALETTE)
            png_set_palette_to_rgb(png);
        if (type == PNG_COLOR_TYPE_GRAY && depth < 8)
            png_set_expand_gray_1_2_4_to_8(png);
        if (depth == 16)
            png_set_scale_16(png);
        if (type & PNG_COLOR_MASK_ALPHA)
            png_set_strip_alpha(png);
        channels = (type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    } else {
        if (type == PNG_COLOR_TYPE_RGB || type == PNG_COLOR_TYPE_RGB_ALPHA)
            png_error(png, "unsupported for an id map: RGB colour type (expected gray or palette)");
        if (depth < 8)
            png_set_packing(png); /* one byte per pixel, raw values */
        if (type & PNG_COLOR_MASK_ALPHA)
            png_set_strip_alpha(png);
        channels = 1;
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t rowbytes = png_get_rowbytes(png, info);
    size_t bps = (mode == READ_IDS && depth == 16) ? 2 : 1;
    if (rowbytes != (size_t)w * channels * bps)
        png_error(png, "unsupported pixel layout after conversion");
    pixels = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pixels || !rows)
        png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pixels + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    int rc = 0;
    if (mode == READ_PIXELS) {
        img->w = (int)w;
        img->h = (int)h;
        img->c = channels;
        img->data = pixels;
        pixels = NULL;
    } else if (clsynth_idmap_alloc(map, (int)w, (int)h, err) == 0) {
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++)
            map->data[i] = bps == 2 ? (pixels[2 * i] << 8) | pixels[2 * i + 1] : pixels[i];
    } else {
        rc = clsynth_wrap(err, "%s", path);
    }
    free(rows);
    free(pixels);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(ctx.f);
    return rc;
}

int clsynth_png_read(const char *path, clsynth_image *img, clsynth_err *err)
{
    memset(img, 0, sizeof *img);
    return read_png(path, READ_PIXELS, img, NULL, err);
}

int clsynth_png_read_ids(const char *path, clsynth_idmap *map, clsynth_err *err)
{
    memset(map, 0, sizeof *map);
    return read_png(path, READ_IDS, NULL, map, err);
}

int clsynth_png_write(const char *path, const clsynth_image *img, clsynth_err *err)
{
    if (!img->data || (img->c != 1 && img->c != 3) || img->w <= 0 || img->h <= 0)
        return clsynth_fail(err, "%s: cannot write a %dx%dx%d image as PNG", path, img->w,
                            img->h, img->c);
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    png_ctx ctx = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        clsynth_atomic_abort(&af);
        return clsynth_fail(err, "%s: out of memory creating the PNG writer", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        clsynth_atomic_abort(&af);
        return clsynth_fail(err, "%s: %s", path, ctx.msg);
    }
    png_init_io(png, af.f);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, 8,
                 img->c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < img->h; y++)
        png_write_row(png, img->data + (size_t)y * img->w * img->c);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return clsynth_atomic_commit(&af, err);
}
