// The registry (fastloss/registry.hpp) and what is generated from it, seen
// through the public API only: the header's own example, every row's entry
// point and options (field lists, defaults, checks), shapes of any integer
// type.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fastloss/fastloss.hpp"

namespace {

// fastloss.hpp's example, as written there.
TEST(HeaderExample, CompilesAndRuns) {
  const int n = 3;
  float y[] = {0.0f, 1.0f, 2.0f}, p[] = {0.5f, 1.0f, 4.0f}, g[3] = {};
  fastloss::Call<float> call;
  call.y_true = fastloss::View<const float>::Contiguous(y, {n});
  call.y_pred = fastloss::View<const float>::Contiguous(p, {n});
  call.grad   = fastloss::View<float>::Contiguous(g, {n});   // optional,
  // with its flag
  double v = fastloss::Huber(call, {/*delta=*/1.0});
  // r = 0.5, 0, 2: 0.125, 0, 1.5 (linear), mean 1.625 / 3.
  EXPECT_DOUBLE_EQ(v, (0.125 + 0.0 + 1.5) / 3.0);
  EXPECT_FLOAT_EQ(g[0], 0.5f / 3);
  EXPECT_FLOAT_EQ(g[1], 0.0f);
  EXPECT_FLOAT_EQ(g[2], 1.0f / 3);
}

TEST(View, ExtentsOfAnyIntegerType) {
  float a[6] = {};
  const std::size_t rows = 2, cols = 3;
  const auto v = fastloss::View<float>::Contiguous(a, {rows, cols});
  EXPECT_EQ(v.rank, 2);
  EXPECT_EQ(v.shape[0], 2);
  EXPECT_EQ(v.strides[0], 3);
  const int64_t r64 = 6;
  EXPECT_EQ(fastloss::View<float>::Contiguous(a, {r64}).size(), 6);
  EXPECT_EQ(fastloss::View<float>::Contiguous(a, {6u}).size(), 6);
  EXPECT_THROW(fastloss::View<float>::Contiguous(a, {std::size_t{1} << 63}), fastloss::Error);
}

// One row's checks (a function, so that GoogleTest's macros expand once).
template <class Options>
void CheckRow(const char* name, std::set<std::string>& names) {
  EXPECT_TRUE(names.insert(name).second) << name << " is registered twice";
  EXPECT_GT(std::string(Options::kSummary).size(), 10u) << name;
  EXPECT_GT(std::string(Options::kFormula).size(), 10u) << name;
  const Options defaults{};
  EXPECT_NO_THROW(fastloss::CheckOptions(name, defaults)) << name;
  const std::vector<std::string> fields = fastloss::FieldNames<Options>();
  EXPECT_EQ(std::set<std::string>(fields.begin(), fields.end()).size(), fields.size())
      << name << ": a field listed twice";
}

TEST(Registry, EveryRowIsDocumentedAndItsDefaultsPassItsChecks) {
  std::set<std::string> names;
#define FASTLOSS_CHECK_ROW(Name, name, driver, aliases, true_name, pred_name) \
  CheckRow<fastloss::Name##Options>(#name, names);
  FASTLOSS_LOSSES(FASTLOSS_CHECK_ROW)
#undef FASTLOSS_CHECK_ROW
  EXPECT_GE(names.size(), 29u);
  EXPECT_TRUE(names.count("huber") && names.count("sparse_categorical_cross_entropy"));
}

TEST(Registry, EveryMultiInputRowIsDocumentedAndItsDefaultsPassItsChecks) {
  std::set<std::string> names;
#define FASTLOSS_CHECK_ROW(Name, name, kind, aliases, args, target) \
  CheckRow<fastloss::Name##Options>(#name, names);                 \
  EXPECT_NE(std::string(args).find(target), std::string::npos) << #name;
  FASTLOSS_MULTI_LOSSES(FASTLOSS_CHECK_ROW)
#undef FASTLOSS_CHECK_ROW
  EXPECT_EQ(names.size(), 12u);
  EXPECT_TRUE(names.count("gaussian_nll") && names.count("margin_ranking"));
  // One name space: no loss of several inputs is also a single-input row.
#define FASTLOSS_NOT_MULTI(Name, name, ...) EXPECT_EQ(names.count(#name), 0u) << #name;
  FASTLOSS_LOSSES(FASTLOSS_NOT_MULTI)
#undef FASTLOSS_NOT_MULTI
}

TEST(Registry, MultiInputOptionsKeepTheirChecks) {
  auto message = [](auto f) {
    try {
      f();
    } catch (const fastloss::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  fastloss::TripletMarginOptions t;
  t.p = 0.0;
  EXPECT_EQ(message([&] { fastloss::CheckOptions("triplet_margin", t); }),
            "triplet_margin: p must be a finite number > 0, got 0");
  fastloss::CosineEmbeddingOptions c;
  c.margin = 1.5;
  EXPECT_EQ(message([&] { fastloss::CheckOptions("cosine_embedding", c); }),
            "cosine_embedding: margin must be in [-1, 1], got 1.5");
  fastloss::ContrastivePairsOptions cp;
  cp.eps = -1.0;
  EXPECT_EQ(message([&] { fastloss::CheckOptions("contrastive_pairs", cp); }),
            "contrastive_pairs: eps must be a finite number >= 0, got -1");
  fastloss::L2PenaltyOptions l2;
  l2.lam = -0.5;
  EXPECT_EQ(message([&] { fastloss::CheckOptions("l2_penalty", l2); }),
            "l2_penalty: lam must be a finite number >= 0, got -0.5");
  fastloss::GradientPenaltyOptions gp;
  gp.target = std::numeric_limits<double>::infinity();
  EXPECT_EQ(message([&] { fastloss::CheckOptions("gradient_penalty", gp); }),
            "gradient_penalty: target must be a finite number, got inf");
  // The old signatures are overloads of the options ones.
  const float w[3] = {1, 2, 3};
  const auto view = fastloss::View<const float>::Contiguous(w, {3});
  fastloss::L2PenaltyOptions o;
  o.lam = 0.5;
  EXPECT_EQ(fastloss::L2Penalty(view, 0.5), fastloss::L2Penalty(view, o));
}

TEST(Registry, CheckOptionsNamesTheLossAndTheField) {
  fastloss::HuberOptions o;
  o.delta = 0.0;
  try {
    fastloss::CheckOptions("huber", o);
    FAIL() << "no error";
  } catch (const fastloss::Error& e) {
    EXPECT_EQ(std::string(e.what()), "huber: delta must be a finite number > 0, got 0");
  }
  fastloss::BinaryFocalOptions f;
  f.alpha = 2.0;
  try {
    fastloss::CheckOptions("binary_focal", f);
    FAIL() << "no error";
  } catch (const fastloss::Error& e) {
    EXPECT_EQ(std::string(e.what()), "binary_focal: alpha must be in [0, 1] (or None), got 2");
  }
  f.alpha.reset();  // None: not checked
  EXPECT_NO_THROW(fastloss::CheckOptions("binary_focal", f));
  fastloss::TverskyOptions t;
  t.beta = -1.0;
  EXPECT_THROW(fastloss::CheckOptions("tversky", t), fastloss::Error);
}

TEST(Registry, EntryPointsCheckOptionsBeforeWriting) {
  float y[4] = {0, 1, 0, 1}, p[4] = {0.2f, 0.8f, 0.4f, 0.6f}, g[4] = {7, 7, 7, 7};
  fastloss::Call<float> call;
  call.y_true = fastloss::View<const float>::Contiguous(y, {4});
  call.y_pred = fastloss::View<const float>::Contiguous(p, {4});
  call.grad = fastloss::View<float>::Contiguous(g, {4});
  fastloss::QuantileOptions q;
  q.q = 1.5;
  EXPECT_THROW(fastloss::Quantile(call, q), fastloss::Error);
  for (float x : g) EXPECT_EQ(x, 7.0f);
  fastloss::ElementwiseCombination c;
  EXPECT_THROW(c.Add(1.0, q), fastloss::Error);
  EXPECT_EQ(c.size(), 0);
}

}  // namespace

// Optional inputs and outputs are std::optional views: an output is written
// exactly when a view was assigned, and class_weights reach only the losses
// whose options list them.
TEST(Registry, OptionalViewsAndClassWeights) {
  const std::vector<double> y = {0.0, 1.0, 0.0, 1.0}, p = {0.5, 0.5, 2.0, -1.0};
  const std::vector<double> cw = {1.0, 2.0};
  std::vector<double> g(4, 7.0);
  fastloss::Call<double> call;
  call.y_true = fastloss::View<const double>::Contiguous(y.data(), {4});
  call.y_pred = fastloss::View<const double>::Contiguous(p.data(), {4});
  EXPECT_FALSE(call.grad.has_value());
  fastloss::Mse(call);
  EXPECT_EQ(g, std::vector<double>(4, 7.0));
  call.grad = fastloss::View<double>::Contiguous(g.data(), {4});
  fastloss::Mse(call);
  EXPECT_EQ(g[0], 2.0 * (0.5 - 0.0) / 4);
  call.class_weights = fastloss::View<const double>::Contiguous(cw.data(), {2});
  try {
    fastloss::Mse(call);
    ADD_FAILURE() << "class_weights accepted by mse";
  } catch (const fastloss::Error& e) {
    EXPECT_EQ(std::string(e.what()), "mse: class_weights is not an argument of this loss");
  }
  call.y_true = fastloss::View<const double>::Contiguous(y.data(), {2, 2});
  call.y_pred = fastloss::View<const double>::Contiguous(p.data(), {2, 2});
  call.grad = fastloss::View<double>::Contiguous(g.data(), {2, 2});
  EXPECT_THROW(fastloss::CategoricalCrossEntropy(call), fastloss::Error);
  call.class_weights.reset();
  EXPECT_NO_THROW(fastloss::CategoricalCrossEntropy(call));
}
