// The row-wise classification losses (drivers/rowwise/; the binary ones are in binary_test.cc) against
// a double-precision reference written here, plainly, from the formulas of
// notes/CLASSIFICATION_SPEC.md (nothing is shared with the library's
// functors): float and double, on every SIMD target this CPU supports, every
// reduction and output mode, per-element / per-row weights, class weights,
// ignore_index and label smoothing, class axes first / middle / last, strided
// operands; then the edge values the spec names (log 2 for equal huge logits,
// masked rows, infinities), the errors (raised before any output is written)
// and the determinism of the result across thread counts.
//
// Environment: FASTLOSS_TEST_TRACE=1 prints each row-loss
// call before it is made (to locate a crash, which SCOPED_TRACE cannot).
#include "classification_helpers.h"

namespace fastloss_test {
namespace {

// ============================================================================
// B. Row-wise losses over a class axis.
// ============================================================================

enum class RowId { kCce, kFocal, kCatHinge, kKl, kJsd, kSparse, kNll, kMultiMargin };

struct RowConfig {
  RowId id = RowId::kCce;
  std::string name;
  fastloss::CategoricalCrossEntropyOptions cce;
  fastloss::CategoricalFocalOptions focal;
  fastloss::CategoricalHingeOptions hinge;
  fastloss::KlDivergenceOptions kl;
  fastloss::JensenShannonOptions jsd;
  fastloss::SparseCategoricalCrossEntropyOptions sparse;
  fastloss::NllOptions nll;
  fastloss::MultiMarginOptions mm;
  bool class_weights = false;  // label losses: pass class weights

