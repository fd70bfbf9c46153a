// Checking code that must throw a dpt::Error: error_of returns the message of the error `body`
// throws and expect_error checks the message holds a text; both check the error's kind and fail
// the test when nothing is thrown.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "devices/error.h"

namespace dpt::testing {

// The message of the dpt::Error of `kind` that `body` throws ("" and a failure when none).
template <typename Body>
std::string error_of(Body body, ErrorKind kind = ErrorKind::kConfig) {
  try {
    body();
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), kind) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "no dpt::Error thrown";
  return "";
}

// `body` throws a dpt::Error of `kind` whose message contains `text`.
template <typename Body>
void expect_error(Body body, ErrorKind kind, const std::string& text) {
  try {
    body();
    ADD_FAILURE() << "no error; expected: " << text;
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), kind) << error.what();
    EXPECT_NE(std::string(error.what()).find(text), std::string::npos) << error.what();
  }
}

}  // namespace dpt::testing
