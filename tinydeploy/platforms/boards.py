"""The board catalog: one YAML file per board in boards/, no code per board.

Every file is validated against the declared schema below (`tinydeploy boards --schema`
prints it): an unknown or mistyped key is one line naming the file and the key.

What a board's keys mean for building and running it is the business of its platform
(platforms/registry.py picks one): a board with `emulator.qemu` is built with tinydeploy's
own start-up code and run in QEMU; a board with `platformio` is a project for one of
PlatformIO's standard platforms, and its `proxy` names an emulated board with the same core.
This module only reads and checks the files; it imports no platform.
"""
from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, Strict, ValidationError, field_validator, model_validator
from pydantic_core import PydanticUndefined

from tinydeploy.core.errors import BadInput
from tinydeploy.core.resources import BOARDS
from tinydeploy.platforms.arch import ARCHES

# The drivers in firmware/bsp, by the name a board's YAML gives them, and the define that selects each.
# simcall: Xtensa semihosting (QEMU's sim machine), a console and an exit without a device address.
UART_DRIVERS = {"cmsdk": "TD_UART_CMSDK", "pl011": "TD_UART_PL011", "nrf": "TD_UART_NRF",
                "stm32": "TD_UART_STM32", "ns16550": "TD_UART_NS16550", "simcall": "TD_UART_SIMCALL"}
EXIT_DRIVERS = {"semihosting": "TD_EXIT_SEMIHOSTING", "sifive_test": "TD_EXIT_SIFIVE_TEST", "spin": "TD_EXIT_SPIN",
                "simcall": "TD_EXIT_SIMCALL"}
UNMAPPED_UARTS = ("simcall",)                    # consoles with no register base

UartKind = Literal[tuple(UART_DRIVERS)]          # type: ignore[valid-type]
ExitKind = Literal[tuple(EXIT_DRIVERS)]          # type: ignore[valid-type]
Int = Annotated[int, Strict()]                   # YAML gives numbers as numbers: no "12" or true for an int
Bool = Annotated[bool, Strict()]
Float = Annotated[float, Strict()]                # a number (12 or 12.5), not "12" or true

SCHEMA_HINT = "see `tinydeploy boards --schema`"
SUGGESTIONS = 2                  # board names offered for an unknown --board
SUGGESTION_CUTOFF = 0.6          # difflib similarity (0..1) below which a name is not offered


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Memory(_Schema):
    """One memory region."""
    origin: Int = Field(0, ge=0, description="start address (hex is fine: 0x20000000)")
    size: Int = Field(..., gt=0, description="bytes")


class Uart(_Schema):
    """The console UART tinydeploy's start-up code drives."""
    kind: UartKind = Field(..., description="driver in firmware/bsp: " + ", ".join(UART_DRIVERS))
    base: Optional[Int] = Field(None, ge=0, description="the UART's register base address (every kind but "
                                                        + ", ".join(UNMAPPED_UARTS) + ")",
                                json_schema_extra={"shown_default": "required, but for " + ", ".join(UNMAPPED_UARTS)})

    @model_validator(mode="after")
    def _mapped(self) -> Uart:
        if self.base is None and self.kind not in UNMAPPED_UARTS:
            raise ValueError(f"kind '{self.kind}' needs uart.base (its register base address)")
        return self


class Exit(_Schema):
    """How the firmware reports its exit status to the emulator."""
    kind: ExitKind = Field("spin", description="mechanism in firmware/bsp: " + ", ".join(EXIT_DRIVERS))
    base: Optional[Int] = Field(None, ge=0, description="the exit device's address (sifive_test)")


class Qemu(_Schema):
    """How QEMU emulates the board."""
    machine: str = Field(..., description="QEMU's -M machine name")
    binary: Optional[str] = Field(None, description="QEMU system emulator",
                                  json_schema_extra={"shown_default": "the arch's: " + ", ".join(
                                      f"{a.qemu_binary} ({a.name})" for a in ARCHES.values())})
    icount_shift: Int = Field(6, ge=0, le=10, description="-icount shift: 2^shift ns of virtual time per instruction")
    args: tuple[str, ...] = Field((), description="extra QEMU arguments, e.g. [-bios, none]")


