/* Program building, on-disk binary cache and kernel lookup. */
#include "clcore/program.h"
#include "clcore/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clcore/kernels_embedded.h"

#define CACHE_MAGIC "CLSYNBIN"
#define CACHE_VERSION 1u

typedef struct kernel_entry {
    char name[64];
    cl_kernel k;
    size_t wg;   /* CL_KERNEL_WORK_GROUP_SIZE of the built kernel (queried once) */
    size_t pref; /* CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE */
    struct kernel_entry *next;
} kernel_entry;

typedef struct program_entry {
    uint64_t key; /* hash of file + options */
    char file[64];
    char *options;
    cl_program prog;
    kernel_entry *kernels;
    struct program_entry *next;
} program_entry;

typedef struct clsynth_program_cache {
    program_entry *head;
    clsynth_program_stats stats;
    /* cl_kernel -> its entry, so a launch finds the kernel's limits without a
     * clGetKernelWorkGroupInfo call (open addressing, power-of-two size) */
    kernel_entry **by_handle;
    size_t n_handles, cap_handles;
} clsynth_program_cache;

/* Header of a cache file; the program binary follows. */
typedef struct cache_header {
    char magic[8];
    uint32_t version;
    uint32_t reserved;
    uint64_t key;
    uint64_t size;
    uint64_t checksum;
} cache_header;

uint64_t clsynth_fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    return clsynth_fnv1a(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

const char *clsynth_kernel_source(const char *file)
{
    for (const clsynth_embedded_kernel *e = clsynth_embedded_kernels; e->name; e++)
        if (strcmp(e->name, file) == 0)
            return e->source;
    return NULL;
}

static clsynth_program_cache *cache_of(clsynth_ctx *ctx)
{
    if (!ctx->programs)
        ctx->programs = calloc(1, sizeof *ctx->programs);
    return ctx->programs;
}

clsynth_program_stats clsynth_program_get_stats(const clsynth_ctx *ctx)
{
    clsynth_program_stats s = {0, 0, 0};
    return ctx->programs ? ctx->programs->stats : s;
}

static uint64_t disk_key(clsynth_ctx *ctx, const char *src, const char *options)
{
    uint64_t h = CLSYNTH_FNV_SEED;
    h = hash_str(h, ctx->dev.platform_name);
    h = hash_str(h, ctx->dev.vendor);
    h = hash_str(h, ctx->dev.name);
    h = hash_str(h, ctx->dev.driver);
    h = hash_str(h, ctx->dev.version);
    h = hash_str(h, src);
    h = hash_str(h, options);
    return h;
}

int clsynth_program_cache_path(clsynth_ctx *ctx, const char *file, const char *options, char *out,
                               size_t outlen)
{
    const char *src = clsynth_kernel_source(file);
    if (!src)
        return clsynth_ctx_fail(ctx, "no embedded kernel source named '%s'", file);
    snprintf(out, outlen, "%s/programs/%016llx.bin", ctx->cache_dir,
             (unsigned long long)disk_key(ctx, src, options));
    return 0;
}

/* Reads a cache entry; returns a malloc'ed binary or NULL (absent or invalid;
 * *corrupt tells which, *why says what was wrong). Only a regular file is
 * read: a FIFO or directory in its place is invalid (and never blocks). The
 * header's checksum covers the driver binary; it is verified before the
 * binary goes anywhere near the driver. */
static unsigned char *cache_read(const char *path, uint64_t key, size_t *size, int *corrupt, const char **why)
{
    *corrupt = 0;
    *why = "";
    long long fsize = 0;
    FILE *f = clsynth_fopen_regular(path, &fsize, NULL);
    if (!f) {
        if (errno != ENOENT) {
            *corrupt = 1;
            *why = errno == EISDIR || errno == EINVAL ? " (not a regular file)" : " (unreadable)";
        }
        return NULL;
    }
    cache_header h;
    unsigned char *bin = NULL;
    *corrupt = 1;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, CACHE_MAGIC, 8) != 0 ||
        h.version != CACHE_VERSION || h.key != key || h.size == 0 || h.size > (1ULL << 30))
        goto done;
    if ((uint64_t)fsize != sizeof h + h.size) {
        *why = " (truncated)";
        goto done;
    }
    bin = malloc(h.size);
    if (!bin || fread(bin, 1, h.size, f) != h.size ||
        clsynth_fnv1a(CLSYNTH_FNV_SEED, bin, h.size) != h.checksum) {
        *why = " (driver binary checksum mismatch)";
        free(bin);
        bin = NULL;
        goto done;
    }
    *size = h.size;
    *corrupt = 0;
