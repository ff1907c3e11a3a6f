/* Fixture writers for the io/ tests: PNG of any colour type and depth
 * (through libpng directly, independent of io/png.c), JPEG, folders. */
#ifndef CLSYNTH_TEST_IO_FIXTURES_H
#define CLSYNTH_TEST_IO_FIXTURES_H

#include <check.h>
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

/* Writes a PNG with `channels` samples per pixel taken from v (row-major,
 * values already in the bit depth's range). For palette images v holds
 * indices and the palette is a gray ramp over ncolors entries. */
static inline void fx_png(const char *path, int w, int h, int color_type, int depth,
                          const uint16_t *v, int ncolors)
{
    int ch = color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_PALETTE ? 1
             : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                                  ? 2
             : color_type == PNG_COLOR_TYPE_RGB                                         ? 3
                                                                                        : 4;
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < ncolors; i++)
            pal[i].red = pal[i].green = pal[i].blue = (png_byte)(i * 255 / (ncolors - 1));
        png_set_PLTE(png, info, pal, ncolors);
    }
    png_write_info(png, info);
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    png_bytep row = calloc(rowbytes, 1);
    for (int y = 0; y < h; y++) {
        memset(row, 0, rowbytes);
        for (int x = 0; x < w * ch; x++) {
            unsigned s = v[(size_t)y * w * ch + x];
            if (depth == 16) {
                row[2 * x] = (png_byte)(s >> 8);
                row[2 * x + 1] = (png_byte)s;
            } else if (depth == 8) {
                row[x] = (png_byte)s;
            } else { /* packed, most significant bits first */
                int per = 8 / depth, shift = 8 - depth * (x % per + 1);
                row[x / per] |= (png_byte)(s << shift);
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    fclose(f);
}

static inline void fx_gray8(const char *path, int w, int h, const uint8_t *v)
{
    uint16_t *s = malloc(sizeof *s * w * h);
    for (int i = 0; i < w * h; i++)
        s[i] = v[i];
    fx_png(path, w, h, PNG_COLOR_TYPE_GRAY, 8, s, 0);
    free(s);
}

/* RGB image with a recognisable pattern (value depends on x, y, channel). */
static inline void fx_rgb_pattern(const char *path, int w, int h)
{
    uint16_t *s = malloc(sizeof *s * w * h * 3);
    for (int i = 0; i < w * h * 3; i++)
        s[i] = (uint16_t)((i * 37 + 11) & 255);
    fx_png(path, w, h, PNG_COLOR_TYPE_RGB, 8, s, 0);
    free(s);
}

static inline void fx_jpeg(const char *path, int w, int h, int c, const uint8_t *px, int quality)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = w;
    cinfo.image_height = h;
    cinfo.input_components = c;
    cinfo.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)cinfo.next_scanline * w * c);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    fclose(f);
}

static inline void fx_mkdir(const char *path)
{
    ck_assert_msg(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s", path);
}

/* rm -r of a fixture folder (paths made by the tests only). */
static inline void fx_rmtree(const char *path)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

static inline long fx_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Copies the first n bytes of src to dst. */
static inline void fx_truncate_copy(const char *src, const char *dst, long n)
{
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    ck_assert(a && b);
    for (long i = 0; i < n; i++) {
        int ch = fgetc(a);
        ck_assert(ch != EOF);
        fputc(ch, b);
    }
    fclose(a);
    fclose(b);
}

#endif
