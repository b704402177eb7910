#!/usr/bin/env bash
# Fine-tuning's CPU time with and without cached activations, in one run (docs/encoder.md, "Stop 29"): the first N drawings
# of BUNDLE (a seeded choice) in a sub-bundle, then Lite0 at 288 px with bb5's levels fine-tuned from layer 13 for EPOCHS
# epochs without augmentation, uncached, cached, uncached again (the order alternates against drifting load).
#
#   scripts/finetune-cpu-speed.sh BUNDLE WORKDIR [N] [EPOCHS]      (N 128, EPOCHS 2; $THREADS [1], $PYTHON [python3])
#
# Prints per run the wall seconds of the whole run, of the features (with the cache: the lower pass), and of the
# fine-tuning epochs from the record, with the load average; the last line the ratio uncached / cached of fine-tuning.
set -eu
if [ $# -lt 2 ]; then sed -n '2,10p' "$0"; exit 2; fi
bundle=$1; work=$2; n=${3:-128}; epochs=${4:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH=$here/src${PYTHONPATH:+:$PYTHONPATH}
python=${PYTHON:-python3}
mkdir -p "$work"
"$python" - "$bundle" "$work/sub.bundle.npz" "$n" <<'PY'
import sys, numpy as np
from figsearch.train.finetune import Bundle, load_bundle, save_bundle
b = load_bundle(sys.argv[1])
keep = np.sort(np.random.default_rng(0).permutation(len(b.items))[: int(sys.argv[3])])
save_bundle(Bundle(b.images[keep], [b.items[i] for i in keep], None if b.texts is None else b.texts[keep],
                   b.has_text[keep], b.info), sys.argv[2])
print(len(keep), "drawings of", len({b.items[i].patent for i in keep}), "patents")
PY
for run in uncached cached uncached2; do
    case $run in cached) flag=--cached-activations ;; *) flag=--no-cached-activations ;; esac
    load=$(cut -d' ' -f1 /proc/loadavg)
    "$python" -m figsearch train-encoder --arch backbone --bundle "$work/sub.bundle.npz" --out "$work/$run.onnx" \
        --backbone efficientnet-lite0 --image-size 288 --levels h0,h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,h15,f18 \
        --whiten 0.25 --epochs 5 --batch-size 32 --seed 0 --val-split all --val-fraction 0.2 --threads "${THREADS:-1}" \
        --device cpu --finetune-epochs "$epochs" --finetune-from 13 --backbone-lr 3e-5 --no-augment $flag >"$work/$run.log" 2>&1
    "$python" - "$work/$run.json" "$run" "$load" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["finetune"]
print(f"{sys.argv[2]:10s} run {r['seconds']['total']:7.1f} s  features {r['seconds']['features']:6.1f} s  "
      f"fine-tuning {t['seconds']:6.1f} s ({len(t['curve'])} epochs)  load {sys.argv[3]} -> {sys.argv[4]}")
PY
done
"$python" - "$work" <<'PY'
import json, sys
s = {n: json.load(open(f"{sys.argv[1]}/{n}.json"))["finetune"]["seconds"] for n in ("uncached", "cached", "uncached2")}
print(f"fine-tuning uncached / cached: {(s['uncached'] + s['uncached2']) / 2 / s['cached']:.2f}x")
PY
