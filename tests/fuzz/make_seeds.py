#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (small valid inputs of each format, plus
a few edge cases). The corpus also keeps every regression input found by `make fuzz`; this
script only (re)writes the files named seed_*. Needs numpy, nibabel, safetensors, tokenizers."""
import base64
import gzip
import io
import json
import os

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed_" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def safetensors_seeds():
    from safetensors.numpy import save
    put("safetensors", "f32", save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float16)},
                                    metadata={"format": "pt"}))
    put("safetensors", "bf16_i64", save({"x": np.zeros((2, 2), np.int64), "s": np.array(3.5, np.float32)}))
    put("safetensors", "empty_tensor", save({"e": np.zeros((0, 4), np.float32)}))
    put("safetensors", "empty", b"")


def nifti_seeds():
    import nibabel as nib
    v = (np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3) - 30)
    for cls, tag in ((nib.Nifti1Image, "n1"), (nib.Nifti2Image, "n2")):
        img = cls(v, np.diag([0.7, 0.8, 1.5, 1.0]))
        img.header["scl_slope"] = 1.0
        img.header["scl_inter"] = -1024.0
        b = img.to_bytes()
        put("nifti", tag, b)
        put("nifti", tag + "_gz", gzip.compress(b))
    f32 = nib.Nifti1Image(np.random.default_rng(0).normal(size=(3, 3, 2)).astype(np.float32), np.eye(4))
    put("nifti", "f32", f32.to_bytes())


def csv_seeds():
    put("csv", "metadata", "VolumeName,RescaleSlope,RescaleIntercept,XYSpacing,ZSpacing\n"
                           "train_1_a_1.nii.gz,1,-1024,\"[0.75, 0.75]\",1.5\n")
    put("csv", "quoted", 'VolumeName,Findings_EN\nv1,"The lungs, clear.\nNo ""effusion""."\nv2,\n')
    put("csv", "crlf", "a,b\r\n1,2\r\n3,4\r\n")


def tokenizer_seeds():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    texts = ["The lungs are clear.", "No pleural effusion.", "A 12 mm nodule, non-specific."] * 20
    t.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    put("tokenizer_json", "bytelevel", t.to_str())
    j = json.loads(t.to_str())
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\p{L}+|\p{N}{1,3}|\s+"}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    j["post_processor"] = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                                                  {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0],
                                                                             "tokens": ["<|endoftext|>"]}}}
    put("tokenizer_json", "split_template", json.dumps(j))


def vocab_seeds():
    put("vocab_txt", "small", "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "lung", "##s", "are",
                                         "clear", ".", "no", "(", ")", "12", "mm"]) + "\n")
    put("vocab_txt", "crlf_blank", "[PAD]\r\n[UNK]\r\n\r\n[CLS]\r\n[SEP]\r\nthe\r\n")


def tiktoken_seeds():
    toks = [bytes([b]) for b in range(256)] + [b"th", b"the", b" the", b"lu", b"lung", b" lung", b"s"]
    put("tiktoken", "small", "".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(toks)))


def jsonl_seeds():
    put("jsonl", "predictions", '{"id": "a", "prediction": "No effusion.", "reference": "No pleural effusion."}\n'
        '\n{"id": 7, "prediction": "Left lung.", "reference": null}\r\n{"id": "b", "prediction": ""}\n')
    put("jsonl", "unicode", '{"id": "\\u00e9", "prediction": "\u00e9tude \\ud83d\\ude00"}\n')


def rankings_seeds():
    put("rankings", "header", "query_id\trank\titem_id\tscore\nq1\t1\tv1\t0.91\nq1\t2\tv2\t0.5\nq2\t1\tv2\t0.8\n")
    put("rankings", "no_score_crlf", "q1\t2\tv1\r\nq1\t1\tv2\r\n")


def h5_seeds():
    # The bytes drive tests/fuzz/fuzz_h5.cpp's builder: hse_format "hse", version "1.0", kind
    # "volumes", preprocess.size (variable-length strings, UTF-8; the third seed: ASCII), 2 ids
    # "ab" and "cd", a dataset volumes [2, 2, 2] of float32 (the second seed: float16), one
    # shard, expected kind "volumes".
    def seed(dtype, utf8):
        attrs = [3, 0, utf8] * 4
        ids = [2, 3, 1, 2, ord("a"), ord("b"), 2, ord("c"), ord("d")]
        volumes = [1, 3, 1, 1, 1, 2, 1, 2, dtype] + list(range(120, 128))
        return bytes(attrs + ids + volumes + [0, 0, 0, 0, 1])
    put("h5", "f32", seed(0, 1))
    put("h5", "f16", seed(5, 1))
    put("h5", "ascii", seed(0, 0))


if __name__ == "__main__":
    safetensors_seeds()
    nifti_seeds()
    csv_seeds()
    tokenizer_seeds()
    vocab_seeds()
    tiktoken_seeds()
    jsonl_seeds()
    rankings_seeds()
    h5_seeds()
    for d in sorted(os.listdir(HERE)):
        print(d, len(os.listdir(os.path.join(HERE, d))))
