/* The op sweep (after ggml's test-backend-ops): every registered kernel
 * descriptor with a harness x its test shapes x {the device's limits, an
 * emulated small device (48 items, 8 KiB)} x a sample of legal tunable candidates (the
 * defaults always among them), forward and - for kernels that run in the
 * backward - the input gradients, against the plain-C references of
 * tests/ref_*, with a tolerance per op. It runs on whatever CLSYNTH_DEVICE
 * selects, so the same test serves every OpenCL implementation.
 *
 * Also the registration checks: every registry slot holds a distinct
 * descriptor, every kernel a descriptor names exists in its file, every -D a
 * kernel file requires (#error when missing) is a descriptor's tunable, and
 * every descriptor with a harness has a reference here.
 *
 * CLSYNTH_SWEEP_SAMPLES=N: candidates per (kernel, shape, limits) besides the
 * defaults (default 2; 1 under Oclgrind, where only the smallest shape runs).
 * CLSYNTH_SWEEP_KERNEL=key: one descriptor only. CLSYNTH_SWEEP_VERBOSE=1: one
 * line per case.
 * CLSYNTH_OCLGRIND_OK */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clcore/kconfig.h"
#include "clcore/kdefs.h"
#include "clcore/kernels_embedded.h"
#include "clcore/program.h"
#include "clcore/tunedb.h"
#include "clcore/tuner.h"
#include "ref_conv.h"
#include "ref_dwconv.h"
#include "ref_elementwise.h"
#include "ref_norm.h"
#include "testutil.h"

/* ------------------------------------------------------------ references */

/* Host copies of one harness run: inputs, the seed of the backward, the
 * output and the gradients of the inputs that require them. */
typedef struct run {
    int n_in;
    float *in[6];
    size_t n[6];
    float *grad[6]; /* NULL: no gradient */
    float *dy;
    float *y;
    size_t ny;
} run;

typedef void (*ref_fn)(const void *shape, const run *r, float *y, float *const *grad);

static void ref_conv(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_conv_shape *s = shape;
    ref_conv2d_forward(r->in[0], r->in[1], r->in[2], y, s->n, s->cin, s->h, s->w, s->cout, s->kh, s->kw, s->stride,
                       s->pad);
    if (grad[0] || grad[1] || grad[2])
        ref_conv2d_backward(r->in[0], r->in[1], r->dy, grad[0], grad[1], grad[2], s->n, s->cin, s->h, s->w, s->cout,
                            s->kh, s->kw, s->stride, s->pad);
}

static void ref_dw(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_dwconv_shape *s = shape;
    ref_cond_dwconv(r->in[0], r->in[1], y, 1, s->nc, s->h, s->w);
    if (grad[0] || grad[1])
        ref_cond_dwconv_backward(r->in[0], r->in[1], r->dy, grad[0], grad[1], 1, s->nc, s->h, s->w);
}

/* the harness: batch norm in training, no affine, of x (1, G, 1, M) */
static void ref_norm(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_norm_shape *s = shape;
    ref_batch_norm_train(r->in[0], 1, s->groups, 1, s->m, NULL, NULL, NULL, NULL, 0.1f, 1e-5f, y);
    if (grad[0])
        ref_batch_norm_train_backward(r->in[0], r->dy, 1, s->groups, 1, s->m, NULL, 1e-5f, grad[0], NULL, NULL);
}

/* the harness: x (1, 1, K, R) summed over its last dim */
static void ref_reduce(const void *shape, const run *r, float *y, float *const *grad)
{
    const clsynth_reduce_shape *s = shape;
    (void)grad;
    const int xd[4] = { 1, 1, 1 << s->log2_k, 1 << s->log2_r }, od[4] = { 1, 1, 1 << s->log2_k, 1 };
    ref_ew_reduce_to(r->in[0], NULL, xd, y, od, 1.0, 0.0);
}

/* |device - reference| <= atol * max|reference| + rtol * |reference|, per
 * output tensor (the output, each gradient). Float32 against double: the
 * sums are short (convs: at most 17*3*3 products; dwconv: 9) except the
 * norms' and reductions' (up to 2^14 values, tree-summed). */
typedef struct sweep_ref {
    const char *key;
    ref_fn fn;
    double atol, rtol;
} sweep_ref;

static const sweep_ref REFS[] = {
    { "conv2d", ref_conv, 2e-5, 1e-4 },
    { "conv_fwd_direct", ref_conv, 2e-5, 1e-4 },
    { "conv_bwd_data_direct", ref_conv, 2e-5, 1e-4 },
    { "conv_bwd_weight_direct", ref_conv, 2e-5, 1e-4 },
    { "dwconv_fwd", ref_dw, 2e-6, 1e-5 },
    { "dwconv_bwd", ref_dw, 2e-6, 1e-5 },
    { "norm_partial_stats", ref_norm, 2e-5, 1e-4 },
    { "norm_partial_dsums", ref_norm, 2e-5, 1e-4 },
    { "reduce_groups", ref_reduce, 2e-6, 1e-5 },
};

