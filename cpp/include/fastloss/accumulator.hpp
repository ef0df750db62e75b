// fastloss: exact, order-free reduction state (streaming evaluation).
//
// A reduced loss is sum(w * l) / sum(w) (or the sum alone). Its state is the
// numerator, the denominator and a count. The kernels add their values in
// float64 blocks of kReductionBlock elements (rows, regions, ...); each block
// partial is then added *exactly* into an ExactSum, a fixed-point
// superaccumulator wide enough for every finite double (Neal, "Fast exact
// summation using small and large superaccumulators", arXiv:1505.05571).
// Adding two states is integer addition, so a state -- and the value it
// rounds to -- is the same bits for any batch split on block boundaries, any
// merge order or tree, and any thread or process count. A one-shot call folds
// its block partials the same way, so an accumulator fed the batches of an
// array gives the one-shot call's value, bit for bit.
//
//   fastloss::LossState state;                // one per stream (or thread)
//   for (auto& batch : batches) {
//     fastloss::Call<float> call = ...;       // the batch, Reduction kMean
//     call.state = &state;                    // adds the batch's sums
//     fastloss::Huber(call, options);
//   }
//   state.Merge(other_thread_state);          // exact, any order
//   double mean = state.Result(fastloss::Reduction::kMean);
//
// States travel as words (ToWords / FromWords): int64 values that are merged
// by adding them element by element (NumPy, MPI_SUM, a Dask reduction), up
// to 2^30 states at a time.
#ifndef FASTLOSS_ACCUMULATOR_HPP_
#define FASTLOSS_ACCUMULATOR_HPP_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fastloss/core.hpp"

namespace fastloss {

// The exact sum of any number of doubles (up to 2^62 of them), rounded once
// (to nearest, ties to even) by Round(). Non-finite terms are counted apart:
// the sum is NaN with a NaN term or with both infinities, +-inf with one
// kind of infinity.
class ExactSum {
 public:
  // Limb k holds the bits of weight 2^(32k - kBias) .. 2^(32k - kBias + 31);
  // the lowest limb reaches below 2^-1074 (the smallest double's bit) and
  // the top two limbs hold the carries of up to 2^63 terms of up to 2^1024.
  static constexpr int kLimbs = 68;
  static constexpr int kBias = 1088;
  // Words of ToWords: the limbs, then the NaN, +inf and -inf term counts.
  static constexpr int kWords = kLimbs + 3;

  void Add(double x) {
    if (terms_++ == 0) first_ = x;
    if (x == 0.0) return;
    if (!std::isfinite(x)) {
      ++(std::isnan(x) ? nan_ : (x > 0 ? pos_inf_ : neg_inf_));
      return;
    }
    int e = 0;
    const double f = std::frexp(std::fabs(x), &e);  // |x| = f 2^e, f in [0.5, 1)
    // |x| = m 2^(e - 53) with an integer m < 2^53; below 2^-1074 (subnormal
    // x) the exponent is raised and m is exact still.
    int lsb = e - 53;
    if (lsb < -1074) lsb = -1074;
    const uint64_t m = static_cast<uint64_t>(std::ldexp(f, e - lsb));
    const int bit = lsb + kBias;  // >= 14
    const int k = bit >> 5, shift = bit & 31;
    const uint64_t low = m << shift;  // bits 0..63 of m 2^shift
    const uint64_t high = shift ? m >> (64 - shift) : 0;  // bits 64..84
    const int64_t c0 = static_cast<int64_t>(low & 0xffffffffu);
    const int64_t c1 = static_cast<int64_t>(low >> 32);
    const int64_t c2 = static_cast<int64_t>(high);
    if (x > 0) {
      limbs_[k] += c0;
      limbs_[k + 1] += c1;
      limbs_[k + 2] += c2;
    } else {
      limbs_[k] -= c0;
      limbs_[k + 1] -= c1;
      limbs_[k + 2] -= c2;
    }
    // Each limb moves by less than 2^32 per term: carry before 2^31 terms.
    if (++pending_ == (int64_t{1} << 30)) Normalize();
  }

