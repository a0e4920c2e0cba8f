# Cross-compile edgeway for 64-bit ARM Linux (aarch64) with Debian's cross toolchain
# (g++-aarch64-linux-gnu) and target libraries from Debian multiarch (:arm64 packages).
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
# Tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR (set below).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(EW_TRIPLE aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${EW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EW_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EW_TRIPLE})

# Multiarch packages install headers to /usr/include and libraries to /usr/lib/<triple>,
# so the find root holds "/" as well as the toolchain's sysroot.
# EW_TARGET_EXTRA_ROOT: target packages unpacked rather than installed (scripts/cross-arm.sh
# does it on Debian 13 for llhttp and Catch2), searched first.
set(EW_TARGET_EXTRA_ROOT "" CACHE PATH "Unpacked target .debs searched before / (cross-arm.sh)")
set(CMAKE_FIND_ROOT_PATH ${EW_TARGET_EXTRA_ROOT} /usr/${EW_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Target .pc files only; otherwise the host's win and the link fails ("file in wrong format").
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${EW_TRIPLE}/pkgconfig:/usr/share/pkgconfig)

# ctest (and CMake's own test discovery) runs target programs through qemu-user; -L points
# it at the target's dynamic loader and libraries.
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(EW_QEMU_AARCH64 qemu-aarch64)
  if(EW_QEMU_AARCH64)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${EW_QEMU_AARCH64};-L;/usr/${EW_TRIPLE})
  endif()
endif()
