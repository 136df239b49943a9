"""Streaming residual LSTM stack (``mixers.reslstm``): LSTM cells, one frame at a time.

Per layer l (Hochreiter and Schmidhuber, 1997; PyTorch's gate order i, f, g, o):

    [i, f, g, o] = W_ih a_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g),   h_t = sigmoid(o) tanh(c_t)
    a_t <- h_t + a_t (residual, when widths agree), then the layer's norm

around ``a_0 = x_t W_in + b_in`` and ``y_t = a_L W_out + b_out``. State: h and c of every layer,
``[L, B, W]`` each, in the activations' dtype; constant size. Prefill runs ``nn.LSTM`` over the
context, layer after layer, and keeps its final (h, c). A stack with batch norm streams only
in eval mode: a training-mode norm depends on the other frames of the batch.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mixers.stream.base import State, Stepper


@dataclasses.dataclass(frozen=True, eq=False)
class LSTMState(State):
    h: Tensor  # [L, B, W]
    c: Tensor  # [L, B, W]


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, lstm: nn.LSTM) -> tuple[Tensor, Tensor]:
    """One step of single-layer ``lstm`` on x [B, in] from h, c [B, W]: ``(h_t, c_t)``."""
    gates = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0 if lstm.bias else None)
    gates = gates + F.linear(h, lstm.weight_hh_l0, lstm.bias_hh_l0 if lstm.bias else None)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class ResLSTMStepper(Stepper):
    def __init__(self, module):
        super().__init__(module)
        self.lstms, self.norms = module.stack.lstms, module.stack.norms
        self.widths = [lstm.hidden_size for lstm in self.lstms]
        if len(set(self.widths)) != 1:
            raise ValueError(f"the stream state stacks layers of one width; got widths {self.widths}")

    _batch_dim = 1

    def _check_norms(self) -> None:
        if any(isinstance(n, nn.modules.batchnorm._BatchNorm) and n.training for n in self.norms):
            raise ValueError("a ResLSTM with batch norm streams in eval mode only: call module.eval() first")

    def _norm(self, index: int, a: Tensor) -> Tensor:
        """The norm after layer ``index`` (none after the last), on [B, W] or [B, T, W]."""
        if index >= len(self.norms) or isinstance(self.norms[index], nn.Identity):
            return a
        return self.norms[index](a) if a.dim() == 2 else self.norms[index](a.transpose(1, 2)).transpose(1, 2)

    def _init(self, batch, device, dtype) -> LSTMState:
        zeros = torch.zeros(len(self.lstms), batch, self.widths[0], dtype=dtype, device=device)
        return LSTMState(length=0, h=zeros, c=zeros.clone())

    def _prefill(self, x: Tensor) -> LSTMState:
        self._check_norms()
        a, hs, cs = self.module.in_proj(x), [], []
        for index, lstm in enumerate(self.lstms):
            out, (h, c) = lstm(a)  # [B, T, W]; h, c [1, B, W]
            a = self._norm(index, out + a if lstm.input_size == lstm.hidden_size else out)
            hs.append(h[0]), cs.append(c[0])
        return LSTMState(length=x.shape[1], h=torch.stack(hs), c=torch.stack(cs))

    def _step(self, state: LSTMState, x: Tensor) -> tuple[Tensor, LSTMState]:
        self._check_norms()
        a, hs, cs = self.module.in_proj(x), [], []
        for index, lstm in enumerate(self.lstms):
            h, c = lstm_cell(a, state.h[index], state.c[index], lstm)
            a = self._norm(index, h + a if lstm.input_size == lstm.hidden_size else h)
            hs.append(h), cs.append(c)
        return self.module.out_proj(a), LSTMState(length=state.length + 1, h=torch.stack(hs), c=torch.stack(cs))


def make(module) -> ResLSTMStepper:
    return ResLSTMStepper(module)
