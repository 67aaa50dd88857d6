#!/usr/bin/env python3
"""Parity test: hse-slice against a Python implementation of HSENet's 2-D branch.

The reference follows CT-RATE_nii_to_2D_slices.py (float64 torch: HU, clamp
[-1000, 1000], /1000, (Z,X,Y), trilinear resampling to 1.5/0.75 mm, 32 slices by
torch.linspace(dtype=long) or a trilinear resize when Z < 32, per-slice min-max to
uint8, PIL rotate(-90, expand=True), optional JPEG q95 round trip through Pillow)
and open_clip's BiomedCLIP val transform (PIL bicubic Resize of the short side,
CenterCrop, RGB, ToTensor, Normalize), written out by hand since torchvision and
open_clip need not be installed.

Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import io
import os
import subprocess
import sys
import tempfile

try:
    import h5py
    import nibabel as nib
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
LEVEL = 1.0 / 255.0 / min(STD)  # one uint8 grey level after normalisation (~0.0152)

BIN = os.environ.get("HSE_BIN_DIR", "")
TOOL = os.path.join(BIN, "hse-slice")
failures = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        failures.append(msg)


def run_tool(args):
    p = subprocess.run([TOOL] + args, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout)
        print(p.stderr)
    return p


# --------------------------------------------------------------------------- reference
def to_u8(s):
    mn, mx = torch.min(s), torch.max(s)
    if mx > mn:
        return ((s - mn) / (mx - mn) * 255).to(torch.uint8)
    return torch.zeros_like(s, dtype=torch.uint8)


def clip_transform(img, size):
    """open_clip val transform on a PIL image: Resize(size, BICUBIC), CenterCrop, RGB, ToTensor, Normalize."""
    w, h = img.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_h, new_w = size, int(size * w / h)
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    img = img.crop((left, top, left + size, top + size))
    img = img.convert("RGB")
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    mean = torch.as_tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.as_tensor(STD, dtype=torch.float32).view(3, 1, 1)
    return x.sub(mean).div(std)


def reference(hu_xyz, spacing_zxy, n=32, size=224, jpeg=0, window=(-1000, 1000), resample=True):
    t = torch.tensor(hu_xyz, dtype=torch.float64)
    t = torch.clamp(t, min=window[0], max=window[1]) / 1000.0
    t = t.permute(2, 0, 1)[None, None]  # (1,1,Z,X,Y)
    if resample:
        target = (1.5, 0.75, 0.75)
        shape = [int(t.shape[2 + i] * (spacing_zxy[i] / target[i])) for i in range(3)]
        t = F.interpolate(t, size=shape, mode="trilinear", align_corners=False)
    z = t.shape[2]
    if z >= n:
        idx = torch.linspace(0, z - 1, n, dtype=torch.long)
        sl = t[0, 0, idx]
    else:
        sl = F.interpolate(t, size=(n, t.shape[3], t.shape[4]), mode="trilinear", align_corners=False)[0, 0]
    return slice_images(sl, n, size, jpeg)


def jpeg_roundtrip(img, quality):
    """Saved as a JPEG file at `quality` by Pillow and read back, as HSENet's scripts do."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


def slice_images(sl, n, size, jpeg):
    """Per-slice uint8, PIL rotate(-90, expand=True), optional JPEG round trip, open_clip transform."""
    out = []
    for i in range(n):
        img = Image.fromarray(to_u8(sl[i]).numpy())
        img = img.rotate(-90, expand=True)
        if jpeg:
            img = jpeg_roundtrip(img, jpeg)
        out.append(clip_transform(img, size))
    return torch.stack(out).numpy()


