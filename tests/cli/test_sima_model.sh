#!/usr/bin/env bash
# sima-model from the command line: info on the golden model and on the real
# llava-1.5-7b-hf config.json alone, tokenize/detokenize round trips against
# the golden ids, image output readable by h5dump, and bad input giving a
# one-line error that names the file, a non-zero exit and no output file.
set -u
bin=${SIMA_BIN:?}/sima-model
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
src=${SIMA_SOURCE_DIR:?}
. "$(dirname "$0")/lib.sh"

# expect_error DESCRIPTION NEEDLE CMD...: non-zero exit, one stderr line containing NEEDLE
expect_error() {
  local what=$1 needle=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  local rc=$?
  if [ $rc -eq 0 ]; then bad "$what: exit 0"; return; fi
  if ! grep -qF -- "$needle" "$tmp/err"; then bad "$what: stderr lacks '$needle': $(cat "$tmp/err")"; return; fi
  if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then bad "$what: expected one error line, got: $(cat "$tmp/err")"; return; fi
  ok
}

# --- info on the golden model: fields from its own config.json
"$bin" info "$golden/tiny-llava" >"$tmp/info.json" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "info tiny-llava failed: $(cat "$tmp/err")"
python3 - "$tmp/info.json" "$golden/tiny-llava/config.json" <<'PY' && ok || bad "info tiny-llava fields"
import json, sys
info = json.load(open(sys.argv[1])); cfg = json.load(open(sys.argv[2]))
c = info["config"]; t = cfg["text_config"]; v = cfg["vision_config"]
assert c["text"]["hidden_size"] == t["hidden_size"], c["text"]
assert c["text"]["num_hidden_layers"] == t["num_hidden_layers"]
assert c["text"]["num_key_value_heads"] == t["num_key_value_heads"]
assert c["vision"]["hidden_size"] == v["hidden_size"]
assert c["image_seq_length"] == (v["image_size"] // v["patch_size"]) ** 2
w = info["weights"]
idx = json.load(open(sys.argv[2].replace("config.json", "model.safetensors.index.json")))
assert w["tensor_count"] == len(idx["weight_map"]), (w["tensor_count"], len(idx["weight_map"]))
assert set(w["tensors"]) == set(idx["weight_map"])
# every parameter of the checkpoint is counted, and the config predicts the same split
p, pc = w["parameters"], info["parameters_from_config"]
assert p["total"] == sum(t["numel"] for t in w["tensors"].values())
for k in ("vision_tower", "multi_modal_projector", "language_model", "lm_head"):
    assert p[k] == pc[k], (k, p[k], pc[k])
assert info["tokenizer"]["vocab_size"] == t["vocab_size"]
PY

# --- info on the real llava-1.5-7b-hf config.json alone
"$bin" info "$src/tests/data/llava-1.5-7b-hf" >"$tmp/info7b.json" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "info 7B failed: $(cat "$tmp/err")"
python3 - "$tmp/info7b.json" <<'PY' && ok || bad "info 7B fields"
import json, sys
c = json.load(open(sys.argv[1]))["config"]
t, v = c["text"], c["vision"]
assert (t["hidden_size"], t["num_hidden_layers"], t["num_attention_heads"],
        t["num_key_value_heads"], t["intermediate_size"], t["vocab_size"]) == (4096, 32, 32, 32, 11008, 32064), t
assert (v["num_hidden_layers"], v["hidden_size"]) == (24, 1024), v
assert c["image_seq_length"] == 576
PY

# --- tokenize / detokenize: every golden case through both tokenizer files
python3 - "$golden/tokenizer_cases.json" "$tmp" <<'PY'
import json, sys
cases = json.load(open(sys.argv[1]))["cases"]
d = sys.argv[2]
with open(d + "/texts.jsonl", "w") as f:
    for c in cases: f.write(json.dumps(c["text"]) + "\n")
with open(d + "/hf_ids.jsonl", "w") as f:
    for c in cases: f.write(json.dumps(c["hf_ids_with_bos"]) + "\n")
with open(d + "/sp_ids.jsonl", "w") as f:
    for c in cases: f.write(json.dumps(c["sp_ids"]) + "\n")
# cases with a reference decode: their ids and the expected text
with open(d + "/dec_ids.jsonl", "w") as f:
    for c in cases:
        if "hf_decode" in c: f.write(json.dumps(c["hf_ids_with_bos"]) + "\n")
with open(d + "/hf_decode.jsonl", "w") as f:
    for c in cases:
        if "hf_decode" in c: f.write(json.dumps(c["hf_decode"]) + "\n")
PY
"$bin" tokenize --tokenizer "$golden/tiny-llava/tokenizer.json" <"$tmp/texts.jsonl" >"$tmp/got_hf.jsonl"
rc=$?
check '[ $rc -eq 0 ]' "tokenize (tokenizer.json) failed"
"$bin" tokenize --no-bos --tokenizer "$golden/tiny-llava/tokenizer.model" <"$tmp/texts.jsonl" >"$tmp/got_sp.jsonl"
rc=$?
check '[ $rc -eq 0 ]' "tokenize (tokenizer.model) failed"
"$bin" detokenize --tokenizer "$golden/tiny-llava/tokenizer.json" <"$tmp/dec_ids.jsonl" >"$tmp/got_dec.jsonl"
rc=$?
check '[ $rc -eq 0 ]' "detokenize failed"
python3 - "$tmp" <<'PY' && ok || bad "tokenize/detokenize output differs from the golden ids"
import json, sys
d = sys.argv[1]
load = lambda n: [json.loads(l) for l in open(d + "/" + n) if l.strip()]
assert load("got_hf.jsonl") == load("hf_ids.jsonl")
assert load("got_sp.jsonl") == load("sp_ids.jsonl")
assert load("got_dec.jsonl") == load("hf_decode.jsonl")
PY

# --- image: pixel values of the golden crop-mode case, readable without our code
img=$(ls "$golden"/images/*.jpg | head -n 1)
"$bin" image --preprocess crop --model "$golden/tiny-llava" "$img" --out "$tmp/px.h5" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "image failed: $(cat "$tmp/err")"
check 'h5dump -H "$tmp/px.h5" | grep -q "DATASET \"pixel_values\""' "pixel_values missing in image output"
check '[ -z "$(ls "$tmp"/px.h5.tmp.* 2>/dev/null)" ]' "temporary file left behind"

# --- bad input: one-line errors naming the file, non-zero exit, no output left
mkdir -p "$tmp/bad"
printf '{\n  "text_config": {\n    "hidden_size": 64,\n  }\n}\n' >"$tmp/bad/config.json"
expect_error "config syntax error" "config.json: line 4" "$bin" info "$tmp/bad"
mkdir -p "$tmp/empty"
expect_error "no config.json" "config.json" "$bin" info "$tmp/empty"
printf 'not a jpeg at all' >"$tmp/fake.jpg"
expect_error "not a JPEG" "fake.jpg" "$bin" image "$tmp/fake.jpg" --out "$tmp/fake.h5"
check '[ ! -e "$tmp/fake.h5" ]' "output written for a bad image"
head -c 600 "$img" >"$tmp/trunc.jpg"
expect_error "truncated JPEG" "trunc.jpg" "$bin" image "$tmp/trunc.jpg" --out "$tmp/trunc.h5"
check '[ ! -e "$tmp/trunc.h5" ]' "output written for a truncated image"
printf '{"version":"1.0","model":{"type":"WordPiece","vocab":{}}}' >"$tmp/wp.json"
expect_error "unsupported tokenizer" "wp.json" "$bin" tokenize --tokenizer "$tmp/wp.json"
expect_error "bad tokenize input" "stdin: line 1" sh -c "echo 'oops' | '$bin' tokenize --tokenizer '$golden/tiny-llava/tokenizer.json'"
mkdir -p "$tmp/st"
cp "$golden/tiny-llava/config.json" "$tmp/st/"
head -c 4000 "$golden/tiny-llava/model-00002-of-00002.safetensors" >"$tmp/st/model.safetensors"
expect_error "truncated safetensors" "model.safetensors" "$bin" info "$tmp/st"

finish
