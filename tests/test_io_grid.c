/* Image grids and pixel conversions (io/grid.c). */
#include <string.h>

#include "io/grid.h"
#include "io/png.h"
#include "testutil.h"

START_TEST(test_palette_is_distinct_and_dontcare_black)
{
    uint8_t a[3], b[3];
    int clashes = 0;
    for (int i = 0; i < 182; i++) {
        clsynth_label_color(i, a);
        clashes += a[0] == 0 && a[1] == 0 && a[2] == 0;
        for (int j = 0; j < i; j++) {
            clsynth_label_color(j, b);
            clashes += memcmp(a, b, 3) == 0;
        }
    }
    ck_assert_int_eq(clashes, 0);
    clsynth_label_color(255, a);
    ck_assert(a[0] == 0 && a[1] == 0 && a[2] == 0);
}
END_TEST

START_TEST(test_chw_hwc_round_trip)
{
    enum { C = 3, H = 4, W = 5 };
    uint8_t hwc[C * H * W], back[C * H * W];
    float chw[C * H * W];
    for (int i = 0; i < C * H * W; i++)
        hwc[i] = (uint8_t)(i * 17);
    clsynth_hwc_u8_to_chw(hwc, C, H, W, chw);
    ck_assert(chw[1 * H * W + 0] == hwc[1] * (2.0f / 255.0f) - 1.0f); /* channel 1, pixel 0 */
    clsynth_chw_to_hwc_u8(chw, C, H, W, back);
    ck_assert_mem_eq(hwc, back, sizeof hwc);
    float out_of_range[3] = {-3.0f, 0.0f, 7.0f};
    uint8_t px[3];
    clsynth_chw_to_hwc_u8(out_of_range, 3, 1, 1, px);
    ck_assert(px[0] == 0 && px[1] == 128 && px[2] == 255);
}
END_TEST

START_TEST(test_grid_layout)
{
    enum { N = 2, H = 3, W = 4 };
    int32_t label[N * H * W];
    float synth[N * 3 * H * W], real[N * 3 * H * W];
    for (int i = 0; i < N * H * W; i++)
        label[i] = i % 2 ? 255 : 7;
    for (int i = 0; i < N * 3 * H * W; i++) {
        synth[i] = 1.0f;  /* white */
        real[i] = -1.0f;  /* black */
    }
    clsynth_err err;
    ck_assert_msg(clsynth_grid_write("grid.png", N, H, W, label, synth, real, &err) == 0, "%s",
                  err.msg);
    clsynth_image g;
    ck_assert_int_eq(clsynth_png_read("grid.png", &g, &err), 0);
    ck_assert_int_eq(g.w, 3 * W + 2 * 2);
    ck_assert_int_eq(g.h, N * H + 2);
    uint8_t c7[3];
    clsynth_label_color(7, c7);
    ck_assert_mem_eq(g.data, c7, 3);                               /* (0,0): label 7 */
    ck_assert(g.data[3] == 0 && g.data[4] == 0 && g.data[5] == 0); /* (1,0): don't care */
    ck_assert_int_eq(g.data[3 * (W + 2)], 255);                    /* synth column */
    ck_assert_int_eq(g.data[3 * (2 * W + 4)], 0);                  /* real column */
    ck_assert_int_eq(g.data[3 * W], 128);                          /* gap */
    clsynth_image_free(&g);
    ck_assert_msg(clsynth_grid_write("grid2.png", N, H, W, label, synth, NULL, &err) == 0, "%s",
                  err.msg);
    ck_assert_int_eq(clsynth_png_read("grid2.png", &g, &err), 0);
    ck_assert_int_eq(g.w, 2 * W + 2);
    clsynth_image_free(&g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("grid");
    TCase *tc = tcase_create("grid");
    tcase_add_test(tc, test_palette_is_distinct_and_dontcare_black);
    tcase_add_test(tc, test_chw_hwc_round_trip);
    tcase_add_test(tc, test_grid_layout);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
