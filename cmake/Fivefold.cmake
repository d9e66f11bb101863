# SPDX-License-Identifier: MIT
# Helpers shared by every CMakeLists: add a chapter executable, add an MPI test at several
# world sizes, add a chapter exercise with its expected-to-fail and solution tests.

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
    target_link_libraries(${check} PUBLIC fivefold_${chapter})
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
