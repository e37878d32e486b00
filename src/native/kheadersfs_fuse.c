// kheadersfs's FUSE binding: libfuse 2's low-level API under N-API (docs/design.md, "The FUSE binding").
//
// One thread reads requests from /dev/fuse and hands each to JavaScript through a thread-safe
// function; JavaScript answers whenever it is ready (a block decode may take milliseconds), from the
// main thread, with the reply functions below. So the daemon's threads are fixed (this one, Node's
// own), however many processes read at once, and no request waits on another. Requests in flight
// sit in a fixed table of slots: when it is full the thread stops reading and further requests wait
// in the kernel, so memory is bounded too. Nothing is kept per open file or directory: readdir is
// answered by offset from the JavaScript table, open and opendir keep no handle.
//
// What needs no decision is answered on the reading thread, without JavaScript: open/opendir (or
// ENOSYS, so the kernel stops asking), release, forget, EROFS for every operation that would change
// something, and, from the table and blocks JavaScript hands over, lookups, getattr, listings and
// reads of cached blocks (answers.c). /dev/fuse is read through a channel of our own (channel.c).
#include "session.h"
#include "xz_decode.h"

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

extern char **environ;

// ---- the reading thread -------------------------------------------------------------------------

static void enqueue(fuse_req_t req, int op, fuse_ino_t ino, uint64_t off, size_t size, const char *name) {
  session_t *s = fuse_req_userdata(req);
  size_t namelen = 0;
  if (name != NULL) {
    namelen = strlen(name);
    // The kernel passes names up to 1024 bytes; none of ours is longer than NAME_MAX.
    if (namelen > NAME_MAX_BYTES) {
      fuse_reply_err(req, ENAMETOOLONG);
      return;
    }
  }
  pthread_mutex_lock(&s->lock);
  if (s->free_head < 0) s->waited++;
  while (s->free_head < 0) pthread_cond_wait(&s->freed, &s->lock);
  int i = s->free_head;
  slot_t *sl = &s->slots[i];
  s->free_head = sl->next;
  sl->busy = 1;
  sl->gen++;
  if (++s->in_use > s->peak) s->peak = s->in_use;
  pthread_mutex_unlock(&s->lock);

  sl->req = req;
  sl->op = op;
  sl->ino = ino;
  sl->off = off;
  sl->size = size;
  sl->uid = fuse_req_ctx(req)->uid;
  sl->namelen = (uint32_t) namelen;
  if (namelen > 0) memcpy(sl->name, name, namelen);
  napi_call_threadsafe_function(s->tsfn, (void *) (intptr_t) i, napi_tsfn_blocking);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  if (answer_lookup(fuse_req_userdata(req), req, parent, name)) return;
  enqueue(req, OP_LOOKUP, parent, 0, 0, name);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void) fi;
  if (answer_getattr(fuse_req_userdata(req), req, ino)) return;
  enqueue(req, OP_GETATTR, ino, 0, 0, NULL);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) {
  enqueue(req, OP_READLINK, ino, 0, 0, NULL);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void) fi;
  if (off < 0) {
    fuse_reply_err(req, EINVAL);
    return;
  }
  if (answer_read(fuse_req_userdata(req), req, ino, size, (uint64_t) off)) return;
  enqueue(req, OP_READ, ino, (uint64_t) off, size, NULL);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void) fi;
  enqueue(req, OP_READDIR, ino, (uint64_t) off, size, NULL);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) {
  enqueue(req, OP_STATFS, ino, 0, 0, NULL);
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, unsigned long nlookup) {
  // Nodes never go away while mounted: nothing to count.
  (void) ino;
  (void) nlookup;
  fuse_reply_none(req);
}

