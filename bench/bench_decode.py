#!/usr/bin/env python3
"""Decode tokens/s of hse::model::generate (bench_decode) against transformers' generate.

For each config (random-init Phi3ForCausalLM, written with save_pretrained and read by the C++
driver with load_phi3) and each batch size, both sides run greedy decoding of the same prompts
(random ids, --prompt-len tokens each, no padding) for --new-tokens tokens with no stop id
(HF: eos_token_id None, max_new_tokens = min_new_tokens = N), with the same intra-op thread count
(torch.set_num_threads / --threads). Runs alternate HF, hse, HF, hse, ... (one untimed warm-up
each, then --runs timed runs) with the C++ driver kept loaded (--lockstep); the medians are
reported. The generated tokens of the last run are compared (identical expected in fp32).

Configs: tiny (hidden 128, 2 layers), mid (hidden 1024, 8 layers, 16 heads / 4 KV heads,
intermediate 2816, vocab 32064, partial rotary 0.75) and, with --device cuda only,
phi4-mini (Phi-4-mini-instruct's shapes: hidden 3072, 32 layers, 24/8 heads, intermediate 8192,
vocab 200064, LongRoPE, tied; bf16 by default). tiny and mid have an untied lm_head: with random
tied weights greedy decoding mostly repeats the last token, which would make the token check weak
(the bytes read per step are the same: a tied embedding is read in full as lm_head).

Timings (both sides alike): prefill = from the call to generate until the first token's logits
are processed (HF: a LogitsProcessor records the time at each step; hse: the step callback);
decode tok/s = batch * (N-1) / (time from the first to the last step). On CUDA the roofline
column is the share of the memory-bandwidth bound: (bytes read per decode step: every weight but
the input embedding, which is gathered, plus the KV cache) / (device-to-device copy bandwidth
measured here) / (measured seconds per step). On the CPU it prints n/a.

  python3 bench/bench_decode.py --bin build/bin [--configs tiny,mid] [--batches 1,16]
      [--prompt-len 32] [--new-tokens 64] [--runs 3] [--threads 2] [--device cpu|cuda]
      [--dtype fp32|bf16|fp16] [--json out.json]
Exit 0; 1 when the driver fails or fp32 tokens differ.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import LogitsProcessor, LogitsProcessorList, Phi3Config, Phi3ForCausalLM  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

PAD = 0

CONFIGS = {
    "tiny": dict(vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, partial_rotary_factor=0.75,
                 max_position_embeddings=4096, tie_word_embeddings=False),
    "mid": dict(vocab_size=32064, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                num_attention_heads=16, num_key_value_heads=4, partial_rotary_factor=0.75,
                max_position_embeddings=4096, tie_word_embeddings=False),
    "phi4-mini": dict(vocab_size=200064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                      num_attention_heads=24, num_key_value_heads=8, partial_rotary_factor=0.75,
                      max_position_embeddings=131072, original_max_position_embeddings=4096,
                      rope_theta=10000.0,
                      rope_scaling={"type": "longrope", "short_factor": [1.0] * 48, "long_factor": [1.0] * 48},
                      tie_word_embeddings=True),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def build(name, dtype, device, out_dir, seed=1234):
    torch.manual_seed(seed)
    cfg = Phi3Config(**CONFIGS[name], rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=None, pad_token_id=PAD)
    with torch.device(device):
        model = Phi3ForCausalLM(cfg).to(dtype).eval()
    # Weights ~ N(0, 1/fan_in) (embedding/lm_head: 3/sqrt(H), logits of std ~3) so that greedy
    # argmaxes are far from ties and fp32 tokens can be compared exactly.
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if "norm" in pname:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif "embed_tokens" in pname or "lm_head" in pname:
                p.normal_(0.0, 3.0 / cfg.hidden_size ** 0.5)
            else:
                p.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = PAD
    model.save_pretrained(out_dir, safe_serialization=True)
    return model, cfg


class StepTimer(LogitsProcessor):
    def __init__(self, cuda):
        self.cuda = cuda
        self.times = []

    def __call__(self, input_ids, scores):
        if self.cuda:
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        return scores


def hf_run(model, ids, n, cuda):
    timer = StepTimer(cuda)
    mask = torch.ones_like(ids)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, eos_token_id=None, pad_token_id=PAD,
                             logits_processor=LogitsProcessorList([timer]))
    if cuda:
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    steps = len(timer.times) - 1
    decode_s = timer.times[-1] - timer.times[0]
    b = ids.shape[0]
    return {"prefill_s": timer.times[0] - t0, "decode_s": decode_s, "decode_steps": steps,
            "decode_tok_s": b * steps / decode_s if decode_s > 0 else 0.0, "total_s": t1 - t0,
            "tokens": out[:, ids.shape[1]:].tolist()}


class Driver:
    def __init__(self, exe, model_dir, prompts_path, n, dtype, device, threads, tokens_out):
        cmd = [exe, "--model", model_dir, "--prompts", prompts_path, "--new-tokens", str(n), "--dtype", dtype,
               "--device", device, "--threads", str(threads), "--lockstep", "--tokens-out", tokens_out]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.loaded = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            rc = self.p.wait()
            raise RuntimeError(f"bench_decode exited with {rc}")
        return json.loads(line)

    def run(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        summary = self._read()
        self.p.wait()
        return summary


def measure_bandwidth():
    """Device-to-device copy bandwidth (bytes read + written per second), 1 GiB buffers."""
    n = 1 << 28
    x = torch.empty(n, dtype=torch.float32, device="cuda").fill_(1.0)
    y = torch.empty_like(x)
    for _ in range(3):
        y.copy_(x)
    torch.cuda.synchronize()
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        y.copy_(x)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    del x, y
    torch.cuda.empty_cache()
    return 2 * 4 * n * reps / dt


def step_bytes(model, cfg, batch, ctx_len, dtype):
    """Bytes read per decode step: all weights except the input embedding (gathered; a tied
    embedding is read in full as lm_head), plus the KV cache at the mean context length."""
    esize = torch.tensor([], dtype=dtype).element_size()
    w = 0
    for pname, p in model.named_parameters():
        if "embed_tokens" in pname and not cfg.tie_word_embeddings:
            continue
        w += p.numel() * p.element_size()
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * ctx_len * batch * esize
    return w + kv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--configs", default=None, help="comma list (default: tiny,mid[,phi4-mini on cuda])")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default=None, help="fp32 (default; phi4-mini: bf16), bf16 or fp16")
    ap.add_argument("--json", default=None, help="write all results here")
    ap.add_argument("--keep", action="store_true", help="keep the model directories")
    args = ap.parse_args()

    exe = os.path.join(args.bin, "bench_decode")
    if not os.access(exe, os.X_OK):
        print(f"bench_decode not found in {args.bin} (build the target bench_decode)")
        return 1
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        print("--device cuda: no CUDA device")
        return 1
    configs = args.configs.split(",") if args.configs else (["tiny", "mid"] + (["phi4-mini"] if cuda else []))
    if "phi4-mini" in configs and not cuda:
        print("phi4-mini runs only with --device cuda (skipped)")
        configs = [c for c in configs if c != "phi4-mini"]
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    bw = measure_bandwidth() if cuda else None

    print(f"# torch {torch.__version__}, transformers {transformers.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if cuda else "")
          + f", threads {args.threads}, prompt {args.prompt_len} tokens, {args.new_tokens} new tokens,"
          f" median of {args.runs} alternating runs (after 1 warm-up each)"
          + (f", copy bandwidth {bw / 1e9:.0f} GB/s" if cuda else ""), flush=True)
    rows = []
    failed = False
    tmp = tempfile.mkdtemp(prefix="hse_bench_decode_")
    try:
        for name in configs:
            dname = args.dtype or ("bf16" if name == "phi4-mini" else "fp32")
            dtype = DTYPES[dname]
            mdir = os.path.join(tmp, name)
            t0 = time.perf_counter()
            model, cfg = build(name, dtype, args.device, mdir)
            nparams = sum(p.numel() for p in model.parameters())
            print(f"# {name}: {nparams / 1e6:.1f} M parameters, {dname}, built and saved in "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
            rng = np.random.default_rng(7)
            all_prompts = rng.integers(3, cfg.vocab_size, size=(max(batches), args.prompt_len)).tolist()
            for b in batches:
                prompts = all_prompts[:b]
                ppath = os.path.join(tmp, f"prompts_{name}_{b}.json")
                tpath = os.path.join(tmp, f"tokens_{name}_{b}.json")
                json.dump(prompts, open(ppath, "w"))
                ids = torch.tensor(prompts, dtype=torch.long, device=args.device)
                drv = Driver(exe, mdir, ppath, args.new_tokens, dname, args.device, args.threads, tpath)
                hf_runs, hse_runs = [], []
                for i in range(args.runs + 1):
                    h = hf_run(model, ids, args.new_tokens, cuda)
                    c = drv.run()
                    if i > 0:
                        hf_runs.append(h)
                        hse_runs.append(c)
                drv.close()
                hse_tokens = json.load(open(tpath))
                hf_tokens = h["tokens"]
                same = hse_tokens == hf_tokens
                total = sum(len(r) for r in hf_tokens)
                agree = sum(x == y for r1, r2 in zip(hf_tokens, hse_tokens) for x, y in zip(r1, r2))
                lengths_ok = all(len(r) == args.new_tokens for r in hf_tokens + hse_tokens)
                if dname == "fp32" and not (same and lengths_ok):
                    failed = True
                med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
                row = {"config": name, "dtype": dname, "batch": b,
                       "hf_tok_s": med(hf_runs, "decode_tok_s"), "hse_tok_s": med(hse_runs, "decode_tok_s"),
                       "hf_prefill_s": med(hf_runs, "prefill_s"), "hse_prefill_s": med(hse_runs, "prefill_s"),
                       "hf_total_s": med(hf_runs, "total_s"), "hse_total_s": med(hse_runs, "total_s"),
                       "tokens_equal": same, "token_agreement": agree / max(total, 1),
                       "hf_runs_tok_s": [r["decode_tok_s"] for r in hf_runs],
                       "hse_runs_tok_s": [r["decode_tok_s"] for r in hse_runs]}
                row["ratio"] = row["hse_tok_s"] / row["hf_tok_s"]
                if cuda:
                    nbytes = step_bytes(model, cfg, b, args.prompt_len + args.new_tokens // 2, dtype)
                    roof_s = nbytes / bw  # seconds per step at the bandwidth bound
                    row["step_bytes"] = nbytes
                    row["hf_roofline"] = roof_s / (b / row["hf_tok_s"])
                    row["hse_roofline"] = roof_s / (b / row["hse_tok_s"])
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items()}), flush=True)
            del model
            if cuda:
                torch.cuda.empty_cache()
            if not args.keep:
                shutil.rmtree(mdir, ignore_errors=True)
    finally:
        if args.keep:
            print(f"# model directories kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    hdr = (f"{'config':<10} {'dtype':<5} {'batch':>5} {'hf tok/s':>10} {'hse tok/s':>10} {'hse/hf':>7} "
           f"{'hf prefill s':>12} {'hse prefill s':>13} {'tokens':>9} {'roofline hf/hse':>16}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        roof = f"{100 * r['hf_roofline']:.0f}%/{100 * r['hse_roofline']:.0f}%" if cuda else "n/a"
        tok = "equal" if r["tokens_equal"] else f"{100 * r['token_agreement']:.1f}%"
        print(f"{r['config']:<10} {r['dtype']:<5} {r['batch']:>5} {r['hf_tok_s']:>10.1f} {r['hse_tok_s']:>10.1f} "
              f"{r['ratio']:>7.2f} {r['hf_prefill_s']:>12.4f} {r['hse_prefill_s']:>13.4f} {tok:>9} {roof:>16}")
    if args.json:
        json.dump({"device": args.device, "threads": args.threads, "bandwidth": bw, "rows": rows},
                  open(args.json, "w"), indent=1)
    if failed:
        print("FAIL: fp32 tokens differ between transformers and hse")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
