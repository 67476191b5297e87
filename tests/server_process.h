// A server subcommand of the built CLI (`sam serve`, `sam annotate`) run as a child process for
// the tests: its stderr goes to a log file, the port is read off its "listening on" line.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace sam::test {

class ServerProcess {
  public:
    // Runs SAM_CLI_PATH with `args` (the subcommand first, then "--port 0" among them), its
    // stderr into `log_path`, and waits up to a minute for it to listen (the model loads first).
    ServerProcess(const std::vector<std::string>& args, std::string log_path) : log_(std::move(log_path)) {
        std::vector<std::string> argv_s = {SAM_CLI_PATH};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        pid_ = fork();
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (!std::freopen(log_.c_str(), "w", stderr)) _exit(127);
            std::vector<char*> argv;
            for (auto& a : argv_s) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        const std::string listening = "listening on http://127.0.0.1:";
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string text = log();
            const size_t at = text.find(listening), end = text.find('/', at + listening.size());
            if (at != std::string::npos && end != std::string::npos) {
                port_ = std::stoi(text.substr(at + listening.size(), end - at - listening.size()));
                return;
            }
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "`sam " << args.front() << "` did not start; its log:\n" << log();
    }
    ~ServerProcess() { stop(); }
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    // SIGTERM, then SIGKILL after 5 s.
    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        for (int i = 0; i < 250; ++i) {
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        kill9();
    }
    // As a crash would end it.
    void kill9() {
        if (pid_ <= 0) return;
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

    int port() const { return port_; }
    const std::string& log_path() const { return log_; }
    std::string log() const { return read_file(log_); }
    httplib::Client client(int read_timeout_s = 120) const {
        httplib::Client c("127.0.0.1", port_);
        c.set_connection_timeout(10);
        c.set_read_timeout(read_timeout_s);
        c.set_write_timeout(30);
        return c;
    }

  private:
    pid_t pid_ = -1;
    int port_ = 0;
    std::string log_;
};

}  // namespace sam::test
