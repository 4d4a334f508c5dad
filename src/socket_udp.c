/*
** socket_udp.c -- "udp.core": UDP cosockets on uv_udp_t.
**
** A udp_t is owned by Lua; its uv_udp_t by libuv from uv_close() until
** free_handle_cb(). The handle is made when the address family is known:
** at once for udp4()/udp6(), at the first bind, connect or send for udp().
** Options set before that are kept in u->opts (src/sockopt.c) and
** applied to the new socket (so reuseaddr still precedes the bind).
**
** Receiving: once a task has asked for a datagram the handle keeps
** reading, into the socket's queue u->q (a dgram_t header, then the
** bytes; the buffer is reused, so no malloc per datagram once it has
** grown). Small datagrams arrive by recvmmsg(2) in one shared buffer and
** are copied out; big ones are read in place at the queue's tail. While
** a task works through a batch, receive() also drains the kernel every
** DRAIN_BYTES (drain()), so that the peers' next datagrams do not
** overflow the ~200 KiB socket buffer meanwhile. Reading stops when the
** queue is full: a slow reader then makes the kernel drop, as UDP does.
**
** Any number of tasks may receive on one socket; they line up FIFO in
** u->readers. For every queued datagram recv_cb wakes the first parked
** reader with a claim on it (u->claims counts them), and a receive() that
** finds unclaimed datagrams takes one without yielding, so a busy reader
** cannot take the datagrams already promised to others.
** The reader's userdata is a to-be-closed slot of its receive call, so a
** woken reader that never resumes (cancelled, or interrupted by a deadline
** meanwhile) gives its claim back when its stack unwinds.
**
** Truncation is never silent: a datagram longer than the size asked for
** comes back cut, followed by "truncated" and its full length.
**
** Sending tries uv_udp_try_send first; only when the kernel buffer is full
** does the task park on a uv_udp_send_t (malloc'd with a copy of the data,
** freed in send_cb, detached on timeout or close).
*/
#define _GNU_SOURCE             /* recvmmsg(2) */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "netsh.h"

#define UDP_MT "netsh.udp"
#define READER_MT "netsh.udp.reader"

#define MAXDGRAM 65536          /* bigger than any UDP payload */
#define RCHUNKS 16              /* datagrams per recvmmsg(2), at most */
#define INPLACE_MIN 2048        /* libuv reads datagrams this big in place */
#define DRAIN_BYTES (48 << 10)  /* in a batch, drain the kernel this often */
#define DGRAM_COST 1024         /* kernel overhead per datagram, roughly */
#define QMAX_BYTES (1 << 20)    /* stop reading beyond this much queued */
#define QMAX_COUNT 1024         /* ... or this many datagrams */
#define QKEEP (4 << 20)         /* free a drained queue bigger than this */

typedef struct udp_s udp_t;

/* A task waiting for a datagram; a userdata on the task's own stack,
** parked on the socket's u->readers condition (FIFO). */
typedef struct reader_s {
  ns_waiter_t w;                   /* first: signal hands it back */
  udp_t *u;
  int claim;                       /* woken for a queued datagram */
} reader_t;

/* A task waiting for a send the kernel could not take at once. */
typedef struct sendop_s {
  ns_waiter_t w;
  udp_t *u;
  uv_udp_send_t *req;              /* NULL once done or detached */
  ns_link_t link;                  /* in u->sends while pending */
  size_t n;
} sendop_t;

typedef struct {
  uv_udp_send_t req;
  char data[];                     /* the datagram, copied */
} sendreq_t;

struct udp_s {
  uv_udp_t *h;           /* NULL until made, and once closed */
  int family;            /* AF_UNSPEC until known */
  int closed;
  int connected;
  int reading;
  int v6only;            /* udp6(): set IPV6_V6ONLY on the new socket */
  ns_timeout_t tm;       /* settimeout(s): as TCP's */
  ns_buf_t q;            /* queued datagrams: dgram_t + bytes each */
  int nq;                /* entries in q */
  int claims;            /* entries promised to woken readers */
  size_t last;           /* size of the last datagram read */
  int busy;              /* the kernel may hold more: last read was full */
  size_t since;          /* bytes taken since the kernel was drained */
  ns_cond_t readers;     /* parked receives, first come first served */
  ns_link_t sends;       /* sendop_t: parked sends */
  ns_link_t sel;         /* select()s waiting on this socket */
  ns_optlist_t opts;     /* set before the socket exists */
  ns_addr_t upeer;       /* a Unix socket's peer: libuv cannot connect
                            one, so the fd is connected here and every
                            send names the peer */
};

/* Header of a queued datagram (or of a receive error). */
typedef struct {
  int32_t n;             /* payload bytes, or a negative UV_E* */
  int32_t partial;       /* the kernel cut it */
  union {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
  } from;
} dgram_t;

enum { R_DATA, R_FROM, R_ITER };   /* receive, receivefrom, datagrams */

/* The receive buffer, shared by all sockets since recv_cb copies each
** datagram out at once: RCHUNKS slots of MAXDGRAM for recvmmsg(2). */
static char *rbuf;

/* ---- helpers ---- */

