// The elementwise driver (cpp/src/drivers/elementwise/elementwise.cc) every loss runs through:
// reductions and gradient scaling, weights broadcasting, strided / negative /
// broadcast views, outputs written only inside their views, in-place
// updates, empty and 0-d inputs, and the argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"
#include "reference.h"
#include "ulp.h"

namespace fastloss_test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

static_assert(std::is_base_of<std::invalid_argument, fastloss::Error>::value,
              "fastloss::Error must be a std::invalid_argument");

template <typename T>
View<const T> Vec(const std::vector<T>& x) {
  return View<const T>::Contiguous(x.data(), {static_cast<int64_t>(x.size())});
}

LossConfig Config(const std::string& name) {
  for (const LossConfig& c : AllConfigs()) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no config " << name;
  return LossConfig{};
}

// --- Reductions and gradient scaling, computed by hand. ---

// mse, y = 0, p = (1, 2, 3): l = (1, 4, 9), dl = (2, 4, 6).
TEST(Reductions, ByHand) {
  const std::vector<double> y = {0, 0, 0}, p = {1, 2, 3};
  std::vector<double> g(3), l(3);
  Call<double> call;
  call.y_true = Vec(y);
  call.y_pred = Vec(p);
  call.grad = View<double>::Contiguous(g.data(), {3});

  call.reduction = Reduction::kMean;
  EXPECT_DOUBLE_EQ(fastloss::Mse(call), 14.0 / 3);
  EXPECT_DOUBLE_EQ(g[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(g[1], 4.0 / 3);
  EXPECT_DOUBLE_EQ(g[2], 2.0);

  call.reduction = Reduction::kSum;
  EXPECT_EQ(fastloss::Mse(call), 14.0);
  EXPECT_EQ(g, (std::vector<double>{2, 4, 6}));

  call.reduction = Reduction::kNone;
  call.losses = View<double>::Contiguous(l.data(), {3});
  g.assign(3, 0.0);
  EXPECT_EQ(fastloss::Mse(call), 0.0);
  EXPECT_EQ(l, (std::vector<double>{1, 4, 9}));
  EXPECT_EQ(g, (std::vector<double>{2, 4, 6}));
}

// Weighted: mean = sum(w l) / sum(w), gradient w dl / sum(w); sum and none
// carry w.
TEST(Reductions, WeightedByHand) {
  const std::vector<float> y = {0, 0, 0}, p = {1, 2, 3}, w = {1, 0, 2};
  std::vector<float> g(3), l(3);
  Call<float> call;
  call.y_true = Vec(y);
  call.y_pred = Vec(p);
  call.weights = Vec(w);
  call.grad = View<float>::Contiguous(g.data(), {3});

  call.reduction = Reduction::kMean;  // (1 + 0 + 18) / 3
  EXPECT_NEAR(fastloss::Mse(call), 19.0 / 3, 1e-6);
  EXPECT_FLOAT_EQ(g[0], 2.0f / 3);
  EXPECT_EQ(g[1], 0.0f);
  EXPECT_FLOAT_EQ(g[2], 4.0f);

  call.reduction = Reduction::kSum;
  EXPECT_EQ(fastloss::Mse(call), 19.0);
  EXPECT_EQ(g, (std::vector<float>{2, 0, 12}));

  call.reduction = Reduction::kNone;
  call.losses = View<float>::Contiguous(l.data(), {3});
  EXPECT_EQ(fastloss::Mse(call), 0.0);
  EXPECT_EQ(l, (std::vector<float>{1, 0, 18}));
  EXPECT_EQ(g, (std::vector<float>{2, 0, 12}));
}

// kNone with only a gradient (no losses buffer) is allowed; the losses view
// of a mean / sum call is ignored.
TEST(Reductions, OutputsPerReduction) {
  const std::vector<double> y = {0, 1}, p = {2, -1};
  StridedArray<double> g(2), l(2);
  Call<double> call;
  call.y_true = Vec(y);
  call.y_pred = Vec(p);
  call.reduction = Reduction::kNone;
  call.grad = g.view();
  EXPECT_EQ(fastloss::Mae(call), 0.0);
  EXPECT_EQ(g.Values(), (std::vector<double>{1, -1}));
  EXPECT_TRUE(g.OnlyViewWritten());

  call.grad.reset();
  call.losses = l.view();
  call.reduction = Reduction::kSum;
  EXPECT_EQ(fastloss::Mae(call), 4.0);
  EXPECT_TRUE(l.Untouched());
}

// --- Weights broadcasting. ---

struct WeightCase {
  const char* name;
  std::vector<int64_t> shape;    // y_pred's
  std::vector<int64_t> w_shape;  // the weights', broadcast to it
};

template <typename T>
void CheckWeights(const LossConfig& c, const WeightCase& wc, uint64_t seed) {
  SCOPED_TRACE(std::string(wc.name) + " " + c.name + " " + DtypeName<T>());
  int64_t n = 1, nw = 1;
  for (int64_t s : wc.shape) n *= s;
  for (int64_t s : wc.w_shape) nw *= s;
  std::vector<double> y64, p64;
  MakeData(c, n, seed, &y64, &p64);
  const std::vector<T> y = Cast<T>(y64), p = Cast<T>(p64);
  std::vector<double> w64 = MakeWeights(nw, seed);
  w64[0] = 0.75;  // sum(w) > 0 even for a single weight
  const std::vector<T> w = Cast<T>(w64);
  std::vector<int64_t> strides(wc.shape.size()), w_strides(wc.w_shape.size());
  for (int64_t k = static_cast<int64_t>(wc.shape.size()) - 1, s = 1; k >= 0; --k) {
    strides[static_cast<size_t>(k)] = s;
    s *= wc.shape[static_cast<size_t>(k)];
  }
  for (int64_t k = static_cast<int64_t>(wc.w_shape.size()) - 1, s = 1; k >= 0; --k) {
    w_strides[static_cast<size_t>(k)] = s;
    s *= wc.w_shape[static_cast<size_t>(k)];
  }
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    SCOPED_TRACE(ReductionName(r));
    StridedArray<T> grad(wc.shape, strides), losses(wc.shape, strides);
    Call<T> call;
    call.y_true = MakeView<const T>(y.data(), wc.shape, strides);
    call.y_pred = MakeView<const T>(p.data(), wc.shape, strides);
    call.weights = MakeView<const T>(w.data(), wc.w_shape, w_strides);
    call.reduction = r;
    call.grad = grad.view();
    call.losses = losses.view();
    EXPECT_TRUE(RunAndCheck(c, call));
    EXPECT_TRUE(grad.OnlyViewWritten());
  }
}

const WeightCase kWeightCases[] = {
    {"per_sample", {300, 7}, {300, 1}},
    {"per_time_step", {300, 7}, {7}},
    {"per_time_step_2d", {300, 7}, {1, 7}},
    {"full", {300, 7}, {300, 7}},
    {"scalar", {300, 7}, {}},
    {"one", {300, 7}, {1}},
    {"rank3_per_row", {4, 150, 5}, {150, 1}},
    {"rank3_leading", {4, 150, 5}, {4, 1, 1}},
    {"rank3_middle", {4, 150, 5}, {1, 150, 1}},
    {"one_element", {1, 1}, {1, 1}},
    {"vector_full", {2500}, {2500}},
};

class WeightsTest : public ::testing::TestWithParam<LossConfig> {};

TEST_P(WeightsTest, Broadcasting) {
  for (const WeightCase& wc : kWeightCases) {
    CheckWeights<float>(GetParam(), wc, 11);
    CheckWeights<double>(GetParam(), wc, 12);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Losses, WeightsTest, ::testing::ValuesIn(AllConfigs()),
    [](const ::testing::TestParamInfo<LossConfig>& info) { return info.param.name; });

// Per-sample weights (N, 1) on (N, T) give the same as the full weights
// they stand for, bit for bit (the driver sums w * l in the same order).
TEST(Weights, PerSampleEqualsExpanded) {
  const int64_t n = 500, t = 9;
  std::vector<double> y64, p64;
  MakeData(Config("huber"), n * t, 5, &y64, &p64);
  const std::vector<float> y = Cast<float>(y64), p = Cast<float>(p64);
  const std::vector<float> ws = Cast<float>(MakeWeights(n, 5));
  std::vector<float> wf(static_cast<size_t>(n * t));
  for (int64_t i = 0; i < n * t; ++i) wf[static_cast<size_t>(i)] = ws[static_cast<size_t>(i / t)];
  std::vector<float> g1(static_cast<size_t>(n * t)), g2(static_cast<size_t>(n * t));
  for (Reduction r : {Reduction::kSum, Reduction::kNone}) {
    Call<float> call;
    call.y_true = View<const float>::Contiguous(y.data(), {n, t});
    call.y_pred = View<const float>::Contiguous(p.data(), {n, t});
    call.reduction = r;
    call.weights = View<const float>::Contiguous(ws.data(), {n, 1});
    call.grad = View<float>::Contiguous(g1.data(), {n, t});
    const double v1 = fastloss::Huber(call);
    call.weights = View<const float>::Contiguous(wf.data(), {n, t});
    call.grad = View<float>::Contiguous(g2.data(), {n, t});
    const double v2 = fastloss::Huber(call);
    EXPECT_TRUE(SameBits(v1, v2)) << v1 << " vs " << v2;
    EXPECT_EQ(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)), 0);
  }
}

