#!/usr/bin/env python3
"""Parity test: hse's Spatial Packer (lib/hse/model/packer.h) and VLM assembly (vlm.h) against an
independent PyTorch re-implementation written here from hsenet-spec §3/§4 (VisualPacker_3d_phi_v3,
resolution_attention_v3, lamed_arch.prepare_inputs_for_multimodal, LaMed's dataset labels).

Packer reference (PackerRef below): HR = X.view(B, D', H', W', C); LR = avg_pool3d over HR with
channels first (kernel = window, stride), flattened row-major; each query's keys/values are the HR
tokens of its own window, gathered here with explicit slicing loops (for the published 1x4x4 case
also checked against the spec's view/permute arrangement); single-head attention q = Wq(LR),
k = Wk(HR_blk), v = Wv(HR_blk), A = softmax(q·kᵀ/√C), y = LayerNorm(q + output_linear(A·v));
proj_mpls = Linear, exact GELU, Linear. Random weights (LayerNorm affine perturbed) are saved as
safetensors under the published names "base_model.model.model.mm_projector.{resolution_attention.
{Wq,Wk,Wv,output_linear,norm},proj_mpls.{0,2}}.{weight,bias}".

Checks (C++ side: $HSE_BIN_DIR/torch_test_packer -tc="driver: packer" and torch_test_vlm
-tc="driver: vlm"):
  packer outputs, max|diff| / max|ref| <= 1e-5, for: HSENet's full size (768 -> 3072, grid
      8x16x16, window 1x4x4, 128 tokens); a narrow width at grid 8x16x16 (B=2); windows 2x4x4 (64
      tokens) and 1x2x2 (512); overlapping windows 1x4x4 stride 1x2x2 (392) with mlp_hidden != out;
      the spatial_pool and sequence_pool baselines; the qformer baseline against transformers'
      Blip2QFormerModel (2 layers cross-attending every layer, and 3 layers / 4 heads / 32 queries
      cross-attending every 2nd layer); HSENet's own Q-Former (hsenet_qformer) against a
      transcription of its ablation_qformerProjector, literally (self-attention across the batch
      axis, B=2 and at full width 768 -> 3072) and with the queries attending among themselves;
      the anatomy packer against a token-by-token re-implementation
      (halo 0,1,1 and 1,2,2);
  VLM (tiny transformers Phi3ForCausalLM + peft LoRA r=4 + two reference packers at grid 8x16x16, so
      256 image tokens): the published checkpoint is made as HSENet makes it (torch.save of the
      named_parameters containing "mm_projector" or "lora" of the PeftModel), converted with
      scripts/convert_hsenet_vlm.py, loaded by hse::model::load_vlm:
        inputs_embeds (positions 1..256 = the packers' outputs, the rest = embed_tokens) <= 1e-5 rel,
        logits at the real positions <= 1e-4 abs, loss vs transformers' own labels loss <= 1e-5,
        greedy generation from two right-padded prompts == HF generate(inputs_embeds=...) tokens,
        the hse adapter directory it saves holds exactly the published names and values;
  labels: LaMed's __getitem__ logic re-implemented here on token ids (pad == eos as Phi-4-mini, pad
      != eos, truncation with and without room for EOS, EOS inside the answer) == vlm_train_example.
Environment: HSE_BIN_DIR (the build's bin/), HSE_SOURCE_DIR (for the conversion script).
Exit 0 pass, 77 skip, 1 fail.
"""
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity_common as pc  # noqa: E402

pc.offline_env()

with pc.needs_modules():
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from safetensors.numpy import load_file
    from safetensors.torch import save_file

    pc.quiet_transformers()
    from peft import LoraConfig, get_peft_model

