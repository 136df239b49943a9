"""A training run's configuration: the presets (``paper``, ``smoke``), ``TrainConfig`` and ``resolve_config``,
which applies a preset, the caller's overrides and a feature cache's fixed options, and checks the result.
The recipe that runs it is ``model.train``'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import mixers
from model.features import parse_layer
from model.ser import FUSIONS

PRESETS: dict[str, dict] = {
    "paper": {},
    # 5 epochs of the default 1,600-utterance synthetic corpus in about a minute of one CPU core.
    # One thread: at these sizes ops are small, and two OpenMP threads on two shared cores run up
    # to 10x slower than one (measured: 0.12 s against 1.3 s of CPU per step under load).
    "smoke": dict(epochs=5, crop_seconds=2.5, batch_size=16, lr=2e-3, width=128, dropout=0.1,
                  budget=150_000, n_mels=40, text_dim=32, eval_batch_size=16, threads=1),
}


@dataclass
class TrainConfig:
    corpus: str
    mixer: str = "sa"  # name[:kernel]
    preset: str = "paper"
    epochs: int = 20
    crop_seconds: float | None = 5.5  # None: whole utterances
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01  # AdamW's default; the paper does not say
    patience: int = 5
    factor: float = 0.5
    class_weighted: bool = False
    seed: int = 0
    width: int = 1024
    heads: int = 4
    dropout: float = 0.4
    ffn: int = 0
    budget: int = 20_000_000
    depth: int | None = None
    speech_encoder: str = "logmel"  # logmel or hf:NAME_OR_PATH (model.pretrained)
    speech_layer: str | None = None  # last, all (learned weighted sum) or an index; None: last, or the cache's
    features: str | None = None  # a feature cache DIR to read instead of encoding (fixes corpus and encoders)
    n_mels: int = 80
    text_encoder: str = "none"
    text_dim: int = 64
    eval_batch_size: int = 1
    train_split: str = "train"
    dev_split: str | None = None  # None: the corpus's (model.inputs: MSP-Podcast development, RAVDESS validation)
    test_split: str | None = None  # None: the corpus's, each scored (MSP-Podcast test1 and test2)
    skip_bad_audio: bool = False
    device: str = "cpu"
    threads: int | None = None  # intra-op CPU threads; None: PyTorch's default
    fusion: str = "concat"  # concat: U = [S; E] + mixer stack (the paper); gat: model.systems.gat_fusion
    gat_window: int | None = None  # gat: graph neighbours within +-window frames; None: every frame


def resolve_config(corpus: str, mixer: str = "sa", preset: str = "paper", **overrides) -> TrainConfig:
    """The preset's values, then every override that is not None."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    if values.get("fusion") == "gat":  # the fusion paper's weighted cross-entropy, unless asked otherwise
        values.setdefault("class_weighted", True)
    if values.get("features"):
        values["features"] = str(Path(values["features"]).resolve())  # the run reopens it from anywhere
        corpus = _cache_fills(values, {k: v for k, v in overrides.items() if v is not None}, corpus)
    if values.get("speech_layer") is not None:
        values["speech_layer"] = str(parse_layer(values["speech_layer"]))
    config = TrainConfig(corpus=str(corpus), mixer=mixer, preset=preset, **values)
    checks = [(config.epochs >= 1, "epochs >= 1"), (config.batch_size >= 1, "batch_size >= 1"),
              (config.eval_batch_size >= 1, "eval_batch_size >= 1"), (config.lr > 0, "lr > 0"),
              (config.crop_seconds is None or config.crop_seconds > 0, "crop_seconds > 0"),
              (0 <= config.dropout < 1, "0 <= dropout < 1"), (config.patience >= 0, "patience >= 0"),
              (0 < config.factor < 1, "0 < factor < 1"),
              (config.threads is None or config.threads >= 1, "threads >= 1")]
    for ok, expected in checks:
        if not ok:
            raise ValueError(f"expected {expected}; got {asdict(config)}")
    if config.fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {config.fusion!r}; fusions: {', '.join(FUSIONS)}")
    if config.gat_window is not None and config.gat_window < 0:
        raise ValueError(f"expected gat_window >= 0, got {config.gat_window}")
    mixers.parse_spec(config.mixer)
    return config


def _cache_fills(values: dict, given: dict, corpus: str | None) -> str:
    """Options a feature cache fixes (corpus, encoders) filled in from it, over the preset's; ``given`` ones
    (the caller's overrides) must agree."""
    from model.cache import encoder_options

    fixed = encoder_options(values["features"])
    if corpus and str(corpus) != fixed["corpus"]:
        raise ValueError(f"{values['features']} was extracted from {fixed['corpus']}; drop the corpus or use that one")
    for key, value in fixed.items():
        if key == "corpus":
            continue
        if key in given and given[key] != value:
            raise ValueError(f"{values['features']} was extracted with {key} {value!r}; got {given[key]!r}")
        values[key] = value
    return fixed["corpus"]
