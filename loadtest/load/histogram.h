// histogram.h: a log-linear latency histogram, HdrHistogram's idea written for greenline-load.
//
// Values (nanoseconds, or any non-negative integer) fall into buckets whose width grows with the
// value: each power of two [2^k, 2^(k+1)) is split into 2^kSubBits equal sub-buckets, so every
// recorded value is known to within 2^-kSubBits of itself (kSubBits = 7: < 0.8% relative error) and
// values below 2^kSubBits are exact. Recording is an index computation and an increment: no
// allocation, no locks. Each load thread records into its own Histogram; the report merges them
// (Merge) once the run ends. Not thread-safe: one writer, and readers only after it stopped.
//
// Percentiles are those of HdrHistogram's ValueAtPercentile: the highest value equivalent to the
// bucket in which the percentile's rank falls, clamped to the recorded minimum and maximum, so a
// reported p99 is never below the true one, above it by less than a bucket's width, and never
// outside [min, max]. Mean and standard deviation are computed from exact running sums, not from
// buckets.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

namespace greenline::load {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  // Values up to 2^kMaxBits - 1 are recorded as bucketed; larger ones are clamped to it (2^40 ns
  // is 18 minutes), counted in Clamped(), and count as 2^kMaxBits - 1 everywhere else (Max, Mean).
  static constexpr int kMaxBits = 40;

  Histogram();

  // Adds one value (negative values count as 0).
  void Record(int64_t value);
  // Adds `count` copies of one value.
  void RecordN(int64_t value, uint64_t count);
  // Adds every value of `other`.
  void Merge(const Histogram& other);
  // Forgets every value.
  void Reset();

  uint64_t Count() const { return count_; }
  uint64_t Clamped() const { return clamped_; }
  int64_t Min() const;   // 0 when empty
  int64_t Max() const;   // 0 when empty
  double Mean() const;   // 0 when empty
  double Stdev() const;  // population standard deviation; 0 when empty
  // The value at percentile p in [0, 100] (see the header); 0 when empty.
  int64_t ValueAtPercentile(double p) const;

  // The bucket of a value, and the range of values a bucket holds (for tests and for charts).
  static int BucketOf(int64_t value);
  static int64_t BucketLowest(int bucket);
  static int64_t BucketHighest(int bucket);
  static int BucketCount();

  // Non-empty buckets as (highest value of bucket clamped to Max(), count), ascending: for
  // percentile charts.
  std::vector<std::pair<int64_t, uint64_t>> Buckets() const;

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t clamped_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Exact sums for mean and stdev: long double keeps ns^2 sums of 1e9 values of 1e9 ns precise
  // enough (64-bit mantissa on x86; on aarch64 it is a 113-bit software type).
  long double sum_ = 0;
  long double sum_sq_ = 0;
};

}  // namespace greenline::load
