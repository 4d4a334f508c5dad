/*
** addr.c -- addresses between C and Lua for every socket kind: sockaddr
** to ip, port, family (and Unix paths), numeric hosts and "ADDR%ZONE" to
** sockaddr without a lookup, Unix socket names, the port argument, and
** the one table of family names ("inet", "inet6", "unix", "unspec").
** Names that need a lookup go to dns.c (ns_resolve).
*/
#include <netdb.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <net/if.h>
#include "netsh.h"

static const struct { int family; const char *name; } families[] = {
  {AF_INET, "inet"}, {AF_INET6, "inet6"}, {AF_UNIX, "unix"},
  {AF_UNSPEC, "unspec"}
};
#define NFAMILIES (sizeof families / sizeof families[0])

const char *ns_family_name(int family) {
  size_t i;
  for (i = 0; i < NFAMILIES; i++)
    if (families[i].family == family) return families[i].name;
  return "unspec";
}

int ns_family_of(const char *name) {
  size_t i;
  if (name == NULL) return AF_UNSPEC;
  for (i = 0; i < NFAMILIES; i++)
    if (strcmp(families[i].name, name) == 0) return families[i].family;
  return -1;
}

/* Numeric IPv4/IPv6 addresses (and "ADDR%ZONE") parsed without
** getaddrinfo(AI_NUMERICHOST): sendto() in a server loop should not pay
** for it. 0 on success, -1 when host is not one of those. */
int ns_addr_numeric(const char *host, int port, int family, ns_addr_t *a) {
  memset(a, 0, sizeof *a);
  if (family != AF_INET6 &&
      uv_ip4_addr(host, port, (struct sockaddr_in *)&a->ss) == 0) {
    a->len = sizeof(struct sockaddr_in);
    return 0;
  }
  if (family != AF_INET && strchr(host, '%'))   /* uv_ip6_addr would drop */
    return ns_ip6_scoped(host, port, a) == 0 ? 0 : -1; /* unknown zones */
  if (family != AF_INET && strchr(host, ':') &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&a->ss) == 0) {
    a->len = sizeof(struct sockaddr_in6);
    return 0;
  }
  return -1;
}

/* "ADDR%ZONE": an IPv6 literal with a scope id (RFC 4007), the zone an
** interface name or number. glibc's getaddrinfo takes names only for
** link-local addresses (so "::1%lo" failed) and libuv's uv_ip6_addr
** drops an unknown name silently; this takes both forms for any address.
** 0; UV_EAI_NONAME for an unknown interface; UV_EINVAL when host is not
** of that form. */
int ns_ip6_scoped(const char *host, int port, ns_addr_t *a) {
  char ip[INET6_ADDRSTRLEN];
  const char *zone = strchr(host, '%');
  struct sockaddr_in6 *s = (struct sockaddr_in6 *)&a->ss;
  unsigned long idx;
  size_t n;
  if (zone == NULL || (n = (size_t)(zone - host)) >= sizeof ip ||
      *++zone == '\0')
    return UV_EINVAL;
  memcpy(ip, host, n);
  ip[n] = '\0';
  memset(a, 0, sizeof *a);
  if (uv_inet_pton(AF_INET6, ip, &s->sin6_addr) != 0) return UV_EINVAL;
  if (*zone >= '0' && *zone <= '9') {
    char *end;
    idx = strtoul(zone, &end, 10);
    if (*end != '\0' || idx > 0xffffffffUL) return UV_EINVAL;
  } else if ((idx = if_nametoindex(zone)) == 0) {
    return UV_EAI_NONAME;
  }
  s->sin6_family = AF_INET6;
  s->sin6_port = htons((uint16_t)port);
  s->sin6_scope_id = (uint32_t)idx;
  a->len = sizeof *s;
  return 0;
}

void ns_addr_push(lua_State *L, const struct sockaddr *sa) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
    uv_ip4_name(s, ip, sizeof ip);
    lua_pushstring(L, ip);
    lua_pushinteger(L, ntohs(s->sin_port));
    lua_pushstring(L, ns_family_name(AF_INET));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(s, ip, sizeof ip);
    lua_pushstring(L, ip);
    lua_pushinteger(L, ntohs(s->sin6_port));
    lua_pushstring(L, ns_family_name(AF_INET6));
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushliteral(L, "unknown");
  }
}

