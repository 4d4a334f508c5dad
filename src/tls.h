/*
** tls.h -- the TLS engine interface between socket_tcp.c (in the binary)
** and tls.c ("tls.core", the dlopen'd netsh_tls.so that links OpenSSL).
**
** The engine never touches a socket. It is a state machine over two memory
** BIOs: the socket feeds it the ciphertext it read (ops->feed) and writes
** out the ciphertext the engine produced (ops->pending / ops->take), so the
** cosocket read/write/timeout paths serve TLS unchanged. Every call returns
** at once; none blocks, yields or calls back.
**
** The binary does not link OpenSSL, so it reaches the engine only through
** the ns_tls_ops_t table that luaopen_tls_core() stores in the registry
** (NS_TLS_OPS_KEY, a light userdata). ns_tls_ops() below loads "tls.core"
** on first use and returns that table.
**
** Client loop (server the same with open(..., 1, ...)):
**   e = ops->open(L, opts, 0, host);         NULL: message pushed
**   for (;;) {
**     rc = ops->handshake(e);
**     if (rc == NS_TLS_WANT_WRITE) write ops->take() bytes, loop;
**     else if (rc == NS_TLS_WANT_READ) read bytes, ops->feed() them, loop;
**     else break;                             OK, or ERROR: ops->error(e)
**   }
** then ops->write() + take() to send, feed() + ops->read() to receive.
** After any call, ops->pending(e) > 0 means ciphertext waits to be sent.
*/
#ifndef NETSH_TLS_H
#define NETSH_TLS_H

#include <stddef.h>
#include "netsh.h"

/* Engine results: >= 0 is success (a byte count for read/write). */
#define NS_TLS_OK          0
#define NS_TLS_WANT_READ  (-1)  /* feed more ciphertext, then call again */
#define NS_TLS_WANT_WRITE (-2)  /* take() and send the output, call again */
#define NS_TLS_EOF        (-3)  /* the peer closed the TLS session */
#define NS_TLS_ERROR      (-4)  /* fatal; ops->error(e) says why */

/* Handshake bound when neither the options nor the socket give one. */
#define NS_TLS_HANDSHAKE_TIMEOUT 30.0

/* The public head of an engine; tls.c keeps the rest private. */
typedef struct ns_tls {
  int server;                 /* 1: accepted side */
  double handshake_timeout;   /* opts.handshake_timeout, < 0 if unset */
} ns_tls_t;

#define NS_TLS_ABI 1
#define NS_TLS_OPS_KEY "netsh.tls.ops"

typedef struct ns_tls_ops {
  int abi;                                    /* NS_TLS_ABI */
  /* New engine. opts is a stack index: none/nil/true (defaults), an
  ** options table or a tls.core context. Client: host (may be NULL) is the
  ** default servername, used for SNI and the certificate name check.
  ** Raises on a bad option type; returns NULL with a message pushed when
  ** the setup fails (file not found, key mismatch...). */
  ns_tls_t *(*open)(lua_State *L, int opts, int server, const char *host);
  void (*close)(ns_tls_t *e);                 /* frees everything */
  /* Advance the handshake: NS_TLS_OK when done and flushed. */
  int (*handshake)(ns_tls_t *e);
  /* Ciphertext from the peer: 0 or NS_TLS_ERROR (out of memory). */
  int (*feed)(ns_tls_t *e, const char *p, size_t n);
  /* Up to cap plaintext bytes: > 0, NS_TLS_WANT_READ, NS_TLS_EOF or
  ** NS_TLS_ERROR. Reading may queue output (alerts, key updates). */
  int (*read)(ns_tls_t *e, char *dst, size_t cap);
  /* Encrypt all n bytes (n > 0) into the output: n or NS_TLS_ERROR. */
  int (*write)(ns_tls_t *e, const char *p, size_t n);
  /* Queue close_notify (idempotent); take() and send it. */
  int (*shutdown)(ns_tls_t *e);
  size_t (*pending)(ns_tls_t *e);             /* output bytes waiting */
  size_t (*take)(ns_tls_t *e, char *dst, size_t cap);  /* dequeue output */
  const char *(*error)(ns_tls_t *e);          /* after NS_TLS_ERROR */
  int (*done)(ns_tls_t *e);                   /* handshake complete */
  /* Lua views; each pushes exactly one value (nil when not known). */
  int (*push_certificate)(lua_State *L, ns_tls_t *e);  /* peer's, a table */
  int (*push_info)(lua_State *L, ns_tls_t *e, const char *what);
      /* what: "protocol" ("TLSv1.3"), "cipher", "alpn", "session" */
} ns_tls_ops_t;

/* The engine, loading "tls.core" on first use (raises when it cannot). */
static inline const ns_tls_ops_t *ns_tls_ops(lua_State *L) {
  const ns_tls_ops_t *ops;
  lua_getfield(L, LUA_REGISTRYINDEX, NS_TLS_OPS_KEY);
  ops = (const ns_tls_ops_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (ops == NULL) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "tls.core");
    lua_call(L, 1, 0);
    lua_getfield(L, LUA_REGISTRYINDEX, NS_TLS_OPS_KEY);
    ops = (const ns_tls_ops_t *)lua_touserdata(L, -1);
    lua_pop(L, 1);
  }
  if (ops == NULL || ops->abi != NS_TLS_ABI)
    luaL_error(L, "tls.core: engine missing or of another version");
  return ops;
}

#endif
