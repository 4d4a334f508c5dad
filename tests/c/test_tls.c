/*
** test_tls.c -- the TLS engine (src/tls.c) alone: a client and a server
** engine shuttle their ciphertext through memory, no socket, no loop.
** Certificates come from tests/support/certs.sh, run into a temp dir.
** Proves: handshake to OK on both sides, the exact verify error strings,
** SNI/ALPN/version/cipher, the peer certificate table, client
** certificates, close_notify as EOF, session reuse, a large transfer in
** both directions, and option errors. ASan (NETSH_SANITIZE) checks that
** engines, contexts and sessions are freed.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lualib.h>
#include "tls.h"

int luaopen_tls_core(lua_State *L);

static lua_State *L;
static const ns_tls_ops_t *ops;
static char dir[256];
static int failures, checks;

#define CHECK(cond) do { checks++; if (!(cond)) { failures++; \
  fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
          #cond); } } while (0)
#define CHECK_STR(got, want) do { const char *g_ = (got); checks++; \
  if (g_ == NULL || strcmp(g_, (want)) != 0) { failures++; \
  fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
          g_ ? g_ : "(null)", (want)); } } while (0)

/* Evaluates a Lua expression (with D = the cert dir) onto the stack. */
static void eval(const char *expr) {
  char buf[1024];
  snprintf(buf, sizeof buf, "local D = %s return %s", "...", expr);
  if (luaL_loadstring(L, buf) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  lua_pushstring(L, dir);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "lua: %s\n", lua_tostring(L, -1));
    exit(2);
  }
}

static int open_cf(lua_State *l) {
  int server = (int)lua_tointeger(l, 2);
  const char *host = lua_tostring(l, 3);
  ns_tls_t *e = ops->open(l, 1, server, host);
  if (e == NULL) return 1;              /* the message */
  lua_pushlightuserdata(l, e);
  return 1;
}

/* New engine from the options expression; NULL: *err gets the message
** (a pcall error or the open failure). */
static ns_tls_t *open_engine(const char *opts, int server, const char *host,
                             char *err, size_t n) {
  ns_tls_t *e = NULL;
  int top = lua_gettop(L);
  lua_pushcfunction(L, open_cf);
  eval(opts);
  lua_pushinteger(L, server);
  if (host) lua_pushstring(L, host);
  else lua_pushnil(L);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK || !lua_islightuserdata(L, -1)) {
    if (err) snprintf(err, n, "%s", lua_tostring(L, -1));
  } else {
    e = lua_touserdata(L, -1);
  }
  lua_settop(L, top);
  return e;
}

static ns_tls_t *must_open(const char *opts, int server, const char *host) {
  char err[256];
  ns_tls_t *e = open_engine(opts, server, host, err, sizeof err);
  if (e == NULL) {
    fprintf(stderr, "open %s: %s\n", opts, err);
    exit(2);
  }
  return e;
}

/* Moves every pending output byte of a into b. */
static size_t shuttle(ns_tls_t *a, ns_tls_t *b) {
  char buf[4096];
  size_t n, total = 0;
  while ((n = ops->take(a, buf, sizeof buf)) > 0) {
    CHECK(ops->feed(b, buf, n) == NS_TLS_OK);
    total += n;
  }
  return total;
}

/* Runs both handshakes to the end; returns the client's result and sets
** *srv to the server's (NS_TLS_OK or NS_TLS_ERROR). */
static int handshake(ns_tls_t *c, ns_tls_t *s, int *srv) {
  int rc = NS_TLS_WANT_READ, rs = NS_TLS_WANT_READ, i;
  for (i = 0; i < 50; i++) {
    if (rc != NS_TLS_OK && rc != NS_TLS_ERROR) rc = ops->handshake(c);
    shuttle(c, s);
    if (rs != NS_TLS_OK && rs != NS_TLS_ERROR) rs = ops->handshake(s);
    shuttle(s, c);
    if ((rc == NS_TLS_OK || rc == NS_TLS_ERROR) &&
        (rs == NS_TLS_OK || rs == NS_TLS_ERROR)) break;
    if (rc == NS_TLS_ERROR || rs == NS_TLS_ERROR) {
      /* one side failed: the other sees its alert on the next round */
      if (i > 20) break;
    }
  }
  if (srv) *srv = rs;
  return rc;
}

