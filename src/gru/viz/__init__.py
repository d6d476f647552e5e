"""See what the gates do: gate recording, figures, and self-contained HTML pages.

    record_gates(model.rnn, x)      r_t, z_t, n_t, h_t of every unit, layer and direction
    write_report(run_dir)           report.html of a training run
    write_text_explanation(e, out)  a review token by token, colored by its gates
    write_forecast_explanation(e, out)

The explanations are filled in by the tasks that own the models (`gru.tasks.explain`, behind
``gru explain``).

    recording.py   record_gates: the oracle's r, z, n, h, recomputed from a module's weights
    figures.py     every picture of the package, drawn with matplotlib without pyplot
    html.py        the building blocks of a self-contained page
    report.py      report.html of a run folder
    explain.py     the explanation pages (explain_translation.py: a translation's)
"""

from gru.viz.explain import (
    ForecastExplanation,
    TextExplanation,
    write_forecast_explanation,
    write_text_explanation,
)
from gru.viz.recording import GateRecording, LayerGates, record_gates
from gru.viz.report import write_report

__all__ = [
    "ForecastExplanation",
    "GateRecording",
    "LayerGates",
    "TextExplanation",
    "record_gates",
    "write_forecast_explanation",
    "write_report",
    "write_text_explanation",
]
