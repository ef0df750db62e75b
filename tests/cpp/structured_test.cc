// What the structured losses (cpp/src/kernels/structured*.cc, drivers/groups/,
// drivers/ranking/, api/structured.cc, api/combination.cc) have in common,
// across the families whose own tests are segmentation_test.cc,
// detection_test.cc, metric_test.cc, ranking_test.cc, adversarial_test.cc and
// combination_test.cc: the double references of the *_reference.h headers
// checked against central finite differences
// (StructuredReference.GradientsMatchFiniteDifferences); the group driver's
// chunked path (groups of more than 16384 elements, next to many small ones)
// and its refusal of losses written over an input; empty inputs; NaN
// propagation; the errors (raised before any output is written); determinism
// across thread counts; and every SIMD target this CPU supports, for a
// representative subset of every family.
#include "adversarial_reference.h"
#include "combination_reference.h"
#include "detection_reference.h"
#include "metric_reference.h"
#include "ranking_reference.h"
#include "segmentation_reference.h"

namespace fastloss_test {
namespace {

// ============================================================================
// The references against central finite differences (double, no library).
// ============================================================================

// d(sum of the losses)/d(input first + k)[i] of ref_fn against ref.dl[k][i].
template <class F>
::testing::AssertionResult FdCheck(F ref_fn, std::vector<std::vector<double>> in, size_t first,
                                   double h = 1e-6, double tol = 2e-6) {
  const Ref base = ref_fn(in);
  int bad = 0;
  std::ostringstream msg;
  for (int k = 0; k < base.ngrad; ++k) {
    std::vector<double>& v = in[first + static_cast<size_t>(k)];
    for (size_t i = 0; i < v.size(); ++i) {
      const double x0 = v[i];
      v[i] = x0 + h;
      const double lp = SumL(ref_fn(in));
      v[i] = x0 - h;
      const double lm = SumL(ref_fn(in));
      v[i] = x0;
      const double fd = (lp - lm) / (2 * h);
      const double an = base.dl[k][i];
      if (!(std::fabs(fd - an) <= tol * (1.0 + std::fabs(fd)))) {
        if (bad++ < 5) msg << "\n  input " << first + k << "[" << i << "]: fd " << fd << ", ref " << an;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " mismatches" << msg.str();
}

TEST(StructuredReference, GradientsMatchFiniteDifferences) {
  Rng rng(2024);
  auto normal = [&](size_t n, double s) {
    std::vector<double> v(n);
    for (double& x : v) x = s * rng.N();
    return v;
  };
  // Overlap family, rows of (3, 6) and the whole array.
  for (OvConfig c : OvConfigs()) {
    for (bool all : {false, true}) {
      SCOPED_TRACE(c.name + (all ? " all axes" : " axis 1"));
      c.o.all_axes = all;
      c.o.axes = {1};
      const std::vector<int64_t> shape = {3, 6};
      std::vector<double> y(18), x(18);
      for (size_t i = 0; i < 18; ++i) {
        y[i] = rng.P(0.5) ? rng.U(0, 1) : (rng.P(0.5) ? 1.0 : 0.0);
        x[i] = c.o.from_logits ? 2.0 * rng.N() : rng.U(0.05, 0.95);
      }
      EXPECT_TRUE(FdCheck(
          [&](const std::vector<std::vector<double>>& in) { return RefOverlap(c, in[0], in[1], shape); },
          {y, x}, 1));
    }
  }
  // Boxes, without ties (CIoU's alpha held at its value, as the spec says).
  for (BoxIouKind kind : {BoxIouKind::kIou, BoxIouKind::kGiou, BoxIouKind::kDiou, BoxIouKind::kCiou}) {
    SCOPED_TRACE(BoxKindName(kind));
    for (int b = 0; b < 20; ++b) {
      const double tx = rng.U(0, 5), ty = rng.U(0, 5);
      const double t[4] = {tx, ty, tx + rng.U(0.5, 3), ty + rng.U(0.5, 3)};
      const double px = tx + 0.8 * rng.N() + 0.0123, py = ty + 0.8 * rng.N() - 0.0077;
      double p[4] = {px, py, px + rng.U(0.5, 3), py + rng.U(0.5, 3)};
      if (b % 5 == 4) {  // disjoint
        p[0] += 10;
        p[2] += 10;
      }
      double alpha = 0;
      const Dual d = BoxLossDual(kind, 1e-7, t, p, nullptr, &alpha);
      for (int k = 0; k < 4; ++k) {
        const double h = 1e-6, x0 = p[k];
        p[k] = x0 + h;
        const double lp = BoxLossDual(kind, 1e-7, t, p, &alpha).v;
        p[k] = x0 - h;
        const double lm = BoxLossDual(kind, 1e-7, t, p, &alpha).v;
        p[k] = x0;
        const double fd = (lp - lm) / (2 * h);
        EXPECT_NEAR(d.d[k], fd, 2e-6 * (1 + std::fabs(fd))) << "box " << b << " coord " << k;
      }
    }
  }
  // cosine_similarity along axis 0, with a clamped (tiny) row for eps 0.5.
  for (double eps : {1e-8, 0.5}) {
    SCOPED_TRACE("cosine_similarity eps " + std::to_string(eps));
    const std::vector<int64_t> shape = {4, 3};
    std::vector<double> y = normal(12, 1.0), p = normal(12, 1.0);
    for (size_t i = 1; i < 12; i += 3) p[i] *= 0.05;
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) { return RefCosineSim(0, eps, in[0], in[1], shape); },
        {y, p}, 1));
  }
  {
    SCOPED_TRACE("cosine_embedding");
    const std::vector<int64_t> shape = {6, 4};
    const std::vector<double> y = {1, -1, -1, 1, -1, -1};
    std::vector<double> x1 = normal(24, 1.0), x2 = normal(24, 1.0);
    for (size_t i = 0; i < 24; ++i) x2[i] += 0.7 * x1[i];
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) {
          return RefCosineEmbedding(0.1, in[0], in[1], y, shape);
        },
        {x1, x2}, 0));
  }
  for (const TripletConfig& c : TripletConfigs()) {
    SCOPED_TRACE("triplet " + c.name);
    const std::vector<int64_t> shape = {5, 4};
    std::vector<double> a = normal(20, 1.0), p(20), n(20);
    for (size_t i = 0; i < 20; ++i) {
      p[i] = a[i] + 0.5 * rng.N();
      n[i] = a[i] + 0.8 * rng.N();
    }
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) { return RefTriplet(c.o, in[0], in[1], in[2], shape); },
        {a, p, n}, 0));
  }
  {
    SCOPED_TRACE("contrastive_pairs");
    const std::vector<int64_t> shape = {6, 3};
    const std::vector<double> y = {0, 1, 0.3, 0, 1, 0.7};
    std::vector<double> x1 = normal(18, 1.0), x2(18);
    for (size_t i = 0; i < 18; ++i) x2[i] = x1[i] + 0.4 * rng.N();
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) {
          return RefContrastivePairs(1.0, 1e-6, in[0], in[1], y, shape);
        },
        {x1, x2}, 0));
  }
  {
    SCOPED_TRACE("gradient_penalty");
    const std::vector<int64_t> shape = {3, 2, 2};
    EXPECT_TRUE(FdCheck(
        [&](const std::vector<std::vector<double>>& in) { return RefGradientPenalty(0.5, in[0], shape); },
        {normal(12, 0.5)}, 0));
  }
}

