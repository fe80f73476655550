#!/usr/bin/env bash
# Rebuild the shapes-world demo model (data/shapes/model) from nothing with
# sima's own tools:
#
#   1. scripts/shapes_world.py data: training pictures and texts (captions and
#      yes/no answers with the planted co-occurrence hallucination, critic
#      examples with their [[1]]/[[2]] verdicts);
#   2. scripts/shapes_world.py model: tokenizer for the world's words, config,
#      random weights (about 1.4 M parameters);
#   3. sima-dpo --mode sft --train all: every weight trained on the texts, in
#      two phases (a high learning rate, then a lower one from its result).
#
#   scripts/build-demo-model.sh [--out DIR] [--work DIR] [--ranks N]
#                               [--pictures N] [--epochs E1,E2] [--seed S]
#
# Defaults are the bundled model's: 5000 pictures (25,000 texts), 4 + 4
# epochs, 2 ranks, seed 0; about 35 minutes on 2 cores. The result differs
# from the bundled file only by the order of floating-point sums between
# machines (OpenBLAS kernels); its behaviour is the same.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/data/shapes/model
work=$root/out/demo-model
bin=$root/build/bin
ranks=2 pictures=5000 epochs=4,4 seed=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift ;;
    --work) work=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --pictures) pictures=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --seed) seed=$2; shift ;;
    --bin) bin=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-demo-model.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
e1=${epochs%,*} e2=${epochs#*,}
[ -x "$bin/sima-dpo" ] || { echo "build-demo-model.sh: $bin/sima-dpo: not built (scripts/build.sh)" >&2; exit 1; }
py=/usr/bin/python3
[ -x $py ] || py=python3
mpi=(mpirun --oversubscribe -np "$ranks")
[ "$(id -u)" -eq 0 ] && mpi=(mpirun --allow-run-as-root --oversubscribe -np "$ranks")
mkdir -p "$work"

echo "== training data: $pictures pictures (seed $seed)"
$py "$root/scripts/shapes_world.py" data --out "$work/world" --seed "$seed" --train "$pictures" \
  --round 0 --bench 0
"$bin/sima-prep" import --format sima "$work/world/train.jsonl" --image-root "$work/world" \
  --out "$work/train.h5" --quiet

echo "== initial model"
$py "$root/scripts/shapes_world.py" model --out "$work/init" --seed "$seed"

sft=(--mode sft --train all --prompts "$work/train.h5" --template llava_hf --micro-batch 16
     --warmup-ratio 0.02 --save-every 500 --seed "$seed")
echo "== SFT phase 1: $e1 epochs, learning rate 3e-3"
"${mpi[@]}" "$bin/sima-dpo" "${sft[@]}" --model "$work/init" --out "$work/phase1" --epochs "$e1" --lr 3e-3
echo "== SFT phase 2: $e2 epochs, learning rate 1e-3"
"${mpi[@]}" "$bin/sima-dpo" "${sft[@]}" --model "$work/phase1/model" --out "$work/phase2" --epochs "$e2" --lr 1e-3

mkdir -p "$out"
cp "$work/phase2/model/"* "$out/"
echo "== wrote $out"
