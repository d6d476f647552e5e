"""The optional packages: a feature that needs one imports it through `require`, which names the
extra to install when it is missing, instead of a bare ``No module named ...``.

The extras (``pyproject.toml``) and what needs them:

    onnx     onnx, onnxruntime, onnxscript: ONNX files read and written (`gru.interop.onnx`,
             ``gru convert`` to or from .onnx); onnxscript is what torch.onnx.export needs
    keras    keras: Keras itself, for building the Keras side of a conversion (Keras files are
             read and written without it)
    sklearn  scikit-learn: clone, GridSearchCV and Pipeline around gru's models
    audio    librosa, soundfile: audio files read, resampled and turned into log-mel frames
             (`gru.data.speech`, ``gru train speech``, ``gru listen``)
    music    mido: MIDI files written from piano rolls (`gru.data.music`, ``gru compose``)
    translate sentencepiece, sacrebleu: subwords learned on parallel text and BLEU / chrF
             scores (`gru.data.translation`, ``gru train translate``, ``gru translate``)
    dev      all of the above and the tools of the tests and benchmarks (pytest, hypothesis,
             ruff, openvino)
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "require"]

EXTRAS = {
    "onnx": ("onnx", "onnxruntime", "onnxscript"),
    "keras": ("keras",),
    "sklearn": ("sklearn",),
    "audio": ("librosa", "soundfile"),
    "music": ("mido",),
    "translate": ("sentencepiece", "sacrebleu"),
}
"""The packages of each extra, by the name they are imported by."""


class MissingExtra(ModuleNotFoundError):
    """An optional package that a feature needs is not installed (or fails to import); the
    message names the feature, the extra and the command that installs it."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (a package of the extra ``extra``) for ``feature``, or raise
    `MissingExtra` saying which extra to install.

    ``feature`` is what needs it, as a person would say it: ``"export_onnx: writing ONNX"``
    gives ``export_onnx: writing ONNX needs the 'onnx' extra: pip install 'gru[onnx]' (import
    onnx failed: No module named 'onnx')``.
    """
    if extra not in EXTRAS or module.split(".")[0] not in EXTRAS[extra]:
        raise ValueError(
            f"require: {module!r} is not a package of an extra {extra!r}; the extras are {EXTRAS}"
        )
    try:
        return importlib.import_module(module)
    except ImportError as error:  # also a package hidden by sys.modules[name] = None
        raise MissingExtra(
            f"{feature} needs the {extra!r} extra: pip install 'gru[{extra}]' "
            f"(import {module} failed: {error})",
            name=module,
        ) from None
