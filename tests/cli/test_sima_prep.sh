#!/usr/bin/env bash
# sima-prep from the command line: import of LLaVA instruction data (JSON
# array and JSON Lines) and SIMA prompt JSON Lines built here from the golden
# JPEGs, with a shared image, a text-only record, a missing and a corrupt
# image; the stored rows, image mapping, dedupe (bytes equal to the original
# files), skip report and counts; the same file from 1 and 2 ranks; 70000
# prompts and 400 images written in many rounds, the same from 1 and 3
# ranks; errors (bad JSON with line and column, a record of the wrong shape,
# nothing usable) with no output created and an existing output left alone;
# export (JSONL, --out, --images, round trip through import) and info; the
# bundled demo data set.
set -u
bin=${SIMA_BIN:?}/sima-prep
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
src=${SIMA_SOURCE_DIR:?}
. "$(dirname "$0")/lib.sh"

# expect_error DESCRIPTION CODE NEEDLE CMD...: exit CODE, stderr has NEEDLE
# (errors of exit 1 are one line)
expect_error() {
  local what=$1 code=$2 needle=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  if [ $rc -ne "$code" ]; then bad "$what: exit $rc, expected $code: $(cat "$tmp/err")"; return; fi
  if ! grep -qF -- "$needle" "$tmp/err"; then bad "$what: stderr lacks '$needle': $(cat "$tmp/err")"; return; fi
  if [ "$code" -eq 1 ] && [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
    bad "$what: expected one error line, got: $(cat "$tmp/err")"; return
  fi
  ok
}

# --- an image root: a.jpg shared by two prompts, sub/b.jpg, c.jpg, a corrupt
# (truncated) JPEG, a file that is no JPEG at all; missing.jpg does not exist.
# The JPEGs are the bundled folder's, named here, whatever SIMA_GOLDEN_DIR says.
bundled=${SIMA_GOLDEN_DEFAULT:?}/images
root=$tmp/images
mkdir -p "$root/sub"
cp "$bundled/scene_640x480.jpg" "$root/a.jpg"
cp "$bundled/gray_120x90.jpg" "$root/sub/b.jpg"
cp "$bundled/progressive_57x80.jpg" "$root/c.jpg"
head -c 700 "$bundled/scene_333x500.jpg" >"$root/corrupt.jpg"
printf 'GIF89a not a jpeg' >"$root/notjpeg.jpg"

# The same eight records as a LLaVA JSON array and as JSON Lines (with a
# blank line before the last record, which has no id: its id is its line).
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
def rec(id, image, turns):
    r = {}
    if id is not None: r["id"] = id
    if image is not None: r["image"] = image
    r["conversations"] = [{"from": f, "value": v} for f, v in turns]
    return r
recs = [
    rec("r1", "a.jpg", [("human", "<image>\nWhat shapes are there?"), ("gpt", "A red circle and a green square.")]),
    rec("r2", "a.jpg", [("human", "What color is the circle?\n<image>"), ("gpt", "Red.")]),
    rec(3, None, [("human", "Say hello in French."), ("gpt", "Bonjour.")]),
    rec("r4", "missing.jpg", [("human", "<image>\nQ4?"), ("gpt", "A4.")]),
    rec("r5", "corrupt.jpg", [("human", "<image>\nQ5?"), ("gpt", "A5.")]),
    rec("r6", "sub/b.jpg", [("human", "<image>\nCafé ☕ \"quoted\"?"), ("gpt", "Ja.\nTwo lines."),
                            ("human", "a second question"), ("gpt", "a second answer")]),
    rec("r7", "notjpeg.jpg", [("human", "<image>\nQ7?"), ("gpt", "A7.")]),
    rec(None, "c.jpg", [("human", "<image>\nHow many triangles?")]),
]
json.dump(recs, open(d + "/llava.json", "w"), indent=1, ensure_ascii=False)
with open(d + "/llava.jsonl", "w") as f:
    for i, r in enumerate(recs):
        if i == len(recs) - 1: f.write("\n")
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
PY

# expected rows after import; the last id is the record number (JSON) or line (JSONL)
cat >"$tmp/expect.py" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
last_id = sys.argv[2]
want = [
    {"id": "r1", "question": "What shapes are there?", "ground_truth": "A red circle and a green square.", "image": "a.jpg"},
    {"id": "r2", "question": "What color is the circle?", "ground_truth": "Red.", "image": "a.jpg"},
    {"id": "3", "question": "Say hello in French.", "ground_truth": "Bonjour.", "image": None},
    {"id": "r6", "question": "Café ☕ \"quoted\"?", "ground_truth": "Ja.\nTwo lines.", "image": "sub/b.jpg"},
    {"id": last_id, "question": "How many triangles?", "ground_truth": "", "image": "c.jpg"},
]
assert rows == want, json.dumps(rows, indent=1, ensure_ascii=False)
PY

# check_report FILE LINE4 LINE5 LINE7: the three skipped records with their lines
cat >"$tmp/report.py" <<'PY'
import sys
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if not l.startswith("#")]
assert lines[0] == ["record", "line", "id", "image", "reason"], lines[0]
got = [(r[0], r[1], r[2], r[3], r[4].split(":")[0]) for r in lines[1:]]
want = [("4", sys.argv[2], "r4", "missing.jpg", "missing"),
        ("5", sys.argv[3], "r5", "corrupt.jpg", "unreadable"),
        ("7", sys.argv[4], "r7", "notjpeg.jpg", "unreadable")]
