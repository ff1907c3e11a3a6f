/* Model construction, seg/one-hot, inference and checkpoints. */
#include "nets/model_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/autograd.h"
#include "clcore/comm.h"
#include "clcore/ops.h"
#include "io/checkpoint.h"

/* Declares every parameter and buffer of G (with E) and D. */
static int declare(clsynth_ctx *ctx, clsynth_model *m, const clsynth_options *o, clsynth_err *err)
{
    m->opt = *o;
    m->G = clsynth_group_new(ctx, "G");
    m->D = clsynth_group_new(ctx, "D");
    if (!m->G || !m->D)
        return clsynth_fail(err, "model: %s", ctx->err.msg);
    if (clsynth_generator_make(ctx, m->G, o, &m->gen, err))
        return -1;
    if (o->use_vae && clsynth_encoder_make(ctx, m->G, o, &m->enc, err))
        return -1;
    return clsynth_disc_make(ctx, m->D, o, &m->disc, err);
}

static int check_resolved(const clsynth_options *o, clsynth_err *err)
{
    if (o->data.label_nc <= 0)
        return clsynth_fail(err, "model: --label_nc is %d (resolve it from the dataset first)", o->data.label_nc);
    if (o->data.crop_size <= 0)
        return clsynth_fail(err, "model: --crop_size is %d (resolve it from the dataset first)", o->data.crop_size);
    return clsynth_options_validate(o, err);
}

int clsynth_model_count_params(clsynth_ctx *ctx, const clsynth_options *o, size_t *g, size_t *d, size_t *e,
                               clsynth_err *err)
{
    if (check_resolved(o, err))
        return -1;
    clsynth_model *m = calloc(1, sizeof *m);
    if (!m)
        return clsynth_fail(err, "out of host memory");
    int rc = declare(ctx, m, o, err);
    if (!rc)
        clsynth_model_param_counts(m, g, d, e);
    clsynth_model_free(ctx, m);
    return rc;
}

clsynth_model *clsynth_model_create(clsynth_ctx *ctx, const clsynth_options *o, clsynth_err *err)
{
    if (ctx->failed) {
        clsynth_fail(err, "model: the context has a pending error: %s", ctx->err.msg);
        return NULL;
    }
    if (check_resolved(o, err))
        return NULL;
    clsynth_model *m = calloc(1, sizeof *m);
    if (!m) {
        clsynth_fail(err, "out of host memory");
        return NULL;
    }
    if (declare(ctx, m, o, err))
        goto fail;
    if (clsynth_group_finalize(ctx, m->G) || clsynth_group_finalize(ctx, m->D))
        goto fail_ctx;
    uint64_t seed = (uint64_t)o->seed;
    if (clsynth_init_group(ctx, m->G, seed, CLSYNTH_STREAM_INIT_G) || clsynth_init_group(ctx, m->D, seed, CLSYNTH_STREAM_INIT_D))
        goto fail_ctx;
    clsynth_options_adam_betas(o, &m->G->beta1, &m->G->beta2);
    m->D->beta1 = m->G->beta1;
    m->D->beta2 = m->G->beta2;
    clsynth_model_set_epoch(m, 1);
    if (!o->no_vgg_loss && o->vgg_weights[0]) {
        m->vgg = clsynth_vgg_load(ctx, o->vgg_weights, err);
        if (!m->vgg)
            goto fail;
    } else if (!o->no_vgg_loss) {
        snprintf(m->notice, sizeof m->notice,
                 "VGG loss skipped: no --vgg_weights file (tools/convert_vgg19.py makes one)");
    }
    return m;
fail_ctx:
    clsynth_fail(err, "model: %s", ctx->err.msg);
fail:
    clsynth_model_free(ctx, m);
    return NULL;
}

