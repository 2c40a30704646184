#!/usr/bin/python3
"""Generate tests/ref/augment_ref.lua: torchvision's outputs for the
augmentation cases checked by tests/augment_spec.lua.

Run from the repository root with the system Python (Debian's
python3-torchvision):

    /usr/bin/python3 tools/gen_augment_ref.py

Each case names a small test image (rebuilt by the spec from the same
formula), a Lua expression evaluated with T = nn.augment and
F = nn.augment.functional, and torchvision's result on float32 tensors.
Random transforms are given degenerate ranges ({a, a}) so that their
parameters are fixed.  A case with `windows = true` holds torchvision's
padded image instead: the random crop must be one of its windows.

The tests never run torch: the generated file is committed.
"""
import os
import struct

import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "ref", "augment_ref.lua")

# name -> (shape, salt): pixel (c, y, x) = ((37c + 11y + 7x + salt) % 23) / 22
IMAGES = {"A": ((3, 6, 6), 0), "B": ((3, 5, 7), 5), "C": ((3, 5, 5), 9),
          "G": ((1, 4, 6), 3)}


def image(name):
    (c, h, w), salt = IMAGES[name]
    t = torch.empty(c, h, w, dtype=torch.float64)
    for k in range(c):
        for y in range(h):
            for x in range(w):
                t[k, y, x] = ((37 * k + 11 * y + 7 * x + salt) % 23) / 22
    return t.float()


NEAREST, BILINEAR = InterpolationMode.NEAREST, InterpolationMode.BILINEAR


def rot(img, angle, fill=0.0, center=None, interp=NEAREST):
    # RandomRotation always hands F.rotate a per-channel fill list.
    fill = fill if isinstance(fill, list) else [float(fill)] * img.shape[0]
    return F.rotate(img, angle, interp, False, center, fill)


def two_stage_pad(img, padding, size, mode):
    """RandomCrop's padding: `padding`, then pad_if_needed."""
    if padding is not None:
        img = F.pad(img, padding, 0, mode)
    _, h, w = img.shape
    if w < size[1]:
        img = F.pad(img, [size[1] - w, 0], 0, mode)
    if h < size[0]:
        img = F.pad(img, [0, size[0] - h], 0, mode)
    return img


CASES = []


def case(name, img, call, fn, tol=0.0, windows=False):
    CASES.append((name, img, call, fn(image(img)), tol, windows))


# Flips.
for im in ("A", "B"):
    case("hflip_" + im, im, "T.RandomHorizontalFlip(1)", F.hflip)
    case("vflip_" + im, im, "T.RandomVerticalFlip({p = 1})", F.vflip)

# CenterCrop, including sizes larger than the image (zero padding) and
# odd margins (Python's round half to even).
for im, size in (("B", [3, 4]), ("B", [4, 4]), ("B", [2, 3]), ("B", [7, 9]),
                 ("B", [5, 8]), ("A", [3, 3]), ("A", [8, 7]), ("A", [1, 6])):
    call = "T.CenterCrop({%d, %d})" % tuple(size)
    case("center_crop_%s_%dx%d" % (im, size[0], size[1]), im, call,
         lambda t, s=size: F.center_crop(t, s))
case("center_crop_int", "B", "T.CenterCrop(4)", lambda t: F.center_crop(t, 4))

# Padding: RandomCrop whose size is the padded size (one possible window),
# and Pad.
for mode in ("constant", "edge", "reflect", "symmetric"):
    case("random_crop_pad2_" + mode, "G",
         "T.RandomCrop({8, 10}, {padding = 2, padding_mode = '%s'})" % mode,
         lambda t, m=mode: F.pad(t, 2, 0, m))
    case("random_crop_pad_ltrb_" + mode, "G",
         "T.RandomCrop({6, 10}, {padding = {1, 2, 3, 0}, padding_mode = '%s'})" % mode,
         lambda t, m=mode: F.pad(t, [1, 2, 3, 0], 0, m))
    case("pad_lr_tb_" + mode, "G", "T.Pad({1, 2}, {padding_mode = '%s'})" % mode,
         lambda t, m=mode: F.pad(t, [1, 2], 0, m))
case("random_crop_pad_rgb", "B",
     "T.RandomCrop({7, 11}, {padding = {1, 2, 3, 0}, padding_mode = 'reflect'})",
     lambda t: F.pad(t, [1, 2, 3, 0], 0, "reflect"))
case("random_crop_fill", "G", "T.RandomCrop({8, 10}, {padding = 2, fill = 0.25})",
     lambda t: F.pad(t, 2, 0.25, "constant"))
case("pad_wide_symmetric", "G", "T.Pad(3, {padding_mode = 'symmetric'})",
     lambda t: F.pad(t, 3, 0, "symmetric"))

