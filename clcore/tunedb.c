/* In-memory tuning database of a context (see clcore/tunedb.h).
 *
 * Two open-addressing hash tables of entries keyed by (kernel, shape key):
 * this device's and its device class's, loaded lazily at the first lookup.
 * Entries of registered descriptors are checked and converted to values
 * once, when their file loads; a lookup is one FNV-1a hash of two short
 * strings and a probe. */
#include "clcore/tunedb.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kernels_embedded.h"
#include "clcore/program.h"
#include "clcore/tunedb_file.h"

typedef struct slot {
    clsynth_tune_record r;
    int line;                   /* line in its file (0: added at run time) */
    const clsynth_kdef *def;    /* descriptor it was checked against (NULL: not yet, or unknown kernel) */
    int v[CLSYNTH_K_MAX_PARAMS];
    bool rejected;              /* failed the load-time checks: dropped (never answered, never saved) */
    bool refused;               /* refused by the resolver on this context: answers DEFAULT, still saved */
    unsigned long lookups;      /* recorder: lookups seen */
} slot;

typedef struct table {
    slot *v; /* records, insertion order */
    size_t n, cap;
    size_t *idx; /* hash -> v index + 1 (0 = empty) */
    size_t nidx; /* power of two */
    char name[800]; /* where it came from, for messages */
} table;

