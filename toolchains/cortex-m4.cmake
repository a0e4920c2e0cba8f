# Bare-metal Cortex-M4 (Thumb-2, soft float ABI) with arm-none-eabi-gcc and newlib-nano.
# Builds only what needs no OS: -DEW_CORE_ONLY=ON builds the core (ew_core); add
# -DEW_TARGET_SELFTEST=ON for tests/target (the self-test for qemu mps2-an386).
#   cmake -S . -B build-cm4 -DCMAKE_TOOLCHAIN_FILE=toolchains/cortex-m4.cmake \
#         -DEW_CORE_ONLY=ON -DEW_TARGET_SELFTEST=ON -DCMAKE_BUILD_TYPE=MinSizeRel
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(EW_TRIPLE arm-none-eabi)

set(CMAKE_C_COMPILER ${EW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EW_TRIPLE}-g++)
set(CMAKE_ASM_COMPILER ${EW_TRIPLE}-gcc)

# No OS to run a test program during configuration: try_compile builds a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(EW_CM4_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "${EW_CM4_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${EW_CM4_FLAGS} -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit")
set(CMAKE_ASM_FLAGS_INIT "${EW_CM4_FLAGS}")
# newlib-nano; unused sections dropped. Programs add their startup, linker script and
# semihosting (rdimon.specs) or their board's syscalls themselves.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-specs=nano.specs -Wl,--gc-sections")

# Nothing of the host's may be found.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
