/*
** http.c -- "http.core": libcurl's multi interface driven by the libuv loop
** (built as netsh_http.so, loaded on first require).
**
** One CURLM for the process, as in curl's multi-uv example: curl tells us
** which sockets to watch (curl_socket_cb: one uv_poll_t per socket,
** attached to the socket with curl_multi_assign) and when to call it back
** (curl_timer_cb: one uv_timer_t). Callbacks curl calls are named curl_*_cb,
** libuv's plain *_cb. Both hand the event to curl_multi_socket_action, then
** drain curl_multi_info_read, which is where transfers end. Callbacks only
** record facts in C buffers and ns_wake() the parked task; Lua runs only in
** the task, from the continuations.
**
** A transfer (xfer_t, "netsh.http.xfer") is a Lua userdata that owns its
** easy handle. While it is in the multi, curl holds a pointer to it; the
** task that waits on it has it on its stack, and a streamed response keeps
** it referenced, so it is only collected once detached, or at lua_close,
** where xfer_release() takes it out of the multi first. The multi itself is
** released by the finalizer of a sentinel userdata made at load time, which
** runs after every transfer's (finalizers run in reverse creation order).
** Poll handles are kept per socket number (poll_for) and closed at
** teardown; a uv_poll_t belongs to libuv from uv_close() until free_cb().
**
** Streaming: the write callback appends to x->body; above x->stream_cap
** bytes it returns CURL_WRITEFUNC_PAUSE (curl keeps that chunk and
** delivers it again on unpause), and read() unpauses once it has taken the
** buffer. So a large download holds at most ~stream_cap bytes in memory.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <zlib.h>
#include <brotli/decode.h>
#include <zstd.h>
#include "netsh.h"

#define XFER_MT "netsh.http.xfer"
#define SHARE_MT "netsh.http.session"
#define MULTI_MT "netsh.http.multi"

/* ---- the multi handle and its libuv watchers ---- */

typedef struct {
  uv_poll_t h;               /* h.data == this */
  curl_socket_t s;
  int active;                /* curl watches s through it */
  int events;                /* UV_READABLE|UV_WRITABLE started, 0: stopped */
  int owned;                 /* a connection socket we opened (curl_open_cb) */
} pollctx_t;

static CURLM *multi;         /* NULL before load and after the sentinel */
static uv_timer_t *timer;    /* curl's one timeout */
static pollctx_t **pollv;    /* by socket number; see curl_socket_cb */
static int npollv;
static int nactive;          /* sockets curl watches now */
static int in_timer_cb;
static int live;             /* transfers in the multi */
static int global_inited;
static int env_proxy;        /* a *_proxy variable is set (at load) */

static void free_cb(uv_handle_t *h) { free(h); }

static void drain(void);
static void apply_pauses(void);

static void poll_cb(uv_poll_t *h, int status, int events) {
  pollctx_t *p = h->data;
  int flags = 0, running;
  if (p == NULL) return;
  if (!p->active || multi == NULL) {
    /* an idle kept-alive connection became readable: the peer closed it
    ** (or misbehaves). Stop watching; curl's own check drops it later. */
    uv_poll_stop(&p->h);
    p->events = 0;
    return;
  }
  if (status < 0) {
    /* POLLERR (a reset): libuv stopped the watch and says only EBADF.
    ** Bytes before the reset may still wait in the socket, a whole
    ** response maybe: let curl read and write, and meet the error in
    ** its own recv/send, as it would with poll(2); watch on meanwhile
    ** (curl asks for nothing new while its wish is unchanged) */
    events = p->events;
    if (uv_poll_start(&p->h, events, poll_cb) != 0) {
      p->events = 0;
      flags = CURL_CSELECT_ERR;
    }
  }
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(multi, p->s, flags, &running);
  drain();
  apply_pauses();
}

