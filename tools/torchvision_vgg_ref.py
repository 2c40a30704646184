#!/usr/bin/python3
# Writes torchvision VGG16 and VGG16-BN state_dicts (random init, seed 0) and
# their logits on a random 2x3x64x64 batch as safetensors files into DIR
# (default /tmp/tv), for tools/torchvision_vgg_check.lua.  Needs Debian's
# python3-torchvision; the test suite does not.
import sys, json, struct, torch, torchvision
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tv"
os.makedirs(out, exist_ok=True)
from make_safetensors_ref import save
torch.manual_seed(0)
for name, ctor in (("vgg16", torchvision.models.vgg16), ("vgg16_bn", torchvision.models.vgg16_bn)):
    m = ctor(weights=None).eval()
    if name == "vgg16_bn":
        # non-trivial running statistics
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        y = m(x)
    sd = {k: v.contiguous() for k, v in m.state_dict().items()}
    save(f"{out}/{name}.safetensors", sd)
    save(f"{out}/{name}_io.safetensors", {"x": x, "y": y})
    print(name, y.shape, float(y.abs().max()))
