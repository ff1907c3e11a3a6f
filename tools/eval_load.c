/* Reading back an evaluation's eval.json (written by clsynth_eval_run,
 * tools/cmd_eval.c): what `clsynth ablate` needs to resume. */
#include <string.h>

#include "tools/eval.h"
#include "tools/numfile.h"

int clsynth_eval_load(const char *path, clsynth_eval_result *r)
{
    double v[12];
    static const char *keys[12] = { "images", "height", "width", "miou", "pixel_accuracy", "miou_real",
                                    "pixel_accuracy_real", "classes_present", "segmenter_frechet_distance",
                                    "feature_dim", "spectral_distance", "spectral_distance_high" };
    for (int k = 0; k < 12; k++)
        if (clsynth_read_number(path, keys[k], &v[k]))
            return -1;
    memset(r, 0, sizeof *r);
    r->images = (int)v[0];
    r->height = (int)v[1];
    r->width = (int)v[2];
    r->miou = v[3];
    r->accuracy = v[4];
    r->miou_real = v[5];
    r->accuracy_real = v[6];
    r->classes_present = (int)v[7];
    r->frechet = v[8];
    r->feature_dim = (int)v[9];
    r->spectral = v[10];
    r->spectral_high = v[11];
    clsynth_read_number(path, "seconds", &r->seconds);
    return 0;
}

