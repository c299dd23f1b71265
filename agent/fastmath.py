"""Faster float32 matrix products on CPUs where oneDNN computes them exactly.

PyTorch sends CPU float32 matmuls to MKL, whose float32 GEMM runs about half as fast as oneDNN's on some CPUs
(measured on this project's AMD EPYC boxes: 768x128x128 in 270 us vs 140 us, results bitwise equal). PyTorch only
routes float32 matmuls to oneDNN under `torch.backends.mkldnn.matmul.fp32_precision = "bf16"`, which *allows*
oneDNN to compute in bfloat16 on CPUs with bfloat16 matrix units. So the route is taken only where a probe shows
that oneDNN keeps full float32 precision on this CPU; elsewhere nothing changes. Small products (a planning step
of one env) are faster in MKL, so the route is a context around the learner's update and around planning steps
of many rows (`rows >= ONEDNN_MIN_ROWS`), not a process setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_exact: bool | None = None  # the probe's answer, once per process

ONEDNN_MIN_ROWS = 384
"""Rows per product from which oneDNN's route is faster for planning. Measured on this project's 2-core AMD EPYC
box, one thread, a whole planning decision at the default budget (103 candidates): 2 envs (206 rows) 16.0-17.2 ms
MKL vs 20.0-20.9 oneDNN; 4 envs 26.6-30.5 vs 20.5-23.4; 8 envs 44-45 vs 33-38 (oneDNN is slower on
one-column heads and faster on the 128-wide layers, which dominate once the rows are many)."""


def _flag():
    mkldnn = getattr(torch.backends, "mkldnn", None)
    matmul = getattr(mkldnn, "matmul", None)
    if matmul is None or not hasattr(matmul, "fp32_precision") or not mkldnn.is_available():
        return None
    return matmul


def onednn_fp32_exact() -> bool:
    """True when oneDNN's route gives float32 results on this CPU (compared with MKL's on a fixed product)."""
    global _exact
    if _exact is None:
        flag = _flag()
        _exact = False
        if flag is not None:
            g = torch.Generator().manual_seed(0)
            a, b = torch.randn(256, 128, generator=g), torch.randn(128, 128, generator=g)
            prev = flag.fp32_precision
            ref = a @ b
            try:
                flag.fp32_precision = "bf16"
                got = a @ b
            finally:
                flag.fp32_precision = prev
            # bfloat16 arithmetic would be off by ~1e-2 relative; float32 with another summation order by ~1e-7
            _exact = bool((got - ref).abs().max() <= 1e-5 * ref.abs().max())
    return _exact


@contextmanager
def fast_fp32_matmul(device: torch.device, rows: int | None = None) -> Iterator[None]:
    """Route CPU float32 matmuls through oneDNN inside the block when that is exact here (else a no-op);
    `rows`: the rows of the block's products, routed only from ONEDNN_MIN_ROWS (None: always, the update)."""
    flag = _flag()
    small = rows is not None and rows < ONEDNN_MIN_ROWS
    if device.type != "cpu" or small or flag is None or not onednn_fp32_exact():
        yield
        return
    prev = flag.fp32_precision
    flag.fp32_precision = "bf16"
    try:
        yield
    finally:
        flag.fp32_precision = prev
