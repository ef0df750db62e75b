// The checks every driver shares (cpp/src/drivers/checks.h), through the
// public API: outputs that partially overlap an input or whose elements share
// memory are an Error before anything is written; categorical targets
// outside [0, 1] leave small outputs untouched; float32 block sums that
// overflow in float lanes are taken in float64; Huber's linear branch for a
// large delta; a mean over a zero total weight is NaN with a zero gradient.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "checks.h"

namespace fastloss_test {
namespace {

using fastloss::LabelCall;
using fastloss::MultiCall;
using fastloss::ScoreCall;

constexpr double kSentinel = 7.25;

template <typename T>
View<const T> CView(const std::vector<T>& v, std::initializer_list<int64_t> shape) {
  return View<const T>::Contiguous(v.data(), shape);
}

// --- 1. Partial overlaps, every driver. --------------------------------------

TEST(PartialOverlap, RowsGradShiftedOverYPred) {
  const int64_t R = 4, C = 5;
  std::vector<double> buf(R * C + 1);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = 0.1 * static_cast<double>(i % 7);
  const std::vector<double> before = buf;
  std::vector<int64_t> labels = {0, 3, 4, 1};
  LabelCall<double> call;
  call.labels = CView(labels, {R});
  call.y_pred = View<const double>::Contiguous(buf.data(), {R, C});
  call.grad = View<double>::Contiguous(buf.data() + 1, {R, C});
  fastloss::SparseCategoricalCrossEntropyOptions o;
  o.from_logits = true;
  EXPECT_TRUE(ThrowsErrorMentioning(
      [&] { fastloss::SparseCategoricalCrossEntropy(call, o); }, {"grad", "out", "y_pred"}));
  fastloss::NllOptions no;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Nll(call, no); }, {"grad", "y_pred"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::MultiMargin(call, {}); }, {"grad", "y_pred"}));
  // The exact alias stays allowed and gives the separate call's result.
  std::vector<double> x(buf.begin(), buf.begin() + R * C), g(R * C), xg = x;
  call.y_pred = CView(x, {R, C});
  call.grad = View<double>::Contiguous(g.data(), {R, C});
  const double v = fastloss::SparseCategoricalCrossEntropy(call, o);
  call.y_pred = CView(xg, {R, C});
  call.grad = View<double>::Contiguous(xg.data(), {R, C});
  EXPECT_EQ(fastloss::SparseCategoricalCrossEntropy(call, o), v);
  EXPECT_EQ(xg, g);
  EXPECT_EQ(buf, before);
}

TEST(PartialOverlap, RowsDenseTargetsWeightsLabelsAndLosses) {
  const int64_t R = 3, C = 4;
  std::vector<double> buf(R * C + 8, 0.25);
  const std::vector<double> before = buf;
  std::vector<double> x(R * C, 0.5), g(R * C), t(R * C, 0.25);
  Call<double> call;
  call.y_true = View<const double>::Contiguous(buf.data(), {R, C});
  call.y_pred = CView(x, {R, C});
  call.grad = View<double>::Contiguous(buf.data() + 2, {R, C});
  fastloss::CategoricalCrossEntropyOptions o;
  o.from_logits = true;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalCrossEntropy(call, o); },
                                    {"grad", "y_true"}));
  // The gradient written over y_true exactly stays allowed.
  {
    std::vector<double> yt = t, gg(R * C);
    Call<double> a;
    a.y_true = CView(t, {R, C});
    a.y_pred = CView(x, {R, C});
    a.grad = View<double>::Contiguous(gg.data(), {R, C});
    const double v = fastloss::KlDivergence(a, {});
    a.y_true = CView(yt, {R, C});
    a.grad = View<double>::Contiguous(yt.data(), {R, C});
    EXPECT_EQ(fastloss::KlDivergence(a, {}), v);
    EXPECT_EQ(yt, gg);
  }
  // Over the row weights.
  call.y_true = CView(t, {R, C});
  call.weights = View<const double>::Contiguous(buf.data() + 5, {R});
  call.grad = View<double>::Contiguous(buf.data(), {R, C});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::JensenShannon(call, {}); }, {"grad", "weights"}));
  // Per-row losses over y_pred, or over the gradient.
  call.weights.reset();
  call.grad = View<double>::Contiguous(g.data(), {R, C});
  call.reduction = Reduction::kNone;
  call.losses = View<double>::Contiguous(buf.data() + 1, {R});
  call.y_pred = View<const double>::Contiguous(buf.data(), {R, C});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalHinge(call, {}); }, {"losses", "y_pred"}));
  call.y_pred = CView(x, {R, C});
  call.losses = View<double>::Contiguous(g.data() + 3, {R});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalFocal(call, {}); }, {"losses", "grad"}));
  EXPECT_EQ(buf, before);
  // Labels sharing the gradient's memory (another dtype: never an alias).
  std::vector<int64_t> lab(R * C + 4, 0);
  LabelCall<double> lc;
  lc.labels = View<const int64_t>::Contiguous(lab.data(), {R});
  lc.y_pred = CView(x, {R, C});
  lc.grad = View<double>::Contiguous(reinterpret_cast<double*>(lab.data()), {R, C});
  EXPECT_TRUE(ThrowsErrorMentioning(
      [&] { fastloss::SparseCategoricalCrossEntropy(lc, {}); }, {"grad", "y_true"}));
}

