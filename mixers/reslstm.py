"""Residual LSTM stack, the recurrent core of ResLSTM-SA (Krasnoproshin and Vashkevich, 2026,
"Speech Emotion Recognition using Attention-based LSTM-Network with Residual Connection").

Each layer is a standard LSTM (Hochreiter and Schmidhuber, 1997), with a residual connection
wherever its input and output widths agree:

    [i, f, g, o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g);   h_t = sigmoid(o) * tanh(c_t)
    y_t = h_t + x_t   (residual, when widths match)

As a mixer (``[B, T, D] -> [B, T, D]``): ``in_proj`` (D -> width), ``num_layers`` LSTMs of
``width`` units, each with its residual, then ``out_proj`` (width -> D). Defaults follow the
paper's best variant, h64: width 64, two LSTM layers; no batch norm between layers (a mixer's
output must not depend on the other utterances in its batch), ``batch_norm=True`` adds it.
``num_heads`` is accepted for the common interface and ignored: an LSTM has no heads.

The paper's full classifier, ResLSTM-SA-h64 (46,772 trainable parameters), is assembled from
``ResidualLSTMStack`` without the mixer's projections:

    46-dim frames (MFCC + chroma)
    -> ResidualLSTMStack(46, (46, 64), batch_norm=True)
       = LSTM(46->46) + residual (17,296) -> BatchNorm1d(46) (92) -> LSTM(46->64) (28,672)
    -> soft attention pooling: e_t = w^T h_t, alpha = softmax_t(e), pooled = sum_t alpha_t h_t (64)
    -> BatchNorm1d(64) (128) -> Dropout -> Linear(64 -> 8) (520)

(The authors' code also multiplies the score by one learned scalar, a 1->1 head-combine layer,
which only rescales w and brings the count to 46,773.) The model package builds that classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mixers.cost import Cost, fitted_train, linear_flops

KERNELS = ("torch",)
LSTM_WORKSPACE = 8.3
"""oneDNN's LSTM workspace per call, in units of the layer's [B, T, W] output (torch 2.13, CPU)."""


class ResidualLSTMStack(nn.Module):
    """LSTM layers of ``hidden_sizes`` units; a layer adds its input when widths agree.

    ``batch_norm`` puts a BatchNorm1d over channels after every layer but the last, as the paper
    does after its residual sum.
    """

    def __init__(self, input_size: int, hidden_sizes: Sequence[int], batch_norm: bool = False):
        super().__init__()
        if input_size <= 0 or not hidden_sizes or min(hidden_sizes) <= 0:
            raise ValueError(
                f"expected a positive input_size and at least one positive hidden size; "
                f"got {input_size} and {tuple(hidden_sizes)}"
            )
        widths = [input_size, *hidden_sizes]
        self.lstms = nn.ModuleList(nn.LSTM(a, b, batch_first=True) for a, b in zip(widths, widths[1:]))
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(b) if batch_norm else nn.Identity() for b in hidden_sizes[:-1]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, lstm in enumerate(self.lstms):
            # [B, T, in] -> [B, T, out]; no name keeps the LSTM output alive past the sum.
            x = lstm(x)[0] + x if lstm.hidden_size == lstm.input_size else lstm(x)[0]
            if index < len(self.norms):
                x = _channel_norm(self.norms[index], x)
        return x


def _channel_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(norm, nn.Identity):
        return x
    # BatchNorm1d normalises dim 1: [B, T, C] -> [B, C, T] and back.
    return norm(x.transpose(1, 2)).transpose(1, 2)


class ResLSTMMixer(nn.Module):
    def __init__(self, hidden_size: int, width: int = 64, num_layers: int = 2, batch_norm: bool = False):
        super().__init__()
        if width <= 0 or num_layers <= 0:
            raise ValueError(f"expected positive width and num_layers; got {width} and {num_layers}")
        self.hidden_size, self.width, self.num_layers = hidden_size, width, num_layers
        self.in_proj = nn.Linear(hidden_size, width)
        self.stack = ResidualLSTMStack(width, [width] * num_layers, batch_norm=batch_norm)
        self.out_proj = nn.Linear(width, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"expected input [batch, length, {self.hidden_size}], got {tuple(x.shape)}")
        # [B, T, D] -> [B, T, W] -> [B, T, D]
        return self.out_proj(self.stack(self.in_proj(x)))


def build(kernel: str, hidden_size: int, num_heads: int, width: int = 64, num_layers: int = 2,
          batch_norm: bool = False) -> ResLSTMMixer:
    if kernel not in KERNELS:
        raise ValueError(f"reslstm kernel must be one of {KERNELS}, got {kernel!r}")
    return ResLSTMMixer(hidden_size, width=width, num_layers=num_layers, batch_norm=batch_norm)


def cost(length: int, hidden_size: int, num_heads: int, batch: int, dtype_bytes: int, kernel: str,
         width: int = 64, num_layers: int = 2) -> Cost:
    B, T, D, W = batch, length, hidden_size, width
    # Per token and layer: the four gates from [x; h] (2 * 2W * 4W), two bias adds (8W), the gate
    # nonlinearities (4W, one op each), c = f*c + i*g (3W), h = o*tanh(c) (2W), the residual (W).
    per_layer = linear_flops(B, T, 2 * W, 4 * W) + B * T * 18.0 * W
    flops = linear_flops(B, T, D, W) + num_layers * per_layer + linear_flops(B, T, W, D)
    token = B * T * dtype_bytes
    # Measured with PyTorch's CPU LSTM (oneDNN): each call allocates its [B, T, W] output and one
    # workspace of ~8.3 [B, T, W] (four gate rows plus h and c for the layer's input and output
    # steps, and padding). While layer l > 1 runs, the projected input (held by the caller) and the
    # previous residual sum are alive too. The projection phase holds the stack's output beside
    # the [B, T, D] result. The peak is the larger phase; at D = 1024, W = 64 it is the projection.
    lstm_phase = (1 + min(num_layers, 2)) * W + LSTM_WORKSPACE * W
    activation = int(token * max(D + W, lstm_phase))
    params = (D * W + W) + num_layers * (4 * W * (W + W) + 8 * W) + (W * D + D)
    # Training (CPU memory probe and saved-tensor hooks, fp32, 4,999 frames, widths 128 / 256 / 1024,
    # W 64, two layers; predicts width 64 within 1%): oneDNN's training workspace saves ~17.8 W
    # elements per token and layer; the backward holds the input's gradient and ~2.6 W more per layer.
    train = fitted_train(B, T, D, dtype_bytes, params * dtype_bytes, saved_per_token=17.76 * W * num_layers,
                         total_per_token=0.98 * D + 20.4 * W * num_layers)
    return Cost(flops=flops, activation_bytes=activation, state_bytes=num_layers * 2 * B * W * dtype_bytes,
                weight_bytes=params * dtype_bytes, **train)