done:
    fclose(f);
    return bin;
}

/* A driver can crash (not fail) on a binary it does not like, which no
 * checksum of ours can foresee when the bytes are what was stored. So while
 * the driver loads an entry, "<entry>.loading" holds our pid: a marker left
 * by a process that no longer runs means that process died inside the driver
 * on this entry, and the entry is rebuilt instead of crashing every run.
 * Returns 1 when an earlier load of path crashed (*pid: that process). */
static int load_crashed_before(const char *marker, long *pid)
{
    FILE *f = clsynth_fopen_regular(marker, NULL, NULL);
    if (!f)
        return 0;
    *pid = 0;
    int n = fscanf(f, "%ld", pid);
    fclose(f);
    if (n != 1 || *pid <= 0)
        return 1; /* a marker cut short by the crash itself */
    if (*pid == (long)getpid())
        return 0;
    return kill((pid_t)*pid, 0) != 0 && errno == ESRCH;
}

static void load_marker_set(const char *marker)
{
    int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return; /* best effort: the cache folder may be read-only */
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (write(fd, text, (size_t)n) != n) {
        /* a short marker still reads as "crashed", which is the safe side */
    }
    close(fd);
}

static void cache_write(clsynth_ctx *ctx, const char *path, uint64_t key, cl_program prog)
{
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || size == 0)
        return; /* the driver offers no binary: nothing to cache */
    unsigned char *bin = malloc(size);
    unsigned char *bins[1] = { bin };
    if (!bin || clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS) {
        free(bin);
        return;
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/programs", ctx->cache_dir);
    if (clsynth_mkdirs(dir, NULL)) {
        clsynth_warn(ctx, "cannot create the program cache folder %s: %s", dir, strerror(errno));
        free(bin);
        return;
    }
    cache_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, CACHE_MAGIC, 8);
    h.version = CACHE_VERSION;
    h.key = key;
    h.size = size;
    h.checksum = clsynth_fnv1a(CLSYNTH_FNV_SEED, bin, size);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(&h, sizeof h, 1, f) == 1 && fwrite(bin, 1, size, f) == size;
    if (f)
        ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
    if (f && fclose(f))
        ok = 0;
    if (!ok || rename(tmp, path)) {
        clsynth_warn(ctx, "cannot write the program cache entry %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(bin);
}

static int build(clsynth_ctx *ctx, cl_program prog, const char *file, const char *options)
{
    cl_int rc = clBuildProgram(prog, 1, &ctx->dev.id, options, NULL, NULL);
    if (rc == CL_SUCCESS)
        return 0;
    size_t len = 0;
    clGetProgramBuildInfo(prog, ctx->dev.id, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
    char *log = malloc(len + 1);
    if (log) {
        log[0] = 0;
        clGetProgramBuildInfo(prog, ctx->dev.id, CL_PROGRAM_BUILD_LOG, len, log, NULL);
        log[len] = 0;
    }
    clsynth_ctx_fail(ctx, "clBuildProgram failed for kernels/%s (options '%s'): %s\n--- build log ---\n%s",
                     file, options ? options : "", clsynth_cl_error_name(rc), log ? log : "(none)");
    free(log);
    return -1;
}

static cl_program load_program(clsynth_ctx *ctx, const char *file, const char *options)
{
    const char *src = clsynth_kernel_source(file);
    if (!src) {
        clsynth_ctx_fail(ctx, "no embedded kernel source named '%s'", file);
        return NULL;
    }
    clsynth_program_cache *pc = cache_of(ctx);
    char full_opts[1024];
    snprintf(full_opts, sizeof full_opts, "-cl-std=CL1.2 %s", options ? options : "");
    uint64_t key = disk_key(ctx, src, full_opts);
    char path[700];
    snprintf(path, sizeof path, "%s/programs/%016llx.bin", ctx->cache_dir, (unsigned long long)key);
    cl_int rc;
    if (ctx->program_cache_on) {
        size_t size = 0;
        int corrupt = 0;
        const char *why = "";
        char marker[720];
        snprintf(marker, sizeof marker, "%s.loading", path);
        long dead_pid = 0;
        if (load_crashed_before(marker, &dead_pid)) {
            pc->stats.cache_rejected++;
            clsynth_warn(ctx, "program cache entry %s (kernels/%s) crashed an earlier process (pid %ld) inside the "
                              "driver; rebuilding it from source", path, file, dead_pid);
            unlink(path);
            unlink(marker);
        }
        unsigned char *bin = cache_read(path, key, &size, &corrupt, &why);
        if (bin) {
            const unsigned char *bins[1] = { bin };
            cl_int status = CL_SUCCESS;
            load_marker_set(marker);
            cl_program prog = clCreateProgramWithBinary(ctx->context, 1, &ctx->dev.id, &size, bins, &status, &rc);
            free(bin);
            int ok = rc == CL_SUCCESS && status == CL_SUCCESS &&
                     clBuildProgram(prog, 1, &ctx->dev.id, full_opts, NULL, NULL) == CL_SUCCESS;
            unlink(marker);
            if (ok) {
                pc->stats.loaded_from_cache++;
                return prog;
            }
            if (prog)
                clReleaseProgram(prog);
            corrupt = 1;
            why = " (the driver refused the binary)";
        }
        if (corrupt) {
            pc->stats.cache_rejected++;
            clsynth_warn(ctx, "program cache entry %s (kernels/%s) is corrupt or stale%s; rebuilding it", path,
                         file, why);
            unlink(path);
        }
    }
    cl_program prog = clCreateProgramWithSource(ctx->context, 1, &src, NULL, &rc);
    if (rc != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clCreateProgramWithSource", file, rc);
        return NULL;
    }
    if (build(ctx, prog, file, full_opts)) {
        clReleaseProgram(prog);
        return NULL;
    }
    pc->stats.built_from_source++;
    if (ctx->program_cache_on)
        cache_write(ctx, path, key, prog);
    return prog;
}

static size_t handle_slot(const clsynth_program_cache *pc, cl_kernel k)
{
    uint64_t h = clsynth_fnv1a(CLSYNTH_FNV_SEED, &k, sizeof k);
    return (size_t)h & (pc->cap_handles - 1);
}

static kernel_entry *handle_find(const clsynth_program_cache *pc, cl_kernel k)
{
    if (!pc || !pc->cap_handles)
        return NULL;
    for (size_t i = handle_slot(pc, k);; i = (i + 1) & (pc->cap_handles - 1)) {
        kernel_entry *e = pc->by_handle[i];
        if (!e || e->k == k)
            return e;
    }
}

static int handle_add(clsynth_program_cache *pc, kernel_entry *ke)
{
    if ((pc->n_handles + 1) * 2 > pc->cap_handles) {
        size_t cap = pc->cap_handles ? pc->cap_handles * 2 : 64;
        kernel_entry **old = pc->by_handle, **v = calloc(cap, sizeof *v);
        if (!v)
            return -1;
        size_t old_cap = pc->cap_handles;
        pc->by_handle = v;
        pc->cap_handles = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) {
                size_t j = handle_slot(pc, old[i]->k);
                while (v[j])
                    j = (j + 1) & (cap - 1);
                v[j] = old[i];
            }
        free(old);
    }
    size_t j = handle_slot(pc, ke->k);
    while (pc->by_handle[j])
        j = (j + 1) & (pc->cap_handles - 1);
    pc->by_handle[j] = ke;
    pc->n_handles++;
    return 0;
}

/* The built kernel's own limits, queried once when it is created (before its
 * first launch): a driver may allow fewer items for one kernel than for the
 * device (Mesa rusticl on llvmpipe: 32 of 1024). */
static int query_limits(clsynth_ctx *ctx, cl_kernel k, const char *name, size_t *wg, size_t *pref)
{
    CLSYNTH_CL(ctx, clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof *wg, wg, NULL), name);
    *pref = 1;
    if (clGetKernelWorkGroupInfo(k, ctx->dev.id, CL_KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE, sizeof *pref, pref,
                                 NULL) != CL_SUCCESS || *pref == 0)
        *pref = 1; /* informative only: not every driver answers it */
    if (*wg == 0)
        return clsynth_ctx_fail(ctx, "kernel %s: the driver reports a CL_KERNEL_WORK_GROUP_SIZE of 0", name);
    return 0;
}

