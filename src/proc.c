/*
** proc.c -- "proc.core": child processes on the loop (uv_spawn).
**
** A proc_t (userdata "netsh.proc") is owned by Lua; its uv_process_t by
** libuv, which reaps the child (waitpid on SIGCHLD) and then calls
** exit_cb, where the handle is closed. The two are linked both ways and
** either side can let go: a proc_t collected or closed while its child
** runs kills the child (SIGKILL) and detaches, and the handle lives on
** until the child is reaped, so no child is left a zombie.
**
** Standard streams are given per fd 0, 1, 2 as a mode:
**   "pipe"     a pipe(2); the parent's end comes back as a descriptor that
**              lua/proc.lua wraps in a netsh stream (socket_tcp.c's setfd
**              takes pipe ends: receive patterns, lines, send, select...)
**   "capture"  run(): a pipe read into a buffer (stdout, stderr), or
**              written from the `input` string and then closed (stdin)
**   Pipes, not socketpairs (libuv's UV_CREATE_PIPE), so that a child may
**   open /dev/stdout (open(2) of a socket's /proc/self/fd link: ENXIO).
**   "inherit"  netsh's own descriptor;  "null"  /dev/null
**   "stdout"   (fd 2 only) the same as fd 1
** Every wait (wait(), run()) parks the task through ns_wait; a wait that
** ends by cancellation or a deadline kills run()'s child.
*/
#define _GNU_SOURCE             /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netsh.h"

#define PROC_MT "netsh.proc"
#define REAP_TIMEOUT 5.0     /* run(): after a kill, wait for the exit */

extern char **environ;

enum { IO_NULL, IO_INHERIT, IO_PIPE, IO_CAPTURE, IO_STDOUT };
static const char *const io_names[] = {
  "null", "inherit", "pipe", "capture", "stdout", NULL
};

typedef struct proc proc_t;

typedef struct {             /* a pipe run() reads (1, 2) or feeds (0) */
  uv_pipe_t *h;              /* NULL when closed or never opened */
  proc_t *p;
  ns_buf_t buf;
  int fd;                    /* 0, 1 or 2 */
} cap_t;

typedef struct {
  uv_write_t req;
  size_t len;
  char data[1];
} wreq_t;

struct proc {
  uv_process_t *h;           /* NULL once exited or detached */
  int pid;
  unsigned char exited;      /* exit_cb ran */
  unsigned char killed;      /* run() killed it (timeout, cancel) */
  int code, sig;             /* exit status, terminating signal (0) */
  ns_cond_t waiters;         /* tasks in wait() */
  cap_t cap[3];              /* run(): captured / fed streams */
  ns_waiter_t runw;          /* run(): the one waiting task */
};

static void free_handle_cb(uv_handle_t *h) { free(h); }

static proc_t *check_proc(lua_State *L, int i) {
  return luaL_checkudata(L, i, PROC_MT);
}

static void cap_close(cap_t *c) {
  if (c->h == NULL) return;
  c->h->data = NULL;
  uv_close((uv_handle_t *)c->h, free_handle_cb);
  c->h = NULL;
}

/* run() is over once the child has exited and both captured streams have
** ended (the child's children may hold them longer: then run waits for
** them too, as Python's communicate does), or at once after a kill. */
static void run_check(proc_t *p) {
  if (p->runw.task == NULL || !p->exited) return;
  if (!p->killed && (p->cap[1].h || p->cap[2].h)) return;
  ns_wake(&p->runw, 0);
}

static void exit_cb(uv_process_t *h, int64_t status, int sig) {
  proc_t *p = h->data;
  uv_close((uv_handle_t *)h, free_handle_cb);
  if (p == NULL) return;
  p->h = NULL;
  p->exited = 1;
  p->code = (int)status;
  p->sig = sig;
  ns_cond_broadcast(&p->waiters, 0);
  run_check(p);
}

