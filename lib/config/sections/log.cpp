// Section log: the level of segx's log.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {

void read_log(Context& ctx, const Value& v) {
  MapReader lm(v);
  lm.read_choice("level", ctx.c.log.level, {"error", "warning", "notice", "info", "debug"});
}

}  // namespace segx::config::sections
