// ExactSum and LossState (fastloss/accumulator.hpp): exact sums against
// exact rational arithmetic on small cases, merges in any order, words, and
// calls that add their sums to a state (the batches of an array give the
// one-shot call's value bit for bit).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace {

using fastloss::ExactSum;
using fastloss::LossState;
using fastloss::Reduction;

uint64_t Bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

ExactSum SumOf(const std::vector<double>& xs) {
  ExactSum s;
  for (double x : xs) s.Add(x);
  return s;
}

TEST(ExactSum, CancellationThatFloat64Loses) {
  EXPECT_EQ(SumOf({1e16, 1.0, -1e16}).Round(), 1.0);
  EXPECT_EQ(SumOf({1e308, 1e308, -1e308}).Round(), 1e308);  // no overflow on the way
  EXPECT_EQ(SumOf({0x1p-1074, 0x1p-1074, 0x1p-1074}).Round(), 3 * 0x1p-1074);
  EXPECT_EQ(SumOf({1.0, 0x1p-60, -1.0}).Round(), 0x1p-60);
  EXPECT_EQ(SumOf({}).Round(), 0.0);
  EXPECT_EQ(Bits(SumOf({-0.0}).Round()), Bits(0.0));
  EXPECT_EQ(SumOf({-3.5, 1.25}).Round(), -2.25);
}

TEST(ExactSum, RoundsToNearestEven) {
  // 1 + 2^-53 is a tie: to even (1); 1 + 2^-53 + 2^-100 rounds up.
  EXPECT_EQ(SumOf({1.0, 0x1p-53}).Round(), 1.0);
  EXPECT_EQ(SumOf({1.0, 0x1p-53, 0x1p-100}).Round(), 1.0 + 0x1p-52);
  EXPECT_EQ(SumOf({1.0 + 0x1p-52, 0x1p-53}).Round(), 1.0 + 0x1p-51);
  EXPECT_EQ(SumOf({-1.0, -0x1p-53, -0x1p-100}).Round(), -1.0 - 0x1p-52);
}

// ExactSum::Sum (the few-terms expansion, else the limbs) gives Round()'s
// bits: random terms of every magnitude and sign, ties across partials,
// cancellation, subnormals, zeros of both signs, non-finite terms and
// partials that overflow, for counts on both sides of kFewTerms.
TEST(ExactSum, SumOfFewTermsIsRoundBitForBit) {
  auto check = [](const std::vector<double>& xs) {
    const double got = ExactSum::Sum(xs.data(), static_cast<int64_t>(xs.size()));
    const double want = SumOf(xs).Round();
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      EXPECT_EQ(Bits(got), Bits(want)) << got << " vs " << want << " over " << xs.size();
    }
  };
  const double inf = std::numeric_limits<double>::infinity();
  const double big = std::numeric_limits<double>::max();
  check({});
  check({-0.0});
  check({-0.0, -0.0});
  check({0.0, -0.0, 0.0});
  check({1.0, 0x1p-53});
  check({1.0, 0x1p-53, 0x1p-100});
  check({1.0, 0x1p-53, -0x1p-100});
  check({-1.0, -0x1p-53, -0x1p-100});
  check({1.0 + 0x1p-52, 0x1p-53});
  check({0x1p-53, 1.0, 0x1p-106, 0x1p-160});
  check({1e16, 1.0, -1e16});
  check({big, big, -big});
  check({big, big});
  check({-big, -big, big, big, 1.0});
  check({1.0, inf});
  check({inf, -inf});
  check({1.0, std::nan("")});
  check({0x1p-1074, 0x1p-1074, -0x1p-1073});
  check({0x1p-1074, 0x1p-1022, -0x1p-1074});
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> exponent(-1080, 1030), count(0, 40), kind(0, 9);
  std::uniform_real_distribution<double> unit(0.5, 1.0);
  for (int trial = 0; trial < 200000; ++trial) {
    std::vector<double> xs(static_cast<size_t>(count(rng)));
    const int base = exponent(rng);
    for (double& x : xs) {
      const int k = kind(rng);
      // mostly nearby exponents (ties and cancellation), some far ones
      const int e = k < 7 ? base + static_cast<int>(rng() % 60) - 30 : exponent(rng);
      x = std::ldexp(k == 9 ? 1.0 : unit(rng), e);
      if (rng() & 1) x = -x;
    }
    if (!xs.empty() && trial % 3 == 0) xs.push_back(-xs[0]);  // exact cancellation
    if (!xs.empty() && trial % 5 == 0) xs.push_back(std::ldexp(xs[0], -53));  // a tie
    check(xs);
  }
}

