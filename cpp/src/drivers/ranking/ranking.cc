// Pairwise ranking hinge loss in O(n log n): for each item, the pairs in
// which it is the more relevant one are found by a sweep in increasing
// relevance over a Fenwick tree indexed by score rank (count and sum of the
// scores of the less relevant items above s_i - margin); the pairs in which
// it is the less relevant one by the mirror sweep. Exact: every active pair
// contributes margin - s_i + s_j, summed in float64 as
// count * (margin - s_i) + sum(s_j). Single-threaded and deterministic.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "fastloss/fastloss.hpp"
#include "drivers/checks.h"

namespace fastloss {
namespace {

// Count and sum of the values inserted at positions [0, i), one node per
// cache access (count and sum side by side).
struct Fenwick {
  struct Node {
    int64_t count;
    double sum;
  };
  std::vector<Node> node;
  explicit Fenwick(size_t n) : node(n + 1, Node{0, 0.0}) {}
  void Add(size_t i, double v) {
    for (++i; i < node.size(); i += i & (~i + 1)) {
      node[i].count += 1;
      node[i].sum += v;
    }
  }
  void Prefix(size_t i, int64_t* c, double* s) const {
    int64_t cc = 0;
    double ss = 0.0;
    for (; i > 0; i -= i & (~i + 1)) {
      cc += node[i].count;
      ss += node[i].sum;
    }
    *c = cc;
    *s = ss;
  }
};

template <typename T>
void Gather(const View<const T>& v, std::vector<double>& out) {
  const int64_t n = v.size();
  out.resize(static_cast<size_t>(n));
  int64_t idx[kMaxRank] = {};
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = static_cast<double>(v.data[off]);
    for (int k = v.rank - 1; k >= 0; --k) {
      off += v.strides[k];
      if (++idx[k] < v.shape[k]) break;
      off -= v.shape[k] * v.strides[k];
      idx[k] = 0;
    }
  }
}

template <typename T>
void Scatter(const std::vector<double>& in, View<T>& v) {
  const int64_t n = v.size();
  int64_t idx[kMaxRank] = {};
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    v.data[off] = static_cast<T>(in[static_cast<size_t>(i)]);
    for (int k = v.rank - 1; k >= 0; --k) {
      off += v.strides[k];
      if (++idx[k] < v.shape[k]) break;
      off -= v.shape[k] * v.strides[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

template <typename T>
double PairwiseRanking(const Call<T>& call, const View<const int64_t>* groups,
                       const PairwiseRankingOptions& o) {
  const char* name = "pairwise_ranking";
  CheckOptions(name, o);
  internal::RejectSegments(name, call);
  if (call.reduction == Reduction::kNone) {
    throw Error("pairwise_ranking: reduction 'none' is not supported (the loss is a sum over "
                "pairs); use 'mean' or 'sum'");
  }
  if (call.weights.has_value()) throw Error("pairwise_ranking: weights are not supported");
  internal::CheckView(name, "relevance", call.y_true);
  internal::CheckView(name, "scores", call.y_pred);
  internal::CheckSameShape(name, "relevance", call.y_true, "scores", call.y_pred);
  if (groups) {
    internal::CheckView(name, "groups", *groups);
    internal::CheckSameShape(name, "groups", *groups, "scores", call.y_pred);
  }
  if (call.grad.has_value()) {
    internal::CheckView(name, "grad", *call.grad);
    internal::CheckSameShape(name, "grad", *call.grad, "scores", call.y_pred);
    // The inputs are copied before the gradient is written: only the
    // gradient's own elements must not share memory.
    internal::CheckDistinctElements(name, internal::kGradArg, *call.grad);
  }
  std::vector<double> rel, s;
  Gather(call.y_true, rel);
  Gather(call.y_pred, s);
  const size_t n = s.size();
  std::vector<int64_t> gid(n, 0);
  if (groups) {
    int64_t idx[kMaxRank] = {};
    int64_t off = 0;
    for (size_t i = 0; i < n; ++i) {
      gid[i] = groups->data[off];
      for (int k = groups->rank - 1; k >= 0; --k) {
        off += groups->strides[k];
        if (++idx[k] < groups->shape[k]) break;
        off -= groups->shape[k] * groups->strides[k];
        idx[k] = 0;
      }
    }
  }
  std::vector<double> grad(n, 0.0);
  bool nan = false;
  for (size_t i = 0; i < n && !nan; ++i) nan = std::isnan(s[i]) || std::isnan(rel[i]);
  if (nan) {
    std::fill(grad.begin(), grad.end(), std::numeric_limits<double>::quiet_NaN());
    if (call.grad.has_value()) Scatter(grad, const_cast<View<T>&>(*call.grad));
    const ExactSum nan_sum = internal::ExactOf(std::numeric_limits<double>::quiet_NaN());
    return internal::Reduced(call.reduction, nan_sum, nan_sum, static_cast<int64_t>(n),
                             call.state);
  }
  // Items ordered by (group, relevance).
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return gid[a] != gid[b] ? gid[a] < gid[b] : rel[a] < rel[b];
  });
  const double m = o.margin;
  // Each group's sum is added exactly: the same bits for any split of the
  // items on group boundaries.
  ExactSum exact_total;
  double total = 0.0, all_pairs = 0.0, ordered_pairs = 0.0;
  // Per group: the items in score order give each item its score rank
  // (its Fenwick position) and, by two monotone sweeps, the rank bounds of
  // its active partners: positions >= lo[i] hold the j with
  // m - (s_i - s_j) > 0, positions < hi[i] those with m - (s_j - s_i) > 0.
  // No binary search in the hot loops.
  std::vector<std::pair<double, uint32_t>> by_score;
  std::vector<uint32_t> pos(n), lo(n), hi(n);
  for (size_t g0 = 0; g0 < n;) {
    size_t g1 = g0 + 1;
    while (g1 < n && gid[order[g1]] == gid[order[g0]]) ++g1;
    const size_t len = g1 - g0;
    all_pairs += 0.5 * static_cast<double>(len) * static_cast<double>(len - 1);
    by_score.resize(len);
    for (size_t k = 0; k < len; ++k) by_score[k] = {s[order[g0 + k]], order[g0 + k]};
    std::sort(by_score.begin(), by_score.end());
    for (size_t k = 0, a = 0, b = 0; k < len; ++k) {
      const uint32_t i = by_score[k].second;
      pos[i] = static_cast<uint32_t>(k);
      // The hinge's own test, m - (s_i - s_j) > 0, monotone in s_j: the
      // same rounding as the loss itself at the boundary.
      while (a < len && !(m - (s[i] - by_score[a].first) > 0)) ++a;
      while (b < len && m - (by_score[b].first - s[i]) > 0) ++b;
      lo[i] = static_cast<uint32_t>(a);
      hi[i] = static_cast<uint32_t>(b);
    }
    // Increasing relevance: i is the more relevant item of pairs with the
    // items inserted before its tie group.
    {
      Fenwick fw(len);
      int64_t inserted = 0;
      double inserted_sum = 0.0;
      for (size_t a = g0; a < g1;) {
        size_t b = a + 1;
        while (b < g1 && rel[order[b]] == rel[order[a]]) ++b;
        for (size_t k = a; k < b; ++k) {
          const uint32_t i = order[k];
          int64_t c;
          double sum;
          fw.Prefix(lo[i], &c, &sum);
          const int64_t cnt = inserted - c;
          const double ssum = inserted_sum - sum;
          total += static_cast<double>(cnt) * (m - s[i]) + ssum;
          grad[i] -= static_cast<double>(cnt);
          ordered_pairs += static_cast<double>(inserted);
        }
        for (size_t k = a; k < b; ++k) {
          const uint32_t i = order[k];
          fw.Add(pos[i], s[i]);
          ++inserted;
          inserted_sum += s[i];
        }
        a = b;
      }
    }
    // Decreasing relevance: i is the less relevant item of pairs with the
    // items inserted before (s_j < s_i + m).
    {
      Fenwick fw(len);
      for (size_t b = g1; b > g0;) {
        size_t a = b - 1;
        while (a > g0 && rel[order[a - 1]] == rel[order[b - 1]]) --a;
        for (size_t k = a; k < b; ++k) {
          const uint32_t i = order[k];
          int64_t c;
          double sum;
          fw.Prefix(hi[i], &c, &sum);
          grad[i] += static_cast<double>(c);
        }
        for (size_t k = a; k < b; ++k) fw.Add(pos[order[k]], 0.0);
        b = a;
      }
    }
    g0 = g1;
    exact_total.Add(total);
    total = 0.0;
  }
  // The mean divides by the pairs: NaN over none, with a zero gradient.
  const double den = o.normalization == PairNormalization::kAllPairs ? all_pairs : ordered_pairs;
  const double value = internal::Reduced(call.reduction, exact_total, internal::ExactOf(den),
                                         static_cast<int64_t>(n), call.state);
  const double scale = call.reduction == Reduction::kMean ? internal::MeanScale(den) : 1.0;
  if (call.grad.has_value()) {
    for (double& g : grad) g *= scale;
    Scatter(grad, const_cast<View<T>&>(*call.grad));
  }
  return value;
}

template double PairwiseRanking<float>(const Call<float>&, const View<const int64_t>*,
                                       const PairwiseRankingOptions&);
template double PairwiseRanking<double>(const Call<double>&, const View<const int64_t>*,
                                        const PairwiseRankingOptions&);

}  // namespace fastloss