  bool IsLabel() const {
    return id == RowId::kSparse || id == RowId::kNll || id == RowId::kMultiMargin;
  }
  bool HasIgnore() const {
    return (id == RowId::kSparse && sparse.ignore_index.has_value()) ||
           (id == RowId::kNll && nll.ignore_index.has_value());
  }
  int64_t IgnoreIndex() const {
    return (id == RowId::kSparse ? sparse.ignore_index : nll.ignore_index).value_or(0);
  }
  bool Logits() const {
    switch (id) {
      case RowId::kCce: return cce.from_logits;
      case RowId::kFocal: return focal.from_logits;
      case RowId::kSparse: return sparse.from_logits;
      default: return false;
    }
  }
  double Eps() const {
    switch (id) {
      case RowId::kCce: return cce.eps;
      case RowId::kFocal: return focal.eps;
      case RowId::kSparse: return sparse.eps;
      default: return 1e-7;
    }
  }
  void SetAxis(int axis) {
    cce.axis = focal.axis = hinge.axis = kl.axis = jsd.axis = sparse.axis = nll.axis = mm.axis = axis;
  }
};

void PrintTo(const RowConfig& c, std::ostream* os) { *os << c.name; }

std::vector<RowConfig> RowConfigs() {
  std::vector<RowConfig> all;
  auto add = [&](RowId id, const std::string& name) -> RowConfig& {
    RowConfig c;
    c.id = id;
    c.name = name;
    all.push_back(c);
    return all.back();
  };
  for (bool logits : {true, false}) {
    const std::string m = logits ? "logits" : "probs";
    add(RowId::kCce, "cce_" + m).cce.from_logits = logits;
    {
      RowConfig& c = add(RowId::kCce, "cce_" + m + "_ls0p1");
      c.cce.from_logits = logits;
      c.cce.label_smoothing = 0.1;
    }
    add(RowId::kFocal, "cat_focal_" + m).focal.from_logits = logits;
    {
      RowConfig& c = add(RowId::kFocal, "cat_focal_" + m + "_g0_noalpha");
      c.focal.from_logits = logits;
      c.focal.gamma = 0.0;
      c.focal.alpha.reset();
    }
    {
      RowConfig& c = add(RowId::kFocal, "cat_focal_" + m + "_g1p5_ls0p1");
      c.focal.from_logits = logits;
      c.focal.gamma = 1.5;
      c.focal.label_smoothing = 0.1;
    }
    add(RowId::kSparse, "sparse_" + m).sparse.from_logits = logits;
    {
      RowConfig& c = add(RowId::kSparse, "sparse_" + m + "_ignore");
      c.sparse.from_logits = logits;
      c.sparse.ignore_index = -100;
    }
    {
      RowConfig& c = add(RowId::kSparse, "sparse_" + m + "_cw");
      c.sparse.from_logits = logits;
      c.class_weights = true;
    }
    {
      RowConfig& c = add(RowId::kSparse, "sparse_" + m + "_ls0p2");
      c.sparse.from_logits = logits;
      c.sparse.label_smoothing = 0.2;
    }
    {
      // ignore_index, class weights and label smoothing together.
      RowConfig& c = add(RowId::kSparse, "sparse_" + m + "_ignore_cw_ls0p1");
      c.sparse.from_logits = logits;
      c.sparse.ignore_index = -1;
      c.class_weights = true;
      c.sparse.label_smoothing = 0.1;
    }
  }
  {
    // An ignore_index inside [0, C): rows with that label are ignored.
    RowConfig& c = add(RowId::kSparse, "sparse_logits_ignore_class1");
    c.sparse.from_logits = true;
    c.sparse.ignore_index = 1;
  }
  {
    RowConfig& c = add(RowId::kCce, "cce_probs_eps0p01_ls0p3");
    c.cce.eps = 0.01;
    c.cce.label_smoothing = 0.3;
  }
  add(RowId::kCatHinge, "cat_hinge");
  add(RowId::kKl, "kl");
  add(RowId::kKl, "kl_log_input").kl.log_input = true;
  add(RowId::kKl, "kl_log_target").kl.log_target = true;
  {
    RowConfig& c = add(RowId::kKl, "kl_log_both");
    c.kl.log_input = true;
    c.kl.log_target = true;
  }
  for (bool log_input : {false, true}) {
    for (double beta : {0.0, 0.5, 1.0, 0.3}) {
      std::string name = std::string("jsd_") + (log_input ? "log_" : "") + "b" +
                         (beta == 0 ? "0" : beta == 1 ? "1" : beta == 0.5 ? "0p5" : "0p3");
      RowConfig& c = add(RowId::kJsd, name);
      c.jsd.beta = beta;
      c.jsd.log_input = log_input;
    }
  }
  add(RowId::kNll, "nll");
  {
    RowConfig& c = add(RowId::kNll, "nll_ignore_cw");
    c.nll.ignore_index = -100;
    c.class_weights = true;
  }
  add(RowId::kMultiMargin, "multi_margin_p1");
  add(RowId::kMultiMargin, "multi_margin_p2").mm.p = 2;
  {
    RowConfig& c = add(RowId::kMultiMargin, "multi_margin_p1_cw_margin0p5");
    c.class_weights = true;
    c.mm.margin = 0.5;
  }
  {
    RowConfig& c = add(RowId::kMultiMargin, "multi_margin_p2_cw_margin2");
    c.class_weights = true;
    c.mm.p = 2;
    c.mm.margin = 2.0;
  }
  return all;
}

// One row's reference: loss l, gradient g (length C), and the magnitudes
// ml (loss) and mg (per element) for the allowance. den: the row's part of
// the mean's denominator before the row weight (w_t for sparse / nll, else 1).
struct RowResult {
  double l = 0, ml = 0, den = 1;
  bool ignored = false;
  std::vector<double> g, mg;
};

// Softmax cross-entropy and focal rows, logits or probabilities, given the
// effective targets y' (smoothing and class weights applied).
RowResult SoftmaxFamily(const std::vector<double>& x, const std::vector<double>& yp, bool logits,
                        bool focal, double alpha, double gamma, double lo, double hi) {
  const size_t C = x.size();
  RowResult r;
  r.g.assign(C, 0.0);
  r.mg.assign(C, 0.0);
  std::vector<double> logq(C), q(C), omq(C), err(C, 0.0);
  std::vector<bool> uncl(C, true);
  double S = 0;  // logits: unused; probabilities: sum(p)
  if (logits) {
    size_t k = 0;
    for (size_t c = 1; c < C; ++c) {
      if (x[c] > x[k]) k = c;
    }
    const double m = x[k];
    if (m == -kInf) {  // fully masked: NaN loss, zero gradient
      r.l = kNaN;
      return r;
    }
    double rest = 0;  // sum of exp(x - m) over the classes other than k
    for (size_t c = 0; c < C; ++c) {
      if (c != k) rest += std::exp(x[c] - m);
    }
    const double logS = std::log1p(rest);
    for (size_t c = 0; c < C; ++c) {
      logq[c] = (x[c] - m) - logS;
      q[c] = std::exp(logq[c]);
      omq[c] = -std::expm1(logq[c]);
      err[c] = q[c] == 0 ? 0.0 : 1.0 + std::fabs(x[c] - m) + logS;  // relative error of q in ulps
    }
  } else {
    for (size_t c = 0; c < C; ++c) S += x[c];
    for (size_t c = 0; c < C; ++c) {
      const double rc = x[c] / S;
      uncl[c] = rc >= lo && rc <= hi;
      q[c] = std::min(std::max(rc, lo), hi);
      logq[c] = std::log(q[c]);
      omq[c] = 1.0 - q[c];
      err[c] = 2.0;
    }
  }
  const double a = focal ? alpha : 1.0, g = focal ? gamma : 0.0;
  std::vector<double> D(C, 0.0), Derr(C, 0.0);
  for (size_t c = 0; c < C; ++c) {
    if (yp[c] == 0) continue;
    const double mod = g == 0 ? 1.0 : std::pow(omq[c], g);
    const double qlogq = q[c] == 0 ? 0.0 : q[c] * logq[c];
    r.l += -a * yp[c] * mod * logq[c];
    D[c] = -a * yp[c] * (mod - (g == 0 ? 0.0 : g * std::pow(omq[c], g - 1.0) * qlogq));
    const double m1 = g >= 1 ? std::pow(omq[c], g - 1.0) : 1.0;
    const double f = a * std::fabs(yp[c]) * (1.0 + g) * m1;
    r.ml += f * (std::fabs(logq[c]) + 1.0) * (logits ? err[c] : 1.0);
    Derr[c] = (std::fabs(D[c]) + (focal ? a * std::fabs(yp[c]) * (1 + g) * (1 + g) : 0.0)) *
              std::max(err[c], 1.0);
  }
  if (logits) {
    double H = 0, Habs = 0;
    for (size_t c = 0; c < C; ++c) {
      H += D[c];
      Habs += Derr[c];
    }
    for (size_t j = 0; j < C; ++j) {
      r.g[j] = D[j] - q[j] * H;
      r.mg[j] = Derr[j] + q[j] * Habs * std::max(err[j], 1.0);
    }
  } else {
    double U = 0, Uabs = 0;
    for (size_t c = 0; c < C; ++c) {
      if (!uncl[c]) continue;
      U += D[c];
      Uabs += Derr[c];
    }
    for (size_t j = 0; j < C; ++j) {
      r.g[j] = ((uncl[j] ? D[j] / q[j] : 0.0) - U) / S;
      r.mg[j] = ((uncl[j] ? Derr[j] / q[j] : 0.0) + Uabs) / S;
    }
  }
  return r;
}

// The reference of one row. x: the row of y_pred; y: the row of y_true
// (dense losses); t: the label (label losses); cw: class weights (empty: 1).
RowResult RefRow(const RowConfig& c, const std::vector<double>& x, const std::vector<double>& y,
                 int64_t t, const std::vector<double>& cw, double lo, double hi) {
  const size_t C = x.size();
  const double Cd = static_cast<double>(C);
  auto w = [&](size_t k) { return cw.empty() ? 1.0 : cw[k]; };
  RowResult r;
  if (c.IsLabel() && c.HasIgnore() && t == c.IgnoreIndex()) {
    r.ignored = true;
    r.den = 0;
    r.g.assign(C, 0.0);
    r.mg.assign(C, 0.0);
    return r;
  }
  switch (c.id) {
    case RowId::kCce:
    case RowId::kFocal: {
      const double ls = c.id == RowId::kCce ? c.cce.label_smoothing : c.focal.label_smoothing;
      std::vector<double> yp(C);
      for (size_t k = 0; k < C; ++k) yp[k] = y[k] * (1.0 - ls) + ls / Cd;
      const bool focal = c.id == RowId::kFocal;
      return SoftmaxFamily(x, yp, c.Logits(), focal,
                           focal ? c.focal.alpha.value_or(1.0) : 1.0,
                           focal ? c.focal.gamma : 0.0, lo, hi);
    }
    case RowId::kSparse: {
      const double ls = c.sparse.label_smoothing;
      const size_t ts = static_cast<size_t>(t);
      std::vector<double> yp(C);
      for (size_t k = 0; k < C; ++k) yp[k] = (k == ts ? (1.0 - ls) * w(ts) : 0.0) + ls / Cd * w(k);
      r = SoftmaxFamily(x, yp, c.Logits(), false, 1.0, 0.0, lo, hi);
      r.den = w(ts);
      return r;
    }
    case RowId::kNll: {
      const size_t ts = static_cast<size_t>(t);
      r.g.assign(C, 0.0);
      r.mg.assign(C, 0.0);
      r.l = -w(ts) * x[ts];
      r.ml = std::fabs(r.l);
      r.g[ts] = -w(ts);
      r.mg[ts] = std::fabs(w(ts));
      r.den = w(ts);
      return r;
    }
    case RowId::kMultiMargin: {
      const size_t ts = static_cast<size_t>(t);
      const double wt = w(ts), mg = c.mm.margin;
      const int p = c.mm.p;
      r.g.assign(C, 0.0);
      r.mg.assign(C, 0.0);
      for (size_t k = 0; k < C; ++k) {
        if (k == ts) continue;
        const double z = mg - x[ts] + x[k];
        const double size = std::fabs(mg) + std::fabs(x[ts]) + std::fabs(x[k]);
        if (z > 0) {
          r.l += wt * (p == 1 ? z : z * z) / Cd;
          r.g[k] = wt * (p == 1 ? 1.0 : 2.0 * z) / Cd;
          r.g[ts] -= r.g[k];
        }
        const double mk = std::fabs(wt) * (p == 1 ? size : 2.0 * std::max(z, 0.0) * size) / Cd;
        r.ml += mk;
        r.mg[k] = std::fabs(wt) * (p == 1 ? 1.0 : 2.0 * size) / Cd;
        r.mg[ts] += r.mg[k];
      }
      return r;
    }
    case RowId::kCatHinge: {
      double pos = 0, neg = -kInf, mpos = 0;
      size_t k = 0;
      for (size_t j = 0; j < C; ++j) {
        pos += y[j] * x[j];
        mpos += std::fabs(y[j] * x[j]);
        const double nv = (1.0 - y[j]) * x[j];
        if (nv > neg) {
          neg = nv;
          k = j;
        }
      }
      const double z = neg - pos + 1.0;
      r.l = std::max(0.0, z);
      r.ml = mpos + std::fabs(neg) + 1.0;
      r.g.assign(C, 0.0);
      r.mg.assign(C, 0.0);
      for (size_t j = 0; j < C; ++j) {
        if (z > 0) r.g[j] = -y[j] + (j == k ? 1.0 - y[j] : 0.0);
        r.mg[j] = 1.0 + std::fabs(y[j]);
      }
      return r;
    }
    case RowId::kKl: {
      const bool li = c.kl.log_input, lt = c.kl.log_target;
      r.g.assign(C, 0.0);
      r.mg.assign(C, 0.0);
      for (size_t j = 0; j < C; ++j) {
        const double lp = li ? x[j] : std::log(x[j]);
        const double tj = lt ? std::exp(y[j]) : y[j];
        const double ltj = lt ? y[j] : std::log(y[j]);
        if (tj == 0 && !lt) continue;
        r.l += tj * (ltj - lp);
        r.ml += std::fabs(tj) * (std::fabs(ltj) + std::fabs(lp) + 1.0);
        r.g[j] = li ? -tj : -tj / x[j];
        r.mg[j] = std::fabs(r.g[j]) * 2.0;
      }
      return r;
    }
    case RowId::kJsd: {
      const double b = c.jsd.beta;
      const bool li = c.jsd.log_input;
      r.g.assign(C, 0.0);
      r.mg.assign(C, 0.0);
      for (size_t j = 0; j < C; ++j) {
        const double P = li ? std::exp(y[j]) : y[j], Q = li ? std::exp(x[j]) : x[j];
        const double lP = li ? y[j] : std::log(y[j]), lQ = li ? x[j] : std::log(x[j]);
        // Magnitudes: a term with a zero probability is absent (0 * inf).
        const double aP = P == 0 ? 0.0 : std::fabs(P) * (std::fabs(lP) + 1.0);
        const double aQ = Q == 0 ? 0.0 : std::fabs(Q) * (std::fabs(lQ) + 1.0);
        if (b == 0) {
          r.l += Coef(P, lP - lQ);
          r.ml += aP + (P == 0 ? 0.0 : std::fabs(P) * std::fabs(lQ));
          r.g[j] = li ? -P : (P == 0 ? 0.0 : -P / Q);
          r.mg[j] = 2.0 * std::fabs(r.g[j]);
        } else if (b == 1) {
          r.l += Coef(Q, lQ - lP);
          r.ml += aQ + (Q == 0 ? 0.0 : std::fabs(Q) * std::fabs(lP));
          r.g[j] = li ? Coef(Q, lQ - lP + 1.0) : lQ - lP + 1.0;
          r.mg[j] = (li ? std::fabs(Q) : 1.0) * (std::fabs(lQ) + std::fabs(lP) + 2.0) * 2.0;
        } else {
          const double M = b * P + (1.0 - b) * Q, lM = std::log(M);
          r.l += Coef(b * P, lP - lM) + Coef((1.0 - b) * Q, lQ - lM);
          r.ml += 2.0 * (b * (aP + std::fabs(P) * std::fabs(lM)) +
                         (1.0 - b) * (aQ + std::fabs(Q) * std::fabs(lM)));
          r.g[j] = li ? Coef((1.0 - b) * Q, lQ - lM) : (1.0 - b) * (lQ - lM);
          r.mg[j] = (li ? std::fabs(Q) : 1.0) * (1.0 - b) * (std::fabs(lQ) + std::fabs(lM) + 2.0) *
                    2.0;
        }
      }
      return r;
    }
  }
  return r;
}

template <typename T>
double RunDense(const RowConfig& c, const Call<T>& call) {
  switch (c.id) {
    case RowId::kCce: return fastloss::CategoricalCrossEntropy(call, c.cce);
    case RowId::kFocal: return fastloss::CategoricalFocal(call, c.focal);
    case RowId::kCatHinge: return fastloss::CategoricalHinge(call, c.hinge);
    case RowId::kKl: return fastloss::KlDivergence(call, c.kl);
    case RowId::kJsd: return fastloss::JensenShannon(call, c.jsd);
    default: break;
  }
  ADD_FAILURE() << c.name << " is not a dense loss";
  return kNaN;
}

template <typename T>
double RunLabel(const RowConfig& c, const LabelCall<T>& call) {
  switch (c.id) {
    case RowId::kSparse: return fastloss::SparseCategoricalCrossEntropy(call, c.sparse);
    case RowId::kNll: return fastloss::Nll(call, c.nll);
    case RowId::kMultiMargin: return fastloss::MultiMargin(call, c.mm);
    default: break;
  }
  ADD_FAILURE() << c.name << " is not a label loss";
  return kNaN;
}

// Where the rows and the class axis lie, and the strides of each operand
// (empty: C-contiguous).
struct Layout {
  std::string name;
  std::vector<int64_t> shape;
  int axis = -1;  // as passed to the options
  std::vector<int64_t> x_strides, y_strides, g_strides, l_strides, lab_strides;
  std::vector<int64_t> wshape;  // broadcasts to the rows shape
  // Derived.
  int ax = 0;
  int64_t C = 0, outer = 1, inner = 1, rows = 1;
  std::vector<int64_t> rshape;
  void Finish() {
    const int rank = static_cast<int>(shape.size());
    ax = axis < 0 ? axis + rank : axis;
    C = shape[static_cast<size_t>(ax)];
    outer = inner = 1;
    rshape.clear();
    for (int k = 0; k < rank; ++k) {
      if (k < ax) outer *= shape[static_cast<size_t>(k)];
      if (k > ax) inner *= shape[static_cast<size_t>(k)];
      if (k != ax) rshape.push_back(shape[static_cast<size_t>(k)]);
    }
    rows = outer * inner;
    auto fill = [](std::vector<int64_t>& s, const std::vector<int64_t>& sh) {
      if (s.empty()) s = ContiguousStrides(sh);
    };
    fill(x_strides, shape);
    fill(y_strides, shape);
    fill(g_strides, shape);
    fill(l_strides, rshape);
    fill(lab_strides, rshape);
  }
  // C-order index in y_pred's shape of class c of row r (C order in rshape).
  size_t Flat(int64_t r, int64_t c) const {
    return static_cast<size_t>(((r / inner) * C + c) * inner + r % inner);
  }
};

// kinds: last (N, C), first (C, N) axis 0, middle (2, C, 5) axis 1,
// middle_neg (2, C, 5) axis -2 with weights (5,), single (C,) one row,
// padded (N, C) with gaps between rows and a reversed y_true.
Layout MakeLayout(const std::string& kind, int64_t N, int64_t C) {
  Layout L;
  L.name = kind;
  if (kind == "last") {
    L.shape = {N, C};
    L.wshape = {N};
  } else if (kind == "first") {
    L.shape = {C, N};
    L.axis = 0;
    L.wshape = {N};
  } else if (kind == "middle") {
    L.shape = {2, C, 5};
    L.axis = 1;
    L.wshape = {2, 1};
  } else if (kind == "middle_neg") {
    L.shape = {2, C, 5};
    L.axis = -2;
    L.wshape = {5};
  } else if (kind == "single") {
    L.shape = {C};
    L.wshape = {};
  } else if (kind == "padded") {
    L.shape = {N, C};
    L.x_strides = {C + 3, 1};
    L.y_strides = {-C, 1};
    L.g_strides = {C + 2, 1};
    L.l_strides = {2};
    L.lab_strides = {-3};
    L.wshape = {N};
  }
  L.Finish();
  return L;
}

// Per-row data (row-major [row][class]) in each loss's domain.
struct RowData {
  std::vector<double> x, y, cw;  // x, y: rows * C
  std::vector<int64_t> labels;   // rows
};

// Positive values normalised to sum 1, about `zeros` of them exactly 0
// (never all).
std::vector<double> Simplex(Rng& rng, int64_t C, double zeros) {
  std::vector<double> v(static_cast<size_t>(C));
  double s = 0;
  for (double& e : v) {
    e = rng.P(zeros) ? 0.0 : rng.U(0.05, 1.0);
    s += e;
  }
  if (s == 0) {
    v[0] = 1.0;
    s = 1.0;
  }
  for (double& e : v) e /= s;
  return v;
}

RowData MakeRowData(const RowConfig& c, int64_t rows, int64_t C, uint64_t seed) {
  Rng rng(seed * 7919u + static_cast<uint64_t>(rows * 131 + C) + static_cast<uint64_t>(c.id) * 17u);
  RowData d;
  d.x.resize(static_cast<size_t>(rows * C));
  d.y.assign(static_cast<size_t>(rows * C), 0.0);
  d.labels.resize(static_cast<size_t>(rows));
  auto X = [&](int64_t r, int64_t k) -> double& { return d.x[static_cast<size_t>(r * C + k)]; };
  auto Y = [&](int64_t r, int64_t k) -> double& { return d.y[static_cast<size_t>(r * C + k)]; };
  for (int64_t r = 0; r < rows; ++r) {
    // y_pred.
    switch (c.id) {
      case RowId::kCce:
      case RowId::kFocal:
      case RowId::kSparse:
        if (c.Logits()) {
          const double shift = rng.P(0.15) ? (rng.P(0.5) ? -40.0 : 40.0) : 0.0;
          for (int64_t k = 0; k < C; ++k) X(r, k) = 2.5 * rng.N() + shift;
          if (rng.P(0.2)) X(r, rng.I(0, C)) += 12.0;
        } else {
          const double scale = rng.P(0.3) ? 0.1 : (rng.P(0.5) ? 1.0 : 7.0);
          for (int64_t k = 0; k < C; ++k) X(r, k) = rng.P(0.05) ? 0.0 : rng.U(0.02, 1.0) * scale;
          if (rng.P(0.05)) {  // a one-hot row: clipped at both ends
            for (int64_t k = 0; k < C; ++k) X(r, k) = 0.0;
          }
          bool any = false;
          for (int64_t k = 0; k < C; ++k) any = any || X(r, k) > 0;
          if (!any) X(r, rng.I(0, C)) = 1.0;
        }
        break;
      case RowId::kCatHinge:
        for (int64_t k = 0; k < C; ++k) X(r, k) = 1.5 * rng.N();
        break;
      case RowId::kMultiMargin:
        for (int64_t k = 0; k < C; ++k) X(r, k) = 1.2 * rng.N();
        break;
      case RowId::kNll: {
        // Log-probabilities.
        double m = -kInf;
        for (int64_t k = 0; k < C; ++k) m = std::max(m, X(r, k) = 2.0 * rng.N());
        double s = 0;
        for (int64_t k = 0; k < C; ++k) s += std::exp(X(r, k) - m);
        for (int64_t k = 0; k < C; ++k) X(r, k) = X(r, k) - m - std::log(s);
        break;
      }
      case RowId::kKl:
      case RowId::kJsd: {
        const bool li = c.id == RowId::kKl ? c.kl.log_input : c.jsd.log_input;
        const std::vector<double> q = Simplex(rng, C, 0.0);
        for (int64_t k = 0; k < C; ++k) X(r, k) = li ? std::log(q[static_cast<size_t>(k)]) : q[static_cast<size_t>(k)];
        break;
      }
    }
    // y_true / labels.
    switch (c.id) {
      case RowId::kCce:
      case RowId::kFocal: {
        const double u = rng.U(0, 1);
        if (u < 0.4) {
          Y(r, rng.I(0, C)) = 1.0;
        } else if (u < 0.7) {
          const std::vector<double> s = Simplex(rng, C, 0.2);
          for (int64_t k = 0; k < C; ++k) Y(r, k) = s[static_cast<size_t>(k)];
        } else {
          for (int64_t k = 0; k < C; ++k) Y(r, k) = rng.P(0.2) ? 0.0 : rng.U(0, 1);
        }
        break;
      }
      case RowId::kCatHinge: {
        const double u = rng.U(0, 1);
        if (u < 0.5) {
          Y(r, rng.I(0, C)) = 1.0;
        } else if (u < 0.75) {
          for (int64_t k = 0; k < C; ++k) Y(r, k) = rng.P(0.3) ? 1.0 : 0.0;
        } else {
          for (int64_t k = 0; k < C; ++k) Y(r, k) = rng.U(0, 1);
        }
        break;
      }
      case RowId::kKl: {
        const bool lt = c.kl.log_target;
        const std::vector<double> t = Simplex(rng, C, lt ? 0.0 : 0.2);
        for (int64_t k = 0; k < C; ++k) {
          Y(r, k) = lt ? std::log(t[static_cast<size_t>(k)]) : t[static_cast<size_t>(k)];
        }
        break;
      }
      case RowId::kJsd: {
        const bool li = c.jsd.log_input;
        const bool zeros = !li && c.jsd.beta != 1.0;  // P == 0 with beta == 1 is +inf
        const std::vector<double> t = Simplex(rng, C, zeros ? 0.2 : 0.0);
        for (int64_t k = 0; k < C; ++k) {
          Y(r, k) = li ? std::log(t[static_cast<size_t>(k)]) : t[static_cast<size_t>(k)];
        }
        break;
      }
      default: {
        int64_t t = rng.I(0, C);
        if (c.HasIgnore() && r > 0 && rng.P(0.15)) t = c.IgnoreIndex();
        if (c.HasIgnore() && r == 0 && t == c.IgnoreIndex()) t = (t + 1) % C;
        d.labels[static_cast<size_t>(r)] = t;
        break;
      }
    }
  }
  d.cw.resize(static_cast<size_t>(C));
  for (double& v : d.cw) v = rng.U(0.25, 2.0);
  return d;
}

// The reference of a whole row call: rows, weights s_r (broadcast to the
// rows shape), the reduction's denominator, the gradient's scale.
template <typename T>
Expected RowReference(const RowConfig& c, const Layout& L, const std::vector<double>& xv,
                      const std::vector<double>& yv, const std::vector<int64_t>& labels,
                      const std::vector<double>& s, const std::vector<double>& cw,
                      Reduction reduction) {
  const double rtol = ClsRtol<T>();
  const double lo = LoClip<T>(c.Eps()), hi = HiClip<T>(c.Eps());
  Expected e;
  e.reduction = reduction;
  e.n = static_cast<int64_t>(xv.size());
  e.losses.assign(static_cast<size_t>(L.rows), 0.0);
  e.losses_tol.assign(static_cast<size_t>(L.rows), 0.0);
  std::vector<double> wdl(xv.size(), 0.0), wmdl(xv.size(), 0.0);
  ExactSum sum_wl, sum_mag, den;
  std::vector<double> xr(static_cast<size_t>(L.C)), yr(static_cast<size_t>(L.C));
  for (int64_t r = 0; r < L.rows; ++r) {
    for (int64_t k = 0; k < L.C; ++k) {
      xr[static_cast<size_t>(k)] = xv[L.Flat(r, k)];
      yr[static_cast<size_t>(k)] = c.IsLabel() ? 0.0 : yv[L.Flat(r, k)];
    }
    const RowResult rr = RefRow(c, xr, yr, c.IsLabel() ? labels[static_cast<size_t>(r)] : 0, cw, lo, hi);
    const double sr = s[static_cast<size_t>(r)], as = std::fabs(sr);
    if (!rr.ignored) {
      e.losses[static_cast<size_t>(r)] = sr * rr.l;
      e.losses_tol[static_cast<size_t>(r)] = rtol * (std::fabs(sr * rr.l) + as * rr.ml) + Floor<T>();
      sum_wl.Add(sr * rr.l);
      sum_mag.Add(as * rr.ml);
      den.Add(sr * rr.den);
    } else {
      e.losses_tol[static_cast<size_t>(r)] = 0.0;
    }
    for (int64_t k = 0; k < L.C; ++k) {
      wdl[L.Flat(r, k)] = sr * rr.g[static_cast<size_t>(k)];
      wmdl[L.Flat(r, k)] = as * rr.mg[static_cast<size_t>(k)];
    }
  }
  double scale = 1.0;
  if (reduction == Reduction::kMean) {
    const double D = den.Get();
    if (D == 0) {  // a mean over nothing
      e.value = kNaN;
      scale = 0.0;
    } else {
      scale = 1.0 / D;
      e.value = sum_wl.Get() * scale;
    }
    e.value_tol = rtol * (std::fabs(e.value) + sum_mag.Get() * std::fabs(scale)) + Floor<T>();
  } else if (reduction == Reduction::kSum) {
    e.value = sum_wl.Get();
    e.value_tol = rtol * (std::fabs(e.value) + sum_mag.Get()) + Floor<T>();
  }
  e.grad.resize(xv.size());
  e.grad_tol.resize(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    e.grad[i] = wdl[i] * scale;
    e.grad_tol[i] = rtol * (std::fabs(e.grad[i]) + wmdl[i] * std::fabs(scale)) + Floor<T>();
  }
  return e;
}

// Every reduction, with and without weights, every output mode of one row
// configuration on one layout.
template <typename T>
void CheckRows(const RowConfig& c0, const std::string& kind, int64_t N, int64_t C, uint64_t seed) {
  RowConfig c = c0;
  const Layout L = MakeLayout(kind, N, C);
  c.SetAxis(L.axis);
  SCOPED_TRACE(c.name + " " + DtypeName<T>() + " layout=" + kind + " C=" + std::to_string(C) +
               " rows=" + std::to_string(L.rows) + " seed=" + std::to_string(seed));
  const RowData d = MakeRowData(c, L.rows, C, seed);
  // Scatter the row-major data into y_pred's C order.
  std::vector<double> xfull(static_cast<size_t>(Prod(L.shape))), yfull(xfull.size());
  for (int64_t r = 0; r < L.rows; ++r) {
    for (int64_t k = 0; k < C; ++k) {
      xfull[L.Flat(r, k)] = d.x[static_cast<size_t>(r * C + k)];
      yfull[L.Flat(r, k)] = d.y[static_cast<size_t>(r * C + k)];
    }
  }
  StridedArray<T> xa(L.shape, L.x_strides), ya(L.shape, L.y_strides);
  xa.Fill(Cast<T>(xfull));
  ya.Fill(Cast<T>(yfull));
  StridedArray<int64_t> la(L.rshape, L.lab_strides);
  la.Fill(d.labels);
  const std::vector<double> xv = RoundTo<T>(xfull), yv = RoundTo<T>(yfull);
  const std::vector<double> cwv = RoundTo<T>(d.cw);
  const std::vector<T> cw = Cast<T>(d.cw);
  Rng rng(seed + 5);
  std::vector<double> w64(static_cast<size_t>(Prod(L.wshape)));
  for (double& v : w64) v = rng.P(0.1) ? 0.0 : rng.U(0.0, 2.0);
  w64[0] = 1.0;
  const std::vector<T> w = Cast<T>(w64);
  const View<const T> wview = CView(w, L.wshape);
  const std::vector<double> s_weighted = Gather(wview, L.rshape.data(), static_cast<int>(L.rshape.size()));
  const std::vector<double> s_plain(static_cast<size_t>(L.rows), 1.0);
  const std::vector<double> no_cw;

  for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
    for (bool weighted : {false, true}) {
      SCOPED_TRACE(std::string(ReductionName(r)) + (weighted ? " weighted" : ""));
      const Expected e = RowReference<T>(c, L, xv, yv, d.labels, weighted ? s_weighted : s_plain,
                                         c.class_weights ? cwv : no_cw, r);
      StridedArray<T> grad(L.shape, L.g_strides), losses(L.rshape, L.l_strides);
      auto run = [&](bool with_grad, bool with_losses, const char* what) {
        if (std::getenv("FASTLOSS_TEST_TRACE")) {
          fprintf(stderr, "%s %s %s C=%ld rows=%ld %s %s%s\n", c.name.c_str(), DtypeName<T>(),
                  kind.c_str(), static_cast<long>(C), static_cast<long>(L.rows),
                  ReductionName(r), weighted ? "weighted " : "", what);
        }
        if (c.IsLabel()) {
          LabelCall<T> call;
          call.labels = la.cview();
          call.y_pred = xa.cview();
          call.reduction = r;
          if (weighted) {
            call.weights = wview;
          }
          if (c.class_weights) {
            call.class_weights = CView(cw, {C});
          }
          call.grad = grad.view();
          if (!(with_grad)) call.grad.reset();
          call.losses = losses.view();
          if (!(with_losses)) call.losses.reset();
          EXPECT_TRUE(MatchesExpected(e, call, RunLabel(c, call))) << what;
        } else {
          Call<T> call;
          call.y_true = ya.cview();
          call.y_pred = xa.cview();
          call.reduction = r;
          if (weighted) {
            call.weights = wview;
          }
          call.grad = grad.view();
          if (!(with_grad)) call.grad.reset();
          call.losses = losses.view();
          if (!(with_losses)) call.losses.reset();
          EXPECT_TRUE(MatchesExpected(e, call, RunDense(c, call))) << what;
        }
      };
      if (r != Reduction::kNone) {
        run(false, false, "value only");
        run(true, false, "value and grad");
        EXPECT_TRUE(losses.Untouched()) << "losses written with a reduction";
      } else {
        run(false, true, "losses only");
        run(true, true, "losses and grad");
        run(true, false, "grad only");
        EXPECT_TRUE(losses.OnlyViewWritten());
      }
      EXPECT_TRUE(grad.OnlyViewWritten());
    }
  }
}

class RowLossTest : public ::testing::TestWithParam<std::tuple<RowConfig, std::string>>,
                    public TargetGuard {};

TEST_P(RowLossTest, MatchesReference) {
  const RowConfig& c = std::get<0>(GetParam());
  fastloss::ForceSimdTarget(std::get<1>(GetParam()));
  ASSERT_EQ(fastloss::SimdTarget(), std::get<1>(GetParam()));
  // (C, rows of the 2-D layouts).
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{1, 9}, {3, 17}, {10, 9}, {37, 5},
                                                         {1000, 3}};
  for (const auto& sz : sizes) {
    for (const char* kind : {"last", "first", "middle", "middle_neg", "single", "padded"}) {
      CheckRows<float>(c, kind, sz.second, sz.first, 1);
      CheckRows<double>(c, kind, sz.second, sz.first, 1);
    }
    CheckRows<float>(c, "last", sz.second, sz.first, 2);
    CheckRows<double>(c, "last", sz.second, sz.first, 2);
  }
}