/* Reads everything that has arrived into buf; returns the count, or the
** first non-WANT_READ status (EOF, ERROR) when nothing was read. */
static long drain(ns_tls_t *e, char *buf, size_t cap) {
  size_t got = 0;
  for (;;) {
    int r = ops->read(e, buf + got, cap - got);
    if (r > 0) {
      got += (size_t)r;
      if (got == cap) return (long)got;
      continue;
    }
    if (r == NS_TLS_WANT_READ || got > 0) return (long)got;
    return r;
  }
}

/* Field of the table on the stack's top, as a string (or NULL). */
static const char *field(const char *k) {
  const char *s;
  lua_getfield(L, -1, k);
  s = lua_tostring(L, -1);
  lua_pop(L, 1);            /* the table still holds the string */
  return s;
}

static const char *info(ns_tls_t *e, const char *what) {
  static char buf[128];
  ops->push_info(L, e, what);
  snprintf(buf, sizeof buf, "%s", lua_isnil(L, -1) ? "(nil)"
                                  : luaL_tolstring(L, -1, NULL));
  lua_settop(L, lua_gettop(L) - (lua_isnil(L, -1) ? 1 : 2));
  return buf;
}

static const char *CLIENT = "{cafile = D..'/ca.pem'}";

static ns_tls_t *server_with(const char *name) {
  char opts[256];
  snprintf(opts, sizeof opts, "{certfile = D..'/%s.pem', "
           "keyfile = D..'/%s.key'}", name, name);
  return must_open(opts, 1, NULL);
}

/* A client that must fail against a server: returns its error text. */
static const char *fail_text(const char *srvcert, const char *copts,
                             const char *host) {
  static char buf[256];
  ns_tls_t *s = server_with(srvcert);
  ns_tls_t *c = must_open(copts, 0, host);
  int rc = handshake(c, s, NULL);
  snprintf(buf, sizeof buf, "%s", rc == NS_TLS_ERROR ? ops->error(c)
                                                     : "(no error)");
  ops->close(c);
  ops->close(s);
  return buf;
}

static void test_good_chain(void) {
  ns_tls_t *s = must_open("{certfile = D..'/server.pem', keyfile = "
                          "D..'/server.key', alpn = {'http/1.1'}}", 1, NULL);
  ns_tls_t *c = must_open("{cafile = D..'/ca.pem', alpn = {'h2', "
                          "'http/1.1'}}", 0, "localhost");
  int rs, rc = handshake(c, s, &rs);
  char buf[64];
  CHECK(rc == NS_TLS_OK);
  CHECK(rs == NS_TLS_OK);
  CHECK(ops->done(c) && ops->done(s));
  CHECK_STR(info(c, "protocol"), "TLSv1.3");
  CHECK_STR(info(s, "protocol"), "TLSv1.3");
  CHECK_STR(info(c, "alpn"), "http/1.1");
  CHECK_STR(info(s, "alpn"), "http/1.1");
  CHECK(strncmp(info(c, "cipher"), "TLS_", 4) == 0);
  /* client -> server */
  CHECK(ops->write(c, "hello", 5) == 5);
  CHECK(ops->pending(c) > 5);
  shuttle(c, s);
  CHECK(drain(s, buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0);
  /* server -> client; the client also gets the session tickets here */
  CHECK(ops->write(s, "world!", 6) == 6);
  shuttle(s, c);
  CHECK(drain(c, buf, sizeof buf) == 6 && memcmp(buf, "world!", 6) == 0);
  CHECK(drain(c, buf, sizeof buf) == 0);        /* nothing more: WANT_READ */
  /* the server has no client certificate, the client has the server's */
  ops->push_certificate(L, s);
  CHECK(lua_isnil(L, -1));
  lua_pop(L, 1);
  ops->push_certificate(L, c);
  CHECK(lua_istable(L, -1));
  CHECK_STR(field("common_name"), "localhost");
  CHECK(strstr(field("subject"), "CN=localhost") != NULL);
  CHECK(strstr(field("issuer"), "CN=netsh test CA") != NULL);
  CHECK(field("serial") && strlen(field("serial")) > 0);
  CHECK(field("fingerprint") && strlen(field("fingerprint")) == 95);
  CHECK(field("not_before_iso") && strlen(field("not_before_iso")) == 20);
  CHECK(field("pem") && strncmp(field("pem"), "-----BEGIN CERT", 15) == 0);
  lua_getfield(L, -1, "not_after");
  lua_getfield(L, -2, "not_before");
  CHECK(lua_tointeger(L, -2) - lua_tointeger(L, -1) == 365 * 86400);
  lua_pop(L, 2);
  lua_getfield(L, -1, "verified");
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, -1, "sans");
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  lua_rawgeti(L, -3, 3);
  CHECK_STR(lua_tostring(L, -3), "DNS:localhost");
  CHECK_STR(lua_tostring(L, -2), "IP:127.0.0.1");
  CHECK_STR(lua_tostring(L, -1), "IP:::1");
  lua_pop(L, 5);
  /* close_notify reaches the peer as EOF */
  CHECK(ops->shutdown(c) == NS_TLS_OK);
  CHECK(ops->shutdown(c) == NS_TLS_OK);     /* idempotent */
  CHECK(shuttle(c, s) > 0);
  CHECK(drain(s, buf, sizeof buf) == NS_TLS_EOF);
  ops->close(c);
  ops->close(s);
}

