/* Reading and writing tuning-database files (see clcore/tunedb_file.h). */
#include "clcore/tunedb_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clcore/fsutil.h"

static bool parse_size(const char *v, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-')
        return false;
    *out = (size_t)x;
    return true;
}

static bool parse_double(const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end)
        return false;
    *out = x;
    return true;
}

/* Parses one entry line into r; false with a reason when malformed. */
static bool parse_entry(char *line, clsynth_tune_record *r, const char **why)
{
    memset(r, 0, sizeof *r);
    char *p = line;
    /* kernel and shape: whitespace-separated words */
    for (int f = 0; f < 2; f++) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *start = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - start);
        size_t cap = f == 0 ? sizeof r->kernel : sizeof r->shape;
        if (n == 0 || n >= cap || (f == 0 && memchr(start, '=', n) != NULL)) {
            *why = f == 0 ? "missing or overlong kernel name" : "missing or overlong shape key";
            return false;
        }
        memcpy(f == 0 ? r->kernel : r->shape, start, n);
    }
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        if (*p != '=') {
            *why = "expected key=value";
            return false;
        }
        *p++ = 0;
        char *v = p;
        if (*v == '"') {
            v++;
            char *q = strchr(v, '"');
            if (!q) {
                *why = "unterminated quoted value";
                return false;
            }
            *q = 0;
            p = q + 1;
        } else {
            while (*p && *p != ' ' && *p != '\t')
                p++;
            if (*p)
                *p++ = 0;
        }
        if (strcmp(k, "algo") == 0) {
            size_t a;
            if (!parse_size(v, &a) || a > 64) {
                *why = "bad algo";
                return false;
            }
            r->algo = (int)a;
        } else if (strcmp(k, "local") == 0) {
            size_t l[3] = { 0, 0, 0 };
            char buf[64];
            snprintf(buf, sizeof buf, "%s", v);
            char *save = NULL, *tok = strtok_r(buf, "x", &save);
            int d = 0;
            for (; tok && d < 3; d++, tok = strtok_r(NULL, "x", &save))
                if (!parse_size(tok, &l[d]) || l[d] > 65536) {
                    *why = "bad local size";
                    return false;
                }
            if (tok || d == 0) {
                *why = "bad local size";
                return false;
            }
            memcpy(r->local, l, sizeof l);
        } else if (strcmp(k, "lmem") == 0) {
            if (!parse_size(v, &r->lmem)) {
                *why = "bad lmem";
                return false;
            }
        } else if (strcmp(k, "src") == 0) {
            char *end = NULL;
            unsigned long x = strtoul(v, &end, 16);
            if (end == v || *end) {
                *why = "bad src hash";
                return false;
            }
            r->src = (unsigned)x;
        } else if (strcmp(k, "opts") == 0) {
            if (strlen(v) >= sizeof r->opts) {
                *why = "options too long";
                return false;
            }
            snprintf(r->opts, sizeof r->opts, "%s", v);
        } else if (strcmp(k, "ms") == 0) {
            if (!parse_double(v, &r->ms)) {
                *why = "bad ms";
                return false;
            }
        } else if (strcmp(k, "default_ms") == 0) {
            if (!parse_double(v, &r->default_ms)) {
                *why = "bad default_ms";
                return false;
            }
        } /* unknown keys: ignored (newer writers) */
    }
    if (r->local[0] == 0 && (r->local[1] || r->local[2])) {
        *why = "local size with a zero first dimension";
        return false;
    }
    return true;
}

/* A "key: value" header line into h (unknown keys are informative). */
static void header_line(clsynth_tunedb_header *h, const char *k, const char *v)
{
    if (strcmp(k, "vendor") == 0)
        snprintf(h->vendor, sizeof h->vendor, "%s", v);
    else if (strcmp(k, "device") == 0)
        snprintf(h->device, sizeof h->device, "%s", v);
    else if (strcmp(k, "driver") == 0)
        snprintf(h->driver, sizeof h->driver, "%s", v);
    else if (strcmp(k, "platform") == 0)
        snprintf(h->platform, sizeof h->platform, "%s", v);
    else if (strcmp(k, "class") == 0)
        snprintf(h->cls, sizeof h->cls, "%s", v);
    else if (strcmp(k, "scope") == 0)
        h->class_scope = strcmp(v, "class") == 0;
}

