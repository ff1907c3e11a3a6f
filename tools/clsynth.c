/* clsynth: command-line entry point; dispatches to tools/cmd_*.c. */
#define _GNU_SOURCE /* setenv, execv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/commands.h"
#include "tools/dist.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    { "devices", clsynth_cmd_devices, "list every OpenCL device and its limits" },
    { "demo", clsynth_cmd_demo, "the main job on the chosen device (see README)" },
    { "train", clsynth_cmd_train, "train CC-FPSE or a variant: --dataroot DIR --name RUN [options]" },
    { "test", clsynth_cmd_test, "synthesize images from a folder of label maps" },
    { "dataset", clsynth_cmd_dataset, "dataset tools: 'dataset synth' writes the synthetic scenes" },
    { "segmenter", clsynth_cmd_segmenter, "train / score the evaluation segmenter on real images" },
    { "tune", clsynth_cmd_tune, "tune the kernels and CLBlast GEMMs a configuration runs (--budget S)" },
    { "bench", clsynth_cmd_bench, "benchmark ops / training steps, default vs tuned (--json, --compare)" },
    { "eval", clsynth_cmd_eval, "score a trained model: segmenter mIoU / accuracy, Frechet and spectral distances" },
    { "ablate", clsynth_cmd_ablate, "train and evaluate the ablation variants of a config (resumable)" },
};

static void usage(FILE *f)
{
    fprintf(f, "usage: clsynth <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nEvery command takes --device SPEC (an index, or part of the vendor or device name;\n"
               "default: $CLSYNTH_DEVICE, else the first GPU, else accelerator, else CPU).\n");
}

/* OpenBLAS's idle worker threads spin (sched_yield) for 2^28 cycles after every
 * threaded GEMM. On a CPU OpenCL device the runtime's own workers need those
 * cores for the kernels between the GEMMs: at 2 threads on 2 cores about 30 % of
 * a tiny training step's CPU samples were that spinning, and with
 * OPENBLAS_THREAD_TIMEOUT=4 (2^4 cycles, OpenBLAS's minimum) a tiny step took
 * 0.81x and a small step 0.79-0.89x the time (platforms.md). OpenBLAS reads the
 * variable only when it loads, before main, so the process sets it and starts
 * itself again once; a value the user set is kept. */
static void openblas_thread_timeout(char **argv)
{
#if defined(CLSYNTH_HAVE_CBLAS) && defined(__linux__)
    if (getenv("OPENBLAS_THREAD_TIMEOUT"))
        return;
    if (setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1) == 0)
        execv("/proc/self/exe", argv); /* returns only on failure: then run on as we are */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv)
{
    openblas_thread_timeout(argv);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *var;
    int launched = clsynth_dist_launcher_size(&var);
    if (launched > 1 && strcmp(argv[1], "train") != 0 && strcmp(argv[1], "bench") != 0) {
        fprintf(stderr, "clsynth %s: started as one of %d processes by an MPI launcher (%s); only 'train' and "
                        "'bench train' run data-parallel, the others would each write the same outputs\n",
                argv[1], launched, var);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "clsynth: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
