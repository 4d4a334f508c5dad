/*
** embed.c -- the lua/ and scripts/ files built into the binary, and the
** native modules (http, tls, repl, wsdeflate) that live in shared objects.
**
** lua/x/y.lua is module "x.y", found through a searcher placed right after
** package.preload, so package.path still wins for user modules of other
** names. $NETSH_LUA_DIR, when set, is searched first (edit-run without a
** rebuild). Heavy dependencies (libcurl, OpenSSL, libedit) are linked into
** netsh_<name>.so modules, loaded on first require, so that `netsh -e ''`
** starts as fast as `lua`: the binary itself links only Lua, libuv, c-ares.
*/
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "netsh.h"

struct ns_embedded {
  int kind;
  const char *name, *chunkname, *data;
  size_t len;
  const char *bc;        /* precompiled by luac at build time, or empty */
  size_t bclen;
};
extern const struct ns_embedded ns_embedded[];

#ifndef NETSH_MODDIR
#define NETSH_MODDIR "/usr/local/lib/netsh"
#endif

static const struct ns_embedded *find(int kind, const char *name) {
  const struct ns_embedded *e;
  for (e = ns_embedded; e->name; e++)
    if (e->kind == kind && strcmp(e->name, name) == 0) return e;
  return NULL;
}

/* Loads the file for module or script `name` from $NETSH_LUA_DIR. */
static int load_from_dir(lua_State *L, int kind, const char *name) {
  const char *dir = getenv("NETSH_LUA_DIR");
  char path[PATH_MAX];
  char rel[256];
  size_t i;
  if (dir == NULL || *dir == '\0') return 0;
  snprintf(rel, sizeof rel, "%s", name);
  if (kind == 0)
    for (i = 0; rel[i]; i++) if (rel[i] == '.') rel[i] = '/';
  snprintf(path, sizeof path, "%s/%s/%s.lua", dir,
           kind == 0 ? "lua" : "scripts", rel);
  if (access(path, R_OK) != 0) return 0;
  if (luaL_loadfilex(L, path, "t") != LUA_OK) return lua_error(L);
  return 1;
}

/* Pushes the chunk of an embedded module/script; 0 when there is none. */
int ns_load_embedded(lua_State *L, int kind, const char *name) {
  const struct ns_embedded *e;
  if (load_from_dir(L, kind, name)) return 1;
  e = find(kind, name);
  if (e == NULL) return 0;
  if (e->bclen > 0) {
    if (luaL_loadbufferx(L, e->bc, e->bclen, e->chunkname, "b") == LUA_OK)
      return 1;
    lua_pop(L, 1);   /* another liblua's bytecode format: use the source */
  }
  if (luaL_loadbufferx(L, e->data, e->len, e->chunkname, "t") != LUA_OK)
    return lua_error(L);
  return 1;
}

/* Directory of the running binary, for native modules beside it. */
static const char *exe_dir(void) {
  static char dir[PATH_MAX];
  if (dir[0] == '\0') {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    char *slash;
    if (n <= 0) return NULL;
    dir[n] = '\0';
    slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
  }
  return dir;
}

static const struct { const char *mod, *file, *open; } natives[] = {
  {"http.core", "netsh_http.so", "luaopen_http_core"},
  {"tls.core", "netsh_tls.so", "luaopen_tls_core"},
  {"repl.core", "netsh_repl.so", "luaopen_repl_core"},
  {"websocket.deflate", "netsh_wsdeflate.so", "luaopen_websocket_deflate"},
  {NULL, NULL, NULL}
};

/* Pushes the loader of a native module; 0 with a message pushed if none. */
static int load_native(lua_State *L, const char *name) {
  int i;
  for (i = 0; natives[i].mod; i++) {
    const char *dirs[2];
    int d;
    if (strcmp(natives[i].mod, name) != 0) continue;
    dirs[0] = exe_dir();
    dirs[1] = NETSH_MODDIR;
    for (d = 0; d < 2; d++) {
      char path[PATH_MAX];
      void *lib;
      lua_CFunction f;
      if (dirs[d] == NULL) continue;
      snprintf(path, sizeof path, "%s/%s", dirs[d], natives[i].file);
      if (access(path, R_OK) != 0) continue;
      lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (lib == NULL) {
        lua_pushfstring(L, "cannot load '%s': %s", path, dlerror());
        return 0;
      }
      f = (lua_CFunction)(uintptr_t)dlsym(lib, natives[i].open);
      if (f == NULL) {
        lua_pushfstring(L, "no %s in '%s'", natives[i].open, path);
        return 0;
      }
      lua_pushcfunction(L, f);
      return 1;
    }
    lua_pushfstring(L, "no native module '%s' in '%s' or '%s'",
                    natives[i].file, dirs[0] ? dirs[0] : "?", NETSH_MODDIR);
    return 0;
  }
  lua_pushfstring(L, "no embedded module '%s'", name);
  return 0;
}

static int searcher(lua_State *L) {
  const char *name = ns_checkcstring(L, 1, NULL);
  if (name == NULL) {        /* C would look up a shorter name */
    lua_pushliteral(L, "\n\tno module name holds a NUL byte");
    return 1;
  }
  if (ns_load_embedded(L, 0, name)) {
    lua_pushstring(L, ":embedded:");
    return 2;
  }
  if (load_native(L, name)) {
    lua_pushstring(L, ":native:");
    return 2;
  }
  return 1;   /* the message */
}

/* Lists embedded scripts: table name -> first comment line. */
static int lib_scripts(lua_State *L) {
  const struct ns_embedded *e;
  lua_newtable(L);
  for (e = ns_embedded; e->name; e++) {
    if (e->kind != 1) continue;
    lua_pushlstring(L, e->data, e->len);
    lua_setfield(L, -2, e->name);
  }
  return 1;
}

/* load_script(name) -> chunk | nil */
static int lib_load_script(lua_State *L) {
  if (!ns_load_embedded(L, 1, luaL_checkstring(L, 1))) return 0;
  return 1;
}

static int lib_load_module(lua_State *L) {
  if (!ns_load_embedded(L, 0, luaL_checkstring(L, 1))) return 0;
  return 1;
}

static int open_embed_api(lua_State *L) {
  static const luaL_Reg api[] = {
    {"scripts", lib_scripts},
    {"load_script", lib_load_script},
    {"load_module", lib_load_module},
    {NULL, NULL}
  };
  luaL_newlib(L, api);
  return 1;
}

/* Insert the searcher at position 2 of package.searchers. */
int ns_open_embedded(lua_State *L) {
  int n, i;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  n = (int)lua_rawlen(L, -1);
  for (i = n; i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
  /* "netsh.embed": a small API for the prelude and -m */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open_embed_api);
  lua_setfield(L, -2, "netsh.embed");
  lua_pushcfunction(L, luaopen_task_core);
  lua_setfield(L, -2, "task.core");
  lua_pushcfunction(L, luaopen_netsh_stdin);
  lua_setfield(L, -2, "netsh.stdin");
  lua_pushcfunction(L, luaopen_json_aux);
  lua_setfield(L, -2, "json.aux");
  lua_pushcfunction(L, luaopen_socket_dns_core);
  lua_setfield(L, -2, "socket.dns.core");
  lua_pushcfunction(L, luaopen_socket_core);
  lua_setfield(L, -2, "socket.core");
  lua_pushcfunction(L, luaopen_udp_core);
  lua_setfield(L, -2, "udp.core");
  lua_pushcfunction(L, luaopen_websocket_core);
  lua_setfield(L, -2, "websocket.core");
  lua_pop(L, 1);
  return 0;
}
