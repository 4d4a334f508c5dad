/*
** fuzz_cookie.c -- runs tests/fuzz/fuzz_cookie_driver.lua on every input
** (see that file for what is checked).
*/
#define NS_FUZZ_NAME "fuzz_cookie_driver"
#include "fuzz_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (fz_L == NULL) fz_L = fz_state(NS_FUZZ_NAME, NULL);
  fz_run(fz_L, data, size);
  return 0;
}
