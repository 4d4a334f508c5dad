/*
** websocket.c -- "websocket.core": RFC 6455 framing for lua/websocket.lua.
**
** Only pure functions on strings: the frame parser (ws_parse), the frame
** builder with masking, UTF-8 validation, the handshake's accept key
** (SHA-1 and Base64, written here so that ws:// never loads OpenSSL) and
** random bytes for keys and masks. The I/O, the state machine and the
** closing handshake are Lua's, over netsh's cosockets; what is per byte
** (masking a 16 KiB frame, checking UTF-8) is here.
**
** ws_parse never reads past the buffer it is given and answers "need N
** bytes" until a whole frame is there, so the caller reads exactly what
** is missing (one receive(n) for a large frame, no quadratic appends).
** tests/fuzz/fuzz_ws.c drives it on random input.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "netsh.h"

/* ---- the frame parser ---- */

enum { WS_NEED = 0, WS_FRAME = 1, WS_ERROR = -1 };

#define WS_EXPECT_MASK 1   /* we are the server: frames must be masked */
#define WS_ALLOW_RSV1  2   /* permessage-deflate was negotiated */

typedef struct {
  int fin, rsv1, opcode;
  size_t header;           /* header bytes, mask key included */
  uint64_t len;            /* payload bytes */
  const unsigned char *key;  /* masking key inside the buffer, or NULL */
  size_t need;             /* WS_NEED: bytes wanted in all (header+payload) */
  int code;                /* WS_ERROR: the close code to send */
  const char *why;         /* WS_ERROR: the reason */
} ws_frame_t;

/* Parses the frame at the start of p[0..n). WS_FRAME: f describes it and
** p holds it whole (f->header + f->len <= n). WS_NEED: f->need bytes are
** needed. WS_ERROR: f->code (1002, or 1009 over max) and f->why. Checks
** every rule a single frame can break; continuation order is the
** caller's. */
static int ws_parse(const unsigned char *p, size_t n, int flags,
                    uint64_t max, ws_frame_t *f) {
  size_t h = 2;
  uint64_t len;
  memset(f, 0, sizeof *f);
  if (n < 2) { f->need = 2; return WS_NEED; }
  f->fin = (p[0] & 0x80) != 0;
  f->rsv1 = (p[0] & 0x40) != 0;
  f->opcode = p[0] & 0x0f;
  f->code = 1002;
  if ((p[0] & 0x30) || (f->rsv1 && !(flags & WS_ALLOW_RSV1))) {
    f->why = "reserved bits set";
    return WS_ERROR;
  }
  if ((f->opcode > 2 && f->opcode < 8) || f->opcode > 10) {
    f->why = "unknown opcode";
    return WS_ERROR;
  }
  if (f->opcode >= 8) {
    if (!f->fin) { f->why = "fragmented control frame"; return WS_ERROR; }
    if ((p[1] & 0x7f) > 125) {
      f->why = "control frame over 125 bytes";
      return WS_ERROR;
    }
    if (f->rsv1) { f->why = "compressed control frame"; return WS_ERROR; }
  }
  if (!(p[1] & 0x80) != !(flags & WS_EXPECT_MASK)) {
    f->why = (flags & WS_EXPECT_MASK) ? "unmasked client frame"
                                      : "masked server frame";
    return WS_ERROR;
  }
  len = p[1] & 0x7f;
  if (len == 126) {
    h = 4;
    if (n < h) { f->need = h; return WS_NEED; }
    len = ((uint64_t)p[2] << 8) | p[3];
    if (len < 126) { f->why = "non-minimal length"; return WS_ERROR; }
  } else if (len == 127) {
    int i;
    h = 10;
    if (n < h) { f->need = h; return WS_NEED; }
    if (p[2] & 0x80) { f->why = "length over 2^63"; return WS_ERROR; }
    len = 0;
    for (i = 2; i < 10; i++) len = (len << 8) | p[i];
    if (len < 65536) { f->why = "non-minimal length"; return WS_ERROR; }
  }
  if (p[1] & 0x80) {
    f->key = p + h;
    h += 4;
  }
  f->len = len;
  f->header = h;
  if (max > 0 && len > max) {
    f->code = 1009;
    f->why = "message too big";
    return WS_ERROR;
  }
  if (len > (uint64_t)SIZE_MAX - h) {
    f->code = 1009;
    f->why = "message too big";
    return WS_ERROR;
  }
  if (n < h + len) { f->need = h + (size_t)len; return WS_NEED; }
  f->code = 0;
  return WS_FRAME;
}

