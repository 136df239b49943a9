"""Tiny randomly initialised Hugging Face models, saved to a folder and loaded back through the same
``from_pretrained`` path a hub name takes (no downloads: weights come from a seeded config)."""

from __future__ import annotations

from pathlib import Path

import torch

# wav2vec2's real convolutional front end (so frames are floor((T - 400) / 320) + 1), at 8 channels.
CONV = dict(conv_dim=(8,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
TRANSFORMER = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
WORDS = ["okay", "wow", "really", "sad", "happy", "the", "we", "it", "was", "today", "##s", "##ly"]


def speech_model(folder: Path, kind: str = "wavlm", norm: str = "layer", hidden: int = 32, layers: int = 2,
                 extractor: bool | None = True, seed: int = 0) -> Path:
    """Save a tiny ``kind`` (wavlm, wav2vec2, hubert) model; ``extractor`` also saves a feature extractor
    (None: none saved, so the encoder must decide the attention mask from ``feat_extract_norm``)."""
    from transformers import AutoModel, HubertConfig, Wav2Vec2Config, Wav2Vec2FeatureExtractor, WavLMConfig

    config_class = {"wavlm": WavLMConfig, "wav2vec2": Wav2Vec2Config, "hubert": HubertConfig}[kind]
    options = {**CONV, **TRANSFORMER, "num_hidden_layers": layers, "intermediate_size": 2 * hidden}
    if hidden != 32:
        options["conv_dim"] = (hidden,) * 7
    config = config_class(hidden_size=hidden, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer",
                          **options)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    if extractor is not None:
        Wav2Vec2FeatureExtractor(return_attention_mask=norm == "layer", do_normalize=True).save_pretrained(folder)
    return folder


def text_model(folder: Path, hidden: int = 32, seed: int = 0) -> Path:
    """Save a tiny BERT and a WordPiece tokenizer built from our own vocab.txt."""
    from transformers import AutoModel, BertConfig, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab=str(vocab), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=64)
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(folder)
    return folder
