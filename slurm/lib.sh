# shellcheck shell=bash
# lib.sh — the part every sima batch script shares (sourced, not run).
#
#   sima_args N USAGE "$@"   exit 2 with USAGE unless N positional arguments
#                            are there (and none is -h/--help)
#   sima_run [--expect PATH]... TOOL ARGS...
#                            run $SIMA_BIN/TOOL on every task of the job
#                            (srun or mpirun: SIMA_LAUNCHER, see
#                            sima_launcher), forward Slurm's warning signal,
#                            requeue the job on exit 3, and exit with the
#                            tool's status (1 if it says 0 but none of the
#                            PATHs exists)
#
# The tools are found in $SIMA_BIN, default $SIMA_HOME/build/bin; SIMA_HOME
# is the source tree this file is in (the batch scripts locate it, see
# sima-gen.sbatch). Under Slurm a batch script runs from a copy in the
# spool folder, so the scripts cannot always find the tree from their own
# path: export SIMA_HOME, or submit from the tree's root.

# This file's folder's parent is the tree.
SIMA_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SIMA_HOME
SIMA_BIN=${SIMA_BIN:-$SIMA_HOME/build/bin}

# sima_args N USAGE "$@": check the count of positional (required) arguments.
sima_args() {
  local need=$1 usage=$2 a
  shift 2
  if [ "$#" -lt "$need" ]; then
    echo "usage: $usage" >&2
    exit 2
  fi
  # the required arguments are files and folders, never options
  for a in "${@:1:$need}"; do
    case $a in
      -h | --help) echo "usage: $usage" >&2; exit 2 ;;
      -*) echo "usage: $usage" >&2; echo "(option '$a' where a path belongs)" >&2; exit 2 ;;
    esac
  done
}

# sima_launcher TOOL EXE: set `launch` to the command that starts one MPI
# rank per task of the job, and `launch_why` to how it was chosen.
#   SIMA_LAUNCHER=srun    srun --kill-on-bad-exit=1 $SIMA_SRUN_OPTS
#   SIMA_LAUNCHER=mpirun  $SIMA_MPIRUN (default mpirun) -np $SLURM_NTASKS
#                         --bind-to none $SIMA_MPIRUN_OPTS: the MPI library's
#                         own launcher, which reads the allocation from
#                         Slurm's variables (and uses srun itself to start
#                         its daemons on the other nodes)
#   SIMA_LAUNCHER=auto    (default) srun where it can start an MPI rank of the
#                         tool, else mpirun
# srun starts MPI ranks only through a PMI plugin the MPI library speaks
# (srun --mpi=list shows Slurm's; Debian's Open MPI needs pmix): auto tries
# the --mpi of $SIMA_SRUN_OPTS if it names one, else pmix and then pmi2
# where srun lists them, each with a one-task `EXE --version` step.
sima_launcher() {
  local tool=$1 exe=$2 opts=() mpi=() m probe tried=()
  read -r -a opts <<<"${SIMA_SRUN_OPTS:-}"
  case ${SIMA_LAUNCHER:-auto} in
    srun) launch=(srun --kill-on-bad-exit=1 "${opts[@]}"); launch_why="SIMA_LAUNCHER=srun"; return ;;
    mpirun) sima_mpirun; launch_why="SIMA_LAUNCHER=mpirun"; return ;;
    auto) ;;
    *) echo "$tool: SIMA_LAUNCHER must be srun, mpirun or auto, not '$SIMA_LAUNCHER'" >&2; exit 2 ;;
  esac
  if [[ " ${opts[*]} " =~ [[:space:]]--mpi[=[:space:]] ]]; then
    mpi=("")   # SIMA_SRUN_OPTS chose the plugin
  else
    for m in pmix pmi2; do
      srun --mpi=list 2>&1 | grep -qw "$m" && mpi+=("--mpi=$m")
    done
  fi
  probe=$(mktemp "${TMPDIR:-/tmp}/sima-probe.XXXXXX") || exit 1
  for m in "${mpi[@]}"; do
    local flag=()
    [ -n "$m" ] && flag=("$m")
    # it must print the version: srun can end with 0 when its step never ran
    if timeout 120 srun --nodes=1 --ntasks=1 --kill-on-bad-exit=1 "${opts[@]}" "${flag[@]}" "$exe" --version \
      >"$probe" 2>&1 && grep -q "^$tool " "$probe"; then
      rm -f "$probe"
      launch=(srun --kill-on-bad-exit=1 "${opts[@]}" "${flag[@]}")
      launch_why="auto: an MPI rank starts under srun ${m:-${SIMA_SRUN_OPTS:-}}"
      return
    fi
    tried+=("${m:-${SIMA_SRUN_OPTS:-}}")
    echo "$tool: srun ${tried[-1]} cannot start an MPI rank here:" >&2
    head -n 5 "$probe" >&2
  done
  rm -f "$probe"
  sima_mpirun
  launch_why="auto: srun cannot start the ranks (tried: ${tried[*]:-no pmix or pmi2 in srun --mpi=list})"
}

