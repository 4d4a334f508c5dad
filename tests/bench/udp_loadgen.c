/*
 * udp_loadgen.c - UDP echo load generator with a fixed number of datagrams
 * in flight.
 *
 * Usage:
 *   udp_loadgen -h HOST -p PORT -o OUTSTANDING -s SIZE -d SECONDS
 *               [-w WARMUP_SECONDS] [-r RESEND_MS] [--marks] [--json]
 *
 * OUTSTANDING slots each keep one datagram in flight.  Every datagram carries
 * a 64-bit sequence number and its CLOCK_MONOTONIC send time (ns) in its
 * first 16 bytes, followed by a fixed pattern that is checked on return.
 * Slot k uses sequence numbers k, k+O, k+2O, ... so a reply maps back to its
 * slot.  A reply to the slot's current datagram completes it and the slot
 * sends the next one at once.  If no reply arrives within RESEND_MS (-r,
 * default 200) the datagram is given up on and replaced by a new one, so the
 * load keeps OUTSTANDING datagrams in flight even when some are dropped; a
 * reply that still arrives for a replaced datagram is counted as "late".
 * LOSS_MS stays 1000, so a short -r still counts late replies as answered.
 *
 * Loss: datagrams sent inside the measured window that got no reply within
 * LOSS_MS of being sent.  After the window ends ("END" with --marks) nothing
 * new is sent and the tool waits up to LOSS_MS for stragglers, then reports.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"

#define HDR 16
#define MAX_DGRAM 65507
#define LOSS_NS (1000ull * 1000000ull)
#define SCAN_NS (5ull * 1000000ull)
#define SOCK_BUF (4 * 1024 * 1024)
#define RECV_BATCH 1024

enum phase { PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

struct slot {
  uint64_t seq;    /* sequence number of the datagram in flight */
  uint64_t t_sent; /* when it was sent (or last attempted) */
  int live;        /* a datagram is (supposed to be) in flight */
};

static int fd;
static int nslots = 1;
static uint32_t size = 64;
static double duration = 3.0, warmup = 1.0;
static uint64_t resend_ns = 200ull * 1000000ull;
static int opt_json, opt_marks;
static struct slot *slots;
static unsigned char *pattern;
static int phase = PH_WARMUP;
static uint64_t t_start, t_end;
static struct hist lat;

static uint64_t sent_total, sent_w, answered_w, replies_w, replies_total;
static uint64_t timeouts, late, mismatches, refused, send_errors, send_blocked;

static uint64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: udp_loadgen -h HOST -p PORT -o OUTSTANDING -s SIZE "
          "-d SECONDS\n"
          "                   [-w WARMUP_SECONDS] [-r RESEND_MS] [--marks] "
          "[--json]\n");
  exit(2);
}

static void mark(const char *s)
{
  if (opt_marks) {
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
  }
}

static void put64(unsigned char *p, uint64_t v)
{
  memcpy(p, &v, 8);
}

static uint64_t get64(const unsigned char *p)
{
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Send the slot's current sequence number. */
static void send_slot(struct slot *s, uint64_t now)
{
  put64(pattern, s->seq);
  put64(pattern + 8, now);
  s->t_sent = now;
  s->live = 1;
  ssize_t r = send(fd, pattern, size, 0);
  if (r == (ssize_t)size) {
    sent_total++;
    if (phase == PH_MEASURE)
      sent_w++;
    return;
  }
  /* Not sent: the resend timer will try again with a new number. */
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
    send_blocked++;
  else if (r < 0 && errno == ECONNREFUSED)
    refused++;
  else
    send_errors++;
}

static void on_reply(const unsigned char *buf, ssize_t n, uint64_t now)
{
  if (n != (ssize_t)size ||
      memcmp(buf + HDR, pattern + HDR, size - HDR) != 0) {
    mismatches++;
    return;
  }
  uint64_t seq = get64(buf), ts = get64(buf + 8);
  struct slot *s = &slots[seq % (uint64_t)nslots];
  int current = s->live && s->seq == seq;
  if (!current) {
    if (seq >= s->seq || ts > now) {
      mismatches++; /* never sent (or already answered) */
      return;
    }
    late++;
  }
  replies_total++;
  int in_window_sent = ts >= t_start && t_start && (!t_end || ts < t_end);
  if (in_window_sent && now - ts <= LOSS_NS)
    answered_w++;
  if (phase == PH_MEASURE) {
    replies_w++;
    hist_add(&lat, now - ts);
  }
  if (current) {
    s->live = 0;
    s->seq += (uint64_t)nslots;
    if (phase == PH_WARMUP || phase == PH_MEASURE)
      send_slot(s, now);
  }
}

static void scan_timeouts(uint64_t now)
{
  for (int i = 0; i < nslots; i++) {
    struct slot *s = &slots[i];
    if (!s->live || now - s->t_sent < resend_ns)
      continue;
    timeouts++;
    s->live = 0;
    s->seq += (uint64_t)nslots;
    if (phase == PH_WARMUP || phase == PH_MEASURE)
      send_slot(s, now);
  }
}

static void set_buf(int opt_force, int opt, int bytes)
{
  if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof bytes) < 0)
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
}

