"""The TFLite flatbuffer schema shipped with `tflite-micro`, and its enums as Python IntEnums.

Code compares against these names (``Activation.RELU6``, ``Padding.SAME``) instead of the
schema's raw integers."""
from __future__ import annotations

import enum
import functools


@functools.cache
def generated():
    """The schema's generated reader (flatc's Python output, imported on first use)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    return schema_py_generated


def _enum(name: str) -> type[enum.IntEnum]:
    values = {k: v for k, v in vars(getattr(generated(), name)).items() if k.isupper()}
    return enum.IntEnum(name, values)


Activation = _enum("ActivationFunctionType")
Padding = _enum("Padding")
TensorType = _enum("TensorType")


@functools.cache
def builtin_op_names() -> dict[int, str]:
    ops = generated().BuiltinOperator
    return {getattr(ops, n): n for n in dir(ops) if n.isupper()}
