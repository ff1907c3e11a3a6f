#include "io/atomic.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void release(clsynth_atomic_file *af)
{
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

int clsynth_atomic_open(clsynth_atomic_file *af, const char *path, clsynth_err *err)
{
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->path = malloc(n + 1);
    af->tmp = malloc(n + 16);
    if (!af->path || !af->tmp) {
        release(af);
        return clsynth_fail(err, "%s: out of memory", path);
    }
    memcpy(af->path, path, n + 1);
    snprintf(af->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        clsynth_fail(err, "%s: cannot create temporary file: %s", path, strerror(errno));
        release(af);
        return -1;
    }
    (void)fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        clsynth_fail(err, "%s: fdopen: %s", path, strerror(errno));
        close(fd);
        unlink(af->tmp);
        release(af);
        return -1;
    }
    return 0;
}

void clsynth_atomic_abort(clsynth_atomic_file *af)
{
    if (af->f)
        fclose(af->f);
    if (af->tmp)
        unlink(af->tmp);
    release(af);
}

/* fsync the directory holding path so the rename itself is durable. */
static void sync_dir(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int clsynth_atomic_commit(clsynth_atomic_file *af, clsynth_err *err)
{
    int rc = 0;
    if (ferror(af->f) || fflush(af->f) != 0)
        rc = clsynth_fail(err, "%s: write failed: %s", af->path, strerror(errno));
    else if (fsync(fileno(af->f)) != 0)
        rc = clsynth_fail(err, "%s: fsync failed: %s", af->path, strerror(errno));
    if (fclose(af->f) != 0 && rc == 0)
        rc = clsynth_fail(err, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (rc == 0 && rename(af->tmp, af->path) != 0)
        rc = clsynth_fail(err, "%s: rename from %s failed: %s", af->path, af->tmp, strerror(errno));
    if (rc == 0)
        sync_dir(af->path);
    else
        unlink(af->tmp);
    release(af);
    return rc;
}

int clsynth_atomic_is_temp_name(const char *name, size_t *final_len)
{
    size_t n = strlen(name);
    const char *suffix = ".tmp.";
    if (n < 5 + 6 + 1)
        return 0;
    const char *tail = name + n - 6;
    for (int i = 0; i < 6; i++)
        if (!isalnum((unsigned char)tail[i]))
            return 0;
    if (strncmp(tail - 5, suffix, 5) != 0)
        return 0;
    if (final_len)
        *final_len = n - 11;
    return 1;
}

/* A fresh, unused temporary name for path (the file mkstemp made is removed
 * again, so link() can take the name). */
static int temp_name(const char *path, char *out, size_t len, clsynth_err *err)
{
    if (snprintf(out, len, "%s.tmp.XXXXXX", path) >= (int)len)
        return clsynth_fail(err, "%s: path too long", path);
    int fd = mkstemp(out);
    if (fd < 0)
        return clsynth_fail(err, "%s: cannot create temporary file: %s", path, strerror(errno));
    close(fd);
    unlink(out);
    return 0;
}

int clsynth_atomic_copy(const char *from, const char *to, clsynth_err *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return clsynth_fail(err, "%s: cannot open: %s", from, strerror(errno));
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, to, err)) {
        close(in);
        return -1;
    }
    static const size_t chunk = (size_t)1 << 20;
    char *buf = malloc(chunk);
    int rc = buf ? 0 : clsynth_fail(err, "%s: out of memory", to);
    while (rc == 0) {
        ssize_t n = read(in, buf, chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = clsynth_fail(err, "%s: read failed: %s", from, strerror(errno));
        else if (n == 0)
            break;
        else if (fwrite(buf, 1, (size_t)n, af.f) != (size_t)n)
            rc = clsynth_fail(err, "%s: write failed: %s", to, strerror(errno));
    }
    free(buf);
    close(in);
    if (rc) {
        clsynth_atomic_abort(&af);
        return -1;
    }
    return clsynth_atomic_commit(&af, err);
}

int clsynth_atomic_link(const char *from, const char *to, int *linked, clsynth_err *err)
{
    if (linked)
        *linked = 0;
    size_t n = strlen(to) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return clsynth_fail(err, "%s: out of memory", to);
    int rc = temp_name(to, tmp, n, err);
    if (rc == 0 && link(from, tmp) != 0) {
        int e = errno;
        free(tmp);
        if (e == EPERM || e == ENOTSUP || e == EOPNOTSUPP || e == EXDEV || e == EMLINK || e == ENOSYS)
            return clsynth_atomic_copy(from, to, err); /* no hard links here */
        return clsynth_fail(err, "%s: cannot link it to %s: %s", to, from, strerror(e));
    }
    if (rc == 0 && rename(tmp, to) != 0) {
        rc = clsynth_fail(err, "%s: rename from %s failed: %s", to, tmp, strerror(errno));
        unlink(tmp);
    }
    if (rc == 0) {
        sync_dir(to);
        if (linked)
            *linked = 1;
    }
    free(tmp);
    return rc;
}
