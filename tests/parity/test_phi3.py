#!/usr/bin/env python3
"""Parity test: hse::model::Phi3ForCausalLM and hse::model::generate against transformers 5.

Reference: transformers.Phi3ForCausalLM (sdpa attention, the default) with a tiny random config
shaped like Phi-4-mini: GQA 4 heads / 2 KV heads, head_dim 16, partial_rotary_factor 0.75 (12 rotary
dims), LongRoPE (short/long factors, original_max_position_embeddings 64, max_position_embeddings
256), tied embeddings; weights drawn larger than the 0.02 init so the layers matter. Saved with
save_pretrained as one model.safetensors and, with max_shard_size "20KB", as shards with
model.safetensors.index.json. Nothing is downloaded (HF_HUB_OFFLINE=1).

Checks (C++ side: $HSE_BIN_DIR/torch_test_phi3 -tc="driver: phi3", see tests/torch/test_phi3.cpp):
  logits fp32: single sequences (7, 50 and 100 tokens: 100 > 64 takes the long factors), a
      left-padded and a right-padded batch (position ids cumsum(mask)-1 as HF generate), a KV-cache
      run (prefill 40, then one token at a time to 100, crossing 64 as HF's DynamicCache does), the
      sharded checkpoint: max |C++ - HF| over real positions <= 1e-3 (absolute; logits are O(1..10));
  greedy: 32 new tokens on left-padded batches (one crossing 64 while generating, one prompt > 64
      from the start, one unpadded prompt), with the default stop id and with a stop id HF emits:
      identical tokens to HF generate (sequences[:, L:] cut after the first stop id);
  beam search num_beams 3 (length_penalty 1, -1 and 2; early_stopping False, True and "never"; with a stop id
      that ends hypotheses early): identical tokens;
  a second model (default RoPE with partial_rotary_factor 0.5, no GQA, untied lm_head, two stop ids
      from its config): padded-batch logits, greedy and beam tokens as above;
  repetition_penalty 1.3 greedy: identical tokens;
  seeded sampling (torch.manual_seed(seed); temperature 0.8, top_k 20, top_p 0.9): identical tokens;
  inputs_embeds (embed(ids) with random "image" vectors written over positions 1..8, left-padded):
      greedy identical to HF generate(inputs_embeds=...);
  bf16 logits (both sides load the checkpoint in bfloat16): max |C++ - HF| <= 0.02 * max|HF fp32|;
  int8 weight-only: C++ logits vs HF with the same per-row symmetric int8 rounding applied to its
      weights in Python: max |diff| <= 1e-3;
  config errors: rope_scaling type "dynamic" and a config without hidden_size exit 3 with a
      message naming the config file.
Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402

pc.offline_env()

with pc.needs_modules():
    import numpy as np
    import torch
    import transformers
    from safetensors.numpy import load_file
    from safetensors.torch import save_file

    pc.quiet_transformers()
    from transformers import Phi3ForCausalLM

DRIVER = pc.driver("torch_test_phi3")

THREADS = 1
torch.set_num_threads(THREADS)
check = pc.Tally()

VOCAB = 256
ORIG = 64
EOS = 2
PAD = 0


def build_model(tmp, plain=False):
    if plain:  # no rope scaling, multi-head (no GQA), untied lm_head, two stop ids
        model = pc.tiny_phi3(
            4321, vocab_size=VOCAB, hidden_size=48, intermediate_size=80, num_attention_heads=3,
            num_key_value_heads=3, max_position_embeddings=256, partial_rotary_factor=0.5, rope_theta=500.0,
            tie_word_embeddings=False, eos_token_id=[EOS, 3], pad_token_id=PAD, rms_norm_eps=1e-6)
    else:
        model = pc.tiny_phi3(
            1234, vocab_size=VOCAB, intermediate_size=128, max_position_embeddings=256,
            original_max_position_embeddings=ORIG, rope_theta=10000.0,
            rope_scaling={"type": "longrope", "short_factor": [1.0, 1.05, 1.2, 1.5, 2.0, 2.6],
                          "long_factor": [1.5, 2.5, 4.0, 7.0, 11.0, 17.0]},
            eos_token_id=EOS, pad_token_id=PAD, rms_norm_eps=1e-5)
    if plain:
        d = os.path.join(tmp, "plain")
        model.save_pretrained(d, safe_serialization=True)
        return model, d
    single = os.path.join(tmp, "single")
    sharded = os.path.join(tmp, "sharded")
    model.save_pretrained(single, safe_serialization=True)
    model.save_pretrained(sharded, safe_serialization=True, max_shard_size="20KB")
    check(os.path.isfile(os.path.join(single, "model.safetensors")), "single-file save")
    index = os.path.join(sharded, "model.safetensors.index.json")
    n_shards = len(set(json.load(open(index))["weight_map"].values())) if os.path.isfile(index) else 0
    check(n_shards > 1, f"sharded save has an index and several shards ({n_shards})")
    return model, single, sharded


def left_pad(prompts):
    L = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), L), PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), L), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = torch.tensor(p)
        mask[i, L - len(p):] = 1
    return ids, mask


def right_pad(prompts):
    L = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), L), PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), L), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, :len(p)] = torch.tensor(p)
        mask[i, :len(p)] = 1
    return ids, mask


def positions(mask):
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


def trim(seq, eos):
    out = []
    for t in seq:
        out.append(int(t))
        if eos is not None and int(t) in eos:
            break
    return out


def hf_generate(model, prompts, eos, **kw):
    ids, mask = left_pad(prompts)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, eos_token_id=eos, pad_token_id=PAD, **kw)
    return [trim(row[ids.shape[1]:].tolist(), eos) for row in out]


def random_prompts(rng, lengths):
    return [[int(x) for x in rng.integers(3, VOCAB, size=n)] for n in lengths]


def quantize_int8_(model):
    """The C++ int8 rounding: per output row s = max|W|/127, q = round(W/s) clamped, W' = q*s."""
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and name.startswith("model.layers."):
                w = mod.weight.float()
                amax = w.abs().amax(1)
                s = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
                q = torch.round(w / s[:, None]).clamp(-127, 127).to(torch.int8)
                mod.weight.copy_((q.float() * s[:, None]).to(mod.weight.dtype))


