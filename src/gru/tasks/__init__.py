"""Applications of the GRU, each a config dataclass and a class with fit / predict / evaluate /
load on a shared run folder (`gru.tasks.runs`); the CLI (`gru.cli`) calls the same API.

    adding, sentiment, forecast, textgen, anomaly, classify, speech, music, translate    one
                  file per task
    listening     words heard as audio arrives: a word frame by frame, words in a stream
    runs          one run folder: out/resume checks, config.json, metrics.json, the report
    baselines     what every task's model is measured against
    evaluation    the scores, and the anomalies planted to score a detector
    series        how the tasks on CSV series read them
    explanations  ``gru explain``: what the gates did on your input
    compare       ``gru compare``: the same models on RNN, LSTM, GRU and MinGRU layers
"""

from gru.tasks import (
    adding,
    anomaly,
    baselines,
    classify,
    compare,
    evaluation,
    explanations,
    forecast,
    listening,
    music,
    runs,
    sentiment,
    series,
    speech,
    textgen,
    translate,
)
from gru.tasks.adding import Adder, AddingConfig
from gru.tasks.anomaly import AnomalyConfig, AnomalyDetector
from gru.tasks.classify import ClassifyConfig, SequenceClassifier
from gru.tasks.explanations import explain
from gru.tasks.forecast import ForecastConfig, Forecaster
from gru.tasks.music import MusicConfig, MusicModel
from gru.tasks.runs import RunFolder
from gru.tasks.sentiment import SentimentClassifier, SentimentConfig
from gru.tasks.speech import SpeechConfig, SpeechRecognizer
from gru.tasks.textgen import TextGenConfig, TextGenerator
from gru.tasks.translate import TranslateConfig, Translator

__all__ = [
    "Adder",
    "AddingConfig",
    "AnomalyConfig",
    "AnomalyDetector",
    "ClassifyConfig",
    "ForecastConfig",
    "Forecaster",
    "MusicConfig",
    "MusicModel",
    "RunFolder",
    "SentimentClassifier",
    "SentimentConfig",
    "SequenceClassifier",
    "SpeechConfig",
    "SpeechRecognizer",
    "TextGenConfig",
    "TextGenerator",
    "TranslateConfig",
    "Translator",
    "adding",
    "anomaly",
    "baselines",
    "classify",
    "compare",
    "evaluation",
    "explain",
    "explanations",
    "forecast",
    "listening",
    "music",
    "runs",
    "sentiment",
    "series",
    "speech",
    "textgen",
    "translate",
]
