#!/usr/bin/env bash
# sima-bench end to end on the golden tiny model (random weights: its answers
# are noise; this checks the plumbing, not accuracy), on a fixture made here
# in the JSONL format of data/benchmarks/README.md:
#  - every question of every benchmark (pope, mme, vqa, textvqa, vizwiz,
#    vqav2, gqa, scienceqa, mmbench with an embedded base64 image, seed,
#    chair, mmvet, llava_bench) is answered, extracted, scored and
#    aggregated; the aggregates agree with the per-sample records; judge
#    benchmarks are "not scored" without a judge; a question whose image is
#    missing is left out and counted;
#  - samples.h5 holds the same samples as samples.jsonl;
#  - CHAIR rescored with a synonym table built from the answers agrees with
#    a word match done here; judge scores from a hand-written replies file;
#    --judge write-requests writes one request per judge sample;
#  - --adapter changes the answers, equals the model with the adapter merged
#    (sima-dpo --merge), and is part of the run key;
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
             "question": "Describe the image.", "answer": "a circle", "capability": ["rec"]})
# the second rotation of MMBench question 1 carries its image inline, as the TSV does
import base64
b64 = base64.b64encode(open(d + "/images/" + imgs[1], "rb").read()).decode()
for r in rows:
    if r["question_id"] == "mmb-1-1":
        del r["image"]
        r["image_base64"] = b64
short = "\nAnswer the question using a single word or phrase."
gts = ["2", "two", "2", "3", "2", "2", "two", "2", "2", "2"]
for i in range(2):
    rows.append({"question_id": "tv-%d" % i, "benchmark": "textvqa", "image": "images/" + imgs[i],
                 "question": "What number is shown?\nReference OCR token: 2" + short, "answers": gts})
rows.append({"question_id": "vw-0", "benchmark": "vizwiz", "image": "images/" + imgs[2],
             "question": "What is this?\nWhen the provided information is insufficient, respond "
                         "with 'Unanswerable'." + short,
             "answers": ["unanswerable"] * 6 + ["circle"] * 4})
rows.append({"question_id": "v2-0", "benchmark": "vqav2", "image": "images/" + imgs[0],
             "question": "What shape is it?"})        # test-dev: no answers, not scored
for i in range(2):
    rows.append({"question_id": "chair-%d" % i, "benchmark": "chair", "image": "images/" + imgs[i],
                 "question": "Please describe this image in detail.", "objects": ["circle"]})
rows.append({"question_id": "llava-0", "benchmark": "llava_bench", "image": "images/" + imgs[1],
             "question": "What is in the picture?", "reference": "Two shapes.",
             "context": "A circle and a square.", "category": "conv"})
rows.append({"question_id": "pope-missing", "benchmark": "pope", "split": "random",
             "image": "images/missing.jpg", "question": "Is there a dog?", "label": "no"})
