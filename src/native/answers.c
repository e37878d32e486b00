// What the reading thread answers itself, without a trip through JavaScript (docs/design.md, "Two
// requests per file"): once JavaScript has handed over the whole node table (serveTable), lookups,
// getattr and listings (READDIRPLUS, read by channel.c) of directories and files; once the block cache
// shares its blocks (serveBlocks, publishBlock, retractBlock), reads of view files whose bytes are all
// in them. The answers are the JavaScript dispatcher's (serve/ops.ts, table.ts, dirents.ts), bit for bit.
#include "session.h"

/** FNV-1a of the name's bytes, seeded with the parent: table.ts's hash, bit for bit. */
static uint32_t name_hash(int32_t parent, const uint8_t *bytes, size_t n) {
  uint32_t h = 0x811c9dc5u ^ ((uint32_t) (parent + 1) * 0x9e3779b1u);
  for (size_t i = 0; i < n; i++) h = (h ^ bytes[i]) * 0x01000193u;
  return h;
}

/**
 * A node whose attributes the table holds whole: a directory or a regular file (a link's size is its
 * target's length, which JavaScript keeps).
 */
static int plain(const table_t *t, int32_t id) {
  uint32_t type = t->mode[id] & S_IFMT;
  return type == S_IFDIR || type == S_IFREG;
}

/** The directory node of inode `ino`, or -1 when it is not a directory of the table. */
static int32_t directory(const table_t *t, fuse_ino_t ino) {
  return ino == 0 || ino > t->count || (t->mode[ino - 1] & S_IFMT) != S_IFDIR ? -1 : (int32_t) (ino - 1);
}

/**
 * Answer a lookup from the table; 0 when JavaScript must (no table yet, a parent that is not a known
 * directory, a link found): it answers those, and its errors, as before.
 */
int answer_lookup(session_t *s, fuse_req_t req, fuse_ino_t parent, const char *name) {
  struct fuse_entry_param e;
  memset(&e, 0, sizeof(e));
  size_t n = strlen(name);
  pthread_mutex_lock(&s->table_lock);
  const table_t *t = &s->table;
  if (!s->has_table || n > NAME_MAX_BYTES) goto js;
  int32_t dir = directory(t, parent);
  if (dir < 0) goto js;
  int32_t found = -1;
  for (uint32_t i = name_hash(dir, (const uint8_t *) name, n) & t->mask;; i = (i + 1) & t->mask) {
    int32_t id = t->slots[i] - 1;
    if (id < 0) break;
    if (t->parent[id] != dir || t->name_length[id] != n) continue;
    if (t->name_start[id] + n <= t->names_len && memcmp(t->names + t->name_start[id], name, n) == 0) {
      found = id;
      break;
    }
  }
  if (found >= 0 && !plain(t, found)) goto js;
  if (found < 0) {
    e.entry_timeout = s->negative_timeout; // "no such name", remembered by the kernel
  } else {
    uint32_t mode = t->mode[found];
    e.ino = (fuse_ino_t) found + 1;
    e.generation = 1;
    e.attr_timeout = s->attr_timeout;
    e.entry_timeout = s->entry_timeout;
    fill_attr(s, &e.attr, e.ino, mode, S_ISDIR(mode) ? 0 : t->size[found]);
  }
  s->c_lookups++;
  pthread_mutex_unlock(&s->table_lock);
  fuse_reply_entry(req, &e);
  return 1;
js:
  pthread_mutex_unlock(&s->table_lock);
  return 0;
}

/** Answer a getattr from the table; 0 when JavaScript must. */
int answer_getattr(session_t *s, fuse_req_t req, fuse_ino_t ino) {
  struct stat st;
  pthread_mutex_lock(&s->table_lock);
  const table_t *t = &s->table;
  if (!s->has_table || ino == 0 || ino > t->count || !plain(t, (int32_t) (ino - 1))) {
    pthread_mutex_unlock(&s->table_lock);
    return 0;
  }
  uint32_t mode = t->mode[ino - 1];
  fill_attr(s, &st, ino, mode, S_ISDIR(mode) ? 0 : t->size[ino - 1]);
  s->c_getattrs++;
  pthread_mutex_unlock(&s->table_lock);
  fuse_reply_attr(req, &st, s->attr_timeout);
  return 1;
}