// ============================================================================
// Tests: the group driver (groups beyond the chunk size; losses over an input).
// ============================================================================

// Groups of more than 16384 elements (the driver splits them in chunks) next
// to many small groups.
template <typename T>
void CheckLargeGroups(bool quick) {
  const std::vector<AxesCase> axes = {{"axes_1", false, {1}}, {"all", true, {}}, {"axes_0", false, {0}}};
  for (const OvConfig& c : OvConfigs()) {
    if (c.name != "dice" && c.name != "jaccard_logits" && c.name != "focal_tversky_a0p7_b0p3") continue;
    if (quick && c.name != "dice") continue;
    for (const AxesCase& ax : axes) {
      for (const Opts& o : {Opts{Layout::kContiguous, Reduction::kMean, false, 21, false},
                            Opts{Layout::kEveryOther, Reduction::kNone, true, 22, false}}) {
        OverlapCase<T>(c, ax, {2, 40000}, o);
      }
    }
  }
  // Gradient penalty over samples of 30000 elements.
  GradientPenaltyCase<T>(1.0, {2, 150, 200}, Opts{Layout::kContiguous, Reduction::kMean, true, 23, false});
  GradientPenaltyCase<T>(0.5, {2, 150, 200}, Opts{Layout::kTransposed, Reduction::kNone, false, 24, false});
  // Cosine similarity along a long, strided axis.
  CosineSimCase<T>(0, 1e-8, {20000, 2}, Opts{Layout::kContiguous, Reduction::kSum, false, 25, false});
}

TEST(StructuredOverlap, LargeGroupsUseTheChunkedPath) {
  CheckLargeGroups<float>(false);
  CheckLargeGroups<double>(false);
}

