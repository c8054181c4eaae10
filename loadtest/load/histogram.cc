// histogram.cc: the log-linear histogram of histogram.h.
//
// Layout. Let S = 2^kSubBits (128). Bucket b < 2S holds exactly the value b: values below 2S are
// exact (the header promises it below S; the first power of two above S comes for free). A value
// v >= S with highest set bit k (2^k <= v < 2^(k+1)) has shift = k - kSubBits and lands in bucket
// shift * S + (v >> shift): the top kSubBits + 1 bits of v, with the leading 1 selecting the upper
// half of the group. So group g = shift holds [S << g, 2S << g) in S buckets of width 2^g, and
// the relative width of any bucket is at most 2^g / (S << g) = 1 / S. The last group is the one of
// k = kMaxBits - 1, giving (kMaxBits - kSubBits + 1) * S buckets: 4352 counters, 34 KiB.
//
// Invariants: count_ == sum(counts_); min_ <= max_ when count_ > 0; sum_ and sum_sq_ are the exact
// sums of the values as recorded (after clamping), so Mean() and Stdev() do not carry bucket error.
//
// Rejected: HdrHistogram's configurable precision and auto-resizing (one fixed precision serves
// every latency this tool measures, and a fixed size keeps Record free of allocation and Merge a
// plain loop); a pure log2 histogram (a factor-of-two bucket cannot tell a p99 of 60 us from one of
// 100 us); keeping every sample (a 100k lines/s run for 60 s would keep 6 M samples per thread).
#include "loadtest/load/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace greenline::load {

namespace {

constexpr int64_t kSub = int64_t{1} << Histogram::kSubBits;
constexpr int64_t kMaxValue = (int64_t{1} << Histogram::kMaxBits) - 1;
constexpr int kBuckets = (Histogram::kMaxBits - Histogram::kSubBits + 1) * kSub;

}  // namespace

Histogram::Histogram() : counts_(kBuckets, 0) {}

int Histogram::BucketCount() { return kBuckets; }

int Histogram::BucketOf(int64_t value) {
  if (value < 0) value = 0;
  if (value > kMaxValue) value = kMaxValue;
  if (value < 2 * kSub) return static_cast<int>(value);
  int k = 63 - std::countl_zero(static_cast<uint64_t>(value));
  int shift = k - kSubBits;
  return static_cast<int>(shift * kSub + (value >> shift));
}

int64_t Histogram::BucketLowest(int bucket) {
  if (bucket < 2 * kSub) return bucket;
  int shift = bucket / kSub - 1;
  int64_t top = bucket % kSub + kSub;
  return top << shift;
}

int64_t Histogram::BucketHighest(int bucket) {
  if (bucket < 2 * kSub) return bucket;
  int shift = bucket / kSub - 1;
  return BucketLowest(bucket) + (int64_t{1} << shift) - 1;
}

void Histogram::Record(int64_t value) { RecordN(value, 1); }

void Histogram::RecordN(int64_t value, uint64_t count) {
  if (count == 0) return;
  if (value < 0) value = 0;
  if (value > kMaxValue) {
    value = kMaxValue;
    clamped_ += count;
  }
  counts_[BucketOf(value)] += count;
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  count_ += count;
  long double v = static_cast<long double>(value);
  sum_ += v * count;
  sum_sq_ += v * v * count;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (int b = 0; b < kBuckets; ++b) counts_[b] += other.counts_[b];
  if (count_ == 0) {
    min_ = other.min_;
    max_ = other.max_;
  } else {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  count_ += other.count_;
  clamped_ += other.clamped_;
  sum_ += other.sum_;
  sum_sq_ += other.sum_sq_;
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = clamped_ = 0;
  min_ = max_ = 0;
  sum_ = sum_sq_ = 0;
}

int64_t Histogram::Min() const { return count_ == 0 ? 0 : min_; }
int64_t Histogram::Max() const { return count_ == 0 ? 0 : max_; }

double Histogram::Mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_ / count_); }

double Histogram::Stdev() const {
  if (count_ == 0) return 0;
  long double mean = sum_ / count_;
  long double var = sum_sq_ / count_ - mean * mean;
  return var <= 0 ? 0 : static_cast<double>(std::sqrt(var));
}

int64_t Histogram::ValueAtPercentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  // The rank of the percentile, 1-based, rounded as HdrHistogram does; p0 is the minimum.
  uint64_t rank = static_cast<uint64_t>(p / 100.0 * static_cast<double>(count_) + 0.5);
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (seen >= rank) return std::clamp(BucketHighest(b), min_, max_);
  }
  return max_;
}

std::vector<std::pair<int64_t, uint64_t>> Histogram::Buckets() const {
  std::vector<std::pair<int64_t, uint64_t>> out;
  for (int b = 0; b < kBuckets; ++b) {
    if (counts_[b] != 0) out.emplace_back(std::min(BucketHighest(b), max_), counts_[b]);
  }
  return out;
}

}  // namespace greenline::load
