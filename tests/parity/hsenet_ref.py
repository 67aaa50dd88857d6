"""Reference implementations of HSENet's CT preprocessing in Python (numpy, torch, monai).

These transcribe the authors' script Data/data_processing/CT-RATE/CT-RATE_nii_to_3D_volume_npy_file.py
(nii_img_to_tensor; hsenet-spec §5) step by step, on the CPU instead of CUDA, so hse's C++ can be
checked against it (tests/parity) and timed against it (bench/). As the script:
  - the metadata slope and intercept are applied to every file (CT-RATE v2 files, already HU, are
    shifted again: pass slope 1, intercept 0 for the script as it would run with correct
    metadata);
  - the resampling runs in float64, the result is cast to float32 before the min-max, which runs
    in float32 torch (so clamped air interpolated to -1000 +- 1e-13 is exactly -1000 again and
    maps to 0: no foreground residue);
  - XYSpacing's first value serves both in-plane axes (the caller passes spacing_zxy).
"""
import numpy as np


def resize_array(t, current, target):
    """CT-CLIP/HSENet resize_array: trilinear, align_corners=False, size int(n * cur/target)."""
    import torch.nn.functional as F
    shape = t.shape[2:]
    factors = [current[i] / target[i] for i in range(len(shape))]
    new_shape = [int(shape[i] * factors[i]) for i in range(len(shape))]
    return F.interpolate(t, size=new_shape, mode="trilinear", align_corners=False).cpu().numpy()


def hsenet_bimcv_3d(path, size=(32, 256, 256)):
    """BIMCV_R_nii_to_3D_volume_npy_file.py (main path): get_fdata(float32), clamp [-1000, 200],
    permute(2, 0, 1), the volume's min-max, CropForeground, Resize bilinear (trilinear in 3-D); no
    slope, intercept or resampling. Returns float32 [1, D, H, W]."""
    import nibabel as nib
    import torch
    from monai.transforms import Compose, CropForeground, Resize

    t = torch.tensor(nib.load(path).get_fdata(dtype=np.float32), dtype=torch.float32)
    t = torch.clamp(t, min=-1000, max=200).permute(2, 0, 1).unsqueeze(0)
    mn, mx = torch.min(t), torch.max(t)
    t = (t - mn) / torch.clamp(mx - mn, min=1e-8)
    out = Compose([CropForeground(), Resize(spatial_size=list(size), mode="bilinear")])(t)
    return np.asarray(out, dtype=np.float32)


def hsenet_3d(path, slope=1.0, intercept=0.0, spacing_zxy=None, window=(-1000, 200),
              target=(1.5, 0.75, 0.75), size=(32, 256, 256), timings=None):
    """nii_img_to_tensor + transform: returns float32 [1, 32, 256, 256] (1, Z, X, Y)."""
    import time
    import nibabel as nib
    import torch
    from monai.transforms import Compose, CropForeground, Resize

    t0 = time.perf_counter()
    img = nib.load(path)
    img_data = img.get_fdata()  # float64 (X, Y, Z)
    t1 = time.perf_counter()
    if spacing_zxy is None:
        zooms = img.header.get_zooms()
        spacing_zxy = (float(zooms[2]), float(zooms[0]), float(zooms[1]))
    t = torch.tensor(img_data)
    t = slope * t + intercept
    t = torch.clamp(t, min=window[0], max=window[1])
    img_data = t.numpy().transpose(2, 0, 1)
    tensor = torch.tensor(img_data).unsqueeze(0).unsqueeze(0)
    img_data = resize_array(tensor, spacing_zxy, target)[0][0]
    img_data = np.transpose(img_data, (1, 2, 0))
    img_data = torch.tensor(img_data).to(dtype=torch.float32).numpy()
    tensor = torch.tensor(img_data).permute(2, 0, 1).unsqueeze(0)
    min_val, max_val = torch.min(tensor), torch.max(tensor)
    tensor = tensor - min_val
    normalized = tensor / torch.clamp(max_val - min_val, min=1e-8)
    transform = Compose([CropForeground(), Resize(spatial_size=list(size), mode="bilinear")])
    out = np.asarray(transform(normalized), dtype=np.float32)
    if timings is not None:
        timings["read"] = timings.get("read", 0) + (t1 - t0)
        timings["total"] = timings.get("total", 0) + (time.perf_counter() - t0)
    return out
