"""gru.data.arrays: your own X read as sequences (arrays, one feature, ragged lists), checked
by name, and batches of different lengths padded only to their longest sequence."""

import numpy as np
import pytest
import torch

from gru.data.arrays import Sequences, as_inputs, read_sequences, real_numbers, standardizer


def test_arrays_and_lists_of_equal_length_become_one_array():
    X = np.arange(24.0).reshape(2, 4, 3)
    for given in (X, list(X), tuple(X)):
        array, lengths = read_sequences(given, "f")
        assert isinstance(array, np.ndarray) and array.shape == (2, 4, 3)
        assert lengths.tolist() == [4, 4]
    one, lengths = read_sequences(X[:, :, 0], "f")  # (N, T): one feature per step
    assert one.shape == (2, 4, 1) and np.array_equal(one[:, :, 0], X[:, :, 0])


def test_ragged_lists_stay_ragged_and_batches_are_padded_to_their_longest():
    X = [np.ones((3, 2)), 2 * np.ones((5, 2)), 3 * np.ones((1, 2))]
    items, lengths = read_sequences(X, "f")
    assert isinstance(items, list) and lengths.tolist() == [3, 5, 1]
    sequences, lengths = as_inputs(items, lengths, np.zeros(2), np.ones(2))
    assert isinstance(sequences, Sequences) and len(sequences) == 3
    batch = sequences[torch.tensor([2, 0])]  # (2, 3, 2): the longest of these two is 3
    assert batch.shape == (2, 3, 2) and batch.dtype == torch.float32
    assert batch[0, 0].tolist() == [3, 3] and batch[0, 1:].abs().sum() == 0
    assert sequences.subset(torch.tensor([1])).lengths.tolist() == [5]
    one_feature, _ = read_sequences([np.arange(3.0), np.arange(2.0)], "f")  # (T_i,) items
    assert [x.shape for x in one_feature] == [(3, 1), (2, 1)]


def test_standardizer_counts_every_step_once():
    items = [np.array([[0.0, 5.0]]), np.array([[2.0, 5.0], [4.0, 5.0]])]
    mean, scale = standardizer(items)
    assert mean.tolist() == [2.0, 5.0]
    assert scale[0] == pytest.approx(np.sqrt(8 / 3)) and scale[1] == 1.0  # constant: 1


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (
            [1.0, np.nan],
            ValueError,
            r"f: v holds NaN or infinite values \(the first at index \[1\]\)",
        ),
        ([1j], ValueError, r"f: v must hold real numbers: Complex data not supported"),
        (["x"], TypeError, r"f: v must hold numbers, got dtype <U1: could not convert"),
    ],
)
def test_real_numbers_names_the_argument(value, error, match):
    with pytest.raises(error, match=match):
        real_numbers(value, "v", "f")


def test_sparse_input_is_refused_by_name():
    import scipy.sparse as scipy_sparse  # installed with scikit-learn (the dev extras)

    with pytest.raises(
        TypeError, match=r"f: X is a sparse csr_matrix; sparse input is not supported"
    ):
        read_sequences(scipy_sparse.csr_matrix(np.eye(3)), "f")
