// The box IoU losses (iou, giou, diou, ciou): the double reference (forward-mode
// dual numbers) written from notes/STRUCTURED_SPEC.md, the box generator and the
// sweep that checks the library against it. Used by detection_test.cc and
// structured_test.cc (finite differences, SIMD targets).
#ifndef FASTLOSS_TESTS_CPP_DETECTION_REFERENCE_H_
#define FASTLOSS_TESTS_CPP_DETECTION_REFERENCE_H_

#include "structured_helpers.h"

namespace fastloss_test {

// ============================================================================
// Detection: box IoU losses. Forward-mode dual numbers with torch's
// autograd conventions (a min/max tie passes half to each side).
// ============================================================================

// d: the derivatives; md: the magnitude of the terms they are sums of (for
// the allowance where terms cancel, e.g. identical boxes).
struct Dual {
  double v = 0;
  double d[4] = {0, 0, 0, 0};
  double md[4] = {0, 0, 0, 0};
};
inline Dual Cst(double v) {
  Dual r;
  r.v = v;
  return r;
}
inline Dual Var(double v, int k) {
  Dual r;
  r.v = v;
  r.d[k] = 1;
  r.md[k] = 1;
  return r;
}
inline Dual operator+(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v + b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] + b.d[k];
    r.md[k] = a.md[k] + b.md[k];
  }
  return r;
}
inline Dual operator-(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v - b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] - b.d[k];
    r.md[k] = a.md[k] + b.md[k];
  }
  return r;
}
inline Dual operator*(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v * b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] * b.v + a.v * b.d[k];
    r.md[k] = a.md[k] * std::fabs(b.v) + std::fabs(a.v) * b.md[k];
  }
  return r;
}
inline Dual operator/(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v / b.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = (a.d[k] * b.v - a.v * b.d[k]) / (b.v * b.v);
    r.md[k] = (a.md[k] * std::fabs(b.v) + std::fabs(a.v) * b.md[k]) / (b.v * b.v);
  }
  return r;
}
inline Dual Tie(const Dual& a, const Dual& b) {
  Dual r;
  r.v = a.v;
  for (int k = 0; k < 4; ++k) {
    r.d[k] = 0.5 * (a.d[k] + b.d[k]);
    r.md[k] = 0.5 * (a.md[k] + b.md[k]);
  }
  return r;
}
inline Dual DMax(const Dual& a, const Dual& b) {
  if (a.v > b.v) return a;
  if (b.v > a.v) return b;
  return Tie(a, b);
}
inline Dual DMin(const Dual& a, const Dual& b) {
  if (a.v < b.v) return a;
  if (b.v < a.v) return b;
  return Tie(a, b);
}
inline Dual DAtan(const Dual& a) {
  Dual r;
  r.v = std::atan(a.v);
  for (int k = 0; k < 4; ++k) {
    r.d[k] = a.d[k] / (1.0 + a.v * a.v);
    r.md[k] = a.md[k] / (1.0 + a.v * a.v);
  }
  return r;
}

