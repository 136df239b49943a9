"""ResLSTM-SA (Krasnoproshin and Vashkevich, DSPA 2026, "Speech Emotion Recognition using
Attention-based LSTM-Network with Residual Connection"), the classifier of its Figure 1:

    x in R^{T x 46}                        frames of 34 MFCC + 12 chroma (model.acoustic)
    r = LSTM_1(x) + x                      LSTM(46 -> 46) with a residual connection
    r = BatchNorm(r)                       over channels, statistics of the valid frames only
    h = LSTM_2(r)                          LSTM(46 -> H), H = 64 for the best variant, h64
    e_t = u^T h_t,  a = softmax_t(e)       soft attention (Mirsamadi et al., 2017), padded t masked out
    c = sum_t a_t h_t                      pooled [H]
    logits = Linear(Dropout(BatchNorm(c))) 8 classes

Trainable parameters, with PyTorch's LSTM (two bias vectors, b_ih and b_hh, per layer, as the
authors' code uses: ``4 (in h + h h + 2 h)``):

    LSTM(46 -> 46)    4 (46*46 + 46*46 + 2*46)  = 17,296
    BatchNorm1d(46)   2*46                      =     92
    LSTM(46 -> 64)    4 (46*64 + 64*64 + 2*64)  = 28,672
    attention u       64                        =     64
    BatchNorm1d(64)   2*64                      =    128
    Linear(64 -> 8)   64*8 + 8                  =    520
                                                  46,772   (the paper's count; running statistics
                                                            of batch norm are buffers, not trained)

The same sum gives the authors' 27,988 for h32 and 108,916 for h128. The authors' repository
also holds a multi-vector attention variant with a 1 -> 1 head-combine scalar (46,773); the paper's
count is the single-vector model built here.

The recurrent core is ``mixers.reslstm.ResidualLSTMStack(46, (46, H), batch_norm=True)``: its
modules and their order are exactly LSTM_1, BatchNorm, LSTM_2, so the parameter layout is shared
with the mixer. Its own forward normalises over every frame of the batch, padding included; here
batches hold utterances of different lengths, so ``forward`` walks the same modules with batch
norm over valid frames only (equal to the stack's forward when nothing is padded, a test checks).
LSTMs are causal, so outputs at valid frames never see the padding after them.

Initialisation follows the authors' code: Xavier-normal input weights, orthogonal recurrent
weights, zero biases except the forget gate's (1 in each of the two bias vectors), Xavier-normal u,
Xavier-uniform classifier with zero bias. Deviation: the authors' attention softmax runs over
padded steps too (their padded outputs are zero, so padding gets weight exp(0)) and their batch
norm counts padded frames; ours masks both, so an utterance's prediction does not depend on what
it was batched with.
"""

from __future__ import annotations

import torch
from torch import nn

from mixers.reslstm import ResidualLSTMStack

FEATURES = 46  # 34 MFCC + 12 chroma


class SoftAttentionPool(nn.Module):
    """``a = softmax_t(u^T h_t)`` over valid frames, ``c = sum_t a_t h_t``."""

    def __init__(self, dim: int):
        super().__init__()
        self.vector = nn.Parameter(torch.empty(dim))
        nn.init.xavier_normal_(self.vector.view(dim, 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # h [B, T, H], mask [B, T] (True at valid frames) -> pooled [B, H], weights [B, T]
        scores = (h @ self.vector).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        return torch.einsum("bt,bth->bh", weights, h), weights


class ResLSTMSA(nn.Module):
    """The ResLSTM-SA classifier (see the module docstring); ``forward(features, lengths) -> logits``."""

    def __init__(self, hidden: int = 64, classes: int = 8, dropout: float = 0.3, features: int = FEATURES):
        super().__init__()
        if hidden < 1 or classes < 2 or features < 1 or not 0 <= dropout < 1:
            raise ValueError(f"expected hidden >= 1, classes >= 2, features >= 1 and 0 <= dropout < 1; got "
                             f"{hidden}, {classes}, {features} and {dropout}")
        self.features, self.hidden, self.classes = features, hidden, classes
        self.stack = ResidualLSTMStack(features, (features, hidden), batch_norm=True)
        self.attention = SoftAttentionPool(hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for lstm in self.stack.lstms:
            n = lstm.hidden_size
            nn.init.xavier_normal_(lstm.weight_ih_l0)
            nn.init.orthogonal_(lstm.weight_hh_l0)
            for bias in (lstm.bias_ih_l0, lstm.bias_hh_l0):
                nn.init.zeros_(bias)
                with torch.no_grad():
                    bias[n: 2 * n] = 1.0  # gate order i, f, g, o: the forget gate's slice
        nn.init.xavier_uniform_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def encode(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The recurrent core: [B, T, F] -> [B, T, H]; padded frames are zero on output."""
        x = features * mask[..., None]
        for index, lstm in enumerate(self.stack.lstms):
            # [B, T, in] -> [B, T, out]; the residual where widths agree, as the stack does.
            x = lstm(x)[0] + x if lstm.hidden_size == lstm.input_size else lstm(x)[0]
            if index < len(self.stack.norms):
                x = _masked_norm(self.stack.norms[index], x, mask)
        return x * mask[..., None]

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """features [B, T, F] (padded after each utterance's end), lengths [B] -> logits [B, C]."""
        if features.dim() != 3 or features.shape[-1] != self.features or lengths.shape != features.shape[:1]:
            raise ValueError(f"expected features [B, T, {self.features}] and lengths [B]; got "
                             f"{tuple(features.shape)} and {tuple(lengths.shape)}")
        if len(lengths) and (int(lengths.min()) < 1 or int(lengths.max()) > features.shape[1]):
            raise ValueError(f"lengths must lie in 1..{features.shape[1]}; got {lengths.tolist()}")
        # [B, T]
        mask = torch.arange(features.shape[1], device=features.device)[None, :] < lengths.to(features.device)[:, None]
        pooled, _ = self.attention(self.encode(features, mask), mask)
        return self.classifier(self.dropout(self.norm(pooled)))


def _masked_norm(norm: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BatchNorm1d over channels of the valid frames only: [B, T, C] -> [B, T, C], zero at padding."""
    out = x.new_zeros(x.shape)
    out[mask] = norm(x[mask])  # [N_valid, C]: statistics (and running averages) from real frames
    return out


def reslstm_sa(hidden: int = 64, classes: int = 8, dropout: float = 0.3) -> ResLSTMSA:
    """ResLSTM-SA-h{hidden}; h64 has the paper's 46,772 trainable parameters."""
    return ResLSTMSA(hidden=hidden, classes=classes, dropout=dropout)
