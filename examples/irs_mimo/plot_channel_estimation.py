"""
=========================================================
IRS-MIMO channel estimation with Kronecker-structured SBL
=========================================================

An intelligent reflecting surface (IRS) sits between a mobile station (MS) and a base station
(BS). Estimating the cascaded MS-IRS-BS channel from a few pilots is a sparse recovery
problem whose dictionary is a Kronecker product of three small matrices (IRS angle
differences, MS angles, BS angles), with ``N = 18^3 = 5832`` unknowns and only ``M = 288``
measurements (He & Joseph, IEEE TSP 2024).

We compare, over SNR, the channel NMSE (mean and median, in dB) and the run time of

* PC-KroSBL: ``KroneckerSBL(method="am", block=[0.8, None, 0.8])`` (pattern-coupled
  variances for the clustered IRS and BS angles),
* AM-KroSBL and SVD-KroSBL (``method="am"`` / ``"svd"``),
* robust KroSBL: PC-KroSBL with ``robust=True`` (after EM, evidence-guided moves bring back
  pruned weak paths and remove spurious entries),
* classical SBL on the explicit ``288 x 5832`` dictionary (:class:`SparseBayesianLearning`),
* Kronecker OMP and least squares on the true support (oracle).

The noise variance is known, as in the paper. As in the authors' simulation, each trial
draws one channel (angles, gains) and uses it at every SNR (seed = trial number). By default
each trial also draws its own pilots and IRS phases; ``--design-seed D`` instead draws them
once (seed ``D``) for all trials, as the authors' ``main.m`` does. NMSE is heavy-tailed (a
few failed trials, or a configuration whose cascaded channel nearly vanishes, dominate the
mean), so medians are shown too, and the fraction of trials worse than -15 dB (outages).
Run as a script, it saves its figure to ``demo_output/irs_channel_estimation.png``. Options:
``--demo`` (a few trials, prints a markdown table), ``--trials N`` (the paper uses 50),
``--skip-dense`` (leave out classical SBL, which dominates the run time), ``--save FILE``
(per-trial NMSE and run times as ``.npz``), ``--workers N`` (run the trials in parallel on a
dask ``LocalCluster`` of ``N`` worker processes; the same code runs on a real cluster by
connecting the ``Client`` to its scheduler address instead).
With ``SPARSESTAT_QUICK=1`` a reduced system runs in seconds.
"""

import argparse
import os
import pathlib
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sparsestat.bayes import KroneckerDesign, KroneckerSBL, SparseBayesianLearning
from sparsestat.datasets import irs_channels_from_coef, make_irs_mimo_channel
from sparsestat.linear_model import kronecker_omp, oracle_least_squares
from sparsestat.metrics import channel_nmse

parser = argparse.ArgumentParser(description="IRS-MIMO channel estimation with Kronecker SBL")
parser.add_argument("--demo", action="store_true", help="few trials, table + figure file")
parser.add_argument("--trials", type=int, default=None, help="trials per SNR")
parser.add_argument(
    "--skip-dense", action="store_true", help="leave out classical SBL (the slow dense method)"
)
parser.add_argument("--save", default=None, help="save per-trial results to this .npz file")
parser.add_argument(
    "--design-seed", type=int, default=None, help="one pilot / IRS-phase design for all trials"
)
parser.add_argument(
    "--workers", type=int, default=0, help="run the trials on a dask LocalCluster of N workers"
)
args, _ = parser.parse_known_args()

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
if QUICK:
    system = {"n_ms": 4, "n_bs": 8, "n_irs": 64, "grid_size": 10}
    snrs, n_trials = [8, 20], 1
elif args.demo:
    system, snrs, n_trials = {}, [4, 8, 12, 16, 20], 3
else:
    system, snrs, n_trials = {}, [4, 12, 20], 1
if args.trials is not None:
    n_trials = args.trials


def estimators(noise_var):
    """The methods of the comparison, with the authors' IRS settings."""
    common = {
        "noise_variance": noise_var,
        "inner_tol": 1e-4,
        "inner_tol_relative": True,
        "prune_abs": 1e-4,
    }
    return {
        "PC-KroSBL (beta 0.8)": KroneckerSBL(
            method="am",
            block=[0.8, None, 0.8],
            prune_threshold=[1e-2, 1e-1, 1e-2],
            inner_max_iter=9,
            **common,
        ),
        "AM-KroSBL": KroneckerSBL(
            method="am", prune_threshold=[1e-2, 1e-1, 1e-3], inner_max_iter=1000, **common
        ),
        "SVD-KroSBL": KroneckerSBL(method="svd", prune_threshold=0.0, **common),
        "robust KroSBL": KroneckerSBL(
            method="am",
            block=[0.8, None, 0.8],
            prune_threshold=[1e-2, 1e-1, 1e-2],
            inner_max_iter=9,
            robust=True,
            **common,
        ),
        "classical SBL": SparseBayesianLearning(
            noise_variance=noise_var, prune_threshold=1e-4, fit_intercept=False
        ),
    }


METHODS = [*estimators(1.0), "Kronecker OMP", "oracle LS"]
if args.skip_dense:
    METHODS.remove("classical SBL")
nmse = {m: np.zeros((len(snrs), n_trials)) for m in METHODS}
times = {m: np.zeros((len(snrs), n_trials)) for m in METHODS}