/* Kill the child if it still runs; the handle stays until it is reaped. */
static void proc_kill(proc_t *p, int sig) {
  if (p->h && !p->exited) uv_process_kill(p->h, sig);
}

/* close(), __close and __gc: kill a running child and let it go. */
static void proc_release(proc_t *p) {
  int i;
  if (p->h) {
    proc_kill(p, SIGKILL);
    p->h->data = NULL;      /* exit_cb only closes the handle */
    p->h = NULL;
  }
  for (i = 0; i < 3; i++) {
    cap_close(&p->cap[i]);
    ns_buf_free(&p->cap[i].buf);
  }
  /* parked waiters keep p on their stacks: none here but at lua_close */
  ns_cond_init(&p->waiters);
}

/* ---- run()'s captured pipes ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  cap_t *c = h->data;
  (void)suggested;
  if (c == NULL || ns_buf_reserve(&c->buf, 64 * 1024) != 0) {
    buf->base = NULL;          /* read_cb gets UV_ENOBUFS */
    buf->len = 0;
    return;
  }
  buf->base = ns_buf_ptr(&c->buf) + c->buf.len;
  buf->len = c->buf.cap - c->buf.off - c->buf.len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  cap_t *c = s->data;
  (void)buf;
  if (c == NULL) return;
  if (n > 0) {
    c->buf.len += (size_t)n;
    return;
  }
  if (n == 0) return;                 /* EAGAIN */
  cap_close(c);                       /* EOF, or an error: it ended */
  run_check(c->p);
}

static void write_cb(uv_write_t *req, int status) {
  cap_t *c = req->handle->data;
  (void)status;                       /* EPIPE: the child did not read */
  free(req);
  if (c) cap_close(c);                /* the child sees the end of input */
}

/* ---- spawning ---- */

static int io_mode(lua_State *L, int opts, int fd, int def) {
  static const char *const keys[] = {"stdin", "stdout", "stderr"};
  int m;
  lua_getfield(L, opts, keys[fd]);
  if (lua_isnil(L, -1)) m = def;
  else if (lua_isinteger(L, -1)) {
    lua_Integer v = lua_tointeger(L, -1);
    if (v < 0 || v > 2) luaL_error(L, "bad option '%s' (0, 1 or 2 expected)",
                                   keys[fd]);
    m = -1 - (int)v;                  /* a descriptor of netsh's: inherit */
  } else {
    const char *s = lua_tostring(L, -1);
    for (m = 0; s && io_names[m]; m++)
      if (strcmp(io_names[m], s) == 0) break;
    if (s == NULL || io_names[m] == NULL || (m == IO_STDOUT && fd != 2))
      luaL_error(L, "bad option '%s' (invalid mode '%s')", keys[fd],
                 s ? s : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return m;
}

/* argv: cmd, then the strings of the table at idx (or none). Strings made
** from numbers are kept in the table at `anchor`. */
static char **build_argv(lua_State *L, const char *cmd, int idx,
                         int anchor) {
  lua_Integer n = 0, i;
  char **argv;
  if (!lua_isnoneornil(L, idx)) {
    luaL_checktype(L, idx, LUA_TTABLE);
    n = luaL_len(L, idx);
  }
  if (n < 0 || n > 65536) luaL_argerror(L, idx, "too many arguments");
  argv = lua_newuserdatauv(L, sizeof *argv * (size_t)(n + 2), 0);
  lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
  argv[0] = (char *)cmd;
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    lua_geti(L, idx, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_argerror(L, idx, lua_pushfstring(L, "argument %d is a %s, not "
          "a string", (int)i, luaL_typename(L, -1)));
    s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len)
      luaL_argerror(L, idx, lua_pushfstring(L, "argument %d holds a NUL "
          "byte", (int)i));
    argv[i] = (char *)s;
    lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
  }
  argv[n + 1] = NULL;
  return argv;
}

/* The child's environment: netsh's (unless opts.clearenv), without the
** names opts.env maps to false, plus the names it maps to strings. NULL
** when neither option is given (libuv passes environ as it is). */
static char **build_env(lua_State *L, int opts, int anchor) {
  int clear, hasenv, n = 0, i;
  char **env;
  lua_getfield(L, opts, "clearenv");
  clear = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, opts, "env");
  hasenv = !lua_isnil(L, -1);
  if (hasenv && !lua_istable(L, -1))
    luaL_error(L, "bad option 'env' (table expected, got %s)",
               luaL_typename(L, -1));
  if (!hasenv && !clear) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!hasenv) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  /* stack: ..., envtable */
  for (i = 0; !clear && environ[i]; i++) n++;
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  env = lua_newuserdatauv(L, sizeof *env * (size_t)(n + 1), 0);
  lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
  n = 0;
  for (i = 0; !clear && environ[i]; i++) {
    const char *eq = strchr(environ[i], '=');
    if (eq == NULL) continue;
    lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
    if (lua_rawget(L, -2) == LUA_TNIL) env[n++] = environ[i];
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {          /* ..., envtable, key, value */
    size_t kl, vl;
    const char *k = lua_type(L, -2) == LUA_TSTRING ?
                    lua_tolstring(L, -2, &kl) : NULL;
    if (k == NULL || kl == 0 || strlen(k) != kl || strchr(k, '='))
      luaL_error(L, "bad option 'env' (names must be strings without '=' "
                 "or NUL)");
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      lua_pop(L, 1);                 /* false: removed */
      continue;
    }
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "bad option 'env' (value of '%s' is a %s; string or "
                 "false expected)", k, luaL_typename(L, -1));
    {
      const char *v = lua_tolstring(L, -1, &vl);
      if (strlen(v) != vl)
        luaL_error(L, "bad option 'env' (value of '%s' holds a NUL byte)",
                   k);
      lua_pushfstring(L, "%s=%s", k, v);
      env[n++] = (char *)lua_tostring(L, -1);
      lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
    }
    lua_pop(L, 1);
  }
  env[n] = NULL;
  lua_pop(L, 1);                     /* envtable */
  return env;
}

