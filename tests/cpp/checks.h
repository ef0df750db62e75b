// Shared checks for the fastloss C++ tests (the mirror of
// tests/python/checks.py): per-dtype tolerances, strided views over buffers
// with sentinels around them, the reference result of a whole call (weights
// broadcast, reductions, gradient scaling per API_SPEC.md) read through the
// call's own views, and the comparison of a call's outputs with it.
#ifndef FASTLOSS_TESTS_CPP_CHECKS_H_
#define FASTLOSS_TESTS_CPP_CHECKS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <fastloss/fastloss.hpp>

#include "reference.h"

namespace fastloss_test {

using fastloss::Call;
using fastloss::Reduction;
using fastloss::View;

inline const char* ReductionName(Reduction r) {
  switch (r) {
    case Reduction::kMean: return "mean";
    case Reduction::kSum: return "sum";
    case Reduction::kNone: return "none";
  }
  return "?";
}

template <typename T>
const char* DtypeName() {
  return std::is_same<T, float>::value ? "float" : "double";
}

// --- Tolerances (as checks.rtol_for / floor_for). ---

// Relative allowance against the double reference evaluated on the inputs
// rounded to T.
template <typename T>
double Rtol(const LossConfig& c) {
  if (std::is_same<T, float>::value) return 2e-5;
  return IsTranscendental(c.id) ? 1e-10 : 1e-12;
}

// Absolute allowance for results that underflow (r^2 of tiny r, ...).
template <typename T>
double Floor() {
  return std::is_same<T, float>::value ? 1e-36 : 1e-300;
}

// |a - e| <= tol, NaN only against NaN, an infinity only against the same
// infinity.
inline bool Close(double a, double e, double tol) {
  if (std::isnan(e) || std::isnan(a)) return std::isnan(e) && std::isnan(a);
  if (std::isinf(e) || std::isinf(a)) return a == e;
  return std::fabs(a - e) <= tol;
}

// Bit-for-bit equality (so NaN == NaN, and 0 != -0).
template <typename T>
bool SameBits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// a and b agree to `ulps` units in the last place of T (or are both NaN).
template <typename T>
bool WithinUlps(double a, double b, double ulps) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  const double eps = std::numeric_limits<T>::epsilon();
  return std::fabs(a - b) <= ulps * eps * std::max(std::fabs(a), std::fabs(b)) +
                                 std::numeric_limits<T>::denorm_min();
}

// --- Views. ---

template <typename T>
View<T> MakeView(T* data, std::initializer_list<int64_t> shape,
                 std::initializer_list<int64_t> strides) {
  View<T> v;
  v.data = data;
  for (int64_t s : shape) v.shape[v.rank++] = s;
  int k = 0;
  for (int64_t s : strides) v.strides[k++] = s;
  return v;
}

template <typename T>
View<T> MakeView(T* data, const std::vector<int64_t>& shape,
                 const std::vector<int64_t>& strides) {
  View<T> v;
  v.data = data;
  v.rank = static_cast<int>(shape.size());
  for (int k = 0; k < v.rank; ++k) {
    v.shape[k] = shape[static_cast<size_t>(k)];
    v.strides[k] = strides[static_cast<size_t>(k)];
  }
  return v;
}

template <typename T>
View<const T> ConstView(const View<T>& v) {
  View<const T> c;
  c.data = v.data;
  c.rank = v.rank;
  for (int k = 0; k < v.rank; ++k) {
    c.shape[k] = v.shape[k];
    c.strides[k] = v.strides[k];
  }
  return c;
}

// Calls f(i, offset) for every element i (C order) of `shape` (rank dims),
// with the element's offset from v.data in a view v that broadcasts to that
// shape NumPy-style: right-aligned, size-1 dimensions repeat.
template <typename V, class F>
void ForEachOffset(const V& v, const int64_t* shape, int rank, F&& f) {
  int64_t n = 1, st[fastloss::kMaxRank], idx[fastloss::kMaxRank];
  for (int k = 0; k < rank; ++k) {
    n *= shape[k];
    const int vk = k - (rank - v.rank);
    st[k] = vk >= 0 && v.shape[vk] != 1 ? v.strides[vk] : 0;
    idx[k] = 0;
  }
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (int k = rank - 1; k >= 0; --k) {
      if (++idx[k] < shape[k]) {
        off += st[k];
        break;
      }
      off -= st[k] * (shape[k] - 1);
      idx[k] = 0;
    }
  }
}

template <typename V, class F>
void ForEachOffset(const V& v, F&& f) {
  ForEachOffset(v, v.shape, v.rank, f);
}

// The elements of v (broadcast to `shape`) in C order, as double.
template <typename V>
std::vector<double> Gather(const V& v, const int64_t* shape, int rank) {
  int64_t n = 1;
  for (int k = 0; k < rank; ++k) n *= shape[k];
  std::vector<double> out(static_cast<size_t>(n));
  ForEachOffset(v, shape, rank, [&](int64_t i, int64_t off) {
    out[static_cast<size_t>(i)] = static_cast<double>(v.data[off]);
  });
  return out;
}