void ns_addr_push_len(lua_State *L, const struct sockaddr *sa,
                      socklen_t len) {
  const struct sockaddr_un *u = (const struct sockaddr_un *)sa;
  size_t off = offsetof(struct sockaddr_un, sun_path), n;
  if (sa->sa_family != AF_UNIX) {
    ns_addr_push(L, sa);
    return;
  }
  n = len > off ? len - off : 0;
  if (n > sizeof u->sun_path) n = sizeof u->sun_path;
  if (n > 0 && u->sun_path[0] == '\0') {       /* abstract */
    size_t m = n - 1;
    while (m > 0 && u->sun_path[m] == '\0') m--;   /* zeroed tail */
    if (m == 0 && n == sizeof u->sun_path) {
      lua_pushliteral(L, "");      /* length unknown, all zero: unnamed */
    } else {
      lua_pushliteral(L, "@");
      lua_pushlstring(L, u->sun_path + 1, m);
      lua_concat(L, 2);
    }
  } else {
    lua_pushlstring(L, u->sun_path, strnlen(u->sun_path, n));
  }
  lua_pushnil(L);
  lua_pushstring(L, ns_family_name(AF_UNIX));
}

int ns_check_port(lua_State *L, int i, const char *proto) {
  lua_Integer p;
  int isnum;
  if (lua_type(L, i) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, i, &len);
    struct servent *se;
    p = lua_tointegerx(L, i, &isnum);  /* "8080", " 80 " */
    if (isnum || lua_stringtonumber(L, s) != 0) {
      if (!isnum) lua_pop(L, 1);
    } else {
      /* /etc/services, a local file (NSS "files"): no lookup to wait for */
      se = s[0] && strlen(s) == len ? getservbyname(s, proto) : NULL;
      return se ? ntohs((uint16_t)se->s_port) : UV_EAI_SERVICE;
    }
  } else if (lua_type(L, i) == LUA_TNUMBER) {
    p = lua_tointegerx(L, i, &isnum);
  } else {
    return luaL_typeerror(L, i, "port number or service name");
  }
  luaL_argcheck(L, isnum && p >= 0 && p <= 65535, i, "invalid port");
  return (int)p;
}

int ns_unix_addr(const char *path, ns_addr_t *a) {
  struct sockaddr_un *sa = (struct sockaddr_un *)&a->ss;
  size_t n = strlen(path);
  memset(a, 0, sizeof *a);
  sa->sun_family = AF_UNIX;
  if (n == 0) return UV_EINVAL;
  if (n >= sizeof sa->sun_path) return UV_ENAMETOOLONG;
  memcpy(sa->sun_path, path, n);
  if (path[0] == '@') sa->sun_path[0] = '\0';    /* abstract: no NUL */
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                     (path[0] == '@' ? 0 : 1));
  return 0;
}

/* Pushes ip, port of a sender. IPv4 is formatted here: inet_ntop goes
** through snprintf, a tenth of a busy server's user time. */
void ns_addr_push_peer(lua_State *L, const struct sockaddr *sa) {
  if (sa->sa_family == AF_UNIX) {
    ns_addr_push_len(L, sa, sizeof(struct sockaddr_un));
    lua_pop(L, 1);                  /* path, nil */
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    const unsigned char *b = (const unsigned char *)&in->sin_addr;
    char ip[16], *q = ip;
    int i;
    for (i = 0; i < 4; i++) {
      unsigned v = b[i];
      if (i) *q++ = '.';
      if (v >= 100) *q++ = (char)('0' + v / 100);
      if (v >= 10) *q++ = (char)('0' + v / 10 % 10);
      *q++ = (char)('0' + v % 10);
    }
    lua_pushlstring(L, ip, (size_t)(q - ip));
    lua_pushinteger(L, ntohs(in->sin_port));
  } else {
    ns_addr_push(L, sa);
    lua_pop(L, 1);                  /* ip, port: not the family */
  }
}
