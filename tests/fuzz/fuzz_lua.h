/*
** fuzz_lua.h -- the shared body of the Lua-level fuzz targets: a
** lua_State with the standard libraries and netsh's lua/ directory on
** package.path runs tests/fuzz/<name>.lua once, which returns the
** function each input is given to (as a string). An error raised by it is
** a finding: printed, then abort() so libFuzzer keeps the input.
**
** The Lua code is not compiled by clang, so libFuzzer would see no
** coverage: a line hook counts (previous line, line) pairs into extra
** counters libFuzzer reads (its __libfuzzer_extra_counters section).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static lua_State *fz_L;

#define FZ_NCOUNT 65536
__attribute__((used, section("__libfuzzer_extra_counters")))
static uint8_t fz_counters[FZ_NCOUNT];
static uintptr_t fz_prev;

static void fz_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t h;
  if (!lua_getinfo(L, "S", ar)) return;
  h = (uintptr_t)ar->source * 31u + (uintptr_t)ar->currentline;
  fz_counters[(h ^ (fz_prev << 1)) % FZ_NCOUNT]++;
  fz_prev = h;
}

static int fz_traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

/* preload: extra package.preload entries, {name, luaopen} pairs */
static lua_State *fz_state(const char *name, const luaL_Reg *preload) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, NETSH_SRC "/lua/?.lua;" NETSH_SRC "/lua/?/init.lua;"
                 NETSH_SRC "/tests/fuzz/?.lua");
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  for (; preload && preload->name; preload++) {
    lua_pushcfunction(L, preload->func);
    lua_setfield(L, -2, preload->name);
  }
  lua_pop(L, 2);
  lua_pushcfunction(L, fz_traceback);
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  if (lua_pcall(L, 1, 1, 1) != LUA_OK || !lua_isfunction(L, -1)) {
    fprintf(stderr, "fuzz: %s.lua: %s\n", name, lua_tostring(L, -1));
    abort();
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.one");
  lua_settop(L, 0);
  lua_sethook(L, fz_hook, LUA_MASKLINE, 0);
  return L;
}

static void fz_run(lua_State *L, const uint8_t *data, size_t size) {
  lua_pushcfunction(L, fz_traceback);
  lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.one");
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 1) != LUA_OK) {
    fprintf(stderr, "fuzz: finding: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_settop(L, 0);
}
