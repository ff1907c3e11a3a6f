/* Dataset layouts and their errors (io/dataset.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset.h"
#include "io/png.h"
#include "test_io_fixtures.h"
#include "testutil.h"

/* A label map whose pixel i is (i * 3 + salt) % nc. */
static void label_png(const char *path, int w, int h, int nc, int salt)
{
    uint8_t *v = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        v[i] = (uint8_t)((i * 3 + salt) % nc);
    fx_gray8(path, w, h, v);
    free(v);
}

/* A folder triple label/ image/ inst/ named by the caller with n samples. */
static void make_triplet(const char *ldir, const char *idir, const char *ndir, int n, int w,
                         int h, int nc, const char *img_ext)
{
    char p[512];
    fx_mkdir(ldir);
    fx_mkdir(idir);
    if (ndir)
        fx_mkdir(ndir);
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/s%03d.png", ldir, n - 1 - i); /* written out of order */
        label_png(p, w, h, nc, n - 1 - i);
        snprintf(p, sizeof p, "%s/s%03d.%s", idir, n - 1 - i, img_ext);
        if (strcmp(img_ext, "jpg") == 0) {
            uint8_t *px = malloc((size_t)w * h * 3);
            memset(px, 90, (size_t)w * h * 3);
            fx_jpeg(p, w, h, 3, px, 90);
            free(px);
        } else {
            fx_rgb_pattern(p, w, h);
        }
        if (ndir) {
            snprintf(p, sizeof p, "%s/s%03d.png", ndir, n - 1 - i);
            label_png(p, w, h, 3, 0);
        }
    }
}

static clsynth_dataset *open_or_fail(clsynth_data_opts *o)
{
    clsynth_err err;
    clsynth_dataset *ds = clsynth_dataset_open(o, &err);
    ck_assert_msg(ds != NULL, "%s", err.msg);
    return ds;
}

