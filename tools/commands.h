/* The clsynth sub-commands. Each takes the arguments after its name
 * (argv[0] is the sub-command name) and returns the process exit status. */
#ifndef CLSYNTH_COMMANDS_H
#define CLSYNTH_COMMANDS_H

int clsynth_cmd_devices(int argc, char **argv);
int clsynth_cmd_demo(int argc, char **argv);
int clsynth_cmd_dataset(int argc, char **argv);
int clsynth_cmd_train(int argc, char **argv);
int clsynth_cmd_test(int argc, char **argv);
int clsynth_cmd_segmenter(int argc, char **argv);
int clsynth_cmd_tune(int argc, char **argv);
int clsynth_cmd_bench(int argc, char **argv);
int clsynth_cmd_eval(int argc, char **argv);
int clsynth_cmd_ablate(int argc, char **argv);

#endif
