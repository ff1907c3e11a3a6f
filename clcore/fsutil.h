/* Small file-system and text-file helpers shared by the caches, the tuner
 * and the tools. */
#ifndef CLSYNTH_FSUTIL_H
#define CLSYNTH_FSUTIL_H

#include "clcore/error.h"

/* mkdir -p (mode 0755). On failure returns -1 with errno set and, when err is
 * not NULL, a message naming the folder. */
int clsynth_mkdirs(const char *path, clsynth_err *err);

/* s without leading blanks and trailing blanks / line ends (in place). */
char *clsynth_trim(char *s);

#endif
