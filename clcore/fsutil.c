#include "clcore/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int clsynth_mkdirs(const char *path, clsynth_err *err)
{
    char tmp[1024];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return clsynth_fail(err, "cannot create folder %s: path too long", path);
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) {
            int e = errno;
            clsynth_fail(err, "cannot create folder %s: %s", tmp, strerror(e));
            errno = e;
            return -1;
        }
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) {
        int e = errno;
        clsynth_fail(err, "cannot create folder %s: %s", tmp, strerror(e));
        errno = e;
        return -1;
    }
    return 0;
}

char *clsynth_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}
