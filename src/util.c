/*
** util.c -- the error table (LuaSocket's pierror.h idea: every error
** string Lua sees, for libuv's codes and netsh's NS_E* ones), socket
** timeouts (ns_timeout_t, LuaSocket's timeout.c) and the byte buffer.
** Error codes below the Lua edge are 0 or a negative UV_E* or NS_E*; only
** bindings turn them into strings, through ns_strerror(). The strings are
** API: specs pin them.
*/
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include "netsh.h"

const char *ns_strerror(int code) {
  switch (code) {
    case UV_ETIMEDOUT: return "timeout";
    case NS_EDEADLINE: return "timeout";
    case NS_EINTR: return "interrupted";
    case NS_EBUSY: return "busy";
    case NS_ENOTBOUND: return "not bound";
    case NS_ENOTCONN: return "not connected";
    case NS_ENOPATH: return "bind a path first";
    case NS_ETLSSTARTED: return "tls already started";
    case NS_ENOTTLS: return "not a tls socket";
    case NS_ETLS: return "tls: connection failed";
    case NS_EHANDSHAKE: return "handshake timeout";
    case NS_EBADANSWER: return "malformed dns answer";
    case NS_ENOPEM: return "tls: no PEM certificate";
    case NS_ETOOBIG: return "body too large";
    case NS_EBOMB:
    case NS_ERATIO: return "bad response: decompressed body too large";
    case NS_EBADRESPONSE: return "bad response";
    case NS_EREDIRECTS: return "too many redirects";
    case UV_EOF:
    case UV_ECONNRESET:
    case UV_ECONNABORTED:
    case UV_EPIPE:
    case UV_ECANCELED:
    case UV_ENOTCONN: return "closed";
    case UV_ECONNREFUSED: return "connection refused";
    case UV_EADDRINUSE: return "address already in use";
    case UV_EADDRNOTAVAIL: return "address not available";
    case UV_EAI_NONAME: return "host not found";
    case UV_EAI_AGAIN: return "temporary failure in name resolution";
    case UV_EAI_FAIL: return "non-recoverable failure in name resolution";
    case UV_EAI_SERVICE: return "service not supported for socket type";
    case UV_EISCONN: return "already connected";
    case UV_EACCES:
    case UV_EPERM: return "permission denied";
    case UV_ENETUNREACH: return "network unreachable";
    case UV_EHOSTUNREACH: return "host unreachable";
    case UV_EMSGSIZE: return "message too long";
    case UV_ENOMEM: return "not enough memory";
    case UV_EMFILE: return "too many open files";
    default: {
      /* libuv's messages are capitalised sentences; LuaSocket's are not */
      static char buf[128];
      const char *s = uv_strerror(code);
      size_t i;
      for (i = 0; i < sizeof buf - 1 && s[i]; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
      buf[i] = '\0';
      return buf;
    }
  }
}

int ns_fail(lua_State *L, int code) {
  lua_pushnil(L);
  lua_pushstring(L, ns_strerror(code));
  return 2;
}

int ns_fail_str(lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

const char *ns_checkcstring(lua_State *L, int idx, const char *what) {
  size_t len;
  const char *s = luaL_checklstring(L, idx, &len);
  if (strlen(s) == len) return s;
  if (what == NULL) return NULL;
  luaL_argerror(L, idx, lua_pushfstring(L, "%s must not contain a NUL byte",
                                        what));
  return NULL;
}

/* ---- timeouts ---- */

void ns_timeout_init(ns_timeout_t *tm) {
  tm->block = tm->total = -1;
  tm->conn = tm->send = tm->read = NS_TO_UNSET;
}

double ns_timeout_left(const ns_timeout_t *tm, double start) {
  double left;
  if (tm->total < 0) return tm->block;
  left = tm->total - (ns_now() - start);
  if (left < 0) left = 0;
  if (tm->block < 0) return left;
  return tm->block < left ? tm->block : left;
}

double ns_timeout_op(const ns_timeout_t *tm, double over, double start) {
  return over != NS_TO_UNSET ? over : ns_timeout_left(tm, start);
}

/* settimeout(value [, mode]) -> 1; "b" per wait, "t"/"r" total */
int ns_settimeout(lua_State *L, ns_timeout_t *tm) {
  double v = luaL_optnumber(L, 2, -1);
  const char *mode = luaL_optstring(L, 3, "b");
  if (v < 0) v = -1;
  switch (*mode) {
    case 'b': tm->block = v; break;
    case 'r': case 't': tm->total = v; break;
    default: return luaL_argerror(L, 3, "invalid timeout mode");
  }
  tm->conn = tm->send = tm->read = NS_TO_UNSET;  /* as OpenResty's */
  lua_pushinteger(L, 1);
  return 1;
}

static double opt_timeout(lua_State *L, int i) {
  double v;
  if (lua_isnoneornil(L, i)) return NS_TO_UNSET;
  v = luaL_checknumber(L, i);
  return v < 0 ? -1 : v;
}

/* settimeouts(connect, send, read) -> 1: OpenResty's per-operation
** timeouts, in seconds like every netsh timeout (nil: settimeout's
** applies; negative: none). */
int ns_settimeouts(lua_State *L, ns_timeout_t *tm) {
  double c = opt_timeout(L, 2), s = opt_timeout(L, 3), r = opt_timeout(L, 4);
  tm->conn = c;
  tm->send = s;
  tm->read = r;
  lua_pushinteger(L, 1);
  return 1;
}

int ns_gettimeout(lua_State *L, const ns_timeout_t *tm) {
  lua_pushnumber(L, tm->block);
  lua_pushnumber(L, tm->total);
  return 2;
}

/* ---- byte buffers ---- */

int ns_buf_reserve(ns_buf_t *b, size_t extra) {
  size_t need;
  if (b->off > 0 && b->len == 0) b->off = 0;
  need = b->off + b->len + extra;
  if (need <= b->cap) return 0;
  if (b->off > 0 && b->len + extra <= b->cap) {
    /* compact instead of growing: the unread tail moves to the front */
    memmove(b->data, b->data + b->off, b->len);
    b->off = 0;
    return 0;
  }
  {
    size_t cap = b->cap ? b->cap : 256;
    char *p;
    while (cap < b->len + extra) cap *= 2;
    if (b->off > 0) {
      memmove(b->data, b->data + b->off, b->len);
      b->off = 0;
    }
    p = realloc(b->data, cap);
    if (p == NULL) return UV_ENOMEM;
    b->data = p;
    b->cap = cap;
  }
  return 0;
}

int ns_buf_append(ns_buf_t *b, const char *p, size_t n) {
  int rc = ns_buf_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->off + b->len, p, n);
  b->len += n;
  return 0;
}

void ns_buf_consume(ns_buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    b->off = 0;
    /* give back big buffers once drained: idle sockets stay small */
    if (b->cap > 65536) {
      free(b->data);
      b->data = NULL;
      b->cap = 0;
    }
    return;
  }
  b->off += n;
  b->len -= n;
}

void ns_buf_free(ns_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}
