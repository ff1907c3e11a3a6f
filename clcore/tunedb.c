/* In-memory tuning database of a context (see clcore/tune.h, clcore/tunedb.h).
 *
 * One open-addressing hash table of records keyed by (kernel, shape key),
 * loaded lazily from the device's text file at the first lookup. A lookup is
 * one FNV-1a hash of two short strings and a probe: nothing measurable next
 * to a kernel launch. A record whose local size or local memory does not fit
 * the context's (possibly emulated) limits is not answered, so a file tuned
 * on the full device never breaks a run under smaller limits. */
#include "clcore/tunedb.h"
#include "clcore/fsutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clcore/program.h"
#include "clcore/tunables.h"

#define TUNEDB_MAGIC "clsynth-tunedb"
#define TUNEDB_VERSION 1

typedef struct slot {
    clsynth_tune_record r;
    unsigned long lookups; /* recorder: lookups seen */
    bool warned;           /* limits warning issued */
} slot;

typedef struct table {
    slot *v;        /* records, insertion order */
    size_t n, cap;
    size_t *idx;    /* hash -> v index + 1 (0 = empty) */
    size_t nidx;    /* power of two */
} table;

typedef struct clsynth_tunedb {
    bool loaded, enabled;
    char path[700]; /* explicit path ("" = default) */
    table db;
    /* tuner override */
    bool ov_active, ov_has;
    char ov_kernel[CLSYNTH_TUNE_KEY_MAX], ov_shape[CLSYNTH_TUNE_SHAPE_MAX];
    clsynth_tune_entry ov;
    /* recorder */
    bool recording;
    table rec;
    unsigned warnings;
    const clsynth_tune_record **sorted; /* sorted view for clsynth_tunedb_at */
    bool sorted_ok;
} clsynth_tunedb;

/* ---------------------------------------------------------------- table */

static uint64_t key_hash(const char *kernel, const char *shape)
{
    uint64_t h = clsynth_fnv1a(CLSYNTH_FNV_SEED, kernel, strlen(kernel) + 1);
    return clsynth_fnv1a(h, shape, strlen(shape));
}

static slot *table_find(const table *t, const char *kernel, const char *shape)
{
    if (!t->nidx)
        return NULL;
    size_t mask = t->nidx - 1;
    for (size_t i = (size_t)key_hash(kernel, shape) & mask;; i = (i + 1) & mask) {
        size_t j = t->idx[i];
        if (!j)
            return NULL;
        slot *s = &t->v[j - 1];
        if (strcmp(s->r.kernel, kernel) == 0 && strcmp(s->r.shape, shape) == 0)
            return s;
    }
}

static int table_rehash(table *t, size_t nidx)
{
    size_t *idx = calloc(nidx, sizeof *idx);
    if (!idx)
        return -1;
    free(t->idx);
    t->idx = idx;
    t->nidx = nidx;
    for (size_t j = 0; j < t->n; j++) {
        size_t i = (size_t)key_hash(t->v[j].r.kernel, t->v[j].r.shape) & (nidx - 1);
        while (idx[i])
            i = (i + 1) & (nidx - 1);
        idx[i] = j + 1;
    }
    return 0;
}

