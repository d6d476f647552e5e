"""gru.interop.keras_config against Keras 3 itself (torch backend): settings gru cannot compute
exactly are refused, from a layer object and from a file."""

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras on torch: no TensorFlow needed

import keras
import pytest

import test_interop_keras
from gru.interop.keras import from_keras
from test_interop_keras import H, I

pytestmark = test_interop_keras.pytestmark  # Keras' own NumPy 2 warning, as there


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"activation": "relu"},
            r"layer 'g': activation='relu' cannot be represented exactly \(gru supports only activation='tanh'\)",
        ),
        (
            {"recurrent_activation": "hard_sigmoid"},
            r"layer 'g': recurrent_activation='hard_sigmoid' cannot be represented exactly",
        ),
        (
            {"dtype": "mixed_float16"},
            r"layer 'g': dtype policy 'mixed_float16' cannot be represented exactly",
        ),
    ],
)
def test_settings_that_are_not_exact_are_refused(kw, message, tmp_path):
    model = keras.Sequential([keras.Input((None, I)), keras.layers.GRU(H, name="g", **kw)])
    with pytest.raises(ValueError, match="from_keras: " + message):
        from_keras(model.layers[0])
    model.save(tmp_path / "bad.keras")
    with pytest.raises(ValueError, match=r"from_keras: '.*bad\.keras': " + message):
        from_keras(tmp_path / "bad.keras")


def test_bidirectional_merge_modes_other_than_concat_are_refused():
    layer = keras.layers.Bidirectional(keras.layers.GRU(H), merge_mode="sum", name="bi")
    keras.Sequential([keras.Input((None, I)), layer])
    with pytest.raises(
        ValueError, match=r"layer 'bi': merge_mode='sum' cannot be represented exactly"
    ):
        from_keras(layer)