// Weights with a negative stride, and a strided (N, 1) weights view.
TEST(Weights, StridedWeights) {
  const LossConfig c = Config("log_cosh");
  const int64_t n = 700, t = 3;
  std::vector<double> y, p;
  MakeData(c, n * t, 9, &y, &p);
  StridedArray<double> w({n, 1}, {-2, 5});
  w.Fill(MakeWeights(n, 9));
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    std::vector<double> g(static_cast<size_t>(n * t));
    Call<double> call;
    call.y_true = View<const double>::Contiguous(y.data(), {n, t});
    call.y_pred = View<const double>::Contiguous(p.data(), {n, t});
    call.weights = w.cview();
    call.grad = View<double>::Contiguous(g.data(), {n, t});
    call.reduction = r;
    EXPECT_TRUE(RunAndCheck(c, call)) << ReductionName(r);
  }
}

// --- Strided, negative-stride and broadcast views. ---

struct Layout {
  const char* name;
  std::vector<int64_t> shape;
  std::vector<int64_t> y_strides, p_strides, grad_strides, losses_strides;
};

std::vector<int64_t> CStrides(const std::vector<int64_t>& shape, int64_t inner = 1) {
  std::vector<int64_t> s(shape.size());
  int64_t st = inner;
  for (size_t k = shape.size(); k-- > 0;) {
    s[k] = st;
    st *= shape[k];
  }
  return s;
}

