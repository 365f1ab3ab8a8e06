"""cc_proto: C++ code from .proto files with the system protoc (offline; no @com_google_protobuf).

    cc_proto(name = "config_cc_proto", srcs = ["config.proto"], deps = ["//moco/config:config_cc_proto"])

Imports are resolved from the workspace root, e.g. `import "moco/config/config.proto";`.
"""

def cc_proto(name, srcs, deps = [], visibility = None):
    proto_deps = [d + "_srcs" for d in deps]
    native.filegroup(name = name + "_srcs", srcs = srcs + proto_deps, visibility = visibility)
    outs = []
    for src in srcs:
        stem = src[:-len(".proto")]
        outs += [stem + ".pb.h", stem + ".pb.cc"]
    native.genrule(
        name = name + "_gen",
        srcs = srcs + proto_deps,
        outs = outs,
        cmd = "protoc --proto_path=. --cpp_out=$(GENDIR) " + " ".join(
            ["$(location %s)" % s for s in srcs],
        ),
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        copts = ["-Wno-unused-parameter"],
        deps = deps + ["//third_party:protobuf"],
        visibility = visibility,
    )
