/* Synthetic street scenes (io/synth.c, `clsynth dataset synth`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset.h"
#include "io/png.h"
#include "io/synth.h"
#include "test_io_fixtures.h"
#include "testutil.h"

static int files_equal(const char *a, const char *b)
{
    FILE *f = fopen(a, "rb"), *g = fopen(b, "rb");
    ck_assert_msg(f && g, "cannot open %s or %s", a, b);
    int same = 1, c, d;
    do {
        c = fgetc(f);
        d = fgetc(g);
        same &= c == d;
    } while (same && c != EOF);
    fclose(f);
    fclose(g);
    return same;
}

START_TEST(test_missing_parent_folders_are_created)
{
    clsynth_err err;
    ck_assert_int_eq(system("rm -rf nest"), 0);
    ck_assert_msg(clsynth_synth_write("nest/a/b", 1, 1, 32, 32, 1, &err) == 0, "%s", err.msg);
    FILE *f = fopen("nest/a/b/classes.txt", "r");
    ck_assert_ptr_nonnull(f);
    fclose(f);
}
END_TEST

START_TEST(test_same_seed_gives_identical_files)
{
    clsynth_err err;
    fx_rmtree("s1");
    fx_rmtree("s2");
    fx_rmtree("s3");
    ck_assert_msg(clsynth_synth_write("s1", 3, 2, 64, 48, 42, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_synth_write("s2", 3, 2, 64, 48, 42, &err) == 0, "%s", err.msg);
    ck_assert_msg(clsynth_synth_write("s3", 3, 2, 64, 48, 43, &err) == 0, "%s", err.msg);
    static const char *const kinds[] = {"train_label", "train_img", "train_inst", "val_label",
                                        "val_img", "val_inst"};
    int differ_by_seed = 0;
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < (k < 3 ? 3 : 2); i++) {
            char a[128], b[128], c[128];
            snprintf(a, sizeof a, "s1/%s/%06d.png", kinds[k], i);
            snprintf(b, sizeof b, "s2/%s/%06d.png", kinds[k], i);
            snprintf(c, sizeof c, "s3/%s/%06d.png", kinds[k], i);
            ck_assert_msg(files_equal(a, b), "%s and %s differ", a, b);
            differ_by_seed += !files_equal(a, c);
        }
    ck_assert_int_ge(differ_by_seed, 15); /* image and label files all change */
    ck_assert(files_equal("s1/classes.txt", "s2/classes.txt"));
    /* train and val are different scenes */
    ck_assert(!files_equal("s1/train_img/000000.png", "s1/val_img/000000.png"));
}
END_TEST

START_TEST(test_at_least_eight_classes_across_a_few_scenes)
{
    int seen[CLSYNTH_SYN_NUM_CLASSES] = {0}, bad = 0;
    for (int i = 0; i < 6; i++) {
        clsynth_image img, lab, ins;
        clsynth_err err;
        ck_assert_msg(clsynth_synth_scene(7, 0, i, 64, 64, &img, &lab, &ins, &err) == 0, "%s",
                      err.msg);
        for (int k = 0; k < 64 * 64; k++) {
            if (lab.data[k] < CLSYNTH_SYN_NUM_CLASSES)
                seen[lab.data[k]] = 1;
            else
                bad++;
        }
        clsynth_image_free(&img);
        clsynth_image_free(&lab);
        clsynth_image_free(&ins);
    }
    int n = 0;
    for (int c = 0; c < CLSYNTH_SYN_NUM_CLASSES; c++)
        n += seen[c];
    ck_assert_int_eq(bad, 0);
    ck_assert_int_ge(n, 8);
}
END_TEST

/* Instances sit exactly on countable classes and each instance id has one
 * class; stuff classes have instance 0. */
START_TEST(test_instances_agree_with_labels)
{
    int bad = 0, instances = 0;
    for (int i = 0; i < 8; i++) {
        clsynth_image img, lab, ins;
        clsynth_err err;
        ck_assert_int_eq(clsynth_synth_scene(3, 0, i, 96, 64, &img, &lab, &ins, &err), 0);
        int cls_of[256];
        for (int k = 0; k < 256; k++)
            cls_of[k] = -1;
        for (int k = 0; k < 96 * 64; k++) {
            int c = lab.data[k], id = ins.data[k];
            int thing = c == CLSYNTH_SYN_CAR || c == CLSYNTH_SYN_PERSON ||
                        c == CLSYNTH_SYN_POLE || c == CLSYNTH_SYN_SIGN;
            bad += thing != (id != 0);
            if (id) {
                instances += cls_of[id] < 0;
                bad += cls_of[id] >= 0 && cls_of[id] != c;
                cls_of[id] = c;
            }
        }
        clsynth_image_free(&img);
        clsynth_image_free(&lab);
        clsynth_image_free(&ins);
    }
    ck_assert_int_eq(bad, 0);
    ck_assert_int_ge(instances, 8);
}
END_TEST

