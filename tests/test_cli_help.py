"""What ``gru … --help`` shows: an epilog of real invocations for every command (each one
parses as written), the options a run requires marked required, one --out for every command
that writes, --limit for every task that reads data."""

import re
import shlex

import pytest

from gru.cli import main
from gru.cli.commands import COMMANDS, parser
from gru.cli.train import TASKS

EVERY_COMMAND = [[]] + [[name] for name in COMMANDS] + [["train", task] for task in TASKS]


def help_text(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def examples(text: str) -> list[list[str]]:
    """The invocations of the epilog "examples:" of a help text, as argv lists after "gru"."""
    assert "\nexamples:\n" in text, "no examples"
    lines = text.split("\nexamples:\n", 1)[1].splitlines()
    found = []
    for line in lines:
        if not line.startswith("  ") or "gru " not in line:
            continue  # a continued comment of `gru compile`'s examples
        command = re.split(r" {3,}", line.strip())[0]  # before a comment set off by spaces
        words = shlex.split(command)
        words = words[words.index("gru") :]  # after an environment variable set for it
        found.append(words[1:])
    return found


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=lambda a: " ".join(a) or "gru")
def test_every_command_shows_examples_that_parse_as_written(capsys, argv):
    found = examples(help_text(capsys, argv))
    assert found, argv
    for words in found:
        if words[-1:] == ["--help"]:
            continue
        args = parser().parse_args(words)  # exits 2, failing the test, on an unknown option
        assert args.handler is not None
        if argv and argv != ["train"]:  # a command's examples are of that command
            assert words[: len(argv)] == argv, words


REQUIRED = {
    ("train", "forecast"): ["--csv PATH", "--target COL"],
    ("train", "anomaly"): ["--csv PATH", "--column COL"],
    ("train", "textgen"): ["--text PATH"],
    ("forecast",): ["--run RUN_DIR", "--csv PATH"],
    ("detect",): ["--run RUN_DIR", "--csv PATH"],
    ("predict",): ["--run RUN_DIR"],
}


@pytest.mark.parametrize("argv", list(REQUIRED), ids=" ".join)
def test_required_options_show_as_required(capsys, argv):
    usage = " ".join(help_text(capsys, argv).split("\n\n")[0].split())
    for option in REQUIRED[argv]:
        assert f" {option} " in usage and f"[{option}]" not in usage, (argv, option)
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    missing = ", ".join(option.split()[0] for option in REQUIRED[argv])
    assert f"error: the following arguments are required: {missing}" in capsys.readouterr().err


def test_a_resumed_run_needs_no_data_option(capsys, tmp_path):
    # --csv and --target are the run's own: --resume alone parses, and fails only on the folder.
    assert main(["train", "forecast", "--resume", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"gru: error: run: '{tmp_path / 'none'}' does not exist\n"
    for resume in (f"--resume={tmp_path}", "--resum", "--res"):  # argparse takes prefixes too
        args = parser().parse_args(["train", "forecast", resume, *([str(tmp_path)] * ("=" not in resume))])  # fmt: skip
        assert args.resume == str(tmp_path) and args.csv is None and args.target is None


@pytest.mark.parametrize(
    "argv",
    [["train", t] for t in ("sentiment", "forecast", "anomaly", "textgen")],
    ids=" ".join,
)
def test_every_task_that_reads_data_takes_a_limit(capsys, argv):
    assert "--limit N" in help_text(capsys, argv)
    with pytest.raises(SystemExit):
        main([*argv, "--limit", "0"])
    assert "--limit: must be a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["train", "adding"], ["explain"], ["compare"], ["forecast"], ["detect"]], ids=" ".join
)
def test_every_command_that_writes_names_it_out(capsys, argv):
    text = help_text(capsys, argv)
    assert "--out " in text and "--output" not in text  # the old name works, unshown


def test_compare_states_its_defaults(capsys):
    text = " ".join(help_text(capsys, ["compare"]).split())
    assert "--seed SEED seed of every random choice: the data drawn and the weights (default 0)" in text  # fmt: skip
    assert "(default: a new folder under runs/, compare-<date>-<time>)" in text
    assert "--quick a smoke test of under 2 minutes" in text
