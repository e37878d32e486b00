# node-gyp build of kheadersfs's native addon: the FUSE binding (kheadersfs_fuse.c) against the system's
# libfuse 2 (pkg-config fuse: libfuse-dev on Debian) and the xz block decoder (xz_decode.c) against the
# system's liblzma (pkg-config liblzma: liblzma-dev). packaging/addons.sh points PKG_CONFIG_LIBDIR at a
# board's libfuse and liblzma to cross-build it.
{
  "targets": [
    {
      "target_name": "kheadersfs_fuse",
      "sources": ["kheadersfs_fuse.c", "answers.c", "channel.c", "xz_decode.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse liblzma)"],
      "libraries": ["<!@(pkg-config --libs fuse liblzma)"]
    }
  ]
}
