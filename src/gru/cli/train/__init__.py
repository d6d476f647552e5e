"""``gru train TASK``: one module per task, each with ``add`` (its options: each one's ``dest``
is the config setting it gives, so `gru.cli.options.train_config` lays them over the config)
and ``run`` (build the task's config, call its ``fit``, print the report). A new task adds its
module here and one line to `TASKS`."""

from __future__ import annotations

from gru.cli.train import (
    adding,
    anomaly,
    classify,
    forecast,
    music,
    sentiment,
    speech,
    textgen,
    translate,
)

__all__ = ["TASKS"]

# `gru train TASK`: (add its parser to the subcommands, run it), in the order of `gru train -h`.
TASKS = {
    "adding": (adding.add, adding.run),
    "sentiment": (sentiment.add, sentiment.run),
    "forecast": (forecast.add, forecast.run),
    "textgen": (textgen.add, textgen.run),
    "anomaly": (anomaly.add, anomaly.run),
    "classify": (classify.add, classify.run),
    "speech": (speech.add, speech.run),
    "music": (music.add, music.run),
    "translate": (translate.add, translate.run),
}
