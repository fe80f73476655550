#!/usr/bin/env bash
# sima-dpo --train-projector and --train all on the golden tiny model, on the
# 8 pairs test_sima_dpo.sh builds:
#  - --train-projector: the loss goes down; the adapter holds the projector as
#    PEFT modules_to_save (4 tensors, biases 1-D) and the projector changed;
#  - -np 2 equals -np 1 --grad-accum 2; stop + resume equals uninterrupted;
#  - the saved adapter reloads (--adapter: low first loss), and the --merge'd
#    model scores the pairs as base + adapter + projector does: with the
#    reference log-probs given (pairs file), the first step's loss and
#    rewards of a fresh LoRA (B = 0) on the merged model equal those of the
#    adapter on the base model;
#  - --mode sft --train-projector: the loss goes down, the projector is saved;
#  - --train all: the loss goes down, OUTDIR/model is a model folder sima-gen
#    loads and scores the pairs as trained; -np 2 equals -np 1 --grad-accum 2;
#    stop + resume equals uninterrupted; LoRA options are refused;
#  - a corrupted, truncated, old-format or other-byte-order state.bin is
#    refused with a message naming the problem (exit 1).
set -u
bin=${SIMA_BIN:?}
helper=$bin/../tests/test_pairs_logic
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"
if [ ! -f "$model/config.json" ]; then echo "no $model: skipped"; exit 77; fi

# --- 12 prompts -> 8 pairs, and the same with reference log-probs
make_test_pairs

opts=(--model "$model" --pairs "$tmp/pairs.h5" --prompts "$tmp/prompts.h5" --lora-r 8
      --lora-alpha 16 --lr 5e-3 --warmup-ratio 0.1 --train-projector)
proj='multi_modal_projector'

# --- --train-projector: the loss goes down, the adapter holds the projector
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 10 --micro-batch 2 --out "$tmp/down" >"$tmp/down.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "--train-projector failed: $(cat "$tmp/down.log")"
check 'grep -q "and the projector" "$tmp/down.log" && grep -q "reference log-probs of 8 pairs scored" "$tmp/down.log"' \
  "the start lines should say the projector is trained and the references scored once: $(head -3 "$tmp/down.log")"
first=$(col "$tmp/down/metrics.csv" 3 | head -1)
last=$(col "$tmp/down/metrics.csv" 3 | tail -4 | awk '{s += $1} END {print s / NR}')
check 'python3 -c "import sys; sys.exit(0 if abs($first - 0.693147) < 1e-4 else 1)"' "first loss $first should be ln 2"
check 'le "$last" "$(python3 -c "print($first * 0.2)")"' "loss did not go down: first $first, mean of the last 4 $last"
ad=$tmp/down/adapter
check 'python3 - "$ad" <<'"'"'PY'"'"'
import json, struct, sys
d = sys.argv[1]
cfg = json.load(open(d + "/adapter_config.json"))
assert cfg["modules_to_save"] == ["multi_modal_projector"], cfg.get("modules_to_save")
b = open(d + "/adapter_model.safetensors", "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
p = "base_model.model.model.multi_modal_projector."
w1, b1, w2, b2 = (h[p + n] for n in ("linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"))
assert len(w1["shape"]) == 2 and w2["shape"][0] == w2["shape"][1] == w1["shape"][0]
assert b1["shape"] == [w1["shape"][0]] and b2["shape"] == [w2["shape"][0]]
assert any(".lora_A." in k for k in h)
PY' "the adapter should hold LoRA tensors and the projector under PEFT modules_to_save names"
# the trained projector differs from the base one
python3 - "$model" "$ad" >"$tmp/projdiff.txt" <<'PY'
import json, struct, sys, glob
def load(p, keep):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__" or "multi_modal_projector.linear_2.bias" not in k: continue
        s, e = v["data_offsets"]; raw = b[8 + n + s:8 + n + e]
        if v["dtype"] == "F32": out["b"] = struct.unpack("<%df" % (len(raw) // 4), raw)
        else: out["b"] = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
    return out["b"]
base = load(glob.glob(sys.argv[1] + "/*.safetensors")[0], 1)
new = load(sys.argv[2] + "/adapter_model.safetensors", 1)
print(max(abs(a - b) for a, b in zip(base, new)))
PY
check 'python3 -c "import sys; sys.exit(0 if float(open(\"$tmp/projdiff.txt\").read()) > 1e-4 else 1)"' \
  "the projector did not change: $(cat "$tmp/projdiff.txt")"

# --- -np 2 equals -np 1 with the same global batch (LoRA and projector)
dpo_np2_np1 np2 np1 "" "${opts[@]}" --epochs 3
d=$(st_diff "$tmp/np2/adapter/adapter_model.safetensors" "$tmp/np1/adapter/adapter_model.safetensors" "$proj")
check 'le "$d" 1e-4' "-np 2 and -np 1 projectors differ by $d of the largest value"
d=$(st_diff "$tmp/np2/adapter/adapter_model.safetensors" "$tmp/np1/adapter/adapter_model.safetensors" lora)
check 'le "$d" 1e-4' "-np 2 and -np 1 LoRA tensors differ by $d of the largest value"

# --- stop after 5 steps, resume: the same as uninterrupted
dpo_stop res "${opts[@]}" --epochs 3 --grad-accum 2
check 'grep -q modules_to_save "$tmp/res/checkpoint/adapter/adapter_config.json"' "the checkpoint's adapter should hold the projector"
dpo_resume res np1 "${opts[@]}" --epochs 3 --grad-accum 2
check '! grep -q "reference log-probs of .* scored" "$tmp/res2.log"' "the resumed run should take the references from the checkpoint"
check '[ "$(col "$tmp/res/metrics.csv" 3)" = "$(col "$tmp/np1/metrics.csv" 3)" ]' "resumed losses differ from the uninterrupted ones"

# --- corrupted state.bin: refused with a message (copies of the stopped run)
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 3 --grad-accum 2 --out "$tmp/bad" --stop-after 2 --quiet 2>/dev/null
for case in truncate byteorder oldformat garbage; do
  rm -rf "$tmp/bad_$case"
  cp -r "$tmp/bad" "$tmp/bad_$case"
  python3 - "$tmp/bad_$case/checkpoint/state.bin" "$case" <<'PY'
import sys
p, case = sys.argv[1], sys.argv[2]
b = bytearray(open(p, "rb").read())
if case == "truncate": b = b[:-12]
if case == "byteorder": b[12:16] = bytes(reversed(b[12:16]))
if case == "oldformat": b[0:8] = b"SIMADPO1"
if case == "garbage": b[0:8] = b"GARBAGE!"
open(p, "wb").write(b)
PY
  mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 3 --grad-accum 2 --out "$tmp/bad_$case" >"$tmp/bad_$case.log" 2>&1
  rc=$?
  case $case in
    truncate) want="truncated or corrupted" ;;
    byteorder) want="byte order" ;;
    oldformat) want="older sima-dpo" ;;
    garbage) want="not a sima-dpo checkpoint" ;;
  esac
  check '[ $rc -eq 1 ] && grep -q "state.bin.*$want" "$tmp/bad_$case.log"' \
    "$case state.bin: expected exit 1 and \"$want\", got $rc: $(tail -2 "$tmp/bad_$case.log")"
