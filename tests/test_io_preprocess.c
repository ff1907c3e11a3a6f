/* Preprocessing (io/preprocess.c): sizes per mode, resampling, crop/flip
 * shared by label, instance and image, edges, don't care. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/preprocess.h"
#include "testutil.h"

static clsynth_data_opts opts(clsynth_preprocess_mode m, int load, int crop, float aspect)
{
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    o.preprocess_mode = m;
    o.load_size = load;
    o.crop_size = crop;
    o.aspect_ratio = aspect;
    o.label_nc = 10;
    return o;
}

/* Sample whose label is (x / 4) % 10, red = 20 * label, instance = x / 8 + 1. */
static void make_sample(clsynth_raw_sample *s, int w, int h)
{
    clsynth_err err;
    ck_assert_int_eq(clsynth_image_alloc(&s->image, w, h, 3, &err), 0);
    ck_assert_int_eq(clsynth_idmap_alloc(&s->label, w, h, &err), 0);
    ck_assert_int_eq(clsynth_idmap_alloc(&s->instance, w, h, &err), 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int i = y * w + x, l = (x / 4) % 10;
            s->label.data[i] = l;
            s->instance.data[i] = x / 8 + 1;
            s->image.data[3 * i] = (uint8_t)(20 * l);
            s->image.data[3 * i + 1] = (uint8_t)y;
            s->image.data[3 * i + 2] = 0;
        }
}

START_TEST(test_output_sizes_per_mode)
{
    struct {
        clsynth_preprocess_mode m;
        int load, crop;
        float aspect;
        int sw, sh, ow, oh;
    } cases[] = {
        {CLSYNTH_PRE_RESIZE_AND_CROP, 286, 256, 1.0f, 640, 427, 256, 256},
        {CLSYNTH_PRE_SCALE_WIDTH_AND_CROP, 300, 256, 1.0f, 640, 480, 256, 256},
        {CLSYNTH_PRE_SCALE_WIDTH, 320, 256, 1.0f, 640, 427, 320, 213},
        {CLSYNTH_PRE_FIXED, 512, 512, 2.0f, 2048, 1024, 512, 256},
        {CLSYNTH_PRE_NONE, 0, 0, 1.0f, 100, 47, 96, 32},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        clsynth_data_opts o = opts(cases[k].m, cases[k].load, cases[k].crop, cases[k].aspect);
        int w, h;
        clsynth_preprocess_size(&o, cases[k].sw, cases[k].sh, &w, &h);
        ck_assert_msg(w == cases[k].ow && h == cases[k].oh, "case %zu: %dx%d", k, w, h);
    }
}
END_TEST

/* One bright pixel in every 5x5 block: shrinking 10x must give its area
 * average (255 / 25) everywhere. Bilinear sampling would give 64 and
 * nearest 0 or 255: aliasing. */
START_TEST(test_area_downscale_does_not_alias)
{
    enum { S = 640, D = 64 };
    uint8_t *src = malloc(S * S), dst[D * D];
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            src[y * S + x] = x % 5 == 4 && y % 5 == 4 ? 255 : 0;
    clsynth_err err;
    ck_assert_int_eq(clsynth_resize_u8(src, S, S, 1, dst, D, D, &err), 0);
    int lo = 255, hi = 0;
    for (int i = 0; i < D * D; i++) {
        lo = dst[i] < lo ? dst[i] : lo;
        hi = dst[i] > hi ? dst[i] : hi;
    }
    ck_assert_int_ge(lo, 10);
    ck_assert_int_le(hi, 11);
    free(src);
}
END_TEST

START_TEST(test_bilinear_upscale_is_smooth_and_exact_at_constants)
{
    uint8_t src[2 * 1 * 1] = {0, 200}, dst[8];
    clsynth_err err;
    ck_assert_int_eq(clsynth_resize_u8(src, 2, 1, 1, dst, 8, 1, &err), 0);
    ck_assert_int_eq(dst[0], 0);
    ck_assert_int_eq(dst[7], 200);
    for (int i = 1; i < 8; i++)
        ck_assert_int_ge(dst[i], dst[i - 1]);
    uint8_t flat[9], up[49];
    memset(flat, 77, sizeof flat);
    ck_assert_int_eq(clsynth_resize_u8(flat, 3, 3, 1, up, 7, 7, &err), 0);
    for (int i = 0; i < 49; i++)
        ck_assert_int_eq(up[i], 77);
}
END_TEST