std::string RowTestName(const ::testing::TestParamInfo<std::tuple<RowConfig, std::string>>& info) {
  return std::get<0>(info.param).name + "_" + SafeName(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Classification, RowLossTest,
                         ::testing::Combine(::testing::ValuesIn(RowConfigs()),
                                            ::testing::ValuesIn(Targets())),
                         RowTestName);

// ============================================================================
// C. Edge values, on every target.
// ============================================================================

// The outputs of one small call: value, gradient (C order) and losses.
struct Out {
  double value = 0;
  std::vector<double> grad, losses;
};

// A dense row loss on y_pred of `shape` with the class axis last.
template <typename T, class F>
Out DenseRun(F&& f, const std::vector<double>& y, const std::vector<double>& x,
             const std::vector<int64_t>& shape, Reduction r) {
  const std::vector<T> yt = Cast<T>(y), xt = Cast<T>(x);
  const std::vector<int64_t> rshape(shape.begin(), shape.end() - 1);
  std::vector<T> g(x.size(), StridedArray<T>::Sentinel());
  std::vector<T> l(static_cast<size_t>(Prod(rshape)), StridedArray<T>::Sentinel());
  Call<T> call;
  call.y_true = CView(yt, shape);
  call.y_pred = CView(xt, shape);
  call.reduction = r;
  call.grad = MakeView<T>(g.data(), shape, ContiguousStrides(shape));
  call.losses = MakeView<T>(l.data(), rshape, ContiguousStrides(rshape));
  if (!(r == Reduction::kNone)) call.losses.reset();
  Out o;
  o.value = f(call);
  o.grad = ToDouble(g);
  o.losses = ToDouble(l);
  return o;
}

// An elementwise (binary) loss on a 1-D input.
template <typename T, class F>
Out BinaryRun(F&& f, const std::vector<double>& y, const std::vector<double>& x, Reduction r) {
  const std::vector<int64_t> shape = {static_cast<int64_t>(x.size())};
  const std::vector<T> yt = Cast<T>(y), xt = Cast<T>(x);
  std::vector<T> g(x.size(), StridedArray<T>::Sentinel()), l(x.size(), StridedArray<T>::Sentinel());
  Call<T> call;
  call.y_true = CView(yt, shape);
  call.y_pred = CView(xt, shape);
  call.reduction = r;
  call.grad = MakeView<T>(g.data(), shape, {1});
  call.losses = MakeView<T>(l.data(), shape, {1});
  if (!(r == Reduction::kNone)) call.losses.reset();
  Out o;
  o.value = f(call);
  o.grad = ToDouble(g);
  o.losses = ToDouble(l);
  return o;
}

// A label loss on y_pred of `shape` with the class axis last.
template <typename T, class F>
Out LabelRun(F&& f, const std::vector<int64_t>& labels, const std::vector<double>& x,
             const std::vector<int64_t>& shape, Reduction r, const std::vector<double>& cw = {}) {
  const std::vector<T> xt = Cast<T>(x), cwt = Cast<T>(cw);
  const std::vector<int64_t> rshape(shape.begin(), shape.end() - 1);
  std::vector<T> g(x.size(), StridedArray<T>::Sentinel());
  std::vector<T> l(static_cast<size_t>(Prod(rshape)), StridedArray<T>::Sentinel());
  LabelCall<T> call;
  call.labels = CView(labels, rshape);
  call.y_pred = CView(xt, shape);
  call.reduction = r;
  if (!cw.empty()) {
    call.class_weights = CView(cwt, {static_cast<int64_t>(cw.size())});
  }
  call.grad = MakeView<T>(g.data(), shape, ContiguousStrides(shape));
  call.losses = MakeView<T>(l.data(), rshape, ContiguousStrides(rshape));
  if (!(r == Reduction::kNone)) call.losses.reset();
  Out o;
  o.value = f(call);
  o.grad = ToDouble(g);
  o.losses = ToDouble(l);
  return o;
}

template <typename T>
double Ulp() {
  return std::numeric_limits<T>::epsilon();
}

// softmax(x) - onehot(t), the cross-entropy logit gradient, in double.
std::vector<double> SoftmaxMinusOneHot(const std::vector<double>& x, int64_t t) {
  double m = -kInf;
  for (double v : x) m = std::max(m, v);
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  std::vector<double> g(x.size());
  for (size_t j = 0; j < x.size(); ++j) {
    g[j] = std::exp(x[j] - m) / s - (static_cast<int64_t>(j) == t ? 1.0 : 0.0);
  }
  return g;
}

class ClassificationEdges : public ::testing::TestWithParam<std::string>, public TargetGuard {
 protected:
  void SetUp() override {
    fastloss::ForceSimdTarget(GetParam());
    ASSERT_EQ(fastloss::SimdTarget(), GetParam());
  }
};

template <typename T>
void CheckEqualHugeLogits() {
  SCOPED_TRACE(DtypeName<T>());
  const double big = std::is_same<T, float>::value ? 3e38 : 1e300;
  const double log2 = std::log(2.0);
  const double tol = 4 * Ulp<T>();
  fastloss::CategoricalCrossEntropyOptions cce;
  cce.from_logits = true;
  fastloss::SparseCategoricalCrossEntropyOptions sp;
  sp.from_logits = true;
  for (double v : {1e8, -1e8, big, -big}) {
    SCOPED_TRACE("logits " + std::to_string(v));
    const std::vector<double> x = {v, v};
    auto fc = [&](const Call<T>& c) { return fastloss::CategoricalCrossEntropy(c, cce); };
    const Out d = DenseRun<T>(fc, {1.0, 0.0}, x, {1, 2}, Reduction::kMean);
    EXPECT_NEAR(d.value, log2, tol);
    EXPECT_NEAR(d.grad[0], -0.5, tol);
    EXPECT_NEAR(d.grad[1], 0.5, tol);
    auto fs = [&](const LabelCall<T>& c) { return fastloss::SparseCategoricalCrossEntropy(c, sp); };
    for (int64_t t : {0, 1}) {
      const Out s = LabelRun<T>(fs, {t}, x, {1, 2}, Reduction::kNone);
      EXPECT_EQ(s.value, 0.0);
      EXPECT_NEAR(s.losses[0], log2, tol);
      EXPECT_NEAR(s.grad[static_cast<size_t>(t)], -0.5, tol);
      EXPECT_NEAR(s.grad[static_cast<size_t>(1 - t)], 0.5, tol);
    }
  }
  // Three classes, two at 1e8 and one far below: log 2 and (-1/2, 1/2, 0).
  auto fs = [&](const LabelCall<T>& c) { return fastloss::SparseCategoricalCrossEntropy(c, sp); };
  const Out s = LabelRun<T>(fs, {0}, {1e8, 1e8, -1e8}, {1, 3}, Reduction::kSum);
  EXPECT_NEAR(s.value, log2, tol);
  EXPECT_NEAR(s.grad[0], -0.5, tol);
  EXPECT_NEAR(s.grad[1], 0.5, tol);
  EXPECT_EQ(s.grad[2], 0.0);
}

TEST_P(ClassificationEdges, EqualHugeLogitsGiveLog2) {
  CheckEqualHugeLogits<float>();
  CheckEqualHugeLogits<double>();
}

// A row whose logits are all -inf: NaN loss and an all-zero gradient; the
// other rows are unaffected (the masked row still counts in the mean's
// denominator: it is not ignored).
template <typename T>
void CheckFullyMaskedRow() {
  SCOPED_TRACE(DtypeName<T>());
  const double tol = 8 * Ulp<T>();
  const std::vector<double> x = {-kInf, -kInf, -kInf, 0.5, -1.0, 2.0};
  const std::vector<double> row1 = {0.5, -1.0, 2.0};
  const std::vector<double> g1 = SoftmaxMinusOneHot(row1, 2);
  const double l1 = -std::log(std::exp(2.0) / (std::exp(0.5) + std::exp(-1.0) + std::exp(2.0)));
  fastloss::SparseCategoricalCrossEntropyOptions sp;
  sp.from_logits = true;
  fastloss::CategoricalCrossEntropyOptions cce;
  cce.from_logits = true;
  auto fs = [&](const LabelCall<T>& c) { return fastloss::SparseCategoricalCrossEntropy(c, sp); };
  auto fc = [&](const Call<T>& c) { return fastloss::CategoricalCrossEntropy(c, cce); };
  for (Reduction r : {Reduction::kNone, Reduction::kSum, Reduction::kMean}) {
    SCOPED_TRACE(ReductionName(r));
    const double scale = r == Reduction::kMean ? 0.5 : 1.0;
    for (int dense = 0; dense < 2; ++dense) {
      SCOPED_TRACE(dense ? "categorical_cross_entropy" : "sparse_categorical_cross_entropy");
      const Out o = dense ? DenseRun<T>(fc, {0, 1, 0, 0, 0, 1}, x, {2, 3}, r)
                          : LabelRun<T>(fs, {1, 2}, x, {2, 3}, r);
      if (r == Reduction::kNone) {
        EXPECT_TRUE(std::isnan(o.losses[0])) << o.losses[0];
        EXPECT_NEAR(o.losses[1], l1, tol * 4);
      } else {
        EXPECT_TRUE(std::isnan(o.value)) << o.value;
      }
      for (size_t j = 0; j < 3; ++j) {
        EXPECT_EQ(o.grad[j], 0.0) << "masked row grad[" << j << "]";
        EXPECT_NEAR(o.grad[3 + j], g1[j] * scale, tol) << "grad[" << 3 + j << "]";
      }
    }
  }
}

TEST_P(ClassificationEdges, FullyMaskedRowIsNaNWithZeroGradient) {
  CheckFullyMaskedRow<float>();
  CheckFullyMaskedRow<double>();
}

// A masked class (-inf logit): q = 0 there. Target elsewhere: finite loss
// and gradient (0 at the masked class); target on it: +inf loss and the
// finite gradient q - y'.
template <typename T>
void CheckMaskedClass() {
  SCOPED_TRACE(DtypeName<T>());
  const double tol = 8 * Ulp<T>();
  const std::vector<double> x = {0.0, -kInf, 1.0};
  const double q0 = 1.0 / (1.0 + std::exp(1.0)), q2 = 1.0 - q0;
  fastloss::SparseCategoricalCrossEntropyOptions sp;
  sp.from_logits = true;
  fastloss::CategoricalCrossEntropyOptions cce;
  cce.from_logits = true;
  auto fs = [&](const LabelCall<T>& c) { return fastloss::SparseCategoricalCrossEntropy(c, sp); };
  auto fc = [&](const Call<T>& c) { return fastloss::CategoricalCrossEntropy(c, cce); };
  for (int dense = 0; dense < 2; ++dense) {
    SCOPED_TRACE(dense ? "categorical_cross_entropy" : "sparse_categorical_cross_entropy");
    Out o = dense ? DenseRun<T>(fc, {1, 0, 0}, x, {1, 3}, Reduction::kMean)
                  : LabelRun<T>(fs, {0}, x, {1, 3}, Reduction::kMean);
    EXPECT_NEAR(o.value, -std::log(q0), tol * 4);
    EXPECT_NEAR(o.grad[0], q0 - 1.0, tol);
    EXPECT_EQ(o.grad[1], 0.0);
    EXPECT_NEAR(o.grad[2], q2, tol);
    o = dense ? DenseRun<T>(fc, {0, 1, 0}, x, {1, 3}, Reduction::kMean)
              : LabelRun<T>(fs, {1}, x, {1, 3}, Reduction::kMean);
    EXPECT_EQ(o.value, kInf);
    EXPECT_NEAR(o.grad[0], q0, tol);
    EXPECT_EQ(o.grad[1], -1.0);
    EXPECT_NEAR(o.grad[2], q2, tol);
  }
  // Soft targets avoiding the masked class: finite.
  const Out o = DenseRun<T>(fc, {0.5, 0, 0.5}, x, {1, 3}, Reduction::kMean);
  EXPECT_NEAR(o.value, -0.5 * std::log(q0) - 0.5 * std::log(q2), tol * 4);
  EXPECT_EQ(o.grad[1], 0.0);
  EXPECT_NEAR(o.grad[0], q0 - 0.5, tol);
}

TEST_P(ClassificationEdges, MaskedClass) {
  CheckMaskedClass<float>();
  CheckMaskedClass<double>();
}

// Ignored rows contribute nothing, even with NaN / -inf logits; every row
// ignored: the mean is NaN with a zero gradient, the sum 0.
template <typename T>
void CheckIgnoredRows() {
  SCOPED_TRACE(DtypeName<T>());
  const double tol = 8 * Ulp<T>();
  const std::vector<double> x = {kNaN, kNaN, kNaN, -kInf, -kInf, -kInf, 0.5, 1.0, -2.0};
  const std::vector<double> row2 = {0.5, 1.0, -2.0};
  const std::vector<double> g2 = SoftmaxMinusOneHot(row2, 0);
  const double l2 = -std::log(std::exp(0.5) / (std::exp(0.5) + std::exp(1.0) + std::exp(-2.0)));
  const std::vector<double> cw = {3.0, 0.5, 2.0};
  fastloss::SparseCategoricalCrossEntropyOptions sp;
  sp.from_logits = true;
  sp.ignore_index = -100;
  auto fs = [&](const LabelCall<T>& c) { return fastloss::SparseCategoricalCrossEntropy(c, sp); };
  const std::vector<int64_t> labels = {-100, -100, 0};
  for (bool with_cw : {false, true}) {
    SCOPED_TRACE(with_cw ? "class weights" : "no class weights");
    const double wt = with_cw ? cw[0] : 1.0;
    const std::vector<double> cwv = with_cw ? cw : std::vector<double>{};
    // Mean: D = w_t of the one counted row, so the mean is its plain loss.
    Out o = LabelRun<T>(fs, labels, x, {3, 3}, Reduction::kMean, cwv);
    EXPECT_NEAR(o.value, l2, tol * 4);
    for (size_t j = 0; j < 6; ++j) EXPECT_EQ(o.grad[j], 0.0) << "ignored grad[" << j << "]";
    for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(o.grad[6 + j], g2[j], tol);
    o = LabelRun<T>(fs, labels, x, {3, 3}, Reduction::kSum, cwv);
    EXPECT_NEAR(o.value, wt * l2, tol * 4 * wt);
    for (size_t j = 0; j < 3; ++j) EXPECT_NEAR(o.grad[6 + j], wt * g2[j], tol * wt);
    o = LabelRun<T>(fs, labels, x, {3, 3}, Reduction::kNone, cwv);
    EXPECT_EQ(o.losses[0], 0.0);
    EXPECT_EQ(o.losses[1], 0.0);
    EXPECT_NEAR(o.losses[2], wt * l2, tol * 4 * wt);
  }
  // Every row ignored.
  const std::vector<int64_t> none = {-100, -100, -100};
  Out o = LabelRun<T>(fs, none, x, {3, 3}, Reduction::kMean);
  EXPECT_TRUE(std::isnan(o.value)) << o.value;
  for (double g : o.grad) EXPECT_EQ(g, 0.0);
  o = LabelRun<T>(fs, none, x, {3, 3}, Reduction::kSum);
  EXPECT_EQ(o.value, 0.0);
  for (double g : o.grad) EXPECT_EQ(g, 0.0);
  fastloss::NllOptions nl;
  nl.ignore_index = -100;
  auto fn = [&](const LabelCall<T>& c) { return fastloss::Nll(c, nl); };
  o = LabelRun<T>(fn, none, x, {3, 3}, Reduction::kMean);
  EXPECT_TRUE(std::isnan(o.value)) << o.value;
  for (double g : o.grad) EXPECT_EQ(g, 0.0);
  // No rows at all: mean NaN, sum 0.
  o = LabelRun<T>(fs, {}, {}, {0, 3}, Reduction::kMean);
  EXPECT_TRUE(std::isnan(o.value)) << o.value;
  o = LabelRun<T>(fs, {}, {}, {0, 3}, Reduction::kSum);
  EXPECT_EQ(o.value, 0.0);
}

TEST_P(ClassificationEdges, IgnoredRows) {
  CheckIgnoredRows<float>();
  CheckIgnoredRows<double>();
}

// BCE from logits is never NaN for finite y and x = +-inf; a term with a
// zero coefficient is 0.
template <typename T>
void CheckBceInfiniteLogits() {
  SCOPED_TRACE(DtypeName<T>());
  const double tol = 8 * Ulp<T>();
  fastloss::BinaryCrossEntropyOptions o;
  o.from_logits = true;
  o.pos_weight = 2.0;
  auto f = [&](const Call<T>& c) { return fastloss::BinaryCrossEntropy(c, o); };
  const std::vector<double> y = {1, 1, 0, 0, 0.25, 0.25};
  const std::vector<double> x = {kInf, -kInf, kInf, -kInf, kInf, -kInf};
  const std::vector<double> l = {0, kInf, kInf, 0, kInf, kInf};
  const std::vector<double> g = {0, -2.0, 1.0, 0, 0.75, -0.5};
  const Out r = BinaryRun<T>(f, y, x, Reduction::kNone);
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_EQ(r.losses[i], l[i]) << "y=" << y[i] << " x=" << x[i];
    EXPECT_NEAR(r.grad[i], g[i], tol) << "y=" << y[i] << " x=" << x[i];
  }
}

