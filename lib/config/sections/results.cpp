// Section results: where segment records go.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "config/sections/context.hpp"

namespace segx::config::sections {

void read_results(Context& ctx, const Value& v) {
  MapReader rm(v);
  rm.read("file", ctx.c.results.file);
  rm.read("socket", ctx.c.results.socket);
  if (rm.valid() && ctx.c.results.file.empty() && ctx.c.results.socket.empty())
    v.error("results needs a file, a socket, or both");
  if (ctx.c.results.socket.size() >= 108)
    v.error("results.socket: a Unix socket path is at most 107 bytes");
}

}  // namespace segx::config::sections
