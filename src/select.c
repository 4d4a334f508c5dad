/*
** select.c -- socket.select over every kind of object that registers
** {ready, watch} operations for its metatable (ns_select_register). Like
** LuaSocket's select.c and libuv's uv__io_t, it names no socket type: TCP,
** UDP and any later stream kind join it by registering, the arrows point
** from the kinds down to here.
**
** A select parks its task on one waiter and links one ns_selnode_t into
** the list of every object it watches; an object wakes its list when it
** may have become ready (data, a connection, a drained write, close), and
** the select then asks every object again.
*/
#include <string.h>
#include "netsh.h"

#define SEL_MT "netsh.select"

static const char ops_key = 'k';   /* metatable[&ops_key] = ops */

typedef struct sel {
  ns_waiter_t w;
  int n, cap;                /* nodes in use, nodes allocated */
  ns_selnode_t nodes[1];
} sel_t;

/* ---- the lists objects keep ---- */

void ns_sel_link(ns_link_t *list, ns_selnode_t *n, ns_waiter_t *w) {
  n->w = w;
  ns_list_insert_head(list, &n->link);
}

void ns_sel_notify(ns_link_t *list) {
  ns_link_t *l;
  ns_list_foreach(l, list)
    ns_wake(ns_container_of(l, ns_selnode_t, link)->w, 0);
}

void ns_sel_release(ns_link_t *list) {
  ns_link_t *l;
  while ((l = ns_list_first(list)) != NULL) {
    ns_wake(ns_container_of(l, ns_selnode_t, link)->w, 0);
    ns_list_remove(l);
  }
}

void ns_select_register(lua_State *L, const char *tname,
                        const ns_select_ops_t *ops) {
  luaL_getmetatable(L, tname);
  luaL_argcheck(L, lua_istable(L, -1), 2, "no such metatable");
  lua_pushlightuserdata(L, (void *)&ops_key);
  lua_pushlightuserdata(L, (void *)ops);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* The ops of the value on the top, or NULL (raw: no user code runs). */
static const ns_select_ops_t *ops_of(lua_State *L) {
  const ns_select_ops_t *ops = NULL;
  if (lua_type(L, -1) != LUA_TUSERDATA || !lua_getmetatable(L, -1))
    return NULL;
  lua_pushlightuserdata(L, (void *)&ops_key);
  if (lua_rawget(L, -2) == LUA_TLIGHTUSERDATA) ops = lua_touserdata(L, -1);
  lua_pop(L, 2);
  return ops;
}

/* The object behind the list entry on the top: the entry itself, or the
** `_socket` field of a table (LuaSocket's sinks and sources, or any
** wrapper that sets it). Sets *obj to it when it registered ops. */
static const ns_select_ops_t *sel_target(lua_State *L, void **obj) {
  const ns_select_ops_t *ops;
  int pushed = 0;
  if (lua_type(L, -1) == LUA_TTABLE) {
    lua_pushliteral(L, "_socket");
    lua_rawget(L, -2);             /* raw: no __index code runs in select */
    pushed = 1;
  }
  ops = ops_of(L);
  *obj = ops ? lua_touserdata(L, -1) : NULL;
  if (pushed) lua_pop(L, 1);       /* the table keeps the object alive */
  return ops;
}

/* A foreign object (no ops): only buffered data (dirty) counts. */
static int foreign_ready(lua_State *L) {
  int ready = 0;
  if (luaL_getmetafield(L, -1, "__index") == LUA_TNIL) return 0;
  lua_pop(L, 1);
  lua_getfield(L, -1, "dirty");
  if (lua_isfunction(L, -1)) {
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    ready = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return ready;
}

/* Adds the ready entries of list (stack index) to out (stack index) as
** LuaSocket does: out[n] = sock, out[sock] = n. Returns how many. */
static int collect(lua_State *L, int list, int out, int wr) {
  int n = 0;
  lua_Integer i;
  if (lua_isnil(L, list)) return 0;
  for (i = 1; ; i++) {
    const ns_select_ops_t *ops;
    void *obj;
    int ready;
    if (lua_rawgeti(L, list, i) == LUA_TNIL) {
      lua_pop(L, 1);
      break;
    }
    ops = sel_target(L, &obj);
    if (ops != NULL) ready = ops->ready(obj, wr);
    else ready = !wr && foreign_ready(L);
    if (ready) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, out, ++n);
      lua_pushinteger(L, n);
      lua_rawset(L, out);
    } else {
      lua_pop(L, 1);
    }
  }
  return n;
}

static void sel_unlink_all(sel_t *s) {
  int i;
  for (i = 0; i < s->n; i++) ns_list_remove(&s->nodes[i].link);
  s->n = 0;
}

static void sel_cancel(ns_waiter_t *w) { sel_unlink_all(w->data); }