// A buffer for a strided array of `shape` and `strides` (any signs), with
// `pad` sentinel elements beyond both ends of the span the view covers; the
// view's gaps hold sentinels too. Values(...) reads it back in C order.
template <typename T>
class StridedArray {
 public:
  static T Sentinel() { return static_cast<T>(-12345.5); }

  StridedArray(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides,
               int64_t pad = 8) {
    int64_t lo = 0, hi = 0;
    bool empty = false;
    for (size_t k = 0; k < shape.size(); ++k) {
      if (shape[k] == 0) empty = true;
      const int64_t span = (shape[k] - 1) * strides[k];
      (span < 0 ? lo : hi) += span;
    }
    if (empty) lo = hi = 0;
    buf_.assign(static_cast<size_t>(hi - lo + 1 + 2 * pad), Sentinel());
    view_ = MakeView<T>(buf_.data() + pad - lo, shape, strides);
  }
  // A contiguous 1-D array of n elements. (One argument only, so that
  // StridedArray({n}, {stride}) can never pick it.)
  explicit StridedArray(int64_t n)
      : StridedArray(std::vector<int64_t>{n}, std::vector<int64_t>{1}) {}

  const View<T>& view() const { return view_; }
  View<const T> cview() const { return ConstView(view_); }
  int64_t size() const { return view_.size(); }

  void Fill(const std::vector<T>& values) {
    ForEachOffset(view_, [&](int64_t i, int64_t off) {
      view_.data[off] = values[static_cast<size_t>(i)];
    });
  }
  std::vector<T> Values() const {
    std::vector<T> out(static_cast<size_t>(size()));
    ForEachOffset(view_, [&](int64_t i, int64_t off) {
      out[static_cast<size_t>(i)] = view_.data[off];
    });
    return out;
  }
  // Every element of the buffer that the view does not cover still holds
  // the sentinel.
  ::testing::AssertionResult OnlyViewWritten() const {
    std::vector<bool> covered(buf_.size(), false);
    const int64_t base = view_.data - buf_.data();
    ForEachOffset(view_, [&](int64_t, int64_t off) { covered[static_cast<size_t>(base + off)] = true; });
    for (size_t j = 0; j < buf_.size(); ++j) {
      if (!covered[j] && !SameBits(buf_[j], Sentinel())) {
        return ::testing::AssertionFailure()
               << "buffer element " << j << " outside the view was written: " << buf_[j];
      }
    }
    return ::testing::AssertionSuccess();
  }
  // Nothing at all was written (the view's elements included).
  ::testing::AssertionResult Untouched() const {
    for (size_t j = 0; j < buf_.size(); ++j) {
      if (!SameBits(buf_[j], Sentinel())) {
        return ::testing::AssertionFailure() << "buffer element " << j << " was written: " << buf_[j];
      }
    }
    return ::testing::AssertionSuccess();
  }

 private:
  std::vector<T> buf_;
  View<T> view_;
};

// --- The reference result of a call. ---

struct Expected {
  Reduction reduction = Reduction::kMean;
  int64_t n = 0;
  double value = 0, value_tol = 0;  // kMean / kSum
  std::vector<double> losses, losses_tol;  // w * l (kNone)
  std::vector<double> grad, grad_tol;  // the gradient of the value (of its sum for kNone)
};

// Neumaier-compensated sum: the reference's own summation error stays far
// below the library's.
class ExactSum {
 public:
  void Add(double x) {
    const double t = sum_ + x;
    if (std::isfinite(t)) {
      comp_ += std::fabs(sum_) >= std::fabs(x) ? (sum_ - t) + x : (x - t) + sum_;
    }
    sum_ = t;
  }
  double Get() const { return std::isfinite(sum_) ? sum_ + comp_ : sum_; }

 private:
  double sum_ = 0, comp_ = 0;
};

