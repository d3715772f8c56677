"""The kernels' td_<op>[_<variant>]_scratch_bytes() functions, the C definition of each scratch size,
against the scratch bytes the code generator plans (step.scratch_bytes): a host program #includes the
generated <name>.c and prints the function's value for every step's static params struct."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from tinydeploy.compiler.codegen import compile_model
from tinydeploy.core.resources import KERNELS
from tinydeploy.verify.host import WARNING_FLAGS, build_program

from helpers import SHARED_MODEL_NAMES, shared_model
from helpers.random_layers import weights_and_bias
from helpers.tflite_builder import ModelBuilder


def scratch_functions() -> dict[str, str]:
    """Kernel name -> its scratch function, from the declarations in the family headers."""
    found = {}
    for header in sorted(KERNELS.glob("td_*.h")):
        for name in re.findall(r"^int32_t (td_\w+)_scratch_bytes\(const \w+ \*p\);", header.read_text(), re.M):
            found[f"{name}_s8"] = f"{name}_scratch_bytes"
    return found


def test_every_kernel_with_scratch_declares_its_size():
    assert set(scratch_functions()) == {"td_fully_connected_s8", "td_conv_gemm_s8", "td_depthwise_conv_m1_s8",
                                        "td_add_s8"}
    header = (KERNELS / "td_elementwise.h").read_text()
    assert re.search(r"#define TD_ADD_TABLE_MIN_ELEMENTS 1024\b", header)


def c_scratch_bytes(model, tmp_path) -> dict[int, int]:
    """op index -> td_..._scratch_bytes(&opN), computed by the kernels' C for every step that has one."""
    functions = scratch_functions()
    calls = [f'    printf("%d %ld\\n", {s.op_index}, (long){functions[s.kernel]}(&op{s.op_index}));'
             for s in model.steps if s.kernel in functions]
    main = "\n".join(['#include <stdio.h>', f'#include "{model.name}.c"', "", "int main(void)", "{",
                      *calls, "    return 0;", "}", ""])
    exe = build_program(model, main, tmp_path, ("-O1", *WARNING_FLAGS), link_model=False)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {int(i): int(n) for i, n in (line.split() for line in out.splitlines())}


def check_scratch(model, tmp_path) -> set[str]:
    """Every step's planned scratch equals its kernel's C function (kernels without one take none);
    returns the kernels that have a scratch function."""
    functions = scratch_functions()
    measured = c_scratch_bytes(model, tmp_path)
    for step in model.steps:
        if step.kernel in functions:
            assert measured[step.op_index] == step.scratch_bytes, \
                f"operator #{step.op_index} {step.op} ({step.kernel})"
        else:
            assert step.scratch_bytes == 0, f"operator #{step.op_index} {step.kernel} has no scratch function"
    return {s.kernel for s in model.steps if s.kernel in functions}


@pytest.mark.parametrize("rel", SHARED_MODEL_NAMES)
def test_shared_model_scratch_matches_c(tmp_path, rel):
    check_scratch(compile_model(shared_model(rel)), tmp_path)


def _fully_connected(b, rng, batches):
    depth, rows = int(rng.integers(1, 70)), int(rng.integers(1, 40))
    in_scale = float(rng.uniform(0.01, 0.1))
    x = b.tensor((batches, depth), np.int8, in_scale, int(rng.integers(-50, 50)))
    w, bias, w_scale = weights_and_bias(b, rng, (rows, depth), rows, in_scale, 0)
    y = b.tensor((batches, rows), np.int8, in_scale * w_scale * np.sqrt(depth) * 30, int(rng.integers(-50, 50)))
    b.fully_connected(x, w, bias, y)
    return x, y


def _conv(b, rng, depthwise):
    """A CONV_2D (matrix product) or DEPTHWISE_CONV_2D with multiplier 1 (row ring), random geometry."""
    h, w = (int(v) for v in rng.integers(1, 12, 2))
    c = int(rng.integers(2, 12))                # one input channel: a depthwise layer is a matrix product
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (1, 1) if rng.random() < 0.5 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    out_c = c if depthwise else int(rng.integers(1, 20))
    in_scale = float(rng.uniform(0.01, 0.1))
    x = b.tensor((1, h, w, c), np.int8, in_scale, int(rng.integers(-50, 50)))
    shape = (1, fh, fw, out_c) if depthwise else (out_c, fh, fw, c)
    weights, bias, w_scale = weights_and_bias(b, rng, shape, out_c, in_scale, 3 if depthwise else 0)
    y = b.tensor((1, -(-h // stride[0]), -(-w // stride[1]), out_c), np.int8, in_scale * w_scale * 100,
                 int(rng.integers(-50, 50)))
    if depthwise:
        b.depthwise_conv_2d(x, weights, bias, y, 1, stride, dilation, same=True)
    else:
        b.conv_2d(x, weights, bias, y, stride, dilation, same=True)
    return x, y


def _add(b, rng, big):
    shape = (1, int(rng.integers(8, 20)), 16, int(rng.integers(8, 12))) if big else \
        (1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 30)))
    x = b.tensor(shape, np.int8, float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)))
    c = b.tensor(shape, np.int8, float(rng.uniform(0.01, 0.1)), int(rng.integers(-50, 50)),
                 rng.integers(-128, 128, shape).astype(np.int8))
    y = b.tensor(shape, np.int8, float(rng.uniform(0.02, 0.2)), int(rng.integers(-50, 50)))
    b.add(x, c, y)
    return x, y


RANDOM_MODELS = {
    # name: (builder, kernel it must lower to)
    "fully connected, several rows": (lambda b, rng: _fully_connected(b, rng, int(rng.integers(2, 5))),
                                      "td_fully_connected_s8"),
    "fully connected, one row (no scratch)": (lambda b, rng: _fully_connected(b, rng, 1), "td_fully_connected_s8"),
    "conv as a matrix product": (lambda b, rng: _conv(b, rng, False), "td_conv_gemm_s8"),
    "depthwise with multiplier 1 (row ring)": (lambda b, rng: _conv(b, rng, True), "td_depthwise_conv_m1_s8"),
    "ADD with lookup tables": (lambda b, rng: _add(b, rng, True), "td_add_s8"),
    "ADD below the table threshold": (lambda b, rng: _add(b, rng, False), "td_add_s8"),
}


@pytest.mark.parametrize("name", list(RANDOM_MODELS))
@pytest.mark.parametrize("seed", range(3))
def test_random_model_scratch_matches_c(tmp_path, name, seed):
    build, kernel = RANDOM_MODELS[name]
    rng = np.random.default_rng(7919 * seed + len(name))
    b = ModelBuilder()
    x, y = build(b, rng)
    path = tmp_path / "m.tflite"
    path.write_bytes(b.finish([x], [y]))
    assert check_scratch(compile_model(path), tmp_path) == {kernel}
