/*
** http_parse.c -- "http.parser": the strict HTTP/1.1 request parser that
** lua/http/server.lua runs on the bytes a connection has received.
** Stateless: each call parses from an index into a Lua string and either
** answers "need more", fills the request table, or refuses with a status.
** Nothing is kept between calls, so a head is re-scanned when more bytes
** arrive; the server only calls again when a new line has ended, and a
** head has at most max_fields lines, so a slow client costs
** O(max_fields * max_head) at worst.
**
** Threat model: request smuggling and desynchronisation (RFC 9112 section
** 11.2). Everything a front end and this server could read differently is
** refused with 400 and the connection is closed by the caller:
** Content-Length with Transfer-Encoding, more than one Content-Length
** (even equal ones), a Content-Length that is not only digits, a
** Transfer-Encoding other than "chunked", obs-fold, whitespace between a
** field name and its colon, a CR not followed by LF, a bare LF, NUL and
** other control bytes (HTAB is allowed in values), a missing or repeated
** Host in HTTP/1.1, chunk sizes that are empty, signed, spaced or too long.
** The module is in the core binary: serving HTTP never loads libcurl.
** "http.fs" (at the end) gives the static file server (scripts/
** http_serve.lua) the three file-system calls Lua lacks: realpath, stat
** and a directory listing.
*/
#include "netsh.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* RFC 9110 tchar: the bytes of a token (method, field name) */
static const unsigned char tchar[256] = {
  ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
  ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
  ['`'] = 1, ['|'] = 1, ['~'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
  ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
  ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
  ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
  ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
  ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
  ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
  ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
  ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
  ['y'] = 1, ['z'] = 1,
};

/* a field value byte: VCHAR, SP, HTAB, obs-text; never CTL or DEL */
#define VALCHAR(c) ((c) >= 0x20 ? (c) != 0x7f : (c) == '\t')

/* The first byte of s[p, q) that is not VALCHAR, or q. Eight bytes at a
** time while none is below 0x20 or is DEL (the "has a byte less than n"
** and "has a zero byte" word tricks: exact about whether there is one,
** not about where), then byte by byte from the word that has one (a
** HTAB, most often). A head's checks were half the parser's time. */
static size_t valchar_span(const char *s, size_t p, size_t q) {
  const uint64_t ones = 0x0101010101010101u;
  const uint64_t highs = 0x8080808080808080u;
  while (q - p >= 8) {
    uint64_t w, x;
    memcpy(&w, s + p, 8);
    x = w ^ (ones * 0x7f);
    if (((w - ones * 0x20) & ~w & highs) | ((x - ones) & ~x & highs)) break;
    p += 8;
  }
  for (; p < q; p++) {
    if (!VALCHAR((unsigned char)s[p])) return p;
  }
  return q;
}

typedef struct {
  int status;          /* 0: fine; else the status to answer */
  const char *reason;
} perr_t;

static int fail(perr_t *e, int status, const char *reason) {
  e->status = status;
  e->reason = reason;
  return -1;
}

/* The end of the line starting at p (the index of its LF), or -1 when no
** LF is there yet. A line must end in CRLF: a bare LF or a CR elsewhere is
** an error, reported as -2 with e set. */
static long line_end(const char *s, size_t n, size_t p, perr_t *e) {
  const char *lf = memchr(s + p, '\n', n - p);
  size_t i;
  if (lf == NULL) return -1;
  i = (size_t)(lf - s);
  if (i == p || s[i - 1] != '\r') return fail(e, 400, "bare LF"), -2;
  return (long)i;
}

static int ieq(const char *a, size_t n, const char *lit) {
  size_t i, m = strlen(lit);
  if (n != m) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)a[i];
    if (c >= 'A' && c <= 'Z') c += 32;
    if (c != (unsigned char)lit[i]) return 0;
  }
  return 1;
}

