"""Forgetting attention with PyTorch's FlexAttention: the core of FoX's ``flex`` kernel (``mixers/fox.py``).

FoX's attention is causal softmax attention whose scores carry an additive bias from per-head
scalar log forget gates f_t <= 0 (Lin et al., 2025):

    F_i = sum_{t<=i} f_t,    o_i = sum_{j<=i} softmax_j(scale q_i k_j + F_i - F_j) v_j

FlexAttention expresses exactly this: a ``score_mod`` adds ``F[b, h, i] - F[b, h, j]`` to each
scaled score, and a causal ``BlockMask`` skips every key block wholly in a query block's future.
``torch.compile`` turns the two into one fused kernel (Triton on CUDA, a C++ template on CPU)
that works in tiles with an online softmax: memory is the output, one fp32 log-sum-exp per row
and the fp32 cumulative gates; the T x T matrix never exists.

Why it exists: fla 0.6's ``parallel_forgetting_attn`` does not fit in Hopper's shared memory at
the paper's head size (``mixers.fla_memory.fox_tiles``); FlexAttention chooses its own tiles per device and
dtype, so it runs where fla's kernel cannot.

Compilation. The compiled function is built once per process (``_compiled``) with
``dynamic=True``, and the block mask's index tensors are marked dynamic too (dynamo would otherwise
specialise on their sizes, the number of 128-row blocks): one compilation then serves every length
of two blocks or more, and lengths under 128 (one block) get one more. Measured on CPU, fp32, 4
heads of 64, a cold cache: 21 s for the first call at 499 frames, then 0.06 s at 1,249 and 0.18 s
at 2,499. Without the marks each new block count recompiled (17 to 29 s each; a static compile
recompiles for every T and falls back to eager after dynamo's limit of 8). Inductor's on-disk cache
makes a later process's first call take seconds. Block masks depend only on (T, device): cached.

Gradients. torch 2.13's FlexAttention has no backward on CPU; this core refuses, in one line,
to run there with autograd recording instead of failing in the backward.
"""

from __future__ import annotations

import functools

import torch

DYNAMIC = True
"""Compile for symbolic lengths: one compilation for all T (see the module docstring)."""
NO_EAGER_FALLBACK = "fail_on_recompile_limit_hit"
"""Dynamo's switch, set around each call: past its recompile limit (8 per function: dtypes x grad
modes x batch, head and head sizes) torch would run ``_attend`` eagerly, and eager FlexAttention
builds the T x T scores: timings and memory labelled ``flex`` would be SA's. An error (the cell's
row says so) instead. Set and restored as a plain attribute: 3 us a call on this CPU, where
``config.patch`` took 15 us (a call at 10 s takes about 0.3 ms on a GPU)."""


def _causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def _attend(q, k, v, cum, block_mask, scale: float | None):
    """q, k [B, H, T, K], v [B, H, T, V], cum [B, H, T] fp32 -> [B, H, T, V]. Compiled by ``_compiled``.
    ``scale`` None: 1/sqrt(K) from the (static) head size, so no symbolic float reaches the kernel."""
    from torch.nn.attention.flex_attention import flex_attention

    def forget_bias(score, b, h, q_idx, kv_idx):
        return score + (cum[b, h, q_idx] - cum[b, h, kv_idx])

    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return flex_attention(q, k, v, score_mod=forget_bias, block_mask=block_mask, scale=scale)


@functools.cache
def _compiled():
    return torch.compile(_attend, dynamic=DYNAMIC)


@functools.lru_cache(maxsize=16)
def _block_mask(length: int, device: torch.device):
    from torch.nn.attention.flex_attention import create_block_mask

    # B and H None: one mask broadcast over batch and heads (causality depends on positions only).
    # Never inference tensors: the cache outlives a forward under inference_mode, and FlexAttention's
    # backward saves the mask's tensors (a train call at the same length would fail to).
    with torch.inference_mode(False):
        mask = create_block_mask(_causal, None, None, length, length, device=device)
    for tensor in mask.as_tuple()[2:]:
        if isinstance(tensor, torch.Tensor):
            for dim, size in enumerate(tensor.shape):
                if size > 1:  # block counts; a size-1 dim (one block, or broadcast B, H) stays static
                    torch._dynamo.maybe_mark_dynamic(tensor, dim)
    return mask


def _static_except_length(*tensors: torch.Tensor) -> None:
    """Only T is symbolic: batch, heads and head sizes specialise (one compile per configuration).
    torch 2.13's CPU template miscompiles (C++ error ``cur_kvSplitSize3 was not declared``) when
    a call with other head sizes follows in the same process and they became symbolic."""
    for tensor in tensors:
        for dim in range(tensor.dim()):
            if dim != 2:
                torch._dynamo.mark_static(tensor, dim)


def backward_available(device: torch.device | str) -> bool:
    """Whether FlexAttention can differentiate on ``device`` (torch 2.13: CUDA, not CPU)."""
    return torch.device(device).type != "cpu"


def flex_forgetting_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                              scale: float | None = None) -> torch.Tensor:
    """q, k: [B, H, T, K]; v: [B, H, T, V]; g: [B, H, T] log forget gates (<= 0).

    Returns o: [B, T, H, V] in v's dtype, the layout ``mixers.cores.blockwise_fox`` returns.
    """
    if q.dim() != 4 or k.shape != q.shape or v.shape[:3] != q.shape[:3] or g.shape != q.shape[:3]:
        raise ValueError(
            "expected q, k [B, H, T, K], v [B, H, T, V], g [B, H, T]; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}, {tuple(g.shape)}"
        )
    records = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, g))
    if records and not backward_available(q.device):
        raise NotImplementedError(
            f"fox:flex is inference-only on CPU (FlexAttention in torch {torch.__version__} has no CPU "
            "backward); train with fox:torch, or run fox:flex on CUDA"
        )
    # [B, H, T]: F_i in fp32, whatever the inputs' dtype, as fla keeps its gate sums
    cum = g.float().cumsum(-1)
    _static_except_length(q, k, v, cum)
    o = _no_eager_fallback(_compiled(), q, k, v, cum, _block_mask(q.shape[2], q.device), scale)
    return o.transpose(1, 2)


def _no_eager_fallback(fn, *args):
    """``fn(*args)`` with dynamo's recompile limit an error, not an eager fallback (``NO_EAGER_FALLBACK``);
    torch versions without the switch run it as it is."""
    config = torch._dynamo.config
    if not hasattr(config, NO_EAGER_FALLBACK):
        return fn(*args)
    before = getattr(config, NO_EAGER_FALLBACK)
    setattr(config, NO_EAGER_FALLBACK, True)
    try:
        return fn(*args)
    finally:
        setattr(config, NO_EAGER_FALLBACK, before)