// Kernels from 5.1 (FUSE protocol 7.29) take ENOSYS from open and opendir as "this filesystem keeps
// no handles": they stop sending OPEN, OPENDIR, RELEASE and RELEASEDIR for the rest of the mount and
// keep the page cache (FOPEN_KEEP_CACHE) and the readdir cache (FOPEN_CACHE_DIR) across opens. That
// halves the round trips of a walk (lookup, open, read, release per file). Older kernels would fail
// the open instead (4.19-5.0 take it for files only, without the kept cache): they get the replies
// below. The mount is read-only ("ro"), so the kernel refuses writable opens itself.
static void ll_init(void *userdata, struct fuse_conn_info *conn) {
  session_t *s = userdata;
  s->no_open = conn->proto_major > 7 || (conn->proto_major == 7 && conn->proto_minor >= 29);
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void) ino;
  session_t *s = fuse_req_userdata(req);
  __atomic_add_fetch(&s->opens, 1, __ATOMIC_RELAXED);
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
    fuse_reply_err(req, EROFS);
    return;
  }
  if (s->no_open) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  // The content never changes while mounted: the kernel may keep what it cached.
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void) ino;
  session_t *s = fuse_req_userdata(req);
  __atomic_add_fetch(&s->opens, 1, __ATOMIC_RELAXED);
  if (s->no_open) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  fi->fh = 0;
  fuse_reply_open(req, fi);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void) ino;
  (void) fi;
  fuse_reply_err(req, 0);
}

// Every operation that would change something: a read-only filesystem, even for root after a
// remount rw (the kernel only checks the mount flags).
static void erofs(fuse_req_t req) {
  fuse_reply_err(req, EROFS);
}
static void ll_setattr(fuse_req_t r, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *f) {
  (void) i, (void) a, (void) s, (void) f;
  erofs(r);
}
static void ll_mknod(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d) {
  (void) p, (void) n, (void) m, (void) d;
  erofs(r);
}
static void ll_mkdir(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m) {
  (void) p, (void) n, (void) m;
  erofs(r);
}
static void ll_unlink(fuse_req_t r, fuse_ino_t p, const char *n) {
  (void) p, (void) n;
  erofs(r);
}
static void ll_symlink(fuse_req_t r, const char *l, fuse_ino_t p, const char *n) {
  (void) l, (void) p, (void) n;
  erofs(r);
}
static void ll_rename(fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn) {
  (void) p, (void) n, (void) np, (void) nn;
  erofs(r);
}
static void ll_link(fuse_req_t r, fuse_ino_t i, fuse_ino_t np, const char *nn) {
  (void) i, (void) np, (void) nn;
  erofs(r);
}
static void ll_write(fuse_req_t r, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *f) {
  (void) i, (void) b, (void) s, (void) o, (void) f;
  erofs(r);
}
static void ll_create(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *f) {
  (void) p, (void) n, (void) m, (void) f;
  erofs(r);
}
static void ll_setxattr(fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t s, int f) {
  (void) i, (void) n, (void) v, (void) s, (void) f;
  erofs(r);
}
static void ll_removexattr(fuse_req_t r, fuse_ino_t i, const char *n) {
  (void) i, (void) n;
  erofs(r);
}
static void ll_fallocate(fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *f) {
  (void) i, (void) m, (void) o, (void) l, (void) f;
  erofs(r);
}

static const struct fuse_lowlevel_ops OPS = {
  .init = ll_init,
  .lookup = ll_lookup,
  .forget = ll_forget,
  .getattr = ll_getattr,
  .setattr = ll_setattr,
  .readlink = ll_readlink,
  .mknod = ll_mknod,
  .mkdir = ll_mkdir,
  .unlink = ll_unlink,
  .rmdir = ll_unlink,
  .symlink = ll_symlink,
  .rename = ll_rename,
  .link = ll_link,
  .open = ll_open,
  .read = ll_read,
  .write = ll_write,
  .release = ll_release,
  .opendir = ll_opendir,
  .readdir = ll_readdir,
  .releasedir = ll_release,
  .statfs = ll_statfs,
  .setxattr = ll_setxattr,
  .removexattr = ll_removexattr,
  .create = ll_create,
  .fallocate = ll_fallocate,
};

