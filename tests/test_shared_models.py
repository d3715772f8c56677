"""Models trained elsewhere, on the host build: every intermediate tensor, many inputs."""
from __future__ import annotations

import numpy as np
import pytest

from tinydeploy import reference
from tinydeploy.codegen import compile_model
from tinydeploy.host import HostModel
from tinydeploy.vectors import xorshift32_bytes

from conftest import shared_model

FC_MODELS = ["tflm/hello_world_int8.tflite", "mlperf-tiny/ad01_int8.tflite"]


@pytest.mark.parametrize("rel", FC_MODELS)
def test_host_build_matches_reference_everywhere(rel):
    path = shared_model(rel)
    model = compile_model(path)
    host = HostModel(model)
    size = model.graph.input_tensor().size
    inputs = np.concatenate([xorshift32_bytes(8 * size).reshape(8, size),
                             np.random.default_rng(3).integers(-128, 128, size=(8, size)).astype(np.int8)])
    np.testing.assert_array_equal(host.run(inputs), reference.run(model.graph.flatbuffer, inputs))
    out, trace = host.invoke(inputs[0], trace=True)
    expected = reference.intermediates(model.graph.flatbuffer, inputs[0], [s.outputs[0] for s in model.steps])
    for step in model.steps:
        np.testing.assert_array_equal(trace[step.op_index], expected[step.outputs[0]], err_msg=f"op #{step.op_index}")


@pytest.mark.parametrize("rel", FC_MODELS)
def test_planned_arena_not_above_reference(rel):
    model = compile_model(shared_model(rel))
    ref = reference.arena_usage(model.graph.flatbuffer)
    assert model.plan.arena_size <= ref["head"]