static void timeout_cb(uv_timer_t *h) {
  int running;
  (void)h;
  if (multi == NULL) return;
  in_timer_cb = 1;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  in_timer_cb = 0;
  drain();
  apply_pauses();
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer. 0 means "as soon as
** possible": a 0 ms libuv timer runs at the next loop iteration, except
** when set from inside timeout_cb, where libuv 1.44 would run it again in
** the same pass; there 1 ms lets I/O happen first. */
static int curl_timer_cb(CURLM *m, long ms, void *ud) {
  (void)m; (void)ud;
  if (ms < 0) {
    uv_timer_stop(timer);
    return 0;
  }
  if (ms == 0 && in_timer_cb) ms = 1;
  uv_timer_start(timer, timeout_cb, (uint64_t)ms, 0);
  return 0;
}

/* The poll handle for socket number s, made on first use and kept for
** the number: curl stops watching a kept-alive connection after every
** response and watches it again on the next request, and re-initialising
** or even restarting a libuv poll costs epoll_ctl calls each time.
**
** So, for the connection sockets we open ourselves (curl_open_cb), a
** REMOVE from curl leaves the poll running, readable only and unreferenced
** (it does not keep the loop alive): the next request on the connection
** finds it already in place and costs no syscall. Should the idle socket
** fire (the server closed it), poll_cb just stops it. curl_close_cb stops
** the poll before the socket is closed, so a stale number never stays in
** the loop. Sockets curl opens on its own (the resolver's wake-up pair)
** are stopped at once on REMOVE, as curl closes them without telling us. */
static pollctx_t *poll_for(curl_socket_t s) {
  pollctx_t *p;
  if (s < 0) return NULL;
  if (s >= npollv) {
    int n = npollv ? npollv : 64, i;
    pollctx_t **v;
    while (n <= s) n *= 2;
    v = realloc(pollv, (size_t)n * sizeof *v);
    if (v == NULL) return NULL;
    for (i = npollv; i < n; i++) v[i] = NULL;
    pollv = v;
    npollv = n;
  }
  if ((p = pollv[s]) != NULL) return p;
  p = malloc(sizeof *p);
  if (p == NULL) return NULL;
  if (uv_poll_init_socket(ns_loop(), &p->h, s) != 0) {
    free(p);
    return NULL;
  }
  p->s = s;
  p->active = 0;
  p->events = 0;
  p->owned = 0;
  p->h.data = p;
  pollv[s] = p;
  return p;
}

static void poll_stop(pollctx_t *p) {
  if (p->events) {
    uv_poll_stop(&p->h);
    p->events = 0;
  }
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching socket s. */
static int curl_socket_cb(CURL *e, curl_socket_t s, int what, void *ud,
                     void *sockp) {
  pollctx_t *p = sockp;
  int events = 0;
  (void)e; (void)ud;
  if (what == CURL_POLL_REMOVE) {
    if (p) {
      curl_multi_assign(multi, s, NULL);
      p->active = 0;
      nactive--;
      if (p->owned && p->events == UV_READABLE)
        uv_unref((uv_handle_t *)&p->h);       /* idle watch, see above */
      else
        poll_stop(p);
    }
    return 0;
  }
  if (p == NULL) {
    p = poll_for(s);
    if (p == NULL) return -1;
    p->active = 1;
    nactive++;
    uv_ref((uv_handle_t *)&p->h);
    curl_multi_assign(multi, s, p);
  }
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  if (events != p->events) {
    if (uv_poll_start(&p->h, events, poll_cb) != 0) return -1;
    p->events = events;
  }
  return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: connection sockets, marked as ours. */
static curl_socket_t curl_open_cb(void *ud, curlsocktype purpose,
                             struct curl_sockaddr *a) {
  curl_socket_t s;
  pollctx_t *p;
  (void)ud; (void)purpose;
  s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (s < 0) return CURL_SOCKET_BAD;
  p = poll_for(s);
  if (p) {
    poll_stop(p);                /* a number reused since: start afresh */
    p->owned = 1;
  }
  return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: no poll may outlive its socket. */
static int curl_close_cb(void *ud, curl_socket_t s) {
  (void)ud;
  if (s >= 0 && s < npollv && pollv[s]) {
    pollctx_t *p = pollv[s];
    poll_stop(p);
    p->owned = 0;
    if (p->active) {
      p->active = 0;
      nactive--;
    }
  }
  return close(s);
}

/* ---- easy handle pools ---- */

/* Finished transfers hand their easy handle back to the pool they came
** from, so a busy script does not pay curl_easy_init and cleanup (a large
** calloc and a 16 KiB buffer) per request, nor setting two dozen options:
** a handle whose last request used the same spec table (spec._id, given
** to the specs lua/http.lua reuses) and method is taken as it is, and only
** the URL and the pointers to the new transfer are set; any other handle
** is curl_easy_reset and set up afresh.
**
** A handle keeps its share and cookie engine across a reset, so each
** session has a pool of its own (handles with cookies on, as sessions
** default), and plain calls share one (handles with cookies off);
** requests with other cookie settings are not pooled. */
#define POOL_MAX 64

typedef struct {
  CURL *e;
  struct curl_slist *hdrs;   /* the request headers curl points to */
  lua_Integer id;            /* spec._id of its last request, 0: none */
  char method[12];
} pooled_t;

typedef struct {
  pooled_t v[POOL_MAX];
  int n;
  int closed;                /* the session is closed: no more returns */
  int cookies;               /* its handles have the cookie engine on */
} pool_t;

static pool_t plain_pool;

typedef struct {
  CURLSH *sh;                /* first: NULL once closed */
  pool_t pool;
} session_t;

static void pooled_reset(pool_t *pool, pooled_t *p) {
  curl_slist_free_all(p->hdrs);
  p->hdrs = NULL;
  /* curl 7.88's reset forgets, without freeing, the list of cookie
  ** files; emptying it first frees it (a share's cookies stay) */
  if (pool->cookies)
    curl_easy_setopt(p->e, CURLOPT_COOKIEFILE, (char *)NULL);
  curl_easy_reset(p->e);
}

/* A handle for a request of spec id and method: *same is set when it
** is still set up for exactly that (*hdrs then gets its header list). */
static CURL *pool_take(pool_t *pool, lua_Integer id, const char *method,
                       int *same, struct curl_slist **hdrs) {
  pooled_t p;
  int i;
  *same = 0;
  *hdrs = NULL;
  if (pool == NULL || pool->n == 0) return curl_easy_init();
  i = pool->n - 1;
  if (id != 0) {
    int j;
    for (j = pool->n - 1; j >= 0; j--)
      if (pool->v[j].id == id && strcmp(pool->v[j].method, method) == 0) {
        i = j;
        *same = 1;
        break;
      }
  }
  p = pool->v[i];
  pool->v[i] = pool->v[--pool->n];
  if (*same) {
    *hdrs = p.hdrs;
  } else {
    pooled_reset(pool, &p);
  }
  return p.e;
}

/* Takes e (and hdrs) back; 0 when the pool has no room. */
static int pool_give(pool_t *pool, CURL *e, struct curl_slist *hdrs,
                     lua_Integer id, const char *method) {
  pooled_t *p;
  if (pool->closed || pool->n >= POOL_MAX) return 0;
  p = &pool->v[pool->n++];
  p->e = e;
  p->hdrs = hdrs;
  p->id = id;
  snprintf(p->method, sizeof p->method, "%s", method);
  return 1;
}

static void pool_clear(pool_t *pool) {
  while (pool->n > 0) {
    pooled_t *p = &pool->v[--pool->n];
    curl_easy_cleanup(p->e);
    curl_slist_free_all(p->hdrs);
  }
}

/* ---- transfers ---- */


/* The expansion-ratio guard on content-encoded bodies: past the first
** RATIO_FREE decoded bytes, a body may decode to at most max_ratio times
** the bytes received for it. curl counts a read's bytes before decoding
** them, except in chunked framing, where the count lags by up to one
** read buffer (CURL_MAX_WRITE_SIZE): that much is added as slack. A bomb
** (gzip's ratio is ~1000:1, br's far more) stops after about RATIO_FREE
** bytes, whatever the absolute cap (max_decoded). */
#define RATIO_FREE (1024 * 1024)

/* Which cap `decoded` bytes, made of `raw` bytes received, are past: 0,
** NS_EBOMB (max_decoded) or NS_ERATIO (max_ratio, past RATIO_FREE; raw
** is not read below it). Both paths ask it: curl_write_cb and core.decode
** (lua/http/fast.lua's bodies). */
static int decode_cap(curl_off_t decoded, curl_off_t raw,
                      curl_off_t max_decoded, double max_ratio) {
  if (max_decoded > 0 && decoded > max_decoded) return NS_EBOMB;
  if (max_ratio > 0 && decoded > RATIO_FREE &&
      (double)decoded > max_ratio * (double)(raw + CURL_MAX_WRITE_SIZE))
    return NS_ERATIO;
  return 0;
}

/* Pushes the message of a decode_cap() error. */
static void push_cap_error(lua_State *L, int e, curl_off_t max_decoded,
                           double max_ratio) {
  if (e == NS_EBOMB) {
    lua_pushfstring(L, "%s (max %I bytes)", ns_strerror(NS_EBOMB),
                    (lua_Integer)max_decoded);
  } else {
    char r[32];
    snprintf(r, sizeof r, "%g", max_ratio);
    lua_pushfstring(L, "%s (over %s times the bytes received)",
                    ns_strerror(NS_ERATIO), r);
  }
}

/* What curl_header_cb keeps of one response's framing fields. */
typedef struct {
  curl_off_t clen;           /* Content-Length, -1: none yet */
  int te;                    /* a Transfer-Encoding field was seen */
} framing_t;

typedef struct xfer {
  CURL *easy;                /* NULL once released */
  struct curl_slist *hdrs;   /* request headers, owned */
  ns_waiter_t w;             /* the task in perform() or read() */
  ns_buf_t body;             /* whole body, or stream data not yet read */
  ns_buf_t head;             /* header lines of the latest response */
  curl_off_t total;          /* body bytes delivered (decoded) */
  curl_off_t max_size;       /* 0: no cap */
  curl_off_t max_decoded;    /* cap when the body is content-encoded */
  double max_ratio;          /* decoded/received past RATIO_FREE, 0: off */
  size_t stream_cap;         /* stream: pause above this many bytes */
  double wait_timeout;       /* stream: per-wait seconds, < 0: none */
  CURLcode result;
  int xerr;                  /* 0, or why our callback aborted (NS_E*) */
  const char *bad;           /* NS_EBADRESPONSE: why the head was refused */
  framing_t fr;              /* the latest response's framing fields */
  int cancelled;             /* UV_E* or NS_E* that removed it */
  long status;               /* status code of the latest response line */
  pool_t *pool;              /* where the handle goes back, NULL: freed */
  lua_Integer spec_id;       /* spec._id, 0: a one-off spec */
  char method[12];           /* for the pool (spec_id 0 when longer) */
  unsigned in_multi:1, done:1, stream:1, paused:1, head_done:1;
  unsigned encoded:1, follow:1, location:1, started:1;
  ns_link_t pause;           /* on pause_list: to pause after the action */
  char errbuf[CURL_ERROR_SIZE];
  int trace;                 /* verbose: 0 off, 1 on, 2 with the bodies */
  char tname[48];            /* the task named in trace lines */
} xfer_t;

/* xfer_t.pause links: see apply_pauses() */
static ns_link_t pause_list = {&pause_list, &pause_list};

static xfer_t *check_xfer(lua_State *L, int i) {
  return luaL_checkudata(L, i, XFER_MT);
}

/* Take x out of the multi (safe outside curl callbacks only). */
static void xfer_detach(xfer_t *x) {
  if (x->in_multi) {
    x->in_multi = 0;
    live--;
    if (multi) curl_multi_remove_handle(multi, x->easy);
  }
}

static void xfer_release(xfer_t *x) {
  if (x->easy == NULL) return;
  ns_list_remove(&x->pause);   /* not expected: the list drains at once */
  ns_cancel(&x->w, UV_ECANCELED);
  xfer_detach(x);
  if (x->trace) {                    /* x goes: curl must not call back */
    curl_easy_setopt(x->easy, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(x->easy, CURLOPT_DEBUGDATA, NULL);
  }
  /* only handles whose transfer ran to its end are reused */
  if (x->pool && x->done && !x->cancelled && !x->paused &&
      x->result == CURLE_OK &&
      pool_give(x->pool, x->easy, x->hdrs, x->spec_id, x->method)) {
    x->hdrs = NULL;
  } else {
    curl_easy_cleanup(x->easy);
  }
  x->easy = NULL;
  curl_slist_free_all(x->hdrs);
  x->hdrs = NULL;
  ns_buf_free(&x->body);
  ns_buf_free(&x->head);
}

/* Waiter cancel hook (timeout, task.timeout, cancel, interrupt): the
** transfer stops here and stays "done" with the reason. */
static void xfer_cancel(ns_waiter_t *w) {
  xfer_t *x = w->data;
  if (x->done) return;
  xfer_detach(x);
  x->done = 1;
  x->cancelled = w->status;
}

/* Transfers end here, from poll_cb/timeout_cb or a kick, never inside a
** curl callback, so removing the handle is allowed. */
static void drain(void) {
  CURLMsg *msg;
  int left;
  while (multi && (msg = curl_multi_info_read(multi, &left))) {
    xfer_t *x = NULL;
    CURL *e = msg->easy_handle;
    CURLcode rc = msg->data.result;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
    if (x == NULL) continue;
    x->result = rc;
    x->done = 1;
    xfer_detach(x);            /* the connection goes back to the cache */
    ns_wake(&x->w, 0);
  }
}

static int is_space(int c) { return c == ' ' || c == '\t'; }

/* Case-insensitive "name:" prefix test on a header line. */
static int header_is(const char *p, size_t n, const char *name) {
  size_t k = strlen(name);
  return n > k && p[k] == ':' && strncasecmp(p, name, k) == 0;
}

#define CLEN_MAX ((curl_off_t)0x7fffffffffffffff)   /* curl_off_t: 64 bits */

/* A Content-Length value: 1*DIGIT, or a list of them ("5, 5"), all the
** same. Returns the value, -1 for a bad one, -2 for differing ones. */
static curl_off_t parse_clen(const char *p, const char *end) {
  curl_off_t v = -1;
  for (;;) {
    curl_off_t e = 0;
    while (p < end && is_space((unsigned char)*p)) p++;
    if (p == end || !isdigit((unsigned char)*p)) return -1;
    for (; p < end && isdigit((unsigned char)*p); p++) {
      int d = *p - '0';
      if (e > (CLEN_MAX - d) / 10) return -1;   /* overflow */
      e = e * 10 + d;
    }
    if (v >= 0 && e != v) return -2;
    v = e;
    while (p < end && is_space((unsigned char)*p)) p++;
    if (p == end) return v;
    if (*p++ != ',') return -1;
  }
}

/* Checks one line of a response head (status line or field line, with
** its line end) for what RFC 9112 makes unrecoverable and curl 7.88 lets
** through: control bytes (a lone CR, any C0 but HTAB, DEL), differing or
** malformed Content-Length values, Content-Length together with
** Transfer-Encoding (a client that picks one is open to response
** splitting). Identical Content-Length values are fine. framing: fr, or
** NULL for a trailer. Returns NULL, or why the response is refused. */
static const char *check_line(framing_t *fr, const char *p, size_t len) {
  size_t i, n = len;
  if (n > 0 && p[n - 1] == '\n') n--;
  if (n > 0 && p[n - 1] == '\r') n--;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return "bad response: control character in header";
  }
  if (fr == NULL) return NULL;
  if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    fr->clen = -1;                   /* a new response */
    fr->te = 0;
    return NULL;
  }
  if (header_is(p, n, "content-length")) {
    curl_off_t v = parse_clen(p + 15, p + n);
    if (v == -1) return "bad response: invalid Content-Length";
    if (v == -2 || (fr->clen >= 0 && v != fr->clen))
      return "bad response: differing Content-Length values";
    fr->clen = v;
  } else if (header_is(p, n, "transfer-encoding")) {
    fr->te = 1;
  } else {
    return NULL;
  }
  if (fr->clen >= 0 && fr->te)
    return "bad response: Content-Length with Transfer-Encoding";
  return NULL;
}

static size_t curl_header_cb(char *p, size_t size, size_t n, void *ud) {
  xfer_t *x = ud;
  size_t len = size * n;
  if ((x->bad = check_line(x->head_done ? NULL : &x->fr, p, len))) {
    x->xerr = NS_EBADRESPONSE;
    return 0;
  }
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
    /* a new response (redirect hop, 1xx, final): keep only its lines */
    /* curl's header lines are not NUL-terminated: no strtol */
    const char *sp = memchr(p, ' ', len), *end = p + len;
    x->head.len = x->head.off = 0;
    x->status = 0;
    if (sp)
      for (sp++; sp < end && isdigit((unsigned char)*sp) &&
           x->status < 1000; sp++)
        x->status = x->status * 10 + (*sp - '0');
    x->encoded = 0;
    x->location = 0;
  } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
    /* end of a header block: final unless curl is about to follow it */
    int hop = x->status < 200 ||
      (x->follow && x->location && x->status >= 300 && x->status < 400 &&
       x->status != 304);
    if (!hop) {
      x->head_done = 1;
      if (x->stream) ns_wake(&x->w, 0);
    }
    return len;
  } else if (header_is(p, len, "content-encoding")) {
    size_t i = 17;
    while (i < len && is_space((unsigned char)p[i])) i++;
    /* "identity" is no encoding; anything else is decoded by curl */
    if (i < len && p[i] != '\r' &&
        !(len - i >= 8 && strncasecmp(p + i, "identity", 8) == 0))
      x->encoded = 1;
  } else if (header_is(p, len, "location")) {
    x->location = 1;
  }
  if (ns_buf_append(&x->head, p, len) != 0) {
    x->xerr = UV_ENOMEM;
    return 0;
  }
  return len;
}

/* Streams whose reader is behind, to pause once curl has returned.
** Returning CURL_WRITEFUNC_PAUSE pauses at once, but curl 7.88 then
** decodes the rest of what it read into a buffer of its own (up to 64
** MiB), bypassing curl_write_cb and its guards: a bomb's 16 KiB can
** become that much. So an encoded stream takes the whole read
** (curl_write_cb checks the ratio) and is paused by apply_pauses(), after
** the socket action; only past stream_cap + OVERSHOOT does it pause at
** once. */
#define OVERSHOOT (4 * 1024 * 1024)

static void apply_pauses(void) {
  ns_link_t *l;
  while ((l = ns_list_first(&pause_list)) != NULL) {
    xfer_t *x = ns_container_of(l, xfer_t, pause);
    ns_list_remove(l);
    if (x->easy && x->in_multi && !x->done && !x->paused &&
        x->body.len >= x->stream_cap) {
      x->paused = 1;
      curl_easy_pause(x->easy, CURLPAUSE_RECV);
    }
  }
}

static size_t curl_write_cb(char *p, size_t size, size_t n, void *ud) {
  xfer_t *x = ud;
  size_t len = size * n;
  if (x->stream && x->body.len >= x->stream_cap) {
    if (!x->encoded || x->body.len >= x->stream_cap + OVERSHOOT) {
      x->paused = 1;             /* the reader is behind: hold the peer */
      return CURL_WRITEFUNC_PAUSE;
    }
    if (!ns_linked(&x->pause)) ns_list_insert_head(&pause_list, &x->pause);
  }
  if (x->max_size > 0 && x->total + (curl_off_t)len > x->max_size) {
    x->xerr = NS_ETOOBIG;
    return 0;                    /* CURLE_WRITE_ERROR */
  }
  if (x->encoded) {
    curl_off_t decoded = x->total + (curl_off_t)len, raw = 0;
    int e;
    if (x->max_ratio > 0 && decoded > RATIO_FREE)
      curl_easy_getinfo(x->easy, CURLINFO_SIZE_DOWNLOAD_T, &raw);
    if ((e = decode_cap(decoded, raw, x->max_decoded, x->max_ratio)) != 0) {
      x->xerr = e;
      return 0;
    }
  }
  if (ns_buf_append(&x->body, p, len) != 0) {
    x->xerr = UV_ENOMEM;
    return 0;
  }
  x->total += (curl_off_t)len;
  if (x->stream) {
    x->head_done = 1;
    ns_wake(&x->w, 0);
  }
  return len;
}

/* ---- building a transfer from a spec table ---- */

/* A string of spec t for curl, which reads it up to its first NUL: a
** string holding one raises (lua/http.lua checks first, naming the
** caller's option; this is the C side's own guard). */
static const char *opt_string(lua_State *L, int t, const char *k) {
  const char *s;
  lua_getfield(L, t, k);
  s = lua_tostring(L, -1);       /* stays valid: t anchors the value */
  if (s && ns_checkcstring(L, -1, NULL) == NULL)
    luaL_argerror(L, 1, lua_pushfstring(L, "'%s' must not contain a NUL "
                                        "byte", k));
  lua_pop(L, 1);
  return s;
}

/* RFC 9110's token, which a method must be: no space, CR, LF, NUL... */
static int is_token(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
      return 0;
  return 1;
}

static double opt_number(lua_State *L, int t, const char *k, double d) {
  double v = d;
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static int opt_bool(lua_State *L, int t, const char *k, int d) {
  int v = d;
  lua_getfield(L, t, k);
  if (!lua_isnil(L, -1)) v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static long http_version_code(const char *v) {
  if (v == NULL) return CURL_HTTP_VERSION_NONE;
  if (strcmp(v, "1.0") == 0) return CURL_HTTP_VERSION_1_0;
  if (strcmp(v, "1.1") == 0) return CURL_HTTP_VERSION_1_1;
  if (strcmp(v, "2") == 0) return CURL_HTTP_VERSION_2_0;
  if (strcmp(v, "2-prior-knowledge") == 0)
    return CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
  return -1;
}

static void set_ms(CURL *e, CURLoption o, double s) {
  if (s > 0) {
    long ms = (long)(s * 1000.0);
    curl_easy_setopt(e, o, ms > 0 ? ms : 1L);
  }
}

/* ---- verbose: curl -v's account on stderr, as the socket trace ---- */

/* One trace line per line of text: "netsh trace: [task] http * text". */
static void trace_lines(xfer_t *x, char mark, const char *p, size_t n) {
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t len = nl ? (size_t)(nl - p) : n;
    size_t step = nl ? len + 1 : len;
    if (len > 0 && p[len - 1] == '\r') len--;
    if (len > 0 || mark != '*')
      fprintf(stderr, "netsh trace: [%s] http %c %.*s\n", x->tname, mark,
              (int)len, p);
    p += step;
    n -= step;
  }
}

/* The bytes in the layout of trace.lua's hexdump (ncat --hex-dump). */
static void trace_hex(const unsigned char *p, size_t n) {
  size_t off, i;
  for (off = 0; off < n; off += 16) {
    char hex[16 * 3 + 1], txt[17];
    size_t k = n - off < 16 ? n - off : 16;
    for (i = 0; i < 16; i++) {
      if (i < k) snprintf(hex + i * 3, 4, "%02x ", p[off + i]);
      else memcpy(hex + i * 3, "   ", 4);
      if (i < k) txt[i] = p[off + i] >= 32 && p[off + i] < 127
                            ? (char)p[off + i] : '.';
    }
    txt[k] = '\0';
    fprintf(stderr, "  %08lx  %s |%s|\n", (unsigned long)off, hex, txt);
  }
}

static int curl_debug_cb(CURL *e, curl_infotype type, char *p, size_t n,
                    void *ud) {
  xfer_t *x = ud;
  (void)e;
  if (x == NULL || !x->trace) return 0;
  switch (type) {
    case CURLINFO_TEXT: trace_lines(x, '*', p, n); break;
    case CURLINFO_HEADER_OUT: trace_lines(x, '>', p, n); break;
    case CURLINFO_HEADER_IN: trace_lines(x, '<', p, n); break;
    case CURLINFO_DATA_OUT:
    case CURLINFO_DATA_IN:
      if (x->trace > 1) {
        fprintf(stderr, "netsh trace: [%s] http %c %lu B body\n", x->tname,
                type == CURLINFO_DATA_OUT ? '>' : '<', (unsigned long)n);
        trace_hex((const unsigned char *)p, n);
      }
      break;
    default: break;                          /* TLS records */
  }
  fflush(stderr);
  return 0;
}

/* What lib_new reads of a spec once, for setup to use. */
typedef struct {
  const char *url, *method, *body;   /* body: NULL for none */
  size_t bodylen;
  long ver;                          /* CURL_HTTP_VERSION_* */
  session_t *sess;                   /* NULL: a plain call */
  int cookies, decompress;
  double timeout;                    /* < 0: none */
} req_t;

/* The options of spec (at index 1) on a fresh or reset handle. */
static int setup(lua_State *L, xfer_t *x, CURL *e, const req_t *r) {
  const char *s, *method = r->method, *body = r->body;
  int i, n;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, curl_write_cb);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, curl_header_cb);
  curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, curl_open_cb);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, curl_close_cb);
  if (r->sess) curl_easy_setopt(e, CURLOPT_SHARE, r->sess->sh);
  if (r->cookies)
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");  /* in memory */
  if (curl_easy_setopt(e, CURLOPT_URL, r->url) != CURLE_OK)
    return luaL_argerror(L, 1, "bad 'url'");
  /* only http(s), also after redirects: no file://, gopher://... */
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");

  /* method and body (anchored in the transfer's uv1: no copy) */
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)r->bodylen);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  }
  if (strcmp(method, "HEAD") != 0 &&
      !(strcmp(method, "GET") == 0 && body == NULL) &&
      !(strcmp(method, "POST") == 0))
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);

  /* headers; "Expect:" drops curl's 100-continue round trip */
  lua_getfield(L, 1, "headers");
  n = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
  for (i = 1; i <= n; i++) {
    struct curl_slist *l;
    lua_rawgeti(L, -1, i);
    s = lua_tostring(L, -1);
    if (s == NULL) return luaL_argerror(L, 1, "header lines must be strings");
    if (ns_checkcstring(L, -1, NULL) == NULL || strpbrk(s, "\r\n"))
      return luaL_argerror(L, 1, "header lines must not contain CR, LF or "
                           "NUL");
    l = curl_slist_append(x->hdrs, s);
    lua_pop(L, 1);
    if (l == NULL) return luaL_error(L, "not enough memory");
    x->hdrs = l;
  }
  lua_pop(L, 1);
  {
    struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
    if (l == NULL) return luaL_error(L, "not enough memory");
    x->hdrs = l;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);

  s = opt_string(L, 1, "user_agent");
  curl_easy_setopt(e, CURLOPT_USERAGENT, s ? s : "netsh/" NETSH_VERSION);

  /* time limits: a streamed transfer has no total limit (the reader may
  ** be slow on purpose); its timeout bounds each wait instead */
  if (!x->stream) set_ms(e, CURLOPT_TIMEOUT_MS, r->timeout);
  set_ms(e, CURLOPT_CONNECTTIMEOUT_MS, opt_number(L, 1, "connect_timeout",
                                                 -1));
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, (long)x->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS,
                   (long)opt_number(L, 1, "max_redirects", 10));

  if (!opt_bool(L, 1, "verify", 1)) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if ((s = opt_string(L, 1, "cafile")) != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, s);
  /* the connection goes to this Unix socket, whatever the URL's host */
  if ((s = opt_string(L, 1, "unix_socket")) != NULL)
    curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, s);

  if ((s = opt_string(L, 1, "user")) != NULL) {
    const char *type = opt_string(L, 1, "auth_type");
    long a = CURLAUTH_BASIC;
    if (type && strcmp(type, "digest") == 0) a = CURLAUTH_DIGEST;
    else if (type && strcmp(type, "any") == 0) a = CURLAUTH_ANY;
    else if (type && strcmp(type, "basic") != 0)
      return luaL_argerror(L, 1, "bad 'auth_type'");
    curl_easy_setopt(e, CURLOPT_USERNAME, s);
    curl_easy_setopt(e, CURLOPT_PASSWORD, opt_string(L, 1, "pass"));
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, a);
  }

  /* proxy: a string, or false for none; unset, the *_proxy variables,
  ** which curl would look up per request: when none is set (looked at
  ** once, at load), say "none" to curl instead */
  lua_getfield(L, 1, "proxy");
  if (lua_isstring(L, -1))
    curl_easy_setopt(e, CURLOPT_PROXY, opt_string(L, 1, "proxy"));
  else if ((lua_isboolean(L, -1) && !lua_toboolean(L, -1)) || !env_proxy)
    curl_easy_setopt(e, CURLOPT_PROXY, "");
  lua_pop(L, 1);

  if (r->ver != CURL_HTTP_VERSION_NONE)
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, r->ver);
  if (r->decompress)
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  /* all built in */
  if (x->max_size > 0)
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, x->max_size);
  return 0;
}

