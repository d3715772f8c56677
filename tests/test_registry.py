"""The op registry: one declaration per op family, the README's table generated from it, and the
planner following the declared aliasing contract."""
from __future__ import annotations

import numpy as np
import pytest

from tinydeploy.compiler import ops
from tinydeploy.compiler.codegen import compile_model
from tinydeploy.compiler.ops import OpSpec
from tinydeploy.compiler.step import Aliasing
from tinydeploy.ir import schema

from helpers import ROOT, SHARED_MODEL_NAMES, shared_model, tinydeploy
from helpers.tflite_builder import ModelBuilder


def test_readme_table_is_the_registry():
    assert ops.markdown_table() in (ROOT / "README.md").read_text(), \
        "README's supported-op table is stale: paste `tinydeploy ops --markdown`"


def test_every_registered_name_is_a_tflite_builtin_and_declares_a_contract():
    builtins = set(schema.builtin_op_names().values())
    for spec in ops.specs():
        assert set(spec.names) <= builtins, spec.names
        assert spec.dtypes and spec.notes
        assert isinstance(spec.aliasing, Aliasing)
        assert (spec.aliasing is Aliasing.STREAMING) == (spec.stream_distance is not None)


def test_a_streaming_op_without_a_stream_distance_is_refused():
    with pytest.raises(ValueError, match="stream distance"):
        ops.register(OpSpec(("TRANSPOSE_CONV",), lambda g, o: None, ("int8",), Aliasing.STREAMING, notes="-"))
    assert ops.lookup("TRANSPOSE_CONV") is None


@pytest.mark.parametrize("rel", SHARED_MODEL_NAMES)
def test_steps_carry_their_ops_declaration(rel):
    model = compile_model(shared_model(rel))
    for step in model.steps:
        spec = ops.lookup(step.op)
        assert step.aliasing is spec.aliasing
        assert step.macs == spec.macs(model.graph, model.graph.operators[step.op_index])
        assert (step.kernel is None) == (spec.aliasing is Aliasing.SHARES_INPUT)


def _pool_chain():
    b = ModelBuilder()
    x = b.tensor((1, 16, 16, 8), np.int8, 0.05, 3)
    h = b.tensor((1, 16, 16, 8), np.int8, 0.05, 3)
    b.pool_2d("max", x, h, (3, 3), (1, 1), same=True)
    y = b.tensor((1, 8, 8, 8), np.int8, 0.05, 3)
    b.pool_2d("average", h, y, (2, 2), (2, 2), same=False)
    return b.finish([x], [y])


def test_planner_overlaps_only_what_the_declaration_allows(tmp_path, monkeypatch):
    """With pooling declared streaming its output overlaps its input; declared `none`, the same
    model gets disjoint buffers: the planner reads the contract, it does not guess from the geometry."""
    path = tmp_path / "pools.tflite"
    path.write_bytes(_pool_chain())
    streaming = compile_model(path)
    x, h = streaming.graph.inputs[0], streaming.steps[0].outputs[0]
    tensor_bytes = streaming.graph.tensors[x].nbytes
    assert abs(streaming.plan.offsets[x] - streaming.plan.offsets[h]) < tensor_bytes
    spec = ops.lookup("MAX_POOL_2D")
    disjoint = OpSpec(spec.names, spec.lower, spec.dtypes, Aliasing.NONE, spec.notes, spec.macs)
    monkeypatch.setattr(ops, "lookup", lambda name: disjoint if name in spec.names else ops._REGISTRY.get(name))
    plain = compile_model(path)
    assert abs(plain.plan.offsets[x] - plain.plan.offsets[h]) >= tensor_bytes
    assert plain.plan.arena_size > streaming.plan.arena_size


def test_ops_command_lists_every_op():
    proc = tinydeploy("ops")
    assert proc.returncode == 0, proc.stderr
    for name in ops.supported_ops():
        assert name in proc.stdout