# sima_mpirun: `launch` for the MPI library's launcher inside the allocation.
sima_mpirun() {
  local opts=()
  read -r -a opts <<<"${SIMA_MPIRUN_OPTS:-}"
  launch=("${SIMA_MPIRUN:-mpirun}")
  [ -n "${SLURM_NTASKS:-}" ] && launch+=(-np "$SLURM_NTASKS")
  # each rank runs OMP_NUM_THREADS threads: no binding of a rank to one core
  launch+=(--bind-to none "${opts[@]}")
}

# sima_run [--expect PATH]... TOOL ARGS...: run the tool on every task of
# the job and exit with its status. Slurm sends the warning signal
# (--signal=B:USR1@...) to this shell only; it is passed on to the launcher
# (srun or mpirun), which delivers it to the ranks. On exit status 3 the
# tool has committed its work and stopped early: the job is requeued, and
# the requeued job continues where it stopped. SIGTERM (scancel, the time
# limit, preemption) goes to every process of the job: the shell waits for
# the launcher, which waits for the ranks to commit and end, so that the job
# ends with them (with proctrack/linuxproc, ranks that mpirun started would
# otherwise outlive it and hold the output's lock), and does not requeue.
# --expect PATH: what the tool leaves when it ends with 0. A launcher's 0 is
# no proof that the ranks ran: srun of Slurm 22.05 ends with 0 when its step
# is aborted before launch, and the jobs waiting on this one (afterok) would
# start without their input. GPUs: the ranks see the GPUs that Slurm gives
# them (CUDA_VISIBLE_DEVICES, left as Slurm set it; see README.md).
sima_run() {
  local expect=() pid rc launch=() launch_why terminated=0 p
  while [ "$1" = --expect ]; do
    expect+=("$2")
    shift 2
  done
  local tool=$1 exe=$SIMA_BIN/$1
  shift
  if [ ! -x "$exe" ]; then
    echo "$tool: $exe: no such program (build the tree, or set SIMA_HOME or SIMA_BIN)" >&2
    exit 1
  fi
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
  # srun of Slurm 22.05 and later no longer takes --cpus-per-task from the
  # job: without this each task would get one core
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK
  echo "$tool: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}: $exe $*"
  sima_launcher "$tool" "$exe"
  echo "$tool: launcher: ${launch[*]} ($launch_why)${CUDA_VISIBLE_DEVICES+; CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES}"
  trap 'kill -USR1 "$pid" 2>/dev/null' USR1
  # not passed on: Slurm sends SIGTERM to every process of the job, and a
  # second one makes mpirun (and srun) give up the ranks at once
  trap 'terminated=1' TERM
  "${launch[@]}" "$exe" "$@" &
  pid=$!
  wait "$pid"
  rc=$?
  # wait returns early when a trap fires: wait again for the real exit code
  while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"
    rc=$?
  done
  trap - USR1 TERM
  echo "$tool: ${launch[0]} ended with status $rc"
  if [ "$rc" -eq 0 ] && [ "${#expect[@]}" -gt 0 ]; then
    rc=1
    for p in "${expect[@]}"; do [ -e "$p" ] && rc=0; done
    [ "$rc" = 1 ] && echo "$tool: error: ${launch[0]} ended with 0 but there is no ${expect[*]}: the ranks did not run (see the messages above); resubmit" >&2
  fi
  if [ "$terminated" = 1 ] && [ "$rc" -ne 0 ]; then
    echo "$tool: stopped by SIGTERM (scancel, time limit or preemption) with status $rc; not requeued: resubmit to continue"
  elif [ "$rc" -eq 3 ]; then
    sima_requeue "$tool"
  fi
  exit "$rc"
}

# sima_attr FILE NAME: a root attribute of a sima HDF5 file, as sima-prep
# info prints it (empty when the file or the attribute is missing).
sima_attr() {
  "$SIMA_BIN/sima-prep" info "$1" 2>/dev/null | sed -n "s/^  $2  *//p; s/^  $2\([^ _a-z]\)/\1/p" | head -n 1
}

# sima_requeue TOOL: put this job back in the queue after an interruption.
sima_requeue() {
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "$1 was interrupted after committing its work; not a Slurm job: rerun the same command" >&2
    return
  fi
  echo "$1 was interrupted after committing its work; requeueing job $SLURM_JOB_ID"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    echo "$1: scontrol requeue $SLURM_JOB_ID failed: resubmit the same command to finish" >&2
  fi
}
