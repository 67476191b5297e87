// Whether the client of a request is still there, so that long work can stop when it leaves.
//
// httplib 0.11 (Debian 12) gives a handler no access to its socket (Request::is_connection_closed
// came in later versions), so we find it: the one socket of this process whose local and peer
// addresses are the request's (Linux: /proc/self/fd). The socket stays open for as long as the
// handler runs, so its descriptor cannot be reused meanwhile. Where no socket matches (another
// system, /proc not mounted), the client always counts as connected and only the job's time
// limit applies.
#pragma once

namespace httplib {
struct Request;
}

namespace sam::server {

class ClientConnection {
  public:
    explicit ClientConnection(const httplib::Request& req);

    // True once the client has closed or reset the connection (a pending pipelined request
    // counts as connected).
    bool closed() const;
    // Whether the request's socket was found (else closed() is always false).
    bool watched() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
};

}  // namespace sam::server
