/* PNG and JPEG reading/writing (io/png.c, io/jpeg.c, io/image.c). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/jpeg.h"
#include "io/png.h"
#include "test_io_fixtures.h"
#include "testutil.h"

enum { W = 7, H = 5 };

START_TEST(test_rgb8_round_trip)
{
    clsynth_image a, b;
    clsynth_err err;
    ck_assert_int_eq(clsynth_image_alloc(&a, W, H, 3, &err), 0);
    for (int i = 0; i < W * H * 3; i++)
        a.data[i] = (uint8_t)(i * 13 + 5);
    ck_assert_msg(clsynth_png_write("rgb8.png", &a, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_png_read("rgb8.png", &b, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(b.w, W);
    ck_assert_int_eq(b.h, H);
    ck_assert_int_eq(b.c, 3);
    ck_assert_mem_eq(a.data, b.data, W * H * 3);
    clsynth_image_free(&a);
    clsynth_image_free(&b);
}
END_TEST

START_TEST(test_gray8_round_trip_as_pixels_and_ids)
{
    clsynth_image a, b;
    clsynth_idmap ids;
    clsynth_err err;
    ck_assert_int_eq(clsynth_image_alloc(&a, W, H, 1, &err), 0);
    for (int i = 0; i < W * H; i++)
        a.data[i] = (uint8_t)(i * 7);
    ck_assert_msg(clsynth_png_write("gray8.png", &a, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_png_read("gray8.png", &b, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(b.c, 1);
    ck_assert_mem_eq(a.data, b.data, W * H);
    ck_assert_msg(clsynth_png_read_ids("gray8.png", &ids, &err) == 0, "%s", err.msg);
    for (int i = 0; i < W * H; i++)
        ck_assert_int_eq(ids.data[i], a.data[i]);
    clsynth_image_free(&a);
    clsynth_image_free(&b);
    clsynth_idmap_free(&ids);
}
END_TEST

START_TEST(test_write_leaves_no_temporary_file)
{
    clsynth_image a;
    clsynth_err err;
    fx_mkdir("atomic");
    ck_assert_int_eq(clsynth_image_alloc(&a, 3, 3, 1, &err), 0);
    ck_assert_int_eq(clsynth_png_write("atomic/x.png", &a, &err), 0);
    ck_assert_int_eq(clsynth_png_write("atomic/x.png", &a, &err), 0); /* replace */
    DIR *d = opendir("atomic");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            ck_assert_str_eq(e->d_name, "x.png");
            n++;
        }
    closedir(d);
    ck_assert_int_eq(n, 1);
    ck_assert_int_ne(clsynth_png_write("no/such/dir/x.png", &a, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "no/such/dir/x.png"));
    clsynth_image_free(&a);
}
END_TEST

