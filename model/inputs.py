"""A training run's inputs: its splits as features, encoded on the fly or read from a feature cache.

On the fly (``TrainConfig.features`` None): the corpus is opened, the training split loaded, its
waveform mean and deviation computed (the paper's normalisation) and applied to every split, and
each utterance encoded whole by the frozen encoders (``model.features.speech_encoder`` /
``text_encoder``). From a cache (``features=DIR``, ``model.cache``): the same tensors are read from
the shards, with the waveform and feature statistics the cache recorded for its training split;
corpus, classes and encoders are the cache's, and any encoder option given must agree with them.
Either way the statistics are those of the training split only, and they go into the run's
``config.json`` beside the encoder names.

Splits: a ``dev_split`` or ``test_split`` left None is the corpus's default (``Corpus.default_splits``:
MSP-Podcast development, then test1 and test2; RAVDESS validation and test; a manifest's
development / validation / dev and test), or, from a cache, the same rule over the splits it stores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from model.corpora.base import DefaultSplits, default_splits
from model.dataset import Encoded, encode, feature_stats, waveform_stats
from model.features import parse_layer, speech_encoder, text_encoder
from model.frontend import SAMPLE_RATE

Stats = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Inputs:
    classes: tuple[str, ...]
    corpus_name: str
    splits: dict[str, Encoded]
    speech_name: str
    speech_layer: str | int  # the layer trained on: last, all or a hidden-state index
    speech_dim: int
    speech_layers: int | None  # L when the model mixes every layer (features.LayerWeights)
    text_name: str  # "none" for speech only
    text_dim: int | None
    crop_frames: int | None  # the encoder's frames in a crop of crop_seconds
    wave_mean: float
    wave_std: float
    speech_stats: Stats  # [D] or [L, D]: the training split's
    text_stats: Stats | None
    names: DefaultSplits  # the splits trained on, picked on and scored on (the tests in order)


def chosen_splits(config, defaults: Callable[[], DefaultSplits]) -> DefaultSplits:
    """``config``'s train / dev / test split names, each one left None taken from ``defaults()`` (called
    only then: a corpus without default names still trains on the ones given)."""
    given = DefaultSplits(config.train_split, config.dev_split, (config.test_split,) if config.test_split else ())
    if given.dev and given.tests:
        return given
    fallback = defaults()
    return DefaultSplits(given.train, given.dev or fallback.dev, given.tests or fallback.tests)


def prepare(config, device: str | torch.device = "cpu") -> Inputs:
    """The train, development and test splits of ``config`` (a ``TrainConfig``) as features."""
    crop = int(config.crop_seconds * SAMPLE_RATE) if config.crop_seconds else None
    if config.features:
        return _from_cache(config, crop)
    from model.data import load_split, open_corpus

    corpus = open_corpus(config.corpus)
    names = chosen_splits(config, corpus.default_splits)
    splits = (names.train, names.dev, *names.tests)
    speech = speech_encoder(config.speech_encoder, config.n_mels, config.speech_layer or "last", device)
    text = text_encoder(config.text_encoder, config.text_dim, device)
    loaded, skipped = load_split(corpus, config.train_split, config.skip_bad_audio)
    wave_mean, wave_std = waveform_stats(loaded)
    data = {config.train_split: encode(loaded, corpus.classes, speech, text, wave_mean, wave_std, skipped)}
    del loaded
    for split in dict.fromkeys(splits[1:]):
        part, skipped = load_split(corpus, split, config.skip_bad_audio)
        data[split] = encode(part, corpus.classes, speech, text, wave_mean, wave_std, skipped)
    train = data[config.train_split]
    return Inputs(tuple(corpus.classes), corpus.name, data, speech.name, parse_layer(config.speech_layer or "last"),
                  speech.dim, getattr(speech, "layers", None),
                  text.name if text else "none", text.dim if text else None, speech.frames(crop) if crop else None,
                  wave_mean, wave_std, feature_stats(train.speech), feature_stats(train.text) if text else None,
                  names)


def _from_cache(config, crop: int | None) -> Inputs:
    from model.cache import FeatureCache, encoder_options

    cache = FeatureCache(config.features)
    if config.train_split.casefold() != cache.train_split.casefold():
        raise ValueError(f"{config.features} normalises with split {cache.train_split!r}; "
                         f"got train_split {config.train_split!r}")
    fixed = encoder_options(config.features)
    differ = {k: getattr(config, k) for k, v in fixed.items() if k != "train_split" and getattr(config, k) != v}
    if differ:  # resolve_config fills these from the cache; a config built by hand must agree with it
        raise ValueError(f"{config.features} was made with {({k: fixed[k] for k in differ})}; got {differ}")
    layer = parse_layer(config.speech_layer) if config.speech_layer is not None else None
    stored = dict.fromkeys(e["split"] for e in cache.index["utterances"])
    names = chosen_splits(config, lambda: default_splits(stored, str(cache.root)))
    data = {split: cache.split(split, layer) for split in (names.train, names.dev, *names.tests)}
    speech_stats, text_stats = cache.stats(layer)
    text = cache.text_info
    return Inputs(cache.classes, cache.corpus_name, data, cache.speech_name(layer), cache.layer_index(layer)[0],
                  cache.speech_info["dim"],
                  cache.speech_layers(layer), text["name"] if text else "none", text["dim"] if text else None,
                  cache.frames(crop) if crop else None, cache.wave_mean, cache.wave_std, speech_stats, text_stats,
                  names)


def apply_normalization(model: torch.nn.Module, inputs: Inputs) -> None:
    """Training-split statistics into the model: per layer into its LayerWeights when it mixes layers."""
    text = inputs.text_stats
    if inputs.speech_layers is None:
        model.set_normalization(inputs.speech_stats, text)
        return
    model.layer_weights.set_normalization(*inputs.speech_stats)
    # The layer mix standardises each layer itself; the model's own speech standardisation is the identity.
    model.set_normalization((torch.zeros(inputs.speech_dim), torch.ones(inputs.speech_dim)), text)


def evaluation_split(resolved: dict, corpus, split: str, skip_bad_audio: bool = False, device: str = "cpu",
                     cached: bool = True) -> Encoded:
    """A split of a trained run's inputs: from its feature cache when it had one (and ``cached``), else
    encoded with its encoders, layer and training-split waveform statistics (``resolved``: its config.json)."""
    from model.data import load_split

    train = resolved["train"]
    layer = resolved.get("speech_layer", "last")
    if train.get("features") and cached:
        from model.cache import FeatureCache

        return FeatureCache(train["features"]).split(split, layer)
    loaded, skipped = load_split(corpus, split, skip_bad_audio)
    speech = speech_encoder(train["speech_encoder"], train["n_mels"], layer, device)
    text = text_encoder(train["text_encoder"], train["text_dim"], device)
    return encode(loaded, corpus.classes, speech, text, resolved["wave_mean"], resolved["wave_std"], skipped)