/* core.new(spec [, url [, method [, trace [, hex]]]]) -> xfer; url and
** method, when given, stand for spec's (one spec then serves many
** requests); trace, a task name, logs the transfer as curl -v does on
** stderr (hex: with the bodies). spec is built by
** lua/http.lua:
** {url, method, headers = {"Name: value", ...}, body, timeout,
**  connect_timeout, follow, max_redirects, verify, cafile, user, pass,
**  auth_type, proxy, http_version, decompress, max_decoded, max_ratio,
**  max_size, stream, chunk_size, session, cookies, user_agent, unix_socket, _id}
** _id (an integer) marks a spec that is never changed once built, so
** that a pooled handle last set up from it can be taken as it is.
** Raises on bad specs (programmer errors), never on network outcomes. */
static int lib_new(lua_State *L) {
  xfer_t *x;
  CURL *e;
  req_t r;
  int same;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&r, 0, sizeof r);
  r.url = lua_isnoneornil(L, 2) ? opt_string(L, 1, "url")
                                 : ns_checkcstring(L, 2, "url");
  if (r.url == NULL) return luaL_argerror(L, 1, "'url' missing");
  if (lua_isnoneornil(L, 3)) {
    r.method = opt_string(L, 1, "method");
    if (r.method == NULL) r.method = "GET";
    luaL_argcheck(L, is_token(r.method), 1, "'method' must be a token");
  } else {
    r.method = ns_checkcstring(L, 3, "method");
    luaL_argcheck(L, is_token(r.method), 3, "method must be a token");
  }
  r.ver = http_version_code(opt_string(L, 1, "http_version"));
  if (r.ver < 0) return luaL_argerror(L, 1, "bad 'http_version'");

  x = lua_newuserdatauv(L, sizeof *x, 2);   /* uv1: body, uv2: session */
  memset(x, 0, sizeof *x);
  luaL_setmetatable(L, XFER_MT);
  x->wait_timeout = -1;
  x->w.data = x;
  x->w.cancel = xfer_cancel;
  x->fr.clen = -1;
  lua_getfield(L, 1, "_id");
  x->spec_id = lua_tointeger(L, -1);
  lua_pop(L, 1);
  snprintf(x->method, sizeof x->method, "%s", r.method);
  if (strlen(r.method) >= sizeof x->method) x->spec_id = 0;  /* cut */

  /* a session: shared cookies, DNS, TLS sessions and connections */
  lua_getfield(L, 1, "session");
  r.cookies = opt_bool(L, 1, "cookies", 0);
  if (!lua_isnil(L, -1)) {
    r.sess = luaL_testudata(L, -1, SHARE_MT);
    if (r.sess == NULL || r.sess->sh == NULL)
      return luaL_argerror(L, 1, "bad 'session'");
    if (r.cookies) x->pool = &r.sess->pool;
  } else if (!r.cookies) {
    x->pool = &plain_pool;
  }
  lua_setiuservalue(L, -2, 2);

  /* the body; POST, PUT and PATCH without one send Content-Length: 0 */
  lua_getfield(L, 1, "body");
  r.body = lua_tolstring(L, -1, &r.bodylen);
  lua_setiuservalue(L, -2, 1);
  if (r.body == NULL && (strcmp(r.method, "POST") == 0 ||
      strcmp(r.method, "PUT") == 0 || strcmp(r.method, "PATCH") == 0))
    r.body = "";

  /* the transfer's own fields */
  r.timeout = opt_number(L, 1, "timeout", -1);
  r.decompress = opt_bool(L, 1, "decompress", 1);
  if (opt_bool(L, 1, "stream", 0)) {
    x->stream = 1;
    x->wait_timeout = r.timeout > 0 ? r.timeout : -1;
    x->stream_cap = (size_t)opt_number(L, 1, "chunk_size", 256 * 1024);
    if (x->stream_cap < 1) x->stream_cap = 1;
  }
  x->follow = opt_bool(L, 1, "follow", 1) ? 1 : 0;
  if (r.decompress) {
    x->max_decoded = (curl_off_t)opt_number(L, 1, "max_decoded", 0);
    x->max_ratio = opt_number(L, 1, "max_ratio", 0);
  }
  x->max_size = (curl_off_t)opt_number(L, 1, "max_size", 0);

  /* verbose (4th argument: the task name, 5th: with bodies) */
  if (lua_isstring(L, 4)) {
    x->trace = lua_toboolean(L, 5) ? 2 : 1;
    snprintf(x->tname, sizeof x->tname, "%s", lua_tostring(L, 4));
  }

  e = x->easy = pool_take(x->pool, x->spec_id, x->method, &same, &x->hdrs);
  if (e == NULL) return luaL_error(L, "curl_easy_init failed");
  curl_easy_setopt(e, CURLOPT_VERBOSE, x->trace ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION,
                   x->trace ? curl_debug_cb : NULL);
  curl_easy_setopt(e, CURLOPT_DEBUGDATA, x);
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  if (same) {
    if (curl_easy_setopt(e, CURLOPT_URL, r.url) != CURLE_OK)
      return luaL_argerror(L, 1, "bad 'url'");
    if (r.body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body);  /* kept */
    return 1;
  }
  setup(L, x, e, &r);
  return 1;
}

