/*
** json_aux.c -- "json.aux": what lua/json.lua needs beyond lua-cjson 2.1.0.
**
** Decoding stays cjson's. cjson 2.1.0 reads every number as a double (so
** integers beyond 2^53 lose digits) and gives {} for both [] and {}. So a
** cheap lexical pass (scan) first looks for the two cases cjson gets wrong
** -- empty arrays and integer literals of more than 15 digits -- and, only
** when there are some, rewrites the text: [] becomes [nan] and a long
** integer N becomes [nan,"N"]. No valid JSON text decodes to a NaN (the
** scan rejects nan/inf words and non-JSON number forms), so the markers
** cannot be confused with data. cjson then parses, and a walk over the
** result (fix_table) turns integral doubles into integers, gives arrays
** json.array's metatable and replaces the markers.
**
** Encoding is ours (enc_*): cjson 2.1.0 writes at most 14 significant
** digits, {} for every empty table, and has no pretty printer. The output
** buffer lives in a userdata kept as an upvalue and reused between calls;
** a nested call (a __gc finalizer that encodes, run by an allocation
** during an encode) gets a fresh one, and so does every call after an
** out-of-memory error left the shared one marked busy.
*/
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "netsh.h"

#define MAX_DEPTH 1000          /* nesting limit, cjson's default */
#define KEEP_BUFFER (1u << 20)  /* larger output buffers are not kept */

#define ARRAY_MT "json.array"
#define OBJECT_MT "json.object"
#define BUFFER_MT "json.buffer"

