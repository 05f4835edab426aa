"""Post-hoc temperature scaling (Guo et al. 2017) and the ensemble's combined logit.

Credit decisions use the probability itself (expected loss = PD x exposure), so it should
be calibrated. Early stopping on ROC-AUC and ensembles both leave the probabilities over-
or under-confident; one scalar temperature fitted on validation logits fixes most of it
without changing the ranking (ROC-AUC) at all.
"""

from __future__ import annotations

import math

import torch

MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


def mean_probability_logit(member_logits: torch.Tensor) -> torch.Tensor:
    """The logit of the members' mean probability, computed in log space.

    Shape: (B, k) -> (B,). For k = 1 it is the member's logit exactly; logit(mean(sigmoid))
    written directly would lose every logit beyond about +-17 to float32 rounding.
    """
    log_k = math.log(member_logits.shape[-1])
    log_p = torch.logsumexp(torch.nn.functional.logsigmoid(member_logits), dim=-1) - log_k
    log_not_p = torch.logsumexp(torch.nn.functional.logsigmoid(-member_logits), dim=-1) - log_k
    return log_p - log_not_p


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The temperature T minimising the log-loss of sigmoid(logits / T) on these rows.

    The log-loss is convex in 1/T, so L-BFGS on it finds the global minimum; T is kept in
    [0.05, 20] so a degenerate validation set (all logits equal) cannot produce inf.
    """
    if logits.numel() != targets.numel() or logits.numel() == 0:
        raise ValueError(
            f"need one logit per target, got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    # Lightning's `validate` runs the epoch end in inference mode, where nothing can be
    # differentiated; the fit needs gradients, on copies made outside it.
    with torch.inference_mode(False), torch.enable_grad():
        logits, targets = logits.detach().double().flatten(), targets.detach().double().flatten()
        inverse = torch.ones((), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [inverse], lr=1.0, max_iter=100, line_search_fn="strong_wolfe", tolerance_grad=1e-9
        )

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits * inverse, targets)
            loss.backward()
            return loss

        optimizer.step(closure)
    inverse_value = float(inverse.detach())
    if not math.isfinite(inverse_value) or inverse_value <= 0:
        return 1.0
    return min(MAX_TEMPERATURE, max(MIN_TEMPERATURE, 1.0 / inverse_value))
