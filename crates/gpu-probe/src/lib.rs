//! Checks whether CUDA really works on this GPU: driver, kernels, launch, VRAM.