void clsynth_model_free(clsynth_ctx *ctx, clsynth_model *m)
{
    if (!m)
        return;
    clsynth_sn_set_free(ctx, m->gen.sn);
    clsynth_sn_set_free(ctx, m->enc.sn);
    clsynth_sn_set_free(ctx, m->disc.sn);
    clsynth_group_free(ctx, m->G);
    clsynth_group_free(ctx, m->D);
    clsynth_vgg_free(ctx, m->vgg);
    clsynth_tensor_free(ctx, m->in_seg);
    clsynth_tensor_free(ctx, m->in_real);
    free(m);
}

const clsynth_options *clsynth_model_options(const clsynth_model *m) { return &m->opt; }

clsynth_param_group *clsynth_model_group(clsynth_model *m, const char *which)
{
    if (strcmp(which, "G") == 0)
        return m->G;
    if (strcmp(which, "D") == 0)
        return m->D;
    return NULL;
}

void clsynth_model_param_counts(const clsynth_model *m, size_t *g, size_t *d, size_t *e)
{
    size_t ng = 0, ne = 0, nd = 0;
    for (int i = 0; i < m->G->n_params; i++) {
        if (strncmp(m->G->params[i]->name, "G.E.", 4) == 0)
            ne += m->G->params[i]->numel;
        else
            ng += m->G->params[i]->numel;
    }
    for (int i = 0; i < m->D->n_params; i++)
        nd += m->D->params[i]->numel;
    if (g)
        *g = ng;
    if (d)
        *d = nd;
    if (e)
        *e = ne;
}

const char *clsynth_model_notice(const clsynth_model *m) { return m->notice; }

void clsynth_model_set_epoch(clsynth_model *m, int epoch)
{
    m->epoch = epoch;
    clsynth_options_lr(&m->opt, epoch, &m->G->lr, &m->D->lr);
}

int clsynth_model_epoch(const clsynth_model *m) { return m->epoch; }

clsynth_tensor *clsynth_model_seg(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *labels, clsynth_tensor *edges)
{
    if (ctx->failed || !labels)
        return NULL;
    const clsynth_options *o = &m->opt;
    int nc = o->data.label_nc, dontcare = clsynth_options_dontcare(o);
    if (labels->c != 1) {
        char d[96];
        clsynth_ctx_fail(ctx, "model seg: labels %s must have one channel", clsynth_tensor_describe(labels, d, sizeof d));
        return NULL;
    }
    /* (N, label_nc [+1], H, W) */
    clsynth_tensor *onehot = clsynth_one_hot(ctx, labels, nc, nc + dontcare, o->data.dontcare_value,
                                             dontcare ? nc : -1);
    if (o->data.no_instance)
        return onehot;
    if (!edges) {
        clsynth_ctx_fail(ctx, "model seg: instance edges are needed (the model has an edge channel; "
                              "--no_instance removes it)");
        return NULL;
    }
    clsynth_tensor *parts[2] = { onehot, edges };
    return clsynth_concat(ctx, parts, 2); /* (N, semantic_nc, H, W) */
}

clsynth_tensor *clsynth_model_z(const clsynth_forward_mode *f, clsynth_model *m, int n, clsynth_tensor *real, clsynth_tensor **mu,
                             clsynth_tensor **logvar)
{
    clsynth_ctx *ctx = f->ctx;
    if (mu)
        *mu = NULL;
    if (logvar)
        *logvar = NULL;
    if (!m->opt.use_vae)
        return NULL;
    /* data-parallel: rank r of K draws stream counter*K + r, so ranks never share
     * noise (one process: the counter itself, as before) */
    uint64_t seed = (uint64_t)m->opt.seed,
             stream = CLSYNTH_STREAM_NOISE + m->rng_counter++ * (uint64_t)clsynth_comm_size(ctx) +
                      (uint64_t)clsynth_comm_rank(ctx);
    if (!real) {
        clsynth_tensor *z = clsynth_tensor_new(ctx, "z", n, m->opt.z_dim, 1, 1); /* (N, z_dim, 1, 1) */
        if (!z || clsynth_rand_normal(ctx, z, 0.0f, 1.0f, seed, stream))
            return NULL;
        return z;
    }
    clsynth_tensor *mu_, *lv_;
    if (clsynth_encoder_forward(f, &m->enc, real, &mu_, &lv_))
        return NULL;
    if (mu)
        *mu = mu_;
    if (logvar)
        *logvar = lv_;
    return clsynth_reparameterize(ctx, mu_, lv_, seed, stream); /* (N, z_dim, 1, 1) */
}

