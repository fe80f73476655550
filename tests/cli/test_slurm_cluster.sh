#!/usr/bin/env bash
# The Slurm scripts on a running Slurm: munged, slurmctld and slurmd started
# here on localhost (tests/slurm/cluster.sh: one node, this machine's CPUs,
# two fake GPUs, cons_tres, linuxproc, no cgroups), jobs submitted with the
# real sbatch and run by the real slurmstepd. Skipped (exit 77) only when
# slurm-wlm or munge is not installed (scripts/setup-deps.sh installs them
# when run as root).
#  - launchers: SIMA_LAUNCHER=auto picks srun --mpi=pmix where srun lists
#    pmix (Debian's Open MPI starts under it) and falls back to mpirun
#    inside the allocation where srun cannot start a rank (--mpi=none);
#    SIMA_LAUNCHER=mpirun; all give the same responses;
#  - GPUs: with --gpus-per-task=1 under srun each rank sees its own GPU, with
#    --gres=gpu:2 under mpirun both ranks see the job's two, as Slurm set
#    CUDA_VISIBLE_DEVICES;
#  - two rounds (sima-round.sh --rounds 2, launcher auto): every stage
#    finishes, round 2 starts from round 1's merged model, summary.md per
#    round and for both; with the golden tiny model, round 2 keeps no pairs:
#    its sima-dpo fails, Slurm cancels the bench after it, the summary says
#    why, and the driver run again submits nothing;
#  - SIGUSR1 to every process of a running sima-gen job under srun
#    (scancel --signal=USR1 --full): it requeues itself and its next run
#    gives round 1's responses;
#  - one round under mpirun, interrupted: SIGUSR1 to the batch shell of the
#    running sima-gen (scancel --signal=USR1 --batch) makes it commit, exit 3
#    and requeue itself while the critic waits; then a hard scancel of the
#    requeued job cancels the jobs after it; the driver run again resubmits
#    what is missing, sima-gen continues from its committed chunks, and the
#    round's files equal the uninterrupted round 1's;
#  - the shapes-world demo round submitted by slurm/sima-demo.sh (smaller):
#    every job completes, summary.md and the before/after table are there.
# The model and prompts: SIMA_SLURM_MODEL (default: the golden tiny model),
# SIMA_SLURM_PROMPTS (SIMA JSON lines; default data/demo/prompts.jsonl) with
# images in SIMA_SLURM_IMAGES (default: the images/ folder beside it).
# SIMA_SLURM_HAND_VERDICTS=1 replaces round 1's critic verdicts by hand-made
# ones (default: only for the golden tiny model, whose critic never writes
# a verdict).
# shellcheck disable=SC2034  # some variables are read only in check's eval'ed strings
set -u
bin=${SIMA_BIN:?}
src=${SIMA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
helper=$bin/../tests/test_pairs_logic
model=$(readlink -f "${SIMA_SLURM_MODEL:-$golden/tiny-llava}")
prompts_jsonl=${SIMA_SLURM_PROMPTS:-$src/data/demo/prompts.jsonl}
images=${SIMA_SLURM_IMAGES:-$(dirname "$prompts_jsonl")/images}
if [ "$model" = "$(readlink -f "$golden/tiny-llava")" ]; then hand=${SIMA_SLURM_HAND_VERDICTS:-1}; else hand=${SIMA_SLURM_HAND_VERDICTS:-0}; fi
. "$(dirname "$0")/lib.sh"
. "$src/tests/slurm/cluster.sh"
openblas_coretype
attr() { h5dump -a "/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): *//p'; }
t_start=$(date +%s)

absent=$(slurm_cluster_missing)
if [ -n "$absent" ]; then
  echo "SKIP: Slurm is not installed here (missing: $absent); scripts/setup-deps.sh installs slurm-wlm and munge when run as root"
  exit 77
fi

cluster=$tmp/slurm
chmod 755 "$tmp"   # munged's socket must be reachable through every folder above it
trap 'slurm_cluster_stop "$cluster"; rm -rf "$tmp"' EXIT
if ! slurm_cluster_start "$cluster"; then
  bad "the one-node Slurm cluster did not start"
  finish
  exit 1
fi
echo "$(sinfo -V), munge $(munged -V 2>&1 | sed -n 's/^munge-\([^ ]*\).*/\1/p'), $(mpirun --version 2>&1 | head -n 1)"

# --- helpers
step() { echo "[$(($(date +%s) - t_start)) s] $*"; }
# job_field ID FIELD: a field of scontrol show job (JobState, Reason, Restarts, ...)
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
# wait_gone IDS SECONDS: wait until none of the jobs (comma list) is pending,
# running or completing; fails after SECONDS
wait_gone() {
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  echo "jobs $1 still queued after $2 s: $(squeue -j "$1")" >&2
  return 1
}
# wait_for SECONDS CONDITION: poll CONDITION (eval'ed) every 0.1 s
wait_for() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    eval "$2" && return 0
    sleep 0.1
  done
  return 1
}
# round_jobs ROUND_DIR: the job ids round.env records, comma-separated
round_jobs() { sed -n 's/^JOB_[a-z_]*=\([0-9][0-9]*\)$/\1/p' "$1/round.env" | paste -sd,; }
env_job() { sed -n "s/^JOB_$2=//p" "$1/round.env"; }
chunks() { find "$1" -name 'chunk-*.h5' 2>/dev/null | wc -l; }
# release ID: start a requeued job now instead of after Slurm's hold of about
# two minutes, once its earlier run has left the node (the new run's steps
# get the same ids: one launched while its namesake is still being cleaned
# up is aborted, and that srun still ends with 0)
release() {
  wait_for 60 "! pgrep -f '^slurmstepd: \\[$1\\.' >/dev/null"
  scontrol update JobId="$1" StartTime=now
}
json_benchmarks() {  # json_benchmarks A B: the "benchmarks" of two results.json are equal
  python3 -c 'import json, sys; a, b = (json.load(open(f))["benchmarks"] for f in sys.argv[1:]); sys.exit(a != b)' "$1" "$2"
}

# --- the tools as the jobs see them: the real ones, sima-gen noting what
#     each rank sees, sima-critic followed by hand-made verdicts in round 1
mkdir -p "$tmp/bin"
for t in sima-prep sima-pairs sima-dpo sima-bench; do ln -s "$bin/$t" "$tmp/bin/$t"; done
cat >"$tmp/bin/sima-gen" <<EOF
#!/bin/bash
[ "\$1" = --version ] || echo "job \$SLURM_JOB_ID rank \${OMPI_COMM_WORLD_RANK:-\${PMIX_RANK:-?}} local \${OMPI_COMM_WORLD_LOCAL_RANK:-\${SLURM_LOCALID:-?}} cvd \${CUDA_VISIBLE_DEVICES-unset}" >>"$tmp/ranks.log"
exec "$bin/sima-gen" "\$@"
EOF
cat >"$tmp/bin/sima-critic" <<EOF
#!/bin/bash
"$bin/sima-critic" "\$@" || exit \$?
while [ "\$#" -gt 0 ]; do
  case \$1 in --out) out=\$2 ;; --responses) resp=\$2 ;; --model) m=\$(readlink -f "\$2") ;; esac
  shift
