/*
** wsdeflate.c -- "websocket.deflate": permessage-deflate (RFC 7692) on
** zlib, built as netsh_wsdeflate.so and loaded on the first connection
** that negotiates compression, so zlib costs nothing to other scripts.
**
** A stream object wraps one z_stream (raw deflate, the negotiated window)
** owned by its userdata; close/__gc end it. Messages are compressed with
** Z_SYNC_FLUSH and the trailing 00 00 ff ff is removed (7.2.1); the
** inflater appends it back. Without context takeover the stream is reset
** after each message.
**
** Decompression is bounded like the HTTP client's bodies (src/http.c):
** an absolute cap (the connection's max_message) and an expansion ratio:
** past the first RATIO_FREE decoded bytes, a message may decode to at
** most max_ratio times its compressed size. A bomb stops after about
** RATIO_FREE bytes of output.
*/
#include <string.h>
#include <zlib.h>
#include "netsh.h"

#define STREAM_MT "websocket.zstream"
#define RATIO_FREE (1024 * 1024)
#define CHUNK 16384

typedef struct {
  z_stream z;
  int live;       /* z is initialised */
  int inflate;    /* inflater (else deflater) */
  int reset;      /* no context takeover: reset after each message */
} zs_t;

static zs_t *check_zs(lua_State *L) {
  return luaL_checkudata(L, 1, STREAM_MT);
}

static void zs_end(zs_t *s) {
  if (!s->live) return;
  if (s->inflate) inflateEnd(&s->z);
  else deflateEnd(&s->z);
  s->live = 0;
}

/* new(kind, window_bits, no_context_takeover) -> stream | nil, err
** kind "deflate" or "inflate"; window_bits 8..15. */
static int lib_new(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  lua_Integer bits = luaL_optinteger(L, 2, 15);
  int reset = lua_toboolean(L, 3), r;
  zs_t *s;
  luaL_argcheck(L, bits >= 8 && bits <= 15, 2, "8..15 expected");
  s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, STREAM_MT);
  s->reset = reset;
  if (strcmp(kind, "inflate") == 0) {
    s->inflate = 1;
    r = inflateInit2(&s->z, -(int)bits);
  } else if (strcmp(kind, "deflate") == 0) {
    /* zlib's raw deflate has no 256-byte window: 8 is written as 9, which
    ** the peer's 9-bit (or larger) inflater reads; lua/websocket.lua
    ** never asks for 8 for its own compressor. */
    if (bits == 8) bits = 9;
    r = deflateInit2(&s->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -(int)bits,
                     8, Z_DEFAULT_STRATEGY);
  } else {
    return luaL_argerror(L, 1, "'deflate' or 'inflate' expected");
  }
  if (r != Z_OK) return ns_fail(L, UV_ENOMEM);   /* the only way left */
  s->live = 1;
  return 1;
}

/* d:compress(message) -> compressed payload (tail removed) */
static int meth_compress(lua_State *L) {
  zs_t *s = check_zs(L);
  size_t n, len;
  const char *p = luaL_checklstring(L, 2, &n);
  luaL_Buffer b;
  int r;
  luaL_argcheck(L, s->live && !s->inflate, 1, "open deflater expected");
  luaL_buffinit(L, &b);
  s->z.next_in = (Bytef *)p;
  s->z.avail_in = (uInt)n;
  do {
    char *out = luaL_prepbuffsize(&b, CHUNK);
    s->z.next_out = (Bytef *)out;
    s->z.avail_out = CHUNK;
    r = deflate(&s->z, Z_SYNC_FLUSH);
    if (r != Z_OK && r != Z_BUF_ERROR) {
      return luaL_error(L, "zlib: deflate failed (%d)", r);
    }
    luaL_addsize(&b, CHUNK - s->z.avail_out);
  } while (s->z.avail_out == 0);
  luaL_pushresult(&b);
  len = lua_rawlen(L, -1);
  if (len >= 4) {
    const char *o = lua_tostring(L, -1);
    if (memcmp(o + len - 4, "\0\0\xff\xff", 4) == 0) {
      lua_pushlstring(L, o, len - 4);
    }
  }
  if (s->reset) deflateReset(&s->z);
  return 1;
}

/* i:decompress(payload, max, max_ratio) -> message | nil, why
** why: "too big" (over max bytes), "ratio" (the bomb rule), "bad data".
** max 0: no cap; max_ratio 0: no ratio rule. */
static int meth_decompress(lua_State *L) {
  static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
  zs_t *s = check_zs(L);
  size_t n, total = 0;
  const char *p = luaL_checklstring(L, 2, &n);
  lua_Integer max = luaL_optinteger(L, 3, 0);
  lua_Number ratio = luaL_optnumber(L, 4, 0);
  luaL_Buffer b;
  int part, r = Z_OK;
  const char *why = NULL;
  luaL_argcheck(L, s->live && s->inflate, 1, "open inflater expected");
  luaL_buffinit(L, &b);
  for (part = 0; part < 2 && why == NULL; part++) {
    s->z.next_in = part == 0 ? (Bytef *)p : (Bytef *)tail;
    s->z.avail_in = part == 0 ? (uInt)n : 4;
    while (s->z.avail_in > 0 || part == 1) {
      char *out = luaL_prepbuffsize(&b, CHUNK);
      size_t got;
      s->z.next_out = (Bytef *)out;
      s->z.avail_out = CHUNK;
      r = inflate(&s->z, Z_SYNC_FLUSH);
      got = CHUNK - s->z.avail_out;
      total += got;
      luaL_addsize(&b, got);
      if (r == Z_STREAM_END) {       /* BFINAL: the peer ended the stream */
        inflateReset(&s->z);
        if (s->z.avail_in == 0) break;
        continue;
      }
      if (r != Z_OK && r != Z_BUF_ERROR) { why = "bad data"; break; }
      if (max > 0 && total > (size_t)max) { why = "too big"; break; }
      if (ratio > 0 && total > RATIO_FREE &&
          (double)total > ratio * (double)(n + 4)) {
        why = "ratio";
        break;
      }
      if (r == Z_BUF_ERROR || (s->z.avail_out > 0 && s->z.avail_in == 0))
        break;                       /* no progress possible, or all done */
    }
  }
  if (why) {
    inflateReset(&s->z);   /* the connection closes; leave it consistent */
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  luaL_pushresult(&b);
  if (s->reset) inflateReset(&s->z);
  return 1;
}

static int meth_close(lua_State *L) {
  zs_end(check_zs(L));
  return 0;
}

int luaopen_websocket_deflate(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"compress", meth_compress},
    {"decompress", meth_decompress},
    {"close", meth_close},
    {NULL, NULL}
  };
  static const luaL_Reg lib[] = {
    {"new", lib_new},
    {NULL, NULL}
  };
  if (luaL_newmetatable(L, STREAM_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, meth_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, meth_close);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  luaL_newlib(L, lib);
  lua_pushstring(L, zlibVersion());
  lua_setfield(L, -2, "zlib_version");
  return 1;
}
