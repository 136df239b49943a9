"""The SER model: shapes, masking, padding invariance, parameter budget, every registered mixer."""

import pytest
import torch

import mixers
from model.build import build_model, choose_depth
from model.ser import Block, SERConfig, SERModel, trainable

C = 8


def _model(mixer="sa", width=24, heads=3, depth=2, speech_dim=13, text_dim=None, kernel="auto", seed=0):
    torch.manual_seed(seed)
    config = SERConfig(mixer=mixer, kernel=kernel, speech_dim=speech_dim, text_dim=text_dim, classes=C, width=width,
                       heads=heads, dropout=0.0, depth=depth)
    model = build_model(config)
    # Non-trivial normalisation buffers, so tests also cover them.
    model.set_normalization((torch.randn(speech_dim) * 0.1, torch.rand(speech_dim) + 0.5),
                            (torch.randn(text_dim) * 0.1, torch.rand(text_dim) + 0.5) if text_dim else None)
    return model.eval()


def _batch(lengths, dim, extra=0, garbage=True, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths) + extra, dim, generator=g)
    for b, n in enumerate(lengths):
        # Padding holds garbage, not zeros: the model must ignore whatever is there.
        x[b, n:] = torch.randn(x.shape[1] - n, dim, generator=g) * 100 if garbage else 0.0
    return x, torch.tensor(lengths)


def _widen(x, lengths, extra, seed):
    """The same valid frames, with more (and different) garbage after them."""
    g = torch.Generator().manual_seed(seed)
    wide = torch.randn(x.shape[0], x.shape[1] + extra, x.shape[2], generator=g) * 100
    for b, n in enumerate(lengths.tolist()):
        wide[b, :n] = x[b, :n]
    return wide


@pytest.mark.parametrize("lengths", [[37, 21, 5], [1, 1], [64, 64, 64]], ids=["M37-21-5", "M1-1", "M64x3"])
def test_logits_shape(lengths):
    model = _model()
    x, n = _batch(lengths, 13)
    assert model(x, n).shape == (len(lengths), C)


def test_padded_frames_get_exactly_zero_pooling_weight():
    model = _model()
    seen = {}
    model.pool.register_forward_hook(lambda module, args, out: seen.update(weights=out[1]))
    x, n = _batch([37, 21, 5], 13)
    model(x, n)
    w = seen["weights"]
    for b, length in enumerate(n.tolist()):
        assert torch.equal(w[b, length:], torch.zeros_like(w[b, length:]))  # exactly zero
        assert (w[b, :length] > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(3), atol=1e-6, rtol=0)


@pytest.mark.parametrize("text_dim", [None, 7], ids=["speech", "speech+text"])
def test_outputs_unchanged_by_extra_padding(text_dim):
    model = _model(text_dim=text_dim)
    lengths, tokens = [37, 21, 5], [3, 9, 1]
    x, n = _batch(lengths, 13)
    wide = _widen(x, n, extra=11, seed=2)
    t, k = _batch(tokens, 7, seed=3) if text_dim else (None, None)
    t_wide = _widen(t, k, extra=4, seed=4) if text_dim else None
    with torch.no_grad():
        batched = model(x, n, t, k)
        padded = model(wide, n, t_wide, k)
        alone = torch.cat([model(x[b: b + 1, :m], n[b: b + 1], t[b: b + 1, : k[b]] if text_dim else None,
                                 k[b: b + 1] if text_dim else None) for b, m in enumerate(lengths)])
    # Tolerance: matmul rounding differs with batch composition; padding itself contributes nothing.
    torch.testing.assert_close(padded, batched, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)


def test_fuse_packs_speech_then_text_per_utterance():
    model = _model(text_dim=7)
    x, n = _batch([6, 2, 4], 13)
    t, k = _batch([1, 3, 2], 7, seed=5)
    with torch.no_grad():
        u, lengths = model.fuse(x, n, t, k)
        s = model.speech_proj((x - model.speech_mean) / model.speech_std)
        e = model.text_proj((t - model.text_mean) / model.text_std)
    assert lengths.tolist() == [7, 5, 6] and u.shape == (3, 7, 24)
    for b in range(3):
        m, j = int(n[b]), int(k[b])
        assert torch.equal(u[b, :m], s[b, :m]) and torch.equal(u[b, m: m + j], e[b, :j])
        assert u[b, m + j:].abs().sum() == 0


def test_depth_meets_the_budget_by_exact_count():
    # SA block: q, k, v, o projections without bias (4 D^2) and a LayerNorm (2 D).
    D, Ds = 32, 13
    per_block = 4 * D * D + 2 * D
    # speech projection, final norm, pooling query, head norm, head linear
    fixed = (Ds * D + D) + 2 * D + D + 2 * D + (D * C + C)
    config = SERConfig(mixer="sa", speech_dim=Ds, classes=C, width=D, heads=4)
    assert trainable(Block(config)) == per_block
    for budget, depth in [(10_000, 2), (fixed + 2.5 * per_block, 2), (fixed + 2.6 * per_block, 3), (1, 1)]:
        config.budget = int(budget)
        assert choose_depth(config) == depth
        assert trainable(build_model(config)) == fixed + depth * per_block
    config.depth = 5
    assert choose_depth(config) == 5
    # A feed-forward sublayer of width 2D: its LayerNorm, D -> 2D and 2D -> D with biases.
    config.ffn = 2
    assert trainable(Block(config)) == per_block + 2 * D + (2 * D * D + 2 * D) + (2 * D * D + D)


def test_paper_configuration_is_near_20m():
    # D = 1024, 4 heads, speech and text at 1024: the paper's ~20M trainable parameters.
    config = SERConfig(mixer="sa", speech_dim=1024, text_dim=1024, width=1024, heads=4)
    depth = choose_depth(config)
    with torch.device("meta"):
        params = trainable(SERModel(config, depth))
    assert depth == 4 and abs(params - 20_000_000) < 2_100_000


def test_bad_inputs_are_refused():
    model = _model()
    x, n = _batch([5, 3], 13)
    with pytest.raises(ValueError, match=r"expected speech features \[B, M, 13\], got \(2, 5, 12\)"):
        model(x[..., :12], n)
    with pytest.raises(ValueError, match=r"speech lengths must lie in \[1, 5\]; got \[0, 3\]"):
        model(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="this model expects text features: False"):
        model(x, n, torch.zeros(2, 1, 7), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="unknown mixer 'nope'"):
        _model(mixer="nope")


@pytest.mark.parametrize("name", mixers.names())
def test_every_registered_mixer_trains_and_ignores_padding(name):
    # Hidden 32, 2 heads: small enough for any mixer's CPU kernel ("auto" -> torch on CPU).
    model = _model(mixer=name, width=32, heads=2, depth=1)
    x, n = _batch([19, 7, 12], 13)
    with torch.no_grad():
        alone = torch.cat([model(x[b: b + 1, :m], n[b: b + 1]) for b, m in enumerate(n.tolist())])
        torch.testing.assert_close(model(x, n), alone, atol=1e-5, rtol=0)
    model.train()
    model(x, n).logsumexp(-1).sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
