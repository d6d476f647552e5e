"""gru: Gated Recurrent Units, exactly and fast."""

from gru.nn import GRU, GRUCell

__all__ = ["GRU", "GRUCell", "__version__"]

__version__ = "0.1.0"
