"""The CPU numba compiles for, the FMA peak, and the per-CPU keys of the compiled-code caches."""

import dataclasses
import glob
import importlib.util
import math
import os
import pickle
import platform
import sys

import numba
import numpy as np
import pytest
from numba import njit
from numba.core.registry import cpu_target

from deepmanifold.geometry import _kernels, _machine
from deepmanifold.geometry._machine import cpu_info, cpu_key, fma_peak, fma_register_bits, fma_width, simd_bits

# Overrides make numba compile for a CPU other than the host's: /proc/cpuinfo then says nothing.
_OVERRIDDEN = (numba.config.CPU_NAME is not None or numba.config.CPU_FEATURES is not None
               or not numba.config.ENABLE_AVX)


def _proc_flags():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


@pytest.mark.skipif(_OVERRIDDEN or platform.machine() != "x86_64" or _proc_flags() is None,
                    reason="needs Linux x86-64 and numba compiling for the host")
def test_cpu_info_agrees_with_proc_cpuinfo():
    flags, info = _proc_flags(), cpu_info()
    assert ("avx512f" in flags) == (info.simd_bits == 512)
    assert bool(flags & {"avx", "avx2"}) == (info.simd_bits >= 256)
    assert info.simd_bits >= 128  # x86-64 always has SSE2
    assert bool(flags & {"fma", "fma4", "avx512f"}) == info.fma
    enabled = set(info.llvm_features.split(","))
    for flag in ("avx2", "fma", "avx512f"):
        assert (flag in flags) == (f"+{flag}" in enabled), flag
    assert info.model


def test_cpu_info_is_what_numba_keys_its_cache_by():
    # codegen.magic_tuple() is the CPU part of the index key of numba's on-disk cache.
    triple, name, features = cpu_target.target_context.codegen().magic_tuple()
    info = cpu_info()
    assert (info.triple, info.llvm_cpu, info.llvm_features) == (triple, name, features)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.llvm_cpu = "other"


def test_key_is_stable_and_follows_cpu_and_features():
    info = cpu_info()
    assert info.key == cpu_info().key == cpu_key(info.llvm_cpu, info.llvm_features, info.triple)
    assert len(info.key) == 12 and int(info.key, 16) >= 0
    base = "+avx,+avx2,+fma,-avx512f,+sse2"
    key = cpu_key("znver3", base, "x86_64-unknown-linux-gnu")
    assert cpu_key("znver3", "+sse2,+fma,+avx2,+avx,-avx512f", "x86_64-unknown-linux-gnu") == key  # order
    assert cpu_key("znver3", base + ",-amx-tile", "x86_64-unknown-linux-gnu") == key  # disabled: same code
    assert cpu_key("znver3", base.replace("-avx512f", "+avx512f"), "x86_64-unknown-linux-gnu") != key
    assert cpu_key("znver3", base.replace("+fma", "-fma"), "x86_64-unknown-linux-gnu") != key
    assert cpu_key("znver4", base, "x86_64-unknown-linux-gnu") != key
    assert cpu_key("znver3", base, "x86_64-pc-windows-msvc") != key


@pytest.mark.parametrize("features, triple, bits", [
    ("+avx512f,+avx2,+avx,+sse2", "x86_64-unknown-linux-gnu", 512),
    ("-avx512f,+avx2,+avx,+sse2", "x86_64-unknown-linux-gnu", 256),
    ("+avx,+sse2", "x86_64-unknown-linux-gnu", 256),
    ("-avx,+sse2,+sse4.2", "x86_64-unknown-linux-gnu", 128),
    ("", "x86_64-unknown-linux-gnu", 128),  # NUMBA_CPU_NAME=generic: the x86-64 baseline
    ("+neon,+fp-armv8", "aarch64-unknown-linux-gnu", 128),
    ("+sve,+neon", "aarch64-unknown-linux-gnu", 128),
    ("", "riscv64-unknown-linux-gnu", 0),
])
def test_simd_bits(features, triple, bits):
    assert simd_bits(features, triple) == bits


