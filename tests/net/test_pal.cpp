// The Linux PAL on real loopback sockets, driven from one thread with pal::poll.
#include "ew_catch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "pal.h"
#include "linux/pal_hosts_file.h"

namespace {

pal::Addr loopback(uint16_t port) {
    pal::Addr a;
    REQUIRE(pal::parse_addr("127.0.0.1", port, &a));
    return a;
}

// Waits (poll, no sleeps) until `events` show on `s`; returns the revents, 0 on timeout.
uint16_t wait_for(pal::Socket s, uint16_t events, int timeout_ms = 5000) {
    uint64_t end = pal::now_ms() + static_cast<uint64_t>(timeout_ms);
    while (pal::now_ms() < end) {
        pal::PollItem it{s, events, 0};
        int n = pal::poll(&it, 1, 100);
        REQUIRE(n >= 0);
        if (n > 0 && it.revents) return it.revents;
    }
    return 0;
}

struct TempFile {
    std::string path;
    explicit TempFile(const std::string& content, mode_t mode) {
        char tmpl[] = "/tmp/ew-pal-XXXXXX";
        int fd = mkstemp(tmpl);
        REQUIRE(fd >= 0);
        REQUIRE(write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
        close(fd);
        path = tmpl;
        REQUIRE(chmod(path.c_str(), mode) == 0);
    }
    ~TempFile() { unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("pal: listen, connect, accept, send and recv on loopback") {
    REQUIRE(pal::init() == 0);
    int err = -1;
    pal::Socket lis = pal::tcp_listen(loopback(0), 8, &err);
    REQUIRE(lis != pal::kNoSocket);
    CHECK(err == 0);
    uint16_t port = pal::local_port(lis);
    REQUIRE(port != 0);

    // Nothing to accept yet: kNoSocket + EAGAIN, never a wait.
    CHECK(pal::tcp_accept(lis, &err) == pal::kNoSocket);
    CHECK(err == EAGAIN);

    pal::Socket cli = pal::tcp_connect(loopback(port), &err);
    REQUIRE(cli != pal::kNoSocket);
    CHECK(err == 0);
    REQUIRE((wait_for(cli, pal::kOut) & pal::kOut) != 0);
    CHECK(pal::tcp_connect_result(cli) == 0);

    REQUIRE((wait_for(lis, pal::kIn) & pal::kIn) != 0);
    pal::Socket srv = pal::tcp_accept(lis, &err);
    REQUIRE(srv != pal::kNoSocket);
    CHECK(err == 0);

    char buf[64];
    pal::IoResult r = pal::recv(srv, buf, sizeof buf);
    CHECK(r.status == pal::Io::would_block);

    r = pal::send(cli, "ping", 4);
    REQUIRE(r.status == pal::Io::ok);
    CHECK(r.n == 4);
    REQUIRE((wait_for(srv, pal::kIn) & pal::kIn) != 0);
    r = pal::recv(srv, buf, sizeof buf);
    REQUIRE(r.status == pal::Io::ok);
    CHECK(std::string(buf, r.n) == "ping");

    r = pal::send(srv, "pong!", 5);
    REQUIRE(r.status == pal::Io::ok);
    REQUIRE((wait_for(cli, pal::kIn) & pal::kIn) != 0);
    r = pal::recv(cli, buf, sizeof buf);
    REQUIRE(r.status == pal::Io::ok);
    CHECK(std::string(buf, r.n) == "pong!");

    // Several sockets in one poll call; an unused slot (kNoSocket) is ignored.
    pal::PollItem items[3] = {{cli, pal::kOut, 0}, {pal::kNoSocket, pal::kIn, 0}, {srv, pal::kIn, 0}};
    CHECK(pal::poll(items, 3, 0) == 1);
    CHECK((items[0].revents & pal::kOut) != 0);
    CHECK(items[1].revents == 0);
    CHECK(items[2].revents == 0);

    // The peer closes: recv reports closed; sending to it soon fails without SIGPIPE.
    pal::close(srv);
    REQUIRE((wait_for(cli, pal::kIn) & (pal::kIn | pal::kHup)) != 0);
    r = pal::recv(cli, buf, sizeof buf);
    CHECK(r.status == pal::Io::closed);
    bool failed = false;
    for (int i = 0; i < 50 && !failed; i++) {
        r = pal::send(cli, "x", 1);
        if (r.status == pal::Io::error) failed = true;
        else wait_for(cli, pal::kIn | pal::kOut, 20);
    }
    CHECK(failed);
    CHECK((r.err == EPIPE || r.err == ECONNRESET));
    pal::close(cli);
    pal::close(lis);
}

TEST_CASE("pal: a refused connect is reported") {
    int err = 0;
    pal::Socket lis = pal::tcp_listen(loopback(0), 1, &err);
    REQUIRE(lis != pal::kNoSocket);
    uint16_t port = pal::local_port(lis);
    pal::close(lis);  // nobody listens there now

    pal::Socket s = pal::tcp_connect(loopback(port), &err);
    if (s == pal::kNoSocket) {
        CHECK(err == ECONNREFUSED);  // refused at once
    } else {
        uint16_t rev = wait_for(s, pal::kOut);
        CHECK(rev != 0);
        CHECK(pal::tcp_connect_result(s) == ECONNREFUSED);
        pal::close(s);
    }
    CHECK(std::string(pal::strerror(ECONNREFUSED)) == "Connection refused");
}

TEST_CASE("pal: IPv6 loopback") {
    pal::Addr a;
    REQUIRE(pal::parse_addr("::1", 0, &a));
    int err = 0;
    pal::Socket lis = pal::tcp_listen(a, 4, &err);
    if (lis == pal::kNoSocket) {
        WARN("no IPv6 on this machine: " << pal::strerror(err));
        return;
    }
    a.port = pal::local_port(lis);
    pal::Socket cli = pal::tcp_connect(a, &err);
    REQUIRE(cli != pal::kNoSocket);
    REQUIRE((wait_for(cli, pal::kOut) & pal::kOut) != 0);
    CHECK(pal::tcp_connect_result(cli) == 0);
    REQUIRE((wait_for(lis, pal::kIn) & pal::kIn) != 0);
    pal::Socket srv = pal::tcp_accept(lis, &err);
    CHECK(srv != pal::kNoSocket);
    pal::close(srv);
    pal::close(cli);
    pal::close(lis);
}

TEST_CASE("pal: addresses") {
    pal::Addr a;
    char text[64];
    REQUIRE(pal::parse_addr("10.1.2.3", 8080, &a));
    CHECK(a.family == 4);
    pal::format_addr(a, text, sizeof text);
    CHECK(std::string(text) == "10.1.2.3:8080");

    REQUIRE(pal::parse_addr("localhost", 1, &a));
    pal::format_addr(a, text, sizeof text);
    CHECK(std::string(text) == "127.0.0.1:1");

    REQUIRE(pal::parse_addr("::1", 443, &a));
    CHECK(a.family == 6);
    pal::format_addr(a, text, sizeof text);
    CHECK(std::string(text) == "[::1]:443");

    CHECK_FALSE(pal::parse_addr("api.example.com", 443, &a));
    CHECK_FALSE(pal::parse_addr("300.1.1.1", 443, &a));
    CHECK_FALSE(pal::parse_addr("", 443, &a));

    REQUIRE(pal::resolve("localhost", 99, &a) == 0);
    CHECK(a.port == 99);
    int e = pal::resolve("no-such-host.invalid", 80, &a);
    CHECK(e != 0);
    CHECK(strlen(pal::strerror(e)) > 0);
}

TEST_CASE("pal: the static build's hosts-file lookup (no NSS)") {
    char path[] = "/tmp/ew-hosts-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const char text[] =
        "# comment line\n"
        "10.0.0.7\tgw.lan gateway   # trailing comment\n"
        "fd00::7 v6only.lan\n"
        "fd00::8 both.lan\n"
        "192.168.1.9 both.lan\n"
        "not-an-address broken.lan\n";
    REQUIRE(write(fd, text, sizeof text - 1) == static_cast<ssize_t>(sizeof text - 1));
    close(fd);
    pal::Addr a;
    REQUIRE(pal::resolve_from_hosts_file(path, "gateway", 8080, &a) == 0);
    char buf[64];
    pal::format_addr(a, buf, sizeof buf);
    CHECK(std::string(buf).find("10.0.0.7") != std::string::npos);
    CHECK(a.port == 8080);
    REQUIRE(pal::resolve_from_hosts_file(path, "GW.LAN", 1, &a) == 0);  // names are case-blind
    CHECK(a.family == 4);
    REQUIRE(pal::resolve_from_hosts_file(path, "v6only.lan", 1, &a) == 0);
    CHECK(a.family == 6);
    REQUIRE(pal::resolve_from_hosts_file(path, "both.lan", 1, &a) == 0);  // IPv4 first, as getaddrinfo's path
    CHECK(a.family == 4);
    CHECK(pal::resolve_from_hosts_file(path, "broken.lan", 1, &a) != 0);
    CHECK(pal::resolve_from_hosts_file(path, "missing.lan", 1, &a) != 0);
    REQUIRE(pal::resolve_from_hosts_file("/nonexistent/hosts", "localhost", 5, &a) == 0);
    CHECK(a.family == 4);
    CHECK(pal::resolve_from_hosts_file("/nonexistent/hosts", "gw.lan", 5, &a) != 0);
    unlink(path);
}

TEST_CASE("pal: clock, entropy, environment") {
    uint64_t t0 = pal::now_ms();
    uint64_t t1 = pal::now_ms();
    CHECK(t1 >= t0);
    CHECK(pal::wall_ms() > 1600000000000ull);

    unsigned char a[32] = {}, b[32] = {};
    REQUIRE(pal::entropy(a, sizeof a) == 0);
    REQUIRE(pal::entropy(b, sizeof b) == 0);
    CHECK(memcmp(a, b, sizeof a) != 0);

    setenv("EW_PAL_TEST_VAR", "value", 1);
    REQUIRE(pal::getenv("EW_PAL_TEST_VAR") != nullptr);
    CHECK(std::string(pal::getenv("EW_PAL_TEST_VAR")) == "value");
    CHECK(pal::getenv("EW_PAL_TEST_UNSET_VAR") == nullptr);
}

TEST_CASE("pal: read_file") {
    char buf[16];
    size_t len = 99;
    bool priv = true;

    SECTION("a private file is read whole and NUL-terminated") {
        TempFile f("secret-key", 0600);
        REQUIRE(pal::read_file(f.path.c_str(), buf, sizeof buf, &len, &priv) == 0);
        CHECK(len == 10);
        CHECK(std::string(buf) == "secret-key");
        CHECK(priv);
    }
    SECTION("group or other access clears private_ok") {
        TempFile f("k", 0640);
        REQUIRE(pal::read_file(f.path.c_str(), buf, sizeof buf, &len, &priv) == 0);
        CHECK_FALSE(priv);
    }
    SECTION("a file larger than the buffer is refused") {
        TempFile f(std::string(40, 'x'), 0600);
        CHECK(pal::read_file(f.path.c_str(), buf, sizeof buf, &len, &priv) == EFBIG);
        CHECK(len == 0);
        TempFile g(std::string(15, 'y'), 0600);  // cap - 1 bytes: fits with its NUL
        CHECK(pal::read_file(g.path.c_str(), buf, sizeof buf, &len, &priv) == 0);
        CHECK(len == 15);
        TempFile h(std::string(16, 'z'), 0600);
        CHECK(pal::read_file(h.path.c_str(), buf, sizeof buf, &len, &priv) == EFBIG);
    }
    SECTION("missing file and directory") {
        CHECK(pal::read_file("/nonexistent/edgeway.ini", buf, sizeof buf, &len, &priv) == ENOENT);
        CHECK(pal::read_file("/tmp", buf, sizeof buf, &len, &priv) == EISDIR);
    }
}

TEST_CASE("pal: write_file_atomic replaces a file whole, private, without a leftover temporary") {
    char dir_tmpl[] = "/tmp/ew-pal-dir-XXXXXX";
    REQUIRE(mkdtemp(dir_tmpl) != nullptr);
    const std::string dir = dir_tmpl;
    const std::string path = dir + "/state";
    char buf[64];
    size_t len = 0;
    bool priv = false;

    REQUIRE(pal::write_file_atomic(path.c_str(), "first\n", 6) == 0);
    REQUIRE(pal::read_file(path.c_str(), buf, sizeof buf, &len, &priv) == 0);
    CHECK(std::string(buf, len) == "first\n");
    CHECK(priv);  // mode 0600
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    // A longer and then a shorter content: nothing of the old one is left.
    REQUIRE(pal::write_file_atomic(path.c_str(), "a much longer second content\n", 29) == 0);
    REQUIRE(pal::write_file_atomic(path.c_str(), "3\n", 2) == 0);
    REQUIRE(pal::read_file(path.c_str(), buf, sizeof buf, &len, &priv) == 0);
    CHECK(std::string(buf, len) == "3\n");
    CHECK(access((path + ".tmp").c_str(), F_OK) != 0);

    // A file in a folder that does not exist: an error, nothing written.
    CHECK(pal::write_file_atomic((dir + "/no/such/state").c_str(), "x", 1) == ENOENT);
    // A symbolic link (or a leftover) at the temporary name is replaced, never followed.
    const std::string victim = dir + "/victim";
    REQUIRE(symlink(victim.c_str(), (path + ".tmp").c_str()) == 0);
    CHECK(pal::write_file_atomic(path.c_str(), "y", 1) == 0);
    CHECK(access(victim.c_str(), F_OK) != 0);
    REQUIRE(pal::read_file(path.c_str(), buf, sizeof buf, &len, &priv) == 0);
    CHECK(std::string(buf, len) == "y");
    CHECK(pal::write_file_atomic(path.c_str(), "", 0) == 0);  // empty is a content too
    REQUIRE(pal::read_file(path.c_str(), buf, sizeof buf, &len, &priv) == 0);
    CHECK(len == 0);

    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("pal: log_line writes one line to stderr") {
    const char line[] = "pal test: a log line";
    pal::log_line(pal::LogPriority::info, line, sizeof line - 1);
    SUCCEED();
}