cl_kernel clsynth_kernel_get(clsynth_ctx *ctx, const char *file, const char *name, const char *options)
{
    if (ctx->failed)
        return NULL;
    clsynth_program_cache *pc = cache_of(ctx);
    if (!pc) {
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    uint64_t key = hash_str(hash_str(CLSYNTH_FNV_SEED, file), options);
    program_entry *pe = pc->head;
    while (pe && !(pe->key == key && strcmp(pe->file, file) == 0 &&
                   strcmp(pe->options, options ? options : "") == 0))
        pe = pe->next;
    if (!pe) {
        cl_program prog = load_program(ctx, file, options);
        if (!prog)
            return NULL;
        pe = calloc(1, sizeof *pe);
        if (!pe || !(pe->options = strdup(options ? options : ""))) {
            free(pe);
            clReleaseProgram(prog);
            clsynth_ctx_fail(ctx, "out of host memory");
            return NULL;
        }
        pe->key = key;
        snprintf(pe->file, sizeof pe->file, "%s", file);
        pe->prog = prog;
        pe->next = pc->head;
        pc->head = pe;
    }
    for (kernel_entry *ke = pe->kernels; ke; ke = ke->next)
        if (strcmp(ke->name, name) == 0)
            return ke->k;
    cl_int rc;
    cl_kernel k = clCreateKernel(pe->prog, name, &rc);
    if (rc != CL_SUCCESS) {
        clsynth_cl_fail(ctx, "clCreateKernel", name, rc);
        return NULL;
    }
    size_t wg = 0, pref = 1;
    if (query_limits(ctx, k, name, &wg, &pref)) {
        clReleaseKernel(k);
        return NULL;
    }
    kernel_entry *ke = calloc(1, sizeof *ke);
    if (!ke || handle_add(pc, ke)) {
        free(ke);
        clReleaseKernel(k);
        clsynth_ctx_fail(ctx, "out of host memory");
        return NULL;
    }
    snprintf(ke->name, sizeof ke->name, "%s", name);
    ke->k = k;
    ke->wg = wg;
    ke->pref = pref;
    ke->next = pe->kernels;
    pe->kernels = ke;
    return k;
}

int clsynth_kernel_limits_raw(clsynth_ctx *ctx, cl_kernel k, const char *name, size_t *wg, size_t *pref)
{
    const kernel_entry *ke = handle_find(ctx->programs, k);
    if (ke) {
        *wg = ke->wg;
        *pref = ke->pref;
        return 0;
    }
    return query_limits(ctx, k, name, wg, pref); /* a kernel made outside the cache */
}

int clsynth_kernel_limits(clsynth_ctx *ctx, cl_kernel k, const char *name, size_t *max_wg, size_t *pref_multiple)
{
    size_t wg = 0, pref = 1;
    if (clsynth_kernel_limits_raw(ctx, k, name, &wg, &pref))
        return -1;
    if (max_wg)
        *max_wg = wg < ctx->max_wg ? wg : ctx->max_wg;
    if (pref_multiple)
        *pref_multiple = pref;
    return 0;
}

size_t clsynth_kernel_max_wg(clsynth_ctx *ctx, cl_kernel k, const char *name)
{
    size_t wg = 0;
    return clsynth_kernel_limits(ctx, k, name, &wg, NULL) ? 0 : wg;
}

void clsynth_program_cache_free(clsynth_ctx *ctx)
{
    clsynth_program_cache *pc = ctx->programs;
    if (!pc)
        return;
    program_entry *pe = pc->head;
    while (pe) {
        kernel_entry *ke = pe->kernels;
        while (ke) {
            kernel_entry *kn = ke->next;
            clReleaseKernel(ke->k);
            free(ke);
            ke = kn;
        }
        program_entry *pn = pe->next;
        clReleaseProgram(pe->prog);
        free(pe->options);
        free(pe);
        pe = pn;
    }
    free(pc->by_handle);
    free(pc);
    ctx->programs = NULL;
}
