/*
** stdin.c -- "netsh.stdin": read standard input without blocking the loop.
**
** fd 0 stays in blocking mode (O_NONBLOCK would leak to the shell that
** shares the terminal or pipe); a uv_poll_t says when it is readable and
** exactly one read() follows, which then cannot block. Regular files and
** /dev/null cannot be polled: they are read directly, which never waits.
** One reader at a time; bytes read stay in `in` until returned.
*/
#include <errno.h>
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

/* mode: 'l' line without \n, 'L' line with it, 'a' all, 'n' up to count */
typedef struct { int mode; size_t count; } req_t;
static req_t req;

/* At a read error with nothing left to return: nil, message, errno, as
** Lua's io.read says it ("Is a directory" for a directory as stdin). */
static int take_error(lua_State *L) {
  lua_pushnil(L);
  lua_pushstring(L, strerror(-in_.err));
  lua_pushinteger(L, -in_.err);
  return 3;
}

/* Tries to satisfy the request from the buffer: results pushed, 0 none. */
static int take(lua_State *L) {
  ns_buf_t *b = &in_.in;
  if (in_.err && b->len == 0) return take_error(L);
  if (req.mode == 'l' || req.mode == 'L') {
    char *nl = b->len ? memchr(ns_buf_ptr(b), '\n', b->len) : NULL;
    if (nl) {
      size_t n = (size_t)(nl - ns_buf_ptr(b));
      lua_pushlstring(L, ns_buf_ptr(b), req.mode == 'L' ? n + 1 : n);
      ns_buf_consume(b, n + 1);
      return 1;
    }
    if (in_.eof || in_.err) {
      if (b->len == 0) {
        lua_pushnil(L);
        return 1;
      }
      lua_pushlstring(L, ns_buf_ptr(b), b->len);
      ns_buf_consume(b, b->len);
      return 1;
    }
    return 0;
  }
  if (req.mode == 'a') {
    if (!in_.eof && !in_.err) return 0;
    lua_pushlstring(L, b->len ? ns_buf_ptr(b) : "", b->len);
    ns_buf_consume(b, b->len);
    return 1;
  }
  /* 'n': what is there, up to count (fread-like needs count, see Lua) */
  if (b->len >= req.count || ((in_.eof || in_.err) && b->len > 0)) {
    size_t n = b->len < req.count ? b->len : req.count;
    lua_pushlstring(L, ns_buf_ptr(b), n);
    ns_buf_consume(b, n);
    return 1;
  }
  if (in_.eof || in_.err) {
    lua_pushnil(L);
    return 1;
  }
  return 0;
}

static int read_k(lua_State *L, int status, lua_KContext ctx);

static int read_more(lua_State *L) {
  for (;;) {
    int n = take(L);
    if (n) return n;
    if (!pollable() || ns_current() == NULL || !lua_isyieldable(L)) {
      int n = fill_once();             /* plain blocking read */
      if (n < 0 && n != UV_EAGAIN) in_.err = n;
      continue;
    }
    if (in_.w.task) return ns_fail_str(L, "busy");
    in_.w.cancel = cancel_cb;
    uv_poll_start(in_.poll, UV_READABLE, poll_cb);
    return ns_wait(L, &in_.w, -1, read_k, 0);
  }
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return read_more(L);
}

/* read(fmt): fmt is "l", "L", "a" or a byte count, as io.read's. */
static int lib_read(lua_State *L) {
  if (lua_type(L, 1) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n >= 0, 1, "count must be non-negative");
    req.mode = 'n';
    req.count = (size_t)n;
    if (n == 0) {               /* io.read(0): "" unless at EOF */
      if (in_.in.len == 0 && !in_.eof && !in_.err) {
        int r = fill_once();
        if (r < 0 && r != UV_EAGAIN) in_.err = r;
      }
      if (in_.in.len) lua_pushliteral(L, "");
      else if (in_.err) return take_error(L);
      else lua_pushnil(L);
      return 1;
    }
  } else {
    const char *f = luaL_optstring(L, 1, "l");
    if (*f == '*') f++;
    luaL_argcheck(L, *f == 'l' || *f == 'L' || *f == 'a', 1,
                  "invalid format");
    req.mode = *f;
  }
  return read_more(L);
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