done
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 3 --grad-accum 2 --out "$tmp/bad_truncate" --no-resume --quiet 2>"$tmp/nores.log"
rc=$?
check '[ $rc -eq 0 ]' "--no-resume should start over past a corrupted checkpoint: $(cat "$tmp/nores.log")"

# --- the adapter reloads (projector included), and --merge equals base + adapter + projector
mpi 1 "$bin/sima-dpo" "${opts[@]}" --epochs 1 --adapter "$ad" --out "$tmp/cont" >"$tmp/cont.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q "the adapter.s projector" "$tmp/cont.log"' "--adapter with a projector failed or did not load it (rc $rc): $(cat "$tmp/cont.log")"
l1=$(col "$tmp/cont/metrics.csv" 3 | head -1)
check 'le "$l1" 0.3' "continuing from the trained adapter should start with a low loss, got $l1"
mpi 1 "$bin/sima-dpo" --model "$model" --pairs "$tmp/pairs_ref.h5" --prompts "$tmp/prompts.h5" \
  --adapter "$ad" --lr 0 --epochs 1 --micro-batch 8 --merge --out "$tmp/m1" >"$tmp/m1.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/m1/merged/model.safetensors" ] && [ -f "$tmp/m1/merged/tokenizer.json" ]' \
  "--merge with a projector failed: $(cat "$tmp/m1.log")"
mpi 1 "$bin/sima-dpo" --model "$tmp/m1/merged" --pairs "$tmp/pairs_ref.h5" --prompts "$tmp/prompts.h5" \
  --lora-r 8 --lr 0 --epochs 1 --micro-batch 8 --out "$tmp/m2" >"$tmp/m2.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "training on the merged model failed: $(cat "$tmp/m2.log")"
for c in 3 4 5; do
  a=$(col "$tmp/m1/metrics.csv" $c | head -1) b=$(col "$tmp/m2/metrics.csv" $c | head -1)
  check 'close "$a" "$b" 1e-4' "column $c: base + adapter + projector $a, merged model $b"
done
check 'le "$(col "$tmp/m1/metrics.csv" 3 | head -1)" 0.3' "the merged model should score the pairs as trained"
mpi 1 "$bin/sima-gen" --model "$tmp/m1/merged" --prompts "$tmp/prompts.h5" --out "$tmp/merged_resp.h5" \
  --max-new-tokens 8 --template llava_hf --quiet 2>"$tmp/gen2.log"
rc=$?
check '[ $rc -eq 0 ]' "sima-gen on the merged model failed: $(cat "$tmp/gen2.log")"