/* Inserts or replaces; returns the slot or NULL when out of memory. */
static slot *table_put(table *t, const clsynth_tune_record *r)
{
    slot *s = table_find(t, r->kernel, r->shape);
    if (s) {
        s->r = *r;
        s->warned = false;
        return s;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        slot *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    s = &t->v[t->n++];
    memset(s, 0, sizeof *s);
    s->r = *r;
    if (t->n * 2 > t->nidx) {
        if (table_rehash(t, t->nidx ? t->nidx * 2 : 128)) {
            t->n--;
            return NULL;
        }
    } else {
        size_t i = (size_t)key_hash(r->kernel, r->shape) & (t->nidx - 1);
        while (t->idx[i])
            i = (i + 1) & (t->nidx - 1);
        t->idx[i] = t->n;
    }
    return s;
}

static void table_free(table *t)
{
    free(t->v);
    free(t->idx);
    memset(t, 0, sizeof *t);
}

/* ---------------------------------------------------------------- state */

static clsynth_tunedb *db_of(clsynth_ctx *ctx)
{
    if (!ctx->tunedb) {
        ctx->tunedb = calloc(1, sizeof *ctx->tunedb);
        if (ctx->tunedb) {
            const char *v = getenv("CLSYNTH_TUNE");
            ctx->tunedb->enabled = !(v && strcmp(v, "0") == 0);
        }
    }
    return ctx->tunedb;
}

static void warn(clsynth_ctx *ctx, clsynth_tunedb *db, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(clsynth_ctx *ctx, clsynth_tunedb *db, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    db->warnings++;
    clsynth_warn(ctx, "%s", msg);
}

static void sanitize(const char *in, char *out, size_t len)
{
    size_t o = 0;
    int last_us = 1;
    for (const char *p = in; *p && o + 1 < len; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
        if (ok) {
            out[o++] = c;
            last_us = 0;
        } else if (!last_us) {
            out[o++] = '_';
            last_us = 1;
        }
    }
    while (o > 0 && out[o - 1] == '_')
        o--;
    out[o] = 0;
    if (!o)
        snprintf(out, len, "unknown");
}

void clsynth_tunedb_path(clsynth_ctx *ctx, char *out, size_t len)
{
    clsynth_tunedb *db = db_of(ctx);
    if (db && db->path[0]) {
        snprintf(out, len, "%s", db->path);
        return;
    }
    const char *v = getenv("CLSYNTH_TUNE_FILE");
    if (v && *v) {
        snprintf(out, len, "%s", v);
        return;
    }
    char vendor[96], name[128];
    sanitize(ctx->dev.vendor, vendor, sizeof vendor);
    sanitize(ctx->dev.name, name, sizeof name);
    snprintf(out, len, "%s/tuning/%s--%s.txt", ctx->cache_dir, vendor, name);
}

/* ---------------------------------------------------------------- parsing */

typedef struct header {
    char vendor[128], device[128], driver[64], platform[128];
    int version;
} header;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

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
            r->e.algo = (int)a;
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
            memcpy(r->e.local, l, sizeof l);
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
            if (strlen(v) >= sizeof r->e.options) {
                *why = "options too long";
                return false;
            }
            snprintf(r->e.options, sizeof r->e.options, "%s", v);
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
    if (r->e.local[0] == 0 && (r->e.local[1] || r->e.local[2])) {
        *why = "local size with a zero first dimension";
        return false;
    }
    return true;
}

/* Reads a database file into t (records appended). Returns 0 on success, 1
 * when the file does not exist, -1 when it is corrupt (why names line and
 * reason). */
static int read_file(const char *path, header *h, table *t, char *why, size_t why_len)
{
    memset(h, 0, sizeof *h);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 1 : (snprintf(why, why_len, "cannot read it: %s", strerror(errno)), -1);
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
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (!magic) {
            int v = 0;
            char tail = 0;
            if (sscanf(s, TUNEDB_MAGIC " %d %c", &v, &tail) != 1) {
                snprintf(why, why_len, "line %d: not a clsynth tuning database (no '%s' header)", lineno,
                         TUNEDB_MAGIC);
                rc = -1;
                break;
            }
            if (v != TUNEDB_VERSION) {
                snprintf(why, why_len, "format version %d, this build reads %d", v, TUNEDB_VERSION);
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
            char *v = trim(colon + 1);
            if (strcmp(s, "vendor") == 0)
                snprintf(h->vendor, sizeof h->vendor, "%s", v);
            else if (strcmp(s, "device") == 0)
                snprintf(h->device, sizeof h->device, "%s", v);
            else if (strcmp(s, "driver") == 0)
                snprintf(h->driver, sizeof h->driver, "%s", v);
            else if (strcmp(s, "platform") == 0)
                snprintf(h->platform, sizeof h->platform, "%s", v);
            continue; /* other header lines are informative */
        }
        clsynth_tune_record r;
        const char *reason = NULL;
        if (!parse_entry(s, &r, &reason)) {
            snprintf(why, why_len, "line %d: %s", lineno, reason);
            rc = -1;
            break;
        }
        if (!table_put(t, &r)) {
            snprintf(why, why_len, "out of host memory");
            rc = -1;
            break;
        }
    }
    if (rc == 0 && !magic) {
        snprintf(why, why_len, "empty file (no '%s' header)", TUNEDB_MAGIC);
        rc = -1;
    }
    if (rc == 0 && (!h->vendor[0] || !h->device[0])) {
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

/* Drops records whose kernel source changed since they were tuned; returns
 * how many. */
static size_t drop_stale_sources(table *t)
{
    table keep = { 0 };
    size_t dropped = 0;
    for (size_t i = 0; i < t->n; i++) {
        const clsynth_tune_record *r = &t->v[i].r;
        const clsynth_tunable *tb = clsynth_tunable_find(r->kernel);
        if (tb && r->src && r->src != clsynth_tunable_src_hash(tb)) {
            dropped++;
            continue;
        }
        if (!table_put(&keep, r)) {
            table_free(&keep);
            return 0;
        }
    }
    table_free(t);
    *t = keep;
    return dropped;
}

int clsynth_tunedb_load(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return -1;
    if (db->loaded)
        return 0;
    db->loaded = true;
    db->sorted_ok = false;
    char path[800], why[256] = "";
    clsynth_tunedb_path(ctx, path, sizeof path);
    header h;
    table t = { 0 };
    int rc = read_file(path, &h, &t, why, sizeof why);
    if (rc == 1)
        return 0; /* not tuned yet */
    if (rc < 0) {
        warn(ctx, db, "tuning database %s is corrupt (%s): ignored, using default kernel settings "
                      "(re-run 'clsynth tune' to rebuild it)", path, why);
        table_free(&t);
        return 0;
    }
    if (strcmp(h.vendor, ctx->dev.vendor) != 0 || strcmp(h.device, ctx->dev.name) != 0) {
        warn(ctx, db, "tuning database %s was made for '%s' / '%s', not this device ('%s' / '%s'): ignored",
             path, h.vendor, h.device, ctx->dev.vendor, ctx->dev.name);
        table_free(&t);
        return 0;
    }
    if (strcmp(h.driver, ctx->dev.driver) != 0) {
        warn(ctx, db, "tuning database %s is stale: tuned with driver '%s', this driver is '%s'; ignored, "
                      "using default kernel settings (re-run 'clsynth tune')", path, h.driver, ctx->dev.driver);
        table_free(&t);
        return 0;
    }
    size_t stale = drop_stale_sources(&t);
    if (stale)
        warn(ctx, db, "tuning database %s: %zu entr%s tuned for an older version of the kernels, ignored "
                      "(re-run 'clsynth tune')", path, stale, stale == 1 ? "y was" : "ies were");
    for (size_t i = 0; i < t.n; i++)
        if (!table_put(&db->db, &t.v[i].r)) {
            table_free(&t);
            return -1;
        }
    table_free(&t);
    if (db->enabled)
        clsynth_tunedb_apply_clblast(ctx);
    return 0;
}

int clsynth_tunedb_set_path(clsynth_ctx *ctx, const char *path)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return clsynth_ctx_fail(ctx, "out of host memory");
    snprintf(db->path, sizeof db->path, "%s", path ? path : "");
    table_free(&db->db);
    db->loaded = false;
    db->sorted_ok = false;
    return 0;
}

/* ---------------------------------------------------------------- lookup */

static bool fits_limits(const clsynth_ctx *ctx, const clsynth_tune_record *r)
{
    if (r->lmem > ctx->local_mem)
        return false;
    if (!r->e.local[0])
        return true;
    size_t prod = 1;
    for (int d = 0; d < 3; d++) {
        size_t l = r->e.local[d] ? r->e.local[d] : 1;
        if (l > ctx->max_item[d])
            return false;
        prod *= l;
    }
    return prod <= ctx->max_wg;
}

static void record_lookup(clsynth_tunedb *db, const char *kernel, const char *shape)
{
    slot *s = table_find(&db->rec, kernel, shape);
    if (!s) {
        clsynth_tune_record r;
        memset(&r, 0, sizeof r);
        if (strlen(kernel) >= sizeof r.kernel || strlen(shape) >= sizeof r.shape)
            return;
        strcpy(r.kernel, kernel);
        strcpy(r.shape, shape);
        s = table_put(&db->rec, &r);
        if (!s)
            return;
    }
    s->lookups++;
}

bool clsynth_tune_lookup(clsynth_ctx *ctx, const char *kernel, const char *shape_key, clsynth_tune_entry *out)
{
    clsynth_tunedb *db = ctx->tunedb;
    if (!db || !db->loaded) {
        if (clsynth_tunedb_load(ctx))
            return false;
        db = ctx->tunedb;
    }
    if (db->recording)
        record_lookup(db, kernel, shape_key);
    if (db->ov_active && strcmp(kernel, db->ov_kernel) == 0 && strcmp(shape_key, db->ov_shape) == 0) {
        if (db->ov_has)
            *out = db->ov;
        return db->ov_has;
    }
    if (!db->enabled || !db->db.n)
        return false;
    slot *s = table_find(&db->db, kernel, shape_key);
    if (!s || (!s->r.e.options[0] && !s->r.e.local[0] && !s->r.e.algo))
        return false; /* absent, or tuned with the default configuration kept */
    if (!fits_limits(ctx, &s->r)) {
        if (!s->warned)
            clsynth_warn(ctx, "tuned setting of %s at %s (local %zux%zux%zu, %zu bytes of local memory) "
                              "exceeds this context's limits; using defaults", kernel, shape_key,
                         s->r.e.local[0], s->r.e.local[1], s->r.e.local[2], s->r.lmem);
        s->warned = true;
        return false;
    }
    *out = s->r.e;
    return true;
}

/* ---------------------------------------------------------------- editing */

int clsynth_tunedb_put(clsynth_ctx *ctx, const clsynth_tune_record *r)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    if (!r->kernel[0] || !r->shape[0] || strpbrk(r->kernel, " \t=\"#") || strpbrk(r->shape, " \t\"#") ||
        strchr(r->e.options, '"') || strchr(r->e.options, '\n'))
        return clsynth_ctx_fail(ctx, "tuning database: record '%s' '%s' has characters the file cannot hold",
                                r->kernel, r->shape);
    if (!table_put(&db->db, r))
        return clsynth_ctx_fail(ctx, "out of host memory");
    db->sorted_ok = false;
    return 0;
}

bool clsynth_tunedb_get(clsynth_ctx *ctx, const char *kernel, const char *shape, clsynth_tune_record *out)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return false;
    slot *s = table_find(&db->db, kernel, shape);
    if (s && out)
        *out = s->r;
    return s != NULL;
}

