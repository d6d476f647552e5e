"""The PyTorch layers: drop-in replacements for `torch.nn.GRU` and `torch.nn.GRUCell`, and minGRU.

These modules own the PyTorch contract: argument validation, parameters and their
initialization, batch_first, unbatched input, PackedSequence, layers, directions and dropout.
The math of one layer in one direction is delegated to `gru.ops`.

    gru.py       GRU                    cell.py      GRUCell
    stream.py    GRUStream (a GRU one step at a time)
    mingru.py    MinGRU, MinGRUStream   _base.py     what the layers share (checks, layouts)
    packing.py   lengths and PackedSequence          convert.py   torch.nn.GRU ↔ gru.GRU
    script.py    TorchScript (ScriptableGRU)  augment.py   Augment (noise while training)
"""

from gru.nn.augment import Augment
from gru.nn.cell import GRUCell
from gru.nn.gru import GRU
from gru.nn.mingru import MinGRU, MinGRUStream
from gru.nn.stream import GRUStream

__all__ = ["GRU", "Augment", "GRUCell", "GRUStream", "MinGRU", "MinGRUStream"]