TEST(ExactSum, NonFinite) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(SumOf({1.0, inf}).Round(), inf);
  EXPECT_EQ(SumOf({1.0, -inf}).Round(), -inf);
  EXPECT_TRUE(std::isnan(SumOf({inf, -inf}).Round()));
  EXPECT_TRUE(std::isnan(SumOf({1.0, std::nan("")}).Round()));
  const double big = std::numeric_limits<double>::max();
  EXPECT_EQ(SumOf({big, big}).Round(), inf);  // the exact sum rounds to inf
  EXPECT_EQ(SumOf({big, big, -big}).Round(), big);
}

TEST(ExactSum, MergeAndWordsAnyOrder) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::uniform_int_distribution<int> e(-300, 300);
  std::vector<double> xs(5000);
  for (double& x : xs) x = std::ldexp(u(rng), e(rng));
  const ExactSum all = SumOf(xs);
  std::vector<ExactSum> parts(7);
  for (size_t i = 0; i < xs.size(); ++i) parts[(i * 7919) % 7].Add(xs[i]);
  ExactSum fwd, rev;
  for (int k = 0; k < 7; ++k) fwd.Merge(parts[k]);
  for (int k = 6; k >= 0; --k) rev.Merge(parts[k]);
  EXPECT_TRUE(fwd == all);
  EXPECT_TRUE(rev == all);
  EXPECT_EQ(Bits(fwd.Round()), Bits(all.Round()));
  // words add as integers
  std::vector<int64_t> words(ExactSum::kWords, 0), one(ExactSum::kWords);
  for (const ExactSum& p : parts) {
    p.ToWords(one.data());
    for (int k = 0; k < ExactSum::kWords; ++k) words[k] += one[k];
  }
  EXPECT_TRUE(ExactSum::FromWords(words.data()) == all);
  words[0] = -1;
  EXPECT_THROW(ExactSum::FromWords(words.data()), fastloss::Error);
}

TEST(ExactSum, MultiplyBy) {
  ExactSum s = SumOf({0.1, 0.7, -0.25});
  ExactSum r = s;
  r.MultiplyBy(3);
  EXPECT_TRUE(r == SumOf({0.1, 0.7, -0.25, 0.1, 0.7, -0.25, 0.1, 0.7, -0.25}));
  ExactSum big = SumOf({1.5});
  big.MultiplyBy(int64_t{3} << 40);  // through the high part
  EXPECT_EQ(big.Round(), 1.5 * std::ldexp(3.0, 40));
}

template <class Run>
void ExpectBatchesEqualOneShot(int64_t n, int64_t batch, Run run) {
  LossState state;
  for (int64_t lo = 0; lo < n; lo += batch) run(lo, std::min(batch, n - lo), &state);
  LossState whole;
  const double one_shot = run(0, n, &whole);
  EXPECT_EQ(Bits(state.Result(Reduction::kMean)), Bits(one_shot));
  EXPECT_TRUE(state == whole);
  EXPECT_EQ(state.count, whole.count);
}

TEST(LossState, ElementwiseBatchesEqualOneShot) {
  const int64_t n = 10 * 1024 + 77;
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.f, 2.f);
  std::vector<float> y(n), p(n), w(n);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = d(rng);
    p[i] = d(rng);
    w[i] = std::fabs(d(rng));
  }
  ExpectBatchesEqualOneShot(n, 3 * 1024, [&](int64_t lo, int64_t m, LossState* s) {
    fastloss::Call<float> c;
    c.y_true = fastloss::View<const float>::Contiguous(&y[lo], {m});
    c.y_pred = fastloss::View<const float>::Contiguous(&p[lo], {m});
    c.weights = fastloss::View<const float>::Contiguous(&w[lo], {m});
    c.state = s;
    return fastloss::Huber(c, {/*delta=*/0.7});
  });
}

TEST(LossState, LabelRowsBatchesEqualOneShot) {
  const int64_t rows = 3000, C = 5;
  std::mt19937 rng(4);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<double> x(rows * C);
  std::vector<int64_t> lab(rows);
  for (double& v : x) v = d(rng);
  for (int64_t r = 0; r < rows; ++r) lab[r] = r % 11 == 0 ? -1 : r % C;
  fastloss::SparseCategoricalCrossEntropyOptions o;
  o.from_logits = true;
  o.ignore_index = -1;
  ExpectBatchesEqualOneShot(rows, 1024, [&](int64_t lo, int64_t m, LossState* s) {
    fastloss::LabelCall<double> c;
    c.labels = fastloss::View<const int64_t>::Contiguous(&lab[lo], {m});
    c.y_pred = fastloss::View<const double>::Contiguous(&x[lo * C], {m, C});
    c.state = s;
    return fastloss::SparseCategoricalCrossEntropy(c, o);
  });
}