std::vector<Layout> Layouts() {
  std::vector<Layout> out;
  for (int64_t n : {1, 9, 2500}) {
    out.push_back({"stride2", {n}, {3}, {2}, {2}, {-1}});
    out.push_back({"negative", {n}, {-1}, {-3}, {-2}, {2}});
    out.push_back({"broadcast_y", {n}, {0}, {1}, {1}, {1}});
    out.push_back({"contiguous_in_strided_out", {n}, {1}, {1}, {2}, {3}});
  }
  const std::vector<int64_t> s2 = {37, 61};
  out.push_back({"transposed", s2, {1, 37}, {1, 37}, {61, 1}, {1, 37}});
  out.push_back({"padded_rows", s2, {64, 1}, {-70, 1}, {1, 37}, {61, -1}});
  out.push_back({"row_broadcast", s2, {0, 1}, {61, 1}, {-61, -1}, {122, 2}});
  out.push_back({"column_broadcast", s2, {1, 0}, {1, 40}, {61, 1}, {61, 1}});
  const std::vector<int64_t> s3 = {3, 1, 5, 40};
  out.push_back({"rank4_mixed", s3, {1, 7, 3, 15}, CStrides(s3, 2), {-200, 0, 40, 1},
                 CStrides(s3)});
  return out;
}

// Against the reference; bit-identical to the same call on contiguous copies
// of the inputs (the fold order depends only on the logical index); nothing
// outside the output views written.
template <typename T>
void CheckLayout(const LossConfig& c, const Layout& lay, Reduction r) {
  SCOPED_TRACE(std::string(lay.name) + " " + c.name + " " + DtypeName<T>() + " " +
               ReductionName(r) + " n=" + std::to_string(lay.shape[0]));
  StridedArray<T> y(lay.shape, lay.y_strides), p(lay.shape, lay.p_strides);
  StridedArray<T> grad(lay.shape, lay.grad_strides), losses(lay.shape, lay.losses_strides);
  const int64_t n = p.size();
  std::vector<double> y64, p64;
  MakeData(c, n, 21, &y64, &p64);
  y.Fill(Cast<T>(y64));
  p.Fill(Cast<T>(p64));
  const std::vector<T> yv = y.Values(), pv = p.Values();

  Call<T> call;
  call.y_true = y.cview();
  call.y_pred = p.cview();
  call.reduction = r;
  call.grad = grad.view();
  call.losses = losses.view();
  if (!(r == Reduction::kNone)) call.losses.reset();
  double v = 0;
  EXPECT_TRUE(RunAndCheck(c, call, &v));
  EXPECT_TRUE(grad.OnlyViewWritten());
  if (r == Reduction::kNone) {
    EXPECT_TRUE(losses.OnlyViewWritten());
  } else {
    EXPECT_TRUE(losses.Untouched());
  }

  std::vector<T> g2(static_cast<size_t>(n)), l2(static_cast<size_t>(n));
  Call<T> flat = call;
  flat.y_true = MakeView<const T>(yv.data(), lay.shape, CStrides(lay.shape));
  flat.y_pred = MakeView<const T>(pv.data(), lay.shape, CStrides(lay.shape));
  flat.grad = MakeView<T>(g2.data(), lay.shape, CStrides(lay.shape));
  flat.losses = MakeView<T>(l2.data(), lay.shape, CStrides(lay.shape));
  const double v2 = RunLoss(c, flat);
  EXPECT_TRUE(SameBits(v, v2)) << "strided " << v << " vs contiguous " << v2;
  const std::vector<T> gv = grad.Values();
  EXPECT_EQ(std::memcmp(gv.data(), g2.data(), gv.size() * sizeof(T)), 0)
      << "grad differs from the contiguous call";
  if (r == Reduction::kNone) {
    const std::vector<T> lv = losses.Values();
    EXPECT_EQ(std::memcmp(lv.data(), l2.data(), lv.size() * sizeof(T)), 0)
        << "losses differ from the contiguous call";
  }
}