class Emulator(_Schema):
    """Emulators that run the board's firmware."""
    qemu: Optional[Qemu] = Field(None, description="QEMU settings; present: the board is emulated here")


class PlatformIO(_Schema):
    """The board in one of PlatformIO's standard platforms (a real board)."""
    platform: str = Field(..., description="PlatformIO platform, e.g. espressif32, ststm32")
    board: str = Field(..., description="PlatformIO board id, e.g. esp32dev")
    framework: str = Field(..., description="PlatformIO framework (arduino)")
    toolchain: Optional[str] = Field(None, description="the platform's toolchain package, named in messages")


class Power(_Schema):
    """Active (run-mode) power, for energy-per-inference estimates."""
    active_mw: Float = Field(..., gt=0, description="power while the core computes (mW); energy per inference "
                                                    "is estimated as this x the estimated time")
    source: str = Field(..., min_length=1, description="where the figure comes from; an estimate (e.g. a "
                                                       "comparable MCU's datasheet) says so")


class Board(_Schema):
    """A board's facts as its YAML file states them."""
    name: str = Field(..., description="the board's name, as --board takes it")
    description: str = Field("", description="one line for tables and generated files",
                             json_schema_extra={"shown_default": "the name"})
    core: str = Field(..., description="CPU core: -mcpu (cortex-m4) or base ISA (rv32imc), or informational")
    arch: str = Field(..., description="architecture: " + ", ".join(ARCHES) + " (emulated boards), or any "
                                       "for real boards")
    clock_hz: Int = Field(..., gt=0, description="core clock, for time estimates (Hz)")
    flash: Memory = Field(..., description="code and constants")
    ram: Memory = Field(..., description="data, arena and stack")
    uart: Optional[Uart] = Field(None, description="console UART (emulated boards)")
    exit: Exit = Field(Exit(), description="exit mechanism (emulated boards); a kind alone is fine: semihosting")
    fpu: Optional[str] = Field(None, description="FPU for -mfpu (fpv4-sp-d16), or null for none")
    dsp: Bool = Field(False, description="the core has DSP instructions")
    abi: Optional[str] = Field(None, description="-mabi for RISC-V; null: ilp32")
    stack: Int = Field(4096, gt=0, description="stack bytes reserved by the linker script")
    emulator: Emulator = Field(Emulator(), description="emulators for the board")
    platformio: Optional[PlatformIO] = Field(None, description="PlatformIO project settings (real boards)")
    proxy: Optional[str] = Field(None, description="emulated board that runs a real board's code: the same core, "
                                                   "or one of its family (then say so in proxy_note)")
    proxy_note: Optional[str] = Field(None, description="when the proxy's core differs from the board's (same "
                                                        "family and compiler): what its counts mean, shown with them")
    aliases: tuple[str, ...] = Field((), description="other names --board accepts")
    power: Optional[Power] = Field(None, description="active power {active_mw, source} for energy estimates "
                                                     "(`compare`); null: energy is not estimated")

    _path: Optional[Path] = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("description") is None and isinstance(data.get("name"), str):
            data = {**data, "description": data["name"]}
        return data

    @field_validator("exit", mode="before")
    @classmethod
    def _exit_shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _runnable(self) -> Board:
        if self.qemu is not None:
            if self.arch not in ARCHES:
                raise ValueError(f"arch '{self.arch}' has no toolchain for emulated boards (arch: {', '.join(ARCHES)})")
            if self.uart is None:
                raise ValueError("an emulated board (emulator.qemu) needs a uart {kind, base}")
        elif self.platformio is None:
            raise ValueError("a board needs either emulator.qemu or platformio {platform, board, framework}; "
                             "compare it with boards/esp32dev.yaml")
        return self

    @property
    def qemu(self) -> Qemu | None:
        return self.emulator.qemu

    @property
    def proxy_relation(self) -> str:
        """How its proxy's core relates to its own, for the notes beside the proxy's counts."""
        return self.proxy_note or "same core"

    @property
    def path(self) -> Path | None:
        """The YAML file the board was read from."""
        return self._path


