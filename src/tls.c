/*
** tls.c -- "tls.core": OpenSSL over memory BIOs, used by socket_tcp.c
** (starttls) through the ns_tls_ops_t table declared in tls.h.
**
** Built as netsh_tls.so so that the netsh binary never links OpenSSL.
** An engine (engine_t) is one SSL plus its two memory BIOs; it never sees a
** socket: the caller feeds ciphertext in and takes ciphertext out. The
** engine is owned by C (the socket's tcp_t) and freed by ops->close; the
** SSL_CTX it was made from is reference-counted by OpenSSL, so a context
** userdata may be collected while engines made from it live on.
**
** Secure by default: clients verify the chain against the system store
** (or cafile/capath), check the host name or IP (X509_VERIFY_PARAM), send
** SNI and refuse anything below TLS 1.2. verify = false must be explicit.
** Even then the chain is still checked and its outcome kept, so scripts
** (tls_expiry.lua) can report it without failing the handshake.
*/
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include "tls.h"

#define CTX_MT "netsh.tls.context"
#define SESSION_MT "netsh.tls.session"
#define CLIENT_CTX_KEY "netsh.tls.client_ctx"   /* the shared default */

/* ---- contexts ---- */

typedef struct {
  SSL_CTX *ctx;     /* NULL once collected */
  int server;
  int verify;                 /* per-connection defaults it carries */
  double handshake_timeout;
} ctx_t;

typedef struct { SSL_SESSION *s; } session_t;

/* Everything an options table may say; strings point into the table,
** which stays on the stack while this lives. */
typedef struct {
  int mode;                          /* -1 unset, 0 client, 1 server */
  int ctx_keys;                      /* needs a context of its own */
  const char *cafile, *capath, *certfile, *keyfile;
  const char *ciphers, *ciphersuites;
  int min_version, max_version;      /* 0: default */
  unsigned char alpn[256];           /* wire format: len, bytes, ... */
  size_t alpn_len;
  ctx_t *context;                    /* opts.context or opts itself */
  /* per connection */
  const char *servername;
  int verify;                        /* -1 unset, 0, 1, 2 optional */
  double handshake_timeout;          /* < 0 unset */
  SSL_SESSION *session;
  int sni;                           /* stack index of opts with sni, 0 */
} conf_t;

/* Server-side ALPN list, freed with its SSL_CTX. */
static int alpn_index = -1;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp) {
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  free(ptr);
}