  void Merge(const ExactSum& o) {
    if (o.terms_ == 0) return;
    if (terms_ == 0) {
      *this = o;
      return;
    }
    if (o.terms_ == 1) {  // one term (a call of one block): add it
      Add(o.first_);
      return;
    }
    terms_ = 2;
    Normalize();
    ExactSum b = o;
    b.Normalize();
    for (int k = 0; k < kLimbs; ++k) limbs_[k] += b.limbs_[k];
    nan_ += o.nan_;
    pos_inf_ += o.pos_inf_;
    neg_inf_ += o.neg_inf_;
    Normalize();
  }

  // The sum times r >= 0, exactly (non-finite terms stay counted as they
  // are unless r is 0).
  void MultiplyBy(int64_t r) {
    if (r == 0) {
      *this = ExactSum();
      return;
    }
    if (r == 1) return;
    terms_ = 2;
    constexpr int64_t kSmall = int64_t{1} << 31;
    if (r < kSmall) {
      MultiplySmall(r);
      return;
    }
    ExactSum high = *this;  // r = high_r 2^31 + low_r
    high.MultiplyBy(r >> 31);
    high.MultiplySmall(int64_t{1} << 30);
    high.MultiplySmall(2);
    MultiplySmall(r & (kSmall - 1));
    Merge(high);
  }

  // The sum, correctly rounded to a double.
  double Round() const {
    if (terms_ == 1) return first_ + 0.0;  // one term: itself (+0 for -0)
    if (nan_ > 0 || (pos_inf_ > 0 && neg_inf_ > 0)) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    if (pos_inf_ > 0) return std::numeric_limits<double>::infinity();
    if (neg_inf_ > 0) return -std::numeric_limits<double>::infinity();
    ExactSum a = *this;
    a.Normalize();
    const bool negative = a.limbs_[kLimbs - 1] < 0;
    if (negative) {
      for (int64_t& l : a.limbs_) l = -l;
      a.Normalize();
    }
    int top = kLimbs - 1;
    while (top >= 0 && a.limbs_[top] == 0) --top;
    if (top < 0) return 0.0;
    // hi = limbs top and top-1 (weight of its bit 0: limb top-1's), then the
    // 64 bits from the leading one down, and whether any bit below is set.
    const auto limb = [&a](int k) -> uint64_t {
      return k >= 0 ? static_cast<uint64_t>(a.limbs_[k]) : 0;
    };
    const uint64_t hi = (limb(top) << 32) | limb(top - 1), third = limb(top - 2);
    int lead = 63;
    while (!((hi >> lead) & 1)) --lead;  // >= 32: limb top is not 0
    const int up = 63 - lead;            // < 32
    uint64_t bits = hi;
    bool sticky;
    if (up > 0) {
      bits = (hi << up) | (third >> (32 - up));
      sticky = (third & ((uint64_t{1} << (32 - up)) - 1)) != 0;
    } else {
      sticky = third != 0;
    }
    for (int k = top - 3; k >= 0 && !sticky; --k) sticky = a.limbs_[k] != 0;
    const int lsb_weight = 32 * (top - 1) - kBias - up;  // weight of bits' bit 0
    // Round the 64 bits to 53 (ties to even): subnormal sums are exact (the
    // terms are multiples of 2^-1074), so only normal results round here.
    uint64_t mant = bits >> 11;
    const uint64_t rest = bits & 0x7ff;
    if (rest > 0x400 || (rest == 0x400 && (sticky || (mant & 1)))) ++mant;
    const double r = std::ldexp(static_cast<double>(mant), lsb_weight + 11);
    return negative ? -r : r;
  }

