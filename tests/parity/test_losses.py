"""Parity: InfoNCE (symmetric, raw and exp logit_scale), L_SA and w(t) against PyTorch-Python,
values and gradients, fp32 (tolerance 1e-5 relative)."""
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)

BIN = os.environ.get("HSE_BIN_DIR", "build/bin")
DRIVER = os.path.join(BIN, "torch_test_losses")
if not os.path.exists(DRIVER):
    print("skip: torch_test_losses not built")
    sys.exit(77)


def reference(img, txt, img1, txt1, scale, exp, step):
    s = scale.exp() if exp else scale
    li, lt = s * img @ txt.t(), s * txt @ img.t()
    l1i, l1t = (s * img1 @ txt1.t()).detach(), (s * txt1 @ img1.t()).detach()
    labels = torch.arange(img.shape[0])
    cl = (F.cross_entropy(li, labels) + F.cross_entropy(lt, labels)) / 2
    sa = 0.5 * (F.mse_loss(li, l1i) + F.mse_loss(lt, l1t))
    w = max(0.0, 0.1 * (1 - step / 5000))
    return cl, sa, cl + w * sa


def main():
    torch.manual_seed(0)
    fails = cases = 0
    with tempfile.TemporaryDirectory() as t:
        for n, d, exp, step in [(4, 8, False, 0), (6, 16, True, 100), (12, 32, False, 2500), (3, 768, False, 6000)]:
            img = F.normalize(torch.randn(n, d), dim=-1)
            txt = F.normalize(torch.randn(n, d), dim=-1)
            img1 = F.normalize(torch.randn(n, d), dim=-1)
            txt1 = F.normalize(torch.randn(n, d), dim=-1)
            scale = torch.tensor(2.6593)
            save_file({"image": img, "text": txt, "image1": img1, "text1": txt1, "logit_scale": scale}, f"{t}/in.st")
            env = dict(os.environ, HSE_LOSS_IN=f"{t}/in.st", HSE_LOSS_OUT=f"{t}/out.st", HSE_LOSS_STEP=str(step))
            if exp:
                env["HSE_LOSS_EXP"] = "1"
            subprocess.run([DRIVER, "-tc=driver*"], env=env, check=True, capture_output=True)
            got = load_file(f"{t}/out.st")
            a, b, s = img.clone().requires_grad_(), txt.clone().requires_grad_(), scale.clone().requires_grad_()
            cl, sa, total = reference(a, b, img1, txt1, s, exp, step)
            total.backward()
            want = {"clip_loss": cl, "sa_loss": sa, "total": total, "grad_image": a.grad, "grad_text": b.grad,
                    "grad_scale": s.grad}
            for k, v in want.items():
                cases += 1
                v = v.detach()
                err = (got[k] - v).abs().max().item() / max(v.abs().max().item(), 1e-12)
                ok = err <= 1e-5
                fails += not ok
                print(f"{'ok  ' if ok else 'FAIL'} n={n} d={d} exp={exp} step={step} {k}: rel err {err:.1e}")
    print(f"{cases - fails} passed, {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
