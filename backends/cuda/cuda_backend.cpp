// SPDX-License-Identifier: MIT
// The CUDA backend's wiring: is there a GPU, which one does this rank drive, where does device
// memory come from, and which transport moves data between ranks (NCCL or MPI staged in host
// memory). Every decision that must agree across ranks is made collectively (MPI_Allreduce),
// so a missing GPU or an impossible transport fails on every rank alike instead of hanging.
#include "backends/cuda/cuda_backend.hpp"

#include <mpi.h>

#include <cstdlib>
#include <map>
#include <set>
#include <vector>

#include "backends/cpu/mpi_communicator.hpp"
#include "backends/cuda/cuda_check.hpp"
#include "backends/cuda/cuda_context.hpp"
#include "backends/cuda/cuda_ops.hpp"
#include "backends/cuda/nccl_communicator.hpp"
#include "backends/cuda/staged_communicator.hpp"

namespace fivefold {

namespace {

CudaContext* g_context = nullptr;  // created once, never destroyed (see cuda_context.hpp)

// Device memory with a small cache: a freed block is kept under its rounded size and handed
// out again, because cudaFree synchronises the whole device and a training step frees and
// allocates the same sizes every iteration. Reuse is safe in stream order: every use of
// device memory is queued on the compute stream, or (communication) waits for it first.
class CachingCudaAllocator : public DeviceAllocator {
 public:
  void* allocate(std::size_t bytes) override {
    const std::size_t size = (bytes + 511) / 512 * 512;
    void* p = nullptr;
    auto& list = free_[size];
    if (!list.empty()) {
      p = list.back();
      list.pop_back();
    } else {
      if (cudaMalloc(&p, size) != cudaSuccess) {
        (void)cudaGetLastError();  // clear it, or the next kernel launch check reports it
        release_cache();
        const cudaError_t rc = cudaMalloc(&p, size);
        if (rc != cudaSuccess) (void)cudaGetLastError();
        FIVEFOLD_CHECK(rc == cudaSuccess, "cudaMalloc of ", size, " bytes failed (", cudaGetErrorString(rc),
                       ") with ", in_use_, " bytes in use on GPU ", cuda_context().device,
                       "; use a smaller model or batch, or more ranks");
      }
    }
    live_[p] = size;
    in_use_ += size;
    return p;
  }

  void deallocate(void* p) override {
    auto it = live_.find(p);
    if (it == live_.end()) return;
    in_use_ -= it->second;
    free_[it->second].push_back(p);
    live_.erase(it);
  }

  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t bytes) override {
    // On the compute stream, then wait: the copy sees every kernel queued before it, and the
    // host may use the data as soon as this returns.
    cudaStream_t s = cuda_context().stream;
    FIVEFOLD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, s));
    FIVEFOLD_CUDA_CHECK(cudaStreamSynchronize(s));
  }

  void zero(void* p, std::size_t bytes) override {
    FIVEFOLD_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda_context().stream));
  }

 private:
  void release_cache() {
    cudaDeviceSynchronize();
    for (auto& [size, list] : free_) {
      for (void* q : list) cudaFree(q);
      list.clear();
    }
  }

  std::map<std::size_t, std::vector<void*>> free_;
  std::map<void*, std::size_t> live_;
  std::size_t in_use_ = 0;
};

int all_ranks_min(int v) {
  int out = v;
  MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return out;
}

// The ranks that share this rank's node (MPI_COMM_TYPE_SHARED); the caller frees it.
MPI_Comm node_comm() {
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
  return node;
}

// How many distinct GPUs the ranks of @p node drive, told apart by PCI bus id: a launcher that
// shows each rank only "its" GPU (CUDA_VISIBLE_DEVICES) still gives one GPU per rank.
int distinct_gpus_on_node(MPI_Comm node, int device) {
  constexpr int kLen = 32;
  char mine[kLen] = {};
  FIVEFOLD_CUDA_CHECK(cudaDeviceGetPCIBusId(mine, kLen, device));
  int n = 1;
  MPI_Comm_size(node, &n);
  std::vector<char> all(static_cast<std::size_t>(n) * kLen);
  MPI_Allgather(mine, kLen, MPI_CHAR, all.data(), kLen, MPI_CHAR, node);
  std::set<std::string> ids;
  for (int i = 0; i < n; ++i) ids.insert(std::string(all.data() + static_cast<std::size_t>(i) * kLen));
  return static_cast<int>(ids.size());
}

