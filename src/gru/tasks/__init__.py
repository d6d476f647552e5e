"""Applications of the GRU, each a config dataclass and a Python API the CLI calls."""

from gru.tasks import adding, sentiment
from gru.tasks.sentiment import SentimentClassifier, SentimentConfig

__all__ = ["SentimentClassifier", "SentimentConfig", "adding", "sentiment"]
