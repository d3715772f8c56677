"""The validation every model passes when it is read (`ir/validate.py`), and the reference interpreter kept
out of tinydeploy's process: each wrong-graph case the fuzzer found is refused with one line naming it."""
from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import assert_clean_failure, shared_model, tinydeploy
from tinydeploy.compiler import ops
from tinydeploy.core.errors import BadInput
from tinydeploy.ir import graph, validate
from tinydeploy.verify import reference
from tinydeploy.verify.fuzz import pack, unpack

HELLO = "tflm/hello_world_int8.tflite"           # FC -> FC -> FC: tensors 0 (input) .. 9 (output)
KWS = "mlperf-tiny/kws_ref_model.tflite"
FAST_S = 2.0                                     # a refusal of a huge shape takes no planner time


def edited(rel: str, edit) -> bytes:
    """The shared model ``rel`` with ``edit(model)`` applied to its ModelT, re-serialized."""
    model = unpack(shared_model(rel).read_bytes())
    edit(model)
    return pack(model)


def activation(model, t) -> bool:
    data = model.buffers[t.buffer].data
    return data is None or len(data) == 0


def refused(raw: bytes, *needles: str) -> str:
    with pytest.raises(BadInput) as info:
        graph.parse(raw, "m.tflite")
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_shared_models_pass_validation():
    for rel in ("mlperf-tiny/ad01_int8.tflite", KWS, "mlperf-tiny/pretrainedResnet_quant.tflite",
                "mlperf-tiny/vww_96_int8.tflite", HELLO, "tflm/micro_speech_quantized.tflite",
                "tflm/person_detect.tflite"):
        raw = shared_model(rel).read_bytes()
        assert validate.problems(unpack(raw), raw) == [], rel


def test_every_registered_op_has_a_signature():
    assert set(ops.supported_ops()) <= set(validate.SIGNATURES)


def test_read_of_an_unwritten_tensor():
    def edit(m):                                 # operator 1 reads a fresh tensor nobody writes
        sg = m.subgraphs[0]
        sg.tensors.append(unpack(shared_model(HELLO).read_bytes()).subgraphs[0].tensors[7])
        sg.operators[1].inputs[0] = len(sg.tensors) - 1
    refused(edited(HELLO, edit), "operator #1 FULLY_CONNECTED reads tensor 10", "not written by an earlier operator")


def test_two_writers():
    def edit(m):
        m.subgraphs[0].operators[1].outputs[0] = 7    # operator 0 writes tensor 7 already
    refused(edited(HELLO, edit), "operator #1 FULLY_CONNECTED writes tensor 7", "operator #0 writes it too")


def test_internal_tensor_as_subgraph_input():
    def edit(m):
        m.subgraphs[0].inputs = [0, 8]                # 8 is written by operator 1
    refused(edited(HELLO, edit), "operator #1 FULLY_CONNECTED writes tensor 8", "it is a model input")


def test_dropped_operator():
    def edit(m):
        m.subgraphs[0].operators.pop(1)
    refused(edited(HELLO, edit), "reads tensor 8", "not written by an earlier operator")


def test_dropped_last_operator_leaves_the_output_unwritten():
    def edit(m):
        m.subgraphs[0].operators.pop()
    refused(edited(HELLO, edit), "model output tensor 9", "not written by any operator")


def test_absurd_scale():
    def edit(m):
        m.subgraphs[0].tensors[7].quantization.scale = [3e38]
    refused(edited(HELLO, edit), "tensor 7", "quantization scale 3e+38")


def test_extra_operator_input():
    def edit(m):
        m.subgraphs[0].operators[0].inputs = list(m.subgraphs[0].operators[0].inputs) + [3]
    refused(edited(HELLO, edit), "operator #0 FULLY_CONNECTED has 4 inputs", "takes 2 to 3")


