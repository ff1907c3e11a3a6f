#include "clcore/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

const char *clsynth_file_kind(unsigned mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO (named pipe)";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return S_ISREG(mode) ? "a regular file" : "not a regular file";
}

FILE *clsynth_fopen_regular(const char *path, long long *size, clsynth_err *err)
{
    /* O_NONBLOCK: opening a FIFO with no writer would otherwise block forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        clsynth_fail(err, "%s: cannot open: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        clsynth_fail(err, "%s: cannot stat: %s", path, strerror(e));
        close(fd);
        errno = e;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        clsynth_fail(err, "%s: is %s, not a regular file", path, clsynth_file_kind(st.st_mode));
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        int e = errno;
        clsynth_fail(err, "%s: fcntl: %s", path, strerror(e));
        close(fd);
        errno = e;
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        clsynth_fail(err, "%s: fdopen: %s", path, strerror(e));
        close(fd);
        errno = e;
        return NULL;
    }
    if (size)
        *size = (long long)st.st_size;
    return f;
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
