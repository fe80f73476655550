# lib.sh — shared by the benchmark scripts (sourced, not run).
# Expects $root and $build; gives $bin, $model (the golden tiny model), $tmp
# (removed at exit), mpi ARGS... (mpirun as root, oversubscribed), and
# demo_prompts N OUT.h5: the bundled demo prompts repeated to N, imported.
bin=$build/bin
model=$root/tests/golden/tiny-llava
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi() { mpirun --oversubscribe --allow-run-as-root "$@"; }

demo_prompts() {
  local n=$1 out=$2
  python3 - "$root/data/demo/prompts.jsonl" "$tmp/demo-$n.jsonl" "$n" <<'PY'
import json, sys
src = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[3])):
        r = dict(src[i % len(src)]); r["id"] = "p%d" % i; f.write(json.dumps(r) + "\n")
PY
  "$bin/sima-prep" import --format sima "$tmp/demo-$n.jsonl" --image-root "$root/data/demo/images" \
    --out "$out" --quiet
}
