/*
** select_kind.c -- netsh_selftest.so, a module for layers_spec only (not
** installed): a kind of object that joins socket.select through the ops
** of src/select.c and nothing else, as a new stream kind would. Its
** readiness is set by hand: obj:set(readable, writable) wakes the selects
** parked on it, as a socket's callbacks would.
*/
#include <string.h>
#include "netsh.h"

#define PROBE_MT "netsh.selftest"

typedef struct {
  int readable, writable, closed;
  ns_link_t sel;             /* select()s waiting on this object */
} probe_t;

static probe_t *check_probe(lua_State *L, int i) {
  return luaL_checkudata(L, i, PROBE_MT);
}

static int sel_ready(void *p, int write) {
  probe_t *o = p;
  return !o->closed && (write ? o->writable : o->readable);
}

static int sel_watch(void *p, ns_selnode_t *n, ns_waiter_t *w, int write) {
  probe_t *o = p;
  (void)write;
  if (o->closed) return 0;
  ns_sel_link(&o->sel, n, w);
  return 1;
}

static const ns_select_ops_t sel_ops = {sel_ready, sel_watch, NULL};

/* set(readable, writable) -> 1 */
static int meth_set(lua_State *L) {
  probe_t *o = check_probe(L, 1);
  o->readable = lua_toboolean(L, 2);
  o->writable = lua_toboolean(L, 3);
  ns_sel_notify(&o->sel);
  lua_pushinteger(L, 1);
  return 1;
}

static int meth_close(lua_State *L) {
  probe_t *o = check_probe(L, 1);
  o->closed = 1;
  ns_sel_release(&o->sel);
  lua_pushinteger(L, 1);
  return 1;
}

static int lib_new(lua_State *L) {
  probe_t *o = lua_newuserdatauv(L, sizeof *o, 0);
  memset(o, 0, sizeof *o);
  ns_list_init(&o->sel);
  luaL_setmetatable(L, PROBE_MT);
  return 1;
}

static const luaL_Reg methods[] = {
  {"set", meth_set},
  {"close", meth_close},
  {NULL, NULL}
};

int luaopen_netsh_selftest(lua_State *L);

int luaopen_netsh_selftest(lua_State *L) {
  luaL_newmetatable(L, PROBE_MT);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, meth_close);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  ns_select_register(L, PROBE_MT, &sel_ops);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, lib_new);
  lua_setfield(L, -2, "new");
  return 1;
}