/* LuaSocket's classes (class.c): the metatable answers `class`. */
static const char *const class_names[] = {
  "udp{unconnected}", "udp{connected}",
  "unixdgram{unconnected}", "unixdgram{connected}"};
static const ns_kind_t udp_kind = {UDP_MT, class_names, 4};

static int class_of(const udp_t *u) {
  return (u->family == AF_UNIX) * 2 + (u->connected != 0);
}

/* self of a method, its class brought up to date */
static udp_t *check_udp(lua_State *L, int i) {
  int k;
  udp_t *u = ns_class_check(L, i, &udp_kind, &k);
  if (k != class_of(u)) ns_class_set(L, i, &udp_kind, class_of(u));
  return u;
}

/* for metamethods: __gc must not set a metatable */
static udp_t *to_udp(lua_State *L, int i) {
  return ns_class_check(L, i, &udp_kind, NULL);
}

/* after a change of peer or family, the object at i */
static void reclass(lua_State *L, int i) {
  check_udp(L, i);
}

static void free_handle_cb(uv_handle_t *h) { free(h); }

/* The socket's descriptor, -1 when it has none. */
static uv_os_fd_t udp_fd(udp_t *u) {
  uv_os_fd_t fd;
  return u->h && uv_fileno((uv_handle_t *)u->h, &fd) == 0 ? fd : -1;
}

/* "unix:PATH": a Unix datagram address. Paths only: libuv sends with the
** whole sockaddr_un as the address length, which would change an abstract
** (@name) address. 0 or a UV_E* code. */
static int unix_addr(const char *path, ns_addr_t *a) {
  if (path[0] == '@') return UV_EINVAL;
  return ns_unix_addr(path, a);
}

static int is_unix(const char *host) {
  return strncmp(host, "unix:", 5) == 0;
}

/* The port argument i of a call given host: none for a Unix path; < 0
** (UV_EAI_SERVICE) for an unknown service name. */
static int port_arg(lua_State *L, udp_t *u, const char *host, int i) {
  return is_unix(host) || u->family == AF_UNIX ? 0
                                               : ns_check_port(L, i, "udp");
}

/* ns_resolve() with a fast path for numeric addresses (sendto() in a
** server loop should not pay for a lookup); names, "*" and "localhost" go
** to dns.c (names park the task). k gets the first address. */
static int resolve(lua_State *L, const char *host, int port, int family,
                   int passive, ns_resolve_k k, lua_KContext ctx) {
  ns_addr_t a;
  if (is_unix(host) || family == AF_UNIX) {  /* a Unix socket: all paths */
    int rc = unix_addr(is_unix(host) ? host + 5 : host, &a);
    if (rc == 0 && family != AF_UNSPEC && family != AF_UNIX)
      rc = UV_EAFNOSUPPORT;          /* an IP socket cannot take a path */
    return rc ? k(L, rc, NULL, ctx) : k(L, 1, &a, ctx);
  }
  if (ns_addr_numeric(host, port, family, &a) == 0) return k(L, 1, &a, ctx);
  return ns_resolve(L, host, port, family, passive, -1, k, ctx);
}

/* ---- the receive queue ---- */

/* Room for `extra` more bytes at the tail of the queue. Datagrams leave
** from the head, so the consumed prefix is reclaimed by moving the rest
** down, but only once it is at least as long as the rest: each byte is
** then moved O(1) times (ns_buf_reserve compacts at every call, which
** costs a copy of the whole queue per datagram in a busy server). */
static int queue_reserve(ns_buf_t *q, size_t extra) {
  size_t cap;
  char *p;
  if (q->len == 0) q->off = 0;
  if (q->off + q->len + extra <= q->cap) return 0;
  if (q->off >= q->len && q->len + extra <= q->cap) {
    memmove(q->data, q->data + q->off, q->len);
    q->off = 0;
    return 0;
  }
  cap = q->cap ? q->cap : 4096;
  while (cap < q->off + q->len + extra) cap *= 2;
  p = realloc(q->data, cap);
  if (p == NULL) return UV_ENOMEM;
  q->data = p;
  q->cap = cap;
  return 0;
}

static void queue_pop(udp_t *u, size_t n) {
  u->nq--;
  u->q.off += n;
  u->q.len -= n;
  if (u->q.len == 0) {
    u->q.off = 0;
    if (u->q.cap > QKEEP) ns_buf_free(&u->q);
  }
}

static int queue_full(udp_t *u) {
  return u->q.len >= QMAX_BYTES || u->nq >= QMAX_COUNT;
}

/* Hands unclaimed datagrams to parked readers, first come first served. */
static void wake_readers(udp_t *u) {
  while (ns_cond_first(&u->readers) && u->nq > u->claims) {
    reader_t *r = (reader_t *)ns_cond_signal(&u->readers, 0);
    r->claim = 1;
    u->claims++;
  }
}

