#include "io/jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "clcore/fsutil.h"

/* libjpeg's default error_exit calls exit(); ours jumps back with the text. */
typedef struct jpeg_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    int truncated; /* saw "premature end of data" */
} jpeg_ctx;

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    ctx->mgr.format_message(cinfo, ctx->msg);
    longjmp(ctx->jump, 1);
}

/* Warnings are not printed; a truncated stream (libjpeg pads it with gray
 * and warns) is remembered and reported as the error it is. */
static void on_emit_message(j_common_ptr cinfo, int level)
{
    jpeg_ctx *ctx = (jpeg_ctx *)cinfo->err;
    if (level < 0 && ctx->mgr.msg_code == JWRN_JPEG_EOF)
        ctx->truncated = 1;
}

int clsynth_jpeg_read(const char *path, clsynth_image *img, clsynth_err *err)
{
    memset(img, 0, sizeof *img);
    FILE *f = clsynth_fopen_regular(path, NULL, err);
    if (!f)
        return -1;
    struct jpeg_decompress_struct cinfo;
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = on_error_exit;
    ctx.mgr.emit_message = on_emit_message;
    uint8_t *volatile pixels = NULL;
    if (setjmp(ctx.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        fclose(f);
        return clsynth_fail(err, "%s: %s", path, ctx.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.num_components == 1) {
        cinfo.out_color_space = JCS_GRAYSCALE;
    } else if (cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB) {
        cinfo.out_color_space = JCS_RGB;
    } else {
        snprintf(ctx.msg, sizeof ctx.msg, "unsupported JPEG colour space %d (CMYK?)",
                 (int)cinfo.jpeg_color_space);
        longjmp(ctx.jump, 1);
    }
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height;
    int c = cinfo.output_components;
    if (w <= 0 || h <= 0 || w > CLSYNTH_IMAGE_MAX_DIM || h > CLSYNTH_IMAGE_MAX_DIM ||
        (c != 1 && c != 3)) {
        snprintf(ctx.msg, sizeof ctx.msg, "unsupported JPEG size %dx%d with %d components", w,
                 h, c);
        longjmp(ctx.jump, 1);
    }
    pixels = malloc((size_t)w * h * c);
    if (!pixels) {
        snprintf(ctx.msg, sizeof ctx.msg, "out of memory");
        longjmp(ctx.jump, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * w * c;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    if (ctx.truncated) {
        free(pixels);
        return clsynth_fail(err, "%s: truncated JPEG (premature end of data)", path);
    }
    img->w = w;
    img->h = h;
    img->c = c;
    img->data = pixels;
    return 0;
}
