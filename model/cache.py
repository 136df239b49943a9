"""A feature cache: every utterance of a corpus encoded once by frozen encoders, stored in safetensors
shards, and read back by training instead of running the encoders (``bench train --features DIR``).

Layout of ``DIR`` (``model.extract`` writes it; format 1):

- ``index.json``: the settings (corpus spec, classes, each encoder's ``describe()`` with its config
  and weights hashes and its frame formula, dtype, training split, shard size) and the TRAINING
  split's waveform mean and deviation, applied to every split before encoding (the paper's
  normalisation). Once complete: ``shards`` (file, sha256, bytes, split, utterances) and
  ``utterances`` (id, split, label, class index, shard, speech key, frames, text key, tokens,
  samples), and ``stats`` (the training split's feature mean and deviation, file and sha256). The code
  that made it (``bench.identity``: mixbench_version, git_commit, git_dirty, source_sha256; a cache
  resumed by other code lists the earlier records in ``earlier_code``); not a setting a rerun must match.
- ``shard-00000.safetensors``, ...: ``"<position>/speech"`` [M, D] (or [M, L, D] with every layer)
  and ``"<position>/text"`` [N, D_t] per utterance; a shard never spans two splits.
- ``stats.safetensors``: ``speech_mean``/``speech_std`` ([D] or [L, D]) and ``text_mean``/``text_std``.
- ``progress.jsonl``, only while extraction runs: one line per completed shard (resumption).

Reading: ``FeatureCache(DIR).split(name, layer)`` is an ``Encoded`` whose speech and text are
``StoredFeatures``: sequences that read one utterance (or just a crop's frames) from its shard on
access, through safetensors' memory-mapped ``safe_open``. A cache of every layer serves any layer
(``"last"`` is the last hidden state, bit for bit ``last_hidden_state``), or all of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open

from model.dataset import Encoded
from model.f0 import split_f0
from model.features import parse_layer
from model.frontend import conv_frames

FORMAT = 1
INDEX, STATS, JOURNAL = "index.json", "stats.safetensors", "progress.jsonl"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_index(root: Path) -> dict:
    path = Path(root) / INDEX
    if not path.is_file():
        raise ValueError(f"{root} is not a feature cache: no {INDEX} in it (make one with bench features extract)")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"{path}: cache format {index.get('format')!r}, this code reads format {FORMAT}")
    return index


def verify(root: Path) -> list[str]:
    """Every problem found in a complete cache (empty: sound): checksums, sizes, keys, shapes, dtypes."""
    root = Path(root)
    index = read_index(root)
    if not index.get("complete"):
        return [f"{root}: extraction has not finished (rerun bench features extract with the same options)"]
    problems, by_shard = [], {}
    for entry in index["utterances"]:
        by_shard.setdefault(entry["shard"], []).append(entry)
    files = [(s["file"], s["sha256"], s["bytes"]) for s in index["shards"]]
    files.append((index["stats"]["file"], index["stats"]["sha256"], index["stats"]["bytes"]))
    for name, sha, size in files:
        path = root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != size:
            problems.append(f"{name}: {path.stat().st_size} bytes, index says {size}")
        elif sha256_file(path) != sha:
            problems.append(f"{name}: sha256 differs from the index (corrupted)")
    if problems:
        return problems
    expected = _SAFETENSORS_DTYPES[index["dtype"]]
    for shard, entries in by_shard.items():
        with safe_open(root / index["shards"][shard]["file"], framework="pt") as f:
            keys = set(f.keys())
            for entry in entries:
                for key, count in ((entry["speech_key"], entry["frames"]), (entry["text_key"], entry["tokens"])):
                    if key is None:
                        continue
                    if key not in keys:
                        problems.append(f"shard {shard}: key {key} ({entry['id']}) missing")
                        continue
                    view = f.get_slice(key)
                    if view.get_shape()[0] != count or view.get_dtype() != expected:
                        problems.append(f"shard {shard}: {key} is {view.get_dtype()} {view.get_shape()}, "
                                        f"index says {expected} with {count} rows")
    return problems


class StoredFeatures(Sequence):
    """Per-utterance tensors in shards, read on access as float32 ([M, D], or one layer of [M, L, D])."""

    def __init__(self, root: Path, files: list[str], keys: list[str], frames: list[int], layer: int | None = None):
        self.root, self.files, self.keys, self.frames, self.layer = Path(root), files, keys, frames, layer
        self._open: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def _handle(self, i: int):
        name = self.files[i]
        if name not in self._open:
            self._open[name] = safe_open(self.root / name, framework="pt")
        return self._open[name]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.crop(i, 0, self.frames[i])

    def crop(self, i: int, start: int, frames: int) -> torch.Tensor:
        """Frames ``start : start + frames`` of utterance ``i``, read without the rest of it."""
        view = self._handle(i).get_slice(self.keys[i])
        stop = min(start + frames, self.frames[i])
        x = view[start:stop] if self.layer is None else view[start:stop, self.layer]
        return x.float()

    def __getstate__(self) -> dict:  # open handles do not pickle (DataLoader workers); reopen lazily
        return {**self.__dict__, "_open": {}}


class FeatureCache:
    """A complete cache, opened for training: its corpus, encoders, statistics and splits."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.index = read_index(self.root)
        if not self.index.get("complete"):
            raise ValueError(f"{self.root}: extraction has not finished; rerun bench features extract with the same "
                             "options to resume it")
        self.corpus, self.corpus_name = self.index["corpus"], self.index["corpus_name"]
        self.classes = tuple(self.index["classes"])
        self.speech_info, self.text_info = self.index["speech"], self.index["text"]
        self.wave_mean, self.wave_std = self.index["wave_mean"], self.index["wave_std"]
        self.train_split = self.index["train_split"]

    def frames(self, samples: int) -> int:
        """The speech encoder's frame count for ``samples`` samples, from the formula the index records."""
        return conv_frames(samples, self.speech_info["frame_kernels"], self.speech_info["frame_strides"])

    def layer_index(self, layer: str | int | None) -> tuple[str | int, int | None]:
        """The training layer (None: the cache's own) and the stored layer it reads (None: all, or the only one)."""
        stored = self.speech_info.get("layer", "last")
        if layer is None:
            return stored, None
        layer = parse_layer(layer)
        if stored != "all":
            if layer != stored:
                raise ValueError(f"{self.root} stores speech layer {stored!r} only; got layer {layer!r} "
                                 "(extract with --layer all to train on any layer)")
            return layer, None
        count = self.speech_info["layers"]
        if layer == "all":
            return layer, None
        if layer == "last":
            return layer, count - 1
        if not 0 <= layer < count:
            raise ValueError(f"{self.root} stores hidden states 0..{count - 1}; got layer {layer}")
        return layer, layer

    def speech_name(self, layer: str | int | None) -> str:
        chosen, _ = self.layer_index(layer)
        base, f0 = split_f0(self.speech_info["name"])  # the layer goes before +f0, as WithF0 names it
        base = base.split("@")[0]
        return (base if chosen == "last" else f"{base}@{chosen}") + f0

    def speech_layers(self, layer: str | int | None) -> int | None:
        """L when training sees every layer, else None."""
        chosen, _ = self.layer_index(layer)
        return self.speech_info["layers"] if chosen == "all" else None

    def split(self, name: str, layer: str | int | None = None) -> Encoded:
        entries = [e for e in self.index["utterances"] if e["split"].casefold() == name.casefold()]
        if not entries:
            splits = sorted({e["split"] for e in self.index["utterances"]})
            raise ValueError(f"{self.root}: split {name!r} has no utterances (splits present: {', '.join(splits)})")
        _, picked = self.layer_index(layer)
        files = [self.index["shards"][e["shard"]]["file"] for e in entries]
        speech = StoredFeatures(self.root, files, [e["speech_key"] for e in entries], [e["frames"] for e in entries],
                                picked)
        text = None
        if self.text_info is not None:
            text = StoredFeatures(self.root, files, [e["text_key"] for e in entries], [e["tokens"] for e in entries])
        skipped = sum(1 for s in self.index.get("skipped", []) if s["split"].casefold() == name.casefold())
        labels = torch.tensor([e["class"] for e in entries], dtype=torch.long)
        return Encoded([e["id"] for e in entries], labels, speech, text, skipped)

    def stats(self, layer: str | int | None = None) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                          tuple[torch.Tensor, torch.Tensor] | None]:
        """The training split's feature (mean, std): speech ([D] or [L, D]) and text ([D_t]) or None."""
        _, picked = self.layer_index(layer)
        with safe_open(self.root / self.index["stats"]["file"], framework="pt") as f:
            mean, std = f.get_tensor("speech_mean"), f.get_tensor("speech_std")
            if picked is not None:
                mean, std = mean[picked], std[picked]
            text = (f.get_tensor("text_mean"), f.get_tensor("text_std")) if self.text_info is not None else None
        return (mean, std), text


def encoder_options(root: str | Path) -> dict:
    """The ``TrainConfig`` fields a cache fixes: its corpus and its encoders as ``speech_encoder`` etc. spell them."""
    index = read_index(root)
    speech, text = index["speech"], index["text"]
    options = {"corpus": index["corpus"], "train_split": index["train_split"]}
    base, f0 = split_f0(speech["name"])
    if base.startswith("logmel"):  # NAME+f0 stores one more column than NAME's features
        options.update(speech_encoder="logmel" + f0, n_mels=speech["dim"] - (1 if f0 else 0))
    else:
        options["speech_encoder"] = base.split("@")[0] + f0
    if text is None:
        options["text_encoder"] = "none"
    elif text["name"].startswith("words"):
        options.update(text_encoder="words", text_dim=text["dim"])
    else:
        options["text_encoder"] = text["name"]
    return options
