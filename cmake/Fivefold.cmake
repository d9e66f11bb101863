# SPDX-License-Identifier: MIT
# Helpers shared by every CMakeLists: add a chapter executable, add an MPI test at several
# world sizes.

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
