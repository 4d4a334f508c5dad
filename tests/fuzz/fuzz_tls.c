/*
** fuzz_tls.c -- push_x509 of tls.c, the table getpeercertificate() and
** tls.certificate() return (subject, issuer, common_name, serial, sans,
** validity, fingerprint, pem), on random DER that OpenSSL accepts as a
** certificate. tls.c is compiled in (#include).
**
** Checks: one table pushed with a string subject, issuer and pem; sans a
** list of strings; the pem reads back to a certificate with the same
** fingerprint; no sanitizer fires.
*/
#include "../../src/tls.c"
#include <stdint.h>

static lua_State *L;

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_tls: check failed: %s (line %d)\n", #c, __LINE__); \
  abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const unsigned char *p = data;
  X509 *c;
  int top;
  if (L == NULL) L = luaL_newstate();
  c = d2i_X509(NULL, &p, (long)size);
  ERR_clear_error();
  if (c == NULL) return 0;
  top = lua_gettop(L);
  push_x509(L, c);
  CHECK(lua_gettop(L) == top + 1 && lua_istable(L, -1));
  CHECK(lua_getfield(L, -1, "subject") == LUA_TSTRING);
  CHECK(lua_getfield(L, -2, "issuer") == LUA_TSTRING);
  CHECK(lua_getfield(L, -3, "sans") == LUA_TTABLE);
  {
    lua_Integer i, n = (lua_Integer)lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      CHECK(lua_rawgeti(L, -1, i) == LUA_TSTRING);
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 3);
  if (lua_getfield(L, -1, "pem") == LUA_TSTRING) {
    size_t n;
    const char *pem = lua_tolstring(L, -1, &n);
    BIO *b = BIO_new_mem_buf(pem, (int)n);
    X509 *back = PEM_read_bio_X509(b, NULL, NULL, NULL);
    CHECK(back != NULL);
    push_x509(L, back);
    lua_getfield(L, -1, "fingerprint");
    lua_getfield(L, -4, "fingerprint");
    CHECK(lua_rawequal(L, -1, -2));
    X509_free(back);
    BIO_free(b);
  }
  ERR_clear_error();
  lua_settop(L, top);
  X509_free(c);
  return 0;
}