void clsynth_tunedb_clear(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return;
    db->loaded = true; /* an explicit clear is not undone by a lazy load */
    table_free(&db->db);
    db->sorted_ok = false;
}

size_t clsynth_tunedb_count(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return 0;
    return db->db.n;
}

static int cmp_rec(const void *a, const void *b)
{
    const clsynth_tune_record *x = *(const clsynth_tune_record *const *)a;
    const clsynth_tune_record *y = *(const clsynth_tune_record *const *)b;
    int c = strcmp(x->kernel, y->kernel);
    return c ? c : strcmp(x->shape, y->shape);
}

/* The records of t sorted by (kernel, shape); malloc'ed array of pointers
 * (valid until t changes). */
static const clsynth_tune_record **sorted_index(const table *t)
{
    const clsynth_tune_record **ix = malloc((t->n ? t->n : 1) * sizeof *ix);
    if (!ix)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        ix[i] = &t->v[i].r;
    qsort(ix, t->n, sizeof *ix, cmp_rec);
    return ix;
}

const clsynth_tune_record *clsynth_tunedb_at(clsynth_ctx *ctx, size_t i)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx) || i >= db->db.n)
        return NULL;
    if (!db->sorted_ok) {
        free((void *)db->sorted);
        db->sorted = sorted_index(&db->db);
        if (!db->sorted)
            return NULL;
        db->sorted_ok = true;
    }
    return db->sorted[i];
}

