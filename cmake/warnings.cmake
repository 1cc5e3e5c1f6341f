# Warnings for every convnet target: the code builds clean under GCC 12 and Clang 14.
function(convnet_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow)
  if(CONVNET_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