/**
 * Answer a read of a view file whose bytes are all in published blocks; 0 when JavaScript must (a flat
 * file, a block to decode, anything but a regular file of the view).
 */
int answer_read(session_t *s, fuse_req_t req, fuse_ino_t ino, size_t size, uint64_t off) {
  pthread_mutex_lock(&s->table_lock);
  const table_t *t = &s->table;
  const blocks_t *b = &s->blocks;
  if (!s->has_table || b->count == 0 || ino <= b->first_view || ino > t->count) goto js;
  uint32_t id = (uint32_t) (ino - 1);
  if ((t->mode[id] & S_IFMT) != S_IFREG) goto js;
  double file_size = t->size[id];
  if ((double) off >= file_size || size == 0) {
    s->c_reads++;
    fuse_reply_buf(req, NULL, 0); // past the end: 0 bytes, never an error (as kernel/kheaders.c)
    pthread_mutex_unlock(&s->table_lock);
    return 1;
  }
  double pos = b->offset[id] + (double) off;
  if (!(pos >= b->start[0])) goto js;
  double end = pos + ((double) size < file_size - (double) off ? (double) size : file_size - (double) off);
  if (end > b->start[b->count]) goto js;
  // The block holding `pos`: the last whose start is at or before it.
  uint32_t lo = 0, hi = b->count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (b->start[mid] <= pos) lo = mid;
    else hi = mid;
  }
  struct iovec iov[READ_IOV];
  int n = 0;
  for (uint32_t k = lo; pos < end; k++) {
    if (k >= b->count || n == READ_IOV || b->data[k] == NULL) goto js;
    double stop = end < b->start[k + 1] ? end : b->start[k + 1];
    iov[n].iov_base = (void *) (b->data[k] + (size_t) (pos - b->start[k]));
    iov[n].iov_len = (size_t) (stop - pos);
    n++;
    pos = stop;
  }
  for (int i = 0; i < n; i++) {
    uint32_t k = lo + (uint32_t) i;
    __atomic_store_n(&b->touched[k], 1, __ATOMIC_RELAXED);
  }
  s->c_reads++;
  // Under the lock: the blocks cannot be retracted (and let go) while the kernel copies them.
  fuse_reply_iov(req, iov, n);
  pthread_mutex_unlock(&s->table_lock);
  return 1;
js:
  pthread_mutex_unlock(&s->table_lock);
  return 0;
}

/**
 * One READDIRPLUS entry at `buf`: what a LOOKUP of it would answer, then the struct fuse_dirent that
 * serve/dirents.ts encodes for READDIR. Its size, or 0 when it does not fit in `room`.
 */
static size_t put_direntplus(session_t *s, const table_t *t, char *buf, size_t room, int32_t c, uint64_t next) {
  uint32_t n = t->name_length[c];
  size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + n);
  if (size > room) return 0;
  memset(buf, 0, size);
  struct fuse_direntplus *d = (struct fuse_direntplus *) buf;
  uint32_t mode = t->mode[c];
  // A link's size is its target's length, which JavaScript keeps: nodeid 0 leaves it to a LOOKUP.
  if (plain(t, c)) {
    struct fuse_entry_out *e = &d->entry_out;
    struct stat st;
    fill_attr(s, &st, (fuse_ino_t) c + 1, mode, S_ISDIR(mode) ? 0 : t->size[c]);
    e->nodeid = (uint64_t) c + 1;
    e->generation = 1;
    e->entry_valid = e->attr_valid = (uint64_t) s->entry_timeout;
    e->attr.ino = (uint64_t) c + 1;
    e->attr.size = (uint64_t) st.st_size;
    e->attr.blocks = (uint64_t) st.st_blocks;
    e->attr.atime = e->attr.mtime = e->attr.ctime = (uint64_t) s->mtime;
    e->attr.mode = st.st_mode;
    e->attr.nlink = (uint32_t) st.st_nlink;
    e->attr.blksize = (uint32_t) st.st_blksize;
  }
  d->dirent.ino = (uint64_t) c + 1;
  d->dirent.off = next;
  d->dirent.namelen = n;
  d->dirent.type = (mode & S_IFMT) >> 12;
  memcpy(d->dirent.name, t->names + t->name_start[c], n);
  return size;
}

