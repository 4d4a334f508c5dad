/*
** netsh.h -- the one shared header: scheduler, waiters, errors, buffers.
**
** A task is a Lua coroutine run by the scheduler in loop.c. A C binding that
** must wait parks the current task on an ns_waiter_t with ns_wait(); the
** event source (a libuv/c-ares/curl callback) records the outcome in
** w->status and calls ns_wake(w). The task is resumed later from the loop,
** never from inside the callback, and its continuation reads the outcome.
** Timeouts, deadline scopes (task.timeout), cancellation and interrupts all
** end a wait through the same path: w->status is set, w->cancel(w) undoes
** the pending operation, the task is queued.
*/
#ifndef NETSH_H
#define NETSH_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <uv.h>
#include <lua.h>
#include <lauxlib.h>

#define NETSH_VERSION "0.1.0"

/* ---- intrusive lists (libuv's queue.h, Linux's list_head) ----
** An element embeds an ns_link_t; a list is an ns_link_t head that
** ns_list_init made circular (empty: it points at itself). A link in no
** list is {NULL, NULL}, so a zeroed element starts unlinked, and
** ns_list_remove of an unlinked link does nothing. ns_container_of gives
** back the element of a link. A head must not be copied or moved. */
typedef struct ns_link_s { struct ns_link_s *prev, *next; } ns_link_t;
#define ns_container_of(p, type, field) \
  ((type *)(void *)((char *)(p) - offsetof(type, field)))
#define ns_list_foreach(l, h) \
  for ((l) = (h)->next; (l) != (h); (l) = (l)->next)
static inline void ns_list_init(ns_link_t *h) { h->prev = h->next = h; }
static inline int ns_list_empty(const ns_link_t *h) { return h->next == h; }
static inline int ns_linked(const ns_link_t *l) { return l->next != NULL; }
/* the first link, NULL when the list is empty */
static inline ns_link_t *ns_list_first(const ns_link_t *h) {
  return h->next == h ? NULL : h->next;
}
static inline void ns_list_insert_tail(ns_link_t *h, ns_link_t *l) {
  l->next = h;
  l->prev = h->prev;
  h->prev->next = l;
  h->prev = l;
}
static inline void ns_list_insert_head(ns_link_t *h, ns_link_t *l) {
  ns_list_insert_tail(h->next, l);
}
static inline void ns_list_remove(ns_link_t *l) {
  if (l->next == NULL) return;
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = NULL;
}

typedef struct ns_task ns_task_t;
typedef struct ns_waiter ns_waiter_t;

/* Undo the operation a waiter stands for (stop reading, close a connect
** request...). Called on timeout, cancellation and interrupt, before the
** task is queued; w->status already holds the reason. Must not call Lua. */
typedef void (*ns_cancel_fn)(ns_waiter_t *w);

struct ns_waiter {
  ns_task_t *task;       /* parked task; NULL when nobody waits */
  int status;            /* outcome: 0, a count, or a negative UV_E* */
  ns_cancel_fn cancel;   /* optional: abort the pending operation */
  void *data;            /* owner (the socket...) for the callbacks */
  ns_link_t link;        /* in a ns_cond_t list */
};

/* Extra statuses beyond libuv's: every one has its message in util.c's
** table (ns_strerror), the one place Lua-visible error strings live. */
#define NS_EDEADLINE (-100001) /* the enclosing task.timeout expired */
#define NS_EINTR     (-100002) /* interrupted (Ctrl-C, group failure) */
#define NS_ECLOSED   UV_ECANCELED /* the object was closed: "closed" */
#define NS_EBUSY     (-100003) /* another task waits there: "busy" */
#define NS_ENOTBOUND (-100004) /* no socket yet: "not bound" */
#define NS_ENOTCONN  (-100005) /* no peer set: "not connected" (UV_ENOTCONN,
                                  a connection that ended, is "closed") */