done
[ "$hand" = 1 ] && [ "\$m" = "$model" ] || exit 0
[ "\${OMPI_COMM_WORLD_RANK:-\${PMIX_RANK:-0}}" = 0 ] || exit 0
# the helper runs as an MPI program of its own: the launcher's variables go
unset \$(env | sed -n 's/^\(OMPI_[A-Za-z0-9_]*\|PMIX_[A-Za-z0-9_]*\|SLURM_[A-Za-z0-9_]*\)=.*/\1/p')
cp "\$out" "\$out.critic" && "$helper" --make-verdicts "\$resp" "\$out.tmp" && mv "\$out.tmp" "\$out"
EOF
chmod +x "$tmp/bin/sima-gen" "$tmp/bin/sima-critic"
# the jobs inherit this environment (sbatch --export=ALL); mpirun as root
# needs its consent
export SIMA_BIN=$tmp/bin OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset SIMA_HOME SIMA_LAUNCHER SIMA_SRUN_OPTS

# --- inputs: the prompts, and 4 POPE questions on the golden images
"$bin/sima-prep" import --format sima "$prompts_jsonl" --image-root "$images" \
  --out "$tmp/prompts.h5" >"$tmp/prep.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-prep import failed: $(cat "$tmp/prep.log")"
make_pope_questions "$tmp/q" 4
t_ready=$(date +%s)

