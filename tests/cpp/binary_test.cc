// The binary (elementwise) classification losses (bce, binary focal, hinge,
// squared hinge, soft margin) against a double-precision reference written
// here from their formulas: float and double, on every SIMD target, every
// reduction, weights, pos_weight arrays, label smoothing, strided operands.
#include "classification_helpers.h"

namespace fastloss_test {
namespace {

// ============================================================================
// A. Binary (elementwise) losses.
// ============================================================================

enum class BinId { kBce, kFocal, kHinge, kSquaredHinge, kSoftMargin };

struct BinConfig {
  BinId id = BinId::kBce;
  std::string name;
  fastloss::BinaryCrossEntropyOptions bce;
  fastloss::BinaryFocalOptions focal;
  bool pos_weight_array = false;  // the BinaryCrossEntropy overload with a View
  bool Logits() const {
    return id == BinId::kBce ? bce.from_logits : id == BinId::kFocal && focal.from_logits;
  }
  double Eps() const { return id == BinId::kBce ? bce.eps : focal.eps; }
};

void PrintTo(const BinConfig& c, std::ostream* os) { *os << c.name; }

std::vector<BinConfig> BinConfigs() {
  std::vector<BinConfig> all;
  auto add = [&](BinId id, const char* name) -> BinConfig& {
    BinConfig c;
    c.id = id;
    c.name = name;
    all.push_back(c);
    return all.back();
  };
  for (bool logits : {true, false}) {
    const std::string m = logits ? "logits" : "probs";
    add(BinId::kBce, ("bce_" + m).c_str()).bce.from_logits = logits;
    {
      BinConfig& c = add(BinId::kBce, ("bce_" + m + "_pw2p5").c_str());
      c.bce.from_logits = logits;
      c.bce.pos_weight = 2.5;
    }
    {
      BinConfig& c = add(BinId::kBce, ("bce_" + m + "_ls0p1").c_str());
      c.bce.from_logits = logits;
      c.bce.label_smoothing = 0.1;
    }
    {
      BinConfig& c = add(BinId::kBce, ("bce_" + m + "_pwarray").c_str());
      c.bce.from_logits = logits;
      c.pos_weight_array = true;
    }
    {
      BinConfig& c = add(BinId::kBce, ("bce_" + m + "_pwarray_ls0p2").c_str());
      c.bce.from_logits = logits;
      c.bce.pos_weight = 7.0;  // ignored with the array
      c.pos_weight_array = true;
      c.bce.label_smoothing = 0.2;
    }
    {
      BinConfig& c = add(BinId::kBce, ("bce_" + m + "_pw2p5_ls0p3").c_str());
      c.bce.from_logits = logits;
      c.bce.pos_weight = 2.5;
      c.bce.label_smoothing = 0.3;
    }
    add(BinId::kFocal, ("focal_" + m).c_str()).focal.from_logits = logits;
    {
      BinConfig& c = add(BinId::kFocal, ("focal_" + m + "_g0").c_str());
      c.focal.from_logits = logits;
      c.focal.gamma = 0.0;
    }
    {
      BinConfig& c = add(BinId::kFocal, ("focal_" + m + "_g0_noalpha").c_str());
      c.focal.from_logits = logits;
      c.focal.gamma = 0.0;
      c.focal.alpha.reset();
    }
    {
      BinConfig& c = add(BinId::kFocal, ("focal_" + m + "_g1p5").c_str());
      c.focal.from_logits = logits;
      c.focal.gamma = 1.5;
    }
    {
      BinConfig& c = add(BinId::kFocal, ("focal_" + m + "_g1p5_noalpha").c_str());
      c.focal.from_logits = logits;
      c.focal.gamma = 1.5;
      c.focal.alpha.reset();
    }
    {
      BinConfig& c = add(BinId::kFocal, ("focal_" + m + "_g2_noalpha").c_str());
      c.focal.from_logits = logits;
      c.focal.alpha.reset();
    }
    {
      BinConfig& c = add(BinId::kFocal, ("focal_" + m + "_alpha0p7_ls0p1").c_str());
      c.focal.from_logits = logits;
      c.focal.alpha = 0.7;
      c.focal.label_smoothing = 0.1;
    }
  }
  {
    BinConfig& c = add(BinId::kBce, "bce_probs_eps0p01");
    c.bce.eps = 0.01;
  }
  add(BinId::kHinge, "hinge");
  add(BinId::kSquaredHinge, "squared_hinge");
  add(BinId::kSoftMargin, "soft_margin");
  return all;
}

// Per-element loss l, dl/dp, and the magnitudes of the terms they are made
// of (the absolute part of the allowance, for cancellation and rounding of
// the intermediate quantities in T).
struct Term {
  double l, dl, ml, mdl;
  double abs_l = 0;  // an absolute allowance for l (not scaled by rtol)
};

Term RefBinary(const BinConfig& c, double y, double x, double pw, double lo, double hi,
               double ulp) {
  switch (c.id) {
    case BinId::kBce: {
      const double ls = c.bce.label_smoothing;
      const double ys = y * (1.0 - ls) + 0.5 * ls;
      const double a = pw * ys, b = 1.0 - ys;
      if (c.bce.from_logits) {
        const double l = Coef(a, Sp(-x)) + Coef(b, Sp(x));
        const double dl = -a * Sig(-x) + b * Sig(x);
        return {l, dl, l + std::fabs(x) * (std::fabs(a) * Sig(x) + std::fabs(b) * Sig(-x)),
                (std::fabs(a) * Sig(-x) + std::fabs(b) * Sig(x)) * (1.0 + std::fabs(x))};
      }
      const double pc = std::min(std::max(x, lo), hi);
      const bool active = x < lo || x > hi;
      const double l = -(a * std::log(pc) + b * std::log(1.0 - pc));
      const double dl = active ? 0.0 : -a / pc + b / (1.0 - pc);
      // log(1 - pc) with 1 - pc rounded to T: an absolute error of an ulp of
      // 1, which for tiny pc is most of log(1 - pc) ~ -pc (Keras computes
      // it the same way).
      return {l, dl, std::fabs(a * std::log(pc)) + std::fabs(b * std::log(1.0 - pc)),
              active ? 0.0 : std::fabs(a) / pc + std::fabs(b) / (1.0 - pc), 2.0 * ulp * std::fabs(b)};
    }
    case BinId::kFocal: {
      const fastloss::BinaryFocalOptions& o = c.focal;
      const double ls = o.label_smoothing, g = o.gamma;
      const double a = y * (1.0 - ls) + 0.5 * ls, b = 1.0 - a;
      const double at = o.alpha ? *o.alpha * a + (1.0 - *o.alpha) * b : 1.0;
      const double atmax = o.alpha ? std::max(*o.alpha, 1.0 - *o.alpha) : 1.0;
      double ce, dce, omp, domp, mce, mdce;
      if (o.from_logits) {
        const double p = Sig(x), q = Sig(-x);
        ce = Coef(a, Sp(-x)) + Coef(b, Sp(x));
        dce = b * p - a * q;
        omp = a * q + b * p;  // 1 - pt
        domp = (b - a) * p * q;
        mce = ce + std::fabs(x) * (a * p + b * q);
        mdce = (b * p + a * q) * (1.0 + std::fabs(x));
      } else {
        const double pc = std::min(std::max(x, lo), hi);
        const bool active = x < lo || x > hi;
        ce = -(a * std::log(pc) + b * std::log(1.0 - pc));
        dce = active ? 0.0 : -a / pc + b / (1.0 - pc);
        omp = pc * b + (1.0 - pc) * a;
        domp = active ? 0.0 : b - a;
        mce = ce;
        mdce = active ? 0.0 : a / pc + b / (1.0 - pc);
      }
      const double mod = g == 0 ? 1.0 : std::pow(omp, g);
      const double dmod = g == 0 || omp == 0 ? 0.0 : g * std::pow(omp, g - 1.0) * domp;
      const double l = at * ce * mod;
      const double dl = at * (dce * mod + ce * dmod);
      const double m1 = g >= 1 ? std::pow(omp, g - 1.0) : 1.0;
      const double ml = (1.0 + g) * atmax * mce * m1;
      const double mdl = (1.0 + g) * (1.0 + g) * atmax *
                         (mdce * m1 + mce * (g == 0 ? 0.0 : m1) * std::fabs(a + b) *
                                          (o.from_logits ? Sig(x) * Sig(-x) : 1.0));
      // As bce: log(1 - pc) with 1 - pc rounded to T (probabilities).
      return {l, dl, ml, mdl, o.from_logits ? 0.0 : 2.0 * ulp * atmax * std::fabs(b)};
    }
    case BinId::kHinge: {
      const double ys = y == 0 ? -1.0 : y;
      const double z = 1.0 - ys * x;
      return {std::max(0.0, z), z > 0 ? -ys : 0.0, 1.0 + std::fabs(ys * x), std::fabs(ys)};
    }
    case BinId::kSquaredHinge: {
      const double ys = y == 0 ? -1.0 : y;
      const double h = std::max(0.0, 1.0 - ys * x);
      return {h * h, -2.0 * ys * h, 2.0 * h * (1.0 + std::fabs(ys * x)),
              2.0 * std::fabs(ys) * (1.0 + std::fabs(ys * x))};
    }
    case BinId::kSoftMargin: {
      const double z = -y * x;
      return {Sp(z), -y * Sig(z), Sp(z) + Sig(z) * std::fabs(z),
              std::fabs(y) * Sig(z) * (1.0 + std::fabs(z))};
    }
  }
  return {kNaN, kNaN, kNaN, kNaN};
}

template <typename T>
double RunBinary(const BinConfig& c, const Call<T>& call, const View<const T>& pos_weight) {
  switch (c.id) {
    case BinId::kBce:
      return c.pos_weight_array ? fastloss::BinaryCrossEntropy(call, pos_weight, c.bce)
                                : fastloss::BinaryCrossEntropy(call, c.bce);
    case BinId::kFocal: return fastloss::BinaryFocal(call, c.focal);
    case BinId::kHinge: return fastloss::Hinge(call);
    case BinId::kSquaredHinge: return fastloss::SquaredHinge(call);
    case BinId::kSoftMargin: return fastloss::SoftMargin(call);
  }
  return kNaN;
}

// Random (y_true, y_pred) inside the loss's domain, with the special values
// that switch branches: hard labels 0 / 1, logits far out, probabilities
// clipped at either end (0, 1, 1e-12, 1 - 1e-9), the hinge kinks at p = +-1.
void MakeBinaryData(const BinConfig& c, int64_t n, uint64_t seed, std::vector<double>* y,
                    std::vector<double>* x) {
  Rng rng(seed * 31u + static_cast<uint64_t>(n) + static_cast<uint64_t>(c.id) * 1000u);
  y->resize(static_cast<size_t>(n));
  x->resize(static_cast<size_t>(n));
  for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
    double& yi = (*y)[i];
    double& xi = (*x)[i];
    switch (c.id) {
      case BinId::kBce:
      case BinId::kFocal: {
        const double u = rng.U(0, 1);
        yi = u < 0.3 ? 0.0 : (u < 0.6 ? 1.0 : rng.U(0, 1));
        if (c.Logits()) {
          xi = 3.0 * rng.N();
          if (rng.P(0.1)) xi = (rng.P(0.5) ? -1 : 1) * rng.U(20, 60);
          if (rng.P(0.03)) xi = 0.0;
        } else {
          xi = rng.U(0.001, 0.999);
          if (rng.P(0.2)) {
            static const double kSpecial[] = {0.0, 1.0, 1e-9, 1e-12, 0.5, 1.0 - 1e-9, 0.25, 0.75};
            xi = kSpecial[rng.I(0, 8)];
          }
        }
        break;
      }
      case BinId::kHinge:
      case BinId::kSquaredHinge: {
        yi = static_cast<double>(rng.I(-1, 2));  // -1, 0 (counts as -1), 1
        if (rng.P(0.1)) yi = rng.P(0.5) ? 0.5 : -0.5;
        xi = 2.0 * rng.N();
        if (rng.P(0.1)) xi = static_cast<double>(rng.I(-1, 2));
        break;
      }
      case BinId::kSoftMargin:
        yi = rng.P(0.8) ? (rng.P(0.5) ? -1.0 : 1.0) : rng.U(-1, 1);
        xi = 3.0 * rng.N();
        if (rng.P(0.05)) xi = (rng.P(0.5) ? -1 : 1) * rng.U(30, 100);
        break;
    }
  }
}

// The reference of a binary call (weights and pos_weight broadcast to
// y_pred, read through the call's views).
template <typename T>
Expected BinaryReference(const BinConfig& c, const Call<T>& call, const View<const T>& pw_view) {
  const double rtol = ClsRtol<T>();
  Expected e;
  e.reduction = call.reduction;
  const View<const T>& p = call.y_pred;
  const int64_t n = p.size();
  e.n = n;
  const std::vector<double> yv = Gather(call.y_true, p.shape, p.rank);
  const std::vector<double> pv = Gather(p, p.shape, p.rank);
  const std::vector<double> w = call.weights.has_value() ? Gather(*call.weights, p.shape, p.rank)
                                                 : std::vector<double>(static_cast<size_t>(n), 1.0);
  std::vector<double> pw(static_cast<size_t>(n), c.bce.pos_weight);
  if (c.pos_weight_array) pw = Gather(pw_view, p.shape, p.rank);
  const double lo = LoClip<T>(c.Eps()), hi = HiClip<T>(c.Eps());
  ExactSum sum_wl, sum_mag, sum_w;
  std::vector<double> wdl(static_cast<size_t>(n)), wmdl(static_cast<size_t>(n));
  e.losses.resize(static_cast<size_t>(n));
  e.losses_tol.resize(static_cast<size_t>(n));
  for (size_t s = 0; s < static_cast<size_t>(n); ++s) {
    const Term t = RefBinary(c, yv[s], pv[s], pw[s], lo, hi, std::numeric_limits<T>::epsilon());
    const double wi = w[s], aw = std::fabs(wi);
    e.losses[s] = wi * t.l;
    e.losses_tol[s] = rtol * (std::fabs(wi * t.l) + aw * t.ml) + aw * t.abs_l + Floor<T>();
    wdl[s] = wi * t.dl;
    wmdl[s] = aw * t.mdl;
    sum_wl.Add(wi * t.l);
    sum_mag.Add(aw * (t.ml + t.abs_l / rtol));
    sum_w.Add(wi);
  }
  double scale = 1.0;
  if (call.reduction == Reduction::kMean) {
    scale = 1.0 / sum_w.Get();
    e.value = sum_wl.Get() * scale;
    e.value_tol = rtol * (std::fabs(e.value) + sum_mag.Get() * std::fabs(scale)) + Floor<T>();
  } else if (call.reduction == Reduction::kSum) {
    e.value = sum_wl.Get();
    e.value_tol = rtol * (std::fabs(e.value) + sum_mag.Get()) + Floor<T>();
  }
  e.grad.resize(static_cast<size_t>(n));
  e.grad_tol.resize(static_cast<size_t>(n));
  for (size_t s = 0; s < static_cast<size_t>(n); ++s) {
    e.grad[s] = wdl[s] * scale;
    e.grad_tol[s] = rtol * (std::fabs(e.grad[s]) + wmdl[s] * std::fabs(scale)) + Floor<T>();
  }
  return e;
}

// One binary configuration on one shape: every reduction, with and without
// weights, every output mode. 1-D shapes get full weights; 2-D shapes (r, k)
// get weights (r, 1) and a pos_weight array (k,), both broadcast.
template <typename T>
void CheckBinary(const BinConfig& c, const std::vector<int64_t>& shape, uint64_t seed) {
  const int64_t n = Prod(shape);
  std::string sh;
  for (int64_t s : shape) sh += std::to_string(s) + ",";
  SCOPED_TRACE(c.name + " " + DtypeName<T>() + " shape=(" + sh + ") seed=" + std::to_string(seed));
  std::vector<double> y64, x64;
  MakeBinaryData(c, n, seed, &y64, &x64);
  const std::vector<T> y = Cast<T>(y64), x = Cast<T>(x64);
  const std::vector<int64_t> wshape =
      shape.size() == 1 ? shape : std::vector<int64_t>{shape[0], 1};
  const std::vector<int64_t> pwshape = {shape.back()};
  Rng rng(seed + 99);
  std::vector<double> w64(static_cast<size_t>(Prod(wshape))), pw64(static_cast<size_t>(shape.back()));
  for (double& v : w64) v = rng.P(0.1) ? 0.0 : rng.U(0, 2);
  w64[0] = 1.0;
  for (double& v : pw64) v = rng.U(0.5, 3.0);
  const std::vector<T> w = Cast<T>(w64), pw = Cast<T>(pw64);
  const View<const T> pw_view = CView(pw, pwshape);
  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    for (bool weighted : {false, true}) {
      SCOPED_TRACE(std::string(ReductionName(r)) + (weighted ? " weighted" : ""));
      Call<T> call;
      call.y_true = CView(y, shape);
      call.y_pred = CView(x, shape);
      call.reduction = r;
      if (weighted) {
        call.weights = CView(w, wshape);
      }
      StridedArray<T> grad(shape, ContiguousStrides(shape)), losses(shape, ContiguousStrides(shape));
      const Expected e = BinaryReference(c, call, pw_view);
      if (r != Reduction::kNone) {
        EXPECT_TRUE(MatchesExpected(e, call, RunBinary(c, call, pw_view))) << "value only";
        call.grad = grad.view();
        EXPECT_TRUE(MatchesExpected(e, call, RunBinary(c, call, pw_view))) << "value and grad";
        EXPECT_TRUE(grad.OnlyViewWritten());
      } else {
        call.losses = losses.view();
        EXPECT_TRUE(MatchesExpected(e, call, RunBinary(c, call, pw_view))) << "losses only";
        call.grad = grad.view();
        EXPECT_TRUE(MatchesExpected(e, call, RunBinary(c, call, pw_view))) << "losses and grad";
        call.losses.reset();
        EXPECT_TRUE(MatchesExpected(e, call, RunBinary(c, call, pw_view))) << "grad only";
        EXPECT_TRUE(grad.OnlyViewWritten());
        EXPECT_TRUE(losses.OnlyViewWritten());
      }
    }
  }
}

class BinaryLossTest
    : public ::testing::TestWithParam<std::tuple<BinConfig, std::string>>,
      public TargetGuard {};

TEST_P(BinaryLossTest, MatchesReference) {
  const BinConfig& c = std::get<0>(GetParam());
  fastloss::ForceSimdTarget(std::get<1>(GetParam()));
  ASSERT_EQ(fastloss::SimdTarget(), std::get<1>(GetParam()));
  const std::vector<std::vector<int64_t>> shapes = {{1}, {7}, {8}, {9}, {33}, {1000}, {2100},
                                                   {37, 11}};
  for (const auto& shape : shapes) {
    for (uint64_t seed : {1u, 2u}) {
      CheckBinary<float>(c, shape, seed);
      CheckBinary<double>(c, shape, seed);
    }
  }
}

std::string BinTestName(const ::testing::TestParamInfo<std::tuple<BinConfig, std::string>>& info) {
  return std::get<0>(info.param).name + "_" + SafeName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Classification, BinaryLossTest,
                         ::testing::Combine(::testing::ValuesIn(BinConfigs()),
                                            ::testing::ValuesIn(Targets())),
                         BinTestName);

}  // namespace
}  // namespace fastloss_test
