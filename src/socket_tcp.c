/*
** socket_tcp.c -- "socket.core": LuaSocket's TCP objects as cosockets on
** uv_tcp_t, plus gettime(); socket.select is src/select.c's ns_select,
** options src/sockopt.c's, timeouts util.c's ns_timeout_t.
**
** A tcp_t (userdata, "netsh.tcp") is owned by Lua; its uv_tcp_t by libuv
** from uv_close() until free_handle_cb(). They point at each other and
** either side can detach. One object is a master (no connection yet), a
** client or a server, as in LuaSocket. At most one task waits per
** direction: rd (receive, accept) and wr (send, connect), so one reader
** and one writer can share a socket; a second reader gets "busy".
**
** Reading: once a task asks, the socket keeps reading into one shared
** 64 KiB buffer and read_cb copies into t->in only the bytes nobody has
** taken yet; t->in is freed whenever it drains, so an idle socket holds no
** buffer. Reading stops above READ_HIGH unread bytes when nobody waits
** (backpressure: TCP slows the peer).
**
** Writing: send(2) first; what the kernel does not take is queued
** by uv_write() in chunks of at most WRITE_CHUNK bytes (copied: the Lua
** string may die before the write ends). Queued bytes count as sent: they
** leave in order, and the next send waits for them first.
**
** Polling: with settimeout(0) a task may call receive, send, accept,
** connect or select in a loop that never yields, so no libuv callback
** runs between the calls. Those calls then ask the kernel themselves
** (poll_in, accept_poll, he_poll; send queues nothing), behind what the
** loop already delivered, so the stream keeps its order either way.
**
** Ends: only a clean close (FIN, TLS close_notify) is UV_EOF in rd_err;
** a reset stays ECONNRESET ("closed" to LuaSocket code, but "*a" fails
** and readerror() tells).
**
** Connecting (he_t): names resolve through ns_resolve (c-ares), then
** addresses race as RFC 8305 "Happy Eyeballs" says: IPv6 first, families
** interleaved, the next attempt starts 250 ms later or as soon as one
** fails, the first to connect wins and the others are closed.
**
** TLS (section "TLS" below): an engine from netsh_tls.so (src/tls.h) sits
** between the socket and t->in: read_cb feeds it ciphertext and t->in gets
** plaintext, send encrypts before the usual write path, so receive
** patterns, timeouts and select work unchanged on TLS sockets.
*/
#define _GNU_SOURCE         /* memmem */
#include <limits.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/sendfile.h>
#include "netsh.h"
#include "tls.h"

#define TCP_MT "netsh.tcp"

#define READ_HIGH (64 * 1024)       /* stop reading above, nobody waiting */
#define WRITE_CHUNK (64 * 1024)     /* most bytes queued in libuv at once */
#define KEEP_BUF 4096               /* free t->in when drained above this */
#define HE_DELAY_MS 250             /* RFC 8305 connection attempt delay */
#define CONNECT_TIMEOUT 30.0        /* connect default, DNS included */
#define DEFAULT_BACKLOG 128

enum { S_MASTER, S_CLIENT, S_SERVER };
static const char *const state_names[] = {"master", "client", "server"};

enum { R_LINE, R_ALL, R_COUNT, R_ANY, R_UNTIL };

typedef struct tcp tcp_t;
typedef struct listener listener_t;
static void listener_free(listener_t *l);
typedef struct he he_t;

typedef struct wreq {
  uv_write_t req;
  tcp_t *owner;              /* NULL once the socket let go */
  size_t len;
  char data[1];
} wreq_t;

struct tcp {
  uv_tcp_t *h;               /* NULL when there is no socket */
  unsigned char state;       /* S_* */
  unsigned char closed;      /* close() was called */
  unsigned char reading;     /* uv_read_start is on */
  unsigned char v6only;      /* tcp6(): IPv6 only */
  unsigned char pyaccept;    /* create_server: accept -> conn, ip, port */
  unsigned char ispipe;      /* setfd gave a pipe(2) end: a byte stream */
  int family;                /* AF_UNSPEC until a socket exists */
  int want_family;           /* tcp4()/tcp6(): the only family allowed */
  ns_waiter_t rd, wr;
  ns_buf_t in;               /* received, not yet returned */
  int rd_err;                /* sticky: UV_EOF or an error */
  int wr_err;
  int conn_err;              /* outcome of a connect nobody waited for */
  int acc_err;
  ns_timeout_t tm;           /* settimeout(s) */
  /* the receive in progress */
  int rmode;
  size_t rwant, rscan, rnlen;
  const char *rneedle;       /* receiveuntil: string on the reader's stack */
  double rstart;
  /* the send in progress */
  const char *wdata;         /* string on the writer's stack */
  size_t wlen, wpos, wbase;
  double wstart;
  wreq_t *wreq;              /* queued write, NULL when none */
  /* forward() parked on rd: its destination, and what read_cb sent */
  tcp_t *fdst;
  size_t fsent;              /* bytes read_cb sent (or queued) to fdst */
  int ferr;
  unsigned char fdone;       /* ... and woke the task */
  unsigned fturn;            /* ns_turn() of that wake */
  /* server: connections accepted from libuv, not yet by Lua */
  uv_tcp_t **acq;
  int nacq, cacq, backlog;
  listener_t *lsn;           /* reads the kernel's queue (listen) */
  /* connect */
  he_t *he;
  double t_start, t_dns, t_conn;
  /* stats */
  double birth;
  lua_Integer nrecv, nsent;
  ns_link_t sel;             /* select()s waiting on this socket */
  ns_waiter_t *dns_w;        /* connect() waiting for its name lookup */
  struct sockaddr_storage peer_ss;  /* the peer, kept from the connect: */
  int peer_len;              /* the kernel forgets it once both sides shut */
  ns_optlist_t opts;         /* applied to every new socket */
  /* TLS: engine, handshake, and what a send leaves for the next one */
  const ns_tls_ops_t *tlsops;
  ns_tls_t *tls;             /* NULL: plain TCP */
  unsigned char accepted;    /* from accept(): starttls is the server */
  char *peer;                /* host given to connect(): name to verify */
  unsigned char tls_ready;   /* handshake done */
  unsigned char hs_busy;     /* a task runs the handshake */
  unsigned char hs_poll;     /* ... with settimeout(0): polls the kernel */
  unsigned char wtls;        /* the send in progress is TLS */
  ns_waiter_t hsw;           /* that task, woken by read_cb */
  ns_cond_t hsq;             /* others waiting for the handshake */
  double hs_start, hs_deadline, t_tls;
  size_t wlast;              /* TLS send: last plaintext index */
  ns_buf_t tlsout;           /* ciphertext due before the next send */
};

/* TLS hooks (defined in the TLS section) */
#define TLS_PENDING(t) ((t)->tls && !(t)->tls_ready && !(t)->closed)
enum { HS_CALL, HS_RECEIVE, HS_RECEIVEANY, HS_UNTIL, HS_SEND };
static int tls_input(tcp_t *t, const char *p, size_t n);
static int tls_then(lua_State *L, tcp_t *t, int which);
static int tls_attach(lua_State *L, tcp_t *t, int opts, int server,
                      const char *host);
static void tls_release(tcp_t *t);
static int tls_flush(tcp_t *t, int force);
static int tls_send_poll(lua_State *L, tcp_t *t);
static int tls_encrypt(lua_State *L, tcp_t *t, const char *p, size_t n);
static void tls_notify(tcp_t *t);
static const char *tcp_strerror(tcp_t *t, int code);

static char shared_rbuf[64 * 1024];

static void free_handle_cb(uv_handle_t *h) { free(h); }

/* ---- timeouts (ns_timeout_t: LuaSocket's block/total, OpenResty's
** per-operation settimeouts instead of them when set) ---- */

static double read_timeout(tcp_t *t) {
  return ns_timeout_op(&t->tm, t->tm.read, t->rstart);
}

static double send_timeout(tcp_t *t) {
  return ns_timeout_op(&t->tm, t->tm.send, t->wstart);
}

/* ---- objects ---- */

static tcp_t *tcp_new(lua_State *L, int state) {
  /* user value 1: a server's tls context, for the sockets it accepts */
  tcp_t *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);        /* valid and socket-less before any */
  ns_list_init(&t->sel);
  t->state = (unsigned char)state;  /* resource is acquired */
  t->family = AF_UNSPEC;
  t->want_family = AF_UNSPEC;
  ns_timeout_init(&t->tm);
  t->birth = ns_now();
  luaL_setmetatable(L, TCP_MT);            /* class 0: tcp{master} */
  return t;
}

/* The class (class.c) follows the state and the family: its metatable
** answers `class` as a plain field. */
static const char *const class_names[] = {
  "tcp{master}", "tcp{client}", "tcp{server}",
  "unix{master}", "unix{client}", "unix{server}", "pipe{client}"};
static const ns_kind_t tcp_kind = {TCP_MT, class_names, 7};

static int class_of(const tcp_t *t) {
  int local = t->family == AF_UNIX || t->want_family == AF_UNIX;
  if (t->ispipe && t->state == S_CLIENT) return 6;   /* proc's streams */
  return local * 3 + t->state;
}

/* After a change of state or family, with the object at i. */
static void reclass(lua_State *L, int i, const tcp_t *t) {
  int k;
  if (ns_class_test(L, i, &tcp_kind, &k) && k != class_of(t))
    ns_class_set(L, i, &tcp_kind, class_of(t));
}

/* For metamethods (__gc must not set a metatable) and tests. */
static tcp_t *to_tcp(lua_State *L, int i) {
  return ns_class_check(L, i, &tcp_kind, NULL);
}

/* self of a method; a state reached in a callback (a connection made
** while nobody waited) updates the class here. */
static tcp_t *check_tcp(lua_State *L, int i) {
  int k;
  tcp_t *t = ns_class_check(L, i, &tcp_kind, &k);
  if (k != class_of(t)) ns_class_set(L, i, &tcp_kind, class_of(t));
  return t;
}

static tcp_t *check_state(lua_State *L, int i, int state) {
  tcp_t *t = check_tcp(L, i);
  if (t->state != state) {
    const char *msg = lua_pushfstring(L, "%stcp{%s} expected, got tcp{%s}",
        state == S_CLIENT ? "socket is not connected: " : "",
        state_names[state], state_names[t->state]);
    luaL_argerror(L, i, msg);
  }
  return t;
}

static int fd_of(tcp_t *t) {
  uv_os_fd_t fd;
  if (t->h == NULL || uv_fileno((uv_handle_t *)t->h, &fd) != 0) return -1;
  return fd;
}

static void notify_select(tcp_t *t) { ns_sel_notify(&t->sel); }

/* Drop bytes from t->in; give the memory back once drained. */
static void in_consume(tcp_t *t, size_t n) {
  ns_buf_consume(&t->in, n);
  if (t->in.len == 0 && t->in.cap > KEEP_BUF) ns_buf_free(&t->in);
}

/* Options the user set before this socket existed, then v6only. */
static int apply_opts(tcp_t *t, uv_tcp_t *h, int family) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)h, &fd) != 0) return UV_EBADF;
  if (family == AF_INET6) {
    /* "::" is dual-stack unless tcp6() or the user said otherwise */
    int on = t->v6only;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  }
  return ns_optlist_apply(&t->opts, fd, family);
}

/* A new uv_tcp_t with its socket made, options applied. */
static int new_handle(tcp_t *t, int family, uv_tcp_t **out) {
  uv_tcp_t *h = malloc(sizeof *h);
  int rc;
  if (h == NULL) return UV_ENOMEM;
  if ((rc = uv_tcp_init_ex(ns_loop(), h, (unsigned)family)) != 0) {
    free(h);
    return rc;
  }
  h->data = NULL;
  if ((rc = apply_opts(t, h, family)) != 0) {
    uv_close((uv_handle_t *)h, free_handle_cb);
    return rc;
  }
  *out = h;
  return 0;
}

static int bind_fd(uv_tcp_t *h, const ns_addr_t *a) {
  uv_os_fd_t fd;
  int on = 1;
  if (uv_fileno((uv_handle_t *)h, &fd) != 0) return UV_EBADF;
  /* as libuv and LuaSocket's socket.bind do; errors now, not at listen */
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0) return -errno;
  return 0;
}

/* ---- Happy Eyeballs ---- */

typedef struct {
  he_t *he;
  uv_tcp_t *h;               /* NULL once closed or handed over */
  uv_connect_t req;
  int early;                 /* won by he_poll, req still pending */
} attempt_t;

struct he {
  tcp_t *owner;              /* NULL once detached */
  int n, next, active, refs, done, err;
  int sequential;            /* bound to a local address: no racing */
  ns_addr_t local;
  ns_addr_t addrs[NS_MAXADDRS];
  attempt_t att[NS_MAXADDRS];
  uv_timer_t timer;
};

static void he_unref(he_t *he) {
  if (--he->refs == 0) free(he);
}

static void attempt_close_cb(uv_handle_t *h) {
  attempt_t *a = h->data;
  free(h);
  he_unref(a->he);
}

static void timer_close_cb(uv_handle_t *h) { he_unref(h->data); }

static void attempt_close(attempt_t *a) {
  if (a->h == NULL) return;
  uv_close((uv_handle_t *)a->h, attempt_close_cb);
  a->h = NULL;
}

/* Ends the race: closes the timer and every attempt still running. */
static void he_end(he_t *he) {
  int i;
  he->done = 1;
  uv_close((uv_handle_t *)&he->timer, timer_close_cb);
  for (i = 0; i < he->n; i++) attempt_close(&he->att[i]);
}

static void he_fail(he_t *he) {
  tcp_t *t = he->owner;
  he_end(he);
  if (t == NULL) return;
  t->he = NULL;
  t->conn_err = he->err ? he->err : UV_ECONNREFUSED;
  ns_wake(&t->wr, t->conn_err);
  notify_select(t);
}

