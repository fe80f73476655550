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

# make_test_prompts N: $tmp/prompts.h5 with N prompts about the golden
# images (row 5 text-only, images shared between rows), through sima-prep.
# Needs $bin and $golden.
make_test_prompts() {
  mkdir -p "$tmp/images"
  cp "$golden"/images/*.jpg "$tmp/images/"
  python3 - "$tmp" "$1" <<'PY'
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
imgs = sorted(os.listdir(d + "/images"))
qs = ["What is in the image?", "Describe the scene.", "How many shapes are there?",
      "What colour is the largest shape?", "Is there a circle?"]
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
