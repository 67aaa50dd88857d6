#!/usr/bin/env python3
"""Parity test: hse::io safetensors reader/writer against the `safetensors` package.

Python writes files with safetensors.numpy.save_file / safetensors.torch.save_file
(every common dtype, BF16 through torch, 0-d scalars, empty tensors, unicode
names, metadata, a sharded checkpoint with an index) and hse reads them; hse
writes files and Python loads them. Values are compared bit for bit, and a file
hse writes is byte-identical to the one safetensors.numpy.save produces for the
same tensors. Malformed and randomly mutated files must be accepted or rejected
as the package does, except where hse is deliberately stricter (duplicate keys,
a header not starting with '{', both disallowed by the format's README).

hse is driven through the unit test binary's "driver: safetensors" test case
(HSE_ST_IN/HSE_ST_OUT describe a file; HSE_ST_WRITE/HSE_ST_SPEC write one).

Environment: HSE_BIN_DIR (the build's bin/). Exit 0 pass, 77 skip, 1 fail.
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import safetensors.numpy as snp
    from safetensors import safe_open
except ImportError as e:  # pragma: no cover
    print(f"skip: missing Python module: {e}")
    sys.exit(77)
try:
    import torch
    import safetensors.torch as stt
except ImportError:  # pragma: no cover
    torch = None

BIN = os.environ.get("HSE_BIN_DIR", "")
EXE = os.path.join(BIN, "unit_test_safetensors")
if not os.access(EXE, os.X_OK):
    print(f"skip: {EXE} not built")
    sys.exit(77)

TMP = tempfile.mkdtemp(prefix="hse_st_parity_")
passed = 0
failures = []


def check(cond, msg):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(msg)
        print("FAIL " + msg)


def driver(env):
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run([EXE, "-tc=driver*"], env=e, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stdout[-3000:])
        print(p.stderr[-3000:])
    return p.returncode


def describe(path):
    out = os.path.join(TMP, "describe.json")
    if os.path.exists(out):
        os.remove(out)
    rc = driver({"HSE_ST_IN": path, "HSE_ST_OUT": out})
    if rc != 0 or not os.path.exists(out):
        return {"ok": False, "error": f"driver exit {rc}", "code": -1}
    with open(out, encoding="utf-8") as f:
        return json.load(f)


def cxx_write(spec, path):
    sp = os.path.join(TMP, "spec.json")
    with open(sp, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return driver({"HSE_ST_WRITE": path, "HSE_ST_SPEC": sp})


NP_DTYPE = {
    np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16",
    np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16", np.dtype(np.int8): "I8",
    np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL", np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
    np.dtype(np.uint64): "U64",
}


def expect_np(a):
    """(dtype, shape, hex, f32_bits or None) hse should report for a numpy array."""
    a = np.require(a, requirements="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
    bits = None
    if a.dtype.kind == "f":
        with np.errstate(over="ignore"):
            bits = a.astype(np.float32).view(np.uint32).ravel().tolist()
    return NP_DTYPE[a.dtype], list(a.shape), a.tobytes().hex(), bits


def expect_torch(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        raw = t.view(torch.int16).numpy().tobytes()
        bits = t.float().numpy().view(np.uint32).ravel().tolist()
        return "BF16", list(t.shape), raw.hex(), bits
    return expect_np(t.numpy())


def compare(label, d, expected, metadata):
    """d: hse's description; expected: {name: (dtype, shape, hex, bits)}."""
    if not d.get("ok"):
        check(False, f"{label}: hse could not read it: {d.get('error')}")
        return
    check(d["names"] == sorted(expected), f"{label}: names {d['names']} != {sorted(expected)}")
    check(d["metadata"] == metadata, f"{label}: metadata {d['metadata']} != {metadata}")
    for name, (dtype, shape, hx, bits) in expected.items():
        t = d["tensors"].get(name)
        if t is None:
            check(False, f"{label}: {name!r} missing")
            continue
        check(t["dtype"] == dtype, f"{label}: {name!r} dtype {t['dtype']} != {dtype}")
        check(t["shape"] == shape, f"{label}: {name!r} shape {t['shape']} != {shape}")
        check(t["hex"] == hx, f"{label}: {name!r} bytes differ")
        if bits is not None:
            check(t.get("f32_bits") == bits, f"{label}: {name!r} float values differ")


