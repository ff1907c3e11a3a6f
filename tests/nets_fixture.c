/* Fixtures of the nets/ tests (nets_fixture.h). */
#include "nets_fixture.h"

#include <stdlib.h>

#include <check.h>

#include "testutil.h"

void clsynth_test_tiny_options(clsynth_options *o, int crop)
{
    clsynth_options_defaults(o);
    o->data.label_nc = CLSYNTH_TEST_LABEL_NC;
    o->data.crop_size = crop;
    o->data.load_size = crop;
    o->data.aspect_ratio = 1.0f;
    o->contain_dontcare_label = 0;
    o->ngf = 4;
    o->ndf = 4;
    o->nef = 4;
    o->z_dim = 8;
    o->nhidden = 8;
    o->batchSize = 2;
    o->seed = 7;
}

void clsynth_test_scene_make(clsynth_test_scene *s, int n, int h, int w)
{
    static const float colors[CLSYNTH_TEST_LABEL_NC][3] = {
        { 0.3f, 0.5f, 0.9f }, { -0.4f, -0.4f, -0.3f }, { 0.1f, 0.7f, -0.5f }, { 0.9f, -0.6f, -0.2f }
    };
    s->n = n;
    s->h = h;
    s->w = w;
    size_t hw = (size_t)h * w;
    s->labels = calloc((size_t)n * hw, sizeof(float));
    s->edges = calloc((size_t)n * hw, sizeof(float));
    s->images = calloc((size_t)n * 3 * hw, sizeof(float));
    int *inst = calloc(hw, sizeof(int));
    for (int b = 0; b < n; b++) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int lab = y < h / 3 ? 0 : y > (2 * h) / 3 ? 1 : 2; /* sky, road, vegetation */
                int id = lab;
                int x0 = (b == 0 ? w / 5 : w / 2), x1 = x0 + w / 4;
                if (x >= x0 && x < x1 && y >= h / 2 && y < h - 2) {
                    lab = 3; /* car */
                    id = 10 + b;
                }
                s->labels[b * hw + y * w + x] = (float)lab;
                inst[y * w + x] = id;
                for (int c = 0; c < 3; c++)
                    s->images[(b * 3 + c) * hw + y * w + x] =
                        colors[lab][c] + 0.2f * ((float)x / (float)w - 0.5f) * (c == b ? 1.0f : -1.0f);
            }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int id = inst[y * w + x];
                int e = (x > 0 && inst[y * w + x - 1] != id) || (x + 1 < w && inst[y * w + x + 1] != id) ||
                        (y > 0 && inst[(y - 1) * w + x] != id) || (y + 1 < h && inst[(y + 1) * w + x] != id);
                s->edges[b * hw + y * w + x] = (float)e;
            }
    }
    free(inst);
}

void clsynth_test_scene_free(clsynth_test_scene *s)
{
    free(s->labels);
    free(s->edges);
    free(s->images);
}

void clsynth_test_scene_tensors(clsynth_ctx *ctx, clsynth_model *m, const clsynth_test_scene *s, clsynth_tensor **seg, clsynth_tensor **real)
{
    clsynth_tensor *lab = clsynth_tensor_from_host(ctx, "labels", s->n, 1, s->h, s->w, s->labels);
    clsynth_tensor *edg = clsynth_tensor_from_host(ctx, "edges", s->n, 1, s->h, s->w, s->edges);
    *seg = clsynth_model_seg(ctx, m, lab, edg);
    ck_assert_msg(*seg != NULL, "seg: %s", ctx->err.msg);
    clsynth_tensor_keep(ctx, *seg);
    *real = clsynth_tensor_new_persistent(ctx, "real", s->n, 3, s->h, s->w);
    ck_assert_msg(*real && clsynth_tensor_upload(ctx, *real, s->images) == 0, "real: %s", ctx->err.msg);
    clsynth_release_activations(ctx);
}

clsynth_model *clsynth_test_model(clsynth_ctx *ctx, const clsynth_options *o)
{
    clsynth_err err;
    clsynth_model *m = clsynth_model_create(ctx, o, &err);
    ck_assert_msg(m != NULL, "model: %s", err.msg);
    return m;
}

float *clsynth_test_download_group(clsynth_ctx *ctx, clsynth_param_group *g)
{
    return clsynth_test_download(ctx, g->flat_data);
}

void clsynth_test_assert_shape(clsynth_ctx *ctx, const clsynth_tensor *t, int n, int c, int h, int w, const char *what)
{
    ck_assert_msg(t != NULL, "%s missing: %s", what, ctx->err.msg);
    ck_assert_msg(t->n == n && t->c == c && t->h == h && t->w == w, "%s: (%d, %d, %d, %d), expected (%d, %d, %d, %d)",
                  what, t->n, t->c, t->h, t->w, n, c, h, w);
}

void clsynth_test_run_steps(clsynth_ctx *ctx, clsynth_model *m, clsynth_tensor *seg, clsynth_tensor *real, int k)
{
    for (int i = 0; i < k; i++) {
        clsynth_losses l;
        ck_assert_msg(clsynth_train_step(ctx, m, seg, real, &l) == 0, "step: %s", ctx->err.msg);
    }
}
