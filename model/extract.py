"""``bench features extract``: encode every utterance of every split once into a feature cache
(layout in ``model.cache``), resumable after any interruption, ``kill -9`` included.

Order: the training split first, then the others as the corpus lists them; position p is the p-th
utterance of that plan. Utterances are encoded one at a time by ``dataset.encode_utterance`` (the
function training on the fly uses, so the cache holds the same tensors bit for bit) and buffered;
a shard is closed when it reaches ``shard_mb`` megabytes or ``shard_utterances`` utterances or its
split ends. Closing a shard: bytes serialised, sha256 taken, written to a temporary file, fsynced,
renamed, then one line appended (and fsynced) to ``progress.jsonl``. A kill therefore loses at most
the open shard. On rerun the settings must match ``index.json`` exactly (corpus, encoders with their
config and weights hashes, dtype, shard size), every journaled shard is re-hashed (a bad one and all
after it are redone), files no line names are deleted, and encoding continues at the first
position not in a complete shard: no utterance is stored twice. Last, the training split's feature
statistics are computed by reading its shards back, ``index.json`` is completed and the journal removed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as save_tensors

from bench.identity import carried, code_identity
from model.cache import DTYPES, FORMAT, INDEX, JOURNAL, STATS, FeatureCache, StoredFeatures, sha256_file
from model.checkpoint import write_atomic
from model.data import DataError, Utterance, format_spec, load_audio, open_corpus, parse_spec
from model.dataset import encode_utterance, feature_stats, waveform_stats
from model.frontend import SpeechEncoder, TextEncoder


def plan(corpus, train_split: str) -> list[Utterance]:
    """Every utterance, the training split's first (its statistics normalise all the others)."""
    splits = list(corpus.splits())
    train = next((s for s in splits if s.casefold() == train_split.casefold()), None)
    if train is None:
        raise ValueError(f"training split {train_split!r} not in the corpus (splits: {', '.join(splits)})")
    return [u for split in [train] + [s for s in splits if s != train] for u in corpus.utterances(split)]


def _describe(encoder, speech: bool) -> dict:
    needs = ("describe", "frame_kernels", "frame_strides") if speech else ("describe",)
    missing = [name for name in needs if not hasattr(encoder, name)]
    if missing:
        raise ValueError(f"encoder {getattr(encoder, 'name', encoder)!r} lacks {', '.join(missing)}, "
                         "so a cache cannot record it")
    return encoder.describe()


