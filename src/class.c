/*
** class.c -- LuaSocket's classes for netsh's socket userdata.
**
** A LuaSocket object answers `sock.class` ("tcp{master}", "tcp{client}",
** "udp{connected}"...) because each class has its own metatable, whose
** __index table holds the methods and the class name. netsh does the same:
** one metatable per class of a kind, all sharing the kind's metamethods and
** methods table. A method lookup is then two table hits inside the VM
** (object -> {class = ..., methods...}), with no C call per lookup; the
** __index function this replaces cost a TCP echo server ~8% of its
** instructions.
**
** ns_class_define() turns the template metatable on top of the stack into
** class 0 (it stays registry[kind->name], so luaL_setmetatable/testudata
** keep working for new objects) and makes copies for the other classes.
** Every metatable of the kind maps the light userdata key `kind` to its
** class number; ns_class_define() also notes the metatables' addresses,
** so that ns_class_test() (run on every method call) recognises the kind
** by its metatable's address alone, without a table lookup (the key is
** the way for a kind defined in another lua_State than the noted one).
** Methods added to __methods later (lua/socket.lua does) are seen by
** every class (the index tables' own __index); code that
** replaces a method (trace.lua) does it in every index table, which each
** metatable lists in __classes.
*/
#include "netsh.h"

/* mt (at index) gets __index = {class = name, the methods...}, whose own
** __index is __methods for methods added later. */
static void set_index(lua_State *L, int mt, const char *name) {
  int methods;
  lua_getfield(L, mt, "__methods");
  methods = lua_absindex(L, -1);
  lua_newtable(L);                            /* index table */
  lua_pushnil(L);
  while (lua_next(L, methods)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "class");
  lua_createtable(L, 0, 1);                   /* its metatable */
  lua_pushvalue(L, methods);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setfield(L, mt, "__index");
  lua_pop(L, 1);                              /* methods */
}

/* The metatables of each kind defined, by class, and the registry of
** the state they belong to. */
#define MAX_KINDS 16
#define MAX_CLASSES 8
static struct {
  const ns_kind_t *kind;
  const void *reg;
  const void *mt[MAX_CLASSES];
} known[MAX_KINDS];
static int nknown;

static int known_slot(const ns_kind_t *kind) {
  int s;
  for (s = 0; s < nknown; s++) {
    if (known[s].kind == kind) return s;
  }
  return -1;
}

void ns_class_define(lua_State *L, const ns_kind_t *kind) {
  int tmpl = lua_absindex(L, -1), k;
  int slot = known_slot(kind);          /* -1: the key alone tells */
  if (slot < 0 && nknown < MAX_KINDS && kind->n <= MAX_CLASSES) {
    slot = nknown++;
    known[slot].kind = kind;
  }
  if (slot >= 0) known[slot].reg = lua_topointer(L, LUA_REGISTRYINDEX);
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, kind->n, 0);             /* classes: {mt0, mt1...} */
  for (k = 0; k < kind->n; k++) {
    int mt;
    if (k == 0) {
      lua_pushvalue(L, tmpl);
    } else {                                  /* copy of the template */
      lua_newtable(L);
      lua_pushnil(L);
      while (lua_next(L, tmpl)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      }
    }
    mt = lua_absindex(L, -1);
    set_index(L, mt, kind->classes[k]);
    lua_pushinteger(L, k);
    lua_rawsetp(L, mt, kind);
    if (slot >= 0) known[slot].mt[k] = lua_topointer(L, mt);
    lua_pushvalue(L, -2);
    lua_setfield(L, mt, "__classes");         /* for wrappers: trace.lua */
    lua_rawseti(L, -2, k + 1);
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, kind);
  lua_remove(L, tmpl);
}

void *ns_class_test(lua_State *L, int i, const ns_kind_t *kind, int *k) {
  void *p = lua_touserdata(L, i);
  int s, c;
  if (p == NULL || !lua_getmetatable(L, i)) return NULL;
  s = known_slot(kind);
  if (s >= 0 && known[s].reg == lua_topointer(L, LUA_REGISTRYINDEX)) {
    const void *mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    for (c = 0; c < kind->n; c++) {
      if (known[s].mt[c] == mt) {
        if (k) *k = c;
        return p;
      }
    }
    return NULL;
  }
  if (lua_rawgetp(L, -1, kind) != LUA_TNUMBER) p = NULL;
  else if (k) *k = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return p;
}

void *ns_class_check(lua_State *L, int i, const ns_kind_t *kind, int *k) {
  void *p = ns_class_test(L, i, kind, k);
  if (p == NULL) luaL_typeerror(L, i, kind->name);
  return p;
}

void ns_class_set(lua_State *L, int i, const ns_kind_t *kind, int k) {
  i = lua_absindex(L, i);
  lua_rawgetp(L, LUA_REGISTRYINDEX, kind);
  lua_rawgeti(L, -1, k + 1);
  lua_setmetatable(L, i);
  lua_pop(L, 1);
}
