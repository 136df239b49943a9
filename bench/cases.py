"""The sweep grid: mixers x audio seconds x dtype x mode x batch, as frozen cases built from presets.

Audio seconds become frames with wav2vec2's convolutional front end (XLSR runs at 50 frames/s):
a 400-sample receptive field and a 320-sample hop at 16 kHz, so ``floor((s*16000 - 400)/320) + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

import mixers

SAMPLE_RATE = 16_000
RECEPTIVE_FIELD = 400
HOP = 320

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_ALIASES = {"float32": "fp32", "float": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16"}
MODES = ("forward",)


def frames(seconds: float) -> int:
    """Frames wav2vec2's front end produces for ``seconds`` of 16 kHz audio (10 s -> 499)."""
    if seconds * SAMPLE_RATE < RECEPTIVE_FIELD:
        raise ValueError(f"audio must be at least {RECEPTIVE_FIELD / SAMPLE_RATE} s long, got {seconds} s")
    return math.floor((seconds * SAMPLE_RATE - RECEPTIVE_FIELD) / HOP) + 1


def dtype_name(text: str) -> str:
    """Canonical dtype name (``fp32``, ``bf16``, ``fp16``) for a user's spelling."""
    name = DTYPE_ALIASES.get(text.strip().lower(), text.strip().lower())
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {text!r}; choose from {', '.join(DTYPES)}")
    return name


@dataclass(frozen=True)
class Case:
    """One cell of a sweep. ``key`` identifies it across runs, so a resumed sweep skips it."""

    mixer: str
    kernel: str
    seconds: float
    dtype: str
    batch: int
    hidden: int
    heads: int
    device: str
    mode: str = "forward"

    @property
    def frames(self) -> int:
        return frames(self.seconds)

    @property
    def spec(self) -> str:
        return f"{self.mixer}:{self.kernel}"

    @property
    def key(self) -> tuple:
        return (self.mixer, self.kernel, float(self.seconds), self.dtype, self.batch,
                self.hidden, self.heads, self.device, self.mode)

    @property
    def id(self) -> str:
        return f"{self.spec}-{self.seconds:g}s-{self.dtype}-B{self.batch}-D{self.hidden}-H{self.heads}-{self.mode}"


def default_mixers() -> tuple[str, ...]:
    """Every registered mixer at its default kernel, with both softmax-attention kernels."""
    specs = []
    for name in mixers.names():
        if name == "sa":
            specs += ["sa:sdpa", "sa:naive"]
        else:
            specs.append(name)
    return tuple(specs)


@dataclass(frozen=True)
class Sweep:
    """The axes of a sweep; ``cases()`` crosses them. ``mixers=None`` means ``default_mixers()``."""

    seconds: tuple[float, ...]
    mixers: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] = ("fp32",)
    batches: tuple[int, ...] = (1,)
    modes: tuple[str, ...] = ("forward",)
    hidden: int = 1024
    heads: int = 4
    device: str = "cpu"
    min_reps: int = 10
    budget_s: float = 1.0
    timeout_s: float = 600.0
    extra: dict = field(default_factory=dict, compare=False)

    def validate(self) -> None:
        """Fail before any work, with one line naming the bad value."""
        for s in self.seconds:
            if s <= 0:
                _bad(f"seconds must be positive, got {s}")
            frames(s)
        for b in self.batches:
            if b < 1:
                _bad(f"batch must be >= 1, got {b}")
        for m in self.modes:
            if m not in MODES:
                _bad(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
        for d in self.dtypes:
            dtype_name(d)
        if self.hidden < 1 or self.heads < 1 or self.hidden % self.heads:
            _bad(f"hidden must be a positive multiple of heads, got hidden={self.hidden}, heads={self.heads}")
        if self.min_reps < 1:
            _bad(f"reps must be >= 1, got {self.min_reps}")
        if self.budget_s < 0 or self.timeout_s <= 0:
            _bad(f"budget must be >= 0 and timeout > 0, got {self.budget_s} and {self.timeout_s}")
        for spec in self.mixers or ():
            mixers.parse_spec(spec)

    def cases(self) -> list[Case]:
        self.validate()
        out = []
        for spec in self.mixers or default_mixers():
            name, kernel = mixers.parse_spec(spec)
            kernel = mixers.resolve_kernel(name, kernel, self.device)
            for mode in self.modes:
                for dtype in self.dtypes:
                    for batch in self.batches:
                        for seconds in self.seconds:
                            out.append(Case(name, kernel, float(seconds), dtype_name(dtype), batch,
                                            self.hidden, self.heads, self.device, mode))
        return out


def _bad(message: str):
    raise ValueError(message)


# Presets fix the axes; the device is the user's (``bench sweep --device``, default CUDA when present).
PRESETS: dict[str, Sweep] = {
    # The paper's Figure 2: batch 1, fp32, forward at inference, 10 s to 400 s.
    "paper": Sweep(seconds=(10, 25, 50, 100, 200, 300, 400)),
    # A 2-core CPU finishes every mixer in a few minutes and still sees SA's quadratic bend.
    "quick": Sweep(seconds=(10, 25, 50, 100), budget_s=0.5),
    # Long lengths on CPU, for the scaling slopes and the 400 s speed-ups (tens of minutes).
    "scaling": Sweep(seconds=(100, 200, 400), budget_s=0.5, timeout_s=1800.0),
}


def preset(name: str, **overrides) -> Sweep:
    """A named preset with the user's overrides (``None`` values leave the preset's own)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
