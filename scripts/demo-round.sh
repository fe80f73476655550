#!/usr/bin/env bash
# One whole SIMA round on the shapes-world demo model, with the built tools:
#
#   shapes world (held-out pictures) -> sima-prep import
#   -> sima-gen (2 candidates: greedy + sampled) -> sima-critic (the model
#   judges its own candidates against the ground truth) -> sima-pairs
#   -> sima-dpo (LoRA, merged) -> sima-bench before and after
#
# and the before/after table: CHAIR (object hallucination in captions) and
# POPE (yes/no questions about shapes, random and adversarial splits) from
# sima-bench's scorers, and how often the critic agrees with the oracle that
# knows every picture's shapes. Every number comes from this run.
#
#   scripts/demo-round.sh [--model DIR] [--out DIR] [--ranks N] [--seed S]
#                         [--round N] [--bench N] [--dpo-epochs N] [--bin DIR]
#
# Defaults: data/shapes/round.env. OUT/summary.json holds the table's
# numbers; OUT/table.md the table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
model=$root/data/shapes/model
out=$root/out/demo-round
bin=$root/build/bin
# shellcheck source=data/shapes/round.env
. "$root/data/shapes/round.env"
ranks=2 seed=$SHAPES_SEED n_round=$SHAPES_ROUND n_bench=$SHAPES_BENCH dpo_epochs=

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift ;;
    --out) out=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --seed) seed=$2; shift ;;
    --round) n_round=$2; shift ;;
    --bench) n_bench=$2; shift ;;
    --dpo-epochs) dpo_epochs=$2; shift ;;
    --bin) bin=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo-round.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
missing() { echo "demo-round.sh: $1: missing (the demo model is built by scripts/build-demo-model.sh)" >&2; exit 1; }
for f in config.json tokenizer.json; do [ -f "$model/$f" ] || missing "$model/$f"; done
[ -f "$model/model.safetensors" ] || [ -f "$model/model.safetensors.index.json" ] || missing "$model/model.safetensors"
[ -x "$bin/sima-gen" ] || { echo "demo-round.sh: $bin/sima-gen: not built (scripts/build.sh)" >&2; exit 1; }

py=/usr/bin/python3
[ -x $py ] || py=python3
mpi=(mpirun --oversubscribe -np "$ranks")
[ "$(id -u)" -eq 0 ] && mpi=(mpirun --allow-run-as-root --oversubscribe -np "$ranks")
world=$out/world
common=(--template "$SHAPES_TEMPLATE" --quiet)
read -r -a gen_opts <<<"$SHAPES_GEN_OPTS"
read -r -a critic_opts <<<"$SHAPES_CRITIC_OPTS"
read -r -a dpo_opts <<<"$SHAPES_DPO_OPTS"
read -r -a bench_opts <<<"$SHAPES_BENCH_OPTS"
[ -z "$dpo_epochs" ] || dpo_opts+=(--epochs "$dpo_epochs")
critic_tpl=$root/data/shapes/critic.txt
mkdir -p "$out"
step() { echo "== $*"; }
t0=$(date +%s)

step "shapes world (seed $seed): $n_round pictures for the round, $n_bench for the benchmark"
$py "$root/scripts/shapes_world.py" data --out "$world" --seed "$seed" --train 0 \
  --round "$n_round" --bench "$n_bench" >/dev/null
"$bin/sima-prep" import --format sima "$world/round.jsonl" --image-root "$world" \
  --out "$out/prompts.h5" --quiet

step "sima-gen on $ranks ranks: 2 candidates per prompt (greedy, sampled)"
"${mpi[@]}" "$bin/sima-gen" "${common[@]}" --model "$model" --prompts "$out/prompts.h5" \
  --out "$out/responses.h5" "${gen_opts[@]}" --seed "$seed" --overwrite

step "sima-critic: the model judges its two candidates against the ground truth"
"${mpi[@]}" "$bin/sima-critic" "${common[@]}" --model "$model" --prompts "$out/prompts.h5" \
  --responses "$out/responses.h5" --out "$out/verdicts.h5" --critic-template "$critic_tpl" \
  "${critic_opts[@]}" --overwrite

step "sima-pairs: chosen/rejected pairs"
"${mpi[@]}" "$bin/sima-pairs" "${common[@]}" --model "$model" --prompts "$out/prompts.h5" \
  --responses "$out/responses.h5" --verdicts "$out/verdicts.h5" --out "$out/pairs.h5" --overwrite
n_pairs=$("$bin/sima-prep" export "$out/pairs.h5" 2>/dev/null | wc -l)
echo "   $n_pairs pairs kept"
[ "$n_pairs" -gt 0 ] || { echo "demo-round.sh: no pairs kept: nothing to train on" >&2; exit 1; }

step "sima-dpo: LoRA DPO on the pairs, merged into $out/dpo/merged"
"${mpi[@]}" "$bin/sima-dpo" --quiet --model "$model" --pairs "$out/pairs.h5" \
  --prompts "$out/prompts.h5" --out "$out/dpo" "${dpo_opts[@]}" --save-every 0 \
  --seed "$seed" --merge --no-resume

bench=(--questions "$world/bench.jsonl" --chair-synonyms "$world/synonyms.txt" "${bench_opts[@]}" --overwrite)
step "sima-bench before (the demo model) and after (the merged model)"
"${mpi[@]}" "$bin/sima-bench" "${common[@]}" --model "$model" "${bench[@]}" --out "$out/bench-before"
"${mpi[@]}" "$bin/sima-bench" "${common[@]}" --model "$out/dpo/merged" "${bench[@]}" --out "$out/bench-after"

step "critic against the oracle (the true shapes of every picture)"
"$bin/sima-prep" export "$out/prompts.h5" --out "$out/prompts.jsonl"
"$bin/sima-prep" export "$out/responses.h5" --out "$out/responses.jsonl"
"$bin/sima-prep" export "$out/verdicts.h5" --out "$out/verdicts.jsonl"
$py "$root/scripts/shapes_report.py" oracle-inputs --world "$world" --prompts "$out/prompts.jsonl" \
  --responses "$out/responses.jsonl" --out "$out/oracle"
"$bin/sima-bench" score --questions "$out/oracle/questions.jsonl" \
  --answers "$out/oracle/answers.jsonl" --chair-synonyms "$world/synonyms.txt" \
  --out "$out/oracle/scored" >/dev/null
$py "$root/scripts/shapes_report.py" critic --samples "$out/oracle/scored/samples.jsonl" \
  --verdicts "$out/verdicts.jsonl" --prompts "$out/prompts.jsonl" --json "$out/critic.json" >/dev/null

echo
echo "SIMA round on the shapes world: $n_round pictures ($((2 * n_round)) prompts), $n_pairs pairs, $ranks ranks, $(( $(date +%s) - t0 )) s"
$py "$root/scripts/shapes_report.py" table --before "$out/bench-before" --after "$out/bench-after" \
  --critic "$out/critic.json" --pairs "$n_pairs" --json "$out/summary.json" | tee "$out/table.md"
echo
echo "Outputs in $out: responses.h5, verdicts.h5, pairs.h5, dpo/, bench-before/, bench-after/, summary.json"