def extract(corpus_spec: str, out: Path, speech: SpeechEncoder, text: TextEncoder | None = None,
            train_split: str = "train", dtype: str = "float32", shard_mb: float = 256.0, shard_utterances: int = 0,
            skip_bad_audio: bool = False, on_utterance: Callable[[int, int], None] | None = None,
            report: Callable[[str], None] = print) -> FeatureCache:
    """Extract (or resume, or find complete) the cache in ``out``; ``on_utterance(done, total)`` after each."""
    if dtype not in DTYPES:
        raise ValueError(f"expected dtype one of {', '.join(DTYPES)}; got {dtype!r}")
    if shard_mb <= 0 or shard_utterances < 0:
        raise ValueError(f"expected shard_mb > 0 and shard_utterances >= 0; got {shard_mb} and {shard_utterances}")
    out = Path(out)
    corpus = open_corpus(corpus_spec)
    utterances = plan(corpus, train_split)
    settings = {**_settings(corpus, corpus_spec, utterances, speech, text), "dtype": dtype,
                "shard_bytes": int(shard_mb * 2**20), "shard_utterances": shard_utterances,
                "skip_bad_audio": skip_bad_audio}
    index = _start(out, settings, utterances, skip_bad_audio, report)
    if index.get("complete"):
        report(f"{out}: complete, {len(index['utterances'])} utterances in {len(index['shards'])} shards")
        return FeatureCache(out)
    shards = _resume(out, report)
    position = shards[-1]["next"] if shards else 0
    if on_utterance:
        on_utterance(position, len(utterances))
    buffer: dict[str, torch.Tensor] = {}
    entries, skipped, size = [], [], 0
    for p in range(position, len(utterances)):
        utterance = utterances[p]
        try:
            samples = load_audio(utterance)
        except DataError:
            if not skip_bad_audio:
                raise
            skipped.append({"position": p, "id": utterance.id, "split": utterance.split, "source": utterance.source})
        else:
            features, tokens = encode_utterance(samples, utterance.transcript, speech, text, index["wave_mean"],
                                                index["wave_std"])
            entry = _entry(p, utterance, corpus.classes, len(shards), features, tokens, samples)
            buffer[entry["speech_key"]] = features.to(DTYPES[dtype]).contiguous()
            if tokens is not None:
                buffer[entry["text_key"]] = tokens.to(DTYPES[dtype]).contiguous()
            size += sum(buffer[k].numel() * buffer[k].element_size() for k in (entry["speech_key"], entry["text_key"])
                        if k is not None)
            entries.append(entry)
        last = p + 1 == len(utterances)
        full = size >= settings["shard_bytes"] or (shard_utterances and len(entries) + len(skipped) >= shard_utterances)
        if last or full or utterances[p + 1].split != utterance.split:
            shards.append(_close(out, len(shards), utterance.split, buffer, entries, skipped, p + 1))
            buffer, entries, skipped, size = {}, [], [], 0
        if on_utterance:
            on_utterance(p + 1, len(utterances))
    return _finish(out, index, shards, report)


def _settings(corpus, corpus_spec: str, utterances: list[Utterance], speech: SpeechEncoder,
              text: TextEncoder | None) -> dict:
    """What a cache is of: a rerun must match every entry to resume it."""
    kind, path, options = parse_spec(getattr(corpus, "spec", str(corpus_spec)))
    listing = "\n".join(f"{u.split}/{u.id}/{u.label}" for u in utterances)
    return {"format": FORMAT,
            "corpus": format_spec(kind, Path(path).resolve(), options),  # absolute: training may run elsewhere
            "corpus_name": corpus.name, "classes": list(corpus.classes), "speech": _describe(speech, True),
            "text": _describe(text, False) if text is not None else None, "train_split": utterances[0].split,
            "utterance_count": len(utterances), "ids": hashlib.sha256(listing.encode()).hexdigest()}


def _entry(p: int, utterance: Utterance, classes: tuple[str, ...], shard: int, features: torch.Tensor,
           tokens: torch.Tensor | None, samples: np.ndarray) -> dict:
    if utterance.label not in classes:
        raise ValueError(f"{utterance.source}: label {utterance.label!r} is not one of {', '.join(classes)}")
    return {"position": p, "id": utterance.id, "split": utterance.split, "label": utterance.label,
            "class": classes.index(utterance.label), "shard": shard, "speech_key": f"{p:08d}/speech",
            "frames": int(features.shape[0]), "text_key": f"{p:08d}/text" if tokens is not None else None,
            "tokens": int(tokens.shape[0]) if tokens is not None else None, "samples": int(len(samples))}


def _start(out: Path, settings: dict, utterances: list[Utterance], skip_bad_audio: bool,
           report: Callable[[str], None]) -> dict:
    """The index: the existing one if its settings match, else a new one with the training split's waveform stats."""
    path = out / INDEX
    if path.is_file():
        index = json.loads(path.read_text())
        differ = [k for k in settings if index.get(k) != settings[k]]
        if differ:
            raise ValueError(f"{out} holds a feature cache made with other settings ({', '.join(differ)} differ); "
                             "use another --out or the same options")
        return index
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and holds no {INDEX}; choose an empty or new --out")
    out.mkdir(parents=True, exist_ok=True)
    report(f"waveform statistics of the training split {settings['train_split']!r}")
    train = [u for u in utterances if u.split == settings["train_split"]]
    wave_mean, wave_std = waveform_stats(_readable(train, skip_bad_audio))
    index = {**settings, "wave_mean": wave_mean, "wave_std": wave_std, "complete": False, **code_identity()}
    write_atomic(path, (json.dumps(index, indent=1) + "\n").encode())
    return index