@pytest.mark.parametrize("edit, needles", [
    (lambda m: setattr(m.subgraphs[0].tensors[4], "buffer", 99), ("tensor 4", "buffer 99")),
    (lambda m: setattr(m.subgraphs[0].operators[1], "inputs", [7, 4, 40]), ("operator #1", "input 2 is tensor 40")),
    (lambda m: setattr(m.subgraphs[0].operators[2], "opcodeIndex", 7), ("operator #2", "operator code 7")),
    (lambda m: setattr(m.subgraphs[0], "outputs", [40]), ("model output 0 is tensor 40",)),
    (lambda m: setattr(m.subgraphs[0], "inputs", [-5]), ("model input 0 is tensor -5",)),
    (lambda m: setattr(m.subgraphs[0].operators[0], "outputs", [-1]), ("operator #0", "output 0 is tensor -1")),
])
def test_out_of_range_indices(edit, needles):
    refused(edited(HELLO, edit), *needles)


@pytest.mark.parametrize("edit, needles", [
    (lambda m: setattr(m.subgraphs[0].tensors[4], "shape", [16, 17]), ("tensor 4", "holds 256 bytes", "needs 272")),
    (lambda m: setattr(m.subgraphs[0].tensors[7].quantization, "zeroPoint", [300]), ("tensor 7", "zero point 300")),
    (lambda m: setattr(m.subgraphs[0].tensors[7], "type", 5), ("tensor 7", "STRING")),
    (lambda m: setattr(m.subgraphs[0].operators[0], "builtinOptionsType", 1), ("operator #0", "builtin options")),
    (lambda m: setattr(m, "version", 2), ("schema version 2",)),
])
def test_malformed_tensors_and_options(edit, needles):
    refused(edited(HELLO, edit), *needles)


def test_huge_dimension_is_refused_fast():
    def edit(m):
        for t in m.subgraphs[0].tensors:          # batch 131,072 everywhere activations flow
            if activation(m, t) and len(t.shape) == 4:
                t.shape = [131072, *list(t.shape)[1:]]
    started = time.monotonic()
    refused(edited(KWS, edit), "131072", "at most 16,777,216")
    assert time.monotonic() - started < FAST_S


def test_large_batch_within_bounds_plans_fast(tmp_path):
    """A batch of 2,048 spectrograms through kws (every activation under the element bound): linear planning."""
    from tinydeploy.compiler.codegen import compile_model

    def edit(m):
        for t in m.subgraphs[0].tensors:
            if activation(m, t) and len(t.shape) == 4:
                t.shape = [BIG_BATCH, *list(t.shape)[1:]]
        m.subgraphs[0].tensors[32].shape = [BIG_BATCH, 64]      # the RESHAPE's output and what follows
        m.subgraphs[0].tensors[33].shape = [BIG_BATCH, 12]
        m.subgraphs[0].tensors[34].shape = [BIG_BATCH, 12]
    path = tmp_path / "kws_batch.tflite"
    path.write_bytes(edited(KWS, edit))
    started = time.monotonic()
    compiled = compile_model(path)
    assert time.monotonic() - started < FAST_S
    assert compiled.plan.arena_size >= BIG_BATCH * 25 * 5 * 64


BIG_BATCH = 2048                                 # 2048 x 25 x 5 x 64 is just under the element bound


