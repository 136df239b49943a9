"""``bench train`` over mixers x speech encoders (Table 1 of "How Attention Shapes Emotion"), resumably.

Each combination trains into ``OUT/<encoder>/<mixer>/`` (names made path-safe: ``hf:microsoft/wavlm-large``
-> ``hf-microsoft-wavlm-large``, ``sa:naive`` -> ``sa-naive``). Every configuration is resolved before
anything trains, so a typo in the last mixer fails at once. A run folder that already holds a run is
continued, and one that finished is skipped, provided its saved configuration is the one asked for
(otherwise a one-line error: nothing is overwritten). After training, the best checkpoint is also
scored on any further test splits given (``--test-split test1,test2``: ``test1`` in training, then
``test2``); those accuracy rows are written once, so a rerun of the grid adds none twice. With no
``--test-split`` training itself scores every default test split of the corpus (MSP-Podcast: test1 and
test2; ``Corpus.default_splits``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from model.metrics import read_rows


@dataclass(frozen=True)
class Cell:
    mixer: str
    encoder: str | None  # None: the configuration's own (a single run, or a feature cache's)
    out: Path


def split_list(value: str | None) -> list[str]:
    """``"sa, retnet,kda"`` -> ``["sa", "retnet", "kda"]``; duplicates and empty items are errors."""
    if value is None:
        return []
    items = [v.strip() for v in value.split(",")]
    if not all(items) or len(set(items)) != len(items):
        raise ValueError(f"expected a comma-separated list of distinct names, got {value!r}")
    return items


def slug(name: str) -> str:
    """A path-safe folder name for a mixer or encoder spec."""
    kind, sep, rest = name.partition(":")
    if sep and kind == "hf" and Path(rest).exists():  # a local model folder: its own name
        rest = Path(rest).resolve().name
    text = f"{kind}-{rest}" if sep else name
    return re.sub(r"[^A-Za-z0-9._+]+", "-", text).strip("-") or "x"


def cells(mixers: list[str], encoders: list[str | None], out: Path) -> list[Cell]:
    """One cell per (encoder, mixer); one combination keeps ``out`` itself as its run folder."""
    if len(mixers) * len(encoders) == 1:
        return [Cell(mixers[0], encoders[0], Path(out))]
    for names, what in ((mixers, "mixers"), ([e for e in encoders if e is not None], "speech encoders")):
        folders = [slug(n) for n in names]
        if len(set(folders)) != len(folders):
            raise ValueError(f"{what} {names} share a folder name ({folders}); name them apart")
    return [Cell(m, e, Path(out) / slug(e or "default") / slug(m)) for e in encoders for m in mixers]


def check_resumable(config, out: Path) -> bool:
    """True when ``out`` holds a run of exactly ``config`` (continue it); False when there is none."""
    saved = Path(out) / "config.json"
    if not (Path(out) / "last.pt").exists():
        return False
    if not saved.is_file():
        raise ValueError(f"{out} holds a checkpoint but no config.json; move it away or choose another --out")
    before = json.loads(saved.read_text())["train"]
    differ = sorted(k for k, v in asdict(config).items()
                    if before.get(k) != v and k != "device" and not _old_default(k, before.get(k), v))
    if differ:
        raise ValueError(f"{out} holds a run with other settings ({', '.join(differ)}); "
                         f"choose another --out or remove it")
    return True


def plan(corpus: str | None, preset: str, overrides: dict, mixers: list[str], encoders: list[str | None],
         out: Path) -> list[tuple[Cell, object]]:
    """Every cell with its resolved ``TrainConfig``; ValueError before anything trains if one is wrong."""
    from model.train_config import resolve_config

    planned = []
    for cell in cells(mixers, encoders, out):
        options = {**overrides, **({"speech_encoder": cell.encoder} if cell.encoder is not None else {})}
        planned.append((cell, resolve_config(corpus, cell.mixer, preset, **options)))
    return planned


def run_cell(config, out: Path, results: Path | None, extra_splits: list[str], resume: bool,
             report: Callable[[str], None], progress: Callable | None) -> dict:
    """Train (or continue, or skip) one run, then score its best checkpoint on ``extra_splits`` once."""
    from model.evaluate import evaluate_run
    from model.train import run

    final = run(config, out, resume=resume, results=results, report=report, progress=progress)
    scored = set()
    if results is not None and Path(results).is_file():
        scored = {r.get("split") for r in read_rows(results, "accuracy") if r.get("run_dir") == str(out)}
    for split in extra_splits:
        if split in scored:
            report(f"{out}: {split} already scored in {results}")
            continue
        result = evaluate_run(out, split, results=results, device=config.device)
        final[split] = asdict(result)
        report(f"{out}, {split}: macro-F1 {result.macro_f1:.4f} UAR {result.uar:.4f} (n={result.n})")
    return final


def run_grid(planned: list[tuple[Cell, object]], results: Path | None, extra_splits: list[str],
             report: Callable[[str], None], progress: Callable | None) -> dict[Path, dict]:
    """Every cell in order, each continued or skipped when its folder already holds it; final scores by folder."""
    finals = {}
    for k, (cell, config) in enumerate(planned, start=1):
        resume = check_resumable(config, cell.out)
        state = ("finished: skipped" if _finished(cell.out) else "continuing") if resume else "training"
        report(f"run {k}/{len(planned)}: {config.speech_encoder} x {cell.mixer} -> {cell.out} ({state})")
        finals[cell.out] = run_cell(config, cell.out, results, extra_splits, resume, report, progress)
    return finals


def _finished(out: Path) -> bool:
    from model import checkpoint

    return bool(checkpoint.load(Path(out) / "last.pt").get("finished"))


# Runs from before splits defaulted to the corpus's saved these names; wherever such a run could train
# (no MSP-Podcast: it has no "test"), they name the same splits the corpus defaults name now.
_OLD_DEFAULTS = {"dev_split": "development", "test_split": "test"}


def _old_default(key: str, saved, asked) -> bool:
    return asked is None and key in _OLD_DEFAULTS and saved == _OLD_DEFAULTS[key]
