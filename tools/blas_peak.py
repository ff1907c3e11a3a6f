#!/usr/bin/env python3
"""BLAS-class SGEMM peak of this machine's CPU, for comparison with clsynth's
OpenCL GEMM rates (`clsynth bench ops`). Not a build dependency: run by hand
after `pip install numpy` (numpy ships OpenBLAS).

    python3 tools/blas_peak.py [--threads N] [--sizes 1024,2048]

Prints GFLOP/s of float32 C = A @ B (median of 5 after a warm-up), and the
same at the model's GEMM shapes given with --shapes m,n,k[;m,n,k...]."""
import argparse
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0, help="BLAS threads (0 = library default)")
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--shapes", default="", help="m,n,k;m,n,k ... (model GEMM shapes)")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if a.threads > 0:
        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[v] = str(a.threads)
    try:
        import numpy as np
    except ImportError:
        sys.exit("numpy is needed: pip install numpy")
    shapes = [(int(s), int(s), int(s)) for s in a.sizes.split(",") if s]
    for part in a.shapes.split(";"):
        if part.strip():
            m, n, k = (int(x) for x in part.split(","))
            shapes.append((m, n, k))
    rng = np.random.default_rng(0)
    info = ""
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.25
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info = "%s %s" % (blas.get("name", "?"), blas.get("version", ""))
    except Exception:
        pass
    print("numpy %s, BLAS %s, %d CPUs" % (np.__version__, info or "?", os.cpu_count() or 0))
    for m, n, k in shapes:
        A = rng.standard_normal((m, k), dtype=np.float32)
        B = rng.standard_normal((k, n), dtype=np.float32)
        A @ B  # warm-up
        ts = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            A @ B
            ts.append(time.perf_counter() - t0)
        t = sorted(ts)[len(ts) // 2]
        print("sgemm %5d x %5d x %5d: %8.3f ms  %7.1f GFLOP/s" % (m, n, k, t * 1e3, 2.0 * m * n * k / t / 1e9))


if __name__ == "__main__":
    main()
