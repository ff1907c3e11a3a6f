#include "tools/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcore/fsutil.h"
#include "io/atomic.h"
#include "io/checkpoint.h"

/* ---- names ------------------------------------------------------------- */

/* 1 when name is "<prefix><digits><suffix>", with the number in *n. */
static int numbered_name(const char *name, const char *prefix, const char *suffix, long *n)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), len = strlen(name);
    if (len <= pl + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + len - sl, suffix) != 0)
        return 0;
    long v = 0;
    for (size_t i = pl; i < len - sl; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (long)1e15)
            return 0;
        v = v * 10 + (name[i] - '0');
    }
    *n = v;
    return 1;
}

static void stamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y%m%d-%H%M%S", &tm);
}

/* ---- listing ----------------------------------------------------------- */

static int cmp_newest_first(const void *a, const void *b)
{
    const clsynth_run_ckpt *x = a, *y = b;
    if (x->is_latest != y->is_latest)
        return x->is_latest ? -1 : 1;
    return x->step < y->step ? 1 : x->step > y->step ? -1 : 0;
}

int clsynth_run_ckpts_list(const char *run_dir, clsynth_run_ckpts *l, clsynth_err *err)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(run_dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        return clsynth_fail(err, "cannot list the run folder %s: %s", run_dir, strerror(errno));
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long step = -1;
        bool latest = strcmp(e->d_name, "latest.ckpt") == 0;
        if (!latest && !numbered_name(e->d_name, "iter_", ".ckpt", &step))
            continue;
        if (l->n == cap) {
            int nc = cap ? 2 * cap : 16;
            clsynth_run_ckpt *g = realloc(l->v, sizeof *g * (size_t)nc);
            if (!g) {
                closedir(d);
                clsynth_run_ckpts_free(l);
                return clsynth_fail(err, "out of host memory");
            }
            l->v = g;
            cap = nc;
        }
        clsynth_run_ckpt *c = &l->v[l->n++];
        memset(c, 0, sizeof *c);
        snprintf(c->path, sizeof c->path, "%s/%s", run_dir, e->d_name);
        c->is_latest = latest;
        c->step = step;
        if (latest) {
            clsynth_ckpt_info info;
            if (clsynth_checkpoint_peek(c->path, &info, NULL) == 0) {
                c->step = (long)info.step;
                clsynth_ckpt_info_free(&info);
            }
        }
    }
    closedir(d);
    if (l->n > 1)
        qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_newest_first);
    for (int i = 0; i < l->n; i++) {
        const char *slash = strrchr(l->v[i].path, '/');
        l->v[i].name = slash ? slash + 1 : l->v[i].path;
    }
    return 0;
}