int clsynth_tunedb_read(const char *path, const char *text, clsynth_tunedb_header *h,
                        int (*add)(void *user, const clsynth_tune_record *r, int line), void *user, char *why,
                        size_t why_len)
{
    memset(h, 0, sizeof *h);
    /* a regular file only: a FIFO given as the database would block the loader forever */
    clsynth_err ferr;
    FILE *f = text ? fmemopen((void *)text, strlen(text), "r") : clsynth_fopen_regular(path, NULL, &ferr);
    if (!f) {
        if (!text && errno == ENOENT)
            return 1;
        snprintf(why, why_len, "cannot read it: %s", text ? strerror(errno) : ferr.msg);
        return -1;
    }
    char line[1200];
    int lineno = 0, rc = 0;
    bool magic = false;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            snprintf(why, why_len, "line %d is too long", lineno);
            rc = -1;
            break;
        }
        char *s = clsynth_trim(line);
        if (!*s || *s == '#')
            continue;
        if (!magic) {
            int v = 0;
            char tail = 0;
            if (sscanf(s, CLSYNTH_TUNEDB_MAGIC " %d %c", &v, &tail) != 1) {
                snprintf(why, why_len, "line %d: not a clsynth tuning database (no '%s' header)", lineno,
                         CLSYNTH_TUNEDB_MAGIC);
                rc = -1;
                break;
            }
            if (v != CLSYNTH_TUNEDB_VERSION) {
                snprintf(why, why_len, "format version %d, this build reads %d", v, CLSYNTH_TUNEDB_VERSION);
                rc = -1;
                break;
            }
            h->version = v;
            magic = true;
            continue;
        }
        char *colon = strchr(s, ':');
        char *sp = s + strcspn(s, " \t");
        if (colon && colon < sp) { /* "key: value" header line */
            *colon = 0;
            header_line(h, s, clsynth_trim(colon + 1));
            continue;
        }
        clsynth_tune_record r;
        const char *reason = NULL;
        if (!parse_entry(s, &r, &reason)) {
            snprintf(why, why_len, "line %d: %s", lineno, reason);
            rc = -1;
            break;
        }
        if (add(user, &r, lineno)) {
            snprintf(why, why_len, "out of host memory");
            rc = -1;
            break;
        }
    }
    if (rc == 0 && !magic) {
        snprintf(why, why_len, "empty file (no '%s' header)", CLSYNTH_TUNEDB_MAGIC);
        rc = -1;
    }
    if (rc == 0 && h->class_scope && !h->cls[0]) {
        snprintf(why, why_len, "a class file whose header names no class");
        rc = -1;
    }
    if (rc == 0 && !h->class_scope && (!h->vendor[0] || !h->device[0])) {
        snprintf(why, why_len, "the header names no vendor or device");
        rc = -1;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(why, why_len, "read error");
        rc = -1;
    }
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------- writing */

