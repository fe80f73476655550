#!/usr/bin/env bash
# The Slurm batch scripts (slurm/*.sbatch, slurm/lib.sh) and the round driver
# (slurm/sima-round.sh), outside Slurm: shim commands first in PATH stand in
# for srun (mpirun -np 2), sbatch (records its arguments, runs the script at
# once with SLURM_JOB_ID set and its output in the --output file, prints the
# job id; a job whose afterok dependency did not end 0 is recorded as held
# and not run), scontrol and scancel (record their arguments) and squeue
# (reports the jobs listed in a file). The tools are the real ones on the
# golden tiny model and the demo prompts, except that the critic stage's
# verdicts are replaced by hand-made ones (the helper mode of
# tests/unit/test_pairs_logic) after the real sima-critic has run: the
# random tiny model never writes a verdict, and without verdicts there are
# no pairs to train on.
#  - bad arguments: a usage message and exit 2, for the driver and each
#    script; the driver refuses to submit when the tools are not built;
#  - --dry-run prints the sbatch commands of the whole chain with the right
#    dependencies (and no --merge with --train all), and submits and writes
#    nothing;
#  - a script runs srun with the job's cpus per task and $SIMA_SRUN_OPTS;
#    SIGUSR1 to it (Slurm's warning signal) reaches sima-gen, which exits 3,
#    and the job is requeued; the same command then finishes the file, equal
#    to an uninterrupted run;
#  - a full round: each stage waits for the jobs of its inputs, every output
#    is there, round.env records the jobs; sima-dpo stopped early (exit 3)
#    is requeued and the bench of its model never starts;
#  - rerunning the driver submits only the stages whose output is missing
#    (sima-dpo continues from its checkpoint), keeps a job still in the
#    queue, and replaces one that waits on a failed job or would not wait
#    for the new job making its input; a finished round submits nothing;
#  - a failed sbatch stops the driver with exit 1, round.env saying what was
#    submitted.
# shellcheck disable=SC2034  # some variables are read only in check's eval'ed strings
set -u
bin=${SIMA_BIN:?}
src=${SIMA_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
helper=$bin/../tests/test_pairs_logic
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"
openblas_coretype
attr() { h5dump -a "/$2" "$1" | sed -n 's/^ *(0): *//p'; }

# --- the shims
state=$tmp/state
mkdir -p "$tmp/shim" "$tmp/bin" "$state"
: >"$state/sbatch.log"
: >"$state/scontrol.log"
: >"$state/scancel.log"
: >"$state/queued"
cat >"$tmp/shim/srun" <<'EOF'
#!/bin/bash
# srun --mpi=list: the plugins in $SHIM_SRUN_MPI; a one-task step (the
# launcher probe) fails when SHIM_SRUN_BROKEN=1; SHIM_SRUN_NOOP=1: exit 0
# without running anything (as Slurm 22.05's srun does when its step is
# aborted before launch); else 2 ranks under mpirun
if [ "$1" = --mpi=list ]; then printf 'MPI plugin types are...\n'; printf '\t%s\n' ${SHIM_SRUN_MPI:-none}; exit 0; fi
echo "cpus ${SRUN_CPUS_PER_TASK:-unset} omp ${OMP_NUM_THREADS:-unset}: $*" >>"$SHIM_STATE/srun.log"
[[ " $* " == *" --ntasks=1 "* ]] && [ "${SHIM_SRUN_BROKEN:-0}" = 1 ] && { echo "PMI: no such plugin" >&2; exit 1; }
[ "${SHIM_SRUN_NOOP:-0}" = 1 ] && { echo "srun: error: task 0 launch failed: Unspecified error" >&2; exit 0; }
while [ "$#" -gt 0 ]; do case $1 in -*) shift ;; *) break ;; esac; done
exec mpirun --oversubscribe --allow-run-as-root -np 2 "$@"
EOF
cat >"$tmp/shim/sbatch" <<'EOF'
#!/bin/bash
# sbatch.log: one line per call, "ID|DEPENDENCIES|SCRIPT ARGS..." (DEPENDENCIES:
# the afterok job ids, or any:IDS for afterany); a job waiting with afterok
# for one that did not end 0 is held
# shellcheck disable=SC2034  # some variables are read only in check's eval'ed strings
set -u
d=$SHIM_STATE
id=$(($(cat "$d/next_id" 2>/dev/null || echo 1000) + 1))
echo "$id" >"$d/next_id"
out=/dev/null deps= any=
while [ "$#" -gt 0 ]; do
  case $1 in
    --output=*) out=${1#--output=} ;;
    --dependency=afterok:*) deps=${1#--dependency=afterok:} ;;
    --dependency=afterany:*) any=${1#--dependency=afterany:} ;;
    -*) ;;
    *) break ;;
  esac
  shift
done
echo "$id|$deps${any:+any:$any}|$(basename "$1") ${*:2}" >>"$d/sbatch.log"
if [ "$(basename "$1")" = "${SHIM_SBATCH_FAIL:-}" ]; then
  echo "sbatch: error: Batch job submission failed: Invalid account" >&2
  exit 1
