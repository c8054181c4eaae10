// Checks greenline-load's log-linear Histogram (loadtest/load/histogram.h): values below
// 2^kSubBits are exact, every bucket is narrower than 2^-kSubBits of its values, percentiles agree
// with a sorted reference within a bucket's width on random data, Merge equals recording
// everything into one, out-of-range values are clamped and counted, and an empty histogram
// answers zeros.
#include "loadtest/load/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace greenline::load {
namespace {

constexpr int64_t kSub = int64_t{1} << Histogram::kSubBits;
constexpr int64_t kMax = (int64_t{1} << Histogram::kMaxBits) - 1;

TEST(HistogramTest, EmptyAnswersZeros) {
  Histogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Mean(), 0);
  EXPECT_EQ(h.Stdev(), 0);
  EXPECT_EQ(h.ValueAtPercentile(50), 0);
  EXPECT_EQ(h.ValueAtPercentile(100), 0);
  EXPECT_TRUE(h.Buckets().empty());
}

TEST(HistogramTest, ValuesBelowSubBucketCountAreExact) {
  for (int64_t v = 0; v < kSub; ++v) {
    EXPECT_EQ(Histogram::BucketLowest(Histogram::BucketOf(v)), v);
    EXPECT_EQ(Histogram::BucketHighest(Histogram::BucketOf(v)), v);
    Histogram h;
    h.Record(v);
    EXPECT_EQ(h.ValueAtPercentile(50), v);
    EXPECT_EQ(h.Min(), v);
    EXPECT_EQ(h.Max(), v);
  }
}

TEST(HistogramTest, BucketsTileTheRangeWithBoundedRelativeWidth) {
  int64_t expect_low = 0;
  for (int b = 0; b < Histogram::BucketCount(); ++b) {
    int64_t lo = Histogram::BucketLowest(b), hi = Histogram::BucketHighest(b);
    ASSERT_EQ(lo, expect_low) << "bucket " << b;
    ASSERT_GE(hi, lo);
    ASSERT_EQ(Histogram::BucketOf(lo), b);
    ASSERT_EQ(Histogram::BucketOf(hi), b);
    // Exact below 2 * 2^kSubBits; above, a width of at most 2^-kSubBits of the lowest value.
    if (lo < 2 * kSub) {
      ASSERT_EQ(hi, lo);
    } else {
      ASSERT_LE(static_cast<double>(hi - lo + 1) / lo, 1.0 / kSub) << b;
    }
    expect_low = hi + 1;
  }
  EXPECT_EQ(expect_low - 1, kMax);
}

TEST(HistogramTest, RecordedValueKnownWithinRelativeErrorBound) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    int64_t v = static_cast<int64_t>(rng() % static_cast<uint64_t>(kMax));
    int b = Histogram::BucketOf(v);
    int64_t lo = Histogram::BucketLowest(b), hi = Histogram::BucketHighest(b);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_LE(static_cast<double>(hi - v), std::max(0.0, v / static_cast<double>(kSub)));
  }
}

TEST(HistogramTest, PercentilesMatchSortedReferenceOnRandomData) {
  std::mt19937_64 rng(42);
  // Log-normal-ish latencies: 1 us to several ms, the shape echo latencies have.
  std::lognormal_distribution<double> dist(std::log(20000.0), 1.0);
  std::vector<int64_t> ref;
  Histogram h;
  for (int i = 0; i < 200000; ++i) {
    int64_t v = static_cast<int64_t>(dist(rng));
    ref.push_back(v);
    h.Record(v);
  }
  std::sort(ref.begin(), ref.end());
  for (double p : {0.0, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    size_t rank = static_cast<size_t>(p / 100 * ref.size() + 0.5);
    rank = std::clamp<size_t>(rank, 1, ref.size());
    int64_t want = ref[rank - 1];
    int64_t got = h.ValueAtPercentile(p);
    // Never below the true value, above it by at most the bucket's width.
    EXPECT_GE(got, want) << "p" << p;
    EXPECT_LE(got - want, want / kSub + 1) << "p" << p;
  }
  EXPECT_EQ(h.ValueAtPercentile(100), ref.back());
  EXPECT_EQ(h.Max(), ref.back());
  EXPECT_EQ(h.Min(), ref.front());
  long double sum = 0, sq = 0;
  for (int64_t v : ref) sum += v;
  long double mean = sum / ref.size();
  for (int64_t v : ref) sq += (v - mean) * (v - mean);
  EXPECT_NEAR(h.Mean(), static_cast<double>(mean), 1e-6 * static_cast<double>(mean));
  EXPECT_NEAR(h.Stdev(), std::sqrt(static_cast<double>(sq / ref.size())),
              1e-6 * static_cast<double>(mean));
}

TEST(HistogramTest, MergeEqualsRecordingIntoOne) {
  std::mt19937_64 rng(7);
  Histogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    int64_t v = static_cast<int64_t>(rng() % 10'000'000);
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  Histogram merged;
  merged.Merge(a);
  merged.Merge(b);
  merged.Merge(Histogram());  // an empty one changes nothing
  EXPECT_EQ(merged.Count(), all.Count());
  EXPECT_EQ(merged.Min(), all.Min());
  EXPECT_EQ(merged.Max(), all.Max());
  EXPECT_DOUBLE_EQ(merged.Mean(), all.Mean());
  EXPECT_NEAR(merged.Stdev(), all.Stdev(), 1e-9 * all.Stdev());
  EXPECT_EQ(merged.Buckets(), all.Buckets());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(merged.ValueAtPercentile(p), all.ValueAtPercentile(p));
  }
}

TEST(HistogramTest, OutOfRangeValuesAreClampedAndCounted) {
  Histogram h;
  h.Record(-5);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Clamped(), 0u);
  h.Record(kMax);
  EXPECT_EQ(h.Clamped(), 0u);
  h.Record(kMax + 1);
  h.RecordN(INT64_MAX, 3);
  EXPECT_EQ(h.Clamped(), 4u);
  EXPECT_EQ(h.Count(), 6u);
  EXPECT_EQ(h.Max(), kMax);
  EXPECT_EQ(h.ValueAtPercentile(100), kMax);
}

TEST(HistogramTest, RecordNAndResetAndBuckets) {
  Histogram h;
  h.RecordN(1000, 10);
  h.RecordN(5, 0);  // nothing
  h.Record(3);
  EXPECT_EQ(h.Count(), 11u);
  EXPECT_EQ(h.Min(), 3);
  auto buckets = h.Buckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0], (std::pair<int64_t, uint64_t>{3, 1}));
  EXPECT_EQ(buckets[1].second, 10u);
  EXPECT_EQ(buckets[1].first, 1000);  // the bucket's top clamped to the recorded max
  EXPECT_EQ(h.ValueAtPercentile(50), 1000);
  EXPECT_DOUBLE_EQ(h.Mean(), (10 * 1000 + 3) / 11.0);
  h.Reset();
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.ValueAtPercentile(99), 0);
  EXPECT_TRUE(h.Buckets().empty());
}

}  // namespace
}  // namespace greenline::load
