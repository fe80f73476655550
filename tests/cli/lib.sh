# lib.sh — shared by the command-line tests (sourced, not run).
# Gives: $tmp (a fresh folder, removed at exit), check CONDITION MESSAGE
# (CONDITION is eval'ed; capture `rc=$?` right after a command, before a
# message with $(...) is built, since that resets $?), mpi NP CMD...,
# and finish (prints "N passed, N failed" and sets the exit status).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }
mpi() { local np=$1; shift; mpirun --oversubscribe --allow-run-as-root -np "$np" "$@"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; }
# openblas_coretype: Debian's OpenBLAS takes recent Xeons for old CPUs (slow
# kernels); name SkylakeX unless the caller named a type, but only where the
# CPU has AVX-512 (elsewhere those kernels die of an illegal instruction,
# and OpenBLAS's own choice is right)
openblas_coretype() {
  [ -z "${OPENBLAS_CORETYPE:-}" ] || return 0
  if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SkylakeX; fi
}

# make_test_prompts N [QUESTION...]: $tmp/prompts.h5 with N prompts about the
# golden images (row 5 text-only, images shared between rows), through
# sima-prep; the questions cycle through five, and the QUESTIONs after them.
# Needs $bin and $golden.
make_test_prompts() {
  mkdir -p "$tmp/images"
  cp "$golden"/images/*.jpg "$tmp/images/"
  python3 - "$tmp" "$@" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
imgs = sorted(os.listdir(d + "/images"))
qs = ["What is in the image?", "Describe the scene.", "How many shapes are there?",
      "What colour is the largest shape?", "Is there a circle?"] + sys.argv[3:]
with open(d + "/prompts.jsonl", "w") as f:
    for i in range(n):
        rec = {"id": "p%d" % i, "text": qs[i % len(qs)], "ground_truth": "Shapes."}
        if i != 5:
            rec["image"] = imgs[i % len(imgs)]
        f.write(json.dumps(rec) + "\n")
PY
  "$bin/sima-prep" import --format sima "$tmp/prompts.jsonl" --image-root "$tmp/images" \
    --out "$tmp/prompts.h5" >"$tmp/prep.log" 2>&1
  local rc=$?
  check '[ $rc -eq 0 ]' "sima-prep import failed: $(cat "$tmp/prep.log")"
}

# make_pope_questions DIR N: DIR/questions.jsonl, N POPE questions ("Is there
# a circle in the image?", labels no/yes alternating) about the golden
# images, copied to DIR/images. Needs $golden.
make_pope_questions() {
  mkdir -p "$1/images"
  cp "$golden"/images/*.jpg "$1/images/"
  python3 - "$1" "$2" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
imgs = sorted(os.listdir(d + "/images"))
with open(d + "/questions.jsonl", "w") as f:
    for i in range(n):
        f.write(json.dumps({"question_id": "pope-%d" % i, "benchmark": "pope", "split": "random",
                            "image": "images/" + imgs[i % len(imgs)],
                            "question": "Is there a circle in the image?",
                            "label": "yes" if i % 2 else "no"}) + "\n")
PY
}

# make_test_verdicts NP MAX_NEW_TOKENS: sima-gen on NP ranks turns
# $tmp/prompts.h5 into $tmp/responses.h5, and the helper mode of
# test_pairs_logic writes $tmp/verdicts.h5 for them. Needs $bin, $model, $helper.
make_test_verdicts() {
  mpi "$1" "$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" --out "$tmp/responses.h5" \
    --max-new-tokens "$2" --template llava_hf --chunk 4 --quiet 2>"$tmp/gen.log"
  local rc=$?
  check '[ $rc -eq 0 ]' "sima-gen failed: $(cat "$tmp/gen.log")"
  "$helper" --make-verdicts "$tmp/responses.h5" "$tmp/verdicts.h5" 2>"$tmp/helper.log"
  rc=$?
  check '[ $rc -eq 0 ]' "verdicts helper failed: $(cat "$tmp/helper.log")"
}

# make_test_pairs: 12 prompts -> 8 pairs (verdict patterns 0,1,3,5 kept) in
# $tmp/pairs.h5, and the same with reference log-probs in $tmp/pairs_ref.h5.
make_test_pairs() {
  make_test_prompts 12
  make_test_verdicts 1 16
  local popts=(--model "$model" --prompts "$tmp/prompts.h5" --responses "$tmp/responses.h5"
               --verdicts "$tmp/verdicts.h5" --template llava_hf --quiet)
  mpi 1 "$bin/sima-pairs" "${popts[@]}" --out "$tmp/pairs.h5" 2>"$tmp/pairs.log"
  local rc=$?
  check '[ $rc -eq 0 ]' "sima-pairs failed: $(cat "$tmp/pairs.log")"
  mpi 1 "$bin/sima-pairs" "${popts[@]}" --ref-logps --out "$tmp/pairs_ref.h5" 2>"$tmp/pairs_ref.log"
  rc=$?
  check '[ $rc -eq 0 ]' "sima-pairs --ref-logps failed: $(cat "$tmp/pairs_ref.log")"
}

# dpo_np2_np1 OUT2 OUT1 WHAT OPTS...: sima-dpo OPTS on 2 ranks into $tmp/OUT2
# and on 1 rank with --grad-accum 2 (the same global batch) into $tmp/OUT1;
# both must succeed. WHAT starts the failure messages.
dpo_np2_np1() {
  local out2=$1 out1=$2 what=$3
  shift 3
  mpi 2 "$bin/sima-dpo" "$@" --out "$tmp/$out2" --quiet 2>"$tmp/$out2.log"
  local rc=$?
  check '[ $rc -eq 0 ]' "$what-np 2 failed: $(cat "$tmp/$out2.log")"
  mpi 1 "$bin/sima-dpo" "$@" --grad-accum 2 --out "$tmp/$out1" --quiet 2>"$tmp/$out1.log"
  rc=$?
  check '[ $rc -eq 0 ]' "$what-np 1 --grad-accum 2 failed: $(cat "$tmp/$out1.log")"
}

# dpo_stop OUT OPTS...: sima-dpo OPTS into $tmp/OUT stopped after step 5:
# exit 3, a checkpoint, no final adapter yet (log $tmp/OUT1.log).
# dpo_resume OUT REF OPTS...: the same command again: it must resume at step
# 5, finish, and give the adapter of the uninterrupted run $tmp/REF within
# 1e-6 (log $tmp/OUT2.log).
dpo_stop() {
  local out=$1
  shift
  mpi 1 "$bin/sima-dpo" "$@" --out "$tmp/$out" --stop-after 5 >"$tmp/${out}1.log" 2>&1
  local rc=$?
  check '[ $rc -eq 3 ]' "--stop-after should exit 3, got $rc: $(cat "$tmp/${out}1.log")"
  check '[ ! -e "$tmp/$out/adapter" ] && [ -f "$tmp/$out/checkpoint/state.bin" ]' "stopped run: checkpoint expected, no final adapter"
}
dpo_resume() {
  local out=$1 ref=$2
  shift 2
  mpi 1 "$bin/sima-dpo" "$@" --out "$tmp/$out" >"$tmp/${out}2.log" 2>&1
  local rc=$?
  check '[ $rc -eq 0 ] && grep -q "resuming at step 5" "$tmp/${out}2.log"' "resume failed or not at step 5 (rc $rc): $(cat "$tmp/${out}2.log")"
  local d
  d=$(st_diff "$tmp/$out/adapter/adapter_model.safetensors" "$tmp/$ref/adapter/adapter_model.safetensors")
  check 'le "$d" 1e-6' "resumed adapter differs from the uninterrupted one by $d"
}

# Numbers from training logs: le A B (A <= B), col CSV N (column N without
# the header), close A B TOL (|A - B| <= TOL * max(1e-3, |B|)).
le() { python3 -c "import sys; sys.exit(0 if float('$1') <= float('$2') else 1)"; }
col() { cut -d, -f"$2" "$1" | sed 1d; }
close() { python3 -c "import sys; sys.exit(0 if abs($1 - $2) <= $3 * max(1e-3, abs($2)) else 1)"; }

# st_diff A B [REGEX]: max |a - b| / max |b| over the tensors named alike (and
# matching REGEX) in two safetensors files of F32 tensors.
st_diff() {
  python3 - "$1" "$2" "${3:-.}" <<'PY'
import json, re, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); base = 8 + n; out = {}
    for k, v in h.items():
        if k == "__metadata__" or not re.search(sys.argv[3], k): continue
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - s) // 4), b[base + s:base + e])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys() and a, "different tensor names"
d = max(abs(x - y) for k in a for x, y in zip(a[k], b[k]))
m = max(abs(y) for k in b for y in b[k])
print("%.3g" % (d / m if m else d))
PY
}

# check_kill_resume TOOL SAME MIN MAX OPTS...: a job of sima-TOOL on 2 ranks
# (OPTS, output $tmp/killed.h5) killed with SIGKILL after 0.MIN to 0.MAX
# seconds, then rerun, equals $tmp/full.h5 by SAME A B.
check_kill_resume() {
  local tool=$1 same=$2 lo=$3 hi=$4
  shift 4
  setsid mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-$tool" "$@" \
    --out "$tmp/killed.h5" 2>/dev/null &
  local pid=$!
  sleep "0.$((RANDOM % (hi - lo + 1) + lo))"
  kill -9 -- -"$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  # processes of the killed job may outlive mpirun for a moment: let them go
  while pgrep -f "^$bin/sima-[a-z]* .*$tmp/" >/dev/null; do sleep 0.1; done
  check '[ ! -e "$tmp/killed.h5" ] || $same "$tmp/full.h5" "$tmp/killed.h5"' "a killed run left a wrong output"
  mpi 2 "$bin/sima-$tool" "$@" --out "$tmp/killed.h5" 2>"$tmp/resume.log"
  local rc=$?
  check '[ $rc -eq 0 ]' "resume after kill failed: $(cat "$tmp/resume.log")"
  check '$same "$tmp/full.h5" "$tmp/killed.h5"' "resumed output differs from the uninterrupted run"
}

# check_term_resume TOOL SAME OPTS...: SIGTERM to the tasks of a 2-rank job
# (as Slurm sends it) commits and exits 3; a rerun finishes ($tmp/term.h5)
# and equals $tmp/full.h5 by SAME A B.
check_term_resume() {
  local tool=$1 same=$2
  shift 2
  mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-$tool" "$@" \
    --out "$tmp/term.h5" 2>"$tmp/term.log" &
  local pid=$!
  # signal once the job runs (a signal during MPI start-up just kills it)
  while [ ! -e "$tmp/term.h5.parts/run_key" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  pkill -TERM -f "^$bin/sima-$tool .*$tmp/term.h5"
  wait "$pid"
  local rc=$?
  check '[ $rc -eq 3 ] || [ $rc -eq 0 ]' "SIGTERM exit code $rc (expected 3, or 0 if it had finished): $(cat "$tmp/term.log")"
  mpi 2 "$bin/sima-$tool" "$@" --out "$tmp/term.h5" 2>"$tmp/term2.log"
  rc=$?
  check '[ $rc -eq 0 ]' "rerun after SIGTERM failed: $(cat "$tmp/term2.log")"
  check '$same "$tmp/full.h5" "$tmp/term.h5"' "output after SIGTERM + rerun differs"
}
