#!/bin/bash
# The shapes-world demo round on Slurm: what a new cluster user tries first.
# It writes the demo's held-out pictures, prompts and benchmark questions
# into ROUND_DIR/world (a few seconds, here), imports the prompts, and
# submits the round with slurm/sima-round.sh on the bundled demo model
# (data/shapes/model) with the options of scripts/demo-round.sh:
#
#   sima-gen → sima-critic → sima-pairs → sima-dpo --merge → sima-bench,
#   sima-bench of the demo model in parallel, summary.md at the end.
#
#   slurm/sima-demo.sh [--model DIR] [--seed S] [--round N] [--bench N]
#                      [sima-round.sh options...] ROUND_DIR
#
# When the jobs have ended, the before/after table (CHAIR, POPE):
#   scripts/shapes_report.py table --before ROUND_DIR/bench-base --after ROUND_DIR/bench
# Any other sima-round.sh option (--sbatch "--partition=...", --gpus-per-node,
# --dry-run, --rounds) is passed on; running the command again submits only
# what is missing, as sima-round.sh does.
set -u
here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
root=$(cd "$here/.." && pwd)
model=$root/data/shapes/model
# shellcheck source=data/shapes/round.env
. "$root/data/shapes/round.env"
seed=$SHAPES_SEED n_round=$SHAPES_ROUND n_bench=$SHAPES_BENCH
pass=()
while [ "$#" -gt 0 ]; do
  case $1 in
    -h | --help) sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    --model) model=${2:?--model needs a folder}; shift ;;
    --seed) seed=${2:?--seed needs a value}; shift ;;
    --round) n_round=${2:?--round needs a count}; shift ;;
    --bench) n_bench=${2:?--bench needs a count}; shift ;;
    *) pass+=("$1") ;;
  esac
  shift
done
[ "${#pass[@]}" -ge 1 ] || { echo "usage: slurm/sima-demo.sh [options] ROUND_DIR (--help for more)" >&2; exit 2; }
dir=${pass[-1]}
unset 'pass[-1]'
bin=${SIMA_BIN:-$root/build/bin}
py=/usr/bin/python3
[ -x $py ] || py=python3

world=$dir/world
if [ ! -f "$dir/prompts.h5" ]; then
  mkdir -p "$dir" &&
    $py "$root/scripts/shapes_world.py" data --out "$world" --seed "$seed" --train 0 \
      --round "$n_round" --bench "$n_bench" &&
    "$bin/sima-prep" import --format sima "$world/round.jsonl" --image-root "$world" \
      --out "$dir/prompts.h5.tmp" --quiet &&
    mv "$dir/prompts.h5.tmp" "$dir/prompts.h5" ||
    { echo "sima-demo.sh: could not write the demo's prompts in $dir" >&2; exit 1; }
fi

common="--template $SHAPES_TEMPLATE --quiet"
exec "$here/sima-round.sh" \
  --gen-args "$common $SHAPES_GEN_OPTS --seed $seed" \
  --critic-args "$common --critic-template $root/data/shapes/critic.txt $SHAPES_CRITIC_OPTS" \
  --pairs-args "$common" \
  --dpo-args "--quiet $SHAPES_DPO_OPTS --seed $seed" \
  --bench-args "$common --questions $world/bench.jsonl --chair-synonyms $world/synonyms.txt $SHAPES_BENCH_OPTS" \
  --bench-base "${pass[@]}" "$model" "$dir/prompts.h5" "$dir"
