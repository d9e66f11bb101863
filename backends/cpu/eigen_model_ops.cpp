// SPDX-License-Identifier: MIT
// EigenOps, model ops: stubs being implemented.
#include "backends/cpu/eigen_ops.hpp"

namespace fivefold {
#define FF_STUB(n) FIVEFOLD_CHECK(false, "EigenOps::" n " not implemented yet")
void EigenOps::mul(Tensor&, const Tensor&, const Tensor&) { FF_STUB("mul"); }
double EigenOps::sum_squares(const Tensor&) { FF_STUB("sum_squares"); return 0; }
void EigenOps::row_dot(Tensor&, const Tensor&, const Tensor&) { FF_STUB("row_dot"); }
void EigenOps::gather_rows(Tensor&, const Tensor&, const Tensor&, const Tensor&) { FF_STUB("gather_rows"); }
void EigenOps::scatter_add_rows(Tensor&, const Tensor&, const Tensor&, const Tensor&) { FF_STUB("scatter_add_rows"); }
void EigenOps::rmsnorm_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, float) { FF_STUB("rmsnorm_forward"); }
void EigenOps::rmsnorm_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  FF_STUB("rmsnorm_backward");
}
void EigenOps::rope(Tensor&, const Tensor&, float, bool) { FF_STUB("rope"); }
void EigenOps::swiglu_forward(Tensor&, const Tensor&, const Tensor&) { FF_STUB("swiglu_forward"); }
void EigenOps::swiglu_backward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  FF_STUB("swiglu_backward");
}
void EigenOps::softmax_rows(Tensor&, const Tensor&) { FF_STUB("softmax_rows"); }
void EigenOps::cross_entropy(Tensor&, Tensor&, const Tensor&, const Tensor&, float) { FF_STUB("cross_entropy"); }
void EigenOps::adamw_step(Tensor&, const Tensor&, Tensor&, Tensor&, float, float, float, float, float, int) {
  FF_STUB("adamw_step");
}
void EigenOps::attention_forward(Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&) {
  FF_STUB("attention_forward");
}
void EigenOps::attention_backward(Tensor&, Tensor&, Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                  const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  FF_STUB("attention_backward");
}
void EigenOps::attention_merge(Tensor&, Tensor&, const Tensor&, const Tensor&) { FF_STUB("attention_merge"); }
}  // namespace fivefold
