"""``gru compile``: compile the CPU engine ahead of time, for images and CI.

The engine's kernels compile on their first use and are cached on disk, once per machine
(`gru.kernels.compiling`); this command compiles every kind the engine can use, so no later
command waits for it."""

from __future__ import annotations

import argparse
import textwrap
import time

__all__ = ["add", "run"]


def add(commands):
    from gru.kernels.precompile import TARGETS

    compile_ = commands.add_parser(
        "compile",
        help="compile the CPU engine ahead of time (for images and CI)",
        description=textwrap.fill(
            "Compile every kernel the CPU engine can use into Numba's cache, so that "
            "no later command waits for a compile: for float32 and float64, "
            + ", ".join(TARGETS)
            + " (inference and training of the plain layer, training's backward loops alone: "
            "the row kernels', the packed loops' and the register tiles' (float32 only), "
            "the variants layer norm, zoneout "
            "and recurrent dropout, large layers on the BLAS torch carries, bfloat16 products "
            "(bf16-float32 only), the streaming step), both conventions and every batch "
            "sharding. Prints what it compiled and how long it took. "
            "The cache is the one Numba uses: beside the installed package, or where "
            "NUMBA_CACHE_DIR says.",
            width=88,
        ),
        epilog="examples:\n"
        "  gru compile                                  everything (minutes, once per machine)\n"
        "  gru compile --only inference-float32         what a float32 layer needs to infer\n"
        "  NUMBA_CACHE_DIR=/opt/gru-cache gru compile   into a cache an image keeps (set the "
        "same\n"
        "                                               NUMBA_CACHE_DIR where it runs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the examples as written
    )
    compile_.add_argument(
        "--only",
        metavar="TARGETS",
        help="comma-separated, of TARGET-DTYPE with TARGET one of "
        + ", ".join(TARGETS)
        + " and DTYPE float32 or float64, e.g. inference-float32,training-float32 "
        "(default: all)",
    )
    return compile_


def run(args) -> int:
    from gru.kernels.precompile import compile_all
    from gru.ops import start_engine

    only = None
    if args.only is not None:
        only = [name.strip() for name in args.only.split(",") if name.strip()]
        if not only:
            raise ValueError("--only: give at least one target, e.g. inference-float32")
    start_engine()  # binds torch's BLAS: the large layers' loops call it
    start = time.perf_counter()
    seconds = compile_all(only)
    print(f"compiled {len(seconds)} targets in {time.perf_counter() - start:.1f} s")
    return 0
