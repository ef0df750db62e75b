// The metric-learning losses (cosine similarity, cosine embedding, triplet
// margin, contrastive on distances, contrastive pairs, margin ranking): the
// double references written from notes/STRUCTURED_SPEC.md and the sweeps that
// check the library against them. Used by metric_test.cc and structured_test.cc
// (finite differences, large groups, SIMD targets).
#ifndef FASTLOSS_TESTS_CPP_METRIC_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_METRIC_REFERENCE_H_

#include "structured_helpers.h"

namespace fastloss_test {

// ============================================================================
// Metric learning.
// ============================================================================

// --- cosine_similarity ---
inline Ref RefCosineSim(int axis, double eps, const std::vector<double>& y,
                        const std::vector<double>& p, const std::vector<int64_t>& shape) {
  const int rank = static_cast<int>(shape.size());
  std::vector<bool> red(static_cast<size_t>(rank), false);
  red[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = true;
  Ref ref;
  ref.gof = GroupOf(shape, red, &ref.lshape);
  const size_t ng = static_cast<size_t>(Prod(ref.lshape)), n = y.size();
  std::vector<double> dot(ng, 0.0), yy(ng, 0.0), pp(ng, 0.0), c0(ng), c1(ng);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    dot[g] += y[i] * p[i];
    yy[g] += y[i] * y[i];
    pp[g] += p[i] * p[i];
  }
  ref.l.resize(ng);
  ref.ml.assign(ng, 2.0);
  for (size_t g = 0; g < ng; ++g) {
    const double ny = std::sqrt(yy[g]), np = std::sqrt(pp[g]);
    const double nyc = std::max(ny, eps), npc = std::max(np, eps);
    const double cos = dot[g] / (nyc * npc);
    ref.l[g] = 1.0 - std::min(1.0, std::max(-1.0, cos));
    c0[g] = -1.0 / (nyc * npc);
    c1[g] = np >= eps ? cos / (np * np) : 0.0;
  }
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    ref.dl[0][i] = c0[g] * y[i] + c1[g] * p[i];
    ref.mdl[0][i] = std::fabs(c0[g] * y[i]) + std::fabs(c1[g] * p[i]);
  }
  return ref;
}

template <typename T>
void CosineSimCase(int axis, double eps, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("cosine_similarity axis " + std::to_string(axis) + " eps " + std::to_string(eps) +
               " " + ShapeStr(shape) + " " + DtypeName<T>());
  const int64_t n = Prod(shape);
  Rng rng(o.seed * 13u + static_cast<uint64_t>(axis + 5));
  std::vector<double> y(static_cast<size_t>(n)), p(static_cast<size_t>(n));
  for (size_t i = 0; i < y.size(); ++i) {
    y[i] = rng.N();
    p[i] = rng.N();
  }
  // Special rows: y zero, p zero, both zero, p = 2 y (cos 1), p = -y, tiny p.
  std::vector<int64_t> lshape;
  const int rank = static_cast<int>(shape.size());
  std::vector<bool> red(shape.size(), false);
  red[static_cast<size_t>(axis < 0 ? axis + rank : axis)] = true;
  const std::vector<int64_t> gof = GroupOf(shape, red, &lshape);
  for (size_t i = 0; i < y.size(); ++i) {
    switch (gof[i]) {
      case 0: y[i] = 0; break;
      case 1: p[i] = 0; break;
      case 2: y[i] = p[i] = 0; break;
      case 3: p[i] = 2.0 * y[i]; break;
      case 4: p[i] = -y[i]; break;
      case 5: p[i] *= 0.01; break;
      default: break;
    }
  }
  y = RoundTo<T>(y);
  p = RoundTo<T>(p);
  const Ref ref = RefCosineSim(axis, eps, y, p, shape);
  fastloss::CosineSimilarityOptions co;
  co.axis = axis;
  co.eps = eps;
  CheckCall<T>(shape, y, p, ref, o,
               [&](const Call<T>& call) { return fastloss::CosineSimilarity(call, co); });
}

template <typename T>
void SweepCosineSim(bool quick) {
  const std::vector<int64_t> shape = {4, 3, 9};
  for (int axis : {-1, 0, 1, 2, -3}) {
    if (quick && axis != 1 && axis != -1) continue;
    for (double eps : {1e-8, 0.05}) {
      if (quick && eps != 1e-8) continue;
      for (const Opts& o : Sweep(quick)) CosineSimCase<T>(axis, eps, shape, o);
    }
  }
  if (!quick) {
    for (const Opts& o : Sweep(true)) CosineSimCase<T>(0, 1e-8, {37}, o);
  }
}