/**
 * With table_lock held: the READDIRPLUS entries of directory `dir` from `cookie` on (0: the first;
 * each entry carries the next one's node as its cookie, END_COOKIE after the last, as serve/dirents.ts
 * does) written into s->dirbuf, as many as fit in `size` bytes. Returns the bytes written.
 */
static size_t list(session_t *s, const table_t *t, int32_t dir, uint64_t cookie, size_t size) {
  int32_t c = -1;
  if (cookie == 0) c = t->first_child[dir];
  else if (cookie < t->count && t->parent[cookie] == dir) c = (int32_t) cookie;
  if (size > DIRBUF_BYTES) size = DIRBUF_BYTES;
  size_t p = 0;
  // At most count entries: a table is never cyclic, and this stays so even if one were.
  for (uint32_t seen = 0; c >= 0 && (uint32_t) c < t->count && seen < t->count; seen++) {
    if (t->name_length[c] > NAME_MAX_BYTES || t->name_start[c] + t->name_length[c] > t->names_len) break;
    int32_t next = t->next_sibling[c];
    size_t used = put_direntplus(s, t, s->dirbuf + p, size - p, c, next < 0 ? END_COOKIE : (uint64_t) next);
    if (used == 0) break;
    p += used;
    c = next;
  }
  s->c_readdirs++;
  return p;
}

/**
 * With table_lock held: 1 once the whole table is here. A listing before the view's table is built
 * (it is built after ready, off the path to it) asks JavaScript to build it now and waits for it.
 */
static int table_wait(session_t *s) {
  if (s->has_table) return 1;
  if (!s->table_wanted) {
    s->table_wanted = 1;
    napi_call_threadsafe_function(s->tsfn, TABLE_MARK, napi_tsfn_nonblocking);
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 30;
  while (!s->has_table)
    if (pthread_cond_timedwait(&s->table_ready, &s->table_lock, &until) == ETIMEDOUT) break;
  return s->has_table;
}

/**
 * A READDIRPLUS request (`len` bytes at `in`), answered from the table. Once the kernel lists with
 * READDIRPLUS it sends no READDIR; without it (kernels before 3.9) JavaScript answers READDIR.
 */
void answer_readdirplus(session_t *s, struct fuse_chan *ch, const struct fuse_in_header *in, size_t len) {
  if (len < sizeof(*in) + sizeof(struct fuse_read_in)) return raw_reply(ch, in->unique, EIO, NULL, 0);
  const struct fuse_read_in *arg = (const struct fuse_read_in *) (in + 1);
  pthread_mutex_lock(&s->table_lock);
  if (!table_wait(s)) {
    pthread_mutex_unlock(&s->table_lock);
    return raw_reply(ch, in->unique, EIO, NULL, 0);
  }
  int32_t dir = directory(&s->table, in->nodeid);
  if (dir < 0) {
    pthread_mutex_unlock(&s->table_lock);
    return raw_reply(ch, in->unique, ENOTDIR, NULL, 0);
  }
  size_t p = list(s, &s->table, dir, arg->offset, arg->size);
  pthread_mutex_unlock(&s->table_lock);
  raw_reply(ch, in->unique, 0, s->dirbuf, p);
}

/** The data of typed array `v`, which must be of `type` and hold `want` elements (0: any number). */
static const void *array_of(napi_env env, napi_value v, napi_typedarray_type type, size_t want, size_t *length) {
  napi_typedarray_type got;
  size_t n = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, v, &got, &n, &data, NULL, NULL) != napi_ok || got != type ||
      (want > 0 && n != want)) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: serveTable: an array of the wrong type or length");
    return NULL;
  }
  *length = n;
  return data;
}

