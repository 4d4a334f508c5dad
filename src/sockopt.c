/*
** sockopt.c -- setoption/getoption for every socket kind: one option
** table (name, level, optname, value kind, which kinds take it), one
** parser, one setter and one getter working on a descriptor, and one way
** to keep options set before the socket exists (LuaSocket's options.c).
** The kinds (socket_tcp.c, socket_udp.c) own their descriptors and call
** in; nothing here knows their objects.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "netsh.h"

enum { O_BOOL, O_INT, O_LINGER, O_IF4, O_IF6, O_MEMB4, O_MEMB6, O_ERROR };

#define T NS_OPT_TCP
#define U NS_OPT_UDP

typedef struct {
  const char *name;
  int level, opt;
  unsigned char kind;        /* O_* */
  unsigned char kinds;       /* NS_OPT_*: the sockets that take it */
} optdef_t;

static const optdef_t optdefs[] = {
  {"keepalive", SOL_SOCKET, SO_KEEPALIVE, O_BOOL, T},
  {"reuseaddr", SOL_SOCKET, SO_REUSEADDR, O_BOOL, T | U},
  {"reuseport", SOL_SOCKET, SO_REUSEPORT, O_BOOL, T | U},
  {"broadcast", SOL_SOCKET, SO_BROADCAST, O_BOOL, U},
  {"dontroute", SOL_SOCKET, SO_DONTROUTE, O_BOOL, U},
  {"linger", SOL_SOCKET, SO_LINGER, O_LINGER, T},
  {"recv-buffer-size", SOL_SOCKET, SO_RCVBUF, O_INT, T | U},
  {"send-buffer-size", SOL_SOCKET, SO_SNDBUF, O_INT, T | U},
  {"error", SOL_SOCKET, SO_ERROR, O_ERROR, T | U},
  {"tcp-nodelay", IPPROTO_TCP, TCP_NODELAY, O_BOOL, T},
  {"tcp-keepidle", IPPROTO_TCP, TCP_KEEPIDLE, O_INT, T},
  {"tcp-keepcnt", IPPROTO_TCP, TCP_KEEPCNT, O_INT, T},
  {"tcp-keepintvl", IPPROTO_TCP, TCP_KEEPINTVL, O_INT, T},
  {"tcp-defer-accept", IPPROTO_TCP, TCP_DEFER_ACCEPT, O_INT, T},
  {"tcp-fastopen", IPPROTO_TCP, TCP_FASTOPEN, O_INT, T},
  {"ip-multicast-if", IPPROTO_IP, IP_MULTICAST_IF, O_IF4, U},
  {"ip-multicast-ttl", IPPROTO_IP, IP_MULTICAST_TTL, O_INT, U},
  {"ip-multicast-loop", IPPROTO_IP, IP_MULTICAST_LOOP, O_BOOL, U},
  {"ip-add-membership", IPPROTO_IP, IP_ADD_MEMBERSHIP, O_MEMB4, U},
  {"ip-drop-membership", IPPROTO_IP, IP_DROP_MEMBERSHIP, O_MEMB4, U},
  {"ipv6-v6only", IPPROTO_IPV6, IPV6_V6ONLY, O_BOOL, T | U},
  {"ipv6-unicast-hops", IPPROTO_IPV6, IPV6_UNICAST_HOPS, O_INT, U},
  {"ipv6-multicast-hops", IPPROTO_IPV6, IPV6_MULTICAST_HOPS, O_INT, U},
  {"ipv6-multicast-loop", IPPROTO_IPV6, IPV6_MULTICAST_LOOP, O_BOOL, U},
  {"ipv6-multicast-if", IPPROTO_IPV6, IPV6_MULTICAST_IF, O_IF6, U},
  {"ipv6-add-membership", IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, O_MEMB6, U},
  {"ipv6-drop-membership", IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, O_MEMB6, U},
  {NULL, 0, 0, 0, 0}
};

typedef union {
  int i;
  struct linger li;
  struct in_addr in;
  struct ip_mreq m4;
  struct ipv6_mreq m6;
} optval_t;

/* An option set before its socket existed. */
struct ns_keptopt {
  const optdef_t *o;
  optval_t v;
  socklen_t len;
};

static const optdef_t *check_opt(lua_State *L, int i, int kind) {
  const char *name = ns_checkcstring(L, i, "option name");
  const optdef_t *o;
  for (o = optdefs; o->name; o++)
    if ((o->kinds & kind) && strcmp(o->name, name) == 0) return o;
  luaL_argerror(L, i, lua_pushfstring(L, "unsupported option '%s'", name));
  return NULL;
}