TEST_P(ClassificationEdges, BceInfiniteLogitsAreNeverNaN) {
  CheckBceInfiniteLogits<float>();
  CheckBceInfiniteLogits<double>();
}

// NaN y_true is not an error for the binary losses: NaN out at that element.
template <typename T>
void CheckNaNTarget() {
  SCOPED_TRACE(DtypeName<T>());
  for (bool logits : {true, false}) {
    fastloss::BinaryCrossEntropyOptions b;
    b.from_logits = logits;
    fastloss::BinaryFocalOptions fo;
    fo.from_logits = logits;
    auto fb = [&](const Call<T>& c) { return fastloss::BinaryCrossEntropy(c, b); };
    auto ff = [&](const Call<T>& c) { return fastloss::BinaryFocal(c, fo); };
    for (int which = 0; which < 2; ++which) {
      SCOPED_TRACE(std::string(which ? "binary_focal" : "bce") + (logits ? " logits" : " probs"));
      Out r;
      const std::vector<double> y = {kNaN, 0.5}, x = {0.3, 0.3};
      EXPECT_NO_THROW(r = which ? BinaryRun<T>(ff, y, x, Reduction::kNone)
                                : BinaryRun<T>(fb, y, x, Reduction::kNone));
      EXPECT_TRUE(std::isnan(r.losses[0]));
      EXPECT_TRUE(std::isnan(r.grad[0]));
      EXPECT_TRUE(std::isfinite(r.losses[1]));
      EXPECT_TRUE(std::isfinite(r.grad[1]));
      EXPECT_NO_THROW(r = which ? BinaryRun<T>(ff, y, x, Reduction::kMean)
                                : BinaryRun<T>(fb, y, x, Reduction::kMean));
      EXPECT_TRUE(std::isnan(r.value));
    }
  }
}

