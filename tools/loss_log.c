#include "tools/loss_log.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clcore/fsutil.h"
#include "io/atomic.h"

static const char HEADER[] = "iteration,epoch,seconds,G_GAN,G_GAN_Feat,G_VGG,KLD,D_real,D_fake\n";

static int write_whole(const char *path, const char *text, size_t len, clsynth_err *err)
{
    clsynth_atomic_file af;
    if (clsynth_atomic_open(&af, path, err))
        return -1;
    if (len && fwrite(text, 1, len, af.f) != len) {
        clsynth_fail(err, "%s: write failed: %s", path, strerror(errno));
        clsynth_atomic_abort(&af);
        return -1;
    }
    return clsynth_atomic_commit(&af, err);
}

/* Reads the whole file (NULL with *missing when it does not exist). */
static char *slurp(const char *path, size_t *len, int *missing, clsynth_err *err)
{
    long long size = 0;
    *missing = 0;
    FILE *f = clsynth_fopen_regular(path, &size, err);
    if (!f) {
        *missing = errno == ENOENT;
        return NULL;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
        fclose(f);
        clsynth_fail(err, "%s: out of memory", path);
        return NULL;
    }
    *len = fread(buf, 1, (size_t)size, f);
    if (ferror(f)) {
        clsynth_fail(err, "%s: read failed: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[*len] = '\0';
    return buf;
}

/* Keeps the header and the complete rows 1..step in increasing order (rows
 * logged after the checkpoint, duplicates of older versions and a line torn
 * by a crash go); returns the kept text's length and counts what went. */
static size_t keep_rows(char *text, size_t len, long step, int *dropped, int *torn, int *no_header,
                        double *last_seconds)
{
    size_t out = 0;
    long last = 0;
    *dropped = *torn = *no_header = 0;
    *last_seconds = 0;
    char *p = text, *end = text + len;
    bool first = true;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        bool keep = false;
        if (!nl) {
            (*torn)++;
        } else if (first && strncmp(p, "iteration,", 10) == 0) {
            keep = true;
        } else {
            char *e;
            long it = strtol(p, &e, 10);
            if (e != p && *e == ',' && it > last && it <= step) {
                keep = true;
                last = it;
                char *s = strchr(e + 1, ','); /* epoch,seconds */
                if (s)
                    *last_seconds = strtod(s + 1, NULL);
            } else {
                (*dropped)++;
            }
        }
        if (first && !(nl && strncmp(p, "iteration,", 10) == 0))
            *no_header = 1;
        first = false;
        if (keep) {
            memmove(text + out, p, n);
            out += n;
        }
        p += n;
    }
    if (len == 0)
        *no_header = 1;
    return out;
}

int clsynth_loss_log_open(clsynth_loss_log *l, const char *run_dir, long step, FILE *msg, clsynth_err *err)
{
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s/losses.csv", run_dir);
    if (step <= 0) {
        if (write_whole(l->path, HEADER, sizeof HEADER - 1, err))
            return -1;
    } else {
        size_t len = 0;
        int missing = 0;
        char *text = slurp(l->path, &len, &missing, err);
        if (!text && !missing)
            return -1;
        if (!text) {
            if (msg)
                fprintf(msg, "%s is missing: a new one starts at iteration %ld\n", l->path, step + 1);
            if (write_whole(l->path, HEADER, sizeof HEADER - 1, err))
                return -1;
        } else {
            int dropped, torn, no_header;
            size_t kept = keep_rows(text, len, step, &dropped, &torn, &no_header, &l->seconds0);
            if (dropped || torn || no_header) {
                size_t hl = no_header ? sizeof HEADER - 1 : 0;
                char *whole = malloc(hl + kept + 1);
                if (!whole) {
                    free(text);
                    return clsynth_fail(err, "%s: out of memory", l->path);
                }
                memcpy(whole, HEADER, hl);
                memcpy(whole + hl, text, kept);
                int rc = write_whole(l->path, whole, hl + kept, err);
                free(whole);
                if (rc) {
                    free(text);
                    return -1;
                }
                if (msg && dropped)
                    fprintf(msg, "%s: dropped %d row%s past iteration %ld (logged after that checkpoint, before the "
                                 "run stopped)\n", l->path, dropped, dropped == 1 ? "" : "s", step);
                if (msg && torn)
                    fprintf(msg, "%s: dropped a last line cut short by a crash\n", l->path);
                if (msg && no_header)
                    fprintf(msg, "%s: restored the missing header line\n", l->path);
            }
            free(text);
        }
    }
    l->f = fopen(l->path, "a");
    if (!l->f)
        return clsynth_fail(err, "%s: cannot open for appending: %s", l->path, strerror(errno));
    if (fseek(l->f, 0, SEEK_END) != 0 || (l->covered_size = ftell(l->f)) < 0) {
        int e = errno;
        fclose(l->f);
        l->f = NULL;
        return clsynth_fail(err, "%s: cannot seek: %s", l->path, strerror(e));
    }
    return 0;
}

void clsynth_loss_log_row(clsynth_loss_log *l, long it, int epoch, double seconds, const clsynth_losses *x)
{
    fprintf(l->f, "%ld,%d,%.3f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", it, epoch, l->seconds0 + seconds, x->G_GAN,
            x->G_GAN_Feat, x->G_VGG, x->KLD, x->D_real, x->D_fake);
}

void clsynth_loss_log_flush(clsynth_loss_log *l)
{
    fflush(l->f); /* a failure shows again at the next sync, which reports it */
}

int clsynth_loss_log_sync(clsynth_loss_log *l, clsynth_err *err)
{
    if (fflush(l->f) != 0 || ferror(l->f))
        return clsynth_fail(err, "%s: write failed: %s", l->path, strerror(errno));
    if (fsync(fileno(l->f)) != 0)
        return clsynth_fail(err, "%s: fsync failed: %s", l->path, strerror(errno));
    return 0;
}

void clsynth_loss_log_checkpointed(clsynth_loss_log *l)
{
    long at = ftell(l->f);
    if (at >= 0)
        l->covered_size = at;
}

int clsynth_loss_log_rollback(clsynth_loss_log *l, clsynth_err *err)
{
    /* Close first: rows still buffered (a full disk fails the flush) must not
     * reach the file after the truncation. */
    fclose(l->f);
    l->f = NULL;
    if (truncate(l->path, (off_t)l->covered_size) != 0)
        return clsynth_fail(err, "%s: cannot drop the rows past the last checkpoint: %s", l->path, strerror(errno));
    l->f = fopen(l->path, "a");
    if (!l->f)
        return clsynth_fail(err, "%s: cannot open for appending: %s", l->path, strerror(errno));
    if (fsync(fileno(l->f)) != 0)
        return clsynth_fail(err, "%s: fsync failed: %s", l->path, strerror(errno));
    return 0;
}

int clsynth_loss_log_close(clsynth_loss_log *l, clsynth_err *err)
{
    if (!l->f)
        return 0;
    int rc = 0;
    if (fflush(l->f) != 0 || fsync(fileno(l->f)) != 0)
        rc = clsynth_fail(err, "%s: write failed: %s", l->path, strerror(errno));
    if (fclose(l->f) != 0 && rc == 0)
        rc = clsynth_fail(err, "%s: close failed: %s", l->path, strerror(errno));
    l->f = NULL;
    return rc;
}
