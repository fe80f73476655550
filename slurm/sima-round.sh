#!/bin/bash
# Submit one SIMA self-improvement round to Slurm, the stages chained with
# job dependencies:
#
#   sima-gen → sima-critic → sima-pairs → sima-dpo --merge → sima-bench (merged model)
#   sima-bench (base model, with --bench-base: runs in parallel from the start)
#
#   slurm/sima-round.sh [options] MODEL_DIR prompts.h5 ROUND_DIR
#
# Every output goes to ROUND_DIR (responses.h5, verdicts.h5, pairs.h5, dpo/,
# bench/, bench-base/, logs/); ROUND_DIR/round.env records what was
# submitted. ROUND_DIR/dpo/merged is the next round's MODEL_DIR. Running the
# same command again submits only the stages whose output is missing or
# incomplete, and does not resubmit a stage whose job is still in the queue.
set -u

usage() {
  cat <<'USAGE'
usage: slurm/sima-round.sh [options] MODEL_DIR prompts.h5 ROUND_DIR

Submits sima-gen -> sima-critic -> sima-pairs -> sima-dpo --merge -> sima-bench
(of ROUND_DIR/dpo/merged) as Slurm jobs chained with --dependency=afterok.
Rerunning the same command submits only the stages whose output is missing
or incomplete (and not still queued).

options (each also read from the environment variable named after it):
  --dry-run                print the sbatch commands; submit and write nothing
  --gen-args "OPTS"        extra sima-gen options            (SIMA_GEN_ARGS)
  --critic-args "OPTS"     extra sima-critic options         (SIMA_CRITIC_ARGS)
  --pairs-args "OPTS"      extra sima-pairs options          (SIMA_PAIRS_ARGS)
  --dpo-args "OPTS"        extra sima-dpo options            (SIMA_DPO_ARGS)
  --bench-args "OPTS"      the sima-bench questions and options, e.g.
                           "--suite pope,mme --data-root /data/bench" or
                           "--questions q.jsonl"; no bench stage without them
                                                             (SIMA_BENCH_ARGS)
  --bench-base             also benchmark MODEL_DIR, in parallel (SIMA_BENCH_BASE=1)
  --sbatch "OPTS"          sbatch options for every job, e.g.
                           "--account=proj --partition=cpu"  (SIMA_SBATCH)
  --gen-sbatch "OPTS", --critic-sbatch, --pairs-sbatch, --dpo-sbatch, --bench-sbatch
                           sbatch options for one stage, after --sbatch's
                           (SIMA_GEN_SBATCH, ..., SIMA_BENCH_SBATCH)
  -h, --help               this text

OPTS are split at spaces (no quoting inside). Exit status: 0 submitted (or
nothing left to do), 1 a submission failed, 2 bad usage.
USAGE
}

die_usage() {
  echo "sima-round.sh: $*" >&2
  echo "usage: slurm/sima-round.sh [options] MODEL_DIR prompts.h5 ROUND_DIR (--help for more)" >&2
  exit 2
}

# ------------------------------------------------------------- options --

command_line=$(printf ' %q' "$0" "$@")
dry_run=0
gen_args=${SIMA_GEN_ARGS:-} critic_args=${SIMA_CRITIC_ARGS:-} pairs_args=${SIMA_PAIRS_ARGS:-}
dpo_args=${SIMA_DPO_ARGS:-} bench_args=${SIMA_BENCH_ARGS:-} bench_base=${SIMA_BENCH_BASE:-0}
all_sbatch=${SIMA_SBATCH:-}
gen_sbatch=${SIMA_GEN_SBATCH:-} critic_sbatch=${SIMA_CRITIC_SBATCH:-}
pairs_sbatch=${SIMA_PAIRS_SBATCH:-} dpo_sbatch=${SIMA_DPO_SBATCH:-}
bench_sbatch=${SIMA_BENCH_SBATCH:-}
positional=()

# need_value OPTION COUNT: an option that takes a value must have one
need_value() { [ "$2" -ge 2 ] || die_usage "$1 needs a value"; }

