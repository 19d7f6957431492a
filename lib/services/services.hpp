#pragma once
// segx's processing services: fingerprint, dpi, compress and anonymize. Each is a
// dataplane::Service made by a factory in the registry of dataplane/service.hpp; this
// header only adds them. docs/services.md describes every service, its options and its
// result fields.

namespace segx::services {

/// Adds every service of this library to dataplane::ServiceRegistry::instance(). Call once
/// before loading a configuration (the loader checks chain entries against the registry).
/// Idempotent.
void register_services();

}  // namespace segx::services