/* Doubles that hold an integer in lua_Integer's range convert exactly.
** -2^63 itself stays a double: integer literals just beyond the range
** (-9223372036854775809) round to it; the literal -9223372036854775808
** never gets here, the scan sends it through the long-integer path. */
static int to_integer(double d, lua_Integer *k) {
  if (d > -0x1p63 && d < 0x1p63) {    /* false for NaN */
    lua_Integer i = (lua_Integer)d;
    if ((double)i == d) {
      *k = i;
      return 1;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- scan */

enum { C_BAD, C_WS, C_PUNCT, C_OPEN, C_ARRAY, C_CLOSE, C_QUOTE, C_NUM,
       C_WORD };
static unsigned char cclass[256];
static unsigned char string_stop[256];  /* '"', '\\' and '\0' */

typedef struct {
  const char *text, *end;
  char *out;            /* rewrite target; NULL while only counting */
  const char *copied;   /* text before this is already in out */
  size_t outlen;        /* length of the rewritten text */
  size_t specials;      /* empty arrays and long integers seen */
  int maxdepth;         /* deepest nesting seen */
  const char *err;      /* first lexical error: what, and where */
  const char *errat;
} scan_t;

static void scan_error(scan_t *sc, const char *what, const char *at) {
  sc->err = what;
  sc->errat = at;
}

/* Replaces text[from, to) by prefix, text[from, to) if keep, suffix. */
static void rewrite(scan_t *sc, const char *from, const char *to,
                    const char *prefix, int keep, const char *suffix) {
  size_t np = strlen(prefix), ns = strlen(suffix);
  size_t nk = keep ? (size_t)(to - from) : 0;
  sc->specials++;
  sc->outlen = sc->outlen - (size_t)(to - from) + np + nk + ns;
  if (sc->out == NULL) return;
  memcpy(sc->out, sc->copied, (size_t)(from - sc->copied));
  sc->out += from - sc->copied;
  memcpy(sc->out, prefix, np);
  memcpy(sc->out + np, from, nk);
  memcpy(sc->out + np + nk, suffix, ns);
  sc->out += np + nk + ns;
  sc->copied = to;
}

/* p is just past the opening quote; returns just past the closing one, or
** NULL. A byte loop: strings are short in most documents (memchr() would
** cost a call each and find only the quote), and even long ones cost
** cjson far more to copy than this to skip. */
static const char *skip_string(const char *p, const char *end) {
  for (;;) {
    while (!string_stop[(unsigned char)*p]) p++;  /* Lua strings end in \0 */
    if (p >= end) return NULL;
    if (*p == '"') return p + 1;
    p += *p == '\\' ? 2 : 1;          /* an escape pair, or a NUL byte */
    if (p >= end) return NULL;
  }
}

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

/* One number, RFC 8259 grammar (stricter than strtod, which cjson uses);
** returns the end of it, or NULL after scan_error(). */
static const char *scan_number(scan_t *sc, const char *p) {
  const char *start = p, *digits, *end = sc->end;
  size_t nd;
  int integer = 1;
  if (*p == '-') p++;
  digits = p;
  if (p < end && *p == '0') p++;
  else if (p < end && *p >= '1' && *p <= '9')
    while (p < end && IS_DIGIT(*p)) p++;
  else
    goto bad;
  nd = (size_t)(p - digits);
  if (p < end && *p == '.') {
    integer = 0;
    if (++p == end || !IS_DIGIT(*p)) goto bad;
    while (p < end && IS_DIGIT(*p)) p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    integer = 0;
    if (++p < end && (*p == '+' || *p == '-')) p++;
    if (p == end || !IS_DIGIT(*p)) goto bad;
    while (p < end && IS_DIGIT(*p)) p++;
  }
  if (p < end && IS_DIGIT(*p)) goto bad;        /* a leading zero: 01 */
  /* up to 15 digits a double is exact; beyond int64, a float it stays */
  if (integer && nd > 15 && (nd < 19 || (nd == 19 &&
      memcmp(digits, *start == '-' ? "9223372036854775808"
                                   : "9223372036854775807", 19) <= 0)))
    rewrite(sc, start, p, "[nan,\"", 1, "\"]");
  return p;
bad:
  scan_error(sc, "invalid number", start);
  return NULL;
}

static const char *scan_word(scan_t *sc, const char *p) {
  size_t left = (size_t)(sc->end - p);
  if (left >= 4 && memcmp(p, "true", 4) == 0) return p + 4;
  if (left >= 4 && memcmp(p, "null", 4) == 0) return p + 4;
  if (left >= 5 && memcmp(p, "false", 5) == 0) return p + 5;
  scan_error(sc, "invalid token", p);
  return NULL;
}

/* The lexical pass. Structure is cjson's business: the scan only needs
** to see every token, so that it finds the specials, proves that cjson
** will meet no NaN/Infinity/hex number, and bounds the nesting. */
static void scan(scan_t *sc) {
  const char *p = sc->text, *end = sc->end;
  int depth = 0;
  sc->copied = p;
  sc->outlen = (size_t)(end - p);
  sc->specials = 0;
  while (p < end) {
    switch (cclass[(unsigned char)*p]) {
      case C_WS: case C_PUNCT:
        p++;
        break;
      case C_ARRAY: case C_OPEN: {
        const char *q = p + 1;
        if (depth == MAX_DEPTH) {          /* cjson counts [] too */
          scan_error(sc, "too deeply nested", p);
          return;
        }
        if (*p == '[') {
          while (q < end && cclass[(unsigned char)*q] == C_WS) q++;
          if (q < end && *q == ']') {
            rewrite(sc, p, q + 1, "[nan]", 0, "");
            p = q + 1;
            break;
          }
        }
        if (++depth > sc->maxdepth) sc->maxdepth = depth;
        p++;
        break;
      }
      case C_CLOSE:
        depth--;
        p++;
        break;
      case C_QUOTE:
        p = skip_string(p + 1, end);
        if (p == NULL) p = end;   /* unterminated: cjson says so */
        break;
      case C_NUM:
        if ((p = scan_number(sc, p)) == NULL) return;
        break;
      case C_WORD:
        if ((p = scan_word(sc, p)) == NULL) return;
        break;
      default:
        scan_error(sc, "unexpected character", p);
        return;
    }
  }
  if (sc->out) memcpy(sc->out, sc->copied, (size_t)(end - sc->copied));
}

/* ---------------------------------------------------------------- walk */

#define UV_STRICT lua_upvalueindex(1)
#define UV_LENIENT lua_upvalueindex(2)
#define UV_ARRAY lua_upvalueindex(3)

static int fix_table(lua_State *L, lua_Integer *big);

/* Fixes the value at the top in place; returns 1 when its parent must
** replace it by the integer *k. Pops nothing. */
static inline int fix_value(lua_State *L, lua_Integer *k) {
  switch (lua_type(L, -1)) {
    case LUA_TNUMBER:
      return !lua_isinteger(L, -1) && to_integer(lua_tonumber(L, -1), k);
    case LUA_TTABLE:
      return fix_table(L, k);
    default:
      return 0;
  }
}

/* Fixes the decoded table at the top (see the header). Returns 1 when it
** is the marker of a long integer, whose value is then stored in *big. */
static int fix_table(lua_State *L, lua_Integer *big) {
  int t = lua_gettop(L);
  lua_Integer i, n, k;
  if (lua_rawgeti(L, t, 1) == LUA_TNIL) {   /* an object: string keys */
    lua_pop(L, 1);
    lua_pushnil(L);
    while (lua_next(L, t)) {                /* key, value */
      if (fix_value(L, &k)) {
        lua_pushvalue(L, t + 1);
        lua_pushinteger(L, k);
        lua_rawset(L, t);    /* changing an existing field: lua_next is ok */
      }
      lua_pop(L, 1);
    }
    return 0;
  }
  n = (lua_Integer)lua_rawlen(L, t);       /* cjson arrays have no holes */
  if (n <= 2 && !lua_isinteger(L, -1) && lua_type(L, -1) == LUA_TNUMBER &&
      isnan(lua_tonumber(L, -1))) {
    lua_pop(L, 1);
    if (n == 2) {                          /* [nan,"digits"] */
      lua_rawgeti(L, t, 2);
      if (lua_stringtonumber(L, lua_tostring(L, -1)) == 0)
        lua_pushinteger(L, 0);             /* never: the scan checked it */
      *big = lua_tointeger(L, -1);         /* exact: it fits 64 bits */
      lua_pop(L, 2);
      return 1;
    }
    lua_pushnil(L);                        /* [nan] was [] */
    lua_rawseti(L, t, 1);
  } else {
    lua_pop(L, 1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, t, i);
      if (fix_value(L, &k)) {
        lua_pushinteger(L, k);
        lua_rawseti(L, t, i);
      }
      lua_pop(L, 1);
    }
  }
  lua_pushvalue(L, UV_ARRAY);
  lua_setmetatable(L, t);
  return 0;
}

/* cjson names tokens by its enum (T_ARR_END); users read JSON. */
static const char *const token_names[][2] = {
  {"T_OBJ_BEGIN", "'{'"}, {"T_OBJ_END", "'}'"}, {"T_ARR_BEGIN", "'['"},
  {"T_ARR_END", "']'"}, {"T_STRING", "a string"}, {"T_NUMBER", "a number"},
  {"T_BOOLEAN", "a boolean"}, {"T_NULL", "null"}, {"T_COLON", "':'"},
  {"T_COMMA", "','"}, {"T_END", "the end"}, {NULL, NULL}
};

/* Pushes "json.decode: " and msg, its first letter lowered (cjson's are
** capitalised) and its token names made readable. */
static void push_message(lua_State *L, const char *msg) {
  luaL_Buffer b;
  const char *t;
  if (msg == NULL) msg = "error object is not a string";
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "json.decode: ");
  if (*msg >= 'A' && *msg <= 'Z')
    luaL_addchar(&b, (char)(*msg++ - 'A' + 'a'));
  while ((t = strstr(msg, "T_")) != NULL) {
    int i;
    size_t n = 2;
    while ((t[n] >= 'A' && t[n] <= 'Z') || t[n] == '_') n++;
    luaL_addlstring(&b, msg, (size_t)(t - msg));
    for (i = 0; token_names[i][0]; i++)
      if (strlen(token_names[i][0]) == n &&
          memcmp(token_names[i][0], t, n) == 0) break;
    if (token_names[i][0]) luaL_addstring(&b, token_names[i][1]);
    else luaL_addlstring(&b, t, n);
    msg = t + n;
  }
  luaL_addstring(&b, msg);
  luaL_pushresult(&b);
}

/* Raises "json.decode: msg" at the caller's line, or returns nil, msg. */
static int decode_fail(lua_State *L, int safe, const char *msg) {
  if (safe) {
    lua_pushnil(L);
    push_message(L, msg);
    return 2;
  }
  luaL_where(L, 1);
  push_message(L, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

/* The scan rejected the text or the rewritten text failed: let strict
** cjson read the original text, for its message and its positions. */
static int decode_strict(lua_State *L, int safe, const char *msg) {
  lua_pushvalue(L, UV_STRICT);
  lua_pushvalue(L, 1);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) msg = lua_tostring(L, -1);
  return decode_fail(L, safe, msg);
}

static int decode(lua_State *L, int safe) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  scan_t sc;
  lua_Integer big;
  lua_settop(L, 1);
  memset(&sc, 0, sizeof sc);
  sc.text = s;
  sc.end = s + len;
  scan(&sc);
  if (sc.err) {
    char msg[80];
    snprintf(msg, sizeof msg, "%s at character %lu", sc.err,
             (unsigned long)(sc.errat - s + 1));
    return decode_strict(L, safe, msg);
  }
  lua_pushvalue(L, UV_LENIENT);
  if (sc.specials) {
    luaL_Buffer b;
    size_t n = sc.outlen;
    sc.out = luaL_buffinitsize(L, &b, n);
    scan(&sc);
    luaL_pushresultsize(&b, n);
  } else {
    lua_pushvalue(L, 1);
  }
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    if (sc.specials) return decode_strict(L, safe, lua_tostring(L, -1));
    return decode_fail(L, safe, lua_tostring(L, -1));
  }
  /* fix_table takes at most 2 slots a level, markers add one level */
  luaL_checkstack(L, 2 * sc.maxdepth + 8, "json: too deeply nested");
  if (fix_value(L, &big)) lua_pushinteger(L, big);
  return 1;
}

