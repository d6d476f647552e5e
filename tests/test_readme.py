"""README.md as documentation tests: every ```python block runs as written.

The blocks run in the README's order, each in a namespace of its own, in a temporary folder
with ../shared beside it as beside the repository (the files they write stay out of the
repository; a missing ../shared/data fails the blocks that read it) and on one thread (a loaded
2-core machine).
A block may read what an earlier one wrote, as a reader following the README has it: the
explanations section reads the sentiment run the sentiment section trained into runs/seed.
The README keeps each block small (the sample in the package, a few hundred sequences, an
epoch or two) so that the whole file runs in well under a minute once the engine is compiled.
"""

import re
from pathlib import Path

import pytest

from gru.ops.threads import threads

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[tuple[int, str]]:
    """(the line after the opening fence, the code) of every ```python block of README.md."""
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, found.start()) + 2, found.group(1))
        for found in re.finditer(r"^```python\n(.*?)^```$", text, re.S | re.M)
    ]


# What the libraries warn of their own internals, ignored as their own tests ignore it: Keras
# 3.15's Variable.numpy() calls np.array(self) on a torch-backed variable whose __array__ has no
# copy= keyword, which NumPy 2 warns of (tests/test_interop_keras.py); torch.onnx.export's
# exporter still calls a deprecated torch.utils._pytree check (tests/test_export.py); torch
# 2.13 calls torch.jit deprecated, and the README shows it for the TorchScript users it still
# serves (tests/test_script.py).
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
def test_every_python_block_of_the_readme_runs_as_written(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 14  # the fences are found: none skipped by a change of their form
    # The README is read from the repository's root, with the data at ../shared/data beside it.
    (tmp_path / "shared").symlink_to(README.parents[1] / "shared", target_is_directory=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    with threads(1):
        for line, code in blocks:
            # Padded to its line, so that a failure's traceback names the README's line.
            compiled = compile("\n" * (line - 1) + code, str(README), "exec")
            exec(compiled, {"__name__": f"README.md:{line}"})
