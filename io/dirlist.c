#include "io/dirlist.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int clsynth_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int push(clsynth_dirlist *list, int *cap, char *path, clsynth_err *err)
{
    if (list->n == *cap) {
        int ncap = *cap ? *cap * 2 : 64;
        char **p = realloc(list->paths, sizeof *p * ncap);
        if (!p) {
            free(path);
            return clsynth_fail(err, "out of memory listing files");
        }
        list->paths = p;
        *cap = ncap;
    }
    list->paths[list->n++] = path;
    return 0;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int scan(clsynth_dirlist *list, int *cap, const char *dir, const char *suffix,
                int depth, clsynth_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return clsynth_fail(err, "%s: cannot open directory: %s", dir, strerror(errno));
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = join(dir, e->d_name);
        if (!path) {
            rc = clsynth_fail(err, "out of memory listing %s", dir);
            break;
        }
        struct stat st;
        if (stat(path, &st) != 0) {
            free(path);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (depth > 0)
                rc = scan(list, cap, path, suffix, depth - 1, err);
            free(path);
        } else if (S_ISREG(st.st_mode) && (!suffix || ends_with(e->d_name, suffix))) {
            rc = push(list, cap, path, err);
        } else {
            free(path);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int clsynth_dirlist_read(clsynth_dirlist *list, const char *dir, const char *suffix,
                         int recurse, clsynth_err *err)
{
    list->n = 0;
    list->paths = NULL;
    int cap = 0;
    if (scan(list, &cap, dir, suffix, recurse ? 1 : 0, err)) {
        clsynth_dirlist_free(list);
        return -1;
    }
    if (list->n > 1)
        qsort(list->paths, list->n, sizeof *list->paths, cmp_str);
    return 0;
}

void clsynth_dirlist_free(clsynth_dirlist *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->paths[i]);
    free(list->paths);
    list->paths = NULL;
    list->n = 0;
}