/* Server preference: the first of our protocols the client offers. No
** overlap is not fatal: the connection goes on without ALPN. */
static int alpn_select_cb(SSL *ssl, const unsigned char **out,
                          unsigned char *outlen, const unsigned char *in,
                          unsigned int inlen, void *arg) {
  const unsigned char *ours = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                                                  alpn_index);
  size_t i, j;
  (void)arg;
  if (ours == NULL) return SSL_TLSEXT_ERR_NOACK;
  for (i = 1; i < (size_t)ours[0] + 1; i += (size_t)ours[i] + 1) {
    for (j = 0; j < inlen; j += (size_t)in[j] + 1) {
      if (j + in[j] >= inlen) break;            /* malformed list */
      if (in[j] == ours[i] && memcmp(in + j + 1, ours + i + 1, in[j]) == 0) {
        *out = in + j + 1;
        *outlen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

/* Server name indication: the certificates a server picks by the name
** the client asks for (opts.sni = {["name"] = opts | context, ...};
** "*.example.org" matches one label). The list hangs on the default
** SSL_CTX and is freed with it. */
typedef struct {
  int n;
  struct { char *name; SSL_CTX *ctx; } v[1];
} sni_t;

static int sni_index = -1;

static void sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                     long argl, void *argp) {
  sni_t *l = ptr;
  int i;
  (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
  if (l == NULL) return;
  for (i = 0; i < l->n; i++) {
    free(l->v[i].name);            /* may be NULL: strdup failed */
    SSL_CTX_free(l->v[i].ctx);
  }
  free(l);
}

static int sni_match(const char *pattern, const char *name) {
  if (strcasecmp(pattern, name) == 0) return 1;
  if (pattern[0] == '*' && pattern[1] == '.') {
    const char *dot = strchr(name, '.');
    return dot && dot != name && strcasecmp(pattern + 1, dot) == 0;
  }
  return 0;
}

/* Switches the connection to the context of the name asked for; with no
** name, or an unknown one, the default certificate answers. */
static int sni_cb(SSL *ssl, int *al, void *arg) {
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  sni_t *l = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sni_index);
  int i;
  (void)al; (void)arg;
  if (name == NULL || l == NULL) return SSL_TLSEXT_ERR_OK;
  for (i = 0; i < l->n; i++)             /* exact names first */
    if (strcasecmp(l->v[i].name, name) == 0) break;
  if (i == l->n)
    for (i = 0; i < l->n; i++)
      if (l->v[i].name[0] == '*' && sni_match(l->v[i].name, name)) break;
  if (i < l->n) SSL_set_SSL_CTX(ssl, l->v[i].ctx);
  return SSL_TLSEXT_ERR_OK;
}

static int parse_version(lua_State *L, const char *key, const char *s) {
  static const struct { const char *name; int v; } vs[] = {
    {"TLSv1", TLS1_VERSION}, {"TLSv1.0", TLS1_VERSION},
    {"TLSv1.1", TLS1_1_VERSION}, {"TLSv1.2", TLS1_2_VERSION},
    {"TLSv1.3", TLS1_3_VERSION}, {NULL, 0}
  };
  int i;
  for (i = 0; vs[i].name; i++)
    if (strcasecmp(s, vs[i].name) == 0 || strcmp(s, vs[i].name + 4) == 0)
      return vs[i].v;
  return luaL_error(L, "tls option '%s': unknown version '%s' (expected "
                    "\"TLSv1.2\" or \"TLSv1.3\"...)", key, s);
}

static const char *opt_string(lua_State *L, int t, const char *key,
                              int *ctx_keys) {
  const char *s;
  lua_getfield(L, t, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (lua_type(L, -1) != LUA_TSTRING)
    luaL_error(L, "tls option '%s': string expected, got %s", key,
               luaL_typename(L, -1));
  s = ns_checkcstring(L, -1, NULL);   /* still referenced by the table */
  if (s == NULL)
    luaL_error(L, "tls option '%s': must not contain a NUL byte", key);
  lua_pop(L, 1);
  if (ctx_keys) *ctx_keys = 1;
  return s;
}

static void read_alpn(lua_State *L, int t, conf_t *c) {
  int i, n;
  lua_getfield(L, t, "alpn");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (lua_type(L, -1) == LUA_TSTRING) {      /* alpn = "h2" */
    lua_createtable(L, 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "tls option 'alpn': table of strings expected, got %s",
               luaL_typename(L, -1));
  n = (int)lua_rawlen(L, -1);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *p;
    lua_rawgeti(L, -1, i);
    p = lua_tolstring(L, -1, &len);
    if (p == NULL || len == 0 || len > 255 ||
        c->alpn_len + len + 1 > 255)       /* its length fits a byte */
      luaL_error(L, "tls option 'alpn': bad protocol name at index %d", i);
    c->alpn[c->alpn_len++] = (unsigned char)len;
    memcpy(c->alpn + c->alpn_len, p, len);
    c->alpn_len += len;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  c->ctx_keys = 1;
}

/* Reads the options at idx into c; raises on a type error. */
static void read_conf(lua_State *L, int idx, conf_t *c) {
  memset(c, 0, sizeof *c);
  c->mode = -1;
  c->verify = -1;
  c->handshake_timeout = -1;
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx) || (lua_isboolean(L, idx) &&
                                  lua_toboolean(L, idx)))
    return;                                   /* defaults */
  if ((c->context = luaL_testudata(L, idx, CTX_MT)) != NULL) return;
  if (!lua_istable(L, idx))
    luaL_error(L, "tls options: table or tls context expected, got %s",
               luaL_typename(L, idx));
  lua_getfield(L, idx, "context");
  if (!lua_isnil(L, -1)) {
    c->context = luaL_testudata(L, -1, CTX_MT);
    if (c->context == NULL)
      luaL_error(L, "tls option 'context': tls context expected");
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "mode");
  if (!lua_isnil(L, -1)) {
    const char *m = lua_tostring(L, -1);
    if (m && strcmp(m, "client") == 0) c->mode = 0;
    else if (m && strcmp(m, "server") == 0) c->mode = 1;
    else luaL_error(L, "tls option 'mode': \"client\" or \"server\" "
                       "expected");
  }
  lua_pop(L, 1);
  c->cafile = opt_string(L, idx, "cafile", &c->ctx_keys);
  c->capath = opt_string(L, idx, "capath", &c->ctx_keys);
  c->certfile = opt_string(L, idx, "certfile", &c->ctx_keys);
  c->keyfile = opt_string(L, idx, "keyfile", &c->ctx_keys);
  c->ciphers = opt_string(L, idx, "ciphers", &c->ctx_keys);
  c->ciphersuites = opt_string(L, idx, "ciphersuites", &c->ctx_keys);
  {
    const char *v = opt_string(L, idx, "min_version", &c->ctx_keys);
    if (v) c->min_version = parse_version(L, "min_version", v);
    v = opt_string(L, idx, "max_version", &c->ctx_keys);
    if (v) c->max_version = parse_version(L, "max_version", v);
  }
  read_alpn(L, idx, c);
  c->servername = opt_string(L, idx, "servername", NULL);
  lua_getfield(L, idx, "verify");
  if (lua_isboolean(L, -1)) c->verify = lua_toboolean(L, -1);
  else if (lua_type(L, -1) == LUA_TSTRING &&
           strcmp(lua_tostring(L, -1), "optional") == 0) c->verify = 2;
  else if (!lua_isnil(L, -1))
    luaL_error(L, "tls option 'verify': boolean or \"optional\" expected");
  lua_pop(L, 1);
  lua_getfield(L, idx, "handshake_timeout");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1))
      luaL_error(L, "tls option 'handshake_timeout': number expected");
    c->handshake_timeout = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "sni");
  if (!lua_isnil(L, -1)) {
    if (!lua_istable(L, -1))
      luaL_error(L, "tls option 'sni': table expected, got %s",
                 luaL_typename(L, -1));
    c->sni = idx;
    c->ctx_keys = 1;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "session");
  if (!lua_isnil(L, -1)) {
    session_t *s = luaL_testudata(L, -1, SESSION_MT);
    if (s == NULL)
      luaL_error(L, "tls option 'session': tls session expected");
    c->session = s->s;
  }
  lua_pop(L, 1);
  if (c->context && c->ctx_keys)
    luaL_error(L, "tls options: 'context' excludes cafile, certfile, "
                  "alpn... (they belong to the context)");
}