/* Pixels of a class look like that class: sky is bluish or bright, road is
 * gray, vegetation is green-dominant (on average). */
START_TEST(test_pixels_are_consistent_with_labels)
{
    double sum[CLSYNTH_SYN_NUM_CLASSES][3] = {{0}};
    long cnt[CLSYNTH_SYN_NUM_CLASSES] = {0};
    double var_road = 0, mean_road = 0;
    for (int i = 0; i < 8; i++) {
        clsynth_image img, lab, ins;
        clsynth_err err;
        ck_assert_int_eq(clsynth_synth_scene(11, 0, i, 64, 64, &img, &lab, &ins, &err), 0);
        for (int k = 0; k < 64 * 64; k++) {
            int c = lab.data[k];
            for (int ch = 0; ch < 3; ch++)
                sum[c][ch] += img.data[3 * k + ch];
            cnt[c]++;
            if (c == CLSYNTH_SYN_ROAD) {
                mean_road += img.data[3 * k + 1];
                var_road += (double)img.data[3 * k + 1] * img.data[3 * k + 1];
            }
        }
        clsynth_image_free(&img);
        clsynth_image_free(&lab);
        clsynth_image_free(&ins);
    }
    ck_assert(cnt[CLSYNTH_SYN_SKY] > 0 && cnt[CLSYNTH_SYN_ROAD] > 0);
    double *sky = sum[CLSYNTH_SYN_SKY], *road = sum[CLSYNTH_SYN_ROAD];
    ck_assert(sky[2] >= sky[0]);                                /* blue >= red */
    ck_assert(sky[2] / cnt[CLSYNTH_SYN_SKY] > road[2] / cnt[CLSYNTH_SYN_ROAD]);
    double rg = road[0] / road[1];
    ck_assert(rg > 0.85 && rg < 1.15);                          /* road is gray */
    if (cnt[CLSYNTH_SYN_VEGETATION]) {
        double *v = sum[CLSYNTH_SYN_VEGETATION];
        ck_assert(v[1] > v[0] && v[1] > v[2]);
    }
    /* texture, not flat colour: road pixels vary */
    mean_road /= cnt[CLSYNTH_SYN_ROAD];
    double var = var_road / cnt[CLSYNTH_SYN_ROAD] - mean_road * mean_road;
    ck_assert(var > 16.0); /* standard deviation above 4 levels */
}
END_TEST

START_TEST(test_written_dataset_opens_as_custom_with_ten_classes)
{
    clsynth_err err;
    fx_rmtree("sw");
    ck_assert_int_eq(clsynth_synth_write("sw", 4, 1, 256, 128, 5, &err), 0);
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    strcpy(o.dataroot, "sw");
    clsynth_dataset *ds = clsynth_dataset_open(&o, &err);
    ck_assert_msg(ds != NULL, "%s", err.msg);
    ck_assert_int_eq(ds->n, 4);
    ck_assert_int_eq(ds->opts.label_nc, CLSYNTH_SYN_NUM_CLASSES);
    ck_assert(ds->has_instance);
    ck_assert_msg(clsynth_dataset_verify(ds, &err) == 0, "%s", err.msg);
    clsynth_raw_sample s;
    ck_assert_int_eq(clsynth_dataset_read(ds, 0, &s, &err), 0);
    ck_assert_int_eq(s.image.w, 256);
    ck_assert_int_eq(s.image.h, 128);
    clsynth_raw_sample_free(&s);
    clsynth_dataset_free(ds);
    ck_assert_str_eq(clsynth_synth_class_name(0), "sky");
    ck_assert_ptr_null(clsynth_synth_class_name(CLSYNTH_SYN_NUM_CLASSES));
    clsynth_image a, b, c;
    ck_assert_int_ne(clsynth_synth_scene(1, 0, 0, 8, 64, &a, &b, &c, &err), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("synth");
    TCase *tc = tcase_create("synth");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_same_seed_gives_identical_files);
    tcase_add_test(tc, test_missing_parent_folders_are_created);
    tcase_add_test(tc, test_at_least_eight_classes_across_a_few_scenes);
    tcase_add_test(tc, test_instances_agree_with_labels);
    tcase_add_test(tc, test_pixels_are_consistent_with_labels);
    tcase_add_test(tc, test_written_dataset_opens_as_custom_with_ten_classes);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
