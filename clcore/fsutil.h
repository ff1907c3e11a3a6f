/* Small file-system and text-file helpers shared by the caches, the tuner
 * and the tools. */
#ifndef CLSYNTH_FSUTIL_H
#define CLSYNTH_FSUTIL_H

#include <stdio.h>

#include "clcore/error.h"

/* mkdir -p (mode 0755). On failure returns -1 with errno set and, when err is
 * not NULL, a message naming the folder. */
int clsynth_mkdirs(const char *path, clsynth_err *err);

/* Opens path for reading only if it is a regular file: a directory, FIFO,
 * socket or device is refused with a message naming the path and what it is
 * (a FIFO is opened non-blocking first, so this never hangs). Errors carry
 * strerror text. *size (when not NULL) receives the file size. Returns the
 * FILE (binary mode) or NULL with errno set. */
FILE *clsynth_fopen_regular(const char *path, long long *size, clsynth_err *err);

/* "a directory", "a FIFO", ... for an st_mode that is not a regular file. */
const char *clsynth_file_kind(unsigned mode);

/* s without leading blanks and trailing blanks / line ends (in place). */
char *clsynth_trim(char *s);

#endif