// 'none' losses written over an input the gradient pass still has to read
// (one score per element, axes = {}) are refused, even as the same view.
TEST(GroupDriver, LossesMayNotAliasAnInput) {
  std::vector<float> y{1, 0, 1, 0}, p{0.2f, 0.4f, 0.6f, 0.8f}, g(4);
  fastloss::Call<float> c;
  c.y_true = fastloss::View<const float>::Contiguous(y.data(), {4});
  c.y_pred = fastloss::View<const float>::Contiguous(p.data(), {4});
  c.reduction = fastloss::Reduction::kNone;
  c.losses = fastloss::View<float>::Contiguous(p.data(), {4});
  c.grad = fastloss::View<float>::Contiguous(g.data(), {4});
  fastloss::DiceOptions o;
  o.all_axes = false;
  try {
    fastloss::Dice(c, o);
    FAIL() << "no error";
  } catch (const fastloss::Error& e) {
    EXPECT_NE(std::string(e.what()).find("losses overlaps y_pred"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p[0], 0.2f);  // nothing written
}

// ============================================================================
// Tests: empty inputs, NaN.
// ============================================================================

template <typename T>
struct EmptyIo {
  std::vector<int64_t> shape;
  Call<T> Make(Reduction r) const {
    Call<T> c;
    c.y_true = MakeView<const T>(nullptr, shape, CStrides(shape));
    c.y_pred = c.y_true;
    c.grad = MakeView<T>(nullptr, shape, CStrides(shape));
    c.reduction = r;
    return c;
  }
};

template <typename T>
void CheckEmpty() {
  SCOPED_TRACE(DtypeName<T>());
  // f(r) -> value; mean NaN, sum 0.
  auto both = [](const char* what, const std::function<double(Reduction)>& f) {
    SCOPED_TRACE(what);
    double m = 0, s = 1;
    EXPECT_NO_THROW(m = f(Reduction::kMean));
    EXPECT_NO_THROW(s = f(Reduction::kSum));
    EXPECT_TRUE(std::isnan(m)) << m;
    EXPECT_EQ(s, 0.0);
  };
  const EmptyIo<T> e05{{0, 5}}, e04{{0, 4}}, e0{{0}};
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  both("dice", [&](Reduction r) { return fastloss::Dice(e05.Make(r), d); });
  both("focal_tversky", [&](Reduction r) {
    fastloss::FocalTverskyOptions o;
    o.all_axes = false;
    o.axes = {-1};
    return fastloss::FocalTversky(e05.Make(r), o);
  });
  both("box_iou", [&](Reduction r) { return fastloss::BoxIou(e04.Make(r)); });
  both("cosine_similarity", [&](Reduction r) { return fastloss::CosineSimilarity(e05.Make(r)); });
  both("contrastive", [&](Reduction r) { return fastloss::Contrastive(e0.Make(r)); });
  both("combined", [&](Reduction r) {
    fastloss::ElementwiseCombination c;
    c.Add(0.5, fastloss::MseOptions{}).Add(0.5, fastloss::MaeOptions{});
    return fastloss::Combined(e0.Make(r), c);
  });
  both("pairwise_ranking", [&](Reduction r) { return fastloss::PairwiseRanking(e0.Make(r), nullptr); });
  auto multi = [](int inputs, bool target, const std::vector<int64_t>& shape,
                  const std::vector<int64_t>& tshape, Reduction r) {
    MultiCall<T> mc;
    for (int k = 0; k < inputs; ++k) {
      mc.inputs[k] = MakeView<const T>(nullptr, shape, CStrides(shape));
      mc.grads[k] = MakeView<T>(nullptr, shape, CStrides(shape));
    }
    if (target) mc.target = MakeView<const T>(nullptr, tshape, CStrides(tshape));
    mc.reduction = r;
    return mc;
  };
  both("cosine_embedding", [&](Reduction r) { return fastloss::CosineEmbedding(multi(2, true, {0, 3}, {0}, r)); });
  both("triplet_margin", [&](Reduction r) { return fastloss::TripletMargin(multi(3, false, {0, 3}, {}, r)); });
  both("contrastive_pairs", [&](Reduction r) { return fastloss::ContrastivePairs(multi(2, true, {0, 3}, {0}, r)); });
  both("margin_ranking", [&](Reduction r) { return fastloss::MarginRanking(multi(2, true, {0}, {0}, r)); });
  auto score = [](const std::vector<int64_t>& shape) {
    ScoreCall<T> s;
    s.scores = MakeView<const T>(nullptr, shape, CStrides(shape));
    s.grad = MakeView<T>(nullptr, shape, CStrides(shape));
    return s;
  };
  both("gan_discriminator", [&](Reduction r) { return fastloss::GanDiscriminator(score({0}), score({0, 2}), r); });
  both("gan_generator", [&](Reduction r) { return fastloss::GanGenerator(score({0}), r); });
  both("wasserstein_critic", [&](Reduction r) { return fastloss::WassersteinCritic(score({0}), score({0}), r); });
  both("wasserstein_generator", [&](Reduction r) { return fastloss::WassersteinGenerator(score({0}), r); });
  both("gradient_penalty", [&](Reduction r) { return fastloss::GradientPenalty(score({0, 3}), r); });
  EXPECT_EQ(fastloss::L2Penalty(MakeView<const T>(nullptr, {0}, {1}), 0.5), 0.0);

  // Empty regions inside non-empty outputs: an empty sum is a region of its
  // own (dice: 0 with smooth > 0; cosine: 1; penalty: target^2; triplet: margin).
  const EmptyIo<T> e30{{3, 0}};
  EXPECT_EQ(fastloss::Dice(e30.Make(Reduction::kMean), d), 0.0);
  fastloss::DiceOptions d0 = d;
  d0.smooth = 0;
  EXPECT_TRUE(std::isnan(fastloss::Dice(e30.Make(Reduction::kMean), d0)));
  EXPECT_EQ(fastloss::Dice(e0.Make(Reduction::kMean)), 0.0);  // all axes of (0,): one score
  EXPECT_EQ(fastloss::CosineSimilarity(e30.Make(Reduction::kSum)), 3.0);
  EXPECT_EQ(fastloss::GradientPenalty(score({3, 0}), Reduction::kSum, 2.0), 12.0);
  EXPECT_EQ(fastloss::TripletMargin(multi(3, false, {3, 0}, {}, Reduction::kMean)), 1.0);
}

TEST(StructuredEmpty, SumIsZeroMeanIsNaN) {
  CheckEmpty<float>();
  CheckEmpty<double>();
}

template <typename T>
void CheckNaN() {
  SCOPED_TRACE(DtypeName<T>());
  std::vector<T> y(8, T(0.5)), p(8, T(0.25)), g(8), l(2);
  p[1] = static_cast<T>(kNaN);
  Call<T> call;
  call.y_true = CView(y, {2, 4});
  call.y_pred = CView(p, {2, 4});
  call.grad = MView(g, {2, 4});
  call.losses = MView(l, {2});
  call.reduction = Reduction::kNone;
  auto row0_nan_row1_finite = [&](const char* what) {
    EXPECT_TRUE(std::isnan(static_cast<double>(l[0]))) << what << ": " << l[0];
    EXPECT_TRUE(std::isfinite(static_cast<double>(l[1]))) << what << ": " << l[1];
  };
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  fastloss::Dice(call, d);
  row0_nan_row1_finite("dice");
  fastloss::CosineSimilarity(call);
  row0_nan_row1_finite("cosine_similarity");
  fastloss::BoxIouOptions bo;
  bo.kind = BoxIouKind::kCiou;
  {
    std::vector<T> t = {0, 0, 2, 2, 0, 0, 2, 2}, b = {0, static_cast<T>(kNaN), 1, 1, 0, 0, 1, 1};
    call.y_true = CView(t, {2, 4});
    call.y_pred = CView(b, {2, 4});
    fastloss::BoxIou(call, bo);
    row0_nan_row1_finite("box_iou");
    call.reduction = Reduction::kMean;
    EXPECT_TRUE(std::isnan(fastloss::BoxIou(call, bo)));
    call.reduction = Reduction::kNone;
  }
  MultiCall<T> mc;
  mc.inputs[0] = CView(p, {2, 4});
  mc.inputs[1] = CView(y, {2, 4});
  mc.inputs[2] = CView(y, {2, 4});
  mc.losses = MView(l, {2});
  mc.reduction = Reduction::kNone;
  fastloss::TripletMargin(mc);
  row0_nan_row1_finite("triplet_margin");
  mc.reduction = Reduction::kMean;
  EXPECT_TRUE(std::isnan(fastloss::TripletMargin(mc)));
  // The generic-p path (exp / log) too, with and without swap.
  for (double pp : {3.0, 1.5}) {
    for (bool swap : {false, true}) {
      SCOPED_TRACE("triplet_margin p " + std::to_string(pp) + (swap ? " swap" : ""));
      fastloss::TripletMarginOptions to;
      to.p = pp;
      to.swap = swap;
      mc.reduction = Reduction::kNone;
      fastloss::TripletMargin(mc, to);
      row0_nan_row1_finite("triplet_margin generic p");
      mc.reduction = Reduction::kSum;
      EXPECT_TRUE(std::isnan(fastloss::TripletMargin(mc, to)));
    }
  }
  ScoreCall<T> s;
  s.scores = CView(p, {2, 4});
  s.losses = MView(l, {2});
  fastloss::GradientPenalty(s, Reduction::kNone);
  row0_nan_row1_finite("gradient_penalty");
  EXPECT_TRUE(std::isnan(fastloss::GanGenerator(s, Reduction::kMean)));
  Call<T> flat;
  flat.y_true = CView(y, {8});
  flat.y_pred = CView(p, {8});
  flat.reduction = Reduction::kSum;
  EXPECT_TRUE(std::isnan(fastloss::PairwiseRanking(flat, nullptr)));
  EXPECT_TRUE(std::isnan(fastloss::Contrastive(flat)));
  fastloss::ElementwiseCombination c;
  c.Add(1.0, fastloss::MseOptions{}).Add(2.0, fastloss::HuberOptions{});
  EXPECT_TRUE(std::isnan(fastloss::Combined(flat, c)));
}

TEST(StructuredNaN, Propagates) {
  CheckNaN<float>();
  CheckNaN<double>();
}

// ============================================================================
// Tests: errors (fastloss::Error naming the argument, before any output).
// ============================================================================

TEST(StructuredErrors, Segmentation) {
  const std::vector<double> y(6, 0.5), p(6, 0.25), y8(8, 0.5), w4(4, 1.0);
  StridedArray<double> g({2, 3}, {3, 1}), l({3}, {1}), gbad({3, 2}, {2, 1});
  Call<double> call;
  call.y_true = CView(y, {2, 3});
  call.y_pred = CView(p, {2, 3});
  call.grad = g.view();
  auto dice = [&](const Call<double>& c, std::vector<int> axes, double smooth = 1e-6) {
    fastloss::DiceOptions d;
    d.all_axes = false;
    d.axes = std::move(axes);
    d.smooth = smooth;
    return fastloss::Dice(c, d);
  };
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {1}, -1.0); }, {"smooth"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {1}, kNaN); }, {"smooth"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {2}); }, {"axis"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {-3}); }, {"axis"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {1, -1}); }, {"axis"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(call, {0, 0}); }, {"axis"}));
  {
    fastloss::JaccardOptions j;
    j.smooth = -0.5;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Jaccard(call, j); }, {"smooth"}));
    fastloss::TverskyOptions t;
    t.alpha = -0.1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Tversky(call, t); }, {"alpha"}));
    t.alpha = 0.5;
    t.beta = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Tversky(call, t); }, {"beta"}));
    for (double gamma : {0.0, -1.0, kInf}) {
      fastloss::FocalTverskyOptions f;
      f.gamma = gamma;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::FocalTversky(call, f); }, {"gamma"}));
    }
  }
  // Shapes.
  {
    Call<double> c = call;
    c.y_true = CView(y8, {2, 4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"y_true"}));
    c = call;
    c.grad = gbad.view();
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"grad"}));
    c = call;
    c.weights = CView(w4, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"weights"}));
    c = call;
    c.reduction = Reduction::kNone;
    c.losses = l.view();  // (3,) but the scores are (2,)
    EXPECT_TRUE(ThrowsErrorMentioning([&] { dice(c, {1}); }, {"losses"}));
    c = call;
    c.reduction = Reduction::kNone;
    c.grad.reset();
    EXPECT_THROW(dice(c, {1}), fastloss::Error);
  }
  EXPECT_TRUE(g.Untouched());
  EXPECT_TRUE(l.Untouched());
}

