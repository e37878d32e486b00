// One xz block's LZMA2 data decoded on libuv's thread pool with the system's liblzma, straight into
// a Buffer JavaScript allocated (docs/design.md, "Walks"). src/xz/block.ts checks everything about the
// block that needs no decoding (header, sizes, filters, padding) before it calls this, and compares the
// check this computes with the stored one.
//
// Why not lzma-native's raw decoder: it hands its output over in 64 KiB chunks, each a trip through
// the event loop and a copy, with its bundled xz 5.2.3. One lzma_code call over the whole block with
// the system's liblzma (5.4 on Debian 12) took 7.4-8.3 ms of CPU per MiB against 16-17, and the check
// is computed here too, off the daemon's main thread.
#define NAPI_VERSION 8

#include <lzma.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xz_decode.h"

enum { CHECK_NONE = 0, CHECK_CRC32 = 1, CHECK_CRC64 = 4 };

typedef struct {
  napi_async_work work;
  napi_ref in_ref, out_ref, callback;
  const uint8_t *in;
  size_t in_size;
  uint8_t *out;
  size_t out_size;
  uint32_t dict_size;
  int check;
  // results
  lzma_ret ret;
  int overflow; // the data decodes to more than out_size bytes
  size_t consumed, produced;
  uint8_t sum[8];
} job_t;

static void execute(napi_env env, void *data) {
  job_t *j = data;
  lzma_options_lzma opts;
  memset(&opts, 0, sizeof(opts));
  opts.dict_size = j->dict_size;
  lzma_filter filters[2] = {{LZMA_FILTER_LZMA2, &opts}, {LZMA_VLI_UNKNOWN, NULL}};
  lzma_stream s = LZMA_STREAM_INIT;
  j->ret = lzma_raw_decoder(&s, filters);
  if (j->ret != LZMA_OK) return;
  s.next_in = j->in;
  s.avail_in = j->in_size;
  s.next_out = j->out;
  s.avail_out = j->out_size;
  j->ret = lzma_code(&s, LZMA_FINISH);
  if (j->ret != LZMA_STREAM_END && s.avail_out == 0) {
    // The buffer is full but the end marker is not read yet: one byte more says whether anything follows.
    uint8_t spare;
    s.next_out = &spare;
    s.avail_out = 1;
    j->ret = lzma_code(&s, LZMA_FINISH);
    j->overflow = s.avail_out == 0;
  }
  j->consumed = (size_t) s.total_in;
  j->produced = (size_t) s.total_out - (size_t) j->overflow;
  lzma_end(&s);
  if (j->ret != LZMA_STREAM_END || j->overflow) return;
  if (j->check == CHECK_CRC64) {
    uint64_t c = lzma_crc64(j->out, j->produced, 0);
    for (int i = 0; i < 8; i++) j->sum[i] = (uint8_t) (c >> (8 * i));
  } else if (j->check == CHECK_CRC32) {
    uint32_t c = lzma_crc32(j->out, j->produced, 0);
    for (int i = 0; i < 4; i++) j->sum[i] = (uint8_t) (c >> (8 * i));
  }
}

static const char *describe(lzma_ret r) {
  switch (r) {
    case LZMA_DATA_ERROR: return "corrupt data";
    case LZMA_OK: // all input used, output room left, no end marker
    case LZMA_BUF_ERROR: return "truncated: the data ends before its end marker";
    case LZMA_MEM_ERROR: return "out of memory";
    case LZMA_OPTIONS_ERROR: return "unsupported options";
    default: return "liblzma error";
  }
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  napi_value cb, undefined, result;
  napi_get_reference_value(env, j->callback, &cb);
  napi_get_undefined(env, &undefined);
  napi_create_object(env, &result);
  napi_value v;
  const char *error = status != napi_ok             ? "the decode was cancelled"
                      : j->overflow                 ? "decodes to more bytes than the index says"
                      : j->ret != LZMA_STREAM_END   ? describe(j->ret)
                                                    : NULL;
  if (error != NULL) {
    napi_create_string_utf8(env, error, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, result, "error", v);
  }
  napi_create_double(env, (double) j->consumed, &v);
  napi_set_named_property(env, result, "consumed", v);
  napi_create_double(env, (double) j->produced, &v);
  napi_set_named_property(env, result, "produced", v);
  size_t sum_len = j->check == CHECK_CRC64 ? 8 : j->check == CHECK_CRC32 ? 4 : 0;
  void *copy;
  napi_create_buffer_copy(env, sum_len, j->sum, &copy, &v);
  napi_set_named_property(env, result, "check", v);
  napi_delete_reference(env, j->in_ref);
  napi_delete_reference(env, j->out_ref);
  napi_delete_reference(env, j->callback);
  napi_delete_async_work(env, j->work);
  free(j);
  napi_call_function(env, undefined, cb, 1, &result, NULL);
}

/**
 * decodeLzma2(data, dictSize, out, check, callback): decode the raw LZMA2 `data` into `out` (the
 * block's exact size) on the thread pool, then call back with {error?, consumed, produced, check}:
 * `check` is the CRC32 (check 1) or CRC64 (check 4) of the output as .xz stores it, else empty.
 */
static napi_value decode_lzma2(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5) {
    napi_throw_type_error(env, NULL, "decodeLzma2 needs 5 arguments");
    return NULL;
  }
  job_t *j = calloc(1, sizeof(*j));
  if (j == NULL) {
    napi_throw_error(env, "ENOMEM", "decodeLzma2: out of memory");
    return NULL;
  }
  void *in, *out;
  uint32_t dict, check;
  napi_valuetype cbtype;
  if (napi_get_buffer_info(env, argv[0], &in, &j->in_size) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &dict) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &out, &j->out_size) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &check) != napi_ok || napi_typeof(env, argv[4], &cbtype) != napi_ok ||
      cbtype != napi_function) {
    free(j);
    napi_throw_type_error(env, NULL, "decodeLzma2(data: Buffer, dictSize: number, out: Buffer, check, callback)");
    return NULL;
  }
  j->in = in;
  j->out = out;
  j->dict_size = dict < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN : dict;
  j->check = (int) check;
  // The references keep both buffers alive (and their memory in place) while a pool thread uses them.
  napi_value name;
  napi_create_reference(env, argv[0], 1, &j->in_ref);
  napi_create_reference(env, argv[2], 1, &j->out_ref);
  napi_create_reference(env, argv[4], 1, &j->callback);
  napi_create_string_utf8(env, "kheadersfs-xz-decode", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_reference(env, j->in_ref);
    napi_delete_reference(env, j->out_ref);
    napi_delete_reference(env, j->callback);
    free(j);
    napi_throw_error(env, NULL, "decodeLzma2: cannot queue the decode");
  }
  return NULL;
}

void xz_decode_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"decodeLzma2", NULL, decode_lzma2, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 1, props);
  napi_value v;
  napi_create_string_utf8(env, lzma_version_string(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, exports, "liblzmaVersion", v);
}
