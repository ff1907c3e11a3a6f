#!/usr/bin/env python3
"""By-hand PyTorch reference for clsynth's FPSE discriminator (never part of the build).

Builds the CC-FPSE feature-pyramid semantics-embedding discriminator exactly as
/work/shared/spec/ccfpse.md (and xh-liu/CC-FPSE models/networks/discriminator.py)
describe it -- conv -> spectral norm + InstanceNorm2d(affine=False) -> LeakyReLU(0.2),
bilinear 2x (align_corners=False), shared tf/seg heads, embedding avg-pooled to
H/4, H/8, H/16 -- in float64, loads the SAME weights as clsynth and compares the
score maps, the feature-matching features, the hinge D loss (and its parameter
gradients), the G losses (hinge G and feature matching, lambda_feat 10 divided by
the 4 features, as the reference's compute_generator_loss) and the gradient of the G loss w.r.t. the fake image.

Inputs:
  dump file   written by a small C driver (see the report: /tmp/fpse_drv/drv.c); records
              are  u32 name_len, name, i32[4] NCHW shape, f32 data.  It holds the D
              parameters and spectral-norm vectors (names as nets/discriminator.c:
              enc1.conv.w, enc1.conv.u, ..., tf.w, tf.b, seg.w, seg.b, embedding.w,
              embedding.b), the inputs (in.fake, in.real, in.seg) and clsynth's results
              of four passes:
                A  D step: fake (u power iteration) + real (u reused), D hinge loss,
                   backward to the D parameters (A.grad.<name>), u after (A.after.<name>)
                B  G step: fake (u power iteration) + real (no grad), G hinge + feature
                   matching, d(total)/d(fake) (B.grad_fake)
                C  as B with u fixed, G hinge only (C.grad_fake)
                D  as B with u fixed, feature matching only (D.grad_fake)
  --ckpt FILE also reads a clsynth checkpoint (io/checkpoint.h format v1) and lists /
              uses its D tensors (prefix "D.") -- e.g. to run this reference on trained
              weights with --ckpt_inputs_from DUMP.

Usage: python3 tools/ref_fpse_torch.py DUMP [--ckpt FILE]
       python3 tools/ref_fpse_torch.py --invariance DUMP   (colour-shift blindness of D)
"""
import argparse
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
SLOPE = 0.2
EPS_IN = 1e-5
EPS_SN = 1e-12


def read_dump(path):
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    p = 0
    while p < len(data):
        (n,) = struct.unpack_from("<I", data, p)
        p += 4
        name = data[p:p + n].decode()
        p += n
        shape = struct.unpack_from("<4i", data, p)
        p += 16
        cnt = int(np.prod(shape))
        arr = np.frombuffer(data, dtype="<f4", count=cnt, offset=p).reshape(shape)
        p += 4 * cnt
        # the parameter group prefixes its tensors with "D."
        # (pass D's results are "D.ggan", "D.gfeat", "D.grad_fake": kept)
        if name.startswith("D.") and name not in ("D.ggan", "D.gfeat", "D.grad_fake"):
            name = name[2:]
        name = name.replace(".D.", ".", 1)
        out[name] = arr.copy()
    return out


