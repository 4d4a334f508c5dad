/*
 * udp_echo_epoll.c - minimal single-threaded epoll UDP echo server
 * (benchmark baseline for netsh).
 *
 * Usage: udp_echo_epoll PORT     (binds 127.0.0.1:PORT)
 *
 * Each readable event drains the socket: recvfrom into one stack buffer,
 * sendto straight back to the sender.  A reply the kernel refuses (EAGAIN,
 * full send buffer) is dropped, as UDP allows.  Socket buffers are left at
 * the system defaults, like the other servers being compared.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536
#define MAX_PER_WAKEUP 256

static void die(const char *what)
{
  perror(what);
  exit(1);
}

int main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    die("socket");
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)atoi(argv[1]));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    die("bind");

  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0)
    die("epoll_create1");
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = EPOLLIN;
  e.data.fd = fd;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0)
    die("epoll_ctl");

  char buf[BUF_SIZE];
  for (;;) {
    struct epoll_event ev;
    int n = epoll_wait(epfd, &ev, 1, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      die("epoll_wait");
    }
    /* Bounded drain so one busy peer cannot starve the loop forever. */
    for (int i = 0; i < MAX_PER_WAKEUP; i++) {
      struct sockaddr_storage from;
      socklen_t flen = sizeof from;
      ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from,
                           &flen);
      if (r < 0) {
        if (errno == EINTR)
          continue;
        break; /* EAGAIN, or a queued ICMP error: wait for the next event */
      }
      sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, flen);
    }
  }
}