static const sweep_ref *ref_of(const char *key)
{
    for (size_t i = 0; i < sizeof REFS / sizeof REFS[0]; i++)
        if (strcmp(REFS[i].key, key) == 0)
            return &REFS[i];
    return NULL;
}

/* ------------------------------------------------------------ running the harness */

static void run_free(run *r)
{
    for (int i = 0; i < 6; i++) {
        free(r->in[i]);
        free(r->grad[i]);
    }
    free(r->dy);
    free(r->y);
    memset(r, 0, sizeof *r);
}

static float *download(clsynth_ctx *c, const clsynth_tensor *t)
{
    float *h = malloc(t->numel * sizeof *h);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(clsynth_tensor_download(c, t, h) == 0, "%s", c->err.msg);
    return h;
}

/* One forward (and backward) of def's harness at shape under force. */
static void run_harness(clsynth_ctx *c, const clsynth_kdef *def, const void *shape, clsynth_kforce *force, run *r)
{
    memset(r, 0, sizeof *r);
    clsynth_kbench b;
    memset(&b, 0, sizeof b);
    memcpy(&b.shape, shape, def->shape_size);
    ck_assert_msg(def->setup(c, &b) == 0, "%s: setup: %s", def->key, c->err.msg);
    r->n_in = b.n_in;
    for (int i = 0; i < b.n_in; i++) {
        bool grad = def->backward && (!def->grad_mask || (def->grad_mask & (1u << i)));
        if (grad)
            b.in[i]->flags |= CLSYNTH_T_REQUIRES_GRAD;
        else
            b.in[i]->flags &= ~(unsigned)CLSYNTH_T_REQUIRES_GRAD;
        r->in[i] = download(c, b.in[i]);
        r->n[i] = b.in[i]->numel;
    }
    clsynth_tensor *y = def->run(c, &b, force);
    ck_assert_msg(y != NULL, "%s: %s", def->key, c->err.msg);
    r->y = download(c, y);
    r->ny = y->numel;
    if (def->backward) {
        r->dy = malloc(y->numel * sizeof *r->dy);
        ck_assert_ptr_nonnull(r->dy);
        clsynth_test_fill_uniform(r->dy, y->numel, -1.0f, 1.0f, 77);
        clsynth_tensor *g = clsynth_tensor_from_host(c, "sweep.dy", y->n, y->c, y->h, y->w, r->dy);
        ck_assert_msg(g && clsynth_backward_with(c, y, g) == 0, "%s backward: %s", def->key, c->err.msg);
        for (int i = 0; i < b.n_in; i++)
            if (b.in[i]->grad)
                r->grad[i] = download(c, b.in[i]->grad);
    } else {
        clsynth_tape_clear(c);
        clsynth_release_activations(c);
    }
    for (int i = 0; i < b.n_in; i++)
        clsynth_tensor_free(c, b.in[i]);
}

static void assert_matches(const char *what, const float *a, const float *ref, size_t n, double atol, double rtol)
{
    double amax = 0;
    for (size_t i = 0; i < n; i++)
        amax = fmax(amax, fabs((double)ref[i]));
    size_t worst = 0;
    double w = clsynth_test_compare(a, ref, n, atol * amax + 1e-30, rtol, &worst);
    ck_assert_msg(w <= 1.0, "%s: element %zu is %.9g, the reference %.9g (%.3g of the tolerance %.2g max|ref| + %.2g "
                            "|ref|, max|ref| %.3g)", what, worst, a[worst], ref[worst], w, atol, rtol, amax);
}