def test_truncated_file_is_one_line(tmp_path):
    raw = shared_model(KWS).read_bytes()
    path = tmp_path / "half.tflite"
    path.write_bytes(raw[:len(raw) // 2])
    assert_clean_failure(tinydeploy("convert", path, "-o", tmp_path / "out"), "half.tflite", "corrupt")
    assert_clean_failure(tinydeploy("inspect", path), "half.tflite", "corrupt")
    assert not (tmp_path / "out").exists()


def test_inflated_vector_length_is_refused_without_unpacking():
    raw = bytearray(shared_model(HELLO).read_bytes())
    model = validate.schema.generated().Model.GetRootAs(bytes(raw), 0)
    at = model.Subgraphs(0)._tab.Vector(model.Subgraphs(0)._tab.Offset(4)) - 4   # the tensors vector's length
    raw[at:at + 4] = (1 << 30).to_bytes(4, "little")
    refused(bytes(raw), "corrupt", "tensors")


def test_reference_crash_is_one_clean_line():
    """TFLite Micro segfaults on a tensor whose buffer index is out of range: only its worker dies."""
    raw = edited(HELLO, lambda m: setattr(m.subgraphs[0].tensors[4], "buffer", 99))
    with pytest.raises(reference.ReferenceFailed, match="reference interpreter crashed on this model .killed by SIG"):
        reference.run(raw, np.zeros((1, 1), np.int8))
    good = shared_model(HELLO).read_bytes()             # the next call gets a fresh worker
    assert reference.run(good, np.zeros((2, 1), np.int8)).shape == (2, 1)


def test_inspect_reports_a_reference_refusal(tmp_path):
    """A model tinydeploy validates but TFLite Micro refuses (bias scale far from input x weight scale)."""
    from tinydeploy.analysis.inspect import inspect
    path = tmp_path / "bias_scale.tflite"
    path.write_bytes(edited(HELLO, lambda m: setattr(m.subgraphs[0].tensors[8].quantization, "scale", [0.15])))
    r = inspect(path)
    assert r.reference_arena is None and "refuses this model" in r.reference_error
    assert "bias scale" in r.unsupported


def compile_refused(tmp_path, raw: bytes, *needles: str) -> None:
    from tinydeploy.compiler.codegen import compile_model
    path = tmp_path / "m.tflite"
    path.write_bytes(raw)
    with pytest.raises(BadInput) as info:
        compile_model(path)
    for needle in needles:
        assert needle in str(info.value), str(info.value)


def test_depth_multiplier_must_match_the_channels(tmp_path):
    """Found by the campaign: TFLite Micro computes with the option, so a wrong one gave other outputs."""
    raw = edited(KWS, lambda m: setattr(m.subgraphs[0].operators[1].builtinOptions, "depthMultiplier", 2))
    compile_refused(tmp_path, raw, "operator #1 DEPTHWISE_CONV_2D", "depth multiplier 2")


def test_elementwise_output_keeps_the_input_shape(tmp_path):
    """Found by the fuzzer: SOFTMAX reading a [1, 25, 5, 64] tensor into a [1, 12] one overflowed the arena."""
    def edit(m):
        m.subgraphs[0].operators[12].inputs = [30]
    compile_refused(tmp_path, edited(KWS, edit), "operator #12 SOFTMAX", "differs from the input shape")


def test_constant_read_as_an_activation(tmp_path):
    def edit(m):
        m.subgraphs[0].operators[1].inputs = [2, 4, 3]     # the last layer's [1, 16] weights as its input
    compile_refused(tmp_path, edited(HELLO, edit), "operator #1 FULLY_CONNECTED", "constant input")


@pytest.mark.parametrize("shape", [[], [16, 1]], ids=["rank 0", "units moved to the batches"])
def test_fully_connected_units_come_from_the_output_shape(tmp_path, shape):
    """Found by the campaign (mutant 3357 of seed 0 zeroed hello_world's output shape): TFLite Micro takes the
    units from the output's last dimension and the batches from the others, so a rank-0 output made it write
    nothing, and a [16, 1] output of 16 units would make it read 16 input rows."""
    layer = 2 if not shape else 1                          # the last layer's output (tensor 9), the middle one's (7)
    def edit(m):
        sg = m.subgraphs[0]
        sg.tensors[sg.operators[layer].outputs[0]].shape = shape
    compile_refused(tmp_path, edited(HELLO, edit), f"operator #{layer} FULLY_CONNECTED", f"output shape {shape}",
                    "the weights' units")


def test_depthwise_filter_has_one_leading_slice(tmp_path):
    """Found by the campaign (mutant 4712 of seed 0): a [64, 1, 1, 64] CONV_2D filter given to a depthwise
    convolution. TFLite Micro reads only its first [1, 1, 64] slice; we laid all 64 out as taps."""
    def edit(m):
        sg = m.subgraphs[0]
        sg.operators[5].inputs[1] = sg.operators[4].inputs[1]     # a pointwise CONV_2D's [64, 1, 1, 64] weights
    compile_refused(tmp_path, edited(KWS, edit), "operator #5 DEPTHWISE_CONV_2D", "weights shape [64, 1, 1, 64]",
                    "not a depthwise filter")


def test_fully_connected_weights_are_two_dimensional(tmp_path):
    """TFLite Micro's depth is the weights' last dimension: [16, 4, 4] weights would make it read 4 inputs."""
    def edit(m):
        sg = m.subgraphs[0]
        sg.tensors[sg.operators[1].inputs[1]].shape = [16, 4, 4]
    compile_refused(tmp_path, edited(HELLO, edit), "operator #1 FULLY_CONNECTED", "weights shape [16, 4, 4]",
                    "not 2-D")


RESNET = "mlperf-tiny/pretrainedResnet_quant.tflite"


@pytest.mark.parametrize("value", [23, 127, -1])
def test_quantized_bias_type_is_a_tensor_type(value):
    """Found by the campaign (mutant 7753 of seed 0): TFLite Micro's option parser refuses a
    quantized_bias_type that names no tensor type, so the reference failed to allocate tensors."""
    raw = edited(HELLO, lambda m: setattr(m.subgraphs[0].operators[2].builtinOptions, "quantizedBiasType", value))
    refused(raw, "operator #2 FULLY_CONNECTED", f"quantized bias type {value}", "no TFLite tensor type")


def test_any_tensor_type_is_a_valid_quantized_bias_type():
    """The int8 kernels never compare the option with the bias tensor: INT64 beside an int32 bias runs."""
    raw = edited(KWS, lambda m: setattr(m.subgraphs[0].operators[0].builtinOptions, "quantizedBiasType", 4))
    assert validate.problems(unpack(raw), raw) == []


def test_depthwise_bias_may_be_left_out_but_not_marked_absent():
    """Found by the campaign (mutant 8842 of seed 0): TFLite Micro's depthwise prepare takes three inputs to mean
    a bias and frees it, so a bias marked absent (-1) crashed the reference; a left-out one is fine, and so is
    -1 for CONV_2D and FULLY_CONNECTED, whose prepare checks for it."""
    def bias_index(rel: str, layer: int, inputs):
        def edit(m):
            m.subgraphs[0].operators[layer].inputs = inputs(m.subgraphs[0].operators[layer].inputs)
        return edited(rel, edit)
    refused(bias_index(KWS, 1, lambda ins: [ins[0], ins[1], -1]), "operator #1 DEPTHWISE_CONV_2D input 2",
            "marked absent (-1)", "leave the input out")
    for raw in (bias_index(KWS, 1, lambda ins: ins[:2]), bias_index(KWS, 0, lambda ins: [ins[0], ins[1], -1]),
                bias_index(HELLO, 0, lambda ins: [ins[0], ins[1], -1])):
        assert validate.problems(unpack(raw), raw) == []


def test_add_output_is_the_inputs_broadcast_shape(tmp_path):
    """Found by the campaign (mutant 8969 of seed 0): an ADD of two [1, 32, 32, 16] inputs into a [3, 32, 32, 16]
    output aborted the reference (it requires equal element counts); we broadcast the inputs over it."""
    def edit(m):
        m.subgraphs[0].tensors[25].shape = [3, 32, 32, 16]            # operator 3's output
    compile_refused(tmp_path, edited(RESNET, edit), "operator #3 ADD", "output shape [3, 32, 32, 16]",
                    "broadcast shape [1, 32, 32, 16]")


@pytest.mark.parametrize("layer, dim, size, needles", [
    (0, 0, 3, ("operator #0 CONV_2D", "has 3 batches", "input [1, 49, 10, 1] has 1")),
    (9, 3, 32, ("operator #9 AVERAGE_POOL_2D", "has 32 channels", "has 64")),
], ids=["convolution batches", "pooling channels"])
def test_windowed_output_matches_the_input(tmp_path, layer, dim, size, needles):
    """TFLite Micro's convolution and pooling kernels take the batches (and pooling the channels) from input and
    output alike: a mismatch crashed our host build (conv) or the reference refused it (pooling)."""
    def edit(m):
        sg = m.subgraphs[0]
        sg.tensors[sg.operators[layer].outputs[0]].shape[dim] = size
    compile_refused(tmp_path, edited(KWS, edit), *needles)
