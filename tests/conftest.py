"""Tiny training runs of the forecast, textgen and anomaly tasks, made once per test session:
their own tests and the report and browser tests read the same folders (and never write in
them)."""

import os

import pytest

from viz_runs import anomaly_run, forecast_run, textgen_run

# Commands without --threads compute on every core whatever else runs (not fewer when other
# programs are busy, `gru.ops.threads.default_threads`): a test's results, compared bit for bit
# between runs, must not depend on the machine's load. Subprocesses inherit it.
os.environ.setdefault("GRU_THREADS", "all")
# The engine's tests test the engine: a cold cache compiles in place, not aside with torch
# operations computing meanwhile (`gru.ops.aside`; its own tests ask for "aside").
os.environ.setdefault("GRU_COMPILE", "wait")


@pytest.fixture(scope="session")
def forecast_trained(tmp_path_factory):
    """(Forecaster, run folder) of `viz_runs.forecast_run`."""
    return forecast_run(tmp_path_factory.mktemp("forecast") / "run")


@pytest.fixture(scope="session")
def textgen_trained(tmp_path_factory):
    """(TextGenerator, run folder, text file) of `viz_runs.textgen_run`."""
    folder = tmp_path_factory.mktemp("textgen")
    generator, run = textgen_run(folder / "run", folder / "rhyme.txt")
    return generator, run, folder / "rhyme.txt"


@pytest.fixture(scope="session")
def anomaly_trained(tmp_path_factory):
    """(AnomalyDetector, run folder) of `viz_runs.anomaly_run`."""
    return anomaly_run(tmp_path_factory.mktemp("anomaly") / "run")