TEST(StructuredErrors, Boxes) {
  const std::vector<double> b12(12, 1.0), b9(9, 1.0), b16(16, 1.0), w(5, 1.0);
  StridedArray<double> g({3, 4}, {4, 1});
  Call<double> call;
  call.y_true = CView(b12, {3, 4});
  call.y_pred = CView(b12, {3, 4});
  call.grad = g.view();
  Call<double> c = call;
  c.y_true = CView(b9, {3, 3});
  c.y_pred = CView(b9, {3, 3});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(c); }, {"boxes_pred"}));
  c = call;
  c.y_true = CView(b16, {4, 4});
  EXPECT_THROW(fastloss::BoxIou(c), fastloss::Error);
  c = call;
  c.y_true = CView(b12, {});
  c.y_pred = CView(b12, {});
  EXPECT_THROW(fastloss::BoxIou(c), fastloss::Error);
  fastloss::BoxIouOptions o;
  o.eps = -1;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(call, o); }, {"eps"}));
  o.eps = 1e-7;
  o.kind = static_cast<BoxIouKind>(17);
  EXPECT_THROW(fastloss::BoxIou(call, o), fastloss::Error);
  c = call;
  c.weights = CView(w, {5});
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BoxIou(c); }, {"weights"}));
  EXPECT_TRUE(g.Untouched());
}

