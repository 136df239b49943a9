"""Seed systems of other papers, each built by one function.

- ``reslstm_sa``: ResLSTM-SA (Krasnoproshin and Vashkevich, 2026), MFCC + chroma -> residual LSTM
  -> soft attention -> 8 classes; 46,772 trainable parameters at h64.
"""

from model.systems.reslstm_sa import reslstm_sa

__all__ = ["reslstm_sa"]
