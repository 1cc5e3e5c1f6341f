# CONVNET_SANITIZE=address,undefined builds everything with those sanitizers (used by .ci/run).
if(CONVNET_SANITIZE)
  add_compile_options(-fsanitize=${CONVNET_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CONVNET_SANITIZE})
endif()
