// DynamicLibrary: the first loadable candidate wins, and a missing library or symbol is a config
// error naming what was tried (libc stands in for a library that is there).
#include "devices/dynamic_library.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "devices/error.h"
#include "expect_error.h"

namespace dpt {
namespace {

using testing::error_of;

TEST(DynamicLibrary, LoadsTheFirstCandidateThatExistsAndResolvesItsSymbols) {
  DynamicLibrary library({"libdpt-no-such-library.so.1", "libc.so.6"}, RTLD_NOW | RTLD_LOCAL,
                         "libc", "install it");
  EXPECT_EQ(library.soname(), "libc.so.6");
  std::size_t (*length)(const char*) = nullptr;
  library.resolve("strlen", length);
  ASSERT_NE(length, nullptr);
  EXPECT_EQ(length("four"), 4u);
}

TEST(DynamicLibrary, NoCandidateLoadsNamesEachAttemptAndTheHint) {
  const std::string message = error_of([] {
    DynamicLibrary({"libdpt-missing-a.so", "/nowhere/libdpt-missing-b.so"}, RTLD_NOW, "thing",
                   "install the thing");
  });
  EXPECT_EQ(message.find("thing: cannot load ("), 0u) << message;
  EXPECT_NE(message.find("libdpt-missing-a.so"), std::string::npos) << message;
  EXPECT_NE(message.find("/nowhere/libdpt-missing-b.so"), std::string::npos) << message;
  EXPECT_NE(message.find("); install the thing"), std::string::npos) << message;
}

TEST(DynamicLibrary, AMissingSymbolNamesTheLibraryAndTheSymbol) {
  DynamicLibrary library({"libc.so.6"}, RTLD_NOW | RTLD_LOCAL, "libc", "");
  void (*missing)() = nullptr;
  const std::string message = error_of([&] { library.resolve("dpt_no_such_symbol", missing); });
  EXPECT_EQ(message.find("libc: libc.so.6 has no symbol dpt_no_such_symbol ("), 0u) << message;
  EXPECT_EQ(missing, nullptr);
}

}  // namespace
}  // namespace dpt