/* Runs one case and checks it against the reference. */
static void check_case(clsynth_ctx *c, const clsynth_kdef *def, const sweep_ref *sr, const void *shape,
                       clsynth_kforce *force, const char *limits)
{
    run r;
    run_harness(c, def, shape, force, &r);
    char key[CLSYNTH_K_KEY_MAX], desc[200], what[400];
    def->format(shape, key, sizeof key);
    if (force->defaults)
        snprintf(desc, sizeof desc, "defaults");
    else
        clsynth_kdef_describe(def, force->v, desc, sizeof desc);
    if (getenv("CLSYNTH_SWEEP_VERBOSE"))
        fprintf(stderr, "sweep %-22s %-30s %-18s %s\n", def->key, key, limits, desc);
    ck_assert_msg(force->hits > 0, "%s at %s: the harness never resolved its kernel", def->key, key);
    float *y = malloc(r.ny * sizeof *y), *g[6] = { NULL };
    ck_assert_ptr_nonnull(y);
    for (int i = 0; i < r.n_in; i++)
        if (r.grad[i])
            ck_assert_ptr_nonnull(g[i] = malloc(r.n[i] * sizeof *g[i]));
    sr->fn(shape, &r, y, g);
    snprintf(what, sizeof what, "%s at %s, %s, %s: output", def->key, key, limits, desc);
    assert_matches(what, r.y, y, r.ny, sr->atol, sr->rtol);
    for (int i = 0; i < r.n_in; i++)
        if (r.grad[i]) {
            snprintf(what, sizeof what, "%s at %s, %s, %s: gradient of input %d", def->key, key, limits, desc, i);
            assert_matches(what, r.grad[i], g[i], r.n[i], sr->atol, sr->rtol);
        }
    free(y);
    for (int i = 0; i < 6; i++)
        free(g[i]);
    run_free(&r);
}

static int samples_wanted(void)
{
    const char *v = getenv("CLSYNTH_SWEEP_SAMPLES");
    if (v && *v)
        return atoi(v) < 0 ? 0 : atoi(v);
    return clsynth_test_under_oclgrind() ? 1 : 2;
}

/* The defaults, then `samples` legal candidates spread over the enumeration
 * (a candidate whose own build exceeds its kernel's limit is skipped for the
 * next one). Returns the candidates run besides the defaults. */
static int sweep_shape(clsynth_ctx *c, const clsynth_kdef *def, const sweep_ref *sr, const void *shape,
                       int shape_index, const char *limits)
{
    clsynth_kforce f = { .def = def, .defaults = true };
    check_case(c, def, sr, shape, &f, limits);
    char key[CLSYNTH_K_KEY_MAX];
    def->format(shape, key, sizeof key);
    int *v = NULL;
    size_t count = 0;
    ck_assert_msg(clsynth_tune_enumerate(c, def, key, false, &v, &count) == 0, "%s", c->err.msg);
    int samples = samples_wanted(), ran = 0;
    if (clsynth_test_under_oclgrind() && !def->file)
        samples = 0; /* conv2d's GEMM candidates: CLBlast is too slow to simulate */
    for (int k = 0; k < samples && count; k++) {
        /* spread evenly over the enumeration, offset per shape so that the
         * shapes do not all take the same candidates */
        size_t start = ((size_t)(k + 1) * count / (size_t)(samples + 1) + (size_t)shape_index * 7919u) % count;
        for (size_t j = 0; j < count; j++) {
            const int *cv = v + ((start + j) % count) * (size_t)def->n_params;
            char why[300];
            if (!clsynth_tune_legal(c, def, cv, key, true, why, sizeof why))
                continue;
            clsynth_kforce fc = { .def = def };
            memcpy(fc.v, cv, sizeof(int) * (size_t)def->n_params);
            check_case(c, def, sr, shape, &fc, limits);
            ran++;
            break;
        }
    }
    free(v);
    return ran;
}

static void sweep(bool small)
{
    clsynth_ctx *c = clsynth_test_ctx();
    /* 48 items: not a power of two, so the reductions' trees fold their top part */
    const char *limits = small ? "48 items, 8 KiB" : "device limits";
    if (small)
        clsynth_ctx_emulate_limits(c, 48, 8192);
    clsynth_tunedb_set_path(c, "sweep-no-database.txt"); /* the defaults are the built-in ones */
    const char *only = getenv("CLSYNTH_SWEEP_KERNEL");
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++) {
        const clsynth_kdef *def = defs[d];
        if (!def->run || (only && strcmp(only, def->key) != 0))
            continue;
        const sweep_ref *sr = ref_of(def->key);
        ck_assert_msg(sr != NULL, "%s has no reference in the sweep", def->key);
        int shapes = clsynth_test_under_oclgrind() ? 1 : def->n_test_shapes, ran = 0;
        for (int i = 0; i < shapes; i++)
            ran += sweep_shape(c, def, sr, clsynth_kdef_test_shape(def, i), i, limits);
        ck_assert_msg(ran > 0 || samples_wanted() == 0 || (clsynth_test_under_oclgrind() && !def->file),
                      "%s: no candidate besides the defaults is legal here", def->key);
    }
    clsynth_ctx_free(c);
}

START_TEST(every_kernel_matches_its_reference_under_the_device_limits) { sweep(false); }
END_TEST

START_TEST(every_kernel_matches_its_reference_on_a_small_device) { sweep(true); }
END_TEST

/* ------------------------------------------------------------ registration */