assert got == want, got
PY

# h5dump a dataset as plain values, one per line
values() { h5dump -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr ',' '\n' | sed 's/^ *//;s/ *$//;/^$/d'; }
# the first dimension of a dataset
dim0() { h5ls "$1/$2" | sed 's/.*{\([0-9]*\).*/\1/'; }

cd "$tmp" || exit 1

# --- LLaVA JSON array
"$bin" import llava.json --image-root images --out p.h5 2>err.txt
check '[ $? -eq 0 ]' "import llava.json failed: $(cat err.txt)"
check 'grep -q "skipped 3 of 8 prompts" err.txt' "no warning with the skip count: $(cat err.txt)"
"$bin" export p.h5 >p.jsonl 2>err.txt
check '[ $? -eq 0 ]' "export failed: $(cat err.txt)"
python3 expect.py p.jsonl 8 && ok || bad "llava.json: exported rows"
check '[ "$(values p.h5 /prompts/image | tr "\n" " ")" = "0 0 -1 1 2 " ]' \
  "image column: $(values p.h5 /prompts/image | tr '\n' ' ')"
check '[ "$(dim0 p.h5 images/name/offsets)" = 4 ]' "three images stored (4 name offsets)"
total=$(($(wc -c <images/a.jpg) + $(wc -c <images/sub/b.jpg) + $(wc -c <images/c.jpg)))
check '[ "$(dim0 p.h5 images/jpeg/data)" = "$total" ]' "each image stored once: $(dim0 p.h5 images/jpeg/data) bytes, files $total"
check '[ "$(values p.h5 /images/jpeg/offsets | tr "\n" " ")" = "0 $(wc -c <images/a.jpg) $(($(wc -c <images/a.jpg) + $(wc -c <images/sub/b.jpg))) $total " ]' \
  "jpeg offsets"
python3 report.py p.h5.report.txt 43 57 93 && ok || bad "report of llava.json: $(cat p.h5.report.txt)"
check 'h5dump -a n_skipped p.h5 | grep -q "(0): 3"' "n_skipped attribute"
check 'h5dump -a schema p.h5 | grep -q "\"sima.prompts\""' "schema attribute"
check 'h5dump -a tool p.h5 | grep -q "\"sima-prep\""' "tool attribute"
check 'h5dump -a seed p.h5 | grep -q "(0): -1"' "seed attribute"
check 'h5dump -a inputs p.h5 | grep -q "llava.json"' "inputs attribute names the input"
check 'h5dump -a command_line p.h5 | grep -q "import llava.json --image-root images --out p.h5"' \
  "command line kept as typed"
check '[ -z "$(ls | grep -e "\.tmp")" ]' "temporary files left behind: $(ls)"

# --- export --images writes the stored JPEGs back, byte for byte
"$bin" export p.h5 --out p2.jsonl --images back 2>err.txt
check '[ $? -eq 0 ]' "export --out --images failed: $(cat err.txt)"
check 'cmp -s p.jsonl p2.jsonl' "export --out differs from stdout export"
check 'cmp -s back/a.jpg images/a.jpg && cmp -s back/sub/b.jpg images/sub/b.jpg && cmp -s back/c.jpg images/c.jpg' \
  "exported images differ from the originals"
check '[ "$(find back -type f | wc -l)" -eq 3 ]' "export --images wrote $(find back -type f | wc -l) files, expected 3"