done = np.zeros(n_trials, dtype=bool)


def save():
    """Per-trial NMSE and run times so far (written after every trial of a long run)."""
    np.savez(
        args.save,
        snrs=np.asarray(snrs),
        methods=np.asarray(METHODS),
        trials=np.flatnonzero(done),
        nmse=np.stack([nmse[m][:, done] for m in METHODS]),
        times=np.stack([times[m][:, done] for m in METHODS]),
        design_seed=-1 if args.design_seed is None else args.design_seed,
    )


def run_trial(trial):
    """Channel NMSE and run time of every method at every SNR, for one trial."""
    trial_nmse = {m: np.zeros(len(snrs)) for m in METHODS}
    trial_times = {m: np.zeros(len(snrs)) for m in METHODS}
    for s, snr in enumerate(snrs):
        # one channel per trial, used at every SNR (the authors' loop order)
        factors, y, coef, info = make_irs_mimo_channel(
            snr_db=snr,
            random_state=trial,
            design_random_state=args.design_seed,
            return_info=True,
            **system,
        )
        dense = None
        for name in METHODS:
            t0 = time.perf_counter()
            if name == "Kronecker OMP":
                coef_hat = kronecker_omp(factors, y)
            elif name == "oracle LS":
                coef_hat = oracle_least_squares(factors, y, np.flatnonzero(coef))
            else:
                est = estimators(info.noise_variance)[name]
                if isinstance(est, SparseBayesianLearning):
                    if dense is None:
                        dense = KroneckerDesign(factors).todense()
                    X = dense
                else:
                    X = factors
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    coef_hat = est.fit(X, y).coef_
            trial_times[name][s] = time.perf_counter() - t0
            H_hat = irs_channels_from_coef(coef_hat, info)
            trial_nmse[name][s] = channel_nmse(info.H_true, H_hat)
    return trial, trial_nmse, trial_times


def record(result):
    trial, trial_nmse, trial_times = result
    for name in METHODS:
        nmse[name][:, trial] = trial_nmse[name]
        times[name][:, trial] = trial_times[name]
    done[trial] = True
    if args.save:
        save()


if args.workers > 0:
    # Each trial is one task. Worker processes are forked, so this script needs no
    # ``if __name__ == "__main__"`` guard; run times are per fit on one worker's core.
    import dask
    from dask.distributed import Client, LocalCluster, as_completed

    dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
    with (
        LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None) as lc,
        Client(lc) as client,
    ):
        for future in as_completed(client.map(run_trial, range(n_trials))):
            record(future.result())
else:
    for trial in range(n_trials):
        record(run_trial(trial))


def db(v):
    return 10 * np.log10(v)


# %%
# Results table: mean and median channel NMSE (dB) and the percentage of trials worse than
# -15 dB per SNR, mean run time per fit.
OUTAGE_DB = -15.0
header = ["method"] + [f"{snr} dB mean / median / % > -15" for snr in snrs] + ["time per fit (s)"]
lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
for name in METHODS:
    cells = [
        f"{db(nmse[name][s].mean()):.1f} / {db(np.median(nmse[name][s])):.1f} / "
        f"{100 * np.mean(db(nmse[name][s]) > OUTAGE_DB):.0f}"
        for s in range(len(snrs))
    ]
    lines.append(f"| {name} | " + " | ".join(cells) + f" | {times[name].mean():.2f} |")
table = "\n".join(lines)
design = "per trial" if args.design_seed is None else f"fixed (seed {args.design_seed})"
print(f"IRS-MIMO channel NMSE (dB), {n_trials} trial(s) per SNR, known noise variance,")
print(f"pilots and IRS phases: {design}\n")
print(table)

# %%
# Figure: mean (solid) and median (dashed) NMSE against SNR, the fraction of trials worse
# than -15 dB, and the run time.
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
for name in METHODS:
    (line,) = ax1.plot(snrs, db(nmse[name].mean(axis=1)), "o-", label=name)
    ax1.plot(snrs, db(np.median(nmse[name], axis=1)), "--", color=line.get_color())
    ax2.plot(snrs, np.mean(db(nmse[name]) > OUTAGE_DB, axis=1), "o-", color=line.get_color())
    ax3.bar(name, times[name].mean(), color=line.get_color())
ax1.set_xlabel("SNR (dB)")
ax1.set_ylabel("channel NMSE (dB)")
ax1.set_title("mean (solid) and median (dashed)")
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3)
ax2.set_xlabel("SNR (dB)")
ax2.set_ylabel("fraction of trials")
ax2.set_title(f"trials worse than {OUTAGE_DB:g} dB")
ax2.set_ylim(-0.03, 1.03)
ax2.grid(alpha=0.3)
ax3.set_ylabel("time per fit (s)")
ax3.set_yscale("log")
ax3.tick_params(axis="x", rotation=35)
ax3.set_title("run time")
fig.tight_layout()

# Run as a script (not in the documentation gallery), the figure is saved in demo_output/.
if "sphinx_gallery" not in sys.modules:
    out = pathlib.Path("demo_output")
    out.mkdir(exist_ok=True)
    fig.savefig(out / "irs_channel_estimation.png", dpi=120)
    print(f"\nfigure saved to {out / 'irs_channel_estimation.png'}")
plt.show()
