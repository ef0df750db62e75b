// Confusion counts and scores (fastloss/confusion.hpp) and the accuracy
// metrics of the registry (fastloss/evaluation.hpp), through the public API:
// counts against a direct count, any split and merge order giving the same
// counts, segments, scores against hand-computed values, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "fastloss/fastloss.hpp"

namespace {

using fastloss::Average;
using fastloss::ConfusionCall;
using fastloss::ConfusionCounts;
using fastloss::ConfusionOptions;
using fastloss::ConfusionTask;
using fastloss::Score;
using fastloss::ScoreOptions;
using fastloss::View;

struct Multiclass {
  int64_t n, C;
  std::vector<int64_t> labels;
  std::vector<float> scores;  // n x C
};

Multiclass MakeMulticlass(int64_t n, int64_t C, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> label(0, C - 1);
  std::normal_distribution<float> score(0.f, 1.f);
  Multiclass m{n, C, std::vector<int64_t>(n), std::vector<float>(n * C)};
  for (auto& l : m.labels) l = label(rng);
  for (auto& s : m.scores) s = score(rng);
  return m;
}

// The counts of rows [a, b), one segment.
ConfusionCounts Count(const Multiclass& m, int64_t a, int64_t b) {
  ConfusionCall<float> call;
  call.labels = View<const int64_t>::Contiguous(m.labels.data() + a, {b - a});
  call.y_pred = View<const float>::Contiguous(m.scores.data() + a * m.C, {b - a, m.C});
  ConfusionOptions o;
  o.task = ConfusionTask::kMulticlass;
  ConfusionCounts counts;
  fastloss::Confusion(call, o, counts);
  return counts;
}

TEST(Confusion, MulticlassCountsMatchADirectCount) {
  const Multiclass m = MakeMulticlass(5000, 7, 1);
  const ConfusionCounts counts = Count(m, 0, m.n);
  std::vector<int64_t> tp(m.C), fp(m.C), fn(m.C);
  for (int64_t i = 0; i < m.n; ++i) {
    int64_t k = 0;
    for (int64_t c = 1; c < m.C; ++c) {
      if (m.scores[i * m.C + c] > m.scores[i * m.C + k]) k = c;
    }
    if (k == m.labels[i]) {
      ++tp[k];
    } else {
      ++fn[m.labels[i]];
      ++fp[k];
    }
  }
  ASSERT_EQ(counts.segments, 1);
  ASSERT_EQ(counts.classes, m.C);
  for (int64_t c = 0; c < m.C; ++c) {
    EXPECT_EQ(counts.at(0, c, ConfusionCounts::kTp), tp[c]);
    EXPECT_EQ(counts.at(0, c, ConfusionCounts::kFp), fp[c]);
    EXPECT_EQ(counts.at(0, c, ConfusionCounts::kFn), fn[c]);
    EXPECT_EQ(counts.at(0, c, ConfusionCounts::kTn), m.n - tp[c] - fp[c] - fn[c]);
  }
}

TEST(Confusion, AnySplitAndMergeOrderGivesTheSameCounts) {
  const Multiclass m = MakeMulticlass(200000, 5, 2);  // several threads' tasks
  const ConfusionCounts whole = Count(m, 0, m.n);
  const int old = fastloss::GetNumThreads();
  for (int threads : {1, 2, 4}) {
    fastloss::SetNumThreads(threads);
    EXPECT_EQ(Count(m, 0, m.n).counts, whole.counts) << threads;
  }
  fastloss::SetNumThreads(old);
  ConfusionCounts a = Count(m, 0, 777), b = Count(m, 777, 123456), c = Count(m, 123456, m.n);
  ConfusionCounts abc = a, cba = c;
  abc.Merge(b);
  abc.Merge(c);
  cba.Merge(b);
  cba.Merge(a);
  EXPECT_EQ(abc.counts, whole.counts);
  EXPECT_EQ(cba.counts, whole.counts);
}

TEST(Confusion, SegmentsAreTheCountsOfEachSegment) {
  const Multiclass m = MakeMulticlass(3000, 4, 3);
  const std::vector<int64_t> offsets{0, 10, 10, 1500, 2999, 3000};
  ConfusionCall<float> call;
  call.labels = View<const int64_t>::Contiguous(m.labels.data(), {m.n});
  call.y_pred = View<const float>::Contiguous(m.scores.data(), {m.n, m.C});
  call.offsets = View<const int64_t>::Contiguous(offsets.data(), {offsets.size()});
  ConfusionOptions o;
  o.task = ConfusionTask::kMulticlass;
  ConfusionCounts counts;
  fastloss::Confusion(call, o, counts);
  ASSERT_EQ(counts.segments, 5);
  for (int64_t s = 0; s < 5; ++s) {
    const ConfusionCounts one = Count(m, offsets[s], offsets[s + 1]);
    for (int64_t c = 0; c < m.C; ++c) {
      for (int k = 0; k < 4; ++k) EXPECT_EQ(counts.at(s, c, k), one.at(0, c, k)) << s << c << k;
    }
  }
}

TEST(Confusion, BinaryThresholdOnLogitsAndIgnoredItems) {
  // sigmoid(x) > 0.75 where x > log(3) = 1.0986...
  const std::vector<double> y{1, 1, 0, 0, -1, 1};
  const std::vector<double> x{1.2, 1.0, 1.1, -5, 9, 1.09};
  ConfusionCall<double> call;
  call.y_true = View<const double>::Contiguous(y.data(), {y.size()});
  call.y_pred = View<const double>::Contiguous(x.data(), {x.size()});
  ConfusionOptions o;
  o.threshold = 0.75;
  o.from_logits = true;
  o.ignore_index = -1;
  ConfusionCounts counts;
  fastloss::Confusion(call, o, counts);
  EXPECT_EQ(counts.at(0, 0, ConfusionCounts::kTp), 1);  // 1.2
  EXPECT_EQ(counts.at(0, 0, ConfusionCounts::kFn), 2);  // 1.0, 1.09
  EXPECT_EQ(counts.at(0, 0, ConfusionCounts::kFp), 1);  // 1.1
  EXPECT_EQ(counts.at(0, 0, ConfusionCounts::kTn), 1);  // -5
}

TEST(Confusion, ScoresFollowScikitLearn) {
  ConfusionCounts counts;
  counts.Shape(1, 3);
  // class 0: tp 2, fp 1, fn 1; class 1: tp 0, fp 0, fn 2; class 2: tp 3, fp 2, fn 0
  const int64_t v[3][4] = {{2, 1, 6, 1}, {0, 0, 8, 2}, {3, 2, 5, 0}};
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 4; ++k) counts.at(0, c, k) = v[c][k];
  }
  ScoreOptions so;
  double out[3];
  so.average = Average::kNone;
  fastloss::ConfusionScore(counts, Score::kPrecision, so, out);
  EXPECT_DOUBLE_EQ(out[0], 2.0 / 3);
  EXPECT_EQ(out[1], 0.0);  // zero_division
  EXPECT_DOUBLE_EQ(out[2], 3.0 / 5);
  so.average = Average::kMacro;
  fastloss::ConfusionScore(counts, Score::kRecall, so, out);
  EXPECT_DOUBLE_EQ(out[0], (2.0 / 3 + 0.0 + 1.0) / 3);
  so.average = Average::kMicro;
  fastloss::ConfusionScore(counts, Score::kFBeta, so, out);
  EXPECT_DOUBLE_EQ(out[0], 2.0 * 5 / (2.0 * 5 + 3 + 3));
  so.average = Average::kWeighted;
  fastloss::ConfusionScore(counts, Score::kRecall, so, out);
  EXPECT_DOUBLE_EQ(out[0], (3 * (2.0 / 3) + 2 * 0.0 + 3 * 1.0) / 8);
  so.average = Average::kMacro;
  so.zero_division = std::nan("");
  fastloss::ConfusionScore(counts, Score::kPrecision, so, out);
  EXPECT_DOUBLE_EQ(out[0], (2.0 / 3 + 3.0 / 5) / 2);  // NaN classes left out
}

