#include "server/client_connection.h"

#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

namespace sam::server {
namespace {

// The numeric host and port of a socket's own (peer = false) or remote address, as httplib
// formats Request::local_addr / remote_addr; false for a descriptor that is not a connected socket.
bool address_of(int fd, bool peer, std::string& host, int& port) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    if ((peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len)) != 0) return false;
    if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) return false;
    char h[NI_MAXHOST], p[NI_MAXSERV];
    if (getnameinfo(sa, len, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV) != 0) return false;
    host = h;
    port = std::atoi(p);
    return true;
}

bool is_request_socket(int fd, const httplib::Request& req) {
    std::string host;
    int port = -1;
    return address_of(fd, false, host, port) && port == req.local_port && host == req.local_addr &&
           address_of(fd, true, host, port) && port == req.remote_port && host == req.remote_addr;
}

}  // namespace

ClientConnection::ClientConnection(const httplib::Request& req) {
    if (req.local_port <= 0 || req.remote_port <= 0) return;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir("/proc/self/fd"), closedir);
    if (!dir) return;
    while (const dirent* e = readdir(dir.get())) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0') continue;  // "." and ".."
        if (is_request_socket(static_cast<int>(fd), req)) {
            fd_ = static_cast<int>(fd);
            return;
        }
    }
}

bool ClientConnection::closed() const {
    if (fd_ < 0) return false;
    char c;
    const ssize_t n = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;  // orderly shutdown
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset
    return false;
}

}  // namespace sam::server
