# `cmake --install`: the binary in bin/, the man page edgeway(8), the systemd unit, and the
# example INI as /etc/edgeway/edgeway.ini, which an installation never overwrites once changed.
# The Debian package (debian/) installs through this same file.
include(GNUInstallDirs)

# The configuration lives in /etc/edgeway whatever the prefix: the unit and the man page say so.
set(EW_INSTALL_CONFDIR "/etc/edgeway" CACHE PATH "Where the INI is installed (absolute)")
# systemd's own answer (Debian 12: /lib/systemd/system); without systemd's .pc file, the prefix's.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_get_variable(EW_SYSTEMD_PC_UNITDIR systemd systemdsystemunitdir)
endif()
if(EW_SYSTEMD_PC_UNITDIR AND CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(EW_UNITDIR_DEFAULT "${EW_SYSTEMD_PC_UNITDIR}")
else()
  set(EW_UNITDIR_DEFAULT "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(EW_INSTALL_UNITDIR "${EW_UNITDIR_DEFAULT}" CACHE PATH "Where edgeway.service is installed")

install(TARGETS edgeway RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/man/edgeway.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# The unit in the repository names /usr/bin/edgeway and /etc/edgeway/edgeway.ini; another
# prefix gets its own paths written in.
file(READ ${CMAKE_SOURCE_DIR}/config/edgeway.service EW_UNIT_TEXT)
string(REPLACE "/usr/bin/edgeway" "${CMAKE_INSTALL_FULL_BINDIR}/edgeway" EW_UNIT_TEXT "${EW_UNIT_TEXT}")
string(REPLACE "/etc/edgeway/edgeway.ini" "${EW_INSTALL_CONFDIR}/edgeway.ini" EW_UNIT_TEXT "${EW_UNIT_TEXT}")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/install/edgeway.service CONTENT "${EW_UNIT_TEXT}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/config/edgeway.service)
install(FILES ${CMAKE_BINARY_DIR}/install/edgeway.service DESTINATION ${EW_INSTALL_UNITDIR})

# The INI: installed when absent or unchanged; a changed one is kept and the new example goes
# beside it as edgeway.ini.dist (dpkg does the same for the package with its conffile prompt).
install(CODE "
  set(src \"${CMAKE_SOURCE_DIR}/config/edgeway.ini\")
  # file(INSTALL) adds DESTDIR itself; the checks look at the staged file.
  set(dir \"${EW_INSTALL_CONFDIR}\")
  set(dst \"\$ENV{DESTDIR}\${dir}/edgeway.ini\")
  if(EXISTS \"\${dst}\")
    file(SHA256 \"\${src}\" new_sum)
    file(SHA256 \"\${dst}\" old_sum)
    if(new_sum STREQUAL old_sum)
      message(STATUS \"Up-to-date: \${dst}\")
    else()
      file(INSTALL \"\${src}\" DESTINATION \"\${dir}\" RENAME edgeway.ini.dist
           PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
      message(STATUS \"Kept the changed \${dst}; the new example is \${dst}.dist\")
    endif()
  else()
    file(INSTALL \"\${src}\" DESTINATION \"\${dir}\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
")