class StridesTest : public ::testing::TestWithParam<LossConfig> {};

TEST_P(StridesTest, Layouts) {
  for (const Layout& lay : Layouts()) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      CheckLayout<float>(GetParam(), lay, r);
      CheckLayout<double>(GetParam(), lay, r);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Losses, StridesTest, ::testing::ValuesIn(DefaultConfigs()),
    [](const ::testing::TestParamInfo<LossConfig>& info) { return info.param.name; });

// A 0-d (rank 0) call is one element; so is a rank-kMaxRank call of ones.
TEST(Views, ZeroDimAndMaxRank) {
  const double y = 1.0, p = 3.5;
  double g = 0;
  Call<double> call;
  call.y_true.data = &y;
  call.y_pred.data = &p;
  call.grad.emplace().data = &g;
  EXPECT_EQ(fastloss::Mse(call), 6.25);
  EXPECT_EQ(g, 5.0);

  // Rank kMaxRank, every dimension 1 but two.
  std::vector<int64_t> shape(fastloss::kMaxRank, 1), strides(fastloss::kMaxRank, 6);
  shape[3] = 2;
  strides[3] = 3;
  shape[20] = 3;
  strides[20] = 1;
  const std::vector<double> yv(6, 1.0), pv = {0, 1, 2, 3, 4, 5};
  std::vector<double> gv(6);
  Call<double> big;
  big.y_true = MakeView<const double>(yv.data(), shape, strides);
  big.y_pred = MakeView<const double>(pv.data(), shape, strides);
  big.grad = MakeView<double>(gv.data(), shape, strides);
  big.reduction = Reduction::kSum;
  EXPECT_EQ(fastloss::Mse(big), 1 + 0 + 1 + 4 + 9 + 16);
  EXPECT_EQ(gv, (std::vector<double>{-2, 0, 2, 4, 6, 8}));
}

// --- In-place updates. ---

template <typename T>
void CheckInPlace(const LossConfig& c, int64_t n, int64_t stride, bool alias_y_true,
                  Reduction r) {
  SCOPED_TRACE(c.name + " " + DtypeName<T>() + " n=" + std::to_string(n) + " stride=" +
               std::to_string(stride) + (alias_y_true ? " into y_true" : " into y_pred") +
               " " + ReductionName(r));
  std::vector<double> y64, p64;
  MakeData(c, n, 31, &y64, &p64);
  StridedArray<T> y({n}, {stride}), p({n}, {stride});
  y.Fill(Cast<T>(y64));
  p.Fill(Cast<T>(p64));
  // Out of place first.
  StridedArray<T> g({n}, {stride});
  Call<T> call;
  call.y_true = y.cview();
  call.y_pred = p.cview();
  call.reduction = r;
  call.grad = g.view();
  const Expected e = Reference(c, call);
  const double v1 = RunLoss(c, call);
  // In place: the gradient overwrites the input.
  call.grad = alias_y_true ? y.view() : p.view();
  const double v2 = RunLoss(c, call);
  EXPECT_TRUE(MatchesReference(e, call, v2));
  EXPECT_TRUE(SameBits(v1, v2)) << v1 << " vs " << v2;
  const std::vector<T> g1 = g.Values(), g2 = (alias_y_true ? y : p).Values();
  EXPECT_EQ(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(T)), 0);
  EXPECT_TRUE((alias_y_true ? y : p).OnlyViewWritten());
}

class InPlaceTest : public ::testing::TestWithParam<LossConfig> {};

