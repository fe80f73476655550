#!/usr/bin/env bash
# PNG images through the tools:
#  - sima-model image decodes PNGs written here (by a small Python encoder,
#    not libpng) to the pixels Pillow's convert("RGB") gives: RGB as is,
#    RGBA without its alpha, palette colours, 16-bit gray clipped to 255;
#  - a PNG holding exactly the decoded pixels of a golden JPEG gives the
#    same pixel_values as the JPEG;
#  - sima-prep import stores PNG bytes as they are (export --images gives
#    the files back), skips a truncated PNG and a non-image with reasons;
#  - sima-gen reads the PNG prompts: the greedy answer about the PNG equals
#    the one about the JPEG of the same pixels.
set -u
bin=${SIMA_BIN:?}
golden=${SIMA_GOLDEN_DIR:-$SIMA_GOLDEN_DEFAULT}
model=$golden/tiny-llava
. "$(dirname "$0")/lib.sh"

# h5dump a dataset as plain values, one per line
values() { h5dump -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr ',' '\n' | sed 's/^ *//;s/ *$//;/^$/d'; }

# pngwrite.py OUT W H COLOR_TYPE DEPTH SAMPLES_FILE [PALETTE_FILE]: a PNG of
# the samples (one integer per line, row-major, channels interleaved), every
# row with filter type 0, the stream in two IDAT chunks.
cat >"$tmp/pngwrite.py" <<'PY'
import struct, sys, zlib
out, w, h, ct, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
samples = [int(l) for l in open(sys.argv[6])]
nch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
raw = bytearray()
for y in range(h):
    raw.append(0)
    row = samples[y * w * nch:(y + 1) * w * nch]
    if depth == 16:
        for v in row: raw += struct.pack(">H", v)
    elif depth == 8:
        raw += bytes(row)
    else:
        bits = "".join(format(v, "0%db" % depth) for v in row)
        bits += "0" * (-len(bits) % 8)
        raw += bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
def chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 0))
if len(sys.argv) > 7:
    pal = [int(l) for l in open(sys.argv[7])]
    png += chunk(b"PLTE", bytes(pal))
    png += chunk(b"tRNS", bytes([0, 128]))
