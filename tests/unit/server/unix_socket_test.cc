// The socket file: directory creation, live/stale detection, cleanup.
#include "sidecar/server/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace stateside {
namespace {

using ::testing::HasSubstr;

// A bound Unix socket at `path`; listening if `listen_too`. Returns the fd.
int BindSocket(const std::string& path, bool listen_too) {
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << strerror(errno);
  if (listen_too) {
    EXPECT_EQ(listen(fd, 4), 0);
  }
  return fd;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

class UnixSocketTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
};

TEST_F(UnixSocketTest, MissingDirectoriesAreCreated) {
  const std::string path = dir_.File("a/b/api.sock");
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  struct stat st {};
  ASSERT_EQ(stat(dir_.File("a/b").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777 & ~0750, 0u) << std::oct << st.st_mode;
}

TEST_F(UnixSocketTest, StaleSocketIsRemoved) {
  const std::string path = dir_.File("api.sock");
  close(BindSocket(path, /*listen_too=*/false));  // the file stays: stale
  ASSERT_TRUE(Exists(path));
  EXPECT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_FALSE(Exists(path));
}

TEST_F(UnixSocketTest, LiveSocketIsRefusedAndLeftAlone) {
  const std::string path = dir_.File("api.sock");
  const int fd = BindSocket(path, /*listen_too=*/true);
  absl::Status status = PrepareSocketPath(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("STATESIDE_SOCKET: another process is listening"));
  EXPECT_TRUE(Exists(path));
  close(fd);
}

TEST_F(UnixSocketTest, OtherFilesAreRefusedNotDeleted) {
  const std::string path = dir_.File("api.sock");
  std::ofstream(path) << "precious";
  absl::Status status = PrepareSocketPath(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("not a socket"));
  EXPECT_TRUE(Exists(path));
  EXPECT_FALSE(PrepareSocketPath(dir_.path()).ok());
}

TEST_F(UnixSocketTest, ModeIsRestrictedAndOnlyOurSocketIsRemoved) {
  const std::string path = dir_.File("api.sock");
  const int fd = BindSocket(path, /*listen_too=*/true);
  auto id = RestrictSocketFile(path);
  ASSERT_TRUE(id.ok()) << id.status();
  struct stat st {};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);

  // Someone else's socket now sits at the path: not ours to remove. (`fd`
  // stays open so that its inode number cannot be reused for `other`.)
  ASSERT_EQ(unlink(path.c_str()), 0);
  const int other = BindSocket(path, /*listen_too=*/false);
  RemoveSocketFile(path, *id);
  EXPECT_TRUE(Exists(path));
  close(other);
  close(fd);

  auto other_id = RestrictSocketFile(path);
  ASSERT_TRUE(other_id.ok());
  RemoveSocketFile(path, *other_id);
  EXPECT_FALSE(Exists(path));
}

// A directory others may write to lets them replace the socket: refused
// before anything is bound, and nothing in it is touched.
TEST_F(UnixSocketTest, DirectoryWritableByOthersOrGroupIsRefused) {
  const std::string dir = dir_.File("shared");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  const std::string path = dir + "/api.sock";
  close(BindSocket(path, /*listen_too=*/false));  // stale: would be removed
  for (const mode_t mode : {0777u, 0770u, 0703u}) {
    ASSERT_EQ(chmod(dir.c_str(), mode), 0);
    absl::Status status = PrepareSocketPath(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << std::oct << mode;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("STATESIDE_SOCKET: directory " + dir + " is writable by"));
    EXPECT_TRUE(Exists(path));
  }
  ASSERT_EQ(chmod(dir.c_str(), 0770), 0);
  EXPECT_THAT(std::string(PrepareSocketPath(path).message()),
              HasSubstr("writable by its group (mode 0770) and not sticky"));
}

TEST_F(UnixSocketTest, StickyOrPrivateDirectoriesAreAccepted) {
  const std::string dir = dir_.File("d");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  for (const mode_t mode : {01777u, 0700u, 0750u, 0755u}) {
    ASSERT_EQ(chmod(dir.c_str(), mode), 0);
    EXPECT_TRUE(PrepareSocketPath(dir + "/api.sock").ok()) << std::oct << mode;
  }
}

TEST_F(UnixSocketTest, DirectoryOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to another uid needs root";
  const std::string dir = dir_.File("theirs");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chown(dir.c_str(), 65534, 65534), 0) << strerror(errno);
  absl::Status status = PrepareSocketPath(dir + "/api.sock");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("STATESIDE_SOCKET: directory " + dir +
                        " is owned by uid 65534, not by this user (uid 0) or root"));
}

TEST(CheckSocketDirectoryTest, OwnerMustBeRootOrUs) {
  EXPECT_TRUE(CheckSocketDirectory("/d", 1000, S_IFDIR | 0750, 1000).ok());
  EXPECT_TRUE(CheckSocketDirectory("/d", 0, S_IFDIR | 0755, 1000).ok());
  EXPECT_TRUE(CheckSocketDirectory("/d", 0, S_IFDIR | 01777, 1000).ok()) << "like /tmp";
  EXPECT_EQ(CheckSocketDirectory("/d", 1001, S_IFDIR | 0700, 1000).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckSocketDirectory("/d", 1000, S_IFDIR | 0700, 0).code(),
            absl::StatusCode::kFailedPrecondition)
      << "root does not use a directory a user controls";
  EXPECT_EQ(CheckSocketDirectory("/d", 1000, S_IFDIR | 02777, 1000).code(),
            absl::StatusCode::kFailedPrecondition)
      << "setgid is not sticky (a Kubernetes emptyDir with fsGroup)";
}

}  // namespace
}  // namespace stateside
