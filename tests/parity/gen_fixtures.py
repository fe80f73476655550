#!/usr/bin/env python3
"""Writes the scoring-parity fixtures: a few hundred answers per benchmark,
tricky ones included (punctuation, articles, number words, "Yes," prefixes,
letters with text, plurals and word pairs in captions), in two forms:

  OUT/sima/questions.jsonl, OUT/sima/answers.jsonl
      what `sima-bench score` reads (data/benchmarks/README.md);
  OUT/official/<benchmark>/...
      the same questions and answers in the files each official script
      reads (LLaVA's answer files hold the answer .strip()ped, as
      model_vqa*.py write it; sima-bench gets the raw text and strips it).

Deterministic: the same OUT every run (fixed seed, no clock).
usage: gen_fixtures.py OUT_DIR
"""
import json
import os
import random
import sys

SEED = 20240614

# --------------------------------------------------------------- helpers --


def write_jsonl(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


def pad(rng, text):
    """The raw answer a model might decode: blanks around it sometimes."""
    return rng.choice(["", "", "", " ", "\n", "  "]) + text + rng.choice(["", "", "", "\n", " "])


class Out:
    def __init__(self, root):
        self.root = root
        self.questions = []
        self.answers = []

    def add(self, q, raw_answer):
        q.setdefault("image", "images/none.jpg")
        self.questions.append(q)
        self.answers.append({"question_id": q["question_id"], "benchmark": q["benchmark"],
                             "text": raw_answer})

    def official(self, *parts):
        return os.path.join(self.root, "official", *parts)

    def finish(self):
        write_jsonl(os.path.join(self.root, "sima", "questions.jsonl"), self.questions)
        write_jsonl(os.path.join(self.root, "sima", "answers.jsonl"), self.answers)


# ------------------------------------------------------------------ POPE --

POPE_ANSWERS = [
    "Yes", "No", "yes", "no", "Yes.", "No.", "yes.", "no.", "YES", "NO", "No, there is not.",
    "Yes, there is a dog in the image.", "No, there is no cat in the image.",
    "There is no dog in the image.", "There is a dog. No cat.", "Yes. No.", "No. Yes.",
    "not sure", "Not sure", "I do not think so", "I don't think so", "Nope", "None",
    "no,", "No,", "No!", "yes, no", "Yes,no", "yes\nno", "no\nyes", "No\n", "Yes\n",
    "nothing", "cannot tell", "Noted", "not.", "Not.", "Yes - no", "There's no cat",
    "The image does not show a cat.", "In the image, no", "No there is not", "NO.",
    "Yes, but not clearly.", "It is not present.", "no cat", "Maybe", "",
    "Yes,, no", "no.yes", "1", "0", "No cat is visible.", "A cat? No.",
]


def gen_pope(o, rng):
    qrows, arows = [], []
    for split in ("adversarial", "popular", "random"):
        labels = []
        for k in range(110):
            qid = len(qrows)
            label = "yes" if k % 2 == 0 else "no"
            text = POPE_ANSWERS[k % len(POPE_ANSWERS)] if k < 2 * len(POPE_ANSWERS) else \
                rng.choice(POPE_ANSWERS)
            raw = pad(rng, text)
            labels.append({"question_id": k, "image": "COCO_val2014_%012d.jpg" % k,
                           "text": "Is there a dog in the image?", "label": label})
            qrows.append({"question_id": qid, "image": "COCO_val2014_%012d.jpg" % k,
                          "text": "Is there a dog in the image?\nAnswer the question using a single word or phrase.",
                          "category": split})
            arows.append({"question_id": qid, "prompt": qrows[-1]["text"], "text": raw.strip()})
            o.add({"question_id": "%s-%d" % (split, k), "benchmark": "pope", "split": split,
                   "question": "Is there a dog in the image?", "label": label}, raw)
        write_jsonl(o.official("pope", "coco", "coco_pope_%s.json" % split), labels)
    write_jsonl(o.official("pope", "llava_pope_test.jsonl"), qrows)
    write_jsonl(o.official("pope", "answers.jsonl"), arows)


# ------------------------------------------------------------------- MME --

MME_SUBTASKS = ["existence", "count", "position", "color", "posters", "celebrity", "scene",
                "landmark", "artwork", "OCR", "commonsense_reasoning", "numerical_calculation",
                "text_translation", "code_reasoning"]
MME_ANSWERS = [
    "Yes", "No", "yes", "no", "Yes.", "No.", "YES", "NO", "Yes, it is.", "No, it is not.",
    "Not sure", "not", "nope", "None", "yes and no", "no, yes", "The answer is yes.",
    "Noted", "Ye", "N", "Nyes", "y", "Yesterday", "nobody", "  yes", "Yes!", "no!",
    "I cannot tell", "There is no such object.", "Maybe", "Certainly", "YES.", "No..",
]


def gen_mme(o, rng):
    exp = "parity"
    answers = []
    for si, sub in enumerate(MME_SUBTASKS):
        # images/ + questions_answers_YN/ for some subtasks, side by side for the others
        nested = si % 2 == 0
        base = o.official("mme", "MME_Benchmark_release_version", sub)
        qa_dir = os.path.join(base, "questions_answers_YN") if nested else base
        os.makedirs(os.path.join(base, "images") if nested else base, exist_ok=True)
        os.makedirs(qa_dir, exist_ok=True)
        for img in range(12):
            stem = "%s_%03d" % (sub[:4], img)
            lines = []
            for k, gt in enumerate(("Yes", "No")):
                question = "Is item %d of %s shown in the picture? Please answer yes or no." % (k, stem)
                lines.append("%s\t%s\n" % (question, gt))
                text = rng.choice(MME_ANSWERS)
                raw = pad(rng, text)
                qid = "%s/%s.jpg" % (sub, stem)
                answers.append({"question_id": qid,
                                "prompt": question + "\nAnswer the question using a single word or phrase.",
                                "text": raw.strip()})
                o.add({"question_id": "%s/%s.jpg/%d" % (sub, stem, k), "benchmark": "mme",
                       "subtask": sub, "image": "mme/%s/%s.jpg" % (sub, stem),
                       "question": question, "label": gt.lower()}, raw)
            with open(os.path.join(qa_dir, stem + ".txt"), "w", encoding="utf-8") as f:
                f.writelines(lines)
    write_jsonl(o.official("mme", "answers", exp + ".jsonl"), answers)


# ------------------------------------------------------------ VQA family --

# (prediction, ten ground-truth answers) templates; every prediction form is
# also tried against every answer set below.
VQA_PREDICTIONS = [
    "two", "2", "Two.", "two dogs", "The dog", "a dog", "an apple", "dog's", "dogs'",
    "Yes", "yes.", "Yes, it is", "no", "No.", "none", "zero", "0", "ten", "10", "ten.",
    "10%", "3.5", "3.50", "1,000", "1000", "5 p.m.", "5pm", "a.m.", "U.S.A.", "usa",
    "don't", "dont", "can't", "cant", "its", "it's", "it 's", "Coca-Cola", "coca cola",
    "cocacola", "e-mail", "email", "mr. smith", "Mr Smith", "(red)", "red!", "red?",
    "\"stop\"", "stop", "left/right", "left right", "#1", "@home", "$5", "5$", "3:00",
    "1/2", "half", "T-shirt", "t shirt", "black and white", "black & white", "A.B.C.",
    "abc", "the the", "one one", "eleven", "11", "youre", "you're", "whats", "what's",
    "ok.", "o.k.", "i.e.", "nine.", "9.", "Nine", "3..5", "..", ".", "", "yes\nno",
    "red\tblue", "tshirt", "Pizza Hut", "pizza hut's", "nike's logo", "a", "an", "the",
]
VQA_GT_SETS = [
    ["2", "2", "two", "2", "2", "2", "2", "two", "2", "3"],
    ["dog", "dog", "dogs", "dog", "the dog", "dog", "puppy", "dog", "a dog", "dog"],
    ["yes", "yes", "yes", "yes", "no", "yes", "yes", "yes", "yes", "yes"],
    ["no", "no", "no", "No", "no", "no.", "no", "nope", "no", "no"],
    ["0", "0", "none", "zero", "0", "0", "nothing", "0", "0", "none"],
    ["10", "10", "ten", "10", "10", "10", "10", "10", "10", "10"],
    ["10%", "10 %", "10%", "10 percent", "10%", "10%", "ten percent", "10%", "10%", "10%"],
    ["3.5", "3.5", "3.50", "3.5", "3.5", "3.5", "3,5", "3.5", "3 5", "3.5"],
    ["1,000", "1000", "1000", "1,000", "1000", "1000", "1 000", "1000", "1000", "one thousand"],
    ["5 pm", "5:00", "5 p.m.", "5pm", "5 pm", "5 pm", "5", "5 pm", "5:00 pm", "5 pm"],
    ["usa", "usa", "u.s.a.", "united states", "usa", "us", "usa", "america", "usa", "usa"],
    ["don't", "dont", "do not", "don't", "don't", "dont", "don't", "don't", "do not", "don't"],
    ["coca cola", "coca-cola", "coke", "coca cola", "coca cola", "coca-cola", "coca cola",
     "cocacola", "coca cola", "coca cola"],
    ["email", "e-mail", "email", "email", "e mail", "email", "email", "mail", "email", "email"],
    ["mr smith", "mr. smith", "smith", "mr smith", "mr smith", "mr. smith", "smith",
     "mr smith", "mr smith", "mr smith"],
    ["red", "red", "red", "red", "maroon", "red", "red", "red", "dark red", "red"],
    ["stop", "stop", "stop", "stop sign", "stop", "stop", "stop", "stop", "stop", "stop"],
    ["left", "left", "right", "left", "left", "left/right", "left", "left", "left", "left"],
    ["1", "#1", "1", "1", "number 1", "1", "one", "1", "1", "1"],
    ["3:00", "3:00", "3", "3:00", "3 00", "3:00", "3:00", "3:00", "3:00", "3 o'clock"],
    ["t shirt", "t-shirt", "tshirt", "t shirt", "shirt", "t-shirt", "t shirt", "t shirt",
     "t shirt", "t-shirt"],
    ["black and white", "black & white", "black white", "black and white", "black and white",
     "gray", "black and white", "black and white", "bw", "black and white"],
    ["pizza hut", "pizza hut", "pizza hut's", "pizzahut", "pizza hut", "pizza hut",
     "pizza hut", "pizza", "pizza hut", "pizza hut"],
    ["it's", "its", "it is", "it's", "its", "it's", "its", "it's", "it's", "it's"],
    ["", "unanswerable", "unanswerable", "unanswerable", "unsuitable", "unanswerable",
     "unanswerable", "", "unanswerable", "unanswerable"],
]


def vqa_pairs(rng, n):
    pairs = []
    for i in range(n):
        gts = VQA_GT_SETS[i % len(VQA_GT_SETS)]
        if i < len(VQA_PREDICTIONS):
            pred = VQA_PREDICTIONS[i]
        else:
            pred = rng.choice(VQA_PREDICTIONS + [rng.choice(gts)])
        pairs.append((pred, gts))
    return pairs


def gen_textvqa(o, rng):
    data, results = [], []
    for i, (pred, gts) in enumerate(vqa_pairs(rng, 320)):
        image_id = "img%04d" % i
        question = "What is written on sign %d?" % i
        data.append({"question_id": 1000 + i, "image_id": image_id, "question": question,
                     "answers": gts})
        raw = pad(rng, pred)
        prompt = question + "\nReference OCR token: STOP, sign\nAnswer the question using a single word or phrase."
        results.append({"question_id": image_id, "prompt": prompt, "text": raw.strip()})
        o.add({"question_id": str(1000 + i), "benchmark": "textvqa", "question": prompt,
               "answers": gts}, raw)
    write_json(o.official("textvqa", "TextVQA_0.5.1_val.json"), {"data": data})
    write_jsonl(o.official("textvqa", "answers.jsonl"), results)


def gen_vqav2(o, rng):
    split, results, gt = [], [], {}
    for i, (pred, gts) in enumerate(vqa_pairs(rng, 320)):
        qid = 5000000 + i
        raw = pad(rng, pred)
        split.append({"question_id": qid, "image": "COCO_val2014_%012d.jpg" % i,
                      "text": "Question %d?" % i})
        results.append({"question_id": qid, "text": raw.strip()})
        gt[str(qid)] = gts
        o.add({"question_id": str(qid), "benchmark": "vqav2", "question": "Question %d?" % i,
               "answers": gts}, raw)
    d = o.official("vqav2")
    write_jsonl(os.path.join(d, "llava_vqav2_mscoco_test2015.jsonl"), split)
    write_jsonl(os.path.join(d, "answers", "parity", "llava", "merge.jsonl"), results)
    write_json(os.path.join(d, "gt.json"), gt)


def gen_vizwiz(o, rng):
    split, results, gt = [], [], {}
    for i, (pred, gts) in enumerate(vqa_pairs(rng, 300)):
        image = "VizWiz_val_%08d.jpg" % i
        raw = pad(rng, pred)
        split.append({"question_id": image, "image": image, "text": "What is this?"})
        results.append({"question_id": image, "text": raw.strip()})
        gt[image] = gts
        o.add({"question_id": image, "benchmark": "vizwiz", "question": "What is this?",
               "answers": gts}, raw)
    write_jsonl(o.official("vizwiz", "llava_test.jsonl"), split)
    write_jsonl(o.official("vizwiz", "answers.jsonl"), results)
    write_json(o.official("vizwiz", "gt.json"), gt)


# ------------------------------------------------------------------- GQA --

GQA_PAIRS = [
    ("Yes", "yes"), ("yes.", "yes"), ("Yes.", "yes"), ("YES", "yes"), ("No", "no"),
    ("no..", "no"), ("The dog.", "dog"), ("dog", "dog"), ("Dog", "dog"), ("dog .", "dog"),
    ("dog. ", "dog"), ("left", "left"), ("Left.", "left"), ("left side", "left"),
    ("2", "2"), ("two", "2"), ("white and black", "white"), ("t-shirt", "t-shirt"),
    ("T-Shirt.", "t-shirt"), ("man's", "man"), ("...", ""), (".", "yes"), ("", "no"),
    ("yes\n", "yes"), ("a table", "table"), ("table", "table"), ("Table...", "table"),
    ("dog\n.", "dog"), ("No.\n", "no"), ("bus.", "bus"),
]


def gen_gqa(o, rng):
    questions, answers = {}, []
    for i in range(300):
        pred, gold = GQA_PAIRS[i] if i < len(GQA_PAIRS) else rng.choice(GQA_PAIRS)
        if i >= len(GQA_PAIRS) and rng.random() < 0.3:
            gold = rng.choice(["yes", "no", "dog", "left"])
        qid = "%08d" % (20000000 + i)
        structural = rng.choice(["query", "verify", "logical", "choose", "compare"])
        questions[qid] = {
            "imageId": "n%06d" % i, "question": "Is there a thing number %d?" % i,
            "answer": gold, "fullAnswer": gold, "isBalanced": True,
            "semantic": [{"operation": "select", "argument": "thing", "dependencies": []},
                         {"operation": "exist", "argument": "?", "dependencies": [0]}],
            "types": {"structural": structural, "semantic": rng.choice(["obj", "attr", "rel"]),
                      "detailed": "existThat"},
            "groups": {"global": rng.choice([None, "thing"]), "local": "02q-thing"},
            "annotations": {"question": {}, "answer": {}, "fullAnswer": {}},
            "entailed": [], "equivalent": [qid],
        }
        raw = pad(rng, pred)
        answers.append({"question_id": qid, "text": raw.strip()})
        o.add({"question_id": qid, "benchmark": "gqa", "question": questions[qid]["question"],
               "answer": gold}, raw)
    write_json(o.official("gqa", "testdev_balanced_questions.json"), questions)
    write_jsonl(o.official("gqa", "answers.jsonl"), answers)


# -------------------------------------------------------------- ScienceQA --

SQA_ANSWERS = [
    "A", "B", "C", "D", "E", "A.", "B. dog", "C. The cat", "(A)", "A)", "a", "b",
    "The answer is A.", "The answer is B", "The answer is C.\nBecause", "The answer is (B).",
    "The answer is B. The answer is C.", "The answer is Apple.", "The answer is AB.",
    "The answer is E.", "Answer: A", "A. B. C.", "A.B", "A .", "D\n", " B", "B\nC",
    "The correct answer is B.", "the answer is b.", "The answer is D", "E. none",
    "A, B", "AB", "", "F", "The answer is F.", "B.\n", "C. ", "The answer is  C.",
]


def gen_scienceqa(o, rng):
    problems, split, results = {}, [], []
    for i in range(300):
        pid = str(4000 + i)
        n = 2 + i % 4
        choices = ["option %d of %d" % (k, i) for k in range(n)]
        gold = rng.randrange(n)
        problems[pid] = {"question": "Which is right (%d)?" % i, "choices": choices,
                         "answer": gold, "hint": "", "image": "image.png", "subject":
                         rng.choice(["natural science", "social science", "language science"]),
                         "split": "test"}
        split.append(pid)
        text = SQA_ANSWERS[i] if i < len(SQA_ANSWERS) else rng.choice(SQA_ANSWERS)
        raw = pad(rng, text)
        prompt = "<image>\n" + problems[pid]["question"]
        results.append({"question_id": pid, "prompt": prompt, "text": raw.strip()})
        o.add({"question_id": pid, "benchmark": "scienceqa", "question": problems[pid]["question"],
               "options": choices, "answer": "ABCDE"[gold]}, raw)
    write_json(o.official("scienceqa", "problems.json"), problems)
    write_json(o.official("scienceqa", "pid_splits.json"), {"test": split})
    write_jsonl(o.official("scienceqa", "answers.jsonl"), results)


# -------------------------------------------------------------- SEED-Bench --

SEED_ANSWERS = ["A", "B", "C", "D", "A.", "B.", "(C)", "D)", "a", "The answer is A.",
                "A. dog", "B\n", " C", "E", "", "AB", "Option B", "c."]


def gen_seed(o, rng):
    qs, results = [], []
    types = {"Scene Understanding": 1, "Instance Identity": 2, "Instance Attributes": 3,
             "Action Recognition": 10}
    for i in range(330):
        video = i % 11 == 10
        gold = "ABCD"[rng.randrange(4)]
        qtype = 10 if video else rng.choice([1, 2, 3])
        q = {"question_id": str(90000 + i), "question": "Pick %d" % i, "answer": gold,
             "choice_a": "apple %d" % i, "choice_b": "boat %d" % i, "choice_c": "cat %d" % i,
             "choice_d": "dog %d" % i, "data_id": "%d.jpg" % i,
             "data_type": "video" if video else "image", "question_type_id": qtype}
        qs.append(q)
        text = SEED_ANSWERS[i] if i < len(SEED_ANSWERS) else rng.choice(SEED_ANSWERS + [gold] * 4)
        raw = pad(rng, text)
        results.append({"question_id": 90000 + i, "text": raw.strip()})
        if not video:
            o.add({"question_id": q["question_id"], "benchmark": "seed", "question": q["question"],
                   "options": [q["choice_a"], q["choice_b"], q["choice_c"], q["choice_d"]],
                   "answer": gold}, raw)
    write_json(o.official("seed", "SEED-Bench.json"), {"questions": qs, "question_type": types})
    write_jsonl(o.official("seed", "answers.jsonl"), results)


# ---------------------------------------------------------------- MMBench --

MMB_ANSWERS = [
    "A", "B", "C", "D", "A.", "(B)", "C)", "D. apple", "The answer is B.", "Answer: C",
    "B is correct", "I think the answer is A, because the dog is brown.",
    "The correct option is C. It shows a cat.", "A B", "A and B", "apple", "banana",
    "APPLE", "It is an apple.", "the boat", "Z", "Cannot determine the answer",
    "I'm sorry, but without the image provided I cannot say.", "", "E", "a", "b.",
    "Option D", "D: dog", "[C]", "**A**", "#B", "{D}", "B;", "C!", "A - apple",
    "The image shows a cat and a dog, so the answer is D.", "A cat.", "cat dog",
    "A quick look shows the answer is C", "apple boat", "there are two apples",
]
MMB_OPTIONS = [["apple", "boat", "cat", "dog"], ["red", "green", "blue", "yellow"],
               ["one", "two", "three"], ["yes", "no"], ["a cat", "a dog", "a bird", "a fish"]]


def gen_mmbench(o, rng):
    import csv
    cols = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "source",
            "l2-category", "comment", "split", "image"]
    rows, preds = [], []
    for base in range(80):
        opts = MMB_OPTIONS[base % len(MMB_OPTIONS)]
        gold = rng.randrange(len(opts))
        for rot in range(min(len(opts), 4)):
            index = base + rot * 1000000
            shifted = opts[rot:] + opts[:rot]
            g = (gold - rot) % len(opts)
            row = {"index": index, "question": "Which one %d?" % base, "hint": "nan",
                   "answer": "ABCD"[g], "category": "cat%d" % (base % 3), "source": "src",
                   "l2-category": "l2", "comment": "", "split": "dev", "image": "iVBORw0KGgo="}
            for k, letter in enumerate("ABCD"):
                row[letter] = shifted[k] if k < len(shifted) else ""
            rows.append(row)
            pick = rng.random()
            if pick < 0.35:
                text = "ABCD"[g]
            elif pick < 0.5:
                text = shifted[g]
            else:
                text = rng.choice(MMB_ANSWERS)
            raw = pad(rng, text)
            preds.append({"question_id": index, "text": raw.strip()})
            o.add({"question_id": str(index), "benchmark": "mmbench", "index": index,
                   "question": row["question"], "options": shifted, "answer": "ABCD"[g]}, raw)
    path = o.official("mmbench", "mmbench_dev_20230712.tsv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter="\t")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    write_jsonl(o.official("mmbench", "answers", "parity.jsonl"), preds)


# ------------------------------------------------------------------- CHAIR --

# COCO category names (the instance annotations' "name"), a caption word
# pool with plurals, pairs and look-alikes, and sentence frames.
COCO_NAMES = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck",
              "boat", "traffic light", "fire hydrant", "stop sign", "bench", "bird", "cat",
              "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
              "umbrella", "handbag", "tie", "suitcase", "skis", "sports ball", "kite",
              "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "bowl",
              "banana", "sandwich", "pizza", "donut", "cake", "chair", "couch", "bed",
              "dining table", "toilet", "tv", "laptop", "cell phone", "oven", "sink",
              "refrigerator", "book", "clock", "vase", "scissors", "teddy bear"]
