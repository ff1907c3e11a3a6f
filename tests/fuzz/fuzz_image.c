/* libFuzzer harness: the PNG and JPEG readers (io/png.c, io/jpeg.c,
 * io/image.c) on arbitrary bytes. Any crash, leak or sanitizer report is a
 * bug; an error return is the expected answer to garbage. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_input.h"
#include "io/image.h"
#include "io/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input(".img", data, size);
    clsynth_err err;
    clsynth_image img;
    if (clsynth_image_read(path, &img, &err) == 0) {
        if (clsynth_image_to_rgb(&img, &err) == 0 && img.w > 0 && img.h > 0)
            (void)img.data[(size_t)img.w * img.h * 3 - 1]; /* the whole buffer is there */
        clsynth_image_free(&img);
    }
    clsynth_idmap ids;
    if (clsynth_png_read_ids(path, &ids, &err) == 0)
        clsynth_idmap_free(&ids);
    return 0;
}