/* One field line s[p..q) (q: the CR). Checks the name (a token, the colon
** right after it), the value bytes (no CTL but HTAB, no lone CR), and
** trims the value's OWS. Returns 0 and the parts, or -1 with e set. */
static int field_line(const char *s, size_t p, size_t q, size_t *nend,
                      size_t *v, size_t *vend, perr_t *e) {
  size_t i = p;
  unsigned char c = (unsigned char)s[p];
  if (c == ' ' || c == '\t') return fail(e, 400, "obs-fold");
  while (i < q && tchar[(unsigned char)s[i]]) i++;
  if (i == p) return fail(e, 400, "bad field name");
  if (i == q || s[i] != ':') {
    c = (unsigned char)s[i];
    if (c == ' ' || c == '\t') return fail(e, 400, "space before colon");
    return fail(e, 400, "bad field name");
  }
  *nend = i++;
  while (i < q && (s[i] == ' ' || s[i] == '\t')) i++;
  *v = i;
  if ((i = valchar_span(s, i, q)) < q) {
    return fail(e, 400, s[i] == '\r' ? "bare CR" : "control byte in field");
  }
  while (q > *v && (s[q - 1] == ' ' || s[q - 1] == '\t')) q--;
  *vend = q;
  return 0;
}

/* the comma-separated list s[a..b) contains token tok (case-blind) */
static int has_token(const char *s, size_t a, size_t b, const char *tok) {
  while (a < b) {
    size_t x, y;
    while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == ',')) a++;
    x = a;
    while (a < b && s[a] != ',') a++;
    y = a;
    while (y > x && (s[y - 1] == ' ' || s[y - 1] == '\t')) y--;
    if (y > x && ieq(s + x, y - x, tok)) return 1;
  }
  return 0;
}

/* pushes s[a..b) lower-cased (field names are short: a stack buffer) */
static void push_lower(lua_State *L, const char *s, size_t a, size_t b) {
  char small[64];
  luaL_Buffer B;
  char *d;
  size_t n = b - a, i;
  d = n <= sizeof small ? small : luaL_buffinitsize(L, &B, n);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[a + i];
    d[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
  }
  if (d == small) lua_pushlstring(L, small, n);
  else luaL_pushresultsize(&B, n);
}

/* headers table at index h, name on top: appends value v (repeats are
** joined with ", " in h and kept apart in req._multi[name]) */
static void add_field(lua_State *L, int req, int h, const char *val,
                      size_t vn) {
  int name = lua_gettop(L);
  lua_pushvalue(L, name);
  if (lua_rawget(L, h) == LUA_TNIL) {      /* ... name, old */
    lua_pop(L, 1);
    lua_pushlstring(L, val, vn);
    lua_rawset(L, h);
    return;
  }
  /* a repeat: ... name, old */
  if (lua_getfield(L, req, "_multi") == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, req, "_multi");
  }                                         /* ... name, old, multi */
  lua_pushvalue(L, name);
  if (lua_rawget(L, -2) == LUA_TNIL) {      /* first repeat: {old} */
    lua_pop(L, 1);
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, -3);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, name);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
  }                                         /* ... name, old, multi, list */
  lua_pushlstring(L, val, vn);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  lua_pop(L, 2);                            /* ... name, old */
  lua_pushliteral(L, ", ");
  lua_pushlstring(L, val, vn);
  lua_concat(L, 3);                         /* ... name, joined */
  lua_rawset(L, h);
}

