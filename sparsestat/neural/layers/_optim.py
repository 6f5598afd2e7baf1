"""Optimizers for sparse training: AdamS (CAST's Adam with adaptive L1 decay).

Re-exported by :mod:`sparsestat.neural.layers`.
"""

from __future__ import annotations

from typing import Any

from sparsestat.neural import import_torch
from sparsestat.neural.layers._masks import check_nm_pattern, nm_mask

torch = import_torch()

__all__ = ["AdamS"]


# --------------------------------------------------------------------------- AdamS
class AdamS(torch.optim.Optimizer):
    """Adam with an adaptive L1 decay on the currently pruned N:M weights (CAST).

    Every ``update_every`` steps the N:M mask ``m`` of each matrix parameter (last dimension
    divisible by ``m``) is recomputed from ``|W|``. Each step, with
    ``d = lambda_t * sign(W) * (1 - mask)``:

    * ``variant="folded"`` (default): ``g' = g + d`` enters both Adam moments, so
      ``lambda = 0`` is exactly :class:`torch.optim.Adam`;
    * ``variant="ast"``: ``mom`` averages ``g``, ``a = mom + d`` and ``v`` averages ``a**2``;
      the update is ``(a / bc1) / (sqrt(v / bc2) + eps)`` (AST's ``adamw.py`` reading).

    A pruned weight whose sign would flip is set to 0 instead. Other parameters (biases,
    scalars) follow plain Adam.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float, default=1e-3
        Learning rate.
    betas : (float, float), default=(0.9, 0.999)
        Moment factors.
    eps : float, default=1e-8
        Denominator term.
    decay : float, default=1e-3
        Maximum L1 decay ``lambda_max`` (``cast_lambda``).
    n, m : int, default=2, 4
        Target N:M pattern.
    update_every : int, default=10
        Steps between mask recomputations (T1).
    warmup_steps : int, default=0
        ``lambda_t`` ramps linearly from 0 to ``decay`` over these many steps.
    variant : {"folded", "ast"}, default="folded"
        Where the decay enters the moments (see above).

    Notes
    -----
    The CAST method section was not available: the update is not specified by the paper's
    abstract (which names an adaptive L1 decay); chosen here following the predecessor AST's
    code. With ``variant="ast"`` and ``decay=0`` the second moment averages ``mom**2``
    rather than ``g**2``, so it is not Adam; the default ``"folded"`` variant reduces to
    Adam exactly. Cost per step: that of Adam plus a sort of length ``m`` per group every
    ``update_every`` steps.

    References
    ----------
    Huang et al., "CAST: Continuous and Differentiable Semi-Structured Sparsity-Aware
    Training for Large Language Models", arXiv:2509.25996, 2025.

    Examples
    --------
    >>> import torch
    >>> from sparsestat.neural.layers import AdamS
    >>> w = torch.nn.Parameter(torch.randn(2, 4))
    >>> opt = AdamS([w], lr=0.01, decay=0.1)
    >>> (w ** 2).sum().backward(); opt.step()
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        decay: float = 1e-3,
        n: int = 2,
        m: int = 4,
        update_every: int = 10,
        warmup_steps: int = 0,
        variant: str = "folded",
    ) -> None:
        check_nm_pattern(n, m)
        if variant not in ("folded", "ast"):
            raise ValueError(f"variant must be 'folded' or 'ast'; got {variant!r}.")
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "decay": decay,
            "n": n,
            "m": m,
            "update_every": update_every,
            "warmup_steps": warmup_steps,
            "variant": variant,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """Take one AdamS step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        loss : torch.Tensor or None
            The closure's loss, if a closure was given.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                t = state["step"]
                sparse = p.ndim >= 2 and p.shape[-1] % group["m"] == 0
                d = None
                if sparse:
                    if t % group["update_every"] == 0 or "mask" not in state:
                        state["mask"] = nm_mask(p, group["n"], group["m"])
                    warm = group["warmup_steps"]
                    lam = group["decay"] * (min(1.0, (t + 1) / warm) if warm > 0 else 1.0)
                    d = lam * torch.sign(p) * (~state["mask"]).to(p.dtype)
                state["step"] = t = t + 1
                mom, v = state["exp_avg"], state["exp_avg_sq"]
                if d is not None and group["variant"] == "folded":
                    g = g + d
                mom.mul_(beta1).add_(g, alpha=1 - beta1)
                if d is not None and group["variant"] == "ast":
                    a = second = mom + d
                else:
                    a, second = mom, g
                v.mul_(beta2).addcmul_(second, second, value=1 - beta2)
                bc1 = 1 - beta1**t
                bc2 = 1 - beta2**t
                denom = (v / bc2).sqrt_().add_(group["eps"])
                old_sign = torch.sign(p) if sparse else None
                p.addcdiv_(a / bc1, denom, value=-group["lr"])
                if old_sign is not None:
                    flipped = (~state["mask"]) & (torch.sign(p) * old_sign < 0)
                    p.masked_fill_(flipped, 0.0)
        return loss