/* Big datagrams are read in place at the tail of the queue (one per
** system call: the copy would cost more than the call); small ones
** RCHUNKS at a time by recvmmsg(2) into the shared buffer. */
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  udp_t *u = h ? h->data : NULL;
  (void)suggested;
  if (rbuf == NULL) rbuf = malloc(RCHUNKS * MAXDGRAM);
  buf->base = rbuf;
  buf->len = rbuf ? RCHUNKS * MAXDGRAM : 0;
  if (u && u->last >= INPLACE_MIN &&
      queue_reserve(&u->q, sizeof(dgram_t) + MAXDGRAM) == 0) {
    buf->base = u->q.data + u->q.off + u->q.len + sizeof(dgram_t);
    buf->len = MAXDGRAM;
  }
}

/* Queues a datagram (or, with nread < 0, a receive error) and hands it to
** the first parked reader. The bytes are in the shared buffer, or already
** in place at the queue's tail (see alloc_cb). */
static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  udp_t *u = h->data;
  dgram_t d;
  size_t n = nread > 0 ? (size_t)nread : 0;
  char *tail;
  if (u == NULL) return;
  if (nread == 0 && addr == NULL) {         /* EAGAIN, or mmsg free */
    if (!(flags & UV_UDP_MMSG_FREE)) u->busy = 0;
    return;
  }
  if (nread >= 0) {
    u->last = n;
    u->busy = 1;              /* until a read finds the kernel empty */
  }
  memset(&d, 0, sizeof d);
  d.n = (int32_t)nread;
  d.partial = (flags & UV_UDP_PARTIAL) != 0;
  if (u->family == AF_UNIX && (addr == NULL || addr->sa_family != AF_UNIX)) {
    d.from.un.sun_family = AF_UNIX;  /* an unnamed sender: path "" */
  } else if (addr) {
    memcpy(&d.from, addr, addr->sa_family == AF_INET6 ? sizeof d.from.in6
           : addr->sa_family == AF_UNIX ? sizeof d.from.un
           : sizeof d.from.in);
  }
  if (u->q.data == NULL ||
      buf->base != u->q.data + u->q.off + u->q.len + sizeof d) {
    if (queue_reserve(&u->q, sizeof d + n) != 0) return;  /* dropped */
    if (n) memcpy(u->q.data + u->q.off + u->q.len + sizeof d, buf->base, n);
  }
  tail = u->q.data + u->q.off + u->q.len;
  memcpy(tail, &d, sizeof d);
  u->q.len += sizeof d + n;
  u->nq++;
  if (queue_full(u)) {
    uv_udp_recv_stop(h);   /* backpressure: the kernel queues, then drops */
    u->reading = 0;
  }
  wake_readers(u);
  if (u->nq > u->claims) ns_sel_notify(&u->sel);
}

static int start_reading(udp_t *u) {
  int rc;
  if (u->reading || queue_full(u)) return 0;
  rc = uv_udp_recv_start(u->h, alloc_cb, recv_cb);
  if (rc == 0 || rc == UV_EALREADY) u->reading = 1;
  return rc == UV_EALREADY ? 0 : rc;
}

/* ---- handle and lifetime ---- */

static udp_t *udp_new(lua_State *L, int family) {
  udp_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);       /* valid and empty before any resource */
  u->family = family;
  ns_timeout_init(&u->tm);
  ns_cond_init(&u->readers);
  ns_list_init(&u->sel);
  ns_list_init(&u->sends);
  luaL_setmetatable(L, UDP_MT);
  reclass(L, -1);
  return u;
}

/* Makes the uv_udp_t for family and applies the options kept in u->opts.
** 0 or a UV_E* code. */
static int ensure_handle(udp_t *u, int family) {
  uv_udp_t *h;
  int rc;
  if (u->h) return 0;
  if (u->closed) return NS_ECLOSED;
  if (family == AF_UNSPEC) family = AF_INET;
  h = malloc(sizeof *h);
  if (h == NULL) return UV_ENOMEM;
  if (family == AF_UNIX) {
    /* libuv makes only IP sockets; it reads and sends on any */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      free(h);
      return -errno;
    }
    uv_udp_init(ns_loop(), h);
    if ((rc = uv_udp_open(h, (uv_os_sock_t)fd)) != 0) {
      close(fd);
      uv_close((uv_handle_t *)h, free_handle_cb);
      return rc;
    }
  } else if ((rc = uv_udp_init_ex(ns_loop(), h,
                                  (unsigned)family | UV_UDP_RECVMMSG)) != 0) {
    free(h);
    return rc;
  }
  h->data = u;
  u->h = h;
  u->family = family;
  if (family == AF_INET6 && u->v6only) {
    uv_os_fd_t fd;
    int yes = 1;
    if (uv_fileno((uv_handle_t *)h, &fd) == 0)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
  }
  if ((rc = ns_optlist_apply(&u->opts, (int)udp_fd(u), family)) != 0)
    return rc;
  ns_optlist_free(&u->opts);
  return 0;
}

