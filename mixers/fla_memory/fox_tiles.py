"""Whether fla 0.6's forgetting-attention kernel fits a CUDA device, decided before anything runs.

fla's ``parallel_forgetting_attn`` calls ``fla.ops.attn.parallel.parallel_attn_fwd``, which picks
its tiles from the device's opt-in shared memory per block (``fla.utils.check_shared_mem``, which
reads Triton's ``max_shared_mem``, the same number as torch's ``shared_memory_per_block_optin``):

    device opt-in >= 232,448 (H100 class)   BS = min(64, p2(T)), BK = min(256, p2(K)), BV = min(256, p2(V))
    device opt-in >= 166,912 (A100 class)   BS = min(32, p2(T)), BK = min(256, p2(K)), BV = min(128, p2(V))
    otherwise                               BS = min(32, p2(T)), BK = min(256, p2(K)), BV = min(64, p2(V))

with BT = 128 query rows per program, p2 the next power of two (at least 16), and K <= 256 asserted.

What Triton then allocates in shared memory: the query tile [BT, BK] kept for the whole kernel,
the key and value tiles [BK, BS] and [BS, BV] pipelined over Triton's default 3 stages, in the
inputs' dtype, and 1 KiB of fp32 row scratch (2 x BT floats):

    bytes = e (BT BK + 3 BS (BK + BV)) + 8 BT

At the paper's head size (K = V = 256) on an H200 this gives 525,312 bytes in fp32 and 263,168 in
bf16, the numbers Triton 3.6 reported there against the device's 232,448. Triton 3.9's compiler,
run for sm_90 on a CPU, allocates exactly this for fp32 at H100-class tiles (K = V = 64, 128, 256)
and less elsewhere (131,584 for bf16 at 256, 278,784 for fp32 at A100-class tiles): the formula is
exact where the paper's case sits and errs, elsewhere, towards FlexAttention, which is always correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

HOPPER_SHARED = 232_448
AMPERE_SHARED = 166_912
QUERY_ROWS = 128
STAGES = 3
"""Triton's default ``num_stages`` on CUDA; fla's launch does not set it."""
MAX_HEAD = 256
"""fla asserts one key tile per head: K <= 256."""
LONG = 1 << 20
"""A length at which every tile is full size (the decision holds for every length >= 64)."""


@dataclass(frozen=True)
class Tiles:
    rows: int  # BT
    keys: int  # BS
    head_k: int  # BK
    head_v: int  # BV


def _p2(n: int) -> int:
    return max(16, 1 << max(0, n - 1).bit_length())


def fla_tiles(head_k: int, head_v: int, shared_optin: int, length: int = LONG) -> Tiles:
    """fla 0.6's forward tiles for a device with ``shared_optin`` bytes per block (its three classes)."""
    if shared_optin >= HOPPER_SHARED:
        keys, v_cap = 64, 256
    elif shared_optin >= AMPERE_SHARED:
        keys, v_cap = 32, 128
    else:
        keys, v_cap = 32, 64
    return Tiles(QUERY_ROWS, min(keys, _p2(length)), min(256, _p2(head_k)), min(v_cap, _p2(head_v)))


def fla_shared_bytes(head_k: int, head_v: int, dtype_bytes: int, shared_optin: int, length: int = LONG) -> int:
    """Shared memory per block of fla's forward kernel (see the module docstring for the formula)."""
    t = fla_tiles(head_k, head_v, shared_optin, length)
    return dtype_bytes * (t.rows * t.head_k + STAGES * t.keys * (t.head_k + t.head_v)) + 2 * t.rows * 4


def fla_fits(head_dim: int, dtype_bytes: int, shared_optin: int) -> bool:
    """Whether fla's kernel can run FoX with heads of ``head_dim`` (keys and values) on such a device."""
    return head_dim <= MAX_HEAD and fla_shared_bytes(head_dim, head_dim, dtype_bytes, shared_optin) <= shared_optin


def shared_optin(device: torch.device) -> int:
    """The CUDA device's opt-in shared memory per block, in bytes."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.cuda.get_device_properties(index).shared_memory_per_block_optin