# --- SFT with the projector trained: the loss goes down, the adapter holds it
mpi 1 "$bin/sima-dpo" --mode sft --model "$model" --prompts "$tmp/prompts.h5" --train-projector \
  --lora-r 8 --lora-alpha 16 --lr 5e-3 --warmup-ratio 0.1 --epochs 4 --micro-batch 4 \
  --template llava_hf --out "$tmp/sft" >"$tmp/sft.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && grep -q modules_to_save "$tmp/sft/adapter/adapter_config.json"' \
  "--mode sft --train-projector failed or saved no projector (rc $rc): $(tail -3 "$tmp/sft.log")"
first=$(col "$tmp/sft/metrics.csv" 3 | head -1) last=$(col "$tmp/sft/metrics.csv" 3 | tail -1)
check 'le "$last" "$(python3 -c "print($first * 0.7)")"' "SFT loss did not go down: first $first, last $last"

# --- --train all: every weight; OUTDIR/model loads in sima-gen
aopts=(--model "$model" --pairs "$tmp/pairs.h5" --prompts "$tmp/prompts.h5" --lr 1e-3
       --warmup-ratio 0.1 --train all)
mpi 1 "$bin/sima-dpo" "${aopts[@]}" --epochs 5 --micro-batch 2 --out "$tmp/all" >"$tmp/all.log" 2>&1
rc=$?
check '[ $rc -eq 0 ] && [ -f "$tmp/all/model/model.safetensors" ] && [ -f "$tmp/all/model/config.json" ] && [ -f "$tmp/all/model/tokenizer.json" ] && [ ! -e "$tmp/all/adapter" ]' \
  "--train all failed or wrote no model folder (rc $rc): $(cat "$tmp/all.log")"
first=$(col "$tmp/all/metrics.csv" 3 | head -1)
last=$(col "$tmp/all/metrics.csv" 3 | tail -4 | awk '{s += $1} END {print s / NR}')
check 'le "$last" "$(python3 -c "print($first * 0.2)")"' "--train all: loss did not go down: first $first, last 4 $last"
mpi 1 "$bin/sima-gen" --model "$tmp/all/model" --prompts "$tmp/prompts.h5" --out "$tmp/all_resp.h5" \
  --max-new-tokens 8 --template llava_hf --quiet 2>"$tmp/gen3.log"
rc=$?
check '[ $rc -eq 0 ]' "sima-gen on the --train all model failed: $(cat "$tmp/gen3.log")"
# -np 2 equals -np 1 --grad-accum 2; stop + resume equals uninterrupted
dpo_np2_np1 all_np2 all_np1 "--train all " "${aopts[@]}" --epochs 2
d=$(st_diff "$tmp/all_np2/model/model.safetensors" "$tmp/all_np1/model/model.safetensors")
check 'le "$d" 1e-4' "--train all: -np 2 and -np 1 models differ by $d of the largest value"
mpi 1 "$bin/sima-dpo" "${aopts[@]}" --epochs 2 --grad-accum 2 --out "$tmp/all_res" --stop-after 3 --quiet 2>/dev/null
rc=$?
mpi 1 "$bin/sima-dpo" "${aopts[@]}" --epochs 2 --grad-accum 2 --out "$tmp/all_res" >"$tmp/all_res.log" 2>&1
rc2=$?
check '[ $rc -eq 3 ] && [ $rc2 -eq 0 ] && grep -q "resuming at step 3" "$tmp/all_res.log"' "--train all stop/resume failed ($rc, $rc2): $(tail -3 "$tmp/all_res.log")"
d=$(st_diff "$tmp/all_res/model/model.safetensors" "$tmp/all_np1/model/model.safetensors")
check 'le "$d" 1e-6' "--train all: resumed model differs from the uninterrupted one by $d"
# the saved weights are the trained ones: the pairs score as trained
mpi 1 "$bin/sima-dpo" --model "$tmp/all/model" --pairs "$tmp/pairs_ref.h5" --prompts "$tmp/prompts.h5" \
  --lora-r 8 --lr 0 --epochs 1 --micro-batch 8 --out "$tmp/all2" --quiet 2>"$tmp/all2.log"
rc=$?
check '[ $rc -eq 0 ] && le "$(col "$tmp/all2/metrics.csv" 3 | head -1)" 0.3' \
  "the --train all model should score the pairs as trained (rc $rc): $(col "$tmp/all2/metrics.csv" 3 | head -1)"
"$bin/sima-dpo" "${aopts[@]}" --lora-r 4 --out "$tmp/x" >"$tmp/x.log" 2>&1
rc=$?
check '[ $rc -eq 2 ] && grep -q "no LoRA options" "$tmp/x.log"' "--train all with --lora-r should be a usage error (rc $rc)"
"$bin/sima-dpo" "${aopts[@]}" --train-projector --out "$tmp/x" >"$tmp/x.log" 2>&1
rc=$?
check '[ $rc -eq 2 ]' "--train all with --train-projector should be a usage error (rc $rc)"

finish