/* close(), __close and __gc all end here; calling it twice is fine. */
static void udp_release(udp_t *u) {
  ns_waiter_t *w;
  ns_link_t *l;
  if (u->closed) return;
  u->closed = 1;
  while ((w = ns_cond_first(&u->readers)) != NULL)
    ns_cancel(w, NS_ECLOSED);        /* parked readers wake with "closed" */
  ns_sel_release(&u->sel);          /* select()s look again, without us */
  while ((l = ns_list_first(&u->sends)) != NULL) {
    sendop_t *op = ns_container_of(l, sendop_t, link);
    ns_list_remove(l);
    if (op->req) op->req->data = NULL;   /* send_cb only frees it */
    op->req = NULL;
    ns_cancel(&op->w, NS_ECLOSED);
  }
  if (u->h) {
    u->h->data = NULL;              /* late callbacks find no owner */
    uv_close((uv_handle_t *)u->h, free_handle_cb);
    u->h = NULL;
  }
  u->reading = 0;
  ns_buf_free(&u->q);
  u->nq = 0;
  u->claims = 0;
  ns_optlist_free(&u->opts);
}

/* ---- receiving ---- */

/* __close and __gc of a reader: only a reader that did not finish its
** wait has anything to undo. */
static int reader_close(lua_State *L) {
  reader_t *r = lua_touserdata(L, 1);
  udp_t *u = r->u;
  if (u == NULL) return 0;
  ns_cond_remove(&r->w);
  if (r->claim) {                   /* woken, but will never resume */
    r->claim = 0;
    if (!u->closed) {
      u->claims--;
      wake_readers(u);
    }
  }
  r->u = NULL;
  return 0;
}

/* Errors end a datagrams() loop quietly when they mean "no more". */
static int iter_fail(lua_State *L, int code) {
  if (code == NS_ECLOSED || code == UV_ETIMEDOUT) {
    lua_pushnil(L);
    return 1;
  }
  return luaL_error(L, "%s", ns_strerror(code));
}

static int recv_fail(lua_State *L, int mode, int code) {
  return mode == R_ITER ? iter_fail(L, code) : ns_fail(L, code);
}

/* ip, port, family of a name; a Unix one is path, nil, "unix" (see
** ns_addr_push_len; the sockaddr was zeroed before the kernel filled it). */
static void push_name(lua_State *L, const struct sockaddr *sa) {
  ns_addr_push_len(L, sa, sizeof(struct sockaddr_un));
}

/* Pops the head of the queue and pushes what the receive variant returns:
** data [, ip, port] [, "truncated", full length]. */
static int take(lua_State *L, udp_t *u, int mode, size_t size) {
  dgram_t d;
  const char *p = ns_buf_ptr(&u->q);
  size_t n, keep;
  int nres = 1;
  memcpy(&d, p, sizeof d);
  if (d.n < 0) {
    queue_pop(u, sizeof d);
    return recv_fail(L, mode, d.n);
  }
  n = (size_t)d.n;
  keep = n < size ? n : size;
  lua_pushlstring(L, p + sizeof d, keep);
  if (mode != R_DATA) {
    ns_addr_push_peer(L, &d.from.sa);
    nres += 2;
  }
  if (keep < n || d.partial) {
    lua_pushliteral(L, "truncated");
    lua_pushinteger(L, (lua_Integer)n);
    nres += 2;
  }
  queue_pop(u, sizeof d + n);
  u->since += n + DGRAM_COST;
  if (!u->reading && u->h && u->q.len < QMAX_BYTES / 2 &&
      u->nq < QMAX_COUNT / 2)
    start_reading(u);
  return nres;
}