/* XORs n bytes of src with key into dst, the key's phase starting at 0.
** Word at a time: the byte loop is what makes masking slow in Lua. */
static void ws_mask(unsigned char *dst, const unsigned char *src, size_t n,
                    const unsigned char key[4]) {
  size_t i = 0;
  uint64_t k8;
  uint32_t k4;
  memcpy(&k4, key, 4);
  k8 = ((uint64_t)k4 << 32) | k4;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, src + i, 8);
    w ^= k8;
    memcpy(dst + i, &w, 8);
  }
  for (; i < n; i++) dst[i] = src[i] ^ key[i & 3];
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past
** U+10FFFF. Returns 1 when p[0..n) is valid. With partial, a sequence cut
** at the end is fine (a fragment of a text message); *tail gets its
** length so the caller can check the next fragment from there. */
static int ws_utf8(const unsigned char *p, size_t n, int partial,
                   size_t *tail) {
  size_t i = 0;
  if (tail) *tail = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t k, want;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) want = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      want = 2;
      if (c == 0xe0) lo = 0xa0;
      else if (c == 0xed) hi = 0x9f;       /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
      want = 3;
      if (c == 0xf0) lo = 0x90;
      else if (c == 0xf4) hi = 0x8f;       /* up to U+10FFFF */
    } else return 0;
    for (k = 1; k <= want; k++) {
      if (i + k >= n) {                    /* cut: only at the very end */
        if (!partial) return 0;
        if (tail) *tail = n - i;
        return 1;
      }
      c = p[i + k];
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xbf)) return 0;
    }
    i += want + 1;
  }
  return 1;
}

/* ---- SHA-1 and Base64, for Sec-WebSocket-Accept only ---- */

typedef struct {
  uint32_t h[5];
  uint64_t bytes;
  unsigned char block[64];
  size_t used;
} sha1_t;

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(sha1_t *s, const unsigned char *b) {
  uint32_t w[80], a, bb, c, d, e, t;
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
           (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
  for (; i < 80; i++)
    w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  a = s->h[0]; bb = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4];
  for (i = 0; i < 80; i++) {
    uint32_t fk;
    if (i < 20) fk = ((bb & c) | (~bb & d)) + 0x5a827999u;
    else if (i < 40) fk = (bb ^ c ^ d) + 0x6ed9eba1u;
    else if (i < 60) fk = ((bb & c) | (bb & d) | (c & d)) + 0x8f1bbcdcu;
    else fk = (bb ^ c ^ d) + 0xca62c1d6u;
    t = ROL(a, 5) + fk + e + w[i];
    e = d; d = c; c = ROL(bb, 30); bb = a; a = t;
  }
  s->h[0] += a; s->h[1] += bb; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}

static void sha1_update(sha1_t *s, const unsigned char *p, size_t n) {
  s->bytes += n;
  while (n > 0) {
    size_t k = 64 - s->used;
    if (k > n) k = n;
    memcpy(s->block + s->used, p, k);
    s->used += k; p += k; n -= k;
    if (s->used == 64) { sha1_block(s, s->block); s->used = 0; }
  }
}

static void sha1(const unsigned char *p, size_t n, unsigned char out[20]) {
  static const uint32_t init[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu,
                                   0x10325476u, 0xc3d2e1f0u};
  sha1_t s;
  unsigned char pad[72];
  uint64_t bits;
  size_t padlen;
  int i;
  memset(&s, 0, sizeof s);
  memcpy(s.h, init, sizeof init);
  sha1_update(&s, p, n);
  bits = s.bytes * 8;
  padlen = (s.used < 56 ? 56 : 120) - s.used;
  memset(pad, 0, sizeof pad);
  pad[0] = 0x80;
  for (i = 0; i < 8; i++)
    pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
  sha1_update(&s, pad, padlen + 8);
  for (i = 0; i < 20; i++)
    out[i] = (unsigned char)(s.h[i / 4] >> (24 - 8 * (i % 4)));
}

