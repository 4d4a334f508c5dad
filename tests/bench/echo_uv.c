/*
 * echo_uv.c - minimal libuv TCP echo server (benchmark baseline for netsh).
 *
 * Usage: echo_uv PORT           (listens on 127.0.0.1:PORT)
 *
 * Reads go into one shared static buffer (the loop is single-threaded and
 * libuv hands the buffer to read_cb before the next alloc).  Each chunk is
 * first pushed with uv_try_write; only the part the kernel did not take is
 * copied into a small malloc'd write request, and reading is paused until
 * that write completes (back-pressure).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define READ_BUF (64 * 1024)
#define BACKLOG 4096

/* One pending write: request plus the unsent bytes that follow it. */
struct pend_write {
  uv_write_t req;
  size_t len;
  char data[];
};

static char shared_buf[READ_BUF];
static uv_loop_t *loop;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  (void)suggested;
  buf->base = shared_buf;
  buf->len = sizeof shared_buf;
}

static void on_close(uv_handle_t *h)
{
  free(h);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
  struct pend_write *pw = (struct pend_write *)req;
  uv_stream_t *s = req->handle;
  free(pw);
  if (status < 0) {
    if (!uv_is_closing((uv_handle_t *)s))
      uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (!uv_is_closing((uv_handle_t *)s))
    uv_read_start(s, on_alloc, on_read);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
  if (nread == 0)
    return;
  if (nread < 0) {
    if (!uv_is_closing((uv_handle_t *)s))
      uv_close((uv_handle_t *)s, on_close);
    return;
  }
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
  int w = uv_try_write(s, &b, 1);
  if (w == UV_EAGAIN)
    w = 0;
  if (w < 0) {
    uv_close((uv_handle_t *)s, on_close);
    return;
  }
  if (w == nread)
    return;
  /* Keep only the unsent tail. */
  size_t rest = (size_t)(nread - w);
  struct pend_write *pw = malloc(sizeof *pw + rest);
  if (!pw) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  pw->len = rest;
  memcpy(pw->data, buf->base + w, rest);
  uv_buf_t wb = uv_buf_init(pw->data, (unsigned)rest);
  uv_read_stop(s);
  if (uv_write(&pw->req, s, &wb, 1, on_write) < 0) {
    free(pw);
    uv_close((uv_handle_t *)s, on_close);
  }
}

static void on_connection(uv_stream_t *server, int status)
{
  if (status < 0) {
    fprintf(stderr, "connection error: %s\n", uv_strerror(status));
    return;
  }
  uv_tcp_t *c = malloc(sizeof *c);
  if (!c) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  uv_tcp_init(loop, c);
  if (uv_accept(server, (uv_stream_t *)c) != 0) {
    uv_close((uv_handle_t *)c, on_close);
    return;
  }
  uv_tcp_nodelay(c, 1);
  uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  loop = uv_default_loop();

  uv_tcp_t server;
  struct sockaddr_in addr;
  uv_tcp_init(loop, &server);
  uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
  int r = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&server, BACKLOG, on_connection);
  if (r != 0) {
    fprintf(stderr, "listen: %s\n", uv_strerror(r));
    return 1;
  }
  return uv_run(loop, UV_RUN_DEFAULT);
}
