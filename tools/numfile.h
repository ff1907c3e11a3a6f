/* Numbers from the small text files the commands leave behind (eval.json,
 * train_done.txt, params.txt, segmenter.ckpt.json): the line that starts
 * with key (quoted or not), followed by ' ', '=' or ':', then a number. */
#ifndef CLSYNTH_TOOLS_NUMFILE_H
#define CLSYNTH_TOOLS_NUMFILE_H

/* 0 with *out set, -1 when the file or the key is missing. */
int clsynth_read_number(const char *path, const char *key, double *out);

#endif