/* The reason of the newest OpenSSL error, prefixed "tls: ". */
static void ssl_reason(char *buf, size_t n, const char *fallback) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (r) snprintf(buf, n, "tls: %s", r);
  else if (e) {
    char tmp[200];
    ERR_error_string_n(e, tmp, sizeof tmp);
    snprintf(buf, n, "tls: %s", tmp);
  } else snprintf(buf, n, "tls: %s", fallback);
  ERR_clear_error();
}

/* A new SSL_CTX from c, or NULL with a message in err. Never raises. */
static SSL_CTX *ctx_build(const conf_t *c, int server, char *err, size_t n) {
  SSL_CTX *ctx;
  ERR_clear_error();
  ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == NULL) goto fail;
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  /* resumption with client certificates needs an id context */
  if (server && !SSL_CTX_set_session_id_context(ctx,
                   (const unsigned char *)"netsh", 5))
    goto fail;
  if (!SSL_CTX_set_min_proto_version(ctx, c->min_version ? c->min_version
                                                         : TLS1_2_VERSION)
      || !SSL_CTX_set_max_proto_version(ctx, c->max_version))
    goto fail;
  if (c->ciphers && !SSL_CTX_set_cipher_list(ctx, c->ciphers)) goto fail;
  if (c->ciphersuites && !SSL_CTX_set_ciphersuites(ctx, c->ciphersuites))
    goto fail;
  if (c->cafile || c->capath) {
    if (!SSL_CTX_load_verify_locations(ctx, c->cafile, c->capath)) {
      snprintf(err, n, "tls: cannot load CA from '%s'",
               c->cafile ? c->cafile : c->capath);
      ERR_clear_error();
      SSL_CTX_free(ctx);
      return NULL;
    }
  } else if (!server && !SSL_CTX_set_default_verify_paths(ctx)) {
    goto fail;
  }
  if (c->certfile) {
    const char *key = c->keyfile ? c->keyfile : c->certfile;
    if (!SSL_CTX_use_certificate_chain_file(ctx, c->certfile)) {
      snprintf(err, n, "tls: cannot load certificate from '%s'",
               c->certfile);
      ERR_clear_error();
      SSL_CTX_free(ctx);
      return NULL;
    }
    if (!SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM)) {
      unsigned long e = ERR_peek_last_error();
      if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
          ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
        snprintf(err, n, "tls: private key does not match the "
                 "certificate");
      else
        snprintf(err, n, "tls: cannot load private key from '%s'", key);
      ERR_clear_error();
      SSL_CTX_free(ctx);
      return NULL;
    }
    if (!SSL_CTX_check_private_key(ctx)) {
      snprintf(err, n, "tls: private key does not match the certificate");
      ERR_clear_error();
      SSL_CTX_free(ctx);
      return NULL;
    }
  }
  if (c->alpn_len > 0) {
    if (server) {
      unsigned char *copy = malloc(c->alpn_len + 1);
      if (copy == NULL) goto fail;
      copy[0] = (unsigned char)c->alpn_len;   /* fits: alpn[] is 256 */
      memcpy(copy + 1, c->alpn, c->alpn_len);
      SSL_CTX_set_ex_data(ctx, alpn_index, copy);
      SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    } else if (SSL_CTX_set_alpn_protos(ctx, c->alpn,
                                       (unsigned)c->alpn_len) != 0) {
      goto fail;
    }
  }
  return ctx;
fail:
  ssl_reason(err, n, "cannot create context");
  SSL_CTX_free(ctx);
  return NULL;
}

