#!/usr/bin/env python3
"""Parity test: hse::model::Vit3d and E2E3 against MONAI's ViT (hsenet-spec §1, §2).

MONAI's ViT (proj_type "perceptron", classification=True, qkv_bias=False) is
built with random weights; its state_dict, less MONAI's classification head
(and MONAI 1.4's unused cross-attention modules), is exactly the published
layout. hse's "driver: vit3d" test case (tests/torch/test_vit3d.cpp) loads the
checkpoint, runs the forward in eval mode and writes last, hidden_<i> and
scores; they must match MONAI's ViT.forward (CLS prepended after the position
embeddings) within 1e-4 relative (max |diff| / max |ref|, fp32).

The 2E3 encoder is checked against a torch transcription of HSENet's
regular_attention + ViT_stage2.forward on top of the same MONAI modules, from a
stage-2-like checkpoint (2E3 under "vision_encoder.", a stage-1 ViT under
"stage1_pretrained_CLIP.vision_encoder.").

Sizes: the tiny config (share/hse/configs/vit3d-tiny.json), a mid one
(16x64x64, hidden 128, 4 layers, slice features 96 wide), and HSENet's real
width and input (32x256x256, 768, 12 heads) with 2 layers (12 with
HSE_PARITY_FULL=1).

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
    import torch.nn as nn
    import torch.nn.functional as F
    import safetensors.torch as stt
    import monai
    from monai.networks.nets import ViT
    import einops  # noqa: F401  (MONAI's perceptron patch embedding needs it)
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "")
SRC = os.environ.get("HSE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EXE = os.path.join(BIN, "torch_test_vit3d")
if not os.access(EXE, os.X_OK):
    print(f"skip: {EXE} not built")
    sys.exit(77)

TOL = 1e-4
TMP = tempfile.mkdtemp(prefix="hse_vit3d_parity_")
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


# ---- references ----------------------------------------------------------------

PUBLISHED_BLOCK_KEYS = [
    "mlp.linear1.weight", "mlp.linear1.bias", "mlp.linear2.weight", "mlp.linear2.bias",
    "norm1.weight", "norm1.bias", "attn.out_proj.weight", "attn.out_proj.bias", "attn.qkv.weight",
    "norm2.weight", "norm2.bias",
]


def published_keys(layers):
    keys = {"cls_token", "patch_embedding.position_embeddings", "patch_embedding.patch_embeddings.1.weight",
            "patch_embedding.patch_embeddings.1.bias", "norm.weight", "norm.bias"}
    for i in range(layers):
        keys |= {f"blocks.{i}.{k}" for k in PUBLISHED_BLOCK_KEYS}
    return keys


def monai_vit(cfg, seed):
    torch.manual_seed(seed)
    m = ViT(in_channels=cfg["in_channels"], img_size=cfg["img_size"], patch_size=cfg["patch_size"],
            hidden_size=cfg["hidden_size"], mlp_dim=cfg["mlp_dim"], num_layers=cfg["num_layers"],
            num_heads=cfg["num_heads"], proj_type="perceptron", pos_embed_type="learnable",
            classification=True, dropout_rate=0.0, qkv_bias=False, spatial_dims=3)
    # Non-trivial values where MONAI initialises constants (cls zeros, LayerNorm 1/0).
    with torch.no_grad():
        m.cls_token.normal_(0, 0.5)
        for name, p in m.named_parameters():
            if ".norm" in name or name.startswith("norm"):
                p.add_(torch.randn_like(p) * 0.1)
    del m.classification_head  # HSENet's ViT has none; ViT.forward then returns (norm(x), hidden states)
    return m.eval()


def vit_state(m):
    """MONAI's state_dict in the published layout (drops MONAI 1.4's unused cross-attention)."""
    sd = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()
          if ".cross_attn." not in k and ".norm_cross_attn." not in k}
    return sd


class RegularAttention(nn.Module):
    """HSENet's regular_attention (multimodal_encoder/vit.py), slice width as a parameter."""

    def __init__(self, emb_dim, slice_dim, dropout=0.1):
        super().__init__()
        self.Wq = nn.Linear(emb_dim, emb_dim)
        self.Wk = nn.Linear(slice_dim, emb_dim)
        self.Wv = nn.Linear(slice_dim, emb_dim)
        self.output_linear = nn.Linear(emb_dim, emb_dim)
        self.dropout = nn.Dropout(p=dropout)
        self.dropout_2 = nn.Dropout(p=dropout)
        self.norm = nn.LayerNorm(emb_dim)

    def forward(self, q_in, k_in, v_in):
        q, k, v = self.Wq(q_in), self.Wk(k_in), self.Wv(v_in)
        a = F.softmax(torch.matmul(q, k.transpose(-2, -1)) / (q.size(-1) ** 0.5), dim=-1)
        x = self.output_linear(torch.matmul(self.dropout(a), v))
        return self.norm(q + self.dropout_2(x))


