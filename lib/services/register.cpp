#include "dataplane/service.hpp"
#include "services.hpp"
#include "services_internal.hpp"

namespace segx::services {

void register_services() {
  auto& registry = dataplane::ServiceRegistry::instance();
  registry.add("fingerprint", fingerprint_factory());
  registry.add("dpi", dpi_factory());
  registry.add("compress", compress_factory());
  registry.add("anonymize", anonymize_factory());
}

}  // namespace segx::services