/* Crop and flip move label, instance edges and image together. */
START_TEST(test_crop_and_flip_are_shared)
{
    enum { SW = 64, SH = 40, C = 32 };
    clsynth_raw_sample s;
    make_sample(&s, SW, SH);
    clsynth_data_opts o = opts(CLSYNTH_PRE_SCALE_WIDTH_AND_CROP, SW, C, 1.0f);
    float img[3 * C * C], edge[C * C];
    int32_t lab[C * C];
    int flips = 0, offsets = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        clsynth_rng r;
        clsynth_rng_seed(&r, &seed, 1);
        clsynth_prep_params p;
        clsynth_preprocess_params(&o, SW, SH, &r, &p);
        ck_assert_int_le(p.crop_x, SW - C);
        ck_assert_int_le(p.crop_y, SH - C);
        flips += p.flip;
        offsets += p.crop_x != 0;
        clsynth_err err;
        ck_assert_int_eq(clsynth_preprocess_apply(&o, &p, &s, img, lab, edge, &err), 0);
        int bad = 0;
        for (int y = 0; y < C; y++)
            for (int x = 0; x < C; x++) {
                int i = y * C + x;
                int sx = p.crop_x + (p.flip ? C - 1 - x : x), sy = p.crop_y + y;
                bad += lab[i] != (sx / 4) % 10;
                float red = (img[i] + 1.0f) * 127.5f;
                bad += fabsf(red - 20.0f * lab[i]) > 0.5f;
                bad += fabsf((img[C * C + i] + 1.0f) * 127.5f - sy) > 0.5f;
                /* instance boundaries every 8 source columns, between sx%8 == 7 and 0 */
                int e = sx % 8 == 0 || sx % 8 == 7;
                if (x == 0 || x == C - 1)
                    e = (p.flip ? (x == 0 ? sx % 8 == 0 : sx % 8 == 7)
                                : (x == 0 ? sx % 8 == 7 : sx % 8 == 0));
                bad += edge[i] != (float)e;
            }
        ck_assert_msg(bad == 0, "seed %d: %d mismatches", (int)seed, bad);
    }
    ck_assert(flips > 0 && flips < 16);
    ck_assert_int_gt(offsets, 0);
    /* no_flip and eval mode never flip */
    o.no_flip = 1;
    for (uint64_t seed = 0; seed < 16; seed++) {
        clsynth_rng r;
        clsynth_rng_seed(&r, &seed, 1);
        clsynth_prep_params p;
        clsynth_preprocess_params(&o, SW, SH, &r, &p);
        ck_assert_int_eq(p.flip, 0);
    }
    clsynth_prep_params p;
    clsynth_preprocess_params(&o, SW, SH, NULL, &p);
    ck_assert_int_eq(p.crop_x, (SW - C) / 2);
    clsynth_raw_sample_free(&s);
}
END_TEST

START_TEST(test_padding_and_dontcare_value)
{
    clsynth_raw_sample s;
    make_sample(&s, 8, 8);
    s.label.data[0] = 255;
    clsynth_data_opts o = opts(CLSYNTH_PRE_RESIZE_AND_CROP, 8, 12, 1.0f); /* crop > image */
    o.dontcare_value = 10;
    clsynth_prep_params p;
    clsynth_preprocess_params(&o, 8, 8, NULL, &p);
    float img[3 * 144];
    int32_t lab[144];
    clsynth_err err;
    ck_assert_int_eq(clsynth_preprocess_apply(&o, &p, &s, img, lab, NULL, &err), 0);
    ck_assert_int_eq(lab[0], 10);        /* source don't care */
    ck_assert_int_eq(lab[8], 10);        /* padding */
    ck_assert(img[8] == -1.0f);          /* padding is black */
    ck_assert_int_eq(lab[1], 0);
    clsynth_raw_sample_free(&s);
}
END_TEST

START_TEST(test_edges_mark_four_neighbour_changes)
{
    int32_t ids[5 * 4] = {
        1, 1, 1, 1, 1,
        1, 2, 2, 1, 1,
        1, 2, 2, 1, 1,
        1, 1, 1, 1, 1,
    };
    float e[20];
    static const float want[20] = {
        0, 1, 1, 0, 0,
        1, 1, 1, 1, 0,
        1, 1, 1, 1, 0,
        0, 1, 1, 0, 0,
    };
    clsynth_instance_edges(ids, 5, 4, e);
    ck_assert_mem_eq(e, want, sizeof want);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("preprocess");
    TCase *tc = tcase_create("preprocess");
    tcase_add_test(tc, test_output_sizes_per_mode);
    tcase_add_test(tc, test_area_downscale_does_not_alias);
    tcase_add_test(tc, test_bilinear_upscale_is_smooth_and_exact_at_constants);
    tcase_add_test(tc, test_crop_and_flip_are_shared);
    tcase_add_test(tc, test_padding_and_dontcare_value);
    tcase_add_test(tc, test_edges_mark_four_neighbour_changes);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