static void he_launch(he_t *he);

/* Remembers the peer's address while the kernel knows it, so
** getpeername() answers until close() even after both sides shut down. */
static void keep_peer(tcp_t *t) {
  t->peer_len = sizeof t->peer_ss;
  if (t->h == NULL || uv_tcp_getpeername(t->h,
      (struct sockaddr *)&t->peer_ss, &t->peer_len) != 0)
    t->peer_len = 0;
}

/* An attempt's outcome: from connect_cb, or from he_poll (the kernel
** said it before libuv could). */
static void attempt_end(attempt_t *a, int status) {
  he_t *he = a->he;
  tcp_t *t = he->owner;
  he->active--;
  if (status != 0) {
    he->err = status;
    attempt_close(a);
    he_launch(he);          /* RFC 8305: a failure starts the next now */
    return;
  }
  if (t == NULL) {           /* nobody wants it any more */
    he_end(he);
    return;
  }
  /* the winner: hand its handle to the socket, close the rest */
  t->h = a->h;
  t->h->data = t;
  a->h = NULL;
  if (!a->early) he->refs--;  /* else when libuv ends the request */
  he_end(he);
  t->he = NULL;
  t->state = S_CLIENT;
  t->family = ((struct sockaddr *)&he->addrs[a - he->att].ss)->sa_family;
  t->t_conn = ns_now() - t->t_start;
  keep_peer(t);
  ns_wake(&t->wr, 0);
  notify_select(t);
}

static void connect_cb(uv_connect_t *req, int status) {
  attempt_t *a = req->data;
  if (a->early) {                /* he_poll gave it to the socket */
    he_unref(a->he);
    return;
  }
  if (a->he->done || a->h == NULL) return;   /* closed by he_end */
  attempt_end(a, status);
}

/* connect() again with settimeout(0), LuaSocket's way to poll: the loop
** may not have run since, so ask the kernel how each attempt stands. A
** connected one wins now; libuv finishes its request later (libuv
** delays reads and writes on the handle until then, and send(2) works
** already). */
static void he_poll(tcp_t *t) {
  he_t *he = t->he;
  int i;
  for (i = 0; i < he->n && t->he == he; i++) {
    attempt_t *a = &he->att[i];
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss, elen = sizeof(int);
    uv_os_fd_t fd;
    int err = 0;
    if (a->h == NULL || uv_fileno((uv_handle_t *)a->h, &fd) != 0) continue;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) err = errno;
    if (err != 0) {
      attempt_end(a, -err);
    } else if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
      a->early = 1;
      attempt_end(a, 0);
    }
  }
}

static void he_timer_cb(uv_timer_t *h) { he_launch(h->data); }

static int start_attempt(he_t *he, int i) {
  attempt_t *a = &he->att[i];
  const ns_addr_t *addr = &he->addrs[i];
  int family = ((const struct sockaddr *)&addr->ss)->sa_family, rc;
  uv_tcp_t *h;
  if ((rc = new_handle(he->owner, family, &h)) != 0) return rc;
  a->he = he;
  a->h = h;
  h->data = a;
  he->refs++;
  if (he->sequential &&
      ((struct sockaddr *)&he->local.ss)->sa_family == family &&
      (rc = bind_fd(h, &he->local)) != 0) {
    attempt_close(a);
    return rc;
  }
  a->req.data = a;
  rc = uv_tcp_connect(&a->req, h, (const struct sockaddr *)&addr->ss,
                      connect_cb);
  if (rc != 0) {
    attempt_close(a);
    return rc;
  }
  return 0;
}

/* Starts the next attempt that can start; fails when none is left. */
static void he_launch(he_t *he) {
  if (he->done || he->owner == NULL) return;
  while (he->next < he->n) {
    int rc = start_attempt(he, he->next++);
    if (rc == 0) {
      he->active++;
      if (he->next < he->n && !he->sequential)
        uv_timer_start(&he->timer, he_timer_cb, HE_DELAY_MS, 0);
      return;
    }
    he->err = rc;
  }
  if (he->active == 0) he_fail(he);
}

/* The socket gives up on its connect (timeout, close, GC). */
static void he_detach(tcp_t *t) {
  he_t *he = t->he;
  if (he == NULL) return;
  t->he = NULL;
  he->owner = NULL;
  if (!he->done) he_end(he);
}

/* Orders addresses as RFC 8305 section 4 does: IPv6 first, then the
** families alternate, each in the resolver's order. */
static int he_order(ns_addr_t *out, const ns_addr_t *in, int n, int want) {
  int v6[NS_MAXADDRS], v4[NS_MAXADDRS], n6 = 0, n4 = 0, i, k = 0;
  for (i = 0; i < n; i++) {
    if (in[i].ss.ss_family == AF_INET6 && want != AF_INET) v6[n6++] = i;
    if (in[i].ss.ss_family == AF_INET && want != AF_INET6) v4[n4++] = i;
  }
  for (i = 0; i < n6 || i < n4; i++) {
    if (i < n6) out[k++] = in[v6[i]];
    if (i < n4) out[k++] = in[v4[i]];
  }
  return k;
}

static int he_start(tcp_t *t, const ns_addr_t *addrs, int n) {
  he_t *he = calloc(1, sizeof *he);
  if (he == NULL) return UV_ENOMEM;
  he->n = he_order(he->addrs, addrs, n, t->want_family);
  if (he->n == 0) {
    free(he);
    return UV_EAI_ADDRFAMILY;
  }
  he->owner = t;
  he->refs = 1;                   /* the timer */
  uv_update_time(ns_loop());      /* 250 ms from now, not from a stale now */
  uv_timer_init(ns_loop(), &he->timer);
  he->timer.data = he;
  if (t->h) {
    /* a bound master: every attempt binds the same local address */
    int len = (int)sizeof he->local.ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&he->local.ss;
    if (uv_tcp_getsockname(t->h, (struct sockaddr *)&he->local.ss,
                           &len) == 0 && s4->sin_port != 0) {
      he->local.len = (socklen_t)len;    /* (sin6_port sits there too) */
      he->sequential = 1;
    }
    t->h->data = NULL;
    uv_close((uv_handle_t *)t->h, free_handle_cb);
    t->h = NULL;
  }
  t->he = he;
  he_launch(he);
  return 0;
}

/* ---- reading ---- */

/* Reads land in the shared buffer (one loop thread: one buffer for all)
** and are copied to the socket's t->in. When a task waits on the socket
** and nothing is buffered, the read goes to the spare block instead: a
** big read (over KEEP_BUF) becomes t->in itself, shrunk to what came, so
** a big message is not copied once more; a small one is copied to t->in
** as from the shared buffer, and the block stays for the next read. (A
** block malloc'd per read and freed after a small one cost an HTTP
** client more than the copy saved.) An idle socket holds no buffer. */
#define INPLACE_READ (64 * 1024)
static char *spare_block;

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  tcp_t *t = h->data;
  (void)suggested;
  if (t && !t->tls && t->rd.task && t->in.len == 0 && !t->fdst) {
    if (spare_block == NULL) spare_block = malloc(INPLACE_READ);
    if (spare_block != NULL) {
      buf->base = spare_block;
      buf->len = INPLACE_READ;
      return;
    }
  }
  buf->base = shared_rbuf;
  buf->len = sizeof shared_rbuf;
}

/* A read of n > KEEP_BUF bytes into the spare block (see alloc_cb): the
** block becomes t->in (empty before), shrunk in place when much of it is
** unused; the next read mallocs another spare. */
static void adopt_spare(tcp_t *t, ssize_t n) {
  char *p;
  ns_buf_free(&t->in);
  t->in.data = spare_block;
  t->in.cap = INPLACE_READ;
  t->in.off = 0;
  t->in.len = (size_t)n;
  spare_block = NULL;
  if (t->in.cap - (size_t)n >= 4096 &&
      (p = realloc(t->in.data, (size_t)n)) != NULL) {
    t->in.data = p;
    t->in.cap = (size_t)n;
  }
}

/* Could the parked reader's pattern complete now? (avoid useless wakes) */
static int reader_ready(tcp_t *t, size_t fresh) {
  if (t->rd_err) return 1;
  switch (t->rmode) {
    case R_LINE: {
      const char *p = ns_buf_ptr(&t->in);
      size_t from = t->in.len - fresh;
      return memchr(p + from, '\n', fresh) != NULL;
    }
    case R_ALL: return 0;
    case R_COUNT: return t->in.len >= t->rwant;
    case R_ANY: return t->in.len > 0;
    default: return 1;
  }
}

static void stop_reading(tcp_t *t) {
  if (t->reading) uv_read_stop((uv_stream_t *)t->h);
  t->reading = 0;
}

/* What came from the kernel, by read_cb or by poll_in: n bytes at p
** (n > 0; inplace: already at the end of t->in), or the end of the
** stream (n < 0: UV_EOF or an error, sticky in t->rd_err). */
static void on_input(tcp_t *t, ssize_t n, const char *p, int inplace) {
  size_t before = inplace ? 0 : t->in.len;
  int rc;
  if (n > 0) {
    rc = inplace ? 0
       : t->tls ? tls_input(t, p, (size_t)n)          /* plaintext */
       : ns_buf_append(&t->in, p, (size_t)n);
    if (rc != 0) {
      t->rd_err = rc;
      stop_reading(t);
    } else {
      t->nrecv += n;
      if (t->in.len >= READ_HIGH && t->rd.task == NULL)
        stop_reading(t);     /* backpressure: TCP slows the peer */
    }
  } else {
    t->rd_err = (int)n;
    stop_reading(t);
  }
  if (t->tls) ns_wake(&t->hsw, 0);       /* a handshake waits for input */
  /* progress restarts a block timeout: the reader re-parks afresh */
  if (t->rd.task && (t->tm.block >= 0 || t->tm.read >= 0 ||
                     reader_ready(t, t->in.len - before)))
    ns_wake(&t->rd, 0);
  notify_select(t);
}

/* A settimeout(0) caller polls without yielding, so the loop and read_cb
** never run: read from the kernel directly, as LuaSocket's non-blocking
** receive does. libuv keeps no bytes of its own between read_cb calls,
** so t->in followed by the kernel's queue is the stream in order (a
** pipe has no recv: read(), which O_NONBLOCK keeps from waiting).
** Returns 1 when bytes or the end came, 0 when the kernel has none. */
static int poll_in(tcp_t *t) {
  int fd = fd_of(t);
  ssize_t r;
  if (fd < 0 || t->rd_err) return 0;
  do r = t->ispipe ? read(fd, shared_rbuf, sizeof shared_rbuf)
                   : recv(fd, shared_rbuf, sizeof shared_rbuf, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  on_input(t, r > 0 ? r : r == 0 ? UV_EOF : -errno, shared_rbuf, 0);
  return 1;
}

static size_t fwd_direct(tcp_t *src, const char *p, size_t n);

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tcp_t *t = s->data;
  int inplace;
  if (t == NULL) return;
  inplace = n > KEEP_BUF && buf->base == spare_block;
  if (inplace) adopt_spare(t, n);    /* t->in holds the bytes already */
  if (n == UV_EOF) {
    /* libuv says UV_EOF also for a hang-up (POLLHUP) seen after a short
    ** read, which is what a reset (RST) after data looks like: read on
    ** until the kernel says itself how the stream ended, as LuaSocket's
    ** recv would (0: the peer's FIN; ECONNRESET: cut) */
    t->reading = 0;                  /* libuv has stopped */
    while (poll_in(t) && t->rd_err == 0) {}
    if (t->rd_err == 0) on_input(t, UV_EOF, NULL, 0);
    return;
  }
  if (n > 0 && !inplace && t->fdst && t->in.len == 0) {
    size_t k = fwd_direct(t, buf->base, (size_t)n);
    if (k == (size_t)n) return;
    /* the rest waits in t->in for the task; the kernel keeps what
    ** comes after it (one buffer per connection at most, not one per
    ** read until the task runs) */
    on_input(t, n - (ssize_t)k, buf->base + k, 0);
    if (t->rd.task == NULL) stop_reading(t);
    return;
  }
  if (n != 0) on_input(t, n, buf->base, inplace);
}

static void start_reading(tcp_t *t) {
  if (t->reading || t->rd_err || t->h == NULL) return;
  if (uv_read_start((uv_stream_t *)t->h, alloc_cb, read_cb) == 0)
    t->reading = 1;
}

/* Pushes prefix .. bytes[0, n) with every CR removed if strip. */
static void push_data(lua_State *L, const char *p, size_t n, int strip) {
  size_t plen = 0;
  const char *prefix = lua_tolstring(L, 3, &plen);
  if (!strip && plen == 0) {
    lua_pushlstring(L, p, n);
  } else {
    luaL_Buffer b;
    char *d = luaL_buffinitsize(L, &b, plen + n);
    size_t i, k = 0;
    if (plen) memcpy(d, prefix, plen);
    k = plen;
    if (strip) {
      for (i = 0; i < n; i++) if (p[i] != '\r') d[k++] = p[i];
    } else {
      memcpy(d + k, p, n);
      k += n;
    }
    luaL_pushresultsize(&b, k);
  }
}

/* receive's failure: nil, err, partial (what was read, consumed). */
static int recv_fail(lua_State *L, tcp_t *t, int code) {
  size_t n = t->rmode == R_COUNT && t->in.len > t->rwant ? t->rwant
                                                          : t->in.len;
  lua_pushnil(L);
  lua_pushstring(L, tcp_strerror(t, code));
  if (t->rmode == R_ANY || t->rmode == R_UNTIL) n = t->in.len;
  push_data(L, ns_buf_ptr(&t->in), n, t->rmode == R_LINE);
  in_consume(t, n);
  return 3;
}

