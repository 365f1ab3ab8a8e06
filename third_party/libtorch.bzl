"""Repository rule for LibTorch.

Default: Debian's libtorch-dev (CPU). ATen/c10 headers live directly under /usr/include, the
toolchain's built-in include directory, and need no declaring (declaring LibTorch's ~800
headers would make every compile build a symlink tree of them). Only the C++ frontend's 155
headers (/usr/include/torch/csrc/api/include, which holds <torch/torch.h>) are linked in and
declared, because they need their own include path.

Override: MOCO_LIBTORCH=/path/to/libtorch, a folder holding include/ and lib/ (the layout of
the official LibTorch zip and of a pip torch package's torch/ folder, CUDA or CPU). Its headers
are declared and its libraries linked with an rpath, so binaries run without LD_LIBRARY_PATH.
"""

_DEBIAN_BUILD = """
cc_library(
    name = "libtorch",
    hdrs = glob(["api/**/*.h"]),
    includes = ["api"],
    linkopts = ["-ltorch", "-ltorch_cpu", "-lc10"],
    visibility = ["//visibility:public"],
)
"""

_CUSTOM_BUILD = """
cc_library(
    name = "libtorch",
    hdrs = glob(["include/**/*.h", "include/**/*.cuh", "include/**/*.hpp"]),
    includes = ["include", "include/torch/csrc/api/include"],
    linkopts = [
        "-L{lib}",
        "-Wl,-rpath,{lib}",
        "-Wl,--no-as-needed",
    ] + {libs} + ["-Wl,--as-needed"],
    visibility = ["//visibility:public"],
)
"""

def _libtorch_repository_impl(ctx):
    root = ctx.os.environ.get("MOCO_LIBTORCH", "")
    if not root:
        ctx.symlink("/usr/include/torch/csrc/api/include", "api")
        ctx.file("BUILD", _DEBIAN_BUILD)
        ctx.file("WORKSPACE", "workspace(name = \"libtorch\")\n")
        return
    base = ctx.path(root)
    for sub in ["include", "lib"]:
        if not base.get_child(sub).exists:
            fail("MOCO_LIBTORCH=%s has no %s/ folder; point it at a LibTorch distribution" % (root, sub))
    ctx.symlink(base.get_child("include"), "include")
    libs = ["-ltorch", "-ltorch_cpu", "-lc10"]
    for cuda_lib in ["torch_cuda", "c10_cuda"]:
        if base.get_child("lib").get_child("lib%s.so" % cuda_lib).exists:
            libs.append("-l" + cuda_lib)
    ctx.file("BUILD", _CUSTOM_BUILD.format(lib = str(base.get_child("lib")), libs = repr(libs)))
    ctx.file("WORKSPACE", "workspace(name = \"libtorch\")\n")

libtorch_repository = repository_rule(
    implementation = _libtorch_repository_impl,
    environ = ["MOCO_LIBTORCH"],
    local = True,
)
