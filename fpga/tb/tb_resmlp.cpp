// Verilator testbench for resmlp_top: streams images back to back through the
// pipeline, collects the logits and the timing of every image.
//
//   Vresmlp_top +hexdir=DIR in=X.bin out=Y.bin timing=T.txt images=N
//               in_per_image=T*P out_per_image=K [bubble=PCT] [stall=PCT] [seed=S]
//
// +hexdir=DIR   folder of the parameter hex files (read by the RTL's $readmemh)
// X.bin         N * in_per_image signed bytes, image after image, token rows in order
// Y.bin         written: N * out_per_image signed bytes (the logits)
// T.txt         written: one line per image, "first_in last_in last_out" in clock
//               cycles (first_in: the clock its first code was taken; last_out: the
//               clock its last logit was taken)
// bubble=PCT    hold in_valid low on PCT % of the clocks (random, seeded)
// stall=PCT     hold out_ready low on PCT % of the clocks (random, seeded)
//
// Prints "image I CYCLE" as each image's last logit leaves, then one line
// "cycles=C images=N", and exits 0, or names the problem and
// exits 1 (no progress for 4 000 000 clocks: the pipeline is stuck).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vresmlp_top.h"
#include "verilated.h"

static const char *arg(int argc, char **argv, const char *key, const char *dflt) {
    const size_t n = std::strlen(key);
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') return argv[i] + n + 1;
    if (!dflt) {
        std::fprintf(stderr, "tb_resmlp: missing argument %s=...\n", key);
        std::exit(2);
    }
    return dflt;
}

int main(int argc, char **argv) {
    const std::string in_path = arg(argc, argv, "in", nullptr);
    const std::string out_path = arg(argc, argv, "out", nullptr);
    const std::string timing_path = arg(argc, argv, "timing", nullptr);
    const long images = std::atol(arg(argc, argv, "images", nullptr));
    const long in_per = std::atol(arg(argc, argv, "in_per_image", nullptr));
    const long out_per = std::atol(arg(argc, argv, "out_per_image", nullptr));
    const int bubble = std::atoi(arg(argc, argv, "bubble", "0"));
    const int stall = std::atoi(arg(argc, argv, "stall", "0"));
    std::mt19937 rng(std::atoi(arg(argc, argv, "seed", "1")));
    if (images < 1 || in_per < 1 || out_per < 1) {
        std::fprintf(stderr, "tb_resmlp: images, in_per_image, out_per_image must be >= 1\n");
        return 2;
    }

    std::vector<int8_t> in(images * in_per);
    std::FILE *f = std::fopen(in_path.c_str(), "rb");
    if (!f || std::fread(in.data(), 1, in.size(), f) != in.size()) {
        std::fprintf(stderr, "tb_resmlp: cannot read %ld bytes from %s\n", (long)in.size(), in_path.c_str());
        return 2;
    }
    std::fclose(f);

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);  // +hexdir= reaches $value$plusargs
    auto top = std::make_unique<Vresmlp_top>(ctx.get());

    std::vector<int8_t> out;
    out.reserve(images * out_per);
    std::vector<uint64_t> first_in(images, 0), last_in(images, 0), last_out(images, 0);
    uint64_t cycle = 0, last_progress = 0;
    size_t next = 0;

    top->clk = 0;
    top->rst = 1;
    top->in_valid = 0;
    top->in_data = 0;
    top->out_ready = 0;
    for (int i = 0; i < 4; ++i) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    while (out.size() < in.size() / in_per * out_per) {
        const bool offer = next < in.size() && (bubble <= 0 || (int)(rng() % 100) >= bubble);
        const bool ready = stall <= 0 || (int)(rng() % 100) >= stall;
        top->clk = 0;
        top->in_valid = offer;
        top->in_data = offer ? (uint8_t)in[next] : 0;
        top->out_ready = ready;
        top->eval();
        const bool took = offer && top->in_ready;
        const bool gave = ready && top->out_valid;
        const int8_t logit = (int8_t)top->out_data;
        top->clk = 1;
        top->eval();
        ++cycle;
        if (took) {
            const long img = (long)(next / in_per);
            if (next % in_per == 0) first_in[img] = cycle;
            if (next % in_per == (size_t)in_per - 1) last_in[img] = cycle;
            ++next;
            last_progress = cycle;
        }
        if (gave) {
            out.push_back(logit);
            if (out.size() % out_per == 0) {
                last_out[out.size() / out_per - 1] = cycle;
                std::printf("image %zu %llu\n", out.size() / out_per - 1, (unsigned long long)cycle);
                std::fflush(stdout);
            }
            last_progress = cycle;
        }
        if (cycle - last_progress > 4000000ULL) {
            std::fprintf(stderr, "tb_resmlp: no progress for 4000000 clocks after %zu inputs and "
                         "%zu outputs: the pipeline is stuck\n", next, out.size());
            return 1;
        }
    }
    top->final();

    f = std::fopen(out_path.c_str(), "wb");
    if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
        std::fprintf(stderr, "tb_resmlp: cannot write %s\n", out_path.c_str());
        return 2;
    }
    std::fclose(f);
    f = std::fopen(timing_path.c_str(), "w");
    if (!f) {
        std::fprintf(stderr, "tb_resmlp: cannot write %s\n", timing_path.c_str());
        return 2;
    }
    for (long i = 0; i < images; ++i)
        std::fprintf(f, "%llu %llu %llu\n", (unsigned long long)first_in[i],
                     (unsigned long long)last_in[i], (unsigned long long)last_out[i]);
    std::fclose(f);
    std::printf("cycles=%llu images=%ld\n", (unsigned long long)cycle, images);
    return 0;
}
