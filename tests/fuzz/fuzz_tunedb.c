/* libFuzzer harness: the tuning-database parser, driven through its public
 * API (clcore/tunedb.h): the input becomes the database file of a real
 * context, is loaded, listed and looked up. The parser checks the file's
 * vendor, device and driver lines against the running device, so the
 * placeholders @VENDOR@, @DEVICE@, @DRIVER@ and @PLATFORM@ in an input are
 * replaced by the device's values (the seed corpus uses them; libFuzzer
 * mutates from there). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/context.h"
#include "clcore/tune.h"
#include "clcore/tunedb.h"
#include "fuzz_input.h"

static clsynth_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    clsynth_err err;
    ctx = clsynth_ctx_create(NULL, &err);
    if (!ctx) {
        fprintf(stderr, "fuzz_tunedb: %s\n", err.msg);
        abort();
    }
    ctx->quiet = 1; /* a warning per malformed line would drown the fuzzer's output */
    return 0;
}

/* data with the placeholders replaced (malloc'ed, NUL-terminated). */
static char *expand(const uint8_t *data, size_t size, size_t *out_len)
{
    const char *keys[4] = { "@VENDOR@", "@DEVICE@", "@DRIVER@", "@PLATFORM@" };
    const char *vals[4] = { ctx->dev.vendor, ctx->dev.name, ctx->dev.driver, ctx->dev.platform_name };
    size_t cap = size * 4 + 1024, n = 0;
    char *out = malloc(cap);
    if (!out)
        abort();
    for (size_t i = 0; i < size;) {
        int k = -1;
        for (int j = 0; j < 4 && k < 0; j++)
            if (size - i >= strlen(keys[j]) && memcmp(data + i, keys[j], strlen(keys[j])) == 0)
                k = j;
        if (k >= 0) {
            size_t vl = strlen(vals[k]);
            if (n + vl + 1 >= cap)
                break;
            memcpy(out + n, vals[k], vl);
            n += vl;
            i += strlen(keys[k]);
        } else {
            if (n + 2 >= cap)
                break;
            out[n++] = (char)data[i++];
        }
    }
    out[n] = 0;
    *out_len = n;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    char *text = expand(data, size, &len);
    const char *path = fuzz_write_input(".tunedb", (const uint8_t *)text, len);
    free(text);
    clsynth_tunedb_set_path(ctx, path);
    clsynth_tunedb_load(ctx);
    size_t n = clsynth_tunedb_count(ctx);
    for (size_t i = 0; i < n; i++) {
        const clsynth_tune_record *r = clsynth_tunedb_at(ctx, i);
        if (!r)
            abort(); /* count and at() disagree */
        clsynth_tune_entry e;
        (void)clsynth_tune_lookup(ctx, r->kernel, r->shape, &e);
    }
    clsynth_tune_entry e;
    (void)clsynth_tune_lookup(ctx, "conv2d", "N1.C1.H1.W1.O1.K1x1.S1.P0", &e);
    return 0;
}