/* Checks c's sni table (raises on a bad entry, naming it); done before
** anything is allocated, so that sni_build() need not raise. */
static void sni_check(lua_State *L, const conf_t *c) {
  lua_getfield(L, c->sni, "sni");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    const char *name;
    ctx_t *u;
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "tls option 'sni': names (strings) expected as keys");
    if ((name = ns_checkcstring(L, -2, NULL)) == NULL)
      luaL_error(L, "tls option 'sni': names must not contain a NUL byte");
    if ((u = luaL_testudata(L, -1, CTX_MT)) != NULL) {
      if (u->ctx == NULL || !u->server)
        luaL_error(L, "tls option 'sni': '%s' needs a server context", name);
    } else if (lua_istable(L, -1)) {
      conf_t sc;
      read_conf(L, -1, &sc);
      if (sc.context || sc.sni)
        luaL_error(L, "tls option 'sni': '%s': options or a context", name);
      if (sc.certfile == NULL)
        luaL_error(L, "tls option 'sni': '%s' needs certfile", name);
    } else {
      luaL_error(L, "tls option 'sni': '%s': table or tls context expected",
                 name);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Builds the contexts of c's sni table (checked by sni_check) onto the
** server context ctx: each entry is a tls context, or options that fill
** in what the defaults (c) say. 0, or -1 with err set; never raises. */
static int sni_build(lua_State *L, const conf_t *c, SSL_CTX *ctx, char *err,
                     size_t n) {
  sni_t *l;
  int count = 0, rc = 0;
  if (c->sni == 0) return 0;
  lua_getfield(L, c->sni, "sni");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    count++;
    lua_pop(L, 1);
  }
  l = calloc(1, sizeof *l + (size_t)(count > 0 ? count : 1) *
             sizeof l->v[0]);
  if (l == NULL) {
    snprintf(err, n, "not enough memory");
    lua_pop(L, 1);
    return -1;
  }
  SSL_CTX_set_ex_data(ctx, sni_index, l);   /* freed with ctx from here */
  lua_pushnil(L);
  while (rc == 0 && lua_next(L, -2)) {
    const char *name = lua_tostring(L, -2);
    ctx_t *u = luaL_testudata(L, -1, CTX_MT);
    SSL_CTX *sub = NULL;
    if (u) {
      SSL_CTX_up_ref(u->ctx);
      sub = u->ctx;
    } else {
      conf_t sc;
      read_conf(L, -1, &sc);
      /* what the entry does not say, the server's options do */
      if (!sc.cafile && !sc.capath) {
        sc.cafile = c->cafile;
        sc.capath = c->capath;
      }
      if (!sc.ciphers) sc.ciphers = c->ciphers;
      if (!sc.ciphersuites) sc.ciphersuites = c->ciphersuites;
      if (!sc.min_version) sc.min_version = c->min_version;
      if (!sc.max_version) sc.max_version = c->max_version;
      if (sc.alpn_len == 0) {
        memcpy(sc.alpn, c->alpn, c->alpn_len);
        sc.alpn_len = c->alpn_len;
      }
      sub = ctx_build(&sc, 1, err, n);
    }
    if (sub != NULL) {
      l->v[l->n].ctx = sub;
      l->v[l->n].name = strdup(name);
      l->n++;
      if (l->v[l->n - 1].name == NULL) {
        snprintf(err, n, "not enough memory");
        rc = -1;
      }
    } else {
      rc = -1;
    }
    lua_pop(L, 1);
  }
  if (rc != 0) lua_pop(L, 1);               /* the key lua_next left */
  lua_pop(L, 1);
  if (rc == 0) SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
  return rc;
}

static ctx_t *ctx_push(lua_State *L, SSL_CTX *ctx, int server) {
  ctx_t *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->ctx = ctx;
  u->server = server;
  u->verify = -1;
  u->handshake_timeout = -1;
  luaL_setmetatable(L, CTX_MT);
  return u;
}

/* The shared default client context (system CA store, TLS >= 1.2),
** made on first use and kept in the registry; NULL with err on failure. */
static SSL_CTX *default_client_ctx(lua_State *L, char *err, size_t n) {
  ctx_t *u;
  lua_getfield(L, LUA_REGISTRYINDEX, CLIENT_CTX_KEY);
  u = luaL_testudata(L, -1, CTX_MT);
  lua_pop(L, 1);
  if (u == NULL) {
    conf_t c;
    SSL_CTX *ctx;
    memset(&c, 0, sizeof c);
    if ((ctx = ctx_build(&c, 0, err, n)) == NULL) return NULL;
    u = ctx_push(L, ctx, 0);
    lua_setfield(L, LUA_REGISTRYINDEX, CLIENT_CTX_KEY);
  }
  return u->ctx;
}

/* ---- engines ---- */

enum { ST_HANDSHAKE, ST_OPEN, ST_FAILED };

typedef struct {
  ns_tls_t pub;
  SSL *ssl;
  BIO *rbio, *wbio;   /* owned by ssl */
  int state;
  char err[256];
} engine_t;

