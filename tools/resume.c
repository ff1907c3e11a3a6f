#include "tools/resume.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clcore/fsutil.h"
#include "io/checkpoint.h"
#include "tools/run_dir.h"

/* An error, not a reason to skip: a file that cannot be read at all (the user
 * can fix that) or one of another model variant (the flags differ). */
static int check_usable(const clsynth_model *m, const clsynth_run_ckpt *c, clsynth_err *err)
{
    FILE *f = clsynth_fopen_regular(c->path, NULL, err);
    if (!f)
        return clsynth_wrap(err, "cannot resume");
    fclose(f);
    clsynth_ckpt_info info;
    clsynth_err why;
    if (clsynth_checkpoint_peek(c->path, &info, &why))
        return 1; /* damaged: the full load will say how */
    clsynth_options *theirs = malloc(sizeof *theirs);
    if (!theirs) {
        clsynth_ckpt_info_free(&info);
        return clsynth_fail(err, "out of host memory");
    }
    clsynth_options_defaults(theirs);
    int rc = 0;
    if (clsynth_options_from_text(theirs, info.config, &why) == 0 &&
        clsynth_options_same_variant(clsynth_model_options(m), theirs, &why) != 0)
        rc = clsynth_fail(err, "cannot resume from %s: it holds another model variant (%s); train with the run's "
                               "model flags (its options.txt), or start a new run with --overwrite",
                          c->path, why.msg);
    free(theirs);
    clsynth_ckpt_info_free(&info);
    return rc;
}

static bool same_inode(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int load(clsynth_ctx *ctx, clsynth_model *m, const clsynth_run_ckpt *c, clsynth_resume_point *r,
                clsynth_err *err)
{
    uint64_t step = 0;
    int epoch = 1;
    if (clsynth_model_load(ctx, m, c->path, &step, &epoch, NULL, err))
        return -1;
    snprintf(r->path, sizeof r->path, "%s", c->path);
    r->step = (long)step;
    r->epoch = epoch;
    return 0;
}

/* Appends "; <text>" to a list of reasons. */
static void add_reason(char *buf, size_t len, const char *text)
{
    size_t k = strlen(buf);
    if (k < len)
        snprintf(buf + k, len - k, "%s%s", k ? "; " : "", text);
}

/* Newest first: the first candidate that loads. */
static int load_newest(clsynth_ctx *ctx, clsynth_model *m, const char *run_dir, const clsynth_run_ckpts *l, FILE *msg,
                       clsynth_resume_point *r, clsynth_err *err)
{
    char reasons[1600] = "", latest_why[700] = "";
    bool had_latest = false;
    int failed[64], n_failed = 0;
    for (int i = 0; i < l->n; i++) {
        const clsynth_run_ckpt *c = &l->v[i];
        had_latest |= c->is_latest;
        int dup = -1;
        for (int k = 0; k < n_failed && dup < 0; k++)
            if (same_inode(c->path, l->v[failed[k]].path))
                dup = failed[k];
        if (dup >= 0) { /* a hard link of a file that did not load */
            if (msg)
                fprintf(msg, "skipping %s: the same file as %s\n", c->name, l->v[dup].name);
            continue;
        }
        int u = check_usable(m, c, err);
        if (u < 0)
            return -1;
        clsynth_err why;
        if (load(ctx, m, c, r, &why) == 0) {
            if (ctx->failed)
                return clsynth_fail(err, "%s", ctx->err.msg);
            if (!c->is_latest && msg) {
                if (had_latest)
                    fprintf(msg, "latest.ckpt was skipped: %s\n", latest_why);
                else
                    fprintf(msg, "%s/latest.ckpt is missing\n", run_dir);
                fprintf(msg, "falling back to the newest numbered checkpoint that loads\n");
            }
            return 0;
        }
        if (ctx->failed) /* a device error, not the file's */
            return clsynth_fail(err, "%s", why.msg);
        if (c->is_latest)
            snprintf(latest_why, sizeof latest_why, "%s", why.msg);
        else if (msg)
            fprintf(msg, "skipping %s: %s\n", c->name, why.msg);
        add_reason(reasons, sizeof reasons, why.msg);
        if (n_failed < (int)(sizeof failed / sizeof failed[0]))
            failed[n_failed++] = i;
    }
    return clsynth_fail(err, "--continue_train: no checkpoint in %s loads (%s). A run that holds checkpoints is never "
                             "restarted from scratch: fix or remove them, or start over with --overwrite (without "
                             "--continue_train), which moves the run aside",
                        run_dir, reasons);
}

int clsynth_resume_load(clsynth_ctx *ctx, clsynth_model *m, const char *run_dir, const char *which, FILE *msg,
                        clsynth_resume_point *r, clsynth_err *err)
{
    memset(r, 0, sizeof *r);
    r->epoch = 1;
    long wanted;
    if (clsynth_run_parse_which(which, &wanted, err))
        return -1;
    clsynth_run_ckpts l;
    if (clsynth_run_ckpts_list(run_dir, &l, err))
        return -1;
    int rc = 0;
    if (l.n == 0) {
        if (wanted >= 0)
            rc = clsynth_fail(err, "--which_epoch %ld: %s holds no checkpoint", wanted, run_dir);
        else if (msg)
            fprintf(msg, "--continue_train: no checkpoint in %s yet: starting a new run\n", run_dir);
        clsynth_run_ckpts_free(&l);
        return rc;
    }
    if (wanted >= 0) {
        int i = clsynth_run_ckpts_select(&l, run_dir, which, err);
        if (i < 0 || check_usable(m, &l.v[i], err) < 0)
            rc = -1;
        else if (load(ctx, m, &l.v[i], r, err))
            rc = clsynth_wrap(err, "--which_epoch %ld: cannot resume", wanted);
    } else {
        rc = load_newest(ctx, m, run_dir, &l, msg, r, err);
    }
    /* later files than the resumed one (an older --which_epoch, or a latest.ckpt that did not load) */
    bool later = false;
    for (int i = 0; rc == 0 && i < l.n; i++)
        later |= !same_inode(l.v[i].path, r->path) && (l.v[i].is_latest ? l.v[i].step != r->step : l.v[i].step > r->step);
    clsynth_run_ckpts_free(&l);
    if (rc == 0 && msg)
        fprintf(msg, "resuming from %s at iteration %ld (epoch %d)\n", r->path, r->step, r->epoch);
    if (rc == 0 && later)
        rc = clsynth_run_supersede_after(run_dir, r->step, r->path, msg, err);
    return rc;
}
