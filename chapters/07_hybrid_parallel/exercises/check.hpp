// SPDX-License-Identifier: MIT
/// @file check.hpp
/// @brief Chapter 07 exercise checks: a hand-written coordinates or group function against
/// ProcessGrid, over many layouts and orders. No MPI: the grid is arithmetic.
#pragma once

#include <functional>
#include <vector>

#include "common/process_grid.hpp"

namespace fivefold::ch07 {

/// Exercise 1: the coordinates of @p rank in a grid of @p sizes whose axes vary in @p order
/// (fastest first), indexed by Axis.
using CoordsFn = std::function<AxisArray(int rank, const AxisArray& sizes, const std::vector<Axis>& order)>;

/// Exercise 2: the members of @p rank's S-group, in increasing group-local rank.
using GroupFn = std::function<std::vector<int>(int rank, const AxisSet& s, const ProcessGrid& grid)>;

/// Checks @p fn on every rank of many layouts; prints the verdict; returns the exit status.
/// `--hint 1|2` in @p argv prints that hint instead.
int check_coords(int argc, char** argv, CoordsFn fn);
/// Checks @p fn on every rank and every set of axes of many layouts; prints the verdict (or a hint).
int check_group(int argc, char** argv, GroupFn fn);
/// The first rank of the test layouts where @p fn's coordinates differ from ProcessGrid's ("" if none).
std::string coords_problem(const CoordsFn& fn);
/// The first rank and set of axes where @p fn's group differs from ProcessGrid's ("" if none).
std::string group_problem(const GroupFn& fn);

/// The rank at coordinates @p c (given to exercise 2: the inverse of exercise 1).
int rank_at(const AxisArray& c, const ProcessGrid& grid);

}  // namespace fivefold::ch07
