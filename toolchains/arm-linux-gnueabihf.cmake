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
# large files. Not _TIME_BITS=64: Debian 12's armhf Mbed TLS is built with a 32-bit time_t
# (it appears in its structs), so mixing the two would break their layout.
set(CMAKE_C_FLAGS_INIT "-D_FILE_OFFSET_BITS=64")
set(CMAKE_CXX_FLAGS_INIT "-D_FILE_OFFSET_BITS=64")

# Multiarch packages install headers to /usr/include and libraries to /usr/lib/<triple>,
# so the find root holds "/" as well as the toolchain's sysroot.
set(CMAKE_FIND_ROOT_PATH /usr/${EW_TRIPLE} /)
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