def _readable(utterances: list[Utterance], skip_bad_audio: bool):
    for utterance in utterances:
        try:
            yield utterance, load_audio(utterance)
        except DataError:
            if not skip_bad_audio:
                raise


def _resume(out: Path, report: Callable[[str], None]) -> list[dict]:
    """The journal's complete, verified shards; a torn last line, a bad shard and what follows are dropped."""
    journal, shards = out / JOURNAL, []
    lines = journal.read_text().splitlines(keepends=True) if journal.is_file() else []
    for number, line in enumerate(lines):
        try:
            shard = json.loads(line) if line.endswith("\n") else None
        except json.JSONDecodeError:
            shard = None
        path = out / shard["file"] if shard else None
        if shard is None or shard["shard"] != number or not path.is_file() or sha256_file(path) != shard["sha256"]:
            report(f"{out}: shard {number} incomplete or corrupted; redoing from there")
            break
        shards.append(shard)
    if len(shards) != len(lines):
        write_atomic(journal, "".join(json.dumps(s) + "\n" for s in shards).encode())
    keep = {s["file"] for s in shards} | {INDEX, JOURNAL}
    for path in out.iterdir():
        if path.name not in keep and (path.name.startswith("shard-") or path.name.endswith(".tmp")
                                      or path.name == STATS):
            path.unlink()
    if shards:
        report(f"{out}: resuming after {len(shards)} complete shards ({shards[-1]['next']} utterances)")
    return shards


def _close(out: Path, number: int, split: str, buffer: dict, entries: list[dict], skipped: list[dict],
           next_position: int) -> dict:
    name = f"shard-{number:05d}.safetensors"
    # One metadata key: safetensors writes several in hash order, which differs between processes,
    # and a resumed shard must be byte-identical to the one an uninterrupted run writes.
    data = save_tensors(buffer, metadata={"mixbench": json.dumps({"shard": number, "split": split})})
    write_atomic(out / name, data)
    shard = {"shard": number, "file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
             "split": split, "entries": entries, "skipped": skipped, "next": next_position}
    with open(out / JOURNAL, "a", encoding="utf-8") as f:
        f.write(json.dumps(shard) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return shard


def _finish(out: Path, index: dict, shards: list[dict], report: Callable[[str], None]) -> FeatureCache:
    utterances = [e for s in shards for e in s["entries"]]
    final = {**index, **carried(index), "complete": True, "skipped": [k for s in shards for k in s["skipped"]],
             "shards": [{k: s[k] for k in ("file", "sha256", "bytes", "split")} | {"utterances": len(s["entries"])}
                        for s in shards], "utterances": utterances}
    # Statistics of the training split, read back from its shards in order (what training on the fly computes).
    train = [e for e in utterances if e["split"] == index["train_split"]]
    files = [shards[e["shard"]]["file"] for e in train]
    speech = StoredFeatures(out, files, [e["speech_key"] for e in train], [e["frames"] for e in train])
    tensors = dict(zip(("speech_mean", "speech_std"), feature_stats(speech), strict=True))
    if index["text"] is not None:
        text = StoredFeatures(out, files, [e["text_key"] for e in train], [e["tokens"] for e in train])
        tensors.update(zip(("text_mean", "text_std"), feature_stats(text), strict=True))
    data = save_tensors(tensors)
    write_atomic(out / STATS, data)
    final["stats"] = {"file": STATS, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    write_atomic(out / INDEX, (json.dumps(final, indent=1) + "\n").encode())
    (out / JOURNAL).unlink(missing_ok=True)
    report(f"{out}: {len(utterances)} utterances in {len(shards)} shards")
    return FeatureCache(out)