/* Moves what the kernel holds for the socket into the queue now, up to
** RCHUNKS datagrams per recvmmsg(2), without waiting. Used while the
** socket is busy: libuv reads only when the loop polls, and a server
** answering a long batch would meanwhile let its peers' next datagrams
** overflow the socket buffer (about 200 KiB). Also makes settimeout(0)
** see datagrams the loop has not read yet. */
static void drain(udp_t *u) {
  struct mmsghdr mm[RCHUNKS];
  struct iovec iov[RCHUNKS];
  struct sockaddr_storage from[RCHUNKS];
  uv_os_fd_t fd;
  uv_buf_t b;
  int i, n, rounds = 0;
  u->since = 0;
  if (u->h == NULL || uv_fileno((uv_handle_t *)u->h, &fd) != 0) return;
  alloc_cb(NULL, 0, &b);
  if (b.len == 0) return;
  while (!u->closed && !queue_full(u) && rounds++ < 4) {
    memset(mm, 0, sizeof mm);
    if (u->family == AF_UNIX) memset(from, 0, sizeof from);  /* unnamed */
    for (i = 0; i < RCHUNKS; i++) {
      iov[i].iov_base = b.base + (size_t)i * MAXDGRAM;
      iov[i].iov_len = MAXDGRAM;
      mm[i].msg_hdr.msg_iov = &iov[i];
      mm[i].msg_hdr.msg_iovlen = 1;
      mm[i].msg_hdr.msg_name = &from[i];
      mm[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    do n = recvmmsg(fd, mm, RCHUNKS, MSG_DONTWAIT, NULL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        recv_cb(u->h, -errno, &b, NULL, 0);
      u->busy = 0;
      return;
    }
    for (i = 0; i < n && u->h; i++) {
      uv_buf_t one = uv_buf_init(iov[i].iov_base, MAXDGRAM);
      recv_cb(u->h, mm[i].msg_len, &one, (struct sockaddr *)&from[i],
              (mm[i].msg_hdr.msg_flags & MSG_TRUNC) ? UV_UDP_PARTIAL : 0);
    }
    if (n < RCHUNKS) {
      u->busy = 0;            /* took all there was */
      return;
    }
  }
}

#define RCTX(mode, size) ((lua_KContext)(((size) << 2) | (mode)))
#define RMODE(ctx) ((int)((ctx) & 3))
#define RSIZE(ctx) ((size_t)((ctx) >> 2))

static int recv_k(lua_State *L, int status, lua_KContext ctx);

/* The socket is at index 1. Takes a datagram or parks in line. */
static int recv_begin(lua_State *L, udp_t *u, lua_KContext ctx) {
  int mode = RMODE(ctx), rc;
  double timeout = ns_timeout_op(&u->tm, u->tm.read, ns_now());
  reader_t *r;
  if (u->closed) return recv_fail(L, mode, NS_ECLOSED);
  if (u->nq > u->claims) {
    /* in a batch: keep the kernel's buffer from filling up meanwhile */
    if (u->since >= DRAIN_BYTES && !ns_cond_first(&u->readers)) drain(u);
    return take(L, u, mode, RSIZE(ctx));
  }
  if ((rc = ensure_handle(u, u->family)) != 0 ||
      (rc = start_reading(u)) != 0)
    return recv_fail(L, mode, rc);
  if (u->busy || timeout == 0) {
    if (ns_cond_first(&u->readers) == NULL) drain(u);
    if (u->nq > u->claims) return take(L, u, mode, RSIZE(ctx));
  }
  if (timeout == 0) {
    if (u->nq > u->claims) return take(L, u, mode, RSIZE(ctx));
    return recv_fail(L, mode, UV_ETIMEDOUT);
  }
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, READER_MT);
  lua_toclose(L, -1);
  r->u = u;
  return ns_cond_wait(L, &u->readers, &r->w, timeout, recv_k, ctx);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  reader_t *r = lua_touserdata(L, -1);
  udp_t *u = r->u;
  int st = r->w.status;
  (void)status;
  if (r->claim) {
    r->claim = 0;
    if (!u->closed) u->claims--;
  }
  r->u = NULL;                      /* done: __close has nothing to do */
  lua_pop(L, 1);
  if (st < 0) return recv_fail(L, RMODE(ctx), st);
  return recv_begin(L, u, ctx);     /* takes ours (or lines up again) */
}

static size_t opt_size(lua_State *L, int i) {
  lua_Integer n;
  if (lua_isnoneornil(L, i)) return MAXDGRAM;
  n = luaL_checkinteger(L, i);
  luaL_argcheck(L, n >= 0, i, "size must not be negative");
  return n > MAXDGRAM ? MAXDGRAM : (size_t)n;
}

/* receive([size]) -> data [, "truncated", length] | nil, err */
static int meth_receive(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  size_t size = opt_size(L, 2);
  lua_settop(L, 1);
  return recv_begin(L, u, RCTX(R_DATA, size));
}

/* receivefrom([size]) -> data, ip, port [, "truncated", length]
**   | nil, err */
static int meth_receivefrom(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  size_t size = opt_size(L, 2);
  lua_settop(L, 1);
  return recv_begin(L, u, RCTX(R_FROM, size));
}

static int iter_next(lua_State *L) {
  udp_t *u = lua_touserdata(L, lua_upvalueindex(1));
  size_t size = (size_t)lua_tointeger(L, lua_upvalueindex(2));
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(1));
  return recv_begin(L, u, RCTX(R_ITER, size));
}

/* datagrams([size]) -> iterator of data, ip, port [, "truncated", len];
** ends when the socket is closed or a receive times out, raises on any
** other error. */
static int meth_datagrams(lua_State *L) {
  size_t size;
  check_udp(L, 1);
  size = opt_size(L, 2);
  lua_settop(L, 1);
  lua_pushinteger(L, (lua_Integer)size);
  lua_pushcclosure(L, iter_next, 2);
  return 1;
}

/* ---- sending ---- */

static void send_cb(uv_udp_send_t *req, int status) {
  sendop_t *op = req->data;
  if (op) {
    ns_list_remove(&op->link);
    op->req = NULL;
    ns_wake(&op->w, status);
  }
  free(req);
}

static void sendop_cancel(ns_waiter_t *w) {
  sendop_t *op = (sendop_t *)w;
  ns_list_remove(&op->link);
  if (op->req) op->req->data = NULL;   /* the datagram still goes out */
  op->req = NULL;
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  sendop_t *op = lua_touserdata(L, -1);
  (void)status; (void)ctx;
  if (op->w.status < 0) return ns_fail(L, op->w.status);
  lua_pushinteger(L, (lua_Integer)op->n);
  return 1;
}