// --- cosine_embedding ---
inline Ref RefCosineEmbedding(double margin, const std::vector<double>& x1,
                              const std::vector<double>& x2, const std::vector<double>& y,
                              const std::vector<int64_t>& shape) {
  Ref ref;
  ref.gof = GroupOf(shape, LastAxis(shape.size()), &ref.lshape);
  const size_t ng = static_cast<size_t>(Prod(ref.lshape)), n = x1.size();
  std::vector<double> s12(ng, 0.0), s11(ng, 0.0), s22(ng, 0.0), den(ng), cs(ng), sg(ng), m1(ng),
      m2(ng);
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    s12[g] += x1[i] * x2[i];
    s11[g] += x1[i] * x1[i];
    s22[g] += x2[i] * x2[i];
  }
  ref.l.resize(ng);
  ref.ml.assign(ng, 2.0 + std::fabs(margin));
  for (size_t g = 0; g < ng; ++g) {
    m1[g] = s11[g] + 1e-12;
    m2[g] = s22[g] + 1e-12;
    den[g] = std::sqrt(m1[g] * m2[g]);
    cs[g] = s12[g] / den[g];
    if (y[g] == 1.0) {
      ref.l[g] = 1.0 - cs[g];
      sg[g] = -1.0;
    } else {
      const double z = cs[g] - margin;
      ref.l[g] = std::max(0.0, z);
      sg[g] = z > 0 ? 1.0 : 0.0;
    }
  }
  ref.ngrad = 2;
  for (int k = 0; k < 2; ++k) {
    ref.dl[k].resize(n);
    ref.mdl[k].resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t g = static_cast<size_t>(ref.gof[i]);
    ref.dl[0][i] = sg[g] * (x2[i] / den[g] - cs[g] * x1[i] / m1[g]);
    ref.dl[1][i] = sg[g] * (x1[i] / den[g] - cs[g] * x2[i] / m2[g]);
    ref.mdl[0][i] = std::fabs(sg[g]) * (std::fabs(x2[i]) / den[g] + std::fabs(cs[g] * x1[i]) / m1[g]);
    ref.mdl[1][i] = std::fabs(sg[g]) * (std::fabs(x1[i]) / den[g] + std::fabs(cs[g] * x2[i]) / m2[g]);
  }
  return ref;
}

template <typename T>
void CosineEmbeddingCase(double margin, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("cosine_embedding margin " + std::to_string(margin) + " " + ShapeStr(shape) + " " +
               DtypeName<T>());
  const int64_t n = Prod(shape);
  Rng rng(o.seed * 17u + 3u);
  std::vector<double> x1(static_cast<size_t>(n)), x2(static_cast<size_t>(n));
  std::vector<int64_t> lshape;
  const std::vector<int64_t> gof = GroupOf(shape, LastAxis(shape.size()), &lshape);
  for (size_t i = 0; i < x1.size(); ++i) {
    x1[i] = rng.N();
    x2[i] = 0.6 * x1[i] + 0.8 * rng.N();
    if (gof[i] == 1 && lshape.size() && lshape[0] > 3) x1[i] = 0;         // a zero row
    if (gof[i] == 2 && lshape.size() && lshape[0] > 3) x1[i] = x2[i] = 0;  // both zero
    if (gof[i] == 3 && lshape.size() && lshape[0] > 3) x2[i] = -x1[i];
  }
  std::vector<double> y(static_cast<size_t>(Prod(lshape)));
  for (double& v : y) v = rng.P(0.5) ? 1.0 : -1.0;
  x1 = RoundTo<T>(x1);
  x2 = RoundTo<T>(x2);
  const Ref ref = RefCosineEmbedding(margin, x1, x2, y, shape);
  fastloss::CosineEmbeddingOptions co;
  co.margin = margin;
  CheckMulti<T>(shape, {x1, x2}, lshape, y, ref, o,
                [&](const MultiCall<T>& c) { return fastloss::CosineEmbedding(c, co); });
}

// --- triplet_margin ---
struct Dist {
  double d = 0;
  std::vector<double> dd;  // d d / d t_i, t = a - b (+ eps)
};

