/* Thin, checked wrappers around CLBlast's C API on the context's queue.
 *
 * CLBlast compiles its kernels on the first call of each routine and precision
 * (measured on PoCL, 2 cores: Sgemm about 6 s, SgemmStridedBatched about 10 s;
 * other shapes and transpositions of an already-used routine cost well under
 * a second) and keeps the binaries in memory only. Every status is checked and
 * a failure names the routine, the caller's label and the status. */
#ifndef CLSYNTH_CLBLAST_UTIL_H
#define CLSYNTH_CLBLAST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "clcore/context.h"

/* "CLBlastInvalidLeadDimA" etc.; "CLBlastUnknownStatus" for codes not in the table. */
const char *clsynth_clblast_status_name(int status);

/* Row-major C(m,n) = alpha * op(A)(m,k) * op(B)(k,n) + beta * C, offsets and
 * leading dimensions in elements. `what` names the caller in errors (e.g.
 * "conv2d forward 'x' (2, 3, 9, 7)"). When ctx->profile_launches is on, waits
 * and adds the wall time to ctx->launch_ms_total. Returns 0 or -1. */
int clsynth_sgemm(clsynth_ctx *ctx, const char *what, bool trans_a, bool trans_b, size_t m, size_t n,
                  size_t k, float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                  size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc);

/* CLBlastSgemmStridedBatched: C_i = alpha op(A_i) op(B_i) + beta C_i, X_i =
 * X + i * x_stride (elements), i < batch; the same checks and fallback. */
int clsynth_sgemm_strided(clsynth_ctx *ctx, const char *what, bool trans_a, bool trans_b, size_t m, size_t n,
                          size_t k, float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b,
                          size_t b_off, size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                          size_t c_stride, size_t batch);

/* CLBlast keeps a process-wide cache of the programs it built, keyed by
 * context; each program retains its context, so a released context lives on
 * in it. Left there, those programs are released by CLBlast's static
 * destructor while the process exits, after the thread-local destructors
 * have run: Oclgrind's runtime (its API entry points push onto a
 * thread_local call stack) then writes into freed memory (valgrind: "Invalid
 * write" in clReleaseProgram / clReleaseContext into a block freed by that
 * stack's destructor in __call_tls_dtors), which corrupted glibc's heap.
 * Each context holds a reference (clsynth_ctx_create / clsynth_ctx_free);
 * releasing the last one clears CLBlast's program and binary caches, so no
 * OpenCL object outlives the contexts (the next context builds CLBlast's
 * kernels anew; tuned parameters stay: CLBlast keeps them apart).
 * Returns 0, or the CLBlast status of a failed CLBlastClearCache. */
void clsynth_clblast_hold(void);
int clsynth_clblast_unhold(void);

/* CLBlast's process-wide tables (parameter overrides, the program cache) are
 * changed and read under one lock: CLBlastOverrideParameters replaces the
 * device's database entry while a concurrent override or GEMM may be copying
 * it (two ranks' contexts loading their tuning databases at once crashed in
 * CLBlast's database copy, test_syncbn). Every override and SGEMM enqueue
 * holds it; the kernels themselves still run concurrently. */
void clsynth_clblast_lock(void);
void clsynth_clblast_unlock(void);

#endif
