#include "service.hpp"

#include <systemd/sd-daemon.h>

#include <ctime>

namespace segx::app::service {

// sd_notify's result is not checked: a service manager that cannot be told changes
// nothing about what segx does, and without $NOTIFY_SOCKET there is nothing to tell.

void ready(const std::string& status) {
  sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const unsigned long long usec =
      static_cast<unsigned long long>(ts.tv_sec) * 1000000ull + ts.tv_nsec / 1000;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration", usec);
}

void stopping(const std::string& status) {
  sd_notify(0, ("STOPPING=1\nSTATUS=" + status).c_str());
}

}  // namespace segx::app::service
