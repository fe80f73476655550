#!/usr/bin/env bash
# sima-bench --suite/--data-root on the hand-written official release trees
# of tests/data/bench-official (golden tiny model: the answers are noise;
# this checks the plumbing):
#  - every question the readers give is answered and scored once, in each
#    benchmark's results entry; -np 2 equals -np 1;
#  - POPE questions whose image is absent are left out and counted (the
#    count worked out here from the release files and the image folder);
#  - the CHAIR synonym table defaults to DATA_ROOT/chair/synonyms.txt;
#  - --limit applies per suite; bad --suite use is refused.
set -u
bin=${SIMA_BIN:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
root=${SIMA_SOURCE_DIR:?}/tests/data/bench-official
. "$(dirname "$0")/lib.sh"
[ -d "$root/pope" ] || { echo "no official-file fixtures at $root"; exit 77; }

suites=pope,mme,textvqa,mmbench,chair,mmvet
opts=(--model "$model" --suite "$suites" --data-root "$root" --max-new-tokens 4 --batch 4
      --chunk 4 --template llava_hf)
mpi 1 "$bin/sima-bench" "${opts[@]}" --out "$tmp/s1" >"$tmp/s1.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--suite -np 1 failed: $(cat "$tmp/s1.log")"
mpi 2 "$bin/sima-bench" "${opts[@]}" --quiet --out "$tmp/s2" >"$tmp/s2.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--suite -np 2 failed: $(cat "$tmp/s2.log")"
check 'cmp -s "$tmp/s1/samples.jsonl" "$tmp/s2/samples.jsonl"' "-np 2 answers differ from -np 1"
check 'cmp -s "$tmp/s1/results.json" "$tmp/s2/results.json"' "-np 2 results differ from -np 1"
# rank 0 reads the release files, the others its copy: one run key whatever -np
key() { h5dump -a /run_key "$1" | grep -o '"[0-9a-f]\{16\}"'; }
check '[ -n "$(key "$tmp/s1/answers.h5")" ] && [ "$(key "$tmp/s1/answers.h5")" = "$(key "$tmp/s2/answers.h5")" ]' \
  "-np 2 run key differs from -np 1: $(key "$tmp/s1/answers.h5") $(key "$tmp/s2/answers.h5")"

python3 - "$tmp/s1" "$root" "$suites" <<'PY' >"$tmp/check.log" 2>&1
import collections, json, os, sys
d, root, suites = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
res = json.load(open(d + "/results.json"))
b = res["benchmarks"]
samples = [json.loads(l) for l in open(d + "/samples.jsonl")]
per = collections.Counter(s["benchmark"] for s in samples)
assert set(per) == set(suites), per
keys = [(s["benchmark"], s["question_id"]) for s in samples]
assert len(keys) == len(set(keys)), keys
for s in samples:
    assert isinstance(s["answer"], str) and s["prompt"], s
# POPE: lines of the three split files whose image is not in pope/val2014
pope_lines, pope_missing = 0, 0
for split in ("random", "popular", "adversarial"):
    for line in open("%s/pope/coco/coco_pope_%s.json" % (root, split)):
        if line.strip():
            q = json.loads(line)
            pope_lines += 1
            pope_missing += not os.path.exists("%s/pope/val2014/%s" % (root, q["image"]))
assert b["pope"]["missing_images"] == pope_missing > 0, (b["pope"], pope_missing)
assert per["pope"] == b["pope"]["all"]["samples"] == pope_lines - pope_missing, (per, b["pope"])
assert b["mme"]["samples"] == per["mme"] and b["textvqa"]["samples"] == per["textvqa"]
assert b["mmbench"]["samples"] == per["mmbench"], b["mmbench"]
assert b["chair"]["samples"] == per["chair"], b["chair"]
assert b["chair"]["synonyms"].endswith("chair/synonyms.txt"), b["chair"]
assert b["mmvet"]["status"] == "not scored" and b["mmvet"]["answered"] == per["mmvet"]
for name in suites:
    assert isinstance(b[name]["missing_images"], int), b[name]
assert res["suites"] == {"list": ",".join(suites), "data_root": root}, res["suites"]
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "--suite results: $(cat "$tmp/check.log")"
check 'grep -q "pope: [0-9]* questions\? left out: image missing" "$tmp/s1.log"' \
  "missing POPE images not in the log: $(cat "$tmp/s1.log")"

# --limit applies to each suite
mpi 1 "$bin/sima-bench" "${opts[@]}" --quiet --limit 1 --out "$tmp/l1" >"$tmp/l1.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--limit 1: $(cat "$tmp/l1.log")"
check '[ "$(cut -d, -f2 "$tmp/l1/samples.jsonl" | sort | uniq -c | awk "{print \$1}" | sort -u)" = 1 ] &&
       [ "$(wc -l <"$tmp/l1/samples.jsonl")" -eq 6 ]' "--limit 1 is not one question per suite"

# bad use
mpi 1 "$bin/sima-bench" --model "$model" --suite pope,nope --data-root "$root" --out "$tmp/b" \
  >"$tmp/b1.log" 2>&1
rc=$?
check '[ $rc -eq 2 ] && grep -q "unknown benchmark .nope." "$tmp/b1.log"' "unknown suite: $(cat "$tmp/b1.log")"
mpi 1 "$bin/sima-bench" --model "$model" --suite pope --out "$tmp/b" >"$tmp/b2.log" 2>&1
rc=$?
check '[ $rc -eq 2 ]' "--suite without --data-root should be a usage error"
mpi 1 "$bin/sima-bench" --model "$model" --suite pope --data-root "$root" \
  --questions "$tmp/q.jsonl" --out "$tmp/b" >"$tmp/b3.log" 2>&1
rc=$?
check '[ $rc -eq 2 ]' "--suite with --questions should be a usage error"
mkdir -p "$tmp/empty"
mpi 1 "$bin/sima-bench" --model "$model" --suite pope --data-root "$tmp/empty" --out "$tmp/b" \
  >"$tmp/b4.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "$tmp/empty" "$tmp/b4.log"' "empty data root: $(cat "$tmp/b4.log")"
# an error reading the files (rank 0 alone) ends every rank
mpi 2 "$bin/sima-bench" --model "$model" --suite pope --data-root "$tmp/empty" --out "$tmp/b" \
  >"$tmp/b5.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "$tmp/empty" "$tmp/b5.log" && [ ! -e "$tmp/b/answers.h5" ]' \
  "empty data root, -np 2: $(cat "$tmp/b5.log")"
finish
