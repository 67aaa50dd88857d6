"""Reference implementations of HSENet's CT preprocessing in Python (numpy, torch, monai).

These follow the authors' scripts (hsenet-spec §5, Data/data_processing/CT-RATE/*.py) step by
step, so hse's C++ can be checked against them (tests/parity) and timed against them (bench/).
"""
import numpy as np


def resize_array(t, current, target):
    """CT-CLIP/HSENet resize_array: trilinear, align_corners=False, size int(n * cur/target)."""
    import torch.nn.functional as F
    shape = t.shape[2:]
    factors = [current[i] / target[i] for i in range(len(shape))]
    new_shape = [int(shape[i] * factors[i]) for i in range(len(shape))]
    return F.interpolate(t, size=new_shape, mode="trilinear", align_corners=False)


def hsenet_3d(path, slope=1.0, intercept=0.0, rescale=False, spacing_zxy=None, window=(-1000, 200),
              target=(1.5, 0.75, 0.75), size=(32, 256, 256), timings=None):
    """CT-RATE_nii_to_3D_volume_npy_file.py: returns float32 [1, 32, 256, 256]."""
    import time
    import nibabel as nib
    import torch
    from monai.transforms import CropForeground, Resize

    t0 = time.perf_counter()
    img = nib.load(path)
    data = img.get_fdata()  # float64 (X, Y, Z)
    t1 = time.perf_counter()
    if spacing_zxy is None:
        zooms = img.header.get_zooms()
        spacing_zxy = (float(zooms[2]), float(zooms[0]), float(zooms[1]))
    if rescale:
        data = slope * data + intercept
    data = np.clip(data, window[0], window[1])
    data = data.transpose(2, 0, 1)
    tensor = torch.tensor(data).unsqueeze(0).unsqueeze(0)
    resized = resize_array(tensor, spacing_zxy, target)[0][0].cpu().numpy()
    lo, hi = resized.min(), resized.max()
    resized = (resized - lo) / max(hi - lo, 1e-8)
    image = resized[np.newaxis, ...]
    image = CropForeground()(image)
    image = Resize(list(size), mode="bilinear")(image)
    out = np.asarray(image, dtype=np.float32)
    if timings is not None:
        timings["read"] = timings.get("read", 0) + (t1 - t0)
        timings["total"] = timings.get("total", 0) + (time.perf_counter() - t0)
    return out
