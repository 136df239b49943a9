"""Graph-attention fusion: the GAT layer against explicit loops over (i, j), masking, batch independence,
SwiGLU, the F0 embedding, training on the synthetic corpus, and ``bench train --fusion gat`` end to end."""

import json

import pytest
import torch
import torch.nn.functional as F
import typer
from typer.testing import CliRunner

from model.build import build_model
from model.commands import train
from model.data import load_split, open_corpus
from model.dataset import collate, encode, feature_stats, waveform_stats
from model.features import HashedWords, LogMel
from model.metrics import read_rows
from model.ser import SERConfig
from model.systems.gat_fusion import GraphAttention, SwiGLU


def _loops(layer: GraphAttention, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Velickovic et al. eqs. 1-4 (ELU, heads concatenated), one (b, head, i, j) at a time, float64."""
    B, L, D = h.shape
    H = layer.heads
    Fh = D // H
    W = layer.proj.weight.double()
    out = torch.zeros(B, L, D, dtype=torch.float64)
    for b in range(B):
        wh = [W @ h[b, i].double() for i in range(L)]
        for k in range(H):
            a = torch.cat([layer.att_src[k], layer.att_dst[k]]).double()
            part = slice(k * Fh, (k + 1) * Fh)
            for i in range(L):
                if not mask[b, i]:
                    continue
                near = [j for j in range(L) if mask[b, j] and (layer.window is None or abs(i - j) <= layer.window)]
                e = torch.stack([F.leaky_relu(a @ torch.cat([wh[i][part], wh[j][part]]), 0.2) for j in near])
                alpha = torch.softmax(e, 0)
                out[b, i, part] = F.elu(sum(alpha[n] * wh[j][part] for n, j in enumerate(near)))
    return out


@pytest.mark.parametrize("window", [None, 0, 2], ids=["complete", "self-only", "window2"])
def test_gat_layer_matches_explicit_loops_with_padding(window):
    torch.manual_seed(0)
    layer = GraphAttention(width=12, heads=3, window=window)
    h = torch.randn(2, 7, 12)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    h[1, 4:] = 1e3  # garbage in padding
    out = layer(h, mask)
    torch.testing.assert_close(out.double(), _loops(layer, h, mask), rtol=1e-5, atol=1e-5)
    assert torch.equal(out[1, 4:], torch.zeros(3, 12))


def test_gat_with_zero_attention_vector_averages_the_neighbours():
    """Closed form: a = 0 makes every e_ij equal, so h'_i = ELU(mean of W h_j over N(i))."""
    torch.manual_seed(1)
    layer = GraphAttention(width=8, heads=2, window=1)
    with torch.no_grad():
        layer.att_src.zero_()
        layer.att_dst.zero_()
    h = torch.randn(1, 5, 8)
    wh = layer.proj(h)[0]
    expected = torch.stack([F.elu(wh[max(i - 1, 0): i + 2].mean(0)) for i in range(5)])
    torch.testing.assert_close(layer(h, torch.ones(1, 5, dtype=torch.bool))[0], expected)


def test_swiglu_shapes_and_formula():
    torch.manual_seed(2)
    layer = SwiGLU(6, 10, 3)
    x = torch.randn(4, 5, 6)
    y = layer(x)
    assert y.shape == (4, 5, 3)
    expected = (F.silu(x @ layer.gate.weight.T) * (x @ layer.up.weight.T)) @ layer.down.weight.T + layer.down.bias
    torch.testing.assert_close(y, expected)
    assert sum(p.numel() for p in layer.parameters()) == 6 * 10 * 2 + 10 * 3 + 3


def _model(f0=False, text_dim=5, window=None, seed=0):
    torch.manual_seed(seed)
    config = SERConfig(speech_dim=7 + int(f0), text_dim=text_dim, width=16, heads=2, dropout=0.0, depth=1,
                       fusion="gat", gat_window=window, f0=f0)
    model = build_model(config)
    model.set_normalization((torch.randn(config.speech_dim) * 0.1, torch.rand(config.speech_dim) + 0.5),
                            (torch.zeros(text_dim), torch.ones(text_dim)) if text_dim else None)
    return model.eval()


def _inputs(f0, lengths=(9, 6, 3), tokens=(4, 1, 2), extra=0, seed=3):
    g = torch.Generator().manual_seed(seed)
    speech = torch.randn(len(lengths), max(lengths) + extra, 7 + int(f0), generator=g)
    text = torch.randn(len(tokens), max(tokens) + extra, 5, generator=g)
    if f0:
        speech[..., -1] = torch.randint(0, 257, speech.shape[:2], generator=g).float()
    for b, (m, n) in enumerate(zip(lengths, tokens, strict=True)):
        speech[b, m:] = torch.randn(speech.shape[1] - m, speech.shape[2], generator=g) * 100  # garbage padding
        text[b, n:] = torch.randn(text.shape[1] - n, 5, generator=g) * 100
    return speech, torch.tensor(lengths), text, torch.tensor(tokens)


@pytest.mark.parametrize("f0, window", [(False, None), (True, 2)], ids=["complete", "f0-window2"])
def test_padding_and_batch_mates_do_not_change_an_utterance(f0, window):
    model = _model(f0=f0, window=window)
    speech, sl, text, tl = _inputs(f0)
    wide = _inputs(f0, extra=5, seed=4)
    # Same valid frames and tokens, more and different padding.
    for b, (m, n) in enumerate(zip(sl.tolist(), tl.tolist(), strict=True)):
        wide[0][b, :m], wide[2][b, :n] = speech[b, :m], text[b, :n]
    with torch.no_grad():
        batched = model(speech, sl, text, tl)
        torch.testing.assert_close(model(wide[0], sl, wide[2], tl), batched, rtol=1e-5, atol=1e-5)
        for b in range(3):  # each utterance alone, unpadded
            alone = model(speech[b: b + 1, : sl[b]], sl[b: b + 1], text[b: b + 1, : tl[b]], tl[b: b + 1])
            torch.testing.assert_close(alone, batched[b: b + 1], rtol=1e-5, atol=1e-5)


def test_f0_bins_are_embedded_not_standardised():
    model = _model(f0=True, text_dim=None)
    speech, sl, _, _ = _inputs(True)
    assert model.speech_mean.shape == (7,) and model.speech_proj.in_features == 7
    with torch.no_grad():
        before = model(speech, sl)
        changed = speech.clone()
        changed[0, 0, -1] = (changed[0, 0, -1] + 1) % 257  # one frame's bin
        assert not torch.allclose(model(changed, sl)[0], before[0])
        torch.testing.assert_close(model(changed, sl)[1:], before[1:])


def test_unknown_fusion_is_rejected():
    with pytest.raises(ValueError, match="unknown fusion 'sum'; fusions: concat, gat"):
        build_model(SERConfig(speech_dim=4, width=8, heads=2, depth=1, fusion="sum"))


def test_trains_on_the_synthetic_corpus_loss_goes_down(tiny_corpus):
    corpus = open_corpus(tiny_corpus)
    loaded = load_split(corpus, "train")[0]
    data = encode(loaded, corpus.classes, LogMel(n_mels=16), HashedWords(dim=8), *waveform_stats(loaded))
    torch.manual_seed(0)
    model = build_model(SERConfig(speech_dim=16, text_dim=8, width=32, heads=2, dropout=0.0, depth=1,
                                  fusion="gat", gat_window=4))
    model.set_normalization(feature_stats(data.speech), feature_stats(data.text))
    batch = collate(data, [(i, 0) for i in range(len(data))], 40)
    labels = batch.pop("labels")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(**batch), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # ln 8 = 2.08 at chance; 15 full-batch steps on 32 utterances must fit well below it.
    assert losses[0] > 1.7 and losses[-1] < 0.5 * losses[0], losses[::5]
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")


def test_bench_train_fusion_gat_smoke_end_to_end(tiny_corpus, tmp_path):
    app = typer.Typer()
    app.command("train")(train)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, [str(a) for a in (
        "train", "--corpus", tiny_corpus, "--out", tmp_path / "run", "--results", tmp_path / "r.jsonl",
        "--fusion", "gat", "--preset", "smoke", "--width", 16, "--heads", 2, "--depth", 1, "--crop-seconds", 0.5,
        "--epochs", 2, "--eval-batch-size", 8, "--device", "cpu", "--text-encoder", "words")],
        catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["model"]["fusion"] == "gat" and config["train"]["class_weighted"]  # weighted CE by default
    rows = read_rows(tmp_path / "r.jsonl", "accuracy")
    assert [(r["split"], r["fusion"], r["mixer"], r["kernel"]) for r in rows] == [
        ("development", "gat", "sa", "sdpa"), ("test", "gat", "sa", "sdpa")]
    assert all(0 <= r["macro_f1"] <= 1 and r["n"] == 8 for r in rows)
