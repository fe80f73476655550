#!/bin/bash
# Submit SIMA self-improvement rounds to Slurm, the stages chained with job
# dependencies:
#
#   sima-gen → sima-critic → sima-pairs → sima-dpo --merge → sima-bench (merged model)
#   sima-bench (base model, with --bench-base: runs in parallel from the start)
#   summary (ROUND_DIR/summary.md, after all of the round's jobs, however they end)
#
#   slurm/sima-round.sh [options] MODEL_DIR prompts.h5 ROUND_DIR
#
# Every output goes to ROUND_DIR (responses.h5, verdicts.h5, pairs.h5, dpo/,
# bench/, bench-base/, logs/, summary.md); ROUND_DIR/round.env records what
# was submitted. ROUND_DIR/dpo/merged is the next round's MODEL_DIR. With
# --rounds K, round k goes to ROUND_DIR/round-k and starts from round k-1's
# merged model. Running the same command again submits only the stages whose
# output is missing or incomplete, and does not resubmit a stage whose job is
# still in the queue.
set -u

usage() {
  cat <<'USAGE'
usage: slurm/sima-round.sh [options] MODEL_DIR prompts.h5 ROUND_DIR

Submits sima-gen -> sima-critic -> sima-pairs -> sima-dpo --merge -> sima-bench
(of ROUND_DIR/dpo/merged) as Slurm jobs chained with --dependency=afterok, and
a job writing ROUND_DIR/summary.md after them. Rerunning the same command
submits only the stages whose output is missing or incomplete (and not still
queued).

options (each also read from the environment variable named after it):
  --rounds K               K rounds, round k in ROUND_DIR/round-k starting from
                           round k-1's merged model; ROUND_DIR/summary.md
                           gathers their summaries (default 1: the round is
                           ROUND_DIR itself)                 (SIMA_ROUNDS)
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
  --gpus-per-node G        G GPUs per node and one rank per GPU for every tool
                           job (--gres=gpu:G --ntasks-per-node=G)
                                                             (SIMA_GPUS_PER_NODE)
  --sbatch "OPTS"          sbatch options for every job, e.g.
                           "--account=proj --partition=cpu"  (SIMA_SBATCH)
  --gen-sbatch "OPTS", --critic-sbatch, --pairs-sbatch, --dpo-sbatch, --bench-sbatch
                           sbatch options for one stage, after --sbatch's
                           (SIMA_GEN_SBATCH, ..., SIMA_BENCH_SBATCH)
  -h, --help               this text

OPTS are split at spaces (no quoting inside). A round that keeps no pairs
ends there: sima-dpo has nothing to train on, so there is no next model and
no later round (summary.md says so). Exit status: 0 submitted (or nothing
left to do), 1 a submission failed, 2 bad usage.
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
rounds=${SIMA_ROUNDS:-1} gpus=${SIMA_GPUS_PER_NODE:-}
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
    --rounds) need_value "$1" "$#"; rounds=$2; shift ;;
    --gpus-per-node) need_value "$1" "$#"; gpus=$2; shift ;;
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
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die_usage "--rounds: expected a positive integer, got '$rounds'"
[ -z "$gpus" ] || [[ $gpus =~ ^[1-9][0-9]*$ ]] || die_usage "--gpus-per-node: expected a positive integer, got '$gpus'"
if [ "$bench_base" = 1 ] && [ -z "$bench_args" ]; then
  die_usage "--bench-base needs --bench-args naming the questions"
fi
[ -d "${positional[0]}" ] || die_usage "${positional[0]}: no such model folder"
[ -f "${positional[1]}" ] || die_usage "${positional[1]}: no such prompts file"
if [ -e "${positional[2]}" ] && [ ! -d "${positional[2]}" ]; then
  die_usage "${positional[2]}: exists and is not a folder"
fi

base_model=$(readlink -f -- "${positional[0]}")
prompts=$(readlink -f -- "${positional[1]}")
top=$(readlink -m -- "${positional[2]}")
slurm_dir=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
# shellcheck source=slurm/lib.sh
. "$slurm_dir/lib.sh"   # SIMA_HOME (exported: the jobs find lib.sh and the tools through it), SIMA_BIN
if [ "$dry_run" = 0 ] && [ ! -x "$SIMA_BIN/sima-gen" ]; then
  echo "sima-round.sh: $SIMA_BIN/sima-gen: no such program; build the tree" \
    "first (scripts/build.sh) or set SIMA_BIN" >&2
  exit 1
