#include "io/atomic.h"

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