// torchvision's loss of box p against box t; gradient wrt p in .d. With
// `frozen_alpha`, CIoU's alpha takes that value (for finite differences).
inline Dual BoxLossDual(BoxIouKind kind, double eps, const double* t, const double* p,
                        const double* frozen_alpha = nullptr, double* alpha_out = nullptr) {
  const Dual x1 = Var(p[0], 0), y1 = Var(p[1], 1), x2 = Var(p[2], 2), y2 = Var(p[3], 3);
  const Dual gx1 = Cst(t[0]), gy1 = Cst(t[1]), gx2 = Cst(t[2]), gy2 = Cst(t[3]);
  const Dual xk1 = DMax(x1, gx1), yk1 = DMax(y1, gy1), xk2 = DMin(x2, gx2), yk2 = DMin(y2, gy2);
  const Dual inter = (xk2.v > xk1.v && yk2.v > yk1.v) ? (xk2 - xk1) * (yk2 - yk1) : Cst(0);
  const Dual uni = (x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter;
  const Dual iou = inter / (uni + Cst(eps));
  Dual loss = Cst(1) - iou;
  if (kind == BoxIouKind::kIou) return loss;
  const Dual xc1 = DMin(x1, gx1), yc1 = DMin(y1, gy1), xc2 = DMax(x2, gx2), yc2 = DMax(y2, gy2);
  if (kind == BoxIouKind::kGiou) {
    const Dual area_c = (xc2 - xc1) * (yc2 - yc1);
    return loss + (area_c - uni) / (area_c + Cst(eps));
  }
  const Dual diag = (xc2 - xc1) * (xc2 - xc1) + (yc2 - yc1) * (yc2 - yc1) + Cst(eps);
  const Dual half = Cst(0.5);
  const Dual dx = (x1 + x2) * half - (gx1 + gx2) * half;
  const Dual dy = (y1 + y2) * half - (gy1 + gy2) * half;
  loss = loss + (dx * dx + dy * dy) / diag;
  if (kind == BoxIouKind::kDiou) return loss;
  const Dual w = x2 - x1, h = y2 - y1, wg = gx2 - gx1, hg = gy2 - gy1;
  auto safe = [&](const Dual& hh) {
    return std::fabs(hh.v) < eps ? Cst(hh.v < 0 ? -eps : eps) : hh;
  };
  const Dual diff = DAtan(wg / safe(hg)) - DAtan(w / safe(h));
  const Dual v = Cst(4.0 / (kPi * kPi)) * diff * diff;
  const double alpha = frozen_alpha ? *frozen_alpha : v.v / (1.0 - iou.v + v.v + eps);
  if (alpha_out) *alpha_out = alpha;
  return loss + Cst(alpha) * v;
}

inline const char* BoxKindName(BoxIouKind k) {
  switch (k) {
    case BoxIouKind::kIou: return "iou";
    case BoxIouKind::kGiou: return "giou";
    case BoxIouKind::kDiou: return "diou";
    case BoxIouKind::kCiou: return "ciou";
  }
  return "?";
}

inline Ref RefBoxes(const fastloss::BoxIouOptions& o, const std::vector<double>& t,
                    const std::vector<double>& p, const std::vector<int64_t>& shape) {
  Ref ref;
  ref.lshape.assign(shape.begin(), shape.end() - 1);
  const size_t nb = static_cast<size_t>(Prod(ref.lshape));
  ref.l.resize(nb);
  ref.ml.resize(nb);
  ref.ngrad = 1;
  ref.dl[0].resize(4 * nb);
  ref.mdl[0].resize(4 * nb);
  ref.gof.resize(4 * nb);
  for (size_t b = 0; b < nb; ++b) {
    const Dual d = BoxLossDual(o.kind, o.eps, &t[4 * b], &p[4 * b]);
    ref.l[b] = d.v;
    ref.ml[b] = 4.0 + std::fabs(d.v);
    double sum = 0;
    for (int k = 0; k < 4; ++k) sum += std::fabs(d.d[k]);
    for (int k = 0; k < 4; ++k) {
      ref.dl[0][4 * b + static_cast<size_t>(k)] = d.d[k];
      ref.mdl[0][4 * b + static_cast<size_t>(k)] = sum + d.md[k];
      ref.gof[4 * b + static_cast<size_t>(k)] = static_cast<int64_t>(b);
    }
  }
  return ref;
}

inline double Q8(double v) { return std::round(v * 8.0) / 8.0; }

// Boxes on a grid of 1/8 (exact in float, so ties are ties in both types):
// overlapping, disjoint, identical, sharing coordinates, touching, nested.
inline void BoxData(int64_t nb, uint64_t seed, std::vector<double>* t, std::vector<double>* p) {
  Rng rng(seed);
  t->resize(static_cast<size_t>(4 * nb));
  p->resize(static_cast<size_t>(4 * nb));
  for (size_t b = 0; b < static_cast<size_t>(nb); ++b) {
    const double tx = Q8(rng.U(0, 8)), ty = Q8(rng.U(0, 8));
    const double T4[4] = {tx, ty, tx + Q8(rng.U(0.5, 4)), ty + Q8(rng.U(0.5, 4))};
    double P4[4];
    const double u = rng.U(0, 1);
    auto perturbed = [&]() {
      const double px = Q8(tx + rng.N()), py = Q8(ty + rng.N());
      const double pw = std::max(0.25, Q8(T4[2] - T4[0] + 0.7 * rng.N()));
      const double ph = std::max(0.25, Q8(T4[3] - T4[1] + 0.7 * rng.N()));
      P4[0] = px;
      P4[1] = py;
      P4[2] = px + pw;
      P4[3] = py + ph;
    };
    if (u < 0.45) {
      perturbed();
    } else if (u < 0.6) {  // disjoint
      P4[0] = T4[2] + Q8(rng.U(0.25, 3));
      P4[1] = Q8(ty + rng.N());
      P4[2] = P4[0] + Q8(rng.U(0.5, 3));
      P4[3] = P4[1] + Q8(rng.U(0.5, 3));
    } else if (u < 0.7) {  // identical
      std::copy(T4, T4 + 4, P4);
    } else if (u < 0.85) {  // sharing one or two coordinates
      perturbed();
      const int k1 = static_cast<int>(rng.I(0, 4));
      P4[k1] = T4[k1];
      if (rng.P(0.5)) {
        const int k2 = static_cast<int>(rng.I(0, 4));
        P4[k2] = T4[k2];
      }
      if (P4[2] <= P4[0]) P4[2] = P4[0] + 0.25;
      if (P4[3] <= P4[1]) P4[3] = P4[1] + 0.25;
    } else if (u < 0.93) {  // touching along x: empty intersection
      P4[0] = T4[2];
      P4[1] = Q8(ty + 0.5 * rng.N());
      P4[2] = T4[2] + Q8(rng.U(0.5, 3));
      P4[3] = P4[1] + Q8(rng.U(0.5, 3));
    } else {  // containing
      P4[0] = tx - 0.5;
      P4[1] = ty - 0.25;
      P4[2] = T4[2] + 0.75;
      P4[3] = T4[3] + 0.5;
    }
    for (int k = 0; k < 4; ++k) {
      (*t)[4 * b + static_cast<size_t>(k)] = T4[k];
      (*p)[4 * b + static_cast<size_t>(k)] = P4[k];
    }
  }
}

template <typename T>
void BoxCase(const fastloss::BoxIouOptions& bo, const std::vector<int64_t>& shape, const Opts& o) {
  SCOPED_TRACE(std::string(BoxKindName(bo.kind)) + " eps " + std::to_string(bo.eps) + " " +
               ShapeStr(shape) + " " + DtypeName<T>());
  std::vector<double> t, p;
  BoxData(Prod(shape) / 4, o.seed * 7u + static_cast<uint64_t>(bo.kind), &t, &p);
  t = RoundTo<T>(t);
  p = RoundTo<T>(p);
  const Ref ref = RefBoxes(bo, t, p, shape);
  CheckCall<T>(shape, t, p, ref, o, [&](const Call<T>& call) { return fastloss::BoxIou(call, bo); });
}

inline std::vector<fastloss::BoxIouOptions> BoxConfigs() {
  std::vector<fastloss::BoxIouOptions> out;
  for (BoxIouKind k : {BoxIouKind::kIou, BoxIouKind::kGiou, BoxIouKind::kDiou, BoxIouKind::kCiou}) {
    fastloss::BoxIouOptions o;
    o.kind = k;
    out.push_back(o);
    o.eps = 0.01;
    out.push_back(o);
  }
  return out;
}

template <typename T>
void SweepBoxes(bool quick) {
  for (const fastloss::BoxIouOptions& bo : BoxConfigs()) {
    if (quick && bo.eps != 1e-7) continue;
    for (const Opts& o : Sweep(quick)) {
      BoxCase<T>(bo, {53, 4}, o);
      if (!quick) {
        BoxCase<T>(bo, {3, 5, 4}, o);
        BoxCase<T>(bo, {4}, o);
      }
    }
  }
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_DETECTION_REFERENCE_H_
