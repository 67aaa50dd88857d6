# hse_add_tool(<verb>): builds tools/hse-<verb>/main.cpp into bin/hse-<verb>, linked to libhse,
# and to libhse_model (LibTorch) when tools/hse-<verb>/TORCH exists.
function(hse_add_tool verb)
  set(_torch_tool OFF)
  if(EXISTS ${PROJECT_SOURCE_DIR}/tools/hse-${verb}/TORCH)
    set(_torch_tool ON)
    if(NOT TARGET hse_model)
      message(STATUS "hse: hse-${verb} needs LibTorch (HSE_WITH_TORCH=OFF): not built")
      return()
    endif()
  endif()
  add_executable(hse-${verb} ${PROJECT_SOURCE_DIR}/tools/hse-${verb}/main.cpp)
  target_link_libraries(hse-${verb} PRIVATE hse)
  if(_torch_tool)
    target_link_libraries(hse-${verb} PRIVATE hse_model)
  endif()
  install(TARGETS hse-${verb} RUNTIME DESTINATION bin)
endfunction()

# hse_add_test(<name> SOURCES ... LABELS ...): a doctest executable registered with CTest.
function(hse_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE hse hse_doctest_main)
  add_test(NAME ${name} COMMAND bash ${PROJECT_SOURCE_DIR}/tests/require_all.sh $<TARGET_FILE:${name}>)
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" SKIP_RETURN_CODE 77
    ENVIRONMENT "HSE_SOURCE_DIR=${PROJECT_SOURCE_DIR};HSE_BIN_DIR=${CMAKE_BINARY_DIR}/bin;PYTHON=${HSE_PYTHON}")
endfunction()

# hse_add_script_test(<name> COMMAND ... LABELS ...): a shell/Python test registered with CTest.
function(hse_add_script_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "COMMAND;LABELS" ${ARGN})
  # tests/require_all.sh: a skip (77) fails under CI=true / HSE_REQUIRE_ALL=1.
  add_test(NAME ${name} COMMAND bash ${PROJECT_SOURCE_DIR}/tests/require_all.sh ${T_COMMAND}
    WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" SKIP_RETURN_CODE 77 TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "HSE_SOURCE_DIR=${PROJECT_SOURCE_DIR};HSE_BIN_DIR=${CMAKE_BINARY_DIR}/bin;PYTHON=${HSE_PYTHON}")
endfunction()