def _dotted(loc: tuple) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _model_at(loc: tuple) -> type[BaseModel]:
    """The schema model a (parent) location points into, for suggesting a key."""
    model: type[BaseModel] = Board
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner = _submodel(field.annotation) if field else None
        if inner is None:
            break
        model = inner
    return model


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _one_line(path: Path, exc: ValidationError) -> str:
    """The first problem (an unknown key first: a typo also makes its intended key missing), as one line."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc, kind = tuple(first["loc"]), first["type"]
    key = _dotted(loc)
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), list(_model_at(loc[:-1]).model_fields), n=1)
        what = f"unknown key '{key}'" + (f" (did you mean '{_dotted(loc[:-1] + (close[0],))}'?)" if close else "")
        if close:                    # the key it was meant to be is missing because of the typo: not another problem
            errors = [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) == loc[:-1] + (close[0],))]
    elif kind == "missing":
        what = f"missing key '{key}'"
    elif not loc:
        what = first["msg"].removeprefix("Value error, ")
    else:
        msg = first["msg"]
        what = f"key '{key}': {msg[0].lower() + msg[1:]}, got {first['input']!r}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{path}: {what}{more}; {SCHEMA_HINT}"


def parse(path: Path) -> Board:
    """Read and validate one board file; any problem is one BadInput line naming the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BadInput(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read it: {exc.strerror}") from None
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: a board file is a mapping of keys (name: ..., core: ...), not "
                       f"{type(raw).__name__}; {SCHEMA_HINT}")
    try:
        board = Board.model_validate(raw)
    except ValidationError as exc:
        raise BadInput(_one_line(path, exc)) from None
    board._path = path
    return board


def catalog(directory: Path = BOARDS) -> dict[str, Board]:
    """All boards in ``directory``, by name (BadInput when it holds no board file)."""
    boards = {}
    paths = sorted(Path(directory).glob("*.yaml"))
    if not paths:
        raise BadInput(f"{directory}: no board files (*.yaml) there; give a folder of board YAML files")
    for path in paths:
        board = parse(path)
        boards[board.name] = board
    return boards


def _folded(name: str) -> str:
    """A board name as --board compares it: case-insensitive, '-' and '_' alike (nucleo-F446RE is nucleo_f446re)."""
    return name.casefold().replace("-", "_")


def get(name: str, directory: Path = BOARDS) -> Board:
    """The board called ``name`` or with ``name`` as an alias (case-insensitive, '-' and '_' alike), or a
    BadInput suggesting the closest names and listing the known ones."""
    boards = catalog(directory)
    if name in boards:
        return boards[name]
    by_name = {}
    for board in boards.values():
        for known in (board.name, *board.aliases):
            by_name.setdefault(_folded(known), (known, board))
    if _folded(name) in by_name:
        return by_name[_folded(name)][1]
    close = difflib.get_close_matches(_folded(name), list(by_name), n=SUGGESTIONS, cutoff=SUGGESTION_CUTOFF)
    hint = f" (did you mean {' or '.join(repr(by_name[c][0]) for c in close)}?)" if close else ""
    raise BadInput(f"unknown board '{name}'{hint}; known boards: {', '.join(boards)} (see `tinydeploy boards`)")


# ---- the schema, for `tinydeploy boards --schema` ---------------------------------------------------------------

def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " | ".join(names) + (" | null" if type(None) in args else "")
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default_text(field) -> str:
    value = field.default
    if isinstance(field.json_schema_extra, dict) and "shown_default" in field.json_schema_extra:
        return str(field.json_schema_extra["shown_default"])
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "{}"                              # the keys below, at their defaults
    if isinstance(value, bool):
        return str(value).lower()
    return {None: "null", (): "[]"}.get(value, str(value))


def schema_rows(model: type[BaseModel] = Board, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """Every key a board file may have: (dotted key, type, default, description); nested mappings expanded."""
    rows = []
    for name, field in model.model_fields.items():
        key = prefix + name
        rows.append((key, _type_name(field.annotation), _default_text(field), field.description or ""))
        inner = _submodel(field.annotation)
        if inner is not None:
            rows += schema_rows(inner, key + ".")
    return rows
