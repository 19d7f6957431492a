// libFuzzer target: HTTP/1.1 request reading (http/request_reader.hpp), the bytes a client
// sends before segx's routes see anything. The first input byte picks how the rest arrives
// (pieces of 1 to 256 bytes, as a socket would deliver them); requests are read one after the
// other (pipelining) until the bytes end or one is refused. The reader promises: no crash or
// undefined behaviour, it never takes more than it was given, a body never exceeds the limit,
// a refusal is one of the documented statuses, and the split never changes what is read
// (it may change when a malformed request is refused, see below).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
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
    // Bytes of the previous delivery may be waiting already (pipelining).
    bool need = taken == have;
    for (;;) {
      if (need) {
        if (have == bytes.size()) return out;  // the bytes ended mid-request
        have = std::min(bytes.size(), have + piece);
      }
      size_t used = 0;
      const RequestReader::Step step = reader.feed(bytes.substr(taken, have - taken), used);
      if (used > have - taken) std::abort();
      taken += used;
      need = step == RequestReader::Step::more;
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
  const Outcome whole = read_all(bytes, bytes.size() + 1);
  // Reproducing one input by hand: SEGX_FUZZ_VERBOSE=1 prints both outcomes.
  if (std::getenv("SEGX_FUZZ_VERBOSE")) {
    for (const Outcome* o : {&split, &whole}) {
      std::fprintf(stderr, "%s: %zu requests, refused %d\n", o == &split ? "split" : "whole",
                   o->requests.size(), o->refused);
      for (const auto& r : o->requests)
        std::fprintf(stderr, "  %.200s\n", r.c_str());
    }
  }
  // Where the split may matter: Beast parses a request line as soon as it can, but after a
  // partial one waits for the end of the header before trying again, so a malformed request
  // may be refused at once when its bytes arrive together and later (at the header's end, its
  // size limit or its deadline) when they trickle in, for another reason. Either may thus stop
  // earlier with a refusal, but what both read is the same, and when neither refuses they
  // read the same requests.
  const size_t common = std::min(split.requests.size(), whole.requests.size());
  for (size_t i = 0; i < common; ++i)
    if (split.requests[i] != whole.requests[i]) std::abort();
  if (!split.refused && !whole.refused && split.requests.size() != whole.requests.size())
    std::abort();
  return 0;
}
