// Public entry points of the segmentation, detection, metric-learning and
// adversarial losses: option checks, then the shared drivers (multi-sum +
// finalize for the group losses, boxes, elementwise for the rest).
#include <cmath>
#include <cstdio>
#include <string>

#include "fastloss/fastloss.hpp"
#include "drivers/groups/boxes.h"
#include "internal/builders.h"
#include "drivers/checks.h"
#include "drivers/elementwise/elementwise.h"
#include "drivers/groups/groups.h"
#include "losses/losses.h"

namespace fastloss {
namespace {

using internal::GroupProblem;
using internal::RunGroupLoss;

std::string Num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}

template <typename T>
GroupProblem<T> PredictionProblem(const char* name, const Call<T>& call, uint64_t reduced,
                                  const char* desc) {
  internal::RejectSegments(name, call);
  GroupProblem<T> pr;
  pr.name = name;
  pr.in[0] = &call.y_true;
  pr.in[1] = &call.y_pred;
  pr.in_names[0] = "y_true";
  pr.in_names[1] = "y_pred";
  pr.reduced = reduced;
  pr.groups_desc = desc;
  pr.weights = call.weights ? &*call.weights : nullptr;
  pr.reduction = call.reduction;
  pr.grads[0] = call.grad ? const_cast<View<T>*>(&*call.grad) : nullptr;
  pr.grad_names[0] = internal::kGradArg;
  pr.losses = call.losses ? const_cast<View<T>*>(&*call.losses) : nullptr;
  pr.state = call.state;
  // Regions that include the first axis span the batches of a stream.
  pr.spanning = (reduced & 1) != 0 || call.y_pred.rank == 0;
  return pr;
}

// Runs an overlap functor on the multi-sum + finalize driver.
template <typename T>
struct OverlapSink {
  const Call<T>& call;
  template <class F>
  double operator()(const char* name, const F& f, uint64_t reduced) const {
    return RunGroupLoss(PredictionProblem(name, call, reduced,
                                          "the scores' shape (y_pred's shape without axis)"),
                        f);
  }
};

template <typename T>
double RunOverlap(const char* name, const Call<T>& call, const OverlapOptions& o,
                  const losses::OverlapScore& score) {
  internal::CheckView(name, "y_pred", call.y_pred);
  return internal::BuildOverlap(name, o, score, call.y_pred.rank, OverlapSink<T>{call});
}

// Every value of a view (any strides), in C order.
template <typename T, class F>
void ForEach(const View<const T>& v, F f) {
  const int64_t n = v.size();
  int64_t idx[kMaxRank] = {};
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, v.data[off]);
    for (int k = v.rank - 1; k >= 0; --k) {
      off += v.strides[k];
      if (++idx[k] < v.shape[k]) break;
      off -= v.shape[k] * v.strides[k];
      idx[k] = 0;
    }
  }
}

// Rows along the last axis of the inputs of a MultiCall.
template <typename T>
GroupProblem<T> RowProblem(const char* name, const MultiCall<T>& call, int inputs,
                           const char* const* names, const char* target_name) {
  GroupProblem<T> pr;
  pr.name = name;
  for (int k = 0; k < inputs; ++k) {
    internal::CheckView(name, names[k], call.inputs[k]);
    pr.in[k] = &call.inputs[k];
    pr.in_names[k] = names[k];
  }
  const int rank = call.inputs[0].rank;
  if (rank < 1) {
    throw Error(std::string(name) + ": " + names[0] +
                " must have at least one dimension (the vectors along the last axis)");
  }
  pr.reduced = uint64_t{1} << (rank - 1);
  pr.groups_desc = "the rows' shape (the inputs' shape without the last axis)";
  if (target_name) {
    internal::CheckView(name, target_name, call.target);
    pr.target = &call.target;
    pr.target_name = target_name;
  }
  pr.weights = call.weights ? &*call.weights : nullptr;
  pr.reduction = call.reduction;
  for (int k = 0; k < inputs; ++k) {
    pr.grads[k] = call.grads[k].has_value() ? const_cast<View<T>*>(&*call.grads[k]) : nullptr;
    pr.grad_names[k] = internal::kGradArg;
  }
  pr.losses = call.losses ? const_cast<View<T>*>(&*call.losses) : nullptr;
  pr.state = call.state;
  return pr;
}