/* Sends p[0..n) to `to` (NULL: the peer); pushes the byte count or parks
** until the kernel takes it. */
static int do_send(lua_State *L, udp_t *u, const char *p, size_t n,
                   const struct sockaddr *to) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  sendreq_t *sr;
  sendop_t *op;
  double timeout = ns_timeout_op(&u->tm, u->tm.send, ns_now());
  int rc = uv_udp_try_send(u->h, &b, 1, to);
  if (rc >= 0) {
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
  }
  if (rc != UV_EAGAIN) return ns_fail(L, rc);
  if (timeout == 0) return ns_fail(L, UV_ETIMEDOUT);
  sr = malloc(sizeof *sr + (n ? n : 1));
  if (sr == NULL) return ns_fail(L, UV_ENOMEM);
  memcpy(sr->data, p, n);
  b = uv_buf_init(sr->data, (unsigned)n);
  rc = uv_udp_send(&sr->req, u->h, &b, 1, to, send_cb);
  if (rc != 0) {
    free(sr);
    return ns_fail(L, rc);
  }
  op = lua_newuserdatauv(L, sizeof *op, 0);
  memset(op, 0, sizeof *op);
  op->u = u;
  op->n = n;
  op->req = &sr->req;
  sr->req.data = op;
  op->w.cancel = sendop_cancel;
  ns_list_insert_head(&u->sends, &op->link);
  return ns_wait(L, &op->w, timeout, send_k, 0);
}

/* send(datagram) -> bytes | nil, err (connected sockets) */
static int meth_send(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  size_t n;
  const char *p = luaL_checklstring(L, 2, &n);
  lua_settop(L, 2);
  if (u->closed) return ns_fail(L, NS_ECLOSED);
  if (u->h == NULL || !u->connected) return ns_fail(L, UV_EDESTADDRREQ);
  return do_send(L, u, p, n, u->family == AF_UNIX
                 ? (const struct sockaddr *)&u->upeer.ss : NULL);
}

static int sendto_k(lua_State *L, int n, const ns_addr_t *a,
                    lua_KContext ctx) {
  udp_t *u = lua_touserdata(L, 1);
  size_t len;
  const char *p;
  int rc;
  (void)ctx;
  if (n < 0) return ns_fail(L, n);
  if ((rc = ensure_handle(u, a->ss.ss_family)) != 0)
    return ns_fail(L, rc);
  if ((u->family == AF_UNIX) != (a->ss.ss_family == AF_UNIX))
    return ns_fail(L, UV_EAFNOSUPPORT);
  p = lua_tolstring(L, 2, &len);
  return do_send(L, u, p, len, (const struct sockaddr *)&a->ss);
}

/* sendto(datagram, host, port) -> bytes | nil, err; host may be a name */
static int meth_sendto(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  const char *host;
  int port;
  luaL_checkstring(L, 2);
  host = ns_checkcstring(L, 3, NULL);
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  port = port_arg(L, u, host, 4);
  lua_settop(L, 4);
  if (u->closed) return ns_fail(L, NS_ECLOSED);
  if (u->connected) return ns_fail(L, UV_EISCONN);
  if (port < 0) return ns_fail(L, port);
  return resolve(L, host, port, u->family, 0, sendto_k, 0);
}

/* ---- addresses ---- */

/* What setsockname and setpeername do once the address is known: a
** socket of its family. 0 or a UV_E* code. */
static int addr_handle(lua_State *L, udp_t *u, int n, const ns_addr_t *a) {
  int rc;
  if (n < 0) return n;
  if (u->closed) return NS_ECLOSED;
  if ((rc = ensure_handle(u, a->ss.ss_family)) != 0) return rc;
  return u->family != a->ss.ss_family ? UV_EAFNOSUPPORT : 0;
}

static int setsockname_k(lua_State *L, int n, const ns_addr_t *a,
                         lua_KContext ctx) {
  udp_t *u = lua_touserdata(L, 1);
  int rc = addr_handle(L, u, n, a);
  (void)ctx;
  if (rc != 0) return ns_fail(L, rc);
  if (a->ss.ss_family == AF_UNIX) {   /* uv_udp_bind takes IP only */
    if (bind(udp_fd(u), (const struct sockaddr *)&a->ss, a->len) != 0)
      return ns_fail(L, -errno);
  } else if ((rc = uv_udp_bind(u->h, (const struct sockaddr *)&a->ss,
                               0)) != 0) {
    return ns_fail(L, rc);
  }
  lua_pushinteger(L, 1);
  return 1;
}

/* setsockname(host, port) -> 1 | nil, err ("*": any address) */
static int meth_setsockname(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  const char *host = ns_checkcstring(L, 2, NULL);
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  int port = port_arg(L, u, host, 3);
  lua_settop(L, 3);
  if (u->closed) return ns_fail(L, NS_ECLOSED);
  if (port < 0) return ns_fail(L, port);
  return resolve(L, host, port, u->family, 1, setsockname_k, 0);
}

static int setpeername_k(lua_State *L, int n, const ns_addr_t *a,
                         lua_KContext ctx) {
  udp_t *u = lua_touserdata(L, 1);
  int rc = addr_handle(L, u, n, a);
  (void)ctx;
  if (rc != 0) return ns_fail(L, rc);
  if (a->ss.ss_family == AF_UNIX) {  /* see upeer */
    if (connect(udp_fd(u), (const struct sockaddr *)&a->ss, a->len) != 0)
      return ns_fail(L, -errno);
    u->upeer = *a;
    u->connected = 1;
    reclass(L, 1);
    lua_pushinteger(L, 1);
    return 1;
  }
  if (u->connected) {               /* LuaSocket allows a new peer */
    uv_udp_connect(u->h, NULL);
    u->connected = 0;
  }
  rc = uv_udp_connect(u->h, (const struct sockaddr *)&a->ss);
  if (rc != 0) return ns_fail(L, rc);
  u->connected = 1;
  reclass(L, 1);
  lua_pushinteger(L, 1);
  return 1;
}

