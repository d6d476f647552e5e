"""Applications of the GRU, each a config dataclass and a Python API the CLI calls."""

from gru.tasks import adding, anomaly, compare, forecast, sentiment, textgen
from gru.tasks.anomaly import AnomalyConfig, AnomalyDetector
from gru.tasks.forecast import ForecastConfig, Forecaster
from gru.tasks.sentiment import SentimentClassifier, SentimentConfig
from gru.tasks.textgen import TextGenConfig, TextGenerator

__all__ = [
    "AnomalyConfig",
    "AnomalyDetector",
    "ForecastConfig",
    "Forecaster",
    "SentimentClassifier",
    "SentimentConfig",
    "TextGenConfig",
    "TextGenerator",
    "adding",
    "anomaly",
    "compare",
    "forecast",
    "sentiment",
    "textgen",
]
