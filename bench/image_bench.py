#!/usr/bin/python3
"""bench/image_bench.py: torchvision's PIL-based side of bench/image_bench.lua.

The cold path of issue 5 with torchvision: open a 600x450 JPEG with PIL,
convert("RGB"), Resize((64, 64)) and ToTensor ("decode+resize"), or the same
followed by the augmentation of the benchmark ("full": RandomHorizontalFlip,
RandomVerticalFlip, RandomRotation(15), ColorJitter(0.2, 0.2, 0.2, 0.05) on
the PIL image, then ToTensor and Normalize), batched by a DataLoader
(batch 64).

The cached path ("cached"): the photos decoded with PIL and resized to
64x64 PIL images held in memory beforehand (not timed), then the same
augmentation (no Resize) followed by ToTensor and Normalize, over
--cached-n images per pass taken round-robin from the n in memory, batched
by a DataLoader (batch 64).

One thread: the main process (num_workers=0); N threads: N worker
processes, each with torch.set_num_threads(1), timed after a warm-up epoch
with persistent workers.  Prints

    RESULT torchvision <pipeline> <threads> <median images/s> <min> <max>
    RESULT torchvision <pipeline>_cpu 1 <median images per CPU second>

(the second only for 1 thread, where all work is in this process: on a
loaded machine it is steadier than wall-clock time).

    /usr/bin/python3 bench/image_bench.py --dir build/image_bench \
        [--n 200] [--threads 1] [--reps 3] [--pipelines resize,full,cached]
        [--cached-n 2000]
"""
import argparse
import glob
import os
import statistics
import sys
import time

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

MEAN, STD = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]


def pipeline(name):
    if name == "resize":
        return T.Compose([T.Resize((64, 64)), T.ToTensor()])
    resize = [] if name == "cached" else [T.Resize((64, 64))]
    return T.Compose(resize + [
        T.RandomHorizontalFlip(),
        T.RandomVerticalFlip(),
        T.RandomRotation(15),
        T.ColorJitter(0.2, 0.2, 0.2, 0.05),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])


class Photos(Dataset):
    def __init__(self, files, transform):
        self.files, self.transform = files, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            return self.transform(im.convert("RGB")), 0


class Cached(Dataset):
    """total samples taken round-robin from images (64x64 PIL images)."""

    def __init__(self, images, total, transform):
        self.images, self.total, self.transform = images, total, transform

    def __len__(self):
        return self.total

    def __getitem__(self, i):
        return self.transform(self.images[i % len(self.images)]), 0


def decode_all(files):
    """The decoded cache: every photo as a 64x64 RGB PIL image."""
    resize, images = T.Resize((64, 64)), []
    for f in files:
        with Image.open(f) as im:
            images.append(resize(im.convert("RGB")))
    return images


def one_thread(_):
    torch.set_num_threads(1)


def measure(ds, threads, reps):
    torch.manual_seed(0)
    workers = 0 if threads == 1 else threads
    loader = DataLoader(ds, batch_size=64, num_workers=workers,
                        persistent_workers=workers > 0,
                        worker_init_fn=one_thread if workers else None)
    for _ in loader:  # warm-up: starts the workers, fills the page cache
        pass
    rates, cpu_rates = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for x, _ in loader:
            n += x.shape[0]
        rates.append(n / (time.perf_counter() - t0))
        cpu_rates.append(n / (time.process_time() - c0))
    return (statistics.median(rates), min(rates), max(rates),
            statistics.median(cpu_rates))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pipelines", default="resize,full,cached")
    ap.add_argument("--cached-n", type=int, default=2000)
    a = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(glob.glob(os.path.join(a.dir, "*.jpg")))[:a.n]
    if not files:
        sys.exit("no JPEG files in " + a.dir)
    names = a.pipelines.split(",")
    images = decode_all(files) if "cached" in names else None
    for threads in [int(t) for t in a.threads.split(",")]:
        for name in names:
            if name == "cached":
                ds = Cached(images, a.cached_n, pipeline(name))
            else:
                ds = Photos(files, pipeline(name))
            med, lo, hi, cpu = measure(ds, threads, a.reps)
            print("RESULT torchvision %s %d %.1f %.1f %.1f" %
                  (name, threads, med, lo, hi), flush=True)
            if threads == 1:
                print("RESULT torchvision %s_cpu 1 %.1f" % (name, cpu),
                      flush=True)


if __name__ == "__main__":
    main()
