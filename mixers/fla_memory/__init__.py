"""Activation models of fla 0.6's own kernels, one per mechanism: the peak bytes above weights and
input that a CUDA allocator sees while an fla layer runs one forward at inference.

They are not the twins' models: fla's chunked kernels keep per-chunk states, intra-chunk blocks
and fp32 gates that our twins never hold at once (RetNet at 400 s: 9x the twin's activation).
Each function replays its layer's forward as allocations and frees (``Timeline``), read from
fla 0.6's source. Checked two ways (``tests/mixers/test_fla_memory.py``): against every ok fla
row of the H200 run (2026-12-04) at 100 s and longer, and on CPU against the tensors fla's own
Python wrappers create, counted with a dispatch mode while its Triton launches do nothing
(``tests/mixers/fla_allocations.py``), at sizes where no GPU row exists.

``fox_tiles`` answers the other memory question fla's kernels raise: whether fla's FoX kernel's
tiles fit a device's shared memory per block (they do not on an H200 at head size 256), which
``fox``'s ``auto`` kernel reads before a cell runs.

Signature of the models: ``(B, T, D, H, e, **config) -> bytes`` with batch, length, hidden size, heads and the
element size of the input's dtype.
"""

from mixers.fla_memory.attention import fox, mamba2
from mixers.fla_memory.delta_family import deltanet, gated_deltanet, kda, rwkv7
from mixers.fla_memory.gla_family import gla, gsa, hgrn2, lightnet, retnet

__all__ = ["deltanet", "fox", "gated_deltanet", "gla", "gsa", "hgrn2", "kda", "lightnet", "mamba2", "retnet",
           "rwkv7"]
