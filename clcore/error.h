/* Error reporting shared by every layer of clsynth.
 *
 * Functions return 0 on success and -1 on failure (or NULL for constructors);
 * on failure they write a message into a clsynth_err that names what failed
 * (file, field, value, CL call, kernel). Nothing below tools/ prints or exits. */
#ifndef CLSYNTH_ERROR_H
#define CLSYNTH_ERROR_H

#include <stddef.h>

typedef struct clsynth_err {
    char msg[2048];
} clsynth_err;

/* Formats a message into err (if not NULL) and returns -1, so callers can write
 * `return clsynth_fail(err, "...", ...);`. */
int clsynth_fail(clsynth_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends context to an existing message: "outer: inner". Returns -1. */
int clsynth_wrap(clsynth_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