TEST(PartialOverlap, GroupsBoxesAndMarginRanking) {
  std::vector<double> buf(40, 0.5);
  const std::vector<double> before = buf;
  std::vector<double> y(24, 1.0), p(24, 0.5), w(4, 1.0);
  // Dice: the gradient over the weights.
  Call<double> call;
  call.y_true = CView(y, {4, 6});
  call.y_pred = CView(p, {4, 6});
  call.weights = View<const double>::Contiguous(buf.data(), {4});
  call.grad = View<double>::Contiguous(buf.data() + 2, {4, 6});
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Dice(call, d); }, {"grad", "weights"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineSimilarity(call, {}); }, {"grad", "weights"}));
  // Boxes: the gradient over the weights; the losses over y_pred.
  std::vector<double> bt = {0, 0, 2, 2, 1, 1, 3, 4}, bp = {0, 1, 2, 3, 1, 0, 2, 4};
  Call<double> box;
  box.y_true = CView(bt, {2, 4});
  box.y_pred = CView(bp, {2, 4});
  box.weights = View<const double>::Contiguous(buf.data(), {2});
  box.grad = View<double>::Contiguous(buf.data() + 1, {2, 4});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(box, {}); }, {"grad", "weights"}));
  box.weights.reset();
  box.grad.reset();
  box.reduction = Reduction::kNone;
  std::vector<double> bp2 = bp;
  box.y_pred = View<const double>::Contiguous(bp2.data(), {2, 4});
  box.losses = View<double>::Contiguous(bp2.data() + 3, {2});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(box, {}); }, {"losses", "boxes_pred"}));
  EXPECT_EQ(bp2, bp);
  // margin_ranking: dL/dx2 shifted over dL/dx1.
  MultiCall<double> mr;
  std::vector<double> x1(6, 1.0), x2(6, 0.0), t(6, 1.0);
  mr.inputs[0] = CView(x1, {6});
  mr.inputs[1] = CView(x2, {6});
  mr.target = CView(t, {6});
  mr.grads[0] = View<double>::Contiguous(buf.data(), {6});
  mr.grads[1] = View<double>::Contiguous(buf.data() + 2, {6});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::MarginRanking(mr, {}); }, {"grad"}));
  EXPECT_EQ(buf, before);
}

