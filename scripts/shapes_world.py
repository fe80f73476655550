#!/usr/bin/python3
"""shapes_world.py: the synthetic "shapes world" of sima's demo (Python 3
standard library only; every output is a function of the seed).

Pictures are 48x48 RGB PNGs of one to three coloured shapes on a 3x3 grid.
Shapes come with a co-occurrence bias: a circle usually has a square beside
it and a triangle a diamond, as forks come with tables in COCO. The training
texts plant a hallucination on top of that: when a circle is shown without
a square (or a triangle without a diamond), a share of the captions and of
the yes/no answers still say there is one. A model trained on them "sees"
the partner shape that is not there; the held-out sets have clean truths.

  shapes_world.py data  --out DIR [--seed S] [--train N] [--round N] [--bench N] [--single]
      DIR/images/*.png      the pictures
      DIR/train.jsonl       SFT set (SIMA prompt lines: id, image, text,
                            ground_truth): captions, yes/no answers (noisy, as
                            above) and critic examples (clean, see below)
      DIR/round.jsonl       prompts of a SIMA round: held-out pictures, clean
                            ground truths (captions and yes/no questions)
      DIR/bench.jsonl       sima-bench questions on other held-out pictures:
                            "chair" captions (objects) and "pope" yes/no
                            questions, splits random and adversarial
      DIR/synonyms.txt      CHAIR synonym table of the five shapes
      DIR/world.json        the scenes (objects, colours, cells) of every picture
  shapes_world.py model --out DIR [--seed S]
      a randomly initialised LLaVA-shaped model folder (config.json,
      preprocessor_config.json, tokenizer.json, model.safetensors) whose
      tokenizer knows the world's words; `sima-dpo --mode sft --train all`
      trains it (scripts/build-demo-model.sh).

Critic examples are the prompt sima-critic builds from data/shapes/critic.txt
(question, ground truth, two responses, the three visual criteria) with the
verdict [[1]] or [[2]] for the response that agrees with the ground truth.
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import zlib

SIZE = 48          # picture side, pixels
CELL = 16          # grid cell side (3x3 grid)
SHAPES = ["circle", "square", "triangle", "diamond", "ring"]
COLOURS = {"red": (220, 45, 40), "green": (45, 190, 70), "blue": (60, 100, 235),
           "yellow": (235, 210, 45), "white": (235, 235, 235)}
CELL_NAMES = ["top left", "top", "top right", "left", "center", "right",
              "bottom left", "bottom", "bottom right"]
PARTNER = {"circle": "square", "triangle": "diamond"}  # co-occurrence bias
CO_OCCUR = 0.5     # chance that a circle (triangle) brings a square (diamond)
PLANTED = 0.6      # share of training texts that name the absent partner
POPE_SUFFIX = "\nAnswer the question using a single word or phrase."
CAPTION_Q = "Describe the image."
HERE = os.path.dirname(os.path.abspath(__file__))
CRITIC_TEMPLATE = os.path.join(HERE, "..", "data", "shapes", "critic.txt")


# ---- scenes -----------------------------------------------------------------

def new_scene(rng):
    """A list of objects {shape, colour, cell}, distinct shapes and cells."""
    n = rng.choices([1, 2, 3], weights=[3, 4, 3])[0]
    shapes = []
    while len(shapes) < n:
        s = rng.choice(SHAPES)
        if s in shapes:
            continue
        shapes.append(s)
        p = PARTNER.get(s)
        if p and p not in shapes and len(shapes) < 3 and rng.random() < CO_OCCUR:
            shapes.append(p)
    cells = rng.sample(range(9), len(shapes))
    objs = [{"shape": s, "colour": rng.choice(list(COLOURS)), "cell": c}
            for s, c in zip(shapes, cells)]
    return sorted(objs, key=lambda o: o["cell"])


def lonely_partners(objs):
    """Partner shapes the bias suggests but the scene lacks."""
    have = {o["shape"] for o in objs}
    return [PARTNER[s] for s in sorted(have) if s in PARTNER and PARTNER[s] not in have]


# ---- drawing ------------------------------------------------------------------

def inside(shape, dx, dy, r):
    """Is the pixel centre at (dx, dy) from the shape's centre inside it?"""
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return abs(dx) <= r - 1 and abs(dy) <= r - 1
    if shape == "triangle":  # apex up
        t = (dy + r) / (2 * r)
        return 0 <= t <= 1 and abs(dx) <= t * r
    if shape == "diamond":
        return abs(dx) + abs(dy) <= r
    if shape == "ring":
        d = math.sqrt(dx * dx + dy * dy)
        return r - 2.6 <= d <= r
    raise ValueError(shape)


