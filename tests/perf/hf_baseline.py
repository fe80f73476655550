#!/usr/bin/env python3
"""Hugging Face transformers (+ PEFT) on the shapes of sima's GPU benchmarks,
for side-by-side figures on the same card (tests/device/run-gpu.sh runs both).

LLaVA-1.5-7B-shaped random weights in bf16 with SDPA attention, built from
tests/data/llava-1.5-7b-hf/config.json (or --config). Prints, and writes as
JSON with --json:
  prefill      tokens/s of the language model over 4 x 640 tokens (no logits)
  decode       new tokens/s of generate() at the given batch sizes, 640-token
               prompts, greedy, EOS ignored: the rate between two lengths of
               generation (prefill excluded), and generate()'s overall rate
  dpo_step     one LoRA-DPO step (r 128, alpha 256 on q,k,v,o,gate,up,down;
               reference log-probs given): policy forward + backward of the
               chosen and rejected sequences (576 + 64 + 256 tokens each) and
               an AdamW step; seconds per step, tokens/s, peak GPU memory
Text-only inputs of the same lengths stand for the image tokens (the vision
tower is frozen and small next to the language model).
"""
import argparse
import json
import os
import sys
import time

import torch


def sync():
    torch.cuda.synchronize()


def timed(fn, reps):
    fn()
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def build_model(config_path):
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig.from_json_file(config_path)
    torch.manual_seed(0)
    model = None
    # transformers 5 names the dtype argument `dtype`, 4.x `torch_dtype`
    with torch.device("cuda"):
        for kw in ({"dtype": torch.bfloat16}, {"torch_dtype": torch.bfloat16}):
            try:
                model = LlavaForConditionalGeneration._from_config(
                    config, attn_implementation="sdpa", **kw)
                break
            except TypeError:
                continue
    model = model.to(device="cuda", dtype=torch.bfloat16)
    model.eval()
    return model, config


def language_model(model):
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, "language_model"):
        return inner.language_model
    return model.language_model.model


def random_ids(batch, length, vocab):
    return torch.randint(3, vocab - 10, (batch, length), device="cuda")


def bench_prefill(model, vocab):
    lm = language_model(model)
    ids = random_ids(4, 640, vocab)
    with torch.no_grad():
        seconds = timed(lambda: lm(input_ids=ids, use_cache=False), 3)
    return {"tokens": 4 * 640, "seconds": seconds, "tokens_per_s": 4 * 640 / seconds}


def bench_decode(model, vocab, batch, n1, n2):
    ids = random_ids(batch, 640, vocab)
    mask = torch.ones_like(ids)

    def gen(n):
        with torch.no_grad():
            return model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                  min_new_tokens=n, do_sample=False, pad_token_id=0)

    t1 = timed(lambda: gen(n1), 1)
    t2 = timed(lambda: gen(n2), 1)
    return {"batch": batch, "prompt": 640, "new_tokens": n2,
            "decode_tokens_per_s": batch * (n2 - n1) / (t2 - t1),
            "generate_tokens_per_s": batch * n2 / t2}


def bench_dpo(model, vocab, steps):
    from peft import LoraConfig, get_peft_model

    # the language model's linears only (CLIP's attention has q/k/v_proj too)
    lora = LoraConfig(r=128, lora_alpha=256, lora_dropout=0.0,
                      target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj"
                                     r"|up_proj|down_proj)")
    lm_for_causal = model
    peft_model = get_peft_model(lm_for_causal, lora)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-5)
    prompt, response = 576 + 64, 256
    n = prompt + response
    ids = random_ids(2, n, vocab)
    ids[1, :prompt] = ids[0, :prompt]           # chosen and rejected share the prompt
    ref = torch.tensor([-20.0, -21.0], device="cuda")
    beta = 0.1

    def step():
        out = peft_model(input_ids=ids, use_cache=False)
        logits = out.logits[:, prompt - 1:-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, prompt:, None]).squeeze(-1).sum(-1)
        margin = beta * ((logp[0] - ref[0]) - (logp[1] - ref[1]))
        loss = -torch.nn.functional.logsigmoid(margin)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    sync()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {"pair_tokens": 2 * n, "step_seconds_best": best,
            "step_seconds_mean": sum(times) / len(times), "tokens_per_s": 2 * n / best,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=os.path.join(here, "..", "data", "llava-1.5-7b-hf",
                                                    "config.json"))
    p.add_argument("--batches", default="1,32,128")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--dpo-steps", type=int, default=5)
    p.add_argument("--skip", default="", help="comma list of prefill,decode,dpo to skip")
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args()
    import transformers

    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "transformers": transformers.__version__}
    model, config = build_model(a.config)
    vocab = config.text_config.vocab_size
    skip = set(a.skip.split(","))
    if "prefill" not in skip:
        res["prefill"] = bench_prefill(model, vocab)
        print(f"hf prefill: {res['prefill']['tokens_per_s']:.0f} tokens/s", flush=True)
    if "decode" not in skip:
        res["decode"] = []
        for b in [int(x) for x in a.batches.split(",") if x]:
            d = bench_decode(model, vocab, b, max(1, a.new_tokens // 4), a.new_tokens)
            res["decode"].append(d)
            print(f"hf decode batch {b}: {d['decode_tokens_per_s']:.0f} new tokens/s "
                  f"(generate overall {d['generate_tokens_per_s']:.0f})", flush=True)
    if "dpo" not in skip:
        res["dpo_step"] = bench_dpo(model, vocab, a.dpo_steps)
        d = res["dpo_step"]
        print(f"hf dpo step: {1e3 * d['step_seconds_best']:.0f} ms best, "
              f"{d['tokens_per_s']:.0f} tokens/s, peak {d['peak_gib']:.1f} GiB", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
