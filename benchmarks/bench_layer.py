"""gru.GRU beside torch.nn.GRU (in turns, one process) and ONNX Runtime (its own process), on the
reference configurations.

For each configuration it prints the median time of inference and of one training step
(forward, then backward of output.sum()) for torch.nn.GRU and gru.GRU, ONNX Runtime's
inference on the same weights (exported with gru.interop.onnx) in its own process, the ratios
torch / gru and onnxruntime / gru (the latter to gru timed alone the same way, in alternation;
above 1: gru is faster), and the fraction of the GEMM roofline reached:
the time the configuration's matrix products alone would take at this machine's measured GEMM
rate, divided by gru's time. Then the variants (reset before, bidirectional, two layers,
packed), the memory kept for backward, and the start-up of a second process; then bfloat16
inference (S2, S4, S5: gru.GRU in bfloat16 beside torch.nn.GRU and gru.GRU in float32,
torch.nn.GRU in bfloat16 and OpenVINO in bfloat16 in its own process) and the largest error of
gru's bfloat16 output against its float32 output for S1-S5.
Everything is also written to bench-results/layer.json.

    python benchmarks/bench_layer.py [--threads 2] [--quick] [--bf16-only]
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import gru
from gru import kernels, ops

# Time the engine only: a cold cache compiles in place, never aside (`gru.ops.aside`).
os.environ.setdefault("GRU_COMPILE", "wait")

# name: (I, H, B, T); S6 is one streaming step at B = 1; LONG is one long sequence.
CONFIGS = {
    "S1": (10, 20, 32, 5),
    "S2": (32, 32, 32, 100),
    "S3": (14, 50, 32, 120),
    "S4": (256, 256, 64, 100),
    "S5": (1024, 1024, 64, 50),
    "S6": (64, 64, 1, 1),
    "LONG": (128, 128, 1, 10_000),
}
VARIANTS = {  # on S2's sizes
    "reset before": {"reset_after": False},
    "bidirectional": {"bidirectional": True},
    "2 layers": {"num_layers": 2},
    "packed (lengths 25..100)": {"packed": True},
}


def median_seconds(fn, min_runs: int = 5, budget: float = 1.5) -> float:
    """Median wall time of fn() after a warm-up: at least ``min_runs`` runs, more if time allows."""
    return interleaved({"fn": fn}, min_rounds=min_runs, budget=budget)["fn"]


def interleaved(fns: dict, min_rounds: int = 7, budget: float = 3.0) -> dict:
    """Median wall time of each function, measured in rounds that run each once in turn.

    This machine's speed drifts by tens of percent over seconds; taking turns exposes every
    contender to the same drift, so the ratios hold even when the absolute times wander.
    """
    for fn in fns.values():
        fn()  # warm up (and compile)
    times: dict = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_rounds or (time.perf_counter() - start < budget and rounds < 2000):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: statistics.median(t) for name, t in times.items()}


def gemm_rate() -> float:
    """This machine's float32 GEMM rate (FLOP/s) through torch (MKL), best of a few sizes."""
    best = 0.0
    for m, k, n in [(2048, 1024, 3072), (6400, 256, 768), (4096, 512, 1536)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        seconds = median_seconds(lambda a=a, b=b: a @ b, min_runs=5, budget=1.0)
        best = max(best, 2 * m * k * n / seconds)
    return best


def roofline_seconds(I: int, H: int, B: int, T: int, rate: float) -> tuple[float, float]:
    """Time of the matrix products alone, at the measured GEMM rate.

    Inference: the input projection and the recurrent products, 2·T·B·3H·(I + H) FLOPs. A
    training step (the input needs no gradient, as here) adds the recurrent products of the
    backward and the weight gradients: 2·T·B·3H·(2H + I) more.
    """
    forward = 2 * T * B * 3 * H * (I + H)
    backward = 2 * T * B * 3 * H * (2 * H + I)
    return forward / rate, (forward + backward) / rate


def sequence_runs(module, x) -> tuple:
    """(inference, training step) callables for a layer on x (a tensor or PackedSequence)."""

    def infer():
        with torch.no_grad():
            module(x)

    def train():
        out, _ = module(x)
        data = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
        data.sum().backward()

    return infer, train


ORT_CODE = """
import statistics, sys, time
import numpy as np
import onnxruntime as ort
path, T, B, I, threads, steps = sys.argv[1:]
options = ort.SessionOptions()
options.intra_op_num_threads = int(threads)
options.inter_op_num_threads = 1
session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
feed = {"input": np.random.default_rng(0).normal(size=(int(T), int(B), int(I))).astype(np.float32)}
for _ in range(3):
    session.run(None, feed)
times = []
start = time.perf_counter()
while len(times) < 7 or (time.perf_counter() - start < 1.5 and len(times) < 2000):
    t0 = time.perf_counter()
    session.run(None, feed)
    times.append(time.perf_counter() - t0)
blocks = []
for _ in range(7 if int(steps) else 0):
    t0 = time.perf_counter()
    for _ in range(int(steps)):
        session.run(None, feed)
    blocks.append((time.perf_counter() - t0) / int(steps))
print(statistics.median(times), statistics.median(blocks) if blocks else "-")
"""


def onnx_file(ours: gru.GRU, folder: str, name: str = "gru") -> Path | None:
    """The ONNX file ``name``.onnx of ``ours`` in ``folder`` (what ONNX Runtime and OpenVINO
    run), or None without the onnx extra."""
    try:
        from gru.interop.onnx import export_onnx
    except ImportError:
        return None
    return export_onnx(ours, Path(folder) / f"{name}.onnx")


def onnxruntime_seconds(path: Path | None, T: int, B: int, I: int, threads: int, steps: int = 0):
    """(median seconds of an inference call, per call of ``steps`` calls back to back or None)
    of ONNX Runtime on the ONNX file ``path``, in its own process (its thread pool spins after
    each run and would slow whoever ran next here); (None, None) if it cannot run."""
    if path is None:
        return None, None
    args = [str(path), str(T), str(B), str(I), str(threads), str(steps)]
    result = subprocess.run([sys.executable, "-c", ORT_CODE, *args], capture_output=True, text=True)
    if result.returncode != 0:
        return None, None
    call, block = result.stdout.strip().splitlines()[-1].split()
    return float(call), (None if block == "-" else float(block))


def onnxruntime_call_seconds(path: Path | None, T: int, B: int, I: int, threads: int):
    """Median seconds of an ONNX Runtime inference call in its own process (or None)."""
    return onnxruntime_seconds(path, T, B, I, threads)[0]


def apart(gru_fn, ort_fn, rounds: int = 2) -> tuple:
    """(gru, ONNX Runtime) seconds, each the median of its own runs taken in alternation:
    ``gru_fn()`` here, alone, and ``ort_fn()`` in its own process, ``rounds`` times each."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(gru_fn())
        theirs.append(ort_fn())
    if any(t is None for t in theirs):
        return statistics.median(ours), None
    return statistics.median(ours), statistics.median(theirs)


_STEPS = 1000  # S6's back-to-back measure: steps per timed run


def _repeated(fn, n: int):
    """fn run n times in a row, as one callable."""

    def run():
        for _ in range(n):
            fn()

    return run


def stream_runs(ours: gru.GRU, theirs: torch.nn.GRU, I: int) -> tuple:
    """(torch.nn.GRU one step, gru stream one step) callables at batch 1."""
    stream = ours.stream(batch_size=1)
    x_np = np.random.default_rng(0).normal(size=(1, I)).astype(np.float32)
    x_t = torch.from_numpy(x_np).view(1, 1, I)
    h = torch.zeros(1, 1, theirs.hidden_size)

    def torch_step():
        with torch.no_grad():
            theirs(x_t, h)

    return torch_step, lambda: stream(x_np)


def training_memory_mb(layer: str, I: int, H: int, B: int, T: int) -> tuple[float, float]:
    """(bytes kept for backward, peak resident growth) of one training step, in MB.

    The first counts every tensor autograd saves between forward and backward; the second is
    the process's peak resident memory during the step above what it held before (Linux: the
    high-water mark is reset through /proc/self/clear_refs), in a fresh process.
    """
    code = f"""