static void *loop(void *arg) {
  session_t *s = arg;
  s->loop_result = fuse_session_loop(s->se);
  // The kernel closed the connection (unmounted, and no file of it open any more): tell JavaScript.
  napi_call_threadsafe_function(s->tsfn, END_MARK, napi_tsfn_blocking);
  return NULL;
}

// ---- the main thread ----------------------------------------------------------------------------


napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

static void free_slot(session_t *s, slot_t *sl) {
  pthread_mutex_lock(&s->lock);
  int i = (int) (sl - s->slots);
  sl->busy = 0;
  sl->req = NULL;
  sl->next = s->free_head;
  s->free_head = i;
  s->in_use--;
  pthread_cond_signal(&s->freed);
  pthread_mutex_unlock(&s->lock);
}

/** Once the loop has returned: drop what is pending, close /dev/fuse, let JavaScript know. */
static void finish(napi_env env, session_t *s) {
  pthread_join(s->thread, NULL);
  s->ended = 1;
  for (int i = 0; i < SLOTS; i++) {
    slot_t *sl = &s->slots[i];
    if (!sl->busy) continue;
    fuse_reply_none(sl->req); // frees it; the connection is gone
    free_slot(s, sl);
  }
  fuse_session_destroy(s->se); // destroys the channel too: closes /dev/fuse
  s->se = NULL;
  s->ch = NULL;
  napi_value cb, undefined;
  napi_get_undefined(env, &undefined);
  if (napi_get_reference_value(env, s->on_end, &cb) == napi_ok && cb != NULL) {
    napi_value arg = number(env, s->loop_result);
    napi_call_function(env, undefined, cb, 1, &arg, NULL);
  }
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
}

static void call_js(napi_env env, napi_value dispatch, void *context, void *data) {
  session_t *s = context;
  if (env == NULL) return; // torn down
  if (data == END_MARK) {
    finish(env, s);
    return;
  }
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (data == TABLE_MARK) {
    // Not a request: the reading thread waits for the whole table (table_wait); serveTable answers.
    napi_value argv[7];
    argv[0] = number(env, OP_TABLE);
    for (int k = 1; k < 7; k++) argv[k] = number(env, 0);
    napi_call_function(env, undefined, dispatch, 7, argv, NULL);
    return;
  }
  int i = (int) (intptr_t) data;
  slot_t *sl = &s->slots[i];
  if (sl->namelen > 0) memcpy(s->name, sl->name, sl->namelen);
  napi_value argv[7];
  argv[0] = number(env, sl->op);
  argv[1] = number(env, (double) sl->gen * SLOTS + i);
  argv[2] = number(env, (double) sl->ino);
  argv[3] = number(env, (double) sl->off);
  argv[4] = number(env, (double) sl->size);
  argv[5] = number(env, sl->namelen);
  argv[6] = number(env, sl->uid);
  uint32_t gen = sl->gen;
  if (napi_call_function(env, undefined, dispatch, 7, argv, NULL) != napi_ok) {
    // JavaScript threw: its handlers answer their own errors, so this is a bug. Answer rather than
    // leave the reader hanging, then let the exception surface.
    if (sl->busy && sl->gen == gen) {
      fuse_reply_err(sl->req, EIO);
      free_slot(s, sl);
    }
  }
}

/** The slot a reply id names, or NULL (thrown) when it is not a request in flight. */
static slot_t *claim(napi_env env, session_t *s, napi_value idv, int *dropped) {
  double id;
  *dropped = 0;
  if (napi_get_value_double(env, idv, &id) != napi_ok || id < 0) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: bad request id");
    return NULL;
  }
  if (s->ended) {
    *dropped = 1; // the session is over: nobody waits for this answer
    return NULL;
  }
  uint64_t n = (uint64_t) id;
  int i = (int) (n % SLOTS);
  uint32_t gen = (uint32_t) (n / SLOTS);
  slot_t *sl = &s->slots[i];
  if (!sl->busy || sl->gen != gen) {
    napi_throw_error(env, NULL, "kheadersfs_fuse: request already answered");
    return NULL;
  }
  return sl;
}