START_TEST(test_custom_dirs_pair_by_stem_in_sorted_order)
{
    fx_rmtree("cu");
    fx_mkdir("cu");
    make_triplet("cu/lab", "cu/img", "cu/ins", 4, 9, 6, 5, "png");
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    strcpy(o.label_dir, "cu/lab");
    strcpy(o.image_dir, "cu/img");
    strcpy(o.instance_dir, "cu/ins");
    o.label_nc = 5;
    clsynth_dataset *ds = open_or_fail(&o);
    ck_assert_int_eq(ds->n, 4);
    ck_assert(ds->has_instance);
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "cu/lab/s%03d.png", i);
        ck_assert_str_eq(ds->files[i].label, want);
        snprintf(want, sizeof want, "cu/img/s%03d.png", i);
        ck_assert_str_eq(ds->files[i].image, want);
        snprintf(want, sizeof want, "cu/ins/s%03d.png", i);
        ck_assert_str_eq(ds->files[i].instance, want);
    }
    clsynth_raw_sample s;
    clsynth_err err;
    ck_assert_msg(clsynth_dataset_read(ds, 2, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.image.c, 3);
    ck_assert_int_eq(s.label.w, 9);
    ck_assert_int_eq(s.label.data[1], (3 + 2) % 5);
    clsynth_raw_sample_free(&s);
    clsynth_dataset_free(ds);
    /* without --instance_dir: no instances */
    o.instance_dir[0] = '\0';
    ds = open_or_fail(&o);
    ck_assert(!ds->has_instance);
    ck_assert_ptr_null(ds->files[0].instance);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_custom_dataroot_splits_and_classes_txt)
{
    fx_rmtree("cr");
    fx_mkdir("cr");
    make_triplet("cr/train_label", "cr/train_img", "cr/train_inst", 3, 8, 8, 4, "png");
    make_triplet("cr/val_label", "cr/val_img", "cr/val_inst", 2, 8, 8, 4, "png");
    FILE *f = fopen("cr/classes.txt", "w");
    fputs("# id name r g b\n0 a 1 2 3\n1 b 1 2 3\n2 c 1 2 3\n3 d 1 2 3\n", f);
    fclose(f);
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    char *argv[] = {"x", "--dataroot", "cr", "--phase=val", "--crop_size", "8", "--bogus"};
    clsynth_err err;
    for (int i = 1; i < 6;)
        ck_assert_int_eq(clsynth_data_opts_parse_arg(&o, 7, argv, &i, &err), 1);
    int i = 6;
    ck_assert_int_eq(clsynth_data_opts_parse_arg(&o, 7, argv, &i, &err), 0);
    clsynth_dataset *ds = open_or_fail(&o);
    ck_assert_int_eq(ds->n, 2);
    ck_assert_int_eq(ds->opts.label_nc, 4);
    ck_assert_int_eq(ds->opts.load_size, 8);
    ck_assert_ptr_nonnull(strstr(ds->files[0].label, "cr/val_label/"));
    ck_assert_int_eq(clsynth_dataset_verify(ds, &err), 0);
    clsynth_dataset_free(ds);
    o.is_train = 1;
    ds = open_or_fail(&o);
    ck_assert_int_eq(ds->n, 3);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_coco_layout_with_jpeg_and_dontcare)
{
    fx_rmtree("co");
    fx_mkdir("co");
    make_triplet("co/train_label", "co/train_img", "co/train_inst", 2, 10, 7, 182, "jpg");
    uint8_t v[10 * 7];
    for (int i = 0; i < 70; i++)
        v[i] = i % 2 ? 255 : 181;
    fx_gray8("co/train_label/s001.png", 10, 7, v);
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    strcpy(o.dataset_mode, "coco");
    strcpy(o.dataroot, "co");
    clsynth_dataset *ds = open_or_fail(&o);
    ck_assert_int_eq(ds->opts.label_nc, 182);
    ck_assert_int_eq(ds->opts.load_size, 286);
    ck_assert_int_eq(ds->opts.crop_size, 256);
    ck_assert_int_eq(ds->opts.preprocess_mode, CLSYNTH_PRE_RESIZE_AND_CROP);
    clsynth_raw_sample s;
    clsynth_err err;
    ck_assert_msg(clsynth_dataset_read(ds, 1, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.label.data[0], 181);
    ck_assert_int_eq(s.label.data[1], 255);
    ck_assert_int_eq(s.image.w, 10);
    clsynth_raw_sample_free(&s);
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_ade20k_shifts_labels_and_zero_is_dontcare)
{
    fx_rmtree("ad");
    fx_mkdir("ad");
    fx_mkdir("ad/images");
    fx_mkdir("ad/annotations");
    make_triplet("ad/annotations/training", "ad/images/training", NULL, 2, 6, 4, 151, "jpg");
    uint8_t v[24] = {0, 1, 2, 150};
    fx_gray8("ad/annotations/training/s000.png", 6, 4, v);
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    strcpy(o.dataset_mode, "ade20k");
    strcpy(o.dataroot, "ad");
    clsynth_dataset *ds = open_or_fail(&o);
    ck_assert_int_eq(ds->opts.label_nc, 150);
    ck_assert(!ds->has_instance);
    clsynth_raw_sample s;
    clsynth_err err;
    ck_assert_msg(clsynth_dataset_read(ds, 0, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.label.data[0], 255);
    ck_assert_int_eq(s.label.data[1], 0);
    ck_assert_int_eq(s.label.data[2], 1);
    ck_assert_int_eq(s.label.data[3], 149);
    clsynth_raw_sample_free(&s);
    /* raw 151 → 150, out of range */
    v[5] = 151;
    fx_gray8("ad/annotations/training/s000.png", 6, 4, v);
    ck_assert_int_ne(clsynth_dataset_read(ds, 0, &s, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "value 151 at pixel x=5 y=0"));
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_cityscapes_nested_cities_and_16bit_instances)
{
    fx_rmtree("cs");
    const char *dirs[] = {"cs", "cs/gtFine", "cs/gtFine/train", "cs/gtFine/train/aachen",
                          "cs/gtFine/train/bonn", "cs/leftImg8bit", "cs/leftImg8bit/train",
                          "cs/leftImg8bit/train/aachen", "cs/leftImg8bit/train/bonn"};
    for (size_t k = 0; k < sizeof dirs / sizeof *dirs; k++)
        fx_mkdir(dirs[k]);
    const char *stems[] = {"bonn/bonn_000001_000019", "aachen/aachen_000000_000019",
                           "aachen/aachen_000001_000019"};
    char p[256];
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "cs/gtFine/train/%s_gtFine_labelIds.png", stems[k]);
        label_png(p, 8, 4, 34, k);
        snprintf(p, sizeof p, "cs/gtFine/train/%s_gtFine_instanceIds.png", stems[k]);
        uint16_t inst[32];
        for (int i = 0; i < 32; i++)
            inst[i] = (uint16_t)(i < 16 ? 26001 : 26002);
        fx_png(p, 8, 4, PNG_COLOR_TYPE_GRAY, 16, inst, 0);
        snprintf(p, sizeof p, "cs/gtFine/train/%s_gtFine_color.png", stems[k]); /* ignored */
        fx_rgb_pattern(p, 8, 4);
        snprintf(p, sizeof p, "cs/leftImg8bit/train/%s_leftImg8bit.png", stems[k]);
        fx_rgb_pattern(p, 8, 4);
    }
    clsynth_data_opts o;
    clsynth_data_opts_init(&o);
    strcpy(o.dataset_mode, "cityscapes");
    strcpy(o.dataroot, "cs");
    clsynth_dataset *ds = open_or_fail(&o);
    ck_assert_int_eq(ds->n, 3);
    ck_assert_int_eq(ds->opts.label_nc, 35);
    ck_assert_int_eq(ds->opts.preprocess_mode, CLSYNTH_PRE_FIXED);
    ck_assert(ds->opts.aspect_ratio == 2.0f);
    ck_assert_str_eq(ds->files[0].image, "cs/leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png");
    ck_assert_str_eq(ds->files[2].instance, "cs/gtFine/train/bonn/bonn_000001_000019_gtFine_instanceIds.png");
    clsynth_raw_sample s;
    clsynth_err err;
    ck_assert_msg(clsynth_dataset_read(ds, 0, &s, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(s.instance.data[0], 26001);
    ck_assert_int_eq(s.instance.data[31], 26002);
    clsynth_raw_sample_free(&s);
    clsynth_dataset_free(ds);
}
END_TEST

/* A valid 2-sample custom dataset in dir "e", for the error tests. */
static void make_errors_fixture(clsynth_data_opts *o)
{
    fx_rmtree("e");
    fx_mkdir("e");
    make_triplet("e/train_label", "e/train_img", NULL, 2, 8, 6, 10, "png");
    clsynth_data_opts_init(o);
    strcpy(o->dataroot, "e");
    o->label_nc = 10;
}

START_TEST(test_label_out_of_range_names_file_pixel_and_value)
{
    clsynth_data_opts o;
    make_errors_fixture(&o);
    uint8_t v[48] = {0};
    v[2 * 8 + 5] = 12; /* x=5 y=2 */
    fx_gray8("e/train_label/s001.png", 8, 6, v);
    clsynth_dataset *ds = open_or_fail(&o);
    clsynth_raw_sample s;
    clsynth_err err;
    ck_assert_int_eq(clsynth_dataset_read(ds, 0, &s, &err), 0);
    clsynth_raw_sample_free(&s);
    ck_assert_int_ne(clsynth_dataset_read(ds, 1, &s, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_label/s001.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "value 12 at pixel x=5 y=2"));
    ck_assert_int_ne(clsynth_dataset_verify(ds, &err), 0);
    /* 255 is don't care in custom/coco, but not in cityscapes */
    v[2 * 8 + 5] = 255;
    fx_gray8("e/train_label/s001.png", 8, 6, v);
    ck_assert_int_eq(clsynth_dataset_read(ds, 1, &s, &err), 0);
    clsynth_raw_sample_free(&s);
    ds->opts.allow_dontcare = 0;
    ck_assert_int_ne(clsynth_dataset_read(ds, 1, &s, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "value 255 at pixel x=5 y=2"));
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_size_mismatch_names_both_files)
{
    clsynth_data_opts o;
    make_errors_fixture(&o);
    fx_rgb_pattern("e/train_img/s000.png", 9, 6);
    clsynth_dataset *ds = open_or_fail(&o);
    clsynth_raw_sample s;
    clsynth_err err;
    ck_assert_int_ne(clsynth_dataset_read(ds, 0, &s, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "size mismatch"));
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_label/s000.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_img/s000.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "9x6"));
    clsynth_dataset_free(ds);
}
END_TEST