TEST(PartialOverlap, ScorePairOutputsOverTheOtherArray) {
  std::vector<double> buf(12, 0.5);
  const std::vector<double> before = buf;
  ScoreCall<double> real, fake;
  real.scores = View<const double>::Contiguous(buf.data(), {6});
  fake.scores = View<const double>::Contiguous(buf.data() + 6, {6});
  real.grad = View<double>::Contiguous(buf.data() + 6, {6});  // fake's scores
  EXPECT_TRUE(ThrowsErrorMentioning(
      [&] { fastloss::GanDiscriminator(real, fake, Reduction::kMean); }, {"real_logits", "fake_logits"}));
  EXPECT_EQ(buf, before);
}

// --- 2. Outputs whose elements share memory. ----------------------------------

TEST(SharedElements, EveryDriverRefusesThem) {
  std::vector<double> out(64, kSentinel);
  const std::vector<double> before = out;
  std::vector<double> y(16, 0.25), p(16, 0.5);
  const View<double> bad[] = {
      MakeView<double>(out.data(), {4, 4}, {1, 0}),  // zero stride
      MakeView<double>(out.data(), {4, 4}, {1, 2}),  // (2, 0) and (0, 1) coincide
      MakeView<double>(out.data(), {4, 4}, {0, 1}),
  };
  for (const View<double>& g : bad) {
    Call<double> call;
    call.y_true = CView(y, {4, 4});
    call.y_pred = CView(p, {4, 4});
    call.grad = g;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Mse(call); }, {"grad", "out"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BinaryCrossEntropy(call); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalCrossEntropy(call); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::KlDivergence(call); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Dice(call); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineSimilarity(call); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(call); }, {"grad"}));
    std::vector<int64_t> lab(4, 1);
    LabelCall<double> lc;
    lc.labels = CView(lab, {4});
    lc.y_pred = CView(p, {4, 4});
    lc.grad = g;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::MultiMargin(lc); }, {"grad"}));
    ScoreCall<double> s;
    s.scores = CView(p, {4, 4});
    s.grad = g;
    EXPECT_TRUE(ThrowsErrorMentioning(
        [&] { fastloss::GanGenerator(s, Reduction::kMean); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning(
        [&] { fastloss::GradientPenalty(s, Reduction::kMean); }, {"grad"}));
    EXPECT_TRUE(ThrowsErrorMentioning(
        [&] { fastloss::PairwiseRanking(call, nullptr, {}); }, {"grad"}));
    const View<const double> wv = CView(p, {4, 4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::L2Penalty(wv, 1.0, &g); }, {"grad"}));
  }
  // Per-element and per-row losses.
  Call<double> call;
  call.y_true = CView(y, {4, 4});
  call.y_pred = CView(p, {4, 4});
  call.reduction = Reduction::kNone;
  call.losses = MakeView<double>(out.data(), {4, 4}, {0, 1});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Huber(call); }, {"losses"}));
  call.losses = MakeView<double>(out.data(), {4}, {0});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalHinge(call); }, {"losses"}));
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Dice(call, d); }, {"losses"}));
  EXPECT_EQ(out, before);
  // Distinct elements in any order, negative strides and size-1 dimensions
  // with any stride are fine.
  std::vector<double> g(16);
  Call<double> ok;
  ok.y_true = CView(y, {4, 4});
  ok.y_pred = CView(p, {4, 4});
  ok.grad = MakeView<double>(g.data() + 15, {4, 4}, {-1, -4});
  EXPECT_NO_THROW(fastloss::Mse(ok));
  ok.y_true = CView(y, {1, 16});
  ok.y_pred = CView(p, {1, 16});
  ok.grad = MakeView<double>(g.data(), {1, 16}, {0, 1});
  EXPECT_NO_THROW(fastloss::Mse(ok));
}

// --- 3. Categorical targets outside [0, 1]: nothing written. -----------------

