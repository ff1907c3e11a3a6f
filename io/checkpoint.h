/* Checkpoints: a generic, self-checking container of named float tensors.
 *
 * File format, version 2. All integers little-endian; floats IEEE-754
 * binary32 little-endian; no padding. Version 1 has the same layout; the
 * number tells its readers what the tensors mean: a version-2 model
 * checkpoint holds the spectral-norm v beside every u (nets/model.c reads
 * version 1 files too). The loader accepts versions 1 and 2 and reports
 * which one it read (clsynth_checkpoint.version).
 *
 *   offset  size        field
 *   0       8           magic "CLSYNCKP"
 *   8       4   u32     version (2; 1 is read too)
 *   12      4   u32     config_len, then config_len bytes: the caller's config
 *                       text (key=value lines, UTF-8, no NUL)
 *   .       8   u64     step
 *   .       32  u64[4]  RNG state
 *   .       4   u32     n_tensors, then n_tensors records:
 *                 u32   name_len (1..255), name bytes (e.g. "G.head_0.conv.w")
 *                 u32   tag_len (0..255), tag bytes (kind, e.g. "param",
 *                       "adam_m", "adam_v", "bn_mean"; free text)
 *                 u32   ndim (1..4)
 *                 u32[4] shape (entries past ndim are 1; every entry >= 1)
 *                 f32[prod(shape)] data
 *   end-4   4   u32     CRC-32 (IEEE 802.3, as zlib's crc32) of every byte
 *                       before it
 *
 * Files are written atomically (temporary file in the same directory, fsync,
 * rename, fsync of the directory): a crash leaves the old checkpoint intact.
 * The loader never trusts a length: each is bounded by the bytes left in the
 * file before anything is allocated, and every error names the file and field. */
#ifndef CLSYNTH_IO_CHECKPOINT_H
#define CLSYNTH_IO_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "clcore/error.h"

#define CLSYNTH_CKPT_VERSION 2u     /* written */
#define CLSYNTH_CKPT_VERSION_MIN 1u /* oldest read */
#define CLSYNTH_CKPT_MAX_NAME 255

/* A tensor to save: borrowed, nothing is copied before writing. */
typedef struct clsynth_ckpt_tensor_in {
    const char *name;  /* unique, 1..255 bytes */
    const char *tag;   /* kind; NULL = "" */
    int ndim;          /* 1..4 */
    int shape[4];      /* first ndim entries used */
    const float *data; /* prod(shape) floats */
} clsynth_ckpt_tensor_in;

typedef struct clsynth_ckpt_tensor {
    char *name;
    char *tag;
    int ndim;
    int shape[4];     /* entries past ndim are 1 */
    size_t count;     /* prod(shape) */
    float *data;
} clsynth_ckpt_tensor;

typedef struct clsynth_checkpoint {
    char *path;
    uint32_t version;
    char *config;      /* NUL-terminated copy of the config text */
    uint64_t step;
    uint64_t rng[4];
    int n_tensors;
    clsynth_ckpt_tensor *tensors;
} clsynth_checkpoint;

/* Writes a checkpoint atomically. config may be NULL (empty). */
int clsynth_checkpoint_save(const char *path, const char *config, uint64_t step,
                            const uint64_t rng[4], const clsynth_ckpt_tensor_in *tensors,
                            int n_tensors, clsynth_err *err);

/* Reads and verifies a checkpoint (magic, version, lengths, shapes, CRC). Only
 * regular files are read: a directory, FIFO or device is an error naming the
 * path and what it is; open and read errors carry the strerror text. */
clsynth_checkpoint *clsynth_checkpoint_load(const char *path, clsynth_err *err);
void clsynth_checkpoint_free(clsynth_checkpoint *ck);

/* Reads only the head of a checkpoint (magic, version, config, step), e.g. to
 * list a run's checkpoints or compare options before loading the tensors.
 * Nothing past the step is verified (no CRC): a file that peeks fine may still
 * fail to load. A path that is not a regular file is refused (never hangs). */
typedef struct clsynth_ckpt_info {
    uint32_t version;
    char *config; /* NUL-terminated */
    uint64_t step;
} clsynth_ckpt_info;
int clsynth_checkpoint_peek(const char *path, clsynth_ckpt_info *info, clsynth_err *err);
void clsynth_ckpt_info_free(clsynth_ckpt_info *info);

/* The tensor called name, or NULL. */
const clsynth_ckpt_tensor *clsynth_checkpoint_find(const clsynth_checkpoint *ck,
                                                   const char *name);

/* Finds name and checks its shape; the error names the tensor, the expected
 * and the found shape (or says it is missing). */
int clsynth_checkpoint_expect(const clsynth_checkpoint *ck, const char *name, int ndim,
                              const int *shape, const clsynth_ckpt_tensor **out,
                              clsynth_err *err);

/* Copies the value of `key=` from the config text into buf; -1 if absent. */
int clsynth_checkpoint_config_get(const clsynth_checkpoint *ck, const char *key, char *buf,
                                  size_t cap);

/* CRC-32 (IEEE) continuing from crc (start with 0); io/crc32.c. */
uint32_t clsynth_crc32(uint32_t crc, const void *data, size_t n);
/* The same by tables only (the reference of the fast path's test). */
uint32_t clsynth_crc32_tables_only(uint32_t crc, const void *data, size_t n);

#endif
