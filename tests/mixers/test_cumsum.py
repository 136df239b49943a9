import pytest
import torch

from mixers.cores.cumsum import blocked_cumsum


def restarting_cumsum(x: torch.Tensor, dim: int, period: int) -> torch.Tensor:
    """torch.cumsum over each run of ``period`` rows along ``dim`` (the last run may be shorter)."""
    return torch.cat([piece.cumsum(dim) for piece in x.split(period, dim)], dim)


@pytest.mark.parametrize("n, period, block", [
    (64, None, 16),   # two levels, no restart (LightNet's running sum)
    (32, None, 8),    # two levels within one chunk (the delta rule's chunks)
    (200, 32, 16),    # restarts every 32 rows, a partial last period of 8 (GSA's chunks)
    (8, None, 8),     # one block: one triangular product
    (12, None, 8),    # not whole blocks but short: one triangular product
    (100, 50, 16),    # not whole blocks and long: torch.cumsum
    (5, 32, 16),      # shorter than one period
], ids=lambda v: str(v))
@pytest.mark.parametrize("dim", [0, 1, -1], ids=lambda d: f"dim{d}")
def test_matches_torch_cumsum(n, period, block, dim):
    """Against torch.cumsum per period, in fp64 to rounding (1e-12), summed axis first, inside, last."""
    shape = [3, 4, 5]
    shape[dim] = n
    x = torch.randn(*shape, dtype=torch.float64)
    expected = restarting_cumsum(x, dim, period or n)
    out = blocked_cumsum(x, dim, period, block)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)


def test_non_contiguous_input_and_input_left_alone():
    x = torch.randn(48, 6, dtype=torch.float64).t()  # [6, 48], a transposed view
    before = x.clone()
    torch.testing.assert_close(blocked_cumsum(x, 1, 16), restarting_cumsum(x, 1, 16), atol=1e-12, rtol=0)
    assert torch.equal(x, before)


def test_rejects_bad_period():
    with pytest.raises(ValueError, match="period and block must be positive"):
        blocked_cumsum(torch.zeros(4, 4), 0, period=0)