  // The sum of x[0..n), correctly rounded: the bits of Round() of their
  // ExactSum. Up to kFewTerms finite terms take Shewchuk's exact expansion
  // (the non-overlapping partials of Python's math.fsum, and its
  // half-even correction across partials) and touch no limbs: a few tens
  // of nanoseconds where making and rounding an ExactSum costs hundreds.
  // More terms, a non-finite term or an overflowing partial take the limbs.
  static constexpr int64_t kFewTerms = 32;
  static double Sum(const double* x, int64_t n) {
    if (n <= kFewTerms) {
      double p[kFewTerms + 1];
      int m = 0;
      bool finite = true;
      for (int64_t j = 0; j < n && finite; ++j) {
        double v = x[j];
        int i = 0;
        for (int k = 0; k < m; ++k) {
          double y = p[k];
          if (std::fabs(v) < std::fabs(y)) std::swap(v, y);
          const double hi = v + y;
          const double lo = y - (hi - v);
          if (lo != 0.0) p[i++] = lo;
          v = hi;
        }
        m = i;
        if (v != 0.0) {
          finite = std::isfinite(v);  // NaN, inf, or a partial that overflowed
          p[m++] = v;
        }
      }
      if (finite) {
        double hi = 0.0, lo = 0.0;
        if (m > 0) {
          hi = p[--m];
          while (m > 0) {  // from the top, while the sum stays exact
            const double v = hi, y = p[--m];
            hi = v + y;
            lo = y - (hi - v);
            if (lo != 0.0) break;
          }
          // A tie at hi's last bit that the partials below break.
          if (m > 0 && ((lo < 0.0 && p[m - 1] < 0.0) || (lo > 0.0 && p[m - 1] > 0.0))) {
            const double y = lo * 2.0;
            const double v = hi + y;
            if (y == v - hi) hi = v;
          }
        }
        if (std::isfinite(hi)) return hi + 0.0;  // +0 for an exact zero, as Round
      }
    }
    ExactSum e;
    for (int64_t j = 0; j < n; ++j) e.Add(x[j]);
    return e.Round();
  }

  bool operator==(const ExactSum& o) const {
    ExactSum a = *this, b = o;
    a.Normalize();
    b.Normalize();
    return std::memcmp(a.limbs_, b.limbs_, sizeof(limbs_)) == 0 && a.nan_ == b.nan_ &&
           a.pos_inf_ == b.pos_inf_ && a.neg_inf_ == b.neg_inf_;
  }
  bool operator!=(const ExactSum& o) const { return !(*this == o); }

  // kWords int64 values; the words of several states add element-wise.
  void ToWords(int64_t* words) const {
    ExactSum a = *this;
    a.Normalize();
    std::memcpy(words, a.limbs_, sizeof(limbs_));
    words[kLimbs] = nan_;
    words[kLimbs + 1] = pos_inf_;
    words[kLimbs + 2] = neg_inf_;
  }
  // From ToWords' words (or sums of them); `name` prefixes the Error for
  // words no sum of states gives.
  static ExactSum FromWords(const int64_t* words, const char* name = "state") {
    ExactSum s;
    std::memcpy(s.limbs_, words, sizeof(limbs_));
    s.nan_ = words[kLimbs];
    s.pos_inf_ = words[kLimbs + 1];
    s.neg_inf_ = words[kLimbs + 2];
    s.terms_ = 2;
    for (int k = 0; k < kLimbs - 1; ++k) {
      if (s.limbs_[k] < 0 || s.limbs_[k] >= (int64_t{1} << 62)) {
        throw Error(std::string(name) + ": not the words of a state (limb " +
                    std::to_string(k) + " out of range)");
      }
    }
    if (s.nan_ < 0 || s.pos_inf_ < 0 || s.neg_inf_ < 0) {
      throw Error(std::string(name) + ": not the words of a state (negative count)");
    }
    s.Normalize();
    return s;
  }

 private:
  // Carries so that limbs 0 .. kLimbs-2 are in [0, 2^32) and the top limb
  // holds the sign.
  void Normalize() {
    for (int k = 0; k < kLimbs - 1; ++k) {
      const int64_t carry = limbs_[k] >> 32;  // floor division by 2^32
      limbs_[k] -= carry * (int64_t{1} << 32);
      limbs_[k + 1] += carry;
    }
    pending_ = 0;
  }

  // r < 2^31: each normalized limb times r stays below 2^63, carry included.
  void MultiplySmall(int64_t r) {
    Normalize();
    for (int64_t& l : limbs_) l *= r;
    Normalize();
  }