/**
 * serveTable(session, mode: Uint32Array, size: Float64Array, parent: Int32Array, nameStart: Uint32Array,
 *            nameLength: Uint32Array, names: Uint8Array, slots: Int32Array, firstChild: Int32Array,
 *            nextSibling: Int32Array): from now on lookups, getattr and readdir are answered from these
 * (a whole table, never changed again) on the reading thread. Once per session.
 */
static napi_value serve_table(napi_env env, napi_callback_info info) {
  napi_value argv[1 + TABLE_ARRAYS];
  session_t *s = session_args(env, info, 1 + TABLE_ARRAYS, argv, "serveTable");
  if (s == NULL) return NULL;
  table_t t;
  size_t count = 0, n = 0, slots = 0;
  if ((t.mode = array_of(env, argv[1], napi_uint32_array, 0, &count)) == NULL) return NULL;
  if ((t.size = array_of(env, argv[2], napi_float64_array, count, &n)) == NULL) return NULL;
  if ((t.parent = array_of(env, argv[3], napi_int32_array, count, &n)) == NULL) return NULL;
  if ((t.name_start = array_of(env, argv[4], napi_uint32_array, count, &n)) == NULL) return NULL;
  if ((t.name_length = array_of(env, argv[5], napi_uint32_array, count, &n)) == NULL) return NULL;
  if ((t.names = array_of(env, argv[6], napi_uint8_array, 0, &t.names_len)) == NULL) return NULL;
  if ((t.slots = array_of(env, argv[7], napi_int32_array, 0, &slots)) == NULL) return NULL;
  if ((t.first_child = array_of(env, argv[8], napi_int32_array, count, &n)) == NULL) return NULL;
  if ((t.next_sibling = array_of(env, argv[9], napi_int32_array, count, &n)) == NULL) return NULL;
  if (slots == 0 || (slots & (slots - 1)) != 0 || slots < count) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: serveTable: slots must be a power of two above the count");
    return NULL;
  }
  t.count = (uint32_t) count;
  t.mask = (uint32_t) slots - 1;
  napi_ref refs[TABLE_ARRAYS];
  for (int i = 0; i < TABLE_ARRAYS; i++) CHECK(env, napi_create_reference(env, argv[1 + i], 1, &refs[i]));
  pthread_mutex_lock(&s->table_lock);
  int had = s->has_table;
  if (!had) {
    memcpy(s->table_refs, refs, sizeof(refs));
    s->table = t;
    s->has_table = 1;
    pthread_cond_broadcast(&s->table_ready); // a listing may be waiting for it (table_wait)
  }
  pthread_mutex_unlock(&s->table_lock);
  if (had) {
    for (int i = 0; i < TABLE_ARRAYS; i++) napi_delete_reference(env, refs[i]);
    napi_throw_error(env, NULL, "kheadersfs_fuse: serveTable: the session has its table already");
  }
  return NULL;
}

/**
 * serveBlocks(session, offset: Float64Array, firstView: number, start: Float64Array, touched: Uint32Array):
 * from now on reads of view files (nodes from firstView on, `offset` per node of the table) whose bytes
 * are in published blocks are answered on the reading thread. `start` holds each block's first byte in
 * the uncompressed tar and then its end; `touched` (one per block) is set at each such read.
 */
