/* The process side of data-parallel training that needs no MPI
 * (tools/dist.c, compiled into this test without MPI):
 *   - --device maps local ranks to devices ("rank", a list, one device, default);
 *   - a list shorter than the ranks on the node, or with an empty entry, is an
 *     error naming the list;
 *   - `clsynth train --help` says whether MPI is compiled in;
 *   - a binary built without MPI refuses to run as one of several processes
 *     of an MPI launch (they would train separately into one run folder). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tools/dist.h"

static char bin[PATH_MAX];

static void find_binary(void)
{
    const char *env = getenv("CLSYNTH_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_msg(n > 0, "cannot read /proc/self/exe");
    self[n] = 0;
    *strrchr(self, '/') = 0; /* .../build/tests */
    snprintf(bin, sizeof bin, "%s/../clsynth", self);
    ck_assert_msg(access(bin, X_OK) == 0, "no clsynth binary at %s (set CLSYNTH_BIN)", bin);
}

static void spec_is(const char *spec, int local_rank, int local_size, const char *want)
{
    char out[64];
    clsynth_err err;
    ck_assert_msg(clsynth_dist_device_spec(spec, local_rank, local_size, out, sizeof out, &err) == 0,
                  "'%s' for local rank %d: %s", spec, local_rank, err.msg);
    ck_assert_msg(strcmp(out, want) == 0, "'%s' for local rank %d of %d gave '%s', want '%s'", spec, local_rank,
                  local_size, out, want);
}

START_TEST(device_spec_maps_local_ranks_to_devices)
{
    spec_is("", 1, 2, "");            /* default device everywhere */
    spec_is("rank", 0, 2, "0");
    spec_is("rank", 3, 4, "3");
    spec_is("nvidia", 1, 2, "nvidia"); /* one device for every rank */
    spec_is("0,gpu:1,2", 0, 3, "0");
    spec_is("0,gpu:1,2", 1, 3, "gpu:1");
    spec_is("0,gpu:1,2", 2, 3, "2");
    spec_is("1,0", 0, 1, "1");         /* a longer list is fine */
}
END_TEST

START_TEST(device_list_shorter_than_the_ranks_is_an_error)
{
    char out[64];
    clsynth_err err;
    ck_assert_int_ne(clsynth_dist_device_spec("0,1", 2, 3, out, sizeof out, &err), 0);
    ck_assert_msg(strstr(err.msg, "'0,1' lists 2 devices for 3 ranks"), "%s", err.msg);
    ck_assert_int_ne(clsynth_dist_device_spec("0,,2", 1, 3, out, sizeof out, &err), 0);
    ck_assert_msg(strstr(err.msg, "entry 1 (local rank 1) is empty"), "%s", err.msg);
}
END_TEST

/* Output of a shell command (stdout and stderr) into buf; returns its exit status. */
static int run(const char *cmd, char *buf, size_t cap)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(train_help_says_whether_mpi_is_compiled_in)
{
    find_binary();
    static char out[1 << 16];
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' train --help 2>&1", bin);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "distributed: MPI compiled in (") || strstr(out, "distributed: MPI not compiled in"),
                  "train --help does not say whether MPI is compiled in:\n%s", out);
}
END_TEST

START_TEST(binary_without_mpi_refuses_a_multi_process_launch)
{
    find_binary();
    static char out[1 << 16];
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "'%s' train --help 2>&1", bin);
    run(cmd, out, sizeof out);
    if (strstr(out, "MPI compiled in (")) {
        printf("skipped: this clsynth has MPI (tests/test_mpi.c covers it)\n");
        return;
    }
    snprintf(cmd, sizeof cmd, "OMPI_COMM_WORLD_SIZE=2 '%s' train --dataroot nowhere --name x 2>&1", bin);
    int rc = run(cmd, out, sizeof out);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "started by an MPI launcher with 2 processes (OMPI_COMM_WORLD_SIZE=2)") &&
                      strstr(out, "built without MPI"),
                  "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("dist");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, device_spec_maps_local_ranks_to_devices);
    tcase_add_test(tc, device_list_shorter_than_the_ranks_is_an_error);
    tcase_add_test(tc, train_help_says_whether_mpi_is_compiled_in);
    tcase_add_test(tc, binary_without_mpi_refuses_a_multi_process_launch);
    suite_add_tcase(s, tc);
    return clsynth_test_run(s);
}