#define NS_ENOPATH   (-100006) /* "bind a path first" */
#define NS_ETLSSTARTED (-100007) /* "tls already started" */
#define NS_ENOTTLS   (-100008) /* "not a tls socket" */
#define NS_ETLS      (-100009) /* TLS failed: the engine says why (socket_tcp.c
                                  asks it; alone: "tls: connection failed") */
#define NS_EHANDSHAKE (-100010) /* "handshake timeout" */
#define NS_EBADANSWER (-100011) /* "malformed dns answer" */
#define NS_ENOPEM    (-100012) /* "tls: no PEM certificate" */
#define NS_ETOOBIG   (-100013) /* "body too large": http.c adds the limit */
#define NS_EBOMB     (-100014) /* "bad response: decompressed body too
                                  large": http.c adds the limit */
#define NS_EREDIRECTS (-100015) /* "too many redirects" */
#define NS_ERATIO    (-100016) /* as NS_EBOMB, by the ratio limit */
#define NS_EBADRESPONSE (-100017) /* "bad response": a caller adds why */

/* ---- classes (class.c): one metatable per LuaSocket class ---- */
typedef struct ns_kind {
  const char *name;              /* registry name of class 0's metatable */
  const char *const *classes;    /* "tcp{master}", ... */
  int n;
} ns_kind_t;
/* The template metatable on top (metamethods, __methods) becomes class 0
** and is copied for the others; pops it. */
void ns_class_define(lua_State *L, const ns_kind_t *kind);
/* The userdata at i if its metatable is one of kind's (class in *k). */
void *ns_class_test(lua_State *L, int i, const ns_kind_t *kind, int *k);
void *ns_class_check(lua_State *L, int i, const ns_kind_t *kind, int *k);
void ns_class_set(lua_State *L, int i, const ns_kind_t *kind, int k);

/* ---- scheduler (loop.c) ---- */
uv_loop_t *ns_loop(void);
lua_State *ns_mainstate(void);
ns_task_t *ns_current(void);

/* Park the running task on w until ns_wake(w), the timeout (seconds, < 0:
** none) or the task's deadline. Never returns to the caller: yields, and
** the continuation k(L, LUA_YIELD, ctx) runs on resume with w->status set
** (UV_ETIMEDOUT on timeout). Raises when the caller is not in a task or
** cannot yield; raises the deadline/interrupt error itself. */
int ns_wait(lua_State *L, ns_waiter_t *w, double timeout,
            lua_KFunction k, lua_KContext ctx);
/* Record-only from callbacks: queue the parked task (no-op if none). */
void ns_wake(ns_waiter_t *w, int status);
/* Wake the parked task with status, after calling w->cancel. */
void ns_cancel(ns_waiter_t *w, int status);
/* True when ns_wait would not yield but fail at once (timeout 0 etc.). */
double ns_now(void);                      /* monotonic seconds */
/* Counts the loop's runs of the ready tasks: a task woken in a callback
** has run (or been cancelled) once the count moves on. */
unsigned ns_turn(void);

/* Task helpers for the REPL and main. */
ns_task_t *ns_spawn(lua_State *L, int nargs, const char *name);
void ns_interrupt(ns_task_t *t, const char *msg);
int ns_task_done(ns_task_t *t);
int ns_run(void);                 /* run the loop until no task is alive */
int ns_exit_status(void);
/* main.c's side of the loop: make and close it, stop it, and the main
** task (its end, ns_on_main_done, ends the program; orphans reported) */
int ns_loop_init(lua_State *L);
int ns_loop_close(void);
void ns_stop(void);
void ns_task_mark_main(ns_task_t *t);
void ns_report_orphans(void);
extern void (*ns_on_main_done)(ns_task_t *t, int failed);
/* SIGINTs seen by loop.c's handler (main.c and repl.c read it) */
extern volatile sig_atomic_t ns_sigint_count;
ns_task_t *ns_task_from_handle(lua_State *L, int idx);
extern void (*ns_on_sigint)(void);      /* Ctrl-C seen by the loop */
extern ns_task_t *ns_foreground;        /* what Ctrl-C interrupts */
/* Around the loop's own messages (failed-task reports): called with 0
** before writing, 1 after; the REPL wipes and redraws its input line. */
extern void (*ns_on_output)(int after);