inline Dist PDist(const fastloss::TripletMarginOptions& o, const double* a, const double* b,
                  size_t D, double eps) {
  Dist r;
  r.dd.resize(D);
  std::vector<double> t(D);
  for (size_t i = 0; i < D; ++i) t[i] = a[i] - b[i] + eps;
  if (o.squared) {
    for (size_t i = 0; i < D; ++i) {
      r.d += t[i] * t[i];
      r.dd[i] = 2.0 * t[i];
    }
    return r;
  }
  double S = 0;
  for (size_t i = 0; i < D; ++i) S += std::pow(std::fabs(t[i]), o.p);
  r.d = std::pow(S, 1.0 / o.p);
  for (size_t i = 0; i < D; ++i) {
    r.dd[i] = (S > 0 && t[i] != 0)
                  ? std::pow(std::fabs(t[i]), o.p - 1.0) * Sgn(t[i]) * std::pow(S, 1.0 / o.p - 1.0)
                  : 0.0;
  }
  return r;
}

inline Ref RefTriplet(const fastloss::TripletMarginOptions& o, const std::vector<double>& a,
                      const std::vector<double>& p, const std::vector<double>& ng,
                      const std::vector<int64_t>& shape) {
  Ref ref;
  ref.gof = GroupOf(shape, LastAxis(shape.size()), &ref.lshape);
  const size_t rows = static_cast<size_t>(Prod(ref.lshape)), n = a.size();
  const size_t D = static_cast<size_t>(shape.back());
  const double eps = o.squared ? 0.0 : o.eps;
  ref.l.resize(rows);
  ref.ml.resize(rows);
  ref.ngrad = 3;
  for (int k = 0; k < 3; ++k) {
    ref.dl[k].assign(n, 0.0);
    ref.mdl[k].assign(n, 0.0);
  }
  for (size_t r = 0; r < rows; ++r) {
    const size_t off = r * D;
    const Dist ap = PDist(o, &a[off], &p[off], D, eps);
    const Dist an = PDist(o, &a[off], &ng[off], D, eps);
    Dist pn;
    double wan = 1, wpn = 0, dneg = an.d;
    if (o.swap) {
      pn = PDist(o, &p[off], &ng[off], D, eps);
      if (pn.d < an.d) {
        wan = 0;
        wpn = 1;
        dneg = pn.d;
      } else if (pn.d == an.d) {
        wan = wpn = 0.5;
      }
    } else {
      pn.dd.assign(D, 0.0);
    }
    const double z = ap.d - dneg + o.margin;
    const double act = z > 0 ? 1.0 : 0.0;
    ref.l[r] = std::max(z, 0.0);
    ref.ml[r] = ap.d + dneg + o.margin;
    for (size_t i = 0; i < D; ++i) {
      ref.dl[0][off + i] = act * (ap.dd[i] - wan * an.dd[i]);
      ref.dl[1][off + i] = act * (-ap.dd[i] - wpn * pn.dd[i]);
      ref.dl[2][off + i] = act * (wan * an.dd[i] + wpn * pn.dd[i]);
      const double m = act * (std::fabs(ap.dd[i]) + std::fabs(an.dd[i]) + std::fabs(pn.dd[i]));
      for (int k = 0; k < 3; ++k) ref.mdl[k][off + i] = m;
    }
  }
  return ref;
}

struct TripletConfig {
  std::string name;
  fastloss::TripletMarginOptions o;
};

inline std::vector<TripletConfig> TripletConfigs() {
  std::vector<TripletConfig> all;
  auto add = [&](const char* name) -> fastloss::TripletMarginOptions& {
    all.push_back({name, {}});
    return all.back().o;
  };
  add("p2");
  add("p1").p = 1.0;
  add("p3").p = 3.0;
  add("p1p5").p = 1.5;
  add("p0p5").p = 0.5;
  add("p2_swap").swap = true;
  {
    auto& o = add("p1_swap");
    o.p = 1.0;
    o.swap = true;
  }
  {
    auto& o = add("p3_swap_margin0p5");
    o.p = 3.0;
    o.swap = true;
    o.margin = 0.5;
  }
  add("squared").squared = true;
  {
    auto& o = add("squared_swap_margin2");
    o.squared = true;
    o.swap = true;
    o.margin = 2.0;
  }
  {
    auto& o = add("p2_eps0_margin0");
    o.eps = 0.0;
    o.margin = 0.0;
  }
  add("p2_eps0p1").eps = 0.1;
  return all;
}

template <typename T>
void TripletCase(const TripletConfig& c, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("triplet_margin " + c.name + " " + ShapeStr(shape) + " " + DtypeName<T>());
  const int64_t n = Prod(shape);
  Rng rng(o.seed * 19u + 7u);
  std::vector<double> a(static_cast<size_t>(n)), p(a.size()), ng(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = rng.N();
    p[i] = a[i] + 0.5 * rng.N();
    ng[i] = a[i] + 0.8 * rng.N();
  }
  a = RoundTo<T>(a);
  p = RoundTo<T>(p);
  ng = RoundTo<T>(ng);
  const Ref ref = RefTriplet(c.o, a, p, ng, shape);
  CheckMulti<T>(shape, {a, p, ng}, {}, {}, ref, o,
                [&](const MultiCall<T>& call) { return fastloss::TripletMargin(call, c.o); });
}

