/* A results folder: one PNG per sample (label colourised | synthesized | real)
 * and an index.html grid, as `clsynth test` and the report write them.
 *   DIR/label/NAME.png  DIR/synthesized/NAME.png  DIR/real/NAME.png  DIR/index.html
 * index.html is rewritten atomically by clsynth_results_close. */
#ifndef CLSYNTH_RESULTS_H
#define CLSYNTH_RESULTS_H

#include <stdint.h>

#include "clcore/error.h"
#include "clcore/fsutil.h" /* clsynth_mkdirs, used with results folders */

typedef struct clsynth_results clsynth_results;

clsynth_results *clsynth_results_open(const char *dir, const char *title, clsynth_err *err);
/* label (H, W) class ids; synth and real (3, H, W) in [-1, 1]; real may be NULL. */
int clsynth_results_add(clsynth_results *r, const char *name, int h, int w, const int32_t *label,
                        const float *synth, const float *real, clsynth_err *err);
/* Writes index.html and frees r (also on error). */
int clsynth_results_close(clsynth_results *r, clsynth_err *err);


#endif
