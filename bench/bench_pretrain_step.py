#!/usr/bin/env python3
"""Benchmark: one HSENet stage-1 CLIP training step, hse (LibTorch C++) vs PyTorch-Python eager.

The model is HSENet's stage-1 CLIP at the paper's sizes (hsenet-spec §1): MONAI's ViT
(32x256x256, patch 4x16x16, 768 wide, 12 layers, 2049 tokens) + transformers' BertModel
(bert-base shape: 12 layers, 768, vocab 30522) + the two Linear heads and the raw logit_scale.
The Python reference is written here after HSENet's M3DCLIP_stage1 (heads applied to every
token, then L2 norm, then [:, 0]; symmetric InfoNCE). Random weights are made once in Python and
saved as an hse/HSENet CLIP checkpoint directory, so both sides start from the same weights and
see the same batch (random volumes in [0,1], random token ids with [CLS]/[SEP] and padding).

One step = zero_grad, forward of both towers, InfoNCE, backward, global-norm clipping (1.0),
AdamW (lr 1e-4 constant, wd 0.1 except biases and norms, betas 0.9/0.999, eps 1e-8), as
hse-pretrain and HSENet's HF Trainer (adamw_torch) run it, in fp32 on the CPU. BERT dropout is 0 on
both sides (set in the config; bert-base trains with 0.1), so the losses of every step can be
compared. --sides hse hse_ckpt compares hse with and without --gradient-checkpointing instead. Each side
runs in its own process (hse: bin/bench_pretrain_step; Python: this script as a worker) with
the same intra-op threads; warm-up steps are untimed, then the median of --steps steps (wall
time, and the process's CPU time over the step, less sensitive to other load on a shared
machine). Peak RSS is each process's own (os.wait4). With --rounds R the sides alternate R times
(order reversed every other round). By default the sides run one after the other; with
--lockstep they all start and take their steps in turn (rotating order), which spreads a shared
machine's changing load evenly over them but needs their memory at once (at batch 3 the Python
reference alone peaks near 17 GiB).

Then the peak memory of hse-embed on one 32x256x256 volume with the same checkpoint, next to
the Python reference's encode_image in torch.no_grad (same weights, same volume), and the two
embeddings compared.

    python3 bench/bench_pretrain_step.py [--bin build/bin] [--batch 1 3] [--steps 3] [--threads 2]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

VISION_CONFIG = os.path.join(SRC, "share", "hse", "configs", "vit3d-hsenet.json")
# bert-base-uncased's shape; dropout 0 (hse's BERT has none, so the steps can be compared).
BERT_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 30522, "hidden_size": 768,
               "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
               "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
               "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02,
               "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute"}
LOGIT_SCALE_INIT = math.log(1 / 0.07)


def configs(smoke=False):
    """(vision, text) configs: the paper's, or tiny ones (--smoke, to check this script quickly)."""
    if smoke:
        v = json.load(open(os.path.join(SRC, "share", "hse", "configs", "vit3d-tiny.json")))
        return v, dict(BERT_CONFIG, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    return json.load(open(VISION_CONFIG)), dict(BERT_CONFIG)


# ---- the Python reference (HSENet's M3DCLIP_stage1 on MONAI + transformers) --------------

def build_reference(vcfg, tcfg, sdpa=False):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import transformers
    from monai.networks.nets import ViT

    class RefClip(nn.Module):
        def __init__(self):
            super().__init__()
            self.vision_encoder = ViT(in_channels=vcfg["in_channels"], img_size=vcfg["img_size"],
                                      patch_size=vcfg["patch_size"], hidden_size=vcfg["hidden_size"],
                                      mlp_dim=vcfg["mlp_dim"], num_layers=vcfg["num_layers"],
                                      num_heads=vcfg["num_heads"], proj_type="perceptron", pos_embed_type="learnable",
                                      classification=True, dropout_rate=vcfg["dropout_rate"],
                                      qkv_bias=vcfg["qkv_bias"], spatial_dims=3)
            del self.vision_encoder.classification_head  # HSENet's ViT has none
            for blk in self.vision_encoder.blocks:       # MONAI 1.4's unused cross-attention (not in 1.3)
                for name in ("cross_attn", "norm_cross_attn"):
                    if hasattr(blk, name) and not getattr(blk, "with_cross_attention", False):
                        delattr(blk, name)
                if sdpa:  # MONAI >= 1.4 only; HSENet's MONAI 1.3 materialises the attention matrix
                    blk.attn.use_flash_attention = True
            self.language_encoder = transformers.BertModel(transformers.BertConfig(**tcfg), add_pooling_layer=True)
            self.mm_vision_proj = nn.Linear(vcfg["hidden_size"], vcfg["hidden_size"])
            self.mm_language_proj = nn.Linear(tcfg["hidden_size"], vcfg["hidden_size"])
            self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))

        def encode_image(self, image):  # HSENet: heads on every token, L2 norm; callers take [:, 0]
            last, _ = self.vision_encoder(image)
            return F.normalize(self.mm_vision_proj(last), dim=-1)

        def encode_text(self, input_ids, attention_mask):
            h = self.language_encoder(input_ids, attention_mask=attention_mask)["last_hidden_state"]
            return F.normalize(self.mm_language_proj(h), dim=-1)

        def forward(self, images, input_ids, attention_mask):
            img = self.encode_image(images)[:, 0]
            txt = self.encode_text(input_ids, attention_mask)[:, 0]
            logits_per_image = self.logit_scale * img @ txt.T
            logits_per_text = self.logit_scale * txt @ img.T
            labels = torch.arange(img.shape[0], device=img.device)
            return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2

    return RefClip()