static void write_header(FILE *f, const clsynth_ctx *ctx, const clsynth_tunedb_header *h)
{
    time_t now = time(NULL);
    struct tm tm;
    char date[32] = "";
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, CLSYNTH_TUNEDB_MAGIC " %d\n", CLSYNTH_TUNEDB_VERSION);
    if (h->class_scope)
        fprintf(f, "# clsynth tuning database for a device class, written by 'clsynth tune --export-class'.\n"
                   "# Devices of the class below use its entries where they have no entry of their own\n"
                   "# (install it with 'clsynth tune --import FILE'); vendor, device and driver name the\n"
                   "# device it was measured on.\n");
    else
        fprintf(f, "# clsynth tuning database for one device, written by 'clsynth tune'.\n"
                   "# It applies only when vendor, device and driver below match the running device;\n"
                   "# otherwise (or when it is malformed) it is ignored with a warning and the kernels\n"
                   "# use their defaults. Share it with 'clsynth tune --export/--import'; share it with\n"
                   "# the devices of its class with 'clsynth tune --export-class'.\n");
    fprintf(f, "#\n"
               "# Entry lines: <kernel> <shape-key> key=value ...\n"
               "#   kernel     a kernel descriptor's key (clcore/kdefs.h lists them;\n"
               "#              clblast.Xgemm / clblast.XgemmDirect / clblast.GemmRoutine hold CLBlast\n"
               "#              parameters, applied with CLBlastOverrideParameters)\n"
               "#   shape-key  the descriptor's shape key, e.g. conv2d 'N4.C64.H32.W32.O128.K3x3.S1.P1';\n"
               "#              dwconv 'NCxHxW', norm 'G=64,M=4096', reduce 'k<log2 K>r<log2 R>'\n"
               "#   algo=N     algorithm of a multi-algorithm op (conv2d: 1 direct, 2 im2col+GEMM)\n"
               "#   local=XxYxZ work-group size (0x0x0 = automatic)\n"
               "#   opts=\"...\" the -D tunables (and host-side ones such as CIN_CHUNK, NORM_VPT)\n"
               "#   lmem=B     local memory the setting needs (informative)\n"
               "#   src=HEX    hash of the kernel source it was tuned with (entries of changed kernels\n"
               "#              are ignored)\n"
               "#   ms, default_ms  measured time of the tuned and the default setting (informative)\n"
               "# Entries are checked against their descriptor when the file loads; one that names an\n"
               "# unknown tunable or an illegal value is dropped with a warning.\n");
    fprintf(f, "vendor: %s\ndevice: %s\ndriver: %s\nplatform: %s\n", h->vendor, h->device, h->driver, h->platform);
    if (h->cls[0])
        fprintf(f, "class: %s\n", h->cls);
    if (h->class_scope)
        fprintf(f, "scope: class\n");
    if (ctx)
        fprintf(f, "limits: max_wg=%zu local_mem=%llu\n", ctx->max_wg, (unsigned long long)ctx->local_mem);
    fprintf(f, "written: %s\n\n", date);
}

int clsynth_tunedb_write(clsynth_ctx *ctx, const char *path, const clsynth_tunedb_header *h,
                         const clsynth_tune_record *const *recs, size_t n)
{
    char dir[800];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (clsynth_mkdirs(dir, NULL))
            return clsynth_ctx_fail(ctx, "cannot create the folder %s: %s", dir, strerror(errno));
    }
    char tmp[900];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return clsynth_ctx_fail(ctx, "cannot write %s: %s", tmp, strerror(errno));
    write_header(f, ctx, h);
    int klen = 8, slen = 8;
    for (size_t i = 0; i < n; i++) {
        int a = (int)strlen(recs[i]->kernel), b = (int)strlen(recs[i]->shape);
        klen = a > klen ? a : klen;
        slen = b > slen ? b : slen;
    }
    for (size_t i = 0; i < n; i++) {
        const clsynth_tune_record *r = recs[i];
        fprintf(f, "%-*s %-*s algo=%d local=%zux%zux%zu lmem=%zu src=%08x opts=\"%s\" ms=%.4g default_ms=%.4g\n",
                klen, r->kernel, slen, r->shape, r->algo, r->local[0], r->local[1], r->local[2], r->lmem, r->src,
                r->opts, r->ms, r->default_ms);
    }
    int ok = fflush(f) == 0 && !ferror(f);
    if (fclose(f))
        ok = 0;
    if (!ok || rename(tmp, path)) {
        int e = errno;
        unlink(tmp);
        return clsynth_ctx_fail(ctx, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}