static int lib_decode(lua_State *L) { return decode(L, 0); }
static int lib_try_decode(lua_State *L) { return decode(L, 1); }

/* decoder(strict_decode, lenient_decode) -> decode, try_decode */
static int lib_decoder(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  luaL_getmetatable(L, ARRAY_MT);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, lib_decode, 3);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_pushcclosure(L, lib_try_decode, 3);
  return 2;
}

/* -------------------------------------------------------------- encode */

#define UV_EARRAY lua_upvalueindex(1)
#define UV_EOBJECT lua_upvalueindex(2)
#define UV_EBUFFER lua_upvalueindex(3)

typedef struct {
  char *data;
  size_t len, cap;
  int busy;          /* an encode is writing into it */
} ebuf_t;

typedef struct {
  lua_State *L;
  ebuf_t *b;
  int indent;        /* spaces per level; 0: compact */
  int sort;          /* object keys in byte order */
  int depth;
} enc_t;

static const char hexdigits[] = "0123456789abcdef";
static unsigned char escapes[256];  /* 0: as is, 'u': \u00XX, else \c */

static int meta_buffer_gc(lua_State *L) {
  ebuf_t *b = luaL_checkudata(L, 1, BUFFER_MT);
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  return 0;
}

static ebuf_t *buffer_new(lua_State *L) {
  ebuf_t *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BUFFER_MT);
  return b;
}

