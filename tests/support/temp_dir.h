// A private temporary directory, removed with its contents on destruction.
#ifndef STATESIDE_TESTS_SUPPORT_TEMP_DIR_H_
#define STATESIDE_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace stateside::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const;
  // Writes `contents` (binary) to File(name); returns its path.
  std::string WriteFile(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

}  // namespace stateside::testing

#endif  // STATESIDE_TESTS_SUPPORT_TEMP_DIR_H_
