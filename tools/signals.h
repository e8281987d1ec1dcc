// The daemon's own signals, read on one thread with signalfd (no handler,
// no global state): SIGHUP reopens the log file (logrotate's signal; it
// never unmounts), SIGUSR1 logs a snapshot of the counters. SIGTERM and
// SIGINT stay libfuse's: they end the session and the mount cleanly.
#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "common/status.h"

namespace dsfs {

class SignalThread {
 public:
  // Blocks SIGHUP and SIGUSR1 in the calling thread, so in every thread it
  // creates afterwards: call it before the daemon starts any thread, or a
  // thread that does not block them would take them with the default
  // action (SIGHUP: exit).
  static Status BlockSignals();

  // Starts the thread; on_hup and on_usr1 run on it, one at a time.
  static Result<std::unique_ptr<SignalThread>> Start(std::function<void()> on_hup,
                                                     std::function<void()> on_usr1);
  ~SignalThread();  // stops and joins the thread
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  SignalThread(int signal_fd, int stop_fd, std::function<void()> on_hup,
               std::function<void()> on_usr1);
  void Run();

  const int signal_fd_;
  const int stop_fd_;  // eventfd: written by the destructor
  const std::function<void()> on_hup_;
  const std::function<void()> on_usr1_;
  std::thread thread_;
};

}  // namespace dsfs
