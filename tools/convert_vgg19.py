#!/usr/bin/env python3
"""Converts torchvision's ImageNet VGG19 weights into the clsynth VGG19 file
that `--vgg_weights FILE` reads (format: nets/vgg.h; container:
io/checkpoint.h, written by tools/clsynth_ckpt.py).

Run by hand where torch and torchvision are installed (never part of the build):

    python3 tools/convert_vgg19.py vgg19.ckpt                 # downloads the weights
    python3 tools/convert_vgg19.py vgg19.ckpt --state-dict vgg19-dcbb9e9d.pth

Only the 13 convolutions up to conv5_1 are written, as
vgg.convA_B.weight (cout, cin, 3, 3) and vgg.convA_B.bias (cout)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clsynth_ckpt import write_checkpoint  # noqa: E402 (tools/clsynth_ckpt.py)

# torchvision vgg19().features index of each conv up to conv5_1
LAYERS = [
    ("conv1_1", 0), ("conv1_2", 2),
    ("conv2_1", 5), ("conv2_2", 7),
    ("conv3_1", 10), ("conv3_2", 12), ("conv3_3", 14), ("conv3_4", 16),
    ("conv4_1", 19), ("conv4_2", 21), ("conv4_3", 23), ("conv4_4", 25),
    ("conv5_1", 28),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output", help="clsynth VGG19 file to write")
    ap.add_argument("--state-dict", help="torchvision vgg19 .pth (default: download the ImageNet weights)")
    args = ap.parse_args()
    import torch
    import torchvision

    if args.state_dict:
        sd = torch.load(args.state_dict, map_location="cpu")
    else:
        try:
            weights = torchvision.models.VGG19_Weights.IMAGENET1K_V1
            model = torchvision.models.vgg19(weights=weights)
        except AttributeError:  # torchvision < 0.13
            model = torchvision.models.vgg19(pretrained=True)
        sd = model.state_dict()
    tensors = []
    for name, idx in LAYERS:
        wt = sd["features.%d.weight" % idx].detach().float().cpu().numpy()
        bs = sd["features.%d.bias" % idx].detach().float().cpu().numpy()
        if wt.ndim != 4 or wt.shape[2:] != (3, 3) or bs.shape != (wt.shape[0],):
            sys.exit("features.%d: unexpected shapes %s, %s" % (idx, wt.shape, bs.shape))
        tensors.append(("vgg.%s.weight" % name, "param", wt.shape, wt))
        tensors.append(("vgg.%s.bias" % name, "param", bs.shape, bs))
    write_checkpoint(args.output, "format=vgg19\nsource=torchvision vgg19 IMAGENET1K_V1\n", tensors)
    print("wrote %s (%d tensors)" % (args.output, len(tensors)))


if __name__ == "__main__":
    main()