# --- launchers and GPUs: one small sima-gen job each
step "launchers"
job=(--ntasks-per-node=2 --cpus-per-task=1 --time=00:10:00)
small=(--max-new-tokens 8 --chunk 4 --quiet)
gen_job() {  # gen_job NAME SBATCH_OPTS...: submit sima-gen into $tmp/NAME.h5, log $tmp/NAME.log
  local name=$1
  shift
  sbatch --parsable "${job[@]}" "$@" --output="$tmp/$name.log" "$src/slurm/sima-gen.sbatch" "$model" \
    "$tmp/prompts.h5" "$tmp/$name.h5" "${small[@]}"
}
ja=$(gen_job auto --gpus-per-task=1)
jm=$(SIMA_LAUNCHER=mpirun gen_job mpirun --gres=gpu:2)
jf=$(SIMA_SRUN_OPTS=--mpi=none gen_job fallback)
wait_gone "$ja,$jm,$jf" 300
for j in "$ja" "$jm" "$jf"; do
  check '[ "$(job_field "$j" JobState)" = COMPLETED ]' "launcher job $j did not complete: $(cat "$tmp"/*.log)"
done
if srun --mpi=list 2>&1 | grep -qw pmix; then
  check 'grep -q "launcher: srun --kill-on-bad-exit=1 --mpi=pmix (auto: " "$tmp/auto.log"' \
    "auto should pick srun --mpi=pmix where srun lists pmix: $(cat "$tmp/auto.log")"
else
  check 'grep -q "launcher: mpirun .*(auto: " "$tmp/auto.log"' "auto should pick mpirun: $(cat "$tmp/auto.log")"
fi
check 'grep -q "launcher: mpirun -np 2 --bind-to none (SIMA_LAUNCHER=mpirun)" "$tmp/mpirun.log"' \
  "SIMA_LAUNCHER=mpirun not used: $(cat "$tmp/mpirun.log")"
check 'grep -q "launcher: mpirun -np 2 --bind-to none (auto: srun cannot start the ranks (tried: --mpi=none))" "$tmp/fallback.log"' \
  "auto should fall back to mpirun when srun cannot start a rank: $(cat "$tmp/fallback.log")"
for l in mpirun fallback; do
  check 'h5diff -q "$tmp/auto.h5" "$tmp/$l.h5" /responses /responses' "responses of the $l launcher differ from auto's"
done
# one rank per GPU; CUDA_VISIBLE_DEVICES as Slurm set it
ranks() { grep "^job $1 " "$tmp/ranks.log" | sed 's/^job [0-9]* //' | sort; }
check '[ "$(ranks "$ja" | sed "s/.* cvd //" | paste -sd" ")" = "0 1" ]' \
  "--gpus-per-task=1 under srun: each rank should see its own GPU: $(ranks "$ja")"
check '[ "$(ranks "$jm")" = "$(printf "rank 0 local 0 cvd 0,1\nrank 1 local 1 cvd 0,1")" ]' \
  "--gres=gpu:2 under mpirun: both ranks should see GPUs 0,1: $(ranks "$jm")"
check 'grep -q "; CUDA_VISIBLE_DEVICES=0,1$" "$tmp/mpirun.log"' "the job's GPUs are not in its log: $(cat "$tmp/mpirun.log")"
t_launch=$(date +%s)

# --- two rounds, uninterrupted
step "two rounds"
# (sima-gen's work is sized so that its job can be caught running twice)
gen_args=(--max-new-tokens 256 --candidates 6 --chunk 1 --batch 1)
ropts=(--gen-args "${gen_args[*]}"
       --critic-args "--max-new-tokens 8 --quiet" --pairs-args "--ref-logps --quiet"
       --dpo-args "--lora-r 4 --lora-alpha 8 --epochs 2 --lr 1e-3 --quiet"
       --bench-args "--questions $tmp/q/questions.jsonl --max-new-tokens 4 --quiet" --bench-base
       --sbatch "${job[*]}")