/* Completes the receive in progress from t->in if it can: returns the
** number of results pushed, 0 when more bytes are needed. */
static int recv_try(lua_State *L, tcp_t *t) {
  const char *p = ns_buf_ptr(&t->in);
  size_t len = t->in.len;
  switch (t->rmode) {
    case R_LINE: {
      const char *nl = len > t->rscan ?
        memchr(p + t->rscan, '\n', len - t->rscan) : NULL;
      if (nl == NULL) {
        t->rscan = len;
        return 0;
      }
      push_data(L, p, (size_t)(nl - p), 1);
      in_consume(t, (size_t)(nl - p) + 1);
      return 1;
    }
    case R_ALL:
      /* only a clean end (FIN, close_notify) completes it: after a
      ** reset the data is cut, nil, "closed", partial as LuaSocket's */
      if (t->rd_err == 0) return 0;
      if (t->rd_err != UV_EOF) return recv_fail(L, t, t->rd_err);
      if (len == 0) return recv_fail(L, t, UV_EOF);  /* as LuaSocket */
      push_data(L, p, len, 0);
      in_consume(t, len);
      return 1;
    case R_COUNT:
      if (len < t->rwant) return 0;
      push_data(L, p, t->rwant, 0);
      in_consume(t, t->rwant);
      return 1;
    case R_ANY: {
      size_t n = len < t->rwant ? len : t->rwant;
      if (n == 0) return 0;
      push_data(L, p, n, 0);
      in_consume(t, n);
      return 1;
    }
    case R_UNTIL: {
      /* data before the needle, true | up to rwant bytes that cannot be
      ** part of a match, false */
      size_t nl = t->rnlen, from = t->rscan, safe;
      const char *hit = NULL;
      if (len >= nl && len - nl + 1 > from)
        hit = memmem(p + from, len - from, t->rneedle, nl);
      if (hit) {
        size_t pos = (size_t)(hit - p);
        if (pos > t->rwant) {
          push_data(L, p, t->rwant, 0);
          in_consume(t, t->rwant);
          lua_pushboolean(L, 0);
          return 2;
        }
        push_data(L, p, pos, 0);
        in_consume(t, pos + nl);
        lua_pushboolean(L, 1);
        return 2;
      }
      safe = len >= nl ? len - nl + 1 : 0;
      t->rscan = safe;
      if (safe >= t->rwant && t->rwant > 0) {
        push_data(L, p, t->rwant, 0);
        in_consume(t, t->rwant);
        t->rscan = 0;
        lua_pushboolean(L, 0);
        return 2;
      }
      return 0;
    }
  }
  return 0;
}

static int recv_k(lua_State *L, int status, lua_KContext ctx);

/* Try, else park until bytes arrive, the timeout or an error. With no
** time left (settimeout(0)), the kernel is asked first (poll_in). */
static int recv_step(lua_State *L, tcp_t *t) {
  double left = read_timeout(t);
  int n;
  for (;;) {
    if ((n = recv_try(L, t)) != 0) return n;
    if (t->rd_err) return recv_fail(L, t, t->rd_err);
    if (left != 0 || !poll_in(t)) break;
  }
  start_reading(t);
  /* what a polled TLS send left leaves while this task waits */
  if (left != 0 && t->tls && t->tlsout.len) tls_flush(t, 1);
  t->rd.cancel = NULL;        /* reading goes on; bytes wait in t->in */
  return ns_wait(L, &t->rd, left, recv_k, (lua_KContext)t);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *t = (tcp_t *)ctx;
  int n;
  (void)status;
  if (t->closed) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    push_data(L, "", 0, 0);
    return 3;
  }
  if ((n = recv_try(L, t)) != 0) return n;
  if (t->rd.status == UV_ETIMEDOUT) return recv_fail(L, t, UV_ETIMEDOUT);
  return recv_step(L, t);
}

/* Common head of the receive family: 0 to go on, else results pushed. */
static int recv_begin(lua_State *L, tcp_t *t) {
  if (t->closed || t->h == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    push_data(L, "", 0, 0);
    return 3;
  }
  if (t->rd.task) return ns_fail(L, NS_EBUSY);
  t->rscan = 0;
  t->rstart = ns_now();
  t->fdst = NULL;             /* a forward that was cancelled parked */
  return 0;
}

/* receive([pattern [, prefix]]) -> data | nil, err, partial */
static int meth_receive(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_CLIENT);
  int r, mode;
  size_t want = 0;
  if (TLS_PENDING(t)) return tls_then(L, t, HS_RECEIVE);
  if (!lua_isnoneornil(L, 3)) luaL_checkstring(L, 3);
  lua_settop(L, 3);
  if (lua_isnil(L, 2)) {
    mode = R_LINE;
  } else if (lua_isnumber(L, 2)) {    /* numbers and numeric strings */
    lua_Number n = lua_tonumber(L, 2);
    size_t plen = lua_isnil(L, 3) ? 0 : lua_rawlen(L, 3);
    luaL_argcheck(L, n >= 0, 2, "invalid receive pattern");
    if ((size_t)n <= plen && plen > 0) {   /* the prefix has it all */
      if ((r = recv_begin(L, t)) != 0) return r;
      lua_pushvalue(L, 3);
      return 1;
    }
    mode = R_COUNT;
    want = (size_t)n - plen;
  } else {
    const char *pat = luaL_checkstring(L, 2);
    if (*pat == '*') pat++;          /* LuaSocket 2 and 3 spellings */
    if (strcmp(pat, "l") == 0) mode = R_LINE;
    else if (strcmp(pat, "a") == 0) mode = R_ALL;
    else return luaL_argerror(L, 2, "invalid receive pattern");
  }
  if ((r = recv_begin(L, t)) != 0) return r;
  t->rmode = mode;
  t->rwant = want;
  return recv_step(L, t);
}

/* receiveany(max) -> up to max bytes, waiting only when there are none */
static int meth_receiveany(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_CLIENT);
  lua_Integer max = luaL_checkinteger(L, 2);
  int r;
  if (TLS_PENDING(t)) return tls_then(L, t, HS_RECEIVEANY);
  luaL_argcheck(L, max > 0, 2, "positive size expected");
  lua_settop(L, 2);
  lua_pushnil(L);             /* no prefix */
  if ((r = recv_begin(L, t)) != 0) return r;
  t->rmode = R_ANY;
  t->rwant = (size_t)max;
  return recv_step(L, t);
}

/* receiveuntil_raw(needle [, max]) -> data, found | nil, err, partial
** (lua/socket.lua builds OpenResty's receiveuntil iterator on it) */
static int meth_receiveuntil_raw(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_CLIENT);
  size_t nl;
  const char *needle = luaL_checklstring(L, 2, &nl);
  lua_Integer max = luaL_optinteger(L, 3, 0);
  int r;
  luaL_argcheck(L, nl > 0, 2, "empty pattern");
  if (TLS_PENDING(t)) return tls_then(L, t, HS_UNTIL);
  lua_settop(L, 2);           /* the needle stays on the stack */
  lua_pushnil(L);             /* no prefix */
  if ((r = recv_begin(L, t)) != 0) return r;
  t->rmode = R_UNTIL;
  t->rneedle = needle;
  t->rnlen = nl;
  t->rwant = max > 0 ? (size_t)max : (size_t)-1;
  return recv_step(L, t);
}

/* ---- writing ---- */

static void write_cb(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  tcp_t *t = w->owner;
  free(w);
  if (t == NULL) return;
  t->wreq = NULL;
  if (status < 0 && t->wr_err == 0) t->wr_err = status;
  ns_wake(&t->wr, status);
  notify_select(t);
}

static int send_k(lua_State *L, int status, lua_KContext ctx);

static int send_fail(lua_State *L, tcp_t *t, int code) {
  size_t last = t->wbase + t->wpos;
  if (t->wtls) {
    /* TLS records cannot be cut: on timeout the rest leaves with the next
    ** send and all the plaintext counts; otherwise none of it does */
    last = t->wbase;
    if (code == UV_ETIMEDOUT && t->wpos < t->wlen &&
        ns_buf_append(&t->tlsout, t->wdata + t->wpos,
                      t->wlen - t->wpos) == 0)
      last = t->wlast;
    t->wtls = 0;
  }
  lua_pushnil(L);
  lua_pushstring(L, tcp_strerror(t, code));
  lua_pushinteger(L, (lua_Integer)last);
  return 3;
}

/* Queues up to WRITE_CHUNK bytes of the rest (copied: the Lua string
** may be gone before libuv is done); queued bytes count as sent. */
static int queue_chunk(tcp_t *t) {
  size_t left = t->wlen - t->wpos;
  size_t c = left < WRITE_CHUNK ? left : WRITE_CHUNK;
  wreq_t *w = malloc(sizeof *w + c);
  uv_buf_t b;
  int rc;
  if (w == NULL) return UV_ENOMEM;
  w->owner = t;
  w->len = c;
  memcpy(w->data, t->wdata + t->wpos, c);
  b = uv_buf_init(w->data, (unsigned)c);
  if ((rc = uv_write(&w->req, (uv_stream_t *)t->h, &b, 1, write_cb)) != 0) {
    free(w);
    return rc;
  }
  t->wreq = w;
  t->wpos += c;
  t->nsent += (lua_Integer)c;
  return 0;
}

/* uv_try_write() without the write(2) path: send(2) skips the VFS layer
** (vfs_write + fdget_pos were ~6% of a busy server's CPU, perf says).
** Only called with nothing queued in libuv, as uv_try_write requires. */
static int try_send(tcp_t *t, const char *p, size_t n) {
  int fd = fd_of(t);
  ssize_t r;
  if (fd < 0) return UV_EBADF;
  /* behind bytes libuv still holds (a TLS alert, a queued chunk) */
  if (uv_stream_get_write_queue_size((uv_stream_t *)t->h) > 0)
    return UV_EAGAIN;
  do r = t->ispipe ? write(fd, p, n)     /* O_NONBLOCK; SIGPIPE handled */
                   : send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r >= 0) return (int)r;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return UV_EAGAIN;
  return -errno;
}

/* A queued chunk libuv has written in full is done, even before its
** write_cb runs (at the next loop turn): a task polling with
** settimeout(0) never lets the loop run, and may go on sending. (Only a
** write that succeeded leaves libuv's queue before its callback.) */
static void wreq_settle(tcp_t *t) {
  if (t->wreq && t->h &&
      uv_stream_get_write_queue_size((uv_stream_t *)t->h) == 0) {
    t->wreq->owner = NULL;          /* write_cb just frees it */
    t->wreq = NULL;
  }
}

/* Writes what the kernel takes now, queues a chunk of the rest and parks
** while one is queued. Returns the last index sent, LuaSocket style.
** settimeout(0) queues nothing: what the kernel took is what was sent,
** as LuaSocket's non-blocking send says, and nothing waits for a loop
** that a polling task may never let run. */
static int send_step(lua_State *L, tcp_t *t) {
  int poll = send_timeout(t) == 0 && !t->wtls;
  while (t->wreq == NULL && t->wpos < t->wlen) {
    size_t left = t->wlen - t->wpos;
    size_t len = left > 0x40000000 ? 0x40000000 : left;
    int n;
    if (t->wr_err) return send_fail(L, t, t->wr_err);
    n = try_send(t, t->wdata + t->wpos, len);
    if (n > 0) {
      t->wpos += (size_t)n;
      t->nsent += n;
      if ((size_t)n == len) continue;
    } else if (n != UV_EAGAIN) {
      t->wr_err = n;
      return send_fail(L, t, n);
    }
    /* the kernel is full */
    if (poll) return send_fail(L, t, UV_ETIMEDOUT);
    if ((n = queue_chunk(t)) != 0) {
      t->wr_err = n;
      return send_fail(L, t, n);
    }
  }
  if (t->wreq == NULL) {
    if (t->wr_err) return send_fail(L, t, t->wr_err);
    lua_pushinteger(L, (lua_Integer)(t->wtls ? t->wlast
                                             : t->wbase + t->wlen));
    if (t->wtls) {
      t->wtls = 0;
      if (t->tlsout.len) tls_flush(t, 0);  /* output queued meanwhile */
    }
    return 1;
  }
  t->wr.cancel = NULL;        /* the queued chunk still leaves */
  return ns_wait(L, &t->wr, send_timeout(t), send_k,
                 (lua_KContext)t);
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *t = (tcp_t *)ctx;
  (void)status;
  if (t->closed) return send_fail(L, t, NS_ECLOSED);
  if (t->wr_err) return send_fail(L, t, t->wr_err);
  if (t->wreq && t->wr.status == UV_ETIMEDOUT)
    return send_fail(L, t, UV_ETIMEDOUT);
  return send_step(L, t);
}

/* Adds the fragments of the table at idx (strings, numbers, tables of
** them, as OpenResty's send takes) to b; raises on anything else. */
static void add_fragments(lua_State *L, luaL_Buffer *b, int idx, int depth) {
  lua_Integer k, n = luaL_len(L, idx);
  if (depth > 32)
    luaL_argerror(L, 2, "table of strings expected (nested too deep)");
  for (k = 1; k <= n; k++) {
    int type = lua_rawgeti(L, idx, k);
    if (type == LUA_TTABLE) {
      add_fragments(L, b, lua_gettop(L), depth + 1);
      lua_pop(L, 1);
    } else if (type == LUA_TSTRING || type == LUA_TNUMBER) {
      luaL_addvalue(b);
    } else {
      luaL_argerror(L, 2, lua_pushfstring(L, "table of strings expected, "
                    "got %s at index %I", lua_typename(L, type), k));
    }
  }
}