TEST(Confusion, BadInputIsAnErrorAndAddsNothing) {
  const Multiclass m = MakeMulticlass(100, 3, 4);
  ConfusionCounts counts = Count(m, 0, 50);
  const std::vector<int64_t> before = counts.counts;
  std::vector<int64_t> labels(m.labels.begin(), m.labels.begin() + 50);
  labels[49] = 3;  // out of range
  ConfusionCall<float> call;
  call.labels = View<const int64_t>::Contiguous(labels.data(), {50});
  call.y_pred = View<const float>::Contiguous(m.scores.data(), {50, m.C});
  ConfusionOptions o;
  o.task = ConfusionTask::kMulticlass;
  EXPECT_THROW(fastloss::Confusion(call, o, counts), fastloss::Error);
  EXPECT_EQ(counts.counts, before);
  std::vector<float> scores(m.scores.begin(), m.scores.begin() + 50 * m.C);
  scores[7] = std::nanf("");
  call.labels = View<const int64_t>::Contiguous(m.labels.data(), {50});
  call.y_pred = View<const float>::Contiguous(scores.data(), {50, m.C});
  EXPECT_THROW(fastloss::Confusion(call, o, counts), fastloss::Error);
  EXPECT_EQ(counts.counts, before);
  // Other classes than the counts': an Error.
  call.y_pred = View<const float>::Contiguous(m.scores.data(), {50, 1});
  std::vector<int64_t> zeros(50, 0);
  call.labels = View<const int64_t>::Contiguous(zeros.data(), {50});
  EXPECT_THROW(fastloss::Confusion(call, o, counts), fastloss::Error);
  EXPECT_EQ(counts.counts, before);
}