R=$tmp/ref
bash "$src/slurm/sima-round.sh" --rounds 2 "${ropts[@]}" "$model" "$tmp/prompts.h5" "$R" >"$tmp/ref.out" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$R/round-1/round.env" ] && [ -f "$R/round-2/round.env" ]' "sima-round.sh --rounds 2 failed: $(cat "$tmp/ref.out")"
wait_gone "$(round_jobs "$R/round-1"),$(round_jobs "$R/round-2")" 600
R1=$R/round-1 R2=$R/round-2
for s in gen critic pairs dpo bench bench_base summary; do
  check '[ "$(job_field "$(env_job "$R1" $s)" JobState)" = COMPLETED ]' \
    "round 1 $s job did not complete: $(cat "$R1"/logs/sima-"${s%_base}"-*.log)"
done
check '[ -f "$R1/responses.h5" ] && [ -f "$R1/verdicts.h5" ] && [ -f "$R1/dpo/merged/config.json" ] && [ -f "$R1/bench/results.json" ] && [ -f "$R1/bench-base/results.json" ]' \
  "round 1 outputs missing: $(ls -R "$R1")"
n1=$(attr "$R1/pairs.h5" n_pairs)
check '[ "${n1:-0}" -gt 0 ]' "round 1 kept no pairs: $(cat "$R1"/logs/sima-pairs-*.log)"
check 'grep -q "sima-gen --model $R1/dpo/merged " "$R2"/logs/sima-gen-*.log' "round 2 did not start from round 1's merged model"
check 'grep -q "^$n1 pairs kept of " "$R1/summary.md" && grep -q "^| 2 | .* |$" "$R1/summary.md" && grep -q "^| pope | all.accuracy | " "$R1/summary.md"' \
  "round 1 summary lacks the pairs, the DPO table or the bench deltas: $(cat "$R1/summary.md")"
# round 2: the tiny model's own critic (no hand-made verdicts) keeps no pairs
n2=$(attr "$R2/pairs.h5" n_pairs)
check '[ -n "$n2" ] && [ "$(job_field "$(env_job "$R2" pairs)" JobState)" = COMPLETED ] && [ "$(job_field "$(env_job "$R2" summary)" JobState)" = COMPLETED ]' \
  "round 2 pairs or summary job did not complete: $(cat "$R2"/logs/*.log)"
if [ "${n2:-0}" = 0 ]; then
  check '[ "$(job_field "$(env_job "$R2" dpo)" JobState)" = FAILED ] && grep -q "no pairs to train on" "$R2"/logs/sima-dpo-*.log' \
    "round 2 with no pairs: sima-dpo should fail saying so: $(cat "$R2"/logs/sima-dpo-*.log)"
  check '[ "$(job_field "$(env_job "$R2" bench)" JobState)" = CANCELLED ] && [ "$(job_field "$(env_job "$R2" bench)" Reason)" = DependencyNeverSatisfied ]' \
    "the bench after a failed dpo should be cancelled: $(scontrol show job "$(env_job "$R2" bench)")"
  check 'grep -q "No pairs kept: DPO has nothing to train on" "$R2/summary.md"' "round 2 summary should say no pairs were kept: $(cat "$R2/summary.md")"
  n=$(squeue -h | wc -l)
  bash "$src/slurm/sima-round.sh" --rounds 2 "${ropts[@]}" "$model" "$tmp/prompts.h5" "$R" >"$tmp/ref2.out" 2>&1
  rc=$?
  check '[ $rc -eq 0 ] && [ "$(squeue -h | wc -l)" = "$n" ] && grep -q "^dpo  *skipped: " "$tmp/ref2.out" && grep -qx "STATUS_dpo=skipped" "$R2/round.env" && grep -q "round 2 kept no pairs" "$tmp/ref2.out"' \
    "the driver run again after a round without pairs should submit nothing: $(cat "$tmp/ref2.out")"
else
  check '[ -f "$R2/dpo/merged/config.json" ] && grep -q "^Before (A): $R1/bench; after (B): $R2/bench" "$R2/summary.md"' \
    "round 2 should train and compare with round 1's bench: $(cat "$R2/summary.md")"
fi
check 'grep -q "^# Rounds in $R" "$R/summary.md" && grep -q "^## Round 1 of 2: $R1" "$R/summary.md" && grep -q "^## Round 2 of 2: $R2" "$R/summary.md"' \
  "the summary of both rounds is incomplete: $(cat "$R/summary.md")"
