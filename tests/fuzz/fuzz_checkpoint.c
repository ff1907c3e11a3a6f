/* libFuzzer harness: the checkpoint loader (io/checkpoint.c): full load with
 * its bounds and CRC checks, the head-only peek, and lookups in what loaded. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_input.h"
#include "io/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input(".ckpt", data, size);
    clsynth_err err;
    clsynth_ckpt_info info;
    if (clsynth_checkpoint_peek(path, &info, &err) == 0)
        clsynth_ckpt_info_free(&info);
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, &err);
    if (!ck)
        return 0;
    char buf[64];
    (void)clsynth_checkpoint_config_get(ck, "ngf", buf, sizeof buf);
    for (int i = 0; i < ck->n_tensors; i++) {
        const clsynth_ckpt_tensor *t = &ck->tensors[i];
        if (t->count)
            (void)t->data[t->count - 1];
        const clsynth_ckpt_tensor *found;
        (void)clsynth_checkpoint_expect(ck, t->name, t->ndim, t->shape, &found, &err);
    }
    clsynth_checkpoint_free(ck);
    return 0;
}
