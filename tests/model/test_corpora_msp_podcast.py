"""MSP-Podcast: classes, splits, O/X and Test3 drops, unknown speakers, transcripts, options, errors."""

import shutil
from collections import Counter

import pytest

from model.data import MSP_CLASSES, DataError, open_corpus
from tests.model.corpora_fixtures import MSP_SPLITS, make_msp_podcast_tree

SPLIT_NAMES = {"Train": "train", "Development": "development", "Test1": "test1", "Test2": "test2"}
OTHER = "EmoClass O (other; keep=O keeps it)"
NO_AGREEMENT = "EmoClass X (no agreement; keep=X keeps it)"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("msp")
    return root, make_msp_podcast_tree(root, seconds=0.2)


def _all(corpus):
    return [u for s in corpus.splits() for u in corpus.utterances(s)]


def test_classes_splits_and_drops(release):
    root, rows = release
    corpus = open_corpus(f"msp-podcast:{root}")
    assert corpus.classes == MSP_CLASSES == ("A", "S", "H", "U", "F", "D", "C", "N")
    assert corpus.splits() == ("train", "development", "test1", "test2")
    labelled = [r for r in rows if r.emo_class in MSP_CLASSES]
    expected = Counter(SPLIT_NAMES[r.split] for r in labelled)
    assert {s: len(corpus.utterances(s)) for s in corpus.splits()} == expected
    assert corpus.dropped == {OTHER: 4 * 2, NO_AGREEMENT: 4 * 2, "Test3 (labels withheld)": 3}
    assert Counter(u.label for u in _all(corpus)) == Counter(r.emo_class for r in labelled)


def test_speakers_transcripts_and_paths(release):
    root, rows = release
    corpus = open_corpus(f"msp-podcast:{root}")
    by_id = {u.id: u for u in _all(corpus)}
    for r in rows:
        u = by_id.get(r.file_name.removesuffix(".wav"))
        if r.emo_class not in MSP_CLASSES:
            assert u is None
            continue
        assert u.speaker == (None if r.speaker == "Unknown" else r.speaker)
        assert u.transcript == r.transcript  # None where the fixture wrote no transcript file
        assert u.path == root / "Audios" / r.file_name and u.split == SPLIT_NAMES[r.split]
    assert any(u.speaker is None for u in by_id.values()) and any(u.transcript is None for u in by_id.values())
    assert corpus.utterances("Test1") == corpus.utterances("test1")  # the release's own names work too


def test_keep_other_classes(release):
    root, rows = release
    for corpus in (open_corpus(f"msp-podcast:{root}?keep=O,X"), open_corpus(f"msp-podcast:{root}", keep=("X", "O"))):
        assert corpus.classes == (*MSP_CLASSES, "O", "X")
        assert corpus.dropped == {"Test3 (labels withheld)": 3}
        assert len(_all(corpus)) == sum(r.split != "Test3" for r in rows)
    only_o = open_corpus(f"msp-podcast:{root}?keep=O")
    assert only_o.classes == (*MSP_CLASSES, "O") and only_o.dropped[NO_AGREEMENT] == 8
    assert open_corpus(only_o.spec).classes == only_o.classes and only_o.spec.endswith("?keep=O")


def test_broken_rows_are_dropped_by_reason(tmp_path):
    make_msp_podcast_tree(tmp_path, per_class={s: 1 for s in MSP_SPLITS}, other=0, no_agreement=0, test3=0,
                          seconds=0.1)
    labels = tmp_path / "Labels" / "labels_consensus.csv"
    lines = labels.read_text().splitlines()
    first = lines[1].split(",")
    (tmp_path / "Audios" / lines[2].split(",")[0]).unlink()  # row 3's audio is gone
    lines.append(",".join(first))  # the same FileName again
    lines.append(",".join([first[0].removesuffix(".wav"), *first[1:]]))  # without .wav: still the same file
    fourth = lines[4].split(",")
    lines.append(",".join([*fourth[:-1], "Test4"]))
    lines.append(",".join([fourth[0], "Z", *fourth[2:]]))
    labels.write_text("\n".join(lines) + "\n")
    corpus = open_corpus(f"msp-podcast:{tmp_path}")
    # The exact copy and the copy without .wav are both duplicates of row 2.
    assert corpus.dropped == {"duplicate FileName": 2, "audio file missing from Audios/": 1,
                              "unknown EmoClass 'Z'": 1, "unknown Split_Set 'Test4'": 1}
    assert len(_all(corpus)) == 4 * 8 - 1


def test_errors_are_one_line(release, tmp_path):
    root, _ = release
    with pytest.raises(DataError, match=r"no Labels/labels_consensus.csv \(expected an MSP-Podcast release"):
        open_corpus(f"msp-podcast:{tmp_path}")
    with pytest.raises(DataError, match="^msp-podcast: keep takes O and/or X, got 'N'$"):
        open_corpus(f"msp-podcast:{root}?keep=N")
    with pytest.raises(DataError, match="^msp-podcast: unknown option 'fold'; options: keep, labels$"):
        open_corpus(f"msp-podcast:{root}", fold=2)
    copy = tmp_path / "copy"
    shutil.copytree(root / "Labels", copy / "Labels")
    with pytest.raises(DataError, match=r"copy: no Audios/ folder"):
        open_corpus(f"msp-podcast:{copy}")
    (copy / "Audios").mkdir()
    labels = copy / "Labels" / "labels_consensus.csv"
    labels.write_text(labels.read_text().replace("SpkrID", "Speaker", 1))
    with pytest.raises(DataError, match=r"labels_consensus.csv: missing columns SpkrID \(found FileName, EmoClass"):
        open_corpus(f"msp-podcast:{copy}")
