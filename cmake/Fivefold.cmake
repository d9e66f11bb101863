# SPDX-License-Identifier: MIT
# Helpers shared by every CMakeLists: add a chapter executable, add an MPI test at several
# world sizes, run a chapter and check its summary, check that a bad command line is refused,
# add a chapter exercise with its expected-to-fail and solution tests.

# The environment every MPI launch of ours gets (tests and the tour): allow root (CI runs as
# root), allow more ranks than cores, and avoid the ptrace-based single-copy path that fails
# inside containers.
set(FIVEFOLD_MPI_ENV
  OMPI_ALLOW_RUN_AS_ROOT=1
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_rmaps_base_oversubscribe=1
  OMPI_MCA_btl_vader_single_copy_mechanism=none
  OMPI_MCA_hwloc_base_binding_policy=none
  PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe)

# fivefold_add_chapter(<target> SOURCES <files...> [LIBS <libs...>])
# Builds build/<preset>/bin/<target> against the backends (and whatever LIBS adds).
function(fivefold_add_chapter target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${target} ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE fivefold::backends ${ARG_LIBS})
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
endfunction()

# fivefold_add_mpi_test(<name> COMMAND <exe> [args...] NP <n...> [LABELS <l...>]
#                       [TIMEOUT <s>] [WILL_FAIL] [PASS_REGULAR_EXPRESSION <re>])
# Registers <name>.np<n> for every n, each launched as `mpiexec -n <n> <exe> args`.
# The timeout makes a deadlock fail the test instead of hanging ctest.
function(fivefold_add_mpi_test name)
  cmake_parse_arguments(ARG "WILL_FAIL" "TIMEOUT;PASS_REGULAR_EXPRESSION"
                        "COMMAND;NP;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  list(GET ARG_COMMAND 0 exe)
  list(REMOVE_AT ARG_COMMAND 0)
  if(TARGET ${exe})
    set(exe $<TARGET_FILE:${exe}>)
  endif()
  foreach(np IN LISTS ARG_NP)
    set(test ${name}.np${np})
    add_test(NAME ${test}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS}
                     ${exe} ${MPIEXEC_POSTFLAGS} ${ARG_COMMAND})
    set_tests_properties(${test} PROPERTIES TIMEOUT ${ARG_TIMEOUT}
                         LABELS "mpi;${ARG_LABELS}" PROCESSORS 2
                         ENVIRONMENT "${FIVEFOLD_MPI_ENV}")
    if(ARG_WILL_FAIL)
      set_tests_properties(${test} PROPERTIES WILL_FAIL TRUE)
    endif()
    if(ARG_PASS_REGULAR_EXPRESSION)
      set_tests_properties(${test} PROPERTIES PASS_REGULAR_EXPRESSION "${ARG_PASS_REGULAR_EXPRESSION}")
    endif()
  endforeach()
endfunction()

# In a helper, after cmake_parse_arguments(ARG ...): a misspelt or missing keyword (say, the
# chapter's options without ARGS in front) stops the configure instead of vanishing silently.
macro(fivefold_require_parsed helper)
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${helper}: unexpected arguments '${ARG_UNPARSED_ARGUMENTS}' "
                        "(the chapter's options go after ARGS)")
  endif()
  if(NOT ARG_NP)
    message(FATAL_ERROR "${helper}: NP <ranks> is required")
  endif()
endmacro()

# fivefold_add_chapter_run(<program> <suffix> NP <n> [TRACE] [TIMEOUT <s>] [CHECKS <k>] [ARGS <args...>])
# The chapter <program> (e.g. ch03_tensor_parallel) under mpiexec with --quiet --json (test
# <program>.<suffix>.np<n>, exit 0 only when its own checks passed on every rank), then its
# summary read back by tests/chapters/check_summary.cmake (test <program>.<suffix>.np<n>.json:
# the chapter's name and world size, every check passed, every comm entry equal to its formula).
# TRACE also writes a --trace and checks it has one pid per rank (keep those runs short: the
# CMake JSON reader is slow on long traces). CHECKS: the summary must hold exactly k checks (a
# number the chapter README states). Files go to <binary dir>/runs/.
function(fivefold_add_chapter_run program suffix)
  cmake_parse_arguments(ARG "TRACE" "NP;TIMEOUT;CHECKS" "ARGS" ${ARGN})
  fivefold_require_parsed(fivefold_add_chapter_run)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  string(REGEX REPLACE "^ch" "" chapter ${program})  # ch03_tensor_parallel -> 03_tensor_parallel
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/runs)
  file(MAKE_DIRECTORY ${dir})
  set(base ${dir}/${program}.${suffix}.np${ARG_NP})
  set(test ${program}.${suffix}.np${ARG_NP})
  set(trace_args "")
  set(trace_check "")
  if(DEFINED ARG_CHECKS)
    list(APPEND trace_check -DCHECKS=${ARG_CHECKS})
  endif()
  if(ARG_TRACE)
    set(trace_args --trace ${base}.trace.json)
    list(APPEND trace_check -DTRACE=${base}.trace.json)
  endif()
  fivefold_add_mpi_test(${program}.${suffix} COMMAND ${program} --quiet --json ${base}.json ${trace_args} ${ARG_ARGS}
                        NP ${ARG_NP} LABELS chapter TIMEOUT ${ARG_TIMEOUT})
  set_tests_properties(${test} PROPERTIES FIXTURES_SETUP ${test})
  add_test(NAME ${test}.json
           COMMAND ${CMAKE_COMMAND} -DJSON=${base}.json -DCHAPTER=${chapter} -DWORLD=${ARG_NP} ${trace_check}
                   -P ${PROJECT_SOURCE_DIR}/tests/chapters/check_summary.cmake)
  set_tests_properties(${test}.json PROPERTIES FIXTURES_REQUIRED ${test} LABELS chapter TIMEOUT 120)