// Runs `loss` on one score array named `arg` in errors; validate_only: checks only.
template <class Loss, typename T>
double RunScores(const char* name, const char* arg, const Loss& loss, const ScoreCall<T>& s,
                 Reduction r, bool validate_only = false);

template <typename T>
Call<T> ScoresAsCall(const ScoreCall<T>& s, Reduction reduction) {
  Call<T> c;
  c.y_true = s.scores;  // not read by the score functors
  c.y_pred = s.scores;
  c.weights = s.weights;
  c.reduction = reduction;
  c.grad = s.grad;
  c.losses = s.losses;
  c.state = s.state;
  return c;
}

template <class Loss, typename T>
double RunScores(const char* name, const char* arg, const Loss& loss, const ScoreCall<T>& s,
                 Reduction r, bool validate_only) {
  internal::ElementwiseExtras<T> e;
  e.validate_only = validate_only;
  return internal::WithArgumentNames(
      arg, arg, [&] { return internal::RunLoss(name, loss, ScoresAsCall(s, r), e); });
}

}  // namespace

// --- Segmentation ----------------------------------------------------------------

#define FASTLOSS_DEFINE_REGION_ENTRY(Name, name, driver, aliases, true_name, pred_name) \
  FASTLOSS_REGIONS_ONLY_##driver(                                                      \
      template <typename T> double Name(const Call<T>& call, const Name##Options& o) { \
        internal::CheckCall(#name, o, call);                                           \
        return RunOverlap(#name, call, o, internal::ScoreOf(o));                       \
      }                                                                                \
      template double Name<float>(const Call<float>&, const Name##Options&);           \
      template double Name<double>(const Call<double>&, const Name##Options&);)
FASTLOSS_LOSSES(FASTLOSS_DEFINE_REGION_ENTRY)
#undef FASTLOSS_DEFINE_REGION_ENTRY

namespace {
// The value of a state of region sums, with the functor of the options.
struct RegionResultSink {
  const LossState& state;
  Reduction reduction;
  double* losses;
  template <class F>
  double operator()(const char* name, const F& f, uint64_t /*reduced*/) const {
    return internal::GroupStateResult(name, state, &f, internal::GroupOpsFor<F, double>(),
                                      reduction, losses);
  }
};
}  // namespace

#define FASTLOSS_DEFINE_REGION_RESULT(Name, name, driver, aliases, true_name, pred_name)     \
  FASTLOSS_REGIONS_ONLY_##driver(                                                            \
      double RegionResult(const LossState& state, const Name##Options& o, Reduction r,       \
                          double* losses) {                                                  \
        CheckOptions(#name, o);                                                              \
        return internal::BuildOverlap(#name, o, internal::ScoreOf(o), kMaxRank,              \
                                      RegionResultSink{state, r, losses});                   \
      })
FASTLOSS_LOSSES(FASTLOSS_DEFINE_REGION_RESULT)
#undef FASTLOSS_DEFINE_REGION_RESULT

// --- Detection ----------------------------------------------------------------------

template <typename T>
struct BoxSink {
  const Call<T>& call;
  template <class F>
  double operator()(const char* name, const F& f) const {
    return internal::RunBoxLoss(name, f, call);
  }
};

template <typename T>
double BoxIou(const Call<T>& call, const BoxIouOptions& o) {
  internal::CheckCall("box_iou", o, call);
  return internal::WithArgumentNames("boxes_true", "boxes_pred",
                                     [&] { return internal::BuildBox(o, BoxSink<T>{call}); });
}

// --- Metric learning ----------------------------------------------------------------

template <typename T>
double CosineSimilarity(const Call<T>& call, const CosineSimilarityOptions& o) {
  const char* name = "cosine_similarity";
  internal::CheckCall(name, o, call);
  internal::CheckView(name, "y_pred", call.y_pred);
  const int rank = call.y_pred.rank;
  if (rank < 1) throw Error("cosine_similarity: y_pred must have at least one dimension");
  if (o.axis < -rank || o.axis >= rank) {
    throw Error("cosine_similarity: axis " + std::to_string(o.axis) +
                " is out of range for y_pred with " + std::to_string(rank) + " dimension" +
                (rank == 1 ? "" : "s"));
  }
  const int axis = o.axis < 0 ? o.axis + rank : o.axis;
  const GroupProblem<T> pr = PredictionProblem(
      name, call, uint64_t{1} << axis, "the rows' shape (y_pred's shape without axis)");
  losses::CosineSimilarity f;
  f.eps = o.eps;
  return RunGroupLoss(pr, f);
}

template <typename T>
double CosineEmbedding(const MultiCall<T>& call, const CosineEmbeddingOptions& o) {
  const char* name = "cosine_embedding";
  CheckOptions(name, o);
  const char* names[] = {"x1", "x2"};
  const GroupProblem<T> pr = RowProblem(name, call, 2, names, "y");
  ForEach(call.target, [&](int64_t i, T y) {
    if (!(y == T(1) || y == T(-1))) {
      throw Error("cosine_embedding: y must be 1 or -1, got " + Num(static_cast<double>(y)) +
                  " at position " +
                  internal::PositionString(i, call.target.shape, call.target.rank));
    }
  });
  losses::CosineEmbedding f;
  f.margin = o.margin;
  return RunGroupLoss(pr, f);
}

template <typename T>
double TripletMargin(const MultiCall<T>& call, const TripletMarginOptions& o) {
  const char* name = "triplet_margin";
  CheckOptions(name, o);
  if (o.squared && o.p != 2.0) {
    throw Error("triplet_margin: squared=True is the squared Euclidean distance and needs p = 2, got p = " +
                Num(o.p));
  }
  const char* names[] = {"anchor", "positive", "negative"};
  const GroupProblem<T> pr = RowProblem(name, call, 3, names, nullptr);
  auto run = [&](auto f) {
    f.phi.p = o.p;
    f.margin = o.margin;
    f.eps = o.squared ? 0.0 : o.eps;
    f.squared = o.squared;
    return RunGroupLoss(pr, f);
  };
  if (o.swap) {
    if (o.p == 1.0) return run(losses::TripletL1Swap{});
    if (o.p == 2.0) return run(losses::TripletL2Swap{});
    return run(losses::TripletLpSwap{});
  }
  if (o.p == 1.0) return run(losses::TripletL1{});
  if (o.p == 2.0) return run(losses::TripletL2{});
  return run(losses::TripletLp{});
}

template <typename T>
double ContrastivePairs(const MultiCall<T>& call, const ContrastivePairsOptions& o) {
  const char* name = "contrastive_pairs";
  CheckOptions(name, o);
  const char* names[] = {"x1", "x2"};
  const GroupProblem<T> pr = RowProblem(name, call, 2, names, "y_true");
  ForEach(call.target, [&](int64_t i, T y) {
    if (y < T(0) || y > T(1)) {
      throw Error("contrastive_pairs: y_true must be in [0, 1], got " +
                  Num(static_cast<double>(y)) + " at position " +
                  internal::PositionString(i, call.target.shape, call.target.rank));
    }
  });
  losses::ContrastivePairs f;
  f.f.margin = o.margin;
  f.eps = o.eps;
  return RunGroupLoss(pr, f);
}

// The entry points of the Elements rows of FASTLOSS_MULTI_LOSSES: the
// options' fields checked, the functor built (losses::Build<T>, beside the
// functor), the elementwise driver run with the second input as its aux
// operand.
#define FASTLOSS_ELEMENTS_ENTRY(Name, name, kind, aliases, args, target)                 \
  FASTLOSS_ELEMENTS_ONLY_##kind(                                                           \
      template <typename T> double Name(const MultiCall<T>& call, const Name##Options& o) { \
        CheckOptions(#name, o);                                                            \
        return losses::Build<T>(o, internal::ElementsSink<T>{#name, args, target, call});  \
      }                                                                                    \
      template double Name<float>(const MultiCall<float>&, const Name##Options&);          \
      template double Name<double>(const MultiCall<double>&, const Name##Options&);)
FASTLOSS_MULTI_LOSSES(FASTLOSS_ELEMENTS_ENTRY)
#undef FASTLOSS_ELEMENTS_ENTRY

// --- Adversarial losses and penalties ----------------------------------------------

namespace {

// Two score arrays reduced on their own and added: both calls are checked
// before either runs, so a bad second array leaves the first's outputs as
// they were.
template <class Loss, typename T>
double RunScorePair(const char* name, const char* real_name, const Loss& real_loss,
                    const ScoreCall<T>& real, const char* fake_name, const Loss& fake_loss,
                    const ScoreCall<T>& fake, Reduction r) {
  RunScores(name, real_name, real_loss, real, r, true);
  RunScores(name, fake_name, fake_loss, fake, r, true);
  // The real call's outputs are written before the fake call reads its
  // inputs or writes its own outputs: they share no memory with those.
  const bool real_losses = real.losses.has_value() && r == Reduction::kNone;
  const bool fake_losses = fake.losses.has_value() && r == Reduction::kNone;
  const std::string real_grad = std::string(real_name) + "'s grad (out)";
  const std::string real_loss_name = std::string(real_name) + "'s losses";
  const std::string fake_grad = std::string(fake_name) + "'s grad (out)";
  const std::string fake_loss_name = std::string(fake_name) + "'s losses";
  auto check_real_output = [&](const std::string& out_name, const View<T>& out) {
    internal::CheckOutputOverlap(name, out_name.c_str(), out, fake_name, fake.scores, false);
    if (fake.weights.has_value()) {
      internal::CheckOutputOverlap(name, out_name.c_str(), out,
                                   (std::string(fake_name) + "'s weights").c_str(), *fake.weights,
                                   false);
    }
    if (fake.grad.has_value()) {
      internal::CheckOutputOverlap(name, out_name.c_str(), out, fake_grad.c_str(), *fake.grad,
                                   false);
    }
    if (fake_losses) {
      internal::CheckOutputOverlap(name, out_name.c_str(), out, fake_loss_name.c_str(),
                                   *fake.losses, false);
    }
  };
  if (real.grad.has_value()) check_real_output(real_grad, *real.grad);
  if (real_losses) check_real_output(real_loss_name, *real.losses);
  return RunScores(name, real_name, real_loss, real, r) +
         RunScores(name, fake_name, fake_loss, fake, r);
}

}  // namespace

template <typename T>
double GanDiscriminator(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction r,
                        const GanDiscriminatorOptions&) {
  return RunScorePair("gan_discriminator", "real_logits", internal::GanRealLoss(), real,
                      "fake_logits", internal::GanFakeLoss(), fake, r);
}

template <typename T>
double GanGenerator(const ScoreCall<T>& fake, Reduction r, const GanGeneratorOptions& o) {
  return RunScores("gan_generator", "fake_logits", internal::GanGeneratorLoss(o.saturating), fake,
                   r);
}

template <typename T>
double WassersteinCritic(const ScoreCall<T>& real, const ScoreCall<T>& fake, Reduction r,
                         const WassersteinCriticOptions&) {
  return RunScorePair("wasserstein_critic", "real_scores", internal::WassersteinRealLoss(), real,
                      "fake_scores", internal::WassersteinFakeLoss(), fake, r);
}

template <typename T>
double WassersteinGenerator(const ScoreCall<T>& fake, Reduction r,
                            const WassersteinGeneratorOptions&) {
  return RunScores("wasserstein_generator", "fake_scores", internal::WassersteinGeneratorLoss(),
                   fake, r);
}

template <typename T>
double GradientPenalty(const ScoreCall<T>& s, Reduction r, const GradientPenaltyOptions& o) {
  const char* name = "gradient_penalty";
  CheckOptions(name, o);
  internal::CheckView(name, "gradients", s.scores);
  const int rank = s.scores.rank;
  if (rank < 1) {
    throw Error("gradient_penalty: gradients must have at least one dimension (the samples)");
  }
  const Call<T> call = ScoresAsCall(s, r);
  GroupProblem<T> pr;
  pr.name = name;
  pr.in[0] = &call.y_pred;
  pr.in_names[0] = "gradients";
  pr.reduced = (rank >= 64 ? ~uint64_t{0} : ((uint64_t{1} << rank) - 1)) & ~uint64_t{1};
  pr.groups_desc = "the samples' shape (N,)";
  pr.weights = s.weights ? &*s.weights : nullptr;
  pr.reduction = r;
  pr.grads[0] = s.grad ? const_cast<View<T>*>(&*s.grad) : nullptr;
  pr.grad_names[0] = internal::kGradArg;
  pr.losses = s.losses ? const_cast<View<T>*>(&*s.losses) : nullptr;
  pr.state = s.state;
  losses::SquaredNorm f;
  f.penalty = true;
  f.target = o.target;
  return RunGroupLoss(pr, f);
}

template <typename T>
double L2Penalty(const View<const T>& w, const L2PenaltyOptions& o, const View<T>* grad) {
  const char* name = "l2_penalty";
  CheckOptions(name, o);
  internal::CheckView(name, "arrays", w);
  GroupProblem<T> pr;
  pr.name = name;
  pr.in[0] = &w;
  pr.in_names[0] = "arrays";
  pr.reduced = w.rank >= 64 ? ~uint64_t{0} : ((uint64_t{1} << w.rank) - 1);
  pr.reduction = Reduction::kSum;
  pr.grads[0] = const_cast<View<T>*>(grad);
  pr.grad_names[0] = internal::kGradArg;
  losses::SquaredNorm f;
  f.penalty = false;
  f.lam = o.lam;
  return RunGroupLoss(pr, f);
}

#define FASTLOSS_INSTANTIATE_CALL(Name)                                   \
  template double Name<float>(const Call<float>&, const Name##Options&); \
  template double Name<double>(const Call<double>&, const Name##Options&);
FASTLOSS_INSTANTIATE_CALL(BoxIou)
FASTLOSS_INSTANTIATE_CALL(CosineSimilarity)
#undef FASTLOSS_INSTANTIATE_CALL

// The entry points of the rows of several inputs but PairwiseRanking's
// (drivers/ranking), by kind.
#define FASTLOSS_INSTANTIATE_Rows(Name, T) \
  template double Name<T>(const MultiCall<T>&, const Name##Options&);
#define FASTLOSS_INSTANTIATE_Elements(Name, T)  // with their generated entry points
#define FASTLOSS_INSTANTIATE_Pairs(Name, T)
#define FASTLOSS_INSTANTIATE_ScorePair(Name, T) \
  template double Name<T>(const ScoreCall<T>&, const ScoreCall<T>&, Reduction, const Name##Options&);
#define FASTLOSS_INSTANTIATE_Scores(Name, T) \
  template double Name<T>(const ScoreCall<T>&, Reduction, const Name##Options&);
#define FASTLOSS_INSTANTIATE_Samples(Name, T) FASTLOSS_INSTANTIATE_Scores(Name, T)
#define FASTLOSS_INSTANTIATE_Penalty(Name, T) \
  template double Name<T>(const View<const T>&, const Name##Options&, const View<T>*);
#define FASTLOSS_INSTANTIATE_MULTI(Name, name, kind, aliases, args, target) \
  FASTLOSS_INSTANTIATE_##kind(Name, float) FASTLOSS_INSTANTIATE_##kind(Name, double)
FASTLOSS_MULTI_LOSSES(FASTLOSS_INSTANTIATE_MULTI)
#undef FASTLOSS_INSTANTIATE_MULTI

}  // namespace fastloss
