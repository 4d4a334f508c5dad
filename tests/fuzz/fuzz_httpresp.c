/*
** fuzz_httpresp.c -- the HTTP client's response-head parser
** (src/http_parse.c's response(), compiled in; lua/http/fast.lua runs it
** on the bytes a connection received) on random bytes.
**
** Checks, beyond "no sanitizer fires": an accepted head ends in an empty
** line within the input, starts with "HTTP/1.0 " or "HTTP/1.1 ", has a
** status of three digits from 100 and holds no control byte but CR
** before LF and HTAB; Content-Length is -1 or >= 0, never with
** Transfer-Encoding; the field lines returned are the input's bytes;
** every proper prefix of an accepted head answers "need more" (nil), so a
** head split across reads parses the same; a refusal says "bad response:
** ...".
*/
#define _GNU_SOURCE      /* memmem */
#include "../../src/http_parse.c"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static lua_State *L;

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_httpresp: check failed: %s (line %d)\n", #c, \
          __LINE__); abort(); } } while (0)

/* response(s[0..n)) -> the result count left on the stack */
static int call_response(const char *s, size_t n) {
  lua_settop(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, "fz_response");
  lua_pushlstring(L, s, n);
  lua_pushinteger(L, 1);
  CHECK(lua_pcall(L, 2, LUA_MULTRET, 0) == LUA_OK);
  return lua_gettop(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  int nres;
  if (L == NULL) {
    L = luaL_newstate();
    luaL_requiref(L, "http.parser", luaopen_http_parser, 0);
    lua_getfield(L, -1, "response");
    lua_setfield(L, LUA_REGISTRYINDEX, "fz_response");
    lua_settop(L, 0);
  }
  nres = call_response(s, size);
  if (nres == 10 && lua_isinteger(L, 1)) {      /* accepted */
    size_t end = (size_t)lua_tointeger(L, 1) - 1, i, hlen, cut;
    lua_Integer status = lua_tointeger(L, 2), minor = lua_tointeger(L, 3);
    lua_Integer clen = lua_tointeger(L, 6), flags = lua_tointeger(L, 7);
    const char *head = lua_tolstring(L, 5, &hlen);
    CHECK(end <= size && end >= 14);
    CHECK(s[end - 1] == '\n');
    CHECK(memcmp(s, "HTTP/1.", 7) == 0 && s[8] == ' ');
    CHECK(minor == 0 || minor == 1);
    CHECK(status >= 100 && status <= 999);
    CHECK(clen >= -1);
    CHECK(!(clen >= 0 && (flags & RF_TE)));
    CHECK(head != NULL && hlen <= end);
    CHECK(hlen == 0 || memmem(s, end, head, hlen) != NULL);
    for (i = 0; i < end; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '\r') CHECK(i + 1 < end && s[i + 1] == '\n');
      else CHECK(c >= 0x20 || c == '\t' || c == '\n');
      CHECK(c != 0x7f);
    }
    /* a few proper prefixes: need more */
    for (cut = 1; cut < end; cut += 1 + end / 8) {
      CHECK(call_response(s, cut) == 0);
    }
    CHECK(call_response(s, end - 1) == 0);
  } else if (nres == 2) {                       /* refused */
    CHECK(lua_isboolean(L, 1) && !lua_toboolean(L, 1));
    CHECK(strncmp(lua_tostring(L, 2), "bad response: ", 14) == 0);
  } else {
    CHECK(nres == 0);                           /* need more */
  }
  return 0;
}
