/*
 * A stand-in for libcuda.so.1 with the entry points gpu-probe's launch test
 * uses, for machines without a GPU. It runs "kernels" on the host: a launch
 * of add_one adds 1 to each of the n words its first parameter points to,
 * reading the parameters exactly as the real driver's cuLaunchKernel does
 * (kernelParams[i] points to the i-th argument). That checks gpu-probe's
 * calling conventions and error handling, not CUDA itself.
 *
 * Build-time switches (-D...): INIT_ERROR=<code> makes cuInit fail;
 * WRONG_RESULT makes the kernel do nothing; fatbin images are always
 * refused with CUDA_ERROR_NO_BINARY_FOR_GPU (209).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;

CUresult cuInit(unsigned flags) {
    (void)flags;
#ifdef INIT_ERROR
    return INIT_ERROR;
#else
    return 0;
#endif
}
CUresult cuDriverGetVersion(int *v) { *v = 12080; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return 0; }
CUresult cuDeviceGet(int *d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
CUresult cuDeviceGetName(char *name, int len, int dev) {
    (void)dev;
    strncpy(name, "Mock RTX 5070 Ti", (size_t)len - 1);
    name[len - 1] = 0;
    return 0;
}
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
    (void)dev;
    if (attr == 75) { *v = 12; return 0; }
    if (attr == 76) { *v = 0; return 0; }
    return 1;
}
static int ctx_refs;
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) { (void)dev; ctx_refs++; *ctx = (void *)0x1; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int dev) { (void)dev; return ctx_refs-- > 0 ? 0 : 201; }
CUresult cuCtxSetCurrent(void *ctx) { return ctx == (void *)0x1 ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }

static int modules;
CUresult cuModuleLoadData(void **mod, const void *image) {
    const unsigned char *p = image;
    if (p[0] == 0x50 && p[1] == 0xed && p[2] == 0x55 && p[3] == 0xba) return 209;
    if (!strstr((const char *)image, ".entry add_one")) return 218;
    modules++;
    *mod = (void *)0x2;
    return 0;
}
CUresult cuModuleUnload(void *mod) { if (mod != (void *)0x2 || modules == 0) return 400; modules--; return 0; }
CUresult cuModuleGetFunction(void **f, void *mod, const char *name) {
    if (mod != (void *)0x2 || strcmp(name, "add_one") != 0) return 500;
    *f = (void *)0x3;
    return 0;
}
CUresult cuMemAlloc_v2(uint64_t *p, size_t n) { void *m = malloc(n); if (!m) return 2; *p = (uint64_t)(uintptr_t)m; return 0; }
CUresult cuMemFree_v2(uint64_t p) { free((void *)(uintptr_t)p); return 0; }
CUresult cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t n) { memcpy((void *)(uintptr_t)dst, src, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *dst, uint64_t src, size_t n) { memcpy(dst, (void *)(uintptr_t)src, n); return 0; }
CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void *stream, void **params, void **extra) {
    (void)gy; (void)gz; (void)by; (void)bz; (void)shmem; (void)stream; (void)extra;
    if (f != (void *)0x3 || !params) return 1;
    uint32_t *buf = (uint32_t *)(uintptr_t)*(uint64_t *)params[0];
    unsigned n = *(unsigned *)params[1];
#ifndef WRONG_RESULT
    for (unsigned i = 0; i < gx * bx; i++)
        if (i < n) buf[i] += 1;
#else
    (void)buf; (void)n;
#endif
    return 0;
}
CUresult cuGetErrorName(CUresult e, const char **s) {
    switch (e) {
    case 100: *s = "CUDA_ERROR_NO_DEVICE"; return 0;
    case 209: *s = "CUDA_ERROR_NO_BINARY_FOR_GPU"; return 0;
    case 218: *s = "CUDA_ERROR_INVALID_PTX"; return 0;
    default: *s = 0; return 1;
    }
}
CUresult cuGetErrorString(CUresult e, const char **s) {
    switch (e) {
    case 100: *s = "no CUDA-capable device is detected"; return 0;
    case 209: *s = "no kernel image is available for execution on the device"; return 0;
    case 218: *s = "a PTX JIT compilation failed"; return 0;
    default: *s = 0; return 1;
    }
}
