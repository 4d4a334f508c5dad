/*
 * hist.h - small log-linear latency histogram shared by the load generators.
 *
 * Values (nanoseconds) below 2^(SUB_BITS+1) get exact buckets; above that,
 * every power of two is split into 2^SUB_BITS linear buckets, so the relative
 * error of a reported percentile is below 1/2^SUB_BITS (~1.6 %).  Values up to
 * about 2^40 ns (~18 min) are covered; larger ones go into the last bucket.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_MSB 40
#define HIST_BUCKETS (2 * HIST_SUB + (HIST_MAX_MSB - HIST_SUB_BITS) * HIST_SUB)

struct hist {
  uint64_t count;
  uint64_t sum;
  uint64_t max;
  uint64_t b[HIST_BUCKETS];
};

static inline void hist_init(struct hist *h)
{
  memset(h, 0, sizeof *h);
}

static inline unsigned hist_index(uint64_t v)
{
  if (v < 2 * HIST_SUB)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  if (msb > HIST_MAX_MSB)
    return HIST_BUCKETS - 1;
  unsigned shift = msb - HIST_SUB_BITS;     /* >= 1 */
  unsigned mant = (unsigned)(v >> shift);   /* in [SUB, 2*SUB) */
  unsigned idx = 2 * HIST_SUB + (shift - 1) * HIST_SUB + (mant - HIST_SUB);
  return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* Representative (middle) value of a bucket. */
static inline uint64_t hist_value(unsigned idx)
{
  if (idx < 2 * HIST_SUB)
    return idx;
  unsigned rel = idx - 2 * HIST_SUB;
  unsigned shift = rel / HIST_SUB + 1;
  uint64_t mant = HIST_SUB + rel % HIST_SUB;
  uint64_t lo = mant << shift;
  return lo + ((1ull << shift) >> 1);
}

static inline void hist_add(struct hist *h, uint64_t v)
{
  h->b[hist_index(v)]++;
  h->count++;
  h->sum += v;
  if (v > h->max)
    h->max = v;
}

/* Value at quantile q (0..1); 0 when empty. */
static inline uint64_t hist_quantile(const struct hist *h, double q)
{
  if (h->count == 0)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > h->count)
    rank = h->count;
  uint64_t seen = 0;
  for (unsigned i = 0; i < HIST_BUCKETS; i++) {
    seen += h->b[i];
    if (seen >= rank) {
      uint64_t v = hist_value(i);
      return v > h->max ? h->max : v;
    }
  }
  return h->max;
}

#endif