static int sel_gc(lua_State *L) {
  sel_unlink_all(luaL_checkudata(L, 1, SEL_MT));
  return 0;
}

/* A select() that will not wait (timeout 0) runs no loop turn, and a
** task may poll it without ever yielding: the kinds that can ask the
** kernel (ops->poll) do so for list k, as LuaSocket's select(2) does. */
static void sel_poll(lua_State *L, int k) {
  lua_Integer i;
  if (lua_isnil(L, k)) return;
  for (i = 1; lua_rawgeti(L, k, i) != LUA_TNIL; i++) {
    void *obj;
    const ns_select_ops_t *ops = sel_target(L, &obj);
    lua_pop(L, 1);
    if (ops && ops->poll) ops->poll(obj, k == 2);
  }
  lua_pop(L, 1);
}

static int select_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: recvt, sendt, timeout, start time, sel. Returns or parks. */
static int select_step(lua_State *L) {
  sel_t *s = lua_touserdata(L, 5);
  double timeout = lua_tonumber(L, 3), left = -1;
  int nr, nw, k, polled = 0;
  lua_settop(L, 5);
  if (timeout >= 0 && timeout - (ns_now() - lua_tonumber(L, 4)) <= 0) {
    sel_poll(L, 1);
    sel_poll(L, 2);
    polled = 1;
  }
  for (;;) {
    lua_newtable(L);                     /* 6: readable */
    lua_newtable(L);                     /* 7: writable */
    nr = collect(L, 1, 6, 0);
    nw = collect(L, 2, 7, 1);
    if (nr + nw == 0) break;
    if (polled) return 2;
    /* returning without a wait: the loop may not have run since the
    ** caller's last call, so ask the kernel about the others too, and
    ** answer with the whole picture, as select(2) would */
    lua_settop(L, 5);
    sel_poll(L, 1);
    sel_poll(L, 2);
    polled = 1;
  }
  if (timeout >= 0) {
    left = timeout - (ns_now() - lua_tonumber(L, 4));
    if (left <= 0 || s->w.status == UV_ETIMEDOUT) {
      lua_pushstring(L, ns_strerror(UV_ETIMEDOUT));
      return 3;
    }
  }
  lua_settop(L, 5);
  /* watch every object of both lists that registered ops */
  for (k = 1; k <= 2; k++) {
    lua_Integer i;
    if (lua_isnil(L, k)) continue;
    for (i = 1; lua_rawgeti(L, k, i) != LUA_TNIL; i++) {
      void *obj;
      const ns_select_ops_t *ops = sel_target(L, &obj);
      lua_pop(L, 1);
      if (ops && s->n < s->cap &&
          ops->watch(obj, &s->nodes[s->n], &s->w, k == 2))
        s->n++;
    }
    lua_pop(L, 1);
  }
  s->w.data = s;
  s->w.cancel = sel_cancel;
  return ns_wait(L, &s->w, left, select_k, 0);
}

static int select_k(lua_State *L, int status, lua_KContext ctx) {
  sel_t *s = lua_touserdata(L, 5);
  (void)status; (void)ctx;
  sel_unlink_all(s);
  return select_step(L);
}

/* The length of list i, raising on a member that cannot be a socket as
** LuaSocket does (it indexes each one for getfd): a number, boolean or
** function is a mistake. Tables and userdata that are not sockets are
** skipped, as there, and so are strings (no getfd in the string table). */
static lua_Integer list_len(lua_State *L, int i) {
  lua_Integer n = 0;
  int type;
  if (lua_isnil(L, i)) return 0;
  luaL_checktype(L, i, LUA_TTABLE);
  while ((type = lua_rawgeti(L, i, n + 1)) != LUA_TNIL) {
    if (type != LUA_TTABLE && type != LUA_TUSERDATA && type != LUA_TSTRING)
      return luaL_argerror(L, i, lua_pushfstring(L,
        "socket expected at index %I, got %s", n + 1, luaL_typename(L, -1)));
    lua_pop(L, 1);
    n++;
  }
  lua_pop(L, 1);
  return n;
}

/* select(recvt, sendt [, timeout]) -> readable, writable [, "timeout"] */
int ns_select(lua_State *L) {
  lua_Integer n;
  sel_t *s;
  double timeout = luaL_optnumber(L, 3, -1);
  lua_settop(L, 3);
  n = list_len(L, 1) + list_len(L, 2);
  lua_pushnumber(L, timeout < 0 ? -1 : timeout);
  lua_replace(L, 3);
  lua_pushnumber(L, ns_now());                     /* 4: start */
  s = lua_newuserdatauv(L, sizeof *s + (size_t)n * sizeof(ns_selnode_t), 0);
  memset(s, 0, sizeof *s);
  s->cap = (int)n;
  if (luaL_newmetatable(L, SEL_MT)) {
    lua_pushcfunction(L, sel_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);                         /* 5: sel */
  return select_step(L);
}
