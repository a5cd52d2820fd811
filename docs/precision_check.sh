#!/usr/bin/env bash
# The faithful-width half of the bf16 validation (docs/precision_check.py): the first EPOCHS
# (default 3) of the long fp32 replication run of γ GAMMA, seed 1 (110-token vocabulary, as
# pretrained/paper-replica_v110_L2_g<γ>_s1 was started), again under bf16 autocast, same seed and
# learning rates; then its per-epoch record goes into docs/precision_runs.jsonl.
#
#   bash docs/precision_check.sh 0.8        # ~25 min on one AVX-512-bf16 core; far slower without native bf16
#
# Resumable: rerunning continues from runs/precision/<name>.checkpoint.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
gamma=${1:?usage: precision_check.sh GAMMA [EPOCHS]}
epochs=${2:-3}
out=runs/precision/paper-replica_v110_L2_g${gamma}_s1_bf16_e${epochs}
cmd="python -m core train --preset paper-replica --set model.d_vocab=null --set model.n_ctx=null --gamma $gamma --seed 1 --set train.precision=bf16 --epochs $epochs --set train.decay_epochs=200 --out $out"
common=(--threads "${THREADS:-1}" --checkpoint-every 5 --half --quiet)
if [ ! -f "$out/metrics.json" ]; then
  if [ -f "$out.checkpoint.safetensors" ]; then
    python3 -m core train --resume "$out" "${common[@]}"
  else
    $cmd "${common[@]}"
  fi
fi
python3 docs/precision_check.py --collect "$out" --command "$cmd"
