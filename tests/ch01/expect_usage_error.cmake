# SPDX-License-Identifier: MIT
# cmake -DMPIEXEC=<mpiexec> -DNP=<n> -DEXE=<program> -DARGS="a|b|c" -DEXPECT=<regex> -P expect_usage_error.cmake
# Runs `mpiexec -n NP EXE ARGS` (ARGS separated by '|') and fails unless the run exits with
# status 2 (a usage error, CONTRACT section 2) within 60 s and its output has exactly one line
# starting with "error" that matches EXPECT.
cmake_minimum_required(VERSION 3.19)
string(REPLACE "|" ";" args "${ARGS}")
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${EXE} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
set(all "${out}\n${err}")
if(NOT rc STREQUAL "2")
  message(FATAL_ERROR "expected exit status 2 for '${ARGS}', got '${rc}'. Output:\n${all}")
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
message(STATUS "exit 2: ${errors}")