static int is_ip(const char *s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Per-connection settings on a fresh SSL; 0 or -1 with e->err set. */
static int engine_setup(engine_t *e, const conf_t *c, int server,
                        const char *host) {
  SSL *ssl = e->ssl;
  if (!server) {
    const char *name = c->servername ? c->servername : host;
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int verify = c->verify != 0;
    if (name && *name) {
      /* names are checked even with verify = false: the outcome is kept
      ** for getpeercertificate().verified */
      if (is_ip(name)) {
        if (!X509_VERIFY_PARAM_set1_ip_asc(vp, name)) goto fail;
      } else {
        X509_VERIFY_PARAM_set_hostflags(vp,
          X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (!X509_VERIFY_PARAM_set1_host(vp, name, 0)) goto fail;
        if (!SSL_set_tlsext_host_name(ssl, name)) goto fail;  /* SNI */
      }
    } else if (verify) {
      snprintf(e->err, sizeof e->err, "tls: no server name to verify "
               "(give servername, or verify = false)");
      return -1;
    }
    SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (c->session && !SSL_set_session(ssl, c->session)) goto fail;
    SSL_set_connect_state(ssl);
  } else {
    if (c->verify == 1)
      SSL_set_verify(ssl, SSL_VERIFY_PEER |
                     SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else if (c->verify == 2)
      SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    else
      SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    SSL_set_accept_state(ssl);
  }
  return 0;
fail:
  ssl_reason(e->err, sizeof e->err, "bad connection settings");
  return -1;
}

static void engine_close(ns_tls_t *pub) {
  engine_t *e = (engine_t *)pub;
  if (e == NULL) return;
  /* OpenSSL voids the session of a connection freed without a shutdown;
  ** TLS >= 1.1 does not ask for that, and sessions taken from a healthy
  ** connection should stay reusable (sslhandshake(session)) */
  if (e->state == ST_OPEN)
    SSL_set_shutdown(e->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(e->ssl);           /* frees both BIOs */
  free(e);
}

static ns_tls_t *engine_open(lua_State *L, int opts, int server,
                             const char *host) {
  conf_t c;
  engine_t *e;
  SSL_CTX *ctx = NULL, *own = NULL;
  char err[256];
  read_conf(L, opts, &c);                     /* may raise: nothing held */
  if (c.mode >= 0 && c.mode != server)
    luaL_error(L, "tls options: mode '%s' on a %s socket",
               c.mode ? "server" : "client", server ? "server" : "client");
  if (c.sni && !server)
    luaL_error(L, "tls option 'sni' is for servers (a client sends its "
               "name with servername)");
  if (c.sni) sni_check(L, &c);
  if (c.context) {
    if (c.context->ctx == NULL)
      luaL_error(L, "tls context is closed");
    if (c.context->server != server)
      luaL_error(L, "tls context is for %s sockets",
                 c.context->server ? "server" : "client");
    ctx = c.context->ctx;
    if (c.verify < 0) c.verify = c.context->verify;
    if (c.handshake_timeout < 0)
      c.handshake_timeout = c.context->handshake_timeout;
  } else if (server) {
    if (c.certfile == NULL)
      luaL_error(L, "tls options: a server needs certfile (and keyfile)");
  }
  if (ctx == NULL) {
    if (!server && !c.ctx_keys) ctx = default_client_ctx(L, err, sizeof err);
    else ctx = own = ctx_build(&c, server, err, sizeof err);
    if (own && server && sni_build(L, &c, own, err, sizeof err) != 0) {
      SSL_CTX_free(own);
      ctx = own = NULL;
    }
    if (ctx == NULL) {
      lua_pushstring(L, err);
      return NULL;
    }
  }
  e = calloc(1, sizeof *e);
  if (e == NULL) {
    SSL_CTX_free(own);
    lua_pushliteral(L, "not enough memory");
    return NULL;
  }
  e->pub.server = server;
  e->pub.handshake_timeout = c.handshake_timeout;
  e->ssl = SSL_new(ctx);               /* takes its own ctx reference */
  SSL_CTX_free(own);
  e->rbio = BIO_new(BIO_s_mem());
  e->wbio = BIO_new(BIO_s_mem());
  if (e->ssl == NULL || e->rbio == NULL || e->wbio == NULL) {
    BIO_free(e->rbio);
    BIO_free(e->wbio);
    SSL_free(e->ssl);
    free(e);
    ERR_clear_error();
    lua_pushliteral(L, "not enough memory");
    return NULL;
  }
  BIO_set_mem_eof_return(e->rbio, -1);  /* empty means "retry", not EOF */
  SSL_set_bio(e->ssl, e->rbio, e->wbio);
  if (engine_setup(e, &c, server, host) != 0) {
    lua_pushstring(L, e->err);
    engine_close(&e->pub);
    return NULL;
  }
  return &e->pub;
}

/* Sets e->err from a failed SSL call; returns the engine result. */
static int fail(engine_t *e, int ret) {
  int code = SSL_get_error(e->ssl, ret);
  switch (code) {
    case SSL_ERROR_WANT_READ: return NS_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE: return NS_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: return NS_TLS_EOF;
    default: break;
  }
  {
    unsigned long ec = ERR_peek_last_error();
    long vr = SSL_get_verify_result(e->ssl);
    if (ERR_GET_LIB(ec) == ERR_LIB_SSL &&
        ERR_GET_REASON(ec) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        vr != X509_V_OK) {
      if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
          vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(e->err, sizeof e->err, "hostname mismatch");
      else
        snprintf(e->err, sizeof e->err, "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
      ERR_clear_error();
    } else if (code == SSL_ERROR_SYSCALL && ec == 0) {
      snprintf(e->err, sizeof e->err, "tls: unexpected end of stream");
    } else {
      ssl_reason(e->err, sizeof e->err, "protocol error");
    }
  }
  e->state = ST_FAILED;
  return NS_TLS_ERROR;
}

static int engine_failed(engine_t *e) {
  if (e->err[0] == '\0')
    snprintf(e->err, sizeof e->err, "tls: connection failed earlier");
  return NS_TLS_ERROR;
}

static int engine_handshake(ns_tls_t *pub) {
  engine_t *e = (engine_t *)pub;
  int rc = NS_TLS_OK;
  if (e->state == ST_FAILED) return engine_failed(e);
  if (e->state == ST_HANDSHAKE) {
    int r;
    ERR_clear_error();
    r = SSL_do_handshake(e->ssl);
    if (r == 1) e->state = ST_OPEN;
    else if ((rc = fail(e, r)) == NS_TLS_ERROR) return rc;
    else if (rc == NS_TLS_EOF) {
      e->state = ST_FAILED;
      snprintf(e->err, sizeof e->err, "tls: peer closed during handshake");
      return NS_TLS_ERROR;
    }
  }
  /* memory BIOs always take the output: "want write" means flush it */
  if (BIO_ctrl_pending(e->wbio) > 0) return NS_TLS_WANT_WRITE;
  return rc;
}

static int engine_feed(ns_tls_t *pub, const char *p, size_t n) {
  engine_t *e = (engine_t *)pub;
  while (n > 0) {
    int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
    int w = BIO_write(e->rbio, p, chunk);
    if (w <= 0) {
      snprintf(e->err, sizeof e->err, "not enough memory");
      e->state = ST_FAILED;
      return NS_TLS_ERROR;
    }
    p += w;
    n -= (size_t)w;
  }
  return NS_TLS_OK;
}

static int engine_read(ns_tls_t *pub, char *dst, size_t cap) {
  engine_t *e = (engine_t *)pub;
  int r;
  if (e->state == ST_FAILED) return engine_failed(e);
  if (cap > INT32_MAX) cap = INT32_MAX;
  ERR_clear_error();
  r = SSL_read(e->ssl, dst, (int)cap);
  if (r > 0) return r;
  return fail(e, r);
}

static int engine_write(ns_tls_t *pub, const char *p, size_t n) {
  engine_t *e = (engine_t *)pub;
  size_t done = 0;
  if (e->state == ST_FAILED) return engine_failed(e);
  if (n > INT32_MAX) n = INT32_MAX;   /* the caller loops over the rest */
  while (done < n) {
    int r;
    ERR_clear_error();
    r = SSL_write(e->ssl, p + done, (int)(n - done));
    if (r <= 0) {
      int rc = fail(e, r);
      if (rc == NS_TLS_EOF) {
        snprintf(e->err, sizeof e->err, "closed");
        e->state = ST_FAILED;
      }
      return NS_TLS_ERROR;
    }
    done += (size_t)r;
  }
  return (int)n;
}

static int engine_shutdown(ns_tls_t *pub) {
  engine_t *e = (engine_t *)pub;
  if (e->state != ST_OPEN) return NS_TLS_OK;
  ERR_clear_error();
  if (!(SSL_get_shutdown(e->ssl) & SSL_SENT_SHUTDOWN))
    SSL_shutdown(e->ssl);    /* queues close_notify; no wait for the peer */
  ERR_clear_error();
  return NS_TLS_OK;
}

static size_t engine_pending(ns_tls_t *pub) {
  return BIO_ctrl_pending(((engine_t *)pub)->wbio);
}

static size_t engine_take(ns_tls_t *pub, char *dst, size_t cap) {
  engine_t *e = (engine_t *)pub;
  int r;
  if (cap > INT32_MAX) cap = INT32_MAX;
  r = BIO_read(e->wbio, dst, (int)cap);
  return r > 0 ? (size_t)r : 0;
}

static const char *engine_error(ns_tls_t *pub) {
  engine_t *e = (engine_t *)pub;
  return e->err[0] ? e->err : "tls: unknown error";
}

static int engine_done(ns_tls_t *pub) {
  return ((engine_t *)pub)->state == ST_OPEN;
}

/* ---- certificates as Lua tables ---- */

static void push_name(lua_State *L, X509_NAME *name) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  long n;
  if (b == NULL) {
    lua_pushnil(L);
    return;
  }
  X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  n = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, (size_t)n);
  BIO_free(b);
}

static void set_time(lua_State *L, const ASN1_TIME *t, const char *key) {
  struct tm tm;
  char iso[32], k[32];
  memset(&tm, 0, sizeof tm);
  if (t == NULL || !ASN1_TIME_to_tm(t, &tm)) return;
  lua_pushinteger(L, (lua_Integer)timegm(&tm));
  lua_setfield(L, -2, key);
  strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(k, sizeof k, "%s_iso", key);
  lua_pushstring(L, iso);
  lua_setfield(L, -2, k);
}

static void set_sans(lua_State *L, X509 *c) {
  GENERAL_NAMES *gens = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
  int i, n = 0;
  lua_newtable(L);
  for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    char ip[INET6_ADDRSTRLEN];
    const ASN1_STRING *s;
    switch (g->type) {
      case GEN_DNS:
        s = g->d.dNSName;
        lua_pushliteral(L, "DNS:");
        lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s),
                        (size_t)ASN1_STRING_length(s));
        lua_concat(L, 2);
        break;
      case GEN_IPADD:
        s = g->d.iPAddress;
        if (ASN1_STRING_length(s) == 4)
          inet_ntop(AF_INET, ASN1_STRING_get0_data(s), ip, sizeof ip);
        else if (ASN1_STRING_length(s) == 16)
          inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof ip);
        else
          snprintf(ip, sizeof ip, "?");
        lua_pushfstring(L, "IP:%s", ip);
        break;
      case GEN_EMAIL:
      case GEN_URI:
        s = g->type == GEN_EMAIL ? g->d.rfc822Name
                                 : g->d.uniformResourceIdentifier;
        lua_pushstring(L, g->type == GEN_EMAIL ? "email:" : "URI:");
        lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s),
                        (size_t)ASN1_STRING_length(s));
        lua_concat(L, 2);
        break;
      default:
        continue;
    }
    lua_rawseti(L, -2, ++n);
  }
  GENERAL_NAMES_free(gens);
  lua_setfield(L, -2, "sans");
}