typedef struct clsynth_tunedb {
    bool loaded, enabled;
    char path[700];       /* explicit device file ("" = default) */
    char class_path[700]; /* explicit class file */
    bool class_path_set;
    table db, cls;
    size_t shipped_stale; /* the shipped class file's entries for older kernels */
    bool recording;
    table rec;
    unsigned warnings;
    const clsynth_tune_record **sorted; /* sorted view for clsynth_tunedb_at */
    size_t n_sorted;
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

/* Inserts or replaces; returns the slot (fresh state) or NULL when out of memory. */
static slot *table_put(table *t, const clsynth_tune_record *r)
{
    slot *s = table_find(t, r->kernel, r->shape);
    if (!s) {
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
        s->r = *r; /* before the rehash below reads its key */
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
    }
    memset(s, 0, sizeof *s);
    s->r = *r;
    return s;
}

static void table_free(table *t)
{
    free(t->v);
    free(t->idx);
    t->v = NULL;
    t->idx = NULL;
    t->n = t->cap = t->nidx = 0;
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

static void changed(clsynth_ctx *ctx, clsynth_tunedb *db)
{
    db->sorted_ok = false;
    clsynth_kconfig_invalidate(ctx);
}

static void warn(clsynth_ctx *ctx, clsynth_tunedb *db, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void warn(clsynth_ctx *ctx, clsynth_tunedb *db, const char *fmt, ...)
{
    char msg[1400];
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

void clsynth_tunedb_class_path(clsynth_ctx *ctx, char *out, size_t len)
{
    clsynth_tunedb *db = db_of(ctx);
    if (db && db->class_path_set) {
        snprintf(out, len, "%s", db->class_path);
        return;
    }
    snprintf(out, len, "%s/tuning/class/%s.txt", ctx->cache_dir, clsynth_device_class(&ctx->dev));
}

bool clsynth_tune_record_is_default(const clsynth_tune_record *r)
{
    return !r->opts[0] && !r->local[0] && !r->algo;
}

void clsynth_tune_record_of(const clsynth_kdef *d, const int *v, const char *shape, clsynth_tune_record *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->kernel, sizeof r->kernel, "%s", d->key);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    clsynth_kdef_to_fields(d, v, r->opts, sizeof r->opts, r->local, &r->algo);
    r->src = clsynth_kdef_src_hash(d);
}

/* ---------------------------------------------------------------- checking entries */

/* The values of record r against descriptor d (false with why). */
static bool check_record(const clsynth_kdef *d, const clsynth_tune_record *r, int *v, char *why, size_t len)
{
    clsynth_kshape shape;
    memset(&shape, 0, sizeof shape);
    if (!d->parse(r->shape, &shape)) {
        snprintf(why, len, "shape key '%s' is not of the form %s uses", r->shape, d->key);
        return false;
    }
    return clsynth_kdef_from_fields(d, r->opts, r->local, r->algo, v, why, len) &&
           clsynth_kdef_values_ok(d, v, &shape, why, len);
}

static void where(const table *t, const slot *s, char *out, size_t len)
{
    if (s->line)
        snprintf(out, len, "%s line %d", t->name, s->line);
    else
        snprintf(out, len, "%s (added at run time)", t->name);
}

/* Checks slot s against d once; false (with a warning) when it is refused. */
static bool checked(clsynth_ctx *ctx, clsynth_tunedb *db, const table *t, slot *s, const clsynth_kdef *d)
{
    if (s->rejected)
        return false;
    if (s->def == d)
        return true;
    char why[300], at[900];
    if (!check_record(d, &s->r, s->v, why, sizeof why)) {
        where(t, s, at, sizeof at);
        warn(ctx, db, "tuning database %s: entry '%s %s' dropped: %s", at, s->r.kernel, s->r.shape, why);
        s->rejected = true;
        return false;
    }
    s->def = d;
    return true;
}

/* ---------------------------------------------------------------- loading */

typedef struct reader {
    table *t;
    size_t stale;
} reader;

static int add_record(void *user, const clsynth_tune_record *r, int line)
{
    reader *rd = user;
    const clsynth_kdef *d = clsynth_kdef_find(r->kernel);
    clsynth_tune_record cur = *r;
    if (d && ((r->src && d->file) || (!d->file && d->revision)) && r->src != clsynth_kdef_src_hash(d)) {
        if (!d->file || r->src != clsynth_kdef_src_legacy(d)) {
            rd->stale++;
            return 0;
        }
        cur.src = clsynth_kdef_src_hash(d); /* tuned on this very file under the former hash */
    }
    slot *s = table_put(rd->t, &cur);
    if (!s)
        return -1;
    s->line = line;
    return 0;
}

/* Checks every entry of a registered descriptor (dropping what fails). */
static void check_table(clsynth_ctx *ctx, clsynth_tunedb *db, table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        slot *s = &t->v[i];
        const clsynth_kdef *d = clsynth_kdef_find(s->r.kernel);
        if (d && !clsynth_tune_record_is_default(&s->r))
            checked(ctx, db, t, s, d);
    }
}

static void warn_stale(clsynth_ctx *ctx, clsynth_tunedb *db, const char *path, size_t stale)
{
    if (stale)
        warn(ctx, db, "tuning database %s: %zu entr%s tuned for an older version of the kernels, ignored "
                      "(re-run 'clsynth tune')", path, stale, stale == 1 ? "y was" : "ies were");
}

static int load_device(clsynth_ctx *ctx, clsynth_tunedb *db)
{
    char path[800], why[300] = "";
    clsynth_tunedb_path(ctx, path, sizeof path);
    snprintf(db->db.name, sizeof db->db.name, "%s", path);
    clsynth_tunedb_header h;
    table t = { 0 };
    reader rd = { &t, 0 };
    int rc = clsynth_tunedb_read(path, NULL, &h, add_record, &rd, why, sizeof why);
    if (rc == 1)
        return 0; /* not tuned yet */
    if (rc < 0) {
        warn(ctx, db, "tuning database %s is corrupt (%s): ignored, using default kernel settings "
                      "(re-run 'clsynth tune' to rebuild it)", path, why);
    } else if (h.class_scope) {
        warn(ctx, db, "tuning database %s is a class file (class '%s'): install it with 'clsynth tune --import'; "
                      "ignored here", path, h.cls);
    } else if (strcmp(h.vendor, ctx->dev.vendor) != 0 || strcmp(h.device, ctx->dev.name) != 0) {
        warn(ctx, db, "tuning database %s was made for '%s' / '%s', not this device ('%s' / '%s'): ignored",
             path, h.vendor, h.device, ctx->dev.vendor, ctx->dev.name);
    } else if (strcmp(h.driver, ctx->dev.driver) != 0) {
        warn(ctx, db, "tuning database %s is stale: tuned with driver '%s', this driver is '%s'; ignored, "
                      "using default kernel settings (re-run 'clsynth tune')", path, h.driver, ctx->dev.driver);
    } else {
        warn_stale(ctx, db, path, rd.stale);
        memcpy(t.name, db->db.name, sizeof t.name);
        table_free(&db->db);
        db->db = t;
        check_table(ctx, db, &db->db);
        return 0;
    }
    table_free(&t);
    return 0;
}

/* The class file: the user's (<cache>/tuning/class/<class>.txt), else the
 * one shipped in the tree (tuning/<class>.txt, embedded at build time). */
static int load_class(clsynth_ctx *ctx, clsynth_tunedb *db)
{
    const char *cls = clsynth_device_class(&ctx->dev);
    char path[800], why[300] = "", shipped[96];
    db->shipped_stale = 0;
    clsynth_tunedb_class_path(ctx, path, sizeof path);
    snprintf(shipped, sizeof shipped, "%s.txt", cls);
    const char *text = NULL;
    clsynth_tunedb_header h;
    table t = { 0 };
    reader rd = { &t, 0 };
    int rc = path[0] ? clsynth_tunedb_read(path, NULL, &h, add_record, &rd, why, sizeof why) : 1;
    if (rc == 1 && !db->class_path_set) {
        for (const clsynth_embedded_kernel *e = clsynth_embedded_tuning; e->name; e++)
            if (strcmp(e->name, shipped) == 0)
                text = e->source;
        if (!text)
            return 0; /* no class file */
        snprintf(path, sizeof path, "tuning/%s (shipped)", shipped);
        table_free(&t);
        rd.stale = 0;
        rc = clsynth_tunedb_read(path, text, &h, add_record, &rd, why, sizeof why);
    }
    if (rc == 1)
        return 0;
    if (rc < 0)
        warn(ctx, db, "class tuning database %s is corrupt (%s): ignored", path, why);
    else if (!h.class_scope)
        warn(ctx, db, "class tuning database %s is not a class file (no 'scope: class'): ignored", path);
    else if (strcmp(h.cls, cls) != 0)
        warn(ctx, db, "class tuning database %s is for class '%s', this device is '%s': ignored", path, h.cls, cls);
    else {
        /* Stale entries of the file shipped in the tree are the tree's to
         * re-tune (tuning/README.md), not the user's: re-running 'clsynth tune'
         * would not silence a warning about them. They are counted for
         * 'clsynth tune --list'. A user's own class file warns. */
        db->shipped_stale = text ? rd.stale : 0;
        if (!text)
            warn_stale(ctx, db, path, rd.stale);
        snprintf(t.name, sizeof t.name, "%s", path);
        table_free(&db->cls);
        db->cls = t;
        check_table(ctx, db, &db->cls);
        return 0;
    }
    table_free(&t);
    return 0;
}

int clsynth_tunedb_load(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return -1;
    if (db->loaded)
        return 0;
    db->loaded = true;
    changed(ctx, db);
    if (load_device(ctx, db) || load_class(ctx, db))
        return -1;
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
    table_free(&db->cls);
    db->loaded = false;
    changed(ctx, db);
    return 0;
}

int clsynth_tunedb_set_class_path(clsynth_ctx *ctx, const char *path)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return clsynth_ctx_fail(ctx, "out of host memory");
    db->class_path_set = path != NULL;
    snprintf(db->class_path, sizeof db->class_path, "%s", path ? path : "");
    table_free(&db->db);
    table_free(&db->cls);
    db->loaded = false;
    changed(ctx, db);
    return 0;
}

/* ---------------------------------------------------------------- lookup */

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

void clsynth_tunedb_seen(clsynth_ctx *ctx, const char *kernel, const char *key)
{
    if (ctx->tunedb && ctx->tunedb->recording)
        record_lookup(ctx->tunedb, kernel, key);
}

/* Whether slot s of table t answers for def: not dropped by a check (the
 * first check of an entry of a descriptor outside the registry happens here). */
static bool answers(clsynth_ctx *ctx, clsynth_tunedb *db, const table *t, slot *s, const clsynth_kdef *def)
{
    return s && !s->rejected && (clsynth_tune_record_is_default(&s->r) || s->refused || checked(ctx, db, t, s, def));
}

/* The answer of slot s (see answers). */
static clsynth_tunedb_answer answer(slot *s, clsynth_tunedb_answer found, int *v, const void **entry)
{
    if (clsynth_tune_record_is_default(&s->r) || s->refused)
        return CLSYNTH_TUNEDB_DEFAULT;
    memcpy(v, s->v, sizeof s->v);
    if (entry)
        *entry = s;
    return found;
}

static clsynth_tunedb_answer lookup(clsynth_ctx *ctx, const clsynth_kdef *def, const char *key, int *v,
                                    const void **entry, bool even_when_off)
{
    clsynth_tunedb *db = ctx->tunedb;
    if (!db || !db->loaded) {
        if (clsynth_tunedb_load(ctx))
            return CLSYNTH_TUNEDB_NONE;
        db = ctx->tunedb;
    }
    if (!db->enabled && !even_when_off)
        return CLSYNTH_TUNEDB_NONE;
    /* an entry dropped by the checks is as good as absent */
    slot *s = db->db.n ? table_find(&db->db, def->key, key) : NULL;
    if (answers(ctx, db, &db->db, s, def))
        return answer(s, CLSYNTH_TUNEDB_DEVICE, v, entry);
    s = db->cls.n ? table_find(&db->cls, def->key, key) : NULL;
    if (answers(ctx, db, &db->cls, s, def))
        return answer(s, CLSYNTH_TUNEDB_CLASS, v, entry);
    return CLSYNTH_TUNEDB_NONE;
}

clsynth_tunedb_answer clsynth_tunedb_lookup(clsynth_ctx *ctx, const clsynth_kdef *def, const char *key, int *v,
                                            const void **entry)
{
    return lookup(ctx, def, key, v, entry, false);
}

clsynth_tunedb_answer clsynth_tunedb_lookup_stored(clsynth_ctx *ctx, const clsynth_kdef *def, const char *key, int *v)
{
    return lookup(ctx, def, key, v, NULL, true);
}

void clsynth_tunedb_reject(clsynth_ctx *ctx, const void *entry, const char *why)
{
    clsynth_tunedb *db = ctx->tunedb;
    slot *s = (slot *)entry;
    if (!db || !s || s->refused)
        return;
    s->refused = true;
    const table *t = s >= db->db.v && s < db->db.v + db->db.n ? &db->db : &db->cls;
    char at[900];
    where(t, s, at, sizeof at);
    warn(ctx, db, "tuned setting of %s at %s (%s: opts \"%s\" local %zux%zux%zu algo %d) is not usable on this "
                  "context: %s; using the defaults", s->r.kernel, s->r.shape, at, s->r.opts, s->r.local[0],
         s->r.local[1], s->r.local[2], s->r.algo, why);
}

/* ---------------------------------------------------------------- editing */

int clsynth_tunedb_put(clsynth_ctx *ctx, const clsynth_tune_record *r)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    if (!r->kernel[0] || !r->shape[0] || strpbrk(r->kernel, " \t=\"#") || strpbrk(r->shape, " \t\"#") ||
        strchr(r->opts, '"') || strchr(r->opts, '\n'))
        return clsynth_ctx_fail(ctx, "tuning database: record '%s' '%s' has characters the file cannot hold",
                                r->kernel, r->shape);
    const clsynth_kdef *d = clsynth_kdef_find(r->kernel);
    int v[CLSYNTH_K_MAX_PARAMS];
    char why[300];
    if (d && !clsynth_tune_record_is_default(r) && !check_record(d, r, v, why, sizeof why))
        return clsynth_ctx_fail(ctx, "tuning database: record '%s %s' refused: %s", r->kernel, r->shape, why);
    slot *s = table_put(&db->db, r);
    if (!s)
        return clsynth_ctx_fail(ctx, "out of host memory");
    if (d && !clsynth_tune_record_is_default(r)) {
        s->def = d;
        memcpy(s->v, v, sizeof v);
    }
    changed(ctx, db);
    return 0;
}