SRC = os.environ.get("HSE_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PACKER_DRIVER = pc.driver("torch_test_packer")
VLM_DRIVER = pc.driver("torch_test_vlm")
CONVERT = os.path.join(SRC, "scripts", "convert_hsenet_vlm.py")

torch.set_num_threads(1)
check = pc.Tally()
rel = pc.rel
PREFIX = "base_model.model.model.mm_projector."


# ---------------------------------------------------------------- the reference, from the spec
class ResolutionAttentionRef(nn.Module):
    def __init__(self, dim, p=0.1):
        super().__init__()
        self.Wq = nn.Linear(dim, dim)
        self.Wk = nn.Linear(dim, dim)
        self.Wv = nn.Linear(dim, dim)
        self.output_linear = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(p)
        self.dropout_2 = nn.Dropout(p)
        self.norm = nn.LayerNorm(dim)

    def forward(self, lr, hr_blk):  # lr [B,Q,1,C], hr_blk [B,Q,K,C]
        q = self.Wq(lr)
        k = self.Wk(hr_blk)
        v = self.Wv(hr_blk)
        a = self.dropout(torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1)), dim=-1))
        y = self.norm(q + self.dropout_2(self.output_linear(torch.matmul(a, v))))
        return y.squeeze(2)


class PackerRef(nn.Module):
    def __init__(self, in_dim, out_dim, grid=(8, 16, 16), window=(1, 4, 4), stride=None, kind="v2p", mlp_hidden=None):
        super().__init__()
        self.grid, self.window, self.stride, self.kind = grid, window, stride or window, kind
        if kind == "v2p":
            self.resolution_attention = ResolutionAttentionRef(in_dim)
        hidden = mlp_hidden or out_dim
        self.proj_mpls = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def blocks(self, hr):
        (D, H, W), (wd, wh, ww), (sd, sh, sw) = self.grid, self.window, self.stride
        B, C = hr.shape[0], hr.shape[-1]
        out = []
        for d in range((D - wd) // sd + 1):
            for h in range((H - wh) // sh + 1):
                for w in range((W - ww) // sw + 1):
                    out.append(hr[:, d * sd:d * sd + wd, h * sh:h * sh + wh, w * sw:w * sw + ww, :].reshape(B, -1, C))
        return torch.stack(out, 1)

    def forward(self, x):
        B, N, C = x.shape
        if self.kind == "sequence_pool":
            k = self.window[0] * self.window[1] * self.window[2]
            s = self.stride[0] * self.stride[1] * self.stride[2]
            return self.proj_mpls(F.avg_pool1d(x.transpose(1, 2), k, s).transpose(1, 2))
        hr = x.view(B, *self.grid, C)
        lr = F.avg_pool3d(hr.permute(0, 4, 1, 2, 3), kernel_size=self.window, stride=self.stride)
        lr = lr.flatten(2).transpose(1, 2)  # [B, Q, C]
        if self.kind == "spatial_pool":
            return self.proj_mpls(lr)
        y = self.resolution_attention(lr.unsqueeze(2), self.blocks(hr))
        return self.proj_mpls(y)


class QFormerPackerRef(nn.Module):
    """The qformer baseline from transformers' own Blip2QFormerModel (the independent reference)."""

    def __init__(self, in_dim, out_dim, queries=128, layers=2, heads=1, cross_every=1, eps=1e-5):
        super().__init__()
        from transformers import Blip2QFormerConfig, Blip2QFormerModel
        cfg = Blip2QFormerConfig(hidden_size=in_dim, num_hidden_layers=layers, num_attention_heads=heads,
                                 intermediate_size=4 * in_dim, encoder_hidden_size=in_dim,
                                 cross_attention_frequency=cross_every, layer_norm_eps=eps, hidden_act="gelu")
        cfg._attn_implementation = "eager"
        self.query_tokens = nn.Parameter(torch.randn(1, queries, in_dim) * 0.02)
        self.qformer = Blip2QFormerModel(cfg)
        self.proj_mpls = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))

    def forward(self, x):
        q = self.query_tokens.expand(x.shape[0], -1, -1)
        return self.proj_mpls(self.qformer(query_embeds=q, encoder_hidden_states=x).last_hidden_state)


class HsenetQFormerRef(nn.Module):
    """HSENet's ablation_qformerProjector, transcribed (spatial_pooling_projector.py; its __init__
    reads self.out_dim before setting it, set here first). self_attn is called on batch-first
    queries although nn.MultiheadAttention is sequence-first (HSENet's code, "batch"); with
    fix=True the queries attend among themselves ("queries")."""

    def __init__(self, in_dim, out_dim, fix=False):
        super().__init__()
        self.in_dim, self.out_dim, self.fix = in_dim, out_dim, fix
        self.num_queries, self.num_heads, self.num_layers = 32, 8, 2
        self.query_embeds = nn.Parameter(torch.randn(self.num_queries, in_dim))
        self.self_attn = nn.MultiheadAttention(embed_dim=in_dim, num_heads=self.num_heads)
        self.cross_attn = nn.MultiheadAttention(embed_dim=in_dim, num_heads=self.num_heads)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(d_model=in_dim, nhead=self.num_heads)
                                     for _ in range(self.num_layers)])
        self.proj_mpls = nn.Sequential(nn.Linear(self.in_dim, self.out_dim), nn.GELU(),
                                       nn.Linear(self.out_dim, self.out_dim))
        nn.init.xavier_uniform_(self.query_embeds)

    def forward(self, x):
        B, N, D = x.shape
        queries = self.query_embeds.unsqueeze(0).repeat(B, 1, 1)
        if self.fix:
            q = queries.permute(1, 0, 2)
            queries = self.self_attn(query=q, key=q, value=q)[0].permute(1, 0, 2)
        else:
            queries = self.self_attn(query=queries, key=queries, value=queries)[0]
        x = x.permute(1, 0, 2).float()
        queries = queries.permute(1, 0, 2).float()
        attended = self.cross_attn(query=queries, key=x, value=x)[0]
        for layer in self.layers:
            attended = layer(attended)
        return self.proj_mpls(attended.permute(1, 0, 2))


