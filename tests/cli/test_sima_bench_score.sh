#!/usr/bin/env bash
# sima-bench score: an answers file scored without a model or images. Hand
# worked: POPE 3 answers (yes, no, "No, not." -> no) against yes/no/yes:
# accuracy 2/3, precision 1, recall 1/2, yes-ratio 1/3; GQA "Dog." -> dog
# (right), " cat" -> cat (wrong: gold "dog"): 50%; ScienceQA "The answer is
# B." -> B (right). Integer ids and a missing "benchmark" join to the one
# question of that id; unknown, doubled and missing answers are errors
# naming the file and line or the question.
set -u
bin=${SIMA_BIN:?}
. "$(dirname "$0")/lib.sh"

cat >"$tmp/q.jsonl" <<'EOF2'
{"question_id": "1", "benchmark": "pope", "split": "random", "image": "none.jpg", "question": "Is there a dog?", "label": "yes"}
{"question_id": "2", "benchmark": "pope", "split": "random", "image": "none.jpg", "question": "Is there a cat?", "label": "no"}
{"question_id": "3", "benchmark": "pope", "split": "random", "image": "none.jpg", "question": "Is there a cow?", "label": "yes"}
{"question_id": "g1", "benchmark": "gqa", "image": "none.jpg", "question": "What animal?", "answer": "dog"}
{"question_id": "g2", "benchmark": "gqa", "image": "none.jpg", "question": "What animal?", "answer": "dog"}
{"question_id": "1", "benchmark": "scienceqa", "image": "none.jpg", "question": "Which?", "options": ["a", "b"], "answer": "B"}
EOF2
cat >"$tmp/a.jsonl" <<'EOF2'
{"question_id": 1, "benchmark": "pope", "text": "Yes"}
{"question_id": "2", "benchmark": "pope", "text": "no"}
{"question_id": 3, "benchmark": "pope", "text": "No, not."}
{"question_id": "g1", "text": "Dog."}
{"question_id": "g2", "answer": " cat"}
{"question_id": 1, "benchmark": "scienceqa", "text": "The answer is B."}
EOF2
"$bin/sima-bench" score --questions "$tmp/q.jsonl" --answers "$tmp/a.jsonl" --out "$tmp/out" \
  >"$tmp/log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "score failed: $(cat "$tmp/log")"
python3 - "$tmp/out" >"$tmp/py.log" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1] + "/results.json"))
b = r["benchmarks"]
p = b["pope"]["splits"]["random"]
assert abs(p["accuracy"] - 2 / 3) < 1e-12 and p["precision"] == 1.0, p
assert p["recall"] == 0.5 and abs(p["yes_ratio"] - 1 / 3) < 1e-12, p
assert b["gqa"]["accuracy"] == 50.0 and b["scienceqa"]["accuracy"] == 100.0, b
assert r["model"] is None and r["answers"].endswith("a.jsonl"), r
s = [json.loads(l) for l in open(sys.argv[1] + "/samples.jsonl")]
assert [x["extracted"] for x in s] == ["yes", "no", "no", "dog", "cat", "B"], s
PY
rc=$?
check '[ $rc -eq 0 ]' "results: $(cat "$tmp/py.log")"
check '[ -s "$tmp/out/samples.h5" ]' "no samples.h5"

# errors: an answer to no question, an answer given twice, a question unanswered
printf '{"question_id": "zz", "benchmark": "gqa", "text": "x"}\n' >"$tmp/bad1.jsonl"
head -5 "$tmp/a.jsonl" >"$tmp/bad2.jsonl"
printf '{"question_id": "g1", "benchmark": "gqa", "text": "x"}\n' >>"$tmp/bad2.jsonl"
head -5 "$tmp/a.jsonl" >"$tmp/bad3.jsonl"
printf '{"question_id": "g9", "text": "x"}\n' >"$tmp/bad4.jsonl"
for k in 1 2 3 4; do
  "$bin/sima-bench" score --questions "$tmp/q.jsonl" --answers "$tmp/bad$k.jsonl" \
    --out "$tmp/o$k" >"$tmp/e$k.log" 2>&1
  eval "rc$k=\$?"
done
check '[ $rc1 -eq 1 ] && grep -q "unknown question \"zz\"" "$tmp/e1.log"' "unknown: $(cat "$tmp/e1.log")"
check '[ $rc2 -eq 1 ] && grep -q "\"g1\" answered twice" "$tmp/e2.log"' "twice: $(cat "$tmp/e2.log")"
check '[ $rc3 -eq 1 ] && grep -q "question \"1\" has no answer" "$tmp/e3.log"' "missing: $(cat "$tmp/e3.log")"
check '[ $rc4 -eq 1 ] && grep -q "bad4.jsonl: line 1" "$tmp/e4.log" && grep -q "no such question" "$tmp/e4.log"' \
  "no benchmark, unknown id: $(cat "$tmp/e4.log")"
"$bin/sima-bench" score --answers "$tmp/a.jsonl" --out "$tmp/o5" >"$tmp/e5.log" 2>&1
rc=$?
check '[ $rc -eq 2 ]' "usage error expected: $(cat "$tmp/e5.log")"
finish
