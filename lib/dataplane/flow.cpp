#include "dataplane/flow.hpp"

namespace segx::dataplane {

std::string_view close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::open:
      return "open";
    case CloseReason::packets:
      return "packets";
    case CloseReason::bytes:
      return "bytes";
    case CloseReason::tcp_fin:
      return "tcp_fin";
    case CloseReason::tcp_rst:
      return "tcp_rst";
    case CloseReason::time:
      return "time";
    case CloseReason::idle:
      return "idle";
    case CloseReason::evicted:
      return "evicted";
    case CloseReason::shutdown:
      return "shutdown";
    case CloseReason::reload:
      return "reload";
    case CloseReason::count_:
      break;
  }
  return "unknown";
}

}  // namespace segx::dataplane