/* ---- errors: curl codes to netsh's strings, at this edge ---- */

/* errbuf with a capitalised first word lowered ("Could not..." -> "could
** not"), an acronym left alone ("URL using...", "SSL..."), without the
** trailing newline curl sometimes leaves. */
static void push_lowered(lua_State *L, const char *prefix, const char *s) {
  luaL_Buffer b;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, prefix);
  if (n > 0) {
    int word = !(n > 1 && (isupper((unsigned char)s[1]) ||
                           isdigit((unsigned char)s[1])));
    luaL_addchar(&b, word ? (char)tolower((unsigned char)s[0]) : s[0]);
    luaL_addlstring(&b, s + 1, n - 1);
  }
  luaL_pushresult(&b);
}

static const char *skip_prefix(const char *s, const char *p) {
  size_t n = strlen(p);
  return strncmp(s, p, n) == 0 ? s + n : s;
}

/* Pushes nil, msg for a failed transfer; returns 2. */
static int push_error(lua_State *L, xfer_t *x) {
  const char *eb = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
  lua_pushnil(L);
  if (x->cancelled) {
    lua_pushstring(L, ns_strerror(x->cancelled));
    return 2;
  }
  switch (x->xerr) {
    case NS_ETOOBIG:
      lua_pushfstring(L, "%s (max_size %I bytes)", ns_strerror(NS_ETOOBIG),
                      (lua_Integer)x->max_size);
      return 2;
    case NS_EBOMB:
    case NS_ERATIO:
      push_cap_error(L, x->xerr, x->max_decoded, x->max_ratio);
      return 2;
    case UV_ENOMEM:
      lua_pushstring(L, ns_strerror(x->xerr));
      return 2;
    case NS_EBADRESPONSE:
      lua_pushstring(L, x->bad);
      return 2;
  }
  switch (x->result) {
    case CURLE_OUT_OF_MEMORY:
      /* what curl 7.88 says for its size limits: a response header line
      ** over CURL_MAX_HTTP_HEADER, a request head over 1 MiB */
      if (x->status != 0)
        lua_pushliteral(L, "bad response: header too large (limit 100 KiB)");
      else if (!x->errbuf[0])
        lua_pushliteral(L, "request too large (limit 1 MiB for the request "
                        "line and headers)");
      else
        push_lowered(L, "", eb);
      break;
    case CURLE_OPERATION_TIMEDOUT:
      lua_pushstring(L, ns_strerror(UV_ETIMEDOUT));
      break;
    case CURLE_COULDNT_CONNECT: {
      long err = 0;
      curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &err);
      if (err == ECONNREFUSED || err == ENOENT || err == EACCES)
        lua_pushstring(L, ns_strerror(-(int)err));  /* ENOENT: unix_socket */
      else push_lowered(L, "", eb);
      break;
    }
    case CURLE_PEER_FAILED_VERIFICATION:
      eb = skip_prefix(eb, "SSL certificate problem: ");
      eb = skip_prefix(eb, "SSL: ");
      push_lowered(L, "certificate verify failed: ", eb);
      break;
    case CURLE_TOO_MANY_REDIRECTS:
      lua_pushstring(L, ns_strerror(NS_EREDIRECTS));
      break;
    case CURLE_FILESIZE_EXCEEDED:
      lua_pushfstring(L, "%s (max_size %I bytes)", ns_strerror(NS_ETOOBIG),
                      (lua_Integer)x->max_size);
      break;
    case CURLE_UNSUPPORTED_PROTOCOL: {
      /* 'Protocol "file" not supported or disabled in libcurl' */
      const char *q = strncmp(eb, "Protocol \"", 10) == 0 ? eb + 10 : NULL;
      const char *end = q ? strchr(q, '"') : NULL;
      if (end) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        if (x->status >= 300 && x->status < 400)
          luaL_addstring(&b, "redirect to ");
        luaL_addstring(&b, "unsupported protocol: ");
        luaL_addlstring(&b, q, (size_t)(end - q));
        luaL_pushresult(&b);
      } else {
        push_lowered(L, "bad response: ", eb);  /* e.g. HTTP/0.9 */
      }
      break;
    }
    case CURLE_RECV_ERROR:
      /* "Too large response headers: 350073 > 307200" */
      if (strncmp(eb, "Too large response headers", 26) == 0) {
        lua_pushliteral(L, "bad response: headers too large (limit 300 "
                        "KiB)");
        break;
      }
      /* fall through */
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
      push_lowered(L, "closed: ", eb);
      break;
    case CURLE_WEIRD_SERVER_REPLY:
      push_lowered(L, "bad response: ", eb);
      break;
    default:
      push_lowered(L, "", eb);
  }
  return 2;
}