/*
** request(buf, pos, mt, max_head, max_fields)
**   -> next, length, keepalive, expect, req
**   -> nil                          no complete head yet
**   -> false, status, reason        refuse (the caller closes after it)
** next: the index just past the head. length: the body's Content-Length,
** 0 for none, -1 for chunked. req: a new table (room for a dozen
** fields, metatable mt unless mt is nil) with method, target, path,
** query_string (raw, or nil), version ("1.1" | "1.0") and headers
** (lower-case names; its metatable lowers the keys of lookups).
** Up to two CRLFs before the request line are skipped (RFC 9112 2.2).
*/
static int lib_request(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer pos = luaL_checkinteger(L, 2);
  lua_Integer max_head = luaL_optinteger(L, 4, 16384);
  lua_Integer max_fields = luaL_optinteger(L, 5, 100);
  size_t p, start, q, i, sp1, sp2, nend, v, vend;
  long le;
  perr_t e = {0, NULL};
  int h, req, skip = 0, v11, nfields = 0, ncl = 0, nte = 0, nhost = 0;
  int chunked = 0, conn_close = 0, conn_ka = 0, expect = 0;
  lua_Integer clen = 0;
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  if (pos < 1) pos = 1;
  p = (size_t)pos - 1;
  if (p > n) p = n;
  while (skip < 2 && n - p >= 2 && s[p] == '\r' && s[p + 1] == '\n') {
    p += 2;
    skip++;
  }
  start = p;
  /* request-line = method SP request-target SP HTTP-version CRLF */
  le = line_end(s, n, p, &e);
  if (le == -2) goto refuse;
  if (le == -1) {
    if ((lua_Integer)(n - start) > max_head) {
      fail(&e, 414, "request line too long");
      goto refuse;
    }
    return 0;
  }
  q = (size_t)le - 1;                       /* the CR */
  if ((lua_Integer)(q - start) > max_head) {
    fail(&e, 414, "request line too long");
    goto refuse;
  }
  for (i = p; i < q && tchar[(unsigned char)s[i]]; i++) {}
  if (i == p || i == q || s[i] != ' ') {
    fail(&e, 400, "bad request line");
    goto refuse;
  }
  sp1 = i;
  for (i = sp1 + 1; i < q; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f) break;
  }
  if (i == sp1 + 1 || i == q || s[i] != ' ') {
    fail(&e, 400, "bad request line");
    goto refuse;
  }
  sp2 = i;
  if (q - sp2 - 1 != 8 || memcmp(s + sp2 + 1, "HTTP/1.", 7) != 0 ||
      (s[q - 1] != '0' && s[q - 1] != '1')) {
    if (q - sp2 - 1 == 8 && memcmp(s + sp2 + 1, "HTTP/", 5) == 0 &&
        s[q - 3] >= '0' && s[q - 3] <= '9' && s[q - 2] == '.' &&
        s[q - 1] >= '0' && s[q - 1] <= '9') {
      fail(&e, 505, "HTTP version not supported");
    } else {
      fail(&e, 400, "bad request line");
    }
    goto refuse;
  }
  v11 = s[q - 1] == '1';
  /* the fields: scan first, fill the table only for a complete head */
  p = (size_t)le + 1;
  for (;;) {
    le = line_end(s, n, p, &e);
    if (le == -2) goto refuse;
    if (le == -1) {
      if ((lua_Integer)(n - start) > max_head) {
        fail(&e, 431, "request header fields too large");
        goto refuse;
      }
      return 0;
    }
    if ((lua_Integer)((size_t)le + 1 - start) > max_head) {
      fail(&e, 431, "request header fields too large");
      goto refuse;
    }
    q = (size_t)le - 1;
    if (q == p) break;                      /* the empty line */
    if (++nfields > max_fields) {
      fail(&e, 431, "too many header fields");
      goto refuse;
    }
    if (field_line(s, p, q, &nend, &v, &vend, &e) < 0) goto refuse;
    if (ieq(s + p, nend - p, "content-length")) {
      lua_Integer x = 0;
      if (++ncl > 1) {
        fail(&e, 400, "duplicate Content-Length");
        goto refuse;
      }
      if (vend == v || vend - v > 18) {
        fail(&e, 400, "bad Content-Length");
        goto refuse;
      }
      for (i = v; i < vend; i++) {
        if (s[i] < '0' || s[i] > '9') {
          fail(&e, 400, "bad Content-Length");
          goto refuse;
        }
        x = x * 10 + (s[i] - '0');
      }
      clen = x;
    } else if (ieq(s + p, nend - p, "transfer-encoding")) {
      if (++nte > 1) {
        fail(&e, 400, "repeated Transfer-Encoding");
        goto refuse;
      }
      if (!ieq(s + v, vend - v, "chunked")) {
        fail(&e, has_token(s, v, vend, "chunked") ? 400 : 501,
             "unsupported Transfer-Encoding");
        goto refuse;
      }
      chunked = 1;
    } else if (ieq(s + p, nend - p, "host")) {
      nhost++;
    } else if (ieq(s + p, nend - p, "connection")) {
      if (has_token(s, v, vend, "close")) conn_close = 1;
      if (has_token(s, v, vend, "keep-alive")) conn_ka = 1;
    } else if (ieq(s + p, nend - p, "expect")) {
      if (!ieq(s + v, vend - v, "100-continue")) {
        fail(&e, 417, "expectation failed");
        goto refuse;
      }
      expect = 1;
    }
    p = (size_t)le + 1;
  }
  if (ncl && nte) {
    fail(&e, 400, "Content-Length with Transfer-Encoding");
    goto refuse;
  }
  if (nte && !v11) {
    fail(&e, 400, "Transfer-Encoding in HTTP/1.0");
    goto refuse;
  }
  if (v11 ? nhost != 1 : nhost > 1) {
    fail(&e, 400, nhost ? "repeated Host" : "missing Host");
    goto refuse;
  }
  /* the head is valid: make req */
  lua_settop(L, 3);
  lua_createtable(L, 0, 12);
  req = lua_gettop(L);
  if (!lua_isnil(L, 3)) {
    lua_pushvalue(L, 3);
    lua_setmetatable(L, req);
  }
  lua_pushlstring(L, s + start, sp1 - start);
  lua_setfield(L, req, "method");
  lua_pushlstring(L, s + sp1 + 1, sp2 - sp1 - 1);
  lua_setfield(L, req, "target");
  {
    const char *t = s + sp1 + 1;
    const char *qm = memchr(t, '?', sp2 - sp1 - 1);
    if (qm) {
      lua_pushlstring(L, t, (size_t)(qm - t));
      lua_setfield(L, req, "path");
      lua_pushlstring(L, qm + 1, (size_t)(s + sp2 - qm - 1));
      lua_setfield(L, req, "query_string");
    } else {
      lua_pushlstring(L, t, sp2 - sp1 - 1);
      lua_setfield(L, req, "path");
    }
  }
  lua_pushstring(L, v11 ? "1.1" : "1.0");
  lua_setfield(L, req, "version");
  lua_createtable(L, 0, nfields);
  h = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setmetatable(L, h);
  p = (size_t)line_end(s, n, start, &e) + 1;
  for (;;) {
    q = (size_t)line_end(s, n, p, &e) - 1;
    if (q == p) break;
    field_line(s, p, q, &nend, &v, &vend, &e);
    push_lower(L, s, p, nend);
    add_field(L, req, h, s + v, vend - v);
    p = q + 2;
  }
  lua_setfield(L, req, "headers");
  lua_pushinteger(L, (lua_Integer)(p + 2) + 1);
  lua_pushinteger(L, chunked ? -1 : clen);
  lua_pushboolean(L, v11 ? !conn_close : (conn_ka && !conn_close));
  lua_pushboolean(L, expect);
  lua_pushvalue(L, req);
  return 5;