/* A condition: any number of parked waiters, FIFO. */
typedef struct { ns_link_t waiters; } ns_cond_t;
/* The first parked waiter, NULL when none waits. */
static inline ns_waiter_t *ns_cond_first(ns_cond_t *c) {
  ns_link_t *l = ns_list_first(&c->waiters);
  return l ? ns_container_of(l, ns_waiter_t, link) : NULL;
}
void ns_cond_init(ns_cond_t *c);
int ns_cond_wait(lua_State *L, ns_cond_t *c, ns_waiter_t *w, double timeout,
                 lua_KFunction k, lua_KContext ctx);
/* Wakes the first waiter and returns it (NULL: none waited), so the
** caller can hand it something (a claim on a datagram...). */
ns_waiter_t *ns_cond_signal(ns_cond_t *c, int status);
void ns_cond_remove(ns_waiter_t *w);  /* out of its list, if in one */
void ns_cond_broadcast(ns_cond_t *c, int status);

/* ---- errors (util.c) ---- */
const char *ns_strerror(int code);        /* LuaSocket-style message */
int ns_fail(lua_State *L, int code);      /* pushes nil, msg; returns 2 */
int ns_fail_str(lua_State *L, const char *msg);
/* luaL_checkstring for a string that C reads up to its first NUL, where
** an embedded NUL would cut it silently ("localhost\0.evil.com" would be
** "localhost"). A string holding one raises "bad argument #idx (what must
** not contain a NUL byte)"; with what NULL, NULL is returned instead, for
** APIs that answer nil, "invalid argument" (ns_fail(L, UV_EINVAL)). */
const char *ns_checkcstring(lua_State *L, int idx, const char *what);

/* ---- timeouts of a socket (util.c): LuaSocket's settimeout modes
** ("b" bounds each wait, "t" the whole operation; LuaSocket's timeout.c)
** and OpenResty's settimeouts(connect, send, read) overrides ---- */
#define NS_TO_UNSET (-2.0)
typedef struct {
  double block, total;       /* seconds; < 0: none */
  double conn, send, read;   /* NS_TO_UNSET: block/total apply; < 0: none */
} ns_timeout_t;
void ns_timeout_init(ns_timeout_t *tm);
/* What is left for an operation started at start, under block/total;
** < 0: wait forever. */
double ns_timeout_left(const ns_timeout_t *tm, double start);
/* The same, unless the per-operation override (tm->send...) is set. */
double ns_timeout_op(const ns_timeout_t *tm, double over, double start);
/* The methods: settimeout(value [, mode]), settimeouts(connect, send,
** read), gettimeout() -> block, total. Stack: the object at 1. */
int ns_settimeout(lua_State *L, ns_timeout_t *tm);
int ns_settimeouts(lua_State *L, ns_timeout_t *tm);
int ns_gettimeout(lua_State *L, const ns_timeout_t *tm);

/* ---- growable byte buffer with a read offset (util.c) ---- */
typedef struct {
  char *data;
  size_t len;    /* bytes from data[off] to data[off + len] are unread */
  size_t off;
  size_t cap;
} ns_buf_t;
int ns_buf_reserve(ns_buf_t *b, size_t extra);  /* 0 or UV_ENOMEM */
int ns_buf_append(ns_buf_t *b, const char *p, size_t n);
void ns_buf_consume(ns_buf_t *b, size_t n);
void ns_buf_free(ns_buf_t *b);
/* no arithmetic on an empty buffer's NULL (undefined, even + 0) */
#define ns_buf_ptr(b) ((b)->off ? (b)->data + (b)->off : (b)->data)

