# node-gyp build of kheadersfs's FUSE binding (src/native/kheadersfs_fuse.c) against the system's
# libfuse 2 (pkg-config fuse: libfuse-dev on Debian). packaging/addons.sh points PKG_CONFIG_LIBDIR at
# a board's libfuse to cross-build it.
{
  "targets": [
    {
      "target_name": "kheadersfs_fuse",
      "sources": ["kheadersfs_fuse.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse)"],
      "libraries": ["<!@(pkg-config --libs fuse)"]
    }
  ]
}
