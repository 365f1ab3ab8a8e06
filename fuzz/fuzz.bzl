"""moco_fuzz_target: one LLVMFuzzerTestOneInput source, built two ways (docs/FUZZING.md)."""

def moco_fuzz_target(name, srcs, deps, corpus, copts = []):
    """Declares <name>_lib, <name> and <name>_replay_test.

    <name>: under --config=fuzz a libFuzzer binary; otherwise the replay runner
    (replay FILE_OR_FOLDER...), for rerunning a crasher under the normal toolchain.
    <name>_replay_test: replays corpus/<corpus>/ (in `bazel test //...`, seconds).
    """
    native.cc_library(
        name = name + "_lib",
        srcs = srcs,
        copts = copts,
        deps = deps,
        alwayslink = 1,
    )
    native.cc_binary(
        name = name,
        visibility = ["//tests/layering:__pkg__"],
        deps = [":" + name + "_lib"] + select({
            ":fuzzing": [],
            "//conditions:default": [":replay_main"],
        }),
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.cc_test(
        name = name + "_replay_test",
        size = "small",
        args = ["fuzz/corpus/" + corpus],
        data = native.glob(["corpus/" + corpus + "/**"]),
        deps = [
            ":" + name + "_lib",
            ":replay_main",
        ],
    )