TEST_P(ClassificationEdges, NaNTargetPropagates) {
  CheckNaNTarget<float>();
  CheckNaNTarget<double>();
}

// KL: a positive target against p = 0 (log p = -inf) is +inf; a negative
// target gives NaN, not an error.
template <typename T>
void CheckKlEdges() {
  SCOPED_TRACE(DtypeName<T>());
  auto f = [](const Call<T>& c) { return fastloss::KlDivergence(c); };
  Out o = DenseRun<T>(f, {0.5, 0.5}, {0.0, 1.0}, {1, 2}, Reduction::kSum);
  EXPECT_EQ(o.value, kInf);
  fastloss::KlDivergenceOptions li;
  li.log_input = true;
  auto fl = [&](const Call<T>& c) { return fastloss::KlDivergence(c, li); };
  o = DenseRun<T>(fl, {0.5, 0.5}, {-kInf, 0.0}, {1, 2}, Reduction::kSum);
  EXPECT_EQ(o.value, kInf);
  EXPECT_EQ(o.grad[0], -0.5);
  EXPECT_NO_THROW(o = DenseRun<T>(f, {-0.5, 0.5}, {0.5, 0.5}, {1, 2}, Reduction::kSum));
  EXPECT_TRUE(std::isnan(o.value)) << o.value;
  // A zero target contributes 0 with gradient 0, also against p = 0.
  o = DenseRun<T>(f, {0.0, 1.0}, {0.0, 0.5}, {1, 2}, Reduction::kSum);
  EXPECT_NEAR(o.value, -std::log(0.5), 4 * Ulp<T>());
  EXPECT_EQ(o.grad[0], 0.0);
  EXPECT_NEAR(o.grad[1], -2.0, 4 * Ulp<T>());
}

