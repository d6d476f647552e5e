"""The command line, ``gru`` and ``python -m gru``: a table of commands (`gru.cli.commands`),
each parsing its arguments into a task's config and calling the task's Python API.

    commands   the table and `main`
    train      ``gru train TASK``, one section per task
    use        the commands on a trained run: predict, evaluate, forecast, generate, detect,
               explain
    tools      convert, compare
    options    what the commands share: option types, training options, run folders
"""

from gru.cli.commands import main

__all__ = ["main"]
