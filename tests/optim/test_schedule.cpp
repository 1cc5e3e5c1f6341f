// Learning-rate schedules against the rates PyTorch's schedulers give (tests/golden/fixtures/
// lr_schedules.bin, made by tools/make_golden.py), and their option checks.
#include "support/golden_io.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

using testing::GoldenFile;

struct Case {
  const char* name;
  LrSchedule::Kind kind;
  int64_t epochs, steps_per_epoch;
};

TEST(LrSchedules, MatchPyTorchSchedulers) {
  const GoldenFile f(std::string(CONVNET_GOLDEN_DIR) + "/lr_schedules.bin");
  using K = LrSchedule::Kind;
  const Case cases[] = {{"step", K::Step, 10, 1},
                        {"multistep", K::MultiStep, 10, 1},
                        {"exponential", K::Exponential, 10, 1},
                        {"cosine", K::Cosine, 14, 1},
                        {"cosine_run", K::Cosine, 8, 1},
                        {"onecycle", K::OneCycle, 3, 7},
                        {"warmup_cosine", K::Cosine, 10, 1},
                        {"warmup_step", K::Step, 8, 1}};
  for (const Case& c : cases) {
    const std::string n = c.name;
    auto setting = [&](const std::string& key, double otherwise) {
      return f.has(n + "." + key) ? f[n + "." + key].scalar() : otherwise;
    };
    LrSchedule s;
    s.kind = c.kind;
    s.gamma = setting("gamma", s.gamma);
    s.step_size = static_cast<int64_t>(setting("step_size", 1));
    if (f.has(n + ".milestones"))
      for (double m : f[n + ".milestones"].data) s.milestones.push_back(static_cast<int64_t>(m));
    s.min_lr = setting("min_lr", 0);
    // cosine_run leaves T_max to the run's length, as the CLI's --schedule cosine does.
    s.t_max = n == "cosine_run" ? 0 : static_cast<int64_t>(setting("t_max", 0));
    s.pct_start = setting("pct_start", s.pct_start);
    s.div_factor = setting("div_factor", s.div_factor);
    s.final_div_factor = setting("final_div_factor", s.final_div_factor);
    s.warmup_epochs = static_cast<int64_t>(setting("warmup_epochs", 0));
    s.warmup_start = setting("warmup_start", s.warmup_start);
    s.validate();
    const double lr0 = f[n + ".lr0"].scalar();
    const std::vector<double>& want = f[n + ".rates"].data;
    ASSERT_EQ(static_cast<int64_t>(want.size()), c.epochs * c.steps_per_epoch) << n;
    for (int64_t e = 0; e < c.epochs; ++e)
      for (int64_t t = 0; t < c.steps_per_epoch; ++t) {
        const double got = s.rate(lr0, e, t, c.steps_per_epoch, c.epochs);
        const double expected = want[static_cast<size_t>(e * c.steps_per_epoch + t)];
        EXPECT_NEAR(got, expected, 1e-12 * lr0) << n << " epoch " << e << " step " << t;
      }
  }
}

TEST(LrSchedules, NamesAndOptionChecks) {
  EXPECT_EQ(schedule_kind("onecycle"), LrSchedule::Kind::OneCycle);
  EXPECT_EQ(schedule_name(LrSchedule::Kind::MultiStep), "multistep");
  const auto message = testing::error_of;
  EXPECT_EQ(message([] { schedule_kind("linear"); }),
            "unknown learning-rate schedule 'linear' (known: constant, step, multistep, "
            "exponential, cosine, onecycle)");
  LrSchedule s;
  s.kind = LrSchedule::Kind::MultiStep;
  EXPECT_EQ(message([&] { s.validate(); }), "schedule: multistep needs milestones");
  s.milestones = {5, 3};
  EXPECT_EQ(message([&] { s.validate(); }),
            "schedule: milestones must be increasing epochs >= 1, got 3 after 5");
  s = LrSchedule{};
  s.kind = LrSchedule::Kind::OneCycle;
  s.warmup_epochs = 2;
  EXPECT_EQ(message([&] { s.validate(); }),
            "schedule: onecycle warms up by itself; no separate warm-up");
  s = LrSchedule{};
  s.gamma = 0;
  EXPECT_EQ(message([&] { s.validate(); }), "schedule: gamma must be > 0, got 0");
  // Constant is constant; a one-step onecycle holds its peak instead of dividing by zero.
  EXPECT_EQ(LrSchedule{}.rate(0.3, 7, 2, 10, 9), 0.3);
  LrSchedule one;
  one.kind = LrSchedule::Kind::OneCycle;
  EXPECT_EQ(one.rate(0.3, 0, 0, 1, 1), 0.3);
}

}  // namespace
// depends_on_total() says exactly when the rates move with the run's length: the resumed-run
// note in convnet train relies on it.
TEST(LrSchedules, DependsOnTotalMatchesTheRates) {
  for (const auto kind :
       {LrSchedule::Kind::Constant, LrSchedule::Kind::Step, LrSchedule::Kind::MultiStep,
        LrSchedule::Kind::Exponential, LrSchedule::Kind::Cosine, LrSchedule::Kind::OneCycle}) {
    for (const int64_t t_max : {0, 6}) {
      LrSchedule s;
      s.kind = kind;
      s.milestones = {3};
      s.t_max = t_max;
      s.validate();
      bool moves = false;
      for (int64_t epoch = 0; epoch < 8; ++epoch)
        moves = moves || s.rate(0.1, epoch, 3, 10, 8) != s.rate(0.1, epoch, 3, 10, 12);
      EXPECT_EQ(s.depends_on_total(), moves) << schedule_name(kind) << " t_max " << t_max;
    }
  }
}

}  // namespace convnet