refuse:
  lua_pushboolean(L, 0);
  lua_pushinteger(L, e.status);
  lua_pushstring(L, e.reason);
  return 3;
}

/*
** chunk(buf, pos) -> size, next | nil (line incomplete) | false, reason
** A chunk-size line: 1 to 15 hex digits, optional extensions (';' then
** value bytes, ignored), CRLF. Nothing before the digits.
*/
static int lib_chunk(lua_State *L) {
  size_t n, p, i;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer pos = luaL_checkinteger(L, 2);
  lua_Integer size = 0;
  long le;
  perr_t e = {0, NULL};
  p = pos < 1 ? 0 : (size_t)pos - 1;
  if (p > n) p = n;
  le = line_end(s, n, p, &e);
  if (le == -2) goto bad;
  if (le == -1) {
    if (n - p > 1024) goto bad;             /* no sane size line is this long */
    for (i = p; i < n; i++) {               /* refuse junk early */
      unsigned char c = (unsigned char)s[i];
      if (c != '\r' && !VALCHAR(c)) goto bad;
    }
    return 0;
  }
  for (i = p; i < (size_t)le - 1; i++) {
    unsigned char c = (unsigned char)s[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else break;
    if (i - p >= 15) goto bad;
    size = size * 16 + d;
  }
  if (i == p) goto bad;
  if (i < (size_t)le - 1) {
    if (s[i] != ';' && s[i] != ' ' && s[i] != '\t') goto bad;
    while (s[i] == ' ' || s[i] == '\t') i++;  /* BWS before ';' */
    if (s[i] != ';') goto bad;
    for (; i < (size_t)le - 1; i++) {
      if (!VALCHAR((unsigned char)s[i])) goto bad;
    }
  }
  lua_pushinteger(L, size);
  lua_pushinteger(L, (lua_Integer)le + 2);
  return 2;
bad:
  lua_pushboolean(L, 0);
  lua_pushliteral(L, "bad chunk size");
  return 2;
}

/*
** trailers(buf, pos, max) -> next | nil | false, reason
** The trailer section after the last chunk: field lines (checked as in a
** head, then dropped) and the empty line; at most max bytes.
*/
static int lib_trailers(lua_State *L) {
  size_t n, p, start, q, nend, v, vend;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer pos = luaL_checkinteger(L, 2);
  lua_Integer max = luaL_optinteger(L, 3, 16384);
  long le;
  perr_t e = {0, NULL};
  p = pos < 1 ? 0 : (size_t)pos - 1;
  if (p > n) p = n;
  start = p;
  for (;;) {
    le = line_end(s, n, p, &e);
    if (le == -2) goto bad;
    if (le == -1) {
      if ((lua_Integer)(n - start) > max) {
        fail(&e, 431, "trailers too large");
        goto bad;
      }
      return 0;
    }
    q = (size_t)le - 1;
    if (q == p) break;
    if (field_line(s, p, q, &nend, &v, &vend, &e) < 0) goto bad;
    p = (size_t)le + 1;
  }
  lua_pushinteger(L, (lua_Integer)le + 2);
  return 1;
bad:
  lua_pushboolean(L, 0);
  lua_pushstring(L, e.reason);
  return 2;
}

/*
** The client side: response(buf, pos)
**   -> next, status, minor, reason, head, clen, flags, encoding, location,
**      status_line
**   -> nil                          no complete head yet
**   -> false, why                   refused ("bad response: ...")
** A response head from pos: the status line "HTTP/1.x NNN reason" (1.0
** or 1.1; the reason may be missing), then field lines, then an empty
** line. Lines end in CRLF or a bare LF (as curl reads them); a lone CR,
** NUL and other control bytes but HTAB, and obs-fold (a line starting
** with SP or HTAB) are refused, as are the Content-Length oddities
** lua/http.lua's curl path refuses (differing or non-numeric values,
** Content-Length with Transfer-Encoding; identical repeats are fine).
** Caps as curl's: one line at most 100 KiB, the head 300 KiB.
** next: the index just past the head; head: the field lines as received
** (no status line, no empty line); clen: Content-Length or -1; flags:
** RF_* below; encoding, location: those fields' values (trimmed) or nil.
*/
#define RESP_MAX_LINE (100 * 1024)
#define BAD_09 "bad response: received HTTP/0.9 when not allowed"
#define BAD_VERSION "bad response: unsupported HTTP version in response"
#define RESP_MAX_HEAD (300 * 1024)
enum {
  RF_CHUNKED = 1,      /* Transfer-Encoding ends in chunked */
  RF_CLOSE = 2,        /* Connection: close */
  RF_KEEPALIVE = 4,    /* Connection: keep-alive */
  RF_COOKIE = 8,       /* a Set-Cookie field */
  RF_TE = 16           /* a Transfer-Encoding field */
};

/* the last token of the list s[a..b) is tok */
static int last_token(const char *s, size_t a, size_t b, const char *tok) {
  size_t x = b;
  while (x > a && s[x - 1] != ',') x--;
  while (x < b && (s[x] == ' ' || s[x] == '\t')) x++;
  return ieq(s + x, b - x, tok);
}

static int resp_bad(lua_State *L, const char *why) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, why);
  return 2;
}

