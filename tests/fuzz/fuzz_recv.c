/*
** fuzz_recv.c -- the receive patterns of socket_tcp.c ("*l", "*a", counts,
** receiveany, receiveuntil) against a flat model of the byte stream.
**
** socket_tcp.c is compiled in (#include), so its static recv_try and
** reader_ready run on a tcp_t that has no socket: the stream arrives in
** chunks whose boundaries the input chooses, appended to t->in as read_cb
** does, then EOF. Every result is checked against what the same receive
** must give on the whole stream, whatever the boundaries:
**   "*l"  the next line, every CR removed; at EOF nil, "closed", the rest
**   "*a"  everything up to EOF
**   N     the next N bytes; at EOF nil, "closed", the rest
**   any   1..max bytes, a prefix of what is left
**   until data before the first needle, true; or exactly max bytes with
**         no needle starting in them, false; at EOF (no needle left) nil,
**         "closed", the rest (less than max bytes plus the needle's
**         length - 1, which wait in case a match is coming)
** and a wake-up check: when reader_ready says "not yet", recv_try must
** not complete (a lost wake-up hangs the reader).
**
** Input: [nops] then per op [kind][param], [nlen][needle], [nchunks] and
** chunk lengths, then the stream.
*/
#include "../../src/socket_tcp.c"
#include <stdint.h>
#include <stdio.h>

static lua_State *L;

typedef struct {
  const uint8_t *p;
  size_t n;
} in_t;

static unsigned take(in_t *in) {
  unsigned c;
  if (in->n == 0) return 0;
  c = in->p[0];
  in->p++;
  in->n--;
  return c;
}

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_recv: check failed: %s (line %d)\n", #c, __LINE__); \
  abort(); } } while (0)

/* first match of needle in s[0, n), or NULL */
static const char *find(const char *s, size_t n, const char *nd, size_t nl) {
  return n >= nl ? memmem(s, n, nd, nl) : NULL;
}

