"""``bench data summary`` and the summary behind it; ``KIND:PATH?options`` specs."""

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from model.data import MSP_CLASSES, RAVDESS_CLASSES, format_spec, open_corpus, parse_spec, summarize
from model.data_commands import data_app
from tests.model.corpora_fixtures import make_msp_podcast_tree, make_ravdess_tree

app = typer.Typer()
app.add_typer(data_app, name="data")
runner = CliRunner()
SPLIT_NAMES = {"Train": "train", "Development": "development", "Test1": "test1", "Test2": "test2"}


def _invoke(*args):
    return runner.invoke(app, ["data", "summary", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def msp(tmp_path_factory):
    root = tmp_path_factory.mktemp("msp")
    return root, make_msp_podcast_tree(root, seconds=0.2)


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess")
    return root, make_ravdess_tree(root, actors=range(1, 25), per_actor=8, song_per_actor=1, seconds=0.1)


def test_summary_counts_hours_and_speakers(msp):
    root, rows = msp
    kept = [r for r in rows if r.emo_class in MSP_CLASSES]
    s = summarize(open_corpus(f"msp-podcast:{root}"))
    assert s["utterances"] == len(kept) and s["classes"] == list(MSP_CLASSES)
    assert s["by_class"] == {c: sum(r.emo_class == c for r in kept) for c in MSP_CLASSES}
    assert s["by_split"] == {name: sum(r.split == split for r in kept) for split, name in SPLIT_NAMES.items()}
    # Hours from the files' headers equal the samples the fixture wrote.
    assert s["hours"] == pytest.approx(sum(r.seconds for r in kept) / 3600, rel=1e-9)
    for split, name in SPLIT_NAMES.items():
        assert s["hours_by_split"][name] == pytest.approx(sum(r.seconds for r in kept if r.split == split) / 3600)
    known = {r.speaker for r in kept if r.speaker != "Unknown"}
    assert s["speakers"] == len(known) and s["unknown_speaker_utterances"] == sum(r.speaker == "Unknown" for r in kept)
    assert s["dropped"] == {"EmoClass O (other; keep=O keeps it)": 8, "EmoClass X (no agreement; keep=X keeps it)": 8,
                            "Test3 (labels withheld)": 3}
    assert s["unreadable"] == 0


def test_unreadable_audio_is_counted_not_timed(tmp_path):
    rows = make_msp_podcast_tree(tmp_path, other=0, no_agreement=0, test3=0, seconds=0.1)
    (tmp_path / "Audios" / rows[1].file_name).write_bytes(b"not a wav")
    s = summarize(open_corpus(f"msp-podcast:{tmp_path}"))
    assert s["unreadable"] == 1 and s["utterances"] == len(rows)
    assert s["hours"] == pytest.approx(sum(r.seconds for r in rows[:1] + rows[2:]) / 3600)


def test_summary_command_json(ravdess):
    root, written = ravdess
    result = _invoke(f"ravdess:{root}", "--format", "json", "--fold", 2)
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert {"utterances", "by_split", "by_class", "hours", "speakers", "dropped"} <= set(s)
    assert s["utterances"] == 24 * 8 and s["by_class"] == dict.fromkeys(RAVDESS_CLASSES, 24)
    assert s["by_split"] == {"train": 17 * 8, "validation": 2 * 8, "test": 5 * 8}  # fold 2: 5 test, 2 validation
    assert s["speakers"] == 24 and s["speakers_by_split"] == {"train": 17, "validation": 2, "test": 5}
    assert s["dropped"] == {"song (vocal channel 02; song=true keeps it)": 24}
    assert s["hours"] == pytest.approx(24 * 8 * 1600 / 16_000 / 3600)


def test_summary_command_table(msp):
    root, _ = msp
    result = _invoke(f"msp-podcast:{root}?keep=O")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("train", "development", "test1", "test2", "utterances", "hours", "speakers",
                 "EmoClass X (no agreement; keep=X keeps it)", "Test3 (labels withheld)"):
        assert text in out
    # Class O kept: 2 per split, 8 in all; class A: 2 in train, 1 in each other split.
    assert re.search(r"│ O +│ +2 │ +2 │ +2 │ +2 │ +8 │", out) and re.search(r"│ A +│ +2 │ +1 │ +1 │ +1 │ +5 │", out)


@pytest.mark.parametrize("args, message", [
    (["foo:/x"], "unknown corpus kind 'foo' in 'foo:/x'; use DIR or one of msp-podcast:ROOT, ravdess:ROOT, "
                 "csv:FILE, synthetic:DIR"),
    (["ravdess:/no/such/root"], "ravdess:/no/such/root: no such folder /no/such/root (corpus kinds: "),
    (["csv:/no/m.csv"], "csv:/no/m.csv: no such file /no/m.csv"),
])
def test_summary_command_errors(args, message):
    result = _invoke(*args)
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert len(result.output.strip().splitlines()) <= 3  # one line, however the console wraps it


def test_fold_on_a_corpus_without_folds(msp):
    root, _ = msp
    result = _invoke(f"msp-podcast:{root}", "--fold", 2)
    assert result.exit_code == 2 and "msp-podcast: unknown option 'fold'; options: keep, labels" in result.output


def test_spec_parsing_round_trips():
    assert parse_spec("ravdess:/d/R?fold=3&song=true") == ("ravdess", "/d/R", {"fold": "3", "song": "true"})
    assert parse_spec("data/synth") == ("synthetic", "data/synth", {})
    assert parse_spec(r"C:\data\synth") == ("synthetic", r"C:\data\synth", {})  # a drive letter, not a kind
    assert format_spec("msp-podcast", "/m", {"keep": ("O", "X"), "labels": None}) == "msp-podcast:/m?keep=O,X"
    assert parse_spec(format_spec("ravdess", "/d/R", {"fold": 3, "song": True}))[2] == {"fold": "3", "song": "true"}
    for bad in ("ravdess:/d?fold", "ravdess:/d?=3", "ravdess:"):
        with pytest.raises(ValueError, match="ravdess:"):
            parse_spec(bad)
