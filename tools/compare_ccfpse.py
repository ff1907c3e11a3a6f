#!/usr/bin/env python3
"""By-hand check that clsynth runs the CC-FPSE authors' models as they do (never
part of the build or the tests; needs PyTorch and a checkout of the authors'
code, which has no licence: it is only imported from where it lies, nothing of
it is copied).

    python3 tools/compare_ccfpse.py --ccfpse /path/to/CC-FPSE [--clsynth build/clsynth]

For "normal" and "more" upsampling, with and without --use_vae, it
  1. instantiates THEIR CondConvGenerator (and ConvEncoder) with random weights
     of a healthy scale (xavier gain 1, random BatchNorm statistics, spectral-norm
     u and v from a few power iterations on a weight that was then changed, as
     after an optimizer step, so that the stored pair matters) and saves their
     state dicts as .pth;
  2. converts them with tools/import_ccfpse.py;
  3. writes a label map (with don't-care pixels), an instance map and an image at
     the crop size (so preprocessing is the identity) and runs
     `clsynth test --save_float DIR --seed 1`, which saves the generator's float
     output before 8-bit quantization with the labels, edges, real image and z;
  4. runs their networks in eval mode on the same inputs: mu, logvar = E(real)
     (compared with clsynth's), fake = G(seg, z) with clsynth's z (the noise eps
     of z = mu + eps * sigma comes from clsynth's Philox stream, not torch's RNG,
     so z is taken from the file) and prints the largest |fake_torch - fake_clsynth|.
It fails (exit 1) when that exceeds --tol (1e-4).

The authors' modules import torchvision, PIL and dill at module level for parts
not used here; when those are not installed, empty stand-ins are registered.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import types
import zlib
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from clsynth_ckpt import read_checkpoint  # noqa: E402

CONFIGS = [  # name, dataset_mode (their generator picks "more" for cityscapes), use_vae, crop, aspect
    ("normal", "coco", False, 64, 1.0),
    ("normal+vae", "coco", True, 256, 1.0),
    ("more", "cityscapes", False, 128, 2.0),
    ("more+vae", "cityscapes", True, 256, 2.0),
]


def import_authors(path):
    import torch  # noqa: F401  (before the stand-ins: torch probes for dill)
    for name in ("torchvision", "PIL", "dill"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    if not hasattr(sys.modules["PIL"], "Image"):
        sys.modules["PIL"].Image = types.ModuleType("PIL.Image")
        sys.modules["PIL.Image"] = sys.modules["PIL"].Image
    sys.path.insert(0, os.path.abspath(path))
    from models.networks.encoder import ConvEncoder
    from models.networks.generator import CondConvGenerator
    return CondConvGenerator, ConvEncoder


def authors_opt(mode, use_vae, crop, aspect, ngf, label_nc):
    dontcare = mode == "coco"
    o = argparse.Namespace(dataset_mode=mode, label_nc=label_nc, contain_dontcare_label=dontcare, no_instance=False,
                           crop_size=crop, aspect_ratio=aspect, ngf=ngf, ndf=ngf, z_dim=256, use_vae=use_vae,
                           norm_G="spectralsync_batch", norm_D="spectralinstance", norm_E="spectralinstance",
                           mpdist=False)
    o.semantic_nc = label_nc + (1 if dontcare else 0) + 1
    return o


def randomize(net, rng, torch):
    """Weights of unit scale and realistic spectral-norm state (see the module doc)."""
    g = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    with torch.no_grad():
        for mod in net.modules():
            w = getattr(mod, "weight_orig", None)
            if w is None and isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                w = mod.weight
            if w is not None:
                fan_in, fan_out = w[0].numel(), w.shape[0] * w[0][0].numel()
                w.copy_(torch.randn(w.shape, generator=g) * (2.0 / (fan_in + fan_out)) ** 0.5)
                if getattr(mod, "bias", None) is not None:
                    mod.bias.copy_((torch.rand(mod.bias.shape, generator=g) - 0.5) * 0.2)
            if hasattr(mod, "weight_u"):
                W = mod.weight_orig.reshape(mod.weight_orig.shape[0], -1)
                u = torch.randn(W.shape[0], generator=g)
                for _ in range(3):
                    v = torch.nn.functional.normalize(W.t() @ u, dim=0, eps=1e-12)
                    u = torch.nn.functional.normalize(W @ v, dim=0, eps=1e-12)
                mod.weight_u.copy_(u)
                mod.weight_v.copy_(v)
                mod.weight_orig.add_(0.05 * torch.randn(mod.weight_orig.shape, generator=g) * W.std())
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g) * 1.5)
                if mod.affine:
                    mod.weight.copy_(0.7 + torch.rand(c, generator=g) * 0.6)
                    mod.bias.copy_((torch.rand(c, generator=g) - 0.5) * 0.4)


def png(path, arr):
    """8-bit gray (H, W) or RGB (H, W, 3) PNG without PIL (zlib, filter 0)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    h, w = arr.shape[:2]
    color = 0 if arr.ndim == 2 else 2
    raw = b"".join(b"\x00" + arr[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_inputs(d, h, w, label_nc, dontcare, rng):
    for sub in ("label", "image", "inst"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    lab = ((yy * 3 // h) * 2 + (xx * 2 // w) + ((xx + yy) % 17 < 3)) % label_nc
    blobs = (xx - w * 0.6) ** 2 + (yy - h * 0.5) ** 2 < (min(h, w) * 0.2) ** 2
    lab[blobs] = label_nc - 1
    if dontcare:
        lab[: h // 8, : w // 8] = 255
    inst = lab.astype(np.int64) * 10 + blobs * 3 + (xx > w // 2)
    img = np.stack([(128 + 100 * np.sin(xx / 7.0 + c) * np.cos(yy / 9.0)) + rng.normal(0, 10, (h, w))
                    for c in range(3)], axis=-1).clip(0, 255)
    png(os.path.join(d, "label", "s0.png"), lab)
    png(os.path.join(d, "inst", "s0.png"), inst % 256)
    png(os.path.join(d, "image", "s0.png"), img)


def seg_from(labels, edges, label_nc, dontcare, torch):
    lab = torch.from_numpy(labels.astype(np.int64)).reshape(1, 1, *labels.shape[-2:])
    if dontcare:
        lab[lab == 255] = label_nc  # the authors' dataset maps 255 to label_nc
    nc = label_nc + (1 if dontcare else 0)
    onehot = torch.zeros(1, nc, *lab.shape[-2:]).scatter_(1, lab, 1.0)
    return torch.cat([onehot, torch.from_numpy(edges.reshape(1, 1, *labels.shape[-2:]))], dim=1)


def run_one(args, cfg, CondConvGenerator, ConvEncoder, work, rng):
    import torch
    name, mode, vae, crop, aspect = cfg
    o = authors_opt(mode, vae, crop, aspect, args.ngf, args.label_nc)
    torch.manual_seed(0)
    G = CondConvGenerator(o)
    randomize(G, rng, torch)
    E = None
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    torch.save(G.state_dict(), os.path.join(d, "G.pth"))
    cmd = [sys.executable, os.path.join(HERE, "import_ccfpse.py"), "--dataset_mode", mode, "--label_nc",
           str(args.label_nc), "--ngf", str(args.ngf), "--crop_size", str(crop), "--load_size", str(crop),
           "--aspect_ratio", str(aspect), "--G", os.path.join(d, "G.pth"), "--out", os.path.join(d, "m.ckpt")]
    if vae:
        E = ConvEncoder(o)
        randomize(E, rng, torch)
        torch.save(E.state_dict(), os.path.join(d, "E.pth"))
        cmd += ["--use_vae", "--E", os.path.join(d, "E.pth")]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    h, w = int(round(crop / aspect)), crop
    make_inputs(d, h, w, args.label_nc, mode == "coco", rng)
    run = [args.clsynth, "test", "--checkpoint", os.path.join(d, "m.ckpt"), "--label_dir", os.path.join(d, "label"),
           "--image_dir", os.path.join(d, "image"), "--instance_dir", os.path.join(d, "inst"), "--results_dir",
           os.path.join(d, "res"), "--save_float", os.path.join(d, "float"), "--seed", "1"]
    if args.device:
        run += ["--device", args.device]
    subprocess.run(run, check=True, stdout=subprocess.DEVNULL)
    ck = read_checkpoint(os.path.join(d, "float", "s0.f32.ckpt"))
    fake = ck.get("fake")
    seg = seg_from(ck.get("labels"), ck.get("edges"), args.label_nc, mode == "coco", torch)
    G.eval()
    row = {"config": name, "size": "%dx%d" % (h, w)}
    with torch.no_grad():
        z = None
        if vae:
            E.eval()
            mu, logvar = E(torch.from_numpy(ck.get("real")))
            row["mu"] = float(np.abs(mu.numpy().reshape(-1) - ck.get("mu").reshape(-1)).max())
            row["logvar"] = float(np.abs(logvar.numpy().reshape(-1) - ck.get("logvar").reshape(-1)).max())
            z = torch.from_numpy(ck.get("z").reshape(1, -1))
        ref = G(seg, z=z).numpy()
    row["fake"] = float(np.abs(ref - fake).max())
    row["std"] = float(ref.std())
    row["saturated"] = float((np.abs(ref) > 0.99).mean())
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ccfpse", required=True, help="checkout of the authors' code (xh-liu/CC-FPSE)")
    ap.add_argument("--clsynth", default=os.path.join(HERE, "..", "build", "clsynth"), help="the clsynth binary")
    ap.add_argument("--device", help="clsynth --device")
    ap.add_argument("--ngf", type=int, default=8)
    ap.add_argument("--label_nc", type=int, default=6)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--work", help="keep the files here (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="comma-separated config names (%s)" % ", ".join(c[0] for c in CONFIGS))
    args = ap.parse_args()
    CondConvGenerator, ConvEncoder = import_authors(args.ccfpse)
    rng = np.random.default_rng(args.seed)
    work = args.work or tempfile.mkdtemp(prefix="compare_ccfpse_")
    configs = [c for c in CONFIGS if not args.only or c[0] in args.only.split(",")]
    rows = [run_one(args, cfg, CondConvGenerator, ConvEncoder, work, rng) for cfg in configs]
    print("| config | image | max abs error G output | max abs error mu / logvar | output std | |output| > 0.99 |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for r in rows:
        e = "%.2e / %.2e" % (r["mu"], r["logvar"]) if "mu" in r else "-"
        print("| %s | %s | %.2e | %s | %.3f | %.1f%% |" % (r["config"], r["size"], r["fake"], e, r["std"],
                                                          100 * r["saturated"]))
        worst = max(worst, r["fake"])
    print("largest |G_torch - G_clsynth| = %.3g (tolerance %g); files in %s" % (worst, args.tol, work))
    sys.exit(0 if worst <= args.tol else 1)


if __name__ == "__main__":
    main()
