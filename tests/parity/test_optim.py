"""Parity: hse's AdamW + cosine-with-warm-up schedule + gradient clipping against
torch.optim.AdamW, transformers.get_cosine_schedule_with_warmup and
torch.nn.utils.clip_grad_norm_ over 20 steps (fp32, tolerance 1e-5 relative)."""
import math
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import get_cosine_schedule_with_warmup
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "build/bin")
DRIVER = os.path.join(BIN, "torch_test_optim")
if not os.path.exists(DRIVER):
    print("skip: torch_test_optim not built")
    sys.exit(77)

torch.manual_seed(0)
w0, b0, x = torch.randn(5, 3) * 0.5, torch.randn(3) * 0.1, torch.randn(4, 5)
with tempfile.TemporaryDirectory() as t:
    save_file({"w": w0, "b": b0, "x": x}, f"{t}/in.st")
    subprocess.run([DRIVER, "-tc=driver*"], check=True, capture_output=True,
                   env=dict(os.environ, HSE_OPT_IN=f"{t}/in.st", HSE_OPT_OUT=f"{t}/out.st"))
    got = load_file(f"{t}/out.st")
w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                        lr=1e-2, betas=(0.9, 0.999), eps=1e-8, foreach=False)
total = 20
warm = math.ceil(total * 0.3)
sched = get_cosine_schedule_with_warmup(opt, warm, total)
norms = []
for s in range(total):
    opt.zero_grad()
    ((x @ w + b) ** 3).sum().backward()
    norms.append(float(torch.nn.utils.clip_grad_norm_([w, b], 1.0)))
    opt.step()
    sched.step()
fails = 0
for k, ref in [("w", w.detach()), ("b", b.detach()), ("norms", torch.tensor(norms))]:
    err = float((got[k] - ref).abs().max() / ref.abs().max())
    ok = err <= 1e-5
    fails += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {k}: rel err {err:.1e}")
print(f"{3 - fails} passed, {fails} failed")
sys.exit(1 if fails else 0)
