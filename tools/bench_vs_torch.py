#!/usr/bin/env python3
"""clsynth against PyTorch on the same device, side by side (run by hand; PyTorch is
never a build or test dependency).

    python3 tools/bench_vs_torch.py                                   # tiny, small, paperw on the CPU
    python3 tools/bench_vs_torch.py --configs tiny --repeats 5
    python3 tools/bench_vs_torch.py --ccfpse /path/to/CC-FPSE         # the authors' networks instead
    python3 tools/bench_vs_torch.py --configs paper --device cuda --clsynth-device nvidia   # a GPU

For each configuration it runs, in turn and interleaved (A B A B ...), `clsynth bench step
--json` (A: the configuration as `clsynth train` runs it) and a PyTorch process (B) training the
same configuration: the spec-built model of tools/ref_ccfpse_torch.py in float32 with PyTorch's
fused norms, or with --ccfpse DIR the authors' CondConvGenerator / FPSEDiscriminator (/
ConvEncoder) imported from where DIR lies (nothing of it is copied). The training setup is
clsynth's: hinge loss + feature matching (lambda_feat), no VGG, no VAE unless the configuration
has --use_vae (then KLD), Adam under TTUR (lr/2 for G, 2 lr for D, betas 0 and 0.9), one G step
then one D step per iteration, batch norm in training mode, spectral norm with one power
iteration per pass; weights as both initialize them (xavier normal, gain 0.02). The PyTorch
model is built from clsynth's resolved options (its JSON), and the parameter counts of G, D
(and E) must be equal (the script stops otherwise; for the authors' code, the parameters that
receive a gradient: their CC blocks hold three BatchNorms they never use).

Each run is its own process: W warm-up + N timed training steps (median), then G inference in
eval mode without grad (median images/s at --infer-batch). Memory: the peak resident set of
each process (VmHWM; on a CPU device clsynth's includes its device buffers and CLBlast's) and
clsynth's pool peak; on CUDA also torch.cuda.max_memory_allocated. The load average is read
before and after every run. Threads: PyTorch gets torch.set_num_threads(--threads, default the
core count) and OMP_NUM_THREADS = MKL_NUM_THREADS = that; PoCL runs one thread per core of
its device (POCL_MAX_PTHREAD_COUNT = POCL_CPU_MAX_CU_COUNT = --threads unless set). The
ratios are medians of the pairs' ratios. CPU s per step is the process's user + system time
per step: on a machine loaded past its cores, wall times mostly measure the wait for a core
(OpenMP's barriers suffer most: each waits for the slowest thread to be scheduled again), so
compare there with --threads 1 as well. The result: a markdown table (--md, and printed) ready for platforms.md and every
run's figures in --json.

Configurations (clsynth flags; the PyTorch side follows them):
  tiny    --preset tiny                                      64x64, batch 2, ngf 8
  small   --preset small                                     128x128, batch 4, ngf 32
  paperw  --preset paper --dataset_mode coco --crop_size 64 --load_size 64 --batchSize 1
          (the paper's widths, ngf = ndf = 64, nhidden 128, COCO-Stuff's 184 label channels)
  paper   --preset paper --dataset_mode coco                 256x256, batch 8 (GPU only)
With --ccfpse, nhidden is set to 128 for every configuration (hard-coded in the authors'
DepthsepCCBlock) so that the parameter counts can be equal.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CONFIGS = {
    "tiny": (["--preset", "tiny"], "tiny (64², batch 2)"),
    "small": (["--preset", "small"], "small (128², batch 4)"),
    "paperw": (["--preset", "paper", "--dataset_mode", "coco", "--crop_size", "64", "--load_size", "64",
                "--batchSize", "1"], "paper width at 64², batch 1 (ngf 64)"),
    "paper": (["--preset", "paper", "--dataset_mode", "coco"], "paper (256², batch 8)"),
}
GPU_ONLY = {"paper"}


# ------------------------------------------------------------------ helpers

def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def vm_hwm():
    """Peak resident set of this process, bytes (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def parse_options(text):
    o = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            o[k.strip()] = v.strip()
    return o


def config_from_options(o, semantic_nc):
    """The ref model's configuration dict from clsynth's resolved options; refuses
    what the PyTorch side does not build."""
    need = dict(netG="condconv", netD="fpse", num_upsampling_layers="normal", no_instance="0", no_pyramid="0",
                no_cond_attention="0", no_semantic_embedding="0", no_d_pyramid="0", fpse_plain_enc1="0",
                no_ganFeat_loss="0", norm_G="spectralspadesyncbatch3x3", norm_D="spectralinstance")
    for k, v in need.items():
        if k in o and o[k] != v:
            sys.exit("bench_vs_torch: the PyTorch side builds %s=%s only (clsynth has %s)" % (k, v, o[k]))
    if float(o.get("aspect_ratio", "1")) != 1.0:
        sys.exit("bench_vs_torch: square images only (aspect_ratio %s)" % o["aspect_ratio"])
    label_nc = int(o["label_nc"])
    dontcare = semantic_nc - label_nc - 1
    if dontcare not in (0, 1):
        sys.exit("bench_vs_torch: semantic_nc %d does not fit label_nc %d + instance edges" % (semantic_nc, label_nc))
    ttur = o.get("no_TTUR", "0") == "0"
    lr = float(o["lr"])
    b1, b2 = float(o["beta1"]), float(o["beta2"])
    b1 = b1 if b1 >= 0 else (0.0 if ttur else 0.5)
    b2 = b2 if b2 >= 0 else (0.9 if ttur else 0.999)
    return dict(label_nc=label_nc, dontcare=dontcare, snc=semantic_nc, crop=int(o["crop_size"]), ngf=int(o["ngf"]),
                ndf=int(o["ndf"]), z_dim=int(o["z_dim"]), nhidden=int(o["nhidden"]), use_vae=o.get("use_vae") == "1",
                batch=int(o["batchSize"]), lr_g=lr / 2 if ttur else lr, lr_d=lr * 2 if ttur else lr, betas=(b1, b2),
                lambda_feat=float(o["lambda_feat"]), lambda_kld=float(o["lambda_kld"]),
                dataset_mode=o.get("dataset_mode", "custom"), seed=int(o.get("seed", "0")))


# ------------------------------------------------------------------ the PyTorch worker

def make_inputs(torch, c, dev):
    """Labels in 8x8 blocks of a class (as clsynth's bench workload), 10 % instance
    edges, an image in [-1, 1]; seg = one-hot (+ don't care) + edges."""
    g = torch.Generator().manual_seed(1)
    N, H = c["batch"], c["crop"]
    blocks = torch.randint(0, c["label_nc"], (N, 1, (H + 7) // 8, (H + 7) // 8), generator=g)
    labels = blocks.repeat_interleave(8, 2).repeat_interleave(8, 3)[:, :, :H, :H]
    edges = (torch.rand(N, 1, H, H, generator=g) < 0.1).float()
    real = torch.rand(N, 3, H, H, generator=g) * 2 - 1
    onehot = torch.zeros(N, c["label_nc"] + c["dontcare"], H, H).scatter_(1, labels, 1.0)
    seg = torch.cat([onehot, edges], 1)
    return seg.to(dev), real.to(dev)


class SpecModel:
    """tools/ref_ccfpse_torch.py's functions over a float32 parameter table."""

    def __init__(self, torch, c, dev):
        import ref_ccfpse_torch as ref
        self.torch, self.ref, self.c = torch, ref, c
        S = ref.declare(c)
        g = torch.Generator().manual_seed(c["seed"] + 1)
        for name, t in S.P.items():  # clsynth's initialization: xavier normal gain 0.02, biases 0, gamma 1
            if name.endswith(".w"):
                fan_in, fan_out = t[0].numel(), t.shape[0] * t.shape[2] * t.shape[3]
                S.P[name] = torch.randn(t.shape, generator=g) * (0.02 * (2.0 / (fan_in + fan_out)) ** 0.5)
            elif name.endswith(".gamma"):
                S.P[name] = torch.ones(t.shape)
        for name, t in S.B.items():
            if name.endswith(".running_var"):
                S.B[name] = torch.ones(t.shape)
            elif name.endswith(".u"):
                u = torch.randn(t.shape, generator=g)
                S.B[name] = u / u.norm()
        for name in S.B:
            if name.endswith(".v"):
                base = name[:-2]
                W = S.P[base + ".w"].reshape(S.P[base + ".w"].shape[0], -1)
                v = W.t() @ S.B[base + ".u"].reshape(-1)
                S.B[name] = (v / v.norm().clamp_min(1e-12)).reshape(S.B[name].shape)
        S.P = {k: v.to(dev).requires_grad_(True) for k, v in S.P.items()}
        S.B = {k: v.to(dev) for k, v in S.B.items()}
        self.S = S
        self.gp = [v for k, v in S.P.items() if k.startswith("G.")]
        self.dp = [v for k, v in S.P.items() if k.startswith("D.")]
        self.opt_g = torch.optim.Adam(self.gp, lr=c["lr_g"], betas=c["betas"], eps=1e-8)
        self.opt_d = torch.optim.Adam(self.dp, lr=c["lr_d"], betas=c["betas"], eps=1e-8)

    def counts(self):
        P = self.S.P
        e = sum(v.numel() for k, v in P.items() if k.startswith("G.E."))
        g = sum(v.numel() for k, v in P.items() if k.startswith("G.")) - e
        d = sum(v.numel() for k, v in P.items() if k.startswith("D."))
        return g, d, e

    def eps(self, n):
        return self.torch.randn(n, self.c["z_dim"], device=self.dev_of()) if self.c["use_vae"] else None

    def dev_of(self):
        return self.gp[0].device

    def train_step(self, seg, real):
        torch, ref, c, S = self.torch, self.ref, self.c, self.S
        R = lambda: ref.Run(S, True, fused=True)  # noqa: E731
        # G step (D's parameters need no gradient here, as in clsynth)
        self.opt_g.zero_grad(set_to_none=True)
        for p in self.dp:
            p.requires_grad_(False)
        l_gan, l_feat, l_kld, _ = ref.g_losses(c, R(), R(), seg, real, self.eps(seg.shape[0]))
        (l_gan + l_feat + l_kld).backward()
        self.opt_g.step()
        for p in self.dp:
            p.requires_grad_(True)
        # D step
        self.opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            Rg = R()
            z = None
            if c["use_vae"]:
                mu, logvar = ref.encoder(Rg, real)
                z = mu + self.eps(seg.shape[0]) * torch.exp(0.5 * logvar)
            fake = ref.generator(Rg, c, seg, z)
        sf, _ = ref.discriminator(R(), fake, seg)
        sr, _ = ref.discriminator(ref.Run(S, False, fused=True), real, seg)
        d = sum(torch.relu(1 + s).mean() for s in sf) / len(sf) + sum(torch.relu(1 - s).mean() for s in sr) / len(sr)
        d.backward()
        self.opt_d.step()

    def infer(self, seg):
        with self.torch.no_grad():
            return self.ref.generator(self.ref.Run(self.S, False, train=False, fused=True), self.c, seg,
                                      self.eps(seg.shape[0]))


class AuthorsModel:
    """The authors' networks (their code, imported from --ccfpse DIR) trained as their
    Pix2PixModel / Pix2PixTrainer do (D on fake and real concatenated), on any device."""

    def __init__(self, torch, c, dev, path):
        from compare_ccfpse import import_authors
        CondConvGenerator, ConvEncoder = import_authors(path)
        from models.networks.discriminator import FPSEDiscriminator
        from models.networks.loss import GANLoss, KLDLoss
        self.torch, self.c = torch, c
        opt = argparse.Namespace(dataset_mode=c["dataset_mode"], label_nc=c["label_nc"],
                                 contain_dontcare_label=bool(c["dontcare"]), no_instance=False, crop_size=c["crop"],
                                 aspect_ratio=1.0, ngf=c["ngf"], ndf=c["ndf"], z_dim=c["z_dim"],
                                 use_vae=c["use_vae"], norm_G="spectralsync_batch", norm_D="spectralinstance",
                                 norm_E="spectralinstance", mpdist=False, semantic_nc=c["snc"])
        torch.manual_seed(c["seed"] + 1)
        self.G, self.D = CondConvGenerator(opt), FPSEDiscriminator(opt)
        self.E = ConvEncoder(opt) if c["use_vae"] else None
        for net in (self.G, self.D, self.E):
            if net is not None:
                net.init_weights("xavier", 0.02)
                net.to(dev)
                net.train()
        gparams = list(self.G.parameters()) + (list(self.E.parameters()) if self.E else [])
        self.opt_g = torch.optim.Adam(gparams, lr=c["lr_g"], betas=c["betas"])
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=c["lr_d"], betas=c["betas"])
        self.gan = GANLoss("hinge", tensor=torch.FloatTensor if dev == "cpu" else torch.cuda.FloatTensor)
        self.kld = KLDLoss()
        self.used = None

    def fake(self, seg, real, kld=False):
        torch = self.torch
        z, loss = None, None
        if self.E is not None:
            mu, logvar = self.E(real)
            z = torch.randn_like(mu) * torch.exp(0.5 * logvar) + mu
            if kld:
                loss = self.kld(mu, logvar) * self.c["lambda_kld"]
        return self.G(seg, z=z), loss

    def discriminate(self, seg, fake, real):
        feats, preds = self.D(self.torch.cat([fake, real], 0), segmap=self.torch.cat([seg, seg], 0))
        half = lambda ts: ([t[:t.shape[0] // 2] for t in ts], [t[t.shape[0] // 2:] for t in ts])  # noqa: E731
        (ff, fr), (pf, pr) = half(feats), half(preds)
        return ff, pf, fr, pr

    def train_step(self, seg, real):
        torch = self.torch
        self.opt_g.zero_grad()
        fake, kld = self.fake(seg, real, kld=True)
        ff, pf, fr, pr = self.discriminate(seg, fake, real)
        loss = self.gan(pf, True, for_discriminator=False)
        loss = loss + sum(torch.nn.functional.l1_loss(a, b.detach()) for a, b in zip(ff, fr)) * \
            (self.c["lambda_feat"] / len(ff))
        if kld is not None:
            loss = loss + kld
        loss.backward()
        self.opt_g.step()
        g_used = [p for p in self.opt_g.param_groups[0]["params"] if p.grad is not None]
        self.opt_d.zero_grad()
        with torch.no_grad():
            fake, _ = self.fake(seg, real)
        fake = fake.detach().requires_grad_()
        _, pf, _, pr = self.discriminate(seg, fake, real)
        (self.gan(pf, False, for_discriminator=True) + self.gan(pr, True, for_discriminator=True)).backward()
        self.opt_d.step()
        if self.used is None:  # parameters that take part (their CC blocks hold unused BatchNorms)
            e = sum(p.numel() for p in self.E.parameters() if p.grad is not None) if self.E else 0
            g = sum(p.numel() for p in g_used) - e
            d = sum(p.numel() for p in self.D.parameters() if p.grad is not None)
            self.used = (g, d, e)

    def counts(self):
        return self.used

    def infer(self, seg):
        torch = self.torch
        self.G.eval()
        with torch.no_grad():
            z = torch.randn(seg.shape[0], self.c["z_dim"], device=seg.device) if self.c["use_vae"] else None
            y = self.G(seg, z=z)
        self.G.train()
        return y


def worker(args):
    import torch
    torch.set_num_threads(args.threads)
    dev = args.device
    with open(args.worker_config) as f:
        spec = json.load(f)
    c = config_from_options(parse_options(spec["options"]), spec["semantic_nc"])
    torch.manual_seed(c["seed"])
    seg, real = make_inputs(torch, c, dev)
    model = AuthorsModel(torch, c, dev, args.ccfpse) if args.ccfpse else SpecModel(torch, c, dev)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    steps, cpu = [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        model.train_step(seg, real)
        sync()
        steps.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print("  torch step %d%s: %.3f s" % (i + 1, " (warm-up)" if i < args.warmup else "", steps[-1]), flush=True)
    g, d, e = model.counts()
    infer_s = []
    for i in range(args.infer + 1):  # the first is a warm-up
        t0 = time.perf_counter()
        model.infer(seg[:args.infer_batch])
        sync()
        infer_s.append(time.perf_counter() - t0)
    infer_s = infer_s[1:]
    out = dict(steps_s=steps, steps_cpu_s=cpu, warmup=args.warmup, step_median_s=statistics.median(steps[args.warmup:]),
               infer_batch=args.infer_batch, infer_s=infer_s,
               infer_images_per_s=args.infer_batch / statistics.median(infer_s) if infer_s else None,
               params_G=g, params_D=d, params_E=e, rss_peak=vm_hwm(), torch=torch.__version__,
               threads=torch.get_num_threads(), model="authors" if args.ccfpse else "spec")
    if dev.startswith("cuda"):
        out["cuda_peak_allocated"] = torch.cuda.max_memory_allocated()
        out["cuda_peak_reserved"] = torch.cuda.max_memory_reserved()
        out["cuda_device"] = torch.cuda.get_device_name()
    with open(args.worker_out, "w") as f:
        json.dump(out, f)


# ------------------------------------------------------------------ the driver

def run_clsynth(args, flags, out, steps, warmup, infer):
    cmd = [args.clsynth, "bench", "step", "--steps", str(steps), "--warmup", str(warmup), "--infer", str(infer),
           "--infer-batch", str(args.infer_batch), "--json", out] + flags
    if args.clsynth_device:
        cmd += ["--device", args.clsynth_device]
    env = dict(os.environ)
    if args.tuning == "default":
        env["CLSYNTH_TUNE"] = "0"
    if args.device == "cpu":  # PoCL's CPU device: as many threads as PyTorch's (unless set by the caller)
        env.setdefault("POCL_MAX_PTHREAD_COUNT", str(args.threads))
        env.setdefault("POCL_CPU_MAX_CU_COUNT", str(args.threads))
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("step") or line.startswith("training") or line.startswith("inference"):
            print("  clsynth " + line, flush=True)
    if r.returncode != 0:
        sys.exit("bench_vs_torch: %s failed (exit %d):\n%s" % (" ".join(cmd), r.returncode, r.stdout[-3000:]))
    with open(out) as f:
        return json.load(f)


def run_torch(args, spec_path, out):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker-config", spec_path, "--worker-out", out,
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--infer", str(args.infer),
           "--infer-batch", str(args.infer_batch), "--threads", str(args.threads), "--device", args.device]
    if args.ccfpse:
        cmd += ["--ccfpse", args.ccfpse]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        sys.exit("bench_vs_torch: the PyTorch worker failed (exit %d): %s" % (r.returncode, " ".join(cmd)))
    with open(out) as f:
        return json.load(f)


def mib(b):
    return b / 1048576.0


def fmt_mem(b):
    return "%.2f GiB" % (b / 2 ** 30) if b >= 2 ** 30 else "%.0f MiB" % mib(b)


def summarize(name, desc, runs):
    a = [r["clsynth"] for r in runs]
    b = [r["torch"] for r in runs]
    med = lambda xs: statistics.median(xs)  # noqa: E731
    s = dict(config=name, desc=desc,
             clsynth_step_s=med([x["step_median_s"] for x in a]), torch_step_s=med([x["step_median_s"] for x in b]),
             clsynth_first_step_s=med([x["steps_s"][0] for x in a]),
             clsynth_step_cpu_s=med([med(x["steps_cpu_s"][x["warmup"]:]) for x in a]),
             torch_step_cpu_s=med([med(x["steps_cpu_s"][x["warmup"]:]) for x in b]),
             clsynth_infer_ips=med([x["infer_images_per_s"] for x in a]),
             torch_infer_ips=med([x["infer_images_per_s"] for x in b]),
             clsynth_pool_peak=max(x["pool_peak_reserved"] for x in a), clsynth_rss_peak=max(x["rss_peak"] for x in a),
             torch_rss_peak=max(x["rss_peak"] for x in b), infer_batch=a[0]["infer_batch"],
             load_min=min(min(r["load_before"][0], r["load_after"][0]) for r in runs),
             load_max=max(max(r["load_before"][0], r["load_after"][0]) for r in runs),
             clsynth_step_all=[x["step_median_s"] for x in a], torch_step_all=[x["step_median_s"] for x in b])
    if "cuda_peak_allocated" in b[0]:
        s["torch_cuda_peak"] = max(x["cuda_peak_allocated"] for x in b)
    # ratios: the median of the pairs' ratios (each pair ran back to back, at about the same load)
    s["step_ratio"] = med([x["step_median_s"] / y["step_median_s"] for x, y in zip(a, b)])
    s["infer_ratio"] = med([y["infer_images_per_s"] / x["infer_images_per_s"] for x, y in zip(a, b)])
    s["step_cpu_ratio"] = med([med(x["steps_cpu_s"][x["warmup"]:]) / med(y["steps_cpu_s"][y["warmup"]:])
                               for x, y in zip(a, b)])
    return s


def table(summaries, args):
    ref = "the authors' code" if args.ccfpse else "spec model"
    lines = ["| configuration | training step clsynth | PyTorch (%s) | clsynth / PyTorch time | CPU s per step "
             "clsynth / PyTorch (ratio) | inference clsynth (batch %d) | PyTorch | clsynth / PyTorch time | peak memory "
             "clsynth: pool / process RSS | PyTorch process RSS%s | load average (1 min) |"
             % (ref, args.infer_batch, " / CUDA allocated" if args.device != "cpu" else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        tm = fmt_mem(s["torch_rss_peak"])
        if "torch_cuda_peak" in s:
            tm += " / " + fmt_mem(s["torch_cuda_peak"])
        lines.append("| %s | %.3f s (first %.3f s) | %.3f s | %.2f× | %.2f / %.2f (%.2f×) | %.2f img/s | %.2f img/s | %.2f× | "
                     "%s / %s | %s | %.1f–%.1f |" % (s["desc"], s["clsynth_step_s"], s["clsynth_first_step_s"],
                                      s["torch_step_s"], s["step_ratio"], s["clsynth_step_cpu_s"],
                                      s["torch_step_cpu_s"], s["step_cpu_ratio"], s["clsynth_infer_ips"], s["torch_infer_ips"],
                                      s["infer_ratio"],
                                      fmt_mem(s["clsynth_pool_peak"]), fmt_mem(s["clsynth_rss_peak"]), tm,
                                      s["load_min"], s["load_max"]))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clsynth", default=os.path.join(HERE, "..", "build", "clsynth"), help="the clsynth binary")
    ap.add_argument("--configs", default="tiny,small,paperw", help="comma-separated: " + ", ".join(CONFIGS))
    ap.add_argument("--repeats", type=int, default=3, help="interleaved A B pairs per configuration")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per run (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed training steps first (PyTorch's oneDNN builds its kernels in the first two)")
    ap.add_argument("--infer", type=int, default=3, help="timed inferences per run (after one warm-up)")
    ap.add_argument("--infer-batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="cpu", help="PyTorch's device: cpu or cuda")
    ap.add_argument("--clsynth-device", default=None, help="clsynth's --device (default: its default device)")
    ap.add_argument("--tuning", choices=("default", "installed"), default="default",
                    help="clsynth untuned (CLSYNTH_TUNE=0: the built-in defaults) or with the tuning installed")
    ap.add_argument("--ccfpse", help="a checkout of the authors' CC-FPSE: benchmark their networks")
    ap.add_argument("--json", default="bench_vs_torch.json")
    ap.add_argument("--md", default="bench_vs_torch.md")
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker_config:
        return worker(args)
    names = [n for n in args.configs.split(",") if n]
    for n in names:
        if n not in CONFIGS:
            sys.exit("bench_vs_torch: unknown configuration '%s' (%s)" % (n, ", ".join(CONFIGS)))
    if args.device == "cpu":
        skipped = [n for n in names if n in GPU_ONLY]
        if skipped:
            print("skipping %s: a GPU configuration (--device cuda)" % ", ".join(skipped))
        names = [n for n in names if n not in GPU_ONLY]
    if not os.access(args.clsynth, os.X_OK):
        sys.exit("bench_vs_torch: %s is not an executable clsynth (--clsynth)" % args.clsynth)
    head = subprocess.run(["git", "-C", HERE, "log", "-1", "--format=%h"], stdout=subprocess.PIPE, text=True)
    result = dict(command=" ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]), commit=head.stdout.strip(),
                  threads=args.threads, device=args.device, tuning=args.tuning, ccfpse=bool(args.ccfpse),
                  env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "POCL_MAX_PTHREAD_COUNT",
                                                      "POCL_CPU_MAX_CU_COUNT", "CLSYNTH_DEVICE")},
                  started=time.strftime("%Y-%m-%d %H:%M:%S"), configs={})
    summaries = []
    with tempfile.TemporaryDirectory(prefix="bench_vs_torch.") as tmp:
        for n in names:
            flags, desc = CONFIGS[n]
            flags = list(flags) + (["--nhidden", "128"] if args.ccfpse else [])
            print("== %s: clsynth %s" % (desc, " ".join(flags)), flush=True)
            spec_path = os.path.join(tmp, n + ".spec.json")
            run_clsynth(args, flags, spec_path, 0, 0, 0)  # the resolved options and the parameter counts
            with open(spec_path) as f:
                spec = json.load(f)
            runs = []
            for r in range(args.repeats):
                run = dict(load_before=loadavg())
                run["clsynth"] = run_clsynth(args, flags, os.path.join(tmp, "a.json"), args.steps, args.warmup,
                                             args.infer)
                run["load_mid"] = loadavg()
                run["torch"] = run_torch(args, spec_path, os.path.join(tmp, "b.json"))
                run["load_after"] = loadavg()
                a, b = run["clsynth"], run["torch"]
                ca = (spec["params_G"], spec["params_D"], spec["params_E"])
                cb = (b["params_G"], b["params_D"], b["params_E"])
                if ca != cb:
                    sys.exit("bench_vs_torch: %s: parameter counts differ: clsynth G %d D %d E %d, PyTorch G %d D %d "
                             "E %d" % ((n,) + ca + cb))
                print("  pair %d/%d: step %.3f s vs %.3f s (%.2fx), inference %.2f vs %.2f img/s; load %.2f -> %.2f"
                      % (r + 1, args.repeats, a["step_median_s"], b["step_median_s"],
                         a["step_median_s"] / b["step_median_s"], a["infer_images_per_s"], b["infer_images_per_s"],
                         run["load_before"][0], run["load_after"][0]), flush=True)
                runs.append(run)
            s = summarize(n, desc, runs)
            s["params"] = dict(G=spec["params_G"], D=spec["params_D"], E=spec["params_E"])
            s["clsynth_flags"] = flags
            summaries.append(s)
            result["configs"][n] = dict(summary=s, runs=runs, clsynth_options=spec["options"])
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    md = table(summaries, args)
    note = ("\n\n`%s` at %s; %d interleaved pairs per configuration, each run %d warm-up + %d timed steps (median), "
            "inference median of %d; PyTorch %d threads (OMP_NUM_THREADS=MKL_NUM_THREADS=%d), clsynth %s.\n"
            % (result["command"], result["commit"], args.repeats, args.warmup, args.steps, args.infer, args.threads,
               args.threads, "untuned (CLSYNTH_TUNE=0)" if args.tuning == "default" else "with the installed tuning"))
    print("\n" + md + note)
    with open(args.md, "w") as f:
        f.write(md + note)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote %s and %s" % (args.md, args.json))


if __name__ == "__main__":
    main()
