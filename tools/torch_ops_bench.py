#!/usr/bin/env python3
"""PyTorch timings of the ops `clsynth bench ops` measures, at the same shapes (by hand,
never part of the build or the tests): what a user would get from PyTorch on the same
device, as the speed reference for clsynth's OpenCL figures.

  SGEMM 1024^3; conv2d 3x3 / 1x1 forward + backward (dx, dw) at the representative
  CC-FPSE shapes; the conditional (per-pixel) depthwise 3x3 convolution forward +
  backward written the usual PyTorch way (unfold, multiply, sum over the taps).

Times are the median of --repeats runs after warm-up, synchronized (CUDA events on a GPU).
The model-level comparison (a full CC-FPSE training step in PyTorch) is not here.

Usage: python3 tools/torch_ops_bench.py [--device cuda|cpu] [--repeats N] [--json FILE]
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

CONVS = [  # (N, Cin, H, W, Cout, K), as clsynth bench's conv2d rows
    (1, 256, 32, 32, 256, 3),
    (4, 256, 32, 32, 256, 3),
    (1, 64, 128, 128, 64, 3),
    (4, 64, 128, 128, 64, 3),
    (4, 256, 32, 32, 256, 1),
]
DWCONVS = [  # (N*C, H, W) as clsynth bench's dwconv rows (N = 1)
    (256, 32, 32),
    (1024, 32, 32),
    (64, 128, 128),
    (256, 128, 128),
]


def timer(dev):
    if dev.type == "cuda":
        def run(fn):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            return a.elapsed_time(b)
    else:
        def run(fn):
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1e3
    return run


def median_ms(fn, dev, repeats):
    run = timer(dev)
    for _ in range(3):
        run(fn)
    return statistics.median(run(fn) for _ in range(repeats))


def cond_dwconv(x, k):
    """y(n,c,h,w) = sum_t k(n, 9c+t, h, w) * x(n, c, h+i-1, w+j-1), t = 3i + j."""
    n, c, h, w = x.shape
    xu = F.unfold(x, 3, padding=1).view(n, c, 9, h, w)
    return (xu * k.view(n, c, 9, h, w)).sum(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    out = {"torch": torch.__version__, "device": name,
           "cuda": torch.version.cuda if dev.type == "cuda" else None,
           "tf32": False, "rows": []}
    # fp32 as clsynth: no TF32 tensor-core shortcuts
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    A = torch.randn(1024, 1024, device=dev)
    B = torch.randn(1024, 1024, device=dev)
    ms = median_ms(lambda: torch.mm(A, B), dev, a.repeats)
    out["rows"].append({"op": "sgemm", "shape": "1024x1024x1024", "ms": ms, "gflops": 2 * 1024 ** 3 / ms / 1e6})

    for (n, c, h, w, o, k) in CONVS:
        x = torch.randn(n, c, h, w, device=dev, requires_grad=True)
        wt = torch.randn(o, c, k, k, device=dev, requires_grad=True)
        g = torch.randn(n, o, h, w, device=dev)

        def step():
            y = F.conv2d(x, wt, padding=k // 2)
            y.backward(g)
        ms = median_ms(step, dev, a.repeats)
        flops = 3 * 2.0 * n * o * h * w * c * k * k
        out["rows"].append({"op": "conv2d fwd+bwd", "shape": f"N{n}.C{c}.H{h}.W{w}.O{o}.K{k}x{k}.S1.P{k // 2}",
                            "ms": ms, "gflops": flops / ms / 1e6})

    for (nc, h, w) in DWCONVS:
        x = torch.randn(1, nc, h, w, device=dev, requires_grad=True)
        kk = torch.randn(1, 9 * nc, h, w, device=dev, requires_grad=True)
        g = torch.randn(1, nc, h, w, device=dev)
        ms_f = median_ms(lambda: cond_dwconv(x, kk), dev, a.repeats)

        def step():
            cond_dwconv(x, kk).backward(g)
        ms_fb = median_ms(step, dev, a.repeats)
        out["rows"].append({"op": "cond_dwconv fwd", "shape": f"{nc}x{h}x{w}", "ms": ms_f,
                            "gbs": 4.0 * nc * h * w * 11 / ms_f / 1e6})
        out["rows"].append({"op": "cond_dwconv fwd+bwd", "shape": f"{nc}x{h}x{w}", "ms": ms_fb})

    print(f"PyTorch {out['torch']} on {name} (fp32, TF32 off), median of {a.repeats}:")
    for r in out["rows"]:
        rate = f"{r['gflops']:.1f} GFLOP/s" if "gflops" in r else f"{r['gbs']:.1f} GB/s" if "gbs" in r else ""
        print(f"  {r['op']:<20} {r['shape']:<34} {r['ms']:9.3f} ms  {rate}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
