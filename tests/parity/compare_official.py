#!/usr/bin/env python3
"""Scores the fixtures of gen_fixtures.py twice, with the official evaluation
scripts and with `sima-bench score`, and compares every number: the
metrics per benchmark (and per split / subtask where the script gives
them) and, where the script exposes them, the per-answer decisions.

usage: compare_official.py OFFICIAL_DIR FIXTURES_DIR SIMA_BENCH WORK_DIR

OFFICIAL_DIR is laid out as fetch-official-eval.sh writes it (see
tests/parity/README.md). The official scripts are run unmodified, in this
interpreter, with their own command lines (runpy), from a copy of their
inputs under WORK_DIR; where a script prints a number rounded, the full
value is read from the script's own variables after it ran. What the
harness adds is written next to each benchmark below: only how the inputs
are handed over, never a scoring rule.

Exit status: 0 every compared number agrees, 1 a difference (each listed),
77 nothing could be compared (the reason is printed).
"""
import contextlib
import io
import json
import os
import pickle
import re
import runpy
import shutil
import subprocess
import sys
import types

REL_TOL = 1e-9

# ------------------------------------------------------------- the report --


class Report:
    def __init__(self):
        self.rows = {}      # bench -> {"answers", "numbers", "samples", "diffs": [..]}
        self.not_run = {}   # bench -> reason

    def bench(self, name):
        return self.rows.setdefault(name, {"answers": 0, "numbers": 0, "samples": 0, "diffs": []})

    def number(self, bench, what, official, sima, digits=None):
        """official vs sima: equal within REL_TOL, or, when the script prints
        only `digits` decimals, sima printed the same way."""
        b = self.bench(bench)
        b["numbers"] += 1
        if official is None or sima is None:
            ok = official is None and sima is None
        elif digits is not None:
            ok = ("%.*f" % (digits, sima)) == official
        else:
            ok = abs(official - sima) <= REL_TOL * max(1.0, abs(official), abs(sima))
        if not ok:
            b["diffs"].append("%s: official %r, sima %r" % (what, official, sima))

    def sample(self, bench, qid, what, official, sima, answer):
        b = self.bench(bench)
        b["samples"] += 1
        if official != sima:
            b["diffs"].append("%s %s: official %r, sima %r (answer %r)" %
                              (qid, what, official, sima, answer))

    def skip(self, bench, reason):
        self.not_run[bench] = reason

    def print(self):
        print("benchmark | answers | numbers compared | per-answer decisions compared | differences")
        failed = False
        for name in sorted(self.rows):
            b = self.rows[name]
            print("%s | %d | %d | %d | %d" % (name, b["answers"], b["numbers"], b["samples"],
                                             len(b["diffs"])))
            failed |= bool(b["diffs"])
        for name in sorted(self.not_run):
            print("%s | not run: %s" % (name, self.not_run[name]))
        for name in sorted(self.rows):
            for d in self.rows[name]["diffs"][:40]:
                print("DIFF %s: %s" % (name, d))
            extra = len(self.rows[name]["diffs"]) - 40
            if extra > 0:
                print("DIFF %s: ... %d more" % (name, extra))
        return failed


# ------------------------------------------------------ running a script --


def run_script(path, argv, cwd):
    """Runs an official script as `python path argv...` would, in this
    process; returns (stdout text, the script's globals)."""
    out = io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = [path] + list(argv)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            g = runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return out.getvalue(), g


def namespace_package(name, path):
    """Registers `name` as a package rooted at `path` without running its
    __init__.py (LLaVA's and VLMEvalKit's import torch, transformers...)."""
    m = types.ModuleType(name)
    m.__path__ = [path]
    sys.modules[name] = m
    return m


def stub_module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def missing_modules(*names):
    missing = []
    for n in names:
        try:
            __import__(n)
        except ImportError:
            missing.append(n)
    return missing


class Ctx:
    def __init__(self, official, fixtures, work, samples, results, report):
        self.official = official
        self.fixtures = fixtures
        self.work = work
        self.samples = samples          # (bench, id) -> sample
        self.results = results          # results.json "benchmarks"
        self.report = report

    def script(self, *parts):
        return os.path.join(self.official, *parts)

    def inputs(self, bench):
        """A fresh copy of the benchmark's official inputs to run in."""
        src = os.path.join(self.fixtures, "official", bench)
        dst = os.path.join(self.work, bench)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)
        return dst

    def sima(self, bench, qid):
        return self.samples[(bench, str(qid))]

    def count(self, bench):
        self.report.bench(bench)["answers"] = sum(1 for b, _ in self.samples if b == bench)