/* send(data [, i [, j]]) -> last index | nil, err, last index sent.
** data may also be a table of strings, nested or not (OpenResty). */
static int meth_send(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_CLIENT);
  size_t len;
  const char *data;
  lua_Integer i, j;
  if (TLS_PENDING(t)) return tls_then(L, t, HS_SEND);
  if (lua_istable(L, 2)) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    add_fragments(L, &b, 2, 0);
    luaL_pushresult(&b);
    lua_replace(L, 2);
  }
  data = luaL_checklstring(L, 2, &len);
  i = luaL_optinteger(L, 3, 1);
  j = luaL_optinteger(L, 4, -1);
  if (i < 0) i = (lua_Integer)len + i + 1;
  if (i < 1) i = 1;
  if (j < 0) j = (lua_Integer)len + j + 1;
  if (j > (lua_Integer)len) j = (lua_Integer)len;
  lua_settop(L, 2);           /* data stays on the stack while parked */
  if (t->closed || t->h == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, i - 1);
    return 3;
  }
  if (t->wr.task) return ns_fail(L, NS_EBUSY);
  t->wdata = data + (i - 1);
  t->wlen = j >= i ? (size_t)(j - i + 1) : 0;
  t->wpos = 0;
  t->wbase = (size_t)(i - 1);
  t->wstart = ns_now();
  t->wtls = 0;
  wreq_settle(t);
  if (t->tls) {
    /* encrypt now: the ciphertext (stack slot 3) takes the data's place */
    int rc;
    if (send_timeout(t) == 0) return tls_send_poll(L, t);
    rc = tls_encrypt(L, t, t->wdata, t->wlen);
    if (rc != 0) return send_fail(L, t, rc);
    t->wtls = 1;
    t->wlast = t->wbase + t->wlen;
    t->wdata = lua_tolstring(L, 3, &t->wlen);
  }
  if (t->wreq) {
    /* an earlier chunk is still queued: wait for it before this one */
    t->wr.cancel = NULL;
    return ns_wait(L, &t->wr, send_timeout(t), send_k,
                   (lua_KContext)t);
  }
  return send_step(L, t);
}

/* ---- forwarding ---- */

/* forward_raw(dst [, max]) moves what src receives to dst without a Lua
** string. While the task waits, read_cb sends each read straight from
** the shared buffer (fwd_direct), as a C echo server does in its read
** handler: no buffer per connection, no copy, nothing held between the
** read and the send, no garbage (the collector's cycles were paced by
** the strings receiveany made). Bytes already in src->in go from there
** (fwd_send). Either way at most WRITE_CHUNK bytes: what the kernel does
** not take is copied whole into one queued chunk at once, so the source
** bytes are not needed once the call returns or parks. lua/socket.lua's
** forward() takes the plain path (false) for TLS, polling, or a
** destination with a chunk still queued. */
static int fwd_k(lua_State *L, int status, lua_KContext ctx);

/* Can dst take a forward's bytes now? */
static int fwd_ready(tcp_t *dst) {
  if (dst->closed || dst->h == NULL || dst->tls || dst->wr.task)
    return 0;
  wreq_settle(dst);
  return dst->wreq == NULL;
}

/* send(2)s p[0, n) on dst (n <= WRITE_CHUNK), queueing what the kernel
** leaves; 0 or an error code. base: bytes this forward sent before, so
** dst->wbase + dst->wpos counts them all (send_fail, send_k). */
static int fwd_write(tcp_t *dst, const char *p, size_t n, size_t base) {
  int rc = 0;
  dst->wdata = p;
  dst->wlen = n;
  dst->wpos = 0;
  dst->wbase = base;
  dst->wtls = 0;
  while (dst->wpos < n && rc == 0) {
    int k = dst->wr_err ? dst->wr_err : try_send(dst, p + dst->wpos,
                                                 n - dst->wpos);
    if (k > 0) {
      dst->wpos += (size_t)k;
      dst->nsent += k;
    } else if (k == UV_EAGAIN) {
      rc = queue_chunk(dst);  /* the rest (<= WRITE_CHUNK), copied */
    } else {
      rc = k;
    }
  }
  dst->wdata = NULL;          /* the source bytes are not needed now */
  if (rc != 0) dst->wr_err = rc;
  return rc;
}

/* The end of a forward once its bytes went to fwd_write: n, or parked
** on the queued chunk (send_k then answers as send: n | nil, err, sent),
** or nil, err, sent. */
static int fwd_finish(lua_State *L, tcp_t *src, tcp_t *dst, int rc) {
  if (rc != 0) return send_fail(L, dst, rc);
  if (dst->wreq == NULL) {
    lua_pushinteger(L, (lua_Integer)(dst->wbase + dst->wlen));
    return 1;
  }
  /* src's next bytes wait in the kernel until dst has taken these (the
  ** next forward reads again): read now, each would sit in a buffer of
  ** its own until the task runs, thousands of them at once in an echo
  ** server whose writes queue */
  stop_reading(src);
  dst->wstart = ns_now();
  dst->wr.cancel = NULL;      /* the queued chunk still leaves */
  return ns_wait(L, &dst->wr, send_timeout(dst), send_k,
                 (lua_KContext)dst);
}

/* read_cb's part: n fresh bytes at p for a forward in progress, parked
** or woken by an earlier read of this same poll phase (fturn: it has
** not run yet, so these bytes join its count, up to rwant; once the
** ready tasks ran, a forward still marked was cancelled). Returns how
** many it took (sent or queued on dst); the caller keeps the rest in
** t->in for the next receive or forward. */
static size_t fwd_direct(tcp_t *src, const char *p, size_t n) {
  tcp_t *dst = src->fdst;
  size_t k;
  if (src->fdone) {
    if (src->fturn != ns_turn()) {   /* its task was cancelled */
      src->fdst = NULL;
      src->fdone = 0;
      return 0;
    }
    if (src->ferr) return 0;
  } else if (src->rd.task == NULL) {
    return 0;
  }
  k = src->rwant - src->fsent;
  if (k > n) k = n;
  if (k == 0 || !fwd_ready(dst)) return 0;  /* fwd_send tells the task */
  src->ferr = fwd_write(dst, p, k, src->fsent);
  src->fsent += k;
  src->nrecv += (lua_Integer)k;
  /* What comes next waits in the kernel until the task runs, not in
  ** src->in: a loop turn over thousands of sockets is long enough for
  ** a peer to send again, and a buffer held per connection is what an
  ** echo server's memory was made of (5000 x 16 KiB) */
  if (src->fsent >= src->rwant || src->ferr || dst->wreq)
    stop_reading(src);
  if (!src->fdone) {
    src->fdone = 1;
    src->fturn = ns_turn();
    ns_wake(&src->rd, 0);
  }
  return k;
}

/* Sends up to rwant bytes of src->in to dst (in the task). */
static int fwd_send(lua_State *L, tcp_t *src, tcp_t *dst) {
  size_t n = src->in.len < src->rwant ? src->in.len : src->rwant;
  int rc;
  if (dst->closed || dst->h == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, 0);
    return 3;
  }
  if (!fwd_ready(dst)) {      /* another task sends on dst: its bytes */
    lua_pushnil(L);           /* and ours must not interleave */
    lua_pushliteral(L, "busy");
    lua_pushinteger(L, 0);
    return 3;
  }
  rc = fwd_write(dst, ns_buf_ptr(&src->in), n, 0);
  in_consume(src, n);
  return fwd_finish(L, src, dst, rc);
}

/* Waits until src has bytes (as receiveany), then sends them. */
static int fwd_step(lua_State *L, tcp_t *src, tcp_t *dst) {
  double left = read_timeout(src);
  if (src->in.len > 0) return fwd_send(L, src, dst);
  if (src->rd_err) {
    recv_fail(L, src, src->rd_err);
    lua_pop(L, 1);            /* no partial: nil, err */
    return 2;
  }
  start_reading(src);
  src->rd.cancel = NULL;      /* reading goes on; bytes wait in t->in */
  src->fdst = dst;
  src->fdone = 0;
  src->fsent = 0;
  return ns_wait(L, &src->rd, left, fwd_k, (lua_KContext)src);
}

static int fwd_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *src = (tcp_t *)ctx;
  tcp_t *dst = lua_touserdata(L, 2);   /* checked by forward_raw */
  (void)status;
  src->fdst = NULL;
  if (src->fdone) {           /* read_cb sent it */
    src->fdone = 0;
    return fwd_finish(L, src, dst, src->ferr);
  }
  if (src->closed) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  if (src->in.len == 0 && src->rd.status == UV_ETIMEDOUT) {
    recv_fail(L, src, UV_ETIMEDOUT);
    lua_pop(L, 1);
    return 2;
  }
  return fwd_step(L, src, dst);
}

/* forward_raw(dst [, max]) -> n | nil, err [, sent] | false (use the
** plain path) */
static int meth_forward_raw(lua_State *L) {
  tcp_t *src = check_state(L, 1, S_CLIENT);
  tcp_t *dst = check_tcp(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, WRITE_CHUNK);
  int r;
  luaL_argcheck(L, max > 0, 3, "positive size expected");
  if (dst->state != S_CLIENT) check_state(L, 2, S_CLIENT);
  if (src->tls || dst->tls || dst->wr.task) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 2);
  lua_pushnil(L);             /* no prefix (recv_fail reads slot 3) */
  if ((r = recv_begin(L, src)) != 0) {
    if (r == 3) lua_pop(L, 1);  /* closed: nil, err */
    return r == 3 ? 2 : r;
  }
  dst->wstart = ns_now();     /* no send is under way on dst */
  wreq_settle(dst);
  if (dst->wreq || read_timeout(src) == 0 || send_timeout(dst) == 0) {
    lua_pushboolean(L, 0);    /* a queued chunk first, or polling */
    return 1;
  }
  src->rmode = R_ANY;
  src->rwant = max > WRITE_CHUNK ? WRITE_CHUNK : (size_t)max;
  return fwd_step(L, src, dst);
}

/* ---- sendfile ---- */

/* sendfile_raw(file, offset, count) -> n, state | nil, err, n | false.
** The kernel path of lua/socket.lua's sendfile(): sendfile(2) from the
** Lua file handle's descriptor at offset (its position untouched) to
** the socket while libuv holds nothing queued, as try_send does; never
** parks. state: "done" (count bytes sent), "again" (the kernel is full,
** or libuv still holds bytes: the caller sends the next chunk the queued
** way, which parks), "eof" (the file ended first). false: use the plain
** path (TLS, a pipe, polling, another task sending). */
static int meth_sendfile_raw(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_CLIENT);
  luaL_Stream *fs = luaL_checkudata(L, 2, LUA_FILEHANDLE);
  lua_Integer off = luaL_checkinteger(L, 3);
  lua_Integer count = luaL_checkinteger(L, 4);
  size_t sent = 0;
  int fd, in;
  luaL_argcheck(L, fs->closef != NULL, 2, "closed file");
  luaL_argcheck(L, off >= 0, 3, "non-negative offset expected");
  luaL_argcheck(L, count >= 0, 4, "non-negative count expected");
  if (t->closed || t->h == NULL) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, 0);
    return 3;
  }
  if (t->tls || t->ispipe || t->wr.task || send_timeout(t) == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (t->wr_err) return send_fail(L, t, t->wr_err);
  wreq_settle(t);
  if ((fd = fd_of(t)) < 0 || (in = fileno(fs->f)) < 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  while ((lua_Integer)sent < count) {
    off_t o = (off_t)off + (off_t)sent;
    size_t want = (size_t)(count - (lua_Integer)sent);
    ssize_t r;
    if (want > 0x40000000) want = 0x40000000;
    if (t->wreq ||
        uv_stream_get_write_queue_size((uv_stream_t *)t->h) > 0)
      break;                  /* behind bytes libuv holds: "again" */
    do r = sendfile(fd, in, &o, want);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
      sent += (size_t)r;
      t->nsent += (lua_Integer)r;
      continue;
    }
    if (r == 0) {
      lua_pushinteger(L, (lua_Integer)sent);
      lua_pushliteral(L, "eof");
      return 2;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINVAL || errno == ENOSYS || errno == ESPIPE) {
      if (sent == 0) {        /* not a file sendfile(2) reads: plain path */
        lua_pushboolean(L, 0);
        return 1;
      }
      break;
    }
    if (errno == EIO || errno == EISDIR || errno == EBADF) {
      int e = errno;          /* the file's fault, not the socket's */
      lua_pushnil(L);
      lua_pushstring(L, strerror(e));
      lua_pushinteger(L, (lua_Integer)sent);
      return 3;
    }
    t->wr_err = -errno;
    lua_pushnil(L);
    lua_pushstring(L, tcp_strerror(t, t->wr_err));
    lua_pushinteger(L, (lua_Integer)sent);
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)sent);
  if ((lua_Integer)sent == count) lua_pushliteral(L, "done");
  else lua_pushliteral(L, "again");
  return 2;
}

/* ---- closing ---- */

static void shutdown_close_cb(uv_shutdown_t *req, int status) {
  (void)status;
  if (!uv_is_closing((uv_handle_t *)req->handle))
    uv_close((uv_handle_t *)req->handle, free_handle_cb);
  free(req);
}

static void tcp_release(tcp_t *t) {
  int i;
  if (t->closed) return;
  t->closed = 1;
  ns_cancel(&t->rd, NS_ECLOSED);   /* parked tasks wake with "closed" */
  ns_cancel(&t->wr, NS_ECLOSED);
  if (t->dns_w) ns_cancel(t->dns_w, NS_ECLOSED);  /* connect's lookup */
  he_detach(t);
  ns_sel_release(&t->sel);           /* select()s re-check without us */
  listener_free(t->lsn);             /* before the socket it polls */
  t->lsn = NULL;
  for (i = 0; i < t->nacq; i++)
    uv_close((uv_handle_t *)t->acq[i], free_handle_cb);
  free(t->acq);
  t->acq = NULL;
  t->nacq = t->cacq = 0;
  tls_release(t);                    /* close_notify, then free the SSL */
  if (t->h) {
    uv_tcp_t *h = t->h;
    t->h = NULL;
    h->data = NULL;                  /* late callbacks find no owner */
    if (t->reading) uv_read_stop((uv_stream_t *)h);
    if (t->wreq) {
      /* bytes already reported sent still leave, then the socket closes */
      uv_shutdown_t *req = malloc(sizeof *req);
      t->wreq->owner = NULL;
      t->wreq = NULL;
      if (req && uv_shutdown(req, (uv_stream_t *)h, shutdown_close_cb) == 0)
        h = NULL;
      else
        free(req);
    }
    if (h) uv_close((uv_handle_t *)h, free_handle_cb);
  }
  t->reading = 0;
  ns_buf_free(&t->in);
  free(t->peer);
  t->peer = NULL;
  ns_optlist_free(&t->opts);
}

