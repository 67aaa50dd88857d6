#!/usr/bin/env python3
"""Convert HSENet's published VLM weights (a torch pickle) to safetensors for hse.

HSENet ships `HSENet-Phi-4-4B/{trained_vlm_for_ct_rate, trained_vlm_for_rad_geome}/pytorch_model.bin`
(hsenet-spec §8): a pickled dict holding only the named_parameters whose names contain
"mm_projector" or "lora", e.g.

    base_model.model.model.mm_projector.resolution_attention.Wq.weight        (Spatial Packer #1)
    base_model.model.model.mm_projector2.proj_mpls.2.weight                    (Spatial Packer #2)
    base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.default.weight  (LoRA, PEFT in-memory names)

hse (LibTorch) reads safetensors only. This script loads the pickle with
`torch.load(path, map_location="cpu", weights_only=True)` -- the restricted unpickler that only
rebuilds tensors and plain containers, never arbitrary objects -- and writes the same names and
values to a .safetensors file (metadata {"format": "pt"}). A PEFT `adapter_model.bin` converts the
same way. Then:

    python3 scripts/convert_hsenet_vlm.py pytorch_model.bin hsenet_vlm.safetensors
    # C++: hse::model::load_vlm("hsenet_vlm.safetensors", {.llm = "Phi-4-mini-instruct", ...})

Options:
    --dtype keep|fp32|fp16|bf16   tensor dtype in the output (default keep)
    --strict                      fail (exit 3) on keys that are neither packer nor LoRA keys
    --list                        print every key with its shape and dtype

Exit codes: 0 ok, 2 usage, 3 unusable input (not a pickle of tensors, unsafe content, strict
failure), 1 the output could not be written.
"""
import argparse
import os
import re
import sys

PACKER = re.compile(r"^base_model\.model\.model\.mm_projector2?\.")
LORA = re.compile(r"\.lora_[AB](\.default)?\.weight$")


def fail(code, msg):
    print(f"convert_hsenet_vlm: {msg}", file=sys.stderr)
    sys.exit(code)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="pytorch_model.bin (or adapter_model.bin)")
    ap.add_argument("output", help="output .safetensors")
    ap.add_argument("--dtype", choices=["keep", "fp32", "fp16", "bf16"], default="keep")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)

    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as e:
        fail(1, f"needs torch and safetensors: {e}")

    if not os.path.exists(args.input):
        fail(3, f"{args.input}: no such file")
    try:
        sd = torch.load(args.input, map_location="cpu", weights_only=True)
    except Exception as e:  # the restricted unpickler refuses anything but tensors and containers
        fail(3, f"{args.input}: cannot load with weights_only=True: {e}")
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd:
        fail(3, f"{args.input}: not a non-empty dict of tensors")
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        fail(3, f"{args.input}: {len(bad)} entries are not named tensors (e.g. {bad[0]!r})")

    dtype = {"keep": None, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    out, n_packer1, n_packer2, n_lora, other = {}, 0, 0, 0, []
    for k, v in sd.items():
        if PACKER.match(k):
            if ".mm_projector2." in k:
                n_packer2 += 1
            else:
                n_packer1 += 1
        elif LORA.search(k):
            n_lora += 1
        else:
            other.append(k)
        t = v.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[k] = t.contiguous().clone()  # no shared storage (safetensors refuses it)
    if args.list:
        for k, t in out.items():
            print(f"{k}\t{list(t.shape)}\t{str(t.dtype).replace('torch.', '')}")
    print(f"convert_hsenet_vlm: {len(out)} tensors: {n_packer1} mm_projector, {n_packer2} mm_projector2, "
          f"{n_lora} LoRA, {len(other)} other", file=sys.stderr)
    if other:
        msg = f"{len(other)} keys are neither packer nor LoRA keys (e.g. {other[0]})"
        if args.strict:
            fail(3, f"{args.input}: {msg}")
        print(f"convert_hsenet_vlm: warning: {msg}; hse's strict loading will report them", file=sys.stderr)
    try:
        tmp = args.output + ".tmp"
        save_file(out, tmp, metadata={"format": "pt"})
        os.replace(tmp, args.output)
    except Exception as e:
        fail(1, f"{args.output}: cannot write: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
