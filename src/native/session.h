// What the binding's files share (docs/design.md, "The FUSE binding"): the session, its slots of
// requests in flight, the node table and the published blocks the reading thread answers from, and
// the helpers each file uses. kheadersfs_fuse.c: mounting, requests to JavaScript and its replies;
// answers.c: what the reading thread answers itself; channel.c: /dev/fuse, READDIRPLUS included.
#ifndef KHEADERSFS_SESSION_H
#define KHEADERSFS_SESSION_H
#define FUSE_USE_VERSION 26
#define NAPI_VERSION 8
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <node_api.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


/** Requests in flight at most (each ~300 bytes); more wait in the kernel. */
#define SLOTS 2048
#define NAME_MAX_BYTES 255
#define END_MARK ((void *) (intptr_t) -1)
#define TABLE_MARK ((void *) (intptr_t) -2)

enum { OP_LOOKUP = 1, OP_GETATTR = 2, OP_READLINK = 3, OP_READ = 4, OP_READDIR = 5, OP_STATFS = 6, OP_TABLE = 7 };

typedef struct {
  fuse_req_t req;
  uint32_t gen;
  int busy;
  int next; // free list
  int op;
  uint32_t uid;
  fuse_ino_t ino;
  uint64_t off;
  size_t size;
  uint32_t namelen;
  char name[NAME_MAX_BYTES + 1];
} slot_t;

/**
 * The packed node table (src/serve/table.ts), once it is whole: the typed arrays' memory, kept alive by
 * references the main thread holds. Lookups and getattr of directories and regular files are answered
 * from it on the reading thread, without a trip through JavaScript (a walk of the view makes one
 * lookup per file).
 */
typedef struct {
  uint32_t count;
  const uint32_t *mode;
  const double *size;
  const int32_t *parent;
  const uint32_t *name_start;
  const uint32_t *name_length;
  const uint8_t *names;
  size_t names_len;
  const int32_t *slots;
  uint32_t mask;
  const int32_t *first_child; // children as linked lists, in readdir order
  const int32_t *next_sibling;
} table_t;

#define TABLE_ARRAYS 9
/** The cookie after a directory's last entry (serve/dirents.ts). */
#define END_COOKIE 0xffffffffu
/** Largest readdir answer made here; the kernel asks for a page or a few. */
#define DIRBUF_BYTES (128 * 1024)

/**
 * The view's decoded blocks that JavaScript's block cache holds now (serve/block-cache.ts): a read of a
 * view file whose bytes are all in published blocks is answered here, straight from them. JavaScript
 * publishes a block when it caches it and retracts it before it lets it go; a reference keeps each
 * published Buffer alive meanwhile, and table_lock keeps it from being retracted during a reply.
 */
typedef struct {
  uint32_t count;
  const double *start;      // count + 1: each block's first byte in the uncompressed tar, then the end
  const double *offset;     // per node: where a view file's bytes start in the tar
  uint32_t first_view;      // nodes below are the root's own (flat files in JavaScript's memory)
  uint32_t *touched;        // per block: set at each read answered here; the cache clears it (its LRU)
  const uint8_t **data;     // per block: the published bytes, or NULL
  napi_ref *refs;
  napi_ref keep[3];         // offset, start and touched, alive as long as the session
} blocks_t;

/** Most blocks one read may span and still be answered here (reads are at most 128 KiB). */
#define READ_IOV 8

typedef struct {
  struct fuse_session *se;
  struct fuse_chan *ch;
  char *mountpoint;
  pthread_t thread;
  int thread_started;
  napi_threadsafe_function tsfn;
  napi_ref on_end;
  napi_ref name_buf; // the Buffer over `name` below, handed to every lookup
  char name[NAME_MAX_BYTES + 1];
  pthread_mutex_t lock;
  pthread_cond_t freed;
  int free_head;
  int in_use;
  int peak;
  int waited; // times the reading thread waited for a free slot
  int ended;  // main thread: the session is over, late replies are dropped
  int loop_result;
  time_t mtime;
  double attr_timeout;
  double entry_timeout;
  double negative_timeout;
  int no_open; // the kernel opens files and directories itself (see ll_init)
  uint64_t init_unique;   // the kernel's INIT request, whose reply the channel amends (chan_send)
  uint32_t kernel_flags;  // what the kernel offered in it
  int table_wanted;       // the reading thread asked JavaScript for the whole table
  pthread_cond_t table_ready;
  pthread_mutex_t table_lock; // the table is set once from the main thread, read on the reading thread
  int has_table;
  table_t table;
  napi_ref table_refs[TABLE_ARRAYS];
  blocks_t blocks;                // count 0 until serveBlocks
  _Alignas(8) char dirbuf[DIRBUF_BYTES]; // the reading thread's listings (answers.c)
  uint64_t c_lookups, c_getattrs, c_reads, c_readdirs; // answered here, under table_lock
  uint64_t opens; // OPEN and OPENDIR requests received (atomic: the reading thread counts, stats reads)
  slot_t slots[SLOTS];
} session_t;

// kheadersfs_fuse.c
#define CHECK(env, call)                                                                                   \
  do {                                                                                                     \
    if ((call) != napi_ok) {                                                                               \
      napi_throw_error(env, NULL, "kheadersfs_fuse: " #call " failed");                                    \
      return NULL;                                                                                         \
    }                                                                                                      \
  } while (0)
napi_value number(napi_env env, double v);
double arg_double(napi_env env, napi_value v);
/** Fetches the `n` arguments of a call to `what` into argv; 0 (a TypeError thrown) when there are fewer. */
int args_of(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what);
/** args_of, then the session its first argument is; NULL (a TypeError thrown) when either fails. */
session_t *session_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what);
void fill_attr(session_t *s, struct stat *st, fuse_ino_t ino, uint32_t mode, double size);

// answers.c: each returns 0 when JavaScript must answer instead.
int answer_lookup(session_t *s, fuse_req_t req, fuse_ino_t parent, const char *name);
int answer_getattr(session_t *s, fuse_req_t req, fuse_ino_t ino);
int answer_read(session_t *s, fuse_req_t req, fuse_ino_t ino, size_t size, uint64_t off);
void answer_readdirplus(session_t *s, struct fuse_chan *ch, const struct fuse_in_header *in, size_t len);
/** Adds serveTable, serveBlocks, publishBlock and retractBlock to exports. */
void answers_init(napi_env env, napi_value exports);

// channel.c
/** A channel of our own on `kernel`'s connection, which it replaces (destroyed); NULL on failure. */
struct fuse_chan *channel_open(session_t *s, struct fuse_chan *kernel);
void raw_reply(struct fuse_chan *ch, uint64_t unique, int error, const void *data, size_t len);

#endif