TEST_P(InPlaceTest, GradAliasesInput) {
  for (int64_t n : {1, 33, 5000}) {
    for (int64_t stride : {1, 2, -1}) {
      for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
        CheckInPlace<float>(GetParam(), n, stride, false, r);
        CheckInPlace<double>(GetParam(), n, stride, false, r);
      }
    }
    CheckInPlace<double>(GetParam(), n, 1, true, Reduction::kSum);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Losses, InPlaceTest, ::testing::ValuesIn(DefaultConfigs()),
    [](const ::testing::TestParamInfo<LossConfig>& info) { return info.param.name; });

// A 2-D in-place update through a transposed view.
TEST(InPlace, TransposedAlias) {
  const LossConfig c = Config("huber");
  StridedArray<double> y({40, 30}, {1, 40}), p({40, 30}, {1, 40});
  std::vector<double> y64, p64;
  MakeData(c, 1200, 4, &y64, &p64);
  y.Fill(y64);
  p.Fill(p64);
  Call<double> call;
  call.y_true = y.cview();
  call.y_pred = p.cview();
  call.grad = p.view();
  call.reduction = Reduction::kSum;
  EXPECT_TRUE(RunAndCheck(c, call));
}

// Partial overlaps of an output with an input throw before anything is
// written.
TEST(InPlace, PartialOverlapThrows) {
  const int64_t n = 100;
  std::vector<double> buf(2 * n + 2);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = 0.01 * static_cast<double>(i);
  const std::vector<double> before = buf;
  std::vector<double> y(n, 0.5), w(n, 1.0);
  Call<double> call;
  call.y_true = Vec(y);
  call.y_pred = View<const double>::Contiguous(buf.data(), {n});
  call.grad = View<double>::Contiguous(buf.data() + 1, {n});  // shifted by one
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    call.reduction = r;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad"}))
        << ReductionName(r);
  }
  // Shifted back by one; a reversed view over the same memory; the same
  // memory with stride 2 over twice the span.
  call.grad = View<double>::Contiguous(buf.data() + 1, {n});
  call.y_pred = View<const double>::Contiguous(buf.data() + 2, {n});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad"}));
  call.y_pred = View<const double>::Contiguous(buf.data(), {n});
  call.grad = MakeView<double>(buf.data() + n - 1, {n}, {-1});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad"}));
  call.grad = MakeView<double>(buf.data(), {n}, {2});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad"}));
  // Overlapping y_true or the weights.
  call.y_pred = Vec(y);
  call.y_true = View<const double>::Contiguous(buf.data(), {n});
  call.grad = View<double>::Contiguous(buf.data() + 1, {n});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad"}));
  call.y_true = Vec(y);
  call.weights = View<const double>::Contiguous(buf.data() + 3, {n});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad"}));
  // The per-element losses overlapping y_pred.
  call.weights.reset();
  call.grad.reset();
  call.y_pred = View<const double>::Contiguous(buf.data(), {n});
  call.losses = View<double>::Contiguous(buf.data() + 5, {n});
  call.reduction = Reduction::kNone;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"losses"}));
  EXPECT_EQ(buf, before) << "a rejected call wrote to its output";
}

// --- Empty input. ---

template <typename T>
void CheckEmpty(const LossConfig& c, std::vector<int64_t> shape) {
  SCOPED_TRACE(c.name + " " + DtypeName<T>() + " rank " + std::to_string(shape.size()));
  const std::vector<int64_t> strides = CStrides(shape);
  StridedArray<T> y(shape, strides), p(shape, strides), w(shape, strides);
  StridedArray<T> g(shape, strides), l(shape, strides);
  for (bool weighted : {false, true}) {
    Call<T> call;
    call.y_true = y.cview();
    call.y_pred = p.cview();
    call.weights = w.cview();
    if (!(weighted)) call.weights.reset();
    call.grad = g.view();
    call.losses = l.view();
    call.reduction = Reduction::kSum;
    EXPECT_EQ(RunLoss(c, call), 0.0);
    EXPECT_EQ(RunLoss(c, call), 0.0);
    call.reduction = Reduction::kMean;
    EXPECT_TRUE(std::isnan(RunLoss(c, call)));
    call.grad.reset();
    EXPECT_TRUE(std::isnan(RunLoss(c, call)));
    call.reduction = Reduction::kNone;
    call.losses = l.view();
    EXPECT_EQ(RunLoss(c, call), 0.0);
    call.grad = g.view();
    EXPECT_EQ(RunLoss(c, call), 0.0);
    EXPECT_TRUE(g.Untouched());
    EXPECT_TRUE(l.Untouched());
  }
  // No data at all (nullptr) is fine when the size is 0.
  Call<T> call;
  call.y_true = MakeView<const T>(nullptr, shape, strides);
  call.y_pred = MakeView<const T>(nullptr, shape, strides);
  EXPECT_TRUE(std::isnan(RunLoss(c, call)));
  call.reduction = Reduction::kSum;
  EXPECT_EQ(RunLoss(c, call), 0.0);
}