def hsenet_reference(hu_xyz, spacing_zxy, n=32, size=224, jpeg=95, window=(-1000, 1000)):
    """A transcription of HSENet's CT-RATE_nii_to_2D_slices.py (hsenet-spec §5), independent of hse's
    choice: the array (X,Y,Z) moves Z first only if shape[2] < shape[0]; otherwise it stays (X,Y,Z)
    and its axes get the spacings (z, x, y) in order, so it is resampled and sliced along X."""
    t = torch.tensor(hu_xyz, dtype=torch.float64)
    t = torch.clamp(t, min=window[0], max=window[1]) / 1000.0
    if t.shape[2] < t.shape[0]:
        t = t.permute(2, 0, 1)
    t = t[None, None]
    current, target = spacing_zxy, (1.5, 0.75, 0.75)
    shape = [int(t.shape[2 + i] * (current[i] / target[i])) for i in range(3)]
    t = F.interpolate(t, size=shape, mode="trilinear", align_corners=False)
    d = t.shape[2]
    if d >= n:
        sl = t[0, 0, torch.linspace(0, d - 1, n, dtype=torch.long)]
    else:
        sl = F.interpolate(t, size=(n, t.shape[3], t.shape[4]), mode="trilinear", align_corners=False)[0, 0]
    return slice_images(sl, n, size, jpeg)


def test_compat_hsenet(tmp, rng):
    """--compat hsenet: a volume with more slices than columns is sliced along X, one with fewer
    along Z, both through a JPEG q95 round trip, as HSENet's script does."""
    for name, shape, sp_xyz in (("tall.nii.gz", (48, 44, 72), (0.8, 0.8, 1.0)), ("flat.nii.gz", (64, 56, 40), (0.7, 0.7, 2.0))):
        v = phantom(shape, rng)
        save_nifti(os.path.join(tmp, name), v, sp_xyz)
        out = os.path.join(tmp, "compat_" + name + ".h5")
        p = run_tool(["-o", out, "-q", "--compat", "hsenet", "--image-size", "64", os.path.join(tmp, name)])
        check(p.returncode == 0, f"hse-slice --compat hsenet {name} exits 0")
        if p.returncode != 0:
            continue
        with h5py.File(out, "r") as f:
            got = f["slices"][0]
            check(int(f.attrs["jpeg_quality"]) == 95, f"{name}: --compat hsenet records jpeg_quality 95")
            c = f.attrs["compat"]
            check((c.decode() if isinstance(c, bytes) else c) == "hsenet", f"{name}: compat attribute")
        spacing_zxy = (sp_xyz[2], sp_xyz[0], sp_xyz[1])
        want = hsenet_reference(v.astype(np.float64), spacing_zxy, size=64)
        # hse computes in float32, the script in float64: a pixel can land one uint8 level apart, and
        # JPEG's quantised DCT spreads that over its 8x8 block, up to 3 levels after decoding.
        compare(name + " --compat hsenet vs HSENet's script", got, want, levels=3)
        if shape[2] >= shape[0]:  # the axial slices hse gives by default differ: the test can fail
            axial = reference(v.astype(np.float64), spacing_zxy, size=64, jpeg=95)
            check(np.abs(axial - want).max() > 0.5, f"{name}: HSENet's slices are not the axial ones")


def bimcv_reference(raw_xyz, n=32, size=224, jpeg=95):
    """A transcription of HSENet's BIMCV_R_nii_to_2D_slices.py (files up to 200 MiB): get_fdata()
    as float32, no clamp, the volume's min and max, torch.linspace over the file's own third axis
    (indices repeat when it has fewer than n slices), float32 ((s - min) / (max - min) * 255) to
    uint8, PIL rotate(90, expand=True), the JPEG q95 file, then script 4's open_clip transform."""
    volume = torch.from_numpy(raw_xyz.astype(np.float64)).float()
    gmin, gmax = torch.min(volume), torch.max(volume)
    out = []
    for z in torch.linspace(0, volume.shape[2] - 1, n, dtype=torch.int64):
        s = volume[:, :, z]
        u8 = ((s - gmin) / (gmax - gmin) * 255).to(torch.uint8) if gmax > gmin else torch.zeros_like(s, dtype=torch.uint8)
        img = Image.fromarray(u8.numpy()).rotate(90, expand=True)
        if jpeg:
            img = jpeg_roundtrip(img, jpeg)
        out.append(clip_transform(img, size))
    return torch.stack(out).numpy()