fi
for j in ${deps//:/ }; do
  if [ "$(cat "$d/rc.$j" 2>/dev/null)" != 0 ]; then echo held >"$d/rc.$id"; echo "$id"; exit 0; fi
done
SLURM_JOB_ID=$id bash "$@" >>"${out//%j/$id}" 2>&1
echo "$?" >"$d/rc.$id"
echo "$id"
EOF
cat >"$tmp/shim/scontrol" <<'EOF'
#!/bin/bash
echo "$*" >>"$SHIM_STATE/scontrol.log"
EOF
cat >"$tmp/shim/scancel" <<'EOF'
#!/bin/bash
echo "$*" >>"$SHIM_STATE/scancel.log"
EOF
cat >"$tmp/shim/squeue" <<'EOF'
#!/bin/bash
# squeue -h -j ID -o FORMAT: the state and reason listed for ID in "queued"
while [ "$#" -gt 0 ]; do [ "$1" = -j ] && id=$2; shift; done
sed -n "s/^${id:-none} //p" "$SHIM_STATE/queued"
EOF
# the tools, with sima-critic followed by hand-made verdicts (rank 0; the
# helper runs as its own MPI job, so the launcher's variables go), unless
# SHIM_HAND=0
for t in sima-prep sima-gen sima-pairs sima-dpo sima-bench; do ln -s "$bin/$t" "$tmp/bin/$t"; done
cat >"$tmp/bin/sima-critic" <<EOF
#!/bin/bash
"$bin/sima-critic" "\$@" || exit \$?
[ "\${OMPI_COMM_WORLD_RANK:-0}" = 0 ] && [ "\${SHIM_HAND:-1}" = 1 ] || exit 0
while [ "\$#" -gt 0 ]; do
  case \$1 in --out) out=\$2 ;; --responses) resp=\$2 ;; esac
  shift
done
unset \$(env | sed -n 's/^\(OMPI_[A-Za-z0-9_]*\|PMIX_[A-Za-z0-9_]*\)=.*/\1/p')
cp "\$out" "\$out.critic" && "$helper" --make-verdicts "\$resp" "\$out.tmp" && mv "\$out.tmp" "\$out"
EOF
chmod +x "$tmp/shim"/* "$tmp/bin/sima-critic"
export PATH="$tmp/shim:$PATH" SHIM_STATE=$state SIMA_BIN=$tmp/bin SIMA_LAUNCHER=srun
unset SIMA_HOME SLURM_JOB_ID
round=$src/slurm/sima-round.sh
# the sbatch.log lines after line N
since() { tail -n +"$(($1 + 1))" "$state/sbatch.log"; }
calls() { wc -l <"$state/sbatch.log"; }
# the id of the job whose script is $2 in lines $1 (since ...)
id_of() { grep "|$2 " <<<"$1" | cut -d'|' -f1; }
deps_of() { grep "|$2 " <<<"$1" | cut -d'|' -f2; }
# drive OUT ARGS...: sima-round.sh ARGS, its output in $tmp/OUT; sets rc, n
# (the count of sbatch calls before it) and sub (the sbatch.log lines it added)
drive() {
  local out=$1
  shift
  n=$(calls)
  bash "$round" "$@" >"$tmp/$out" 2>&1
  rc=$?
  sub=$(since "$n")
}

# --- inputs: the demo prompts, 4 POPE questions about the golden images
"$bin/sima-prep" import --format sima "$src/data/demo/prompts.jsonl" \
  --image-root "$src/data/demo/images" --out "$tmp/prompts.h5" >"$tmp/prep.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-prep import failed: $(cat "$tmp/prep.log")"
make_pope_questions "$tmp/q" 4

# --- bad arguments: usage and exit 2
usage_case() {  # usage_case WHAT CMD...: exit 2 with a usage line
  local what=$1 rc
  shift
  "$@" >"$tmp/usage.out" 2>"$tmp/usage.err"
  rc=$?
  check '[ $rc -eq 2 ] && grep -q "^usage: " "$tmp/usage.err"' "$what: expected usage and exit 2, got $rc: $(cat "$tmp/usage.err")"
}
usage_case "driver without arguments" bash "$round"
usage_case "driver with two arguments" bash "$round" "$model" "$tmp/prompts.h5"
usage_case "driver, unknown option" bash "$round" --bogus "$model" "$tmp/prompts.h5" "$tmp/r"
usage_case "driver, option without value" bash "$round" "$model" "$tmp/prompts.h5" "$tmp/r" --dpo-args
usage_case "driver, --bench-base without --bench-args" bash "$round" --bench-base "$model" "$tmp/prompts.h5" "$tmp/r"
usage_case "driver, no such model" bash "$round" "$tmp/nomodel" "$tmp/prompts.h5" "$tmp/r"
usage_case "driver, no such prompts" bash "$round" "$model" "$tmp/none.h5" "$tmp/r"
usage_case "driver, --rounds 0" bash "$round" --rounds 0 "$model" "$tmp/prompts.h5" "$tmp/r"
usage_case "driver, --gpus-per-node x" bash "$round" --gpus-per-node x "$model" "$tmp/prompts.h5" "$tmp/r"
usage_case "sima-gen.sbatch, two arguments" bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5"
usage_case "sima-critic.sbatch, three arguments" bash "$src/slurm/sima-critic.sbatch" "$model" "$tmp/prompts.h5" x.h5
usage_case "sima-pairs.sbatch, option for a path" bash "$src/slurm/sima-pairs.sbatch" "$model" "$tmp/prompts.h5" a.h5 b.h5 --ref-logps
usage_case "sima-dpo.sbatch, --help" bash "$src/slurm/sima-dpo.sbatch" --help
usage_case "sima-bench.sbatch, one argument" bash "$src/slurm/sima-bench.sbatch" "$model"
usage_case "sima-summary.sbatch, no argument" bash "$src/slurm/sima-summary.sbatch"
usage_case "sima-summary.sbatch, unknown option" bash "$src/slurm/sima-summary.sbatch" "$tmp" --bogus x
check '[ ! -e "$tmp/r" ] && [ "$(calls)" = 0 ]' "a usage error submitted or created something"
SIMA_BIN=$tmp/nobin bash "$round" "$model" "$tmp/prompts.h5" "$tmp/r" >/dev/null 2>"$tmp/nobin.err"
rc=$?
check '[ $rc -eq 1 ] && grep -q "nobin/sima-gen: no such program" "$tmp/nobin.err" && [ "$(calls)" = 0 ]' \
  "the driver should refuse to submit without the tools: $rc $(cat "$tmp/nobin.err")"
bash "$round" --help >"$tmp/help.out" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q -- "--dry-run" "$tmp/help.out"' "--help should print the options and exit 0"

# --- dry run of a fresh round: the chain, nothing submitted or written
R=$tmp/round
bash "$round" --dry-run --bench-args "--questions $tmp/q/questions.jsonl" --bench-base \
  --sbatch "--account=acct" --dpo-sbatch "--time=00:30:00" "$model" "$tmp/prompts.h5" "$R" >"$tmp/dry.out" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "dry run failed: $(cat "$tmp/dry.out")"
check '[ ! -e "$R" ] && [ "$(calls)" = 0 ]' "the dry run submitted or created something"
line() { grep "^sbatch .*/$1.sbatch " "$tmp/dry.out"; }
check '[ "$(grep -c "^sbatch " "$tmp/dry.out")" = 7 ]' "dry run: 7 sbatch commands expected: $(cat "$tmp/dry.out")"
check 'line sima-gen | grep -q -- "--account=acct .*sima-gen.sbatch $model $tmp/prompts.h5 $R/responses.h5$" && ! line sima-gen | grep -q dependency' \
  "dry run: gen command wrong: $(line sima-gen)"
