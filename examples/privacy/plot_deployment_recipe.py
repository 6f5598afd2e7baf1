"""
=============================================================
Deployment recipe: devices, report files, a server
=============================================================

The local model of differential privacy only protects users if the raw data never leaves
their device. This example runs the deployment path of
:class:`~sparsestat.privacy.LDPSparseLinearRegression` end to end:

1. the public parameters are agreed in advance (privacy budget, clipping bounds from
   domain knowledge, never from the data);
2. each device privatises its own row with :meth:`privatize` -- OpenDP's exact samplers,
   fresh operating-system entropy, no seed -- and writes a reports file;
3. the server, built from the public parameters only, reads the files with
   :meth:`add_reports`, which refuses reports made under any other parameters, and
   estimates;
4. the same files are aggregated by :func:`~sparsestat.privacy.fit_ldp_dask` (workers see
   reports only): the sums are equal bit for bit.

Here the "devices" are a loop in one process, for the demonstration; in a deployment each
iteration of that loop runs on a user's own device. See the user guide page
"Threat model" for who sees what.
"""

import os
import pathlib
import sys
import tempfile
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sparsestat.privacy import LDPReports, LDPSparseLinearRegression, fit_ldp_dask

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
n_users, d = (300, 3) if QUICK else (3000, 3)
rng = np.random.default_rng(0)
theta = np.array([0.6, 0.0, -0.4])
X = rng.choice([-1.0, 1.0], size=(n_users, d))  # row i lives on device i
y = X @ theta + 0.1 * rng.standard_normal(n_users)

# %%
# The recipe
# ----------
# [recipe-start]
# 1. Public parameters, agreed before any user reports (the same on devices and server).
PUBLIC = {"epsilon": 4.0, "delta": 1e-8, "bounds_X": 1.0, "bounds_y": 1.5}


def device(x_row, y_row, user_id, folder):
    """Runs on the user's device: clip, add exact noise, write the reports file."""
    client = LDPSparseLinearRegression(**PUBLIC)  # no random_state: fresh OS entropy
    reports = client.privatize(x_row, y_row, user_ids=[user_id])  # OpenDP exact samplers
    path = pathlib.Path(folder) / f"user_{user_id}.npz"
    reports.save(path)  # privatised values and public parameters only
    return path


def server(paths):
    """Runs on the server: public parameters only, every report checked before use."""
    model = LDPSparseLinearRegression(**PUBLIC, alpha="auto")
    for path in paths:
        model.add_reports(LDPReports.load(path))  # refuses mismatched or simulated reports
    return model


# [recipe-end]

with tempfile.TemporaryDirectory() as folder:
    paths = [device(X[i : i + 1], y[i : i + 1], i, folder) for i in range(n_users)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the few users of a demo: noisy estimate
        model = server(paths)
        dist = fit_ldp_dask(LDPSparseLinearRegression(**PUBLIC), reports=paths)

print(f"{model.n_users_seen_} users, formal guarantee: {model.formal_guarantee_}")
print("noise scales (s1, s2):", np.round(model.noise_scale_, 2))
print("estimate:", np.round(model.coef_, 3), "truth:", theta)
print(
    "dask over the same files equals it bit for bit:", np.array_equal(dist.sum_xx_, model.sum_xx_)
)

# %%
# What the server received
# ------------------------
# The server's averaged statistic ``S = sum M / n`` against the clean ``X^T X / n`` (which
# it never sees): the noise of scale ``s1 / sqrt(n)`` dominates at this number of users.
fig, ax = plt.subplots(figsize=(5, 3.2))
clean = (X.T @ X / n_users)[np.triu_indices(d)]
noisy = (model.sum_xx_ / n_users)[np.triu_indices(d)]
ax.bar(np.arange(clean.size) - 0.2, clean, width=0.4, label="clean (never sent)")
ax.bar(np.arange(clean.size) + 0.2, noisy, width=0.4, label="server's S (from reports)")
ax.set_xlabel("entry of the upper triangle of S")
ax.legend()
fig.tight_layout()
# Run as a script (not in the documentation gallery), the figure is saved in the
# working directory.
if "sphinx_gallery" not in sys.modules:
    fig.savefig("deployment_recipe.png", dpi=120)
    print("figure saved to deployment_recipe.png")
plt.show()
