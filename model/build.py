"""Builds the SER model for a config: the one place that chooses between the concat model and the GAT fusion.

``model.ser`` defines the model (the projections, then the paper's mixer stack, or a fusion module it
is handed); ``model.systems.gat_fusion`` defines the GAT fusion on ``model.ser``'s blocks. This module
imports both, so neither imports the other's user: ``ser_model`` picks by ``SERConfig.fusion``,
``choose_depth`` meets the parameter budget, ``build_model`` does both, and ``gat_fusion`` is the
fusion system as one function.
"""

from __future__ import annotations

import torch

from model.ser import SERConfig, SERModel, trainable
from model.systems.gat_fusion import GATFusion


def ser_model(config: SERConfig, depth: int, device: str | torch.device | None = None) -> SERModel:
    """The model for ``config`` at ``depth``: ``fusion="gat"`` gets ``GATFusion`` after its projections."""
    return SERModel(config, depth, device=device, make_fusion=GATFusion if config.fusion == "gat" else None)


def choose_depth(config: SERConfig, device: str | torch.device | None = None) -> int:
    """The depth >= 1 whose trainable-parameter count comes closest to ``config.budget`` (ties: shallower).

    Counts are exact: the model at depth 0 and at depth 1 are built and counted, so any mixer's (and
    fusion's) own parameterisation is measured, not assumed. They are built on the meta device: no memory, no
    random draws, so the global RNG is left as it was.
    """
    if config.depth is not None:
        if config.depth < 1:
            raise ValueError(f"expected depth >= 1, got {config.depth}")
        return config.depth
    if config.budget < 1:
        raise ValueError(f"expected a positive parameter budget, got {config.budget}")
    with torch.device("meta"):
        fixed = trainable(ser_model(config, depth=0, device=device))
        per_block = trainable(ser_model(config, depth=1, device=device)) - fixed
    below = max(1, (config.budget - fixed) // per_block)
    candidates = (below, below + 1)
    return min(candidates, key=lambda d: (abs(fixed + d * per_block - config.budget), d))


def build_model(config: SERConfig, device: str | torch.device = "cpu") -> SERModel:
    """The model at the budget's depth, on ``device``; seed the global RNG first for reproducible weights."""
    depth = choose_depth(config, device)
    return ser_model(config, depth, device=device).to(device)


def gat_fusion(speech_dim: int, text_dim: int | None = None, depth: int | None = 1,
               device: str | torch.device = "cpu", **options) -> SERModel:
    """The whole system as an ``SERModel`` with ``fusion="gat"``; ``options`` are other ``SERConfig`` fields.

    Example: ``gat_fusion(speech_dim=1025, text_dim=1024, f0=True)`` (1024 SSL features + the F0 column).
    """
    return build_model(SERConfig(speech_dim=speech_dim, text_dim=text_dim, depth=depth, fusion="gat", **options),
                       device)
