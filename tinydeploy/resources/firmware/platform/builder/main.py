"""SCons build script: compile src/ and lib/ for the board with a system cross GCC."""
from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
prefix = board.get("build.toolchain")
cpu_flags = board.get("build.cpu_flags")
link_flags = board.get("build.link_flags")

env.Replace(
    AR=prefix + "ar", AS=prefix + "gcc", CC=prefix + "gcc", CXX=prefix + "g++", GDB=prefix + "gdb",
    OBJCOPY=prefix + "objcopy", RANLIB=prefix + "ranlib", SIZETOOL=prefix + "size",
    ARFLAGS=["rc"], PROGNAME="firmware", PROGSUFFIX=".elf",
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)
env.Append(
    ASFLAGS=cpu_flags,
    CCFLAGS=cpu_flags + ["-O2", "-g", "-ffunction-sections", "-fdata-sections", "-Wall"],
    CFLAGS=["-std=c99"],
    CXXFLAGS=["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"],   # TFLM runtime
    LINKFLAGS=link_flags + ["-nostartfiles", "-Wl,--gc-sections"],
    LIBS=["c", "gcc"],
    BUILDERS=dict(ElfToBin=Builder(action=env.VerboseAction(
        "$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"), suffix=".bin")),
)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin("$BUILD_DIR/${PROGNAME}", target_elf)
AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))
Default([target_bin])
