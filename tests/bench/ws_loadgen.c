/*
 * ws_loadgen.c - closed-loop WebSocket echo load generator (epoll, one
 * thread), for ws_echo.sh.
 *
 * Usage:
 *   ws_loadgen -p PORT -c CONNS -s MSGSIZE -d SECONDS [-w WARMUP] [--marks]
 *
 * Opens CONNS connections to 127.0.0.1:PORT, upgrades each (no extension
 * offered, so no compression), then each connection repeatedly sends one
 * masked binary message of MSGSIZE bytes and waits for the whole echo (an
 * unmasked binary frame of the same size) before sending the next. The
 * message and its mask are fixed (the cost measured is the server's).
 * With --marks, "START"/"END" lines bracket the measured window so the
 * harness samples the server's CPU over exactly that window. Ends with one
 * JSON line: requests, rps, errors, established.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
  int fd;
  size_t sent, got;
  int dead;
};

static unsigned char *frame;   /* the masked message, header included */
static size_t frame_len, echo_len;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int upgrade(int port) {
  static const char req[] =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";
  struct sockaddr_in a;
  char buf[4096];
  size_t n = 0;
  int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) goto fail;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) goto fail;
  while (n < sizeof buf - 1) {   /* the head, byte by byte: nothing past it */
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0 || read(fd, buf + n, 1) != 1) goto fail;
    n++;
    if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0) break;
  }
  buf[n] = '\0';
  if (strncmp(buf, "HTTP/1.1 101", 12) != 0) goto fail;
  return fd;
fail:
  if (fd >= 0) close(fd);
  return -1;
}

/* Writes what is left of the frame; 0 done, 1 pending, -1 error. */
static int push(struct conn *c) {
  while (c->sent < frame_len) {
    ssize_t w = write(c->fd, frame + c->sent, frame_len - c->sent);
    if (w < 0) return errno == EAGAIN ? 1 : -1;
    c->sent += (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  int port = 0, nconn = 50, marks = 0, ep, i, est = 0;
  size_t size = 64, h;
  double dur = 3, warm = 1, t_start, t_end, t;
  long long requests = 0, errors = 0;
  struct conn *cs;
  unsigned char key[4] = {0x11, 0x22, 0x33, 0x44};
  char rbuf[65536];
  int started = 0;
  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-p") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-c") && i + 1 < argc) nconn = atoi(argv[++i]);
    else if (!strcmp(argv[i], "-s") && i + 1 < argc)
      size = (size_t)atol(argv[++i]);
    else if (!strcmp(argv[i], "-d") && i + 1 < argc) dur = atof(argv[++i]);
    else if (!strcmp(argv[i], "-w") && i + 1 < argc) warm = atof(argv[++i]);
    else if (!strcmp(argv[i], "--marks")) marks = 1;
    else {
      fprintf(stderr, "ws_loadgen: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  if (port <= 0 || nconn <= 0 || size == 0) return 2;
  h = size < 126 ? 2 : size < 65536 ? 4 : 10;
  frame_len = h + 4 + size;
  echo_len = h + size;
  frame = malloc(frame_len);
  frame[0] = 0x82;
  if (h == 2) frame[1] = 0x80 | (unsigned char)size;
  else if (h == 4) {
    frame[1] = 0x80 | 126;
    frame[2] = (unsigned char)(size >> 8);
    frame[3] = (unsigned char)size;
  } else {
    int k;
    frame[1] = 0x80 | 127;
    for (k = 0; k < 8; k++)
      frame[2 + k] = (unsigned char)((uint64_t)size >> (56 - 8 * k));
  }
  memcpy(frame + h, key, 4);
  for (i = 0; i < (int)size; i++)
    frame[h + 4 + i] = (unsigned char)('a' + i % 26) ^ key[i & 3];

  ep = epoll_create1(0);
  cs = calloc((size_t)nconn, sizeof *cs);
  for (i = 0; i < nconn; i++) {
    struct epoll_event ev;
    cs[i].fd = upgrade(port);
    if (cs[i].fd < 0) { cs[i].dead = 1; errors++; continue; }
    est++;
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &cs[i];
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }
  for (i = 0; i < nconn; i++) {
    if (cs[i].dead) continue;
    {
      int fl = 1;                 /* non-blocking from here on */
      ioctl(cs[i].fd, FIONBIO, &fl);
    }
    if (push(&cs[i]) < 0) { cs[i].dead = 1; errors++; }
  }
  t_start = now() + warm;
  t_end = t_start + dur;
  while ((t = now()) < t_end) {
    struct epoll_event evs[256];
    int n, k;
    if (!started && t >= t_start) {
      started = 1;
      if (marks) { printf("START\n"); fflush(stdout); }
    }
    n = epoll_wait(ep, evs, 256, 10);
    for (k = 0; k < n; k++) {
      struct conn *c = evs[k].data.ptr;
      if (c->dead) continue;
      if (evs[k].events & EPOLLOUT && c->sent < frame_len) {
        if (push(c) < 0) { c->dead = 1; errors++; continue; }
      }
      for (;;) {
        ssize_t r = read(c->fd, rbuf, sizeof rbuf);
        if (r < 0 && errno == EAGAIN) break;
        if (r <= 0) { c->dead = 1; errors++; break; }
        c->got += (size_t)r;
        if (c->got > echo_len) { c->dead = 1; errors++; break; }
        if (c->got == echo_len) {
          if (c->sent == frame_len && started && now() < t_end) requests++;
          c->got = 0;
          c->sent = 0;
          if (push(c) < 0) { c->dead = 1; errors++; break; }
        }
      }
    }
  }
  if (marks) { printf("END\n"); fflush(stdout); }
  printf("{\"requests\":%lld,\"rps\":%.0f,\"errors\":%lld,"
         "\"established\":%d}\n", requests, requests / dur, errors, est);
  fflush(stdout);
  return 0;
}