static void push_base64(lua_State *L, const unsigned char *p, size_t n) {
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    luaL_addchar(&b, tab[v >> 18]);
    luaL_addchar(&b, tab[(v >> 12) & 63]);
    luaL_addchar(&b, tab[(v >> 6) & 63]);
    luaL_addchar(&b, tab[v & 63]);
  }
  if (n - i == 1) {
    luaL_addchar(&b, tab[p[i] >> 2]);
    luaL_addchar(&b, tab[(p[i] & 3) << 4]);
    luaL_addstring(&b, "==");
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
    luaL_addchar(&b, tab[v >> 10]);
    luaL_addchar(&b, tab[(v >> 4) & 63]);
    luaL_addchar(&b, tab[(v & 15) << 2]);
    luaL_addchar(&b, '=');
  }
  luaL_pushresult(&b);
}

/* ---- random bytes: keys and masks must be unpredictable (RFC 6455 10.3)
** A pool filled by getrandom(), so a mask costs no system call. ---- */

static unsigned char pool[256];
static size_t pool_left;

static void random_bytes(unsigned char *out, size_t n) {
  while (n > 0) {
    size_t k;
    if (pool_left == 0) {
      size_t got = 0;
      while (got < sizeof pool) {
        ssize_t r = getrandom(pool + got, sizeof pool - got, 0);
        if (r > 0) got += (size_t)r;
      }
      pool_left = sizeof pool;
    }
    k = n < pool_left ? n : pool_left;
    memcpy(out, pool + sizeof pool - pool_left, k);
    memset(pool + sizeof pool - pool_left, 0, k);
    pool_left -= k;
    out += k;
    n -= k;
  }
}

/* ---- Lua bindings ---- */

/* parse(buf, pos, flags, max) -> opcode, fin, rsv1, payload, nextpos
**   | nil, need (bytes wanted from pos on) | false, code, why
** flags: 1 frames must be masked (server), 2 RSV1 allowed (deflate).
** The payload comes back unmasked. */
static int lib_parse(lua_State *L) {
  size_t n;
  const unsigned char *buf =
    (const unsigned char *)luaL_checklstring(L, 1, &n);
  lua_Integer pos = luaL_optinteger(L, 2, 1);
  int flags = (int)luaL_optinteger(L, 3, 0);
  lua_Integer max = luaL_optinteger(L, 4, 0);
  ws_frame_t f;
  int r;
  luaL_argcheck(L, pos >= 1 && (size_t)pos <= n + 1, 2, "out of range");
  buf += pos - 1;
  n -= (size_t)pos - 1;
  r = ws_parse(buf, n, flags, max < 0 ? 0 : (uint64_t)max, &f);
  if (r == WS_NEED) {
    lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)f.need);
    return 2;
  }
  if (r == WS_ERROR) {
    lua_pushboolean(L, 0);
    lua_pushinteger(L, f.code);
    lua_pushstring(L, f.why);
    return 3;
  }
  lua_pushinteger(L, f.opcode);
  lua_pushboolean(L, f.fin);
  lua_pushboolean(L, f.rsv1);
  if (f.key && f.len > 0) {
    luaL_Buffer b;
    unsigned char *d = (unsigned char *)luaL_buffinitsize(L, &b,
                                                         (size_t)f.len);
    ws_mask(d, buf + f.header, (size_t)f.len, f.key);
    luaL_pushresultsize(&b, (size_t)f.len);
  } else {
    lua_pushlstring(L, (const char *)buf + f.header, (size_t)f.len);
  }
  lua_pushinteger(L, pos + (lua_Integer)(f.header + f.len));
  return 5;
}