check 'line sima-critic | grep -q -- "--dependency=afterok:<gen> .*sima-critic.sbatch $model $tmp/prompts.h5 $R/responses.h5 $R/verdicts.h5$"' \
  "dry run: critic command wrong: $(line sima-critic)"
check 'line sima-pairs | grep -q -- "--dependency=afterok:<gen>:<critic> .*sima-pairs.sbatch $model $tmp/prompts.h5 $R/responses.h5 $R/verdicts.h5 $R/pairs.h5$"' \
  "dry run: pairs command wrong: $(line sima-pairs)"
check 'line sima-dpo | grep -q -- "--account=acct --time=00:30:00 --dependency=afterok:<pairs> .*sima-dpo.sbatch $model $tmp/prompts.h5 $R/pairs.h5 $R/dpo --merge$"' \
  "dry run: dpo command wrong: $(line sima-dpo)"
check '[ "$(line sima-bench | grep -c -- "--dependency=afterok:<dpo> .*sima-bench.sbatch $R/dpo/merged $R/bench --questions $tmp/q/questions.jsonl$")" = 1 ]' \
  "dry run: bench of the merged model wrong: $(line sima-bench)"
check '[ "$(line sima-bench | grep -v dependency | grep -c "sima-bench.sbatch $model $R/bench-base --questions")" = 1 ]' \
  "dry run: bench of the base model should have no dependency: $(line sima-bench)"
check 'line sima-summary | grep -q -- "--account=acct --nodes=1 --ntasks=1 --cpus-per-task=1 --dependency=afterany:<gen>:<critic>:<pairs>:<dpo>:<bench>:<bench_base> .*sima-summary.sbatch $R --title Round:\\\\ $R --model $model --next $R/dpo/merged --before $R/bench-base$"' \
  "dry run: the summary should wait for every job of the round (afterany): $(line sima-summary)"

# one rank per GPU: --gpus-per-node G for the tools' jobs, not the summary's
bash "$round" --dry-run --gpus-per-node 2 --sbatch "--account=acct" --dpo-sbatch "--time=00:30:00" \
  --bench-args "--questions q.jsonl" "$model" "$tmp/prompts.h5" "$R" >"$tmp/dry.out" 2>&1