  int64_t limbs_[kLimbs] = {};
  int64_t nan_ = 0, pos_inf_ = 0, neg_inf_ = 0;
  int64_t pending_ = 0;  // terms since the last Normalize
  // Terms added (2 stands for "two or more", after a merge), and the first:
  // the sum of one term is that term, without the limbs.
  int64_t terms_ = 0;
  double first_ = 0.0;
};

// The state of a reduced loss over any number of calls: the exact sums of
// the numerator sum(w * l) and the denominator (sum(w), the count, or the
// loss's own), and the number of items (elements, rows, regions) seen.
// Set Call::state (LabelCall::state, ...) to add a call's sums to it.
//
// A region loss (Dice, Jaccard, Tversky, ...) whose regions span calls --
// its reduced axes include the first one, as axis=None does -- keeps the
// regions' sums instead: `sums` holds, region by region, the exact sum of
// each of the loss's kSums terms (Dice's I, Sy, Sp), so the score is the
// dataset's (the Dice of the summed intersections and totals), not a mean of
// the calls' scores. Its value is the loss's RegionResult (registry.hpp);
// `count` is then the number of elements seen.
struct LossState {
  ExactSum value;
  ExactSum weight;
  int64_t count = 0;
  std::vector<ExactSum> sums;  // regions x kSums, region-major; empty for others

  // Words of a state without region sums; each region sum adds
  // ExactSum::kWords.
  static constexpr int kWords = 2 * ExactSum::kWords + 1;
  size_t Words() const { return kWords + sums.size() * ExactSum::kWords; }

  void Merge(const LossState& o) {
    if (!o.sums.empty()) {
      if (sums.empty() && count == 0 && value == ExactSum() && weight == ExactSum()) {
        sums.resize(o.sums.size());
      }
      if (sums.size() != o.sums.size()) {
        throw Error("LossState::Merge: states of " + std::to_string(sums.size()) + " and " +
                    std::to_string(o.sums.size()) + " region sums");
      }
      for (size_t k = 0; k < sums.size(); ++k) sums[k].Merge(o.sums[k]);
    } else if (!sums.empty() && (o.count != 0 || o.value != ExactSum())) {
      throw Error("LossState::Merge: a state of region sums and one of values");
    }
    value.Merge(o.value);
    weight.Merge(o.weight);
    count += o.count;
  }
  // The value the reduction gives over everything added: kSum the
  // numerator, kMean numerator / denominator (NaN over nothing, as a call).
  double Result(Reduction reduction) const {
    if (reduction == Reduction::kNone) {
      throw Error("LossState::Result: reduction 'none' has no running value");
    }
    if (!sums.empty()) {
      throw Error("LossState::Result: a state of region sums has the value of its loss's "
                  "RegionResult");
    }
    const double num = value.Round();
    if (reduction == Reduction::kSum) return num;
    const double den = weight.Round();
    return den != 0.0 ? num / den : std::numeric_limits<double>::quiet_NaN();
  }
  bool operator==(const LossState& o) const {
    if (sums.size() != o.sums.size()) return false;
    for (size_t k = 0; k < sums.size(); ++k) {
      if (sums[k] != o.sums[k]) return false;
    }
    return value == o.value && weight == o.weight && count == o.count;
  }
  bool operator!=(const LossState& o) const { return !(*this == o); }
  // Words() int64 values: count, value's and weight's words, then the
  // region sums' words.
  void ToWords(int64_t* words) const {
    words[0] = count;
    value.ToWords(words + 1);
    weight.ToWords(words + 1 + ExactSum::kWords);
    for (size_t k = 0; k < sums.size(); ++k) sums[k].ToWords(words + kWords + k * ExactSum::kWords);
  }
  // From n words of ToWords (or sums of them): kWords, plus ExactSum::kWords
  // per region sum.
  static LossState FromWords(const int64_t* words, size_t n = kWords,
                             const char* name = "state") {
    if (n < static_cast<size_t>(kWords) || (n - kWords) % ExactSum::kWords != 0) {
      throw Error(std::string(name) + ": not the words of a state (" + std::to_string(n) +
                  " words)");
    }
    LossState s;
    if (words[0] < 0) throw Error(std::string(name) + ": not the words of a state (count)");
    s.count = words[0];
    s.value = ExactSum::FromWords(words + 1, name);
    s.weight = ExactSum::FromWords(words + 1 + ExactSum::kWords, name);
    s.sums.resize((n - kWords) / ExactSum::kWords);
    for (size_t k = 0; k < s.sums.size(); ++k) {
      s.sums[k] = ExactSum::FromWords(words + kWords + k * ExactSum::kWords, name);
    }
    return s;
  }
};

}  // namespace fastloss

#endif  // FASTLOSS_ACCUMULATOR_HPP_
