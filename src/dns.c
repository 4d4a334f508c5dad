/*
** dns.c -- name resolution on the loop with c-ares: ns_resolve() for the
** bindings, and "socket.dns.core" (toip, tohostname, getaddrinfo,
** getnameinfo, gethostname, query with TTLs, setservers) for Lua.
**
** Why c-ares and not uv_getaddrinfo(): libuv runs getaddrinfo(3) on its
** thread pool, 4 threads shared with every file operation. A slow or dead
** DNS server holds a thread for resolv.conf's whole timeout (5 s x tries),
** so four such lookups stall every other lookup and every fs request of
** the process -- the failure node and asyncio users know well. A running
** getaddrinfo(3) cannot be cancelled either (uv_cancel only removes queued
** work), so a task.timeout cannot give the thread back. c-ares is one
** non-blocking UDP socket on the loop: any number of lookups in flight, a
** timed-out one is simply forgotten, and it reads /etc/hosts and
** resolv.conf ("lookups fb") as libc does. It also gives TTLs.
**
** Wiring (curl's multi-uv shape): c-ares tells sock_state_cb which sockets
** it wants watched; each gets a uv_poll_t (poller_t, freed in its close
** callback). One uv_timer_t, re-armed from ares_timeout() after every call
** into c-ares, drives its retries.
**
** Ownership: a lookup_t is malloc'd and belongs to c-ares until its
** callback runs. The waiting side is a req_t, a userdata on the waiting
** task's stack (so neither is collected while parked). They point at each
** other and either can detach: timeout, cancel and __gc set
** lookup->owner = NULL, and a callback that finds no owner only frees.
** A finished lookup stays with its req_t until the continuation (or
** __gc) frees it. c-ares may call back from inside ares_getaddrinfo()
** (/etc/hosts hits): ns_wake() then finds nobody parked, and req_wait()
** sees lk->done and continues at once.
*/
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ares.h>
#include "netsh.h"

#define REQ_MT "netsh.dnsreq"
#define CHANNEL_KEY "netsh.dns.channel"
#define MAXALIASES 8

typedef struct poller {
  uv_poll_t h;
  ares_socket_t fd;
  ns_link_t link;        /* in pollers */
} poller_t;

typedef struct req req_t;

typedef struct {
  req_t *owner;          /* NULL once the waiting side let go */
  int done;              /* the c-ares callback ran */
  int status;            /* its ARES_* status */
  int naddrs;
  ns_addr_t addrs[NS_MAXADDRS];
  int ttls[NS_MAXADDRS];
  char *name;            /* canonical / reverse name, nameinfo node */
  char *service;         /* nameinfo service */
  int naliases;
  char *aliases[MAXALIASES];
  unsigned char *abuf;   /* raw answer of a query */
  int alen;
} lookup_t;

struct req {
  ns_waiter_t w;
  lookup_t *lk;          /* NULL once detached or taken */
  int top;               /* the caller's stack top below this userdata */
  ns_resolve_k k;        /* ns_resolve: the binding's continuation */
  lua_KContext kctx;
  int port;
  int qtype;             /* query: the record type asked for */
  ns_waiter_t **track;   /* ns_resolve_tracked: the caller's pointer */
};

static ares_channel channel;
static int channel_state;        /* 0 not made, 1 ready, -1 failed */
static int shutting_down;
static uv_timer_t timer;
static ns_link_t pollers = {&pollers, &pollers};

/* ---- c-ares on the loop ---- */

static void timer_cb(uv_timer_t *h);

/* After every call into c-ares: its next retry or timeout, if any. */
static void arm_timer(void) {
  struct timeval tv, *tvp;
  uint64_t ms;
  if (shutting_down || channel_state != 1) return;
  tvp = ares_timeout(channel, NULL, &tv);
  if (tvp == NULL) {
    uv_timer_stop(&timer);
    return;
  }
  ms = (uint64_t)tvp->tv_sec * 1000 + ((uint64_t)tvp->tv_usec + 999) / 1000;
  uv_timer_start(&timer, timer_cb, ms ? ms : 1, 0);
}