int args_of(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= n) return 1;
  char message[96];
  snprintf(message, sizeof(message), "kheadersfs_fuse: %s needs %zu argument%s", what, n, n == 1 ? "" : "s");
  napi_throw_type_error(env, NULL, message);
  return 0;
}

session_t *session_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *what) {
  session_t *s = NULL;
  if (!args_of(env, info, n, argv, what)) return NULL;
  if (napi_get_value_external(env, argv[0], (void **) &s) != napi_ok || s == NULL)
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: not a session");
  return s;
}

void fill_attr(session_t *s, struct stat *st, fuse_ino_t ino, uint32_t mode, double size) {
  memset(st, 0, sizeof(*st));
  st->st_ino = ino;
  st->st_mode = mode;
  st->st_nlink = S_ISDIR(mode) ? 2 : 1;
  st->st_uid = 0; // root's: BCC refuses kernel trees that are not (CVE-2024-2314)
  st->st_gid = 0;
  st->st_size = (off_t) size;
  st->st_blksize = 4096;
  st->st_blocks = (blkcnt_t) ((size + 511) / 512);
  st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = s->mtime;
}

#define ARGS(n)                                                                                            \
  napi_value argv[n];                                                                                      \
  session_t *s = session_args(env, info, n, argv, "a reply");                                              \
  if (s == NULL) return NULL;                                                                              \
  int dropped;                                                                                             \
  slot_t *sl = claim(env, s, argv[1], &dropped);                                                           \
  if (sl == NULL) return NULL;

double arg_double(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

/** replyErr(session, id, errno) */
static napi_value reply_err(napi_env env, napi_callback_info info) {
  ARGS(3)
  fuse_reply_err(sl->req, (int) arg_double(env, argv[2]));
  free_slot(s, sl);
  return NULL;
}

/** replyEntry(session, id, ino, mode, size): ino 0 answers "no such name", remembered by the kernel. */
static napi_value reply_entry(napi_env env, napi_callback_info info) {
  ARGS(5)
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  e.ino = (fuse_ino_t) arg_double(env, argv[2]);
  if (e.ino == 0) {
    e.entry_timeout = s->negative_timeout;
  } else {
    e.generation = 1;
    e.attr_timeout = s->attr_timeout;
    e.entry_timeout = s->entry_timeout;
    fill_attr(s, &e.attr, e.ino, (uint32_t) arg_double(env, argv[3]), arg_double(env, argv[4]));
  }
  fuse_reply_entry(sl->req, &e);
  free_slot(s, sl);
  return NULL;
}

/** replyAttr(session, id, ino, mode, size) */
static napi_value reply_attr(napi_env env, napi_callback_info info) {
  ARGS(5)
  struct stat st;
  fill_attr(s, &st, (fuse_ino_t) arg_double(env, argv[2]), (uint32_t) arg_double(env, argv[3]),
            arg_double(env, argv[4]));
  fuse_reply_attr(sl->req, &st, s->attr_timeout);
  free_slot(s, sl);
  return NULL;
}

/** replyBuf(session, id, buffer): the bytes of `buffer` (a Buffer or a view of one) as they are now. */
static napi_value reply_buf(napi_env env, napi_callback_info info) {
  ARGS(3)
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: replyBuf needs a Buffer");
    return NULL;
  }
  if (len > sl->size && sl->op == OP_READ) len = sl->size;
  fuse_reply_buf(sl->req, data, len);
  free_slot(s, sl);
  return NULL;
}

