/*
** test_loop.c -- the scheduler from C: tasks spawned through the Lua API
** run on the loop, sleeps interleave, ns_wake from a libuv callback
** resumes exactly once, a cancelled waiter's late callback is dropped,
** and after lua_close the loop closes with nothing left behind.
** Also the byte buffer (util.c).
*/
#include <stdio.h>
#include <string.h>
#include <lualib.h>
#include "netsh.h"

int ns_loop_init(lua_State *L);
int ns_loop_close(void);

static int failures, checks;
#define CHECK(c) do { checks++; if (!(c)) { failures++; \
  fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); } \
  } while (0)

/* A binding under test: wait(ms) parks on a timer of its own, using the
** same pattern as the socket bindings (callback records, k reads). */
typedef struct { uv_timer_t tm; ns_waiter_t w; int fired; } op_t;
static op_t op;
static int resumes;

static void op_cb(uv_timer_t *h) {
  op_t *o = h->data;
  o->fired++;
  ns_wake(&o->w, 123);
}
static void op_cancel(ns_waiter_t *w) {
  op_t *o = w->data;
  uv_timer_stop(&o->tm);
}
static int op_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  resumes++;
  lua_pushinteger(L, op.w.status);
  return 1;
}
static int l_op(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  double timeout = luaL_optnumber(L, 2, -1);
  op.w.cancel = op_cancel;
  op.w.data = &op;
  uv_timer_start(&op.tm, op_cb, (uint64_t)ms, 0);
  return ns_wait(L, &op.w, timeout, op_k, 0);
}

static const char *script =
  "local task = require 'task.core'\n"
  "local t0 = task.now()\n"
  "local a = task.spawn(function() task.sleep(0.03) return 1 end)\n"
  "local b = task.spawn(function() task.sleep(0.03) return 2 end)\n"
  "local x, y = a:join(), b:join()\n"
  "assert(x == 1 and y == 2)\n"
  "local d = task.now() - t0\n"
  "assert(d > 0.025 and d < 0.058, 'no interleaving: ' .. d)\n"
  "assert(op(5) == 123)\n"
  "local r = op(200, 0.01)\n"           /* times out: -> UV_ETIMEDOUT */
  "assert(r < 0, 'expected a timeout, got ' .. tostring(r))\n"
  "RESULT = 'ok'\n";

int main(void) {
  lua_State *L = luaL_newstate();
  int stuck;
  luaL_openlibs(L);
  CHECK(ns_loop_init(L) == 0);
  uv_timer_init(ns_loop(), &op.tm);
  op.tm.data = &op;
  luaL_requiref(L, "task.core", luaopen_task_core, 0);
  lua_pop(L, 1);
  lua_register(L, "op", l_op);
  CHECK(luaL_loadstring(L, script) == LUA_OK);
  ns_spawn(L, 0, "test");
  lua_pop(L, 1);
  stuck = ns_run();
  CHECK(stuck == 0);
  lua_getglobal(L, "RESULT");
  CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "ok") == 0);
  lua_pop(L, 1);
  CHECK(resumes == 2);
  CHECK(op.fired == 1);          /* the cancelled timer never fired */
  uv_close((uv_handle_t *)&op.tm, NULL);
  lua_close(L);
  CHECK(ns_loop_close() == 0);   /* nothing leaked on the loop */

  { /* buffer */
    ns_buf_t b = {0};
    int i, rc = 0;
    for (i = 0; i < 1000; i++) rc |= ns_buf_append(&b, "abcd", 4);
    CHECK(rc == 0);
    CHECK(b.len == 4000);
    ns_buf_consume(&b, 3998);
    CHECK(b.len == 2 && memcmp(ns_buf_ptr(&b), "cd", 2) == 0);
    CHECK(ns_buf_append(&b, "ef", 2) == 0);
    CHECK(b.len == 4 && memcmp(ns_buf_ptr(&b), "cdef", 4) == 0);
    ns_buf_consume(&b, 10);
    CHECK(b.len == 0 && b.off == 0);
    ns_buf_free(&b);
  }
  printf("%d passed, %d failed\n", checks - failures, failures);
  return failures != 0;
}