/* ---- perform and read ---- */

static int perform_k(lua_State *L, int status, lua_KContext ctx);

static int perform_step(lua_State *L, xfer_t *x) {
  if (x->stream && x->head_done && !x->cancelled) {
    lua_pushboolean(L, 1);       /* a body error shows in read() */
    return 1;
  }
  if (x->done) {
    if (x->result == CURLE_OK && !x->cancelled && !x->xerr) {
      lua_pushboolean(L, 1);
      return 1;
    }
    return push_error(L, x);
  }
  return ns_wait(L, &x->w, x->stream ? x->wait_timeout : -1, perform_k,
                 (lua_KContext)x);
}

static int perform_k(lua_State *L, int status, lua_KContext ctx) {
  xfer_t *x = (xfer_t *)ctx;
  (void)status;
  if (x->easy == NULL) return ns_fail(L, NS_ECLOSED);
  return perform_step(L, x);
}

/* x:perform() -> true | nil, err. Buffered: returns at the end of the
** transfer. Streamed: once the final response's headers are in. Always
** waits at least once, so a loop of requests never starves other tasks. */
static int meth_perform(lua_State *L) {
  xfer_t *x = check_xfer(L, 1);
  CURLMcode mc;
  if (x->easy == NULL) return ns_fail(L, NS_ECLOSED);
  if (x->started) return luaL_error(L, "request already performed");
  if (multi == NULL) return luaL_error(L, "http: not initialised");
  mc = curl_multi_add_handle(multi, x->easy);
  if (mc != CURLM_OK) return ns_fail_str(L, curl_multi_strerror(mc));
  x->started = 1;
  x->in_multi = 1;
  live++;
  /* curl starts it from its 0 ms timer, at the top of the next loop turn,
  ** with every transfer added meanwhile: one pass over the new transfers
  ** instead of one each, and the requests leave in one burst (measured:
  ** 10% less CPU per request with 50 in flight than starting each here) */
  return perform_step(L, x);
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

static int read_step(lua_State *L, xfer_t *x) {
  if (x->body.len > 0) {
    lua_pushlstring(L, ns_buf_ptr(&x->body), x->body.len);
    ns_buf_consume(&x->body, x->body.len);
    if (x->paused && !x->done && x->in_multi) {
      x->paused = 0;
      curl_easy_pause(x->easy, CURLPAUSE_CONT);  /* may refill x->body */
      apply_pauses();
    }
    return 1;
  }
  if (x->done) {
    if (x->result == CURLE_OK && !x->cancelled && !x->xerr) {
      lua_pushnil(L);            /* end of body */
      return 1;
    }
    return push_error(L, x);
  }
  return ns_wait(L, &x->w, x->wait_timeout, read_k, (lua_KContext)x);
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  xfer_t *x = (xfer_t *)ctx;
  (void)status;
  if (x->easy == NULL) return ns_fail(L, NS_ECLOSED);
  return read_step(L, x);
}

/* x:read() -> chunk | nil (end of body) | nil, err. Streams only. */
static int meth_read(lua_State *L) {
  xfer_t *x = check_xfer(L, 1);
  if (x->easy == NULL) return ns_fail(L, NS_ECLOSED);
  if (!x->started) return luaL_error(L, "request not performed");
  if (x->w.task) return ns_fail(L, NS_EBUSY);
  return read_step(L, x);
}

/* x:body() -> the buffered body (and empties the buffer). */
static int meth_body(lua_State *L) {
  xfer_t *x = check_xfer(L, 1);
  lua_pushlstring(L, x->body.len ? ns_buf_ptr(&x->body) : "", x->body.len);
  ns_buf_free(&x->body);
  return 1;
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static double info_secs(CURL *e, CURLINFO i) {
  curl_off_t us = 0;
  curl_easy_getinfo(e, i, &us);
  return (double)us / 1e6;
}

static size_t trim_right(const char *p, size_t n) {
  while (n > 0 && (is_space((unsigned char)p[n - 1]) || p[n - 1] == '\r'))
    n--;
  return n;
}

/* core.parse_head(lines) -> headers, header_list: the header lines of a
** response (after its status line) as a map (lowercased names, repeats
** joined with ", ") and the {name, value} pairs as received. Folded lines
** (obsolete continuations) are joined to the line before them. */
static int lib_parse_head(lua_State *L) {
  size_t len;
  const char *src = luaL_checklstring(L, 1, &len);
  char *buf, *p, *q, *end;
  int n = 0;
  lua_newtable(L);                                  /* map */
  lua_newtable(L);                                  /* map, list */
  if (len == 0) return 2;
  buf = malloc(len);
  if (buf == NULL) return luaL_error(L, "not enough memory");
  memcpy(buf, src, len);
  end = buf + len;
  for (q = buf; q < end; q++)                       /* unfold */
    if (*q == '\n' && q + 1 < end && is_space((unsigned char)q[1])) {
      *q = ' ';
      if (q > buf && q[-1] == '\r') q[-1] = ' ';
    }
  for (p = buf; p < end; p = q + 1) {
    char lname[128];
    const char *colon, *v;
    size_t nlen, vlen, i;
    q = memchr(p, '\n', (size_t)(end - p));
    if (q == NULL) q = end;
    colon = memchr(p, ':', (size_t)(q - p));
    if (colon == NULL || colon == p) continue;
    nlen = trim_right(p, (size_t)(colon - p));
    for (v = colon + 1; v < q && is_space((unsigned char)*v); v++) {}
    vlen = trim_right(v, (size_t)(q - v));
    lua_createtable(L, 2, 0);
    lua_pushlstring(L, p, nlen);
    lua_rawseti(L, -2, 1);
    lua_pushlstring(L, v, vlen);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, ++n);                        /* list[n] = pair */
    if (nlen >= sizeof lname) continue;             /* list only */
    for (i = 0; i < nlen; i++)
      lname[i] = (char)tolower((unsigned char)p[i]);
    lua_pushlstring(L, lname, nlen);                /* map, list, k */
    if (lua_rawget(L, -3) == LUA_TSTRING) {         /* map, list, old */
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, v, vlen);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, v, vlen);
    }
    lua_pushlstring(L, lname, nlen);
    lua_insert(L, -2);                              /* map, list, k, v */
    lua_rawset(L, -4);
  }
  free(buf);
  return 2;
}

