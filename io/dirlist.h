/* Sorted, deterministic directory listings for the dataset layouts. */
#ifndef CLSYNTH_IO_DIRLIST_H
#define CLSYNTH_IO_DIRLIST_H

#include "clcore/error.h"

typedef struct clsynth_dirlist {
    int n;
    char **paths; /* "dir/name" (or "dir/sub/name"), sorted with strcmp */
} clsynth_dirlist;

/* Lists regular files in dir whose names end with suffix (case-sensitive,
 * e.g. "_labelIds.png" or ".png"; NULL = any). With recurse = 1, also lists
 * files one directory level down (Cityscapes' per-city folders). Hidden
 * files are skipped. A missing directory is an error naming it. */
int clsynth_dirlist_read(clsynth_dirlist *list, const char *dir, const char *suffix,
                         int recurse, clsynth_err *err);
void clsynth_dirlist_free(clsynth_dirlist *list);

/* 1 when path is an existing directory. */
int clsynth_is_dir(const char *path);

#endif
