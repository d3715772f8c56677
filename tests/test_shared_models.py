"""Models trained elsewhere, on the host build: every intermediate tensor, several inputs.

Random inputs saturate the softmax of some of these models, so every
operator's output is compared, not only the final one."""
from __future__ import annotations

import numpy as np
import pytest

from tinydeploy.verify import reference
from tinydeploy.compiler.codegen import compile_model
from tinydeploy.verify.host import HostModel
from tinydeploy.verify.vectors import xorshift32_bytes

from helpers import SHARED_MODEL_NAMES, shared_model


@pytest.mark.parametrize("rel", SHARED_MODEL_NAMES)
def test_host_build_matches_reference_everywhere(rel):
    path = shared_model(rel)
    model = compile_model(path)
    host = HostModel(model)
    size = model.graph.input_tensor().size
    inputs = np.concatenate([xorshift32_bytes(2 * size).reshape(2, size),
                             np.random.default_rng(3).integers(-128, 128, size=(2, size)).astype(np.int8)])
    np.testing.assert_array_equal(host.run(inputs), reference.run(model.graph.flatbuffer, inputs))
    for row in inputs[[0, -1]]:
        _, trace = host.invoke(row, trace=True)
        expected = reference.intermediates(model.graph.flatbuffer, row, [s.outputs[0] for s in model.steps])
        for step in model.steps:
            np.testing.assert_array_equal(trace[step.op_index], expected[step.outputs[0]],
                                          err_msg=f"{rel}: operator #{step.op_index} {step.op}")


@pytest.mark.parametrize("rel", SHARED_MODEL_NAMES)
def test_planned_arena_not_above_reference(rel):
    model = compile_model(shared_model(rel))
    ref = reference.arena_usage(model.graph.flatbuffer)
    assert model.plan.arena_size <= ref["head"]
