# Build speed only; the binaries are the same without it.
#
# ccache: a rebuild of unchanged sources (a second checkout, `scripts/run`
# after `scripts/test`, the same file in another worktree) is a cache hit.
# base_dir makes the cache key independent of where the checkout lives, and
# hash_dir=false keeps -g builds shareable between checkouts too.
find_program(STATESIDE_CCACHE ccache)
if(STATESIDE_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(_launcher ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR}
      CCACHE_NOHASHDIR=true ${STATESIDE_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
endif()

# mold links the ~70 test executables (each with gRPC, Protobuf and debug
# info) several times faster than GNU ld.
find_program(STATESIDE_MOLD mold)
if(STATESIDE_MOLD)
  add_link_options(-fuse-ld=mold)
endif()
