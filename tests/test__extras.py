"""gru._extras: an optional package imported through require, or an error naming its extra."""

import sys

import pytest

from gru._extras import EXTRAS, MissingExtra, require


def test_require_returns_the_package_of_an_installed_extra():
    import onnx

    assert require("onnx", "onnx", "f") is onnx
    assert require("onnx.helper", "onnx", "f") is onnx.helper


@pytest.mark.parametrize(("extra", "module"), [(e, m) for e, ms in EXTRAS.items() for m in ms])
def test_a_missing_package_names_its_extra_and_how_to_install_it(extra, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import MODULE now raises ImportError
    with pytest.raises(
        MissingExtra,
        match=rf"^reading X needs the '{extra}' extra: pip install 'gru\[{extra}\]' \(import {module} failed: import of {module} halted; None in sys\.modules\)$",
    ) as error:
        require(module, extra, "reading X")
    assert isinstance(error.value, ModuleNotFoundError) and error.value.name == module


def test_a_package_of_no_extra_is_a_mistake_of_the_caller():
    with pytest.raises(ValueError, match=r"require: 'numpy' is not a package of an extra 'onnx'"):
        require("numpy", "onnx", "f")
    with pytest.raises(ValueError, match=r"require: 'onnx' is not a package of an extra 'gpu'"):
        require("onnx", "gpu", "f")