static void close_fds(int *fds, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (fds[i] >= 0) {
      close(fds[i]);
      fds[i] = -1;
    }
}

/* spawn(cmd, args, opts) and run(cmd, args, opts) start the child here.
** Pushes the proc userdata and returns 0, or returns a UV_E* code with
** nothing pushed. parent[i] gets the parent's end of a "pipe" stream. */
static int start(lua_State *L, int run, int parent[3]) {
  const char *cmd = ns_checkcstring(L, 1, "command");
  uv_process_options_t o;
  uv_stdio_container_t io[3];
  int child[3] = {-1, -1, -1}, nullfd = -1, mode[3], i, rc, anchor;
  const char *cwd = NULL;
  proc_t *p;
  uv_process_t *h = NULL;
  parent[0] = parent[1] = parent[2] = -1;
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  lua_newtable(L);                    /* 4: anchor for built strings */
  anchor = 4;
  memset(&o, 0, sizeof o);
  o.file = cmd;
  o.args = build_argv(L, cmd, 2, anchor);
  o.env = build_env(L, 3, anchor);
  lua_getfield(L, 3, "cwd");
  if (!lua_isnil(L, -1)) {
    cwd = lua_tostring(L, -1);
    if (cwd == NULL || lua_type(L, -1) != LUA_TSTRING ||
        strlen(cwd) != lua_rawlen(L, -1))
      luaL_error(L, "bad option 'cwd' (a directory name expected)");
    lua_rawseti(L, anchor, (lua_Integer)luaL_len(L, anchor) + 1);
  } else {
    lua_pop(L, 1);
  }
  o.cwd = cwd;
  for (i = 0; i < 3; i++)
    mode[i] = io_mode(L, 3, i, run ? (i ? IO_CAPTURE : IO_NULL) : IO_PIPE);
  if ((!run && (mode[0] == IO_CAPTURE || mode[1] == IO_CAPTURE ||
                mode[2] == IO_CAPTURE)) || (run && mode[0] == IO_PIPE) ||
      (run && (mode[1] == IO_PIPE || mode[2] == IO_PIPE)))
    luaL_error(L, "bad option (%s)", run ? "run() captures: use 'capture'"
               : "'capture' is for run()");
  p = lua_newuserdatauv(L, sizeof *p, 0);   /* 5 */
  memset(p, 0, sizeof *p);
  ns_cond_init(&p->waiters);
  luaL_setmetatable(L, PROC_MT);
  for (i = 0; i < 3; i++) {
    p->cap[i].p = p;
    p->cap[i].fd = i;
  }
  rc = 0;
  for (i = 0; i < 3 && rc == 0; i++) {
    io[i].flags = UV_INHERIT_FD;
    switch (mode[i]) {
      case IO_NULL:
        if (nullfd < 0 && (nullfd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
          rc = -errno;
        io[i].data.fd = nullfd;
        break;
      case IO_PIPE:
      case IO_CAPTURE: {              /* a pipe: /dev/stdout opens */
        int pf[2];
        if (pipe2(pf, O_CLOEXEC) != 0) {
          rc = -errno;
          break;
        }
        parent[i] = pf[i == 0 ? 1 : 0];
        child[i] = pf[i == 0 ? 0 : 1];
        io[i].data.fd = child[i];
        break;
      }
      case IO_STDOUT:
        io[i] = io[1];                /* the same descriptor as stdout */
        break;
      case IO_INHERIT:
        io[i].data.fd = i;
        break;
      default:                        /* -1 - fd: one of netsh's */
        io[i].data.fd = -1 - mode[i];
        break;
    }
  }
  if (rc == 0 && (h = malloc(sizeof *h)) == NULL) rc = UV_ENOMEM;
  if (rc == 0) {
    o.exit_cb = exit_cb;
    o.stdio = io;
    o.stdio_count = 3;
    rc = uv_spawn(ns_loop(), h, &o);
    if (rc != 0) {
      uv_close((uv_handle_t *)h, free_handle_cb);
    } else {
      h->data = p;
      p->h = h;
      p->pid = h->pid;
    }
  }
  for (i = 0; i < 3 && rc == 0; i++) {
    uv_pipe_t *ph;
    if (mode[i] != IO_CAPTURE) continue;
    if ((ph = malloc(sizeof *ph)) == NULL) {
      rc = UV_ENOMEM;
      break;
    }
    uv_pipe_init(ns_loop(), ph, 0);
    if ((rc = uv_pipe_open(ph, parent[i])) != 0) {
      uv_close((uv_handle_t *)ph, free_handle_cb);
      break;
    }
    parent[i] = -1;                   /* the pipe owns it now */
    ph->data = &p->cap[i];
    p->cap[i].h = ph;
  }
  close_fds(child, 3);
  if (nullfd >= 0) close(nullfd);
  if (rc != 0) {
    close_fds(parent, 3);
    proc_release(p);
    lua_pop(L, 1);
    return rc;
  }
  return 0;
}

/* ---- run ---- */

static void run_cancel(ns_waiter_t *w) {
  proc_t *p = w->data;
  int i;
  proc_kill(p, SIGKILL);
  p->killed = 1;
  for (i = 0; i < 3; i++) cap_close(&p->cap[i]);
}

static void push_result(lua_State *L, proc_t *p) {
  static const char *const names[] = {NULL, "stdout", "stderr"};
  int i;
  lua_createtable(L, 0, 5);
  if (p->exited) {
    lua_pushinteger(L, p->sig ? 128 + p->sig : p->code);
    lua_setfield(L, -2, "status");
    if (p->sig) {
      lua_pushinteger(L, p->sig);
      lua_setfield(L, -2, "signal");
    }
  }
  lua_pushinteger(L, p->pid);
  lua_setfield(L, -2, "pid");
  for (i = 1; i <= 2; i++) {
    ns_buf_t *b = &p->cap[i].buf;
    lua_pushlstring(L, ns_buf_ptr(b), b->len);
    lua_setfield(L, -2, names[i]);
  }
}

/* Stack: cmd, args, opts, anchor, p. */
static int run_k(lua_State *L, int status, lua_KContext ctx) {
  proc_t *p = check_proc(L, 5);
  (void)status;
  if (p->runw.status == UV_ETIMEDOUT && ctx == 0) {
    /* killed by run_cancel: wait for the reaping, so that the child is
    ** gone and its signal known when run returns */
    if (!p->exited) {
      p->runw.data = p;
      p->runw.cancel = NULL;
      return ns_wait(L, &p->runw, REAP_TIMEOUT, run_k, 1);
    }
  }
  if (p->killed || ctx == 1) {
    lua_pushnil(L);
    lua_pushstring(L, ns_strerror(UV_ETIMEDOUT));
    push_result(L, p);
    return 3;
  }
  push_result(L, p);
  return 1;
}

/* run(cmd, args, opts) -> {status, signal, stdout, stderr, pid} |
**   nil, err | nil, "timeout", partial */
static int lib_run(lua_State *L) {
  int parent[3], rc, i;
  double timeout = -1;
  size_t inlen = 0;
  const char *input = NULL;
  proc_t *p;
  lua_getfield(L, 3, "input");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bad option 'stdin' (string expected, got %s)",
                 luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  lua_getfield(L, 3, "timeout");
  if (!lua_isnil(L, -1)) {
    if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 0 ||
        lua_tonumber(L, -1) != lua_tonumber(L, -1))
      luaL_error(L, "bad option 'timeout' (seconds >= 0 expected)");
    timeout = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  if (ns_current() == NULL)
    return luaL_error(L, "attempt to wait outside a task");
  if ((rc = start(L, 1, parent)) != 0) return ns_fail(L, rc);
  p = check_proc(L, 5);
  (void)parent;
  for (i = 1; i <= 2; i++)
    if (p->cap[i].h)
      uv_read_start((uv_stream_t *)p->cap[i].h, alloc_cb, read_cb);
  if (p->cap[0].h) {
    lua_getfield(L, 3, "input");
    input = lua_tolstring(L, -1, &inlen);
    if (input == NULL || inlen == 0) {
      cap_close(&p->cap[0]);
    } else {
      wreq_t *r = malloc(sizeof *r + inlen);
      uv_buf_t b;
      if (r == NULL) {
        proc_release(p);
        return ns_fail(L, UV_ENOMEM);
      }
      memcpy(r->data, input, inlen);  /* the task may go before the write */
      r->len = inlen;
      b = uv_buf_init(r->data, (unsigned)inlen);
      if ((rc = uv_write(&r->req, (uv_stream_t *)p->cap[0].h, &b, 1,
                         write_cb)) != 0) {
        free(r);
        cap_close(&p->cap[0]);
      }
    }
    lua_pop(L, 1);
  }
  lua_settop(L, 5);
  p->runw.data = p;
  p->runw.cancel = run_cancel;
  return ns_wait(L, &p->runw, timeout, run_k, 0);
}

/* ---- spawn and the process object ---- */

/* spawn(cmd, args, opts) -> p, fd0, fd1, fd2 (nil for no pipe) | nil, err */
static int lib_spawn(lua_State *L) {
  int parent[3], rc, i;
  if ((rc = start(L, 0, parent)) != 0) return ns_fail(L, rc);
  for (i = 0; i < 3; i++) {
    if (parent[i] >= 0) lua_pushinteger(L, parent[i]);
    else lua_pushnil(L);
  }
  return 4;
}

/* closefd(fd): for a descriptor spawn gave that could not be wrapped */
static int lib_closefd(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  if (fd > 2) close((int)fd);
  return 0;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  proc_t *p = check_proc(L, 1);
  ns_waiter_t *w = (ns_waiter_t *)ctx;
  (void)status;
  if (!p->exited) return ns_fail(L, w->status ? w->status : UV_ETIMEDOUT);
  lua_pushinteger(L, p->sig ? 128 + p->sig : p->code);
  if (p->sig) lua_pushinteger(L, p->sig);
  else lua_pushnil(L);
  return 2;
}

/* p:wait([timeout]) -> status, signal | nil, "timeout" */
static int meth_wait(lua_State *L) {
  proc_t *p = check_proc(L, 1);
  double timeout = -1;
  ns_waiter_t *w;
  if (!lua_isnoneornil(L, 2)) {
    timeout = luaL_checknumber(L, 2);
    luaL_argcheck(L, timeout >= 0, 2, "timeout must be >= 0");
  }
  lua_settop(L, 1);
  if (p->exited) return wait_k(L, 0, 0);
  if (p->h == NULL) return ns_fail(L, NS_ECLOSED);
  if (ns_current() == NULL)
    return luaL_error(L, "attempt to wait outside a task");
  w = lua_newuserdatauv(L, sizeof *w, 0);   /* 2: on the stack while parked */
  memset(w, 0, sizeof *w);
  return ns_cond_wait(L, &p->waiters, w, timeout, wait_k, (lua_KContext)w);
}

static const struct { const char *name; int sig; } signals[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
  {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
  {"STOP", SIGSTOP}, {"CONT", SIGCONT}, {"ALRM", SIGALRM},
  {"PIPE", SIGPIPE}, {"CHLD", SIGCHLD}, {"WINCH", SIGWINCH}, {NULL, 0}
};

/* p:kill([sig]) -> true | nil, err; sig: a number or "TERM", "SIGKILL"... */
static int meth_kill(lua_State *L) {
  proc_t *p = check_proc(L, 1);
  int sig = SIGTERM, rc;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *s = lua_tostring(L, 2);
    int i;
    if (strncmp(s, "SIG", 3) == 0) s += 3;
    for (i = 0; signals[i].name; i++)
      if (strcmp(signals[i].name, s) == 0) break;
    if (signals[i].name == NULL)
      return luaL_argerror(L, 2, "unknown signal name");
    sig = signals[i].sig;
  } else if (!lua_isnoneornil(L, 2)) {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n < 65, 2, "bad signal number");
    sig = (int)n;
  }
  if (p->h == NULL) return ns_fail(L, UV_ESRCH);
  if ((rc = uv_process_kill(p->h, sig)) != 0) return ns_fail(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

static int meth_pid(lua_State *L) {
  lua_pushinteger(L, check_proc(L, 1)->pid);
  return 1;
}

/* p:exited() -> status, signal | nil (still running) */
static int meth_exited(lua_State *L) {
  proc_t *p = check_proc(L, 1);
  if (!p->exited) return 0;
  return wait_k(L, 0, 0);
}

static int meta_gc(lua_State *L) {
  proc_release(check_proc(L, 1));
  return 0;
}

static int meta_tostring(lua_State *L) {
  proc_t *p = check_proc(L, 1);
  if (p->exited)
    lua_pushfstring(L, "proc{exited %d}: %d", p->sig ? 128 + p->sig :
                    p->code, p->pid);
  else if (p->h)
    lua_pushfstring(L, "proc{running}: %d", p->pid);
  else
    lua_pushfstring(L, "proc{closed}: %d", p->pid);
  return 1;
}

static const luaL_Reg methods[] = {
  {"wait", meth_wait},
  {"kill", meth_kill},
  {"getpid", meth_pid},
  {"exited", meth_exited},
  {"close", meta_gc},
  {NULL, NULL}
};

static const luaL_Reg lib[] = {
  {"run", lib_run},
  {"spawn", lib_spawn},
  {"closefd", lib_closefd},
  {NULL, NULL}
};

int luaopen_proc_core(lua_State *L) {
  luaL_newmetatable(L, PROC_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, meta_gc);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, meta_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);
  luaL_newlib(L, lib);
  return 1;
}