def numpy_tensors():
    rng = np.random.default_rng(0)
    half_bits = np.array([0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x8000, 0x3555, 0xC000],
                         dtype=np.uint16)
    return {
        "enc.w": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": np.array([np.nan, np.inf, -0.0, 1e-310, 1e39, 1.0 / 3.0, -2.5], dtype=np.float64),
        "half": half_bits.view(np.float16).reshape(2, 5),
        "ids": np.array([[-(2**63), 2**63 - 1, 0], [1, -1, 42]], dtype=np.int64),
        "i32": np.array([-(2**31), 2**31 - 1], dtype=np.int32),
        "i16": np.array([-7, 7], dtype=np.int16),
        "i8": np.array([-128, 127, 0], dtype=np.int8),
        "u8": np.arange(256, dtype=np.uint8).reshape(16, 16),
        "bool": np.array([True, False, True]),
        "u32": np.array([2**32 - 1], dtype=np.uint32),
        "scalar": np.array(3.5, dtype=np.float32),
        "scalar_i64": np.array(-9, dtype=np.int64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "empty_i64": np.zeros((2, 0), dtype=np.int64),
        "größe.日本語.🙂": np.array([1.0, -1.0], dtype=np.float32),
        'quote"back\\slash\nnl': np.array([7], dtype=np.uint8),
    }


def main():
    # 1. numpy writes, hse reads.
    arrays = numpy_tensors()
    meta = {"format": "np", "note": 'ünï "q"\n\t'}
    p = os.path.join(TMP, "np.safetensors")
    snp.save_file(arrays, p, metadata=meta)
    with safe_open(p, "np") as f:
        check(list(f.keys()) == sorted(arrays), "numpy: safe_open keys are the sorted names")
    compare("numpy", describe(p), {k: expect_np(v) for k, v in arrays.items()}, meta)
    p0 = os.path.join(TMP, "nometa.safetensors")
    snp.save_file({"a": arrays["enc.w"]}, p0)
    compare("numpy, no metadata", describe(p0), {"a": expect_np(arrays["enc.w"])}, {})
    p00 = os.path.join(TMP, "nothing.safetensors")
    snp.save_file({}, p00)
    compare("numpy, no tensors", describe(p00), {}, {})

    # 2. torch writes (BF16), hse reads.
    if torch is not None:
        g = torch.Generator().manual_seed(0)
        special = torch.tensor([0x0001, 0x007F, 0x0080, 0x7F7F, 0x7F80, -0x0080, 0x7FC0, -0x8000, 0x3F80, 0x3F81],
                               dtype=torch.int16).view(torch.bfloat16)
        tensors = {
            "model.embed.weight": torch.randn(5, 6, generator=g).to(torch.bfloat16),
            "special": special,
            "bf16_scalar": torch.tensor(1.5, dtype=torch.bfloat16),
            "bf16_empty": torch.zeros(0, dtype=torch.bfloat16),
            "f16": torch.randn(7, generator=g).to(torch.float16),
            "f32": torch.randn(2, 3, 4, generator=g),
            "f64": torch.randn(3, generator=g, dtype=torch.float64),
            "position_ids": torch.arange(10, dtype=torch.int64).unsqueeze(0),
            "mask": torch.tensor([1, 0, 1], dtype=torch.uint8),
        }
        pt = os.path.join(TMP, "torch.safetensors")
        stt.save_file(tensors, pt, metadata={"format": "pt"})
        compare("torch", describe(pt), {k: expect_torch(v) for k, v in tensors.items()}, {"format": "pt"})
    else:
        print("note: torch not installed, BF16 via torch skipped")

    # 3. A sharded checkpoint.
    ck = os.path.join(TMP, "ckpt")
    os.makedirs(ck)
    shard1 = {"layers.0.weight": arrays["enc.w"], "layers.0.bias": arrays["f64"]}
    shard2 = {"layers.1.weight": arrays["half"], "embed": arrays["u8"]}
    snp.save_file(shard1, os.path.join(ck, "model-00001-of-00002.safetensors"), metadata={"format": "np"})
    snp.save_file(shard2, os.path.join(ck, "model-00002-of-00002.safetensors"), metadata={"format": "np"})
    wm = {k: "model-00001-of-00002.safetensors" for k in shard1}
    wm.update({k: "model-00002-of-00002.safetensors" for k in shard2})
    with open(os.path.join(ck, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 1234}, "weight_map": wm}, f, indent=2)
    d = describe(ck)
    compare("sharded", d, {k: expect_np(v) for k, v in {**shard1, **shard2}.items()}, {"total_size": "1234"})
    check(d.get("shards") == 2, "sharded: 2 shards")
    os.remove(os.path.join(ck, "model-00002-of-00002.safetensors"))
    d = describe(ck)
    check(not d["ok"] and d["code"] == 3 and "listed in weight_map does not exist" in d["error"],
          f"sharded: a missing shard is an input error ({d.get('error')})")

    # 4. hse writes, Python loads: bytes identical to safetensors.numpy.save.
    spec = {"metadata": {"format": "np"},
            "tensors": [{"name": k, "dtype": NP_DTYPE[v.dtype], "shape": list(v.shape), "hex": v.tobytes().hex()}
                        for k, v in arrays.items()]}
    cw = os.path.join(TMP, "hse.safetensors")
    check(cxx_write(spec, cw) == 0, "hse wrote a file")
    with open(cw, "rb") as f:
        got = f.read()
    check(got == snp.save(arrays, metadata={"format": "np"}), "hse's file is byte-identical to safetensors.numpy.save")
    loaded = snp.load_file(cw)
    with safe_open(cw, "np") as f:
        check(f.metadata() == {"format": "np"}, "Python reads hse's metadata")
    for k, v in arrays.items():
        w = loaded.get(k)
        check(w is not None and w.dtype == v.dtype and w.shape == v.shape and w.tobytes() == v.tobytes(),
              f"Python loads hse's {k!r} exactly")
    # Several metadata entries (their order in the header is free; the content must match).
    spec["metadata"] = {"format": "np", "b": "ü\n", "a": "1"}
    check(cxx_write(spec, cw) == 0, "hse wrote a file with 3 metadata entries")
    with safe_open(cw, "np") as f:
        check(f.metadata() == spec["metadata"], "Python reads hse's 3 metadata entries")

    # 5. hse converts floats to BF16/F16/F32/F64 as torch/numpy do.
    rng = np.random.default_rng(1)
    vals = np.concatenate([
        rng.standard_normal(200).astype(np.float32) * np.float32(1000),
        np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x7F7FFFFF, 0x00000001, 0x807FFFFF, 0x7F800000, 0xFF800000,
                  0x7FC00000, 0x477FF000, 0x477FEFFF, 0x33000000, 0x33000001, 0x00000000, 0x80000000],
                 dtype=np.uint32).view(np.float32),
    ])
    bits = vals.view(np.uint32).tolist()
    conv = {"tensors": [{"name": n, "dtype": dt, "shape": [len(bits)], "f32_bits": bits}
                        for n, dt in (("bf16", "BF16"), ("f16", "F16"), ("f32", "F32"), ("f64", "F64"))]}
    cc = os.path.join(TMP, "conv.safetensors")
    check(cxx_write(conv, cc) == 0, "hse wrote converted floats")
    raw = {}
    with open(cc, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    for k, v in hdr.items():
        if k != "__metadata__":
            raw[k] = blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
    with np.errstate(over="ignore"):
        ref16 = vals.astype(np.float16).tobytes()
    check(raw["f16"] == ref16, "F16 conversion matches numpy astype(float16)")
    check(raw["f32"] == vals.tobytes(), "F32 stored exactly")
    check(raw["f64"] == vals.astype(np.float64).tobytes(), "F64 conversion matches numpy")
    if torch is not None:
        # NaN payloads differ between torch's scalar (0x7fc0, as hse) and vectorised (0xffff) paths:
        # NaNs must stay NaNs, every other value must match bit for bit.
        ref = torch.from_numpy(vals.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        got16 = np.frombuffer(raw["bf16"], dtype=np.uint16)
        nan = np.isnan(vals)
        check(np.array_equal(got16[~nan], ref[~nan]), "BF16 conversion matches torch (round to nearest even)")
        check(bool(np.all(got16[nan] == 0x7FC0)), "BF16 NaN is the quiet NaN 0x7fc0")
        lt = stt.load_file(cc)
        check(lt["bf16"].dtype == torch.bfloat16 and lt["bf16"].shape == (len(bits),), "torch loads hse's BF16")

    # 6. Malformed files: hse rejects what the package rejects.
    def img(h, data=b""):
        h = h.encode() if isinstance(h, str) else h
        return struct.pack("<Q", len(h)) + h + data

    t = '"dtype":"F32","shape":[2],"data_offsets":[0,8]'
    z8 = bytes(8)
    cases = [  # (label, bytes, hse deliberately stricter)
        ("valid", img('{"a":{' + t + "}}", z8), False),
        ("padded", img('{"a":{' + t + "}}    ", z8), False),
        ("newline padded", img('{"a":{' + t + "}}\n", z8), False),
        ("no tensors", img("{}"), False),
        ("header order differs from offsets",
         img('{"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"a":{' + t + "}}", z8 + z8), False),
        ("unknown field", img('{"a":{' + t + ',"x":[1,{"y":null}]}}', z8), False),
        ("metadata null", img('{"__metadata__":null,"a":{' + t + "}}", z8), False),
        ("short file", b"1234567", False),
        ("empty file", b"", False),
        ("header beyond file", struct.pack("<Q", 100) + b"{}", False),
        ("header too large", struct.pack("<Q", 100_000_001) + b"{}", False),
        ("not utf-8", img(b'{"a\xff":{' + t.encode() + b"}}", z8), False),
        ("truncated json", img('{"a":{' + t + "}", z8), False),
        ("trailing comma", img('{"a":{' + t + "},}", z8), False),
        ("nul padding", img('{"a":{' + t + "}}\0", z8), False),
        ("missing dtype", img('{"a":{"shape":[2],"data_offsets":[0,8]}}', z8), False),
        ("missing shape", img('{"a":{"dtype":"F32","data_offsets":[0,8]}}', z8), False),
        ("missing offsets", img('{"a":{"dtype":"F32","shape":[2]}}', z8), False),
        ("dtype not string", img('{"a":{"dtype":1,"shape":[2],"data_offsets":[0,8]}}', z8), False),
        ("unknown dtype", img('{"a":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}}', z8), False),
        ("lowercase dtype", img('{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}', z8), False),
        ("negative dim", img('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', z8), False),
        ("float dim", img('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}', z8), False),
        ("3 offsets", img('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', z8), False),
        ("metadata value int", img('{"__metadata__":{"k":1},"a":{' + t + "}}", z8), False),
        ("metadata array", img('{"__metadata__":[],"a":{' + t + "}}", z8), False),
        ("tensor not object", img('{"a":[1]}'), False),
        ("size mismatch", img('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', z8), False),
        ("reversed offsets", img('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', z8), False),
        ("hole at start", img('{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', bytes(12)), False),
        ("overlap", img('{"a":{' + t + '},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', bytes(12)), False),
        ("hole between", img('{"a":{' + t + '},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}', bytes(20)),
         False),
        ("truncated data", img('{"a":{' + t + "}}", bytes(4)), False),
        ("extra data", img('{"a":{' + t + "}}", bytes(9)), False),
        ("overflowing shape", img('{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}}', z8),
         False),
        ("sub-byte F4", img('{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', bytes(2)), False),
        ("duplicate field", img('{"a":{' + t + ',"dtype":"F32"}}', z8), False),
        ("duplicate tensor", img('{"a":{' + t + '},"a":{' + t + "}}", z8), True),
        ("duplicate metadata key", img('{"__metadata__":{"k":"1","k":"2"},"a":{' + t + "}}", z8), True),
        ("leading whitespace", img(' {"a":{' + t + "}}", z8), True),
    ]
    for label, data, stricter in cases:
        path = os.path.join(TMP, "case.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            snp.load(data)
            py_ok = True
        except Exception:
            py_ok = False
        d = describe(path)
        if not d["ok"]:
            check(d["code"] == 3 and d["error"].startswith(path + ": ") and "\n" not in d["error"],
                  f"case {label}: a one-line input error naming the file ({d['error']!r})")
        if stricter:
            check(py_ok and not d["ok"], f"case {label}: Python accepts, hse rejects (stricter by design)")
        else:
            check(py_ok == d["ok"], f"case {label}: Python {'accepts' if py_ok else 'rejects'}, "
                                    f"hse {'accepts' if d['ok'] else 'rejects: ' + d['error']}")

    # 7. Random mutations: hse accepts exactly what the package accepts, with the same contents.
    base = snp.save({"alpha": arrays["enc.w"], "beta": arrays["ids"], "gamma": arrays["half"],
                     "s": arrays["scalar"], "e": arrays["empty"]}, metadata={"format": "np"})
    r = random.Random(7)
    agree = stricter = accepted = 0
    for i in range(150):
        b = bytearray(base)
        k = r.randrange(4)
        if k == 0:
            b = b[:r.randrange(len(b))]
        elif k == 1:
            for _ in range(r.randint(1, 3)):
                b[r.randrange(len(b))] = r.randrange(256)
        elif k == 2:
            for _ in range(r.randint(1, 2)):
                b[8 + r.randrange(len(b) - 8)] = ord(r.choice('{}[]",:0123456789-. eE\\uFIB'))
        else:
            b[r.randrange(8)] = r.randrange(256)
        data = bytes(b)
        path = os.path.join(TMP, "mut.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        try:
            ref = snp.load(data)
            py_ok = True
        except Exception:
            py_ok = False
        d = describe(path)
        if py_ok and not d["ok"] and ("duplicate key" in d["error"] or "does not start with" in d["error"]):
            stricter += 1
            continue
        if py_ok != d["ok"]:
            check(False, f"mutation {i}: Python {'accepts' if py_ok else 'rejects'}, hse "
                         f"{'accepts' if d['ok'] else 'rejects: ' + d['error']}")
            continue
        agree += 1
        if py_ok:
            accepted += 1
            same = sorted(ref) == d["names"] and all(
                d["tensors"][n]["hex"] == v.tobytes().hex() and
                d["tensors"][n]["shape"] == list(v.shape) for n, v in ref.items())
            check(same, f"mutation {i}: same tensors as Python")
        else:
            check(d["code"] == 3 and "\n" not in d["error"], f"mutation {i}: one-line input error")
    print(f"mutations: {agree} agree ({accepted} accepted by both), {stricter} rejected by hse's stricter rules")


try:
    main()
finally:
    shutil.rmtree(TMP, ignore_errors=True)
print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