def need(ctx, bench, paths, modules=()):
    """The scripts and modules a benchmark needs; reports why when absent."""
    for p in paths:
        if not os.path.isfile(ctx.script(p)):
            ctx.report.skip(bench, "%s not in the official folder" % p)
            return False
    miss = missing_modules(*modules)
    if miss:
        ctx.report.skip(bench, "Python module(s) %s missing" % ", ".join(miss))
        return False
    return True


# ------------------------------------------------------------------ POPE --

def compare_pope(ctx):
    script = "LLaVA/llava/eval/eval_pope.py"
    if not need(ctx, "pope", [script]):
        return
    d = ctx.inputs("pope")
    out, g = run_script(ctx.script(script), ["--annotation-dir", "coco", "--question-file",
                                              "llava_pope_test.jsonl", "--result-file",
                                              "answers.jsonl"], d)
    # the script's printout per category (split)
    names = {"Accuracy": "accuracy", "Precision": "precision", "Recall": "recall",
             "F1 score": "f1", "Yes ratio": "yes_ratio"}
    split = None
    for line in out.splitlines():
        m = re.match(r"Category: (\w+), # samples: (\d+)", line)
        if m:
            split = m.group(1)
            ctx.report.number("pope", split + ".samples", int(m.group(2)),
                              ctx.results["pope"]["splits"][split]["samples"])
            continue
        m = re.match(r"(Accuracy|Precision|Recall|F1 score|Yes ratio): (.*)$", line)
        if m and split:
            key = names[m.group(1)]
            ctx.report.number("pope", "%s.%s" % (split, key), float(m.group(2)),
                              ctx.results["pope"]["splits"][split][key])
    # per answer: eval_pope rewrites each answer's text to its decision
    questions = {q["question_id"]: q for q in g["questions"].values()}
    per_split = {}
    for a in g["answers"]:
        split = questions[a["question_id"]]["category"]
        k = per_split.get(split, 0)
        per_split[split] = k + 1
        s = ctx.sima("pope", "%s-%d" % (split, k))
        ctx.report.sample("pope", s["question_id"], "yes/no", a["text"], s["extracted"],
                          s["answer"])
    ctx.count("pope")


# ------------------------------------------------------------------- MME --

def compare_mme(ctx):
    conv = "LLaVA/playground/data/eval/MME/convert_answer_to_mme.py"
    calc = "MME/eval_tool/calculation.py"
    if not need(ctx, "mme", [conv, calc], ["sklearn"]):
        return
    d = ctx.inputs("mme")
    run_script(ctx.script(conv), ["--experiment", "parity"], d)
    res_dir = os.path.join(d, "eval_tool", "answers", "parity")
    out, _ = run_script(ctx.script(calc), ["--results_dir", res_dir], d)
    r = ctx.results["mme"]
    totals = re.findall(r"total score: (\S+)", out)
    ctx.report.number("mme", "perception", float(totals[0]), r["perception"])
    ctx.report.number("mme", "cognition", float(totals[1]), r["cognition"])
    for task, score in re.findall(r"\t (\S+)  score: (\S+)", out):
        ctx.report.number("mme", task + ".score", float(score), r["subtasks"][task]["score"])
    # acc and acc+ per subtask: the script's own metric dicts (it adds
    # acc_plus to the dict compute_metric returned), kept by a subclass
    g = runpy.run_path(ctx.script(calc), run_name="mme_calculation")
    kept = []

    class Keep(g["calculate_metrics"]):
        def compute_metric(self, gts, preds):
            m = super().compute_metric(gts, preds)
            kept.append(m)
            return m

    cal = Keep()
    with contextlib.redirect_stdout(io.StringIO()):
        cal.process_result(res_dir)
    tasks = [t for ts in g["eval_type_dict"].values() for t in ts]
    for task, m in zip(tasks, kept):
        ctx.report.number("mme", task + ".acc", 100 * m["acc"], r["subtasks"][task]["acc"])
        ctx.report.number("mme", task + ".acc_plus", 100 * m["acc_plus"],
                          r["subtasks"][task]["acc_plus"])
    # per answer: parse_pred_ans on each line as process_result reads it
    sima_rows = {}
    for (b, qid), s in ctx.samples.items():
        if b == "mme":
            sima_rows.setdefault(qid.split("/")[0], []).append(s)
    for task in tasks:
        lines = open(os.path.join(res_dir, task + ".txt")).readlines()
        for line, s in zip(lines, sima_rows[task]):
            _, _, _, pred = line.split("\t")
            ctx.report.sample("mme", s["question_id"], "parse", cal.parse_pred_ans(pred.lower()),
                              s["extracted"], s["answer"])
    ctx.count("mme")


