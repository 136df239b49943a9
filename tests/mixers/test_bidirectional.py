"""The bidirectional wrapper, and causality: SA's mask and the recurrent mixers' own."""

import pytest
import torch
import torch.nn.functional as F

import mixers
from mixers import bidirectional
from mixers.bidirectional import Bidirectional

D, H, T = 32, 2, 23
CAUSAL_TWINS = ["retnet", "lightnet", "gsa", "fox", "kda", "reslstm"]


def _x(length=T, seed=0):
    return torch.randn(1, length, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_output_is_forward_plus_flipped_backward_by_hand(combine):
    torch.manual_seed(0)
    module = bidirectional.build("retnet", D, H, kernel="torch", combine=combine)
    x = _x()
    with torch.no_grad():
        a = module.forward_mixer(x)
        b = torch.flip(module.backward_mixer(torch.flip(x, dims=[1])), dims=[1])
        expected = a + b if combine == "sum" else torch.cat([a, b], -1) @ module.proj.weight.T
        torch.testing.assert_close(module(x), expected, rtol=0, atol=0)


def test_directions_have_their_own_weights():
    torch.manual_seed(0)
    module = bidirectional.build("gsa", D, H, kernel="torch")
    forward_weights = dict(module.forward_mixer.named_parameters())
    for name, p in module.backward_mixer.named_parameters():
        assert p.data_ptr() != forward_weights[name].data_ptr()
        if p.numel() > 1 and p.std() > 0:
            assert not torch.equal(p, forward_weights[name]), name
    with pytest.raises(ValueError, match="own mixers"):
        one = mixers.build("gsa", D, H, kernel="torch")
        Bidirectional(one, one, D)


def _dependence(module, x, t):
    """|dy_t / dx_s| summed over channels, for every s: which inputs output t depends on."""
    x = x.clone().requires_grad_()
    module(x)[0, t].sum().backward()
    return x.grad[0].abs().sum(-1)


@pytest.mark.parametrize("name", CAUSAL_TWINS)
def test_causal_mixer_ignores_the_future_and_its_bidirectional_form_does_not(name):
    torch.manual_seed(0)
    t = 10
    causal = mixers.build(name, D, H, kernel="torch")
    # Perturbing frames after t leaves outputs up to t unchanged (up to the rounding of chunked sums
    # over the whole sequence, 1e-5), and no gradient flows from output t to a later frame.
    x = _x()
    x2 = x.clone()
    x2[:, t + 1:] += torch.randn_like(x2[:, t + 1:])
    both = bidirectional.build(name, D, H, kernel="torch")
    with torch.no_grad():
        assert (causal(x2) - causal(x))[:, : t + 1].abs().max() <= 1e-5
        assert (both(x2) - both(x))[:, : t + 1].abs().max() > 1e-3
    # (kda's chunked solve leaves ~1e-9 where the masked products cancel: 1e-6 of the real ones)
    reach = _dependence(causal, x, t)
    assert reach[t + 1:].max() <= 1e-6 * reach[: t + 1].max()
    assert _dependence(both, x, t)[t + 1:].min() > 1e-5 * reach[: t + 1].max()  # later frames reach t


@pytest.mark.parametrize("kernel", ["sdpa", "naive"])
def test_sa_causal_option_and_default(kernel):
    torch.manual_seed(0)
    x, t = _x(), 10
    full = mixers.build("sa", D, H, kernel=kernel)
    assert full.causal is False  # SER's default: every frame attends to the whole utterance
    assert _dependence(full, x, t)[t + 1:].min() > 0
    causal = mixers.build("sa", D, H, kernel=kernel, causal=True)
    assert _dependence(causal, x, t)[t + 1:].max() == 0


@pytest.mark.parametrize("causal", [False, True])
def test_sa_kernels_match_sdpa_is_causal_by_hand(causal):
    torch.manual_seed(0)
    naive = mixers.build("sa", D, H, kernel="naive", causal=causal)
    x = _x()
    with torch.no_grad():
        q, k, v = (naive._heads(p(x)) for p in (naive.q_proj, naive.k_proj, naive.v_proj))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(1, 2).flatten(-2)
        expected = naive.o_proj(o)
        torch.testing.assert_close(naive(x), expected, rtol=0, atol=1e-5)
        sdpa = mixers.build("sa", D, H, kernel="sdpa", causal=causal)
        sdpa.load_state_dict(naive.state_dict())
        torch.testing.assert_close(sdpa(x), expected, rtol=0, atol=1e-5)


def test_bidirectional_sa_is_built_causal_in_both_directions():
    module = bidirectional.build("sa", D, H, kernel="sdpa")
    assert module.forward_mixer.causal and module.backward_mixer.causal
    with pytest.raises(ValueError, match="causal SA"):
        bidirectional.build("sa", D, H, kernel="sdpa", causal=False)


def test_bidirectional_cost_doubles_one_direction():
    one = mixers.cost("kda", 499, 256, 4, kernel="torch")
    both = bidirectional.cost(one, 499, 256, 1, 4, "sum")
    assert both.flops > 2 * one.flops and both.weight_bytes == 2 * one.weight_bytes
    concat = bidirectional.cost(one, 499, 256, 1, 4, "concat")
    assert concat.weight_bytes == 2 * one.weight_bytes + 2 * 256 * 256 * 4
    with pytest.raises(ValueError, match="combine"):
        Bidirectional(mixers.build("kda", D, H, kernel="torch"), mixers.build("kda", D, H, kernel="torch"), D,
                      combine="mean")
