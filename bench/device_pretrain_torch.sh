#!/usr/bin/env bash
# GPU figure for issue 21: BERT-base, seq 128, bf16, a few minutes, on a machine with PyTorch + transformers +
# pyarrow and no TensorFlow. SHARDS128 must be a shards directory carried as files (manifest.json and
# part-*.tfrecord, length 128, Google's 21,128-entry vocab), e.g. built here with
#   python bench/pretrain_torch.py --workdir /tmp/bench-pt --seq 128 --steps 1   (keeps /tmp/bench-pt/shards-128).
# Not yet run: no GPU was lent to the session that wrote it.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARDS128=${SHARDS128:-shared/shards-128}
OUT=${OUT:-bench/results/pretrain_torch_gpu.json}
export USE_TF=0 PYTHONPATH=$PWD
python - <<'PY'
import importlib.util, sys
assert importlib.util.find_spec("torch") and importlib.util.find_spec("transformers"), "torch + transformers needed"
PY
nvidia-smi --query-gpu=name,memory.total --format=csv || true
timeout 480 python bench/pretrain_torch.py --device cuda --preset base --seq 128 --batch 256 --steps 60 \
  --warmup 10 --compile --num_workers 8 --shards "$SHARDS128" --out "$OUT"
python -c "import json,sys; r=json.load(open('$OUT')); assert not r['tensorflow_imported']; print(json.dumps(r['runs'], indent=1))"