# pad_if_needed: the output must be a window of the two-stage padded image.
for mode, padding, size in (("reflect", None, [7, 10]), ("symmetric", 1, [9, 12]),
                            ("constant", None, [6, 9]), ("edge", [0, 1], [8, 8])):
    opt = "pad_if_needed = true, padding_mode = '%s'" % mode
    if padding is not None:
        opt += ", padding = %s" % (str(padding) if isinstance(padding, int)
                                   else "{%d, %d}" % tuple(padding))
    case("pad_if_needed_" + mode, "B", "T.RandomCrop({%d, %d}, {%s})" % (size[0], size[1], opt),
         lambda t, m=mode, p=padding, s=size: two_stage_pad(t, p, s, m), windows=True)

# Functional crop with given offsets (zero padding outside).
for top, left, h, w in ((1, 2, 3, 4), (-1, 2, 4, 7), (2, -3, 5, 6), (0, 0, 5, 7)):
    case("crop_%d_%d_%d_%d" % (top, left, h, w), "B", "F.crop(img, %d, %d, %d, %d)" % (top, left, h, w),
         lambda t, a=(top, left, h, w): F.crop(t, *a))

# Rotations (nearest, as RandomRotation's default).
for im in ("A", "B", "C"):
    for angle in ((90, 180, 270, -90) if im != "C" else (90, 180)):
        case("rotate_%s_%d" % (im, angle), im, "T.RandomRotation({%d, %d})" % (angle, angle),
             lambda t, a=angle: rot(t, a))
for im, angle in (("A", 45), ("B", 30), ("C", -60), ("B", 10)):
    case("rotate_%s_%d" % (im, angle), im, "T.RandomRotation({%d, %d})" % (angle, angle),
         lambda t, a=angle: rot(t, a))
case("rotate_fill", "A", "T.RandomRotation({45, 45}, {fill = 0.5})",
     lambda t: rot(t, 45, 0.5))
case("rotate_fill_rgb", "B", "T.RandomRotation({30, 30}, {fill = {0.1, 0.2, 0.3}})",
     lambda t: rot(t, 30, [0.1, 0.2, 0.3]))
case("rotate_center", "A", "T.RandomRotation({90, 90}, {center = {1, 2}})",
     lambda t: rot(t, 90, center=[1, 2]))
case("rotate_bilinear", "B", "T.RandomRotation({30, 30}, {interpolation = 'bilinear'})",
     lambda t: rot(t, 30, interp=BILINEAR), tol=1e-5)
case("rotate_bilinear_fill", "A",
     "T.RandomRotation({-20, -20}, {interpolation = 'bilinear', fill = 0.7})",
     lambda t: rot(t, -20, 0.7, interp=BILINEAR), tol=1e-5)
case("rotate_functional", "B", "F.rotate(img, 90)", lambda t: F.rotate(t, 90))

# Affine maps with fixed parameters.
case("affine_scale_shear", "B",
     "T.RandomAffine({20, 20}, {scale = {1.1, 1.1}, shear = {10, 10, 5, 5}})",
     lambda t: F.affine(t, 20.0, [0, 0], 1.1, [10.0, 5.0], NEAREST, [0.0] * 3))
case("affine_bilinear", "A",
     "T.RandomAffine({-15, -15}, {scale = {0.8, 0.8}, shear = {7, 7}, "
     "interpolation = 'bilinear', fill = 0.2})",
     lambda t: F.affine(t, -15.0, [0, 0], 0.8, [7.0, 0.0], BILINEAR, [0.2] * 3), tol=1e-5)
case("affine_functional", "B", "F.affine(img, 15, {1, -2}, 0.9, {5, 0})",
     lambda t: F.affine(t, 15.0, [1, -2], 0.9, [5.0, 0.0]))
case("affine_functional_bilinear", "B",
     "F.affine(img, -25, {2, 1}, 1.2, {0, 8}, {interpolation = 'bilinear', fill = 0.5})",
     lambda t: F.affine(t, -25.0, [2, 1], 1.2, [0.0, 8.0], BILINEAR, [0.5] * 3), tol=1e-5)

# ColorJitter with fixed factors (one adjustment each, so the random order
# does not matter).
for im in ("A", "G"):
    for f in (1.3, 0.6):
        case("brightness_%s_%g" % (im, f), im, "T.ColorJitter{brightness = {%g, %g}}" % (f, f),
             lambda t, f=f: F.adjust_brightness(t, f), tol=1e-6)
    for f in (0.5, 1.5):
        case("contrast_%s_%g" % (im, f), im, "T.ColorJitter{contrast = {%g, %g}}" % (f, f),
             lambda t, f=f: F.adjust_contrast(t, f), tol=1e-6)