/* ---- name resolution (dns.c, c-ares on the loop) ---- */
#include <sys/socket.h>
typedef struct {
  struct sockaddr_storage ss;
  socklen_t len;
} ns_addr_t;
#define NS_MAXADDRS 16
/* Called with n > 0 addresses (in the resolver's preference order, at
** most NS_MAXADDRS) or n < 0, a UV_E* code (UV_EAI_NONAME: "host not
** found", UV_ETIMEDOUT, NS_EDEADLINE, NS_EINTR...). Returns what the Lua
** function returns (like a lua_KFunction). */
typedef int (*ns_resolve_k)(lua_State *L, int n, const ns_addr_t *addrs,
                            lua_KContext ctx);
/* Resolves host (a name, a numeric IPv4/IPv6 address, "*" or "localhost")
** and port for family AF_UNSPEC, AF_INET or AF_INET6. Numeric hosts call k
** at once; names park the task (bounded by timeout seconds, < 0: the
** default NS_DNS_TIMEOUT) and call k on resume. Use as
** `return ns_resolve(...)`. */
#define NS_DNS_TIMEOUT 30.0
int ns_resolve(lua_State *L, const char *host, int port, int family,
               int passive, double timeout, ns_resolve_k k, lua_KContext ctx);
/* As ns_resolve; while the task waits for the lookup, *track points to its
** waiter (ns_cancel(*track, code) ends the wait early: k then gets code),
** and it is NULL again once the wait is over, however it ended. */
int ns_resolve_tracked(lua_State *L, const char *host, int port, int family,
                       int passive, double timeout, ns_resolve_k k,
                       lua_KContext ctx, ns_waiter_t **track);
/* ---- addresses (addr.c) ---- */
const char *ns_family_name(int family);   /* "inet", ... "unspec" */
int ns_family_of(const char *name);       /* AF_*; NULL: AF_UNSPEC; -1 */
/* Numeric IPv4/IPv6 (ADDR%ZONE too) to a sockaddr with port: 0, or -1
** when host is not numeric for family (AF_UNSPEC: either). */
int ns_addr_numeric(const char *host, int port, int family, ns_addr_t *a);
/* ip, port of a datagram's sender (path, nil for a Unix one) */
void ns_addr_push_peer(lua_State *L, const struct sockaddr *sa);
/* ip, port, family of a sockaddr: "1.2.3.4" / "::1", "inet"/"inet6". */
void ns_addr_push(lua_State *L, const struct sockaddr *sa);
/* The same for a name of len bytes as the kernel gave it, which a Unix
** socket name needs: path, nil, "unix" ("" unnamed, "@name" abstract).
** With len unknown, pass the whole size of a zeroed sockaddr_un. */
void ns_addr_push_len(lua_State *L, const struct sockaddr *sa,
                      socklen_t len);
/* The port argument i as LuaSocket takes it (it hands ports to
** getaddrinfo as services): an integer or a string of one, 0..65535, or
** a service name of /etc/services for proto "tcp" or "udp". Raises
** "invalid port" on other numbers and on other types; returns the port,
** or UV_EAI_SERVICE for an unknown name (a nil, err for the caller). */
int ns_check_port(lua_State *L, int i, const char *proto);
/* "PATH", or "@name" (Linux's abstract namespace), as a Unix socket
** address. 0, or UV_EINVAL (empty), UV_ENAMETOOLONG. */
int ns_unix_addr(const char *path, ns_addr_t *a);
/* "ADDR%ZONE" (IPv6 literal, interface name or number) with port. 0,
** UV_EAI_NONAME (no such interface), UV_EINVAL (not of that form). */
int ns_ip6_scoped(const char *host, int port, ns_addr_t *a);

/* ---- socket options (sockopt.c) ---- */