def run_driver(env_extra, args=()):
    return pc.run_driver(DRIVER, "phi3", env_extra, args)


def main():
    tmp = tempfile.mkdtemp(prefix="hse_phi3_parity_")
    try:
        return body(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def body(tmp):
    model, single, sharded = build_model(tmp)
    rng = np.random.default_rng(7)
    jobs = []
    expect = {}  # name -> (kind, reference, extra)

    # ---- logits (fp32)
    seqs = random_prompts(rng, [7, 50, 100])
    for i, s in enumerate(seqs):
        ids = torch.tensor([s])
        with torch.no_grad():
            ref = model(input_ids=ids).logits[0].numpy()
        jobs.append({"name": f"single{i}", "kind": "logits", "model": single, "ids": [s]})
        expect[f"single{i}"] = ("logits", [ref], [len(s)], None)
    for pad_name, padder in (("left", left_pad), ("right", right_pad)):
        ids, mask = padder(seqs)
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits.numpy()
        jobs.append({"name": f"batch_{pad_name}", "kind": "logits", "model": single, "ids": ids.tolist(),
                     "mask": mask.tolist()})
        expect[f"batch_{pad_name}"] = ("logits", list(ref), [len(s) for s in seqs], mask.numpy())
    # KV cache across the LongRoPE switch, as HF's DynamicCache: prefill 40, then one by one.
    s = seqs[2]
    with torch.no_grad():
        out = model(input_ids=torch.tensor([s[:40]]), use_cache=True)
        parts, past = [out.logits], out.past_key_values
        for t in range(40, len(s)):
            out = model(input_ids=torch.tensor([[s[t]]]), past_key_values=past, use_cache=True)
            parts.append(out.logits)
            past = out.past_key_values
    ref = torch.cat(parts, 1)[0].numpy()
    jobs.append({"name": "cached", "kind": "logits_cached", "model": single, "ids": [s], "split": 40})
    expect["cached"] = ("logits", [ref], [len(s)], None)
    jobs.append({"name": "sharded", "kind": "logits", "model": sharded, "ids": [s]})
    expect["sharded"] = ("same_as", "single2", None, None)

    # ---- greedy generation (HF generate, left padding)
    gen_cases = {
        "greedy_cross": random_prompts(rng, [5, 30, 45]),   # padded length 45 + 32 crosses 64 while generating
        "greedy_long": random_prompts(rng, [80, 10]),        # prompt longer than 64 from the start
        "greedy_one": random_prompts(rng, [20]),             # no padding
    }
    hf_greedy = {}
    for name, prompts in gen_cases.items():
        ref = hf_generate(model, prompts, [EOS], max_new_tokens=32, do_sample=False, num_beams=1)
        hf_greedy[name] = ref
        jobs.append({"name": name, "kind": "generate", "model": single, "prompts": prompts,
                     "options": {"max_new_tokens": 32, "eos_token_ids": [EOS], "pad_token_id": PAD}})
        expect[name] = ("tokens", ref, None, None)
    # A stop id HF actually emits (row 0's 7th token): sequences end early, others go on with padding.
    stop = hf_greedy["greedy_cross"][0][6]
    prompts = gen_cases["greedy_cross"]
    ref = hf_generate(model, prompts, [stop, EOS], max_new_tokens=32, do_sample=False)
    check(any(len(r) < 32 for r in ref), f"greedy_stop: stop id {stop} ends a sequence early in HF")
    jobs.append({"name": "greedy_stop", "kind": "generate", "model": single, "prompts": prompts,
                 "options": {"max_new_tokens": 32, "eos_token_ids": [stop, EOS], "pad_token_id": PAD}})
    expect["greedy_stop"] = ("tokens", ref, None, None)

    # ---- beam search
    beam_prompts = random_prompts(rng, [6, 18, 12])
    ref = hf_generate(model, beam_prompts, [EOS], max_new_tokens=16, do_sample=False, num_beams=3,
                      length_penalty=1.0, early_stopping=False)
    jobs.append({"name": "beam", "kind": "generate", "model": single, "prompts": beam_prompts,
                 "options": {"max_new_tokens": 16, "num_beams": 3, "eos_token_ids": [EOS], "pad_token_id": PAD}})
    expect["beam"] = ("tokens", ref, None, None)
    # With a stop id the beams emit, so hypotheses finish at different lengths: the first token of
    # HF's beam outputs that, as a stop id, ends one of them early.
    beam_ref = ref
    stop_b, ref = None, None
    for cand in [t for row in beam_ref for t in row[1:12]]:
        if cand == EOS:
            continue
        r = hf_generate(model, beam_prompts, [cand], max_new_tokens=16, do_sample=False, num_beams=3)
        if any(len(x) < 16 for x in r):
            stop_b, ref = cand, r
            break
    check(stop_b is not None, "beam_stop: found a stop id that ends a hypothesis early in HF")
    jobs.append({"name": "beam_stop", "kind": "generate", "model": single, "prompts": beam_prompts,
                 "options": {"max_new_tokens": 16, "num_beams": 3, "eos_token_ids": [stop_b],
                             "pad_token_id": PAD}})
    expect["beam_stop"] = ("tokens", ref, None, None)

    # Early stopping variants, and length penalties that favour shorter (-1) and longer (2) hypotheses
    # (hse-generate --early-stopping, --length-penalty): HF's keyword and the C++ option.
    for name, hf_kw, opt in (("beam_early_on", dict(early_stopping=True), {"early_stopping": "on"}),
                             ("beam_early_never", dict(early_stopping="never"), {"early_stopping": "never"}),
                             ("beam_lp_neg", dict(length_penalty=-1.0), {"length_penalty": -1.0}),
                             ("beam_lp_two", dict(length_penalty=2.0), {"length_penalty": 2.0})):
        ref = hf_generate(model, beam_prompts, [stop_b], max_new_tokens=16, do_sample=False, num_beams=3, **hf_kw)
        jobs.append({"name": name, "kind": "generate", "model": single, "prompts": beam_prompts,
                     "options": {"max_new_tokens": 16, "num_beams": 3, "eos_token_ids": [stop_b],
                                 "pad_token_id": PAD, **opt}})
        expect[name] = ("tokens", ref, None, None)

    # ---- a second model: default RoPE (partial 0.5), no GQA, untied lm_head, stop ids [2, 3]
    plain_model, plain = build_model(tmp, plain=True)
    pp = random_prompts(rng, [11, 40, 3])
    ids, mask = left_pad(pp)
    with torch.no_grad():
        ref = plain_model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits.numpy()
    jobs.append({"name": "plain_logits", "kind": "logits", "model": plain, "ids": ids.tolist(),
                 "mask": mask.tolist()})
    expect["plain_logits"] = ("logits", list(ref), [len(p) for p in pp], mask.numpy())
    ref = hf_generate(plain_model, pp, [EOS, 3], max_new_tokens=32, do_sample=False)
    jobs.append({"name": "plain_greedy", "kind": "generate", "model": plain, "prompts": pp,
                 "options": {"max_new_tokens": 32, "pad_token_id": PAD}})  # stop ids from its config
    expect["plain_greedy"] = ("tokens", ref, None, None)
    ref = hf_generate(plain_model, pp, [EOS, 3], max_new_tokens=12, do_sample=False, num_beams=3)
    jobs.append({"name": "plain_beam", "kind": "generate", "model": plain, "prompts": pp,
                 "options": {"max_new_tokens": 12, "num_beams": 3, "pad_token_id": PAD}})
    expect["plain_beam"] = ("tokens", ref, None, None)

    # ---- repetition penalty (greedy, padded)
    rp_prompts = random_prompts(rng, [9, 25])
    ref = hf_generate(model, rp_prompts, [EOS], max_new_tokens=32, do_sample=False, repetition_penalty=1.3)
    jobs.append({"name": "reppen", "kind": "generate", "model": single, "prompts": rp_prompts,
                 "options": {"max_new_tokens": 32, "repetition_penalty": 1.3, "eos_token_ids": [EOS],
                             "pad_token_id": PAD}})
    expect["reppen"] = ("tokens", ref, None, None)

    # ---- seeded sampling
    torch.manual_seed(99)
    ref = hf_generate(model, rp_prompts, [EOS], max_new_tokens=24, do_sample=True, temperature=0.8, top_k=20,
                      top_p=0.9)
    jobs.append({"name": "sample", "kind": "generate", "model": single, "prompts": rp_prompts,
                 "options": {"max_new_tokens": 24, "do_sample": True, "temperature": 0.8, "top_k": 20,
                             "top_p": 0.9, "seed": 99, "eos_token_ids": [EOS], "pad_token_id": PAD}})
    expect["sample"] = ("tokens", ref, None, None)

    # ---- classifier-free guidance (HF guidance_scale + negative_prompt_ids). HF runs the negative
    # prompt without position ids (positions from the cache) and never re-runs it at the LongRoPE
    # switch, so the negative prompts here are unpadded and the negative sequences stay under 64.
    cfg_prompts = random_prompts(rng, [9, 25])
    neg = random_prompts(rng, [6, 6])
    neg_t = torch.tensor(neg)
    for name, kw, opts in (
            ("cfg_neg", dict(guidance_scale=1.8, negative_prompt_ids=neg_t), {"guidance_scale": 1.8,
                                                                              "negative_prompt_ids": neg}),
            ("cfg_last", dict(guidance_scale=3.0), {"guidance_scale": 3.0}),  # default: the last prompt token
            ("cfg_weak_rp", dict(guidance_scale=0.5, negative_prompt_ids=neg_t, repetition_penalty=1.3),
             {"guidance_scale": 0.5, "negative_prompt_ids": neg, "repetition_penalty": 1.3})):
        ref = hf_generate(model, cfg_prompts, [EOS], max_new_tokens=24, do_sample=False, **kw)
        jobs.append({"name": name, "kind": "generate", "model": single, "prompts": cfg_prompts,
                     "options": {"max_new_tokens": 24, "eos_token_ids": [EOS], "pad_token_id": PAD, **opts}})
        expect[name] = ("tokens", ref, None, None)
    plain_ref = hf_generate(model, cfg_prompts, [EOS], max_new_tokens=24, do_sample=False)
    check(plain_ref != expect["cfg_neg"][1], "cfg_neg: guidance changes HF's greedy tokens")
    torch.manual_seed(5)
    ref = hf_generate(model, cfg_prompts, [EOS], max_new_tokens=24, do_sample=True, temperature=0.7, top_k=30,
                      guidance_scale=1.5, negative_prompt_ids=neg_t)
    jobs.append({"name": "cfg_sample", "kind": "generate", "model": single, "prompts": cfg_prompts,
                 "options": {"max_new_tokens": 24, "do_sample": True, "temperature": 0.7, "top_k": 30, "seed": 5,
                             "guidance_scale": 1.5, "negative_prompt_ids": neg, "eos_token_ids": [EOS],
                             "pad_token_id": PAD}})
    expect["cfg_sample"] = ("tokens", ref, None, None)

    # ---- inputs_embeds (image tokens written over positions 1..8), left padded
    emb_tensors = {}
    for name, lengths, new in (("embeds_short", [14, 30], 20), ("embeds_long", [70, 20], 12)):
        prompts = random_prompts(rng, lengths)
        ids, mask = left_pad(prompts)
        with torch.no_grad():
            emb = model.get_input_embeddings()(ids).clone()
            for i, p in enumerate(prompts):
                start = ids.shape[1] - len(p)
                emb[i, start + 1:start + 9] = torch.randn(8, 64) * 0.5
            out = model.generate(inputs_embeds=emb, attention_mask=mask, max_new_tokens=new, do_sample=False,
                                 eos_token_id=[EOS], pad_token_id=PAD)
        ref = [trim(r.tolist(), [EOS]) for r in out]
        emb_tensors[name] = emb.contiguous()
        jobs.append({"name": name, "kind": "generate_embeds", "model": single, "embeds": name,
                     "mask": mask.tolist(),
                     "options": {"max_new_tokens": new, "eos_token_ids": [EOS], "pad_token_id": PAD}})
        expect[name] = ("tokens", ref, None, None)
    # Guidance with embedding prompts against a token negative prompt (as hse-generate --guidance-scale
    # does with the image-free prompt): C++ takes the negative prompt's embeddings.
    prompts = random_prompts(rng, [14, 30])
    ids, mask = left_pad(prompts)
    with torch.no_grad():
        emb = model.get_input_embeddings()(ids).clone()
        emb[:, -20:-12] = torch.randn(2, 8, 64) * 0.5
        neg = torch.tensor(random_prompts(rng, [5, 5]))
        out = model.generate(inputs_embeds=emb, attention_mask=mask, max_new_tokens=20, do_sample=False,
                             eos_token_id=[EOS], pad_token_id=PAD, guidance_scale=2.0, negative_prompt_ids=neg)
        emb_tensors["cfg_embeds"] = emb.contiguous()
        emb_tensors["cfg_embeds_neg"] = model.get_input_embeddings()(neg).contiguous()
    jobs.append({"name": "cfg_embeds", "kind": "generate_embeds", "model": single, "embeds": "cfg_embeds",
                 "negative_embeds": "cfg_embeds_neg", "mask": mask.tolist(),
                 "options": {"max_new_tokens": 20, "eos_token_ids": [EOS], "pad_token_id": PAD,
                             "guidance_scale": 2.0}})
    expect["cfg_embeds"] = ("tokens", [trim(r.tolist(), [EOS]) for r in out], None, None)
    emb_file = os.path.join(tmp, "embeds.safetensors")
    save_file(emb_tensors, emb_file)

    # ---- bf16 and int8
    ids_b, mask_b = left_pad(seqs)
    with torch.no_grad():
        ref32 = model(input_ids=ids_b, attention_mask=mask_b, position_ids=positions(mask_b)).logits.numpy()
        m16 = Phi3ForCausalLM.from_pretrained(single, dtype=torch.bfloat16).eval()
        ref16 = m16(input_ids=ids_b, attention_mask=mask_b, position_ids=positions(mask_b)).logits.float().numpy()
        m8 = Phi3ForCausalLM.from_pretrained(single).eval()
        quantize_int8_(m8)
        ref8 = m8(input_ids=ids_b, attention_mask=mask_b, position_ids=positions(mask_b)).logits.numpy()
    jobs.append({"name": "bf16", "kind": "logits", "model": single, "dtype": "bf16", "ids": ids_b.tolist(),
                 "mask": mask_b.tolist()})
    jobs.append({"name": "int8", "kind": "logits", "model": single, "int8": True, "ids": ids_b.tolist(),
                 "mask": mask_b.tolist()})

    # ---- run the C++ side once
    jobs_file = os.path.join(tmp, "jobs.json")
    out_file = os.path.join(tmp, "out.safetensors")
    json.dump({"jobs": jobs}, open(jobs_file, "w"))
    t = time.time()
    r = run_driver({"HSE_PHI3_JOBS": jobs_file, "HSE_PHI3_OUT": out_file, "HSE_PHI3_TENSORS": emb_file,
                    "HSE_PHI3_THREADS": str(THREADS)})
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        check(False, "driver failed")
        return 1
    print(f"C++ driver: {len(jobs)} jobs in {time.time() - t:.1f} s")
    got = load_file(out_file)

    real = lambda m, i: np.nonzero(m[i])[0] if m is not None else None  # noqa: E731
    for name, (kind, ref, lengths, mask) in expect.items():
        if kind == "logits":
            a = got[f"{name}.logits"]
            worst = 0.0
            for i, rr in enumerate(ref):
                if mask is not None:
                    keep = real(mask, i)
                    d = np.abs(a[i][keep] - rr[keep]).max()
                else:
                    d = np.abs(a[i] - rr).max()
                worst = max(worst, float(d))
            check(worst <= 1e-3, f"{name}: max |logit diff| {worst:.3g} > 1e-3")
            print(f"logits {name}: max |C++ - HF| = {worst:.3g}")
        elif kind == "same_as":
            same = np.array_equal(got[f"{name}.logits"], got[f"{ref}.logits"])
            check(same, f"{name}: sharded checkpoint logits differ from the single file's")
            print(f"logits {name}: identical to the single-file checkpoint: {same}")
        else:
            cpp = [got[f"{name}.{i}"].tolist() for i in range(len(ref))]
            ok = cpp == ref
            check(ok, f"{name}: tokens differ\n  C++ {cpp}\n  HF  {ref}")
            print(f"tokens {name}: {len(ref)} sequences, lengths {[len(x) for x in ref]}, identical: {ok}")

    keep_all = [real(mask_b.numpy(), i) for i in range(len(seqs))]
    scale = max(float(np.abs(ref32[i][k]).max()) for i, k in enumerate(keep_all))
    d16 = max(float(np.abs(got["bf16.logits"][i][k] - ref16[i][k]).max()) for i, k in enumerate(keep_all))
    d16_32 = max(float(np.abs(got["bf16.logits"][i][k] - ref32[i][k]).max()) for i, k in enumerate(keep_all))
    h16_32 = max(float(np.abs(ref16[i][k] - ref32[i][k]).max()) for i, k in enumerate(keep_all))
    check(d16 <= 0.02 * scale, f"bf16: max |C++ - HF bf16| {d16:.3g} > 0.02 * {scale:.3g}")
    print(f"bf16 logits: max |C++ bf16 - HF bf16| = {d16:.3g}; vs fp32: C++ {d16_32:.3g}, HF {h16_32:.3g} "
          f"(max |logit| {scale:.3g})")
    d8 = max(float(np.abs(got["int8.logits"][i][k] - ref8[i][k]).max()) for i, k in enumerate(keep_all))
    d8_32 = max(float(np.abs(got["int8.logits"][i][k] - ref32[i][k]).max()) for i, k in enumerate(keep_all))
    check(d8 <= 1e-3, f"int8: max |C++ - HF with int8-rounded weights| {d8:.3g} > 1e-3")
    print(f"int8 logits: max |C++ - HF int8-rounded| = {d8:.3g}; vs fp32 weights {d8_32:.3g}")

    # ---- config errors: exit 3 naming the file
    base = json.load(open(os.path.join(single, "config.json")))
    for label, edit, needle in (
            ("unknown rope type", lambda j: j["rope_parameters"].update(rope_type="dynamic", type="dynamic"),
             "unknown rope_scaling type 'dynamic'"),
            ("missing hidden_size", lambda j: j.pop("hidden_size"), "missing required field 'hidden_size'")):
        j = json.loads(json.dumps(base))
        edit(j)
        path = os.path.join(tmp, f"bad_{label.replace(' ', '_')}.json")
        json.dump(j, open(path, "w"))
        r = run_driver({"HSE_PHI3_MODE": "config", "HSE_PHI3_CONFIG": path})
        ok = r.returncode == 3 and path in r.stderr and needle in r.stderr
        check(ok, f"config {label}: exit {r.returncode}, stderr {r.stderr.strip()!r}")
        print(f"config {label}: exit {r.returncode}: {r.stderr.strip()}")
    r = run_driver({"HSE_PHI3_MODE": "config", "HSE_PHI3_CONFIG": os.path.join(single, "config.json")})
    check(r.returncode == 0, f"the saved config reads (exit {r.returncode}: {r.stderr.strip()})")

    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
