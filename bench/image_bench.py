#!/usr/bin/python3
"""bench/image_bench.py: torchvision's PIL-based side of bench/image_bench.lua.

The cold path of issue 5 with torchvision: open a 600x450 JPEG with PIL,
convert("RGB"), Resize((64, 64)) and ToTensor ("decode+resize"), or the same
followed by the augmentation of the benchmark ("full": RandomHorizontalFlip,
RandomVerticalFlip, RandomRotation(15), ColorJitter(0.2, 0.2, 0.2, 0.05) on
the PIL image, then ToTensor and Normalize), batched by a DataLoader
(batch 64).  One thread: the main process (num_workers=0); N threads: N
worker processes, each with torch.set_num_threads(1), timed after a warm-up
epoch with persistent workers.  Prints

    RESULT torchvision <pipeline> <threads> <median images/s> <min> <max>
    RESULT torchvision <pipeline>_cpu 1 <median images per CPU second>

(the second only for 1 thread, where all work is in this process: on a
loaded machine it is steadier than wall-clock time).

    /usr/bin/python3 bench/image_bench.py --dir build/image_bench \
        [--n 200] [--threads 1] [--reps 3] [--pipelines resize,full]
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
    return T.Compose([
        T.Resize((64, 64)),
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


def one_thread(_):
    torch.set_num_threads(1)


def measure(files, name, threads, reps):
    torch.manual_seed(0)
    ds = Photos(files, pipeline(name))
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
    ap.add_argument("--pipelines", default="resize,full")
    a = ap.parse_args()
    torch.set_num_threads(1)
    files = sorted(glob.glob(os.path.join(a.dir, "*.jpg")))[:a.n]
    if not files:
        sys.exit("no JPEG files in " + a.dir)
    for threads in [int(t) for t in a.threads.split(",")]:
        for name in a.pipelines.split(","):
            med, lo, hi, cpu = measure(files, name, threads, a.reps)
            print("RESULT torchvision %s %d %.1f %.1f %.1f" %
                  (name, threads, med, lo, hi), flush=True)
            if threads == 1:
                print("RESULT torchvision %s_cpu 1 %.1f" % (name, cpu),
                      flush=True)


if __name__ == "__main__":
    main()
