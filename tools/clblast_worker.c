/* CLBlast GEMM measurements in a child process (see tools/clblast_worker.h). */
#include "tools/clblast_worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clcore/tuner.h"

static const char *const PARAM_FLAGS[3] = { "--xgemm", "--direct", "--routine" };

/* ------------------------------------------------------------ the worker */

int clsynth_clblast_worker_main(int argc, char **argv)
{
    const char *device = NULL, *sets[3] = { "", "", "" }, *shapes_s = "";
    int repeats = 3;
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--device") == 0)
            device = argv[i + 1];
        else if (strcmp(argv[i], "--shapes") == 0)
            shapes_s = argv[i + 1];
        else if (strcmp(argv[i], "--repeats") == 0)
            repeats = atoi(argv[i + 1]);
        for (int k = 0; k < 3; k++)
            if (strcmp(argv[i], PARAM_FLAGS[k]) == 0)
                sets[k] = argv[i + 1];
    }
    clsynth_gemm_shape sh[64];
    int ns = 0;
    for (const char *p = shapes_s; *p && ns < 64;) {
        int m, n, k, ta, tb, used = 0;
        if (sscanf(p, "%d,%d,%d,%d,%d%n", &m, &n, &k, &ta, &tb, &used) != 5 || m < 1 || n < 1 || k < 1) {
            printf("error bad shapes '%s'\n", shapes_s);
            return 2;
        }
        sh[ns++] = (clsynth_gemm_shape){ m, n, k, ta != 0, tb != 0, 1 };
        p += used;
        if (*p == ';')
            p++;
    }
    /* parameter sets as the descriptors' -D options, checked like database entries */
    clsynth_clblast_params params;
    memset(&params, 0, sizeof params);
    char why[300];
    for (int k = 0; k < 3; k++) {
        if (!sets[k][0])
            continue;
        const size_t zero[3] = { 0, 0, 0 };
        if (!clsynth_kdef_from_fields(clsynth_clblast_kdef(k), sets[k], zero, 0, params.v[k], why, sizeof why)) {
            printf("error %s: %s\n", clsynth_clblast_kdef(k)->key, why);
            return 2;
        }
        params.has[k] = true;
    }
    clsynth_err err;
    clsynth_ctx *ctx = clsynth_ctx_create(device, &err);
    if (!ctx) {
        printf("error %s\n", err.msg);
        return 1;
    }
    ctx->quiet = true;
    double ms[64], e[64];
    int rc = clsynth_clblast_measure_here(ctx, sh, (size_t)ns, &params, repeats, ms, e, why, sizeof why);
    if (rc) {
        printf("error %s\n", why);
    } else {
        for (int i = 0; i < ns; i++)
            printf("shape %d %.6f %.4g\n", i, ms[i], e[i]);
        printf("ok\n");
    }
    fflush(stdout);
    clsynth_ctx_free(ctx);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------ the parent */

/* Runs argv (argv[0] the program) with stdout into buf (NUL-terminated),
 * under an address-space limit and a timeout. Returns 0 when it ran (see
 * *status, *timed_out), -1 with why when it could not start. */
