# SPDX-License-Identifier: MIT
# cmake -DMPIEXEC=<mpiexec> -DNP=<n> -DEXE=<program> -DARGS="a|b|c" -DEXPECT=<regex> [-DEXIT=<code>]
#       [-DSECONDS=<limit, default 60>] -P expect_error.cmake
# The one "expected error" script of the test suite (tests/chapters, ch01, ch02, ch03 use it).
# Runs `mpiexec -n NP EXE ARGS` (ARGS separated by '|') and fails unless the run exits non-zero
# (exactly with status EXIT when given, e.g. 2 for a usage error, docs/reference.md "Command line")
# within SECONDS (60 by default) and the combined output has exactly one line starting with "error" (our one-line
# report; the banner mpirun adds when a rank exits non-zero has no such line) that matches
# EXPECT (e.g. the option's name).
cmake_minimum_required(VERSION 3.19)
string(REPLACE "|" ";" args "${ARGS}")
if(NOT DEFINED SECONDS)
  set(SECONDS 60)
endif()
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${EXE} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT ${SECONDS})
set(all "${out}\n${err}")
if(DEFINED EXIT AND NOT rc STREQUAL "${EXIT}")
  message(FATAL_ERROR "expected exit status ${EXIT} for '${ARGS}', got '${rc}'. Output:\n${all}")
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "expected a non-zero exit for '${ARGS}', got 0. Output:\n${all}")
endif()
if(rc MATCHES "timeout")
  message(FATAL_ERROR "'${ARGS}' did not exit within ${SECONDS} s (hang?). Output:\n${all}")
endif()
string(REPLACE ";" "," all_escaped "${all}")
string(REPLACE "\n" ";" lines "${all_escaped}")
set(errors "")
foreach(line IN LISTS lines)
  if(line MATCHES "^error")
    list(APPEND errors "${line}")
  endif()
endforeach()
list(LENGTH errors nerrors)
if(NOT nerrors EQUAL 1)
  message(FATAL_ERROR "expected exactly one 'error' line for '${ARGS}', got ${nerrors}. Output:\n${all}")
endif()
if(NOT errors MATCHES "${EXPECT}")
  message(FATAL_ERROR "the error line does not match '${EXPECT}': ${errors}")
endif()
message(STATUS "exit ${rc}: ${errors}")
