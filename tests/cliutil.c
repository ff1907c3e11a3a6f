#include "cliutil.h"

#include <check.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *clsynth_test_bin(void)
{
    static char bin[PATH_MAX];
    if (bin[0])
        return bin;
    const char *env = getenv("CLSYNTH_BIN");
    if (env && *env) {
        snprintf(bin, sizeof bin, "%s", env);
        return bin;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_msg(n > 0, "cannot read /proc/self/exe");
    self[n] = 0;
    char *slash = strrchr(self, '/');
    ck_assert(slash);
    *slash = 0; /* .../build/tests */
    snprintf(bin, sizeof bin, "%s/../clsynth", self);
    ck_assert_msg(access(bin, X_OK) == 0, "no clsynth binary at %s (set CLSYNTH_BIN)", bin);
    return bin;
}

int clsynth_test_sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    ck_assert_msg(st != -1, "cannot run: %s", cmd);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

char *clsynth_test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n < 2) {
            char *g = realloc(buf, cap * 2);
            if (!g) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = g;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

bool clsynth_test_file_has(const char *path, const char *text)
{
    char *s = clsynth_test_slurp(path);
    bool has = s && strstr(s, text);
    free(s);
    return has;
}

bool clsynth_test_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

long clsynth_test_csv_rows(const char *path, char *why, size_t why_len)
{
    char *s = clsynth_test_slurp(path);
    if (!s) {
        snprintf(why, why_len, "%s: cannot read", path);
        return -1;
    }
    long n = -1;
    if (strncmp(s, "iteration,epoch,seconds,", 24) != 0) {
        snprintf(why, why_len, "%s: no header line", path);
        goto done;
    }
    n = 0;
    for (char *p = strchr(s, '\n'); p && p[1];) {
        p++;
        char *nl = strchr(p, '\n');
        if (!nl) {
            snprintf(why, why_len, "%s: the line after row %ld is not complete", path, n);
            n = -1;
            break;
        }
        long it = strtol(p, NULL, 10);
        if (it != n + 1) {
            snprintf(why, why_len, "%s: row %ld has iteration %ld", path, n + 1, it);
            n = -1;
            break;
        }
        n++;
        p = nl;
    }
done:
    free(s);
    return n;
}

void clsynth_test_tiny_dataset(const char *dir)
{
    char classes[PATH_MAX];
    snprintf(classes, sizeof classes, "%s/classes.txt", dir);
    if (access(classes, R_OK) == 0)
        return;
    ck_assert_int_eq(clsynth_test_sh("'%s' dataset synth --out '%s' --count 4 --val_count 2 --size 32x32 --seed 5 "
                                     "> /dev/null",
                                     clsynth_test_bin(), dir),
                     0);
}
