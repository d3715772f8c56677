"""Emulated boards: tinydeploy's own start-up code, drivers and linker script, built with
the system cross compiler through the offline PlatformIO platform in firmware/platform,
and run in QEMU with an exact instruction count (or in Renode, when it is installed)."""
from __future__ import annotations

import shutil
from pathlib import Path

from tinydeploy.core.errors import BadInput, MissingTool
from tinydeploy.core.resources import FIRMWARE
from tinydeploy.platforms import platformio, render
from tinydeploy.platforms.arch import Arch, arch_for
from tinydeploy.platforms.base import Platform, SizeReport
from tinydeploy.platforms.boards import EXIT_DRIVERS, UART_DRIVERS, Board
from tinydeploy.runtimes import tflm
from tinydeploy.platforms.targets import QemuTarget, RenodeTarget, Target

PLATFORM_DIR = FIRMWARE / "platform"          # the offline PlatformIO development platform


class EmulatedPlatform(Platform):
    """A board QEMU emulates (its YAML has emulator.qemu)."""
    kind = "emulated"

    @property
    def emulators(self) -> tuple[str, ...]:
        """QEMU, and Renode where it models the core."""
        return ("qemu", "renode") if self.arch.renode_cpu else ("qemu",)

    @classmethod
    def handles(cls, board: Board) -> bool:
        return board.qemu is not None

    @property
    def arch(self) -> Arch:
        return arch_for(self.board)

    @property
    def qemu_binary(self) -> str:
        return self.board.qemu.binary or self.arch.qemu_binary

    # ---- what the firmware is compiled with ---------------------------------------------------------------

    @property
    def defines(self) -> list[str]:
        """Preprocessor flags that select this board's drivers in firmware/bsp."""
        board = self.board
        uart_base = [] if board.uart.base is None else [f"-DTD_UART_BASE={board.uart.base:#x}u"]
        flags = [f"-D{self.arch.core_define}", f"-D{UART_DRIVERS[board.uart.kind]}", *uart_base,
                 f"-D{EXIT_DRIVERS[board.exit.kind]}", f"-DTD_BOARD_CLOCK_HZ={board.clock_hz}u"]
        if board.exit.base is not None:
            flags.append(f"-DTD_EXIT_BASE={board.exit.base:#x}u")
        return flags + self.arch.defines(board)

    @property
    def cpu_flags(self) -> list[str]:
        return self.arch.cpu_flags(self.board)

    @property
    def link_flags(self) -> list[str]:
        return self.arch.link_flags(self.board)

    # ---- the project's life -------------------------------------------------------------------------------

    def render(self, model, vectors, out_dir: Path, profile: bool = False) -> Path:
        def board_files(env, ctx: dict, project: Path) -> list[Path]:
            board = self.board
            flags = self.defines + (["-DTD_PROFILE"] if profile else [])
            if model.runtime == "tflm":
                flags += tflm.archive_flags(model.tree)
                tflm.build_archive(model, self.arch.toolchain_prefix, self.cpu_flags, project)
            ctx = dict(ctx, platform=f"symlink://{PLATFORM_DIR}", pio_board=f"td-{board.name}", build_flags=flags,
                       toolchain=self.arch.toolchain_prefix, cpu_flags=self.cpu_flags, link_flags=self.link_flags)
            (project / "boards").mkdir()
            (project / "platformio.ini").write_text(env.get_template("platformio.ini.j2").render(ctx))
            (project / "boards" / f"td-{board.name}.json").write_text(env.get_template("board.json.j2").render(ctx))
            (project / "linker.ld").write_text(env.get_template(self.arch.linker_template).render(ctx))
            (project / "src" / "main.c").write_text(env.get_template("main.c.j2").render(ctx))
            return sorted((FIRMWARE / "bsp").iterdir())
        return render.render_project(model, self.board, vectors, out_dir, profile, board_files)

    def build(self, project: Path) -> Path:
        missing = self._missing_toolchain()
        if missing:
            raise MissingTool(f"not installed: {missing[0]}; or run `tinydeploy doctor`")
        return platformio.run_build(project, platformio.platformio_env(), self.board.name)

    def check_flashable(self) -> None:
        name = self.board.name
        raise BadInput(f"{name} is an emulated board; there is nothing to flash: `tinydeploy run --board {name}` runs it")

    def flash(self, project: Path, port: str | None = None) -> None:
        self.check_flashable()

    def size(self, project: Path, elf: Path) -> SizeReport:
        return platformio.elf_size(elf, self.arch.toolchain_prefix)

    def start_emulator(self, elf: Path, emulator: str) -> Target:
        if emulator == "renode":
            return RenodeTarget(self.board, elf)
        if shutil.which(self.qemu_binary) is None:
            hints = "; ".join(self.missing_tools())
            raise MissingTool(f"{self.qemu_binary} not found ({hints}); or run `tinydeploy doctor`")
        return QemuTarget(self.board, elf, self.qemu_binary)

    # ---- what this machine can do with it -----------------------------------------------------------------

    def _missing_toolchain(self) -> list[str]:
        prefix = self.arch.toolchain_prefix
        if shutil.which(prefix + "gcc") is None:
            return [f"{prefix}gcc (apt-get install {self.arch.toolchain_apt})"]
        return []

    def missing_tools(self) -> list[str]:
        missing = self._missing_toolchain()
        if shutil.which(self.qemu_binary) is None:
            missing.append(f"{self.qemu_binary} (apt-get install {self.arch.qemu_apt})")
        return missing

    def can_build_here(self) -> bool:
        return not self._missing_toolchain()

    def status_here(self) -> str:
        missing = self.missing_tools()
        return "build + run" if not missing else "missing " + ", ".join(m.split(" ")[0] for m in missing)

    def emulation_target(self) -> Board:
        return self.board

    def runs_on(self) -> str:
        return f"qemu {self.board.qemu.machine}"
