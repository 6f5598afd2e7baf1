"""Algorithms over the numeric kernels: the layer between estimators and ``_kernels``.

One module per family: the EM loops of sparse Bayesian learning (``sbl``) and of the Gaussian
mixture of experts (``moe``), the sparse-coding dispatch shared by the coder and the dictionary
learners (``coding``), the coordinate-descent outer loops and paths (``cd``) and the exact
private-sums aggregator of the privacy family (``private_sums``).

The arrows run one way: estimators -> ``_solvers`` / ``penalties`` -> ``_kernels``. A solver
imports kernels and never an estimator; ``_kernels`` imports nothing from the rest of the
package.
"""
