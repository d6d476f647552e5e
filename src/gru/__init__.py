"""gru: Gated Recurrent Units, exactly and fast."""

from gru.nn import GRU, GRUCell, MinGRU

__all__ = ["GRU", "GRUCell", "MinGRU", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str):
    # The applications load on first use (`gru.tasks.SentimentClassifier`), so `import gru`
    # stays as light as the layer.
    if name == "tasks":
        import importlib

        return importlib.import_module("gru.tasks")
    raise AttributeError(f"module 'gru' has no attribute {name!r}")