import torch, gru
torch.manual_seed(0)
m = {"gru.GRU" if layer == "gru" else "torch.nn.GRU"}({I}, {H})
x = torch.randn({T}, {B}, {I})
out, _ = m(x)
out.sum().backward()  # warm up outside the measurement
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
saved = []
def pack(t):
    saved.append(t.numel() * t.element_size())
    return t
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
    out, _ = m(x)
out.sum().backward()
print(sum(saved) / 2**20, status("VmHWM") - before)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    kept, peak = result.stdout.strip().splitlines()[-1].split()
    return float(kept), float(peak)


def cold_start_seconds() -> float:
    """Seconds from the end of `import gru` to the first result, in a new process (warm cache)."""
    code = """
import time, torch, gru
t = time.perf_counter()
with torch.no_grad():
    gru.GRU(32, 32)(torch.randn(100, 32, 32))
print(time.perf_counter() - t)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


BF16_CONFIGS = ("S2", "S4", "S5")

OPENVINO_CODE = """
import statistics, sys, time
import numpy as np
import openvino as ov
path, T, B, I, threads, precision = sys.argv[1:]
core = ov.Core()
config = {"INFERENCE_NUM_THREADS": int(threads), "INFERENCE_PRECISION_HINT": precision}
compiled = core.compile_model(core.read_model(path), "CPU", config)
request = compiled.create_infer_request()
x = np.random.default_rng(0).normal(size=(int(T), int(B), int(I))).astype(np.float32)
for _ in range(3):
    request.infer({0: x})
