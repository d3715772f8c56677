"""The instruction-set architectures tinydeploy builds firmware for itself: one entry per
architecture, holding everything that differs between them (toolchain, compiler and linker
flags, linker script, start-up define, Renode CPU and QEMU binary).

Everything else reads this table instead of branching on ``board.arch``. A real board's
architecture needs no entry (PlatformIO's own platform builds it); Xtensa has one for the
emulated LX106 (the ESP8266's core), built with Debian's xtensa-lx106-elf toolchain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from tinydeploy.core.errors import BadInput

if TYPE_CHECKING:                      # boards.py validates `arch` against this table
    from tinydeploy.platforms.boards import Board


@dataclass(frozen=True)
class Arch:
    """How to build and emulate code for one architecture."""
    name: str                                   # the boards' `arch` value
    toolchain_prefix: str                       # cross GCC binutils prefix
    toolchain_apt: str                          # Debian packages that install the cross toolchain and its C library
    core_define: str                            # selects the start-up code in firmware/bsp
    cpu_flags: Callable[[Board], list[str]]     # compiler flags for the board's core
    link_flags: Callable[[Board], list[str]]    # linker flags: the core and the C library
    linker_template: str                        # templates/<name>: the emulated board's linker script
    renode_cpu: Callable[[Board], list[str]] | None   # the CPU (and its interrupt controller) in Renode's
                                                      # .repl syntax; None: Renode has no model of the core
    qemu_binary: str                            # QEMU system emulator, unless the board's YAML names another
    qemu_apt: str                               # the Debian package that has it
    needed_for_build: str                       # `tinydeploy doctor`: what the toolchain is for
    needed_for_run: str                         # `tinydeploy doctor`: what QEMU is for
    defines: Callable[[Board], list[str]] = lambda board: []   # start-up code's further -D flags


def _cortex_m_cpu_flags(board: Board) -> list[str]:
    flags = [f"-mcpu={board.core}", "-mthumb"]
    if board.fpu:
        flags += ["-mfloat-abi=hard", f"-mfpu={board.fpu}"]
    return flags


def _cortex_m_link_flags(board: Board) -> list[str]:
    return _cortex_m_cpu_flags(board) + ["--specs=nano.specs", "--specs=nosys.specs"]


def _cortex_m_renode(board: Board) -> list[str]:
    return ["nvic: IRQControllers.NVIC @ sysbus 0xE000E000", "    -> cpu@0", "",
            "cpu: CPU.CortexM @ sysbus", f"    cpuType: \"{board.core}\"", "    nvic: nvic", ""]


def _riscv_cpu_flags(board: Board) -> list[str]:
    # picolibc's specs also give the compiler its headers
    return [f"-march={board.core}_zicsr", f"-mabi={board.abi or 'ilp32'}", "--specs=picolibc.specs"]


def _riscv_link_flags(board: Board) -> list[str]:
    # RISC-V links against the base ISA's multilib
    return [f"-march={board.core}", f"-mabi={board.abi or 'ilp32'}", "--specs=picolibc.specs"]


def _riscv_renode(board: Board) -> list[str]:
    return ["clint: IRQControllers.CoreLevelInterruptor @ sysbus 0x02000000", "    frequency: 10000000",
            "    [0, 1] -> cpu@[3, 7]", "",
            "cpu: CPU.RiscV32 @ sysbus", f"    cpuType: \"{board.core}_zicsr\"",
            "    privilegeArchitecture: PrivilegeArchitecture.Priv1_10", "    timeProvider: clint", ""]


# Debian's xtensa-lx106-elf-gcc is configured for the LX106 core alone (no -mcpu): the only core it builds for.
XTENSA_CORE = "xtensa-lx106"


def _xtensa_cpu_flags(board: Board) -> list[str]:
    if board.core != XTENSA_CORE:
        raise BadInput(f"{board.name}: core '{board.core}': xtensa-lx106-elf-gcc generates code for the "
                       f"{XTENSA_CORE} core only; an emulated Xtensa board has core: {XTENSA_CORE}")
    return []                          # its configuration is the core's: CALL0 ABI, MUL16/MUL32, no FPU


def _xtensa_defines(board: Board) -> list[str]:
    # xtensa_core.c turns the cycle counter into instructions with it (QEMU advances CCOUNT per
    # instruction by an amount that depends on the shift)
    return [f"-DTD_ICOUNT_SHIFT={board.qemu.icount_shift}"]


ARCHES: dict[str, Arch] = {arch.name: arch for arch in (
    Arch(name="arm", toolchain_prefix="arm-none-eabi-", toolchain_apt="gcc-arm-none-eabi libnewlib-arm-none-eabi",
         core_define="TD_CORE_CORTEXM", cpu_flags=_cortex_m_cpu_flags, link_flags=_cortex_m_link_flags,
         linker_template="linker.ld.j2", renode_cpu=_cortex_m_renode,
         qemu_binary="qemu-system-arm", qemu_apt="qemu-system-arm",
         needed_for_build="build for Cortex-M boards", needed_for_run="run on emulated Cortex-M boards"),
    Arch(name="riscv", toolchain_prefix="riscv64-unknown-elf-",
         toolchain_apt="gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf",
         core_define="TD_CORE_RISCV", cpu_flags=_riscv_cpu_flags, link_flags=_riscv_link_flags,
         linker_template="linker_riscv.ld.j2", renode_cpu=_riscv_renode,
         qemu_binary="qemu-system-riscv32", qemu_apt="qemu-system-misc",
         needed_for_build="build for the RV32IMC board (riscv32-virt)", needed_for_run="run on the RV32IMC board"),
    Arch(name="xtensa", toolchain_prefix="xtensa-lx106-elf-",
         toolchain_apt="gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf",
         core_define="TD_CORE_XTENSA", cpu_flags=_xtensa_cpu_flags, link_flags=_xtensa_cpu_flags,
         linker_template="linker_xtensa.ld.j2", renode_cpu=None,
         qemu_binary="qemu-system-xtensa", qemu_apt="qemu-system-misc", defines=_xtensa_defines,
         needed_for_build="build for the ESP8266's Xtensa LX106 core (esp8266-qemu)",
         needed_for_run="run on the LX106 board (esp8266-qemu: the proxy of the ESP8266 and ESP32 boards)"),
)}


def arch_for(board: Board) -> Arch:
    """The table entry for ``board``'s architecture (boards tinydeploy builds itself always have one)."""
    try:
        return ARCHES[board.arch]
    except KeyError:
        raise BadInput(f"{board.name}: tinydeploy has no toolchain for arch '{board.arch}' "
                       f"(it builds for: {', '.join(ARCHES)})") from None
