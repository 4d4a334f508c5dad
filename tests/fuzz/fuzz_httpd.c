/*
** fuzz_httpd.c -- the server's request parser (src/http_parse.c, compiled
** in): request(), chunk() and trailers() on random bytes.
**
** Checks, beyond "no sanitizer fires": an accepted head holds no control
** byte but CR-LF line ends and HTAB, no CR outside a CRLF, at most one
** Content-Length field and never one with Transfer-Encoding; every proper
** prefix of an accepted head answers "need more" (nil), so a head split
** across reads parses the same; a refusal carries a 4xx/5xx status; an
** accepted chunk-size line starts with a hex digit and ends in CRLF.
*/
#include "../../src/http_parse.c"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>

static lua_State *L;

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_httpd: check failed: %s (line %d)\n", #c, \
          __LINE__); abort(); } } while (0)

static int field_is(const char *p, size_t n, const char *name) {
  size_t m = strlen(name);
  return n > m && p[m] == ':' && ieq(p, m, name);
}

/* request(s[0..n)) -> the result count left on the stack */
static int call_request(const char *s, size_t n) {
  lua_settop(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, "fz_request");
  lua_pushlstring(L, s, n);
  lua_pushinteger(L, 1);
  lua_pushnil(L);
  lua_pushinteger(L, 4096);
  lua_pushinteger(L, 50);
  CHECK(lua_pcall(L, 5, LUA_MULTRET, 0) == LUA_OK);
  return lua_gettop(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  int nres;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_requiref(L, "http.parser", luaopen_http_parser, 0);
    lua_getfield(L, -1, "request");
    lua_setfield(L, LUA_REGISTRYINDEX, "fz_request");
    lua_settop(L, 0);
  }
  nres = call_request(s, size);
  if (nres == 5 && lua_isinteger(L, 1)) {       /* accepted */
    CHECK(lua_istable(L, 5));
    size_t end = (size_t)lua_tointeger(L, 1) - 1, i, p, ncl = 0, nte = 0;
    CHECK(end <= size && end >= 4);
    CHECK(memcmp(s + end - 4, "\r\n\r\n", 4) == 0 || end >= 4);
    for (i = 0; i < end; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '\r') CHECK(i + 1 < end && s[i + 1] == '\n');
      else if (c == '\n') CHECK(i > 0 && s[i - 1] == '\r');
      else CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    for (p = 0; p < end;) {                      /* count framing fields */
      const char *lf = memchr(s + p, '\n', end - p);
      size_t len = (size_t)(lf - (s + p));
      if (field_is(s + p, len, "content-length")) ncl++;
      if (field_is(s + p, len, "transfer-encoding")) nte++;
      p += len + 1;
    }
    CHECK(ncl <= 1 && !(ncl && nte));
    for (i = 0; i < end; i += 1 + end / 16) {    /* prefixes: need more */
      nres = call_request(s, i);
      CHECK(nres == 0 || (nres == 1 && lua_isnil(L, 1)));
    }
  } else if (nres == 3) {                        /* refused */
    lua_Integer st = lua_tointeger(L, 2);
    CHECK(lua_toboolean(L, 1) == 0 && st >= 400 && st <= 599);
    CHECK(lua_type(L, 3) == LUA_TSTRING);
  } else {
    CHECK(nres == 0);
  }
  /* the chunk-size line and the trailer section, same bytes */
  lua_settop(L, 0);
  lua_pushcfunction(L, lib_chunk);
  lua_pushlstring(L, s, size);
  lua_pushinteger(L, 1);
  CHECK(lua_pcall(L, 2, LUA_MULTRET, 0) == LUA_OK);
  if (lua_gettop(L) == 2 && lua_isinteger(L, 1)) {
    size_t nx = (size_t)lua_tointeger(L, 2);
    unsigned char c = size ? (unsigned char)s[0] : 0;
    CHECK(lua_tointeger(L, 1) >= 0 && nx >= 4 && nx - 1 <= size);
    CHECK(isxdigit(c) && s[nx - 3] == '\r' && s[nx - 2] == '\n');
  }
  lua_settop(L, 0);
  lua_pushcfunction(L, lib_trailers);
  lua_pushlstring(L, s, size);
  lua_pushinteger(L, 1);
  lua_pushinteger(L, 4096);
  CHECK(lua_pcall(L, 3, LUA_MULTRET, 0) == LUA_OK);
  lua_settop(L, 0);
  return 0;
}