TEST_P(ClassificationEdges, KlDivergenceEdges) {
  CheckKlEdges<float>();
  CheckKlEdges<double>();
}

// Hinge: a label 0 is -1. Categorical hinge: k is the first class attaining
// neg on a tie.
template <typename T>
void CheckHingeLabels() {
  SCOPED_TRACE(DtypeName<T>());
  auto h = [](const Call<T>& c) { return fastloss::Hinge(c); };
  auto sh = [](const Call<T>& c) { return fastloss::SquaredHinge(c); };
  Out o = BinaryRun<T>(h, {0, -1, 1, 1}, {0.5, 0.5, 0.5, 1.0}, Reduction::kNone);
  EXPECT_EQ(o.losses, (std::vector<double>{1.5, 1.5, 0.5, 0.0}));
  EXPECT_EQ(o.grad, (std::vector<double>{1.0, 1.0, -1.0, 0.0}));
  o = BinaryRun<T>(sh, {0, -1, 1, 1}, {0.5, 0.5, 0.5, 1.0}, Reduction::kNone);
  EXPECT_EQ(o.losses, (std::vector<double>{2.25, 2.25, 0.25, 0.0}));
  EXPECT_EQ(o.grad, (std::vector<double>{3.0, 3.0, -1.0, 0.0}));
  auto ch = [](const Call<T>& c) { return fastloss::CategoricalHinge(c); };
  o = DenseRun<T>(ch, {0, 0, 1}, {2, 2, 0}, {1, 3}, Reduction::kSum);
  EXPECT_EQ(o.value, 3.0);
  EXPECT_EQ(o.grad, (std::vector<double>{1.0, 0.0, -1.0}));
  // Margin met: zero loss and gradient.
  o = DenseRun<T>(ch, {0, 0, 1}, {0.25, -1, 2}, {1, 3}, Reduction::kSum);
  EXPECT_EQ(o.value, 0.0);
  EXPECT_EQ(o.grad, (std::vector<double>{0.0, 0.0, 0.0}));
}