static int meth_close(lua_State *L) {
  tcp_release(check_tcp(L, 1));
  lua_pushinteger(L, 1);
  return 1;
}

static int meta_gc(lua_State *L) {
  tcp_release(to_tcp(L, 1));
  return 0;
}

/* ---- connect ---- */

static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *t = (tcp_t *)ctx;
  int err;
  (void)status;
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  if (t->state == S_CLIENT) {
    reclass(L, 1, t);
    lua_pushinteger(L, 1);
    return 1;
  }
  if (t->he) {                       /* woken without an outcome */
    he_detach(t);
    return ns_fail(L, NS_ECLOSED);
  }
  err = t->conn_err ? t->conn_err : UV_ECONNREFUSED;
  t->conn_err = 0;
  return ns_fail(L, err);
}

/* Timeout, deadline, interrupt: the race stops, the master stays. */
static void connect_cancel(ns_waiter_t *w) {
  tcp_t *t = w->data;
  he_detach(t);
  t->conn_err = w->status;
}

/* settimeout(0) (or settimeouts' connect 0): connect() polls. */
static int connect_polls(tcp_t *t) {
  const ns_timeout_t *tm = &t->tm;
  return tm->conn == 0 ||
         (tm->conn == NS_TO_UNSET && (tm->block == 0 || tm->total == 0));
}

/* Parks until the race ends: bounded by the socket's timeout (counted
** from connect(), DNS included) or CONNECT_TIMEOUT when there is none. */
static int connect_wait(lua_State *L, tcp_t *t) {
  double elapsed = ns_now() - t->t_start, left;
  if (connect_polls(t)) {
    /* settimeout(0): LuaSocket's non-blocking connect goes on; select()
    ** says when it is done, a later connect() gives the outcome */
    return ns_fail(L, UV_ETIMEDOUT);
  }
  if (t->tm.conn != NS_TO_UNSET) {
    left = t->tm.conn < 0 ? CONNECT_TIMEOUT - elapsed : t->tm.conn - elapsed;
  } else {
    left = ns_timeout_left(&t->tm, t->t_start);
    if (left < 0) left = CONNECT_TIMEOUT - elapsed;
    else if (t->tm.total < 0) left -= elapsed;
  }
  if (left < 0) left = 0;
  t->wr.data = t;
  t->wr.cancel = connect_cancel;
  return ns_wait(L, &t->wr, left, connect_k, (lua_KContext)t);
}

static int connect_resolved(lua_State *L, int n, const ns_addr_t *addrs,
                            lua_KContext ctx) {
  tcp_t *t = (tcp_t *)ctx;
  int rc;
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  t->t_dns = ns_now() - t->t_start;
  if (n < 0) return ns_fail(L, n);
  if (t->he || t->state != S_MASTER) return ns_fail(L, NS_EBUSY);
  if ((rc = he_start(t, addrs, n)) != 0) return ns_fail(L, rc);
  if (t->state == S_CLIENT) {        /* cannot happen: libuv calls back */
    lua_pushinteger(L, 1);
    return 1;
  }
  if (t->he == NULL) {               /* every attempt failed at once */
    int err = t->conn_err;
    t->conn_err = 0;
    return ns_fail(L, err);
  }
  return connect_wait(L, t);
}

/* ---- Unix domain sockets ----
** A stream socket on a path ("unix:/run/x.sock" given to connect or bind,
** or any host given to a socket.unix() object) is the same tcp_t: libuv's
** stream code moves the bytes of any connected socket, so the socket is
** made here and handed over with uv_tcp_open (as setfd does), and every
** pattern, timeout, select and TLS path works unchanged. Paths starting
** with "@" are Linux's abstract names. */

/* The path meant by host: after "unix:", or all of it on a unix() socket;
** NULL for a network host. */
static const char *unix_path(tcp_t *t, const char *host) {
  if (strncmp(host, "unix:", 5) == 0) return host + 5;
  if (t->want_family == AF_UNIX) return host;
  return NULL;
}

/* A new AF_UNIX stream socket as the socket's handle. */
static int unix_handle(tcp_t *t) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  uv_tcp_t *h;
  int rc;
  if (fd < 0) return -errno;
  if ((h = malloc(sizeof *h)) == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  uv_tcp_init(ns_loop(), h);
  if ((rc = uv_tcp_open(h, (uv_os_sock_t)fd)) != 0) {
    close(fd);
    uv_close((uv_handle_t *)h, free_handle_cb);
    return rc;
  }
  h->data = t;
  t->h = h;
  t->family = AF_UNIX;
  return 0;
}

/* The steps connect and bind share: the address, a socket if there is
** none yet (a network socket cannot take a path). 0 or a UV_E* code. */
static int unix_prepare(tcp_t *t, const char *path, ns_addr_t *a,
                        uv_os_fd_t *fd) {
  int rc;
  if (t->h && t->family != AF_UNIX) return UV_EAFNOSUPPORT;
  if ((rc = ns_unix_addr(path, a)) != 0) return rc;
  if (t->h == NULL && (rc = unix_handle(t)) != 0) return rc;
  return uv_fileno((uv_handle_t *)t->h, fd);
}

static int unix_connect_k(lua_State *L, int status, lua_KContext ctx);

/* connect("unix:PATH"): a local connect ends at once, or fails, or finds
** the listener's queue full (EAGAIN). The kernel says nothing when room
** comes, so the task then retries after a short sleep (1 ms, doubling up
** to 50 ms), within the connect timeout (the socket's, else 30 s), as a
** TCP SYN would be retried. Stack: self, "unix:PATH". */
static int unix_connect_try(lua_State *L, tcp_t *t, const char *path,
                            int attempt) {
  ns_addr_t a;
  uv_os_fd_t fd;
  double limit, left, nap;
  int rc = unix_prepare(t, path, &a, &fd);
  if (rc != 0) return ns_fail(L, rc);
  if (connect(fd, (struct sockaddr *)&a.ss, a.len) == 0) {
    t->state = S_CLIENT;
    reclass(L, 1, t);
    t->t_conn = ns_now() - t->t_start;
    keep_peer(t);
    free(t->peer);
    t->peer = NULL;                  /* no host name to verify */
    lua_pushinteger(L, 1);
    return 1;
  }
  rc = -errno;
  if (rc != -EAGAIN) return ns_fail(L, rc);
  limit = ns_timeout_op(&t->tm, t->tm.conn, t->t_start);
  if (limit < 0) limit = CONNECT_TIMEOUT;
  left = limit - (ns_now() - t->t_start);
  if (left <= 0) return ns_fail(L, UV_ETIMEDOUT);
  nap = attempt < 6 ? 0.001 * (1 << attempt) : 0.05;
  t->wr.data = t;
  t->wr.cancel = NULL;
  return ns_wait(L, &t->wr, nap < left ? nap : left, unix_connect_k,
                 (lua_KContext)(attempt + 1));
}

static int unix_connect_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *t = check_tcp(L, 1);
  (void)status;
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  return unix_connect_try(L, t, unix_path(t, lua_tostring(L, 2)), (int)ctx);
}

static int unix_connect(lua_State *L, tcp_t *t, const char *path) {
  lua_settop(L, 2);                  /* the path stays for the retries */
  t->t_start = ns_now();
  t->t_dns = 0;
  return unix_connect_try(L, t, path, 0);
}

/* bind("unix:PATH"): the socket file is made; an existing one is an
** error ("address already in use"), as everywhere. */
static int unix_bind(lua_State *L, tcp_t *t, const char *path) {
  ns_addr_t a;
  uv_os_fd_t fd;
  int rc = unix_prepare(t, path, &a, &fd);
  if (rc != 0) return ns_fail(L, rc);
  if (bind(fd, (struct sockaddr *)&a.ss, a.len) != 0)
    return ns_fail(L, -errno);
  lua_pushinteger(L, 1);
  return 1;
}

/* connect(host, port) -> 1 | nil, err */
static int meth_connect(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  const char *host = ns_checkcstring(L, 2, NULL);
  const char *path = host ? unix_path(t, host) : NULL;
  int port = path || !host ? 0 : ns_check_port(L, 3, "tcp");
  double dns_timeout;
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  if (port < 0) return ns_fail(L, port);
  if (t->he && connect_polls(t) && !t->wr.task) he_poll(t);
  if (t->state == S_CLIENT) return ns_fail(L, UV_EISCONN);
  if (t->state == S_SERVER) return ns_fail(L, UV_EINVAL);
  if (path) {
    if (t->he || t->wr.task) return ns_fail(L, NS_EBUSY);
    return unix_connect(L, t, path);
  }
  if (t->wr.task) return ns_fail(L, NS_EBUSY);
  if (t->he) {                       /* a non-blocking connect goes on */
    return connect_wait(L, t);
  }
  if (t->conn_err) {                 /* ... and ended while nobody waited */
    int err = t->conn_err;
    t->conn_err = 0;
    return ns_fail(L, err);
  }
  lua_settop(L, 3);
  free(t->peer);
  t->peer = strdup(host);            /* for the certificate check */
  t->t_start = ns_now();
  t->t_dns = t->t_conn = 0;
  dns_timeout = ns_timeout_op(&t->tm, t->tm.conn, t->t_start);
  /* settimeout(0) polls the connect, not the lookup: LuaSocket resolves
  ** (blocking) first; a lookup given no time would never end */
  if (dns_timeout <= 0 || dns_timeout > NS_DNS_TIMEOUT)
    dns_timeout = NS_DNS_TIMEOUT;
  return ns_resolve_tracked(L, host, port, t->want_family, 0,
                            dns_timeout, connect_resolved, (lua_KContext)t,
                            &t->dns_w);
}

/* ---- bind, listen, accept ---- */

static int bind_resolved(lua_State *L, int n, const ns_addr_t *addrs,
                         lua_KContext ctx) {
  tcp_t *t = (tcp_t *)ctx;
  int i, err = UV_EAI_NONAME;
  if (n < 0) return ns_fail(L, n);
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  for (i = 0; i < n; i++) {
    int family = addrs[i].ss.ss_family;
    uv_tcp_t *h;
    if (t->want_family != AF_UNSPEC && family != t->want_family) {
      err = UV_EAI_ADDRFAMILY;
      continue;
    }
    if (t->h && t->family == family) {
      h = t->h;
    } else if ((err = new_handle(t, family, &h)) != 0) {
      continue;
    }
    if ((err = bind_fd(h, &addrs[i])) == 0) {
      if (h != t->h) {
        if (t->h) {
          t->h->data = NULL;
          uv_close((uv_handle_t *)t->h, free_handle_cb);
        }
        t->h = h;
        h->data = t;
      }
      t->family = family;
      lua_pushinteger(L, 1);
      return 1;
    }
    if (h != t->h) uv_close((uv_handle_t *)h, free_handle_cb);
  }
  return ns_fail(L, err);
}

/* bind(host, port) -> 1 | nil, err ("*" = any, dual-stack if possible) */
static int meth_bind(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_MASTER);
  const char *host = ns_checkcstring(L, 2, NULL);
  const char *path = host ? unix_path(t, host) : NULL;
  int port = path || !host ? 0 : ns_check_port(L, 3, "tcp");
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  if (t->he) return ns_fail(L, NS_EBUSY);
  if (path) return unix_bind(L, t, path);
  if (port < 0) return ns_fail(L, port);
  lua_settop(L, 3);
  return ns_resolve(L, host, port, t->want_family, 1, -1,
                    bind_resolved, (lua_KContext)t);
}

/* Room for one more in t->acq: 0 or UV_ENOMEM. */
static int acq_room(tcp_t *t) {
  if (t->nacq == t->cacq) {
    int cap = t->cacq ? t->cacq * 2 : 16;
    uv_tcp_t **q = realloc(t->acq, (size_t)cap * sizeof *q);
    if (q == NULL) return UV_ENOMEM;
    t->acq = q;
    t->cacq = cap;
  }
  return 0;
}

/* ---- the listener ----
** netsh takes connections from the kernel itself, through a uv_poll_t on
** the listening descriptor, instead of uv_listen: out of descriptors,
** libuv accepts and closes every pending connection (its EMFILE trick),
** which resets the clients and tells the server nothing. Here they stay
** queued in the kernel, accept() answers nil, "too many open files", and
** the listener rests LISTEN_REST ms before it tries again, so no accept
** loop can spin (nginx rests the same way). It also stops reading the
** queue while t->backlog connections wait for accept() in t->acq. */

#define LISTEN_REST 100      /* ms */

struct listener {
  uv_poll_t poll;
  uv_timer_t rest;
  tcp_t *owner;              /* NULL once the socket let go */
  int open;                  /* handles not yet closed */
  unsigned char polling, resting;
};

static void listener_close_cb(uv_handle_t *h) {
  listener_t *l = h->data;
  if (--l->open == 0) free(l);
}

static void listener_free(listener_t *l) {
  if (l == NULL) return;
  l->owner = NULL;
  uv_close((uv_handle_t *)&l->poll, listener_close_cb);
  uv_close((uv_handle_t *)&l->rest, listener_close_cb);
}

