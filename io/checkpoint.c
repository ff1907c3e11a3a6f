#include "io/checkpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/fsutil.h"
#include "io/atomic.h"

/* Floats are stored little-endian: on such hosts they stream as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_IS_LE 1
#else
#define HOST_IS_LE 0
#endif

static const char MAGIC[8] = {'C', 'L', 'S', 'Y', 'N', 'C', 'K', 'P'};

/* ---- writing ---------------------------------------------------------- */

typedef struct writer {
    FILE *f;
    uint32_t crc;
    int failed; /* errno of the first failed write (EIO when it set none) */
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->failed)
        return;
    w->crc = clsynth_crc32(w->crc, p, n);
    errno = 0;
    if (fwrite(p, 1, n, w->f) != n)
        w->failed = errno ? errno : EIO;
}

static void put_u32(writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static void put_u64(writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void put_floats(writer *w, const float *x, size_t n)
{
    if (HOST_IS_LE) { /* the bytes as they are, in large chunks */
        const size_t chunk = (size_t)1 << 22;
        const uint8_t *p = (const uint8_t *)x;
        for (size_t left = n * 4; left > 0 && !w->failed;) {
            size_t k = left < chunk ? left : chunk;
            put(w, p, k);
            p += k;
            left -= k;
        }
        return;
    }
    uint8_t buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        for (size_t i = 0; i < k; i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            buf[4 * i] = (uint8_t)u;
            buf[4 * i + 1] = (uint8_t)(u >> 8);
            buf[4 * i + 2] = (uint8_t)(u >> 16);
            buf[4 * i + 3] = (uint8_t)(u >> 24);
        }
        put(w, buf, 4 * k);
        x += k;
        n -= k;
    }
}

static int check_tensor_in(const char *path, const clsynth_ckpt_tensor_in *t, int i,
                           clsynth_err *err)
{
    size_t nl = t->name ? strlen(t->name) : 0, tl = t->tag ? strlen(t->tag) : 0;
    if (nl < 1 || nl > CLSYNTH_CKPT_MAX_NAME)
        return clsynth_fail(err, "%s: tensor %d: name must have 1..%d bytes", path, i,
                            CLSYNTH_CKPT_MAX_NAME);
    if (tl > CLSYNTH_CKPT_MAX_NAME)
        return clsynth_fail(err, "%s: tensor '%s': tag longer than %d bytes", path, t->name,
                            CLSYNTH_CKPT_MAX_NAME);
    if (t->ndim < 1 || t->ndim > 4)
        return clsynth_fail(err, "%s: tensor '%s': ndim %d outside 1..4", path, t->name,
                            t->ndim);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 1)
            return clsynth_fail(err, "%s: tensor '%s': shape[%d] = %d < 1", path, t->name, d,
                                t->shape[d]);
    if (!t->data)
        return clsynth_fail(err, "%s: tensor '%s': no data", path, t->name);
    return 0;
}

int clsynth_checkpoint_save(const char *path, const char *config, uint64_t step,
                            const uint64_t rng[4], const clsynth_ckpt_tensor_in *tensors,
                            int n_tensors, clsynth_err *err)
{
    if (n_tensors < 0)
        return clsynth_fail(err, "%s: negative tensor count", path);
    for (int i = 0; i < n_tensors; i++) {
        if (check_tensor_in(path, &tensors[i], i, err))
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[i].name, tensors[j].name) == 0)
                return clsynth_fail(err, "%s: tensor name '%s' used twice", path,
                                    tensors[i].name);
    }
    size_t clen = config ? strlen(config) : 0;
    if (clen > UINT32_MAX)
        return clsynth_fail(err, "%s: config text too long", path);
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    writer w = {af.f, 0, 0};
    put(&w, MAGIC, sizeof MAGIC);
    put_u32(&w, CLSYNTH_CKPT_VERSION);
    put_u32(&w, (uint32_t)clen);
    put(&w, config ? config : "", clen);
    put_u64(&w, step);
    for (int i = 0; i < 4; i++)
        put_u64(&w, rng ? rng[i] : 0);
    put_u32(&w, (uint32_t)n_tensors);
    for (int i = 0; i < n_tensors; i++) {
        const clsynth_ckpt_tensor_in *t = &tensors[i];
        const char *tag = t->tag ? t->tag : "";
        put_u32(&w, (uint32_t)strlen(t->name));
        put(&w, t->name, strlen(t->name));
        put_u32(&w, (uint32_t)strlen(tag));
        put(&w, tag, strlen(tag));
        put_u32(&w, (uint32_t)t->ndim);
        size_t count = 1;
        for (int d = 0; d < 4; d++) {
            uint32_t s = d < t->ndim ? (uint32_t)t->shape[d] : 1;
            put_u32(&w, s);
            count *= s;
        }
        put_floats(&w, t->data, count);
    }
    uint32_t crc = w.crc;
    put_u32(&w, crc);
    if (w.failed) {
        clsynth_fail(err, "%s: write failed: %s", path, strerror(w.failed));
        clsynth_atomic_abort(&af);
        return -1;
    }
    return clsynth_atomic_commit(&af, err);
}