START_TEST(test_missing_pair_names_the_files)
{
    clsynth_data_opts o;
    make_errors_fixture(&o);
    ck_assert_int_eq(remove("e/train_img/s001.png"), 0);
    clsynth_err err;
    ck_assert_ptr_null(clsynth_dataset_open(&o, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "missing pair"));
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_label/s001.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_img"));
    /* the other way round: an image without label */
    fx_rgb_pattern("e/train_img/s001.png", 8, 6);
    fx_rgb_pattern("e/train_img/extra.png", 8, 6);
    ck_assert_ptr_null(clsynth_dataset_open(&o, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_img/extra.png"));
    ck_assert_ptr_nonnull(strstr(err.msg, "e/train_label"));
    /* two images with one stem */
    ck_assert_int_eq(remove("e/train_img/extra.png"), 0);
    fx_rgb_pattern("e/train_img/s001.jpg", 8, 6);
    ck_assert_ptr_null(clsynth_dataset_open(&o, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "s001.jpg"));
    /* a missing folder */
    strcpy(o.dataroot, "nowhere");
    ck_assert_ptr_null(clsynth_dataset_open(&o, &err));
    ck_assert_msg(strstr(err.msg, "--dataroot nowhere: No such file or directory"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_option_errors)
{
    clsynth_data_opts o;
    clsynth_err err;
    clsynth_data_opts_init(&o);
    char *bad[][2] = {{"--dataset_mode", "mnist"}, {"--preprocess_mode", "zoom"},
                      {"--crop_size", "0"}, {"--aspect_ratio", "x"}, {"--phase", "dev"}};
    for (int k = 0; k < 5; k++) {
        char *argv[3] = {"x", bad[k][0], bad[k][1]};
        int i = 1;
        ck_assert_int_eq(clsynth_data_opts_parse_arg(&o, 3, argv, &i, &err), -1);
        ck_assert_ptr_nonnull(strstr(err.msg, bad[k][0]));
    }
    char *argv[2] = {"x", "--crop_size"};
    int i = 1;
    ck_assert_int_eq(clsynth_data_opts_parse_arg(&o, 2, argv, &i, &err), -1);
    clsynth_data_opts_init(&o);
    ck_assert_int_ne(clsynth_data_opts_finalize(&o, &err), 0); /* custom without dirs */
    strcpy(o.dataset_mode, "coco");
    ck_assert_int_ne(clsynth_data_opts_finalize(&o, &err), 0); /* no dataroot */
    ck_assert_ptr_nonnull(strstr(err.msg, "--dataroot"));
}
END_TEST

START_TEST(test_missing_dataroot_is_named_not_taken_for_a_missing_label_nc)
{
    clsynth_data_opts o;
    clsynth_err err;
    clsynth_data_opts_init(&o);
    strcpy(o.dataroot, "no_such_dataset");
    ck_assert_int_ne(clsynth_data_opts_finalize(&o, &err), 0);
    ck_assert_msg(strstr(err.msg, "--dataroot no_such_dataset: No such file or directory"), "message: %s", err.msg);
    ck_assert_msg(!strstr(err.msg, "label_nc"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_coco_stuff_samples_load)
{
    const char *shared = clsynth_test_shared_dir();
    char root[1024];
    snprintf(root, sizeof root, "%s/data/coco_stuff_samples", shared ? shared : "");
    if (!shared || fx_file_size(root) < 0) {
        fprintf(stderr, "test_coco_stuff_samples_load: skipped, %s absent\n", root);
        return;
    }
    for (int train = 1; train >= 0; train--) {
        clsynth_data_opts o;
        clsynth_data_opts_init(&o);
        strcpy(o.dataset_mode, "coco");
        snprintf(o.dataroot, sizeof o.dataroot, "%s", root);
        o.is_train = train;
        clsynth_dataset *ds = open_or_fail(&o);
        ck_assert_int_eq(ds->n, train ? 13 : 8);
        ck_assert(ds->has_instance);
        for (int i = 0; i < ds->n; i++) {
            clsynth_raw_sample s;
            clsynth_err err;
            ck_assert_msg(clsynth_dataset_read(ds, i, &s, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(s.image.w, s.label.w);
            ck_assert_int_eq(s.image.h, s.label.h);
            ck_assert_int_gt(s.image.w, 200);
            /* (one assertion per image: Check reports every assertion to its parent) */
            int classes = 0, bad = 0, seen[256] = {0};
            for (int k = 0; k < s.label.w * s.label.h; k++) {
                int v = s.label.data[k];
                if (v == 255 || (v >= 0 && v < 182))
                    classes += !seen[v]++;
                else
                    bad++;
            }
            ck_assert_int_eq(bad, 0);
            ck_assert_int_gt(classes, 1);
            clsynth_raw_sample_free(&s);
        }
        clsynth_dataset_free(ds);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("dataset");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_custom_dirs_pair_by_stem_in_sorted_order);
    tcase_add_test(tc, test_missing_dataroot_is_named_not_taken_for_a_missing_label_nc);
    tcase_add_test(tc, test_custom_dataroot_splits_and_classes_txt);
    tcase_add_test(tc, test_coco_layout_with_jpeg_and_dontcare);
    tcase_add_test(tc, test_ade20k_shifts_labels_and_zero_is_dontcare);
    tcase_add_test(tc, test_cityscapes_nested_cities_and_16bit_instances);
    tcase_add_test(tc, test_label_out_of_range_names_file_pixel_and_value);
    tcase_add_test(tc, test_size_mismatch_names_both_files);
    tcase_add_test(tc, test_missing_pair_names_the_files);
    tcase_add_test(tc, test_option_errors);
    tcase_add_test(tc, test_coco_stuff_samples_load);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
