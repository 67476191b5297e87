// What both web servers (`sam serve` and `sam annotate`) answer with: JSON bodies and the files
// of their pages. Free functions, safe from any thread.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

namespace httplib {
struct Response;
}

namespace sam::server {

// A file of a page compiled into the binary (embed_web.cmake writes the tables).
struct WebAsset {
    const char* name;
    const unsigned char* data;
    size_t size;
};

// `body` as the answer, with a charset in its type: that keeps cpp-httplib from compressing it.
// It picks Brotli at its slowest setting whenever a browser accepts it (0.6-2.5 s more per click
// answer on a loaded 2-core machine, several times the decoder's time, for bytes that mostly stay
// on loopback or a LAN). Invalid UTF-8 (an error message may quote the client's bytes) is
// replaced rather than thrown on.
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);

// The Content-Type of a file, by its extension.
std::string content_type(const std::string& name);

// The bytes of a file; HttpError 404 naming it where it cannot be read.
std::string read_file(const std::string& path);

// The page's file `name` ("" is index.html): from web_dir when one is given, else from the
// copies compiled in. A name in `shared_names` that web_dir lacks is looked for in its parent
// folder (web/mask.js serves both pages). HttpError 404 for anything else, and for dot files.
void serve_asset(const std::string& web_dir, std::string name, std::span<const WebAsset> embedded,
                 httplib::Response& res, std::span<const char* const> shared_names = {});

}  // namespace sam::server