TEST(Empty, SumIsZeroMeanIsNaN) {
  for (const LossConfig& c : AllConfigs()) {
    CheckEmpty<float>(c, {0});
    CheckEmpty<double>(c, {0});
    CheckEmpty<double>(c, {3, 0});
    CheckEmpty<float>(c, {0, 5, 2});
  }
}

// --- Argument errors: fastloss::Error (a std::invalid_argument) naming the
// argument, thrown before any output is written. ---

template <typename T>
struct ErrorSetup {
  std::vector<T> y = std::vector<T>(12, T(1)), p = std::vector<T>(12, T(2));
  StridedArray<T> grad{12}, losses{12};
  Call<T> call;
  ErrorSetup() {
    call.y_true = View<const T>::Contiguous(y.data(), {4, 3});
    call.y_pred = View<const T>::Contiguous(p.data(), {4, 3});
    call.grad = MakeView<T>(grad.view().data, {4, 3}, {3, 1});
    call.losses = MakeView<T>(losses.view().data, {4, 3}, {3, 1});
  }
  ::testing::AssertionResult NothingWritten() const {
    if (!grad.Untouched()) return grad.Untouched();
    return losses.Untouched();
  }
};

template <typename T>
void CheckOptionErrors() {
  SCOPED_TRACE(DtypeName<T>());
  ErrorSetup<T> s;
  const Call<T>& call = s.call;
  for (double delta : {0.0, -1.0, -1e-300, kNaN, -kInf}) {
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Huber(call, {delta}); }, {"delta"}))
        << "delta=" << delta;
  }
  for (double beta : {-1e-300, -1.0, kNaN, -kInf}) {
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::SmoothL1(call, {beta}); }, {"beta"}))
        << "beta=" << beta;
  }
  for (double q : {0.0, 1.0, -0.5, 1.5, kNaN, kInf}) {
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Quantile(call, {q}); }, {"q"}))
        << "q=" << q;
  }
  for (double eps : {0.0, -1.0, kNaN, -kInf}) {
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mape(call, {eps}); }, {"eps"}))
        << "mape eps=" << eps;
  }
  for (double eps : {-1e-8, kNaN, -kInf}) {
    fastloss::PoissonNllOptions o;
    o.eps = eps;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PoissonNll(call, o); }, {"eps"}))
        << "poisson eps=" << eps;
    o.log_input = false;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PoissonNll(call, o); }, {"eps"}))
        << "poisson eps=" << eps;
  }
  EXPECT_TRUE(s.NothingWritten());
  // The boundaries that are allowed.
  EXPECT_NO_THROW(fastloss::SmoothL1(call, {0.0}));
  fastloss::PoissonNllOptions zero;
  zero.eps = 0.0;
  EXPECT_NO_THROW(fastloss::PoissonNll(call, zero));
  EXPECT_NO_THROW(fastloss::Quantile(call, {1e-12}));
  EXPECT_NO_THROW(fastloss::Quantile(call, {1.0 - 1e-12}));
  EXPECT_NO_THROW(fastloss::Huber(call, {1e-300}));
  EXPECT_NO_THROW(fastloss::Mape(call, {1e-300}));
}

TEST(Errors, Options) {
  CheckOptionErrors<float>();
  CheckOptionErrors<double>();
}

// Option errors come first, even for an empty input.
TEST(Errors, OptionsCheckedOnEmptyInput) {
  Call<double> call;
  call.y_true = MakeView<const double>(nullptr, {0}, {1});
  call.y_pred = MakeView<const double>(nullptr, {0}, {1});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Huber(call, {-1.0}); }, {"delta"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Quantile(call, {1.0}); }, {"q"}));
}

