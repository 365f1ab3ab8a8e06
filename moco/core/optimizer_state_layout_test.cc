#include "moco/core/optimizer_state_layout.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

OptimizerStateLayout AdamLayout() {
  return OptimizerStateLayout({"fc.weight", "fc.bias"}, {{2, 3}, {2}},
                              {{".exp_avg"}, {".exp_avg_sq"}, {".step", true}});
}

std::string Message(const absl::Status& s) { return std::string(s.message()); }

TEST(OptimizerStateLayoutTest, NamesAndShapes) {
  const OptimizerStateLayout layout = AdamLayout();
  EXPECT_EQ(layout.EntryName(0, 1), "fc.weight.exp_avg_sq");
  EXPECT_EQ(layout.EntryShape(0, 1), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(layout.EntryName(1, 2), "fc.bias.step");
  EXPECT_EQ(layout.EntryShape(1, 2), std::vector<int64_t>{});
  const OptimizerStateLayout sgd({"w"}, {{4}}, {{""}});
  EXPECT_EQ(sgd.EntryName(0, 0), "w");
}

TEST(OptimizerStateLayoutTest, MatchesCompleteParametersAndLeavesOthersFresh) {
  const OptimizerStateLayout layout = AdamLayout();
  NamedArrays state;
  state["fc.bias.exp_avg"] = HostArray({2}, {1, 2});
  state["fc.bias.exp_avg_sq"] = HostArray({2}, {3, 4});
  state["fc.bias.step"] = HostArray({}, {7});
  auto m = layout.Match(state);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)[0], (std::vector<const HostArray*>{nullptr, nullptr, nullptr}));
  EXPECT_EQ((*m)[1][0], &state.at("fc.bias.exp_avg"));
  EXPECT_EQ((*m)[1][2], &state.at("fc.bias.step"));
  EXPECT_TRUE(layout.Match({}).ok());
}

TEST(OptimizerStateLayoutTest, RejectsUnknownMisshapedAndIncompleteEntries) {
  const OptimizerStateLayout layout = AdamLayout();
  NamedArrays state;
  state["fc.weight"] = HostArray({2, 3});  // an SGD buffer given to AdamW
  auto m = layout.Match(state);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(m.status()), HasSubstr("'fc.weight'"));

  state.clear();
  state["fc.weight.exp_avg"] = HostArray({3, 2});
  EXPECT_THAT(Message(layout.Match(state).status()),
              HasSubstr("'fc.weight.exp_avg' has shape (3, 2); expected (2, 3)"));

  state.clear();
  state["fc.weight.exp_avg"] = HostArray({2, 3});
  state["fc.weight.step"] = HostArray({}, {1});
  EXPECT_THAT(Message(layout.Match(state).status()), HasSubstr("lacks the entry "
                                                               "'fc.weight.exp_avg_sq'"));
}

TEST(StepCountFromArrayTest, AcceptsExactPositiveIntegersOnly) {
  EXPECT_EQ(*StepCountFromArray(HostArray({}, {3}), "s"), 3);
  EXPECT_EQ(*StepCountFromArray(HostArray({}, {16777216.0f}), "s"), kMaxExactStepCount);
  for (float bad : {0.0f, -1.0f, 2.5f, 3e7f}) {
    const auto r = StepCountFromArray(HostArray({}, {bad}), "fc.bias.step");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(Message(r.status()), HasSubstr("'fc.bias.step'"));
  }
  EXPECT_FALSE(StepCountFromArray(HostArray({2}, {1, 1}), "s").ok());
}

}  // namespace
}  // namespace moco
