// The per-stage cycle counters of the benchmark's build (lib/dataplane/stage_cycles.hpp).

#include "dataplane/stage_cycles.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string_view>

namespace segx::dataplane {
namespace {

TEST(StageCycles, EveryStageHasANameOfItsOwn) {
  std::set<std::string_view> names;
  for (size_t k = 0; k < stage_count; ++k) {
    const std::string_view name = stage_name(static_cast<Stage>(k));
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(names.insert(name).second) << name;
  }
}

TEST(StageCycles, LapsChargeEveryCycleToExactlyOneStage) {
  StageClock clock;
  clock.start();
  const uint64_t begin = clock.last;
  clock.lap(Stage::parse);
  clock.lap(Stage::other);
  clock.lap(Stage::parse);
  uint64_t sum = 0;
  for (const Counter& c : clock.cycles)
    sum += c.get();
  EXPECT_EQ(sum, clock.last - begin);
  EXPECT_EQ(clock.cycles[static_cast<size_t>(Stage::rx)].get(), 0u);
}

TEST(StageCycles, CompiledOutOfNormalBuilds) {
#ifdef SEGX_STAGE_CYCLES
  EXPECT_TRUE(stage_cycles_built);
#else
  EXPECT_FALSE(stage_cycles_built);
  // The macros expand to nothing: their arguments are not even looked at.
  SEGX_STAGE_START(no_such_plan);
  SEGX_STAGE(no_such_plan, parse);
#endif
}

}  // namespace
}  // namespace segx::dataplane