// The expected outputs of `call` for loss c, read through the call's input
// views (so compute it before the call when an output aliases an input):
//   sum  = sum(w l)             grad = w dl
//   mean = sum(w l) / sum(w)    grad = w dl / sum(w)
//   none = w l                  grad = w dl
// Allowances: rtol times the same reduction applied to |w| times the terms'
// magnitudes, plus the floor of T.
template <typename T>
Expected Reference(const LossConfig& c, const Call<T>& call, double rtol) {
  Expected e;
  e.reduction = call.reduction;
  const View<const T>& p = call.y_pred;
  const int64_t n = p.size();
  e.n = n;
  const std::vector<double> yv = Gather(call.y_true, p.shape, p.rank);
  const std::vector<double> pv = Gather(p, p.shape, p.rank);
  const std::vector<double> w = call.weights.has_value() ? Gather(*call.weights, p.shape, p.rank)
                                                 : std::vector<double>(static_cast<size_t>(n), 1.0);
  ExactSum sum_wl, sum_mag, sum_w;
  std::vector<double> wdl(static_cast<size_t>(n)), wmdl(static_cast<size_t>(n));
  e.losses.resize(static_cast<size_t>(n));
  e.losses_tol.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const size_t s = static_cast<size_t>(i);
    const double yi = yv[s], pi = pv[s];
    const LossAndDeriv ld = RefLoss(c, yi, pi);
    const LossAndDeriv mag = RefMagnitude(c, yi, pi);
    const double wi = w[s], aw = std::fabs(wi);
    e.losses[s] = wi * ld.l;
    e.losses_tol[s] = rtol * (std::fabs(wi * ld.l) + aw * mag.l) + Floor<T>();
    wdl[s] = wi * ld.dl;
    wmdl[s] = aw * mag.dl;
    sum_wl.Add(wi * ld.l);
    sum_mag.Add(aw * mag.l);
    sum_w.Add(wi);
  }
  double scale = 1.0;
  if (call.reduction == Reduction::kMean) {
    scale = 1.0 / sum_w.Get();
    e.value = sum_wl.Get() / sum_w.Get();
    // The allowance stays relative to |sum(w)| (sum(|w|) / |sum(w)| >= 1).
    e.value_tol = rtol * (std::fabs(e.value) + sum_mag.Get() / std::fabs(sum_w.Get())) + Floor<T>();
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

template <typename T>
Expected Reference(const LossConfig& c, const Call<T>& call) {
  return Reference(c, call, Rtol<T>(c));
}

// Elementwise comparison of an output view with expected values; reports the
// first few mismatches.
template <typename T>
::testing::AssertionResult ViewMatches(const char* what, const View<T>& out,
                                       const std::vector<double>& expect,
                                       const std::vector<double>& tol) {
  int64_t bad = 0;
  std::ostringstream msg;
  ForEachOffset(out, [&](int64_t i, int64_t off) {
    const size_t s = static_cast<size_t>(i);
    const double a = static_cast<double>(out.data[off]);
    if (!Close(a, expect[s], tol[s])) {
      if (bad < 5) {
        msg << "\n  " << what << "[" << i << "]: got " << a << ", expected " << expect[s]
            << ", allowed " << tol[s];
      }
      ++bad;
    }
  });
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << out.size() << " " << what
                                       << " elements differ" << msg.str();
}

// The call's value and outputs against e: the value for kMean / kSum (0 for
// kNone), the gradient when grad is set, the losses when kNone and losses is set.
template <typename T>
::testing::AssertionResult MatchesReference(const Expected& e, const Call<T>& call,
                                            double value) {
  ::testing::AssertionResult ok = ::testing::AssertionSuccess();
  std::ostringstream msg;
  bool failed = false;
  if (e.reduction == Reduction::kNone) {
    if (value != 0.0) {
      failed = true;
      msg << "\n  reduction none returned " << value << ", expected 0";
    }
  } else if (!Close(value, e.value, e.value_tol)) {
    failed = true;
    msg << "\n  value: got " << value << ", expected " << e.value << ", allowed "
        << e.value_tol << " (diff " << value - e.value << ")";
  }
  if (call.grad.has_value()) {
    ::testing::AssertionResult r = ViewMatches("grad", *call.grad, e.grad, e.grad_tol);
    if (!r) {
      failed = true;
      msg << "\n  " << r.message();
    }
  }
  if (e.reduction == Reduction::kNone && call.losses.has_value()) {
    ::testing::AssertionResult r = ViewMatches("losses", *call.losses, e.losses, e.losses_tol);
    if (!r) {
      failed = true;
      msg << "\n  " << r.message();
    }
  }
  if (!failed) return ok;
  return ::testing::AssertionFailure() << msg.str();
}

// Runs `call` for c and checks it against the reference.
template <typename T>
::testing::AssertionResult RunAndCheck(const LossConfig& c, const Call<T>& call,
                                       double* value_out = nullptr) {
  const Expected e = Reference(c, call);
  const double v = RunLoss(c, call);
  if (value_out) *value_out = v;
  return MatchesReference(e, call, v);
}

// `msg` contains `word` as a whole word (not inside a longer identifier).
inline bool MentionsWord(const std::string& msg, const std::string& word) {
  auto ident = [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; };
  for (size_t at = msg.find(word); at != std::string::npos; at = msg.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !ident(msg[at - 1])) && (end == msg.size() || !ident(msg[end]))) return true;
  }
  return false;
}

// `f` throws a fastloss::Error whose message names every word.
template <class F>
::testing::AssertionResult ThrowsErrorMentioning(F&& f, std::initializer_list<const char*> words) {
  bool thrown = false;
  std::string msg;
  try {
    f();
  } catch (const fastloss::Error& e) {
    thrown = true;
    msg = e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-fastloss::Error: " << e.what();
  }
  if (!thrown) return ::testing::AssertionFailure() << "threw nothing";
  for (const char* w : words) {
    if (!MentionsWord(msg, w)) {
      return ::testing::AssertionFailure() << "message \"" << msg << "\" does not mention \"" << w
                                           << "\"";
    }
  }
  return ::testing::AssertionSuccess() << msg;
}

}  // namespace fastloss_test

#endif  // FASTLOSS_TESTS_CPP_CHECKS_H_