TEST(StructuredErrors, MetricLearning) {
  const std::vector<double> x(12, 0.5), x2(12, 0.25), x15(15, 0.1), yr = {1, -1, 1, 1};
  StridedArray<double> g0({4, 3}, {3, 1}), g1({4, 3}, {3, 1}), g2({4, 3}, {3, 1});
  // cosine_similarity
  {
    Call<double> call;
    call.y_true = CView(x, {4, 3});
    call.y_pred = CView(x2, {4, 3});
    call.grad = g0.view();
    for (int axis : {2, -3, 5}) {
      fastloss::CosineSimilarityOptions o;
      o.axis = axis;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineSimilarity(call, o); }, {"axis"}));
    }
    fastloss::CosineSimilarityOptions o;
    o.eps = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineSimilarity(call, o); }, {"eps"}));
    Call<double> c = call;
    c.y_true = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::CosineSimilarity(c), fastloss::Error);
    c = call;
    c.y_true = CView(x, {});
    c.y_pred = CView(x2, {});
    c.grad = MakeView<double>(g0.view().data, {}, {});
    EXPECT_THROW(fastloss::CosineSimilarity(c), fastloss::Error);
  }
  MultiCall<double> mc;
  mc.inputs[0] = CView(x, {4, 3});
  mc.inputs[1] = CView(x2, {4, 3});
  mc.inputs[2] = CView(x2, {4, 3});
  mc.target = CView(yr, {4});
  mc.grads[0] = g0.view();
  mc.grads[1] = g1.view();
  mc.grads[2] = g2.view();
  // cosine_embedding: y not +-1 (anywhere), margin outside [-1, 1], shapes.
  for (double bad : {0.0, 0.5, 2.0, -1.5}) {
    std::vector<double> yb = yr;
    yb[3] = bad;
    MultiCall<double> c = mc;
    c.target = CView(yb, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineEmbedding(c); }, {"y"})) << bad;
  }
  for (double m : {1.5, -1.5, kNaN}) {
    fastloss::CosineEmbeddingOptions o;
    o.margin = m;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineEmbedding(mc, o); }, {"margin"}));
  }
  {
    MultiCall<double> c = mc;
    c.target = CView(yr, {2, 2});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CosineEmbedding(c); }, {"y"}));
    c = mc;
    c.inputs[1] = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::CosineEmbedding(c), fastloss::Error);
    c = mc;
    c.inputs[0] = CView(x, {});
    c.inputs[1] = CView(x2, {});
    c.target = CView(yr, {});
    c.grads[0].reset();
    c.grads[1].reset();
    EXPECT_THROW(fastloss::CosineEmbedding(c), fastloss::Error);
  }
  // triplet_margin
  {
    MultiCall<double> t = mc;
    fastloss::TripletMarginOptions o;
    o.margin = -0.1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"margin"}));
    for (double p : {0.0, -1.0, kNaN}) {
      o = {};
      o.p = p;
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"p"})) << p;
    }
    o = {};
    o.eps = -1e-6;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"eps"}));
    o = {};
    o.squared = true;
    o.p = 1.0;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::TripletMargin(t, o); }, {"p"}));
    MultiCall<double> c = t;
    c.inputs[2] = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::TripletMargin(c), fastloss::Error);
  }
  // contrastive (on distances) and contrastive_pairs
  {
    const std::vector<double> yc = {0, 1, 1.5, 0}, d = {0.5, 0.5, 0.5, 0.5};
    StridedArray<double> gc(4);
    Call<double> c;
    c.y_true = CView(yc, {4});
    c.y_pred = CView(d, {4});
    c.grad = gc.view();
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Contrastive(c); }, {"y_true"}));
    const std::vector<double> yneg = {0, -0.5, 1, 0};
    c.y_true = CView(yneg, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Contrastive(c); }, {"y_true"}));
    c.y_true = CView(d, {4});
    fastloss::ContrastiveOptions o;
    o.margin = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Contrastive(c, o); }, {"margin"}));
    c.y_true = CView(x, {12});
    EXPECT_THROW(fastloss::Contrastive(c), fastloss::Error);
    EXPECT_TRUE(gc.Untouched());
    MultiCall<double> cp = mc;
    cp.target = CView(yc, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::ContrastivePairs(cp); }, {"y_true"}));
    cp.target = CView(d, {4});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::ContrastivePairs(cp, o); }, {"margin"}));
    o.margin = 1;
    o.eps = -1;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::ContrastivePairs(cp, o); }, {"eps"}));
    cp.target = CView(x, {12});
    EXPECT_THROW(fastloss::ContrastivePairs(cp), fastloss::Error);
  }
  // margin_ranking
  {
    MultiCall<double> c = mc;
    c.target = CView(x, {4, 3});
    fastloss::MarginRankingOptions o;
    o.margin = -0.5;
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::MarginRanking(c, o); }, {"margin"}));
    MultiCall<double> d = c;
    d.target = CView(yr, {4});
    EXPECT_THROW(fastloss::MarginRanking(d), fastloss::Error);
    d = c;
    d.inputs[1] = CView(x15, {5, 3});
    EXPECT_THROW(fastloss::MarginRanking(d), fastloss::Error);
  }
  EXPECT_TRUE(g0.Untouched());
  EXPECT_TRUE(g1.Untouched());
  EXPECT_TRUE(g2.Untouched());
}

