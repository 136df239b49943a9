"""RAVDESS: labels from file names, the ResLSTM-SA folds, drops by reason, options and errors."""

import shutil
from collections import Counter

import pytest

from model.data import RAVDESS_CLASSES, RAVDESS_FOLDS, DataError, open_corpus, write_wav
from tests.model.corpora_fixtures import make_ravdess_tree, ravdess_name, tone

# The paper's folds, written out here rather than read from the code under test.
PAPER_TEST = [{2, 5, 14, 15, 16}, {3, 6, 7, 13, 18}, {10, 11, 12, 19, 20}, {8, 17, 21, 23, 24}, {1, 4, 9, 22}]
PAPER_VALIDATION = [{3, 6}, {10, 11}, {8, 17}, {1, 14}, {2, 5}]
MALFORMED = {  # file name -> the reason it is dropped
    "03-01-01-01-01-01.wav": "name not MM-VV-EE-II-SS-RR-AA",
    "03-01-1-01-01-01-01.wav": "name not MM-VV-EE-II-SS-RR-AA",
    "notes.wav": "name not MM-VV-EE-II-SS-RR-AA",
    "01-01-03-01-01-01-01.wav": "modality not 03 (audio-only)",
    "03-03-03-01-01-01-01.wav": "vocal channel not 01 (speech) or 02 (song)",
    "03-01-09-01-01-01-01.wav": "emotion not 01-08",
    "03-01-03-03-01-01-01.wav": "intensity not 01-02",
    "03-01-03-01-00-01-01.wav": "statement not 01-02",
    "03-01-03-01-01-05-01.wav": "repetition not 01-02",
    "03-01-03-01-01-01-25.wav": "actor not 01-24",
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """24 actors x (8 speech + 2 song) files, the malformed names above, a duplicate and a non-wav file."""
    root = tmp_path_factory.mktemp("ravdess")
    written = make_ravdess_tree(root, per_actor=8, song_per_actor=2, seconds=0.1)
    for name in MALFORMED:
        write_wav(root / "Actor_01" / name, tone(0.1, 0, 1, 0))
    (root / "extra").mkdir()
    shutil.copy(written[0].path, root / "extra" / written[0].path.name)  # the same recording twice
    (root / "Actor_01" / "README.txt").write_text("not audio")
    return root, written


def test_folds_are_the_papers_and_partition_the_actors():
    assert [set(t) for t, _ in RAVDESS_FOLDS] == PAPER_TEST
    assert [set(v) for _, v in RAVDESS_FOLDS] == PAPER_VALIDATION
    test_actors = Counter(a for t in PAPER_TEST for a in t)
    assert set(test_actors) == set(range(1, 25)) and set(test_actors.values()) == {1}  # each actor tested once
    assert all(isinstance(a, int) for t, v in RAVDESS_FOLDS for a in (*t, *v))


@pytest.mark.parametrize("fold", [1, 2, 3, 4, 5])
def test_each_fold_splits_by_actor(tree, fold):
    root, written = tree
    corpus = open_corpus(f"ravdess:{root}", fold=fold)
    assert corpus.splits() == ("train", "validation", "test") and corpus.classes == RAVDESS_CLASSES
    actors = {s: {int(u.speaker) for u in corpus.utterances(s)} for s in corpus.splits()}
    assert actors["test"] == PAPER_TEST[fold - 1] and actors["validation"] == PAPER_VALIDATION[fold - 1]
    assert actors["train"] == set(range(1, 25)) - PAPER_TEST[fold - 1] - PAPER_VALIDATION[fold - 1]
    ids = [u.id for s in corpus.splits() for u in corpus.utterances(s)]
    assert len(ids) == len(set(ids)) == 24 * 8  # disjoint, every speech file once
    assert corpus.name == f"ravdess-fold{fold}"


def test_labels_speakers_and_transcripts_come_from_names(tree):
    root, written = tree
    corpus = open_corpus(f"ravdess:{root}")  # fold 1 by default
    by_id = {u.id: u for s in corpus.splits() for u in corpus.utterances(s)}
    speech = [f for f in written if not f.song]
    for f in speech:
        u = by_id[f.path.stem]
        assert u.label == RAVDESS_CLASSES[f.emotion - 1] and u.speaker == str(f.actor)
        assert u.path == f.path and u.split == ("test" if f.actor in PAPER_TEST[0] else
                                                "validation" if f.actor in PAPER_VALIDATION[0] else "train")
    # Statement 01 is "Kids ...", 02 "Dogs ..." (the fixture's first 8 files per actor all use statement 01).
    assert {u.transcript for u in by_id.values()} == {"Kids are talking by the door."}
    assert Counter(u.label for u in by_id.values()) == dict.fromkeys(RAVDESS_CLASSES, 24)


def test_drops_are_counted_by_reason(tree):
    root, _ = tree
    corpus = open_corpus(f"ravdess:{root}")
    expected = Counter(MALFORMED.values())
    expected["song (vocal channel 02; song=true keeps it)"] = 24 * 2
    expected["duplicate file name"] = 1
    assert corpus.dropped == dict(expected)
    assert list(corpus.dropped.values()) == sorted(corpus.dropped.values(), reverse=True)  # largest first


def test_song_option_keeps_song_and_the_spec_reopens_it(tree):
    root, written = tree
    corpus = open_corpus(f"ravdess:{root}?song=true&fold=4")
    kept = [u for s in corpus.splits() for u in corpus.utterances(s)]
    assert len(kept) == 24 * 10 and "song (vocal channel 02; song=true keeps it)" not in corpus.dropped
    song = {f.path.stem for f in written if f.song}
    assert song <= {u.id for u in kept} and len(song) == 48
    again = open_corpus(corpus.spec)
    assert again.spec == corpus.spec == f"ravdess:{root}?fold=4&song=true"
    assert [u.id for u in again.utterances("test")] == [u.id for u in corpus.utterances("test")]
    # Keyword options override the string's; training's "development" finds the validation actors.
    assert {u.speaker for u in open_corpus(corpus.spec, fold=1).utterances("development")} == {"3", "6"}


def test_errors_are_one_line(tree, tmp_path):
    root, _ = tree
    for bad, message in [({"fold": 0}, "ravdess: option fold expects an integer in 1..5, got 0"),
                         ({"fold": 6}, "ravdess: option fold expects an integer in 1..5, got 6"),
                         ({"fold": "x"}, "ravdess: option fold expects an integer in 1..5, got 'x'"),
                         ({"song": "maybe"}, "ravdess: option song expects true or false, got 'maybe'"),
                         ({"actors": "1"}, "ravdess: unknown option 'actors'; options: fold, song")]:
        with pytest.raises(DataError, match=f"^{message}$"):
            open_corpus(f"ravdess:{root}", **bad)
    with pytest.raises(DataError, match=r"no \.wav files \(expected RAVDESS's Actor_XX/MM-VV-EE-II-SS-RR-AA\.wav\)"):
        open_corpus(f"ravdess:{tmp_path}")
    write_wav(tmp_path / "Actor_01" / ravdess_name(3, 1, song=True), tone(0.1, 0, 1, 0))
    with pytest.raises(DataError, match=r"no RAVDESS files kept of 1 \.wav files \(dropped: 1 song"):
        open_corpus(f"ravdess:{tmp_path}")
    with pytest.raises(DataError, match="no such folder"):
        open_corpus(f"ravdess:{tmp_path / 'missing'}")
