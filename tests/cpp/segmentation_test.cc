// The overlap losses (dice, jaccard, tversky, focal tversky; the group driver,
// drivers/groups/) against the double reference of segmentation_reference.h:
// float and double, every reduction, weights broadcast to the losses' shape,
// strided / transposed / reversed operands, every axes choice, a batch of
// images, perfect and empty masks. Groups beyond the driver's chunk size, the
// errors, empty inputs, NaN, threads and SIMD targets: structured_test.cc.
#include "segmentation_reference.h"

namespace fastloss_test {
namespace {

TEST(StructuredOverlap, MatchesReference) {
  SweepOverlap<float>(false);
  SweepOverlap<double>(false);
}

// The Dice gradient over a batch of single-channel images: axes {1, 2, 3} of
// (4, 1, 16, 16), one score per image.
template <typename T>
void CheckDiceImages() {
  for (const char* which : {"dice", "dice_logits", "dice_squared"}) {
    for (const OvConfig& c : OvConfigs()) {
      if (c.name != which) continue;
      for (const Opts& o : {Opts{Layout::kContiguous, Reduction::kMean, false, 1, false},
                            Opts{Layout::kContiguous, Reduction::kNone, true, 2, false},
                            Opts{Layout::kEveryOther, Reduction::kSum, true, 3, false},
                            Opts{Layout::kTransposed, Reduction::kMean, true, 4, false}}) {
        OverlapCase<T>(c, {"axes_1_2_3", false, {1, 2, 3}}, {4, 1, 16, 16}, o);
      }
    }
  }
}

TEST(StructuredOverlap, DiceGradientOverImages) {
  CheckDiceImages<float>();
  CheckDiceImages<double>();
}

template <typename T>
void CheckPerfectScores() {
  SCOPED_TRACE(DtypeName<T>());
  // Binary masks predicted exactly: TI = 1 exactly, loss 0 and gradient 0
  // (focal with gamma < 1 would otherwise be inf * 0).
  const std::vector<int64_t> shape = {2, 8};
  std::vector<T> y = {1, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0};
  std::vector<T> g(16, T(7)), l(2, T(7));
  Call<T> call;
  call.y_true = CView(y, shape);
  call.y_pred = CView(y, shape);
  call.grad = MView(g, shape);
  call.losses = MView(l, {2});
  call.reduction = Reduction::kNone;
  fastloss::FocalTverskyOptions o;
  o.all_axes = false;
  o.axes = {1};
  EXPECT_EQ(fastloss::FocalTversky(call, o), 0.0);
  for (T v : l) EXPECT_EQ(v, T(0));
  for (T v : g) EXPECT_EQ(v, T(0));
  fastloss::DiceOptions d;
  d.all_axes = false;
  d.axes = {1};
  EXPECT_EQ(fastloss::Dice(call, d), 0.0);
  for (T v : l) EXPECT_EQ(v, T(0));
  // All-zero masks and predictions: loss 0 with smooth > 0, NaN with 0.
  std::vector<T> z(16, T(0));
  call.y_true = CView(z, shape);
  call.y_pred = CView(z, shape);
  fastloss::JaccardOptions j;
  j.all_axes = false;
  j.axes = {-1};
  fastloss::Jaccard(call, j);
  for (T v : l) EXPECT_EQ(v, T(0));
  for (T v : g) EXPECT_TRUE(std::isfinite(static_cast<double>(v)));
  j.smooth = 0;
  fastloss::Jaccard(call, j);
  for (T v : l) EXPECT_TRUE(std::isnan(static_cast<double>(v))) << v;
}

TEST(StructuredOverlap, PerfectAndEmptyMasks) {
  CheckPerfectScores<float>();
  CheckPerfectScores<double>();
}

}  // namespace
}  // namespace fastloss_test