static int lib_response(lua_State *L) {
  size_t n, p, start, q, le, i, hstart = 0, hend = 0, v, vend, nend,
    slend = 0;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer pos = luaL_checkinteger(L, 2);
  lua_Integer clen = -1;
  int status = 0, minor, flags = 0;
  size_t enc = 0, encend = 0, loc = 0, locend = 0;
  int has_enc = 0, has_loc = 0;
  const char *lf;
  p = pos < 1 ? 0 : (size_t)pos - 1;
  if (p > n) p = n;
  start = p;
  for (;;) {                          /* every line of the head, checked */
    lf = memchr(s + p, '\n', n - p);
    if (lf == NULL) {
      if (n - p > RESP_MAX_LINE)
        return resp_bad(L, "bad response: header too large (limit 100 "
                        "KiB)");
      if (n - start > RESP_MAX_HEAD)
        return resp_bad(L, "bad response: headers too large (limit 300 "
                        "KiB)");
      for (i = p; i < n; i++) {       /* refuse junk early */
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
          return resp_bad(L, "bad response: control character in header");
      }
      return 0;
    }
    le = (size_t)(lf - s);            /* the LF */
    q = le > p && s[le - 1] == '\r' ? le - 1 : le;   /* the line's end */
    if (q - p > RESP_MAX_LINE)
      return resp_bad(L, "bad response: header too large (limit 100 KiB)");
    if (le + 1 - start > RESP_MAX_HEAD)
      return resp_bad(L, "bad response: headers too large (limit 300 KiB)");
    if (valchar_span(s, p, q) < q)
      return resp_bad(L, "bad response: control character in header");
    if (p == start) {                 /* the status line */
      /* refused with curl 7.88's words: a line not starting with
      ** "HTTP/" is HTTP/0.9 to it; then its sscanf " HTTP/%1d.%1d%c%3d%c"
      ** (HTTP/2 and /3 lines, which it takes, are refused here) */
      if (q - p < 5 || memcmp(s + p, "HTTP/", 5) != 0)
        return resp_bad(L, BAD_09);
      if (q - p < 10 || s[p + 5] < '0' || s[p + 5] > '9' ||
          s[p + 6] != '.' || s[p + 7] < '0' || s[p + 7] > '9' ||
          s[p + 8] != ' ' || s[p + 9] < '0' || s[p + 9] > '9')
        return resp_bad(L, BAD_VERSION);
      for (i = p + 9; i < q && i < p + 12 && s[i] >= '0' && s[i] <= '9';
           i++)
        status = status * 10 + (s[i] - '0');
      if (status < 100 || (i < q && s[i] >= '0' && s[i] <= '9'))
        return resp_bad(L, "bad response: unsupported response code in "
                        "HTTP response");
      if (s[p + 5] != '1' || (s[p + 7] != '0' && s[p + 7] != '1')) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "bad response: unsupported HTTP version (%c.%c) "
                        "in response", s[p + 5], s[p + 7]);
        return 2;
      }
      hstart = le + 1;
      slend = q;
    } else if (q == p) {              /* the empty line */
      hend = p;
      p = le + 1;
      break;
    } else {
      const char *colon;
      if (s[p] == ' ' || s[p] == '\t')
        return resp_bad(L, "bad response: obs-fold in header");
      colon = memchr(s + p, ':', q - p);
      if (colon != NULL) {            /* a line without one is ignored */
        nend = (size_t)(colon - s);
        while (nend > p && (s[nend - 1] == ' ' || s[nend - 1] == '\t'))
          nend--;
        v = (size_t)(colon - s) + 1;
        while (v < q && (s[v] == ' ' || s[v] == '\t')) v++;
        vend = q;
        while (vend > v && (s[vend - 1] == ' ' || s[vend - 1] == '\t'))
          vend--;
        switch (nend - p) {
          case 14:
            if (ieq(s + p, 14, "content-length")) {
              /* 1*DIGIT, or a list of them, all the same */
              lua_Integer val = -1;
              i = v;
              for (;;) {
                lua_Integer x = 0;
                while (i < vend && (s[i] == ' ' || s[i] == '\t')) i++;
                if (i < vend && s[i] == '-')      /* curl's own words */
                  return resp_bad(L, "bad response: invalid "
                                  "Content-Length: value");
                if (i == vend || s[i] < '0' || s[i] > '9')
                  return resp_bad(L, "bad response: invalid "
                                  "Content-Length");
                for (; i < vend && s[i] >= '0' && s[i] <= '9'; i++) {
                  int d = s[i] - '0';
                  if (x > (LUA_MAXINTEGER - d) / 10)
                    return resp_bad(L, "bad response: invalid "
                                    "Content-Length");
                  x = x * 10 + d;
                }
                if (val >= 0 && x != val)
                  return resp_bad(L, "bad response: differing "
                                  "Content-Length values");
                val = x;
                while (i < vend && (s[i] == ' ' || s[i] == '\t')) i++;
                if (i == vend) break;
                if (s[i++] != ',')
                  return resp_bad(L, "bad response: invalid "
                                  "Content-Length");
              }
              if (clen >= 0 && val != clen)
                return resp_bad(L, "bad response: differing "
                                "Content-Length values");
              clen = val;
            }
            break;
          case 17:
            if (ieq(s + p, 17, "transfer-encoding")) {
              flags |= RF_TE;
              if (last_token(s, v, vend, "chunked")) flags |= RF_CHUNKED;
              else flags &= ~RF_CHUNKED;
            }
            break;
          case 10:
            if (ieq(s + p, 10, "connection")) {
              if (has_token(s, v, vend, "close")) flags |= RF_CLOSE;
              if (has_token(s, v, vend, "keep-alive")) flags |= RF_KEEPALIVE;
            } else if (ieq(s + p, 10, "set-cookie")) {
              flags |= RF_COOKIE;
            }
            break;
          case 16:
            if (ieq(s + p, 16, "content-encoding")) {
              has_enc = 1;
              enc = v;
              encend = vend;
            }
            break;
          case 8:
            if (ieq(s + p, 8, "location")) {
              has_loc = 1;
              loc = v;
              locend = vend;
            }
            break;
        }
        if (clen >= 0 && (flags & RF_TE))
          return resp_bad(L, "bad response: Content-Length with "
                          "Transfer-Encoding");
      }
    }
    p = le + 1;
  }
  minor = s[start + 7] - '0';
  lua_pushinteger(L, (lua_Integer)p + 1);
  lua_pushinteger(L, status);
  lua_pushinteger(L, minor);
  {
    /* the reason: after "HTTP/1.1 200 ", trimmed */
    size_t sl = slend, r = start + 13;
    while (sl > start && (s[sl - 1] == ' ' || s[sl - 1] == '\t')) sl--;
    if (r > sl) r = sl;
    lua_pushlstring(L, s + r, sl - r);
  }
  lua_pushlstring(L, s + hstart, hend - hstart);
  lua_pushinteger(L, clen);
  lua_pushinteger(L, flags);
  if (has_enc) lua_pushlstring(L, s + enc, encend - enc);
  else lua_pushnil(L);
  if (has_loc) lua_pushlstring(L, s + loc, locend - loc);
  else lua_pushnil(L);
  lua_pushlstring(L, s + start, slend - start);
  return 10;
}

