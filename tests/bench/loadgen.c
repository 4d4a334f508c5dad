/*
 * loadgen.c - closed-loop TCP echo load generator (epoll, single thread).
 *
 * Usage:
 *   loadgen -h HOST -p PORT -c CONNS -s MSGSIZE -d SECONDS
 *           [-w WARMUP_SECONDS] [--marks] [--json] [--idle]
 *
 * Opens CONNS connections (non-blocking connect, at most CONNECT_BATCH in
 * flight, EAGAIN/EADDRNOTAVAIL retried after a short delay).  Each connection
 * repeatedly sends MSGSIZE bytes of a fixed pattern, waits until exactly
 * MSGSIZE bytes come back, checks them and records the round-trip latency.
 *
 * Timeline: connect phase (all connections established or failed), then
 * WARMUP seconds, then the measured window of SECONDS.  Only requests that
 * complete inside the window are counted.  With --marks, "START" and "END"
 * lines are written (and flushed) to stdout when the window opens and closes,
 * so a harness can sample server CPU/RSS over exactly that window.  The
 * result (text, or one JSON line with --json) is printed after "END".
 *
 * --idle: each connection does a single echo round trip and then stays open
 * without traffic; the window is then just a hold period.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

#define CONNECT_BATCH 256
#define CONNECT_TIMEOUT_NS (10ull * 1000000000ull)
#define CONNECT_PHASE_MAX_NS (60ull * 1000000000ull)
#define RETRY_DELAY_NS (10ull * 1000000ull)
#define MAX_RETRIES 200
#define MAX_MSG (16 * 1024 * 1024)
#define IO_BUF (64 * 1024)
#define MAX_EVENTS 512

enum state { ST_QUEUED, ST_CONNECTING, ST_ACTIVE, ST_HOLD, ST_DEAD };
enum phase { PH_CONNECT, PH_WARMUP, PH_MEASURE, PH_DONE };

struct conn {
  int fd;
  uint8_t state;
  uint8_t want_out;
  uint16_t retries;
  uint32_t sent;
  uint32_t recvd;
  uint64_t t0; /* connect start / request start / earliest retry time */
};

/* Options. */
static struct sockaddr_storage dst;
static socklen_t dst_len;
static int nconns = 1;
static uint32_t msg_size = 64;
static double duration = 3.0;
static double warmup = 1.0;
static int opt_json, opt_marks, opt_idle;

/* State. */
static struct conn *conns;
static char *pattern;
static int epfd;
static int *queue; /* ring of conn indices waiting to connect */
static int q_head, q_len;
static int connecting;
static int resolved; /* connected (or idle-echoed) or given up */
static int phase = PH_CONNECT;
static struct hist lat;

/* Counters. */
static uint64_t requests, warm_requests;
static int established;
static uint64_t err_connect, err_reset, err_mismatch;

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: loadgen -h HOST -p PORT -c CONNS -s MSGSIZE -d SECONDS\n"
          "               [-w WARMUP_SECONDS] [--marks] [--json] [--idle]\n");
  exit(2);
}

static void raise_nofile(int need)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return;
  rlim_t want = (rlim_t)need;
  if (rl.rlim_cur >= want)
    return;
  if (rl.rlim_max < want) {
    struct rlimit r2 = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &r2) == 0)
      return;
    want = rl.rlim_max;
  }
  rl.rlim_cur = want;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    perror("setrlimit");
  if ((int)want < need)
    fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE only %ld, need %d\n",
            (long)want, need);
}

static void ep_set(struct conn *c, int op, unsigned ev)
{
  struct epoll_event e;
  memset(&e, 0, sizeof e);
  e.events = ev;
  e.data.u32 = (uint32_t)(c - conns);
  if (epoll_ctl(epfd, op, c->fd, &e) < 0 && op != EPOLL_CTL_DEL)
    perror("epoll_ctl");
}