# ------------------------------------------------------------ VQA family --

def m4c(ctx):
    return __import__("llava.eval.m4c_evaluator", fromlist=["x"])


def compare_textvqa(ctx):
    script = "LLaVA/llava/eval/eval_textvqa.py"
    if not need(ctx, "textvqa", [script, "LLaVA/llava/eval/m4c_evaluator.py"], ["tqdm"]):
        return
    d = ctx.inputs("textvqa")
    ev = m4c(ctx).TextVQAAccuracyEvaluator
    seen = []
    original = ev.eval_pred_list

    def keep(self, pred_list):
        # the script's own pred_list and its value; per entry the same two
        # calls eval_pred_list makes
        acc = original(self, pred_list)
        for e in pred_list:
            pred = self.answer_processor(e["pred_answer"])
            seen.append((pred, self._compute_answer_scores(e["gt_answers"]).get(pred, 0.0)))
        seen.append(acc)
        return acc

    ev.eval_pred_list = keep
    try:
        out, _ = run_script(ctx.script(script), ["--annotation-file", "TextVQA_0.5.1_val.json",
                                                  "--result-file", "answers.jsonl"], d)
    finally:
        ev.eval_pred_list = original
    printed = re.search(r"Accuracy: (\S+)%", out).group(1)
    sima_acc = ctx.results["textvqa"]["accuracy"]
    ctx.report.number("textvqa", "accuracy (printed)", printed, sima_acc, digits=2)
    ctx.report.number("textvqa", "accuracy", 100 * seen[-1], sima_acc)
    rows = [s for (b, _), s in ctx.samples.items() if b == "textvqa"]
    for (pred, score), s in zip(seen[:-1], rows):
        ctx.report.sample("textvqa", s["question_id"], "normalised", pred, s["extracted"],
                          s["answer"])
        ctx.report.sample("textvqa", s["question_id"], "score", round(score, 12),
                          round(s["score"], 12), s["answer"])
    ctx.count("textvqa")


def compare_upload(ctx, bench, answers, gt, key):
    """VQAv2 / VizWiz: the submission file's processed answers per question;
    the accuracy is the soft accuracy of m4c_evaluator's
    TextVQAAccuracyEvaluator on them (the EvalAI servers' own scorer is not
    public in runnable form: see data/benchmarks/README.md)."""
    ev = m4c(ctx).TextVQAAccuracyEvaluator()
    total = 0.0
    for a in answers:
        qid = a[key]
        s = ctx.sima(bench, qid)
        ctx.report.sample(bench, qid, "processed", a["answer"], s["extracted"], s["answer"])
        pred = ev.answer_processor(a["answer"])
        score = ev._compute_answer_scores(gt[str(qid)]).get(pred, 0.0)
        ctx.report.sample(bench, qid, "score", round(score, 12), round(s["score"], 12),
                          s["answer"])
        total += score
    ctx.report.number(bench, "accuracy", 100 * total / len(answers),
                      ctx.results[bench]["accuracy"])
    ctx.count(bench)


def compare_vqav2(ctx):
    script = "LLaVA/scripts/convert_vqav2_for_submission.py"
    if not need(ctx, "vqav2", [script, "LLaVA/llava/eval/m4c_evaluator.py"], ["tqdm"]):
        return
    d = ctx.inputs("vqav2")
    run_script(ctx.script(script), ["--dir", d, "--ckpt", "llava", "--split", "parity"], d)
    answers = json.load(open(os.path.join(d, "answers_upload", "parity", "llava.json")))
    compare_upload(ctx, "vqav2", answers, json.load(open(os.path.join(d, "gt.json"))),
                   "question_id")