/* ---- values: Lua -> C ---- */

static int bad_value(lua_State *L, int vidx, const char *what) {
  return luaL_argerror(L, vidx, lua_pushfstring(L, "%s expected, got %s",
                       what, luaL_typename(L, vidx)));
}

static void parse_ip4(lua_State *L, int vidx, const char *s,
                      struct in_addr *a) {
  if (s == NULL || strcmp(s, "*") == 0) a->s_addr = htonl(INADDR_ANY);
  else if (inet_pton(AF_INET, s, a) != 1)
    luaL_argerror(L, vidx, lua_pushfstring(L, "invalid address '%s'", s));
}

static unsigned parse_ifindex(lua_State *L, int vidx, int i) {
  if (lua_isnoneornil(L, i)) return 0;
  if (lua_type(L, i) == LUA_TNUMBER) return (unsigned)lua_tointeger(L, i);
  if (lua_type(L, i) == LUA_TSTRING) {
    const char *s = ns_checkcstring(L, i, "interface name");
    unsigned idx = if_nametoindex(s);
    if (idx == 0)
      luaL_argerror(L, vidx, lua_pushfstring(L, "no interface '%s'", s));
    return idx;
  }
  bad_value(L, vidx, "interface index or name");
  return 0;
}

static socklen_t parse_membership(lua_State *L, const optdef_t *o,
                                  int vidx, optval_t *v) {
  int top = lua_gettop(L);
  const char *m;
  if (!lua_istable(L, vidx)) bad_value(L, vidx, "table");
  lua_getfield(L, vidx, "multiaddr");
  lua_getfield(L, vidx, "interface");
  m = lua_tostring(L, top + 1);
  if (m == NULL)
    luaL_argerror(L, vidx, "'multiaddr' must be an address string");
  if (ns_checkcstring(L, top + 1, NULL) == NULL ||
      (lua_isstring(L, top + 2) && !ns_checkcstring(L, top + 2, NULL)))
    luaL_argerror(L, vidx, "addresses must not contain a NUL byte");
  if (o->kind == O_MEMB4) {
    parse_ip4(L, vidx, m, &v->m4.imr_multiaddr);
    parse_ip4(L, vidx, lua_tostring(L, top + 2), &v->m4.imr_interface);
  } else {
    if (inet_pton(AF_INET6, m, &v->m6.ipv6mr_multiaddr) != 1)
      luaL_argerror(L, vidx, lua_pushfstring(L, "invalid address '%s'", m));
    v->m6.ipv6mr_interface = parse_ifindex(L, vidx, top + 2);
  }
  lua_settop(L, top);
  return o->kind == O_MEMB4 ? sizeof v->m4 : sizeof v->m6;
}

/* Checks the Lua value at vidx for o and converts it; raises when bad.
** Booleans: a boolean or a number (0 is false); none means true. */
static socklen_t parse_value(lua_State *L, const optdef_t *o, int vidx,
                             optval_t *v) {
  memset(v, 0, sizeof *v);
  switch (o->kind) {
    case O_BOOL:
      if (lua_isnone(L, vidx)) v->i = 1;
      else if (lua_isboolean(L, vidx)) v->i = lua_toboolean(L, vidx);
      else if (lua_isnumber(L, vidx)) v->i = lua_tonumber(L, vidx) != 0;
      else bad_value(L, vidx, "boolean");
      return sizeof v->i;
    case O_INT:
      v->i = (int)luaL_checkinteger(L, vidx);
      return sizeof v->i;
    case O_LINGER:
      luaL_checktype(L, vidx, LUA_TTABLE);
      lua_getfield(L, vidx, "on");
      v->li.l_onoff = lua_toboolean(L, -1);
      lua_getfield(L, vidx, "timeout");
      v->li.l_linger = (int)luaL_optinteger(L, -1, 0);
      lua_pop(L, 2);
      return sizeof v->li;
    case O_IF4:
      parse_ip4(L, vidx, lua_isnoneornil(L, vidx) ? "*"
                : ns_checkcstring(L, vidx, "address"), &v->in);
      return sizeof v->in;
    case O_IF6:
      v->i = (int)parse_ifindex(L, vidx, vidx);
      return sizeof v->i;
    case O_MEMB4:
    case O_MEMB6:
      return parse_membership(L, o, vidx, v);
    default:
      luaL_argerror(L, vidx - 1, lua_pushfstring(L,
                    "option '%s' is read-only", o->name));
      return 0;
  }
}

