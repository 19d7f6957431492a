// libFuzzer target: HTTP/1.1 request reading (http/request_reader.hpp), the bytes a client
// sends before segx's routes see anything. The first input byte picks how the rest arrives
// (pieces of 1 to 256 bytes, as a socket would deliver them); requests are read one after the
// other (pipelining) until the bytes end or one is refused. The reader promises: no crash or
// undefined behaviour, it never takes more than it was given, a body never exceeds the limit,
// a refusal is one of the documented statuses, and the split never changes the outcome.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_reader.hpp"

namespace {

using namespace segx::http;

struct Outcome {
  std::vector<std::string> requests;  // method, target, body of each complete request
  int refused = 0;                    // the status of the refusal that ended it, or 0
  bool operator==(const Outcome&) const = default;
};

Outcome read_all(std::string_view bytes, size_t piece) {
  Limits limits;
  limits.body_limit = 64;
  limits.header_limit = 512;
  Outcome out;
  size_t start = 0;  // first byte of the current request
  size_t have = 0;   // bytes delivered so far
  for (int n = 0; n < 64 && start < bytes.size(); ++n) {
    RequestReader reader(limits, "fuzz");
    size_t taken = start;
    RequestReader::Step step = RequestReader::Step::more;
    for (;;) {
      if (step == RequestReader::Step::more) {
        if (have == bytes.size()) return out;  // the bytes ended mid-request
        have = std::min(bytes.size(), have + piece);
      }
      size_t used = 0;
      step = reader.feed(bytes.substr(taken, have - taken), used);
      if (used > have - taken) std::abort();
      taken += used;
      if (step == RequestReader::Step::refused) {
        const int s = reader.refusal().status;
        if (s != 400 && s != 413 && s != 415 && s != 431 && s != 501) std::abort();
        if (reader.refusal().code.empty() || reader.refusal().detail.empty()) std::abort();
        out.refused = s;
        return out;
      }
      if (step == RequestReader::Step::complete) break;
    }
    Incoming in = reader.take();
    if (in.request.body.size() > limits.body_limit) std::abort();
    if (in.version != 10 && in.version != 11) std::abort();
    out.requests.push_back(in.request.method + " " + in.request.target + " " + in.request.body);
    start = taken;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = static_cast<size_t>(data[0]) + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  const Outcome split = read_all(bytes, piece);
  // All at once must read the same requests and end the same way.
  if (!(read_all(bytes, bytes.size() + 1) == split)) std::abort();
  return 0;
}