/* All encode errors come here: the shared buffer is released first. */
static int enc_error(enc_t *e, const char *fmt, const char *arg) {
  e->b->busy = 0;
  return luaL_error(e->L, fmt, arg);
}

static char *enc_reserve(enc_t *e, size_t n) {
  ebuf_t *b = e->b;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    char *p;
    while (cap - b->len < n) cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL) enc_error(e, "json.encode: %s", "not enough memory");
    b->data = p;
    b->cap = cap;
  }
  return b->data + b->len;
}

static void enc_raw(enc_t *e, const char *s, size_t n) {
  memcpy(enc_reserve(e, n), s, n);
  e->b->len += n;
}

static void enc_char(enc_t *e, char c) {
  *enc_reserve(e, 1) = c;
  e->b->len++;
}

static void enc_newline(enc_t *e, int level) {
  size_t n = (size_t)e->indent * (size_t)level;
  char *p = enc_reserve(e, n + 1);
  *p = '\n';
  memset(p + 1, ' ', n);
  e->b->len += n + 1;
}

/* A string escapes to at most 6 bytes a byte: reserve for a chunk at a
** time, so that a long string does not reserve 6 times its size. */
#define STRING_CHUNK 4096

static void enc_string(enc_t *e, const char *s, size_t n) {
  size_t chunk = n < STRING_CHUNK ? n : STRING_CHUNK, i;
  char *o = enc_reserve(e, chunk * 6 + 2);
  *o++ = '"';
  for (;;) {
    for (i = 0; i < chunk; i++) {
      unsigned char c = (unsigned char)s[i], x = escapes[c];
      if (x == 0) {
        *o++ = (char)c;
      } else if (x == 'u') {
        memcpy(o, "\\u00", 4);
        o[4] = hexdigits[c >> 4];
        o[5] = hexdigits[c & 15];
        o += 6;
      } else {
        o[0] = '\\';
        o[1] = (char)x;
        o += 2;
      }
    }
    s += chunk;
    n -= chunk;
    e->b->len = (size_t)(o - e->b->data);
    if (n == 0) break;
    chunk = n < STRING_CHUNK ? n : STRING_CHUNK;
    o = enc_reserve(e, chunk * 6 + 1);
  }
  *o = '"';
  e->b->len++;
}

