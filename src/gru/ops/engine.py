"""Starting the engine in a process, once: the BLAS torch carries bound to the kernels and the
C allocator told to keep freed memory.

Every way into the engine starts it: the layers through `gru.ops.dispatch`, and the custom
operators of `gru.ops.fused` themselves, which a TorchScript file or an exported program
loaded in a new process calls without going through a layer.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from gru import kernels

__all__ = ["start_engine"]

_started: list[bool] = []


def _bind_torch_blas() -> bool:
    """Give the engine the BLAS that torch carries (MKL on x86-64 Linux), if it exports one."""
    lib = os.path.join(os.path.dirname(torch.__file__), "lib")
    for name in ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll"):
        path = os.path.join(lib, name)
        if os.path.exists(path) and kernels.blas.bind(path):
            kernels.packed.bind(path)  # its packed GEMM, where it has one
            return True
    return False


def _keep_freed_memory() -> None:
    """Ask glibc to keep large freed blocks for reuse instead of returning them to the OS.

    By default glibc serves every block above a few hundred KB with a fresh mmap and unmaps it
    on free, so each training step touches its sequence-sized arrays anew: one page fault per
    4 KB (about 1,000 per step of a 32-unit layer over 100 steps, and a fault costs
    microseconds in a virtual machine). This slowed torch.nn.GRU as much as the engine.
    Set GRU_MALLOC_DEFAULTS=1 to leave the allocator as it is.
    """
    if os.environ.get("GRU_MALLOC_DEFAULTS") == "1" or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 << 20)  # M_MMAP_THRESHOLD: blocks up to 128 MB from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of freed heap
    except (OSError, AttributeError):
        pass  # not glibc


def start_engine() -> None:
    """Prepare the process for the engine, once: bind torch's BLAS to it and keep freed
    memory (`_keep_freed_memory`, process-wide: it is the one setting the engine changes,
    and only when the engine is first used)."""
    if _started:
        return
    _bind_torch_blas()
    _keep_freed_memory()
    _started.append(True)