def compare_vizwiz(ctx):
    script = "LLaVA/scripts/convert_vizwiz_for_submission.py"
    if not need(ctx, "vizwiz", [script, "LLaVA/llava/eval/m4c_evaluator.py"], ["tqdm"]):
        return
    d = ctx.inputs("vizwiz")
    up = os.path.join(d, "upload", "parity.json")
    run_script(ctx.script(script), ["--annotation-file", "llava_test.jsonl", "--result-file",
                                     "answers.jsonl", "--result-upload-file", up], d)
    compare_upload(ctx, "vizwiz", json.load(open(up)),
                   json.load(open(os.path.join(d, "gt.json"))), "image")


# ------------------------------------------------------------------- GQA --

def compare_gqa(ctx):
    conv, ev = "LLaVA/scripts/convert_gqa_for_eval.py", "GQA/eval.py"
    if not need(ctx, "gqa", [conv, ev], ["tqdm"]):
        return
    d = ctx.inputs("gqa")
    run_script(ctx.script(conv), ["--src", "answers.jsonl", "--dst",
                                  "testdev_balanced_predictions.json"], d)
    out, g = run_script(ctx.script(ev), ["--tier", "testdev_balanced"], d)
    sima_acc = ctx.results["gqa"]["accuracy"]
    ctx.report.number("gqa", "accuracy (printed)", re.search(r"Accuracy: (\S+)%", out).group(1),
                      sima_acc, digits=2)
    ctx.report.number("gqa", "accuracy", g["scores"]["accuracy"], sima_acc)
    for qid, q in g["questions"].items():
        s = ctx.sima("gqa", qid)
        ctx.report.sample("gqa", qid, "prediction", g["predictions"][qid], s["extracted"],
                          s["answer"])
        ctx.report.sample("gqa", qid, "correct", g["predictions"][qid] == q["answer"],
                          s["correct"], s["answer"])
    ctx.count("gqa")


# -------------------------------------------------------------- ScienceQA --

def compare_scienceqa(ctx):
    script = "LLaVA/llava/eval/eval_science_qa.py"
    if not need(ctx, "scienceqa", [script]):
        return
    d = ctx.inputs("scienceqa")
    _, g = run_script(ctx.script(script), ["--base-dir", d, "--result-file", "answers.jsonl",
                                           "--output-file", "out.json", "--output-result",
                                           "result.json"], d)
    r = g["sqa_results"]
    ctx.report.number("scienceqa", "accuracy", r["acc"], ctx.results["scienceqa"]["accuracy"])
    for pid, idx in r["results"].items():
        s = ctx.sima("scienceqa", pid)
        ctx.report.sample("scienceqa", pid, "letter", "ABCDE"[idx] if idx >= 0 else None,
                          s["extracted"], s["answer"])
    ctx.count("scienceqa")


# -------------------------------------------------------------- SEED-Bench --

def compare_seed(ctx):
    script = "LLaVA/scripts/convert_seed_for_submission.py"
    if not need(ctx, "seed", [script]):
        return
    d = ctx.inputs("seed")
    out, _ = run_script(ctx.script(script), ["--annotation-file", "SEED-Bench.json",
                                              "--result-file", "answers.jsonl",
                                              "--result-upload-file", "upload.jsonl"], d)
    # the script prints the image questions' accuracy with two decimals;
    # with a few hundred questions that fixes the count of right answers
    ctx.report.number("seed", "image accuracy (printed)",
                      re.search(r"image accuracy: (\S+)%", out).group(1),
                      ctx.results["seed"]["accuracy"], digits=2)
    ctx.count("seed")


# ---------------------------------------------------------------- MMBench --

# A documented correction applied to the stored matching_util.py before it
# runs (data/benchmarks/README.md, "MMBench"): the stored version's window
# test is inverted, so a bare "A" never matches; VLMEvalKit's own copies
# before and after it test "near the end" (>).
MMBENCH_FIX = ("splits.index(ch) < len(splits) - 5", "splits.index(ch) > len(splits) - 5")