static void set_cn(lua_State *L, X509 *c) {
  X509_NAME *name = X509_get_subject_name(c);
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i >= 0) {
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, s);
    if (n >= 0) {
      lua_pushlstring(L, (const char *)u, (size_t)n);
      lua_setfield(L, -2, "common_name");
    }
    OPENSSL_free(u);
  }
}

/* Pushes a table describing x; fields documented in lua/socket.lua. */
static void push_x509(lua_State *L, X509 *c) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0, i;
  lua_newtable(L);
  push_name(L, X509_get_subject_name(c));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(c));
  lua_setfield(L, -2, "issuer");
  set_cn(L, c);
  {
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex) {
      lua_pushstring(L, hex);
      lua_setfield(L, -2, "serial");
    }
    OPENSSL_free(hex);
    BN_free(bn);
  }
  set_sans(L, c);
  set_time(L, X509_get0_notBefore(c), "not_before");
  set_time(L, X509_get0_notAfter(c), "not_after");
  if (X509_digest(c, EVP_sha256(), md, &mdlen)) {
    char hex[EVP_MAX_MD_SIZE * 3];
    for (i = 0; i < mdlen; i++)
      snprintf(hex + 3 * i, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    lua_pushstring(L, hex);
    lua_setfield(L, -2, "fingerprint");
  }
  {
    BIO *b = BIO_new(BIO_s_mem());
    char *p;
    long n;
    if (b && PEM_write_bio_X509(b, c)) {
      n = BIO_get_mem_data(b, &p);
      lua_pushlstring(L, p, (size_t)n);
      lua_setfield(L, -2, "pem");
    }
    BIO_free(b);
  }
  ERR_clear_error();
}