t_ref=$(date +%s)

# --- SIGUSR1 to the whole job (--full) under srun: the tool stops, the job
#     requeues itself and its next run finishes round 1's responses again
step "SIGUSR1 under srun"
j=$(sbatch --parsable "${job[@]}" --output="$tmp/usr1.log" "$src/slurm/sima-gen.sbatch" "$model" \
  "$tmp/prompts.h5" "$tmp/usr1.h5" "${gen_args[@]}")
wait_for 300 '[ "$(chunks "$tmp/usr1.h5.parts")" -ge 1 ] || [ -f "$tmp/usr1.h5" ]'
scancel --signal=USR1 --full "$j"
wait_for 60 '[ "$(job_field "$j" Restarts)" = 1 ] && [ "$(job_field "$j" JobState)" = PENDING ]'
check '[ "$(job_field "$j" JobState)" = PENDING ] && grep -q "launcher: srun " "$tmp/usr1.log" && grep -q "requeueing job $j" "$tmp/usr1.log"' \
  "SIGUSR1 under srun: the job should have requeued itself: $(scontrol show job "$j"; cat "$tmp/usr1.log")"
release "$j"
wait_gone "$j" 300
check '[ "$(job_field "$j" JobState)" = COMPLETED ] && h5diff -q "$R1/responses.h5" "$tmp/usr1.h5" /responses /responses' \
  "SIGUSR1 under srun: the requeued job should finish round 1's responses: $(scontrol show job "$j"; cat "$tmp/usr1.log")"
t_usr1=$(date +%s)

# --- one round under mpirun, interrupted twice, then finished by the driver
step "interrupted round"
export SIMA_LAUNCHER=mpirun
I=$tmp/int
bash "$src/slurm/sima-round.sh" "${ropts[@]}" "$model" "$tmp/prompts.h5" "$I" >"$tmp/int.out" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "the round under mpirun was not submitted: $(cat "$tmp/int.out")"
g=$(env_job "$I" gen) c=$(env_job "$I" critic)
wait_for 300 '[ "$(chunks "$I/responses.h5.parts")" -ge 1 ] || [ -f "$I/responses.h5" ]'
step "SIGUSR1 to the batch shell of job $g"
scancel --signal=USR1 --batch "$g"
# the batch shell passes the signal to mpirun, which passes it to the ranks;
# they commit, exit 3, and the script requeues the job
wait_for 60 '[ "$(job_field "$g" Restarts)" = 1 ] && [ "$(job_field "$g" JobState)" = PENDING ]'
check '[ "$(job_field "$g" Restarts)" = 1 ] && [ "$(job_field "$g" JobState)" = PENDING ] && grep -q "requeueing job $g" "$I/logs/sima-gen-$g.log"' \
  "SIGUSR1: sima-gen should have requeued itself: $(scontrol show job "$g"; cat "$I/logs/sima-gen-$g.log")"
check '[ ! -e "$I/responses.h5" ] && [ "$(chunks "$I/responses.h5.parts")" -ge 1 ]' "SIGUSR1: the committed chunks should be kept, the output not written"
check '[ "$(job_field "$c" JobState)" = PENDING ] && [ "$(job_field "$c" Reason)" = Dependency ]' \
  "the critic should wait for the requeued sima-gen: $(scontrol show job "$c")"
# Slurm holds a requeued batch job for about two minutes (BeginTime): release it
n=$(chunks "$I/responses.h5.parts")
release "$g"
step "job $g released"
wait_for 120 '[ "$(chunks "$I/responses.h5.parts")" -gt "$n" ] || [ -f "$I/responses.h5" ]'
step "scancel $g"
scancel "$g"
wait_gone "$(round_jobs "$I")" 300
check '[ "$(job_field "$g" JobState)" = CANCELLED ] && [ ! -e "$I/responses.h5" ]' \
  "the hard scancel did not stop sima-gen before it finished: $(scontrol show job "$g")"
for s in critic pairs dpo bench; do
  check '[ "$(job_field "$(env_job "$I" $s)" JobState)" = CANCELLED ]' "the $s job should be cancelled after sima-gen was"
