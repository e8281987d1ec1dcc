// A tiny HTTP/1.1 server for S3Store tests: listens on 127.0.0.1 on an
// ephemeral port and answers each request with the next step of a script
// (raw bytes, so a test can send short bodies, wrong headers, or nothing).
// One thread accepts, one thread per connection serves; everything stops
// and joins in the destructor. Test-only code.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace dsfs::testing {

class ScriptedHttpServer {
 public:
  enum class Action {
    kRespond,          // send the bytes, keep the connection
    kRespondAndClose,  // send the bytes, then close
    kHang,             // read the request, send raw (usually nothing), then nothing
                       // more (until the client leaves)
    kCloseNow,         // close without answering (a reset-like failure)
    kStallBody,        // read the request head but none of its body; never answer
  };
  struct Step {
    std::string raw;
    Action action = Action::kRespond;
  };
  struct Request {
    std::string method;
    std::string target;                          // "/bucket/key?query"
    std::map<std::string, std::string> headers;  // lower-cased names
    std::string body;  // Content-Length bytes (none for kStallBody)
  };

  // A complete reply. For HEAD, pass head=true: headers only, but
  // Content-Length still says body.size() (or content_length if >= 0).
  static Step Reply(int status, const std::string& body = "",
                    std::vector<std::pair<std::string, std::string>> headers = {},
                    bool head = false, long content_length = -1) {
    std::string raw = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
    for (const auto& [n, v] : headers) raw += n + ": " + v + "\r\n";
    raw += "Content-Length: " +
           std::to_string(content_length >= 0 ? static_cast<size_t>(content_length) : body.size()) +
           "\r\n\r\n";
    if (!head) raw += body;
    return {raw, Action::kRespond};
  }
  static Step S3ErrorReply(int status, const std::string& code, const std::string& message,
                           bool head = false) {
    std::string body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code +
                       "</Code><Message>" + message +
                       "</Message><RequestId>TESTREQ</RequestId></Error>";
    return Reply(status, body, {{"Content-Type", "application/xml"}}, head);
  }
  static Step Hang() { return {"", Action::kHang}; }
  // Sends the first `bytes` bytes of step's reply, then nothing more.
  static Step RespondThenHang(const Step& step, size_t bytes) {
    return {step.raw.substr(0, bytes), Action::kHang};
  }
  static Step CloseNow() { return {"", Action::kCloseNow}; }
  static Step StallBody() { return {"", Action::kStallBody}; }

  ScriptedHttpServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) return;
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~ScriptedHttpServer() {
    if (stop_pipe_[1] >= 0) {
      char c = 'x';
      (void)!::write(stop_pipe_[1], &c, 1);
    }
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> handlers;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handlers.swap(handlers_);
    }
    for (auto& t : handlers) t.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    for (int fd : stop_pipe_) {
      if (fd >= 0) ::close(fd);
    }
  }

  ScriptedHttpServer(const ScriptedHttpServer&) = delete;
  ScriptedHttpServer& operator=(const ScriptedHttpServer&) = delete;

  bool ok() const { return listen_fd_ >= 0 && acceptor_.joinable(); }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void Push(Step step) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.push_back(std::move(step));
  }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  size_t request_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.size();
  }
  int connections() const { return connections_.load(); }

 private:
  static const char* Reason(int status) {
    switch (status) {
      case 200:
        return "OK";
      case 204:
        return "No Content";
      case 206:
        return "Partial Content";
      case 400:
        return "Bad Request";
      case 403:
        return "Forbidden";
      case 404:
        return "Not Found";
      case 412:
        return "Precondition Failed";
      case 429:
        return "Too Many Requests";
      case 500:
        return "Internal Server Error";
      case 503:
        return "Service Unavailable";
      default:
        return "Status";
    }
  }

  // Waits until fd is readable or the server stops; false on stop.
  bool WaitReadable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    while (true) {
      int r = ::poll(fds, 2, -1);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 || (fds[1].revents & POLLIN) != 0) return false;
      if (fds[0].revents != 0) return true;
    }
  }

  void AcceptLoop() {
    while (WaitReadable(listen_fd_)) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      connections_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      handlers_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static void SendAll(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  void Serve(int fd) {
    std::string buf;
    while (true) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!WaitReadable(fd)) return Close(fd);
        char tmp[4096];
        ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0) return Close(fd);
        buf.append(tmp, static_cast<size_t>(n));
      }
      Request req = Parse(buf.substr(0, end));
      buf.erase(0, end + 4);
      Step step;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (script_.empty()) {
          step = {"HTTP/1.1 500 Script Exhausted\r\nContent-Length: 0\r\n\r\n",
                  Action::kRespondAndClose};
        } else {
          step = std::move(script_.front());
          script_.pop_front();
        }
      }
      if (step.action == Action::kStallBody) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          requests_.push_back(req);
        }
        // Until the server stops: the client's body fills the socket.
        pollfd stop = {stop_pipe_[0], POLLIN, 0};
        while (::poll(&stop, 1, -1) < 0 && errno == EINTR) {
        }
        return Close(fd);
      }
      // The body (Content-Length; requests here are never chunked).
      size_t body_len = 0;
      if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
        body_len = static_cast<size_t>(std::stoull(it->second));
      }
      while (buf.size() < body_len) {
        if (!WaitReadable(fd)) return Close(fd);
        char tmp[65536];
        ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
        if (n <= 0) {
          // The client gave up part-way: recorded with what arrived.
          req.body = buf;
          std::lock_guard<std::mutex> lock(mu_);
          requests_.push_back(req);
          return Close(fd);
        }
        buf.append(tmp, static_cast<size_t>(n));
      }
      req.body = buf.substr(0, body_len);
      buf.erase(0, body_len);
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(std::move(req));
      }
      switch (step.action) {
        case Action::kRespond:
          SendAll(fd, step.raw);
          break;
        case Action::kRespondAndClose:
          SendAll(fd, step.raw);
          return Close(fd);
        case Action::kCloseNow:
          return Close(fd);
        case Action::kStallBody:  // handled above
        case Action::kHang:
          SendAll(fd, step.raw);  // RespondThenHang's start of a reply
          // Until the client gives up (EOF) or the server stops.
          while (WaitReadable(fd)) {
            char tmp[512];
            if (::recv(fd, tmp, sizeof(tmp), 0) <= 0) break;
          }
          return Close(fd);
      }
    }
  }

  static void Close(int fd) {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
  }

  static Request Parse(const std::string& head) {
    Request r;
    size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    size_t sp1 = first.find(' ');
    size_t sp2 = first.find(' ', sp1 + 1);
    r.method = first.substr(0, sp1);
    r.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        size_t v = line.find_first_not_of(' ', colon + 1);
        r.headers[name] = v == std::string::npos ? "" : line.substr(v);
      }
      pos = e + 2;
    }
    return r;
  }

  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::thread acceptor_;
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::deque<Step> script_;            // guarded by mu_
  std::vector<Request> requests_;      // guarded by mu_
  std::vector<std::thread> handlers_;  // guarded by mu_
};

}  // namespace dsfs::testing