class AnatomyPackerRef(PackerRef):
    """hse's anatomy packer written token by token: grown windows, softmax over competing queries."""

    def __init__(self, in_dim, out_dim, halo=(0, 1, 1), **kw):
        super().__init__(in_dim, out_dim, **kw)
        self.halo = halo

    def forward(self, x):
        B, N, C = x.shape
        (D, H, W), (wd, wh, ww), (hd, hh, hw) = self.grid, self.window, self.halo
        hr = x.view(B, D, H, W, C)
        lr = F.avg_pool3d(hr.permute(0, 4, 1, 2, 3), kernel_size=self.window, stride=self.window)
        lr = lr.flatten(2).transpose(1, 2)
        ra = self.resolution_attention
        q, k, v = ra.Wq(lr), ra.Wk(x), ra.Wv(x)
        cands = []  # per query: token indices of its grown window inside the grid
        for d in range(D // wd):
            for h in range(H // wh):
                for w in range(W // ww):
                    cands.append([(a * H + b) * W + c
                                  for a in range(d * wd - hd, (d + 1) * wd + hd)
                                  for b in range(h * wh - hh, (h + 1) * wh + hh)
                                  for c in range(w * ww - hw, (w + 1) * ww + hw)
                                  if 0 <= a < D and 0 <= b < H and 0 <= c < W])
        logits = [torch.einsum("bc,bkc->bk", q[:, i], k[:, idx]) / math.sqrt(C) for i, idx in enumerate(cands)]
        owners = {}
        for i, idx in enumerate(cands):
            for j, n in enumerate(idx):
                owners.setdefault(n, []).append((i, j))
        weights = [torch.zeros_like(l) for l in logits]
        for n, lst in owners.items():
            z = torch.softmax(torch.stack([logits[i][:, j] for i, j in lst], 1), 1)
            for m, (i, j) in enumerate(lst):
                weights[i][:, j] = z[:, m]
        o = torch.stack([(wt.unsqueeze(-1) * v[:, idx]).sum(1) / (wt.sum(1, keepdim=True) + 1e-8)
                         for wt, idx in zip(weights, cands)], 1)
        return self.proj_mpls(ra.norm(q + ra.output_linear(o)))


def randomize(m, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm.weight" in n or "LayerNorm.weight" in n or n.endswith(("norm1.weight", "norm2.weight")):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif ("norm.bias" in n or "LayerNorm.bias" in n or n.endswith(("norm1.bias", "norm2.bias", "in_proj_bias"))
                  or n.endswith("attn.out_proj.bias")):
                p.copy_(0.1 * torch.randn_like(p))
            elif n == "query_tokens":
                p.copy_(torch.randn_like(p))
    return m.eval()


def lamed_labels(bos, eos, pad, im, n_img, question, answer, max_length):
    """LaMed's dataset __getitem__ on token ids (tokenizer: right padding and truncation)."""
    prompt = [bos] + [im] * n_img + question
    full = (prompt + answer)[:max_length]
    valid_len = len(full)
    input_id = full + [pad] * (max_length - valid_len)
    attention_mask = [1] * valid_len + [0] * (max_length - valid_len)
    if valid_len < len(input_id):
        input_id[valid_len] = eos
    question_len = min(len(prompt), max_length)
    label = list(input_id)
    label[:question_len] = [-100] * question_len
    if pad == eos:
        label = [-100 if t == pad else t for t in label]
        if valid_len < len(label):
            label[valid_len] = eos
    else:
        label = [-100 if t == pad else t for t in label]
    return input_id, label, attention_mask


run = pc.run_driver


# ---------------------------------------------------------------- packers
def packers(tmp):
    cases = [
        ("hsenet", dict(in_dim=768, out_dim=3072), 1),
        ("narrow", dict(in_dim=64, out_dim=96), 2),
        ("w244", dict(in_dim=64, out_dim=96, window=(2, 4, 4)), 2),
        ("w122", dict(in_dim=64, out_dim=96, window=(1, 2, 2)), 1),
        ("overlap", dict(in_dim=64, out_dim=96, window=(1, 4, 4), stride=(1, 2, 2), mlp_hidden=80), 1),
        ("spatial_pool", dict(in_dim=64, out_dim=96, kind="spatial_pool"), 2),
        ("sequence_pool", dict(in_dim=64, out_dim=96, kind="sequence_pool"), 2),
        ("qformer", dict(in_dim=64, out_dim=96, kind="qformer"), 2),
        ("qformer3", dict(in_dim=64, out_dim=96, kind="qformer", layers=3, heads=4, cross_every=2,
                          queries=32), 1),
        ("hsenet_qformer", dict(in_dim=64, out_dim=96, kind="hsenet_qformer"), 2),
        ("hsenet_qformer_q", dict(in_dim=64, out_dim=96, kind="hsenet_qformer", fix=True), 2),
        ("hsenet_qformer_768", dict(in_dim=768, out_dim=3072, kind="hsenet_qformer"), 1),
        ("anatomy", dict(in_dim=32, out_dim=48, kind="anatomy"), 2),
        ("anatomy_h122", dict(in_dim=32, out_dim=48, kind="anatomy", halo=(1, 2, 2)), 1),
    ]
    jobs, inputs, refs = [], {}, {}
    for i, (name, kw, B) in enumerate(cases):
        torch.manual_seed(100 + i)
        kind = kw.get("kind", "v2p")
        if kind == "qformer":
            ref = randomize(QFormerPackerRef(kw["in_dim"], kw["out_dim"], **{k: kw[k] for k in kw if k in (
                "queries", "layers", "heads", "cross_every")}), 200 + i)
        elif kind == "hsenet_qformer":
            ref = randomize(HsenetQFormerRef(kw["in_dim"], kw["out_dim"], fix=kw.get("fix", False)), 200 + i)
        elif kind == "anatomy":
            ref = randomize(AnatomyPackerRef(kw["in_dim"], kw["out_dim"], halo=kw.get("halo", (0, 1, 1))), 200 + i)
        else:
            ref = randomize(PackerRef(**kw), 200 + i)
        x = torch.randn(B, 2048, kw["in_dim"])
        with torch.no_grad():
            refs[name] = ref(x).numpy()
        if name == "hsenet":
            # The spec's arrangement of the 1x4x4 blocks equals the loops': (d, 4hb+hi, 4wb+wi).
            hr = x.view(B, 8, 16, 16, 768)
            spec_blk = hr.view(B, 8, 4, 4, 4, 4, 768).permute(0, 1, 2, 4, 3, 5, 6).reshape(B, 128, 16, 768)
            check(torch.equal(spec_blk, ref.blocks(hr)), "reference block gathering == spec's arrangement")
            check(refs[name].shape == (1, 128, 3072), f"HSENet packer shape {refs[name].shape}")
            check(sum(p.numel() for p in ref.parameters()) == 14166528, "14.17 M parameters")
        path = os.path.join(tmp, f"{name}.safetensors")
        save_file({PREFIX + k: v.contiguous() for k, v in ref.state_dict().items()}, path)
        inputs[f"{name}.x"] = x
        cfg = {"kind": kw.get("kind", "v2p"), "in_dim": kw["in_dim"], "out_dim": kw["out_dim"],
               "grid": [8, 16, 16], "window": list(kw.get("window", (1, 4, 4)))}
        if "stride" in kw:
            cfg["stride"] = list(kw["stride"])
        if "mlp_hidden" in kw:
            cfg["mlp_hidden"] = kw["mlp_hidden"]
        if "halo" in kw:
            cfg["halo"] = list(kw["halo"])
        for k, hk in (("queries", "num_queries"), ("layers", "qformer_layers"), ("heads", "qformer_heads"),
                      ("cross_every", "qformer_cross_every")):
            if k in kw:
                cfg[hk] = kw[k]
        if kind == "hsenet_qformer":
            cfg["query_self_attention"] = "queries" if kw.get("fix") else "batch"
        if kind == "qformer" and "heads" not in kw:
            cfg["qformer_heads"] = 1
        jobs.append({"name": name, "config": cfg, "weights": path, "prefix": PREFIX, "input": f"{name}.x"})
    tin = os.path.join(tmp, "packer_in.safetensors")
    save_file(inputs, tin)
    jp = os.path.join(tmp, "packer_jobs.json")
    json.dump({"jobs": jobs}, open(jp, "w"))
    out = os.path.join(tmp, "packer_out.safetensors")
    r = run(PACKER_DRIVER, "packer", {"HSE_PACKER_JOBS": jp, "HSE_PACKER_TENSORS": tin, "HSE_PACKER_OUT": out})
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        check(False, f"packer driver exit {r.returncode}")
        return
    o = load_file(out)
    for name, _, _ in cases:
        got = o[f"{name}.out"]
        ok_shape = got.shape == refs[name].shape
        d = rel(got, refs[name]) if ok_shape else float("inf")
        print(f"packer {name:14s} {str(tuple(got.shape)):18s} max|diff|/max|ref| = {d:.3g}")
        check(ok_shape and d <= 1e-5, f"packer {name}: shape {got.shape} vs {refs[name].shape}, rel {d}")


# ---------------------------------------------------------------- VLM
BOS, EOS, PAD, IM = 1, 2, 2, 5
V, HID, CIN = 128, 64, 32


def vlm(tmp):
    hf = pc.tiny_phi3(7, vocab_size=V, hidden_size=HID, max_position_embeddings=512, bos_token_id=BOS,
                      eos_token_id=EOS, pad_token_id=PAD)
    llm_dir = os.path.join(tmp, "Tiny-Phi4")
    hf.save_pretrained(llm_dir, safe_serialization=True)
    # LamedPhi3's layout: the packers live on the decoder ("model.mm_projector{,2}").
    hf.model.mm_projector = randomize(PackerRef(CIN, HID), 31)
    hf.model.mm_projector2 = randomize(PackerRef(CIN, HID), 32)
    pm = get_peft_model(hf, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.05, bias="none", task_type="CAUSAL_LM",
                                       target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]))
    torch.manual_seed(8)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.normal_(0.0, 0.1)
    pm.eval()
    # HSENet's save: named_parameters containing mm_projector or lora, as a pickle; then convert.
    published = {n: p.detach().clone() for n, p in pm.named_parameters() if "mm_projector" in n or "lora" in n}
    check(len(published) == 2 * 14 + 2 * 4 * 2, f"published tensors {len(published)}")
    check("base_model.model.model.mm_projector.resolution_attention.Wq.weight" in published and
          "base_model.model.model.layers.1.mlp.down_proj.lora_B.default.weight" in published,
          "published names as the spec lists them")
    bin_path = os.path.join(tmp, "pytorch_model.bin")
    torch.save(published, bin_path)
    st_path = os.path.join(tmp, "hsenet_vlm.safetensors")
    r = subprocess.run([sys.executable, CONVERT, bin_path, st_path, "--strict"], capture_output=True, text=True)
    check(r.returncode == 0, f"convert_hsenet_vlm.py exit {r.returncode}: {r.stderr}")
    if r.returncode != 0:
        return
    print(r.stderr.strip())

    hse_cfg = {"packer": {"in_dim": CIN, "out_dim": HID, "grid": [8, 16, 16], "window": [1, 4, 4]},
               "packer2": {"in_dim": CIN, "out_dim": HID, "grid": [8, 16, 16], "window": [1, 4, 4]},
               "lora": {"r": 4, "lora_alpha": 8, "lora_dropout": 0.05, "bias": "none", "task_type": "CAUSAL_LM",
                        "target_modules": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]},
               "tokens": {"bos": BOS, "eos": EOS, "pad": PAD, "im_patch": IM}}

    # Training batch: two examples of different lengths, padded to max_length.
    g = torch.Generator().manual_seed(9)
    qa = [(torch.randint(6, V, (7,), generator=g).tolist(), torch.randint(6, V, (9,), generator=g).tolist()),
          (torch.randint(6, V, (3,), generator=g).tolist(), torch.randint(6, V, (5,), generator=g).tolist())]
    L = 1 + 256 + 7 + 9 + 4
    rows = [lamed_labels(BOS, EOS, PAD, IM, 256, q, a, L) for q, a in qa]
    ids = torch.tensor([r[0] for r in rows])
    labels = torch.tensor([r[1] for r in rows])
    mask = torch.tensor([r[2] for r in rows])
    t1 = torch.randn(2, 2048, CIN, generator=g)
    t2 = torch.randn(2, 2048, CIN, generator=g)
    with torch.no_grad():
        E = pm.get_input_embeddings()(ids)
        img = torch.cat([hf.model.mm_projector(t1), hf.model.mm_projector2(t2)], dim=1)
        emb = torch.cat([E[:, :1, :], img, E[:, img.shape[1] + 1:, :]], dim=1)
        out = pm(inputs_embeds=emb, attention_mask=mask, labels=labels)
    ref_logits, ref_loss = out.logits.numpy(), float(out.loss)

    # Generation prompts (right-padded by hse; HF gets them left-padded).
    prompts = [[BOS] + [IM] * 256 + qa[0][0], [BOS] + [IM] * 256 + qa[1][0][:2]]
    Lp = max(len(p) for p in prompts)
    with torch.no_grad():
        rows_e, rows_m = [], []
        for b, p in enumerate(prompts):
            e = pm.get_input_embeddings()(torch.tensor([p]))
            e = torch.cat([e[:, :1], img[b:b + 1], e[:, 257:]], 1)
            padn = Lp - len(p)
            rows_e.append(torch.cat([torch.zeros(1, padn, HID), e], 1))
            rows_m.append([0] * padn + [1] * len(p))
        gen = pm.generate(inputs_embeds=torch.cat(rows_e, 0), attention_mask=torch.tensor(rows_m), do_sample=False,
                          max_new_tokens=10, eos_token_id=EOS, pad_token_id=PAD)
    hf_tokens = []
    for row in gen.tolist():
        if EOS in row:
            row = row[:row.index(EOS) + 1]
        hf_tokens.append(row)

    tin = os.path.join(tmp, "vlm_in.safetensors")
    save_file({"fw.ids": ids.float(), "fw.mask": mask.float(), "fw.labels": labels.float(), "fw.t1": t1,
               "fw.t2": t2, "gen.t1": t1.clone(), "gen.t2": t2.clone()}, tin)
    saved = os.path.join(tmp, "hse_adapter")
    jobs = [{"name": "fw", "kind": "forward", "weights": st_path, "config": hse_cfg, "llm": llm_dir, "save": saved},
            {"name": "gen", "kind": "generate", "weights": st_path, "config": hse_cfg, "llm": llm_dir,
             "prompts": prompts, "max_new_tokens": 10}]
    # Labels: the layout cases.
    layout_cases = [
        ("pad_eq_eos", (1, 2, 2, 5), 4, [10, 11, 12], [20, 21], 14),
        ("pad_ne_eos", (1, 3, 0, 5), 4, [10, 11], [20, 21, 22], 14),
        ("trunc_no_eos", (1, 2, 2, 5), 4, [10, 11, 12], [20, 21, 22, 23], 10),
        ("trunc_in_prompt", (1, 2, 2, 5), 4, [10, 11, 12, 13], [20], 6),
        ("exact_fit", (1, 2, 2, 5), 2, [10], [20, 21], 6),
        ("eos_in_answer", (1, 2, 2, 5), 2, [10], [20, 2, 21], 9),
        ("hsenet_shape", (199999, 199999, 199999, 200030), 256, list(range(300, 312)), list(range(400, 430)), 330),
    ]
    for name, (bos, eos, pad, im), n, q, a, ml in layout_cases:
        jobs.append({"name": name, "kind": "layout", "tokens": {"bos": bos, "eos": eos, "pad": pad, "im_patch": im},
                     "image_tokens": n, "question": q, "answer": a, "max_length": ml})
    jp = os.path.join(tmp, "vlm_jobs.json")
    json.dump({"jobs": jobs}, open(jp, "w"))
    outp = os.path.join(tmp, "vlm_out.safetensors")
    r = run(VLM_DRIVER, "vlm", {"HSE_VLM_JOBS": jp, "HSE_VLM_TENSORS": tin, "HSE_VLM_OUT": outp})
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        check(False, f"vlm driver exit {r.returncode}")
        return
    o = load_file(outp)

    d_emb = rel(o["fw.embeds"], emb.numpy())
    d_img = rel(o["fw.embeds"][:, 1:257], img.numpy())
    check(np.array_equal(o["fw.embeds"][:, 0], E[:, 0].numpy()) and
          np.array_equal(o["fw.embeds"][:, 257:], E[:, 257:].numpy()), "text positions are embed_tokens exactly")
    print(f"VLM inputs_embeds rel {d_emb:.3g} (image positions 1..256 rel {d_img:.3g})")
    check(d_emb <= 1e-5 and d_img <= 1e-5, f"inputs_embeds rel {d_emb} / {d_img}")
    real = mask.numpy().astype(bool)
    d_log = float(np.abs(o["fw.logits"][real] - ref_logits[real]).max())
    print(f"VLM logits max|diff| at real positions = {d_log:.3g} (|logits| max {np.abs(ref_logits).max():.3g})")
    check(d_log <= 1e-4, f"VLM logits {d_log}")
    d_loss = abs(float(o["fw.loss"][0]) - ref_loss)
    print(f"VLM loss hse {float(o['fw.loss'][0]):.7f} vs transformers {ref_loss:.7f} (|diff| {d_loss:.3g})")
    check(d_loss <= 1e-5, f"loss {d_loss}")
    for b in range(2):
        got = o[f"gen.{b}"].tolist()
        check(got == hf_tokens[b], f"generation row {b}: hse {got} vs HF {hf_tokens[b]}")
    print(f"greedy generation: hse == HF for both rows ({hf_tokens})")

    from safetensors import safe_open
    with safe_open(os.path.join(saved, "adapter.safetensors"), "pt") as f:
        same = set(f.keys()) == set(published) and all(torch.equal(f.get_tensor(k), published[k]) for k in f.keys())
    check(same, "the hse adapter file holds the published names and values")
    hcfg = json.load(open(os.path.join(saved, "hse_vlm.json")))
    check(hcfg["image_tokens"] == 256 and hcfg["llm"] == llm_dir and hcfg["lora"]["r"] == 4, f"hse_vlm.json {hcfg}")

    n_ok = 0
    for name, (bos, eos, pad, im), n, q, a, ml in layout_cases:
        want = lamed_labels(bos, eos, pad, im, n, q, a, ml)
        got = (o[f"{name}.input_ids"].tolist(), o[f"{name}.labels"].tolist(), o[f"{name}.attention_mask"].tolist())
        ok = got == (want[0], want[1], want[2])
        n_ok += ok
        check(ok, f"layout {name}: hse {got} vs reference {want}")
    print(f"labels/layout: {n_ok}/{len(layout_cases)} cases identical")


def main():
    pc.run_in_tmp("hse_packer_parity_", packers, vlm)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
