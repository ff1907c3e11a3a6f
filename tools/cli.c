#include "tools/cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int clsynth_cli_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != 0)
        return 0;
    /* the next option is not this one's value: `--export-class --help` wrote a
     * file named "--help" (a value starting with -- is given as --name=value) */
    if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0)
        return -1;
    *value = argv[++*i];
    return 1;
}

int clsynth_cli_int(const char *cmd, const char *name, const char *v, int lo, int hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !end || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "%s: %s: '%s' is not an integer in [%d, %d]\n", cmd, name, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

int clsynth_cli_float(const char *cmd, const char *name, const char *v, float *out)
{
    char *end = NULL;
    errno = 0;
    float x = strtof(v, &end);
    if (errno || !end || *end || end == v || !isfinite(x)) {
        fprintf(stderr, "%s: %s: '%s' is not a finite number\n", cmd, name, v);
        return -1;
    }
    *out = x;
    return 0;
}