bool clsynth_tunedb_get(clsynth_ctx *ctx, const char *kernel, const char *shape, clsynth_tune_record *out)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return false;
    slot *s = table_find(&db->db, kernel, shape);
    if (s && s->rejected)
        return false;
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
    changed(ctx, db);
}

static size_t usable(const table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += !t->v[i].rejected;
    return n;
}

size_t clsynth_tunedb_count(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return 0;
    return usable(&db->db);
}

size_t clsynth_tunedb_class_count(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return 0;
    return usable(&db->cls);
}

size_t clsynth_tunedb_shipped_stale(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return 0;
    return db->shipped_stale;
}

static int cmp_rec(const void *a, const void *b)
{
    const clsynth_tune_record *x = *(const clsynth_tune_record *const *)a;
    const clsynth_tune_record *y = *(const clsynth_tune_record *const *)b;
    int c = strcmp(x->kernel, y->kernel);
    return c ? c : strcmp(x->shape, y->shape);
}

/* The usable records of t sorted by (kernel, shape); malloc'ed array of
 * pointers (valid until t changes), *n their count. */
static const clsynth_tune_record **sorted_index(const table *t, size_t *n)
{
    const clsynth_tune_record **ix = malloc((t->n ? t->n : 1) * sizeof *ix);
    if (!ix)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!t->v[i].rejected)
            ix[k++] = &t->v[i].r;
    qsort(ix, k, sizeof *ix, cmp_rec);
    *n = k;
    return ix;
}

