/* Checkpoint format (io/checkpoint.c): round trip, lookups, and corrupt
 * files that must give errors, never crashes (run this under ASan too). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic.h"
#include "io/checkpoint.h"
#include "test_io_fixtures.h"
#include "testutil.h"

static float A[2 * 3 * 3 * 3], M[2 * 3 * 3 * 3], B[5];

static void save_small(const char *path)
{
    for (int i = 0; i < 54; i++) {
        A[i] = (float)i * 0.25f - 3.0f;
        M[i] = 1.0f / (float)(i + 1);
    }
    for (int i = 0; i < 5; i++)
        B[i] = -(float)i;
    clsynth_ckpt_tensor_in t[3] = {
        {"G.conv.w", "param", 4, {2, 3, 3, 3}, A},
        {"G.conv.w.adam_m", "adam_m", 4, {2, 3, 3, 3}, M},
        {"G.conv.b", NULL, 1, {5}, B},
    };
    uint64_t rng[4] = {1, 2, 3, 0xFFFFFFFFFFFFFFFFull};
    clsynth_err err;
    ck_assert_msg(clsynth_checkpoint_save(path, "ngf=64\nlabel_nc=182\n", 1234, rng, t, 3, &err) ==
                      0, "%s", err.msg);
}

START_TEST(test_round_trip)
{
    save_small("a.ckpt");
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load("a.ckpt", &err);
    ck_assert_msg(ck != NULL, "%s", err.msg);
    ck_assert_uint_eq(ck->version, CLSYNTH_CKPT_VERSION);
    ck_assert_uint_eq(ck->step, 1234);
    ck_assert(ck->rng[0] == 1 && ck->rng[3] == 0xFFFFFFFFFFFFFFFFull);
    ck_assert_str_eq(ck->config, "ngf=64\nlabel_nc=182\n");
    ck_assert_int_eq(ck->n_tensors, 3);
    const clsynth_ckpt_tensor *t = clsynth_checkpoint_find(ck, "G.conv.w.adam_m");
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->tag, "adam_m");
    ck_assert_int_eq(t->ndim, 4);
    ck_assert_uint_eq(t->count, 54);
    ck_assert_mem_eq(t->data, M, sizeof M);
    t = clsynth_checkpoint_find(ck, "G.conv.b");
    ck_assert_str_eq(t->tag, "");
    ck_assert_int_eq(t->shape[0], 5);
    ck_assert_int_eq(t->shape[1], 1);
    ck_assert_mem_eq(t->data, B, sizeof B);
    ck_assert_ptr_null(clsynth_checkpoint_find(ck, "G.conv"));
    char v[32];
    ck_assert_int_eq(clsynth_checkpoint_config_get(ck, "label_nc", v, sizeof v), 0);
    ck_assert_str_eq(v, "182");
    ck_assert_int_ne(clsynth_checkpoint_config_get(ck, "label", v, sizeof v), 0);
    clsynth_checkpoint_free(ck);
}
END_TEST

START_TEST(test_expect_shape_messages)
{
    save_small("b.ckpt");
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load("b.ckpt", &err);
    ck_assert_ptr_nonnull(ck);
    const clsynth_ckpt_tensor *t = NULL;
    int ok[4] = {2, 3, 3, 3}, wrong[4] = {2, 3, 1, 1};
    ck_assert_int_eq(clsynth_checkpoint_expect(ck, "G.conv.w", 4, ok, &t, &err), 0);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_ne(clsynth_checkpoint_expect(ck, "G.conv.w", 4, wrong, &t, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "'G.conv.w'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "expected shape (2, 3, 1, 1), found (2, 3, 3, 3)"));
    ck_assert_int_ne(clsynth_checkpoint_expect(ck, "D.enc1.w", 2, ok, &t, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "'D.enc1.w'"));
    ck_assert_ptr_nonnull(strstr(err.msg, "missing"));
    clsynth_checkpoint_free(ck);
}
END_TEST

START_TEST(test_save_rejects_bad_tensors)
{
    clsynth_err err;
    float x = 0;
    clsynth_ckpt_tensor_in bad_ndim = {"x", NULL, 5, {1, 1, 1, 1}, &x};
    clsynth_ckpt_tensor_in bad_dim = {"x", NULL, 2, {1, 0}, &x};
    clsynth_ckpt_tensor_in twice[2] = {{"x", NULL, 1, {1}, &x}, {"x", NULL, 1, {1}, &x}};
    remove("c.ckpt"); /* from an earlier run in this scratch folder */
    ck_assert_int_ne(clsynth_checkpoint_save("c.ckpt", NULL, 0, NULL, &bad_ndim, 1, &err), 0);
    ck_assert_int_ne(clsynth_checkpoint_save("c.ckpt", NULL, 0, NULL, &bad_dim, 1, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "shape[1]"));
    ck_assert_int_ne(clsynth_checkpoint_save("c.ckpt", NULL, 0, NULL, twice, 2, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    ck_assert_int_lt(fx_file_size("c.ckpt"), 0); /* nothing written */
    /* an empty checkpoint is fine */
    ck_assert_int_eq(clsynth_checkpoint_save("c.ckpt", NULL, 7, NULL, NULL, 0, &err), 0);
    clsynth_checkpoint *ck = clsynth_checkpoint_load("c.ckpt", &err);
    ck_assert_ptr_nonnull(ck);
    ck_assert_int_eq(ck->n_tensors, 0);
    clsynth_checkpoint_free(ck);
}
END_TEST

START_TEST(test_truncated_at_every_offset_is_an_error)
{
    save_small("d.ckpt");
    long n = fx_file_size("d.ckpt");
    ck_assert_int_gt(n, 400);
    int failures = 0;
    for (long len = 0; len < n; len++) {
        fx_truncate_copy("d.ckpt", "cut.ckpt", len);
        clsynth_err err;
        clsynth_checkpoint *ck = clsynth_checkpoint_load("cut.ckpt", &err);
        if (ck) {
            clsynth_checkpoint_free(ck);
            failures++;
        } else if (!strstr(err.msg, "cut.ckpt")) {
            failures++;
        }
    }
    ck_assert_int_eq(failures, 0);
}
END_TEST

START_TEST(test_flipped_bytes_are_errors)
{
    save_small("e.ckpt");
    long n = fx_file_size("e.ckpt");
    unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
    FILE *f = fopen("e.ckpt", "rb");
    ck_assert_int_eq((long)fread(buf, 1, n, f), n);
    fclose(f);
    int accepted = 0, checksum_msgs = 0;
    for (long i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (unsigned char)(1u << bit);
            f = fopen("flip.ckpt", "wb");
            fwrite(buf, 1, n, f);
            fclose(f);
            buf[i] ^= (unsigned char)(1u << bit);
            clsynth_err err;
            clsynth_checkpoint *ck = clsynth_checkpoint_load("flip.ckpt", &err);
            if (ck) {
                accepted++;
                clsynth_checkpoint_free(ck);
            } else {
                checksum_msgs += strstr(err.msg, "checksum") != NULL;
            }
        }
    free(buf);
    ck_assert_int_eq(accepted, 0);
    ck_assert_int_gt(checksum_msgs, 100); /* data bytes are caught by the CRC */
}
END_TEST

START_TEST(test_huge_length_fields_do_not_allocate)
{
    /* A header claiming a 4 GiB config and one claiming 2^32-1 tensors. */
    unsigned char h1[] = {'C', 'L', 'S', 'Y', 'N', 'C', 'K', 'P', 1, 0, 0, 0,
                          0xFF, 0xFF, 0xFF, 0xFF, 'x', 0, 0, 0};
    FILE *f = fopen("huge.ckpt", "wb");
    fwrite(h1, 1, sizeof h1, f);
    fclose(f);
    clsynth_err err;
    ck_assert_ptr_null(clsynth_checkpoint_load("huge.ckpt", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "config"));
    unsigned char h2[12 + 4 + 8 + 32 + 4 + 4] = {'C', 'L', 'S', 'Y', 'N', 'C', 'K', 'P', 1};
    memset(h2 + 12 + 4 + 8 + 32, 0xFF, 4);
    f = fopen("huge.ckpt", "wb");
    fwrite(h2, 1, sizeof h2, f);
    fclose(f);
    ck_assert_ptr_null(clsynth_checkpoint_load("huge.ckpt", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "n_tensors"));
    /* wrong magic and version */
    save_small("v.ckpt");
    f = fopen("v.ckpt", "r+b");
    fseek(f, 8, SEEK_SET);
    fputc(9, f);
    fclose(f);
    ck_assert_ptr_null(clsynth_checkpoint_load("v.ckpt", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "version"));
    f = fopen("v.ckpt", "r+b");
    fputc('X', f);
    fclose(f);
    ck_assert_ptr_null(clsynth_checkpoint_load("v.ckpt", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "magic"));
    ck_assert_ptr_null(clsynth_checkpoint_load("absent.ckpt", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "absent.ckpt"));
}
END_TEST

/* Version 2 is written; version 1 files (same layout) are still read and
 * say so; 0 and 3 are refused naming the field. */
START_TEST(test_version_1_is_read_and_reported)
{
    ck_assert_uint_eq(CLSYNTH_CKPT_VERSION, 2);
    save_small("v1.ckpt");
    clsynth_test_set_checkpoint_version("v1.ckpt", 1);
    clsynth_err err;
    clsynth_checkpoint *ck = clsynth_checkpoint_load("v1.ckpt", &err);
    ck_assert_msg(ck != NULL, "%s", err.msg);
    ck_assert_uint_eq(ck->version, 1);
    ck_assert_mem_eq(clsynth_checkpoint_find(ck, "G.conv.w")->data, A, sizeof A);
    clsynth_checkpoint_free(ck);
    /* resume lists a run's checkpoints by their heads: a version 1 head peeks too */
    clsynth_ckpt_info info;
    ck_assert_msg(clsynth_checkpoint_peek("v1.ckpt", &info, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(info.version, 1);
    clsynth_ckpt_info_free(&info);
    const uint32_t bad[2] = { 0, 3 };
    for (int i = 0; i < 2; i++) {
        clsynth_test_set_checkpoint_version("v1.ckpt", bad[i]);
        ck_assert_ptr_null(clsynth_checkpoint_load("v1.ckpt", &err));
        ck_assert_msg(strstr(err.msg, "version") && strstr(err.msg, "1..2"), "%s", err.msg);
        ck_assert_int_ne(clsynth_checkpoint_peek("v1.ckpt", &info, &err), 0);
        ck_assert_msg(strstr(err.msg, "version") && strstr(err.msg, "1..2"), "%s", err.msg);
    }
}
END_TEST

START_TEST(test_crc32_matches_the_standard_check_value)
{
    ck_assert_uint_eq(clsynth_crc32(0, "123456789", 9), 0xCBF43926u);
    uint32_t c = clsynth_crc32(0, "12345", 5);
    ck_assert_uint_eq(clsynth_crc32(c, "6789", 4), 0xCBF43926u);
}
END_TEST

START_TEST(test_crc32_fast_path_matches_the_tables_at_every_length_and_alignment)
{
    enum { N = 1024 + 64 };
    static unsigned char buf[N + 16];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N + 16; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (int align = 0; align < 16; align++)
        for (int len = 0; len <= N; len++) {
            uint32_t seed = (uint32_t)(len * 2654435761u);
            uint32_t fast = clsynth_crc32(seed, buf + align, (size_t)len);
            uint32_t ref = clsynth_crc32_tables_only(seed, buf + align, (size_t)len);
            ck_assert_msg(fast == ref, "length %d, alignment %d: %08x, tables say %08x", len, align, fast, ref);
        }
    /* chained over a split equals one call */
    uint32_t whole = clsynth_crc32(0, buf, N);
    for (int cut = 0; cut <= N; cut += 37)
        ck_assert_uint_eq(clsynth_crc32(clsynth_crc32(0, buf, (size_t)cut), buf + cut, (size_t)(N - cut)), whole);
}
END_TEST

START_TEST(test_a_directory_is_refused_naming_it)
{
    mkdir("dir.ckpt", 0755);
    clsynth_err err;
    ck_assert_ptr_null(clsynth_checkpoint_load("dir.ckpt", &err));
    ck_assert_msg(strstr(err.msg, "dir.ckpt: is a directory, not a regular file"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_a_fifo_is_refused_without_blocking)
{
    unlink("fifo.ckpt");
    ck_assert_int_eq(mkfifo("fifo.ckpt", 0644), 0);
    alarm(20); /* the old reader blocked here forever: the alarm ends the test instead */
    clsynth_err err;
    ck_assert_ptr_null(clsynth_checkpoint_load("fifo.ckpt", &err));
    alarm(0);
    ck_assert_msg(strstr(err.msg, "fifo.ckpt: is a FIFO (named pipe), not a regular file"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_open_errors_carry_the_system_reason)
{
    clsynth_err err;
    ck_assert_ptr_null(clsynth_checkpoint_load("absent.ckpt", &err));
    ck_assert_msg(strstr(err.msg, "absent.ckpt: cannot open: No such file or directory"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_peek_reads_config_and_step_only)
{
    save_small("p.ckpt");
    clsynth_ckpt_info info;
    clsynth_err err;
    ck_assert_msg(clsynth_checkpoint_peek("p.ckpt", &info, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(info.step, 1234);
    ck_assert_str_eq(info.config, "ngf=64\nlabel_nc=182\n");
    clsynth_ckpt_info_free(&info);
    /* the head is enough: a file cut after the step still peeks, and fails to load */
    fx_truncate_copy("p.ckpt", "p_cut.ckpt", 12 + 4 + 20 + 8 + 10);
    ck_assert_int_eq(clsynth_checkpoint_peek("p_cut.ckpt", &info, &err), 0);
    clsynth_ckpt_info_free(&info);
    ck_assert_ptr_null(clsynth_checkpoint_load("p_cut.ckpt", &err));
    fx_truncate_copy("p.ckpt", "p_cut.ckpt", 20);
    ck_assert_int_ne(clsynth_checkpoint_peek("p_cut.ckpt", &info, &err), 0);
    ck_assert_msg(strstr(err.msg, "p_cut.ckpt: truncated"), "message: %s", err.msg);
}
END_TEST

START_TEST(test_atomic_link_gives_the_file_a_second_name)
{
    save_small("l.ckpt");
    FILE *f = fopen("l2.ckpt", "w");
    fputs("an older file under the name", f);
    fclose(f);
    int linked = -1;
    clsynth_err err;
    ck_assert_msg(clsynth_atomic_link("l.ckpt", "l2.ckpt", &linked, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(linked, 1);
    struct stat a, b;
    ck_assert_int_eq(stat("l.ckpt", &a), 0);
    ck_assert_int_eq(stat("l2.ckpt", &b), 0);
    ck_assert(a.st_ino == b.st_ino);
    clsynth_checkpoint *ck = clsynth_checkpoint_load("l2.ckpt", &err);
    ck_assert_msg(ck, "%s", err.msg);
    clsynth_checkpoint_free(ck);
    /* replacing the first name (as every save does) leaves the second whole */
    save_small("l.ckpt");
    ck_assert_int_eq(stat("l.ckpt", &a), 0);
    ck_assert(a.st_ino != b.st_ino);
    ck = clsynth_checkpoint_load("l2.ckpt", &err);
    ck_assert_msg(ck, "%s", err.msg);
    clsynth_checkpoint_free(ck);
}
END_TEST

START_TEST(test_temporary_names_are_recognised)
{
    size_t n = 0;
    ck_assert(clsynth_atomic_is_temp_name("latest.ckpt.tmp.Ab3xY9", &n));
    ck_assert_uint_eq(n, strlen("latest.ckpt"));
    ck_assert(!clsynth_atomic_is_temp_name("latest.ckpt", &n));
    ck_assert(!clsynth_atomic_is_temp_name("latest.ckpt.tmp.Ab3x", &n));
    ck_assert(!clsynth_atomic_is_temp_name("latest.ckpt.tmp.Ab3x-9", &n));
    ck_assert(!clsynth_atomic_is_temp_name(".tmp.Ab3xY9", &n));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_expect_shape_messages);
    tcase_add_test(tc, test_save_rejects_bad_tensors);
    tcase_add_test(tc, test_truncated_at_every_offset_is_an_error);
    tcase_add_test(tc, test_flipped_bytes_are_errors);
    tcase_add_test(tc, test_huge_length_fields_do_not_allocate);
    tcase_add_test(tc, test_version_1_is_read_and_reported);
    tcase_add_test(tc, test_crc32_matches_the_standard_check_value);
    tcase_add_test(tc, test_crc32_fast_path_matches_the_tables_at_every_length_and_alignment);
    tcase_add_test(tc, test_a_directory_is_refused_naming_it);
    tcase_add_test(tc, test_a_fifo_is_refused_without_blocking);
    tcase_add_test(tc, test_open_errors_carry_the_system_reason);
    tcase_add_test(tc, test_peek_reads_config_and_step_only);
    tcase_add_test(tc, test_atomic_link_gives_the_file_a_second_name);
    tcase_add_test(tc, test_temporary_names_are_recognised);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