endfunction()

# fivefold_add_bad_run(<program> <name> NP <n> ARGS <a|b|c> EXPECT <regex> [EXIT <code>] [SECONDS <s>] [LABEL <l>])
# A command line the chapter must refuse (test <program>.bad_<name>.np<n>): exit status EXIT
# (default 2, a usage error) within SECONDS (default 60), and exactly one line starting with
# "error" that matches EXPECT (tests/chapters/expect_error.cmake). ARGS separates the arguments
# with '|'. LABEL (default chapter) is the test's label besides mpi.
function(fivefold_add_bad_run program name)
  cmake_parse_arguments(ARG "" "NP;ARGS;EXPECT;EXIT;SECONDS;LABEL" "" ${ARGN})
  fivefold_require_parsed(fivefold_add_bad_run)
  if(NOT DEFINED ARG_SECONDS)
    set(ARG_SECONDS 60)
  endif()
  if(NOT DEFINED ARG_LABEL)
    set(ARG_LABEL chapter)
  endif()
  set(test ${program}.bad_${name}.np${ARG_NP})
  if(NOT DEFINED ARG_EXIT)
    set(ARG_EXIT 2)  # docs/reference.md, "Command line": a bad option or an impossible layout exits 2
  endif()
  set(exit_arg -DEXIT=${ARG_EXIT})
  add_test(NAME ${test}
           COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DNP=${ARG_NP} -DEXE=$<TARGET_FILE:${program}>
                   "-DARGS=${ARG_ARGS}" "-DEXPECT=${ARG_EXPECT}" ${exit_arg} -DSECONDS=${ARG_SECONDS}
                   -P ${PROJECT_SOURCE_DIR}/tests/chapters/expect_error.cmake)
  set_tests_properties(${test} PROPERTIES LABELS "${ARG_LABEL};mpi" TIMEOUT 90 PROCESSORS 2
                       ENVIRONMENT "${FIVEFOLD_MPI_ENV}")
endfunction()

# fivefold_add_dump_check(<program> <suffix> NP <n> ARGS <args...> [SERIAL_ARGS <args...>])
# A parallel chapter's --dump (test <program>.<suffix>.np<n>) checked by tests/ch03/check_dump.py
# (test <program>.<suffix>.check: every file with its full shape, docs/reference.md "The dump") and,
# when chapter
# 01 is built, against chapter 01's dump of the same serial run (--step 4 SERIAL_ARGS; test
# <program>.<suffix>.serial): inputs and initial parameters exact, the rest to 1e-5 / 1e-4.
# The check needs a python3 with NumPy (check_dump.py exits 77, a skip, without NumPy; without
# python3 only the dumps run).
function(fivefold_add_dump_check program suffix)
  cmake_parse_arguments(ARG "" "NP" "ARGS;SERIAL_ARGS" ${ARGN})
  fivefold_require_parsed(fivefold_add_dump_check)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/runs/${program}.${suffix})
  set(fixture ${program}.${suffix})
  fivefold_add_mpi_test(${program}.${suffix} COMMAND ${program} --quiet --dump ${dir} ${ARG_ARGS}
                        NP ${ARG_NP} LABELS chapter TIMEOUT 120)
  set_tests_properties(${program}.${suffix}.np${ARG_NP} PROPERTIES FIXTURES_SETUP ${fixture})
  set(ref "")
  if(TARGET ch01_reference_model)
    set(ref ${dir}.serial)
    add_test(NAME ${program}.${suffix}.serial
             COMMAND ch01_reference_model --quiet --dump ${ref} --step 4 ${ARG_SERIAL_ARGS})
    set_tests_properties(${program}.${suffix}.serial PROPERTIES FIXTURES_SETUP ${fixture} LABELS chapter
                         TIMEOUT 60 ENVIRONMENT "${FIVEFOLD_MPI_ENV}")
  endif()
  find_program(FIVEFOLD_NUMPY_PYTHON NAMES python3 HINTS /usr/bin DOC "python3 with NumPy")
  if(NOT FIVEFOLD_NUMPY_PYTHON)
    message(STATUS "${program}: no python3, so ${program}.${suffix}.check is not registered (the dump still runs)")
    return()
  endif()
  add_test(NAME ${program}.${suffix}.check
           COMMAND ${FIVEFOLD_NUMPY_PYTHON} ${PROJECT_SOURCE_DIR}/tests/ch03/check_dump.py ${dir} ${ref})
  set_tests_properties(${program}.${suffix}.check PROPERTIES FIXTURES_REQUIRED ${fixture} LABELS chapter
                       TIMEOUT 60 SKIP_RETURN_CODE 77)