def test_bimcv(tmp, rng):
    """--dataset bimcv-r against the transcription of HSENet's BIMCV-R script: raw values (bone
    above 1000 HU kept), global min-max, counter-clockwise, a volume with fewer than 32 slices."""
    cases = (("sub-S1_ses-E1_run-1_bp-chest_ct.nii.gz", (60, 50, 45)), ("sub-S2_ses-E2_run-1_bp-chest_ct.nii.gz", (48, 64, 20)))
    paths = []
    for name, shape in cases:
        v = phantom(shape, rng)
        v[0, 0, 0] = 2900  # a bright voxel: a clamp at 1000 would change every slice
        save_nifti(os.path.join(tmp, name), v, (0.7, 0.7, 5.0))
        paths.append((os.path.join(tmp, name), v))
    for q in (0, 95):
        out = os.path.join(tmp, f"bimcv{q}.h5")
        p = run_tool(["-o", out, "-q", "--dataset", "bimcv-r", "--jpeg-quality", str(q), "--image-size", "64"]
                     + [x for x, _ in paths])
        check(p.returncode == 0, f"hse-slice --dataset bimcv-r --jpeg-quality {q} exits 0")
        if p.returncode != 0:
            continue
        with h5py.File(out, "r") as f:
            got = f["slices"][:]
            ds = f.attrs["dataset"]
            ds = ds.decode() if isinstance(ds, bytes) else ds
            check(ds == "bimcv-r" and int(f.attrs["resample"]) == 0, "dataset attribute bimcv-r, resample 0")
        for k, (path, v) in enumerate(paths):
            want = bimcv_reference(v, size=64, jpeg=q)
            d = np.abs(got[k].astype(np.float64) - want)
            print(f"     {os.path.basename(path)} bimcv-r q{q}: max |diff| {d.max():.3g}")
            check(got[k].shape == want.shape and d.max() == 0, f"{os.path.basename(path)} q{q}: bit-exact to HSENet's BIMCV-R script")
            ct = reference(v.astype(np.float64), None, size=64, jpeg=q, resample=False)
            check(np.abs(ct - want).max() > 0.5, f"{os.path.basename(path)}: the CT-RATE recipe gives other slices")
    p = subprocess.run([TOOL, "-o", os.path.join(tmp, "bw.h5"), "--dataset", "bimcv-r", "--window", "-1000,200", paths[0][0]],
                       capture_output=True, text=True)
    check(p.returncode == 2 and "does not clamp" in p.stderr, f"--dataset bimcv-r --window: exit 2 ({p.returncode})")


# --------------------------------------------------------------------------- data
def phantom(shape, rng):
    """int16 HU-like chest phantom (X,Y,Z): air, body, lungs, a bone ring (partly above 1000 HU)."""
    nx, ny, nz = shape
    x = (np.arange(nx)[:, None, None] + 0.5) / nx * 2 - 1
    y = (np.arange(ny)[None, :, None] + 0.5) / ny * 2 - 1
    z = (np.arange(nz)[None, None, :] + 0.5) / nz * 2 - 1
    v = np.full(shape, -1000.0) + rng.normal(0, 15, shape)
    body = (x / 0.85) ** 2 + (y / 0.7) ** 2 < 1 - 0.2 * z**2
    v[body] = 40 + rng.normal(0, 20, body.sum())
    for cx in (-0.4, 0.4):
        lung = ((x - cx) / 0.3) ** 2 + (y / 0.45) ** 2 < 1 - 0.3 * z**2
        v[lung & body] = -850 + rng.normal(0, 40, (lung & body).sum())
    r = np.sqrt((x / 0.85) ** 2 + (y / 0.7) ** 2) + 0 * z
    bone = (r > 0.78) & (r < 0.86) & (np.sin(6 * np.arctan2(y, x) + 3 * z) > 0.2)
    zz = np.broadcast_to(z, shape)
    v[bone] = 900 + 300 * np.cos(9 * zz[bone]) + rng.normal(0, 40, bone.sum())
    return np.clip(np.round(v), -1024, 3000).astype(np.int16)


def save_nifti(path, data, spacing_xyz):
    img = nib.Nifti1Image(data, np.diag(list(spacing_xyz) + [1.0]))
    img.header.set_zooms(spacing_xyz)
    nib.save(img, path)


