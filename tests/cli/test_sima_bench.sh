#!/usr/bin/env bash
# sima-bench end to end on the golden tiny model (random weights: its answers
# are noise; this checks the plumbing, not accuracy), on a fixture made here
# in the JSONL format of data/benchmarks/README.md:
#  - every question is answered, extracted, scored and aggregated; the
#    aggregates agree with the per-sample records; mmvet is "not scored";
#  - -np 2 gives the same answers and results as -np 1;
#  - a rerun finds the answers complete and scores them again, identically;
#  - a job killed (SIGKILL) or stopped (SIGTERM, exit 3) and rerun gives the
#    answers of a clean run;
#  - bad fixtures are refused with a message.
set -u
bin=${SIMA_BIN:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/fx/images"
cp "$golden"/images/*.jpg "$tmp/fx/images/"
python3 - "$tmp/fx" <<'PY'
import json, os, sys
d = sys.argv[1]
imgs = sorted(os.listdir(d + "/images"))
rows = []
for i in range(6):
    rows.append({"question_id": "pope-%d" % i, "benchmark": "pope",
                 "split": "random" if i < 3 else "popular", "image": "images/" + imgs[i % len(imgs)],
                 "question": "Is there a circle in the image?" +
                             ("\nAnswer the question using a single word or phrase." if i == 0 else ""),
                 "label": "yes" if i % 2 else "no"})
for i in range(3):
    rows.append({"question_id": "vqa-%d" % i, "benchmark": "vqa", "image": "images/" + imgs[i % len(imgs)],
                 "question": "How many shapes are there?",
                 "answers": ["2", "two", "2", "3", "2", "2", "two", "2", "2", "2"]})
for i in range(4):
    rows.append({"question_id": "mme-%d" % i, "benchmark": "mme",
                 "subtask": "existence" if i < 2 else "code_reasoning",
                 "image": "images/" + imgs[i // 2], "question": "Is there a square?",
                 "label": "yes" if i % 2 == 0 else "no"})
for i in range(2):
    rows.append({"question_id": "gqa-%d" % i, "benchmark": "gqa", "image": "images/" + imgs[i],
                 "question": "Which side is the circle on?", "answer": "left"})
opts = ["circle", "square", "triangle"]
for i in range(2):
    rows.append({"question_id": "sqa-%d" % i, "benchmark": "scienceqa", "image": "images/" + imgs[i],
                 "question": "Which shape is shown?", "options": opts, "answer": "B"})
    rows.append({"question_id": "seed-%d" % i, "benchmark": "seed", "image": "images/" + imgs[i],
                 "question": "Which shape is shown?", "options": opts, "answer": "A"})
for q in range(2):          # two questions, two rotations each (index + k * 10^6)
    for k in range(2):
        rot = opts[k:] + opts[:k]
        rows.append({"question_id": "mmb-%d-%d" % (q, k), "benchmark": "mmbench",
                     "index": q + k * 1000000, "image": "images/" + imgs[q],
                     "question": "Which shape is shown?", "options": rot,
                     "answer": "ABC"[rot.index("square")]})
rows.append({"question_id": "mmvet-0", "benchmark": "mmvet", "image": "images/" + imgs[0],
             "question": "Describe the image."})
with open(d + "/questions.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
PY

opts=(--model "$model" --questions "$tmp/fx/questions.jsonl" --max-new-tokens 6 --batch 3
      --chunk 3 --template llava_hf)
mpi 1 "$bin/sima-bench" "${opts[@]}" --quiet --out "$tmp/r1" >"$tmp/r1.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-bench -np 1 failed: $(cat "$tmp/r1.log")"
check '[ -f "$tmp/r1/answers.h5" ] && [ ! -d "$tmp/r1/answers.h5.parts" ]' "answers.h5 not assembled"

python3 - "$tmp/r1" <<'PY' >"$tmp/check.log" 2>&1
import json, sys
d = sys.argv[1]
res = json.load(open(d + "/results.json"))
samples = [json.loads(l) for l in open(d + "/samples.jsonl")]
ids = [s["question_id"] for s in samples]
assert len(ids) == 24 and len(set(ids)) == 24, ids
for s in samples:
    assert isinstance(s["answer"], str) and s["prompt"], s
    if s["benchmark"] == "pope":
        assert s["extracted"] in ("yes", "no") and isinstance(s["correct"], bool), s
        assert s["prompt"].endswith("Answer the question using a single word or phrase."), s
        assert s["prompt"].count("Answer the question") == 1, s  # never twice
    elif s["benchmark"] == "vqa":
        assert 0.0 <= s["score"] <= 1.0 and isinstance(s["extracted"], str), s
    elif s["benchmark"] == "mmvet":
        assert s["score"] is None, s
    else:
        assert isinstance(s["correct"], bool) and "extracted" in s, s
    if s["benchmark"] in ("scienceqa", "mmbench", "seed"):
        assert "\nA. " in s["prompt"] and s["prompt"].endswith("directly."), s
b = res["benchmarks"]
pope = [s for s in samples if s["benchmark"] == "pope"]
assert b["pope"]["all"]["samples"] == 6
assert abs(b["pope"]["all"]["accuracy"] - sum(s["correct"] for s in pope) / 6) < 1e-9
yes = sum(s["extracted"] == "yes" for s in pope)
assert abs(b["pope"]["all"]["yes_ratio"] - yes / 6) < 1e-9
assert b["pope"]["splits"]["random"]["samples"] == 3 and b["pope"]["splits"]["popular"]["samples"] == 3
vqa = [s for s in samples if s["benchmark"] == "vqa"]
assert b["vqa"]["samples"] == 3
assert abs(b["vqa"]["accuracy"] - 100 * sum(s["score"] for s in vqa) / 3) < 1e-6
def acc(name):
    xs = [s for s in samples if s["benchmark"] == name]
    return len(xs), 100 * sum(s["correct"] for s in xs) / len(xs)
for name in ("gqa", "scienceqa", "seed"):
    n, a = acc(name)
    assert b[name]["samples"] == n == 2 and abs(b[name]["accuracy"] - a) < 1e-6, (name, b[name])
mme = [s for s in samples if s["benchmark"] == "mme"]
e = [s["correct"] for s in mme[:2]]; c = [s["correct"] for s in mme[2:]]
want_e = 100 * sum(e) / 2 + 100 * all(e)
want_c = 100 * sum(c) / 2 + 100 * all(c)
assert abs(b["mme"]["perception"] - want_e) < 1e-6 and abs(b["mme"]["cognition"] - want_c) < 1e-6, b["mme"]
mmb = [s for s in samples if s["benchmark"] == "mmbench"]
circ = sum(all(s["correct"] for s in mmb if s["question_id"].startswith("mmb-%d-" % q)) for q in range(2))
assert b["mmbench"]["questions"] == 2 and abs(b["mmbench"]["circular_accuracy"] - 50 * circ) < 1e-6, b["mmbench"]
m = b["mmvet"]
assert m["status"] == "not scored" and m["scored"] is False and m["answered"] == 1
assert not any(k in m for k in ("score", "accuracy")), m
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "results do not agree with the samples: $(cat "$tmp/check.log")"

mpi 2 "$bin/sima-bench" "${opts[@]}" --quiet --out "$tmp/r2" >"$tmp/r2.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-bench -np 2 failed: $(cat "$tmp/r2.log")"
check 'cmp -s "$tmp/r1/samples.jsonl" "$tmp/r2/samples.jsonl"' "-np 2 answers differ from -np 1"
check 'cmp -s "$tmp/r1/results.json" "$tmp/r2/results.json"' "-np 2 results differ from -np 1"

cp "$tmp/r1/results.json" "$tmp/results.first"
mpi 1 "$bin/sima-bench" "${opts[@]}" --out "$tmp/r1" >"$tmp/r3.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "already complete" "$tmp/r3.log"' \
  "rerun did not reuse the answers: $(cat "$tmp/r3.log")"
check 'cmp -s "$tmp/r1/results.json" "$tmp/results.first"' "rescoring changed results.json"

# killed (SIGKILL) at a random point, then rerun: the answers of a clean run
slow=("${opts[@]}" --quiet --max-new-tokens 200 --chunk 1)
mpi 2 "$bin/sima-bench" "${slow[@]}" --out "$tmp/full" >"$tmp/full.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "uninterrupted reference run failed: $(cat "$tmp/full.log")"
setsid mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-bench" "${slow[@]}" \
  --out "$tmp/killed" >/dev/null 2>&1 &
pid=$!
sleep "0.$((RANDOM % 9 + 1))"
kill -9 -- -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
# processes of the killed job may outlive mpirun for a moment: let them go
while pgrep -f "^$bin/sima-bench .*$tmp/killed" >/dev/null; do sleep 0.1; done
mpi 2 "$bin/sima-bench" "${slow[@]}" --out "$tmp/killed" >"$tmp/k2.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "rerun after a kill failed: $(cat "$tmp/k2.log")"
check 'cmp -s "$tmp/full/samples.jsonl" "$tmp/killed/samples.jsonl"' "killed + rerun differs from a clean run"

# SIGTERM to the tasks (as Slurm sends it): commit, exit 3, rerun finishes
mpirun --oversubscribe --allow-run-as-root -np 2 "$bin/sima-bench" "${slow[@]}" \
  --out "$tmp/term" >"$tmp/term.log" 2>&1 &
pid=$!
while [ ! -e "$tmp/term/answers.h5.parts/run_key" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
tasks=$(pgrep -f "^$bin/sima-bench .*$tmp/term")
[ -n "$tasks" ] && kill -TERM $tasks 2>/dev/null
wait "$pid"
rc=$?
check '[ $rc -eq 3 ] || [ $rc -eq 0 ]' "SIGTERM exit code $rc (expected 3, or 0 if it had finished): $(cat "$tmp/term.log")"
mpi 2 "$bin/sima-bench" "${slow[@]}" --out "$tmp/term" >"$tmp/term2.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "rerun after SIGTERM failed: $(cat "$tmp/term2.log")"
check 'cmp -s "$tmp/full/samples.jsonl" "$tmp/term/samples.jsonl"' "SIGTERM + rerun differs from a clean run"

# --limit: only the first N questions
mpi 1 "$bin/sima-bench" "${opts[@]}" --quiet --limit 4 --out "$tmp/l" >"$tmp/l.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/l/samples.jsonl")" -eq 4 ]' "--limit 4: $(cat "$tmp/l.log")"

# bad fixtures
printf '%s\n' '{"question_id": "x", "benchmark": "pope", "image": "a.jpg", "question": "q"}' \
  >"$tmp/bad1.jsonl"
mpi 1 "$bin/sima-bench" --model "$model" --questions "$tmp/bad1.jsonl" --out "$tmp/b1" \
  >"$tmp/b1.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "line 1: pope needs" "$tmp/b1.log"' "missing label: $(cat "$tmp/b1.log")"
printf '%s\n' '{"question_id": "x", "benchmark": "nope", "image": "a.jpg", "question": "q"}' \
  >"$tmp/bad2.jsonl"
mpi 1 "$bin/sima-bench" --model "$model" --questions "$tmp/bad2.jsonl" --out "$tmp/b2" \
  >"$tmp/b2.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "unknown benchmark \"nope\"" "$tmp/b2.log"' \
  "unknown benchmark: $(cat "$tmp/b2.log")"
mpi 1 "$bin/sima-bench" --model "$model" --out "$tmp/b3" >"$tmp/b3.log" 2>&1
rc=$?
check '[ $rc -eq 2 ]' "missing --questions should be a usage error"
finish