void clsynth_tunedb_set_enabled(clsynth_ctx *ctx, bool on)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return;
    bool was = db->enabled;
    db->enabled = on;
    /* CLBlast's overrides are process-wide per device: applied when tuning is
     * switched on; switching off does not undo them (CLBlast has no reset) */
    if (on && !was && db->loaded)
        clsynth_tunedb_apply_clblast(ctx);
}

void clsynth_tunedb_set_override(clsynth_ctx *ctx, const char *kernel, const char *shape,
                                 const clsynth_tune_entry *e)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return;
    db->ov_active = true;
    snprintf(db->ov_kernel, sizeof db->ov_kernel, "%s", kernel);
    snprintf(db->ov_shape, sizeof db->ov_shape, "%s", shape);
    db->ov_has = e != NULL;
    if (e)
        db->ov = *e;
}

void clsynth_tunedb_clear_override(clsynth_ctx *ctx)
{
    if (ctx->tunedb)
        ctx->tunedb->ov_active = false;
}

void clsynth_tunedb_record(clsynth_ctx *ctx, bool on)
{
    clsynth_tunedb *db = db_of(ctx);
    if (db)
        db->recording = on;
}

size_t clsynth_tunedb_recorded_count(clsynth_ctx *ctx)
{
    return ctx->tunedb ? ctx->tunedb->rec.n : 0;
}