/* ---- reading ---------------------------------------------------------- */

typedef struct reader {
    const char *path;
    const uint8_t *p;
    size_t left;
    clsynth_err *err;
} reader;

static int need(reader *r, size_t n, const char *field)
{
    if (r->left < n)
        return clsynth_fail(r->err, "%s: truncated: field %s needs %zu bytes, %zu left", r->path,
                            field, n, r->left);
    return 0;
}

static int get_u32(reader *r, uint32_t *v, const char *field)
{
    if (need(r, 4, field))
        return -1;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
         (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return 0;
}

static int get_u64(reader *r, uint64_t *v, const char *field)
{
    uint32_t lo, hi;
    if (get_u32(r, &lo, field) || get_u32(r, &hi, field))
        return -1;
    *v = (uint64_t)hi << 32 | lo;
    return 0;
}

/* A length-prefixed string, bounded by max and by the bytes left. */
static char *get_str(reader *r, uint32_t min, uint32_t max, const char *field)
{
    uint32_t n;
    if (get_u32(r, &n, field))
        return NULL;
    if (n < min || n > max) {
        clsynth_fail(r->err, "%s: field %s: length %u outside %u..%u", r->path, field, n, min,
                     max);
        return NULL;
    }
    if (need(r, n, field))
        return NULL;
    if (memchr(r->p, '\0', n)) {
        clsynth_fail(r->err, "%s: field %s contains a NUL byte", r->path, field);
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        clsynth_fail(r->err, "%s: out of memory for field %s", r->path, field);
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    return s;
}

static int read_file(const char *path, uint8_t **buf, size_t *size, clsynth_err *err)
{
    long long n = 0;
    FILE *f = clsynth_fopen_regular(path, &n, err); /* a directory or FIFO is refused here */
    if (!f)
        return -1;
    if (n < 0 || (unsigned long long)n > SIZE_MAX / 2) {
        fclose(f);
        return clsynth_fail(err, "%s: file size %lld is not usable", path, n);
    }
    *buf = malloc(n ? (size_t)n : 1);
    if (!*buf) {
        fclose(f);
        return clsynth_fail(err, "%s: out of memory for %lld bytes", path, n);
    }
    size_t got = fread(*buf, 1, (size_t)n, f);
    if (got != (size_t)n) {
        int e = ferror(f) ? errno : 0;
        free(*buf);
        fclose(f);
        if (e)
            return clsynth_fail(err, "%s: read failed: %s", path, strerror(e));
        return clsynth_fail(err, "%s: read failed: the file shrank from %lld to %zu bytes while reading", path,
                            n, got);
    }
    fclose(f);
    *size = (size_t)n;
    return 0;
}

static int parse_tensor(reader *r, int i, clsynth_ckpt_tensor *t)
{
    char field[64];
    snprintf(field, sizeof field, "tensor[%d].name", i);
    if (!(t->name = get_str(r, 1, CLSYNTH_CKPT_MAX_NAME, field)))
        return -1;
    snprintf(field, sizeof field, "tensor '%.40s' tag", t->name);
    if (!(t->tag = get_str(r, 0, CLSYNTH_CKPT_MAX_NAME, field)))
        return -1;
    uint32_t ndim;
    snprintf(field, sizeof field, "tensor '%.40s' ndim", t->name);
    if (get_u32(r, &ndim, field))
        return -1;
    if (ndim < 1 || ndim > 4)
        return clsynth_fail(r->err, "%s: field %s = %u outside 1..4", r->path, field, ndim);
    t->ndim = (int)ndim;
    snprintf(field, sizeof field, "tensor '%.40s' shape", t->name);
    size_t count = 1;
    for (int d = 0; d < 4; d++) {
        uint32_t s;
        if (get_u32(r, &s, field))
            return -1;
        if (s < 1 || (d >= t->ndim && s != 1) || s > INT32_MAX)
            return clsynth_fail(r->err, "%s: field %s[%d] = %u invalid for ndim %d", r->path,
                                field, d, s, t->ndim);
        /* bound the element count by the bytes left before multiplying further */
        if (s > r->left / 4 / count)
            return clsynth_fail(r->err, "%s: truncated or corrupt: tensor '%s' shape needs more "
                                        "than the %zu bytes left", r->path, t->name, r->left);
        count *= s;
        t->shape[d] = (int)s;
    }
    snprintf(field, sizeof field, "tensor '%.40s' data", t->name);
    if (need(r, count * 4, field))
        return -1;
    t->count = count;
    t->data = malloc(count * sizeof(float));
    if (!t->data)
        return clsynth_fail(r->err, "%s: out of memory for tensor '%s'", r->path, t->name);
    if (HOST_IS_LE) {
        memcpy(t->data, r->p, count * 4);
    } else {
        for (size_t k = 0; k < count; k++) {
            uint32_t u = (uint32_t)r->p[4 * k] | (uint32_t)r->p[4 * k + 1] << 8 |
                         (uint32_t)r->p[4 * k + 2] << 16 | (uint32_t)r->p[4 * k + 3] << 24;
            memcpy(&t->data[k], &u, 4);
        }
    }
    r->p += count * 4;
    r->left -= count * 4;
    return 0;
}

clsynth_checkpoint *clsynth_checkpoint_load(const char *path, clsynth_err *err)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    if (read_file(path, &buf, &size, err))
        return NULL;
    clsynth_checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->path = malloc(strlen(path) + 1))) {
        free(ck);
        free(buf);
        clsynth_fail(err, "%s: out of memory", path);
        return NULL;
    }
    memcpy(ck->path, path, strlen(path) + 1);
    /* the parser sees everything but the trailing CRC */
    reader r = {path, buf, size >= 4 ? size - 4 : 0, err};
    uint32_t n;
    if (size < sizeof MAGIC + 4) {
        clsynth_fail(err, "%s: truncated: %zu bytes is too short for a checkpoint", path, size);
        goto fail;
    }
    if (memcmp(buf, MAGIC, sizeof MAGIC) != 0) {
        clsynth_fail(err, "%s: field magic: not a clsynth checkpoint (expected \"CLSYNCKP\")",
                     path);
        goto fail;
    }
    r.p += sizeof MAGIC;
    r.left -= sizeof MAGIC;
    if (get_u32(&r, &ck->version, "version"))
        goto fail;
    if (ck->version < CLSYNTH_CKPT_VERSION_MIN || ck->version > CLSYNTH_CKPT_VERSION) {
        clsynth_fail(err, "%s: field version: %u, this build reads versions %u..%u", path,
                     ck->version, CLSYNTH_CKPT_VERSION_MIN, CLSYNTH_CKPT_VERSION);
        goto fail;
    }
    if (!(ck->config = get_str(&r, 0, UINT32_MAX, "config")) ||
        get_u64(&r, &ck->step, "step"))
        goto fail;
    for (int i = 0; i < 4; i++)
        if (get_u64(&r, &ck->rng[i], "rng"))
            goto fail;
    if (get_u32(&r, &n, "n_tensors"))
        goto fail;
    /* each tensor record takes at least 4+1+4+4+16+4 bytes */
    if (n > r.left / 33) {
        clsynth_fail(err, "%s: truncated or corrupt: field n_tensors = %u exceeds what the %zu bytes left "
                     "can hold", path, n, r.left);
        goto fail;
    }
    ck->tensors = calloc(n ? n : 1, sizeof *ck->tensors);
    if (!ck->tensors) {
        clsynth_fail(err, "%s: out of memory", path);
        goto fail;
    }
    ck->n_tensors = (int)n;
    for (int i = 0; i < ck->n_tensors; i++)
        if (parse_tensor(&r, i, &ck->tensors[i]))
            goto fail;
    if (r.left != 0) {
        clsynth_fail(err, "%s: %zu unexpected bytes after the last tensor", path, r.left);
        goto fail;
    }
    if (size < 4) {
        clsynth_fail(err, "%s: truncated: no checksum", path);
        goto fail;
    }
    uint32_t stored = (uint32_t)buf[size - 4] | (uint32_t)buf[size - 3] << 8 |
                      (uint32_t)buf[size - 2] << 16 | (uint32_t)buf[size - 1] << 24;
    uint32_t actual = clsynth_crc32(0, buf, size - 4);
    if (stored != actual) {
        clsynth_fail(err, "%s: field checksum: stored CRC-32 %08x, computed %08x (corrupt file)",
                     path, stored, actual);
        goto fail;
    }
    for (int i = 0; i < ck->n_tensors; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(ck->tensors[i].name, ck->tensors[j].name) == 0) {
                clsynth_fail(err, "%s: tensor name '%s' appears twice", path,
                             ck->tensors[i].name);
                goto fail;
            }
    free(buf);
    return ck;
