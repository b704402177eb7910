#!/usr/bin/env bash
# Stop 29's CPU runs (docs/encoder.md, "Stop 29"): fine-tuning EfficientNet-Lite0's upper blocks at 288 px on the CPU from
# cached activations, with bb5's recipe for the head. Every run shares one activation cache (CACHE, at layer 9, the
# lowest layer any run trains), so the frozen lower layers run once per drawing and per augmented view for all of them.
#
#   scripts/finetune-cpu-lite0.sh BUNDLE RUNS NAME="OPTIONS" ...      (runs one after the other)
#   e.g. scripts/finetune-cpu-lite0.sh .gpu/train288.onnx.bundle.npz /tmp/runs \
#        ft13na="--finetune-epochs 6 --finetune-from 13 --backbone-lr 3e-5 --no-augment"
#
# Each run writes RUNS/NAME.onnx, its record RUNS/NAME.json (the fine-tuning curve, the cache's size and seconds) and
# RUNS/NAME.log (with the load average before and after); then the table of scripts/finetune-gpu.sh's kind.
# $THREADS: torch threads per run [2], at most $OMP_THREAD_LIMIT where it is set; $CACHE: the activation folder
# [RUNS/activations]; $PYTHON [python3]. MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set beforehand win.
set -u
if [ $# -lt 3 ]; then
    sed -n '2,13p' "$0"
    exit 2
fi
bundle=$1; runs=$2; shift 2
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=$here/src${PYTHONPATH:+:$PYTHONPATH}
# Freed memory stays in glibc's heap: with the defaults every large short-lived tensor of the 288 px batches is a fresh
# mmap faulted in again, and the kernel's time rivals the work's (benchmarks/finetune_allocator.py: system CPU about
# 11x lower, user the same; the price is memory not handed back, 7-8 GB resident with views, 15 GB with a layer-9 cache).
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-17179869184} MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-17179869184}
python=${PYTHON:-python3}
mkdir -p "$runs"
status=0
for spec in "$@"; do
    name=${spec%%=*}
    options=${spec#*=}
    { date -u; uptime; } >"$runs/$name.log"
    # shellcheck disable=SC2086  # the options are meant to split into words
    "$python" -m figsearch train-encoder --arch backbone --bundle "$bundle" --out "$runs/$name.onnx" \
        --backbone efficientnet-lite0 --image-size 288 --levels h0,h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,h15,f18 \
        --whiten 0.25 --epochs 20 --batch-size 256 --seed 0 --val-split lines --val-fraction 0.2 \
        --class-val "$here/benchmarks/heldout/class-val-2007.txt" --threads "${THREADS:-2}" --device cpu \
        --activation-cache "${CACHE:-$runs/activations}" --cache-layer 9 $options >>"$runs/$name.log" 2>&1 || status=1
    { date -u; uptime; } >>"$runs/$name.log"
    tail -3 "$runs/$name.log"
done
"$python" - "$runs" "${@%%=*}" <<'PY'
import json, pathlib, sys
runs = pathlib.Path(sys.argv[1])
print("run  best-epoch  same-patent  class  among-all  words  (epoch 0 = the frozen backbone's head)  cache-s  fine-tune-s")
for name in sys.argv[2:]:
    path = runs / f"{name}.json"
    if not path.is_file():
        print(name, "failed: see", runs / f"{name}.log")
        continue
    record = json.loads(path.read_text())
    tuning = record.get("finetune") or {}
    start = tuning.get("start") or {}
    best = tuning["curve"][tuning["best_epoch"] - 1] if tuning.get("best_epoch") else start
    keys = ("val_same_patent", "val_same_class", "val_same_patent_all", "val_words")
    print(name, tuning.get("best_epoch"), *(best.get(k) for k in keys), "| epoch 0:", *(start.get(k) for k in keys),
          (tuning.get("activations") or {}).get("seconds"), tuning.get("seconds"))
PY
exit $status