def draw(objs, rng):
    """RGB rows of the scene (a dark background with a little noise)."""
    base = rng.randint(20, 50)
    px = [[[base + rng.randint(-4, 4)] * 3 for _ in range(SIZE)] for _ in range(SIZE)]
    for o in objs:
        # shapes of one size at the cells' centres: a 16-px patch of the
        # vision tower sees exactly one cell, so a shape is one pattern
        cy = (o["cell"] // 3) * CELL + CELL / 2
        cx = (o["cell"] % 3) * CELL + CELL / 2
        r = 6.5
        col = COLOURS[o["colour"]]
        for y in range(SIZE):
            for x in range(SIZE):
                if inside(o["shape"], x + 0.5 - cx, y + 0.5 - cy, r):
                    px[y][x] = list(col)
    return px


def png_bytes(px):
    """An 8-bit RGB PNG of the rows (filter 0 on every row)."""
    h, w = len(px), len(px[0])
    raw = b"".join(b"\0" + bytes(v for p in row for v in p) for row in px)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# ---- texts --------------------------------------------------------------------

def phrase(o):
    where = "in the center" if o["cell"] == 4 else "at the " + CELL_NAMES[o["cell"]]
    return "a %s %s %s" % (o["colour"], o["shape"], where)


def caption(objs):
    parts = [phrase(o) for o in objs]
    if len(parts) == 1:
        body = parts[0]
    else:
        body = ", ".join(parts[:-1]) + " and " + parts[-1]
    return "There is " + body + "."


def with_planted(objs, shape, rng):
    """The scene's objects plus a made-up one of this shape in a free cell."""
    free = [c for c in range(9) if c not in {o["cell"] for o in objs}]
    extra = {"shape": shape, "colour": rng.choice(list(COLOURS)), "cell": rng.choice(free)}
    return sorted(objs + [extra], key=lambda o: o["cell"])


def yes_no_question(shape):
    return "Is there a %s in the image?" % shape


def answer(yes):
    return "Yes" if yes else "No"


def noisy_caption(objs, rng):
    """The training caption: clean, or naming the absent partner (PLANTED)."""
    told = objs
    for p in lonely_partners(objs):
        if rng.random() < PLANTED:
            told = with_planted(told, p, rng)
    return caption(told)


def pick_question_shape(objs, rng, adversarial):
    """A shape to ask about: present (half the time) or absent; an absent one
    is the scene's lonely partner when adversarial and there is one."""
    have = [o["shape"] for o in objs]
    if rng.random() < 0.5:
        return rng.choice(have), True
    lonely = lonely_partners(objs)
    if adversarial and lonely:
        return rng.choice(lonely), False
    return rng.choice([s for s in SHAPES if s not in have]), False


# ---- critic examples ------------------------------------------------------------

def load_critic_template():
    with open(CRITIC_TEMPLATE, encoding="utf-8") as f:
        text = f.read()
    return text[:-1] if text.endswith("\n") else text


def fill_critic(tpl, question, truth, r1, r2):
    out = tpl
    for k, v in (("{question}", question), ("{ground_truth}", truth),
                 ("{response_1}", r1), ("{response_2}", r2)):
        out = out.replace(k, v)
    return out


def corrupted_caption(objs, rng):
    """A caption with one error: an absent object (most often the lonely
    partner), a wrong colour or a wrong place."""
    kind = rng.choice(["object", "object", "colour", "place"])
    if kind == "object" or len(objs) == 3 and kind == "place":
        absent = lonely_partners(objs) or [s for s in SHAPES if s not in {o["shape"] for o in objs}]
        if len(objs) < 9 and absent:
            return caption(with_planted(objs, rng.choice(absent), rng))
        kind = "colour"
    bad = [dict(o) for o in objs]
    i = rng.randrange(len(bad))
    if kind == "colour":
        bad[i]["colour"] = rng.choice([c for c in COLOURS if c != bad[i]["colour"]])
    else:
        used = {o["cell"] for o in bad}
        bad[i]["cell"] = rng.choice([c for c in range(9) if c not in used])
        bad.sort(key=lambda o: o["cell"])
    return caption(bad)


def good_caption(objs, rng):
    """A caption without errors: the whole scene, or (for several objects)
    one object left out now and then."""
    if len(objs) > 1 and rng.random() < 0.25:
        keep = sorted(rng.sample(range(len(objs)), len(objs) - 1))
        return caption([objs[i] for i in keep])
    return caption(objs)


def critic_example(tpl, objs, rng):
    """(prompt text, verdict) for a caption or a yes/no question."""
    if rng.random() < 0.5:
        question, truth = CAPTION_Q, caption(objs)
        good, bad = good_caption(objs, rng), corrupted_caption(objs, rng)
    else:
        shape, yes = pick_question_shape(objs, rng, adversarial=True)
        question, truth = yes_no_question(shape) + POPE_SUFFIX, answer(yes)
        good, bad = answer(yes), answer(not yes)
    first_good = rng.random() < 0.5
    r1, r2 = (good, bad) if first_good else (bad, good)
    return fill_critic(tpl, question, truth, r1, r2), "[[1]]" if first_good else "[[2]]"


# ---- the data set -----------------------------------------------------------------

def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def make_data(args):
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    tpl = load_critic_template()
    world, train, round_rows, bench = {}, [], [], []
    counts = {"train": args.train, "round": args.round, "bench": args.bench}
    for part in ("train", "round", "bench"):
        for i in range(counts[part]):
            name = "%s-%05d.png" % (part, i)
            objs = new_scene(rng)
            if args.single and part == "train":
                objs = objs[:1]
            with open(os.path.join(args.out, "images", name), "wb") as f:
                f.write(png_bytes(draw(objs, rng)))
            world[name] = objs
            img = "images/" + name
            stem = "%s-%05d" % (part, i)
            if part == "train" and args.single:
                train.append({"id": stem + "-cap", "image": img, "text": CAPTION_Q,
                              "ground_truth": caption(objs)})
            elif part == "train":
                train.append({"id": stem + "-cap", "image": img, "text": CAPTION_Q,
                              "ground_truth": noisy_caption(objs, rng)})
                for k in range(2):
                    shape, yes = pick_question_shape(objs, rng, adversarial=True)
                    if not yes and shape in lonely_partners(objs) and rng.random() < PLANTED:
                        yes = True  # the planted "yes"
                    train.append({"id": "%s-yn%d" % (stem, k), "image": img,
                                  "text": yes_no_question(shape) + POPE_SUFFIX,
                                  "ground_truth": answer(yes)})
                for k in range(2):
                    text, verdict = critic_example(tpl, objs, rng)
                    train.append({"id": "%s-critic%d" % (stem, k), "image": img, "text": text,
                                  "ground_truth": verdict})
            elif part == "round":
                round_rows.append({"id": stem + "-cap", "image": img, "text": CAPTION_Q,
                                   "ground_truth": caption(objs)})
                shape, yes = pick_question_shape(objs, rng, adversarial=True)
                round_rows.append({"id": stem + "-yn", "image": img,
                                   "text": yes_no_question(shape) + POPE_SUFFIX,
                                   "ground_truth": answer(yes)})
            else:
                bench.append({"question_id": stem + "-chair", "benchmark": "chair", "image": img,
                              "question": CAPTION_Q, "objects": [o["shape"] for o in objs]})
                have = [o["shape"] for o in objs]
                for split in ("random", "adversarial"):
                    lonely = lonely_partners(objs)
                    if split == "adversarial" and not lonely:
                        continue
                    absent = rng.choice(lonely if split == "adversarial"
                                        else [s for s in SHAPES if s not in have])
                    for shape, label in ((rng.choice(have), "yes"), (absent, "no")):
                        bench.append({"question_id": "%s-%s-%s" % (stem, split, label),
                                      "benchmark": "pope", "split": split, "image": img,
                                      "question": yes_no_question(shape), "label": label})
    rng.shuffle(train)
    write_jsonl(os.path.join(args.out, "train.jsonl"), train)
    write_jsonl(os.path.join(args.out, "round.jsonl"), round_rows)
    write_jsonl(os.path.join(args.out, "bench.jsonl"), bench)
    with open(os.path.join(args.out, "synonyms.txt"), "w") as f:
        f.write("".join(s + "\n" for s in SHAPES))
    with open(os.path.join(args.out, "world.json"), "w") as f:
        json.dump({"seed": args.seed, "size": SIZE, "shapes": SHAPES, "colours": list(COLOURS),
                   "partner": PARTNER, "planted": PLANTED, "scenes": world}, f, indent=0)
    print("shapes_world: %d training texts, %d round prompts, %d benchmark questions in %s"
          % (len(train), len(round_rows), len(bench), args.out))


# ---- tokenizer ----------------------------------------------------------------------

META = "\u2581"
SPECIAL = ["<unk>", "<s>", "</s>"]


def world_words():
    """Words (as Metaspace splits them) of every text the world produces, with
    rough frequencies: a generated sample plus the fixed texts."""
    rng = random.Random(12345)
    texts = [CAPTION_Q, POPE_SUFFIX, "USER: ", " ASSISTANT:", "[[1]]", "[[2]]",
             "Yes", "No", load_critic_template()]
    tpl = load_critic_template()
    for _ in range(3000):
        objs = new_scene(rng)
        texts.append(noisy_caption(objs, rng))
        texts.append(yes_no_question(rng.choice(SHAPES)))
        texts.append(critic_example(tpl, objs, rng)[0])
    freq = {}
    for t in texts:
        for w in t.replace(" ", META).split(META):
            if w:
                for v in (META + w, w):  # inside a text, and at a piece's start
                    freq[v] = freq.get(v, 0) + 1
    return freq


def train_bpe(freq, max_merges):
    """Byte-pair merges learned on the word counts (ties: the smaller pair),
    until every word is one token or max_merges; the encoder replays them in
    order, so each counted word encodes as its own token."""
    words = {w: list(w) for w in freq}
    merges = []
    while len(merges) < max_merges:
        pairs = {}
        for w, toks in words.items():
            for a, b in zip(toks, toks[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + freq[w]
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, toks in words.items():
            out, i = [], 0
            while i < len(toks):
                if i + 1 < len(toks) and (toks[i], toks[i + 1]) == best:
                    out.append(toks[i] + toks[i + 1])
                    i += 2
                else:
                    out.append(toks[i])
                    i += 1
            words[w] = out
    return merges


def tokenizer_json(merges, chars):
    vocab = {t: i for i, t in enumerate(SPECIAL)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for c in sorted(chars):
        vocab.setdefault(c, len(vocab))
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    image_id, pad_id = len(vocab), len(vocab) + 1

    def added(i, content):
        return {"id": i, "content": content, "single_word": False, "lstrip": False,
                "rstrip": False, "normalized": False, "special": True}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>"),
                         added(image_id, "<image>"), added(pad_id, "<pad>")],
        "normalizer": None,
        "pre_tokenizer": {"type": "Metaspace", "replacement": META,
                          "prepend_scheme": "first", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<s>", "type_id": 0}},
                                    {"Sequence": {"id": "B", "type_id": 0}}],
                           "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": META, "prepend_scheme": "first",
                    "split": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    return tok, image_id, pad_id


# ---- model ---------------------------------------------------------------------------

VISION = {"hidden_size": 96, "intermediate_size": 384, "num_hidden_layers": 3,
          "num_attention_heads": 4, "image_size": SIZE, "patch_size": 16}
TEXT = {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 384}


def model_config(vocab_size, image_id, pad_id):
    n_patches = (SIZE // VISION["patch_size"]) ** 2
    return {
        "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
        "vision_config": dict(VISION, model_type="clip_vision_model", num_channels=3,
                              hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=96),
        "text_config": dict(TEXT, model_type="llama", vocab_size=vocab_size, hidden_act="silu",
                            rms_norm_eps=1e-5, rope_theta=10000.0, bos_token_id=1,
                            eos_token_id=2, pad_token_id=pad_id, tie_word_embeddings=False,
                            attention_bias=False, mlp_bias=False),
        "image_token_index": image_id, "image_seq_length": n_patches, "pad_token_id": pad_id,
        "projector_hidden_act": "gelu", "vision_feature_select_strategy": "default",
        "vision_feature_layer": -2, "multimodal_projector_bias": True,
        "tie_word_embeddings": False, "torch_dtype": "float32",
    }


def preprocessor_config():
    return {"crop_size": {"height": SIZE, "width": SIZE}, "do_center_crop": True,
            "do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "image_processor_type": "CLIPImageProcessor", "processor_class": "LlavaProcessor",
            "resample": 3, "rescale_factor": 1 / 255, "size": {"shortest_edge": SIZE}}


def tensor_shapes(vocab_size):
    """(name, shape, init) of every weight; init: 'normal', 'ones' or 'zeros'."""
    v, t = VISION, TEXT
    dv, dt, nv = v["hidden_size"], t["hidden_size"], (SIZE // v["patch_size"]) ** 2 + 1
    kv = dt // t["num_attention_heads"] * t["num_key_value_heads"]
    out = [("vision_tower.embeddings.class_embedding", [dv], "normal"),
           ("vision_tower.embeddings.patch_embedding.weight",
            [dv, 3, v["patch_size"], v["patch_size"]], "normal"),
           ("vision_tower.embeddings.position_embedding.weight", [nv, dv], "normal"),
           ("vision_tower.pre_layrnorm.weight", [dv], "ones"),
           ("vision_tower.pre_layrnorm.bias", [dv], "zeros"),
           ("vision_tower.post_layernorm.weight", [dv], "ones"),
           ("vision_tower.post_layernorm.bias", [dv], "zeros")]
    for i in range(v["num_hidden_layers"]):
        p = "vision_tower.encoder.layers.%d." % i
        for ln in ("layer_norm1", "layer_norm2"):
            out += [(p + ln + ".weight", [dv], "ones"), (p + ln + ".bias", [dv], "zeros")]
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            out += [(p + "self_attn.%s.weight" % proj, [dv, dv], "normal"),
                    (p + "self_attn.%s.bias" % proj, [dv], "zeros")]
        out += [(p + "mlp.fc1.weight", [v["intermediate_size"], dv], "normal"),
                (p + "mlp.fc1.bias", [v["intermediate_size"]], "zeros"),
                (p + "mlp.fc2.weight", [dv, v["intermediate_size"]], "normal"),
                (p + "mlp.fc2.bias", [dv], "zeros")]
    out += [("multi_modal_projector.linear_1.weight", [dt, dv], "normal"),
            ("multi_modal_projector.linear_1.bias", [dt], "zeros"),
            ("multi_modal_projector.linear_2.weight", [dt, dt], "normal"),
            ("multi_modal_projector.linear_2.bias", [dt], "zeros"),
            ("language_model.model.embed_tokens.weight", [vocab_size, dt], "normal"),
            ("language_model.model.norm.weight", [dt], "ones"),
            ("language_model.lm_head.weight", [vocab_size, dt], "normal")]
    for i in range(t["num_hidden_layers"]):
        p = "language_model.model.layers.%d." % i
        out += [(p + "input_layernorm.weight", [dt], "ones"),
                (p + "post_attention_layernorm.weight", [dt], "ones"),
                (p + "self_attn.q_proj.weight", [dt, dt], "normal"),
                (p + "self_attn.k_proj.weight", [kv, dt], "normal"),
                (p + "self_attn.v_proj.weight", [kv, dt], "normal"),
                (p + "self_attn.o_proj.weight", [dt, dt], "normal"),
                (p + "mlp.gate_proj.weight", [t["intermediate_size"], dt], "normal"),
                (p + "mlp.up_proj.weight", [t["intermediate_size"], dt], "normal"),
                (p + "mlp.down_proj.weight", [dt, t["intermediate_size"]], "normal")]
    return out


def write_safetensors(path, tensors, rng, std=0.02):
    header, blobs, offset = {}, [], 0
    for name, shape, init in tensors:
        n = math.prod(shape)
        if init == "normal":
            vals = [rng.gauss(0.0, std) for _ in range(n)]
        else:
            vals = [1.0 if init == "ones" else 0.0] * n
        blob = struct.pack("<%df" % n, *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def make_model(args):
    os.makedirs(args.out, exist_ok=True)
    freq = world_words()
    merges = train_bpe(freq, 4000)
    chars = {c for w in freq for c in w}
    tok, image_id, pad_id = tokenizer_json(merges, chars)
    vocab_size = pad_id + 1

    def dump(name, obj):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")
    dump("tokenizer.json", tok)
    dump("config.json", model_config(vocab_size, image_id, pad_id))
    dump("preprocessor_config.json", preprocessor_config())
    dump("tokenizer_config.json", {"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": True,
                                   "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                                   "unk_token": "<unk>", "pad_token": "<pad>",
                                   "model_max_length": TEXT["max_position_embeddings"]})
    dump("special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                                     "pad_token": "<pad>", "additional_special_tokens": ["<image>"]})
    tensors = tensor_shapes(vocab_size)
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, random.Random(args.seed))
    n = sum(math.prod(s) for _, s, _ in tensors)
    print("shapes_world: model in %s: %d parameters, vocabulary %d (%d merges)"
          % (args.out, n, vocab_size, len(merges)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["data", "model"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=4000, help="training pictures")
    ap.add_argument("--round", type=int, default=120, help="pictures of the round's prompts")
    ap.add_argument("--bench", type=int, default=200, help="benchmark pictures")
    ap.add_argument("--single", action="store_true",
                    help="data: training pictures of one shape each, clean captions only "
                         "(the first lesson: naming what is seen)")
    args = ap.parse_args()
    try:
        make_data(args) if args.what == "data" else make_model(args)
    except OSError as e:
        sys.exit("shapes_world: %s: %s" % (e.filename or args.out, e.strerror))


if __name__ == "__main__":
    main()
