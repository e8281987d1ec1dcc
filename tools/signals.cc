#include "tools/signals.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "common/posix.h"

namespace dsfs {
namespace {

sigset_t DaemonSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  return set;
}

}  // namespace

Status SignalThread::BlockSignals() {
  const sigset_t set = DaemonSignals();
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0) {
    return Status::IoError("cannot block SIGHUP/SIGUSR1: " + ErrnoText(rc));
  }
  return Status::Ok();
}

Result<std::unique_ptr<SignalThread>> SignalThread::Start(std::function<void()> on_hup,
                                                          std::function<void()> on_usr1) {
  const sigset_t set = DaemonSignals();
  const int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return Status::IoError("signalfd: " + ErrnoText(errno));
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) {
    const int err = errno;
    close(sfd);
    return Status::IoError("eventfd: " + ErrnoText(err));
  }
  std::unique_ptr<SignalThread> t(
      new SignalThread(sfd, efd, std::move(on_hup), std::move(on_usr1)));
  t->thread_ = std::thread([p = t.get()] { p->Run(); });
  return t;
}

SignalThread::SignalThread(int signal_fd, int stop_fd, std::function<void()> on_hup,
                           std::function<void()> on_usr1)
    : signal_fd_(signal_fd),
      stop_fd_(stop_fd),
      on_hup_(std::move(on_hup)),
      on_usr1_(std::move(on_usr1)) {}

SignalThread::~SignalThread() {
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) < 0) {
    // An eventfd write fails only when the counter would overflow: the
    // thread is being told to stop already.
  }
  if (thread_.joinable()) thread_.join();
  close(signal_fd_);
  close(stop_fd_);
}

void SignalThread::Run() {
  for (;;) {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    signalfd_siginfo info;
    while (read(signal_fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      if (info.ssi_signo == SIGHUP && on_hup_) on_hup_();
      if (info.ssi_signo == SIGUSR1 && on_usr1_) on_usr1_();
    }
  }
}

}  // namespace dsfs
