/*
** fuzz_json.c -- runs tests/fuzz/fuzz_json_driver.lua on every input:
** json.decode (lua/json.lua over lua-cjson and src/json_aux.c, compiled
** in) and the encode/decode round trip (see that file for the checks).
*/
#include "fuzz_lua.h"

int luaopen_json_aux(lua_State *L);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const luaL_Reg preload[] = {{"json.aux", luaopen_json_aux},
                                     {NULL, NULL}};
  if (fz_L == NULL) fz_L = fz_state("fuzz_json_driver", preload);
  fz_run(fz_L, data, size);
  return 0;
}