void init_context(int device, int device_count) {
  if (g_context != nullptr) {
    FIVEFOLD_CHECK(g_context->device == device, "CUDA backend re-created for GPU ", device,
                   " but this process already drives GPU ", g_context->device);
    return;
  }
  auto* ctx = new CudaContext;
  ctx->device = device;
  ctx->device_count = device_count;
  FIVEFOLD_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  FIVEFOLD_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  ctx->device_name = prop.name;
  // A blocking stream (not cudaStreamNonBlocking): anything queued on the legacy default
  // stream by other code is still ordered with our work.
  FIVEFOLD_CUDA_CHECK(cudaStreamCreate(&ctx->stream));
  FIVEFOLD_CUDA_CHECK(cublasCreate(&ctx->cublas));
  FIVEFOLD_CUDA_CHECK(cublasSetStream(ctx->cublas, ctx->stream));
  // TUTORIAL: plain fp32 GEMMs. CUBLAS_DEFAULT_MATH never uses TF32 tensor cores (unless the
  // NVIDIA_TF32_OVERRIDE environment variable forces it); CUBLAS_PEDANTIC_MATH would also
  // rule out any other reduced-precision shortcut, at some speed cost.
  FIVEFOLD_CUDA_CHECK(cublasSetMathMode(ctx->cublas, CUBLAS_DEFAULT_MATH));
  g_context = ctx;
  set_device_allocator(new CachingCudaAllocator);  // lives as long as the process
}

CudaTransport transport_from_env() {
  const char* v = std::getenv("FIVEFOLD_CUDA_TRANSPORT");
  if (v == nullptr || *v == '\0') return CudaTransport::automatic;
  const std::string s = v;
  if (s == "nccl") return CudaTransport::nccl;
  if (s == "staged") return CudaTransport::staged;
  throw UsageError("FIVEFOLD_CUDA_TRANSPORT=" + s + ": unknown transport; use nccl, staged, or unset it");
}

std::string plural(int n, const char* word) { return std::to_string(n) + " " + word + (n == 1 ? "" : "s"); }

}  // namespace

CudaContext& cuda_context() {
  FIVEFOLD_CHECK(g_context != nullptr,
                 "CUDA used before the CUDA backend was created; call make_backend(\"cuda\") first");
  return *g_context;
}

std::string cuda_unavailable_reason() {
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    (void)cudaGetLastError();
    return cudaGetErrorString(rc);
  }
  if (n == 0) return "0 CUDA devices";
  return "";
}

Backend make_cuda_backend() { return make_cuda_backend(transport_from_env()); }

Backend make_cuda_backend(CudaTransport transport) {
  // 1. A GPU on every rank, decided together.
  const std::string reason = cuda_unavailable_reason();
  if (all_ranks_min(reason.empty() ? 1 : 0) == 0) {
    const std::string why = reason.empty() ? std::string("not on every rank") : reason;
    throw UsageError("--backend cuda: no usable CUDA GPU (" + why + "); run with --backend cpu");
  }
  // 2. This rank's GPU: local rank modulo the GPUs it can see.
  int visible = 0;
  FIVEFOLD_CUDA_CHECK(cudaGetDeviceCount(&visible));
  MPI_Comm node = node_comm();
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  init_context(local_rank % visible, visible);
  const CudaContext& ctx = cuda_context();
  const int gpus = distinct_gpus_on_node(node, ctx.device);
  MPI_Comm_free(&node);

  // 3. The transport. NCCL needs a GPU of its own for every rank of every node.
  const bool own_gpu_everywhere = all_ranks_min(gpus == local_size ? 1 : 0) == 1;
  int world_size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  std::string placement = "cuda: " + plural(world_size, "rank");
  if (local_size == world_size) {
    placement += own_gpu_everywhere ? (world_size == 1 ? " on 1 GPU" : ", one GPU each")
                                    : " share " + plural(gpus, "GPU");
  } else {
    placement += ", " + std::to_string(local_size) + " per node" +
                 (own_gpu_everywhere ? ", one GPU each" : " sharing " + plural(gpus, "GPU"));
  }
  placement += " (" + ctx.device_name + ")";
  if (transport == CudaTransport::nccl && !own_gpu_everywhere) {
    throw UsageError("FIVEFOLD_CUDA_TRANSPORT=nccl: " + placement.substr(6) +
                     ", but NCCL needs one GPU per rank; run fewer ranks per node or unset it (staged transport)");
  }
  const bool use_nccl =
      transport == CudaTransport::nccl || (transport == CudaTransport::automatic && own_gpu_everywhere);

  Backend b;
  b.name = "cuda";
  b.ops = std::make_unique<CudaOps>();
  if (use_nccl) {
    b.world = NcclCommunicator::world();
    int v = 0;
    FIVEFOLD_CUDA_CHECK(ncclGetVersion(&v));
    b.description = placement + "; NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
                    std::to_string(v % 100) + " moves data GPU to GPU";
  } else {
    b.world = StagedCommunicator::world();
    b.description = placement + (own_gpu_everywhere ? "; staged transport asked for (FIVEFOLD_CUDA_TRANSPORT=staged)"
                                                    : "; NCCL refuses two ranks on one GPU") +
                    ", so data moves through MPI staged in host memory";
  }
  return b;
}

}  // namespace fivefold