CAPTION_WORDS = [
    "man", "men", "woman", "women", "people", "person", "persons", "child", "children",
    "kids", "boy", "girls", "player", "skiers", "baby", "adult", "passenger", "passengers",
    "dog", "dogs", "puppy", "puppies", "cat", "cats", "kitten", "horse", "horses", "sheep",
    "cow", "cows", "cattle", "oxen", "elephant", "elephants", "bear", "bears", "zebra",
    "zebras", "giraffe", "giraffes", "bird", "birds", "geese", "ducks", "bus", "buses",
    "car", "cars", "truck", "trucks", "train", "trains", "boat", "boats", "bike", "bikes",
    "bicycle", "motorcycle", "motorbike", "scooter", "plane", "airplane", "jet", "jets",
    "table", "tables", "desk", "chair", "chairs", "seat", "seats", "stool", "couch",
    "couches", "sofa", "bench", "benches", "bed", "beds", "toilet", "toilets", "sink",
    "tv", "tvs", "television", "laptop", "laptops", "computer", "phone", "phones",
    "cellphone", "knife", "knives", "fork", "forks", "spoon", "cup", "cups", "glass",
    "glasses", "bottle", "bottles", "bowl", "bowls", "plate", "banana", "bananas", "apple",
    "apples", "orange", "oranges", "pizza", "pizzas", "sandwich", "sandwiches", "donut",
    "donuts", "doughnut", "cake", "cakes", "cupcake", "broccoli", "carrot", "carrots",
    "hotdog", "tie", "ties", "bow", "umbrella", "umbrellas", "kite", "kites", "ski", "skis",
    "snowboard", "surfboard", "surfboards", "skateboard", "racket", "ball", "balls",
    "frisbee", "suitcase", "luggage", "bag", "handbag", "purse", "backpack", "book",
    "books", "clock", "clocks", "vase", "vases", "scissors", "mouse", "mice", "remote",
    "keyboard", "oven", "stove", "microwave", "toaster", "refrigerator", "fridge",
    "teddy", "bears", "hydrant", "mirror", "window", "tree", "trees", "grass", "sky",
    "building", "street", "road", "water", "wall", "field", "floor", "room", "kitchen",
    "this", "is", "his", "its", "us", "bus's", "dog's", "dogs'", "t-shirt", "hot-dog",
    "ski-lift", "dining", "teddybear", "hairdryer", "toothbrush", "toothbrushes",
]
PAIRS = ["hot dog", "hot dogs", "teddy bear", "teddy bears", "baby elephant", "adult giraffe",
         "baby bird", "passenger train", "passenger jet", "bow tie", "toilet seat",
         "wine glass", "wine glasses", "stop sign", "stop signs", "fire hydrant",
         "traffic light", "traffic lights", "cell phone", "cell phones", "home plate",
         "train track", "train tracks", "tennis racket", "sports ball", "potted plant",
         "dining table", "dining tables", "parking meter", "motor bike", "air plane",
         "baseball bat", "baseball glove", "laptop computer", "mobile phone", "suit case",
         "street light", "stop light", "hair drier", "baby cub"]