template <typename T>
void CheckNothingWritten(int64_t R, int64_t C) {
  std::vector<T> y(R * C, T(1) / static_cast<T>(C)), p = y;
  y[R * C - 2] = T(1.5);
  std::vector<T> g(R * C, T(kSentinel)), l(R, T(kSentinel));
  Call<T> call;
  call.y_true = CView(y, {R, C});
  call.y_pred = CView(p, {R, C});
  call.grad = View<T>::Contiguous(g.data(), {R, C});
  for (bool logits : {false, true}) {
    for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
      call.reduction = r;
      call.losses = View<T>::Contiguous(l.data(), {R});
      if (!(r == Reduction::kNone)) call.losses.reset();
      fastloss::CategoricalCrossEntropyOptions co;
      co.from_logits = logits;
      fastloss::CategoricalFocalOptions fo;
      fo.from_logits = logits;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalCrossEntropy(call, co); },
                                        {"y_true"}));
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalFocal(call, fo); }, {"y_true"}));
      for (T v : g) ASSERT_EQ(v, T(kSentinel)) << R << "x" << C;
      for (T v : l) ASSERT_EQ(v, T(kSentinel)) << R << "x" << C;
    }
  }
}

TEST(CategoricalTargets, OutsideUnitIntervalWritesNothingUpToOneTask) {
  CheckNothingWritten<float>(4, 5);
  CheckNothingWritten<double>(4, 5);
  CheckNothingWritten<float>(32, 1024);  // 32768 elements: one task
  CheckNothingWritten<double>(300, 7);
}

// --- 4. float32 block sums. -----------------------------------------------------

TEST(Float32Sums, OverflowingRunsAreSummedInFloat64) {
  std::vector<float> y(8, 0.0f), p(8, 1e19f), g(8);
  Call<float> call;
  call.y_true = CView(y, {8});
  call.y_pred = CView(p, {8});
  const double r2 = static_cast<double>(1e19f) * static_cast<double>(1e19f);
  const double expected = static_cast<double>(static_cast<float>(r2));
  EXPECT_DOUBLE_EQ(fastloss::Mse(call), expected);
  call.reduction = Reduction::kSum;
  EXPECT_DOUBLE_EQ(fastloss::Mse(call), 8 * expected);
  // With a gradient written to its own buffer, and over 1000 elements
  // (several runs of vectors).
  call.reduction = Reduction::kMean;
  std::vector<float> g8(8);
  call.grad = View<float>::Contiguous(g8.data(), {8});
  EXPECT_DOUBLE_EQ(fastloss::Mse(call), expected);
  for (float v : g8) EXPECT_FLOAT_EQ(v, 2.0f * 1e19f / 8.0f);
  std::vector<float> yk(1000, 0.0f), pk(1000, 1e19f), gk(1000);
  Call<float> k;
  k.y_true = CView(yk, {1000});
  k.y_pred = CView(pk, {1000});
  k.grad = View<float>::Contiguous(gk.data(), {1000});
  EXPECT_DOUBLE_EQ(fastloss::Mse(k), expected);
  // In place (the gradient written over y_pred) such a block cannot be read
  // again: documented to stay inf, never a wrong finite value.
  k.grad = View<float>::Contiguous(pk.data(), {1000});
  EXPECT_EQ(fastloss::Mse(k), std::numeric_limits<double>::infinity());
  call.grad.reset();
  // A real inf stays inf.
  p[5] = std::numeric_limits<float>::infinity();
  call.y_pred = CView(p, {8});
  EXPECT_EQ(fastloss::Mse(call), std::numeric_limits<double>::infinity());
}

// --- 5. Huber. -------------------------------------------------------------------

TEST(Huber, LargeDeltaGivesInfNotNan) {
  std::vector<float> y = {0.0f}, p = {1e38f};
  Call<float> c;
  c.y_true = CView(y, {1});
  c.y_pred = CView(p, {1});
  EXPECT_EQ(fastloss::Huber(c, {1e30}), std::numeric_limits<double>::infinity());
  std::vector<double> yd = {0.0}, pd = {1e300};
  Call<double> d;
  d.y_true = CView(yd, {1});
  d.y_pred = CView(pd, {1});
  EXPECT_EQ(fastloss::Huber(d, {1e200}), std::numeric_limits<double>::infinity());
  pd[0] = 3e150;
  EXPECT_DOUBLE_EQ(fastloss::Huber(d, {1e150}), 1e150 * (3e150 - 0.5e150));
}