endfunction()

# fivefold_add_notebook(<test name> <notebook file name> <program>)
# Executes notebooks/<file> with /usr/bin/python3's nbconvert (test <name>, label notebooks); the
# notebook runs <program> from its build directory under mpiexec and asserts as it plots. Not
# registered (with a message saying what is missing) when /usr/bin/python3 lacks nbconvert,
# matplotlib, nbformat or NumPy; scripts/setup.sh installs them.
function(fivefold_add_notebook name file program)
  set(notebook ${PROJECT_SOURCE_DIR}/notebooks/${file})
  if(NOT EXISTS ${notebook} OR NOT EXISTS /usr/bin/python3)
    return()
  endif()
  execute_process(COMMAND /usr/bin/python3 -c "import nbconvert, matplotlib, nbformat, numpy"
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT rc EQUAL 0)
    message(STATUS "${name}: /usr/bin/python3 lacks nbconvert, matplotlib, nbformat or numpy: the notebook test "
                   "(label notebooks) is not registered. scripts/setup.sh installs them.")
    return()
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/runs)
  file(MAKE_DIRECTORY ${dir})
  add_test(NAME ${name}
           COMMAND /usr/bin/python3 -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300
                   --output-dir ${dir} ${notebook})
  set_tests_properties(${name} PROPERTIES LABELS notebooks TIMEOUT 400 PROCESSORS 2
                       ENVIRONMENT "${FIVEFOLD_MPI_ENV};FIVEFOLD_BIN=$<TARGET_FILE_DIR:${program}>;MPIEXEC=${MPIEXEC_EXECUTABLE}")
endfunction()

# fivefold_add_exercise(<chapter> <exercise> NP <n...> SOLUTION_NP <n...>)
# One chapter exercise, e.g. fivefold_add_exercise(ch00 ex1_reduce_scatter NP 3 SOLUTION_NP 2 3 5)
# in chapters/<chapter>_*/exercises. The first call in a directory builds the shared check
# (check.cpp -> fivefold_<chapter>_exercise_check, on top of fivefold_<chapter>) and the solution
# program (solution.cpp -> <chapter>_ex_solution). Every call builds <exercise>.cpp into
# <chapter>_<exercise> and, with tests on, registers <chapter>_<exercise>.np<n> as expected to
# FAIL (the untouched exercise) and <chapter>_<exercise>.solution.np<n> as expected to pass
# (`<chapter>_ex_solution <name>`, where <name> is <exercise> without its exN_ prefix).
function(fivefold_add_exercise chapter exercise)
  cmake_parse_arguments(ARG "" "" "NP;SOLUTION_NP" ${ARGN})
  set(check fivefold_${chapter}_exercise_check)
  if(NOT TARGET ${check})
    add_library(${check} STATIC check.cpp)
    target_link_libraries(${check} PUBLIC fivefold_${chapter} fivefold_exercise)
    add_executable(${chapter}_ex_solution solution.cpp)
    target_link_libraries(${chapter}_ex_solution PRIVATE ${check})
  endif()
  add_executable(${chapter}_${exercise} ${exercise}.cpp)
  target_link_libraries(${chapter}_${exercise} PRIVATE ${check})
  if(FIVEFOLD_BUILD_TESTS)
    string(REGEX REPLACE "^ex[0-9]+_" "" routine ${exercise})
    fivefold_add_mpi_test(${chapter}_${exercise} COMMAND ${chapter}_${exercise} NP ${ARG_NP}
                          LABELS exercise TIMEOUT 60 WILL_FAIL)
    fivefold_add_mpi_test(${chapter}_${exercise}.solution COMMAND ${chapter}_ex_solution ${routine}
                          NP ${ARG_SOLUTION_NP} LABELS exercise TIMEOUT 60)
  endif()
endfunction()
