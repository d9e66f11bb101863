# SPDX-License-Identifier: MIT
# cmake -DEXE=<ch01_reference_model> -DDIR=<dump dir> -DARGS="a|b|c" -P run_dump.cmake
# Empties DIR, then runs `EXE --step 4 --quiet --dump DIR ARGS` (one rank, no mpirun: a run with
# one rank also works without it) and fails unless it exits 0.
cmake_minimum_required(VERSION 3.19)
string(REPLACE "|" ";" args "${ARGS}")
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND ${EXE} --step 4 --quiet --dump ${DIR} ${args}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "'${EXE} --dump ${DIR} ${ARGS}' exited with '${rc}'. Output:\n${out}\n${err}")
endif()
message(STATUS "wrote ${DIR}")