template <typename T>
void CheckShapeErrors() {
  SCOPED_TRACE(DtypeName<T>());
  for (const LossConfig& c : DefaultConfigs()) {
    SCOPED_TRACE(c.name);
    {  // (12,) vs (12, 1).
      ErrorSetup<T> s;
      s.call.y_true = View<const T>::Contiguous(s.y.data(), {12});
      s.call.y_pred = View<const T>::Contiguous(s.p.data(), {12, 1});
      s.call.grad = View<T>::Contiguous(s.grad.view().data, {12, 1});
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"y_true", "y_pred"}));
      EXPECT_TRUE(s.NothingWritten());
    }
    {  // (4, 3) vs (3, 4), same size.
      ErrorSetup<T> s;
      s.call.y_true = View<const T>::Contiguous(s.y.data(), {3, 4});
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"y_true", "y_pred"}));
      EXPECT_TRUE(s.NothingWritten());
    }
    {  // Weights (4,) against (4, 3): right-aligned, 4 != 3.
      ErrorSetup<T> s;
      std::vector<T> w(12, T(1));
      for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
        s.call.reduction = r;
        for (auto shape : {std::vector<int64_t>{4}, std::vector<int64_t>{2, 3},
                           std::vector<int64_t>{1, 4, 3}, std::vector<int64_t>{4, 2},
                           std::vector<int64_t>{12}}) {
          s.call.weights = MakeView<const T>(w.data(), shape, CStrides(shape));
          EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"weights"}))
              << ReductionName(r) << " rank " << shape.size();
        }
      }
      EXPECT_TRUE(s.NothingWritten());
    }
    {  // Output shapes.
      ErrorSetup<T> s;
      s.call.grad = View<T>::Contiguous(s.grad.view().data, {3, 4});
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"grad"}));
      s.call.grad = View<T>::Contiguous(s.grad.view().data, {4, 3});
      s.call.reduction = Reduction::kNone;
      s.call.losses = View<T>::Contiguous(s.losses.view().data, {12});
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"losses"}));
      EXPECT_TRUE(s.NothingWritten());
    }
    {  // reduction none with neither output.
      ErrorSetup<T> s;
      s.call.reduction = Reduction::kNone;
      s.call.grad.reset();
      s.call.losses.reset();
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"none"}));
    }
    {  // Missing data, negative dimensions, too many dimensions.
      ErrorSetup<T> s;
      s.call.y_pred.data = nullptr;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"y_pred"}));
      s.call.y_pred = View<const T>::Contiguous(s.p.data(), {4, 3});
      s.call.grad->data = nullptr;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"grad"}));
      s.call.grad = View<T>::Contiguous(s.grad.view().data, {4, 3});
      s.call.y_true.shape[0] = -4;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"y_true"}));
      s.call.y_true.shape[0] = 4;
      s.call.y_true.rank = fastloss::kMaxRank + 1;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"y_true"}));
      s.call.y_true.rank = -1;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { RunLoss(c, s.call); }, {"y_true"}));
      EXPECT_TRUE(s.NothingWritten());
    }
  }
}

TEST(Errors, Shapes) {
  CheckShapeErrors<float>();
  CheckShapeErrors<double>();
}

TEST(Errors, CatchableAsInvalidArgument) {
  ErrorSetup<double> s;
  EXPECT_THROW(fastloss::Huber(s.call, {0.0}), std::invalid_argument);
  s.call.y_true = View<const double>::Contiguous(s.y.data(), {12});
  EXPECT_THROW(fastloss::Mse(s.call), std::invalid_argument);
  EXPECT_THROW(fastloss::SetNumThreads(0), std::invalid_argument);
}

// --- Two inputs and a target (the Elements rows): gaussian_nll's two
// gradients from one pass, on every SIMD target and every tail length. ---

using ElementsTest = OnSimdTarget;

template <typename T>
void CheckGaussianNll(int n, bool full) {
  SCOPED_TRACE("n = " + std::to_string(n) + (full ? " full" : ""));
  std::vector<T> x(n), t(n), var(n), w(n), g1(n, T(7)), g2(n, T(7)), l(n, T(7));
  for (int i = 0; i < n; ++i) {
    x[i] = static_cast<T>(std::sin(1.3 * i + 0.2) * 2.0);
    t[i] = static_cast<T>(std::cos(0.7 * i));
    var[i] = i % 11 == 3 ? T(0) : static_cast<T>(0.1 + 0.37 * (i % 7));
    w[i] = static_cast<T>(0.5 + 0.25 * (i % 3));
  }
  fastloss::MultiCall<T> call;
  call.inputs[0] = Vec(x);
  call.inputs[1] = Vec(var);
  call.target = Vec(t);
  call.weights = Vec(w);
  call.grads[0] = View<T>::Contiguous(g1.data(), {n});
  call.grads[1] = View<T>::Contiguous(g2.data(), {n});
  fastloss::GaussianNllOptions o;
  o.full = full;
  call.reduction = Reduction::kSum;
  const double sum = fastloss::GaussianNll(call, o);
  call.reduction = Reduction::kNone;
  call.losses = View<T>::Contiguous(l.data(), {n});
  fastloss::GaussianNll(call, o);
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-14;
  double expect_sum = 0.0;
  for (int i = 0; i < n; ++i) {
    const double v = std::max(static_cast<double>(var[i]), 1e-6);
    const double r = static_cast<double>(x[i]) - static_cast<double>(t[i]);
    const double li = 0.5 * (std::log(v) + r * r / v) + (full ? 0.5 * std::log(2 * M_PI) : 0.0);
    const double mag = 0.5 * std::fabs(std::log(v)) + r * r / v + 1.0;
    expect_sum += w[i] * li;
    EXPECT_NEAR(l[i], w[i] * li, tol * mag * 4) << i;
    EXPECT_NEAR(g1[i], w[i] * r / v, tol * 4 * (1 + std::fabs(r) / v)) << i;
    EXPECT_NEAR(g2[i], w[i] * 0.5 * (1 / v - r * r / (v * v)), tol * 4 * (1 / v + r * r / (v * v))) << i;
  }
  EXPECT_NEAR(sum, expect_sum, 1e-5 * (1 + std::fabs(expect_sum)) * (tol > 1e-10 ? 10 : 1e-6));
}