/** replyReadlink(session, id, buffer): the target's bytes (no NUL). */
static napi_value reply_readlink(napi_env env, napi_callback_info info) {
  ARGS(3)
  char *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, argv[2], (void **) &data, &len) != napi_ok || len >= 4096) {
    fuse_reply_err(sl->req, EIO);
    free_slot(s, sl);
    return NULL;
  }
  char target[4096];
  memcpy(target, data, len);
  target[len] = 0;
  fuse_reply_readlink(sl->req, target);
  free_slot(s, sl);
  return NULL;
}

/** replyStatfs(session, id, blocks, files, namemax) */
static napi_value reply_statfs(napi_env env, napi_callback_info info) {
  ARGS(5)
  struct statvfs st;
  memset(&st, 0, sizeof(st));
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_blocks = (fsblkcnt_t) arg_double(env, argv[2]);
  st.f_files = (fsfilcnt_t) arg_double(env, argv[3]);
  st.f_namemax = (unsigned long) arg_double(env, argv[4]);
  st.f_flag = ST_RDONLY;
  fuse_reply_statfs(sl->req, &st);
  free_slot(s, sl);
  return NULL;
}

/** Buffer argument → NUL-terminated copy (malloc'd); NULL when it holds a NUL byte or is empty. */
static char *path_arg(napi_env env, napi_value v) {
  char *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, v, (void **) &data, &len) != napi_ok || len == 0 || memchr(data, 0, len)) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: a path must be a non-empty Buffer without NUL bytes");
    return NULL;
  }
  char *out = malloc(len + 1);
  memcpy(out, data, len);
  out[len] = 0;
  return out;
}

/** Descriptors open now (up to 1024), to mark the ones mounting adds close-on-exec. */
static void open_fds(unsigned char *set, size_t n) {
  memset(set, 0, n);
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (fd > 2 && (size_t) fd < n) set[fd] = 1;
  }
  closedir(d);
}

static void finalize_session(napi_env env, void *data, void *hint) {
  (void) env;
  (void) hint;
  session_t *s = data;
  // A session that never ended lives as long as the process: its thread still uses it.
  if (s->ended || !s->thread_started) {
    free(s->mountpoint);
    free(s);
  }
}