@pytest.mark.parametrize("asm, bits", [
    ("\tvfmadd213ps\t%zmm0, %zmm17, %zmm16", 512),
    ("\tvfmadd231pd\t(%rax,%rcx,8), %ymm2, %ymm1\n\tvfmadd231sd\t%xmm1, %xmm2, %xmm3", 256),
    ("  vfnmadd132ps ymm0, ymm1, ymmword ptr [rax]", 256),  # Intel syntax, negated
    ("\tvfmaddsub231pd\t%xmm0, %xmm1, %xmm2", 128),
    ("\tvfmaddps\t%xmm0, %xmm1, %xmm2, %xmm3", 128),  # FMA4
    ("\tvfmadd231ss\t%xmm0, %xmm1, %xmm2", 32),  # scalar only: the element width
    ("\tvmulps\t%zmm0, %zmm1, %zmm2\n\tvaddps\t%zmm0, %zmm1, %zmm2", 0),  # no FMA at all
    ("\tfmla\tv0.4s, v1.4s, v2.4s\n\tfmadd\td0, d1, d2, d3", 128),
    ("\tfmla\tz0.d, p0/m, z1.d, z2.d", 128),
])
def test_fma_register_bits(asm, bits):
    assert fma_register_bits(asm) == bits


def test_fma_register_bits_of_one_element_width():
    """A float32 kernel's products on xmm beside float64 FMAs on ymm: each width counted alone."""
    asm = "\tvfmadd231pd\t(%rax), %ymm1, %ymm2\n\tvfmadd231ps\t(%rbx), %xmm3, %xmm4\n\tvfmadd231sd\t%xmm0, %xmm1, %xmm2\n"
    assert fma_register_bits(asm) == 256
    assert fma_register_bits(asm, 64) == 256 and fma_register_bits(asm, 32) == 128
    assert fma_register_bits("\tvfmadd231ss\t%xmm0, %xmm1, %xmm2\n", 64) == 0
    assert fma_register_bits("\tfmla\tv0.4s, v1.4s, v2.4s\n\tfmla\tv0.2d, v1.2d, v2.2d\n", 32) == 128


def test_fma_peak_is_positive_and_float32_has_twice_the_lanes():
    info = cpu_info()
    p32 = fma_peak(np.float32, seconds=0.2)
    p64 = fma_peak(np.float64, seconds=0.2)
    assert math.isfinite(p32) and math.isfinite(p64) and p32 > 0 and p64 > 0
    assert p64 > 0.1  # GFLOP/s: even an old core does billions
    if info.fma and info.simd_bits >= 256 and fma_width(np.float32) == fma_width(np.float64) >= 256:
        # A register of the same width holds twice as many float32 as float64 and the
        # FMA units take either in the same time: ~2x, 1.5 leaves room for noise.
        assert p32 >= 1.5 * p64
    with pytest.raises(ValueError, match="float32 or float64"):
        fma_peak(np.int32)


def test_fma_width_is_llvms_preferred_vector_width():
    info = cpu_info()
    if not info.fma:
        pytest.skip("no FMA instructions on this target")

    @njit(fastmath=True)
    def axpy(a, x, y, out):  # an ordinary loop, vectorised at LLVM's preferred width
        for i in range(x.shape[0]):
            out[i] = a * x[i] + y[i]

    x = np.ones(64)
    axpy(2.0, x, x, np.empty_like(x))
    preferred = fma_register_bits(axpy.inspect_asm(axpy.signatures[0]))
    for dtype in (np.float32, np.float64):
        width = fma_width(dtype)
        assert 128 <= width <= info.simd_bits
        # Either the widest registers, or (LLVM prefers 256-bit vectors on Intel's
        # AVX-512 cores) the width LLVM uses for ordinary loops too.
        assert width == info.simd_bits or width == preferred == info.simd_bits // 2, (dtype, width)
    if not _OVERRIDDEN and info.llvm_cpu.startswith("znver4"):
        assert fma_width(np.float32) == fma_width(np.float64) == 512  # zen 4 keeps zmm


@pytest.fixture
def fresh_tile_kernels(monkeypatch, tmp_path):
    """tiles_kernel writing to tmp_path with an empty in-process table; its modules removed afterwards."""
    monkeypatch.setenv("DEEPMANIFOLD_KERNEL_DIR", str(tmp_path))
    monkeypatch.setattr(_kernels, "_TILE_KERNELS", {})
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("_deepmanifold_bc_tiles_"):
            del sys.modules[name]


