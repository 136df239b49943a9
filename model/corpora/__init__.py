"""Corpus readers: one module per corpus layout, behind ``model.data.open_corpus``.

- ``base``: the ``Utterance`` record, the ``Corpus`` interface, ``DataError``, drop counting.
- ``spec``: ``KIND:PATH?option=value&...`` corpus specifications.
- ``manifest``: a CSV manifest (path, label, split, optional speaker and transcript): the synthetic
  corpus, IEMOCAP, CREMA-D or anything else.
- ``msp_podcast``: MSP-Podcast's ``Labels/labels_consensus.csv``, ``Audios/`` and ``Transcripts/``.
- ``ravdess``: RAVDESS's file-name convention and the ResLSTM-SA paper's 5 speaker-independent folds.
- ``summary``: utterances per split and class, hours (from file headers), speakers, drops.
"""