/* frame(opcode, payload, fin, rsv1, mask) -> the frame as one string;
** mask true draws a fresh key. */
static int lib_frame(lua_State *L) {
  lua_Integer op = luaL_checkinteger(L, 1);
  size_t n, h = 2;
  const unsigned char *p =
    (const unsigned char *)luaL_optlstring(L, 2, "", &n);
  int fin = lua_isnone(L, 3) || lua_toboolean(L, 3);
  int rsv1 = lua_toboolean(L, 4);
  int mask = lua_toboolean(L, 5);
  unsigned char hd[14], key[4];
  luaL_Buffer b;
  char *out;
  luaL_argcheck(L, op >= 0 && op <= 15, 1, "invalid opcode");
  hd[0] = (unsigned char)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | op);
  if (n < 126) hd[1] = (unsigned char)n;
  else if (n < 65536) {
    hd[1] = 126;
    hd[2] = (unsigned char)(n >> 8);
    hd[3] = (unsigned char)n;
    h = 4;
  } else {
    int i;
    hd[1] = 127;
    for (i = 0; i < 8; i++)
      hd[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    h = 10;
  }
  if (mask) {
    hd[1] |= 0x80;
    random_bytes(key, 4);
    memcpy(hd + h, key, 4);
    h += 4;
  }
  out = luaL_buffinitsize(L, &b, h + n);
  memcpy(out, hd, h);
  if (mask) ws_mask((unsigned char *)out + h, p, n, key);
  else if (n > 0) memcpy(out + h, p, n);
  luaL_pushresultsize(&b, h + n);
  return 1;
}

/* mask(data, key4) -> data XOR key (applying it twice gives data back) */
static int lib_mask(lua_State *L) {
  size_t n, kn;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  const unsigned char *k =
    (const unsigned char *)luaL_checklstring(L, 2, &kn);
  luaL_Buffer b;
  unsigned char *out;
  luaL_argcheck(L, kn == 4, 2, "4 bytes expected");
  out = (unsigned char *)luaL_buffinitsize(L, &b, n);
  ws_mask(out, p, n, k);
  luaL_pushresultsize(&b, n);
  return 1;
}

/* utf8(s [, partial]) -> true | false; with partial also the length of
** an incomplete sequence at the end (to carry to the next fragment). */
static int lib_utf8(lua_State *L) {
  size_t n, tail = 0;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  int partial = lua_toboolean(L, 2);
  int ok = ws_utf8(p, n, partial, &tail);
  lua_pushboolean(L, ok);
  if (!partial) return 1;
  lua_pushinteger(L, (lua_Integer)tail);
  return 2;
}

/* accept_key(key) -> base64(sha1(key .. GUID)) (RFC 6455 4.2.2) */
static int lib_accept_key(lua_State *L) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  size_t n;
  const char *k = luaL_checklstring(L, 1, &n);
  unsigned char *tmp, md[20];
  luaL_argcheck(L, n <= 256, 1, "key too long");
  tmp = malloc(n + sizeof guid);
  if (tmp == NULL) return luaL_error(L, "not enough memory");
  memcpy(tmp, k, n);
  memcpy(tmp + n, guid, sizeof guid - 1);
  sha1(tmp, n + sizeof guid - 1, md);
  free(tmp);
  push_base64(L, md, 20);
  return 1;
}

/* random(n) -> n unpredictable bytes; random(n, true) base64 of them */
static int lib_random(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  unsigned char buf[64];
  luaL_argcheck(L, n >= 0 && n <= (lua_Integer)sizeof buf, 1,
                "0..64 expected");
  random_bytes(buf, (size_t)n);
  if (lua_toboolean(L, 2)) push_base64(L, buf, (size_t)n);
  else lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

int luaopen_websocket_core(lua_State *L) {
  static const luaL_Reg lib[] = {
    {"parse", lib_parse},
    {"frame", lib_frame},
    {"mask", lib_mask},
    {"utf8", lib_utf8},
    {"accept_key", lib_accept_key},
    {"random", lib_random},
    {NULL, NULL}
  };
  luaL_newlib(L, lib);
  return 1;
}
