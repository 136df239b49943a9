"""Corpus specifications: ``KIND:PATH`` with optional reader options, ``KIND:PATH?name=value&name=value``.

``ravdess:/data/RAVDESS?fold=3``, ``msp-podcast:/data/MSP-Podcast?keep=O,X``,
``csv:iemocap.csv?classes=neu,hap,ang,sad&merge=exc:hap``. A bare ``DIR`` (or ``DIR/manifest.csv``)
means ``synthetic:DIR``, the layout ``bench data synth`` writes. Options given as keyword arguments to
``open_corpus`` take precedence over those in the string, so a spec stored in a run's configuration
reopens the same corpus. (A path holding ``?`` cannot be named this way: rename or link it.)
"""

from __future__ import annotations

from collections.abc import Mapping

from model.corpora.base import DataError


def parse_spec(text: str) -> tuple[str, str, dict[str, str]]:
    """``"KIND:PATH?a=1&b=2"`` -> ``(kind, path, {"a": "1", "b": "2"})``; no kind -> ``synthetic``."""
    kind, sep, rest = text.partition(":")
    if not sep or len(kind) == 1:  # no kind, or a Windows drive letter
        kind, rest = "synthetic", text
    path, _, query = rest.partition("?")
    options = {}
    for item in filter(None, query.split("&")):
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise DataError(f"{text!r}: expected options as name=value joined by &, got {item!r}")
        options[name.strip()] = value.strip()
    if not path.strip():
        raise DataError(f"{text!r}: no path after {kind}:")
    return kind, path.strip(), options


def format_spec(kind: str, path: object, options: Mapping[str, object]) -> str:
    """The inverse of ``parse_spec``; options whose value is None are left out."""
    shown = "&".join(f"{name}={_text(value)}" for name, value in options.items() if value is not None)
    return f"{kind}:{path}" + (f"?{shown}" if shown else "")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)