// --- contrastive (on distances) and contrastive_pairs ---
inline Ref RefContrastive(double margin, const std::vector<double>& y, const std::vector<double>& d,
                          const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape = shape;
  const size_t n = y.size();
  ref.l.resize(n);
  ref.ml.resize(n);
  ref.ngrad = 1;
  ref.dl[0].resize(n);
  ref.mdl[0].resize(n);
  ref.gof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double h = std::max(0.0, margin - d[i]);
    ref.l[i] = y[i] * d[i] * d[i] + (1.0 - y[i]) * h * h;
    ref.dl[0][i] = 2.0 * y[i] * d[i] - 2.0 * (1.0 - y[i]) * h;
    const double big = std::fabs(d[i]) + margin;
    ref.ml[i] = big * big;
    ref.mdl[0][i] = 2.0 * big;
    ref.gof[i] = static_cast<int64_t>(i);
  }
  return ref;
}

template <typename T>
void ContrastiveCase(double margin, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("contrastive margin " + std::to_string(margin) + " " + ShapeStr(shape) + " " +
               DtypeName<T>());
  Rng rng(o.seed * 23u + 1u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> y(n), d(n);
  for (size_t i = 0; i < n; ++i) {
    const double u = rng.U(0, 1);
    y[i] = u < 0.4 ? 0.0 : (u < 0.8 ? 1.0 : rng.U(0, 1));
    const double v = rng.U(0, 1);
    d[i] = v < 0.05 ? 0.0 : (v < 0.1 ? margin : rng.U(0, 2));
  }
  y = RoundTo<T>(y);
  d = RoundTo<T>(d);
  const Ref ref = RefContrastive(margin, y, d, shape);
  fastloss::ContrastiveOptions co;
  co.margin = margin;
  CheckCall<T>(shape, y, d, ref, o,
               [&](const Call<T>& call) { return fastloss::Contrastive(call, co); });
}

inline Ref RefContrastivePairs(double margin, double eps, const std::vector<double>& x1,
                               const std::vector<double>& x2, const std::vector<double>& y,
                               const std::vector<int64_t>& shape) {
  Ref ref;
  ref.gof = GroupOf(shape, LastAxis(shape.size()), &ref.lshape);
  const size_t rows = static_cast<size_t>(Prod(ref.lshape)), n = x1.size();
  const size_t D = static_cast<size_t>(shape.back());
  ref.l.resize(rows);
  ref.ml.resize(rows);
  ref.ngrad = 2;
  for (int k = 0; k < 2; ++k) {
    ref.dl[k].assign(n, 0.0);
    ref.mdl[k].assign(n, 0.0);
  }
  for (size_t r = 0; r < rows; ++r) {
    const size_t off = r * D;
    double S = 0;
    for (size_t i = 0; i < D; ++i) {
      const double t = x1[off + i] - x2[off + i] + eps;
      S += t * t;
    }
    const double d = std::sqrt(S), h = std::max(0.0, margin - d), yr = y[r];
    ref.l[r] = yr * S + (1.0 - yr) * h * h;
    ref.ml[r] = std::fabs(ref.l[r]) + (d + margin) * (d + margin);
    const double dl_dd = 2.0 * yr * d - 2.0 * (1.0 - yr) * h;
    const double mag = 2.0 * std::fabs(yr) * d + 2.0 * std::fabs(1.0 - yr) * (h + d);
    for (size_t i = 0; i < D; ++i) {
      const double t = x1[off + i] - x2[off + i] + eps;
      const double g = d > 0 ? dl_dd * t / d : 0.0;
      const double m = d > 0 ? mag * std::fabs(t) / d : 0.0;
      ref.dl[0][off + i] = g;
      ref.dl[1][off + i] = -g;
      ref.mdl[0][off + i] = ref.mdl[1][off + i] = m;
    }
  }
  return ref;
}

template <typename T>
void ContrastivePairsCase(double margin, double eps, const std::vector<int64_t>& shape,
                          const Opts& o) {
  SCOPED_TRACE("contrastive_pairs margin " + std::to_string(margin) + " eps " +
               std::to_string(eps) + " " + ShapeStr(shape) + " " + DtypeName<T>());
  Rng rng(o.seed * 29u + 2u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<int64_t> lshape;
  const std::vector<int64_t> gof = GroupOf(shape, LastAxis(shape.size()), &lshape);
  std::vector<double> rs(static_cast<size_t>(Prod(lshape)));
  for (double& s : rs) s = rng.U(0.02, 0.6);
  std::vector<double> x1(n), x2(n);
  for (size_t i = 0; i < n; ++i) {
    x1[i] = rng.N();
    x2[i] = x1[i] + rs[static_cast<size_t>(gof[i])] * rng.N();
  }
  std::vector<double> y(rs.size());
  for (double& v : y) {
    const double u = rng.U(0, 1);
    v = u < 0.4 ? 0.0 : (u < 0.8 ? 1.0 : rng.U(0, 1));
  }
  x1 = RoundTo<T>(x1);
  x2 = RoundTo<T>(x2);
  y = RoundTo<T>(y);
  const Ref ref = RefContrastivePairs(margin, eps, x1, x2, y, shape);
  fastloss::ContrastiveOptions co;
  co.margin = margin;
  co.eps = eps;
  CheckMulti<T>(shape, {x1, x2}, lshape, y, ref, o,
                [&](const MultiCall<T>& c) { return fastloss::ContrastivePairs(c, co); });
}

// --- margin_ranking ---
inline Ref RefMarginRanking(double margin, const std::vector<double>& x1,
                            const std::vector<double>& x2, const std::vector<double>& y,
                            const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape = shape;
  const size_t n = x1.size();
  ref.l.resize(n);
  ref.ml.resize(n);
  ref.ngrad = 2;
  for (int k = 0; k < 2; ++k) {
    ref.dl[k].resize(n);
    ref.mdl[k].resize(n);
  }
  ref.gof.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double z = -y[i] * (x1[i] - x2[i]) + margin;
    ref.l[i] = std::max(0.0, z);
    ref.ml[i] = std::fabs(y[i]) * (std::fabs(x1[i]) + std::fabs(x2[i])) + margin;
    ref.dl[0][i] = z > 0 ? -y[i] : 0.0;
    ref.dl[1][i] = -ref.dl[0][i];
    ref.mdl[0][i] = ref.mdl[1][i] = std::fabs(y[i]);
    ref.gof[i] = static_cast<int64_t>(i);
  }
  return ref;
}

template <typename T>
void MarginRankingCase(double margin, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE("margin_ranking margin " + std::to_string(margin) + " " + ShapeStr(shape) + " " +
               DtypeName<T>());
  Rng rng(o.seed * 31u + 4u);
  const size_t n = static_cast<size_t>(Prod(shape));
  std::vector<double> x1(n), x2(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    x1[i] = rng.N();
    x2[i] = rng.N();
    y[i] = rng.P(0.5) ? 1.0 : -1.0;
  }
  x1 = RoundTo<T>(x1);
  x2 = RoundTo<T>(x2);
  const Ref ref = RefMarginRanking(margin, x1, x2, y, shape);
  fastloss::MarginRankingOptions mo;
  mo.margin = margin;
  CheckMulti<T>(shape, {x1, x2}, shape, y, ref, o,
                [&](const MultiCall<T>& c) { return fastloss::MarginRanking(c, mo); });
}

template <typename T>
void SweepMetric(bool quick) {
  for (const Opts& o : Sweep(quick)) {
    for (double margin : {0.0, 0.25, -0.5}) {
      if (quick && margin != 0.25) continue;
      CosineEmbeddingCase<T>(margin, {11, 6}, o);
      if (!quick) CosineEmbeddingCase<T>(margin, {6}, o);
    }
    const std::vector<TripletConfig> tc = TripletConfigs();
    for (size_t i = 0; i < tc.size(); ++i) {
      if (quick && i != 0 && i != 1 && i != 7) continue;
      TripletCase<T>(tc[i], {13, 10}, o);
      if (!quick && i % 3 == 0) TripletCase<T>(tc[i], {2, 3, 5}, o);
    }
    for (double margin : {1.0, 0.5, 0.0}) {
      if (quick && margin != 1.0) continue;
      ContrastiveCase<T>(margin, {6, 7}, o);
    }
    for (double margin : {1.0, 2.0}) {
      for (double eps : {1e-6, 0.0}) {
        if (quick && (margin != 1.0 || eps != 1e-6)) continue;
        ContrastivePairsCase<T>(margin, eps, {12, 7}, o);
      }
    }
    for (double margin : {0.0, 0.5}) {
      if (quick && margin != 0.5) continue;
      MarginRankingCase<T>(margin, {6, 7}, o);
    }
  }
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_METRIC_REFERENCE_H_
