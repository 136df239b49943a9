"""The synthetic corpus: deterministic from its seed, speaker-independent splits, classes audible."""

import hashlib

import numpy as np
import pytest

from model.data import open_corpus
from model.synthetic import CLASSES, MIN_UTTERANCES, SPLITS, assignment, synthesize, utterance


def _digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_same_seed_same_bytes_other_seed_other_audio(tmp_path, tiny_corpus):
    again = tmp_path / "again"
    synthesize(again, utterances=MIN_UTTERANCES, seed=3, durations=(0.6, 1.0))
    assert _digest(again) == _digest(tiny_corpus)
    other = tmp_path / "other"
    synthesize(other, utterances=MIN_UTTERANCES, seed=4, durations=(0.6, 1.0))
    assert (other / "wav/utt00000.wav").read_bytes() != (again / "wav/utt00000.wav").read_bytes()


def test_an_utterance_does_not_depend_on_how_many_are_made():
    first, text, *_ = utterance(seed=5, index=17, durations=(0.5, 0.7))
    second, text2, *_ = utterance(seed=5, index=17, durations=(0.5, 0.7))
    assert np.array_equal(first, second) and text == text2


def test_splits_are_speaker_independent_and_hold_every_class(tiny_corpus):
    corpus = open_corpus(tiny_corpus)
    assert corpus.classes == CLASSES and corpus.splits() == SPLITS
    speakers = {split: {u.speaker for u in corpus.utterances(split)} for split in SPLITS}
    assert not (speakers["train"] & speakers["development"]) and not (speakers["train"] & speakers["test"])
    assert not (speakers["development"] & speakers["test"])
    for split in SPLITS:
        assert {u.label for u in corpus.utterances(split)} == set(CLASSES)
    assert [len(corpus.utterances(s)) for s in SPLITS] == [32, 8, 8]


def test_assignment_cycles_speakers_within_each_split():
    # 24 blocks of 8: 16 train blocks over speakers 0-15, 4 development over 16-19, 4 test over 20-23.
    blocks = [assignment(8 * b)[1:] for b in range(24)]
    assert [spk for split, spk in blocks if split == "train"] == list(range(16))
    assert [spk for split, spk in blocks if split == "development"] == [16, 17, 18, 19]
    assert [spk for split, spk in blocks if split == "test"] == [20, 21, 22, 23]


def test_prosody_differs_by_class():
    # Anger is louder and higher than sadness for the same speaker (utterances 1 and 3 share speaker 0).
    def rms_and_f0(index):
        samples, *_ = utterance(seed=0, index=index, durations=(1.5, 1.5))
        spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
        voiced = spectrum[int(60 * 1.5): int(500 * 1.5)]  # 60-500 Hz at 1/1.5 Hz per bin
        return np.sqrt(np.mean(samples**2)), (voiced.argmax() + 90) / 1.5

    anger, sadness = rms_and_f0(1), rms_and_f0(3)
    assert assignment(1)[2] == assignment(3)[2] == 0
    assert anger[0] > 2 * sadness[0]
    assert anger[1] > 1.2 * sadness[1]


def test_transcripts_carry_the_class():
    words = {label: set() for label in CLASSES}
    for i in range(64):
        _, text, label, *_ = utterance(seed=0, index=i, durations=(0.2, 0.2), text_cue=1.0)
        words[label] |= set(text.rstrip(".").split())
    for a in CLASSES:
        for b in CLASSES:
            assert a == b or not (words[a] & words[b])


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(utterances=47), "at least 48 utterances"),
    (dict(durations=(2.0, 1.0)), "shortest <= longest"),
    (dict(text_cue=1.5), r"text_cue in \[0, 1\]"),
], ids=["too-few", "durations", "text-cue"])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthesize(tmp_path, **kwargs)