void clsynth_run_ckpts_free(clsynth_run_ckpts *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

void clsynth_run_ckpts_describe(const clsynth_run_ckpts *l, char *buf, size_t len)
{
    size_t k = 0;
    buf[0] = '\0';
    const int shown = 12;
    for (int i = 0; i < l->n && i < shown && k < len; i++) {
        const clsynth_run_ckpt *c = &l->v[i];
        if (c->is_latest && c->step >= 0)
            k += (size_t)snprintf(buf + k, len - k, "%s%s (iteration %ld)", i ? ", " : "", c->name, c->step);
        else if (c->is_latest)
            k += (size_t)snprintf(buf + k, len - k, "%s%s (unreadable)", i ? ", " : "", c->name);
        else
            k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", c->name);
    }
    if (l->n > shown && k < len)
        snprintf(buf + k, len - k, " and %d older", l->n - shown);
    if (l->n == 0)
        snprintf(buf, len, "no checkpoint");
}

int clsynth_run_parse_which(const char *which, long *step, clsynth_err *err)
{
    *step = -1;
    if (strcmp(which, "latest") == 0)
        return 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(which, &end, 10);
    if (errno || end == which || *end || v < 0)
        return clsynth_fail(err, "--which_epoch '%s': expected latest or an iteration number (N of iter_N.ckpt)",
                            which);
    *step = v;
    return 0;
}

int clsynth_run_ckpts_select(const clsynth_run_ckpts *l, const char *run_dir, const char *which, clsynth_err *err)
{
    long step;
    if (clsynth_run_parse_which(which, &step, err))
        return -1;
    int latest = -1;
    for (int i = 0; i < l->n; i++) {
        if (l->v[i].is_latest)
            latest = i;
        else if (step >= 0 && l->v[i].step == step)
            return i;
    }
    if (latest >= 0 && (step < 0 || l->v[latest].step == step))
        return latest;
    char have[1024];
    clsynth_run_ckpts_describe(l, have, sizeof have);
    if (step < 0)
        return clsynth_fail(err, "--which_epoch latest: %s has no latest.ckpt; it holds: %s", run_dir, have);
    return clsynth_fail(err, "--which_epoch %ld: %s has no checkpoint at iteration %ld; it holds: %s", step, run_dir,
                        step, have);
}

/* ---- lock -------------------------------------------------------------- */

int clsynth_run_lock(const char *run_dir, clsynth_err *err)
{
    char path[CLSYNTH_RUN_PATH_MAX];
    snprintf(path, sizeof path, "%s/train.lock", run_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return clsynth_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char text[32] = "";
        ssize_t n = read(fd, text, sizeof text - 1);
        text[n > 0 ? n : 0] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return clsynth_fail(err, "another clsynth train (pid %ld) is training in %s; wait for it or stop it first",
                                strtol(text, NULL, 10), run_dir);
        return clsynth_fail(err, "%s: cannot lock: %s", path, strerror(e));
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        /* the pid is only for the message above */
    }
    return fd;
}

void clsynth_run_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

/* ---- stale temporary files --------------------------------------------- */

/* The final names the run's saves write (in run_dir, or in web/ when web). */
static int is_run_file(const char *name, size_t len, bool web)
{
    char final[256];
    if (len >= sizeof final)
        return 0;
    memcpy(final, name, len);
    final[len] = '\0';
    long n;
    if (web)
        return numbered_name(final, "iter_", ".png", &n);
    return strcmp(final, "latest.ckpt") == 0 || numbered_name(final, "iter_", ".ckpt", &n) ||
           strcmp(final, "losses.csv") == 0 || strcmp(final, "options.txt") == 0 || strcmp(final, "params.txt") == 0;
}

static int remove_in(const char *dir, bool web, time_t before, int *count, double *bytes, char *names,
                     size_t names_len)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t final_len;
        if (!clsynth_atomic_is_temp_name(e->d_name, &final_len) || !is_run_file(e->d_name, final_len, web))
            continue;
        char path[CLSYNTH_RUN_PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_mtime >= before)
            continue;
        if (unlink(path) != 0)
            continue;
        (*count)++;
        *bytes += (double)st.st_size;
        size_t k = strlen(names);
        if (k + strlen(e->d_name) + 3 < names_len)
            snprintf(names + k, names_len - k, "%s%s%s", k ? ", " : "", web ? "web/" : "", e->d_name);
    }
    closedir(d);
    return 0;
}

int clsynth_run_remove_stale_temps(const char *run_dir, time_t before, FILE *log)
{
    int count = 0;
    double bytes = 0;
    char names[1024] = "";
    char web[CLSYNTH_RUN_PATH_MAX + 8];
    snprintf(web, sizeof web, "%s/web", run_dir);
    remove_in(run_dir, false, before, &count, &bytes, names, sizeof names);
    remove_in(web, true, before, &count, &bytes, names, sizeof names);
    if (count && log)
        fprintf(log, "removed %d temporary file%s (%.1f MB) left in %s by interrupted saves: %s\n", count,
                count == 1 ? "" : "s", bytes / 1e6, run_dir, names);
    return count;
}

/* ---- moving aside ------------------------------------------------------ */

/* "<base><suffix>" that does not exist yet (suffix -2, -3, ... appended). */
static int free_name(const char *base, char *out, size_t len, clsynth_err *err)
{
    struct stat st;
    for (int k = 1; k < 1000; k++) {
        if (k == 1)
            snprintf(out, len, "%s", base);
        else
            snprintf(out, len, "%s-%d", base, k);
        if (lstat(out, &st) != 0 && errno == ENOENT)
            return 0;
    }
    return clsynth_fail(err, "%s: no free name to move the old files to", base);
}