clsynth_tensor *clsynth_model_generate_z(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg,
                                         clsynth_tensor *real, clsynth_tensor **z_out, clsynth_tensor **mu,
                                         clsynth_tensor **logvar)
{
    if (z_out)
        *z_out = NULL;
    if (ctx->failed || !seg)
        return NULL;
    clsynth_forward_mode f = { ctx, false, false, NULL, false };
    clsynth_tensor *z = clsynth_model_z(&f, m, seg->n, real, mu, logvar);
    if (m->opt.use_vae && !z)
        return NULL;
    if (z_out)
        *z_out = z;
    return clsynth_generator_forward(&f, &m->gen, seg, z);
}

clsynth_tensor *clsynth_model_generate(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real)
{
    return clsynth_model_generate_z(ctx, m, seg, real, NULL, NULL, NULL);
}

void clsynth_model_set_noise_seed(clsynth_model *m, long seed)
{
    m->opt.seed = seed;
    m->rng_counter = 0;
}

/* ---- checkpoints ---- */

typedef struct ckpt_list {
    clsynth_ckpt_tensor_in *t;
    int n, cap;
    float **owned;
    int n_owned;
} ckpt_list;

static int list_add(ckpt_list *l, const char *name, const char *tag, int ndim, const int *shape,
                    const float *data)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        clsynth_ckpt_tensor_in *g = realloc(l->t, sizeof *g * (size_t)cap);
        if (!g)
            return -1;
        l->t = g;
        l->cap = cap;
    }
    clsynth_ckpt_tensor_in *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    t->name = name;
    t->tag = tag;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->data = data;
    return 0;
}

static float *download_new(clsynth_ctx *ctx, ckpt_list *l, const clsynth_tensor *t)
{
    float *h = malloc(t->numel * sizeof *h);
    if (!h)
        return NULL;
    float **g = realloc(l->owned, sizeof *g * (size_t)(l->n_owned + 1));
    if (!g) {
        free(h);
        return NULL;
    }
    l->owned = g;
    l->owned[l->n_owned++] = h;
    if (clsynth_tensor_download(ctx, t, h))
        return NULL;
    return h;
}

static int canonical_in_place(const clsynth_param_group *g, float *a)
{
    float *tmp = malloc(g->total * sizeof *tmp);
    if (!tmp)
        return -1;
    clsynth_group_canonical(g, a, tmp, true);
    memcpy(a, tmp, g->total * sizeof *tmp);
    free(tmp);
    return 0;
}

static int add_group(clsynth_ctx *ctx, ckpt_list *l, clsynth_param_group *g, char names[][64])
{
    /* params: views into one download of the flat buffer */
    float *flat = download_new(ctx, l, g->flat_data);
    float *m = download_new(ctx, l, g->adam_m);
    float *v = download_new(ctx, l, g->adam_v);
    if (!flat || !m || !v)
        return -1;
    /* the moments in the parameters' declaration order (packed parameters are
     * stored elsewhere in the flat buffers: clsynth_group_pack), so a file does
     * not depend on which parameters a build packs */
    if (g->n_packs && (canonical_in_place(g, m) || canonical_in_place(g, v)))
        return -1;
    for (int i = 0; i < g->n_params; i++) {
        clsynth_tensor *p = g->params[i];
        int shape[4] = { p->n, p->c, p->h, p->w };
        if (list_add(l, p->name, "param", 4, shape, flat + p->off))
            return -1;
    }
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_tensor *b = g->buffers[i];
        int shape[4] = { b->n, b->c, b->h, b->w };
        float *h = download_new(ctx, l, b);
        if (!h || list_add(l, b->name, "buffer", 4, shape, h))
            return -1;
    }
    int total[1] = { (int)g->total };
    snprintf(names[0], 64, "%s.adam_m", g->name);
    snprintf(names[1], 64, "%s.adam_v", g->name);
    if (list_add(l, names[0], "adam_m", 1, total, m) || list_add(l, names[1], "adam_v", 1, total, v))
        return -1;
    return 0;
}