def read_checkpoint(path):
    """io/checkpoint.h, version 1."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"CLSYNCKP":
        raise ValueError(f"{path}: bad magic")
    crc = struct.unpack_from("<I", data, len(data) - 4)[0]
    if zlib.crc32(data[:-4]) & 0xFFFFFFFF != crc:
        raise ValueError(f"{path}: CRC mismatch")
    p = 8
    version, clen = struct.unpack_from("<II", data, p)
    p += 8
    config = data[p:p + clen].decode()
    p += clen
    step = struct.unpack_from("<Q", data, p)[0]
    p += 8 + 32
    (nt,) = struct.unpack_from("<I", data, p)
    p += 4
    tensors = {}
    for _ in range(nt):
        (nl,) = struct.unpack_from("<I", data, p)
        p += 4
        name = data[p:p + nl].decode()
        p += nl
        (tl,) = struct.unpack_from("<I", data, p)
        p += 4
        tag = data[p:p + tl].decode()
        p += tl
        ndim = struct.unpack_from("<I", data, p)[0]
        shape = struct.unpack_from("<4I", data, p + 4)
        p += 20
        cnt = int(np.prod(shape))
        arr = np.frombuffer(data, dtype="<f4", count=cnt, offset=p).reshape(shape)
        p += 4 * cnt
        tensors[(name, tag)] = arr.copy()
    return {"version": version, "config": config, "step": step, "tensors": tensors}


class FPSE:
    """The spec's FPSE discriminator on explicit tensors (float64)."""

    def __init__(self, params, bufs):
        self.p = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
        for v in self.p.values():
            v.requires_grad_(True)
        self.u = {k: torch.tensor(v, dtype=torch.float64).reshape(-1) for k, v in bufs.items()}

    def sn(self, name, update):
        """torch.nn.utils.spectral_norm, one power iteration when update (u, v constants)."""
        w = self.p[name + ".w"]
        W = w.reshape(w.shape[0], -1)
        with torch.no_grad():
            u = self.u[name + ".u"]
            v = F.normalize(W.t() @ u, dim=0, eps=EPS_SN)
            if update:
                u = F.normalize(W @ v, dim=0, eps=EPS_SN)
                self.u[name + ".u"] = u
            else:
                u = F.normalize(u, dim=0, eps=EPS_SN)
        sigma = torch.dot(u, W @ v)
        return w / sigma

    def cna(self, name, x, stride, pad, update):
        w = self.sn(name + ".conv", update)
        y = F.conv2d(x, w, None, stride, pad)
        y = F.instance_norm(y, eps=EPS_IN)
        return F.leaky_relu(y, SLOPE)

    def conv(self, name, x):
        return F.conv2d(x, self.p[name + ".w"], self.p[name + ".b"].reshape(-1))

    def forward(self, img, seg, update):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
        e = []
        x = img
        for i in range(5):
            x = self.cna(f"enc{i + 1}", x, 2, 1, update)
            e.append(x)
        f5 = self.cna("lat5", e[4], 1, 0, update)
        f4 = up(f5) + self.cna("lat4", e[3], 1, 0, update)
        f3 = up(f4) + self.cna("lat3", e[2], 1, 0, update)
        f2 = up(f3) + self.cna("lat2", e[1], 1, 0, update)
        g = [self.cna(f"final{s}", t, 1, 1, update) for s, t in zip((2, 3, 4), (f2, f3, f4))]
        emb = F.avg_pool2d(self.conv("embedding", seg), 2, 2)
        scores = []
        for gs in g:
            emb = F.avg_pool2d(emb, 2, 2)
            scores.append(self.conv("tf", gs) + (emb * self.conv("seg", gs)).sum(1, keepdim=True))
        return scores, e[1:]


def hinge_d(scores, real):
    return sum(F.relu(1 - s).mean() if real else F.relu(1 + s).mean() for s in scores) / len(scores)


def hinge_g(scores):
    return sum(-s.mean() for s in scores) / len(scores)


def feat_loss(ff, fr, lam, weights):
    return sum(lam * w * (a - b.detach()).abs().mean() for a, b, w in zip(ff, fr, weights))


worst = {"abs": 0.0, "rel": 0.0, "name": ""}


