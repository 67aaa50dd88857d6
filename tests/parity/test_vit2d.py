#!/usr/bin/env python3
"""Parity test: hse::model::Vit2d against timm's VisionTransformer (hsenet-spec §2).

BiomedCLIP's image trunk is timm.create_model('vit_base_patch16_224') held by
open_clip's TimmModel as `trunk`, so its tensors sit under "visual.trunk." in
the open_clip checkpoint, and the slice feature is the CLS token after the
final norm (global_pool 'token', before the 768->512 head).

timm models are built with random weights (LayerNorms, biases and the CLS token
perturbed away from their constant init), their state_dict is saved under
"visual.trunk." next to a few open_clip keys outside the trunk, and hse's
"driver: vit2d" case (tests/torch/test_vit2d.cpp) loads it and writes "cls"
(and "tokens"). They must match timm's forward_features (tokens) and
forward_head(pre_logits=True) (= forward_features()[:, 0]) within 1e-4
relative (max |diff| / max |ref|, fp32).

Sizes: vit_base_patch16_224 itself (share/hse/configs/vit2d-biomedclip.json),
the tiny config (share/hse/configs/vit2d-tiny.json) and a mid one (48x64
images, width 96, 6 heads, 3 blocks, mlp_ratio 2.5); encode_slices on a
[N,S,3,H,W] stack; a plain timm checkpoint with a classifier head (no prefix);
a checkpoint missing a key.

Environment: HSE_BIN_DIR (the build's bin/), HSE_SOURCE_DIR. Exit 0 pass, 77 skip, 1 fail.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import torch
    import safetensors.torch as stt
    import timm
    from timm.models.vision_transformer import VisionTransformer
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "")
SRC = os.environ.get("HSE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EXE = os.path.join(BIN, "torch_test_vit2d")
if not os.access(EXE, os.X_OK):
    print(f"skip: {EXE} not built")
    sys.exit(77)

TOL = 1e-4
PREFIX = "visual.trunk."
TMP = tempfile.mkdtemp(prefix="hse_vit2d_parity_")
failures = []
passed = 0


def check(cond, msg):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(msg)
        print("FAIL " + msg)


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


BLOCK_KEYS = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
              "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
              "mlp.fc2.weight", "mlp.fc2.bias"]


def expected_keys(depth):
    keys = ["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
    for i in range(depth):
        keys += [f"blocks.{i}.{k}" for k in BLOCK_KEYS]
    return keys + ["norm.weight", "norm.bias"]


def perturb(m, seed):
    """Non-trivial values where timm initialises constants (LayerNorm 1/0, zero biases, cls ~1e-6)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.cls_token.normal_(0, 0.5, generator=g)
        for name, p in m.named_parameters():
            if "norm" in name or name.endswith(".bias"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return m.eval()


def driver(cfg_path, ckpt, inputs, prefix=PREFIX, batch=None):
    out = os.path.join(TMP, "out.safetensors")
    if os.path.exists(out):
        os.remove(out)
    env = dict(os.environ)
    env.update({"HSE_V2D_CKPT": ckpt, "HSE_V2D_CONFIG": cfg_path, "HSE_V2D_IN": inputs, "HSE_V2D_OUT": out,
                "HSE_V2D_PREFIX": prefix})
    if batch is not None:
        env["HSE_V2D_BATCH"] = str(batch)
    p = subprocess.run([EXE, "-tc=driver*"], env=env, capture_output=True, text=True)
    if p.returncode != 0 or not os.path.exists(out):
        return None, p
    return stt.load_file(out), p


def save_open_clip_like(m, path, embed_dim):
    """The trunk under visual.trunk. plus open_clip keys outside it (head, text tower, logit_scale)."""
    st = {PREFIX + k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
    st["visual.head.proj.weight"] = torch.randn(32, embed_dim)
    st["text.proj.0.weight"] = torch.randn(8, 4)
    st["logit_scale"] = torch.tensor(4.6052)
    stt.save_file(st, path)


def write_cfg(tag, cfg):
    path = os.path.join(TMP, f"{tag}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def run_config(tag, m, cfg_path, batch, seed):
    depth = len(m.blocks)
    sd = m.state_dict()
    check(list(sd) == expected_keys(depth),
          f"{tag}: timm keys differ from the expected layout: {sorted(set(sd) ^ set(expected_keys(depth)))[:6]}")
    ckpt = os.path.join(TMP, f"{tag}.safetensors")
    save_open_clip_like(m, ckpt, m.embed_dim)
    g = torch.Generator().manual_seed(seed)
    h, w = m.patch_embed.img_size
    x = torch.randn(batch, 3, h, w, generator=g)
    inputs = os.path.join(TMP, f"{tag}_in.safetensors")
    stt.save_file({"x": x.contiguous()}, inputs)
    with torch.no_grad():
        tokens = m.forward_features(x)
        cls = m.forward_head(tokens, pre_logits=True)
        check(torch.equal(cls, tokens[:, 0]), f"{tag}: timm's pooled feature is not the CLS token")
        if m.num_classes == 0:
            check(torch.equal(m(x), cls), f"{tag}: timm forward() differs from the CLS feature")
        # The same math without the fused attention kernel.
        for blk in m.blocks:
            blk.attn.fused_attn = False
        unfused = m.forward_features(x)
        for blk in m.blocks:
            blk.attn.fused_attn = True
    check(rel(unfused, tokens) < TOL, f"{tag}: timm fused vs unfused attention {rel(unfused, tokens):.2e}")
    got, p = driver(cfg_path, ckpt, inputs)
    if got is None:
        check(False, f"{tag}: driver failed: {(p.stdout + p.stderr)[-800:]}")
        return ckpt, x
    check(tuple(got["cls"].shape) == tuple(cls.shape), f"{tag}: cls shape {tuple(got['cls'].shape)}")
    check(tuple(got["tokens"].shape) == tuple(tokens.shape), f"{tag}: tokens shape {tuple(got['tokens'].shape)}")
    if got["cls"].shape == cls.shape and got["tokens"].shape == tokens.shape:
        r_cls, r_tok = rel(got["cls"], cls), rel(got["tokens"], tokens)
        check(r_cls < TOL, f"{tag}: cls rel diff {r_cls:.2e}")
        check(r_tok < TOL, f"{tag}: tokens rel diff {r_tok:.2e}")
        print(f"{tag}: cls {tuple(cls.shape)} rel diff {r_cls:.2e}, tokens {tuple(tokens.shape)} rel diff {r_tok:.2e}")
    return ckpt, x


def main():
    print(f"timm {timm.__version__}, torch {torch.__version__}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    # BiomedCLIP's trunk: vit_base_patch16_224 (qkv bias, LayerNorm eps 1e-6, 197 tokens, CLS pooling).
    torch.manual_seed(21)
    base = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
    check(base.global_pool == "token", f"base: global_pool {base.global_pool!r}")
    check(base.norm.eps == 1e-6 and base.blocks[0].norm1.eps == 1e-6, "base: LayerNorm eps is not 1e-6")
    check(tuple(base.pos_embed.shape) == (1, 197, 768), f"base: pos_embed {tuple(base.pos_embed.shape)}")
    check(isinstance(base.norm_pre, torch.nn.Identity) and isinstance(base.fc_norm, torch.nn.Identity),
          "base: norm_pre/fc_norm are not Identity")
    check(len(base.state_dict()) == 150, f"base: {len(base.state_dict())} tensors")
    perturb(base, 22)
    run_config("vit_base_patch16_224", base, os.path.join(SRC, "share/hse/configs/vit2d-biomedclip.json"),
               batch=2, seed=23)
    del base

    # Tiny (the shipped config) and mid.
    torch.manual_seed(31)
    tiny = perturb(VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4,
                                     num_classes=0), 32)
    tiny_cfg = os.path.join(SRC, "share/hse/configs/vit2d-tiny.json")
    tiny_ckpt, _ = run_config("tiny", tiny, tiny_cfg, batch=3, seed=33)

    torch.manual_seed(41)
    mid = perturb(VisionTransformer(img_size=(48, 64), patch_size=16, embed_dim=96, depth=3, num_heads=6,
                                    mlp_ratio=2.5, num_classes=0), 42)
    check(mid.blocks[0].mlp.fc1.out_features == 240, "mid: mlp hidden is not int(96*2.5)")
    mid_cfg = write_cfg("mid", {"img_size": [48, 64], "patch_size": 16, "embed_dim": 96, "depth": 3,
                                "num_heads": 6, "mlp_ratio": 2.5})
    run_config("mid", mid, mid_cfg, batch=2, seed=43)

    # encode_slices: a [N,S,3,H,W] stack, batches that do not divide N*S.
    g = torch.Generator().manual_seed(51)
    stack = torch.randn(2, 5, 3, 32, 32, generator=g)
    inputs = os.path.join(TMP, "stack_in.safetensors")
    stt.save_file({"x": stack.contiguous()}, inputs)
    with torch.no_grad():
        ref = tiny(stack.reshape(10, 3, 32, 32)).reshape(2, 5, 64)
    for b in (1, 3, 32):
        got, p = driver(tiny_cfg, tiny_ckpt, inputs, batch=b)
        if got is None:
            check(False, f"encode_slices batch {b}: driver failed: {(p.stdout + p.stderr)[-800:]}")
            continue
        ok = tuple(got["cls"].shape) == (2, 5, 64)
        check(ok, f"encode_slices batch {b}: shape {tuple(got['cls'].shape)}")
        if ok:
            r = rel(got["cls"], ref)
            check(r < TOL, f"encode_slices batch {b}: rel diff {r:.2e}")
            print(f"encode_slices [2,5,3,32,32] batch {b}: rel diff {r:.2e}")

    # A plain timm checkpoint with a classifier head, no prefix: the head is ignored.
    torch.manual_seed(61)
    cls10 = perturb(VisionTransformer(img_size=32, patch_size=16, embed_dim=64, depth=2, num_heads=4,
                                      num_classes=10), 62)
    plain = os.path.join(TMP, "plain.safetensors")
    stt.save_file({k: v.contiguous() for k, v in cls10.state_dict().items()}, plain)
    x = torch.randn(2, 3, 32, 32, generator=g)
    xin = os.path.join(TMP, "plain_in.safetensors")
    stt.save_file({"x": x}, xin)
    with torch.no_grad():
        ref = cls10.forward_head(cls10.forward_features(x), pre_logits=True)
    got, p = driver(tiny_cfg, plain, xin, prefix="")
    if got is None:
        check(False, f"plain timm checkpoint: driver failed: {(p.stdout + p.stderr)[-800:]}")
    else:
        r = rel(got["cls"], ref)
        check(r < TOL, f"plain timm checkpoint: rel diff {r:.2e}")
        print(f"plain timm checkpoint (head.* ignored, no prefix): cls rel diff {r:.2e}")

    # A checkpoint missing a block key: the driver fails, naming the key.
    st = stt.load_file(tiny_ckpt)
    del st[PREFIX + "blocks.1.attn.qkv.bias"]
    bad = os.path.join(TMP, "missing.safetensors")
    stt.save_file(st, bad)
    got, p = driver(tiny_cfg, bad, xin)
    check(got is None and p.returncode != 0, "missing key: driver succeeded")
    check(PREFIX + "blocks.1.attn.qkv.bias" in p.stdout + p.stderr, "missing key: not named")

    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
