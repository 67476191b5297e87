#include "server/http_answers.h"

#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "server/request_parsing.h"

namespace sam::server {

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "application/json; charset=utf-8");
}

std::string content_type(const std::string& name) {
    static const std::map<std::string, std::string> types = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
        {".jpg", "image/jpeg"},                {".jpeg", "image/jpeg"},
        {".svg", "image/svg+xml"},             {".json", "application/json; charset=utf-8"},
        {".ico", "image/x-icon"}};
    std::string ext = std::filesystem::path(name).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    auto it = types.find(ext);
    return it == types.end() ? "application/octet-stream" : it->second;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw HttpError(404, "cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void serve_asset(const std::string& web_dir, std::string name, std::span<const WebAsset> embedded,
                 httplib::Response& res, std::span<const char* const> shared_names) {
    if (name.empty()) name = "index.html";
    if (name.front() == '.') throw HttpError(404, "no such file: /" + name);
    if (!web_dir.empty()) {
        namespace fs = std::filesystem;
        std::string path = web_dir + "/" + name;
        if (!fs::is_regular_file(path) &&
            std::find_if(shared_names.begin(), shared_names.end(), [&](const char* s) { return name == s; }) !=
                shared_names.end())
            path = fs::canonical(web_dir).parent_path().string() + "/" + name;
        if (!fs::is_regular_file(path)) throw HttpError(404, "no such file: /" + name);
        res.set_content(read_file(path), content_type(name));
        return;
    }
    for (const WebAsset& a : embedded)
        if (name == a.name) {
            res.set_content(reinterpret_cast<const char*>(a.data), a.size, content_type(name));
            return;
        }
    throw HttpError(404, "no such file: /" + name);
}

}  // namespace sam::server
