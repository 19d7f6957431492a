// libFuzzer target: the configuration loader (config::load_string) over arbitrary text.
// Whatever the YAML, loading returns diagnostics or a Config; it never throws, crashes or
// hangs, and a failed load always says why.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const segx::config::LoadResult r = segx::config::load_string(text, "fuzz.yaml");
  if (!r.ok() && r.diagnostics.empty()) std::abort();
  return 0;
}
