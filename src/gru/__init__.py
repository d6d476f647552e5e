"""gru: Gated Recurrent Units, exactly and fast."""

from gru.nn import GRU, GRUCell, MinGRU

__all__ = ["GRU", "GRUCell", "GRUClassifier", "GRURegressor", "MinGRU", "__version__"]

__version__ = "0.1.0"


def __getattr__(name: str):
    # The applications and the estimators load on first use (`gru.tasks.SentimentClassifier`,
    # `gru.GRURegressor`), so `import gru` stays as light as the layer.
    import importlib

    if name == "tasks":
        return importlib.import_module("gru.tasks")
    if name in ("GRURegressor", "GRUClassifier"):
        return getattr(importlib.import_module("gru.estimators"), name)
    raise AttributeError(f"module 'gru' has no attribute {name!r}")