for f in (0.3, 1.7):
    case("saturation_%g" % f, "A", "T.ColorJitter{saturation = {%g, %g}}" % (f, f),
         lambda t, f=f: F.adjust_saturation(t, f), tol=1e-6)
case("saturation_gray", "G", "T.ColorJitter{saturation = {0.3, 0.3}}", lambda t: t)
for f in (0.2, -0.35, 0.5, -0.5):
    case("hue_%g" % f, "A", "T.ColorJitter{hue = {%g, %g}}" % (f, f),
         lambda t, f=f: F.adjust_hue(t, f), tol=1e-3)
for f in (0.2, -0.35):
    case("hue_exact_%g" % f, "B", "F.adjust_hue(img, %g)" % f,
         lambda t, f=f: F.adjust_hue(t, f), tol=1e-5)
case("hue_gray", "G", "T.ColorJitter{hue = {0.2, 0.2}}", lambda t: t)
for name, fn in (("brightness", F.adjust_brightness), ("contrast", F.adjust_contrast),
                 ("saturation", F.adjust_saturation)):
    case("functional_" + name, "B", "F.adjust_%s(img, 0.7)" % name,
         lambda t, fn=fn: fn(t, 0.7), tol=1e-6)

# GaussianBlur with a fixed sigma (reflect padding).
case("blur_3", "A", "T.GaussianBlur(3, 0.8)", lambda t: F.gaussian_blur(t, [3, 3], [0.8, 0.8]),
     tol=1e-5)
case("blur_5x3", "B", "T.GaussianBlur({5, 3}, {sigma = {1.3, 1.3}})",
     lambda t: F.gaussian_blur(t, [5, 3], [1.3, 1.3]), tol=1e-5)
case("blur_7", "C", "T.GaussianBlur(7, {2, 2})",
     lambda t: F.gaussian_blur(t, [7, 7], [2.0, 2.0]), tol=1e-5)

# Normalize.
case("normalize", "A", "T.Normalize({0.5, 0.4, 0.3}, {0.2, 0.25, 0.5})",
     lambda t: F.normalize(t, [0.5, 0.4, 0.3], [0.2, 0.25, 0.5]), tol=1e-6)
case("normalize_one", "G", "T.Normalize({0.5}, {0.5})",
     lambda t: F.normalize(t, [0.5], [0.5]), tol=1e-6)

# Resize (bilinear, antialiased) and a RandomResizedCrop that takes the
# whole image.
case("resize_3x4", "B", "T.Resize({3, 4})", lambda t: F.resize(t, [3, 4], BILINEAR, antialias=True),
     tol=1e-5)
case("resize_edge", "B", "T.Resize(4)", lambda t: F.resize(t, 4, BILINEAR, antialias=True),
     tol=1e-5)
case("resize_up", "B", "T.Resize({8, 9})", lambda t: F.resize(t, [8, 9], BILINEAR, antialias=True),
     tol=1e-5)
case("resize_max_size", "B", "T.Resize(4, {max_size = 5})",
     lambda t: F.resize(t, 4, BILINEAR, max_size=5, antialias=True), tol=1e-5)
case("resized_crop_whole", "B", "T.RandomResizedCrop({3, 4}, {scale = {1, 1}, ratio = {7/5, 7/5}})",
     lambda t: F.resize(t, [3, 4], BILINEAR, antialias=True), tol=1e-5)


def lua_num(x):
    """The shortest decimal that reads back as the same float32."""
    f32 = struct.unpack("f", struct.pack("f", x))[0]
    for digits in range(1, 10):
        text = "%.*g" % (digits, f32)
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            return text
    return "%.9g" % f32


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emit():
    out = ["-- Generated by tools/gen_augment_ref.py from torchvision %s; do not edit."
           % __import__("torchvision").__version__,
           "-- Images: pixel (c, y, x) = ((37c + 11y + 7x + salt) % 23) / 22.",
           "return {", "  images = {"]
    for name, ((c, h, w), salt) in sorted(IMAGES.items()):
        out.append("    %s = {shape = {%d, %d, %d}, salt = %d}," % (name, c, h, w, salt))
    out.append("  },")
    out.append("  cases = {")
    for name, img, call, t, tol, windows in CASES:
        flat = ", ".join(lua_num(v) for v in t.reshape(-1).tolist())
        shape = ", ".join(str(s) for s in t.shape)
        out.append("    {name = %s, image = %s, call = %s, tol = %g, windows = %s," %
                   (lua_str(name), lua_str(img), lua_str(call), tol,
                    "true" if windows else "false"))
        out.append("     shape = {%s}, data = {%s}}," % (shape, flat))
    out.append("  },")
    out.append("}")
    text = "\n".join(out) + "\n"
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote %s (%d cases)" % (OUT, len(CASES)))


if __name__ == "__main__":
    emit()