while [ "$#" -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --dry-run) dry_run=1 ;;
    --bench-base) bench_base=1 ;;
    --gen-args) need_value "$1" "$#"; gen_args=$2; shift ;;
    --critic-args) need_value "$1" "$#"; critic_args=$2; shift ;;
    --pairs-args) need_value "$1" "$#"; pairs_args=$2; shift ;;
    --dpo-args) need_value "$1" "$#"; dpo_args=$2; shift ;;
    --bench-args) need_value "$1" "$#"; bench_args=$2; shift ;;
    --sbatch) need_value "$1" "$#"; all_sbatch=$2; shift ;;
    --gen-sbatch) need_value "$1" "$#"; gen_sbatch=$2; shift ;;
    --critic-sbatch) need_value "$1" "$#"; critic_sbatch=$2; shift ;;
    --pairs-sbatch) need_value "$1" "$#"; pairs_sbatch=$2; shift ;;
    --dpo-sbatch) need_value "$1" "$#"; dpo_sbatch=$2; shift ;;
    --bench-sbatch) need_value "$1" "$#"; bench_sbatch=$2; shift ;;
    --) shift; positional+=("$@"); break ;;
    -*) die_usage "unknown option '$1'" ;;
    *) positional+=("$1") ;;
  esac
  shift
done

[ "${#positional[@]}" -eq 3 ] || die_usage "expected MODEL_DIR prompts.h5 ROUND_DIR, got ${#positional[@]} arguments"
case $bench_base in 0 | 1) ;; *) die_usage "SIMA_BENCH_BASE must be 0 or 1, got '$bench_base'" ;; esac
if [ "$bench_base" = 1 ] && [ -z "$bench_args" ]; then
  die_usage "--bench-base needs --bench-args naming the questions"
fi
[ -d "${positional[0]}" ] || die_usage "${positional[0]}: no such model folder"
[ -f "${positional[1]}" ] || die_usage "${positional[1]}: no such prompts file"
if [ -e "${positional[2]}" ] && [ ! -d "${positional[2]}" ]; then
  die_usage "${positional[2]}: exists and is not a folder"
fi

model=$(readlink -f -- "${positional[0]}")
prompts=$(readlink -f -- "${positional[1]}")
round=$(readlink -m -- "${positional[2]}")
tag=$(basename "$round")
SIMA_HOME=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
export SIMA_HOME   # the jobs find slurm/lib.sh and build/bin through it
slurm_dir=$SIMA_HOME/slurm
if [ "$dry_run" = 0 ] && [ ! -x "${SIMA_BIN:-$SIMA_HOME/build/bin}/sima-gen" ]; then
  echo "sima-round.sh: ${SIMA_BIN:-$SIMA_HOME/build/bin}/sima-gen: no such program; build the tree" \
    "first (scripts/build.sh) or set SIMA_BIN" >&2
  exit 1
fi

# sima-dpo --merge writes the next model to OUT/merged; when it trains every
# weight (--train all, which takes no --merge), to OUT/model
next_model=$round/dpo/merged merge=(--merge)
if [[ " $dpo_args " =~ [[:space:]]--train([[:space:]]+|=)all[[:space:]] ]]; then
  next_model=$round/dpo/model
  merge=()
fi

# ---------------------------------------------------------- the stages --

# Is a stage's output complete? The chunked tools (sima-gen, -critic,
# -pairs, -bench) keep an unfinished run's chunks in FILE.parts/ and write
# FILE as FILE.tmp renamed into place once every chunk is there: FILE exists
# only when complete. sima-dpo renames OUT/merged (OUT/model) into place
# after training; sima-bench writes results.json (atomically) last.
h5_complete() { [ -f "$1" ]; }
stage_complete() {
  case $1 in
    gen) h5_complete "$round/responses.h5" ;;
    critic) h5_complete "$round/verdicts.h5" ;;
    pairs) h5_complete "$round/pairs.h5" ;;
    dpo) [ -f "$next_model/config.json" ] ;;
    bench) [ -f "$round/bench/results.json" ] ;;
    bench_base) [ -f "$round/bench-base/results.json" ] ;;
  esac
}