def test_tiles_kernel_module_is_named_by_cpu(fresh_tile_kernels, monkeypatch):
    folder = fresh_tile_kernels
    first = _kernels.tiles_kernel(3)  # loads the generated module; compiles nothing yet
    assert _kernels.tiles_kernel(3) is first
    assert _kernels.tiles_kernel(10) is first  # one kernel for every class count up to 32 ...
    assert _kernels.tiles_kernel(3, specialised=True) is not first  # ... unless written for one
    assert _kernels.tiles_kernel(33) is not first  # the BLAS kernel above
    [mine] = glob.glob(os.path.join(folder, "bc_tiles_vec_*.py"))

    other = dataclasses.replace(cpu_info(), llvm_cpu="another-cpu")
    assert other.key != cpu_info().key
    monkeypatch.setattr(_machine, "cpu_info", lambda: other)
    monkeypatch.setattr(_kernels, "_TILE_KERNELS", {})
    second = _kernels.tiles_kernel(3)
    files = sorted(glob.glob(os.path.join(folder, "bc_tiles_vec_*.py")))
    assert len(files) == 2 and mine in files
    [theirs] = [f for f in files if f != mine]
    with open(mine) as a, open(theirs) as b:
        assert a.read() == b.read()  # the same source, kept apart only by the CPU
    assert second is not first
    assert second.py_func.__module__ != first.py_func.__module__


_CACHED_SOURCE = """\
from numba import njit


@njit(cache=True)
def plus_one(x):
    return x + 1
"""