/* One connection from the kernel's queue into t->acq: 1 taken, 0 none
** waiting, -1 failed (t->acc_err says why). */
static int accept_fd(tcp_t *t) {
  int fd = fd_of(t), c, rc;
  uv_tcp_t *h;
  if (fd < 0) return 0;
  if ((rc = acq_room(t)) != 0) {
    t->acc_err = rc;
    return -1;
  }
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && (errno == EINTR || errno == ECONNABORTED));
  if (c < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    t->acc_err = -errno;
    return -1;
  }
  if ((h = malloc(sizeof *h)) == NULL) {
    close(c);
    t->acc_err = UV_ENOMEM;
    return -1;
  }
  uv_tcp_init(ns_loop(), h);
  h->data = NULL;
  if ((rc = uv_tcp_open(h, (uv_os_sock_t)c)) != 0) {
    close(c);
    uv_close((uv_handle_t *)h, free_handle_cb);
    t->acc_err = rc;
    return -1;
  }
  t->acq[t->nacq++] = h;
  return 1;
}

static void listener_poll_cb(uv_poll_t *p, int status, int events);

/* Reads the queue again unless resting or full. */
static void listener_resume(tcp_t *t) {
  listener_t *l = t->lsn;
  if (l == NULL || l->polling || l->resting || t->nacq >= t->backlog)
    return;
  if (uv_poll_start(&l->poll, UV_READABLE, listener_poll_cb) == 0)
    l->polling = 1;
}

static void listener_pause(listener_t *l) {
  if (!l->polling) return;
  uv_poll_stop(&l->poll);
  l->polling = 0;
}

static void listener_rest_cb(uv_timer_t *tm) {
  listener_t *l = tm->data;
  l->resting = 0;
  if (l->owner) listener_resume(l->owner);
}

static void listener_poll_cb(uv_poll_t *p, int status, int events) {
  listener_t *l = p->data;
  tcp_t *t = l->owner;
  int r = 1;
  (void)events;
  if (t == NULL) return;
  if (status < 0) {
    t->acc_err = status;
    r = -1;
  }
  while (r > 0 && t->nacq < t->backlog) r = accept_fd(t);
  if (r < 0) {
    /* out of descriptors or memory, or a socket error: rest a moment */
    listener_pause(l);
    l->resting = 1;
    uv_timer_start(&l->rest, listener_rest_cb, LISTEN_REST, 0);
  } else if (t->nacq >= t->backlog) {
    listener_pause(l);          /* accept() resumes it */
  }
  ns_wake(&t->rd, 0);
  notify_select(t);
}

/* listen(2) and start reading the queue: 0 or an error. */
static int listener_start(tcp_t *t, int backlog) {
  int fd = fd_of(t);
  listener_t *l;
  if (fd < 0) return UV_EBADF;
  if (listen(fd, backlog) != 0) return -errno;
  if (t->lsn) return 0;          /* listen() again: a new backlog only */
  if ((l = malloc(sizeof *l)) == NULL) return UV_ENOMEM;
  memset(l, 0, sizeof *l);
  if (uv_poll_init_socket(ns_loop(), &l->poll, fd) != 0) {
    free(l);
    return UV_EBADF;
  }
  uv_timer_init(ns_loop(), &l->rest);
  l->poll.data = l->rest.data = l;
  l->open = 2;
  l->owner = t;
  t->lsn = l;
  listener_resume(t);
  return 0;
}

/* listen([backlog]) -> 1 | nil, err */
static int meth_listen(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_MASTER);
  lua_Integer backlog = luaL_optinteger(L, 2, DEFAULT_BACKLOG);
  int rc;
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  if (t->h == NULL && t->want_family == AF_UNIX)
    return ns_fail(L, NS_ENOPATH);
  if (t->h == NULL) {
    /* LuaSocket listens on an unbound socket: the kernel picks a port */
    int family = t->want_family == AF_INET ? AF_INET : AF_INET6;
    uv_tcp_t *h;
    if ((rc = new_handle(t, family, &h)) != 0) return ns_fail(L, rc);
    t->h = h;
    h->data = t;
    t->family = family;
  }
  if (backlog < 1) backlog = 1;
  if (backlog > INT_MAX) backlog = INT_MAX;
  t->backlog = backlog < 64 ? 64 : (int)backlog;
  if ((rc = listener_start(t, (int)backlog)) != 0) return ns_fail(L, rc);
  t->state = S_SERVER;
  reclass(L, 1, t);
  lua_pushinteger(L, 1);
  return 1;
}

/* accept() with settimeout(0) polls without yielding, so the listener's
** callback never runs: take the connection from the kernel's queue
** directly, as LuaSocket's non-blocking accept does. Returns 1 when
** t->acq or t->acc_err got something. */
static int accept_poll(tcp_t *t) {
  if (accept_fd(t) == 0) return 0;
  ns_wake(&t->rd, 0);     /* an accept parked in another task (select) */
  return 1;
}

static int accept_k(lua_State *L, int status, lua_KContext ctx);

static int accept_try(lua_State *L, tcp_t *t) {
  if (t->nacq > 0) {
    uv_tcp_t *c = t->acq[0];
    tcp_t *n;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memmove(t->acq, t->acq + 1, (size_t)--t->nacq * sizeof *t->acq);
    listener_resume(t);              /* room again in t->acq */
    n = tcp_new(L, S_CLIENT);
    n->h = c;
    n->accepted = 1;
    c->data = n;
    if (uv_tcp_getsockname(c, (struct sockaddr *)&ss, &len) == 0)
      n->family = ss.ss_family;
    keep_peer(n);
    reclass(L, -1, n);
    if (lua_getiuservalue(L, 1, 1) != LUA_TNIL) {
      /* a TLS server: the client's handshake comes with its first use */
      int rc = tls_attach(L, n, lua_gettop(L), 1, NULL);
      if (rc != 1) {
        tcp_release(n);
        return rc;
      }
      lua_pop(L, 1);                 /* true */
    }
    lua_pop(L, 1);                   /* the context */
    if (!t->pyaccept) return 1;
    len = sizeof ss;
    if (uv_tcp_getpeername(c, (struct sockaddr *)&ss, &len) != 0) return 1;
    ns_addr_push_len(L, (struct sockaddr *)&ss, (socklen_t)len);
    lua_pop(L, 1);
    return 3;                        /* conn, ip, port */
  }
  if (t->acc_err) {
    int err = t->acc_err;
    t->acc_err = 0;
    return ns_fail(L, err);
  }
  if (read_timeout(t) == 0 && accept_poll(t)) return accept_try(L, t);
  t->rd.cancel = NULL;
  return ns_wait(L, &t->rd, read_timeout(t), accept_k,
                 (lua_KContext)t);
}

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *t = (tcp_t *)ctx;
  (void)status;
  if (t->closed) return ns_fail(L, NS_ECLOSED);
  if (t->nacq == 0 && t->acc_err == 0 && t->rd.status == UV_ETIMEDOUT)
    return ns_fail(L, UV_ETIMEDOUT);
  return accept_try(L, t);
}

/* accept() -> client | nil, err */
static int meth_accept(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_SERVER);
  if (t->closed || t->h == NULL) return ns_fail(L, NS_ECLOSED);
  if (t->backlog == 0) return ns_fail(L, UV_EINVAL);  /* setfd: no listen */
  if (t->rd.task) return ns_fail(L, NS_EBUSY);
  t->rstart = ns_now();
  return accept_try(L, t);
}

/* ---- the rest of LuaSocket's methods ---- */

static void shutdown_free_cb(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

static int meth_shutdown(lua_State *L) {
  static const char *const modes[] = {"both", "send", "receive", NULL};
  tcp_t *t = check_state(L, 1, S_CLIENT);
  int how = luaL_checkoption(L, 2, "both", modes);
  if (t->closed || t->h == NULL) return ns_fail(L, NS_ECLOSED);
  if (t->ispipe) {
    /* a pipe end goes one way and cannot be half-closed: ending the way
    ** it goes (a child's stdin: "send") closes it, after queued writes */
    if (how != 2) tcp_release(t);
    lua_pushinteger(L, 1);
    return 1;
  }
  if (how != 1) {
    int fd = fd_of(t);
    if (fd >= 0) shutdown(fd, SHUT_RD);
  }
  if (how != 2) {
    /* after the queued writes, as the peer expects */
    uv_shutdown_t *req = malloc(sizeof *req);
    if (t->tls) tls_notify(t);       /* close_notify, then the FIN */
    if (req == NULL) return ns_fail(L, UV_ENOMEM);
    if (uv_shutdown(req, (uv_stream_t *)t->h, shutdown_free_cb) != 0)
      free(req);
  }
  lua_pushinteger(L, 1);
  return 1;
}

static int push_name(lua_State *L, tcp_t *t, int peer) {
  struct sockaddr_storage ss;
  int len = sizeof ss, rc;
  if (t->h == NULL) return ns_fail(L, UV_ENOTCONN);
  rc = peer ? uv_tcp_getpeername(t->h, (struct sockaddr *)&ss, &len)
            : uv_tcp_getsockname(t->h, (struct sockaddr *)&ss, &len);
  if (rc == UV_ENOTCONN && peer && t->peer_len > 0 && !t->closed) {
    memcpy(&ss, &t->peer_ss, sizeof ss);   /* both sides shut down */
    len = t->peer_len;
    rc = 0;
  }
  if (rc != 0) return ns_fail(L, rc);
  ns_addr_push_len(L, (struct sockaddr *)&ss, (socklen_t)len);
  return 3;
}

static int meth_getpeername(lua_State *L) {
  return push_name(L, check_tcp(L, 1), 1);
}

static int meth_getsockname(lua_State *L) {
  return push_name(L, check_tcp(L, 1), 0);
}

static int meth_getfamily(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  int f = t->family != AF_UNSPEC ? t->family : t->want_family;
  lua_pushstring(L, ns_family_name(f));
  return 1;
}

/* settimeout(value [, mode]), settimeouts(connect, send, read): util.c
** (settimeouts' negative connect keeps the 30 s default) */
static int meth_settimeout(lua_State *L) {
  return ns_settimeout(L, &check_tcp(L, 1)->tm);
}

static int meth_settimeouts(lua_State *L) {
  return ns_settimeouts(L, &check_tcp(L, 1)->tm);
}

static int meth_gettimeout(lua_State *L) {
  return ns_gettimeout(L, &check_tcp(L, 1)->tm);
}

static int meth_getstats(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  lua_pushinteger(L, t->nrecv);
  lua_pushinteger(L, t->nsent);
  lua_pushnumber(L, ns_now() - t->birth);
  return 3;
}

static int meth_setstats(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  t->nrecv = luaL_optinteger(L, 2, t->nrecv);
  t->nsent = luaL_optinteger(L, 3, t->nsent);
  if (!lua_isnoneornil(L, 4)) t->birth = ns_now() - luaL_checknumber(L, 4);
  lua_pushinteger(L, 1);
  return 1;
}

/* timings() -> {dns=, connect=}: seconds from connect() as curl's
** time_namelookup/time_connect (cumulative). */
static int meth_timings(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, t->t_dns);
  lua_setfield(L, -2, "dns");
  lua_pushnumber(L, t->t_conn);
  lua_setfield(L, -2, "connect");
  if (t->t_tls > 0) {
    lua_pushnumber(L, t->t_tls);
    lua_setfield(L, -2, "tls");
  }
  return 1;
}

/* setoption(name [, value]) -> 1 | nil, err: kept for the sockets
** connect() will make, and set on the current one */
static int meth_setoption(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  return ns_setoption(L, NS_OPT_TCP, t->closed ? NS_FD_CLOSED : fd_of(t),
                      &t->opts);
}

static int meth_getoption(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  if (t->conn_err && lua_type(L, 2) == LUA_TSTRING &&
      strcmp(lua_tostring(L, 2), "error") == 0) {
    /* a non-blocking connect failed: its attempts' sockets, which held
    ** the SO_ERROR LuaSocket code polls for, are gone */
    lua_pushstring(L, ns_strerror(t->conn_err));
    return 1;
  }
  return ns_getoption(L, NS_OPT_TCP, t->closed ? NS_FD_CLOSED : fd_of(t),
                      &t->opts);
}

/* readerror() -> nil | message: why reading ended when it was not the
** peer's clean close (FIN, TLS close_notify), e.g. "connection reset by
** peer". receive says "closed" for both, as LuaSocket does. */
static int meth_readerror(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  int e = t->rd_err;
  if (e == 0 || e == UV_EOF) lua_pushnil(L);
  else if (e == NS_ETLS) lua_pushstring(L, tcp_strerror(t, e));
  else lua_pushstring(L, uv_strerror(e));
  return 1;
}

/* idle(on): a kept-alive connection waiting in a pool (lua/http/fast.lua)
** does not keep the loop running, nor hide a deadlock (uv_unref);
** idle(false) when it is taken again. */
static int meth_idle(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  if (t->h != NULL) {
    if (lua_toboolean(L, 2)) uv_unref((uv_handle_t *)t->h);
    else uv_ref((uv_handle_t *)t->h);
  }
  return 0;
}

static int meth_dirty(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  lua_pushboolean(L, t->in.len > 0);
  return 1;
}

static int meth_getfd(lua_State *L) {
  lua_pushinteger(L, fd_of(check_tcp(L, 1)));
  return 1;
}