int clsynth_run_move_aside(const char *run_dir, char *moved_to, size_t len, clsynth_err *err)
{
    char ts[32], base[CLSYNTH_RUN_PATH_MAX + 64];
    stamp(ts, sizeof ts);
    size_t n = strlen(run_dir);
    while (n > 1 && run_dir[n - 1] == '/')
        n--;
    snprintf(base, sizeof base, "%.*s.old-%s", (int)n, run_dir, ts);
    if (free_name(base, moved_to, len, err))
        return -1;
    if (rename(run_dir, moved_to) != 0)
        return clsynth_fail(err, "cannot move the run folder %s to %s: %s", run_dir, moved_to, strerror(errno));
    return 0;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Moves dir/name into into/ (made on first use). */
static int move_one(const char *dir, const char *name, const char *into, bool *made, clsynth_err *err)
{
    if (!*made) {
        if (clsynth_mkdirs(into, err))
            return -1;
        *made = true;
    }
    char from[CLSYNTH_RUN_PATH_MAX + 256], to[CLSYNTH_RUN_PATH_MAX + 256];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(to, sizeof to, "%s/%s", into, name);
    if (rename(from, to) != 0)
        return clsynth_fail(err, "cannot move %s to %s: %s", from, to, strerror(errno));
    return 0;
}

int clsynth_run_supersede_after(const char *run_dir, long step, const char *keep, FILE *log, clsynth_err *err)
{
    char ts[32], base[CLSYNTH_RUN_PATH_MAX + 64], into[CLSYNTH_RUN_PATH_MAX + 64], web_into[CLSYNTH_RUN_PATH_MAX + 72];
    stamp(ts, sizeof ts);
    snprintf(base, sizeof base, "%s/superseded-%s", run_dir, ts);
    if (free_name(base, into, sizeof into, err))
        return -1;
    snprintf(web_into, sizeof web_into, "%s/web", into);
    bool made = false, web_made = false;
    int moved = 0, grids = 0;
    char names[1024] = "";
    clsynth_run_ckpts l;
    if (clsynth_run_ckpts_list(run_dir, &l, err))
        return -1;
    int rc = 0;
    for (int i = 0; i < l.n && rc == 0; i++) {
        const clsynth_run_ckpt *c = &l.v[i];
        if (same_file(c->path, keep) || (!c->is_latest && c->step <= step))
            continue;
        if (c->is_latest && c->step == step && c->step >= 0)
            continue; /* the same iteration: nothing after it */
        rc = move_one(run_dir, c->name, into, &made, err);
        if (rc == 0) {
            moved++;
            size_t k = strlen(names);
            if (k + strlen(c->name) + 3 < sizeof names)
                snprintf(names + k, sizeof names - k, "%s%s", k ? ", " : "", c->name);
        }
    }
    clsynth_run_ckpts_free(&l);
    char web[CLSYNTH_RUN_PATH_MAX + 8];
    snprintf(web, sizeof web, "%s/web", run_dir);
    DIR *d = rc == 0 ? opendir(web) : NULL;
    struct dirent *e;
    while (d && rc == 0 && (e = readdir(d))) {
        long n;
        if (!numbered_name(e->d_name, "iter_", ".png", &n) || n <= step)
            continue;
        if (!made && clsynth_mkdirs(into, err)) {
            rc = -1;
            break;
        }
        made = true;
        rc = move_one(web, e->d_name, web_into, &web_made, err);
        grids += rc == 0;
    }
    if (d)
        closedir(d);
    if (rc == 0 && made) {
        char csv[CLSYNTH_RUN_PATH_MAX + 16], copy[CLSYNTH_RUN_PATH_MAX + 96];
        snprintf(csv, sizeof csv, "%s/losses.csv", run_dir);
        snprintf(copy, sizeof copy, "%s/losses.csv", into);
        struct stat st;
        if (stat(csv, &st) == 0)
            rc = clsynth_atomic_copy(csv, copy, err);
        char what[1200] = "";
        if (grids)
            snprintf(what, sizeof what, "%s%s%d sample grid%s", names, moved ? ", " : "", grids, grids == 1 ? "" : "s");
        else
            snprintf(what, sizeof what, "%s", names);
        if (rc == 0 && log)
            fprintf(log, "the run went past iteration %ld: moved %s and a copy of losses.csv to %s\n", step, what, into);
    }
    return rc;
}
