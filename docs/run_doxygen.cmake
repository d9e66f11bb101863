# SPDX-License-Identifier: MIT
# cmake -DDOXYGEN=<exe> -DDOXYFILE=<file> -DWARN_LOG=<file> -DHTML=<index.html> -DMODE=REPORT|CHECK -P run_doxygen.cmake
# Runs Doxygen on the configured Doxyfile, then reads the warning log it wrote.
# REPORT (the docs target): prints where the site is and how many warnings there were.
# CHECK (the docs_no_warnings test): prints every warning and fails when there is any.
foreach(var DOXYGEN DOXYFILE WARN_LOG HTML MODE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_doxygen.cmake: pass -D${var}=...")
  endif()
endforeach()

file(REMOVE ${WARN_LOG})  # a stale log from an earlier run must not decide this one
execute_process(COMMAND ${DOXYGEN} ${DOXYFILE} RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "doxygen ${DOXYFILE} failed with status ${rc}:\n${err}")
endif()

# Doxygen writes its warnings to WARN_LOG, except those about the configuration itself, which
# come before the log is open (or when it cannot be opened) and go to stderr: both count.
set(log "")
if(EXISTS ${WARN_LOG})
  file(READ ${WARN_LOG} log)
endif()
if(err MATCHES "(warning|error):")
  set(log "${err}\n${log}")
endif()
string(STRIP "${log}" log)
set(count 0)
if(log)
  string(REGEX MATCHALL "(warning|error):" hits "${log}")
  list(LENGTH hits count)
endif()

if(MODE STREQUAL "CHECK")
  if(log)
    message("${log}")
    message(FATAL_ERROR "docs_no_warnings: Doxygen wrote ${count} warning(s) to ${WARN_LOG} (listed above); "
                        "document each declaration it names with /// or fix the reference")
  endif()
  message(STATUS "docs_no_warnings: no Doxygen warnings")
else()
  message(STATUS "docs: ${HTML}")
  if(log)
    message(STATUS "docs: ${count} warning(s), see ${WARN_LOG} (ctest --preset cpu -L docs fails until there are none)")
  endif()
endif()
