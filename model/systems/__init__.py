"""Seed systems of other papers, each built by one function.

- ``reslstm_sa``: ResLSTM-SA (Krasnoproshin and Vashkevich, 2026), MFCC + chroma -> residual LSTM
  -> soft attention -> 8 classes; 46,772 trainable parameters at h64.
- ``gat_fusion``: graph-attention fusion of speech and text (arXiv 2506.02088): GAT per modality,
  co-attention, a transformer layer per modality, attentive pooling, optional F0 embedding, SwiGLU
  classifier; an ``SERModel`` with ``fusion="gat"`` (``bench train --fusion gat``), built by
  ``model.build.gat_fusion`` (the builder imports this system and ``model.ser``; neither imports it).
"""

from model.systems.reslstm_sa import reslstm_sa

__all__ = ["reslstm_sa"]
