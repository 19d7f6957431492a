#pragma once
// segx under systemd (Type=notify): what the service manager is told, through sd_notify(3)
// from libsystemd. Without $NOTIFY_SOCKET (not started by systemd) every call does nothing.

#include <string>

namespace segx::app::service {

/// READY=1 with a STATUS= line: the lcores run and the API and /metrics are served.
/// systemd considers the start finished (`systemctl start` returns) only now.
void ready(const std::string& status);

/// RELOADING=1 (with MONOTONIC_USEC, which systemd 253's notify-reload needs): a reload
/// begins; call ready() when it has been applied or refused. For the configuration reload
/// of issue 17; SIGHUP only logs that reload is not yet supported until then.
void reloading();

/// STOPPING=1: shutdown has begun (drain, close ports, report).
void stopping(const std::string& status);

}  // namespace segx::app::service
