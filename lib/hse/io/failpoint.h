// Fail points for crash tests: HSE_FAILPOINT="NAME:N[,NAME:N...]" makes the N-th time the process
// passes the point NAME end it with SIGKILL, as `kill -9` or a pre-empted node would, at a moment a
// test can name. Unset (the normal case) a fail point costs one relaxed load. The points:
//   safetensors-mid-write   half-way through the tensor data of a .safetensors file (flushed, so
//                           the partial temporary file is on disk)
//   checkpoint-committed    just after a checkpoint-N directory has been renamed into place
//   train-step              at the end of each optimiser step of the trainers, after its metrics
//                           line and before any checkpoint of that step
// hse(7), "Crash safety", documents them.
#pragma once

namespace hse::io {

void failpoint(const char* name);

}  // namespace hse::io