TEST_P(ClassificationEdges, HingeLabels) {
  CheckHingeLabels<float>();
  CheckHingeLabels<double>();
}

INSTANTIATE_TEST_SUITE_P(Available, ClassificationEdges, ::testing::ValuesIn(Targets()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return SafeName(info.param);
                         });

// ============================================================================
// D. Errors: thrown before any output is written.
// ============================================================================

// A label out of [0, C) (and not ignore_index) is an Error naming y_true and
// the first bad position, from value, gradient and both, and nothing is
// written.
TEST(ClassificationErrors, LabelOutOfRangeThrowsBeforeWriting) {
  // y_pred (2, 3, 3) with the class axis in the middle: labels (2, 3).
  const std::vector<int64_t> shape = {2, 3, 3}, rshape = {2, 3};
  std::vector<float> x(18);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1f * static_cast<float>(i);
  const std::vector<std::vector<int64_t>> bad_sets = {
      {0, 1, 2, 3, 0, 7},     // 3 == C at (1, 0)
      {0, 1, 2, -1, 0, 0},    // -1 without ignore_index at (1, 0)
      {0, 1, 2, -100, 1, 1},  // -100 without ignore_index
  };
  for (const auto& labels : bad_sets) {
    for (int loss = 0; loss < 3; ++loss) {
      for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
        for (int mode = 0; mode < 3; ++mode) {  // value / grad / both
          if (r == Reduction::kNone && mode == 0) continue;
          SCOPED_TRACE("loss " + std::to_string(loss) + " labels[3]=" + std::to_string(labels[3]) +
                       " " + ReductionName(r) + " mode " + std::to_string(mode));
          StridedArray<float> grad(shape, ContiguousStrides(shape)), losses(rshape, {3, 1});
          LabelCall<float> call;
          call.labels = CView(labels, rshape);
          call.y_pred = CView(x, shape);
          call.reduction = r;
          call.grad = grad.view();
          if (!(mode != 0)) call.grad.reset();
          call.losses = losses.view();
          if (!(r == Reduction::kNone && mode != 1)) call.losses.reset();
          if (r == Reduction::kNone && !call.losses.has_value() && !call.grad.has_value()) continue;
          const auto fn = [&] {
            switch (loss) {
              case 0: {
                fastloss::SparseCategoricalCrossEntropyOptions o;
                o.axis = 1;
                o.from_logits = true;
                fastloss::SparseCategoricalCrossEntropy(call, o);
                break;
              }
              case 1: {
                fastloss::NllOptions o;
                o.axis = 1;
                fastloss::Nll(call, o);
                break;
              }
              default: {
                fastloss::MultiMarginOptions o;
                o.axis = 1;
                fastloss::MultiMargin(call, o);
                break;
              }
            }
          };
          const ::testing::AssertionResult thrown = ThrowsErrorMentioning(fn, {"y_true"});
          EXPECT_TRUE(thrown);
          if (thrown) {
            EXPECT_NE(std::string(thrown.message()).find("(1, 0)"), std::string::npos)
                << "the message does not name the first bad position (1, 0): "
                << thrown.message();
          }
          EXPECT_TRUE(grad.Untouched());
          EXPECT_TRUE(losses.Untouched());
        }
      }
    }
  }
  // With ignore_index = -100 another negative label is still an error; the
  // ignored label itself is not.
  const std::vector<int64_t> labels = {0, -100, -5, 1, 1, 1};
  StridedArray<double> grad(std::vector<int64_t>{6, 3}, std::vector<int64_t>{3, 1});
  std::vector<double> xd(18, 0.5);
  LabelCall<double> call;
  call.labels = CView(labels, {6});
  call.y_pred = CView(xd, {6, 3});
  call.grad = grad.view();
  fastloss::SparseCategoricalCrossEntropyOptions o;
  o.ignore_index = -100;
  o.from_logits = true;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::SparseCategoricalCrossEntropy(call, o); },
                                    {"y_true"}));
  EXPECT_TRUE(grad.Untouched());
  fastloss::NllOptions no;
  no.ignore_index = -100;
  EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::Nll(call, no); }, {"y_true"}));
  EXPECT_TRUE(grad.Untouched());
}

// y_true outside [0, 1] for bce, binary_focal (both modes, both overloads),
// categorical cross-entropy and focal: an Error naming y_true, nothing written.
TEST(ClassificationErrors, TargetsOutsideUnitIntervalThrow) {
  for (double bad : {1.5, -0.25, 1.0000001, kInf}) {
    SCOPED_TRACE("bad target " + std::to_string(bad));
    const std::vector<double> y = {0.5, 0.0, bad, 1.0, 0.25, 0.75};
    const std::vector<double> x = {0.2, 0.3, 0.4, 0.5, 0.6, 0.7};
    const std::vector<double> pw = {1.0, 2.0, 3.0};
    for (bool logits : {true, false}) {
      StridedArray<double> grad(std::vector<int64_t>{2, 3}, std::vector<int64_t>{3, 1});
      StridedArray<double> losses(std::vector<int64_t>{2, 3}, std::vector<int64_t>{3, 1});
      StridedArray<double> row_losses(2);
      Call<double> call;
      call.y_true = CView(y, {2, 3});
      call.y_pred = CView(x, {2, 3});
      call.grad = grad.view();
      fastloss::BinaryCrossEntropyOptions b;
      b.from_logits = logits;
      fastloss::BinaryFocalOptions f;
      f.from_logits = logits;
      fastloss::CategoricalCrossEntropyOptions cc;
      cc.from_logits = logits;
      fastloss::CategoricalFocalOptions cf;
      cf.from_logits = logits;
      const View<const double> pwv = CView(pw, {3});
      for (Reduction r : {Reduction::kMean, Reduction::kNone}) {
        call.reduction = r;
        call.losses = losses.view();
        if (!(r == Reduction::kNone)) call.losses.reset();
        EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BinaryCrossEntropy(call, b); }, {"y_true"}));
        EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BinaryCrossEntropy(call, pwv, b); },
                                          {"y_true"}));
        EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BinaryFocal(call, f); }, {"y_true"}));
        // The row losses: losses of the rows' shape (2,).
        Call<double> rows = call;
        rows.losses = row_losses.view();
        EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalCrossEntropy(rows, cc); },
                                          {"y_true"}));
        EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalFocal(rows, cf); },
                                          {"y_true"}));
        EXPECT_TRUE(grad.Untouched());
        EXPECT_TRUE(losses.Untouched());
        EXPECT_TRUE(row_losses.Untouched());
      }
      // Value only.
      call.reduction = Reduction::kSum;
      call.grad.reset();
      call.losses.reset();
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::BinaryCrossEntropy(call, b); }, {"y_true"}));
      EXPECT_TRUE(ThrowsErrorMentioning([&] { fastloss::CategoricalCrossEntropy(call, cc); },
                                        {"y_true"}));
    }
  }
}

// Every row loss on y_pred without classes (C == 0), or without
// dimensions, or with an axis out of range.
TEST(ClassificationErrors, BadClassAxisThrows) {
  std::vector<double> buf(12, 0.5);
  std::vector<int64_t> lab(12, 0);
  struct Case {
    std::vector<int64_t> shape;
    int axis;
    const char* word;  // the message must name it (nullptr: any Error)
  };
  const std::vector<Case> cases = {
      {{2, 0}, -1, nullptr}, {{0, 3}, 0, nullptr}, {{4, 0, 3}, 1, nullptr}, {{}, -1, nullptr},
      {{2, 3}, 2, "axis"},   {{2, 3}, -3, "axis"}, {{3}, 1, "axis"},        {{3}, -2, "axis"},
  };
  for (const Case& k : cases) {
    std::string sh;
    for (int64_t s : k.shape) sh += std::to_string(s) + ",";
    SCOPED_TRACE("shape (" + sh + ") axis " + std::to_string(k.axis));
    const int rank = static_cast<int>(k.shape.size());
    const int ax = k.axis < 0 ? k.axis + rank : k.axis;
    std::vector<int64_t> rshape;
    for (int d = 0; d < rank; ++d) {
      if (d != ax) rshape.push_back(k.shape[static_cast<size_t>(d)]);
    }
    if (ax < 0 || ax >= rank) rshape.assign(k.shape.begin(), k.shape.end() - (rank ? 1 : 0));
    std::vector<double> g(12, -1.0);
    Call<double> call;
    call.y_true = CView(buf, k.shape);
    call.y_pred = CView(buf, k.shape);
    call.grad = MakeView<double>(g.data(), k.shape, ContiguousStrides(k.shape));
    LabelCall<double> lc;
    lc.labels = CView(lab, rshape);
    lc.y_pred = CView(buf, k.shape);
    lc.grad = call.grad;
    std::vector<std::function<void()>> fns;
    fastloss::CategoricalCrossEntropyOptions o1;
    o1.axis = k.axis;
    o1.from_logits = true;
    fns.push_back([&] { fastloss::CategoricalCrossEntropy(call, o1); });
    fastloss::CategoricalCrossEntropyOptions o1p;
    o1p.axis = k.axis;
    fns.push_back([&] { fastloss::CategoricalCrossEntropy(call, o1p); });
    fastloss::CategoricalFocalOptions o2;
    o2.axis = k.axis;
    fns.push_back([&] { fastloss::CategoricalFocal(call, o2); });
    fastloss::CategoricalHingeOptions o3;
    o3.axis = k.axis;
    fns.push_back([&] { fastloss::CategoricalHinge(call, o3); });
    fastloss::KlDivergenceOptions o4;
    o4.axis = k.axis;
    fns.push_back([&] { fastloss::KlDivergence(call, o4); });
    fastloss::JensenShannonOptions o5;
    o5.axis = k.axis;
    fns.push_back([&] { fastloss::JensenShannon(call, o5); });
    fastloss::SparseCategoricalCrossEntropyOptions o6;
    o6.axis = k.axis;
    o6.from_logits = true;
    fns.push_back([&] { fastloss::SparseCategoricalCrossEntropy(lc, o6); });
    fastloss::NllOptions o7;
    o7.axis = k.axis;
    fns.push_back([&] { fastloss::Nll(lc, o7); });
    fastloss::MultiMarginOptions o8;
    o8.axis = k.axis;
    fns.push_back([&] { fastloss::MultiMargin(lc, o8); });
    for (size_t i = 0; i < fns.size(); ++i) {
      SCOPED_TRACE("loss #" + std::to_string(i));
      if (k.word) {
        EXPECT_TRUE(ThrowsErrorMentioning(fns[i], {k.word}));
      } else {
        EXPECT_TRUE(ThrowsErrorMentioning(fns[i], {}));
      }
      for (double v : g) EXPECT_EQ(v, -1.0) << "the gradient was written";
    }
  }
}