TEST(StructuredErrors, RankingAndAdversarial) {
  const std::vector<double> r = {1, 0, 2, 1, 0, 2}, s = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  const std::vector<int64_t> gid = {0, 0, 1, 1, 1, 1}, gid5 = {0, 0, 1, 1, 1};
  StridedArray<double> g(6);
  Call<double> call;
  call.y_true = CView(r, {6});
  call.y_pred = CView(s, {6});
  call.grad = g.view();
  const View<const int64_t> gv = CView(gid, {6}), gv5 = CView(gid5, {5}), gv23 = CView(gid, {2, 3});
  fastloss::PairwiseRankingOptions po;
  po.margin = -1;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(call, &gv, po); }, {"margin"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(call, &gv5); }, {"groups"}));
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(call, &gv23); }, {"groups"}));
  {
    Call<double> c = call;
    c.reduction = Reduction::kNone;
    EXPECT_THROW(fastloss::PairwiseRanking(c, &gv), fastloss::Error);
    c = call;
    c.weights = CView(s, {6});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::PairwiseRanking(c, &gv); }, {"weights"}));
    c = call;
    c.y_true = CView(r, {2, 3});
    EXPECT_THROW(fastloss::PairwiseRanking(c, nullptr), fastloss::Error);
  }
  EXPECT_TRUE(g.Untouched());
  // Scores.
  ScoreCall<double> sc;
  sc.scores = CView(s, {2, 3});
  StridedArray<double> sg({2, 3}, {3, 1}), sl({2}, {1});
  sc.grad = sg.view();
  {
    ScoreCall<double> b = sc;
    b.weights = CView(s, {2});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GanGenerator(b, Reduction::kMean); }, {"weights"}));
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::WassersteinGenerator(b, Reduction::kSum); }, {"weights"}));
    b = sc;
    b.losses = sl.view();
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GanGenerator(b, Reduction::kNone); }, {"losses"}));
    b = sc;
    b.grad.reset();
    EXPECT_THROW(fastloss::GanGenerator(b, Reduction::kNone), fastloss::Error);
  }
  // gradient_penalty: rank 0, target not finite, weights not of (N,).
  {
    ScoreCall<double> b = sc;
    b.scores = CView(s, {});
    b.grad = MakeView<double>(sg.view().data, {}, {});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GradientPenalty(b, Reduction::kMean); }, {"gradients"}));
    for (double t : {kNaN, kInf}) {
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GradientPenalty(sc, Reduction::kMean, t); }, {"target"}));
    }
    b = sc;
    b.weights = CView(s, {3});
    EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::GradientPenalty(b, Reduction::kMean); }, {"weights"}));
  }
  EXPECT_TRUE(sg.Untouched());
  // l2_penalty
  StridedArray<double> lg(5);
  const View<double> lgv = lg.view();
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::L2Penalty(CView(s, {6}), -1.0); }, {"lam"}));
  EXPECT_THROW(fastloss::L2Penalty(CView(s, {6}), 1.0, &lgv), fastloss::Error);
  EXPECT_TRUE(lg.Untouched());
}

// The header's promise: errors are raised before any output is written, also
// by the losses that run in two steps (the two score arrays of the
// discriminator / critic, the second gradient of margin_ranking).
TEST(StructuredErrors, NothingWrittenBeforeALaterArgumentFails) {
  const std::vector<double> s = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  StridedArray<double> rg({2, 3}, {3, 1}), fg({3}, {1});
  ScoreCall<double> real, fake;
  real.scores = CView(s, {2, 3});
  real.grad = rg.view();
  fake.scores = CView(s, {3});
  fake.grad = fg.view();
  fake.weights = CView(s, {2});  // does not broadcast to (3,)
  EXPECT_THROW(fastloss::GanDiscriminator(real, fake, Reduction::kMean), fastloss::Error);
  EXPECT_TRUE(rg.Untouched()) << "gan_discriminator wrote real's gradient before failing on fake";
  EXPECT_THROW(fastloss::WassersteinCritic(real, fake, Reduction::kMean), fastloss::Error);
  EXPECT_TRUE(rg.Untouched()) << "wasserstein_critic wrote real's gradient before failing on fake";
  // margin_ranking with a second gradient of the wrong shape.
  StridedArray<double> g0({6}, {1}), g1({5}, {1});
  const std::vector<double> y = {1, -1, 1, -1, 1, -1};
  MultiCall<double> mc;
  mc.inputs[0] = CView(s, {6});
  mc.inputs[1] = CView(y, {6});
  mc.target = CView(y, {6});
  mc.grads[0] = g0.view();
  mc.grads[1] = g1.view();
  EXPECT_THROW(fastloss::MarginRanking(mc), fastloss::Error);
  EXPECT_TRUE(g0.Untouched()) << "margin_ranking wrote grads[0] before failing on grads[1]";
  EXPECT_TRUE(g1.Untouched());
}

// ============================================================================
// Tests: determinism across thread counts.
// ============================================================================

struct Snap {
  double value = 0;
  std::vector<std::vector<unsigned char>> bytes;
};

