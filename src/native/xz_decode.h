// The xz block decoder's part of the addon (xz_decode.c): adds decodeLzma2 and liblzmaVersion to exports.
#ifndef KHEADERSFS_XZ_DECODE_H
#define KHEADERSFS_XZ_DECODE_H
#include <node_api.h>
void xz_decode_init(napi_env env, napi_value exports);
#endif
