# bench_decode: decode tokens/s of hse::model::generate (see bench/bench_decode.py).
# Included from bench/CMakeLists.txt with: include(${CMAKE_CURRENT_LIST_DIR}/decode.cmake)
if(TARGET hse_model AND NOT TARGET bench_decode)
  add_executable(bench_decode ${CMAKE_CURRENT_LIST_DIR}/bench_decode.cpp)
  target_link_libraries(bench_decode PRIVATE hse hse_model)
  set_target_properties(bench_decode PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endif()