// Options outside their ranges: an Error naming the option.
TEST(ClassificationErrors, BadOptionsThrow) {
  const std::vector<double> y = {0, 1, 0, 0, 0, 1}, x = {0.2, 0.5, 0.3, 0.1, 0.1, 0.8};
  const std::vector<int64_t> labels = {1, 2};
  Call<double> call;
  call.y_true = CView(y, {2, 3});
  call.y_pred = CView(x, {2, 3});
  LabelCall<double> lc;
  lc.labels = CView(labels, {2});
  lc.y_pred = call.y_pred;
  auto expect = [](const char* word, const std::function<void()>& f) {
    EXPECT_TRUE(ThrowsErrorMentioning(f, {word})) << word;
  };
  for (double eps : {0.0, 0.5, -1e-7, 0.7}) {
    SCOPED_TRACE("eps " + std::to_string(eps));
    fastloss::BinaryCrossEntropyOptions b;
    b.eps = eps;
    expect("eps", [&] { fastloss::BinaryCrossEntropy(call, b); });
    fastloss::BinaryFocalOptions bf;
    bf.eps = eps;
    expect("eps", [&] { fastloss::BinaryFocal(call, bf); });
    fastloss::CategoricalCrossEntropyOptions c;
    c.eps = eps;
    expect("eps", [&] { fastloss::CategoricalCrossEntropy(call, c); });
    fastloss::CategoricalFocalOptions cf;
    cf.eps = eps;
    expect("eps", [&] { fastloss::CategoricalFocal(call, cf); });
    fastloss::SparseCategoricalCrossEntropyOptions s;
    s.eps = eps;
    expect("eps", [&] { fastloss::SparseCategoricalCrossEntropy(lc, s); });
  }
  for (double ls : {1.0, -0.1, 1.5}) {
    SCOPED_TRACE("label_smoothing " + std::to_string(ls));
    fastloss::BinaryCrossEntropyOptions b;
    b.label_smoothing = ls;
    expect("label_smoothing", [&] { fastloss::BinaryCrossEntropy(call, b); });
    fastloss::BinaryFocalOptions bf;
    bf.label_smoothing = ls;
    expect("label_smoothing", [&] { fastloss::BinaryFocal(call, bf); });
    fastloss::CategoricalCrossEntropyOptions c;
    c.label_smoothing = ls;
    expect("label_smoothing", [&] { fastloss::CategoricalCrossEntropy(call, c); });
    fastloss::CategoricalFocalOptions cf;
    cf.label_smoothing = ls;
    expect("label_smoothing", [&] { fastloss::CategoricalFocal(call, cf); });
    fastloss::SparseCategoricalCrossEntropyOptions s;
    s.label_smoothing = ls;
    s.from_logits = true;
    expect("label_smoothing", [&] { fastloss::SparseCategoricalCrossEntropy(lc, s); });
  }
  {
    fastloss::BinaryFocalOptions bf;
    bf.gamma = -0.5;
    expect("gamma", [&] { fastloss::BinaryFocal(call, bf); });
    fastloss::CategoricalFocalOptions cf;
    cf.gamma = -1.0;
    expect("gamma", [&] { fastloss::CategoricalFocal(call, cf); });
  }
  for (double beta : {-0.1, 1.5}) {
    fastloss::JensenShannonOptions j;
    j.beta = beta;
    expect("beta", [&] { fastloss::JensenShannon(call, j); });
  }
  for (int p : {0, 3, -1}) {
    fastloss::MultiMarginOptions m;
    m.p = p;
    expect("p", [&] { fastloss::MultiMargin(lc, m); });
  }
  for (double margin : {kInf, -kInf, kNaN}) {
    fastloss::MultiMarginOptions m;
    m.margin = margin;
    expect("margin", [&] { fastloss::MultiMargin(lc, m); });
  }
  // class_weights not 1-D of length C.
  const std::vector<double> cw = {1, 2, 3, 4};
  for (const std::vector<int64_t>& cws : {std::vector<int64_t>{4}, std::vector<int64_t>{2},
                                          std::vector<int64_t>{1, 3}}) {
    LabelCall<double> l2 = lc;
    l2.class_weights = CView(cw, cws);
    fastloss::SparseCategoricalCrossEntropyOptions s;
    s.from_logits = true;
    expect("class_weights", [&] { fastloss::SparseCategoricalCrossEntropy(l2, s); });
    expect("class_weights", [&] { fastloss::Nll(l2); });
    expect("class_weights", [&] { fastloss::MultiMargin(l2); });
  }
  // labels not of the rows' shape.
  {
    const std::vector<int64_t> three = {0, 1, 2};
    LabelCall<double> l3 = lc;
    l3.labels = CView(three, {3});
    EXPECT_THROW(fastloss::Nll(l3), fastloss::Error);
    EXPECT_THROW(fastloss::SparseCategoricalCrossEntropy(l3), fastloss::Error);
  }
}

// ============================================================================
// E. Determinism: bit-identical results for any thread count.
// ============================================================================

template <typename T>
void CheckThreadDeterminism() {
  SCOPED_TRACE(DtypeName<T>());
  const int64_t N = 2000, C = 300;
  Rng rng(42);
  std::vector<T> x(static_cast<size_t>(N * C)), w(static_cast<size_t>(N)), cw(static_cast<size_t>(C));
  std::vector<T> y(x.size(), T(0));
  std::vector<int64_t> labels(static_cast<size_t>(N));
  for (T& v : x) v = static_cast<T>(3.0 * rng.N());
  for (T& v : w) v = static_cast<T>(rng.U(0, 2));
  for (T& v : cw) v = static_cast<T>(rng.U(0.25, 2));
  for (size_t r = 0; r < labels.size(); ++r) {
    labels[r] = rng.P(0.1) ? -100 : rng.I(0, C);
    y[r * static_cast<size_t>(C) + static_cast<size_t>(rng.I(0, C))] = T(1);
  }
  struct Result {
    double value;
    std::vector<T> grad, losses;
  };
  auto run = [&](int threads, int which, Reduction r) {
    fastloss::SetNumThreads(threads);
    EXPECT_EQ(fastloss::GetNumThreads(), threads);
    Result res;
    res.grad.assign(x.size(), T(0));
    res.losses.assign(static_cast<size_t>(N), T(0));
    const View<T> gv = View<T>::Contiguous(res.grad.data(), {N, C});
    const View<T> lv = View<T>::Contiguous(res.losses.data(), {N});
    if (which == 0) {
      LabelCall<T> call;
      call.labels = CView(labels, {N});
      call.y_pred = CView(x, {N, C});
      call.weights = CView(w, {N});
      call.class_weights = CView(cw, {C});
      call.reduction = r;
      call.grad = gv;
      call.losses = lv;
      if (!(r == Reduction::kNone)) call.losses.reset();
      fastloss::SparseCategoricalCrossEntropyOptions o;
      o.from_logits = true;
      o.ignore_index = -100;
      o.label_smoothing = 0.1;
      res.value = fastloss::SparseCategoricalCrossEntropy(call, o);
    } else {
      Call<T> call;
      call.y_true = CView(y, {N, C});
      call.y_pred = CView(x, {N, C});
      call.weights = CView(w, {N});
      call.reduction = r;
      call.grad = gv;
      call.losses = lv;
      if (!(r == Reduction::kNone)) call.losses.reset();
      if (which == 1) {
        fastloss::CategoricalCrossEntropyOptions o;
        o.from_logits = true;
        res.value = fastloss::CategoricalCrossEntropy(call, o);
      } else {
        fastloss::CategoricalFocalOptions o;
        o.from_logits = true;
        res.value = fastloss::CategoricalFocal(call, o);
      }
    }
    return res;
  };
  for (int which = 0; which < 3; ++which) {
    for (Reduction r : {Reduction::kMean, Reduction::kSum, Reduction::kNone}) {
      SCOPED_TRACE(std::string(which == 0 ? "sparse_cce" : which == 1 ? "cce" : "cat_focal") +
                   " " + ReductionName(r));
      const Result one = run(1, which, r);
      const Result four = run(4, which, r);
      EXPECT_TRUE(SameBits(one.value, four.value)) << one.value << " vs " << four.value;
      EXPECT_TRUE(std::isfinite(one.value));
      EXPECT_EQ(std::memcmp(one.grad.data(), four.grad.data(), one.grad.size() * sizeof(T)), 0)
          << "the gradient differs between 1 and 4 threads";
      EXPECT_EQ(std::memcmp(one.losses.data(), four.losses.data(), one.losses.size() * sizeof(T)), 0)
          << "the losses differ between 1 and 4 threads";
    }
  }
}

TEST(ClassificationThreads, BitIdenticalForAnyThreadCount) {
  const int saved = fastloss::GetNumThreads();
  CheckThreadDeterminism<float>();
  CheckThreadDeterminism<double>();
  fastloss::SetNumThreads(saved);
}

}  // namespace
}  // namespace fastloss_test