def no_decay(name):
    """hse-pretrain's (and HF Trainer's) rule: no decay on biases and norm-layer parameters."""
    if name.endswith(".bias"):
        return True
    module = name.rsplit(".", 1)[0] if "." in name else ""
    return "norm" in module.rsplit(".", 1)[-1].lower()


def load_reference(model_dir, sdpa=False):
    import safetensors.torch as stt
    h = json.load(open(os.path.join(model_dir, "config.json")))["hse"]
    m = build_reference(h["vision"], h["text"], sdpa)
    missing, unexpected = m.load_state_dict(stt.load_file(os.path.join(model_dir, "model.safetensors")), strict=False)
    if missing or unexpected:
        raise SystemExit(f"reference load: missing {missing[:4]}, unexpected {unexpected[:4]}")
    return m


def rss_kib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---- workers (each in its own process, so peak RSS is its own) ---------------------------

def worker_make(a):
    import torch
    import safetensors.torch as stt
    vcfg, tcfg = configs(a.smoke)
    torch.manual_seed(a.seed)
    m = build_reference(vcfg, tcfg)
    sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
    os.makedirs(a.model, exist_ok=True)
    stt.save_file(sd, os.path.join(a.model, "model.safetensors"), metadata={"format": "pt"})
    cfg = dict(vcfg, model_type="m3d_clip_stage1", vocab_size=tcfg["vocab_size"], max_text_len=128,
               hse={"vision": vcfg, "text": tcfg, "logit_scale_form": "raw",
                    "logit_scale_init": LOGIT_SCALE_INIT})
    json.dump(cfg, open(os.path.join(a.model, "config.json"), "w"), indent=2)
    print(f"tensors {len(sd)} parameters {sum(v.numel() for v in sd.values())}")


def worker_train(a):
    import torch
    import safetensors.torch as stt
    torch.set_num_threads(a.threads)
    m = load_reference(a.model, a.sdpa)
    m.train()
    d = stt.load_file(a.data)
    vols, ids, mask = d["volumes"], d["input_ids"], d["attention_mask"]
    named = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if not no_decay(n)], "weight_decay": a.weight_decay},
              {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    params = [p for _, p in named]
    print(f"threads {torch.get_num_threads()} batch {vols.shape[0]} text_len {ids.shape[1]} params {len(params)} "
          f"(no decay {len(groups[1]['params'])})")
    loaded = rss_kib()
    for s in range(a.warmup + a.steps):
        if a.lockstep and not sys.stdin.readline():
            break
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad()
        loss = m(vols, ids, mask)
        l = loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        gn = float(torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm))
        opt.step()
        t3, c3 = time.perf_counter(), time.process_time()
        print(f"step {s} warmup {int(s < a.warmup)} loss {l:.8f} grad_norm {gn:.6g} forward_s {t1 - t0:.4f} "
              f"backward_s {t2 - t1:.4f} optimizer_s {t3 - t2:.4f} total_s {t3 - t0:.4f} cpu_s {c3 - c0:.4f}", flush=True)
    print(f"peak_rss_kib {rss_kib()} loaded_rss_kib {loaded}")