def compare(name, got, want, levels=2):
    check(got.shape == want.shape, f"{name}: shape {got.shape} == {want.shape}")
    if got.shape != want.shape:
        return
    d = np.abs(got.astype(np.float64) - want.astype(np.float64))
    frac = float((d > 1e-3).mean())
    print(f"     {name}: max |diff| {d.max():.3g} ({d.max() / LEVEL:.2f} grey levels), mean {d.mean():.3g}, "
          f"elements off by > 1e-3: {100 * frac:.4f}%")
    check(frac < 1e-3, f"{name}: fewer than 0.1% of elements differ by more than 1e-3")
    check(d.max() <= (levels + 0.05) * LEVEL, f"{name}: max difference within {levels} grey levels")


# --------------------------------------------------------------------------- tests
def test_linspace_against_torch(tmp):
    """Z = 32..600 through the tool: each slice carries its own index as two marked pixels."""
    g = 8  # 8x8 slices, --image-size 8: the resize and the crop are identities
    zs = list(range(32, 601))
    paths = []
    for z in zs:
        v = np.full((g, g, z), -1000, np.int16)
        for k in range(z):
            a, b = divmod(k, 32)
            v[a // g, a % g, k] = 1000             # positions 0..31: k // 32
            v[(32 + b) // g, (32 + b) % g, k] = 1000  # positions 32..63: k % 32
        p = os.path.join(tmp, f"lin_{z:03d}.nii.gz")
        save_nifti(p, v, (1.0, 1.0, 1.5))
        paths.append(p)
    out = os.path.join(tmp, "lin.h5")
    listing = "\n".join(paths) + "\n"
    p = subprocess.run([TOOL, "-o", out, "--no-resample", "--image-size", str(g), "--dtype", "float16", "-q", "-"],
                       input=listing, capture_output=True, text=True)
    check(p.returncode == 0, f"hse-slice on {len(zs)} marker volumes exits 0 ({p.stderr.strip()[:300]})")
    if p.returncode != 0:
        return
    with h5py.File(out, "r") as f:
        s = f["slices"][:, :, 0].astype(np.float32)  # [N,32,8,8]
        ids = [x.decode() if isinstance(x, bytes) else x for x in f["ids"][:]]
    check(ids == [os.path.basename(q) for q in paths], "ids are the file names in input order")
    bad = []
    for n, z in enumerate(zs):
        want = torch.linspace(0, z - 1, 32, dtype=torch.long).tolist()
        got = []
        for i in range(32):
            rot = s[n, i] > 0  # the two 255 pixels
            rows, cols = np.nonzero(rot)
            # rotated[i][j] = orig[g-1-j][i]
            pos = sorted(int((g - 1 - c) * g + r) for r, c in zip(rows, cols))
            got.append(pos[0] * 32 + (pos[1] - 32) if len(pos) == 2 else -1)
        if got != want:
            bad.append(z)
    check(not bad, f"slice indices equal torch.linspace(0, Z-1, 32, dtype=long) for Z = 32..600 (bad: {bad[:10]})")
    # PyTorch's CUDA kernel uses a float step: for 32 steps it gives the same indices.
    diff = []
    for z in range(32, 4001):
        step = np.float32(np.float32(z - 1) / np.float32(31))
        f32 = [int(np.float32(i) * step) if i < 16 else int(np.float32(z - 1) - step * np.float32(31 - i))
               for i in range(32)]
        if f32 != torch.linspace(0, z - 1, 32, dtype=torch.long).tolist():
            diff.append(z)
    check(not diff, f"float-step (CUDA) linspace gives the same 32 indices for Z = 32..4000 (differ: {diff[:10]})")
    if torch.cuda.is_available():
        cud = [z for z in range(32, 1001)
               if torch.linspace(0, z - 1, 32, dtype=torch.long, device="cuda").cpu().tolist()
               != torch.linspace(0, z - 1, 32, dtype=torch.long).tolist()]
        check(not cud, "CUDA and CPU torch.linspace agree for Z = 32..1000")


def test_volumes(tmp):
    rng = np.random.default_rng(7)
    cases = [
        # name, shape (X,Y,Z), spacing (x,y,z) mm
        ("a.nii.gz", (60, 50, 40), (0.75, 0.75, 2.5)),     # Z 66 >= 32, upscaling to 224
        ("b.nii.gz", (70, 64, 20), (0.625, 0.625, 2.0)),   # Z 26 < 32: trilinear to 32 slices
        ("c.nii.gz", (300, 260, 24), (0.875, 0.875, 3.0)),  # X 350, Y 303: downscaling to 224
    ]
    vols = {}
    for name, shape, sp in cases:
        v = phantom(shape, rng)
        save_nifti(os.path.join(tmp, name), v, sp)
        vols[name] = (v, (sp[2], sp[0], sp[1]))
    out = os.path.join(tmp, "s.h5")
    p = run_tool(["-o", out, "-q", "--threads", "2"] + [os.path.join(tmp, c[0]) for c in cases])
    check(p.returncode == 0, "hse-slice exits 0")
    if p.returncode != 0:
        return
    with h5py.File(out, "r") as f:
        got = f["slices"][:]
        ids = [x.decode() if isinstance(x, bytes) else x for x in f["ids"][:]]
        attrs = dict(f.attrs)
    check(got.shape == (3, 32, 3, 224, 224) and got.dtype == np.float32, f"dataset slices [3,32,3,224,224] float32 ({got.shape}, {got.dtype})")
    check(ids == [c[0] for c in cases], f"ids {ids}")
    kind = attrs.get("hse_kind")
    kind = kind.decode() if isinstance(kind, bytes) else kind
    check(kind == "slices", f"hse_kind is 'slices' ({kind})")
    recipe = attrs.get("recipe")
    recipe = recipe.decode() if isinstance(recipe, bytes) else recipe
    check(recipe == "hsenet-2d", "recipe attribute")
    check(int(attrs.get("n_slices", -1)) == 32 and int(attrs.get("image_size", -1)) == 224, "n_slices and image_size attributes")
    check(np.allclose(attrs.get("mean"), MEAN) and np.allclose(attrs.get("std"), STD), "mean and std attributes")
    for k, (name, _, _) in enumerate(cases):
        v, sp = vols[name]
        want = reference(v.astype(np.float64), sp)
        compare(name, got[k], want)

    # JPEG q95 round trip (the published JPEG files), one volume.
    outj = os.path.join(tmp, "j.h5")
    p = run_tool(["-o", outj, "-q", "--jpeg-quality", "95", os.path.join(tmp, "c.nii.gz")])
    check(p.returncode == 0, "hse-slice --jpeg-quality 95 exits 0")
    if p.returncode == 0:
        with h5py.File(outj, "r") as f:
            gj = f["slices"][0]
            check(int(f.attrs["jpeg_quality"]) == 95, "jpeg_quality attribute")
        v, sp = vols["c.nii.gz"]
        compare("c.nii.gz --jpeg-quality 95", gj, reference(v.astype(np.float64), sp, jpeg=95))

    # Bit-exact stages after the uint8 cast: without resampling, and with every slice holding -1000 and
    # 1000 HU and no HU value whose 8-bit level is an exact integer (h + 1000 divisible by 400), the
    # uint8 slices are the same in float32 and float64, so rotation, JPEG, Pillow's bicubic resize,
    # the crop and the normalisation must match exactly.
    v = phantom((300, 260, 36), rng)
    v[0, 0, :], v[1, 0, :] = -1000, 1000
    inner = (v > -1000) & (v < 1000) & ((v.astype(np.int32) + 1000) % 400 == 0)
    v[inner] += 1
    name = "d.nii.gz"
    save_nifti(os.path.join(tmp, name), v, (0.75, 0.75, 1.5))
    for q in (0, 95):
        oute = os.path.join(tmp, f"exact{q}.h5")
        p = run_tool(["-o", oute, "-q", "--no-resample", "--jpeg-quality", str(q), os.path.join(tmp, name)])
        check(p.returncode == 0, f"hse-slice --no-resample --jpeg-quality {q} exits 0")
        if p.returncode == 0:
            with h5py.File(oute, "r") as f:
                ge = f["slices"][0]
            want = reference(v.astype(np.float64), None, jpeg=q, resample=False)
            d = np.abs(ge.astype(np.float64) - want)
            print(f"     {name} --no-resample --jpeg-quality {q}: max |diff| {d.max():.3g}")
            check(d.max() == 0, f"{name} --jpeg-quality {q}: bit-exact after the uint8 cast")

    # CT-RATE style: raw stored values (HU + 1024) rescaled by the metadata, spacing from the metadata.
    v = phantom((64, 56, 30), rng)
    raw = (v.astype(np.int32) + 1024).clip(0, 32767).astype(np.int16)
    name = "train_1_a_1.nii.gz"
    save_nifti(os.path.join(tmp, name), raw, (1.0, 1.0, 1.0))
    meta = os.path.join(tmp, "meta.csv")
    with open(meta, "w") as f:
        f.write("VolumeName,RescaleSlope,RescaleIntercept,XYSpacing,ZSpacing\n")
        f.write(f'{name},1,-1024,"[0.625, 0.625]",2.5\n')
    outm = os.path.join(tmp, "m.h5")
    p = run_tool(["-o", outm, "-q", "--metadata", meta, os.path.join(tmp, name)])
    check(p.returncode == 0, "hse-slice --metadata exits 0")
    if p.returncode == 0:
        with h5py.File(outm, "r") as f:
            gm = f["slices"][0]
        hu = raw.astype(np.float64) * 1 + (-1024)
        compare(name + " (metadata)", gm, reference(hu, (2.5, 0.625, 0.625)))

    # Options: fewer slices, another size, float16, no resampling.
    outo = os.path.join(tmp, "o.h5")
    p = run_tool(["-o", outo, "-q", "--slices", "8", "--image-size", "64", "--no-resample", "--dtype", "float16",
                  os.path.join(tmp, "a.nii.gz")])
    check(p.returncode == 0, "hse-slice --slices 8 --image-size 64 --no-resample --dtype float16 exits 0")
    if p.returncode == 0:
        with h5py.File(outo, "r") as f:
            go = f["slices"][0].astype(np.float32)
            check(f["slices"].dtype == np.float16, "float16 dataset")
        v, sp = vols["a.nii.gz"]
        want = reference(v.astype(np.float64), sp, n=8, size=64, resample=False)
        d = np.abs(go - want)
        print(f"     a.nii.gz --slices 8 --image-size 64 float16: max |diff| {d.max():.3g}")
        check(float((d > 4e-3).mean()) < 1e-3 and d.max() <= 2.05 * LEVEL, "float16 output within half precision")

    # Errors: a missing input is exit 3; with --keep-going the good one is written and the exit is 1.
    p = subprocess.run([TOOL, "-o", os.path.join(tmp, "e.h5"), os.path.join(tmp, "missing.nii.gz")], capture_output=True, text=True)
    check(p.returncode == 3, f"missing input: exit 3 ({p.returncode})")
    fl = os.path.join(tmp, "fail.tsv")
    p = subprocess.run([TOOL, "-o", os.path.join(tmp, "k.h5"), "--keep-going", "--failures", fl, "-q",
                        os.path.join(tmp, "missing.nii.gz"), os.path.join(tmp, "b.nii.gz")], capture_output=True, text=True)
    check(p.returncode == 1, f"--keep-going with one failure: exit 1 ({p.returncode})")
    check(os.path.exists(os.path.join(tmp, "k.h5")), "--keep-going wrote its output")
    if os.path.exists(os.path.join(tmp, "k.h5")):
        with h5py.File(os.path.join(tmp, "k.h5"), "r") as f:
            check(f["slices"].shape[0] == 1, "--keep-going wrote the good volume")
    check(os.path.exists(fl) and "missing.nii.gz" in open(fl).read(), "--failures lists the failed input")
    p = subprocess.run([TOOL, "-o", os.path.join(tmp, "u.h5"), "--window", "5,1", os.path.join(tmp, "b.nii.gz")],
                       capture_output=True, text=True)
    check(p.returncode == 2, f"bad --window: exit 2 ({p.returncode})")


def main():
    if not os.path.exists(TOOL):
        print(f"FAIL: {TOOL} not found (set HSE_BIN_DIR)")
        return 1
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="hse-slice-") as tmp:
        test_linspace_against_torch(tmp)
        test_volumes(tmp)
        test_compat_hsenet(tmp, np.random.default_rng(11))
        test_bimcv(tmp, np.random.default_rng(5))
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