check '[ "$(grep -c -- "--account=acct --gres=gpu:2 --ntasks-per-node=2 " "$tmp/dry.out")" = 5 ] && line sima-dpo | grep -q -- "--ntasks-per-node=2 --time=00:30:00 " && ! line sima-summary | grep -q gpu' \
  "dry run with --gpus-per-node 2 wrong: $(cat "$tmp/dry.out")"

# --rounds 2: round 2 in ROUND_DIR/round-2 starts from round 1's merged model
bash "$round" --dry-run --rounds 2 --bench-args "--questions q.jsonl" --bench-base "$model" "$tmp/prompts.h5" "$R" >"$tmp/dry.out" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ "$(grep -c "^sbatch " "$tmp/dry.out")" = 13 ] && [ "$(line sima-bench | grep -c "bench-base")" = 1 ]' \
  "dry run of 2 rounds: 13 jobs expected, one base bench: $(cat "$tmp/dry.out")"
check 'line sima-gen | grep -q -- "--dependency=afterok:<dpo@1> .*sima-gen.sbatch $R/round-1/dpo/merged $tmp/prompts.h5 $R/round-2/responses.h5$"' \
  "dry run of 2 rounds: round 2 should start from round 1's merged model: $(line sima-gen)"
check 'line sima-summary | grep -q -- "--dependency=afterany:<gen@2>:<critic@2>:<pairs@2>:<dpo@2>:<bench@2>:<bench@1> .*sima-summary.sbatch $R/round-2 .*--before $R/round-1/bench --collect $R$"' \
  "dry run of 2 rounds: round 2's summary should compare with round 1's bench: $(line sima-summary)"

# --train all: no --merge (sima-dpo refuses it), the bench reads OUT/model
bash "$round" --dry-run --dpo-args "--train all" --bench-args "--questions q.jsonl" "$model" "$tmp/prompts.h5" "$R" >"$tmp/dry.out" 2>&1
check 'line sima-dpo | grep -q "sima-dpo.sbatch $model $tmp/prompts.h5 $R/pairs.h5 $R/dpo --train all$" && line sima-bench | grep -q "sima-bench.sbatch $R/dpo/model $R/bench "' \
  "dry run with --train all wrong: $(cat "$tmp/dry.out")"

# --- SIGUSR1 to the batch shell: sima-gen commits, exits 3, the job is requeued
gen=(--max-new-tokens 200 --candidates 4 --chunk 1 --batch 1)
SLURM_CPUS_PER_TASK=1 SIMA_SRUN_OPTS="--mpi=pmix --label" bash "$src/slurm/sima-gen.sbatch" "$model" \
  "$tmp/prompts.h5" "$tmp/full.h5" "${gen[@]}" >"$tmp/full.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/full.h5" ] && [ ! -e "$tmp/full.h5.parts" ]' "sima-gen.sbatch failed: $(cat "$tmp/full.log")"
check '[ "$(cat "$state/srun.log")" = "cpus 1 omp 1: --kill-on-bad-exit=1 --mpi=pmix --label $tmp/bin/sima-gen --model $model --prompts $tmp/prompts.h5 --out $tmp/full.h5 ${gen[*]}" ]' \
  "srun called wrongly: $(cat "$state/srun.log")"
SLURM_JOB_ID=4242 bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/usr1.h5" "${gen[@]}" >"$tmp/usr1.log" 2>&1 &
pid=$!
# the signal once the tool runs (a signal during MPI start-up just kills it)
while [ ! -e "$tmp/usr1.h5.parts/run_key" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
kill -USR1 "$pid"
wait "$pid"
rc=$?
check '[ $rc -eq 3 ] && [ -d "$tmp/usr1.h5.parts" ] && [ ! -e "$tmp/usr1.h5" ]' \
  "SIGUSR1: exit 3 with the parts kept expected, got $rc: $(cat "$tmp/usr1.log")"
check '[ "$(cat "$state/scontrol.log")" = "requeue 4242" ]' "SIGUSR1: no scontrol requeue 4242: $(cat "$state/scontrol.log")"
SLURM_JOB_ID=4242 bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/usr1.h5" "${gen[@]}" >"$tmp/usr1b.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ ! -e "$tmp/usr1.h5.parts" ]' "the requeued sima-gen did not finish: $(cat "$tmp/usr1b.log")"
check 'h5diff -q "$tmp/full.h5" "$tmp/usr1.h5" /responses /responses' "interrupted + requeued output differs from an uninterrupted run"
check '[ "$(wc -l <"$state/scontrol.log")" = 1 ]' "a finished job must not be requeued"