const clsynth_tune_record *clsynth_tunedb_at(clsynth_ctx *ctx, size_t i)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return NULL;
    if (!db->sorted_ok) {
        free((void *)db->sorted);
        db->sorted = sorted_index(&db->db, &db->n_sorted);
        if (!db->sorted)
            return NULL;
        db->sorted_ok = true;
    }
    return i < db->n_sorted ? db->sorted[i] : NULL;
}

void clsynth_tunedb_set_enabled(clsynth_ctx *ctx, bool on)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db)
        return;
    bool was = db->enabled;
    db->enabled = on;
    changed(ctx, db);
    /* CLBlast's overrides are process-wide per device: applied when tuning is
     * switched on; switching off does not undo them (CLBlast has no reset) */
    if (on && !was && db->loaded)
        clsynth_tunedb_apply_clblast(ctx);
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

/* ---------------------------------------------------------------- saving, sharing */

static void header_of(const clsynth_ctx *ctx, bool class_scope, clsynth_tunedb_header *h)
{
    memset(h, 0, sizeof *h);
    snprintf(h->vendor, sizeof h->vendor, "%s", ctx->dev.vendor);
    snprintf(h->device, sizeof h->device, "%s", ctx->dev.name);
    snprintf(h->driver, sizeof h->driver, "%s", ctx->dev.driver);
    snprintf(h->platform, sizeof h->platform, "%s", ctx->dev.platform_name);
    snprintf(h->cls, sizeof h->cls, "%s", clsynth_device_class(&ctx->dev));
    h->class_scope = class_scope;
}