stage_output() {
  case $1 in
    gen) echo "$round/responses.h5" ;;
    critic) echo "$round/verdicts.h5" ;;
    pairs) echo "$round/pairs.h5" ;;
    dpo) echo "$round/dpo" ;;
    bench) echo "$round/bench/results.json" ;;
    bench_base) echo "$round/bench-base/results.json" ;;
  esac
}

# The stages whose outputs a stage reads (the jobs it waits for).
stage_inputs() {
  case $1 in
    critic) echo gen ;;
    pairs) echo gen critic ;;
    dpo) echo pairs ;;
    bench) echo dpo ;;
  esac
}

# stage_command STAGE: fills cmd (the batch script and its arguments).
stage_command() {
  local extra=()
  case $1 in
    gen)
      read -r -a extra <<<"$gen_args"
      cmd=("$slurm_dir/sima-gen.sbatch" "$model" "$prompts" "$round/responses.h5" "${extra[@]}") ;;
    critic)
      read -r -a extra <<<"$critic_args"
      cmd=("$slurm_dir/sima-critic.sbatch" "$model" "$prompts" "$round/responses.h5"
           "$round/verdicts.h5" "${extra[@]}") ;;
    pairs)
      read -r -a extra <<<"$pairs_args"
      cmd=("$slurm_dir/sima-pairs.sbatch" "$model" "$prompts" "$round/responses.h5"
           "$round/verdicts.h5" "$round/pairs.h5" "${extra[@]}") ;;
    dpo)
      read -r -a extra <<<"$dpo_args"
      cmd=("$slurm_dir/sima-dpo.sbatch" "$model" "$prompts" "$round/pairs.h5" "$round/dpo"
           "${merge[@]}" "${extra[@]}") ;;
    bench)
      read -r -a extra <<<"$bench_args"
      cmd=("$slurm_dir/sima-bench.sbatch" "$next_model" "$round/bench" "${extra[@]}") ;;
    bench_base)
      read -r -a extra <<<"$bench_args"
      cmd=("$slurm_dir/sima-bench.sbatch" "$model" "$round/bench-base" "${extra[@]}") ;;
  esac
}

# stage_sbatch STAGE: fills opts (sbatch options: every job's, then the stage's).
stage_sbatch() {
  local name=$1 own=
  case $1 in
    gen) own=$gen_sbatch ;;
    critic) own=$critic_sbatch ;;
    pairs) own=$pairs_sbatch ;;
    dpo) own=$dpo_sbatch ;;
    bench | bench_base) own=$bench_sbatch; name=bench ;;
  esac
  local all=() mine=()
  read -r -a all <<<"$all_sbatch"
  read -r -a mine <<<"$own"
  opts=("--job-name=sima-${1/_/-}-$tag" "--output=$round/logs/sima-$name-%j.log" "${all[@]}" "${mine[@]}")
}

# ------------------------------------------------------- the job queue --

# The job id round.env recorded for a stage by an earlier run, if any.
old_job() {
  [ -f "$round/round.env" ] || return 0
  sed -n "s/^JOB_$1=\([0-9][0-9]*\)$/\1/p" "$round/round.env" | tail -n 1
}

# job_state ID: "STATE REASON" while the job is in the queue, else nothing.
job_state() {
  command -v squeue >/dev/null 2>&1 || return 0
  squeue -h -j "$1" -o "%T %r" 2>/dev/null | head -n 1
}

# ------------------------------------------------------------- submit --

declare -A job=()   # stage -> job id (this run's, or a queued one), or "done"
declare -A fresh=() # stage -> 1 when this run submitted it
env_lines=()
failed=0
status='' status_job=''