FRAMES = [
    "a {0} next to a {1}.", "The {0} is on the {1}", "There are {0} and {1} in the image.",
    "{0}, {1}, and {2}.", "A {0} sitting on a {1}; a {2} nearby!", "two {0} near three {1}",
    "The image shows a {0}. It also has a {1}. A {2} is visible.",
    "In the picture: {0}/{1} ({2})", "A \"{0}\" with a {1}'s {2}.", "{0}-{1} {2}",
    "A {0}... and a {1}?", "Mr. {0} holds a {1}.", "a {0}.The {1} is red.",
    "The seat of the toilet is near a {0}.", "{0}'s {1} is on the {2} .", "{0}",
]


def caption(rng):
    frame = rng.choice(FRAMES)
    words = [rng.choice(CAPTION_WORDS + PAIRS) for _ in range(3)]
    text = frame.format(*words)
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def gen_chair(o, rng):
    cats = [{"id": i + 1, "name": n, "supercategory": "x"} for i, n in enumerate(COCO_NAMES)]
    images, anns, caps, evals = [], [], [], []
    for i in range(300):
        imid = 100000 + i
        truth = sorted(set(rng.sample(COCO_NAMES, rng.randint(1, 6))))
        images.append({"id": imid, "file_name": "COCO_val2014_%012d.jpg" % imid})
        for name in truth:
            anns.append({"id": len(anns) + 1, "image_id": imid,
                         "category_id": COCO_NAMES.index(name) + 1})
        caps.append({"id": i + 1, "image_id": imid, "caption": "A photo."})
        text = caption(rng)
        raw = pad(rng, text)
        evals.append({"image_id": imid, "caption": raw.strip()})
        o.add({"question_id": str(imid), "benchmark": "chair",
               "question": "Please describe this image in detail.", "objects": truth}, raw)
    d = o.official("chair", "annotations")
    empty = {"info": {}, "licenses": [], "images": [], "annotations": []}
    write_json(os.path.join(d, "instances_val2014.json"),
               {"info": {}, "licenses": [], "images": images, "annotations": anns,
                "categories": cats})
    write_json(os.path.join(d, "instances_train2014.json"), dict(empty, categories=cats))
    write_json(os.path.join(d, "captions_val2014.json"),
               {"info": {}, "licenses": [], "images": images, "annotations": caps})
    write_json(os.path.join(d, "captions_train2014.json"), empty)
    write_jsonl(o.official("chair", "captions.jsonl"), evals)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    o = Out(sys.argv[1])
    gens = [gen_pope, gen_mme, gen_textvqa, gen_vqav2, gen_vizwiz, gen_gqa, gen_scienceqa,
            gen_seed, gen_mmbench, gen_chair]
    for k, g in enumerate(gens):
        g(o, random.Random(SEED + k))
    o.finish()


if __name__ == "__main__":
    main()