class E2E3Ref(nn.Module):
    """ViT_stage2.forward: scores from the slice-guided attention weight every patch."""

    def __init__(self, cfg, seed):
        super().__init__()
        self.vit = monai_vit(cfg, seed)
        torch.manual_seed(seed + 1000)
        self.patch_score_proj = nn.Linear(cfg["hidden_size"], 1)
        self.slice_guided_attention = RegularAttention(cfg["hidden_size"], cfg["slice_dim"])
        with torch.no_grad():
            n = self.slice_guided_attention.norm
            n.weight.add_(torch.randn_like(n.weight) * 0.1)
            n.bias.add_(torch.randn_like(n.bias) * 0.1)
        self.eval()

    def state(self):
        sd = vit_state(self.vit)
        for k, v in self.patch_score_proj.state_dict().items():
            sd["patch_score_proj." + k] = v.detach().clone()
        for k, v in self.slice_guided_attention.state_dict().items():
            sd["slice_guided_attention." + k] = v.detach().clone()
        return sd

    def forward(self, x, slices):
        b = x.size(0)
        p = self.vit.patch_embedding(x)
        z = self.slice_guided_attention(p, slices, slices)
        scores = torch.sigmoid(self.patch_score_proj(z).view(b, p.size(1)))
        xw = p * scores.unsqueeze(-1)
        xw = torch.cat((self.vit.cls_token.expand(b, -1, -1), xw), dim=1)
        hidden = []
        for blk in self.vit.blocks:
            xw = blk(xw)
            hidden.append(xw)
        return self.vit.norm(xw), hidden, scores


# ---- hse driver ------------------------------------------------------------------

def driver(cfg_path, ckpt, inputs, prefix, kind):
    out = os.path.join(TMP, "out.safetensors")
    if os.path.exists(out):
        os.remove(out)
    env = dict(os.environ)
    env.update({"HSE_VIT_CKPT": ckpt, "HSE_VIT_CONFIG": cfg_path, "HSE_VIT_IN": inputs, "HSE_VIT_OUT": out,
                "HSE_VIT_PREFIX": prefix, "HSE_VIT_KIND": kind})
    p = subprocess.run([EXE, "-tc=driver*"], env=env, capture_output=True, text=True)
    if p.returncode != 0 or not os.path.exists(out):
        return None, p
    return stt.load_file(out), p


def compare(tag, got, last, hidden, scores=None):
    if got is None:
        check(False, f"{tag}: driver failed")
        return
    r_last = rel(got["last"], last)
    check(tuple(got["last"].shape) == tuple(last.shape), f"{tag}: last shape {tuple(got['last'].shape)}")
    check(r_last < TOL, f"{tag}: last rel diff {r_last:.2e}")
    r_hidden = 0.0
    for i, h in enumerate(hidden):
        g = got.get(f"hidden_{i}")
        check(g is not None and g.shape == h.shape, f"{tag}: hidden_{i} missing or mis-shaped")
        if g is not None and g.shape == h.shape:
            r_hidden = max(r_hidden, rel(g, h))
    check(r_hidden < TOL, f"{tag}: hidden states rel diff {r_hidden:.2e}")
    check(f"hidden_{len(hidden)}" not in got, f"{tag}: extra hidden state")
    msg = f"{tag}: last {r_last:.2e}, hidden {r_hidden:.2e}"
    if scores is not None:
        g = got.get("scores")
        check(g is not None and g.shape == scores.shape, f"{tag}: scores missing or mis-shaped")
        if g is not None and g.shape == scores.shape:
            r_s = rel(g, scores)
            check(r_s < TOL, f"{tag}: scores rel diff {r_s:.2e}")
            msg += f", scores {r_s:.2e} (range {float(scores.min()):.3f}..{float(scores.max()):.3f})"
    else:
        check("scores" not in got, f"{tag}: scores written for a plain ViT")
    print(msg)