/* Writes v in decimal into buf[24] and returns the length. */
static size_t fmt_integer(char *buf, lua_Integer v) {
  char tmp[24], *p = tmp + sizeof tmp;
  lua_Unsigned u = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
  size_t n;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  n = (size_t)(tmp + sizeof tmp - p);
  memcpy(buf, p, n);
  return n;
}

/* Writes d into buf[32]: integral values as integers, others with the
** fewest digits (15 to 17) that read back as the same double. */
static size_t fmt_float(enc_t *e, char *buf, double d) {
  lua_Integer k;
  char point;
  int n, prec;
  if (isnan(d) || isinf(d))
    enc_error(e, "json.encode: cannot encode %s", isnan(d) ? "NaN"
              : d > 0 ? "inf" : "-inf");
  if (to_integer(d, &k)) return fmt_integer(buf, k);
  for (prec = 15; ; prec++) {
    n = snprintf(buf, 32, "%.*g", prec, d);
    if (prec == 17 || strtod(buf, NULL) == d) break;
  }
  point = localeconv()->decimal_point[0];   /* "%g" follows LC_NUMERIC */
  if (point != '.') {
    char *p = memchr(buf, point, (size_t)n);
    if (p) *p = '.';
  }
  return (size_t)n;
}

static void enc_value(enc_t *e);

/* A plain table's JSON shape, as cjson decides it: n > 0 when every key
** is a positive integer (n: the largest, holes become null), 0 when
** empty, -1 for an object. Too sparse arrays ({[1000] = x}) become
** objects rather than 1000-element arrays. */
static lua_Integer array_length(lua_State *L, int t) {
  lua_Integer max = 0, items = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k > max) max = k;
      items++;
    } else {
      lua_pop(L, 1);
      return -1;
    }
  }
  if (max > 10 && (lua_Unsigned)max > 2 * (lua_Unsigned)items) return -1;
  return max;
}

/* The key at index k as the text of a JSON key, pushed as a string. */
static const char *key_string(enc_t *e, int k, size_t *len) {
  lua_State *L = e->L;
  char buf[32];
  switch (lua_type(L, k)) {
    case LUA_TSTRING:
      lua_pushvalue(L, k);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, k))
        lua_pushlstring(L, buf, fmt_integer(buf, lua_tointeger(L, k)));
      else
        lua_pushlstring(L, buf, fmt_float(e, buf, lua_tonumber(L, k)));
      break;
    default:
      enc_error(e, "json.encode: cannot encode a %s as an object key",
                luaL_typename(L, k));
  }
  return lua_tolstring(L, -1, len);
}

