// A test fixture that owns a scratch directory: dir_ (the test temp dir, a name and the process
// id, so parallel ctest runs do not collide) is created before each test and removed after it.
// Fixtures that need more set-up call TempDirTest::SetUp() first.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace dpt::testing {

class TempDirTest : public ::testing::Test {
 protected:
  // `name` is the directory's prefix, e.g. "dpt_resume_test_".
  explicit TempDirTest(const std::string& name)
      : dir_(::testing::TempDir() + name + std::to_string(getpid())) {}
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  const std::string dir_;
};

}  // namespace dpt::testing