with open(d + "/questions.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
PY

# a first synonym table; the CHAIR check below rescores with one made from the answers
printf 'circle, circles\nsquare, squares\n' >"$tmp/syn0.txt"
opts=(--model "$model" --questions "$tmp/fx/questions.jsonl" --max-new-tokens 6 --batch 3
      --chunk 3 --template llava_hf --chair-synonyms "$tmp/syn0.txt")
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
assert len(ids) == 31 and len(set(ids)) == 31, ids
assert "pope-missing" not in ids
for s in samples:
    assert isinstance(s["answer"], str) and s["prompt"], s
    if s["benchmark"] == "pope":
        assert s["extracted"] in ("yes", "no") and isinstance(s["correct"], bool), s
        assert s["prompt"].endswith("Answer the question using a single word or phrase."), s
        assert s["prompt"].count("Answer the question") == 1, s  # never twice
    elif s["benchmark"] in ("vqa", "textvqa", "vizwiz"):
        assert 0.0 <= s["score"] <= 1.0 and isinstance(s["extracted"], str), s
        assert s["prompt"].count("Answer the question") == 1, s
    elif s["benchmark"] == "vqav2":
        assert s["score"] is None and isinstance(s["extracted"], str), s
    elif s["benchmark"] in ("mmvet", "llava_bench"):
        assert s["score"] is None and "correct" not in s, s
    elif s["benchmark"] == "chair":
        assert s["prompt"] == "Please describe this image in detail.", s
        assert s["score"] is None and "correct" not in s, s
        assert isinstance(s["mentioned_objects"], list), s
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
assert b["pope"]["missing_images"] == 1, b["pope"]
assert all(e["missing_images"] == 0 for k, e in b.items() if k != "pope"), b
for name, n in (("textvqa", 2), ("vizwiz", 1)):
    xs = [s for s in samples if s["benchmark"] == name]
    assert b[name]["samples"] == n == len(xs), b[name]
    assert abs(b[name]["accuracy"] - 100 * sum(s["score"] for s in xs) / n) < 1e-6, b[name]
assert b["vqav2"]["status"] == "not scored" and b["vqav2"]["answered"] == 1, b["vqav2"]
assert "accuracy" not in b["vqav2"], b["vqav2"]
assert b["chair"]["samples"] == 2 and b["chair"]["status"] == "scored", b["chair"]
st = res["settings"]
assert st["max_new_tokens"] == 6 and st["decoding"] == "greedy", st
assert st["max_new_tokens_per_benchmark"]["chair"] == 6, st
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
for name in ("mmvet", "llava_bench"):
    m = b[name]
    assert m["status"] == "not scored" and m["scored"] is False and m["answered"] == 1, m
    assert not any(k in m for k in ("score", "accuracy", "relative_score")), m
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

check 'grep -q "pope: 1 question left out: image missing" "$tmp/r3.log"' \
  "the missing image is not reported in the log: $(cat "$tmp/r3.log")"

# samples.h5: every column, read back with h5dump, equals samples.jsonl
h5col() { h5dump -d "/samples/$2" -b LE -o "$tmp/h5/${2//\//_}.$3" "$1" >/dev/null 2>&1; }
mkdir -p "$tmp/h5"
for c in question_id benchmark prompt answer extracted; do
  h5col "$tmp/r1/samples.h5" "$c/data" bin
  h5col "$tmp/r1/samples.h5" "$c/offsets" bin
done
h5col "$tmp/r1/samples.h5" correct bin
h5col "$tmp/r1/samples.h5" score bin
python3 - "$tmp/r1" "$tmp/h5" <<'PY' >"$tmp/h5.log" 2>&1
import json, math, os, struct, sys
d, h = sys.argv[1], sys.argv[2]
samples = [json.loads(l) for l in open(d + "/samples.jsonl")]
n = len(samples)
def raw(name):
    return open(os.path.join(h, name + ".bin"), "rb").read()
def text(col):
    off = struct.unpack("<%dq" % (n + 1), raw(col + "_offsets"))
    data = raw(col + "_data") if off[-1] else b""
    return [data[off[i]:off[i + 1]].decode() for i in range(n)]
for col in ("question_id", "benchmark", "prompt", "answer"):
    assert text(col) == [s[col] for s in samples], col
ext = text("extracted")
assert ext == [s.get("extracted") or "" for s in samples], ext
correct = struct.unpack("<%db" % n, raw("correct"))
score = struct.unpack("<%dd" % n, raw("score"))
for s, c, v in zip(samples, correct, score):
    want_c = -1 if "correct" not in s else int(s["correct"])
    assert c == want_c, (s, c)
    if s["score"] is None:
        assert math.isnan(v), (s, v)
    else:
        assert v == s["score"], (s, v)
    if s["benchmark"] == "pope":
        assert v == (1.0 if c == 1 else 0.0), (s, v)
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "samples.h5 differs from samples.jsonl: $(cat "$tmp/h5.log")"
check 'h5dump -a /schema "$tmp/r1/samples.h5" | grep -q "sima.bench_samples"' "samples.h5 schema attribute"

# CHAIR: a synonym table made from words of the answers, then the run rescored
# (the answers are reused); mentions counted here by whole-word match
python3 - "$tmp/r1" "$tmp/syn1.txt" <<'PY' >"$tmp/syn.log" 2>&1
import json, re, sys
d, out = sys.argv[1], sys.argv[2]
samples = [json.loads(l) for l in open(d + "/samples.jsonl")]
caps = [s["answer"] for s in samples if s["benchmark"] == "chair"]
words = [re.findall(r"[a-z0-9]+", c.lower()) for c in caps]
allw = set(w for ws in words for w in ws)
def usable(w):   # no plural form nearby that the table's singular rule could fold in
    return (len(w) >= 4 and w.isalpha() and not w.endswith("s") and w + "s" not in allw
            and w + "es" not in allw and not w.endswith("ie"))
picks = []
for ws in words:
    for w in ws:
        if usable(w) and w not in picks:
            picks.append(w)
            break
assert picks, caps
# the first caption's word stands for the ground-truth "circle"; any other for "square"
with open(out, "w") as f:
    f.write("circle, %s\n" % picks[0])
    f.write("square, %s\n" % ", ".join(picks[1:]) if len(picks) > 1 else "square\n")
print(json.dumps(picks))
PY
rc=$?
check '[ $rc -eq 0 ]' "could not build a synonym table: $(cat "$tmp/syn.log")"
mpi 1 "$bin/sima-bench" "${opts[@]}" --chair-synonyms "$tmp/syn1.txt" --out "$tmp/r1" >"$tmp/chair.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "already complete" "$tmp/chair.log"' "CHAIR rescoring: $(cat "$tmp/chair.log")"
python3 - "$tmp/r1" "$(tail -1 "$tmp/syn.log")" <<'PY' >"$tmp/chair.check" 2>&1
import json, re, sys
d, picks = sys.argv[1], json.loads(sys.argv[2])
cat = {picks[0]: "circle"}
cat.update({w: "square" for w in picks[1:]})
samples = [json.loads(l) for l in open(d + "/samples.jsonl")]
res = json.load(open(d + "/results.json"))["benchmarks"]["chair"]
mentions = halluc = hcaps = 0
for s in (s for s in samples if s["benchmark"] == "chair"):
    m = [cat[w] for w in re.findall(r"[a-z0-9]+", s["answer"].lower()) if w in cat]
    h = [c for c in m if c != "circle"]
    assert s["mentioned_objects"] == m and s["hallucinated_objects"] == h, (s, m, h)
    mentions += len(m); halluc += len(h); hcaps += bool(h)
assert mentions > 0
assert res["mentions"] == mentions and res["hallucinated_mentions"] == halluc, res
assert abs(res["chair_i"] - 100 * halluc / mentions) < 1e-9, res
assert abs(res["chair_s"] - 100 * hcaps / 2) < 1e-9, res
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "CHAIR does not agree with the word match: $(cat "$tmp/chair.check")"

# a ground-truth object the table lacks is reported; a missing table stops the
# run before any answer is generated
cp -r "$tmp/r1" "$tmp/rs"
printf 'square, squares\n' >"$tmp/syn2.txt"
mpi 1 "$bin/sima-bench" "${opts[@]}" --chair-synonyms "$tmp/syn2.txt" --out "$tmp/rs" >"$tmp/rs.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "chair: 2 ground-truth object names are not in the synonym table" "$tmp/rs.log"' \
  "unknown ground-truth objects not reported: $(cat "$tmp/rs.log")"
mpi 1 "$bin/sima-bench" "${opts[@]}" --chair-synonyms "$tmp/nope.txt" --out "$tmp/ns" >"$tmp/ns.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "nope.txt" "$tmp/ns.log" && [ ! -e "$tmp/ns/answers.h5" ] &&
       [ ! -e "$tmp/ns/answers.h5.parts" ]' "missing synonym table: $(cat "$tmp/ns.log")"

# judge scores from a hand-written replies file (custom_id BENCH/ID/INDEX)
cp -r "$tmp/r1" "$tmp/rj"
printf '%s\n' '{"custom_id": "mmvet/mmvet-0/0", "reply": "0.4"}' \
  '{"custom_id": "llava_bench/llava-0/0", "reply": "6 8\nAssistant 2 is more detailed."}' \
  >"$tmp/replies.jsonl"
mpi 1 "$bin/sima-bench" "${opts[@]}" --judge read-replies --judge-replies "$tmp/replies.jsonl" \
  --out "$tmp/rj" >"$tmp/rj.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "already complete" "$tmp/rj.log"' "--judge read-replies: $(cat "$tmp/rj.log")"
python3 - "$tmp/rj" <<'PY' >"$tmp/rj.check" 2>&1
import json, sys
d = sys.argv[1]
b = json.load(open(d + "/results.json"))["benchmarks"]
samples = {s["question_id"]: s for s in map(json.loads, open(d + "/samples.jsonl"))}
assert b["mmvet"]["status"] == "scored" and abs(b["mmvet"]["score"] - 40.0) < 1e-9, b["mmvet"]
assert abs(samples["mmvet-0"]["score"] - 0.4) < 1e-12, samples["mmvet-0"]
lb = b["llava_bench"]
assert lb["status"] == "scored" and abs(lb["relative_score"] - 100 * 8 / 6) < 1e-9, lb
assert abs(lb["mean_reference"] - 6) < 1e-12 and abs(lb["mean_model"] - 8) < 1e-12, lb
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "judge scores: $(cat "$tmp/rj.check")"
mpi 1 "$bin/sima-bench" "${opts[@]}" --judge read-replies --judge-replies "$tmp/nope.jsonl" \
  --out "$tmp/rj" >"$tmp/rj2.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "nope.jsonl" "$tmp/rj2.log"' "missing replies file: $(cat "$tmp/rj2.log")"

# --judge write-requests: one request per judge sample, status "awaiting judge"
cp -r "$tmp/r1" "$tmp/rw"
mpi 1 "$bin/sima-bench" "${opts[@]}" --judge write-requests --judge-model test-judge \
  --out "$tmp/rw" >"$tmp/rw.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--judge write-requests: $(cat "$tmp/rw.log")"
python3 - "$tmp/rw" <<'PY' >"$tmp/rw.check" 2>&1
import json, sys
d = sys.argv[1]
ids = sorted(json.loads(l)["custom_id"] for l in open(d + "/judge_requests.jsonl"))
assert ids == ["llava_bench/llava-0/0", "mmvet/mmvet-0/0"], ids
b = json.load(open(d + "/results.json"))["benchmarks"]
assert b["mmvet"]["status"] == "awaiting judge", b["mmvet"]
print("ok")
PY
rc=$?
check '[ $rc -eq 0 ]' "judge requests: $(cat "$tmp/rw.check")"

mpi 1 "$bin/sima-bench" "${opts[@]}" --judge write-requests --out "$tmp/rw" >"$tmp/rw2.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "needs the judge model" "$tmp/rw2.log"' \
  "--judge write-requests without a model: $(cat "$tmp/rw2.log")"

# --adapter: other answers, another run (never resumed from the base model's)
adapter=$golden/tiny-llava-lora
small=(--model "$model" --questions "$tmp/fx/questions.jsonl" --max-new-tokens 6 --batch 3
       --chunk 3 --template llava_hf --limit 6 --quiet)
mpi 1 "$bin/sima-bench" "${small[@]}" --out "$tmp/base" >"$tmp/base.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "base run: $(cat "$tmp/base.log")"
mpi 1 "$bin/sima-bench" "${small[@]}" --adapter "$adapter" --out "$tmp/lora" >"$tmp/lora.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--adapter run: $(cat "$tmp/lora.log")"
answers() { python3 -c 'import json,sys; print([json.loads(l)["answer"] for l in open(sys.argv[1])])' "$1"; }
check '[ "$(answers "$tmp/base/samples.jsonl")" != "$(answers "$tmp/lora/samples.jsonl")" ]' \
  "the adapter did not change the answers"
check 'grep -q "tiny-llava-lora" "$tmp/lora/results.json"' "results.json does not name the adapter"
# the same answers from the model with the adapter merged into its weights
# (sima-dpo --merge after SFT steps at learning rate 0 keeps the adapter as is)
make_test_prompts 4
mpi 1 "$bin/sima-dpo" --model "$model" --mode sft --prompts "$tmp/prompts.h5" --template llava_hf \
  --adapter "$adapter" --lr 0 --epochs 1 --merge --quiet --out "$tmp/dpo" >"$tmp/dpo.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/dpo/merged/model.safetensors" ]' "sima-dpo --merge: $(cat "$tmp/dpo.log")"
merged_opts=("${small[@]}")
merged_opts[1]=$tmp/dpo/merged
mpi 1 "$bin/sima-bench" "${merged_opts[@]}" --out "$tmp/merged" >"$tmp/merged.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "merged-model run: $(cat "$tmp/merged.log")"
check '[ "$(answers "$tmp/lora/samples.jsonl")" = "$(answers "$tmp/merged/samples.jsonl")" ]' \
  "--adapter answers differ from the merged model's"
mpi 1 "$bin/sima-bench" "${small[@]}" --adapter "$adapter" --out "$tmp/base" >"$tmp/mix.log" 2>&1
rc=$?
check '[ $rc -eq 1 ] && grep -q "different run" "$tmp/mix.log"' \
  "base-model answers were reused for the adapter: $(cat "$tmp/mix.log")"

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