static size_t strip_cr(char *out, const char *s, size_t n) {
  size_t i, k = 0;
  for (i = 0; i < n; i++) if (s[i] != '\r') out[k++] = s[i];
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in_t in = {data, size};
  struct tcp t;
  unsigned nops, op, nchunks, i;
  size_t chunks[16], nl, pos = 0, fed = 0, ci = 0;
  char needle[8];
  const char *stream;
  size_t slen;
  char *tmp;
  if (L == NULL) L = luaL_newstate();
  nops = take(&in) % 16 + 1;
  {
    unsigned kinds[16], params[16];
    for (op = 0; op < nops; op++) {
      kinds[op] = take(&in) % 5;
      params[op] = take(&in);
    }
    nl = take(&in) % sizeof needle + 1;
    for (i = 0; i < nl; i++) needle[i] = (char)take(&in);
    nchunks = take(&in) % 16;
    for (i = 0; i < nchunks; i++) chunks[i] = take(&in);
    stream = (const char *)in.p;
    slen = in.n;
    tmp = malloc(slen + 1);
    memset(&t, 0, sizeof t);
    for (op = 0; op < nops; op++) {
      int kind = (int)kinds[op], n;
      size_t want = params[op];
      int top;
      lua_settop(L, 0);
      lua_pushnil(L);                /* the socket's slot */
      lua_pushnil(L);                /* pattern */
      lua_pushnil(L);                /* no prefix */
      t.rscan = 0;                   /* as recv_begin */
      t.rmode = kind == 0 ? R_LINE : kind == 1 ? R_ALL : kind == 2 ? R_COUNT
              : kind == 3 ? R_ANY : R_UNTIL;
      t.rwant = kind == 2 ? want : kind == 3 ? want + 1
              : want == 0 ? (size_t)-1 : want;
      t.rneedle = needle;
      t.rnlen = nl;
      for (;;) {
        size_t before = t.in.len;
        n = recv_try(L, &t);
        if (n) break;
        if (t.rd_err) {
          n = recv_fail(L, &t, t.rd_err);
          break;
        }
        if (fed < slen) {            /* the next read */
          size_t c = ci < nchunks ? chunks[ci++] % 64 + 1 : 4096;
          if (c > slen - fed) c = slen - fed;
          CHECK(ns_buf_append(&t.in, stream + fed, c) == 0);
          fed += c;
          if (!reader_ready(&t, t.in.len - before)) {
            int top2 = lua_gettop(L);
            size_t save = t.rscan;
            CHECK(recv_try(L, &t) == 0);   /* a wake-up would be lost */
            lua_settop(L, top2);
            t.rscan = save;
          }
        } else {
          t.rd_err = UV_EOF;         /* read_cb at the end */
        }
      }
      /* the results against the flat model: stream[pos, slen) is left */
      top = lua_gettop(L);
      if (getenv("FUZZ_TRACE"))
        fprintf(stderr, "op %u mode %d want %zu n %d pos %zu fed %zu "
                "slen %zu inlen %zu\n", op, t.rmode, t.rwant, n, pos, fed,
                slen, t.in.len);
      {
        const char *rest = stream + pos;
        size_t left = slen - pos, dl;
        const char *d;
        if (n == 3) {                /* nil, "closed", partial: at EOF */
          CHECK(lua_isnil(L, top - 2));
          CHECK(strcmp(lua_tostring(L, top - 1), "closed") == 0);
          d = lua_tolstring(L, top, &dl);
          CHECK(fed == slen);
          if (t.rmode == R_LINE) {
            CHECK(memchr(rest, '\n', left) == NULL);
            CHECK(dl == strip_cr(tmp, rest, left));
            CHECK(memcmp(d, tmp, dl) == 0);
          } else {
            if (t.rmode == R_COUNT) CHECK(left < t.rwant);
            if (t.rmode == R_ALL) CHECK(left == 0);
            if (t.rmode == R_ANY) CHECK(left == 0);
            if (t.rmode == R_UNTIL) {  /* the last nl - 1 bytes wait */
              CHECK(find(rest, left, needle, nl) == NULL);
              CHECK(left < nl || left - nl + 1 < t.rwant);
            }
            CHECK(dl == left && memcmp(d, rest, left) == 0);
          }
          pos = slen;
          CHECK(t.in.len == 0);
          break;                     /* the stream is over */
        }
        d = lua_tolstring(L, top - n + 1, &dl);
        CHECK(d != NULL);
        switch (t.rmode) {
          case R_LINE: {
            const char *e = memchr(rest, '\n', left);
            CHECK(n == 1 && e != NULL);
            CHECK(dl == strip_cr(tmp, rest, (size_t)(e - rest)));
            CHECK(memcmp(d, tmp, dl) == 0);
            pos += (size_t)(e - rest) + 1;
            break;
          }
          case R_ALL:
            CHECK(n == 1 && fed == slen && dl == left && left > 0);
            CHECK(memcmp(d, rest, left) == 0);
            pos = slen;
            break;
          case R_COUNT:
            CHECK(n == 1 && dl == t.rwant && dl <= left);
            CHECK(memcmp(d, rest, dl) == 0);
            pos += dl;
            break;
          case R_ANY:
            CHECK(n == 1 && dl >= 1 && dl <= t.rwant && dl <= left);
            CHECK(memcmp(d, rest, dl) == 0);
            pos += dl;
            break;
          case R_UNTIL: {
            const char *hit = find(rest, left, needle, nl);
            CHECK(n == 2 && dl <= left && memcmp(d, rest, dl) == 0);
            if (lua_toboolean(L, top)) {
              CHECK(hit == rest + dl && dl <= t.rwant);
              pos += dl + nl;
            } else {
              /* exactly max bytes, no needle starts in them */
              CHECK(dl == t.rwant);
              CHECK(hit == NULL || (size_t)(hit - rest) >= dl);
              pos += dl;
            }
            break;
          }
        }
        /* what is buffered is exactly the stream's unreturned part */
        CHECK(fed - pos == t.in.len);
        CHECK(t.in.len == 0 || memcmp(ns_buf_ptr(&t.in), stream + pos,
                                      t.in.len) == 0);
      }
    }
  }
  ns_buf_free(&t.in);
  free(tmp);
  lua_settop(L, 0);
  return 0;
}