def run_config(tag, cfg, batch, seed):
    cfg_path = os.path.join(TMP, f"{tag}.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    # Stage 1: a plain ViT under vision_encoder.
    vit = monai_vit(cfg, seed)
    sd = vit_state(vit)
    check(set(sd) == published_keys(cfg["num_layers"]),
          f"{tag}: MONAI keys differ from the published layout: {sorted(set(sd) ^ published_keys(cfg['num_layers']))[:6]}")
    check(len(sd) == 6 + 11 * cfg["num_layers"], f"{tag}: {len(sd)} vision tensors")
    ckpt1 = os.path.join(TMP, f"{tag}_stage1.safetensors")
    stt.save_file({"vision_encoder." + k: v for k, v in sd.items()}, ckpt1)

    g = torch.Generator().manual_seed(seed + 7)
    d, h, w = cfg["img_size"]
    x = torch.rand(batch, cfg["in_channels"], d, h, w, generator=g)
    slices = torch.randn(batch, 32, cfg["slice_dim"], generator=g)
    inputs = os.path.join(TMP, f"{tag}_in.safetensors")
    stt.save_file({"x": x.contiguous(), "slices": slices.contiguous()}, inputs)

    with torch.no_grad():
        last, hidden = vit(x)  # MONAI's ViT.forward
        # HSENet's ViT_stage1.forward: patch_embedding (+pos) -> cat cls -> blocks -> norm.
        p = vit.patch_embedding(x)
        t = torch.cat((vit.cls_token.expand(batch, -1, -1), p), dim=1)
        for blk in vit.blocks:
            t = blk(t)
        check(torch.equal(vit.norm(t), last), f"{tag}: MONAI ViT.forward differs from HSENet's order")
    check(tuple(last.shape) == (batch, vit.patch_embedding.n_patches + 1, cfg["hidden_size"]),
          f"{tag}: reference shape {tuple(last.shape)}")
    got, _ = driver(cfg_path, ckpt1, inputs, "vision_encoder.", "vit3d")
    compare(f"{tag} vit3d", got, last, hidden)

    # Stage 2: the 2E3 under vision_encoder., a frozen stage-1 ViT under stage1_pretrained_CLIP.
    e = E2E3Ref(cfg, seed + 1)
    state2 = {"vision_encoder." + k: v for k, v in e.state().items()}
    check(len(state2) == 6 + 11 * cfg["num_layers"] + 12, f"{tag}: {len(state2)} 2E3 tensors")
    state2.update({"stage1_pretrained_CLIP.vision_encoder." + k: v for k, v in sd.items()})
    state2["logit_scale"] = torch.tensor(2.6593)
    ckpt2 = os.path.join(TMP, f"{tag}_stage2.safetensors")
    stt.save_file(state2, ckpt2)
    with torch.no_grad():
        last2, hidden2, scores2 = e(x, slices)
    got, _ = driver(cfg_path, ckpt2, inputs, "vision_encoder.", "e2e3")
    compare(f"{tag} e2e3", got, last2, hidden2, scores2)
    got, _ = driver(cfg_path, ckpt2, inputs, "stage1_pretrained_CLIP.vision_encoder.", "vit3d")
    compare(f"{tag} stage-1 ViT in the stage-2 checkpoint", got, last, hidden)
    return cfg_path, ckpt1, inputs


def main():
    print(f"monai {monai.__version__}, torch {torch.__version__}")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with open(os.path.join(SRC, "share/hse/configs/vit3d-tiny.json")) as f:
        tiny = json.load(f)
    cfg_path, ckpt1, inputs = run_config("tiny", tiny, batch=2, seed=11)

    mid = dict(tiny, img_size=[16, 64, 64], hidden_size=128, mlp_dim=256, num_layers=4, num_heads=8, slice_dim=96)
    run_config("mid", mid, batch=2, seed=12)

    with open(os.path.join(SRC, "share/hse/configs/vit3d-hsenet.json")) as f:
        real = json.load(f)
    if os.environ.get("HSE_PARITY_FULL") != "1":
        real["num_layers"] = 2
    run_config(f"hsenet-width-{real['num_layers']}-layers", real, batch=1, seed=13)

    # A checkpoint missing a block key: the driver fails, naming the key.
    st = stt.load_file(ckpt1)
    del st["vision_encoder.blocks.1.mlp.linear2.weight"]
    bad = os.path.join(TMP, "missing.safetensors")
    stt.save_file(st, bad)
    got, p = driver(cfg_path, bad, inputs, "vision_encoder.", "vit3d")
    check(got is None and p.returncode != 0, "missing key: driver succeeded")
    check("vision_encoder.blocks.1.mlp.linear2.weight" in p.stdout + p.stderr, "missing key: not named")

    shutil.rmtree(TMP, ignore_errors=True)
    print(f"{passed} checks passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
