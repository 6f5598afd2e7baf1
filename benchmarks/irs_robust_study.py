"""Robust Kronecker SBL on IRS-MIMO channel estimation: per-trial study, tables, diagnosis.

Trials are ``make_irs_mimo_channel(snr_db=S, random_state=trial, design_random_state=D)``
(the example's system: 6 MS / 16 BS antennas, 256 IRS elements, 18-point grids, 3 pilots,
6 IRS configurations; ``M = 288``, ``N = 5832``; known noise variance). Each method is fitted
on each trial and one JSON record per (method, design, trial, SNR) is appended to
``benchmarks/results/irs_robust/records.jsonl`` (git-ignored); records already there are
reused, so an interrupted run continues where it stopped.

Methods (the example's settings, which are the authors' IRS settings):

* ``pc``: PC-KroSBL, ``method="am", block=[0.8, None, 0.8]``; ``am``, ``svd``: AM- and
  SVD-KroSBL; ``oracle``: least squares on the true support (its record also holds the
  trial's features: path powers, the weakest IRS configuration, the cost of the maximum
  evidence prior on the true support);
* ``robust-pc``, ``robust-svd``, ``robust-am``: the same with ``robust=True``;
* approaches measured on the way (designs 0-3): ``atom-moves`` (the evidence moves from
  the single best Kronecker atom, without EM; ``atom-moves-g1`` with threshold 1),
  ``pc-lowprune`` (PC-KroSBL with pruning thresholds divided by 100, a pruning rule that
  keeps weak paths longer),
  ``pc-restarts`` (PC-KroSBL with the three pruning schedules x1, x0.1, x0.01 of the
  thresholds, the result with the best evidence kept), ``robust-<start>-g<t>`` (the move
  threshold ``t``, e.g. 0.1, 1, 3, instead of the default BIC price ``ln(2 M) / 2``, 3.18
  here); ``select`` (no fit: of ``pc``, ``am``, ``svd`` the one with the best evidence) is
  derived in the tables.

Every record has the channel NMSE (mean over the 6 configurations of
``||H_hat_p - H_p||^2 / ||H_p||^2``), the fit time, the EM iterations, the support per factor
and the SBL cost ``log|C| + y^H C^{-1} y`` of the final prior (known noise variance).

Usage::

    python benchmarks/irs_robust_study.py run --designs 0-3 --trials 0-9 --snrs 20
    python benchmarks/irs_robust_study.py table --designs 0-3 --trials 0-9 --snrs 20
    python benchmarks/irs_robust_study.py classify --designs 0-3 --trials 0-9 --snr 20
    python benchmarks/irs_robust_study.py timing --designs 0-3 --trials 0-9 --repeats 3

``--methods a,b`` restricts ``run`` / ``table``; ``--figure FILE`` (``table``) saves the
mean / median / fraction-worse-than--15-dB bars. ``timing`` re-times ``pc`` and
``robust-pc`` / ``robust-svd`` alternately on the same trials (ratios measured in one run,
with the load average) and prints the ratio of mean fit times per repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sparsestat._kernels.kron import kron_estep, pattern_coupling_matrix
from sparsestat._kernels.kron_evidence import kron_eigen
from sparsestat._solvers.robust_sbl import best_atom_start, evidence_moves, robust_sbl_em
from sparsestat.bayes import KroneckerSBL
from sparsestat.datasets import irs_channels_from_coef, make_irs_mimo_channel
from sparsestat.linear_model import oracle_least_squares
from sparsestat.metrics import channel_nmse

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "irs_robust"
RECORDS = RESULTS / "records.jsonl"
OUTAGE_DB = -15.0
BASE = ["pc", "am", "svd", "oracle"]
ROBUST = ["robust-pc", "robust-svd", "robust-am"]
APPROACHES = [
    "atom-moves", "atom-moves-g1", "pc-lowprune", "pc-restarts", "robust-pc-g0.1", "robust-pc-g1",
    "robust-pc-g3", "robust-svd-g1", "robust-am-g1",
]  # fmt: skip
LABELS = {
    "pc": "PC-KroSBL (beta 0.8)",
    "am": "AM-KroSBL",
    "svd": "SVD-KroSBL",
    "oracle": "oracle LS (true support)",
    "robust-pc": "robust KroSBL (PC start)",
    "robust-svd": "robust KroSBL (SVD start)",
    "robust-am": "robust KroSBL (AM start)",
    "select": "best evidence of PC / AM / SVD",
    "atom-moves": "evidence moves from the best atom (no EM)",
    "atom-moves-g1": "evidence moves from the best atom, threshold 1",
    "pc-lowprune": "PC-KroSBL, thresholds / 100",
    "pc-restarts": "PC-KroSBL, 3 schedules, best evidence",
    "robust-pc-g0.1": "robust (PC start), threshold 0.1",
    "robust-pc-g1": "robust (PC start), threshold 1",
    "robust-pc-g3": "robust (PC start), threshold 3",
    "robust-svd-g1": "robust (SVD start), threshold 1",
    "robust-am-g1": "robust (AM start), threshold 1",
}
PC_PRUNE = [1e-2, 1e-1, 1e-2]


def _common(noise_var):
    return {
        "noise_variance": noise_var,
        "inner_tol": 1e-4,
        "inner_tol_relative": True,
        "prune_abs": 1e-4,
    }


def estimator(name, noise_var):
    """The KroneckerSBL of a method name (the example's settings)."""
    robust = name.startswith("robust-")
    base = name.removeprefix("robust-")
    common = _common(noise_var)
    if base in ("pc", "pc-lowprune"):
        prune = PC_PRUNE if base == "pc" else [r / 100 for r in PC_PRUNE]
        return KroneckerSBL(
            method="am", block=[0.8, None, 0.8], prune_threshold=prune, inner_max_iter=9,
            robust=robust, **common,
        )  # fmt: skip
    if base == "am":
        return KroneckerSBL(
            method="am", prune_threshold=[1e-2, 1e-1, 1e-3], inner_max_iter=1000,
            robust=robust, **common,
        )  # fmt: skip
    if base == "svd":
        return KroneckerSBL(method="svd", prune_threshold=0.0, robust=robust, **common)
    raise ValueError(name)


def _cost(factors, y, gammas, noise_var):
    return float(kron_eigen(factors, [np.asarray(g) for g in gammas], noise_var, y[:, None]).cost)


def _em_settings(base, noise_var):
    """``sbl_em`` keyword arguments of the estimator ``base`` (solver-level variants)."""
    common = {"noise_var": noise_var, "inner_tol": 1e-4, "inner_relative": True, "prune_abs": 1e-4}
    if base == "pc":
        c = pattern_coupling_matrix(18, 0.8)
        return {"method": "am", "coupling": [c, None, c], "prune_rel": PC_PRUNE,
                "inner_max_iter": 9, **common}  # fmt: skip
    if base == "am":
        return {"method": "am", "prune_rel": [1e-2, 1e-1, 1e-3], "inner_max_iter": 1000, **common}
    return {"method": "svd", "prune_rel": 0.0, **common}


def fit(name, factors, y, info):
    """Fit one method; returns (coef, extra record fields)."""
    nv = info.noise_variance
    if name == "oracle":
        coef = oracle_least_squares(factors, y, info.support)
        true = [info.support_factors[i] for i in range(3)]
        est = KroneckerSBL(method="am", prune_threshold=0.0, noise_variance=nv, max_iter=500)
        est.fit([f[:, k] for f, k in zip(factors, true)], y)
        gam = [np.zeros(18) for _ in range(3)]
        for g, k, gk in zip(gam, true, est.gamma_factors_):
            g[k] = gk
        powers = [np.abs(info.gains_ms_irs) ** 2, np.abs(info.gains_irs_bs) ** 2]
        cfg = np.array([np.linalg.norm(h) ** 2 for h in info.H_true])
        return coef, {
            "cost": _cost(factors, y, gam, nv),
            "irs_path_db": (10 * np.log10(powers[0] / powers[0].max())).round(1).tolist(),
            "bs_path_db": (10 * np.log10(powers[1] / powers[1].max())).round(1).tolist(),
            "weakest_config": float(cfg.min() / cfg.mean()),
            "true_support": [np.asarray(k).tolist() for k in true],
        }
    if name.startswith("atom-moves"):  # atom-moves or atom-moves-g<threshold>
        Y = y[:, None]
        gain = float(name.removeprefix("atom-moves-g")) if "-g" in name else None
        start = best_atom_start(factors, Y, nv)
        r = evidence_moves(factors, Y, start, nv, max_moves=640, gain_tol=gain)
        keep = [np.flatnonzero(g > 0) for g in r.gammas]
        post = kron_estep(
            [f[:, k] for f, k in zip(factors, keep)], [g[k] for g, k in zip(r.gammas, keep)],
            nv, Y,
        )  # fmt: skip
        coef = np.zeros((18, 18, 18), dtype=complex)
        coef[np.ix_(*keep)] = post.mean[:, 0].reshape([len(k) for k in keep])
        return coef.ravel(), {
            "cost": r.cost, "n_iter": 0, "converged": r.converged, "n_moves": r.n_moves,
            "support": [k.tolist() for k in keep],
        }  # fmt: skip
    if name == "pc-restarts":
        best = None
        for scale in (1.0, 0.1, 0.01):
            est = estimator("pc", nv)
            est.set_params(prune_threshold=[r * scale for r in PC_PRUNE])
            est.fit(factors, y)
            c = _cost(factors, y, est.gamma_factors_, nv)
            if best is None or c < best[0]:
                best = (c, est)
        c, est = best
        return est.coef_, _est_fields(est, c)
    if name.startswith("robust-") and "-g" in name:  # robust-<base>-g<threshold>
        base, _, gain = name.removeprefix("robust-").partition("-g")
        res = robust_sbl_em(factors, y[:, None], gain_tol=float(gain), **_em_settings(base, nv))
        return res.coef[:, 0], {
            "cost": _cost(factors, y, res.gammas, nv), "n_iter": res.n_iter,
            "converged": res.converged,
            "support": [np.asarray(k).tolist() for k in res.support_factors],
        }  # fmt: skip
    est = estimator(name, nv).fit(factors, y)
    return est.coef_, _est_fields(est, _cost(factors, y, est.gamma_factors_, nv))


def _est_fields(est, cost):
    return {
        "cost": cost,
        "n_iter": int(est.n_iter_),
        "converged": bool(est.converged_),
        "support": [np.asarray(k).tolist() for k in est.support_factors_],
    }


def _range(text):
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def load():
    recs = {}
    if RECORDS.exists():
        for line in RECORDS.read_text().splitlines():
            r = json.loads(line)
            recs[(r["method"], r["design"], r["trial"], r["snr"])] = r
    return recs


def run(args):
    RESULTS.mkdir(parents=True, exist_ok=True)
    recs = load()
    methods = args.methods.split(",") if args.methods else BASE + ROBUST
    n_new = 0
    with RECORDS.open("a") as fh:
        for d in _range(args.designs):
            for t in _range(args.trials):
                for snr in [float(s) for s in args.snrs.split(",")]:
                    todo = [m for m in methods if (m, d, t, snr) not in recs]
                    if not todo:
                        continue
                    factors, y, _, info = make_irs_mimo_channel(
                        snr_db=snr, random_state=t, design_random_state=d, return_info=True
                    )
                    for m in todo:
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", ConvergenceWarning)
                            t0 = time.perf_counter()
                            coef, extra = fit(m, factors, y, info)
                            dt = time.perf_counter() - t0
                        nmse = channel_nmse(info.H_true, irs_channels_from_coef(coef, info))
                        rec = {"method": m, "design": d, "trial": t, "snr": snr,
                               "nmse": float(nmse), "time": dt, **extra}  # fmt: skip
                        fh.write(json.dumps(rec) + "\n")
                        fh.flush()
                        recs[(m, d, t, snr)] = rec
                        n_new += 1
                    print(f"design {d} trial {t} {snr:g} dB: " + ", ".join(
                        f"{m} {10 * np.log10(recs[(m, d, t, snr)]['nmse']):.1f}" for m in todo
                    ), flush=True)  # fmt: skip
    print(f"{n_new} new records in {RECORDS}")


def _select(recs, d, t, snr):
    """Of PC / AM / SVD the fit with the lowest SBL cost (highest evidence)."""
    cands = [recs[(m, d, t, snr)] for m in ("pc", "am", "svd")]
    return min(cands, key=lambda r: r["cost"])


def _values(recs, m, designs, trials, snr, field="nmse"):
    out = []
    for d in designs:
        for t in trials:
            if m == "select":
                out.append(_select(recs, d, t, snr)[field])
            else:
                out.append(recs[(m, d, t, snr)][field])
    return np.asarray(out, dtype=float)


def _available(recs, m, designs, trials, snr):
    need = ("pc", "am", "svd") if m == "select" else (m,)
    return all((k, d, t, snr) in recs for k in need for d in designs for t in trials)


def db(v):
    return 10 * np.log10(v)


def table(args):
    recs = load()
    designs, trials = _range(args.designs), _range(args.trials)
    methods = args.methods.split(",") if args.methods else BASE + ROBUST + ["select"]
    snrs = [float(s) for s in args.snrs.split(",")]
    print(f"designs {args.designs}, trials {args.trials} ({len(designs) * len(trials)} trials)")
    for snr in snrs:
        print(f"\n{snr:g} dB: mean / median / worst NMSE (dB), fraction worse than "
              f"{OUTAGE_DB:g} dB, mean time per fit (s)\n")  # fmt: skip
        print("| method | mean | median | worst | worse than -15 dB | time (s) |")
        print("|---|---|---|---|---|---|")
        for m in methods:
            if not _available(recs, m, designs, trials, snr):
                continue
            v = _values(recs, m, designs, trials, snr)
            # the oracle's record times its least squares and the true-support evidence fit
            tm = (
                _values(recs, m, designs, trials, snr, "time")
                if m not in ("select", "oracle")
                else None
            )
            frac = np.mean(db(v) > OUTAGE_DB)
            tcell = f"{tm.mean():.3f}" if tm is not None else "--"
            print(f"| {LABELS[m]} | {db(v.mean()):.1f} | {db(np.median(v)):.1f} | "
                  f"{db(v.max()):.1f} | {100 * frac:.1f} % | {tcell} |")  # fmt: skip
        if all(_available(recs, m, designs, trials, snr) for m in ("oracle", "robust-pc")):
            orc = db(_values(recs, "oracle", designs, trials, snr))
            for m in ROBUST:
                if not _available(recs, m, designs, trials, snr):
                    continue
                v = db(_values(recs, m, designs, trials, snr))
                bad = [(d, t) for (d, t), a, o in zip(
                    [(d, t) for d in designs for t in trials], v, orc
                ) if a > OUTAGE_DB and o <= OUTAGE_DB]  # fmt: skip
                print(f"{m}: trials worse than {OUTAGE_DB:g} dB where the oracle is not: {bad}")
    if args.figure:
        _figure(recs, designs, trials, snrs, methods, args.figure)


def _figure(recs, designs, trials, snrs, methods, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in methods if all(_available(recs, m, designs, trials, s) for s in snrs)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for m in methods:
        mean = [db(_values(recs, m, designs, trials, s).mean()) for s in snrs]
        med = [db(np.median(_values(recs, m, designs, trials, s))) for s in snrs]
        frac = [np.mean(db(_values(recs, m, designs, trials, s)) > OUTAGE_DB) for s in snrs]
        (line,) = axes[0].plot(snrs, mean, "o-", label=LABELS[m])
        axes[0].plot(snrs, med, "--", color=line.get_color())
        axes[1].plot(snrs, frac, "o-", color=line.get_color(), label=LABELS[m])
    axes[0].set_xlabel("SNR (dB)")
    axes[0].set_ylabel("channel NMSE (dB)")
    axes[0].set_title("mean (solid) and median (dashed)")
    axes[0].grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("SNR (dB)")
    axes[1].set_ylabel(f"fraction of trials worse than {OUTAGE_DB:g} dB")
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure saved to {path}")


def _scatter(recs, designs, trials, snr, rows, path):
    """Per trial: each authors' method (x) against its robust fit (y), failures marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    marks = {"pc": "o", "am": "s", "svd": "^"}
    for m, mk in marks.items():
        x = db(_values(recs, m, designs, trials, snr))
        y = db(_values(recs, f"robust-{m}", designs, trials, snr))
        ax.scatter(x, y, marker=mk, facecolors="none", edgecolors="grey", label=LABELS[m])
    colours = {"pruned path": "C3", "stall / spurious entries": "C0"}
    for cls, m, _d, _t, r, _orc, _mis, _ext, rob in rows:
        if rob is not None:
            ax.scatter(db(r["nmse"]), db(rob["nmse"]), marker=marks[m],
                       color=colours.get(cls, "k"), s=50)  # fmt: skip
    for cls, c in colours.items():
        ax.scatter([], [], color=c, label=f"failed fit: {cls}")
    lim = [-40, 5]
    ax.plot(lim, lim, "k:", lw=0.8)
    ax.axvline(OUTAGE_DB, color="grey", lw=0.6)
    ax.axhline(OUTAGE_DB, color="grey", lw=0.6)
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("authors' method, channel NMSE (dB)")
    ax.set_ylabel("same method with robust=True (dB)")
    ax.set_title(f"{snr:g} dB, one point per trial and method")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure saved to {path}")


def classify(args):
    """Failing trials (NMSE worse than -15 dB) of PC / AM / SVD, by mechanism."""
    recs = load()
    snr = float(args.snr)
    rows = []
    for d in _range(args.designs):
        for t in _range(args.trials):
            orc = recs[("oracle", d, t, snr)]
            true = orc["true_support"]
            for m in ("pc", "am", "svd"):
                r = recs[(m, d, t, snr)]
                if db(r["nmse"]) <= OUTAGE_DB:
                    continue
                missing = [sorted(set(a) - set(b)) for a, b in zip(true, r["support"])]
                extra = [len(set(b) - set(a)) for a, b in zip(true, r["support"])]
                if db(orc["nmse"]) > OUTAGE_DB:
                    cls = "unidentifiable (the oracle fails too)"
                elif any(missing):
                    cls = "pruned path"
                elif any(extra):
                    cls = "stall / spurious entries"
                else:
                    cls = "other"
                rob = recs.get((f"robust-{m}", d, t, snr))
                rows.append((cls, m, d, t, r, orc, missing, extra, rob))
    print("| class | method | design | trial | NMSE | oracle | same method, robust | "
          "missing entries | kept per factor | EM its. | cost - true-support cost | "
          "weakest IRS / BS path | weakest config. |")  # fmt: skip
    print("|" + "---|" * 13)
    for cls, m, d, t, r, orc, missing, _extra, rob in sorted(rows, key=lambda x: x[:4]):
        kept = "/".join(str(len(s)) for s in r["support"])
        rcell = f"{db(rob['nmse']):.1f}" if rob else "--"
        print(f"| {cls} | {m} | {d} | {t} | {db(r['nmse']):.1f} | {db(orc['nmse']):.1f} | "
              f"{rcell} | {missing} | {kept} | {r['n_iter']}{'' if r['converged'] else '*'} | "
              f"{r['cost'] - orc['cost']:.1f} | {min(orc['irs_path_db']):.1f} / "
              f"{min(orc['bs_path_db']):.1f} dB | {orc['weakest_config']:.3f} |")  # fmt: skip
    print("\n* not converged in 150 EM iterations")
    if args.figure:
        _scatter(recs, _range(args.designs), _range(args.trials), snr, rows, args.figure)
    print("\nper class: mean NMSE of the failed fits -> the same method with robust=True (dB)")
    for cls in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == cls and r[8] is not None]
        before = np.mean([r[4]["nmse"] for r in sel])
        after = np.mean([r[8]["nmse"] for r in sel])
        print(f"{cls}: {len(sel)} fits, {db(before):.1f} -> {db(after):.1f} dB")


def timing(args):
    """Alternate PC-KroSBL and the robust fits on the same trials; ratios per repeat."""
    trials = [(d, t) for d in _range(args.designs) for t in _range(args.trials)]
    data = []
    for d, t in trials:
        factors, y, _, info = make_irs_mimo_channel(
            snr_db=float(args.snr), random_state=t, design_random_state=d, return_info=True
        )
        data.append((factors, y, info.noise_variance))
    names = ["pc", "robust-pc", "robust-svd", "svd"]
    print(f"load average before: {os.getloadavg()}")
    for rep in range(args.repeats):
        tot = dict.fromkeys(names, 0.0)
        for factors, y, nv in data:
            for m in names:
                est = estimator(m, nv)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    t0 = time.perf_counter()
                    est.fit(factors, y)
                    tot[m] += time.perf_counter() - t0
        n = len(data)
        times = ", ".join(f"{m} {tot[m] / n:.3f} s" for m in names)
        print(
            f"repeat {rep}: mean time per fit {times}; ratio robust-pc / pc "
            f"{tot['robust-pc'] / tot['pc']:.2f}, robust-svd / pc "
            f"{tot['robust-svd'] / tot['pc']:.2f}; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("run", "table", "classify", "timing"):
        p = sub.add_parser(name)
        p.add_argument("--designs", default="0-3")
        p.add_argument("--trials", default="0-9")
        p.add_argument("--snrs", default="20")
        p.add_argument("--snr", default="20")
        p.add_argument("--methods", default=None)
        p.add_argument("--figure", default=None)
        p.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    {"run": run, "table": table, "classify": classify, "timing": timing}[args.cmd](args)


if __name__ == "__main__":
    main()