# --- round trip: the exported JSONL and images import to the same rows
"$bin" import p.jsonl --image-root back --out rt.h5 -q 2>err.txt
check '[ $? -eq 0 ]' "import of an export failed: $(cat err.txt)"
"$bin" export rt.h5 >rt.jsonl
check 'cmp -s p.jsonl rt.jsonl' "round trip changed the rows"
check '[ "$(values rt.h5 /prompts/image | tr "\n" " ")" = "0 0 -1 1 2 " ]' "round trip image column"

# --- the same records as JSON Lines: ids and report lines are line numbers
"$bin" import llava.jsonl --image-root images --out pl.h5 --report pl-report.tsv -q 2>err.txt
check '[ $? -eq 0 ]' "import llava.jsonl failed: $(cat err.txt)"
"$bin" export pl.h5 >pl.jsonl
python3 expect.py pl.jsonl 9 && ok || bad "llava.jsonl: exported rows"
python3 report.py pl-report.tsv 4 5 7 && ok || bad "report of llava.jsonl: $(cat pl-report.tsv)"
check '[ ! -e pl.h5.report.txt ]' "--report ignored"

# --- several ranks give the same file
if command -v mpirun >/dev/null; then
  mpirun --oversubscribe --allow-run-as-root -np 2 "$bin" import llava.json --image-root images \
    --out p_np2.h5 --report r_np2.txt -q >/dev/null 2>err.txt
  check '[ $? -eq 0 ]' "import under mpirun -np 2 failed: $(cat err.txt)"
  for d in /prompts/id/data /prompts/id/offsets /prompts/question/data /prompts/ground_truth/data \
           /prompts/image /images/name/data /images/jpeg/offsets /images/jpeg/data; do
    check '[ "$(values p.h5 $d | md5sum)" = "$(values p_np2.h5 $d | md5sum)" ]' "-np 2 differs in $d"
  done
  check 'diff -q <(tail -n +4 p.h5.report.txt) <(tail -n +4 r_np2.txt) >/dev/null' "-np 2 report differs"
fi

# --- many rounds: 70000 prompts (two rounds of prompt rows) naming 400
#     distinct images (several rounds of images per rank), every 50th missing:
#     1 and 3 ranks give the same file, and the export gives back the input
mkdir -p many
for i in $(seq 0 399); do
  [ $((i % 50)) -eq 7 ] || ln -s "$PWD/images/$( [ $((i % 2)) -eq 0 ] && echo a.jpg || echo sub/b.jpg)" "many/$i.jpg"
done
python3 - <<'PY'
import json
with open("many.jsonl", "w") as f:
    for i in range(70000):
        rec = {"id": "m%d" % i, "text": "question %d" % i, "ground_truth": "answer %d" % (i * 7)}
        if i % 9: rec["image"] = "%d.jpg" % (i * 13 % 400)
        f.write(json.dumps(rec) + "\n")
PY
if command -v mpirun >/dev/null; then
  for np in 1 3; do
    mpirun --oversubscribe --allow-run-as-root -np $np "$bin" import many.jsonl --image-root many \
      --out many$np.h5 -q 2>err.txt
    check '[ $? -eq 0 ]' "import of 70000 prompts on $np ranks failed: $(cat err.txt)"
  done
  check 'h5diff -q many1.h5 many3.h5 /prompts /prompts && h5diff -q many1.h5 many3.h5 /images /images' \
    "70000 prompts: 1 and 3 ranks give different files"
  check 'diff -q <(tail -n +4 many1.h5.report.txt) <(tail -n +4 many3.h5.report.txt) >/dev/null' \
    "70000 prompts: reports differ"
  "$bin" export many3.h5 >many.out.jsonl
  python3 - <<'PY' && ok || bad "70000 prompts: exported rows differ from the input"
import json
rows = [json.loads(l) for l in open("many.out.jsonl")]
want = []
for i in range(70000):
    img = "%d.jpg" % (i * 13 % 400) if i % 9 else None
    if img and (i * 13 % 400) % 50 == 7: continue
    want.append({"id": "m%d" % i, "question": "question %d" % i, "ground_truth": "answer %d" % (i * 7), "image": img})
assert rows == want, (len(rows), len(want))
skipped = [l.split("\t") for l in open("many3.h5.report.txt") if not l.startswith(("#", "record"))]
assert len(skipped) == 70000 - len(want) and all(s[4].startswith("missing") for s in skipped), len(skipped)
PY
  check '[ "$(dim0 many3.h5 images/name/offsets)" = 393 ]' "392 images stored"
fi