static void timer_cb(uv_timer_t *h) {
  (void)h;
  ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  arm_timer();
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  poller_t *p = h->data;
  ares_socket_t fd = p->fd;   /* p may be closed by the call below */
  if (status < 0) events = UV_READABLE | UV_WRITABLE;  /* c-ares sees it */
  ares_process_fd(channel,
                  (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                  (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
  arm_timer();
}

static void free_poller_cb(uv_handle_t *h) { free(h->data); }

static void sock_state_cb(void *data, ares_socket_t fd, int readable,
                          int writable) {
  poller_t *p;
  ns_link_t *l;
  (void)data;
  ns_list_foreach(l, &pollers)
    if (ns_container_of(l, poller_t, link)->fd == fd) break;
  p = l == &pollers ? NULL : ns_container_of(l, poller_t, link);
  if (readable || writable) {
    if (p == NULL) {
      p = calloc(1, sizeof *p);
      if (p == NULL) return;   /* c-ares times the query out */
      if (uv_poll_init_socket(ns_loop(), &p->h, fd) != 0) {
        free(p);
        return;
      }
      p->fd = fd;
      p->h.data = p;
      ns_list_insert_head(&pollers, &p->link);
    }
    uv_poll_start(&p->h, (readable ? UV_READABLE : 0) |
                  (writable ? UV_WRITABLE : 0), poll_cb);
  } else if (p) {
    ns_list_remove(&p->link);
    uv_close((uv_handle_t *)&p->h, free_poller_cb);
  }
}

/* At lua_close: every pending callback runs with ARES_EDESTRUCTION and
** only frees (shutting_down), sockets close through sock_state_cb, and
** ns_loop_close() runs the close callbacks. */
static int channel_gc(lua_State *L) {
  (void)L;
  if (channel_state != 1) return 0;
  shutting_down = 1;
  ares_destroy(channel);
  uv_close((uv_handle_t *)&timer, NULL);
  ares_library_cleanup();
  channel_state = 0;
  return 0;
}

static int channel_get(lua_State *L) {
  struct ares_options opts;
  if (channel_state == 1) return 0;
  if (channel_state < 0) return UV_EAI_FAIL;
  channel_state = -1;
  if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) return UV_EAI_FAIL;
  memset(&opts, 0, sizeof opts);
  opts.sock_state_cb = sock_state_cb;
  if (ares_init_options(&channel, &opts, ARES_OPT_SOCK_STATE_CB) !=
      ARES_SUCCESS) {
    ares_library_cleanup();
    return UV_EAI_FAIL;
  }
  uv_timer_init(ns_loop(), &timer);
  channel_state = 1;
  /* a registry userdata whose __gc tears the channel down at exit */
  lua_newuserdatauv(L, 1, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, channel_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, CHANNEL_KEY);
  return 0;
}

/* set while setservers ends the lookups in flight (see there) */
static int servers_changing;

static int ares_to_uv(int st) {
  switch (st) {
    case ARES_ENOTFOUND: case ARES_ENONAME: case ARES_ENODATA:
    case ARES_EBADNAME: return UV_EAI_NONAME;
    case ARES_ETIMEOUT: case ARES_ECONNREFUSED: case ARES_ESERVFAIL:
    case ARES_EOF: return UV_EAI_AGAIN;
    case ARES_ENOMEM: return UV_ENOMEM;
    case ARES_ECANCELLED: case ARES_EDESTRUCTION: return UV_ECANCELED;
    case ARES_EBADFAMILY: return UV_EAI_FAMILY;
    default: return UV_EAI_FAIL;
  }
}

/* ---- lookups and their waiting side ---- */

static void lookup_free(lookup_t *lk) {
  int i;
  free(lk->name);
  free(lk->service);
  for (i = 0; i < lk->naliases; i++) free(lk->aliases[i]);
  free(lk->abuf);
  free(lk);
}

/* Common head of every c-ares callback: 1 when someone still waits. */
static int lookup_claim(lookup_t *lk, int status) {
  if (lk->owner && !shutting_down) {
    /* ended by setservers: as if its server had gone away */
    if (servers_changing && status == ARES_ECANCELLED)
      status = ARES_ECONNREFUSED;
    lk->status = status;
    return 1;
  }
  if (lk->owner) lk->owner->lk = NULL;
  lookup_free(lk);
  return 0;
}

static void lookup_done(lookup_t *lk) {
  lk->done = 1;
  ns_wake(&lk->owner->w, 0);
}

static char *dupstr(const char *s) {
  size_t n;
  char *p;
  if (s == NULL) return NULL;
  n = strlen(s) + 1;
  p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static void add_alias(lookup_t *lk, const char *s) {
  int i;
  for (i = 0; s && i < lk->naliases; i++)   /* A and AAAA both list it */
    if (strcmp(lk->aliases[i], s) == 0) return;
  if (lk->naliases < MAXALIASES && s)
    if ((lk->aliases[lk->naliases] = dupstr(s)) != NULL) lk->naliases++;
}

static void add_addr(lookup_t *lk, const struct sockaddr *sa, size_t len,
                     int ttl) {
  int i;
  if (lk->naddrs >= NS_MAXADDRS || len > sizeof(struct sockaddr_storage))
    return;
  if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) return;
  for (i = 0; i < lk->naddrs; i++)        /* hosts + DNS can repeat */
    if (lk->addrs[i].len == len && memcmp(&lk->addrs[i].ss, sa, len) == 0)
      return;
  memcpy(&lk->addrs[lk->naddrs].ss, sa, len);
  lk->addrs[lk->naddrs].len = (socklen_t)len;
  lk->ttls[lk->naddrs] = ttl;
  lk->naddrs++;
}

static void addrinfo_cb(void *arg, int status, int timeouts,
                        struct ares_addrinfo *ai) {
  lookup_t *lk = arg;
  (void)timeouts;
  if (lookup_claim(lk, status)) {
    if (status == ARES_SUCCESS && ai) {
      struct ares_addrinfo_node *n;
      struct ares_addrinfo_cname *c;
      for (n = ai->nodes; n; n = n->ai_next)
        add_addr(lk, n->ai_addr, n->ai_addrlen, n->ai_ttl);
      const char *canon = ai->name;
      for (c = ai->cnames; c; c = c->next) {
        add_alias(lk, c->alias);
        canon = c->name;           /* the chain's last target */
      }
      lk->name = dupstr(canon);
    }
    lookup_done(lk);
  }
  if (ai) ares_freeaddrinfo(ai);
}

static void hostent_cb(void *arg, int status, int timeouts,
                       struct hostent *h) {
  lookup_t *lk = arg;
  (void)timeouts;
  if (!lookup_claim(lk, status)) return;
  if (status == ARES_SUCCESS && h) {
    char **p;
    lk->name = dupstr(h->h_name);
    for (p = h->h_aliases; p && *p; p++) add_alias(lk, *p);
  }
  lookup_done(lk);
}

static void nameinfo_cb(void *arg, int status, int timeouts, char *node,
                        char *service) {
  lookup_t *lk = arg;
  (void)timeouts;
  if (!lookup_claim(lk, status)) return;
  lk->name = dupstr(node);
  lk->service = dupstr(service);
  lookup_done(lk);
}

static void query_cb(void *arg, int status, int timeouts,
                     unsigned char *abuf, int alen) {
  lookup_t *lk = arg;
  (void)timeouts;
  if (!lookup_claim(lk, status)) return;
  if (abuf && alen > 0 && (lk->abuf = malloc((size_t)alen)) != NULL) {
    memcpy(lk->abuf, abuf, (size_t)alen);
    lk->alen = alen;
  }
  lookup_done(lk);
}

/* Detach the lookup from a waiter whose wait ended without it. */
static void req_untrack(req_t *r) {
  if (r->track) {
    *r->track = NULL;
    r->track = NULL;
  }
}

static void req_cancel(ns_waiter_t *w) {
  req_t *r = w->data;
  req_untrack(r);
  if (r->lk && !r->lk->done) {
    r->lk->owner = NULL;      /* the callback will find no owner */
    r->lk = NULL;
  }
}

static int req_gc(lua_State *L) {
  req_t *r = luaL_checkudata(L, 1, REQ_MT);
  req_untrack(r);
  if (r->lk) {
    if (r->lk->done) lookup_free(r->lk);
    else r->lk->owner = NULL;
    r->lk = NULL;
  }
  return 0;
}

/* Pushes a req_t with a fresh lookup; NULL (nothing pushed) if no memory
** or no channel. */
static req_t *req_new(lua_State *L, int *err) {
  req_t *r;
  lookup_t *lk;
  if ((*err = channel_get(L)) != 0) return NULL;
  lk = calloc(1, sizeof *lk);
  if (lk == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  r = lua_newuserdatauv(L, sizeof *r, 0);
  memset(r, 0, sizeof *r);
  if (luaL_newmetatable(L, REQ_MT)) {
    lua_pushcfunction(L, req_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  r->top = lua_gettop(L) - 1;
  r->w.data = r;
  r->w.cancel = req_cancel;
  r->lk = lk;
  lk->owner = r;
  return r;
}

/* Takes the finished lookup out of r (the caller frees it), or returns
** NULL with *err set: the wait ended by timeout or cancellation. */
static lookup_t *req_take(req_t *r, int *err) {
  lookup_t *lk = r->lk;
  if (lk == NULL || !lk->done) {
    req_cancel(&r->w);
    *err = r->w.status < 0 ? r->w.status : UV_ECANCELED;
    return NULL;
  }
  r->lk = NULL;
  *err = lk->status == ARES_SUCCESS ? 0 : ares_to_uv(lk->status);
  return lk;
}

/* Call right after starting the c-ares operation for r (on the top). */
static int req_wait(lua_State *L, req_t *r, double timeout,
                    lua_KFunction k) {
  arm_timer();
  if (r->lk->done) return k(L, LUA_OK, (lua_KContext)r);
  return ns_wait(L, &r->w, timeout < 0 ? NS_DNS_TIMEOUT : timeout, k,
                 (lua_KContext)r);
}

/* ---- numeric hosts, "*", "localhost": no wait ---- */

static int set_port(ns_addr_t *a, int port) {
  if (a->ss.ss_family == AF_INET)
    ((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)port);
  return 0;
}

/* Fills a[] (room for 2) for hosts that need no lookup: > 0 addresses,
** 0 "ask c-ares", < 0 an error. */
static int numeric(const char *host, int port, int family, int passive,
                   ns_addr_t *a) {
  int n = 0;
  if (strcmp(host, "*") == 0 || (passive && host[0] == '\0')) {
    /* dual-stack first: a "::" socket with v6only off takes IPv4 too */
    if (family != AF_INET) ns_addr_numeric("::", port, AF_INET6, &a[n++]);
    if (family != AF_INET6)
      ns_addr_numeric("0.0.0.0", port, AF_INET, &a[n++]);
  } else if (strcmp(host, "localhost") == 0 ||
             strcmp(host, "localhost.") == 0) {
    /* RFC 6761: always loopback. IPv4 first, as /etc/hosts lists it and
    ** as a Python peer (AF_INET by default) expects of a server. */
    if (family != AF_INET6)
      ns_addr_numeric("127.0.0.1", port, AF_INET, &a[n++]);
    if (family != AF_INET) ns_addr_numeric("::1", port, AF_INET6, &a[n++]);
  } else {
    struct addrinfo hints, *res = NULL;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST;   /* never touches the network */
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 && strchr(host, '%')) {
      rc = ns_ip6_scoped(host, port, a);
      if (rc == UV_EINVAL) return 0;     /* not ADDR%ZONE: ask c-ares */
      if (rc == 0 && family == AF_INET) rc = UV_EAI_ADDRFAMILY;
      return rc == 0 ? 1 : rc;
    }
    if (rc != 0) return 0;
    if ((family == AF_UNSPEC || family == res->ai_family) &&
        res->ai_addrlen <= sizeof a->ss) {
      memset(a, 0, sizeof *a);
      memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
      a->len = res->ai_addrlen;
      n = 1;
    } else {
      n = UV_EAI_ADDRFAMILY;
    }
    freeaddrinfo(res);
  }
  if (n > 0) {
    int i;
    for (i = 0; i < n; i++) set_port(&a[i], port);
  }
  return n;
}

static int start_addrinfo(lua_State *L, req_t *r, const char *host,
                          int family, int flags) {
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = flags;
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  ares_getaddrinfo(channel, host, NULL, &hints, addrinfo_cb, r->lk);
  return 0;
}

/* ---- ns_resolve ---- */

static int resolve_k(lua_State *L, int status, lua_KContext ctx) {
  req_t *r = (req_t *)ctx;
  ns_addr_t addrs[NS_MAXADDRS];
  ns_resolve_k k = r->k;
  lua_KContext kctx = r->kctx;
  int err, n = 0, i;
  lookup_t *lk;
  (void)status;
  req_untrack(r);
  lk = req_take(r, &err);
  if (lk) {
    for (i = 0; i < lk->naddrs; i++) {
      addrs[n] = lk->addrs[i];
      set_port(&addrs[n++], r->port);
    }
    lookup_free(lk);
    if (err == 0 && n == 0) err = UV_EAI_NONAME;
  }
  lua_settop(L, r->top);      /* r may be collected from here on */
  return k(L, err ? err : n, addrs, kctx);
}

int ns_resolve_tracked(lua_State *L, const char *host, int port, int family,
                       int passive, double timeout, ns_resolve_k k,
                       lua_KContext ctx, ns_waiter_t **track) {
  ns_addr_t a[2];
  int n = numeric(host, port, family, passive, a), err;
  req_t *r;
  if (n != 0) return k(L, n, a, ctx);
  r = req_new(L, &err);
  if (r == NULL) return k(L, err, NULL, ctx);
  r->k = k;
  r->kctx = ctx;
  r->port = port;
  start_addrinfo(L, r, host, family, passive ? ARES_AI_PASSIVE : 0);
  if (track && !r->lk->done) {
    r->track = track;
    *track = &r->w;
  }
  return req_wait(L, r, timeout, resolve_k);
}

int ns_resolve(lua_State *L, const char *host, int port, int family,
               int passive, double timeout, ns_resolve_k k,
               lua_KContext ctx) {
  return ns_resolve_tracked(L, host, port, family, passive, timeout, k, ctx,
                            NULL);
}

/* ---- Lua: socket.dns.core ---- */

static void push_ip(lua_State *L, const ns_addr_t *a) {
  ns_addr_push(L, (const struct sockaddr *)&a->ss);
  lua_pop(L, 2);                           /* keep the ip only */
}

static int family_arg(lua_State *L, int i) {
  const char *name = luaL_optstring(L, i, "unspec");
  int f = ns_family_of(name);
  if (f != AF_UNSPEC && f != AF_INET && f != AF_INET6)
    return luaL_argerror(L, i, lua_pushfstring(L, "invalid option '%s'",
                                               name));
  return f;
}

/* The resolved table LuaSocket's toip/tohostname return. */
static void push_resolved(lua_State *L, const char *name, lookup_t *lk,
                          const ns_addr_t *a, int na) {
  int i;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  lua_createtable(L, lk ? lk->naliases : 0, 0);
  for (i = 0; lk && i < lk->naliases; i++) {
    lua_pushstring(L, lk->aliases[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "alias");
  lua_createtable(L, na, 0);
  for (i = 0; i < na; i++) {
    push_ip(L, &a[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "ip");
}

/* getaddrinfo(name [, family]) -> {{family=, addr=, ttl=}...} | nil, err */
static int getaddrinfo_k(lua_State *L, int status, lua_KContext ctx) {
  req_t *r = (req_t *)ctx;
  int err, i;
  lookup_t *lk = req_take(r, &err);
  (void)status;
  lua_settop(L, r->top);
  if (lk && err == 0 && lk->naddrs == 0) err = UV_EAI_NONAME;
  if (err) {
    if (lk) lookup_free(lk);
    return ns_fail(L, err);
  }
  lua_createtable(L, lk->naddrs, 0);
  for (i = 0; i < lk->naddrs; i++) {
    lua_createtable(L, 0, 3);
    ns_addr_push(L, (struct sockaddr *)&lk->addrs[i].ss);
    lua_setfield(L, -4, "family");
    lua_pop(L, 1);                         /* port */
    lua_setfield(L, -2, "addr");
    lua_pushinteger(L, lk->ttls[i]);
    lua_setfield(L, -2, "ttl");
    lua_rawseti(L, -2, i + 1);
  }
  lookup_free(lk);
  return 1;
}

static int push_addr_list(lua_State *L, const ns_addr_t *a, int n) {
  int i;
  lua_createtable(L, n, 0);
  for (i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    ns_addr_push(L, (const struct sockaddr *)&a[i].ss);
    lua_setfield(L, -4, "family");
    lua_pop(L, 1);
    lua_setfield(L, -2, "addr");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int lib_getaddrinfo(lua_State *L) {
  const char *host = ns_checkcstring(L, 1, NULL);
  int family = family_arg(L, 2), n, err;
  ns_addr_t a[2];
  req_t *r;
  lua_settop(L, 2);
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  n = numeric(host, 0, family, 0, a);
  if (n < 0) return ns_fail(L, n);
  if (n > 0) return push_addr_list(L, a, n);
  if ((r = req_new(L, &err)) == NULL) return ns_fail(L, err);
  start_addrinfo(L, r, host, family, 0);
  return req_wait(L, r, -1, getaddrinfo_k);
}

/* toip(name) -> ip, resolved | nil, err: an IPv4 address when there is
** one (LuaSocket's toip is IPv4), else the first. */
static int toip_k(lua_State *L, int status, lua_KContext ctx) {
  req_t *r = (req_t *)ctx;
  int err, i, pick = 0;
  lookup_t *lk = req_take(r, &err);
  (void)status;
  lua_settop(L, r->top);
  if (lk && err == 0 && lk->naddrs == 0) err = UV_EAI_NONAME;
  if (err) {
    if (lk) lookup_free(lk);
    return ns_fail(L, err);
  }
  for (i = lk->naddrs - 1; i >= 0; i--)
    if (lk->addrs[i].ss.ss_family == AF_INET) pick = i;
  push_ip(L, &lk->addrs[pick]);
  push_resolved(L, lk->name ? lk->name : lua_tostring(L, 1), lk, lk->addrs,
                lk->naddrs);
  lookup_free(lk);
  return 2;
}

static int lib_toip(lua_State *L) {
  const char *host = ns_checkcstring(L, 1, NULL);
  ns_addr_t a[2];
  int n, err;
  req_t *r;
  lua_settop(L, 1);
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  n = numeric(host, 0, AF_UNSPEC, 0, a);
  if (n < 0) return ns_fail(L, n);
  if (n > 0) {
    push_ip(L, &a[0]);
    push_resolved(L, host, NULL, a, n);
    return 2;
  }
  if ((r = req_new(L, &err)) == NULL) return ns_fail(L, err);
  start_addrinfo(L, r, host, AF_UNSPEC, ARES_AI_CANONNAME);
  return req_wait(L, r, -1, toip_k);
}

/* tohostname(addr) -> name, resolved | nil, err. An address is looked up
** in reverse (hosts file, then PTR); a name gives its canonical name. */
static int tohostname_k(lua_State *L, int status, lua_KContext ctx) {
  req_t *r = (req_t *)ctx;
  int err;
  lookup_t *lk = req_take(r, &err);
  const char *name;
  (void)status;
  lua_settop(L, r->top);
  if (lk && err == 0 && lk->name == NULL && lk->naddrs == 0)
    err = UV_EAI_NONAME;
  if (err) {
    if (lk) lookup_free(lk);
    return ns_fail(L, err);
  }
  name = lk->name ? lk->name : lua_tostring(L, 1);
  lua_pushstring(L, name);
  if (lk->naddrs) {
    push_resolved(L, name, lk, lk->addrs, lk->naddrs);
  } else {
    ns_addr_t a[2];
    int n = numeric(lua_tostring(L, 1), 0, AF_UNSPEC, 0, a);
    push_resolved(L, name, lk, a, n > 0 ? 1 : 0);
  }
  lookup_free(lk);
  return 2;
}

static int lib_tohostname(lua_State *L) {
  const char *host = ns_checkcstring(L, 1, NULL);
  ns_addr_t a[2];
  int n, err;
  req_t *r;
  lua_settop(L, 1);
  if (host == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  if (strcmp(host, "localhost") == 0) {
    n = numeric(host, 0, AF_UNSPEC, 0, a);
    lua_pushstring(L, host);
    push_resolved(L, host, NULL, a, n);
    return 2;
  }
  n = numeric(host, 0, AF_UNSPEC, 0, a);
  if (n < 0) return ns_fail(L, n);
  if ((r = req_new(L, &err)) == NULL) return ns_fail(L, err);
  if (n > 0) {
    const void *ip;
    int len;
    if (a[0].ss.ss_family == AF_INET) {
      ip = &((struct sockaddr_in *)&a[0].ss)->sin_addr;
      len = 4;
    } else {
      ip = &((struct sockaddr_in6 *)&a[0].ss)->sin6_addr;
      len = 16;
    }
    ares_gethostbyaddr(channel, ip, len, a[0].ss.ss_family, hostent_cb,
                       r->lk);
  } else {
    start_addrinfo(L, r, host, AF_UNSPEC, ARES_AI_CANONNAME);
  }
  return req_wait(L, r, -1, tohostname_k);
}

/* nameinfo(ip [, port]) -> name, service | nil, err (one address; the
** LuaSocket-shaped getnameinfo(host, port) is lua/socket/dns.lua's). */
static int nameinfo_k(lua_State *L, int status, lua_KContext ctx) {
  req_t *r = (req_t *)ctx;
  int err;
  lookup_t *lk = req_take(r, &err);
  (void)status;
  lua_settop(L, r->top);
  if (err) {
    if (lk) lookup_free(lk);
    return ns_fail(L, err);
  }
  if (lk->name) lua_pushstring(L, lk->name);
  else lua_pushnil(L);
  if (lk->service) lua_pushstring(L, lk->service);
  else lua_pushnil(L);
  lookup_free(lk);
  return 2;
}

static int lib_nameinfo(lua_State *L) {
  const char *ip = lua_isnoneornil(L, 1) ? NULL
                   : ns_checkcstring(L, 1, "address");
  int port = (int)luaL_optinteger(L, 2, -1), flags = 0, n, err;
  ns_addr_t a[2];
  req_t *r;
  lua_settop(L, 2);
  if (ip) {
    n = numeric(ip, port < 0 ? 0 : port, AF_UNSPEC, 0, a);
    if (n <= 0) return luaL_argerror(L, 1, "numeric address expected");
    flags |= ARES_NI_LOOKUPHOST | ARES_NI_NAMEREQD;
  } else {
    numeric("0.0.0.0", port < 0 ? 0 : port, AF_UNSPEC, 0, a);
  }
  if (port >= 0) flags |= ARES_NI_LOOKUPSERVICE;
  if (flags == 0) return luaL_error(L, "address or port expected");
  if ((r = req_new(L, &err)) == NULL) return ns_fail(L, err);
  ares_getnameinfo(channel, (struct sockaddr *)&a[0].ss, a[0].len, flags,
                   nameinfo_cb, r->lk);
  return req_wait(L, r, -1, nameinfo_k);
}

static int lib_gethostname(lua_State *L) {
  char name[256];
  size_t n = sizeof name;
  int rc = uv_os_gethostname(name, &n);
  if (rc) return ns_fail(L, rc);
  lua_pushstring(L, name);
  return 1;
}

/* ---- query(name, type): records with TTLs, parsed here ---- */

static const struct { const char *name; int type; } rrtypes[] = {
  {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"MX", 15},
  {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}, {NULL, 0}
};

static const char *rrtype_name(int type) {
  int i;
  for (i = 0; rrtypes[i].name; i++)
    if (rrtypes[i].type == type) return rrtypes[i].name;
  return NULL;
}

#define GET16(p) ((unsigned)((p)[0] << 8 | (p)[1]))
#define GET32(p) ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | \
                  (uint32_t)(p)[2] << 8 | (uint32_t)(p)[3])

/* Expands the (compressed) name at p into the table on top as field k;
** returns the encoded length, or -1 on a malformed message. */
static long field_name(lua_State *L, const unsigned char *p,
                       const unsigned char *abuf, int alen, const char *k) {
  char *s = NULL;
  long len = 0;
  if (ares_expand_name(p, abuf, alen, &s, &len) != ARES_SUCCESS) return -1;
  if (k) {
    lua_pushstring(L, s);
    lua_setfield(L, -2, k);
  }
  ares_free_string(s);
  return len;
}

/* Pushes one record table for the RR whose rdata is [rd, rd + rdlen).
** Returns 0, or -1 when the rdata is malformed (nothing pushed). */
static int push_rdata(lua_State *L, int type, const unsigned char *rd,
                      unsigned rdlen, const unsigned char *abuf, int alen) {
  char ip[INET6_ADDRSTRLEN];
  int top = lua_gettop(L);
  lua_createtable(L, 0, 6);
  switch (type) {
    case 1: case 28:
      if (rdlen != (type == 1 ? 4u : 16u)) goto bad;
      uv_inet_ntop(type == 1 ? AF_INET : AF_INET6, rd, ip, sizeof ip);
      lua_pushstring(L, ip);
      lua_setfield(L, -2, "address");
      break;
    case 2: case 5: case 12:
      if (field_name(L, rd, abuf, alen, "target") < 0) goto bad;
      break;
    case 15:
      if (rdlen < 3) goto bad;
      lua_pushinteger(L, GET16(rd));
      lua_setfield(L, -2, "preference");
      if (field_name(L, rd + 2, abuf, alen, "exchange") < 0) goto bad;
      break;
    case 33:
      if (rdlen < 7) goto bad;
      lua_pushinteger(L, GET16(rd));
      lua_setfield(L, -2, "priority");
      lua_pushinteger(L, GET16(rd + 2));
      lua_setfield(L, -2, "weight");
      lua_pushinteger(L, GET16(rd + 4));
      lua_setfield(L, -2, "port");
      if (field_name(L, rd + 6, abuf, alen, "target") < 0) goto bad;
      break;
    case 16: {
      /* one or more <len><bytes> strings; "text" is their concatenation */
      luaL_Buffer b;
      unsigned i;
      int n = 0;
      for (i = 0; i < rdlen; i += 1u + rd[i])
        if (i + 1u + rd[i] > rdlen) goto bad;
      lua_newtable(L);
      for (i = 0; i < rdlen; i += 1u + rd[i]) {
        lua_pushlstring(L, (const char *)rd + i + 1, rd[i]);
        lua_rawseti(L, -2, ++n);
      }
      lua_setfield(L, -2, "strings");
      luaL_buffinit(L, &b);
      for (i = 0; i < rdlen; i += 1u + rd[i])
        luaL_addlstring(&b, (const char *)rd + i + 1, rd[i]);
      luaL_pushresult(&b);
      lua_setfield(L, -2, "text");
      break;
    }
    case 6:
    default:
      lua_pushlstring(L, (const char *)rd, rdlen);
      lua_setfield(L, -2, "data");
      break;
  }
  return 0;
bad:
  lua_settop(L, top);
  return -1;
}

/* Pushes the list of answer records of type qtype; < 0 if malformed. */
static int parse_answer(lua_State *L, const unsigned char *abuf, int alen,
                        int qtype) {
  const unsigned char *p = abuf, *end = abuf + alen;
  unsigned qd, an, i;
  int n = 0;
  if (alen < 12) return -1;
  qd = GET16(abuf + 4);
  an = GET16(abuf + 6);
  p += 12;
  for (i = 0; i < qd; i++) {
    long len = field_name(L, p, abuf, alen, NULL);
    if (len < 0 || p + len + 4 > end) return -1;
    p += len + 4;
  }
  lua_createtable(L, (int)an, 0);
  for (i = 0; i < an; i++) {
    unsigned type, rdlen;
    uint32_t ttl;
    char *owner = NULL;
    long len;
    if (ares_expand_name(p, abuf, alen, &owner, &len) != ARES_SUCCESS)
      return -1;
    if (p + len + 10 > end) {
      ares_free_string(owner);
      return -1;
    }
    p += len;
    type = GET16(p);
    ttl = GET32(p + 4);
    rdlen = GET16(p + 8);
    p += 10;
    if (p + rdlen > end) {
      ares_free_string(owner);
      return -1;
    }
    if ((int)type == qtype) {
      if (push_rdata(L, (int)type, p, rdlen, abuf, alen) == 0) {
        lua_pushstring(L, owner);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, rrtype_name((int)type));
        lua_setfield(L, -2, "type");
        lua_pushinteger(L, (lua_Integer)(ttl & 0x7fffffffu));
        lua_setfield(L, -2, "ttl");
        lua_rawseti(L, -2, ++n);
      }
    }
    ares_free_string(owner);
    p += rdlen;
  }
  return 0;
}

static int query_k(lua_State *L, int status, lua_KContext ctx) {
  req_t *r = (req_t *)ctx;
  int err, qtype = r->qtype;
  lookup_t *lk = req_take(r, &err);
  (void)status;
  lua_settop(L, r->top);
  if (lk && lk->status == ARES_ENODATA) {
    /* the name exists but has no record of this type: no records */
    lookup_free(lk);
    lua_newtable(L);
    return 1;
  }
  if (err) {
    if (lk) lookup_free(lk);
    return ns_fail(L, err);
  }
  if (lk->abuf == NULL || parse_answer(L, lk->abuf, lk->alen, qtype) < 0) {
    lookup_free(lk);
    return ns_fail(L, NS_EBADANSWER);
  }
  lookup_free(lk);
  return 1;
}

/* query(name, type [, timeout]) -> {{name=, type=, ttl=, ...}...} | nil,
** err. Types: A AAAA (address), MX (preference, exchange), TXT (text,
** strings), SRV (priority, weight, port, target), CNAME NS PTR (target). */
static int lib_query(lua_State *L) {
  const char *name = ns_checkcstring(L, 1, NULL);
  const char *tname = luaL_checkstring(L, 2);
  double timeout = luaL_optnumber(L, 3, -1);
  int i, type = 0, err;
  req_t *r;
  for (i = 0; rrtypes[i].name; i++)
    if (strcmp(rrtypes[i].name, tname) == 0) type = rrtypes[i].type;
  if (type == 0) return luaL_argerror(L, 2, "unknown record type");
  lua_settop(L, 3);
  if (name == NULL) return ns_fail(L, UV_EINVAL);   /* a NUL inside */
  if ((r = req_new(L, &err)) == NULL) return ns_fail(L, err);
  r->qtype = type;
  ares_query(channel, name, 1 /* IN */, type, query_cb, r->lk);
  return req_wait(L, r, timeout, query_k);
}

/* setservers{"ip[:port]", ...} or setservers("ip:port,ip:port") -> true */
static int lib_setservers(lua_State *L) {
  luaL_Buffer b;
  int err, rc;
  if ((err = channel_get(L)) != 0) return ns_fail(L, err);
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_Integer i, n = luaL_len(L, 1);
    luaL_buffinit(L, &b);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, 1, i);
      if (!lua_isstring(L, -1))
        return luaL_argerror(L, 1, "list of \"ip[:port]\" strings expected");
      if (i > 1) luaL_addchar(&b, ',');
      luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
  } else {
    luaL_checkstring(L, 1);
    lua_pushvalue(L, 1);
  }
  if (ns_checkcstring(L, -1, NULL) == NULL)
    return luaL_argerror(L, 1, "servers must not contain a NUL byte");
  rc = ares_set_servers_ports_csv(channel, lua_tostring(L, -1));
  if (rc == ARES_ENOTIMP) {
    /* c-ares cannot change servers under lookups in flight (often only
    ** those of cancelled tasks, still retrying): end them, as a lookup
    ** whose server went away ("temporary failure"), then change */
    servers_changing = 1;
    ares_cancel(channel);
    servers_changing = 0;
    rc = ares_set_servers_ports_csv(channel, lua_tostring(L, -1));
  }
  if (rc != ARES_SUCCESS) return ns_fail_str(L, ares_strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg lib[] = {
  {"getaddrinfo", lib_getaddrinfo},
  {"toip", lib_toip},
  {"tohostname", lib_tohostname},
  {"nameinfo", lib_nameinfo},
  {"gethostname", lib_gethostname},
  {"query", lib_query},
  {"setservers", lib_setservers},
  {NULL, NULL}
};

int luaopen_socket_dns_core(lua_State *L) {
  luaL_newlib(L, lib);
  lua_pushnumber(L, NS_DNS_TIMEOUT);
  lua_setfield(L, -2, "TIMEOUT");
  return 1;
}
