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
MODES = ("forward", "train", "stream")
"""``forward``: one inference call. ``train``: forward + backward of a scalar loss (+ AdamW step when
asked). ``stream``: one recurrent step after T frames of context (``bench.modes``)."""
COMBINES = ("sum", "concat")


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
    compile: bool = False
    """Mixer wrapped in ``torch.compile`` (default inductor backend)."""
    cuda_graphs: bool = False
    """The cell's call captured once in a CUDA graph and replayed."""
    bidirectional: bool = False
    """Forward mixer plus a second one on the reversed sequence (``mixers.bidirectional``)."""
    combine: str | None = None
    """How a bidirectional cell joins its two directions (``sum`` or ``concat``); None otherwise."""
    causal: bool | None = None
    """Whether output t depends only on inputs up to t. None resolves to the mixer's own: the
    recurrent mixers are causal, SA is not (causal in ``stream`` mode, a KV cache), a
    bidirectional cell never is."""
    optimizer_step: bool = False
    """``train`` mode only: an AdamW step after the backward pass, inside the timed call."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            _bad(f"unknown mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.bidirectional and self.combine is None:
            object.__setattr__(self, "combine", "sum")
        if not self.bidirectional and self.combine is not None:
            object.__setattr__(self, "combine", None)
        if self.combine is not None and self.combine not in COMBINES:
            _bad(f"unknown combine {self.combine!r}; choose from {', '.join(COMBINES)}")
        if self.mode != "train" and self.optimizer_step:
            _bad(f"--optimizer-step needs mode 'train', got mode {self.mode!r}")
        natural = default_causal(self.mixer, self.mode, self.bidirectional)
        if self.causal is None:
            object.__setattr__(self, "causal", natural)
        elif self.causal != natural and (self.mixer != "sa" or self.bidirectional or self.mode == "stream"):
            _bad(f"{self.spec} in mode {self.mode}{' bidirectional' if self.bidirectional else ''} is "
                 f"{'causal' if natural else 'not causal'} by construction; causal={self.causal} applies "
                 "to softmax attention alone")
        if self.mode == "stream" and self.bidirectional:
            _bad("stream mode steps a causal recurrence; a bidirectional cell has none")

    @property
    def frames(self) -> int:
        return frames(self.seconds)

    @property
    def spec(self) -> str:
        return f"{self.mixer}:{self.kernel}"

    @property
    def key(self) -> tuple:
        return (self.mixer, self.kernel, float(self.seconds), self.dtype, self.batch,
                self.hidden, self.heads, self.device, self.mode, self.compile, self.cuda_graphs,
                self.bidirectional, self.combine, self.causal, self.optimizer_step)

    @property
    def settings(self) -> str:
        """The non-geometry axes as in ids: ``forward``, ``train+adamw-causal-compile-bidir:sum``."""
        parts = [self.mode + ("+adamw" if self.optimizer_step else "")]
        parts.append("causal" if self.causal else "noncausal")
        if self.compile:
            parts.append("compile")
        if self.cuda_graphs:
            parts.append("graphs")
        if self.bidirectional:
            parts.append(f"bidir:{self.combine}")
        return "-".join(parts)

    @property
    def id(self) -> str:
        return f"{self.spec}-{self.seconds:g}s-{self.dtype}-B{self.batch}-D{self.hidden}-H{self.heads}-{self.settings}"


def default_causal(mixer: str, mode: str = "forward", bidirectional: bool = False) -> bool:
    """A cell's causality when nobody asks: recurrent mixers are causal; SA attends to the whole
    utterance at inference and training, and causally over its KV cache when streaming."""
    if bidirectional:
        return False
    if mixer == "sa":
        return mode == "stream"
    return True


def default_mixers(device: str | None = None) -> tuple[str, ...]:
    """Every mixer that can run on ``device`` at its default kernel, with both softmax-attention kernels.

    fla-only mixers (no PyTorch twin) join only on CUDA; ``device=None`` asks whether CUDA is present.
    """
    on_cuda = torch.device(device).type == "cuda" if device is not None else None
    specs = []
    for name in mixers.names(include_fla_only=on_cuda):
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
    compile: bool = False
    cuda_graphs: bool = False
    bidirectional: bool = False
    combine: str = "sum"
    causal: bool | None = None
    """Softmax attention's mask; None keeps each cell's default (``default_causal``)."""
    optimizer_step: bool = False
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
        if self.combine not in COMBINES:
            _bad(f"unknown combine {self.combine!r}; choose from {', '.join(COMBINES)}")
        if self.optimizer_step and "train" not in self.modes:
            _bad("--optimizer-step needs --mode train")
        if self.cuda_graphs and not self.device.startswith("cuda"):
            _bad("--cuda-graphs captures CUDA graphs and needs --device cuda")
        if self.bidirectional and "stream" in self.modes:
            _bad("stream mode steps a causal recurrence; --bidirectional has none")
        if self.causal is False and "stream" in self.modes:
            _bad("stream mode is causal by construction (a KV cache for SA); drop --no-causal")
        if self.causal and self.bidirectional:
            _bad("--causal and --bidirectional contradict each other: a bidirectional cell sees the future")
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
        for spec in self.mixers or default_mixers(self.device):
            name, asked = mixers.parse_spec(spec)
            for mode in self.modes:
                for dtype in self.dtypes:
                    # per dtype: ``auto`` may depend on it (FoX on a GPU whose shared memory fla's tiles exceed)
                    kernel = mixers.resolve_kernel(name, asked, self.device, self.hidden, self.heads,
                                                   DTYPES[dtype_name(dtype)].itemsize)
                    for batch in self.batches:
                        for seconds in self.seconds:
                            out.append(Case(name, kernel, float(seconds), dtype_name(dtype), batch,
                                            self.hidden, self.heads, self.device, mode, **self._options(name, mode)))
        # One cell per key, first kept: a length or dtype given twice, or ``fox`` beside the ``fox:flex``
        # that ``auto`` resolves it to, would otherwise count (and be reported) twice.
        first = {}
        for case in out:
            first.setdefault(case.key, case)
        return list(first.values())

    def _options(self, mixer: str, mode: str) -> dict:
        """The per-case settings; ``causal`` reaches softmax attention only (the others have no mask)."""
        return dict(compile=self.compile, cuda_graphs=self.cuda_graphs, bidirectional=self.bidirectional,
                    combine=self.combine if self.bidirectional else None,
                    causal=self.causal if mixer == "sa" and mode != "stream" else None,
                    optimizer_step=self.optimizer_step and mode == "train")


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
    # Each twin against its `reference` kernel (the same projections around fla's naive op) at 100 s
    # (4,999 frames): the layer-level speed-ups over fla's reference (seconds per naive call, hence 3 reps).
    "reference": Sweep(seconds=(100,), mixers=tuple(f"{m}:{k}" for m in ("retnet", "lightnet", "gsa", "fox", "kda")
                                                    for k in ("torch", "reference")),
                       min_reps=3, budget_s=0.5, timeout_s=1800.0),
}


def preset(name: str, **overrides) -> Sweep:
    """A named preset with the user's overrides (``None`` values leave the preset's own)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
