#!/usr/bin/env bash
# Rebuild the shapes-world demo model (data/shapes/model) from nothing with
# sima's own tools:
#
#   1. scripts/shapes_world.py model: tokenizer for the world's words, config,
#      random weights (about 1.4 M parameters);
#   2. three SFT phases with `sima-dpo --mode sft --train all` (every
#      weight), each on its own training pictures (scripts/shapes_world.py
#      data, seeds S, S+1, S+2), each starting from the last one's model:
#      0. one shape per picture and its caption (naming what is seen);
#      1. and 2. the world: captions and yes/no answers with the planted
#         co-occurrence hallucination, critic examples with their [[1]]/[[2]]
#         verdicts.
#      Learning rate 1e-3 (higher ones never learn to use the picture).
#
#   scripts/build-demo-model.sh [--out DIR] [--work DIR] [--ranks N]
#                               [--pictures N] [--epochs E0,E1,E2] [--seed S]
#
# Defaults are the bundled model's: 5000 pictures per phase (25,000 texts in
# phases 1 and 2), 6 + 4 + 3 epochs, 2 ranks, seed 0; about 20 minutes on 2
# cores. Rerunning after an interruption continues each phase from its
# checkpoint. Run from a clean clone on the 2-core AMD EPYC VM the bundled
# model came from, it writes the bundled file bit for bit (22 min); another
# CPU's OpenBLAS kernels can change the last bits.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/data/shapes/model
work=$root/out/demo-model
bin=$root/build/bin
ranks=2 pictures=5000 epochs=6,4,3 seed=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift ;;
    --work) work=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --pictures) pictures=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --seed) seed=$2; shift ;;
    --bin) bin=$2; shift ;;
    -h|--help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "build-demo-model.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
IFS=, read -r e0 e1 e2 <<<"$epochs"
[ -n "$e2" ] || { echo "build-demo-model.sh: --epochs: expected E0,E1,E2, got '$epochs'" >&2; exit 2; }
[ -x "$bin/sima-dpo" ] || { echo "build-demo-model.sh: $bin/sima-dpo: not built (scripts/build.sh)" >&2; exit 1; }
py=/usr/bin/python3
[ -x $py ] || py=python3
mpi=(mpirun --oversubscribe -np "$ranks")
[ "$(id -u)" -eq 0 ] && mpi=(mpirun --allow-run-as-root --oversubscribe -np "$ranks")
mkdir -p "$work"

echo "== initial model"
$py "$root/scripts/shapes_world.py" model --out "$work/init" --seed "$seed"

# phase N EPOCHS FROM [--single]: SFT of model FROM on the pictures of seed+N
phase() {
  local n=$1 ep=$2 from=$3 wseed=$((seed + $1))
  echo "== SFT phase $n: $pictures pictures (world seed $wseed), $ep epochs ${4:-}"
  if [ ! -f "$work/train-$n.h5" ]; then
    $py "$root/scripts/shapes_world.py" data --out "$work/world-$n" --seed "$wseed" \
      --train "$pictures" --round 0 --bench 0 ${4:-}
    "$bin/sima-prep" import --format sima "$work/world-$n/train.jsonl" --image-root "$work/world-$n" \
      --out "$work/train-$n.h5.tmp" --quiet
    mv "$work/train-$n.h5.tmp" "$work/train-$n.h5"
  fi
  "${mpi[@]}" "$bin/sima-dpo" --mode sft --train all --template llava_hf --micro-batch 16 \
    --lr 1e-3 --warmup-ratio 0.02 --save-every 500 --seed "$seed" --epochs "$ep" \
    --prompts "$work/train-$n.h5" --model "$from" --out "$work/phase$n"
}
phase 0 "$e0" "$work/init" --single
phase 1 "$e1" "$work/phase0/model"
phase 2 "$e2" "$work/phase1/model"

mkdir -p "$out"
cp "$work/phase2/model/"* "$out/"
echo "== wrote $out"