fi

# sima-dpo --merge writes the next model to OUT/merged; when it trains every
# weight (--train all, which takes no --merge), to OUT/model
next_name=merged merge=(--merge)
if [[ " $dpo_args " =~ [[:space:]]--train([[:space:]]+|=)all[[:space:]] ]]; then
  next_name=model
  merge=()
fi

# round_dir K: round K's folder.
round_dir() {
  if [ "$rounds" = 1 ]; then echo "$top"; else echo "$top/round-$1"; fi
}

# set_round K: the current round (round, model, next_model, tag) is round K.
set_round() {
  k=$1
  round=$(round_dir "$k")
  if [ "$k" = 1 ]; then model=$base_model; else model=$(round_dir $((k - 1)))/dpo/$next_name; fi
  next_model=$round/dpo/$next_name
  if [ "$rounds" = 1 ]; then tag=$(basename "$top"); else tag=$(basename "$top")-$k; fi
}

# ---------------------------------------------------------- the stages --

# The stages of round K, in submission order.
round_stages() {
  local s=(gen critic pairs dpo)
  [ -n "$bench_args" ] && s+=(bench)
  [ "$bench_base" = 1 ] && [ "$1" = 1 ] && s+=(bench_base)
  echo "${s[@]}"
}

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
    summary) false ;;   # written again after every run's jobs
  esac
}

# Did the round's finished pairs file keep no pair? Then sima-dpo has
# nothing to train on and the round ends without a next model.
no_pairs() {
  stage_complete pairs && [ "$(sima_attr "$round/pairs.h5" n_pairs)" = 0 ]
}

stage_output() {
  case $1 in
    gen) echo "$round/responses.h5" ;;
    critic) echo "$round/verdicts.h5" ;;
    pairs) echo "$round/pairs.h5" ;;
    dpo) echo "$round/dpo" ;;
    bench) echo "$round/bench/results.json" ;;
    bench_base) echo "$round/bench-base/results.json" ;;
    summary) echo "$round/summary.md" ;;
  esac
}

# The stages whose outputs a stage of the current round reads (the jobs it
# waits for), as ROUND:STAGE. The summary waits for the whole round and the
# results it compares with.
stage_inputs() {
  case $1 in
    gen) [ "$k" -gt 1 ] && echo "$((k - 1)):dpo" ;;
    critic) echo "$k:gen" ;;
    pairs) echo "$k:gen $k:critic" ;;
    dpo) echo "$k:pairs" ;;
    bench) echo "$k:dpo" ;;
    summary)
      local s
      for s in $(round_stages "$k"); do echo "$k:$s"; done
      [ "$k" -gt 1 ] && [ -n "$bench_args" ] && echo "$((k - 1)):bench" ;;
  esac
}

# The bench results the summary compares the round's with.
bench_before() {
  if [ "$k" = 1 ]; then echo "$round/bench-base"; else echo "$(round_dir $((k - 1)))/bench"; fi
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
    summary)
      local title="Round: $round"
      [ "$rounds" -gt 1 ] && title="Round $k of $rounds: $round"
      cmd=("$slurm_dir/sima-summary.sbatch" "$round" --title "$title" --model "$model"
           --next "$next_model" --before "$(bench_before)")
      [ "$rounds" -gt 1 ] && cmd+=(--collect "$top") ;;
  esac
}