TEST(Segments, OnePassEqualsEachSegmentsOwnCall) {
  const int64_t n = 5000;
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> y(n), p(n), w(n), g(n), g_own(n);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = d(rng);
    p[i] = d(rng);
    w[i] = 0.5f + std::fabs(d(rng));
  }
  const std::vector<int64_t> offsets{0, 3, 3, 1500, 1501, 4000, n};
  const int64_t S = static_cast<int64_t>(offsets.size()) - 1;
  std::vector<float> values(S);
  std::vector<LossState> states(S);
  fastloss::SegmentOutputs<float> seg;
  seg.offsets = fastloss::View<const int64_t>::Contiguous(offsets.data(), {S + 1});
  seg.values = values.data();
  seg.states = states.data();
  fastloss::Call<float> call;
  call.y_true = fastloss::View<const float>::Contiguous(y.data(), {n});
  call.y_pred = fastloss::View<const float>::Contiguous(p.data(), {n});
  call.weights = fastloss::View<const float>::Contiguous(w.data(), {n});
  call.grad = fastloss::View<float>::Contiguous(g.data(), {n});
  call.segments = &seg;
  fastloss::Huber(call, {/*delta=*/0.5});
  for (int64_t s = 0; s < S; ++s) {
    const int64_t lo = offsets[s], m = offsets[s + 1] - offsets[s];
    fastloss::Call<float> c;
    c.y_true = fastloss::View<const float>::Contiguous(y.data() + lo, {m});
    c.y_pred = fastloss::View<const float>::Contiguous(p.data() + lo, {m});
    c.weights = fastloss::View<const float>::Contiguous(w.data() + lo, {m});
    c.grad = fastloss::View<float>::Contiguous(g_own.data() + lo, {m});
    LossState own;
    c.state = &own;
    const float v = static_cast<float>(fastloss::Huber(c, {0.5}));
    if (m == 0) {
      EXPECT_TRUE(std::isnan(values[s]));
    } else {
      EXPECT_EQ(Bits(values[s]), Bits(v)) << "segment " << s;
    }
    EXPECT_TRUE(states[s] == own) << "segment " << s;
  }
  EXPECT_EQ(std::memcmp(g.data(), g_own.data(), n * sizeof(float)), 0);
  // Row-wise losses take segments through Segmented, not Call::segments.
  fastloss::Call<float> rows = call;
  rows.y_true = fastloss::View<const float>::Contiguous(y.data(), {1000, 5});
  rows.y_pred = fastloss::View<const float>::Contiguous(p.data(), {1000, 5});
  rows.weights.reset();
  rows.grad.reset();
  EXPECT_THROW(fastloss::CategoricalCrossEntropy(rows), fastloss::Error);
}

TEST(LossState, NoneReductionIsAnError) {
  std::vector<double> y(4), p(4), l(4);
  LossState s;
  fastloss::Call<double> c;
  c.y_true = fastloss::View<const double>::Contiguous(y.data(), {4});
  c.y_pred = fastloss::View<const double>::Contiguous(p.data(), {4});
  c.losses = fastloss::View<double>::Contiguous(l.data(), {4});
  c.reduction = Reduction::kNone;
  c.state = &s;
  EXPECT_THROW(fastloss::Mse(c), fastloss::Error);
  EXPECT_EQ(s.count, 0);
  EXPECT_THROW(s.Result(Reduction::kNone), fastloss::Error);
  EXPECT_TRUE(std::isnan(s.Result(Reduction::kMean)));
  EXPECT_EQ(s.Result(Reduction::kSum), 0.0);
}

