"""A lowered operator: one kernel call with its constants, and the aliasing contract the planner trusts."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Aliasing(enum.Enum):
    """How a kernel's output may share arena bytes with its first input (declared per op, never inferred)."""
    NONE = "none"                   # output and inputs are disjoint
    IN_PLACE = "in place"           # out may be a same-shape, same-type input's bytes (element i read before written)
    STREAMING = "streaming"         # out may start `stream_distance` bytes before the input and overlap it
    SHARES_INPUT = "shares input"   # no kernel: the output is the input's bytes (RESHAPE)


class ArrayRef(str):
    """A params field that points at one of the step's `arrays` (rendered as its C name)."""


@dataclass
class Step:
    """One kernel call in the generated invoke()."""
    op_index: int
    op: str
    kernel: str | None                  # None: the output shares the input's bytes
    params_type: str | None
    inputs: list[int]                   # activation tensors read
    outputs: list[int]                  # activation tensors written
    scalars: dict[str, int | float | list] = field(default_factory=dict)
    arrays: dict[str, tuple[str, np.ndarray]] = field(default_factory=dict)
    macs: int = 0
    operands: list[int | str] | None = None     # call arguments: tensor indices or names in `arrays`;
                                                # default inputs + outputs
    pointer_lists: dict[str, list[int]] = field(default_factory=dict)   # params fields holding tensor addresses
    scratch_bytes: int = 0                      # arena bytes the kernel needs during the call ("scratch" operand)
    aliasing: Aliasing = Aliasing.NONE          # set from the op's registration
    stream_distance: int = 0                    # STREAMING: bytes the output may start before the input

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for _, a in self.arrays.values())
