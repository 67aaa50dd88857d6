#!/usr/bin/env python3
"""Parity test: hse's LoRA (lib/hse/model/lora.h) against peft 0.21 on transformers' Phi3ForCausalLM.

Reference: a tiny random Phi3ForCausalLM (GQA 4/2 heads, head_dim 16, partial RoPE 0.75, tied
embeddings; weights drawn with std 0.15 so the layers matter) saved with save_pretrained, and peft
LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules qkv_proj/o_proj/gate_up_proj/
down_proj, bias "none", CAUSAL_LM) with lora_A and lora_B randomised (B nonzero), saved with
PeftModel.save_pretrained (adapter_config.json + adapter_model.safetensors). Nothing is downloaded.

Checks (C++ side: $HSE_BIN_DIR/torch_test_lora -tc="driver: lora", see tests/torch/test_lora.cpp):
  - hse loads base + PEFT adapter: logits vs PeftModel (eval) max |diff| <= 1e-4 (fp32);
  - hse merged (W += s·B@A) vs unmerged logits <= 1e-4, and unmerge restores them <= 1e-4;
  - the adapter hse saves has PEFT's exact key set and shapes, loads with LoraConfig.from_pretrained
    and PeftModel.from_pretrained, and gives PEFT's logits within 1e-4;
  - the ".default." in-memory names (HSENet's pickle form) load to the same logits;
  - use_rslora with rank_pattern/alpha_pattern: logits within 1e-4;
  - PEFT's init: torch.manual_seed(s) then get_peft_model vs torch::manual_seed(s) then apply_lora:
    every lora_A identical (same generator, same draw order), reported;
  - an adapter for another base model (other hidden size) and one naming another base model exit 3
    with a message naming the file.
Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import copy
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402

pc.offline_env()

with pc.needs_modules():
    import numpy as np
    import torch
    from safetensors import safe_open
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as load_torch, save_file

    from transformers import Phi3ForCausalLM

    pc.quiet_transformers()
    from peft import LoraConfig, PeftModel, get_peft_model

DRIVER = pc.driver("torch_test_lora")
maxdiff = pc.maxdiff

torch.set_num_threads(1)
TARGETS = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
check = pc.Tally()


def base_model(tmp, name, hidden=64, seed=1234):
    m = pc.tiny_phi3(seed, hidden_size=hidden)
    d = os.path.join(tmp, name)
    m.save_pretrained(d, safe_serialization=True)
    return m, d


def peft_adapter(base, base_dir, out_dir, seed, **kw):
    cfg = LoraConfig(r=kw.pop("r", 4), lora_alpha=kw.pop("lora_alpha", 8), lora_dropout=0.05,
                     target_modules=TARGETS, bias="none", task_type="CAUSAL_LM", **kw)
    pm = get_peft_model(copy.deepcopy(base), cfg)
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.normal_(0.0, 0.1)
    pm.peft_config["default"].base_model_name_or_path = base_dir
    pm.eval()
    pm.save_pretrained(out_dir)
    return pm


def run_driver(jobs, tmp, tag):
    jp = os.path.join(tmp, f"{tag}_jobs.json")
    out = os.path.join(tmp, f"{tag}_out.safetensors")
    with open(jp, "w") as f:
        json.dump({"jobs": jobs}, f)
    r = pc.run_driver(DRIVER, "lora", {"HSE_LORA_JOBS": jp, "HSE_LORA_OUT": out})
    return r, out


def body(tmp):
    base, base_dir = base_model(tmp, "Tiny-Phi3")
    torch.manual_seed(5)
    ids = torch.randint(3, 128, (2, 21))
    ids_list = ids.tolist()

    # 1. PEFT adapter -> hse.
    ad = os.path.join(tmp, "peft_adapter")
    pm = peft_adapter(base, base_dir, ad, seed=11)
    with torch.no_grad():
        ref = pm(input_ids=ids).logits.numpy()
    with safe_open(os.path.join(ad, "adapter_model.safetensors"), "pt") as f:
        peft_keys = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    check(len(peft_keys) == 2 * 4 * 2, f"PEFT saved {len(peft_keys)} tensors")
    check(all(".default." not in k for k in peft_keys), "PEFT's saved names have no adapter name")

    # The .default. form (HSENet's pickle names).
    pub = os.path.join(tmp, "published")
    os.makedirs(pub)
    sd = load_torch(os.path.join(ad, "adapter_model.safetensors"))
    save_file({k.replace(".weight", ".default.weight"): v for k, v in sd.items()},
              os.path.join(pub, "adapter_model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(ad, "adapter_config.json"), pub)

    # rslora + patterns.
    ad_rs = os.path.join(tmp, "rslora")
    pm_rs = peft_adapter(base, base_dir, ad_rs, seed=12, use_rslora=True, rank_pattern={"o_proj": 2},
                         alpha_pattern={"down_proj": 3})
    with torch.no_grad():
        ref_rs = pm_rs(input_ids=ids).logits.numpy()

    saved = os.path.join(tmp, "hse_saved")
    jobs = [
        {"name": "peft", "model": base_dir, "adapter": ad, "ids": ids_list, "save": saved},
        {"name": "published", "model": base_dir, "adapter": pub, "ids": ids_list},
        {"name": "rslora", "model": base_dir, "adapter": ad_rs, "ids": ids_list},
        {"name": "init", "model": base_dir, "init_seed": 77,
         "config": json.load(open(os.path.join(ad, "adapter_config.json")))},
    ]
    r, out = run_driver(jobs, tmp, "main")
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        check(False, f"driver exit {r.returncode}")
        return
    o = load_file(out)
    d = maxdiff(o["peft.unmerged"], ref)
    print(f"PEFT adapter: hse vs peft logits max|diff| = {d:.3g} (|logits| max {np.abs(ref).max():.3g})")
    check(d <= 1e-4, f"hse vs peft logits {d}")
    dm = maxdiff(o["peft.merged"], o["peft.unmerged"])
    du = maxdiff(o["peft.unmerged_again"], o["peft.unmerged"])
    print(f"merged vs unmerged max|diff| = {dm:.3g}; after unmerge {du:.3g}; merged vs peft {maxdiff(o['peft.merged'], ref):.3g}")
    check(dm <= 1e-4, f"merged vs unmerged {dm}")
    check(du <= 1e-4, f"unmerged again {du}")
    dp = maxdiff(o["published.unmerged"], ref)
    print(f".default. names: max|diff| = {dp:.3g}")
    check(dp <= 1e-4, f".default. form {dp}")
    dr = maxdiff(o["rslora.unmerged"], ref_rs)
    print(f"rslora + rank/alpha patterns: max|diff| = {dr:.3g}")
    check(dr <= 1e-4, f"rslora {dr}")
    check(maxdiff(o["rslora.merged"], ref_rs) <= 1e-4, "rslora merged")

    # 2. hse-saved adapter -> PEFT.
    with safe_open(os.path.join(saved, "adapter_model.safetensors"), "pt") as f:
        hse_keys = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        check(f.metadata() == {"format": "pt"}, f"metadata {f.metadata()}")
    check(hse_keys == peft_keys, "hse-saved key names/shapes == PEFT's")
    pc = LoraConfig.from_pretrained(saved)
    check(pc.r == 4 and pc.lora_alpha == 8 and set(pc.target_modules) == set(TARGETS) and not pc.use_rslora,
          f"LoraConfig.from_pretrained: {pc}")
    check(pc.base_model_name_or_path == base_dir, f"base_model_name_or_path {pc.base_model_name_or_path}")
    back = PeftModel.from_pretrained(Phi3ForCausalLM.from_pretrained(base_dir).eval(), saved).eval()
    with torch.no_grad():
        got = back(input_ids=ids).logits.numpy()
    db = maxdiff(got, ref)
    print(f"hse-saved adapter in peft: max|diff| = {db:.3g}")
    check(db <= 1e-4, f"hse-saved adapter in peft {db}")

    # 3. PEFT's initialisation, same seed.
    torch.manual_seed(77)
    fresh = get_peft_model(Phi3ForCausalLM.from_pretrained(base_dir).eval(),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, target_modules=TARGETS, bias="none",
                                      task_type="CAUSAL_LM"))
    n_same = n_all = 0
    worst = 0.0
    for n, p in fresh.named_parameters():
        if "lora_A" not in n:
            continue
        mod = n[len("base_model.model."):-len(".lora_A.default.weight")]
        key = f"init.init.{mod}.lora_A"
        if key not in o:
            check(False, f"no init output for {mod}")
            continue
        n_all += 1
        dd = maxdiff(o[key], p.detach().numpy())
        worst = max(worst, dd)
        n_same += dd == 0.0
    print(f"PEFT init with the same seed: {n_same}/{n_all} lora_A identical (max|diff| {worst:.3g})")
    check(n_all == 8 and worst <= 1e-6, f"init parity {n_same}/{n_all}, {worst}")

    # 4. Mismatches exit 3 naming the file.
    # Same directory name, other shapes: only the tensor shapes tell.
    _, other_dir = base_model(tmp, os.path.join("other", "Tiny-Phi3"), hidden=32, seed=99)
    r, _ = run_driver([{"name": "x", "model": other_dir, "adapter": ad, "ids": ids_list}], tmp, "mis")
    check(r.returncode == 3, f"other-size base: exit {r.returncode}")
    check(os.path.join(ad, "adapter_model.safetensors") in r.stderr and "mis-shaped" in r.stderr,
          f"other-size base message: {r.stderr.strip()}")
    print(f"other-size base: {r.stderr.strip()[:300]}")
    renamed = os.path.join(tmp, "renamed")
    shutil.copytree(ad, renamed)
    cfg = json.load(open(os.path.join(renamed, "adapter_config.json")))
    cfg["base_model_name_or_path"] = "microsoft/Phi-4-mini-instruct"
    json.dump(cfg, open(os.path.join(renamed, "adapter_config.json"), "w"))
    r, _ = run_driver([{"name": "x", "model": base_dir, "adapter": renamed, "ids": ids_list}], tmp, "name")
    check(r.returncode == 3, f"other base name: exit {r.returncode}")
    check(os.path.join(renamed, "adapter_config.json") in r.stderr and "Phi-4-mini-instruct" in r.stderr,
          f"other base name message: {r.stderr.strip()}")
    print(f"other base name: {r.stderr.strip()[:300]}")


def main():
    pc.run_in_tmp("hse_lora_parity_", body)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
