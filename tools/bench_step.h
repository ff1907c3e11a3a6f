/* `clsynth bench step`: training steps and inference of one configuration as
 * training runs it, with memory peaks (see the .c). */
#ifndef CLSYNTH_BENCH_STEP_H
#define CLSYNTH_BENCH_STEP_H

int clsynth_bench_step(int argc, char **argv);

#endif