/* The key at index k and the colon. */
static void enc_key(enc_t *e, int k) {
  lua_State *L = e->L;
  size_t n;
  if (lua_type(L, k) == LUA_TSTRING) {
    const char *s = lua_tolstring(L, k, &n);
    enc_string(e, s, n);
  } else {
    const char *s = key_string(e, k, &n);
    enc_string(e, s, n);
    lua_pop(L, 1);
  }
  if (e->indent) enc_raw(e, ": ", 2);
  else enc_char(e, ':');
}

typedef struct { const char *s; size_t len; lua_Integer i; } skey_t;

static int skey_cmp(const void *a, const void *b) {
  const skey_t *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* The members of the object at t, keys in byte order; returns how many. */
static lua_Integer enc_object_sorted(enc_t *e, int t) {
  lua_State *L = e->L;
  lua_Integer n = 0, i;
  skey_t *keys;
  int k;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    n++;
  }
  keys = lua_newuserdatauv(L, (size_t)n * sizeof *keys + 1, 0);
  lua_createtable(L, (int)n * 2, 0);      /* t, keys, strings+originals */
  k = lua_gettop(L);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    keys[i].s = key_string(e, -1, &keys[i].len);  /* anchored in k */
    lua_rawseti(L, k, 2 * i + 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, k, 2 * i + 2);
    keys[i].i = i;
    i++;
  }
  qsort(keys, (size_t)n, sizeof *keys, skey_cmp);
  for (i = 0; i < n; i++) {
    if (i) enc_char(e, ',');
    if (e->indent) enc_newline(e, e->depth);
    enc_string(e, keys[i].s, keys[i].len);
    if (e->indent) enc_raw(e, ": ", 2);
    else enc_char(e, ':');
    lua_rawgeti(L, k, 2 * keys[i].i + 2);
    lua_rawget(L, t);
    enc_value(e);
  }
  lua_pop(L, 2);
  return n;
}

static void enc_table(enc_t *e) {
  lua_State *L = e->L;
  int t = lua_gettop(L), object = 0;
  lua_Integer n = -1, i;
  if (e->depth >= MAX_DEPTH)
    enc_error(e, "json.encode: %s", "tables nested deeper than 1000 "
              "(a reference cycle?)");
  luaL_checkstack(L, 8, "json.encode: too deeply nested");
  if (lua_getmetatable(L, t)) {
    if (lua_rawequal(L, -1, UV_EARRAY)) n = (lua_Integer)lua_rawlen(L, t);
    else if (lua_rawequal(L, -1, UV_EOBJECT)) object = 1;
    lua_pop(L, 1);
  }
  if (n < 0 && !object) {
    n = array_length(L, t);
    if (n == 0) {                  /* an empty plain table: an object */
      enc_raw(e, "{}", 2);
      return;
    }
  }
  e->depth++;
  if (n >= 0) {
    enc_char(e, '[');
    for (i = 1; i <= n; i++) {
      if (i > 1) enc_char(e, ',');
      if (e->indent) enc_newline(e, e->depth);
      lua_rawgeti(L, t, i);
      enc_value(e);
    }
    e->depth--;
    if (e->indent && n > 0) enc_newline(e, e->depth);
    enc_char(e, ']');
    return;
  }
  enc_char(e, '{');
  if (e->sort) {
    i = enc_object_sorted(e, t);
  } else {
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {       /* key, value */
      if (i++) enc_char(e, ',');
      if (e->indent) enc_newline(e, e->depth);
      enc_key(e, t + 1);
      enc_value(e);
    }
  }
  e->depth--;
  if (e->indent && i > 0) enc_newline(e, e->depth);
  enc_char(e, '}');
}