/* The field names of a response, made once (upvalue 1 of the xfer
** methods, by index): setting a field then needs no string lookup. */
enum {
  K_STATUS = 1, K_HTTP_VERSION, K_URL, K_REDIRECTS, K_CONNECTS, K_REUSED,
  K_SIZE, K_ELAPSED, K_STATUS_LINE, K_REASON, K_HEAD, K_MORE, K_BODY, K_OK,
  K_METHOD, K_COUNT
};
static const char *const key_names[K_COUNT] = {
  NULL, "status", "http_version", "url", "redirects", "connects", "reused",
  "size", "elapsed", "status_line", "reason", "_head", "_more", "body", "ok",
  "method"
};

/* The slots of the _more array (see push_info). */
enum { M_DNS = 1, M_CONNECT, M_TLS, M_FIRST_BYTE, M_IP, M_PORT,
       M_LOCAL_PORT, M_COUNT };

/* t[key k] = value on top (t just below it); pops the value. */
static void put(lua_State *L, int k) {
  lua_rawgeti(L, lua_upvalueindex(1), k);
  lua_insert(L, -2);
  lua_rawset(L, -3);
}

static void put_int(lua_State *L, int k, lua_Integer v) {
  lua_pushinteger(L, v);
  put(L, k);
}

/* Pushes the fields of x's response as a new table (see meth_info).
** Responses are made by the thousand, and a table's cost (and its share
** of the garbage collector's work) grows with its hash part, so the
** fields most scripts never read wait in one small array, _more, that
** lua/http.lua turns into fields on first use. */
static void push_info(lua_State *L, xfer_t *x, int extra) {
  CURL *e = x->easy;
  long l = 0;
  char *s = NULL;
  const char *h, *nl, *r;
  size_t hlen;
  lua_createtable(L, 0, 12 + extra);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &l);
  put_int(L, K_STATUS, l);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &l);
  lua_pushstring(L, l == CURL_HTTP_VERSION_1_0 ? "1.0" :
                 l == CURL_HTTP_VERSION_1_1 ? "1.1" :
                 l == CURL_HTTP_VERSION_2_0 ? "2" :
                 l == CURL_HTTP_VERSION_3 ? "3" : "?");
  put(L, K_HTTP_VERSION);
  if (curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK && s) {
    lua_pushstring(L, s);
    put(L, K_URL);
  }
  curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &l);
  put_int(L, K_REDIRECTS, l);
  curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &l);
  put_int(L, K_CONNECTS, l);
  lua_pushboolean(L, l == 0);
  put(L, K_REUSED);
  put_int(L, K_SIZE, (lua_Integer)x->total);
  lua_pushnumber(L, info_secs(e, CURLINFO_TOTAL_TIME_T));
  put(L, K_ELAPSED);
  /* "HTTP/1.1 200 OK\r\n" + header lines */
  h = x->head.len ? ns_buf_ptr(&x->head) : "";
  hlen = x->head.len;
  nl = hlen ? memchr(h, '\n', hlen) : NULL;
  if (nl == NULL) nl = h + hlen;
  lua_pushlstring(L, h, trim_right(h, (size_t)(nl - h)));
  put(L, K_STATUS_LINE);
  r = memchr(h, ' ', (size_t)(nl - h));              /* " 200 OK" */
  if (r) r = memchr(r + 1, ' ', (size_t)(nl - r - 1));
  if (r) {
    r++;
    lua_pushlstring(L, r, trim_right(r, (size_t)(nl - r)));
  } else {
    lua_pushliteral(L, "");
  }
  put(L, K_REASON);
  if (nl < h + hlen) nl++;
  lua_pushlstring(L, nl, (size_t)(h + hlen - nl));
  put(L, K_HEAD);
  /* _more = {dns, connect, tls, first_byte, ip, port, local_port} */
  lua_createtable(L, M_COUNT - 1, 0);
  lua_pushnumber(L, info_secs(e, CURLINFO_NAMELOOKUP_TIME_T));
  lua_rawseti(L, -2, M_DNS);
  lua_pushnumber(L, info_secs(e, CURLINFO_CONNECT_TIME_T));
  lua_rawseti(L, -2, M_CONNECT);
  lua_pushnumber(L, info_secs(e, CURLINFO_APPCONNECT_TIME_T));
  lua_rawseti(L, -2, M_TLS);
  lua_pushnumber(L, info_secs(e, CURLINFO_STARTTRANSFER_TIME_T));
  lua_rawseti(L, -2, M_FIRST_BYTE);
  s = NULL;
  if (curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &s) == CURLE_OK && s)
    lua_pushstring(L, s);
  else
    lua_pushboolean(L, 0);
  lua_rawseti(L, -2, M_IP);
  curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &l);
  lua_pushinteger(L, l);
  lua_rawseti(L, -2, M_PORT);
  curl_easy_getinfo(e, CURLINFO_LOCAL_PORT, &l);
  lua_pushinteger(L, l);
  lua_rawseti(L, -2, M_LOCAL_PORT);
  put(L, K_MORE);
}

/* x:info() -> the fields of a response: status, reason (from the status
** line; "" for HTTP/2), status_line, http_version, url, redirects,
** connects, reused, size, elapsed, _head (the header lines, parsed on
** demand by parse_head) and _more = {dns, connect, tls, first_byte (curl's
** cumulative times, seconds since the start), ip (or false), port,
** local_port}. */
static int meth_info(lua_State *L) {
  xfer_t *x = check_xfer(L, 1);
  if (x->easy == NULL) return ns_fail(L, NS_ECLOSED);
  push_info(L, x, 0);
  return 1;
}

/* x:finish(method) -> the info() table plus body, ok and method, for a
** buffered transfer that has ended; the transfer is closed (its handle
** goes back to its pool). One call instead of info, body and close. */
static int meth_finish(lua_State *L) {
  xfer_t *x = check_xfer(L, 1);
  long status = 0;
  luaL_checkstring(L, 2);
  if (x->easy == NULL) return ns_fail(L, NS_ECLOSED);
  push_info(L, x, 3);
  lua_pushlstring(L, x->body.len ? ns_buf_ptr(&x->body) : "", x->body.len);
  put(L, K_BODY);
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
  lua_pushboolean(L, status >= 200 && status < 300);
  put(L, K_OK);
  lua_pushvalue(L, 2);
  put(L, K_METHOD);
  xfer_release(x);
  return 1;
}

/* x:close(): stop the transfer (a streamed body not read to the end) and
** free the handle. Idempotent. */
static int meth_close(lua_State *L) {
  xfer_release(check_xfer(L, 1));
  return 0;
}

static int meta_gc(lua_State *L) {
  xfer_release(check_xfer(L, 1));
  return 0;
}

static int meta_tostring(lua_State *L) {
  xfer_t *x = check_xfer(L, 1);
  lua_pushfstring(L, "http.xfer{%s}: %p",
                  x->easy == NULL ? "closed" : x->done ? "done" :
                  x->started ? "running" : "new", (void *)x);
  return 1;
}

