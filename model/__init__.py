"""The SER model of "How Attention Shapes Emotion" (section 3), its training recipe (section 4.3), and the
ResLSTM-SA and graph-attention fusion seed systems.

Inputs
- ``data``: the one entry point to corpora (``KIND:PATH`` specs) and audio I/O.
- ``corpora``: one reader per layout (MSP-Podcast, RAVDESS with its folds, CSV manifest), default splits.
- ``synthetic``: a speech-like corpus our own code generates, deterministic from a seed.
- ``frontend``: what every front end shares: the sample rate, the encoder interfaces, the conv frame formula.
- ``features``: frozen front ends (log-mel, hashed words), the encoder factories, the learned layer mix.
- ``pretrained``: frozen Hugging Face speech (WavLM, wav2vec2, HuBERT, XLSR) and text (BERT) encoders.
- ``f0``: a YIN pitch tracker, the 256-bin mel F0 quantiser, and the ``NAME+f0`` front end.
- ``acoustic``: ResLSTM-SA's 46-dimensional MFCC + chroma frames.
- ``cache``: the feature cache (safetensors shards, index, verification) that training reads.
- ``extract``: encoding a corpus into a cache once, resumably.
- ``inputs``: a run's splits as features, on the fly or from a cache, with training-split statistics.
- ``dataset``: a split's features in memory, seeded random crops, padded batches.

Models and training
- ``ser``: speech [+ text] features -> mixer stack -> attention pooling -> classifier; or a fusion handed in.
- ``build``: the one place that chooses the concat model or the gat fusion; the budget's depth; ``gat_fusion``.
- ``systems``: the seed systems, ``reslstm_sa`` (46,772 parameters at h64) and ``gat_fusion``.
- ``train``: the paper's recipe, resume; ``train_config``: its presets and options; ``checkpoint``: atomic
  checkpoints.
- ``distributed``: data-parallel training under torchrun.
- ``grid``: training over mixers x speech encoders, resumably, with extra test splits.
- ``crossval``: ResLSTM-SA's speaker-independent 5-fold cross-validation, UAR pooled out of fold.
- ``crossval_run``: a resumable ResLSTM-SA cross-validation run folder, its cache and rows.

Results
- ``evaluate``: whole-utterance evaluation of a run's best checkpoint, accuracy rows.
- ``metrics``: macro-F1, UAR, accuracy, per-class F1, confusion; the accuracy row format.
- ``table1``: our macro-F1 beside the paper's Table 1 (Dev, Test1, Test2).

Commands
- ``commands``: ``bench train``, ``evaluate`` and ``table1``; ``data_commands``: ``bench data synth`` and
  ``data summary``.
- ``cache_commands``: ``bench features extract`` and ``bench features verify``.
- ``systems_commands``: ``bench reslstm-sa``.
- ``__main__``: ``python -m model``: these commands without the rest of ``bench``.
"""