/**
 * mount(mountpoint: Buffer, options: string, mtime: number, timeout: number,
 *       dispatch(op, id, ino, off, size, nameLength, uid), onEnd(result), name: Buffer out) → session
 * Mounts with libfuse's fuse_mount (fusermount with auto_unmount: no shell) and starts the reading
 * thread. Throws when libfuse refuses (its reason is on stderr, the daemon's log).
 */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!args_of(env, info, 6, argv, "mount")) return NULL;
  char *mp = path_arg(env, argv[0]);
  if (mp == NULL) return NULL;
  char opts[1024];
  size_t optslen = 0;
  if (napi_get_value_string_utf8(env, argv[1], opts, sizeof(opts), &optslen) != napi_ok) {
    free(mp);
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: options must be a string");
    return NULL;
  }
  session_t *s = calloc(1, sizeof(session_t));
  s->mountpoint = mp;
  s->mtime = (time_t) arg_double(env, argv[2]);
  s->attr_timeout = s->entry_timeout = s->negative_timeout = arg_double(env, argv[3]);
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_init(&s->table_lock, NULL);
  pthread_cond_init(&s->table_ready, NULL);
  pthread_cond_init(&s->freed, NULL);
  for (int i = 0; i < SLOTS; i++) s->slots[i].next = i + 1 < SLOTS ? i + 1 : -1;
  s->free_head = 0;

  unsigned char before[1024], after[1024];
  open_fds(before, sizeof(before));
  char *margv[] = {"kheadersfs", "-o", opts, NULL};
  struct fuse_args margs = FUSE_ARGS_INIT(3, margv);
  s->ch = fuse_mount(mp, &margs);
  if (s->ch == NULL) {
    free(mp);
    free(s);
    napi_throw_error(env, "EMOUNT", "libfuse could not mount");
    return NULL;
  }
  // libfuse opens /dev/fuse (and keeps fusermount's auto_unmount socket) without close-on-exec: a
  // child started later would hold the session open.
  open_fds(after, sizeof(after));
  for (size_t fd = 3; fd < sizeof(after); fd++)
    if (after[fd] && !before[fd]) fcntl((int) fd, F_SETFD, fcntl((int) fd, F_GETFD) | FD_CLOEXEC);

  // Our own channel on the same connection (READDIRPLUS: channel.c).
  struct fuse_chan *own = channel_open(s, s->ch);
  if (own == NULL) {
    fuse_unmount(mp, s->ch);
    free(mp);
    free(s);
    napi_throw_error(env, "EMOUNT", "cannot open the FUSE channel");
    return NULL;
  }
  s->ch = own;

  char *largv[] = {"kheadersfs", NULL};
  struct fuse_args largs = FUSE_ARGS_INIT(1, largv);
  s->se = fuse_lowlevel_new(&largs, &OPS, sizeof(OPS), s);
  if (s->se == NULL) {
    fuse_unmount(mp, s->ch);
    free(mp);
    free(s);
    napi_throw_error(env, "EMOUNT", "libfuse could not start a session");
    return NULL;
  }
  fuse_session_add_chan(s->se, s->ch);

  napi_value name_buf, resource_name;
  CHECK(env, napi_create_external_buffer(env, sizeof(s->name), s->name, NULL, NULL, &name_buf));
  CHECK(env, napi_create_reference(env, name_buf, 1, &s->name_buf));
  CHECK(env, napi_create_reference(env, argv[5], 1, &s->on_end));
  CHECK(env, napi_create_string_utf8(env, "kheadersfs-fuse", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(env, napi_create_threadsafe_function(env, argv[4], NULL, resource_name, 0, 1, NULL, NULL, s, call_js,
                                             &s->tsfn));

  // The reading thread takes no signals: SIGTERM and friends are the main thread's (JavaScript's).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int err = pthread_create(&s->thread, NULL, loop, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    fuse_session_destroy(s->se);
    fuse_unmount(mp, NULL);
    napi_throw_error(env, "EMOUNT", "cannot start the FUSE thread");
    return NULL;
  }
  s->thread_started = 1;

  napi_value out, result;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_external(env, s, finalize_session, NULL, &result));
  CHECK(env, napi_set_named_property(env, out, "session", result));
  CHECK(env, napi_set_named_property(env, out, "name", name_buf));
  return out;
}

/**
 * stats(session) → { inFlight, peak, waited, slots, answered: { lookup, getattr, read, readdir }, opens }:
 * requests in flight now and at most, waits for a slot, the requests answered without JavaScript, and
 * the OPEN and OPENDIR requests the kernel sent.
 */
static napi_value stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  session_t *s = session_args(env, info, 1, argv, "stats");
  if (s == NULL) return NULL;
  pthread_mutex_lock(&s->lock);
  int in_use = s->in_use, peak = s->peak, waited = s->waited;
  pthread_mutex_unlock(&s->lock);
  napi_value out;
  CHECK(env, napi_create_object(env, &out));
  napi_set_named_property(env, out, "inFlight", number(env, in_use));
  napi_set_named_property(env, out, "peak", number(env, peak));
  napi_set_named_property(env, out, "waited", number(env, waited));
  napi_set_named_property(env, out, "slots", number(env, SLOTS));
  pthread_mutex_lock(&s->table_lock);
  double lookups = (double) s->c_lookups, getattrs = (double) s->c_getattrs, reads = (double) s->c_reads;
  double readdirs = (double) s->c_readdirs;
  pthread_mutex_unlock(&s->table_lock);
  napi_value answered;
  CHECK(env, napi_create_object(env, &answered));
  napi_set_named_property(env, answered, "lookup", number(env, lookups));
  napi_set_named_property(env, answered, "getattr", number(env, getattrs));
  napi_set_named_property(env, answered, "read", number(env, reads));
  napi_set_named_property(env, answered, "readdir", number(env, readdirs));
  napi_set_named_property(env, out, "answered", answered);
  napi_set_named_property(env, out, "opens", number(env, (double) __atomic_load_n(&s->opens, __ATOMIC_RELAXED)));
  return out;
}