/* ---- values: C -> Lua ---- */

static void push_value(lua_State *L, const optdef_t *o, const optval_t *v,
                       socklen_t len) {
  switch (o->kind) {
    case O_BOOL:         /* IP_MULTICAST_LOOP may come back as one byte */
      lua_pushboolean(L, len == 1 ? *(const unsigned char *)v != 0
                                  : v->i != 0);
      break;
    case O_INT:
    case O_IF6:
      lua_pushinteger(L, len == 1 ? *(const unsigned char *)v : v->i);
      break;
    case O_LINGER:
      lua_createtable(L, 0, 2);
      lua_pushboolean(L, v->li.l_onoff);
      lua_setfield(L, -2, "on");
      lua_pushinteger(L, v->li.l_linger);
      lua_setfield(L, -2, "timeout");
      break;
    case O_IF4: {
      char ip[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &v->in, ip, sizeof ip);
      lua_pushstring(L, ip);
      break;
    }
    default:                        /* "error": nil when there is none */
      if (v->i == 0) lua_pushnil(L);
      else lua_pushstring(L, ns_strerror(-v->i));
      break;
  }
}

/* ---- options kept for a socket not made yet ---- */

static int keep(ns_optlist_t *l, const optdef_t *o, const optval_t *v,
                socklen_t len) {
  int k;
  for (k = 0; k < l->n; k++)
    if (l->v[k].o == o) break;       /* a later value replaces it */
  if (k == l->cap) {
    int cap = l->cap ? 2 * l->cap : 4;
    struct ns_keptopt *p = realloc(l->v, (size_t)cap * sizeof *p);
    if (p == NULL) return UV_ENOMEM;
    l->v = p;
    l->cap = cap;
  }
  l->v[k].o = o;
  l->v[k].v = *v;
  l->v[k].len = len;
  if (k == l->n) l->n++;
  return 0;
}

static const struct ns_keptopt *kept(const ns_optlist_t *l,
                                     const optdef_t *o) {
  int k;
  for (k = 0; l && k < l->n; k++)
    if (l->v[k].o == o) return &l->v[k];
  return NULL;
}

int ns_optlist_apply(const ns_optlist_t *l, int fd, int family) {
  int k;
  for (k = 0; k < l->n; k++) {
    const struct ns_keptopt *e = &l->v[k];
    if (e->o->level == IPPROTO_IPV6 && family != AF_INET6) continue;
    if (setsockopt(fd, e->o->level, e->o->opt, &e->v, e->len) != 0)
      return -errno;
  }
  return 0;
}

void ns_optlist_free(ns_optlist_t *l) {
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* ---- the methods ---- */

int ns_setoption(lua_State *L, int kind, int fd, ns_optlist_t *l) {
  const optdef_t *o = check_opt(L, 2, kind);
  optval_t v;
  socklen_t len = parse_value(L, o, 3, &v);
  int rc;
  if (fd == NS_FD_CLOSED) return ns_fail(L, NS_ECLOSED);
  if (l && (rc = keep(l, o, &v, len)) != 0) return ns_fail(L, rc);
  if (fd >= 0 && setsockopt(fd, o->level, o->opt, &v, len) != 0)
    return ns_fail(L, -errno);
  lua_pushinteger(L, 1);
  return 1;
}

int ns_getoption(lua_State *L, int kind, int fd, const ns_optlist_t *l) {
  const optdef_t *o = check_opt(L, 2, kind);
  const struct ns_keptopt *e;
  optval_t v;
  socklen_t len = sizeof v;
  if (o->kind == O_MEMB4 || o->kind == O_MEMB6)
    return luaL_argerror(L, 2, lua_pushfstring(L,
                         "option '%s' is write-only", o->name));
  if (fd == NS_FD_CLOSED) return ns_fail(L, NS_ECLOSED);
  if (fd < 0) {
    if ((e = kept(l, o)) == NULL) return ns_fail(L, NS_ENOTBOUND);
    push_value(L, o, &e->v, e->len);
    return 1;
  }
  memset(&v, 0, sizeof v);
  if (getsockopt(fd, o->level, o->opt, &v, &len) != 0)
    return ns_fail(L, -errno);
  push_value(L, o, &v, len);
  return 1;
}
