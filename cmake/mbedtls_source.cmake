# The lean static Mbed TLS (included by CMakeLists.txt when EW_MBEDTLS_SOURCE is set).
# Builds the Mbed TLS 3.6 source tree in EW_MBEDTLS_SOURCE with EW_MBEDTLS_CONFIG (default:
# platform/mbedtls_config.h, client only) as static libraries inside this build folder,
# for the host or for the toolchain's target, and links edgeway against them: the binary
# needs no Mbed TLS package on the device.
set(EW_MBEDTLS_CONFIG "${CMAKE_SOURCE_DIR}/platform/mbedtls_config.h" CACHE FILEPATH
    "Mbed TLS configuration header for EW_MBEDTLS_SOURCE (replaces Mbed TLS's default)")
set(EW_MBEDTLS_OUT_CONTENT_LEN "" CACHE STRING "MBEDTLS_SSL_OUT_CONTENT_LEN for the lean config (default 4096)")

if(NOT EXISTS "${EW_MBEDTLS_SOURCE}/include/mbedtls/build_info.h")
  message(FATAL_ERROR "EW_MBEDTLS_SOURCE=${EW_MBEDTLS_SOURCE} is not an Mbed TLS 3.x source tree "
                      "(no include/mbedtls/build_info.h). See the README: apt-get source mbedtls.")
endif()
file(STRINGS "${EW_MBEDTLS_SOURCE}/include/mbedtls/build_info.h" _ew_mbed_ver
     REGEX "^#define MBEDTLS_VERSION_STRING +\"")
message(STATUS "Mbed TLS from source: ${_ew_mbed_ver} with ${EW_MBEDTLS_CONFIG}")

# Mbed TLS's own options, fixed for this use (cache entries, so they win over its defaults).
set(ENABLE_TESTING OFF CACHE BOOL "" FORCE)
set(ENABLE_PROGRAMS OFF CACHE BOOL "" FORCE)
set(USE_STATIC_MBEDTLS_LIBRARY ON CACHE BOOL "" FORCE)
set(USE_SHARED_MBEDTLS_LIBRARY OFF CACHE BOOL "" FORCE)
set(MBEDTLS_FATAL_WARNINGS OFF CACHE BOOL "" FORCE)
set(DISABLE_PACKAGE_CONFIG_AND_INSTALL ON CACHE BOOL "" FORCE)
set(MBEDTLS_CONFIG_FILE "${EW_MBEDTLS_CONFIG}" CACHE FILEPATH "" FORCE)
# Size, not speed, for the device build's library (the hot paths are assembly or AES-NI/CE).
add_subdirectory(${EW_MBEDTLS_SOURCE} ${CMAKE_BINARY_DIR}/mbedtls EXCLUDE_FROM_ALL)
foreach(t mbedcrypto mbedx509 mbedtls)
  target_compile_options(${t} PRIVATE -Os -ffunction-sections -fdata-sections -w)
  set_target_properties(${t} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(EW_MBEDTLS_OUT_CONTENT_LEN)
    target_compile_definitions(${t} PUBLIC EW_MBEDTLS_OUT_CONTENT_LEN=${EW_MBEDTLS_OUT_CONTENT_LEN})
  endif()
endforeach()

add_library(ew_mbedtls INTERFACE)
# mbedtls' targets carry MBEDTLS_CONFIG_FILE and their include folder (PUBLIC), so edgeway's
# sources see the same configuration as the library.
target_link_libraries(ew_mbedtls INTERFACE mbedtls mbedx509 mbedcrypto)
target_include_directories(ew_mbedtls SYSTEM INTERFACE ${EW_MBEDTLS_SOURCE}/include)
# The tests that run an in-process Mbed TLS server need MBEDTLS_SSL_SRV_C, which the lean
# configuration leaves out (tests/CMakeLists.txt skips them; the integration tests run).
file(STRINGS "${EW_MBEDTLS_CONFIG}" _ew_srv REGEX "^#define MBEDTLS_SSL_SRV_C")
if(_ew_srv)
  set(EW_MBEDTLS_HAS_SERVER ON)
else()
  set(EW_MBEDTLS_HAS_SERVER OFF)
endif()
# The per-record path (AES-GCM over AES-NI / the ARMv8 crypto extension, ChaCha20-Poly1305,
# the record layer) at -O2: at -Os GCM's per-block calls are not inlined and cost a device
# a third more CPU per proxied request for a few KiB of code.
foreach(f aes.c cipher.c cipher_wrap.c chacha20.c poly1305.c chachapoly.c
          ssl_msg.c platform_util.c constant_time.c)
  set_property(SOURCE ${EW_MBEDTLS_SOURCE}/library/${f} DIRECTORY ${EW_MBEDTLS_SOURCE}/library
               APPEND PROPERTY COMPILE_OPTIONS -O2)
endforeach()
# GHASH: -O3 unrolls the byte reversals around each carry-less multiply (a fifth fewer
# instructions per 16-byte block than -O2).
foreach(f aesni.c aesce.c gcm.c)
  set_property(SOURCE ${EW_MBEDTLS_SOURCE}/library/${f} DIRECTORY ${EW_MBEDTLS_SOURCE}/library
               APPEND PROPERTY COMPILE_OPTIONS -O3)
endforeach()
# x86-64: edgeway's AES-GCM (MBEDTLS_GCM_ALT, platform/mbedtls/gcm_alt.h). The fast path is our
# code, built with edgeway's flags; gcm_portable.c is Mbed TLS's gcm.c under other names.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  target_compile_definitions(mbedcrypto PUBLIC EW_GCM_CLMUL=1)
  target_include_directories(mbedcrypto PUBLIC ${CMAKE_SOURCE_DIR}/platform/mbedtls)
  add_library(ew_gcm_clmul OBJECT ${CMAKE_SOURCE_DIR}/platform/mbedtls/gcm_clmul.cpp)
  target_compile_options(ew_gcm_clmul PRIVATE ${EW_PRODUCT_FLAGS} -O2 -ffunction-sections -fdata-sections)
  target_compile_definitions(ew_gcm_clmul PRIVATE $<TARGET_PROPERTY:mbedcrypto,INTERFACE_COMPILE_DEFINITIONS>)
  target_include_directories(ew_gcm_clmul SYSTEM PRIVATE $<TARGET_PROPERTY:mbedcrypto,INTERFACE_INCLUDE_DIRECTORIES>)
  set_target_properties(ew_gcm_clmul PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_sources(mbedcrypto PRIVATE ${CMAKE_SOURCE_DIR}/platform/mbedtls/gcm_portable.c
                 $<TARGET_OBJECTS:ew_gcm_clmul>)
  set_property(SOURCE ${CMAKE_SOURCE_DIR}/platform/mbedtls/gcm_portable.c
               DIRECTORY ${EW_MBEDTLS_SOURCE}/library APPEND PROPERTY INCLUDE_DIRECTORIES ${EW_MBEDTLS_SOURCE})
  set_property(SOURCE ${CMAKE_SOURCE_DIR}/platform/mbedtls/gcm_portable.c
               DIRECTORY ${EW_MBEDTLS_SOURCE}/library APPEND PROPERTY COMPILE_OPTIONS -O3)
endif()
# Strip and gc the device binary's unused sections (the library was built in sections).
add_link_options(-Wl,--gc-sections)