# submit STAGE: submit the stage's job, waiting for its inputs' jobs.
submit() {
  local s=$1 deps=() d id out
  for d in $(stage_inputs "$s"); do
    [ "${job[$d]:-done}" != "done" ] && deps+=("${job[$d]}")
  done
  stage_command "$s"
  stage_sbatch "$s"
  if [ "${#deps[@]}" -gt 0 ]; then
    opts+=("--dependency=afterok:$(IFS=:; echo "${deps[*]}")" "--kill-on-invalid-dep=yes")
  fi
  if [ "$dry_run" = 1 ]; then
    # the jobs of this dry run have no ids: <stage> stands for them
    printf '%q ' sbatch --parsable "${opts[@]}" "${cmd[@]}" | sed 's/ $//; s/\\<\([a-z_]*\)\\>/<\1>/g'
    echo
    job[$s]="<$s>"
    return 0
  fi
  if ! out=$(sbatch --parsable "${opts[@]}" "${cmd[@]}"); then
    echo "sima-round.sh: sbatch of the $s stage failed; nothing after it was submitted" >&2
    return 1
  fi
  id=${out%%;*}   # --parsable prints ID or ID;CLUSTER
  if ! [[ $id =~ ^[0-9]+$ ]]; then
    echo "sima-round.sh: sbatch of the $s stage printed '$out', not a job id" >&2
    return 1
  fi
  job[$s]=$id
  printf '%-10s job %-10s -> %s   (log %s)\n' "$s" "$id" "$(stage_output "$s")" \
    "$round/logs/sima-${s%_base}-$id.log"
}

# plan STAGE: leave a finished stage, keep a queued job, or submit. Sets
# status (done, queued or submitted) and status_job (the stage's job id, as
# far as known) for round.env.
plan() {
  local s=$1 old state
  old=$(old_job "$s")
  status_job=${old:--}
  if stage_complete "$s"; then
    job[$s]="done"
    status="done"
    printf '%-10s done: %s\n' "$s" "$(stage_output "$s")"
    return 0
  fi
  state=
  [ -n "$old" ] && state=$(job_state "$old")
  if [ -n "$state" ]; then
    local d why=
    # it waits for a job that failed, or its input is being made again by
    # a new job it does not wait for: it must go
    [[ $state == *DependencyNeverSatisfied* ]] && why="can never start ($state)"
    for d in $(stage_inputs "$s"); do
      [ -n "${fresh[$d]:-}" ] && why="does not wait for the new $d job"
    done
    if [ -n "$why" ]; then
      if [ "$dry_run" = 1 ]; then
        echo "$s: job $old $why; it would be cancelled"
      else
        echo "$s: job $old $why; cancelling it"
        scancel "$old" || echo "sima-round.sh: scancel $old failed" >&2
      fi
    else
      job[$s]=$old
      status="queued"
      printf '%-10s job %-10s still queued (%s) -> %s\n' "$s" "$old" "$state" "$(stage_output "$s")"
      return 0
    fi
  fi
  submit "$s" || return 1
  fresh[$s]=1
  status="submitted"
  status_job=${job[$s]}
}

stages=(gen critic pairs dpo)
[ -n "$bench_args" ] && stages+=(bench)
[ "$bench_base" = 1 ] && stages+=(bench_base)

if [ "$dry_run" = 1 ]; then
  echo "# dry run: nothing is submitted; <stage> stands for that stage's job id"
else
  mkdir -p "$round/logs" || exit 1
fi
for s in "${stages[@]}"; do
  if ! plan "$s"; then
    failed=1
    break
  fi
  env_lines+=("JOB_$s=$status_job" "STATUS_$s=$status" "OUT_$s=$(printf '%q' "$(stage_output "$s")")")
done

[ "$dry_run" = 1 ] && exit 0

# round.env: per stage, its job (the last one known to make its output, "-"
# if none), STATUS (submitted by this run, still queued from an earlier
# run, or done: the output was already complete) and output; written whole
# and then renamed.
if ! {
  echo "# slurm/sima-round.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'COMMAND=%q\n' "${command_line# }"
  printf 'MODEL_DIR=%q\nPROMPTS=%q\nROUND_DIR=%q\nNEXT_MODEL_DIR=%q\n' "$model" "$prompts" "$round" "$next_model"
  printf '%s\n' "${env_lines[@]}"
} >"$round/round.env.tmp" || ! mv -f "$round/round.env.tmp" "$round/round.env"; then
  echo "sima-round.sh: cannot write $round/round.env" >&2
  exit 1
fi
echo "next round's model: $next_model (when the dpo stage is done); recorded in $round/round.env"
exit "$failed"
