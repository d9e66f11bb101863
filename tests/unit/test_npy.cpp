// SPDX-License-Identifier: MIT
// Unit tests of .npy I/O: round trips of every supported dtype and shape (scalar, empty, 1-D,
// n-D), files written by NumPy itself (tests/unit/fixtures, made by
// scripts/make_npy_fixture.py), byte-identical headers, and the errors for bad files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "common/npy.hpp"

namespace fivefold {
namespace {

namespace fs = std::filesystem;

/// A fresh scratch directory per test.
std::string scratch(const std::string& name) {
  const fs::path p = fs::temp_directory_path() / ("fivefold_unit_npy_" + name);
  fs::remove_all(p);
  return p.string();
}

std::string fixture(const std::string& name) {
  return std::string(FIVEFOLD_SOURCE_DIR) + "/tests/unit/fixtures/" + name;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Expects load(path) to throw an Error whose message names the path and contains @p what.
void expect_load_error(const std::string& path, const std::string& what) {
  try {
    npy::load(path);
    ADD_FAILURE() << "loading " << path << " did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the path: " << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << "message lacks '" << what << "': " << msg;
  }
}

TEST(Npy, RoundTripF32Shapes) {
  const std::string dir = scratch("f32");
  const Shape shapes[] = {{}, {1}, {7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}, {0}, {4, 0, 3}};
  int n = 0;
  for (const Shape& s : shapes) {
    std::vector<float> v(static_cast<std::size_t>(shape_numel(s)));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.1f * static_cast<float>(i) - 1.5f;
    const Tensor t = Tensor::from_vector(v, s);
    const std::string path = dir + "/sub/dir/t" + std::to_string(n++) + ".npy";  // parents created
    npy::save(path, t);
    const Tensor r = npy::load(path);
    EXPECT_EQ(r.shape(), s) << shape_str(s);
    EXPECT_EQ(r.dtype(), DType::f32);
    EXPECT_EQ(r.to_vector(), v) << shape_str(s);
    EXPECT_EQ(fs::file_size(path) % 64, t.nbytes() % 64) << "header not padded to 64 bytes";
  }
}

TEST(Npy, RoundTripI32Shapes) {
  const std::string dir = scratch("i32");
  const Shape shapes[] = {{}, {5}, {2, 3}, {0, 3}, {3, 2, 2}};
  int n = 0;
  for (const Shape& s : shapes) {
    std::vector<std::int32_t> v(static_cast<std::size_t>(shape_numel(s)));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int32_t>(i * 1000003) - 2147483647;
    const std::string path = dir + "/t" + std::to_string(n++) + ".npy";
    npy::save(path, Tensor::from_vector(v, s));
    const Tensor r = npy::load(path);
    EXPECT_EQ(r.shape(), s);
    EXPECT_EQ(r.dtype(), DType::i32);
    EXPECT_EQ(r.to_ivector(), v);
  }
}

TEST(Npy, SavesViews) {
  const std::string dir = scratch("views");
  std::vector<float> v(12);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Tensor t = Tensor::from_vector(v, {4, 3});
  npy::save(dir + "/rows.npy", t.narrow(1, 2));
  EXPECT_EQ(npy::load(dir + "/rows.npy").to_vector(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
}

TEST(Npy, ReadsNumpyFixtures) {
  const Tensor f = npy::load(fixture("arange_f32.npy"));
  ASSERT_EQ(f.shape(), (Shape{2, 3, 4}));
  ASSERT_EQ(f.dtype(), DType::f32);
  for (std::int64_t i = 0; i < 24; ++i) EXPECT_EQ(f.at<float>(i), 0.5f * static_cast<float>(i)) << i;

  const Tensor g = npy::load(fixture("affine_i32.npy"));
  ASSERT_EQ(g.shape(), (Shape{3, 2}));
  ASSERT_EQ(g.dtype(), DType::i32);
  for (std::int32_t i = 0; i < 6; ++i) EXPECT_EQ(g.at<std::int32_t>(i), 7 - 3 * i) << i;

  const Tensor s = npy::load(fixture("scalar_f32.npy"));
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.at<float>(0), 3.25f);

  const Tensor e = npy::load(fixture("empty_i32.npy"));
  EXPECT_EQ(e.shape(), (Shape{0, 3}));
  EXPECT_EQ(e.numel(), 0);

  const Tensor v2 = npy::load(fixture("v2_f32.npy"));
  ASSERT_EQ(v2.shape(), Shape{5});
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(v2.at<float>(i), 0.25f * static_cast<float>(i) - 1.0f);
}

TEST(Npy, WritesWhatNumpyWrites) {
  // Same values, same shape: our file must be byte-identical to numpy.save's.
  std::vector<float> v(24);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.5f * static_cast<float>(i);
  const std::string dir = scratch("same");
  npy::save(dir + "/a.npy", Tensor::from_vector(v, {2, 3, 4}));
  EXPECT_EQ(read_bytes(dir + "/a.npy"), read_bytes(fixture("arange_f32.npy")));
  npy::save(dir + "/s.npy", Tensor::from_vector(std::vector<float>{3.25f}, {}));
  EXPECT_EQ(read_bytes(dir + "/s.npy"), read_bytes(fixture("scalar_f32.npy")));
  npy::save(dir + "/l.npy", Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 3, 4}, {5}));
  EXPECT_EQ(read_bytes(dir + "/l.npy"), read_bytes(fixture("line_i32.npy")));
  npy::save(dir + "/e.npy", Tensor::zeros({0, 3}, DType::i32));
  EXPECT_EQ(read_bytes(dir + "/e.npy"), read_bytes(fixture("empty_i32.npy")));
}

TEST(Npy, ReadsVersion3Header) {
  // Version 3.0 differs from 2.0 only by a UTF-8 header; build one by hand from the v2 fixture.
  std::string bytes = read_bytes(fixture("v2_f32.npy"));
  ASSERT_GT(bytes.size(), 8u);
  bytes[6] = 3;
  const std::string path = scratch("v3") + ".npy";
  write_bytes(path, bytes);
  EXPECT_EQ(npy::load(path).shape(), Shape{5});
}

TEST(Npy, ErrorsNameThePath) {
  const std::string dir = scratch("errors");
  fs::create_directories(dir);
  expect_load_error(dir + "/missing.npy", "cannot open");

  write_bytes(dir + "/magic.npy", "PK\x03\x04 this is a zip file, not an npy file");
  expect_load_error(dir + "/magic.npy", "bad magic");

  expect_load_error(fixture("bad_f64.npy"), "'<f8'");
  expect_load_error(fixture("bad_f64.npy"), "only float32");
  expect_load_error(fixture("bad_fortran_f32.npy"), "Fortran order");

  std::string good = read_bytes(fixture("arange_f32.npy"));
  write_bytes(dir + "/truncated.npy", good.substr(0, good.size() - 5));
  expect_load_error(dir + "/truncated.npy", "truncated data");
  write_bytes(dir + "/short_header.npy", good.substr(0, 40));
  expect_load_error(dir + "/short_header.npy", "truncated");
}

TEST(Npy, SaveErrorNamesThePath) {
  const std::string dir = scratch("save_error");
  fs::create_directories(dir);
  write_bytes(dir + "/file", "x");  // a file where a directory should be
  const std::string path = dir + "/file/t.npy";
  try {
    npy::save(path, Tensor::zeros({2}));
    ADD_FAILURE() << "saving under a regular file did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(npy::save(dir + "/undefined.npy", Tensor()), Error);
}

}  // namespace
}  // namespace fivefold