/* setpeername(host, port) -> 1 | nil, err; setpeername("*") disconnects */
static int meth_setpeername(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  const char *host = ns_checkcstring(L, 2, NULL);
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  int port;
  if (u->closed) return ns_fail(L, NS_ECLOSED);
  if (strcmp(host, "*") == 0) {
    if (u->connected && u->family == AF_UNIX) {
      struct sockaddr none;
      memset(&none, 0, sizeof none);
      none.sa_family = AF_UNSPEC;       /* dissolves the association */
      connect(udp_fd(u), &none, sizeof none);
      u->connected = 0;
    } else if (u->connected) {
      int rc = uv_udp_connect(u->h, NULL);
      if (rc != 0) return ns_fail(L, rc);
      u->connected = 0;
    }
    reclass(L, 1);
    lua_pushinteger(L, 1);
    return 1;
  }
  port = port_arg(L, u, host, 3);
  lua_settop(L, 3);
  if (port < 0) return ns_fail(L, port);
  return resolve(L, host, port, u->family, 0, setpeername_k, 0);
}

/* getsockname() -> ip, port, family | nil, err */
static int meth_getsockname(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (u->closed) return ns_fail(L, NS_ECLOSED);
  if (u->h == NULL) return ns_fail(L, NS_ENOTBOUND);
  memset(&ss, 0, sizeof ss);
  rc = uv_udp_getsockname(u->h, (struct sockaddr *)&ss, &len);
  if (rc != 0) return ns_fail(L, rc);
  push_name(L, (struct sockaddr *)&ss);
  return 3;
}

/* getpeername() -> ip, port, family | nil, err */
static int meth_getpeername(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (u->closed) return ns_fail(L, NS_ECLOSED);
  if (!u->connected) return ns_fail(L, NS_ENOTCONN);
  if (u->family == AF_UNIX) {
    push_name(L, (struct sockaddr *)&u->upeer.ss);
    return 3;
  }
  rc = uv_udp_getpeername(u->h, (struct sockaddr *)&ss, &len);
  if (rc != 0) return ns_fail(L, rc);
  ns_addr_push(L, (struct sockaddr *)&ss);
  return 3;
}

/* ---- options (src/sockopt.c) ---- */

/* setoption(name [, value]) -> 1 | nil, err; before the socket exists
** (udp() before its first address) the value is kept for it */
static int meth_setoption(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  return ns_setoption(L, NS_OPT_UDP, u->closed ? NS_FD_CLOSED :
                      (int)udp_fd(u), u->h ? NULL : &u->opts);
}

/* getoption(name) -> value | nil, err */
static int meth_getoption(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  return ns_getoption(L, NS_OPT_UDP, u->closed ? NS_FD_CLOSED :
                      (int)udp_fd(u), &u->opts);
}

/* ---- the rest of the object ---- */

/* settimeout(seconds [, mode]), settimeouts(connect, send, read),
** gettimeout() -> block, total: as TCP's (util.c); a datagram operation
** waits once, so "b" and "t" differ only when both are set */
static int meth_settimeout(lua_State *L) {
  return ns_settimeout(L, &check_udp(L, 1)->tm);
}

static int meth_settimeouts(lua_State *L) {
  return ns_settimeouts(L, &check_udp(L, 1)->tm);
}

static int meth_gettimeout(lua_State *L) {
  return ns_gettimeout(L, &check_udp(L, 1)->tm);
}

static int meth_close(lua_State *L) {
  udp_release(check_udp(L, 1));
  lua_pushinteger(L, 1);
  return 1;
}

static int meth_getfd(lua_State *L) {
  lua_pushinteger(L, udp_fd(check_udp(L, 1)));
  return 1;
}

/* setfd(fd): adopt a datagram socket descriptor (connected or not by
** what the kernel says); setfd(-1): forget the current one without
** closing it. Queued datagrams go with the old descriptor. */
static int meth_setfd(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  lua_Integer fd = luaL_checkinteger(L, 2);
  uv_os_fd_t old = udp_fd(u);
  if (ns_cond_first(&u->readers) || !ns_list_empty(&u->sends))
    return ns_fail(L, NS_EBUSY);
  ns_sel_release(&u->sel);          /* select()s look again */
  if (u->h) {
    /* uv_close closes the descriptor: keep the number alive with a dup */
    int keep = fd >= 0 && fd != old ? -1 : dup(old);
    u->h->data = NULL;
    uv_close((uv_handle_t *)u->h, free_handle_cb);
    u->h = NULL;
    if (keep >= 0) {
      dup2(keep, old);
      close(keep);
    }
  }
  u->reading = u->connected = 0;
  ns_buf_free(&u->q);
  u->nq = u->claims = 0;
  if (fd >= 0) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc;
    uv_udp_t *h = malloc(sizeof *h);
    if (h == NULL) return ns_fail(L, UV_ENOMEM);
    uv_udp_init(ns_loop(), h);
    if ((rc = uv_udp_open(h, (uv_os_sock_t)fd)) != 0) {
      uv_close((uv_handle_t *)h, free_handle_cb);
      return ns_fail(L, rc);
    }
    h->data = u;
    u->h = h;
    u->closed = 0;
    if (getsockname((int)fd, (struct sockaddr *)&ss, &len) == 0)
      u->family = ss.ss_family;
    len = sizeof u->upeer.ss;
    if (getpeername((int)fd, (struct sockaddr *)&u->upeer.ss, &len) == 0) {
      u->upeer.len = len;
      u->connected = 1;
    }
  }
  reclass(L, 1);
  lua_pushinteger(L, 1);
  return 1;
}