def load_matching_util(ctx, report_fix):
    path = ctx.script("VLMEvalKit/vlmeval/utils/matching_util.py")
    src = open(path, encoding="utf-8").read()
    if MMBENCH_FIX[0] in src:
        src = src.replace(MMBENCH_FIX[0], MMBENCH_FIX[1])
        report_fix()
    import logging
    namespace_package("vlmeval", ctx.script("VLMEvalKit/vlmeval"))
    namespace_package("vlmeval.utils", ctx.script("VLMEvalKit/vlmeval/utils"))
    stub_module("vlmeval.smp", get_logger=logging.getLogger, __all__=["get_logger"])
    mod = types.ModuleType("vlmeval.utils.matching_util")
    mod.__package__ = "vlmeval.utils"
    mod.__file__ = path
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


def compare_mmbench(ctx):
    conv = "LLaVA/scripts/convert_mmbench_for_submission.py"
    mu = "VLMEvalKit/vlmeval/utils/matching_util.py"
    if not need(ctx, "mmbench", [conv, mu], ["pandas", "openpyxl"]):
        return
    import pandas as pd
    d = ctx.inputs("mmbench")
    os.makedirs(os.path.join(d, "upload"))
    run_script(ctx.script(conv), ["--annotation-file", "mmbench_dev_20230712.tsv",
                                  "--result-dir", "answers", "--upload-dir", "upload",
                                  "--experiment", "parity"], d)
    util = load_matching_util(ctx, lambda: print(
        "mmbench: applied the documented correction to matching_util.py: %s -> %s" % MMBENCH_FIX))
    df = pd.read_excel(os.path.join(d, "upload", "parity.xlsx"))
    groups, right = {}, 0
    for _, row in df.iterrows():
        # VLMEvalKit's build_choices: every option column that is not NaN
        choices = {c: row[c] for c in "ABCDEFGHI" if c in row and not pd.isna(row[c])}
        letter = util.can_infer(row["prediction"], choices) or None
        s = ctx.sima("mmbench", int(row["index"]))
        ctx.report.sample("mmbench", s["question_id"], "letter", letter, s["extracted"],
                          s["answer"])
        ok = letter == row["answer"]
        right += ok
        # VLMEvalKit's circular evaluation: the passes of a question share
        # index mod 10^6 and it counts when every pass is right
        g = int(row["index"]) % 1000000
        groups[g] = groups.get(g, True) and ok
    r = ctx.results["mmbench"]
    ctx.report.number("mmbench", "vanilla_accuracy", 100 * right / len(df), r["vanilla_accuracy"])
    ctx.report.number("mmbench", "circular_accuracy", 100 * sum(groups.values()) / len(groups),
                      r["circular_accuracy"])
    ctx.report.number("mmbench", "questions", len(groups), r["questions"])
    ctx.count("mmbench")


# ------------------------------------------------------------------- CHAIR --

def punkt_stand_in(work):
    """nltk.word_tokenize needs the Punkt model (nltk_data), which Debian
    does not package: when it is absent an untrained PunktSentenceTokenizer
    stands in (same algorithm, no learned abbreviations)."""
    import nltk
    try:
        nltk.data.find("tokenizers/punkt/english.pickle")
        return None
    except LookupError:
        pass
    from nltk.tokenize.punkt import PunktSentenceTokenizer
    root = os.path.join(work, "nltk_data")
    for sub in ("", "PY3"):   # nltk 3.8 loads the PY3 copy
        d = os.path.join(root, "tokenizers", "punkt", sub)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "english.pickle"), "wb") as f:
            pickle.dump(PunktSentenceTokenizer(), f)
    nltk.data.path.insert(0, root)
    return "untrained Punkt sentence splitter (nltk_data's punkt not installed)"


