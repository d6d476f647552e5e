"""gru.data.text: the tokenizer and padding against Keras's own, on hand-written examples."""

import json
import os

import numpy as np
import pytest

from gru.data.text import (
    OOV,
    START,
    Sequences,
    build_word_index,
    encode,
    limit_vocabulary,
    load_word_index,
    pad_sequences,
    tokenize,
)

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch: no TensorFlow needed

HAND = [
    ("It's <br />GREAT!", ["it's", "great"]),
    ("Well-made, 10/10.<br /><br />See it", ["well", "made", "10", "10", "see", "it"]),
    ("tabs\tand\nnew lines", ["tabs", "and", "new", "lines"]),
    ("Café OLÉ — naïve", ["café", "olé", "—", "naïve"]),  # non-ASCII is kept, as Keras keeps it
    ('(parens) [brackets] {braces} "quotes"', ["parens", "brackets", "braces", "quotes"]),
    ("   ", []),
]


@pytest.mark.parametrize(("text", "words"), HAND)
def test_tokenize_hand_written_examples(text, words):
    assert tokenize(text) == words


@pytest.mark.parametrize(
    "text",
    [
        "It's GREAT! Well-made\x85 10/10.",
        "A <i>so-so</i> film: 3 stars... maybe 4?! (I'd say) 'fine' #meh @you ~x",
        "Tabs\tnewlines\nand   many    spaces",
        "don't won't can't isn't 'quoted' ''",
    ],
)
def test_tokenize_equals_keras_text_to_word_sequence(text):
    from keras.src.legacy.preprocessing.text import text_to_word_sequence

    assert tokenize(text) == text_to_word_sequence(text)


def test_encode_starts_shifts_ranks_by_three_and_marks_unknown_words():
    index = {"the": 1, "movie": 2, "was": 3, "good": 4}
    ids = encode("The movie was GOOD, not bad", index)
    assert ids.tolist() == [START, 4, 5, 6, 7, OOV, OOV]
    assert ids.dtype == np.int32
    assert encode("the", index, start=False).tolist() == [4]
    # num_words = 6 keeps ids 0..5: "was" (6) and "good" (7) become OOV.
    assert limit_vocabulary(ids, 6).tolist() == [START, 4, 5, OOV, OOV, OOV, OOV]


def test_build_word_index_ranks_by_frequency_then_alphabet():
    index = build_word_index(["b a c a", "c a <br />b d"])
    assert index == {"a": 1, "b": 2, "c": 3, "d": 4}


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [1, 3, 4, 7, None])
def test_pad_sequences_equals_keras(padding, truncating, maxlen):
    from keras.utils import pad_sequences as keras_pad

    seqs = [[5, 6, 7, 8, 9], [1, 2], [3], list(range(10, 17))]
    x, lengths = pad_sequences(seqs, maxlen, padding=padding, truncating=truncating)
    expected = keras_pad(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
    np.testing.assert_array_equal(x, expected)
    T = x.shape[1]
    assert lengths.tolist() == [min(len(s), T) for s in seqs]


def test_pad_sequences_by_hand_and_its_errors():
    x, lengths = pad_sequences([[1, 2, 3, 4], [5]], 3)
    assert x.tolist() == [[2, 3, 4], [0, 0, 5]] and lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="padding must be 'pre' or 'post', got 'mid'"):
        pad_sequences([[1]], 2, padding="mid")
    with pytest.raises(ValueError, match="maxlen must be at least 1, got 0"):
        pad_sequences([[1]], 0)


def test_sequences_subset_and_round_trip():
    lists = [[1, 2, 3], [], [4], [5, 6]]
    seqs = Sequences.from_lists(lists)
    assert len(seqs) == 4 and seqs.lengths.tolist() == [3, 0, 1, 2]
    assert [seqs[i].tolist() for i in range(4)] == lists
    picked = seqs.subset(np.array([3, 0, 1, 3]))
    assert [picked[i].tolist() for i in range(4)] == [[5, 6], [1, 2, 3], [], [5, 6]]
    assert seqs.subset(np.arange(4)) == seqs
    with pytest.raises(ValueError, match="offsets must rise from 0 to len"):
        Sequences(np.arange(3), np.array([0, 2]))


def test_load_word_index_reads_keras_layout_and_rejects_others(tmp_path):
    good = tmp_path / "index.json"
    good.write_text(json.dumps({"the": 1, "a": 2}))
    assert load_word_index(good) == {"the": 1, "a": 2}
    with pytest.raises(FileNotFoundError, match=r"word index: .*missing.json' does not exist"):
        load_word_index(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"the": 1, "a": "two"}')
    with pytest.raises(
        ValueError, match="maps 'a' to 'two'; every rank must be a positive integer"
    ):
        load_word_index(bad)
    bad.write_text('{"the": 1, "a": 1}')
    with pytest.raises(ValueError, match="gives the same rank to several words"):
        load_word_index(bad)
    bad.write_text('{"the": 1,')
    with pytest.raises(ValueError, match=r"cannot read .* as JSON"):
        load_word_index(bad)


def test_a_folder_given_as_the_word_index_is_named_as_a_folder(tmp_path):
    from gru.data.text import load_word_index

    with pytest.raises(IsADirectoryError, match=r"word index: '.*' is a folder, not a JSON file"):
        load_word_index(tmp_path)