done
check 'grep -q "^No pairs file yet" "$I/summary.md"' "the summary of the stopped round: $(cat "$I/summary.md")"
step "the driver again"
bash "$src/slurm/sima-round.sh" "${ropts[@]}" "$model" "$tmp/prompts.h5" "$I" >"$tmp/int2.out" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "^gen  *job " "$tmp/int2.out" && grep -q "^bench_base done" "$tmp/int2.out"' \
  "the driver run again should resubmit the stopped stages: $(cat "$tmp/int2.out")"
g2=$(env_job "$I" gen)
wait_gone "$(round_jobs "$I")" 600
for s in gen critic pairs dpo bench summary; do
  check '[ "$(job_field "$(env_job "$I" $s)" JobState)" = COMPLETED ]' "rerun: the $s job did not complete: $(cat "$I"/logs/sima-"$s"-*.log)"
done
check 'grep -q "[1-9][0-9]* already committed" "$I/logs/sima-gen-$g2.log"' "sima-gen did not continue from its chunks: $(cat "$I/logs/sima-gen-$g2.log")"
# the same files as the uninterrupted round
step "comparing"
for f in responses verdicts pairs; do
  check 'h5diff -q "$R1/$f.h5" "$I/$f.h5" /$f /$f' "$f.h5 of the interrupted round differs from the uninterrupted one"
done
[ "$hand" = 1 ] && check 'h5diff -q "$R1/verdicts.h5.critic" "$I/verdicts.h5.critic" /verdicts /verdicts' "the critic's own verdicts differ"
d=$(st_diff "$R1/dpo/adapter/adapter_model.safetensors" "$I/dpo/adapter/adapter_model.safetensors")
check 'le "$d" 1e-6' "the adapter of the interrupted round differs by $d"
dm=$(st_diff "$R1/dpo/merged/model.safetensors" "$I/dpo/merged/model.safetensors")
check 'le "$dm" 1e-6' "the merged model of the interrupted round differs by $dm"
echo "interrupted vs uninterrupted round: adapter max rel. difference $d, merged model $dm"
check 'json_benchmarks "$R1/bench/results.json" "$I/bench/results.json" && json_benchmarks "$R1/bench-base/results.json" "$I/bench-base/results.json"' \
  "bench results of the interrupted round differ"
check 'diff <(sed 1,4d "$R1/summary.md" | sed "s|$R1|R|g") <(sed 1,4d "$I/summary.md" | sed "s|$I|R|g") >/dev/null' \
  "the summaries differ: $(diff <(sed 1,4d "$R1/summary.md") <(sed 1,4d "$I/summary.md"))"
t_int=$(date +%s)

# --- the shapes-world demo round as a new cluster user submits it
step "demo round (slurm/sima-demo.sh)"
D=$tmp/demo
bash "$src/slurm/sima-demo.sh" --round 24 --bench 24 --sbatch "${job[*]}" "$D" >"$tmp/demo.out" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$D/round.env" ]' "slurm/sima-demo.sh failed: $(cat "$tmp/demo.out")"
wait_gone "$(round_jobs "$D")" 600
for s in gen critic pairs dpo bench bench_base summary; do
  check '[ "$(job_field "$(env_job "$D" $s)" JobState)" = COMPLETED ]' \
    "demo round: the $s job did not complete: $(cat "$D"/logs/sima-"${s%_base}"-*.log)"
done
/usr/bin/python3 "$src/scripts/shapes_report.py" table --before "$D/bench-base" --after "$D/bench" >"$tmp/demo.table" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "^| CHAIR_i" "$tmp/demo.table" && grep -q "^| POPE accuracy" "$tmp/demo.table"' \
  "no before/after table for the demo round: $(cat "$tmp/demo.table")"
check 'grep -q "pairs" "$D/summary.md"' "the demo round has no summary: $(cat "$D/summary.md" 2>&1)"
t_end=$(date +%s)
echo "wall time: $((t_end - t_start)) s (setup $((t_ready - t_start)), launchers $((t_launch - t_ready)), two rounds $((t_ref - t_launch)), SIGUSR1 under srun $((t_usr1 - t_ref)), interrupted round $((t_int - t_usr1)), demo round $((t_end - t_int)))"
finish