/* headers' __index: h["Content-Type"] finds "content-type" */
static int headers_index(lua_State *L) {
  size_t n, i;
  const char *k;
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  k = lua_tolstring(L, 2, &n);
  for (i = 0; i < n; i++) {
    if (k[i] >= 'A' && k[i] <= 'Z') break;
  }
  if (i == n) return 0;                     /* already lower: absent */
  push_lower(L, k, 0, n);
  lua_rawget(L, 1);
  return 1;
}

int luaopen_http_parser(lua_State *L) {
  lua_newtable(L);
  lua_newtable(L);                          /* the headers metatable */
  lua_pushcfunction(L, headers_index);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "headers_mt");
  lua_pushcclosure(L, lib_request, 1);
  lua_setfield(L, -2, "request");
  lua_pushcfunction(L, lib_chunk);
  lua_setfield(L, -2, "chunk");
  lua_pushcfunction(L, lib_trailers);
  lua_setfield(L, -2, "trailers");
  lua_pushcfunction(L, lib_response);
  lua_setfield(L, -2, "response");
  lua_pushliteral(L, "netsh/" NETSH_VERSION);   /* curl's User-Agent too */
  lua_setfield(L, -2, "user_agent");
  return 1;
}

/* ---- "http.fs" ---- */

static int fs_fail(lua_State *L, const char *what) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(errno));
  lua_pushinteger(L, errno);
  return 3;
}

