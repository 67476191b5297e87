// src/io/atomic_file: unique temporaries, no writing through symlinks, nothing left on failure,
// stale temporaries recognised by name only.
#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sam/error.h"

namespace fs = std::filesystem;

namespace sam {
namespace {

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::path(::testing::TempDir()) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::vector<std::string> entries(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

TEST(AtomicFile, WritesAndReplacesLeavingNoTemporary) {
    fs::path d = fresh_dir("atomic_write");
    write_file_atomic((d / "a.txt").string(), [](std::ostream& out) { out << "first"; });
    write_file_atomic((d / "a.txt").string(), [](std::ostream& out) { out << std::string(200000, 'x'); });
    EXPECT_EQ(read_text(d / "a.txt"), std::string(200000, 'x'));
    EXPECT_EQ(entries(d), std::vector<std::string>{"a.txt"});
}

TEST(AtomicFile, FailingWriterKeepsTheOldFileAndLeavesNoTemporary) {
    fs::path d = fresh_dir("atomic_fail");
    std::ofstream(d / "a.txt") << "old";
    EXPECT_THROW(write_file_atomic((d / "a.txt").string(),
                                   [](std::ostream& out) {
                                       out << "partial";
                                       throw Error("boom");
                                   }),
                 Error);
    EXPECT_EQ(read_text(d / "a.txt"), "old");
    EXPECT_EQ(entries(d), std::vector<std::string>{"a.txt"});
}

TEST(AtomicFile, ReplacesASymlinkInsteadOfWritingThroughIt) {
    fs::path d = fresh_dir("atomic_symlink");
    std::ofstream(d / "victim.txt") << "precious";
    fs::create_symlink(d / "victim.txt", d / "out.txt");
    write_file_atomic((d / "out.txt").string(), [](std::ostream& out) { out << "new"; });
    EXPECT_EQ(read_text(d / "victim.txt"), "precious");
    EXPECT_FALSE(fs::is_symlink(d / "out.txt"));
    EXPECT_EQ(read_text(d / "out.txt"), "new");
}

TEST(AtomicFile, NewFileRefusesAnExistingNameOrSymlink) {
    fs::path d = fresh_dir("atomic_new");
    std::ofstream(d / "victim.txt") << "precious";
    fs::create_symlink(d / "victim.txt", d / "link.png");
    EXPECT_THROW(write_new_file_durable((d / "link.png").string(), {1, 2, 3}), Error);
    EXPECT_THROW(write_new_file_durable((d / "victim.txt").string(), {1, 2, 3}), Error);
    EXPECT_EQ(read_text(d / "victim.txt"), "precious");
    write_new_file_durable((d / "fresh.bin").string(), {'o', 'k'});
    EXPECT_EQ(read_text(d / "fresh.bin"), "ok");
}

TEST(AtomicFile, TemporaryDirsAreUniqueAndHidden) {
    fs::path d = fresh_dir("atomic_tmpdir");
    const std::string a = make_temporary_dir((d / "x").string()), b = make_temporary_dir((d / "x").string());
    EXPECT_NE(a, b);
    EXPECT_EQ(a.rfind(temporary_prefix((d / "x").string()), 0), 0u);
    EXPECT_EQ(fs::path(a).filename().string().rfind(".x.sam-tmp-", 0), 0u);
}

TEST(AtomicFile, RenameDurableReplacesAFolderWhole) {
    fs::path d = fresh_dir("atomic_rename");
    fs::create_directories(d / "x");
    std::ofstream(d / "x" / "old.png") << "old";
    const std::string tmp = make_temporary_dir((d / "x").string());
    std::ofstream(fs::path(tmp) / "new.png") << "new";
    rename_durable(tmp, (d / "x").string());
    EXPECT_EQ(entries(d / "x"), std::vector<std::string>{"new.png"});
    EXPECT_EQ(entries(d), std::vector<std::string>{"x"});
}

TEST(AtomicFile, StaleTemporariesAreRecognisedByNameOnly) {
    fs::path d = fresh_dir("atomic_stale");
    std::ofstream(d / ".a.json.sam-tmp-AbC123") << "stale file";
    fs::create_directories(d / ".a.json.sam-tmp-XyZ789" / "inner");
    std::ofstream(d / ".a.json.sam-tmp-notmine") << "user";   // 7 characters: not ours
    std::ofstream(d / ".b.json.sam-tmp-AbC123") << "other";   // another target's
    std::ofstream(d / "a.json") << "keep";
    EXPECT_EQ(remove_stale_temporaries((d / "a.json").string()), 2);
    EXPECT_EQ(entries(d), (std::vector<std::string>{".a.json.sam-tmp-notmine", ".b.json.sam-tmp-AbC123", "a.json"}));
}

}  // namespace
}  // namespace sam