// The losses of several inputs take segments through Segmented<MultiCall>:
// triplet_margin's rows, each segment its own call.
TEST(Segments, MultiInputRowsEachSegmentsOwnCall) {
  const int64_t n = 300, D = 4;
  std::mt19937 rng(11);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<double> x[3], g[3];
  for (auto& v : x) {
    v.resize(n * D);
    for (double& e : v) e = d(rng);
  }
  for (auto& v : g) v.assign(n * D, 0.0);
  const std::vector<int64_t> offsets{0, 100, 100, 257, n};
  const int64_t S = 4;
  fastloss::MultiCall<double> call;
  for (int k = 0; k < 3; ++k) {
    call.inputs[k] = fastloss::View<const double>::Contiguous(x[k].data(), {n, D});
    call.grads[k] = fastloss::View<double>::Contiguous(g[k].data(), {n, D});
  }
  std::vector<double> values(S);
  const std::function<double(const fastloss::MultiCall<double>&)> run =
      [](const fastloss::MultiCall<double>& c) { return fastloss::TripletMargin(c); };
  fastloss::Segmented<double, fastloss::MultiCall<double>>(
      "triplet_margin", call,
      fastloss::View<const int64_t>::Contiguous(offsets.data(), {S + 1}), values.data(),
      /*elements=*/false, /*loss_rank=*/1, run);
  EXPECT_TRUE(std::isnan(values[1]));
  for (int64_t s : {0, 2, 3}) {
    const int64_t lo = offsets[s], m = offsets[s + 1] - lo;
    fastloss::MultiCall<double> c;
    std::vector<double> own[3];
    for (int k = 0; k < 3; ++k) {
      own[k].assign(m * D, 0.0);
      c.inputs[k] = fastloss::View<const double>::Contiguous(x[k].data() + lo * D, {m, D});
      c.grads[k] = fastloss::View<double>::Contiguous(own[k].data(), {m, D});
    }
    EXPECT_EQ(Bits(values[s]), Bits(fastloss::TripletMargin(c))) << "segment " << s;
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(std::memcmp(g[k].data() + lo * D, own[k].data(), m * D * sizeof(double)), 0);
    }
  }
  // a mismatched input is an Error naming it
  fastloss::MultiCall<double> bad = call;
  bad.inputs[1] = fastloss::View<const double>::Contiguous(x[1].data(), {n - 1, D});
  EXPECT_THROW(fastloss::Segmented<double>("triplet_margin", bad,
                                           fastloss::View<const int64_t>::Contiguous(
                                               offsets.data(), {S + 1}),
                                           values.data(), false, 1, run),
               fastloss::Error);
}

// Dice over (N, C, L) with axis {0, 2}: one score per class over every
// batch. The state keeps the regions' exact sums; RegionResult is the
// one-shot call's value, bit for bit, and not the mean of the batches'.
TEST(LossState, RegionsSpanningBatchesGiveTheDatasetsScore) {
  const int64_t N = 12, C = 3, L = 512;  // 2 samples a batch: 1024 elements per region
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> y(N * C * L), p(N * C * L);
  for (size_t i = 0; i < y.size(); ++i) {
    // class 0 has its foreground in the first samples only
    const int64_t n = static_cast<int64_t>(i) / (C * L), c = (static_cast<int64_t>(i) / L) % C;
    y[i] = (c != 0 || n < 3) && u(rng) < 0.4f ? 1.f : 0.f;
    p[i] = 0.7f * y[i] + 0.3f * u(rng);
  }
  fastloss::DiceOptions o;
  o.all_axes = false;
  o.axes = {0, 2};
  auto call = [&](int64_t lo, int64_t m, LossState* s) {
    fastloss::Call<float> c;
    c.y_true = fastloss::View<const float>::Contiguous(&y[lo * C * L], {m, C, L});
    c.y_pred = fastloss::View<const float>::Contiguous(&p[lo * C * L], {m, C, L});
    c.state = s;
    return fastloss::Dice(c, o);
  };
  const double whole = call(0, N, nullptr);
  LossState a, b;
  double batch_mean = 0.0;
  for (int64_t lo = 0; lo < N; lo += 2) {
    LossState one;
    batch_mean += call(lo, 2, &one) / 6.0;
    (lo < 6 ? a : b).Merge(one);
  }
  EXPECT_EQ(a.sums.size(), static_cast<size_t>(C * 3));
  b.Merge(a);
  EXPECT_EQ(b.count, N * C * L);
  EXPECT_EQ(Bits(fastloss::RegionResult(b, o)), Bits(whole));
  EXPECT_GT(std::fabs(whole - batch_mean), 1e-3);
  double losses[3];
  const double sum = fastloss::RegionResult(b, o, Reduction::kSum, losses);
  EXPECT_NEAR(sum, losses[0] + losses[1] + losses[2], 1e-15);
  EXPECT_THROW(b.Result(Reduction::kMean), fastloss::Error);
  // words round trip; a state of other regions does not merge
  std::vector<int64_t> words(b.Words());
  b.ToWords(words.data());
  EXPECT_TRUE(LossState::FromWords(words.data(), words.size()) == b);
  LossState other;
  other.sums.resize(6);
  EXPECT_THROW(b.Merge(other), fastloss::Error);
  // weights with a state of spanning regions: an error that adds nothing
  std::vector<float> w(C, 1.f);
  fastloss::Call<float> c;
  c.y_true = fastloss::View<const float>::Contiguous(y.data(), {N, C, L});
  c.y_pred = fastloss::View<const float>::Contiguous(p.data(), {N, C, L});
  c.weights = fastloss::View<const float>::Contiguous(w.data(), {C});
  LossState before = b;
  c.state = &b;
  EXPECT_THROW(fastloss::Dice(c, o), fastloss::Error);
  EXPECT_TRUE(b == before);
}

}  // namespace
