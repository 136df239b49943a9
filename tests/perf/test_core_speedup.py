"""Core-only speed-up: each twin's core against fla's naive op on the same inputs, timed in one run.

The issue's target: every twin at least 10x faster than fla's naive reference at 5,000 frames
wherever that reference is a per-step recurrence or materialises L x L. The layer-level ratio is
the ``reference`` preset of ``bench sweep`` (the same projections around both cores); this test
times the cores alone, so the shared projections do not hide the ratio.

Profiles (``MIXBENCH_PERF_PROFILE``): ``ci`` (default) runs hidden 128, 2 heads, 399 frames in a
few seconds (see ``CI_TARGET``); ``full`` runs the paper's width (hidden
1024, 4 heads) at 4,999 frames (100 s of audio) and requires 10x. Each side is judged by its
fastest call (other processes on a shared machine only add time). Both cores must also agree
(1e-4 of max(1, scale), fp32 at unit-scale inputs, where fla's op is finite), so a fast wrong
core fails.

Threads (``MIXBENCH_PERF_THREADS``): both sides run on the same number of intra-op threads, one
by default in the ``ci`` profile (steady on a shared machine) and every core torch uses by default
in ``full`` (the machine as a user has it: a chunkwise core is built to use them, a per-step loop
cannot). At one thread the issue's 10x is at or below the FLOP floor of the GSA core on a CPU (its
two passes are ~13 GFLOP of matmuls at 4,999 frames), so ``full`` on one thread reports honestly
and may fail there.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from bench.cases import frames
from tests.perf.gates import fastest_ms

pytestmark = pytest.mark.perf

TARGET = {"full": 10.0}
"""Required naive / twin ratio in the full profile (the issue's target, for every twin)."""
CI_TARGET = {"lightnet": 2.0, "gsa": 2.0, "kda": 2.0}
"""Other profiles (399 frames): the per-step recurrences must still be 2x slower than the twins
(measured 5.7-12x at hidden 128); the L x L references (retnet, fox) are one large matmul at that
length, as fast as the twin, so only the agreement of the outputs is checked for them."""
SECONDS = {"full": 100.0}
"""Audio seconds per profile (100 s is 4,999 frames); other profiles use 8 s (399 frames)."""
MIXERS = ("retnet", "lightnet", "gsa", "fox", "kda")
THREADS_ENV = "MIXBENCH_PERF_THREADS"


def intra_op_threads(profile: str) -> int:
    """Threads both cores run on: ``$MIXBENCH_PERF_THREADS``, else 1 (``ci``) or torch's default (``full``)."""
    value = os.environ.get(THREADS_ENV)
    if value is None:
        return torch.get_num_threads() if profile == "full" else 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive integer, got {value!r}")
    return int(value)


def _cores(name: str, T: int, D: int, H: int, gen: torch.Generator) -> tuple[Callable, Callable]:
    """(twin core, fla's naive op) as zero-argument calls on the same inputs, both returning [B, T, H, V]."""

    def randn(*shape):
        return torch.randn(*shape, generator=gen)

    if name == "retnet":
        from fla.ops.retention.naive import naive_retention

        from mixers.retnet import retention

        q, k, v = randn(1, T, H, D // H), randn(1, T, H, D // H), randn(1, T, H, 2 * D // H)
        qh, kh, vh = (x.transpose(1, 2) for x in (q, k, v))
        return lambda: retention(q, k, v), lambda: naive_retention(qh, kh, vh).transpose(1, 2)
    if name == "lightnet":
        from mixers.lightnet import lightnet_attention

        q, u, v = F.silu(randn(1, T, H, 128)), randn(1, T, H, 128), randn(1, T, H, D // H)
        import fla.ops.gla.naive  # noqa: F401  (imported before timing)

        return lambda: lightnet_attention(q, u, v)[0], lambda: lightnet_attention(q, u, v, naive=True)[0]
    if name == "gsa":
        from fla.ops.gsa.naive import naive_recurrent_gsa

        from mixers.gsa import slot_attention

        K = D // H
        q, k, v = (F.silu(randn(1, T, H, K)) for _ in range(3))
        g = F.logsigmoid(randn(1, T, H, K)) / 8
        s = 1 - g.exp()
        return (lambda: slot_attention(q, k, v, s, g)[0],
                lambda: naive_recurrent_gsa(q, k, v, s, g, scale=1.0)[0])
    if name == "fox":
        from fla.ops.forgetting_attn.naive import naive_forgetting_attn

        from mixers.cores.blockwise_fox import forgetting_attention

        q, k, v = (randn(1, H, T, D // H) for _ in range(3))
        g = F.logsigmoid(1.0 + randn(1, H, T))
        return (lambda: forgetting_attention(q, k, v, g),
                lambda: naive_forgetting_attn(*(x.transpose(1, 2) for x in (q, k, v, g))))
    if name == "kda":
        from fla.ops.kda.naive import naive_recurrent_kda

        from mixers.cores.chunkwise_delta import _l2norm, chunk_gated_delta_rule

        q, k, v = randn(1, T, H, 128), randn(1, T, H, 128), randn(1, T, H, 128)
        # Per-step log decays spread like fla's initialisation (exp(A_log) in [1, 16] times dt in
        # [1e-3, 0.1]): magnitudes from 1e-3 to about 1.6 nats.
        g = -torch.exp(torch.rand(1, T, H, 128, generator=gen) * math.log(1600) + math.log(1e-3))
        beta = torch.rand(1, T, H, generator=gen)
        qn, kn = _l2norm(q), _l2norm(k)
        return (lambda: chunk_gated_delta_rule(q, k, v, g, beta, qk_l2norm=True)[0],
                lambda: naive_recurrent_kda(qn, kn, v, g, beta)[0])
    raise ValueError(name)


@pytest.mark.parametrize("name", MIXERS)
def test_core_faster_than_fla_naive(gate_benchmark, name, profile):
    D, H = profile.hidden, profile.heads
    T = frames(SECONDS.get(profile.name, 8.0))
    twin, naive = _cores(name, T, D, H, torch.Generator().manual_seed(0))
    gate_benchmark.group = f"core-speedup-{profile.name}"
    threads, used = torch.get_num_threads(), intra_op_threads(profile.name)
    torch.set_num_threads(used)
    try:
        with torch.inference_mode():
            ours, theirs = twin(), naive()
            # fla's naive_retention builds its decay mask as exp of +-log(gamma) * (i - j), which
            # overflows to inf (then inf * 0 = nan) past ~2,800 frames: compare where it is finite.
            finite = theirs.isfinite()
            assert finite.float().mean() > 0.5 and ours.isfinite().all()
            err = (ours - theirs)[finite].abs().max().item()
            assert err <= 1e-4 * max(1.0, theirs[finite].abs().max().item()), f"{name}: max abs error {err:.3g}"
            gate_benchmark.pedantic(twin, rounds=profile.rounds, warmup_rounds=1, iterations=1)
            naive_ms = fastest_ms(naive, "cpu", rounds=3 if profile.name == "full" else profile.rounds)
    finally:
        torch.set_num_threads(threads)
    twin_ms = gate_benchmark.stats.stats.min * 1e3
    ratio = naive_ms / twin_ms
    gate_benchmark.extra_info.update(frames=T, hidden=D, heads=H, threads=used, twin_min_ms=twin_ms,
                                     naive_min_ms=naive_ms, speedup=ratio)
    target = TARGET[profile.name] if profile.name in TARGET else CI_TARGET.get(name, 0.0)
    assert ratio >= target, (f"{name} core: {ratio:.2f}x fla's naive op at {T} frames on {used} thread(s) "
                             f"(twin {twin_ms:.1f} ms, naive {naive_ms:.1f} ms); target {target:g}x")


def test_threads_follow_the_profile_and_the_environment(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert intra_op_threads("ci") == 1
    assert intra_op_threads("full") == torch.get_num_threads()
    monkeypatch.setenv(THREADS_ENV, "3")
    assert intra_op_threads("ci") == intra_op_threads("full") == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            intra_op_threads("full")