bool clsynth_tunedb_recorded(clsynth_ctx *ctx, size_t i, const char **kernel, const char **shape,
                             unsigned long *lookups)
{
    if (!ctx->tunedb || i >= ctx->tunedb->rec.n)
        return false;
    const slot *s = &ctx->tunedb->rec.v[i];
    if (kernel)
        *kernel = s->r.kernel;
    if (shape)
        *shape = s->r.shape;
    if (lookups)
        *lookups = s->lookups;
    return true;
}

void clsynth_tunedb_recorded_clear(clsynth_ctx *ctx)
{
    if (ctx->tunedb)
        table_free(&ctx->tunedb->rec);
}

unsigned clsynth_tunedb_warnings(clsynth_ctx *ctx)
{
    return ctx->tunedb ? ctx->tunedb->warnings : 0;
}

/* ---------------------------------------------------------------- saving */

static void write_header(FILE *f, const clsynth_ctx *ctx, const char *vendor, const char *device,
                         const char *driver, const char *platform)
{
    time_t now = time(NULL);
    struct tm tm;
    char date[32] = "";
    if (gmtime_r(&now, &tm))
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, TUNEDB_MAGIC " %d\n", TUNEDB_VERSION);
    fprintf(f, "# clsynth tuning database for one device, written by 'clsynth tune'.\n"
               "# It applies only when vendor, device and driver below match the running device;\n"
               "# otherwise (or when it is malformed) it is ignored with a warning and the kernels\n"
               "# use their defaults. Share it with 'clsynth tune --export/--import'.\n"
               "#\n"
               "# Entry lines: <kernel> <shape-class> key=value ...\n"
               "#   kernel      the key an op passes to clsynth_tune_lookup (clcore/tunables.c lists them;\n"
               "#               clblast.Xgemm / clblast.XgemmDirect / clblast.GemmRoutine hold CLBlast\n"
               "#               parameters, applied with CLBlastOverrideParameters)\n"
               "#   shape-class the op's shape key, e.g. conv2d 'N4.C64.H32.W32.O128.K3x3.S1.P1';\n"
               "#               dwconv 'NCxHxW', norm 'G=64,M=4096'; see clcore/tunables.c\n"
               "#   algo=N      algorithm of a multi-algorithm op (conv2d: 1 direct, 2 im2col+GEMM)\n"
               "#   local=XxYxZ work-group size (0x0x0 = the launch helper's default)\n"
               "#   opts=\"...\"  compile-time -D tunables\n"
               "#   lmem=B      local memory the setting needs (entries that do not fit are skipped)\n"
               "#   src=HEX     hash of the kernel source it was tuned with (entries of changed kernels\n"
               "#               are ignored)\n"
               "#   ms, default_ms  measured time of the tuned and the default setting (informative)\n");
    fprintf(f, "vendor: %s\ndevice: %s\ndriver: %s\nplatform: %s\n", vendor, device, driver, platform);
    if (ctx) {
        fprintf(f, "class: %s\n", clsynth_device_class(&ctx->dev));
        fprintf(f, "limits: max_wg=%zu local_mem=%llu\n", ctx->max_wg, (unsigned long long)ctx->local_mem);
    }
    fprintf(f, "written: %s\n\n", date);
}

