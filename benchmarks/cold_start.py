"""How long a first use waits for the engine to compile, with an empty compile cache.

Each case runs in its own process with a fresh, empty ``NUMBA_CACHE_DIR`` and reports the
seconds from its start to its first result (the imports included, and apart) and the CPU
seconds the process used (on a machine that other programs keep busy, the wall time swells
and the CPU time much less); then the same case once more in a process that finds the cache
the first one left (warm). Inference computes with torch operations while the engine
compiles in a process of its own (`gru.ops.aside`, the default): its cold CPU seconds include
that compile, which each case waits for after its first result. The last case is a whole
``gru train sentiment --preset seed --epochs 1`` on the sample in the package, with what it
said about compiling.

    python benchmarks/cold_start.py            # every case
    python benchmarks/cold_start.py inference  # some of them
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

_SETUP = """
import time
t0 = time.perf_counter()
import torch
import gru
imported = time.perf_counter() - t0
torch.manual_seed(0)
"""

CASES = {
    "inference": """
layer = gru.GRU(32, 64)
with torch.no_grad():
    layer(torch.randn(100, 32, 32))
""",
    "inference-small": """
layer = gru.GRU(32, 64)
with torch.no_grad():
    layer(torch.randn(5, 4, 32))
""",
    "training": """
layer = gru.GRU(32, 64)
out, _ = layer(torch.randn(100, 32, 32))
out.sum().backward()
""",
    "float64": """
layer = gru.GRU(32, 64, dtype=torch.float64)
with torch.no_grad():
    layer(torch.randn(100, 32, 32, dtype=torch.float64))
""",
    "streaming": """
stream = gru.GRU(32, 64).stream(1)
stream(torch.randn(1, 32))
""",
}

_REPORT = """
import json
print(json.dumps({"imported": imported, "first_result": time.perf_counter() - t0}), flush=True)
from gru.ops import aside
aside.finish()  # a compile aside (inference) ends before the warm run looks for its cache
"""


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _run(command: list[str], cache: str) -> tuple[str, str, float, float]:
    """(stdout, stderr, wall seconds, CPU seconds) of a process with its own cache."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    start, cpu = time.perf_counter(), _cpu()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return done.stdout, done.stderr, time.perf_counter() - start, _cpu() - cpu


def _python(code: str, cache: str) -> tuple[dict, str, float]:
    out, err, _, cpu = _run([sys.executable, "-c", _SETUP + code + _REPORT], cache)
    return json.loads(out.strip().splitlines()[-1]), err, cpu


def _train(cache: str, out: str) -> tuple[float, str, float]:
    command = [sys.executable, "-m", "gru", "train", "sentiment", "--preset", "seed"]
    command += ["--epochs", "1", "--quiet", "--out", out]
    _, err, wall, cpu = _run(command, cache)
    return wall, err, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"of {', '.join(CASES)}, train (default all)")
    parser.add_argument("--show", action="store_true", help="print what each run wrote on stderr")
    names = parser.parse_args().cases or [*CASES, "train"]
    print(
        "| case | cold: import s | cold: first result s | cold: CPU s | warm: first result s "
        "| warm: CPU s |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        with tempfile.TemporaryDirectory() as cache:
            if name == "train":
                cold, said, cold_cpu = _train(cache, os.path.join(cache, "run1"))
                warm, _, warm_cpu = _train(cache, os.path.join(cache, "run2"))
                row = (
                    f"| train sentiment (whole run) | | {cold:.1f} | {cold_cpu:.1f} | {warm:.1f} "
                    f"| {warm_cpu:.1f} |"
                )
            else:
                cold, said, cold_cpu = _python(CASES[name], cache)
                warm, _, warm_cpu = _python(CASES[name], cache)
                row = (
                    f"| {name} | {cold['imported']:.1f} | {cold['first_result']:.1f} | "
                    f"{cold_cpu:.1f} | {warm['first_result']:.2f} | {warm_cpu:.1f} |"
                )
        print(row, flush=True)
        if parser.parse_args().show and said.strip():
            print(said.rstrip(), flush=True)


if __name__ == "__main__":
    main()
