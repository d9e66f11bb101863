// SPDX-License-Identifier: MIT
// Unit tests of Tensor (views share memory, bounds errors, deep copies) and of the chapter
// command line (unknown options and bad values become one UsageError naming the option).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/cli.hpp"
#include "common/tensor.hpp"

namespace fivefold {
namespace {

std::vector<float> iota(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

TEST(Tensor, BasicsAndStrings) {
  const Tensor t = Tensor::from_vector(iota(24), {2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.str(), "f32[2, 3, 4]@host");
  EXPECT_THROW(t.dim(3), Error);
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_FALSE(Tensor().defined());
  EXPECT_EQ(Tensor().numel(), 0);
  EXPECT_TRUE(Tensor::zeros({0, 5}).defined());
  EXPECT_THROW(Tensor::from_vector(iota(5), {2, 3}), Error);
  EXPECT_THROW(Tensor::empty({2, -1}), Error);
}

TEST(Tensor, ViewsShareMemory) {
  Tensor t = Tensor::from_vector(iota(12), {4, 3});
  Tensor v = t.view({2, 6});
  Tensor rows = t.narrow(1, 2);  // rows 1..2 = elements 3..8
  Tensor f = t.flat(10, 2);      // elements 10, 11
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(rows.to_vector(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  v.at<float>(0) = -1;
  rows.at<float>(0) = -2;
  f.at<float>(1) = -3;
  EXPECT_EQ(t.at<float>(0), -1);
  EXPECT_EQ(t.at<float>(3), -2);
  EXPECT_EQ(t.at<float>(11), -3);
  rows.zero();
  for (int i = 3; i < 9; ++i) EXPECT_EQ(t.at<float>(i), 0.0f) << i;
  EXPECT_EQ(t.at<float>(9), 9.0f);
}

TEST(Tensor, BoundsErrors) {
  const Tensor t = Tensor::from_vector(iota(12), {4, 3});
  EXPECT_THROW(t.narrow(3, 2), Error);
  EXPECT_THROW(t.narrow(-1, 1), Error);
  EXPECT_NO_THROW(t.narrow(4, 0));
  EXPECT_THROW(t.flat(11, 2), Error);
  EXPECT_THROW(t.flat(-1, 1), Error);
  EXPECT_THROW(t.view({5, 3}), Error);
  EXPECT_THROW(Tensor::from_vector(std::vector<float>{1.0f}, {}).narrow(0, 1), Error);
  try {
    t.narrow(3, 2);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[4, 3]"), std::string::npos) << e.what();
  }
}

TEST(Tensor, CloneIsIndependent) {
  Tensor t = Tensor::from_vector(iota(6), {2, 3});
  Tensor c = t.clone();
  c.at<float>(0) = 100;
  EXPECT_EQ(t.at<float>(0), 0.0f);
  Tensor h = t.to(Device::host);
  h.at<float>(5) = 100;
  EXPECT_EQ(t.at<float>(5), 5.0f);
  Tensor dst = Tensor::zeros({6});
  dst.copy_from(t);
  EXPECT_EQ(dst.to_vector(), iota(6));
  EXPECT_THROW(dst.copy_from(Tensor::zeros({5})), Error);
  EXPECT_THROW(dst.copy_from(Tensor::zeros({6}, DType::i32)), Error);
}

TEST(Tensor, DtypesAndVectors) {
  const Tensor i = Tensor::from_vector(std::vector<std::int32_t>{1, -2, 3}, {3});
  EXPECT_EQ(i.dtype(), DType::i32);
  EXPECT_EQ(i.to_ivector(), (std::vector<std::int32_t>{1, -2, 3}));
  EXPECT_THROW(i.to_vector(), Error);
  EXPECT_THROW(i.data<float>(), Error);
  EXPECT_THROW(Tensor::zeros({2}).to_ivector(), Error);
  EXPECT_EQ(Tensor::zeros({0, 3}).to_vector().size(), 0u);
  EXPECT_EQ(Tensor().to_vector().size(), 0u);  // undefined: no elements, no error
  // No CUDA backend is registered in the unit tests: a device tensor is a clear error.
  if (device_allocator() == nullptr) {
    EXPECT_THROW(Tensor::zeros({2}, DType::f32, Device::cuda), Error);
  }
}

/// Runs Cli::parse on @p args (program name prepended).
std::optional<int> parse(Cli& cli, std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli.parse(static_cast<int>(argv.size()), argv.data(), false);
}

/// Expects parsing @p args to throw a UsageError whose message contains @p what.
void expect_usage_error(std::vector<std::string> args, const std::string& what) {
  CommonOptions opts;
  int count = 1;
  Cli cli("prog", "test program");
  cli.add_common(opts);
  cli.app().add_option("--count", count, "a positive count")->check(kPositive);
  try {
    parse(cli, args);
    ADD_FAILURE() << "no UsageError for " << args.at(0);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(Cli, ParsesCommonOptions) {
  CommonOptions opts;
  int count = 1;
  Cli cli("prog", "test program");
  cli.add_common(opts);
  cli.app().add_option("--count", count, "a positive count")->check(kPositive);
  EXPECT_EQ(parse(cli, {"--backend", "cpu", "--step", "2", "--json", "out/s.json", "--quiet", "--count", "3"}),
            std::nullopt);
  EXPECT_EQ(opts.step, 2);
  EXPECT_EQ(opts.json, "out/s.json");
  EXPECT_TRUE(opts.quiet);
  EXPECT_EQ(count, 3);
}

TEST(Cli, HelpReturnsZero) {
  CommonOptions opts;
  Cli cli("prog", "test program");
  cli.add_common(opts);
  EXPECT_EQ(parse(cli, {"--help"}), std::optional<int>(0));
}

TEST(Cli, ErrorsNameTheOption) {
  expect_usage_error({"--bogus"}, "--bogus");
  expect_usage_error({"--count", "0"}, "--count");
  expect_usage_error({"--count", "0"}, "positive");
  expect_usage_error({"--count", "two"}, "--count");
  expect_usage_error({"--step", "-1"}, "--step");
  expect_usage_error({"--backend", "tpu"}, "--backend");
  expect_usage_error({"--bogus"}, "--help");  // every error says where to look
}

}  // namespace
}  // namespace fivefold