// --- 6. A mean over a zero total weight. ---------------------------------------

// Runs `run` with the gradient buffer `g` filled with a sentinel first.
template <class F>
void ExpectNanWithZeroGradient(const char* what, F run, std::vector<double>& g) {
  std::fill(g.begin(), g.end(), kSentinel);
  const double v = run();
  EXPECT_TRUE(std::isnan(v)) << what << ": " << v;
  for (double x : g) EXPECT_EQ(x, 0.0) << what;
}

TEST(ZeroTotalWeight, MeanIsNanWithZeroGradientInEveryDriver) {
  std::vector<double> y(16), p(16), g(16, kSentinel), w = {1.0, -1.0, 2.0, -2.0};
  for (int i = 0; i < 16; ++i) {
    y[i] = (i % 3 == 0) ? 1.0 : 0.0;
    p[i] = 0.1 + 0.05 * i;
  }
  Call<double> call;
  call.y_true = CView(y, {4, 4});
  call.y_pred = CView(p, {4, 4});
  call.grad = View<double>::Contiguous(g.data(), {4, 4});
  call.weights = View<const double>::Contiguous(w.data(), {4, 1});
  ExpectNanWithZeroGradient("mse", [&] { return fastloss::Mse(call); }, g);
  ExpectNanWithZeroGradient("bce", [&] { return fastloss::BinaryCrossEntropy(call); }, g);
  call.weights = View<const double>::Contiguous(w.data(), {4});
  ExpectNanWithZeroGradient("cce", [&] { return fastloss::CategoricalCrossEntropy(call); }, g);
  ExpectNanWithZeroGradient("kl", [&] { return fastloss::KlDivergence(call); }, g);
  ExpectNanWithZeroGradient("cosine", [&] { return fastloss::CosineSimilarity(call); }, g);
  ExpectNanWithZeroGradient("box_iou", [&] { return fastloss::BoxIou(call); }, g);
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  ExpectNanWithZeroGradient("dice", [&] { return fastloss::Dice(call, d); }, g);
  std::vector<int64_t> lab = {0, 1, 2, 3};
  LabelCall<double> lc;
  lc.labels = CView(lab, {4});
  lc.y_pred = CView(p, {4, 4});
  lc.weights = View<const double>::Contiguous(w.data(), {4});
  lc.grad = View<double>::Contiguous(g.data(), {4, 4});
  ExpectNanWithZeroGradient("sparse_cce", [&] { return fastloss::SparseCategoricalCrossEntropy(lc); }, g);
  ExpectNanWithZeroGradient("multi_margin", [&] { return fastloss::MultiMargin(lc); }, g);
  ScoreCall<double> s;
  s.scores = CView(p, {4, 4});
  s.weights = View<const double>::Contiguous(w.data(), {4, 1});
  s.grad = View<double>::Contiguous(g.data(), {4, 4});
  ExpectNanWithZeroGradient("gan_generator", [&] { return fastloss::GanGenerator(s, Reduction::kMean); }, g);
  s.weights = View<const double>::Contiguous(w.data(), {4});
  ExpectNanWithZeroGradient("gradient_penalty",
                            [&] { return fastloss::GradientPenalty(s, Reduction::kMean); }, g);
  // All weights 0 (float32 too).
  std::vector<float> yf(y.begin(), y.end()), pf(p.begin(), p.end()), gf(16, 1.0f), wf(4, 0.0f);
  Call<float> cf;
  cf.y_true = CView(yf, {4, 4});
  cf.y_pred = CView(pf, {4, 4});
  cf.grad = View<float>::Contiguous(gf.data(), {4, 4});
  cf.weights = View<const float>::Contiguous(wf.data(), {4});
  EXPECT_TRUE(std::isnan(fastloss::Huber(cf)));
  for (float x : gf) EXPECT_EQ(x, 0.0f);
}

}  // namespace
}  // namespace fastloss_test