/* Encodes the value at the top and pops it. */
static void enc_value(enc_t *e) {
  lua_State *L = e->L;
  char buf[32];
  switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      enc_string(e, s, n);
      break;
    }
    case LUA_TNUMBER:
      if (lua_isinteger(L, -1))
        enc_raw(e, buf, fmt_integer(buf, lua_tointeger(L, -1)));
      else
        enc_raw(e, buf, fmt_float(e, buf, lua_tonumber(L, -1)));
      break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, -1)) enc_raw(e, "true", 4);
      else enc_raw(e, "false", 5);
      break;
    case LUA_TNIL:
      enc_raw(e, "null", 4);
      break;
    case LUA_TTABLE:
      enc_table(e);
      break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, -1) == NULL) {   /* json.null, cjson.null */
        enc_raw(e, "null", 4);
        break;
      }
    /* FALLTHROUGH */
    default:
      enc_error(e, "json.encode: cannot encode a %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static int opt_field(lua_State *L, const char *name) {
  int v;
  lua_getfield(L, 2, name);
  v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* encode(value [, {pretty=, indent=, sort_keys=}]) -> string */
static int lib_encode(lua_State *L) {
  enc_t e;
  memset(&e, 0, sizeof e);
  e.L = L;
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (opt_field(L, "pretty")) {
      e.indent = 2;
      e.sort = 1;
    }
    lua_getfield(L, 2, "indent");
    if (!lua_isnil(L, -1)) {
      lua_Integer n = lua_tointeger(L, -1);
      luaL_argcheck(L, lua_isinteger(L, -1) && n >= 0 && n <= 16, 2,
                    "indent must be an integer from 0 to 16");
      e.indent = (int)n;
    }
    lua_getfield(L, 2, "sort_keys");
    if (!lua_isnil(L, -1)) e.sort = lua_toboolean(L, -1);
  }
  lua_settop(L, 1);
  e.b = lua_touserdata(L, UV_EBUFFER);
  if (e.b->busy) e.b = buffer_new(L);      /* nested call: a fresh one */
  e.b->busy = 1;
  e.b->len = 0;
  lua_pushvalue(L, 1);
  enc_value(&e);
  lua_pushlstring(L, e.b->data, e.b->len);
  e.b->busy = 0;
  if (e.b->cap > KEEP_BUFFER) {
    free(e.b->data);
    e.b->data = NULL;
    e.b->len = e.b->cap = 0;
  }
  return 1;
}

/* -------------------------------------------------------------- module */

static void init_tables(void) {
  int c;
  if (cclass[' ']) return;
  cclass[' '] = cclass['\t'] = cclass['\n'] = cclass['\r'] = C_WS;
  cclass[','] = cclass[':'] = C_PUNCT;
  cclass['{'] = C_OPEN;
  cclass['['] = C_ARRAY;
  cclass['}'] = cclass[']'] = C_CLOSE;
  cclass['"'] = C_QUOTE;
  cclass['-'] = C_NUM;
  for (c = '0'; c <= '9'; c++) cclass[c] = C_NUM;
  cclass['t'] = cclass['f'] = cclass['n'] = C_WORD;
  string_stop['"'] = string_stop['\\'] = string_stop[0] = 1;
  for (c = 0; c < 0x20; c++) escapes[c] = 'u';
  escapes['\b'] = 'b';
  escapes['\f'] = 'f';
  escapes['\n'] = 'n';
  escapes['\r'] = 'r';
  escapes['\t'] = 't';
  escapes['"'] = '"';
  escapes['\\'] = '\\';
  escapes[0x7f] = 'u';
}

static void new_marker(lua_State *L, const char *name, const char *type) {
  luaL_newmetatable(L, name);         /* sets __name: tostring shows it */
  lua_pushstring(L, type);
  lua_setfield(L, -2, "__jsontype");  /* dkjson's convention */
}

int luaopen_json_aux(lua_State *L) {
  init_tables();
  lua_newtable(L);
  new_marker(L, ARRAY_MT, "array");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "array_mt");
  new_marker(L, OBJECT_MT, "object");
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "object_mt");
  if (luaL_newmetatable(L, BUFFER_MT)) {
    lua_pushcfunction(L, meta_buffer_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  buffer_new(L);                      /* module, array_mt, object_mt, buf */
  lua_pushcclosure(L, lib_encode, 3);
  lua_setfield(L, -2, "encode");
  lua_pushcfunction(L, lib_decoder);
  lua_setfield(L, -2, "decoder");
  return 1;
}