times = []
start = time.perf_counter()
while len(times) < 7 or (time.perf_counter() - start < 3.0 and len(times) < 2000):
    t0 = time.perf_counter()
    request.infer({0: x})
    times.append(time.perf_counter() - t0)
print(statistics.median(times), compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
"""


def openvino_seconds(path: Path | None, T: int, B: int, I: int, threads: int, precision: str):
    """(median inference seconds, precision used) of OpenVINO on the CPU in its own process,
    from the ONNX file at ``path`` (`onnx_file`); (None, reason) if OpenVINO cannot run it."""
    if path is None:
        return None, "no onnx"
    args = [str(path), str(T), str(B), str(I), str(threads), precision]
    result = subprocess.run(
        [sys.executable, "-c", OPENVINO_CODE, *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        return None, (result.stderr.strip().splitlines() or ["failed"])[-1]
    seconds, used = result.stdout.strip().splitlines()[-1].split(maxsplit=1)
    return float(seconds), used


def bf16_max_errors(results: dict) -> None:
    """The largest |gru bf16 − gru float32| of the outputs for S1-S5 (same weights and input)."""
    print()
    print("bfloat16 against float32 (gru.GRU, same float32 weights and input), max |error|:")
    print("| cfg | bf16 layer | autocast |")
    print("|---|---|---|")
    errors = {}
    for name in ("S1", "S2", "S3", "S4", "S5"):
        I, H, B, T = CONFIGS[name]
        ours = gru.GRU(I, H)
        x = torch.randn(T, B, I)
        with torch.no_grad():
            exact, _ = ours(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                autocast, _ = ours(x)
            low, _ = ours.to(torch.bfloat16)(x.bfloat16())
        errors[name] = {
            "bf16_layer": (low.float() - exact).abs().max().item(),
            "autocast": (autocast - exact).abs().max().item(),
        }
        print(f"| {name} | {errors[name]['bf16_layer']:.2e} | {errors[name]['autocast']:.2e} |")
    results["bf16_max_abs_error"] = errors


def bf16_section(results: dict, threads: int) -> None:
    """bfloat16 inference: gru in bf16 against torch.nn.GRU and gru in float32, torch.nn.GRU
    in bf16 (in one process, interleaved), OpenVINO bf16 (its own process)."""
    results["machine"]["bf16_matrix_units"] = ops.bf16_hardware()
    results["machine"]["bf16_gemm"] = kernels.bf16.available()
    print()
    print(
        f"bfloat16 inference (bf16 matrix units, AMX: {ops.bf16_hardware()}; MKL bf16 GEMM "
        f"bound: {kernels.bf16.available()}; gru bf16 runs "
        f"{'bf16' if ops.bf16_hardware() and kernels.bf16.available() else 'float32'} products "
        "at the BLAS sizes); ratios: the other's time / gru bf16's"
    )
    print(
        "| cfg | I/H/B/T | torch f32 | gru f32 | torch bf16 | gru bf16 | OpenVINO bf16 "
        "| vs torch f32 | vs gru f32 | vs OpenVINO |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    results["bf16"] = {}
    onnx_dir = tempfile.TemporaryDirectory()
    for name in BF16_CONFIGS:
        I, H, B, T = CONFIGS[name]
        theirs = torch.nn.GRU(I, H)
        ours = gru.GRU.from_torch(theirs)
        theirs_low = copy.deepcopy(theirs).to(torch.bfloat16)
        ours_low = copy.deepcopy(ours).to(torch.bfloat16)
        x = torch.randn(T, B, I)
        x_low = x.bfloat16()
        fns = {
            "tf": sequence_runs(theirs, x)[0],
            "gf": sequence_runs(ours, x)[0],
            "tb": sequence_runs(theirs_low, x_low)[0],
            "gb": sequence_runs(ours_low, x_low)[0],
        }
        m = interleaved(fns)
        ov, used = openvino_seconds(onnx_file(ours, onnx_dir.name, name), T, B, I, threads, "bf16")
        results["bf16"][name] = {
            "torch_f32_infer_s": m["tf"],
            "gru_f32_infer_s": m["gf"],
            "torch_bf16_infer_s": m["tb"],
            "gru_bf16_infer_s": m["gb"],
            "openvino_bf16_infer_s": ov,
            "openvino_precision": used,
        }
        print(
            f"| {name} | {I}/{H}/{B}/{T} | {fmt(m['tf'])} | {fmt(m['gf'])} | {fmt(m['tb'])} "
            f"| {fmt(m['gb'])} | {fmt(ov)} ({used}) | {ratio(m['tf'], m['gb'])} "
            f"| {ratio(m['gf'], m['gb'])} | {ratio(ov, m['gb'])} |"
        )
    onnx_dir.cleanup()
    bf16_max_errors(results)


def fmt(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.1f} µs"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or b is None else f"{a / b:.1f}×"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="skip S5, LONG and the memory runs")
    parser.add_argument("--bf16-only", action="store_true", help="only the bfloat16 section")
    parser.add_argument("--out", type=Path, default=Path("bench-results/layer.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ops.start_engine()  # as the first gru.GRU would: torch's BLAS bound, freed memory kept
    rate = gemm_rate()
    results: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "threads": args.threads,
            "gemm_gflops": rate / 1e9,
            "blas": kernels.blas.available(),
        },
        "versions": {"gru": gru.__version__, "torch": torch.__version__},
        "configs": {},
        "variants": {},
    }
    print(
        f"gru {gru.__version__}, torch {torch.__version__}, {args.threads} threads, float32, "
        f"medians; measured GEMM rate {rate / 1e9:.0f} GFLOP/s"
    )
    if args.bf16_only:
        bf16_section(results, args.threads)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")
        return
    print()
    print(
        "| cfg | I/H/B/T | torch infer | ort infer | OpenVINO f32 | gru infer | vs torch | vs ort "
        "| vs OpenVINO | roofline | torch train | gru train | vs torch | roofline |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    onnx_dir = tempfile.TemporaryDirectory()  # each configuration's ONNX file, exported once
    for name, (I, H, B, T) in CONFIGS.items():
        if args.quick and name in ("S5", "LONG"):
            continue
        theirs = torch.nn.GRU(I, H)
        ours = gru.GRU.from_torch(theirs)
        x = torch.randn(T, B, I)
        shape = f"{I}/{H}/{B}/{T}"
        onnx_path = onnx_file(ours, onnx_dir.name, name)
        if name == "S6":
            torch_step, gru_step = stream_runs(ours, theirs, I)
            m = interleaved({"torch": torch_step, "gru": gru_step}, min_rounds=200)
            t_step, g_step = m["torch"], m["gru"]
            # Back to back (a stream's steps one after another, caches warm), per step.
            loops = {"torch": _repeated(torch_step, _STEPS), "gru": _repeated(gru_step, _STEPS)}
            m = interleaved(loops, min_rounds=7, budget=2.0)
            t_loop, g_loop = m["torch"] / _STEPS, m["gru"] / _STEPS
            # ONNX Runtime in its own process; gru's step timed alone here the same way.
            ort, ort_loop = onnxruntime_seconds(onnx_path, T, B, I, args.threads, _STEPS)
            g_alone = median_seconds(gru_step, min_runs=200)
            results["configs"][name] = {
                "torch_step_s": t_step,
                "gru_step_s": g_step,
                "gru_step_alone_s": g_alone,
                "ort_step_s": ort,
                "torch_step_back_to_back_s": t_loop,
                "gru_step_back_to_back_s": g_loop,
                "ort_step_back_to_back_s": ort_loop,
            }
            print(
                f"| S6 (one step) | {shape} | {fmt(t_step)} | {fmt(ort)} | – | {fmt(g_step)} "
                f"| {ratio(t_step, g_step)} | {ratio(ort, g_alone)} | – | – | – | – | – | – |"
            )
            print(
                f"| S6 ({_STEPS} steps back to back, per step) | {shape} | {fmt(t_loop)} "
                f"| {fmt(ort_loop)} | – | {fmt(g_loop)} | {ratio(t_loop, g_loop)} "
                f"| {ratio(ort_loop, g_loop)} | – | – | – | – | – | – |"
            )
            continue
        t_infer, t_trainer = sequence_runs(theirs, x)
        g_infer, g_trainer = sequence_runs(ours, x)
        fns = {"ti": t_infer, "gi": g_infer, "tt": t_trainer, "gt": g_trainer}
        m = interleaved(fns)
        t_inf, g_inf, t_train, g_train = m["ti"], m["gi"], m["tt"], m["gt"]
        # ONNX Runtime in its own process (its pool spins after each run and would slow
        # whoever ran next here), its ratio to gru timed alone the same way, in alternation.
        g_alone, ort = apart(
            functools.partial(median_seconds, g_infer),
            functools.partial(onnxruntime_call_seconds, onnx_path, T, B, I, args.threads),
        )
        # OpenVINO in float32 (INFERENCE_PRECISION_HINT f32; its default here is bf16, below),
        # in its own process like ONNX Runtime, against the same gru time alone.
        ov_f32, _ = openvino_seconds(onnx_path, T, B, I, args.threads, "f32")
        r_inf, r_train = roofline_seconds(I, H, B, T, rate)
        results["configs"][name] = {
            "shape": [I, H, B, T],
            "torch_infer_s": t_inf,
            "torch_train_s": t_train,
            "gru_infer_s": g_inf,
            "gru_train_s": g_train,
            "ort_infer_s": ort,
            "openvino_f32_infer_s": ov_f32,
            "gru_infer_alone_s": g_alone,
            "roofline_infer_s": r_inf,
            "roofline_train_s": r_train,
        }
        print(
            f"| {name} | {shape} | {fmt(t_inf)} | {fmt(ort)} | {fmt(ov_f32)} | {fmt(g_inf)} "
            f"| {ratio(t_inf, g_inf)} | {ratio(ort, g_alone)} | {ratio(ov_f32, g_alone)} "
            f"| {r_inf / g_inf:.0%} "
            f"| {fmt(t_train)} | {fmt(g_train)} "
            f"| {ratio(t_train, g_train)} | {r_train / g_train:.0%} |"
        )
    onnx_dir.cleanup()
    print(
        "(torch and gru in turns, each right after the other; ort: ONNX Runtime in its own "
        "process, and vs ort its time over gru's timed alone the same way, in alternation; "
        "OpenVINO f32 likewise, against the same time alone)"
    )

    print()
    print("Variants on S2's sizes (I=32, H=32, B=32, T=100):")
    print("| variant | torch infer | gru infer | vs torch | torch train | gru train | vs torch |")
    print("|---|---|---|---|---|---|---|")
    I, H, B, T = CONFIGS["S2"]
    x = torch.randn(T, B, I)
    lengths = torch.linspace(25, 100, B).round().long()
    for name, kw in VARIANTS.items():
        kw = dict(kw)
        packed = kw.pop("packed", False)
        reset_after = kw.pop("reset_after", True)
        theirs = torch.nn.GRU(I, H, **kw)
        ours = gru.GRU(I, H, **kw, reset_after=reset_after)
        if reset_after:
            ours.load_state_dict(theirs.state_dict())
        seq = (
            torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            if packed
            else x
        )
        t_infer, t_trainer = sequence_runs(theirs, seq)  # torch has only reset after: the peer
        g_infer, g_trainer = sequence_runs(ours, seq)
        m = interleaved({"ti": t_infer, "gi": g_infer, "tt": t_trainer, "gt": g_trainer})
        t_inf, g_inf, t_train, g_train = m["ti"], m["gi"], m["tt"], m["gt"]
        results["variants"][name] = {
            "torch_infer_s": t_inf,
            "torch_train_s": t_train,
            "gru_infer_s": g_inf,
            "gru_train_s": g_train,
        }
        print(
            f"| {name} | {fmt(t_inf)} | {fmt(g_inf)} | {ratio(t_inf, g_inf)} | {fmt(t_train)} "
            f"| {fmt(g_train)} | {ratio(t_train, g_train)} |"
        )

    if not args.quick:
        I, H, B, T = CONFIGS["S4"]
        mem = {layer: training_memory_mb(layer, I, H, B, T) for layer in ("torch", "gru")}
        results["s4_training_memory_mb"] = {
            layer: {"saved_for_backward": kept, "peak_growth": peak}
            for layer, (kept, peak) in mem.items()
        }
        budget = 4 * T * B * H * 4 / 2**20
        print()
        print(
            "S4 training step (MB): saved for backward "
            f"torch.nn.GRU {mem['torch'][0]:.1f}, gru.GRU {mem['gru'][0]:.1f} "
            f"(input and output included; 4·T·B·H = {budget:.1f}); peak resident growth "
            f"torch.nn.GRU {mem['torch'][1]:.1f}, gru.GRU {mem['gru'][1]:.1f}"
        )
    bf16_section(results, args.threads)
    cold = cold_start_seconds()
    results["cold_start_s"] = cold
    print(f"A second process: first result {cold:.2f} s after `import gru` (compiled code cached)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