static int meth_getfamily(lua_State *L) {
  udp_t *u = check_udp(L, 1);
  lua_pushstring(L, ns_family_name(u->family));
  return 1;
}

/* LuaSocket's dirty(): true when a receive would not wait (looks at the
** kernel too), as select() sees it. */
static int sel_ready(void *p, int write);

static int meth_dirty(lua_State *L) {
  lua_pushboolean(L, sel_ready(check_udp(L, 1), 0));
  return 1;
}

/* ---- socket.select (src/select.c asks through these) ---- */

/* Readable: an unclaimed datagram (or error) is queued, or the kernel
** holds one the loop has not read yet. Writable: open (UDP sends do not
** wait for a peer). */
static int sel_ready(void *p, int write) {
  udp_t *u = p;
  if (u->closed) return 0;
  if (write) return 1;
  if (u->nq == u->claims && u->h && !ns_cond_first(&u->readers)) drain(u);
  return u->nq > u->claims;
}

/* Parks a select on u; reading starts, so that a datagram wakes it. */
static int sel_watch(void *p, ns_selnode_t *n, ns_waiter_t *w, int write) {
  udp_t *u = p;
  ns_sel_link(&u->sel, n, w);
  if (!write && u->h && !u->closed) start_reading(u);
  return 1;
}

static const ns_select_ops_t sel_ops = {sel_ready, sel_watch, NULL};

static int meta_gc(lua_State *L) {
  udp_release(to_udp(L, 1));
  return 0;
}

static int meta_tostring(lua_State *L) {
  udp_t *u = to_udp(L, 1);
  lua_pushfstring(L, "udp{%s}: %p", u->closed ? "closed" :
                  u->connected ? "connected" : "unconnected", (void *)u);
  return 1;
}

/* new([family]) -> socket: family "inet", "inet6" or nil (from the first
** address used); "inet6" sockets are IPv6-only, as LuaSocket's udp6(). */
static int lib_new(lua_State *L) {
  int family = ns_family_of(luaL_optstring(L, 1, NULL));
  udp_t *u;
  int rc;
  if (family < 0)
    return luaL_argerror(L, 1, "'inet', 'inet6' or nil expected");
  u = udp_new(L, family);
  if (family == AF_UNSPEC) return 1;
  u->v6only = family == AF_INET6;
  if ((rc = ensure_handle(u, family)) != 0)
    return ns_fail(L, rc);
  return 1;
}

static const luaL_Reg methods[] = {
  {"setsockname", meth_setsockname},
  {"bind", meth_setsockname},
  {"setpeername", meth_setpeername},
  {"connect", meth_setpeername},
  {"send", meth_send},
  {"receive", meth_receive},
  {"recv", meth_receive},
  {"sendto", meth_sendto},
  {"receivefrom", meth_receivefrom},
  {"recvfrom", meth_receivefrom},
  {"datagrams", meth_datagrams},
  {"getsockname", meth_getsockname},
  {"getpeername", meth_getpeername},
  {"settimeout", meth_settimeout},
  {"settimeouts", meth_settimeouts},
  {"gettimeout", meth_gettimeout},
  {"setoption", meth_setoption},
  {"getoption", meth_getoption},
  {"close", meth_close},
  {"getfd", meth_getfd},
  {"setfd", meth_setfd},
  {"getfamily", meth_getfamily},
  {"dirty", meth_dirty},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", meta_gc},
  {"__close", meta_gc},
  {"__tostring", meta_tostring},
  {NULL, NULL}
};

static const luaL_Reg lib[] = {
  {"new", lib_new},
  {NULL, NULL}
};

int luaopen_udp_core(lua_State *L) {
  luaL_newmetatable(L, UDP_MT);
  luaL_setfuncs(L, metamethods, 0);
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_pop(L, 1);
  ns_select_register(L, UDP_MT, &sel_ops);  /* before the copies */
  ns_class_define(L, &udp_kind);     /* one metatable per class; pops */
  luaL_newmetatable(L, READER_MT);
  lua_pushcfunction(L, reader_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, reader_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, lib);
  lua_pushinteger(L, 65507);
  lua_setfield(L, -2, "MAXDATAGRAM");
  return 1;
}