def cmp(name, ours, ref):
    ours = np.asarray(ours, dtype=np.float64).reshape(-1)
    ref = ref.detach().numpy().reshape(-1) if torch.is_tensor(ref) else np.asarray(ref).reshape(-1)
    d = np.abs(ours - ref)
    scale = max(np.abs(ref).max(), 1e-30)
    rel = d.max() / scale
    print(f"  {name:28s} n={ref.size:7d} max|ref|={scale:10.4g} max abs diff={d.max():10.3g} "
          f"max rel (to max|ref|)={rel:9.3g}")
    if d.max() > 1e-6 and rel > worst["rel"]:  # exact zeros (e.g. tf.b's D gradient at init) are noise
        worst.update(abs=d.max(), rel=rel, name=name)
    return rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("--ckpt", help="clsynth checkpoint: list its D tensors")
    ap.add_argument("--lambda_feat", type=float, default=10.0)
    a = ap.parse_args()
    if a.ckpt:
        ck = read_checkpoint(a.ckpt)
        print(f"checkpoint {a.ckpt}: step {ck['step']}, {len(ck['tensors'])} tensors")
        for (n, t), v in ck["tensors"].items():
            if n.startswith("D.") and t in ("param", "buffer", ""):
                print(f"  {n} [{t}] {v.shape} |v|max {np.abs(v).max():.4g}")
    dmp = read_dump(a.dump)
    params = {k: v for k, v in dmp.items() if "." in k and k.split(".")[0] in
              {f"enc{i}" for i in range(1, 6)} | {f"lat{i}" for i in range(2, 6)} |
              {f"final{i}" for i in range(2, 5)} | {"tf", "seg", "embedding"} and not k.endswith(".u")}
    bufs = {k: v for k, v in dmp.items() if k.endswith(".u") and "." in k and not k.startswith(("A.", "B."))}
    D = FPSE(params, bufs)
    fake = torch.tensor(dmp["in.fake"], dtype=torch.float64)
    real = torch.tensor(dmp["in.real"], dtype=torch.float64)
    seg = torch.tensor(dmp["in.seg"], dtype=torch.float64)
    nfeat = 4
    weights = [1.0 / nfeat] * nfeat  # lambda_feat / len(feat_fake), as the reference

    print("pass A (D step: fake with a power iteration, real reusing u)")
    sf, ff = D.forward(fake, seg, True)
    sr, fr = D.forward(real, seg, False)
    for k in range(3):
        cmp(f"fake score{k}", dmp[f"A.fake.score{k}"], sf[k])
        cmp(f"real score{k}", dmp[f"A.real.score{k}"], sr[k])
    for k in range(nfeat):
        cmp(f"fake feat{k}", dmp[f"A.fake.feat{k}"], ff[k])
        cmp(f"real feat{k}", dmp[f"A.real.feat{k}"], fr[k])
    dl = hinge_d(sf, False) + hinge_d(sr, True)
    cmp("D hinge loss", dmp["A.dloss"], dl)
    dl.backward()
    for k in sorted(params):
        cmp(f"dLD/d {k}", dmp[f"A.grad.{k}"], D.p[k].grad)
    for k in sorted(bufs):
        cmp(f"u after A {k}", dmp[f"A.after.{k}"], D.u[k])

    for p in D.p.values():
        p.requires_grad_(False)
    print("pass B (G step: fake with a power iteration, real no grad): total = hinge G + FM")
    fk = fake.clone().requires_grad_(True)
    sf, ff = D.forward(fk, seg, True)
    with torch.no_grad():
        sr, fr = D.forward(real, seg, False)
    gg = hinge_g(sf)
    fm = feat_loss(ff, fr, a.lambda_feat, weights)
    cmp("G hinge", dmp["B.ggan"], gg)
    cmp("G feat", dmp["B.gfeat"], fm)
    for k in range(3):
        cmp(f"fake score{k}", dmp[f"B.fake.score{k}"], sf[k])
    (gg + fm).backward()
    cmp("d(G total)/d fake", dmp["B.grad_fake"], fk.grad)
    for k in sorted(bufs):
        cmp(f"u after B {k}", dmp[f"B.after.{k}"], D.u[k])
    gnorm = {"B": fk.grad.abs().mean().item()}

    for pas, which in (("C", "gan"), ("D", "feat")):
        print(f"pass {pas} (u fixed): {which} only")
        fk = fake.clone().requires_grad_(True)
        sf, ff = D.forward(fk, seg, False)
        with torch.no_grad():
            sr, fr = D.forward(real, seg, False)
        loss = hinge_g(sf) if which == "gan" else feat_loss(ff, fr, a.lambda_feat, weights)
        cmp(f"{which} loss", dmp[f"{pas}.ggan" if which == "gan" else f"{pas}.gfeat"], loss)
        loss.backward()
        cmp(f"d({which})/d fake", dmp[f"{pas}.grad_fake"], fk.grad)
        gnorm[pas] = fk.grad.abs().mean().item()
    print(f"mean |grad| at the fake image: total {gnorm['B']:.4g}, hinge G {gnorm['C']:.4g}, "
          f"feature matching {gnorm['D']:.4g}")
    print(f"worst: {worst['name']} abs {worst['abs']:.3g} rel {worst['rel']:.3g}")
    return 0 if worst["rel"] < 1e-3 else 1



def invariance(dump_path):
    """How much D's scores and FM features move under a per-image, per-channel affine
    colour change x -> a_c x + b_c (the instance norm after enc1 removes it but for the
    zero-padded border)."""
    dmp = read_dump(dump_path)
    params = {k: v for k, v in dmp.items() if k.split(".")[0] in {f"enc{i}" for i in range(1, 6)} |
              {f"lat{i}" for i in range(2, 6)} | {f"final{i}" for i in range(2, 5)} |
              {"tf", "seg", "embedding"} and not k.endswith(".u")}
    bufs = {k: v for k, v in dmp.items() if k.endswith(".u") and k.split(".")[0] in
            {f"enc{i}" for i in range(1, 6)} | {f"lat{i}" for i in range(2, 6)} | {f"final{i}" for i in range(2, 5)}}
    D = FPSE(params, bufs)
    real = torch.tensor(dmp["in.real"], dtype=torch.float64)
    seg = torch.tensor(dmp["in.seg"], dtype=torch.float64)
    with torch.no_grad():
        s0, f0 = D.forward(real, seg, False)
        for what, x in (("0.1*real (contrast /10)", 0.1 * real),
                        ("real + (0.5,-0.3,0.2)", real + torch.tensor([0.5, -0.3, 0.2]).reshape(1, 3, 1, 1)),
                        ("0.02*real + 0.1 (near-gray)", 0.02 * real + 0.1),
                        ("noise (reference)", torch.rand_like(real) * 2 - 1)):
            s1, f1 = D.forward(x, seg, False)
            ds = max((a - b).abs().max().item() / a.abs().max().item() for a, b in zip(s0, s1))
            df = sum((a - b).abs().mean().item() for a, b in zip(f0, f1))
            print(f"  {what:30s} max rel score change {ds:.3g}   FM L1 (weight 1 each) {df:.4g}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--invariance":
        invariance(sys.argv[2])
        sys.exit(0)
    sys.exit(main())
