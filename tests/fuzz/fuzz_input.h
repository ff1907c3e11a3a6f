/* The readers under fuzzing take paths: each input goes to a file of its own
 * process (in $TMPDIR or /tmp), rewritten per input. */
#ifndef CLSYNTH_FUZZ_INPUT_H
#define CLSYNTH_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline const char *fuzz_write_input(const char *suffix, const uint8_t *data, size_t size)
{
    static char path[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/clsynth-fuzz-%ld%s", tmp && *tmp ? tmp : "/tmp", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort(); /* the harness's own fault, not the reader's */
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return path;
}

#endif