int clsynth_model_save(clsynth_ctx *ctx, clsynth_model *m, const char *path, uint64_t step, int epoch,
                       const uint64_t rng[4], clsynth_err *err)
{
    if (ctx->failed)
        return clsynth_fail(err, "save '%s': the context has a pending error: %s", path, ctx->err.msg);
    ckpt_list l = { 0 };
    char names[4][64];
    char *opts = clsynth_options_to_text(&m->opt);
    char *config = NULL;
    int rc = -1;
    if (!opts) {
        clsynth_fail(err, "out of host memory");
        goto done;
    }
    size_t cap = strlen(opts) + 512;
    config = malloc(cap);
    if (!config) {
        clsynth_fail(err, "out of host memory");
        goto done;
    }
    snprintf(config, cap, "%sstate.epoch=%d\nstate.rng_counter=%" PRIu64 "\nstate.G.adam_step=%ld\n"
                          "state.D.adam_step=%ld\n",
             opts, epoch, m->rng_counter, m->G->step, m->D->step);
    if (add_group(ctx, &l, m->G, names) || add_group(ctx, &l, m->D, names + 2)) {
        clsynth_fail(err, "save '%s': %s", path, ctx->failed ? ctx->err.msg : "out of host memory");
        goto done;
    }
    const uint64_t zero[4] = { 0, 0, 0, 0 };
    rc = clsynth_checkpoint_save(path, config, step, rng ? rng : zero, l.t, l.n, err);
done:
    for (int i = 0; i < l.n_owned; i++)
        free(l.owned[i]);
    free(l.owned);
    free(l.t);
    free(opts);
    free(config);
    return rc;
}

static int config_long(const clsynth_checkpoint *ck, const char *key, long long *out, clsynth_err *err)
{
    char buf[64];
    if (clsynth_checkpoint_config_get(ck, key, buf, sizeof buf))
        return clsynth_fail(err, "checkpoint '%s': config has no %s", ck->path, key);
    char *end;
    *out = strtoll(buf, &end, 10);
    if (end == buf || *end)
        return clsynth_fail(err, "checkpoint '%s': %s='%s' is not an integer", ck->path, key, buf);
    return 0;
}

int clsynth_model_checkpoint_options(const char *path, clsynth_options *o, clsynth_err *err)
{
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, err);
    if (!ck)
        return -1;
    clsynth_options_defaults(o);
    int rc = clsynth_options_from_text(o, ck->config, err);
    if (rc)
        clsynth_wrap(err, "checkpoint '%s'", path);
    clsynth_checkpoint_free(ck);
    return rc;
}

/* A checkpoint holding NaN or Inf cannot be trained on or synthesized from:
 * names the tensor and the first such element. */
static int check_finite(const clsynth_ckpt_tensor *t, clsynth_err *err)
{
    for (size_t k = 0; k < t->count; k++) {
        if (isfinite(t->data[k]))
            continue;
        size_t r = k, idx[4];
        for (int d = 3; d >= 0; d--) {
            idx[d] = r % (size_t)t->shape[d];
            r /= (size_t)t->shape[d];
        }
        return clsynth_fail(err, "tensor '%s' (%s) holds %s at element %zu (index %zu,%zu,%zu,%zu): a "
                                 "checkpoint with non-finite values cannot be used",
                            t->name, t->tag, isnan(t->data[k]) ? "NaN" : "Inf", k, idx[0], idx[1], idx[2], idx[3]);
    }
    return 0;
}