static int run_child(const char *const *argv, size_t mem_limit, double timeout, char *buf, size_t cap, int *status,
                     bool *timed_out, char *why, size_t why_len)
{
    int fds[2];
    if (pipe(fds)) {
        snprintf(why, why_len, "pipe failed: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        snprintf(why, why_len, "fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
#if !defined(__SANITIZE_ADDRESS__)
        /* (AddressSanitizer reserves terabytes of address space: no limit then) */
        struct rlimit rl = { mem_limit, mem_limit };
        setrlimit(RLIMIT_AS, &rl);
#endif
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("CLSYNTH_QUIET", "1", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    double t0 = clsynth_now_s();
    size_t len = 0;
    *timed_out = false;
    for (;;) {
        double left = timeout - (clsynth_now_s() - t0);
        if (left <= 0) {
            *timed_out = true;
            break;
        }
        struct pollfd pf = { fds[0], POLLIN, 0 };
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr <= 0)
            continue; /* interrupted or nothing yet: the deadline decides */
        ssize_t r = read(fds[0], buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len >= cap - 1)
            break;
    }
    close(fds[0]);
    if (*timed_out)
        kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
    buf[len] = 0;
    return 0;
}

int clsynth_clblast_measure_in_worker(void *user, clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                                      const clsynth_clblast_params *p, int repeats, double *ms, char *why,
                                      size_t why_len)
{
    const clsynth_clblast_worker *wc = user;
    for (size_t i = 0; i < n; i++)
        ms[i] = -1;
    char dev[16], rep[16], sets[3][256];
    snprintf(dev, sizeof dev, "%d", ctx->dev.index);
    snprintf(rep, sizeof rep, "%d", repeats);
    for (int k = 0; k < 3; k++) {
        sets[k][0] = 0;
        if (p && p->has[k]) {
            size_t local[3];
            int algo;
            clsynth_kdef_to_fields(clsynth_clblast_kdef(k), p->v[k], sets[k], sizeof sets[k], local, &algo);
        }
    }
    char *shp = malloc(n * 48 + 1);
    if (!shp)
        return clsynth_ctx_fail(ctx, "out of host memory");
    size_t used = 0;
    shp[0] = 0;
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(shp + used, 48, "%s%d,%d,%d,%d,%d", i ? ";" : "", shapes[i].m, shapes[i].n,
                                 shapes[i].k, shapes[i].ta, shapes[i].tb);
    const char *exe = wc && wc->exe ? wc->exe : "/proc/self/exe";
    const char *argv[40];
    int a = 0;
    argv[a++] = exe;
    for (int i = 0; wc && i < wc->argc && a < 24; i++)
        argv[a++] = wc->argv[i];
    argv[a++] = "--device";
    argv[a++] = dev;
    for (int k = 0; k < 3; k++) {
        argv[a++] = PARAM_FLAGS[k];
        argv[a++] = sets[k];
    }
    argv[a++] = "--shapes";
    argv[a++] = shp;
    argv[a++] = "--repeats";
    argv[a++] = rep;
    argv[a] = NULL;
    size_t limit = wc && wc->mem_limit ? wc->mem_limit : ((size_t)6 << 30);
    double timeout = wc && wc->timeout_s > 0 ? wc->timeout_s : 300;
    char buf[8192];
    int status = 0;
    bool timed_out = false;
    int rc = run_child(argv, limit, timeout, buf, sizeof buf, &status, &timed_out, why, why_len);
    free(shp);
    if (rc)
        return clsynth_ctx_fail(ctx, "CLBlast worker: %s", why);
    bool ok = false;
    why[0] = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int i;
        double t, e;
        if (sscanf(line, "shape %d %lf %lf", &i, &t, &e) == 3 && i >= 0 && (size_t)i < n)
            ms[i] = e <= 1.0 ? t : -2; /* -2: wrong result */
        else if (strcmp(line, "ok") == 0)
            ok = true;
        else if (strncmp(line, "error ", 6) == 0)
            snprintf(why, why_len, "%s", line + 6);
    }
    if (timed_out)
        snprintf(why, why_len, "timed out after %.0f s", timeout);
    else if (!ok && !why[0]) {
        if (WIFSIGNALED(status))
            snprintf(why, why_len, "worker killed by signal %d (memory limit %zu MiB?)", WTERMSIG(status),
                     limit >> 20);
        else
            snprintf(why, why_len, "worker exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    for (size_t i = 0; ok && i < n; i++)
        if (ms[i] == -2) {
            snprintf(why, why_len, "wrong result at shape %zu (m %d n %d k %d)", i, shapes[i].m, shapes[i].n,
                     shapes[i].k);
            ok = false;
        }
    return ok ? 0 : 1;
}

int clsynth_clblast_measure(clsynth_ctx *ctx, const clsynth_gemm_shape *shapes, size_t n,
                            const clsynth_clblast_params *params, int repeats, const clsynth_clblast_worker *worker,
                            double *ms)
{
    char why[256];
    int rc = clsynth_clblast_measure_in_worker((void *)worker, ctx, shapes, n, params, repeats, ms, why, sizeof why);
    if (rc < 0)
        return -1;
    if (rc)
        return clsynth_ctx_fail(ctx, "CLBlast GEMM measurement failed: %s", why);
    return 0;
}
