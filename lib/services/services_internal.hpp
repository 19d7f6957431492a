#pragma once
// Internal: each service's factory, added to the registry by register_services().

#include "dataplane/service.hpp"

namespace segx::services {

dataplane::ServiceFactory fingerprint_factory();
dataplane::ServiceFactory dpi_factory();
dataplane::ServiceFactory compress_factory();
dataplane::ServiceFactory anonymize_factory();

}  // namespace segx::services