/* A version-1 file's spectral-normalized weight that this build keeps plain
 * (the CC blocks' pointwise convs): sigma = (u/|u|) . W v, v = normalize(W^T u),
 * what that build's eval forward divided the weight by. */
static int v1_sigma(const clsynth_checkpoint *ck, const clsynth_tensor *p, const clsynth_ckpt_tensor *w,
                    const clsynth_ckpt_tensor *u, double *sigma, clsynth_err *err)
{
    const size_t cout = (size_t)p->n, K = p->numel / cout;
    if (u->count != cout)
        return clsynth_fail(err, "%s: tensor '%s' has %zu elements, its weight %zu rows", ck->path, u->name, u->count,
                            cout);
    double nu = 0, nv = 0, s = 0;
    for (size_t o = 0; o < cout; o++)
        nu += (double)u->data[o] * u->data[o];
    double *v = calloc(K, sizeof *v);
    if (!v)
        return clsynth_fail(err, "out of host memory");
    for (size_t o = 0; o < cout; o++)
        for (size_t k = 0; k < K; k++)
            v[k] += (double)w->data[o * K + k] * u->data[o];
    for (size_t k = 0; k < K; k++)
        nv += v[k] * v[k];
    nu = fmax(sqrt(nu), 1e-12);
    nv = fmax(sqrt(nv), 1e-12);
    for (size_t o = 0; o < cout; o++) {
        double row = 0;
        for (size_t k = 0; k < K; k++)
            row += (double)w->data[o * K + k] * v[k];
        s += u->data[o] / nu * row / nv;
    }
    free(v);
    if (!(s > 0) || !isfinite(s))
        return clsynth_fail(err, "%s: tensor '%s': sigma %g from its u", ck->path, w->name, s);
    *sigma = s;
    return 0;
}

/* Copies checkpoint tensors into a group (host staging, then uploads).
 * Version 1 files have no spectral-norm v: it is recomputed from u (what
 * version-1 builds did in every forward); their weights that had spectral
 * norm where this build has none are loaded as w / sigma. */