static void kill_conn(struct conn *c, uint64_t *counter)
{
  int was_resolved = c->state != ST_QUEUED && c->state != ST_CONNECTING &&
                     !(opt_idle && c->state == ST_ACTIVE);
  if (c->state == ST_CONNECTING)
    connecting--;
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  c->state = ST_DEAD;
  (*counter)++;
  if (!was_resolved)
    resolved++;
}

static void enqueue(int idx, uint64_t not_before)
{
  conns[idx].t0 = not_before;
  conns[idx].state = ST_QUEUED;
  queue[(q_head + q_len) % nconns] = idx;
  q_len++;
}

static void start_connect(int idx, uint64_t now)
{
  struct conn *c = &conns[idx];
  int fd = socket(dst.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    if ((errno == EMFILE || errno == ENFILE || errno == ENOBUFS) &&
        c->retries < MAX_RETRIES) {
      c->retries++;
      enqueue(idx, now + RETRY_DELAY_NS);
      return;
    }
    perror("socket");
    c->state = ST_CONNECTING; /* so kill_conn counts it resolved */
    connecting++;
    kill_conn(c, &err_connect);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->t0 = now;
  connecting++;
  int r = connect(fd, (struct sockaddr *)&dst, dst_len);
  if (r < 0 && errno != EINPROGRESS) {
    if ((errno == EAGAIN || errno == EADDRNOTAVAIL || errno == EINTR) &&
        c->retries < MAX_RETRIES) {
      close(fd);
      c->fd = -1;
      connecting--;
      c->retries++;
      enqueue(idx, now + RETRY_DELAY_NS);
      return;
    }
    kill_conn(c, &err_connect);
    return;
  }
  ep_set(c, EPOLL_CTL_ADD, EPOLLOUT);
}

static void do_send(struct conn *c)
{
  while (c->sent < msg_size) {
    ssize_t n = send(c->fd, pattern + c->sent, msg_size - c->sent,
                     MSG_NOSIGNAL);
    if (n > 0) {
      c->sent += (uint32_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!c->want_out) {
        c->want_out = 1;
        ep_set(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
      }
      return;
    } else {
      kill_conn(c, &err_reset);
      return;
    }
  }
  if (c->want_out) {
    c->want_out = 0;
    ep_set(c, EPOLL_CTL_MOD, EPOLLIN);
  }
}

static void start_request(struct conn *c, uint64_t now)
{
  c->sent = 0;
  c->recvd = 0;
  c->t0 = now;
  do_send(c);
}

static void on_connected(struct conn *c, uint64_t now)
{
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
    kill_conn(c, &err_connect);
    return;
  }
  connecting--;
  established++;
  c->state = ST_ACTIVE;
  c->want_out = 0;
  if (!opt_idle)
    resolved++;
  ep_set(c, EPOLL_CTL_MOD, EPOLLIN);
  start_request(c, now);
}

static void on_complete(struct conn *c)
{
  uint64_t now = now_ns();
  if (phase == PH_MEASURE) {
    hist_add(&lat, now - c->t0);
    requests++;
  } else if (phase != PH_DONE) {
    warm_requests++;
  }
  if (opt_idle) {
    if (c->state == ST_ACTIVE) {
      c->state = ST_HOLD;
      resolved++;
    }
    return;
  }
  start_request(c, now);
}

static void do_recv(struct conn *c)
{
  static char buf[IO_BUF];
  for (;;) {
    uint32_t want = msg_size - c->recvd;
    if (c->state == ST_HOLD || want == 0)
      want = 1; /* unexpected data: read it to detect mismatch/EOF */
    if (want > IO_BUF)
      want = IO_BUF;
    ssize_t n = recv(c->fd, buf, want, 0);
    if (n == 0) {
      kill_conn(c, &err_reset);
      return;
    }
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        kill_conn(c, &err_reset);
      return;
    }
    if (c->state == ST_HOLD || c->recvd + (uint32_t)n > c->sent ||
        memcmp(buf, pattern + c->recvd, (size_t)n) != 0) {
      kill_conn(c, &err_mismatch);
      return;
    }
    c->recvd += (uint32_t)n;
    if (c->recvd == msg_size) {
      on_complete(c);
      return;
    }
  }
}