png += chunk(b"gAMA", struct.pack(">I", 100000))
z = zlib.compress(bytes(raw), 9)
png += chunk(b"IDAT", z[:len(z) // 2]) + chunk(b"IDAT", z[len(z) // 2:]) + chunk(b"IEND", b"")
open(out, "wb").write(png)
PY

# --- PNGs of known samples, with the RGB Pillow gives them worked out here
python3 - "$tmp" <<'PY'
import random, sys
d = sys.argv[1]
random.seed(3)
w, h = 23, 17
rgb = [random.randrange(256) for _ in range(w * h * 3)]
def save(name, samples, expect, pal=None):
    open("%s/%s.samples" % (d, name), "w").write("\n".join(map(str, samples)) + "\n")
    open("%s/%s.expect" % (d, name), "w").write("\n".join(map(str, expect)) + "\n")
    if pal: open("%s/%s.pal" % (d, name), "w").write("\n".join(map(str, pal)) + "\n")
save("rgb", rgb, rgb)
rgba = []
for i in range(w * h):
    rgba += rgb[i * 3:i * 3 + 3] + [random.randrange(256)]
save("rgba", rgba, rgb)                       # alpha dropped, not composited
pal = [random.randrange(256) for _ in range(16 * 3)]
idx = [random.randrange(16) for _ in range(w * h)]
save("pal", idx, [pal[i * 3 + c] for i in idx for c in range(3)], pal)
g16 = [random.choice([random.randrange(256), random.randrange(256, 65536)]) for _ in range(w * h)]
save("gray16", g16, [min(v, 255) for v in g16 for _ in range(3)])
PY
python3 "$tmp/pngwrite.py" "$tmp/rgb.png" 23 17 2 8 "$tmp/rgb.samples"
python3 "$tmp/pngwrite.py" "$tmp/rgba.png" 23 17 6 8 "$tmp/rgba.samples"
python3 "$tmp/pngwrite.py" "$tmp/pal.png" 23 17 3 4 "$tmp/pal.samples" "$tmp/pal.pal"
python3 "$tmp/pngwrite.py" "$tmp/gray16.png" 23 17 0 16 "$tmp/gray16.samples"

for name in rgb rgba pal gray16; do
  "$bin/sima-model" image "$tmp/$name.png" --out "$tmp/$name.h5" 2>"$tmp/err"
  rc=$?
  check '[ $rc -eq 0 ]' "sima-model image $name.png failed: $(cat "$tmp/err")"
  values "$tmp/$name.h5" decoded_rgb >"$tmp/$name.got"
  check 'cmp -s "$tmp/$name.got" "$tmp/$name.expect"' "$name.png: decoded pixels differ from Pillow's rule"
done

# --- a PNG of a JPEG's decoded pixels preprocesses exactly like the JPEG
# (a JPEG of the bundled folder, whatever SIMA_GOLDEN_DIR says: its 56x56
# size is written below)
jpg=${SIMA_GOLDEN_DEFAULT:?}/images/scene_56x56_444.jpg
"$bin/sima-model" image --model "$model" "$jpg" --out "$tmp/jpg.h5" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "sima-model image of the JPEG failed: $(cat "$tmp/err")"
values "$tmp/jpg.h5" decoded_rgb >"$tmp/scene.samples"
python3 "$tmp/pngwrite.py" "$tmp/scene.png" 56 56 2 8 "$tmp/scene.samples"
"$bin/sima-model" image --model "$model" "$tmp/scene.png" --out "$tmp/scene.h5" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "sima-model image of scene.png failed: $(cat "$tmp/err")"
check 'h5diff -q "$tmp/jpg.h5" "$tmp/scene.h5" /pixel_values /pixel_values' \
  "pixel_values of the PNG differ from the JPEG's"

# --- sima-prep import: PNG bytes stored as they are; bad PNGs skipped
mkdir -p "$tmp/images"
cp "$jpg" "$tmp/images/scene.jpg"
cp "$tmp/scene.png" "$tmp/rgba.png" "$tmp/pal.png" "$tmp/images/"
head -c 100 "$tmp/scene.png" >"$tmp/images/trunc.png"
printf 'GIF89a not a png' >"$tmp/images/fake.png"
python3 - "$tmp" <<'PY'
import json, sys
d = sys.argv[1]
imgs = ["scene.jpg", "scene.png", "rgba.png", "trunc.png", "pal.png", "fake.png"]
with open(d + "/prompts.jsonl", "w") as f:
    for i, im in enumerate(imgs):
        f.write(json.dumps({"id": "p%d" % i, "image": im, "text": "What is in the image?",
                            "ground_truth": "Shapes."}) + "\n")
PY
"$bin/sima-prep" import --format sima "$tmp/prompts.jsonl" --image-root "$tmp/images" \
  --out "$tmp/prompts.h5" >"$tmp/prep.log" 2>&1
rc=$?
check '[ $rc -eq 0 ]' "sima-prep import failed: $(cat "$tmp/prep.log")"
check 'grep -q "skipped 2 of 6 prompts" "$tmp/prep.log"' "skip count: $(cat "$tmp/prep.log")"
check 'grep -q "trunc.png: truncated PNG file" "$tmp/prompts.h5.report.txt"' \
  "report lacks the truncated PNG: $(cat "$tmp/prompts.h5.report.txt")"
check 'grep -q "fake.png: not a JPEG or PNG image" "$tmp/prompts.h5.report.txt"' \
  "report lacks the non-image: $(cat "$tmp/prompts.h5.report.txt")"
"$bin/sima-prep" export "$tmp/prompts.h5" --out "$tmp/back.jsonl" --images "$tmp/back" 2>"$tmp/err"
rc=$?
check '[ $rc -eq 0 ]' "export --images failed: $(cat "$tmp/err")"
for f in scene.jpg scene.png rgba.png pal.png; do
  check 'cmp -s "$tmp/images/$f" "$tmp/back/$f"' "$f not stored byte for byte"
done

# --- sima-gen: the PNG prompt gets the JPEG prompt's greedy answer
"$bin/sima-gen" --model "$model" --prompts "$tmp/prompts.h5" --candidates 1 \
  --max-new-tokens 16 --seed 1 --template llava_hf --quiet --out "$tmp/gen.h5" 2>"$tmp/gen.log"
rc=$?
check '[ $rc -eq 0 ]' "sima-gen failed: $(cat "$tmp/gen.log")"
"$bin/sima-prep" export "$tmp/gen.h5" --out "$tmp/gen.jsonl" 2>"$tmp/err"
python3 - "$tmp/gen.jsonl" <<'PY' && ok || bad "sima-gen answers: PNG and JPEG of the same pixels differ"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, rows
assert rows[0]["tokens"] == rows[1]["tokens"], (rows[0]["tokens"], rows[1]["tokens"])
PY

finish