# stage_sbatch STAGE: fills opts (sbatch options: every job's, the GPUs',
# then the stage's). The summary is one small task.
stage_sbatch() {
  local name=$1 own='' gpu=()
  case $1 in
    gen) own=$gen_sbatch ;;
    critic) own=$critic_sbatch ;;
    pairs) own=$pairs_sbatch ;;
    dpo) own=$dpo_sbatch ;;
    bench | bench_base) own=$bench_sbatch; name=bench ;;
    summary) own="--nodes=1 --ntasks=1 --cpus-per-task=1" ;;
  esac
  [ -n "$gpus" ] && [ "$1" != summary ] && gpu=("--gres=gpu:$gpus" "--ntasks-per-node=$gpus")
  local all=() mine=()
  read -r -a all <<<"$all_sbatch"
  read -r -a mine <<<"$own"
  opts=("--job-name=sima-${1/_/-}-$tag" "--output=$round/logs/sima-$name-%j.log" "${all[@]}"
        "${gpu[@]}" "${mine[@]}")
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

declare -A job=()   # ROUND:STAGE -> job id (this run's, or a queued one), "done" or "skipped"
declare -A fresh=() # ROUND:STAGE -> 1 when this run submitted it
env_lines=()
status='' status_job=''

# placeholder STAGE: what stands for the stage's job id in a dry run.
placeholder() {
  if [ "$rounds" = 1 ]; then echo "<$1>"; else echo "<$1@$k>"; fi
}

# submit STAGE: submit the stage's job, waiting for its inputs' jobs.
submit() {
  local s=$1 deps=() d id out dep=afterok
  for d in $(stage_inputs "$s"); do
    case ${job[$d]:-done} in done | skipped) ;; *) deps+=("${job[$d]}") ;; esac
  done
  stage_command "$s"
  stage_sbatch "$s"
  if [ "${#deps[@]}" -gt 0 ]; then
    # the summary reports the round however its jobs end
    [ "$s" = summary ] && dep=afterany
    opts+=("--dependency=$dep:$(IFS=:; echo "${deps[*]}")" "--kill-on-invalid-dep=yes")
  fi
  if [ "$dry_run" = 1 ]; then
    # the jobs of this dry run have no ids: <stage> stands for them
    printf '%q ' sbatch --parsable "${opts[@]}" "${cmd[@]}" | sed 's/ $//; s/\\<\([a-z_]*\(@[0-9]*\)\{0,1\}\)\\>/<\1>/g'
    echo
    job[$k:$s]=$(placeholder "$s")
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
  job[$k:$s]=$id
  printf '%-10s job %-10s -> %s   (log %s)\n' "$s" "$id" "$(stage_output "$s")" \
    "$round/logs/sima-${s%_base}-$id.log"
}

# keep_or_cancel STAGE OLD: is the stage's queued job OLD still good? It is
# not when it waits for a job that failed, or when its input is being made
# again by a new job it does not wait for; then it is cancelled (return 1).
keep_or_cancel() {
  local s=$1 old=$2 state=$3 d why=
  [[ $state == *DependencyNeverSatisfied* ]] && why="can never start ($state)"
  for d in $(stage_inputs "$s"); do
    [ -n "${fresh[$d]:-}" ] && why="does not wait for the new ${d#*:} job"
  done
  [ -z "$why" ] && return 0
  if [ "$dry_run" = 1 ]; then
    echo "$s: job $old $why; it would be cancelled"
  else
    echo "$s: job $old $why; cancelling it"
    scancel "$old" || echo "sima-round.sh: scancel $old failed" >&2
  fi
  return 1
}

# plan STAGE: leave a finished stage, keep a queued job, or submit. Sets
# status (done, queued or submitted) and status_job (the stage's job id, as
# far as known) for round.env.
plan() {
  local s=$1 old state
  old=$(old_job "$s")
  status_job=${old:--}
  if stage_complete "$s"; then
    job[$k:$s]="done"
    status="done"
    printf '%-10s done: %s\n' "$s" "$(stage_output "$s")"
    return 0
  fi
  state=
  [ -n "$old" ] && state=$(job_state "$old")
  if [ -n "$state" ] && keep_or_cancel "$s" "$old" "$state"; then
    job[$k:$s]=$old
    status="queued"
    printf '%-10s job %-10s still queued (%s) -> %s\n' "$s" "$old" "$state" "$(stage_output "$s")"
    return 0
  fi
  submit "$s" || return 1
  fresh[$k:$s]=1
  status="submitted"
  status_job=${job[$k:$s]}
}