# --- SIMA prompt JSONL: auto-detected or --format sima; --limit
cat >sima.jsonl <<'EOF'
{"id": "s1", "image": "a.jpg", "text": "<image>\nWhat is red?", "ground_truth": "The circle."}
{"image": "sub/b.jpg", "text": "Describe it."}
{"id": "s3", "text": "No image here.", "ground_truth": "Fine."}
{"id": "s4", "image": "a.jpg", "text": "Is there a square?", "ground_truth": "Yes."}
EOF
for fmt in auto sima; do
  "$bin" import --format $fmt sima.jsonl --image-root images --out s.h5 2>err.txt
  check '[ $? -eq 0 ]' "import sima.jsonl --format $fmt failed: $(cat err.txt)"
  check '! grep -q warning err.txt' "warning for a clean import: $(cat err.txt)"
  "$bin" export s.h5 >s.jsonl
  python3 - s.jsonl <<'PY' && ok || bad "sima.jsonl --format $fmt: exported rows"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows == [
    {"id": "s1", "question": "What is red?", "ground_truth": "The circle.", "image": "a.jpg"},
    {"id": "2", "question": "Describe it.", "ground_truth": "", "image": "sub/b.jpg"},
    {"id": "s3", "question": "No image here.", "ground_truth": "Fine.", "image": None},
    {"id": "s4", "question": "Is there a square?", "ground_truth": "Yes.", "image": "a.jpg"},
], rows
PY
done
check '[ "$(values s.h5 /prompts/image | tr "\n" " ")" = "0 1 -1 0 " ]' "sima image column"
check 'h5dump -a n_skipped s.h5 | grep -q "(0): 0"' "sima n_skipped"
"$bin" import sima.jsonl --limit 2 --image-root images --out s2.h5 -q
check '[ "$("$bin" export s2.h5 | wc -l)" -eq 2 ]' "--limit 2"

# --- info
"$bin" info p.h5 >info.txt 2>err.txt
check '[ $? -eq 0 ]' "info failed: $(cat err.txt)"
check 'grep -q "sima.prompts version 1" info.txt' "info: schema line: $(cat info.txt)"
check 'grep -q "/prompts .*5 rows" info.txt && grep -q "/images .*3 rows" info.txt' "info: row counts: $(cat info.txt)"
check 'grep -q "n_skipped *3" info.txt && grep -q "tool *sima-prep" info.txt' "info: attributes: $(cat info.txt)"

# --- errors: one line naming the place, exit 1, no output file
printf '[\n  {"id": "a", "conversations": [{"from": "human", "value": "q"}]},\n  {"id": "b", "conversations": [}\n]\n' >bad.json
expect_error "bad JSON array" 1 "bad.json: line 3, column" "$bin" import bad.json --image-root images --out bad.h5
printf '{"text": "q"}\n{"text": "q2",}\n' >bad.jsonl
expect_error "bad JSON line" 1 "bad.jsonl: line 2, column" "$bin" import bad.jsonl --image-root images --out bad.h5
{
  for i in 1 2 3 4 5 6; do echo "{\"id\": \"$i\", \"conversations\": [{\"from\": \"human\", \"value\": \"q$i\"}]}"; done
  echo '{"id": "7", "conversations": [{"from": "gpt", "value": "an answer only"}]}'
} >train.jsonl
expect_error "no human turn (JSONL)" 1 "train.jsonl: line 7: no human turn in conversations" \
  "$bin" import train.jsonl --image-root images --out bad.h5
printf '[{"id": "1", "conversations": [{"from": "human", "value": "q"}]},\n {"id": "2", "conversations": "oops"}]\n' >shape.json
expect_error "conversations not an array (JSON)" 1 "shape.json: record 2 (line 2)" \
  "$bin" import shape.json --image-root images --out bad.h5
expect_error "wrong format forced" 1 'llava.jsonl: line 1: no "text"' \
  "$bin" import --format sima llava.jsonl --image-root images --out bad.h5
printf '{"foo": 1}\n' >unknown.jsonl
expect_error "format not detectable" 1 "unknown.jsonl: line 1: cannot tell the input format" \
  "$bin" import unknown.jsonl --image-root images --out bad.h5
printf '{"id": "x", "image": "missing.jpg", "text": "q"}\n{"id": "y", "image": "corrupt.jpg", "text": "q"}\n' >none.jsonl
expect_error "nothing usable" 1 "nothing usable" "$bin" import none.jsonl --image-root images --out bad.h5
check 'grep -q "missing.jpg" bad.h5.report.txt && grep -q "corrupt.jpg" bad.h5.report.txt' \
  "report missing when nothing is usable"
