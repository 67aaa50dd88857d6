"""Shared boilerplate of the parity tests (tests/parity/test_*.py).

A test puts its own folder on sys.path and imports this module before anything else:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import parity_common as pc  # noqa: E402

What it gives: the offline Hugging Face environment (offline_env), imports that skip with 77 when
a Python module is missing (needs_modules), the C++ driver's path and runs (driver, run_driver),
the pass/fail tally (Tally), a tiny randomized Phi-3 (tiny_phi3) and array comparisons (maxdiff,
rel). Exit codes follow CTest: 0 pass, 77 skip, 1 fail.
"""
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings


def offline_env():
    """No network, no progress bars, errors only from transformers; warnings ignored."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    warnings.filterwarnings("ignore")


def require_all():
    """CI=true or HSE_REQUIRE_ALL=1: nothing may skip (tests/require_all.sh)."""
    return os.environ.get("CI") == "true" or os.environ.get("HSE_REQUIRE_ALL") == "1"


def skip(reason):
    """Skips the whole test (exit 77), or fails it (exit 1) under CI / HSE_REQUIRE_ALL=1."""
    if require_all():
        print(f"FAIL: required under CI=true / HSE_REQUIRE_ALL=1 but missing: {reason}")
        sys.exit(1)
    print(f"skip: {reason}")
    sys.exit(77)


def optional_part(reason, check=None):
    """A part of a test that cannot run here: a note, or a failed check under CI / HSE_REQUIRE_ALL=1.
    Returns False so that callers can write `if not have: return pc.optional_part(...)`."""
    if require_all():
        msg = f"required under CI=true / HSE_REQUIRE_ALL=1 but missing: {reason}"
        if check is not None:
            check(False, msg)
        else:
            print(f"FAIL: {msg}")
            sys.exit(1)
    else:
        print(f"note: skipped: {reason}")
    return False


@contextlib.contextmanager
def needs_modules():
    """Wraps a test's imports: a missing Python module skips the test (fails it under CI)."""
    try:
        yield
    except ImportError as e:  # pragma: no cover
        skip(f"missing Python module: {e}")


def quiet_transformers(progress_bar=True):
    """transformers logs errors only (and shows no progress bars unless progress_bar is False)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if progress_bar:
        hf_logging.disable_progress_bar()


def driver(name):
    """Path of the C++ driver $HSE_BIN_DIR/name; exits 1 when it is not there."""
    path = os.path.join(os.environ.get("HSE_BIN_DIR", ""), name)
    if not os.access(path, os.X_OK):
        print(f"FAIL: {path} not found (set HSE_BIN_DIR to the build's bin/)")
        sys.exit(1)
    return path


def run_driver(path, case, env_extra=None, args=()):
    """Runs the doctest case "driver: <case>" of the binary path with env_extra added to the environment."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([path, f"-tc=driver: {case}", *args], env=env, capture_output=True, text=True)


class Tally:
    """check(ok, what): counts passes and failures, printing "FAIL: what" (the first max_printed ones)."""

    def __init__(self, max_printed=None):
        self.passed = 0
        self.failed = 0
        self.max_printed = max_printed
        self.t0 = time.time()

    def __call__(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            if self.max_printed is None or self.failed <= self.max_printed:
                print(f"FAIL: {what}")

    def elapsed(self):
        return time.time() - self.t0

    def finish(self, timed=True):
        """Prints "N passed, M failed" (with the seconds taken when timed); returns the exit code."""
        tail = f" ({self.elapsed():.1f} s)" if timed else ""
        print(f"{self.passed} passed, {self.failed} failed{tail}")
        return 1 if self.failed else 0


def run_in_tmp(prefix, *parts):
    """Calls each part(tmp) in order with one temporary directory (prefix...), removed afterwards."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        for part in parts:
            part(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


PHI3_TINY = dict(vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=128, partial_rotary_factor=0.75,
                 tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def tiny_phi3(seed, **config):
    """A Phi3ForCausalLM in eval mode from PHI3_TINY updated with config, seeded with seed, its norm
    weights 1 + 0.1 N(0, 1) and all other parameters N(0, 0.15)."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    torch.manual_seed(seed)
    model = Phi3ForCausalLM(Phi3Config(**dict(PHI3_TINY, **config))).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
    return model


def maxdiff(a, b):
    """max |a - b| in float64."""
    import numpy as np

    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def rel(a, b, floor=1e-30):
    """max |a - b| / max |b| in float64 (the denominator at least floor)."""
    import numpy as np

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), floor))


def patch_bert_score_empty():
    """bert-score 0.3.12 encodes an empty sentence with tokenizer.build_inputs_with_special_tokens([]),
    which transformers 5's tokenizers no longer have: give it [CLS] [SEP] (<s> </s>) as transformers 4 did."""
    import bert_score.utils as bsu

    original = bsu.sent_encode

    def sent_encode(tokenizer, sent):
        if sent.strip() == "" and not hasattr(tokenizer, "build_inputs_with_special_tokens"):
            return [tokenizer.cls_token_id, tokenizer.sep_token_id]
        return original(tokenizer, sent)

    bsu.sent_encode = sent_encode
