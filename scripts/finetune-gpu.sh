#!/usr/bin/env bash
# Fine-tune the `backbone` drawing encoder on one GPU (issue 13, item 9): several settings at once, each a
# `figsearch train-encoder --arch backbone --bundle BUNDLE --device cuda` run with the recipe of the shipped
# drawing-backbone3 model for the head (17 levels, PCA^0.25 start, batches of 256, 20 head epochs) followed by
# fine-tuning epochs; then a table of every run's validation numbers (training-side held-out sets only).
#
#   scripts/finetune-gpu.sh BUNDLE OUTDIR NAME="OPTIONS" ...
#   e.g. scripts/finetune-gpu.sh runs/train.bundle.npz runs f12="--finetune-from 12 --backbone-lr 1e-4"
#
# BUNDLE is the OUT.bundle.npz that a fine-tuning run on the machine holding the collection wrote (docs/encoder.md:
# "Fine-tuning on a GPU"). Runs share the GPU; each uses 2 CPU threads. Python: $PYTHON or python3; device: $DEVICE or cuda;
# the pooled levels: $LEVELS (default MobileNetV2's; EfficientNet-Lite0's are h0,...,h15,f18); options every run gets:
# $COMMON (e.g. "--backbone efficientnet-lite0 --image-size 288"). Every run also writes NAME.onnx.ckpt.pt, from which
# `figsearch train-encoder --arch backbone --from-checkpoint NAME.onnx.ckpt.pt --out NAME.onnx` writes the model
# elsewhere when this machine's torch cannot export it (the table then reads the checkpoint).
set -u
if [ $# -lt 3 ]; then
    sed -n '2,12p' "$0"
    exit 2
fi
bundle=$1
outdir=$2
shift 2
python=${PYTHON:-python3}
mkdir -p "$outdir"
levels=${LEVELS:-f18,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,h15,h16,h17}
here=$(cd "$(dirname "$0")/.." && pwd)
pids=()
for spec in "$@"; do
    name=${spec%%=*}
    options=${spec#*=}
    # shellcheck disable=SC2086  # the options are meant to split into words
    "$python" -m figsearch train-encoder --arch backbone --bundle "$bundle" --out "$outdir/$name.onnx" \
        --class-val "$here/benchmarks/heldout/class-val-2007.txt" --val-split lines --val-fraction 0.2 \
        --levels "$levels" --whiten 0.25 --epochs 20 --batch-size 256 --seed 0 --threads 2 --device "${DEVICE:-cuda}" \
        ${COMMON:-} $options >"$outdir/$name.log" 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
    wait "$pid" || status=1
done
names=()
for spec in "$@"; do names+=("${spec%%=*}"); done
# the ratios are to the FIRST run's untrained head, so that runs whose backbone features differ (--adapt-bn) compare
"$python" - "$outdir" "${names[@]}" <<'EOF'
import json, pathlib, sys
outdir, names = pathlib.Path(sys.argv[1]), sys.argv[2:]
rows, base = [], None
for name in names:
    path = outdir / f"{name}.json"
    if path.is_file():
        record = json.loads(path.read_text())
    elif (outdir / f"{name}.onnx.ckpt.pt").is_file():  # the ONNX export failed here: the checkpoint has the numbers
        import torch
        ckpt = torch.load(outdir / f"{name}.onnx.ckpt.pt", map_location="cpu", weights_only=False)
        record = {"finetune": ckpt["finetune"], "validation_curve": ckpt["trained"]["curve"],
                  "best_epoch": ckpt["trained"]["best_epoch"], "untrained_validation": ckpt["trained"]["untrained"]}
    else:
        print(name, "failed: see", outdir / f"{name}.log")
        continue
    tuning = record.get("finetune") or {}
    if tuning:  # epoch 0 is the head on the frozen backbone
        best = tuning["curve"][tuning["best_epoch"] - 1] if tuning["best_epoch"] else tuning["start"]
    else:  # no fine-tuning: the head's best epoch
        best = record["validation_curve"][record["best_epoch"] - 1] if record["best_epoch"] else {}
    base = base or record["untrained_validation"]
    parts = [best.get(k) / base[k] for k in ("val_same_patent", "val_same_class", "val_same_patent_all")
             if best.get(k) is not None and base.get(k)]
    score = sum(parts) + (best.get("val_words") or 0.0)
    rows.append((score, name, tuning.get("best_epoch", "-"), best, tuning.get("seconds")))
print("run  score  best-epoch  same-patent  same-class  among-all  words  fine-tune-seconds")
for score, name, epoch, best, seconds in sorted(rows, key=lambda r: r[0], reverse=True):
    print(name, round(score, 4), epoch, best.get("val_same_patent"), best.get("val_same_class"),
          best.get("val_same_patent_all"), best.get("val_words"), seconds)
EOF
exit $status
