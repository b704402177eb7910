"""CPU seconds of fine-tuning's two kinds of work with glibc's default allocator and with freed memory kept in the heap.

Fine-tuning EfficientNet-Lite0 at 288 px on the CPU makes large short-lived tensors; with glibc's defaults each is a
fresh mmap whose pages fault in again every time, so the kernel's time rivals the work's (stop 29: system time above
user time). ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` at 16 GiB keep freed memory in the heap
(stop 31, ft39: docs/encoder.md). Each setting runs in its own process, in alternating order, ``--rounds`` times:

    python benchmarks/finetune_allocator.py [--rounds 2] [--threads 2]

Per round and setting it prints the wall, user and system seconds of (1) a no-grad lower pass of 64 random 288 px
inputs to layer 13, in chunks of 32, and (2) two forward/backward passes of layers 13 to the end on 128 of those
activations, and minor page faults; then the median system-time ratio default / heap-kept. Random pixels: the work
per input is the network's, whatever the drawing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HEAP_KEPT = {"MALLOC_MMAP_THRESHOLD_": "17179869184", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def probe(threads: int) -> dict:
    import resource
    import time

    import torch

    from figsearch.embed.encoders.backbone_nets import build_backbone, normalise
    from figsearch.train.backbone import Pooled

    torch.set_num_threads(threads)
    levels = [f"h{i}" for i in range(16)] + ["f18"]
    pooled = Pooled("efficientnet-lite0", build_backbone("efficientnet-lite0"), levels).eval()
    images = torch.rand(64, 1, 288, 288, generator=torch.Generator().manual_seed(0)) * 255

    def usage():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt

    t0 = usage()
    with torch.no_grad():
        acts = [pooled.run_layers(normalise(pooled.name, images[s:s + 32]), 0, 13)[0] for s in range(0, 64, 32)]
    t1 = usage()
    batch = torch.cat(acts).repeat(2, 1, 1, 1)
    for parameter in pooled.parameters():
        parameter.requires_grad_(True)
    for _ in range(2):
        x, outs = pooled.run_layers(batch, 13, pooled.layer_count())
        (sum(o.sum() for o in outs) + x.sum()).backward()
    t2 = usage()
    part = lambda a, b: {"wall": b[0] - a[0], "user": b[1] - a[1], "sys": b[2] - a[2], "minflt": b[3] - a[3]}  # noqa: E731
    return {"lower": part(t0, t1), "upper": part(t1, t2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.threads)))
        return
    base = {k: v for k, v in os.environ.items() if k not in HEAP_KEPT}
    base.setdefault("OMP_THREAD_LIMIT", str(args.threads))
    settings = {"default": base, "heap-kept": {**base, **HEAP_KEPT}}
    systems = {name: [] for name in settings}
    for round_ in range(args.rounds):
        order = list(settings) if round_ % 2 == 0 else list(reversed(settings))
        for name in order:
            out = subprocess.run([sys.executable, __file__, "--probe", "--threads", str(args.threads)],
                                 env=settings[name], check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            systems[name].append(result["lower"]["sys"] + result["upper"]["sys"])
            print(f"round {round_ + 1} {name:9s} " + "  ".join(
                f"{part}: wall {r['wall']:.1f} user {r['user']:.1f} sys {r['sys']:.1f} minflt {r['minflt'] / 1e6:.2f}M"
                for part, r in result.items()), flush=True)
    default, kept = statistics.median(systems["default"]), statistics.median(systems["heap-kept"])
    print(f"system CPU s, median: default {default:.2f}, heap kept {kept:.2f}: {default / max(kept, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
