// The checks every request passes before its body is read (httplib's pre-routing hook): who may
// send it (Host and Origin, against DNS rebinding and cross-site requests) and how its body is
// framed (httplib 0.11 bounds neither chunked nor compressed bodies, nor bodies without a length).
// A request refused there leaves its body unread, and the connection closes after the answer.
// Checks that a well-behaved client may fail (the JSON routes' Content-Type, a body over the
// JSON limit) are made in the route, after httplib has read the body (within --max-upload-mb),
// so that the client gets its answer rather than a reset connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace httplib {
struct Request;
}

namespace sam::server {

struct RequestPolicy {
    std::vector<std::string> hosts;  // names accepted in Host and Origin, lower case, IPv6 unbracketed
    int port = 0;                    // the port listened on: Host and Origin must name it
};

// The policy for a server listening on host:port: loopback names (localhost, 127.0.0.1, ::1),
// `host` itself and `extra` names (--allow-host).
RequestPolicy make_request_policy(const std::string& host, int port, const std::vector<std::string>& extra);

// POST /api/images/{id}/predict, /click and /everything, /api/videos/{id}/points, /propagate,
// /remove and /reset: bodies that must be application/json.
bool is_json_route(std::string_view method, std::string_view path);

// Throws HttpError, in this order: 403 for a Host that is not one of policy.hosts on
// policy.port; 411 for a Transfer-Encoding (chunked) body or a body-carrying method without
// Content-Length; 415 for a Content-Encoding other than identity; 403 for a request other than
// GET or HEAD whose Origin is another site.
void check_request(const httplib::Request& req, const RequestPolicy& policy);

// For JSON routes: throws HttpError 415 unless the Content-Type is application/json.
void check_json_content_type(const httplib::Request& req);

}  // namespace sam::server
