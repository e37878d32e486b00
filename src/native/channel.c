// The binding's own channel on /dev/fuse.
//
// A walk makes a LOOKUP per file before its READ. Kernels since 3.9 can list a directory with
// READDIRPLUS instead, each entry carrying what a LOOKUP would answer, and then look nothing up.
// libfuse 2 knows neither the request nor the INIT flag that asks for it, so the binding reads
// /dev/fuse through a channel of its own: it answers READDIRPLUS itself from the table, and adds
// FUSE_DO_READDIRPLUS to libfuse's INIT reply when the kernel offers it. Everything else passes
// through to libfuse unchanged.
#include "session.h"

/** A reply written straight to /dev/fuse: `error` 0 with `len` bytes of `data`, or an errno. */
void raw_reply(struct fuse_chan *ch, uint64_t unique, int error, const void *data, size_t len) {
  struct fuse_out_header out = {.len = (uint32_t) (sizeof(out) + (error ? 0 : len)), .error = -error, .unique = unique};
  struct iovec iov[2] = {{&out, sizeof(out)}, {(void *) data, len}};
  // ENOENT: the kernel gave up on the request (interrupted); nothing else to do.
  if (writev(fuse_chan_fd(ch), iov, error || len == 0 ? 1 : 2) < 0) return;
}

/** libfuse's kernel channel's receive, answering READDIRPLUS on the way and noting INIT's offer. */
static int chan_receive(struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  session_t *s = fuse_chan_data(ch);
  struct fuse_session *se = fuse_chan_session(ch);
  for (;;) {
    ssize_t got = read(fuse_chan_fd(ch), buf, size);
    int err = errno;
    if (fuse_session_exited(se)) return 0;
    if (got < 0) {
      if (err == ENOENT) continue; // a request interrupted before it was read
      if (err == ENODEV) {         // unmounted
        fuse_session_exit(se);
        return 0;
      }
      return -err; // EINTR: libfuse's loop reads again
    }
    if ((size_t) got < sizeof(struct fuse_in_header)) return -EIO;
    const struct fuse_in_header *in = (const struct fuse_in_header *) buf;
    if (in->opcode == FUSE_READDIRPLUS) {
      answer_readdirplus(s, ch, in, (size_t) got);
      continue;
    }
    if (in->opcode == FUSE_INIT && (size_t) got >= sizeof(*in) + sizeof(struct fuse_init_in)) {
      const struct fuse_init_in *init = (const struct fuse_init_in *) (in + 1);
      s->kernel_flags = init->major == 7 && init->minor >= 21 ? init->flags : 0;
      s->init_unique = in->unique;
    }
    return (int) got;
  }
}

/** libfuse's kernel channel's send, adding FUSE_DO_READDIRPLUS to the INIT reply when offered. */
static int chan_send(struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (iov == NULL) return 0;
  session_t *s = fuse_chan_data(ch);
  struct iovec amended[2];
  uint32_t init[16];
  const struct fuse_out_header *out = iov[0].iov_base;
  if (s->init_unique != 0 && count == 2 && iov[0].iov_len == sizeof(*out) && out->unique == s->init_unique) {
    s->init_unique = 0;
    // struct fuse_init_out: major, minor, max_readahead, flags, ... (libfuse 2 sends the 7.19 layout)
    if (out->error == 0 && iov[1].iov_len >= 16 && iov[1].iov_len <= sizeof(init) &&
        (s->kernel_flags & FUSE_DO_READDIRPLUS)) {
      memcpy(init, iov[1].iov_base, iov[1].iov_len);
      init[3] |= FUSE_DO_READDIRPLUS;
      amended[0] = iov[0];
      amended[1] = (struct iovec){init, iov[1].iov_len};
      iov = amended;
    }
  }
  if (writev(fuse_chan_fd(ch), iov, (int) count) < 0) {
    int err = errno;
    return -err; // ENOENT: the request was interrupted
  }
  return 0;
}

static void chan_destroy(struct fuse_chan *ch) {
  close(fuse_chan_fd(ch));
}

static struct fuse_chan_ops CHAN_OPS = {.receive = chan_receive, .send = chan_send, .destroy = chan_destroy};

struct fuse_chan *channel_open(session_t *s, struct fuse_chan *kernel) {
  int fd = fcntl(fuse_chan_fd(kernel), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return NULL;
  struct fuse_chan *own = fuse_chan_new(&CHAN_OPS, fd, fuse_chan_bufsize(kernel), s);
  if (own == NULL) {
    close(fd);
    return NULL;
  }
  fuse_chan_destroy(kernel); // closes libfuse's descriptor; ours stays open on the same connection
  return own;
}
