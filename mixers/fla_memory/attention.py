"""Activation peaks of fla 0.6's FoX and Mamba2 layers at inference, replayed from their forwards."""

from __future__ import annotations

from mixers.fla_memory.timeline import Timeline


def fox(B: int, T: int, D: int, H: int, e: int) -> int:
    """``ForgettingAttention`` (no output gate, no short conv): q, k, v, the forget logits and
    their fp32 logsigmoid and cumulative sum; ``parallel_forgetting_attn`` writes the output and
    an fp32 log-sum-exp per row (``ops/attn/parallel.py``), then o_proj. Linear in T: the kernel
    keeps no T x T block. No GPU row: on the H200 fla's kernel refuses head size 256 (it needs
    525,312 bytes of shared memory, the H200 has 232,448), so these cells end in ``error``."""
    tok = B * T
    t = Timeline().alloc(q=tok * D * e, k=tok * D * e, v=tok * D * e, f=tok * H * e)
    t.alloc(f32=tok * H * 4 if e < 4 else 0).free("f").alloc(f_log=tok * H * 4).free("f32")
    t.alloc(g_cum=tok * H * 4, o=tok * D * e, lse=tok * H * 4).free("lse", "g_cum").alloc(out=tok * D * e)
    return t.peak


def mamba2(B: int, T: int, D: int, H: int, e: int, state_size: int = 128, expand: int = 2, **_: object) -> int:
    """``Mamba2`` through fla's ``torch_forward``, the path fla takes where ``mamba_ssm`` is not
    installed (this project does not depend on it; with it, fla runs mamba_ssm's fused kernels,
    which this model does not describe). Per 256-token chunk it materialises products
    ``[B, nc, 256, 256, H, N]`` (C B^T) and ``[.., H, P]`` (the masked scores times x), in fp32,
    beside the in_proj output, the convolution output, x, B and C padded to chunks and D x: the
    peak is quadratic in the chunk and far above the twin's (13 GB at 100 s, fp32).
    No GPU row yet: checked on CPU only."""
    E, N, C = expand * D, state_size, 256
    P, conv_dim = E // H, E + 2 * state_size
    n_in = E + conv_dim + H
    nc = -(-T // C)
    Tp = nc * C
    block = B * nc * C * C * H * 4  # one fp32 value per (chunk, query, key, head)
    t = Timeline().alloc(proj=B * T * n_in * e, conv=B * T * conv_dim * e, D_res=B * Tp * E * 4, x=B * Tp * E * 4,
                         Bc=B * Tp * H * N * 4, Cc=B * Tp * H * N * 4, L=block, G_int=block * N, G=block,
                         M_int=block, M=block, Y_int=block * P, Y_diag=B * Tp * E * 4).free("Y_int")
    t.alloc(states_int=B * Tp * E * N * 4, states=B * nc * E * N * 4).free("states_int")
    t.alloc(C_states=B * Tp * E * N * 4)
    return t.peak