template <typename T>
std::vector<unsigned char> Bytes(const std::vector<T>& v) {
  std::vector<unsigned char> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

void ExpectSameForThreadCounts(const std::string& name, const std::function<Snap()>& run) {
  SCOPED_TRACE(name);
  fastloss::SetNumThreads(1);
  const Snap a = run();
  fastloss::SetNumThreads(4);
  const Snap b = run();
  EXPECT_TRUE(SameBits(a.value, b.value)) << a.value << " vs " << b.value;
  EXPECT_FALSE(std::isnan(a.value));
  ASSERT_EQ(a.bytes.size(), b.bytes.size());
  for (size_t k = 0; k < a.bytes.size(); ++k) {
    EXPECT_TRUE(a.bytes[k] == b.bytes[k]) << "output " << k << " differs between 1 and 4 threads";
  }
}

template <typename T>
std::vector<T> RandomT(size_t n, uint64_t seed, double lo, double hi) {
  Rng rng(seed);
  std::vector<T> v(n);
  for (T& x : v) x = static_cast<T>(rng.U(lo, hi));
  return v;
}

template <typename T>
void CheckThreads() {
  SCOPED_TRACE(DtypeName<T>());
  for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
    SCOPED_TRACE(ReductionName(r));
    // Dice over images, and over groups beyond the chunk size.
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{8, 1, 128, 128},
                                              std::vector<int64_t>{2, 40000}}) {
      const size_t n = static_cast<size_t>(Prod(shape));
      const std::vector<T> y = RandomT<T>(n, 1, 0, 1), p = RandomT<T>(n, 2, -3, 3);
      const std::vector<T> w = RandomT<T>(static_cast<size_t>(shape[0]), 3, 0.1, 2);
      for (bool logits : {false, true}) {
        ExpectSameForThreadCounts("dice " + ShapeStr(shape) + (logits ? " logits" : ""), [&] {
          std::vector<T> g(n), l(static_cast<size_t>(shape[0]));
          Call<T> c;
          c.y_true = CView(y, shape);
          c.y_pred = CView(p, shape);
          c.weights = CView(w, {shape[0]});
          c.grad = MView(g, shape);
          c.losses = MView(l, {shape[0]});
          if (!(r == Reduction::kNone)) c.losses.reset();
          c.reduction = r;
          fastloss::DiceOptions o;
          o.from_logits = logits;
          o.all_axes = false;
          for (int k = 1; k < static_cast<int>(shape.size()); ++k) o.axes.push_back(k);
          Snap s;
          s.value = fastloss::Dice(c, o);
          s.bytes = {Bytes(g), Bytes(l)};
          return s;
        });
      }
      ExpectSameForThreadCounts("focal_tversky all axes " + ShapeStr(shape), [&] {
        std::vector<T> g(n), l(1);
        Call<T> c;
        c.y_true = CView(y, shape);
        c.y_pred = CView(y, shape);
        c.grad = MView(g, shape);
        c.losses = MView(l, {});
        if (!(r == Reduction::kNone)) c.losses.reset();
        c.reduction = r;
        Snap s;
        s.value = fastloss::FocalTversky(c, {});
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
    }
    // Row losses.
    {
      const int64_t N = 8192, D = 24;
      const size_t n = static_cast<size_t>(N * D);
      const std::vector<T> a = RandomT<T>(n, 4, -1, 1), b = RandomT<T>(n, 5, -1, 1),
                           c3 = RandomT<T>(n, 6, -1, 1), w = RandomT<T>(static_cast<size_t>(N), 7, 0, 2);
      std::vector<T> ypm(static_cast<size_t>(N)), y01 = RandomT<T>(static_cast<size_t>(N), 8, 0, 1);
      for (size_t i = 0; i < ypm.size(); ++i) ypm[i] = (i * 7919) % 3 ? T(1) : T(-1);
      auto multi = [&](int which) {
        std::vector<T> g0(n), g1(n), g2(n), l(static_cast<size_t>(N));
        MultiCall<T> m;
        m.inputs[0] = CView(a, {N, D});
        m.inputs[1] = CView(b, {N, D});
        m.inputs[2] = CView(c3, {N, D});
        m.weights = CView(w, {N});
        m.grads[0] = MView(g0, {N, D});
        m.grads[1] = MView(g1, {N, D});
        m.grads[2] = MView(g2, {N, D});
        if (which != 0) m.grads[2].reset();
        m.losses = MView(l, {N});
        if (!(r == Reduction::kNone)) m.losses.reset();
        m.reduction = r;
        Snap s;
        if (which == 0) {
          fastloss::TripletMarginOptions o;
          o.p = 3;
          o.swap = true;
          s.value = fastloss::TripletMargin(m, o);
        } else if (which == 1) {
          m.target = CView(ypm, {N});
          s.value = fastloss::CosineEmbedding(m);
        } else {
          m.target = CView(y01, {N});
          s.value = fastloss::ContrastivePairs(m);
        }
        s.bytes = {Bytes(g0), Bytes(g1), Bytes(g2), Bytes(l)};
        return s;
      };
      ExpectSameForThreadCounts("triplet p3 swap", [&] { return multi(0); });
      ExpectSameForThreadCounts("cosine_embedding", [&] { return multi(1); });
      ExpectSameForThreadCounts("contrastive_pairs", [&] { return multi(2); });
      for (int axis : {-1, 0}) {
        ExpectSameForThreadCounts("cosine_similarity axis " + std::to_string(axis), [&] {
          std::vector<T> g(n), l(static_cast<size_t>(axis == 0 ? D : N));
          Call<T> c;
          c.y_true = CView(a, {N, D});
          c.y_pred = CView(b, {N, D});
          c.grad = MView(g, {N, D});
          c.losses = MView(l, {static_cast<int64_t>(l.size())});
          if (!(r == Reduction::kNone)) c.losses.reset();
          c.reduction = r;
          fastloss::CosineSimilarityOptions o;
          o.axis = axis;
          Snap s;
          s.value = fastloss::CosineSimilarity(c, o);
          s.bytes = {Bytes(g), Bytes(l)};
          return s;
        });
      }
      ExpectSameForThreadCounts("gradient_penalty", [&] {
        std::vector<T> g(n), l(8);
        ScoreCall<T> sc;
        sc.scores = CView(a, {8, N * D / 8});
        sc.grad = MView(g, {8, N * D / 8});
        sc.losses = MView(l, {8});
        if (!(r == Reduction::kNone)) sc.losses.reset();
        Snap s;
        s.value = fastloss::GradientPenalty(sc, r);
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
    }
    // Elementwise-driver losses.
    {
      const size_t n = 300000;
      const int64_t ni = static_cast<int64_t>(n);
      const std::vector<T> y01 = RandomT<T>(n, 9, 0, 1), d = RandomT<T>(n, 10, -3, 3),
                           x2 = RandomT<T>(n, 11, -3, 3), w = RandomT<T>(n, 12, 0, 2);
      std::vector<T> boxes_t(n), boxes_p(n);
      for (size_t i = 0; i < n; i += 4) {
        boxes_t[i] = d[i];
        boxes_t[i + 1] = d[i + 1];
        boxes_t[i + 2] = d[i] + std::fabs(d[i + 2]);
        boxes_t[i + 3] = d[i + 1] + std::fabs(d[i + 3]);
        boxes_p[i] = x2[i];
        boxes_p[i + 1] = x2[i + 1];
        boxes_p[i + 2] = x2[i] + std::fabs(x2[i + 2]);
        boxes_p[i + 3] = x2[i + 1] + std::fabs(x2[i + 3]);
      }
      auto call = [&](const std::vector<T>& yy, const std::vector<T>& pp, std::vector<T>& g,
                      std::vector<T>& l, const std::vector<int64_t>& shape, bool weighted) {
        Call<T> c;
        c.y_true = CView(yy, shape);
        c.y_pred = CView(pp, shape);
        c.grad = MView(g, shape);
        std::vector<int64_t> ls = shape;
        if (shape.size() == 2) ls = {shape[0]};
        c.losses = MView(l, ls);
        if (!(r == Reduction::kNone)) c.losses.reset();
        c.reduction = r;
        if (weighted) {
          c.weights = CView(w, ls);
        }
        return c;
      };
      ExpectSameForThreadCounts("box_iou ciou", [&] {
        std::vector<T> g(n), l(n / 4);
        fastloss::BoxIouOptions o;
        o.kind = BoxIouKind::kCiou;
        Snap s;
        s.value = fastloss::BoxIou(call(boxes_t, boxes_p, g, l, {ni / 4, 4}, true), o);
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("contrastive", [&] {
        std::vector<T> g(n), l(n);
        Snap s;
        s.value = fastloss::Contrastive(call(y01, d, g, l, {ni}, true));
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("combined", [&] {
        std::vector<T> g(n), l(n);
        fastloss::ElementwiseCombination c;
        fastloss::HuberOptions h;
        h.delta = 2;
        c.Add(0.5, fastloss::MseOptions{}).Add(0.3, fastloss::MaeOptions{}).Add(0.2, h);
        Snap s;
        s.value = fastloss::Combined(call(d, x2, g, l, {ni}, true), c);
        s.bytes = {Bytes(g), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("margin_ranking", [&] {
        std::vector<T> g0(n), g1(n), l(n);
        std::vector<T> ypm(n);
        for (size_t i = 0; i < n; ++i) ypm[i] = i % 3 ? T(1) : T(-1);
        MultiCall<T> m;
        m.inputs[0] = CView(d, {ni});
        m.inputs[1] = CView(x2, {ni});
        m.target = CView(ypm, {ni});
        m.grads[0] = MView(g0, {ni});
        m.grads[1] = MView(g1, {ni});
        m.losses = MView(l, {ni});
        if (!(r == Reduction::kNone)) m.losses.reset();
        m.reduction = r;
        fastloss::MarginRankingOptions o;
        o.margin = 0.5;
        Snap s;
        s.value = fastloss::MarginRanking(m, o);
        s.bytes = {Bytes(g0), Bytes(g1), Bytes(l)};
        return s;
      });
      ExpectSameForThreadCounts("gan_discriminator", [&] {
        std::vector<T> g0(n), g1(n / 2), l0(n), l1(n / 2);
        ScoreCall<T> real, fake;
        real.scores = CView(d, {ni});
        real.grad = MView(g0, {ni});
        real.losses = MView(l0, {ni});
        if (!(r == Reduction::kNone)) real.losses.reset();
        fake.scores = MakeView<const T>(x2.data(), {ni / 2}, {2});
        fake.grad = MView(g1, {ni / 2});
        fake.losses = MView(l1, {ni / 2});
        if (!(r == Reduction::kNone)) fake.losses.reset();
        Snap s;
        s.value = fastloss::GanDiscriminator(real, fake, r);
        s.bytes = {Bytes(g0), Bytes(g1), Bytes(l0), Bytes(l1)};
        return s;
      });
      if (r == Reduction::kMean) {
        ExpectSameForThreadCounts("l2_penalty", [&] {
          std::vector<T> g(n);
          const View<T> gv = MView(g, {ni});
          Snap s;
          s.value = fastloss::L2Penalty(CView(d, {ni}), 0.01, &gv);
          s.bytes = {Bytes(g)};
          return s;
        });
        std::vector<T> rel(n), sc(n);
        std::vector<int64_t> gid(n);
        for (size_t i = 0; i < n; ++i) {
          rel[i] = static_cast<T>((i * 2654435761u) % 5);
          sc[i] = d[i];
          gid[i] = static_cast<int64_t>((i * 40503u) % 100);
        }
        ExpectSameForThreadCounts("pairwise_ranking", [&] {
          std::vector<T> g(n);
          Call<T> c;
          c.y_true = CView(rel, {ni});
          c.y_pred = CView(sc, {ni});
          c.grad = MView(g, {ni});
          const View<const int64_t> gv = CView(gid, {ni});
          Snap s;
          s.value = fastloss::PairwiseRanking(c, &gv);
          s.bytes = {Bytes(g)};
          return s;
        });
      }
    }
  }
}

TEST(StructuredThreads, BitIdenticalForAnyThreadCount) {
  const int saved = fastloss::GetNumThreads();
  CheckThreads<float>();
  CheckThreads<double>();
  fastloss::SetNumThreads(saved);
}

// ============================================================================
// Every SIMD target this CPU supports, on a representative subset.
// ============================================================================

class StructuredTargets : public ::testing::TestWithParam<std::string>, public TargetGuard {};

TEST_P(StructuredTargets, RepresentativeLosses) {
  fastloss::ForceSimdTarget(GetParam());
  ASSERT_EQ(fastloss::SimdTarget(), GetParam());
  SweepOverlap<float>(true);
  SweepOverlap<double>(true);
  CheckLargeGroups<float>(true);
  SweepBoxes<float>(true);
  SweepBoxes<double>(true);
  SweepCosineSim<float>(true);
  SweepMetric<float>(true);
  SweepMetric<double>(true);
  SweepPairwise<double>(true);
  SweepAdversarial<float>(true);
  CheckCombination<float>(Layout::kEveryOther, Reduction::kNone, true, 4242);
  CheckCombination<double>(Layout::kContiguous, Reduction::kMean, true, 4243);
}

INSTANTIATE_TEST_SUITE_P(Available, StructuredTargets,
                         ::testing::ValuesIn(fastloss::AvailableSimdTargets()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string s = info.param;
                           for (char& ch : s) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace fastloss_test
