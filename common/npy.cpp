// SPDX-License-Identifier: MIT
// NumPy .npy files: what `--dump` writes and what tests read back.
//
// Layout (numpy/lib/format.py): the magic "\x93NUMPY", a major and a minor version byte, the
// header length (uint16 for 1.0, uint32 for 2.0 and 3.0, little-endian), then an ASCII (UTF-8
// for 3.0) Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and a final '\n' so that the data starts at a multiple of 64 bytes, then the
// raw little-endian elements in C order. Only '<f4' and '<i4' are supported (and '|'/'=' byte
// order marks are not needed for 4-byte types, so they are refused too).
#include "common/npy.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/check.hpp"
#include "common/output.hpp"

namespace fivefold::npy {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kAlign = 64;

static_assert(sizeof(float) == 4 && sizeof(std::int32_t) == 4, "npy I/O assumes 4-byte float and int32");

/// "(2, 3, 4)", "(5,)" or "()" — the Python tuple repr NumPy writes.
std::string shape_tuple(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  if (s.size() == 1) os << ',';
  os << ')';
  return os.str();
}

/// The value text after key @p key in a header dict ("'<f4'", "False", "(2, 3)"), or "".
std::string dict_value(const std::string& header, const std::string& key) {
  const std::string quoted[2] = {"'" + key + "'", "\"" + key + "\""};
  std::size_t pos = std::string::npos;
  for (const auto& q : quoted) {
    pos = header.find(q);
    if (pos != std::string::npos) {
      pos += q.size();
      break;
    }
  }
  if (pos == std::string::npos) return {};
  pos = header.find(':', pos);
  if (pos == std::string::npos) return {};
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  if (pos >= header.size()) return {};
  std::size_t end = pos;
  if (header[pos] == '(') {
    end = header.find(')', pos);
    return end == std::string::npos ? std::string() : header.substr(pos, end - pos + 1);
  }
  if (header[pos] == '\'' || header[pos] == '"') {
    end = header.find(header[pos], pos + 1);
    return end == std::string::npos ? std::string() : header.substr(pos + 1, end - pos - 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  std::string v = header.substr(pos, end - pos);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

/// Parses "(2, 3, 4)", "(5,)", "()" into a Shape.
Shape parse_shape(const std::string& path, const std::string& text) {
  FIVEFOLD_CHECK(text.size() >= 2 && text.front() == '(' && text.back() == ')', path,
                 ": malformed .npy header: shape is '", text, "'; expected a tuple like (2, 3)");
  Shape s;
  std::string item;
  std::istringstream is(text.substr(1, text.size() - 2));
  while (std::getline(is, item, ',')) {
    const auto first = item.find_first_not_of(' ');
    if (first == std::string::npos) continue;  // trailing comma of "(5,)"
    const std::string digits = item.substr(first, item.find_last_not_of(' ') - first + 1);
    // Python 2 era files may write long dimensions as "3L".
    std::size_t used = 0;
    long long d = -1;
    try {
      d = std::stoll(digits, &used);
    } catch (...) {
      used = 0;
    }
    FIVEFOLD_CHECK(used > 0 && (used == digits.size() || digits.substr(used) == "L") && d >= 0, path,
                   ": malformed .npy header: dimension '", digits, "' in shape ", text);
    s.push_back(d);
  }
  return s;
}

}  // namespace

void save(const std::string& path, const Tensor& t) {
  FIVEFOLD_CHECK(t.defined(), "npy::save(", path, "): the tensor is undefined (no memory)");
  const Tensor host = t.device() == Device::host ? t : t.to(Device::host);

  std::string header = std::string("{'descr': '") + (t.dtype() == DType::f32 ? "<f4" : "<i4") +
                       "', 'fortran_order': False, 'shape': " + shape_tuple(t.shape()) + ", }";
  // Pad with spaces so that magic + version + length + header (ending in '\n') is a multiple of 64.
  const std::size_t prefix = kMagicLen + 2 + 2;
  const std::size_t total = (prefix + header.size() + 1 + kAlign - 1) / kAlign * kAlign;
  header.append(total - prefix - header.size() - 1, ' ');
  header.push_back('\n');
  FIVEFOLD_CHECK(header.size() <= 0xFFFF, "npy::save(", path, "): header too long for format 1.0");

  const auto len = static_cast<std::uint16_t>(header.size());
  const char version_and_len[4] = {1, 0, static_cast<char>(len & 0xFF), static_cast<char>(len >> 8)};
  std::string bytes(kMagic, kMagicLen);
  bytes.append(version_and_len, 4);
  bytes += header;
  // Elements are written as they sit in memory: this code assumes a little-endian host (x86, ARM).
  bytes.append(static_cast<const char*>(host.raw()), host.nbytes());
  write_file_atomic(path, bytes);  // a temporary name, then a rename: never a half-written .npy
}

Tensor load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  FIVEFOLD_CHECK(in.good(), "cannot open ", path, ": no such file or not readable");

  char magic[kMagicLen + 2] = {};
  in.read(magic, sizeof magic);
  FIVEFOLD_CHECK(in.gcount() == static_cast<std::streamsize>(sizeof magic) &&
                     std::memcmp(magic, kMagic, kMagicLen) == 0,
                 path, " is not a .npy file (bad magic); write it with numpy.save");
  const int major = static_cast<unsigned char>(magic[kMagicLen]);
  const int minor = static_cast<unsigned char>(magic[kMagicLen + 1]);
  FIVEFOLD_CHECK(major >= 1 && major <= 3, path, ": unsupported .npy format version ", major, ".", minor,
                 "; only 1.0, 2.0 and 3.0 are known");

  const int len_bytes = major == 1 ? 2 : 4;
  unsigned char len_buf[4] = {};
  in.read(reinterpret_cast<char*>(len_buf), len_bytes);
  FIVEFOLD_CHECK(in.gcount() == len_bytes, path, ": truncated .npy header");
  std::size_t header_len = 0;
  for (int i = len_bytes - 1; i >= 0; --i) header_len = header_len * 256 + len_buf[i];
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  FIVEFOLD_CHECK(static_cast<std::size_t>(in.gcount()) == header_len, path, ": truncated .npy header (",
                 in.gcount(), " of ", header_len, " bytes)");

  const std::string descr = dict_value(header, "descr");
  const std::string fortran = dict_value(header, "fortran_order");
  const std::string shape_text = dict_value(header, "shape");
  FIVEFOLD_CHECK(!descr.empty() && !fortran.empty() && !shape_text.empty(), path,
                 ": malformed .npy header (needs descr, fortran_order and shape): ", header);
  DType dtype = DType::f32;
  if (descr == "<f4") {
    dtype = DType::f32;
  } else if (descr == "<i4") {
    dtype = DType::i32;
  } else {
    FIVEFOLD_CHECK(false, path, " has dtype '", descr,
                   "'; only float32 ('<f4') and int32 ('<i4') are supported: convert it with "
                   ".astype(numpy.float32) or .astype(numpy.int32)");
  }
  FIVEFOLD_CHECK(fortran == "False", path,
                 " is stored in Fortran order; only C order is supported: save numpy.ascontiguousarray(a)");

  Tensor t = Tensor::empty(parse_shape(path, shape_text), dtype);
  in.read(static_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  FIVEFOLD_CHECK(static_cast<std::size_t>(in.gcount()) == t.nbytes(), path, ": truncated data: shape ",
                 shape_str(t.shape()), " needs ", t.nbytes(), " bytes but the file holds ", in.gcount());
  return t;
}

}  // namespace fivefold::npy
