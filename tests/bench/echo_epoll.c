/*
 * echo_epoll.c - minimal single-threaded epoll TCP echo server (benchmark
 * baseline for netsh).
 *
 * Usage: echo_epoll PORT        (listens on 127.0.0.1:PORT)
 *
 * Level-triggered epoll, non-blocking sockets.  Data is read into one shared
 * stack buffer and written straight back; only bytes the kernel did not
 * accept are kept in a per-connection heap buffer.  While a connection has
 * pending bytes it is not read from (back-pressure), so the pending buffer
 * never exceeds one read's worth.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (64 * 1024)
#define MAX_EVENTS 256
#define BACKLOG 4096

/* Per-connection state: only unsent bytes (NULL when idle). */
struct conn {
  char *pend;
  size_t len;
  size_t off;
};

static struct conn *conns;
static int nconns;
static int epfd;

static void die(const char *what)
{
  perror(what);
  exit(1);
}

/* Make sure conns[] can be indexed by fd. */
static void ensure_slot(int fd)
{
  if (fd < nconns)
    return;
  int n = nconns ? nconns : 1024;
  while (n <= fd)
    n *= 2;
  struct conn *c = realloc(conns, (size_t)n * sizeof *c);
  if (!c)
    die("realloc");
  memset(c + nconns, 0, (size_t)(n - nconns) * sizeof *c);
  conns = c;
  nconns = n;
}

static void close_conn(int fd)
{
  free(conns[fd].pend);
  memset(&conns[fd], 0, sizeof conns[fd]);
  epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

static void set_events(int fd, unsigned ev)
{
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = ev;
  e.data.fd = fd;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e) < 0)
    die("epoll_ctl mod");
}

/* Write as much as possible; returns bytes written or -1 on fatal error. */
static ssize_t write_some(int fd, const char *p, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t w = send(fd, p + done, n - done, MSG_NOSIGNAL);
    if (w > 0) {
      done += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      return -1;
    }
  }
  return (ssize_t)done;
}

static void on_readable(int fd)
{
  char buf[READ_BUF];
  ssize_t r = recv(fd, buf, sizeof buf, 0);
  if (r == 0) {
    close_conn(fd);
    return;
  }
  if (r < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      close_conn(fd);
    return;
  }
  ssize_t w = write_some(fd, buf, (size_t)r);
  if (w < 0) {
    close_conn(fd);
    return;
  }
  if (w < r) {
    /* Keep only the unsent tail and wait for writability. */
    struct conn *c = &conns[fd];
    size_t rest = (size_t)(r - w);
    c->pend = malloc(rest);
    if (!c->pend)
      die("malloc");
    memcpy(c->pend, buf + w, rest);
    c->len = rest;
    c->off = 0;
    set_events(fd, EPOLLOUT);
  }
}

static void on_writable(int fd)
{
  struct conn *c = &conns[fd];
  ssize_t w = write_some(fd, c->pend + c->off, c->len - c->off);
  if (w < 0) {
    close_conn(fd);
    return;
  }
  c->off += (size_t)w;
  if (c->off == c->len) {
    free(c->pend);
    c->pend = NULL;
    c->len = c->off = 0;
    set_events(fd, EPOLLIN);
  }
}

static void on_accept(int lfd)
{
  for (int i = 0; i < 64; i++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        perror("accept4");
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ensure_slot(fd);
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = EPOLLIN;
    e.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
      perror("epoll_ctl add");
      close(fd);
    }
  }
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0)
    die("bind");
  if (listen(lfd, BACKLOG) < 0)
    die("listen");

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = EPOLLIN;
  e.data.fd = lfd;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &e) < 0)
    die("epoll_ctl listen");

  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      unsigned ev = evs[i].events;
      if (fd == lfd) {
        on_accept(lfd);
        continue;
      }
      if (conns[fd].pend) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
          on_writable(fd);
      } else if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(fd);
      }
    }
  }
}