/* ---- decoding for lua/http/fast.lua (curl decodes its own) ---- */

typedef struct {
  int kind;                  /* 1 zlib/gzip, 2 brotli, 3 zstd */
  z_stream z;
  BrotliDecoderState *br;
  ZSTD_DStream *zs;
} dec_t;

#define DEC_PIECE 16384      /* input fed per step, as curl's reads */

static void dec_end(dec_t *d) {
  if (d->kind == 1) inflateEnd(&d->z);
  if (d->br) BrotliDecoderDestroyInstance(d->br);
  if (d->zs) ZSTD_freeDStream(d->zs);
  d->kind = 0;
  d->br = NULL;
  d->zs = NULL;
}

/* One coding over in[0..n) into b. Returns NULL or the error message
** (a static string, or pushed on L for the caps: then "" is returned). */
static const char *dec_one(lua_State *L, const char *coding, const char *in,
                           size_t n, luaL_Buffer *b, curl_off_t max_decoded,
                           double max_ratio) {
  dec_t d;
  size_t off = 0, total = 0;
  int raw_tried = 0, r;
  memset(&d, 0, sizeof d);
  if (strcmp(coding, "gzip") == 0 || strcmp(coding, "x-gzip") == 0) {
    if (inflateInit2(&d.z, 15 + 32) != Z_OK) return "not enough memory";
    d.kind = 1;
  } else if (strcmp(coding, "deflate") == 0) {
    if (inflateInit2(&d.z, 15) != Z_OK) return "not enough memory";
    d.kind = 1;
  } else if (strcmp(coding, "br") == 0) {
    d.br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (d.br == NULL) return "not enough memory";
    d.kind = 2;
  } else if (strcmp(coding, "zstd") == 0) {
    d.zs = ZSTD_createDStream();
    if (d.zs == NULL) return "not enough memory";
    ZSTD_initDStream(d.zs);
    d.kind = 3;
  } else {
    return "unrecognized content encoding type. libcurl understands "
           "deflate, gzip, br, zstd content encodings.";
  }
  for (;;) {
    size_t piece = n - off < DEC_PIECE ? n - off : DEC_PIECE;
    const char *p = in + off;
    int ended = 0;
    /* decode this piece completely */
    for (;;) {
      char *out = luaL_prepbuffsize(b, DEC_PIECE);
      size_t got = 0, used = 0;
      int done_piece = 0, cap;
      if (d.kind == 1) {
        d.z.next_in = (Bytef *)p;
        d.z.avail_in = (uInt)piece;
        d.z.next_out = (Bytef *)out;
        d.z.avail_out = DEC_PIECE;
        r = inflate(&d.z, Z_SYNC_FLUSH);
        if (r == Z_DATA_ERROR && !raw_tried && off == 0 && total == 0 &&
            strcmp(coding, "deflate") == 0) {
          /* a raw deflate stream, as some servers send: again so */
          raw_tried = 1;
          inflateEnd(&d.z);
          if (inflateInit2(&d.z, -15) != Z_OK) {
            d.kind = 0;
            return "not enough memory";
          }
          continue;
        }
        used = piece - d.z.avail_in;
        got = DEC_PIECE - d.z.avail_out;
        if (r == Z_STREAM_END) ended = 1;
        else if (r != Z_OK && r != Z_BUF_ERROR) {
          static char msg[160];
          snprintf(msg, sizeof msg, "error while processing content "
                   "unencoding: %s", d.z.msg ? d.z.msg : "bad data");
          dec_end(&d);
          return msg;
        }
        done_piece = d.z.avail_in == 0 && d.z.avail_out > 0;
      } else if (d.kind == 2) {
        const uint8_t *ni = (const uint8_t *)p;
        size_t ai = piece, ao = DEC_PIECE;
        uint8_t *no = (uint8_t *)out;
        BrotliDecoderResult br = BrotliDecoderDecompressStream(d.br, &ai, &ni,
          &ao, &no, NULL);
        used = piece - ai;
        got = DEC_PIECE - ao;
        if (br == BROTLI_DECODER_RESULT_ERROR) {
          dec_end(&d);
          return "error while processing content unencoding: brotli: "
                 "bad data";
        }
        if (br == BROTLI_DECODER_RESULT_SUCCESS) ended = 1;
        done_piece = br == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT;
      } else {
        ZSTD_inBuffer zi = {p, piece, 0};
        ZSTD_outBuffer zo = {out, DEC_PIECE, 0};
        size_t zr = ZSTD_decompressStream(d.zs, &zo, &zi);
        if (ZSTD_isError(zr)) {
          dec_end(&d);
          return "error while processing content unencoding: zstd: bad "
                 "data";
        }
        used = zi.pos;
        got = zo.pos;
        done_piece = zi.pos == zi.size && zo.pos < zo.size;
      }
      luaL_addsize(b, got);
      total += got;
      p += used;
      piece -= used;
      off += used;
      cap = decode_cap((curl_off_t)total, (curl_off_t)off, max_decoded,
                       max_ratio);
      if (cap != 0) {
        dec_end(&d);
        push_cap_error(L, cap, max_decoded, max_ratio);
        return "";
      }
      if (ended || done_piece || (got == 0 && used == 0)) break;
    }
    if (ended || off >= n) break;
  }
  dec_end(&d);
  return NULL;
}

/* core.decode(body, encodings, max_decoded, max_ratio) -> decoded | nil,
** err: the Content-Encoding list undone last to first, with the curl
** path's caps (curl_write_cb): past max_decoded bytes, or past RATIO_FREE
** and max_ratio times the bytes read so far (fed 16 KiB at a time). */
static int lib_decode(lua_State *L) {
  size_t elen;
  const char *enc = luaL_checklstring(L, 2, &elen);
  curl_off_t max_decoded = (curl_off_t)luaL_optnumber(L, 3, 0);
  double max_ratio = luaL_optnumber(L, 4, 0);
  const char *codings[8];
  char buf[256];
  int nc = 0, i;
  char *tok, *save = NULL;
  if (elen >= sizeof buf) {
    lua_pushnil(L);
    lua_pushliteral(L, "bad response: Content-Encoding too long");
    return 2;
  }
  for (i = 0; i <= (int)elen; i++)
    buf[i] = (char)tolower((unsigned char)enc[i]);
  for (tok = strtok_r(buf, ", \t", &save); tok;
       tok = strtok_r(NULL, ", \t", &save)) {
    if (strcmp(tok, "identity") == 0) continue;
    if (nc == 8) {
      lua_pushnil(L);
      lua_pushliteral(L, "bad response: too many content encodings");
      return 2;
    }
    codings[nc++] = tok;
  }
  luaL_checktype(L, 1, LUA_TSTRING);
  lua_pushvalue(L, 1);                /* the bytes so far */
  for (i = nc - 1; i >= 0; i--) {
    luaL_Buffer b;
    const char *src, *err;
    size_t sn;
    src = lua_tolstring(L, -1, &sn);
    luaL_buffinit(L, &b);
    err = dec_one(L, codings[i], src, sn, &b, max_decoded, max_ratio);
    if (err) {
      if (*err) lua_pushstring(L, err);   /* else pushed by dec_one */
      lua_pushnil(L);
      lua_insert(L, -2);
      return 2;
    }
    luaL_pushresult(&b);
    lua_remove(L, -2);
  }
  return 1;
}

/* ---- sessions: a curl share (cookies, DNS, TLS sessions, connections) */

