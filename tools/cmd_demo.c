/* clsynth demo: the main job of the README on the chosen device. Until the
 * training pipeline lands it lists the devices and runs a small end-to-end
 * device computation, checked against the host. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "clcore/context.h"
#include "clcore/tensor.h"
#include "tools/cli.h"
#include "tools/commands.h"

int clsynth_cmd_demo(int argc, char **argv)
{
    const char *device = NULL;
    for (int i = 1; i < argc; i++) {
        int m = clsynth_cli_value(argc, argv, &i, "--device", &device);
        if (m < 0) {
            fprintf(stderr, "clsynth demo: --device needs a value\n");
            return 2;
        }
        if (m == 0) {
            fprintf(stderr, "clsynth demo: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    char *dev_argv[] = { "devices", NULL };
    if (clsynth_cmd_devices(1, dev_argv))
        return 1;
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        fprintf(stderr, "clsynth demo: %s\n", err.msg);
        return 1;
    }
    printf("\nusing device %d: %s (%s)\n", ctx->dev.index, ctx->dev.name, ctx->dev.platform_name);
    enum { N = 2, C = 5, H = 17, W = 13 };
    size_t n = (size_t)N * C * H * W;
    float *host = malloc(n * sizeof *host), *back = malloc(n * sizeof *back);
    int rc = 1;
    clsynth_tensor *a = NULL, *b = NULL;
    if (!host || !back)
        goto done;
    for (size_t i = 0; i < n; i++)
        host[i] = sinf((float)i);
    a = clsynth_tensor_from_host(ctx, "demo.a", N, C, H, W, host);
    b = clsynth_tensor_new(ctx, "demo.b", N, C, H, W);
    if (clsynth_tensor_copy(ctx, b, a) || clsynth_tensor_download(ctx, b, back))
        goto done;
    for (size_t i = 0; i < n; i++)
        if (back[i] != host[i]) {
            fprintf(stderr, "clsynth demo: device copy differs at element %zu\n", i);
            goto done;
        }
    printf("device round trip of a (%d, %d, %d, %d) tensor: ok\n", N, C, H, W);
    rc = 0;
done:
    if (rc && ctx->failed)
        fprintf(stderr, "clsynth demo: %s\n", ctx->err.msg);
    free(host);
    free(back);
    clsynth_ctx_free(ctx);
    return rc;
}
