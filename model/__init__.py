"""The SER model of "How Attention Shapes Emotion" (section 3) and its training recipe (section 4.3).

- ``features``: frozen front ends (a weight-free log-mel filterbank, a weight-free word encoder) and
  the encoder interfaces pretrained models implement.
- ``data``: corpora behind one interface (manifest CSV), audio I/O, bad-input errors.
- ``synthetic``: a speech-like corpus our own code generates, deterministic from a seed.
- ``ser``: speech [+ text] features -> mixer stack -> attention pooling -> classifier; or, with
  ``fusion="gat"``, the graph-attention fusion of ``systems.gat_fusion``.
- ``f0``: a YIN pitch tracker, 256-bin mel F0 quantiser, and the ``NAME+f0`` front end.
- ``grid``: training over mixers x speech encoders, resumably; ``table1``: ours beside the paper's Table 1.
- ``dataset``: a split's features in memory, seeded random crops, padded batches.
- ``train``, ``checkpoint``, ``distributed``: the recipe, atomic checkpoints, DDP under torchrun.
- ``evaluate``: whole-utterance evaluation of a run's best checkpoint.
- ``metrics``: macro-F1, UAR, accuracy, per-class F1, confusion; accuracy rows for results files.
- ``commands``: the ``bench train``, ``bench evaluate`` and ``bench data synth`` commands.
"""