fail:
    free(buf);
    clsynth_checkpoint_free(ck);
    return NULL;
}

int clsynth_checkpoint_peek(const char *path, clsynth_ckpt_info *info, clsynth_err *err)
{
    memset(info, 0, sizeof *info);
    long long size = 0;
    FILE *f = clsynth_fopen_regular(path, &size, err);
    if (!f)
        return -1;
    uint8_t head[16];
    int rc = -1;
    if (fread(head, 1, sizeof head, f) != sizeof head) {
        clsynth_fail(err, "%s: truncated: %lld bytes is too short for a checkpoint", path, size);
        goto done;
    }
    if (memcmp(head, MAGIC, sizeof MAGIC) != 0) {
        clsynth_fail(err, "%s: field magic: not a clsynth checkpoint (expected \"CLSYNCKP\")", path);
        goto done;
    }
    info->version = (uint32_t)head[8] | (uint32_t)head[9] << 8 | (uint32_t)head[10] << 16 |
                    (uint32_t)head[11] << 24;
    if (info->version < CLSYNTH_CKPT_VERSION_MIN || info->version > CLSYNTH_CKPT_VERSION) {
        clsynth_fail(err, "%s: field version: %u, this build reads versions %u..%u", path, info->version,
                     CLSYNTH_CKPT_VERSION_MIN, CLSYNTH_CKPT_VERSION);
        goto done;
    }
    uint32_t clen = (uint32_t)head[12] | (uint32_t)head[13] << 8 | (uint32_t)head[14] << 16 |
                    (uint32_t)head[15] << 24;
    if ((long long)clen > size - 16 - 8) {
        clsynth_fail(err, "%s: truncated or corrupt: config length %u exceeds the file", path, clen);
        goto done;
    }
    info->config = malloc((size_t)clen + 1);
    uint8_t st[8];
    if (!info->config) {
        clsynth_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (fread(info->config, 1, clen, f) != clen || fread(st, 1, 8, f) != 8) {
        clsynth_fail(err, "%s: truncated: cannot read the config and step", path);
        goto done;
    }
    info->config[clen] = '\0';
    if (memchr(info->config, '\0', clen)) {
        clsynth_fail(err, "%s: field config contains a NUL byte", path);
        goto done;
    }
    info->step = 0;
    for (int i = 7; i >= 0; i--)
        info->step = info->step << 8 | st[i];
    rc = 0;
done:
    fclose(f);
    if (rc)
        clsynth_ckpt_info_free(info);
    return rc;
}

void clsynth_ckpt_info_free(clsynth_ckpt_info *info)
{
    free(info->config);
    info->config = NULL;
}

void clsynth_checkpoint_free(clsynth_checkpoint *ck)
{
    if (!ck)
        return;
    for (int i = 0; ck->tensors && i < ck->n_tensors; i++) {
        free(ck->tensors[i].name);
        free(ck->tensors[i].tag);
        free(ck->tensors[i].data);
    }
    free(ck->tensors);
    free(ck->config);
    free(ck->path);
    free(ck);
}

const clsynth_ckpt_tensor *clsynth_checkpoint_find(const clsynth_checkpoint *ck,
                                                   const char *name)
{
    for (int i = 0; i < ck->n_tensors; i++)
        if (strcmp(ck->tensors[i].name, name) == 0)
            return &ck->tensors[i];
    return NULL;
}

static void shape_str(char *buf, size_t cap, int ndim, const int *shape)
{
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? ", %d" : "%d", shape[d]);
    if (k < cap)
        snprintf(buf + k, cap - k, ")");
}

int clsynth_checkpoint_expect(const clsynth_checkpoint *ck, const char *name, int ndim,
                              const int *shape, const clsynth_ckpt_tensor **out,
                              clsynth_err *err)
{
    char want[96], got[96];
    shape_str(want, sizeof want, ndim, shape);
    const clsynth_ckpt_tensor *t = clsynth_checkpoint_find(ck, name);
    if (!t)
        return clsynth_fail(err, "%s: tensor '%s' %s missing", ck->path, name, want);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        shape_str(got, sizeof got, t->ndim, t->shape);
        return clsynth_fail(err, "%s: tensor '%s': expected shape %s, found %s", ck->path, name,
                            want, got);
    }
    if (out)
        *out = t;
    return 0;
}

int clsynth_checkpoint_config_get(const clsynth_checkpoint *ck, const char *key, char *buf,
                                  size_t cap)
{
    size_t kl = strlen(key);
    for (const char *line = ck->config; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > kl && strncmp(line, key, kl) == 0 && line[kl] == '=') {
            size_t vl = len - kl - 1;
            if (vl >= cap)
                return -1;
            memcpy(buf, line + kl + 1, vl);
            buf[vl] = '\0';
            return 0;
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}