def worker_embed(a):
    import numpy as np
    import torch
    import h5py
    torch.set_num_threads(a.threads)
    m = load_reference(a.model, a.sdpa).eval()
    x = torch.from_numpy(h5py.File(a.data)["volumes"][:])
    with torch.no_grad():
        t0 = time.perf_counter()
        e = m.encode_image(x)[:, 0]
        dt = time.perf_counter() - t0
    np.save(a.out, e.numpy())
    print(f"encode_s {dt:.4f} peak_rss_kib {rss_kib()}")


# ---- driver --------------------------------------------------------------------------------

def run_child(cmd):
    """Runs cmd; returns (stdout, wall seconds, peak RSS KiB of that process alone)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.stderr.write(out)
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return out, wall, ru.ru_maxrss


def run_lockstep(cmds, nsteps):
    """Starts every side at once and lets them step in turn (the order rotates each step), so a
    change in the machine's load reaches all sides alike. Returns {side: (stdout, wall, peak RSS)}."""
    t0 = time.perf_counter()
    procs = {k: subprocess.Popen(c + ["--lockstep"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for k, c in cmds.items()}
    outs = {k: [] for k in cmds}
    keys = list(cmds)

    def died(k):
        code = procs[k].wait()
        for q in procs.values():  # the other sides, started here
            if q.poll() is None:
                q.kill()
                q.wait()
        why = " (killed: out of memory?)" if code == -9 else ""
        raise SystemExit(f"{k} exited early with status {code}{why}; output:\n{''.join(outs[k])}")

    for s in range(nsteps):
        for k in keys[s % len(keys):] + keys[:s % len(keys)]:
            p = procs[k]
            try:
                p.stdin.write("go\n")
                p.stdin.flush()
            except BrokenPipeError:
                died(k)
            while True:
                line = p.stdout.readline()
                if not line:
                    died(k)
                outs[k].append(line)
                if line.startswith("step "):
                    break
    res = {}
    for k, p in procs.items():
        p.stdin.close()
        outs[k].append(p.stdout.read())
        _, status, ru = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{k} failed: {''.join(outs[k])}")
        res[k] = ("".join(outs[k]), time.perf_counter() - t0, ru.ru_maxrss)
    return res


def parse_steps(out):
    steps = []
    for line in out.splitlines():
        if line.startswith("step "):
            f = line.split()
            steps.append({f[i]: float(f[i + 1]) for i in range(0, len(f), 2)})
    return steps


def make_batch(path, batch, text_len, seed, size):
    import torch
    import safetensors.torch as stt
    g = torch.Generator().manual_seed(seed + batch)
    vols = torch.rand(batch, 1, *size, generator=g)
    ids = torch.zeros(batch, text_len, dtype=torch.int64)
    mask = torch.zeros(batch, text_len, dtype=torch.int64)
    for b in range(batch):  # first item fills the length, the others are padded as HSENet's max_length padding
        n = text_len if b == 0 else int(torch.randint(text_len // 3, text_len, (1,), generator=g))
        ids[b, 0], ids[b, n - 1] = 101, 102  # [CLS] ... [SEP]
        ids[b, 1:n - 1] = torch.randint(1996, 30522, (n - 2,), generator=g)
        mask[b, :n] = 1
    stt.save_file({"volumes": vols, "input_ids": ids, "attention_mask": mask}, path)


def write_volumes_h5(path, seed, size):
    import h5py
    import numpy as np
    v = np.random.default_rng(seed).random((1, 1, *size), dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.attrs["hse_format"] = "hse"
        f.attrs["hse_format_version"] = "1.0"
        f.attrs["hse_kind"] = "volumes"
        f.create_dataset("volumes", data=v, chunks=(1, 1, *size))
        f["ids"] = np.array(["bench_1.nii.gz"], dtype=h5py.string_dtype())
        f["provenance"] = np.array([], dtype=h5py.string_dtype())


def gib(kib):
    return kib / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("HSE_BIN_DIR", "build/bin"))
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per process (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1, help="alternate hse and Python this many times")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text-len", type=int, default=128, help="tokens (HSENet config max_text_len 128; its "
                    "tokenizer actually pads to 512)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--py-sdpa", action="store_true", help="also time Python with MONAI's SDPA attention "
                    "(MONAI >= 1.4's use_flash_attention; HSENet's MONAI 1.3 has none)")
    ap.add_argument("--sides", nargs="+", choices=["hse", "python", "python_sdpa", "hse_ckpt"],
                    help="what to time (default: hse python, and python_sdpa with --py-sdpa); hse is always one")
    ap.add_argument("--lockstep", action="store_true", help="run the sides at once, stepping in turn (more "
                    "robust to a shared machine's load; needs the memory of all sides: at batch 3 the Python "
                    "reference alone peaks near 17 GiB)")
    ap.add_argument("--no-train", action="store_true", help="skip the training step")
    ap.add_argument("--no-embed", action="store_true", help="skip the hse-embed memory figure")
    ap.add_argument("--smoke", action="store_true", help="tiny configs: checks the script in seconds")
    ap.add_argument("--workdir", help="keep the checkpoint and data here (default: a temporary directory)")
    ap.add_argument("--worker", choices=["make", "train", "embed"], help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--sdpa", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lr", type=float, default=1e-4, help=argparse.SUPPRESS)
    ap.add_argument("--weight-decay", type=float, default=0.1, help=argparse.SUPPRESS)
    ap.add_argument("--max-grad-norm", type=float, default=1.0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sides and "hse" not in a.sides:
        a.sides = ["hse"] + a.sides
    if a.worker:
        return {"make": worker_make, "train": worker_train, "embed": worker_embed}[a.worker](a)

    step_exe = os.path.join(a.bin, "bench_pretrain_step")
    embed_exe = os.path.join(a.bin, "hse-embed")
    for exe in ([] if a.no_train else [step_exe]) + ([] if a.no_embed else [embed_exe]):
        if not os.access(exe, os.X_OK):
            raise SystemExit(f"{exe} not built (cmake --build <build> --target bench_pretrain_step hse-embed)")
    tmp_ctx = tempfile.TemporaryDirectory(prefix="hse_bench_step_") if not a.workdir else None
    tmp = a.workdir or tmp_ctx.name
    os.makedirs(tmp, exist_ok=True)
    me = [sys.executable, os.path.abspath(__file__)]
    common = ["--threads", str(a.threads), "--warmup", str(a.warmup), "--steps", str(a.steps)]

    import torch
    import monai
    import transformers
    model = os.path.join(tmp, "clip")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        out, _, _ = run_child(me + ["--worker", "make", "--model", model, "--seed", str(a.seed)]
                              + (["--smoke"] if a.smoke else []))
        print(f"checkpoint: {model} ({out.strip()}), random init, seed {a.seed}")
    size = json.load(open(os.path.join(model, "config.json")))["hse"]["vision"]["img_size"]
    print(f"torch {torch.__version__}, monai {monai.__version__}, transformers {transformers.__version__}; "
          f"threads {a.threads}; text length {a.text_len}; fp32 CPU; warm-up {a.warmup}, median of {a.steps} "
          f"steps x {a.rounds} round(s){', lockstep' if a.lockstep else ''}")

    rows = []
    if not a.no_train:
        for b in a.batch:
            data = os.path.join(tmp, f"batch{b}.safetensors")
            make_batch(data, b, a.text_len, a.seed, size)
            py = me + ["--worker", "train", "--model", model, "--data", data] + common
            every = {"hse": [step_exe, "--model", model, "--data", data] + common, "python": py,
                     "python_sdpa": py + ["--sdpa"],
                     "hse_ckpt": [step_exe, "--model", model, "--data", data, "--gradient-checkpointing"] + common}
            sides = {k: every[k] for k in (a.sides or ["hse", "python"] + (["python_sdpa"] if a.py_sdpa else []))}
            res = {k: {"steps": [], "rss": 0} for k in sides}
            for r in range(a.rounds):
                load = os.getloadavg()[0]
                if a.lockstep:
                    done = run_lockstep(sides, a.warmup + a.steps)
                for k in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                    if a.lockstep:
                        out, wall, rss = done[k]
                    else:
                        load = os.getloadavg()[0]
                        out, wall, rss = run_child(sides[k])
                    st = parse_steps(out)
                    res[k]["steps"].append(st)
                    res[k]["rss"] = max(res[k]["rss"], rss)
                    timed = [s["total_s"] for s in st if not s["warmup"]]
                    cpu = [s["cpu_s"] for s in st if not s["warmup"]]
                    print(f"  batch {b} round {r} {k:<11} steps {' '.join(f'{t:.2f}' for t in timed)} s "
                          f"(cpu {' '.join(f'{t:.1f}' for t in cpu)}) "
                          f"(fwd {statistics.median(s['forward_s'] for s in st if not s['warmup']):.2f} "
                          f"bwd {statistics.median(s['backward_s'] for s in st if not s['warmup']):.2f} "
                          f"opt {statistics.median(s['optimizer_s'] for s in st if not s['warmup']):.2f}); "
                          f"losses {' '.join('%.6f' % s['loss'] for s in st)}; peak RSS {gib(rss):.2f} GiB; "
                          f"process {wall:.1f} s; load average before {load:.1f}", flush=True)
            row = {"batch": b}
            for k in sides:
                allst = [s for run in res[k]["steps"] for s in run if not s["warmup"]]
                row[k] = statistics.median(s["total_s"] for s in allst)
                for ph in ("forward_s", "backward_s", "optimizer_s", "cpu_s"):
                    row[f"{k}_{ph}"] = statistics.median(s[ph] for s in allst)
                row[f"{k}_rss"] = res[k]["rss"]
                row[f"{k}_losses"] = [s["loss"] for s in res[k]["steps"][0]]
            rows.append(row)

        print()
        refs = [k for k in sides if k != "hse"]
        print("batch  reference     ref_s   hse_s  ratio(ref/hse)  cpu_s ref/hse (ratio)  ref_peak_GiB  hse_peak_GiB  "
              "loss_step0 ref/hse     max|loss diff| over steps")
        for r in rows:
            for k in refs:
                diff = max(abs(x - y) for x, y in zip(r[f"{k}_losses"], r["hse_losses"]))
                cpu = f"{r[f'{k}_cpu_s']:.1f}/{r['hse_cpu_s']:.1f} ({r[f'{k}_cpu_s'] / r['hse_cpu_s']:.2f}x)"
                print(f"{r['batch']:>5}  {k:<11} {r[k]:7.2f} {r['hse']:7.2f}  {r[k] / r['hse']:13.2f}x  {cpu:>21}  "
                      f"{gib(r[f'{k}_rss']):12.2f}  {gib(r['hse_rss']):12.2f}  "
                      f"{r[f'{k}_losses'][0]:.6f}/{r['hse_losses'][0]:.6f}  {diff:.2e}")
        print("phases (median s, forward/backward/optimizer): " + "; ".join(
            f"batch {r['batch']} " + ", ".join(
                f"{k} {r[f'{k}_forward_s']:.2f}/{r[f'{k}_backward_s']:.2f}/{r[f'{k}_optimizer_s']:.2f}" for k in sides)
            for r in rows))
        if 1 in a.batch:
            print("note: at batch 1 InfoNCE is over a 1x1 logit matrix: the loss is 0 and every gradient 0 "
                  "(the full backward still runs)")

    if not a.no_embed:
        import h5py
        import numpy as np
        vol = os.path.join(tmp, "volume.h5")
        write_volumes_h5(vol, a.seed, size)
        emb = os.path.join(tmp, "emb.h5")
        if os.path.exists(emb):
            os.remove(emb)
        _, h_wall, h_rss = run_child([embed_exe, "--model", model, "--volumes", vol, "-o", emb, "--threads",
                                      str(a.threads), "--batch", "1", "-q"])
        py_npy = os.path.join(tmp, "emb_py.npy")
        out, p_wall, p_rss = run_child(me + ["--worker", "embed", "--model", model, "--data", vol, "--out", py_npy,
                                             "--threads", str(a.threads)])
        he = h5py.File(emb)["embeddings"][:]
        pe = np.load(py_npy)
        print()
        print(f"one {'x'.join(map(str, size))} volume, {'tiny (--smoke)' if a.smoke else 'paper-size'} checkpoint ({os.path.getsize(os.path.join(model, 'model.safetensors')) / 2**20:.0f} MiB), "
              f"threads {a.threads}:")
        print(f"  hse-embed peak RSS {gib(h_rss):.2f} GiB (process {h_wall:.1f} s); python encode_image (no_grad) "
              f"peak RSS {gib(p_rss):.2f} GiB (process {p_wall:.1f} s, {out.split()[1]} s in encode_image); "
              f"ratio python/hse {p_rss / h_rss:.2f}x")
        print(f"  embeddings max |hse - python| = {float(np.abs(he - pe).max()):.2e}")
    if tmp_ctx:
        tmp_ctx.cleanup()


if __name__ == "__main__":
    sys.exit(main())