int main(int argc, char **argv)
{
  const char *host = "127.0.0.1", *port = NULL;
  static const struct option lopts[] = {
    {"json", no_argument, NULL, 'J'},
    {"marks", no_argument, NULL, 'M'},
    {"help", no_argument, NULL, 'H'},
    {NULL, 0, NULL, 0},
  };
  int o;
  while ((o = getopt_long(argc, argv, "h:p:o:s:d:w:r:", lopts, NULL)) != -1) {
    switch (o) {
    case 'h': host = optarg; break;
    case 'p': port = optarg; break;
    case 'o': nslots = atoi(optarg); break;
    case 's': size = (uint32_t)strtoul(optarg, NULL, 10); break;
    case 'd': duration = atof(optarg); break;
    case 'w': warmup = atof(optarg); break;
    case 'r': resend_ns = (uint64_t)(atof(optarg) * 1e6); break;
    case 'J': opt_json = 1; break;
    case 'M': opt_marks = 1; break;
    default: usage();
    }
  }
  if (!port || nslots < 1 || nslots > 1000000 || size < HDR ||
      size > MAX_DGRAM || duration <= 0 || warmup < 0 ||
      resend_ns < 1000000)
    usage();

  struct addrinfo hints, *res;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  int g = getaddrinfo(host, port, &hints, &res);
  if (g != 0) {
    fprintf(stderr, "udp_loadgen: %s: %s\n", host, gai_strerror(g));
    return 2;
  }
  fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("socket");
    return 1;
  }
  set_buf(SO_RCVBUFFORCE, SO_RCVBUF, SOCK_BUF);
  set_buf(SO_SNDBUFFORCE, SO_SNDBUF, SOCK_BUF);
  if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
    perror("connect");
    return 1;
  }
  freeaddrinfo(res);

  slots = calloc((size_t)nslots, sizeof *slots);
  pattern = malloc(size);
  unsigned char *rbuf = malloc(MAX_DGRAM + 1);
  if (!slots || !pattern || !rbuf) {
    fprintf(stderr, "udp_loadgen: out of memory\n");
    return 1;
  }
  for (uint32_t i = 0; i < size; i++)
    pattern[i] = (unsigned char)('a' + (i * 5 + i / 26) % 26);
  hist_init(&lat);

  uint64_t t0 = now_ns();
  uint64_t t_warm_end = t0 + (uint64_t)(warmup * 1e9);
  uint64_t dur_ns = (uint64_t)(duration * 1e9);
  uint64_t t_drain_end = 0, next_scan = t0 + SCAN_NS;

  for (int i = 0; i < nslots; i++) {
    slots[i].seq = (uint64_t)i;
    send_slot(&slots[i], now_ns());
  }

  while (phase != PH_DONE) {
    uint64_t now = now_ns();
    if (phase == PH_WARMUP && now >= t_warm_end) {
      phase = PH_MEASURE;
      t_start = now;
      mark("START");
    }
    if (phase == PH_MEASURE && now - t_start >= dur_ns) {
      phase = PH_DRAIN;
      t_end = now;
      t_drain_end = now + LOSS_NS;
      mark("END");
    }
    if (phase == PH_DRAIN && (answered_w >= sent_w || now >= t_drain_end)) {
      phase = PH_DONE;
      break;
    }

    /* Drain what has arrived (bounded per round). */
    for (int i = 0; i < RECV_BATCH; i++) {
      ssize_t n = recv(fd, rbuf, MAX_DGRAM + 1, 0);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno == ECONNREFUSED)
          refused++;
        break;
      }
      on_reply(rbuf, n, now_ns());
    }

    now = now_ns();
    if (now >= next_scan) {
      scan_timeouts(now);
      next_scan = now + SCAN_NS;
    }

    /* Wait for replies, at most until the next timer. */
    uint64_t deadline = next_scan;
    if (phase == PH_WARMUP && t_warm_end < deadline)
      deadline = t_warm_end;
    if (phase == PH_MEASURE && t_start + dur_ns < deadline)
      deadline = t_start + dur_ns;
    int timeout = deadline > now ? (int)((deadline - now + 999999) / 1000000)
                                 : 0;
    struct pollfd pfd = {fd, POLLIN, 0};
    poll(&pfd, 1, timeout);
  }

  double window = (double)(t_end - t_start) / 1e9;
  double dps = window > 0 ? (double)replies_w / window : 0.0;
  uint64_t lost = sent_w > answered_w ? sent_w - answered_w : 0;
  double loss_pct = sent_w ? 100.0 * (double)lost / (double)sent_w : 0.0;
  double p50 = (double)hist_quantile(&lat, 0.50) / 1000.0;
  double p99 = (double)hist_quantile(&lat, 0.99) / 1000.0;
  double mean = lat.count ? (double)lat.sum / (double)lat.count / 1000.0 : 0;
  double maxl = (double)lat.max / 1000.0;
  uint64_t errors = mismatches + refused + send_errors;

  if (opt_json) {
    printf("{\"mode\":\"udp\",\"outstanding\":%d,\"size\":%u,"
           "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"sent\":%llu,"
           "\"replies\":%llu,\"dps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"mean_us\":%.1f,\"max_us\":%.1f,\"lost\":%llu,"
           "\"loss_pct\":%.3f,\"timeouts\":%llu,\"late\":%llu,"
           "\"errors\":%llu,\"mismatches\":%llu,\"refused\":%llu,"
           "\"send_errors\":%llu,\"send_blocked\":%llu}\n",
           nslots, size, window, warmup, (unsigned long long)sent_w,
           (unsigned long long)replies_w, dps, p50, p99, mean, maxl,
           (unsigned long long)lost, loss_pct, (unsigned long long)timeouts,
           (unsigned long long)late, (unsigned long long)errors,
           (unsigned long long)mismatches, (unsigned long long)refused,
           (unsigned long long)send_errors, (unsigned long long)send_blocked);
  } else {
    printf("outstanding:   %d datagrams of %u bytes\n", nslots, size);
    printf("window:        %.3f s (after %.1f s warmup)\n", window, warmup);
    printf("sent:          %llu in window, %llu total\n",
           (unsigned long long)sent_w, (unsigned long long)sent_total);
    printf("replies:       %llu in window (%.1f datagrams/s)\n",
           (unsigned long long)replies_w, dps);
    printf("latency:       p50 %.1f us, p99 %.1f us, mean %.1f us, "
           "max %.1f us\n", p50, p99, mean, maxl);
    printf("loss:          %llu (%.3f %%), resend timeouts %llu, late %llu\n",
           (unsigned long long)lost, loss_pct, (unsigned long long)timeouts,
           (unsigned long long)late);
    printf("errors:        %llu (mismatch %llu, refused %llu, send %llu), "
           "send blocked %llu\n", (unsigned long long)errors,
           (unsigned long long)mismatches, (unsigned long long)refused,
           (unsigned long long)send_errors, (unsigned long long)send_blocked);
  }
  fflush(stdout);
  free(rbuf);
  return 0;
}
