"""The SER model of "How Attention Shapes Emotion" (section 3.2, Figure 1).

    S = f_speech(X) in R^{M x D_s},  E = f_text(W) in R^{N x D_t}          frozen front ends (features.py)
    U = [S W_s; E W_t] in R^{L x D},  L = M + N                             per-modality projections
    H = M_theta(U):  h <- h + dropout(mixer(LayerNorm(h))), `depth` times, then LayerNorm
    w_i = softmax_i(h_i^T q / sqrt(D)),  c = sum_i w_i h_i                 attention pooling (eqs. 3-4)
    logits = Linear(LayerNorm(GELU(dropout(c))))                           classifier, 8 classes

Our reading of what the paper leaves open: each block is a pre-norm residual around one mixer
(by default no feed-forward sublayer, so the parameter budget goes to the mixers being compared;
``ffn=k`` adds h <- h + dropout(W_2 GELU(W_1 LayerNorm(h))) with a k*D hidden layer), dropout 0.4
on each block's output and before the classifier, and depth chosen so the trainable parameters
come closest to the budget (20M in the paper, at D = 1024 and 4 heads).

Padding: utterances in a batch differ in length. The mixer interface has no mask, and a
non-causal mixer (SA) would let padding leak into real frames, so sequences of equal length are
mixed together and groups of different lengths separately: every mixer, causal or not, then sees
exactly the frames of its own utterance. Pooling masks padded frames to weight exactly 0.
Input features are standardised with the training set's per-dimension mean and deviation, kept
as buffers so a checkpoint carries them.

Fusion: ``fusion="concat"`` is the paper's U = [S; E] + mixer stack above; ``fusion="gat"`` keeps the
projections (and the optional F0 embedding, ``f0=True``: the last speech column holds F0 bins of
``model.f0``) and replaces everything after them by ``model.systems.gat_fusion.GATFusion``, with
the same interface, so training and evaluation treat both alike. ``model.build`` makes the choice and
hands the fusion in, so this module imports no system.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

import mixers
from model.features import LayerWeights

FUSIONS = ("concat", "gat")
F0_EMBEDDINGS = 257  # bin 0 unvoiced + the 256 voiced bins of model.f0


@dataclass
class SERConfig:
    mixer: str = "sa"
    kernel: str = "auto"  # resolved against the device when the model is built
    speech_dim: int = 80  # D_s, the speech front end's width
    speech_layers: int | None = None  # L: speech arrives [B, M, L, D_s], mixed by features.LayerWeights
    text_dim: int | None = None  # D_t, or None for speech only
    classes: int = 8
    width: int = 1024  # D: the paper's SSL and BERT-large width
    heads: int = 4  # the paper: four heads
    dropout: float = 0.4  # the paper: dropout 0.4
    ffn: int = 0  # feed-forward sublayer width as a multiple of D after each mixer; 0: none (see docstring)
    depth: int | None = None  # None: chosen to meet `budget`
    budget: int = 20_000_000  # trainable parameters, the paper's ~20M
    mixer_options: dict = field(default_factory=dict)
    fusion: str = "concat"  # concat: U = [S; E] + mixer stack (the paper); gat: model.systems.gat_fusion
    gat_window: int | None = None  # gat: neighbours within +-window steps; None: every step of the utterance
    f0: bool = False  # the last speech column is a quantised F0 bin (model.f0.WithF0), embedded, not projected

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, config: SERConfig, device: str | torch.device | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(config.width)
        self.mixer = mixers.build(config.mixer, hidden_size=config.width, num_heads=config.heads,
                                  kernel=config.kernel, device=device, **config.mixer_options)
        self.dropout = nn.Dropout(config.dropout)
        if config.ffn:
            D = config.width
            self.ffn_norm = nn.LayerNorm(D)
            self.ffn = nn.Sequential(nn.Linear(D, config.ffn * D), nn.GELU(), nn.Linear(config.ffn * D, D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.mixer(self.norm(x)))
        if hasattr(self, "ffn"):
            x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        return x


class AttentionPooling(nn.Module):
    """Equations 3-4: softmax over frames of h_i . q / sqrt(D), then the weighted sum."""

    def __init__(self, width: int):
        super().__init__()
        self.query = nn.Parameter(torch.randn(width) / math.sqrt(width))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # [B, L]; exp(-inf) is exactly 0, so padded frames get exactly zero weight
        scores = (h @ self.query / math.sqrt(h.shape[-1])).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        # [B, D]
        return torch.einsum("bl,bld->bd", weights, h.masked_fill(~mask[..., None], 0.0)), weights


class SERModel(nn.Module):
    def __init__(self, config: SERConfig, depth: int, device: str | torch.device | None = None,
                 make_fusion: Callable[[SERConfig, int, str | torch.device | None], nn.Module] | None = None):
        super().__init__()
        if depth < 0:
            raise ValueError(f"expected depth >= 0, got {depth}")
        self.config, self.depth = config, depth
        D = config.width
        if config.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {config.fusion!r}; fusions: {', '.join(FUSIONS)}")
        features = config.speech_dim - int(config.f0)  # the F0 column is embedded, not standardised
        self.register_buffer("speech_mean", torch.zeros(features))
        self.register_buffer("speech_std", torch.ones(features))
        self.speech_proj = nn.Linear(features, D)
        if config.f0:
            self.f0_embedding = nn.Embedding(F0_EMBEDDINGS, D)
        if config.speech_layers is not None:  # every encoder layer in, a trainable softmax mix out
            self.layer_weights = LayerWeights(config.speech_layers, config.speech_dim)
        if config.text_dim is not None:
            self.register_buffer("text_mean", torch.zeros(config.text_dim))
            self.register_buffer("text_std", torch.ones(config.text_dim))
            self.text_proj = nn.Linear(config.text_dim, D)
        if config.fusion == "gat":  # everything after the projections: model.build hands in GATFusion
            if make_fusion is None:
                raise ValueError("a fusion='gat' model needs its fusion module: build it with model.build.ser_model")
            self.fusion = make_fusion(config, depth, device)
            return
        self.blocks = nn.ModuleList(Block(config, device) for _ in range(depth))
        self.norm = nn.LayerNorm(D)
        self.pool = AttentionPooling(D)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.GELU(), nn.LayerNorm(D),
                                  nn.Linear(D, config.classes))

    @property
    def kernel(self) -> str:
        if self.config.fusion == "gat":
            return self.fusion.kernel
        return self.blocks[0].mixer.kernel if len(self.blocks) else self.config.kernel

    def set_normalization(self, speech: tuple[torch.Tensor, torch.Tensor],
                          text: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Per-dimension (mean, std) of the training set's features; std floored to avoid division by 0."""
        features = self.speech_mean.shape[0]  # stats of an F0 column, if any, are dropped
        self.speech_mean.copy_(speech[0][:features])
        self.speech_std.copy_(speech[1][:features].clamp(min=1e-5))
        if text is not None:
            self.text_mean.copy_(text[0])
            self.text_std.copy_(text[1].clamp(min=1e-5))

    def fuse(self, speech: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor | None = None,
             text_lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """U = [S; E], packed per utterance: its M_b speech frames, its N_b tokens, then padding."""
        # [B, M, D], [B, N, D]
        s, e = self.project(speech, text, text_lengths)
        if text is None:
            lengths = speech_lengths
            u = s[:, : int(lengths.max())]
        else:
            lengths = speech_lengths + text_lengths
            M = s.shape[1]
            # [1, L] -> [B, L]: position l of utterance b reads speech frame l, or token l - M_b
            pos = torch.arange(int(lengths.max()), device=s.device)[None]
            index = torch.where(pos < speech_lengths[:, None], pos, M + pos - speech_lengths[:, None])
            both = torch.cat([s, e], dim=1)
            u = both.gather(1, index.clamp(max=both.shape[1] - 1)[..., None].expand(-1, -1, s.shape[-1]))
        mask = torch.arange(u.shape[1], device=u.device)[None] < lengths[:, None]
        return u.masked_fill(~mask[..., None], 0.0), lengths

    def project(self, speech: torch.Tensor, text: torch.Tensor | None = None,
                text_lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-modality projections of the standardised features, plus the F0 embedding on speech frames."""
        if (text is None) != (text_lengths is None) or (text is None) != (self.config.text_dim is None):
            raise ValueError(f"this model expects text features: {self.config.text_dim is not None}; "
                             f"got text={text is not None}, text_lengths={text_lengths is not None}")
        features = self.speech_mean.shape[0]
        # [B, M, D]
        s = self.speech_proj((speech[..., :features] - self.speech_mean) / self.speech_std)
        if self.config.f0:  # bins 0..256 as floats; padding may hold anything, hence the clamp
            s = s + self.f0_embedding(speech[..., features].round().long().clamp(0, F0_EMBEDDINGS - 1))
        # [B, N, D]
        e = None if text is None else self.text_proj((text - self.text_mean) / self.text_std)
        return s, e

    def mix(self, u: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The mixer stack, run on each group of equal-length utterances unpadded (see module docstring)."""
        return mix_groups(self.blocks, self.norm, u, lengths)

    def forward(self, speech: torch.Tensor, speech_lengths: torch.Tensor, text: torch.Tensor | None = None,
                text_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """speech [B, M, D_s], speech_lengths [B] (text [B, N, D_t], text_lengths [B]) -> logits [B, C]."""
        if self.config.speech_layers is not None:  # [B, M, L, D_s] -> [B, M, D_s]
            speech = self.layer_weights(speech)
        if speech.dim() != 3 or speech.shape[-1] != self.config.speech_dim:
            raise ValueError(f"expected speech features [B, M, {self.config.speech_dim}], "
                             f"got {tuple(speech.shape)}")
        if bool((speech_lengths < 1).any()) or int(speech_lengths.max()) > speech.shape[1]:
            raise ValueError(f"speech lengths must lie in [1, {speech.shape[1]}]; got {speech_lengths.tolist()}")
        if self.config.fusion == "gat":
            s, e = self.project(speech, text, text_lengths)
            return self.fusion(s, speech_lengths, e, text_lengths)
        u, lengths = self.fuse(speech, speech_lengths, text, text_lengths)
        h = self.mix(u, lengths)
        mask = torch.arange(h.shape[1], device=h.device)[None] < lengths[:, None]
        c, _ = self.pool(h, mask)
        return self.head(c)


def mix_groups(blocks: nn.ModuleList, norm: nn.Module, u: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``norm(blocks(u))`` on each group of equal-length sequences, unpadded; padding rows out are 0."""
    B, L, D = u.shape
    if bool((lengths == L).all()):
        h = u
        for block in blocks:
            h = block(h)
        return norm(h)
    out = u.new_zeros(B, L, D)
    for length in lengths.unique().tolist():
        rows = (lengths == length).nonzero().squeeze(1)
        # [B_g, length, D]
        h = u[rows, :length]
        for block in blocks:
            h = block(h)
        out = out.index_put((rows,), nn.functional.pad(norm(h), (0, 0, 0, L - length)))
    return out


def trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