/* setfd(fd): adopt a socket descriptor (client, server or master by what
** the kernel says); setfd(-1): forget the current one without closing.
** A server stays a server, as LuaSocket's objects keep their class: if
** the new descriptor does not listen, accept() says so (nil, err).
** A pipe(2) end becomes a client too ("pipe{client}"), a byte stream for
** receive and send (proc.spawn's streams); socket options fail on it. */
static int meth_setfd(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  lua_Integer fd = luaL_checkinteger(L, 2);
  int old = fd_of(t), rc, was_server = t->state == S_SERVER;
  if (t->rd.task || t->wr.task || t->he) return ns_fail(L, NS_EBUSY);
  if (old >= 0) {
    /* uv_close closes the descriptor: keep the number alive with a dup */
    int keep = fd >= 0 && fd != old ? -1 : dup(old);
    uv_tcp_t *h = t->h;
    if (t->reading) uv_read_stop((uv_stream_t *)h);
    t->reading = 0;
    listener_free(t->lsn);           /* stop watching the old descriptor */
    t->lsn = NULL;
    h->data = NULL;
    uv_close((uv_handle_t *)h, free_handle_cb);
    t->h = NULL;
    if (keep >= 0) {
      dup2(keep, old);
      close(keep);
    }
  }
  t->rd_err = t->wr_err = 0;
  t->ispipe = 0;
  ns_buf_free(&t->in);
  t->state = was_server ? S_SERVER : S_MASTER;
  t->backlog = 0;                    /* > 0 only while listening */
  if (fd >= 0) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int listening = 0;
    socklen_t ll = sizeof listening;
    struct stat st;
    uv_tcp_t *h = malloc(sizeof *h);
    if (h == NULL) return ns_fail(L, UV_ENOMEM);
    uv_tcp_init(ns_loop(), h);
    if ((rc = uv_tcp_open(h, (uv_os_sock_t)fd)) != 0) {
      uv_close((uv_handle_t *)h, free_handle_cb);
      return ns_fail(L, rc);
    }
    t->h = h;
    h->data = t;
    t->closed = 0;
    if (getsockname((int)fd, (struct sockaddr *)&ss, &len) == 0)
      t->family = ss.ss_family;
    else if (errno == ENOTSOCK && fstat((int)fd, &st) == 0 &&
             S_ISFIFO(st.st_mode))
      t->ispipe = 1;       /* read()/write() work as on a socket */
    len = sizeof ss;
    getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll);
    if (listening) {
      t->state = S_SERVER;
      t->backlog = DEFAULT_BACKLOG;
      if ((rc = listener_start(t, DEFAULT_BACKLOG)) != 0)
        return ns_fail(L, rc);
    } else if (!was_server &&
               getpeername((int)fd, (struct sockaddr *)&ss, &len) == 0) {
      t->state = S_CLIENT;
      keep_peer(t);
    } else if (!was_server && t->ispipe) {
      t->state = S_CLIENT;
    }
  }
  reclass(L, 1, t);
  lua_pushinteger(L, 1);
  return 1;
}

