/*
** stdin.c -- "netsh.stdin": read standard input without blocking the loop.
**
** fd 0 stays in blocking mode (O_NONBLOCK would leak to the shell that
** shares the terminal or pipe); a uv_poll_t says when it is readable and
** exactly one read() follows, which then cannot block. Regular files and
** /dev/null cannot be polled: they are read directly, which never waits.
** One reader at a time; bytes read stay in `in` until returned.
*/
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "netsh.h"

static struct {
  uv_poll_t *poll;     /* NULL until first needed; never freed */
  int pollable;        /* -1 unknown, 0 read directly, 1 poll */
  int eof;
  int err;
  ns_buf_t in;
  ns_waiter_t w;
} in_ = { NULL, -1, 0, 0, {0}, {0} };

/* Reads what is available into the buffer; returns bytes, 0 at EOF, < 0. */
static int fill_once(void) {
  char tmp[65536];
  ssize_t n;
  do n = read(0, tmp, sizeof tmp); while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;       /* libuv codes are -errno on Linux */
  if (n == 0) {
    in_.eof = 1;
    return 0;
  }
  if (ns_buf_append(&in_.in, tmp, (size_t)n)) return UV_ENOMEM;
  return (int)n;
}

static void poll_cb(uv_poll_t *h, int status, int events) {
  int n;
  (void)events;
  uv_poll_stop(h);
  if (status < 0) {
    in_.err = status;
    ns_wake(&in_.w, status);
    return;
  }
  n = fill_once();
  if (n == UV_EAGAIN) {                   /* spurious: wait again */
    uv_poll_start(h, UV_READABLE, poll_cb);
    return;
  }
  if (n < 0) in_.err = n;
  ns_wake(&in_.w, n < 0 ? n : 0);
}

static void cancel_cb(ns_waiter_t *w) {
  (void)w;
  if (in_.poll) uv_poll_stop(in_.poll);
}

