"""The CPU that numba compiles for, and the fused multiply-add peak of one of its cores.

Two uses. :func:`cpu_info` names the target numba's JIT compiles for (LLVM's host CPU
name and feature string, exactly as numba passes them to LLVM) and derives from it a
short :attr:`CPUInfo.key`, which the generated distance kernels put in their file names
(:func:`deepmanifold.geometry._kernels.tiles_kernel`): a cache folder shared between
machines (a home directory on NFS, a copied store or environment) then holds one
generated module, and so one numba cache, per CPU. :func:`fma_peak` measures the
ceiling every distance figure is compared with: fused multiply-adds per second on one
core, at the vector width LLVM actually chose (:func:`fma_width`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import platform
import re
import time

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import njit
from numba.core import codegen as _codegen

__all__ = ["CPUInfo", "cpu_info", "cpu_key", "fma_peak", "fma_register_bits", "fma_width", "simd_bits"]


@dataclasses.dataclass(frozen=True)
class CPUInfo:
    """What numba compiles for on this machine.

    Attributes
    ----------
    model : str
        The CPU's marketing name (``/proc/cpuinfo`` on Linux, ``platform.processor()``
        elsewhere); for people, not for keys (virtual machines often blank it).
    llvm_cpu : str
        LLVM's name of the target CPU as numba's JIT uses it (``NUMBA_CPU_NAME`` if set,
        else the host's, e.g. ``"znver4"``, ``"skylake-avx512"``).
    llvm_features : str
        LLVM's feature string as numba's JIT uses it (``NUMBA_CPU_FEATURES`` if set,
        else the host's, with AVX removed if ``NUMBA_ENABLE_AVX=0``), e.g.
        ``"+avx,+avx2,-avx512f,..."``.
    triple : str
        LLVM's target triple, e.g. ``"x86_64-unknown-linux-gnu"``.
    simd_bits : int
        Width in bits of the widest vector registers the features allow (512 with
        AVX-512F, 256 with AVX or AVX2, 128 with SSE2 or NEON; SVE counts its
        guaranteed minimum, 128); what LLVM chose for a given loop may be narrower
        (:func:`fma_width`).
    fma : bool
        Whether the features include fused multiply-add instructions.
    """

    model: str
    llvm_cpu: str
    llvm_features: str
    triple: str
    simd_bits: int
    fma: bool

    @property
    def key(self) -> str:
        """A 12-hex-digit digest of the triple, LLVM CPU name and enabled features.

        Two machines get the same key exactly when numba generates the same machine
        code for both, so it can name compiled-code caches; the marketing name is left
        out on purpose (it is cosmetic and may differ between identical hosts).
        """
        return cpu_key(self.llvm_cpu, self.llvm_features, self.triple)


def _enabled(features: str) -> list[str]:
    """The names of the enabled (``+``) features of an LLVM feature string, sorted."""
    return sorted({f[1:] for f in features.split(",") if f.startswith("+")})


def cpu_key(llvm_cpu: str, llvm_features: str, triple: str = "") -> str:
    """A short stable digest of a code-generation target.

    Parameters
    ----------
    llvm_cpu, llvm_features, triple : str
        As in :class:`CPUInfo`. Only the enabled features count, sorted, so the order
        LLVM lists them in and the disabled features a newer LLVM merely knows more of
        do not change the key.

    Returns
    -------
    str
        12 hexadecimal digits of a SHA-256.
    """
    text = "\n".join([triple, llvm_cpu, ",".join(_enabled(llvm_features))])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def simd_bits(llvm_features: str, triple: str = "") -> int:
    """Width in bits of the widest vector registers an LLVM feature string allows (0: none known)."""
    on = set(_enabled(llvm_features))
    if "avx512f" in on:
        return 512
    if on & {"avx", "avx2"}:
        return 256
    if on & {"sse2", "neon", "sve", "sve2", "altivec", "vsx"}:
        return 128  # SVE's width is chosen by the implementation; 128 is its minimum
    arch = triple.split("-")[0]
    # The architecture's baseline: x86-64 always has SSE2, AArch64 always has NEON
    # (a NUMBA_CPU_FEATURES="" generic target lists no features at all).
    return 128 if arch in ("x86_64", "aarch64", "arm64") else 0


def _model_name() -> str:
    """The CPU's marketing name, or "" when the system does not tell."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                # x86: "model name"; ARM Linux often has only "Model" or "Hardware".
                if name.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=1)
def cpu_info() -> CPUInfo:
    """The target numba's JIT compiles for on this machine (computed once per process).

    The CPU name and features are those numba passes to LLVM and puts in the index key
    of its on-disk cache (``codegen.magic_tuple()``), overrides by ``NUMBA_CPU_NAME``,
    ``NUMBA_CPU_FEATURES`` and ``NUMBA_ENABLE_AVX`` included.
    """
    name = numba.config.CPU_NAME or llvm.get_host_cpu_name()
    features = (numba.config.CPU_FEATURES if numba.config.CPU_FEATURES is not None
                else _codegen.get_host_cpu_features())
    triple = llvm.get_process_triple()
    on = set(_enabled(features))
    arch = triple.split("-")[0]
    # NEON has fused multiply-add (FMLA) built in; on x86 it is FMA3, FMA4 or AVX-512F.
    fma = bool(on & {"fma", "fma4", "avx512f", "neon", "sve"}) or arch in ("aarch64", "arm64")
    return CPUInfo(model=_model_name(), llvm_cpu=name, llvm_features=features, triple=triple,
                   simd_bits=simd_bits(features, triple), fma=fma)


# Independent accumulator chains per vector register width. A core retires about
# (FMA pipes x FMA latency) FMAs per latency only if that many independent chains are
# in flight: 2 x 4-5 on current x86 cores, 4 x 4 on wide ARM cores. On x86 12 chains
# cover that and, with the two loop-invariant operands, fit the 16 registers of AVX2 -
# and, where LLVM prefers half-width vectors on an AVX-512 machine (it does on Intel's
# AVX-512 cores), still fit its 32 registers as 24 chains. AArch64 has 32 vector
# registers and 4-pipe cores.
def _chains(info: CPUInfo) -> int:
    return 16 if info.triple.split("-")[0] in ("aarch64", "arm64") else 12


# FMAs per accumulator per iteration, written out in the loop body. One per body lets
# LLVM's early full unrolling take loops of fewer than ~64 accumulators apart before the
# loop vectoriser sees them, and the scalar code it leaves is never re-vectorised (float64
# on AVX2, 48 accumulators: scalar FMAs at 1/8 of the peak). Four per body make the body
# too big for that below 32 accumulators, the fewest used (12 chains x 4 lanes).
_DEPTH = 4
_MIN_SIZE = 32


@functools.lru_cache(maxsize=None)
def _peak_kernel(size: int):
    """A kernel of ``size`` accumulators, each updated ``acc = acc * a + b`` 4 times per iteration.

    ``size`` is a compile-time constant (a closure variable), so LLVM vectorises the
    inner loop at the width it prefers, unrolls it completely and, the array being fresh,
    keeps every accumulator in a register for the whole outer loop: the loop body is
    ``4 * size / lanes`` vector FMAs in ``size / lanes`` independent chains, and nothing
    else. Only the ``contract`` fast-math flag is set: it lets LLVM fuse each multiply
    and add into one FMA, while forbidding the reassociation that could fold the four
    updates into fewer operations. With ``0 < a < 1`` the values converge to
    ``b / (1 - a)``: no overflow, and no subnormals to slow the units down. No
    ``prange``: the kernel runs on the calling thread, i.e. on one core.
    """
    @njit(fastmath={"contract"}, nogil=True)
    def kernel(n, a, b, start):  # pragma: no cover - compiled
        acc = start.copy()
        for _ in range(n):
            for j in range(size):
                x = acc[j]
                x = x * a + b
                x = x * a + b
                x = x * a + b
                x = x * a + b
                acc[j] = x
        return acc.sum()  # used, so the loop cannot be removed

    return kernel


def _peak_setup(dtype):
    """The compiled peak kernel for ``dtype``, its arguments but ``n``, and its FMAs per iteration."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    info = cpu_info()
    lanes = max(1, info.simd_bits // (8 * dtype.itemsize))
    size = max(_chains(info) * lanes, _MIN_SIZE)
    kernel = _peak_kernel(size)
    t = dtype.type
    args = (t(0.999), t(1e-3), np.linspace(0.1, 0.9, size).astype(dtype))
    kernel(1, *args)  # compile
    return kernel, args, _DEPTH * size


def fma_peak(dtype, seconds: float = 0.5, repeats: int = 5) -> float:
    """Measured peak of fused multiply-adds on one core, in GFLOP/s (2 flops per FMA).

    Parameters
    ----------
    dtype : float32 or float64
    seconds : float
        About the total time the measurement takes (compilation aside).
    repeats : int
        Timed runs of ``seconds / repeats`` each; the best counts, since the machine
        can only make a run slower (other processes, frequency ramps, interrupts).

    Returns
    -------
    float
        ``2 * FMAs / second / 1e9`` of a loop that keeps ``12`` (x86) or ``16``
        independent vector accumulators of the widest SIMD width in registers: the
        throughput limit, not the latency. Compare a kernel's flops with it as a
        fraction of the peak. It is measured at the width LLVM chose
        (:func:`fma_width`), the width it also picks for ordinary loops; on a CPU
        without FMA (:attr:`CPUInfo.fma` false) it is the peak of separate multiplies
        and adds, still 2 flops per update. The turbo frequency of one busy core makes
        it an upper bound for a core among many busy ones.
    """
    kernel, args, fmas = _peak_setup(dtype)
    n = 2_500
    while True:  # calibrate: iterations per timed run
        t = time.perf_counter()
        kernel(n, *args)
        dt = time.perf_counter() - t
        if dt > 0.02 or n >= 1 << 40:
            break
        n *= 4
    per_run = max(seconds / max(repeats, 1), 1e-3)
    n = max(1, int(n * per_run / dt))
    best = math.inf
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        kernel(n, *args)
        best = min(best, time.perf_counter() - t)
    return 2.0 * fmas * n / best / 1e9


# Packed FMA mnemonics: x86 vfmadd/vfmsub/vfnmadd/vfnmsub/vfmaddsub..., ps or pd, with
# FMA3 operand orders (132/213/231) or FMA4 (none); scalar ss/sd forms are excluded.
_X86_PACKED_FMA = re.compile(r"^\s*v?fn?m(?:add|sub)(?:sub|add)?(?:132|213|231)?p([sdh])\b", re.I)
_X86_SCALAR_FMA = re.compile(r"^\s*v?fn?m(?:add|sub)(?:132|213|231)?s([sdh])\b", re.I)
_X86_REGISTERS = {"zmm": 512, "ymm": 256, "xmm": 128}
# AArch64: NEON "fmla v0.4s, ..." (128 bits; "v0.2s" 64), SVE "fmla z0.s, ..." (scalable).
_ARM_FMA = re.compile(r"^\s*f(?:n?mla|n?mls|madd|msub|nmadd|nmsub)\s+([vzd])\d+(?:\.(\d+)([bhsd]))?", re.I)


def fma_register_bits(asm: str, element_bits: int | None = None) -> int:
    """Width in bits of the widest register an FMA instruction of ``asm`` works on.

    Parameters
    ----------
    asm : str
        Assembly text, e.g. from ``dispatcher.inspect_asm(signature)`` (AT&T or Intel
        x86 syntax, or AArch64).
    element_bits : {16, 32, 64}, optional
        Count only the FMAs on elements of this width (32: float32, 64: float64): a
        kernel that multiplies in float32 may also hold float64 FMAs elsewhere.

    Returns
    -------
    int
        512, 256 or 128 for packed FMAs on zmm, ymm or xmm registers (SVE: 128, its
        guaranteed minimum; NEON: 64 or 128 from the arrangement); the element width
        (32 or 64) if the code has only scalar FMAs; 0 if it has none.
    """
    sizes = {"b": 8, "h": 16, "s": 32, "d": 64}

    def counted(size: str | None) -> bool:
        return element_bits is None or size is None or sizes[size.lower()] == element_bits

    widest = 0
    for line in asm.splitlines():
        if (m := _X86_PACKED_FMA.match(line)):
            if counted(m.group(1)):
                found = [bits for reg, bits in _X86_REGISTERS.items() if re.search(rf"%?\b{reg}\d+", line)]
                widest = max(widest, max(found, default=0))
        elif (m := _X86_SCALAR_FMA.match(line)):
            if counted(m.group(1)):
                widest = max(widest, sizes[m.group(1).lower()])
        elif (m := _ARM_FMA.match(line)):
            kind, count, size = m.group(1).lower(), m.group(2), m.group(3)
            if not counted(size if size else ("d" if kind == "d" else None)):
                continue
            if kind == "z":
                widest = max(widest, 128)
            elif kind == "v" and count:
                widest = max(widest, int(count) * {"b": 8, "h": 16, "s": 32, "d": 64}[size.lower()])
            else:  # "fmadd d0, d1, d2, d3": scalar
                widest = max(widest, 64 if kind == "d" else 32)
    return widest


def fma_width(dtype) -> int:
    """Register width in bits of the FMAs LLVM emitted for :func:`fma_peak`'s ``dtype`` kernel.

    Equal to :attr:`CPUInfo.simd_bits` when LLVM vectorised at the widest width the CPU
    allows; narrower when its cost model prefers shorter vectors on this CPU (LLVM does
    so on some AVX-512 Intel cores), in which case the peak is measured at that width.
    """
    kernel, args, _ = _peak_setup(dtype)
    return max(fma_register_bits(kernel.inspect_asm(sig)) for sig in kernel.signatures)