def _load(path, name, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module.plus_one


def test_numba_cache_index_is_keyed_by_cpu(tmp_path, monkeypatch):
    path = tmp_path / "cached_kernel.py"
    path.write_text(_CACHED_SOURCE)
    f = _load(path, "_dm_test_cached_a", monkeypatch)
    assert f(1) == 2
    assert sum(f.stats.cache_misses.values()) == 1  # compiled and saved
    [index] = glob.glob(os.path.join(f.stats.cache_path, "cached_kernel.plus_one-*.nbi"))
    with open(index, "rb") as fh:
        assert pickle.load(fh) == numba.__version__
        _stamp, overloads = pickle.loads(fh.read())
    [key] = overloads
    # key = (signature, codegen.magic_tuple(), (bytecode hash, closure hash))
    info = cpu_info()
    assert key[1] == (info.triple, info.llvm_cpu, info.llvm_features)

    # Another process on the same CPU loads the machine code ...
    g = _load(path, "_dm_test_cached_b", monkeypatch)
    assert g(1) == 2 and sum(g.stats.cache_hits.values()) == 1

    # ... one that compiles for another CPU does not. numba reads the CPU name at each
    # cache lookup; the environment variable too, in case numba reloads its config.
    monkeypatch.setenv("NUMBA_CPU_NAME", "another-cpu")
    monkeypatch.setattr(numba.config, "CPU_NAME", "another-cpu")
    h = _load(path, "_dm_test_cached_c", monkeypatch)
    assert h(1) == 2
    assert sum(h.stats.cache_hits.values()) == 0 and sum(h.stats.cache_misses.values()) == 1


def test_every_register_block_gives_the_same_bits(monkeypatch, tmp_path):
    """The CPU picks the register block (lanes, row models, column vectors); every block
    multiplies the same factors in the same order, lane by lane, clamped tiles, ragged row
    groups and column tails included. This CPU's kernel comes from the usual cache; one with
    other lanes and another block shape is compiled into tmp_path."""
    from deepmanifold.geometry import ClampWarning, pairwise_distances

    for bits, lanes in ((512, 8), (256, 4), (128, 2)):
        assert _kernels.register_block(dataclasses.replace(cpu_info(), simd_bits=bits)) == (lanes, 4, 3)
    rng = np.random.default_rng(0)
    C = 3
    X = rng.dirichlet(np.ones(C), size=(37, 50)).astype(np.float32)
    X[5, 3], X[20, 3] = np.eye(C)[0], np.eye(C)[1]  # one clamped pair

    def both():
        with pytest.warns(ClampWarning):
            return [pairwise_distances(X, block_size=16), pairwise_distances(X[:9], X, block_size=16),
                    pairwise_distances(X, block_size=5), pairwise_distances(X)]

    mine = _kernels.register_block(cpu_info())
    ours = both()
    # bitwise the same whatever the tiling (the diagonal of X[:9] against X is computed, not set to 0)
    assert np.array_equal(ours[0], ours[2]) and np.array_equal(ours[0], ours[3])
    off = ~np.eye(9, 37, dtype=bool)
    assert np.array_equal(ours[1][off], ours[0][:9][off])
    other = (2, 1, 2) if mine[0] != 2 else (4, 3, 1)
    monkeypatch.setenv("DEEPMANIFOLD_KERNEL_DIR", str(tmp_path))
    monkeypatch.setattr(_kernels, "_TILE_KERNELS", {})
    monkeypatch.setattr(_kernels, "register_block", lambda info: other)
    before = set(sys.modules)
    try:
        theirs = both()
    finally:
        for name in set(sys.modules) - before:
            if name.startswith("_deepmanifold_bc_tiles_"):
                del sys.modules[name]
    for one, two in zip(ours, theirs):
        assert np.array_equal(one, two)


def test_kernel_written_for_one_class_count_gives_the_same_bits(monkeypatch):
    """Calls of at least SPECIALISE_PAIR_SAMPLES run a kernel with C written into its class
    loop; smaller ones the kernel for every C. Same operations, same order: same bits,
    the clamped pass included."""
    from deepmanifold.geometry import ClampWarning, pairwise_distances

    X = np.random.default_rng(2).dirichlet(np.ones(3), size=(30, 40))
    X[4, 7], X[11, 7] = np.eye(3)[0], np.eye(3)[2]  # one clamped pair
    with pytest.warns(ClampWarning):
        shared = pairwise_distances(X, block_size=16)
    assert 3 not in _kernels._TILE_KERNELS
    monkeypatch.setattr(_kernels, "SPECIALISE_PAIR_SAMPLES", 0)
    with pytest.warns(ClampWarning):
        own = pairwise_distances(X, block_size=16)
    assert 3 in _kernels._TILE_KERNELS and _kernels._TILE_KERNELS[3] is not _kernels._TILE_KERNELS["vec"]
    assert np.array_equal(own, shared)
    source = _kernels._kernel_source(3, specialised=True)
    assert "    C = 3\n" in source and "    C = A.shape[2]\n" in _kernels._kernel_source(3, specialised=False)


def test_kernel_without_fused_multiply_adds():
    """On a CPU without FMA instructions the class sums are products and sums (llvm.fma would
    be a library call per lane there). Only the one-vector block of that kernel is compiled
    here (the whole kernel takes half a minute): its running products against NumPy."""
    import types

    fused, plain = _kernels._kernel_source(3, fused=True), _kernels._kernel_source(3, fused=False)
    assert "vfma(" in fused and "vfma(" not in plain and "vadd(vmul(" in plain
    module = types.ModuleType("_dm_test_not_fused")
    exec(compile(plain.replace("cache=True", "cache=False"), "<not fused>", "exec"), module.__dict__)
    rng = np.random.default_rng(1)
    lanes = _kernels.column_multiple()
    A = np.sqrt(rng.dirichlet(np.ones(3), size=(6, 2)))  # (n, R, C)
    B = np.ascontiguousarray(np.sqrt(rng.dirichlet(np.ones(3), size=(6, lanes))).transpose(0, 2, 1))  # (n, C, W)
    prod = np.ones((2, lanes))
    below = module._block_one(A, B.reshape(-1), prod.reshape(-1), 0, 6, 1, 1, 0, lanes, 1e-12, 0, 0, 0)
    expected = np.prod(np.einsum("ic,icw->iw", A[:, 1], B), axis=0)
    assert below == 0 and np.all(prod[0] == 1.0)  # row model 1 into tile row 1 only
    np.testing.assert_allclose(prod[1], expected, rtol=1e-14)
