#include "io/atomic_file.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "sam/error.h"

namespace sam {

void write_path_atomic(const std::string& path, const std::function<void(const std::string&)>& write) {
    std::string tmp = path + ".tmp-" + std::to_string(::getpid());
    try {
        write(tmp);
    } catch (...) {
        std::remove(tmp.c_str());
        throw;
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw Error(path + ": cannot write (rename failed)");
    }
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
    write_path_atomic(path, [&](const std::string& tmp) {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw Error(path + ": cannot open for writing");
        write(out);
        out.flush();
        if (!out) throw Error(path + ": write failed");
    });
}

}  // namespace sam
