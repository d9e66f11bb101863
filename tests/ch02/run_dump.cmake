# SPDX-License-Identifier: MIT
# cmake -DMPIEXEC=<mpiexec> -DNP=<n> -DEXE=<ch02_data_parallel> -DDIR=<dump dir> -DARGS="a|b|c" -P run_dump.cmake
# Empties DIR, then runs `mpiexec -n NP EXE --quiet --dump DIR ARGS` and fails unless it exits 0.
cmake_minimum_required(VERSION 3.19)
string(REPLACE "|" ";" args "${ARGS}")
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${EXE} --quiet --dump ${DIR} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "'${EXE} --dump ${DIR} ${ARGS}' at ${NP} rank(s) exited with '${rc}'. Output:\n${out}\n${err}")
endif()
message(STATUS "wrote ${DIR}")
