# Cross-compile edgeway for 32-bit ARM Linux with hard float (armhf) with Debian's cross toolchain
# (g++-arm-linux-gnueabihf) and target libraries from Debian multiarch (:armhf packages).
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake
# Tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR (set below).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(EW_TRIPLE arm-linux-gnueabihf)

set(CMAKE_C_COMPILER ${EW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EW_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EW_TRIPLE})

# 64-bit off_t/ino_t on this 32-bit target: without it readdir() fails with EOVERFLOW on
# file systems with 64-bit directory cookies (ext4 under qemu-user, NFS), and stat() on
# large files. time_t follows the release's ABI, because it appears in Mbed TLS's structs:
# Debian 13's armhf packages are built with a 64-bit time_t (_TIME_BITS=64, the "t64"
# transition), Debian 12's with a 32-bit one, so there it stays 32-bit.
set(EW_ARMHF_FLAGS "-D_FILE_OFFSET_BITS=64")
if(EXISTS /etc/os-release)
  file(STRINGS /etc/os-release EW_OS_VERSION_ID REGEX "^VERSION_ID=")
  string(REGEX REPLACE "[^0-9]" "" EW_OS_VERSION_ID "${EW_OS_VERSION_ID}")
  if(EW_OS_VERSION_ID AND EW_OS_VERSION_ID GREATER_EQUAL 13)
    string(APPEND EW_ARMHF_FLAGS " -D_TIME_BITS=64")
  endif()
endif()
set(CMAKE_C_FLAGS_INIT "${EW_ARMHF_FLAGS}")
set(CMAKE_CXX_FLAGS_INIT "${EW_ARMHF_FLAGS}")

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
  find_program(EW_QEMU_ARM qemu-arm)
  if(EW_QEMU_ARM)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${EW_QEMU_ARM};-L;/usr/${EW_TRIPLE})
  endif()
endif()