static int pollable(void) {
  if (in_.pollable < 0) {
    struct stat st;
    in_.pollable = 0;
    if (fstat(0, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      in_.poll = malloc(sizeof *in_.poll);
      if (in_.poll && uv_poll_init(ns_loop(), in_.poll, 0) == 0)
        in_.pollable = 1;      /* epoll refuses /dev/null: read directly */
    }
  }
  return in_.pollable;
}

/* One format of io.read at a time, as Lua's g_read (liolib.c) does, but
** from the buffer: each try either answers from what is buffered (1) or
** asks for more bytes (0) and is tried again from the start once they are
** there, so a number or line split across reads comes out whole. */
#define MAXLENNUM 200           /* Lua's L_MAXLENNUM */

static int at_end(void) { return in_.eof || in_.err; }

/* "n": Lua's read_number over the buffer. The look-ahead character must
** be buffered (or be EOF) before the numeral is known to end. */
typedef struct {
  const char *p;
  size_t len, i;     /* buffered bytes; index of the look-ahead */
  int c;             /* the look-ahead, EOF at the end (or when more) */
  int more;          /* ran past the buffer before the end: wait */
  size_t n;          /* chars in buff */
  char buff[MAXLENNUM + 1];
} rn_t;

static void rn_peek(rn_t *rn) {
  if (rn->i < rn->len) rn->c = (unsigned char)rn->p[rn->i];
  else {
    rn->c = EOF;
    if (!at_end()) rn->more = 1;
  }
}

static int rn_next(rn_t *rn) {
  if (rn->n >= MAXLENNUM) {
    rn->buff[0] = '\0';           /* too long: no number */
    return 0;
  }
  rn->buff[rn->n++] = (char)rn->c;
  rn->i++;
  rn_peek(rn);
  return 1;
}

static int rn_test2(rn_t *rn, const char *set) {
  return (rn->c == set[0] || rn->c == set[1]) && rn->c != EOF
    ? rn_next(rn) : 0;
}

static int rn_digits(rn_t *rn, int hex) {
  int count = 0;
  while ((hex ? isxdigit(rn->c) : isdigit(rn->c)) && rn_next(rn)) count++;
  return count;
}

static int take_number(lua_State *L, int *ok) {
  ns_buf_t *b = &in_.in;
  rn_t rn;
  char decp[2];
  int count = 0, hex = 0;
  size_t sp = 0;
  while (sp < b->len && isspace((unsigned char)ns_buf_ptr(b)[sp])) sp++;
  ns_buf_consume(b, sp);          /* spaces go, whatever follows */
  memset(&rn, 0, sizeof rn);
  rn.p = b->len ? ns_buf_ptr(b) : "";
  rn.len = b->len;
  decp[0] = lua_getlocaledecpoint();
  decp[1] = '.';
  rn_peek(&rn);
  rn_test2(&rn, "-+");
  if (rn_test2(&rn, "00")) {
    if (rn_test2(&rn, "xX")) hex = 1;
    else count = 1;
  }
  count += rn_digits(&rn, hex);
  if (rn_test2(&rn, decp)) count += rn_digits(&rn, hex);
  if (count > 0 && rn_test2(&rn, hex ? "pP" : "eE")) {
    rn_test2(&rn, "-+");
    rn_digits(&rn, 0);
  }
  if (rn.more) return 0;          /* try again with more bytes */
  ns_buf_consume(b, rn.i);        /* all but the look-ahead */
  rn.buff[rn.n] = '\0';
  *ok = lua_stringtonumber(L, rn.buff) != 0;
  if (!*ok) lua_pushnil(L);
  return 1;
}

/* Format at index fi: 1 pushed a result (*ok says if it counts), 0 needs
** more bytes. Raises for an invalid format, as io.read does. */
static int take(lua_State *L, int fi, int *ok) {
  ns_buf_t *b = &in_.in;
  *ok = 1;
  if (lua_type(L, fi) == LUA_TNUMBER) {
    size_t want = (size_t)luaL_checkinteger(L, fi);
    if (b->len < (want ? want : 1) && !at_end()) return 0;
    if (want == 0) {             /* test_eof: "" unless at the end */
      lua_pushliteral(L, "");
      *ok = b->len > 0;
      return 1;
    }
    want = b->len < want ? b->len : want;
    lua_pushlstring(L, b->len ? ns_buf_ptr(b) : "", want);
    ns_buf_consume(b, want);
    *ok = want > 0;
    return 1;
  } else {
    const char *f = luaL_checkstring(L, fi);
    if (*f == '*') f++;
    switch (*f) {
      case 'n':
        return take_number(L, ok);
      case 'l': case 'L': {
        char *nl = b->len ? memchr(ns_buf_ptr(b), '\n', b->len) : NULL;
        size_t n = nl ? (size_t)(nl - ns_buf_ptr(b)) + 1 : b->len;
        if (nl == NULL && !at_end()) return 0;
        lua_pushlstring(L, b->len ? ns_buf_ptr(b) : "",
                        nl && *f == 'l' ? n - 1 : n);
        ns_buf_consume(b, n);
        *ok = n > 0;
        return 1;
      }
      case 'a':
        if (!at_end()) return 0;
        lua_pushlstring(L, b->len ? ns_buf_ptr(b) : "", b->len);
        ns_buf_consume(b, b->len);
        return 1;
      default:
        return luaL_argerror(L, fi, "invalid format");
    }
  }
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

/* The stack holds the nargs formats, then the results so far. */
static int read_more(lua_State *L, int nargs) {
  for (;;) {
    int done = lua_gettop(L) - nargs, ok;
    if (done == nargs) break;
    if (take(L, done + 1, &ok)) {
      if (ok) continue;
      lua_pop(L, 1);
      luaL_pushfail(L);
      break;
    }
    if (!pollable() || ns_current() == NULL || !lua_isyieldable(L)) {
      int n = fill_once();             /* plain blocking read */
      if (n < 0 && n != UV_EAGAIN) in_.err = n;
      continue;
    }
    if (in_.w.task) return ns_fail(L, NS_EBUSY);
    in_.w.cancel = cancel_cb;
    uv_poll_start(in_.poll, UV_READABLE, poll_cb);
    return ns_wait(L, &in_.w, -1, read_k, (lua_KContext)nargs);
  }
  if (in_.err) {                       /* as luaL_fileresult */
    int e = -in_.err;
    luaL_pushfail(L);
    lua_pushstring(L, strerror(e));
    lua_pushinteger(L, e);
    return 3;
  }
  return lua_gettop(L) - nargs;
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return read_more(L, (int)ctx);
}

/* read(...): io.read's formats ("n", "l", "L", "a", counts; "l" when none)
** with its results: one per format, up to the first that fails (nil). */
static int lib_read(lua_State *L) {
  int nargs = lua_gettop(L);
  if (nargs == 0) {
    lua_pushliteral(L, "l");
    nargs = 1;
  }
  luaL_checkstack(L, nargs + LUA_MINSTACK, "too many arguments");
  in_.eof = in_.err = 0;         /* clearerr: a terminal may say more */
  return read_more(L, nargs);
}

/* isatty(fd) -> boolean: for progress lines and colours on terminals */
static int lib_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

static int lib_pending(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)in_.in.len);
  return 1;
}

int luaopen_netsh_stdin(lua_State *L) {
  static const luaL_Reg lib[] = {
    {"read", lib_read},
    {"pending", lib_pending},
    {"isatty", lib_isatty},
    {NULL, NULL}
  };
  luaL_newlib(L, lib);
  return 1;
}
