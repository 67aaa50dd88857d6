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


def config_seeds():
    # The model configs of lib/hse/config/ (tests/fuzz/fuzz_config.cpp runs every config's from_json
    # on each input): hse's own files, then the published formats each parser reads.
    share = os.path.join(HERE, "..", "..", "..", "share", "hse", "configs")
    for name in sorted(os.listdir(share)):
        if name.endswith(".json"):
            with open(os.path.join(share, name), encoding="utf-8") as f:
                put("config", "share_" + name[:-5].replace("-", "_"), f.read())
    put("config", "bert_base", json.dumps({
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
        "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522}, indent=2))
    put("config", "roberta", json.dumps({
        "architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
        "eos_token_id": 2, "hidden_act": "gelu_new", "hidden_dropout_prob": 0.1, "hidden_size": 64,
        "intermediate_size": 128, "layer_norm_eps": 1e-05, "max_position_embeddings": 514, "model_type": "roberta",
        "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 1, "type_vocab_size": 1,
        "vocab_size": 50265}))
    longrope = {"type": "longrope", "short_factor": [1.0 + i / 100 for i in range(12)],
                "long_factor": [1.5 + i / 10 for i in range(12)], "original_max_position_embeddings": 1024}
    phi3 = {"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "vocab_size": 300, "hidden_size": 128,
            "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "partial_rotary_factor": 0.75, "rope_theta": 10000.0, "rms_norm_eps": 1e-05,
            "max_position_embeddings": 4096, "tie_word_embeddings": True, "hidden_act": "silu", "bos_token_id": 0,
            "eos_token_id": [0, 2], "pad_token_id": None, "sliding_window": 262144, "attention_bias": False,
            "attention_dropout": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "rope_scaling": longrope}
    put("config", "phi3_longrope", json.dumps(phi3, indent=2))
    phi3_v5 = {k: v for k, v in phi3.items() if k not in ("rope_scaling", "rope_theta", "partial_rotary_factor")}
    phi3_v5["rope_parameters"] = {"rope_type": "longrope", "rope_theta": 250000.0, "partial_rotary_factor": 0.75,
                                  "short_factor": longrope["short_factor"], "long_factor": longrope["long_factor"],
                                  "factor": 4.0, "attention_factor": 1.19, "original_max_position_embeddings": 1024}
    put("config", "phi3_rope_parameters", json.dumps(phi3_v5))
    lora = {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "microsoft/Phi-4-mini-instruct",
            "bias": "none", "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
            "layer_replication": None, "layers_pattern": None, "layers_to_transform": None, "loftq_config": {},
            "lora_alpha": 32, "lora_dropout": 0.05, "megatron_config": None, "megatron_core": "megatron.core",
            "modules_to_save": None, "peft_type": "LORA", "r": 16, "rank_pattern": {}, "revision": None,
            "target_modules": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], "task_type": "CAUSAL_LM",
            "use_dora": False, "use_rslora": False}
    put("config", "adapter_config", json.dumps(lora, indent=2))
    put("config", "adapter_config_patterns", json.dumps(dict(
        lora, target_modules=r".*\.layers\.[01]\.(self_attn\.qkv_proj|mlp\.down_proj)", exclude_modules=["o_proj"],
        layers_to_transform=[0, 1], layers_pattern="layers", rank_pattern={"qkv_proj": 8}, alpha_pattern={"down_proj": 8.5},
        use_rslora=True, init_lora_weights="gaussian", my_field={"kept": [1, 2]})))
    packer = {"kind": "v2p", "in_dim": 768, "out_dim": 3072, "mlp_hidden": 3072, "grid": [8, 16, 16],
              "window": [1, 4, 4], "stride": [1, 4, 4], "dropout": 0.1, "layer_norm_eps": 1e-05}
    put("config", "packer_anatomy", json.dumps(dict(packer, kind="anatomy", halo=[0, 1, 1])))
    put("config", "packer_qformer", json.dumps(dict(packer, kind="qformer", num_queries=32, qformer_layers=2,
                                                    qformer_heads=12, qformer_intermediate=3072, qformer_cross_every=2)))
    put("config", "packer_sequence_pool", json.dumps({"type": "sequence_pool", "grid": 4, "window": [1, 2, 2],
                                                       "stride": [1, 1, 2], "in_dim": 64, "out_dim": 128}))
    vlm = {"format": "hse-vlm", "version": 1, "packer": packer, "dual_encoder": True,
           "packer2": dict(packer, kind="hsenet_qformer", num_queries=32, qformer_layers=2, qformer_heads=8,
                           qformer_intermediate=2048, query_self_attention="batch"),
           "llm": "models/Phi-4-mini-instruct", "vocab_size": 200068, "num_new_tokens": 4, "image_tokens": 160,
           "tokens": {"bos": 199999, "eos": 199999, "pad": 199999, "im_patch": -1}, "lora": lora,
           "inputs": {"clip": "out/clip", "volumes": {"size": [32, 256, 256]}, "slices": {"count": 32}},
           "tokenizer_mode": "slow", "compat": "hsenet"}
    put("config", "hse_vlm", json.dumps(vlm, indent=2))
    put("config", "hse_vlm_single", json.dumps({"format": "hse-vlm", "version": 1, "mm_projector": packer,
                                                 "dual_encoder": False, "tower": "2e3", "lora": None}))
    vit3d = {"in_channels": 1, "img_size": [32, 256, 256], "patch_size": [4, 16, 16], "hidden_size": 768,
             "mlp_dim": 3072, "num_layers": 12, "num_heads": 12, "dropout_rate": 0.0, "qkv_bias": False,
             "layer_norm_eps": 1e-05, "pos_embed": "perceptron", "spatial_dims": 3, "slice_dim": 768,
             "score_dropout": 0.1}
    bert = {"model_type": "bert", "vocab_size": 30522, "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 128, "hidden_act": "gelu"}
    put("config", "clip_stage2", json.dumps(dict(vit3d, model_type="m3d_clip_stage2", vocab_size=30522, max_text_len=128,
                                                 hse={"vision": vit3d, "text": bert, "logit_scale_form": "exp",
                                                      "logit_scale_init": 2.659260036932778})))
    put("config", "clip_published", json.dumps({"model_type": "m3d_clip_stage1", "in_channels": 1,
                                                 "img_size": [32, 256, 256], "patch_size": [4, 16, 16],
                                                 "hidden_size": 768, "mlp_dim": 3072, "num_layers": 12,
                                                 "num_heads": 12, "pos_embed": "perceptron", "dropout_rate": 0.0,
                                                 "spatial_dims": 3, "vocab_size": 30522, "max_text_len": 128,
                                                 "language_model_name_or_path": "bert-base-uncased"}))
    put("config", "open_clip", json.dumps({"model_cfg": {"embed_dim": 512, "vision_cfg": {
        "timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False, "timm_pool": "",
        "timm_proj": "linear", "image_size": 224}, "text_cfg": {"hf_model_name": "microsoft/BiomedNLP-PubMedBERT",
        "hf_tokenizer_name": "microsoft/BiomedNLP-PubMedBERT", "proj": "mlp", "pooler_type": "cls_last_hidden_state",
        "context_length": 256}}, "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073]}}))
    put("config", "vision_sub", json.dumps({"vision": {"img_size": 64, "patch_size": [4, 16, 16], "hidden": 64,
                                                       "heads": 4, "layers": 1, "intermediate_size": 128}}))
    put("config", "not_object", "[1, 2.5, \"x\", null, true, {}]")
    put("config", "null", "null")


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
    config_seeds()
    for d in sorted(os.listdir(HERE)):
        print(d, len(os.listdir(os.path.join(HERE, d))))
