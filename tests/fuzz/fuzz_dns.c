/*
** fuzz_dns.c -- parse_answer of dns.c, which turns a DNS answer into the
** records dns.query returns, on random messages (names compressed or not,
** any counts, any rdata). dns.c is compiled in (#include).
**
** Input: [qtype selector] then the message. Checks: parse_answer either
** fails (< 0) or leaves exactly one table of records on the stack, each
** with a string name, the type's name and a ttl in 0..2^31-1; A and AAAA
** records carry an address that inet_pton reads back.
*/
#include "../../src/dns.c"
#include <stdint.h>

static lua_State *L;

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_dns: check failed: %s (line %d)\n", #c, __LINE__); \
  abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int types[] = {1, 28, 15, 16, 33, 5, 2, 12, 6, 99};
  int qtype, top, r;
  unsigned char *msg;
  if (size < 1) return 0;
  if (L == NULL) L = luaL_newstate();
  qtype = types[data[0] % 10];
  /* a copy of its own size: reads past the message are caught */
  msg = malloc(size - 1 ? size - 1 : 1);
  memcpy(msg, data + 1, size - 1);
  top = lua_gettop(L);
  r = parse_answer(L, msg, (int)(size - 1), qtype);
  if (r == 0) {
    lua_Integer i, n;
    CHECK(lua_gettop(L) == top + 1 && lua_istable(L, -1));
    n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      lua_Integer ttl;
      CHECK(lua_rawgeti(L, -1, i) == LUA_TTABLE);
      CHECK(lua_getfield(L, -1, "name") == LUA_TSTRING);
      CHECK(lua_getfield(L, -2, "type") == LUA_TSTRING);
      CHECK(strcmp(lua_tostring(L, -1), rrtype_name(qtype)) == 0);
      CHECK(lua_getfield(L, -3, "ttl") == LUA_TNUMBER);
      ttl = lua_tointeger(L, -1);
      CHECK(ttl >= 0 && ttl <= 0x7fffffff);
      if (qtype == 1 || qtype == 28) {
        unsigned char buf[16];
        CHECK(lua_getfield(L, -4, "address") == LUA_TSTRING);
        CHECK(inet_pton(qtype == 1 ? AF_INET : AF_INET6,
                        lua_tostring(L, -1), buf) == 1);
        lua_pop(L, 1);
      }
      lua_pop(L, 4);
    }
  }
  lua_settop(L, top);
  free(msg);
  return 0;
}