/**
 * unmount(path: Buffer, lazy: boolean) → { errno, message }: umount2 for root (UMOUNT_NOFOLLOW,
 * MNT_DETACH when lazy), else `fusermount -u[z] -- PATH` with the path's bytes as they are, in the C
 * locale. errno 0 is success; EBUSY means files are open.
 */
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!args_of(env, info, 2, argv, "unmount")) return NULL;
  char *mp = path_arg(env, argv[0]);
  if (mp == NULL) return NULL;
  bool lazy = false;
  napi_get_value_bool(env, argv[1], &lazy);
  int result = 0;
  char message[512] = "";
  if (geteuid() == 0) {
    if (umount2(mp, UMOUNT_NOFOLLOW | (lazy ? MNT_DETACH : 0)) != 0) {
      result = errno;
      snprintf(message, sizeof(message), "%s", strerror(errno));
    }
  } else {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
      result = errno;
      snprintf(message, sizeof(message), "pipe: %s", strerror(errno));
    } else {
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
      posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
      char *args[] = {"fusermount", lazy ? "-uz" : "-u", "--", mp, NULL};
      // The C locale, so that "busy" reads the same everywhere; the rest of the environment as is.
      size_t n = 0;
      while (environ[n] != NULL) n++;
      char **env2 = calloc(n + 2, sizeof(char *));
      size_t k = 0;
      for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LC_ALL=", 7) != 0 && strncmp(environ[i], "LANGUAGE=", 9) != 0) env2[k++] = environ[i];
      env2[k++] = "LC_ALL=C";
      env2[k] = NULL;
      pid_t pid;
      int err = posix_spawnp(&pid, "fusermount", &fa, NULL, args, env2);
      posix_spawn_file_actions_destroy(&fa);
      free(env2);
      close(pipefd[1]);
      if (err != 0) {
        result = err;
        snprintf(message, sizeof(message), "cannot run fusermount: %s", strerror(err));
      } else {
        size_t got = 0;
        ssize_t r;
        while ((r = read(pipefd[0], message + got, sizeof(message) - 1 - got)) > 0) got += (size_t) r;
        message[got] = 0;
        char drain[256];
        while (read(pipefd[0], drain, sizeof(drain)) > 0) {
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) result = strstr(message, "busy") ? EBUSY : EPERM;
      }
      close(pipefd[0]);
    }
  }
  free(mp);
  napi_value out;
  CHECK(env, napi_create_object(env, &out));
  napi_set_named_property(env, out, "errno", number(env, result));
  napi_value msg;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_set_named_property(env, out, "message", msg);
  return out;
}

/** threads() → the number of threads of this process (for the daemon's stats). */
static napi_value threads(napi_env env, napi_callback_info info) {
  (void) info;
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.') n++;
    closedir(d);
  }
  return number(env, n);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
    {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
    {"replyErr", NULL, reply_err, NULL, NULL, NULL, napi_default, NULL},
    {"replyEntry", NULL, reply_entry, NULL, NULL, NULL, napi_default, NULL},
    {"replyAttr", NULL, reply_attr, NULL, NULL, NULL, napi_default, NULL},
    {"replyBuf", NULL, reply_buf, NULL, NULL, NULL, napi_default, NULL},
    {"replyReadlink", NULL, reply_readlink, NULL, NULL, NULL, napi_default, NULL},
    {"replyStatfs", NULL, reply_statfs, NULL, NULL, NULL, napi_default, NULL},
    {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
    {"threads", NULL, threads, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  napi_value v;
  napi_create_uint32(env, SLOTS, &v);
  napi_set_named_property(env, exports, "SLOTS", v);
  answers_init(env, exports);
  xz_decode_init(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