static void test_fingerprint_matches_cli(void) {
  char cmd[512], line[256];
  FILE *p;
  ns_tls_t *s = server_with("server");
  ns_tls_t *c = must_open(CLIENT, 0, "127.0.0.1");
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  snprintf(cmd, sizeof cmd, "openssl x509 -in %s/server.pem -noout "
           "-fingerprint -sha256 -serial", dir);
  p = popen(cmd, "r");
  CHECK(p != NULL);
  ops->push_certificate(L, c);
  while (p && fgets(line, sizeof line, p)) {
    char *eq = strchr(line, '=');
    line[strcspn(line, "\n")] = '\0';
    if (eq == NULL) continue;
    if (strncmp(line, "serial", 6) == 0) CHECK_STR(field("serial"), eq + 1);
    else CHECK_STR(field("fingerprint"), eq + 1);
  }
  if (p) pclose(p);
  lua_pop(L, 1);
  ops->close(c);
  ops->close(s);
}

static void test_verify_errors(void) {
  CHECK_STR(fail_text("expired", CLIENT, "localhost"),
            "certificate verify failed: certificate has expired");
  CHECK_STR(fail_text("wrong", CLIENT, "localhost"), "hostname mismatch");
  CHECK_STR(fail_text("server", CLIENT, "127.0.0.2"), "hostname mismatch");
  CHECK_STR(fail_text("server", "{cafile = D..'/ca.pem', servername = "
                      "'other.test'}", "localhost"), "hostname mismatch");
  CHECK_STR(fail_text("self", CLIENT, "localhost"),
            "certificate verify failed: self-signed certificate");
  /* the system store does not know the test CA */
  CHECK_STR(fail_text("server", "nil", "localhost"),
            "certificate verify failed: unable to get local issuer "
            "certificate");
  CHECK_STR(fail_text("server", "{cafile = D..'/other-ca.pem'}",
                      "localhost"),
            "certificate verify failed: unable to get local issuer "
            "certificate");
  /* the names that are in the certificate pass */
  CHECK_STR(fail_text("server", CLIENT, "::1"), "(no error)");
  CHECK_STR(fail_text("server", CLIENT, "LOCALHOST"), "(no error)");
}

