"""One look for every figure: a fixed colour and marker per mixer, a line style per results file.

A mixer keeps its colour and marker in every figure (Figure 2, the cost-model check, the
accuracy-latency scatter), so a reader learns them once. Mixers registered later and not listed
here get a colour from a second palette chosen by a hash of their name: stable across runs and
machines, unlike an order-dependent cycle.
"""

from __future__ import annotations

import zlib
from pathlib import Path

# Okabe-Ito (colour-blind safe) for the paper's mechanisms; SA's two kernels share a hue family.
MIXER_STYLE: dict[str, tuple[str, str]] = {
    "sa:naive": ("#000000", "o"),
    "sa:sdpa": ("#7f7f7f", "s"),
    "retnet": ("#E69F00", "^"),
    "lightnet": ("#56B4E9", "v"),
    "gsa": ("#009E73", "D"),
    "fox": ("#CC79A7", "P"),
    "kda": ("#D55E00", "X"),
    "reslstm": ("#0072B2", "h"),
    # The mixers added beyond the paper (Paul Tol's muted palette, apart from Okabe-Ito's hues).
    "gla": ("#882255", "<"),
    "deltanet": ("#44AA99", ">"),
    "gated_deltanet": ("#117733", "p"),
    "hgrn2": ("#332288", "*"),
    "mamba2": ("#DDCC77", "d"),
    "rwkv7": ("#AA4499", "8"),
}
EXTRA_COLOURS = ("#999933", "#88CCEE", "#661100", "#6699CC", "#888888", "#CC6677", "#E7298A", "#1B9E77")
EXTRA_MARKERS = ("H", "1", "2", "3", "4", "+", "x", "|")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
FORMATS = ("png", "svg")


def mixer_style(key: str) -> tuple[str, str]:
    """(colour, marker) of a series key (``sa:naive``, ``kda``, ...)."""
    if key in MIXER_STYLE:
        return MIXER_STYLE[key]
    index = zlib.crc32(key.encode())
    return EXTRA_COLOURS[index % len(EXTRA_COLOURS)], EXTRA_MARKERS[(index // 7) % len(EXTRA_MARKERS)]


def order_keys(keys) -> list[str]:
    """Series keys in a fixed reading order: the paper's mechanisms first, then the rest by name."""
    known = [k for k in MIXER_STYLE if k in set(keys)]
    return known + sorted(set(keys) - set(known))


def line_style(index: int):
    return LINE_STYLES[index % len(LINE_STYLES)]


def save(figure, stem: Path, pdf: bool = False) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` (and ``stem.pdf``); return the paths written."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in (*FORMATS, "pdf") if pdf else FORMATS:
        path = stem.with_suffix(f".{fmt}")
        # A fixed date keeps SVG and PDF output identical between redraws of the same file.
        metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else None
        figure.savefig(path, dpi=150 if fmt == "png" else None, bbox_inches="tight", metadata=metadata)
        written.append(path)
    return written


def frames_axis(ax) -> None:
    """A top axis in wav2vec2 frames (50 per second) over a bottom axis in audio seconds."""
    from plots.analysis import frames_at, seconds_at

    top = ax.secondary_xaxis("top", functions=(frames_at, seconds_at))
    top.set_xlabel("frames (wav2vec2, 50 per second)", fontsize=8)
    top.tick_params(labelsize=7)