static int load_group(clsynth_ctx *ctx, clsynth_param_group *g, const clsynth_checkpoint *ck, long long adam_step,
                      clsynth_err *err)
{
    float *flat = malloc(g->total * sizeof *flat);
    bool *redo_v = calloc((size_t)g->n_buffers + 1, sizeof *redo_v);
    if (!flat || !redo_v) {
        free(flat);
        free(redo_v);
        return clsynth_fail(err, "out of host memory");
    }
    int rc = -1;
    const bool v1 = ck->version == 1;
    const clsynth_ckpt_tensor *t;
    char name[CLSYNTH_CKPT_MAX_NAME + 1];
    for (int i = 0; i < g->n_params; i++) {
        clsynth_tensor *p = g->params[i];
        int shape[4] = { p->n, p->c, p->h, p->w };
        if (clsynth_checkpoint_expect(ck, p->name, 4, shape, &t, err) || check_finite(t, err))
            goto done;
        memcpy(flat + p->off, t->data, p->numel * sizeof *flat);
        size_t n = strlen(p->name);
        if (!v1 || n < 2 || strcmp(p->name + n - 2, ".w") != 0 || n >= sizeof name)
            continue;
        memcpy(name, p->name, n + 1);
        name[n - 1] = 'u';
        const clsynth_ckpt_tensor *u = clsynth_checkpoint_find(ck, name);
        if (u && !clsynth_group_find(g, name)) {
            double sigma = 1;
            if (v1_sigma(ck, p, t, u, &sigma, err))
                goto done;
            for (size_t k = 0; k < p->numel; k++)
                flat[p->off + k] = (float)(t->data[k] / sigma);
        }
    }
    for (int i = 0; i < g->n_buffers; i++) {
        clsynth_tensor *b = g->buffers[i];
        int shape[4] = { b->n, b->c, b->h, b->w };
        size_t n = strlen(b->name);
        if (v1 && n >= 2 && strcmp(b->name + n - 2, ".v") == 0 && !clsynth_checkpoint_find(ck, b->name)) {
            redo_v[i] = true;
            continue;
        }
        if (clsynth_checkpoint_expect(ck, b->name, 4, shape, &t, err) || check_finite(t, err))
            goto done;
        if (clsynth_tensor_upload(ctx, b, t->data))
            goto cl_fail;
    }
    if (clsynth_tensor_upload(ctx, g->flat_data, flat) || clsynth_init_spectral_v(ctx, g, redo_v))
        goto cl_fail;
    /* Adam moments; a file without them (an import) starts Adam afresh, which
     * only a file whose Adam has not stepped may ask for */
    int total[1] = { (int)g->total };
    const char *moment[2] = { "adam_m", "adam_v" };
    clsynth_tensor *dst[2] = { g->adam_m, g->adam_v };
    for (int k = 0; k < 2; k++) {
        snprintf(name, sizeof name, "%s.%s", g->name, moment[k]);
        if (!clsynth_checkpoint_find(ck, name) && adam_step == 0) {
            if (clsynth_tensor_fill(ctx, dst[k], 0.0f))
                goto cl_fail;
            continue;
        }
        if (clsynth_checkpoint_expect(ck, name, 1, total, &t, err) || check_finite(t, err))
            goto done;
        /* the file holds them in declaration order (see add_group); flat is free again */
        clsynth_group_canonical(g, t->data, flat, false);
        if (clsynth_tensor_upload(ctx, dst[k], flat))
            goto cl_fail;
    }
    rc = 0;
    goto done;
cl_fail:
    clsynth_fail(err, "%s", ctx->err.msg);
done:
    free(flat);
    free(redo_v);
    return rc;
}

int clsynth_model_load(clsynth_ctx *ctx, clsynth_model *m, const char *path, uint64_t *step, int *epoch,
                       uint64_t rng[4], clsynth_err *err)
{
    clsynth_checkpoint *ck = clsynth_checkpoint_load(path, err);
    if (!ck)
        return -1;
    int rc = -1;
    clsynth_options *theirs = malloc(sizeof *theirs);
    if (!theirs) {
        clsynth_fail(err, "out of host memory");
        goto done;
    }
    clsynth_options_defaults(theirs);
    if (clsynth_options_from_text(theirs, ck->config, err) ||
        clsynth_options_same_variant(&m->opt, theirs, err)) {
        clsynth_wrap(err, "checkpoint '%s' is of another model variant", path);
        goto done;
    }
    long long ep = 0, counter = 0, gstep = 0, dstep = 0;
    if (config_long(ck, "state.epoch", &ep, err) || config_long(ck, "state.rng_counter", &counter, err) ||
        config_long(ck, "state.G.adam_step", &gstep, err) || config_long(ck, "state.D.adam_step", &dstep, err))
        goto done;
    if (load_group(ctx, m->G, ck, gstep, err) || load_group(ctx, m->D, ck, dstep, err)) {
        clsynth_wrap(err, "checkpoint '%s'", path);
        goto done;
    }
    m->opt.seed = theirs->seed; /* the run's noise seed continues with its counter */
    m->G->step = (long)gstep;
    m->D->step = (long)dstep;
    m->rng_counter = (uint64_t)counter;
    clsynth_model_set_epoch(m, (int)ep);
    if (step)
        *step = ck->step;
    if (epoch)
        *epoch = (int)ep;
    if (rng)
        memcpy(rng, ck->rng, sizeof ck->rng);
    rc = 0;
done:
    free(theirs);
    clsynth_checkpoint_free(ck);
    return rc;
}
