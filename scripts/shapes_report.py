#!/usr/bin/python3
"""shapes_report.py: the numbers of a shapes-world SIMA round (Python 3
standard library only). The hallucination and yes/no figures come from
`sima-bench`'s own scorers (CHAIR and POPE); this script only prepares their
inputs and puts their outputs side by side.

  shapes_report.py oracle-inputs --world DIR --prompts P.jsonl --responses R.jsonl --out DIR
      one sima-bench question per generated response: a "chair" question
      (the picture's true objects) for a caption, a "pope" question (the true
      answer) for a yes/no question; OUT/questions.jsonl, OUT/answers.jsonl,
      for `sima-bench score`
  shapes_report.py critic --samples S.jsonl --verdicts V.jsonl --prompts P.jsonl [--json F]
      how often the critic picks the response the oracle prefers: fewer
      hallucinated objects (captions) or the right answer (yes/no questions);
      pairs the oracle cannot tell apart are counted aside
  shapes_report.py table --before DIR --after DIR [--critic F.json] [--pairs N] [--json F]
      the before/after table of two sima-bench results folders

P.jsonl and R.jsonl are `sima-prep export` of prompts.h5 and responses.h5;
V.jsonl of verdicts.h5.
"""
import argparse
import json
import os
import sys


def die(msg):
    sys.exit("shapes_report: " + msg)


def read_jsonl(path):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        die("%s:%d: %s" % (path, n, e))
    except OSError as e:
        die("%s: %s" % (path, e.strerror))
    return rows


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        die("%s: %s" % (path, e.strerror))
    except json.JSONDecodeError as e:
        die("%s: %s" % (path, e))


def response_key(prompt_row, candidate):
    return "p%d-c%d" % (prompt_row, candidate)


def oracle_inputs(args):
    world = read_json(os.path.join(args.world, "world.json"))["scenes"]
    prompts = read_jsonl(args.prompts)  # sima-prep export: in row order
    questions, answers = [], []
    for r in read_jsonl(args.responses):
        p = prompts[r["prompt"]]
        name = os.path.basename(p["image"])
        if name not in world:
            die("%s: picture %s of prompt %s is not in %s/world.json"
                % (args.prompts, name, p["id"], args.world))
        key = response_key(r["prompt"], r["candidate"])
        if p["ground_truth"] in ("Yes", "No"):
            questions.append({"question_id": key, "benchmark": "pope", "split": "round", "image": name,
                              "question": p["question"].split("\n")[0],
                              "label": p["ground_truth"].lower()})
        else:
            questions.append({"question_id": key, "benchmark": "chair", "image": name,
                              "question": p["question"],
                              "objects": [o["shape"] for o in world[name]]})
        answers.append({"question_id": key, "text": r["text"]})
    os.makedirs(args.out, exist_ok=True)
    for name, rows in (("questions.jsonl", questions), ("answers.jsonl", answers)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.writelines(json.dumps(x) + "\n" for x in rows)


def badness(sample):
    """The oracle's count of errors of one response: hallucinated objects of
    a caption, 1 for a wrong yes/no answer."""
    if sample["benchmark"] == "chair":
        return len(sample["hallucinated_objects"])
    return 0 if sample["correct"] else 1


def critic(args):
    bad = {s["question_id"]: badness(s) for s in read_jsonl(args.samples)}
    prompts = read_jsonl(args.prompts)  # sima-prep export: in row order
    out = {"judged": 0, "decided": 0, "agree": 0, "tie": 0, "no_verdict": 0,
           "captions": {"decided": 0, "agree": 0}, "yes_no": {"decided": 0, "agree": 0}}
    for v in read_jsonl(args.verdicts):
        if v["verdict"] not in (1, 2):
            out["no_verdict"] += 1
            continue
        out["judged"] += 1
        b1 = bad.get(response_key(v["prompt"], v["first"]))
        b2 = bad.get(response_key(v["prompt"], v["second"]))
        if b1 is None or b2 is None:
            die("%s: no oracle sample for a response of prompt row %d" % (args.samples, v["prompt"]))
        if b1 == b2:
            out["tie"] += 1
            continue
        oracle = 1 if b1 < b2 else 2
        kind = "yes_no" if prompts[v["prompt"]]["ground_truth"] in ("Yes", "No") else "captions"
        for d in (out, out[kind]):
            d["decided"] += 1
            d["agree"] += oracle == v["verdict"]
    out["agreement"] = out["agree"] / out["decided"] if out["decided"] else None
    text = json.dumps(out, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


def bench_numbers(folder):
    res = read_json(os.path.join(folder, "results.json"))["benchmarks"]
    ch, pope = res["chair"], res["pope"]
    out = {"chair_i": ch["chair_i"], "chair_s": ch["chair_s"],
           "pope_accuracy": 100 * pope["all"]["accuracy"], "pope_f1": 100 * pope["all"]["f1"],
           "pope_yes_ratio": 100 * pope["all"]["yes_ratio"]}
    for split, m in sorted(pope["splits"].items()):
        out["pope_%s_accuracy" % split] = 100 * m["accuracy"]
    return out


LABELS = [("chair_i", "CHAIR_i: hallucinated object mentions, % (lower is better)"),
          ("chair_s", "CHAIR_s: captions with a hallucination, % (lower is better)"),
          ("pope_accuracy", "POPE accuracy, % (all splits)"),
          ("pope_random_accuracy", "POPE accuracy, random split, %"),
          ("pope_adversarial_accuracy", "POPE accuracy, adversarial split, %"),
          ("pope_f1", "POPE F1, %"),
          ("pope_yes_ratio", "POPE yes-ratio, %")]


def table(args):
    before, after = bench_numbers(args.before), bench_numbers(args.after)
    lines = ["| measure | before | after | change |", "| --- | ---: | ---: | ---: |"]
    for key, label in LABELS:
        if key in before and key in after:
            lines.append("| %s | %.1f | %.1f | %+.1f |" % (label, before[key], after[key],
                                                         after[key] - before[key]))
    summary = {"before": before, "after": after}
    if args.critic:
        c = read_json(args.critic)
        summary["critic"] = c
        if c["decided"]:
            lines.append("| critic agrees with the oracle, %% (%d pairs it can tell apart; chance 50) | %.1f | | |"
                         % (c["decided"], 100 * c["agreement"]))
    if args.pairs is not None:
        summary["pairs"] = args.pairs
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    o = sub.add_parser("oracle-inputs")
    for k in ("--world", "--prompts", "--responses", "--out"):
        o.add_argument(k, required=True)
    c = sub.add_parser("critic")
    for k in ("--samples", "--verdicts", "--prompts"):
        c.add_argument(k, required=True)
    c.add_argument("--json")
    t = sub.add_parser("table")
    t.add_argument("--before", required=True)
    t.add_argument("--after", required=True)
    t.add_argument("--critic")
    t.add_argument("--pairs", type=int)
    t.add_argument("--json")
    args = ap.parse_args()
    {"oracle-inputs": oracle_inputs, "critic": critic, "table": table}[args.what](args)


if __name__ == "__main__":
    main()