# --- SIGTERM (scancel, time limit) reaches the shell and the ranks: they
#     commit and exit 3, the shell waits for them and does not requeue
SLURM_JOB_ID=4243 bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/term.h5" "${gen[@]}" >"$tmp/term.log" 2>&1 &
pid=$!
while [ ! -e "$tmp/term.h5.parts/run_key" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
kill -TERM "$pid"
pkill -TERM -f "^$tmp/bin/sima-gen .*$tmp/term.h5"
wait "$pid"
rc=$?
check '[ $rc -eq 3 ] && grep -q "sima-gen: stopped by SIGTERM (scancel, time limit or preemption) with status 3; not requeued" "$tmp/term.log" && ! grep -q 4243 "$state/scontrol.log"' \
  "SIGTERM: exit 3 and no requeue expected, got $rc: $(cat "$tmp/term.log")"
SLURM_JOB_ID=4243 bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/term.h5" "${gen[@]}" >"$tmp/term2.log" 2>&1
check 'h5diff -q "$tmp/full.h5" "$tmp/term.h5" /responses /responses' "SIGTERM + rerun output differs from an uninterrupted run: $(cat "$tmp/term2.log")"

# --- launchers: auto probes srun with each --mpi plugin it lists, else mpirun
: >"$state/srun.log"
small=(--max-new-tokens 8 --chunk 4)
SIMA_LAUNCHER=auto SHIM_SRUN_MPI="pmix none" bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" \
  "$tmp/auto.h5" "${small[@]}" >"$tmp/auto.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "launcher: srun --kill-on-bad-exit=1 --mpi=pmix (auto: an MPI rank starts under srun --mpi=pmix)" "$tmp/auto.log"' \
  "auto should pick srun --mpi=pmix: $(cat "$tmp/auto.log")"
check '[ "$(cut -d: -f2- "$state/srun.log")" = "$(printf " --nodes=1 --ntasks=1 --kill-on-bad-exit=1 --mpi=pmix %s --version\n --kill-on-bad-exit=1 --mpi=pmix %s" "$tmp/bin/sima-gen" "$tmp/bin/sima-gen --model $model --prompts $tmp/prompts.h5 --out $tmp/auto.h5 ${small[*]}")" ]' \
  "auto: one probe step, then the tool: $(cat "$state/srun.log")"
SIMA_LAUNCHER=auto SHIM_SRUN_MPI="pmi2 pmix" SHIM_SRUN_BROKEN=1 SLURM_NTASKS=2 SIMA_MPIRUN_OPTS="--oversubscribe --allow-run-as-root" \
  bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/fallback.h5" "${small[@]}" >"$tmp/fallback.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "launcher: mpirun -np 2 --bind-to none --oversubscribe --allow-run-as-root (auto: srun cannot start the ranks (tried: --mpi=pmix --mpi=pmi2))" "$tmp/fallback.log" && grep -q "PMI: no such plugin" "$tmp/fallback.log"' \
  "auto should fall back to mpirun when no srun probe starts: $(cat "$tmp/fallback.log")"
check 'h5diff -q "$tmp/auto.h5" "$tmp/fallback.h5" /responses /responses' "the responses under mpirun differ from those under srun"
# a launcher that ends with 0 without running the tool: the job fails
SHIM_SRUN_NOOP=1 bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/noop.h5" "${small[@]}" >"$tmp/noop.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "sima-gen: error: srun ended with 0 but there is no $tmp/noop.h5: the ranks did not run" "$tmp/noop.log"' \
  "a launcher that ran nothing must not pass for success: $rc $(cat "$tmp/noop.log")"
SIMA_LAUNCHER=bogus bash "$src/slurm/sima-gen.sbatch" "$model" "$tmp/prompts.h5" "$tmp/bogus.h5" >"$tmp/bogus.log" 2>&1
rc=$?
check '[ $rc -eq 2 ] && grep -q "SIMA_LAUNCHER must be srun, mpirun or auto" "$tmp/bogus.log"' "a wrong SIMA_LAUNCHER: exit 2 expected, got $rc"

# --- a full round; sima-dpo stops early (exit 3)
ropts=(--gen-args "--max-new-tokens 12 --chunk 3 --quiet" --critic-args "--max-new-tokens 8 --quiet"
       --pairs-args "--ref-logps --quiet" --bench-args "--questions $tmp/q/questions.jsonl --max-new-tokens 4"
       --bench-base --sbatch "--account=acct")
dpo1=(--dpo-args "--lora-r 4 --lora-alpha 8 --epochs 2 --lr 1e-3 --stop-after 2")
dpo2=(--dpo-args "--lora-r 4 --lora-alpha 8 --epochs 2 --lr 1e-3")
drive round1.out "${ropts[@]}" "${dpo1[@]}" "$model" "$tmp/prompts.h5" "$R"
check '[ $rc -eq 0 ]' "round failed: $(cat "$tmp/round1.out")"
check '[ "$(wc -l <<<"$sub")" = 7 ]' "7 jobs expected: $sub"
g=$(id_of "$sub" sima-gen.sbatch) c=$(id_of "$sub" sima-critic.sbatch)
p=$(id_of "$sub" sima-pairs.sbatch) d=$(id_of "$sub" sima-dpo.sbatch)
b=$(grep "|sima-bench.sbatch $R/dpo/merged " <<<"$sub" | cut -d'|' -f1)
bb=$(grep "|sima-bench.sbatch $model " <<<"$sub" | cut -d'|' -f1)
sm=$(id_of "$sub" sima-summary.sbatch)
check '[ -z "$(deps_of "$sub" sima-gen.sbatch)" ] && [ "$(deps_of "$sub" sima-critic.sbatch)" = "$g" ]' "critic should wait for gen ($g): $sub"
check '[ "$(deps_of "$sub" sima-pairs.sbatch)" = "$g:$c" ] && [ "$(deps_of "$sub" sima-dpo.sbatch)" = "$p" ]' \
  "pairs should wait for gen and critic, dpo for pairs: $sub"
check '[ -n "$b" ] && [ "$(grep "^$b|" <<<"$sub" | cut -d"|" -f2)" = "$d" ] && [ -n "$bb" ] && [ -z "$(grep "^$bb|" <<<"$sub" | cut -d"|" -f2)" ]' \
  "bench should wait for dpo, bench-base for nothing: $sub"
check '[ "$(deps_of "$sub" sima-summary.sbatch)" = "any:$g:$c:$p:$d:$b:$bb" ]' "the summary should wait for every job (afterany): $sub"
for j in "$g" "$c" "$p" "$bb" "$sm"; do
  check '[ "$(cat "$state/rc.$j")" = 0 ]' "job $j failed: $(cat "$R"/logs/*-"$j".log)"
done
check '[ "$(cat "$state/rc.$d")" = 3 ] && [ "$(tail -n 1 "$state/scontrol.log")" = "requeue $d" ]' \
  "sima-dpo --stop-after: exit 3 and a requeue of job $d expected: $(cat "$R/logs/sima-dpo-$d.log")"
check '[ "$(cat "$state/rc.$b")" = held ] && [ ! -e "$R/bench" ]' "the bench of an unfinished dpo ran"
check '[ -f "$R/responses.h5" ] && [ -f "$R/pairs.h5" ] && [ -d "$R/dpo/checkpoint" ] && [ ! -e "$R/dpo/merged" ]' \
  "stage outputs missing: $(ls -R "$R")"
check '[ -f "$R/logs/sima-gen-$g.log" ] && grep -q "sima-gen: job $g " "$R/logs/sima-gen-$g.log"' "the gen log is not where the driver said"
check 'grep -q "^gen  *job $g  *-> $R/responses.h5 *(log $R/logs/sima-gen-$g.log)" "$tmp/round1.out"' \
  "the driver should print the gen job and its output: $(cat "$tmp/round1.out")"
# the real critic ran and wrote a verdicts file; the hand-made verdicts gave pairs
check '[ "$(attr "$R/verdicts.h5.critic" schema)" = "\"sima.verdicts\"" ]' "sima-critic wrote no verdicts file"
check '[ "$(attr "$R/pairs.h5" n_pairs)" -gt 0 ]' "no pairs: $(cat "$R"/logs/sima-pairs-*.log)"
check 'grep -q "\"pope\"" "$R/bench-base/results.json"' "no POPE results for the base model"
check 'grep -qx "JOB_gen=$g" "$R/round.env" && grep -qx "JOB_dpo=$d" "$R/round.env" && grep -qx "JOB_bench_base=$bb" "$R/round.env" && grep -qx "JOB_summary=$sm" "$R/round.env" && grep -qx "NEXT_MODEL_DIR=$R/dpo/merged" "$R/round.env"' \
  "round.env incomplete: $(cat "$R/round.env")"
# the summary of the unfinished round: the pairs, the steps so far, no bench yet
check 'grep -q "^$(attr "$R/pairs.h5" n_pairs) pairs kept of " "$R/summary.md" && grep -q "^Training has not finished" "$R/summary.md" && grep -q "^No results of the trained model yet" "$R/summary.md"' \
  "summary of the unfinished round wrong: $(cat "$R/summary.md")"

# --- the dry run now shows only what is left
bash "$round" --dry-run "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R" >"$tmp/dry2.out" 2>&1
check '[ "$(grep -c "^sbatch " "$tmp/dry2.out")" = 3 ] && grep -q "^sbatch .*/sima-dpo.sbatch " "$tmp/dry2.out" && ! grep -q -- "sima-dpo.*--dependency" "$tmp/dry2.out" && grep -q -- "--dependency=afterok:<dpo> .*sima-bench.sbatch $R/dpo/merged" "$tmp/dry2.out" && grep -q -- "--dependency=afterany:<dpo>:<bench> .*/sima-summary.sbatch " "$tmp/dry2.out"' \
  "dry run after a partial round: dpo, bench and summary expected: $(cat "$tmp/dry2.out")"

# --- rerun: only dpo (continues from its checkpoint) and the bench of its model
drive round2.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R"
d2=$(id_of "$sub" sima-dpo.sbatch) b2=$(id_of "$sub" sima-bench.sbatch)
check '[ $rc -eq 0 ] && [ "$(wc -l <<<"$sub")" = 3 ] && [ -n "$d2" ] && [ -z "$(deps_of "$sub" sima-dpo.sbatch)" ] && [ "$(deps_of "$sub" sima-bench.sbatch)" = "$d2" ] && [ "$(deps_of "$sub" sima-summary.sbatch)" = "any:$d2:$b2" ]' \
  "rerun should submit dpo, then bench after it, then the summary: $sub $(cat "$tmp/round2.out")"
check 'grep -q "resuming at step 2" "$R/logs/sima-dpo-$d2.log"' "dpo did not continue from its checkpoint: $(cat "$R/logs/sima-dpo-$d2.log")"
check '[ "$(cat "$state/rc.$d2")" = 0 ] && [ -f "$R/dpo/merged/config.json" ] && [ "$(cat "$state/rc.$b2")" = 0 ] && [ -f "$R/bench/results.json" ]' \
  "dpo and bench should have finished: $(cat "$R/logs/sima-dpo-$d2.log" "$R/logs/sima-bench-$b2.log")"
check 'grep -q "sima-bench --model $R/dpo/merged --out $R/bench " "$R/logs/sima-bench-$b2.log"' "bench did not run on the merged model"
check 'grep -q "^Next model: $R/dpo/merged$" "$R/summary.md" && grep -q "^| 2 | [0-9]* | [0-9.]* | [0-9.]* |$" "$R/summary.md" && grep -q "^Before (A): $R/bench-base; after (B): $R/bench.$" "$R/summary.md" && grep -q "^| pope | all.accuracy | " "$R/summary.md"' \
  "summary of the finished round wrong: $(cat "$R/summary.md")"
check 'grep -q "^gen  *done" "$tmp/round2.out" && grep -qx "JOB_gen=$g" "$R/round.env" && grep -qx "STATUS_gen=done" "$R/round.env" && grep -qx "JOB_dpo=$d2" "$R/round.env"' \
  "finished stages should be reported done: $(cat "$tmp/round2.out")"

# --- rerun of a finished round: nothing to submit
drive round3.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R"
check '[ $rc -eq 0 ] && [ "$(calls)" = "$n" ] && [ "$(grep -c " done: " "$tmp/round3.out")" = 6 ]' \
  "a finished round was resubmitted: $(since "$n") $(cat "$tmp/round3.out")"
check 'grep -q "^summary  *wrote $R/summary.md" "$tmp/round3.out" && grep -qx "STATUS_summary=written" "$R/round.env"' \
  "a finished round's summary should be written at once: $(cat "$tmp/round3.out")"

# --- a missing output whose job is still queued is not resubmitted; one
#     waiting on a failed job is cancelled and replaced
rm -rf "$R/bench"
echo "$b2 PENDING Priority" >"$state/queued"
drive round4.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R"
check '[ $rc -eq 0 ] && [ "$(wc -l <<<"$sub")" = 1 ] && [ "$(deps_of "$sub" sima-summary.sbatch)" = "any:$b2" ] && grep -q "^bench  *job $b2  *still queued" "$tmp/round4.out" && grep -qx "JOB_bench=$b2" "$R/round.env" && grep -qx "STATUS_bench=queued" "$R/round.env"' \
  "a queued job was resubmitted (only a summary after it expected): $sub $(cat "$tmp/round4.out")"
echo "$b2 PENDING DependencyNeverSatisfied" >"$state/queued"
drive round5.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R"
check '[ $rc -eq 0 ] && [ "$(cat "$state/scancel.log")" = "$b2" ] && [ "$(wc -l <<<"$sub")" = 2 ] && [ -n "$(id_of "$sub" sima-bench.sbatch)" ] && [ -f "$R/bench/results.json" ]' \
  "a job that can never start should be cancelled and replaced: $sub $(cat "$tmp/round5.out")"
: >"$state/queued"

# --- an incomplete output (parts folder left) is redone, without waiting on done stages
mkdir "$R/pairs.h5.parts"
rm "$R/pairs.h5"
drive round6.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R"
check '[ $rc -eq 0 ] && [ "$(wc -l <<<"$sub")" = 2 ] && [ -n "$(id_of "$sub" sima-pairs.sbatch)" ] && [ -z "$(deps_of "$sub" sima-pairs.sbatch)" ]' \
  "only the pairs stage should be resubmitted: $sub $(cat "$tmp/round6.out")"
check '[ -f "$R/pairs.h5" ] && [ ! -e "$R/pairs.h5.parts" ]' "the resubmitted pairs stage did not finish"

# --- a queued job whose input is being made again by a new job is replaced
#     (it would not wait for the new job)
pj=$(sed -n 's/^JOB_pairs=//p' "$R/round.env")
rm "$R/verdicts.h5" "$R/pairs.h5"
echo "$pj PENDING Dependency" >"$state/queued"
: >"$state/scancel.log"
drive round7.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R"
c7=$(id_of "$sub" sima-critic.sbatch)
check '[ $rc -eq 0 ] && [ "$(cat "$state/scancel.log")" = "$pj" ] && [ "$(wc -l <<<"$sub")" = 3 ] && [ -n "$c7" ] && [ -z "$(deps_of "$sub" sima-critic.sbatch)" ] && [ "$(deps_of "$sub" sima-pairs.sbatch)" = "$c7" ]' \
  "the old pairs job ($pj) should be cancelled and pairs resubmitted after the new critic: $sub $(cat "$tmp/round7.out")"
check '[ -f "$R/verdicts.h5" ] && [ -f "$R/pairs.h5" ]' "critic and pairs did not finish"
: >"$state/queued"

# --- a round that keeps no pairs (the tiny model's own verdicts): no DPO,
#     no bench of a next model, the summary says why; run again, the driver
#     submits nothing and says the round ended. (The shim's sbatch runs each
#     job at once, so the pairs are known before the dpo stage is planned;
#     under Slurm the dpo job fails instead: test_slurm_cluster.)
N=$tmp/nopairs
nopts=(--gen-args "--max-new-tokens 12 --chunk 3 --quiet" --critic-args "--max-new-tokens 8 --quiet"
       --bench-args "--questions $tmp/q/questions.jsonl --max-new-tokens 4 --quiet" "${dpo2[@]}")
SHIM_HAND=0 drive nopairs.out "${nopts[@]}" "$model" "$tmp/prompts.h5" "$N"
check '[ $rc -eq 0 ] && [ "$(attr "$N/pairs.h5" n_pairs)" = 0 ] && [ "$(wc -l <<<"$sub")" = 4 ] && [ -z "$(id_of "$sub" sima-dpo.sbatch)" ] && grep -q "^dpo  *skipped: $N/pairs.h5 kept no pairs" "$tmp/nopairs.out"' \
  "round without pairs: no dpo job expected: $sub $(cat "$tmp/nopairs.out")"
check 'grep -q "^0 pairs kept of [0-9]* judged" "$N/summary.md" && grep -q "No pairs kept: DPO has nothing to train on" "$N/summary.md"' \
  "the summary should say that no pairs were kept: $(cat "$N/summary.md")"
SHIM_HAND=0 drive nopairs2.out "${nopts[@]}" "$model" "$tmp/prompts.h5" "$N"
check '[ $rc -eq 0 ] && [ "$(calls)" = "$n" ] && grep -q "^dpo  *skipped: $N/pairs.h5 kept no pairs" "$tmp/nopairs2.out" && grep -q "^bench  *skipped: " "$tmp/nopairs2.out" && grep -q "^round 1 kept no pairs: no next model" "$tmp/nopairs2.out" && grep -qx "STATUS_dpo=skipped" "$N/round.env"' \
  "run again after a round without pairs: nothing should be submitted: $(since "$n") $(cat "$tmp/nopairs2.out")"
bash "$round" --rounds 2 "${nopts[@]}" "$model" "$tmp/prompts.h5" "$tmp/nopairs-2" --dry-run >/dev/null 2>&1
check '[ $? -eq 0 ]' "dry run of two rounds failed"

# --- two rounds: round 2 starts from round 1's merged model; the summary of
#     each round, and of both
T=$tmp/two
drive two.out --rounds 2 "${nopts[@]}" --pairs-args "--quiet" "$model" "$tmp/prompts.h5" "$T"
check '[ $rc -eq 0 ] && [ "$(wc -l <<<"$sub")" = 12 ] && [ -f "$T/round-2/dpo/merged/config.json" ] && [ -f "$T/round-2/bench/results.json" ]' \
  "two rounds: 12 jobs and round 2's model and results expected: $sub $(cat "$tmp/two.out")"
g2=$(grep "|sima-gen.sbatch $T/round-1/dpo/merged $tmp/prompts.h5 $T/round-2/responses.h5 " <<<"$sub" | cut -d'|' -f2)
d1=$(grep "|sima-dpo.sbatch $model " <<<"$sub" | cut -d'|' -f1)
check '[ -n "$d1" ] && [ "$g2" = "$d1" ]' "round 2's sima-gen should wait for round 1's sima-dpo ($d1) and read its model: $sub"
check 'grep -q "^Before (A): $T/round-1/bench; after (B): $T/round-2/bench.$" "$T/round-2/summary.md" && grep -q "^## Round 1 of 2: $T/round-1$" "$T/summary.md" && grep -q "^## Round 2 of 2: $T/round-2$" "$T/summary.md" && grep -qx "ROUND_DIR_2=$T/round-2" "$T/rounds.env"' \
  "two rounds: summaries wrong: $(cat "$T/summary.md")"

# --- a failed submission: exit 1, nothing after it submitted, round.env says what was
R2=$tmp/round2
mkdir -p "$R2"
cp "$R/responses.h5" "$R/verdicts.h5" "$R2/"
SHIM_SBATCH_FAIL=sima-pairs.sbatch drive fail.out "${ropts[@]}" "${dpo2[@]}" "$model" "$tmp/prompts.h5" "$R2"
check '[ $rc -eq 1 ] && grep -q "sbatch of the pairs stage failed" "$tmp/fail.out" && [ "$(wc -l <<<"$sub")" = 1 ]' \
  "a failed sbatch should stop the driver with exit 1: $rc $sub $(cat "$tmp/fail.out")"
check 'grep -qx "STATUS_critic=done" "$R2/round.env" && ! grep -q "_pairs=" "$R2/round.env" && grep -q "^COMMAND=.*sima-round.sh" "$R2/round.env"' \
  "round.env after a failed submission wrong: $(cat "$R2/round.env")"

finish