static int write_table(clsynth_ctx *ctx, const char *path, const table *t, const char *vendor, const char *device,
                       const char *driver, const char *platform)
{
    char dir[800];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = 0;
        if (clsynth_mkdirs(dir, NULL))
            return clsynth_ctx_fail(ctx, "cannot create the folder %s: %s", dir, strerror(errno));
    }
    const clsynth_tune_record **ix = sorted_index(t);
    if (!ix)
        return clsynth_ctx_fail(ctx, "out of host memory");
    char tmp[900];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free((void *)ix);
        return clsynth_ctx_fail(ctx, "cannot write %s: %s", tmp, strerror(errno));
    }
    write_header(f, ctx, vendor, device, driver, platform);
    int klen = 8, slen = 8;
    for (size_t i = 0; i < t->n; i++) {
        int a = (int)strlen(t->v[i].r.kernel), b = (int)strlen(t->v[i].r.shape);
        klen = a > klen ? a : klen;
        slen = b > slen ? b : slen;
    }
    for (size_t i = 0; i < t->n; i++) {
        const clsynth_tune_record *r = ix[i];
        fprintf(f, "%-*s %-*s algo=%d local=%zux%zux%zu lmem=%zu src=%08x opts=\"%s\" ms=%.4g default_ms=%.4g\n",
                klen, r->kernel, slen, r->shape, r->e.algo, r->e.local[0], r->e.local[1], r->e.local[2], r->lmem,
                r->src, r->e.options, r->ms, r->default_ms);
    }
    free((void *)ix);
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

int clsynth_tunedb_save(clsynth_ctx *ctx, const char *path)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    char p[800];
    if (path)
        snprintf(p, sizeof p, "%s", path);
    else
        clsynth_tunedb_path(ctx, p, sizeof p);
    return write_table(ctx, p, &db->db, ctx->dev.vendor, ctx->dev.name, ctx->dev.driver, ctx->dev.platform_name);
}

int clsynth_tunedb_export(clsynth_ctx *ctx, const char *path)
{
    return clsynth_tunedb_save(ctx, path);
}

int clsynth_tunedb_import(clsynth_ctx *ctx, const char *path, bool force)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    header h;
    table t = { 0 };
    char why[256] = "";
    int rc = read_file(path, &h, &t, why, sizeof why);
    if (rc) {
        table_free(&t);
        return clsynth_ctx_fail(ctx, "cannot import %s: %s", path, rc == 1 ? "no such file" : why);
    }
    if (strcmp(h.vendor, ctx->dev.vendor) != 0 || strcmp(h.device, ctx->dev.name) != 0) {
        table_free(&t);
        return clsynth_ctx_fail(ctx, "cannot import %s: it was tuned on '%s' / '%s', this device is '%s' / '%s'",
                                path, h.vendor, h.device, ctx->dev.vendor, ctx->dev.name);
    }
    if (strcmp(h.driver, ctx->dev.driver) != 0) {
        if (!force) {
            table_free(&t);
            return clsynth_ctx_fail(ctx, "cannot import %s: it was tuned with driver '%s', this driver is '%s' "
                                         "(use --force to take it over anyway)", path, h.driver, ctx->dev.driver);
        }
        warn(ctx, db, "importing %s tuned with driver '%s' for driver '%s' (forced)", path, h.driver,
             ctx->dev.driver);
    }
    size_t stale = drop_stale_sources(&t);
    if (stale)
        warn(ctx, db, "%s: %zu entries tuned for an older version of the kernels were skipped", path, stale);
    for (size_t i = 0; i < t.n; i++)
        if (!table_put(&db->db, &t.v[i].r)) {
            table_free(&t);
            return clsynth_ctx_fail(ctx, "out of host memory");
        }
    table_free(&t);
    db->sorted_ok = false;
    clsynth_tunedb_apply_clblast(ctx);
    return clsynth_tunedb_save(ctx, NULL);
}

void clsynth_tunedb_free(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = ctx->tunedb;
    if (!db)
        return;
    table_free(&db->db);
    table_free(&db->rec);
    free((void *)db->sorted);
    free(db);
    ctx->tunedb = NULL;
}
