/* `clsynth bench checkpoint`: checkpoint write and load times (see the .c). */
#ifndef CLSYNTH_BENCH_CHECKPOINT_H
#define CLSYNTH_BENCH_CHECKPOINT_H

int clsynth_bench_checkpoint(int argc, char **argv);

#endif
