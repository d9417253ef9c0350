# Sanitizer builds: -DSTATESIDE_SANITIZE=address (ASan+UBSan) or =thread (TSan).
if(STATESIDE_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(STATESIDE_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT STATESIDE_SANITIZE STREQUAL "")
  message(FATAL_ERROR "STATESIDE_SANITIZE must be empty, 'address' or 'thread'")
endif()

# Fuzz builds: every library gets the fuzzer's coverage instrumentation and
# ASan+UBSan; the fuzz targets link libFuzzer's main (tests/fuzz).
if(STATESIDE_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "STATESIDE_FUZZ needs clang (CMAKE_CXX_COMPILER=clang++-14)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
