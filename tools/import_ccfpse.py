#!/usr/bin/env python3
"""Imports the CC-FPSE authors' PyTorch models (xh-liu/CC-FPSE: latest_net_G.pth,
latest_net_D.pth, latest_net_E.pth) into one clsynth checkpoint (io/checkpoint.h;
tensor names as nets/model.c saves them), so that `clsynth test` runs them on
any OpenCL device. Run by hand where PyTorch is installed; never part of the
build or the tests.

    python3 tools/import_ccfpse.py --dataset_mode coco --use_vae \\
        --G latest_net_G.pth --D latest_net_D.pth --E latest_net_E.pth --out coco.ckpt
    clsynth test --checkpoint coco.ckpt --label_dir L --image_dir I --results_dir R

--dataset_mode sets what the authors' dataset options set (coco: label_nc 182,
don't-care label, instance edges, 256x256; ade20k: 150, don't care, no
instances, 256x256; cityscapes: 35, instances, 512x256 (aspect 2),
num_upsampling_layers more); every flag below overrides it. The file must
match the options: a tensor that is missing, has another shape, or is not
expected is named in the error. --D is optional (`clsynth test` does not use
D): without it D is initialized as clsynth_model_create does (xavier normal,
gain 0.02; biases 0; spectral-norm u random, v = normalize(W^T u)).

Name mapping (authors -> clsynth), every tensor accounted for:
  G  fc -> G.fc; labelenc{i}.0.0 / .0.1 -> G.wp.enc{i}.conv / .norm;
     labellat{k}, labeldec{k} -> G.wp.lat{k}, G.wp.dec{k} (same inner indices);
     <block>.gen_*.{0,2} -> <block>.gen_*.{0,1}; <block>.norm_1 / norm_2 ->
     norm_0 / norm_1; <block>.conv_1 / conv_3 -> conv_0 / conv_1 (1x1, bias);
     <block>.conv_s -> conv_s; <block>.norm_s.param_free_norm -> norm_s.norm;
     <block>.norm_s.mlp_shared.0 -> norm_s.mlp_shared; mlp_gamma, mlp_beta;
     conv_img. Dropped: the three BatchNorms each block owns but never uses
     (norm_0, conv_0.norm_layer, conv_2.norm_layer) and every num_batches_tracked.
  D  enc{i}.0.0, lat{s}.0.0, final{s}.0.0 -> D.enc{i}.conv, D.lat{s}.conv,
     D.final{s}.conv (instance norms have no tensors); tf, seg, embedding.
  E  layer{i}.0 -> G.E.layer{i}.conv; fc_mu, fc_var -> G.E.fc_mu, G.E.fc_var.
  weight_orig (+ weight_u, weight_v) -> w (+ u (1,cout,1,1), v (1,K,1,1));
  weight -> w, bias -> b (1,c,1,1); BatchNorm weight / bias -> gamma / beta;
  running_mean / running_var kept; Linear (out, in) -> w (out, in, 1, 1).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clsynth_ckpt import write_checkpoint  # noqa: E402 (tools/clsynth_ckpt.py)

NHIDDEN = 128  # hard-coded in the authors' CC block and SPADE
BLOCKS = [("head_0", 16, 16), ("G_middle_0", 16, 16), ("G_middle_1", 16, 16), ("up_0", 16, 8),
          ("up_1", 8, 4), ("up_2", 4, 2), ("up_3", 2, 1)]

MODES = {  # the authors' dataset option setters (test time)
    "coco": dict(label_nc=182, contain_dontcare_label=1, no_instance=0, crop_size=256, load_size=256,
                 aspect_ratio=1.0, preprocess_mode="resize_and_crop", num_upsampling_layers="normal"),
    "ade20k": dict(label_nc=150, contain_dontcare_label=1, no_instance=1, crop_size=256, load_size=256,
                   aspect_ratio=1.0, preprocess_mode="resize_and_crop", num_upsampling_layers="normal"),
    "cityscapes": dict(label_nc=35, contain_dontcare_label=0, no_instance=0, crop_size=512, load_size=512,
                       aspect_ratio=2.0, preprocess_mode="fixed", num_upsampling_layers="more"),
    "custom": dict(label_nc=13, contain_dontcare_label=0, no_instance=0, crop_size=256, load_size=256,
                   aspect_ratio=1.0, preprocess_mode="resize_and_crop", num_upsampling_layers="normal"),
}


class ImportError_(Exception):
    pass


def norm_kind(s):
    """SPADE-style --norm_X string -> (spectral, 'batch' | 'instance' | 'none')."""
    spectral = s.startswith("spectral")
    rest = s[len("spectral"):] if spectral else s
    if "instance" in rest:
        return spectral, "instance"
    if "batch" in rest:
        return spectral, "batch"
    return spectral, "none"


class Plan:
    """Every tensor the options imply: authors' key -> (shape, clsynth name or
    None when dropped, tag)."""

    def __init__(self):
        self.entries = {}

    def add(self, key, shape, ours, tag):
        self.entries[key] = (tuple(shape), ours, tag)

    def conv(self, key, ours, cin, cout, k, spectral, bias):
        if spectral:
            self.add(key + ".weight_orig", (cout, cin, k, k), ours + ".w", "param")
            self.add(key + ".weight_u", (cout,), ours + ".u", "buffer")
            self.add(key + ".weight_v", (cin * k * k,), ours + ".v", "buffer")
        else:
            self.add(key + ".weight", (cout, cin, k, k), ours + ".w", "param")
        if bias:
            self.add(key + ".bias", (cout,), ours + ".b", "param")

    def linear(self, key, ours, fin, fout):
        self.add(key + ".weight", (fout, fin), ours + ".w", "param")
        self.add(key + ".bias", (fout,), ours + ".b", "param")

    def bn(self, key, ours, c, affine=True):
        if affine:
            self.add(key + ".weight", (c,), ours and ours + ".gamma", "param")
            self.add(key + ".bias", (c,), ours and ours + ".beta", "param")
        self.add(key + ".running_mean", (c,), ours and ours + ".running_mean", "buffer")
        self.add(key + ".running_var", (c,), ours and ours + ".running_var", "buffer")
        self.add(key + ".num_batches_tracked", (), None, None)

    def norm_layer(self, key, ours, cin, cout, k, norm, inner):
        """The authors' get_nonspade_norm_layer(conv): the conv alone without a
        norm (bias kept), else Sequential(conv, norm) (bias removed). inner: the
        key of that module."""
        spectral, kind = norm
        if kind == "none":
            self.conv(inner, ours + ".conv", cin, cout, k, spectral, True)
            return
        self.conv(inner + ".0", ours + ".conv", cin, cout, k, spectral, False)
        if kind == "batch":
            self.bn(inner + ".1", ours + ".norm", cout)


def plan_G(o, snc):
    p = Plan()
    nf, more = o.ngf, o.num_upsampling_layers == "more"
    num_up = 6 if more else 5
    sw = o.crop_size // 2 ** num_up
    sh = int(round(sw / o.aspect_ratio))
    if o.use_vae:
        p.linear("fc", "G.fc", o.z_dim, 16 * nf * sh * sw)
    else:
        p.conv("fc", "G.fc", snc, 16 * nf, 3, False, True)
    norm = norm_kind(o.norm_G)
    levels = num_up + 1
    for i in range(1, levels + 1):  # labelenc{i} = Sequential(norm_layer(conv), LeakyReLU)
        p.norm_layer("labelenc%d" % i, "G.wp.enc%d" % i, snc if i == 1 else nf, nf, 3, norm, "labelenc%d.0" % i)
    for k in range(1, levels):
        p.norm_layer("labellat%d" % k, "G.wp.lat%d" % k, nf, nf, 1, norm, "labellat%d.0" % k)
        p.norm_layer("labeldec%d" % k, "G.wp.dec%d" % k, nf, nf, 3, norm, "labeldec%d.0" % k)
    cond = snc + nf
    for name, a, b in BLOCKS:
        fin, fout = a * nf, b * nf
        fm = min(fin, fout)
        for what, cout in (("gen_weights1", 9 * fin), ("gen_weights2", 9 * fout),
                           ("gen_se_weights1", fm), ("gen_se_weights2", fout)):
            p.conv("%s.%s.0" % (name, what), "G.%s.%s.0" % (name, what), cond, NHIDDEN, 3, False, True)
            p.conv("%s.%s.2" % (name, what), "G.%s.%s.1" % (name, what), NHIDDEN, cout, 3, False, True)
        p.bn(name + ".conv_0.norm_layer", None, fin)  # owned, never used
        p.bn(name + ".norm_0", None, fm)             # owned, never used
        p.bn(name + ".conv_2.norm_layer", None, fm)  # owned, never used
        p.conv(name + ".conv_1", "G.%s.conv_0" % name, fin, fm, 1, False, True)
        p.bn(name + ".norm_1", "G.%s.norm_0" % name, fin)
        p.conv(name + ".conv_3", "G.%s.conv_1" % name, fm, fout, 1, False, True)
        p.bn(name + ".norm_2", "G.%s.norm_1" % name, fm)
        if fin != fout:
            p.conv(name + ".conv_s", "G.%s.conv_s" % name, fin, fout, 1, True, False)
            p.bn(name + ".norm_s.param_free_norm", "G.%s.norm_s.norm" % name, fin, affine=False)
            p.conv(name + ".norm_s.mlp_shared.0", "G.%s.norm_s.mlp_shared" % name, cond, NHIDDEN, 3, False, True)
            p.conv(name + ".norm_s.mlp_gamma", "G.%s.norm_s.mlp_gamma" % name, NHIDDEN, fin, 3, False, True)
            p.conv(name + ".norm_s.mlp_beta", "G.%s.norm_s.mlp_beta" % name, NHIDDEN, fin, 3, False, True)
    p.conv("conv_img", "G.conv_img", nf, 3, 3, False, True)
    return p


def plan_D(o, snc):
    p = Plan()
    nf, norm = o.ndf, norm_kind(o.norm_D)
    cin, cout = [3, nf, 2 * nf, 4 * nf, 8 * nf], [nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf]
    for i in range(5):
        p.norm_layer("enc%d" % (i + 1), "D.enc%d" % (i + 1), cin[i], cout[i], 3, norm, "enc%d.0" % (i + 1))
    for s in range(2, 6):
        p.norm_layer("lat%d" % s, "D.lat%d" % s, cout[s - 1], 4 * nf, 1, norm, "lat%d.0" % s)
    for s in range(2, 5):
        p.norm_layer("final%d" % s, "D.final%d" % s, 4 * nf, 2 * nf, 3, norm, "final%d.0" % s)
    p.conv("tf", "D.tf", 2 * nf, 1, 1, False, True)
    p.conv("seg", "D.seg", 2 * nf, 2 * nf, 1, False, True)
    p.conv("embedding", "D.embedding", snc, 2 * nf, 1, False, True)
    return p


def plan_E(o):
    p = Plan()
    nf, norm = o.ngf, norm_kind(o.norm_E)
    chans = [3, nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf, 8 * nf]
    for i in range(6):  # layer{i} = norm_layer(conv) itself
        p.norm_layer("layer%d" % (i + 1), "G.E.layer%d" % (i + 1), chans[i], chans[i + 1], 3, norm,
                     "layer%d" % (i + 1))
    p.linear("fc_mu", "G.E.fc_mu", 8 * nf * 16, o.z_dim)
    p.linear("fc_var", "G.E.fc_var", 8 * nf * 16, o.z_dim)
    return p


def load_state_dict(path):
    import torch
    sd = torch.load(path, map_location="cpu")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}  # saved from DistributedDataParallel
    return {k: v.detach().cpu().float().numpy() if hasattr(v, "detach") else np.asarray(v) for k, v in sd.items()}


def ours_shape(authors_shape, name):
    """clsynth's 4-d shape of an authors' tensor."""
    s = tuple(authors_shape)
    if name.endswith(".w"):
        return s + (1,) * (4 - len(s))      # conv as is, Linear (out, in) -> (out, in, 1, 1)
    return (1, int(np.prod(s)), 1, 1)       # biases, norms, u, v


def convert(what, path, plan, out):
    sd = load_state_dict(path)
    explain = "(check --dataset_mode, --label_nc, --contain_dontcare_label, --no_instance, --use_vae, " \
              "--num_upsampling_layers, --ngf/--ndf, --crop_size/--aspect_ratio, --z_dim)"
    for key, (shape, ours, tag) in plan.entries.items():
        if key not in sd:
            raise ImportError_("%s (%s): tensor '%s' %s is missing %s" % (what, path, key, shape, explain))
        got = tuple(sd[key].shape)
        if ours and got != shape:
            raise ImportError_("%s (%s): tensor '%s' has shape %s, the options give %s %s"
                               % (what, path, key, got, shape, explain))
        if ours:
            out.append((ours, tag, ours_shape(shape, ours), sd[key]))
    extra = sorted(set(sd) - set(plan.entries))
    if extra:
        raise ImportError_("%s (%s): tensor '%s' %s is not part of the network the options describe%s %s"
                           % (what, path, extra[0], tuple(sd[extra[0]].shape),
                              " (and %d more)" % (len(extra) - 1) if len(extra) > 1 else "", explain))


def init_like_clsynth(plan, seed):
    """A fresh network as clsynth_model_create makes one (not bit-identical to it)."""
    rng = np.random.default_rng(seed)
    out, weights = [], {}
    for key, (shape, ours, tag) in plan.entries.items():
        if not ours:
            continue
        s = ours_shape(shape, ours)
        if ours.endswith(".w"):
            fan_in, fan_out = s[1] * s[2] * s[3], s[0] * s[2] * s[3]
            x = rng.standard_normal(s) * 0.02 * np.sqrt(2.0 / (fan_in + fan_out))
            weights[ours[:-2]] = x.reshape(s[0], -1)
        elif ours.endswith(".gamma") or ours.endswith(".running_var"):
            x = np.ones(s)
        elif ours.endswith(".u"):
            x = rng.standard_normal(s)
            x /= np.linalg.norm(x)
        else:
            x = np.zeros(s)  # biases, betas, running means; v is set below
        out.append([ours, tag, s, x])
    us = {t[0][:-2]: t[3].reshape(-1) for t in out if t[0].endswith(".u")}
    for t in out:
        if t[0].endswith(".v"):
            v = weights[t[0][:-2]].T @ us[t[0][:-2]]
            t[3] = v / max(np.linalg.norm(v), 1e-12)
    return [tuple(t) for t in out]


def options_text(o, snc):
    lines = {
        "dataset_mode": o.dataset_mode, "label_nc": o.label_nc,
        "contain_dontcare_label": int(o.contain_dontcare_label), "no_instance": int(o.no_instance),
        "preprocess_mode": o.preprocess_mode, "load_size": o.load_size, "crop_size": o.crop_size,
        "aspect_ratio": repr(float(o.aspect_ratio)), "netG": "condconv", "ngf": o.ngf, "nef": 0,
        "z_dim": o.z_dim, "nhidden": NHIDDEN, "num_upsampling_layers": o.num_upsampling_layers,
        "use_vae": int(o.use_vae), "no_pyramid": 0, "no_cond_attention": 0, "norm_G": o.norm_G,
        "norm_E": o.norm_E, "netD": "fpse", "ndf": o.ndf, "no_semantic_embedding": 0, "no_d_pyramid": 0,
        "fpse_plain_enc1": 0, "norm_D": o.norm_D, "seed": o.seed, "name": o.name,
    }
    text = "".join("%s=%s\n" % kv for kv in lines.items())
    text += "state.epoch=1\nstate.rng_counter=0\nstate.G.adam_step=0\nstate.D.adam_step=0\n"
    text += "import.source=tools/import_ccfpse.py\nimport.G=%s\nimport.D=%s\nimport.E=%s\nimport.semantic_nc=%d\n" % (
        o.G, o.D or "(initialized)", o.E or "", snc)
    return text


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--G", required=True, help="the authors' latest_net_G.pth")
    ap.add_argument("--D", help="the authors' latest_net_D.pth (optional)")
    ap.add_argument("--E", help="the authors' latest_net_E.pth (needed with --use_vae)")
    ap.add_argument("--out", required=True, help="clsynth checkpoint to write")
    ap.add_argument("--dataset_mode", default="coco", choices=sorted(MODES))
    ap.add_argument("--label_nc", type=int)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--contain_dontcare_label", dest="contain_dontcare_label", action="store_true", default=None)
    g.add_argument("--no_dontcare_label", dest="contain_dontcare_label", action="store_false")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--no_instance", dest="no_instance", action="store_true", default=None)
    g.add_argument("--instance", dest="no_instance", action="store_false")
    ap.add_argument("--use_vae", action="store_true", help="the models were trained with --use_vae (the released ones)")
    ap.add_argument("--num_upsampling_layers", choices=["normal", "more"])
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--ndf", type=int, default=64)
    ap.add_argument("--z_dim", type=int, default=256)
    ap.add_argument("--crop_size", type=int)
    ap.add_argument("--load_size", type=int)
    ap.add_argument("--aspect_ratio", type=float)
    ap.add_argument("--preprocess_mode")
    ap.add_argument("--norm_G", default="spectralsync_batch")
    ap.add_argument("--norm_D", default="spectralinstance")
    ap.add_argument("--norm_E", default="spectralinstance")
    ap.add_argument("--name", default="ccfpse_import")
    ap.add_argument("--seed", type=int, default=0, help="noise seed stored in the checkpoint (and D's init)")
    o = ap.parse_args(argv)
    for k, v in MODES[o.dataset_mode].items():
        if getattr(o, k) is None:
            setattr(o, k, v)
    if o.use_vae and not o.E:
        ap.error("--use_vae needs --E latest_net_E.pth")
    if o.E and not o.use_vae:
        ap.error("--E given without --use_vae")
    return o


def main(argv=None):
    o = parse(argv)
    snc = o.label_nc + int(o.contain_dontcare_label) + (0 if o.no_instance else 1)
    if o.use_vae and o.crop_size < 256:
        raise ImportError_("--crop_size %d: below 256 the authors' encoder has no layer6 and cannot feed its "
                           "4x4 linear layers; clsynth's encoder always has it" % o.crop_size)
    tensors = []
    convert("G", o.G, plan_G(o, snc), tensors)
    if o.use_vae:
        convert("E", o.E, plan_E(o), tensors)
    if o.D:
        convert("D", o.D, plan_D(o, snc), tensors)
    else:
        tensors += init_like_clsynth(plan_D(o, snc), o.seed)
    # no Adam moments: clsynth_model_load starts them at zero (state.*.adam_step is 0)
    write_checkpoint(o.out, options_text(o, snc), tensors)
    n_g = sum(int(np.prod(t[2])) for t in tensors if t[1] == "param" and t[0].startswith("G.") and
              not t[0].startswith("G.E."))
    n_e = sum(int(np.prod(t[2])) for t in tensors if t[1] == "param" and t[0].startswith("G.E."))
    n_d = sum(int(np.prod(t[2])) for t in tensors if t[1] == "param" and t[0].startswith("D."))
    print("wrote %s: %s, semantic_nc %d, %s upsampling%s; parameters G %d, D %d%s, E %d"
          % (o.out, o.dataset_mode, snc, o.num_upsampling_layers, ", VAE" if o.use_vae else "", n_g, n_d,
             "" if o.D else " (initialized)", n_e))


if __name__ == "__main__":
    try:
        main()
    except ImportError_ as e:
        sys.exit("import_ccfpse: %s" % e)
