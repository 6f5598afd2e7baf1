"""Before / after timings of the families the layered redesign touched, side by side in one run.

Five benchmark scripts (SAE, sparse training, LDP, Kronecker SBL, mixture of experts) are run
in their quick modes, alternately in an old checkout ("before") and in this one ("after"):
B, A, B, A, B, A (``--runs`` pairs, default 3). Each checkout runs *its own copy* of the script
(the two copies follow their own checkout's API) against *its own* package, in a fresh process
with ``PYTHONPATH`` set to that checkout and one BLAS / OpenMP thread. The driver checks, before
the first run, that each ``PYTHONPATH`` imports the package from the intended checkout.

From each run's markdown tables it reads our time per row and the ratio to the script's peer
(peer time / our time, so above 1 means we are faster) and prints, per benchmark, one markdown
table: our times in every before and after run, the median of the after / before ratios of
the adjacent pairs with their range, the ratio of the fastest after to the fastest before
run (the least disturbed by other jobs on a shared machine), the peer ratios' ranges before
and after, and a verdict: "slower" when every pair's after / before ratio exceeds 1.1,
"faster" when every one is below 1 / 1.1, else "within noise" (adjacent runs share the
load of the moment, which drifts over a run of many minutes). The load averages
(``/proc/loadavg``) are recorded before every run.

Rows and their times (what each script prints; CPU or wall seconds as the script measures):

- ``bench_sae.py`` (``SPARSESTAT_QUICK=1``): training CPU microseconds per sample of
  ``SparseAutoencoder`` per problem (from its samples/CPU-s, which has more digits than its
  CPU seconds); peers SAELens and a plain torch loop (their "our speed-up (CPU)").
- ``bench_sparse_training.py --quick``: seconds per epoch of ``SparseMLPClassifier`` per method;
  peer ``torch.ao`` N:M prune + fine-tune for the SR-STE rows.
- ``bench_ldp.py`` (``SPARSESTAT_QUICK=1``): median seconds of each mode of the main table;
  peer OpenDP per-user (its "vs OpenDP per-user" column), whose own time is a row too. The
  NumPy-draws row uses no sparsestat code: a control for the machine's noise.
- ``bench_kronecker_sbl.py --quick``: seconds of SVD-KroSBL, AM-KroSBL and dense classical SBL
  per size (peer scikit-learn's ``ARDRegression``) and of the IRS-MIMO fits (against the
  authors' published MATLAB mean, a constant). Tables that only one checkout prints are ignored.
- ``bench_moe.py --quick``: EM seconds per iteration and to convergence of
  ``GaussianMoERegressor``; peer torch-autograd L-BFGS to the same log-likelihood.

Usage::

    python benchmarks/bench_redesign.py --before /path/to/old/checkout

Options: ``--after PATH`` (default: the checkout holding this script), ``--runs N`` (pairs,
default 3), ``--only sae,moe`` (a subset of ``sae``, ``sparse_training``, ``ldp``,
``kronecker_sbl``, ``moe``), ``--raw DIR`` (keep every run's stdout there),
``--python EXE`` (default: this interpreter). Without ``--before`` (as ``make bench`` runs
it) the script only says so. About 15 minutes with the defaults on a loaded 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: row label -> (our time in seconds, {peer name: peer time / our time})
Parsed = dict[str, tuple[float, dict[str, float]]]
Table = tuple[list[str], list[dict[str, str]]]

_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")
_NUMBER = re.compile(r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*x?\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_tables(text: str) -> list[Table]:
    """Every markdown table in ``text``: (headers, rows as header -> cell dicts)."""
    lines = text.splitlines()
    tables: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and _SEPARATOR.match(lines[i + 1].strip()):
            headers = _cells(lines[i])
            rows = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(dict(zip(headers, _cells(lines[j]), strict=False)))
                j += 1
            tables.append((headers, rows))
            i = j
        else:
            i += 1
    return tables


def number(cell: str | None) -> float:
    """A cell as a float ("1.8x" -> 1.8); NaN for text, bounds (">60") and empty cells."""
    m = _NUMBER.match(cell or "")
    return float(m.group(1)) if m else math.nan


def _table(text: str, first_header: str) -> list[dict[str, str]]:
    for headers, rows in markdown_tables(text):
        if headers and headers[0] == first_header:
            return rows
    raise ValueError(f"no table whose first column is {first_header!r} in the output")


def parse_sae(text: str) -> Parsed:
    out: Parsed = {}
    for row in _table(text, "problem"):
        name, lib = row["problem"], row["library"]
        if lib == "sparsestat":  # the rate has more digits than the rounded CPU seconds
            out[name] = (1e6 / number(row["samples/CPU-s"]), out.get(name, (0.0, {}))[1])
        elif not math.isnan(number(row.get("our speed-up (CPU)"))):
            out.setdefault(name, (math.nan, {}))[1][lib] = number(row["our speed-up (CPU)"])
    return out


def parse_sparse_training(text: str) -> Parsed:
    out: Parsed = {}
    peers = {}
    for row in _table(text, "method"):
        method, t = row["method"], number(row["s / epoch"])
        if method.startswith("torch.ao"):
            peers[method.split()[1]] = t  # "torch.ao 2:4 prune+finetune" -> "2:4"
        else:
            out[f"{method} {row['target sparsity']}"] = (t, {})
    for label, (t, ratios) in out.items():
        pattern = label.split()[1] if label.startswith("SR-STE") else None
        if pattern in peers:
            ratios["torch.ao"] = peers[pattern] / t
    return out


def parse_ldp(text: str) -> Parsed:
    out: Parsed = {}
    for row in _table(text, "d"):
        label = f"d={row['d']} {row['mode'].strip()}"
        if "(peer)" in row["mode"]:  # its time is listed, as a row of its own
            out[label] = (number(row["time (s)"]), {})
            continue
        out[label] = (number(row["time (s)"]), {"OpenDP": number(row["vs OpenDP per-user"])})
    return out


def parse_kronecker_sbl(text: str) -> Parsed:
    out: Parsed = {}
    for row in _table(text, "N (M)"):
        size = row["N (M)"].split(" (")[0]
        ard = number(row["sklearn ARD (s)"])
        for col in ("SVD-KroSBL (s)", "AM-KroSBL (s)", "classical SBL, dense (s)"):
            t = number(row[col])
            out[f"{size} {col.removesuffix(' (s)')}"] = (t, {"ARD": ard / t})
    for row in _table(text, "IRS method (20 dB)"):
        t = number(row["ours (s)"])
        matlab = number(row["authors' MATLAB mean (s)"])
        out[f"IRS {row['IRS method (20 dB)']}"] = (t, {"MATLAB (published)": matlab / t})
    return out


def parse_moe(text: str) -> Parsed:
    out: Parsed = {}
    for row in _table(text, "problem"):
        peer = {"torch": number(row["speed-up"])}
        out[f"{row['problem']} EM s/iter"] = (number(row["EM s/iter"]), {})
        out[f"{row['problem']} EM s to conv."] = (
            number(row["EM s to conv."]),
            peer,
        )
    return out


@dataclass
class Benchmark:
    key: str
    script: str
    unit: str
    args: list[str]
    env: dict[str, str]
    parse: Callable[[str], Parsed]
    runs: dict[str, list[Parsed]] = field(default_factory=lambda: {"before": [], "after": []})
    loads: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def command(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in self.env.items())
        return " ".join(filter(None, [env, "python", f"benchmarks/{self.script}", *self.args]))


BENCHMARKS = [
    Benchmark(
        "sae",
        "bench_sae.py",
        "training CPU microseconds per sample",
        [],
        {"SPARSESTAT_QUICK": "1"},
        parse_sae,
    ),
    Benchmark(
        "sparse_training",
        "bench_sparse_training.py",
        "wall seconds per epoch",
        ["--quick"],
        {},
        parse_sparse_training,
    ),
    Benchmark(
        "ldp",
        "bench_ldp.py",
        "median wall seconds of a call",
        [],
        {"SPARSESTAT_QUICK": "1"},
        parse_ldp,
    ),
    Benchmark(
        "kronecker_sbl",
        "bench_kronecker_sbl.py",
        "median wall seconds of a fit",
        ["--quick"],
        {},
        parse_kronecker_sbl,
    ),
    Benchmark("moe", "bench_moe.py", "CPU seconds", ["--quick"], {}, parse_moe),
]

#: a row is "slower" when every adjacent pair has after / before above this, "faster" when
#: every pair is below its inverse; otherwise "within noise"
NOISE = 1.1

#: one thread for every library, no display; the scripts' own switches are set per benchmark
BASE_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
}


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:  # not Linux
        return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _env(tree: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARSESTAT_", "SAE_BENCH"))}
    env.update(BASE_ENV, PYTHONPATH=str(tree), **extra)
    return env


def check_import(python: str, tree: Path) -> str:
    """The package file imported under ``PYTHONPATH=tree``; exits when it is not in ``tree``."""
    out = subprocess.run(
        [python, "-c", "import sparsestat; print(sparsestat.__file__)"],
        cwd=tree,
        env=_env(tree, {}),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(tree):
        sys.exit(f"PYTHONPATH={tree} imports sparsestat from {out}, not from that checkout")
    return out


def commit(tree: Path) -> str:
    res = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return res.stdout.strip()[:80] or "not a git checkout"


def run_once(bench: Benchmark, side: str, tree: Path, python: str, raw: Path | None) -> None:
    bench.loads.append(f"{side[0].upper()} {loadavg()}")
    t0 = time.perf_counter()
    res = subprocess.run(
        [python, str(tree / "benchmarks" / bench.script), *bench.args],
        cwd=tree,
        env=_env(tree, bench.env),
        capture_output=True,
        text=True,
    )
    bench.seconds.append(time.perf_counter() - t0)
    n = len(bench.runs[side]) + 1
    if raw is not None:
        (raw / f"{bench.key}.{side}.{n}.txt").write_text(
            res.stdout + "\n--- stderr ---\n" + res.stderr
        )
    if res.returncode != 0:
        tail = "\n".join(res.stderr.splitlines()[-15:])
        sys.exit(f"{bench.script} ({side}, run {n}) failed with code {res.returncode}:\n{tail}")
    bench.runs[side].append(bench.parse(res.stdout))
    print(f"  {bench.key} {side} {n}: {bench.seconds[-1]:.0f} s", file=sys.stderr, flush=True)


def _fmt(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.4g}"


def _range(values: list[float], suffix: str = "") -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return f"{lo:.3g}{suffix}" if lo == hi else f"{lo:.3g}-{hi:.3g}{suffix}"


def report(bench: Benchmark) -> str:
    before, after = bench.runs["before"], bench.runs["after"]
    labels = [k for k in after[0] if all(k in r for r in before + after)]
    skipped = sorted({k for r in before + after for k in r} - set(labels))
    n = len(before)
    headers = (
        ["row"]
        + [f"before {i + 1}" for i in range(n)]
        + [f"after {i + 1}" for i in range(n)]
        + ["after/before (median, pair range)", "min after / min before"]
        + ["peer ratio before", "peer ratio after", "verdict"]
    )
    rows = []
    for label in labels:
        tb = [r[label][0] for r in before]
        ta = [r[label][0] for r in after]
        pairs = [a / b for a, b in zip(ta, tb, strict=True) if b > 0 and not math.isnan(a / b)]
        ratio = f"{statistics.median(pairs):.2f} ({_range(pairs)})" if pairs else "n/a"
        peers_b, peers_a = [], []
        for peer in after[0][label][1]:
            peers_b.append(
                f"{peer} {_range([r[label][1].get(peer, math.nan) for r in before], 'x')}"
            )
            peers_a.append(
                f"{peer} {_range([r[label][1].get(peer, math.nan) for r in after], 'x')}"
            )
        if len(pairs) < n or not pairs:
            verdict = "n/a"
        elif min(pairs) > NOISE:
            verdict = "slower"
        elif max(pairs) < 1 / NOISE:
            verdict = "faster"
        else:
            verdict = "within noise"
        best = min(ta) / min(tb) if min(tb) > 0 else math.nan
        rows.append(
            [label, *map(_fmt, tb), *map(_fmt, ta), ratio, f"{best:.2f}"]
            + ["; ".join(peers_b) or "-", "; ".join(peers_a) or "-", verdict]
        )
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    head = (
        f"#### {bench.script}: `{bench.command}`\n\n"
        f"Times: {bench.unit}. "
        f"Runs in order (B = before, A = after), 1/5/15-minute load before each: "
        f"{'; '.join(bench.loads)}. Wall seconds per run: "
        f"{', '.join(f'{s:.0f}' for s in bench.seconds)}.\n"
    )
    if skipped:
        head += f"Rows not in every run (not compared): {', '.join(skipped)}.\n"
    return head + "\n" + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, default=None, help="the old checkout")
    parser.add_argument(
        "--after", type=Path, default=Path(__file__).resolve().parents[1], help="the new checkout"
    )
    parser.add_argument("--runs", type=int, default=3, help="before/after pairs (default 3)")
    parser.add_argument("--only", default="", help="comma-separated benchmark keys")
    parser.add_argument("--raw", type=Path, default=None, help="keep each run's stdout here")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the scripts")
    args = parser.parse_args(argv)
    if args.before is None:  # ``make bench`` runs every script without arguments
        print("bench_redesign.py: nothing to compare; give --before /path/to/old/checkout")
        return
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    keys = {b.key for b in BENCHMARKS}
    only = set(filter(None, args.only.split(","))) or keys
    if only - keys:
        parser.error(f"--only: unknown {sorted(only - keys)}; expected some of {sorted(keys)}")
    if args.raw is not None:
        args.raw.mkdir(parents=True, exist_ok=True)
    print("### Before and after: quick modes of the touched families' benchmarks\n")
    print(f"Date: {_dt.datetime.now().isoformat(timespec='seconds')}; python {args.python}")
    for side, tree in trees.items():
        print(f"- {side}: {tree} ({commit(tree)}), imports {check_import(args.python, tree)}")
    print(f"- load average (1/5/15 min) at start: {loadavg()}; {os.cpu_count()} logical CPUs")
    print(f"- threads: {', '.join(f'{k}={v}' for k, v in BASE_ENV.items() if 'THREADS' in k)}")
    print()
    for bench in BENCHMARKS:
        if bench.key not in only:
            continue
        for _ in range(args.runs):
            for side in ("before", "after"):
                run_once(bench, side, trees[side], args.python, args.raw)
        print(report(bench), flush=True)
    print(f"Load average (1/5/15 min) at end: {loadavg()}")


if __name__ == "__main__":
    main()