static void test_verify_false(void) {
  ns_tls_t *s = server_with("self");
  ns_tls_t *c = must_open("{verify = false}", 0, "localhost");
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  ops->push_certificate(L, c);
  lua_getfield(L, -1, "verified");
  CHECK(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
  lua_pop(L, 1);
  CHECK_STR(field("verify_error"),
            "certificate verify failed: self-signed certificate");
  lua_pop(L, 1);
  ops->close(c);
  ops->close(s);
  /* without any name to check, verification must be turned off */
  {
    char err[256];
    CHECK(open_engine("nil", 0, NULL, err, sizeof err) == NULL);
    CHECK(strstr(err, "no server name") != NULL);
    c = open_engine("{verify = false}", 0, NULL, err, sizeof err);
    CHECK(c != NULL);
    ops->close(c);
  }
}

static void test_client_cert(void) {
  const char *sopts = "{certfile = D..'/server.pem', keyfile = "
                      "D..'/server.key', cafile = D..'/ca.pem', "
                      "verify = true}";
  ns_tls_t *s = must_open(sopts, 1, NULL);
  ns_tls_t *c = must_open("{cafile = D..'/ca.pem', certfile = "
                          "D..'/client.pem', keyfile = D..'/client.key'}",
                          0, "localhost");
  int rs, rc = handshake(c, s, &rs);
  char buf[64];
  CHECK(rc == NS_TLS_OK && rs == NS_TLS_OK);
  ops->push_certificate(L, s);
  CHECK_STR(field("common_name"), "netsh client");
  lua_pop(L, 1);
  ops->close(c);
  ops->close(s);
  /* no client certificate: the server refuses; a TLS 1.3 client has
  ** finished its handshake by then and learns it on its first read */
  s = must_open(sopts, 1, NULL);
  c = must_open(CLIENT, 0, "localhost");
  rc = handshake(c, s, &rs);
  CHECK(rs == NS_TLS_ERROR);
  CHECK_STR(ops->error(s), "tls: peer did not return a certificate");
  if (rc == NS_TLS_OK) {
    CHECK(drain(c, buf, sizeof buf) == NS_TLS_ERROR);
  }
  CHECK_STR(ops->error(c), "tls: tlsv13 alert certificate required");
  ops->close(c);
  ops->close(s);
}

static void test_versions(void) {
  ns_tls_t *s = server_with("server");
  ns_tls_t *c = must_open("{cafile = D..'/ca.pem', max_version = "
                          "'TLSv1.2'}", 0, "localhost");
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  CHECK_STR(info(c, "protocol"), "TLSv1.2");
  CHECK(strstr(info(c, "cipher"), "ECDHE") != NULL);
  CHECK_STR(info(c, "alpn"), "(nil)");
  ops->close(c);
  ops->close(s);
  /* a server that wants 1.3 and a client capped at 1.2 do not meet */
  s = must_open("{certfile = D..'/server.pem', keyfile = D..'/server.key',"
                " min_version = 'TLSv1.3'}", 1, NULL);
  c = must_open("{cafile = D..'/ca.pem', max_version = 'TLSv1.2'}", 0,
                "localhost");
  CHECK(handshake(c, s, NULL) == NS_TLS_ERROR);
  CHECK(strncmp(ops->error(c), "tls: ", 5) == 0);
  ops->close(c);
  ops->close(s);
}

static void test_session_reuse(void) {
  ns_tls_t *s = server_with("server");
  ns_tls_t *c = must_open(CLIENT, 0, "localhost");
  char buf[16];
  int ref;
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  CHECK(ops->write(s, "x", 1) == 1);     /* carries the tickets along */
  shuttle(s, c);
  CHECK(drain(c, buf, sizeof buf) == 1);
  ops->push_info(L, c, "session");
  CHECK(lua_isuserdata(L, -1));
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ops->close(c);
  ops->close(s);
  /* the same server context is needed to accept the ticket */
  eval("require('tls.core').context{mode = 'server', certfile = "
       "D..'/server.pem', keyfile = D..'/server.key'}");
  lua_setglobal(L, "SCTX");
  eval("require('tls.core').context{cafile = D..'/ca.pem'}");
  lua_setglobal(L, "CCTX");
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_setglobal(L, "SESS");
  s = must_open("SCTX", 1, NULL);
  c = must_open("{context = CCTX}", 0, "localhost");
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  CHECK(ops->write(s, "x", 1) == 1);
  shuttle(s, c);
  CHECK(drain(c, buf, sizeof buf) == 1);
  ops->push_info(L, c, "session");
  lua_setglobal(L, "SESS");
  ops->close(c);
  ops->close(s);
  s = must_open("SCTX", 1, NULL);
  c = must_open("{context = CCTX, session = SESS}", 0, "localhost");
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  CHECK_STR(info(c, "reused"), "true");
  CHECK_STR(info(s, "reused"), "true");
  ops->close(c);
  ops->close(s);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

static void test_large_transfer(void) {
  enum { N = 3 * 1024 * 1024 + 17 };
  ns_tls_t *s = server_with("server");
  ns_tls_t *c = must_open(CLIENT, 0, "localhost");
  char *out = malloc(N), *in = malloc(N);
  size_t i, off, got;
  int dir_;
  CHECK(handshake(c, s, NULL) == NS_TLS_OK);
  for (i = 0; i < N; i++) out[i] = (char)(i * 7 + (i >> 11));
  for (dir_ = 0; dir_ < 2; dir_++) {
    ns_tls_t *a = dir_ ? s : c, *b = dir_ ? c : s;
    got = 0;
    for (off = 0; off < N; off += 65536) {
      size_t n = N - off < 65536 ? N - off : 65536;
      CHECK(ops->write(a, out + off, n) == (int)n);
      shuttle(a, b);
      for (;;) {
        int r = ops->read(b, in + got, N - got);
        if (r <= 0) break;
        got += (size_t)r;
      }
    }
    CHECK(got == N);
    CHECK(memcmp(in, out, N) == 0);
  }
  free(out);
  free(in);
  ops->close(c);
  ops->close(s);
}

static void test_option_errors(void) {
  char err[256];
  CHECK(open_engine("{cafile = D..'/nope.pem'}", 0, "localhost", err,
                    sizeof err) == NULL);
  CHECK(strstr(err, "tls: cannot load CA from") == err);
  CHECK(open_engine("{certfile = D..'/server.pem', keyfile = "
                    "D..'/client.key'}", 1, NULL, err, sizeof err) == NULL);
  CHECK_STR(err, "tls: private key does not match the certificate");
  CHECK(open_engine("{keyfile = D..'/server.key'}", 1, NULL, err,
                    sizeof err) == NULL);
  CHECK(strstr(err, "needs certfile") != NULL);
  CHECK(open_engine("{alpn = 5}", 0, "x", err, sizeof err) == NULL);
  CHECK(strstr(err, "'alpn'") != NULL);
  CHECK(open_engine("{min_version = 'SSLv3'}", 0, "x", err,
                    sizeof err) == NULL);
  CHECK(strstr(err, "unknown version") != NULL);
  CHECK(open_engine("{verify = 'yes'}", 0, "x", err, sizeof err) == NULL);
  CHECK(open_engine("{ciphers = 'NO-SUCH-CIPHER'}", 0, "x", err,
                    sizeof err) == NULL);
  CHECK(strncmp(err, "tls: ", 5) == 0);
  CHECK(open_engine("{mode = 'server'}", 0, "x", err, sizeof err) == NULL);
  /* garbage instead of a ServerHello */
  {
    ns_tls_t *c = must_open(CLIENT, 0, "localhost");
    CHECK(ops->handshake(c) == NS_TLS_WANT_WRITE);
    CHECK(ops->pending(c) > 0);
    while (ops->take(c, err, sizeof err) > 0) {}
    CHECK(ops->handshake(c) == NS_TLS_WANT_READ);
    CHECK(ops->feed(c, "HTTP/1.1 400 Bad Request\r\n\r\n", 28) == 0);
    CHECK(ops->handshake(c) == NS_TLS_ERROR);
    CHECK_STR(ops->error(c), "tls: wrong version number");
    CHECK(ops->read(c, err, sizeof err) == NS_TLS_ERROR);
    ops->close(c);
  }
}

int main(void) {
  char cmd[512];
  snprintf(dir, sizeof dir, "/tmp/netsh-test-tls-XXXXXX");
  if (mkdtemp(dir) == NULL) return 2;
  snprintf(cmd, sizeof cmd, "sh %s/tests/support/certs.sh %s >/dev/null",
           NETSH_SRC, dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "certs.sh failed\n");
    return 2;
  }
  L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "tls.core", luaopen_tls_core, 0);
  lua_pop(L, 1);
  ops = ns_tls_ops(L);
  test_good_chain();
  test_fingerprint_matches_cli();
  test_verify_errors();
  test_verify_false();
  test_client_cert();
  test_versions();
  test_session_reuse();
  test_large_transfer();
  test_option_errors();
  lua_close(L);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: cannot remove %s\n", dir);
  printf("test_tls: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
