// `sam amg` killed with SIGKILL at random moments (seeded) and resumed with --skip-existing ends
// with outputs byte-identical to an uninterrupted run, no temporaries left, and never an image
// taken as done whose outputs are not the final ones.
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "sam/image.h"
#include "test_util.h"

extern char** environ;

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace sam {
namespace {

// Starts `sam amg <args>` with stdout and stderr to `log`; returns its pid.
pid_t start_amg(const std::vector<std::string>& args, const std::string& log) {
    std::vector<std::string> all = {SAM_CLI_PATH, "amg", "-c", test::data_path("sam_tiny.pth"), "--config",
                                    test::data_path("config.json")};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

// Waits up to `limit`; returns the exit code, or -1 if it had to be killed.
int wait_amg(pid_t pid, std::chrono::seconds limit) {
    const auto end = Clock::now() + limit;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (Clock::now() > end) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Every file under `dir`, by relative path, with its content.
std::map<std::string, std::string> tree(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (!e.is_directory()) files[fs::relative(e.path(), dir).string()] = read_bytes(e.path());
    return files;
}

// The markers in `out`, by name, with their inode: a marker rewritten (renamed over) gets a new one.
std::map<std::string, ino_t> markers(const fs::path& out) {
    std::map<std::string, ino_t> m;
    struct stat st {};
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(out, ec))
        if (e.path().string().ends_with(".sam-output") && ::lstat(e.path().c_str(), &st) == 0) m[e.path().string()] = st.st_ino;
    return m;
}

// True once `pid` has exited (left unreaped, so its pid cannot be reused before we kill it).
bool has_exited(pid_t pid) {
    siginfo_t info {};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

// Waits until the run starts writing an image (a marker appears or is rewritten) or exits.
void wait_for_a_write(pid_t pid, const fs::path& out, std::chrono::seconds limit) {
    const auto before = markers(out);
    const auto end = Clock::now() + limit;
    while (markers(out) == before && !has_exited(pid) && Clock::now() < end)
        std::this_thread::sleep_for(std::chrono::microseconds(500));
}

fs::path fresh_dir(const std::string& name) {
    fs::path d = fs::path(::testing::TempDir()) / name;
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}

// Three small, different images.
void make_images(const fs::path& dir) {
    const Image src = read_image(test::data_path("images/synthetic.png"));
    for (int v = 0; v < 3; ++v) {
        Image img = src;
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x)
                for (int c = 0; c < 3; ++c) {
                    // variant v: mirrored and/or channel-rotated copies
                    const int sx = (v & 1) ? img.width - 1 - x : x, sc = (v & 2) ? (c + 1) % 3 : c;
                    img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + c] =
                        src.rgb[(static_cast<size_t>(y) * img.width + sx) * 3 + sc];
                }
        write_png((dir / ("img" + std::to_string(v) + ".png")).string(), img.rgb.data(), img.width, img.height, 3);
    }
}

// After a kill: every image whose marker says complete has exactly the reference's outputs.
// Returns what the kill left: "<complete> complete, <started> started, <n> temporaries".
std::string expect_complete_images_final(const fs::path& out, const std::map<std::string, std::string>& ref, int kill) {
    int complete = 0, started = 0, temporaries = 0;
    for (const auto& e : fs::directory_iterator(out)) {
        const std::string name = e.path().filename().string();
        temporaries += name.find(".sam-tmp-") != std::string::npos;
        if (!name.ends_with(".sam-output")) continue;
        const nlohmann::json m = nlohmann::json::parse(read_bytes(e.path()));
        if (!m["complete"].get<bool>()) {
            ++started;
            continue;
        }
        ++complete;
        for (const auto& o : m["outputs"]) {
            const fs::path p = out / o.get<std::string>();
            EXPECT_TRUE(fs::exists(p)) << "kill " << kill << ": " << name << " complete without " << p;
            const std::map<std::string, std::string> got =
                fs::is_directory(p) ? tree(p) : std::map<std::string, std::string>{{"", read_bytes(p)}};
            for (const auto& [rel, bytes] : got) {
                const std::string key = rel.empty() ? o.get<std::string>() : o.get<std::string>() + "/" + rel;
                EXPECT_TRUE(ref.count(key) && ref.at(key) == bytes)
                    << "kill " << kill << ": " << key << " differs from the reference though marked complete";
            }
        }
    }
    return std::to_string(complete) + " complete, " + std::to_string(started) + " started, " +
           std::to_string(temporaries) + " temporaries";
}

TEST(CliAmgKill, ResumedAfterSigkillsMatchesAnUninterruptedRun) {
    const fs::path in = fresh_dir("amg_kill_in"), ref_out = fresh_dir("amg_kill_ref"), out = fresh_dir("amg_kill_out");
    const std::string log = (fs::path(::testing::TempDir()) / "amg_kill_log.txt").string();
    fs::remove(log);
    make_images(in);
    auto args = [&](const fs::path& o) {
        // 48 masks per image: a folder of PNGs to write, so kills land in writes too.
        return std::vector<std::string>{"-i", in.string(), "-o", o.string(), "--overlay", "--skip-existing",
                                        "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh",
                                        "0", "--box-nms-thresh", "1.0", "--threads", "2"};
    };

    const auto t0 = Clock::now();
    ASSERT_EQ(wait_amg(start_amg(args(ref_out), log), std::chrono::seconds(300)), 0) << read_bytes(log);
    const double full_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::map<std::string, std::string> ref = tree(ref_out);
    ASSERT_EQ(ref.count("img0/metadata.csv"), 1u);
    ASSERT_EQ(ref.count("img2_overlay.png"), 1u);

    const unsigned seed = std::getenv("SAM_KILL_SEED") ? static_cast<unsigned>(std::atoi(std::getenv("SAM_KILL_SEED"))) : 20240613u;
    std::mt19937 rng(seed);
    // Even kills: at any moment of a run. Odd kills: while an image's outputs are being written
    // (the window where a crash could tear them), up to 0.3 s after its first marker.
    std::uniform_real_distribution<double> any_moment_s(0.0, full_s), in_write_s(0.0, 0.3);
    for (int kill = 0; kill < 6; ++kill) {
        const bool in_write = kill % 2 == 1;
        const double d = in_write ? in_write_s(rng) : any_moment_s(rng);
        SCOPED_TRACE("seed " + std::to_string(seed) + ", kill " + std::to_string(kill) + " after " + std::to_string(d) + " s");
        const pid_t pid = start_amg(args(out), log);
        ASSERT_GT(pid, 0);
        if (in_write) wait_for_a_write(pid, out, std::chrono::seconds(20));
        std::this_thread::sleep_for(std::chrono::duration<double>(d));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        std::printf("kill %d %s %.2f s left %s\n", kill, in_write ? "in a write, after" : "after", d,
                    expect_complete_images_final(out, ref, kill).c_str());
    }
    ASSERT_EQ(wait_amg(start_amg(args(out), log), std::chrono::seconds(300)), 0) << read_bytes(log);

    const std::map<std::string, std::string> got = tree(out);
    for (const auto& [rel, bytes] : got) EXPECT_EQ(rel.find(".sam-tmp-"), std::string::npos) << "left behind: " << rel;
    ASSERT_EQ(got.size(), ref.size());
    // A marker records the image's seconds, which differ from run to run; all else must not.
    const auto comparable = [](const std::string& rel, const std::string& bytes) {
        if (!rel.ends_with(".sam-output")) return bytes;
        nlohmann::json m = nlohmann::json::parse(bytes);
        m.erase("seconds");
        return m.dump();
    };
    for (const auto& [rel, bytes] : ref) {
        ASSERT_EQ(got.count(rel), 1u) << rel;
        EXPECT_TRUE(comparable(rel, got.at(rel)) == comparable(rel, bytes)) << rel << " differs from the uninterrupted run";
    }
}

}  // namespace
}  // namespace sam