/* realpath(path) -> absolute path without symlinks, . or .. | nil, err */
static int fs_realpath(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  char *r;
  if (strlen(p) != n) {
    errno = EINVAL;
    return fs_fail(L, p);
  }
  r = realpath(p, NULL);
  if (r == NULL) return fs_fail(L, p);
  lua_pushstring(L, r);
  free(r);
  return 1;
}

/* stat(path) -> {type = "file"|"directory"|"other", size, mtime} | nil, err
** (follows symlinks) */
static int fs_stat(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  struct stat st;
  if (strlen(p) != n) {
    errno = EINVAL;
    return fs_fail(L, p);
  }
  if (stat(p, &st) != 0) return fs_fail(L, p);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" :
                 S_ISDIR(st.st_mode) ? "directory" : "other");
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)st.st_mtime);
  lua_setfield(L, -2, "mtime");
  return 1;
}

/* dir(path) -> {names} (without . and ..) | nil, err */
static int fs_dir(lua_State *L) {
  size_t n;
  const char *p = luaL_checklstring(L, 1, &n);
  DIR *d;
  struct dirent *e;
  lua_Integer i = 0;
  if (strlen(p) != n) {
    errno = EINVAL;
    return fs_fail(L, p);
  }
  if ((d = opendir(p)) == NULL) return fs_fail(L, p);
  lua_newtable(L);
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
      continue;
    }
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++i);
  }
  closedir(d);
  return 1;
}

int luaopen_http_fs(lua_State *L) {
  static const luaL_Reg lib[] = {
    {"realpath", fs_realpath}, {"stat", fs_stat}, {"dir", fs_dir},
    {NULL, NULL}
  };
  luaL_newlib(L, lib);
  return 1;
}