static int write_device_entries(clsynth_ctx *ctx, const char *path, bool class_scope)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    size_t n = 0;
    const clsynth_tune_record **ix = sorted_index(&db->db, &n);
    if (!ix)
        return clsynth_ctx_fail(ctx, "out of host memory");
    clsynth_tunedb_header h;
    header_of(ctx, class_scope, &h);
    int rc = clsynth_tunedb_write(ctx, path, &h, ix, n);
    free((void *)ix);
    return rc;
}

int clsynth_tunedb_save(clsynth_ctx *ctx, const char *path)
{
    char p[800];
    if (path)
        snprintf(p, sizeof p, "%s", path);
    else
        clsynth_tunedb_path(ctx, p, sizeof p);
    return write_device_entries(ctx, p, false);
}

int clsynth_tunedb_export(clsynth_ctx *ctx, const char *path)
{
    return write_device_entries(ctx, path, false);
}

int clsynth_tunedb_export_class(clsynth_ctx *ctx, const char *path)
{
    return write_device_entries(ctx, path, true);
}

/* Copies the checked entries of t into dst (device entries, or the class table). */
static int merge(clsynth_ctx *ctx, clsynth_tunedb *db, table *dst, table *t)
{
    check_table(ctx, db, t);
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i].rejected)
            continue;
        slot *s = table_put(dst, &t->v[i].r);
        if (!s)
            return clsynth_ctx_fail(ctx, "out of host memory");
        s->def = t->v[i].def;
        memcpy(s->v, t->v[i].v, sizeof s->v);
    }
    return 0;
}