static void check_connect_timeouts(uint64_t now, int force)
{
  for (int i = 0; i < nconns; i++) {
    struct conn *c = &conns[i];
    if (c->state == ST_CONNECTING &&
        (force || now - c->t0 > CONNECT_TIMEOUT_NS))
      kill_conn(c, &err_connect);
    else if (force && c->state == ST_QUEUED)
      kill_conn(c, &err_connect);
    else if (force && opt_idle && c->state == ST_ACTIVE)
      kill_conn(c, &err_reset);
  }
  if (force)
    q_len = 0;
}

static void parse_addr(const char *host, const char *port)
{
  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int r = getaddrinfo(host, port, &hints, &res);
  if (r != 0) {
    fprintf(stderr, "loadgen: %s: %s\n", host, gai_strerror(r));
    exit(2);
  }
  memcpy(&dst, res->ai_addr, res->ai_addrlen);
  dst_len = res->ai_addrlen;
  freeaddrinfo(res);
}

static void mark(const char *s)
{
  if (opt_marks) {
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
  }
}

int main(int argc, char **argv)
{
  const char *host = "127.0.0.1", *port = NULL;
  static const struct option lopts[] = {
    {"json", no_argument, NULL, 'J'},
    {"marks", no_argument, NULL, 'M'},
    {"idle", no_argument, NULL, 'I'},
    {"help", no_argument, NULL, 'H'},
    {NULL, 0, NULL, 0},
  };
  int o;
  while ((o = getopt_long(argc, argv, "h:p:c:s:d:w:", lopts, NULL)) != -1) {
    switch (o) {
    case 'h': host = optarg; break;
    case 'p': port = optarg; break;
    case 'c': nconns = atoi(optarg); break;
    case 's': msg_size = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'd': duration = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'J': opt_json = 1; break;
    case 'M': opt_marks = 1; break;
    case 'I': opt_idle = 1; break;
    default: usage();
    }
  }
  if (!port || nconns < 1 || msg_size < 1 || msg_size > MAX_MSG ||
      duration <= 0 || warmup < 0)
    usage();
  parse_addr(host, port);
  signal(SIGPIPE, SIG_IGN);
  raise_nofile(nconns + 64);

  pattern = malloc(msg_size);
  conns = calloc((size_t)nconns, sizeof *conns);
  queue = calloc((size_t)nconns, sizeof *queue);
  if (!pattern || !conns || !queue) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  for (uint32_t i = 0; i < msg_size; i++)
    pattern[i] = (char)('A' + (i * 7 + i / 26) % 26);
  hist_init(&lat);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    perror("epoll_create1");
    return 1;
  }
  for (int i = 0; i < nconns; i++) {
    conns[i].fd = -1;
    enqueue(i, 0);
  }

  uint64_t t_begin = now_ns();
  uint64_t t_warm_end = 0, t_start = 0, t_end = 0, next_scan = t_begin;
  uint64_t warm_ns = (uint64_t)(warmup * 1e9);
  uint64_t dur_ns = (uint64_t)(duration * 1e9);
  static struct epoll_event evs[MAX_EVENTS];

  while (phase != PH_DONE) {
    uint64_t now = now_ns();

    /* Start queued connects, at most CONNECT_BATCH in flight. */
    while (q_len > 0 && connecting < CONNECT_BATCH) {
      int idx = queue[q_head];
      if (conns[idx].t0 > now)
        break;
      q_head = (q_head + 1) % nconns;
      q_len--;
      start_connect(idx, now);
    }
    if (phase == PH_CONNECT && now >= next_scan) {
      check_connect_timeouts(now, now - t_begin > CONNECT_PHASE_MAX_NS);
      next_scan = now + 100000000ull;
    }

    /* Phase transitions. */
    if (phase == PH_CONNECT && resolved >= nconns) {
      phase = PH_WARMUP;
      t_warm_end = now + warm_ns;
    }
    if (phase == PH_WARMUP && now >= t_warm_end) {
      phase = PH_MEASURE;
      t_start = now;
      mark("START");
    }
    if (phase == PH_MEASURE && now - t_start >= dur_ns) {
      t_end = now;
      phase = PH_DONE;
      mark("END");
      break;
    }

    /* Sleep until the next deadline, at most 100 ms. */
    int timeout = 100;
    uint64_t deadline = 0;
    if (phase == PH_WARMUP)
      deadline = t_warm_end;
    else if (phase == PH_MEASURE)
      deadline = t_start + dur_ns;
    if (deadline) {
      uint64_t left = deadline > now ? deadline - now : 0;
      uint64_t ms = (left + 999999) / 1000000;
      if (ms < (uint64_t)timeout)
        timeout = (int)ms;
    }
    if (q_len > 0 && connecting < CONNECT_BATCH)
      timeout = timeout > 10 ? 10 : timeout;
    if (phase == PH_CONNECT && timeout > 10)
      timeout = 10;

    int n = epoll_wait(epfd, evs, MAX_EVENTS, timeout);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      struct conn *c = &conns[evs[i].data.u32];
      unsigned ev = evs[i].events;
      if (c->fd < 0)
        continue;
      if (c->state == ST_CONNECTING) {
        on_connected(c, now_ns());
        continue;
      }
      if ((ev & EPOLLOUT) && c->state == ST_ACTIVE && c->sent < msg_size)
        do_send(c);
      if (c->fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        do_recv(c);
    }
  }

  double window = (double)(t_end - t_start) / 1e9;
  double rps = window > 0 ? (double)requests / window : 0.0;
  double p50 = (double)hist_quantile(&lat, 0.50) / 1000.0;
  double p99 = (double)hist_quantile(&lat, 0.99) / 1000.0;
  double mean = lat.count ? (double)lat.sum / (double)lat.count / 1000.0 : 0;
  double maxl = (double)lat.max / 1000.0;
  uint64_t errors = err_connect + err_reset + err_mismatch;
  int open_now = 0;
  for (int i = 0; i < nconns; i++)
    if (conns[i].state == ST_ACTIVE || conns[i].state == ST_HOLD)
      open_now++;

  if (opt_json) {
    printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%u,\"duration_s\":%.3f,"
           "\"warmup_s\":%.3f,\"established\":%d,\"open_at_end\":%d,"
           "\"requests\":%llu,\"warmup_requests\":%llu,\"rps\":%.1f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
           "\"max_us\":%.1f,\"errors\":%llu,\"connect_errors\":%llu,"
           "\"resets\":%llu,\"mismatches\":%llu}\n",
           opt_idle ? "idle" : "echo", nconns, msg_size, window, warmup,
           established, open_now, (unsigned long long)requests,
           (unsigned long long)warm_requests, rps, p50, p99, mean, maxl,
           (unsigned long long)errors, (unsigned long long)err_connect,
           (unsigned long long)err_reset, (unsigned long long)err_mismatch);
  } else {
    printf("mode:          %s\n", opt_idle ? "idle" : "echo");
    printf("connections:   %d requested, %d established, %d open at end\n",
           nconns, established, open_now);
    printf("message size:  %u bytes\n", msg_size);
    printf("window:        %.3f s (after %.1f s warmup)\n", window, warmup);
    printf("requests:      %llu (%.1f req/s)\n",
           (unsigned long long)requests, rps);
    printf("latency:       p50 %.1f us, p99 %.1f us, mean %.1f us, "
           "max %.1f us\n", p50, p99, mean, maxl);
    printf("errors:        %llu (connect %llu, reset %llu, mismatch %llu)\n",
           (unsigned long long)errors, (unsigned long long)err_connect,
           (unsigned long long)err_reset, (unsigned long long)err_mismatch);
  }
  fflush(stdout);
  return 0;
}
