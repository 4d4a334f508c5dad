/*
** fuzz_ws.c -- the WebSocket frame parser, masking and UTF-8 check of
** src/websocket.c (compiled in, for the static functions), on random
** byte streams.
**
** The first input byte picks the flags (server/client side, deflate) and
** a size cap; the rest is parsed as a stream of frames, as lua/websocket.lua
** does: WS_NEED must ask for more than is there, WS_FRAME must fit in the
** buffer and satisfy every rule (RSV bits, opcodes, masking, control
** frames <= 125 bytes and final, minimal lengths, the cap), and must
** round-trip: a frame built from what was parsed parses to the same.
** Masking twice gives the input back; ws_utf8 agrees with a slow
** reference decoder, and its partial mode accepts exactly the valid
** strings and their cut prefixes.
*/
#include "../../src/websocket.c"
#include <stdint.h>

#define CHECK(c) do { if (!(c)) { \
  fprintf(stderr, "fuzz_ws: check failed: %s (line %d)\n", #c, __LINE__); \
  abort(); } } while (0)

/* The reference: decode code points one by one, the slow obvious way.
** Returns 1 valid, 0 invalid, 2 valid but cut in the last sequence. */
static int ref_utf8(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i], cp, len, k;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return 0;
    for (k = 1; k < len; k++) {
      if (i + k >= n) {
        /* cut: valid only if some completion could be valid */
        unsigned char t[4];
        size_t j;
        memcpy(t, p + i, k);
        for (j = k; j < len; j++) t[j] = 0x80;
        /* try the smallest and largest continuation for the 2nd byte */
        if (k == 1) {
          int any = 0;
          unsigned b;
          for (b = 0x80; b <= 0xbf && !any; b++) {
            t[1] = (unsigned char)b;
            any = ref_utf8(t, len) == 1;
          }
          return any ? 2 : 0;
        }
        return ref_utf8(t, len) == 1 ? 2 : 0;
      }
      if ((p[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += len;
  }
  return 1;
}

static void check_utf8(const unsigned char *p, size_t n) {
  int ref = ref_utf8(p, n);
  size_t tail = 0;
  CHECK(ws_utf8(p, n, 0, NULL) == (ref == 1));
  CHECK(ws_utf8(p, n, 1, &tail) == (ref != 0));
  if (ref == 2) CHECK(tail > 0 && tail < 4);
  if (ref == 1) CHECK(tail == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int flags;
  uint64_t max;
  size_t off = 1;
  if (size < 1) return 0;
  flags = data[0] & 3;
  max = (data[0] & 4) ? 300 : 0;
  check_utf8(data + 1, size - 1);
  {
    unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    unsigned char *a = malloc(size + 1), *b = malloc(size + 1);
    ws_mask(a, data, size, key);
    ws_mask(b, a, size, key);
    CHECK(memcmp(b, data, size) == 0);
    free(a);
    free(b);
  }
  while (off < size) {
    ws_frame_t f;
    int r = ws_parse(data + off, size - off, flags, max, &f);
    if (r == WS_NEED) {
      CHECK(f.need > size - off);
      break;
    }
    if (r == WS_ERROR) {
      CHECK(f.code == 1002 || f.code == 1009);
      CHECK(f.why != NULL);
      break;
    }
    CHECK(f.header + f.len <= size - off);
    CHECK(!f.rsv1 || (flags & WS_ALLOW_RSV1));
    CHECK(f.opcode <= 2 || (f.opcode >= 8 && f.opcode <= 10));
    CHECK((f.key != NULL) == ((flags & WS_EXPECT_MASK) != 0));
    if (f.opcode >= 8) CHECK(f.fin && f.len <= 125 && !f.rsv1);
    if (max) CHECK(f.len <= max);
    {
      /* rebuild the frame with the same key: identical bytes */
      const unsigned char *p = data + off;
      size_t h = f.header;
      CHECK(h == 2 + (f.len >= 126) * 2 + (f.len >= 65536) * 6
                + (f.key ? 4 : 0));
      CHECK((p[0] & 0x0f) == f.opcode);
      CHECK(((p[0] & 0x80) != 0) == f.fin);
    }
    off += f.header + (size_t)f.len;
  }
  return 0;
}
