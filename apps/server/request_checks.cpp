#include "server/request_checks.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>

#include "server/request_parsing.h"

namespace sam::server {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string trim(std::string_view s) {
    const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

// A client's header value, quoted and clipped for a message.
std::string shown(std::string_view s) {
    return "'" + (s.size() <= 60 ? std::string(s) : std::string(s.substr(0, 60)) + "...") + "'";
}

// "name", "name:port", "[v6]" or "[v6]:port" -> lower-case name (unbracketed) and port (80 when
// absent); false when malformed.
bool split_authority(std::string_view a, std::string& name, int& port) {
    std::string_view rest;
    if (!a.empty() && a.front() == '[') {
        const size_t close = a.find(']');
        if (close == std::string_view::npos) return false;
        name = lower(a.substr(1, close - 1));
        rest = a.substr(close + 1);
    } else {
        const size_t colon = a.find(':');
        if (colon != std::string_view::npos && a.find(':', colon + 1) != std::string_view::npos) return false;
        name = lower(a.substr(0, colon));
        rest = colon == std::string_view::npos ? std::string_view() : a.substr(colon);
    }
    if (name.empty()) return false;
    port = 80;
    if (rest.empty()) return true;
    if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return false;
    port = 0;
    for (char c : rest.substr(1)) {
        if (c < '0' || c > '9') return false;
        port = port * 10 + (c - '0');
    }
    return true;
}

bool is_ours(std::string_view authority, const RequestPolicy& p) {
    std::string name;
    int port = 0;
    return split_authority(authority, name, port) && port == p.port &&
           std::find(p.hosts.begin(), p.hosts.end(), name) != p.hosts.end();
}

std::string accepted_hosts(const RequestPolicy& p) {
    std::string list;
    for (const std::string& h : p.hosts)
        list += (list.empty() ? "" : ", ") + (h.find(':') != std::string::npos ? "[" + h + "]" : h);
    return list + " on port " + std::to_string(p.port);
}

bool carries_body(std::string_view method) {
    return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" || method == "PRI";
}

void check_host(const httplib::Request& req, const RequestPolicy& p) {
    if (!req.has_header("Host")) throw HttpError(400, "missing Host header");
    const std::string host = req.get_header_value("Host");
    if (!is_ours(host, p))
        throw HttpError(403, "Host " + shown(host) + " is not an address of this server (refused against DNS "
                             "rebinding); accepted: " + accepted_hosts(p) + "; add names with --allow-host");
}

void check_framing(const httplib::Request& req) {
    if (req.has_header("Transfer-Encoding"))
        throw HttpError(411, "Transfer-Encoding " + shown(req.get_header_value("Transfer-Encoding")) +
                                 " is not accepted: send the body with a Content-Length");
    if (req.has_header("Content-Encoding") && lower(trim(req.get_header_value("Content-Encoding"))) != "identity")
        throw HttpError(415, "Content-Encoding " + shown(req.get_header_value("Content-Encoding")) +
                                 " is not accepted: send the body uncompressed");
    if (carries_body(req.method) && !req.has_header("Content-Length"))
        throw HttpError(411, req.method + " without Content-Length: send the body with its length");
}

void check_origin(const httplib::Request& req, const RequestPolicy& p) {
    if (req.method == "GET" || req.method == "HEAD" || !req.has_header("Origin")) return;
    const std::string origin = req.get_header_value("Origin");
    const std::string_view scheme = "http://";
    if (origin.rfind(scheme, 0) != 0 || !is_ours(std::string_view(origin).substr(scheme.size()), p))
        throw HttpError(403, "cross-origin request from " + shown(origin) + " refused: the API answers only "
                             "the page it serves (" + accepted_hosts(p) + ")");
}

}  // namespace

RequestPolicy make_request_policy(const std::string& host, int port, const std::vector<std::string>& extra) {
    RequestPolicy p;
    p.port = port;
    for (std::string_view h : {"localhost", "127.0.0.1", "::1"}) p.hosts.emplace_back(h);
    auto add = [&](std::string h) {
        h = lower(h);
        if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
        if (!h.empty() && std::find(p.hosts.begin(), p.hosts.end(), h) == p.hosts.end()) p.hosts.push_back(h);
    };
    add(host);
    for (const std::string& h : extra) add(h);
    return p;
}

bool is_json_route(std::string_view method, std::string_view path) {
    if (method != "POST") return false;
    auto ends_with_one_of = [&](std::initializer_list<std::string_view> tails) {
        for (std::string_view tail : tails)
            if (path.size() > tail.size() && path.substr(path.size() - tail.size()) == tail) return true;
        return false;
    };
    if (path.rfind("/api/images/", 0) == 0) return ends_with_one_of({"/predict", "/click", "/everything"});
    if (path.rfind("/api/videos/", 0) == 0) return ends_with_one_of({"/points", "/propagate", "/remove", "/reset"});
    return false;
}

void check_request(const httplib::Request& req, const RequestPolicy& policy) {
    check_host(req, policy);
    check_framing(req);
    check_origin(req, policy);
}

void check_json_content_type(const httplib::Request& req) {
    const std::string type = req.get_header_value("Content-Type");
    if (lower(trim(type.substr(0, type.find(';')))) != "application/json")
        throw HttpError(415, "Content-Type " + shown(type) + " is not accepted here: send the body as "
                             "application/json");
}

}  // namespace sam::server