TEST(Accuracy, SparseTopKAndIgnoredRows) {
  // rows: scores and labels; rank of the label by a stable descending sort
  const std::vector<float> x{0.1f, 0.7f, 0.2f,   // label 1: rank 0
                             0.5f, 0.5f, 0.0f,   // label 1: tied with class 0 first: rank 1
                             0.9f, 0.05f, 0.05f, // label 2: rank 2
                             0.3f, 0.3f, 0.4f};  // ignored
  const std::vector<int64_t> t{1, 1, 2, -100};
  fastloss::LabelCall<float> call;
  call.labels = View<const int64_t>::Contiguous(t.data(), {4});
  call.y_pred = View<const float>::Contiguous(x.data(), {4, 3});
  fastloss::SparseCategoricalAccuracyOptions o;
  o.ignore_index = -100;
  EXPECT_DOUBLE_EQ(fastloss::SparseCategoricalAccuracy(call, o), 1.0 / 3);
  o.top_k = 2;
  EXPECT_DOUBLE_EQ(fastloss::SparseCategoricalAccuracy(call, o), 2.0 / 3);
  o.top_k = 3;
  EXPECT_DOUBLE_EQ(fastloss::SparseCategoricalAccuracy(call, o), 1.0);
  o.top_k = 0;
  EXPECT_THROW(fastloss::SparseCategoricalAccuracy(call, o), fastloss::Error);
}

TEST(Accuracy, HitsFromTheLossPass) {
  // The top-1 hits of a label-row loss's call: 1 where the label is the
  // first maximum, 0 where not and for ignored rows; the value is unchanged.
  const std::vector<float> x{0.1f, 0.7f, 0.2f, 0.5f, 0.5f, 0.0f, 0.9f, 0.05f, 0.05f,
                             0.3f, 0.3f, 0.4f};
  const std::vector<int64_t> t{1, 1, 0, -100};
  std::vector<float> hits(4, 7.f);
  fastloss::LabelCall<float> call;
  call.labels = View<const int64_t>::Contiguous(t.data(), {4});
  call.y_pred = View<const float>::Contiguous(x.data(), {4, 3});
  fastloss::SparseCategoricalCrossEntropyOptions o;
  o.from_logits = true;
  o.ignore_index = -100;
  const double plain = fastloss::SparseCategoricalCrossEntropy(call, o);
  call.hits = View<float>::Contiguous(hits.data(), {4});
  EXPECT_EQ(fastloss::SparseCategoricalCrossEntropy(call, o), plain);
  EXPECT_EQ(hits, (std::vector<float>{1.f, 0.f, 1.f, 0.f}));
}

TEST(Accuracy, BinaryThresholdIsExactInFloat32) {
  // 0.3f is just above 0.3 in float32: positive at threshold 0.3 (Keras'
  // float32 comparison would say the same); 0.29999998f is below.
  const std::vector<float> y{1, 0, 1};
  const std::vector<float> p{0.3f, 0.29999998f, 0.9f};
  fastloss::Call<float> call;
  call.y_true = View<const float>::Contiguous(y.data(), {3});
  call.y_pred = View<const float>::Contiguous(p.data(), {3});
  fastloss::BinaryAccuracyOptions o;
  o.threshold = 0.3;
  EXPECT_DOUBLE_EQ(fastloss::BinaryAccuracy(call, o), 1.0);
  o.threshold = 0.95;
  EXPECT_DOUBLE_EQ(fastloss::BinaryAccuracy(call, o), 1.0 / 3);
}

}  // namespace