static napi_value serve_blocks(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  session_t *s = session_args(env, info, 5, argv, "serveBlocks");
  if (s == NULL) return NULL;
  pthread_mutex_lock(&s->table_lock);
  int ready = s->has_table && s->blocks.count == 0;
  uint32_t nodes = s->table.count;
  pthread_mutex_unlock(&s->table_lock);
  if (!ready) {
    napi_throw_error(env, NULL, "kheadersfs_fuse: serveBlocks: needs a table, and only once");
    return NULL;
  }
  blocks_t b;
  size_t n = 0, count = 0;
  if ((b.offset = array_of(env, argv[1], napi_float64_array, nodes, &n)) == NULL) return NULL;
  b.first_view = (uint32_t) arg_double(env, argv[2]);
  if ((b.start = array_of(env, argv[3], napi_float64_array, 0, &count)) == NULL) return NULL;
  if (count < 2) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: serveBlocks: no blocks");
    return NULL;
  }
  b.count = (uint32_t) count - 1;
  if ((b.touched = (uint32_t *) array_of(env, argv[4], napi_uint32_array, b.count, &n)) == NULL) return NULL;
  for (uint32_t k = 0; k < b.count; k++)
    if (!(b.start[k] < b.start[k + 1])) {
      napi_throw_type_error(env, NULL, "kheadersfs_fuse: serveBlocks: block starts must increase");
      return NULL;
    }
  b.data = calloc(b.count, sizeof(*b.data));
  b.refs = calloc(b.count, sizeof(*b.refs));
  CHECK(env, napi_create_reference(env, argv[1], 1, &b.keep[0]));
  CHECK(env, napi_create_reference(env, argv[3], 1, &b.keep[1]));
  CHECK(env, napi_create_reference(env, argv[4], 1, &b.keep[2]));
  pthread_mutex_lock(&s->table_lock);
  s->blocks = b;
  pthread_mutex_unlock(&s->table_lock);
  return NULL;
}

/** The block number argument, or -1 (a TypeError thrown) when it is not one of the session's. */
static int64_t block_arg(napi_env env, session_t *s, napi_value v) {
  double k = arg_double(env, v);
  if (!(k >= 0 && k < s->blocks.count) || k != (double) (uint32_t) k) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: no such block");
    return -1;
  }
  return (int64_t) k;
}

/** publishBlock(session, block, data: Buffer): reads may be answered from `data` until it is retracted. */
static napi_value publish_block(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  session_t *s = session_args(env, info, 3, argv, "publishBlock");
  if (s == NULL) return NULL;
  int64_t k = block_arg(env, s, argv[1]);
  if (k < 0) return NULL;
  void *data = NULL;
  size_t length = 0;
  if (napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok ||
      (double) length != s->blocks.start[k + 1] - s->blocks.start[k]) {
    napi_throw_type_error(env, NULL, "kheadersfs_fuse: publishBlock: not the block's bytes");
    return NULL;
  }
  napi_ref ref;
  CHECK(env, napi_create_reference(env, argv[2], 1, &ref));
  pthread_mutex_lock(&s->table_lock);
  napi_ref old = s->blocks.refs[k];
  s->blocks.refs[k] = ref;
  s->blocks.data[k] = data;
  pthread_mutex_unlock(&s->table_lock);
  if (old != NULL) napi_delete_reference(env, old);
  return NULL;
}

/** retractBlock(session, block): no read is answered from the block's bytes any more. */
static napi_value retract_block(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  session_t *s = session_args(env, info, 2, argv, "retractBlock");
  if (s == NULL) return NULL;
  int64_t k = block_arg(env, s, argv[1]);
  if (k < 0) return NULL;
  pthread_mutex_lock(&s->table_lock); // waits for a reply being written from the block
  napi_ref old = s->blocks.refs[k];
  s->blocks.refs[k] = NULL;
  s->blocks.data[k] = NULL;
  pthread_mutex_unlock(&s->table_lock);
  if (old != NULL) napi_delete_reference(env, old);
  return NULL;
}

void answers_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"serveTable", NULL, serve_table, NULL, NULL, NULL, napi_default, NULL},
    {"serveBlocks", NULL, serve_blocks, NULL, NULL, NULL, napi_default, NULL},
    {"publishBlock", NULL, publish_block, NULL, NULL, NULL, napi_default, NULL},
    {"retractBlock", NULL, retract_block, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
}