#define NS_OPT_TCP 1          /* the kinds an option is for */
#define NS_OPT_UDP 2
#define NS_FD_CLOSED (-2)     /* fd argument: the object was closed */
/* Options set before the socket exists, applied to it once made. */
typedef struct {
  struct ns_keptopt *v;
  int n, cap;
} ns_optlist_t;
/* setoption(name [, value]) / getoption(name) of a socket of kind
** NS_OPT_* (the object at 1, name at 2, value at 3), on descriptor fd
** (-1: none yet, NS_FD_CLOSED). setoption keeps the value in l when l is
** not NULL and sets it on fd when fd >= 0; getoption reads fd, or l when
** there is no fd. Return Lua results (1, value or nil, err). */
int ns_setoption(lua_State *L, int kind, int fd, ns_optlist_t *l);
int ns_getoption(lua_State *L, int kind, int fd, const ns_optlist_t *l);
/* Sets the kept options on a new socket of family (IPv6-level ones only
** on AF_INET6). 0 or a UV_E* code. */
int ns_optlist_apply(const ns_optlist_t *l, int fd, int family);
void ns_optlist_free(ns_optlist_t *l);

/* ---- select() across object kinds (select.c) ---- */

/* A select() parked on an object is linked into the object's list; the
** object wakes the list when it may have become ready, and when it is
** closed (ns_sel_release). The select then asks every object again. */
typedef struct {
  ns_waiter_t *w;                        /* the parked select's waiter */
  ns_link_t link;
} ns_selnode_t;
void ns_sel_link(ns_link_t *list, ns_selnode_t *n, ns_waiter_t *w);
void ns_sel_notify(ns_link_t *list);     /* wakes the selects on a list */
void ns_sel_release(ns_link_t *list);    /* wakes and unlinks them all */

/* How select() sees one kind of object (a full userdata). To join
** select, a kind keeps an ns_link_t list (ns_list_init) in its object,
** calls ns_sel_notify(&list) when it may have become ready and
** ns_sel_release on close, and registers once, after
** luaL_newmetatable(L, tname):
**   static const ns_select_ops_t ops = {my_ready, my_watch, NULL};
**   ns_select_register(L, "netsh.mykind", &ops);
** Objects are found through their metatable (or a table's `_socket`
** field); select.c knows no kind by name. */
typedef struct {
  /* 1 when a receive (write 0) or send (write 1) would not wait */
  int (*ready)(void *obj, int write);
  /* ns_sel_link(&obj->list, n, w) and start whatever makes the object
  ** notify (reading...). 0 when it cannot become ready (closed): n unused */
  int (*watch)(void *obj, ns_selnode_t *n, ns_waiter_t *w, int write);
  /* optional, for select(r, w, 0) loops that never yield: ask the kernel
  ** now, so that ready() sees what the loop has not delivered yet */
  void (*poll)(void *obj, int write);
} ns_select_ops_t;
void ns_select_register(lua_State *L, const char *tname,
                        const ns_select_ops_t *ops);
int ns_select(lua_State *L);  /* socket.select(recvt, sendt [, timeout]) */

/* ---- modules ---- */
int luaopen_task_core(lua_State *L);
int luaopen_netsh_stdin(lua_State *L);
int luaopen_json_aux(lua_State *L);       /* json_aux.c, for lua/json.lua */
int luaopen_socket_dns_core(lua_State *L);   /* dns.c */
int luaopen_socket_core(lua_State *L);       /* socket_tcp.c */
int luaopen_udp_core(lua_State *L);
int luaopen_proc_core(lua_State *L);      /* proc.c */
int luaopen_http_parser(lua_State *L);    /* http_parse.c */
int luaopen_http_fs(lua_State *L);        /* http_parse.c */
int luaopen_websocket_core(lua_State *L);  /* websocket.c */
int ns_load_embedded(lua_State *L, int kind, const char *name);
int ns_open_embedded(lua_State *L);       /* package.preload for lua/ */

#endif