# plan_summary: ROUND_DIR/summary.md after the round's jobs. With jobs left
# in the round a summary job waits for them all (afterany: it also reports a
# round that stopped); with none, the summary is written now.
plan_summary() {
  local d pending=0
  for d in $(stage_inputs summary); do
    case ${job[$d]:-done} in done | skipped) ;; *) pending=1 ;; esac
  done
  if [ "$pending" = 1 ]; then
    plan summary
    return
  fi
  status_job=- status=written
  if [ "$dry_run" = 1 ]; then
    printf '%-10s nothing left to wait for: %s would be written now\n' summary "$(stage_output summary)"
    return 0
  fi
  stage_command summary
  local out
  if out=$(bash "${cmd[@]}" 2>&1); then
    sed "s/^sima-summary: /summary    /" <<<"$out"
  else
    status=failed
    echo "sima-round.sh: the summary could not be written: $out" >&2
  fi
}

# plan_round K: plan every stage of round K, then its summary. Sets
# round_ended when the round kept no pairs (no later round can start).
plan_round() {
  local s
  set_round "$1"
  env_lines=()
  [ "$rounds" -gt 1 ] && echo "== round $k of $rounds: $round (model $model)"
  [ "$dry_run" = 1 ] || mkdir -p "$round/logs" || return 1
  for s in $(round_stages "$k"); do
    if { [ "$s" = dpo ] || [ "$s" = bench ]; } && no_pairs; then
      job[$k:$s]=skipped
      status=skipped status_job=-
      printf '%-10s skipped: %s kept no pairs; nothing to train on\n' "$s" "$round/pairs.h5"
      round_ended=1
    else
      plan "$s" || return 1
    fi
    env_lines+=("JOB_$s=$status_job" "STATUS_$s=$status" "OUT_$s=$(printf '%q' "$(stage_output "$s")")")
  done
  plan_summary || return 1
  env_lines+=("JOB_summary=$status_job" "STATUS_summary=$status" "OUT_summary=$(printf '%q' "$(stage_output summary)")")
}

# write_env FILE LINES...: a header and LINES, written whole and then renamed.
write_env() {
  local f=$1
  shift
  if ! {
    echo "# slurm/sima-round.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'COMMAND=%q\n' "${command_line# }"
    printf '%s\n' "$@"
  } >"$f.tmp" || ! mv -f "$f.tmp" "$f"; then
    echo "sima-round.sh: cannot write $f" >&2
    return 1
  fi
}

# round.env: per stage, its job (the last one known to make its output, "-"
# if none), STATUS (submitted by this run, still queued from an earlier run,
# done: the output was already complete; skipped: no pairs to train on;
# written or failed: the summary, made at once) and output.
write_round_env() {
  write_env "$round/round.env" \
    "$(printf 'MODEL_DIR=%q\nPROMPTS=%q\nROUND_DIR=%q\nNEXT_MODEL_DIR=%q' "$model" "$prompts" "$round" "$next_model")" \
    "${env_lines[@]}"
}

if [ "$dry_run" = 1 ]; then
  echo "# dry run: nothing is submitted; <stage> stands for that stage's job id"
fi
failed=0 round_ended=0 last=0
for ((r = 1; r <= rounds; r++)); do
  if [ "$round_ended" = 1 ]; then
    echo "round $r and later: not submitted: round $((r - 1)) kept no pairs, so there is no model to start from"
    break
  fi
  plan_round "$r" || failed=1
  last=$r
  [ "$dry_run" = 1 ] || write_round_env || failed=1
  [ "$failed" = 1 ] && break
done

[ "$dry_run" = 1 ] && exit 0
if [ "$rounds" -gt 1 ]; then
  lines=("ROUNDS=$rounds" "MODEL_DIR=$(printf '%q' "$base_model")")
  for ((r = 1; r <= last; r++)); do lines+=("ROUND_DIR_$r=$(printf '%q' "$(round_dir "$r")")"); done
  write_env "$top/rounds.env" "${lines[@]}" || failed=1
fi
if [ "$round_ended" = 1 ]; then
  echo "round $k kept no pairs: no next model (see $round/summary.md once its jobs end)"
else
  echo "next round's model: $next_model (when the dpo stage is done); recorded in $round/round.env"
fi
exit "$failed"