START_TEST(every_registry_slot_holds_a_distinct_descriptor)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    ck_assert_int_eq(nd, CLSYNTH_KDEF_COUNT);
    for (int d = 0; d < nd; d++) {
        ck_assert_msg(defs[d] != NULL, "registry slot %d is empty", d);
        ck_assert_msg(clsynth_kdef_find(defs[d]->key) == defs[d], "%s: registered twice", defs[d]->key);
        ck_assert_msg(defs[d]->format && defs[d]->parse && defs[d]->shape_size <= sizeof(clsynth_kshape),
                      "%s: no shape format", defs[d]->key);
        ck_assert_msg(defs[d]->n_test_shapes > 0, "%s: no test shape", defs[d]->key);
        /* the shape key round-trips */
        char key[CLSYNTH_K_KEY_MAX], again[CLSYNTH_K_KEY_MAX];
        clsynth_kshape s;
        clsynth_kdef_test_key(defs[d], 0, key, sizeof key);
        ck_assert_msg(defs[d]->parse(key, &s), "%s: its own key '%s' does not parse", defs[d]->key, key);
        defs[d]->format(&s, again, sizeof again);
        ck_assert_str_eq(key, again);
    }
}
END_TEST

START_TEST(every_descriptor_with_a_harness_has_a_reference)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++)
        if (defs[d]->run)
            ck_assert_msg(ref_of(defs[d]->key) != NULL, "%s has no reference in tests/test_kernel_sweep.c",
                          defs[d]->key);
}
END_TEST

static bool declares_define(const char *file, const char *name)
{
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++)
        if (defs[d]->file && strcmp(defs[d]->file, file) == 0)
            for (int i = 0; i < defs[d]->n_params; i++)
                if (defs[d]->params[i].kind == CLSYNTH_K_DEFINE && strcmp(defs[d]->params[i].name, name) == 0)
                    return true;
    return false;
}

/* The names a kernel file requires: "#ifndef X" or "#if !defined(X) ..."
 * followed by an #error line. */
static void check_required(const char *file, const char *src)
{
    const char *line = src;
    while (line && *line) {
        const char *next = strchr(line, '\n');
        const char *after = next ? next + 1 : NULL;
        bool err = after && strncmp(after, "#error", 6) == 0;
        char name[64];
        if (err && sscanf(line, "#ifndef %63[A-Za-z0-9_]", name) == 1) {
            ck_assert_msg(declares_define(file, name), "kernels/%s requires -D%s, which no descriptor declares", file,
                          name);
        } else if (err && strncmp(line, "#if", 3) == 0) {
            for (const char *p = strstr(line, "defined("); p && p < (next ? next : line + strlen(line));
                 p = strstr(p + 8, "defined(")) {
                if (sscanf(p, "defined(%63[A-Za-z0-9_])", name) == 1)
                    ck_assert_msg(declares_define(file, name), "kernels/%s requires -D%s, which no descriptor declares",
                                  file, name);
            }
        }
        line = after;
    }
}

START_TEST(every_required_define_and_named_kernel_belongs_to_a_descriptor)
{
    for (const clsynth_embedded_kernel *e = clsynth_embedded_kernels; e->name; e++)
        check_required(e->name, e->source);
    int nd = 0;
    const clsynth_kdef *const *defs = clsynth_kdefs(&nd);
    for (int d = 0; d < nd; d++) {
        const clsynth_kdef *def = defs[d];
        if (!def->file)
            continue;
        const char *src = clsynth_kernel_source(def->file);
        ck_assert_msg(src != NULL, "%s: no kernels/%s", def->key, def->file);
        for (int k = 0; k < CLSYNTH_K_MAX_KERNELS && def->kernels[k]; k++) {
            char pat[96];
            snprintf(pat, sizeof pat, "void %s(", def->kernels[k]);
            ck_assert_msg(strstr(src, pat) != NULL, "%s: kernel %s is not in kernels/%s", def->key, def->kernels[k],
                          def->file);
        }
        for (int i = 0; i < def->n_params; i++)
            if (def->params[i].kind == CLSYNTH_K_DEFINE)
                ck_assert_msg(strstr(src, def->params[i].name) != NULL, "%s: -D%s is not used in kernels/%s",
                              def->key, def->params[i].name, def->file);
    }
}
END_TEST

int main(void)
{
    return clsynth_test_main("kernel_sweep", NULL, 1200,
                             CLSYNTH_TEST_LIST(every_registry_slot_holds_a_distinct_descriptor,
                                               every_descriptor_with_a_harness_has_a_reference,
                                               every_required_define_and_named_kernel_belongs_to_a_descriptor,
                                               every_kernel_matches_its_reference_under_the_device_limits,
                                               every_kernel_matches_its_reference_on_a_small_device));
}