def compare_chair(ctx, synonyms_out):
    script = "CHAIR/chair.py"
    if not need(ctx, "chair", [script], ["nltk", "pattern"]):
        return None
    # pattern.en imports its WordNet module at start-up, which wants NLTK
    # corpora (wordnet_ic, sentiwordnet) not in Debian; singularize does not
    # use it
    stub_module("pattern.text.en.wordnet")
    note = punkt_stand_in(ctx.work)
    if note:
        print("chair: " + note)
    d = ctx.inputs("chair")
    g = runpy.run_path(ctx.script(script), run_name="chair")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ev = g["CHAIR"](os.path.join(d, "annotations"))
        out = ev.compute_chair(os.path.join(d, "captions.jsonl"), "image_id", "caption")
    for sent in out["sentences"]:
        s = ctx.sima("chair", sent["image_id"])
        ctx.report.sample("chair", s["question_id"], "mentions", sent["mscoco_generated_words"],
                          s["mentioned_objects"], s["answer"])
        ctx.report.sample("chair", s["question_id"], "hallucinated",
                          [node for _, node in sent["mscoco_hallucinated_words"]],
                          s["hallucinated_objects"], s["answer"])
        ctx.report.sample("chair", s["question_id"], "ground truth",
                          sorted(ev.imid_to_objects[sent["image_id"]]),
                          sorted(json.loads(s["_objects"])), s["answer"])
    r = ctx.results["chair"]
    ctx.report.number("chair", "chair_s", 100 * out["overall_metrics"]["CHAIRs"], r["chair_s"])
    ctx.report.number("chair", "chair_i", 100 * out["overall_metrics"]["CHAIRi"], r["chair_i"])
    ctx.count("chair")
    return note


def write_synonyms(ctx, path):
    """sima-bench's CHAIR table: chair.py's own synonym text, one category a
    line, as the official list is laid out."""
    src = open(ctx.script("CHAIR/chair.py"), encoding="utf-8").read()
    text = re.search(r"synonyms_txt = '''(.*?)'''", src, re.S).group(1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ------------------------------------------------------------------ main --

def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    official, fixtures, sima_bench, work = (os.path.abspath(a) for a in sys.argv[1:])
    os.makedirs(work, exist_ok=True)
    report = Report()
    namespace_package("llava", os.path.join(official, "LLaVA", "llava"))
    namespace_package("llava.eval", os.path.join(official, "LLaVA", "llava", "eval"))

    syn = os.path.join(work, "chair_synonyms.txt")
    cmd = [sima_bench, "score", "--questions", os.path.join(fixtures, "sima", "questions.jsonl"),
           "--answers", os.path.join(fixtures, "sima", "answers.jsonl"),
           "--out", os.path.join(work, "sima")]
    if os.path.isfile(os.path.join(official, "CHAIR", "chair.py")):
        ctx0 = Ctx(official, fixtures, work, {}, {}, report)
        write_synonyms(ctx0, syn)
        cmd += ["--chair-synonyms", syn]
    else:
        # without chair.py there is no official table: leave CHAIR out
        q = [json.loads(l) for l in open(cmd[3])]
        kept = os.path.join(work, "questions-no-chair.jsonl")
        with open(kept, "w") as f:
            for x in q:
                if x["benchmark"] != "chair":
                    f.write(json.dumps(x) + "\n")
        ans = os.path.join(work, "answers-no-chair.jsonl")
        with open(ans, "w") as f:
            for l in open(cmd[5]):
                if json.loads(l)["benchmark"] != "chair":
                    f.write(l)
        cmd[3], cmd[5] = kept, ans
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        print("sima-bench score failed (%d):\n%s" % (run.returncode, run.stderr))
        return 1
    results = json.load(open(os.path.join(work, "sima", "results.json")))["benchmarks"]
    samples = {}
    questions = {(q["benchmark"], q["question_id"]): q
                 for q in map(json.loads, open(cmd[3]))}
    for line in open(os.path.join(work, "sima", "samples.jsonl")):
        s = json.loads(line)
        q = questions[(s["benchmark"], s["question_id"])]
        if "objects" in q:
            s["_objects"] = json.dumps(q["objects"])
        samples[(s["benchmark"], s["question_id"])] = s
    ctx = Ctx(official, fixtures, work, samples, results, report)

    for f in (compare_pope, compare_mme, compare_textvqa, compare_vqav2, compare_vizwiz,
              compare_gqa, compare_scienceqa, compare_seed, compare_mmbench):
        f(ctx)
    if "chair" in {b for b, _ in samples}:
        compare_chair(ctx, syn)
    else:
        report.skip("chair", "CHAIR/chair.py not in the official folder")
    failed = report.print()
    if not report.rows:
        print("nothing compared")
        return 77
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
