# CONVNET_SANITIZE=address,undefined builds everything with those sanitizers (used by .ci/run).
if(CONVNET_SANITIZE)
  add_compile_options(-fsanitize=${CONVNET_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CONVNET_SANITIZE})
endif()

# The fuzz targets' coverage instrumentation, on everything they link (tests/fuzz).
if(CONVNET_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
