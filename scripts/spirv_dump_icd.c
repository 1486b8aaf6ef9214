// A Vulkan ICD that wraps another (Mesa's lavapipe) and writes the SPIR-V of every
// vkCreateShaderModule call to a file, then forwards the call. scripts/ir_mix.ts builds it
// (gcc -shared -fPIC) and points the Vulkan loader at it, so the SPIR-V that Deno's wgpu (naga)
// makes from our WGSL can be read with spirv-dis. Needs no Vulkan headers: the few types it
// touches are declared here as the Vulkan spec lays them out.
//
// Environment:
//   SPIRV_DUMP_REAL_ICD  path of the wrapped ICD's library (libvulkan_lvp.so)
//   SPIRV_DUMP_DIR       folder for the modules: shader-0.spv, shader-1.spv, … in call order
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*PFN_vkVoidFunction)(void);
typedef PFN_vkVoidFunction (*PFN_gipa)(void *instance, const char *name);
typedef PFN_vkVoidFunction (*PFN_gdpa)(void *device, const char *name);
typedef int32_t (*PFN_negotiate)(uint32_t *version);

// VkShaderModuleCreateInfo
typedef struct {
  int32_t sType;
  const void *pNext;
  uint32_t flags;
  size_t codeSize;
  const uint32_t *pCode;
} ShaderModuleCreateInfo;
typedef int32_t (*PFN_createShaderModule)(void *device, const ShaderModuleCreateInfo *info,
                                          const void *allocator, uint64_t *module);

static void *real_lib;
static PFN_gipa real_gipa;
static PFN_gdpa real_gdpa;
static int dumped;

static void load_real(void) {
  if (real_lib) return;
  const char *path = getenv("SPIRV_DUMP_REAL_ICD");
  real_lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
  if (!real_lib) {
    fprintf(stderr, "spirv_dump_icd: cannot load SPIRV_DUMP_REAL_ICD (%s)\n",
            path ? path : "unset");
    exit(2);
  }
  real_gipa = (PFN_gipa)dlsym(real_lib, "vk_icdGetInstanceProcAddr");
  if (!real_gipa) {
    fprintf(stderr, "spirv_dump_icd: %s has no vk_icdGetInstanceProcAddr\n", path);
    exit(2);
  }
}

static int32_t dump_create_shader_module(void *device, const ShaderModuleCreateInfo *info,
                                         const void *allocator, uint64_t *module) {
  const char *dir = getenv("SPIRV_DUMP_DIR");
  if (dir) {
    char name[4096];
    snprintf(name, sizeof name, "%s/shader-%d.spv", dir, dumped++);
    FILE *f = fopen(name, "wb");
    if (f) {
      fwrite(info->pCode, 1, info->codeSize, f);
      fclose(f);
    } else {
      fprintf(stderr, "spirv_dump_icd: cannot write %s\n", name);
    }
  }
  PFN_createShaderModule real = (PFN_createShaderModule)real_gdpa(device, "vkCreateShaderModule");
  return real(device, info, allocator, module);
}

static PFN_vkVoidFunction dump_gdpa(void *device, const char *name) {
  if (strcmp(name, "vkCreateShaderModule") == 0) {
    return (PFN_vkVoidFunction)dump_create_shader_module;
  }
  if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)dump_gdpa;
  return real_gdpa(device, name);
}

__attribute__((visibility("default"))) PFN_vkVoidFunction
vk_icdGetInstanceProcAddr(void *instance, const char *name) {
  load_real();
  if (!real_gdpa && instance) {
    real_gdpa = (PFN_gdpa)real_gipa(instance, "vkGetDeviceProcAddr");
  }
  if (strcmp(name, "vkGetInstanceProcAddr") == 0) {
    return (PFN_vkVoidFunction)vk_icdGetInstanceProcAddr;
  }
  if (instance && strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)dump_gdpa;
  if (instance && strcmp(name, "vkCreateShaderModule") == 0) {
    return (PFN_vkVoidFunction)dump_create_shader_module;
  }
  return real_gipa(instance, name);
}

__attribute__((visibility("default"))) int32_t
vk_icdNegotiateLoaderICDInterfaceVersion(uint32_t *version) {
  load_real();
  PFN_negotiate real =
      (PFN_negotiate)dlsym(real_lib, "vk_icdNegotiateLoaderICDInterfaceVersion");
  return real ? real(version) : 0;
}

__attribute__((visibility("default"))) PFN_vkVoidFunction
vk_icdGetPhysicalDeviceProcAddr(void *instance, const char *name) {
  load_real();
  PFN_gipa real = (PFN_gipa)dlsym(real_lib, "vk_icdGetPhysicalDeviceProcAddr");
  return real ? real(instance, name) : NULL;
}