int clsynth_tunedb_import(clsynth_ctx *ctx, const char *path, bool force)
{
    clsynth_tunedb *db = db_of(ctx);
    if (!db || clsynth_tunedb_load(ctx))
        return clsynth_ctx_fail(ctx, "out of host memory");
    clsynth_tunedb_header h;
    table t = { 0 };
    reader rd = { &t, 0 };
    char why[300] = "";
    int rc = clsynth_tunedb_read(path, NULL, &h, add_record, &rd, why, sizeof why);
    snprintf(t.name, sizeof t.name, "%s", path);
    if (rc) {
        table_free(&t);
        return clsynth_ctx_fail(ctx, "cannot import %s: %s", path, rc == 1 ? "no such file" : why);
    }
    if (h.class_scope) {
        const char *cls = clsynth_device_class(&ctx->dev);
        if (strcmp(h.cls, cls) != 0) {
            table_free(&t);
            return clsynth_ctx_fail(ctx, "cannot import %s: it is a class file for '%s', this device's class is "
                                         "'%s'", path, h.cls, cls);
        }
        warn_stale(ctx, db, path, rd.stale);
        table_free(&db->cls);
        snprintf(db->cls.name, sizeof db->cls.name, "%s", path);
        rc = merge(ctx, db, &db->cls, &t);
        table_free(&t);
        changed(ctx, db);
        if (rc)
            return rc;
        char dst[800];
        clsynth_tunedb_class_path(ctx, dst, sizeof dst);
        size_t n = 0;
        const clsynth_tune_record **ix = sorted_index(&db->cls, &n);
        if (!ix)
            return clsynth_ctx_fail(ctx, "out of host memory");
        rc = clsynth_tunedb_write(ctx, dst, &h, ix, n);
        free((void *)ix);
        snprintf(db->cls.name, sizeof db->cls.name, "%s", dst);
        return rc;
    }
    if (strcmp(h.vendor, ctx->dev.vendor) != 0 || strcmp(h.device, ctx->dev.name) != 0) {
        table_free(&t);
        return clsynth_ctx_fail(ctx, "cannot import %s: it was tuned on '%s' / '%s', this device is '%s' / '%s' "
                                     "(share entries between devices of a class with --export-class)",
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
    if (rd.stale)
        warn(ctx, db, "%s: %zu entries tuned for an older version of the kernels were skipped", path, rd.stale);
    rc = merge(ctx, db, &db->db, &t);
    table_free(&t);
    changed(ctx, db);
    if (rc)
        return rc;
    clsynth_tunedb_apply_clblast(ctx);
    return clsynth_tunedb_save(ctx, NULL);
}

void clsynth_tunedb_free(clsynth_ctx *ctx)
{
    clsynth_tunedb *db = ctx->tunedb;
    if (!db)
        return;
    table_free(&db->db);
    table_free(&db->cls);
    table_free(&db->rec);
    free((void *)db->sorted);
    free(db);
    ctx->tunedb = NULL;
}