static int lib_session(lua_State *L) {
  session_t *ss = lua_newuserdatauv(L, sizeof *ss, 0);
  memset(ss, 0, sizeof *ss);
  luaL_setmetatable(L, SHARE_MT);
  ss->pool.cookies = 1;
  ss->sh = curl_share_init();
  if (ss->sh == NULL) return luaL_error(L, "curl_share_init failed");
  curl_share_setopt(ss->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
  curl_share_setopt(ss->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(ss->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(ss->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  return 1;
}

/* session:cookies() -> {"netscape cookie line", ...} */
static int share_cookies(lua_State *L) {
  session_t *ss = luaL_checkudata(L, 1, SHARE_MT);
  struct curl_slist *list = NULL, *p;
  CURL *e;
  int i = 0;
  lua_newtable(L);
  if (ss->sh == NULL) return 1;
  e = curl_easy_init();
  if (e == NULL) return 1;
  curl_easy_setopt(e, CURLOPT_SHARE, ss->sh);
  curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");
  curl_easy_getinfo(e, CURLINFO_COOKIELIST, &list);
  for (p = list; p; p = p->next) {
    lua_pushstring(L, p->data);
    lua_rawseti(L, -2, ++i);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(e);
  return 1;
}

/* session:add_cookie(line): a cookie into the jar, as a Netscape cookie
** file line (lua/http.lua, for what lua/http/fast.lua received). */
static int share_add_cookie(lua_State *L) {
  session_t *ss = luaL_checkudata(L, 1, SHARE_MT);
  const char *line = ns_checkcstring(L, 2, "line");
  CURL *e;
  if (ss->sh == NULL) return 0;
  e = curl_easy_init();
  if (e == NULL) return luaL_error(L, "curl_easy_init failed");
  curl_easy_setopt(e, CURLOPT_SHARE, ss->sh);
  curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");
  curl_easy_setopt(e, CURLOPT_COOKIELIST, line);
  curl_easy_cleanup(e);
  return 0;
}

/* core.getdate(s) -> seconds since the epoch | nil: curl's date parser
** (the one it reads a cookie's Expires with) */
static int lib_getdate(lua_State *L) {
  time_t t = curl_getdate(luaL_checkstring(L, 1), NULL);
  if (t == -1) return 0;
  lua_pushinteger(L, (lua_Integer)t);
  return 1;
}

/* Closes the session's idle connections and forgets its cookies. Fails
** (returns false) while a transfer of the session is still alive. */
static int share_close(lua_State *L) {
  session_t *ss = luaL_checkudata(L, 1, SHARE_MT);
  ss->pool.closed = 1;           /* pooled handles hold the share */
  pool_clear(&ss->pool);
  if (ss->sh && curl_share_cleanup(ss->sh) == CURLSHE_OK) ss->sh = NULL;
  lua_pushboolean(L, ss->sh == NULL);
  return 1;
}

static int share_gc(lua_State *L) {
  session_t *ss = luaL_checkudata(L, 1, SHARE_MT);
  ss->pool.closed = 1;
  pool_clear(&ss->pool);
  if (ss->sh) {
    curl_share_cleanup(ss->sh);
    ss->sh = NULL;
  }
  return 0;
}

/* ---- download targets ---- */

static int file_close(lua_State *L) {
  luaL_Stream *p = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  return luaL_fileresult(L, fclose(p->f) == 0, NULL);
}

/* Pushes fd as a Lua file (io's own type: write, close...) for writing;
** closes fd and returns 0 on failure. */
static int push_file(lua_State *L, int fd) {
  luaL_Stream *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->closef = NULL;                    /* "closed" until f is set */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  if ((p->f = fdopen(fd, "wb")) == NULL) {
    close(fd);
    return 0;
  }
  p->closef = file_close;
  return 1;
}

/* core.open_download(path) -> file, tmp, target | file | nil, err: where
** http.download writes. A regular file (or none yet) is replaced
** atomically: the body goes to a new temporary "target.part-XXXXXX"
** (mkstemp: O_EXCL, so concurrent downloads never share one), with the
** old file's mode (else 0666 less the umask), renamed over target at the
** end. A symlink's target is what is replaced, the link stays (a link
** to nothing gets its target made, written through). Anything else, a
** device such as /dev/null or a FIFO, is written through, as curl -o
** does: opening a FIFO no one reads fails ("no such device or address")
** rather than blocking the loop. So are links under /dev and /proc, and
** /dev/stdout and the like are a dup of the descriptor (fd_path). */
/* The descriptor that /dev/stdout, /dev/stderr, /dev/fd/N or
** /proc/self/fd/N stands for, else -1. Writing through a dup of it
** shares the offset (and O_APPEND) with the script's own output, where
** opening the path anew would write over it, or replace a file. */
static int fd_path(const char *p) {
  const char *n = NULL;
  char *end;
  long fd;
  if (strcmp(p, "/dev/stdout") == 0) return 1;
  if (strcmp(p, "/dev/stderr") == 0) return 2;
  if (strncmp(p, "/dev/fd/", 8) == 0) n = p + 8;
  else if (strncmp(p, "/proc/self/fd/", 14) == 0) n = p + 14;
  if (n == NULL || !isdigit((unsigned char)*n)) return -1;
  fd = strtol(n, &end, 10);
  return *end == '\0' && fd <= INT_MAX ? (int)fd : -1;
}

static int lib_open_download(lua_State *L) {
  const char *path = ns_checkcstring(L, 1, "path");
  const char *target = path;
  char real[PATH_MAX], *tmp;
  struct stat st;
  int fd, have, through = 0, err;
  mode_t mode;
  if ((fd = fd_path(path)) >= 0) {
    if ((fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) return ns_fail(L, -errno);
    if (!push_file(L, fd)) return ns_fail(L, -errno);
    return 1;
  }
  have = lstat(path, &st) == 0;
  if (!have && errno != ENOENT) return ns_fail(L, -errno);
  if (have && S_ISLNK(st.st_mode)) {
    if (strncmp(path, "/dev/", 5) == 0 || strncmp(path, "/proc/", 6) == 0) {
      through = 1;                /* the system's links: never resolved */
    } else if (realpath(path, real) != NULL) {   /* replace its target */
      target = real;
      if (stat(target, &st) != 0) return ns_fail(L, -errno);
    } else if (errno == ENOENT) {
      through = 1;                /* a link to nothing: open() makes it */
    } else {
      return ns_fail(L, -errno);
    }
  }
  if (!through && have && S_ISDIR(st.st_mode)) return ns_fail(L, UV_EISDIR);
  if (!through && have && !S_ISREG(st.st_mode)) through = 1;
  if (through) {
    fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK |
              O_CLOEXEC, 0666);
    if (fd < 0) return ns_fail(L, -errno);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (!push_file(L, fd)) return ns_fail(L, -errno);
    return 1;
  }
  if (have) {
    mode = st.st_mode & 07777;
  } else {
    mode = umask(0);
    umask(mode);
    mode = 0666 & ~mode;
  }
  tmp = malloc(strlen(target) + 16);
  if (tmp == NULL) return ns_fail(L, UV_ENOMEM);
  sprintf(tmp, "%s.part-XXXXXX", target);
  fd = mkstemp(tmp);
  if (fd < 0) {
    err = -errno;
    free(tmp);
    return ns_fail(L, err);
  }
  fchmod(fd, mode);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  if (!push_file(L, fd)) {
    err = -errno;
    unlink(tmp);
    free(tmp);
    return ns_fail(L, err);
  }
  lua_pushstring(L, tmp);                     /* file, tmp, target */
  free(tmp);
  lua_pushstring(L, target);
  return 3;
}

/* ---- module ---- */

/* core.isatty(fd) -> bool: for the download progress bar. */
static int lib_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 2)));
  return 1;
}

static int lib_version(lua_State *L) {
  lua_pushstring(L, curl_version());
  return 1;
}

/* Counters for the specs: sockets curl watches, live transfers, easy
** handles waiting in the plain calls' pool. */
static int lib_stats(lua_State *L) {
  lua_createtable(L, 0, 3);
  set_int(L, "polls", nactive);
  set_int(L, "handles", live);
  set_int(L, "pooled", plain_pool.n);
  return 1;
}

static int multi_gc(lua_State *L) {
  (void)L;
  if (multi == NULL) return 0;
  pool_clear(&plain_pool);
  curl_multi_cleanup(multi);       /* closes cached connections */
  multi = NULL;
  {
    int i;
    for (i = 0; i < npollv; i++)
      if (pollv[i]) {
        pollv[i]->h.data = NULL;
        uv_close((uv_handle_t *)&pollv[i]->h, free_cb);
      }
    free(pollv);
    pollv = NULL;
    npollv = nactive = 0;
  }
  if (timer) {
    uv_close((uv_handle_t *)timer, free_cb);
    timer = NULL;
  }
  curl_global_cleanup();
  global_inited = 0;
  return 0;
}

static const luaL_Reg xfer_methods[] = {
  {"perform", meth_perform},
  {"read", meth_read},
  {"body", meth_body},
  {"info", meth_info},
  {"finish", meth_finish},
  {"close", meth_close},
  {NULL, NULL}
};

static const luaL_Reg share_methods[] = {
  {"cookies", share_cookies},
  {"add_cookie", share_add_cookie},
  {"close", share_close},
  {NULL, NULL}
};

static const luaL_Reg lib[] = {
  {"decode", lib_decode},
  {"getdate", lib_getdate},
  {"new", lib_new},
  {"parse_head", lib_parse_head},
  {"session", lib_session},
  {"isatty", lib_isatty},
  {"open_download", lib_open_download},
  {"version", lib_version},
  {"stats", lib_stats},
  {NULL, NULL}
};

int luaopen_http_core(lua_State *L) {
  if (multi == NULL) {
    if (!global_inited) {
      if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return luaL_error(L, "curl_global_init failed");
      global_inited = 1;
    }
    {
      static const char *const vars[] = {"http_proxy", "https_proxy",
        "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL};
      int i;
      env_proxy = 0;
      for (i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) env_proxy = 1;
      }
    }
    timer = malloc(sizeof *timer);
    if (timer == NULL) return luaL_error(L, "not enough memory");
    uv_timer_init(ns_loop(), timer);
    multi = curl_multi_init();
    if (multi == NULL) return luaL_error(L, "curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    /* curl's default cache size is 4x the transfers in the multi at the
    ** time, which drops kept-alive connections whenever few transfers
    ** happen to be running; a fixed size keeps them */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 128L);
    /* the sentinel: its finalizer tears the multi down at lua_close */
    lua_newuserdatauv(L, 1, 0);
    luaL_newmetatable(L, MULTI_MT);
    lua_pushcfunction(L, multi_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, MULTI_MT);
  }
  luaL_newmetatable(L, XFER_MT);
  luaL_newlibtable(L, xfer_methods);
  {
    int k;
    lua_createtable(L, K_COUNT - 1, 0);              /* the field names */
    for (k = 1; k < K_COUNT; k++) {
      lua_pushstring(L, key_names[k]);
      lua_rawseti(L, -2, k);
    }
  }
  luaL_setfuncs(L, xfer_methods, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, SHARE_MT);
  luaL_newlib(L, share_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, share_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, lib);
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl");                  /* the libcurl running */
  return 1;
}
