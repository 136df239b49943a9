"""Corpus reading and bad input: one clear line naming the file and row."""

import csv
import shutil

import numpy as np
import pytest
import soundfile

from model.data import DataError, ManifestCorpus, load_audio, load_split, open_corpus


def _copy(tiny_corpus, tmp_path):
    target = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, target)
    return target


def _rewrite(manifest, edit):
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    fieldnames = list(rows[0])
    rows, fieldnames = edit(rows, fieldnames)
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_open_corpus_accepts_dir_and_kinds(tiny_corpus):
    for spec in (str(tiny_corpus), f"synthetic:{tiny_corpus}", f"csv:{tiny_corpus / 'manifest.csv'}"):
        corpus = open_corpus(spec)
        assert len(corpus.utterances("train")) == 32
        assert corpus.utterances("test")[0].transcript
    kinds = "msp-podcast:ROOT, ravdess:ROOT, csv:FILE, synthetic:DIR"
    with pytest.raises(DataError, match=f"unknown corpus kind 'msp' in 'msp:/nowhere'; use DIR or one of {kinds}$"):
        open_corpus("msp:/nowhere")
    with pytest.raises(DataError, match=rf"^/nowhere: no such folder /nowhere \(corpus kinds: {kinds}\)$"):
        open_corpus("/nowhere")
    with pytest.raises(DataError, match=r"^csv:/no/m.csv: no such file /no/m.csv"):
        open_corpus("csv:/no/m.csv")
    with pytest.raises(DataError, match="wav/manifest.csv: no such manifest file"):
        open_corpus(f"synthetic:{tiny_corpus / 'wav'}")


def test_missing_columns_named(tiny_corpus, tmp_path):
    root = _copy(tiny_corpus, tmp_path)
    _rewrite(root / "manifest.csv", lambda rows, names: (rows, [n for n in names if n != "label"]))
    with pytest.raises(DataError, match=r"manifest.csv: missing columns label \(expected path, label, split; "
                                        r"found path, split, speaker, transcript\)"):
        open_corpus(root)


def test_unknown_label_names_the_row(tiny_corpus, tmp_path):
    root = _copy(tiny_corpus, tmp_path)

    def edit(rows, names):
        rows[4]["label"] = "angry"
        return rows, names

    _rewrite(root / "manifest.csv", edit)
    with pytest.raises(DataError, match=r"manifest.csv row 6: unknown label 'angry'; known labels: neutral, anger"):
        open_corpus(root)


def test_empty_split_names_the_splits_present(tiny_corpus):
    with pytest.raises(DataError, match=r"split 'Test1' has no utterances \(splits present: train, development, "
                                        r"test\)"):
        open_corpus(tiny_corpus).utterances("Test1")


def test_missing_and_unreadable_audio(tiny_corpus, tmp_path):
    root = _copy(tiny_corpus, tmp_path)
    (root / "wav/utt00000.wav").unlink()
    (root / "wav/utt00001.wav").write_bytes(b"not a wav file")
    corpus = open_corpus(root)
    with pytest.raises(DataError, match=r"manifest.csv row 2: cannot read audio .*utt00000.wav \(no such file\)"):
        load_split(corpus, "train")
    loaded, skipped = load_split(corpus, "train", skip_bad_audio=True)
    assert skipped == 2 and len(loaded) == 30
    with pytest.raises(DataError, match=r"row 3: cannot read audio .*utt00001.wav"):
        load_audio(corpus.utterances("train")[1])


def test_other_rates_and_stereo_become_16k_mono(tmp_path):
    rate = 8_000
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(tmp_path / "a.wav", np.stack([tone, tone], axis=1), rate, subtype="FLOAT")
    (tmp_path / "manifest.csv").write_text("path,label,split\na.wav,x,train\n")
    corpus = ManifestCorpus(tmp_path / "manifest.csv")
    assert corpus.classes == ("x",)
    samples = load_audio(corpus.utterances("train")[0])
    assert samples.dtype == np.float32 and samples.shape == (16_000,)
    # The resampled tone keeps its frequency and amplitude (away from the filter's edge effects).
    reference = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16_000) / 16_000)
    assert np.abs(samples[1000:-1000] - reference[1000:-1000]).max() < 1e-2


def _iemocap_like(tmp_path):
    """A manifest as one would write for IEMOCAP: more labels than the 4 classes used, speakers, transcripts."""
    rows = [("a.wav", "neu", "train", "Ses01F", "Hello."), ("b.wav", "exc", "train", "Ses01M", ""),
            ("c.wav", "hap", "test", "", "Great!"), ("d.wav", "fru", "train", "Ses02F", "Ugh."),
            ("e.wav", "ang", "test", "Ses05M", "No."), ("f.wav", "sad", "train", "Ses01F", "Oh."),
            ("g.wav", "fru", "test", "Ses05F", "Hm."), ("h.wav", "xxx", "train", "Ses02M", "")]
    lines = ["path,label,split,speaker,transcript", *(",".join(r) for r in rows)]
    (tmp_path / "iemocap.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "iemocap.csv"


def test_manifest_class_subset_and_merge(tmp_path):
    manifest = _iemocap_like(tmp_path)
    corpus = open_corpus(f"csv:{manifest}?classes=neu,hap,ang,sad&merge=exc:hap")
    assert corpus.classes == ("neu", "hap", "ang", "sad")
    assert corpus.dropped == {"label 'fru' not in classes": 2, "label 'xxx' not in classes": 1}
    train = {u.id: u for u in corpus.utterances("train")}
    assert sorted(train) == ["a", "b", "f"] and train["b"].label == "hap"  # excited merged into happy
    assert train["b"].transcript is None and train["a"].transcript == "Hello."
    test = {u.id: u for u in corpus.utterances("test")}
    assert test["c"].speaker is None and test["e"].speaker == "Ses05M"
    assert corpus.spec == f"csv:{manifest}?classes=neu,hap,ang,sad&merge=exc:hap"
    assert [u.id for u in open_corpus(corpus.spec).utterances("train")] == ["a", "b", "f"]
    plain = open_corpus(f"csv:{manifest}")  # no options: every label, sorted, nothing dropped
    assert plain.classes == ("ang", "exc", "fru", "hap", "neu", "sad", "xxx") and plain.dropped == {}
    with pytest.raises(DataError, match="^csv: option merge expects FROM:TO pairs joined by commas, got 'exc'$"):
        open_corpus(f"csv:{manifest}?merge=exc")
    with pytest.raises(DataError, match="^csv: unknown option 'fold'; options: classes, merge$"):
        open_corpus(f"csv:{manifest}", fold=1)