TEST_P(ElementsTest, GaussianNllBothGradientsEveryTail) {
  for (int n = 1; n <= 40; ++n) {
    CheckGaussianNll<float>(n, n % 2 == 0);
    CheckGaussianNll<double>(n, n % 2 == 1);
  }
  CheckGaussianNll<float>(5000, true);
  CheckGaussianNll<double>(5000, false);
}

TEST_P(ElementsTest, MarginRankingSecondGradientIsTheNegation) {
  const std::vector<double> x1 = {0.5, -1.0, 2.0, 0.0, 1.0}, x2 = {0.0, 1.0, 2.5, 0.1, -3.0},
                            y = {1, -1, 1, 1, -1};
  std::vector<double> g1(5), g2(5);
  fastloss::MultiCall<double> call;
  call.inputs[0] = Vec(x1);
  call.inputs[1] = Vec(x2);
  call.target = Vec(y);
  call.reduction = Reduction::kSum;
  call.grads[1] = View<double>::Contiguous(g2.data(), {5});  // the second gradient alone
  fastloss::MarginRankingOptions o;
  o.margin = 0.2;
  const double v = fastloss::MarginRanking(call, o);
  double expect = 0.0;
  for (int i = 0; i < 5; ++i) {
    const double h = -y[i] * (x1[i] - x2[i]) + 0.2;
    expect += std::max(h, 0.0);
    EXPECT_EQ(g2[i], h > 0 ? y[i] : 0.0) << i;
  }
  EXPECT_DOUBLE_EQ(v, expect);
  call.grads[0] = View<double>::Contiguous(g1.data(), {5});
  fastloss::MarginRanking(call, o);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(g1[i], -g2[i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Available, ElementsTest,
                         ::testing::ValuesIn(fastloss::AvailableSimdTargets()),
                         fastloss_test::TargetTestName);

TEST(Elements, GaussianNllErrorsWriteNothing) {
  std::vector<float> x(6, 1.0f), t(6, 0.0f), var(6, 1.0f), g1(6, 7.0f), g2(6, 7.0f);
  fastloss::MultiCall<float> call;
  call.inputs[0] = Vec(x);
  call.inputs[1] = Vec(var);
  call.target = Vec(t);
  call.grads[0] = View<float>::Contiguous(g1.data(), {6});
  call.grads[1] = View<float>::Contiguous(g2.data(), {6});
  var[4] = -1.0f;
  try {
    fastloss::GaussianNll(call);
    ADD_FAILURE() << "no error";
  } catch (const fastloss::Error& e) {
    EXPECT_STREQ(e.what(), "gaussian_nll: var must be >= 0, got a value outside at position (4,)");
  }
  var[4] = 1.0f;
  // var of another shape (PyTorch would broadcast a per-sample variance).
  call.inputs[1] = View<const float>::Contiguous(var.data(), {3});
  EXPECT_THROW(fastloss::GaussianNll(call), fastloss::Error);
  call.inputs[1] = Vec(var);
  // The two gradients may not share memory.
  call.grads[1] = View<float>::Contiguous(g1.data(), {6});
  EXPECT_THROW(fastloss::GaussianNll(call), fastloss::Error);
  fastloss::GaussianNllOptions o;
  o.eps = 0.0;
  call.grads[1] = View<float>::Contiguous(g2.data(), {6});
  EXPECT_THROW(fastloss::GaussianNll(call, o), fastloss::Error);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(g1[i], 7.0f);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(g2[i], 7.0f);
}

}  // namespace
}  // namespace fastloss_test
