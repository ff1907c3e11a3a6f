/* Writes the seed corpora of the fuzz harnesses (committed under
 * tests/fuzz/corpus/; this is how they were made):
 *   make_seeds DIR  writes the files of DIR/image/ and DIR/checkpoint/
 * Small valid files of every kind the readers take; the tuning-database
 * seeds are text files written by hand (corpus/tunedb/). */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "test_io_fixtures.h"
#include "testutil.h"

static const char *out; /* DIR */

/* A Check test only because the fixture writers report through Check. */
START_TEST(write_seeds)
{
    char *argv[2] = { NULL, (char *)out };
    char p[1024];
    snprintf(p, sizeof p, "%s/image", argv[1]);
    fx_mkdir(argv[1]);
    fx_mkdir(p);
    uint16_t v[6 * 4 * 4];
    for (int i = 0; i < 6 * 4 * 4; i++)
        v[i] = (uint16_t)(i * 29 % 251);
    snprintf(p, sizeof p, "%s/image/gray8.png", argv[1]);
    fx_png(p, 6, 4, PNG_COLOR_TYPE_GRAY, 8, v, 0);
    snprintf(p, sizeof p, "%s/image/rgb8.png", argv[1]);
    fx_png(p, 4, 3, PNG_COLOR_TYPE_RGB, 8, v, 0);
    snprintf(p, sizeof p, "%s/image/rgba8.png", argv[1]);
    fx_png(p, 3, 2, PNG_COLOR_TYPE_RGB_ALPHA, 8, v, 0);
    for (int i = 0; i < 6 * 4; i++)
        v[i] = (uint16_t)(i * 2711 % 65535);
    snprintf(p, sizeof p, "%s/image/gray16.png", argv[1]);
    fx_png(p, 6, 4, PNG_COLOR_TYPE_GRAY, 16, v, 0);
    for (int i = 0; i < 6 * 4; i++)
        v[i] = (uint16_t)(i % 5);
    snprintf(p, sizeof p, "%s/image/palette4.png", argv[1]);
    fx_png(p, 6, 4, PNG_COLOR_TYPE_PALETTE, 4, v, 5);
    uint8_t px[8 * 8 * 3];
    for (int i = 0; i < 8 * 8 * 3; i++)
        px[i] = (uint8_t)(i * 7);
    snprintf(p, sizeof p, "%s/image/rgb.jpg", argv[1]);
    fx_jpeg(p, 8, 8, 3, px, 80);
    snprintf(p, sizeof p, "%s/image/gray.jpg", argv[1]);
    fx_jpeg(p, 8, 8, 1, px, 60);

    snprintf(p, sizeof p, "%s/checkpoint", argv[1]);
    fx_mkdir(p);
    float a[2 * 3 * 2 * 2], b[5];
    for (int i = 0; i < 24; i++)
        a[i] = (float)i * 0.5f - 3.0f;
    for (int i = 0; i < 5; i++)
        b[i] = -(float)i;
    clsynth_ckpt_tensor_in t[2] = { { "G.conv.w", "param", 4, { 2, 3, 2, 2 }, a }, { "G.conv.b", NULL, 1, { 5 }, b } };
    uint64_t rng[4] = { 1, 2, 3, 4 };
    clsynth_err err;
    snprintf(p, sizeof p, "%s/checkpoint/two_tensors.ckpt", argv[1]);
    ck_assert_msg(clsynth_checkpoint_save(p, "ngf=4\nstate.epoch=1\n", 12, rng, t, 2, &err) == 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/checkpoint/empty.ckpt", argv[1]);
    ck_assert_msg(clsynth_checkpoint_save(p, NULL, 0, NULL, NULL, 0, &err) == 0, "%s", err.msg);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds DIR\n");
        return 2;
    }
    out = argv[1];
    Suite *s = suite_create("make_seeds");
    TCase *tc = tcase_create("make_seeds");
    tcase_add_test(tc, write_seeds);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