static int engine_push_certificate(lua_State *L, ns_tls_t *pub) {
  engine_t *e = (engine_t *)pub;
  X509 *c = SSL_get1_peer_certificate(e->ssl);
  long vr;
  if (c == NULL) {
    lua_pushnil(L);
    return 1;
  }
  push_x509(L, c);
  X509_free(c);
  /* how the chain fared, even when verify = false let it through */
  vr = SSL_get_verify_result(e->ssl);
  lua_pushboolean(L, vr == X509_V_OK);
  lua_setfield(L, -2, "verified");
  if (vr != X509_V_OK) {
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
        vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
      lua_pushliteral(L, "hostname mismatch");
    else
      lua_pushfstring(L, "certificate verify failed: %s",
                      X509_verify_cert_error_string(vr));
    lua_setfield(L, -2, "verify_error");
  }
  return 1;
}

static int engine_push_info(lua_State *L, ns_tls_t *pub, const char *what) {
  engine_t *e = (engine_t *)pub;
  if (e->state != ST_OPEN) {
    lua_pushnil(L);
  } else if (strcmp(what, "protocol") == 0) {
    lua_pushstring(L, SSL_get_version(e->ssl));
  } else if (strcmp(what, "cipher") == 0) {
    lua_pushstring(L, SSL_get_cipher_name(e->ssl));
  } else if (strcmp(what, "alpn") == 0) {
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(e->ssl, &p, &n);
    if (n > 0) lua_pushlstring(L, (const char *)p, n);
    else lua_pushnil(L);
  } else if (strcmp(what, "chain") == 0) {
    /* the certificates the peer sent, its own first (a server's
    ** SSL_get_peer_cert_chain() leaves the client's own out) */
    STACK_OF(X509) *sk = SSL_get_peer_cert_chain(e->ssl);
    int i, n = 0;
    lua_newtable(L);
    if (SSL_is_server(e->ssl)) {
      X509 *c = SSL_get1_peer_certificate(e->ssl);
      if (c) {
        push_x509(L, c);
        X509_free(c);
        lua_rawseti(L, -2, ++n);
      }
    }
    for (i = 0; sk && i < sk_X509_num(sk); i++) {
      push_x509(L, sk_X509_value(sk, i));
      lua_rawseti(L, -2, ++n);
    }
  } else if (strcmp(what, "reused") == 0) {
    lua_pushboolean(L, SSL_session_reused(e->ssl));
  } else if (strcmp(what, "session") == 0) {
    SSL_SESSION *s = SSL_get1_session(e->ssl);
    if (s == NULL) {
      lua_pushnil(L);
    } else {
      session_t *u = lua_newuserdatauv(L, sizeof *u, 0);
      u->s = s;
      luaL_setmetatable(L, SESSION_MT);
    }
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static const ns_tls_ops_t ops = {
  NS_TLS_ABI,
  engine_open,
  engine_close,
  engine_handshake,
  engine_feed,
  engine_read,
  engine_write,
  engine_shutdown,
  engine_pending,
  engine_take,
  engine_error,
  engine_done,
  engine_push_certificate,
  engine_push_info
};

/* ---- Lua API: tls.core ---- */

/* tls.context(opts) -> context: cafile, certfile, alpn... read once, so
** many connections share one SSL_CTX (one CA store load, one key parse).
** opts.mode is "client" (default) or "server"; verify and
** handshake_timeout become defaults of the connections made from it. */
static int lib_context(lua_State *L) {
  conf_t c;
  ctx_t *u;
  SSL_CTX *ctx;
  char err[256];
  int server;
  luaL_checktype(L, 1, LUA_TTABLE);
  read_conf(L, 1, &c);
  if (c.context) return luaL_argerror(L, 1, "'context' inside a context");
  server = c.mode == 1;
  if (server && c.certfile == NULL)
    return luaL_argerror(L, 1, "a server context needs certfile");
  if (c.sni && !server)
    return luaL_argerror(L, 1, "'sni' is for server contexts");
  if (c.sni) sni_check(L, &c);
  if ((ctx = ctx_build(&c, server, err, sizeof err)) == NULL)
    return ns_fail_str(L, err);
  if (sni_build(L, &c, ctx, err, sizeof err) != 0) {
    SSL_CTX_free(ctx);
    return ns_fail_str(L, err);
  }
  u = ctx_push(L, ctx, server);
  u->verify = c.verify;
  u->handshake_timeout = c.handshake_timeout;
  return 1;
}

/* tls.certificate(pem) -> table: the same view as getpeercertificate. */
static int lib_certificate(lua_State *L) {
  size_t n;
  const char *pem = luaL_checklstring(L, 1, &n);
  BIO *b = BIO_new_mem_buf(pem, (int)n);
  X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  ERR_clear_error();
  if (c == NULL) return ns_fail(L, NS_ENOPEM);
  push_x509(L, c);
  X509_free(c);
  return 1;
}

static int ctx_gc(lua_State *L) {
  ctx_t *u = luaL_checkudata(L, 1, CTX_MT);
  SSL_CTX_free(u->ctx);       /* live engines keep their own reference */
  u->ctx = NULL;
  return 0;
}

static int ctx_tostring(lua_State *L) {
  ctx_t *u = luaL_checkudata(L, 1, CTX_MT);
  lua_pushfstring(L, "tls.context{%s}: %p", u->server ? "server" : "client",
                  (void *)u);
  return 1;
}

static int session_gc(lua_State *L) {
  session_t *u = luaL_checkudata(L, 1, SESSION_MT);
  SSL_SESSION_free(u->s);
  u->s = NULL;
  return 0;
}

static int session_tostring(lua_State *L) {
  lua_pushfstring(L, "tls.session: %p", lua_touserdata(L, 1));
  return 1;
}

static const luaL_Reg lib[] = {
  {"context", lib_context},
  {"certificate", lib_certificate},
  {NULL, NULL}
};

int luaopen_tls_core(lua_State *L) {
  if (alpn_index < 0)
    alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
  if (sni_index < 0)
    sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_free);
  luaL_newmetatable(L, CTX_MT);
  lua_pushcfunction(L, ctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, ctx_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newmetatable(L, SESSION_MT);
  lua_pushcfunction(L, session_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, session_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, (void *)&ops);
  lua_setfield(L, LUA_REGISTRYINDEX, NS_TLS_OPS_KEY);
  luaL_newlib(L, lib);
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "openssl");
  return 1;
}