START_TEST(test_gray16_keeps_full_values_as_ids)
{
    uint16_t v[W * H];
    for (int i = 0; i < W * H; i++)
        v[i] = (uint16_t)(i * 1871 + 26001); /* Cityscapes-like instance ids */
    fx_png("gray16.png", W, H, PNG_COLOR_TYPE_GRAY, 16, v, 0);
    clsynth_idmap ids;
    clsynth_image img;
    clsynth_err err;
    ck_assert_msg(clsynth_png_read_ids("gray16.png", &ids, &err) == 0, "%s", err.msg);
    for (int i = 0; i < W * H; i++)
        ck_assert_int_eq(ids.data[i], v[i]);
    ck_assert_msg(clsynth_png_read("gray16.png", &img, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(img.c, 1);
    for (int i = 0; i < W * H; i++) /* scaled to 8 bits */
        ck_assert_int_le(abs(img.data[i] - (int)(v[i] * 255.0 / 65535.0 + 0.5)), 1);
    clsynth_idmap_free(&ids);
    clsynth_image_free(&img);
}
END_TEST

START_TEST(test_low_bit_gray_ids_are_raw)
{
    static const int depths[] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        int d = depths[k];
        uint16_t v[W * H];
        for (int i = 0; i < W * H; i++)
            v[i] = (uint16_t)(i % (1 << d));
        fx_png("graylow.png", W, H, PNG_COLOR_TYPE_GRAY, d, v, 0);
        clsynth_idmap ids;
        clsynth_image img;
        clsynth_err err;
        ck_assert_msg(clsynth_png_read_ids("graylow.png", &ids, &err) == 0, "%s", err.msg);
        ck_assert_msg(clsynth_png_read("graylow.png", &img, &err) == 0, "%s", err.msg);
        for (int i = 0; i < W * H; i++) {
            ck_assert_int_eq(ids.data[i], v[i]);
            ck_assert_int_eq(img.data[i], v[i] * 255 / ((1 << d) - 1)); /* expanded */
        }
        clsynth_idmap_free(&ids);
        clsynth_image_free(&img);
    }
}
END_TEST

START_TEST(test_gray_alpha_drops_alpha)
{
    uint16_t v[W * H * 2];
    for (int i = 0; i < W * H; i++) {
        v[2 * i] = (uint16_t)(i * 5);
        v[2 * i + 1] = (uint16_t)(255 - i);
    }
    fx_png("ga8.png", W, H, PNG_COLOR_TYPE_GRAY_ALPHA, 8, v, 0);
    clsynth_image img;
    clsynth_idmap ids;
    clsynth_err err;
    ck_assert_msg(clsynth_png_read("ga8.png", &img, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_png_read_ids("ga8.png", &ids, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(img.c, 1);
    for (int i = 0; i < W * H; i++) {
        ck_assert_int_eq(img.data[i], i * 5);
        ck_assert_int_eq(ids.data[i], i * 5);
    }
    clsynth_image_free(&img);
    clsynth_idmap_free(&ids);
}
END_TEST

START_TEST(test_rgba_and_rgb16_read_as_rgb8)
{
    uint16_t v4[W * H * 4], v3[W * H * 3];
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 4; c++) {
            v4[4 * i + c] = (uint16_t)((i * 9 + c * 50) & 255);
            if (c < 3)
                v3[3 * i + c] = (uint16_t)(((i * 9 + c * 50) & 255) * 257); /* exact in 8 bit */
        }
    fx_png("rgba8.png", W, H, PNG_COLOR_TYPE_RGB_ALPHA, 8, v4, 0);
    fx_png("rgb16.png", W, H, PNG_COLOR_TYPE_RGB, 16, v3, 0);
    clsynth_image a, b;
    clsynth_idmap ids;
    clsynth_err err;
    ck_assert_msg(clsynth_png_read("rgba8.png", &a, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_png_read("rgb16.png", &b, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(a.c, 3);
    ck_assert_int_eq(b.c, 3);
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++) {
            ck_assert_int_eq(a.data[3 * i + c], v4[4 * i + c]);
            ck_assert_int_eq(b.data[3 * i + c], v3[3 * i + c] / 257);
        }
    /* an RGB file is not an id map */
    ck_assert_int_ne(clsynth_png_read_ids("rgba8.png", &ids, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "rgba8.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "unsupported"));
    clsynth_image_free(&a);
    clsynth_image_free(&b);
}
END_TEST

START_TEST(test_palette_gives_rgb_pixels_and_index_ids)
{
    static const int depths[] = {4, 8};
    for (int k = 0; k < 2; k++) {
        int n = k == 0 ? 16 : 200;
        uint16_t v[W * H];
        for (int i = 0; i < W * H; i++)
            v[i] = (uint16_t)((i * 7) % n);
        fx_png("pal.png", W, H, PNG_COLOR_TYPE_PALETTE, depths[k], v, n);
        clsynth_image img;
        clsynth_idmap ids;
        clsynth_err err;
        ck_assert_msg(clsynth_png_read("pal.png", &img, &err) == 0, "%s", err.msg);
        ck_assert_msg(clsynth_png_read_ids("pal.png", &ids, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(img.c, 3);
        for (int i = 0; i < W * H; i++) {
            ck_assert_int_eq(ids.data[i], v[i]);
            ck_assert_int_eq(img.data[3 * i + 1], v[i] * 255 / (n - 1));
        }
        clsynth_image_free(&img);
        clsynth_idmap_free(&ids);
    }
}
END_TEST

START_TEST(test_not_a_png_names_file_and_cause)
{
    FILE *f = fopen("text.png", "w");
    fputs("this is not an image at all\n", f);
    fclose(f);
    clsynth_image img;
    clsynth_err err;
    ck_assert_int_ne(clsynth_png_read("text.png", &img, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "text.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "not a PNG"));
    ck_assert_int_ne(clsynth_image_read("text.png", &img, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a PNG or JPEG"));
    ck_assert_int_ne(clsynth_png_read("missing.png", &img, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "missing.png"));
}
END_TEST

START_TEST(test_unopenable_images_say_why_and_fifos_do_not_block)
{
    clsynth_image img;
    clsynth_idmap ids;
    clsynth_err err;
    ck_assert_int_ne(clsynth_png_read("missing.png", &img, &err), 0);
    ck_assert_msg(strstr(err.msg, "missing.png: cannot open: No such file or directory"), "message: %s", err.msg);
    ck_assert_int_ne(clsynth_jpeg_read("missing.jpg", &img, &err), 0);
    ck_assert_msg(strstr(err.msg, "missing.jpg: cannot open: No such file or directory"), "message: %s", err.msg);
    ck_assert_int_ne(clsynth_image_read("missing.jpg", &img, &err), 0);
    ck_assert_msg(strstr(err.msg, "No such file or directory"), "message: %s", err.msg);
    unlink("fifo.png");
    ck_assert_int_eq(mkfifo("fifo.png", 0644), 0);
    alarm(20); /* a FIFO used to block the reader forever */
    ck_assert_int_ne(clsynth_png_read_ids("fifo.png", &ids, &err), 0);
    ck_assert_msg(strstr(err.msg, "fifo.png: is a FIFO"), "message: %s", err.msg);
    ck_assert_int_ne(clsynth_image_read("fifo.png", &img, &err), 0);
    alarm(0);
    mkdir("dir.png", 0755);
    ck_assert_int_ne(clsynth_image_read("dir.png", &img, &err), 0);
    ck_assert_msg(strstr(err.msg, "dir.png: is a directory"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_truncated_png_is_an_error_at_every_length)
{
    uint16_t v[40 * 30 * 3];
    for (int i = 0; i < 40 * 30 * 3; i++)
        v[i] = (uint16_t)((i * 2654435761u) >> 24); /* incompressible-ish */
    fx_png("full.png", 40, 30, PNG_COLOR_TYPE_RGB, 8, v, 0);
    long n = fx_file_size("full.png");
    ck_assert_int_gt(n, 100);
    int truncated_msgs = 0;
    for (long len = 0; len < n - 12; len += 1 + len / 16) { /* IEND is the last 12 bytes */
        fx_truncate_copy("full.png", "cut.png", len);
        clsynth_image img;
        clsynth_err err;
        ck_assert_msg(clsynth_png_read("cut.png", &img, &err) != 0, "length %ld accepted", len);
        ck_assert_ptr_nonnull(strstr(err.msg, "cut.png"));
        truncated_msgs += strstr(err.msg, "truncated") != NULL;
    }
    ck_assert_int_gt(truncated_msgs, 5);
}
END_TEST

START_TEST(test_jpeg_rgb_and_gray)
{
    enum { JW = 32, JH = 24 };
    uint8_t rgb[JW * JH * 3], gray[JW * JH];
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            rgb[(y * JW + x) * 3] = (uint8_t)(x * 8);
            rgb[(y * JW + x) * 3 + 1] = (uint8_t)(y * 10);
            rgb[(y * JW + x) * 3 + 2] = 100;
            gray[y * JW + x] = (uint8_t)(x * 4 + y * 2);
        }
    fx_jpeg("c.jpg", JW, JH, 3, rgb, 95);
    fx_jpeg("g.jpg", JW, JH, 1, gray, 95);
    clsynth_image a, b;
    clsynth_err err;
    ck_assert_msg(clsynth_image_read("c.jpg", &a, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_jpeg_read("g.jpg", &b, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(a.w, JW);
    ck_assert_int_eq(a.h, JH);
    ck_assert_int_eq(a.c, 3);
    ck_assert_int_eq(b.c, 1);
    double e = 0;
    for (int i = 0; i < JW * JH * 3; i++)
        e += abs(a.data[i] - rgb[i]);
    ck_assert_double_lt(e / (JW * JH * 3), 4.0);
    ck_assert_int_eq(clsynth_image_to_rgb(&b, &err), 0);
    ck_assert_int_eq(b.c, 3);
    ck_assert_int_le(abs(b.data[3 * 40 + 1] - gray[40]), 6);
    clsynth_image_free(&a);
    clsynth_image_free(&b);
}
END_TEST

START_TEST(test_truncated_and_corrupt_jpeg_are_errors)
{
    enum { JW = 64, JH = 48 };
    uint8_t rgb[JW * JH * 3];
    for (int i = 0; i < JW * JH * 3; i++)
        rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    fx_jpeg("full.jpg", JW, JH, 3, rgb, 90);
    long n = fx_file_size("full.jpg");
    for (long len = 0; len < n - 2; len += 1 + len / 8) {
        fx_truncate_copy("full.jpg", "cut.jpg", len);
        clsynth_image img;
        clsynth_err err;
        ck_assert_msg(clsynth_jpeg_read("cut.jpg", &img, &err) != 0, "length %ld accepted", len);
        ck_assert_ptr_nonnull(strstr(err.msg, "cut.jpg"));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("png");
    TCase *tc = tcase_create("png");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rgb8_round_trip);
    tcase_add_test(tc, test_gray8_round_trip_as_pixels_and_ids);
    tcase_add_test(tc, test_write_leaves_no_temporary_file);
    tcase_add_test(tc, test_gray16_keeps_full_values_as_ids);
    tcase_add_test(tc, test_low_bit_gray_ids_are_raw);
    tcase_add_test(tc, test_gray_alpha_drops_alpha);
    tcase_add_test(tc, test_rgba_and_rgb16_read_as_rgb8);
    tcase_add_test(tc, test_palette_gives_rgb_pixels_and_index_ids);
    tcase_add_test(tc, test_not_a_png_names_file_and_cause);
    tcase_add_test(tc, test_unopenable_images_say_why_and_fifos_do_not_block);
    tcase_add_test(tc, test_truncated_png_is_an_error_at_every_length);
    tcase_add_test(tc, test_jpeg_rgb_and_gray);
    tcase_add_test(tc, test_truncated_and_corrupt_jpeg_are_errors);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