static int meta_tostring(lua_State *L) {
  tcp_t *t = to_tcp(L, 1);
  struct sockaddr_storage a, b;
  int la = sizeof a, lb = sizeof b;
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  lua_pushfstring(L, "%s{%s}: %p", t->ispipe ? "pipe" :
                  t->family == AF_UNIX || t->want_family == AF_UNIX ?
                  "unix" : "tcp",
                  state_names[t->state], (void *)t);
  luaL_addvalue(&buf);
  if (t->closed) {
    luaL_addstring(&buf, " (closed)");
  } else if (t->h && t->family == AF_UNIX) {
    la = sizeof a;
    if (uv_tcp_getsockname(t->h, (struct sockaddr *)&a, &la) == 0) {
      ns_addr_push_len(L, (struct sockaddr *)&a, (socklen_t)la);
      lua_pop(L, 2);
      if (lua_rawlen(L, -1) > 0) {
        lua_pushliteral(L, " ");
        lua_insert(L, -2);
        lua_concat(L, 2);
        luaL_addvalue(&buf);
      } else {
        lua_pop(L, 1);
      }
    }
    if (t->state == S_CLIENT &&
        uv_tcp_getpeername(t->h, (struct sockaddr *)&b, &lb) == 0) {
      ns_addr_push_len(L, (struct sockaddr *)&b, (socklen_t)lb);
      lua_pop(L, 2);
      if (lua_rawlen(L, -1) > 0) {     /* an accepted peer is unnamed */
        lua_pushliteral(L, " -> ");
        lua_insert(L, -2);
        lua_concat(L, 2);
        luaL_addvalue(&buf);
      } else {
        lua_pop(L, 1);
      }
    }
  } else if (t->h &&
             uv_tcp_getsockname(t->h, (struct sockaddr *)&a, &la) == 0) {
    ns_addr_push(L, (struct sockaddr *)&a);      /* ip, port, family */
    lua_pop(L, 1);
    lua_pushfstring(L, a.ss_family == AF_INET6 ? " [%s]:%I" : " %s:%I",
                    lua_tostring(L, -2), lua_tointeger(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
    luaL_addvalue(&buf);
    if (t->state == S_CLIENT &&
        uv_tcp_getpeername(t->h, (struct sockaddr *)&b, &lb) == 0) {
      ns_addr_push(L, (struct sockaddr *)&b);
      lua_pop(L, 1);
      lua_pushfstring(L, b.ss_family == AF_INET6 ? " -> [%s]:%I"
                                                 : " -> %s:%I",
                      lua_tostring(L, -2), lua_tointeger(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
      luaL_addvalue(&buf);
    }
  }
  luaL_pushresult(&buf);
  return 1;
}

/* ---- TLS ----
** tlsattach() puts an engine (src/tls.h, loaded from netsh_tls.so on first
** use) between the socket and t->in; the handshake runs in the task that
** calls tlshandshake(), or implicitly in the first receive/send (accepted
** sockets of a TLS server). That task parks on t->hsw, which read_cb wakes
** at every input; a task arriving meanwhile waits on t->hsq, then re-runs
** its method. Engine output is written as it appears (uv_write, nobody
** waits for it) except while a TLS send is in progress or left ciphertext
** behind (t->tlsout): then it queues behind, so records stay in order. */

/* ns_strerror, but a TLS failure is what the engine says */
static const char *tcp_strerror(tcp_t *t, int code) {
  if (code == NS_ETLS && t->tls) return t->tlsops->error(t->tls);
  return ns_strerror(code);
}

/* Moves the engine's output to the end of t->tlsout. */
static int tls_take(tcp_t *t) {
  size_t k;
  while ((k = t->tlsops->pending(t->tls)) > 0) {
    if (ns_buf_reserve(&t->tlsout, k) != 0) return UV_ENOMEM;
    t->tlsout.len += t->tlsops->take(t->tls, ns_buf_ptr(&t->tlsout) +
                                     t->tlsout.len, k);
  }
  return 0;
}

/* Gives t->tlsout to the kernel, as much as it takes now: 0 once it is
** empty, UV_EAGAIN when the kernel is full (or libuv still holds bytes
** that go first), else an error. */
static int tlsout_push(tcp_t *t) {
  while (t->tlsout.len > 0) {
    int n = t->wreq ? UV_EAGAIN
                    : try_send(t, ns_buf_ptr(&t->tlsout), t->tlsout.len);
    if (n < 0) return n;
    ns_buf_consume(&t->tlsout, (size_t)n);
    t->nsent += n;
  }
  ns_buf_free(&t->tlsout);
  return 0;
}

/* Sends the engine's output (and what waits in t->tlsout) without
** waiting: what the kernel takes now, the rest by uv_write. A polling
** socket (settimeout(0)) keeps the rest in t->tlsout for its next call
** unless force (close_notify): the loop that would write it may not run
** before then. 0 or a UV_E* code. */
static int tls_flush(tcp_t *t, int force) {
  size_t n = t->tlsops->pending(t->tls), have = t->tlsout.len;
  wreq_t *w;
  uv_buf_t b;
  int rc;
  if (t->h == NULL || n + have == 0) return 0;
  if ((rc = tls_take(t)) != 0) return rc;
  if (t->wtls && t->wr.task) return 0;   /* behind the send in progress */
  if ((rc = tlsout_push(t)) != UV_EAGAIN) return rc;
  if (!force && send_timeout(t) == 0) return 0;
  have = t->tlsout.len;
  if ((w = malloc(sizeof *w + have)) == NULL) return UV_ENOMEM;
  w->owner = NULL;                   /* write_cb just frees it */
  memcpy(w->data, ns_buf_ptr(&t->tlsout), have);
  ns_buf_free(&t->tlsout);
  w->len = have;
  b = uv_buf_init(w->data, (unsigned)w->len);
  if ((rc = uv_write(&w->req, (uv_stream_t *)t->h, &b, 1, write_cb)) != 0)
    free(w);
  return rc;
}

/* send() on TLS with settimeout(0): record by record while the kernel
** takes them, as LuaSec's non-blocking send. As on every TLS timeout, a
** record the kernel took only part of counts as sent: its rest waits in
** t->tlsout and leaves first, with the next call; success means nothing
** waits. */
static int tls_send_poll(lua_State *L, tcp_t *t) {
  size_t done = 0;
  int rc = t->wr_err ? t->wr_err : tlsout_push(t);
  while (rc == 0 && done < t->wlen) {
    size_t chunk = t->wlen - done < 16384 ? t->wlen - done : 16384;
    if (t->tlsops->write(t->tls, t->wdata + done, chunk) != (int)chunk) {
      rc = NS_ETLS;
      break;
    }
    done += chunk;
    if ((rc = tls_take(t)) == 0) rc = tlsout_push(t);
  }
  if (rc == 0) {
    lua_pushinteger(L, (lua_Integer)(t->wbase + t->wlen));
    return 1;
  }
  if (rc == UV_EAGAIN) rc = UV_ETIMEDOUT;
  else if (t->wr_err == 0) t->wr_err = rc;
  lua_pushnil(L);
  lua_pushstring(L, tcp_strerror(t, rc));
  lua_pushinteger(L, (lua_Integer)(t->wbase + done));
  return 3;
}

/* read_cb's path on TLS sockets: ciphertext in, plaintext onto t->in
** once the handshake is done (before, the handshake task takes it).
** 0, or the rd_err to set (UV_EOF on close_notify, NS_ETLS). */
static int tls_input(tcp_t *t, const char *p, size_t n) {
  const ns_tls_ops_t *ops = t->tlsops;
  int r = 0;
  if (n > 0 && ops->feed(t->tls, p, n) != NS_TLS_OK) return NS_ETLS;
  if (!t->tls_ready) return 0;
  for (;;) {
    if (ns_buf_reserve(&t->in, 16384) != 0) return UV_ENOMEM;
    r = ops->read(t->tls, t->in.data + t->in.off + t->in.len, 16384);
    if (r <= 0) break;
    t->in.len += (size_t)r;
  }
  tls_flush(t, 0);                   /* alerts, key update replies */
  if (r == NS_TLS_EOF) return UV_EOF;
  if (r == NS_TLS_ERROR) return NS_ETLS;
  return 0;
}

/* Encrypts p[0, n) and pushes t->tlsout .. the ciphertext (slot 3). */
static int tls_encrypt(lua_State *L, tcp_t *t, const char *p, size_t n) {
  const ns_tls_ops_t *ops = t->tlsops;
  luaL_Buffer b;
  size_t k;
  lua_settop(L, 2);
  luaL_buffinit(L, &b);
  if (t->tlsout.len) luaL_addlstring(&b, ns_buf_ptr(&t->tlsout),
                                     t->tlsout.len);
  ns_buf_free(&t->tlsout);
  while (n > 0) {
    /* a slice at a time: the engine's output buffer stays small */
    size_t chunk = n < 65536 ? n : 65536;
    if (ops->write(t->tls, p, chunk) != (int)chunk) {
      luaL_pushresult(&b);
      return NS_ETLS;
    }
    p += chunk;
    n -= chunk;
    while ((k = ops->pending(t->tls)) > 0) {
      char *d = luaL_prepbuffsize(&b, k);
      luaL_addsize(&b, ops->take(t->tls, d, k));
    }
  }
  luaL_pushresult(&b);
  return 0;
}

/* Queues close_notify once (shutdown("send"), close). A send still in
** progress in another task keeps it behind its records (TODO: then the
** FIN may overtake it; shutdown while sending is not supported). */
static void tls_notify(tcp_t *t) {
  if (!t->tls_ready) return;
  t->tlsops->shutdown(t->tls);
  tls_flush(t, 1);
}

/* tcp_release's part. close_notify is best effort: uv_write sends it at
** once when nothing is queued (the usual case); behind a queued send it
** leaves with it (tcp_release shuts down after t->wreq), else uv_close
** drops it. */
static void tls_release(tcp_t *t) {
  if (t->tls == NULL) return;
  ns_cancel(&t->hsw, NS_ECLOSED);
  ns_cond_broadcast(&t->hsq, NS_ECLOSED);
  if (t->h && t->tls_ready && !t->rd_err) {
    /* the sender, if any, was woken: this goes out after its records */
    t->tlsops->shutdown(t->tls);
    tls_flush(t, 1);
  }
  t->tlsops->close(t->tls);
  t->tls = NULL;
  ns_buf_free(&t->tlsout);
}

static int hs_k(lua_State *L, int status, lua_KContext ctx);
static int hsq_k(lua_State *L, int status, lua_KContext ctx);
static int meth_receive(lua_State *L);
static int meth_receiveany(lua_State *L);
static int meth_receiveuntil_raw(lua_State *L);
static int meth_send(lua_State *L);
static int meth_tlshandshake(lua_State *L);

/* Runs the method that needed the handshake again, on its own stack. */
static int rerun(lua_State *L, int which) {
  switch (which) {
    case HS_RECEIVE: return meth_receive(L);
    case HS_RECEIVEANY: return meth_receiveany(L);
    case HS_UNTIL: return meth_receiveuntil_raw(L);
    case HS_SEND: return meth_send(L);
  }
  return meth_tlshandshake(L);
}

/* The handshake ended with code (0: done); wake the others, answer. */
static int hs_end(lua_State *L, tcp_t *t, int code, int which) {
  t->hs_busy = 0;
  ns_cond_broadcast(&t->hsq, code);
  if (t->closed) return rerun(L, which);   /* it says "closed" */
  if (code == 0) {
    int rc;
    t->tls_ready = 1;
    /* since connect() as curl's appconnect; accepted: the handshake */
    t->t_tls = ns_now() - (t->t_start > 0 ? t->t_start : t->hs_start);
    /* application data that came with the last handshake flight */
    if ((rc = tls_input(t, NULL, 0)) != 0 && t->rd_err == 0)
      t->rd_err = rc;
    return rerun(L, which);
  }
  if (code == NS_ETLS) tls_flush(t, 1);  /* the alert, best effort */
  lua_pushnil(L);
  lua_pushstring(L, tcp_strerror(t, code));
  if (which == HS_SEND) {
    /* nothing sent: the last index is i - 1, as send's own failures say
    ** (a polling caller resends from there) */
    lua_Integer i = lua_isinteger(L, 3) ? lua_tointeger(L, 3) : 1;
    if (i < 0 && lua_type(L, 2) == LUA_TSTRING)
      i += (lua_Integer)lua_rawlen(L, 2) + 1;
    lua_pushinteger(L, i < 1 ? 0 : i - 1);
    return 3;
  }
  if (which != HS_CALL) {
    lua_pushliteral(L, "");          /* the partial result */
    return 3;
  }
  return 2;
}

/* Drives the engine: flush what it wrote, park for what it needs. */
static int hs_step(lua_State *L, tcp_t *t, int which) {
  for (;;) {
    int rc = t->tlsops->handshake(t->tls);
    if (rc == NS_TLS_OK) return hs_end(L, t, 0, which);
    if (rc == NS_TLS_ERROR) return hs_end(L, t, NS_ETLS, which);
    if (rc == NS_TLS_WANT_WRITE) {
      if ((rc = tls_flush(t, 0)) != 0) return hs_end(L, t, rc, which);
      continue;
    }
    if (t->rd_err) return hs_end(L, t, t->rd_err, which);
    if (t->hs_poll) {
      /* settimeout(0): the peer's flight may be in the kernel already */
      if ((rc = tls_flush(t, 0)) != 0) return hs_end(L, t, rc, which);
      if (poll_in(t)) continue;
    }
    start_reading(t);
    {
      double left = t->hs_deadline - ns_now();
      return ns_wait(L, &t->hsw, left > 0 ? left : 0, hs_k, which);
    }
  }
}

static int hs_k(lua_State *L, int status, lua_KContext ctx) {
  tcp_t *t = lua_touserdata(L, 1);
  (void)status;
  if (t->closed) return hs_end(L, t, NS_ECLOSED, (int)ctx);
  if (t->hsw.status == UV_ETIMEDOUT)   /* polled: "timeout", try again */
    return hs_end(L, t, t->hs_poll ? UV_ETIMEDOUT : NS_EHANDSHAKE, (int)ctx);
  return hs_step(L, t, (int)ctx);
}

/* Deadline scope, interrupt or cancel of the handshaking task: let the
** next caller take over where it stopped. */
static void hs_cancel(ns_waiter_t *w) {
  tcp_t *t = w->data;
  t->hs_busy = 0;
  ns_cond_broadcast(&t->hsq, w->status);
}

static int hsq_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return rerun(L, (int)ctx);
}

/* Handshake first, then the method `which` (stack: its arguments). */
static int tls_then(lua_State *L, tcp_t *t, int which) {
  ns_waiter_t *w = which == HS_SEND ? &t->wr : &t->rd;
  if (w->task) return ns_fail(L, NS_EBUSY);
  if (t->hs_busy)                    /* another task runs it: wait */
    return ns_cond_wait(L, &t->hsq, w, -1, hsq_k, which);
  {
    /* bounded by handshake_timeout, else the socket's, else 30 s */
    double limit = t->tls->handshake_timeout;
    if (limit < 0) limit = ns_timeout_op(&t->tm, t->tm.conn, ns_now());
    if (limit < 0) limit = NS_TLS_HANDSHAKE_TIMEOUT;
    t->hs_start = ns_now();
    t->hs_deadline = t->hs_start + limit;
    t->hs_poll = limit == 0;
  }
  t->hs_busy = 1;
  t->hsw.data = t;
  t->hsw.cancel = hs_cancel;
  return hs_step(L, t, which);
}

/* tlsattach(opts [, host [, mode]]) -> true | nil, err: TLS from now on.
** opts: options table, tls context, true or nil (src/tls.c); host: the
** name to check and send as SNI (client; default: the host given to
** connect); mode: "client" or "server", by default "server" for accepted
** sockets. The handshake follows at tlshandshake() or the first
** receive/send. On a server socket, opts (a context) is kept and every
** accepted socket gets an engine from it. */
static int tls_attach(lua_State *L, tcp_t *t, int opts, int server,
                      const char *host) {
  const ns_tls_ops_t *ops;
  ns_tls_t *e;
  if (t->closed || t->h == NULL) return ns_fail(L, NS_ECLOSED);
  if (t->tls) return ns_fail(L, NS_ETLSSTARTED);
  if (t->rd.task || t->wr.task || t->wreq) return ns_fail(L, NS_EBUSY);
  if (host == NULL) host = t->peer;
  ops = ns_tls_ops(L);
  if ((e = ops->open(L, opts, server, host)) == NULL)
    return ns_fail_str(L, lua_tostring(L, -1));
  t->tlsops = ops;
  t->tls = e;
  t->tls_ready = 0;
  ns_cond_init(&t->hsq);
  /* bytes read past the plaintext part (STARTTLS) are the first flight */
  if (t->in.len > 0) {
    int rc = ops->feed(e, ns_buf_ptr(&t->in), t->in.len);
    in_consume(t, t->in.len);
    if (rc != NS_TLS_OK) return ns_fail(L, UV_ENOMEM);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int meth_tlsattach(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  const char *host = lua_isnoneornil(L, 3) ? NULL
                     : ns_checkcstring(L, 3, "server name");
  const char *mode = luaL_optstring(L, 4, NULL);
  int server = t->accepted;
  if (t->state == S_SERVER) {
    /* kept for accept(); lua/socket.lua makes it a tls.core context */
    luaL_checkany(L, 2);
    if (t->closed) return ns_fail(L, NS_ECLOSED);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, 1);
    lua_pushboolean(L, 1);
    return 1;
  }
  check_state(L, 1, S_CLIENT);
  if (mode) {
    luaL_argcheck(L, strcmp(mode, "client") == 0 ||
                  strcmp(mode, "server") == 0, 4, "\"client\" or \"server\"");
    server = mode[0] == 's';
  }
  if (lua_isnone(L, 2)) lua_pushnil(L);
  return tls_attach(L, t, 2, server, host);
}

/* tlshandshake() -> true | nil, err (at once if already done). */
static int meth_tlshandshake(lua_State *L) {
  tcp_t *t = check_state(L, 1, S_CLIENT);
  lua_settop(L, 1);
  if (t->closed || t->h == NULL) return ns_fail(L, NS_ECLOSED);
  if (t->tls == NULL) return ns_fail(L, NS_ENOTTLS);
  if (t->tls_ready) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return tls_then(L, t, HS_CALL);
}

/* tlsinfo(what) -> value | nil: "certificate" (the peer's, a table),
** "protocol", "cipher", "alpn", "session", "reused" (src/tls.c). */
static int meth_tlsinfo(lua_State *L) {
  tcp_t *t = check_tcp(L, 1);
  const char *what = luaL_checkstring(L, 2);
  if (t->tls == NULL) {
    lua_pushnil(L);
    return 1;
  }
  if (strcmp(what, "certificate") == 0)
    return t->tlsops->push_certificate(L, t->tls);
  return t->tlsops->push_info(L, t->tls, what);
}

/* ---- select (src/select.c asks through these) ---- */

static int ready_read(tcp_t *t) {
  if (t->closed) return 0;
  if (t->state == S_SERVER) return t->nacq > 0 || t->acc_err;
  if (t->state == S_CLIENT) return t->in.len > 0 || t->rd_err != 0;
  return 0;
}

static int ready_write(tcp_t *t) {
  if (t->closed) return 0;
  if (t->state == S_CLIENT) return t->wreq == NULL;
  if (t->state == S_MASTER) return t->he == NULL && t->conn_err != 0;
  return 0;
}

static int sel_ready(void *p, int write) {
  return write ? ready_write(p) : ready_read(p);
}

static int sel_watch(void *p, ns_selnode_t *n, ns_waiter_t *w, int write) {
  tcp_t *t = p;
  if (t->closed) return 0;
  ns_sel_link(&t->sel, n, w);
  if (!write && t->state == S_CLIENT) start_reading(t);
  if (t->tls && t->tlsout.len) tls_flush(t, 1);  /* see recv_step */
  return 1;
}

/* Reads: bytes or the end (into t->in), a pending connection (into
** t->acq); writes: a connect that ended, a queued chunk libuv wrote. */
static void sel_poll(void *p, int write) {
  tcp_t *t = p;
  if (t->closed) return;
  if (!write && !ready_read(t)) {
    if (t->state == S_CLIENT) poll_in(t);
    else if (t->state == S_SERVER) accept_poll(t);
  } else if (write) {
    if (t->he) he_poll(t);
    wreq_settle(t);
  }
}

static const ns_select_ops_t sel_ops = {sel_ready, sel_watch, sel_poll};

/* ---- module ---- */

static int new_master(lua_State *L, int family) {
  tcp_t *t = tcp_new(L, S_MASTER);
  t->want_family = family;
  if (family == AF_INET6) t->v6only = 1;   /* as LuaSocket's tcp6() */
  if (family != AF_UNSPEC) {
    uv_tcp_t *h;
    int rc = new_handle(t, family, &h);
    if (rc != 0) return ns_fail(L, rc);
    t->h = h;
    h->data = t;
    t->family = family;
  }
  return 1;
}

static int lib_tcp(lua_State *L) { return new_master(L, AF_UNSPEC); }
static int lib_tcp4(lua_State *L) { return new_master(L, AF_INET); }
static int lib_tcp6(lua_State *L) { return new_master(L, AF_INET6); }

/* unix() -> a master whose connect/bind take a path (socket.unix) */
static int lib_unix(lua_State *L) {
  tcp_t *t = tcp_new(L, S_MASTER);
  t->want_family = AF_UNIX;
  reclass(L, -1, t);
  return 1;
}

static int lib_gettime(lua_State *L) {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  lua_pushnumber(L, (double)tv.tv_sec + tv.tv_usec / 1e6);
  return 1;
}

/* Python's create_server: accept() also returns the peer's ip and port. */
static int lib_pyaccept(lua_State *L) {
  check_tcp(L, 1)->pyaccept = (unsigned char)lua_toboolean(L, 2);
  lua_settop(L, 1);
  return 1;
}

static const luaL_Reg methods[] = {
  {"accept", meth_accept},
  {"bind", meth_bind},
  {"close", meth_close},
  {"connect", meth_connect},
  {"dirty", meth_dirty},
  {"getfamily", meth_getfamily},
  {"getfd", meth_getfd},
  {"getoption", meth_getoption},
  {"getpeername", meth_getpeername},
  {"getsockname", meth_getsockname},
  {"getstats", meth_getstats},
  {"gettimeout", meth_gettimeout},
  {"idle", meth_idle},
  {"listen", meth_listen},
  {"receive", meth_receive},
  {"receiveany", meth_receiveany},
  {"receiveuntil_raw", meth_receiveuntil_raw},
  {"readerror", meth_readerror},
  {"send", meth_send},
  {"forward_raw", meth_forward_raw},
  {"sendfile_raw", meth_sendfile_raw},
  {"setfd", meth_setfd},
  {"setoption", meth_setoption},
  {"setpeername", meth_connect},
  {"setsockname", meth_bind},
  {"setstats", meth_setstats},
  {"settimeout", meth_settimeout},
  {"settimeouts", meth_settimeouts},
  {"shutdown", meth_shutdown},
  {"timings", meth_timings},
  {"tlsattach", meth_tlsattach},
  {"tlshandshake", meth_tlshandshake},
  {"tlsinfo", meth_tlsinfo},
  {NULL, NULL}
};

static const luaL_Reg lib[] = {
  {"tcp", lib_tcp},
  {"tcp4", lib_tcp4},
  {"tcp6", lib_tcp6},
  {"unix", lib_unix},
  {"select", ns_select},
  {"gettime", lib_gettime},
  {"pyaccept", lib_pyaccept},
  {NULL, NULL}
};

int luaopen_socket_core(lua_State *L) {
  /* A busy server's Lua frees received strings in bulk: glibc would hand
  ** the pages back at once and fault them in again for the next requests
  ** (15-20% of the server's CPU with 16 KiB messages, perf says). Keep
  ** up to 16 MiB of free heap; allocations >= 1 MiB get their own maps. */
  mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  luaL_newmetatable(L, TCP_MT);
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");          /* mt, methods */
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -3, "__gc");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -3, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -3, "__tostring");
  ns_select_register(L, TCP_MT, &sel_ops);
  luaL_newlib(L, lib);                       /* mt, methods, lib */
  lua_insert(L, -2);
  lua_setfield(L, -2, "tcp_methods");        /* Lua adds helpers there */
  lua_pushvalue(L, -2);
  ns_class_define(L, &tcp_kind);             /* one metatable per class */
  lua_remove(L, -2);
  lua_pushinteger(L, 65535);
  lua_setfield(L, -2, "_SETSIZE");
  lua_pushinteger(L, -1);
  lua_setfield(L, -2, "_SOCKETINVALID");
  lua_pushnumber(L, CONNECT_TIMEOUT);
  lua_setfield(L, -2, "CONNECT_TIMEOUT");
  lua_pushinteger(L, HE_DELAY_MS);
  lua_setfield(L, -2, "HAPPY_EYEBALLS_DELAY_MS");
  return 1;
}