check '[ ! -e bad.h5 ]' "output created by a failed import"
: >empty.jsonl
expect_error "no records" 1 "empty.jsonl: no records" "$bin" import empty.jsonl --image-root images --out bad.h5
check '[ ! -e bad.h5 ]' "output created by a failed import"
# an existing output survives a failed import untouched
cp p.h5 keep.h5
expect_error "failed import over an existing file" 1 "bad.json: line 3" "$bin" import bad.json --image-root images --out p.h5
check 'cmp -s p.h5 keep.h5' "existing output changed by a failed import"
expect_error "nothing usable over an existing file" 1 "nothing usable" "$bin" import none.jsonl --image-root images --out p.h5
check 'cmp -s p.h5 keep.h5' "existing output changed by a failed import"
check '[ -z "$(ls | grep -e "\.tmp")" ]' "temporary files left behind: $(ls)"

# usage errors: exit 2
expect_error "no --out" 2 "needs --out" "$bin" import llava.json --image-root images
expect_error "no --image-root" 2 "needs --image-root" "$bin" import llava.json --out x.h5
expect_error "bad --format" 2 "--format" "$bin" import --format xml llava.json --image-root images --out x.h5
expect_error "bad --limit" 2 "--limit" "$bin" import --limit 0 llava.json --image-root images --out x.h5
expect_error "unknown option" 2 "--bogus" "$bin" export p.h5 --bogus
expect_error "unknown command" 2 "unknown command" "$bin" frobnicate
expect_error "image root not a folder" 1 "nowhere: image root is not a folder" \
  "$bin" import llava.json --image-root nowhere --out x.h5

# export and info refuse what is not a sima file
expect_error "export of JSON" 1 "llava.json: not an HDF5 file" "$bin" export llava.json
if [ -x "$SIMA_BIN/sima-model" ]; then
  "$SIMA_BIN/sima-model" image images/a.jpg --out px.h5 2>/dev/null
  expect_error "export of a non-sima HDF5 file" 1 "px.h5: not a sima file" "$bin" export px.h5
  expect_error "info of a non-sima HDF5 file" 1 "px.h5: not a sima file" "$bin" info px.h5
fi

# --- the bundled demo data set imports completely
demo=$src/data/demo
"$bin" import "$demo/prompts.jsonl" --image-root "$demo/images" --out demo.h5 2>err.txt
check '[ $? -eq 0 ] && ! grep -q warning err.txt' "demo import: $(cat err.txt)"
check '[ "$("$bin" export demo.h5 | wc -l)" -eq "$(grep -c . "$demo/prompts.jsonl")" ]' "demo prompts count"
check '[ "$(du -sk "$demo" | cut -f1)" -lt 150 ]' "data/demo is $(du -sk "$demo" | cut -f1) KB"

# --- export of a responses file, when sima-gen is built
if [ -x "$SIMA_BIN/sima-gen" ]; then
  if "$SIMA_BIN/sima-gen" --model "$golden/tiny-llava" --prompts demo.h5 --out resp.h5 \
       --range 0:2 --max-new-tokens 4 --quiet >/dev/null 2>err.txt; then
    "$bin" export resp.h5 >resp.jsonl 2>err.txt
    check '[ $? -eq 0 ]' "export of responses failed: $(cat err.txt)"
    expect_error "export --images of a responses file" 1 "holds no images" \
      "$bin" export resp.h5 --images x --out resp-out.jsonl
    check '[ ! -e resp-out.jsonl ] && [ ! -e x ]' "export output written despite an error"
    "$bin" info resp.h5 >info.txt 2>err.txt
    check 'grep -q "sima.responses version 1" info.txt && grep -q "/responses .*4 rows" info.txt' \
      "info of responses: $(cat info.txt err.txt)"
    python3 - resp.jsonl <<'PY' && ok || bad "responses export: $(head -c 600 resp.jsonl)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, len(rows)
for i, r in enumerate(rows):
    assert list(r) == ["prompt", "candidate", "kind", "seed", "text", "tokens", "sum_logprob", "finish"], list(r)
    assert (r["prompt"], r["candidate"]) == (i // 2, i % 2), r
    assert r["kind"] == ("greedy" if i % 2 == 0 else "sampled"), r
    assert r["finish"] in ("eos", "length", "context"), r
    assert isinstance(r["text"], str) and 1 <= len(r["tokens"]) <= 4, r
PY
  else
    echo "note: sima-gen failed, export of a responses file not checked: $(tail -n 1 err.txt)" >&2
  fi
fi

finish
