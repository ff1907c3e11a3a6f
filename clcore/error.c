#include "clcore/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int clsynth_fail(clsynth_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int clsynth_wrap(clsynth_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char outer[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(outer, sizeof outer, fmt, ap);
    va_end(ap);
    char inner[sizeof err->msg];
    memcpy(inner, err->msg, sizeof inner);
    snprintf(err->msg, sizeof err->msg, "%s: %s", outer, inner);
    return -1;
}
